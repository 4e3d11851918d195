/* tk_clock.c — real and manual clocks (see tk_clock.h). */
#include "tk_clock.h"

#include <time.h>

#include "tk_assert.h"

static int64_t clock_real_now_ms(const struct tk_clock *clock)
{
    (void)clock;
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    TK_ASSERT(rc == 0);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const struct tk_clock tk_clock_real = {.now_ms = clock_real_now_ms};

static int64_t clock_manual_now_ms(const struct tk_clock *clock)
{
    const struct tk_clock_manual *manual = (const struct tk_clock_manual *)clock;
    return atomic_load_explicit(&manual->now_ms, memory_order_acquire);
}

void tk_clock_manual_init(struct tk_clock_manual *clock, int64_t start_ms)
{
    TK_ASSERT(clock != NULL);
    TK_ASSERT(start_ms >= 0);
    clock->base.now_ms = clock_manual_now_ms;
    atomic_init(&clock->now_ms, start_ms);
}

void tk_clock_manual_set(struct tk_clock_manual *clock, int64_t now_ms)
{
    TK_ASSERT(now_ms >= 0);
    atomic_store_explicit(&clock->now_ms, now_ms, memory_order_release);
}

void tk_clock_manual_advance(struct tk_clock_manual *clock, int64_t delta_ms)
{
    int64_t after = atomic_fetch_add_explicit(&clock->now_ms, delta_ms, memory_order_acq_rel) + delta_ms;
    TK_ASSERT(after >= 0);
}

uint64_t tk_monotonic_ns(void)
{
    struct timespec ts;
    int rc = clock_gettime(CLOCK_MONOTONIC, &ts);
    TK_ASSERT(rc == 0);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
