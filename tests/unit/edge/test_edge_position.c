/* test_edge_position.c — tests edge/edge_position.c: the waiting-room position
 * from the feed (docs/services/queue.md's formula), the leave set and the ETA. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../edge/edge_position.c"

Test(edge_position, no_leaves)
{
    cr_assert_eq(edge_position(10, 10, NULL, 0), 1, "at the head: next");
    cr_assert_eq(edge_position(17, 10, NULL, 0), 8);
    cr_assert_eq(edge_position(9, 10, NULL, 0), 0, "below the head: not waiting any more");
    cr_assert_eq(edge_position(UINT32_MAX, 0, NULL, 0), UINT32_MAX, "no overflow at the top");
}

Test(edge_position, leaves_between_the_head_and_the_rank_count)
{
    uint32_t left[] = {3, 12, 14, 20, 40};
    /* head 10, rank 20: 11 places up to and with it (10..20), minus 12 and 14 that left */
    cr_assert_eq(edge_position(20, 10, left, 5), 11 - 2);
    cr_assert_eq(edge_position(13, 10, left, 5), 3, "12 left; 14 is behind");
    cr_assert_eq(edge_position(12, 10, left, 5), 3, "a rank's own leave does not count");
    cr_assert_eq(edge_position(41, 10, left, 5), 32 - 4 + 0, "3 is below the head");
    cr_assert_eq(edge_left_count_between(left, 5, 10, 21), 3);
    cr_assert_eq(edge_left_count_between(left, 5, 21, 10), 0);
    cr_assert_eq(edge_left_count_between(left, 0, 0, 100), 0);
}

Test(edge_position, the_left_set_stays_sorted_unique_and_bounded)
{
    uint32_t storage[4];
    struct edge_left_set set = {.ranks = storage, .count = 0, .capacity = 4};
    cr_assert(edge_left_add(&set, 30));
    cr_assert(edge_left_add(&set, 10));
    cr_assert(edge_left_add(&set, 20));
    cr_assert(edge_left_add(&set, 20), "a duplicate message is harmless");
    cr_assert_eq(set.count, 3);
    cr_assert(edge_left_add(&set, 25));
    cr_assert(!edge_left_add(&set, 26), "full");
    cr_assert(edge_left_add(&set, 25), "present: fine even when full");
    uint32_t expected[] = {10, 20, 25, 30};
    cr_assert_arr_eq(storage, expected, sizeof(expected));
    edge_left_trim(&set, 21);
    cr_assert_eq(set.count, 2);
    cr_assert_eq(storage[0], 25);
    cr_assert_eq(storage[1], 30);
    edge_left_trim(&set, 100);
    cr_assert_eq(set.count, 0);
    edge_left_trim(&set, 200);
    cr_assert_eq(set.count, 0);
}

Test(edge_position, matches_a_brute_force_count)
{
    uint32_t storage[64];
    struct edge_left_set set = {.ranks = storage, .count = 0, .capacity = 64};
    unsigned seed = 12345;
    for (int i = 0; i < 40; i++) {
        seed = seed * 1103515245u + 12345u;
        edge_left_add(&set, (seed >> 16) % 200);
    }
    for (uint32_t head = 0; head < 200; head += 7)
        for (uint32_t rank = head; rank < 220; rank += 3) {
            uint32_t gone = 0;
            for (uint32_t i = 0; i < set.count; i++)
                gone += storage[i] >= head && storage[i] < rank;
            cr_assert_eq(edge_position(rank, head, storage, set.count), rank - head + 1 - gone);
        }
}

Test(edge_position, eta)
{
    cr_assert_eq(edge_eta_s(10, 2.0, 0, 0), 5, "measured rate");
    cr_assert_eq(edge_eta_s(10, 3.0, 0, 0), 4, "rounded up");
    cr_assert_eq(edge_eta_s(10, 0.0, 5, 0), 2, "no rate yet: the event's admit_per_s");
    cr_assert_eq(edge_eta_s(10, 0.0, 0, 0), 10, "neither: one a second");
    cr_assert_eq(edge_eta_s(1, 100.0, 0, 0), 1, "never 0 while waiting");
    cr_assert_eq(edge_eta_s(10, 2.0, 0, 60500), 5 + 61, "plus the time until the sale opens");
}
