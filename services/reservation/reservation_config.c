/* reservation_config.c — reservation-svc's settings table (reservation_config.h). */
#include "reservation_config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "svc_flags.h"

static const char summary[] =
    "TIKETI reservation-svc: serves tiketi.v1.Reservations (holds through the seatcored shards,\n"
    "the payment saga with payment-svc, my reservations, cancellation with refund) and\n"
    "grpc.health.v1.Health over gRPC, Prometheus metrics over HTTP. Holds touch only the engine\n"
    "and Redis; paid reservations and the saga live in PostgreSQL, resumed at start.";

static char shards_text[RPC_SHARDS_MAX * 32];

static void defaults(struct reservation_config *c)
{
    c->redis_timeout_ms = 500;
    snprintf(c->payment_addr, sizeof(c->payment_addr), "127.0.0.1:3014");
    c->admission_required = true;
    snprintf(c->migrations_dir, sizeof(c->migrations_dir), "infra/db/migrations");
    snprintf(c->currency, sizeof(c->currency), "EUR");
    c->engine_timeout_ms = 2000;
    c->payment_timeout_ms = 15000;
    c->recovery_interval_ms = 2000;
    c->recovery_batch = 64;
    c->recovery_backoff_max_ms = 30000;
    shards_text[0] = '\0';
}

static int check(struct reservation_config *c)
{
    int count = svc_split_list(shards_text, &c->shards[0][0], sizeof(c->shards[0]), RPC_SHARDS_MAX);
    if (count <= 0) {
        fprintf(stderr, "reservation-svc: --seatcored-shards must be a comma-separated list of 1..%u host:port\n",
                RPC_SHARDS_MAX);
        return -1;
    }
    c->shard_count = (uint32_t)count;
    if (c->admission_required && c->token_key_file[0] == '\0') {
        fprintf(stderr, "reservation-svc: --token-key-file (RESERVATION_TOKEN_KEY_FILE) is required while "
                        "--admission-required is on\n");
        return -1;
    }
    bool currency_ok = strlen(c->currency) == 3;
    for (int i = 0; currency_ok && i < 3; i++)
        currency_ok = isupper((unsigned char)c->currency[i]) != 0;
    if (!currency_ok) {
        fprintf(stderr, "reservation-svc: --currency must be a 3-letter ISO 4217 code in capitals\n");
        return -1;
    }
    if (c->recovery_backoff_max_ms < c->recovery_interval_ms) {
        fprintf(stderr, "reservation-svc: --recovery-backoff-max-ms must be at least --recovery-interval-ms\n");
        return -1;
    }
    return 0;
}

#define STR(field) .type = SVC_FLAG_STRING, .target = c->field, .target_len = sizeof(c->field)
#define U32(field, lo, hi) .type = SVC_FLAG_U32, .target = &c->field, .min = (lo), .max = (hi)

int reservation_config_parse(struct reservation_config *c, int argc, char **argv)
{
    memset(c, 0, sizeof(*c));
    struct svc_flag flags[SVC_FLAGS_MAX];
    size_t n = svc_common_flags(&c->common, "RESERVATION", "127.0.0.1:3013", "127.0.0.1:9013", flags);
    defaults(c);
    const struct svc_flag own[] = {
        {"database-url", "RESERVATION_DATABASE_URL", "PostgreSQL URL (postgresql://user@host:port/db)",
         STR(database_url), .required = true, .secret = true},
        {"redis-url", "RESERVATION_REDIS_URL", "Redis for pending holds (redis://host:port)", STR(redis_url),
         .required = true},
        {"redis-timeout-ms", "RESERVATION_REDIS_TIMEOUT_MS", "Redis connect and command timeout (default 500)",
         U32(redis_timeout_ms, 10, 60000)},
        {"seatcored-shards", "RESERVATION_SEATCORED_SHARDS",
         "comma-separated seatcored addresses, in shard order (as their --shards)", .type = SVC_FLAG_STRING,
         .target = shards_text, .target_len = sizeof(shards_text), .required = true},
        {"payment-addr", "RESERVATION_PAYMENT_ADDR", "payment-svc gRPC address (default 127.0.0.1:3014)",
         STR(payment_addr)},
        {"token-key-file", "RESERVATION_TOKEN_KEY_FILE", "admission-token HMAC key file (seatcored's)",
         STR(token_key_file)},
        {"admission-required", "RESERVATION_ADMISSION_REQUIRED",
         "refuse holds without a valid admission token (default true)", .type = SVC_FLAG_BOOL,
         .target = &c->admission_required},
        {"migrate", "RESERVATION_MIGRATE", "apply the SQL migrations at start (tests, local stack)",
         .type = SVC_FLAG_BOOL, .target = &c->migrate},
        {"migrations-dir", "RESERVATION_MIGRATIONS_DIR", "directory of NNNN_name.sql (default infra/db/migrations)",
         STR(migrations_dir)},
        {"currency", "RESERVATION_CURRENCY", "currency of the charges (default EUR)", STR(currency)},
        {"engine-timeout-ms", "RESERVATION_ENGINE_TIMEOUT_MS", "deadline of one seatcored call (default 2000)",
         U32(engine_timeout_ms, 50, 60000)},
        {"payment-timeout-ms", "RESERVATION_PAYMENT_TIMEOUT_MS",
         "deadline of one payment-svc call; above its gateway timeout (default 15000)",
         U32(payment_timeout_ms, 100, 300000)},
        {"recovery-interval-ms", "RESERVATION_RECOVERY_INTERVAL_MS",
         "how often unfinished sagas are driven on (default 2000)", U32(recovery_interval_ms, 50, 600000)},
        {"recovery-batch", "RESERVATION_RECOVERY_BATCH", "sagas one recovery round takes at most (default 64)",
         U32(recovery_batch, 1, 10000)},
        {"recovery-backoff-max-ms", "RESERVATION_RECOVERY_BACKOFF_MAX_MS",
         "longest pause before a failing saga is tried again (default 30000)",
         U32(recovery_backoff_max_ms, 50, 3600000)},
    };
    _Static_assert(sizeof(own) / sizeof(own[0]) + 8 <= SVC_FLAGS_MAX, "the flag table fits");
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        flags[n++] = own[i];
    int rc = svc_flags_parse("reservation-svc", summary, flags, n, argc, argv, &c->check_only);
    if (rc != 0)
        return rc;
    return check(c);
}
