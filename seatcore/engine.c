/* engine.c — the public API of seatcore (seatcore.h): validation, idempotency,
 * durability bookkeeping, background ticks and recovery.
 *
 * Every public operation has the same shape: check the engine is healthy, find
 * the event, validate the request as input from outside (never assert on it),
 * run the lock-free core (hold.c, best.c, the queue) with an op_ctx carrying the
 * time and the log, and hand back the LSN to wait for. If the WAL fails under an
 * operation the change is in memory but not durable: the operation answers
 * TK_ERR_IO and the engine refuses every later write (TK_ERR_UNAVAILABLE), since
 * memory and disk now disagree and only a restart (recovery) reconciles them.
 *
 * Recovery = newest valid snapshot + WAL replay from its LSN; records apply by
 * version (see record.h) and then derived state is rebuilt per event. */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "best.h"
#include "hold.h"
#include "queue.h"
#include "wal_io.h"

/* ---- logging ---- */

void engine_logf(struct sc_engine *engine, const char *level, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (engine->log != NULL) {
        engine->log(engine->log_ctx, level, message);
        return;
    }
    fprintf(stderr, "{\"level\":\"%s\",\"component\":\"seatcore\",\"msg\":\"%s\"}\n", level, message);
}

/* ---- operations ---- */

void engine_op_begin(struct sc_engine *engine, struct op_ctx *ctx)
{
    TK_ASSERT(engine != NULL && ctx != NULL);
    ctx->wal = engine->wal;
    ctx->now_ms = tk_clock_now_ms(engine->clock);
    ctx->lsn = 0;
    ctx->io = TK_OK;
    ctx->stats = stats_for_thread(&engine->stats);
    ctx->replaying = false;
}

enum tk_status engine_op_end(struct sc_engine *engine, struct op_ctx *ctx, enum tk_status status, uint64_t *lsn)
{
    TK_ASSERT(ctx != NULL && !ctx->replaying);
    if (ctx->io != TK_OK) {
        uint32_t healthy = TK_OK;
        if (atomic_compare_exchange_strong(&engine->health, &healthy, (uint32_t)ctx->io))
            engine_logf(engine, "error", "WAL append failed (%s): engine stops taking writes; restart to recover",
                        tk_status_name(ctx->io));
        status = TK_ERR_IO;
    }
    if (lsn != NULL)
        *lsn = status == TK_ERR_IO ? 0 : ctx->lsn;
    return status;
}

enum tk_status sc_engine_health(const struct sc_engine *engine);

static enum tk_status engine_writable(const struct sc_engine *engine)
{
    return sc_engine_health(engine) == TK_OK ? TK_OK : TK_ERR_UNAVAILABLE;
}

/* Latency is sampled on one operation in 16 per thread: two clock reads per
 * operation cost a fifth of a hold+release, and the distribution needs far fewer
 * samples than that. Returns 0 when this operation is not sampled. */
uint64_t engine_latency_start(void)
{
    static _Thread_local uint32_t tick;
    return (++tick & 15u) == 0 ? tk_monotonic_ns() : 0;
}

void engine_latency_end(struct sc_thread_stats *stats, uint64_t started_ns)
{
    if (started_ns != 0 && stats != NULL)
        tk_histogram_record(&stats->op_latency_ns, tk_monotonic_ns() - started_ns);
}

static void op_latency(struct op_ctx *ctx, uint64_t started_ns)
{
    engine_latency_end(ctx->stats, started_ns);
}

/* ---- event table ---- */

struct sc_event *engine_event(struct sc_engine *engine, uint64_t event_id)
{
    if (event_id == 0)
        return NULL;
    uint32_t h = (uint32_t)tk_hash_u64(event_id) & engine->event_ids_mask;
    for (uint32_t probe = 0; probe <= engine->event_ids_mask; probe++, h = (h + 1) & engine->event_ids_mask) {
        uint64_t id = atomic_load_explicit(&engine->event_ids[h], memory_order_acquire);
        if (id == 0)
            return NULL;
        if (id == event_id) {
            uint32_t slot = atomic_load_explicit(&engine->event_slots[h], memory_order_acquire);
            if (slot == 0)
                return NULL; /* being created right now */
            TK_ASSERT(slot <= engine->events_max);
            return engine->events[slot - 1];
        }
    }
    return NULL;
}

