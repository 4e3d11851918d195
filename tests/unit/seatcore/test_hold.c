/* test_hold.c — holds, confirms, releases, expiry, returns, caps and
 * idempotency (seatcore/hold.c through the public API), failure paths included. */
#include <criterion/criterion.h>
#include <string.h>

#include "seatcore.h"
#include "tk_test_support.h"

#define EVENT 42u
#define ALICE 1001u
#define BOB 1002u

static struct tk_clock_manual clock_;
static struct sc_engine *engine;

static void setup_with(uint32_t max_per_user, uint32_t holds_max)
{
    engine = tk_test_engine(&clock_, NULL);
    struct sc_event_spec spec;
    tk_test_spec(&spec, EVENT, 2, 4, 10); /* 80 seats: section 0 = seats 0..39 */
    spec.max_seats_per_user = max_per_user;
    spec.holds_max = holds_max;
    uint64_t lsn;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
}

static void setup(void)
{
    setup_with(10, 0);
}

static void teardown(void)
{
    if (engine != NULL)
        tk_test_check_counts(engine, EVENT);
    sc_engine_close(engine);
    engine = NULL;
}

static enum sc_seat_state seat_state(uint32_t seat, uint64_t *owner)
{
    enum sc_seat_state state;
    uint64_t user;
    cr_assert_eq(sc_seat_get(engine, EVENT, seat, &state, &user), TK_OK);
    if (owner != NULL)
        *owner = user;
    return state;
}

TestSuite(hold, .init = setup, .fini = teardown);

/* For tests that need other limits than the suite's setup gives. */
static void reopen_with(uint32_t max_per_user, uint32_t holds_max)
{
    sc_engine_close(engine);
    setup_with(max_per_user, holds_max);
}

Test(hold, holds_seats_and_reports_amount_and_expiry)
{
    struct sc_hold_request request = {.event_id = EVENT, .user_id = ALICE, .seat_count = 3, .seats = {41, 5, 6}};
    struct sc_hold_result result;
    uint64_t lsn = 99;
    cr_assert_eq(sc_hold(engine, &request, &result, &lsn), TK_OK);
    cr_assert_eq(lsn, 0, "memory-only engines have nothing to wait for");
    cr_assert_eq(result.seat_count, 3);
    cr_assert_eq(result.seats[0], 5);
    cr_assert_eq(result.seats[2], 41);
    cr_assert_eq(result.amount_cents, 1000 + 1000 + 1100);
    cr_assert_eq(result.expires_at_ms, tk_clock_now_ms(&clock_.base) + 60000);
    uint64_t owner;
    cr_assert_eq(seat_state(5, &owner), SC_SEAT_HELD);
    cr_assert_eq(owner, ALICE);
    struct sc_event_info info;
    cr_assert_eq(sc_event_get(engine, EVENT, &info), TK_OK);
    cr_assert_eq(info.counts.held, 3);
    cr_assert_eq(info.counts.free, 77);
    cr_assert_eq(info.active_holds, 1);
    cr_assert_gt(info.version, 0);
}

Test(hold, conflict_takes_nothing_and_lists_every_unavailable_seat)
{
    uint64_t first;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){3, 7}, 2, &first), TK_OK);
    struct sc_hold_request request = {.event_id = EVENT, .user_id = BOB, .seat_count = 4, .seats = {2, 3, 4, 7}};
    struct sc_hold_result result;
    uint64_t lsn;
    cr_assert_eq(sc_hold(engine, &request, &result, &lsn), TK_ERR_SEAT_CONFLICT);
    cr_assert_eq(result.unavailable_count, 2);
    cr_assert_eq(result.unavailable[0], 3);
    cr_assert_eq(result.unavailable[1], 7);
    cr_assert_eq(seat_state(2, NULL), SC_SEAT_FREE, "all or nothing: seat 2 was given back");
    cr_assert_eq(seat_state(4, NULL), SC_SEAT_FREE);
}

