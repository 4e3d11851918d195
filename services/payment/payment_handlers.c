/* payment_handlers.c — the tiketi.v1.Payments method table, GetPayment, and what
 * the handlers share.
 *
 * Handlers run on completion-queue threads and never block: they check the
 * request, then hand a job (allocated in the call's arena, which lives until the
 * answer) to the worker pool; the job talks to PostgreSQL and the gateway and
 * answers with rpc_reply / rpc_fail. A full queue is answered at once with
 * RESOURCE_EXHAUSTED "overloaded". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "payment.h"
#include "payment_mask.h"
#include "payment_store.h"
#include "rpc_log.h"
#include "tiketi/v1/payment.pb-c.h"
#include "tk_assert.h"

void payment_fail(struct rpc_call *call, grpc_status_code code, const char *name, const char *fmt, ...)
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

int64_t payment_budget_ms(struct rpc_call *call)
{
    int64_t left = rpc_call_deadline_ms(call);
    return left == INT64_MAX ? INT64_MAX : left - PAYMENT_DEADLINE_MARGIN_MS;
}

void payment_log_fields(char *out, size_t out_len, struct rpc_call *call, const char *payment_id)
{
    /* both are checked ids (request ids by the rpc layer, payment ids are UUIDs): no escaping needed */
    snprintf(out, out_len, "\"request_id\":\"%s\",\"payment_id\":\"%s\"", rpc_call_request_id(call),
             payment_id != NULL ? payment_id : "");
}

void payment_count(_Atomic uint64_t *counters, enum payment_outcome outcome)
{
    TK_ASSERT(outcome < PAYMENT_OUTCOMES);
    atomic_fetch_add_explicit(&counters[outcome], 1, memory_order_relaxed);
}

Tiketi__V1__ChargeReply *payment_charge_reply(struct rpc_arena *arena, const struct payment_record *record,
                                              bool replayed)
{
    Tiketi__V1__ChargeReply *reply = rpc_arena_alloc(arena, sizeof(*reply));
    struct payment_record *copy = rpc_arena_alloc(arena, sizeof(*copy)); /* the strings outlive the job */
    TK_ASSERT(reply != NULL && copy != NULL); /* a few hundred bytes of a fresh arena */
    *copy = *record;
    tiketi__v1__charge_reply__init(reply);
    reply->payment_id = copy->id;
    reply->status = copy->status;
    reply->decline_reason = copy->decline_reason;
    reply->amount_cents = (uint64_t)copy->amount_cents;
    reply->currency = copy->currency;
    reply->reservation_id = copy->reservation_id;
    reply->refunded_cents = (uint64_t)copy->refunded_cents;
    reply->gateway_ref = copy->gateway_ref;
    reply->replayed = replayed;
    return reply;
}

/* ---- GetPayment ---- */

struct get_job {
    struct rpc_call *call;
    const Tiketi__V1__PaymentRef *request;
};

static void get_run(struct svc_worker *worker, void *ctx)
{
    struct get_job *job = ctx;
    if (!svc_worker_pg_ok(worker)) {
        payment_fail(job->call, GRPC_STATUS_UNAVAILABLE, "storage_unavailable", "the payments database is unavailable");
        return;
    }
    struct payment_record record;
    struct payment_store_error error;
    enum payment_store_status status = payment_store_get(worker->pg, job->request->payment_id, &record, &error);
    if (status == PAYMENT_STORE_NOT_FOUND) {
        payment_fail(job->call, GRPC_STATUS_NOT_FOUND, "payment_not_found", "no such payment");
        return;
    }
    if (status != PAYMENT_STORE_OK) {
        payment_fail(job->call, GRPC_STATUS_UNAVAILABLE, "storage_unavailable", "%s", error.message);
        return;
    }
    Tiketi__V1__ChargeReply *reply = payment_charge_reply(rpc_call_arena(job->call), &record, false);
    rpc_reply(job->call, &reply->base);
}

void payment_on_get(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct payment_service *svc = ctx;
    const Tiketi__V1__PaymentRef *request = (const Tiketi__V1__PaymentRef *)message;
    if (!payment_uuid_valid(request->payment_id)) {
        payment_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "payment_id must be a UUID");
        return;
    }
    struct get_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    TK_ASSERT(job != NULL);
    *job = (struct get_job){.call = call, .request = request};
    if (svc_workers_submit(svc->workers, get_run, job) != TK_OK)
        payment_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "overloaded", "too many payment calls waiting; retry");
}

/* ---- the method table ---- */

const struct rpc_method payment_methods[] = {
    {"/tiketi.v1.Payments/Charge", &tiketi__v1__charge_request__descriptor, payment_on_charge, false},
    {"/tiketi.v1.Payments/Refund", &tiketi__v1__refund_request__descriptor, payment_on_refund, false},
    {"/tiketi.v1.Payments/GetPayment", &tiketi__v1__payment_ref__descriptor, payment_on_get, false},
};
const uint32_t payment_method_count = sizeof(payment_methods) / sizeof(payment_methods[0]);
