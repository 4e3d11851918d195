"""test_failures.py — the saga when things break: the gateway hangs (payment-svc's breaker
opens, Pay says UNAVAILABLE at once, the hold is kept, nothing is charged twice), and
reservation-svc dies in the middle of a saga (kill -9 during a slow charge, and the rows a
crash leaves at each step, planted directly): at restart, or in the next recovery round,
every saga reaches exactly one end — confirmed with one charge, or released with no
charge, or refunded."""
import concurrent.futures
import threading
import time

import harness
from harness import C

RESTING = ("confirmed", "released", "refunded", "cancelled")


class FailureTest(harness.TestCase):
    def saga_state(self, reservation_id):
        row = harness.reservation_row(reservation_id)
        return row[1] if row else None

    def wait_resting(self, reservation_id, seconds=20):
        harness.wait_for(lambda: self.saga_state(reservation_id) in RESTING, seconds, 0.2)
        return harness.reservation_row(reservation_id)


class GatewayHangTest(FailureTest):
    def test_a_hung_gateway_opens_the_breaker_keeps_the_holds_and_charges_once(self):
        event = harness.make_event(self.engine)
        buyers = [self.buyer(event) for _ in range(3)]
        holds = [self.hold(event, user, token, seats=[i]) for i, (user, token) in enumerate(buyers)]
        keys = [harness.new_key("hang") for _ in holds]
        pay = lambda i: self.rsv.pay(holds[i].reservation_id, buyers[i][0], key=keys[i])  # noqa: E731
        self.sim.faults(hang=True)
        try:
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                hung = list(pool.map(pay, [0, 1]))
            for result in hung:
                self.assertFails(result, C.UNAVAILABLE, "payment_unavailable", "the gateway hangs")
                self.assertLess(result.elapsed, 9.0, "bounded by payment-svc's gateway timeout")
            fast = pay(2)
            self.assertFails(fast, C.UNAVAILABLE, "payment_unavailable", "the breaker is open")
            self.assertLess(fast.elapsed, 1.5, "answered at once while the breaker is open")
            self.assertIn("circuit", fast.details)
            for i, held in enumerate(holds):
                user = buyers[i][0]
                self.assertOk(self.engine.get_hold(event, user, harness.hold_id_of(held.reservation_id)),
                              "the hold is kept")
                got = self.assertOk(self.rsv.get(held.reservation_id, user))
                self.assertEqual((got.status, got.state), ("pending", "paying"))
                self.assertNoCharge(held.reservation_id)
            self.assertSeats(event, [0, 1, 2], 1, "held until their TTL")
        finally:
            self.sim.faults(hang=False)
        # the gateway is back: the breaker half-opens, and Pay (same keys) finishes each saga
        for i, held in enumerate(holds):
            result = self.pay_until_decided(held.reservation_id, buyers[i][0], key=keys[i])
            reply = self.assertOk(result, f"pay {i} after the gateway recovered")
            self.assertEqual(reply.status, "confirmed")
            self.assertOneCharge(reply.payment_id)
        self.assertSeats(event, [0, 1, 2], 2, "sold")


class CrashTest(FailureTest):
    def test_kill_9_during_a_slow_charge_then_restart(self):
        event = harness.make_event(self.engine)
        user, token = self.buyer(event)
        held = self.hold(event, user, token, seats=[0, 1])
        key = harness.new_key("crash")
        box = {}
        caller = threading.Thread(target=lambda: box.update(
            result=self.rsv.pay(held.reservation_id, user, card="tok_slow", key=key)))
        caller.start()
        self.assertTrue(harness.wait_for(lambda: self.saga_state(held.reservation_id) == "paying", 5, 0.05),
                        "the saga was written before the charge")
        time.sleep(0.7)  # the charge is at the gateway (tok_slow: 2.5 s)
        self.svc.crash()
        caller.join(15)
        self.assertFalse(box["result"].ok, "the call died with the process")
        self.assertEqual(self.saga_state(held.reservation_id), "paying", "the crash left the saga open")
        self.svc.restart()
        row = self.wait_resting(held.reservation_id)
        self.assertEqual(row[:2], ["confirmed", "confirmed"], "recovered to confirmed")
        self.assertEqual(row[3], "", "no card token kept")
        self.assertOneCharge(row[2])
        self.assertSeats(event, [0, 1], 2, "sold in the engine")
        self.assertIn(0, harness.sold_seats_in_db(event))
        again = self.assertOk(self.rsv.pay(held.reservation_id, user, key=key), "the client's retry")
        self.assertEqual((again.status, again.payment_id), ("confirmed", row[2]))
        self.assertOneCharge(row[2])