Test(hold, refuses_malformed_requests)
{
    struct sc_hold_result result;
    uint64_t lsn;
    struct sc_hold_request bad[] = {
        {.event_id = EVENT, .user_id = ALICE, .seat_count = 1, .seats = {80}},      /* out of range */
        {.event_id = EVENT, .user_id = ALICE, .seat_count = 2, .seats = {4, 4}},    /* duplicate */
        {.event_id = EVENT, .user_id = ALICE, .seat_count = 0},                     /* nothing asked */
        {.event_id = EVENT, .user_id = ALICE, .seat_count = 11},                    /* too many */
        {.event_id = EVENT, .user_id = 0, .seat_count = 1, .seats = {1}},           /* no user */
        {.event_id = EVENT, .user_id = TK_USER_ID_MAX + 1, .seat_count = 1},        /* user id too large */
        {.event_id = EVENT, .user_id = ALICE, .best_count = 11},                    /* too many best */
        {.event_id = EVENT, .user_id = ALICE, .best_count = 2, .best_section = 2},  /* no such section */
        {.event_id = EVENT, .user_id = ALICE, .seat_count = 1, .best_count = 1},    /* both forms */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(sc_hold(engine, &bad[i], &result, &lsn), TK_ERR_INVALID, "case %zu", i);
    struct sc_hold_request unknown = {.event_id = 7, .user_id = ALICE, .seat_count = 1, .seats = {1}};
    cr_assert_eq(sc_hold(engine, &unknown, &result, &lsn), TK_ERR_NOT_FOUND);
}

Test(hold, release_by_owner_only_and_once)
{
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){10, 11}, 2, &hold), TK_OK);
    uint64_t lsn;
    cr_assert_eq(sc_release(engine, EVENT, BOB, hold, &lsn), TK_ERR_NOT_OWNER);
    cr_assert_eq(seat_state(10, NULL), SC_SEAT_HELD);
    cr_assert_eq(sc_release(engine, EVENT, ALICE, hold, &lsn), TK_OK);
    cr_assert_eq(seat_state(10, NULL), SC_SEAT_FREE);
    cr_assert_eq(sc_release(engine, EVENT, ALICE, hold, &lsn), TK_ERR_NOT_FOUND);
    cr_assert_eq(sc_release(engine, EVENT, ALICE, hold + 12345, &lsn), TK_ERR_NOT_FOUND);
    struct sc_hold_info info;
    cr_assert_eq(sc_hold_get(engine, EVENT, hold, &info), TK_ERR_NOT_FOUND);
}

Test(hold, confirm_sells_to_the_owner)
{
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){20, 21}, 2, &hold), TK_OK);
    struct sc_hold_result result;
    uint64_t lsn;
    cr_assert_eq(sc_confirm(engine, EVENT, BOB, hold, 0, &result, &lsn), TK_ERR_NOT_OWNER);
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, hold, 0, &result, &lsn), TK_OK);
    cr_assert_eq(result.seat_count, 2);
    cr_assert_eq(result.amount_cents, 2000);
    uint64_t owner;
    cr_assert_eq(seat_state(21, &owner), SC_SEAT_SOLD);
    cr_assert_eq(owner, ALICE);
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, hold, 0, &result, &lsn), TK_ERR_NOT_FOUND, "a hold ends once");
    uint64_t other;
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB, (uint32_t[]){21}, 1, &other), TK_ERR_SEAT_CONFLICT);
}

Test(hold, expired_hold_cannot_be_confirmed_and_frees_its_seats)
{
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){30}, 1, &hold), TK_OK);
    tk_clock_manual_advance(&clock_, 60000);
    struct sc_hold_result result;
    uint64_t lsn;
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, hold, 0, &result, &lsn), TK_ERR_HOLD_EXPIRED);
    cr_assert_eq(seat_state(30, NULL), SC_SEAT_FREE);
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, hold, 0, &result, &lsn), TK_ERR_HOLD_EXPIRED,
                 "the slot still remembers how the hold ended");
    struct sc_metrics metrics;
    sc_engine_metrics(engine, &metrics);
    cr_assert_eq(metrics.expirations, 1);
}

Test(hold, stale_hold_is_expired_lazily_by_the_next_claimant)
{
    uint64_t hold, taken;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){12, 13}, 2, &hold), TK_OK);
    tk_clock_manual_advance(&clock_, 59999);
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB, (uint32_t[]){13}, 1, &taken), TK_ERR_SEAT_CONFLICT);
    tk_clock_manual_advance(&clock_, 1);
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB, (uint32_t[]){13}, 1, &taken), TK_OK);
    cr_assert_eq(seat_state(12, NULL), SC_SEAT_FREE, "the whole stale hold went, not just the seat in the way");
    struct sc_hold_info info;
    cr_assert_eq(sc_hold_get(engine, EVENT, hold, &info), TK_ERR_HOLD_EXPIRED);
}

Test(hold, sweeper_expires_holds_within_a_tick)
{
    for (uint32_t i = 0; i < 20; i++) {
        uint64_t hold;
        cr_assert_eq(tk_test_hold(engine, EVENT, ALICE + i, (uint32_t[]){i}, 1, &hold), TK_OK);
    }
    sc_engine_tick(engine);
    struct sc_event_info info;
    cr_assert_eq(sc_event_get(engine, EVENT, &info), TK_OK);
    cr_assert_eq(info.counts.held, 20, "nothing expires early");
    tk_clock_manual_advance(&clock_, 60000);
    sc_engine_tick(engine);
    cr_assert_eq(sc_event_get(engine, EVENT, &info), TK_OK);
    cr_assert_eq(info.counts.held, 0);
    cr_assert_eq(info.counts.free, 80);
    cr_assert_eq(info.active_holds, 0);
}

