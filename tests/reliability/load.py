"""load.py — a steady purchase load through the edge's public API (API.md), stdlib only.

A few client threads, each a customer who buys again and again: sign up and log in
(once, or again when the per-user seat cap is reached), join the event's waiting room
(the admission token), hold 1-2 best-available seats, then pay with a test card of the
gateway simulator: mostly tok_approve, some tok_decline, and some holds are abandoned
(released, or left to expire). Like a real client it retries what it may retry with
the same Idempotency-Key (a hold or a payment whose answer it did not get) until the
hold's lifetime is over.

Every purchase attempt becomes one record (Purchase). What the client *saw* is what the
audit holds the system to: a 200 "confirmed" is an acknowledged sale."""
import http.client
import json
import random
import threading
import time
import uuid

CARD_APPROVE, CARD_DECLINE = "tok_approve", "tok_decline"
RETRYABLE = {0, 500, 502, 503, 504}


class Api:
    """One keep-alive HTTP/1.1 connection to the edge; a transport error is status 0."""

    def __init__(self, host, port, timeout=35.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def call(self, method, path, body=None, token=None, headers=None, timeout=None):
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        for attempt in range(2):  # a stale keep-alive connection gets one fresh try
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
                self.conn.request(method, path, body=data, headers=hdrs)
                response = self.conn.getresponse()
                text = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                try:
                    parsed = json.loads(text) if text else None
                except ValueError:
                    parsed = {"detail": text[:200].decode(errors="replace")}
                return response.status, parsed, response
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                self.close()
                if attempt == 0 and method == "GET":
                    continue
                return 0, {"code": "transport", "detail": repr(error)}, None
            except (OSError, http.client.HTTPException) as error:
                self.close()
                return 0, {"code": "transport", "detail": repr(error)}, None
        return 0, {"code": "transport"}, None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None


def code_of(body):
    return body.get("code", "") if isinstance(body, dict) else ""


class Purchase:
    """One attempt to buy: the hold, then the payment (or an abandoned hold)."""
    __slots__ = ("client", "user", "event", "t_start", "hold_status", "hold_code", "reservation", "seats", "amount",
                 "plan", "pay_status", "pay_code", "pay_attempts", "t_ack", "t_end", "outcome", "token")

    def __init__(self, client, user, event, token):
        self.client, self.user, self.event, self.token = client, user, event, token
        self.t_start = time.monotonic()
        self.hold_status = self.pay_status = None
        self.hold_code = self.pay_code = ""
        self.reservation, self.seats, self.amount, self.plan = None, [], 0, ""
        self.pay_attempts = 0
        self.t_ack = self.t_end = None
        self.outcome = "?"

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__ if k != "token"}


class User:
    def __init__(self, email, password, user_id=None, token=None):
        self.email, self.password, self.user_id, self.token = email, password, user_id, token
        self.admission = {}  # event -> token


