/* engine.h — the engine object (internal to seatcore).
 *
 * Shared by engine.c (the public API and recovery), engine_queue.c (the waiting
 * room glue) and snapshot.c. Event lookup is a lock-free open-addressing table
 * from event id to the index in `events`; an event is published (index stored
 * with release) only after every table of it is built. Creating an event takes
 * create_lock: it is rare, allocates, and is not on the hot path. */
#ifndef ENGINE_H
#define ENGINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "event.h"
#include "idem.h"
#include "journal.h"
#include "seatcore.h"
#include "stats.h"
#include "token.h"

struct wal_io;

struct sc_engine {
    const struct tk_clock *clock;
    char *data_dir; /* NULL: memory only */
    struct wal *wal;
    struct wal_io *io;
    bool owns_io;
    struct idem_table *idem;
    uint32_t events_max;
    struct sc_event **events;         /* [events_max], filled in creation order */
    _Atomic uint32_t event_count;
    _Atomic uint64_t *event_ids;      /* [event_ids_mask + 1]: 0 empty */
    _Atomic uint32_t *event_slots;    /* index + 1 once published */
    uint32_t event_ids_mask;
    pthread_mutex_t create_lock;
    pthread_mutex_t snapshot_lock;
    struct stats_registry stats;
    _Atomic uint32_t health; /* enum tk_status: TK_OK until the WAL fails */
    struct token_key token_key; /* len 0: no key configured (no waiting rooms) */
    uint64_t snapshot_every_bytes;
    uint64_t snapshot_lsn;   /* start LSN of the newest snapshot */
    _Atomic uint64_t snapshots;
    uint32_t tick_cursor;    /* ticker thread only */
    void (*log)(void *log_ctx, const char *level, const char *message);
    void *log_ctx;
};

struct sc_event *engine_event(struct sc_engine *engine, uint64_t event_id);
/* Registers a built event (creation and recovery); TK_ERR_EXISTS / TK_ERR_FULL. */
enum tk_status engine_event_register(struct sc_engine *engine, struct sc_event *ev);
void engine_op_begin(struct sc_engine *engine, struct op_ctx *ctx);
/* Turns a WAL failure inside the operation into the answer and stops writes. */
enum tk_status engine_op_end(struct sc_engine *engine, struct op_ctx *ctx, enum tk_status status, uint64_t *lsn);
uint64_t engine_latency_start(void);
void engine_latency_end(struct sc_thread_stats *stats, uint64_t started_ns);
void engine_logf(struct sc_engine *engine, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* engine_queue.c */
enum tk_status engine_queue_create(struct sc_engine *engine, struct sc_event *ev);
void engine_queue_destroy(struct sc_event *ev);
enum tk_status engine_queue_replay(struct sc_engine *engine, uint16_t type, const void *payload, uint32_t len);
uint64_t engine_queue_tick(struct sc_engine *engine, struct sc_event *ev, struct op_ctx *ctx);
/* Checks an admission token for (event, user); TK_ERR_NOT_ADMITTED when invalid. */
enum tk_status engine_queue_check_token(struct sc_engine *engine, struct sc_event *ev, uint64_t user_id,
                                        const char *token, size_t token_len, int64_t now_ms);

/* snapshot.c */
enum tk_status snapshot_write(struct sc_engine *engine);
/* Loads the newest valid snapshot, if any; *lsn is where WAL replay starts. */
enum tk_status snapshot_load(struct sc_engine *engine, uint64_t *lsn, char *err, size_t err_len);

#endif
