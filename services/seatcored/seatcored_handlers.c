/* seatcored_handlers.c — tiketi.v1.SeatCore on the engine.
 *
 * Each handler decodes (already done by the rpc layer into the call's arena),
 * checks what the engine does not (sizes of repeated fields, idempotency key
 * length, shard ownership), calls the engine, builds the reply in the arena and
 * answers once the engine's change is durable: at once if nothing was written or
 * it is already durable, else after the WAL's callback. That callback runs on the
 * WAL writer thread, so the reply is packed before (on the completion-queue
 * thread) and the callback only queues the call for the rpc server's reply thread:
 * answering ~10 calls per group commit on the writer itself (pack, start batch,
 * socket write) delayed the next fdatasync by ~0.6 ms at peak. A batch runs its
 * operations in order and answers once, after the largest LSN of them all. */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "rpc_client.h"
#include "rpc_log.h"
#include "seatcored.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "tk_assert.h"
#include "tk_codec.h"

/* ---- answering after durability ---- */

/* On the WAL writer thread: it only hands the call over (the reply was packed by the
 * handler), so the writer can start the next group commit at once. */
static void on_durable(void *ctx, enum tk_status status)
{
    struct rpc_call *call = ctx;
    if (status == TK_OK)
        rpc_reply_prepared_async(call);
    else
        rpc_fail_status(call, TK_ERR_IO, "the change could not be made durable; it was not acknowledged");
}

static void reply_when_durable(struct seatcored *daemon, struct rpc_call *call, uint64_t lsn,
                               const ProtobufCMessage *reply)
{
    TK_ASSERT(reply != NULL);
    if (lsn == 0) {
        rpc_reply(call, reply);
        return;
    }
    /* The reply is final now: pack it here, on the completion-queue thread, not on the
     * writer thread that learns it is durable. */
    rpc_reply_prepare(call, reply);
    if (sc_engine_when_durable(daemon->engine, lsn, on_durable, call))
        rpc_reply_prepared(call);
}

static void fail(struct rpc_call *call, enum tk_status status, const char *message, const uint32_t *unavailable,
                 uint32_t unavailable_count)
{
    struct rpc_error error;
    rpc_error_from_status(&error, status, message, unavailable, unavailable_count);
    rpc_fail(call, &error);
}

/* ---- conversions ---- */

static bool idempotency_key(const char *key, uint64_t *out)
{
    *out = 0;
    if (key == NULL || key[0] == '\0')
        return true;
    size_t len = strnlen(key, SEATCORED_IDEMPOTENCY_KEY_BYTES_MAX + 1);
    if (len > SEATCORED_IDEMPOTENCY_KEY_BYTES_MAX)
        return false;
    *out = XXH3_64bits(key, len);
    if (*out == 0)
        *out = 1;
    return true;
}

static Tiketi__V1__Section **sections_out(struct rpc_arena *arena, const struct sc_event_spec *spec)
{
    Tiketi__V1__Section **list = rpc_arena_alloc(arena, spec->section_count * sizeof(*list));
    Tiketi__V1__Section *items = rpc_arena_alloc(arena, spec->section_count * sizeof(*items));
    if (list == NULL || items == NULL)
        return NULL;
    for (uint32_t s = 0; s < spec->section_count; s++) {
        tiketi__v1__section__init(&items[s]);
        items[s].name = rpc_arena_strdup(arena, spec->sections[s].name);
        if (items[s].name == NULL)
            return NULL;
        items[s].rows = spec->sections[s].rows;
        items[s].seats_per_row = spec->sections[s].seats_per_row;
        items[s].price_cents = spec->sections[s].price_cents;
        list[s] = &items[s];
    }
    return list;
}

