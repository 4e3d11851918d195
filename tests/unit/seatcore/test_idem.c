/* test_idem.c — the idempotency table (seatcore/idem.c): first answer wins,
 * mismatches and in-flight duplicates, the window bound, expiry, snapshots. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "idem.h"
#include "tk_limits.h"
#include "tk_test_support.h"

static struct idem_table *table;

static void setup(void)
{
    cr_assert_eq(idem_create(&table, 64, 10000), TK_OK);
}

static void teardown(void)
{
    idem_destroy(table);
}

TestSuite(idem, .init = setup, .fini = teardown);

Test(idem, first_answer_is_returned_to_repeats)
{
    uint64_t key = idem_key_scope(1, 2, IDEM_HOLD, 77);
    struct idem_answer found;
    uint32_t entry;
    cr_assert_eq(idem_begin(table, key, 555, 1000, &found, &entry), IDEM_CLAIMED);
    cr_assert_eq(idem_begin(table, key, 555, 1000, &found, &entry), IDEM_BUSY, "the first is still running");
    struct idem_answer answer = {.status = TK_OK, .hold_id = 42, .lsn = 9};
    idem_finish(table, entry, key, &answer, 1000);
    cr_assert_eq(idem_begin(table, key, 555, 2000, &found, &entry), IDEM_FOUND);
    cr_assert_eq(found.hold_id, 42);
    cr_assert_eq(found.lsn, 9);
    cr_assert_eq(idem_begin(table, key, 556, 2000, &found, &entry), IDEM_MISMATCH);
}

Test(idem, scoping_separates_users_events_and_operations)
{
    uint64_t a = idem_key_scope(1, 2, IDEM_HOLD, 77);
    cr_assert_neq(a, idem_key_scope(1, 3, IDEM_HOLD, 77));
    cr_assert_neq(a, idem_key_scope(2, 2, IDEM_HOLD, 77));
    cr_assert_neq(a, idem_key_scope(1, 2, IDEM_CONFIRM, 77));
    cr_assert_eq(a, idem_key_scope(1, 2, IDEM_HOLD, 77));
}

Test(idem, abandoned_claims_can_be_retried)
{
    uint64_t key = idem_key_scope(1, 2, IDEM_HOLD, 5);
    struct idem_answer found;
    uint32_t entry;
    cr_assert_eq(idem_begin(table, key, 1, 0, &found, &entry), IDEM_CLAIMED);
    idem_abandon(table, entry, key);
    cr_assert_eq(idem_begin(table, key, 1, 0, &found, &entry), IDEM_CLAIMED);
}

Test(idem, answers_expire_after_the_ttl_and_are_swept)
{
    uint64_t key = idem_key_scope(1, 2, IDEM_HOLD, 5);
    struct idem_answer found, answer = {.status = TK_ERR_SEAT_CONFLICT};
    uint32_t entry;
    cr_assert_eq(idem_begin(table, key, 1, 0, &found, &entry), IDEM_CLAIMED);
    idem_finish(table, entry, key, &answer, 0);
    cr_assert_eq(idem_begin(table, key, 1, 10000, &found, &entry), IDEM_FOUND);
    cr_assert_eq(found.status, TK_ERR_SEAT_CONFLICT);
    cr_assert_eq(idem_begin(table, key, 2, 12000, &found, &entry), IDEM_CLAIMED, "expired: a new request");
    idem_abandon(table, entry, key);
    cr_assert_eq(idem_sweep(table, 12000, 64), 64);
}

Test(idem, a_full_window_is_refused_not_overwritten)
{
    struct idem_answer found, answer = {.status = TK_OK};
    uint32_t entry;
    uint32_t claimed = 0, full = 0;
    for (uint64_t k = 1; k <= 200; k++) {
        uint64_t key = idem_key_scope(1, 2, IDEM_HOLD, k);
        enum idem_outcome outcome = idem_begin(table, key, 1, 0, &found, &entry);
        if (outcome == IDEM_FULL) {
            full++;
            continue;
        }
        cr_assert_eq(outcome, IDEM_CLAIMED);
        idem_finish(table, entry, key, &answer, 0);
        claimed++;
    }
    cr_assert_eq(claimed, 64, "every entry is usable");
    cr_assert_eq(full, 136);
    for (uint64_t k = 1; k <= 200; k++) {
        uint64_t key = idem_key_scope(1, 2, IDEM_HOLD, k);
        enum idem_outcome outcome = idem_begin(table, key, 1, 0, &found, &entry);
        cr_assert(outcome == IDEM_FOUND || outcome == IDEM_FULL);
    }
}

Test(idem, snapshot_round_trip_keeps_live_answers)
{
    struct idem_answer found, answer = {.status = TK_OK, .hold_id = 7};
    uint32_t entry;
    uint64_t keys[10];
    for (uint64_t k = 0; k < 10; k++) {
        keys[k] = idem_key_scope(3, 4, IDEM_CONFIRM, k + 1);
        cr_assert_eq(idem_begin(table, keys[k], k, 0, &found, &entry), IDEM_CLAIMED);
        answer.hold_id = 100 + k;
        idem_finish(table, entry, keys[k], &answer, 0);
    }
    uint8_t *bytes = malloc(idem_snapshot_size(table));
    struct tk_buf buf;
    tk_buf_init(&buf, bytes, idem_snapshot_size(table));
    idem_snapshot_write(table, 1000, &buf);
    cr_assert(!buf.failed);
    struct idem_table *copy;
    cr_assert_eq(idem_create(&copy, 64, 10000), TK_OK);
    struct tk_reader reader;
    tk_reader_init(&reader, bytes, buf.len);
    cr_assert_eq(idem_snapshot_read(copy, &reader), TK_OK);
    for (uint64_t k = 0; k < 10; k++) {
        cr_assert_eq(idem_begin(copy, keys[k], k, 1000, &found, &entry), IDEM_FOUND);
        cr_assert_eq(found.hold_id, 100 + k);
    }
    tk_reader_init(&reader, bytes, buf.len - 3);
    idem_clear(copy);
    cr_assert_eq(idem_snapshot_read(copy, &reader), TK_ERR_CORRUPT);
    idem_destroy(copy);
    free(bytes);
}

Test(idem, bad_sizes_are_refused)
{
    struct idem_table *other;
    cr_assert_eq(idem_create(&other, 100, 1000), TK_ERR_INVALID, "not a power of two");
    cr_assert_eq(idem_create(&other, 8, 1000), TK_ERR_INVALID, "smaller than the window");
    cr_assert_eq(idem_create(&other, 64, 0), TK_ERR_INVALID);
}
