/* test_edge_ratelimit.c — tests edge/edge_ratelimit.c: the token bucket
 * (burst, refill, Retry-After) and the bounded, striped table of buckets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../edge/edge_ratelimit.c"

Test(edge_ratelimit, a_bucket_gives_its_burst_then_refills_at_the_rate)
{
    struct edge_bucket b = {0};
    uint32_t retry = 0;
    for (int i = 0; i < 5; i++)
        cr_assert(edge_bucket_take(&b, 2.0, 5.0, 1000, &retry), "burst of 5, take %d", i);
    cr_assert(!edge_bucket_take(&b, 2.0, 5.0, 1000, &retry));
    cr_assert_eq(retry, 1, "one token comes back in 0.5 s: Retry-After rounds up to 1");
    cr_assert(!edge_bucket_take(&b, 2.0, 5.0, 1400, &retry));
    cr_assert(edge_bucket_take(&b, 2.0, 5.0, 1500, &retry), "2 per second: one every 500 ms");
    cr_assert(!edge_bucket_take(&b, 2.0, 5.0, 1500, &retry));
    cr_assert(edge_bucket_take(&b, 2.0, 5.0, 100000, &retry));
    cr_assert(b.tokens <= 5.0, "never above the burst");
    cr_assert(b.tokens >= 3.99);
}

Test(edge_ratelimit, retry_after_is_the_wait_for_one_token)
{
    struct edge_bucket b = {0};
    uint32_t retry = 0;
    cr_assert(edge_bucket_take(&b, 0.1, 1.0, 5000, &retry));
    cr_assert(!edge_bucket_take(&b, 0.1, 1.0, 5000, &retry));
    cr_assert_eq(retry, 10, "0.1 per second: 10 s");
    cr_assert(!edge_bucket_take(&b, 0.1, 1.0, 12000, &retry));
    cr_assert_eq(retry, 3);
    cr_assert(edge_bucket_take(&b, 0.1, 1.0, 15000, &retry));
}

Test(edge_ratelimit, a_clock_going_back_does_not_mint_tokens)
{
    struct edge_bucket b = {0};
    uint32_t retry = 0;
    cr_assert(edge_bucket_take(&b, 1.0, 1.0, 10000, &retry));
    cr_assert(!edge_bucket_take(&b, 1.0, 1.0, 5000, &retry));
    cr_assert(!edge_bucket_take(&b, 1.0, 1.0, 10500, &retry));
    cr_assert(edge_bucket_take(&b, 1.0, 1.0, 11000, &retry));
}

Test(edge_ratelimit, keys_have_their_own_buckets)
{
    struct edge_ratelimit *limit = edge_ratelimit_create(1024, 1.0, 2.0, 42);
    uint32_t retry = 0;
    cr_assert(edge_ratelimit_enabled(limit));
    cr_assert(edge_ratelimit_take(limit, "ip:10.0.0.1", 11, 1000, &retry));
    cr_assert(edge_ratelimit_take(limit, "ip:10.0.0.1", 11, 1000, &retry));
    cr_assert(!edge_ratelimit_take(limit, "ip:10.0.0.1", 11, 1000, &retry));
    cr_assert_eq(retry, 1);
    cr_assert(edge_ratelimit_take(limit, "ip:10.0.0.2", 11, 1000, &retry), "another address is not limited");
    cr_assert(edge_ratelimit_take(limit, "ip:10.0.0.1", 11, 2000, &retry), "refilled");
    edge_ratelimit_destroy(limit);
}

Test(edge_ratelimit, a_rate_of_zero_disables_it)
{
    struct edge_ratelimit *limit = edge_ratelimit_create(64, 0.0, 0.0, 1);
    uint32_t retry = 7;
    cr_assert(!edge_ratelimit_enabled(limit));
    for (int i = 0; i < 1000; i++)
        cr_assert(edge_ratelimit_take(limit, "k", 1, 1, &retry));
    cr_assert_eq(retry, 0);
    edge_ratelimit_destroy(limit);
}

Test(edge_ratelimit, keys_keep_their_buckets_while_there_is_room)
{
    struct edge_ratelimit *limit = edge_ratelimit_create(4096, 1.0, 2.0, 7);
    uint32_t retry = 0;
    char key[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 500; i++) {
            snprintf(key, sizeof(key), "user:%d", i);
            bool ok = edge_ratelimit_take(limit, key, strlen(key), 1000, &retry);
            cr_assert_eq(ok, round < 2, "key %d, take %d: a burst of 2, then limited", i, round);
        }
    edge_ratelimit_destroy(limit);
}

Test(edge_ratelimit, the_table_is_bounded_whatever_the_number_of_keys)
{
    /* 64 slots for 100,000 addresses: memory stays what it was at start; a newcomer takes the
     * idlest slot of its probe window and starts with a full bucket (an evicted bucket would
     * only have handed its owner a fresh burst, once). */
    struct edge_ratelimit *limit = edge_ratelimit_create(64, 1.0, 3.0, 7);
    uint32_t retry = 0;
    char key[32];
    int granted = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "ip:%d", i);
        granted += edge_ratelimit_take(limit, key, strlen(key), 1000 + (uint64_t)i, &retry);
    }
    cr_assert_eq(granted, 100000);
    for (uint32_t s = 0; s < EDGE_RATE_STRIPES; s++)
        cr_assert_eq(limit->stripes[s].slot_count, 1);
    edge_ratelimit_destroy(limit);
}
