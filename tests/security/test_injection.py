"""test_injection.py — SQL injection attempts in every text field a client controls are inert:
stored and returned verbatim where the field is stored, refused as invalid where it is not,
never a 500; and afterwards the data is intact (the tables, their row counts, the accounts that
existed), and PostgreSQL's log has no syntax error (text pasted into SQL would break it even when
the attempt itself is harmless)."""
import re
import urllib.parse
import uuid

from common import (SecurityTestCase, admin, admission, api, create_event, env, event_body, hold, new_account, psql,
                    remember_secret)

PAYLOADS = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "\"; DROP TABLE events; --",
    "1; DELETE FROM reservations",
    "' UNION SELECT password_hash, email, 1 FROM users --",
    "$$; DROP TABLE payments; $$",
    "\\'; TRUNCATE sagas; --",
    "%' OR name LIKE '%",
    "Robert'); DROP TABLE users;--",
    "é'\u2019; SELECT pg_sleep(5); --",
]
TABLES = ("users", "events", "reservations", "payments", "refresh_tokens")


def counts():
    return {t: int(psql(f"SELECT count(*) FROM {t}")[0][0]) for t in TABLES}


class Injection(SecurityTestCase):
    @classmethod
    def setUpClass(cls):
        cls.victim, cls.target = new_account("victim"), new_account("target")
        cls.event_id = create_event()
        reply = hold(cls.victim, cls.event_id, admission(cls.victim, cls.event_id))
        assert reply.status == 201, reply
        cls.victim_reservation = reply.json()["reservation_id"]
        cls.before = counts()
        with open(env("PG_LOG"), "rb") as f:
            cls.pg_log_at = len(f.read())

    def assertNot500(self, reply, what):
        self.assertLess(reply.status, 500, f"{what}: {reply}")

    def test_1_signup_and_login_fields(self):
        for payload in PAYLOADS:
            password = payload + uuid.uuid4().hex  # a password may be anything
            remember_secret("a user's password", password)
            email = f"inj{uuid.uuid4().hex[:10]}@security.test"
            reply = api("POST", "/api/v1/auth/signup", body={"email": email, "password": password, "name": payload})
            self.assertStatus(reply, 201, f"name/password {payload!r}")
            login = api("POST", "/api/v1/auth/login", body={"email": email, "password": password})
            self.assertStatus(login, 200, f"login with password {payload!r}")
            remember_secret("an access token", login.json()["access_token"])
            me = api("GET", "/api/v1/auth/me", token=login.json()["access_token"]).json()
            self.assertEqual(me["name"], payload, "stored and returned verbatim")
            self.assertEqual(me["role"], "user")
            # the payload as an email: not an email (400), or one that does not exist (401), never a login.
            # Failed logins lock their client address and e-mail (auth-svc's brute-force throttling,
            # then 429), so they come from an address of their own, against an account of their own.
            self.assertNot500(api("POST", "/api/v1/auth/signup", body={"email": payload, "password": "x" * 12,
                                                                       "name": "x"}), f"email {payload!r}")
            for body in ({"email": payload, "password": payload}, {"email": self.target.email, "password": payload},
                         {"email": f"{self.target.email}' --", "password": "x"}):
                reply = api("POST", "/api/v1/auth/login", body=body, source="127.0.0.9")
                self.assertIn(reply.status, (400, 401, 429), f"login {body}: {reply}")
                self.assertNotIn(b"access_token", reply.body)
            self.assertIn(api("POST", "/api/v1/auth/refresh", body={"refresh_token": payload}).status, (400, 401))

    def test_2_event_fields(self):
        for payload in PAYLOADS:
            body = event_body(name=payload, venue=payload + " hall")
            body["sections"][0]["name"] = payload[:31]
            reply = api("POST", "/api/v1/admin/events", body=body, token=admin().access)
            if reply.status == 400:  # a section name may refuse some characters: then refused, not run
                body["sections"][0]["name"] = "A"
                reply = api("POST", "/api/v1/admin/events", body=body, token=admin().access)
            self.assertStatus(reply, 201, f"event named {payload!r}")
            event = api("GET", f"/api/v1/events/{reply.json()['event_id']}").json()
            self.assertEqual(event["name"], payload)
            self.assertEqual(event["venue"], payload + " hall")

    def test_3_query_parameters(self):
        for payload in PAYLOADS:
            quoted = urllib.parse.quote(payload)
            for param in ("q", "status", "cursor", "limit"):
                reply = api("GET", f"/api/v1/events?{param}={quoted}")
                self.assertNot500(reply, f"{param}={payload!r}")
                if reply.status == 200 and param == "q":
                    # q is a word search of names (event-svc: to_tsquery over the words of q), so
                    # every event found has each word of the payload in its name, not "everything"
                    words = re.findall(r"\w+", payload.lower())
                    for event in reply.json()["events"]:
                        for word in words:
                            self.assertIn(word, event["name"].lower(), f"q={payload!r}: {reply}")

    def test_4_ids_keys_and_card_tokens(self):
        account = new_account("injector")
        token = admission(account, self.event_id)
        for payload in PAYLOADS:
            quoted = urllib.parse.quote(payload, safe="")
            for method, path in (("GET", f"/api/v1/reservations/{quoted}"), ("DELETE", f"/api/v1/reservations/{quoted}"),
                                 ("GET", f"/api/v1/events/{quoted}"), ("POST", f"/api/v1/events/{quoted}/queue")):
                self.assertIn(api(method, path, token=account.access).status, (400, 404), f"{method} {path}")
            reply = api("POST", f"/api/v1/events/{self.event_id}/holds", body={"seat_ids": [payload]},
                        token=account.access, headers={"X-Admission-Token": token, "Idempotency-Key": str(uuid.uuid4())})
            self.assertIn(reply.status, (400, 404, 409), f"seat id {payload!r}: {reply}")
            reply = api("POST", f"/api/v1/events/{self.event_id}/holds", body={"count": 1, "section": payload},
                        token=account.access, headers={"X-Admission-Token": token, "Idempotency-Key": str(uuid.uuid4())})
            self.assertIn(reply.status, (400, 404, 409), f"section {payload!r}: {reply}")
            held = api("POST", f"/api/v1/events/{self.event_id}/holds", body={"count": 1}, token=account.access,
                       headers={"X-Admission-Token": token, "Idempotency-Key": payload.encode()})
            self.assertNot500(held, f"Idempotency-Key {payload!r}")
            if held.status == 201:
                rid = held.json()["reservation_id"]
                paid = api("POST", f"/api/v1/reservations/{rid}/payment", token=account.access,
                           body={"method": "card", "card_token": payload}, headers={"Idempotency-Key": payload.encode()})
                self.assertIn(paid.status, (400, 402), f"card token {payload!r}: {paid}")
                api("DELETE", f"/api/v1/reservations/{rid}", token=account.access)

    def test_9_data_intact_afterwards(self):
        after = counts()
        for table in TABLES:
            self.assertGreaterEqual(after[table], self.before[table], f"rows of {table}: {self.before} -> {after}")
        login = api("POST", "/api/v1/auth/login", body={"email": self.victim.email, "password": self.victim.password})
        self.assertStatus(login, 200, "an account made before still logs in")
        reply = api("GET", f"/api/v1/reservations/{self.victim_reservation}", token=self.victim.access)
        self.assertStatus(reply, 200, "its reservation is still there")
        roles = psql("SELECT role, count(*) FROM users GROUP BY role ORDER BY role")
        self.assertEqual([r for r, _ in roles], ["admin", "user"], roles)
        self.assertEqual(dict(roles)["admin"], "1", "no account became admin")
        with open(env("PG_LOG"), "rb") as f:
            log = f.read()[self.pg_log_at:].decode(errors="replace")
        self.assertFalse(re.search(r"syntax error|unterminated quoted|ERROR: .*does not exist", log),
                         f"PostgreSQL saw SQL built from client text:\n{log[-3000:]}")