/* Builds an EventInfo in the arena; NULL only if the arena is exhausted. */
static Tiketi__V1__EventInfo *event_info_out(struct seatcored *daemon, struct rpc_arena *arena, uint64_t event_id,
                                             enum tk_status *status)
{
    struct sc_event_info info;
    struct sc_event_spec spec_copy; /* on the stack: only what the reply needs goes to the arena */
    struct sc_event_spec *spec = &spec_copy;
    Tiketi__V1__EventInfo *out = rpc_arena_alloc(arena, sizeof(*out));
    Tiketi__V1__QueueSettings *queue = rpc_arena_alloc(arena, sizeof(*queue));
    if (out == NULL || queue == NULL) {
        *status = TK_ERR_FULL;
        return NULL;
    }
    *status = sc_event_get(daemon->engine, event_id, &info);
    if (*status == TK_OK)
        *status = sc_event_spec_get(daemon->engine, event_id, spec);
    if (*status != TK_OK)
        return NULL;
    tiketi__v1__event_info__init(out);
    out->event_id = event_id;
    out->state = (Tiketi__V1__EventState)info.state;
    out->version = info.version;
    out->capacity = info.counts.capacity;
    out->free = info.counts.free;
    out->held = info.counts.held;
    out->sold = info.counts.sold;
    out->active_holds = info.active_holds;
    out->n_sections = spec->section_count;
    out->sections = sections_out(arena, spec);
    out->hold_ttl_ms = spec->hold_ttl_ms;
    out->max_seats_per_user = spec->max_seats_per_user;
    out->sale_opens_at_ms = spec->sale_opens_at_ms;
    tiketi__v1__queue_settings__init(queue);
    queue->enabled = spec->queue.enabled;
    queue->admit_per_s = spec->queue.admit_per_s;
    queue->max_active = spec->queue.max_active;
    queue->length_max = spec->queue.length_max;
    queue->admission_ttl_ms = spec->queue.admission_ttl_ms;
    queue->heartbeat_timeout_ms = spec->queue.heartbeat_timeout_ms;
    queue->randomize_pre_open = spec->queue.randomize_pre_open;
    out->queue = queue;
    return out->sections != NULL || spec->section_count == 0 ? out : NULL;
}

static enum tk_status spec_in(const Tiketi__V1__CreateEventRequest *req, struct sc_event_spec *spec,
                              const char **why)
{
    memset(spec, 0, sizeof(*spec));
    if (req->n_sections == 0 || req->n_sections > TK_SECTIONS_PER_EVENT_MAX) {
        *why = "an event needs 1..64 sections";
        return TK_ERR_INVALID;
    }
    spec->event_id = req->event_id;
    spec->section_count = (uint32_t)req->n_sections;
    for (size_t s = 0; s < req->n_sections; s++) {
        const Tiketi__V1__Section *in = req->sections[s];
        if (strlen(in->name) >= sizeof(spec->sections[s].name)) {
            *why = "a section name is at most 31 bytes";
            return TK_ERR_INVALID;
        }
        snprintf(spec->sections[s].name, sizeof(spec->sections[s].name), "%s", in->name);
        spec->sections[s].rows = in->rows;
        spec->sections[s].seats_per_row = in->seats_per_row;
        spec->sections[s].price_cents = in->price_cents;
    }
    spec->hold_ttl_ms = req->hold_ttl_ms;
    spec->max_seats_per_user = req->max_seats_per_user;
    spec->sale_opens_at_ms = req->sale_opens_at_ms;
    spec->holds_max = req->holds_max;
    spec->users_max = req->users_max;
    if (req->queue != NULL) {
        spec->queue = (struct sc_queue_spec){.enabled = req->queue->enabled, .admit_per_s = req->queue->admit_per_s,
                                             .max_active = req->queue->max_active,
                                             .length_max = req->queue->length_max,
                                             .admission_ttl_ms = req->queue->admission_ttl_ms,
                                             .heartbeat_timeout_ms = req->queue->heartbeat_timeout_ms,
                                             .randomize_pre_open = req->queue->randomize_pre_open};
    }
    return sc_event_spec_check(spec, why);
}

static Tiketi__V1__HoldReply *hold_reply_out(struct rpc_arena *arena, const struct sc_hold_result *result,
                                             uint64_t user_id)
{
    Tiketi__V1__HoldReply *reply = rpc_arena_alloc(arena, sizeof(*reply));
    uint32_t *seats = rpc_arena_alloc(arena, sizeof(uint32_t) * TK_SEATS_PER_HOLD_MAX);
    if (reply == NULL || seats == NULL)
        return NULL;
    tiketi__v1__hold_reply__init(reply);
    reply->hold_id = result->hold_id;
    reply->amount_cents = result->amount_cents;
    reply->expires_at_ms = result->expires_at_ms;
    reply->replayed = result->replayed;
    reply->user_id = user_id;
    memcpy(seats, result->seats, sizeof(uint32_t) * result->seat_count);
    reply->seats = seats;
    reply->n_seats = result->seat_count;
    return reply;
}

