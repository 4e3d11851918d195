"""test_payment_api.py — Charge, Refund and GetPayment against the shared pair.

Each test makes its own user and reservation and checks three views that must
agree: the gRPC answer, the payments tables, and the simulator's ledger (the
money that actually moved).
"""
import concurrent.futures
import unittest
import uuid

import grpc

import harness
from harness import env


class PaymentApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = harness.shared_client()
        cls.sim = harness.shared_sim()
        cls.metrics_url = env("PAYMENT_METRICS_URL")

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def setUp(self):
        self.sim.clear_faults()
        self.user = harness.make_user()
        self.reservation = harness.make_reservation(self.user)

    def charge(self, **kw):
        kw.setdefault("amount", 1500)
        return self.client.charge(self.reservation, self.user, **kw)

    def approved(self, **kw):
        result = self.charge(**kw)
        self.assertTrue(result.ok, str(result))
        self.assertEqual(result.reply.status, "approved", str(result))
        return result.reply

    # ---- approve ----
    def test_approve_charges_once_and_records_everything(self):
        reply = self.approved(amount=4200, currency="eur")
        uuid.UUID(reply.payment_id)
        self.assertEqual(reply.amount_cents, 4200)
        self.assertEqual(reply.currency, "EUR")
        self.assertEqual(reply.reservation_id, self.reservation)
        self.assertFalse(reply.replayed)
        self.assertTrue(reply.gateway_ref.startswith("pi_"), reply.gateway_ref)
        ledger = self.sim.ledger(payment_id=reply.payment_id)
        self.assertEqual((ledger["charges"], ledger["charged_amount"]), (1, 4200), ledger)
        self.assertEqual(ledger["entries"][0]["payment_intent"], reply.gateway_ref)
        status, gateway_ref, _, card_hint, amount = harness.payment_row(reply.payment_id)
        self.assertEqual((status, gateway_ref, amount), ("approved", reply.gateway_ref, "4200"))
        self.assertEqual(card_hint, "tok_****ve", "only a masked hint of the card is stored")
        ops = [(a[0], a[3]) for a in harness.attempts(reply.payment_id)]
        self.assertEqual(ops, [("prepare", "success"), ("approve", "success")])
        got = self.client.get(reply.payment_id)
        self.assertTrue(got.ok, str(got))
        self.assertEqual((got.reply.status, got.reply.amount_cents, got.reply.gateway_ref),
                         ("approved", 4200, reply.gateway_ref))

    def test_no_table_holds_the_card_token(self):
        reply = self.approved()
        rows = harness.sql("SELECT count(*) FROM payments WHERE row_to_json(payments)::text LIKE '%tok_approve%';")
        self.assertEqual(rows[0][0], "0")
        rows = harness.sql("SELECT count(*) FROM payment_attempts WHERE row_to_json(payment_attempts)::text "
                           "LIKE '%tok_approve%';")
        self.assertEqual(rows[0][0], "0", reply.payment_id)

    # ---- declines ----
    def test_decline_is_failed_precondition_with_the_reason(self):
        key = harness.new_key()
        result = self.charge(card="tok_decline", key=key)
        self.assertEqual(result.code, grpc.StatusCode.FAILED_PRECONDITION, str(result))
        self.assertEqual(result.error_code, "payment_declined")
        self.assertIn("generic_decline", result.details)
        payment_id = harness.payment_id_for_key(key)
        self.assertEqual(harness.payment_row(payment_id)[0:3:2], ["declined", "generic_decline"])
        self.assertEqual(self.sim.ledger(payment_id=payment_id)["charges"], 0, "a decline moves no money")
        # the same key again: the same decline, from the database, without asking the gateway again
        again = self.charge(card="tok_decline", key=key)
        self.assertEqual((again.code, again.error_code), (grpc.StatusCode.FAILED_PRECONDITION, "payment_declined"))
        approve = harness.attempts(payment_id, "approve")
        self.assertEqual(len(approve), 1, "a decline is final: never retried")
        self.assertEqual((approve[0][2], approve[0][3]), ("402", "declined"))
        got = self.client.get(payment_id)
        self.assertEqual((got.reply.status, got.reply.decline_reason), ("declined", "generic_decline"))

    def test_unknown_card_is_declined_as_unknown(self):
        for card in ("tok_unknown", "tok_sneaky-1"):
            key = harness.new_key()
            result = self.charge(card=card, key=key)
            self.assertEqual((result.code, result.error_code),
                             (grpc.StatusCode.FAILED_PRECONDITION, "payment_declined"), str(result))
            self.assertIn("unknown_card", result.details)
            self.assertEqual(harness.payment_row(harness.payment_id_for_key(key))[3], "tok_****" + card[-2:])

    # ---- idempotency ----
    def test_same_key_twice_is_one_charge(self):
        key = harness.new_key()
        first = self.approved(key=key)
        second = self.approved(key=key)
        self.assertEqual(second.payment_id, first.payment_id)
        self.assertTrue(second.replayed)
        ledger = self.sim.ledger(payment_id=first.payment_id)
        self.assertEqual(ledger["charges"], 1, ledger)
        self.assertEqual(len(harness.attempts(first.payment_id)), 2, "the replay did not call the gateway")

    def test_same_key_concurrently_is_one_charge(self):
        key = harness.new_key()
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: self.charge(key=key), range(6)))
        ids = set()
        for result in results:
            # a call that raced the first may see the gateway still working: pending, retry later
            self.assertTrue(result.ok or result.error_code == "payment_unavailable", str(result))
            if result.ok:
                ids.add(result.reply.payment_id)
        self.assertEqual(len(ids), 1, ids)
        final = self.approved(key=key)
        self.assertEqual(self.sim.ledger(payment_id=final.payment_id)["charges"], 1)

    def test_same_key_for_a_different_charge_is_refused(self):
        key = harness.new_key()
        self.approved(key=key, amount=1500)
        result = self.charge(key=key, amount=1600)
        self.assertEqual((result.code, result.error_code),
                         (grpc.StatusCode.FAILED_PRECONDITION, "idempotency_key_reused"), str(result))

    # ---- refunds ----
    def test_refund_twice_with_the_same_key_is_one_refund(self):
        charge = self.approved(amount=3000)
        key = harness.new_key("refund")
        first = self.client.refund(charge.payment_id, key=key)
        self.assertTrue(first.ok, str(first))
        self.assertEqual((first.reply.status, first.reply.amount_cents, first.reply.replayed), ("succeeded", 3000, False))
        self.assertTrue(first.reply.gateway_ref.startswith("re_"))
        second = self.client.refund(charge.payment_id, key=key)
        self.assertTrue(second.ok, str(second))
        self.assertEqual(second.reply.refund_id, first.reply.refund_id)
        self.assertTrue(second.reply.replayed)
        ledger = self.sim.ledger(payment_id=charge.payment_id)
        self.assertEqual((ledger["charges"], ledger["refunds"], ledger["refunded_amount"]), (1, 1, 3000), ledger)
        got = self.client.get(charge.payment_id)
        self.assertEqual((got.reply.status, got.reply.refunded_cents), ("refunded", 3000))
        # another key after a full refund: refused here, nothing sent to the gateway
        third = self.client.refund(charge.payment_id)
        self.assertEqual((third.code, third.error_code),
                         (grpc.StatusCode.FAILED_PRECONDITION, "payment_refunded"), str(third))
        self.assertEqual(self.sim.ledger(payment_id=charge.payment_id)["refunds"], 1)
        # a replayed Charge of a refunded payment says so
        replay = self.client.get(charge.payment_id)
        self.assertEqual(replay.reply.status, "refunded")

    def test_partial_refunds_never_exceed_the_charge(self):
        charge = self.approved(amount=1000)
        a = self.client.refund(charge.payment_id, amount=400)
        b = self.client.refund(charge.payment_id, amount=500)
        self.assertTrue(a.ok and b.ok, f"{a} / {b}")
        too_much = self.client.refund(charge.payment_id, amount=200)
        self.assertEqual((too_much.code, too_much.error_code),
                         (grpc.StatusCode.FAILED_PRECONDITION, "refund_exceeds_payment"), str(too_much))
        rest = self.client.refund(charge.payment_id)  # 0: what is left
        self.assertTrue(rest.ok, str(rest))
        self.assertEqual(rest.reply.amount_cents, 100)
        ledger = self.sim.ledger(payment_id=charge.payment_id)
        self.assertEqual((ledger["refunds"], ledger["refunded_amount"]), (3, 1000), ledger)
        self.assertEqual(self.client.get(charge.payment_id).reply.status, "refunded")

    def test_refund_key_reused_for_another_amount_is_refused(self):
        charge = self.approved(amount=1000)
        key = harness.new_key("refund")
        self.assertTrue(self.client.refund(charge.payment_id, amount=300, key=key).ok)
        other = self.client.refund(charge.payment_id, amount=301, key=key)
        self.assertEqual(other.error_code, "idempotency_key_reused", str(other))

    def test_refund_of_a_declined_or_unknown_payment_is_refused(self):
        key = harness.new_key()
        self.charge(card="tok_decline", key=key)
        declined = self.client.refund(harness.payment_id_for_key(key))
        self.assertEqual((declined.code, declined.error_code),
                         (grpc.StatusCode.FAILED_PRECONDITION, "payment_not_refundable"), str(declined))
        unknown = self.client.refund(str(uuid.uuid4()))
        self.assertEqual((unknown.code, unknown.error_code), (grpc.StatusCode.NOT_FOUND, "payment_not_found"))
        self.assertEqual(self.client.get(str(uuid.uuid4())).code, grpc.StatusCode.NOT_FOUND)

    # ---- input ----
    def test_bad_input_is_invalid_argument(self):
        cases = [
            dict(key=""),
            dict(key="x" * 256),
            dict(key="has space"),
            dict(amount=0),
            dict(amount=100000001),
            dict(currency="EURO"),
            dict(card=""),
            dict(card="tok approve"),
            dict(card="tok_" + "a" * 300),
        ]
        for case in cases:
            kw = dict(key=harness.new_key())
            kw.update(case)
            result = self.charge(**kw)
            self.assertEqual((result.code, result.error_code),
                             (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request"), f"{case}: {result}")
        bad_ids = self.client.charge("not-a-uuid", self.user, key=harness.new_key())
        self.assertEqual(bad_ids.code, grpc.StatusCode.INVALID_ARGUMENT)
        bad_user = self.client.charge(self.reservation, "0", key=harness.new_key())
        self.assertEqual(bad_user.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.client.get("'; DROP TABLE payments; --").code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.client.refund("nope").code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.client.refund(str(uuid.uuid4()), key="").code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_unknown_reservation_is_not_found_and_charges_nothing(self):
        result = self.client.charge(str(uuid.uuid4()), self.user, key=harness.new_key())
        self.assertEqual((result.code, result.error_code), (grpc.StatusCode.NOT_FOUND, "reservation_not_found"))

    def test_sql_metacharacters_in_the_key_are_just_data(self):
        key = "k');DELETE/**/FROM/**/payments;--" + uuid.uuid4().hex
        reply = self.approved(key=key)
        self.assertEqual(harness.payment_id_for_key(key), reply.payment_id)
        self.assertGreater(int(harness.sql("SELECT count(*) FROM payments;")[0][0]), 1)

    # ---- operations ----
    def test_health_and_metrics(self):
        self.assertTrue(self.client.serving())
        self.approved()
        self.assertEqual(harness.breaker_state(self.metrics_url), 0.0)
        text = harness.metrics_text(self.metrics_url)
        for name in ("tiketi_payment_breaker_state{gateway=\"card\"}", "tiketi_payment_gateway_attempts_total",
                     "tiketi_payment_gateway_retries_total", "tiketi_payment_gateway_attempt_seconds_bucket",
                     "tiketi_payment_charges_total", "tiketi_payment_breaker_transitions_total"):
            self.assertIn(name, text)
        ok = harness.metric(self.metrics_url, "tiketi_payment_gateway_attempts_total", gateway="card",
                            operation="confirm", outcome="success")
        self.assertGreaterEqual(ok, 1)
        self.assertGreaterEqual(harness.metric(self.metrics_url, "tiketi_payment_charges_total", outcome="approved"), 1)
        status, _, _ = harness.http("GET", f"{self.metrics_url}/readyz")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
