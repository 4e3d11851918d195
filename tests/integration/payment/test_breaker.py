"""test_breaker.py — the circuit breaker end to end, on its own pair with a 1 s gateway
timeout and a 2 s open period (the production values are 3 s and 30 s; the window of
10 calls at 50 % is the production one).

The gateway hangs; ten charges time out; the breaker opens; further charges fail fast
with UNAVAILABLE "payment_unavailable" without a request reaching the gateway; after
the open period the breaker reads half-open and lets one probe through; the probe
fails (still hanging) and it opens again; the gateway recovers; the next probe closes
it. Every charge, retried with its key, ends approved exactly once in the ledger.
"""
import concurrent.futures
import time
import unittest

import grpc

import harness

OPEN_MS = 2000
TIMEOUT_MS = 1000


class BreakerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pair = harness.Pair("breaker", svc_flags=["--gateway-timeout-ms", str(TIMEOUT_MS), "--breaker-open-ms",
                                                      str(OPEN_MS), "--workers", "12",
                                                      # one probe per round keeps each step of the walk
                                                      # observable; rounds of several probes are unit-tested
                                                      "--breaker-probes", "1"])
        cls.client, cls.sim, cls.metrics = cls.pair.client, cls.pair.sim_api, cls.pair.metrics_url

    @classmethod
    def tearDownClass(cls):
        cls.sim.clear_faults()
        svc_rc, sim_rc = cls.pair.stop()
        assert (svc_rc, sim_rc) == (0, 0), f"the breaker pair exits 0 on SIGTERM ({svc_rc}, {sim_rc})"

    def state(self):
        return harness.breaker_state(self.metrics)

    def transitions(self, to):
        return harness.metric(self.metrics, "tiketi_payment_breaker_transitions_total", gateway="card", to=to)

    def sim_requests(self):
        return self.sim.faults()[1]["counters"]["requests"]

    def wait_state(self, want, seconds):
        return harness.wait_for(lambda: self.state() == want, seconds)

    def test_hang_opens_fails_fast_half_opens_and_closes_on_recovery(self):
        user = harness.make_user()
        charges = []

        def charge(key=None):
            reservation, key = harness.make_reservation(user), key or harness.new_key()
            charges.append((reservation, key))
            return self.client.charge(reservation, user, key=key)

        self.assertEqual(self.state(), 0.0)
        self.assertTrue(charge().ok, "warm-up")

        # ---- the gateway hangs: ten charges time out, the breaker opens ----
        self.sim.faults(hang=True)
        reservations = [(harness.make_reservation(user), harness.new_key()) for _ in range(10)]
        charges.extend(reservations)
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            hung = list(pool.map(lambda rk: self.client.charge(rk[0], user, key=rk[1]), reservations))
        for result in hung:
            self.assertEqual((result.code, result.error_code),
                             (grpc.StatusCode.UNAVAILABLE, "payment_unavailable"), str(result))
            self.assertLess(result.elapsed, TIMEOUT_MS / 1000 + 1.0)
        self.assertEqual(self.state(), 1.0, "open after a window of timeouts")
        opened_at = time.monotonic()
        self.assertGreaterEqual(self.transitions("open"), 1)

        # ---- open: fail fast, nothing reaches the gateway ----
        requests_before = self.sim_requests()
        for _ in range(5):
            result = charge()
            self.assertEqual((result.code, result.error_code),
                             (grpc.StatusCode.UNAVAILABLE, "payment_unavailable"), str(result))
            self.assertIn("circuit", result.details)
            self.assertLess(result.elapsed, 0.5, "fails fast while open (no 1 s gateway timeout)")
        self.assertEqual(self.sim_requests() - requests_before, 1, "only this test's own read reached the simulator")
        pending = self.client.get(harness.payment_id_for_key(charges[-1][1]))
        self.assertTrue(pending.ok and pending.reply.status == "pending", "reads work while open")
        short = harness.metric(self.metrics, "tiketi_payment_gateway_attempts_total", gateway="card",
                               operation="prepare", outcome="short_circuited")
        self.assertIsNotNone(short)

        # ---- half-open after the open period; a failing probe opens it again ----
        self.assertTrue(self.wait_state(2.0, OPEN_MS / 1000 + 1.5), f"half-open, state {self.state()}")
        self.assertGreaterEqual(time.monotonic() - opened_at, OPEN_MS / 1000 - 0.2)
        probe = charge()
        self.assertEqual(probe.error_code, "payment_unavailable", str(probe))
        self.assertGreater(probe.elapsed, TIMEOUT_MS / 1000 - 0.2, "the probe really went to the gateway")
        self.assertEqual(self.state(), 1.0, "a failed probe opens the breaker again")

        # ---- the gateway recovers: the next probe closes it ----
        self.sim.faults(hang=False)
        self.assertTrue(self.wait_state(2.0, OPEN_MS / 1000 + 1.5), f"half-open again, state {self.state()}")
        recovered = charge()
        self.assertTrue(recovered.ok, str(recovered))
        self.assertEqual(self.state(), 0.0, "a successful probe closes the breaker")
        self.assertGreaterEqual(self.transitions("open"), 2)
        self.assertGreaterEqual(self.transitions("half_open"), 2)
        self.assertGreaterEqual(self.transitions("closed"), 1)

        # ---- every charge, retried with its key, is charged exactly once ----
        for reservation, key in charges:
            result = self.client.charge(reservation, user, key=key)
            self.assertTrue(result.ok, f"{key}: {result}")
            ledger = self.sim.ledger(payment_id=result.reply.payment_id)
            self.assertEqual(ledger["charges"], 1, f"{key}: charged {ledger['charges']} times")
        self.assertEqual(self.state(), 0.0)