static Tiketi__V1__QueueView *queue_view_out(struct rpc_arena *arena, uint64_t event_id, uint64_t user_id,
                                             const struct sc_queue_view *view)
{
    Tiketi__V1__QueueView *out = rpc_arena_alloc(arena, sizeof(*out));
    if (out == NULL)
        return NULL;
    tiketi__v1__queue_view__init(out);
    out->event_id = event_id;
    out->user_id = user_id;
    out->ticket = view->ticket;
    out->rank = view->rank;
    out->position = view->position;
    out->eta_s = view->eta_s;
    out->state = (Tiketi__V1__QueueState)view->state;
    out->admission_expires_ms = view->admission_expires_ms;
    out->admission_token = rpc_arena_strdup(arena, view->admission_token);
    return out->admission_token != NULL ? out : NULL;
}

/* ---- one operation, for single calls and batches alike ---- */

struct outcome {
    enum tk_status status;
    const char *message; /* NULL: the status's own */
    uint32_t unavailable[TK_SEATS_PER_HOLD_MAX];
    uint32_t unavailable_count;
    uint64_t lsn;
    ProtobufCMessage *reply; /* in the arena, on success */
};

static void out_of_memory(struct outcome *o)
{
    o->status = TK_ERR_FULL;
    o->message = "the reply does not fit in the call's memory";
}

static void run_hold(struct seatcored *d, struct rpc_arena *arena, const Tiketi__V1__HoldRequest *req,
                     struct outcome *o)
{
    struct sc_hold_request request = {.event_id = req->event_id, .user_id = req->user_id,
                                      .seat_count = (uint32_t)req->n_seats,
                                      .admission_token = req->admission_token,
                                      .admission_token_len = strlen(req->admission_token)};
    if (req->n_seats == 0 || req->n_seats > TK_SEATS_PER_HOLD_MAX) {
        o->status = TK_ERR_INVALID;
        o->message = "a hold takes 1..10 seats";
        return;
    }
    if (!idempotency_key(req->idempotency_key, &request.idempotency_key)) {
        o->status = TK_ERR_INVALID;
        o->message = "the idempotency key is longer than 255 bytes";
        return;
    }
    memcpy(request.seats, req->seats, req->n_seats * sizeof(uint32_t));
    struct sc_hold_result result;
    o->status = sc_hold(d->engine, &request, &result, &o->lsn);
    o->unavailable_count = result.unavailable_count;
    memcpy(o->unavailable, result.unavailable, sizeof(o->unavailable));
    if (o->status == TK_OK && (o->reply = (ProtobufCMessage *)hold_reply_out(arena, &result, req->user_id)) == NULL)
        out_of_memory(o);
}

static void run_hold_best(struct seatcored *d, struct rpc_arena *arena, const Tiketi__V1__HoldBestRequest *req,
                          struct outcome *o)
{
    struct sc_hold_request request = {.event_id = req->event_id, .user_id = req->user_id,
                                      .best_count = req->count, .best_section = req->section,
                                      .admission_token = req->admission_token,
                                      .admission_token_len = strlen(req->admission_token)};
    if (!idempotency_key(req->idempotency_key, &request.idempotency_key)) {
        o->status = TK_ERR_INVALID;
        o->message = "the idempotency key is longer than 255 bytes";
        return;
    }
    struct sc_hold_result result;
    o->status = sc_hold(d->engine, &request, &result, &o->lsn);
    if (o->status == TK_OK && (o->reply = (ProtobufCMessage *)hold_reply_out(arena, &result, req->user_id)) == NULL)
        out_of_memory(o);
}

static void run_release(struct seatcored *d, struct rpc_arena *arena, const Tiketi__V1__HoldRef *req,
                        struct outcome *o)
{
    o->status = sc_release(d->engine, req->event_id, req->user_id, req->hold_id, &o->lsn);
    Tiketi__V1__Empty *empty = rpc_arena_alloc(arena, sizeof(*empty));
    if (empty == NULL)
        { out_of_memory(o); return; }
    tiketi__v1__empty__init(empty);
    o->reply = &empty->base;
}

static void run_confirm(struct seatcored *d, struct rpc_arena *arena, const Tiketi__V1__ConfirmRequest *req,
                        struct outcome *o)
{
    uint64_t key;
    if (!idempotency_key(req->idempotency_key, &key)) {
        o->status = TK_ERR_INVALID;
        o->message = "the idempotency key is longer than 255 bytes";
        return;
    }
    struct sc_hold_result result;
    o->status = sc_confirm(d->engine, req->event_id, req->user_id, req->hold_id, key, &result, &o->lsn);
    if (o->status == TK_OK && (o->reply = (ProtobufCMessage *)hold_reply_out(arena, &result, req->user_id)) == NULL)
        out_of_memory(o);
}

