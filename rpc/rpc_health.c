/* rpc_health.c — the standard health service (rpc_health.h).
 *
 * Watch streams are kept in a small fixed table; a status change is pushed to
 * each watcher whose previous message has been sent (a watcher that is behind
 * gets the latest status when its send completes). */
#include "rpc_health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "tk_assert.h"

#define HEALTH_SERVICES_MAX 8u
#define HEALTH_WATCHERS_MAX 64u

struct watcher {
    struct rpc_call *call;
    bool sending;
    int sent_status;
};

struct rpc_health {
    char services[HEALTH_SERVICES_MAX][64];
    unsigned service_count;
    _Atomic bool serving;
    pthread_mutex_t lock;
    struct watcher watchers[HEALTH_WATCHERS_MAX];
};

struct rpc_health *rpc_health_create(const char *const *service_names, unsigned count)
{
    TK_ASSERT(count <= HEALTH_SERVICES_MAX);
    struct rpc_health *health = calloc(1, sizeof(*health));
    TK_ASSERT(health != NULL);
    for (unsigned i = 0; i < count; i++)
        snprintf(health->services[i], sizeof(health->services[i]), "%s", service_names[i]);
    health->service_count = count;
    pthread_mutex_init(&health->lock, NULL);
    return health;
}

void rpc_health_destroy(struct rpc_health *health)
{
    if (health == NULL)
        return;
    pthread_mutex_destroy(&health->lock);
    free(health);
}

bool rpc_health_serving(const struct rpc_health *health)
{
    return atomic_load(&health->serving);
}

static bool known_service(const struct rpc_health *health, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return true;
    for (unsigned i = 0; i < health->service_count; i++)
        if (strcmp(health->services[i], name) == 0)
            return true;
    return false;
}

static int current_status(const struct rpc_health *health)
{
    return rpc_health_serving(health) ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void on_check(struct rpc_call *call, const ProtobufCMessage *request, void *ctx)
{
    struct rpc_health *health = ctx;
    const Grpc__Health__V1__HealthCheckRequest *req = (const Grpc__Health__V1__HealthCheckRequest *)request;
    if (!known_service(health, req->service)) {
        struct rpc_error error;
        rpc_error_from_status(&error, TK_ERR_NOT_FOUND, "unknown service", NULL, 0);
        rpc_fail(call, &error);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    reply.status = current_status(health);
    rpc_reply(call, &reply.base);
}

static void watcher_push_locked(struct rpc_health *health, struct watcher *w);

static void on_watch_sent(struct rpc_call *call, bool ok, void *ctx)
{
    struct rpc_health *health = ctx;
    pthread_mutex_lock(&health->lock);
    for (unsigned i = 0; i < HEALTH_WATCHERS_MAX; i++) {
        struct watcher *w = &health->watchers[i];
        if (w->call != call)
            continue;
        w->sending = false;
        if (!ok || rpc_stream_cancelled(call)) {
            w->call = NULL;
            rpc_stream_finish(call, NULL);
        } else if (w->sent_status != current_status(health)) {
            watcher_push_locked(health, w);
        }
    }
    pthread_mutex_unlock(&health->lock);
}

static void watcher_push_locked(struct rpc_health *health, struct watcher *w)
{
    TK_ASSERT(w->call != NULL && !w->sending);
    Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    reply.status = current_status(health);
    w->sent_status = reply.status;
    w->sending = true;
    rpc_stream_send(w->call, &reply.base, on_watch_sent, health);
}

static void on_watch(struct rpc_call *call, const ProtobufCMessage *request, void *ctx)
{
    struct rpc_health *health = ctx;
    const Grpc__Health__V1__HealthCheckRequest *req = (const Grpc__Health__V1__HealthCheckRequest *)request;
    if (!known_service(health, req->service)) {
        struct rpc_error error;
        rpc_error_from_status(&error, TK_ERR_NOT_FOUND, "unknown service", NULL, 0);
        rpc_stream_finish(call, &error);
        return;
    }
    pthread_mutex_lock(&health->lock);
    struct watcher *slot = NULL;
    for (unsigned i = 0; i < HEALTH_WATCHERS_MAX && slot == NULL; i++)
        if (health->watchers[i].call == NULL)
            slot = &health->watchers[i];
    if (slot == NULL) {
        pthread_mutex_unlock(&health->lock);
        struct rpc_error error;
        rpc_error_from_status(&error, TK_ERR_FULL, "too many health watchers", NULL, 0);
        rpc_stream_finish(call, &error);
        return;
    }
    *slot = (struct watcher){.call = call};
    watcher_push_locked(health, slot);
    pthread_mutex_unlock(&health->lock);
}

void rpc_health_set_serving(struct rpc_health *health, bool serving)
{
    atomic_store(&health->serving, serving);
    pthread_mutex_lock(&health->lock);
    for (unsigned i = 0; i < HEALTH_WATCHERS_MAX; i++) {
        struct watcher *w = &health->watchers[i];
        if (w->call != NULL && !w->sending)
            watcher_push_locked(health, w);
    }
    pthread_mutex_unlock(&health->lock);
}

static void on_shutdown(void *ctx)
{
    rpc_health_set_serving(ctx, false);
}

enum tk_status rpc_health_register(struct rpc_health *health, struct rpc_server *server)
{
    static const struct rpc_method methods[] = {
        {.path = "/grpc.health.v1.Health/Check", .request = &grpc__health__v1__health_check_request__descriptor,
         .handler = on_check},
        {.path = "/grpc.health.v1.Health/Watch", .request = &grpc__health__v1__health_check_request__descriptor,
         .handler = on_watch, .server_streaming = true},
    };
    rpc_server_on_shutdown(server, on_shutdown, health);
    return rpc_server_add_methods(server, methods, 2, health);
}
