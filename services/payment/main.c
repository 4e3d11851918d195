/* main.c — payment-svc: Charge, Refund and GetPayment over gRPC; the card gateway
 * over HTTP.
 *
 * Start: settings (flags, env PAYMENT_*), migrations when --migrate, libcurl,
 * the gateway client (one curl handle per worker), the worker pool (one
 * PostgreSQL connection per worker), then the gRPC server with Health and the
 * /metrics endpoint (svc_daemon). Stop (SIGTERM/SIGINT): NOT_SERVING, no new
 * calls, calls in flight finish within the grace period (a gateway call takes
 * at most --gateway-timeout-ms), the workers drain, exit 0. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "payment.h"
#include "rpc_log.h"
#include "rpc_metrics.h"
#include "svc_daemon.h"
#include "svc_migrate.h"

static int migrate(const struct payment_config *config)
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

static int start_gateway(struct payment_service *svc, const struct payment_config *config)
{
    struct payment_gateway_config gateway = {
        .base_url = config->gateway_url,
        .name = config->gateway_name,
        .timeout_ms = config->gateway_timeout_ms,
        .connect_timeout_ms = config->gateway_connect_timeout_ms,
        .attempts_max = config->gateway_attempts,
        .backoff_ms = config->gateway_backoff_ms,
        .workers = config->common.workers,
        .breaker = {.window_calls = config->breaker_window_calls,
                    .failure_percent = config->breaker_failure_percent,
                    .open_ms = config->breaker_open_ms,
                    .window_ms = config->breaker_window_ms,
                    .probe_calls = config->breaker_probe_calls},
    };
    char err[256];
    if (payment_gateway_create(&svc->gateway, &gateway, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "gateway client: %s", err);
        return -1;
    }
    return 0;
}

static int start_workers(struct payment_service *svc, const struct payment_config *config)
{
    struct svc_workers_config workers = {.threads = config->common.workers,
                                         .queue_max = config->common.queue_max,
                                         .pg_url = config->database_url};
    char err[512];
    if (svc_workers_start(&svc->workers, &workers, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "workers: %s", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    rpc_signals_block();
    struct payment_config config;
    int parsed = payment_config_parse(&config, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    rpc_log_init("payment-svc", config.common.log_level);
    if (config.check_only) {
        printf("payment-svc: configuration ok\n");
        return 0;
    }
    if (config.migrate && migrate(&config) != 0)
        return 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rpc_log(RPC_LOG_ERROR, "", "libcurl did not initialise");
        return 1;
    }
    struct payment_service svc = {.config = &config};
    int rc = 1;
    struct svc_daemon daemon;
    if (start_gateway(&svc, &config) != 0 || start_workers(&svc, &config) != 0)
        goto done;
    rpc_metrics_add_writer(payment_metrics_write, &svc);
    if (svc_daemon_start(&daemon, "payment-svc", &config.common, payment_methods, payment_method_count, &svc,
                         "tiketi.v1.Payments") != TK_OK)
        goto done;
    rpc_log(RPC_LOG_INFO, "",
            "gateway %s (%s): timeout %u ms, %u attempts; breaker %u calls at %u%%, open %u ms, %u probes",
            config.gateway_url,
            config.gateway_name, config.gateway_timeout_ms, config.gateway_attempts, config.breaker_window_calls,
            config.breaker_failure_percent, config.breaker_open_ms, config.breaker_probe_calls);
    svc_daemon_run(&daemon, &config.common);
    svc_workers_stop(svc.workers); /* jobs still queued answer calls the server already cancelled: harmless */
    svc.workers = NULL;
    svc_daemon_destroy(&daemon);
    rc = 0;
    rpc_log(RPC_LOG_INFO, "", "stopped");
done:
    svc_workers_stop(svc.workers);
    payment_gateway_destroy(svc.gateway);
    curl_global_cleanup();
    return rc;
}
