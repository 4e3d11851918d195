/* engine_queue.c — the waiting room in the engine: the sc_queue_* API, the
 * queue's ticker step, its records, and admission tokens.
 *
 * The queue itself (queue.c) knows nothing of the WAL or the clock: it encodes a
 * record into a buffer we hand it, and we append it through the journal so the
 * caller waits for it like any other change. Admission tokens are signed here
 * with the engine's key (token.c) when a user's view says "admitted"; holds on a
 * queued event check them (engine_queue_check_token), and other services verify
 * them offline with the same key.
 *
 * An event without a waiting room admits everyone at once: a join answers
 * "admitted" with a token valid for the default admission TTL, and writes
 * nothing (there is no queue state to keep). */
#include <sodium.h>
#include <string.h>

#include "engine.h"
#include "queue.h"
#include "stats.h"

enum tk_status engine_queue_create(struct sc_engine *engine, struct sc_event *ev)
{
    TK_ASSERT(ev->spec.queue.enabled && ev->queue == NULL);
    if (engine->token_key.len == 0)
        return TK_ERR_INVALID; /* a waiting room needs a key to sign admissions */
    uint64_t seed;
    randombytes_buf(&seed, sizeof(seed)); /* the opening shuffle is logged with its seed */
    struct queue_config config = {.length_max = ev->spec.queue.length_max,
                                  .admit_per_s = ev->spec.queue.admit_per_s,
                                  .max_active = ev->spec.queue.max_active,
                                  .admission_ttl_ms = ev->spec.queue.admission_ttl_ms,
                                  .heartbeat_timeout_ms = ev->spec.queue.heartbeat_timeout_ms,
                                  .opens_at_ms = ev->spec.sale_opens_at_ms,
                                  .randomize_pre_open = ev->spec.queue.randomize_pre_open,
                                  .random_seed = seed};
    enum tk_status status = queue_create(&ev->queue, ev->event_id, &config);
    if (status == TK_OK)
        ev->memory_bytes += queue_memory_bytes(ev->queue);
    return status;
}

void engine_queue_destroy(struct sc_event *ev)
{
    if (ev == NULL || ev->queue == NULL)
        return;
    queue_destroy(ev->queue);
    ev->queue = NULL;
}

enum tk_status engine_queue_replay(struct sc_engine *engine, uint16_t type, const void *payload, uint32_t len)
{
    uint64_t event_id;
    if (queue_record_event_id(payload, len, &event_id) != TK_OK)
        return TK_ERR_CORRUPT;
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL || ev->queue == NULL)
        return TK_ERR_CORRUPT;
    return queue_replay(ev->queue, type, payload, len);
}

/* Caller holds snapshot_lock: a queue snapshot must not overlap a tick. */
uint64_t engine_queue_tick(struct sc_engine *engine, struct sc_event *ev, struct op_ctx *ctx)
{
    TK_ASSERT(ev->queue != NULL);
    (void)engine;
    uint8_t bytes[TK_QUEUE_TICK_RECORD_BYTES_MAX];
    struct tk_buf record;
    tk_buf_init(&record, bytes, sizeof(bytes));
    uint16_t type = 0;
    struct queue_stats before;
    queue_stats(ev->queue, &before);
    if (queue_tick(ev->queue, ctx->now_ms, &record, &type) != TK_OK || type == 0)
        return 0;
    uint64_t lsn_before = ctx->lsn;
    journal_raw(ctx, type, record.data, (uint32_t)record.len);
    struct queue_stats after;
    queue_stats(ev->queue, &after);
    stat_add(ctx->stats, STAT_QUEUE_ADMISSIONS, after.admissions - before.admissions);
    if (ctx->lsn != lsn_before)
        atomic_store_explicit(&ev->queue_tick_lsn, ctx->lsn, memory_order_release);
    return ctx->lsn;
}

static enum tk_status sign_admission(struct sc_engine *engine, uint64_t event_id, uint64_t user_id,
                                     uint64_t ticket, int64_t expires_ms, struct sc_queue_view *out)
{
    _Static_assert(SC_ADMISSION_TOKEN_BYTES_MAX >= TOKEN_TEXT_BYTES, "a token fits in the view");
    if (engine->token_key.len == 0)
        return TK_ERR_UNAVAILABLE; /* no key configured: cannot admit anybody */
    struct token_claims claims = {.event_id = event_id, .user_id = user_id, .ticket = ticket,
                                  .expires_ms = expires_ms};
    return token_sign(&engine->token_key, &claims, out->admission_token, sizeof(out->admission_token));
}

