/* reservation_saga.c — the payment saga's steps (reservation.h).
 *
 * The saga of a reservation is its row in sagas; each state names the one step
 * that comes next, and each step is safe to repeat:
 *
 *   paying       Charge (key derived from the reservation)   approved -> charged
 *                                                            declined -> compensating
 *   charged      engine Confirm (key = reservation id)       sold     -> confirmed  (seats sold in PostgreSQL)
 *                                                            hold gone-> refunding
 *   compensating engine Release                              -> released  (reservation released)
 *   refunding    Refund (key derived from the reservation)   -> refunded  (reservation expired)
 *   cancelling   Refund, then ReturnSeat for each seat       -> cancelled (refund refused: back to confirmed)
 *
 * confirmed, released, refunded and cancelled are resting states (a confirmed
 * one moves again only when cancelled). A step whose outcome is unknown (a
 * timeout, an open circuit, an engine that does not answer) changes nothing but
 * the saga's attempt count and next_attempt_at: the next Pay, or the recovery
 * loop, repeats it with the same keys, so a charge, a confirmation and a refund
 * each happen once however often they are asked for. Every move is one guarded
 * transaction (reservation_store.c), and the caller holds the reservation's
 * advisory lock, so one driver at a time moves a saga. */
#include <stdio.h>
#include <string.h>

#include "reservation.h"
#include "rpc_log.h"
#include "tk_assert.h"

const char *const rsv_saga_state_names[RSV_SAGA_STATES] = {"paying",   "charged",   "confirmed",
                                                            "compensating", "released", "refunding",
                                                            "refunded", "cancelling", "cancelled"};

int rsv_saga_state_index(const char *state)
{
    for (int i = 0; state != NULL && i < RSV_SAGA_STATES; i++)
        if (strcmp(state, rsv_saga_state_names[i]) == 0)
            return i;
    return -1;
}

static bool resting(const char *state)
{
    return strcmp(state, "confirmed") == 0 || strcmp(state, "released") == 0 || strcmp(state, "refunded") == 0 ||
           strcmp(state, "cancelled") == 0;
}

struct saga {
    struct reservation_service *svc;
    PGconn *pg;
    struct rsv_record *record;
    const struct rsv_budget *budget;
    struct rsv_drive_result *result;
    char log_fields[256];
};

enum step_end { STEP_MOVED, STEP_STOP };

static void step_count(struct saga *saga, enum rsv_step step, enum rsv_step_outcome outcome)
{
    rsv_count(&saga->svc->metrics.steps[step][outcome]);
}

static void set_error(struct rpc_error *error, grpc_status_code code, const char *name, const char *message)
{
    memset(error, 0, sizeof(*error));
    error->code = code;
    snprintf(error->name, sizeof(error->name), "%s", name);
    snprintf(error->message, sizeof(error->message), "%s", message);
}

/* The step did not finish: note why (the saga waits, backing off) and stop. */
static enum step_end stop(struct saga *saga, enum rsv_step step, enum rsv_step_outcome outcome,
                          const struct rpc_error *error)
{
    TK_ASSERT(outcome == RSV_STEP_UNKNOWN || outcome == RSV_STEP_ANOMALY);
    step_count(saga, step, outcome);
    saga->result->error = *error;
    saga->result->stopped = true;
    char note[RSV_NOTE_BYTES];
    snprintf(note, sizeof(note), "%.47s: %.250s", error->name[0] ? error->name : rpc_code_name(error->code),
             error->message);
    const struct reservation_config *config = saga->svc->config;
    rsv_store_note_attempt(saga->pg, saga->record->uuid, note, config->recovery_interval_ms,
                           config->recovery_backoff_max_ms);
    rpc_log(outcome == RSV_STEP_ANOMALY ? RPC_LOG_ERROR : RPC_LOG_WARN, saga->log_fields,
            "saga %s: step of '%s' did not finish (%s): %s", saga->record->uuid, saga->record->state,
            rpc_code_name(error->code), note);
    return STEP_STOP;
}

