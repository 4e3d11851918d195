#!/usr/bin/env python3
"""setup.py — prepares what edge-bench measures, through the edge's public API only.

  setup.py --url http://127.0.0.1:8080 --out DIR --users 2000 --ws-users 19000 [--hold-ttl-s 3]
  setup.py --url http://127.0.0.1:8080 --out DIR --users 2000 --admit

As the admin (TIKETI_ADMIN_EMAIL / TIKETI_ADMIN_PASSWORD): three events,
  reads  the demo's layout (3,000 seats), no waiting room: the event list and seat map
  holds  100,000 seats (one section, 100 rows of 1,000), no waiting room, a short hold
         TTL so that held seats come back while the bench goes round the seats again
  ws     a waiting room whose sale opens in two hours: nobody is admitted, everyone waits
Then max(--users, --ws-users) users sign up (POST /auth/signup) and log in (POST
/auth/login). Writes into DIR:
  events.env      READS_EVENT= HOLDS_EVENT= WS_EVENT=
  users.txt       one access token per user
  ws-tokens.txt   the first --ws-users of them
  seats.txt       the holds event's seat ids (from GET .../seats)
--admit, run just before the holds are measured (admission tokens live 10 minutes): the
first --users join the holds event (POST .../queue answers an admission token at once
without a waiting room) and DIR/hold-users.txt gets "<access token> <admission token>"
per user. Prints progress and the rate of each step on stderr."""
import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

local = threading.local()


def connection(url):
    if getattr(local, "conn", None) is None:
        parts = urllib.parse.urlsplit(url)
        local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    return local.conn


def call(url, method, path, body=None, token=None):
    """One request on this thread's keep-alive connection; one retry on a dropped connection
    (the edge closes idle keep-alive connections after its header timeout)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    for attempt in (1, 2):
        try:
            conn = connection(url)
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            text = response.read()
            return response.status, json.loads(text) if text else None
        except (http.client.HTTPException, OSError):
            local.conn = None
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def must(status, reply, expected, what):
    if status not in expected:
        raise SystemExit(f"setup: {what}: HTTP {status}: {reply}")
    return reply


def iso(moment):
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def create_events(url, token, hold_ttl_s, tag):
    now = datetime.datetime.now(datetime.timezone.utc)
    common = {"venue": "edge-bench", "starts_at": iso(now + datetime.timedelta(days=30))}
    reads = dict(common, name=f"edge-bench reads {tag}", sale_opens_at=iso(now), sections=[
        {"name": "Floor", "rows": 20, "seats_per_row": 50, "price": 8900},
        {"name": "Balcony", "rows": 15, "seats_per_row": 60, "price": 6500},
        {"name": "Gallery", "rows": 10, "seats_per_row": 110, "price": 3900}],
        queue={"enabled": False}, hold_ttl_s=300, max_seats_per_user=6)
    holds = dict(common, name=f"edge-bench holds {tag}", sale_opens_at=iso(now),
                 sections=[{"name": "Hall", "rows": 100, "seats_per_row": 1000, "price": 5000}],
                 queue={"enabled": False}, hold_ttl_s=hold_ttl_s, max_seats_per_user=100)
    waiting = dict(common, name=f"edge-bench waiting {tag}",
                   sale_opens_at=iso(now + datetime.timedelta(hours=2)),
                   sections=[{"name": "Hall", "rows": 10, "seats_per_row": 100, "price": 5000}],
                   queue={"enabled": True, "admit_per_s": 1, "max_active": 1}, hold_ttl_s=300,
                   max_seats_per_user=6)
    ids = {}
    for key, spec in (("READS_EVENT", reads), ("HOLDS_EVENT", holds), ("WS_EVENT", waiting)):
        status, reply = call(url, "POST", "/api/v1/admin/events", spec, token)
        ids[key] = must(status, reply, (201,), f"creating {spec['name']}")["event_id"]
    return ids


def in_parallel(what, items, work, threads):
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(work, items))
    took = time.monotonic() - start
    print(f"setup: {what}: {len(items)} in {took:.1f} s ({len(items) / max(took, 1e-9):.0f}/s)",
          file=sys.stderr)
    return results


def admit(url, args):
    with open(os.path.join(args.out, "events.env")) as f:
        event = dict(line.strip().split("=", 1) for line in f if "=" in line)["HOLDS_EVENT"]
    with open(os.path.join(args.out, "users.txt")) as f:
        tokens = [line.strip() for line in f if line.strip()][:args.users]

    def join(token):
        status, reply = call(url, "POST", f"/api/v1/events/{event}/queue", token=token)
        reply = must(status, reply, (200, 201), "join the holds event")
        if not reply.get("admission_token"):
            raise SystemExit(f"setup: join without a waiting room gave no admission token: {reply}")
        return reply["admission_token"]

    admissions = in_parallel("admissions (holds event)", tokens, join, args.threads)
    with open(os.path.join(args.out, "hold-users.txt"), "w") as f:
        f.write("".join(f"{token} {admission}\n" for token, admission in zip(tokens, admissions)))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--ws-users", type=int, default=0)
    parser.add_argument("--hold-ttl-s", type=int, default=3)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--admit", action="store_true")
    args = parser.parse_args()
    url = args.url.rstrip("/")
    if args.admit:
        return admit(url, args)
    tag = f"{int(time.time())}-{os.getpid()}"  # unique per run: e-mails and event names
    status, reply = call(url, "POST", "/api/v1/auth/login", {
        "email": os.environ.get("TIKETI_ADMIN_EMAIL", "admin@tiketi.local"),
        "password": os.environ.get("TIKETI_ADMIN_PASSWORD", "tiketi-admin")})
    admin = must(status, reply, (200,), "admin login")["access_token"]
    events = create_events(url, admin, args.hold_ttl_s, tag)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "events.env"), "w") as f:
        for key, value in events.items():
            f.write(f"{key}={value}\n")

    count = max(args.users, args.ws_users)
    password = "edge-bench-" + tag

    def sign_up(i):
        email = f"eb-{tag}-{i}@bench.tiketi.test"
        status, reply = call(url, "POST", "/api/v1/auth/signup",
                             {"email": email, "password": password, "name": f"Bench {i}"})
        must(status, reply, (201,), f"sign-up {email}")
        return email

    def log_in(email):
        status, reply = call(url, "POST", "/api/v1/auth/login", {"email": email, "password": password})
        return must(status, reply, (200,), f"login {email}")["access_token"]

    emails = in_parallel("sign-ups", list(range(count)), sign_up, args.threads)
    tokens = in_parallel("logins", emails, log_in, args.threads)
    with open(os.path.join(args.out, "users.txt"), "w") as f:
        f.write("".join(token + "\n" for token in tokens))
    with open(os.path.join(args.out, "ws-tokens.txt"), "w") as f:
        f.write("".join(token + "\n" for token in tokens[:args.ws_users]))
    status, seatmap = call(url, "GET", f"/api/v1/events/{events['HOLDS_EVENT']}/seats")
    seats = [seat["seat_id"] for seat in must(status, seatmap, (200,), "holds seat map")["seats"]]
    with open(os.path.join(args.out, "seats.txt"), "w") as f:
        f.write("\n".join(seats) + "\n")
    print(f"setup: events {events}, {len(tokens)} users, {len(seats)} seats to hold", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