static void run_return(struct seatcored *d, struct rpc_arena *arena, const Tiketi__V1__ReturnSeatRequest *req,
                       struct outcome *o)
{
    o->status = sc_return_seat(d->engine, req->event_id, req->user_id, req->seat, &o->lsn);
    Tiketi__V1__Empty *empty = rpc_arena_alloc(arena, sizeof(*empty));
    if (empty == NULL)
        { out_of_memory(o); return; }
    tiketi__v1__empty__init(empty);
    o->reply = &empty->base;
}

enum queue_op { QUEUE_JOIN, QUEUE_STATUS, QUEUE_LEAVE, QUEUE_HEARTBEAT };

static void run_queue(struct seatcored *d, struct rpc_arena *arena, const Tiketi__V1__QueueRequest *req,
                      enum queue_op op, struct outcome *o)
{
    struct sc_queue_view view;
    if (op == QUEUE_JOIN)
        o->status = sc_queue_join(d->engine, req->event_id, req->user_id, &view, &o->lsn);
    else if (op == QUEUE_STATUS)
        o->status = sc_queue_status(d->engine, req->event_id, req->user_id, &view, &o->lsn);
    if (op == QUEUE_JOIN || op == QUEUE_STATUS) {
        if (o->status == TK_OK &&
            (o->reply = (ProtobufCMessage *)queue_view_out(arena, req->event_id, req->user_id, &view)) == NULL)
            out_of_memory(o);
        return;
    }
    o->status = op == QUEUE_LEAVE ? sc_queue_leave(d->engine, req->event_id, req->user_id, &o->lsn)
                                  : sc_queue_heartbeat(d->engine, req->event_id, req->user_id);
    Tiketi__V1__Empty *empty = rpc_arena_alloc(arena, sizeof(*empty));
    if (empty == NULL)
        { out_of_memory(o); return; }
    tiketi__v1__empty__init(empty);
    o->reply = &empty->base;
}

static void run_get_event(struct seatcored *d, struct rpc_arena *arena, uint64_t event_id, struct outcome *o)
{
    o->reply = (ProtobufCMessage *)event_info_out(d, arena, event_id, &o->status);
}

/* Answers a single call from its outcome. */
static void answer(struct seatcored *d, struct rpc_call *call, const struct outcome *o)
{
    if (o->status == TK_OK)
        reply_when_durable(d, call, o->lsn, o->reply);
    else
        fail(call, o->status, o->message, o->unavailable, o->unavailable_count);
}

/* ---- handlers ---- */

#define HANDLER(name, type, body)                                                                                      \
    static void name(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)                                \
    {                                                                                                                  \
        struct seatcored *d = ctx;                                                                                     \
        const type *req = (const type *)message;                                                                       \
        struct rpc_arena *arena = rpc_call_arena(call);                                                                \
        struct outcome o = {0};                                                                                        \
        body;                                                                                                          \
        answer(d, call, &o);                                                                                           \
    }

HANDLER(on_hold, Tiketi__V1__HoldRequest, run_hold(d, arena, req, &o))
HANDLER(on_hold_best, Tiketi__V1__HoldBestRequest, run_hold_best(d, arena, req, &o))
HANDLER(on_release, Tiketi__V1__HoldRef, run_release(d, arena, req, &o))
HANDLER(on_confirm, Tiketi__V1__ConfirmRequest, run_confirm(d, arena, req, &o))
HANDLER(on_return, Tiketi__V1__ReturnSeatRequest, run_return(d, arena, req, &o))
HANDLER(on_queue_join, Tiketi__V1__QueueRequest, run_queue(d, arena, req, QUEUE_JOIN, &o))
HANDLER(on_queue_status, Tiketi__V1__QueueRequest, run_queue(d, arena, req, QUEUE_STATUS, &o))
HANDLER(on_queue_leave, Tiketi__V1__QueueRequest, run_queue(d, arena, req, QUEUE_LEAVE, &o))
HANDLER(on_queue_heartbeat, Tiketi__V1__QueueRequest, run_queue(d, arena, req, QUEUE_HEARTBEAT, &o))
HANDLER(on_get_event, Tiketi__V1__EventRef, run_get_event(d, arena, req->event_id, &o))

