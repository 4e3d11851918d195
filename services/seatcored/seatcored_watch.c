/* seatcored_watch.c — the server streams: WatchAvailability and WatchQueue.
 *
 * One watcher thread serves every stream at its own pace (batching rather than
 * reacting to every change): each round it looks at the streams whose previous
 * message has been sent and whose interval is due, and sends an availability
 * delta (the seats whose state changed since the last message, computed from
 * the engine's lock-free availability copy) or a queue view. A stream ends when
 * its client goes away, when the daemon shuts down, or (queue) once the user is
 * admitted and has the token. The table of streams is bounded (watchers_max);
 * past it a new stream is refused with RESOURCE_EXHAUSTED. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc_log.h"
#include "seatcored.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "tk_assert.h"

#define WATCH_ROUND_MS 50u
#define WATCH_DELTA_MAX 20000u /* more changes than this: send the whole map again */
#define QUEUE_PUSH_MS 1000u

enum watcher_kind { WATCH_NONE, WATCH_AVAILABILITY, WATCH_QUEUE };

struct watcher {
    enum watcher_kind kind;
    struct rpc_call *call;
    uint64_t event_id;
    uint64_t user_id;
    uint32_t interval_ms;
    uint64_t due_ms;
    bool sending;
    bool sent_any;
    bool done_after_send; /* the queue stream ends after its admitted message */
    uint64_t version;
    uint8_t *states; /* last states sent (availability) */
    uint32_t capacity;
};

