/* reservation_pay.c — Reservations/Pay: the payment saga's start (and resumption).
 *
 * A first Pay of a hold: under the reservation's advisory lock, check the hold
 * in the engine (GetHold: the caller's, not expired), price its seats from the
 * engine's layout, then write the reservation (paying), its seats and the saga
 * in ONE PostgreSQL transaction, and drive the saga (reservation_saga.c):
 * Charge -> Confirm -> confirmed, or the compensations. A later Pay of the same
 * reservation (a retry with any key, or after an UNAVAILABLE) finds the row and
 * drives the saga on from where it rests, so it answers the same outcome and
 * never charges twice (the charge key is derived from the reservation).
 *
 * Answers: confirmed -> OK {confirmed, payment_id}; declined -> FAILED_PRECONDITION
 * payment_declined (seats released); the hold ended first -> FAILED_PRECONDITION
 * hold_expired (refunded if it had been charged); the payment's outcome unknown ->
 * UNAVAILABLE payment_unavailable (the hold is kept until its TTL, the saga is
 * resumed by the next Pay or the recovery loop). */
#include <string.h>

#include "reservation.h"
#include "rpc_log.h"
#include "tk_assert.h"

struct pay_job {
    struct reservation_service *svc;
    struct rpc_call *call;
    const Tiketi__V1__PayRequest *request;
    uint64_t event_id, hold_id, user_id;
    char id[RSV_ID_BYTES];
    char uuid[RSV_UUID_BYTES];
    char log_fields[256];
};

static const char *outcome_code(const char *outcome)
{
    return strncmp(outcome, "payment_failed", 14) == 0 ? "payment_failed" : "payment_declined";
}

/* The outcome's reason after "code: ", for the message. */
static const char *outcome_reason(const char *outcome)
{
    const char *colon = strstr(outcome, ": ");
    return colon != NULL ? colon + 2 : outcome;
}

static void answer(struct pay_job *job, const struct rsv_record *r, const struct rsv_drive_result *drive)
{
    const char *state = r->state;
    if (strcmp(state, "confirmed") == 0) {
        Tiketi__V1__PayReply *reply = rpc_arena_alloc(rpc_call_arena(job->call), sizeof(*reply));
        TK_ASSERT(reply != NULL);
        tiketi__v1__pay_reply__init(reply);
        reply->status = (char *)"confirmed";
        reply->payment_id = rpc_arena_strdup(rpc_call_arena(job->call), r->payment_id);
        reply->reservation_id = job->id;
        rpc_reply(job->call, &reply->base);
    } else if (strcmp(state, "released") == 0 || strcmp(state, "compensating") == 0) {
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, outcome_code(r->outcome),
                 "the payment was not accepted (%s); the seats were released", outcome_reason(r->outcome));
    } else if (strcmp(state, "refunded") == 0 || strcmp(state, "refunding") == 0) {
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "hold_expired",
                 "the hold ended before the sale was confirmed; the charge %s refunded",
                 strcmp(state, "refunded") == 0 ? "was" : "is being");
    } else if (strcmp(state, "paying") == 0) {
        char until[RSV_TIME_BYTES];
        rsv_format_time(r->expires_ms, until);
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "payment_unavailable",
                 "the payment's outcome is not known yet (%s); the hold is kept until %s: retry with the same "
                 "idempotency key",
                 drive->error.message[0] ? drive->error.message : "payment-svc did not answer", until);
    } else if (strcmp(state, "charged") == 0 && drive->error.code == GRPC_STATUS_ABORTED) {
        rpc_fail(job->call, &drive->error); /* the database guard refused the sale: held for review */
    } else if (strcmp(state, "charged") == 0) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable",
                 "the payment went through; confirming the seats is pending (%s): retry", drive->error.message);
    } else if (strcmp(state, "cancelling") == 0 || strcmp(state, "cancelled") == 0) {
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "reservation_not_pending",
                 "the reservation was cancelled");
    } else {
        rsv_fail(job->call, GRPC_STATUS_INTERNAL, "internal", "the reservation is in an unknown state");
    }
}

/* The hold as the engine has it: the caller's and alive. false: answered. */
static bool check_hold(struct pay_job *job, const struct rsv_budget *budget, struct rsv_record *record)
{
    Tiketi__V1__HoldReply *hold = NULL;
    struct rpc_error error;
    grpc_status_code code = rsv_engine_get_hold(job->svc, job->event_id, job->user_id, job->hold_id, budget, &hold,
                                                &error);
    if (code == GRPC_STATUS_NOT_FOUND) {
        rsv_fail(job->call, GRPC_STATUS_NOT_FOUND, "not_found", "no such reservation");
        return false;
    }
    if (code != GRPC_STATUS_OK) {
        rpc_fail(job->call, &error); /* hold_expired (410), or the engine is unavailable */
        return false;
    }
    bool usable = hold->user_id == job->user_id && hold->expires_at_ms > rsv_now_ms() && hold->n_seats >= 1 &&
                  hold->n_seats <= TK_SEATS_PER_HOLD_MAX;
    if (usable) {
        record->expires_ms = hold->expires_at_ms;
        record->seat_count = (uint32_t)hold->n_seats;
        memcpy(record->seats, hold->seats, hold->n_seats * sizeof(uint32_t));
    }
    protobuf_c_message_free_unpacked(&hold->base, NULL);
    if (!usable)
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "hold_expired",
                 "the hold has expired and its seats went back on sale");
    return usable;
}