static void on_get_hold(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct seatcored *d = ctx;
    const Tiketi__V1__HoldRef *req = (const Tiketi__V1__HoldRef *)message;
    struct sc_hold_info info;
    enum tk_status status = sc_hold_get(d->engine, req->event_id, req->hold_id, &info);
    if (status == TK_OK && req->user_id != 0 && info.user_id != req->user_id)
        status = TK_ERR_NOT_FOUND; /* another user's hold is not yours to see */
    if (status != TK_OK)
        { fail(call, status, NULL, NULL, 0); return; }
    struct sc_hold_result result = {.hold_id = info.hold_id, .expires_at_ms = info.expires_at_ms,
                                    .seat_count = info.seat_count, .amount_cents = info.amount_cents};
    memcpy(result.seats, info.seats, sizeof(info.seats));
    Tiketi__V1__HoldReply *reply = hold_reply_out(rpc_call_arena(call), &result, info.user_id);
    if (reply == NULL)
        { fail(call, TK_ERR_FULL, "out of call memory", NULL, 0); return; }
    rpc_reply(call, &reply->base);
}

static void on_create_event(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct seatcored *d = ctx;
    const Tiketi__V1__CreateEventRequest *req = (const Tiketi__V1__CreateEventRequest *)message;
    struct sc_event_spec spec;
    const char *why = NULL;
    enum tk_status status = spec_in(req, &spec, &why);
    if (status != TK_OK)
        { fail(call, status, why, NULL, 0); return; }
    uint32_t owner = rpc_jump_hash(tk_hash_u64(req->event_id), d->config->shard_count);
    if (owner != d->config->shard_id) {
        char text[128];
        snprintf(text, sizeof(text), "event %llu belongs to shard %u, this is shard %u",
                 (unsigned long long)req->event_id, owner, d->config->shard_id);
        { fail(call, TK_ERR_EVENT_CLOSED, rpc_arena_strdup(rpc_call_arena(call), text), NULL, 0); return; }
    }
    uint64_t lsn;
    status = sc_event_create(d->engine, &spec, &lsn);
    if (status != TK_OK)
        { fail(call, status, status == TK_ERR_INVALID ? "the event's settings are not accepted" : NULL, NULL, 0); return; }
    Tiketi__V1__EventInfo *info = event_info_out(d, rpc_call_arena(call), req->event_id, &status);
    if (info == NULL)
        { fail(call, status, NULL, NULL, 0); return; }
    reply_when_durable(d, call, lsn, &info->base);
}

static void event_state_change(struct rpc_call *call, const ProtobufCMessage *message, void *ctx, bool cancel)
{
    struct seatcored *d = ctx;
    const Tiketi__V1__EventRef *req = (const Tiketi__V1__EventRef *)message;
    uint64_t lsn;
    enum tk_status status = cancel ? sc_event_cancel(d->engine, req->event_id, &lsn)
                                   : sc_event_close(d->engine, req->event_id, &lsn);
    if (status != TK_OK)
        { fail(call, status, NULL, NULL, 0); return; }
    Tiketi__V1__EventInfo *info = event_info_out(d, rpc_call_arena(call), req->event_id, &status);
    if (info == NULL)
        { fail(call, status, NULL, NULL, 0); return; }
    reply_when_durable(d, call, lsn, &info->base);
}

static void on_close_event(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    event_state_change(call, message, ctx, false);
}

static void on_cancel_event(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    event_state_change(call, message, ctx, true);
}

static void on_get_availability(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct seatcored *d = ctx;
    const Tiketi__V1__EventRef *req = (const Tiketi__V1__EventRef *)message;
    struct sc_event_info info;
    enum tk_status status = sc_event_get(d->engine, req->event_id, &info);
    if (status != TK_OK)
        { fail(call, status, NULL, NULL, 0); return; }
    struct rpc_arena *arena = rpc_call_arena(call);
    size_t bytes = (info.counts.capacity + 3u) / 4u;
    uint8_t *states = rpc_arena_alloc(arena, bytes);
    Tiketi__V1__Availability *reply = rpc_arena_alloc(arena, sizeof(*reply));
    if (states == NULL || reply == NULL)
        { fail(call, TK_ERR_FULL, "out of call memory", NULL, 0); return; }
    tiketi__v1__availability__init(reply);
    struct sc_counts counts;
    status = sc_availability_copy(d->engine, req->event_id, states, bytes, &reply->version, &counts);
    if (status != TK_OK)
        { fail(call, status, NULL, NULL, 0); return; }
    reply->event_id = req->event_id;
    reply->capacity = counts.capacity;
    reply->free = counts.free;
    reply->held = counts.held;
    reply->sold = counts.sold;
    reply->states.data = states;
    reply->states.len = bytes;
    rpc_reply(call, &reply->base);
}

