/* reservation_config.h — reservation-svc's settings from flags and environment
 * (RESERVATION_*; flags win). Bad values are refused at start, naming the setting. */
#ifndef RESERVATION_CONFIG_H
#define RESERVATION_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc_client.h"
#include "svc_daemon.h"

struct reservation_config {
    struct svc_common_config common;
    char database_url[1024];
    char redis_url[256];
    uint32_t redis_timeout_ms;
    char shards[RPC_SHARDS_MAX][256];
    uint32_t shard_count;
    char payment_addr[256];
    char token_key_file[1024];
    bool admission_required;
    bool migrate;
    char migrations_dir[1024];
    char currency[8];
    uint32_t engine_timeout_ms;
    uint32_t payment_timeout_ms;
    uint32_t recovery_interval_ms;
    uint32_t recovery_batch;
    uint32_t recovery_backoff_max_ms;
    bool check_only;
};

/* 0: run; 1: exit 0 (help printed); -1: exit 2 (error printed to stderr). */
int reservation_config_parse(struct reservation_config *config, int argc, char **argv);

#endif
