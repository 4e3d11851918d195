"""GetEvent (detail) and GetSeatMap: the catalog (cached in Redis, versioned, invalidated when
it changes) joined with the engine's live seat states."""
import unittest

from harness import C, EventsTestCase, ev, metrics, psql, psql_value, redis, rpc, sc, section, unique

HITS = "tiketi_event_seatmap_cache_hits_total"
MISSES = "tiketi_event_seatmap_cache_misses_total"


class DetailTest(EventsTestCase):
    def test_detail_has_sections_queue_and_hold_settings(self):
        sections = [section("Stalls", 4, 6, 4500), section("Circle", 2, 3, 2000)]
        summary = self.create(sections=sections, hold_ttl_s=90, max_seats_per_user=3,
                              queue=ev.QueueSpec(enabled=True, admit_per_s=20, max_active=100))
        detail = self.assertOk(rpc(self.events.GetEvent, ev.GetEventRequest(event_id=summary.event_id)))
        self.assertEqual(detail.event, summary)
        self.assertEqual([(s.name, s.rows, s.seats_per_row, s.price_cents) for s in detail.sections],
                         [("Stalls", 4, 6, 4500), ("Circle", 2, 3, 2000)])
        self.assertEqual((detail.queue.enabled, detail.queue.admit_per_s, detail.queue.max_active), (True, 20, 100))
        self.assertEqual((detail.hold_ttl_s, detail.max_seats_per_user), (90, 3))

    def test_detail_available_follows_the_engine(self):
        summary = self.create(sections=[section("A", 1, 4)])
        self.hold(summary.event_id, [1, 2])
        detail = self.assertOk(rpc(self.events.GetEvent, ev.GetEventRequest(event_id=summary.event_id)))
        self.assertEqual((detail.event.capacity, detail.event.available), (4, 2))

    def test_unknown_and_malformed_ids(self):
        for method in (self.events.GetEvent, self.events.GetSeatMap):
            for event_id in ["999999999", "abc", "-1", "0", "1e3", "12345678901234567890123", "1000 OR 1=1"]:
                with self.subTest(method=method._method, event_id=event_id):
                    self.assertFails(rpc(method, ev.GetEventRequest(event_id=event_id)), C.NOT_FOUND, "not_found")
            self.assertFails(rpc(method, ev.GetEventRequest(event_id="")), C.INVALID_ARGUMENT, "invalid_request")


