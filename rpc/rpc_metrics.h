/* rpc_metrics.h — per-method call metrics and the Prometheus exposition.
 *
 * Each method (server side or client side) has a slot: calls by status code and
 * a latency histogram, bumped with relaxed atomics (no lock on the call path).
 * Daemons add their own sections through rpc_metrics_add_writer; the admin HTTP
 * endpoint (/metrics) calls rpc_metrics_write. */
#ifndef RPC_METRICS_H
#define RPC_METRICS_H

#include <grpc/status.h>
#include <stdint.h>
#include <stdio.h>

#include "tk_metrics.h"

#define RPC_CODES_COUNT 17u
#define RPC_METRIC_METHODS_MAX 128u
#define RPC_METRIC_WRITERS_MAX 16u

struct rpc_method_metrics {
    char service[64];
    char method[64];
    const char *side; /* "server" or "client" */
    _Atomic uint64_t codes[RPC_CODES_COUNT];
    struct tk_histogram latency_ns;
};

/* Registers (or finds) the slot for "/pkg.Service/Method" on a side. Not on the
 * call path: done when a server or client registers its methods. */
struct rpc_method_metrics *rpc_metrics_method(const char *path, const char *side);
void rpc_metrics_record(struct rpc_method_metrics *metrics, grpc_status_code code, uint64_t latency_ns);

typedef void (*rpc_metrics_writer)(FILE *out, void *ctx);
void rpc_metrics_add_writer(rpc_metrics_writer writer, void *ctx);
/* Writes every method slot, then every writer, in Prometheus text format. */
void rpc_metrics_write(FILE *out);

#endif
