"""test_stored_secrets.py — what PostgreSQL keeps: passwords only as salted argon2id hashes,
refresh tokens only as digests, card tokens only masked (and a saga's copy gone once it is
paid). The whole database is dumped (pg_dump) and searched for every password, refresh token
and card number the run used. (The logs are searched by scan_logs.py, after the daemons stop.)"""
import os
import re
import subprocess
import uuid

from common import (SecurityTestCase, admission, api, create_event, env, hold, new_account, psql,
                    remember_secret)

ARGON2ID = re.compile(r"^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]{16,}\$[A-Za-z0-9+/]{32,}$")
CARD_NUMBER = "4111111111111111"  # a card number pasted where a gateway token belongs


def dump():
    argv = ["pg_dump", "-h", env("PG_SOCKET"), "-p", env("PG_PORT"), "-U", "postgres", "-d", "tiketi"]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    return subprocess.run(argv, capture_output=True, check=True, cwd="/tmp").stdout


def secrets(kinds):
    with open(os.path.join(env("SECURITY_WORK"), "secrets.tsv")) as f:
        rows = [line.rstrip("\n").split("\t", 1) for line in f if "\t" in line]
    return [(what, value) for what, value in rows if what in kinds]


class StoredSecrets(SecurityTestCase):
    @classmethod
    def setUpClass(cls):
        remember_secret("a card number", CARD_NUMBER)
        password = f"same-{uuid.uuid4().hex}"
        cls.twins = [new_account("twin", password=password), new_account("twin", password=password)]
        # a purchase (the card token approved) and a card number (declined), so payments and sagas have rows
        buyer = new_account("buyer")
        event_id = create_event()
        token = admission(buyer, event_id)
        for card, want in (("tok_approve", 200), (CARD_NUMBER, 402)):
            reply = hold(buyer, event_id, token)
            assert reply.status == 201, reply
            paid = api("POST", f"/api/v1/reservations/{reply.json()['reservation_id']}/payment", token=buyer.access,
                       body={"method": "card", "card_token": card}, headers={"Idempotency-Key": str(uuid.uuid4())})
            assert paid.status == want, paid
        cls.dump = dump()

    def test_passwords_are_argon2id_hashes(self):
        rows = psql("SELECT email, password_hash FROM users")
        self.assertGreater(len(rows), 5)
        for email, stored in rows:
            self.assertRegex(stored, ARGON2ID, f"{email}: libsodium's argon2id encoded string")

    def test_the_same_password_hashes_differently(self):
        hashes = [psql(f"SELECT password_hash FROM users WHERE email = '{a.email}'")[0][0] for a in self.twins]
        self.assertNotEqual(hashes[0], hashes[1], "a salt per password")

    def test_no_password_refresh_token_or_card_number_in_the_database(self):
        found = [what for what, value in secrets({"a user's password", "admin password", "a refresh token",
                                                  "a card number"}) if value.encode() in self.dump]
        self.assertEqual(found, [], "stored in clear (pg_dump of the whole database)")

    def test_refresh_tokens_are_digests(self):
        lengths = psql("SELECT DISTINCT length(token_hash) FROM refresh_tokens")
        self.assertEqual(lengths, [["32"]], "SHA-256 digests only")

    def test_card_tokens_are_masked_and_not_kept(self):
        hints = [row[0] for row in psql("SELECT card_hint FROM payments WHERE card_hint IS NOT NULL")]
        self.assertTrue(hints)
        for hint in hints:
            self.assertIn("****", hint)
        self.assertEqual(psql("SELECT count(*) FROM sagas WHERE card_token IS NOT NULL AND state <> 'paying'"),
                         [["0"]])
