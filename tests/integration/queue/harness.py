"""harness.py — shared helpers of the queue-svc integration suite.

Independent clients only: Debian's python3-grpcio with stubs generated from proto/ by
grpc_tools.protoc (the `run` script puts them on PYTHONPATH), python3-redis, and psql for the
catalog rows. Nothing here links the project's C code; the jump consistent hash that picks an
event's shard is written again below from its paper, so a disagreement with rpc_router shows up.

Environment (set by `run`):
  QUEUE_ADDR, QUEUE_METRICS   the shared queue-svc (gRPC, HTTP /metrics)
  QUEUE_BIN, QUEUE_FLAGS      the binary and the common flags (tests start their own replicas)
  SEATCORED_SHARDS            the two shards, in order
  REDIS_URL, PG_URL           Redis; the shared queue-svc's catalog
  PG_URL_REPLICAS             the catalog of the replicas the tests start
  QUEUE_WORK, FREE_PORT       the suite's temp dir (logs, daemon.pids); tools/free-port

Run `harness.py --counts FILE MODULE...` to run test modules and write "passed failed".
"""
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

import grpc
import redis

import health_pb2
import health_pb2_grpc
from tiketi.v1 import common_pb2
from tiketi.v1 import queue_pb2 as qpb
from tiketi.v1 import queue_pb2_grpc
from tiketi.v1 import seatcore_pb2 as pb
from tiketi.v1 import seatcore_pb2_grpc

ERROR_TRAILER = "tiketi-error-bin"
# While a daemon comes up, each probe uses a fresh channel with its own subchannel: a shared one
# would wait out gRPC's reconnect backoff (1 s, 1.6 s, ...) after the first refused connection.
PROBE_CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
RPC_TIMEOUT_S = 5.0
C = grpc.StatusCode

# Event ids unique within a run (and across runs sharing nothing, by the clock).
_event_ids = itertools.count((int(time.time()) % 100000) * 1000 + 1)


def next_event_id():
    return next(_event_ids)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest(f"{name} is not set (run the suite through tests/integration/queue/run)")
    return value


# ---------------------------------------------------------------------------------------------
# Shard choice: jump consistent hash (Lamping & Veach 2014) over splitmix64-finalised ids
# ---------------------------------------------------------------------------------------------
M64 = (1 << 64) - 1


def mix64(x):
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    x ^= x >> 31
    return x


def jump_hash(key, buckets):
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & M64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def shard_of(event_id, shard_count):
    return jump_hash(mix64(event_id), shard_count)


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


def error_detail(err):
    for key, value in err.trailing_metadata() or ():
        if key == ERROR_TRAILER:
            return common_pb2.ErrorDetail.FromString(value)
    return None


def rpc(method, request, timeout=RPC_TIMEOUT_S):
    try:
        return Result(reply=method(request, timeout=timeout))
    except grpc.RpcError as err:
        return Result(code=err.code(), details=err.details() or "", detail=error_detail(err))


def metrics(address):
    """The Prometheus text of a daemon's /metrics as {name{labels}: value}."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


# ---------------------------------------------------------------------------------------------
# The feed: a Redis subscriber collecting (arrival time, message) in a thread
# ---------------------------------------------------------------------------------------------
class Feed:
    def __init__(self, event_id):
        self.event_id = event_id
        self.channel = f"tiketi:queue:{event_id}"
        self.client = redis.Redis.from_url(env("REDIS_URL"))
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(self.channel)
        self.messages = []  # (monotonic time, dict), in arrival order
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            message = self.pubsub.get_message(timeout=0.1)
            if message is None or message["type"] != "message":
                continue
            data = json.loads(message["data"])
            with self.lock:
                self.messages.append((time.monotonic(), data))
                self.arrived.notify_all()

    def snapshot(self, kind=None):
        with self.lock:
            return [(t, m) for t, m in self.messages if kind is None or m["type"] == kind]

    def wait_for(self, predicate, timeout_s, what):
        """Waits until predicate(list of messages) is true; returns the messages."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while True:
                msgs = [m for _, m in self.messages]
                if predicate(msgs):
                    return msgs
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"feed of event {self.event_id}: {what} not seen within {timeout_s}s; "
                                         f"last messages: {msgs[-5:]}")
                self.arrived.wait(min(left, 0.2))

    def close(self):
        self.stop = True
        self.thread.join(timeout=2)
        self.pubsub.close()
        self.client.close()


