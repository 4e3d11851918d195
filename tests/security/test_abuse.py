"""test_abuse.py — attacks on the "guarded" edge (--body-max-bytes 8192, --header-timeout-ms 1500,
--rate-ip-per-s 40 with a burst of 40, --connections-max 300) from 127.0.0.2, while a normal
client on 127.0.0.3 asks for the events list ten times a second. Each attack must be cut off
(413, a closed connection, 429) and the normal client must get every answer, 200, promptly.

Not covered, by design (docs/security.md): a connection flood larger than --connections-max
from many addresses (the cap is global; that is for the load balancer in front), and a
distributed flood from more addresses than the per-address buckets can tell apart."""
import socket
import threading
import time
import urllib.parse
import uuid

from common import SecurityTestCase, api, env, new_account, request

ATTACKER, CLIENT = "127.0.0.2", "127.0.0.3"
HEADER_TIMEOUT_S = 1.5


def guarded():
    return env("EDGE_GUARDED")


def address():
    parts = urllib.parse.urlsplit(guarded())
    return parts.hostname, parts.port


def connect(source=ATTACKER, timeout=10):
    return socket.create_connection(address(), timeout=timeout, source_address=(source, 0))


class NormalClient:
    """Asks GET /api/v1/events every 100 ms from CLIENT while the attack runs."""

    def __init__(self):
        self.results, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status = request(guarded(), "GET", "/api/v1/events?limit=5", source=CLIENT, timeout=10).status
            except OSError as err:
                status = repr(err)
            self.results.append((status, time.monotonic() - started))
            self.stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(15)


class AbuseTestCase(SecurityTestCase):
    def setUp(self):
        time.sleep(1.1)  # the attacker's bucket refilled from the previous test

    def assertServed(self, client, what):
        statuses = [s for s, _ in client.results]
        slowest = max((t for _, t in client.results), default=0)
        self.assertGreaterEqual(len(statuses), 10, f"{what}: the normal client made too few requests: {statuses}")
        self.assertEqual(set(statuses), {200}, f"{what}: the normal client's answers: {statuses}")
        self.assertLess(slowest, 2.0, f"{what}: the normal client's slowest answer took {slowest:.2f}s")