/* Caller holds create_lock (or is recovery, single-threaded). */
enum tk_status engine_event_register(struct sc_engine *engine, struct sc_event *ev)
{
    TK_ASSERT(ev != NULL && ev->event_id != 0);
    uint32_t count = atomic_load_explicit(&engine->event_count, memory_order_relaxed);
    if (engine_event(engine, ev->event_id) != NULL)
        return TK_ERR_EXISTS;
    if (count >= engine->events_max)
        return TK_ERR_FULL;
    uint32_t h = (uint32_t)tk_hash_u64(ev->event_id) & engine->event_ids_mask;
    while (atomic_load_explicit(&engine->event_ids[h], memory_order_relaxed) != 0)
        h = (h + 1) & engine->event_ids_mask; /* the table is twice events_max: there is room */
    ev->index = count;
    engine->events[count] = ev;
    atomic_store_explicit(&engine->event_ids[h], ev->event_id, memory_order_release);
    atomic_store_explicit(&engine->event_slots[h], count + 1, memory_order_release);
    atomic_store_explicit(&engine->event_count, count + 1, memory_order_release);
    return TK_OK;
}

enum tk_status sc_event_spec_check(const struct sc_event_spec *spec, const char **why)
{
    TK_ASSERT(spec != NULL && why != NULL);
    return event_spec_validate(spec, why);
}

enum tk_status sc_event_create(struct sc_engine *engine, const struct sc_event_spec *spec, uint64_t *lsn)
{
    TK_ASSERT(engine != NULL && spec != NULL);
    const char *why;
    enum tk_status status = engine_writable(engine);
    if (status != TK_OK)
        return status;
    status = event_spec_validate(spec, &why);
    if (status != TK_OK)
        return status;
    struct op_ctx ctx;
    engine_op_begin(engine, &ctx);
    pthread_mutex_lock(&engine->create_lock);
    struct sc_event *ev = NULL;
    if (engine_event(engine, spec->event_id) != NULL) {
        status = TK_ERR_EXISTS;
    } else if (atomic_load(&engine->event_count) >= engine->events_max) {
        status = TK_ERR_FULL;
    } else {
        status = event_alloc(&ev, spec);
        if (status == TK_OK && ev->spec.queue.enabled)
            status = engine_queue_create(engine, ev);
        if (status == TK_OK) {
            journal_event_create(&ctx, &ev->spec);
            status = engine_event_register(engine, ev);
            TK_ASSERT(status == TK_OK);
        } else if (ev != NULL) {
            engine_queue_destroy(ev);
            event_free(ev);
        }
    }
    pthread_mutex_unlock(&engine->create_lock);
    return engine_op_end(engine, &ctx, status, lsn);
}

static enum tk_status event_set_state(struct sc_engine *engine, uint64_t event_id, enum sc_event_state to,
                                      uint64_t *lsn)
{
    enum tk_status status = engine_writable(engine);
    if (status != TK_OK)
        return status;
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    struct op_ctx ctx;
    engine_op_begin(engine, &ctx);
    uint32_t state = atomic_load(&ev->state);
    for (;;) {
        if (state == SC_EVENT_CANCELLED || (state == SC_EVENT_CLOSED && to == SC_EVENT_CLOSED))
            return state == to ? engine_op_end(engine, &ctx, TK_OK, lsn) : TK_ERR_EVENT_CLOSED;
        if (atomic_compare_exchange_weak(&ev->state, &state, (uint32_t)to))
            break;
    }
    struct rec_event_state rec = {.event_id = event_id, .state = to};
    journal_event_state(&ctx, &rec);
    return engine_op_end(engine, &ctx, TK_OK, lsn);
}

enum tk_status sc_event_close(struct sc_engine *engine, uint64_t event_id, uint64_t *lsn)
{
    return event_set_state(engine, event_id, SC_EVENT_CLOSED, lsn);
}

enum tk_status sc_event_cancel(struct sc_engine *engine, uint64_t event_id, uint64_t *lsn)
{
    return event_set_state(engine, event_id, SC_EVENT_CANCELLED, lsn);
}

