/* payment_breaker.h — the circuit breaker in front of the card gateway.
 *
 * Three states. CLOSED: calls go through and each outcome lands in a ring of the
 * last window_calls outcomes; once the ring holds window_calls outcomes no older
 * than window_ms and at least failure_percent of them failed, the breaker OPENS.
 * OPEN: every call is refused at once (the caller answers "payment_unavailable"
 * without touching the network) for open_ms. Then HALF_OPEN: probe_calls calls,
 * the probes, go through and are judged like the window: as soon as their
 * failures reach failure_percent of probe_calls the breaker opens again for
 * another open_ms; as soon as they no longer can, it closes (with an empty
 * ring). More than one probe matters: with a single probe, one customer's
 * payment that keeps failing (and is retried every open period) can take every
 * probe and hold the breaker open for everyone. A round whose probes have not
 * all reported back within probe_timeout_ms is replaced by a new round.
 *
 * Every permission is a ticket stamped with the breaker's generation (bumped on
 * each transition), and an outcome is only counted if its ticket is of the
 * current generation: a slow call that started while CLOSED cannot close a
 * breaker that opened meanwhile, or count twice.
 *
 * Time is passed in (monotonic milliseconds) so tests drive it by hand. One
 * mutex guards the state: a few instructions next to an HTTP round trip. The
 * state is mirrored in an atomic so /metrics reads it without the lock. */
#ifndef PAYMENT_BREAKER_H
#define PAYMENT_BREAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum payment_breaker_state {
    PAYMENT_BREAKER_CLOSED = 0, /* the values are the metric's values */
    PAYMENT_BREAKER_OPEN = 1,
    PAYMENT_BREAKER_HALF_OPEN = 2,
    PAYMENT_BREAKER_STATES = 3
};

#define PAYMENT_BREAKER_WINDOW_CALLS_MIN 2u
#define PAYMENT_BREAKER_WINDOW_CALLS_MAX 1024u
#define PAYMENT_BREAKER_PROBE_CALLS_MAX 100u

struct payment_breaker_config {
    uint32_t window_calls;     /* outcomes judged together (>= 10 in production) */
    uint32_t failure_percent;  /* opens when failures * 100 >= failure_percent * window_calls */
    uint32_t open_ms;          /* how long OPEN refuses calls before the probe */
    uint32_t window_ms;        /* outcomes older than this are forgotten; 0: never */
    uint32_t probe_timeout_ms; /* a probe round silent this long is replaced; 0: open_ms */
    uint32_t probe_calls;      /* probes judged together when half-open; 0: 1 */
};

/* A permission to call (allowed) or a refusal. Pass it back to record(). */
struct payment_breaker_ticket {
    uint64_t generation;
    bool allowed;
    bool probe;
};

struct payment_breaker {
    pthread_mutex_t lock;
    struct payment_breaker_config config;
    enum payment_breaker_state state;
    uint64_t generation;
    int64_t opened_at_ms;
    int64_t probe_started_ms;              /* when the last probe of this round was granted */
    uint32_t probes_granted, probes_ok, probes_failed; /* this half-open round */
    uint32_t ring_head, ring_count; /* the last outcomes, oldest at ring_head */
    int64_t ring_at_ms[PAYMENT_BREAKER_WINDOW_CALLS_MAX];
    bool ring_failed[PAYMENT_BREAKER_WINDOW_CALLS_MAX];
    _Atomic int state_mirror;
    _Atomic uint64_t transitions[PAYMENT_BREAKER_STATES]; /* entries into each state */
    _Atomic uint64_t refused;
};

/* false (and why) if the settings are out of range. */
bool payment_breaker_config_check(const struct payment_breaker_config *config, char *why, size_t why_len);
void payment_breaker_init(struct payment_breaker *breaker, const struct payment_breaker_config *config);
void payment_breaker_destroy(struct payment_breaker *breaker);

/* Asks to make one call at now_ms. A refused ticket must not be recorded. */
struct payment_breaker_ticket payment_breaker_acquire(struct payment_breaker *breaker, int64_t now_ms);
/* Reports the outcome of an allowed call (failed: the gateway looked unhealthy). */
void payment_breaker_record(struct payment_breaker *breaker, struct payment_breaker_ticket ticket, bool failed,
                            int64_t now_ms);
/* The state at now_ms (an OPEN breaker whose period is over reads, and becomes, HALF_OPEN). */
enum payment_breaker_state payment_breaker_state(struct payment_breaker *breaker, int64_t now_ms);
/* True if a call at now_ms would be let through (does not take the probe). */
bool payment_breaker_would_allow(struct payment_breaker *breaker, int64_t now_ms);
/* The last state without taking the lock (metrics). */
enum payment_breaker_state payment_breaker_state_relaxed(const struct payment_breaker *breaker);
const char *payment_breaker_state_name(enum payment_breaker_state state);

#endif
