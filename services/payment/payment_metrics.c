/* payment_metrics.c — payment-svc's Prometheus lines (the per-method gRPC
 * metrics come from the rpc layer). Names are listed in docs/services/payment.md. */
#include <stdio.h>

#include "payment.h"

static const char *const outcome_names[PAYMENT_OUTCOMES] = {"approved",    "declined", "failed",
                                                            "unavailable", "rejected", "error"};

static void outcomes(FILE *out, const char *name, const char *help, _Atomic uint64_t *counters, const char *ok_name)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int i = 0; i < PAYMENT_OUTCOMES; i++)
        fprintf(out, "%s{outcome=\"%s\"} %llu\n", name, i == PAYMENT_OUTCOME_APPROVED ? ok_name : outcome_names[i],
                (unsigned long long)atomic_load_explicit(&counters[i], memory_order_relaxed));
}

void payment_metrics_write(FILE *out, void *ctx)
{
    struct payment_service *svc = ctx;
    payment_gateway_metrics_write(out, svc->gateway);
    outcomes(out, "tiketi_payment_charges_total", "Charge calls by how they ended.", svc->charges, "approved");
    outcomes(out, "tiketi_payment_refunds_total", "Refund calls by how they ended.", svc->refunds, "succeeded");
    fprintf(out, "# HELP tiketi_payment_replays_total Calls answered from an earlier call with the same key.\n"
                 "# TYPE tiketi_payment_replays_total counter\ntiketi_payment_replays_total %llu\n",
            (unsigned long long)atomic_load_explicit(&svc->replays, memory_order_relaxed));
}
