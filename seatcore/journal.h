/* journal.h — what one engine operation carries: the time, the log, and the
 * largest LSN it must wait for.
 *
 * Modules that change state (hold.c, the queue glue in engine.c) encode their
 * record through journal_* and never touch the WAL directly, so memory-only mode
 * (wal == NULL) and the "wait for the largest LSN" rule live in one place. An
 * operation may write more than one record (a hold that first expires a stale
 * hold in its way writes two); the caller waits for the last. */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stdint.h>

#include "record.h"
#include "tk_status.h"

struct wal;
struct sc_thread_stats;

struct op_ctx {
    struct wal *wal;    /* NULL: memory only */
    int64_t now_ms;     /* from the engine's clock, read once per operation */
    uint64_t lsn;       /* largest end LSN of the records written so far */
    enum tk_status io;  /* first WAL failure of this operation, TK_OK if none */
    struct sc_thread_stats *stats;
    bool replaying;     /* recovery: apply, never log */
};

void journal_hold(struct op_ctx *ctx, const struct rec_hold *rec);
void journal_hold_end(struct op_ctx *ctx, const struct rec_hold_end *rec);
void journal_return(struct op_ctx *ctx, const struct rec_return *rec);
void journal_event_create(struct op_ctx *ctx, const struct sc_event_spec *spec);
void journal_event_state(struct op_ctx *ctx, const struct rec_event_state *rec);
/* A record already encoded by its module (the queue's). */
void journal_raw(struct op_ctx *ctx, uint16_t type, const void *payload, uint32_t len);

#endif
