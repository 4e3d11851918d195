/* test_best.c — best-available selection (seatcore/best.c): adjacency, front
 * rows first, no single-seat holes where avoidable, closest group, sections. */
#include <criterion/criterion.h>
#include <string.h>

#include "seatcore.h"
#include "tk_test_support.h"

#define EVENT 9u

static struct tk_clock_manual clock_;
static struct sc_engine *engine;
static uint64_t next_user = 5000;

static void make_event(uint32_t sections, uint32_t rows, uint32_t per_row)
{
    engine = tk_test_engine(&clock_, NULL);
    struct sc_event_spec spec;
    tk_test_spec(&spec, EVENT, sections, rows, per_row);
    uint64_t lsn;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
}

static void teardown(void)
{
    tk_test_check_counts(engine, EVENT);
    sc_engine_close(engine);
}

static void take(const uint32_t *seats, uint32_t count)
{
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, next_user++, seats, count, &hold), TK_OK);
}

static enum tk_status best(uint32_t count, int32_t section, struct sc_hold_result *result)
{
    struct sc_hold_request request = {.event_id = EVENT, .user_id = next_user++, .best_count = count,
                                      .best_section = section};
    uint64_t lsn;
    return sc_hold(engine, &request, result, &lsn);
}

static void assert_seats(const struct sc_hold_result *result, const uint32_t *expected, uint32_t count)
{
    cr_assert_eq(result->seat_count, count);
    for (uint32_t i = 0; i < count; i++)
        cr_assert_eq(result->seats[i], expected[i], "seat %u: got %u want %u", i, result->seats[i], expected[i]);
}

TestSuite(best, .fini = teardown);

Test(best, adjacent_seats_in_the_front_row)
{
    make_event(1, 3, 10);
    struct sc_hold_result result;
    cr_assert_eq(best(4, -1, &result), TK_OK);
    assert_seats(&result, (uint32_t[]){0, 1, 2, 3}, 4);
    cr_assert_eq(best(3, -1, &result), TK_OK);
    assert_seats(&result, (uint32_t[]){4, 5, 6}, 3);
}

Test(best, prefers_an_exact_fit_in_the_row)
{
    make_event(1, 2, 10);
    take((uint32_t[]){3}, 1); /* row 0 free runs: 0-2 (3 seats), 4-9 (6 seats) */
    struct sc_hold_result result;
    cr_assert_eq(best(3, -1, &result), TK_OK);
    assert_seats(&result, (uint32_t[]){0, 1, 2}, 3);
}

Test(best, avoids_leaving_a_single_seat_hole)
{
    make_event(1, 2, 5);
    take((uint32_t[]){0}, 1); /* row 0: run 1-4 (4 seats); taking 3 there strands one seat */
    struct sc_hold_result result;
    cr_assert_eq(best(3, -1, &result), TK_OK);
    assert_seats(&result, (uint32_t[]){5, 6, 7}, 3); /* row 1 leaves a pair */
    cr_assert_eq(best(3, -1, &result), TK_OK);
    assert_seats(&result, (uint32_t[]){1, 2, 3}, 3); /* no better choice remains: the hole is unavoidable */
}

Test(best, closest_group_when_no_row_has_adjacent_seats)
{
    make_event(1, 2, 6);
    take((uint32_t[]){1, 3, 5}, 3);      /* row 0 free: 0, 2, 4 */
    take((uint32_t[]){6, 7, 9, 10}, 4);  /* row 1 free: 8, 11 */
    struct sc_hold_result result;
    cr_assert_eq(best(2, -1, &result), TK_OK);
    assert_seats(&result, (uint32_t[]){0, 2}, 2); /* span 2 in row 0 beats span 3 in row 1 */
}

Test(best, scattered_across_rows_as_a_last_resort)
{
    make_event(1, 3, 3);
    take((uint32_t[]){0, 1}, 2);
    take((uint32_t[]){3, 4}, 2);
    take((uint32_t[]){7, 8}, 2);
    struct sc_hold_result result; /* free: 2, 5, 6 */
    cr_assert_eq(best(3, -1, &result), TK_OK);
    assert_seats(&result, (uint32_t[]){2, 5, 6}, 3);
    cr_assert_eq(best(1, -1, &result), TK_ERR_SOLD_OUT);
}

Test(best, stays_inside_the_requested_section)
{
    make_event(2, 2, 4); /* section 1 = seats 8..15 */
    struct sc_hold_result result;
    cr_assert_eq(best(4, 1, &result), TK_OK);
    assert_seats(&result, (uint32_t[]){8, 9, 10, 11}, 4);
    cr_assert_eq(result.amount_cents, 4 * 1100);
    cr_assert_eq(best(4, 1, &result), TK_OK);
    assert_seats(&result, (uint32_t[]){12, 13, 14, 15}, 4);
    cr_assert_eq(best(1, 1, &result), TK_ERR_SOLD_OUT);
    cr_assert_eq(best(1, 0, &result), TK_OK);
}

Test(best, fills_a_whole_event_without_losing_seats)
{
    make_event(3, 5, 7); /* 105 seats */
    uint32_t held = 0;
    struct sc_hold_result result;
    for (uint32_t round = 0; round < 200; round++) {
        uint32_t count = 1 + round % 4;
        enum tk_status status = best(count, -1, &result);
        if (status == TK_ERR_SOLD_OUT) {
            cr_assert_lt(105 - held, count, "sold out only when fewer seats are left than asked");
            continue;
        }
        cr_assert_eq(status, TK_OK);
        held += count;
    }
    struct sc_event_info info;
    sc_event_get(engine, EVENT, &info);
    cr_assert_eq(info.counts.held, held);
    cr_assert_geq(held, 102);
}