/* Moves the saga (one guarded transaction) and re-reads the record. */
static enum step_end move(struct saga *saga, enum rsv_step step, enum rsv_step_outcome outcome,
                          enum rsv_transition transition, const char *payment_id, const char *note)
{
    char err[256] = "", from[RSV_STATE_BYTES];
    snprintf(from, sizeof(from), "%s", saga->record->state);
    enum rsv_store_result stored = rsv_store_transition(saga->pg, saga->record->uuid, transition, payment_id, note,
                                                        err, sizeof(err));
    struct rpc_error error;
    if (stored == RSV_STORE_CONFLICT) {
        /* The second guard: PostgreSQL already has one of these seats sold. The
         * engine and the database disagree; nothing is moved, an operator looks. */
        rsv_count(&saga->svc->metrics.second_guard);
        set_error(&error, GRPC_STATUS_ABORTED, "seat_unavailable",
                  "a seat of this reservation is already sold (database guard); the sale is held for review");
        return stop(saga, step, RSV_STEP_ANOMALY, &error);
    }
    if (stored != RSV_STORE_OK && stored != RSV_STORE_RACED) {
        /* REFUSED: a CHECK or the transition trigger said no, which the graph here never asks for. */
        set_error(&error, GRPC_STATUS_UNAVAILABLE, "unavailable", err);
        return stop(saga, step, stored == RSV_STORE_REFUSED ? RSV_STEP_ANOMALY : RSV_STEP_UNKNOWN, &error);
    }
    if (stored == RSV_STORE_OK)
        step_count(saga, step, outcome);
    /* RACED: somebody moved it (an operator: drivers hold the lock); carry on from where it is. */
    enum rsv_store_result loaded = rsv_store_load(saga->pg, saga->record->uuid, 0, saga->record, err, sizeof(err));
    if (loaded != RSV_STORE_OK) {
        set_error(&error, GRPC_STATUS_UNAVAILABLE, "unavailable", err);
        saga->result->error = error;
        saga->result->stopped = true;
        return STEP_STOP;
    }
    if (note != NULL && note[0] != '\0')
        rpc_log(RPC_LOG_INFO, saga->log_fields, "saga %s: %s -> %s (%s)", saga->record->uuid, from,
                saga->record->state, note);
    else
        rpc_log(RPC_LOG_INFO, saga->log_fields, "saga %s: %s -> %s", saga->record->uuid, from, saga->record->state);
    return STEP_MOVED;
}

static bool named(const struct rpc_error *error, const char *name)
{
    return strcmp(error->name, name) == 0;
}

static enum step_end step_charge(struct saga *saga)
{
    struct rsv_record *r = saga->record;
    struct rpc_error error;
    if (r->amount_cents == 0) /* free seats: nothing to charge */
        return move(saga, RSV_STEP_CHARGE, RSV_STEP_DONE, RSV_T_CHARGED, NULL, NULL);
    if (r->card_token[0] == '\0') {
        set_error(&error, GRPC_STATUS_INTERNAL, "internal", "no card token is kept for this undecided charge");
        return stop(saga, RSV_STEP_CHARGE, RSV_STEP_ANOMALY, &error);
    }
    struct rsv_charge charge = {.uuid = r->uuid, .user_id = r->user_id, .amount_cents = r->amount_cents,
                                .card_token = r->card_token};
    char payment_id[RSV_UUID_BYTES], status[32], note[RSV_NOTE_BYTES];
    grpc_status_code code = rsv_payment_charge(saga->svc, &charge, saga->budget, payment_id, status, sizeof(status),
                                               &error);
    if (code == GRPC_STATUS_OK && strcmp(status, "approved") == 0)
        return move(saga, RSV_STEP_CHARGE, RSV_STEP_DONE, RSV_T_CHARGED, payment_id, NULL);
    if (code == GRPC_STATUS_OK) { /* pending: the gateway has not decided; "refunded" would be someone else's doing */
        set_error(&error, GRPC_STATUS_UNAVAILABLE, "payment_unavailable", "the payment is not decided yet");
        return stop(saga, RSV_STEP_CHARGE, strcmp(status, "pending") == 0 ? RSV_STEP_UNKNOWN : RSV_STEP_ANOMALY,
                    &error);
    }
    if (code == GRPC_STATUS_FAILED_PRECONDITION && (named(&error, "payment_declined") || named(&error, "payment_failed"))) {
        snprintf(note, sizeof(note), "%.47s: %.250s", error.name, error.message);
        return move(saga, RSV_STEP_CHARGE, RSV_STEP_DIVERTED, RSV_T_DECLINED, NULL, note);
    }
    bool anomaly = code == GRPC_STATUS_FAILED_PRECONDITION || code == GRPC_STATUS_INVALID_ARGUMENT ||
                   code == GRPC_STATUS_NOT_FOUND;
    if (!anomaly && error.name[0] == '\0')
        snprintf(error.name, sizeof(error.name), "payment_unavailable");
    return stop(saga, RSV_STEP_CHARGE, anomaly ? RSV_STEP_ANOMALY : RSV_STEP_UNKNOWN, &error);
}