static void on_watch_availability(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    const Tiketi__V1__WatchAvailabilityRequest *req = (const Tiketi__V1__WatchAvailabilityRequest *)message;
    seatcored_watch_availability(ctx, call, req->event_id, req->interval_ms);
}

static void on_watch_queue(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    const Tiketi__V1__QueueRequest *req = (const Tiketi__V1__QueueRequest *)message;
    seatcored_watch_queue(ctx, call, req->event_id, req->user_id);
}

static void on_get_queue_info(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct seatcored *d = ctx;
    const Tiketi__V1__EventRef *req = (const Tiketi__V1__EventRef *)message;
    struct sc_queue_info info;
    enum tk_status status = sc_queue_info(d->engine, req->event_id, &info);
    if (status != TK_OK) {
        fail(call, status, status == TK_ERR_INVALID ? "the event has no waiting room" : NULL, NULL, 0);
        return;
    }
    Tiketi__V1__QueueInfo reply = TIKETI__V1__QUEUE_INFO__INIT;
    reply.event_id = req->event_id;
    reply.tickets = info.tickets;
    reply.admissions = info.admissions;
    reply.waiting = info.waiting;
    reply.active = info.active;
    reply.head_rank = info.head_rank;
    reply.admission_rate_per_s = info.admission_rate_per_s;
    reply.ranks_final = info.ranks_final;
    Tiketi__V1__QueueInfo *kept = rpc_arena_alloc(rpc_call_arena(call), sizeof(*kept));
    if (kept == NULL) {
        fail(call, TK_ERR_FULL, "out of call memory", NULL, 0);
        return;
    }
    *kept = reply;
    reply_when_durable(d, call, info.lsn, &kept->base); /* the head it shows must not go back */
}

#define ADMISSIONS_LIST_MAX 1000u

static void on_list_admissions(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct seatcored *d = ctx;
    const Tiketi__V1__ListAdmissionsRequest *req = (const Tiketi__V1__ListAdmissionsRequest *)message;
    uint32_t limit = req->limit == 0 || req->limit > ADMISSIONS_LIST_MAX ? ADMISSIONS_LIST_MAX : req->limit;
    struct rpc_arena *arena = rpc_call_arena(call);
    struct sc_queue_admission *found = rpc_arena_alloc(arena, limit * sizeof(*found));
    Tiketi__V1__Admission *items = rpc_arena_alloc(arena, limit * sizeof(*items));
    Tiketi__V1__Admission **list = rpc_arena_alloc(arena, limit * sizeof(*list));
    if (found == NULL || items == NULL || list == NULL) {
        fail(call, TK_ERR_FULL, "out of call memory", NULL, 0);
        return;
    }
    uint32_t count, next;
    struct sc_queue_info info; /* read first: its LSN covers every admission listed after it */
    enum tk_status status = sc_queue_info(d->engine, req->event_id, &info);
    if (status == TK_OK)
        status = sc_queue_admitted(d->engine, req->event_id, req->from_rank, found, limit, &count, &next);
    for (uint32_t i = 0; status == TK_OK && i < count; i++) {
        tiketi__v1__admission__init(&items[i]);
        items[i].user_id = found[i].user_id;
        items[i].ticket = found[i].ticket;
        items[i].rank = found[i].rank;
        items[i].admission_expires_ms = found[i].admission_expires_ms;
        items[i].admission_token = rpc_arena_alloc(arena, SC_ADMISSION_TOKEN_BYTES_MAX);
        if (items[i].admission_token == NULL)
            status = TK_ERR_FULL;
        else
            status = sc_queue_admission_token(d->engine, req->event_id, &found[i], items[i].admission_token,
                                              SC_ADMISSION_TOKEN_BYTES_MAX);
        list[i] = &items[i];
    }
    if (status != TK_OK) {
        fail(call, status, status == TK_ERR_INVALID ? "the event has no waiting room" : NULL, NULL, 0);
        return;
    }
    Tiketi__V1__ListAdmissionsReply *reply = rpc_arena_alloc(arena, sizeof(*reply));
    if (reply == NULL) {
        fail(call, TK_ERR_FULL, "out of call memory", NULL, 0);
        return;
    }
    tiketi__v1__list_admissions_reply__init(reply);
    reply->admissions = list;
    reply->n_admissions = count;
    reply->next_rank = next;
    /* Tokens are only handed out once the admissions cannot be lost in a crash. */
    reply_when_durable(d, call, sc_queue_info(d->engine, req->event_id, &info) == TK_OK ? info.lsn : 0, &reply->base);
}

/* ---- batch ---- */

