"""test_queue.py — the waiting room: REST join/status/leave, and the WebSocket: positions that
arrive at least once a second and go down, the admission with a token the engine accepts, seat
deltas after it, leaving, the connection cap, pings, and slow consumers closed with 1008."""
import json
import os
import signal
import socket
import struct
import threading
import time
import unittest
import urllib.parse

import websocket

from harness import (EdgeTestCase, Engine, Messages, api, create_event, env, new_account, request, skip_unless,
                     skipped_services, start_edge, stop_edge, wait_up, ws_connect)

QUEUE_ROUTES = [["POST", "/api/v1/events/{event_id}/queue"], ["GET", "/api/v1/events/{event_id}/queue"],
                ["DELETE", "/api/v1/events/{event_id}/queue"], ["GET", "/api/v1/events/{event_id}/queue/ws"]]


def metric(base, name):
    text = request(base, "GET", "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class QueueTestCase(EdgeTestCase):
    def setUp(self):
        skip_unless("auth-svc", "event-svc", "queue-svc", routes=QUEUE_ROUTES)


class Rest(QueueTestCase):
    def test_join_status_leave(self):
        event_id = create_event(queue={"enabled": True, "admit_per_s": 5, "max_active": 10}, opens_in_s=3600)
        first, second = new_account("q1"), new_account("q2")
        joined = api("POST", f"/api/v1/events/{event_id}/queue", token=first.access)
        self.assertStatus(joined, 200)
        view = joined.json()
        self.assertEqual((view["status"], view["position"]), ("waiting", 1))
        self.assertGreater(view["eta_s"], 0)
        self.assertNotIn("admission_token", view)
        again = api("POST", f"/api/v1/events/{event_id}/queue", token=first.access).json()
        self.assertEqual(again["ticket"], view["ticket"], "joining is idempotent per user")
        api("POST", f"/api/v1/events/{event_id}/queue", token=second.access)
        status = api("GET", f"/api/v1/events/{event_id}/queue", token=second.access)
        self.assertStatus(status, 200)
        self.assertEqual(status.json()["position"], 2)
        self.assertStatus(api("DELETE", f"/api/v1/events/{event_id}/queue", token=first.access), 204)
        deadline = time.monotonic() + 3
        while api("GET", f"/api/v1/events/{event_id}/queue", token=second.access).json()["position"] != 1:
            self.assertLess(time.monotonic(), deadline, "the leave moves the next one up")
            time.sleep(0.1)

    def test_an_event_without_a_waiting_room_admits_at_once(self):
        event_id = create_event()
        view = api("POST", f"/api/v1/events/{event_id}/queue", token=new_account("open").access).json()
        self.assertEqual(view["status"], "admitted")
        self.assertTrue(view["admission_token"])
        self.assertTrue(view["admission_expires_at"].endswith("Z"))

    def test_errors(self):
        account = new_account("qerr")
        self.assertProblem(api("POST", "/api/v1/events/987654321989/queue", token=account.access), 404, "not_found")
        self.assertProblem(api("POST", "/api/v1/events/1/queue"), 401, "unauthenticated")
        event_id = create_event(queue={"enabled": True, "admit_per_s": 5, "max_active": 10}, opens_in_s=3600)
        self.assertProblem(api("GET", f"/api/v1/events/{event_id}/queue", token=account.access), 404, "not_found",
                           "never joined")
        self.assertProblem(api("DELETE", f"/api/v1/events/{event_id}/queue", token=account.access), 404, "not_found")


class Socket(QueueTestCase):
    def test_a_plain_get_is_400_and_no_token_is_401(self):
        account = new_account("wsplain")
        event_id = create_event()
        self.assertProblem(api("GET", f"/api/v1/events/{event_id}/queue/ws", token=account.access), 400,
                           "invalid_request")
        with self.assertRaises(websocket.WebSocketBadStatusException) as caught:
            ws_connect(env("EDGE_MAIN"), event_id, None)
        self.assertEqual(caught.exception.status_code, 401)
        with self.assertRaises(websocket.WebSocketBadStatusException) as caught:
            ws_connect(env("EDGE_MAIN"), event_id, "forged.token.here")
        self.assertEqual(caught.exception.status_code, 401)
        with self.assertRaises(websocket.WebSocketBadStatusException) as caught:
            ws_connect(env("EDGE_MAIN"), "987654321990", account.access)
        self.assertEqual(caught.exception.status_code, 404)

    def test_positions_go_down_then_the_admission_then_seat_deltas(self):
        event_id = create_event(queue={"enabled": True, "admit_per_s": 1, "max_active": 100}, rows=1,
                                seats_per_row=10)
        ahead = [new_account(f"ahead{i}") for i in range(4)]
        me = new_account("waiter")
        for account in ahead:
            self.assertStatus(api("POST", f"/api/v1/events/{event_id}/queue", token=account.access), 200)
        ws = ws_connect(env("EDGE_MAIN"), event_id, me.access)
        messages = Messages(ws)
        try:
            got = messages.wait(lambda ms: any(m["type"] == "admitted" for m in ms), 20, "the admission")
            positions = messages.of_type("position")
            self.assertGreaterEqual(len(positions), 3, got)
            values = [m["position"] for _, m in positions]
            self.assertEqual(values, sorted(values, reverse=True), "positions never go up")
            self.assertLess(values[-1], values[0], "positions go down")
            for _, m in positions:
                self.assertEqual(set(m), {"type", "position", "eta_s"})
                self.assertGreaterEqual(m["position"], 1)
            gaps = [b[0] - a[0] for a, b in zip(positions, positions[1:])]
            self.assertLessEqual(max(gaps), 1.2, f"a position at least once a second: gaps {gaps}")
            admitted = [m for m in got if m["type"] == "admitted"][0]
            view = api("GET", f"/api/v1/events/{event_id}/queue", token=me.access).json()
            self.assertEqual((view["status"], view["admission_token"]), ("admitted", admitted["admission_token"]))
            time.sleep(0.3)  # the edge starts watching the event's seats at the admission
            token = admitted["admission_token"]
            if "reservation-svc" in skipped_services():  # the engine itself must accept the pushed token
                engine = Engine()
                try:
                    self.assertEqual(list(engine.hold(event_id, me.user_id, [3], token=token).seats), [3])
                finally:
                    engine.close()
            else:  # the pushed token works for a hold through the edge
                held = api("POST", f"/api/v1/events/{event_id}/holds", body={"seat_ids": ["3"]}, token=me.access,
                           headers={"X-Admission-Token": token, "Idempotency-Key": f"ws-{me.user_id}"})
                self.assertStatus(held, 201)
                self.assertEqual(held.json()["seat_ids"], ["3"])
            deltas = messages.wait(lambda ms: any(m["type"] == "seats" and ["3", "held"] in m["changed"] for m in ms),
                                   5, "a seat delta with seat 3 held")
            after = deltas[[m["type"] for m in deltas].index("admitted") + 1:]
            self.assertNotIn("position", [m["type"] for m in after], "no position after the admission")
            delta = [m for m in deltas if m["type"] == "seats"][-1]
            self.assertEqual(set(delta), {"type", "version", "from_version", "changed"})
            self.assertGreater(delta["version"], delta["from_version"])
            seat_map = api("GET", f"/api/v1/events/{event_id}/seats").json()
            self.assertGreaterEqual(seat_map["version"], delta["version"] - 1)
        finally:
            ws.close()

    def test_token_in_the_authorization_header_and_leaving(self):
        event_id = create_event(queue={"enabled": True, "admit_per_s": 1, "max_active": 10}, opens_in_s=3600)
        me = new_account("leaver")
        ws = ws_connect(env("EDGE_MAIN"), event_id, me.access, in_header=True, header=["X-Request-Id: ws-req-1"])
        self.assertEqual(ws.getheaders().get("x-request-id"), "ws-req-1", "the 101 carries X-Request-Id")
        messages = Messages(ws)
        try:
            first = messages.wait(lambda ms: len(ms) >= 1, 5, "the first message")[0]
            self.assertEqual(first["type"], "position")
            self.assertEqual(first["position"], 1)
            self.assertGreater(first["eta_s"], 3000, "the sale opens in an hour")
            self.assertStatus(api("DELETE", f"/api/v1/events/{event_id}/queue", token=me.access), 204)
            messages.wait(lambda ms: ms[-1]["type"] == "left", 5, "the left message")
            self.assertEqual(messages.wait_closed(5), 1000)
        finally:
            ws.close()


class SocketBounds(QueueTestCase):
    def test_the_websocket_cap_answers_503(self):
        event_id = create_event(queue={"enabled": True, "admit_per_s": 1, "max_active": 10}, opens_in_s=3600)
        base = env("EDGE_WS")
        sockets = [ws_connect(base, event_id, new_account(f"cap{i}").access) for i in range(2)]
        try:
            with self.assertRaises(websocket.WebSocketBadStatusException) as caught:
                ws_connect(base, event_id, new_account("cap3").access)
            self.assertEqual(caught.exception.status_code, 503)
        finally:
            for ws in sockets:
                ws.close()
        deadline = time.monotonic() + 3
        while metric(base, "tiketi_edge_websockets") > 0 and time.monotonic() < deadline:
            time.sleep(0.1)

    def test_a_client_that_answers_pings_stays_and_a_silent_one_is_closed(self):
        event_id = create_event(queue={"enabled": True, "admit_per_s": 1, "max_active": 10}, opens_in_s=3600)
        base = env("EDGE_WS")  # pings every 300 ms, closed after 1200 ms of silence
        lively = ws_connect(base, event_id, new_account("pong").access)
        messages = Messages(lively)  # websocket-client answers pings while it reads
        try:
            time.sleep(2.5)
            self.assertIsNone(messages.close_code, "a client that answers pings stays open")
            self.assertGreaterEqual(len(messages.of_type("position")), 2)
        finally:
            lively.close()
        silent = ws_connect(base, event_id, new_account("silent").access)
        try:
            time.sleep(2.5)  # read nothing, answer nothing
            code = None
            while True:
                opcode, data = silent.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    code, reason = int.from_bytes(data[:2], "big"), data[2:].decode()
                    break
            self.assertEqual(code, 1008)
            self.assertIn("ping", reason)
        finally:
            silent.close()

    def test_a_slow_consumer_is_closed_with_1008(self):
        process, address = start_edge("--ws-send-buffer-bytes", "4096", "--ws-socket-buffer-bytes", "4096",
                                      "--seat-poll-ms", "100")
        engine = Engine()
        try:
            self.assertTrue(wait_up(address, process))
            base = f"http://{address}"
            event_id = create_event(rows=20, seats_per_row=100, max_seats_per_user=100)  # no queue: admitted at once
            ws = ws_connect(base, event_id, new_account("slow").access,
                            sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
            holds, round_number = [], 0
            deadline = time.monotonic() + 30
            while metric(base, "tiketi_edge_ws_slow_closed_total") < 1:  # the client reads nothing meanwhile
                self.assertLess(time.monotonic(), deadline, "a client that reads nothing is closed")
                if not holds:  # 100 seats held in 10 holds (10 seats each, the engine's bound) by 10 users ...
                    for i in range(10):
                        user = 900000 + round_number * 10 + i
                        holds.append((user, engine.hold(event_id, user, range(i * 10, i * 10 + 10)).hold_id))
                else:  # ... then released: each round is a delta of 100 seats, about 1.7 KB
                    for user, hold_id in holds:
                        engine.release(event_id, user, hold_id)
                    holds, round_number = [], round_number + 1
                time.sleep(0.12)
            close_code, reason = None, ""
            ws.sock.settimeout(5)
            while close_code is None:
                opcode, data = ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    close_code, reason = int.from_bytes(data[:2], "big"), data[2:].decode()
            self.assertEqual(close_code, 1008)
            self.assertIn("slow consumer", reason)
        finally:
            engine.close()
            self.assertEqual(stop_edge(process), 0)


class PongsWhileTheEdgeIsLate(QueueTestCase):
    """Regression (issue 5, perf/edge-bench: 3,723-4,640 of ~18,000 sockets closed with 1008 "no answer
    to pings" although the load generator answered every ping at once): the edge judged a socket by
    the time since its last frame alone, so a loop that fell behind (positions queued faster than they
    could be written, pings and pongs waiting seconds behind them) closed healthy sockets at its next
    tick, before they had even been asked. Here an edge that pings every 300 ms and closes after
    1200 ms of silence is stopped (SIGSTOP) twice for 2.5 s, twice its pong timeout, with sockets on
    both loops that answer every ping: none may be closed, and positions go on afterwards."""

    SOCKETS = 40
    STALL_S = 2.5

    # Under TSan the edge is 5-15x slower and this timing test still saw 1 socket of 40 closed
    # in 1 clean run of 3 (2026-11-25): not understood yet, and not a data race (no report).
    @unittest.skipIf("build-tsan" in os.environ.get("EDGE_BIN", ""), "timing test; flaky against a TSan edge")
    def test_sockets_that_answer_pings_survive_a_stalled_edge(self):
        process, address = start_edge("--ws-ping-interval-ms", "300", "--ws-pong-timeout-ms", "1200",
                                      "--ws-position-every-ms", "300", "--rate-user-per-s", "1000",
                                      "--rate-user-burst", "2000")
        try:
            self.assertTrue(wait_up(address, process))
            base = f"http://{address}"
            event_id = create_event(queue={"enabled": True, "admit_per_s": 1, "max_active": 10}, opens_in_s=3600)
            me = new_account("stall")
            sockets = [ws_connect(base, event_id, me.access) for _ in range(self.SOCKETS)]
            readers = [Messages(ws) for ws in sockets]  # websocket-client answers pings while it reads
            try:
                for messages in readers:
                    messages.wait(lambda ms: any(m["type"] == "position" for m in ms), 5, "a first position")
                time.sleep(1.0)  # pings asked and answered
                for _ in range(2):
                    process.send_signal(signal.SIGSTOP)
                    try:
                        time.sleep(self.STALL_S)
                    finally:
                        process.send_signal(signal.SIGCONT)
                    time.sleep(2.0)  # several ping intervals and pong timeouts' worth after the stall
                for messages in readers:
                    self.assertIsNone(messages.close_code,
                                      f"closed {messages.close_code} {messages.close_reason!r} after a stall")
                    seen = len(messages.of_type("position"))
                    messages.wait(lambda ms: sum(m["type"] == "position" for m in ms) > seen, 3,
                                  "a position after the stalls")
                self.assertEqual(metric(base, "tiketi_edge_ws_pong_timeouts_total"), 0)
                self.assertEqual(metric(base, "tiketi_edge_websockets"), self.SOCKETS)
            finally:
                for ws in sockets:
                    ws.close()
        finally:
            process.send_signal(signal.SIGCONT)
            self.assertEqual(stop_edge(process), 0)

    def test_a_socket_that_stops_answering_is_still_closed_after_a_stall(self):
        process, address = start_edge("--ws-ping-interval-ms", "300", "--ws-pong-timeout-ms", "1200")
        try:
            self.assertTrue(wait_up(address, process))
            base = f"http://{address}"
            event_id = create_event(queue={"enabled": True, "admit_per_s": 1, "max_active": 10}, opens_in_s=3600)
            silent = ws_connect(base, event_id, new_account("stallsilent").access)
            try:
                process.send_signal(signal.SIGSTOP)
                try:
                    time.sleep(self.STALL_S)
                finally:
                    process.send_signal(signal.SIGCONT)
                time.sleep(3.0)  # read nothing, so answer nothing
                code = None
                while code is None:  # raw frames: recv_data would answer the pings it meets
                    frame = silent.recv_frame()
                    if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                        code, reason = int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode()
                self.assertEqual((code, reason), (1008, "no answer to pings"))
                self.assertEqual(metric(base, "tiketi_edge_ws_pong_timeouts_total"), 1)
            finally:
                silent.close()
        finally:
            process.send_signal(signal.SIGCONT)
            self.assertEqual(stop_edge(process), 0)


def _redis_publisher(redis_url):
    """A bare RESP connection to the stack's Redis (the suite needs no Redis client library):
    returns publish(channel, message) -> subscribers that got it, and close()."""
    parts = urllib.parse.urlsplit(redis_url)
    conn = socket.create_connection((parts.hostname, parts.port), timeout=5)
    reader = conn.makefile("rb")

    def publish(channel, message):
        args = [b"PUBLISH", channel.encode(), message.encode()]
        conn.sendall(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        reply = reader.readline()
        assert reply.startswith(b":"), reply
        return int(reply[1:])

    def close():
        reader.close()
        conn.close()

    return publish, close


class LoopsWokenTogether(QueueTestCase):
    """Regression (edgecrash, perf/rush's waiting crowd crashed edges in h2o_mem_alloc_recycle and
    then in gRPC): every loop's h2o context was made on the main thread, so the wake-up pipe of
    each loop's multithread queue recycled its read buffer through the main thread's bin, with
    no lock. Loops woken at once (each queue-feed message goes to every loop; completions come
    back on every loop) corrupted that bin: double-used buffers, double frees into the heap.
    Here: sockets of one event on both loops of a 2-loop edge, thousands of feed messages a
    second fanned out to every loop, calls completing on every loop and clients that leave while
    their call is in flight, for a few seconds; the edge must keep serving and exit 0."""

    STORM_S = 6

    def test_feed_messages_and_completions_on_every_loop_at_once(self):
        process, address = start_edge()  # the suite's common flags: --threads 2
        try:
            self.assertTrue(wait_up(address, process))
            base = f"http://{address}"
            event_id = create_event(queue={"enabled": True, "admit_per_s": 1, "max_active": 10}, opens_in_s=3600)
            me = new_account("storm")
            # 16 sockets: the kernel spreads them over both loops (all on one: 1 chance in 32768)
            sockets = [ws_connect(base, event_id, me.access) for _ in range(16)]
            readers = [Messages(ws) for ws in sockets]
            try:
                for messages in readers:
                    messages.wait(lambda ms: any(m["type"] == "position" for m in ms), 5, "a first position")
                self._storm(base, event_id, me.access, process)
                for messages in readers:  # every socket still served: positions keep coming
                    seen = len(messages.of_type("position"))
                    messages.wait(lambda ms: sum(m["type"] == "position" for m in ms) > seen, 3,
                                  "a position after the storm")
                    self.assertIsNone(messages.close_code)
            finally:
                for ws in sockets:
                    ws.close()
            self.assertStatus(request(base, "GET", "/healthz"), 200)
        finally:
            self.assertEqual(stop_edge(process), 0, "the edge survived and exits 0 on SIGTERM")

    def _storm(self, base, event_id, token, process):
        channel = f"tiketi:queue:{event_id}"
        # an admission for a user with no socket: fanned out to every loop, sends nothing to anyone
        message = json.dumps({"type": "admitted", "user_id": "999999999", "rank": 1, "admission_token": "storm",
                              "expires_at": "2030-01-01T00:00:00Z"})
        publish, close = _redis_publisher(env("REDIS_URL"))
        try:
            deadline = time.monotonic() + 10  # the feed subscribes to the event once a loop has a socket of it
            while publish(channel, message) == 0 or metric(base, "tiketi_edge_feed_messages_total") < 1:
                self.assertLess(time.monotonic(), deadline, "the edge's feed subscribes to the event")
                time.sleep(0.05)
        finally:
            close()
        before = metric(base, "tiketi_edge_feed_messages_total")
        until = time.monotonic() + self.STORM_S
        errors = []

        def publisher():
            publish_one, close_one = _redis_publisher(env("REDIS_URL"))
            try:
                while time.monotonic() < until:
                    publish_one(channel, message)
            except Exception as err:  # noqa: BLE001 (reported below)
                errors.append(f"publisher: {err!r}")
            finally:
                close_one()

        def caller(seed):
            parts = urllib.parse.urlsplit(base)
            raw = (f"GET /api/v1/events/{event_id}/queue HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n").encode()
            n = seed
            while time.monotonic() < until:
                n += 1
                try:
                    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
                        conn.sendall(raw)
                        if n % 2:  # gone while its Status call is in flight (RST)
                            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        else:
                            conn.recv(4096)
                except OSError as err:
                    if process.poll() is not None:
                        errors.append(f"caller: {err!r}")
                        return

        threads = [threading.Thread(target=publisher) for _ in range(2)] + \
                  [threading.Thread(target=caller, args=(i * 1000,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.STORM_S + 10)
        self.assertIsNone(process.poll(), f"the edge died during the storm (exit {process.poll()}): {errors}")
        self.assertEqual(errors, [])
        fanned = metric(base, "tiketi_edge_feed_messages_total") - before
        self.assertGreater(fanned, 1000, "the storm reached the loops")
