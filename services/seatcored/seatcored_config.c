/* seatcored_config.c — the daemon's settings table (seatcored_config.h). */
#include <stdio.h>
#include <string.h>

#include "seatcored_config.h"
#include "svc_flags.h"
#include "tk_limits.h"

static const char summary[] =
    "The TIKETI seat engine daemon: serves tiketi.v1.SeatCore and grpc.health.v1.Health over\n"
    "gRPC and Prometheus metrics over HTTP. Writes are answered once durable in the WAL.";

static char shards_text[RPC_SHARDS_MAX * 32];

static void defaults(struct seatcored_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "127.0.0.1:3020");
    snprintf(c->metrics_listen, sizeof(c->metrics_listen), "127.0.0.1:9020");
    c->events_max = TK_EVENTS_MAX_DEFAULT;
    c->idempotency_keys = TK_IDEMPOTENCY_KEYS_DEFAULT;
    c->cq_threads = 2;
    c->calls_max = 4096;
    c->max_message_bytes = 4u << 20;
    c->snapshot_every_mb = 256;
    c->grace_ms = 10000;
    c->watchers_max = 1024;
    c->tick_ms = 50;
    c->log_level = RPC_LOG_INFO;
    shards_text[0] = '\0';
}

#define STR(field) .type = SVC_FLAG_STRING, .target = c->field, .target_len = sizeof(c->field)
#define U32(field, lo, hi) .type = SVC_FLAG_U32, .target = &c->field, .min = (lo), .max = (hi)

static int check(struct seatcored_config *c)
{
    if (!c->memory_only && c->data_dir[0] == '\0') {
        fprintf(stderr, "seatcored: --data-dir (SEATCORED_DATA_DIR) is required unless --memory is given\n");
        return -1;
    }
    int count = shards_text[0] ? svc_split_list(shards_text, &c->shards[0][0], sizeof(c->shards[0]), RPC_SHARDS_MAX)
                               : 0;
    if (count < 0) {
        fprintf(stderr, "seatcored: --shards must be a comma-separated list of 1..%u host:port entries\n",
                RPC_SHARDS_MAX);
        return -1;
    }
    if (count == 0) {
        count = 1;
        snprintf(c->shards[0], sizeof(c->shards[0]), "%s", c->listen);
    }
    c->shard_count = (uint32_t)count;
    if (c->shard_id >= c->shard_count) {
        fprintf(stderr, "seatcored: --shard-id %u is outside the shard list of %u\n", c->shard_id, c->shard_count);
        return -1;
    }
    if ((c->idempotency_keys & (c->idempotency_keys - 1)) != 0) {
        fprintf(stderr, "seatcored: --idempotency-keys must be a power of two\n");
        return -1;
    }
    return 0;
}

int seatcored_config_parse(struct seatcored_config *c, int argc, char **argv)
{
    defaults(c);
    const struct svc_flag flags[] = {
        {"listen", "SEATCORED_LISTEN", "gRPC address to listen on (default 127.0.0.1:3020)", STR(listen)},
        {"metrics-listen", "SEATCORED_METRICS_LISTEN", "HTTP address for /metrics, /healthz, /readyz",
         STR(metrics_listen)},
        {"data-dir", "SEATCORED_DATA_DIR", "directory for the WAL and snapshots (required unless --memory)",
         STR(data_dir)},
        {"memory", "SEATCORED_MEMORY", "keep nothing on disk (benchmarks and tests only)", .type = SVC_FLAG_BOOL,
         .target = &c->memory_only},
        {"token-key-file", "SEATCORED_TOKEN_KEY_FILE", "file with the admission-token HMAC key (32..128 bytes)",
         STR(token_key_file)},
        {"shard-id", "SEATCORED_SHARD_ID", "this daemon's index in the shard list (default 0)",
         U32(shard_id, 0, RPC_SHARDS_MAX - 1)},
        {"shards", "SEATCORED_SHARDS", "comma-separated shard addresses in order (default: just --listen)",
         .type = SVC_FLAG_STRING, .target = shards_text, .target_len = sizeof(shards_text)},
        {"events-max", "SEATCORED_EVENTS_MAX", "events this shard may hold (default 64)",
         U32(events_max, 1, TK_EVENTS_MAX_MAX)},
        {"idempotency-keys", "SEATCORED_IDEMPOTENCY_KEYS", "idempotency table entries, a power of two",
         U32(idempotency_keys, 16, TK_IDEMPOTENCY_KEYS_MAX)},
        {"cq-threads", "SEATCORED_CQ_THREADS", "gRPC completion-queue threads (default 2)", U32(cq_threads, 1, 16)},
        {"calls-max", "SEATCORED_CALLS_MAX", "concurrent calls (default 4096)", U32(calls_max, 16, 1u << 20)},
        {"max-message-bytes", "SEATCORED_MAX_MESSAGE_BYTES", "largest request or reply (default 4194304)",
         U32(max_message_bytes, 1024, 64u << 20)},
        {"snapshot-every-mb", "SEATCORED_SNAPSHOT_EVERY_MB", "snapshot after this much WAL (default 256; 0 never)",
         U32(snapshot_every_mb, 0, 1u << 20)},
        {"grace-ms", "SEATCORED_GRACE_MS", "shutdown grace period for calls in flight (default 10000)",
         U32(grace_ms, 0, 600000)},
        {"watchers-max", "SEATCORED_WATCHERS_MAX", "concurrent Watch streams (default 1024)",
         U32(watchers_max, 1, 1u << 20)},
        {"tick-ms", "SEATCORED_TICK_MS", "background step interval: expiries, admissions (default 50)",
         U32(tick_ms, 1, 1000)},
        {"log-level", "SEATCORED_LOG_LEVEL", "debug, info, warn or error (default info)",
         .type = SVC_FLAG_LOG_LEVEL, .target = &c->log_level},
    };
    int rc = svc_flags_parse("seatcored", summary, flags, sizeof(flags) / sizeof(flags[0]), argc, argv,
                             &c->check_only);
    if (rc != 0)
        return rc;
    return check(c);
}
