#!/usr/bin/env python3
"""test_auth.py — auth-svc over gRPC: sign-up, login, throttling, refresh rotation, logout,
me, the admin account, tokens checked with PyJWT, restart with key rotation, and a database
that stops answering.

Run through tests/integration/auth/run (it starts PostgreSQL and the daemon, and sets the
environment harness.py documents). `test_auth.py --counts FILE [Class[.test] ...]` runs the
classes in the order below (the restart and outage tests last: they disturb the daemon) and
writes "passed failed" to FILE.
"""
import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
import unittest

import grpc

import harness as h

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
LOCK_S = 4  # the run script's --login-lock-s
ACCESS_TTL_S = 600  # its --access-ttl-s


class AuthTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = h.Client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def assertOk(self, result, what=""):
        self.assertTrue(result.ok, f"{what}: {result}")

    def assertFails(self, result, code, name, what=""):
        self.assertEqual(result.code, code, f"{what}: {result}")
        self.assertEqual(result.error_code, name, f"{what}: {result}")

    def new_user(self, name="Test User"):
        email, password = h.unique_email(), h.new_password()
        result = self.client.signup(email, password, name)
        self.assertOk(result, "sign-up")
        return email, password, result.reply.user_id

    def login_ok(self, email, password, ip=None):
        result = self.client.login(email, password, h.unique_ip() if ip is None else ip)
        self.assertOk(result, f"login {email}")
        return result.reply

    def fail_logins(self, email, count, ip=None):
        for i in range(count):
            result = self.client.login(email, "wrong-" + h.new_password(), h.unique_ip() if ip is None else ip)
            self.assertFails(result, UNAUTHENTICATED, "invalid_credentials", f"failure {i + 1} for {email}")


class SignUpTests(AuthTestCase):
    def test_signup_then_duplicate_in_any_case(self):
        email, password, user_id = self.new_user("Ada Lovelace")
        self.assertTrue(user_id.isdigit(), user_id)
        again = self.client.signup(email.upper(), h.new_password(), "Someone Else")
        self.assertFails(again, grpc.StatusCode.ALREADY_EXISTS, "email_taken", "same address, other case")
        me = self.client.me(user_id=user_id)
        self.assertOk(me)
        self.assertEqual((me.reply.email, me.reply.name, me.reply.role), (email, "Ada Lovelace", "user"))
        mixed = h.unique_email().replace("user", "MiXeD")
        result = self.client.signup(mixed, h.new_password())
        self.assertOk(result)
        self.assertEqual(self.client.me(user_id=result.reply.user_id).reply.email, mixed.lower(), "stored lower-cased")

    def test_bad_email_is_invalid_argument(self):
        for email in ["", "no-at-sign", "@example.com", "a@", "a@b", "a b@example.com", "a@@example.com",
                      "x" * 250 + "@example.com", "a@example..com", "a@example.com.", "a@.example.com",
                      "tab\t@example.com"]:
            result = self.client.signup(email, h.new_password())
            self.assertFails(result, INVALID, "invalid_request", repr(email))
            self.assertIn("e-mail", result.details)

    def test_password_rules(self):
        short = self.client.signup(h.unique_email(), "1234567")
        self.assertFails(short, INVALID, "invalid_request", "7 bytes")
        self.assertIn("at least 8", short.details)
        long = self.client.signup(h.unique_email(), "x" * 129)
        self.assertFails(long, INVALID, "invalid_request", "129 bytes")
        self.assertIn("at most 128", long.details)
        for password in ["12345678", "y" * 128, "pässwörd-ünïcode"]:
            h.remember_secret(password)
            self.assertOk(self.client.signup(h.unique_email(), password), f"{len(password.encode())} bytes")

    def test_name_rules(self):
        for name in ["", "x" * 201, "line\nbreak", "bell\x07"]:
            self.assertFails(self.client.signup(h.unique_email(), h.new_password(), name), INVALID,
                             "invalid_request", repr(name))
        email, _, user_id = self.new_user("Zoë 東京 ☃")
        self.assertEqual(self.client.me(user_id=user_id).reply.name, "Zoë 東京 ☃")


