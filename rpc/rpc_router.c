/* rpc_router.c — event id -> seatcored shard (rpc_client.h).
 *
 * Jump consistent hash: when the shard list grows from n to n+1 only 1/(n+1) of
 * the events move, and the choice needs no table, so every service computes the
 * same owner from the same ordered list. The list order is part of the
 * deployment (the StatefulSet ordinal), never sorted here. */
#include <stdlib.h>

#include "rpc_client.h"
#include "tk_assert.h"
#include "tk_codec.h"

struct rpc_router {
    struct rpc_channel *channels[RPC_SHARDS_MAX];
    uint32_t count;
};

uint32_t rpc_jump_hash(uint64_t key, uint32_t buckets)
{
    TK_ASSERT(buckets >= 1);
    int64_t b = -1, j = 0;
    while (j < (int64_t)buckets) {
        b = j;
        key = key * UINT64_C(2862933555777941757) + 1;
        j = (int64_t)((double)(b + 1) * ((double)(INT64_C(1) << 31) / (double)((key >> 33) + 1)));
    }
    TK_ASSERT(b >= 0 && b < (int64_t)buckets);
    return (uint32_t)b;
}

struct rpc_router *rpc_router_create(const char *const *addresses, uint32_t count,
                                     const struct rpc_channel_options *options)
{
    TK_ASSERT(count >= 1 && count <= RPC_SHARDS_MAX);
    struct rpc_router *router = calloc(1, sizeof(*router));
    TK_ASSERT(router != NULL);
    for (uint32_t i = 0; i < count; i++)
        router->channels[i] = rpc_channel_open(addresses[i], options);
    router->count = count;
    return router;
}

void rpc_router_destroy(struct rpc_router *router)
{
    if (router == NULL)
        return;
    for (uint32_t i = 0; i < router->count; i++)
        rpc_channel_close(router->channels[i]);
    free(router);
}

uint32_t rpc_router_shard_of(const struct rpc_router *router, uint64_t event_id)
{
    /* Mix first: event ids are often small sequential numbers. */
    return rpc_jump_hash(tk_hash_u64(event_id), router->count);
}

struct rpc_channel *rpc_router_channel(struct rpc_router *router, uint64_t event_id)
{
    return router->channels[rpc_router_shard_of(router, event_id)];
}

uint32_t rpc_router_shards(const struct rpc_router *router)
{
    return router->count;
}

struct rpc_channel *rpc_router_shard_channel(struct rpc_router *router, uint32_t shard)
{
    TK_ASSERT(shard < router->count);
    return router->channels[shard];
}
