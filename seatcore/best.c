/* best.c — best-available: N adjacent seats in a row, front rows first, without
 * leaving single-seat holes where that can be avoided; else the closest group.
 *
 * Rows are scanned front to back (sections in order). The per-row free count
 * (a hint kept by hold.c) skips full rows without reading their seats, so a
 * search in a mostly sold event costs about one load per row. Within the first
 * row that can take the group we prefer a run of free seats of exactly N (no
 * remainder) or of N+2 and more (the remainder can still be sold as a pair);
 * a run of N+1 would strand one seat, so it is only taken when no row offers
 * better. With no N adjacent seats anywhere, the group with the smallest span in
 * one row wins, and failing that the first free seats front to back. The search
 * is a snapshot of racing words: it never claims; hold.c does. */
#include "best.h"

#include <string.h>

struct best_pick {
    uint32_t first_seat; /* in the row */
    uint32_t row;
    uint32_t quality; /* 0 exact, 1 leaves >= 2, 2 leaves one hole, UINT32_MAX none */
};

static uint32_t row_read_free(struct sc_event *ev, uint32_t row, uint32_t *first, bool *is_free)
{
    uint32_t length;
    *first = event_row_first_seat(ev, row, &length);
    TK_ASSERT(length <= TK_SEATS_PER_ROW_MAX);
    for (uint32_t i = 0; i < length; i++) {
        uint64_t w = atomic_load_explicit(&ev->seats[*first + i], memory_order_relaxed);
        is_free[i] = seat_word_state(w) == SC_SEAT_FREE;
    }
    return length;
}

/* Best run in one row for count seats; quality UINT32_MAX when none fits. */
static struct best_pick row_best_run(const bool *is_free, uint32_t length, uint32_t count)
{
    struct best_pick pick = {.quality = UINT32_MAX};
    uint32_t i = 0;
    while (i < length) {
        if (!is_free[i]) {
            i++;
            continue;
        }
        uint32_t start = i;
        while (i < length && is_free[i])
            i++;
        uint32_t run = i - start;
        if (run < count)
            continue;
        uint32_t quality = run == count ? 0 : (run >= count + 2 ? 1 : 2);
        if (quality < pick.quality) {
            pick.quality = quality;
            pick.first_seat = start;
        }
        if (quality == 0)
            break;
    }
    return pick;
}

/* Smallest span holding count free seats in a row; UINT32_MAX when fewer are free. */
static uint32_t row_tightest(const bool *is_free, uint32_t length, uint32_t count, uint32_t *positions)
{
    uint32_t free_positions[TK_SEATS_PER_ROW_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < length; i++)
        if (is_free[i])
            free_positions[n++] = i;
    if (n < count)
        return UINT32_MAX;
    uint32_t best_span = UINT32_MAX, best_start = 0;
    for (uint32_t j = 0; j + count <= n; j++) {
        uint32_t span = free_positions[j + count - 1] - free_positions[j];
        if (span < best_span) {
            best_span = span;
            best_start = j;
        }
    }
    for (uint32_t k = 0; k < count; k++)
        positions[k] = free_positions[best_start + k];
    return best_span;
}

static void rows_of(const struct sc_event *ev, int32_t section, uint32_t *row_begin, uint32_t *row_end)
{
    if (section < 0) {
        *row_begin = 0;
        *row_end = ev->row_count;
    } else {
        *row_begin = ev->section_first_row[section];
        *row_end = ev->section_first_row[section + 1];
    }
    TK_ASSERT(*row_begin < *row_end && *row_end <= ev->row_count);
}

/* Last resort: the first count free seats front to back. */
static enum tk_status pick_scattered(struct sc_event *ev, uint32_t row_begin, uint32_t row_end, uint32_t count,
                                     uint32_t *seats)
{
    uint32_t n = 0;
    bool is_free[TK_SEATS_PER_ROW_MAX];
    for (uint32_t row = row_begin; row < row_end && n < count; row++) {
        if (atomic_load_explicit(&ev->row_free[row], memory_order_relaxed) == 0)
            continue;
        uint32_t first;
        uint32_t length = row_read_free(ev, row, &first, is_free);
        for (uint32_t i = 0; i < length && n < count; i++)
            if (is_free[i])
                seats[n++] = first + i;
    }
    return n == count ? TK_OK : TK_ERR_SOLD_OUT;
}

enum tk_status best_choose(struct sc_event *ev, uint32_t count, int32_t section, uint32_t *seats)
{
    TK_ASSERT(count >= 1 && count <= TK_SEATS_PER_HOLD_MAX);
    TK_ASSERT(section < (int32_t)ev->spec.section_count);
    uint32_t row_begin, row_end;
    rows_of(ev, section, &row_begin, &row_end);
    bool is_free[TK_SEATS_PER_ROW_MAX];
    struct best_pick fallback = {.quality = UINT32_MAX};
    uint32_t tight_span = UINT32_MAX, tight_row = 0, tight_positions[TK_SEATS_PER_HOLD_MAX];
    for (uint32_t row = row_begin; row < row_end; row++) {
        if (atomic_load_explicit(&ev->row_free[row], memory_order_relaxed) < count)
            continue;
        uint32_t first;
        uint32_t length = row_read_free(ev, row, &first, is_free);
        struct best_pick pick = row_best_run(is_free, length, count);
        if (pick.quality <= 1) {
            for (uint32_t k = 0; k < count; k++)
                seats[k] = first + pick.first_seat + k;
            return TK_OK;
        }
        if (pick.quality == 2 && fallback.quality == UINT32_MAX) {
            fallback = pick;
            fallback.row = row;
        }
        uint32_t positions[TK_SEATS_PER_HOLD_MAX];
        uint32_t span = fallback.quality == UINT32_MAX ? row_tightest(is_free, length, count, positions) : UINT32_MAX;
        if (span < tight_span) {
            tight_span = span;
            tight_row = row;
            memcpy(tight_positions, positions, sizeof(positions[0]) * count);
        }
    }
    uint32_t length;
    if (fallback.quality != UINT32_MAX) {
        uint32_t first = event_row_first_seat(ev, fallback.row, &length);
        for (uint32_t k = 0; k < count; k++)
            seats[k] = first + fallback.first_seat + k;
        return TK_OK;
    }
    if (tight_span != UINT32_MAX) {
        uint32_t first = event_row_first_seat(ev, tight_row, &length);
        for (uint32_t k = 0; k < count; k++)
            seats[k] = first + tight_positions[k];
        return TK_OK;
    }
    return pick_scattered(ev, row_begin, row_end, count, seats);
}
