/* payment_charge.c — Payments/Charge: prepare + approve at the gateway.
 *
 * The caller's idempotency key names one payment row; the gateway keys are
 * derived from that row's id ("tiketi-pay-<id>-prepare" / "-confirm"), so every
 * retry of a Charge, by the client or by this service, sends the gateway the
 * same keys and the gateway executes each step at most once. Order:
 *   1. open the row (new: pending; known and finished: answer what it says)
 *   2. breaker open: fail fast, UNAVAILABLE payment_unavailable (row stays pending)
 *   3. prepare (POST /v1/payment_intents) unless the row already has the intent id
 *   4. confirm (POST /v1/payment_intents/{id}/confirm): approved or declined
 * Whenever the outcome is unknown (timeouts, 5xx, circuit open) the row stays
 * pending and the client is told to retry with the same key. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payment.h"
#include "payment_mask.h"
#include "payment_store.h"
#include "rpc_log.h"
#include "tk_assert.h"

#define GATEWAY_KEY_BYTES 96u
#define GATEWAY_REF_BYTES_MAX 100u

struct charge_job {
    struct payment_service *svc;
    struct rpc_call *call;
    const Tiketi__V1__ChargeRequest *request;
    struct payment_charge_input input;
    char currency[4];
    char card_hint[PAYMENT_CARD_HINT_BYTES];
    char log_fields[256];
    uint32_t worker;
};

static void unavailable(struct charge_job *job, const char *why)
{
    payment_count(job->svc->charges, PAYMENT_OUTCOME_UNAVAILABLE);
    rpc_log(RPC_LOG_WARN, job->log_fields, "charge pending: %s (card %s)", why, job->card_hint);
    payment_fail(job->call, GRPC_STATUS_UNAVAILABLE, "payment_unavailable",
                 "the card gateway is unavailable (%s); the payment is pending: retry with the same idempotency key",
                 why);
}

static void storage_error(struct charge_job *job, const struct payment_store_error *error)
{
    payment_count(job->svc->charges, PAYMENT_OUTCOME_ERROR);
    rpc_log(RPC_LOG_ERROR, job->log_fields, "charge: %s", error->message);
    payment_fail(job->call, GRPC_STATUS_UNAVAILABLE, "storage_unavailable",
                 "the payments database is unavailable; retry with the same idempotency key");
}

/* Answers for a row that reached an end (approved, declined, failed, refunded). */
static void answer_final(struct charge_job *job, const struct payment_record *record, bool replayed)
{
    if (replayed)
        atomic_fetch_add_explicit(&job->svc->replays, 1, memory_order_relaxed);
    if (strcmp(record->status, "approved") == 0 || strcmp(record->status, "refunded") == 0) {
        payment_count(job->svc->charges, PAYMENT_OUTCOME_APPROVED);
        rpc_log(RPC_LOG_INFO, job->log_fields, "charge %s: %lld %s (card %s)%s", record->status,
                (long long)record->amount_cents, record->currency, job->card_hint, replayed ? " [replayed]" : "");
        rpc_reply(job->call, &payment_charge_reply(rpc_call_arena(job->call), record, replayed)->base);
    } else if (strcmp(record->status, "declined") == 0) {
        payment_count(job->svc->charges, PAYMENT_OUTCOME_DECLINED);
        rpc_log(RPC_LOG_INFO, job->log_fields, "charge declined: %s (card %s)", record->decline_reason,
                job->card_hint);
        payment_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "payment_declined", "the card was declined: %s",
                     record->decline_reason[0] ? record->decline_reason : "declined");
    } else {
        TK_ASSERT(strcmp(record->status, "failed") == 0);
        payment_count(job->svc->charges, PAYMENT_OUTCOME_FAILED);
        rpc_log(RPC_LOG_WARN, job->log_fields, "charge failed: %s (card %s)", record->decline_reason, job->card_hint);
        payment_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "payment_failed", "the gateway refused the payment: %s",
                     record->decline_reason);
    }
}

/* Moves the row to its end and answers. */
static void finish(struct charge_job *job, PGconn *pg, const char *id, const char *status, const char *reason)
{
    struct payment_record record;
    struct payment_store_error error;
    if (payment_store_finish(pg, id, status, reason, &record, &error) != PAYMENT_STORE_OK) {
        storage_error(job, &error);
        return;
    }
    if (strcmp(record.status, "pending") == 0) { /* cannot be: finish only moves pending rows */
        unavailable(job, "the payment row did not move");
        return;
    }
    answer_final(job, &record, false);
}

