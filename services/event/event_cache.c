/* event_cache.c — the seat-catalog cache (event_cache.h). */
#include "event_cache.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rpc_log.h"
#include "tk_assert.h"

/* KEYS[1] the entry, KEYS[2] the current-version key; ARGV: bytes, version,
 * TTL in seconds, the entry keys' prefix. Returns -1 (a newer version is
 * stored: nothing written), 0 (stored) or 1 (stored, older entry deleted). */
static const char store_script[] =
    "local current = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "local version = tonumber(ARGV[2]) "
    "if current > version then return -1 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3]) "
    "redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) "
    "if current > 0 and current < version then return redis.call('DEL', ARGV[4] .. current) end "
    "return 0";

void event_cache_key(uint64_t event_id, uint64_t catalog_version, char *out, size_t out_len)
{
    TK_ASSERT(out != NULL && out_len >= EVENT_CACHE_KEY_BYTES);
    snprintf(out, out_len, "tiketi:event:{%" PRIu64 "}:seats:%" PRIu64, event_id, catalog_version);
}

static void cache_failed(struct svc_worker *worker, struct event_metrics *metrics, const char *what,
                         const redisReply *reply)
{
    atomic_fetch_add_explicit(&metrics->cache_errors, 1, memory_order_relaxed);
    const char *why = reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
                      : worker->redis != NULL && worker->redis->err ? worker->redis->errstr
                                                                     : "unexpected reply";
    rpc_log(RPC_LOG_WARN, "", "seat-catalog cache %s failed (served from PostgreSQL): %s", what, why);
}

enum event_cache_result event_cache_get(struct svc_worker *worker, struct event_metrics *metrics, uint64_t event_id,
                                        uint64_t catalog_version, redisReply **reply)
{
    TK_ASSERT(worker != NULL && reply != NULL);
    *reply = NULL;
    if (!svc_worker_redis_ok(worker)) {
        cache_failed(worker, metrics, "connect", NULL);
        return EVENT_CACHE_ERROR;
    }
    char key[EVENT_CACHE_KEY_BYTES];
    event_cache_key(event_id, catalog_version, key, sizeof(key));
    redisReply *r = redisCommand(worker->redis, "GET %s", key);
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        *reply = r;
        return EVENT_CACHE_HIT;
    }
    enum event_cache_result result = EVENT_CACHE_MISS;
    if (r == NULL || r->type != REDIS_REPLY_NIL) {
        cache_failed(worker, metrics, "read", r);
        result = EVENT_CACHE_ERROR;
    }
    if (r != NULL)
        freeReplyObject(r);
    return result;
}

void event_cache_put(struct svc_worker *worker, struct event_metrics *metrics, uint64_t event_id,
                     uint64_t catalog_version, const uint8_t *bytes, size_t len, uint32_t ttl_s)
{
    TK_ASSERT(bytes != NULL && len > 0 && ttl_s > 0);
    if (!svc_worker_redis_ok(worker)) {
        cache_failed(worker, metrics, "connect", NULL);
        return;
    }
    char key[EVENT_CACHE_KEY_BYTES], current[EVENT_CACHE_KEY_BYTES], prefix[EVENT_CACHE_KEY_BYTES];
    char version[24], ttl[16];
    event_cache_key(event_id, catalog_version, key, sizeof(key));
    snprintf(current, sizeof(current), "tiketi:event:{%" PRIu64 "}:seats:current", event_id);
    snprintf(prefix, sizeof(prefix), "tiketi:event:{%" PRIu64 "}:seats:", event_id);
    snprintf(version, sizeof(version), "%" PRIu64, catalog_version);
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    redisReply *r = redisCommand(worker->redis, "EVAL %s 2 %s %s %b %s %s %s", store_script, key, current, bytes, len,
                                 version, ttl, prefix);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        cache_failed(worker, metrics, "store", r);
    } else {
        if (r->integer >= 0)
            atomic_fetch_add_explicit(&metrics->cache_stores, 1, memory_order_relaxed);
        if (r->integer == 1)
            atomic_fetch_add_explicit(&metrics->cache_invalidations, 1, memory_order_relaxed);
    }
    if (r != NULL)
        freeReplyObject(r);
}
