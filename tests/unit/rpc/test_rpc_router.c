/* test_rpc_router.c — jump consistent hash and the shard router
 * (rpc/rpc_router.c): stable, balanced, and minimal movement on growth. */
#include <criterion/criterion.h>

#include "rpc_client.h"
#include "tk_codec.h"

Test(rpc_router, jump_hash_is_in_range_and_stable)
{
    for (uint64_t key = 0; key < 10000; key++) {
        uint32_t b = rpc_jump_hash(key, 7);
        cr_assert_lt(b, 7);
        cr_assert_eq(b, rpc_jump_hash(key, 7));
    }
    cr_assert_eq(rpc_jump_hash(12345, 1), 0);
}

Test(rpc_router, keys_spread_evenly)
{
    uint32_t counts[8] = {0};
    for (uint64_t id = 1; id <= 80000; id++)
        counts[rpc_jump_hash(tk_hash_u64(id), 8)]++;
    for (int b = 0; b < 8; b++)
        cr_assert(counts[b] > 9000 && counts[b] < 11000, "bucket %d has %u", b, counts[b]);
}

Test(rpc_router, growing_the_list_moves_only_the_share_of_the_new_shard)
{
    uint32_t moved = 0;
    for (uint64_t id = 1; id <= 40000; id++) {
        uint32_t before = rpc_jump_hash(tk_hash_u64(id), 4), after = rpc_jump_hash(tk_hash_u64(id), 5);
        if (before != after) {
            cr_assert_eq(after, 4, "a key only ever moves to the new shard");
            moved++;
        }
    }
    cr_assert(moved > 6500 && moved < 9500, "about a fifth moved: %u", moved);
}

Test(rpc_router, router_routes_by_event_id)
{
    const char *shards[] = {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"};
    struct rpc_router *router = rpc_router_create(shards, 3, NULL);
    cr_assert_eq(rpc_router_shards(router), 3);
    for (uint64_t id = 1; id < 100; id++) {
        uint32_t shard = rpc_router_shard_of(router, id);
        cr_assert_eq(rpc_router_channel(router, id), rpc_router_shard_channel(router, shard));
        cr_assert_str_eq(rpc_channel_target(rpc_router_channel(router, id)), shards[shard]);
    }
    rpc_router_destroy(router);
}