Test(hold, per_user_cap_counts_held_and_sold_seats)
{
    reopen_with(4, 0);
    uint64_t a, b, c;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){0, 1, 2}, 3, &a), TK_OK);
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){3, 4}, 2, &b), TK_ERR_CAP_REACHED);
    cr_assert_eq(seat_state(3, NULL), SC_SEAT_FREE);
    struct sc_hold_result result;
    uint64_t lsn;
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, a, 0, &result, &lsn), TK_OK);
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){3, 4}, 2, &b), TK_ERR_CAP_REACHED,
                 "bought seats count too");
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){3}, 1, &b), TK_OK);
    cr_assert_eq(sc_release(engine, EVENT, ALICE, b, &lsn), TK_OK);
    cr_assert_eq(sc_return_seat(engine, EVENT, ALICE, 0, &lsn), TK_OK);
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){3, 4}, 2, &c), TK_OK, "a return frees the cap");
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB, (uint32_t[]){5, 6, 7, 8}, 4, &c), TK_OK, "caps are per user");
}

Test(hold, return_of_a_sold_seat)
{
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){15, 16}, 2, &hold), TK_OK);
    uint64_t lsn;
    cr_assert_eq(sc_return_seat(engine, EVENT, ALICE, 15, &lsn), TK_ERR_NOT_FOUND, "a held seat is not sold");
    struct sc_hold_result result;
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, hold, 0, &result, &lsn), TK_OK);
    cr_assert_eq(sc_return_seat(engine, EVENT, BOB, 15, &lsn), TK_ERR_NOT_OWNER);
    cr_assert_eq(sc_return_seat(engine, EVENT, ALICE, 15, &lsn), TK_OK);
    cr_assert_eq(seat_state(15, NULL), SC_SEAT_FREE);
    cr_assert_eq(seat_state(16, NULL), SC_SEAT_SOLD);
    cr_assert_eq(sc_return_seat(engine, EVENT, ALICE, 15, &lsn), TK_ERR_NOT_FOUND);
    cr_assert_eq(sc_return_seat(engine, EVENT, ALICE, 80, &lsn), TK_ERR_INVALID);
    uint64_t again;
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB, (uint32_t[]){15}, 1, &again), TK_OK, "back on sale");
}

Test(hold, idempotency_key_returns_the_first_answer)
{
    struct sc_hold_request request = {.event_id = EVENT, .user_id = ALICE, .seat_count = 2, .seats = {1, 2},
                                      .idempotency_key = 777};
    struct sc_hold_result first, again;
    uint64_t lsn;
    cr_assert_eq(sc_hold(engine, &request, &first, &lsn), TK_OK);
    cr_assert(!first.replayed);
    cr_assert_eq(sc_hold(engine, &request, &again, &lsn), TK_OK);
    cr_assert(again.replayed);
    cr_assert_eq(again.hold_id, first.hold_id);
    cr_assert_eq(again.seat_count, 2);
    cr_assert_eq(again.expires_at_ms, first.expires_at_ms);
    struct sc_event_info info;
    sc_event_get(engine, EVENT, &info);
    cr_assert_eq(info.active_holds, 1, "one hold, not two");
    request.seats[1] = 3;
    cr_assert_eq(sc_hold(engine, &request, &again, &lsn), TK_ERR_IDEMPOTENCY_MISMATCH);
    request.user_id = BOB; /* keys are per user: Bob's 777 is another key */
    cr_assert_eq(sc_hold(engine, &request, &again, &lsn), TK_ERR_SEAT_CONFLICT);
    cr_assert_eq(sc_hold(engine, &request, &again, &lsn), TK_ERR_SEAT_CONFLICT);
    cr_assert(again.replayed, "a conflict is a first answer too");
    cr_assert_eq(again.unavailable_count, 1);
    cr_assert_eq(again.unavailable[0], 1);
}

Test(hold, confirm_with_idempotency_key_is_safe_to_retry)
{
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){25}, 1, &hold), TK_OK);
    struct sc_hold_result result;
    uint64_t lsn;
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, hold, 55, &result, &lsn), TK_OK);
    cr_assert(!result.replayed);
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, hold, 55, &result, &lsn), TK_OK);
    cr_assert(result.replayed);
    cr_assert_eq(result.hold_id, hold);
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, hold + 1, 55, &result, &lsn), TK_ERR_IDEMPOTENCY_MISMATCH);
}