static void run_batch_op(struct seatcored *d, struct rpc_arena *arena, const Tiketi__V1__BatchOp *op,
                         struct outcome *o)
{
    switch (op->op_case) {
    case TIKETI__V1__BATCH_OP__OP_HOLD: { run_hold(d, arena, op->hold, o); return; }
    case TIKETI__V1__BATCH_OP__OP_HOLD_BEST: { run_hold_best(d, arena, op->hold_best, o); return; }
    case TIKETI__V1__BATCH_OP__OP_RELEASE: { run_release(d, arena, op->release, o); return; }
    case TIKETI__V1__BATCH_OP__OP_CONFIRM: { run_confirm(d, arena, op->confirm, o); return; }
    case TIKETI__V1__BATCH_OP__OP_RETURN_SEAT: { run_return(d, arena, op->return_seat, o); return; }
    case TIKETI__V1__BATCH_OP__OP_QUEUE_JOIN: { run_queue(d, arena, op->queue_join, QUEUE_JOIN, o); return; }
    case TIKETI__V1__BATCH_OP__OP_QUEUE_STATUS: { run_queue(d, arena, op->queue_status, QUEUE_STATUS, o); return; }
    case TIKETI__V1__BATCH_OP__OP_QUEUE_LEAVE: { run_queue(d, arena, op->queue_leave, QUEUE_LEAVE, o); return; }
    case TIKETI__V1__BATCH_OP__OP_GET_EVENT: { run_get_event(d, arena, op->get_event->event_id, o); return; }
    case TIKETI__V1__BATCH_OP__OP_QUEUE_HEARTBEAT: { run_queue(d, arena, op->queue_heartbeat, QUEUE_HEARTBEAT, o); return; }
    default:
        o->status = TK_ERR_INVALID;
        o->message = "empty batch operation";
        return;
    }
}

static bool batch_result(struct rpc_arena *arena, const struct outcome *o, Tiketi__V1__BatchResult *r)
{
    tiketi__v1__batch_result__init(r);
    r->code = (uint32_t)rpc_status_code(o->status);
    if (o->status != TK_OK) {
        Tiketi__V1__ErrorDetail *e = rpc_arena_alloc(arena, sizeof(*e));
        uint32_t *seats = rpc_arena_alloc(arena, sizeof(o->unavailable));
        if (e == NULL || seats == NULL)
            return false;
        tiketi__v1__error_detail__init(e);
        e->code = (char *)tk_status_name(o->status);
        e->message = (char *)(o->message != NULL ? o->message : tk_status_message(o->status));
        memcpy(seats, o->unavailable, sizeof(o->unavailable));
        e->unavailable_seats = seats;
        e->n_unavailable_seats = o->unavailable_count;
        r->error = e;
        return true;
    }
    const ProtobufCMessageDescriptor *type = o->reply->descriptor;
    if (type == &tiketi__v1__hold_reply__descriptor) {
        r->result_case = TIKETI__V1__BATCH_RESULT__RESULT_HOLD;
        r->hold = (Tiketi__V1__HoldReply *)o->reply;
    } else if (type == &tiketi__v1__queue_view__descriptor) {
        r->result_case = TIKETI__V1__BATCH_RESULT__RESULT_QUEUE;
        r->queue = (Tiketi__V1__QueueView *)o->reply;
    } else if (type == &tiketi__v1__event_info__descriptor) {
        r->result_case = TIKETI__V1__BATCH_RESULT__RESULT_EVENT;
        r->event = (Tiketi__V1__EventInfo *)o->reply;
    }
    return true;
}

/* The most arena memory one operation's result can take (reply and error). */
static size_t batch_op_bytes(struct seatcored *d, const Tiketi__V1__BatchOp *op)
{
    struct sc_event_spec spec;
    switch (op->op_case) {
    case TIKETI__V1__BATCH_OP__OP_GET_EVENT:
        if (op->get_event == NULL || sc_event_spec_get(d->engine, op->get_event->event_id, &spec) != TK_OK)
            return 512; /* an error answer */
        return 512 + spec.section_count * (sizeof(Tiketi__V1__Section) + sizeof(void *) + TK_SECTION_NAME_BYTES_MAX);
    case TIKETI__V1__BATCH_OP__OP_QUEUE_JOIN:
    case TIKETI__V1__BATCH_OP__OP_QUEUE_STATUS:
        return 512 + SC_ADMISSION_TOKEN_BYTES_MAX;
    default:
        return 512;
    }
}

