"""test_replicas.py — several queue-svc replicas: one publisher per event, handover on death and on stop.

These replicas read their own catalog (PG_URL_REPLICAS), so the shared queue-svc of the other
tests never competes for these events' leases."""
import collections
import threading
import time

import grpc

from harness import QueueDaemon, QueueTestCase, env, rpc
from test_feed import check_head_invariant
from tiketi.v1 import queue_pb2_grpc

LEASE_S = 3.0  # the default --lease-ms
HEAD = 'tiketi_queue_feed_published_total{type="head"}'
HELD = "tiketi_queue_feed_leases_held"


class ReplicaTest(QueueTestCase):
    catalog_url_env = "PG_URL_REPLICAS"

    def replica(self, name):
        daemon = QueueDaemon(name, env("PG_URL_REPLICAS")).start()
        self.addCleanup(daemon.kill)
        return daemon

    def lease_holder(self, eid):
        value = self.redis.get(f"tiketi:queue:{{{eid}}}:lease")
        return value.decode() if value is not None else None

    def test_one_publisher_per_event_and_a_killed_one_hands_over_without_losing_admissions(self):
        replicas = {name: self.replica(name) for name in ("replica-a", "replica-b")}
        eid = self.create_event(admit_per_s=2, max_active=1000)
        self.addCleanup(self.catalog_close, eid)  # later replicas must not find it
        feed = self.feed(eid)
        users = list(range(301, 313))  # at 2 admissions a second: about 6 s of admissions
        ranks = {u: self.join(eid, u).rank for u in users}
        feed.wait_for(lambda ms: any(m["type"] == "admitted" for m in ms), 6, "the first admission")
        holder_name = self.poll(lambda: self.lease_holder(eid), 3, what="a lease holder")
        self.assertIn(holder_name, replicas)
        holder = replicas[holder_name]
        other = next(d for n, d in replicas.items() if n != holder_name)
        self.poll(lambda: holder.metric(HELD) == 1 and other.metric(HELD) == 0, 3, what="one lease, on the holder")
        self.assertGreater(holder.metric(HEAD), 0)
        self.assertEqual(other.metric(HEAD), 0, "the other replica publishes nothing")

        time.sleep(1.0)  # a few admissions published by the holder
        killed_at = time.monotonic()
        holder.kill()  # SIGKILL: no chance to hand the lease back
        self.poll(lambda: self.lease_holder(eid) == other.name, LEASE_S + 3, what="the other replica takes the lease")
        messages = feed.wait_for(lambda ms: {m.get("user_id") for m in ms if m["type"] == "admitted"} >=
                                 {str(u) for u in users}, 15, "every user's admission")
        admitted = [m for m in messages if m["type"] == "admitted"]
        per_user = collections.Counter(m["user_id"] for m in admitted)
        self.assertEqual(per_user, collections.Counter(str(u) for u in users), "one admitted message per user")
        self.assertEqual([m["rank"] for m in admitted], sorted(ranks.values()), "in rank order, none lost")
        check_head_invariant(self, messages)
        after = [t for t, m in feed.snapshot("head") if t > killed_at]
        self.assertTrue(after, "head messages resumed")
        self.assertLess(after[0] - killed_at, LEASE_S + 1.5, "handed over within the lease and a round")
        heads = [t for t, _ in feed.snapshot("head")]
        gaps = [b - a for a, b in zip(heads, heads[1:])]
        self.assertLess(max(gaps), LEASE_S + 1.5, f"head gaps {gaps}")
        self.assertGreater(other.metric(HEAD), 0)
        for u in users:
            self.assertEqual(self.status(eid, u).status, "admitted")

    def test_a_stopping_replica_hands_its_leases_back_and_ends_its_watches(self):
        b = self.replica("replica-b2")
        eid = self.create_event(opens_in_s=3600)
        self.addCleanup(self.catalog_close, eid)
        self.join(eid, 401)
        self.poll(lambda: self.lease_holder(eid) == b.name, 5, what="replica-b2 holds the lease")
        c = self.replica("replica-c2")
        time.sleep(0.5)
        self.assertEqual(self.lease_holder(eid), b.name, "a newcomer does not take a held lease")

        channel = grpc.insecure_channel(b.address)
        self.addCleanup(channel.close)
        stream = queue_pb2_grpc.WaitingRoomStub(channel).Watch(self.req(eid, 401), timeout=30)
        first = next(stream)
        self.assertEqual(first.status, "waiting")
        outcome = {}

        def drain():
            try:
                for _ in stream:
                    pass
                outcome["code"] = grpc.StatusCode.OK
            except grpc.RpcError as err:
                outcome["code"] = err.code()
            outcome["at"] = time.monotonic()

        reader = threading.Thread(target=drain)
        reader.start()
        rc, took = b.terminate()
        stopped_at = time.monotonic()
        reader.join(timeout=5)
        self.assertEqual(rc, 0, f"SIGTERM: clean exit\n{b.log_tail()}")
        self.assertLess(took, 3.0, "no waiting out the grace period for a Watch stream")
        self.assertEqual(outcome.get("code"), grpc.StatusCode.UNAVAILABLE, "the Watch ends with 'watch again'")
        self.poll(lambda: self.lease_holder(eid) == c.name, 1.5, what="the survivor takes over at once")
        self.assertLess(time.monotonic() - stopped_at, 1.5)
        self.poll(lambda: c.metric(HELD) >= 1, 2, what="the survivor publishes")
        self.assertOk(rpc(self.room.Status, self.req(eid, 401)), "the queue itself never noticed")
