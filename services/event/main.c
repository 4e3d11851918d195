/* main.c — event-svc: the event catalog daemon.
 *
 * Start: settings (flags, env), migrations if asked (--migrate), the worker
 * pool (one PostgreSQL and one Redis connection per worker), the shard router
 * and the client loop for engine calls, one reconciliation round (events a
 * crash left half-made are finished or removed before we serve), then the
 * gRPC server with Events and Health, /metrics, SERVING, and a timer that runs
 * the reconciliation every --reconcile-interval-s.
 * Stop (SIGTERM/SIGINT): NOT_SERVING, no new calls, calls in flight finish
 * within the grace period, the workers drain, connections close, exit 0. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event_svc.h"
#include "rpc_admin_http.h"
#include "rpc_health.h"
#include "rpc_log.h"
#include "rpc_metrics.h"
#include "svc_migrate.h"
#include "tk_assert.h"

#define SERVICE_NAME "tiketi.v1.Events"
#define STARTUP_RECONCILE_MAX 64u

/* ---- the periodic reconciliation ---- */

struct reconcile_timer {
    struct event_svc *svc;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

static void *reconcile_timer_main(void *arg)
{
    struct reconcile_timer *timer = arg;
    uint32_t interval_s = timer->svc->config->reconcile_interval_s;
    pthread_mutex_lock(&timer->lock);
    while (!timer->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += interval_s;
        pthread_cond_timedwait(&timer->wake, &timer->lock, &until);
        if (timer->stop)
            break;
        /* one round at a time; a full queue just skips this round */
        if (!atomic_exchange(&timer->svc->reconcile_queued, true) &&
            svc_workers_submit(timer->svc->workers, event_reconcile_job, timer->svc) != TK_OK)
            atomic_store(&timer->svc->reconcile_queued, false);
    }
    pthread_mutex_unlock(&timer->lock);
    return NULL;
}

static void reconcile_timer_stop(struct reconcile_timer *timer)
{
    pthread_mutex_lock(&timer->lock);
    timer->stop = true;
    pthread_cond_signal(&timer->wake);
    pthread_mutex_unlock(&timer->lock);
    pthread_join(timer->thread, NULL);
}

/* ---- start-up ---- */

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    rpc_log(RPC_LOG_DEBUG, "", "postgres: %s", message);
}

/* Migrations (if asked) and one reconciliation round on a connection of our own. */
static int prepare_database(struct event_svc *svc)
{
    const struct event_config *config = svc->config;
    PGconn *pg = PQconnectdb(config->database_url);
    if (PQstatus(pg) != CONNECTION_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot connect to PostgreSQL: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return -1;
    }
    PQsetNoticeProcessor(pg, quiet_notices, NULL);
    if (config->migrate) {
        int applied = 0;
        char err[1024];
        if (svc_migrate(pg, config->migrations_dir, false, &applied, err, sizeof(err)) != TK_OK) {
            rpc_log(RPC_LOG_ERROR, "", "migrations: %s", err);
            PQfinish(pg);
            return -1;
        }
        rpc_log(RPC_LOG_INFO, "", "migrations: %d applied from %s", applied, config->migrations_dir);
    }
    uint32_t resolved = event_reconcile(svc, pg, STARTUP_RECONCILE_MAX);
    if (resolved > 0)
        rpc_log(RPC_LOG_INFO, "", "start-up: %u half-made event(s) settled", resolved);
    PQfinish(pg);
    return 0;
}

