/* queue_watch.c — WaitingRoom/Watch: a user's view, pushed until admitted.
 *
 * Backed by periodic engine QueueStatus calls rather than the engine's own
 * WatchQueue stream: Status carries the rank (the engine's WatchQueue views do
 * not set it), counts as a heartbeat, and a stream here then holds no engine
 * stream open, so a seatcored restart costs one failed poll instead of every
 * stream at once. One thread paces every stream at its own rhythm (batching
 * rather than reacting): each round it starts a Status call for each stream
 * that is idle and due. A stream is in exactly one of three states:
 *   IDLE    — waiting for its next due time;
 *   CALLING — a Status call is in flight (its completion owns the next step);
 *   SENDING — a view is being written (the sent callback owns the next step).
 * Only an IDLE stream is ended by the thread, so no completion ever finds its
 * slot gone. The view after "admitted" (or "left"/"expired") is the last: then
 * the stream ends OK. A client cancel ends it at the next step; a shutdown ends
 * it with UNAVAILABLE ("watch again"). The table is bounded (--watchers-max);
 * past it a new stream is refused with RESOURCE_EXHAUSTED. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue_format.h"
#include "queue_svc.h"
#include "rpc_log.h"
#include "tiketi/v1/queue.pb-c.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "tk_assert.h"
#include "tk_clock.h"

enum watcher_state { WATCHER_FREE = 0, WATCHER_IDLE, WATCHER_CALLING, WATCHER_SENDING };

struct watcher {
    enum watcher_state state;
    struct rpc_call *call;
    uint64_t event_id, user_id;
    uint64_t due_ms;
    bool last_sent; /* the view in flight is the final one */
    char event_text[QUEUE_ID_TEXT_BYTES], user_text[QUEUE_ID_TEXT_BYTES];
    struct queue_watch *watch;
};

struct queue_watch {
    struct queue_svc *svc;
    struct watcher *watchers;
    uint32_t watchers_max;
    pthread_mutex_t lock;
    pthread_t thread;
    _Atomic bool stop;
};

static uint64_t now_ms(void)
{
    return tk_monotonic_ns() / 1000000u;
}

static bool shutting_down(const struct queue_watch *watch)
{
    struct rpc_server *server = atomic_load(&watch->svc->server);
    return server != NULL && rpc_server_shutting_down(server);
}

/* Caller holds the lock. error NULL: OK (or the client is gone and will not look). */
static void watcher_end(struct queue_watch *watch, struct watcher *w, const struct rpc_error *error)
{
    TK_ASSERT(w->state != WATCHER_FREE && w->call != NULL);
    struct rpc_error stopping;
    if (error == NULL && shutting_down(watch) && !w->last_sent) {
        rpc_error_from_status(&stopping, TK_ERR_UNAVAILABLE, "queue-svc is shutting down; watch again", NULL, 0);
        error = &stopping;
    }
    rpc_stream_finish(w->call, error);
    memset(w, 0, sizeof(*w));
    TK_ASSERT(w->state == WATCHER_FREE);
    atomic_fetch_sub_explicit(&watch->svc->counters.watch_streams, 1, memory_order_relaxed);
}

static void on_sent(struct rpc_call *call, bool ok, void *arg)
{
    struct watcher *w = arg;
    struct queue_watch *watch = w->watch;
    pthread_mutex_lock(&watch->lock);
    TK_ASSERT(w->state == WATCHER_SENDING && w->call == call);
    w->state = WATCHER_IDLE;
    if (!ok || w->last_sent || rpc_stream_cancelled(call))
        watcher_end(watch, w, NULL);
    pthread_mutex_unlock(&watch->lock);
}

static void on_status(void *arg, grpc_status_code code, ProtobufCMessage *reply, const struct rpc_error *error)
{
    struct watcher *w = arg;
    struct queue_watch *watch = w->watch;
    pthread_mutex_lock(&watch->lock);
    TK_ASSERT(w->state == WATCHER_CALLING);
    w->state = WATCHER_IDLE;
    if (code != GRPC_STATUS_OK) {
        struct rpc_error mapped;
        queue_error_from_engine(error, QUEUE_ERROR_FOR_MEMBER, &mapped);
        watcher_end(watch, w, rpc_stream_cancelled(w->call) ? NULL : &mapped);
    } else if (rpc_stream_cancelled(w->call)) {
        watcher_end(watch, w, NULL);
    } else {
        const Tiketi__V1__QueueView *engine_view = (const Tiketi__V1__QueueView *)reply;
        char expires_at[QUEUE_TIME_TEXT_BYTES];
        Tiketi__V1__WaitingRoomView view;
        queue_view_from_engine(engine_view, w->event_text, w->user_text, expires_at, &view);
        w->last_sent = engine_view->state != TIKETI__V1__QUEUE_STATE__QUEUE_WAITING;
        w->state = WATCHER_SENDING;
        rpc_stream_send(w->call, &view.base, on_sent, w); /* packs now; completes on a cq thread */
    }
    pthread_mutex_unlock(&watch->lock);
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
}

