/* tk_metrics.h — counters and latency histograms that any thread may bump.
 *
 * A histogram has log-linear buckets over nanoseconds (4 sub-buckets per power of
 * two, HDR-style, about 19% relative error), each an atomic counter bumped with a
 * relaxed fetch_add: recording never blocks or allocates, so it can sit on the hot
 * path. Readers copy the buckets and compute percentiles from the copy; a copy taken
 * while writers run is off by the few samples in flight, which is fine for metrics.
 * Daemons export these in Prometheus text format. */
#ifndef TK_METRICS_H
#define TK_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define TK_HISTOGRAM_SUB_BITS 2u
#define TK_HISTOGRAM_BUCKETS (64u << TK_HISTOGRAM_SUB_BITS)

struct tk_histogram {
    _Atomic uint64_t buckets[TK_HISTOGRAM_BUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum;
};

void tk_histogram_record(struct tk_histogram *histogram, uint64_t value);
/* Value at quantile q (0..1) of a histogram; 0 for an empty one. Upper bound of the bucket. */
uint64_t tk_histogram_quantile(const struct tk_histogram *histogram, double q);
uint64_t tk_histogram_count(const struct tk_histogram *histogram);
/* The upper bound of bucket index i, for exporters. */
uint64_t tk_histogram_bucket_upper(uint32_t index);
uint32_t tk_histogram_bucket_index(uint64_t value);
void tk_histogram_reset(struct tk_histogram *histogram);
void tk_histogram_merge(struct tk_histogram *into, const struct tk_histogram *from);

static inline void tk_counter_add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static inline uint64_t tk_counter_get(const _Atomic uint64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

/* Prometheus text exposition of a histogram in seconds from nanosecond samples.
 * Buckets are folded to a fixed ladder (1us .. 10s) so dashboards stay small. */
void tk_histogram_write_prometheus(FILE *out, const char *name, const char *labels,
                                   const struct tk_histogram *histogram);

#endif
