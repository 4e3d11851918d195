/* edge_ratelimit.h — token buckets, per client address and per user.
 *
 * A bucket holds up to `burst` tokens and refills at `rate` per second; a
 * request takes one, or is refused with the seconds until one is back (429 and
 * Retry-After). The table of buckets is shared by every loop thread (a client's
 * connections land on any loop with SO_REUSEPORT, so per-loop buckets would
 * multiply the limit by the thread count): fixed-size, allocated at start, in
 * 64 stripes each behind its own mutex (a lock held for a few dozen
 * nanoseconds). A key probes 8 slots; when all are taken, the one idle the
 * longest is reused. That bounds memory whatever the number of clients; an
 * evicted idle bucket would have been full anyway, and an evicted busy one only
 * hands its client a fresh burst, once. Keys are hashed with a per-process
 * random seed so clients cannot aim collisions. Pure apart from the mutexes;
 * tested in tests/unit/edge/test_edge_ratelimit.c. */
#ifndef EDGE_RATELIMIT_H
#define EDGE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct edge_bucket {
    double tokens;
    uint64_t updated_ms;
};

/* One take at now_ms. false: refused, *retry_after_s >= 1 says when to retry.
 * A new bucket (updated_ms 0) starts full. */
bool edge_bucket_take(struct edge_bucket *bucket, double rate_per_s, double burst, uint64_t now_ms,
                      uint32_t *retry_after_s);

struct edge_ratelimit;

/* rate_per_s 0 disables the limit (take always succeeds). seed 0: a random one. */
struct edge_ratelimit *edge_ratelimit_create(uint32_t keys_max, double rate_per_s, double burst, uint64_t seed);
void edge_ratelimit_destroy(struct edge_ratelimit *limit);
bool edge_ratelimit_take(struct edge_ratelimit *limit, const char *key, size_t key_len, uint64_t now_ms,
                         uint32_t *retry_after_s);
bool edge_ratelimit_enabled(const struct edge_ratelimit *limit);

#endif