/* Turns the queue's view into the API's, signing a token for an admitted user. */
static enum tk_status view_out(struct sc_engine *engine, struct sc_event *ev, uint64_t user_id,
                               const struct queue_view *view, struct sc_queue_view *out)
{
    memset(out, 0, sizeof(*out));
    out->ticket = view->ticket;
    out->rank = view->rank;
    out->position = view->position;
    out->eta_s = view->eta_s;
    out->state = (enum sc_queue_state)view->state;
    out->admission_expires_ms = view->admission_expires_ms;
    if (view->state != QUEUE_STATE_ADMITTED)
        return TK_OK;
    return sign_admission(engine, ev->event_id, user_id, view->ticket, view->admission_expires_ms, out);
}

static enum tk_status admit_without_queue(struct sc_engine *engine, struct sc_event *ev, uint64_t user_id,
                                          int64_t now_ms, struct sc_queue_view *out)
{
    memset(out, 0, sizeof(*out));
    out->state = SC_QUEUE_ADMITTED;
    out->admission_expires_ms = now_ms + TK_ADMISSION_TTL_MS_DEFAULT;
    return sign_admission(engine, ev->event_id, user_id, 0, out->admission_expires_ms, out);
}

static enum tk_status queue_lookup(struct sc_engine *engine, uint64_t event_id, uint64_t user_id,
                                   struct sc_event **ev)
{
    if (user_id == 0 || user_id > TK_USER_ID_MAX)
        return TK_ERR_INVALID;
    *ev = engine_event(engine, event_id);
    if (*ev == NULL)
        return TK_ERR_NOT_FOUND;
    return TK_OK;
}

enum tk_status sc_queue_join(struct sc_engine *engine, uint64_t event_id, uint64_t user_id,
                             struct sc_queue_view *out, uint64_t *lsn)
{
    TK_ASSERT(out != NULL && lsn != NULL);
    *lsn = 0;
    struct sc_event *ev;
    enum tk_status status = sc_engine_health(engine) == TK_OK ? queue_lookup(engine, event_id, user_id, &ev)
                                                              : TK_ERR_UNAVAILABLE;
    if (status != TK_OK)
        return status;
    if (atomic_load_explicit(&ev->state, memory_order_acquire) != SC_EVENT_OPEN)
        return TK_ERR_EVENT_CLOSED;
    struct op_ctx ctx;
    engine_op_begin(engine, &ctx);
    if (ev->queue == NULL)
        return admit_without_queue(engine, ev, user_id, ctx.now_ms, out);
    uint64_t started = engine_latency_start();
    uint8_t bytes[TK_QUEUE_RECORD_BYTES_MAX];
    struct tk_buf record;
    tk_buf_init(&record, bytes, sizeof(bytes));
    uint16_t type = 0;
    struct queue_view view;
    status = queue_join(ev->queue, user_id, ctx.now_ms, &view, &record, &type);
    if (status == TK_OK && type != 0) {
        journal_raw(&ctx, type, record.data, (uint32_t)record.len);
        stat_add(ctx.stats, STAT_QUEUE_JOINS, 1);
    }
    if (status == TK_OK && view.state == QUEUE_STATE_ADMITTED) { /* a repeat join of an admitted user */
        uint64_t tick_lsn = atomic_load_explicit(&ev->queue_tick_lsn, memory_order_acquire);
        ctx.lsn = ctx.lsn > tick_lsn ? ctx.lsn : tick_lsn;
    }
    if (status == TK_OK)
        status = view_out(engine, ev, user_id, &view, out);
    engine_latency_end(ctx.stats, started);
    return engine_op_end(engine, &ctx, status, lsn);
}

enum tk_status sc_queue_status(struct sc_engine *engine, uint64_t event_id, uint64_t user_id,
                               struct sc_queue_view *out, uint64_t *lsn)
{
    TK_ASSERT(out != NULL && lsn != NULL);
    *lsn = 0;
    struct sc_event *ev;
    enum tk_status status = queue_lookup(engine, event_id, user_id, &ev);
    if (status != TK_OK)
        return status;
    int64_t now_ms = tk_clock_now_ms(engine->clock);
    if (ev->queue == NULL)
        return admit_without_queue(engine, ev, user_id, now_ms, out);
    struct queue_view view;
    status = queue_status(ev->queue, user_id, now_ms, &view);
    if (status != TK_OK)
        return status;
    if (view.state == QUEUE_STATE_ADMITTED)
        *lsn = atomic_load_explicit(&ev->queue_tick_lsn, memory_order_acquire);
    return view_out(engine, ev, user_id, &view, out);
}

