/* bench_workload.c — what the simulated buyers ask for.
 *
 * A hot on-sale: many users, few seats, people asking for 1-4 seats side by side
 * (a couple, a family), some letting the system pick (best-available). The
 * engine mixes and the Redis baseline draw from the same picks, so their
 * conflicts are comparable; only best-available differs, since Redis has no such
 * operation (a client there guesses a block of seats, modelled as an explicit pick). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void workload_event_spec(const struct bench_layout *layout, uint64_t event_id, struct sc_event_spec *out)
{
    memset(out, 0, sizeof(*out));
    out->event_id = event_id;
    out->section_count = 1;
    snprintf(out->sections[0].name, sizeof(out->sections[0].name), "floor");
    out->sections[0].rows = layout->rows;
    out->sections[0].seats_per_row = layout->seats_per_row;
    out->sections[0].price_cents = 4500;
    /* Engine defaults for the rest (5-minute holds, 10 seats per user, holds_max
     * half the capacity): what a production event would be created with. */
}

enum tk_status workload_create_events(struct sc_engine *engine, const struct bench_layout *layout, char *err,
                                      size_t err_len)
{
    struct sc_event_spec spec;
    for (uint32_t i = 0; i < layout->event_count; i++) {
        workload_event_spec(layout, layout->first_event_id + i, &spec);
        uint64_t lsn = 0;
        enum tk_status status = sc_event_create(engine, &spec, &lsn);
        if (status != TK_OK) {
            snprintf(err, err_len, "sc_event_create(%llu): %s", (unsigned long long)spec.event_id,
                     tk_status_message(status));
            return status;
        }
        status = sc_engine_wait_durable(engine, lsn); /* setup, not measured */
        if (status != TK_OK) {
            snprintf(err, err_len, "waiting for event creation: %s", tk_status_message(status));
            return status;
        }
    }
    return TK_OK;
}

void workload_pick(const struct bench_layout *layout, struct bench_rng *rng, bool best_allowed, struct bench_pick *out)
{
    out->event_id = layout->first_event_id + (layout->event_count > 1 ? bench_rng_below(rng, layout->event_count) : 0);
    out->user_id = 1 + bench_rng_below(rng, layout->users);
    out->count = 1 + bench_rng_below(rng, BENCH_PICK_SEATS_MAX);
    out->best = bench_rng_below(rng, 100) < layout->best_percent;
    if (out->best && best_allowed)
        return;
    out->best = false;
    uint32_t row = bench_rng_below(rng, layout->rows);
    uint32_t start = bench_rng_below(rng, layout->seats_per_row - out->count + 1);
    for (uint32_t i = 0; i < out->count; i++)
        out->seats[i] = row * layout->seats_per_row + start + i;
}

int live_ring_init(struct live_ring *ring, uint32_t capacity)
{
    memset(ring, 0, sizeof(*ring));
    ring->items = calloc(capacity == 0 ? 1 : capacity, sizeof(ring->items[0]));
    if (ring->items == NULL)
        return -1;
    ring->capacity = capacity == 0 ? 1 : capacity;
    return 0;
}

void live_ring_free(struct live_ring *ring)
{
    free(ring->items);
    memset(ring, 0, sizeof(*ring));
}

struct live_hold *live_ring_push(struct live_ring *ring)
{
    if (ring->count == ring->capacity)
        return NULL;
    struct live_hold *slot = &ring->items[(ring->head + ring->count) % ring->capacity];
    ring->count++;
    return slot;
}

bool live_ring_pop(struct live_ring *ring, struct live_hold *out)
{
    if (ring->count == 0)
        return false;
    *out = ring->items[ring->head];
    ring->head = (ring->head + 1) % ring->capacity;
    ring->count--;
    return true;
}
