/* tk_limits.h — every bound of the engine in one place (invariant 6).
 *
 * Names carry their unit last. Tables are allocated from these bounds when an
 * engine or an event is created, never on the hot path. Past a bound a request is
 * refused with a clear tk_status and the process keeps serving. */
#ifndef TK_LIMITS_H
#define TK_LIMITS_H

#include <stdint.h>

/* Events. */
#define TK_EVENTS_MAX_MAX 4096u          /* hard ceiling of the configured events_max */
#define TK_EVENTS_MAX_DEFAULT 64u
#define TK_SEATS_PER_EVENT_MAX 200000u
#define TK_SECTIONS_PER_EVENT_MAX 64u
#define TK_ROWS_PER_SECTION_MAX 1000u
#define TK_SEATS_PER_ROW_MAX 1000u
#define TK_SECTION_NAME_BYTES_MAX 32u    /* including the terminating NUL */
#define TK_PRICE_CENTS_MAX 100000000u    /* one million in the currency's main unit */

/* Holds. */
#define TK_SEATS_PER_HOLD_MAX 10u
#define TK_HOLD_TTL_MS_MIN 1000u
#define TK_HOLD_TTL_MS_MAX 3600000u
#define TK_HOLD_TTL_MS_DEFAULT 300000u   /* five minutes */
#define TK_SEATS_PER_USER_MAX 100u
#define TK_BEST_AVAILABLE_ATTEMPTS_MAX 8u  /* re-searches after losing a race */
#define TK_SWEEP_SLOTS_PER_TICK_MAX 65536u /* bounded work of one sweeper step */

/* Users: ids are chosen by the services (PostgreSQL keys); 48 bits leaves room to
 * pack an id with a 16-bit seat count into one atomic word. */
#define TK_USER_ID_MAX ((UINT64_C(1) << 48) - 1)

/* Waiting queue. */
#define TK_QUEUE_LENGTH_MAX_MAX 4000000u
#define TK_QUEUE_LENGTH_MAX_DEFAULT 200000u
#define TK_ADMIT_PER_S_MAX 100000u
#define TK_MAX_ACTIVE_MAX 1000000u
#define TK_ADMISSION_TTL_MS_MIN 10000u
#define TK_ADMISSION_TTL_MS_MAX 3600000u
#define TK_ADMISSION_TTL_MS_DEFAULT 600000u
#define TK_HEARTBEAT_TIMEOUT_MS_DEFAULT 60000u
#define TK_ADMISSIONS_PER_TICK_MAX 100000u
#define TK_HEARTBEAT_TIMEOUT_MS_MIN 1000u
#define TK_HEARTBEAT_TIMEOUT_MS_MAX 3600000u
#define TK_QUEUE_TICK_RANKS_MAX 65536u         /* ranks one tick's passes may walk over, each */
#define TK_QUEUE_TICK_RECORD_BYTES_MAX 8192u   /* one tick's record payload */
#define TK_QUEUE_RECORD_BYTES_MAX 256u         /* join / leave / open record payload */
#define TK_QUEUE_ETA_S_MAX (7u * 86400u)       /* an ETA past a week is reported as a week */

/* Idempotency keys (engine wide). */
#define TK_IDEMPOTENCY_KEYS_DEFAULT (1u << 20)
#define TK_IDEMPOTENCY_KEYS_MAX (1u << 26)
#define TK_IDEMPOTENCY_TTL_MS_DEFAULT 86400000u /* one day */
#define TK_IDEMPOTENCY_PROBE_MAX 16u            /* entries looked at for one key */

/* WAL. */
#define TK_WAL_RECORD_BYTES_MAX 65536u    /* a create-event record carries the layout */
#define TK_WAL_RING_BYTES_DEFAULT (64u << 20)
#define TK_WAL_RING_BYTES_MIN (1u << 20)
#define TK_WAL_SEGMENT_BYTES_DEFAULT (256u << 20)
#define TK_WAL_WAITERS_MAX (1u << 18)     /* durability waiters in flight */
#define TK_WAL_PATH_BYTES_MAX 4096u

_Static_assert(TK_SEATS_PER_EVENT_MAX < (1u << 24), "seat ids and hold slots fit in 24 bits of a seat word");
_Static_assert(TK_SEATS_PER_HOLD_MAX <= 16, "a hold fits in one cache line");
_Static_assert(TK_SEATS_PER_USER_MAX < (1u << 16), "a user's seat count fits in 16 bits");
_Static_assert((uint64_t)TK_SECTIONS_PER_EVENT_MAX * TK_ROWS_PER_SECTION_MAX >= 1000, "rows per event bound");
_Static_assert(TK_WAL_RING_BYTES_MIN > 4 * TK_WAL_RECORD_BYTES_MAX, "the ring holds many records");

#endif