class RecoveryTest(FailureTest):
    """The rows a crash leaves after each step, written directly; the recovery loop (every
    0.5 s here) must finish each saga."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.event = harness.make_event(cls.engine, max_seats_per_user=10)

    def held(self, seats):
        user, token = self.buyer(self.event)
        held = self.hold(self.event, user, token, seats=seats)
        return user, held.reservation_id, held.amount_cents

    def test_crash_after_the_saga_row_before_the_charge(self):
        user, reservation, amount = self.held([0])
        harness.plant_saga(reservation, user, self.event, [0], amount, card="tok_approve")
        row = self.wait_resting(reservation)
        self.assertEqual(row[:2], ["confirmed", "confirmed"])
        self.assertOneCharge(row[2])
        self.assertSeats(self.event, [0], 2, "sold")

    def test_crash_after_the_saga_row_with_a_declining_card(self):
        user, reservation, amount = self.held([1, 2])
        harness.plant_saga(reservation, user, self.event, [1, 2], amount, card="tok_decline")
        row = self.wait_resting(reservation)
        self.assertEqual(row[:2], ["released", "released"])
        self.assertNoCharge(reservation)
        self.assertSeats(self.event, [1, 2], 0, "released")

    def test_crash_after_the_charge_before_the_confirmation(self):
        user, reservation, amount = self.held([3])
        harness.plant_saga(reservation, user, self.event, [3], amount, card="tok_approve", next_attempt_in_s=3600)
        charged = self.assertOk(harness.charge_directly(reservation, user, amount), "the charge the saga made")
        harness.sql("UPDATE sagas SET state = 'charged', payment_id = :'p2', card_token = NULL, "
                    "next_attempt_at = now() WHERE reservation_id = :'p1';", harness.uuid_of(reservation),
                    charged.payment_id)
        row = self.wait_resting(reservation)
        self.assertEqual(row[:3], ["confirmed", "confirmed", charged.payment_id])
        self.assertOneCharge(charged.payment_id)
        self.assertSeats(self.event, [3], 2, "sold")

    def test_crash_after_the_engine_confirmed_before_postgresql_knew(self):
        user, reservation, amount = self.held([4, 5])
        harness.plant_saga(reservation, user, self.event, [4, 5], amount, card="tok_approve", next_attempt_in_s=3600)
        charged = self.assertOk(harness.charge_directly(reservation, user, amount))
        confirm = harness.spb.ConfirmRequest(event_id=self.event, user_id=user,
                                             hold_id=harness.hold_id_of(reservation), idempotency_key=reservation)
        self.assertOk(harness.rpc(self.engine.stub(self.event).Confirm, confirm), "the engine's confirmation")
        self.assertSeats(self.event, [4, 5], 2, "sold in the engine only")
        harness.sql("UPDATE sagas SET state = 'charged', payment_id = :'p2', card_token = NULL, "
                    "next_attempt_at = now() WHERE reservation_id = :'p1';", harness.uuid_of(reservation),
                    charged.payment_id)
        row = self.wait_resting(reservation)
        self.assertEqual(row[:2], ["confirmed", "confirmed"], "the repeated Confirm is answered from its key")
        self.assertOneCharge(charged.payment_id)
        self.assertEqual([s for s in harness.sold_seats_in_db(self.event) if s in (4, 5)], [4, 5])

    def test_crash_after_the_charge_when_the_hold_ended_meanwhile(self):
        event = harness.make_event(self.engine, hold_ttl_ms=1000)
        user, token = self.buyer(event)
        held = self.hold(event, user, token, seats=[0])
        reservation = held.reservation_id
        harness.plant_saga(reservation, user, event, [0], held.amount_cents, card="tok_approve",
                           next_attempt_in_s=3600)
        charged = self.assertOk(harness.charge_directly(reservation, user, held.amount_cents))
        time.sleep(1.2)  # the hold ends while the service is down
        harness.sql("UPDATE sagas SET state = 'charged', payment_id = :'p2', card_token = NULL, "
                    "next_attempt_at = now() WHERE reservation_id = :'p1';", harness.uuid_of(reservation),
                    charged.payment_id)
        row = self.wait_resting(reservation)
        self.assertEqual(row[:2], ["expired", "refunded"])
        self.assertOneCharge(charged.payment_id, refunds=1)
        self.assertSeats(event, [0], 0, "back on sale")

    def test_a_cancellation_waits_out_a_hung_gateway(self):
        user, reservation, amount = self.held([6])
        paid = self.assertOk(self.rsv.pay(reservation, user))
        self.sim.faults(hang=True)
        try:
            result = self.rsv.cancel(reservation, user)
            self.assertFails(result, C.UNAVAILABLE, "payment_unavailable", "the refund hangs")
            got = self.assertOk(self.rsv.get(reservation, user))
            self.assertEqual((got.status, got.state), ("cancelled", "cancelling"), "decided, not finished")
            self.assertSeats(self.event, [6], 2, "not returned before the refund")
            self.assertNotIn(6, harness.sold_seats_in_db(self.event))
        finally:
            self.sim.faults(hang=False)
        row = self.wait_resting(reservation, 30)
        self.assertEqual(row[:2], ["cancelled", "cancelled"])
        self.assertOneCharge(paid.payment_id, refunds=1)
        self.assertSeats(self.event, [6], 0, "back on sale")

    def test_the_metrics_show_the_sagas(self):
        harness.wait_for(lambda: harness.metric("tiketi_reservation_sagas", state="confirmed"), 5)
        self.assertGreater(harness.metric("tiketi_reservation_sagas", state="confirmed") or 0, 0)
        self.assertGreater(harness.metric("tiketi_reservation_saga_steps_total", step="charge", outcome="done"), 0)
        self.assertGreater(harness.metric("tiketi_reservation_recovery_rounds_total"), 0)
        self.assertIsNotNone(harness.metric("tiketi_reservation_compensations_total"))
        self.assertIsNotNone(harness.metric("tiketi_reservation_holds_total", outcome="ok"))


if __name__ == "__main__":
    import unittest
    unittest.main()
