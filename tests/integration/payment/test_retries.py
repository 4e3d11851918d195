"""test_retries.py — retries only where safe: gateway errors, dropped answers and a
slow gateway are retried under the same idempotency key (by payment-svc within the
call, or by the caller after a pending answer) and no payment is ever charged twice;
declines are not retried. Own pair: 6 attempts per call within a 3 s budget, and a
breaker that only opens at 100 % over 200 calls, so the injected faults test the
retries, not the breaker.
"""
import time
import unittest

import grpc

import harness


class RetriesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pair = harness.Pair("retries", svc_flags=["--gateway-attempts", "6", "--gateway-timeout-ms", "3000", "--breaker-window", "200",
                                                      "--breaker-failure-percent", "100"])
        cls.client, cls.sim = cls.pair.client, cls.pair.sim_api

    @classmethod
    def tearDownClass(cls):
        svc_rc, sim_rc = cls.pair.stop()
        assert (svc_rc, sim_rc) == (0, 0), f"the retries pair exits 0 on SIGTERM ({svc_rc}, {sim_rc})"

    def setUp(self):
        self.sim.clear_faults()

    def retries(self):
        return sum(harness.metric(self.pair.metrics_url, "tiketi_payment_gateway_retries_total", gateway="card",
                                  operation=op) for op in ("prepare", "confirm"))

    def charge_many_under_faults(self, count, **faults):
        """Charges under the faults, then without them retries what was left pending; returns payment ids."""
        user = harness.make_user()
        charges = [(harness.make_reservation(user), harness.new_key()) for _ in range(count)]
        self.sim.faults(**faults)
        first = [self.client.charge(r, user, key=k) for r, k in charges]
        self.sim.clear_faults()
        approved_first = 0
        for result in first:
            if result.ok:
                approved_first += 1
                self.assertEqual(result.reply.status, "approved")
            else:
                self.assertEqual((result.code, result.error_code),
                                 (grpc.StatusCode.UNAVAILABLE, "payment_unavailable"), str(result))
        ids = []
        for (reservation, key), result in zip(charges, first):
            again = self.client.charge(reservation, user, key=key)
            self.assertTrue(again.ok, str(again))
            if result.ok:
                self.assertEqual(again.reply.payment_id, result.reply.payment_id)
            ids.append(again.reply.payment_id)
        for payment_id in ids:
            ledger = self.sim.ledger(payment_id=payment_id)
            self.assertEqual(ledger["charges"], 1, f"payment {payment_id} charged {ledger['charges']} times")
        return ids, approved_first

    def test_gateway_errors_are_retried_and_never_double_charge(self):
        before_retries, before = self.retries(), self.sim.faults()[1]
        ids, approved_first = self.charge_many_under_faults(8, error_rate=0.5)
        after = self.sim.faults()[1]
        self.assertGreater(after["injected"]["errors"], before["injected"]["errors"])
        self.assertGreater(self.retries(), before_retries, "payment-svc retried")
        self.assertGreater(after["counters"]["replays"], before["counters"]["replays"],
                           "some retries hit a request the gateway had already executed, and got its answer")
        self.assertGreaterEqual(approved_first, 5, "6 attempts at 50 % errors get almost every charge through")
        outcomes = {a[3] for p in ids for a in harness.attempts(p)}
        self.assertIn("server_error", outcomes)

    def test_dropped_answers_are_retried_and_never_double_charge(self):
        before = self.sim.faults()[1]
        ids, approved_first = self.charge_many_under_faults(8, drop=0.5)
        after = self.sim.faults()[1]
        self.assertGreater(after["injected"]["drops"], before["injected"]["drops"])
        self.assertGreater(after["counters"]["replays"], before["counters"]["replays"])
        self.assertGreaterEqual(approved_first, 5)
        outcomes = {a[3] for p in ids for a in harness.attempts(p)}
        self.assertIn("network_error", outcomes)

    def test_slow_gateway_times_out_and_the_retry_finds_the_first_answer(self):
        user = harness.make_user()
        reservation, key = harness.make_reservation(user), harness.new_key()
        self.sim.faults(latency_ms=3400)
        result = self.client.charge(reservation, user, key=key)
        self.assertEqual(result.error_code, "payment_unavailable", str(result))
        self.assertLess(result.elapsed, 3.6)
        self.sim.clear_faults()
        time.sleep(0.6)  # the gateway finishes the request the client gave up on
        again = self.client.charge(reservation, user, key=key)
        self.assertTrue(again.ok, str(again))
        payment_id = again.reply.payment_id
        self.assertEqual(self.sim.ledger(payment_id=payment_id)["charges"], 1)
        prepare = harness.attempts(payment_id, "prepare")
        self.assertEqual([a[3] for a in prepare], ["timeout", "success"])

    def test_declines_are_never_retried(self):
        before = self.retries()
        user = harness.make_user()
        key = harness.new_key()
        result = self.client.charge(harness.make_reservation(user), user, card="tok_decline", key=key)
        self.assertEqual(result.error_code, "payment_declined", str(result))
        self.assertEqual(self.retries(), before)
        self.assertEqual(len(harness.attempts(harness.payment_id_for_key(key), "approve")), 1)


if __name__ == "__main__":
    unittest.main()
