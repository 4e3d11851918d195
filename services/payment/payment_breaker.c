/* payment_breaker.c — the gateway circuit breaker (payment_breaker.h).
 *
 * Depends on libc and tk_assert.h only, so the unit tests compile it directly. */
#include "payment_breaker.h"

#include <stdio.h>
#include <string.h>

#include "tk_assert.h"

bool payment_breaker_config_check(const struct payment_breaker_config *config, char *why, size_t why_len)
{
    TK_ASSERT(config != NULL && why != NULL);
    if (config->window_calls < PAYMENT_BREAKER_WINDOW_CALLS_MIN ||
        config->window_calls > PAYMENT_BREAKER_WINDOW_CALLS_MAX) {
        snprintf(why, why_len, "the breaker window must be %u..%u calls", PAYMENT_BREAKER_WINDOW_CALLS_MIN,
                 PAYMENT_BREAKER_WINDOW_CALLS_MAX);
        return false;
    }
    if (config->failure_percent < 1 || config->failure_percent > 100) {
        snprintf(why, why_len, "the breaker failure threshold must be 1..100 percent");
        return false;
    }
    if (config->probe_calls > PAYMENT_BREAKER_PROBE_CALLS_MAX) {
        snprintf(why, why_len, "the breaker probes must be 1..%u calls", PAYMENT_BREAKER_PROBE_CALLS_MAX);
        return false;
    }
    if (config->open_ms < 1) {
        snprintf(why, why_len, "the breaker open period must be at least 1 ms");
        return false;
    }
    return true;
}

static void enter_locked(struct payment_breaker *b, enum payment_breaker_state state, int64_t now_ms)
{
    TK_ASSERT(state < PAYMENT_BREAKER_STATES);
    TK_ASSERT(state != b->state);
    b->state = state;
    b->generation++;
    b->probes_granted = b->probes_ok = b->probes_failed = 0;
    if (state == PAYMENT_BREAKER_OPEN)
        b->opened_at_ms = now_ms;
    if (state == PAYMENT_BREAKER_CLOSED)
        b->ring_head = b->ring_count = 0; /* a fresh start: old failures are not held against it */
    atomic_store_explicit(&b->state_mirror, (int)state, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->transitions[state], 1, memory_order_relaxed);
}

void payment_breaker_init(struct payment_breaker *b, const struct payment_breaker_config *config)
{
    TK_ASSERT(b != NULL && config != NULL);
    char why[128];
    TK_ASSERT(payment_breaker_config_check(config, why, sizeof(why)));
    memset(b, 0, sizeof(*b));
    b->config = *config;
    if (b->config.probe_timeout_ms == 0)
        b->config.probe_timeout_ms = b->config.open_ms;
    if (b->config.probe_calls == 0)
        b->config.probe_calls = 1;
    b->state = PAYMENT_BREAKER_CLOSED;
    b->generation = 1;
    int rc = pthread_mutex_init(&b->lock, NULL);
    TK_ASSERT(rc == 0);
}

void payment_breaker_destroy(struct payment_breaker *b)
{
    if (b != NULL)
        pthread_mutex_destroy(&b->lock);
}

static bool open_period_over(const struct payment_breaker *b, int64_t now_ms)
{
    return now_ms - b->opened_at_ms >= (int64_t)b->config.open_ms;
}

/* OPEN whose period is over becomes HALF_OPEN (without granting the probe yet). */
static void advance_locked(struct payment_breaker *b, int64_t now_ms)
{
    if (b->state == PAYMENT_BREAKER_OPEN && open_period_over(b, now_ms))
        enter_locked(b, PAYMENT_BREAKER_HALF_OPEN, now_ms);
}

/* A probe can be granted: this round has one left, or the round went silent. */
static bool probe_free_locked(const struct payment_breaker *b, int64_t now_ms)
{
    return b->probes_granted < b->config.probe_calls ||
           now_ms - b->probe_started_ms >= (int64_t)b->config.probe_timeout_ms;
}

struct payment_breaker_ticket payment_breaker_acquire(struct payment_breaker *b, int64_t now_ms)
{
    TK_ASSERT(b != NULL);
    struct payment_breaker_ticket ticket = {0};
    pthread_mutex_lock(&b->lock);
    advance_locked(b, now_ms);
    switch (b->state) {
    case PAYMENT_BREAKER_CLOSED:
        ticket = (struct payment_breaker_ticket){.generation = b->generation, .allowed = true};
        break;
    case PAYMENT_BREAKER_HALF_OPEN:
        if (probe_free_locked(b, now_ms)) {
            if (b->probes_granted == b->config.probe_calls) {
                b->generation++; /* a new round: the silent probes' late outcomes no longer count */
                b->probes_granted = b->probes_ok = b->probes_failed = 0;
            }
            b->probes_granted++;
            b->probe_started_ms = now_ms;
            ticket = (struct payment_breaker_ticket){.generation = b->generation, .allowed = true, .probe = true};
        }
        break;
    case PAYMENT_BREAKER_OPEN:
    case PAYMENT_BREAKER_STATES:
        break;
    }
    pthread_mutex_unlock(&b->lock);
    if (!ticket.allowed)
        atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
    return ticket;
}