class OneCallOneFailureTest(unittest.TestCase):
    """A call's retries under one key add at most one failure to the window (found on the
    local stack: one always-failing test card, re-asked by the reservation saga, filled the
    window by itself and kept the breaker opening for every customer). Window 4 at 50 %; a
    charge is a prepare (succeeds) and a confirm (tok_error: 3 attempts, all 500). The charge
    and its repeat leave 3 outcomes (S F F: the window is not full, closed; counted per attempt
    it would be S F F F F F F, open); a second charge makes the last four F F S F: open."""

    @classmethod
    def setUpClass(cls):
        cls.pair = harness.Pair("breaker-per-call", svc_flags=["--breaker-window", "4", "--breaker-failure-percent",
                                                               "50", "--gateway-attempts", "3"])
        cls.client, cls.metrics = cls.pair.client, cls.pair.metrics_url

    @classmethod
    def tearDownClass(cls):
        svc_rc, sim_rc = cls.pair.stop()
        assert (svc_rc, sim_rc) == (0, 0), f"the breaker-per-call pair exits 0 on SIGTERM ({svc_rc}, {sim_rc})"

    def test_a_call_and_its_repeats_are_one_failure_each_and_distinct_calls_open_it(self):
        user = harness.make_user()
        reservation, key = harness.make_reservation(user), harness.new_key()
        for _ in range(2):  # the call and the saga's repeat under the same key
            result = self.client.charge(reservation, user, card="tok_error", key=key)
            self.assertEqual(result.error_code, "payment_unavailable", str(result))
        attempts = harness.attempts(harness.payment_id_for_key(key), "approve")
        self.assertEqual(len(attempts), 6, f"each call made its 3 attempts: {attempts}")
        self.assertEqual(harness.breaker_state(self.metrics), 0.0, "6 failed attempts of 2 calls opened a window of 4")
        result = self.client.charge(harness.make_reservation(user), user, card="tok_error", key=harness.new_key())
        self.assertEqual(result.error_code, "payment_unavailable", str(result))
        self.assertEqual(harness.breaker_state(self.metrics), 1.0, "3 of the last 4 outcomes failed")


if __name__ == "__main__":
    unittest.main()
