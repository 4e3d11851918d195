"""test_cards.py — the test cards that do not simply approve or decline: tok_error
(the gateway answers 500) and tok_slow (approves after 5 s: within the default
6 s call budget, and past the 3 s budget the first pair is given, to test the
timeout path). Their own pairs; the breaker judges a wide window so that these
deliberate failures do not open it.
"""
import time
import unittest

import grpc

import harness


class CardsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pair = harness.Pair("cards", svc_flags=["--breaker-window", "100", "--gateway-timeout-ms", "3000"])
        cls.client = cls.pair.client

    @classmethod
    def tearDownClass(cls):
        svc_rc, sim_rc = cls.pair.stop()
        assert (svc_rc, sim_rc) == (0, 0), f"the cards pair exits 0 on SIGTERM ({svc_rc}, {sim_rc})"

    def setUp(self):
        self.user = harness.make_user()
        self.reservation = harness.make_reservation(self.user)

    def test_gateway_error_is_retried_then_pending_never_charged(self):
        key = harness.new_key()
        result = self.client.charge(self.reservation, self.user, card="tok_error", key=key)
        self.assertEqual((result.code, result.error_code),
                         (grpc.StatusCode.UNAVAILABLE, "payment_unavailable"), str(result))
        self.assertIn("same idempotency key", result.details)
        self.assertLess(result.elapsed, 3.5, "retries stay within the 3 s call timeout")
        payment_id = harness.payment_id_for_key(key)
        approve = harness.attempts(payment_id, "approve")
        self.assertEqual([(a[1], a[2], a[3]) for a in approve],
                         [("1", "500", "server_error"), ("2", "500", "server_error"), ("3", "500", "server_error")])
        self.assertEqual(self.client.get(payment_id).reply.status, "pending")
        again = self.client.charge(self.reservation, self.user, card="tok_error", key=key)
        self.assertEqual(again.error_code, "payment_unavailable")
        self.assertEqual(len(harness.attempts(payment_id, "prepare")), 1, "the intent is prepared once")
        self.assertEqual(self.pair.sim_api.ledger(payment_id=payment_id)["charges"], 0)
        retries = harness.metric(self.pair.metrics_url, "tiketi_payment_gateway_retries_total", gateway="card",
                                 operation="confirm")
        self.assertGreaterEqual(retries, 4)

    def test_slow_card_times_out_pending_then_the_retry_finds_it_approved(self):
        key = harness.new_key()
        started = time.monotonic()
        result = self.client.charge(self.reservation, self.user, card="tok_slow", key=key)
        self.assertEqual((result.code, result.error_code),
                         (grpc.StatusCode.UNAVAILABLE, "payment_unavailable"), str(result))
        self.assertGreater(result.elapsed, 2.8)
        self.assertLess(result.elapsed, 4.0, "the 3 s call timeout holds")
        payment_id = harness.payment_id_for_key(key)
        self.assertEqual(self.client.get(payment_id).reply.status, "pending")
        self.assertEqual(harness.attempts(payment_id, "approve")[-1][3], "timeout")
        time.sleep(max(0.0, 5.6 - (time.monotonic() - started)))  # the gateway finishes the slow charge
        retry = self.client.charge(self.reservation, self.user, card="tok_slow", key=key)
        self.assertTrue(retry.ok, str(retry))
        self.assertEqual((retry.reply.status, retry.reply.payment_id), ("approved", payment_id))
        ledger = self.pair.sim_api.ledger(payment_id=payment_id)
        self.assertEqual(ledger["charges"], 1, ledger)


class DefaultBudgetTest(unittest.TestCase):
    """With the default --gateway-timeout-ms a slow bank (5 s) is approved in one call: the
    local stack's slow test card must not end as an undecided payment."""

    @classmethod
    def setUpClass(cls):
        cls.pair = harness.Pair("cards-default")
        cls.client = cls.pair.client

    @classmethod
    def tearDownClass(cls):
        svc_rc, sim_rc = cls.pair.stop()
        assert (svc_rc, sim_rc) == (0, 0), f"the cards-default pair exits 0 on SIGTERM ({svc_rc}, {sim_rc})"

    def test_slow_card_is_approved_within_the_default_budget(self):
        user = harness.make_user()
        result = self.client.charge(harness.make_reservation(user), user, card="tok_slow", key=harness.new_key())
        self.assertTrue(result.ok, str(result))
        self.assertEqual(result.reply.status, "approved")
        self.assertGreater(result.elapsed, 4.0, "tok_slow takes about 5 s")


if __name__ == "__main__":
    unittest.main()
