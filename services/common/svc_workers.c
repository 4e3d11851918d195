/* svc_workers.c — bounded job queue and worker threads (svc_workers.h).
 *
 * A ring of job slots under one mutex with two condition variables: cheap next
 * to the database round trip each job makes. */
#include "svc_workers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_log.h"
#include "tk_assert.h"

#define WORKERS_MAX 256u

struct job {
    svc_job_fn fn;
    void *ctx;
};

struct svc_workers {
    struct svc_worker workers[WORKERS_MAX];
    pthread_t threads[WORKERS_MAX];
    uint32_t thread_count;
    struct job *queue;
    uint32_t queue_max, head, count;
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    bool stopping;
    char pg_url[1024];
    char redis_host[256];
    int redis_port;
    uint32_t redis_timeout_ms;
};

static bool parse_redis_url(const char *url, char *host, size_t host_len, int *port)
{
    const char *p = strncmp(url, "redis://", 8) == 0 ? url + 8 : url;
    const char *colon = strrchr(p, ':');
    if (colon == NULL || colon == p || (size_t)(colon - p) >= host_len)
        return false;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if ((*end != '\0' && *end != '/') || v <= 0 || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

static bool connect_pg(struct svc_workers *pool, struct svc_worker *w, char *err, size_t err_len)
{
    if (pool->pg_url[0] == '\0')
        return true;
    if (w->pg != NULL)
        PQfinish(w->pg);
    w->pg = PQconnectdb(pool->pg_url);
    if (PQstatus(w->pg) == CONNECTION_OK)
        return true;
    /* PQerrorMessage names host and reason, never the password. */
    snprintf(err, err_len, "PostgreSQL: %s", PQerrorMessage(w->pg));
    return false;
}

static bool connect_redis(struct svc_workers *pool, struct svc_worker *w, char *err, size_t err_len)
{
    if (pool->redis_host[0] == '\0')
        return true;
    if (w->redis != NULL)
        redisFree(w->redis);
    struct timeval timeout = {.tv_sec = pool->redis_timeout_ms / 1000,
                              .tv_usec = (pool->redis_timeout_ms % 1000) * 1000};
    w->redis = redisConnectWithTimeout(pool->redis_host, pool->redis_port, timeout);
    if (w->redis != NULL && w->redis->err == 0) {
        redisSetTimeout(w->redis, timeout);
        return true;
    }
    /* bounded parts: the message must fit err (256) whatever the host name */
    snprintf(err, err_len, "Redis %.96s:%d: %.128s", pool->redis_host, pool->redis_port,
             w->redis ? w->redis->errstr : "out of memory");
    return false;
}

bool svc_worker_pg_ok(struct svc_worker *worker)
{
    if (worker->pg == NULL)
        return false;
    if (PQstatus(worker->pg) == CONNECTION_OK)
        return true;
    PQreset(worker->pg);
    return PQstatus(worker->pg) == CONNECTION_OK;
}

bool svc_worker_redis_ok(struct svc_worker *worker)
{
    if (worker->redis != NULL && worker->redis->err == 0)
        return true;
    char err[256];
    return connect_redis(worker->pool, worker, err, sizeof(err));
}

static void *worker_main(void *arg)
{
    struct svc_worker *w = arg;
    struct svc_workers *pool = w->pool;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (pool->count == 0 && !pool->stopping)
            pthread_cond_wait(&pool->nonempty, &pool->lock);
        if (pool->count == 0) {
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
        struct job job = pool->queue[pool->head];
        pool->head = (pool->head + 1) % pool->queue_max;
        pool->count--;
        pthread_mutex_unlock(&pool->lock);
        job.fn(w, job.ctx);
    }
}

enum tk_status svc_workers_start(struct svc_workers **out, const struct svc_workers_config *config, char *err,
                                 size_t err_len)
{
    TK_ASSERT(out != NULL && config != NULL);
    TK_ASSERT(config->threads >= 1 && config->threads <= WORKERS_MAX && config->queue_max >= 1);
    struct svc_workers *pool = calloc(1, sizeof(*pool));
    TK_ASSERT(pool != NULL);
    pool->queue = calloc(config->queue_max, sizeof(struct job));
    TK_ASSERT(pool->queue != NULL);
    pool->queue_max = config->queue_max;
    pool->redis_timeout_ms = config->redis_timeout_ms ? config->redis_timeout_ms : 1000;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->nonempty, NULL);
    if (config->pg_url != NULL)
        snprintf(pool->pg_url, sizeof(pool->pg_url), "%s", config->pg_url);
    if (config->redis_url != NULL && config->redis_url[0] != '\0' &&
        !parse_redis_url(config->redis_url, pool->redis_host, sizeof(pool->redis_host), &pool->redis_port)) {
        snprintf(err, err_len, "bad Redis address '%s' (want redis://host:port)", config->redis_url);
        svc_workers_stop(pool);
        return TK_ERR_INVALID;
    }
    for (uint32_t i = 0; i < config->threads; i++) {
        struct svc_worker *w = &pool->workers[i];
        *w = (struct svc_worker){.index = i, .pool = pool};
        if (!connect_pg(pool, w, err, err_len) || !connect_redis(pool, w, err, err_len)) {
            pool->thread_count = i + 1; /* so stop closes this one's connections too */
            svc_workers_stop(pool);
            return TK_ERR_UNAVAILABLE;
        }
    }
    for (uint32_t i = 0; i < config->threads; i++) {
        int rc = pthread_create(&pool->threads[i], NULL, worker_main, &pool->workers[i]);
        TK_ASSERT(rc == 0);
    }
    pool->thread_count = config->threads;
    *out = pool;
    return TK_OK;
}

enum tk_status svc_workers_submit(struct svc_workers *pool, svc_job_fn fn, void *ctx)
{
    TK_ASSERT(fn != NULL);
    pthread_mutex_lock(&pool->lock);
    if (pool->count == pool->queue_max || pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        return TK_ERR_FULL;
    }
    pool->queue[(pool->head + pool->count) % pool->queue_max] = (struct job){fn, ctx};
    pool->count++;
    pthread_cond_signal(&pool->nonempty);
    pthread_mutex_unlock(&pool->lock);
    return TK_OK;
}

void svc_workers_stop(struct svc_workers *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->nonempty);
    pthread_mutex_unlock(&pool->lock);
    for (uint32_t i = 0; i < pool->thread_count; i++) {
        if (pool->threads[i] != 0)
            pthread_join(pool->threads[i], NULL);
        if (pool->workers[i].pg != NULL)
            PQfinish(pool->workers[i].pg);
        if (pool->workers[i].redis != NULL)
            redisFree(pool->workers[i].redis);
    }
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->nonempty);
    free(pool->queue);
    free(pool);
}
