"""test_purchase.py — Pay and the saga's ordinary paths: a full purchase (sold in the
engine and in PostgreSQL, charged once), repeated Pay calls (one charge), a declined card
(compensation: the seats are released), a hold that ended before payment or during a slow
charge (refunded), the database's own guards, and "my reservations"."""
import time

import redis

import harness
from harness import C


class PurchaseTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.event = harness.make_event(cls.engine, max_seats_per_user=10)
        cls.redis = redis.Redis(port=int(harness.env("REDIS_PORT")))

    def test_a_full_purchase(self):
        user, token = self.buyer(self.event)
        held = self.hold(self.event, user, token, seats=[0, 1])
        reply = self.assertOk(self.rsv.pay(held.reservation_id, user), "pay")
        self.assertEqual((reply.status, reply.reservation_id), ("confirmed", held.reservation_id))
        self.assertTrue(reply.payment_id)
        self.assertSeats(self.event, [0, 1], 2, "sold in the engine")
        self.assertEqual(harness.reservation_row(held.reservation_id),
                         ["confirmed", "confirmed", reply.payment_id, ""], "row, saga, payment, no card kept")
        sold = harness.sold_seats_in_db(self.event)
        self.assertIn(0, sold)
        self.assertIn(1, sold)
        self.assertOneCharge(reply.payment_id)
        got = self.assertOk(self.rsv.get(held.reservation_id, user))
        self.assertEqual((got.status, got.state, got.payment_id, got.amount_cents),
                         ("confirmed", "confirmed", reply.payment_id, 10000))
        self.assertEqual(got.created_at, held.created_at, "the reservation keeps its creation time")
        self.assertIsNone(self.redis.hget(f"tiketi:rsv:{{{user}}}:pending", held.reservation_id),
                          "no longer a pending record")
        self.assertFails(self.rsv.release(held.reservation_id, user), C.FAILED_PRECONDITION,
                         "reservation_not_pending")

    def test_paying_again_charges_once(self):
        user, token = self.buyer(self.event)
        held = self.hold(self.event, user, token, seats=[2])
        key = harness.new_key("twice")
        first = self.assertOk(self.rsv.pay(held.reservation_id, user, key=key))
        again = self.assertOk(self.rsv.pay(held.reservation_id, user, key=key))
        self.assertEqual(again.payment_id, first.payment_id)
        other_key = self.assertOk(self.rsv.pay(held.reservation_id, user), "a retry with another key")
        self.assertEqual(other_key.payment_id, first.payment_id, "one reservation, one payment")
        self.assertOneCharge(first.payment_id)
        self.assertEqual(len(harness.payments_of(held.reservation_id)), 1)
        # the same key for another reservation is refused, and nothing happens to it
        second = self.hold(self.event, user, token, seats=[3])
        self.assertFails(self.rsv.pay(second.reservation_id, user, key=key), C.FAILED_PRECONDITION,
                         "idempotency_key_reused")
        self.assertSeats(self.event, [3], 1, "still held")
        self.assertIsNone(harness.reservation_row(second.reservation_id))

    def test_concurrent_pays_of_one_reservation_charge_once(self):
        import concurrent.futures
        user, token = self.buyer(self.event)
        held = self.hold(self.event, user, token, seats=[4])
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: self.rsv.pay(held.reservation_id, user), range(4)))
        payments = {r.reply.payment_id for r in results if r.ok}
        self.assertEqual(len(payments), 1, [str(r) for r in results])
        self.assertOneCharge(payments.pop())

    def test_a_declined_card_releases_the_seats(self):
        user, token = self.buyer(self.event)
        held = self.hold(self.event, user, token, seats=[5, 6])
        result = self.rsv.pay(held.reservation_id, user, card="tok_decline")
        self.assertFails(result, C.FAILED_PRECONDITION, "payment_declined")
        self.assertSeats(self.event, [5, 6], 0, "released")
        row = harness.reservation_row(held.reservation_id)
        self.assertEqual(row[:2], ["released", "released"])
        self.assertEqual(row[3], "", "no card token kept")
        self.assertNoCharge(held.reservation_id)
        got = self.assertOk(self.rsv.get(held.reservation_id, user))
        self.assertEqual((got.status, got.state), ("cancelled", "released"))
        again = self.rsv.pay(held.reservation_id, user, card="tok_approve")
        self.assertFails(again, C.FAILED_PRECONDITION, "payment_declined")
        self.assertNoCharge(held.reservation_id)
        other, other_token = self.buyer(self.event)
        self.hold(self.event, other, other_token, seats=[5, 6])  # back on sale

    def test_an_unknown_card_is_declined_too(self):
        user, token = self.buyer(self.event)
        held = self.hold(self.event, user, token, seats=[7])
        self.assertFails(self.rsv.pay(held.reservation_id, user, card="tok_nobody_knows"), C.FAILED_PRECONDITION,
                         "payment_declined")
        self.assertSeats(self.event, [7], 0, "released")

    def test_bad_pay_requests(self):
        user, token = self.buyer(self.event)
        held = self.hold(self.event, user, token, seats=[8])
        self.assertFails(self.rsv.pay(held.reservation_id, user, card="tok approve"), C.INVALID_ARGUMENT)
        self.assertFails(self.rsv.pay(held.reservation_id, user, key=""), C.INVALID_ARGUMENT)
        self.assertFails(self.rsv.pay("rsv_" + "0" * 32, user), C.INVALID_ARGUMENT)
        self.assertFails(self.rsv.pay(held.reservation_id, "x"), C.INVALID_ARGUMENT)
        method = harness.rpc(self.rsv.stub.Pay, harness.rpb.PayRequest(
            reservation_id=held.reservation_id, user_id=str(user), method="cash", card_token="tok_approve",
            idempotency_key="k"))
        self.assertFails(method, C.INVALID_ARGUMENT, "invalid_request")
        self.assertSeats(self.event, [8], 1, "untouched")


