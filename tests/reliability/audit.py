"""audit.py — the consistency audit after a fault (the checks of perf/rush/rush_audit.c, which
is linked into the rush load generator and takes its in-memory user records, so it cannot be
run on its own; these are the same checks, plus the ones about holds and money).

Witnesses, read once the sagas have come to rest and the holds have ended (or the wait ran
out, which fails the audit):
  - the engine: the event's seat map through the edge (event-svc asks the owning seatcored for
    its availability bitmap, 2 bits a seat) and the owning shard's own per-event gauges
    (tiketi_seats{event,state} on its /metrics);
  - the system of record: PostgreSQL (reservations, reservation_seats, sagas, payments) via psql;
  - the money: the gateway simulator's ledger (charges and refunds per payment);
  - the clients: what each purchase attempt saw (load.Purchase).

Checks (each counts violations; the audit passes only if all are zero):
  settled              every saga of the event rests; no reservation pending/paying; the engine
                       holds no seat (every hold ended: confirmed, released or expired)
  no_double_sale       no seat confirmed twice in PostgreSQL; no seat in two acknowledged sales;
                       sold <= capacity in the engine
  acknowledged_kept    every 200 "confirmed" the clients saw: confirmed in PostgreSQL with exactly
                       its seats, and those seats sold in the engine
  engine_equals_pg     the engine's sold seats are exactly PostgreSQL's confirmed seats
  holds_ended          every hold a client got (201) ended confirmed, released, expired or
                       cancelled (its PostgreSQL row, else the API's view of it); a declined,
                       released or abandoned one was not sold
  capacity             free + held + sold == capacity, in the seat map and in the shard's gauges,
                       and both agree
  money                per reservation, charged - refunded at the gateway == its amount if
                       confirmed, else 0 (no charge without a sale, no sale without a charge)"""
import json
import subprocess
import time
import urllib.parse
import urllib.request

from load import Api

RESTING_SAGAS = {"confirmed", "released", "refunded", "cancelled"}
FINAL_RESERVATIONS = {"confirmed", "released", "expired", "cancelled"}


def reservation_uuid(rid):
    """rsv_<16 hex event><16 hex hold> -> EEEEEEEE-EEEE-EEEE-HHHH-HHHHHHHHHHHH (reservation.md)."""
    h = rid[4:]
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def psql(url, sql, *params):
    """Rows of a query (tab-separated text), parameters as psql variables (:'p1' ...)."""
    argv = ["psql", url, "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1"]
    for i, p in enumerate(params, 1):
        argv += ["-v", f"p{i}={p}"]
    r = subprocess.run(argv, input=sql.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.decode(errors='replace').strip()}")
    return [line.split("\t") for line in r.stdout.decode().splitlines() if line]


def shard_seats(stack, event):
    """(shard, {state: count}) from the shard that reports the event, or (None, {})."""
    for shard in range(len(stack.shard_ports)):
        try:
            with urllib.request.urlopen(stack.shard_metrics_url(shard), timeout=5) as response:
                text = response.read().decode()
        except Exception:
            continue
        counts = {}
        prefix = f'tiketi_seats{{event="{event}",state="'
        for line in text.splitlines():
            if line.startswith(prefix):
                counts[line[len(prefix):].split('"', 1)[0]] = int(float(line.split()[-1]))
        if counts:
            return shard, counts
    return None, {}


