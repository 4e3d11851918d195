/* common_workload.c — what the simulated buyers ask for.
 *
 * A hot on-sale: many users, few seats, people asking for 1-4 seats side by side
 * (a couple, a family), some letting the system pick (best-available). The
 * engine, the gRPC daemon and the Redis baseline draw from the same picks, so
 * their conflicts are comparable; only best-available differs, since Redis has
 * no such operation (a client there guesses a block of seats, modelled as an
 * explicit pick). With hot_percent set, that share of the picks goes to the
 * first event and the rest to the others: one hot on-sale on a shard that also
 * serves quieter events. */
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

void workload_pick(const struct bench_layout *layout, struct bench_rng *rng, bool best_allowed, struct bench_pick *out)
{
    if (layout->hot_percent > 0 && layout->event_count > 1) {
        bool hot = bench_rng_below(rng, 100) < layout->hot_percent;
        out->event_id = layout->first_event_id + (hot ? 0 : 1 + bench_rng_below(rng, layout->event_count - 1));
    } else {
        out->event_id =
            layout->first_event_id + (layout->event_count > 1 ? bench_rng_below(rng, layout->event_count) : 0);
    }
    out->user_id = 1 + bench_rng_below(rng, layout->users);
    out->count = 1 + bench_rng_below(rng, BENCH_PICK_SEATS_MAX);
    out->best = bench_rng_below(rng, 100) < layout->best_percent;
    if (out->best && best_allowed)
        return;
    out->best = false;
    uint32_t row = bench_rng_below(rng, bench_layout_rows(layout, out->event_id));
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