class LoginTests(AuthTestCase):
    def test_login_issues_a_verifiable_token_pair(self):
        email, password, user_id = self.new_user()
        pair = self.login_ok(email, password)
        self.assertEqual(pair.expires_in, ACCESS_TTL_S)
        self.assertEqual(pair.refresh_expires_in, 30 * 24 * 3600)
        self.assertRegex(pair.refresh_token, r"^[A-Za-z0-9_-]{43}$")
        header = h.token_header(pair.access_token)
        self.assertEqual(header, {"alg": "HS256", "typ": "JWT", "kid": "k1"})
        claims = h.decode_access_token(pair.access_token)  # PyJWT: signature, exp, iss, aud
        self.assertEqual((claims["sub"], claims["role"], claims["email"]), (user_id, "user", email))
        self.assertEqual(claims["exp"] - claims["iat"], ACCESS_TTL_S)
        self.assertLessEqual(abs(claims["iat"] - time.time()), 5)
        second = self.login_ok(email, password)
        self.assertNotEqual(h.decode_access_token(second.access_token)["jti"], claims["jti"])
        self.assertNotEqual(second.refresh_token, pair.refresh_token)
        # Only the SHA-256 of a refresh token is stored, and only an argon2id hash of the password.
        digest = h.refresh_token_hash(pair.refresh_token)
        self.assertEqual(h.sql(f"SELECT count(*) FROM refresh_tokens WHERE token_hash = decode('{digest}', 'hex')"
                               f" AND user_id = {user_id}"), "1")
        stored = h.sql(f"SELECT password_hash FROM users WHERE id = {user_id}")
        self.assertTrue(stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored)  # run's --password-*
        self.assertNotIn(password, stored)

    def test_wrong_password_and_unknown_user_look_the_same(self):
        email, password, _ = self.new_user()
        wrong = self.client.login(email, "not-" + password, h.unique_ip())
        unknown = self.client.login(h.unique_email("nobody"), password, h.unique_ip())
        self.assertFails(wrong, UNAUTHENTICATED, "invalid_credentials", "wrong password")
        self.assertFails(unknown, UNAUTHENTICATED, "invalid_credentials", "unknown e-mail")
        self.assertEqual(wrong.details, unknown.details)
        self.assertOk(self.client.login(email.upper(), password, h.unique_ip()), "e-mail case does not matter")

    def test_unknown_user_takes_as_long_as_a_wrong_password(self):
        email, password, _ = self.new_user()
        wrong, unknown = [], []
        for _ in range(4):  # 4 < the lock threshold of 5
            wrong.append(self.client.login(email, "not-" + password, h.unique_ip()).elapsed)
            unknown.append(self.client.login(h.unique_email("nobody"), password, h.unique_ip()).elapsed)
        ratio = statistics.median(unknown) / statistics.median(wrong)
        print(f"  median wrong password {statistics.median(wrong) * 1000:.0f} ms, "
              f"unknown e-mail {statistics.median(unknown) * 1000:.0f} ms (ratio {ratio:.2f})")
        self.assertGreater(statistics.median(unknown), 0.01, "an unknown e-mail is still hashed")
        self.assertTrue(0.4 < ratio < 2.5, f"timing reveals unknown e-mails: ratio {ratio:.2f}")

    def test_bad_login_input(self):
        email, password, _ = self.new_user()
        self.assertFails(self.client.login(email, password, "not-an-ip"), INVALID, "invalid_request", "client_ip")
        self.assertFails(self.client.login(email, "", h.unique_ip()), INVALID, "invalid_request", "empty password")
        self.assertFails(self.client.login(email, "p" * 129, h.unique_ip()), INVALID, "invalid_request", "129 bytes")
        self.assertFails(self.client.login("not-an-email", password), INVALID, "invalid_request", "e-mail")
        self.assertOk(self.client.login(email, password, "2001:db8::7"), "IPv6 address")


