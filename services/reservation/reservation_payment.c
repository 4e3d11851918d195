/* reservation_payment.c — the tiketi.v1.Payments calls of the saga.
 *
 * The idempotency keys are derived from the reservation (rsv_charge_key,
 * rsv_refund_key), never from a request: a Pay retried with another key, the
 * recovery loop after a crash, and two replicas racing all name the same charge
 * and the same refund, and payment-svc (and the gateway behind it) execute each
 * at most once. So every call here may be repeated; it is not repeated at once,
 * though: payment-svc answers UNAVAILABLE after it already waited out the gateway
 * (or at once when its circuit is open), so the saga records the unknown outcome
 * and a later Pay or the recovery loop asks again. */
#include <stdio.h>
#include <string.h>

#include "reservation.h"
#include "tk_assert.h"

#define PAYMENTS(method) "/tiketi.v1.Payments/" method

static bool budget_ok(const struct rsv_budget *budget, uint32_t step_ms, int64_t *timeout_ms,
                      struct rpc_error *error)
{
    *timeout_ms = rsv_budget_call_ms(budget, step_ms);
    if (*timeout_ms > 0)
        return true;
    memset(error, 0, sizeof(*error));
    error->code = GRPC_STATUS_DEADLINE_EXCEEDED;
    snprintf(error->name, sizeof(error->name), "payment_unavailable");
    snprintf(error->message, sizeof(error->message), "no time left to call payment-svc");
    return false;
}

grpc_status_code rsv_payment_charge(struct reservation_service *svc, const struct rsv_charge *charge,
                                    const struct rsv_budget *budget, char payment_id[RSV_UUID_BYTES],
                                    char *status, size_t status_len, struct rpc_error *error)
{
    TK_ASSERT(charge->uuid != NULL && charge->amount_cents > 0 && charge->user_id != 0);
    TK_ASSERT(charge->card_token != NULL && charge->card_token[0] != '\0');
    payment_id[0] = '\0';
    status[0] = '\0';
    int64_t timeout_ms;
    if (!budget_ok(budget, svc->config->payment_timeout_ms, &timeout_ms, error))
        return error->code;
    char key[RSV_DERIVED_KEY_BYTES], user[24];
    rsv_charge_key(charge->uuid, key);
    snprintf(user, sizeof(user), "%llu", (unsigned long long)charge->user_id);
    Tiketi__V1__ChargeRequest request = TIKETI__V1__CHARGE_REQUEST__INIT;
    request.reservation_id = (char *)charge->uuid;
    request.user_id = user;
    request.amount_cents = charge->amount_cents;
    request.currency = (char *)svc->config->currency;
    request.card_token = (char *)charge->card_token;
    request.idempotency_key = key;
    struct rpc_call_options options = {.timeout_ms = timeout_ms}; /* no retry here: see the top */
    Tiketi__V1__ChargeReply *reply = NULL;
    grpc_status_code code = rpc_unary(svc->payment, PAYMENTS("Charge"), &request.base,
                                      &tiketi__v1__charge_reply__descriptor, NULL, (ProtobufCMessage **)&reply,
                                      &options, error);
    if (code != GRPC_STATUS_OK) {
        if (error->name[0] == '\0') /* no trailer: payment-svc did not answer at all */
            snprintf(error->name, sizeof(error->name), "payment_unavailable");
        return code;
    }
    if (strnlen(reply->payment_id, RSV_UUID_BYTES) != RSV_UUID_BYTES - 1) {
        memset(error, 0, sizeof(*error));
        code = error->code = GRPC_STATUS_INTERNAL;
        snprintf(error->name, sizeof(error->name), "payment_unavailable");
        snprintf(error->message, sizeof(error->message), "payment-svc answered without a payment id");
    } else {
        memcpy(payment_id, reply->payment_id, RSV_UUID_BYTES);
        snprintf(status, status_len, "%s", reply->status);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return code;
}

grpc_status_code rsv_payment_refund(struct reservation_service *svc, const char *uuid, const char *payment_id,
                                    const struct rsv_budget *budget, char *status, size_t status_len,
                                    struct rpc_error *error)
{
    TK_ASSERT(uuid != NULL && payment_id != NULL && payment_id[0] != '\0');
    status[0] = '\0';
    int64_t timeout_ms;
    if (!budget_ok(budget, svc->config->payment_timeout_ms, &timeout_ms, error))
        return error->code;
    char key[RSV_DERIVED_KEY_BYTES];
    rsv_refund_key(uuid, key);
    Tiketi__V1__RefundRequest request = TIKETI__V1__REFUND_REQUEST__INIT;
    request.payment_id = (char *)payment_id;
    request.amount_cents = 0; /* everything not yet refunded */
    request.idempotency_key = key;
    struct rpc_call_options options = {.timeout_ms = timeout_ms}; /* no retry here: see the top */
    Tiketi__V1__RefundReply *reply = NULL;
    grpc_status_code code = rpc_unary(svc->payment, PAYMENTS("Refund"), &request.base,
                                      &tiketi__v1__refund_reply__descriptor, NULL, (ProtobufCMessage **)&reply,
                                      &options, error);
    if (code != GRPC_STATUS_OK) {
        if (error->name[0] == '\0')
            snprintf(error->name, sizeof(error->name), "payment_unavailable");
        return code;
    }
    snprintf(status, status_len, "%s", reply->status);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return code;
}
