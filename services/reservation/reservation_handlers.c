/* reservation_handlers.c — the tiketi.v1.Reservations method table and what the
 * handlers share: answers, job submission, replies built from stored rows and
 * pending holds, time budgets.
 *
 * Handlers run on completion-queue threads and never block: they check the
 * request, then hand a job (allocated in the call's arena, which lives until the
 * answer) to the worker pool; the job calls the engine, payment-svc, PostgreSQL
 * and Redis and answers with rpc_reply / rpc_fail. A full queue is answered at
 * once with RESOURCE_EXHAUSTED "overloaded". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "reservation.h"
#include "tk_assert.h"

void rsv_fail(struct rpc_call *call, grpc_status_code code, const char *name, const char *fmt, ...)
{
    TK_ASSERT(code != GRPC_STATUS_OK && name != NULL);
    struct rpc_error error = {.code = code};
    snprintf(error.name, sizeof(error.name), "%s", name);
    va_list args;
    va_start(args, fmt);
    vsnprintf(error.message, sizeof(error.message), fmt, args);
    va_end(args);
    rpc_fail(call, &error);
}

void rsv_submit(struct reservation_service *svc, struct rpc_call *call, svc_job_fn fn, void *ctx)
{
    TK_ASSERT(fn != NULL && ctx != NULL);
    if (svc_workers_submit(svc->workers, fn, ctx) != TK_OK)
        rsv_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "overloaded", "too many reservation calls waiting; retry");
}

bool rsv_ref_parse(struct rpc_call *call, const Tiketi__V1__ReservationRef *in, struct rsv_ref *out)
{
    *out = (struct rsv_ref){0};
    if (!rsv_parse_id(in->user_id, RSV_USER_ID_MAX, &out->user_id)) {
        rsv_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "user_id must be a decimal number");
        return false;
    }
    if (!rsv_id_parse(in->reservation_id, &out->event_id, &out->hold_id)) {
        rsv_fail(call, GRPC_STATUS_NOT_FOUND, "not_found", "no such reservation");
        return false;
    }
    rsv_id_format(out->event_id, out->hold_id, out->id);
    rsv_uuid_format(out->event_id, out->hold_id, out->uuid);
    return true;
}

bool rsv_worker_pg(struct svc_worker *worker, struct rpc_call *call)
{
    if (svc_worker_pg_ok(worker))
        return true;
    rsv_fail(call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the reservations database is unavailable; retry");
    return false;
}

void rsv_log_fields(char *out, size_t out_len, const char *request_id, const char *reservation_id)
{
    /* request ids are checked by the rpc layer, reservation ids are ours: no escaping needed */
    snprintf(out, out_len, "\"request_id\":\"%s\",\"reservation_id\":\"%s\"", request_id ? request_id : "",
             reservation_id ? reservation_id : "");
}

/* ---- time ---- */

int64_t rsv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rsv_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct rsv_budget rsv_budget_for(struct rpc_call *call, uint32_t limit_ms)
{
    int64_t left = limit_ms;
    if (call != NULL) {
        int64_t deadline = rpc_call_deadline_ms(call);
        if (deadline != INT64_MAX && deadline - RSV_DEADLINE_MARGIN_MS < left)
            left = deadline - RSV_DEADLINE_MARGIN_MS;
    }
    return (struct rsv_budget){.until_ms = rsv_monotonic_ms() + (left > 0 ? left : 0)};
}

int64_t rsv_budget_call_ms(const struct rsv_budget *budget, uint32_t step_ms)
{
    TK_ASSERT(budget != NULL && step_ms > 0);
    int64_t left = budget->until_ms - rsv_monotonic_ms();
    if (left < RSV_CALL_MS_MIN)
        return 0;
    return left < (int64_t)step_ms ? left : (int64_t)step_ms;
}

/* ---- replies ---- */

static char **seat_ids_out(struct rpc_arena *arena, const uint32_t *seats, uint32_t count)
{
    char **ids = rpc_arena_alloc(arena, (count ? count : 1) * sizeof(*ids));
    for (uint32_t i = 0; ids != NULL && i < count; i++) {
        char text[16];
        snprintf(text, sizeof(text), "%u", seats[i]);
        if ((ids[i] = rpc_arena_strdup(arena, text)) == NULL)
            return NULL;
    }
    return ids;
}

