#!/usr/bin/env python3
"""report.py — edge-bench's table: reads the "result KEY VALUE" lines each measurement left in
DIR/<name>.out (and the load average in DIR/<name>.load), prints one Markdown table with
PASS/MISS per target of issue 5, and writes the same figures as JSON with --json.

Targets (2 cores, load generator included):
  holds      >= 10,000 holds/s end to end, with p99 < 50 ms
  ws count   100,000 concurrent waiting WebSockets on one edge
  ws memory  < 10 KB (10,000 bytes) of edge memory per connection
  ws push    each waiting client gets its position every second (every client, every
             whole second of the window)
A row whose measurement did not run says so and judges nothing."""
import argparse
import json
import os
import sys

HOLDS_PER_S_MIN = 10000
HOLD_P99_MS_MAX = 50.0
WS_TARGET = 100000
WS_BYTES_MAX = 10000


def results(directory, name):
    path = os.path.join(directory, name + ".out")
    if not os.path.exists(path):
        return None
    values = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "result":
                values[parts[1]] = float(parts[2])
    if not values:
        return None  # the measurement failed (its .err says why)
    load_path = os.path.join(directory, name + ".load")
    if os.path.exists(load_path):
        with open(load_path) as f:
            values["load"] = f.read().strip()
    return values


def verdict(ok):
    return "PASS" if ok else "MISS"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--ws-clients", type=int, required=True)
    parser.add_argument("--fd-limit", type=int, required=True)
    parser.add_argument("--hold-connections", type=int, required=True)
    parser.add_argument("--read-connections", type=int, required=True)
    parser.add_argument("--seconds", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []  # (row, figure, target, verdict, load)

    for name, label in (("events", "GET /api/v1/events?limit=20"),
                        ("seatmap", "GET /api/v1/events/{id}/seats (3,000 seats, gzip)")):
        r = results(args.dir, name)
        if r is None:
            continue
        figure = (f"{r['ok_per_s']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms "
                  f"({args.read_connections} conn, {int(r['non_2xx'])} non-2xx, "
                  f"{int(r['socket_errors'])} socket errors)")
        rows.append((label, figure, "-", "info", r.get("load", "")))

    h = results(args.dir, "holds")
    if h is not None:
        errors = int(h["requests"] - h.get("status_201", 0))
        others = ", ".join(f"{k[7:]}: {int(v)}" for k, v in sorted(h.items())
                           if k.startswith("status_") and k != "status_201")
        figure = (f"{h['holds_per_s']:,.0f} holds/s, p50 {h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms "
                  f"({args.hold_connections} conn, {args.users} users; {errors} not 201"
                  f"{' (' + others + ')' if others else ''})")
        ok = h["holds_per_s"] >= HOLDS_PER_S_MIN and h["p99_ms"] < HOLD_P99_MS_MAX
        rows.append(("POST /api/v1/events/{id}/holds, end to end", figure,
                     f">= {HOLDS_PER_S_MIN:,}/s, p99 < {HOLD_P99_MS_MAX:.0f} ms", verdict(ok), h.get("load", "")))

    w = results(args.dir, "ws")
    if w is not None:
        opened = int(w["opened"])
        note = "" if args.ws_clients >= WS_TARGET else (
            f"; asked {args.ws_clients:,}: one process is capped at {args.fd_limit:,} descriptors here")
        closed_1008 = int(w.get("closed_1008", 0))
        rows.append(("waiting WebSockets open on one edge",
                     f"{opened:,} opened, {int(w['failed']):,} failed, {closed_1008:,} closed 1008 by the edge, "
                     f"{int(w['judged']):,} open through the window{note}",
                     f"{WS_TARGET:,}", verdict(int(w["judged"]) >= WS_TARGET), w.get("load", "")))
        if w["rss_before_kib"] > 0:
            per = w["bytes_per_connection"]
            closed = int(w.get("closed_by_edge", 0))
            # Sockets the edge closed may still count in its RSS (the allocator keeps pages),
            # so with closures the figure per socket still open is an upper bound; the growth
            # over every socket ever opened is the lower one.
            lower = ((w["rss_end_kib"] - w["rss_before_kib"]) * 1024 / opened) if opened else 0
            extra = (f"; {closed:,} closed by the edge during the run: between {lower:,.0f} and {per:,.0f}"
                     if closed else "")
            rows.append(("edge memory per waiting WebSocket",
                         f"{per:,.0f} bytes (RSS {w['rss_before_kib'] / 1024:.1f} -> "
                         f"{w['rss_end_kib'] / 1024:.1f} MiB with {int(w['judged']):,} sockets open{extra})",
                         f"< {WS_BYTES_MAX:,} bytes", verdict(0 < per < WS_BYTES_MAX), w.get("load", "")))
        else:
            rows.append(("edge memory per waiting WebSocket", "not measured (no edge pid)",
                         f"< {WS_BYTES_MAX:,} bytes", "-", w.get("load", "")))
        judged = int(w["judged"])
        rows.append(("position every second, per client",
                     f"{w['positions_per_client_per_s']:.2f} positions/client/s; "
                     f"{w['every_second_pct']:.2f}% of {judged:,} clients had one in every second "
                     f"({w['covered_pct']:.3f}% of client-seconds)",
                     "every client, every second", verdict(judged > 0 and w["every_second_pct"] >= 100.0),
                     w.get("load", "")))

    if not rows:
        print("edge-bench: nothing was measured", file=sys.stderr)
        return 1
    print()
    print(f"edge-bench ({args.seconds} s per row; load generator on the same 2 cores)")
    print()
    print("| row | measured | target | verdict | load (1/5/15 min) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    for name in ("events", "seatmap", "holds", "ws"):
        path = os.path.join(args.dir, name + ".cpu")
        if os.path.exists(path):
            with open(path) as f:
                top = [line.split() for line in f if line.strip()]
            print(f"CPU seconds during {name}: " + ", ".join(f"{n} {float(c):.1f}" for c, n in top))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bench": "edge-bench", "rows": [
                dict(zip(("row", "measured", "target", "verdict", "load"), row)) for row in rows],
                "raw": {name: results(args.dir, name) for name in ("events", "seatmap", "holds", "ws")}},
                f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
