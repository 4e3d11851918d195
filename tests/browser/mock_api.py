#!/usr/bin/env python3
"""mock_api.py — a tiny stand-in for the TIKETI edge, for developing and testing the web UI.

Standard library only. Serves edge/ui/ at / and fakes /api/v1 per /work/shared/API.md (the
public contract): auth with rotating refresh tokens, events and seat maps (with ETag / 304),
the waiting room (no WebSocket: a queued user moves one place closer on every GET /queue,
which is exactly what the UI's polling fallback does), holds with idempotency keys,
per-user caps and best-available, payments with the gateway simulator's test cards, my
reservations, cancel and release, and the admin event creation.

Money is integer cents (`price`, `amount`), as the engine keeps it (price_cents).

Hooks for tests (not part of the API, mock only), all POST with a JSON body:
  /__mock/expire_access_tokens   {}                            every access token now gives 401
  /__mock/stale_seats            {event_id, seat_ids, status}  change seats WITHOUT bumping the
                                                                version (a client's copy goes stale)
  /__mock/rate_limit_next        {path_contains, retry_after}  the next matching request gets 429

Run: python3 tests/browser/mock_api.py [--port 8080] [--ui edge/ui]
It prints "mock_api listening on http://127.0.0.1:PORT" once it serves.
"""

import argparse
import json
import mimetypes
import os
import posixpath
import re
import secrets
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

ACCESS_TTL_S = 900
ADMIN_EMAIL = os.environ.get("TIKETI_ADMIN_EMAIL", "admin@tiketi.local")
ADMIN_PASSWORD = os.environ.get("TIKETI_ADMIN_PASSWORD", "tiketi-admin")


def now():
    return time.time()


def rfc3339(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text):
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Problem(Exception):
    def __init__(self, status, code, detail, **extra):
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


TITLES = {400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
          404: "Not Found", 409: "Conflict", 410: "Gone", 422: "Unprocessable Content",
          429: "Too Many Requests", 503: "Service Unavailable"}


