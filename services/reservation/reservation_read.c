/* reservation_read.c — Reservations/GetReservation and Reservations/ListReservations.
 *
 * A reservation is in one of two places: PostgreSQL once it was paid for (any
 * state from paying on), or only the engine (with a record in Redis) while it
 * is a pending hold. GetReservation looks in PostgreSQL, then asks the engine
 * (GetHold with the caller's id: another user's hold is NOT_FOUND, exactly like
 * another user's row). ListReservations merges the user's rows and pending
 * records, newest first; a reservation in both (paid a moment ago, its Redis
 * record not yet gone) is shown once, from PostgreSQL. */
#include <stdlib.h>
#include <string.h>

#include "reservation.h"
#include "rpc_log.h"
#include "tk_assert.h"

/* ---- GetReservation ---- */

struct get_job {
    struct reservation_service *svc;
    struct rpc_call *call;
    struct rsv_ref ref;
};

/* Not in PostgreSQL: a live hold of the caller's, or nothing. */
static void get_pending(struct get_job *job, struct svc_worker *worker)
{
    struct rsv_budget budget = rsv_budget_for(job->call, 2 * job->svc->config->engine_timeout_ms);
    Tiketi__V1__HoldReply *hold = NULL;
    struct rpc_error error;
    const struct rsv_ref *ref = &job->ref;
    grpc_status_code code = rsv_engine_get_hold(job->svc, ref->event_id, ref->user_id, ref->hold_id, &budget, &hold,
                                                &error);
    if (code == GRPC_STATUS_NOT_FOUND || code == GRPC_STATUS_FAILED_PRECONDITION) {
        rsv_fail(job->call, GRPC_STATUS_NOT_FOUND, "not_found", "no such reservation");
        return;
    }
    if (code != GRPC_STATUS_OK) {
        rpc_fail(job->call, &error);
        return;
    }
    struct rsv_pending pending = {.event_id = job->ref.event_id, .hold_id = job->ref.hold_id,
                                  .expires_ms = hold->expires_at_ms,
                                  .seat_count = hold->n_seats <= TK_SEATS_PER_HOLD_MAX ? (uint32_t)hold->n_seats : 0};
    memcpy(pending.seats, hold->seats, pending.seat_count * sizeof(uint32_t));
    protobuf_c_message_free_unpacked(&hold->base, NULL);
    struct rsv_pending cached;
    if (svc_worker_redis_ok(worker) && rsv_pending_get(worker->redis, job->ref.user_id, job->ref.id, 0, &cached) == 1 &&
        cached.hold_id == job->ref.hold_id) {
        pending.amount_cents = cached.amount_cents;
        pending.created_ms = cached.created_ms;
    } else if (pending.seat_count > 0 &&
               rsv_engine_amount(job->svc, job->ref.event_id, pending.seats, pending.seat_count, &budget,
                                 &pending.amount_cents, &error) != GRPC_STATUS_OK) {
        rpc_fail(job->call, &error);
        return;
    }
    Tiketi__V1__Reservation *reply = rsv_reply_from_pending(rpc_call_arena(job->call), job->ref.id, &pending);
    if (reply == NULL) {
        rsv_fail(job->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached", "the reply does not fit in memory");
        return;
    }
    rpc_reply(job->call, &reply->base);
}

static void get_run(struct svc_worker *worker, void *ctx)
{
    struct get_job *job = ctx;
    if (!rsv_worker_pg(worker, job->call))
        return;
    struct rsv_record record;
    char err[256];
    enum rsv_store_result stored =
        rsv_store_load(worker->pg, job->ref.uuid, job->ref.user_id, &record, err, sizeof(err));
    if (stored == RSV_STORE_NOT_FOUND) {
        get_pending(job, worker);
        return;
    }
    if (stored != RSV_STORE_OK) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database failed; retry");
        return;
    }
    Tiketi__V1__Reservation *reply = rsv_reply_from_record(rpc_call_arena(job->call), &record);
    if (reply == NULL) {
        rsv_fail(job->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached", "the reply does not fit in memory");
        return;
    }
    rpc_reply(job->call, &reply->base);
}

void rsv_on_get(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    const Tiketi__V1__ReservationRef *in = (const Tiketi__V1__ReservationRef *)message;
    struct get_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    TK_ASSERT(job != NULL);
    *job = (struct get_job){.svc = ctx, .call = call};
    if (rsv_ref_parse(call, in, &job->ref))
        rsv_submit(job->svc, call, get_run, job);
}

/* ---- ListReservations ---- */

struct entry {
    int64_t created_ms;
    uint64_t event_id, hold_id;
    const struct rsv_record *record; /* NULL: pending[] */
    const struct rsv_pending *pending;
};

struct list_job {
    struct reservation_service *svc;
    struct rpc_call *call;
    uint64_t user_id;
    uint32_t limit;
    struct rsv_record *records;  /* limit of each, in the call's arena */
    struct rsv_pending *pending;
    struct entry *entries;       /* 2 x limit */
};

static int newest_first(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->created_ms != y->created_ms)
        return x->created_ms > y->created_ms ? -1 : 1;
    if (x->event_id != y->event_id)
        return x->event_id > y->event_id ? -1 : 1;
    return x->hold_id > y->hold_id ? -1 : x->hold_id < y->hold_id ? 1 : 0;
}

