/* main.c — reservation-svc: holds, the payment saga, my reservations.
 *
 * Start: settings (flags, env RESERVATION_*), the admission-token key, the
 * migrations when --migrate, the shard router (seatcored) and the payment-svc
 * channel, the worker pool (one PostgreSQL and one Redis connection per
 * worker), the recovery loop (its first round finishes the sagas a crash left
 * open), then the gRPC server with Health and /metrics (svc_daemon), SERVING.
 * Stop (SIGTERM/SIGINT): NOT_SERVING, no new calls, calls in flight finish
 * within the grace period, the recovery loop ends its current step, the workers
 * drain, connections close, exit 0. A saga cut short by the stop (or by a
 * crash) is resumed by the next start. */
#include <stdio.h>
#include <string.h>

#include "reservation.h"
#include "rpc_log.h"
#include "rpc_metrics.h"
#include "svc_daemon.h"
#include "svc_migrate.h"
#include "tk_assert.h"

#define SERVICE_NAME "tiketi.v1.Reservations"

static int migrate(const struct reservation_config *config)
{
    PGconn *conn = PQconnectdb(config->database_url);
    if (PQstatus(conn) != CONNECTION_OK) {
        rpc_log(RPC_LOG_ERROR, "", "migrations: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    int applied = 0;
    char err[1024];
    enum tk_status status = svc_migrate(conn, config->migrations_dir, false, &applied, err, sizeof(err));
    PQfinish(conn);
    if (status != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "migrations: %s", err);
        return -1;
    }
    rpc_log(RPC_LOG_INFO, "", "migrations: %d applied from %s", applied, config->migrations_dir);
    return 0;
}

static int load_key(struct reservation_service *svc)
{
    const struct reservation_config *config = svc->config;
    if (config->token_key_file[0] == '\0') {
        rpc_log(RPC_LOG_WARN, "", "no --token-key-file: admission tokens are not checked here (seatcored still "
                                  "checks them on events with a waiting room)");
        return 0;
    }
    char err[512];
    if (token_key_load_file(config->token_key_file, &svc->token_key, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "admission token key: %s", err);
        return -1;
    }
    return 0;
}

static int start_clients(struct reservation_service *svc)
{
    const struct reservation_config *config = svc->config;
    const char *addresses[RPC_SHARDS_MAX];
    for (uint32_t i = 0; i < config->shard_count; i++)
        addresses[i] = config->shards[i];
    svc->router = rpc_router_create(addresses, config->shard_count, NULL);
    svc->payment = rpc_channel_open(config->payment_addr, NULL);
    struct svc_workers_config workers = {.threads = config->common.workers, .queue_max = config->common.queue_max,
                                         .pg_url = config->database_url, .redis_url = config->redis_url,
                                         .redis_timeout_ms = config->redis_timeout_ms};
    char err[1024];
    if (svc_workers_start(&svc->workers, &workers, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot start the workers: %s", err);
        svc->workers = NULL;
        return -1;
    }
    return 0;
}

static void stop_clients(struct reservation_service *svc)
{
    svc_workers_stop(svc->workers); /* runs what is queued first: every call gets its answer */
    svc->workers = NULL;
    rpc_channel_close(svc->payment);
    rpc_router_destroy(svc->router);
}

int main(int argc, char **argv)
{
    rpc_signals_block();
    static struct reservation_config config;
    int parsed = reservation_config_parse(&config, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    rpc_log_init("reservation-svc", config.common.log_level);
    static struct reservation_service svc;
    svc.config = &config;
    if (load_key(&svc) != 0)
        return 1;
    if (config.check_only) {
        printf("reservation-svc: configuration ok (%u engine shard(s))\n", config.shard_count);
        token_key_wipe(&svc.token_key);
        return 0;
    }
    if (config.migrate && migrate(&config) != 0)
        return 1;
    if (start_clients(&svc) != 0) {
        stop_clients(&svc);
        return 1;
    }
    struct rsv_recovery *recovery = rsv_recovery_start(&svc);
    rpc_metrics_add_writer(rsv_metrics_write, &svc);
    struct svc_daemon daemon;
    if (svc_daemon_start(&daemon, "reservation-svc", &config.common, reservation_methods, reservation_method_count,
                         &svc, SERVICE_NAME) != TK_OK) {
        rsv_recovery_stop(recovery);
        stop_clients(&svc);
        return 1;
    }
    rpc_log(RPC_LOG_INFO, "", "%u engine shard(s), payment-svc at %s, %u workers, admission tokens %s",
            config.shard_count, config.payment_addr, config.common.workers,
            config.admission_required ? "required" : "checked when given");
    svc_daemon_run(&daemon, &config.common);
    rsv_recovery_stop(recovery);
    stop_clients(&svc);
    svc_daemon_destroy(&daemon);
    token_key_wipe(&svc.token_key);
    rpc_log(RPC_LOG_INFO, "", "stopped");
    return 0;
}
