/* queue.h — one waiting queue per event: tickets, positions, admission control.
 *
 * What it owns: the tickets of one event's waiting room, the user -> ticket
 * table, the admission order (FIFO, with an optional seeded shuffle of everyone
 * who took a ticket before the opening), the admission pacing (token bucket +
 * max_active + grant TTL + heartbeat skipping), and the records / snapshot that
 * make all of that durable. It never reads a clock (the engine passes now_ms) and
 * never touches the WAL: every state-changing call encodes at most one record
 * into a caller buffer and the engine appends it and waits before answering.
 *
 * Threads: join / status / heartbeat / leave / position run on any number of
 * threads at once, lock-free (atomics and CAS only, no allocation, no syscalls).
 * queue_tick runs on one thread at a time (the engine's ticker). create, destroy,
 * replay, recovered and snapshot_read are single-threaded; snapshot_write must not
 * run concurrently with queue_tick (joins and leaves may run; replay of the records
 * after the snapshot's start LSN fixes whatever they changed meanwhile).
 *
 * Bounds: length_max bounds every ticket ever issued by this queue (tickets are
 * never reused: a leave-and-rejoin takes a new ticket; two racing joins of the same
 * user may burn one ticket number). Past it, join answers TK_ERR_QUEUE_FULL. */
#ifndef QUEUE_H
#define QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_codec.h"
#include "tk_limits.h"
#include "tk_status.h"

/* Record types (64..79 belong to the queue). Every payload starts with the u64
 * event id (queue_record_event_id reads it for routing). Little-endian:
 *   JOIN  64: u64 event | u64 user | u32 ticket_index | i64 now_ms                     (28 B)
 *   LEAVE 65: u64 event | u64 user | u32 ticket_index | u8 was_admitted | i64 now_ms   (29 B)
 *   OPEN  66: u64 event | u64 seed | u32 pre_open_count | i64 now_ms                   (28 B)
 *   TICK  67: u64 event | i64 now_ms | u32 expire_from | u32 expire_to | u32 head_from |
 *             u32 head_to | i64 grant_expires_ms | u32 rate_milli | u64 tokens_milli |
 *             u16 run_count | u16 runs[run_count]   (<= TK_QUEUE_TICK_RECORD_BYTES_MAX)
 *     ranks [expire_from, expire_to): every ADMITTED grant there expired;
 *     ranks [head_from, head_to): runs alternate admitted / skipped, admitted first
 *     (a run may be 0); admitted ranks got grant_expires_ms. */
enum {
    QUEUE_RECORD_JOIN = 64,
    QUEUE_RECORD_LEAVE = 65,
    QUEUE_RECORD_OPEN = 66,
    QUEUE_RECORD_TICK = 67,
    QUEUE_RECORD_TYPE_MIN = 64,
    QUEUE_RECORD_TYPE_MAX = 79,
};

#define QUEUE_TICK_RECORD_HEADER_BYTES 54u
#define QUEUE_TICK_RUNS_MAX ((TK_QUEUE_TICK_RECORD_BYTES_MAX - QUEUE_TICK_RECORD_HEADER_BYTES) / 2u)

struct queue;

struct queue_config {
    uint32_t length_max;           /* 1..TK_QUEUE_LENGTH_MAX_MAX tickets, ever */
    uint32_t admit_per_s;          /* 1..TK_ADMIT_PER_S_MAX */
    uint32_t max_active;           /* 1..TK_MAX_ACTIVE_MAX admitted and unexpired at once */
    uint32_t admission_ttl_ms;     /* TK_ADMISSION_TTL_MS_MIN..MAX */
    uint32_t heartbeat_timeout_ms; /* TK_HEARTBEAT_TIMEOUT_MS_MIN..MAX */
    int64_t opens_at_ms;           /* >= 0; nobody is admitted before */
    bool randomize_pre_open;       /* shuffle tickets taken before the opening tick */
    uint64_t random_seed;          /* the shuffle's seed (reproducible) */
};

/* Same values as enum sc_queue_state. */
enum queue_state {
    QUEUE_STATE_WAITING = 0,
    QUEUE_STATE_ADMITTED = 1,
    QUEUE_STATE_LEFT = 2,
    QUEUE_STATE_EXPIRED = 3, /* grant expired, or skipped for a stale heartbeat */
};

