"""test_jwt.py — access tokens: the edge accepts only HS256 tokens signed with the current key,
for our issuer and audience, within their lifetime, untouched. Each forgery is made by PyJWT from
a real token's claims; the control case (the same claims re-signed with the real key) must be
accepted, so every refusal below is down to the one thing that was changed."""
import base64
import json
import time
import urllib.parse

import jwt
import websocket

from common import SecurityTestCase, api, create_event, env, event_body, new_account

ME = "/api/v1/auth/me"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ForgedTokens(SecurityTestCase):
    @classmethod
    def setUpClass(cls):
        cls.account = new_account("jwt")
        cls.header = jwt.get_unverified_header(cls.account.access)
        cls.claims = jwt.decode(cls.account.access, options={"verify_signature": False})
        with open(env("JWT_KEY_FILE"), "rb") as f:
            cls.key = f.read()

    def sign(self, claims=None, key=None, algorithm="HS256", header=None):
        return jwt.encode(claims if claims is not None else dict(self.claims), key if key is not None else self.key,
                          algorithm=algorithm, headers=header if header is not None else {"kid": self.header["kid"]})

    def assertRefused(self, token, what):
        self.assertProblem(api("GET", ME, token=token), 401, "unauthenticated", what)

    def test_control_the_real_key_and_claims_are_accepted(self):
        self.assertEqual(self.header["alg"], "HS256")
        self.assertStatus(api("GET", ME, token=self.account.access), 200, "the token auth-svc issued")
        self.assertStatus(api("GET", ME, token=self.sign()), 200, "the same claims re-signed by the test")

    def test_alg_none(self):
        parts = [b64(json.dumps({"alg": "none", "typ": "JWT", "kid": self.header["kid"]}).encode()),
                 b64(json.dumps(self.claims).encode())]
        self.assertRefused(".".join(parts) + ".", "alg none, empty signature")
        self.assertRefused(".".join(parts), "alg none, no signature part")
        self.assertRefused(".".join(parts) + "." + self.account.access.split(".")[2], "alg none, a real signature")
        self.assertRefused(".".join([b64(json.dumps({"alg": "None", "kid": self.header["kid"]}).encode()), parts[1],
                                     ""]), "alg None")

    def test_wrong_key(self):
        self.assertRefused(self.sign(key=b"x" * 48), "another key")
        self.assertRefused(self.sign(key=self.key[:-1] + b"!"), "one byte off the key")
        self.assertRefused(self.sign(key=b""), "the empty key")

    def test_other_algorithms_with_the_right_key(self):
        self.assertRefused(self.sign(algorithm="HS512"), "HS512")
        self.assertRefused(self.sign(algorithm="HS384"), "HS384")

    def test_expired(self):
        now = int(time.time())
        claims = dict(self.claims, iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        self.assertRefused(self.sign(claims), "expired an hour ago")
        claims = dict(self.claims)
        del claims["exp"]
        self.assertRefused(self.sign(claims), "no exp at all")

    def test_not_yet_valid(self):
        now = int(time.time())
        self.assertRefused(self.sign(dict(self.claims, iat=now + 3600, nbf=now + 3600, exp=now + 7200)),
                           "issued in the future")

    def test_tampered(self):
        head, payload, signature = self.account.access.split(".")
        for change in ({"role": "admin"}, {"sub": str(int(self.claims["sub"]) + 1)},
                       {"exp": self.claims["exp"] + 86400}):
            forged = b64(json.dumps(dict(self.claims, **change)).encode())
            self.assertRefused(f"{head}.{forged}.{signature}", f"payload changed {change}, signature kept")
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        self.assertRefused(f"{head}.{payload}.{flipped}", "signature changed")
        self.assertRefused(f"{head}.{payload}.{signature}=", "signature padded")
        self.assertRefused(f"{head}.{payload}", "signature removed")

    def test_other_audience_and_issuer(self):
        self.assertRefused(self.sign(dict(self.claims, aud="another-service")), "another audience")
        self.assertRefused(self.sign(dict(self.claims, aud=[self.claims["aud"], "x"])), "a list of audiences")
        self.assertRefused(self.sign(dict(self.claims, iss="someone-else")), "another issuer")

    def test_unknown_key_id(self):
        self.assertRefused(self.sign(header={"kid": "k9"}), "unknown kid")
        self.assertRefused(self.sign(header={}), "no kid")

    def test_a_forged_admin_token_cannot_create_events(self):
        forged = self.sign(dict(self.claims, role="admin"), key=b"guessed-key-" * 4)
        reply = api("POST", "/api/v1/admin/events", body=event_body(), token=forged)
        self.assertProblem(reply, 401, "unauthenticated")

    def test_a_refresh_token_is_not_an_access_token(self):
        self.assertRefused(self.account.refresh, "the refresh token as a bearer token")


class WebSocketTokens(SecurityTestCase):
    """The waiting-room WebSocket takes its token in the URL (browsers cannot set headers on it):
    the same checks apply, and scan_logs.py then proves the URL's token was not logged."""

    def ws(self, event_id, token):
        url = env("EDGE_MAIN").replace("http://", "ws://") + f"/api/v1/events/{event_id}/queue/ws"
        if token is not None:
            url += f"?access_token={urllib.parse.quote(token)}"
        return websocket.create_connection(url, timeout=10)

    def test_a_valid_token_in_the_url_opens_it(self):
        account = new_account("wsuser")
        sock = self.ws(create_event(), account.access)
        try:
            message = json.loads(sock.recv())
            self.assertIn(message["type"], ("position", "admitted"), message)
        finally:
            sock.close()

    def test_forged_or_missing_tokens_are_refused(self):
        account = new_account("wsforged")
        event_id = create_event()
        claims = jwt.decode(account.access, options={"verify_signature": False})
        forged = jwt.encode(claims, b"not-the-key-" * 4, algorithm="HS256",
                            headers={"kid": jwt.get_unverified_header(account.access)["kid"]})
        for what, token in (("no token", None), ("wrong key", forged), ("garbage", "x.y.z")):
            with self.assertRaises(websocket.WebSocketBadStatusException, msg=what) as caught:
                self.ws(event_id, token).close()
            self.assertEqual(caught.exception.status_code, 401, what)
