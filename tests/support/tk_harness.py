"""tk_harness.py — what the Python harnesses of the integration suites share.

Each suite under tests/integration/<service>/ has a harness.py with what is particular to its
service (its clients, fixtures, the daemons it owns); the logic they all need is here, once, so
that a fix (a probe that must not wait out gRPC's reconnect backoff, a port lost to a race) reaches
every suite. A harness puts this folder on sys.path and imports from it; the names it re-exports
stay reachable as harness.<name>, which is what the test modules use.

Independent clients only, like the harnesses: Debian's python3-grpcio with the stubs each `run`
script generates from proto/ (on PYTHONPATH: common_pb2, health_pb2), urllib for /metrics,
tools/free-port for ports. Nothing here links the project's C code.

The `run` scripts (bash) call it as a program for the steps they share:
  tk_harness.py protoc GEN_DIR PROTO...       the Python stubs of PROTO... (and health.proto)
  tk_harness.py wait-serving ADDR PID SECONDS exit 0 once ADDR reports SERVING, 1 if PID died first
  tk_harness.py sanitizer-scan LOG...         print each sanitizer/assertion report, exit 1 if any
"""
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse
import urllib.request
import uuid

import grpc

# The generated stubs (common_pb2, health_pb2) are imported where they are used: `protoc` below
# runs before they exist.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FREE_PORT = os.path.join(ROOT, "tools", "free-port")
ERROR_TRAILER = "tiketi-error-bin"
# While a daemon comes up, each probe uses a fresh channel with its own subchannel: a shared one
# would wait out gRPC's reconnect backoff (1 s, 1.6 s, ...) after the first refused connection.
PROBE_CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
C = grpc.StatusCode


# ---------------------------------------------------------------------------------------------
# Environment, names, waiting
# ---------------------------------------------------------------------------------------------
def env_reader(run_script, empty_ok=False):
    """An env(name, default=None) for one suite: its `run` script passes everything through the
    environment, and a test started by hand without it is skipped with a hint, not failed.
    empty_ok keeps a variable set to "" (the edge passes empty lists that way)."""

    def env(name, default=None):
        value = os.environ.get(name, default)
        if value is None or (value == "" and not empty_ok):
            raise unittest.SkipTest(f"{name} is not set (run the suite through {run_script})")
        return value

    return env


def new_key(prefix="it"):
    """A fresh idempotency key: a retry that must be recognised reuses the key it was given."""
    return f"{prefix}-{uuid.uuid4()}"


