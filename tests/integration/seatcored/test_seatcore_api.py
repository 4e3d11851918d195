"""Every tiketi.v1.SeatCore method (and grpc.health.v1.Health) through an independent client,
against the shared memory-mode daemon. Each test makes its own event(s)."""
import time
import unittest

import grpc

import health_pb2
from harness import (FREE, HELD, SOLD, STATE_NAMES, SeatcoreTestCase, decode_states, next_event_id, pb, rpc,
                     section)

C = grpc.StatusCode


def code_number(code):
    return code.value[0]


def row_of(sections, seat):
    """(section index, row index) of a seat: seats are numbered across sections, row by row."""
    base = 0
    for index, s in enumerate(sections):
        size = s.rows * s.seats_per_row
        if seat < base + size:
            return index, (seat - base) // s.seats_per_row
        base += size
    raise ValueError(f"seat {seat} is outside the layout")


def now_ms():
    return int(time.time() * 1000)


class EventTest(SeatcoreTestCase):
    def test_create_event_echoes_layout_and_counts(self):
        sections = [section("Floor", 2, 10, 2500), section("Balcony", 3, 8, 1500)]
        info = self.create_event(sections, hold_ttl_ms=60000, max_seats_per_user=6)
        self.assertEqual(info.state, pb.EVENT_OPEN)
        self.assertEqual(info.capacity, 2 * 10 + 3 * 8)
        self.assertEqual((info.free, info.held, info.sold, info.active_holds), (44, 0, 0, 0))
        self.assertEqual([(s.name, s.rows, s.seats_per_row, s.price_cents) for s in info.sections],
                         [("Floor", 2, 10, 2500), ("Balcony", 3, 8, 1500)])
        self.assertEqual((info.hold_ttl_ms, info.max_seats_per_user), (60000, 6))
        again = self.assertOk(rpc(self.stub.GetEvent, pb.EventRef(event_id=info.event_id)), "GetEvent")
        self.assertEqual(again, info, "GetEvent differs from CreateEvent's answer")

    def test_create_event_refuses_bad_layouts(self):
        cases = {
            "no sections": [],
            "65 sections": [section(f"S{i}", 1, 1) for i in range(65)],
            "too many seats (201000)": [section("A", 1000, 201)],
            "empty section name": [section("", 1, 1)],
            "32-byte section name": [section("N" * 32, 1, 1)],
            "zero rows": [section("A", 0, 10)],
            "zero seats per row": [section("A", 10, 0)],
        }
        for what, sections in cases.items():
            with self.subTest(what):
                request = pb.CreateEventRequest(event_id=next_event_id(), sections=sections)
                self.assertFails(rpc(self.stub.CreateEvent, request), C.INVALID_ARGUMENT, "invalid_request", what)
                self.assertFails(rpc(self.stub.GetEvent, pb.EventRef(event_id=request.event_id)), C.NOT_FOUND,
                                 "not_found", f"{what}: the refused event must not exist")
        with self.subTest("event id 0"):
            request = pb.CreateEventRequest(event_id=0, sections=[section()])
            self.assertFails(rpc(self.stub.CreateEvent, request), C.INVALID_ARGUMENT, "invalid_request")

    def test_create_event_with_a_taken_id_is_already_exists(self):
        info = self.create_event()
        request = pb.CreateEventRequest(event_id=info.event_id, sections=[section("Other", 5, 5)])
        self.assertFails(rpc(self.stub.CreateEvent, request), C.ALREADY_EXISTS, "already_exists")
        kept = self.assertOk(rpc(self.stub.GetEvent, pb.EventRef(event_id=info.event_id)))
        self.assertEqual(kept.capacity, info.capacity, "the first event's layout must be kept")

    def test_unknown_event_is_not_found_everywhere(self):
        unknown = next_event_id()
        ref = pb.EventRef(event_id=unknown)
        for name, request in [("GetEvent", ref), ("CloseEvent", ref), ("CancelEvent", ref),
                              ("GetAvailability", ref),
                              ("Hold", pb.HoldRequest(event_id=unknown, user_id=1, seats=[0])),
                              ("GetHold", pb.HoldRef(event_id=unknown, user_id=1, hold_id=1)),
                              ("QueueJoin", pb.QueueRequest(event_id=unknown, user_id=1))]:
            with self.subTest(name):
                self.assertFails(rpc(getattr(self.stub, name), request), C.NOT_FOUND, "not_found", name)

    def test_close_event_stops_holds_and_joins(self):
        info = self.create_event()
        held = self.assertOk(self.hold(info.event_id, 1, [0]), "hold before closing")
        closed = self.assertOk(rpc(self.stub.CloseEvent, pb.EventRef(event_id=info.event_id)), "CloseEvent")
        self.assertEqual(closed.state, pb.EVENT_CLOSED)
        self.assertFails(self.hold(info.event_id, 2, [1]), C.FAILED_PRECONDITION, "event_closed", "hold when closed")
        self.assertFails(rpc(self.stub.QueueJoin, pb.QueueRequest(event_id=info.event_id, user_id=2)),
                         C.FAILED_PRECONDITION, "event_closed", "join when closed")
        got = self.assertOk(rpc(self.stub.GetEvent, pb.EventRef(event_id=info.event_id)))
        self.assertEqual(got.state, pb.EVENT_CLOSED)
        # an existing hold can still be released by its owner
        self.assertOk(rpc(self.stub.Release, pb.HoldRef(event_id=info.event_id, user_id=1, hold_id=held.hold_id)),
                      "release after closing")

    def test_cancel_event_stops_holds_and_confirms(self):
        info = self.create_event()
        held = self.assertOk(self.hold(info.event_id, 1, [3, 4]))
        cancelled = self.assertOk(rpc(self.stub.CancelEvent, pb.EventRef(event_id=info.event_id)), "CancelEvent")
        self.assertEqual(cancelled.state, pb.EVENT_CANCELLED)
        self.assertFails(self.hold(info.event_id, 2, [5]), C.FAILED_PRECONDITION, "event_closed", "hold")
        confirm = pb.ConfirmRequest(event_id=info.event_id, user_id=1, hold_id=held.hold_id)
        self.assertFails(rpc(self.stub.Confirm, confirm), C.FAILED_PRECONDITION, "event_closed", "confirm")


