/* seatcored.h — the engine daemon's shared state (internal). */
#ifndef SEATCORED_H
#define SEATCORED_H

#include "rpc_server.h"
#include "seatcore.h"
#include "seatcored_config.h"

struct seatcored_watch;

struct seatcored {
    struct sc_engine *engine;
    const struct seatcored_config *config;
    struct seatcored_watch *watch;
};

#define SEATCORED_BATCH_OPS_MAX 4096u
/* Below the rpc layer's per-call arena limit (8 MiB), with room for the request. */
#define SEATCORED_BATCH_ARENA_BYTES_MAX (6u << 20)
#define SEATCORED_IDEMPOTENCY_KEY_BYTES_MAX 255u

/* The SeatCore method table (seatcored_handlers.c). */
extern const struct rpc_method seatcored_methods[];
extern const uint32_t seatcored_method_count;

/* seatcored_watch.c: the streams, served by one watcher thread. */
struct seatcored_watch *seatcored_watch_start(struct seatcored *daemon, uint32_t watchers_max);
void seatcored_watch_stop(struct seatcored_watch *watch);
void seatcored_watch_availability(struct seatcored *daemon, struct rpc_call *call, uint64_t event_id,
                                  uint32_t interval_ms);
void seatcored_watch_queue(struct seatcored *daemon, struct rpc_call *call, uint64_t event_id, uint64_t user_id);

/* seatcored_metrics.c: the engine's metrics in Prometheus text. */
void seatcored_metrics_write(FILE *out, void *ctx);

#endif
