"""test_reservations.py — holds, reservations, payment and cancellation through the edge, with
their error shapes (409 seat_unavailable + unavailable, 403 not_admitted, 422 over the cap, 402
declined, 410 hold expired, 503 payments unavailable), and ownership (another user's
reservation is 404). Needs reservation-svc (and payment-svc + gateway-sim for payments)."""
import json
import time
import urllib.request
import uuid

from harness import EdgeTestCase, api, create_event, env, new_account, skip_unless

HOLD_ROUTES = [["POST", "/api/v1/events/{event_id}/holds"], ["GET", "/api/v1/reservations"],
               ["GET", "/api/v1/reservations/{reservation_id}"], ["DELETE", "/api/v1/reservations/{reservation_id}"]]
PAY_ROUTES = [["POST", "/api/v1/reservations/{reservation_id}/payment"],
              ["POST", "/api/v1/reservations/{reservation_id}/cancel"]]


def hold(account, event_id, body, token=None, key=None):
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    if token:
        headers["X-Admission-Token"] = token
    return api("POST", f"/api/v1/events/{event_id}/holds", body=body, token=account.access, headers=headers)


def pay(account, reservation_id, card="tok_approve", key=None):
    return api("POST", f"/api/v1/reservations/{reservation_id}/payment", token=account.access,
               body={"method": "card", "card_token": card}, headers={"Idempotency-Key": key or str(uuid.uuid4())})


def admission(account, event_id):
    view = api("POST", f"/api/v1/events/{event_id}/queue", token=account.access).json()
    return view.get("admission_token")


class Holds(EdgeTestCase):
    def setUp(self):
        skip_unless("auth-svc", "event-svc", "queue-svc", "reservation-svc", routes=HOLD_ROUTES)

    def test_hold_by_seat_ids_then_a_conflict(self):
        event_id = create_event(rows=1, seats_per_row=10, price=3000)
        alice, bob = new_account("alice"), new_account("bob")
        reply = hold(alice, event_id, {"seat_ids": ["1", "2"]}, token=admission(alice, event_id))
        self.assertStatus(reply, 201)
        body = reply.json()
        self.assertEqual((sorted(body["seat_ids"]), body["amount"]), (["1", "2"], 6000))
        self.assertTrue(body["reservation_id"] and body["expires_at"])
        conflict = hold(bob, event_id, {"seat_ids": ["2", "3"]}, token=admission(bob, event_id))
        problem = self.assertProblem(conflict, 409, "seat_unavailable")
        self.assertEqual(problem["unavailable"], ["2"])

    def test_best_available_and_bad_bodies(self):
        event_id = create_event(rows=2, seats_per_row=10)
        carol = new_account("carol")
        token = admission(carol, event_id)
        reply = hold(carol, event_id, {"count": 3}, token=token)
        self.assertStatus(reply, 201)
        self.assertEqual(len(reply.json()["seat_ids"]), 3)
        for body in ({}, {"count": 2, "seat_ids": ["5"]}, {"count": 0}, {"seat_ids": [5]}, {"seat_ids": []}):
            self.assertProblem(hold(carol, event_id, body, token=token), 400, "invalid_request", body)
        no_key = api("POST", f"/api/v1/events/{event_id}/holds", body={"count": 1}, token=carol.access)
        self.assertProblem(no_key, 400, "invalid_request", "Idempotency-Key is required")

    def test_the_same_idempotency_key_holds_once(self):
        event_id = create_event(rows=1, seats_per_row=10)
        dave = new_account("dave")
        token, key = admission(dave, event_id), str(uuid.uuid4())
        first = hold(dave, event_id, {"seat_ids": ["4"]}, token=token, key=key)
        second = hold(dave, event_id, {"seat_ids": ["4"]}, token=token, key=key)
        self.assertStatus(first, 201)
        self.assertEqual(second.json()["reservation_id"], first.json()["reservation_id"])

    def test_over_the_per_user_cap_is_422(self):
        event_id = create_event(rows=1, seats_per_row=10, max_seats_per_user=2)
        erin = new_account("erin")
        self.assertProblem(hold(erin, event_id, {"seat_ids": ["1", "2", "3"]}, token=admission(erin, event_id)), 422,
                           "seat_cap_reached")

    def test_a_queued_event_needs_the_admission_token(self):
        event_id = create_event(queue={"enabled": True, "admit_per_s": 100, "max_active": 100})
        frank = new_account("frank")
        self.assertProblem(hold(frank, event_id, {"count": 1}), 403, "not_admitted")
        token = None
        for _ in range(50):
            token = admission(frank, event_id)
            if token:
                break
            time.sleep(0.1)
        self.assertStatus(hold(frank, event_id, {"count": 1}, token=token), 201)

    def test_mine_only_and_release(self):
        event_id = create_event(rows=1, seats_per_row=10)
        gina, hugo = new_account("gina"), new_account("hugo")
        reservation_id = hold(gina, event_id, {"seat_ids": ["7"]}, token=admission(gina, event_id)).json()["reservation_id"]
        mine = api("GET", f"/api/v1/reservations/{reservation_id}", token=gina.access)
        self.assertStatus(mine, 200)
        self.assertEqual((mine.json()["status"], mine.json()["seat_ids"]), ("pending", ["7"]))
        listed = api("GET", "/api/v1/reservations", token=gina.access)
        self.assertStatus(listed, 200)
        self.assertIn(reservation_id, [r["reservation_id"] for r in listed.json()])
        self.assertProblem(api("GET", f"/api/v1/reservations/{reservation_id}", token=hugo.access), 404, "not_found")
        self.assertProblem(api("DELETE", f"/api/v1/reservations/{reservation_id}", token=hugo.access), 404, "not_found")
        self.assertEqual(api("GET", "/api/v1/reservations", token=hugo.access).json(), [])
        self.assertProblem(api("GET", "/api/v1/reservations", token=None), 401, "unauthenticated")
        self.assertStatus(api("DELETE", f"/api/v1/reservations/{reservation_id}", token=gina.access), 204)
        self.assertProblem(api("GET", "/api/v1/reservations/no-such-reservation", token=gina.access), 404, "not_found")


