/* event_svc.h — event-svc's shared state and the pieces its files share (internal).
 *
 * Shape of a call: a handler (on a gRPC completion-queue thread, never
 * blocking) validates the request, then submits a job to the worker pool; the
 * job runs on a worker thread with that worker's PostgreSQL and Redis
 * connections, calls the engine shards (synchronous calls for one shard,
 * asynchronous ones fanned out when a listing spans shards) and answers the
 * call with rpc_reply / rpc_fail. */
#ifndef EVENT_SVC_H
#define EVENT_SVC_H

#include <stdatomic.h>
#include <stdint.h>

#include "event_config.h"
#include "event_query.h"
#include "event_spec.h"
#include "rpc_client.h"
#include "rpc_server.h"
#include "svc_workers.h"
#include "tiketi/v1/event.pb-c.h"

struct event_metrics {
    _Atomic uint64_t cache_hits;
    _Atomic uint64_t cache_misses;
    _Atomic uint64_t cache_errors;   /* Redis unreachable or an unreadable entry: served from PostgreSQL */
    _Atomic uint64_t cache_stores;
    _Atomic uint64_t cache_invalidations; /* entries of older catalog versions deleted */
    _Atomic uint64_t created;
    _Atomic uint64_t create_refused;  /* invalid requests */
    _Atomic uint64_t create_failed;   /* database or engine failures: nothing left behind */
    _Atomic uint64_t pending_ready;   /* half-made events finished by the reconciler */
    _Atomic uint64_t pending_deleted; /* half-made events removed by the reconciler */
};

struct event_svc {
    const struct event_config *config;
    struct svc_workers *workers;
    struct rpc_router *router;
    struct rpc_client_loop *loop;
    struct event_metrics metrics;
    _Atomic bool reconcile_queued;
};

/* ---- errors (event_svc_util.c) ---- */
void event_error_set(struct rpc_error *error, grpc_status_code code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void event_fail(struct rpc_call *call, grpc_status_code code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Milliseconds the job may spend on one engine call: the configured bound,
 * cut to what is left of the caller's deadline (less a margin to answer). */
int64_t event_call_budget_ms(struct rpc_call *call, uint32_t bound_ms);

/* ---- the catalog rows as the replies need them ---- */
#define EVENT_STATUS_BYTES 16u
/* The schema bounds names in characters (200), the API in bytes: rows written
 * by other hands may carry 200 four-byte characters. */
#define EVENT_ROW_TEXT_BYTES (4u * EVENT_NAME_BYTES_MAX + 1u)

struct event_row {
    uint64_t id;
    char name[EVENT_ROW_TEXT_BYTES];
    char venue[EVENT_ROW_TEXT_BYTES];
    int64_t starts_at_us;
    int64_t sale_opens_at_us;
    char status[EVENT_STATUS_BYTES];
    uint32_t capacity;
    uint32_t shard;
    bool ready;
    uint32_t hold_ttl_s;
    uint32_t max_seats_per_user;
    bool queue_enabled;
    uint32_t admit_per_s;
    uint32_t max_active;
    uint64_t catalog_version;
};

/* Builds an EventSummary in the arena (strings copied); NULL when it is full. */
Tiketi__V1__EventSummary *event_summary_out(struct rpc_arena *arena, const struct event_row *row,
                                            uint32_t available);

/* ---- jobs (one file each) ---- */
void event_create_job(struct svc_worker *worker, void *ctx);   /* event_create.c */
void event_list_job(struct svc_worker *worker, void *ctx);     /* event_list.c */
void event_detail_job(struct svc_worker *worker, void *ctx);   /* event_detail.c */
void event_seatmap_job(struct svc_worker *worker, void *ctx);  /* event_seatmap.c */

struct event_job {
    struct event_svc *svc;
    struct rpc_call *call;
    uint64_t event_id;                  /* detail, seat map */
    struct event_spec *spec;            /* create: validated, in the call's arena */
    struct event_list_query *query;     /* list: validated, in the call's arena */
};

/* ---- reconciler (event_reconcile.c) ---- */
/* Finishes or removes up to max events a crash left 'pending'; returns how many
 * it resolved. Safe to run from many processes at once (advisory locks). */
uint32_t event_reconcile(struct event_svc *svc, PGconn *pg, uint32_t max);
void event_reconcile_job(struct svc_worker *worker, void *ctx);

/* ---- handlers (event_handlers.c) and metrics (event_metrics.c) ---- */
extern const struct rpc_method event_methods[];
extern const uint32_t event_method_count;
void event_metrics_write(FILE *out, void *ctx);

#endif