enum tk_status sc_event_get(struct sc_engine *engine, uint64_t event_id, struct sc_event_info *out)
{
    TK_ASSERT(out != NULL);
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    uint64_t counts = atomic_load_explicit(&ev->counts, memory_order_acquire);
    out->event_id = event_id;
    out->state = (enum sc_event_state)atomic_load(&ev->state);
    out->version = atomic_load_explicit(&ev->version, memory_order_acquire);
    out->counts.capacity = ev->capacity;
    out->counts.held = (uint32_t)(counts >> 32);
    out->counts.sold = (uint32_t)counts;
    TK_ASSERT(out->counts.held + (uint64_t)out->counts.sold <= ev->capacity); /* invariant 5 */
    out->counts.free = ev->capacity - out->counts.held - out->counts.sold;
    out->active_holds = atomic_load_explicit(&ev->active_holds, memory_order_relaxed);
    return TK_OK;
}

enum tk_status sc_event_spec_get(struct sc_engine *engine, uint64_t event_id, struct sc_event_spec *out)
{
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    *out = ev->spec;
    return TK_OK;
}

uint32_t sc_event_list(struct sc_engine *engine, uint64_t *ids, uint32_t max)
{
    uint32_t count = atomic_load_explicit(&engine->event_count, memory_order_acquire);
    TK_ASSERT(count <= engine->events_max);
    for (uint32_t i = 0; i < count && i < max; i++)
        ids[i] = engine->events[i]->event_id;
    return count;
}

/* ---- holds ---- */

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t hold_request_hash(const struct sc_hold_request *request, const uint32_t *sorted)
{
    uint64_t h = tk_hash_u64(request->event_id ^ 0x686f6c64u);
    h = tk_hash_u64(h ^ request->user_id);
    if (request->seat_count > 0) {
        for (uint32_t i = 0; i < request->seat_count; i++)
            h = tk_hash_u64(h ^ sorted[i]);
    } else {
        h = tk_hash_u64(h ^ ((uint64_t)request->best_count << 32) ^ (uint32_t)request->best_section ^ 0xbe57u);
    }
    return h;
}

/* Validates a hold request from outside; sorted gets the explicit seats sorted. */
static enum tk_status hold_validate(const struct sc_event *ev, const struct sc_hold_request *request,
                                    uint32_t *sorted)
{
    if (request->user_id == 0 || request->user_id > TK_USER_ID_MAX)
        return TK_ERR_INVALID;
    if (request->seat_count > 0) {
        if (request->seat_count > TK_SEATS_PER_HOLD_MAX || request->best_count != 0)
            return TK_ERR_INVALID;
        memcpy(sorted, request->seats, request->seat_count * sizeof(sorted[0]));
        qsort(sorted, request->seat_count, sizeof(sorted[0]), compare_u32);
        for (uint32_t i = 0; i < request->seat_count; i++)
            if (sorted[i] >= ev->capacity || (i > 0 && sorted[i] == sorted[i - 1]))
                return TK_ERR_INVALID;
        return TK_OK;
    }
    if (request->best_count == 0 || request->best_count > TK_SEATS_PER_HOLD_MAX)
        return TK_ERR_INVALID;
    if (request->best_section < -1 || request->best_section >= (int32_t)ev->spec.section_count)
        return TK_ERR_INVALID;
    return TK_OK;
}

static enum tk_status hold_admissible(struct sc_engine *engine, struct sc_event *ev,
                                      const struct sc_hold_request *request, int64_t now_ms)
{
    if (atomic_load_explicit(&ev->state, memory_order_acquire) != SC_EVENT_OPEN)
        return TK_ERR_EVENT_CLOSED;
    if (now_ms < ev->spec.sale_opens_at_ms)
        return TK_ERR_EVENT_CLOSED;
    if (ev->queue != NULL)
        return engine_queue_check_token(engine, ev, request->user_id, request->admission_token,
                                        request->admission_token_len, now_ms);
    return TK_OK;
}

static enum tk_status hold_run(struct op_ctx *ctx, struct sc_event *ev, const struct sc_hold_request *request,
                               const uint32_t *sorted, uint64_t scoped_key, uint64_t request_hash,
                               struct sc_hold_result *result)
{
    if (request->seat_count > 0)
        return hold_seats(ctx, ev, request->user_id, sorted, request->seat_count, scoped_key, request_hash, result);
    enum tk_status status = TK_ERR_SEAT_CONFLICT;
    for (uint32_t attempt = 0; attempt < TK_BEST_AVAILABLE_ATTEMPTS_MAX && status == TK_ERR_SEAT_CONFLICT;
         attempt++) {
        uint32_t seats[TK_SEATS_PER_HOLD_MAX];
        status = best_choose(ev, request->best_count, request->best_section, seats);
        if (status != TK_OK)
            return status;
        status = hold_seats(ctx, ev, request->user_id, seats, request->best_count, scoped_key, request_hash, result);
    }
    if (status == TK_ERR_SEAT_CONFLICT)
        result->unavailable_count = 0; /* lost every race: nothing specific to list */
    return status;
}