Test(hold, closed_and_cancelled_events)
{
    uint64_t hold, lsn;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){1}, 1, &hold), TK_OK);
    cr_assert_eq(sc_event_close(engine, EVENT, &lsn), TK_OK);
    uint64_t other;
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB, (uint32_t[]){2}, 1, &other), TK_ERR_EVENT_CLOSED);
    struct sc_hold_result result;
    cr_assert_eq(sc_confirm(engine, EVENT, ALICE, hold, 0, &result, &lsn), TK_OK, "paying for a hold still works");
    cr_assert_eq(sc_event_cancel(engine, EVENT, &lsn), TK_OK);
    cr_assert_eq(sc_event_close(engine, EVENT, &lsn), TK_ERR_EVENT_CLOSED);
    cr_assert_eq(sc_return_seat(engine, EVENT, ALICE, 1, &lsn), TK_OK, "refunds after a cancel");
    struct sc_event_info info;
    sc_event_get(engine, EVENT, &info);
    cr_assert_eq(info.state, SC_EVENT_CANCELLED);
}

Test(hold, sale_not_open_yet)
{
    struct sc_event_spec spec;
    tk_test_spec(&spec, 77, 1, 1, 5);
    spec.sale_opens_at_ms = tk_clock_now_ms(&clock_.base) + 1000;
    uint64_t lsn, hold;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    cr_assert_eq(tk_test_hold(engine, 77, ALICE, (uint32_t[]){1}, 1, &hold), TK_ERR_EVENT_CLOSED);
    tk_clock_manual_advance(&clock_, 1000);
    cr_assert_eq(tk_test_hold(engine, 77, ALICE, (uint32_t[]){1}, 1, &hold), TK_OK);
}

Test(hold, hold_table_bound_is_a_clear_error)
{
    reopen_with(10, 3);
    uint64_t hold;
    for (uint32_t i = 0; i < 3; i++)
        cr_assert_eq(tk_test_hold(engine, EVENT, ALICE + i, (uint32_t[]){i}, 1, &hold), TK_OK);
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB + 10, (uint32_t[]){9}, 1, &hold), TK_ERR_FULL);
    cr_assert_eq(seat_state(9, NULL), SC_SEAT_FREE);
    tk_clock_manual_advance(&clock_, 60000);
    sc_engine_tick(engine);
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB + 10, (uint32_t[]){9}, 1, &hold), TK_OK, "slots come back");
}

Test(hold, hold_ids_are_never_reused)
{
    uint64_t ids[50];
    uint64_t lsn;
    for (uint32_t i = 0; i < 50; i++) {
        cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){i % 5}, 1, &ids[i]), TK_OK);
        cr_assert_eq(sc_release(engine, EVENT, ALICE, ids[i], &lsn), TK_OK);
        for (uint32_t j = 0; j < i; j++)
            cr_assert_neq(ids[i], ids[j]);
    }
}

Test(hold, hold_get_describes_a_live_hold)
{
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB, (uint32_t[]){33, 31}, 2, &hold), TK_OK);
    struct sc_hold_info info;
    cr_assert_eq(sc_hold_get(engine, EVENT, hold, &info), TK_OK);
    cr_assert_eq(info.user_id, BOB);
    cr_assert_eq(info.seat_count, 2);
    cr_assert_eq(info.seats[0], 31);
    cr_assert_eq(info.seats[1], 33);
    cr_assert_eq(sc_hold_get(engine, EVENT + 1, hold, &info), TK_ERR_NOT_FOUND);
}

Test(hold, availability_copy_matches_seat_states)
{
    uint64_t a, b, lsn;
    cr_assert_eq(tk_test_hold(engine, EVENT, ALICE, (uint32_t[]){0, 79}, 2, &a), TK_OK);
    cr_assert_eq(tk_test_hold(engine, EVENT, BOB, (uint32_t[]){40}, 1, &b), TK_OK);
    struct sc_hold_result result;
    cr_assert_eq(sc_confirm(engine, EVENT, BOB, b, 0, &result, &lsn), TK_OK);
    uint8_t states[20];
    uint64_t version;
    struct sc_counts counts;
    cr_assert_eq(sc_availability_copy(engine, EVENT, states, 19, &version, &counts), TK_ERR_INVALID);
    cr_assert_eq(sc_availability_copy(engine, EVENT, states, sizeof(states), &version, &counts), TK_OK);
    cr_assert_eq(sc_availability_state(states, 0), SC_SEAT_HELD);
    cr_assert_eq(sc_availability_state(states, 79), SC_SEAT_HELD);
    cr_assert_eq(sc_availability_state(states, 40), SC_SEAT_SOLD);
    cr_assert_eq(sc_availability_state(states, 41), SC_SEAT_FREE);
    cr_assert_eq(counts.held, 2);
    cr_assert_eq(counts.sold, 1);
    cr_assert_eq(counts.free, 77);
    struct sc_event_info info;
    sc_event_get(engine, EVENT, &info);
    cr_assert_eq(info.version, version);
}
