"""test_admission.py — admission tokens (the waiting room's pass to buy): they cannot be forged,
nor used by another user, nor for another event. The control case (the holder, on its event)
must succeed, so each refusal is down to the one thing that changed."""
import base64
import os
import uuid

from common import SecurityTestCase, admission, api, create_event, hold, new_account


class AdmissionTokens(SecurityTestCase):
    @classmethod
    def setUpClass(cls):
        cls.alice, cls.bob = new_account("alice"), new_account("bob")
        cls.event, cls.other_event = create_event(), create_event()
        cls.alice_token = admission(cls.alice, cls.event)
        cls.bob_token = admission(cls.bob, cls.event)
        admission(cls.alice, cls.other_event)  # alice may buy there too, with that event's token

    def assertNotAdmitted(self, reply, what):
        self.assertIn(reply.status, (400, 403), f"{what}: {reply}")
        if reply.status == 403:
            self.assertEqual(reply.json()["code"], "not_admitted", f"{what}: {reply}")

    def test_control_the_holder_on_its_event(self):
        self.assertStatus(hold(self.alice, self.event, self.alice_token), 201, "alice with her token")

    def test_another_users_token(self):
        self.assertNotAdmitted(hold(self.bob, self.event, self.alice_token), "bob with alice's token")
        self.assertNotAdmitted(hold(self.alice, self.event, self.bob_token), "alice with bob's token")

    def test_another_events_token(self):
        self.assertNotAdmitted(hold(self.alice, self.other_event, self.alice_token),
                               "alice's token of one event, on another she is admitted to")

    def test_forged_tokens(self):
        token = self.alice_token
        forgeries = {
            "random bytes of the same length": base64.urlsafe_b64encode(os.urandom(len(token))).decode()[:len(token)],
            "one character changed": token[:len(token) // 2] + ("A" if token[len(token) // 2] != "A" else "B") +
                                     token[len(token) // 2 + 1:],
            "the last character changed": token[:-1] + ("A" if token[-1] != "A" else "B"),
            "truncated": token[:-4],
            "extended": token + "AAAA",
            "empty": "",
            "SQL": "' OR '1'='1",
        }
        for what, forged in forgeries.items():
            self.assertNotAdmitted(hold(self.alice, self.event, forged), what)

    def test_no_token_at_all(self):
        reply = api("POST", f"/api/v1/events/{self.event}/holds", body={"count": 1}, token=self.alice.access,
                    headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertNotAdmitted(reply, "no X-Admission-Token")
