/* bench_memory.c — memory per seat of a large event (200,000 seats, the figure
 * the target is about) and, for comparison, of a 1,000-seat event (where fixed
 * per-event tables dominate).
 *
 * Two views, because each can mislead alone:
 * - what the engine says it allocated (sc_engine_memory_bytes), taken before and
 *   after creating the event: the event's own tables per seat is the figure the
 *   target is about; the engine-wide tables (idempotency keys, event index) are
 *   a fixed cost shared by every event and are shown separately;
 * - what the process really grew by (RSS from /proc/self/statm), right after
 *   creation (calloc'd pages are not touched yet, so this is small) and after
 *   every seat has been held and released once (every seat word, the hold slots
 *   used and the users' entries touched). */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define MEMORY_SECTIONS 20u
#define MEMORY_ROWS 100u
#define MEMORY_SEATS_PER_ROW 100u
#define MEMORY_EVENT_ID 9001u
#define MEMORY_HOLD_SEATS 10u

_Static_assert(MEMORY_SECTIONS *MEMORY_ROWS *MEMORY_SEATS_PER_ROW <= TK_SEATS_PER_EVENT_MAX, "fits one event");
_Static_assert(MEMORY_HOLD_SEATS <= TK_SEATS_PER_HOLD_MAX, "one hold");

static void memory_spec(struct sc_event_spec *spec, uint32_t sections, uint32_t rows)
{
    memset(spec, 0, sizeof(*spec));
    spec->event_id = MEMORY_EVENT_ID;
    spec->section_count = sections;
    for (uint32_t s = 0; s < sections; s++) {
        snprintf(spec->sections[s].name, sizeof(spec->sections[s].name), "section-%02u", s + 1);
        spec->sections[s].rows = rows;
        spec->sections[s].seats_per_row = MEMORY_SEATS_PER_ROW;
        spec->sections[s].price_cents = 6000 + 100 * s;
    }
}

/* Holds every seat, ten at a time by distinct users, then releases them all. */
static enum tk_status touch_every_seat(struct sc_engine *engine, uint32_t capacity, uint64_t *rss_full)
{
    static uint64_t hold_ids[TK_SEATS_PER_EVENT_MAX / MEMORY_HOLD_SEATS];
    uint32_t holds = capacity / MEMORY_HOLD_SEATS;
    for (uint32_t h = 0; h < holds; h++) {
        struct sc_hold_request request = {
            .event_id = MEMORY_EVENT_ID, .user_id = h + 1, .seat_count = MEMORY_HOLD_SEATS};
        for (uint32_t i = 0; i < MEMORY_HOLD_SEATS; i++)
            request.seats[i] = h * MEMORY_HOLD_SEATS + i;
        struct sc_hold_result result;
        enum tk_status status = sc_hold(engine, &request, &result, NULL);
        if (status != TK_OK)
            return status;
        hold_ids[h] = result.hold_id;
    }
    *rss_full = bench_rss_bytes();
    for (uint32_t h = 0; h < holds; h++) {
        enum tk_status status = sc_release(engine, MEMORY_EVENT_ID, h + 1, hold_ids[h], NULL);
        if (status != TK_OK)
            return status;
    }
    return TK_OK;
}

static void memory_row(struct bench_report *report, const char *id, const char *name, uint32_t sections, uint32_t rows)
{
    struct bench_row *row = bench_row_add(report, id, "memory", name, 0);
    if (row == NULL)
        return;
    char err[512];
    struct sc_engine *engine = NULL;
    struct sc_engine_config config = {.log = bench_engine_log};
    if (sc_engine_open(&engine, &config, err, sizeof(err)) != TK_OK) {
        bench_row_skip(row, err);
        bench_row_progress(row);
        return;
    }
    static struct sc_event_spec spec;
    memory_spec(&spec, sections, rows);
    uint64_t engine_before = sc_engine_memory_bytes(engine);
    uint64_t rss_before = bench_rss_bytes();
    uint64_t lsn = 0;
    enum tk_status status = sc_event_create(engine, &spec, &lsn);
    uint64_t engine_after = sc_engine_memory_bytes(engine);
    uint64_t rss_created = bench_rss_bytes();
    struct sc_event_info info;
    if (status == TK_OK)
        status = sc_event_get(engine, MEMORY_EVENT_ID, &info);
    uint64_t rss_full = 0;
    if (status == TK_OK)
        status = touch_every_seat(engine, info.counts.capacity, &rss_full);
    if (status != TK_OK) {
        snprintf(err, sizeof(err), "%s", tk_status_message(status));
        bench_row_skip(row, err);
    } else {
        double capacity = info.counts.capacity;
        double per_seat = (double)(engine_after - engine_before) / capacity;
        double total_per_seat = (double)engine_after / capacity;
        double rss_create = rss_created > rss_before ? (double)(rss_created - rss_before) / capacity : 0.0;
        double rss_fill = rss_full > rss_before ? (double)(rss_full - rss_before) / capacity : 0.0;
        bench_row_extra(row, "capacity", capacity);
        bench_row_extra(row, "event_bytes", (double)(engine_after - engine_before));
        bench_row_extra(row, "event_bytes_per_seat", per_seat);
        bench_row_extra(row, "engine_bytes_per_seat_total", total_per_seat);
        bench_row_extra(row, "rss_bytes_per_seat_created", rss_create);
        bench_row_extra(row, "rss_bytes_per_seat_all_held", rss_fill);
        bench_row_note(row, "%.1f B/seat (event tables, sc_engine_memory_bytes delta)", per_seat);
        bench_row_note(row, "engine total / capacity %.1f B/seat (incl. fixed idempotency table)", total_per_seat);
        bench_row_note(row, "RSS +%.1f B/seat created, +%.1f B/seat every seat held", rss_create, rss_fill);
    }
    sc_engine_close(engine);
    bench_row_progress(row);
}

void bench_memory_rows(struct bench_report *report, const struct bench_options *options)
{
    (void)options;
    memory_row(report, "memory.per_seat", "memory per seat, 200,000 seats", MEMORY_SECTIONS, MEMORY_ROWS);
    /* Not a target: shows what fixed per-event tables cost a small event. */
    memory_row(report, "memory.per_seat_small", "memory per seat, 1,000 seats", 1, 10);
}