/* The first Pay: the saga's row, from the live hold. false: answered. */
static bool begin(struct pay_job *job, struct svc_worker *worker, const struct rsv_budget *budget,
                  struct rsv_record *record)
{
    memset(record, 0, sizeof(*record));
    if (!check_hold(job, budget, record))
        return false;
    struct rpc_error error;
    if (rsv_engine_amount(job->svc, job->event_id, record->seats, record->seat_count, budget, &record->amount_cents,
                          &error) != GRPC_STATUS_OK) {
        rpc_fail(job->call, &error);
        return false;
    }
    struct rsv_pending pending;
    bool cached = svc_worker_redis_ok(worker) &&
                  rsv_pending_get(worker->redis, job->user_id, job->id, 0, &pending) == 1;
    snprintf(record->uuid, sizeof(record->uuid), "%s", job->uuid);
    record->event_id = job->event_id;
    record->hold_id = job->hold_id;
    record->user_id = job->user_id;
    record->created_ms = cached ? pending.created_ms : 0; /* 0: now() */
    snprintf(record->card_token, sizeof(record->card_token), "%s", job->request->card_token);
    char err[256];
    enum rsv_store_result stored = rsv_store_begin(worker->pg, record, job->request->idempotency_key, err,
                                                   sizeof(err));
    if (stored == RSV_STORE_CONFLICT) {
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "idempotency_key_reused",
                 "this idempotency key was already used to pay for another reservation");
        return false;
    }
    if (stored != RSV_STORE_OK && stored != RSV_STORE_RACED) {
        rpc_log(RPC_LOG_ERROR, job->log_fields, "cannot record the reservation: %s", err);
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database failed; retry");
        return false;
    }
    if (cached)
        rsv_pending_remove(worker->redis, job->user_id, job->id);
    if (rsv_store_load(worker->pg, job->uuid, job->user_id, record, err, sizeof(err)) != RSV_STORE_OK) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database failed; retry");
        return false;
    }
    rpc_log(RPC_LOG_INFO, job->log_fields, "saga %s started: %u seat(s), %llu cents", job->uuid, record->seat_count,
            (unsigned long long)record->amount_cents);
    return true;
}

static void pay_locked(struct pay_job *job, struct svc_worker *worker, const struct rsv_budget *budget)
{
    struct rsv_record record;
    char err[256];
    enum rsv_store_result stored = rsv_store_load(worker->pg, job->uuid, job->user_id, &record, err, sizeof(err));
    if (stored == RSV_STORE_ERROR || stored == RSV_STORE_REFUSED) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database failed; retry");
        return;
    }
    if (stored == RSV_STORE_NOT_FOUND && !begin(job, worker, budget, &record))
        return;
    struct rsv_drive_result drive;
    rsv_saga_drive(job->svc, worker->pg, &record, budget, rpc_call_request_id(job->call), &drive);
    answer(job, &record, &drive);
}

static void pay_run(struct svc_worker *worker, void *ctx)
{
    struct pay_job *job = ctx;
    if (!rsv_worker_pg(worker, job->call))
        return;
    const struct reservation_config *config = job->svc->config;
    struct rsv_budget budget = rsv_budget_for(job->call, config->payment_timeout_ms + 4 * config->engine_timeout_ms);
    int64_t wait = rsv_budget_call_ms(&budget, RSV_LOCK_WAIT_MS); /* a concurrent Pay waits for the one in flight */
    if (!rsv_store_lock_within(worker->pg, job->uuid, wait)) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "payment_in_progress",
                 "a payment for this reservation is being processed; retry with the same idempotency key");
        return;
    }
    pay_locked(job, worker, &budget);
    rsv_store_unlock(worker->pg, job->uuid);
}

static const char *check_pay(struct pay_job *job)
{
    const Tiketi__V1__PayRequest *in = job->request;
    if (!rsv_id_parse(in->reservation_id, &job->event_id, &job->hold_id))
        return "reservation_id must be an id from CreateHold";
    if (!rsv_parse_id(in->user_id, RSV_USER_ID_MAX, &job->user_id))
        return "user_id must be a decimal number 1..2^48-1";
    if (in->method[0] != '\0' && strcmp(in->method, "card") != 0)
        return "method must be \"card\"";
    if (!rsv_card_token_valid(in->card_token))
        return "card_token must be 1..255 characters of letters, digits, '_' or '-'";
    if (!rsv_key_valid(in->idempotency_key))
        return "idempotency_key is required: 1..255 printable characters";
    return NULL;
}

void rsv_on_pay(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct reservation_service *svc = ctx;
    struct pay_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    TK_ASSERT(job != NULL);
    *job = (struct pay_job){.svc = svc, .call = call, .request = (const Tiketi__V1__PayRequest *)message};
    const char *why = check_pay(job);
    if (why != NULL) {
        rsv_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "%s", why);
        return;
    }
    rsv_id_format(job->event_id, job->hold_id, job->id);
    rsv_uuid_format(job->event_id, job->hold_id, job->uuid);
    rsv_log_fields(job->log_fields, sizeof(job->log_fields), rpc_call_request_id(call), job->id);
    rsv_submit(svc, call, pay_run, job);
}
