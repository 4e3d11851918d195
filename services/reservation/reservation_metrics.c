/* reservation_metrics.c — reservation-svc's Prometheus lines (the per-method gRPC
 * metrics, client side included, come from the rpc layer). Names are listed in
 * docs/services/reservation.md. */
#include <stdio.h>

#include "reservation.h"

static const char *const hold_names[RSV_HOLD_OUTCOMES] = {"ok",           "replayed", "seat_unavailable",
                                                          "not_admitted", "seat_cap_reached", "rejected",
                                                          "error"};
static const char *const step_names[RSV_STEPS] = {"charge", "confirm", "release", "refund", "return_seats"};
static const char *const step_outcome_names[RSV_STEP_OUTCOMES] = {"done", "diverted", "unknown", "anomaly"};

static uint64_t load(_Atomic uint64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

static void counter(FILE *out, const char *name, const char *help, _Atomic uint64_t *value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
            (unsigned long long)load(value));
}

void rsv_metrics_write(FILE *out, void *ctx)
{
    struct reservation_service *svc = ctx;
    struct rsv_metrics *m = &svc->metrics;
    fprintf(out, "# HELP tiketi_reservation_holds_total CreateHold calls by how they ended.\n"
                 "# TYPE tiketi_reservation_holds_total counter\n");
    for (int i = 0; i < RSV_HOLD_OUTCOMES; i++)
        fprintf(out, "tiketi_reservation_holds_total{outcome=\"%s\"} %llu\n", hold_names[i],
                (unsigned long long)load(&m->holds[i]));
    fprintf(out, "# HELP tiketi_reservation_saga_steps_total Saga steps by step and outcome.\n"
                 "# TYPE tiketi_reservation_saga_steps_total counter\n");
    for (int s = 0; s < RSV_STEPS; s++)
        for (int o = 0; o < RSV_STEP_OUTCOMES; o++)
            fprintf(out, "tiketi_reservation_saga_steps_total{step=\"%s\",outcome=\"%s\"} %llu\n", step_names[s],
                    step_outcome_names[o], (unsigned long long)load(&m->steps[s][o]));
    if (atomic_load_explicit(&m->saga_states_known, memory_order_acquire)) {
        fprintf(out, "# HELP tiketi_reservation_sagas Sagas by state (as of the last recovery round).\n"
                     "# TYPE tiketi_reservation_sagas gauge\n");
        for (int s = 0; s < RSV_SAGA_STATES; s++)
            fprintf(out, "tiketi_reservation_sagas{state=\"%s\"} %lld\n", rsv_saga_state_names[s],
                    (long long)atomic_load_explicit(&m->saga_states[s], memory_order_relaxed));
    }
    counter(out, "tiketi_reservation_compensations_total", "Holds released after a declined payment.",
            &m->compensations);
    counter(out, "tiketi_reservation_expired_refunds_total", "Charges refunded because the hold ended first.",
            &m->expired_refunds);
    counter(out, "tiketi_reservation_cancellations_total", "Confirmed reservations cancelled and refunded.",
            &m->cancellations);
    counter(out, "tiketi_reservation_second_guard_total",
            "Confirmations the database's one-sale-per-seat index refused.", &m->second_guard);
    counter(out, "tiketi_reservation_recovery_rounds_total", "Recovery rounds run.", &m->recovery_rounds);
    counter(out, "tiketi_reservation_recovery_sagas_total", "Sagas the recovery loop took up.", &m->recovery_sagas);
    counter(out, "tiketi_reservation_pending_cache_errors_total", "Pending-hold records Redis did not serve.",
            &m->pending_cache_errors);
}