struct queue_view {
    uint64_t ticket;              /* 1-based, never reused */
    uint32_t rank;                /* admission order (0 = first); provisional before the opening shuffle */
    uint32_t position;            /* 1 = next; 0 unless waiting */
    uint32_t eta_s;               /* 0 unless waiting; capped at TK_QUEUE_ETA_S_MAX */
    enum queue_state state;
    int64_t admission_expires_ms; /* the grant's expiry once admitted, else 0 */
};

struct queue_stats {
    uint64_t joins;      /* tickets issued to users (not counting burned numbers) */
    uint64_t admissions;
    uint64_t leaves;
    uint64_t skipped;    /* passed by the head with a stale heartbeat */
    uint64_t tickets_issued;
    uint32_t waiting;
    uint32_t active;     /* admitted, not yet expired by the ticker, not left */
    uint32_t head_rank;  /* next admission rank the ticker considers */
    double admission_rate_per_s; /* EWMA used for ETAs */
    bool ranks_final;    /* false while arrivals before the opening may still be shuffled */
};

/* For admin tools and tests: one ticket by number. */
struct queue_ticket_info {
    uint64_t user;          /* 0 when the number was burned or never used */
    enum queue_state state; /* meaningful when user != 0 */
    bool was_admitted;
    uint32_t rank;          /* admission order (0 = first) */
    int64_t admission_expires_ms;
};

/* Bad config -> TK_ERR_INVALID (nothing allocated). Allocates every table. */
enum tk_status queue_create(struct queue **out, uint64_t event_id, const struct queue_config *config);
void queue_destroy(struct queue *q);
size_t queue_memory_bytes(const struct queue *q);

/* record: NULL (memory only) or an empty buffer with >= TK_QUEUE_RECORD_BYTES_MAX
 * free (TK_QUEUE_TICK_RECORD_BYTES_MAX for queue_tick). *record_type is set to the
 * encoded record's type, or 0 when nothing needs logging. */
enum tk_status queue_join(struct queue *q, uint64_t user_id, int64_t now_ms, struct queue_view *out,
                          struct tk_buf *record, uint16_t *record_type);
/* Counts as a heartbeat. TK_ERR_NOT_FOUND for a user who never joined. */
enum tk_status queue_status(struct queue *q, uint64_t user_id, int64_t now_ms, struct queue_view *out);
enum tk_status queue_heartbeat(struct queue *q, uint64_t user_id, int64_t now_ms);
/* Waiting: skipped by the head. Admitted: frees the active place. Left or
 * expired already: TK_OK, no record. */
enum tk_status queue_leave(struct queue *q, uint64_t user_id, int64_t now_ms, struct tk_buf *record,
                           uint16_t *record_type);
/* One ticker step: expire grants, pace admissions, skip stale waiters. */
enum tk_status queue_tick(struct queue *q, int64_t now_ms, struct tk_buf *record, uint16_t *record_type);

/* Recovery: apply records (idempotent), then queue_recovered once. */
enum tk_status queue_record_event_id(const void *payload, uint32_t len, uint64_t *event_id);
enum tk_status queue_replay(struct queue *q, uint16_t type, const void *payload, uint32_t len);
void queue_recovered(struct queue *q, int64_t now_ms);

/* Snapshot of the whole state; read into a freshly created queue (same config),
 * then replay and queue_recovered. On TK_ERR_CORRUPT the queue is left empty. */
size_t queue_snapshot_size(const struct queue *q);
enum tk_status queue_snapshot_write(const struct queue *q, struct tk_buf *out);
enum tk_status queue_snapshot_read(struct queue *q, struct tk_reader *in);

void queue_stats(const struct queue *q, struct queue_stats *out);
enum tk_status queue_ticket_inspect(const struct queue *q, uint64_t ticket, struct queue_ticket_info *out);
/* The ticket at an admission rank (ranks below queue_stats' head_rank were decided). */
enum tk_status queue_rank_inspect(const struct queue *q, uint32_t rank, uint64_t *ticket,
                                  struct queue_ticket_info *out);

#endif
