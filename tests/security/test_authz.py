"""test_authz.py — authorization: a user sees and touches only their own reservations (another
user's are 404, exactly like ids that do not exist, so ids cannot even be probed), and the admin
routes need the admin role."""
import uuid

from common import (SecurityTestCase, admin, admission, api, create_event, event_body, hold, new_account,
                    remember_secret)


class OtherUsersReservations(SecurityTestCase):
    @classmethod
    def setUpClass(cls):
        cls.owner, cls.other = new_account("owner"), new_account("other")
        cls.event_id = create_event()
        reply = hold(cls.owner, cls.event_id, admission(cls.owner, cls.event_id), count=2)
        assert reply.status == 201, reply
        cls.reservation_id = reply.json()["reservation_id"]
        cls.path = f"/api/v1/reservations/{cls.reservation_id}"

    def test_the_owner_sees_it(self):
        reply = api("GET", self.path, token=self.owner.access)
        self.assertStatus(reply, 200)
        self.assertEqual(reply.json()["reservation_id"], self.reservation_id)

    def test_another_user_gets_404_like_a_missing_id(self):
        theirs = api("GET", self.path, token=self.other.access)
        self.assertProblem(theirs, 404, "not_found", "another user's reservation")
        missing = api("GET", self.path[:-4] + "ffff", token=self.other.access)
        self.assertEqual(missing.status, 404, missing)
        self.assertNotIn(self.owner.email.encode(), theirs.body)

    def test_another_users_list_does_not_have_it(self):
        reply = api("GET", "/api/v1/reservations", token=self.other.access)
        self.assertStatus(reply, 200)
        self.assertNotIn(self.reservation_id.encode(), reply.body)
        self.assertIn(self.reservation_id.encode(), api("GET", "/api/v1/reservations", token=self.owner.access).body)

    def test_another_user_cannot_pay_release_or_cancel_it(self):
        key = {"Idempotency-Key": "authz-pay-1"}
        attempts = [
            api("POST", self.path + "/payment", body={"method": "card", "card_token": "tok_approve"},
                token=self.other.access, headers=key),
            api("DELETE", self.path, token=self.other.access),
            api("POST", self.path + "/cancel", token=self.other.access),
        ]
        for reply in attempts:
            self.assertEqual(reply.status, 404, reply)
        # ... and it is untouched: still the owner's, still pending
        reply = api("GET", self.path, token=self.owner.access)
        self.assertStatus(reply, 200)
        self.assertEqual(reply.json()["status"], "pending", reply)

    def test_without_a_token_it_is_401(self):
        self.assertProblem(api("GET", self.path), 401, "unauthenticated")
        self.assertProblem(api("GET", "/api/v1/reservations"), 401, "unauthenticated")


class AdminRoutes(SecurityTestCase):
    def test_a_user_gets_403(self):
        user = new_account("notadmin")
        reply = api("POST", "/api/v1/admin/events", body=event_body(), token=user.access)
        self.assertProblem(reply, 403, "forbidden")

    def test_no_token_gets_401(self):
        self.assertProblem(api("POST", "/api/v1/admin/events", body=event_body()), 401, "unauthenticated")

    def test_the_admin_gets_201(self):
        reply = api("POST", "/api/v1/admin/events", body=event_body(), token=admin().access)
        self.assertStatus(reply, 201)

    def test_signup_cannot_ask_for_the_admin_role(self):
        email, password = f"wannabe-{uuid.uuid4().hex[:12]}@security.test", f"pw-{uuid.uuid4().hex}"
        remember_secret("a user's password", password)
        reply = api("POST", "/api/v1/auth/signup", body={"email": email, "password": password, "name": "x",
                                                         "role": "admin"})
        self.assertStatus(reply, 201)
        login = api("POST", "/api/v1/auth/login", body={"email": email, "password": password})
        remember_secret("an access token", login.json()["access_token"])
        me = api("GET", "/api/v1/auth/me", token=login.json()["access_token"])
        self.assertEqual(me.json()["role"], "user", me)