/* Fills a replayed answer: the stored status and, while the hold lives, its details. */
static enum tk_status hold_replayed(struct sc_event *ev, const struct idem_answer *answer,
                                    const struct sc_hold_request *request, const uint32_t *sorted,
                                    struct sc_hold_result *result)
{
    result->replayed = true;
    result->hold_id = answer->hold_id;
    if (answer->status == TK_OK) {
        struct sc_hold_info info;
        if (hold_get(ev, answer->hold_id, &info) == TK_OK) {
            result->expires_at_ms = info.expires_at_ms;
            result->seat_count = info.seat_count;
            memcpy(result->seats, info.seats, sizeof(info.seats));
            for (uint32_t i = 0; i < info.seat_count; i++)
                result->amount_cents += event_price_of(ev, info.seats[i]);
        }
    } else if (answer->status == TK_ERR_SEAT_CONFLICT) {
        for (uint32_t i = 0; i < request->seat_count; i++) {
            uint64_t w = atomic_load_explicit(&ev->seats[sorted[i]], memory_order_relaxed);
            if (seat_word_state(w) != SC_SEAT_FREE)
                result->unavailable[result->unavailable_count++] = sorted[i];
        }
    }
    return answer->status;
}

static bool idem_final(enum tk_status status)
{
    return status == TK_OK || status == TK_ERR_SEAT_CONFLICT || status == TK_ERR_SOLD_OUT ||
           status == TK_ERR_CAP_REACHED;
}

static enum tk_status idem_outcome_status(enum idem_outcome outcome)
{
    switch (outcome) {
    case IDEM_MISMATCH:
        return TK_ERR_IDEMPOTENCY_MISMATCH;
    case IDEM_BUSY:
        return TK_ERR_BUSY;
    case IDEM_FULL:
        return TK_ERR_FULL;
    default:
        TK_UNREACHABLE();
    }
}

