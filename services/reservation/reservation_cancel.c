/* reservation_cancel.c — Reservations/CancelReservation.
 *
 * A confirmed reservation is cancelled in one guarded transaction (confirmed ->
 * cancelling: its seats stop counting as sold in PostgreSQL, the time is noted),
 * then the saga refunds the payment through payment-svc (the reservation's
 * refund key) and gives every seat back to the engine (ReturnSeat), and ends
 * cancelled. Once 'cancelling' is written the cancellation is decided: if
 * payment-svc does not answer, the call says UNAVAILABLE and the recovery loop
 * finishes it. If the refund is refused for good, nothing was given back yet, so
 * the sale simply stands again (cancelling -> confirmed) and the call says
 * refund_failed. Cancelling a cancelled reservation answers it again. */
#include <string.h>

#include "reservation.h"
#include "rpc_log.h"
#include "tk_assert.h"

struct cancel_job {
    struct reservation_service *svc;
    struct rpc_call *call;
    struct rsv_ref ref;
};

static void reply_record(struct cancel_job *job, const struct rsv_record *record)
{
    Tiketi__V1__Reservation *reply = rsv_reply_from_record(rpc_call_arena(job->call), record);
    if (reply == NULL)
        rsv_fail(job->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached", "the reply does not fit in memory");
    else
        rpc_reply(job->call, &reply->base);
}

/* Not in PostgreSQL: a pending hold of the caller's (not cancellable), or nothing. */
static void answer_missing(struct cancel_job *job)
{
    struct rsv_budget budget = rsv_budget_for(job->call, job->svc->config->engine_timeout_ms);
    Tiketi__V1__HoldReply *hold = NULL;
    struct rpc_error error;
    if (rsv_engine_get_hold(job->svc, job->ref.event_id, job->ref.user_id, job->ref.hold_id, &budget, &hold, &error) ==
        GRPC_STATUS_OK) {
        protobuf_c_message_free_unpacked(&hold->base, NULL);
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "reservation_not_confirmed",
                 "the reservation is a pending hold: release it instead");
        return;
    }
    rsv_fail(job->call, GRPC_STATUS_NOT_FOUND, "not_found", "no such reservation");
}

static void answer(struct cancel_job *job, const struct rsv_record *record, const struct rsv_drive_result *drive,
                   bool started_here)
{
    if (strcmp(record->state, "cancelled") == 0) {
        reply_record(job, record);
    } else if (strcmp(record->state, "cancelling") == 0) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "payment_unavailable",
                 "the cancellation is recorded and completes once the refund goes through (%s)",
                 drive->error.message[0] ? drive->error.message : "payment-svc did not answer");
    } else if (strcmp(record->state, "confirmed") == 0 && started_here) {
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "refund_failed",
                 "the refund was refused, so the reservation stays confirmed (%s)", record->outcome);
    } else {
        rsv_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "reservation_not_confirmed",
                 "the reservation is %s: only a confirmed reservation can be cancelled", record->status);
    }
}

static void cancel_locked(struct cancel_job *job, struct svc_worker *worker)
{
    struct rsv_record record;
    char err[256];
    enum rsv_store_result stored =
        rsv_store_load(worker->pg, job->ref.uuid, job->ref.user_id, &record, err, sizeof(err));
    if (stored == RSV_STORE_NOT_FOUND) {
        answer_missing(job);
        return;
    }
    if (stored != RSV_STORE_OK) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database failed; retry");
        return;
    }
    bool started_here = false;
    if (strcmp(record.state, "confirmed") == 0) {
        stored = rsv_store_transition(worker->pg, job->ref.uuid, RSV_T_CANCEL_BEGIN, NULL, NULL, err, sizeof(err));
        if (stored != RSV_STORE_OK && stored != RSV_STORE_RACED) {
            rpc_log(RPC_LOG_ERROR, "", "reservation %s: cannot begin the cancellation: %s", job->ref.uuid, err);
            rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database failed; retry");
            return;
        }
        started_here = stored == RSV_STORE_OK;
        if (rsv_store_load(worker->pg, job->ref.uuid, job->ref.user_id, &record, err, sizeof(err)) != RSV_STORE_OK) {
            rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database failed; retry");
            return;
        }
    }
    struct rsv_drive_result drive = {0};
    if (strcmp(record.state, "cancelling") == 0) {
        const struct reservation_config *config = job->svc->config;
        struct rsv_budget budget = rsv_budget_for(job->call, config->payment_timeout_ms +
                                                                 (TK_SEATS_PER_HOLD_MAX + 1) * config->engine_timeout_ms);
        rsv_saga_drive(job->svc, worker->pg, &record, &budget, rpc_call_request_id(job->call), &drive);
    }
    answer(job, &record, &drive, started_here);
}

static void cancel_run(struct svc_worker *worker, void *ctx)
{
    struct cancel_job *job = ctx;
    if (!rsv_worker_pg(worker, job->call))
        return;
    if (!rsv_store_lock_within(worker->pg, job->ref.uuid, RSV_LOCK_WAIT_MS)) {
        rsv_fail(job->call, GRPC_STATUS_UNAVAILABLE, "payment_in_progress",
                 "this reservation's payment is being processed; retry");
        return;
    }
    cancel_locked(job, worker);
    rsv_store_unlock(worker->pg, job->ref.uuid);
}

void rsv_on_cancel(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    const Tiketi__V1__ReservationRef *in = (const Tiketi__V1__ReservationRef *)message;
    struct cancel_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    TK_ASSERT(job != NULL);
    *job = (struct cancel_job){.svc = ctx, .call = call};
    if (rsv_ref_parse(call, in, &job->ref))
        rsv_submit(job->svc, call, cancel_run, job);
}
