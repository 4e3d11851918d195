/* rpc_metrics.c — per-method metrics (rpc_metrics.h).
 *
 * The slot table is process-wide and fixed-size; registration takes a mutex
 * (start-up only), recording is lock-free. */
#include "rpc_metrics.h"

#include <pthread.h>
#include <string.h>

#include "rpc_status.h"
#include "tk_assert.h"

static struct rpc_method_metrics method_slots[RPC_METRIC_METHODS_MAX];
static _Atomic uint32_t method_count;
static struct {
    rpc_metrics_writer fn;
    void *ctx;
} writers[RPC_METRIC_WRITERS_MAX];
static uint32_t writer_count;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static void split_path(const char *path, char *service, size_t service_len, char *method, size_t method_len)
{
    const char *p = path[0] == '/' ? path + 1 : path;
    const char *slash = strchr(p, '/');
    if (slash == NULL) {
        snprintf(service, service_len, "unknown");
        snprintf(method, method_len, "%s", p);
        return;
    }
    snprintf(service, service_len, "%.*s", (int)(slash - p), p);
    snprintf(method, method_len, "%s", slash + 1);
}

struct rpc_method_metrics *rpc_metrics_method(const char *path, const char *side)
{
    TK_ASSERT(path != NULL && side != NULL);
    char service[64], method[64];
    split_path(path, service, sizeof(service), method, sizeof(method));
    pthread_mutex_lock(&registry_lock);
    uint32_t count = atomic_load(&method_count);
    struct rpc_method_metrics *slot = NULL;
    for (uint32_t i = 0; i < count && slot == NULL; i++)
        if (!strcmp(method_slots[i].service, service) && !strcmp(method_slots[i].method, method) &&
            !strcmp(method_slots[i].side, side))
            slot = &method_slots[i];
    if (slot == NULL && count < RPC_METRIC_METHODS_MAX) {
        slot = &method_slots[count];
        snprintf(slot->service, sizeof(slot->service), "%s", service);
        snprintf(slot->method, sizeof(slot->method), "%s", method);
        slot->side = side;
        atomic_store(&method_count, count + 1);
    }
    pthread_mutex_unlock(&registry_lock);
    TK_ASSERT(slot != NULL); /* RPC_METRIC_METHODS_MAX covers every method of every service */
    return slot;
}

void rpc_metrics_record(struct rpc_method_metrics *metrics, grpc_status_code code, uint64_t latency_ns)
{
    TK_ASSERT(metrics != NULL);
    unsigned index = (unsigned)code < RPC_CODES_COUNT ? (unsigned)code : GRPC_STATUS_UNKNOWN;
    atomic_fetch_add_explicit(&metrics->codes[index], 1, memory_order_relaxed);
    tk_histogram_record(&metrics->latency_ns, latency_ns);
}

void rpc_metrics_add_writer(rpc_metrics_writer writer, void *ctx)
{
    pthread_mutex_lock(&registry_lock);
    TK_ASSERT(writer_count < RPC_METRIC_WRITERS_MAX);
    writers[writer_count].fn = writer;
    writers[writer_count].ctx = ctx;
    writer_count++;
    pthread_mutex_unlock(&registry_lock);
}

void rpc_metrics_write(FILE *out)
{
    uint32_t count = atomic_load(&method_count);
    fprintf(out, "# HELP tiketi_rpc_calls_total gRPC calls by service, method, side and status code.\n"
                 "# TYPE tiketi_rpc_calls_total counter\n");
    for (uint32_t i = 0; i < count; i++) {
        struct rpc_method_metrics *m = &method_slots[i];
        for (unsigned code = 0; code < RPC_CODES_COUNT; code++) {
            uint64_t n = atomic_load_explicit(&m->codes[code], memory_order_relaxed);
            if (n || code == 0)
                fprintf(out, "tiketi_rpc_calls_total{service=\"%s\",method=\"%s\",side=\"%s\",code=\"%s\"} %llu\n",
                        m->service, m->method, m->side, rpc_code_name((grpc_status_code)code), (unsigned long long)n);
        }
    }
    fprintf(out, "# HELP tiketi_rpc_latency_seconds gRPC call latency.\n"
                 "# TYPE tiketi_rpc_latency_seconds histogram\n");
    for (uint32_t i = 0; i < count; i++) {
        struct rpc_method_metrics *m = &method_slots[i];
        char labels[256];
        snprintf(labels, sizeof(labels), "service=\"%.63s\",method=\"%.63s\",side=\"%.15s\"", m->service,
                 m->method, m->side);
        tk_histogram_write_prometheus(out, "tiketi_rpc_latency_seconds", labels, &m->latency_ns);
    }
    pthread_mutex_lock(&registry_lock);
    uint32_t n = writer_count;
    pthread_mutex_unlock(&registry_lock);
    for (uint32_t i = 0; i < n; i++)
        writers[i].fn(out, writers[i].ctx);
}
