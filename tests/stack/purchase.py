#!/usr/bin/env python3
"""purchase.py — buys a ticket through the edge of a running local stack, or
checks that an earlier purchase is still there.

  purchase.py buy STATEFILE     sign up, join the demo event's waiting room, hold
                                two seats, pay with tok_approve; write what was
                                bought to STATEFILE
  purchase.py check STATEFILE   log in again, the reservation is confirmed and its
                                seats are sold on the seat map
Exit status 0 on success; every step prints one line."""
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

BASE = f"http://127.0.0.1:{os.environ.get('TIKETI_HTTP_PORT', '8080')}"


def call(method, path, body=None, token=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, {"detail": text.decode(errors="replace")}


def step(what, status, body, want):
    ok = status in want
    print(f"{'ok' if ok else 'FAIL'} - {what}: {status}" + ("" if ok else f" {body}"))
    if not ok:
        sys.exit(1)
    return body


def demo_event(token):
    body = step("list events", *call("GET", "/api/v1/events?q=demo", token=token), (200,))
    for event in body["events"]:
        if event["name"] == "TIKETI demo night":
            return event["event_id"]
    print("FAIL - the demo event is missing")
    sys.exit(1)


def buy(state_file):
    email = f"buyer-{uuid.uuid4().hex[:12]}@example.com"
    password = "correct horse battery"
    step("sign up", *call("POST", "/api/v1/auth/signup", {"email": email, "password": password, "name": "Buyer"}),
         (201,))
    tokens = step("log in", *call("POST", "/api/v1/auth/login", {"email": email, "password": password}), (200,))
    token = tokens["access_token"]
    event = demo_event(token)
    view = step("join the waiting room", *call("POST", f"/api/v1/events/{event}/queue", token=token), (200,))
    deadline = time.time() + 60
    while view["status"] != "admitted" and time.time() < deadline:
        time.sleep(0.5)
        view = step("waiting room status", *call("GET", f"/api/v1/events/{event}/queue", token=token), (200,))
    if view["status"] != "admitted":
        print("FAIL - not admitted within a minute")
        sys.exit(1)
    hold = step("hold 2 best seats", *call("POST", f"/api/v1/events/{event}/holds", {"count": 2}, token,
                                          {"X-Admission-Token": view["admission_token"],
                                           "Idempotency-Key": str(uuid.uuid4())}), (201,))
    paid = step("pay", *call("POST", f"/api/v1/reservations/{hold['reservation_id']}/payment",
                             {"method": "card", "card_token": "tok_approve"}, token,
                             {"Idempotency-Key": str(uuid.uuid4())}), (200,))
    if paid.get("status") != "confirmed":
        print(f"FAIL - payment answered {paid}")
        sys.exit(1)
    with open(state_file, "w") as out:
        json.dump({"email": email, "password": password, "event": event,
                   "reservation": hold["reservation_id"], "seats": hold["seat_ids"]}, out)
    print(f"ok - bought seats {hold['seat_ids']} as reservation {hold['reservation_id']}")


def check(state_file):
    with open(state_file) as source:
        bought = json.load(source)
    tokens = step("log in again", *call("POST", "/api/v1/auth/login",
                                        {"email": bought["email"], "password": bought["password"]}), (200,))
    token = tokens["access_token"]
    reservation = step("the reservation", *call("GET", f"/api/v1/reservations/{bought['reservation']}",
                                                token=token), (200,))
    if reservation["status"] != "confirmed":
        print(f"FAIL - the reservation is {reservation['status']}, not confirmed")
        sys.exit(1)
    seats = step("the seat map", *call("GET", f"/api/v1/events/{bought['event']}/seats", token=token), (200,))
    status = {seat["seat_id"]: seat["status"] for seat in seats["seats"]}
    for seat in bought["seats"]:
        if status.get(seat) != "sold":
            print(f"FAIL - seat {seat} is {status.get(seat)}, not sold")
            sys.exit(1)
    print(f"ok - after down and up, reservation {bought['reservation']} is confirmed and its seats are sold")


if __name__ == "__main__":
    {"buy": buy, "check": check}[sys.argv[1]](sys.argv[2])
