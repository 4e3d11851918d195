/* auth_housekeeping.c — keeps the throttle and token tables from growing without bound.
 *
 * Every --housekeeping-s a job on the worker pool deletes login_failures rows
 * whose window and lock have both passed (an attack from many addresses leaves
 * one row per address) and refresh_tokens rows that expired more than a day ago
 * (until then a reused token is still recognised as such). Each statement
 * deletes at most HOUSEKEEPING_BATCH rows, so one pass is short; a backlog
 * shrinks pass by pass. At most one pass is queued or running at a time. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "rpc_log.h"
#include "tk_assert.h"

#define HOUSEKEEPING_BATCH "10000"

struct auth_housekeeping {
    struct auth_service *service;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    _Atomic bool busy; /* a pass is queued or running */
    struct auth_job job;
};

static struct auth_housekeeping housekeeping; /* one per process */

static long delete_batch(struct auth_job *job, const char *sql, const char *window)
{
    const char *params[1] = {window};
    PGresult *r = auth_db_exec(job, sql, window ? 1 : 0, window ? params : NULL, NULL, NULL);
    if (r == NULL)
        return -1;
    long n = atol(PQcmdTuples(r));
    PQclear(r);
    return n;
}

static void housekeeping_pass(struct svc_worker *worker, void *ctx)
{
    struct auth_housekeeping *h = ctx;
    struct auth_job *job = &h->job;
    memset(job, 0, sizeof(*job));
    job->service = h->service;
    job->worker = worker;
    char window[16];
    snprintf(window, sizeof(window), "%u", h->service->config->login_window_s);
    long failures = delete_batch(job,
                                 "DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures"
                                 " WHERE window_start < now() - make_interval(secs => $1::int)"
                                 "   AND (locked_until IS NULL OR locked_until < now()) LIMIT " HOUSEKEEPING_BATCH ")",
                                 window);
    long tokens = failures < 0 ? -1
                               : delete_batch(job,
                                              "DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens"
                                              " WHERE expires_at < now() - interval '1 day' LIMIT " HOUSEKEEPING_BATCH
                                              ")",
                                              NULL);
    if (tokens > 0 || failures > 0)
        rpc_log(RPC_LOG_INFO, "", "housekeeping: %ld stale login-failure rows and %ld expired refresh tokens deleted",
                failures, tokens);
    atomic_store(&h->busy, false);
}

static void *housekeeping_main(void *arg)
{
    struct auth_housekeeping *h = arg;
    uint32_t period_s = h->service->config->housekeeping_s;
    TK_ASSERT(period_s > 0);
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += period_s;
        while (!h->stop && pthread_cond_timedwait(&h->wake, &h->lock, &until) == 0) {
        }
        if (h->stop)
            break;
        if (!atomic_exchange(&h->busy, true) &&
            svc_workers_submit(h->service->workers, housekeeping_pass, h) != TK_OK)
            atomic_store(&h->busy, false); /* the queue is full: next period */
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

struct auth_housekeeping *auth_housekeeping_start(struct auth_service *service)
{
    TK_ASSERT(service != NULL && service->workers != NULL);
    if (service->config->housekeeping_s == 0)
        return NULL;
    struct auth_housekeeping *h = &housekeeping;
    memset(h, 0, sizeof(*h));
    h->service = service;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    int rc = pthread_create(&h->thread, NULL, housekeeping_main, h);
    TK_ASSERT(rc == 0);
    return h;
}

/* Stops the timer; a pass already queued still runs when the workers drain. */
void auth_housekeeping_stop(struct auth_housekeeping *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
}
