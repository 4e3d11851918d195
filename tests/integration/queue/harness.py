"""harness.py — shared helpers of the queue-svc integration suite.

Independent clients only: Debian's python3-grpcio with stubs generated from proto/ by
grpc_tools.protoc (the `run` script puts them on PYTHONPATH), python3-redis, and psql for the
catalog rows. Nothing here links the project's C code; the jump consistent hash that picks an
event's shard is written again from its paper (tests/support/tk_harness.py), so a disagreement
with rpc_router shows up.

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
import subprocess
import sys
import threading
import time

import grpc
import redis

from tiketi.v1 import queue_pb2 as qpb
from tiketi.v1 import queue_pb2_grpc
from tiketi.v1 import seatcore_pb2 as pb
from tiketi.v1 import seatcore_pb2_grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import tk_harness  # noqa: E402  (tests/support, on the path just above)
from tk_harness import shard_of  # noqa: E402

RPC_TIMEOUT_S = 5.0
C = grpc.StatusCode

# Event ids unique within a run (and across runs sharing nothing, by the clock).
_event_ids = itertools.count((int(time.time()) % 100000) * 1000 + 1)


def next_event_id():
    return next(_event_ids)


env = tk_harness.env_reader("tests/integration/queue/run")


# ---------------------------------------------------------------------------------------------
# Calls and /metrics
# ---------------------------------------------------------------------------------------------
rpc = tk_harness.rpc_with_timeout(RPC_TIMEOUT_S)


def metrics(address):
    """The Prometheus text of a daemon's /metrics as {name{labels}: value}."""
    return tk_harness.parse_metrics(tk_harness.metrics_text(address, timeout=2))


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
class QueueTestCase(tk_harness.ServiceTestCase):
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


# ---------------------------------------------------------------------------------------------
# queue-svc processes started by the tests (replicas)
# ---------------------------------------------------------------------------------------------
class QueueDaemon(tk_harness.Daemon):
    program = "queue-svc"

    def __init__(self, name, database_url, extra=()):
        super().__init__(name)
        self.database_url, self.extra = database_url, list(extra)

    def work(self):
        return env("QUEUE_WORK")

    def command(self, port, metrics_port):
        args = [env("QUEUE_BIN"), "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics_port}",
                "--database-url", self.database_url, "--replica-id", self.name]
        return args + env("QUEUE_FLAGS").split() + self.extra

    def metric(self, name):
        return metrics(self.metrics_address).get(name, 0.0)


# ---------------------------------------------------------------------------------------------
# Runner: verbose unittest output, counts for the `run` script's closing line
# ---------------------------------------------------------------------------------------------
def main(argv):
    counts_file, names = tk_harness.runner_args(argv)
    result = tk_harness.run_tests(names)
    passed, failed, _ = tk_harness.tally(result)
    tk_harness.write_counts(counts_file, passed, failed)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
