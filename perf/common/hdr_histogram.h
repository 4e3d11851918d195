/* hdr_histogram.h — an HDR-style latency histogram (perf/common/).
 *
 * Log-linear buckets like HdrHistogram: every power of two [2^k, 2^(k+1)) is cut
 * into 2^(precision_bits-1) equal sub-buckets, values below 2^precision_bits are
 * exact. The relative error of a reported value is at most 2^-(precision_bits-1):
 * 0.8% with 8 bits (the whole-run histograms), 12.5% with 4 bits (the cheap
 * per-second histograms of the time series). Values are unsigned integers in any
 * unit (the load generator records microseconds) up to 2^HDR_VALUE_BITS_MAX - 1;
 * larger ones are clamped and counted in `clamped`.
 *
 * Why not tk_metrics.h: its ~19% buckets are too coarse next to "p99 < 50 ms",
 * and why not exact samples (bench_samples): a load run records tens of millions
 * of latencies in several processes; a histogram is a fixed size, lives in shared
 * memory and merges by addition.
 *
 * Storage is caller-provided (hdr_bytes() tells how much), so a histogram can sit
 * in an mmap'ed region shared between processes. One writer per histogram; merge
 * and quantiles read. No allocation, no locks. */
#ifndef HDR_HISTOGRAM_H
#define HDR_HISTOGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HDR_VALUE_BITS_MAX 40u /* 2^40 us = 12.7 days; 2^40 ns = 18 minutes */
#define HDR_PRECISION_BITS_MIN 2u
#define HDR_PRECISION_BITS_MAX 12u

struct hdr_histogram {
    uint32_t precision_bits;
    uint32_t bucket_count;
    uint64_t count;
    uint64_t clamped; /* values above the range, recorded as its largest */
    uint64_t min, max;
    double sum;
    uint32_t counts[]; /* bucket_count entries (a bucket overflowing 2^32 saturates) */
};

/* Buckets for a precision (the flexible array's length). */
uint32_t hdr_bucket_count(uint32_t precision_bits);
/* Bytes of a histogram of that precision, header included. */
size_t hdr_bytes(uint32_t precision_bits);
/* Formats memory of hdr_bytes(precision_bits) as an empty histogram. */
struct hdr_histogram *hdr_init(void *memory, uint32_t precision_bits);
void hdr_reset(struct hdr_histogram *histogram);

void hdr_record(struct hdr_histogram *histogram, uint64_t value);
/* Adds every count of from into into (same precision). */
void hdr_merge(struct hdr_histogram *into, const struct hdr_histogram *from);

/* The value at quantile q (0..1): the upper bound of the bucket holding the
 * ceil(q * count)-th value, never above the largest value recorded; 0 when empty. */
uint64_t hdr_quantile(const struct hdr_histogram *histogram, double q);
double hdr_mean(const struct hdr_histogram *histogram);

/* Bucket index of a value, and the [lowest, highest] values a bucket holds. */
uint32_t hdr_index(uint32_t precision_bits, uint64_t value);
uint64_t hdr_bucket_lowest(uint32_t precision_bits, uint32_t index);
uint64_t hdr_bucket_highest(uint32_t precision_bits, uint32_t index);

/* Calls fn for each quantile in the HdrHistogram "percentile distribution" style
 * (ticks_per_half halvings: 0, 50%, 75%, 87.5% ... up to the last value), for
 * plots of latency by percentile. */
void hdr_percentile_walk(const struct hdr_histogram *histogram, uint32_t ticks_per_half,
                         void (*fn)(void *ctx, double quantile, uint64_t value), void *ctx);

#endif
