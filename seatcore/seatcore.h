/* seatcore.h — the engine's public interface.
 *
 * The engine holds events, seats, holds, sales and waiting queues in memory and
 * makes every change durable in a write-ahead log. Operations run on the
 * caller's thread and are lock-free (atomics and CAS; no mutex on hold, confirm,
 * release, join or position). An operation decides its answer at once and fills
 * the result, but a change is not acknowledged until it is durable: each call
 * that changed something returns through *lsn the log position to wait for, and
 * the caller replies from sc_engine_when_durable()'s callback (a server thread
 * never blocks on the disk). A batch of operations waits once for the largest LSN.
 * In memory-only mode (no data_dir) *lsn is always 0 and changes are final at once.
 *
 * Ids: events and users are 64-bit ids chosen by the caller (event ids route to
 * shards; user ids come from the auth database, 1..TK_USER_ID_MAX). Seats are
 * numbered 0..capacity-1 across the event's sections in order, row by row. A hold
 * id is returned by sc_hold and names one hold for its lifetime (never reused).
 *
 * Time comes from the injected clock (tk_clock.h); storage goes through the
 * injected wal_io backend (wal_io.h): tests drive both. */
#ifndef SEATCORE_H
#define SEATCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_clock.h"
#include "tk_limits.h"
#include "tk_metrics.h"
#include "tk_status.h"
#include "wal.h"

struct sc_engine;
struct wal_io;

struct sc_engine_config {
    uint32_t events_max;          /* 0: TK_EVENTS_MAX_DEFAULT; at most TK_EVENTS_MAX_MAX */
    uint32_t idempotency_keys;    /* table entries; 0: TK_IDEMPOTENCY_KEYS_DEFAULT */
    uint32_t idempotency_ttl_ms;  /* 0: TK_IDEMPOTENCY_TTL_MS_DEFAULT */
    const struct tk_clock *clock; /* NULL: tk_clock_real */
    const char *data_dir;         /* NULL: memory only, nothing durable */
    struct wal_io *io;            /* NULL: io_uring, else pwritev (see wal.h) */
    uint32_t wal_ring_bytes;      /* 0: default */
    uint64_t wal_segment_bytes;   /* 0: default */
    /* Snapshot after this many WAL bytes since the last one (sc_engine_tick does it
     * on the ticking thread). 0: never automatically. */
    uint64_t snapshot_every_bytes;
    /* Key that signs admission tokens (HMAC-SHA256); at least 32 bytes when any
     * event has a waiting queue. */
    const uint8_t *token_key;
    size_t token_key_len;
    void (*log)(void *log_ctx, const char *level, const char *message);
    void *log_ctx;
};

/* Opens an engine; with a data_dir it recovers from the newest valid snapshot plus
 * the WAL after it. On failure err holds a clear message (file and offset for
 * corruption). */
enum tk_status sc_engine_open(struct sc_engine **out, const struct sc_engine_config *config, char *err,
                              size_t err_len);
/* Flushes the WAL (every change made so far becomes durable) and frees the engine. */
void sc_engine_close(struct sc_engine *engine);

/* ---- durability ---- */
typedef void (*sc_done_fn)(void *ctx, enum tk_status status);
/* true: lsn is already durable and fn is not called. false: fn(ctx, status) runs
 * once on the WAL thread when it is (TK_OK) or when the log failed (TK_ERR_IO). */
bool sc_engine_when_durable(struct sc_engine *engine, uint64_t lsn, sc_done_fn fn, void *ctx);
enum tk_status sc_engine_wait_durable(struct sc_engine *engine, uint64_t lsn);
/* TK_OK, or the error that stopped the engine (a failed WAL: restart to recover). */
enum tk_status sc_engine_health(const struct sc_engine *engine);

/* ---- events ---- */
enum sc_event_state { SC_EVENT_OPEN = 0, SC_EVENT_CLOSED = 1, SC_EVENT_CANCELLED = 2 };

struct sc_section_spec {
    char name[TK_SECTION_NAME_BYTES_MAX];
    uint32_t rows;
    uint32_t seats_per_row;
    uint32_t price_cents;
};

struct sc_queue_spec {
    bool enabled;
    uint32_t admit_per_s;
    uint32_t max_active;
    uint32_t length_max;           /* 0: TK_QUEUE_LENGTH_MAX_DEFAULT */
    uint32_t admission_ttl_ms;     /* 0: TK_ADMISSION_TTL_MS_DEFAULT */
    uint32_t heartbeat_timeout_ms; /* 0: TK_HEARTBEAT_TIMEOUT_MS_DEFAULT */
    bool randomize_pre_open;       /* arrivals before sale_opens_at_ms are shuffled at the opening */
};

struct sc_event_spec {
    uint64_t event_id; /* nonzero */
    uint32_t section_count;
    struct sc_section_spec sections[TK_SECTIONS_PER_EVENT_MAX];
    uint32_t hold_ttl_ms;        /* 0: TK_HOLD_TTL_MS_DEFAULT */
    uint32_t max_seats_per_user; /* held + bought; 0: TK_SEATS_PER_HOLD_MAX */
    uint32_t holds_max;          /* concurrent holds; 0: half the capacity (at least 64) */
    uint32_t users_max;          /* distinct users who may hold; 0: max(capacity, 65536) */
    int64_t sale_opens_at_ms;    /* holds before this are refused; 0: open now */
    struct sc_queue_spec queue;
};