static char *time_out(struct rpc_arena *arena, int64_t ms)
{
    char text[RSV_TIME_BYTES] = "";
    if (ms > 0) /* 0: not known (a pending hold whose Redis record is gone) */
        rsv_format_time(ms, text);
    return rpc_arena_strdup(arena, text);
}

static char *id_text(struct rpc_arena *arena, uint64_t id)
{
    char text[24];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)id);
    return rpc_arena_strdup(arena, text);
}

Tiketi__V1__Reservation *rsv_reply_from_record(struct rpc_arena *arena, const struct rsv_record *record)
{
    TK_ASSERT(record->event_id != 0);
    Tiketi__V1__Reservation *reply = rpc_arena_alloc(arena, sizeof(*reply));
    char id[RSV_ID_BYTES];
    if (reply == NULL)
        return NULL;
    tiketi__v1__reservation__init(reply);
    rsv_id_format(record->event_id, record->hold_id, id);
    const char *status = rsv_api_status(record->status);
    reply->reservation_id = rpc_arena_strdup(arena, id);
    reply->event_id = id_text(arena, record->event_id);
    reply->seat_ids = seat_ids_out(arena, record->seats, record->seat_count);
    reply->n_seat_ids = record->seat_count;
    reply->status = (char *)(status != NULL ? status : "pending");
    reply->state = rpc_arena_strdup(arena, record->status);
    reply->amount_cents = record->amount_cents;
    reply->expires_at = time_out(arena, record->expires_ms);
    reply->created_at = time_out(arena, record->created_ms);
    reply->payment_id = rpc_arena_strdup(arena, record->payment_id);
    bool complete = reply->reservation_id && reply->event_id && reply->seat_ids && reply->state &&
                    reply->expires_at && reply->created_at && reply->payment_id;
    return complete ? reply : NULL;
}

Tiketi__V1__Reservation *rsv_reply_from_pending(struct rpc_arena *arena, const char *reservation_id,
                                                const struct rsv_pending *pending)
{
    Tiketi__V1__Reservation *reply = rpc_arena_alloc(arena, sizeof(*reply));
    if (reply == NULL)
        return NULL;
    tiketi__v1__reservation__init(reply);
    reply->reservation_id = rpc_arena_strdup(arena, reservation_id);
    reply->event_id = id_text(arena, pending->event_id);
    reply->seat_ids = seat_ids_out(arena, pending->seats, pending->seat_count);
    reply->n_seat_ids = pending->seat_count;
    reply->status = (char *)"pending";
    reply->state = (char *)"pending";
    reply->amount_cents = pending->amount_cents;
    reply->expires_at = time_out(arena, pending->expires_ms);
    reply->created_at = time_out(arena, pending->created_ms);
    reply->payment_id = (char *)"";
    bool complete = reply->reservation_id && reply->event_id && reply->seat_ids && reply->expires_at &&
                    reply->created_at;
    return complete ? reply : NULL;
}

/* ---- the method table ---- */

const struct rpc_method reservation_methods[] = {
    {"/tiketi.v1.Reservations/CreateHold", &tiketi__v1__create_hold_request__descriptor, rsv_on_create_hold, false},
    {"/tiketi.v1.Reservations/ReleaseHold", &tiketi__v1__reservation_ref__descriptor, rsv_on_release_hold, false},
    {"/tiketi.v1.Reservations/Pay", &tiketi__v1__pay_request__descriptor, rsv_on_pay, false},
    {"/tiketi.v1.Reservations/GetReservation", &tiketi__v1__reservation_ref__descriptor, rsv_on_get, false},
    {"/tiketi.v1.Reservations/ListReservations", &tiketi__v1__list_reservations_request__descriptor, rsv_on_list,
     false},
    {"/tiketi.v1.Reservations/CancelReservation", &tiketi__v1__reservation_ref__descriptor, rsv_on_cancel, false},
};
const uint32_t reservation_method_count = sizeof(reservation_methods) / sizeof(reservation_methods[0]);
