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

import grpc

from tiketi.v1 import event_pb2 as ev
from tiketi.v1 import event_pb2_grpc
from tiketi.v1 import seatcore_pb2 as sc
from tiketi.v1 import seatcore_pb2_grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import tk_harness  # noqa: E402  (tests/support, on the path just above)
from tk_harness import shard_of  # noqa: E402  (the tests import it from here too)

RPC_TIMEOUT_S = 10.0
MAX_MESSAGE = 64 << 20
C = grpc.StatusCode
FREE, HELD, SOLD = 0, 1, 2

_names = itertools.count(1)
RUN_TAG = f"r{os.getpid()}"


env = tk_harness.env_reader("tests/integration/event/run")


def unique(word):
    """A word no other test's names contain (search tests rely on it)."""
    return f"{word}{RUN_TAG}x{next(_names)}"


# ---------------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------------
rpc = tk_harness.rpc_with_timeout(RPC_TIMEOUT_S)


def channel(address):
    return grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                                   ("grpc.max_send_message_length", MAX_MESSAGE)])


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
    samples = tk_harness.parse_metrics(tk_harness.metrics_text(env("EVENT_METRICS")))
    return {name: value for name, value in samples.items() if "{" not in name}


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
        self.proc = tk_harness.spawn(args, os.path.join(work, "logs", f"{self.name}.log"), work)
        with open(os.path.join(work, "run", f"{self.name}.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")
        if not tk_harness.wait_serving(self.address, lambda: tk_harness.pid_alive(self.proc.pid), timeout_s):
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
        while tk_harness.pid_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"{self.name} did not stop within {timeout_s}s")
            time.sleep(0.05)
        return None


# ---------------------------------------------------------------------------------------------
# Test cases
# ---------------------------------------------------------------------------------------------
def section(name="A", rows=2, seats_per_row=5, price_cents=1000):
    return ev.SectionSpec(name=name, rows=rows, seats_per_row=seats_per_row, price_cents=price_cents)


class EventsTestCase(tk_harness.ServiceTestCase):
    poll_interval_s = 0.1

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


# ---------------------------------------------------------------------------------------------
# Runner: verbose unittest output, counts for the `run` script's closing line
# ---------------------------------------------------------------------------------------------
def main(argv):
    counts_file, names = tk_harness.runner_args(argv)
    result = tk_harness.run_tests(names)
    tk_harness.print_slowest(result)
    passed, failed, _ = tk_harness.tally(result)
    tk_harness.write_counts(counts_file, passed, failed)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