class LockoutTests(AuthTestCase):
    def test_email_locks_after_five_failures_from_any_address(self):
        email, password, _ = self.new_user()
        self.fail_logins(email, 5)  # each from another address: only the e-mail's count reaches 5
        ip = h.unique_ip()
        locked = self.client.login(email, password, ip)
        self.assertFails(locked, EXHAUSTED, "rate_limited", "right password while locked")
        self.assertIn("try again", locked.details)
        other_email, other_password, _ = self.new_user()
        self.assertOk(self.client.login(other_email, other_password, ip), "another e-mail from the same address")

    def test_address_locks_after_five_failures_on_any_email(self):
        ip = h.unique_ip()
        for _ in range(5):
            self.fail_logins(h.unique_email("nobody"), 1, ip=ip)
        email, password, _ = self.new_user()
        self.assertFails(self.client.login(email, password, ip), EXHAUSTED, "rate_limited", "locked address")
        self.assertOk(self.client.login(email, password, h.unique_ip()), "the same e-mail from another address")

    def test_ipv6_clients_are_counted_per_64(self):
        prefix = f"2001:db8:{secrets.randbelow(0xffff):x}:{secrets.randbelow(0xffff):x}"
        for i in range(1, 6):
            self.fail_logins(h.unique_email("nobody"), 1, ip=f"{prefix}::{i}")
        email, password, _ = self.new_user()
        self.assertFails(self.client.login(email, password, f"{prefix}::abcd"), EXHAUSTED, "rate_limited",
                         "another address in the same /64")
        self.assertOk(self.client.login(email, password, "2001:db8:ffff:ffff::1"), "another /64")

    def test_success_clears_the_email_counter(self):
        email, password, _ = self.new_user()
        self.fail_logins(email, 4)
        self.login_ok(email, password)
        self.fail_logins(email, 4)
        self.login_ok(email, password)

    def test_no_client_ip_still_throttles_the_email(self):
        email, password, _ = self.new_user()
        self.fail_logins(email, 5, ip="")
        self.assertFails(self.client.login(email, password, ""), EXHAUSTED, "rate_limited", "no client_ip")

    def test_lock_expires(self):
        email, password, _ = self.new_user()
        self.fail_logins(email, 5)
        self.assertFails(self.client.login(email, password, h.unique_ip()), EXHAUSTED, "rate_limited", "locked")
        time.sleep(LOCK_S + 0.5)
        self.fail_logins(email, 1)  # the count starts again: one failure does not lock
        self.login_ok(email, password)


class RefreshTests(AuthTestCase):
    def test_refresh_rotates_and_reuse_revokes_the_family(self):
        email, password, user_id = self.new_user()
        first = self.login_ok(email, password)
        second = self.client.refresh(first.refresh_token)
        self.assertOk(second, "refresh")
        self.assertNotEqual(second.reply.refresh_token, first.refresh_token)
        claims = h.decode_access_token(second.reply.access_token)
        self.assertEqual(claims["sub"], user_id)
        self.assertNotEqual(claims["jti"], h.decode_access_token(first.access_token)["jti"])
        third = self.client.refresh(second.reply.refresh_token)
        self.assertOk(third, "refresh the rotated-in token")
        reused = self.client.refresh(first.refresh_token)
        self.assertFails(reused, UNAUTHENTICATED, "refresh_token_reused", "a rotated-out token again")
        self.assertFails(self.client.refresh(third.reply.refresh_token), UNAUTHENTICATED, "refresh_token_revoked",
                         "the newest token of the family after the reuse")
        digest = h.refresh_token_hash(first.refresh_token)
        self.assertEqual(h.sql("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL AND family ="
                               f" (SELECT family FROM refresh_tokens WHERE token_hash = decode('{digest}', 'hex'))"),
                         "0")

    def test_reuse_revokes_only_that_login(self):
        email, password, _ = self.new_user()
        phone, laptop = self.login_ok(email, password), self.login_ok(email, password)
        self.assertOk(self.client.refresh(phone.refresh_token))
        self.assertFails(self.client.refresh(phone.refresh_token), UNAUTHENTICATED, "refresh_token_reused")
        self.assertOk(self.client.refresh(laptop.refresh_token), "another login's family is untouched")

    def test_bad_refresh_tokens(self):
        self.assertFails(self.client.refresh(""), INVALID, "invalid_request", "empty")
        self.assertFails(self.client.refresh("garbage"), UNAUTHENTICATED, "invalid_refresh_token", "garbage")
        self.assertFails(self.client.refresh(h.b64url(secrets.token_bytes(32))), UNAUTHENTICATED,
                         "invalid_refresh_token", "well-formed but unknown")
        self.assertFails(self.client.refresh(h.b64url(secrets.token_bytes(32)) + "A"), UNAUTHENTICATED,
                         "invalid_refresh_token", "44 characters")

    def test_expired_refresh_token(self):
        email, password, _ = self.new_user()
        pair = self.login_ok(email, password)
        digest = h.refresh_token_hash(pair.refresh_token)
        h.sql(f"UPDATE refresh_tokens SET expires_at = now() - interval '1 second'"
              f" WHERE token_hash = decode('{digest}', 'hex')")
        self.assertFails(self.client.refresh(pair.refresh_token), UNAUTHENTICATED, "refresh_token_expired")


