/* edge_position.c — positions and ETAs from the queue feed (edge_position.h). */
#include "edge_position.h"

#include <math.h>
#include <string.h>

#include "tk_assert.h"

/* First index whose rank is >= value. */
static uint32_t lower_bound(const uint32_t *ranks, uint32_t count, uint32_t value)
{
    uint32_t lo = 0, hi = count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ranks[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool edge_left_add(struct edge_left_set *set, uint32_t rank)
{
    TK_ASSERT(set != NULL && set->count <= set->capacity);
    uint32_t at = lower_bound(set->ranks, set->count, rank);
    if (at < set->count && set->ranks[at] == rank)
        return true;
    if (set->count == set->capacity)
        return false;
    memmove(&set->ranks[at + 1], &set->ranks[at], (size_t)(set->count - at) * sizeof(uint32_t));
    set->ranks[at] = rank;
    set->count++;
    TK_ASSERT(at == 0 || set->ranks[at - 1] < rank);
    return true;
}

void edge_left_trim(struct edge_left_set *set, uint32_t head_rank)
{
    TK_ASSERT(set != NULL);
    uint32_t drop = lower_bound(set->ranks, set->count, head_rank);
    if (drop == 0)
        return;
    memmove(set->ranks, &set->ranks[drop], (size_t)(set->count - drop) * sizeof(uint32_t));
    set->count -= drop;
    TK_ASSERT(set->count == 0 || set->ranks[0] >= head_rank);
}

uint32_t edge_left_count_between(const uint32_t *ranks, uint32_t count, uint32_t from, uint32_t to)
{
    if (to <= from || count == 0)
        return 0;
    uint32_t lo = lower_bound(ranks, count, from);
    uint32_t hi = lower_bound(ranks, count, to);
    TK_ASSERT(hi >= lo);
    return hi - lo;
}

uint32_t edge_position(uint32_t rank, uint32_t head_rank, const uint32_t *left, uint32_t left_count)
{
    if (rank < head_rank)
        return 0;
    uint64_t ahead = (uint64_t)rank - head_rank + 1u;
    uint32_t gone = edge_left_count_between(left, left_count, head_rank, rank);
    TK_ASSERT(gone < ahead);
    uint64_t position = ahead - gone;
    TK_ASSERT(position >= 1);
    return position > UINT32_MAX ? UINT32_MAX : (uint32_t)position;
}

uint32_t edge_eta_s(uint32_t position, double rate, uint32_t admit_per_s, int64_t wait_open_ms)
{
    double per_s = rate > 0.0 ? rate : (admit_per_s > 0 ? (double)admit_per_s : 1.0);
    double seconds = ceil((double)position / per_s);
    if (wait_open_ms > 0)
        seconds += ceil((double)wait_open_ms / 1000.0);
    if (seconds > (double)UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)seconds;
}
