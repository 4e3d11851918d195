/* queue_metrics.c — queue-svc's figures in Prometheus text (queue_svc.h).
 *
 * Per-method call counts and latencies (server side, and client side for the
 * engine calls) come from rpc_metrics; these are the feed's and Watch's own. */
#include <stdio.h>

#include "queue_svc.h"

static void counter(FILE *out, const char *name, const char *help, const _Atomic uint64_t *value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
            (unsigned long long)atomic_load_explicit(value, memory_order_relaxed));
}

static void gauge(FILE *out, const char *name, const char *help, const _Atomic uint32_t *value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %u\n", name, help, name, name,
            atomic_load_explicit(value, memory_order_relaxed));
}

void queue_metrics_write(FILE *out, void *ctx)
{
    const struct queue_counters *c = &((const struct queue_svc *)ctx)->counters;
    fprintf(out, "# HELP tiketi_queue_feed_published_total Feed messages published, by type.\n"
                 "# TYPE tiketi_queue_feed_published_total counter\n");
    fprintf(out, "tiketi_queue_feed_published_total{type=\"head\"} %llu\n",
            (unsigned long long)atomic_load_explicit(&c->published_head, memory_order_relaxed));
    fprintf(out, "tiketi_queue_feed_published_total{type=\"admitted\"} %llu\n",
            (unsigned long long)atomic_load_explicit(&c->published_admitted, memory_order_relaxed));
    fprintf(out, "tiketi_queue_feed_published_total{type=\"left\"} %llu\n",
            (unsigned long long)atomic_load_explicit(&c->published_left, memory_order_relaxed));
    counter(out, "tiketi_queue_feed_engine_errors_total", "Feed calls to seatcored that failed.",
            &c->feed_engine_errors);
    counter(out, "tiketi_queue_feed_redis_errors_total", "Feed Redis connection or command failures.",
            &c->feed_redis_errors);
    counter(out, "tiketi_queue_left_publish_errors_total", "Leaves whose left message could not be published.",
            &c->left_publish_errors);
    counter(out, "tiketi_queue_feed_leases_acquired_total", "Event leases this replica took (start or handover).",
            &c->leases_acquired);
    counter(out, "tiketi_queue_feed_leases_lost_total", "Event leases this replica found taken by another.",
            &c->leases_lost);
    counter(out, "tiketi_queue_catalog_refreshes_total", "Successful reads of the queued-event list.",
            &c->catalog_refreshes);
    counter(out, "tiketi_queue_catalog_errors_total", "Failed reads of the queued-event list.", &c->catalog_errors);
    gauge(out, "tiketi_queue_feed_leases_held", "Events this replica publishes now.", &c->leases_held);
    gauge(out, "tiketi_queue_catalog_events", "Events with a waiting room in the catalog (as last read).",
          &c->catalog_events);
    gauge(out, "tiketi_queue_watch_streams", "Open Watch streams.", &c->watch_streams);
}
