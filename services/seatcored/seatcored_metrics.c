/* seatcored_metrics.c — the engine's figures in Prometheus text.
 *
 * Names are documented in docs/metrics.md; the Grafana dashboard and the alert
 * rules use them, so renaming one is a change to those too. */
#include <stdio.h>

#include "seatcored.h"

#define METRIC_EVENTS_LISTED_MAX 4096u

static void counter(FILE *out, const char *name, const char *help, uint64_t value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)value);
}

static void write_events(FILE *out, struct sc_engine *engine)
{
    static _Thread_local uint64_t ids[METRIC_EVENTS_LISTED_MAX];
    uint32_t count = sc_event_list(engine, ids, METRIC_EVENTS_LISTED_MAX);
    if (count > METRIC_EVENTS_LISTED_MAX)
        count = METRIC_EVENTS_LISTED_MAX;
    fprintf(out, "# HELP tiketi_seats Seats per event by state.\n# TYPE tiketi_seats gauge\n");
    for (uint32_t i = 0; i < count; i++) {
        struct sc_event_info info;
        if (sc_event_get(engine, ids[i], &info) != TK_OK)
            continue;
        fprintf(out, "tiketi_seats{event=\"%llu\",state=\"free\"} %u\n", (unsigned long long)ids[i], info.counts.free);
        fprintf(out, "tiketi_seats{event=\"%llu\",state=\"held\"} %u\n", (unsigned long long)ids[i], info.counts.held);
        fprintf(out, "tiketi_seats{event=\"%llu\",state=\"sold\"} %u\n", (unsigned long long)ids[i], info.counts.sold);
    }
    fprintf(out, "# HELP tiketi_active_holds Live holds per event.\n# TYPE tiketi_active_holds gauge\n");
    for (uint32_t i = 0; i < count; i++) {
        struct sc_event_info info;
        if (sc_event_get(engine, ids[i], &info) == TK_OK)
            fprintf(out, "tiketi_active_holds{event=\"%llu\"} %u\n", (unsigned long long)ids[i], info.active_holds);
    }
}

void seatcored_metrics_write(FILE *out, void *ctx)
{
    struct seatcored *daemon = ctx;
    struct sc_metrics m;
    sc_engine_metrics(daemon->engine, &m);
    counter(out, "tiketi_engine_holds_total", "Holds made.", m.holds);
    counter(out, "tiketi_engine_hold_conflicts_total", "Holds refused (seat taken, cap, bounds).", m.hold_conflicts);
    counter(out, "tiketi_engine_confirms_total", "Holds confirmed (seats sold).", m.confirms);
    counter(out, "tiketi_engine_releases_total", "Holds released by their owner.", m.releases);
    counter(out, "tiketi_engine_expirations_total", "Holds expired.", m.expirations);
    counter(out, "tiketi_engine_returns_total", "Sold seats returned (refunds).", m.returns);
    counter(out, "tiketi_engine_idempotent_replays_total", "Requests answered from the idempotency table.",
            m.idempotent_replays);
    counter(out, "tiketi_queue_joins_total", "Waiting-room joins.", m.queue_joins);
    counter(out, "tiketi_queue_admissions_total", "Waiting-room admissions.", m.queue_admissions);
    counter(out, "tiketi_queue_leaves_total", "Waiting-room leaves.", m.queue_leaves);
    counter(out, "tiketi_wal_records_total", "WAL records appended.", m.wal_records);
    counter(out, "tiketi_wal_bytes_total", "WAL bytes written.", m.wal_bytes);
    counter(out, "tiketi_wal_batches_total", "WAL group commits (write + fdatasync).", m.wal_batches);
    counter(out, "tiketi_snapshots_total", "Snapshots written.", m.snapshots);
    fprintf(out, "# HELP tiketi_events Events on this shard.\n# TYPE tiketi_events gauge\ntiketi_events %u\n",
            m.events);
    fprintf(out, "# HELP tiketi_engine_healthy 1 while the engine takes writes.\n# TYPE tiketi_engine_healthy gauge\n"
                 "tiketi_engine_healthy %d\n",
            sc_engine_health(daemon->engine) == TK_OK);
    fprintf(out, "# HELP tiketi_engine_op_seconds Engine operation latency on the caller's thread.\n"
                 "# TYPE tiketi_engine_op_seconds histogram\n");
    tk_histogram_write_prometheus(out, "tiketi_engine_op_seconds", "", m.op_latency_ns);
    if (m.wal_fsync_ns != NULL) {
        fprintf(out, "# HELP tiketi_wal_fsync_seconds Latency of one group commit (write + fdatasync).\n"
                     "# TYPE tiketi_wal_fsync_seconds histogram\n");
        tk_histogram_write_prometheus(out, "tiketi_wal_fsync_seconds", "", m.wal_fsync_ns);
    }
    write_events(out, daemon->engine);
}
