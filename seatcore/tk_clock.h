/* tk_clock.h — the injected clock.
 *
 * The engine never calls clock_gettime itself: every time it needs ("is this hold
 * expired?", "how many admissions this second?") comes from a tk_clock. Daemons use
 * tk_clock_real (wall time in milliseconds, because hold expiries and admission
 * tokens outlive a restart and are checked by other processes); tests and the
 * simulator use a manual clock they move by hand, so time is deterministic. */
#ifndef TK_CLOCK_H
#define TK_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

struct tk_clock {
    int64_t (*now_ms)(const struct tk_clock *clock);
};

/* Wall-clock milliseconds since the Unix epoch. */
extern const struct tk_clock tk_clock_real;

/* A clock that only moves when told to. Safe to read from many threads. */
struct tk_clock_manual {
    struct tk_clock base;
    _Atomic int64_t now_ms;
};

void tk_clock_manual_init(struct tk_clock_manual *clock, int64_t start_ms);
void tk_clock_manual_set(struct tk_clock_manual *clock, int64_t now_ms);
void tk_clock_manual_advance(struct tk_clock_manual *clock, int64_t delta_ms);

static inline int64_t tk_clock_now_ms(const struct tk_clock *clock)
{
    return clock->now_ms(clock);
}

/* Monotonic nanoseconds, for latency measurement only (never for engine logic). */
uint64_t tk_monotonic_ns(void);

#endif