class SeatMapTest(EventsTestCase):
    def test_seat_map_catalog_and_live_states(self):
        summary = self.create(sections=[section("A", 2, 3, 2500), section("B", 1, 2, 900)])
        event_id = summary.event_id
        seat_map = self.seat_map(event_id)
        self.assertEqual([(s.seat_id, s.section, s.row, s.number, s.label, s.price_cents, s.status)
                          for s in seat_map.seats],
                         [("0", "A", 1, 1, "A-1-1", 2500, "free"), ("1", "A", 1, 2, "A-1-2", 2500, "free"),
                          ("2", "A", 1, 3, "A-1-3", 2500, "free"), ("3", "A", 2, 1, "A-2-1", 2500, "free"),
                          ("4", "A", 2, 2, "A-2-2", 2500, "free"), ("5", "A", 2, 3, "A-2-3", 2500, "free"),
                          ("6", "B", 1, 1, "B-1-1", 900, "free"), ("7", "B", 1, 2, "B-1-2", 900, "free")])
        version = seat_map.version
        hold = self.hold(event_id, [4, 6], user_id=11)
        seat_map = self.seat_map(event_id)
        self.assertGreater(seat_map.version, version, "the engine version moves with every seat change")
        self.assertEqual({s.seat_id: s.status for s in seat_map.seats if s.status != "free"},
                         {"4": "held", "6": "held"})
        engine = self.engine(event_id)
        self.assertOk(rpc(engine.Confirm, sc.ConfirmRequest(event_id=int(event_id), user_id=11, hold_id=hold.hold_id,
                                                            idempotency_key=unique("pay"))), "engine Confirm")
        seat_map = self.seat_map(event_id)
        self.assertEqual({s.seat_id: s.status for s in seat_map.seats if s.status != "free"},
                         {"4": "sold", "6": "sold"})
        avail = self.assertOk(rpc(engine.GetAvailability, sc.EventRef(event_id=int(event_id))))
        self.assertEqual(seat_map.version, avail.version)

    def test_second_read_is_a_cache_hit(self):
        event_id = self.create(sections=[section("A", 3, 3)]).event_id
        before = metrics()
        first = self.seat_map(event_id)
        middle = metrics()
        second = self.seat_map(event_id)
        after = metrics()
        self.assertEqual((middle[MISSES] - before[MISSES], middle[HITS] - before[HITS]), (1, 0), "first read")
        self.assertEqual((after[MISSES] - middle[MISSES], after[HITS] - middle[HITS]), (0, 1), "second read")
        self.assertEqual(first, second)
        key = f"tiketi:event:{{{event_id}}}:seats:{first.catalog_version}"
        self.assertEqual(redis("EXISTS", key), "1", f"{key} should be cached")
        ttl = int(redis("TTL", key))
        self.assertTrue(0 < ttl <= 3600, f"the entry expires (TTL {ttl})")

    def test_a_catalog_change_is_seen_at_once(self):
        event_id = self.create(sections=[section("A", 1, 3, 1000)]).event_id
        first = self.seat_map(event_id)
        self.seat_map(event_id)  # cached now
        old_key = f"tiketi:event:{{{event_id}}}:seats:{first.catalog_version}"
        self.assertEqual(redis("EXISTS", old_key), "1")
        psql("UPDATE seats SET price_cents = 1234, label = 'Royal Box' WHERE event_id = :'id' AND seat = 1",
             id=event_id)
        before = metrics()
        changed = self.seat_map(event_id)
        self.assertGreater(changed.catalog_version, first.catalog_version)
        self.assertEqual([(s.label, s.price_cents) for s in changed.seats],
                         [("A-1-1", 1000), ("Royal Box", 1234), ("A-1-3", 1000)])
        self.assertEqual(metrics()[MISSES] - before[MISSES], 1, "a changed catalog is read afresh")
        self.assertEqual(redis("EXISTS", old_key), "0", "the replaced entry is deleted")
        # a section-wide repricing (one statement, many seats) moves the version once more
        psql("UPDATE seats SET price_cents = 5 WHERE event_id = :'id'", id=event_id)
        self.assertEqual({s.price_cents for s in self.seat_map(event_id).seats}, {5})
        # the event row's catalog columns count too
        version = self.seat_map(event_id).catalog_version
        psql("UPDATE events SET name = name || ' (moved)' WHERE id = :'id'", id=event_id)
        self.assertGreater(self.seat_map(event_id).catalog_version, version)

    def test_an_unreadable_cache_entry_is_replaced(self):
        event_id = self.create(sections=[section("A", 1, 2)]).event_id
        first = self.seat_map(event_id)
        key = f"tiketi:event:{{{event_id}}}:seats:{first.catalog_version}"
        redis("SET", key, "garbage that is no seat catalog")
        self.assertEqual(self.seat_map(event_id), first)
        self.assertNotEqual(redis("GET", key), "garbage that is no seat catalog")

    def test_seat_map_of_a_queued_event_and_names_with_quotes(self):
        name = unique("Quote'\"Map")
        event_id = self.create(name=name, sections=[section("O'Neil", 1, 2, 100)],
                               queue=ev.QueueSpec(enabled=True, admit_per_s=5, max_active=5)).event_id
        self.assertEqual([s.label for s in self.seat_map(event_id).seats], ["O'Neil-1-1", "O'Neil-1-2"])
        self.assertEqual(psql_value("SELECT count(*) FROM seats WHERE event_id = :'id'", id=event_id), "2")


if __name__ == "__main__":
    unittest.main()
