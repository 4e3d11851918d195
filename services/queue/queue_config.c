/* queue_config.c — queue-svc's settings table (queue_svc.h).
 *
 * The common daemon settings (QUEUE_LISTEN, QUEUE_METRICS_LISTEN, ...) come
 * from svc_common_flags; the rest are the feed's and Watch's pacing, the three
 * dependencies, and the replica id that names this process's Redis leases. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "queue_svc.h"
#include "tk_assert.h"

static const char summary[] =
    "The TIKETI waiting-room service: serves tiketi.v1.WaitingRoom (Join, Status, Leave, Heartbeat, Watch)\n"
    "over gRPC on the engine's queues, and publishes each queued event's head moves and admissions on\n"
    "Redis pub/sub (channel tiketi:queue:<event_id>; docs/services/queue.md) for the edges.";

static char shards_text[RPC_SHARDS_MAX * 32];

static void defaults(struct queue_config *c)
{
    c->feed_interval_ms = 250;
    c->head_every_ms = 1000;
    c->lease_ms = 3000;
    c->catalog_refresh_ms = 2000;
    c->watch_interval_ms = 500;
    c->watchers_max = 4096;
    c->feed_events_max = 1024;
    c->engine_timeout_ms = 2000;
    c->redis_timeout_ms = 1000;
    shards_text[0] = '\0';
    char host[48] = "queue-svc";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    uint32_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        nonce = (uint32_t)getpid() * 2654435761u;
    snprintf(c->replica_id, sizeof(c->replica_id), "%.40s-%d-%08x", host, (int)getpid(), nonce);
}

static bool replica_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= QUEUE_REPLICA_ID_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}

static int check(struct queue_config *c)
{
    int count = svc_split_list(shards_text, &c->shards[0][0], sizeof(c->shards[0]), RPC_SHARDS_MAX);
    if (count <= 0) {
        fprintf(stderr, "queue-svc: --seatcored-shards must be a comma-separated list of 1..%u host:port entries, "
                        "in shard order\n", RPC_SHARDS_MAX);
        return -1;
    }
    c->shard_count = (uint32_t)count;
    struct queue_redis_address redis;
    if (!queue_redis_parse_url(c->redis_url, &redis)) {
        fprintf(stderr, "queue-svc: --redis-url must look like redis://host:port[/db]\n");
        return -1;
    }
    if (c->lease_ms < 2 * c->feed_interval_ms) {
        fprintf(stderr, "queue-svc: --lease-ms (%u) must be at least twice --feed-interval-ms (%u), or leases "
                        "lapse between renewals\n", c->lease_ms, c->feed_interval_ms);
        return -1;
    }
    if (c->head_every_ms <= c->feed_interval_ms) {
        fprintf(stderr, "queue-svc: --head-every-ms (%u) must be longer than --feed-interval-ms (%u)\n",
                c->head_every_ms, c->feed_interval_ms);
        return -1;
    }
    if (!replica_id_ok(c->replica_id)) {
        fprintf(stderr, "queue-svc: --replica-id must be 1..63 characters of [A-Za-z0-9._:-]\n");
        return -1;
    }
    TK_ASSERT(c->shard_count >= 1 && c->shard_count <= RPC_SHARDS_MAX);
    return 0;
}

#define STR(field) .type = SVC_FLAG_STRING, .target = c->field, .target_len = sizeof(c->field)
#define U32(field, lo, hi) .type = SVC_FLAG_U32, .target = &c->field, .min = (lo), .max = (hi)

int queue_config_parse(struct queue_config *c, int argc, char **argv)
{
    TK_ASSERT(c != NULL && argc >= 1);
    memset(c, 0, sizeof(*c));
    struct svc_flag flags[SVC_FLAGS_MAX];
    size_t n = svc_common_flags(&c->common, "QUEUE", "127.0.0.1:3012", "127.0.0.1:9012", flags);
    defaults(c);
    const struct svc_flag own[] = {
        {"redis-url", "QUEUE_REDIS_URL", "Redis for the feed and its leases, redis://host:port[/db]",
         STR(redis_url), .required = true},
        {"database-url", "QUEUE_DATABASE_URL", "PostgreSQL URL of the catalog (which events have a waiting room)",
         STR(database_url), .required = true, .secret = true},
        {"seatcored-shards", "QUEUE_SEATCORED_SHARDS", "comma-separated seatcored addresses, in shard order",
         .type = SVC_FLAG_STRING, .target = shards_text, .target_len = sizeof(shards_text), .required = true},
        {"feed-interval-ms", "QUEUE_FEED_INTERVAL_MS", "one publisher round over the queued events (default 250)",
         U32(feed_interval_ms, 50, 5000)},
        {"head-every-ms", "QUEUE_HEAD_EVERY_MS", "longest gap between two head messages of an event (default 1000)",
         U32(head_every_ms, 100, 60000)},
        {"lease-ms", "QUEUE_LEASE_MS", "publisher lease per event: a dead replica's events move after it "
                                       "(default 3000)", U32(lease_ms, 200, 60000)},
        {"catalog-refresh-ms", "QUEUE_CATALOG_REFRESH_MS", "re-read the queued events this often (default 2000)",
         U32(catalog_refresh_ms, 100, 600000)},
        {"watch-interval-ms", "QUEUE_WATCH_INTERVAL_MS", "a Watch stream's view this often (default 500)",
         U32(watch_interval_ms, 100, 1000)},
        {"watchers-max", "QUEUE_WATCHERS_MAX", "concurrent Watch streams (default 4096)",
         U32(watchers_max, 1, QUEUE_WATCHERS_MAX_MAX)},
        {"feed-events-max", "QUEUE_FEED_EVENTS_MAX", "queued events the feed follows at once (default 1024)",
         U32(feed_events_max, 1, QUEUE_FEED_EVENTS_MAX_MAX)},
        {"engine-timeout-ms", "QUEUE_ENGINE_TIMEOUT_MS", "deadline of one call to seatcored (default 2000)",
         U32(engine_timeout_ms, 50, 60000)},
        {"redis-timeout-ms", "QUEUE_REDIS_TIMEOUT_MS", "connect and command timeout for Redis (default 1000)",
         U32(redis_timeout_ms, 50, 60000)},
        {"replica-id", "QUEUE_REPLICA_ID", "names this process's leases (default host-pid-random; unique per "
                                           "replica)", STR(replica_id)},
    };
    _Static_assert(sizeof(own) / sizeof(own[0]) + 8u <= SVC_FLAGS_MAX, "the table fits");
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        flags[n++] = own[i];
    int rc = svc_flags_parse("queue-svc", summary, flags, n, argc, argv, &c->check_only);
    if (rc != 0)
        return rc;
    return check(c);
}
