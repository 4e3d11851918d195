/* svc_daemon.c — the shared daemon bootstrap (svc_daemon.h). */
#include "svc_daemon.h"

#include <stdio.h>
#include <string.h>

#include "rpc_log.h"
#include "tk_assert.h"

#define ENV_NAME_BYTES 64u

static char env_names[8][ENV_NAME_BYTES]; /* one daemon per process: one set */

size_t svc_common_flags(struct svc_common_config *c, const char *env_prefix, const char *listen_default,
                        const char *metrics_default, struct svc_flag *flags)
{
    TK_ASSERT(c != NULL && env_prefix != NULL && flags != NULL);
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "%s", listen_default);
    snprintf(c->metrics_listen, sizeof(c->metrics_listen), "%s", metrics_default);
    c->cq_threads = 2;
    c->calls_max = 4096;
    c->grace_ms = 10000;
    c->workers = 8;
    c->queue_max = 4096;
    c->log_level = RPC_LOG_INFO;
    static const char *const suffixes[] = {"LISTEN", "METRICS_LISTEN", "CQ_THREADS", "CALLS_MAX",
                                           "GRACE_MS", "WORKERS", "QUEUE_MAX", "LOG_LEVEL"};
    for (int i = 0; i < 8; i++)
        snprintf(env_names[i], ENV_NAME_BYTES, "%s_%s", env_prefix, suffixes[i]);
    size_t n = 0;
    flags[n++] = (struct svc_flag){"listen", env_names[0], "gRPC address to listen on", SVC_FLAG_STRING, c->listen,
                                   sizeof(c->listen)};
    flags[n++] = (struct svc_flag){"metrics-listen", env_names[1], "HTTP address for /metrics, /healthz, /readyz",
                                   SVC_FLAG_STRING, c->metrics_listen, sizeof(c->metrics_listen)};
    flags[n++] = (struct svc_flag){"cq-threads", env_names[2], "gRPC completion-queue threads (default 2)",
                                   SVC_FLAG_U32, &c->cq_threads, 0, 1, 16};
    flags[n++] = (struct svc_flag){"calls-max", env_names[3], "concurrent calls (default 4096)", SVC_FLAG_U32,
                                   &c->calls_max, 0, 16, 1u << 20};
    flags[n++] = (struct svc_flag){"grace-ms", env_names[4], "shutdown grace period (default 10000)", SVC_FLAG_U32,
                                   &c->grace_ms, 0, 0, 600000};
    flags[n++] = (struct svc_flag){"workers", env_names[5],
                                   "worker threads and database connections (default 8)", SVC_FLAG_U32, &c->workers,
                                   0, 1, 256};
    flags[n++] = (struct svc_flag){"queue-max", env_names[6], "jobs waiting for a worker (default 4096)",
                                   SVC_FLAG_U32, &c->queue_max, 0, 1, 1u << 20};
    flags[n++] = (struct svc_flag){"log-level", env_names[7], "debug, info, warn or error (default info)",
                                   SVC_FLAG_LOG_LEVEL, &c->log_level, 0};
    return n;
}

enum tk_status svc_daemon_start(struct svc_daemon *daemon, const char *name, const struct svc_common_config *config,
                                const struct rpc_method *methods, uint32_t method_count, void *ctx,
                                const char *service_name)
{
    TK_ASSERT(daemon != NULL && config != NULL && service_name != NULL);
    memset(daemon, 0, sizeof(*daemon));
    daemon->name = name;
    const char *const services[] = {service_name};
    daemon->health = rpc_health_create(services, 1);
    struct rpc_server_config server_config = {.listen = config->listen, .cq_threads = config->cq_threads,
                                              .calls_max = config->calls_max};
    char err[512];
    enum tk_status status = rpc_server_create(&daemon->server, &server_config, methods, method_count, ctx, err,
                                              sizeof(err));
    if (status == TK_OK) {
        rpc_health_register(daemon->health, daemon->server);
        status = rpc_admin_http_start(&daemon->admin, config->metrics_listen, daemon->health, err, sizeof(err));
    }
    if (status != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "%s: %s", name, err);
        svc_daemon_destroy(daemon);
        return status;
    }
    rpc_server_start(daemon->server);
    rpc_health_set_serving(daemon->health, true);
    rpc_log(RPC_LOG_INFO, "", "%s serving %s on %s (port %d), metrics on %s", name, service_name, config->listen,
            rpc_server_port(daemon->server), config->metrics_listen);
    return TK_OK;
}

void svc_daemon_run(struct svc_daemon *daemon, const struct svc_common_config *config)
{
    rpc_server_run(daemon->server, config->grace_ms);
}

void svc_daemon_destroy(struct svc_daemon *daemon)
{
    rpc_server_destroy(daemon->server);
    rpc_admin_http_stop(daemon->admin);
    rpc_health_destroy(daemon->health);
    memset(daemon, 0, sizeof(*daemon));
}