static void on_batch(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct seatcored *d = ctx;
    const Tiketi__V1__BatchRequest *req = (const Tiketi__V1__BatchRequest *)message;
    if (req->n_ops > SEATCORED_BATCH_OPS_MAX)
        { fail(call, TK_ERR_FULL, "a batch carries at most 4096 operations", NULL, 0); return; }
    /* All or nothing for memory: a batch that could run out of call memory half
     * way is refused before any operation runs, never after some changed seats. */
    size_t need = 0;
    for (size_t i = 0; i < req->n_ops; i++)
        need += batch_op_bytes(d, req->ops[i]) + sizeof(Tiketi__V1__BatchResult) + sizeof(void *);
    if (need > SEATCORED_BATCH_ARENA_BYTES_MAX)
        { fail(call, TK_ERR_FULL, "the batch's replies would not fit in the call's memory: split it", NULL, 0); return; }
    struct rpc_arena *arena = rpc_call_arena(call);
    Tiketi__V1__BatchReply *reply = rpc_arena_alloc(arena, sizeof(*reply));
    Tiketi__V1__BatchResult **list = rpc_arena_alloc(arena, (req->n_ops + 1) * sizeof(*list));
    Tiketi__V1__BatchResult *results = rpc_arena_alloc(arena, (req->n_ops + 1) * sizeof(*results));
    if (reply == NULL || list == NULL || results == NULL)
        { fail(call, TK_ERR_FULL, "out of call memory", NULL, 0); return; }
    tiketi__v1__batch_reply__init(reply);
    uint64_t lsn = 0;
    for (size_t i = 0; i < req->n_ops; i++) {
        struct outcome o = {0};
        run_batch_op(d, arena, req->ops[i], &o);
        if (!batch_result(arena, &o, &results[i]))
            { fail(call, TK_ERR_FULL, "out of call memory", NULL, 0); return; }
        list[i] = &results[i];
        if (o.lsn > lsn)
            lsn = o.lsn;
    }
    reply->results = list;
    reply->n_results = req->n_ops;
    reply_when_durable(d, call, lsn, &reply->base);
}

#define METHOD(name, type, fn) {.path = "/tiketi.v1.SeatCore/" name, .request = &type, .handler = fn}

const struct rpc_method seatcored_methods[] = {
    METHOD("CreateEvent", tiketi__v1__create_event_request__descriptor, on_create_event),
    METHOD("GetEvent", tiketi__v1__event_ref__descriptor, on_get_event),
    METHOD("CloseEvent", tiketi__v1__event_ref__descriptor, on_close_event),
    METHOD("CancelEvent", tiketi__v1__event_ref__descriptor, on_cancel_event),
    METHOD("Hold", tiketi__v1__hold_request__descriptor, on_hold),
    METHOD("HoldBestAvailable", tiketi__v1__hold_best_request__descriptor, on_hold_best),
    METHOD("Release", tiketi__v1__hold_ref__descriptor, on_release),
    METHOD("Confirm", tiketi__v1__confirm_request__descriptor, on_confirm),
    METHOD("ReturnSeat", tiketi__v1__return_seat_request__descriptor, on_return),
    METHOD("GetHold", tiketi__v1__hold_ref__descriptor, on_get_hold),
    METHOD("GetAvailability", tiketi__v1__event_ref__descriptor, on_get_availability),
    {.path = "/tiketi.v1.SeatCore/WatchAvailability", .request = &tiketi__v1__watch_availability_request__descriptor,
     .handler = on_watch_availability, .server_streaming = true},
    METHOD("QueueJoin", tiketi__v1__queue_request__descriptor, on_queue_join),
    METHOD("QueueStatus", tiketi__v1__queue_request__descriptor, on_queue_status),
    METHOD("QueueLeave", tiketi__v1__queue_request__descriptor, on_queue_leave),
    METHOD("QueueHeartbeat", tiketi__v1__queue_request__descriptor, on_queue_heartbeat),
    {.path = "/tiketi.v1.SeatCore/WatchQueue", .request = &tiketi__v1__queue_request__descriptor,
     .handler = on_watch_queue, .server_streaming = true},
    METHOD("GetQueueInfo", tiketi__v1__event_ref__descriptor, on_get_queue_info),
    METHOD("ListAdmissions", tiketi__v1__list_admissions_request__descriptor, on_list_admissions),
    METHOD("Batch", tiketi__v1__batch_request__descriptor, on_batch),
};
const uint32_t seatcored_method_count = sizeof(seatcored_methods) / sizeof(seatcored_methods[0]);
