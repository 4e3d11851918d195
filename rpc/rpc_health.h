/* rpc_health.h — grpc.health.v1.Health, served by every daemon.
 *
 * Kubernetes gRPC probes call Check. A daemon reports SERVING once it has
 * recovered and can take calls, and NOT_SERVING from the moment it starts
 * shutting down (so load balancers drain it first). Service names: "" (the
 * whole server) and the names given to rpc_health_create; others are NOT_FOUND. */
#ifndef RPC_HEALTH_H
#define RPC_HEALTH_H

#include <stdbool.h>

#include "rpc_server.h"

struct rpc_health;

struct rpc_health *rpc_health_create(const char *const *service_names, unsigned count);
void rpc_health_destroy(struct rpc_health *health);
/* Adds Check and Watch to a server before it starts; shutdown flips to NOT_SERVING. */
enum tk_status rpc_health_register(struct rpc_health *health, struct rpc_server *server);
void rpc_health_set_serving(struct rpc_health *health, bool serving);
bool rpc_health_serving(const struct rpc_health *health);

#endif