class Auditor:
    def __init__(self, stack, admin_token, log=print):
        self.stack, self.admin_token, self.log = stack, admin_token, log
        self.api = Api("127.0.0.1", stack.http_port, timeout=30)

    # -- reads -------------------------------------------------------------------------------
    def seat_map(self, event):
        for _ in range(60):
            st, body, _ = self.api.call("GET", f"/api/v1/events/{event}/seats", token=self.admin_token)
            if st == 200:
                return {int(s["seat_id"]): s["status"] for s in body["seats"]}
            time.sleep(0.5)
        raise RuntimeError(f"the seat map of event {event} could not be read (last status {st})")

    def pg_state(self, event):
        """The event's reservations, seats, sagas and payments, read in one psql session and one
        read-only snapshot (one process instead of four: the audit runs after every scenario)."""
        rows = psql(self.stack.pg_url, """
            BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
            SELECT 'R', id, status, amount_cents FROM reservations WHERE event_id = :'p1';
            SELECT 'S', reservation_id, seat, confirmed FROM reservation_seats WHERE event_id = :'p1';
            SELECT 'G', s.reservation_id, s.state FROM sagas s JOIN reservations r ON r.id = s.reservation_id
             WHERE r.event_id = :'p1';
            SELECT 'P', p.id, p.reservation_id, p.status FROM payments p JOIN reservations r
                ON r.id = p.reservation_id WHERE r.event_id = :'p1';
            COMMIT;""", event)
        of = lambda tag: [r[1:] for r in rows if r[0] == tag]  # noqa: E731
        reservations = {r[0]: {"status": r[1], "amount": int(r[2])} for r in of("R")}
        sagas = {r[0]: r[1] for r in of("G")}
        return reservations, of("S"), sagas, of("P")

    def ledger(self, payment_id):
        url = f"{self.stack.gateway_url}/v1/_sim/ledger?" + urllib.parse.urlencode({"payment_id": payment_id})
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        return int(body.get("charged_amount", 0)), int(body.get("refunded_amount", 0))

    # -- settle ------------------------------------------------------------------------------
    def settle(self, event, timeout_s):
        """Waits until no saga of the event is in motion and the engine holds no seat."""
        deadline = time.monotonic() + timeout_s
        last = None
        while True:
            try:
                moving = psql(self.stack.pg_url,
                              "SELECT count(*) FROM sagas s JOIN reservations r ON r.id = s.reservation_id "
                              "WHERE r.event_id = :'p1' AND s.state NOT IN ('confirmed','released','refunded',"
                              "'cancelled')", event)[0][0]
                _, counts = shard_seats(self.stack, event)
                last = (int(moving), counts.get("held"))
                if last == (0, 0):
                    return True, last
            except Exception as error:
                last = repr(error)
            if time.monotonic() > deadline:
                return False, last
            time.sleep(0.25)

    # -- the audit ---------------------------------------------------------------------------
    def audit(self, event, capacity, purchases, settle_s):
        checks = {name: [] for name in ("settled", "no_double_sale", "acknowledged_kept", "engine_equals_pg",
                                        "holds_ended", "capacity", "money")}
        timing, t = {}, time.monotonic()
        settled, last = self.settle(event, settle_s)
        timing["settle"], t = time.monotonic() - t, time.monotonic()
        if not settled:
            checks["settled"].append(f"not at rest after {settle_s}s (sagas moving, seats held) = {last}")
        reservations, seat_rows, sagas, payments = self.pg_state(event)
        timing["postgres"], t = time.monotonic() - t, time.monotonic()
        engine = self.seat_map(event)
        timing["engine"], t = time.monotonic() - t, time.monotonic()
        shard, counts = shard_seats(self.stack, event)

        for rid, state in sagas.items():
            if state not in RESTING_SAGAS:
                checks["settled"].append(f"saga {rid} is {state}")
        for rid, r in reservations.items():
            if r["status"] in ("pending", "paying"):
                checks["settled"].append(f"reservation {rid} is {r['status']}")
        held = sorted(s for s, st in engine.items() if st == "held")
        if held:
            checks["settled"].append(f"{len(held)} seats still held in the engine, e.g. {held[:5]}")

        pg_sold = {}
        for rid, seat, confirmed in seat_rows:
            if confirmed == "t":
                pg_sold.setdefault(int(seat), []).append(rid)
        for seat, owners in pg_sold.items():
            if len(owners) > 1:
                checks["no_double_sale"].append(f"seat {seat} confirmed in {owners}")
        for seat, owners in pg_sold.items():
            if reservations.get(owners[0], {}).get("status") not in ("confirmed", "cancelling"):
                checks["engine_equals_pg"].append(f"seat {seat} confirmed in reservation {owners[0]} that is "
                                                  f"{reservations.get(owners[0], {}).get('status')}")
        engine_sold = {s for s, st in engine.items() if st == "sold"}
        if len(engine_sold) > capacity or len(engine) != capacity:
            checks["no_double_sale"].append(f"engine: {len(engine_sold)} sold of {len(engine)} seats, capacity "
                                            f"{capacity}")
        only_engine, only_pg = sorted(engine_sold - set(pg_sold)), sorted(set(pg_sold) - engine_sold)
        if only_engine:
            checks["engine_equals_pg"].append(f"{len(only_engine)} seats sold in the engine only: {only_engine[:8]}")
        if only_pg:
            checks["engine_equals_pg"].append(f"{len(only_pg)} seats confirmed in PostgreSQL only: {only_pg[:8]}")

        seats_of = {}
        for rid, seat, _ in seat_rows:
            seats_of.setdefault(rid, set()).add(int(seat))
        acked_seats = {}
        for p in purchases:
            if p.outcome != "confirmed":
                continue
            uid = reservation_uuid(p.reservation)
            mine = {int(s) for s in p.seats}
            row = reservations.get(uid)
            if row is None or row["status"] != "confirmed":
                checks["acknowledged_kept"].append(f"{p.reservation} acknowledged but PostgreSQL has "
                                                   f"{row and row['status']}")
            if seats_of.get(uid, set()) != mine or any(uid not in pg_sold.get(s, []) for s in mine):
                checks["acknowledged_kept"].append(f"{p.reservation}: seats {sorted(mine)} vs PostgreSQL "
                                                   f"{sorted(seats_of.get(uid, set()))}")
            for s in mine:
                if engine.get(s) != "sold":
                    checks["acknowledged_kept"].append(f"{p.reservation}: seat {s} is {engine.get(s)} in the engine")
                if s in acked_seats:
                    checks["no_double_sale"].append(f"seat {s} acknowledged to {acked_seats[s]} and {p.reservation}")
                acked_seats[s] = p.reservation

        self._holds_ended(purchases, reservations, checks)
        timing["holds"], t = time.monotonic() - t, time.monotonic()

        states = {"free": 0, "held": 0, "sold": 0}
        for st in engine.values():
            states[st] = states.get(st, 0) + 1
        if sum(states.values()) != capacity:
            checks["capacity"].append(f"seat map: {states} does not add up to {capacity}")
        if shard is None:
            checks["capacity"].append("no shard reports the event in tiketi_seats")
        else:
            if sum(counts.values()) != capacity:
                checks["capacity"].append(f"shard {shard} gauges {counts} do not add up to {capacity}")
            if {k: counts.get(k, 0) for k in states} != states:
                checks["capacity"].append(f"shard {shard} gauges {counts} != seat map {states}")

        charged = {}
        for pid, rid, _status in payments:
            c, r = self.ledger(pid)
            charged[rid] = charged.get(rid, 0) + c - r
        for rid, r in reservations.items():
            want = r["amount"] if r["status"] == "confirmed" else 0
            if charged.get(rid, 0) != want:
                checks["money"].append(f"reservation {rid} ({r['status']}, {r['amount']}) is charged "
                                       f"{charged.get(rid, 0)} net")

        timing["money"] = time.monotonic() - t
        summary = {"sold_engine": len(engine_sold), "sold_pg": len(pg_sold), "acknowledged": len(acked_seats),
                   "reservations_pg": len(reservations), "held": len(held), "shard": shard,
                   "purchases": len(purchases), "timing_s": {k: round(v, 2) for k, v in timing.items()}}
        return checks, summary

    def _holds_ended(self, purchases, reservations, checks):
        for p in purchases:
            if p.reservation is None:
                continue
            uid = reservation_uuid(p.reservation)
            row = reservations.get(uid)
            status = row["status"] if row else self._api_status(p)
            if status not in FINAL_RESERVATIONS and status != "forgotten":
                checks["holds_ended"].append(f"{p.reservation} ({p.outcome}) ended {status}")
            if p.outcome in ("declined", "released", "abandoned", "expired") and status == "confirmed":
                checks["holds_ended"].append(f"{p.reservation} was {p.outcome} for the client but is confirmed")

    def _api_status(self, p):
        """The API's view of a hold that never reached PostgreSQL (never paid): expired or
        cancelled once it ended. Mapped onto the PostgreSQL names."""
        for _ in range(20):
            st, body, resp = self.api.call("GET", f"/api/v1/reservations/{p.reservation}", token=p.token)
            if st == 200:
                return {"cancelled": "released"}.get(body.get("status"), body.get("status"))
            if st == 429:
                time.sleep(float((resp and resp.getheader("Retry-After")) or 1))
                continue
            if st == 404:
                return "forgotten"  # the engine reused the ended hold's slot: it is not live
            time.sleep(0.5)
        return f"unreadable ({st})"
