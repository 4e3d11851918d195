/* reservation_pending.c — pending holds in Redis, for "my reservations".
 *
 * The hot path writes no PostgreSQL: a hold lives in the engine (durable in its
 * WAL), and the only thing kept about it here is a small record per user so a
 * listing can show it before it is paid:
 *
 *   HASH tiketi:rsv:{<user_id>}:pending   field <reservation id>  value rsv_pending_encode()
 *
 * The key expires with the user's longest-lived hold (PEXPIREAT NX, then GT, so
 * it only ever moves later), and a listing drops the fields of holds that ended.
 * Paying or releasing a hold deletes its field. The record is best effort: when
 * Redis is down a hold still works (the engine is the truth); it just is not
 * listed until paid. One round trip per operation (commands are pipelined). */
#include <stdio.h>
#include <string.h>

#include "reservation.h"
#include "tk_assert.h"

#define KEY_BYTES 64u

static void pending_key(uint64_t user_id, char out[KEY_BYTES])
{
    snprintf(out, KEY_BYTES, "tiketi:rsv:{%llu}:pending", (unsigned long long)user_id);
}

/* Reads n pipelined replies; false if any is missing or an error. */
static bool drain(redisContext *redis, int n)
{
    bool ok = true;
    for (int i = 0; i < n; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(redis, (void **)&reply) != REDIS_OK || reply == NULL)
            return false; /* the connection is broken: the worker reconnects next time */
        if (reply->type == REDIS_REPLY_ERROR)
            ok = false;
        freeReplyObject(reply);
    }
    return ok;
}

bool rsv_pending_put(redisContext *redis, uint64_t user_id, const char *reservation_id,
                     const struct rsv_pending *pending)
{
    TK_ASSERT(redis != NULL && reservation_id != NULL && pending->expires_ms > 0);
    char key[KEY_BYTES], value[RSV_PENDING_RECORD_BYTES], at[24];
    pending_key(user_id, key);
    if (!rsv_pending_encode(pending, value, sizeof(value)))
        return false;
    snprintf(at, sizeof(at), "%lld", (long long)pending->expires_ms);
    /* HSETNX: a replayed hold keeps the record (and created time) of the first. */
    redisAppendCommand(redis, "HSETNX %s %s %s", key, reservation_id, value);
    redisAppendCommand(redis, "PEXPIREAT %s %s NX", key, at);
    redisAppendCommand(redis, "PEXPIREAT %s %s GT", key, at);
    return drain(redis, 3);
}

int rsv_pending_get(redisContext *redis, uint64_t user_id, const char *reservation_id, int64_t now_ms,
                    struct rsv_pending *out)
{
    TK_ASSERT(redis != NULL && reservation_id != NULL && out != NULL);
    char key[KEY_BYTES];
    pending_key(user_id, key);
    redisReply *reply = redisCommand(redis, "HGET %s %s", key, reservation_id);
    if (reply == NULL)
        return -1;
    int found = -1;
    if (reply->type == REDIS_REPLY_NIL)
        found = 0;
    else if (reply->type == REDIS_REPLY_STRING)
        found = rsv_pending_decode(reply->str, reply->len, out) && out->expires_ms > now_ms ? 1 : 0;
    freeReplyObject(reply);
    return found;
}

bool rsv_pending_remove(redisContext *redis, uint64_t user_id, const char *reservation_id)
{
    TK_ASSERT(redis != NULL && reservation_id != NULL);
    char key[KEY_BYTES];
    pending_key(user_id, key);
    redisReply *reply = redisCommand(redis, "HDEL %s %s", key, reservation_id);
    bool ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER;
    if (reply != NULL)
        freeReplyObject(reply);
    return ok;
}

/* Drops the fields named in stale[] (best effort, answer not needed). */
static void drop_stale(redisContext *redis, const char *key, const char **stale, uint32_t count)
{
    if (count == 0)
        return;
    const char *argv[2 + RSV_LIST_MAX];
    argv[0] = "HDEL";
    argv[1] = key;
    for (uint32_t i = 0; i < count; i++)
        argv[2 + i] = stale[i];
    redisReply *reply = redisCommandArgv(redis, (int)(2 + count), argv, NULL);
    if (reply != NULL)
        freeReplyObject(reply);
}

int rsv_pending_list(redisContext *redis, uint64_t user_id, int64_t now_ms, struct rsv_pending *out, uint32_t max)
{
    TK_ASSERT(redis != NULL && out != NULL && max <= RSV_LIST_MAX);
    char key[KEY_BYTES];
    pending_key(user_id, key);
    redisReply *reply = redisCommand(redis, "HGETALL %s", key);
    if (reply == NULL)
        return -1;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
        freeReplyObject(reply);
        return -1;
    }
    uint32_t count = 0, stale_count = 0;
    const char *stale[RSV_LIST_MAX];
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *field = reply->element[i], *value = reply->element[i + 1];
        if (field->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            continue;
        struct rsv_pending pending;
        bool valid = rsv_pending_decode(value->str, value->len, &pending);
        char id[RSV_ID_BYTES];
        if (valid)
            rsv_id_format(pending.event_id, pending.hold_id, id);
        /* A record under another id than its own is not one we wrote: drop it. */
        if (!valid || pending.expires_ms <= now_ms || strcmp(id, field->str) != 0) {
            if (stale_count < RSV_LIST_MAX)
                stale[stale_count++] = field->str;
            continue;
        }
        if (count < max)
            out[count++] = pending;
    }
    drop_stale(redis, key, stale, stale_count);
    freeReplyObject(reply);
    return (int)count;
}
