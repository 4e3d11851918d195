"""harness.py — shared helpers of the event-svc integration suite.

An independent client: Debian's python3-grpcio with stubs generated from proto/ by
grpc_tools.protoc (the `run` script puts them on PYTHONPATH), psql for the database and
redis-cli for the cache. Nothing here links the project's C code.

Environment (set by `run`):
  EVENT_ADDR        host:port of event-svc          EVENT_METRICS  its /metrics host:port
  EVENT_SHARDS      the seatcored shard list, in order (comma-separated)
  EVENT_PG_URL      the PostgreSQL URL              EVENT_REDIS_PORT  the Redis port
  EVENT_WORK        the suite's work dir: cmd/NAME.args (daemon command lines), run/NAME.pid,
                    logs/NAME.log, daemon.pids (every pid started, for the final cleanup)

Run `harness.py --counts FILE MODULE...` to run test modules and write "passed failed".
"""
import itertools
import os
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

import grpc

import health_pb2
import health_pb2_grpc
from tiketi.v1 import common_pb2
from tiketi.v1 import event_pb2 as ev
from tiketi.v1 import event_pb2_grpc
from tiketi.v1 import seatcore_pb2 as sc
from tiketi.v1 import seatcore_pb2_grpc

ERROR_TRAILER = "tiketi-error-bin"
RPC_TIMEOUT_S = 10.0
MAX_MESSAGE = 64 << 20
C = grpc.StatusCode
FREE, HELD, SOLD = 0, 1, 2

_names = itertools.count(1)
RUN_TAG = f"r{os.getpid()}"


def env(name):
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest(f"{name} is not set (run the suite through tests/integration/event/run)")
    return value


def unique(word):
    """A word no other test's names contain (search tests rely on it)."""
    return f"{word}{RUN_TAG}x{next(_names)}"


# ---------------------------------------------------------------------------------------------
# Routing: the same jump hash as rpc_router.c / seatcored (tk_hash_u64 then jump consistent hash)
# ---------------------------------------------------------------------------------------------
MASK = (1 << 64) - 1


def tk_hash_u64(x):
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    x ^= x >> 31
    return x


def jump_hash(key, buckets):
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & MASK
        j = int(float(b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def shard_of(event_id, shards):
    return jump_hash(tk_hash_u64(int(event_id)), shards)


# ---------------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------------
class Result:
    def __init__(self, reply=None, code=C.OK, details="", detail=None):
        self.reply, self.code, self.details, self.detail = reply, code, details, detail

    @property
    def ok(self):
        return self.code == C.OK

    def __str__(self):
        if self.ok:
            return "OK"
        text = f"{self.code.name} '{self.details}'"
        return text + (f" [detail code={self.detail.code!r}]" if self.detail else " [no tiketi-error-bin trailer]")


def rpc(method, request, timeout=RPC_TIMEOUT_S):
    try:
        return Result(reply=method(request, timeout=timeout))
    except grpc.RpcError as err:
        detail = None
        for key, value in err.trailing_metadata() or ():
            if key == ERROR_TRAILER:
                detail = common_pb2.ErrorDetail.FromString(value)
        return Result(code=err.code(), details=err.details() or "", detail=detail)


def channel(address):
    return grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                                   ("grpc.max_send_message_length", MAX_MESSAGE)])


def decode_states(states, capacity):
    return [(states[i >> 2] >> ((i & 3) * 2)) & 3 for i in range(capacity)]


# ---------------------------------------------------------------------------------------------
# PostgreSQL, Redis, metrics
# ---------------------------------------------------------------------------------------------
def psql(sql, **variables):
    """Runs SQL through psql (stdin, so :'name' variables are quoted by psql); rows as lists."""
    args = ["psql", env("EVENT_PG_URL"), "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1"]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    out = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"psql failed: {out.stderr.strip()}\n{sql}")
    return [line.split("\x1f") for line in out.stdout.splitlines() if line != ""]


def psql_value(sql, **variables):
    rows = psql(sql, **variables)
    return rows[0][0] if rows else None