# ---------------------------------------------------------------------------------------------
# Test case base: clients for queue-svc, the shards, Redis and the catalog
# ---------------------------------------------------------------------------------------------
class QueueTestCase(unittest.TestCase):
    maxDiff = 4000
    catalog_url_env = "PG_URL"

    @classmethod
    def setUpClass(cls):
        cls.channel = grpc.insecure_channel(env("QUEUE_ADDR"))
        cls.room = queue_pb2_grpc.WaitingRoomStub(cls.channel)
        cls.shard_addresses = env("SEATCORED_SHARDS").split(",")
        cls.shard_channels = [grpc.insecure_channel(a) for a in cls.shard_addresses]
        cls.shards = [seatcore_pb2_grpc.SeatCoreStub(c) for c in cls.shard_channels]
        cls.redis = redis.Redis.from_url(env("REDIS_URL"))
        cls.feeds = []

    @classmethod
    def tearDownClass(cls):
        for feed in cls.feeds:
            feed.close()
        cls.channel.close()
        for c in cls.shard_channels:
            c.close()
        cls.redis.close()

    # -- assertions --
    def assertOk(self, result, what="call"):
        if not result.ok:
            self.fail(f"{what}: expected OK, got {result}")
        return result.reply

    def assertFails(self, result, code, error_code=None, what="call"):
        if result.code != code:
            self.fail(f"{what}: expected {code.name}{f' ({error_code})' if error_code else ''}, got {result}")
        if error_code is not None:
            self.assertIsNotNone(result.detail, f"{what}: {code.name} without a {ERROR_TRAILER} trailer")
            self.assertEqual(result.detail.code, error_code, f"{what}: wrong machine code: {result}")
        return result

    # -- the engine and the catalog --
    def engine(self, event_id):
        return self.shards[shard_of(event_id, len(self.shards))]

    def create_event(self, queue=True, admit_per_s=5, max_active=100, opens_in_s=0, catalog=True, **queue_fields):
        """A seatcored event on its owning shard (plus its catalog row): returns the event id."""
        event_id = next_event_id()
        owner = shard_of(event_id, len(self.shards))
        settings = pb.QueueSettings(enabled=queue, admit_per_s=admit_per_s, max_active=max_active, **queue_fields)
        request = pb.CreateEventRequest(event_id=event_id, sections=[pb.Section(name="A", rows=4, seats_per_row=10)],
                                        sale_opens_at_ms=int((time.time() + opens_in_s) * 1000) if opens_in_s else 0,
                                        queue=settings if queue else None)
        self.assertOk(rpc(self.shards[owner].CreateEvent, request), f"CreateEvent {event_id} on its shard {owner}")
        other = 1 - owner
        refused = rpc(self.shards[other].CreateEvent, request)
        self.assertFails(refused, C.FAILED_PRECONDITION, what=f"CreateEvent {event_id} on the other shard {other}")
        if catalog:
            self.catalog_insert(event_id, owner, queue, admit_per_s, max_active)
        return event_id

    def catalog_insert(self, event_id, shard, queue_enabled, admit_per_s, max_active, url_env=None):
        sql = (
            "INSERT INTO venues (name) VALUES ('queue-it hall') ON CONFLICT (name) DO NOTHING;"
            "INSERT INTO events (id, name, venue_id, starts_at, sale_opens_at, status, engine_state, shard, capacity,"
            " hold_ttl_s, max_seats_per_user, queue_enabled, admit_per_s, max_active)"
            f" SELECT {event_id}, 'queue-it {event_id}', id, now() + interval '1 day', now(), 'on_sale', 'ready',"
            f" {shard}, 40, 60, 10, {'true' if queue_enabled else 'false'}, {admit_per_s}, {max_active}"
            " FROM venues WHERE name = 'queue-it hall';")
        self.psql(sql, url_env)

    def catalog_close(self, event_id, url_env=None):
        """Marks the event closed in the catalog: the feed stops following it."""
        self.psql(f"UPDATE events SET status = 'closed' WHERE id = {event_id}", url_env)

    def psql(self, sql, url_env=None):
        url = env(url_env or self.catalog_url_env)
        done = subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, f"psql failed: {done.stderr}")

    def feed(self, event_id):
        f = Feed(event_id)
        self.feeds.append(f)
        return f

    # -- the WaitingRoom --
    def req(self, event_id, user_id):
        return qpb.WaitingRoomRequest(event_id=str(event_id), user_id=str(user_id))

    def join(self, event_id, user_id, stub=None):
        return self.assertOk(rpc((stub or self.room).Join, self.req(event_id, user_id)), f"Join {event_id}/{user_id}")

    def status(self, event_id, user_id, stub=None):
        return self.assertOk(rpc((stub or self.room).Status, self.req(event_id, user_id)),
                             f"Status {event_id}/{user_id}")

    def hold_with(self, event_id, user_id, seat, token):
        return rpc(self.engine(event_id).Hold,
                   pb.HoldRequest(event_id=event_id, user_id=user_id, seats=[seat], admission_token=token,
                                  idempotency_key=f"it-{event_id}-{user_id}-{seat}"))

    def poll(self, fn, timeout_s, interval_s=0.05, what="condition"):
        deadline = time.monotonic() + timeout_s
        while True:
            last = fn()
            if last:
                return last
            if time.monotonic() > deadline:
                self.fail(f"{what}: not reached within {timeout_s}s")
            time.sleep(interval_s)


