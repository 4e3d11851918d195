"""test_limits.py — the bounds of the "limits" edge: body size (413), a slow request head cut
off, idle keep-alive closed, per-address and per-user token buckets (429 + Retry-After), the
connection cap."""
import json
import socket
import time
import urllib.parse

from harness import EdgeTestCase, env, new_account, request, skip_unless


def limits():
    return env("EDGE_LIMITS")


def address():
    parts = urllib.parse.urlsplit(limits())
    return parts.hostname, parts.port


class BodyAndTimeouts(EdgeTestCase):
    def test_a_body_over_the_limit_is_413(self):
        time.sleep(1.1)  # a full per-address bucket
        body = json.dumps({"email": "x@y.z", "password": "p" * 4000}).encode()
        reply = request(limits(), "POST", "/api/v1/auth/login", raw=body, headers={"X-Request-Id": "too-big-1"})
        self.assertProblem(reply, 413, "payload_too_large")
        self.assertEqual(reply.header("x-request-id"), "too-big-1")

    def test_a_slow_request_head_is_cut_off(self):
        started = time.monotonic()
        with socket.create_connection(address(), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
            data = sock.recv(4096)
        waited = time.monotonic() - started
        self.assertEqual(data, b"", "the server closed the connection")
        self.assertGreater(waited, 0.8)
        self.assertLess(waited, 3.0, "--header-timeout-ms 1000")

    def test_a_trickled_head_is_cut_off_too(self):
        started = time.monotonic()
        with socket.create_connection(address(), timeout=5) as sock:
            try:
                for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.05)
                closed = sock.recv(4096) == b""
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        self.assertTrue(closed)
        self.assertLess(time.monotonic() - started, 3.5, "sending a byte now and then does not keep it open")

    def test_an_idle_keep_alive_connection_is_closed(self):
        with socket.create_connection(address(), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = sock.recv(4096)
            self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
            started = time.monotonic()
            self.assertEqual(sock.recv(4096), b"")
            self.assertLess(time.monotonic() - started, 3.0)


class RateLimits(EdgeTestCase):
    def test_per_user_bucket_answers_429_with_retry_after(self):
        skip_unless("auth-svc")
        account = new_account("ratelimited")
        time.sleep(1.1)
        replies = [request(limits(), "GET", "/api/v1/auth/me", token=account.access) for _ in range(6)]
        statuses = [r.status for r in replies]
        self.assertEqual(statuses[:3], [200, 200, 200], "a burst of 3")
        limited = [r for r in replies if r.status == 429]
        self.assertTrue(limited, statuses)
        problem = self.assertProblem(limited[0], 429, "rate_limited")
        retry_after = int(limited[0].header("retry-after"))
        self.assertGreaterEqual(retry_after, 1)
        self.assertIn("retry", problem["detail"])
        time.sleep(retry_after)
        self.assertStatus(request(limits(), "GET", "/api/v1/auth/me", token=account.access), 200, "refilled")

    def test_per_address_bucket_answers_429_with_retry_after(self):
        time.sleep(1.1)
        replies = [request(limits(), "GET", "/api/v1/no-such-route") for _ in range(30)]  # no service call: fast
        statuses = [r.status for r in replies]
        self.assertNotIn(429, statuses[:15], statuses)
        limited = [r for r in replies if r.status == 429]
        self.assertGreaterEqual(len(limited), 5, statuses)
        self.assertProblem(limited[0], 429, "rate_limited")
        self.assertGreaterEqual(int(limited[0].header("retry-after")), 1)
        self.assertStatus(request(limits(), "GET", "/healthz"), 200, "operations routes are not limited")
        time.sleep(1.1)


class ConnectionCap(EdgeTestCase):
    def test_connections_past_the_cap_get_503_and_close(self):
        time.sleep(1.2)  # idle connections of other tests are gone (--header-timeout-ms 1000)
        held = [socket.create_connection(address(), timeout=5) for _ in range(6)]
        try:
            time.sleep(0.1)
            with socket.create_connection(address(), timeout=5) as extra:
                data = b""
                while True:
                    chunk = extra.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 503"), data)
            self.assertIn(b"application/problem+json", head)
            self.assertEqual(json.loads(body)["code"], "too_many_connections")
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        self.assertStatus(request(limits(), "GET", "/healthz"), 200, "room again once they closed")
