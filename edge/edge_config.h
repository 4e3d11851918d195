/* edge_config.h — the edge's settings: flags and EDGE_* environment.
 *
 * One table (edge_config.c) gives --help, --check-config and the environment
 * names; bounds come from edge_limits.h. TIKETI_HTTP_PORT (API.md's local stack
 * contract) or --port replaces the port of --listen. */
#ifndef EDGE_CONFIG_H
#define EDGE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc_log.h"

#define EDGE_ADDRESS_BYTES 256u
#define EDGE_PATH_BYTES 1024u

struct edge_config {
    char listen[EDGE_ADDRESS_BYTES];
    uint32_t port; /* 0: the port of listen */
    uint32_t threads;
    uint32_t rpc_threads;
    char auth_addr[EDGE_ADDRESS_BYTES];
    char event_addr[EDGE_ADDRESS_BYTES];
    char queue_addr[EDGE_ADDRESS_BYTES];
    char reservation_addr[EDGE_ADDRESS_BYTES];
    char payment_addr[EDGE_ADDRESS_BYTES];
    char seatcored_shards[4096];
    char redis_url[EDGE_ADDRESS_BYTES];
    char jwt_keys[2048];
    char jwt_issuer[129];
    char jwt_audience[129];
    uint32_t jwt_leeway_s;
    char tls_cert[EDGE_PATH_BYTES];
    char tls_key[EDGE_PATH_BYTES];
    char ui_dir[EDGE_PATH_BYTES];
    uint32_t body_max_bytes;
    uint32_t header_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t connections_max;
    uint32_t rate_ip_per_s, rate_ip_burst;
    uint32_t rate_user_per_s, rate_user_burst;
    uint32_t rate_keys_max;
    uint32_t ws_max;
    uint32_t ws_send_buffer_bytes;
    uint32_t ws_socket_buffer_bytes;
    uint32_t ws_ping_interval_ms;
    uint32_t ws_pong_timeout_ms;
    uint32_t ws_position_every_ms;
    uint32_t ws_status_every_ms;
    uint32_t seat_poll_ms;
    uint32_t seatmap_cache_ms;
    uint32_t rpc_timeout_ms;
    uint32_t pay_timeout_ms;
    uint32_t grace_ms;
    bool access_log;
    enum rpc_log_level log_level;
    bool check_only;
};

/* redis://host:port[/db] as the feed reads it (edge_feed.c). */
bool edge_redis_url_valid(const char *url);

/* 0: run; 1: exit 0 (help printed); -1: exit 2 (the reason printed). */
int edge_config_parse(struct edge_config *config, int argc, char **argv);

#endif
