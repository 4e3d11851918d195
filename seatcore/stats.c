/* stats.c — hands out per-thread counters and sums them (stats.h).
 *
 * A thread-local cache remembers the last registry it used, so the common case
 * (one engine per process) costs one compare. Registration allocates once per
 * thread and engine: this is the first call a thread makes, not the hot path. */
#include "stats.h"

#include <stdlib.h>

#include "tk_assert.h"

static _Atomic uint64_t registry_serials = 1;
static _Thread_local uint64_t cached_serial;
static _Thread_local struct sc_thread_stats *cached_stats;

void stats_registry_init(struct stats_registry *registry)
{
    TK_ASSERT(registry != NULL);
    for (uint32_t i = 0; i < STATS_THREADS_MAX; i++)
        atomic_init(&registry->threads[i], NULL);
    atomic_init(&registry->count, 0);
    tk_histogram_reset(&registry->shared.op_latency_ns);
    for (uint32_t c = 0; c < STAT_COUNT; c++)
        atomic_init(&registry->shared.counters[c], 0);
    registry->engine_serial = atomic_fetch_add(&registry_serials, 1);
}

void stats_registry_destroy(struct stats_registry *registry)
{
    uint32_t count = atomic_load(&registry->count);
    TK_ASSERT(count <= STATS_THREADS_MAX);
    for (uint32_t i = 0; i < count; i++)
        free(atomic_load(&registry->threads[i]));
}

struct sc_thread_stats *stats_for_thread(struct stats_registry *registry)
{
    if (TK_LIKELY(cached_serial == registry->engine_serial))
        return cached_stats;
    uint32_t index = atomic_fetch_add(&registry->count, 1);
    struct sc_thread_stats *stats = NULL;
    if (index < STATS_THREADS_MAX)
        stats = calloc(1, sizeof(*stats));
    if (stats == NULL) {
        if (index >= STATS_THREADS_MAX)
            atomic_store(&registry->count, STATS_THREADS_MAX);
        return NULL; /* uncounted; never fails the operation */
    }
    atomic_store_explicit(&registry->threads[index], stats, memory_order_release);
    cached_serial = registry->engine_serial;
    cached_stats = stats;
    return stats;
}

void stats_sum(struct stats_registry *registry, uint64_t counters[STAT_COUNT], struct tk_histogram *latency)
{
    TK_ASSERT(counters != NULL && latency != NULL);
    for (uint32_t c = 0; c < STAT_COUNT; c++)
        counters[c] = atomic_load_explicit(&registry->shared.counters[c], memory_order_relaxed);
    uint32_t count = atomic_load(&registry->count);
    if (count > STATS_THREADS_MAX)
        count = STATS_THREADS_MAX;
    for (uint32_t i = 0; i < count; i++) {
        struct sc_thread_stats *stats = atomic_load_explicit(&registry->threads[i], memory_order_acquire);
        if (stats == NULL)
            continue; /* registered a moment ago, not yet published */
        for (uint32_t c = 0; c < STAT_COUNT; c++)
            counters[c] += atomic_load_explicit(&stats->counters[c], memory_order_relaxed);
        tk_histogram_merge(latency, &stats->op_latency_ns);
    }
}