class Event:
    def __init__(self, event_id, spec):
        self.event_id = event_id
        self.name = spec["name"]
        self.venue = spec["venue"]
        self.starts_at = spec["starts_at"]
        self.sale_opens_at = spec["sale_opens_at"]
        self.sections = spec["sections"]
        q = spec.get("queue") or {}
        self.queue = {"enabled": bool(q.get("enabled")), "admit_per_s": int(q.get("admit_per_s") or 0),
                      "max_active": int(q.get("max_active") or 0)}
        self.hold_ttl_s = int(spec.get("hold_ttl_s") or 300)
        self.max_seats_per_user = int(spec.get("max_seats_per_user") or 10)
        self.version = 1
        self.seats = []  # dicts without status; status in self.status
        for sec in self.sections:
            for row in range(1, int(sec["rows"]) + 1):
                for number in range(1, int(sec["seats_per_row"]) + 1):
                    seat_id = str(len(self.seats))
                    self.seats.append({"seat_id": seat_id, "section": sec["name"], "row": row, "number": number,
                                       "label": f'{sec["name"]}-{row}-{number}', "price": int(sec["price"])})
        self.status = ["free"] * len(self.seats)
        self.cache = None  # (version, bytes)
        self.queue_users = {}  # user_id -> {"ticket", "position", "status"}
        self.admissions = {}  # token -> (user_id, expires_ts)
        self.next_ticket = 1

    def status_word(self):
        opens = parse_time(self.sale_opens_at)
        return "scheduled" if opens and opens > now() else "on_sale"

    def summary(self):
        return {"event_id": self.event_id, "name": self.name, "venue": self.venue, "starts_at": self.starts_at,
                "sale_opens_at": self.sale_opens_at, "status": self.status_word(), "capacity": len(self.seats),
                "available": self.status.count("free")}

    def detail(self):
        d = self.summary()
        d.update({"sections": [{"name": s["name"], "price": int(s["price"]), "rows": int(s["rows"]),
                                "seats_per_row": int(s["seats_per_row"])} for s in self.sections],
                  "queue": self.queue, "hold_ttl_s": self.hold_ttl_s,
                  "max_seats_per_user": self.max_seats_per_user})
        return d

    def seat_map_bytes(self):
        if self.cache and self.cache[0] == self.version:
            return self.cache[1]
        parts = []
        for seat, status in zip(self.seats, self.status):
            parts.append('{"seat_id":"%s","section":%s,"row":%d,"number":%d,"label":%s,"price":%d,"status":"%s"}' % (
                seat["seat_id"], json.dumps(seat["section"]), seat["row"], seat["number"],
                json.dumps(seat["label"]), seat["price"], status))
        body = ('{"version":%d,"seats":[%s]}' % (self.version, ",".join(parts))).encode()
        self.cache = (self.version, body)
        return body


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.users = {}        # email -> user
        self.users_by_id = {}
        self.access = {}       # token -> (user_id, expires_ts)
        self.refresh = {}      # token -> user_id
        self.events = {}
        self.event_order = []
        self.reservations = {}
        self.idempotency = {}  # (user_id, key) -> (status, body, headers)
        self.rate_limit_next = []
        self.next_event = 1000
        self.add_user(ADMIN_EMAIL, ADMIN_PASSWORD, "Admin", role="admin")
        self.seed()

    def add_user(self, email, password, name, role="user"):
        user = {"user_id": str(len(self.users_by_id) + 1), "email": email, "name": name, "role": role,
                "password": password}
        self.users[email] = user
        self.users_by_id[user["user_id"]] = user
        return user

    def add_event(self, spec):
        self.next_event += 1
        ev = Event(str(self.next_event), spec)
        self.events[ev.event_id] = ev
        self.event_order.append(ev.event_id)
        return ev

    def seed(self):
        day = 86400
        t = now()
        small = self.add_event({
            "name": "Moonlight Sonatas: a chamber evening", "venue": "Small Hall",
            "starts_at": rfc3339(t + 20 * day), "sale_opens_at": rfc3339(t - day),
            "sections": [{"name": "Stalls", "rows": 8, "seats_per_row": 16, "price": 4500},
                         {"name": "Balcony", "rows": 4, "seats_per_row": 12, "price": 2500}],
            "queue": {"enabled": False}, "hold_ttl_s": 300, "max_seats_per_user": 6})
        for i in (3, 4, 5, 20, 21, 40, 41, 42, 43, 90):
            small.status[i] = "sold"
        small.status[60] = small.status[61] = "held"
        club = self.add_event({
            "name": "Late Laughs Comedy Club", "venue": "The Cellar",
            "starts_at": rfc3339(t + 9 * day), "sale_opens_at": rfc3339(t - day),
            "sections": [{"name": "Floor", "rows": 6, "seats_per_row": 20, "price": 1800}],
            "queue": {"enabled": True, "admit_per_s": 2, "max_active": 50}, "hold_ttl_s": 300, "max_seats_per_user": 4})
        club.status[0] = "sold"
        stadium = self.add_event({
            "name": "Cup Final", "venue": "National Stadium",
            "starts_at": rfc3339(t + 40 * day), "sale_opens_at": rfc3339(t - day),
            "sections": [{"name": f"S{k + 1:02d}", "rows": 100, "seats_per_row": 100, "price": 6000 + 500 * (k % 4)}
                         for k in range(20)],
            "queue": {"enabled": True, "admit_per_s": 500, "max_active": 5000}, "hold_ttl_s": 600, "max_seats_per_user": 8})
        for i in range(0, len(stadium.status), 7):
            stadium.status[i] = "sold"
        self.add_event({
            "name": "Autumn Jazz Night", "venue": "Riverside Club",
            "starts_at": rfc3339(t + 60 * day), "sale_opens_at": rfc3339(t + 30 * day),
            "sections": [{"name": "Tables", "rows": 5, "seats_per_row": 8, "price": 3200}],
            "queue": {"enabled": False}, "hold_ttl_s": 300, "max_seats_per_user": 6})

    # ---- housekeeping ------------------------------------------------------------------

    def expire_holds(self):
        t = now()
        for r in self.reservations.values():
            if r["status"] == "pending" and r["expires_ts"] <= t:
                r["status"] = "expired"
                self.set_seats(self.events[r["event_id"]], r["seat_ids"], "free")

    def set_seats(self, ev, seat_ids, status, bump=True):
        for sid in seat_ids:
            ev.status[int(sid)] = status
        if bump:
            ev.version += 1
        ev.cache = None


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tiketi-mock/1"
    ui_root = None

    def log_message(self, fmt, *args):
        if os.environ.get("MOCK_API_VERBOSE"):
            sys.stderr.write("mock_api: " + fmt % args + "\n")

    # ---- plumbing --------------------------------------------------------------------

    def send(self, status, body=b"", content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("X-Request-Id", self.headers.get("X-Request-Id") or uuid.uuid4().hex)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def problem(self, p):
        body = {"type": f"https://tiketi.dev/problems/{p.code}", "title": TITLES.get(p.status, "Error"),
                "status": p.status, "detail": p.detail, "code": p.code}
        body.update(p.extra.get("body", {}))
        self.send(p.status, body, "application/problem+json", p.extra.get("headers"))

    def json_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 20:
            raise Problem(400, "invalid_request", "body too large")
        raw = self.rfile.read(n) if n else b""
        self._body_read = True
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise Problem(400, "invalid_json", "the body is not JSON")
        if not isinstance(data, dict):
            raise Problem(400, "invalid_request", "the body must be a JSON object")
        return data

    def user(self):
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        entry = STATE.access.get(token)
        if not entry or entry[1] < now():
            raise Problem(401, "invalid_token", "missing, invalid or expired access token")
        return STATE.users_by_id[entry[0]]

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_HEAD(self):
        self.dispatch("GET")

    def dispatch(self, method):
        self._body_read = False
        url = urlsplit(self.path)
        path = url.path
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if path.startswith("/api/v1/") or path.startswith("/__mock/"):
                for (m, pattern, fn) in ROUTES:
                    match = pattern.fullmatch(path)
                    if match and m == method:
                        self.check_rate_limit(path)
                        with STATE.lock:
                            STATE.expire_holds()
                        fn(self, query, *[unquote(g) for g in match.groups()])
                        return
                if path.endswith("/queue/ws"):
                    raise Problem(404, "not_found", "this mock has no WebSocket; the UI polls GET /queue instead")
                raise Problem(404, "not_found", f"no route {method} {path}")
            if method != "GET":
                raise Problem(404, "not_found", "not found")
            if path in ("/healthz", "/readyz"):
                self.send(200, {"status": "ok"})
                return
            self.static(path)
        except Problem as p:
            self.discard_body()
            self.problem(p)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def discard_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n and not getattr(self, "_body_read", False):
            try:
                self.rfile.read(n)
            except OSError:
                pass

    def check_rate_limit(self, path):
        with STATE.lock:
            for rule in STATE.rate_limit_next:
                if rule["path_contains"] in path and not path.startswith("/__mock/"):
                    STATE.rate_limit_next.remove(rule)
                    raise Problem(429, "rate_limited", "too many requests",
                                  headers={"Retry-After": str(rule["retry_after"])})

    def static(self, path):
        rel = posixpath.normpath(unquote(path)).lstrip("/")
        if rel in ("", "."):
            rel = "index.html"
        full = os.path.realpath(os.path.join(self.ui_root, rel))
        if not full.startswith(os.path.realpath(self.ui_root) + os.sep) or not os.path.isfile(full):
            raise Problem(404, "not_found", "no such file")
        ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
        if full.endswith(".js"):
            ctype = "text/javascript"
        with open(full, "rb") as f:
            data = f.read()
        self.send(200, data, ctype + ("; charset=utf-8" if ctype.startswith("text/") else ""),
                  {"Cache-Control": "no-cache"})

    # ---- auth ------------------------------------------------------------------------

    def signup(self, q):
        b = self.json_body()
        email, password, name = str(b.get("email", "")).strip().lower(), str(b.get("password", "")), str(b.get("name", "")).strip()
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", email) or len(email) > 254:
            raise Problem(400, "invalid_request", "email is not a valid address")
        if not 8 <= len(password) <= 128:
            raise Problem(400, "invalid_request", "password must be 8 to 128 characters")
        if not 1 <= len(name) <= 200:
            raise Problem(400, "invalid_request", "name must be 1 to 200 characters")
        with STATE.lock:
            if email in STATE.users:
                raise Problem(409, "email_taken", "an account with this email exists")
            user = STATE.add_user(email, password, name)
        self.send(201, {"user_id": user["user_id"]})

    def tokens_for(self, user):
        access, refresh = "acc_" + secrets.token_urlsafe(18), "ref_" + secrets.token_urlsafe(18)
        STATE.access[access] = (user["user_id"], now() + ACCESS_TTL_S)
        STATE.refresh[refresh] = user["user_id"]
        return {"access_token": access, "refresh_token": refresh, "expires_in": ACCESS_TTL_S}

    def login(self, q):
        b = self.json_body()
        with STATE.lock:
            user = STATE.users.get(str(b.get("email", "")).strip().lower())
            if not user or user["password"] != b.get("password"):
                raise Problem(401, "invalid_credentials", "wrong email or password")
            body = self.tokens_for(user)
        self.send(200, body)

    def refresh(self, q):
        b = self.json_body()
        with STATE.lock:
            user_id = STATE.refresh.pop(str(b.get("refresh_token", "")), None)
            if not user_id:
                raise Problem(401, "invalid_refresh_token", "unknown or used refresh token")
            body = self.tokens_for(STATE.users_by_id[user_id])
        self.send(200, body)

    def logout(self, q):
        b = self.json_body()
        with STATE.lock:
            STATE.refresh.pop(str(b.get("refresh_token", "")), None)
        self.send(204)

    def me(self, q):
        with STATE.lock:
            u = self.user()
        self.send(200, {k: u[k] for k in ("user_id", "email", "name", "role")})

    # ---- events ----------------------------------------------------------------------

    def event(self, event_id):
        ev = STATE.events.get(event_id)
        if not ev:
            raise Problem(404, "not_found", "no such event")
        return ev

    def list_events(self, q):
        words = re.sub(r"[^\w\s]+", " ", str(q.get("q", "")).lower()).split()
        status = q.get("status", "")
        try:
            limit = min(max(int(q.get("limit") or 20), 1), 100)
            start = int(q.get("cursor") or 0)
        except ValueError:
            raise Problem(400, "invalid_request", "limit and cursor must be numbers")
        with STATE.lock:
            out = []
            for eid in sorted(STATE.event_order, key=lambda e: (STATE.events[e].starts_at, int(e))):
                s = STATE.events[eid].summary()
                name_words = re.sub(r"[^\w\s]+", " ", s["name"].lower()).split()
                if words and not all(any(w2.startswith(w) for w2 in name_words) for w in words):
                    continue
                if status and s["status"] != status:
                    continue
                out.append(s)
        page = out[start:start + limit]
        nxt = str(start + limit) if start + limit < len(out) else ""
        self.send(200, {"events": page, "next_cursor": nxt})

    def get_event(self, q, event_id):
        with STATE.lock:
            body = self.event(event_id).detail()
        self.send(200, body)

    def get_seats(self, q, event_id):
        with STATE.lock:
            ev = self.event(event_id)
            etag = f'W/"{ev.event_id}-{ev.version}"'
            if self.headers.get("If-None-Match") == etag:
                self.send(304, headers={"ETag": etag})
                return
            body = ev.seat_map_bytes()
        self.send(200, body, headers={"ETag": etag, "Cache-Control": "no-cache"})

    def create_event(self, q):
        with STATE.lock:
            if self.user()["role"] != "admin":
                raise Problem(403, "forbidden", "admin only")
        b = self.json_body()
        sections = b.get("sections") or []
        if not b.get("name") or not b.get("venue") or not sections:
            raise Problem(400, "invalid_request", "name, venue and sections are required")
        capacity = 0
        for s in sections:
            for f in ("name", "rows", "seats_per_row", "price"):
                if f not in s:
                    raise Problem(400, "invalid_request", f"sections[].{f} is required")
            capacity += int(s["rows"]) * int(s["seats_per_row"])
        if not 1 <= capacity <= 200000:
            raise Problem(400, "invalid_request", "capacity must be 1..200000")
        with STATE.lock:
            ev = STATE.add_event({**b, "starts_at": b.get("starts_at") or rfc3339(now() + 86400),
                                  "sale_opens_at": b.get("sale_opens_at") or rfc3339(now() - 60)})
        self.send(201, {"event_id": ev.event_id})

    # ---- waiting room ----------------------------------------------------------------

    def queue_view(self, ev, user_id):
        entry = ev.queue_users.get(user_id)
        if not entry:
            raise Problem(404, "not_found", "you have not joined this waiting room")
        view = {"ticket": entry["ticket"], "position": entry["position"], "status": entry["status"],
                "eta_s": entry["position"] * 2 if entry["status"] == "waiting" else 0}
        if entry["status"] == "admitted":
            view.update({"admission_token": entry["token"], "admission_expires_at": rfc3339(entry["expires_ts"])})
        return view

    def admit(self, ev, user_id):
        entry = ev.queue_users[user_id]
        token = "adm_" + secrets.token_urlsafe(12)
        entry.update({"status": "admitted", "position": 0, "token": token, "expires_ts": now() + 900})
        ev.admissions[token] = (user_id, entry["expires_ts"])

    def join_queue(self, q, event_id):
        self.json_body()
        with STATE.lock:
            user = self.user()
            ev = self.event(event_id)
            entry = ev.queue_users.get(user["user_id"])
            if not entry or entry["status"] in ("left", "expired"):
                if ev.queue["enabled"]:
                    ev.queue_users[user["user_id"]] = {"ticket": ev.next_ticket, "position": 3, "status": "waiting"}
                    ev.next_ticket += 1
                else:
                    ev.queue_users[user["user_id"]] = {"ticket": 0, "position": 0, "status": "waiting"}
                    self.admit(ev, user["user_id"])
            body = self.queue_view(ev, user["user_id"])
        self.send(200, body)

    def queue_status(self, q, event_id):
        with STATE.lock:
            user = self.user()
            ev = self.event(event_id)
            entry = ev.queue_users.get(user["user_id"])
            if entry and entry["status"] == "waiting":
                entry["position"] -= 1  # the line moves on every poll
                if entry["position"] <= 0:
                    self.admit(ev, user["user_id"])
            body = self.queue_view(ev, user["user_id"])
        self.send(200, body)

    def leave_queue(self, q, event_id):
        with STATE.lock:
            user = self.user()
            ev = self.event(event_id)
            entry = ev.queue_users.get(user["user_id"])
            if entry:
                entry["status"] = "left"
        self.send(204)

    # ---- holds and reservations ------------------------------------------------------

    def idempotent(self, user_id, fn):
        key = self.headers.get("Idempotency-Key", "")
        if not key:
            raise Problem(400, "invalid_request", "Idempotency-Key header is required")
        with STATE.lock:
            hit = STATE.idempotency.get((user_id, key))
        if hit:
            status, body, headers = hit
            if status >= 400:
                self.problem(Problem(status, body["code"], body["detail"], body=body.get("extra", {})))
            else:
                self.send(status, body)
            return
        try:
            status, body = fn()
        except Problem as p:
            if p.status not in (429, 503):
                with STATE.lock:
                    STATE.idempotency[(user_id, key)] = (p.status, {"code": p.code, "detail": p.detail, "extra": p.extra.get("body", {})}, {})
            raise
        with STATE.lock:
            STATE.idempotency[(user_id, key)] = (status, body, {})
        self.send(status, body)

    def hold(self, q, event_id):
        b = self.json_body()
        with STATE.lock:
            user = self.user()
            ev = self.event(event_id)
        token = self.headers.get("X-Admission-Token", "")

        def run():
            with STATE.lock:
                adm = ev.admissions.get(token)
                if not adm or adm[0] != user["user_id"] or adm[1] < now():
                    raise Problem(403, "not_admitted", "no valid admission token for this event")
                if ev.status_word() != "on_sale":
                    raise Problem(409, "event_closed", "this event is not on sale")
                if "seat_ids" in b:
                    seat_ids = [str(s) for s in b.get("seat_ids") or []]
                    if not seat_ids or len(set(seat_ids)) != len(seat_ids) or not all(s.isdigit() and int(s) < len(ev.seats) for s in seat_ids):
                        raise Problem(400, "invalid_request", "seat_ids must be distinct seats of this event")
                    self.check_cap(ev, user, len(seat_ids))
                    bad = [s for s in seat_ids if ev.status[int(s)] != "free"]
                    if bad:
                        raise Problem(409, "seat_unavailable", "some seats are not free", body={"unavailable": bad})
                else:
                    try:
                        count = int(b.get("count"))
                    except (TypeError, ValueError):
                        raise Problem(400, "invalid_request", "give seat_ids or count")
                    if count < 1:
                        raise Problem(400, "invalid_request", "count must be at least 1")
                    section = b.get("section")
                    if section and section not in [s["name"] for s in ev.sections]:
                        raise Problem(400, "invalid_request", f"no section {section!r}")
                    self.check_cap(ev, user, count)
                    seat_ids = self.best_available(ev, count, section)
                    if not seat_ids:
                        raise Problem(409, "sold_out", "not enough free seats")
                STATE.set_seats(ev, seat_ids, "held")
                rid = "rsv_" + secrets.token_hex(8)
                expires = now() + ev.hold_ttl_s
                amount = sum(ev.seats[int(s)]["price"] for s in seat_ids)
                STATE.reservations[rid] = {"reservation_id": rid, "event_id": ev.event_id, "user_id": user["user_id"],
                                           "seat_ids": seat_ids, "status": "pending", "amount": amount,
                                           "created_at": rfc3339(now()), "expires_ts": expires}
                return 201, {"reservation_id": rid, "seat_ids": seat_ids, "amount": amount, "expires_at": rfc3339(expires)}

        self.idempotent(user["user_id"], run)

    def check_cap(self, ev, user, more):
        have = sum(len(r["seat_ids"]) for r in STATE.reservations.values()
                   if r["event_id"] == ev.event_id and r["user_id"] == user["user_id"] and r["status"] in ("pending", "confirmed"))
        if have + more > ev.max_seats_per_user:
            raise Problem(422, "seat_cap_reached", f"at most {ev.max_seats_per_user} seats per user for this event")

    def best_available(self, ev, count, section):
        rows = {}
        for i, seat in enumerate(ev.seats):
            if section and seat["section"] != section:
                continue
            rows.setdefault((seat["section"], seat["row"]), []).append(i)
        for key in rows:  # adjacent first: front rows, then the first run long enough
            run = []
            for i in rows[key]:
                run = run + [i] if ev.status[i] == "free" else []
                if len(run) == count:
                    return [str(x) for x in run]
        free = [str(i) for k in rows for i in rows[k] if ev.status[i] == "free"]
        return free[:count] if len(free) >= count else None

    def reservation(self, user, rid):
        r = STATE.reservations.get(rid)
        if not r or r["user_id"] != user["user_id"]:
            raise Problem(404, "not_found", "no such reservation")
        return r

    @staticmethod
    def public(r):
        out = {k: r[k] for k in ("reservation_id", "event_id", "seat_ids", "status", "amount", "created_at")}
        if r["status"] == "pending":
            out["expires_at"] = rfc3339(r["expires_ts"])
        if r.get("payment_id"):
            out["payment_id"] = r["payment_id"]
        return out

    def list_reservations(self, q):
        with STATE.lock:
            user = self.user()
            mine = [self.public(r) for r in STATE.reservations.values() if r["user_id"] == user["user_id"]]
        self.send(200, mine)

    def get_reservation(self, q, rid):
        with STATE.lock:
            body = self.public(self.reservation(self.user(), rid))
        self.send(200, body)

    def release(self, q, rid):
        with STATE.lock:
            r = self.reservation(self.user(), rid)
            if r["status"] != "pending":
                raise Problem(409, "reservation_not_pending", "only a pending hold can be released")
            r["status"] = "cancelled"
            STATE.set_seats(STATE.events[r["event_id"]], r["seat_ids"], "free")
        self.send(204)

    def pay(self, q, rid):
        b = self.json_body()
        with STATE.lock:
            user = self.user()
            self.reservation(user, rid)
        card = str(b.get("card_token", ""))
        if b.get("method") != "card" or not card:
            raise Problem(400, "invalid_request", "method must be \"card\" and card_token is required")
        with STATE.lock:
            # As reservation-svc's saga: once a charge is undecided, every later Pay asks about
            # that charge (its card), whatever card the new request names.
            card = self.reservation(user, rid).get("undecided_card", card)

        def run():
            with STATE.lock:
                r = self.reservation(user, rid)
                if r["status"] == "expired":
                    raise Problem(410, "hold_expired", "the hold expired before it was paid")
                if r["status"] != "pending":
                    raise Problem(409, "reservation_not_pending", f"the reservation is {r['status']}")
            if card == "tok_slow":
                time.sleep(5)
            with STATE.lock:
                STATE.expire_holds()
                if r["status"] == "expired":
                    raise Problem(410, "hold_expired", "the hold expired before it was paid")
                if card == "tok_error":
                    r["undecided_card"] = card
                    raise Problem(503, "payment_unavailable", "the payment gateway failed; the hold is kept until its TTL",
                                  headers={"Retry-After": "2"})
                if card not in ("tok_approve", "tok_slow"):
                    r["status"] = "cancelled"
                    STATE.set_seats(STATE.events[r["event_id"]], r["seat_ids"], "free")
                    raise Problem(402, "payment_declined", "the card was declined; the seats were released")
                r["status"] = "confirmed"
                r["payment_id"] = "pay_" + secrets.token_hex(8)
                STATE.set_seats(STATE.events[r["event_id"]], r["seat_ids"], "sold")
                return 200, {"status": "confirmed", "payment_id": r["payment_id"]}

        self.idempotent(user["user_id"], run)

    def cancel(self, q, rid):
        self.json_body()
        with STATE.lock:
            r = self.reservation(self.user(), rid)
            if r["status"] != "confirmed":
                raise Problem(409, "reservation_not_confirmed", "only a confirmed reservation can be cancelled")
            r["status"] = "cancelled"
            STATE.set_seats(STATE.events[r["event_id"]], r["seat_ids"], "free")
        self.send(200, {"status": "cancelled"})

    # ---- test hooks ------------------------------------------------------------------

    def mock_expire(self, q):
        self.json_body()
        with STATE.lock:
            STATE.access.clear()
        self.send(204)

    def mock_stale(self, q):
        b = self.json_body()
        with STATE.lock:
            ev = self.event(str(b.get("event_id")))
            STATE.set_seats(ev, [str(s) for s in b.get("seat_ids", [])], b.get("status", "sold"), bump=False)
        self.send(204)

    def mock_rate_limit(self, q):
        b = self.json_body()
        with STATE.lock:
            STATE.rate_limit_next.append({"path_contains": str(b.get("path_contains", "")),
                                          "retry_after": int(b.get("retry_after", 3))})
        self.send(204)


def r(path):
    return re.compile(path.replace("{id}", r"([^/]+)"))


ROUTES = [
    ("POST", r("/api/v1/auth/signup"), Handler.signup),
    ("POST", r("/api/v1/auth/login"), Handler.login),
    ("POST", r("/api/v1/auth/refresh"), Handler.refresh),
    ("POST", r("/api/v1/auth/logout"), Handler.logout),
    ("GET", r("/api/v1/auth/me"), Handler.me),
    ("GET", r("/api/v1/events"), Handler.list_events),
    ("GET", r("/api/v1/events/{id}"), Handler.get_event),
    ("GET", r("/api/v1/events/{id}/seats"), Handler.get_seats),
    ("POST", r("/api/v1/admin/events"), Handler.create_event),
    ("POST", r("/api/v1/events/{id}/queue"), Handler.join_queue),
    ("GET", r("/api/v1/events/{id}/queue"), Handler.queue_status),
    ("DELETE", r("/api/v1/events/{id}/queue"), Handler.leave_queue),
    ("POST", r("/api/v1/events/{id}/holds"), Handler.hold),
    ("GET", r("/api/v1/reservations"), Handler.list_reservations),
    ("GET", r("/api/v1/reservations/{id}"), Handler.get_reservation),
    ("DELETE", r("/api/v1/reservations/{id}"), Handler.release),
    ("POST", r("/api/v1/reservations/{id}/payment"), Handler.pay),
    ("POST", r("/api/v1/reservations/{id}/cancel"), Handler.cancel),
    ("POST", r("/__mock/expire_access_tokens"), Handler.mock_expire),
    ("POST", r("/__mock/stale_seats"), Handler.mock_stale),
    ("POST", r("/__mock/rate_limit_next"), Handler.mock_rate_limit),
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    ap.add_argument("--ui", default=os.path.join(here, "..", "..", "edge", "ui"))
    args = ap.parse_args()
    Handler.ui_root = os.path.realpath(args.ui)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"mock_api listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