def wait_for(predicate, seconds, step=0.05):
    """Calls predicate until it returns a true value or seconds pass; returns its last value
    (asked once more at the end, so a slow machine does not lose a result that just arrived)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# ---------------------------------------------------------------------------------------------
# Calls: one Result per unary call, with the error detail the services put in the trailer
# ---------------------------------------------------------------------------------------------
class Result:
    """The outcome of one unary call: the reply, or the status with its decoded ErrorDetail.
    Tests assert on it instead of catching grpc.RpcError, so a failure message shows everything."""

    def __init__(self, reply=None, code=C.OK, details="", detail=None, elapsed=0.0):
        self.reply = reply
        self.code = code
        self.details = details
        self.detail = detail  # common_pb2.ErrorDetail from the tiketi-error-bin trailer, or None
        self.elapsed = elapsed

    @property
    def ok(self):
        return self.code == C.OK

    @property
    def error_code(self):
        return self.detail.code if self.detail is not None else ""

    def __str__(self):
        if self.ok:
            reply = str(self.reply).replace("\n", " ").strip()
            return f"OK {reply[:300]}" if reply else "OK"
        text = f"{self.code.name} '{self.details}'"
        if self.detail is not None:
            text += f" [detail code={self.detail.code!r}"
            if self.detail.unavailable_seats:
                text += f" unavailable={list(self.detail.unavailable_seats)}"
            text += "]"
        else:
            text += f" [no {ERROR_TRAILER} trailer]"
        return text + f" after {self.elapsed:.2f}s"


def error_detail(err):
    """Decodes the tiketi-error-bin trailer of a failed call (None if absent): the machine code
    a client acts on, which the status code alone does not carry."""
    from tiketi.v1 import common_pb2

    for key, value in err.trailing_metadata() or ():
        if key == ERROR_TRAILER:
            return common_pb2.ErrorDetail.FromString(value)
    return None


def rpc(method, request, timeout):
    """Calls a unary method (a stub attribute or a raw multicallable) and returns a Result; each
    suite wraps it with its own default timeout."""
    started = time.monotonic()
    try:
        reply = method(request, timeout=timeout)
        return Result(reply=reply, elapsed=time.monotonic() - started)
    except grpc.RpcError as err:
        return Result(code=err.code(), details=err.details() or "", detail=error_detail(err),
                      elapsed=time.monotonic() - started)


def rpc_with_timeout(default_timeout):
    """rpc() with a suite's default deadline: a service that calls others behind it (reservation
    -> seatcored, payment) needs a longer one than the engine."""

    def call(method, request, timeout=default_timeout):
        return rpc(method, request, timeout)

    return call


class Client:
    """A channel to one daemon with its service's stub (stub_class) and a Health stub."""

    def __init__(self, address, stub_class, options=None):
        import health_pb2_grpc

        self.address = address
        self.channel = grpc.insecure_channel(address, options=options)
        self.stub = stub_class(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def close(self):
        self.channel.close()


def health_serving(address, timeout=0.5):
    """One grpc.health.v1 probe on a fresh channel (see PROBE_CHANNEL_OPTIONS): True if SERVING."""
    import health_pb2
    import health_pb2_grpc

    channel = grpc.insecure_channel(address, options=PROBE_CHANNEL_OPTIONS)
    try:
        result = rpc(health_pb2_grpc.HealthStub(channel).Check, health_pb2.HealthCheckRequest(), timeout)
    finally:
        channel.close()
    return result.ok and result.reply.status == health_pb2.HealthCheckResponse.SERVING


def wait_serving(address, alive, timeout_s):
    """Probes until the daemon at address reports SERVING (True), it dies (alive() is false) or
    timeout_s pass: a daemon that exits at start-up fails at once rather than after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        if health_serving(address):
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------
# Shard routing: the same jump hash as rpc_router.c and seatcored (tk_hash_u64, then the jump
# consistent hash of Lamping & Veach 2014), written again from the paper so that a disagreement
# with the C code shows up as a test that reaches the wrong shard
# ---------------------------------------------------------------------------------------------
MASK64 = (1 << 64) - 1


def tk_hash_u64(x):
    """splitmix64's finaliser, as seatcore's tk_hash_u64: event ids are dense, the hash spreads them."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK64
    x ^= x >> 31
    return x


def jump_hash(key, buckets):
    """Jump consistent hash: the bucket of key among buckets (few keys move when one is added)."""
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & MASK64
        j = int(float(b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def shard_of(event_id, shard_count):
    """The index of the seatcored shard that owns event_id (the others refuse it)."""
    return jump_hash(tk_hash_u64(int(event_id)), shard_count)


def decode_states(states, capacity):
    """The 2-bit seat states of an Availability (seat i in bits 2*(i%4) of byte i/4): 0 free,
    1 held, 2 sold."""
    return [(states[i >> 2] >> ((i & 3) * 2)) & 3 for i in range(capacity)]


# ---------------------------------------------------------------------------------------------
# /metrics (Prometheus text format)
# ---------------------------------------------------------------------------------------------
def metrics_text(address, timeout=5):
    """The text of GET /metrics from host:port or http://host:port: the tests read counters from
    outside, the way Prometheus does."""
    base = address if address.startswith("http") else f"http://{address}"
    with urllib.request.urlopen(f"{base.rstrip('/')}/metrics", timeout=timeout) as reply:
        return reply.read().decode()


def parse_metrics(text):
    """{sample: value}, the sample with its labels as written (name or name{a="b",...})."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def metric_value(text, name, **labels):
    """The value of one sample whose labels are exactly those given (in any order), or None."""
    want = {k: str(v) for k, v in labels.items()}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        if sample != name:
            continue
        found = {}
        for part in label_text.rstrip("}").split(","):
            if "=" in part:
                k, _, v = part.partition("=")
                found[k] = v.strip('"')
        if found == want:
            return float(value)
    return None


# ---------------------------------------------------------------------------------------------
# Processes: ports, pids, start, stop, logs
# ---------------------------------------------------------------------------------------------
def free_ports(count):
    """count loopback ports free right now (tools/free-port's bind probe). Another process can
    still take one before the daemon binds it: callers retry with new ports."""
    out = subprocess.run([FREE_PORT, str(count)], capture_output=True, text=True, check=True).stdout
    return [int(port) for port in out.split()]


def pid_alive(pid):
    """The process exists and is not a zombie (a dead child we have not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def port_open(address, timeout=0.5):
    """Something accepts TCP connections on host:port: checked before a daemon's first gRPC call,
    because a channel that found nobody listening backs off for a second or more."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def note_pid(work, pid):
    """Adds pid to WORK/daemon.pids, from which the `run` script kills whatever a test left
    running, even when the test died half-way."""
    with open(os.path.join(work, "daemon.pids"), "a") as pids:
        pids.write(f"{pid}\n")


def spawn(argv, log_path, work, **popen):
    """Starts a daemon with stdout and stderr appended to log_path (stdin from /dev/null unless
    given) and notes its pid for the final cleanup; returns the Popen."""
    popen.setdefault("stdin", subprocess.DEVNULL)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **popen)
    note_pid(work, proc.pid)
    return proc


def terminate(proc, timeout_s):
    """SIGTERM and wait: the exit status, or None when it overstayed timeout_s and was killed
    (a clean stop on SIGTERM is part of what the suites check)."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def log_tail(path, lines=20):
    """The last lines of a daemon's log, for the message of a test that failed because of it."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


class Daemon:
    """A daemon a test starts for itself on free loopback ports (gRPC + /metrics), in its own
    session, logging to WORK/logs/NAME-N.log. Subclasses give the command line (command()) and
    where the suite's temp dir is (work()); start() retries with other ports when one was taken."""

    program = "daemon"
    _serial = itertools.count(1)

    def __init__(self, name, preexec_fn=None):
        self.name = name
        self.preexec_fn = preexec_fn  # run in the child before exec (signal dispositions, limits)
        self.proc = self.address = self.metrics_address = self.log_path = None

    def work(self):
        raise NotImplementedError

    def command(self, port, metrics_port):
        raise NotImplementedError

    def child_env(self):
        return None  # inherit

    def start(self, timeout_s=15.0):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        logs = os.path.join(self.work(), "logs")
        os.makedirs(logs, exist_ok=True)
        for _ in range(3):  # a probed port can be taken before we bind it: try others
            port, metrics_port = free_ports(2)
            self.log_path = os.path.join(logs, f"{self.name}-{next(self._serial)}.log")
            self.proc = spawn(self.command(port, metrics_port), self.log_path, self.work(), start_new_session=True,
                              env=self.child_env(), preexec_fn=self.preexec_fn)
            self.address, self.metrics_address = f"127.0.0.1:{port}", f"127.0.0.1:{metrics_port}"
            if wait_serving(self.address, self.alive, timeout_s):
                return self
            if self.proc.poll() is None:
                break
        self.kill()
        raise AssertionError(f"{self.name}: {self.program} did not become SERVING; log {self.log_path}:\n"
                             f"{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, then reap."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def terminate(self, timeout_s=15.0):
        """SIGTERM; returns (exit status, seconds it took). SIGKILL if it overstays timeout_s."""
        started = time.monotonic()
        rc = terminate(self.proc, timeout_s)
        return rc, time.monotonic() - started

    def log_tail(self, lines=20):
        return log_tail(self.log_path, lines)


# ---------------------------------------------------------------------------------------------
# Test cases and the runner
# ---------------------------------------------------------------------------------------------
class ServiceTestCase(unittest.TestCase):
    """Assertions on Results that put the call's status and error detail in the failure message."""

    maxDiff = 4000
    poll_interval_s = 0.05

    def assertOk(self, result, what=""):
        if not result.ok:
            self.fail(f"{what or 'call'}: expected OK, got {result}")
        return result.reply

    def assertFails(self, result, code, error_code=None, what="", mentions=None):
        label = what or "call"
        if result.code != code:
            self.fail(f"{label}: expected {code.name}{f' ({error_code})' if error_code else ''}, got {result}")
        if error_code is not None:
            self.assertIsNotNone(result.detail, f"{label}: {code.name} without a {ERROR_TRAILER} trailer")
            self.assertEqual(result.detail.code, error_code, f"{label}: wrong machine code in the trailer: {result}")
        if mentions is not None:
            self.assertIn(mentions, result.details, f"{label}: the message should name {mentions!r}")
        return result

    def poll(self, fn, timeout_s, interval_s=None, what="condition"):
        """Calls fn() until it returns a true value (returned); fails after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = fn()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail(f"{what}: not reached within {timeout_s}s")
            time.sleep(self.poll_interval_s if interval_s is None else interval_s)


class TimedResult(unittest.TextTestResult):
    """Remembers how long each test took (self.durations), so that the slowest can be listed."""

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def took(self):
        return time.monotonic() - self._started

    def stopTest(self, test):
        super().stopTest(test)
        self.durations = getattr(self, "durations", [])
        self.durations.append((self.took(), test.id()))


def runner_args(argv):
    """`harness.py [--counts FILE] NAME...` -> (FILE or None, [NAME...])."""
    counts_file, names = None, []
    args = iter(argv)
    for arg in args:
        if arg == "--counts":
            counts_file = next(args)
        else:
            names.append(arg)
    return counts_file, names


def run_tests(names, resultclass=TimedResult):
    """Runs test modules / classes / tests by name, verbosely on stdout; returns the result."""
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    return unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=resultclass).run(suite)


def tally(result):
    """(passed, failed, skipped): an unexpected success fails (its known-bug marker is stale), an
    expected failure neither passes nor fails."""
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    return result.testsRun - failed - skipped - len(result.expectedFailures), failed, skipped


def print_slowest(result, count=6):
    slowest = sorted(getattr(result, "durations", []), reverse=True)[:count]
    if slowest:
        print("slowest: " + ", ".join(f"{name.split('.', 1)[-1]} {seconds:.1f}s" for seconds, name in slowest))


def write_counts(counts_file, *numbers):
    """The line the `run` script reads for its closing "N passed, M failed"."""
    if counts_file:
        with open(counts_file, "w") as f:
            f.write(" ".join(str(n) for n in numbers) + "\n")


# ---------------------------------------------------------------------------------------------
# HTTP answers (the edge's clients: tests/integration/edge, tests/security)
# ---------------------------------------------------------------------------------------------
class Response:
    """One HTTP answer as the tests look at it: status, lower-cased headers, raw body."""

    def __init__(self, status, headers, body, method, path):
        self.status, self.headers, self.body, self.method, self.path = status, headers, body, method, path

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"{self.method} {self.path} -> {self.status} {self.body[:300]!r}"


def http_request(base, method, path, body=None, token=None, headers=None, raw=None, timeout=15, source=None):
    """One request on a fresh connection (from address source, default any); body is
    JSON-encoded, raw is sent as it is; token becomes a Bearer Authorization header."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    payload = raw
    if body is not None:
        payload = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=payload, headers=all_headers)
        reply = conn.getresponse()
        data = reply.read()
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, data, method, path)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# The steps the `run` scripts share (tk_harness.py COMMAND ARGS...)
# ---------------------------------------------------------------------------------------------
SANITIZER_PATTERN = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|runtime error:"
                               r"|assertion failed"
                               # glibc assert() in a library (h2o): "prog: file:line: fn: Assertion `x' failed."
                               r"|: Assertion `.*' failed")


def generate_stubs(gen_dir, protos):
    """Python stubs of protos (paths under proto/) into gen_dir, for clients the project did not
    write. health.proto is compiled from gen_dir's root (module health_pb2): a grpc/health/v1
    package path would shadow the installed grpc package. Returns protoc's exit status."""
    os.makedirs(gen_dir, exist_ok=True)
    shutil.copy(os.path.join(ROOT, "proto", "grpc", "health", "v1", "health.proto"), gen_dir)
    done = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT}/proto", f"-I{gen_dir}",
                           f"--python_out={gen_dir}", f"--grpc_python_out={gen_dir}", *protos, "health.proto"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.stdout.write(done.stdout + done.stderr)
    return done.returncode


def sanitizer_reports(log_paths, matches_max=5, context_lines=15):
    """{log name: report text} for the logs holding an ASan/LSan/TSan/UBSan report or a failed
    assertion (each report: its first matches_max matching lines and context_lines after each).
    A daemon that survived its tests can still have hit undefined behaviour or leaked on the way."""
    reports = {}
    for path in log_paths:
        try:
            with open(path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            continue  # a glob that matched nothing
        shown, matches = [], 0
        for i, line in enumerate(lines):
            if matches < matches_max and SANITIZER_PATTERN.search(line):
                matches += 1
                shown.extend(range(max(i, shown[-1] + 1 if shown else 0), min(len(lines), i + 1 + context_lines)))
        if matches:
            reports[os.path.basename(path)] = "\n".join(lines[i] for i in shown)
    return reports


def main(argv):
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "protoc" and len(args) >= 2:
        return generate_stubs(args[0], args[1:])
    if command == "wait-serving" and len(args) == 3:
        address, pid, seconds = args[0], int(args[1]), float(args[2])
        return 0 if wait_serving(address, lambda: pid_alive(pid), seconds) else 1
    if command == "sanitizer-scan":
        reports = sanitizer_reports(args)
        for name, text in reports.items():
            print(f"--- report in {name} ---\n{text}")
        return 1 if reports else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
