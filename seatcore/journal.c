/* journal.c — encode an engine record and append it to the WAL (journal.h). */
#include "journal.h"

#include "tk_assert.h"
#include "wal.h"

void journal_raw(struct op_ctx *ctx, uint16_t type, const void *payload, uint32_t len)
{
    TK_ASSERT(ctx != NULL && !ctx->replaying);
    TK_ASSERT(type >= WAL_RECORD_TYPE_USER_MIN);
    if (ctx->wal == NULL)
        return;
    uint64_t end_lsn = 0;
    enum tk_status status = wal_append(ctx->wal, type, payload, len, &end_lsn);
    if (status != TK_OK) {
        /* The change is in memory but not in the log: the caller must not
         * acknowledge it, and the engine stops taking writes (see engine.c). */
        if (ctx->io == TK_OK)
            ctx->io = status;
        return;
    }
    TK_ASSERT(end_lsn > ctx->lsn || ctx->lsn == 0 || end_lsn != 0);
    if (end_lsn > ctx->lsn)
        ctx->lsn = end_lsn;
}

#define JOURNAL_ENCODE(ctx, type, encode, rec)                                                                         \
    do {                                                                                                               \
        if ((ctx)->wal == NULL)                                                                                        \
            return;                                                                                                    \
        uint8_t bytes[REC_PAYLOAD_BYTES_MAX];                                                                          \
        struct tk_buf buf;                                                                                             \
        tk_buf_init(&buf, bytes, sizeof(bytes));                                                                       \
        encode(&buf, rec);                                                                                             \
        TK_ASSERT(!buf.failed);                                                                                        \
        journal_raw(ctx, type, buf.data, (uint32_t)buf.len);                                                           \
    } while (0)

void journal_hold(struct op_ctx *ctx, const struct rec_hold *rec)
{
    JOURNAL_ENCODE(ctx, REC_HOLD, rec_encode_hold, rec);
}

void journal_hold_end(struct op_ctx *ctx, const struct rec_hold_end *rec)
{
    JOURNAL_ENCODE(ctx, REC_HOLD_END, rec_encode_hold_end, rec);
}

void journal_return(struct op_ctx *ctx, const struct rec_return *rec)
{
    JOURNAL_ENCODE(ctx, REC_RETURN, rec_encode_return, rec);
}

void journal_event_create(struct op_ctx *ctx, const struct sc_event_spec *spec)
{
    JOURNAL_ENCODE(ctx, REC_EVENT_CREATE, rec_encode_event_create, spec);
}

void journal_event_state(struct op_ctx *ctx, const struct rec_event_state *rec)
{
    JOURNAL_ENCODE(ctx, REC_EVENT_STATE, rec_encode_event_state, rec);
}