static enum step_end step_confirm(struct saga *saga)
{
    struct rsv_record *r = saga->record;
    char key[RSV_ID_BYTES], note[RSV_NOTE_BYTES];
    rsv_id_format(r->event_id, r->hold_id, key);
    struct rpc_error error;
    grpc_status_code code = rsv_engine_confirm(saga->svc, r->event_id, r->user_id, r->hold_id, key, saga->budget,
                                               &error);
    if (code == GRPC_STATUS_OK)
        return move(saga, RSV_STEP_CONFIRM, RSV_STEP_DONE, RSV_T_CONFIRMED, NULL, NULL);
    bool hold_lost = code == GRPC_STATUS_NOT_FOUND ||
                     (code == GRPC_STATUS_FAILED_PRECONDITION &&
                      (named(&error, "hold_expired") || named(&error, "not_owner") || named(&error, "event_closed")));
    if (hold_lost) {
        snprintf(note, sizeof(note), "hold_expired: %.250s", error.message);
        return move(saga, RSV_STEP_CONFIRM, RSV_STEP_DIVERTED, RSV_T_HOLD_LOST, NULL, note);
    }
    bool anomaly = code == GRPC_STATUS_FAILED_PRECONDITION || code == GRPC_STATUS_INVALID_ARGUMENT;
    return stop(saga, RSV_STEP_CONFIRM, anomaly ? RSV_STEP_ANOMALY : RSV_STEP_UNKNOWN, &error);
}

static enum step_end step_release(struct saga *saga)
{
    struct rsv_record *r = saga->record;
    struct rpc_error error;
    grpc_status_code code = rsv_engine_release(saga->svc, r->event_id, r->user_id, r->hold_id, saga->budget, &error);
    /* Gone already (expired, or released by an earlier attempt): the seats are free either way. */
    if (code == GRPC_STATUS_OK || code == GRPC_STATUS_NOT_FOUND ||
        (code == GRPC_STATUS_FAILED_PRECONDITION && (named(&error, "hold_expired") || named(&error, "not_owner")))) {
        rsv_count(&saga->svc->metrics.compensations);
        return move(saga, RSV_STEP_RELEASE, RSV_STEP_DONE, RSV_T_RELEASED, NULL, NULL);
    }
    return stop(saga, RSV_STEP_RELEASE, code == GRPC_STATUS_INVALID_ARGUMENT ? RSV_STEP_ANOMALY : RSV_STEP_UNKNOWN,
                &error);
}

/* Refunds the charge. true: refunded (or nothing was charged). false: error filled, and *failure
 * RSV_STEP_UNKNOWN (no answer: ask again later) or RSV_STEP_ANOMALY (refused for good). */
static bool refund(struct saga *saga, enum rsv_step_outcome *failure, struct rpc_error *error)
{
    struct rsv_record *r = saga->record;
    if (r->payment_id[0] == '\0' && r->amount_cents == 0)
        return true;
    if (r->payment_id[0] == '\0') {
        set_error(error, GRPC_STATUS_INTERNAL, "internal", "a charged reservation without a payment id");
        *failure = RSV_STEP_ANOMALY;
        return false;
    }
    char status[32];
    grpc_status_code code = rsv_payment_refund(saga->svc, r->uuid, r->payment_id, saga->budget, status,
                                               sizeof(status), error);
    if (code == GRPC_STATUS_OK && strcmp(status, "succeeded") == 0)
        return true;
    if (code == GRPC_STATUS_OK) {
        set_error(error, GRPC_STATUS_UNAVAILABLE, "payment_unavailable", "the refund is not decided yet");
        *failure = RSV_STEP_UNKNOWN;
        return false;
    }
    *failure = code == GRPC_STATUS_FAILED_PRECONDITION || code == GRPC_STATUS_INVALID_ARGUMENT ||
                       code == GRPC_STATUS_NOT_FOUND
                   ? RSV_STEP_ANOMALY /* refused: see the callers */
                   : RSV_STEP_UNKNOWN;
    if (*failure == RSV_STEP_UNKNOWN && error->name[0] == '\0')
        snprintf(error->name, sizeof(error->name), "payment_unavailable");
    return false;
}

