/* queue_redis.c — Redis addresses, connections and the feed's Lua scripts.
 *
 * The scripts are where the feed's promises are kept: Redis runs a script
 * atomically, so "I still hold the lease" and "publish these, then advance
 * next_rank" cannot be split by another replica or by a kill -9 of this one.
 * That is why a handover never loses or repeats an admission message (as long
 * as Redis itself keeps its keys). */
#include <stdio.h>
#include <string.h>

#include "queue_svc.h"
#include "tk_assert.h"

redisContext *queue_redis_connect(const struct queue_redis_address *address, uint32_t timeout_ms, char *err,
                                  size_t err_len)
{
    TK_ASSERT(address != NULL && address->port > 0 && timeout_ms > 0);
    struct timeval timeout = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *redis = redisConnectWithTimeout(address->host, address->port, timeout);
    if (redis == NULL || redis->err != 0) {
        snprintf(err, err_len, "Redis %s:%d: %s", address->host, address->port,
                 redis ? redis->errstr : "out of memory");
        if (redis != NULL)
            redisFree(redis);
        return NULL;
    }
    redisSetTimeout(redis, timeout);
    if (address->db != 0) {
        redisReply *reply = redisCommand(redis, "SELECT %d", address->db);
        bool ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;
        if (reply != NULL)
            freeReplyObject(reply);
        if (!ok) {
            snprintf(err, err_len, "Redis %s:%d: SELECT %d failed", address->host, address->port, address->db);
            redisFree(redis);
            return NULL;
        }
    }
    return redis;
}

/* KEYS: lease, next_rank, left. ARGV: replica id, lease ms, the next_rank this
 * replica last read or wrote ("" if none), the new next_rank, the channel, the
 * head rank ("" to keep the left set), key retention ms, then the messages.
 * A next_rank that is not a number reads as "" (no key): the feed starts over.
 * 1: published; 0: the lease is not ours (nothing done); -1: next_rank moved
 * under us (nothing done; read it again). */
const char queue_script_publish[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "local current = redis.call('GET', KEYS[2]) or ''\n"
    "if not string.match(current, '^%d+$') then current = '' end\n"
    "if current ~= ARGV[3] then return -1 end\n"
    "for i = 8, #ARGV do redis.call('PUBLISH', ARGV[5], ARGV[i]) end\n"
    "redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[7])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "if ARGV[6] ~= '' then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[6])\n"
    "end\n"
    "return 1\n";

/* KEYS: lease. ARGV: replica id. */
const char queue_script_release[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

/* KEYS: left. ARGV: channel, rank, message, retention ms. */
const char queue_script_left[] =
    "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[2])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "return redis.call('PUBLISH', ARGV[1], ARGV[3])\n";
