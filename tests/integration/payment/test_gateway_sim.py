"""test_gateway_sim.py — the gateway simulator on its own, over HTTP and raw sockets:
the API a real gateway would offer, its idempotency table, the fault knobs at run
time, and hostile HTTP that must never take it down.
"""
import concurrent.futures
import socket
import time
import unittest

import harness


class SimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = harness.shared_sim()
        cls.address = cls.sim.url.split("//", 1)[1]

    def setUp(self):
        self.sim.clear_faults()

    def tearDown(self):
        self.sim.clear_faults()
        self.assertTrue(self.sim.healthy(), "the simulator must still answer after every test")

    def intent(self, card="tok_approve", amount=1200, key=None, metadata=None):
        body = {"amount": amount, "currency": "eur", "card_token": card}
        if metadata is not None:
            body["metadata"] = metadata
        return self.sim.post("/v1/payment_intents", body, key or harness.new_key("sim"))

    def confirm(self, intent_id, key=None):
        return self.sim.post(f"/v1/payment_intents/{intent_id}/confirm", {}, key or harness.new_key("sim"))


class GatewayApiTest(SimTest):
    def test_prepare_confirm_refund(self):
        status, _, intent = self.intent(metadata={"payment_id": "sim-flow"})
        self.assertEqual(status, 201, intent)
        self.assertEqual((intent["status"], intent["currency"], intent["card"]["token_hint"]),
                         ("requires_confirmation", "EUR", "tok_****ve"))
        status, _, confirmed = self.confirm(intent["id"])
        self.assertEqual((status, confirmed["status"]), (200, "succeeded"), confirmed)
        self.assertTrue(confirmed["charge"].startswith("ch_"))
        status, _, again = self.confirm(intent["id"])  # a new key: a second confirm is refused, not charged
        self.assertEqual((status, again["error"]["code"]), (400, "payment_intent_unexpected_state"))
        status, _, refund = self.sim.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 200},
                                          harness.new_key())
        self.assertEqual((status, refund["amount"], refund["status"]), (201, 200, "succeeded"), refund)
        status, _, rest = self.sim.post("/v1/refunds", {"payment_intent": intent["id"]}, harness.new_key())
        self.assertEqual((status, rest["amount"]), (201, 1000))
        status, _, none_left = self.sim.post("/v1/refunds", {"payment_intent": intent["id"]}, harness.new_key())
        self.assertEqual((status, none_left["error"]["code"]), (400, "charge_already_refunded"))
        ledger = self.sim.ledger(intent=intent["id"])
        self.assertEqual((ledger["charges"], ledger["refunds"], ledger["charged_amount"], ledger["refunded_amount"]),
                         (1, 2, 1200, 1200), ledger)
        self.assertEqual(ledger["entries"][0]["payment_id"], "sim-flow")
        status, _, read = harness.http("GET", f"{self.sim.url}/v1/payment_intents/{intent['id']}")
        self.assertEqual((status, read["amount_refunded"]), (200, 1200))

    def test_test_cards(self):
        for card, want_status, want_code in (("tok_decline", 402, "generic_decline"),
                                             ("tok_whatever", 402, "unknown_card")):
            _, _, intent = self.intent(card=card)
            status, _, body = self.confirm(intent["id"])
            self.assertEqual(status, want_status, body)
            self.assertEqual((body["error"]["type"], body["error"]["decline_code"]), ("card_error", want_code))
            self.assertEqual(body["payment_intent"]["status"], "requires_payment_method")
            self.assertEqual(self.sim.ledger(intent=intent["id"])["charges"], 0)
        _, _, intent = self.intent(card="tok_error")
        key = harness.new_key()
        for _ in range(2):  # a 500 is not stored: the same key runs again (and fails again)
            status, head, body = self.confirm(intent["id"], key=key)
            self.assertEqual((status, body["error"]["code"]), (500, "processor_error"))
            self.assertNotIn("idempotent-replayed", head)
        self.assertEqual(self.sim.ledger(intent=intent["id"])["charges"], 0)

    def test_slow_card_holds_its_key_in_progress(self):
        _, _, intent = self.intent(card="tok_slow")
        key = harness.new_key()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(self.confirm, intent["id"], key)
            time.sleep(0.3)
            status, _, body = self.confirm(intent["id"], key=key)
            self.assertEqual((status, body["error"]["code"]), (409, "request_in_progress"))
            started = time.monotonic()
            status, _, body = slow.result(timeout=10)
            self.assertEqual((status, body["status"]), (200, "succeeded"))
            self.assertGreater(time.monotonic() - started + 0.3, 4.0, "tok_slow approves after about 5 s")
        status, head, body = self.confirm(intent["id"], key=key)
        self.assertEqual((status, head.get("idempotent-replayed")), (200, "true"))
        self.assertEqual(self.sim.ledger(intent=intent["id"])["charges"], 1)

    def test_idempotency_key_replays_the_first_answer(self):
        key = harness.new_key()
        status1, head1, first = self.intent(key=key)
        status2, head2, second = self.intent(key=key)
        self.assertEqual((status1, status2), (201, 201))
        self.assertEqual(first["id"], second["id"])
        self.assertNotIn("idempotent-replayed", head1)
        self.assertEqual(head2.get("idempotent-replayed"), "true")
        # the same JSON in another key order is the same request
        body = {"card_token": "tok_approve", "currency": "eur", "amount": 1200}
        status3, _, third = self.sim.post("/v1/payment_intents", body, key)
        self.assertEqual((status3, third["id"]), (201, first["id"]))
        status4, _, mismatch = self.intent(key=key, amount=1300)
        self.assertEqual((status4, mismatch["error"]["code"]), (422, "idempotency_key_reused"))

    def test_post_without_a_key_or_with_bad_json_is_refused(self):
        status, _, body = self.sim.post("/v1/payment_intents", {"amount": 1, "currency": "eur", "card_token": "x"})
        self.assertEqual((status, body["error"]["code"]), (400, "idempotency_key_missing"))
        status, _, body = self.sim.post("/v1/payment_intents", b"{not json", harness.new_key())
        self.assertEqual((status, body["error"]["code"]), (400, "invalid_json"))
        for bad in ({"amount": -5, "currency": "eur", "card_token": "tok_approve"},
                    {"amount": "12", "currency": "eur", "card_token": "tok_approve"},
                    {"amount": 5, "currency": "euro", "card_token": "tok_approve"},
                    {"amount": 5, "currency": "eur", "card_token": ""},
                    {"amount": 5, "currency": "eur", "card_token": "tok_approve", "metadata": [1]}):
            status, _, body = self.sim.post("/v1/payment_intents", bad, harness.new_key())
            self.assertEqual(status, 400, (bad, body))
        status, _, body = self.confirm("pi_doesnotexist")
        self.assertEqual((status, body["error"]["code"]), (404, "resource_missing"))
        status, _, _ = harness.http("DELETE", f"{self.sim.url}/v1/refunds")
        self.assertEqual(status, 405)
        status, _, _ = harness.http("GET", f"{self.sim.url}/nowhere")
        self.assertEqual(status, 404)


