/* event_config.c — event-svc's settings table (event_config.h). */
#include "event_config.h"

#include <stdio.h>
#include <string.h>

#include "rpc_admin_http.h"
#include "svc_flags.h"

static const char summary[] =
    "TIKETI event-svc: serves tiketi.v1.Events (create, list, detail, seat map) and\n"
    "grpc.health.v1.Health over gRPC, Prometheus metrics over HTTP. The catalog lives in\n"
    "PostgreSQL (seat catalogs cached in Redis), live availability in the seatcored shards.";

static char shards_text[RPC_SHARDS_MAX * 32];

#define STR(field) .type = SVC_FLAG_STRING, .target = c->field, .target_len = sizeof(c->field)
#define U32(field, lo, hi) .type = SVC_FLAG_U32, .target = &c->field, .min = (lo), .max = (hi)

static size_t own_flags(struct event_config *c, struct svc_flag *flags)
{
    const struct svc_flag own[] = {
        {"database-url", "EVENT_DATABASE_URL", "PostgreSQL URL (postgresql://user@host:port/db)", STR(database_url),
         .required = true, .secret = true},
        {"redis-url", "EVENT_REDIS_URL", "Redis address for the seat-catalog cache (redis://host:port)",
         STR(redis_url), .required = true},
        {"seatcored-shards", "EVENT_SEATCORED_SHARDS",
         "comma-separated seatcored addresses, in shard order (as their --shards)", .type = SVC_FLAG_STRING,
         .target = shards_text, .target_len = sizeof(shards_text), .required = true},
        {"migrate", "EVENT_MIGRATE", "apply the SQL migrations at start (tests, local stack)",
         .type = SVC_FLAG_BOOL, .target = &c->migrate},
        {"migrations-dir", "EVENT_MIGRATIONS_DIR", "directory of NNNN_name.sql (default infra/db/migrations)",
         STR(migrations_dir)},
        {"engine-timeout-ms", "EVENT_ENGINE_TIMEOUT_MS", "deadline of engine reads (default 2000)",
         U32(engine_timeout_ms, 50, 60000)},
        {"create-timeout-ms", "EVENT_CREATE_TIMEOUT_MS", "deadline of the engine's CreateEvent (default 5000)",
         U32(create_timeout_ms, 100, 60000)},
        {"cache-ttl-s", "EVENT_CACHE_TTL_S", "lifetime of a cached seat catalog (default 3600)",
         U32(cache_ttl_s, 1, 30 * 86400)},
        {"reconcile-interval-s", "EVENT_RECONCILE_INTERVAL_S",
         "how often to finish or remove half-made events (default 30; 0: only at start)",
         U32(reconcile_interval_s, 0, 86400)},
        {"max-message-bytes", "EVENT_MAX_MESSAGE_BYTES", "largest reply, e.g. a seat map (default 33554432)",
         U32(max_message_bytes, 1u << 20, 256u << 20)},
        {"redis-timeout-ms", "EVENT_REDIS_TIMEOUT_MS", "Redis connect and command timeout (default 1000)",
         U32(redis_timeout_ms, 10, 60000)},
        {"client-threads", "EVENT_CLIENT_THREADS", "threads completing engine calls (default 2)",
         U32(client_threads, 1, 8)},
    };
    memcpy(flags, own, sizeof(own));
    return sizeof(own) / sizeof(own[0]);
}

static void defaults(struct event_config *c)
{
    snprintf(c->migrations_dir, sizeof(c->migrations_dir), "infra/db/migrations");
    c->engine_timeout_ms = 2000;
    c->create_timeout_ms = 5000;
    c->cache_ttl_s = 3600;
    c->reconcile_interval_s = 30;
    c->max_message_bytes = 32u << 20;
    c->redis_timeout_ms = 1000;
    c->client_threads = 2;
    shards_text[0] = '\0';
}

static int check(struct event_config *c)
{
    int count = svc_split_list(shards_text, &c->shards[0][0], sizeof(c->shards[0]), RPC_SHARDS_MAX);
    if (count <= 0) {
        fprintf(stderr, "event-svc: --seatcored-shards must be a comma-separated list of 1..%u host:port entries\n",
                RPC_SHARDS_MAX);
        return -1;
    }
    c->shard_count = (uint32_t)count;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    const char *const addresses[] = {c->common.listen, c->common.metrics_listen};
    const char *const names[] = {"--listen", "--metrics-listen"};
    for (int i = 0; i < 2; i++)
        if (!rpc_parse_host_port(addresses[i], &addr, &addr_len)) {
            fprintf(stderr, "event-svc: %s '%s' is not host:port\n", names[i], addresses[i]);
            return -1;
        }
    for (uint32_t i = 0; i < c->shard_count; i++)
        if (strchr(c->shards[i], ':') == NULL) {
            fprintf(stderr, "event-svc: shard %u '%s' in --seatcored-shards is not host:port\n", i, c->shards[i]);
            return -1;
        }
    return 0;
}

int event_config_parse(struct event_config *c, int argc, char **argv)
{
    memset(c, 0, sizeof(*c));
    struct svc_flag flags[SVC_FLAGS_MAX];
    size_t count = svc_common_flags(&c->common, "EVENT", "127.0.0.1:3011", "127.0.0.1:9011", flags);
    defaults(c);
    count += own_flags(c, flags + count);
    int rc = svc_flags_parse("event-svc", summary, flags, count, argc, argv, &c->check_only);
    if (rc != 0)
        return rc;
    return check(c);
}