static bool in_records(const struct rsv_record *records, int count, const struct rsv_pending *pending)
{
    for (int i = 0; i < count; i++)
        if (records[i].event_id == pending->event_id && records[i].hold_id == pending->hold_id)
            return true;
    return false;
}

static void list_answer(struct list_job *job, int record_count, int pending_count)
{
    struct entry *entries = job->entries;
    uint32_t n = 0;
    for (int i = 0; i < record_count; i++)
        entries[n++] = (struct entry){.created_ms = job->records[i].created_ms, .event_id = job->records[i].event_id,
                                      .hold_id = job->records[i].hold_id, .record = &job->records[i]};
    for (int i = 0; i < pending_count; i++)
        if (!in_records(job->records, record_count, &job->pending[i]))
            entries[n++] = (struct entry){.created_ms = job->pending[i].created_ms,
                                          .event_id = job->pending[i].event_id,
                                          .hold_id = job->pending[i].hold_id, .pending = &job->pending[i]};
    qsort(entries, n, sizeof(entries[0]), newest_first);
    if (n > job->limit)
        n = job->limit;
    struct rpc_arena *arena = rpc_call_arena(job->call);
    Tiketi__V1__ListReservationsReply *reply = rpc_arena_alloc(arena, sizeof(*reply));
    Tiketi__V1__Reservation **list = rpc_arena_alloc(arena, (n ? n : 1) * sizeof(*list));
    bool ok = reply != NULL && list != NULL;
    for (uint32_t i = 0; ok && i < n; i++) {
        char id[RSV_ID_BYTES];
        rsv_id_format(entries[i].event_id, entries[i].hold_id, id);
        list[i] = entries[i].record != NULL ? rsv_reply_from_record(arena, entries[i].record)
                                            : rsv_reply_from_pending(arena, id, entries[i].pending);
        ok = list[i] != NULL;
    }
    if (!ok) {
        rsv_fail(job->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached",
                 "the list does not fit in the reply: ask for fewer");
        return;
    }
    tiketi__v1__list_reservations_reply__init(reply);
    reply->reservations = list;
    reply->n_reservations = n;
    rpc_reply(job->call, &reply->base);
}

static void list_run(struct svc_worker *worker, void *ctx)
{
    struct list_job *job = ctx;
    if (!rsv_worker_pg(worker, job->call))
        return;
    /* Redis first, then PostgreSQL: Pay commits the row before it drops the pending record,
     * so a reservation paid meanwhile is seen twice (and shown once), never missed. */
    int pending_count = svc_worker_redis_ok(worker)
                            ? rsv_pending_list(worker->redis, job->user_id, rsv_now_ms(), job->pending, job->limit)
                            : -1;
    if (pending_count < 0) { /* the paid ones are still worth showing */
        rsv_count(&job->svc->metrics.pending_cache_errors);
        rpc_log(RPC_LOG_WARN, "", "listing without pending holds: Redis did not answer");
        pending_count = 0;
    }
    char err[256];
    int record_count = rsv_store_list(worker->pg, job->user_id, job->records, job->limit, err, sizeof(err));
    if (record_count < 0) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database failed; retry");
        return;
    }
    list_answer(job, record_count, pending_count);
}

void rsv_on_list(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    const Tiketi__V1__ListReservationsRequest *in = (const Tiketi__V1__ListReservationsRequest *)message;
    struct rpc_arena *arena = rpc_call_arena(call);
    struct list_job *job = rpc_arena_alloc(arena, sizeof(*job));
    TK_ASSERT(job != NULL);
    *job = (struct list_job){.svc = ctx, .call = call};
    if (!rsv_parse_id(in->user_id, RSV_USER_ID_MAX, &job->user_id)) {
        rsv_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "user_id must be a decimal number");
        return;
    }
    job->limit = in->limit == 0 ? RSV_LIST_DEFAULT : in->limit > RSV_LIST_MAX ? RSV_LIST_MAX : in->limit;
    job->records = rpc_arena_alloc(arena, job->limit * sizeof(*job->records));
    job->pending = rpc_arena_alloc(arena, job->limit * sizeof(*job->pending));
    job->entries = rpc_arena_alloc(arena, 2 * job->limit * sizeof(*job->entries));
    if (job->records == NULL || job->pending == NULL || job->entries == NULL) {
        rsv_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached", "out of call memory: ask for fewer");
        return;
    }
    rsv_submit(job->svc, call, list_run, job);
}
