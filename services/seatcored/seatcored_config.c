/* seatcored_config.c — flags and environment (seatcored_config.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seatcored_config.h"
#include "tk_limits.h"

struct setting {
    const char *flag;
    const char *env;
    const char *help;
};

/* The order matches the option indexes below. */
static const struct setting settings[] = {
    {"listen", "SEATCORED_LISTEN", "gRPC address to listen on (default 127.0.0.1:3020)"},
    {"metrics-listen", "SEATCORED_METRICS_LISTEN", "HTTP address for /metrics, /healthz, /readyz (default 127.0.0.1:9020)"},
    {"data-dir", "SEATCORED_DATA_DIR", "directory for the WAL and snapshots (required unless --memory)"},
    {"memory", "SEATCORED_MEMORY", "keep nothing on disk (benchmarks and tests only): 1 or 0"},
    {"token-key-file", "SEATCORED_TOKEN_KEY_FILE", "file with the admission-token HMAC key (32..128 bytes)"},
    {"shard-id", "SEATCORED_SHARD_ID", "this daemon's index in the shard list (default 0)"},
    {"shards", "SEATCORED_SHARDS", "comma-separated shard addresses in order (default: just --listen)"},
    {"events-max", "SEATCORED_EVENTS_MAX", "events this shard may hold (default 64, at most 4096)"},
    {"idempotency-keys", "SEATCORED_IDEMPOTENCY_KEYS", "idempotency table entries (default 1048576)"},
    {"cq-threads", "SEATCORED_CQ_THREADS", "gRPC completion-queue threads (default 2)"},
    {"calls-max", "SEATCORED_CALLS_MAX", "concurrent calls (default 4096)"},
    {"max-message-bytes", "SEATCORED_MAX_MESSAGE_BYTES", "largest request or reply (default 4194304)"},
    {"snapshot-every-mb", "SEATCORED_SNAPSHOT_EVERY_MB", "snapshot after this much WAL (default 256; 0 never)"},
    {"grace-ms", "SEATCORED_GRACE_MS", "shutdown grace period for calls in flight (default 10000)"},
    {"watchers-max", "SEATCORED_WATCHERS_MAX", "concurrent Watch streams (default 1024)"},
    {"tick-ms", "SEATCORED_TICK_MS", "background step interval: expiries, admissions (default 50)"},
    {"log-level", "SEATCORED_LOG_LEVEL", "debug, info, warn or error (default info)"},
    {"check-config", NULL, "validate the settings and exit"},
    {"help", NULL, "print this help and exit"},
};
#define SETTINGS_COUNT (sizeof(settings) / sizeof(settings[0]))

void seatcored_config_usage(FILE *out)
{
    fprintf(out, "usage: seatcored [options]\n\n"
                 "The TIKETI seat engine daemon: serves tiketi.v1.SeatCore and grpc.health.v1.Health\n"
                 "over gRPC and Prometheus metrics over HTTP. Every option can also be set by the\n"
                 "environment variable shown.\n\n");
    for (size_t i = 0; i < SETTINGS_COUNT; i++)
        fprintf(out, "  --%-20s %-30s %s\n", settings[i].flag, settings[i].env ? settings[i].env : "",
                settings[i].help);
}

static bool parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool copy_text(char *out, size_t out_len, const char *text)
{
    size_t n = strlen(text);
    if (n == 0 || n >= out_len)
        return false;
    memcpy(out, text, n + 1);
    return true;
}

static bool parse_shards(struct seatcored_config *config, const char *text)
{
    config->shard_count = 0;
    const char *p = text;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= sizeof(config->shards[0]) || config->shard_count == RPC_SHARDS_MAX)
            return false;
        memcpy(config->shards[config->shard_count], p, n);
        config->shards[config->shard_count++][n] = '\0';
        p += n + (comma ? 1 : 0);
    }
    return config->shard_count > 0;
}

static bool parse_level(const char *text, enum rpc_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (enum rpc_log_level)i;
            return true;
        }
    return false;
}

/* Applies one setting; false if the value is not acceptable. */
static bool apply(struct seatcored_config *c, size_t index, const char *v)
{
    switch (index) {
    case 0: return copy_text(c->listen, sizeof(c->listen), v);
    case 1: return copy_text(c->metrics_listen, sizeof(c->metrics_listen), v);
    case 2: return copy_text(c->data_dir, sizeof(c->data_dir), v);
    case 3: c->memory_only = strcmp(v, "1") == 0 || strcmp(v, "true") == 0; return true;
    case 4: return copy_text(c->token_key_file, sizeof(c->token_key_file), v);
    case 5: return parse_u32(v, 0, RPC_SHARDS_MAX - 1, &c->shard_id);
    case 6: return parse_shards(c, v);
    case 7: return parse_u32(v, 1, TK_EVENTS_MAX_MAX, &c->events_max);
    case 8: return parse_u32(v, 16, TK_IDEMPOTENCY_KEYS_MAX, &c->idempotency_keys);
    case 9: return parse_u32(v, 1, 16, &c->cq_threads);
    case 10: return parse_u32(v, 16, 1u << 20, &c->calls_max);
    case 11: return parse_u32(v, 1024, 64u << 20, &c->max_message_bytes);
    case 12: return parse_u32(v, 0, 1u << 20, &c->snapshot_every_mb);
    case 13: return parse_u32(v, 0, 600000, &c->grace_ms);
    case 14: return parse_u32(v, 1, 1u << 20, &c->watchers_max);
    case 15: return parse_u32(v, 1, 1000, &c->tick_ms);
    case 16: return parse_level(v, &c->log_level);
    default: return false;
    }
}

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
}

static int check(struct seatcored_config *c)
{
    if (!c->memory_only && c->data_dir[0] == '\0') {
        fprintf(stderr, "seatcored: --data-dir (SEATCORED_DATA_DIR) is required unless --memory is given\n");
        return -1;
    }
    if (c->shard_count == 0) {
        c->shard_count = 1;
        snprintf(c->shards[0], sizeof(c->shards[0]), "%s", c->listen);
    }
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
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const char *value = settings[i].env ? getenv(settings[i].env) : NULL;
        if (value != NULL && value[0] != '\0' && !apply(c, i, value)) {
            fprintf(stderr, "seatcored: bad value '%s' for %s (%s)\n", value, settings[i].env, settings[i].help);
            return -1;
        }
    }
    struct option options[SETTINGS_COUNT + 1];
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        bool is_switch = i == 3 || i >= SETTINGS_COUNT - 2;
        options[i] = (struct option){settings[i].flag, is_switch ? optional_argument : required_argument, NULL,
                                     (int)(256 + i)};
    }
    options[SETTINGS_COUNT] = (struct option){0};
    optind = 1;
    opterr = 0;
    for (;;) {
        int index = getopt_long(argc, argv, "", options, NULL);
        if (index == -1)
            break;
        if (index == '?' || index == ':') {
            fprintf(stderr, "seatcored: unknown or incomplete option '%s' (see --help)\n", argv[optind - 1]);
            return -1;
        }
        size_t i = (size_t)(index - 256);
        if (i == SETTINGS_COUNT - 1) {
            seatcored_config_usage(stdout);
            return 1;
        }
        if (i == SETTINGS_COUNT - 2) {
            c->check_only = true;
            continue;
        }
        const char *value = optarg ? optarg : (i == 3 ? "1" : "");
        if (!apply(c, i, value)) {
            fprintf(stderr, "seatcored: bad value '%s' for --%s (%s)\n", value, settings[i].flag, settings[i].help);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "seatcored: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    return check(c);
}
