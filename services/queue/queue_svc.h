/* queue_svc.h — queue-svc's shared state, limits and internal interfaces.
 *
 * queue-svc is thin: the waiting room itself lives in the engine (seatcored);
 * this daemon turns string ids into engine calls (WaitingRoom Join / Status /
 * Leave / Heartbeat / Watch) and runs the feed: one publisher thread that, for
 * each queued event whose Redis lease it holds, reads the engine's queue head and
 * admissions and PUBLISHes them on tiketi:queue:<event_id> so that edges push
 * positions to their WebSocket clients without polling per client.
 *
 * Threads: gRPC completion-queue threads run the handlers, which never block
 * (engine calls are asynchronous, on a client loop); the Redis jobs of Leave run
 * on the svc_workers pool; the watcher thread paces Watch streams; the catalog
 * thread reads the list of queued events from PostgreSQL; the feed thread
 * publishes. Every table is sized from the limits below at start. */
#ifndef QUEUE_SVC_H
#define QUEUE_SVC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue_format.h"
#include "rpc_client.h"
#include "rpc_server.h"
#include "svc_daemon.h"
#include "svc_workers.h"

/* ---- limits (units last) ---- */
#define QUEUE_FEED_EVENTS_MAX_MAX 16384u   /* ceiling of --feed-events-max */
#define QUEUE_WATCHERS_MAX_MAX (1u << 20)  /* ceiling of --watchers-max */
#define QUEUE_FEED_PAGE_ADMISSIONS_MAX 1000u /* ListAdmissions' own bound per call */
#define QUEUE_FEED_PAGES_PER_ROUND_MAX 8u  /* per event per round: 8000 admissions */
#define QUEUE_WATCH_ROUND_MS 50u           /* the watcher thread's pace */
#define QUEUE_REPLICA_ID_BYTES 64u
#define QUEUE_URL_BYTES 1024u
#define QUEUE_SHARD_ADDRESS_BYTES 256u
#define QUEUE_KEY_RETENTION_MS (24u * 3600u * 1000u) /* next_rank / left keys of an idle event */

_Static_assert(QUEUE_FEED_PAGE_ADMISSIONS_MAX <= 1000u, "ListAdmissions answers at most 1000 per call");
_Static_assert(QUEUE_WATCH_ROUND_MS * 4u <= 1000u, "the watcher paces several rounds per second");

struct queue_config {
    struct svc_common_config common;
    char redis_url[QUEUE_URL_BYTES];
    char database_url[QUEUE_URL_BYTES];
    char shards[RPC_SHARDS_MAX][QUEUE_SHARD_ADDRESS_BYTES];
    uint32_t shard_count;
    uint32_t feed_interval_ms;   /* one publisher round */
    uint32_t head_every_ms;      /* longest gap between two head messages, changed or not */
    uint32_t lease_ms;           /* a dead publisher's events move after this */
    uint32_t catalog_refresh_ms; /* re-read the queued events */
    uint32_t watch_interval_ms;  /* one Watch view per stream at least this often */
    uint32_t watchers_max;
    uint32_t feed_events_max;
    uint32_t engine_timeout_ms;
    uint32_t redis_timeout_ms;
    char replica_id[QUEUE_REPLICA_ID_BYTES];
    bool check_only;
};

/* 0: run; 1: exit 0 (help printed); -1: exit 2 (error printed). */
int queue_config_parse(struct queue_config *config, int argc, char **argv);

/* Figures for /metrics, bumped with relaxed atomics. */
struct queue_counters {
    _Atomic uint64_t published_head, published_admitted, published_left;
    _Atomic uint64_t feed_engine_errors, feed_redis_errors, left_publish_errors;
    _Atomic uint64_t leases_acquired, leases_lost;
    _Atomic uint64_t catalog_refreshes, catalog_errors;
    _Atomic uint32_t leases_held, catalog_events, watch_streams;
};


struct queue_catalog;
struct queue_feed;
struct queue_watch;

struct queue_svc {
    const struct queue_config *config;
    struct rpc_router *router;
    struct rpc_client_loop *loop;
    struct svc_workers *workers; /* runs Leave's Redis publish (never a handler thread) */
    redisContext **left_redis;   /* one per worker, opened on first use, reopened after an error */
    struct queue_redis_address redis_address;
    struct queue_catalog *catalog;
    struct queue_feed *feed;
    struct queue_watch *watch;
    _Atomic(struct rpc_server *) server; /* set once serving: tells shutdown from a cancel */
    struct queue_counters counters;
};

/* queue_handlers.c: the WaitingRoom method table. */
extern const struct rpc_method queue_methods[];
extern const uint32_t queue_method_count;
/* Engine call options for a handler's call: its request id, trace, and a
 * deadline of min(client's, engine_timeout_ms). */
struct rpc_call_options queue_engine_options(const struct queue_svc *svc, const struct rpc_call *call);

/* queue_watch.c: Watch streams, paced by one thread. */
struct queue_watch *queue_watch_start(struct queue_svc *svc);
void queue_watch_add(struct queue_watch *watch, struct rpc_call *call, uint64_t event_id, uint64_t user_id);
/* After the gRPC server stopped (every stream has ended by then). */
void queue_watch_stop(struct queue_watch *watch);

/* queue_catalog.c: the queued events, from PostgreSQL, refreshed by a thread. */
struct queue_catalog *queue_catalog_start(struct queue_svc *svc);
void queue_catalog_stop(struct queue_catalog *catalog);
/* Copies up to max event ids; returns the count. */
uint32_t queue_catalog_events(struct queue_catalog *catalog, uint64_t *ids, uint32_t max);

/* queue_feed.c: the publisher thread. */
struct queue_feed *queue_feed_start(struct queue_svc *svc);
/* Stops the thread and hands its leases back (so another replica takes over at once). */
void queue_feed_stop(struct queue_feed *feed);

/* queue_redis.c: connections and the feed's scripts. */
/* NULL on failure, with the reason in err. */
redisContext *queue_redis_connect(const struct queue_redis_address *address, uint32_t timeout_ms, char *err,
                                  size_t err_len);
/* Lua: lease check + publishes + next_rank + lease renewal + left trim, atomically. */
extern const char queue_script_publish[];
/* Lua: delete the lease if it is ours. */
extern const char queue_script_release[];
/* Lua: remember a left rank and publish its message. */
extern const char queue_script_left[];

/* queue_metrics.c */
void queue_metrics_write(FILE *out, void *ctx);

#endif
