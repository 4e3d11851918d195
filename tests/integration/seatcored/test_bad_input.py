"""Hostile and absurd input: garbage bytes, wrong types, oversize messages, unknown methods,
values past every bound, oversize batches, expired deadlines. Each is refused with a clear
status, and the daemon keeps serving (checked last, and again by the `run` script)."""
import threading
import time
import unittest

import grpc

import health_pb2
from harness import (FREE, METHODS, SeatcoreTestCase, env, next_event_id, pb, rpc, section)

C = grpc.StatusCode

GARBAGE = {
    "invalid wire type": b"\xff\xff\xff\xff",
    "truncated length-delimited field": b"\x0a\x05ab",
    "truncated varint": b"\x08",
    "over-long varint": b"\x08" + b"\xff" * 10 + b"\x01",
    "length past the end": b"\x12\xff\xff\xff\x0f" + b"x" * 16,
}
HEALTH = "grpc.health.v1.Health"


class GarbageTest(SeatcoreTestCase):
    def raw_call(self, method, payload, service="tiketi.v1.SeatCore", streaming=False, timeout=5):
        """Sends raw bytes; returns (code, details, detail code or None)."""
        try:
            if streaming:
                list(self.client.raw_stream(method, service)(payload, timeout=timeout))
            else:
                self.client.raw_unary(method, service)(payload, timeout=timeout)
            return C.OK, "", None
        except grpc.RpcError as err:
            detail = dict(err.trailing_metadata() or ()).get("tiketi-error-bin")
            return err.code(), err.details(), detail

    def test_garbage_bytes_to_every_method_are_invalid_argument(self):
        targets = [("tiketi.v1.SeatCore", m, streaming) for m, (_, streaming) in METHODS.items()]
        targets += [(HEALTH, "Check", False), (HEALTH, "Watch", True)]
        for service, method, streaming in targets:
            for what, payload in GARBAGE.items():
                with self.subTest(method=f"{service}/{method}", payload=what):
                    code, details, detail = self.raw_call(method, payload, service, streaming)
                    self.assertEqual(code, C.INVALID_ARGUMENT, f"{method} <- {what}: got {code.name} '{details}'")
                    self.assertIsNotNone(detail, f"{method} <- {what}: no tiketi-error-bin trailer")

    def test_garbage_from_many_threads_at_once(self):
        errors = []

        def hammer(n):
            for i in range(40):
                method = list(METHODS)[(n + i) % len(METHODS)]
                if METHODS[method][1]:
                    continue
                payload = list(GARBAGE.values())[i % len(GARBAGE)]
                code, details, _ = self.raw_call(method, payload)
                if code != C.INVALID_ARGUMENT:
                    errors.append(f"{method}: {code.name} '{details}'")

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])

    def test_a_message_of_another_type(self):
        event = self.create_event()
        create = pb.CreateEventRequest(event_id=event.event_id, sections=[section()]).SerializeToString()
        code, details, _ = self.raw_call("Hold", create)
        self.assertEqual(code, C.INVALID_ARGUMENT, f"CreateEventRequest sent to Hold: {code.name} '{details}'")
        # A type whose fields line up is read by field number, unknown fields skipped (protobuf rules).
        queue = pb.QueueRequest(event_id=event.event_id, user_id=5).SerializeToString()
        reply = self.client.raw_unary("GetEvent")(queue, timeout=5)
        self.assertEqual(pb.EventInfo.FromString(reply).event_id, event.event_id)

    def test_oversize_message_is_resource_exhausted(self):
        limit = int(env("TK_IT_MAX_MESSAGE_BYTES"))
        code, details, _ = self.raw_call("GetEvent", b"\x00" * (limit + 1))
        self.assertEqual(code, C.RESOURCE_EXHAUSTED, f"{limit + 1} bytes of garbage: {code.name} '{details}'")
        event = self.create_event()
        big = pb.HoldRequest(event_id=event.event_id, user_id=1, seats=[0], idempotency_key="k" * (limit + 16))
        result = self.hold(event.event_id, 1, [0], idempotency_key=big.idempotency_key)
        self.assertFails(result, C.RESOURCE_EXHAUSTED, what="a Hold larger than --max-message-bytes")
        _, states = self.availability(event.event_id)
        self.assertEqual(states[0], FREE, "the refused oversize hold must hold nothing")
        self.assertOk(self.hold(event.event_id, 1, [0]), "a normal call after the oversize ones")

    def test_unknown_method_is_unimplemented_at_once(self):
        for service, method, streaming in [("tiketi.v1.SeatCore", "NoSuchMethod", False),
                                           ("no.such.Service", "Method", False),
                                           ("tiketi.v1.SeatCore", "WatchNothing", True)]:
            with self.subTest(path=f"/{service}/{method}"):
                started = time.monotonic()
                code, details, _ = self.raw_call(method, b"", service, streaming, timeout=10)
                elapsed = time.monotonic() - started
                self.assertEqual(code, C.UNIMPLEMENTED, f"got {code.name} '{details}' after {elapsed:.2f}s")
                self.assertLess(elapsed, 2.0, "UNIMPLEMENTED must come at once, not at the deadline")


