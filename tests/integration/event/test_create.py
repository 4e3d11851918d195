"""CreateEvent: catalog rows in PostgreSQL and the event on its seatcored shard, bad input
refused with a clear INVALID_ARGUMENT and nothing written, names stored literally."""
import concurrent.futures
import unittest

from harness import C, EventsTestCase, ev, psql, psql_value, rpc, sc, section, unique


def event_count():
    return int(psql_value("SELECT count(*) FROM events"))


class CreateTest(EventsTestCase):
    def test_create_writes_catalog_and_engine_on_the_owning_shard(self):
        sections = [section("Floor", 3, 4, 2500), section("Balcony", 2, 5, 1500)]
        summary = self.create(sections=sections, venue=unique("Venue"), hold_ttl_s=120, max_seats_per_user=4,
                              starts_at="2031-07-01T21:30:00+02:00", sale_opens_at="2031-06-01T10:00:00.250Z")
        event_id = int(summary.event_id)
        self.assertEqual((summary.capacity, summary.available, summary.status), (22, 22, "scheduled"))
        self.assertEqual(summary.starts_at, "2031-07-01T19:30:00Z", "replies are in UTC")
        self.assertEqual(summary.sale_opens_at, "2031-06-01T10:00:00.250Z")
        state, shard, capacity, _ = self.catalog_row(event_id)
        self.assertEqual((state, int(shard), int(capacity)), ("ready", self.shard_index(event_id), 22))
        self.assertEqual(psql("SELECT idx, name, rows, seats_per_row, price_cents, first_seat FROM sections "
                              "WHERE event_id = :'id' ORDER BY idx", id=event_id),
                         [["0", "Floor", "3", "4", "2500", "0"], ["1", "Balcony", "2", "5", "1500", "12"]])
        seats = psql("SELECT seat, section_idx, row_number, seat_number, label, price_cents FROM seats "
                     "WHERE event_id = :'id' ORDER BY seat", id=event_id)
        self.assertEqual(len(seats), 22)
        self.assertEqual(seats[0], ["0", "0", "1", "1", "Floor-1-1", "2500"])
        self.assertEqual(seats[7], ["7", "0", "2", "4", "Floor-2-4", "2500"])
        self.assertEqual(seats[21], ["21", "1", "2", "5", "Balcony-2-5", "1500"])
        # on its shard, and only there
        owner = self.shard_index(event_id)
        for index, stub in enumerate(self.shards):
            result = rpc(stub.GetEvent, sc.EventRef(event_id=event_id))
            if index == owner:
                info = self.assertOk(result, f"GetEvent on the owning shard {index}")
                self.assertEqual((info.capacity, info.free, info.hold_ttl_ms, info.max_seats_per_user),
                                 (22, 22, 120000, 4))
                self.assertEqual([(s.name, s.rows, s.seats_per_row, s.price_cents) for s in info.sections],
                                 [("Floor", 3, 4, 2500), ("Balcony", 2, 5, 1500)])
                self.assertEqual(info.sale_opens_at_ms, 1938074400250)
            else:
                self.assertFails(result, C.NOT_FOUND, what=f"GetEvent on shard {index} (not the owner)")

    def test_events_spread_over_both_shards(self):
        owners = set()
        for _ in range(12):
            event_id = int(self.create().event_id)
            owner = self.shard_index(event_id)
            self.assertOk(rpc(self.shards[owner].GetEvent, sc.EventRef(event_id=event_id)), f"event {event_id}")
            owners.add(owner)
        self.assertEqual(owners, {0, 1}, "12 consecutive ids should land on both shards")

    def test_venue_is_made_once_and_reused(self):
        venue = unique("Hall")
        first, second = self.create(venue=venue), self.create(venue=venue)
        self.assertEqual((first.venue, second.venue), (venue, venue))
        self.assertEqual(psql_value("SELECT count(*) FROM venues WHERE name = :'v'", v=venue), "1")

    def test_concurrent_creates_share_a_new_venue(self):
        venue = unique("Busy Hall")
        requests = [self.request(venue=venue) for _ in range(16)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda r: rpc(self.events.CreateEvent, r), requests))
        for result in results:
            self.assertOk(result, "a concurrent CreateEvent")
        ids = {r.reply.event_id for r in results}
        self.assertEqual(len(ids), 16, "every event has its own id")
        self.assertEqual(psql_value("SELECT count(*) FROM venues WHERE name = :'v'", v=venue), "1")
        self.assertEqual(psql_value("SELECT count(*) FROM events e JOIN venues v ON v.id = e.venue_id "
                                    "WHERE v.name = :'v' AND e.engine_state = 'ready'", v=venue), "16")

    def test_defaults_for_hold_settings(self):
        event_id = self.create().event_id
        detail = self.assertOk(rpc(self.events.GetEvent, ev.GetEventRequest(event_id=event_id)))
        self.assertEqual((detail.hold_ttl_s, detail.max_seats_per_user), (300, 10))

    def test_queued_event(self):
        summary = self.create(queue=ev.QueueSpec(enabled=True, admit_per_s=50, max_active=200))
        detail = self.assertOk(rpc(self.events.GetEvent, ev.GetEventRequest(event_id=summary.event_id)))
        self.assertEqual((detail.queue.enabled, detail.queue.admit_per_s, detail.queue.max_active), (True, 50, 200))
        info = self.assertOk(rpc(self.engine(summary.event_id).GetEvent, sc.EventRef(event_id=int(summary.event_id))))
        self.assertEqual((info.queue.enabled, info.queue.admit_per_s, info.queue.max_active), (True, 50, 200))

    def test_largest_event(self):
        sections = [section(f"S{i}", 100, 1000, 100 + i) for i in range(2)]  # exactly 200,000 seats
        summary = self.create(sections=sections)
        self.assertEqual(summary.capacity, 200000)
        self.assertEqual(psql_value("SELECT count(*) FROM seats WHERE event_id = :'id'", id=summary.event_id),
                         "200000")
        seat_map = self.seat_map(summary.event_id)
        self.assertEqual(len(seat_map.seats), 200000)
        last = seat_map.seats[-1]
        self.assertEqual((last.seat_id, last.label, last.price_cents, last.status), ("199999", "S1-100-1000", 101,
                                                                                    "free"))

    def test_bad_input_is_refused_and_nothing_is_written(self):
        ok = dict(name="Fine", venue="Fine Hall", starts_at="2031-01-01T20:00:00Z",
                  sale_opens_at="2030-12-01T10:00:00Z", sections=[section()], admin_user_id=self.admin)
        cases = {
            "name": dict(name=""),
            "name ": dict(name="   "),
            "at most 200 bytes": dict(name="n" * 201),
            "control characters": dict(name="bad\nname"),
            "venue": dict(venue=""),
            "starts_at": dict(starts_at="tomorrow"),
            "starts_at is not": dict(starts_at="2031-02-30T20:00:00Z"),
            "sale_opens_at": dict(sale_opens_at=""),
            "before starts_at": dict(sale_opens_at="2031-01-01T20:00:00Z"),
            "sections": dict(sections=[]),
            "65": dict(sections=[section(f"S{i}", 1, 1) for i in range(65)]),
            "sections[0].name": dict(sections=[section("")]),
            "31": dict(sections=[section("N" * 32)]),
            "rows": dict(sections=[section("A", 0, 5)]),
            "rows must be 1..1000": dict(sections=[section("A", 1001, 1)]),
            "seats_per_row": dict(sections=[section("A", 1, 0)]),
            "price_cents": dict(sections=[section("A", 1, 1, 100000001)]),
            "used twice": dict(sections=[section("A"), section("A")]),
            "capacity": dict(sections=[section("A", 1000, 200), section("B", 1, 1)]),
            "queue.admit_per_s": dict(queue=ev.QueueSpec(enabled=True, admit_per_s=0, max_active=5)),
            "queue.max_active": dict(queue=ev.QueueSpec(enabled=True, admit_per_s=5, max_active=0)),
            "hold_ttl_s": dict(hold_ttl_s=3601),
            "max_seats_per_user": dict(max_seats_per_user=101),
            "admin_user_id": dict(admin_user_id="root"),
        }
        before = event_count()
        for mentions, change in cases.items():
            with self.subTest(mentions):
                fields = dict(ok, **change)
                result = rpc(self.events.CreateEvent, ev.CreateEventCatalogRequest(**fields))
                self.assertFails(result, C.INVALID_ARGUMENT, "invalid_request", mentions=mentions.strip())
        self.assertEqual(event_count(), before, "a refused request must write nothing")

    def test_unknown_admin_user_is_refused_without_leftovers(self):
        name = unique("Orphan")
        result = rpc(self.events.CreateEvent, self.request(name, admin_user_id="999999999"))
        self.assertFails(result, C.INVALID_ARGUMENT, "invalid_request", mentions="admin_user_id")
        self.assertEqual(psql_value("SELECT count(*) FROM events WHERE name = :'n'", n=name), "0")

    def test_sql_injection_strings_are_stored_literally(self):
        tables = psql_value("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        name = "Robert'); DROP TABLE events; -- " + unique("Bobby")
        venue = "x' OR '1'='1; DELETE FROM venues; --"
        summary = self.create(name=name, venue=venue, sections=[section("A'--", 1, 2), section('B";', 1, 1)])
        self.assertEqual((summary.name, summary.venue), (name, venue))
        detail = self.assertOk(rpc(self.events.GetEvent, ev.GetEventRequest(event_id=summary.event_id)))
        self.assertEqual([s.name for s in detail.sections], ["A'--", 'B";'])
        self.assertEqual(psql_value("SELECT name FROM events WHERE id = :'id'", id=summary.event_id), name)
        labels = [s.label for s in self.seat_map(summary.event_id).seats]
        self.assertEqual(labels, ["A'---1-1", "A'---1-2", 'B";-1-1'])
        self.assertEqual(psql_value("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), tables)
        self.assertGreater(int(psql_value("SELECT count(*) FROM venues")), 1)


if __name__ == "__main__":
    unittest.main()