enum tk_status sc_queue_heartbeat(struct sc_engine *engine, uint64_t event_id, uint64_t user_id)
{
    struct sc_event *ev;
    enum tk_status status = queue_lookup(engine, event_id, user_id, &ev);
    if (status != TK_OK || ev->queue == NULL)
        return status;
    return queue_heartbeat(ev->queue, user_id, tk_clock_now_ms(engine->clock));
}

enum tk_status sc_queue_leave(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, uint64_t *lsn)
{
    TK_ASSERT(lsn != NULL);
    *lsn = 0;
    struct sc_event *ev;
    enum tk_status status = sc_engine_health(engine) == TK_OK ? queue_lookup(engine, event_id, user_id, &ev)
                                                              : TK_ERR_UNAVAILABLE;
    if (status != TK_OK || ev->queue == NULL)
        return status;
    struct op_ctx ctx;
    engine_op_begin(engine, &ctx);
    uint8_t bytes[TK_QUEUE_RECORD_BYTES_MAX];
    struct tk_buf record;
    tk_buf_init(&record, bytes, sizeof(bytes));
    uint16_t type = 0;
    status = queue_leave(ev->queue, user_id, ctx.now_ms, &record, &type);
    if (status == TK_OK && type != 0) {
        journal_raw(&ctx, type, record.data, (uint32_t)record.len);
        stat_add(ctx.stats, STAT_QUEUE_LEAVES, 1);
    }
    return engine_op_end(engine, &ctx, status, lsn);
}

enum tk_status engine_queue_check_token(struct sc_engine *engine, struct sc_event *ev, uint64_t user_id,
                                        const char *token, size_t token_len, int64_t now_ms)
{
    TK_ASSERT(ev->queue != NULL);
    if (token == NULL || token_len == 0 || engine->token_key.len == 0)
        return TK_ERR_NOT_ADMITTED;
    struct token_claims claims;
    if (token_verify(&engine->token_key, token, token_len, now_ms, &claims, NULL) != TK_OK)
        return TK_ERR_NOT_ADMITTED;
    if (claims.event_id != ev->event_id || claims.user_id != user_id)
        return TK_ERR_NOT_ADMITTED; /* a token is for one user and one event */
    return TK_OK;
}

enum tk_status sc_queue_info(struct sc_engine *engine, uint64_t event_id, struct sc_queue_info *out)
{
    TK_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    if (ev->queue == NULL)
        return TK_ERR_INVALID; /* no waiting room */
    struct queue_stats stats;
    queue_stats(ev->queue, &stats);
    out->tickets = stats.tickets_issued;
    out->admissions = stats.admissions;
    out->waiting = stats.waiting;
    out->active = stats.active;
    out->head_rank = stats.head_rank;
    out->admission_rate_per_s = stats.admission_rate_per_s;
    out->ranks_final = stats.ranks_final;
    out->lsn = atomic_load_explicit(&ev->queue_tick_lsn, memory_order_acquire);
    return TK_OK;
}

enum tk_status sc_queue_admitted(struct sc_engine *engine, uint64_t event_id, uint32_t from_rank,
                                 struct sc_queue_admission *out, uint32_t max, uint32_t *count, uint32_t *next)
{
    TK_ASSERT(out != NULL && count != NULL && next != NULL);
    *count = 0;
    *next = from_rank;
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    if (ev->queue == NULL)
        return TK_ERR_INVALID;
    struct queue_stats stats;
    queue_stats(ev->queue, &stats);
    uint32_t rank = from_rank;
    /* Bounded: at most max admissions returned and TK_ADMISSIONS_PER_TICK_MAX ranks looked at. */
    for (uint32_t looked = 0; rank < stats.head_rank && *count < max && looked < TK_ADMISSIONS_PER_TICK_MAX;
         rank++, looked++) {
        uint64_t ticket;
        struct queue_ticket_info info;
        if (queue_rank_inspect(ev->queue, rank, &ticket, &info) != TK_OK || !info.was_admitted || info.user == 0)
            continue;
        out[(*count)++] = (struct sc_queue_admission){.user_id = info.user, .ticket = ticket, .rank = rank,
                                                      .admission_expires_ms = info.admission_expires_ms};
    }
    *next = rank;
    return TK_OK;
}

enum tk_status sc_queue_admission_token(struct sc_engine *engine, uint64_t event_id,
                                        const struct sc_queue_admission *admission, char *out, size_t out_len)
{
    TK_ASSERT(admission != NULL && out != NULL);
    if (engine->token_key.len == 0)
        return TK_ERR_UNAVAILABLE;
    struct token_claims claims = {.event_id = event_id, .user_id = admission->user_id, .ticket = admission->ticket,
                                  .expires_ms = admission->admission_expires_ms};
    return token_sign(&engine->token_key, &claims, out, out_len);
}