static void audit(struct charge_job *job, PGconn *pg, const char *payment_id, enum payment_op op, const char *key,
                  const struct payment_gateway_reply *reply)
{
    struct payment_store_error error;
    if (payment_store_add_attempts(pg, payment_id, NULL, op, key, reply, &error) != PAYMENT_STORE_OK)
        rpc_log(RPC_LOG_WARN, job->log_fields, "could not record the gateway attempts: %s", error.message);
}

static bool gateway_ref_valid(const char *ref)
{
    size_t n = ref != NULL ? strnlen(ref, GATEWAY_REF_BYTES_MAX + 1) : 0;
    if (n == 0 || n > GATEWAY_REF_BYTES_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((ref[i] >= 'a' && ref[i] <= 'z') || (ref[i] >= 'A' && ref[i] <= 'Z') ||
              (ref[i] >= '0' && ref[i] <= '9') || ref[i] == '_' || ref[i] == '-'))
            return false;
    return true;
}

/* Step 3. true: the intent id is in record->gateway_ref; false: answered. */
static bool prepare(struct charge_job *job, struct svc_worker *worker, struct payment_record *record)
{
    char key[GATEWAY_KEY_BYTES];
    snprintf(key, sizeof(key), "tiketi-pay-%s-prepare", record->id);
    json_t *body = json_pack("{s:I,s:s,s:s,s:{s:s,s:s}}", "amount", (json_int_t)record->amount_cents, "currency",
                             record->currency, "card_token", job->request->card_token, "metadata", "payment_id",
                             record->id, "reservation_id", record->reservation_id);
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    TK_ASSERT(text != NULL);
    struct payment_gateway_reply reply;
    payment_gateway_post(job->svc->gateway, job->worker, PAYMENT_OP_PREPARE, "/v1/payment_intents", key, text,
                         payment_budget_ms(job->call), rpc_call_request_id(job->call), &reply);
    free(text);
    audit(job, worker->pg, record->id, PAYMENT_OP_PREPARE, key, &reply);
    bool prepared = false;
    const char *intent = json_string_value(json_object_get(reply.body, "id"));
    switch (reply.result) {
    case PAYMENT_GATEWAY_OK:
        if (!gateway_ref_valid(intent)) {
            unavailable(job, "the gateway answered without a payment intent id");
            break;
        }
        struct payment_store_error error;
        if (payment_store_set_prepared(worker->pg, record->id, intent, &error) != PAYMENT_STORE_OK) {
            storage_error(job, &error);
            break;
        }
        snprintf(record->gateway_ref, sizeof(record->gateway_ref), "%s", intent);
        prepared = true;
        break;
    case PAYMENT_GATEWAY_DECLINED:
        finish(job, worker->pg, record->id, "declined", reply.decline_code[0] ? reply.decline_code : reply.error_code);
        break;
    case PAYMENT_GATEWAY_REJECTED:
        if (strcmp(reply.error_code, "idempotency_key_reused") == 0) {
            payment_count(job->svc->charges, PAYMENT_OUTCOME_REJECTED);
            payment_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "idempotency_key_reused",
                         "this idempotency key's payment was started with other card details; use a new key");
        } else {
            finish(job, worker->pg, record->id, "failed", reply.message);
        }
        break;
    case PAYMENT_GATEWAY_UNAVAILABLE:
    case PAYMENT_GATEWAY_SHORT_CIRCUITED:
        unavailable(job, reply.message);
        break;
    }
    payment_gateway_reply_release(&reply);
    return prepared;
}

/* Step 4: always answers. */
static void confirm(struct charge_job *job, struct svc_worker *worker, const struct payment_record *record)
{
    char key[GATEWAY_KEY_BYTES], path[160];
    snprintf(key, sizeof(key), "tiketi-pay-%s-confirm", record->id);
    TK_ASSERT(gateway_ref_valid(record->gateway_ref)); /* checked before it was stored */
    snprintf(path, sizeof(path), "/v1/payment_intents/%s/confirm", record->gateway_ref);
    struct payment_gateway_reply reply;
    payment_gateway_post(job->svc->gateway, job->worker, PAYMENT_OP_CONFIRM, path, key, "{}",
                         payment_budget_ms(job->call), rpc_call_request_id(job->call), &reply);
    audit(job, worker->pg, record->id, PAYMENT_OP_CONFIRM, key, &reply);
    const char *state = json_string_value(json_object_get(reply.body, "status"));
    switch (reply.result) {
    case PAYMENT_GATEWAY_OK:
        if (state != NULL && strcmp(state, "succeeded") == 0)
            finish(job, worker->pg, record->id, "approved", NULL);
        else
            unavailable(job, "the gateway has not finished the payment yet");
        break;
    case PAYMENT_GATEWAY_DECLINED:
        finish(job, worker->pg, record->id, "declined",
               reply.decline_code[0] ? reply.decline_code : (reply.error_code[0] ? reply.error_code : "declined"));
        break;
    case PAYMENT_GATEWAY_REJECTED:
        finish(job, worker->pg, record->id, "failed", reply.message);
        break;
    case PAYMENT_GATEWAY_UNAVAILABLE:
    case PAYMENT_GATEWAY_SHORT_CIRCUITED:
        unavailable(job, reply.message);
        break;
    }
    payment_gateway_reply_release(&reply);
}

