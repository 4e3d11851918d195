/* tk_metrics.c — log-linear histograms (see tk_metrics.h). */
#include "tk_metrics.h"

#include <string.h>

#include "tk_assert.h"

uint32_t tk_histogram_bucket_index(uint64_t value)
{
    if (value < (1u << TK_HISTOGRAM_SUB_BITS))
        return (uint32_t)value;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(value);
    uint32_t sub = (uint32_t)(value >> (msb - TK_HISTOGRAM_SUB_BITS)) & ((1u << TK_HISTOGRAM_SUB_BITS) - 1u);
    uint32_t index = ((msb - TK_HISTOGRAM_SUB_BITS + 1u) << TK_HISTOGRAM_SUB_BITS) + sub;
    TK_ASSERT(index < TK_HISTOGRAM_BUCKETS);
    return index;
}

uint64_t tk_histogram_bucket_upper(uint32_t index)
{
    TK_ASSERT(index < TK_HISTOGRAM_BUCKETS);
    if (index < (1u << TK_HISTOGRAM_SUB_BITS))
        return index;
    uint32_t group = index >> TK_HISTOGRAM_SUB_BITS; /* >= 1 */
    uint32_t sub = index & ((1u << TK_HISTOGRAM_SUB_BITS) - 1u);
    uint32_t msb = group + TK_HISTOGRAM_SUB_BITS - 1u;
    if (msb >= 63u)
        return UINT64_MAX;
    uint64_t low = (UINT64_C(1) << msb) + ((uint64_t)sub << (msb - TK_HISTOGRAM_SUB_BITS));
    uint64_t width = UINT64_C(1) << (msb - TK_HISTOGRAM_SUB_BITS);
    return low + width - 1u;
}

void tk_histogram_record(struct tk_histogram *histogram, uint64_t value)
{
    uint32_t index = tk_histogram_bucket_index(value);
    atomic_fetch_add_explicit(&histogram->buckets[index], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&histogram->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&histogram->sum, value, memory_order_relaxed);
}

uint64_t tk_histogram_count(const struct tk_histogram *histogram)
{
    return atomic_load_explicit(&histogram->count, memory_order_relaxed);
}

uint64_t tk_histogram_quantile(const struct tk_histogram *histogram, double q)
{
    TK_ASSERT(q >= 0.0 && q <= 1.0);
    uint64_t counts[TK_HISTOGRAM_BUCKETS];
    uint64_t total = 0;
    for (uint32_t i = 0; i < TK_HISTOGRAM_BUCKETS; i++) {
        counts[i] = atomic_load_explicit(&histogram->buckets[i], memory_order_relaxed);
        total += counts[i];
    }
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    if (rank >= total)
        rank = total - 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < TK_HISTOGRAM_BUCKETS; i++) {
        seen += counts[i];
        if (seen > rank)
            return tk_histogram_bucket_upper(i);
    }
    TK_UNREACHABLE();
}

void tk_histogram_reset(struct tk_histogram *histogram)
{
    for (uint32_t i = 0; i < TK_HISTOGRAM_BUCKETS; i++)
        atomic_store_explicit(&histogram->buckets[i], 0, memory_order_relaxed);
    atomic_store_explicit(&histogram->count, 0, memory_order_relaxed);
    atomic_store_explicit(&histogram->sum, 0, memory_order_relaxed);
}

void tk_histogram_merge(struct tk_histogram *into, const struct tk_histogram *from)
{
    TK_ASSERT(into != from);
    for (uint32_t i = 0; i < TK_HISTOGRAM_BUCKETS; i++) {
        uint64_t n = atomic_load_explicit(&from->buckets[i], memory_order_relaxed);
        if (n)
            atomic_fetch_add_explicit(&into->buckets[i], n, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&into->count, tk_histogram_count(from), memory_order_relaxed);
    atomic_fetch_add_explicit(&into->sum, atomic_load_explicit(&from->sum, memory_order_relaxed),
                              memory_order_relaxed);
}

void tk_histogram_write_prometheus(FILE *out, const char *name, const char *labels,
                                   const struct tk_histogram *histogram)
{
    static const uint64_t ladder_ns[] = {1000,     5000,      10000,     50000,      100000,     250000,
                                         500000,   1000000,   2500000,   5000000,    10000000,   25000000,
                                         50000000, 100000000, 250000000, 1000000000, 10000000000};
    const char *sep = (labels && labels[0]) ? "," : "";
    const char *lab = labels ? labels : "";
    uint64_t counts[TK_HISTOGRAM_BUCKETS];
    for (uint32_t i = 0; i < TK_HISTOGRAM_BUCKETS; i++)
        counts[i] = atomic_load_explicit(&histogram->buckets[i], memory_order_relaxed);
    uint32_t bucket = 0;
    uint64_t cumulative = 0;
    for (size_t l = 0; l < sizeof(ladder_ns) / sizeof(ladder_ns[0]); l++) {
        while (bucket < TK_HISTOGRAM_BUCKETS && tk_histogram_bucket_upper(bucket) <= ladder_ns[l])
            cumulative += counts[bucket++];
        fprintf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lab, sep, (double)ladder_ns[l] / 1e9,
                (unsigned long long)cumulative);
    }
    while (bucket < TK_HISTOGRAM_BUCKETS)
        cumulative += counts[bucket++];
    fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lab, sep, (unsigned long long)cumulative);
    fprintf(out, "%s_sum{%s} %.9f\n", name, lab,
            (double)atomic_load_explicit(&histogram->sum, memory_order_relaxed) / 1e9);
    fprintf(out, "%s_count{%s} %llu\n", name, lab, (unsigned long long)cumulative);
}
