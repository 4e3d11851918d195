/* reservation_hold.c — Reservations/CreateHold and Reservations/ReleaseHold.
 *
 * CreateHold is the hot path: request checks and the admission token (offline,
 * seatcore/token.c) on the completion-queue thread, then one engine call
 * (Hold or HoldBestAvailable, with the token and the client's idempotency key)
 * and one pipelined Redis write on a worker. No PostgreSQL: the hold is durable
 * in the engine's WAL before the engine answers, and the reservation id names
 * it (event id, hold id), so later calls find it without a table. The per-user
 * seat cap, seat conflicts and "all or nothing" are the engine's answers,
 * passed on with their machine codes (and the unavailable seats). */
#include <string.h>

#include "reservation.h"
#include "reservation_admission.h"
#include "rpc_log.h"
#include "tk_assert.h"

struct hold_job {
    struct reservation_service *svc;
    struct rpc_call *call;
    const Tiketi__V1__CreateHoldRequest *request;
    uint64_t event_id, user_id;
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
    uint32_t seat_count; /* 0: best available */
    int32_t section;     /* best available: index, -1 any */
    bool section_by_name;
};

static enum rsv_hold_outcome outcome_of(grpc_status_code code, const struct rpc_error *error)
{
    if (strcmp(error->name, "seat_unavailable") == 0)
        return RSV_HOLD_SEAT_UNAVAILABLE;
    if (strcmp(error->name, "not_admitted") == 0)
        return RSV_HOLD_NOT_ADMITTED;
    if (strcmp(error->name, "seat_cap_reached") == 0)
        return RSV_HOLD_CAP_REACHED;
    return code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_DEADLINE_EXCEEDED || code == GRPC_STATUS_INTERNAL
               ? RSV_HOLD_ERROR
               : RSV_HOLD_REJECTED;
}

/* A section given by name: its index from the engine's layout. false: answered. */
static bool resolve_section(struct hold_job *job, const struct rsv_budget *budget)
{
    struct rsv_section_layout layout[RSV_SECTIONS_MAX];
    char names[RSV_SECTIONS_MAX][TK_SECTION_NAME_BYTES_MAX];
    uint32_t count;
    struct rpc_error error;
    if (rsv_engine_sections(job->svc, job->event_id, budget, layout, names, &count, &error) != GRPC_STATUS_OK) {
        rsv_count(&job->svc->metrics.holds[outcome_of(error.code, &error)]);
        rpc_fail(job->call, &error);
        return false;
    }
    for (uint32_t s = 0; s < count; s++)
        if (strcmp(names[s], job->request->section) == 0) {
            job->section = (int32_t)s;
            return true;
        }
    rsv_count(&job->svc->metrics.holds[RSV_HOLD_REJECTED]);
    rsv_fail(job->call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "the event has no section of that name");
    return false;
}

static grpc_status_code engine_hold(struct hold_job *job, const struct rsv_budget *budget,
                                    Tiketi__V1__HoldReply **reply, struct rpc_error *error)
{
    const Tiketi__V1__CreateHoldRequest *in = job->request;
    if (job->seat_count > 0) {
        Tiketi__V1__HoldRequest request = TIKETI__V1__HOLD_REQUEST__INIT;
        request.event_id = job->event_id;
        request.user_id = job->user_id;
        request.seats = job->seats;
        request.n_seats = job->seat_count;
        request.idempotency_key = in->idempotency_key;
        request.admission_token = in->admission_token;
        return rsv_engine_hold(job->svc, &request, budget, reply, error);
    }
    Tiketi__V1__HoldBestRequest request = TIKETI__V1__HOLD_BEST_REQUEST__INIT;
    request.event_id = job->event_id;
    request.user_id = job->user_id;
    request.count = in->count;
    request.section = job->section;
    request.idempotency_key = in->idempotency_key;
    request.admission_token = in->admission_token;
    return rsv_engine_hold_best(job->svc, &request, budget, reply, error);
}

/* A replayed key whose hold has ended: paid (then it is in PostgreSQL) or gone. */
static void answer_ended(struct hold_job *job, struct svc_worker *worker, const char *uuid)
{
    struct rsv_record record;
    char err[256];
    if (svc_worker_pg_ok(worker) &&
        rsv_store_load(worker->pg, uuid, job->user_id, &record, err, sizeof(err)) == RSV_STORE_OK) {
        Tiketi__V1__Reservation *reply = rsv_reply_from_record(rpc_call_arena(job->call), &record);
        if (reply != NULL) {
            rpc_reply(job->call, &reply->base);
            return;
        }
    }
    rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "hold_expired",
             "the hold made with this idempotency key has ended; use a new key for a new hold");
}