# ---------------------------------------------------------------------------------------------
# queue-svc processes started by the tests (replicas)
# ---------------------------------------------------------------------------------------------
class QueueDaemon:
    _serial = itertools.count(1)

    def __init__(self, name, database_url, extra=()):
        self.name, self.database_url, self.extra = name, database_url, list(extra)
        self.proc = self.address = self.metrics_address = self.log_path = None

    def start(self, timeout_s=15.0):
        work = env("QUEUE_WORK")
        for _ in range(3):  # a probed port can be taken before we bind it
            port, metrics_port = subprocess.check_output([env("FREE_PORT"), "2"], text=True).split()
            self.log_path = os.path.join(work, "logs", f"{self.name}-{next(self._serial)}.log")
            args = [env("QUEUE_BIN"), "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics_port}",
                    "--database-url", self.database_url, "--replica-id", self.name]
            args += env("QUEUE_FLAGS").split() + self.extra
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
            with open(os.path.join(work, "daemon.pids"), "a") as pids:
                pids.write(f"{self.proc.pid}\n")
            self.address, self.metrics_address = f"127.0.0.1:{port}", f"127.0.0.1:{metrics_port}"
            if self._wait_serving(timeout_s):
                return self
            if self.proc.poll() is None:
                break
        self.kill()
        raise AssertionError(f"{self.name}: queue-svc did not become SERVING:\n{self.log_tail()}")

    def _wait_serving(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            channel = grpc.insecure_channel(self.address, options=PROBE_CHANNEL_OPTIONS)
            try:
                result = rpc(health_pb2_grpc.HealthStub(channel).Check, health_pb2.HealthCheckRequest(), timeout=0.5)
            finally:
                channel.close()
            if result.ok and result.reply.status == health_pb2.HealthCheckResponse.SERVING:
                return True
            time.sleep(0.05)
        return False

    def metric(self, name):
        return metrics(self.metrics_address).get(name, 0.0)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def terminate(self, timeout_s=15):
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
def main(argv):
    counts_file, names = None, []
    args = iter(argv)
    for arg in args:
        if arg == "--counts":
            counts_file = next(args)
        else:
            names.append(arg)
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped) - len(result.expectedFailures)
    if counts_file:
        with open(counts_file, "w") as f:
            f.write(f"{passed} {failed}\n")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