def redis(*args):
    """redis-cli's answer as text (binary values: bytes.decode with replacement characters)."""
    out = subprocess.run(["redis-cli", "-p", env("EVENT_REDIS_PORT"), "--raw", *args], capture_output=True,
                         timeout=10)
    if out.returncode != 0:
        raise AssertionError(f"redis-cli {args}: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout.decode(errors="replace").strip()


def metrics():
    """event-svc's /metrics as {name: value} (samples without labels)."""
    with urllib.request.urlopen(f"http://{env('EVENT_METRICS')}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            values[name] = float(value)
    return values


def admin_user():
    """The id of an admin user (made once per database)."""
    rows = psql("SELECT id FROM users WHERE email = 'event-it-admin@tiketi.test'")
    if rows:
        return rows[0][0]
    return psql("INSERT INTO users (email, name, password_hash, role) "
                "VALUES ('event-it-admin@tiketi.test', 'Admin', 'not-a-hash', 'admin') RETURNING id")[0][0]


def insert_pending_event(name, rows=2, seats_per_row=3, event_id=None):
    """What a CreateEvent that crashed before the engine call leaves: a 'pending' event with its
    sections and seats, written as event-svc writes them. Returns the id."""
    shards = len(env("EVENT_SHARDS").split(","))
    if event_id is None:
        event_id = int(psql_value("SELECT nextval('event_ids')"))
    psql("""BEGIN;
INSERT INTO venues (name) VALUES ('Crash Hall') ON CONFLICT (name) DO NOTHING;
INSERT INTO events (id, name, venue_id, starts_at, sale_opens_at, engine_state, shard, capacity, hold_ttl_s,
                    max_seats_per_user)
     SELECT :'id', :'name', v.id, '2033-01-01T20:00:00Z', '2020-01-01T00:00:00Z', 'pending', :'shard',
            :'rows'::int * :'seats'::int, 300, 10 FROM venues v WHERE v.name = 'Crash Hall';
INSERT INTO sections (event_id, idx, name, rows, seats_per_row, price_cents, first_seat)
     VALUES (:'id', 0, 'A', :'rows', :'seats', 1000, 0);
INSERT INTO seats (event_id, seat, section_idx, row_number, seat_number, label, price_cents)
     SELECT :'id', (r - 1) * :'seats'::int + (c - 1), 0, r, c, 'A-' || r || '-' || c, 1000
       FROM generate_series(1, :'rows'::int) r, generate_series(1, :'seats'::int) c;
COMMIT;""", id=event_id, name=name, shard=shard_of(event_id, shards), rows=rows, seats=seats_per_row)
    return event_id


# ---------------------------------------------------------------------------------------------
# Daemons: started again from the command lines `run` wrote
# ---------------------------------------------------------------------------------------------
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Daemon:
    def __init__(self, name, address):
        self.name, self.address = name, address
        self.proc = None  # set when this process started it (then we can read its exit status)

    def pid(self):
        with open(os.path.join(env("EVENT_WORK"), "run", f"{self.name}.pid")) as f:
            return int(f.read().strip())

    def start(self, timeout_s=20.0):
        work = env("EVENT_WORK")
        with open(os.path.join(work, "cmd", f"{self.name}.args")) as f:
            args = [line.rstrip("\n") for line in f if line.rstrip("\n")]
        with open(os.path.join(work, "logs", f"{self.name}.log"), "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with open(os.path.join(work, "daemon.pids"), "a") as pids:
            pids.write(f"{self.proc.pid}\n")
        with open(os.path.join(work, "run", f"{self.name}.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")
        if not wait_serving(self.address, self.proc.pid, timeout_s):
            raise AssertionError(f"{self.name} did not become SERVING again")
        return self

    def stop(self, sig=signal.SIGTERM, timeout_s=15.0):
        """Signals the current process and waits for it; its exit status if we started it."""
        pid = self.pid()
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        if self.proc is not None and self.proc.pid == pid:
            try:
                return self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError(f"{self.name} did not stop within {timeout_s}s")
        while alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"{self.name} did not stop within {timeout_s}s")
            time.sleep(0.05)
        return None


def wait_serving(address, pid, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive(pid):
        ch = grpc.insecure_channel(address)  # a fresh channel: a failed one backs off for seconds
        try:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return True
        except grpc.RpcError:
            pass
        finally:
            ch.close()
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------
# Test cases
# ---------------------------------------------------------------------------------------------
def section(name="A", rows=2, seats_per_row=5, price_cents=1000):
    return ev.SectionSpec(name=name, rows=rows, seats_per_row=seats_per_row, price_cents=price_cents)


class EventsTestCase(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.shard_addresses = env("EVENT_SHARDS").split(",")
        cls.connect()
        cls.admin = admin_user()

    @classmethod
    def connect(cls):
        cls.channel = channel(env("EVENT_ADDR"))
        cls.events = event_pb2_grpc.EventsStub(cls.channel)
        cls.shard_channels = [channel(a) for a in cls.shard_addresses]
        cls.shards = [seatcore_pb2_grpc.SeatCoreStub(ch) for ch in cls.shard_channels]

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        for ch in cls.shard_channels:
            ch.close()

    # -- assertions with the call's status and detail in the message --
    def assertOk(self, result, what=""):
        if not result.ok:
            self.fail(f"{what or 'call'}: expected OK, got {result}")
        return result.reply

    def assertFails(self, result, code, error_code=None, what="", mentions=None):
        label = what or "call"
        if result.code != code:
            self.fail(f"{label}: expected {code.name}, got {result}")
        if error_code is not None:
            self.assertIsNotNone(result.detail, f"{label}: no {ERROR_TRAILER} trailer")
            self.assertEqual(result.detail.code, error_code, f"{label}: machine code: {result}")
        if mentions is not None:
            self.assertIn(mentions, result.details, f"{label}: the message should name {mentions!r}")
        return result

    # -- shortcuts --
    def request(self, name=None, sections=None, **fields):
        fields.setdefault("venue", "Test Hall")
        fields.setdefault("starts_at", "2031-06-01T20:00:00Z")
        fields.setdefault("sale_opens_at", "2020-01-01T10:00:00Z")  # on sale now: holds work
        fields.setdefault("admin_user_id", self.admin)
        return ev.CreateEventCatalogRequest(name=name or unique("Event"), sections=sections or [section()],
                                            **fields)

    def create(self, name=None, sections=None, **fields):
        request = self.request(name, sections, **fields)
        summary = self.assertOk(rpc(self.events.CreateEvent, request), f"CreateEvent {request.name!r}")
        self.assertEqual(summary.name, request.name)
        return summary

    def shard_index(self, event_id):
        return shard_of(event_id, len(self.shard_addresses))

    def engine(self, event_id):
        """The SeatCore stub of the shard that owns event_id."""
        return self.shards[self.shard_index(event_id)]

    def seat_map(self, event_id):
        return self.assertOk(rpc(self.events.GetSeatMap, ev.GetEventRequest(event_id=str(event_id))), "GetSeatMap")

    def hold(self, event_id, seats, user_id=7):
        return self.assertOk(rpc(self.engine(event_id).Hold,
                                 sc.HoldRequest(event_id=int(event_id), user_id=user_id, seats=seats,
                                                idempotency_key=unique("hold"))), "engine Hold")

    def catalog_row(self, event_id):
        rows = psql("SELECT engine_state, shard, capacity, catalog_version FROM events WHERE id = :'id'",
                    id=event_id)
        return rows[0] if rows else None

    def poll(self, fn, timeout_s, interval_s=0.1, what="condition"):
        deadline = time.monotonic() + timeout_s
        while True:
            value = fn()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail(f"{what}: not reached within {timeout_s}s")
            time.sleep(interval_s)


# ---------------------------------------------------------------------------------------------
# Runner: verbose unittest output, counts for the `run` script's closing line
# ---------------------------------------------------------------------------------------------
class TimedResult(unittest.TextTestResult):
    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.durations = getattr(self, "durations", [])
        self.durations.append((time.monotonic() - self._started, test.id()))


def main(argv):
    counts_file, names = None, []
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
    if counts_file:
        with open(counts_file, "w") as f:
            f.write(f"{passed} {failed}\n")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