static void hold_run(struct svc_worker *worker, void *ctx)
{
    struct hold_job *job = ctx;
    struct reservation_service *svc = job->svc;
    struct rsv_budget budget = rsv_budget_for(job->call, 3 * svc->config->engine_timeout_ms);
    if (job->section_by_name && !resolve_section(job, &budget))
        return;
    Tiketi__V1__HoldReply *hold = NULL;
    struct rpc_error error;
    grpc_status_code code = engine_hold(job, &budget, &hold, &error);
    if (code != GRPC_STATUS_OK) {
        rsv_count(&svc->metrics.holds[outcome_of(code, &error)]);
        rpc_fail(job->call, &error); /* the engine's code, name, message and unavailable seats */
        return;
    }
    char id[RSV_ID_BYTES], uuid[RSV_UUID_BYTES];
    rsv_id_format(job->event_id, hold->hold_id, id);
    rsv_uuid_format(job->event_id, hold->hold_id, uuid);
    rsv_count(&svc->metrics.holds[hold->replayed ? RSV_HOLD_REPLAYED : RSV_HOLD_OK]);
    if (hold->n_seats == 0 || hold->n_seats > TK_SEATS_PER_HOLD_MAX) {
        protobuf_c_message_free_unpacked(&hold->base, NULL);
        answer_ended(job, worker, uuid);
        return;
    }
    struct rsv_pending pending = {.event_id = job->event_id, .hold_id = hold->hold_id,
                                  .amount_cents = hold->amount_cents, .created_ms = rsv_now_ms(),
                                  .expires_ms = hold->expires_at_ms, .seat_count = (uint32_t)hold->n_seats};
    memcpy(pending.seats, hold->seats, hold->n_seats * sizeof(uint32_t));
    bool replayed = hold->replayed;
    protobuf_c_message_free_unpacked(&hold->base, NULL);
    struct rsv_pending stored;
    bool cached = svc_worker_redis_ok(worker) && rsv_pending_put(worker->redis, job->user_id, id, &pending);
    if (cached && replayed && rsv_pending_get(worker->redis, job->user_id, id, 0, &stored) == 1 &&
        stored.hold_id == pending.hold_id)
        pending.created_ms = stored.created_ms; /* a replay keeps the first answer's time */
    if (!cached) {
        rsv_count(&svc->metrics.pending_cache_errors);
        char fields[256];
        rsv_log_fields(fields, sizeof(fields), rpc_call_request_id(job->call), id);
        rpc_log(RPC_LOG_WARN, fields, "hold made, but Redis did not take its pending record: it is not listed");
    }
    Tiketi__V1__Reservation *reply = rsv_reply_from_pending(rpc_call_arena(job->call), id, &pending);
    if (reply == NULL) {
        rsv_fail(job->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached", "the reply does not fit in memory");
        return;
    }
    rpc_reply(job->call, &reply->base);
}

/* The checks that need nothing but the request; NULL if it is acceptable. */
static const char *check_hold(struct hold_job *job)
{
    const Tiketi__V1__CreateHoldRequest *in = job->request;
    if (!rsv_parse_id(in->event_id, UINT64_MAX, &job->event_id))
        return "event_id must be a decimal number 1..18446744073709551615";
    if (!rsv_parse_id(in->user_id, RSV_USER_ID_MAX, &job->user_id))
        return "user_id must be a decimal number 1..2^48-1";
    if (!rsv_key_valid(in->idempotency_key))
        return "idempotency_key is required: 1..255 printable characters";
    if (in->n_seat_ids > 0) {
        if (in->count != 0 || in->section[0] != '\0')
            return "give either seat_ids or count (with an optional section), not both";
        if (!rsv_parse_seats(in->seat_ids, in->n_seat_ids, job->seats))
            return "seat_ids must be 1..10 different seat numbers";
        job->seat_count = (uint32_t)in->n_seat_ids;
        return NULL;
    }
    if (in->count == 0 || in->count > TK_SEATS_PER_HOLD_MAX)
        return "count must be 1..10 (or give seat_ids)";
    if (!rsv_section_index(in->section, &job->section)) {
        if (strnlen(in->section, TK_SECTION_NAME_BYTES_MAX) >= TK_SECTION_NAME_BYTES_MAX)
            return "section must be a section name (at most 31 bytes) or index";
        job->section_by_name = true;
    }
    return NULL;
}

void rsv_on_create_hold(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct reservation_service *svc = ctx;
    struct hold_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    TK_ASSERT(job != NULL);
    *job = (struct hold_job){.svc = svc, .call = call, .request = (const Tiketi__V1__CreateHoldRequest *)message,
                             .section = -1};
    const char *why = check_hold(job);
    if (why != NULL) {
        rsv_count(&svc->metrics.holds[RSV_HOLD_REJECTED]);
        rsv_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "%s", why);
        return;
    }
    if (svc->config->admission_required || job->request->admission_token[0] != '\0') {
        enum tk_status status = rsv_admission_check(&svc->token_key, job->request->admission_token, job->event_id,
                                                    job->user_id, rsv_now_ms(), &why);
        if (status != TK_OK) {
            rsv_count(&svc->metrics.holds[RSV_HOLD_NOT_ADMITTED]);
            rsv_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "not_admitted", "%s", why);
            return;
        }
    }
    rsv_submit(svc, call, hold_run, job);
}