class LogoutTests(AuthTestCase):
    def test_logout_revokes_that_login_only(self):
        email, password, _ = self.new_user()
        one, two = self.login_ok(email, password), self.login_ok(email, password)
        self.assertOk(self.client.logout(refresh_token=one.refresh_token))
        self.assertFails(self.client.refresh(one.refresh_token), UNAUTHENTICATED, "refresh_token_revoked")
        self.assertOk(self.client.refresh(two.refresh_token), "the other login still refreshes")

    def test_logout_by_user_revokes_every_login(self):
        email, password, user_id = self.new_user()
        one, two = self.login_ok(email, password), self.login_ok(email, password)
        rotated = self.client.refresh(two.refresh_token)
        self.assertOk(rotated)
        self.assertOk(self.client.logout(user_id=user_id))
        self.assertFails(self.client.refresh(one.refresh_token), UNAUTHENTICATED, "refresh_token_revoked")
        self.assertFails(self.client.refresh(rotated.reply.refresh_token), UNAUTHENTICATED, "refresh_token_revoked")

    def test_logout_input_and_idempotence(self):
        self.assertFails(self.client.logout(), INVALID, "invalid_request", "nothing to revoke")
        self.assertFails(self.client.logout(refresh_token="bad"), INVALID, "invalid_request", "malformed")
        self.assertFails(self.client.logout(user_id="x1"), INVALID, "invalid_request", "bad user id")
        self.assertOk(self.client.logout(refresh_token=h.b64url(secrets.token_bytes(32))), "unknown token")
        email, password, _ = self.new_user()
        _, _, other_id = self.new_user()
        pair = self.login_ok(email, password)
        self.assertOk(self.client.logout(refresh_token=pair.refresh_token, user_id=other_id), "another user's id")
        self.assertOk(self.client.refresh(pair.refresh_token), "nothing was revoked for the wrong user")


class MeTests(AuthTestCase):
    def test_me_by_access_token_and_by_user_id(self):
        email, password, user_id = self.new_user("Grace Hopper")
        pair = self.login_ok(email, password)
        for result in (self.client.me(access_token=pair.access_token), self.client.me(user_id=user_id),
                       self.client.me(user_id=user_id, access_token=pair.access_token)):
            self.assertOk(result)
            self.assertEqual((result.reply.user_id, result.reply.email, result.reply.name, result.reply.role),
                             (user_id, email, "Grace Hopper", "user"))

    def test_me_refuses_bad_access_tokens(self):
        email, password, user_id = self.new_user()
        pair = self.login_ok(email, password)
        k1 = h.key_bytes("k1")
        now = int(time.time())
        claims = {"iss": h.ISSUER, "aud": h.AUDIENCE, "sub": user_id, "role": "user", "iat": now, "nbf": now,
                  "exp": now + 300, "jti": "forged"}
        header = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
        self.assertOk(self.client.me(access_token=h.forge_token(header, claims, k1)), "positive control")
        head, _, sig = pair.access_token.split(".")
        as_admin = h.b64url(json.dumps(dict(h.decode_access_token(pair.access_token), role="admin")).encode())
        bad = {
            "tampered payload": f"{head}.{as_admin}.{sig}",
            "alg none": h.forge_token(dict(header, alg="none"), claims, None),
            "alg none, signed": h.forge_token(dict(header, alg="none"), claims, k1),
            "alg HS512": h.forge_token(dict(header, alg="HS512"), claims, k1),
            "wrong key": h.forge_token(header, claims, secrets.token_bytes(48)),
            "unknown kid": h.forge_token(dict(header, kid="k9"), claims, k1),
            "expired": h.forge_token(header, dict(claims, iat=now - 3600, nbf=now - 3600, exp=now - 600), k1),
            "other audience": h.forge_token(header, dict(claims, aud="billing"), k1),
            "other issuer": h.forge_token(header, dict(claims, iss="someone-else"), k1),
            "role root": h.forge_token(header, dict(claims, role="root"), k1),
            "garbage": "not.a.token",
        }
        for what, token in bad.items():
            self.assertFails(self.client.me(access_token=token), UNAUTHENTICATED, "invalid_token", what)

    def test_me_input(self):
        self.assertFails(self.client.me(), INVALID, "invalid_request", "neither id nor token")
        self.assertFails(self.client.me(user_id="abc"), INVALID, "invalid_request", "non-numeric id")
        self.assertFails(self.client.me(user_id="99999999999999999999"), INVALID, "invalid_request", "past BIGINT")
        self.assertFails(self.client.me(user_id="999999999"), grpc.StatusCode.NOT_FOUND, "user_not_found")
        email, password, user_id = self.new_user()
        _, _, other_id = self.new_user()
        pair = self.login_ok(email, password)
        self.assertFails(self.client.me(user_id=other_id, access_token=pair.access_token), INVALID,
                         "invalid_request", "id and token disagree")


