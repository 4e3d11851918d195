/* payment.h — payment-svc's shared state (internal). */
#ifndef PAYMENT_H
#define PAYMENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "payment_config.h"
#include "payment_gateway.h"
#include "rpc_server.h"
#include "svc_workers.h"
#include "tiketi/v1/payment.pb-c.h"

struct payment_record;

#define PAYMENT_AMOUNT_CENTS_MAX 100000000ll /* one payment: at most 1 000 000.00 */
#define PAYMENT_DEADLINE_MARGIN_MS 100       /* left for the database after the gateway */

/* How a Charge or Refund call ended, for the metrics. */
enum payment_outcome {
    PAYMENT_OUTCOME_APPROVED, /* a refund: succeeded */
    PAYMENT_OUTCOME_DECLINED,
    PAYMENT_OUTCOME_FAILED,
    PAYMENT_OUTCOME_UNAVAILABLE,
    PAYMENT_OUTCOME_REJECTED, /* bad input, unknown ids, key reuse */
    PAYMENT_OUTCOME_ERROR,    /* database */
    PAYMENT_OUTCOMES
};

struct payment_service {
    const struct payment_config *config;
    struct svc_workers *workers;
    struct payment_gateway *gateway;
    _Atomic uint64_t charges[PAYMENT_OUTCOMES];
    _Atomic uint64_t refunds[PAYMENT_OUTCOMES];
    _Atomic uint64_t replays;
};

/* The tiketi.v1.Payments method table (payment_handlers.c). */
extern const struct rpc_method payment_methods[];
extern const uint32_t payment_method_count;

/* payment_handlers.c: shared by the handlers. */
void payment_fail(struct rpc_call *call, grpc_status_code code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Time the gateway may take for this call: the client's deadline less a margin. */
int64_t payment_budget_ms(struct rpc_call *call);
/* "\"request_id\":\"...\",\"payment_id\":\"...\"" for rpc_log. */
void payment_log_fields(char *out, size_t out_len, struct rpc_call *call, const char *payment_id);
void payment_count(_Atomic uint64_t *counters, enum payment_outcome outcome);
/* A ChargeReply for record, built in the call's arena. */
Tiketi__V1__ChargeReply *payment_charge_reply(struct rpc_arena *arena, const struct payment_record *record,
                                              bool replayed);

/* payment_charge.c, payment_refund.c, payment_handlers.c: the handlers. */
void payment_on_charge(struct rpc_call *call, const ProtobufCMessage *message, void *ctx);
void payment_on_refund(struct rpc_call *call, const ProtobufCMessage *message, void *ctx);
void payment_on_get(struct rpc_call *call, const ProtobufCMessage *message, void *ctx);

/* payment_metrics.c: the service's Prometheus lines. */
void payment_metrics_write(FILE *out, void *ctx);

#endif
