/* payment_config.c — payment-svc's settings table (payment_config.h). */
#include "payment_config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "payment_breaker.h"
#include "payment_gateway.h"

static const char summary[] =
    "payment-svc: serves tiketi.v1.Payments (Charge, Refund, GetPayment) over gRPC and calls the\n"
    "card gateway over HTTP with idempotency keys, retries where safe and a circuit breaker.\n"
    "Payments and every gateway attempt are recorded in PostgreSQL.";

static void defaults(struct payment_config *c)
{
    snprintf(c->database_url, sizeof(c->database_url), "%s", "");
    snprintf(c->migrations_dir, sizeof(c->migrations_dir), "infra/db/migrations");
    snprintf(c->gateway_url, sizeof(c->gateway_url), "http://127.0.0.1:3099");
    snprintf(c->gateway_name, sizeof(c->gateway_name), "card");
    c->gateway_timeout_ms = 6000; /* above the slowest approval a bank takes (tok_slow: 5 s) */
    c->gateway_connect_timeout_ms = 1000;
    c->gateway_attempts = 3;
    c->gateway_backoff_ms = 50;
    c->breaker_window_calls = 10;
    c->breaker_failure_percent = 50;
    c->breaker_open_ms = 30000;
    c->breaker_window_ms = 60000;
    c->breaker_probe_calls = 5;
}

static int check(struct payment_config *c)
{
    size_t len = strlen(c->gateway_url);
    while (len > 0 && c->gateway_url[len - 1] == '/')
        c->gateway_url[--len] = '\0';
    if (strncmp(c->gateway_url, "http://", 7) != 0 && strncmp(c->gateway_url, "https://", 8) != 0) {
        fprintf(stderr, "payment-svc: --gateway-url must start with http:// or https://\n");
        return -1;
    }
    bool name_ok = c->gateway_name[0] != '\0';
    for (const char *p = c->gateway_name; *p; p++)
        name_ok = name_ok && (isalnum((unsigned char)*p) || *p == '_' || *p == '-');
    if (!name_ok) {
        fprintf(stderr, "payment-svc: --gateway-name must be letters, digits, '_' or '-' (a metrics label)\n");
        return -1;
    }
    struct payment_breaker_config breaker = {.window_calls = c->breaker_window_calls,
                                             .failure_percent = c->breaker_failure_percent,
                                             .open_ms = c->breaker_open_ms,
                                             .window_ms = c->breaker_window_ms,
                                             .probe_calls = c->breaker_probe_calls};
    char why[160];
    if (!payment_breaker_config_check(&breaker, why, sizeof(why))) {
        fprintf(stderr, "payment-svc: %s\n", why);
        return -1;
    }
    return 0;
}

#define STR(field) .type = SVC_FLAG_STRING, .target = c->field, .target_len = sizeof(c->field)
#define U32(field, lo, hi) .type = SVC_FLAG_U32, .target = &c->field, .min = (lo), .max = (hi)

int payment_config_parse(struct payment_config *c, int argc, char **argv)
{
    memset(c, 0, sizeof(*c));
    struct svc_flag flags[SVC_FLAGS_MAX];
    size_t n = svc_common_flags(&c->common, "PAYMENT", "127.0.0.1:3014", "127.0.0.1:9014", flags);
    defaults(c);
    const struct svc_flag own[] = {
        {"database-url", "PAYMENT_DATABASE_URL", "PostgreSQL connection URL", STR(database_url), .required = true,
         .secret = true},
        {"migrate", "PAYMENT_MIGRATE", "apply the SQL migrations at start (tests, local stack)",
         .type = SVC_FLAG_BOOL, .target = &c->migrate},
        {"migrations-dir", "PAYMENT_MIGRATIONS_DIR", "directory of NNNN_name.sql files (default infra/db/migrations)",
         STR(migrations_dir)},
        {"gateway-url", "PAYMENT_GATEWAY_URL", "card gateway base URL (default http://127.0.0.1:3099)",
         STR(gateway_url)},
        {"gateway-name", "PAYMENT_GATEWAY_NAME", "gateway label in metrics (default card)", STR(gateway_name)},
        {"gateway-timeout-ms", "PAYMENT_GATEWAY_TIMEOUT_MS",
         "budget of one gateway call, retries included (default 6000)", U32(gateway_timeout_ms, 50, 120000)},
        {"gateway-connect-timeout-ms", "PAYMENT_GATEWAY_CONNECT_TIMEOUT_MS",
         "TCP/TLS connect timeout per attempt (default 1000)", U32(gateway_connect_timeout_ms, 10, 60000)},
        {"gateway-attempts", "PAYMENT_GATEWAY_ATTEMPTS", "attempts per gateway call when retrying is safe (default 3)",
         U32(gateway_attempts, 1, PAYMENT_GATEWAY_ATTEMPTS_MAX)},
        {"gateway-backoff-ms", "PAYMENT_GATEWAY_BACKOFF_MS", "first retry delay, doubled each retry (default 50)",
         U32(gateway_backoff_ms, 1, 10000)},
        {"breaker-window", "PAYMENT_BREAKER_WINDOW", "calls the breaker judges together (default 10)",
         U32(breaker_window_calls, PAYMENT_BREAKER_WINDOW_CALLS_MIN, PAYMENT_BREAKER_WINDOW_CALLS_MAX)},
        {"breaker-failure-percent", "PAYMENT_BREAKER_FAILURE_PERCENT", "failures that open the breaker (default 50)",
         U32(breaker_failure_percent, 1, 100)},
        {"breaker-open-ms", "PAYMENT_BREAKER_OPEN_MS", "how long the breaker stays open before a probe (default 30000)",
         U32(breaker_open_ms, 1, 3600000)},
        {"breaker-window-ms", "PAYMENT_BREAKER_WINDOW_MS", "outcomes older than this are forgotten (default 60000; 0 never)",
         U32(breaker_window_ms, 0, 86400000)},
        {"breaker-probes", "PAYMENT_BREAKER_PROBES", "calls let through and judged together when half-open (default 5)",
         U32(breaker_probe_calls, 1, PAYMENT_BREAKER_PROBE_CALLS_MAX)},
    };
    _Static_assert(sizeof(own) / sizeof(own[0]) + 8 <= SVC_FLAGS_MAX, "the flag table fits");
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        flags[n++] = own[i];
    int rc = svc_flags_parse("payment-svc", summary, flags, n, argc, argv, &c->check_only);
    if (rc != 0)
        return rc;
    return check(c);
}
