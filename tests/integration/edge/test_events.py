"""test_events.py — events (list, detail), the admin route, and seat maps with ETag/304 and gzip."""
import gzip
import json
import time

from harness import EdgeTestCase, Engine, admin, api, create_event, event_body, new_account, skip_unless, unique

EVENT_ROUTES = [["GET", "/api/v1/events"], ["GET", "/api/v1/events/{event_id}"],
                ["GET", "/api/v1/events/{event_id}/seats"], ["POST", "/api/v1/admin/events"]]
SUMMARY_FIELDS = {"event_id", "name", "venue", "starts_at", "sale_opens_at", "status", "capacity", "available"}


class EventsTestCase(EdgeTestCase):
    def setUp(self):
        skip_unless("auth-svc", "event-svc", routes=EVENT_ROUTES)


class AdminCreate(EventsTestCase):
    def test_admin_creates_an_event(self):
        body = event_body(rows=3, seats_per_row=4, price=2500, hold_ttl_s=120, max_seats_per_user=4)
        reply = api("POST", "/api/v1/admin/events", body=body, token=admin().access)
        self.assertStatus(reply, 201)
        event_id = reply.json()["event_id"]
        self.assertEqual(reply.header("location"), f"/api/v1/events/{event_id}")
        detail = api("GET", f"/api/v1/events/{event_id}").json()
        self.assertEqual((detail["name"], detail["venue"], detail["capacity"]), (body["name"], "Edge Hall", 12))
        self.assertEqual(detail["sections"], [{"name": "A", "price": 2500, "rows": 3, "seats_per_row": 4}])
        self.assertEqual((detail["hold_ttl_s"], detail["max_seats_per_user"]), (120, 4))

    def test_admin_route_needs_a_token_and_the_admin_role(self):
        self.assertProblem(api("POST", "/api/v1/admin/events", body=event_body()), 401, "unauthenticated")
        user = new_account("notadmin")
        self.assertProblem(api("POST", "/api/v1/admin/events", body=event_body(), token=user.access), 403, "forbidden")

    def test_invalid_events_are_400_naming_the_field(self):
        token = admin().access
        cases = {
            "sections": dict(event_body(), sections=[]),
            "sections[0].rows": dict(event_body(), sections=[{"name": "A", "rows": "2", "seats_per_row": 2, "price": 1}]),
            "name": {k: v for k, v in event_body().items() if k != "name"},
            "queue.enabled": dict(event_body(), queue={"enabled": "yes"}),
            "starts_at": dict(event_body(), starts_at="next tuesday"),  # event-svc's rule
        }
        for field, body in cases.items():
            problem = self.assertProblem(api("POST", "/api/v1/admin/events", body=body, token=token), 400,
                                         "invalid_request", field)
            self.assertIn(field.split("[")[0].split(".")[0], problem["detail"], problem)


class ListAndDetail(EventsTestCase):
    def test_list_pages_with_a_cursor(self):
        word = unique("Pagewalk")
        made = [create_event(name=f"{word} {i}") for i in range(3)]
        seen, cursor = [], None
        for _ in range(5):
            path = f"/api/v1/events?q={word}&limit=2" + (f"&cursor={cursor}" if cursor else "")
            reply = api("GET", path)
            self.assertStatus(reply, 200)
            page = reply.json()
            self.assertEqual(set(page), {"events", "next_cursor"})
            for event in page["events"]:
                self.assertEqual(set(event), SUMMARY_FIELDS)
            seen += [e["event_id"] for e in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(sorted(seen), sorted(made))
        on_sale = api("GET", f"/api/v1/events?q={word}&status=on_sale").json()["events"]
        self.assertEqual(len(on_sale), 3)
        self.assertEqual(on_sale[0]["available"], on_sale[0]["capacity"])

    def test_bad_list_parameters_are_400(self):
        for query in ("limit=0", "limit=101", "limit=ten", "status=sleeping", "cursor=%ZZ", "cursor=garbage!"):
            self.assertProblem(api("GET", f"/api/v1/events?{query}"), 400, "invalid_request", query)

    def test_detail_and_404(self):
        event_id = create_event(queue={"enabled": True, "admit_per_s": 7, "max_active": 50})
        reply = api("GET", f"/api/v1/events/{event_id}")
        self.assertStatus(reply, 200)
        detail = reply.json()
        self.assertTrue(SUMMARY_FIELDS <= set(detail))
        self.assertEqual(detail["queue"], {"enabled": True, "admit_per_s": 7, "max_active": 50})
        self.assertEqual(detail["status"], "on_sale")
        self.assertProblem(api("GET", "/api/v1/events/987654321987"), 404, "not_found")


class SeatMaps(EventsTestCase):
    def test_seat_map_with_etag_304_and_gzip(self):
        event_id = create_event(rows=2, seats_per_row=10, price=4200)
        reply = api("GET", f"/api/v1/events/{event_id}/seats")
        self.assertStatus(reply, 200)
        seat_map = reply.json()
        self.assertEqual(len(seat_map["seats"]), 20)
        first = seat_map["seats"][0]
        self.assertEqual(set(first) >= {"seat_id", "section", "row", "number", "label", "price", "status"}, True, first)
        self.assertEqual((first["section"], first["row"], first["number"], first["price"], first["status"]),
                         ("A", 1, 1, 4200, "free"))
        self.assertIsInstance(first["seat_id"], str)
        etag = reply.header("etag")
        self.assertRegex(etag, r'^W/"\d+\.\d+"$')
        self.assertTrue(etag.startswith(f'W/"{seat_map["version"]}.'), "the ETag carries the availability version")
        self.assertEqual(reply.header("vary"), "Accept-Encoding")
        not_modified = api("GET", f"/api/v1/events/{event_id}/seats", headers={"If-None-Match": etag})
        self.assertStatus(not_modified, 304)
        self.assertEqual(not_modified.body, b"")
        self.assertEqual(not_modified.header("etag"), etag)
        zipped = api("GET", f"/api/v1/events/{event_id}/seats", headers={"Accept-Encoding": "gzip"})
        self.assertStatus(zipped, 200)
        self.assertEqual(zipped.header("content-encoding"), "gzip")
        self.assertEqual(json.loads(gzip.decompress(zipped.body)), seat_map)
        self.assertLess(len(zipped.body), len(reply.body))
        refused = api("GET", f"/api/v1/events/{event_id}/seats", headers={"Accept-Encoding": "gzip;q=0, br"})
        self.assertIsNone(refused.header("content-encoding"))

    def test_a_seat_change_moves_the_etag(self):
        event_id = create_event(rows=1, seats_per_row=5)
        etag = api("GET", f"/api/v1/events/{event_id}/seats").header("etag")
        engine = Engine()
        try:
            engine.hold(event_id, 777001, [2])
        finally:
            engine.close()
        deadline = time.monotonic() + 3
        while True:  # the edge keeps a fetched map for --seatmap-cache-ms (250 ms)
            reply = api("GET", f"/api/v1/events/{event_id}/seats", headers={"If-None-Match": etag})
            if reply.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertStatus(reply, 200)
        self.assertNotEqual(reply.header("etag"), etag)
        self.assertEqual([s["status"] for s in reply.json()["seats"]], ["free", "free", "held", "free", "free"])

    def test_unknown_event_seat_map_is_404(self):
        self.assertProblem(api("GET", "/api/v1/events/987654321988/seats"), 404, "not_found")