class FaultKnobTest(SimTest):
    def test_knobs_are_set_and_read_at_run_time(self):
        status, faults = self.sim.faults(latency_ms=250, error_rate=0.25, drop=0.5, hang=False)
        self.assertEqual(status, 200)
        self.assertEqual((faults["latency_ms"], faults["error_rate"], faults["drop"], faults["hang"]),
                         (250, 0.25, 0.5, False))
        status, faults = self.sim.faults(drop=True)  # partial update; a boolean drop means always
        self.assertEqual((faults["latency_ms"], faults["drop"]), (250, 1.0))
        status, read = self.sim.faults()
        self.assertEqual((status, read["error_rate"]), (200, 0.25))
        for bad in ({"error_rate": 2}, {"error_rate": "high"}, {"latency_ms": -1}, {"hang": "yes"},
                    {"drop": 3}, {"latency_ms": 10**9}):
            status, body = self.sim.faults(**bad)
            self.assertEqual((status, body["error"]["code"]), (400, "invalid_faults"), bad)
        status, _, _ = harness.http("POST", f"{self.sim.url}/v1/_sim/faults", b"[]")
        self.assertEqual(status, 400)
        self.assertEqual(self.sim.faults()[1]["latency_ms"], 250, "a refused update changes nothing")

    def test_latency_delays_gateway_routes_only(self):
        self.sim.faults(latency_ms=400)
        started = time.monotonic()
        self.intent()
        self.assertGreaterEqual(time.monotonic() - started, 0.38)
        started = time.monotonic()
        self.assertTrue(self.sim.healthy())
        self.sim.ledger()
        self.assertLess(time.monotonic() - started, 0.3, "health and /v1/_sim routes are never delayed")

    def test_error_rate_one_fails_everything_before_anything_happens(self):
        before = self.sim.faults()[1]["injected"]["errors"]
        self.sim.faults(error_rate=1)
        key = harness.new_key()
        status, _, body = self.intent(key=key)
        self.assertEqual((status, body["error"]["code"]), (500, "injected_fault"))
        self.sim.faults(error_rate=0)
        status, _, body = self.intent(key=key)
        self.assertIn(status, (201,), body)  # whether or not the 500 came after executing, the key now answers
        self.assertGreater(self.sim.faults()[1]["injected"]["errors"], before)

    def test_drop_executes_then_closes_without_an_answer(self):
        _, _, intent = self.intent()
        self.sim.faults(drop=True)
        key = harness.new_key()
        with self.assertRaises(Exception):  # connection closed without a response
            self.confirm(intent["id"], key=key)
        self.sim.faults(drop=0)
        status, head, body = self.confirm(intent["id"], key=key)
        self.assertEqual((status, body["status"], head.get("idempotent-replayed")), (200, "succeeded", "true"),
                         "the dropped request was executed: its retry gets the stored answer")
        self.assertEqual(self.sim.ledger(intent=intent["id"])["charges"], 1)

    def test_hang_holds_requests_until_cleared(self):
        self.sim.faults(hang=True)
        started = time.monotonic()
        with self.assertRaises(Exception):
            harness.http(
                "POST", f"{self.sim.url}/v1/payment_intents",
                {"amount": 1, "currency": "eur", "card_token": "tok_approve"},
                {"Idempotency-Key": harness.new_key()}, timeout=0.6)
        self.assertGreaterEqual(time.monotonic() - started, 0.55)
        self.assertTrue(self.sim.healthy(), "the simulator's own routes still answer while hanging")
        self.sim.faults(hang=False)
        status, _, _ = self.intent()
        self.assertEqual(status, 201)
        self.assertGreaterEqual(self.sim.faults()[1]["injected"]["hangs"], 1)


