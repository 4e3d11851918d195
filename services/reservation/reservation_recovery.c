/* reservation_recovery.c — the loop that brings every saga to a resting state.
 *
 * At start, then every --recovery-interval-ms, one thread with its own
 * PostgreSQL connection takes up to --recovery-batch sagas that are not resting
 * (paying, charged, compensating, refunding, cancelling) and whose
 * next_attempt_at has come, and drives each (reservation_saga.c) under the
 * reservation's advisory lock. A saga a live request is driving is skipped (the
 * lock is taken) and looked at next round. After a crash nothing else is needed:
 * the locks died with the old process's connections, every step repeats safely
 * (idempotency keys on the engine and payment-svc, SQL guarded by state), and a
 * step whose outcome is still unknown backs off (doubling, capped). The first
 * round runs while the service already serves: a hung gateway must not keep the
 * service from starting, and the locks keep a Pay and the loop apart.
 *
 * The same round refreshes the per-state saga gauge for /metrics. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reservation.h"
#include "rpc_log.h"
#include "tk_assert.h"

#define RECOVERY_BATCH_MAX 10000u

struct rsv_recovery {
    struct reservation_service *svc;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    PGconn *pg;
    char (*due)[RSV_UUID_BYTES];
};

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    rpc_log(RPC_LOG_DEBUG, "", "postgres: %s", message);
}

static bool connected(struct rsv_recovery *recovery)
{
    if (recovery->pg != NULL && PQstatus(recovery->pg) == CONNECTION_OK)
        return true;
    if (recovery->pg != NULL)
        PQfinish(recovery->pg);
    recovery->pg = PQconnectdb(recovery->svc->config->database_url);
    if (PQstatus(recovery->pg) == CONNECTION_OK) {
        PQsetNoticeProcessor(recovery->pg, quiet_notices, NULL);
        return true;
    }
    rpc_log(RPC_LOG_WARN, "", "recovery: cannot connect to PostgreSQL: %s", PQerrorMessage(recovery->pg));
    return false;
}

static bool stopping(struct rsv_recovery *recovery)
{
    pthread_mutex_lock(&recovery->lock);
    bool stop = recovery->stop;
    pthread_mutex_unlock(&recovery->lock);
    return stop;
}

/* Drives one saga if nobody else is. */
static void recover_one(struct rsv_recovery *recovery, const char *uuid)
{
    struct reservation_service *svc = recovery->svc;
    if (!rsv_store_try_lock(recovery->pg, uuid))
        return; /* a request is driving it right now */
    struct rsv_record record;
    char err[256];
    if (rsv_store_load(recovery->pg, uuid, 0, &record, err, sizeof(err)) == RSV_STORE_OK) {
        char from[RSV_STATE_BYTES];
        snprintf(from, sizeof(from), "%s", record.state);
        struct rsv_budget budget = rsv_budget_for(NULL, svc->config->payment_timeout_ms +
                                                            (TK_SEATS_PER_HOLD_MAX + 2) * svc->config->engine_timeout_ms);
        struct rsv_drive_result drive;
        rsv_count(&svc->metrics.recovery_sagas);
        rsv_saga_drive(svc, recovery->pg, &record, &budget, "recovery", &drive);
        if (strcmp(from, record.state) != 0)
            rpc_log(RPC_LOG_INFO, "", "recovery: saga %s moved from %s to %s%s", uuid, from, record.state,
                    drive.stopped ? " (not finished yet)" : "");
    } else {
        rpc_log(RPC_LOG_WARN, "", "recovery: cannot read saga %s: %s", uuid, err);
    }
    rsv_store_unlock(recovery->pg, uuid);
}

static void round_run(struct rsv_recovery *recovery)
{
    struct reservation_service *svc = recovery->svc;
    if (!connected(recovery))
        return;
    int64_t counts[RSV_SAGA_STATES];
    if (rsv_store_saga_counts(recovery->pg, counts)) {
        for (int s = 0; s < RSV_SAGA_STATES; s++)
            atomic_store_explicit(&svc->metrics.saga_states[s], counts[s], memory_order_relaxed);
        atomic_store_explicit(&svc->metrics.saga_states_known, true, memory_order_release);
    }
    int due = rsv_store_due(recovery->pg, recovery->due, svc->config->recovery_batch);
    for (int i = 0; i < due && !stopping(recovery); i++)
        recover_one(recovery, recovery->due[i]);
    rsv_count(&svc->metrics.recovery_rounds);
}

static void *recovery_main(void *arg)
{
    struct rsv_recovery *recovery = arg;
    uint32_t interval_ms = recovery->svc->config->recovery_interval_ms;
    for (;;) {
        round_run(recovery);
        pthread_mutex_lock(&recovery->lock);
        if (!recovery->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += interval_ms / 1000;
            until.tv_nsec += (long)(interval_ms % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&recovery->wake, &recovery->lock, &until);
        }
        bool stop = recovery->stop;
        pthread_mutex_unlock(&recovery->lock);
        if (stop)
            return NULL;
    }
}

struct rsv_recovery *rsv_recovery_start(struct reservation_service *svc)
{
    TK_ASSERT(svc != NULL && svc->config->recovery_batch >= 1 && svc->config->recovery_batch <= RECOVERY_BATCH_MAX);
    struct rsv_recovery *recovery = calloc(1, sizeof(*recovery));
    TK_ASSERT(recovery != NULL);
    recovery->svc = svc;
    recovery->due = calloc(svc->config->recovery_batch, sizeof(*recovery->due));
    TK_ASSERT(recovery->due != NULL);
    pthread_mutex_init(&recovery->lock, NULL);
    pthread_cond_init(&recovery->wake, NULL);
    int rc = pthread_create(&recovery->thread, NULL, recovery_main, recovery);
    TK_ASSERT(rc == 0);
    return recovery;
}

void rsv_recovery_stop(struct rsv_recovery *recovery)
{
    if (recovery == NULL)
        return;
    pthread_mutex_lock(&recovery->lock);
    recovery->stop = true;
    pthread_cond_signal(&recovery->wake);
    pthread_mutex_unlock(&recovery->lock);
    pthread_join(recovery->thread, NULL); /* a saga being driven finishes its step first */
    if (recovery->pg != NULL)
        PQfinish(recovery->pg);
    pthread_mutex_destroy(&recovery->lock);
    pthread_cond_destroy(&recovery->wake);
    free(recovery->due);
    free(recovery);
}