/* Failures among the outcomes still inside the time window; *recent: how many there are. */
static uint32_t recent_failures_locked(const struct payment_breaker *b, int64_t now_ms, uint32_t *recent)
{
    uint32_t failures = 0, count = 0;
    const uint32_t size = b->config.window_calls;
    for (uint32_t i = 0; i < b->ring_count; i++) {
        uint32_t slot = (b->ring_head + i) % size;
        if (b->config.window_ms != 0 && now_ms - b->ring_at_ms[slot] > (int64_t)b->config.window_ms)
            continue;
        count++;
        failures += b->ring_failed[slot] ? 1u : 0u;
    }
    TK_ASSERT(failures <= count && count <= size);
    *recent = count;
    return failures;
}

static void record_closed_locked(struct payment_breaker *b, bool failed, int64_t now_ms)
{
    const uint32_t size = b->config.window_calls;
    uint32_t slot;
    if (b->ring_count < size) {
        slot = (b->ring_head + b->ring_count) % size;
        b->ring_count++;
    } else {
        slot = b->ring_head; /* overwrite the oldest */
        b->ring_head = (b->ring_head + 1) % size;
    }
    b->ring_at_ms[slot] = now_ms;
    b->ring_failed[slot] = failed;
    uint32_t recent;
    uint32_t failures = recent_failures_locked(b, now_ms, &recent);
    if (recent >= size && (uint64_t)failures * 100u >= (uint64_t)b->config.failure_percent * recent)
        enter_locked(b, PAYMENT_BREAKER_OPEN, now_ms);
}

/* Judges the round as soon as its outcome is certain, not only when it is complete. */
static void record_probe_locked(struct payment_breaker *b, bool failed, int64_t now_ms)
{
    const uint64_t calls = b->config.probe_calls, percent = b->config.failure_percent;
    if (failed)
        b->probes_failed++;
    else
        b->probes_ok++;
    TK_ASSERT(b->probes_ok + b->probes_failed <= b->probes_granted && b->probes_granted <= calls);
    if ((uint64_t)b->probes_failed * 100u >= percent * calls)
        enter_locked(b, PAYMENT_BREAKER_OPEN, now_ms);
    else if ((calls - b->probes_ok) * 100u < percent * calls) /* even all the rest failing cannot reopen it */
        enter_locked(b, PAYMENT_BREAKER_CLOSED, now_ms);
}

void payment_breaker_record(struct payment_breaker *b, struct payment_breaker_ticket ticket, bool failed,
                            int64_t now_ms)
{
    TK_ASSERT(b != NULL);
    TK_ASSERT(ticket.allowed); /* a refused call made no request: nothing to record */
    pthread_mutex_lock(&b->lock);
    if (ticket.generation == b->generation) {
        if (ticket.probe) {
            TK_ASSERT(b->state == PAYMENT_BREAKER_HALF_OPEN);
            record_probe_locked(b, failed, now_ms);
        } else {
            TK_ASSERT(b->state == PAYMENT_BREAKER_CLOSED);
            record_closed_locked(b, failed, now_ms);
        }
    }
    pthread_mutex_unlock(&b->lock);
}

enum payment_breaker_state payment_breaker_state(struct payment_breaker *b, int64_t now_ms)
{
    pthread_mutex_lock(&b->lock);
    advance_locked(b, now_ms);
    enum payment_breaker_state state = b->state;
    pthread_mutex_unlock(&b->lock);
    return state;
}

bool payment_breaker_would_allow(struct payment_breaker *b, int64_t now_ms)
{
    pthread_mutex_lock(&b->lock);
    advance_locked(b, now_ms);
    bool allow = b->state == PAYMENT_BREAKER_CLOSED ||
                 (b->state == PAYMENT_BREAKER_HALF_OPEN && probe_free_locked(b, now_ms));
    pthread_mutex_unlock(&b->lock);
    return allow;
}

enum payment_breaker_state payment_breaker_state_relaxed(const struct payment_breaker *b)
{
    return (enum payment_breaker_state)atomic_load_explicit(&b->state_mirror, memory_order_relaxed);
}

const char *payment_breaker_state_name(enum payment_breaker_state state)
{
    switch (state) {
    case PAYMENT_BREAKER_CLOSED:
        return "closed";
    case PAYMENT_BREAKER_OPEN:
        return "open";
    case PAYMENT_BREAKER_HALF_OPEN:
        return "half_open";
    case PAYMENT_BREAKER_STATES:
        break;
    }
    return "unknown";
}
