/* edge_position.h — a waiting client's place in line, from the queue feed.
 *
 * Pure. queue-svc publishes the head of each waiting room (head_rank, the
 * admission rate) and every leave; each socket knows its user's rank from Join.
 * The engine's definition (docs/services/queue.md):
 *   position = (rank - head_rank + 1) - |{ l in L : head_rank <= l < rank }|
 * where L is the set of ranks that left, never below 1; and
 *   eta_s = ceil(position / rate), or ceil(position / admit_per_s) before any
 *   measured rate, plus the seconds until the sale opens.
 * L is kept as a sorted array without duplicates, bounded (the oldest ranks,
 * below the head, are dropped first), so a position is two binary searches.
 * Tested in tests/unit/edge/test_edge_position.c. */
#ifndef EDGE_POSITION_H
#define EDGE_POSITION_H

#include <stdbool.h>
#include <stdint.h>

struct edge_left_set {
    uint32_t *ranks; /* sorted, unique */
    uint32_t count;
    uint32_t capacity;
};

/* Adds rank (no-op when present). false when full (the rank is not added). */
bool edge_left_add(struct edge_left_set *set, uint32_t rank);
/* Drops the ranks below head_rank. */
void edge_left_trim(struct edge_left_set *set, uint32_t head_rank);
/* |{ l : from <= l < to }| in a sorted array. */
uint32_t edge_left_count_between(const uint32_t *ranks, uint32_t count, uint32_t from, uint32_t to);

/* 0 when rank is below head_rank (admitted or skipped: not waiting any more). */
uint32_t edge_position(uint32_t rank, uint32_t head_rank, const uint32_t *left, uint32_t left_count);
/* Seconds until admission at position. rate: measured admissions per second
 * (0: none yet); admit_per_s: the event's setting (0: unknown, then one per
 * second); wait_open_ms: time until the sale opens (0 when open). */
uint32_t edge_eta_s(uint32_t position, double rate, uint32_t admit_per_s, int64_t wait_open_ms);

#endif