struct sc_counts {
    uint32_t capacity;
    uint32_t free;
    uint32_t held;
    uint32_t sold;
};

struct sc_event_info {
    uint64_t event_id;
    enum sc_event_state state;
    uint64_t version; /* grows on every seat change; names an availability state */
    struct sc_counts counts;
    uint32_t active_holds;
};

enum tk_status sc_event_create(struct sc_engine *engine, const struct sc_event_spec *spec, uint64_t *lsn);
/* Validates a spec without creating anything; *why names the problem. */
enum tk_status sc_event_spec_check(const struct sc_event_spec *spec, const char **why);
enum tk_status sc_event_close(struct sc_engine *engine, uint64_t event_id, uint64_t *lsn);
/* Cancel: no more holds, confirms or joins; existing sales stay recorded for refunds. */
enum tk_status sc_event_cancel(struct sc_engine *engine, uint64_t event_id, uint64_t *lsn);
enum tk_status sc_event_get(struct sc_engine *engine, uint64_t event_id, struct sc_event_info *out);
/* The spec the event was created with. */
enum tk_status sc_event_spec_get(struct sc_engine *engine, uint64_t event_id, struct sc_event_spec *out);
/* Fills up to max event ids in creation order; returns how many exist. */
uint32_t sc_event_list(struct sc_engine *engine, uint64_t *ids, uint32_t max);

/* ---- seats and holds ---- */
enum sc_seat_state { SC_SEAT_FREE = 0, SC_SEAT_HELD = 1, SC_SEAT_SOLD = 2 };

struct sc_hold_request {
    uint64_t event_id;
    uint64_t user_id;
    /* Either explicit seats (seat_count 1..TK_SEATS_PER_HOLD_MAX) ... */
    uint32_t seat_count;
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
    /* ... or best available: best_count seats, adjacent in a row when possible,
     * in section best_section (-1: any section). */
    uint32_t best_count;
    int32_t best_section;
    /* Caller's idempotency key hashed to 64 bits (0: none). The same key with the
     * same request returns the first answer; with another request it is refused. */
    uint64_t idempotency_key;
    /* Required when the event has a waiting queue. */
    const char *admission_token;
    size_t admission_token_len;
};

struct sc_hold_result {
    uint64_t hold_id;
    int64_t expires_at_ms;
    uint64_t amount_cents;
    uint32_t seat_count;
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
    /* On TK_ERR_SEAT_CONFLICT: the requested seats that were not free. */
    uint32_t unavailable_count;
    uint32_t unavailable[TK_SEATS_PER_HOLD_MAX];
    bool replayed; /* answered from the idempotency table */
};

enum tk_status sc_hold(struct sc_engine *engine, const struct sc_hold_request *request,
                       struct sc_hold_result *result, uint64_t *lsn);
/* The owner gives the seats back. Releasing a hold that already ended is
 * TK_ERR_NOT_FOUND, or TK_ERR_HOLD_EXPIRED if it expired. */
enum tk_status sc_release(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, uint64_t hold_id,
                          uint64_t *lsn);
/* Held -> sold, by the owner before expiry. With an idempotency key, a retry of a
 * confirm that succeeded answers TK_OK again (the hold itself is gone by then). */
enum tk_status sc_confirm(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, uint64_t hold_id,
                          uint64_t idempotency_key, struct sc_hold_result *result, uint64_t *lsn);
/* A sold seat goes back on sale (refund); only its buyer's id is accepted. */
enum tk_status sc_return_seat(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, uint32_t seat_id,
                              uint64_t *lsn);

struct sc_hold_info {
    uint64_t hold_id;
    uint64_t user_id;
    int64_t expires_at_ms;
    uint64_t amount_cents;
    uint32_t seat_count;
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
};
enum tk_status sc_hold_get(struct sc_engine *engine, uint64_t event_id, uint64_t hold_id, struct sc_hold_info *out);

/* The live hold on a seat (TK_ERR_NOT_FOUND when the seat is not held). */
enum tk_status sc_seat_hold_get(struct sc_engine *engine, uint64_t event_id, uint32_t seat_id,
                                struct sc_hold_info *out);
/* Who holds or bought a seat (0 when free), for audits. */
enum tk_status sc_seat_get(struct sc_engine *engine, uint64_t event_id, uint32_t seat_id, enum sc_seat_state *state,
                           uint64_t *user_id);

/* ---- availability ---- */
/* Copies every seat's state, 2 bits per seat (seat i in bits 2*(i%4) of byte i/4),
 * without blocking writers. states_len must be >= (capacity + 3) / 4. counts are
 * computed from the copy itself, so free + held + sold == capacity always holds;
 * version is the event version read before the copy (a copy taken at version V
 * reflects at least every change up to V). */