static enum step_end step_refund_expired(struct saga *saga)
{
    struct rpc_error error;
    enum rsv_step_outcome failure;
    if (!refund(saga, &failure, &error))
        return stop(saga, RSV_STEP_REFUND, failure, &error); /* a refused refund waits for an operator */
    rsv_count(&saga->svc->metrics.expired_refunds);
    return move(saga, RSV_STEP_REFUND, RSV_STEP_DONE, RSV_T_REFUNDED, NULL, NULL);
}

/* ReturnSeat for every seat not bought again since; true when all are back. */
static bool return_seats(struct saga *saga, struct rpc_error *error)
{
    struct rsv_record *r = saga->record;
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
    int count = rsv_store_seats_to_return(saga->pg, r, seats);
    if (count < 0) {
        set_error(error, GRPC_STATUS_UNAVAILABLE, "unavailable", "the database did not list the seats");
        return false;
    }
    for (int i = 0; i < count; i++) {
        grpc_status_code code = rsv_engine_return_seat(saga->svc, r->event_id, r->user_id, seats[i], saga->budget,
                                                       error);
        /* NOT_FOUND: not sold (any more); not_owner: another buyer has it since. Both: already returned. */
        if (code != GRPC_STATUS_OK && code != GRPC_STATUS_NOT_FOUND &&
            !(code == GRPC_STATUS_FAILED_PRECONDITION && named(error, "not_owner")))
            return false;
    }
    return true;
}

static enum step_end step_cancel(struct saga *saga)
{
    struct rpc_error error;
    enum rsv_step_outcome failure;
    char note[RSV_NOTE_BYTES];
    if (!refund(saga, &failure, &error)) {
        if (failure == RSV_STEP_UNKNOWN)
            return stop(saga, RSV_STEP_REFUND, failure, &error);
        /* Refused for good: the seats were not returned, so the sale simply stands. */
        snprintf(note, sizeof(note), "refund_failed: %.250s", error.message);
        return move(saga, RSV_STEP_REFUND, RSV_STEP_DIVERTED, RSV_T_CANCEL_ABORT, NULL, note);
    }
    if (!return_seats(saga, &error))
        return stop(saga, RSV_STEP_RETURN, error.code == GRPC_STATUS_INVALID_ARGUMENT ? RSV_STEP_ANOMALY
                                                                                      : RSV_STEP_UNKNOWN,
                    &error);
    step_count(saga, RSV_STEP_REFUND, RSV_STEP_DONE);
    rsv_count(&saga->svc->metrics.cancellations);
    return move(saga, RSV_STEP_RETURN, RSV_STEP_DONE, RSV_T_CANCELLED, NULL, NULL);
}

void rsv_saga_drive(struct reservation_service *svc, PGconn *pg, struct rsv_record *record,
                    const struct rsv_budget *budget, const char *request_id, struct rsv_drive_result *result)
{
    TK_ASSERT(svc != NULL && pg != NULL && record != NULL && result != NULL);
    memset(result, 0, sizeof(*result));
    struct saga saga = {.svc = svc, .pg = pg, .record = record, .budget = budget, .result = result};
    char id[RSV_ID_BYTES];
    rsv_id_format(record->event_id, record->hold_id, id);
    rsv_log_fields(saga.log_fields, sizeof(saga.log_fields), request_id != NULL ? request_id : "", id);
    for (uint32_t i = 0; i < RSV_SAGA_STEPS_MAX && !resting(record->state); i++) {
        enum step_end end;
        if (strcmp(record->state, "paying") == 0)
            end = step_charge(&saga);
        else if (strcmp(record->state, "charged") == 0)
            end = step_confirm(&saga);
        else if (strcmp(record->state, "compensating") == 0)
            end = step_release(&saga);
        else if (strcmp(record->state, "refunding") == 0)
            end = step_refund_expired(&saga);
        else if (strcmp(record->state, "cancelling") == 0)
            end = step_cancel(&saga);
        else {
            set_error(&result->error, GRPC_STATUS_INTERNAL, "internal", "the reservation has no saga state");
            result->stopped = true;
            rpc_log(RPC_LOG_ERROR, saga.log_fields, "saga %s: unknown state '%s'", record->uuid, record->state);
            return;
        }
        if (end == STEP_STOP)
            return;
    }
    if (!resting(record->state)) { /* more moves than the longest path has: a cycle, i.e. a bug */
        set_error(&result->error, GRPC_STATUS_INTERNAL, "internal", "the saga did not settle");
        result->stopped = true;
        rpc_log(RPC_LOG_ERROR, saga.log_fields, "saga %s: no resting state after %u steps (in '%s')", record->uuid,
                RSV_SAGA_STEPS_MAX, record->state);
    }
}
