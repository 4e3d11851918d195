/* edge_ops.c — /healthz, /readyz, /metrics, /openapi.json, the placeholder UI,
 * and the readiness thread.
 *
 * /healthz says the process serves HTTP. /readyz says it can serve the API:
 * every configured gRPC dependency answered its grpc.health.v1 Check (SERVING)
 * within the last round, Redis is connected when a feed is configured, and the
 * edge is not shutting down. The checks run on their own thread every second
 * (blocking calls with a 1 s deadline), so a probe costs an atomic read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edge.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc_log.h"
#include "rpc_metrics.h"
#include "tk_assert.h"

extern const unsigned char edge_openapi_json[];
extern const size_t edge_openapi_json_len;

#define READINESS_PERIOD_MS 1000
#define HEALTH_TIMEOUT_MS 1000

void edge_ops_healthz(struct edge_request *r)
{
    edge_send_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static bool dependency_configured(const struct edge_server *server, enum edge_dependency d)
{
    if (d == EDGE_DEP_REDIS)
        return server->config->redis_url[0] != '\0';
    return server->channels[d] != NULL;
}

void edge_ops_readyz(struct edge_request *r)
{
    struct edge_server *server = r->server;
    json_t *dependencies = json_object();
    bool ready = !atomic_load(&server->stopping);
    for (int d = 0; d < EDGE_DEP_COUNT; d++) {
        const char *state = "not configured";
        if (dependency_configured(server, (enum edge_dependency)d)) {
            bool up = atomic_load(&server->dependency_up[d]);
            ready = ready && up;
            state = up ? "up" : "down";
        }
        json_object_set_new(dependencies, edge_dependency_name((enum edge_dependency)d), json_string(state));
    }
    if (ready) {
        edge_send_json(r, 200, json_pack("{s:s, s:o}", "status", "ready", "dependencies", dependencies));
        return;
    }
    struct edge_problem problem = {503, "not_ready", "Not ready", false, false};
    const char *detail = atomic_load(&server->stopping) ? "shutting down" : "a dependency is down";
    edge_send_problem_with(r, problem, detail, json_pack("{s:o}", "dependencies", dependencies), 0);
}

void edge_ops_metrics(struct edge_request *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    TK_ASSERT(out != NULL);
    rpc_metrics_write(out); /* per-method gRPC client metrics, then edge_metrics_write */
    fclose(out);
    h2o_iovec_t body = h2o_strdup(&r->req->pool, text, len);
    free(text);
    edge_send_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8", body);
}

void edge_ops_openapi(struct edge_request *r)
{
    edge_add_header(r, "cache-control", "public, max-age=300");
    edge_send_bytes(r, 200, "application/json", h2o_iovec_init(edge_openapi_json, edge_openapi_json_len));
}

static const char placeholder[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>TIKETI</title></head>\n"
    "<body><h1>TIKETI</h1><p>The web UI is not installed on this edge (see --ui-dir).</p>\n"
    "<p>The API is under <code>/api/v1</code>; its contract is <a href=\"/openapi.json\">/openapi.json</a>.</p>"
    "</body></html>\n";

bool edge_static_placeholder(struct edge_request *r)
{
    if (r->server->ui_dir[0] != '\0')
        return false;
    h2o_req_t *req = r->req;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    bool root = h2o_memis(req->path.base, path_len, H2O_STRLIT("/")) ||
                h2o_memis(req->path.base, path_len, H2O_STRLIT("/index.html"));
    if (!root || !(h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                   h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))) {
        edge_send_problem(r, 404, "no such file");
        return true;
    }
    edge_add_header(r, "cache-control", "no-cache");
    edge_send_bytes(r, 200, "text/html; charset=utf-8", h2o_iovec_init(placeholder, sizeof(placeholder) - 1));
    return true;
}

/* ---- the readiness thread ---- */

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop, started;
    struct edge_server *server;
} readiness = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static bool check_health(struct rpc_channel *channel)
{
    Grpc__Health__V1__HealthCheckRequest request = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    struct rpc_error error;
    struct rpc_call_options options = {.timeout_ms = HEALTH_TIMEOUT_MS};
    grpc_status_code code = rpc_unary(channel, EDGE_M_HEALTH_CHECK, &request.base,
                                      &grpc__health__v1__health_check_response__descriptor, NULL, &reply, &options,
                                      &error);
    bool serving = code == GRPC_STATUS_OK &&
                   ((Grpc__Health__V1__HealthCheckResponse *)reply)->status ==
                       GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
    return serving;
}

static void *readiness_main(void *arg)
{
    (void)arg;
    struct edge_server *server = readiness.server;
    pthread_setname_np(pthread_self(), "edge-ready");
    pthread_mutex_lock(&readiness.lock);
    while (!readiness.stop) {
        pthread_mutex_unlock(&readiness.lock);
        for (int d = 0; d < EDGE_DEP_REDIS; d++) {
            if (server->channels[d] == NULL)
                continue;
            bool up = check_health(server->channels[d]);
            bool was = atomic_exchange(&server->dependency_up[d], up);
            if (up != was)
                rpc_log(up ? RPC_LOG_INFO : RPC_LOG_WARN, "", "%s is %s", edge_dependency_name((enum edge_dependency)d),
                        up ? "up" : "down");
        }
        pthread_mutex_lock(&readiness.lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += READINESS_PERIOD_MS / 1000;
        while (!readiness.stop && pthread_cond_timedwait(&readiness.wake, &readiness.lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&readiness.lock);
    return NULL;
}

void edge_readiness_start(struct edge_server *server)
{
    TK_ASSERT(!readiness.started);
    readiness.server = server;
    readiness.stop = false;
    readiness.started = true;
    int rc = pthread_create(&readiness.thread, NULL, readiness_main, NULL);
    TK_ASSERT(rc == 0);
}

void edge_readiness_stop(void)
{
    if (!readiness.started)
        return;
    pthread_mutex_lock(&readiness.lock);
    readiness.stop = true;
    pthread_cond_broadcast(&readiness.wake);
    pthread_mutex_unlock(&readiness.lock);
    pthread_join(readiness.thread, NULL);
    readiness.started = false;
}