class AdminTests(AuthTestCase):
    def test_admin_account_exists_with_role_admin(self):
        email, password = h.env("AUTH_IT_ADMIN_EMAIL"), h.env("AUTH_ADMIN_PASSWORD")
        pair = self.login_ok(email, password)
        claims = h.decode_access_token(pair.access_token)
        self.assertEqual(claims["role"], "admin")
        me = self.client.me(access_token=pair.access_token)
        self.assertOk(me)
        self.assertEqual((me.reply.email, me.reply.role), (email, "admin"))
        self.assertEqual(h.sql(f"SELECT count(*) FROM users WHERE lower(email) = '{email}' AND role = 'admin'"), "1")
        self.assertFails(self.client.signup(email, h.new_password()), grpc.StatusCode.ALREADY_EXISTS, "email_taken")


class OperationsTests(AuthTestCase):
    def test_health_readiness_and_metrics(self):
        email, password, _ = self.new_user()
        self.login_ok(email, password)
        self.assertEqual(self.client.health(), h.health_pb2.HealthCheckResponse.SERVING)
        self.assertEqual(h.http_get("/healthz")[0], 200)
        self.assertEqual(h.http_get("/readyz")[0], 200)
        status, body = h.http_get("/metrics")
        self.assertEqual(status, 200)
        values = {line.split()[0]: float(line.split()[1]) for line in body.splitlines()
                  if line.startswith("tiketi_auth_")}
        self.assertGreaterEqual(values.get("tiketi_auth_logins_total", 0), 1, body[:2000])
        self.assertEqual(values.get("tiketi_auth_db_up"), 1)
        self.assertIn("Login", body, "per-method gRPC metrics")

    def test_help_and_check_config(self):
        binary = h.env("AUTH_IT_BIN")
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0)
        self.assertIn("AUTH_JWT_KEYS", out.stdout)
        out = subprocess.run([binary, "--check-config"] + h.daemon_args(), capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("configuration ok", out.stdout)
        short = os.path.join(h.env("AUTH_IT_WORK"), "keys", "short.key")
        with open(short, "w") as f:
            f.write("twenty-bytes-secret!")
        out = subprocess.run([binary, "--check-config"] + h.daemon_args({"--jwt-keys": f"k1={short}"}),
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("20 bytes", out.stderr)
        self.assertNotIn("twenty-bytes-secret", out.stderr + out.stdout)
        out = subprocess.run([binary, "--check-config"] + h.daemon_args({"--jwt-current-kid": "k7"}),
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2, out.stderr)
        out = subprocess.run([binary, "--check-config", "--jwt-keys", f"k1={short}"], capture_output=True,
                             text=True, timeout=10, env={k: v for k, v in os.environ.items()
                                                         if k != "AUTH_DATABASE_URL"})
        self.assertEqual(out.returncode, 2)
        self.assertIn("database-url", out.stderr)


class RestartTests(AuthTestCase):
    def test_restart_keeps_users_and_revocations_and_rotates_the_signing_key(self):
        email, password, user_id = self.new_user()
        kept, revoked = self.login_ok(email, password), self.login_ok(email, password)
        self.assertOk(self.client.logout(refresh_token=revoked.refresh_token))
        admin_email, admin_password = h.env("AUTH_IT_ADMIN_EMAIL"), h.env("AUTH_ADMIN_PASSWORD")
        new_admin_password = h.new_password()
        self.client.close()
        t0 = time.monotonic()
        stopped, clean = h.stop_daemon()
        t1 = time.monotonic()
        self.assertTrue(stopped, "auth-svc stops on SIGTERM")
        self.assertTrue(clean, "its log ends with the clean-exit line")
        h.start_daemon(h.daemon_args({"--jwt-current-kid": "k2", "--admin-password": new_admin_password,
                                      "--password-memlimit-kib": "65536"}))
        self.client = client = h.Client()
        print(f"  stopped in {t1 - t0:.1f} s, serving again {time.monotonic() - t1:.1f} s later")
        log = h.read_log()
        self.assertRegex(log, r"migrations: \d+ applied", "--migrate again is fine")
        args = h.daemon_args()
        migrations_dir = args[args.index("--migrations-dir") + 1]
        files = [n for n in os.listdir(migrations_dir) if re.fullmatch(r"\d{4}_\w+\.sql", n)]
        self.assertEqual(h.sql("SELECT count(*) FROM schema_migrations"), str(len(files)), "each applied once")
        self.assertIn("admin account exists", log)
        pair = self.login_ok(email, password)
        self.assertEqual(h.token_header(pair.access_token)["kid"], "k2", "the new current key signs")
        self.assertEqual(h.decode_access_token(pair.access_token)["sub"], user_id)
        stored = h.sql(f"SELECT password_hash FROM users WHERE id = {user_id}")
        self.assertTrue(stored.startswith("$argon2id$v=19$m=65536,t=2,p=1$"), f"rehashed at the new cost: {stored}")
        self.assertOk(client.me(access_token=kept.access_token), "a token signed by k1 still verifies")
        self.assertFails(client.refresh(revoked.refresh_token), UNAUTHENTICATED, "refresh_token_revoked",
                         "a revocation survives the restart")
        self.assertOk(client.refresh(kept.refresh_token), "a live refresh token survives the restart")
        self.assertOk(client.login(admin_email, admin_password, h.unique_ip()), "the admin password is unchanged")
        self.assertFails(client.login(admin_email, new_admin_password, h.unique_ip()), UNAUTHENTICATED,
                         "invalid_credentials", "a new --admin-password does not reset an existing admin")
        client.close()


class DatabaseOutageTests(AuthTestCase):
    def test_stopped_database_gives_unavailable_then_recovers(self):
        email, password, user_id = self.new_user()
        budget_s = int(h.env("AUTH_IT_DB_TIMEOUT_MS")) / 1000 + 3 + 1.5  # statement timeout + reconnect + slack
        h.signal_postgres(signal.SIGSTOP)
        try:
            for what, call in (("me", lambda: self.client.me(user_id=user_id)),
                               ("login", lambda: self.client.login(email, password, h.unique_ip())),
                               ("sign-up", lambda: self.client.signup(h.unique_email(), h.new_password())),
                               ("me again", lambda: self.client.me(user_id=user_id))):
                result = call()
                self.assertFails(result, UNAVAILABLE, "database_unavailable", what)
                self.assertLess(result.elapsed, budget_s, f"{what} answered in {result.elapsed:.1f} s")
            self.assertEqual(h.http_get("/readyz")[0], 503, "not ready while the database is away")
        finally:
            h.signal_postgres(signal.SIGCONT)
        deadline = time.monotonic() + 15
        result = None
        while time.monotonic() < deadline:
            result = self.client.me(user_id=user_id)
            if result.ok:
                break
            time.sleep(0.2)
        self.assertOk(result, "recovers once PostgreSQL answers again")
        self.login_ok(email, password)
        self.assertEqual(h.http_get("/readyz")[0], 200, "ready again")


ORDER = [SignUpTests, LoginTests, LockoutTests, RefreshTests, LogoutTests, MeTests, AdminTests, OperationsTests,
         RestartTests, DatabaseOutageTests]


class TimedResult(unittest.TextTestResult):
    """Prints each test's wall time, so a slow one is easy to spot."""

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        self.stream.write(f"    ({time.monotonic() - self._started:.1f} s)\n")
        super().stopTest(test)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", required=True)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    loader = unittest.TestLoader()
    module = sys.modules[__name__]
    if args.names:
        suite = unittest.TestSuite(loader.loadTestsFromName(name, module) for name in args.names)
    else:
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(cls) for cls in ORDER)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=TimedResult).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    with open(args.counts, "w") as f:
        f.write(f"{passed} {failed}\n")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