enum tk_status sc_availability_copy(struct sc_engine *engine, uint64_t event_id, uint8_t *states,
                                    size_t states_len, uint64_t *version, struct sc_counts *counts);
static inline enum sc_seat_state sc_availability_state(const uint8_t *states, uint32_t seat)
{
    return (enum sc_seat_state)((states[seat >> 2] >> ((seat & 3u) * 2u)) & 3u);
}

/* ---- waiting queue ----
 * Join is idempotent per user. An event without a waiting room admits everyone at
 * once: join answers "admitted" with a token and no ticket. Tokens are signed
 * with the engine's token key (token.h) and other services verify them offline. */
enum sc_queue_state { SC_QUEUE_WAITING = 0, SC_QUEUE_ADMITTED = 1, SC_QUEUE_LEFT = 2, SC_QUEUE_EXPIRED = 3 };

#define SC_ADMISSION_TOKEN_BYTES_MAX 256u

struct sc_queue_view {
    uint64_t ticket;
    uint32_t rank;     /* admission order (0 = first); changes once, at the opening shuffle */
    uint32_t position; /* 1 = next; 0 when admitted */
    uint32_t eta_s;
    enum sc_queue_state state;
    int64_t admission_expires_ms;
    char admission_token[SC_ADMISSION_TOKEN_BYTES_MAX]; /* "" unless admitted */
};

enum tk_status sc_queue_join(struct sc_engine *engine, uint64_t event_id, uint64_t user_id,
                             struct sc_queue_view *out, uint64_t *lsn);
/* *lsn: an admission shown here comes from a ticker step whose record may not be
 * durable yet; wait for *lsn before showing it (then a crash cannot take it back). */
enum tk_status sc_queue_status(struct sc_engine *engine, uint64_t event_id, uint64_t user_id,
                               struct sc_queue_view *out, uint64_t *lsn);
enum tk_status sc_queue_heartbeat(struct sc_engine *engine, uint64_t event_id, uint64_t user_id);
enum tk_status sc_queue_leave(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, uint64_t *lsn);

/* The waiting room as a whole, for feeds that push positions to many clients:
 * a client at rank r is at position (r - head_rank) - (leaves in between) + 1. */
struct sc_queue_info {
    uint64_t tickets;      /* issued so far */
    uint64_t admissions;   /* admitted so far */
    uint32_t waiting;
    uint32_t active;       /* admitted and not yet expired */
    uint32_t head_rank;    /* ranks below were admitted or skipped */
    double admission_rate_per_s;
    bool ranks_final;      /* false while arrivals before the opening may still be shuffled */
    uint64_t lsn;          /* the last ticker step's record: show admissions once it is durable */
};
enum tk_status sc_queue_info(struct sc_engine *engine, uint64_t event_id, struct sc_queue_info *out);

struct sc_queue_admission {
    uint64_t user_id;
    uint64_t ticket;
    uint32_t rank;
    int64_t admission_expires_ms;
};
/* Admissions in rank order from from_rank up to the head, at most max; *next is
 * where to continue. Skipped and departed ranks are passed over. Admissions come
 * from ticker steps that may not be durable yet: show them once sc_queue_info's
 * lsn is (then a crash cannot take them back). */
enum tk_status sc_queue_admitted(struct sc_engine *engine, uint64_t event_id, uint32_t from_rank,
                                 struct sc_queue_admission *out, uint32_t max, uint32_t *count, uint32_t *next);
/* The admission token of an admission (SC_ADMISSION_TOKEN_BYTES_MAX bytes of room). */
enum tk_status sc_queue_admission_token(struct sc_engine *engine, uint64_t event_id,
                                        const struct sc_queue_admission *admission, char *out, size_t out_len);

/* ---- background work ---- */
/* One bounded step of background work: expires holds past their TTL, runs queue
 * admissions, snapshots when due. Call from one thread every 10-100 ms. Returns
 * the LSN of the changes it made (nobody waits for it, but tests may). */
uint64_t sc_engine_tick(struct sc_engine *engine);
/* Writes a snapshot now (blocking; not on a server thread). */
enum tk_status sc_engine_snapshot(struct sc_engine *engine);

/* ---- metrics ---- */
struct sc_metrics {
    uint64_t holds;
    uint64_t hold_conflicts;
    uint64_t confirms;
    uint64_t releases;
    uint64_t expirations;
    uint64_t returns;
    uint64_t idempotent_replays;
    uint64_t queue_joins;
    uint64_t queue_admissions;
    uint64_t queue_leaves;
    uint64_t wal_records;
    uint64_t wal_bytes;
    uint64_t wal_batches;
    uint64_t snapshots;
    uint32_t events;
    const struct tk_histogram *op_latency_ns;    /* hold/confirm/release/join on the caller's thread */
    const struct tk_histogram *wal_fsync_ns;     /* NULL in memory-only mode */
};
void sc_engine_metrics(struct sc_engine *engine, struct sc_metrics *out);

/* Total bytes the engine allocated for its tables (for the memory-per-seat figure). */
uint64_t sc_engine_memory_bytes(const struct sc_engine *engine);

#endif