struct seatcored_watch {
    struct seatcored *daemon;
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

/* Caller holds the lock; the watcher is idle (no send in flight). */
static void watcher_end(struct watcher *w, const struct rpc_error *error)
{
    TK_ASSERT(w->kind != WATCH_NONE && !w->sending);
    rpc_stream_finish(w->call, error);
    free(w->states);
    memset(w, 0, sizeof(*w));
}

static void on_sent(struct rpc_call *call, bool ok, void *ctx)
{
    struct seatcored_watch *watch = ctx;
    pthread_mutex_lock(&watch->lock);
    for (uint32_t i = 0; i < watch->watchers_max; i++) {
        struct watcher *w = &watch->watchers[i];
        if (w->call != call)
            continue;
        w->sending = false;
        if (!ok || w->done_after_send || rpc_stream_cancelled(call))
            watcher_end(w, NULL);
        break;
    }
    pthread_mutex_unlock(&watch->lock);
}

/* Builds and sends the next availability message; false if nothing to send yet. */
static bool send_availability(struct seatcored_watch *watch, struct watcher *w)
{
    struct sc_engine *engine = watch->daemon->engine;
    uint32_t bytes = (w->capacity + 3u) / 4u;
    uint8_t *now = malloc(bytes);
    Tiketi__V1__SeatChange *changes = malloc(sizeof(*changes) * WATCH_DELTA_MAX);
    Tiketi__V1__SeatChange **list = malloc(sizeof(*list) * WATCH_DELTA_MAX);
    TK_ASSERT(now != NULL && changes != NULL && list != NULL);
    uint64_t version;
    struct sc_counts counts;
    bool sent = false;
    if (sc_availability_copy(engine, w->event_id, now, bytes, &version, &counts) != TK_OK)
        goto done;
    Tiketi__V1__AvailabilityChange message = TIKETI__V1__AVAILABILITY_CHANGE__INIT;
    Tiketi__V1__Availability full = TIKETI__V1__AVAILABILITY__INIT;
    message.event_id = w->event_id;
    message.version = version;
    message.free = counts.free;
    message.held = counts.held;
    message.sold = counts.sold;
    uint32_t n = 0;
    for (uint32_t seat = 0; w->sent_any && seat < w->capacity && n < WATCH_DELTA_MAX; seat++) {
        enum sc_seat_state state = sc_availability_state(now, seat);
        if (state != sc_availability_state(w->states, seat)) {
            tiketi__v1__seat_change__init(&changes[n]);
            changes[n].seat = seat;
            changes[n].state = state;
            list[n] = &changes[n];
            n++;
        }
    }
    if (!w->sent_any || n == WATCH_DELTA_MAX) {
        full.event_id = w->event_id;
        full.version = version;
        full.capacity = counts.capacity;
        full.free = counts.free;
        full.held = counts.held;
        full.sold = counts.sold;
        full.states = (ProtobufCBinaryData){.len = bytes, .data = now};
        message.full = &full;
    } else if (n == 0) {
        goto done; /* nothing changed: no message */
    } else {
        message.changed = list;
        message.n_changed = n;
    }
    memcpy(w->states, now, bytes);
    w->version = version;
    w->sent_any = true;
    w->sending = true;
    rpc_stream_send(w->call, &message.base, on_sent, watch);
    sent = true;
done:
    free(now);
    free(changes);
    free(list);
    return sent;
}

static void ignore_durable(void *ctx, enum tk_status status)
{
    (void)ctx;
    (void)status;
}

static void send_queue(struct seatcored_watch *watch, struct watcher *w)
{
    struct sc_queue_view view;
    uint64_t lsn;
    enum tk_status status = sc_queue_status(watch->daemon->engine, w->event_id, w->user_id, &view, &lsn);
    if (status != TK_OK) {
        struct rpc_error error;
        rpc_error_from_status(&error, status, NULL, NULL, 0);
        watcher_end(w, &error);
        return;
    }
    if (view.state == SC_QUEUE_ADMITTED && !sc_engine_when_durable(watch->daemon->engine, lsn, ignore_durable, NULL))
        return; /* show the admission once it cannot be lost: next round */
    Tiketi__V1__QueueView message = TIKETI__V1__QUEUE_VIEW__INIT;
    message.event_id = w->event_id;
    message.user_id = w->user_id;
    message.ticket = view.ticket;
    message.rank = view.rank;
    message.position = view.position;
    message.eta_s = view.eta_s;
    message.state = (Tiketi__V1__QueueState)view.state;
    message.admission_expires_ms = view.admission_expires_ms;
    message.admission_token = view.admission_token;
    w->done_after_send = view.state != SC_QUEUE_WAITING;
    w->sending = true;
    rpc_stream_send(w->call, &message.base, on_sent, watch);
}

static void watch_round(struct seatcored_watch *watch)
{
    uint64_t now = now_ms();
    pthread_mutex_lock(&watch->lock);
    for (uint32_t i = 0; i < watch->watchers_max; i++) {
        struct watcher *w = &watch->watchers[i];
        if (w->kind == WATCH_NONE || w->sending)
            continue;
        if (rpc_stream_cancelled(w->call)) {
            watcher_end(w, NULL);
            continue;
        }
        if (now < w->due_ms)
            continue;
        w->due_ms = now + w->interval_ms;
        if (w->kind == WATCH_AVAILABILITY)
            send_availability(watch, w);
        else
            send_queue(watch, w);
    }
    pthread_mutex_unlock(&watch->lock);
}

static void *watch_thread(void *arg)
{
    struct seatcored_watch *watch = arg;
    while (!atomic_load(&watch->stop)) {
        watch_round(watch);
        struct timespec pause = {.tv_nsec = WATCH_ROUND_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

struct seatcored_watch *seatcored_watch_start(struct seatcored *daemon, uint32_t watchers_max)
{
    TK_ASSERT(daemon != NULL && watchers_max >= 1);
    struct seatcored_watch *watch = calloc(1, sizeof(*watch));
    TK_ASSERT(watch != NULL);
    watch->daemon = daemon;
    watch->watchers_max = watchers_max;
    watch->watchers = calloc(watchers_max, sizeof(struct watcher));
    TK_ASSERT(watch->watchers != NULL);
    pthread_mutex_init(&watch->lock, NULL);
    int rc = pthread_create(&watch->thread, NULL, watch_thread, watch);
    TK_ASSERT(rc == 0);
    return watch;
}

/* After the gRPC server has shut down: every stream has ended by then. */
void seatcored_watch_stop(struct seatcored_watch *watch)
{
    if (watch == NULL)
        return;
    atomic_store(&watch->stop, true);
    pthread_join(watch->thread, NULL);
    for (uint32_t i = 0; i < watch->watchers_max; i++)
        free(watch->watchers[i].states);
    free(watch->watchers);
    pthread_mutex_destroy(&watch->lock);
    free(watch);
}

static struct watcher *watcher_add(struct seatcored_watch *watch, struct rpc_call *call)
{
    for (uint32_t i = 0; i < watch->watchers_max; i++)
        if (watch->watchers[i].kind == WATCH_NONE) {
            memset(&watch->watchers[i], 0, sizeof(watch->watchers[i]));
            watch->watchers[i].call = call;
            return &watch->watchers[i];
        }
    return NULL;
}

static void refuse(struct rpc_call *call, enum tk_status status, const char *message)
{
    struct rpc_error error;
    rpc_error_from_status(&error, status, message, NULL, 0);
    rpc_stream_finish(call, &error);
}

void seatcored_watch_availability(struct seatcored *daemon, struct rpc_call *call, uint64_t event_id,
                                  uint32_t interval_ms)
{
    struct sc_event_info info;
    enum tk_status status = sc_event_get(daemon->engine, event_id, &info);
    if (status != TK_OK)
        { refuse(call, status, NULL); return; }
    struct seatcored_watch *watch = daemon->watch;
    pthread_mutex_lock(&watch->lock);
    struct watcher *w = watcher_add(watch, call);
    if (w != NULL) {
        w->kind = WATCH_AVAILABILITY;
        w->event_id = event_id;
        w->interval_ms = interval_ms == 0 ? 200 : (interval_ms < WATCH_ROUND_MS ? WATCH_ROUND_MS : interval_ms);
        w->capacity = info.counts.capacity;
        w->states = calloc((info.counts.capacity + 3u) / 4u, 1);
        TK_ASSERT(w->states != NULL);
    }
    pthread_mutex_unlock(&watch->lock);
    if (w == NULL)
        refuse(call, TK_ERR_FULL, "too many watch streams on this shard");
}

void seatcored_watch_queue(struct seatcored *daemon, struct rpc_call *call, uint64_t event_id, uint64_t user_id)
{
    struct sc_queue_view view;
    uint64_t lsn;
    enum tk_status status = sc_queue_status(daemon->engine, event_id, user_id, &view, &lsn);
    if (status != TK_OK)
        { refuse(call, status, status == TK_ERR_NOT_FOUND ? "join the queue first" : NULL); return; }
    struct seatcored_watch *watch = daemon->watch;
    pthread_mutex_lock(&watch->lock);
    struct watcher *w = watcher_add(watch, call);
    if (w != NULL) {
        w->kind = WATCH_QUEUE;
        w->event_id = event_id;
        w->user_id = user_id;
        w->interval_ms = QUEUE_PUSH_MS;
    }
    pthread_mutex_unlock(&watch->lock);
    if (w == NULL)
        refuse(call, TK_ERR_FULL, "too many watch streams on this shard");
}
