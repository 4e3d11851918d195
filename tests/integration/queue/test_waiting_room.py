"""test_waiting_room.py — WaitingRoom Join / Status / Leave / Heartbeat / Watch through queue-svc."""
import datetime
import subprocess
import time

import grpc

from harness import C, QueueDaemon, QueueTestCase, env, metrics, rpc
from tiketi.v1 import queue_pb2 as qpb
from tiketi.v1 import queue_pb2_grpc
from tiketi.v1 import seatcore_pb2 as pb


def parse_time(text):
    """RFC 3339 UTC with milliseconds, as the API promises."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


class JoinStatusLeaveTest(QueueTestCase):
    def test_join_is_idempotent_and_status_heartbeat_leave_work(self):
        eid = self.create_event(opens_in_s=3600)  # nobody is admitted: stable positions
        first = self.join(eid, 11)
        self.assertEqual((first.status, first.event_id, first.user_id), ("waiting", str(eid), "11"))
        self.assertGreater(first.ticket, 0)
        self.assertEqual(first.position, first.rank + 1, "nobody admitted yet: position is rank + 1")
        self.assertGreater(first.eta_s, 0)
        self.assertEqual((first.admission_token, first.admission_expires_at), ("", ""))
        again = self.join(eid, 11)
        self.assertEqual((again.ticket, again.rank), (first.ticket, first.rank), "a repeated join keeps the ticket")
        second = self.join(eid, 12)
        self.assertEqual(second.rank, first.rank + 1, "the next arrival has the next rank")
        self.assertEqual(second.position, 2)
        self.assertEqual(self.status(eid, 12).position, 2)
        self.assertOk(rpc(self.room.Heartbeat, self.req(eid, 12)), "Heartbeat")
        self.assertOk(rpc(self.room.Leave, self.req(eid, 11)), "Leave")
        left = self.status(eid, 11)
        self.assertEqual((left.status, left.position), ("left", 0))
        self.assertEqual(self.status(eid, 12).position, 1, "the user behind moved up")
        self.assertOk(rpc(self.room.Leave, self.req(eid, 11)), "a second Leave is harmless")

    def test_members_only_calls_of_a_user_who_never_joined_are_not_found(self):
        eid = self.create_event(opens_in_s=3600)
        for name in ("Status", "Heartbeat", "Leave"):
            with self.subTest(name):
                self.assertFails(rpc(getattr(self.room, name), self.req(eid, 99)), C.NOT_FOUND, "not_found", name)

    def test_admitted_view_has_a_token_the_engine_accepts(self):
        eid = self.create_event(admit_per_s=20)
        self.join(eid, 21)
        view = self.poll(lambda: (v := self.status(eid, 21)).status == "admitted" and v, 5, what="admitted")
        self.assertTrue(view.admission_token)
        self.assertEqual((view.position, view.eta_s), (0, 0))
        expires = parse_time(view.admission_expires_at)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertGreater(expires, now, "the grant lasts")
        self.assertLess(expires, now + datetime.timedelta(hours=2))
        self.assertEqual(self.join(eid, 21).admission_token, view.admission_token, "join again: same grant")
        self.assertOk(self.hold_with(eid, 21, 3, view.admission_token), "Hold with the token")
        self.assertFails(self.hold_with(eid, 22, 4, view.admission_token), C.FAILED_PRECONDITION, "not_admitted",
                         "another user's token")

    def test_event_without_a_waiting_room_admits_at_once(self):
        eid = self.create_event(queue=False, catalog=False)
        view = self.join(eid, 31)
        self.assertEqual((view.status, view.ticket), ("admitted", 0))
        self.assertTrue(view.admission_token)
        parse_time(view.admission_expires_at)


class ErrorTest(QueueTestCase):
    GARBAGE = ["", "abc", "-1", "+1", "0", "01", "1.5", " 1", "1 ", "1e3", "0x10", "18446744073709551616",
               "99999999999999999999999", "١٢", "12345678901234567890123"]

    def test_garbage_ids_are_invalid_argument(self):
        eid = self.create_event(opens_in_s=3600)
        for name in ("Join", "Status", "Leave", "Heartbeat"):
            method = getattr(self.room, name)
            for bad in self.GARBAGE:
                with self.subTest(method=name, event_id=bad):
                    self.assertFails(rpc(method, qpb.WaitingRoomRequest(event_id=bad, user_id="1")),
                                     C.INVALID_ARGUMENT, "invalid_request", f"{name} event_id={bad!r}")
                with self.subTest(method=name, user_id=bad):
                    self.assertFails(rpc(method, qpb.WaitingRoomRequest(event_id=str(eid), user_id=bad)),
                                     C.INVALID_ARGUMENT, "invalid_request", f"{name} user_id={bad!r}")
        too_big_user = str(1 << 48)
        self.assertFails(rpc(self.room.Join, self.req(eid, too_big_user)), C.INVALID_ARGUMENT, "invalid_request")
        self.assertEqual(self.join(eid, (1 << 48) - 1).status, "waiting", "the largest user id is fine")

    def test_garbage_ids_end_a_watch_with_invalid_argument(self):
        for bad in ("", "x", "0"):
            with self.subTest(event_id=bad), self.assertRaises(grpc.RpcError) as caught:
                list(self.room.Watch(qpb.WaitingRoomRequest(event_id=bad, user_id="1"), timeout=5))
            self.assertEqual(caught.exception.code(), C.INVALID_ARGUMENT)

    def test_not_a_protobuf_is_invalid_argument(self):
        raw = self.channel.unary_unary("/tiketi.v1.WaitingRoom/Join")
        with self.assertRaises(grpc.RpcError) as caught:
            raw(b"\xff\xff\xff", timeout=5)
        self.assertEqual(caught.exception.code(), C.INVALID_ARGUMENT)

    def test_unknown_event_is_not_found(self):
        self.assertFails(rpc(self.room.Join, self.req(987654321012, 1)), C.NOT_FOUND, "not_found")

    def test_full_queue_is_resource_exhausted(self):
        eid = self.create_event(opens_in_s=3600, length_max=2)
        self.join(eid, 1)
        self.join(eid, 2)
        self.assertFails(rpc(self.room.Join, self.req(eid, 3)), C.RESOURCE_EXHAUSTED, "queue_full")

    def test_closed_event_is_failed_precondition(self):
        eid = self.create_event(opens_in_s=3600)
        self.assertOk(rpc(self.engine(eid).CloseEvent, pb.EventRef(event_id=eid)), "CloseEvent")
        self.assertFails(rpc(self.room.Join, self.req(eid, 1)), C.FAILED_PRECONDITION, "event_closed")


class WatchTest(QueueTestCase):
    def test_watch_sends_positions_then_the_admission_and_ends(self):
        eid = self.create_event(admit_per_s=1, max_active=100)
        for user in (41, 42, 43):
            self.join(eid, user)
        started = time.monotonic()
        arrivals, views = [], []
        for view in self.room.Watch(self.req(eid, 43), timeout=20):
            arrivals.append(time.monotonic())
            views.append(view)
        self.assertGreaterEqual(len(views), 2, f"positions then the admission: {views}")
        self.assertLess(arrivals[0] - started, 1.0, "the first view comes at once")
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        self.assertLessEqual(max(gaps), 1.0, f"a view at least once a second: gaps {gaps}")
        waiting, last = views[:-1], views[-1]
        for v in waiting:
            self.assertEqual((v.status, v.event_id, v.user_id), ("waiting", str(eid), "43"))
            self.assertGreaterEqual(v.position, 1)
        positions = [v.position for v in waiting]
        self.assertEqual(positions, sorted(positions, reverse=True), "positions never grow")
        self.assertGreater(positions[0], 1, "it started behind others")
        self.assertEqual(last.status, "admitted")
        self.assertTrue(last.admission_token and last.admission_expires_at)
        self.assertOk(self.hold_with(eid, 43, 9, last.admission_token), "Hold with the watched token")

    def test_watch_of_a_user_who_never_joined_is_not_found(self):
        eid = self.create_event(opens_in_s=3600)
        with self.assertRaises(grpc.RpcError) as caught:
            list(self.room.Watch(self.req(eid, 5), timeout=5))
        self.assertEqual(caught.exception.code(), C.NOT_FOUND)

    def test_a_cancelled_watch_is_let_go(self):
        eid = self.create_event(opens_in_s=3600)
        self.join(eid, 7)
        stream = self.room.Watch(self.req(eid, 7), timeout=30)
        got = [next(stream), next(stream)]
        self.assertEqual([v.status for v in got], ["waiting", "waiting"])
        self.assertGreaterEqual(metrics(env("QUEUE_METRICS")).get("tiketi_queue_watch_streams", 0), 1)
        stream.cancel()
        self.poll(lambda: metrics(env("QUEUE_METRICS")).get("tiketi_queue_watch_streams", 1) == 0, 3,
                  what="the server ended the cancelled stream")


class DependencyTest(QueueTestCase):
    """Replicas of our own whose dependencies are down (their catalog is unreachable, so they
    never compete for the feed of the shared replica's events)."""

    NO_DATABASE = "postgresql://postgres@127.0.0.1:1/none"

    def replica(self, name, *extra):
        daemon = QueueDaemon(name, self.NO_DATABASE, extra=list(extra)).start()
        self.addCleanup(daemon.kill)
        return daemon

    def dead_address(self):
        return "127.0.0.1:" + subprocess.check_output([env("FREE_PORT")], text=True).strip()

    def test_an_unreachable_shard_is_unavailable_not_a_hang(self):
        daemon = self.replica("dead-shards", "--seatcored-shards", f"{self.dead_address()},{self.dead_address()}",
                              "--engine-timeout-ms", "500")
        channel = grpc.insecure_channel(daemon.address)
        self.addCleanup(channel.close)
        room = queue_pb2_grpc.WaitingRoomStub(channel)
        started = time.monotonic()
        self.assertFails(rpc(room.Join, self.req(1042, 1)), C.UNAVAILABLE, "unavailable")
        self.assertFails(rpc(room.Status, self.req(1042, 1)), C.UNAVAILABLE, "unavailable")
        with self.assertRaises(grpc.RpcError) as caught:
            list(room.Watch(self.req(1042, 1), timeout=5))
        self.assertEqual(caught.exception.code(), C.UNAVAILABLE)
        self.assertLess(time.monotonic() - started, 4.0)

    def test_without_redis_the_waiting_room_still_works(self):
        daemon = self.replica("dead-redis", "--redis-url", f"redis://{self.dead_address()}")
        channel = grpc.insecure_channel(daemon.address)
        self.addCleanup(channel.close)
        room = queue_pb2_grpc.WaitingRoomStub(channel)
        eid = self.create_event(opens_in_s=3600, catalog=False)
        self.assertEqual(self.join(eid, 1, stub=room).status, "waiting")
        self.assertOk(rpc(room.Leave, self.req(eid, 1)), "Leave without Redis")
        self.assertEqual(self.status(eid, 1, stub=room).status, "left")
        self.assertEqual(daemon.metric("tiketi_queue_left_publish_errors_total"), 1)