class Payments(EdgeTestCase):
    def setUp(self):
        skip_unless("auth-svc", "event-svc", "queue-svc", "reservation-svc", "payment-svc", routes=PAY_ROUTES)

    def held(self, account, **event):
        event_id = create_event(**event)
        reply = hold(account, event_id, {"count": 1}, token=admission(account, event_id))
        self.assertStatus(reply, 201)
        return event_id, reply.json()["reservation_id"]

    def test_pay_then_cancel(self):
        ivy = new_account("ivy")
        _, reservation_id = self.held(ivy)
        paid = pay(ivy, reservation_id)
        self.assertStatus(paid, 200)
        self.assertEqual(paid.json()["status"], "confirmed")
        self.assertTrue(paid.json()["payment_id"])
        self.assertEqual(api("GET", f"/api/v1/reservations/{reservation_id}", token=ivy.access).json()["status"],
                         "confirmed")
        self.assertProblem(api("POST", f"/api/v1/reservations/{reservation_id}/cancel",
                               token=new_account("other").access), 404, "not_found")
        cancelled = api("POST", f"/api/v1/reservations/{reservation_id}/cancel", token=ivy.access)
        self.assertStatus(cancelled, 200)
        self.assertEqual(cancelled.json()["status"], "cancelled")

    def test_declined_expired_and_bad_requests(self):
        jay = new_account("jay")
        _, reservation_id = self.held(jay)
        self.assertProblem(pay(jay, reservation_id, card="tok_decline"), 402, "payment_declined")
        self.assertProblem(api("POST", f"/api/v1/reservations/{reservation_id}/payment", token=jay.access,
                               body={"method": "cash", "card_token": "tok_approve"},
                               headers={"Idempotency-Key": "k"}), 400, "invalid_request")
        self.assertProblem(pay(jay, "rsv_00000000ffffffff00000000ffffffff"), 404, "not_found")
        _, short_id = self.held(jay, hold_ttl_s=1)
        time.sleep(2.2)
        self.assertProblem(pay(jay, short_id), 410, "hold_expired")

    def test_payments_unavailable_keeps_the_hold(self):
        kim = new_account("kim")
        _, reservation_id = self.held(kim)
        faults = env("SIM_URL") + "/v1/_sim/faults"

        def set_faults(body):
            request = urllib.request.Request(faults, data=json.dumps(body).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=5).read()

        set_faults({"hang": True})
        try:
            self.assertProblem(pay(kim, reservation_id), 503, "payment_unavailable")
        finally:
            set_faults({"hang": False, "error_rate": 0, "latency_ms": 0, "drop": 0})
        self.assertEqual(api("GET", f"/api/v1/reservations/{reservation_id}", token=kim.access).json()["status"],
                         "pending", "the hold is kept")
