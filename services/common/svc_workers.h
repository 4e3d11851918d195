/* svc_workers.h — a bounded pool of worker threads for blocking work.
 *
 * gRPC handlers must not block a completion-queue thread, but PostgreSQL
 * (libpq) and Redis (hiredis) calls block. So a handler submits a job; a worker
 * runs it with its own database and cache connections (one of each per worker,
 * opened at start, reopened after a failure) and answers the call. The queue is
 * bounded: when it is full the submit fails and the handler answers
 * RESOURCE_EXHAUSTED at once rather than queueing without limit. */
#ifndef SVC_WORKERS_H
#define SVC_WORKERS_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "tk_status.h"

struct svc_workers;

struct svc_worker {
    uint32_t index;
    PGconn *pg;          /* NULL when the pool has no database */
    redisContext *redis; /* NULL when the pool has no cache */
    struct svc_workers *pool;
};

typedef void (*svc_job_fn)(struct svc_worker *worker, void *ctx);

struct svc_workers_config {
    uint32_t threads;     /* also the number of PostgreSQL connections */
    uint32_t queue_max;   /* jobs waiting */
    const char *pg_url;   /* NULL or "": no database */
    const char *redis_url; /* NULL or "": no cache; "redis://host:port" or "host:port" */
    uint32_t redis_timeout_ms;
};

/* Connects every worker (PostgreSQL and Redis given) before returning; err says
 * which connection failed and why (never the password). */
enum tk_status svc_workers_start(struct svc_workers **out, const struct svc_workers_config *config, char *err,
                                 size_t err_len);
/* TK_ERR_FULL when the queue is at its bound. */
enum tk_status svc_workers_submit(struct svc_workers *pool, svc_job_fn fn, void *ctx);
/* Runs what is queued, then stops the threads and closes the connections. */
void svc_workers_stop(struct svc_workers *pool);

/* Makes sure the worker's connections are usable (reconnects once if not). */
bool svc_worker_pg_ok(struct svc_worker *worker);
bool svc_worker_redis_ok(struct svc_worker *worker);

#endif