class ExpiryTest(harness.TestCase):
    def test_an_expired_hold_is_not_paid(self):
        event = harness.make_event(self.engine, hold_ttl_ms=1000)
        user, token = self.buyer(event)
        held = self.hold(event, user, token, seats=[0])
        time.sleep(1.3)
        self.assertFails(self.rsv.pay(held.reservation_id, user), C.FAILED_PRECONDITION, "hold_expired")
        self.assertIsNone(harness.reservation_row(held.reservation_id), "nothing written")
        self.assertEqual(harness.payments_of(held.reservation_id), [], "nothing charged")

    def test_a_hold_that_ends_during_a_slow_charge_is_refunded(self):
        event = harness.make_event(self.engine, hold_ttl_ms=2000)  # tok_slow takes 2.5 s
        user, token = self.buyer(event)
        held = self.hold(event, user, token, seats=[1, 2])
        result = self.rsv.pay(held.reservation_id, user, card="tok_slow")
        self.assertFails(result, C.FAILED_PRECONDITION, "hold_expired")
        self.assertIn("refunded", result.details)
        row = harness.reservation_row(held.reservation_id)
        self.assertEqual(row[:2], ["expired", "refunded"])
        self.assertOneCharge(row[2], refunds=1)
        self.assertSeats(event, [1, 2], 0, "back on sale")
        self.assertNotIn(1, harness.sold_seats_in_db(event))
        got = self.assertOk(self.rsv.get(held.reservation_id, user))
        self.assertEqual((got.status, got.state), ("expired", "expired"))


class DatabaseGuardTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.event = harness.make_event(cls.engine)
        user = harness.make_user()
        token = cls.engine.admission_token(cls.event, user)
        held = cls.rsv.hold(cls.event, user, seats=[3], token=token)
        assert held.ok, str(held)
        paid = cls.rsv.pay(held.reply.reservation_id, user)
        assert paid.ok, str(paid)
        cls.sold = held.reply.reservation_id

    def test_a_seat_cannot_be_sold_twice_in_postgresql(self):
        other = harness.make_user()
        forged = "rsv_%016x%016x" % (self.event, 0xfffff)
        harness.plant_saga(forged, other, self.event, [3], 5000, next_attempt_in_s=3600)
        with self.assertRaises(harness.SqlError) as raised:
            harness.sql("BEGIN; UPDATE reservations SET status = 'confirmed' WHERE id = :'p1';"
                        "UPDATE reservation_seats SET confirmed = true WHERE reservation_id = :'p1'; COMMIT;",
                        harness.uuid_of(forged))
        self.assertIn("one_sale_per_seat", str(raised.exception))
        self.assertEqual(harness.sold_seats_in_db(self.event).count(3), 1)
        harness.sql("DELETE FROM sagas WHERE reservation_id = :'p1'; DELETE FROM reservations WHERE id = :'p1';",
                    harness.uuid_of(forged))

    def test_a_confirmed_reservation_is_never_released(self):
        for status in ("released", "expired", "paying", "pending"):
            with self.assertRaises(harness.SqlError) as raised:
                harness.sql("UPDATE reservations SET status = :'p2' WHERE id = :'p1';",
                            harness.uuid_of(self.sold), status)
            self.assertIn("not an allowed transition", str(raised.exception))
        with self.assertRaises(harness.SqlError) as raised:  # nor born confirmed, past the saga
            harness.sql("INSERT INTO reservations (id, user_id, event_id, hold_id, status, amount_cents, expires_at) "
                        "SELECT gen_random_uuid(), user_id, event_id, 1, 'confirmed', 1, now() FROM reservations "
                        "WHERE id = :'p1';", harness.uuid_of(self.sold))
        self.assertIn("starts pending or paying", str(raised.exception))
        self.assertEqual(harness.reservation_row(self.sold)[:2], ["confirmed", "confirmed"])

    def test_seats_are_sold_only_in_a_confirmed_reservation(self):
        other = harness.make_user()
        forged = "rsv_%016x%016x" % (self.event, 0xffffe)
        harness.plant_saga(forged, other, self.event, [4], 5000, next_attempt_in_s=3600)
        with self.assertRaises(harness.SqlError) as raised:
            harness.sql("UPDATE reservation_seats SET confirmed = true WHERE reservation_id = :'p1';",
                        harness.uuid_of(forged))
        self.assertIn("only in a confirmed reservation", str(raised.exception))
        harness.sql("DELETE FROM sagas WHERE reservation_id = :'p1'; DELETE FROM reservations WHERE id = :'p1';",
                    harness.uuid_of(forged))


class MyReservationsTest(harness.TestCase):
    def test_lists_pending_and_paid_newest_first_and_only_mine(self):
        event = harness.make_event(self.engine)
        user, token = self.buyer(event)
        pending = self.hold(event, user, token, seats=[0])
        time.sleep(0.02)
        confirmed = self.hold(event, user, token, seats=[1])
        self.assertOk(self.rsv.pay(confirmed.reservation_id, user))
        time.sleep(0.02)
        declined = self.hold(event, user, token, seats=[2])
        self.assertFails(self.rsv.pay(declined.reservation_id, user, card="tok_decline"), C.FAILED_PRECONDITION)
        time.sleep(0.02)
        newest = self.hold(event, user, token, seats=[3])
        listed = self.assertOk(self.rsv.list(user)).reservations
        self.assertEqual([r.reservation_id for r in listed],
                         [newest.reservation_id, declined.reservation_id, confirmed.reservation_id,
                          pending.reservation_id])
        self.assertEqual([r.status for r in listed], ["pending", "cancelled", "confirmed", "pending"])
        self.assertEqual(listed[2].seat_ids, ["1"])
        self.assertEqual(listed[2].amount_cents, 5000)
        self.assertTrue(listed[2].payment_id)
        self.assertEqual([r.reservation_id for r in self.assertOk(self.rsv.list(user, limit=2)).reservations],
                         [newest.reservation_id, declined.reservation_id])
        stranger = harness.make_user()
        self.assertEqual(len(self.assertOk(self.rsv.list(stranger)).reservations), 0)
        self.assertFails(self.rsv.get(confirmed.reservation_id, stranger), C.NOT_FOUND, "not_found")
        self.assertFails(self.rsv.pay(confirmed.reservation_id, stranger), C.NOT_FOUND, "not_found")
        self.assertFails(self.rsv.cancel(confirmed.reservation_id, stranger), C.NOT_FOUND, "not_found")
        self.assertFails(self.rsv.list("nobody"), C.INVALID_ARGUMENT)

    def test_expired_pending_holds_drop_out(self):
        event = harness.make_event(self.engine, hold_ttl_ms=1000)
        user, token = self.buyer(event)
        held = self.hold(event, user, token, seats=[0])
        self.assertEqual([r.reservation_id for r in self.assertOk(self.rsv.list(user)).reservations],
                         [held.reservation_id])
        time.sleep(1.2)
        self.assertEqual(len(self.assertOk(self.rsv.list(user)).reservations), 0)
        self.assertFails(self.rsv.get(held.reservation_id, user), C.NOT_FOUND)


if __name__ == "__main__":
    import unittest
    unittest.main()
