"""test_feed.py — the Redis pub/sub feed: head moves, admissions, leaves (docs/services/queue.md)."""
import time

from harness import QueueTestCase, rpc

HEAD_FIELDS = {"type", "event_id", "head_rank", "waiting", "active", "rate", "ts"}
ADMITTED_FIELDS = {"type", "event_id", "user_id", "rank", "ticket", "admission_token", "expires_at", "ts"}
LEFT_FIELDS = {"type", "event_id", "user_id", "rank", "ts"}
FEED_START_S = 5.0  # catalog refresh (300 ms here) + a publisher round, with room for a busy machine


def admitted_by_user(messages):
    return {m["user_id"]: m for m in messages if m["type"] == "admitted"}


def check_head_invariant(test, messages):
    """Every admission below a head message's head_rank was published before that head message."""
    published = {m["rank"] for m in messages if m["type"] == "admitted"}
    seen = set()
    for m in messages:
        if m["type"] == "admitted":
            seen.add(m["rank"])
        elif m["type"] == "head":
            missing = {r for r in published if r < m["head_rank"]} - seen
            test.assertEqual(missing, set(), f"head_rank {m['head_rank']} published before these admissions")


class HeadTest(QueueTestCase):
    def test_head_messages_come_at_least_every_second_with_the_documented_fields(self):
        eid = self.create_event(opens_in_s=3600)  # the head does not move: only the keep-alive publishes
        feed = self.feed(eid)
        for user in (1, 2, 3):
            self.join(eid, user)
        feed.wait_for(lambda ms: any(m["type"] == "head" and m["waiting"] == 3 for m in ms), FEED_START_S,
                      "a head message with 3 waiting")
        start = time.monotonic()
        time.sleep(3.2)
        heads = [(t, m) for t, m in feed.snapshot("head") if t >= start - 1.0]
        self.assertGreaterEqual(len(heads), 3)
        gaps = [b[0] - a[0] for a, b in zip(heads, heads[1:])]
        self.assertLessEqual(max(gaps), 1.0, f"head messages at least once a second: gaps {gaps}")
        for _, m in heads:
            self.assertEqual(set(m), HEAD_FIELDS, m)
            self.assertEqual((m["event_id"], m["head_rank"], m["waiting"], m["active"]), (str(eid), 0, 3, 0))
            self.assertIsInstance(m["rate"], (int, float))
            self.assertLess(abs(m["ts"] / 1000 - time.time()), 10, "ts is Unix milliseconds")
        self.assertEqual(feed.snapshot("admitted"), [])


class AdmissionTest(QueueTestCase):
    def test_admissions_follow_arrival_and_carry_tokens_the_engine_accepts(self):
        eid = self.create_event(admit_per_s=5, max_active=100)
        feed = self.feed(eid)
        feed.wait_for(lambda ms: any(m["type"] == "head" for m in ms), FEED_START_S, "the first head message")
        users = list(range(101, 109))
        views = {u: self.join(eid, u) for u in users}  # one after the other: the arrival order
        ranks = [views[u].rank for u in users]
        self.assertEqual(ranks, sorted(ranks))
        messages = feed.wait_for(lambda ms: len(admitted_by_user(ms)) == len(users), 10,
                                 f"{len(users)} admitted messages")
        admitted = [m for m in messages if m["type"] == "admitted"]
        self.assertEqual(len(admitted), len(users), f"exactly one admitted message per user: {admitted}")
        self.assertEqual([m["user_id"] for m in admitted], [str(u) for u in users], "FIFO: admitted in join order")
        self.assertEqual([m["rank"] for m in admitted], ranks)
        for seat, m in enumerate(admitted):
            self.assertEqual(set(m), ADMITTED_FIELDS, m)
            user = int(m["user_id"])
            self.assertEqual((m["event_id"], m["ticket"]), (str(eid), views[user].ticket))
            view = self.status(eid, user)
            self.assertEqual(view.status, "admitted")
            self.assertEqual((m["admission_token"], m["expires_at"]), (view.admission_token, view.admission_expires_at),
                             "the feed's token is the one Status shows")
            self.assertOk(self.hold_with(eid, user, seat, m["admission_token"]), f"Hold with the fed token of {user}")
        check_head_invariant(self, messages)
        last = feed.wait_for(lambda ms: any(m["type"] == "head" and m["head_rank"] == len(users) for m in ms), 3,
                             "the head after the last admission")
        self.assertTrue(last)


class PositionTest(QueueTestCase):
    def head_now(self, feed, waiting):
        """The head once it is still and shows `waiting` people waiting."""
        msgs = feed.wait_for(lambda ms: sum(1 for m in ms if m["type"] == "head" and m["waiting"] == waiting) >= 2,
                             8, f"two head messages with {waiting} waiting")
        heads = [m for m in msgs if m["type"] == "head" and m["waiting"] == waiting]
        self.assertEqual(heads[-1]["head_rank"], heads[-2]["head_rank"], "the head is still")
        return heads[-1]["head_rank"]

    def test_positions_from_the_feed_equal_status_positions(self):
        # max_active=2: two are admitted at once, then the head stops (grants last 10 minutes)
        eid = self.create_event(admit_per_s=50, max_active=2)
        feed = self.feed(eid)
        users = list(range(201, 209))
        ranks = {u: self.join(eid, u).rank for u in users}
        head = self.head_now(feed, waiting=len(users) - 2)
        self.assertEqual(head, 2)
        waiting = [u for u in users if self.status(eid, u).status == "waiting"]
        self.assertEqual(waiting, users[2:])
        for u in waiting:
            self.assertEqual(self.status(eid, u).position, ranks[u] - head + 1, f"user {u}, no leaves")

        leaver = waiting[2]
        self.assertOk(rpc(self.room.Leave, self.req(eid, leaver)), "Leave")
        msgs = feed.wait_for(lambda ms: any(m["type"] == "left" for m in ms), 3, "the left message")
        left = [m for m in msgs if m["type"] == "left"]
        self.assertEqual(len(left), 1)
        self.assertEqual(set(left[0]), LEFT_FIELDS, left[0])
        self.assertEqual((left[0]["event_id"], left[0]["user_id"], left[0]["rank"]),
                         (str(eid), str(leaver), ranks[leaver]))
        left_key = f"tiketi:queue:{{{eid}}}:left"
        self.assertEqual([int(r) for r in self.redis.zrangebyscore(left_key, "-inf", "+inf")], [ranks[leaver]],
                         "the left set an edge reads when it subscribes")
        head = self.head_now(feed, waiting=len(users) - 3)
        left_ranks = {m["rank"] for m in left}
        for u in waiting:
            if u == leaver:
                continue
            fed = ranks[u] - head + 1 - sum(1 for r in left_ranks if head <= r < ranks[u])
            self.assertEqual(self.status(eid, u).position, fed, f"user {u}, one leave ahead of some")
        self.assertOk(rpc(self.room.Leave, self.req(eid, users[0])), "an admitted user leaves")
        time.sleep(0.5)
        self.assertEqual(len(feed.snapshot("left")), 1, "an admitted user's leave moves nobody: no message")
