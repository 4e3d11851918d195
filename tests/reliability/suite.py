"""suite.py — the fault-injection suite (issue 8, "Faults"): see tests/reliability/run.

For each scenario, on a fresh event of a private stack: start a steady purchase load
(load.py), wait until purchases succeed, inject the fault (faults.py), measure the time from
the moment the fault is over (for a kill: the kill) to the first purchase that was *started*
after it and acknowledged (200 confirmed), let the load run on a little, stop it, wait for
the holds and sagas to come to rest, and audit (audit.py). Four checks per scenario:
  <name>: purchases before the fault    (the load works; a scenario without sales proves nothing)
  <name>: the fault took effect         (it demonstrably hit: a fault that hit nothing proves nothing)
  <name>: service resumes within N s    (time to the first new purchase after the fault)
  <name>: audit                         (no double sale, no lost acknowledged sale, every hold
                                         ended, engine == PostgreSQL, capacity, money)
then, after the last scenario, every event is audited again (a later fault, a restart and WAL
replay, must not have changed an earlier event's sales) and every daemon must be healthy.
Once per run the audit is also shown forged sales and must report them (audit_control).
Ends with "N passed, M failed"."""
import argparse
import datetime
import json
import os
import signal
import sys
import time
import traceback
import zlib

import faults
from audit import Auditor, shard_seats
from load import Api, Load, Purchase
from stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack

HOLD_TTL_S = 6
SECTIONS = [{"name": n, "rows": 10, "seats_per_row": 50, "price": p}
            for n, p in (("Floor", 8900), ("Stalls", 6500), ("Balcony", 4900), ("Gallery", 2900))]
CAPACITY = sum(s["rows"] * s["seats_per_row"] for s in SECTIONS)


class Scenario:
    def __init__(self, name, fault, does, inject, bound_s, window_s):
        self.name, self.fault, self.does, self.inject, self.bound_s, self.window_s = (
            name, fault, does, inject, bound_s, window_s)


def scenarios(long, wal_tmpfs=True):
    k = 3 if long else 1  # --long: fault windows three times as long
    w = lambda s: s * k  # noqa: E731
    # --long runs payment-svc with its default 30 s breaker-open period (the short suite: 5 s)
    breaker = 25 if long else 0
    return [
        Scenario("seatcored-kill", "kill -9 seatcored (the event's shard)",
                 "supervise restarts it; recovery replays the WAL; holds/pays answer 503 meanwhile",
                 lambda st, ctx: faults.kill9(st, f"seatcored-{ctx['shard']}"), 20, 0),
        Scenario("reservation-kill", "kill -9 reservation-svc",
                 "supervise restarts it; the recovery loop resumes the sagas it left",
                 lambda st, ctx: faults.kill9(st, "reservation-svc"), 20, 0),
        Scenario("payment-kill", "kill -9 payment-svc",
                 "supervise restarts it; pays in flight are unknown and retried with the same keys",
                 lambda st, ctx: faults.kill9(st, "payment-svc"), 20, 0),
        Scenario("edge-kill", "kill -9 the edge",
                 "supervise restarts it; clients reconnect and retry with their idempotency keys",
                 lambda st, ctx: faults.kill9(st, "edge"), 20, 0),
        Scenario("postgres-pause", f"SIGSTOP PostgreSQL for {w(5)} s, then SIGCONT",
                 "pays wait for PostgreSQL, then complete (holds, the hot path, do not use it)",
                 lambda st, ctx: faults.pause(st, "postgres", w(5)), 15, w(5)),
        Scenario("redis-pause", f"SIGSTOP Redis for {w(5)} s, then SIGCONT",
                 "pending-hold records and caches time out (best effort); purchases go on",
                 lambda st, ctx: faults.pause(st, "redis", w(5)), 15, w(5)),
        Scenario("gateway-latency", f"gateway +1500 ms a request for {w(6)} s",
                 "pays take about 3 s longer (a charge is two gateway calls, prepare and confirm); a charge "
                 "that outlives its hold is refunded by the saga",
                 lambda st, ctx: faults.gateway(st, {"latency_ms": 1500}, w(6)), 15, w(6)),
        Scenario("gateway-errors", f"gateway answers 500 to half the requests for {w(6)} s",
                 "retries with the same keys; the breaker opens; pays answer 503 until it closes",
                 lambda st, ctx: faults.gateway(st, {"error_rate": 0.5}, w(6)), 20 + breaker, w(6)),
        Scenario("gateway-hang", f"gateway hangs every request for {w(6)} s",
                 "charges get no answer (outcome unknown: never compensated, retried with the same key); the "
                 "breaker may open; sagas resume once the gateway answers",
                 lambda st, ctx: faults.gateway(st, {"hang": True}, w(6)), 25 + breaker, w(6)),
        Scenario("gateway-drop", f"gateway carries out half the requests, then drops the answer, for {w(6)} s",
                 "the charge happened but payment-svc never heard: the retry with the same key is "
                 "answered from the gateway's idempotency table (one charge per reservation)",
                 lambda st, ctx: faults.gateway(st, {"drop": 0.5}, w(6)), 20 + breaker, w(6)),
        Scenario("wal-disk-full", f"fill the shard's WAL filesystem for {w(4)} s, then free it" if wal_tmpfs else
                 f"the shard's file size limit (RLIMIT_FSIZE) cut to its WAL segment's size for {w(4)} s",
                 "the WAL write fails (ENOSPC); the shard stops serving and exits 3; nothing unsynced is "
                 "acknowledged; the supervisor's restarts recover it once there is space" if wal_tmpfs else
                 "the WAL write fails (EFBIG, SIGXFSZ ends the shard); nothing unsynced is acknowledged; "
                 "the supervisor restarts it",
                 lambda st, ctx: faults.wal_disk_full(st, ctx["shard"], w(4)), 30, w(4)),
    ]