/* ---- ReleaseHold ---- */

struct release_job {
    struct reservation_service *svc;
    struct rpc_call *call;
    uint64_t event_id, hold_id, user_id;
    char id[RSV_ID_BYTES];
    char uuid[RSV_UUID_BYTES];
};

static void release_locked(struct release_job *job, struct svc_worker *worker)
{
    struct rsv_record record;
    char err[256];
    enum rsv_store_result stored = rsv_store_load(worker->pg, job->uuid, job->user_id, &record, err, sizeof(err));
    if (stored == RSV_STORE_OK) {
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "reservation_not_pending",
                 "the reservation is %s: only a pending hold can be released (cancel a confirmed one)",
                 record.status);
        return;
    }
    if (stored != RSV_STORE_NOT_FOUND) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database failed: %s", err);
        return;
    }
    struct rsv_budget budget = rsv_budget_for(job->call, 2 * job->svc->config->engine_timeout_ms);
    struct rpc_error error;
    grpc_status_code code = rsv_engine_release(job->svc, job->event_id, job->user_id, job->hold_id, &budget, &error);
    if (code == GRPC_STATUS_OK) {
        if (svc_worker_redis_ok(worker))
            rsv_pending_remove(worker->redis, job->user_id, job->id);
        Tiketi__V1__Empty empty = TIKETI__V1__EMPTY__INIT;
        rpc_reply(job->call, &empty.base);
        return;
    }
    if (code == GRPC_STATUS_NOT_FOUND || strcmp(error.name, "not_owner") == 0)
        rsv_fail(job->call, GRPC_STATUS_NOT_FOUND, "not_found", "no such reservation");
    else
        rpc_fail(job->call, &error); /* hold_expired, or the engine is unavailable */
}

static void release_run(struct svc_worker *worker, void *ctx)
{
    struct release_job *job = ctx;
    if (!rsv_worker_pg(worker, job->call))
        return;
    /* The lock orders this against a Pay of the same hold: never released while being paid.
     * (Waiting a little also covers a call that answered just before it unlocked.) */
    if (!rsv_store_lock_within(worker->pg, job->uuid, RSV_LOCK_WAIT_MS)) {
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "payment_in_progress",
                 "a payment for this reservation is in progress");
        return;
    }
    release_locked(job, worker);
    rsv_store_unlock(worker->pg, job->uuid);
}

void rsv_on_release_hold(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct reservation_service *svc = ctx;
    const Tiketi__V1__ReservationRef *in = (const Tiketi__V1__ReservationRef *)message;
    struct release_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    TK_ASSERT(job != NULL);
    *job = (struct release_job){.svc = svc, .call = call};
    if (!rsv_id_parse(in->reservation_id, &job->event_id, &job->hold_id) ||
        !rsv_parse_id(in->user_id, RSV_USER_ID_MAX, &job->user_id)) {
        rsv_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request",
                 "reservation_id must be an id from CreateHold and user_id a decimal number");
        return;
    }
    rsv_id_format(job->event_id, job->hold_id, job->id);
    rsv_uuid_format(job->event_id, job->hold_id, job->uuid);
    rsv_submit(svc, call, release_run, job);
}
