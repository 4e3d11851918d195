/* seatcored_config.h — the daemon's settings from flags and environment.
 *
 * Every setting has a flag and an environment variable (flags win), so the same
 * binary runs from the local stack (flags) and Kubernetes (ConfigMap env). Bad
 * values are refused at start with a message naming the setting. */
#ifndef SEATCORED_CONFIG_H
#define SEATCORED_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc_client.h"
#include "rpc_log.h"

struct seatcored_config {
    char listen[256];
    char metrics_listen[256];
    char data_dir[1024];
    bool memory_only;
    char token_key_file[1024];
    uint32_t shard_id;
    uint32_t shard_count;
    char shards[RPC_SHARDS_MAX][256];
    uint32_t events_max;
    uint32_t idempotency_keys;
    uint32_t cq_threads;
    uint32_t calls_max;
    uint32_t max_message_bytes;
    uint32_t snapshot_every_mb;
    uint32_t grace_ms;
    uint32_t watchers_max;
    uint32_t tick_ms;
    enum rpc_log_level log_level;
    bool check_only; /* --check-config: validate and exit */
};

/* 0: run; 1: exit 0 (help printed); -1: exit 2 (error printed to stderr). */
int seatcored_config_parse(struct seatcored_config *config, int argc, char **argv);

#endif
