/* common_hdr.c — the HDR-style histogram (hdr_histogram.h).
 *
 * Index of a value v with P precision bits and half = 2^(P-1):
 *   v < 2^P:  v (exact)
 *   else:     shift = msb(v) - (P-1), sub = v >> shift in [half, 2*half),
 *             index = shift * half + sub
 * so the exact range and the log-linear one join without a gap, and a bucket's
 * width is 2^shift for values of at least half << shift: relative error < 1/half. */
#include "hdr_histogram.h"

#include <math.h>
#include <string.h>

#include "tk_assert.h"

#define HDR_VALUE_MAX ((UINT64_C(1) << HDR_VALUE_BITS_MAX) - 1u)

uint32_t hdr_bucket_count(uint32_t precision_bits)
{
    TK_ASSERT(precision_bits >= HDR_PRECISION_BITS_MIN && precision_bits <= HDR_PRECISION_BITS_MAX);
    uint32_t half = 1u << (precision_bits - 1u);
    return (HDR_VALUE_BITS_MAX + 2u - precision_bits) * half;
}

size_t hdr_bytes(uint32_t precision_bits)
{
    return sizeof(struct hdr_histogram) + (size_t)hdr_bucket_count(precision_bits) * sizeof(uint32_t);
}

struct hdr_histogram *hdr_init(void *memory, uint32_t precision_bits)
{
    TK_ASSERT(memory != NULL);
    struct hdr_histogram *histogram = memory;
    histogram->precision_bits = precision_bits;
    histogram->bucket_count = hdr_bucket_count(precision_bits);
    hdr_reset(histogram);
    return histogram;
}

void hdr_reset(struct hdr_histogram *histogram)
{
    TK_ASSERT(histogram->bucket_count == hdr_bucket_count(histogram->precision_bits));
    histogram->count = 0;
    histogram->clamped = 0;
    histogram->min = UINT64_MAX;
    histogram->max = 0;
    histogram->sum = 0;
    memset(histogram->counts, 0, (size_t)histogram->bucket_count * sizeof(uint32_t));
}

uint32_t hdr_index(uint32_t precision_bits, uint64_t value)
{
    TK_ASSERT(value <= HDR_VALUE_MAX);
    if (value < (UINT64_C(1) << precision_bits))
        return (uint32_t)value;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(value);
    uint32_t shift = msb - (precision_bits - 1u);
    uint32_t half = 1u << (precision_bits - 1u);
    uint32_t sub = (uint32_t)(value >> shift);
    TK_ASSERT(sub >= half && sub < 2u * half);
    return shift * half + sub;
}

uint64_t hdr_bucket_lowest(uint32_t precision_bits, uint32_t index)
{
    uint32_t half = 1u << (precision_bits - 1u);
    if (index < 2u * half)
        return index;
    uint32_t shift = index / half - 1u;
    uint64_t sub = index - shift * half;
    return sub << shift;
}

uint64_t hdr_bucket_highest(uint32_t precision_bits, uint32_t index)
{
    uint32_t half = 1u << (precision_bits - 1u);
    if (index < 2u * half)
        return index;
    uint32_t shift = index / half - 1u;
    uint64_t sub = index - shift * half;
    return ((sub + 1u) << shift) - 1u;
}

void hdr_record(struct hdr_histogram *histogram, uint64_t value)
{
    if (value > HDR_VALUE_MAX) {
        value = HDR_VALUE_MAX;
        histogram->clamped++;
    }
    uint32_t index = hdr_index(histogram->precision_bits, value);
    TK_ASSERT(index < histogram->bucket_count);
    if (histogram->counts[index] != UINT32_MAX)
        histogram->counts[index]++;
    histogram->count++;
    histogram->sum += (double)value;
    if (value < histogram->min)
        histogram->min = value;
    if (value > histogram->max)
        histogram->max = value;
}

void hdr_merge(struct hdr_histogram *into, const struct hdr_histogram *from)
{
    TK_ASSERT(into->precision_bits == from->precision_bits && into->bucket_count == from->bucket_count);
    for (uint32_t i = 0; i < from->bucket_count; i++) {
        uint64_t sum = (uint64_t)into->counts[i] + from->counts[i];
        into->counts[i] = sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
    }
    into->count += from->count;
    into->clamped += from->clamped;
    into->sum += from->sum;
    if (from->count > 0 && from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t hdr_quantile(const struct hdr_histogram *histogram, double q)
{
    if (histogram->count == 0)
        return 0;
    if (q <= 0)
        return histogram->min;
    if (q >= 1)
        return histogram->max;
    uint64_t rank = (uint64_t)ceil(q * (double)histogram->count);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < histogram->bucket_count; i++) {
        seen += histogram->counts[i];
        if (seen >= rank) {
            uint64_t high = hdr_bucket_highest(histogram->precision_bits, i);
            return high < histogram->max ? high : histogram->max;
        }
    }
    return histogram->max; /* saturated buckets undercount: the largest value */
}

double hdr_mean(const struct hdr_histogram *histogram)
{
    return histogram->count > 0 ? histogram->sum / (double)histogram->count : 0;
}

void hdr_percentile_walk(const struct hdr_histogram *histogram, uint32_t ticks_per_half,
                         void (*fn)(void *ctx, double quantile, uint64_t value), void *ctx)
{
    TK_ASSERT(ticks_per_half >= 1 && fn != NULL);
    if (histogram->count == 0)
        return;
    double smallest_tail = 1.0 / (double)histogram->count;
    for (uint32_t k = 0; k < 64u * ticks_per_half; k++) {
        double tail = pow(0.5, (double)k / (double)ticks_per_half);
        if (tail < smallest_tail)
            break;
        fn(ctx, 1.0 - tail, hdr_quantile(histogram, 1.0 - tail));
    }
    fn(ctx, 1.0, histogram->max);
}