class HoldTest(SeatcoreTestCase):
    def setUp(self):
        self.sections = [section("A", 2, 10, 1000), section("B", 2, 10, 400)]
        self.event = self.create_event(self.sections, max_seats_per_user=20)
        self.eid = self.event.event_id

    def test_hold_answers_seats_price_owner_and_expiry(self):
        before = now_ms()
        reply = self.assertOk(self.hold(self.eid, 7, [21, 0, 20]), "Hold")
        self.assertGreater(reply.hold_id, 0)
        self.assertEqual(sorted(reply.seats), [0, 20, 21])
        self.assertEqual(reply.amount_cents, 1000 + 400 + 400)
        self.assertEqual(reply.user_id, 7)
        self.assertFalse(reply.replayed)
        ttl = self.event.hold_ttl_ms
        self.assertTrue(before + ttl - 2000 <= reply.expires_at_ms <= now_ms() + ttl + 2000,
                        f"expires_at_ms {reply.expires_at_ms} is not about now + {ttl} ms")
        got = self.assertOk(rpc(self.stub.GetHold, pb.HoldRef(event_id=self.eid, user_id=7, hold_id=reply.hold_id)))
        self.assertEqual((got.hold_id, sorted(got.seats), got.user_id, got.expires_at_ms),
                         (reply.hold_id, [0, 20, 21], 7, reply.expires_at_ms))
        info = self.assertOk(rpc(self.stub.GetEvent, pb.EventRef(event_id=self.eid)))
        self.assertEqual((info.free, info.held, info.sold, info.active_holds), (37, 3, 0, 1))

    def test_conflict_is_aborted_with_the_unavailable_seats(self):
        self.assertOk(self.hold(self.eid, 1, [4, 5]))
        result = self.assertFails(self.hold(self.eid, 2, [3, 5, 6]), C.ABORTED, "seat_unavailable")
        self.assertEqual(list(result.detail.unavailable_seats), [5], f"unavailable seats in the trailer: {result}")
        _, states = self.availability(self.eid)
        self.assertEqual([states[s] for s in (3, 4, 5, 6)], [FREE, HELD, HELD, FREE],
                         "a refused hold must hold nothing (all-or-nothing)")

    def test_idempotency_key_repeat_is_replayed(self):
        first = self.assertOk(self.hold(self.eid, 3, [8, 9], idempotency_key="order-1"))
        again = self.assertOk(self.hold(self.eid, 3, [9, 8], idempotency_key="order-1"), "repeat")
        self.assertTrue(again.replayed, f"the repeat must say replayed: {again}")
        self.assertEqual((again.hold_id, sorted(again.seats)), (first.hold_id, [8, 9]))
        info = self.assertOk(rpc(self.stub.GetEvent, pb.EventRef(event_id=self.eid)))
        self.assertEqual(info.active_holds, 1, "a replay must not make a second hold")

    def test_idempotency_key_with_other_seats_is_refused(self):
        self.assertOk(self.hold(self.eid, 3, [10], idempotency_key="order-2"))
        self.assertFails(self.hold(self.eid, 3, [11], idempotency_key="order-2"), C.FAILED_PRECONDITION,
                         "idempotency_key_reused")
        _, states = self.availability(self.eid)
        self.assertEqual(states[11], FREE)

    def test_idempotency_keys_are_per_user(self):
        a = self.assertOk(self.hold(self.eid, 3, [12], idempotency_key="same-key"))
        b = self.assertOk(self.hold(self.eid, 4, [13], idempotency_key="same-key"), "other user, same key")
        self.assertNotEqual(a.hold_id, b.hold_id)
        self.assertFalse(b.replayed)

    def test_hold_best_available_gives_adjacent_seats(self):
        self.assertOk(self.hold(self.eid, 9, [2]))  # break row 0 of section A
        for user, count, sect in [(10, 4, -1), (11, 3, 1), (12, 5, 0)]:
            with self.subTest(count=count, section=sect):
                reply = self.assertOk(rpc(self.stub.HoldBestAvailable, pb.HoldBestRequest(
                    event_id=self.eid, user_id=user, count=count, section=sect)), "HoldBestAvailable")
                seats = sorted(reply.seats)
                self.assertEqual(len(seats), count)
                rows = {row_of(self.sections, s) for s in seats}
                self.assertEqual(len(rows), 1, f"seats {seats} are not in one row")
                self.assertEqual(seats, list(range(seats[0], seats[0] + count)), f"seats {seats} are not adjacent")
                if sect >= 0:
                    self.assertEqual(rows.pop()[0], sect, f"seats {seats} are not in section {sect}")
                self.assertNotIn(2, seats)

    def test_release_by_owner_frees_the_seats(self):
        held = self.assertOk(self.hold(self.eid, 5, [14, 15]))
        ref = pb.HoldRef(event_id=self.eid, user_id=5, hold_id=held.hold_id)
        self.assertOk(rpc(self.stub.Release, ref), "Release")
        _, states = self.availability(self.eid)
        self.assertEqual([states[14], states[15]], [FREE, FREE])
        self.assertFails(rpc(self.stub.GetHold, ref), C.NOT_FOUND, "not_found", "GetHold after release")
        self.assertFails(rpc(self.stub.Release, ref), C.NOT_FOUND, "not_found", "second release")

    def test_release_by_another_user_is_not_owner(self):
        held = self.assertOk(self.hold(self.eid, 5, [16]))
        self.assertFails(rpc(self.stub.Release, pb.HoldRef(event_id=self.eid, user_id=6, hold_id=held.hold_id)),
                         C.FAILED_PRECONDITION, "not_owner")
        self.assertFails(rpc(self.stub.Confirm, pb.ConfirmRequest(event_id=self.eid, user_id=6,
                                                                   hold_id=held.hold_id)),
                         C.FAILED_PRECONDITION, "not_owner", "confirm by another user")
        self.assertOk(rpc(self.stub.GetHold, pb.HoldRef(event_id=self.eid, user_id=5, hold_id=held.hold_id)),
                      "the hold must survive another user's release")

    def test_confirm_with_idempotency_key_twice(self):
        held = self.assertOk(self.hold(self.eid, 8, [30, 31]))
        request = pb.ConfirmRequest(event_id=self.eid, user_id=8, hold_id=held.hold_id, idempotency_key="pay-1")
        first = self.assertOk(rpc(self.stub.Confirm, request), "Confirm")
        self.assertEqual((first.hold_id, sorted(first.seats), first.amount_cents), (held.hold_id, [30, 31], 800))
        self.assertFalse(first.replayed)
        again = self.assertOk(rpc(self.stub.Confirm, request), "Confirm repeated with its key")
        self.assertTrue(again.replayed)
        self.assertEqual(again.hold_id, held.hold_id)
        avail, states = self.availability(self.eid)
        self.assertEqual([states[30], states[31]], [SOLD, SOLD])
        self.assertEqual(avail.sold, 2, "the repeat must not sell anything more")
        # without the key, the hold is simply gone
        self.assertFails(rpc(self.stub.Confirm, pb.ConfirmRequest(event_id=self.eid, user_id=8,
                                                                   hold_id=held.hold_id)), C.NOT_FOUND, "not_found")

    def test_return_seat_by_buyer_only(self):
        held = self.assertOk(self.hold(self.eid, 9, [32, 33]))
        self.assertOk(rpc(self.stub.Confirm, pb.ConfirmRequest(event_id=self.eid, user_id=9, hold_id=held.hold_id)))
        self.assertFails(rpc(self.stub.ReturnSeat, pb.ReturnSeatRequest(event_id=self.eid, user_id=10, seat=32)),
                         C.FAILED_PRECONDITION, "not_owner", "return by another user")
        self.assertOk(rpc(self.stub.ReturnSeat, pb.ReturnSeatRequest(event_id=self.eid, user_id=9, seat=32)),
                      "ReturnSeat")
        avail, states = self.availability(self.eid)
        self.assertEqual([states[32], states[33]], [FREE, SOLD])
        self.assertFails(rpc(self.stub.ReturnSeat, pb.ReturnSeatRequest(event_id=self.eid, user_id=9, seat=32)),
                         C.NOT_FOUND, "not_found", "returning a free seat")
        self.assertOk(self.hold(self.eid, 10, [32]), "a returned seat is on sale again")

    def test_get_hold_is_private_to_its_owner(self):
        held = self.assertOk(self.hold(self.eid, 11, [34]))
        self.assertFails(rpc(self.stub.GetHold, pb.HoldRef(event_id=self.eid, user_id=12, hold_id=held.hold_id)),
                         C.NOT_FOUND, "not_found", "another user's GetHold")
        self.assertFails(rpc(self.stub.GetHold, pb.HoldRef(event_id=self.eid, user_id=11, hold_id=held.hold_id + 99)),
                         C.NOT_FOUND, "not_found", "unknown hold id")

    def test_per_user_seat_cap(self):
        event = self.create_event([section("A", 1, 20)], max_seats_per_user=3)
        self.assertOk(self.hold(event.event_id, 1, [0, 1]))
        self.assertFails(self.hold(event.event_id, 1, [2, 3]), C.RESOURCE_EXHAUSTED, "seat_cap_reached")
        self.assertOk(self.hold(event.event_id, 1, [2]), "up to the cap is fine")

    def test_hold_expires_after_its_ttl(self):
        event = self.create_event([section("A", 1, 10)], hold_ttl_ms=1000)
        made = time.monotonic()
        held = self.assertOk(self.hold(event.event_id, 1, [5]))
        ref = pb.HoldRef(event_id=event.event_id, user_id=1, hold_id=held.hold_id)

        def expired():
            result = rpc(self.stub.GetHold, ref)
            return None if result.ok else result

        result = self.poll(expired, 3.0, what="the 1000 ms hold expiring")
        self.assertLessEqual(time.monotonic() - made, 2.0 + 0.5, "expiry later than hold_ttl + 1 s")
        self.assertFails(result, C.FAILED_PRECONDITION, "hold_expired", "GetHold of an expired hold")
        _, states = self.availability(event.event_id)
        self.assertEqual(states[5], FREE, "an expired hold's seat is back on sale")
        self.assertFails(rpc(self.stub.Confirm, pb.ConfirmRequest(event_id=event.event_id, user_id=1,
                                                                   hold_id=held.hold_id)),
                         C.FAILED_PRECONDITION, "hold_expired", "confirming an expired hold")