static int start_clients(struct event_svc *svc)
{
    const struct event_config *config = svc->config;
    const char *addresses[RPC_SHARDS_MAX];
    for (uint32_t i = 0; i < config->shard_count; i++)
        addresses[i] = config->shards[i];
    struct rpc_channel_options channel = {.max_message_bytes = config->max_message_bytes};
    svc->router = rpc_router_create(addresses, config->shard_count, &channel);
    svc->loop = rpc_client_loop_start(config->client_threads);
    struct svc_workers_config workers = {.threads = config->common.workers, .queue_max = config->common.queue_max,
                                         .pg_url = config->database_url, .redis_url = config->redis_url,
                                         .redis_timeout_ms = config->redis_timeout_ms};
    char err[1024];
    if (svc_workers_start(&svc->workers, &workers, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot start the workers: %s", err);
        return -1;
    }
    return 0;
}

static void stop_clients(struct event_svc *svc)
{
    svc_workers_stop(svc->workers); /* runs what is queued first: every call gets its answer */
    rpc_client_loop_stop(svc->loop);
    rpc_router_destroy(svc->router);
}

static struct rpc_server *start_server(struct event_svc *svc, struct rpc_health *health)
{
    const struct event_config *config = svc->config;
    uint32_t arena_limit = config->max_message_bytes < (32u << 20) ? (64u << 20) : 2 * config->max_message_bytes;
    struct rpc_server_config server_config = {.listen = config->common.listen,
                                              .cq_threads = config->common.cq_threads,
                                              .calls_max = config->common.calls_max,
                                              .max_message_bytes = config->max_message_bytes,
                                              .arena_limit_bytes = arena_limit};
    struct rpc_server *server;
    char err[512];
    if (rpc_server_create(&server, &server_config, event_methods, event_method_count, svc, err, sizeof(err)) !=
        TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot start the gRPC server: %s", err);
        return NULL;
    }
    rpc_health_register(health, server);
    return server;
}

static int serve(struct event_svc *svc)
{
    const struct event_config *config = svc->config;
    static const char *const services[] = {SERVICE_NAME};
    struct rpc_health *health = rpc_health_create(services, 1);
    struct rpc_admin_http *admin = NULL;
    char err[512];
    rpc_metrics_add_writer(event_metrics_write, svc);
    struct rpc_server *server = start_server(svc, health);
    if (server == NULL || rpc_admin_http_start(&admin, config->common.metrics_listen, health, err, sizeof(err)) !=
                              TK_OK) {
        if (server != NULL)
            rpc_log(RPC_LOG_ERROR, "", "metrics endpoint: %s", err);
        rpc_server_destroy(server);
        rpc_health_destroy(health);
        return -1;
    }
    rpc_server_start(server);
    rpc_health_set_serving(health, true);
    struct reconcile_timer timer = {.svc = svc};
    pthread_mutex_init(&timer.lock, NULL);
    pthread_cond_init(&timer.wake, NULL);
    if (config->reconcile_interval_s > 0)
        pthread_create(&timer.thread, NULL, reconcile_timer_main, &timer);
    rpc_log(RPC_LOG_INFO, "", "serving %s on %s (port %d), metrics on %s, %u engine shard(s), %u workers",
            SERVICE_NAME, config->common.listen, rpc_server_port(server), config->common.metrics_listen,
            config->shard_count, config->common.workers);
    rpc_server_run(server, config->common.grace_ms);
    if (config->reconcile_interval_s > 0)
        reconcile_timer_stop(&timer);
    stop_clients(svc);
    rpc_server_destroy(server);
    rpc_admin_http_stop(admin);
    rpc_health_destroy(health);
    return 0;
}

int main(int argc, char **argv)
{
    rpc_signals_block();
    static struct event_config config;
    int parsed = event_config_parse(&config, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    rpc_log_init("event-svc", config.common.log_level);
    if (config.check_only) {
        printf("event-svc: configuration ok (%u engine shard(s))\n", config.shard_count);
        return 0;
    }
    static struct event_svc svc;
    svc.config = &config;
    if (start_clients(&svc) != 0) {
        rpc_client_loop_stop(svc.loop);
        rpc_router_destroy(svc.router);
        return 1;
    }
    if (prepare_database(&svc) != 0 || serve(&svc) != 0) {
        stop_clients(&svc);
        return 1;
    }
    rpc_log(RPC_LOG_INFO, "", "stopped");
    return 0;
}
