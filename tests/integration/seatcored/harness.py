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
import sys
import time
import unittest

import health_pb2
from tiketi.v1 import seatcore_pb2 as pb
from tiketi.v1 import seatcore_pb2_grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import tk_harness  # noqa: E402  (tests/support, on the path just above)
from tk_harness import decode_states  # noqa: E402,F401  (the tests import it from here)

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


env = tk_harness.env_reader("tests/integration/seatcored/run")


# ---------------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------------
rpc = tk_harness.rpc_with_timeout(RPC_TIMEOUT_S)  # a stub attribute or a raw multicallable -> Result


class Client(tk_harness.Client):
    def __init__(self, address):
        super().__init__(address, seatcore_pb2_grpc.SeatCoreStub)

    def raw_unary(self, method, service=SERVICE):
        """A multicallable that sends and returns raw bytes (no serialisation)."""
        return self.channel.unary_unary(f"/{service}/{method}")

    def raw_stream(self, method, service=SERVICE):
        return self.channel.unary_stream(f"/{service}/{method}")


def health_status(client, service="", timeout=1.0):
    result = rpc(client.health.Check, health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return result.reply.status if result.ok else None


# ---------------------------------------------------------------------------------------------
# Seat maps
# ---------------------------------------------------------------------------------------------
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


class SeatcoreTestCase(tk_harness.ServiceTestCase):
    """Talks to the shared memory-mode daemon at TK_IT_ADDR."""

    @classmethod
    def setUpClass(cls):
        cls.client = Client(env("TK_IT_ADDR"))
        cls.stub = cls.client.stub

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

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


# ---------------------------------------------------------------------------------------------
# Daemons started by the tests themselves (durability)
# ---------------------------------------------------------------------------------------------
class Daemon(tk_harness.Daemon):
    """One seatcored process on free loopback ports. Its pid goes to TK_IT_WORK/daemon.pids
    so that the `run` script stops it even if a test dies half-way."""

    program = "seatcored"

    def __init__(self, name, data_dir=None, grace_ms=3000, extra=(), preexec=None):
        super().__init__(name, preexec_fn=preexec)
        self.data_dir = data_dir
        self.grace_ms = grace_ms
        self.extra = list(extra)

    def work(self):
        return env("TK_IT_WORK")

    def command(self, port, metrics_port):
        args = [env("TK_IT_SEATCORED"), "--listen", f"127.0.0.1:{port}",
                "--metrics-listen", f"127.0.0.1:{metrics_port}",
                "--token-key-file", env("TK_IT_TOKEN_KEY"), "--grace-ms", str(self.grace_ms),
                "--events-max", "256", "--log-level", "warn"]
        args += ["--data-dir", self.data_dir] if self.data_dir else ["--memory"]
        return args + self.extra

    def child_env(self):
        # only the flags count: no inherited SEATCORED_* setting (e.g. a shard list) reaches it
        return {k: v for k, v in os.environ.items() if not k.startswith("SEATCORED_")}

    def terminate(self, timeout_s=None):
        """SIGTERM; returns (exit status, seconds it took). SIGKILL if it overstays timeout_s."""
        return super().terminate(timeout_s if timeout_s is not None else self.grace_ms / 1000.0 + 10)


# ---------------------------------------------------------------------------------------------
# Runner: verbose unittest output, counts for the `run` script's closing line
# ---------------------------------------------------------------------------------------------
def main(argv):
    counts_file, names = tk_harness.runner_args(argv)
    result = tk_harness.run_tests(names)
    tk_harness.print_slowest(result)
    passed, failed, _ = tk_harness.tally(result)
    if result.expectedFailures:
        print(f"known bugs (expected failures, see the docstrings): {len(result.expectedFailures)}")
        for test, _ in result.expectedFailures:
            print(f"  {test.id()}: {(test._testMethodDoc or '').strip()}")
    if result.unexpectedSuccesses:
        print("unexpected successes (a known bug seems fixed: remove its @known_bug marker):")
        for test in result.unexpectedSuccesses:
            print(f"  {test.id()}")
    tk_harness.write_counts(counts_file, passed, failed)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
