"""harness.py — shared helpers of the seatcored integration suite.

An independent client: Debian's python3-grpcio with stubs generated from proto/
by grpc_tools.protoc (the `run` script puts them on PYTHONPATH). Nothing here
links the project's C code.

Environment (set by `run`):
  TK_IT_ADDR               host:port of the memory-mode daemon the API tests share
  TK_IT_MAX_MESSAGE_BYTES  that daemon's --max-message-bytes
  TK_IT_SEATCORED          the seatcored binary (durability tests start their own)
  TK_IT_TOKEN_KEY          a 48-byte admission-token key file
  TK_IT_WORK               the suite's temp dir (data dirs, logs, pid list)
  TK_IT_FREE_PORT          tools/free-port

Run `harness.py --counts FILE MODULE...` to run test modules and write "passed failed".
"""
import itertools
import os
import signal
import subprocess
import sys
import time
import unittest

import grpc

import health_pb2
import health_pb2_grpc
from tiketi.v1 import common_pb2
from tiketi.v1 import seatcore_pb2 as pb
from tiketi.v1 import seatcore_pb2_grpc

ERROR_TRAILER = "tiketi-error-bin"
RPC_TIMEOUT_S = 5.0
SERVICE = "tiketi.v1.SeatCore"

# Every SeatCore method: request type and whether the reply is a stream.
METHODS = {
    "CreateEvent": (pb.CreateEventRequest, False),
    "GetEvent": (pb.EventRef, False),
    "CloseEvent": (pb.EventRef, False),
    "CancelEvent": (pb.EventRef, False),
    "Hold": (pb.HoldRequest, False),
    "HoldBestAvailable": (pb.HoldBestRequest, False),
    "Release": (pb.HoldRef, False),
    "Confirm": (pb.ConfirmRequest, False),
    "ReturnSeat": (pb.ReturnSeatRequest, False),
    "GetHold": (pb.HoldRef, False),
    "GetAvailability": (pb.EventRef, False),
    "WatchAvailability": (pb.WatchAvailabilityRequest, True),
    "QueueJoin": (pb.QueueRequest, False),
    "QueueStatus": (pb.QueueRequest, False),
    "QueueLeave": (pb.QueueRequest, False),
    "QueueHeartbeat": (pb.QueueRequest, False),
    "WatchQueue": (pb.QueueRequest, True),
    "GetQueueInfo": (pb.EventRef, False),
    "ListAdmissions": (pb.ListAdmissionsRequest, False),
    "Batch": (pb.BatchRequest, False),
}

FREE, HELD, SOLD = 0, 1, 2
STATE_NAMES = {FREE: "free", HELD: "held", SOLD: "sold"}

# Event ids: unique across the modules of one run that share a daemon.
_event_ids = itertools.count((int(time.time()) % 100000) * 100000 + 1)


def next_event_id():
    return next(_event_ids)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest(f"{name} is not set (run the suite through tests/integration/seatcored/run)")
    return value


# ---------------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------------
class Result:
    """The outcome of one unary call: the reply, or the status with its decoded ErrorDetail."""

    def __init__(self, reply=None, code=grpc.StatusCode.OK, details="", detail=None, elapsed=0.0):
        self.reply = reply
        self.code = code
        self.details = details
        self.detail = detail  # common_pb2.ErrorDetail from the tiketi-error-bin trailer, or None
        self.elapsed = elapsed

    @property
    def ok(self):
        return self.code == grpc.StatusCode.OK

    @property
    def error_code(self):
        return self.detail.code if self.detail is not None else ""

    def __str__(self):
        if self.ok:
            return "OK"
        text = f"{self.code.name} '{self.details}'"
        if self.detail is not None:
            text += f" [detail code={self.detail.code!r}"
            if self.detail.unavailable_seats:
                text += f" unavailable={list(self.detail.unavailable_seats)}"
            text += "]"
        else:
            text += " [no tiketi-error-bin trailer]"
        return text


def error_detail(err):
    """Decodes the tiketi-error-bin trailer of a failed call (None if absent)."""
    for key, value in err.trailing_metadata() or ():
        if key == ERROR_TRAILER:
            return common_pb2.ErrorDetail.FromString(value)
    return None


