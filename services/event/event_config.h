/* event_config.h — event-svc's settings from flags and environment (EVENT_*).
 *
 * The common daemon settings (listen, metrics, threads, workers, grace, log
 * level) come from svc_common_flags; the rest are the service's own: where
 * PostgreSQL, Redis and the engine shards are, the migrations to apply at
 * start, the engine call deadlines, the cache lifetime and how often half-made
 * events are looked for. */
#ifndef EVENT_CONFIG_H
#define EVENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc_client.h"
#include "svc_daemon.h"

struct event_config {
    struct svc_common_config common;
    char database_url[1024];
    char redis_url[256];
    char shards[RPC_SHARDS_MAX][256];
    uint32_t shard_count;
    bool migrate;
    char migrations_dir[1024];
    uint32_t engine_timeout_ms;    /* reads: GetEvent, GetAvailability, Batch */
    uint32_t create_timeout_ms;    /* the engine's CreateEvent (durable write) */
    uint32_t cache_ttl_s;
    uint32_t reconcile_interval_s; /* 0: only at start */
    uint32_t max_message_bytes;
    uint32_t redis_timeout_ms;
    uint32_t client_threads;
    bool check_only;
};

/* 0: run; 1: exit 0 (help printed); -1: exit 2 (error printed to stderr). */
int event_config_parse(struct event_config *config, int argc, char **argv);

#endif
