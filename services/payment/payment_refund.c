/* payment_refund.c — Payments/Refund.
 *
 * Same shape as Charge: the caller's idempotency key names one refund row
 * (created pending under a row lock on the payment, so refunds never add up to
 * more than the payment), the gateway key is derived from the refund's id
 * ("tiketi-refund-<id>"), and an unknown outcome leaves the row pending for a
 * retry with the same key. The same key twice is one refund. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payment.h"
#include "payment_mask.h"
#include "payment_store.h"
#include "rpc_log.h"
#include "tk_assert.h"

struct refund_job {
    struct payment_service *svc;
    struct rpc_call *call;
    const Tiketi__V1__RefundRequest *request;
    char log_fields[256];
};

static void reply_refund(struct refund_job *job, const struct payment_refund_record *refund, bool replayed)
{
    struct rpc_arena *arena = rpc_call_arena(job->call);
    Tiketi__V1__RefundReply *reply = rpc_arena_alloc(arena, sizeof(*reply));
    struct payment_refund_record *copy = rpc_arena_alloc(arena, sizeof(*copy));
    TK_ASSERT(reply != NULL && copy != NULL);
    *copy = *refund;
    tiketi__v1__refund_reply__init(reply);
    reply->refund_id = copy->id;
    reply->status = copy->status;
    reply->payment_id = copy->payment_id;
    reply->amount_cents = (uint64_t)copy->amount_cents;
    reply->gateway_ref = copy->gateway_ref;
    reply->replayed = replayed;
    if (replayed)
        atomic_fetch_add_explicit(&job->svc->replays, 1, memory_order_relaxed);
    payment_count(job->svc->refunds, PAYMENT_OUTCOME_APPROVED);
    rpc_log(RPC_LOG_INFO, job->log_fields, "refund %s succeeded: %lld%s", refund->id, (long long)refund->amount_cents,
            replayed ? " [replayed]" : "");
    rpc_reply(job->call, &reply->base);
}

static void refund_failed(struct refund_job *job, const struct payment_refund_record *refund)
{
    payment_count(job->svc->refunds, PAYMENT_OUTCOME_FAILED);
    rpc_log(RPC_LOG_WARN, job->log_fields, "refund %s failed: %s", refund->id, refund->failure_reason);
    payment_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "refund_failed", "the gateway refused the refund: %s",
                 refund->failure_reason);
}

static void unavailable(struct refund_job *job, const char *why)
{
    payment_count(job->svc->refunds, PAYMENT_OUTCOME_UNAVAILABLE);
    rpc_log(RPC_LOG_WARN, job->log_fields, "refund pending: %s", why);
    payment_fail(job->call, GRPC_STATUS_UNAVAILABLE, "payment_unavailable",
                 "the card gateway is unavailable (%s); the refund is pending: retry with the same idempotency key",
                 why);
}

static void storage_error(struct refund_job *job, const struct payment_store_error *error)
{
    payment_count(job->svc->refunds, PAYMENT_OUTCOME_ERROR);
    rpc_log(RPC_LOG_ERROR, job->log_fields, "refund: %s", error->message);
    payment_fail(job->call, GRPC_STATUS_UNAVAILABLE, "storage_unavailable",
                 "the payments database is unavailable; retry with the same idempotency key");
}

static void open_failed(struct refund_job *job, enum payment_store_status status,
                        const struct payment_store_error *error)
{
    payment_count(job->svc->refunds, status == PAYMENT_STORE_DB_ERROR ? PAYMENT_OUTCOME_ERROR
                                                                      : PAYMENT_OUTCOME_REJECTED);
    switch (status) {
    case PAYMENT_STORE_NOT_FOUND:
        payment_fail(job->call, GRPC_STATUS_NOT_FOUND, "payment_not_found", "no such payment");
        return;
    case PAYMENT_STORE_MISMATCH:
    case PAYMENT_STORE_PRECONDITION:
        payment_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, error->code, "%s", error->message);
        return;
    default:
        storage_error(job, error);
        return;
    }
}

/* Calls the gateway for a pending refund and answers. */
static void refund_at_gateway(struct refund_job *job, struct svc_worker *worker, struct payment_refund_record *refund)
{
    char key[96];
    snprintf(key, sizeof(key), "tiketi-refund-%s", refund->id);
    json_t *body = json_pack("{s:s,s:I,s:{s:s,s:s}}", "payment_intent", refund->payment_gateway_ref, "amount",
                             (json_int_t)refund->amount_cents, "metadata", "payment_id", refund->payment_id,
                             "refund_id", refund->id);
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    TK_ASSERT(text != NULL);
    struct payment_gateway_reply reply;
    payment_gateway_post(job->svc->gateway, worker->index, PAYMENT_OP_REFUND, "/v1/refunds", key, text,
                         payment_budget_ms(job->call), rpc_call_request_id(job->call), &reply);
    free(text);
    struct payment_store_error error;
    if (payment_store_add_attempts(worker->pg, refund->payment_id, refund->id, PAYMENT_OP_REFUND, key, &reply,
                                   &error) != PAYMENT_STORE_OK)
        rpc_log(RPC_LOG_WARN, job->log_fields, "could not record the gateway attempts: %s", error.message);
    const char *gateway_ref = json_string_value(json_object_get(reply.body, "id"));
    enum payment_store_status status = PAYMENT_STORE_OK;
    switch (reply.result) {
    case PAYMENT_GATEWAY_OK:
        status = payment_store_finish_refund(worker->pg, refund, "succeeded", gateway_ref, NULL, &error);
        break;
    case PAYMENT_GATEWAY_DECLINED:
    case PAYMENT_GATEWAY_REJECTED:
        status = payment_store_finish_refund(worker->pg, refund, "failed", NULL,
                                             reply.error_code[0] ? reply.error_code : reply.message, &error);
        break;
    case PAYMENT_GATEWAY_UNAVAILABLE:
    case PAYMENT_GATEWAY_SHORT_CIRCUITED:
        unavailable(job, reply.message);
        payment_gateway_reply_release(&reply);
        return;
    }
    payment_gateway_reply_release(&reply);
    if (status != PAYMENT_STORE_OK)
        storage_error(job, &error);
    else if (strcmp(refund->status, "succeeded") == 0)
        reply_refund(job, refund, false);
    else
        refund_failed(job, refund);
}

