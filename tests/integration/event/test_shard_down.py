"""An engine shard down: CreateEvent for an event it would own fails with a clear UNAVAILABLE
and leaves nothing behind, reads of its events fail UNAVAILABLE (the other shard's events are
still served), and once the shard is back events are made on it again. Runs last: the shard is
memory-only, so its events are gone after the restart (then: engine_out_of_step, available 0)."""
import signal
import time
import unittest

from harness import C, Daemon, EventsTestCase, ev, psql, psql_value, rpc, shard_of, unique


def next_id():
    last, called = psql("SELECT last_value, is_called FROM event_ids")[0]
    return int(last) + 1 if called == "t" else int(last)


class ShardDownTest(EventsTestCase):
    def make_on(self, shard, **fields):
        """Creates events until one lands on shard (the others land on the other shard)."""
        for _ in range(40):
            if shard_of(next_id(), len(self.shard_addresses)) == shard:
                return self.create(**fields)
            self.create()
        self.fail(f"no id for shard {shard} in 40 tries")

    def test_shard_down_then_back(self):
        tag = unique("Downtag")
        on_0, on_1 = self.make_on(0, name=f"{tag} zero"), self.make_on(1, name=f"{tag} one")
        shard_1 = Daemon("seatcored-1", self.shard_addresses[1])
        shard_1.stop(signal.SIGKILL)

        # a create routed to the down shard: UNAVAILABLE naming it, nothing left behind
        for _ in range(40):
            if shard_of(next_id(), 2) == 1:
                break
            self.create()
        doomed_id, name = next_id(), unique("Doomed")
        started = time.monotonic()
        result = rpc(self.events.CreateEvent, self.request(name))
        self.assertFails(result, C.UNAVAILABLE, "unavailable", mentions="shard 1")
        self.assertIn("nothing was created", result.details)
        self.assertLess(time.monotonic() - started, 8, "the failure is reported promptly")
        self.assertEqual(psql_value("SELECT count(*) FROM events WHERE id = :'id' OR name = :'n'", id=doomed_id,
                                    n=name), "0")
        self.assertEqual(psql_value("SELECT count(*) FROM seats WHERE event_id = :'id'", id=doomed_id), "0")

        # reads: the down shard's events fail UNAVAILABLE, the other shard's still work
        for method in (self.events.GetEvent, self.events.GetSeatMap):
            self.assertFails(rpc(method, ev.GetEventRequest(event_id=on_1.event_id)), C.UNAVAILABLE, "unavailable",
                             mentions="shard 1")
            self.assertOk(rpc(method, ev.GetEventRequest(event_id=on_0.event_id)), "the up shard's event")
        self.assertFails(rpc(self.events.ListEvents, ev.ListEventsRequest(q=tag)), C.UNAVAILABLE, "unavailable")
        listed = self.assertOk(rpc(self.events.ListEvents, ev.ListEventsRequest(q=f"{tag} zero")))
        self.assertEqual([e.event_id for e in listed.events], [on_0.event_id])

        # back (memory-only: empty): new events land on it again once the channel reconnects
        shard_1.start()
        deadline = time.monotonic() + 20
        while True:
            if shard_of(next_id(), 2) != 1:
                self.create()
                continue
            result = rpc(self.events.CreateEvent, self.request())
            if result.ok or time.monotonic() > deadline:
                break
            self.assertEqual(result.code, C.UNAVAILABLE, str(result))
            time.sleep(0.2)
        self.assertOk(result, "CreateEvent on the restarted shard")
        # its old event is in the catalog but no longer in the (memory-only) engine
        self.assertFails(rpc(self.events.GetSeatMap, ev.GetEventRequest(event_id=on_1.event_id)), C.INTERNAL,
                         "engine_out_of_step")
        listed = self.assertOk(rpc(self.events.ListEvents, ev.ListEventsRequest(q=f"{tag} one")))
        self.assertEqual([(e.event_id, e.available) for e in listed.events], [(on_1.event_id, 0)])


if __name__ == "__main__":
    unittest.main()
