/* edge_ratelimit.c — token buckets and their striped table (edge_ratelimit.h). */
#include "edge_ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "edge_limits.h"
#include "tk_assert.h"

bool edge_bucket_take(struct edge_bucket *bucket, double rate_per_s, double burst, uint64_t now_ms,
                      uint32_t *retry_after_s)
{
    TK_ASSERT(bucket != NULL && rate_per_s > 0 && burst >= 1);
    if (bucket->updated_ms == 0) {
        bucket->tokens = burst;
    } else if (now_ms > bucket->updated_ms) {
        bucket->tokens += (double)(now_ms - bucket->updated_ms) * rate_per_s / 1000.0;
        if (bucket->tokens > burst)
            bucket->tokens = burst;
    }
    if (now_ms > bucket->updated_ms || bucket->updated_ms == 0)
        bucket->updated_ms = now_ms == 0 ? 1 : now_ms;
    if (bucket->tokens >= 1.0) {
        bucket->tokens -= 1.0;
        return true;
    }
    double wait_s = (1.0 - bucket->tokens) / rate_per_s;
    uint32_t seconds = (uint32_t)ceil(wait_s - 1e-9); /* 2.9999999997 is 3 s, not 4 */
    *retry_after_s = seconds == 0 ? 1 : seconds;
    TK_ASSERT(bucket->tokens < 1.0 && bucket->tokens >= 0.0 - 1e-9);
    return false;
}

struct slot {
    uint64_t hash; /* 0: empty */
    struct edge_bucket bucket;
};

struct stripe {
    pthread_mutex_t lock;
    struct slot *slots;
    uint32_t slot_count;
} __attribute__((aligned(64)));

struct edge_ratelimit {
    double rate_per_s, burst;
    uint64_t seed;
    struct stripe stripes[EDGE_RATE_STRIPES];
};

static uint64_t hash_key(uint64_t seed, const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ seed; /* FNV-1a, seeded, then a final mix */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)key[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h == 0 ? 1 : h;
}

struct edge_ratelimit *edge_ratelimit_create(uint32_t keys_max, double rate_per_s, double burst, uint64_t seed)
{
    TK_ASSERT(keys_max >= EDGE_RATE_STRIPES && keys_max <= EDGE_RATE_KEYS_MAX_MAX);
    TK_ASSERT(rate_per_s >= 0 && (rate_per_s == 0 || burst >= 1));
    struct edge_ratelimit *limit = calloc(1, sizeof(*limit));
    TK_ASSERT(limit != NULL);
    limit->rate_per_s = rate_per_s;
    limit->burst = burst;
    if (seed == 0 && getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = 0x9e3779b97f4a7c15ull;
    limit->seed = seed;
    uint32_t per_stripe = keys_max / EDGE_RATE_STRIPES;
    for (uint32_t i = 0; i < EDGE_RATE_STRIPES && rate_per_s > 0; i++) {
        pthread_mutex_init(&limit->stripes[i].lock, NULL);
        limit->stripes[i].slots = calloc(per_stripe, sizeof(struct slot));
        TK_ASSERT(limit->stripes[i].slots != NULL);
        limit->stripes[i].slot_count = per_stripe;
    }
    return limit;
}

void edge_ratelimit_destroy(struct edge_ratelimit *limit)
{
    if (limit == NULL)
        return;
    for (uint32_t i = 0; i < EDGE_RATE_STRIPES && limit->rate_per_s > 0; i++) {
        pthread_mutex_destroy(&limit->stripes[i].lock);
        free(limit->stripes[i].slots);
    }
    free(limit);
}

bool edge_ratelimit_enabled(const struct edge_ratelimit *limit)
{
    return limit != NULL && limit->rate_per_s > 0;
}

/* The slot of hash in stripe: its own, else an empty one, else the idlest. */
static struct slot *find_slot(struct stripe *stripe, uint64_t hash)
{
    struct slot *empty = NULL, *idlest = NULL;
    uint32_t start = (uint32_t)(hash >> 6) % stripe->slot_count;
    for (uint32_t probe = 0; probe < EDGE_RATE_PROBES && probe < stripe->slot_count; probe++) {
        struct slot *slot = &stripe->slots[(start + probe) % stripe->slot_count];
        if (slot->hash == hash)
            return slot;
        if (slot->hash == 0) {
            if (empty == NULL)
                empty = slot;
        } else if (idlest == NULL || slot->bucket.updated_ms < idlest->bucket.updated_ms) {
            idlest = slot;
        }
    }
    struct slot *slot = empty != NULL ? empty : idlest;
    TK_ASSERT(slot != NULL);
    slot->hash = hash;
    slot->bucket = (struct edge_bucket){0};
    return slot;
}

bool edge_ratelimit_take(struct edge_ratelimit *limit, const char *key, size_t key_len, uint64_t now_ms,
                         uint32_t *retry_after_s)
{
    TK_ASSERT(limit != NULL && key != NULL && retry_after_s != NULL);
    *retry_after_s = 0;
    if (limit->rate_per_s <= 0)
        return true;
    uint64_t hash = hash_key(limit->seed, key, key_len);
    struct stripe *stripe = &limit->stripes[hash & (EDGE_RATE_STRIPES - 1u)];
    pthread_mutex_lock(&stripe->lock);
    struct slot *slot = find_slot(stripe, hash);
    bool ok = edge_bucket_take(&slot->bucket, limit->rate_per_s, limit->burst, now_ms, retry_after_s);
    pthread_mutex_unlock(&stripe->lock);
    return ok;
}