class AvailabilityTest(SeatcoreTestCase):
    def test_get_availability_matches_what_was_done(self):
        sections = [section("A", 2, 5), section("B", 1, 7), section("C", 3, 3)]
        event = self.create_event(sections, max_seats_per_user=30)
        eid = event.event_id
        capacity = 2 * 5 + 7 + 9
        expected = [FREE] * capacity
        avail, states = self.availability(eid)
        self.assertEqual((avail.capacity, avail.free, len(avail.states)), (capacity, capacity, (capacity + 3) // 4))
        self.assertEqual(states, expected)
        version = avail.version

        held = self.assertOk(self.hold(eid, 1, [0, 1, 25]))
        expected[0] = expected[1] = expected[25] = HELD
        sold = self.assertOk(self.hold(eid, 2, [10, 11, 12]))
        self.assertOk(rpc(self.stub.Confirm, pb.ConfirmRequest(event_id=eid, user_id=2, hold_id=sold.hold_id)))
        expected[10] = expected[11] = expected[12] = SOLD
        freed = self.assertOk(self.hold(eid, 3, [17, 18]))
        self.assertOk(rpc(self.stub.Release, pb.HoldRef(event_id=eid, user_id=3, hold_id=freed.hold_id)))
        self.assertOk(rpc(self.stub.ReturnSeat, pb.ReturnSeatRequest(event_id=eid, user_id=2, seat=11)))
        expected[11] = FREE

        avail, states = self.availability(eid)
        diff = {i: (STATE_NAMES[states[i]], STATE_NAMES[expected[i]]) for i in range(capacity)
                if states[i] != expected[i]}
        self.assertEqual(diff, {}, "seat: (got, expected)")
        self.assertEqual((avail.free, avail.held, avail.sold),
                         (expected.count(FREE), expected.count(HELD), expected.count(SOLD)))
        self.assertEqual(avail.free + avail.held + avail.sold, avail.capacity)
        self.assertGreater(avail.version, version, "the version grows with every change")
        self.assertIsNotNone(held)

    def test_watch_availability_sends_full_then_deltas(self):
        event = self.create_event([section("A", 2, 10)])
        eid = event.event_id
        stream = self.stub.WatchAvailability(pb.WatchAvailabilityRequest(event_id=eid, interval_ms=50), timeout=15)
        try:
            first = next(stream)
            self.assertTrue(first.HasField("full"), f"the first message must carry the full map: {first}")
            self.assertEqual((first.full.capacity, first.free), (20, 20))
            seen = decode_states(first.full.states, first.full.capacity)
            self.assertEqual(seen, [FREE] * 20)

            def follow(expected, what):
                deadline = time.monotonic() + 5
                while seen != expected:
                    self.assertLess(time.monotonic(), deadline, f"{what}: the stream never showed it; have {seen}")
                    change = next(stream)
                    self.assertFalse(change.HasField("full"), f"{what}: later messages are deltas: {change}")
                    self.assertGreater(len(change.changed), 0, f"{what}: an empty delta was sent")
                    for c in change.changed:
                        seen[c.seat] = c.state
                    self.assertEqual(change.free + change.held + change.sold, 20)
                    self.assertEqual((change.free, change.held, change.sold),
                                     (seen.count(FREE), seen.count(HELD), seen.count(SOLD)),
                                     f"{what}: the counts do not match the seats")

            expected = [FREE] * 20
            a = self.assertOk(self.hold(eid, 1, [2, 3]))
            expected[2] = expected[3] = HELD
            follow(expected, "hold")
            self.assertOk(rpc(self.stub.Confirm, pb.ConfirmRequest(event_id=eid, user_id=1, hold_id=a.hold_id)))
            expected[2] = expected[3] = SOLD
            follow(expected, "confirm")
            b = self.assertOk(self.hold(eid, 2, [15]))
            self.assertOk(rpc(self.stub.Release, pb.HoldRef(event_id=eid, user_id=2, hold_id=b.hold_id)))
            self.assertOk(self.hold(eid, 2, [19]))
            expected[19] = HELD
            follow(expected, "hold, release, hold")
            _, states = self.availability(eid)
            self.assertEqual(seen, states, "the map built from the stream differs from GetAvailability")
        finally:
            stream.cancel()

    def test_watch_availability_of_unknown_event_is_not_found(self):
        stream = self.stub.WatchAvailability(pb.WatchAvailabilityRequest(event_id=next_event_id()), timeout=5)
        with self.assertRaises(grpc.RpcError) as caught:
            next(stream)
        self.assertEqual(caught.exception.code(), C.NOT_FOUND, caught.exception.details())


class QueueTest(SeatcoreTestCase):
    def queued_event(self, admit_per_s=1, **queue):
        settings = pb.QueueSettings(enabled=True, admit_per_s=admit_per_s, max_active=100, **queue)
        return self.create_event([section("A", 2, 10)], queue=settings).event_id

    def join(self, eid, user):
        return self.assertOk(rpc(self.stub.QueueJoin, pb.QueueRequest(event_id=eid, user_id=user)), f"join {user}")

    def status(self, eid, user):
        return rpc(self.stub.QueueStatus, pb.QueueRequest(event_id=eid, user_id=user))

    def wait_admitted(self, eid, user, timeout_s=5.0):
        def admitted():
            view = self.assertOk(self.status(eid, user), f"QueueStatus {user}")
            return view if view.state == pb.QUEUE_ADMITTED else None

        return self.poll(admitted, timeout_s, what=f"user {user} admitted")

    def test_join_status_heartbeat_leave(self):
        eid = self.queued_event()
        view = self.join(eid, 21)
        self.assertGreater(view.ticket, 0)
        self.assertIn(view.state, (pb.QUEUE_WAITING, pb.QUEUE_ADMITTED))
        self.assertEqual((view.event_id, view.user_id), (eid, 21))
        self.assertEqual(self.join(eid, 21).ticket, view.ticket, "a repeated join keeps the ticket")
        self.assertOk(rpc(self.stub.QueueHeartbeat, pb.QueueRequest(event_id=eid, user_id=21)), "QueueHeartbeat")
        self.assertEqual(self.assertOk(self.status(eid, 21)).ticket, view.ticket)
        self.assertOk(rpc(self.stub.QueueLeave, pb.QueueRequest(event_id=eid, user_id=21)), "QueueLeave")
        self.assertEqual(self.assertOk(self.status(eid, 21)).state, pb.QUEUE_LEFT)
        self.assertFails(self.status(eid, 22), C.NOT_FOUND, "not_found", "status of a user who never joined")
        self.assertFails(rpc(self.stub.QueueHeartbeat, pb.QueueRequest(event_id=eid, user_id=22)), C.NOT_FOUND,
                         "not_found", "heartbeat of a user who never joined")

    def test_admission_token_gates_holds(self):
        eid = self.queued_event()
        self.join(eid, 31)
        self.join(eid, 32)
        view = self.wait_admitted(eid, 31)
        self.assertTrue(view.admission_token, "an admitted view carries a token")
        self.assertGreater(view.admission_expires_ms, now_ms())
        token = view.admission_token
        self.assertFails(self.hold(eid, 31, [0]), C.FAILED_PRECONDITION, "not_admitted", "hold without a token")
        self.assertFails(rpc(self.stub.HoldBestAvailable, pb.HoldBestRequest(event_id=eid, user_id=31, count=1,
                                                                             section=-1)),
                         C.FAILED_PRECONDITION, "not_admitted", "best-available without a token")
        self.assertFails(self.hold(eid, 31, [0], admission_token=token[:-2] + ("AA" if token[-2:] != "AA" else "BB")),
                         C.FAILED_PRECONDITION, "not_admitted", "altered token")
        self.assertFails(self.hold(eid, 32, [0], admission_token=token), C.FAILED_PRECONDITION, "not_admitted",
                         "another user's token")
        other = self.create_event().event_id  # no waiting room: join admits at once, token for that event
        foreign = self.join(other, 31).admission_token
        self.assertFails(self.hold(eid, 31, [0], admission_token=foreign), C.FAILED_PRECONDITION, "not_admitted",
                         "a token for another event")
        held = self.assertOk(self.hold(eid, 31, [0], admission_token=token), "hold with the token")
        self.assertEqual(list(held.seats), [0])

    def test_admissions_follow_join_order_at_the_rate(self):
        eid = self.queued_event(admit_per_s=1)
        users = [41, 42, 43]
        tickets = [self.join(eid, u).ticket for u in users]
        self.assertEqual(tickets, sorted(tickets), "tickets grow in join order")
        admitted_at = {}
        started = time.monotonic()
        while len(admitted_at) < len(users):
            self.assertLess(time.monotonic() - started, 6.0, f"admitted so far: {admitted_at}")
            for u in users:
                if u in admitted_at:
                    continue
                view = self.assertOk(self.status(eid, u))
                if view.state == pb.QUEUE_ADMITTED:
                    admitted_at[u] = time.monotonic() - started
                else:
                    self.assertEqual(view.state, pb.QUEUE_WAITING)
                    self.assertGreaterEqual(view.position, 1)
            time.sleep(0.05)
        order = sorted(users, key=lambda u: admitted_at[u])
        self.assertEqual(order, users, f"admission order (seconds after the joins): {admitted_at}")
        self.assertGreaterEqual(admitted_at[43] - admitted_at[41], 1.5,
                                f"3 users at admit_per_s=1 were admitted too fast: {admitted_at}")
        views = {u: self.assertOk(self.status(eid, u)) for u in users}
        self.assertEqual([views[u].rank for u in users], [0, 1, 2], "ranks follow the joins")

        info = self.assertOk(rpc(self.stub.GetQueueInfo, pb.EventRef(event_id=eid)), "GetQueueInfo")
        self.assertEqual((info.event_id, info.tickets, info.admissions, info.waiting, info.active, info.head_rank),
                         (eid, 3, 3, 0, 3, 3), f"GetQueueInfo after 3 admissions: {info}")

        listed = self.assertOk(rpc(self.stub.ListAdmissions, pb.ListAdmissionsRequest(event_id=eid)),
                               "ListAdmissions")
        self.assertEqual([(a.user_id, a.ticket, a.rank) for a in listed.admissions],
                         [(u, views[u].ticket, views[u].rank) for u in users])
        self.assertEqual(listed.next_rank, 3)
        for a in listed.admissions:
            self.assertEqual(a.admission_token, views[a.user_id].admission_token,
                             f"user {a.user_id}: ListAdmissions and QueueStatus disagree on the token")
        page = self.assertOk(rpc(self.stub.ListAdmissions, pb.ListAdmissionsRequest(event_id=eid, from_rank=1,
                                                                                   limit=1)))
        self.assertEqual(([a.user_id for a in page.admissions], page.next_rank), ([42], 2), f"one page: {page}")
        self.assertOk(self.hold(eid, 43, [3], admission_token=listed.admissions[2].admission_token),
                      "hold with a token from ListAdmissions")

    def test_queue_info_before_the_sale_opens(self):
        opens = now_ms() + 600_000
        settings = pb.QueueSettings(enabled=True, admit_per_s=5, max_active=10)
        eid = self.create_event(queue=settings, sale_opens_at_ms=opens).event_id
        for u in (71, 72, 73):
            view = self.join(eid, u)
            self.assertEqual(view.state, pb.QUEUE_WAITING, f"nobody is admitted before the opening: {view}")
        self.assertFails(self.hold(eid, 71, [0]), C.FAILED_PRECONDITION, "event_closed", "hold before the opening")
        info = self.assertOk(rpc(self.stub.GetQueueInfo, pb.EventRef(event_id=eid)), "GetQueueInfo")
        self.assertEqual((info.tickets, info.admissions, info.waiting, info.active, info.head_rank), (3, 0, 3, 0, 0),
                         f"GetQueueInfo before the opening: {info}")
        listed = self.assertOk(rpc(self.stub.ListAdmissions, pb.ListAdmissionsRequest(event_id=eid)))
        self.assertEqual(len(listed.admissions), 0)

    def test_queue_info_needs_a_waiting_room(self):
        plain = self.create_event().event_id
        for name, request in [("GetQueueInfo", pb.EventRef(event_id=plain)),
                              ("ListAdmissions", pb.ListAdmissionsRequest(event_id=plain))]:
            with self.subTest(name):
                self.assertFails(rpc(getattr(self.stub, name), request), C.INVALID_ARGUMENT, "invalid_request", name)
        unknown = next_event_id()
        for name, request in [("GetQueueInfo", pb.EventRef(event_id=unknown)),
                              ("ListAdmissions", pb.ListAdmissionsRequest(event_id=unknown))]:
            with self.subTest(f"{name} of an unknown event"):
                self.assertFails(rpc(getattr(self.stub, name), request), C.NOT_FOUND, "not_found", name)

    def test_watch_queue_sends_positions_then_the_token_and_ends(self):
        eid = self.queued_event(admit_per_s=1)
        self.join(eid, 51)
        self.join(eid, 52)
        started = time.monotonic()
        views = list(self.stub.WatchQueue(pb.QueueRequest(event_id=eid, user_id=52), timeout=10))
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(len(views), 2, f"expected positions then the admission: {views}")
        waiting, last = views[:-1], views[-1]
        for v in waiting:
            self.assertEqual(v.state, pb.QUEUE_WAITING, f"before the last message: {v}")
            self.assertGreaterEqual(v.position, 1)
        positions = [v.position for v in waiting]
        self.assertEqual(positions, sorted(positions, reverse=True), "positions never grow")
        self.assertEqual(last.state, pb.QUEUE_ADMITTED, f"the last message: {last}")
        self.assertTrue(last.admission_token)
        self.assertLess(elapsed, 5.0)
        self.assertOk(self.hold(eid, 52, [7], admission_token=last.admission_token), "hold with the pushed token")

    def test_watch_queue_of_a_user_who_never_joined_is_not_found(self):
        eid = self.queued_event()
        with self.assertRaises(grpc.RpcError) as caught:
            list(self.stub.WatchQueue(pb.QueueRequest(event_id=eid, user_id=59), timeout=5))
        self.assertEqual(caught.exception.code(), C.NOT_FOUND, caught.exception.details())

    def test_join_without_a_waiting_room_admits_at_once(self):
        eid = self.create_event().event_id
        view = self.join(eid, 61)
        self.assertEqual(view.state, pb.QUEUE_ADMITTED)
        self.assertTrue(view.admission_token)
        self.assertOk(self.hold(eid, 61, [0]), "no token needed without a waiting room")


class BatchTest(SeatcoreTestCase):
    def test_mixed_batch_answers_each_op(self):
        eid = self.create_event([section("A", 2, 10, 500)], max_seats_per_user=20).event_id
        qid = self.create_event(queue=pb.QueueSettings(enabled=True, admit_per_s=1, max_active=10)).event_id
        to_release = self.assertOk(self.hold(eid, 4, [10]))
        to_confirm = self.assertOk(self.hold(eid, 5, [11, 12]))
        ops = [
            pb.BatchOp(hold=pb.HoldRequest(event_id=eid, user_id=1, seats=[0, 1])),
            pb.BatchOp(hold=pb.HoldRequest(event_id=eid, user_id=2, seats=[1, 2])),  # after op 0: conflict
            pb.BatchOp(hold_best=pb.HoldBestRequest(event_id=eid, user_id=3, count=2, section=-1)),
            pb.BatchOp(release=pb.HoldRef(event_id=eid, user_id=4, hold_id=to_release.hold_id)),
            pb.BatchOp(confirm=pb.ConfirmRequest(event_id=eid, user_id=5, hold_id=to_confirm.hold_id,
                                                 idempotency_key="batch-pay")),
            pb.BatchOp(return_seat=pb.ReturnSeatRequest(event_id=eid, user_id=6, seat=19)),
            pb.BatchOp(get_event=pb.EventRef(event_id=eid)),
            pb.BatchOp(queue_join=pb.QueueRequest(event_id=qid, user_id=7)),
            pb.BatchOp(queue_status=pb.QueueRequest(event_id=qid, user_id=7)),
            pb.BatchOp(queue_leave=pb.QueueRequest(event_id=qid, user_id=7)),
            pb.BatchOp(),
            pb.BatchOp(get_event=pb.EventRef(event_id=next_event_id())),
            pb.BatchOp(hold=pb.HoldRequest(event_id=eid, user_id=8, seats=list(range(11)))),
        ]
        reply = self.assertOk(rpc(self.stub.Batch, pb.BatchRequest(ops=ops)), "Batch")
        self.assertEqual(len(reply.results), len(ops))
        r = reply.results
        expected = [(0, C.OK, None), (1, C.ABORTED, "seat_unavailable"), (2, C.OK, None), (3, C.OK, None),
                    (4, C.OK, None), (5, C.NOT_FOUND, "not_found"), (6, C.OK, None), (7, C.OK, None),
                    (8, C.OK, None), (9, C.OK, None), (10, C.INVALID_ARGUMENT, "invalid_request"),
                    (11, C.NOT_FOUND, "not_found"), (12, C.INVALID_ARGUMENT, "invalid_request")]
        for i, code, error_code in expected:
            with self.subTest(op=i):
                self.assertEqual(r[i].code, code_number(code), f"op {i}: expected {code.name}, got {r[i]}")
                if error_code:
                    self.assertEqual(r[i].error.code, error_code, f"op {i}: {r[i]}")
        self.assertEqual(sorted(r[0].hold.seats), [0, 1])
        self.assertEqual(r[0].hold.amount_cents, 1000)
        self.assertEqual(list(r[1].error.unavailable_seats), [1])
        best = sorted(r[2].hold.seats)
        self.assertEqual(len(best), 2)
        self.assertEqual(best[1], best[0] + 1, f"best-available seats {best} are not adjacent")
        self.assertEqual(r[4].WhichOneof("result"), "hold")
        self.assertEqual(sorted(r[4].hold.seats), [11, 12])
        self.assertEqual(r[6].WhichOneof("result"), "event")
        self.assertEqual(r[6].event.sold, 2)
        self.assertEqual(r[7].WhichOneof("result"), "queue")
        self.assertGreater(r[7].queue.ticket, 0)
        self.assertEqual(r[8].queue.ticket, r[7].queue.ticket)

        _, states = self.availability(eid)
        expected = {0: HELD, 1: HELD, 2: FREE, 10: FREE, 11: SOLD, 12: SOLD}
        expected.update({s: HELD for s in best})
        self.assertEqual({s: states[s] for s in expected}, expected, "seat: state after the batch")
        left = self.assertOk(rpc(self.stub.QueueStatus, pb.QueueRequest(event_id=qid, user_id=7)))
        self.assertEqual(left.state, pb.QUEUE_LEFT)

    def test_empty_batch_is_an_empty_reply(self):
        reply = self.assertOk(rpc(self.stub.Batch, pb.BatchRequest()), "empty Batch")
        self.assertEqual(len(reply.results), 0)


class HealthTest(SeatcoreTestCase):
    def test_check_is_serving(self):
        for service in ("", "tiketi.v1.SeatCore"):
            with self.subTest(service=service):
                reply = self.assertOk(rpc(self.client.health.Check, health_pb2.HealthCheckRequest(service=service)))
                self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING)

    def test_check_of_an_unknown_service_is_not_found(self):
        result = rpc(self.client.health.Check, health_pb2.HealthCheckRequest(service="no.such.Service"))
        self.assertEqual(result.code, C.NOT_FOUND, str(result))

    def test_watch_sends_serving(self):
        stream = self.client.health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
        try:
            first = next(stream)
            self.assertEqual(first.status, health_pb2.HealthCheckResponse.SERVING)
        finally:
            stream.cancel()


if __name__ == "__main__":
    unittest.main()