def rpc(method, request, timeout=RPC_TIMEOUT_S):
    """Calls a unary method (a stub attribute or a raw multicallable) and returns a Result."""
    started = time.monotonic()
    try:
        reply = method(request, timeout=timeout)
        return Result(reply=reply, elapsed=time.monotonic() - started)
    except grpc.RpcError as err:
        return Result(code=err.code(), details=err.details() or "", detail=error_detail(err),
                      elapsed=time.monotonic() - started)


class Client:
    def __init__(self, address):
        self.address = address
        self.channel = grpc.insecure_channel(address)
        self.stub = seatcore_pb2_grpc.SeatCoreStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def raw_unary(self, method, service=SERVICE):
        """A multicallable that sends and returns raw bytes (no serialisation)."""
        return self.channel.unary_unary(f"/{service}/{method}")

    def raw_stream(self, method, service=SERVICE):
        return self.channel.unary_stream(f"/{service}/{method}")

    def close(self):
        self.channel.close()


def health_status(client, service="", timeout=1.0):
    result = rpc(client.health.Check, health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return result.reply.status if result.ok else None


# ---------------------------------------------------------------------------------------------
# Seat maps
# ---------------------------------------------------------------------------------------------
def decode_states(states, capacity):
    """The 2-bit seat states of an Availability (seat i in bits 2*(i%4) of byte i/4)."""
    return [(states[i >> 2] >> ((i & 3) * 2)) & 3 for i in range(capacity)]


def section(name="A", rows=2, seats_per_row=10, price_cents=0):
    return pb.Section(name=name, rows=rows, seats_per_row=seats_per_row, price_cents=price_cents)


# ---------------------------------------------------------------------------------------------
# Test cases
# ---------------------------------------------------------------------------------------------
def known_bug(reason):
    """Marks a test that shows a reported, unfixed bug: an expected failure (the suite stays
    green and flips to red, as an unexpected success, once the bug is fixed). With
    SEATCORED_IT_STRICT_KNOWN_BUGS=1 the test is an ordinary, failing test."""

    def mark(test):
        test.__doc__ = f"KNOWN BUG: {reason}"
        if os.environ.get("SEATCORED_IT_STRICT_KNOWN_BUGS") == "1":
            return test
        return unittest.expectedFailure(test)

    return mark


class SeatcoreTestCase(unittest.TestCase):
    """Talks to the shared memory-mode daemon at TK_IT_ADDR."""

    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.client = Client(env("TK_IT_ADDR"))
        cls.stub = cls.client.stub

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    # -- assertions with the call's status and detail in the message --
    def assertOk(self, result, what=""):
        if not result.ok:
            self.fail(f"{what or 'call'}: expected OK, got {result}")
        return result.reply

    def assertFails(self, result, code, error_code=None, what=""):
        label = what or "call"
        if result.code != code:
            self.fail(f"{label}: expected {code.name}"
                      f"{f' ({error_code})' if error_code else ''}, got {result}")
        if error_code is not None:
            self.assertIsNotNone(result.detail, f"{label}: {code.name} without a {ERROR_TRAILER} trailer")
            self.assertEqual(result.detail.code, error_code, f"{label}: wrong machine code in the trailer: {result}")
        return result

    # -- shortcuts --
    def create_event(self, sections=None, **fields):
        event_id = fields.pop("event_id", None) or next_event_id()
        request = pb.CreateEventRequest(event_id=event_id, sections=sections or [section()], **fields)
        info = self.assertOk(rpc(self.stub.CreateEvent, request), f"CreateEvent {event_id}")
        self.assertEqual(info.event_id, event_id)
        return info

    def hold(self, event_id, user_id, seats, **fields):
        return rpc(self.stub.Hold, pb.HoldRequest(event_id=event_id, user_id=user_id, seats=seats, **fields))

    def availability(self, event_id):
        avail = self.assertOk(rpc(self.stub.GetAvailability, pb.EventRef(event_id=event_id)), "GetAvailability")
        return avail, decode_states(avail.states, avail.capacity)

    def poll(self, fn, timeout_s, interval_s=0.05, what="condition"):
        """Calls fn() until it returns a true value; fails after timeout_s."""
        deadline = time.monotonic() + timeout_s
        last = None
        while True:
            last = fn()
            if last:
                return last
            if time.monotonic() > deadline:
                self.fail(f"{what}: not reached within {timeout_s}s")
            time.sleep(interval_s)


# ---------------------------------------------------------------------------------------------
# Daemons started by the tests themselves (durability)
# ---------------------------------------------------------------------------------------------
class Daemon:
    """One seatcored process on free loopback ports. Its pid goes to TK_IT_WORK/daemon.pids
    so that the `run` script stops it even if a test dies half-way."""

    _serial = itertools.count(1)

    def __init__(self, name, data_dir=None, grace_ms=3000, extra=(), preexec=None):
        self.name = name
        self.data_dir = data_dir
        self.grace_ms = grace_ms
        self.extra = list(extra)
        self.preexec = preexec  # run in the child before exec (signal dispositions, limits)
        self.proc = None
        self.address = None
        self.log_path = None

    def _args(self, port, metrics_port):
        args = [env("TK_IT_SEATCORED"), "--listen", f"127.0.0.1:{port}",
                "--metrics-listen", f"127.0.0.1:{metrics_port}",
                "--token-key-file", env("TK_IT_TOKEN_KEY"), "--grace-ms", str(self.grace_ms),
                "--events-max", "256", "--log-level", "warn"]
        args += ["--data-dir", self.data_dir] if self.data_dir else ["--memory"]
        return args + self.extra

    def start(self, timeout_s=15.0):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        work = env("TK_IT_WORK")
        os.makedirs(os.path.join(work, "logs"), exist_ok=True)
        for attempt in range(3):  # a free port can be taken before we bind it: try others
            port, metrics_port = subprocess.check_output([env("TK_IT_FREE_PORT"), "2"], text=True).split()
            self.log_path = os.path.join(work, "logs", f"{self.name}-{next(self._serial)}.log")
            # only the flags count: no inherited SEATCORED_* setting (e.g. a shard list) reaches it
            clean_env = {k: v for k, v in os.environ.items() if not k.startswith("SEATCORED_")}
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(self._args(port, metrics_port), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True, env=clean_env,
                                             preexec_fn=self.preexec)
            with open(os.path.join(work, "daemon.pids"), "a") as pids:
                pids.write(f"{self.proc.pid}\n")
            self.address = f"127.0.0.1:{port}"
            if self._wait_serving(timeout_s):
                return self
            if self.proc.poll() is None:
                break
        self.kill()
        raise AssertionError(f"{self.name}: seatcored did not become SERVING; log {self.log_path}:\n{self.log_tail()}")

    def _wait_serving(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            # a fresh channel each time: one that failed to connect backs off for seconds
            client = Client(self.address)
            try:
                if health_status(client, timeout=0.5) == health_pb2.HealthCheckResponse.SERVING:
                    return True
            finally:
                client.close()
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, then reap."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def terminate(self, timeout_s=None):
        """SIGTERM; returns (exit status, seconds it took). SIGKILL if it overstays timeout_s."""
        timeout_s = timeout_s if timeout_s is not None else self.grace_ms / 1000.0 + 10
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        return rc, time.monotonic() - started

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"


# ---------------------------------------------------------------------------------------------
# Runner: verbose unittest output, counts for the `run` script's closing line
# ---------------------------------------------------------------------------------------------
class TimedResult(unittest.TextTestResult):
    """Remembers how long each test took (the slowest are listed at the end)."""

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.durations = getattr(self, "durations", [])
        self.durations.append((time.monotonic() - self._started, test.id()))


def main(argv):
    counts_file = None
    names = []
    args = iter(argv)
    for arg in args:
        if arg == "--counts":
            counts_file = next(args)
        else:
            names.append(arg)
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=TimedResult).run(suite)
    slowest = sorted(getattr(result, "durations", []), reverse=True)[:6]
    if slowest:
        print("slowest: " + ", ".join(f"{name.split('.', 1)[-1]} {seconds:.1f}s" for seconds, name in slowest))
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped) - len(result.expectedFailures)
    if result.expectedFailures:
        print(f"known bugs (expected failures, see the docstrings): {len(result.expectedFailures)}")
        for test, _ in result.expectedFailures:
            print(f"  {test.id()}: {(test._testMethodDoc or '').strip()}")
    if result.unexpectedSuccesses:
        print("unexpected successes (a known bug seems fixed: remove its @known_bug marker):")
        for test in result.unexpectedSuccesses:
            print(f"  {test.id()}")
    if counts_file:
        with open(counts_file, "w") as f:
            f.write(f"{passed} {failed}\n")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
