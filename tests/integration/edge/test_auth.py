"""test_auth.py — /api/v1/auth/*: sign-up, login, refresh, logout, me, and the edge's own
verification of access tokens (forged, expired, wrong key, alg none)."""
import base64
import json
import time

import jwt

from harness import EdgeTestCase, admin, api, env, new_account, skip_unless, unique

AUTH_ROUTES = [["POST", "/api/v1/auth/signup"], ["POST", "/api/v1/auth/login"], ["POST", "/api/v1/auth/refresh"],
               ["POST", "/api/v1/auth/logout"], ["GET", "/api/v1/auth/me"]]


def with_role_admin(token):
    """The same token with role=admin in its claims: the signature no longer matches."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def key():
    with open(env("JWT_KEY_FILE"), "rb") as f:
        return f.read()


class AuthTestCase(EdgeTestCase):
    def setUp(self):
        skip_unless("auth-svc", routes=AUTH_ROUTES)


class SignUp(AuthTestCase):
    def test_sign_up_then_the_same_email_is_taken(self):
        email = f"{unique('signup')}@edge-it.test"
        reply = api("POST", "/api/v1/auth/signup", body={"email": email, "password": "long enough pw", "name": "Ann"})
        self.assertStatus(reply, 201)
        self.assertRegex(reply.json()["user_id"], r"^[1-9][0-9]*$")
        again = api("POST", "/api/v1/auth/signup", body={"email": email.upper(), "password": "other password",
                                                          "name": "Bob"})
        self.assertProblem(again, 409, "email_taken")

    def test_missing_or_invalid_fields_are_400(self):
        for body in ({"email": "a@b.example", "password": "long enough pw"}, {"email": 7, "password": "x" * 10, "name": "n"},
                     {"email": "not-an-email", "password": "long enough pw", "name": "n"},
                     {"email": f"{unique('short')}@edge-it.test", "password": "short", "name": "n"}):
            self.assertProblem(api("POST", "/api/v1/auth/signup", body=body), 400, "invalid_request", body)


class Login(AuthTestCase):
    def test_login_gives_a_jwt_the_edge_accepts(self):
        account = new_account("login")
        claims = jwt.decode(account.access, key(), algorithms=["HS256"], audience="tiketi", issuer="tiketi-auth")
        self.assertEqual(claims["sub"], account.user_id)
        self.assertEqual(claims["role"], "user")
        reply = api("POST", "/api/v1/auth/login", body={"email": account.email, "password": account.password})
        self.assertStatus(reply, 200)
        tokens = reply.json()
        self.assertEqual(set(tokens) >= {"access_token", "refresh_token", "expires_in"}, True, tokens)
        self.assertGreater(tokens["expires_in"], 0)

    def test_wrong_password_is_401_and_missing_fields_400(self):
        account = new_account("wrongpw")
        self.assertProblem(api("POST", "/api/v1/auth/login", body={"email": account.email, "password": "nope nope"}),
                           401, "invalid_credentials")
        self.assertProblem(api("POST", "/api/v1/auth/login", body={"email": account.email}), 400, "invalid_request")

    def test_repeated_failures_are_throttled_with_retry_after(self):
        account = new_account("throttle")
        replies = [api("POST", "/api/v1/auth/login", body={"email": account.email, "password": "bad password"})
                   for _ in range(7)]
        limited = [r for r in replies if r.status == 429]
        self.assertTrue(limited, [r.status for r in replies])
        self.assertProblem(limited[0], 429, "rate_limited")
        self.assertGreaterEqual(int(limited[0].header("retry-after")), 1)
        time.sleep(3.5)  # auth-svc counts failures per address too: let the lock (2 s) and window (3 s) pass


class Refresh(AuthTestCase):
    def test_refresh_rotates_and_reuse_is_refused(self):
        account = new_account("refresh")
        reply = api("POST", "/api/v1/auth/refresh", body={"refresh_token": account.refresh})
        self.assertStatus(reply, 200)
        self.assertNotEqual(reply.json()["refresh_token"], account.refresh)
        reused = api("POST", "/api/v1/auth/refresh", body={"refresh_token": account.refresh})
        self.assertProblem(reused, 401, "refresh_token_reused")
        self.assertProblem(api("POST", "/api/v1/auth/refresh", body={}), 400, "invalid_request")
        self.assertProblem(api("POST", "/api/v1/auth/refresh", body={"refresh_token": "x" * 43}), 401,
                           "invalid_refresh_token")


class Logout(AuthTestCase):
    def test_logout_with_the_refresh_token_revokes_it(self):
        account = new_account("logout")
        self.assertStatus(api("POST", "/api/v1/auth/logout", body={"refresh_token": account.refresh}), 204)
        self.assertEqual(api("POST", "/api/v1/auth/refresh", body={"refresh_token": account.refresh}).status, 401)

    def test_logout_with_only_the_access_token_revokes_every_session(self):
        account = new_account("logoutall")
        self.assertStatus(api("POST", "/api/v1/auth/logout", token=account.access), 204)
        self.assertEqual(api("POST", "/api/v1/auth/refresh", body={"refresh_token": account.refresh}).status, 401)

    def test_logout_without_any_token_is_401(self):
        self.assertProblem(api("POST", "/api/v1/auth/logout"), 401, "unauthenticated")
        self.assertProblem(api("POST", "/api/v1/auth/logout", token="not.a.jwt"), 401, "unauthenticated")


class Me(AuthTestCase):
    def test_me_is_the_token_s_user(self):
        account = new_account("me")
        reply = api("GET", "/api/v1/auth/me", token=account.access)
        self.assertStatus(reply, 200)
        self.assertEqual(reply.json(), {"user_id": account.user_id, "email": account.email, "name": "me", "role": "user"})
        self.assertEqual(api("GET", "/api/v1/auth/me", token=admin().access).json()["role"], "admin")

    def test_me_refuses_missing_and_forged_tokens(self):
        account = new_account("forged")
        claims = jwt.decode(account.access, key(), algorithms=["HS256"], audience="tiketi")
        now = int(time.time())
        forged = {
            "no token": None,
            "garbage": "abc",
            "wrong key": jwt.encode(claims, b"k" * 48, algorithm="HS256", headers={"kid": "k1"}),
            "alg none": jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"}),
            "expired": jwt.encode(dict(claims, iat=now - 7200, nbf=now - 7200, exp=now - 3600), key(), algorithm="HS256",
                                  headers={"kid": "k1"}),
            "other audience": jwt.encode(dict(claims, aud="elsewhere"), key(), algorithm="HS256", headers={"kid": "k1"}),
            "unknown kid": jwt.encode(claims, key(), algorithm="HS256", headers={"kid": "k9"}),
            "role raised": with_role_admin(account.access),
        }
        for what, token in forged.items():
            reply = api("GET", "/api/v1/auth/me", token=token)
            self.assertProblem(reply, 401, "unauthenticated", what)
            self.assertTrue(reply.header("www-authenticate").startswith("Bearer"), what)
        self.assertStatus(api("GET", "/api/v1/auth/me", headers={"Authorization": f"bearer {account.access}"}), 200,
                          "the scheme is case-insensitive")
