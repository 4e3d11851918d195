"""test_holds.py — CreateHold and ReleaseHold: admission tokens (checked offline, before
the engine), chosen and best-available seats, idempotency keys, conflicts and the per-user
cap passed on from the engine, pending reservations kept in Redis (not PostgreSQL)."""
import os
import time

import redis

import harness
from harness import C


class AdmissionTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.event = harness.make_event(cls.engine)
        cls.queued = harness.make_event(cls.engine, queue=True)

    def test_a_hold_without_a_token_is_refused(self):
        user = harness.make_user()
        result = self.rsv.hold(self.event, user, seats=[0], token="")
        self.assertFails(result, C.FAILED_PRECONDITION, "not_admitted")
        self.assertIn("required", result.details)
        self.assertEqual(self.engine.states(self.event)[0], 0, "nothing held")

    def test_a_forged_token_is_refused(self):
        user = harness.make_user()
        forged = harness.forge_token(os.urandom(32), self.event, user)  # well-formed, another key
        result = self.rsv.hold(self.event, user, seats=[1], token=forged)
        self.assertFails(result, C.FAILED_PRECONDITION, "not_admitted")
        self.assertIn("not genuine", result.details)
        genuine = self.engine.admission_token(self.event, user)
        altered = genuine[:10] + ("A" if genuine[10] != "A" else "B") + genuine[11:]
        self.assertFails(self.rsv.hold(self.event, user, seats=[1], token=altered), C.FAILED_PRECONDITION,
                         "not_admitted")
        self.assertFails(self.rsv.hold(self.event, user, seats=[1], token="garbage"), C.FAILED_PRECONDITION,
                         "not_admitted")
        self.assertEqual(self.engine.states(self.event)[1], 0, "nothing held")

    def test_another_users_or_events_token_and_an_expired_one_are_refused(self):
        user, other = harness.make_user(), harness.make_user()
        theirs = self.engine.admission_token(self.event, other)
        self.assertFails(self.rsv.hold(self.event, user, seats=[2], token=theirs), C.FAILED_PRECONDITION,
                         "not_admitted")
        elsewhere = harness.forge_token(harness.token_key(), self.queued, user)  # genuine, for another event
        self.assertFails(self.rsv.hold(self.event, user, seats=[2], token=elsewhere), C.FAILED_PRECONDITION,
                         "not_admitted")
        expired = harness.forge_token(harness.token_key(), self.event, user, expires_ms=int(time.time() * 1000) - 1)
        result = self.rsv.hold(self.event, user, seats=[2], token=expired)
        self.assertFails(result, C.FAILED_PRECONDITION, "not_admitted")
        self.assertIn("expired", result.details)

    def test_a_genuine_token_holds(self):
        user, token = self.buyer(self.event)
        reply = self.hold(self.event, user, token, seats=[3])
        self.assertEqual(list(reply.seat_ids), ["3"])
        self.assertSeats(self.event, [3], 1, "held")

    def test_a_waiting_room_event_needs_an_admission(self):
        user = harness.make_user()
        self.assertFails(self.rsv.hold(self.queued, user, seats=[0], token=""), C.FAILED_PRECONDITION,
                         "not_admitted")
        # signed with the real key, for this user and event: admitted (seatcored checks it again)
        token = harness.forge_token(harness.token_key(), self.queued, user)
        self.hold(self.queued, user, token, seats=[0])


class HoldTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.event = harness.make_event(cls.engine, max_seats_per_user=4)
        cls.redis = redis.Redis(port=int(harness.env("REDIS_PORT")))

    def test_chosen_seats_are_held_all_or_nothing(self):
        user, token = self.buyer(self.event)
        reply = self.hold(self.event, user, token, seats=[0, 1])
        self.assertTrue(reply.reservation_id.startswith("rsv_"), reply.reservation_id)
        self.assertEqual((reply.status, reply.state), ("pending", "pending"))
        self.assertEqual(sorted(reply.seat_ids), ["0", "1"])
        self.assertEqual(reply.amount_cents, 10000)
        self.assertEqual(reply.event_id, str(self.event))
        self.assertTrue(reply.expires_at.endswith("Z") and reply.created_at.endswith("Z"))
        self.assertSeats(self.event, [0, 1], 1, "held")
        # someone else wants seat 1 and 2: nothing is held, seat 1 is named
        other, other_token = self.buyer(self.event)
        result = self.rsv.hold(self.event, other, seats=[1, 2], token=other_token)
        self.assertFails(result, C.ABORTED, "seat_unavailable")
        self.assertEqual(list(result.detail.unavailable_seats), [1])
        self.assertEqual(self.engine.states(self.event)[2], 0, "all or nothing")

    def test_the_hot_path_writes_redis_not_postgresql(self):
        user, token = self.buyer(self.event)
        reply = self.hold(self.event, user, token, seats=[3])
        self.assertIsNone(harness.reservation_row(reply.reservation_id), "no row before payment")
        record = self.redis.hget(f"tiketi:rsv:{{{user}}}:pending", reply.reservation_id)
        self.assertIsNotNone(record, "the pending record is in Redis")
        self.assertTrue(record.decode().startswith(f"1|{self.event}|"), record)
        ttl_ms = self.redis.pttl(f"tiketi:rsv:{{{user}}}:pending")
        self.assertTrue(0 < ttl_ms <= 60000, f"expires with the hold ({ttl_ms} ms)")

    def test_best_available_by_section_name_or_index(self):
        user, token = self.buyer(self.event)
        reply = self.hold(self.event, user, token, count=2, section="Balcony")
        self.assertEqual(len(reply.seat_ids), 2)
        self.assertTrue(all(10 <= int(s) <= 14 for s in reply.seat_ids), reply.seat_ids)
        self.assertEqual(reply.amount_cents, 18000)
        other, other_token = self.buyer(self.event)
        reply = self.hold(self.event, other, other_token, count=1, section="1")
        self.assertTrue(10 <= int(reply.seat_ids[0]) <= 14)
        self.assertFails(self.rsv.hold(self.event, other, count=1, section="Nowhere", token=other_token),
                         C.INVALID_ARGUMENT, "invalid_request")

    def test_the_same_idempotency_key_gives_the_same_hold(self):
        user, token = self.buyer(self.event)
        key = harness.new_key("same")
        first = self.hold(self.event, user, token, seats=[5], key=key)
        held_before = self.engine.states(self.event).count(1)
        again = self.hold(self.event, user, token, seats=[5], key=key)
        self.assertEqual(again.reservation_id, first.reservation_id)
        self.assertEqual(again.created_at, first.created_at, "the first answer, again")
        self.assertEqual(self.engine.states(self.event).count(1), held_before, "one hold")
        self.assertFails(self.rsv.hold(self.event, user, seats=[6], token=token, key=key), C.FAILED_PRECONDITION,
                         "idempotency_key_reused")

    def test_the_per_user_cap_is_the_engines(self):
        user, token = self.buyer(self.event)
        self.hold(self.event, user, token, seats=[7, 8, 9])
        result = self.rsv.hold(self.event, user, count=2, token=token)
        self.assertFails(result, C.RESOURCE_EXHAUSTED, "seat_cap_reached")

    def test_bad_requests(self):
        user, token = self.buyer(self.event)

        def create(**fields):
            request = dict(event_id=str(self.event), user_id=str(user), admission_token=token,
                           idempotency_key=harness.new_key("bad"))
            request.update(fields)
            return harness.rpc(self.rsv.stub.CreateHold, harness.rpb.CreateHoldRequest(**request))

        bad = [
            dict(seat_ids=["1"], idempotency_key=""),   # no idempotency key
            dict(seat_ids=["1"], idempotency_key="\t"), # not printable
            dict(),                                      # neither seats nor count
            dict(seat_ids=["1", "1"]),                   # a seat twice
            dict(seat_ids=["x"]),                        # not a number
            dict(seat_ids=["01"]),                       # not canonical
            dict(seat_ids=[str(i) for i in range(11)]),  # more than a hold takes
            dict(count=11),
            dict(seat_ids=["1"], count=1),               # both
            dict(seat_ids=["1"], event_id="01"),
            dict(seat_ids=["1"], user_id="0"),
        ]
        for fields in bad:
            self.assertFails(create(**fields), C.INVALID_ARGUMENT, "invalid_request", str(fields))
        self.assertEqual(self.engine.states(self.event)[1], 0, "nothing held")
        unknown = harness.forge_token(harness.token_key(), 999999999, user)
        self.assertFails(self.rsv.hold(999999999, user, seats=[1], token=unknown), C.NOT_FOUND)


class ReleaseTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.event = harness.make_event(cls.engine)

    def test_release_frees_the_seats_once(self):
        user, token = self.buyer(self.event)
        reply = self.hold(self.event, user, token, seats=[0, 1])
        self.assertOk(self.rsv.get(reply.reservation_id, user), "a pending reservation can be read")
        self.assertOk(self.rsv.release(reply.reservation_id, user))
        self.assertSeats(self.event, [0, 1], 0, "released")
        self.assertFails(self.rsv.release(reply.reservation_id, user), C.NOT_FOUND, "not_found")
        self.assertFails(self.rsv.get(reply.reservation_id, user), C.NOT_FOUND, "not_found")
        listed = self.assertOk(self.rsv.list(user)).reservations
        self.assertNotIn(reply.reservation_id, [r.reservation_id for r in listed])

    def test_another_users_hold_is_not_found(self):
        user, token = self.buyer(self.event)
        reply = self.hold(self.event, user, token, seats=[2])
        stranger = harness.make_user()
        self.assertFails(self.rsv.get(reply.reservation_id, stranger), C.NOT_FOUND, "not_found")
        self.assertFails(self.rsv.release(reply.reservation_id, stranger), C.NOT_FOUND, "not_found")
        self.assertFails(self.rsv.pay(reply.reservation_id, stranger), C.NOT_FOUND, "not_found")
        self.assertFails(self.rsv.cancel(reply.reservation_id, stranger), C.NOT_FOUND, "not_found")
        self.assertSeats(self.event, [2], 1, "still held for its owner")
        self.assertFails(self.rsv.get("rsv_nonsense", user), C.NOT_FOUND)


if __name__ == "__main__":
    import unittest
    unittest.main()
