/* payment_config.h — payment-svc's settings from flags and environment (PAYMENT_*).
 *
 * Every setting has a flag and an environment variable (flags win). The gateway
 * and breaker settings default to production values (3 s per gateway call,
 * breaker over 10 calls at 50 %, open 30 s,
 * then 5 probes); tests shorten them by flag. */
#ifndef PAYMENT_CONFIG_H
#define PAYMENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "svc_daemon.h"

struct payment_config {
    struct svc_common_config common;
    char database_url[1024];
    bool migrate;
    char migrations_dir[1024];
    char gateway_url[512];   /* base URL, no trailing slash */
    char gateway_name[64];   /* the metrics label */
    uint32_t gateway_timeout_ms;
    uint32_t gateway_connect_timeout_ms;
    uint32_t gateway_attempts;
    uint32_t gateway_backoff_ms;
    uint32_t breaker_window_calls;
    uint32_t breaker_failure_percent;
    uint32_t breaker_open_ms;
    uint32_t breaker_window_ms;
    uint32_t breaker_probe_calls;
    bool check_only;
};

/* 0: run; 1: exit 0 (help printed); -1: exit 2 (error printed to stderr). */
int payment_config_parse(struct payment_config *config, int argc, char **argv);

#endif
