/* svc_daemon.h — the shape every daemon shares.
 *
 * Start: gRPC server with the service's methods plus grpc.health.v1.Health,
 * the /metrics /healthz /readyz HTTP endpoint, then SERVING. Run until SIGTERM
 * or SIGINT, then NOT_SERVING, stop accepting, let calls in flight finish within
 * the grace period, and return so main can close its pools and exit 0. */
#ifndef SVC_DAEMON_H
#define SVC_DAEMON_H

#include <stdint.h>

#include "rpc_admin_http.h"
#include "rpc_health.h"
#include "rpc_log.h"
#include "rpc_server.h"
#include "svc_flags.h"

/* The settings every daemon has; a service adds its own to the same table. */
struct svc_common_config {
    char listen[256];
    char metrics_listen[256];
    uint32_t cq_threads;
    uint32_t calls_max;
    uint32_t grace_ms;
    uint32_t workers;
    uint32_t queue_max;
    enum rpc_log_level log_level;
};

/* Fills defaults and writes the common rows into flags (returns how many);
 * env_prefix is e.g. "AUTH" (AUTH_LISTEN, ...). */
size_t svc_common_flags(struct svc_common_config *config, const char *env_prefix, const char *listen_default,
                        const char *metrics_default, struct svc_flag *flags);

struct svc_daemon {
    struct rpc_server *server;
    struct rpc_health *health;
    struct rpc_admin_http *admin;
    const char *name;
};

enum tk_status svc_daemon_start(struct svc_daemon *daemon, const char *name, const struct svc_common_config *config,
                                const struct rpc_method *methods, uint32_t method_count, void *ctx,
                                const char *service_name);
/* Blocks until a stop signal, then shuts the server down gracefully. */
void svc_daemon_run(struct svc_daemon *daemon, const struct svc_common_config *config);
void svc_daemon_destroy(struct svc_daemon *daemon);

#endif
