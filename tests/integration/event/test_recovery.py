"""Restarts: event-svc stops cleanly on SIGTERM, and events a crash left half-made ('pending':
catalog written, engine not asked or not confirmed) are settled at start-up and periodically:
in the engine -> ready, not in the engine -> removed, in the engine with another layout -> left
for an operator."""
import signal
import unittest

from harness import (C, Daemon, EventsTestCase, env, ev, insert_pending_event, metrics, psql, psql_value, rpc,
                     sc, shard_of, unique)


def state_of(event_id):
    return psql_value("SELECT engine_state FROM events WHERE id = :'id'", id=event_id)


class RecoveryTest(EventsTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = Daemon("event-svc", env("EVENT_ADDR"))

    def restart(self, sig):
        rc = self.daemon.stop(sig)
        return rc

    def start(self):
        self.daemon.start()
        type(self).tearDownClass()
        type(self).connect()  # a fresh channel: the old one backs off after the outage

    def engine_create(self, event_id, rows, seats_per_row):
        shards = len(self.shard_addresses)
        request = sc.CreateEventRequest(event_id=event_id, sections=[sc.Section(name="A", rows=rows,
                                        seats_per_row=seats_per_row, price_cents=1000)], hold_ttl_ms=300000,
                                        max_seats_per_user=10)
        self.assertOk(rpc(self.shards[shard_of(event_id, shards)].CreateEvent, request), "engine CreateEvent")

    def test_a_sigterm_exits_cleanly_and_it_starts_again(self):
        self.daemon.stop(signal.SIGTERM)  # the one `run` started (its exit status is run's to see)
        self.start()
        self.assertEqual(self.daemon.stop(signal.SIGTERM), 0, "exit status after SIGTERM")
        self.start()
        self.assertOk(rpc(self.events.ListEvents, ev.ListEventsRequest(limit=1)), "serving again")

    def test_b_crash_between_steps_is_settled_at_start(self):
        self.daemon.stop(signal.SIGKILL)  # a crash: whatever it was doing stops there
        missing = insert_pending_event(unique("NotInEngine"))
        present_id = int(psql_value("SELECT nextval('event_ids')"))
        self.engine_create(present_id, 2, 3)  # the engine call went through, the answer was lost
        present = insert_pending_event(unique("InEngine"), event_id=present_id)
        different_id = int(psql_value("SELECT nextval('event_ids')"))
        self.engine_create(different_id, 1, 1)  # an engine event with this id but another layout
        different = insert_pending_event(unique("OtherLayout"), event_id=different_id)
        try:
            self.start()  # SERVING comes after the start-up round
            self.assertIsNone(state_of(missing), "not in the engine: removed")
            self.assertEqual(psql_value("SELECT count(*) FROM seats WHERE event_id = :'id'", id=missing), "0")
            self.assertEqual(state_of(present), "ready", "in the engine: finished")
            detail = self.assertOk(rpc(self.events.GetEvent, ev.GetEventRequest(event_id=str(present))))
            self.assertEqual((detail.event.capacity, detail.event.available), (6, 6))
            self.assertEqual(len(self.seat_map(present).seats), 6)
            self.assertEqual(state_of(different), "pending", "a layout mismatch is left for an operator")
            self.assertFails(rpc(self.events.GetEvent, ev.GetEventRequest(event_id=str(different))), C.NOT_FOUND)
            m = metrics()
            self.assertEqual((m["tiketi_event_pending_finished_total"], m["tiketi_event_pending_removed_total"]),
                             (1, 1))
        finally:
            psql("DELETE FROM events WHERE id = :'id'", id=different)

    def test_c_periodic_round_settles_while_running(self):
        missing = insert_pending_event(unique("LaterCrash"))
        self.poll(lambda: state_of(missing) is None, 10, what="the periodic round removes the half-made event")


if __name__ == "__main__":
    unittest.main()