static void charge_open_failed(struct charge_job *job, enum payment_store_status status,
                               const struct payment_store_error *error)
{
    switch (status) {
    case PAYMENT_STORE_NOT_FOUND:
        payment_count(job->svc->charges, PAYMENT_OUTCOME_REJECTED);
        payment_fail(job->call, GRPC_STATUS_NOT_FOUND, "reservation_not_found", "no such reservation or user");
        return;
    case PAYMENT_STORE_MISMATCH:
        payment_count(job->svc->charges, PAYMENT_OUTCOME_REJECTED);
        payment_fail(job->call, GRPC_STATUS_FAILED_PRECONDITION, "idempotency_key_reused", "%s", error->message);
        return;
    default:
        storage_error(job, error);
        return;
    }
}

static void charge_run(struct svc_worker *worker, void *ctx)
{
    struct charge_job *job = ctx;
    job->worker = worker->index;
    payment_log_fields(job->log_fields, sizeof(job->log_fields), job->call, "");
    if (!svc_worker_pg_ok(worker)) {
        struct payment_store_error error = {.message = "no database connection"};
        storage_error(job, &error);
        return;
    }
    struct payment_record record;
    struct payment_store_error error;
    bool created = false;
    enum payment_store_status status = payment_store_open_charge(worker->pg, &job->input, &record, &created, &error);
    if (status != PAYMENT_STORE_OK) {
        charge_open_failed(job, status, &error);
        return;
    }
    payment_log_fields(job->log_fields, sizeof(job->log_fields), job->call, record.id);
    if (strcmp(record.status, "pending") != 0) {
        answer_final(job, &record, true);
        return;
    }
    if (!payment_gateway_available(job->svc->gateway)) {
        unavailable(job, "circuit breaker open");
        return;
    }
    if (record.gateway_ref[0] == '\0' && !prepare(job, worker, &record))
        return;
    confirm(job, worker, &record);
}

/* The checks that need nothing but the request; NULL if it is acceptable. */
static const char *check_request(const Tiketi__V1__ChargeRequest *request, struct charge_job *job)
{
    if (!payment_key_valid(request->idempotency_key))
        return "idempotency_key is required: 1..255 printable characters";
    if (!payment_uuid_valid(request->reservation_id))
        return "reservation_id must be a UUID";
    if (!payment_parse_user_id(request->user_id, &job->input.user_id))
        return "user_id must be a positive decimal number";
    if (request->amount_cents == 0 || request->amount_cents > (uint64_t)PAYMENT_AMOUNT_CENTS_MAX)
        return "amount_cents must be 1..100000000";
    if (!payment_currency_normalise(request->currency, job->currency))
        return "currency must be a 3-letter ISO 4217 code";
    if (!payment_token_valid(request->card_token))
        return "card_token must be 1..255 characters of letters, digits, '_' or '-'";
    return NULL;
}

void payment_on_charge(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct payment_service *svc = ctx;
    const Tiketi__V1__ChargeRequest *request = (const Tiketi__V1__ChargeRequest *)message;
    struct charge_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    TK_ASSERT(job != NULL);
    *job = (struct charge_job){.svc = svc, .call = call, .request = request};
    const char *why = check_request(request, job);
    if (why != NULL) {
        payment_count(svc->charges, PAYMENT_OUTCOME_REJECTED);
        payment_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "%s", why);
        return;
    }
    payment_mask_token(request->card_token, job->card_hint, sizeof(job->card_hint));
    job->input = (struct payment_charge_input){.reservation_id = request->reservation_id,
                                               .user_id = job->input.user_id,
                                               .amount_cents = (int64_t)request->amount_cents,
                                               .currency = job->currency,
                                               .idempotency_key = request->idempotency_key,
                                               .card_hint = job->card_hint};
    if (svc_workers_submit(svc->workers, charge_run, job) != TK_OK)
        payment_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "overloaded", "too many payment calls waiting; retry");
}
