/* main.c — auth-svc: accounts, logins and tokens (tiketi.v1.Auth).
 *
 * Start: settings (flags, env), the JWT keys (refused unless every key loads),
 * then on one connection the migrations (--migrate), the dummy hash and the
 * admin account, then the worker pool (a PostgreSQL connection per worker), the
 * gRPC server with Auth and Health, /metrics over HTTP, and the housekeeping
 * timer. Then SERVING. Stop (SIGTERM/SIGINT): NOT_SERVING, no new calls, calls in
 * flight (their jobs included) finish within the grace period, the workers drain
 * and close their connections, the keys are wiped, and the process exits 0. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "rpc_log.h"
#include "rpc_metrics.h"

/* libpq's connect_timeout for URLs that do not set one: a reconnect to a server
 * that accepts TCP but never answers must end (auth_db.c). */
#define AUTH_PG_CONNECT_TIMEOUT_S "3"

static bool load_keys(struct auth_service *service)
{
    const struct auth_config *config = service->config;
    struct svc_jwt_keyset_config keys = {.keys = config->jwt_keys, .current_kid = config->jwt_current_kid,
                                         .issuer = config->jwt_issuer, .audience = config->jwt_audience,
                                         .leeway_s = config->jwt_leeway_s};
    char err[512];
    if (svc_jwt_keyset_load(&service->keys, &keys, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "auth-svc: --jwt-keys (AUTH_JWT_KEYS): %s\n", err);
        return false;
    }
    if (service->keys.current == SVC_JWT_NO_CURRENT) {
        fprintf(stderr, "auth-svc: --jwt-current-kid (AUTH_JWT_CURRENT_KID) must name the signing key when "
                        "--jwt-keys has several\n");
        return false;
    }
    return true;
}

static bool check_settings(struct auth_service *service)
{
    const struct auth_config *config = service->config;
    char email[AUTH_EMAIL_BYTES];
    const char *why = NULL;
    if (config->admin_email[0] != '\0' && !auth_email_normalize(config->admin_email, email, &why)) {
        fprintf(stderr, "auth-svc: --admin-email (AUTH_ADMIN_EMAIL): %s\n", why);
        return false;
    }
    service->password = (struct svc_password_params){config->password_opslimit, config->password_memlimit_kib};
    return load_keys(service);
}

static bool start_workers(struct auth_service *service)
{
    const struct auth_config *config = service->config;
    if (config->common.workers > AUTH_WORKERS_MAX) {
        rpc_log(RPC_LOG_ERROR, "", "--workers is at most %u", AUTH_WORKERS_MAX);
        return false;
    }
    struct svc_workers_config workers = {.threads = config->common.workers, .queue_max = config->common.queue_max,
                                         .pg_url = config->database_url};
    char err[512];
    if (svc_workers_start(&service->workers, &workers, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot start the workers: %s", err);
        return false;
    }
    atomic_store(&service->db_up, 1);
    return true;
}

int main(int argc, char **argv)
{
    rpc_signals_block();
    static struct auth_config config;
    int parsed = auth_config_parse(&config, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    rpc_log_init("auth-svc", config.common.log_level);
    static struct auth_service service;
    service.config = &config;
    if (sodium_init() < 0 || !check_settings(&service))
        return 2;
    if (config.check_only) {
        printf("auth-svc: configuration ok (%u signing key%s, current '%s')\n", service.keys.count,
               service.keys.count == 1 ? "" : "s", service.keys.keys[service.keys.current].kid);
        svc_jwt_keyset_wipe(&service.keys);
        return 0;
    }
    setenv("PGCONNECT_TIMEOUT", AUTH_PG_CONNECT_TIMEOUT_S, 0); /* 0: an operator's value wins */
    if (!auth_bootstrap(&service) || !start_workers(&service)) {
        svc_jwt_keyset_wipe(&service.keys);
        return 1;
    }
    rpc_metrics_add_writer(auth_metrics_write, &service);
    if (svc_daemon_start(&service.daemon, "auth-svc", &config.common, auth_methods, auth_method_count, &service,
                         "tiketi.v1.Auth") != TK_OK) {
        svc_workers_stop(service.workers);
        svc_jwt_keyset_wipe(&service.keys);
        return 1;
    }
    rpc_log(RPC_LOG_INFO, "", "signing with key '%s' (%u key%s), access tokens %u s, refresh tokens %u s",
            service.keys.keys[service.keys.current].kid, service.keys.count, service.keys.count == 1 ? "" : "s",
            config.access_ttl_s, config.refresh_ttl_s);
    struct auth_housekeeping *housekeeping = auth_housekeeping_start(&service);
    svc_daemon_run(&service.daemon, &config.common);
    auth_housekeeping_stop(housekeeping);
    svc_workers_stop(service.workers); /* runs what is queued: nothing, once the server has drained */
    svc_daemon_destroy(&service.daemon);
    svc_jwt_keyset_wipe(&service.keys);
    sodium_memzero(config.admin_password, sizeof(config.admin_password));
    rpc_log(RPC_LOG_INFO, "", "stopped");
    return 0;
}