class AbsurdValuesTest(SeatcoreTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        request = pb.CreateEventRequest(event_id=next_event_id(), sections=[section("A", 2, 10), section("B", 1, 5)],
                                        max_seats_per_user=50)
        cls.eid = rpc(cls.stub.CreateEvent, request).reply.event_id

    def expect_invalid(self, method, request, what):
        with self.subTest(what):
            self.assertFails(rpc(getattr(self.stub, method), request), C.INVALID_ARGUMENT, "invalid_request", what)

    def test_absurd_seats(self):
        e = self.eid
        for seats, what in [([4_000_000_000], "seat 4e9"), ([25], "seat == capacity"), (list(range(11)), "11 seats"),
                            ([], "no seats"), ([3, 3], "the same seat twice"), ([0, 4_294_967_295], "seat 2^32-1")]:
            self.expect_invalid("Hold", pb.HoldRequest(event_id=e, user_id=1, seats=seats), what)
        self.expect_invalid("ReturnSeat", pb.ReturnSeatRequest(event_id=e, user_id=1, seat=4_000_000_000),
                            "return seat 4e9")
        _, states = self.availability(e)
        self.assertEqual(states, [FREE] * 25, "refused holds must hold nothing")

    def test_absurd_user_ids(self):
        e = self.eid
        for user, label in [(0, "0"), (2 ** 48, "2^48"), (2 ** 63, "2^63"), (2 ** 64 - 1, "2^64-1")]:
            self.expect_invalid("Hold", pb.HoldRequest(event_id=e, user_id=user, seats=[1]), f"Hold user {label}")
            self.expect_invalid("HoldBestAvailable", pb.HoldBestRequest(event_id=e, user_id=user, count=1, section=-1),
                                f"HoldBestAvailable user {label}")
            self.expect_invalid("Release", pb.HoldRef(event_id=e, user_id=user, hold_id=1), f"Release user {label}")
            self.expect_invalid("Confirm", pb.ConfirmRequest(event_id=e, user_id=user, hold_id=1),
                                f"Confirm user {label}")
            self.expect_invalid("ReturnSeat", pb.ReturnSeatRequest(event_id=e, user_id=user, seat=1),
                                f"ReturnSeat user {label}")
            for method in ("QueueJoin", "QueueStatus", "QueueLeave", "QueueHeartbeat"):
                self.expect_invalid(method, pb.QueueRequest(event_id=e, user_id=user), f"{method} user {label}")

    def test_absurd_best_available(self):
        e = self.eid
        for count, sect, what in [(0, -1, "count 0"), (11, -1, "count 11"), (2 ** 32 - 1, -1, "count 2^32-1"),
                                  (2, -5, "section -5"), (2, 2, "section == number of sections"),
                                  (2, 2 ** 31 - 1, "section 2^31-1"), (2, -2 ** 31, "section -2^31")]:
            self.expect_invalid("HoldBestAvailable",
                                pb.HoldBestRequest(event_id=e, user_id=1, count=count, section=sect), what)

    def test_idempotency_key_over_255_bytes(self):
        e = self.eid
        key = "k" * 256
        self.expect_invalid("Hold", pb.HoldRequest(event_id=e, user_id=1, seats=[2], idempotency_key=key), "Hold")
        self.expect_invalid("HoldBestAvailable", pb.HoldBestRequest(event_id=e, user_id=1, count=1, section=-1,
                                                                    idempotency_key=key), "HoldBestAvailable")
        self.expect_invalid("Confirm", pb.ConfirmRequest(event_id=e, user_id=1, hold_id=1, idempotency_key=key),
                            "Confirm")
        self.expect_invalid("Hold", pb.HoldRequest(event_id=e, user_id=1, seats=[2], idempotency_key="é" * 128),
                            "256 bytes of UTF-8 (128 characters)")
        held = self.assertOk(self.hold(e, 1, [2], idempotency_key="k" * 255), "a 255-byte key is accepted")
        again = self.assertOk(self.hold(e, 1, [2], idempotency_key="k" * 255))
        self.assertEqual((again.hold_id, again.replayed), (held.hold_id, True))

    def test_absurd_admission_token(self):
        settings = pb.QueueSettings(enabled=True, admit_per_s=1, max_active=1)
        eid = self.create_event(queue=settings).event_id
        for token, what in [("x" * 10000, "10 kB token"), ("\u0000" * 87, "NULs"), ("A" * 87, "right length")]:
            with self.subTest(what):
                self.assertFails(self.hold(eid, 1, [0], admission_token=token), C.FAILED_PRECONDITION, "not_admitted")

    def test_absurd_admission_listing(self):
        settings = pb.QueueSettings(enabled=True, admit_per_s=100, max_active=100)
        eid = self.create_event(queue=settings).event_id
        for user in (1, 2, 3):
            self.assertOk(rpc(self.stub.QueueJoin, pb.QueueRequest(event_id=eid, user_id=user)))
        for from_rank, limit, most in [(0, 2 ** 32 - 1, 3), (2 ** 32 - 1, 0, 0), (2 ** 31, 2 ** 32 - 1, 0)]:
            with self.subTest(from_rank=from_rank, limit=limit):
                reply = self.assertOk(rpc(self.stub.ListAdmissions, pb.ListAdmissionsRequest(
                    event_id=eid, from_rank=from_rank, limit=limit)), "ListAdmissions")
                self.assertLessEqual(len(reply.admissions), most)

    def test_absurd_events(self):
        def create(what, **fields):
            fields.setdefault("sections", [section()])
            self.expect_invalid("CreateEvent", pb.CreateEventRequest(event_id=next_event_id(), **fields), what)

        create("64+ sections (65)", sections=[section(f"S{i}", 1, 1) for i in range(65)])
        create("1000 sections", sections=[section(f"S{i}", 1, 1) for i in range(1000)])
        create("1001 rows", sections=[section("A", 1001, 1)])
        create("2^32-1 seats per row", sections=[section("A", 1, 2 ** 32 - 1)])
        create("rows x seats overflowing 32 bits", sections=[section("A", 65536, 65536)])
        create("price past 1e8 cents", sections=[section("A", 1, 1, 100_000_001)])
        create("hold_ttl_ms 1", hold_ttl_ms=1)
        create("hold_ttl_ms 2^32-1", hold_ttl_ms=2 ** 32 - 1)
        create("max_seats_per_user 101", max_seats_per_user=101)
        create("holds_max past the capacity", holds_max=1000)
        create("users_max 2^32-1", users_max=2 ** 32 - 1)
        create("negative sale_opens_at_ms", sale_opens_at_ms=-1)
        create("waiting room admitting 0 per second", queue=pb.QueueSettings(enabled=True, admit_per_s=0, max_active=1))
        create("waiting room with admission_ttl_ms 1",
               queue=pb.QueueSettings(enabled=True, admit_per_s=1, max_active=1, admission_ttl_ms=1))
        self.assertOk(rpc(self.stub.CreateEvent, pb.CreateEventRequest(
            event_id=next_event_id(), sections=[section(f"S{i}", 1, 1) for i in range(64)])), "64 sections are fine")


class BatchBoundsTest(SeatcoreTestCase):
    def test_batch_over_4096_ops_is_refused_whole(self):
        eid = self.create_event([section("A", 50, 100)], holds_max=5000).event_id
        ops = [pb.BatchOp(hold=pb.HoldRequest(event_id=eid, user_id=1 + i, seats=[i])) for i in range(4097)]
        self.assertFails(rpc(self.stub.Batch, pb.BatchRequest(ops=ops)), C.RESOURCE_EXHAUSTED, "limit_reached",
                         "4097 operations")
        avail, _ = self.availability(eid)
        self.assertEqual(avail.held, 0, "a refused batch must not have run any operation")

    def test_batch_of_4096_failing_ops_is_answered(self):
        unknown = next_event_id()
        ops = [pb.BatchOp(hold=pb.HoldRequest(event_id=unknown, user_id=1, seats=[i])) for i in range(4096)]
        reply = self.assertOk(rpc(self.stub.Batch, pb.BatchRequest(ops=ops), timeout=15), "4096 operations")
        self.assertEqual(len(reply.results), 4096)
        self.assertEqual({r.code for r in reply.results}, {C.NOT_FOUND.value[0]})

    def test_batch_of_4096_get_event_ops_is_answered(self):
        eid = self.create_event().event_id
        ops = [pb.BatchOp(get_event=pb.EventRef(event_id=eid))] * 4096
        reply = self.assertOk(rpc(self.stub.Batch, pb.BatchRequest(ops=ops), timeout=15),
                              "4096 get_event operations (the documented bound)")
        self.assertEqual(len(reply.results), 4096)

    def test_a_batch_that_fails_has_changed_nothing(self):
        eid = self.create_event().event_id
        ops = [pb.BatchOp(hold=pb.HoldRequest(event_id=eid, user_id=1, seats=[0]))]
        ops += [pb.BatchOp(get_event=pb.EventRef(event_id=eid))] * 4095
        result = rpc(self.stub.Batch, pb.BatchRequest(ops=ops), timeout=15)
        _, states = self.availability(eid)
        if result.ok:
            self.assertEqual(result.reply.results[0].code, 0, f"op 0: {result.reply.results[0]}")
            self.assertEqual(states[0], 1, "op 0 answered OK but seat 0 is not held")
        else:
            self.assertEqual(states[0], FREE, f"the batch failed ({result}) but its first op, a hold of seat 0, "
                                              "was applied: seat 0 is held")


class DeadlineTest(SeatcoreTestCase):
    def test_expired_client_deadline_is_deadline_exceeded_and_harmless(self):
        big = self.create_event([section(f"S{i}", 1000, 200) for i in range(1)]).event_id  # 200000 seats
        outcomes = []
        for i in range(20):
            for name, request in [("GetAvailability", pb.EventRef(event_id=big)),
                                  ("Hold", pb.HoldRequest(event_id=big, user_id=1 + i, seats=[i])),
                                  ("GetEvent", pb.EventRef(event_id=big))]:
                result = rpc(getattr(self.stub, name), request, timeout=0.0001)
                # a tiny call on loopback can, rarely, beat even 0.1 ms: OK is acceptable, nothing else
                self.assertIn(result.code, (C.DEADLINE_EXCEEDED, C.OK), f"{name} with a 0.1 ms deadline: {result}")
                outcomes.append(result.code)
        self.assertGreater(outcomes.count(C.DEADLINE_EXCEEDED), len(outcomes) // 2,
                           "most calls with a 0.1 ms deadline must be DEADLINE_EXCEEDED")
        stream = self.stub.WatchAvailability(pb.WatchAvailabilityRequest(event_id=big), timeout=0.0001)
        with self.assertRaises(grpc.RpcError) as caught:
            list(stream)
        self.assertEqual(caught.exception.code(), C.DEADLINE_EXCEEDED)
        avail = self.assertOk(rpc(self.stub.GetAvailability, pb.EventRef(event_id=big)), "a normal call afterwards")
        self.assertEqual(avail.free + avail.held + avail.sold, avail.capacity)
        self.assertLessEqual(avail.held, 20)


class WatchChurnTest(SeatcoreTestCase):
    def test_many_cancelled_watch_streams_free_their_slots(self):
        # More streams than the default --watchers-max (1024), opened 50 at a time and cancelled
        # after their first message: a leaked slot would make the last ones RESOURCE_EXHAUSTED.
        eid = self.create_event().event_id
        request = pb.WatchAvailabilityRequest(event_id=eid, interval_ms=50)
        opened = 0
        while opened < 1100:
            streams = [self.stub.WatchAvailability(request, timeout=10) for _ in range(50)]
            try:
                for i, stream in enumerate(streams):
                    try:
                        first = next(stream)
                    except grpc.RpcError as err:
                        self.fail(f"stream {opened + i}: {err.code().name} '{err.details()}'")
                    self.assertTrue(first.HasField("full"))
            finally:
                for stream in streams:
                    stream.cancel()
            opened += len(streams)


class ZzStillServingTest(SeatcoreTestCase):
    """Runs last in this module (unittest sorts classes by name)."""

    def test_daemon_still_serves_after_all_of_it(self):
        reply = self.assertOk(rpc(self.client.health.Check, health_pb2.HealthCheckRequest()), "health Check")
        self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING)
        event = self.create_event()
        self.assertOk(self.hold(event.event_id, 1, [0]), "a hold after the hostile input")


if __name__ == "__main__":
    unittest.main()