enum tk_status sc_hold(struct sc_engine *engine, const struct sc_hold_request *request,
                       struct sc_hold_result *result, uint64_t *lsn)
{
    TK_ASSERT(engine != NULL && request != NULL && result != NULL);
    uint64_t started = engine_latency_start();
    memset(result, 0, sizeof(*result));
    if (lsn != NULL)
        *lsn = 0;
    enum tk_status status = engine_writable(engine);
    if (status != TK_OK)
        return status;
    struct sc_event *ev = engine_event(engine, request->event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    uint32_t sorted[TK_SEATS_PER_HOLD_MAX];
    status = hold_validate(ev, request, sorted);
    if (status != TK_OK)
        return status;
    struct op_ctx ctx;
    engine_op_begin(engine, &ctx);
    status = hold_admissible(engine, ev, request, ctx.now_ms);
    if (status != TK_OK)
        return engine_op_end(engine, &ctx, status, lsn);
    uint64_t scoped_key = 0, request_hash = hold_request_hash(request, sorted);
    uint32_t entry = 0;
    if (request->idempotency_key != 0) {
        scoped_key = idem_key_scope(request->event_id, request->user_id, IDEM_HOLD, request->idempotency_key);
        struct idem_answer found;
        enum idem_outcome outcome = idem_begin(engine->idem, scoped_key, request_hash, ctx.now_ms, &found, &entry);
        if (outcome == IDEM_FOUND) {
            stat_add(ctx.stats, STAT_IDEMPOTENT_REPLAYS, 1);
            ctx.lsn = found.lsn;
            return engine_op_end(engine, &ctx, hold_replayed(ev, &found, request, sorted, result), lsn);
        }
        if (outcome != IDEM_CLAIMED)
            return engine_op_end(engine, &ctx, idem_outcome_status(outcome), lsn);
    }
    status = hold_run(&ctx, ev, request, sorted, scoped_key, request_hash, result);
    stat_add(ctx.stats, status == TK_OK ? STAT_HOLDS : STAT_HOLD_CONFLICTS, 1);
    status = engine_op_end(engine, &ctx, status, lsn);
    if (scoped_key != 0) {
        struct idem_answer answer = {.status = status, .hold_id = result->hold_id, .lsn = ctx.lsn};
        if (idem_final(status))
            idem_finish(engine->idem, entry, scoped_key, &answer, ctx.now_ms);
        else
            idem_abandon(engine->idem, entry, scoped_key);
    }
    op_latency(&ctx, started);
    return status;
}

static enum tk_status end_request(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, uint64_t hold_id,
                                  enum rec_end_kind kind, uint64_t idempotency_key, struct sc_hold_result *result,
                                  uint64_t *lsn)
{
    uint64_t started = engine_latency_start();
    memset(result, 0, sizeof(*result));
    if (lsn != NULL)
        *lsn = 0;
    enum tk_status status = engine_writable(engine);
    if (status != TK_OK)
        return status;
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    if (user_id == 0 || user_id > TK_USER_ID_MAX)
        return TK_ERR_INVALID;
    if (kind == REC_END_CONFIRMED && atomic_load(&ev->state) == SC_EVENT_CANCELLED)
        return TK_ERR_EVENT_CLOSED;
    struct op_ctx ctx;
    engine_op_begin(engine, &ctx);
    uint64_t scoped_key = 0, request_hash = tk_hash_u64(hold_id ^ ((uint64_t)kind << 60));
    uint32_t entry = 0;
    if (idempotency_key != 0) {
        enum idem_kind idem = kind == REC_END_CONFIRMED ? IDEM_CONFIRM : IDEM_HOLD;
        scoped_key = idem_key_scope(event_id, user_id, idem, idempotency_key ^ 0xe7d);
        struct idem_answer found;
        enum idem_outcome outcome = idem_begin(engine->idem, scoped_key, request_hash, ctx.now_ms, &found, &entry);
        if (outcome == IDEM_FOUND) {
            stat_add(ctx.stats, STAT_IDEMPOTENT_REPLAYS, 1);
            result->replayed = true;
            result->hold_id = found.hold_id;
            ctx.lsn = found.lsn;
            return engine_op_end(engine, &ctx, found.status, lsn);
        }
        if (outcome != IDEM_CLAIMED)
            return engine_op_end(engine, &ctx, idem_outcome_status(outcome), lsn);
    }
    status = hold_end(&ctx, ev, user_id, hold_id, kind, scoped_key, request_hash, result);
    if (status == TK_OK)
        stat_add(ctx.stats, kind == REC_END_CONFIRMED ? STAT_CONFIRMS : STAT_RELEASES, 1);
    status = engine_op_end(engine, &ctx, status, lsn);
    if (scoped_key != 0) {
        struct idem_answer answer = {.status = status, .hold_id = hold_id, .lsn = ctx.lsn};
        bool final = status == TK_OK || status == TK_ERR_HOLD_EXPIRED || status == TK_ERR_NOT_OWNER;
        if (final)
            idem_finish(engine->idem, entry, scoped_key, &answer, ctx.now_ms);
        else
            idem_abandon(engine->idem, entry, scoped_key);
    }
    op_latency(&ctx, started);
    return status;
}

enum tk_status sc_release(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, uint64_t hold_id,
                          uint64_t *lsn)
{
    struct sc_hold_result result;
    return end_request(engine, event_id, user_id, hold_id, REC_END_RELEASED, 0, &result, lsn);
}

enum tk_status sc_confirm(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, uint64_t hold_id,
                          uint64_t idempotency_key, struct sc_hold_result *result, uint64_t *lsn)
{
    struct sc_hold_result local;
    return end_request(engine, event_id, user_id, hold_id, REC_END_CONFIRMED, idempotency_key,
                       result != NULL ? result : &local, lsn);
}

enum tk_status sc_return_seat(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, uint32_t seat_id,
                              uint64_t *lsn)
{
    if (lsn != NULL)
        *lsn = 0;
    enum tk_status status = engine_writable(engine);
    if (status != TK_OK)
        return status;
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    if (user_id == 0 || user_id > TK_USER_ID_MAX || seat_id >= ev->capacity)
        return TK_ERR_INVALID;
    struct op_ctx ctx;
    engine_op_begin(engine, &ctx);
    status = hold_return_seat(&ctx, ev, user_id, seat_id);
    if (status == TK_OK)
        stat_add(ctx.stats, STAT_RETURNS, 1);
    return engine_op_end(engine, &ctx, status, lsn);
}

enum tk_status sc_hold_get(struct sc_engine *engine, uint64_t event_id, uint64_t hold_id, struct sc_hold_info *out)
{
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    return hold_get(ev, hold_id, out);
}

enum tk_status sc_seat_hold_get(struct sc_engine *engine, uint64_t event_id, uint32_t seat_id,
                                struct sc_hold_info *out)
{
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    if (seat_id >= ev->capacity)
        return TK_ERR_INVALID;
    uint64_t w = atomic_load_explicit(&ev->seats[seat_id], memory_order_acquire);
    if (seat_word_state(w) != SC_SEAT_HELD || seat_word_ref(w) >= ev->holds_max)
        return TK_ERR_NOT_FOUND;
    uint32_t slot = seat_word_ref(w);
    uint64_t slot_w = atomic_load_explicit(&ev->slots[slot].word, memory_order_acquire);
    enum tk_status status = hold_get(ev, hold_id_make(slot, slot_word_gen(slot_w)), out);
    if (status != TK_OK || atomic_load_explicit(&ev->seats[seat_id], memory_order_acquire) != w)
        return TK_ERR_NOT_FOUND; /* the hold ended (or is being claimed) while we looked */
    return TK_OK;
}

enum tk_status sc_seat_get(struct sc_engine *engine, uint64_t event_id, uint32_t seat_id, enum sc_seat_state *state,
                           uint64_t *user_id)
{
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    if (seat_id >= ev->capacity)
        return TK_ERR_INVALID;
    for (uint32_t attempt = 0; attempt < 16; attempt++) {
        uint64_t w = atomic_load_explicit(&ev->seats[seat_id], memory_order_acquire);
        *state = seat_word_state(w) == SEAT_LOCKED ? SC_SEAT_SOLD : seat_word_state(w);
        *user_id = 0;
        if (*state == SC_SEAT_SOLD)
            *user_id = user_word_id(atomic_load(&ev->users[seat_word_ref(w)]));
        else if (*state == SC_SEAT_HELD && seat_word_ref(w) < ev->holds_max)
            *user_id = user_word_id(atomic_load(&ev->slots[seat_word_ref(w)].owner));
        if (atomic_load_explicit(&ev->seats[seat_id], memory_order_acquire) == w)
            return TK_OK;
    }
    return TK_ERR_BUSY;
}

enum tk_status sc_availability_copy(struct sc_engine *engine, uint64_t event_id, uint8_t *states,
                                    size_t states_len, uint64_t *version, struct sc_counts *counts)
{
    struct sc_event *ev = engine_event(engine, event_id);
    if (ev == NULL)
        return TK_ERR_NOT_FOUND;
    if (states_len < (ev->capacity + 3u) / 4u)
        return TK_ERR_INVALID;
    *version = atomic_load_explicit(&ev->version, memory_order_acquire);
    memset(states, 0, (ev->capacity + 3u) / 4u);
    struct sc_counts c = {.capacity = ev->capacity};
    for (uint32_t seat = 0; seat < ev->capacity; seat++) {
        enum sc_seat_state state = seat_word_state(atomic_load_explicit(&ev->seats[seat], memory_order_acquire));
        if (state == SEAT_LOCKED)
            state = SC_SEAT_SOLD; /* being returned: sold until the return is done */
        states[seat >> 2] |= (uint8_t)(state << ((seat & 3u) * 2u));
        c.free += state == SC_SEAT_FREE;
        c.held += state == SC_SEAT_HELD;
        c.sold += state == SC_SEAT_SOLD;
    }
    TK_ASSERT(c.free + c.held + c.sold == c.capacity); /* invariant 5, by construction */
    if (counts != NULL)
        *counts = c;
    return TK_OK;
}

/* ---- durability ---- */

bool sc_engine_when_durable(struct sc_engine *engine, uint64_t lsn, sc_done_fn fn, void *ctx)
{
    TK_ASSERT(fn != NULL);
    if (engine->wal == NULL || lsn == 0)
        return true;
    return wal_when_durable(engine->wal, lsn, fn, ctx);
}

enum tk_status sc_engine_wait_durable(struct sc_engine *engine, uint64_t lsn)
{
    if (engine->wal == NULL || lsn == 0)
        return TK_OK;
    return wal_wait_durable(engine->wal, lsn);
}

enum tk_status sc_engine_health(const struct sc_engine *engine)
{
    enum tk_status status = (enum tk_status)atomic_load_explicit(&engine->health, memory_order_acquire);
    if (status == TK_OK && engine->wal != NULL)
        status = wal_health(engine->wal); /* the writer thread saw the disk fail */
    return status;
}

/* ---- background work ---- */

uint64_t sc_engine_tick(struct sc_engine *engine)
{
    TK_ASSERT(engine != NULL);
    if (engine_writable(engine) != TK_OK)
        return 0;
    struct op_ctx ctx;
    engine_op_begin(engine, &ctx);
    uint32_t count = atomic_load_explicit(&engine->event_count, memory_order_acquire);
    for (uint32_t i = 0; i < count; i++) {
        struct sc_event *ev = engine->events[i];
        /* A tenth of the slots per tick: at 10 ticks a second every hold is looked
         * at within a second of its expiry (invariant 3). */
        uint32_t budget = ev->holds_max / 10 + 1024;
        if (budget > TK_SWEEP_SLOTS_PER_TICK_MAX)
            budget = TK_SWEEP_SLOTS_PER_TICK_MAX;
        hold_sweep(&ctx, ev, budget);
        if (ev->queue != NULL) {
            pthread_mutex_lock(&engine->snapshot_lock); /* a queue snapshot must not overlap its tick */
            engine_queue_tick(engine, ev, &ctx);
            pthread_mutex_unlock(&engine->snapshot_lock);
        }
    }
    idem_sweep(engine->idem, ctx.now_ms, 4096);
    uint64_t lsn = 0;
    engine_op_end(engine, &ctx, TK_OK, &lsn);
    if (engine->wal != NULL && engine->snapshot_every_bytes != 0 &&
        wal_reserved_lsn(engine->wal) - engine->snapshot_lsn >= engine->snapshot_every_bytes) {
        enum tk_status status = sc_engine_snapshot(engine);
        if (status != TK_OK)
            engine_logf(engine, "warn", "snapshot failed: %s", tk_status_message(status));
    }
    return lsn;
}

enum tk_status sc_engine_snapshot(struct sc_engine *engine)
{
    if (engine->wal == NULL)
        return TK_OK;
    pthread_mutex_lock(&engine->snapshot_lock);
    enum tk_status status = snapshot_write(engine);
    pthread_mutex_unlock(&engine->snapshot_lock);
    if (status == TK_OK)
        atomic_fetch_add(&engine->snapshots, 1);
    return status;
}

/* ---- metrics ---- */

void sc_engine_metrics(struct sc_engine *engine, struct sc_metrics *out)
{
    static _Thread_local struct tk_histogram latency; /* the caller reads it before its next call */
    memset(out, 0, sizeof(*out));
    tk_histogram_reset(&latency);
    uint64_t counters[STAT_COUNT];
    stats_sum(&engine->stats, counters, &latency);
    out->holds = counters[STAT_HOLDS];
    out->hold_conflicts = counters[STAT_HOLD_CONFLICTS];
    out->confirms = counters[STAT_CONFIRMS];
    out->releases = counters[STAT_RELEASES];
    out->expirations = counters[STAT_EXPIRATIONS];
    out->returns = counters[STAT_RETURNS];
    out->idempotent_replays = counters[STAT_IDEMPOTENT_REPLAYS];
    out->queue_joins = counters[STAT_QUEUE_JOINS];
    out->queue_admissions = counters[STAT_QUEUE_ADMISSIONS];
    out->queue_leaves = counters[STAT_QUEUE_LEAVES];
    out->snapshots = atomic_load(&engine->snapshots);
    out->events = atomic_load(&engine->event_count);
    out->op_latency_ns = &latency;
    if (engine->wal != NULL) {
        struct wal_stats ws;
        wal_stats_get(engine->wal, &ws);
        out->wal_records = ws.records;
        out->wal_bytes = ws.bytes;
        out->wal_batches = ws.batches;
        out->wal_fsync_ns = ws.fsync_ns;
    }
}

uint64_t sc_engine_memory_bytes(const struct sc_engine *engine)
{
    uint64_t total = idem_memory_bytes(engine->idem) + (uint64_t)engine->events_max * sizeof(engine->events[0]) +
                     ((uint64_t)engine->event_ids_mask + 1) * (sizeof(uint64_t) + sizeof(uint32_t));
    uint32_t count = atomic_load(&engine->event_count);
    for (uint32_t i = 0; i < count; i++)
        total += engine->events[i]->memory_bytes;
    return total;
}