/* Caller holds the lock; w is IDLE and due. */
static void watcher_poll(struct queue_watch *watch, struct watcher *w, uint64_t now)
{
    TK_ASSERT(w->state == WATCHER_IDLE);
    struct queue_svc *svc = watch->svc;
    w->state = WATCHER_CALLING;
    w->due_ms = now + svc->config->watch_interval_ms;
    Tiketi__V1__QueueRequest req = TIKETI__V1__QUEUE_REQUEST__INIT;
    req.event_id = w->event_id;
    req.user_id = w->user_id;
    struct rpc_call_options options = queue_engine_options(svc, w->call);
    rpc_unary_async(svc->loop, rpc_router_channel(svc->router, w->event_id), "/tiketi.v1.SeatCore/QueueStatus",
                    &req.base, &tiketi__v1__queue_view__descriptor, &options, on_status, w);
}

static void watch_round(struct queue_watch *watch)
{
    uint64_t now = now_ms();
    pthread_mutex_lock(&watch->lock);
    for (uint32_t i = 0; i < watch->watchers_max; i++) {
        struct watcher *w = &watch->watchers[i];
        if (w->state != WATCHER_IDLE)
            continue;
        if (rpc_stream_cancelled(w->call))
            watcher_end(watch, w, NULL);
        else if (now >= w->due_ms)
            watcher_poll(watch, w, now);
    }
    pthread_mutex_unlock(&watch->lock);
}

static void *watch_thread(void *arg)
{
    struct queue_watch *watch = arg;
    while (!atomic_load(&watch->stop)) {
        watch_round(watch);
        struct timespec pause = {.tv_nsec = QUEUE_WATCH_ROUND_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

struct queue_watch *queue_watch_start(struct queue_svc *svc)
{
    TK_ASSERT(svc != NULL && svc->config->watchers_max >= 1);
    struct queue_watch *watch = calloc(1, sizeof(*watch));
    TK_ASSERT(watch != NULL);
    watch->svc = svc;
    watch->watchers_max = svc->config->watchers_max;
    watch->watchers = calloc(watch->watchers_max, sizeof(struct watcher));
    TK_ASSERT(watch->watchers != NULL);
    pthread_mutex_init(&watch->lock, NULL);
    int rc = pthread_create(&watch->thread, NULL, watch_thread, watch);
    TK_ASSERT(rc == 0);
    return watch;
}

void queue_watch_add(struct queue_watch *watch, struct rpc_call *call, uint64_t event_id, uint64_t user_id)
{
    TK_ASSERT(watch != NULL && call != NULL && event_id >= 1 && user_id >= 1);
    struct watcher *w = NULL;
    pthread_mutex_lock(&watch->lock);
    for (uint32_t i = 0; i < watch->watchers_max && w == NULL; i++)
        if (watch->watchers[i].state == WATCHER_FREE)
            w = &watch->watchers[i];
    if (w != NULL) {
        *w = (struct watcher){.state = WATCHER_IDLE, .call = call, .event_id = event_id, .user_id = user_id,
                              .due_ms = 0, .watch = watch};
        snprintf(w->event_text, sizeof(w->event_text), "%llu", (unsigned long long)event_id);
        snprintf(w->user_text, sizeof(w->user_text), "%llu", (unsigned long long)user_id);
        atomic_fetch_add_explicit(&watch->svc->counters.watch_streams, 1, memory_order_relaxed);
        watcher_poll(watch, w, now_ms()); /* the first view at once */
    }
    pthread_mutex_unlock(&watch->lock);
    if (w == NULL) {
        struct rpc_error error;
        rpc_error_from_status(&error, TK_ERR_FULL, "too many Watch streams on this queue-svc; retry later", NULL, 0);
        rpc_stream_finish(call, &error);
    }
}

/* After the gRPC server stopped accepting: every stream reads as cancelled, so
 * rounds end the idle ones; the ones with a call or a send in flight end when it
 * completes (within the engine timeout). Only then is the table freed. */
void queue_watch_stop(struct queue_watch *watch)
{
    if (watch == NULL)
        return;
    atomic_store(&watch->stop, true);
    pthread_join(watch->thread, NULL);
    uint64_t give_up_ms = now_ms() + watch->svc->config->engine_timeout_ms + 2000u;
    uint32_t busy = 0;
    do {
        watch_round(watch);
        busy = 0;
        pthread_mutex_lock(&watch->lock);
        for (uint32_t i = 0; i < watch->watchers_max; i++)
            busy += watch->watchers[i].state != WATCHER_FREE;
        pthread_mutex_unlock(&watch->lock);
        if (busy > 0) {
            struct timespec pause = {.tv_nsec = 10 * 1000000L};
            nanosleep(&pause, NULL);
        }
    } while (busy > 0 && now_ms() < give_up_ms);
    if (busy > 0) { /* a completion may still arrive: keep the table (the process is exiting) */
        rpc_log(RPC_LOG_WARN, "", "%u Watch streams still busy at shutdown", busy);
        return;
    }
    free(watch->watchers);
    pthread_mutex_destroy(&watch->lock);
    free(watch);
}