class HostileHttpTest(SimTest):
    def exchange(self, payload, **kw):
        return harness.raw_exchange(self.address, payload, **kw)

    def test_garbage_is_answered_400_and_closed(self):
        for payload in (b"garbage\r\n\r\n", b"\x00\x01\x02\xff\r\n\r\n", b"GET\r\n\r\n",
                        b"GET / HTTP/9.9\r\n\r\n", b"GET nopath HTTP/1.1\r\n\r\n",
                        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"GET / HTTP/1.1\r\n bad: fold\r\n\r\n",
                        b"GET /healthz HTTP/1.1\r\nX\x00Y: 1\r\n\r\n",
                        b"POST /v1/refunds HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                        b"POST /v1/refunds HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                        b"POST /v1/refunds HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"):
            answer = self.exchange(payload)
            self.assertTrue(answer.startswith(b"HTTP/1.1 4"), (payload, answer[:80]))
        self.assertTrue(self.sim.healthy())

    def test_oversized_body_and_headers_are_refused(self):
        answer = self.exchange(b"POST /v1/payment_intents HTTP/1.1\r\nIdempotency-Key: big\r\n"
                               b"Content-Length: 10000000\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:80])
        status, _, body = self.sim.post("/v1/payment_intents", b"{" + b" " * 70000 + b"}", harness.new_key())
        self.assertEqual(status, 413)
        answer = self.exchange(b"GET /healthz HTTP/1.1\r\nX-Filler: " + b"a" * 9000 + b"\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 431"), answer[:80])
        answer = self.exchange(b"POST /v1/refunds HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 501"), answer[:80])
        deep = b"[" * 30000 + b"]" * 30000  # deep nesting within the size bound
        status, _, body = self.sim.post("/v1/payment_intents", deep, harness.new_key())
        self.assertEqual(status, 400)

    def test_truncated_and_slow_requests_are_dropped(self):
        for payload in (b"POST /v1/refunds HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"a\":",
                        b"GET /healthz HTTP/1.1\r\nHost: x"):
            self.exchange(payload, read=False)  # and close at once
        host, port = self.address.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET /healthz HTTP/1.1\r\n")  # then say nothing: the simulator gives up, others are served
        self.assertTrue(self.sim.healthy())
        s.close()

    def test_keep_alive_and_pipelining(self):
        answer = self.exchange(b"GET /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        self.assertEqual(answer.count(b"HTTP/1.1 200 OK"), 2, answer)

    def test_many_connections_at_once(self):
        def one(_):
            return harness.http("GET", f"{self.sim.url}/healthz")[0]
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(one, range(200)))
        self.assertEqual(set(statuses), {200})


if __name__ == "__main__":
    unittest.main()