class Suite:
    def __init__(self, args, root):
        self.args, self.root = args, root
        self.passed = self.failed = 0
        self.rows = []
        self.events = []  # (scenario, event, purchases) for the final audit
        self.audit_controlled = False
        self.t0 = time.monotonic()

    def log(self, msg):
        print(f"[{time.monotonic() - self.t0:6.1f}s] {msg}", flush=True)

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok - {name}" + (f" ({detail})" if detail else ""), flush=True)
        else:
            self.failed += 1
            print(f"FAIL - {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    # ------------------------------------------------------------------------------------------
    def admin_login(self):
        api = Api("127.0.0.1", self.stack.http_port)
        for _ in range(60):
            st, body, _ = api.call("POST", "/api/v1/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            if st == 200:
                return body["access_token"]
            time.sleep(0.5)
        raise RuntimeError(f"admin login failed: {st} {body}")

    def create_event(self, name):
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
        body = {"name": f"reliability {name}", "venue": "Loopback Hall",
                "starts_at": iso(now + datetime.timedelta(days=7)),
                "sale_opens_at": iso(now - datetime.timedelta(minutes=1)), "sections": SECTIONS,
                "queue": {"enabled": False, "admit_per_s": 1000, "max_active": 10000},
                "hold_ttl_s": HOLD_TTL_S, "max_seats_per_user": 100}
        api = Api("127.0.0.1", self.stack.http_port)
        for _ in range(20):
            st, created, _ = api.call("POST", "/api/v1/admin/events", body, self.admin_token)
            if st == 201:
                event = created["event_id"]
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"creating the event failed: {st} {created}")
        for _ in range(100):
            shard, counts = shard_seats(self.stack, event)
            if shard is not None:
                return event, shard
            time.sleep(0.1)
        raise RuntimeError(f"no shard reports event {event}")

    def run_scenario(self, sc):
        self.log(f"--- {sc.name}: {sc.fault}")
        t_scenario = time.monotonic()
        event, shard = self.create_event(sc.name)
        load = Load(self.stack.edge_url, event, HOLD_TTL_S, clients=self.args.clients,
                    seed=zlib.crc32(sc.name.encode()), think_s=0.1)
        row = {"name": sc.name, "fault": sc.fault, "does": sc.does, "event": event, "shard": shard,
               "bound_s": sc.bound_s}
        load.start()
        try:
            warm = faults.wait_for(lambda: len(load.acknowledged()) >= 3, 45, 0.1)
            self.check(f"{sc.name}: purchases before the fault", warm, f"{len(load.acknowledged())} acknowledged")
            errors_before = dict(load.errors)
            restarts_before = len(self.stack.restarts())
            t_inject, t_lift, notes = sc.inject(self.stack, {"shard": shard})
            row["notes"] = notes
            self.log(f"{sc.name}: fault over after {t_lift - t_inject:.1f}s: {notes}")
            # A fault that hit nothing would make the rest of the scenario prove nothing.
            self.check(f"{sc.name}: the fault took effect", bool(notes.get("took_effect")), notes.get("effect", ""))

            def first_new_sale():
                new = [p for p in load.acknowledged() if p.t_start >= t_lift]
                return min((p.t_ack for p in new), default=None)
            faults.wait_for(lambda: first_new_sale() is not None, sc.bound_s + 25, 0.1)
            first = first_new_sale()
            recovery = None if first is None else first - t_lift
            row["recovery_s"] = None if recovery is None else round(recovery, 2)
            self.check(f"{sc.name}: service resumes within {sc.bound_s} s",
                       recovery is not None and recovery <= sc.bound_s,
                       "no purchase succeeded after the fault" if recovery is None else
                       f"first new purchase acknowledged {recovery:.2f} s after the fault")
            time.sleep(self.args.after_s)
        finally:
            stuck = load.stop()
        purchases = load.snapshot()
        row["errors"] = {k: v - errors_before.get(k, 0) for k, v in load.errors.items()
                         if v - errors_before.get(k, 0) > 0}
        row["restarts"] = self.stack.restarts()[restarts_before:]
        outcomes = {}
        for p in purchases:
            outcomes[p.outcome] = outcomes.get(p.outcome, 0) + 1
        row["outcomes"] = outcomes
        settle_s = HOLD_TTL_S + (60 if self.args.long else 25)  # --long: saga backoff up to 30 s
        checks, summary = self.auditor.audit(event, CAPACITY, purchases, settle_s)
        if stuck:
            checks["settled"].append(f"client threads still busy after the stop: {stuck}")
        row["audit"] = {k: len(v) for k, v in checks.items()}
        row["summary"] = summary
        bad = {k: v for k, v in checks.items() if v}
        self.check(f"{sc.name}: audit", not bad,
                   f"{summary['sold_engine']} seats sold, {len([p for p in purchases if p.outcome == 'confirmed'])} "
                   f"acknowledged sales, outcomes {outcomes}" if not bad else
                   "; ".join(f"{k}: {len(v)} ({' | '.join(v[:3])})" for k, v in bad.items()))
        row["audit_pass"] = not bad
        row["duration_s"] = round(time.monotonic() - t_scenario, 1)
        if not self.audit_controlled and not bad:
            self.audit_control(event, purchases)
        self.rows.append(row)
        self.events.append((sc.name, event, purchases))
        self.log(f"{sc.name}: outcomes {outcomes}; client errors during the run {row['errors']}; "
                 f"restarts {row['restarts']}")

    def audit_control(self, event, purchases):
        """The negative control: the same audit, told of two sales the system never made, must
        report both, so a green audit means something. One forged acknowledgement of a seat
        that is free (a lost sale) and one of a seat another acknowledged sale already has (a
        double sale), each under a reservation id that does not exist."""
        self.audit_controlled = True
        engine = self.auditor.seat_map(event)
        free = sorted(s for s, st in engine.items() if st == "free")
        sold = [p for p in purchases if p.outcome == "confirmed"]
        if not free or not sold:
            self.check("the audit detects forged sales", False, "no free seat or no sale to build them from")
            return
        forged = []
        for i, seats in enumerate(([free[0]], [int(sold[0].seats[0])])):
            p = Purchase(-1, "forged@example.com", event, sold[0].token)
            p.reservation = f"rsv_{int(event):016x}{0xfffffffffff0 + i:016x}"
            p.seats, p.outcome, p.hold_status, p.pay_status = [str(s) for s in seats], "confirmed", 201, 200
            forged.append(p)
        checks, _ = self.auditor.audit(event, CAPACITY, purchases + forged, 5)
        lost = [v for v in checks["acknowledged_kept"] if forged[0].reservation in v]
        double = [v for v in checks["no_double_sale"] if forged[1].reservation in v]
        self.check("the audit detects forged sales", bool(lost) and bool(double),
                   f"a lost sale: {len(lost)} findings, a double sale: {len(double)} findings")

    def final_checks(self):
        bad = []
        t = time.monotonic()
        for name, event, purchases in self.events:
            checks, summary = self.auditor.audit(event, CAPACITY, purchases, 5)
            self.log(f"final audit of {name}: {summary['timing_s']}")
            problems = {k: v for k, v in checks.items() if v}
            if problems:
                bad.append(f"{name} (event {event}): " + "; ".join(f"{k}: {v[:2]}" for k, v in problems.items()))
        self.check("every event audited again after the last fault", not bad,
                   " || ".join(bad) or f"{len(self.events)} events, {time.monotonic() - t:.1f} s")
        down = [d.name for d in self.stack.daemons if not d.healthy()]
        self.check("every daemon is healthy at the end", not down, f"not healthy: {down}" if down else "")

    def report(self):
        path = os.path.join(self.args.work, "results.json")
        with open(path, "w") as f:
            json.dump({"rows": self.rows, "long": self.args.long, "clients": self.args.clients,
                       "hold_ttl_s": HOLD_TTL_S, "wal_tmpfs": self.stack.wal_tmpfs,
                       "duration_s": round(time.monotonic() - self.t0, 1)}, f, indent=1, default=str)
        print("\n| scenario | recovery (bound) | audit | outcomes | client errors (count) |")
        print("|---|---|---|---|---|")
        for r in self.rows:
            rec = "none" if r.get("recovery_s") is None else f"{r['recovery_s']:.1f} s"
            errs = ", ".join(f"{k} ×{v}" for k, v in sorted(r.get("errors", {}).items())) or "none"
            print(f"| {r['name']} | {rec} (≤ {r['bound_s']} s) | {'pass' if r.get('audit_pass') else 'FAIL'} | "
                  f"{r.get('outcomes')} | {errs} |")
        print(f"(results: {path})")

    # ------------------------------------------------------------------------------------------
    def run(self):
        self.stack = Stack(self.root, self.args.bin, self.args.work, long=self.args.long, log=self.log)
        try:
            self.stack.up()
            self.check("the private stack starts", True, f"edge {self.stack.edge_url}")
            self.admin_token = self.admin_login()
            self.auditor = Auditor(self.stack, self.admin_token, log=self.log)
            chosen = scenarios(self.args.long, self.stack.wal_tmpfs)
            if self.args.only:
                chosen = [s for s in chosen if any(w in s.name for w in self.args.only.split(","))]
            for sc in chosen:
                try:
                    self.run_scenario(sc)
                except Exception as error:
                    self.check(f"{sc.name}: ran to the end", False, f"{error!r}")
                    traceback.print_exc()
            self.final_checks()
            self.report()
        except SystemExit as stop:  # SIGTERM: the run's time limit (run) or someone stopping it
            self.check("the suite ran to the end", False, f"stopped ({stop}) after {time.monotonic() - self.t0:.0f} s "
                       f"of at most {self.args.time_limit_s} s")
        except Exception as error:
            self.check("the suite ran", False, repr(error))
            traceback.print_exc()
        finally:
            if self.failed:
                for d in self.stack.daemons:
                    print(f"--- last lines of {d.name}.log")
                    print(self.stack.tail(d.name, 12))
            self.log("stopping the stack")
            self.stack.down()
        print(f"{self.passed} passed, {self.failed} failed")
        with open(os.path.join(self.args.work, "finished"), "w"):  # run's exit trap: the counts are out
            pass
        return 0 if self.failed == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="directory with the daemons (build/bin)")
    parser.add_argument("--work", required=True, help="work directory (state, logs, results.json)")
    parser.add_argument("--long", action="store_true", help="fault windows 3x, daemon defaults, 8 clients")
    parser.add_argument("--only", default="", help="comma-separated words: run only matching scenarios")
    parser.add_argument("--clients", type=int, default=0, help="concurrent clients (default 4; --long 8)")
    parser.add_argument("--time-limit-s", type=int, default=0, help="the run's bound, for the report (set by run)")
    parser.add_argument("--after-s", type=float, default=2.0, help="load after the recovery (default 2)")
    args = parser.parse_args()
    args.clients = args.clients or (8 if args.long else 4)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def on_signal(signum, _frame):
        raise SystemExit(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    return Suite(args, root).run()


if __name__ == "__main__":
    sys.exit(main())
