/* event_metrics.c — event-svc's own figures in Prometheus text (the rpc layer
 * adds per-method call counts and latencies, server and client side).
 *
 * Names are documented in docs/services/event.md. */
#include <stdio.h>

#include "event_svc.h"

static void counter(FILE *out, const char *name, const char *help, const _Atomic uint64_t *value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
            (unsigned long long)atomic_load_explicit(value, memory_order_relaxed));
}

void event_metrics_write(FILE *out, void *ctx)
{
    const struct event_metrics *m = &((const struct event_svc *)ctx)->metrics;
    counter(out, "tiketi_event_seatmap_cache_hits_total", "Seat catalogs served from Redis.", &m->cache_hits);
    counter(out, "tiketi_event_seatmap_cache_misses_total", "Seat catalogs read from PostgreSQL (not cached).",
            &m->cache_misses);
    counter(out, "tiketi_event_seatmap_cache_errors_total",
            "Redis failures or unreadable entries (the catalog was read from PostgreSQL).", &m->cache_errors);
    counter(out, "tiketi_event_seatmap_cache_stores_total", "Seat catalogs stored in Redis.", &m->cache_stores);
    counter(out, "tiketi_event_seatmap_cache_invalidations_total",
            "Cached seat catalogs deleted because a newer catalog version was stored.", &m->cache_invalidations);
    counter(out, "tiketi_event_created_total", "Events created (catalog and engine).", &m->created);
    counter(out, "tiketi_event_create_refused_total", "CreateEvent requests refused as invalid.", &m->create_refused);
    counter(out, "tiketi_event_create_failed_total",
            "CreateEvent failures (database or engine); nothing was left behind.", &m->create_failed);
    counter(out, "tiketi_event_pending_finished_total", "Half-made events found in the engine and marked ready.",
            &m->pending_ready);
    counter(out, "tiketi_event_pending_removed_total", "Half-made events not in the engine, removed.",
            &m->pending_deleted);
}
