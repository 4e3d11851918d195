"""common.py — helpers of the security suite, and its runner.

Independent clients only: http.client and raw sockets for HTTP (a client address of our
choosing: the whole 127/8 is loopback, so an attacker on 127.0.0.2 and a normal client on
127.0.0.3 are different addresses to the edge's per-address limits), PyJWT to forge tokens, and
psql (as the postgres user, over the server's Unix socket) to see what PostgreSQL stores.

Environment (set by `run`): EDGE_MAIN, EDGE_GUARDED (base URLs), SECURITY_WORK (the temp dir;
secrets.tsv there lists every secret for scan_logs.py), ADMIN_EMAIL, ADMIN_PASSWORD,
JWT_KEY_FILE, PG_SOCKET, PG_PORT, PG_LOG.

`common.py --counts FILE MODULE...` runs test modules and writes "passed failed skipped".
"""
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import tk_harness  # noqa: E402  (tests/support, on the path just above)

_lock = threading.Lock()
_names = itertools.count(int(time.time() * 1000) % 10**9)


def env(name):
    value = os.environ.get(name)
    if value is None:
        raise unittest.SkipTest(f"{name} is not set (run the suite through tests/security/run)")
    return value


def unique(prefix):
    return f"{prefix}{next(_names)}"


def remember_secret(what, value):
    """Adds value to the secrets scan_logs.py must not find in any log."""
    with _lock, open(os.path.join(env("SECURITY_WORK"), "secrets.tsv"), "a") as f:
        f.write(f"{what}\t{value}\n")


Response = tk_harness.Response


request = tk_harness.http_request


def api(method, path, **kwargs):
    return request(env("EDGE_MAIN"), method, path, **kwargs)


class Account:
    def __init__(self, email, password, user_id, access, refresh):
        self.email, self.password, self.user_id, self.access, self.refresh = email, password, user_id, access, refresh


def new_account(prefix="user", password=None, name=None):
    email = f"{unique(prefix)}@security.test"
    password = password or f"pw-{uuid.uuid4().hex}"
    remember_secret("a user's password", password)
    reply = api("POST", "/api/v1/auth/signup", body={"email": email, "password": password, "name": name or prefix})
    assert reply.status == 201, reply
    login = api("POST", "/api/v1/auth/login", body={"email": email, "password": password})
    assert login.status == 200, login
    tokens = login.json()
    remember_secret("an access token", tokens["access_token"])
    remember_secret("a refresh token", tokens["refresh_token"])
    return Account(email, password, reply.json()["user_id"], tokens["access_token"], tokens["refresh_token"])


_admin = None


def admin():
    global _admin
    if _admin is None:
        login = api("POST", "/api/v1/auth/login", body={"email": env("ADMIN_EMAIL"), "password": env("ADMIN_PASSWORD")})
        assert login.status == 200, login
        remember_secret("the admin's access token", login.json()["access_token"])
        _admin = Account(env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"), None, login.json()["access_token"], None)
    return _admin


def rfc3339(offset_s):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


def event_body(name=None, rows=2, seats_per_row=10, price=5000, **extra):
    body = {"name": name or unique("Security event "), "venue": "Hall", "starts_at": rfc3339(30 * 86400),
            "sale_opens_at": rfc3339(-60),
            "sections": [{"name": "A", "rows": rows, "seats_per_row": seats_per_row, "price": price}],
            "queue": {"enabled": False}}
    body.update(extra)
    return body


def create_event(**kwargs):
    reply = api("POST", "/api/v1/admin/events", body=event_body(**kwargs), token=admin().access)
    assert reply.status == 201, reply
    return reply.json()["event_id"]


def admission(account, event_id):
    """Joins the event's waiting room (no queue: admitted at once); returns the admission token."""
    reply = api("POST", f"/api/v1/events/{event_id}/queue", token=account.access)
    assert reply.status == 200, reply
    view = reply.json()
    assert view["status"] == "admitted" and view.get("admission_token"), view
    remember_secret("an admission token", view["admission_token"])
    return view["admission_token"]


def hold(account, event_id, token, count=1, base=None):
    return request(base or env("EDGE_MAIN"), "POST", f"/api/v1/events/{event_id}/holds", body={"count": count},
                   token=account.access, headers={"X-Admission-Token": token, "Idempotency-Key": str(uuid.uuid4())})


def psql(sql):
    """Runs sql in the tiketi database as postgres over the Unix socket; rows as lists of strings."""
    argv = ["psql", "-h", env("PG_SOCKET"), "-p", env("PG_PORT"), "-U", "postgres", "-d", "tiketi", "-qtA",
            "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd="/tmp").stdout
    return [line.split("\t") for line in out.splitlines() if line]


class SecurityTestCase(unittest.TestCase):
    maxDiff = 4000

    def assertStatus(self, reply, status, what=""):
        self.assertEqual(reply.status, status, f"{what}: {reply}")

    def assertProblem(self, reply, status, code, what=""):
        self.assertStatus(reply, status, what)
        self.assertTrue((reply.header("content-type") or "").startswith("application/problem+json"), reply.headers)
        problem = reply.json()
        self.assertEqual(problem["code"], code, f"{what}: {problem}")
        return problem


def main(argv):
    counts_file, names = tk_harness.runner_args(argv)
    passed, failed, skipped = tk_harness.tally(tk_harness.run_tests(names))
    tk_harness.write_counts(counts_file, passed, failed, skipped)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