static void refund_run(struct svc_worker *worker, void *ctx)
{
    struct refund_job *job = ctx;
    const Tiketi__V1__RefundRequest *request = job->request;
    payment_log_fields(job->log_fields, sizeof(job->log_fields), job->call, request->payment_id);
    if (!svc_worker_pg_ok(worker)) {
        struct payment_store_error error = {.message = "no database connection"};
        storage_error(job, &error);
        return;
    }
    struct payment_refund_record refund;
    struct payment_store_error error;
    bool created = false;
    enum payment_store_status status = payment_store_open_refund(
        worker->pg, request->payment_id, (int64_t)request->amount_cents, request->idempotency_key, &refund, &created,
        &error);
    if (status != PAYMENT_STORE_OK) {
        open_failed(job, status, &error);
        return;
    }
    if (strcmp(refund.status, "succeeded") == 0) {
        reply_refund(job, &refund, true);
        return;
    }
    if (strcmp(refund.status, "failed") == 0) {
        refund_failed(job, &refund);
        return;
    }
    if (!payment_gateway_available(job->svc->gateway)) {
        unavailable(job, "circuit breaker open");
        return;
    }
    refund_at_gateway(job, worker, &refund);
}

void payment_on_refund(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct payment_service *svc = ctx;
    const Tiketi__V1__RefundRequest *request = (const Tiketi__V1__RefundRequest *)message;
    const char *why = NULL;
    if (!payment_uuid_valid(request->payment_id))
        why = "payment_id must be a UUID";
    else if (!payment_key_valid(request->idempotency_key))
        why = "idempotency_key is required: 1..255 printable characters";
    else if (request->amount_cents > (uint64_t)PAYMENT_AMOUNT_CENTS_MAX)
        why = "amount_cents must be 0 (everything left) or 1..100000000";
    if (why != NULL) {
        payment_count(svc->refunds, PAYMENT_OUTCOME_REJECTED);
        payment_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "%s", why);
        return;
    }
    struct refund_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    TK_ASSERT(job != NULL);
    *job = (struct refund_job){.svc = svc, .call = call, .request = request};
    if (svc_workers_submit(svc->workers, refund_run, job) != TK_OK)
        payment_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "overloaded", "too many payment calls waiting; retry");
}