def read_status(sock):
    """The status of the answer on sock, or None when the server closed or reset it first."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else None


class Attacks(AbuseTestCase):
    def test_slow_request_heads_are_cut_off(self):
        """Slowloris: 60 connections trickling a request head, a byte every 300 ms."""
        head = b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        socks = [connect() for _ in range(60)]
        closed_at = [None] * len(socks)
        started = time.monotonic()
        with NormalClient() as client:
            for i in range(len(head)):
                for n, sock in enumerate(socks):
                    if closed_at[n] is not None:
                        continue
                    try:
                        sock.sendall(head[i:i + 1])
                        sock.setblocking(False)
                        if sock.recv(4096) == b"":
                            closed_at[n] = time.monotonic() - started
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed_at[n] = time.monotonic() - started
                    finally:
                        sock.setblocking(True)
                if all(c is not None for c in closed_at) or time.monotonic() - started > 8:
                    break
                time.sleep(0.3)
        for sock in socks:
            sock.close()
        self.assertTrue(all(c is not None for c in closed_at), f"still open after 8 s: {closed_at}")
        self.assertLess(max(closed_at), HEADER_TIMEOUT_S + 1.5, f"closed at {closed_at}")
        self.assertServed(client, "slowloris")

    def test_idle_connections_are_cut_off(self):
        """150 connections that never send a byte (below the cap of 300)."""
        socks = [connect() for _ in range(150)]
        started = time.monotonic()
        with NormalClient() as client:
            time.sleep(HEADER_TIMEOUT_S + 1.0)
        open_after = 0
        for sock in socks:
            sock.settimeout(0.2)
            try:
                if sock.recv(1) != b"":
                    open_after += 1
            except socket.timeout:
                open_after += 1
            except OSError:
                pass
            sock.close()
        self.assertEqual(open_after, 0, f"open after {time.monotonic() - started:.1f}s")
        self.assertServed(client, "idle connections")

    def _oversized(self, kind):
        with connect() as sock:
            if kind == "declared":  # a huge Content-Length, then nothing: refused without waiting for it
                sock.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 52428800\r\n\r\n{")
            elif kind == "sent":
                body = b'{"email":"a@b.c","password":"' + b"p" * 1_000_000 + b'"}'
                sock.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
                try:
                    sock.sendall(body)
                except OSError:
                    return None  # cut off while sending: refused, and the bytes never stored
            else:  # chunked: no length announced, the limit must still hold
                sock.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                try:
                    for _ in range(200):
                        sock.sendall(b"1388\r\n" + b"x" * 5000 + b"\r\n")
                except OSError:
                    return None
            return read_status(sock)

    def test_oversized_bodies_are_refused(self):
        with NormalClient() as client:
            seen = {}
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                for kind in ("declared", "sent", "chunked"):
                    started = time.monotonic()
                    status = self._oversized(kind)
                    seen.setdefault(kind, []).append((status, round(time.monotonic() - started, 2)))
        for kind, results in seen.items():
            for status, took in results:
                # None: the server closed the connection before the body was all sent, also a refusal
                self.assertIn(status, (413, 429, None), f"{kind}: {results}")
                self.assertLess(took, 3.0, f"{kind}: refused promptly: {results}")
        self.assertIn(413, [s for s, _ in seen["declared"]], f"a declared oversize is answered 413: {seen}")
        self.assertServed(client, "oversized bodies")

    def test_a_request_flood_gets_429_and_others_are_served(self):
        counts, lock, stop = {}, threading.Lock(), threading.Event()

        def flood():
            while not stop.is_set():
                try:
                    status = request(guarded(), "GET", "/api/v1/events?limit=1", source=ATTACKER, timeout=10).status
                except OSError:
                    status = "error"
                with lock:
                    counts[status] = counts.get(status, 0) + 1

        threads = [threading.Thread(target=flood, daemon=True) for _ in range(6)]
        started = time.monotonic()
        with NormalClient() as client:
            for t in threads:
                t.start()
            time.sleep(3)
            stop.set()
            for t in threads:
                t.join(15)
        took = time.monotonic() - started
        self.assertGreater(counts.get(429, 0), counts.get(200, 0), f"mostly refused: {counts}")
        self.assertLessEqual(counts.get(200, 0), 40 + 40 * took + 10, f"no more than the bucket allows: {counts}")
        self.assertServed(client, f"request flood {counts}")
        limited = request(guarded(), "GET", "/api/v1/events", source=ATTACKER)
        if limited.status == 429:
            self.assertGreaterEqual(int(limited.header("retry-after")), 1)

    def test_password_guessing_is_locked_out(self):
        """auth-svc's throttling: 5 failures lock the address and the e-mail (--login-max-failures)."""
        account = new_account("guessed")
        statuses = []
        for i in range(8):
            reply = request(env("EDGE_MAIN"), "POST", "/api/v1/auth/login", source="127.0.0.4",
                            body={"email": account.email, "password": f"guess-{i}-{uuid.uuid4().hex[:6]}"})
            statuses.append(reply.status)
        self.assertEqual(statuses[:5], [401] * 5, statuses)
        self.assertEqual(set(statuses[5:]), {429}, statuses)
        right = request(env("EDGE_MAIN"), "POST", "/api/v1/auth/login", source="127.0.0.4",
                        body={"email": account.email, "password": account.password})
        self.assertEqual(right.status, 429, f"the right password is not even checked while locked: {right}")
        self.assertNotIn(b"access_token", right.body)
        self.assertStatus(api("GET", "/api/v1/auth/me", token=account.access), 200, "tokens already issued still work")
