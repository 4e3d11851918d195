/* stats.h — per-thread operation counters (internal).
 *
 * Each thread that calls the engine gets its own counters (stats.c hands them
 * out), so counting an operation is a plain store on a line no other thread
 * writes; sc_engine_metrics sums the threads. Counters are written by one thread
 * only, hence the relaxed load+store instead of a locked fetch_add. */
#ifndef STATS_H
#define STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "tk_metrics.h"

enum stat_counter {
    STAT_HOLDS,
    STAT_HOLD_CONFLICTS,
    STAT_CONFIRMS,
    STAT_RELEASES,
    STAT_EXPIRATIONS,
    STAT_RETURNS,
    STAT_IDEMPOTENT_REPLAYS,
    STAT_QUEUE_JOINS,
    STAT_QUEUE_ADMISSIONS,
    STAT_QUEUE_LEAVES,
    STAT_COUNT
};

#define STATS_THREADS_MAX 256u

struct sc_thread_stats {
    _Atomic uint64_t counters[STAT_COUNT];
    struct tk_histogram op_latency_ns;
};

static inline void stat_add(struct sc_thread_stats *stats, enum stat_counter counter, uint64_t n)
{
    if (stats == NULL)
        return;
    uint64_t v = atomic_load_explicit(&stats->counters[counter], memory_order_relaxed);
    atomic_store_explicit(&stats->counters[counter], v + n, memory_order_relaxed);
}

struct stats_registry {
    struct sc_thread_stats *_Atomic threads[STATS_THREADS_MAX];
    _Atomic uint32_t count;
    struct sc_thread_stats shared; /* threads past the bound share this one (atomically) */
    uint64_t engine_serial;        /* tells this registry from an earlier engine at the same address */
};

void stats_registry_init(struct stats_registry *registry);
void stats_registry_destroy(struct stats_registry *registry);
/* The calling thread's counters for this registry (allocated on its first call). */
struct sc_thread_stats *stats_for_thread(struct stats_registry *registry);
void stats_sum(struct stats_registry *registry, uint64_t counters[STAT_COUNT], struct tk_histogram *latency);

#endif