class Load:
    """The load of one scenario: `clients` threads buying seats of `event` until stop()."""

    def __init__(self, edge_url, event, hold_ttl_s, clients=4, seed=None, think_s=0.05, log=print,
                 decline_share=0.1, abandon_share=0.06):
        host_port = edge_url.split("//", 1)[1]
        self.host, self.port = host_port.split(":")[0], int(host_port.split(":")[1])
        self.event, self.hold_ttl_s, self.clients, self.think_s, self.log = event, hold_ttl_s, clients, think_s, log
        self.decline_share, self.abandon_share = decline_share, abandon_share
        self.random = random.Random(seed)
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.purchases = []
        self.users = []  # every user this load made (the audit reads their reservations)
        self.threads = []
        self.errors = {}  # "step status code" -> count, for the report

    # ------------------------------------------------------------------------------------------
    def start(self):
        for i in range(self.clients):
            seed = self.random.randrange(1 << 30)
            t = threading.Thread(target=self._client, args=(i, random.Random(seed)), name=f"client-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self, timeout_s=None):
        """Asks the clients to stop and waits for their purchases in flight to end (each ends by
        its hold's lifetime at the latest)."""
        self.stop_flag.set()
        limit = time.monotonic() + (timeout_s if timeout_s is not None else self.hold_ttl_s + 45)
        for t in self.threads:
            t.join(max(0.1, limit - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]

    def snapshot(self):
        with self.lock:
            return list(self.purchases)

    def acknowledged(self):
        return [p for p in self.snapshot() if p.outcome == "confirmed"]

    def _count(self, what):
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1

    # ------------------------------------------------------------------------------------------
    def _client(self, index, rng):
        api = Api(self.host, self.port)
        user = None
        while not self.stop_flag.is_set():
            try:
                if user is None:
                    user = self._new_user(api, index, rng)
                    if user is None:
                        self._pause(0.5)
                        continue
                    with self.lock:
                        self.users.append(user)
                result = self._purchase(api, index, user, rng)
                if result == "new_user":
                    user = None
                elif result == "sold_out":
                    self._pause(1.0)
            except Exception as error:  # a bug in the driver must not look like a system failure
                self._count(f"driver exception {error!r}"[:120])
                self._pause(0.5)
            self._pause(self.think_s * (0.5 + rng.random()))
        api.close()

    def _pause(self, seconds):
        self.stop_flag.wait(seconds)

    def _new_user(self, api, index, rng):
        email = f"rel-{index}-{uuid.uuid4().hex[:12]}@example.com"
        password = "reliability pass " + uuid.uuid4().hex[:8]
        st, body, _ = api.call("POST", "/api/v1/auth/signup", {"email": email, "password": password, "name": "R"})
        if st != 201:
            self._count(f"signup {st} {code_of(body)}")
            return None
        user = User(email, password, body.get("user_id"))
        for _ in range(20):
            st, body, _ = api.call("POST", "/api/v1/auth/login", {"email": email, "password": password})
            if st == 200:
                user.token = body["access_token"]
                return user
            self._count(f"login {st} {code_of(body)}")
            self._pause(0.5)
            if self.stop_flag.is_set():
                break
        return None

    def _admission(self, api, user, fresh=False):
        if not fresh and self.event in user.admission:
            return user.admission[self.event]
        deadline = time.monotonic() + 20
        st, body, _ = api.call("POST", f"/api/v1/events/{self.event}/queue", token=user.token)
        while time.monotonic() < deadline and not self.stop_flag.is_set():
            if st == 200 and body.get("status") == "admitted" and body.get("admission_token"):
                user.admission[self.event] = body["admission_token"]
                return body["admission_token"]
            if st != 200:
                self._count(f"queue {st} {code_of(body)}")
            self._pause(0.3)
            st, body, _ = api.call("GET", f"/api/v1/events/{self.event}/queue", token=user.token)
            if st == 404:
                st, body, _ = api.call("POST", f"/api/v1/events/{self.event}/queue", token=user.token)
        return None

    def _purchase(self, api, index, user, rng):
        admission = self._admission(api, user)
        if admission is None:
            return "retry"
        p = Purchase(index, user.email, self.event, user.token)
        result = self._hold(api, user, p, rng, admission)
        if p.reservation is not None:
            self._pay_or_abandon(api, user, p, rng)
        p.t_end = time.monotonic()
        if p.hold_status is not None or p.reservation is not None:
            with self.lock:
                self.purchases.append(p)
        return result

    def _hold(self, api, user, p, rng, admission):
        key = str(uuid.uuid4())
        count = 1 if rng.random() < 0.5 else 2
        deadline = time.monotonic() + self.hold_ttl_s
        while True:
            st, body, resp = api.call("POST", f"/api/v1/events/{self.event}/holds", {"count": count}, user.token,
                                      {"X-Admission-Token": admission, "Idempotency-Key": key})
            p.hold_status, p.hold_code = st, code_of(body)
            if st == 201:
                p.reservation, p.seats, p.amount = body["reservation_id"], body["seat_ids"], body.get("amount", 0)
                return "ok"
            if st == 403 and p.hold_code == "not_admitted":
                admission = self._admission(api, user, fresh=True)
                if admission is None:
                    p.outcome = "hold_failed"
                    return "retry"
                key = str(uuid.uuid4())  # refused before the engine: nothing to replay
            elif st == 422 and p.hold_code == "seat_cap_reached":
                p.outcome = "hold_failed"
                return "new_user"
            elif st == 409 and p.hold_code in ("sold_out", "seat_unavailable"):
                p.outcome = "hold_failed"
                return "sold_out" if p.hold_code == "sold_out" else "retry"
            elif st == 429:
                self._pause(float((resp.getheader("Retry-After") if resp else None) or 1))
            elif st not in RETRYABLE:
                self._count(f"hold {st} {p.hold_code}")
                p.outcome = "hold_failed"
                return "retry"
            else:
                self._count(f"hold {st} {p.hold_code}")
                self._pause(0.2 + 0.2 * rng.random())
            if time.monotonic() > deadline or self.stop_flag.is_set():
                p.outcome = "hold_failed"  # the hold may exist in the engine: it expires
                return "retry"

    def _pay_or_abandon(self, api, user, p, rng):
        r = rng.random()
        if r < self.abandon_share:
            p.plan = "abandon"
            if r < self.abandon_share / 2:
                st, body, _ = api.call("DELETE", f"/api/v1/reservations/{p.reservation}", token=user.token)
                p.outcome = "released" if st == 204 else "abandoned"
            else:
                p.outcome = "abandoned"  # left to expire
            return
        card = CARD_DECLINE if r < self.abandon_share + self.decline_share else CARD_APPROVE
        p.plan = card
        key = str(uuid.uuid4())
        deadline = p.t_start + self.hold_ttl_s + 3
        while True:
            p.pay_attempts += 1
            st, body, resp = api.call("POST", f"/api/v1/reservations/{p.reservation}/payment",
                                      {"method": "card", "card_token": card}, user.token, {"Idempotency-Key": key})
            p.pay_status, p.pay_code = st, code_of(body)
            if st == 200 and isinstance(body, dict) and body.get("status") == "confirmed":
                p.t_ack = time.monotonic()
                p.outcome = "confirmed"
                return
            if st == 402:
                p.outcome = "declined"
                return
            if st == 410:
                p.outcome = "expired"
                return
            if st == 429:
                self._pause(float((resp.getheader("Retry-After") if resp else None) or 1))
            elif st in RETRYABLE:
                self._count(f"pay {st} {p.pay_code}")
                self._pause(0.3 + 0.3 * rng.random())
            else:
                self._count(f"pay {st} {p.pay_code}")
                p.outcome = f"pay_{st}"
                return
            if time.monotonic() > deadline:
                p.outcome = "unknown"  # the audit finds out how it ended
                return
