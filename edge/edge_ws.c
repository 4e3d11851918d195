/* edge_ws.c — the waiting room over WebSocket: /api/v1/events/{id}/queue/ws.
 *
 * Opening: the access token is verified (header or ?access_token=), the
 * --ws-max cap checked, then queue-svc Join (idempotent) gives the user's rank
 * and status; only then is the connection upgraded, so a refused join is a
 * plain HTTP problem (404, 409, 503 ...). Per loop, sockets are kept by event
 * (for the feed's fan-out) and by (event, user) (for admissions).
 *
 * What a socket receives (docs/edge.md, "WebSocket protocol"):
 *   {"type":"position","position":N,"eta_s":S}  while waiting: soon after the
 *       feed's head moves and at least every --ws-position-every-ms;
 *   {"type":"admitted","admission_token":T,"expires_at":E}  once;
 *   {"type":"seats","version":V,"changed":[[seat_id,status],...]}  after that;
 *   {"type":"left"} / {"type":"expired"}  then a normal close (1000).
 * Positions are computed here from the feed (edge_position.c), never polled per
 * client; a Status call per waiting socket every --ws-status-every-ms is the
 * heartbeat queue-svc needs and repairs anything the feed missed.
 *
 * Sending never blocks and never buffers without bound: a message that would
 * take a socket's unsent bytes past --ws-send-buffer-bytes closes it with 1008
 * "slow consumer". Pings go out every --ws-ping-interval-ms; a socket silent for
 * --ws-pong-timeout-ms is closed if it was asked (ws_silent). A socket being
 * closed gets CLOSE_GRACE_MS for the close handshake, then its connection is
 * dropped. Each frame leaves in one write (on_ws_send).
 *
 * Housekeeping by due time, not by walking every socket: each socket sits in
 * one slot of a per-loop timer wheel (WHEEL_SLOTS slots of WHEEL_SLOT_MS) keyed
 * by the earliest of its next position, ping, Status, pong deadline and close
 * deadline; the wheel's own timer runs every slot and services only the sockets
 * due, so a turn costs O(sockets due) and pushes spread over the period instead
 * of coming in bursts every 250 ms (the earlier design walked every socket on
 * each tick: 84 CPU-seconds for ~15,000 sockets in perf/edge-bench). Periodic
 * positions go out every 2/3 of --ws-position-every-ms, so a wheel slot and
 * some loop or scheduling lag still fit in the promised period, and never while
 * the socket's previous message is unsent. A feed head that moves (rank, leaves
 * or rate) pulls the event's waiting sockets forward instead of writing to each
 * at once: they are pushed within HEAD_SPREAD_MS (each at its own offset), and
 * no more often than HEAD_PUSH_GAP_MS apart, so several heads in a row cost one
 * write per socket. A head that did not move pushes nothing (the periodic push
 * covers it). Deadlines only ever move a socket earlier eagerly; anything that
 * makes it due later is found when its slot comes (a spurious visit is cheap).
 *
 * Lifetimes: h2o_websocket_proceed may close the connection and call back
 * on_ws_message(NULL) from inside, so sends only queue the message and mark the
 * socket dirty; every entry point flushes the dirty sockets last, one at a time
 * (flush_dirty). A socket with gRPC calls in flight outlives its connection
 * until they complete (calls, dead). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "edge.h"
#include "edge_position.h"
#include "rpc_log.h"
#include "tiketi/v1/event.pb-c.h"
#include "tiketi/v1/queue.pb-c.h"
#include "tk_assert.h"

#define EVENT_BUCKETS 256u
#define USER_BUCKETS 4096u
#define CLOSE_GRACE_MS 2000u
#define STATUS_RETRY_MS 2000u /* a repair Status no more often than this */
/* The wheel: 128 slots of 25 ms (3.2 s a turn). A socket due later than one turn
 * is simply looked at again a turn later; waiting sockets are due every 670 ms. */
#define WHEEL_SLOT_MS 25u
#define WHEEL_SLOTS 128u
#define HEAD_SPREAD_MS 200u   /* a head move's pushes are spread over this */
#define HEAD_PUSH_GAP_MS 500u /* head-driven pushes to one socket at most this often */
#define UNSENT_RETRY_MS 100u  /* a position waits this long for the socket's last message to leave */
#define DUE_NEVER UINT64_MAX
#define LATENESS_LOG_MS 10000u
#define LATE_MS 250u /* a periodic position this late counts as late in the log */
/* A wheel turn this late means the loop did not run (stopped, starved): pongs that
 * came meanwhile are unread and pings queued before it may not have left, so no
 * socket is judged silent until a whole pong timeout has passed since. */
#define STALL_MS 250u

#define POSITION_PERIOD_PERCENT 67u /* of --ws-position-every-ms (position_period_ms) */

_Static_assert((WHEEL_SLOTS & (WHEEL_SLOTS - 1u)) == 0, "wheel slots are a power of two");
_Static_assert(HEAD_SPREAD_MS < WHEEL_SLOTS * WHEEL_SLOT_MS, "a head's spread fits in one turn");
_Static_assert(WHEEL_SLOT_MS * 4u < 300u * POSITION_PERIOD_PERCENT / 100u,
               "a slot is small against the shortest position period (--ws-position-every-ms >= 300)");

enum ws_state { WS_WAITING, WS_ADMITTED, WS_CLOSING };

struct ws_event {
    uint64_t event_id;
    struct ws_event *next;
    h2o_linklist_t sockets;
    uint32_t socket_count, admitted_count;
    struct edge_feed_head *head; /* latest from the feed (a reference), NULL before one */
    uint32_t admit_per_s;
    int64_t sale_opens_at_ms;
};

struct edge_ws {
    h2o_websocket_conn_t *conn;
    struct edge_loop *loop;
    struct ws_event *event;
    h2o_linklist_t event_link, all_link, dirty_link;
    h2o_linklist_t wheel_link; /* in the wheel slot of due_ms (or a batch being serviced) */
    uint64_t due_ms;           /* when the wheel services this socket next */
    uint64_t next_position_ms; /* while waiting: the next periodic (or head-driven) position */
    uint32_t spread_ms;        /* this socket's offset within HEAD_SPREAD_MS */
    struct edge_ws *user_next;
    uint64_t user_id;
    char user_text[SVC_JWT_SUB_BYTES];
    uint32_t rank;
    enum ws_state state;
    bool admitted_counted;
    uint32_t position, eta_s;
    uint64_t last_push_ms, last_status_ms, last_ping_ms, last_seen_ms, close_deadline_ms;
    uint64_t ping_unanswered_ms; /* when the oldest ping not followed by any frame went out; 0: none */
    bool close_queued;      /* the close frame is in wslay's queue */
    uint16_t close_code;    /* a close waiting for the last messages to leave (finish) */
    char close_reason[64];
    bool status_pending;
    bool socket_tuned;
    uint32_t calls;
    bool dead;
    /* One write per frame (on_ws_send): wslay hands a frame's header and payload
     * over in two calls; the header waits here for its payload. */
    uint8_t header_bytes[16];
    uint32_t header_len;
    uint8_t out_inline[64]; /* a position frame fits: no allocation per push */
    uint8_t *out_heap;      /* larger frames (admission, seat deltas); freed with ws */
    uint32_t out_heap_capacity;
};

struct edge_ws_registry {
    struct edge_loop *loop;
    struct ws_event *events[EVENT_BUCKETS];
    struct edge_ws *users[USER_BUCKETS];
    h2o_linklist_t all, dirty;
    h2o_linklist_t wheel[WHEEL_SLOTS];
    uint64_t wheel_cursor_ms; /* start of the next slot to run (a multiple of WHEEL_SLOT_MS) */
    h2o_timeout_t wheel_timeout;
    h2o_timeout_entry_t wheel_timer;
    uint32_t opened; /* sockets opened on this loop: spreads their head-driven pushes */
    uint64_t last_run_ms, resumed_ms; /* the wheel's last turn; the end of its last stall (STALL_MS) */
    /* how late periodic positions leave, logged every LATENESS_LOG_MS (debug level) */
    uint64_t lateness_since_ms, lateness_max_ms;
    uint32_t late_pushes, pushes;
};

static void on_wheel_timer(h2o_timeout_entry_t *entry);

static const struct edge_config *config_of(const struct edge_ws *ws)
{
    return ws->loop->server->config;
}

/* ---- registry ---- */

struct edge_ws_registry *edge_ws_registry_create(struct edge_loop *loop)
{
    struct edge_ws_registry *registry = calloc(1, sizeof(*registry));
    TK_ASSERT(registry != NULL);
    registry->loop = loop;
    h2o_linklist_init_anchor(&registry->all);
    h2o_linklist_init_anchor(&registry->dirty);
    for (uint32_t i = 0; i < WHEEL_SLOTS; i++)
        h2o_linklist_init_anchor(&registry->wheel[i]);
    registry->wheel_cursor_ms = edge_monotonic_ms() / WHEEL_SLOT_MS * WHEEL_SLOT_MS;
    /* on the loop's thread (loop_setup): the wheel's timer is this loop's */
    h2o_timeout_init(loop->ctx.loop, &registry->wheel_timeout, WHEEL_SLOT_MS);
    registry->wheel_timer.cb = on_wheel_timer;
    h2o_timeout_link(loop->ctx.loop, &registry->wheel_timeout, &registry->wheel_timer);
    return registry;
}

static uint32_t event_bucket(uint64_t event_id)
{
    return (uint32_t)((event_id * 0x9e3779b97f4a7c15ull) >> 56) % EVENT_BUCKETS;
}

static uint32_t user_bucket(uint64_t event_id, uint64_t user_id)
{
    return (uint32_t)(((event_id * 0x9e3779b97f4a7c15ull) ^ (user_id * 0xc2b2ae3d27d4eb4full)) >> 40) % USER_BUCKETS;
}

static struct ws_event *event_find(struct edge_ws_registry *registry, uint64_t event_id)
{
    for (struct ws_event *e = registry->events[event_bucket(event_id)]; e != NULL; e = e->next)
        if (e->event_id == event_id)
            return e;
    return NULL;
}

static void event_info_done(struct edge_call *call);

static struct ws_event *event_get(struct edge_loop *loop, uint64_t event_id, const char *event_text)
{
    struct edge_ws_registry *registry = loop->ws;
    struct ws_event *event = event_find(registry, event_id);
    if (event != NULL)
        return event;
    event = calloc(1, sizeof(*event));
    TK_ASSERT(event != NULL);
    event->event_id = event_id;
    h2o_linklist_init_anchor(&event->sockets);
    uint32_t b = event_bucket(event_id);
    event->next = registry->events[b];
    registry->events[b] = event;
    edge_feed_interest(loop->server->feed, event_id, +1);
    /* admit_per_s and sale_opens_at, for ETAs before the feed has measured a rate */
    Tiketi__V1__GetEventRequest request = TIKETI__V1__GET_EVENT_REQUEST__INIT;
    request.event_id = (char *)event_text;
    edge_call_loop(loop, EDGE_DEP_EVENT, EDGE_M_GET_EVENT, &request.base, &tiketi__v1__event_detail__descriptor,
                   event_info_done, (void *)(uintptr_t)event_id);
    return event;
}

static void event_drop_if_empty(struct edge_loop *loop, struct ws_event *event)
{
    if (event->socket_count > 0)
        return;
    TK_ASSERT(event->admitted_count == 0 && h2o_linklist_is_empty(&event->sockets));
    struct ws_event **at = &loop->ws->events[event_bucket(event->event_id)];
    while (*at != event)
        at = &(*at)->next;
    *at = event->next;
    edge_feed_interest(loop->server->feed, event->event_id, -1);
    if (event->head != NULL)
        edge_shared_unref(&event->head->shared);
    free(event);
}

/* RFC 3339 UTC as event-svc writes it ("2030-05-01T20:00:00Z", maybe with a fraction). */
static bool parse_utc_ms(const char *text, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return false;
    int64_t ms = (int64_t)timegm(&tm) * 1000;
    if (*rest == '.') {
        int64_t scale = 100;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            ms += scale > 0 ? (*rest - '0') * scale : 0;
    }
    if (*rest != 'Z')
        return false;
    *out = ms;
    return true;
}

static void event_info_done(struct edge_call *call)
{
    struct ws_event *event = event_find(call->loop->ws, (uint64_t)(uintptr_t)call->data);
    if (event == NULL || call->code != GRPC_STATUS_OK)
        return; /* gone, or event-svc away: ETAs fall back to one admission a second */
    const Tiketi__V1__EventDetail *detail = (const void *)call->reply;
    if (detail->queue != NULL)
        event->admit_per_s = detail->queue->admit_per_s;
    if (detail->event != NULL)
        parse_utc_ms(detail->event->sale_opens_at, &event->sale_opens_at_ms);
}

/* ---- the wheel: sockets by due time ---- */

/* now - then, never wrapping: a time taken before another one was read (a stale
 * "now" held across a batch) counts as no time at all, not as 584 million years. */
static uint64_t elapsed_ms(uint64_t now, uint64_t then)
{
    return now > then ? now - then : 0;
}

static void wheel_put(struct edge_ws *ws, uint64_t due_ms)
{
    struct edge_ws_registry *registry = ws->loop->ws;
    TK_ASSERT(due_ms != DUE_NEVER);
    if (h2o_linklist_is_linked(&ws->wheel_link))
        h2o_linklist_unlink(&ws->wheel_link);
    ws->due_ms = due_ms;
    /* a time already past goes in the next slot to run; never in one that ran */
    uint64_t at = due_ms < registry->wheel_cursor_ms ? registry->wheel_cursor_ms : due_ms;
    h2o_linklist_insert(&registry->wheel[(at / WHEEL_SLOT_MS) & (WHEEL_SLOTS - 1u)], &ws->wheel_link);
}

/* Makes ws due no later than due_ms (something became due sooner). */
static void wheel_sooner(struct edge_ws *ws, uint64_t due_ms)
{
    if (!h2o_linklist_is_linked(&ws->wheel_link) || due_ms < ws->due_ms)
        wheel_put(ws, due_ms);
}

/* ---- sending ---- */

static void mark_dirty(struct edge_ws *ws)
{
    if (!h2o_linklist_is_linked(&ws->dirty_link))
        h2o_linklist_insert(&ws->loop->ws->dirty, &ws->dirty_link);
}

static void queue_close(struct edge_ws *ws, uint16_t code, const char *reason)
{
    TK_ASSERT(ws->state == WS_CLOSING && !ws->close_queued);
    ws->close_queued = true;
    wslay_event_queue_close(ws->conn->ws_ctx, code, (const uint8_t *)reason, strlen(reason));
    mark_dirty(ws);
}

/* Closes at once: wslay sends control frames ahead of queued messages, which is
 * what a slow consumer or a shutdown needs. */
static void ws_close(struct edge_ws *ws, uint16_t code, const char *reason)
{
    if (ws->state == WS_CLOSING)
        return;
    ws->state = WS_CLOSING;
    ws->close_deadline_ms = edge_monotonic_ms() + CLOSE_GRACE_MS;
    queue_close(ws, code, reason);
    wheel_sooner(ws, ws->close_deadline_ms);
}

/* Closes once the queued messages have left (the wheel queues the close frame),
 * so a last {"type":"left"} arrives before the close. */
static void ws_close_after_sent(struct edge_ws *ws, uint16_t code, const char *reason)
{
    if (ws->state == WS_CLOSING)
        return;
    uint64_t now = edge_monotonic_ms();
    ws->state = WS_CLOSING;
    ws->close_deadline_ms = now + CLOSE_GRACE_MS;
    ws->close_code = code;
    snprintf(ws->close_reason, sizeof(ws->close_reason), "%s", reason);
    wheel_sooner(ws, now + WHEEL_SLOT_MS); /* the wheel queues the close once the messages left */
}

static void ws_send(struct edge_ws *ws, const char *text, size_t len, enum edge_ws_message_type type)
{
    if (ws->state == WS_CLOSING)
        return;
    struct edge_server *server = ws->loop->server;
    size_t queued = wslay_event_get_queued_msg_length(ws->conn->ws_ctx);
    if (queued + len > config_of(ws)->ws_send_buffer_bytes) {
        atomic_fetch_add_explicit(&server->metrics.ws_slow_closed, 1, memory_order_relaxed);
        rpc_log(RPC_LOG_INFO, "", "websocket of user %s closed as a slow consumer (%zu bytes unsent)", ws->user_text,
                queued);
        ws_close(ws, 1008, "slow consumer: too many unsent messages");
        return;
    }
    struct wslay_event_msg msg = {.opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)text, .msg_length = len};
    if (wslay_event_queue_msg(ws->conn->ws_ctx, &msg) != 0) {
        ws_close(ws, 1011, "cannot queue a message");
        return;
    }
    atomic_fetch_add_explicit(&server->metrics.ws_sent[type], 1, memory_order_relaxed);
    mark_dirty(ws);
}

static void ws_send_json(struct edge_ws *ws, json_t *message, enum edge_ws_message_type type)
{
    if (message == NULL) { /* a service's value that is not UTF-8: nothing sensible to send */
        rpc_log(RPC_LOG_WARN, "", "websocket of user %s: a message could not be encoded as JSON", ws->user_text);
        return;
    }
    char *text = json_dumps(message, JSON_COMPACT);
    json_decref(message);
    TK_ASSERT(text != NULL);
    ws_send(ws, text, strlen(text), type);
    free(text);
}

static void ws_destroy(struct edge_ws *ws);
static void ws_schedule(struct edge_ws *ws, uint64_t now);

/* A WebSocket lives long and receives little: its kernel send buffer is bounded
 * (SO_SNDBUF, --ws-socket-buffer-bytes) rather than autotuned up to megabytes, so
 * kernel memory per socket is bounded too and a stalled client shows up in the
 * send buffer check soon. Done once the 101 is out (the socket is ours then). */
static void tune_socket(struct edge_ws *ws)
{
    uint32_t bytes = config_of(ws)->ws_socket_buffer_bytes;
    if (ws->socket_tuned || ws->conn->sock == NULL)
        return;
    ws->socket_tuned = true;
    int value = (int)bytes;
    if (bytes > 0 && setsockopt(h2o_socket_get_fd(ws->conn->sock), SOL_SOCKET, SO_SNDBUF, &value, sizeof(value)) != 0)
        rpc_log(RPC_LOG_DEBUG, "", "SO_SNDBUF on a websocket: %s", strerror(errno));
}

static void flush_dirty(struct edge_loop *loop)
{
    struct edge_ws_registry *registry = loop->ws;
    while (!h2o_linklist_is_empty(&registry->dirty)) {
        struct edge_ws *ws = H2O_STRUCT_FROM_MEMBER(struct edge_ws, dirty_link, registry->dirty.next);
        h2o_linklist_unlink(&ws->dirty_link);
        if (ws->conn->sock == NULL)
            continue; /* the 101 is still being written: h2o proceeds once it is out */
        tune_socket(ws);
        h2o_websocket_proceed(ws->conn); /* may close it: ws is not touched after this */
    }
}

/* ---- state changes ---- */

static void count_admitted(struct edge_ws *ws)
{
    if (ws->admitted_counted)
        return;
    ws->admitted_counted = true;
    if (ws->event->admitted_count++ == 0)
        edge_seats_interest(ws->loop->server->seats, ws->event->event_id, +1);
}

static void push_admitted(struct edge_ws *ws, const char *token, const char *expires_at)
{
    if (ws->state != WS_WAITING)
        return;
    ws->state = WS_ADMITTED;
    ws_send_json(ws, json_pack("{s:s, s:s, s:s}", "type", "admitted", "admission_token", token, "expires_at",
                               expires_at != NULL ? expires_at : ""),
                 EDGE_WS_ADMITTED);
    count_admitted(ws);
}

/* Periodic positions every 2/3 of --ws-position-every-ms: a wheel slot late and a
 * few hundred ms of loop or scheduling lag still leave every gap inside the
 * promised period (with 3/4, most of 19,000 clients in perf/edge-bench saw one
 * gap of 1.0-1.5 s in 20 s on the loaded 2-core machine). */
static uint64_t position_period_ms(const struct edge_config *config)
{
    uint64_t period = (uint64_t)config->ws_position_every_ms * POSITION_PERIOD_PERCENT / 100u;
    TK_ASSERT(period > 2u * WHEEL_SLOT_MS);
    return period;
}

static void push_position(struct edge_ws *ws, uint64_t now_ms)
{
    struct ws_event *event = ws->event;
    const struct edge_feed_head *head = event->head;
    if (head != NULL && head->head_rank <= ws->rank) {
        int64_t wait_open = event->sale_opens_at_ms - (int64_t)edge_now_ms();
        ws->position = edge_position(ws->rank, head->head_rank, head->left, head->left_count);
        ws->eta_s = edge_eta_s(ws->position, head->rate, event->admit_per_s, wait_open > 0 ? wait_open : 0);
    }
    char text[96];
    int len = snprintf(text, sizeof(text), "{\"type\":\"position\",\"position\":%u,\"eta_s\":%u}", ws->position,
                       ws->eta_s);
    ws_send(ws, text, (size_t)len, EDGE_WS_POSITION);
    ws->last_push_ms = now_ms;
    ws->next_position_ms = now_ms + position_period_ms(config_of(ws));
}

static void finish(struct edge_ws *ws, const char *status)
{
    char text[48];
    int len = snprintf(text, sizeof(text), "{\"type\":\"%s\"}", status);
    ws_send(ws, text, (size_t)len, EDGE_WS_OTHER);
    ws_close_after_sent(ws, 1000, status);
}

/* A view from Join or Status: what the socket should say next. */
static void apply_view(struct edge_ws *ws, const Tiketi__V1__WaitingRoomView *view, uint64_t now_ms)
{
    if (ws->state != WS_WAITING)
        return;
    if (strcmp(view->status, "admitted") == 0) {
        push_admitted(ws, view->admission_token, view->admission_expires_at);
    } else if (strcmp(view->status, "waiting") == 0) {
        ws->rank = view->rank;
        ws->position = view->position;
        ws->eta_s = view->eta_s;
        push_position(ws, now_ms);
    } else {
        finish(ws, strcmp(view->status, "expired") == 0 ? "expired" : "left");
    }
}

/* ---- calls made for a socket ---- */

static void ws_free(struct edge_ws *ws)
{
    TK_ASSERT(ws->calls == 0 && ws->conn == NULL);
    free(ws->out_heap);
    free(ws);
}

static void ws_release_call(struct edge_ws *ws)
{
    TK_ASSERT(ws->calls > 0);
    ws->calls--;
    if (ws->dead && ws->calls == 0)
        ws_free(ws);
}

static void on_status(struct edge_call *call)
{
    struct edge_ws *ws = call->data;
    ws->status_pending = false;
    if (!ws->dead) {
        if (call->code == GRPC_STATUS_OK)
            apply_view(ws, (const void *)call->reply, edge_monotonic_ms());
        else if (call->code == GRPC_STATUS_NOT_FOUND)
            finish(ws, "expired"); /* queue-svc no longer knows this user in this room */
        flush_dirty(ws->loop);
    }
    ws_release_call(ws);
}

static void request_status(struct edge_ws *ws, uint64_t now_ms)
{
    if (ws->status_pending || ws->state != WS_WAITING)
        return;
    ws->status_pending = true;
    ws->last_status_ms = now_ms;
    ws->calls++;
    char event_text[24];
    snprintf(event_text, sizeof(event_text), "%llu", (unsigned long long)ws->event->event_id);
    Tiketi__V1__WaitingRoomRequest request = TIKETI__V1__WAITING_ROOM_REQUEST__INIT;
    request.event_id = event_text;
    request.user_id = ws->user_text;
    edge_call_loop(ws->loop, EDGE_DEP_QUEUE, EDGE_M_STATUS, &request.base, &tiketi__v1__waiting_room_view__descriptor,
                   on_status, ws);
}

/* ---- connection events ---- */

static void ws_unregister(struct edge_ws *ws)
{
    struct edge_loop *loop = ws->loop;
    struct ws_event *event = ws->event;
    h2o_linklist_unlink(&ws->event_link);
    h2o_linklist_unlink(&ws->all_link);
    if (h2o_linklist_is_linked(&ws->dirty_link))
        h2o_linklist_unlink(&ws->dirty_link);
    if (h2o_linklist_is_linked(&ws->wheel_link))
        h2o_linklist_unlink(&ws->wheel_link);
    struct edge_ws **at = &loop->ws->users[user_bucket(event->event_id, ws->user_id)];
    while (*at != ws)
        at = &(*at)->user_next;
    *at = ws->user_next;
    if (ws->admitted_counted && --event->admitted_count == 0)
        edge_seats_interest(loop->server->seats, event->event_id, -1);
    event->socket_count--;
    event_drop_if_empty(loop, event);
    ws->event = NULL;
}

/* The connection is gone (h2o closed it, or we dropped it). */
static void ws_destroy(struct edge_ws *ws)
{
    struct edge_server *server = ws->loop->server;
    ws_unregister(ws);
    uint32_t before = atomic_fetch_sub(&server->websockets, 1);
    TK_ASSERT(before >= 1);
    ws->conn = NULL;
    if (ws->calls == 0)
        ws_free(ws);
    else
        ws->dead = true;
}

/* What h2o's own write completion does (lib/websocket.c): close on error, else go on. */
static void on_ws_written(h2o_socket_t *sock, const char *err)
{
    h2o_websocket_conn_t *conn = sock->data;
    if (err != NULL) {
        conn->cb(conn, NULL);
        return;
    }
    h2o_websocket_proceed(conn);
}

/* wslay's send callback in place of h2o's. h2o's writes each piece wslay hands
 * over: a frame's 2-10 byte header, then its payload, each a writev and a loop
 * turn of its own; with ~20,000 sockets those syscalls were most of the edge's CPU
 * (perf/README.md, edge-bench). Here a header that announces more (WSLAY_MSG_MORE)
 * is kept and written with its payload: one write per frame. As in h2o's, one
 * write at a time per socket (WOULDBLOCK while one is in flight); its completion
 * proceeds, which hands over the next frame. */
static ssize_t on_ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user_data)
{
    h2o_websocket_conn_t *conn = user_data;
    struct edge_ws *ws = conn->data;
    TK_ASSERT(ws != NULL && ws->conn == conn && ws->header_len <= sizeof(ws->header_bytes));
    if (h2o_socket_is_writing(conn->sock)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if ((flags & WSLAY_MSG_MORE) != 0 && len <= sizeof(ws->header_bytes) - ws->header_len) {
        memcpy(ws->header_bytes + ws->header_len, data, len);
        ws->header_len += (uint32_t)len;
        return (ssize_t)len;
    }
    size_t total = ws->header_len + len;
    uint8_t *out = ws->out_inline;
    if (total > sizeof(ws->out_inline)) {
        if (total > ws->out_heap_capacity) {
            uint8_t *grown = realloc(ws->out_heap, total);
            if (grown == NULL) {
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                return -1;
            }
            ws->out_heap = grown;
            ws->out_heap_capacity = (uint32_t)total;
        }
        out = ws->out_heap;
    }
    memcpy(out, ws->header_bytes, ws->header_len);
    memcpy(out + ws->header_len, data, len);
    ws->header_len = 0;
    h2o_iovec_t buf = h2o_iovec_init(out, total);
    h2o_socket_write(conn->sock, &buf, 1, on_ws_written); /* out stays put until the completion */
    return (ssize_t)len;
}

static void on_ws_message(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    struct edge_ws *ws = conn->data;
    if (arg == NULL) {
        ws_destroy(ws);
        h2o_websocket_close(conn);
        return;
    }
    ws->last_seen_ms = edge_monotonic_ms(); /* any frame, pongs included, shows the peer is there */
    ws->ping_unanswered_ms = 0;
    /* The protocol is server push: text from clients is ignored; wslay answers pings and closes. */
}

static void ws_drop(struct edge_ws *ws)
{
    h2o_websocket_conn_t *conn = ws->conn;
    ws_destroy(ws);
    h2o_websocket_close(conn);
}

/* ---- opening ---- */

struct ws_open {
    const char *client_key; /* in the request's headers: valid while it lives */
};

static void on_joined(struct edge_call *call)
{
    struct edge_request *r = call->request;
    struct edge_server *server = r->server;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    if (atomic_fetch_add(&server->websockets, 1) >= server->config->ws_max) {
        atomic_fetch_sub(&server->websockets, 1);
        atomic_fetch_add_explicit(&server->metrics.ws_refused, 1, memory_order_relaxed);
        edge_send_problem_with(r, (struct edge_problem){503, "too_many_websockets", "Too many WebSockets", true, false},
                               "this server is at its WebSocket limit; retry shortly", NULL, 1);
        return;
    }
    const Tiketi__V1__WaitingRoomView *view = (const void *)call->reply;
    struct edge_loop *loop = r->loop;
    struct edge_ws *ws = calloc(1, sizeof(*ws));
    TK_ASSERT(ws != NULL);
    ws->loop = loop;
    uint64_t user_id = 0;
    edge_parse_u64(r->claims.sub, strlen(r->claims.sub), &user_id);
    ws->user_id = user_id;
    snprintf(ws->user_text, sizeof(ws->user_text), "%s", r->claims.sub);
    ws->rank = view->rank;
    uint64_t now = edge_monotonic_ms();
    ws->last_ping_ms = ws->last_seen_ms = ws->last_status_ms = ws->last_push_ms = now;
    ws->next_position_ms = now; /* apply_view pushes the first one */
    /* the golden-ratio step spreads consecutive sockets evenly over HEAD_SPREAD_MS */
    ws->spread_ms = (uint32_t)(((uint64_t)loop->ws->opened++ * 2654435769u) >> 16) % HEAD_SPREAD_MS;
    ws->event = event_get(loop, r->match.event_number, r->match.event_id);
    ws->event->socket_count++;
    h2o_linklist_insert(&ws->event->sockets, &ws->event_link);
    h2o_linklist_insert(&loop->ws->all, &ws->all_link);
    uint32_t b = user_bucket(ws->event->event_id, ws->user_id);
    ws->user_next = loop->ws->users[b];
    loop->ws->users[b] = ws;
    edge_add_header(r, "x-request-id", r->request_id); /* the 101 carries it too */
    ws->conn = h2o_upgrade_to_websocket(r->req, ((struct ws_open *)call->data)->client_key, ws, on_ws_message);
    wslay_event_config_set_max_recv_msg_length(ws->conn->ws_ctx, EDGE_WS_RECV_BYTES_MAX);
    struct wslay_event_callbacks callbacks = ws->conn->ws_callbacks; /* h2o's, but one write per frame */
    callbacks.send_callback = on_ws_send;
    wslay_event_config_set_callbacks(ws->conn->ws_ctx, &callbacks);
    atomic_fetch_add_explicit(&server->metrics.ws_opened, 1, memory_order_relaxed);
    apply_view(ws, view, now); /* the first message, sent once the 101 is out */
    ws_schedule(ws, now);
}

void edge_api_queue_ws(struct edge_request *r)
{
    const char *client_key = NULL;
    if (h2o_is_websocket_handshake(r->req, &client_key) != 0 || client_key == NULL) {
        edge_send_problem(r, 400, "this is a WebSocket endpoint: GET with Upgrade: websocket over HTTP/1.1");
        return;
    }
    struct edge_server *server = r->server;
    if (atomic_load(&server->websockets) >= server->config->ws_max) {
        atomic_fetch_add_explicit(&server->metrics.ws_refused, 1, memory_order_relaxed);
        edge_send_problem_with(r, (struct edge_problem){503, "too_many_websockets", "Too many WebSockets", true, false},
                               "this server is at its WebSocket limit; retry shortly", NULL, 1);
        return;
    }
    struct ws_open *open = h2o_mem_alloc_pool(&r->req->pool, sizeof(*open));
    open->client_key = client_key;
    Tiketi__V1__WaitingRoomRequest request = TIKETI__V1__WAITING_ROOM_REQUEST__INIT;
    request.event_id = r->match.event_id;
    request.user_id = r->claims.sub;
    edge_call_start(r, EDGE_DEP_QUEUE, EDGE_M_JOIN, &request.base, &tiketi__v1__waiting_room_view__descriptor, 0,
                    on_joined, open);
}

/* ---- the feed and seat deltas, fanned out on this loop ---- */

/* Whether positions or ETAs may differ under after than under before. */
static bool head_moved(const struct edge_feed_head *before, const struct edge_feed_head *after)
{
    if (before == NULL)
        return true;
    TK_ASSERT(before->event_id == after->event_id);
    if (before->head_rank != after->head_rank || before->left_count != after->left_count || before->rate != after->rate)
        return true;
    return memcmp(before->left, after->left, (size_t)after->left_count * sizeof(after->left[0])) != 0;
}

/* A head that moved makes the event's waiting sockets due soon (each at its own
 * offset, and not sooner than HEAD_PUSH_GAP_MS after its last push): the wheel
 * writes, so heads in quick succession cost one push per socket, and sockets the
 * head passed ask Status there too (ws_service). A head that did not move costs
 * nothing per socket. */
static void on_head(struct edge_loop *loop, struct edge_feed_head *head)
{
    struct ws_event *event = event_find(loop->ws, head->event_id);
    if (event == NULL)
        return;
    bool moved = head_moved(event->head, head);
    if (event->head != NULL)
        edge_shared_unref(&event->head->shared);
    edge_shared_ref(&head->shared);
    event->head = head;
    if (!moved)
        return;
    uint64_t now = edge_monotonic_ms();
    for (h2o_linklist_t *l = event->sockets.next; l != &event->sockets; l = l->next) {
        struct edge_ws *ws = H2O_STRUCT_FROM_MEMBER(struct edge_ws, event_link, l);
        if (ws->state != WS_WAITING)
            continue;
        uint64_t at = now + ws->spread_ms;
        if (at < ws->last_push_ms + HEAD_PUSH_GAP_MS)
            at = ws->last_push_ms + HEAD_PUSH_GAP_MS;
        if (at < ws->next_position_ms) {
            ws->next_position_ms = at;
            wheel_sooner(ws, at);
        }
    }
}

static void on_admitted(struct edge_loop *loop, const struct edge_feed_admitted *admitted)
{
    for (struct edge_ws *ws = loop->ws->users[user_bucket(admitted->event_id, admitted->user_id)]; ws != NULL;
         ws = ws->user_next)
        if (ws->user_id == admitted->user_id && ws->event->event_id == admitted->event_id)
            push_admitted(ws, admitted->token, admitted->expires_at);
}

static void on_left(struct edge_loop *loop, const struct edge_feed_left *left)
{
    for (struct edge_ws *ws = loop->ws->users[user_bucket(left->event_id, left->user_id)]; ws != NULL;
         ws = ws->user_next)
        if (ws->user_id == left->user_id && ws->event->event_id == left->event_id && ws->state == WS_WAITING &&
            ws->rank == left->rank)
            finish(ws, "left");
}

static void on_seats(struct edge_loop *loop, const struct edge_seat_delta *delta)
{
    struct ws_event *event = event_find(loop->ws, delta->event_id);
    if (event == NULL || event->admitted_count == 0)
        return;
    for (h2o_linklist_t *l = event->sockets.next; l != &event->sockets; l = l->next) {
        struct edge_ws *ws = H2O_STRUCT_FROM_MEMBER(struct edge_ws, event_link, l);
        if (ws->state == WS_ADMITTED)
            ws_send(ws, delta->json, delta->len, EDGE_WS_SEATS);
    }
}

void edge_ws_on_broadcast(struct edge_loop *loop, enum edge_broadcast_kind kind, struct edge_shared *payload)
{
    switch (kind) {
    case EDGE_BROADCAST_FEED_HEAD:
        on_head(loop, (struct edge_feed_head *)payload);
        break;
    case EDGE_BROADCAST_FEED_ADMITTED:
        on_admitted(loop, (const struct edge_feed_admitted *)payload);
        break;
    case EDGE_BROADCAST_FEED_LEFT:
        on_left(loop, (const struct edge_feed_left *)payload);
        break;
    case EDGE_BROADCAST_SEATS:
        on_seats(loop, (const struct edge_seat_delta *)payload);
        break;
    default:
        TK_UNREACHABLE();
    }
    flush_dirty(loop);
}

/* ---- housekeeping: the wheel's turns ---- */

/* Closed for silence: nothing received for --ws-pong-timeout-ms, although a ping
 * went out at least half of that ago and no answer waits unread. The ping
 * condition is the fix for healthy sockets closed while the edge was late: the
 * old rule (silence alone) closed every socket of a loop that had stalled longer
 * than the timeout, or whose pings sat behind seconds of queued positions, at
 * its next tick, before the client had been asked anything. And not within a
 * pong timeout of the loop's own stall (STALL_MS): a ping queued just before it
 * may have left only now (a TSan edge stopped for 2.5 s in test_queue's
 * PongsWhileTheEdgeIsLate closed 1 socket of 40 that way).
 *
 * ws_silent_from_ms: the earliest time those conditions on time can all hold (a
 * ping is unanswered); ws_silent adds the look for an unread answer. */
static uint64_t ws_silent_from_ms(const struct edge_ws *ws)
{
    const struct edge_config *config = config_of(ws);
    TK_ASSERT(ws->ping_unanswered_ms != 0);
    uint64_t from = ws->last_seen_ms + config->ws_pong_timeout_ms + 1u;
    uint64_t asked = ws->ping_unanswered_ms + config->ws_pong_timeout_ms / 2u;
    uint64_t resumed = ws->loop->ws->resumed_ms + config->ws_pong_timeout_ms + 1u;
    from = asked > from ? asked : from;
    return resumed > from ? resumed : from;
}

/* The earliest time ws needs looking at. */
static uint64_t ws_next_due(const struct edge_ws *ws, uint64_t now)
{
    const struct edge_config *config = config_of(ws);
    if (ws->conn == NULL || ws->conn->sock == NULL)
        return now + WHEEL_SLOT_MS; /* the 101 is still being written */
    if (ws->state == WS_CLOSING)
        return ws->close_queued ? ws->close_deadline_ms : now + WHEEL_SLOT_MS;
    uint64_t due = ws->last_ping_ms + config->ws_ping_interval_ms;
    if (ws->ping_unanswered_ms != 0) {
        uint64_t silent_at = ws_silent_from_ms(ws);
        due = silent_at < due ? silent_at : due;
    }
    if (ws->state == WS_WAITING) {
        due = ws->next_position_ms < due ? ws->next_position_ms : due;
        uint64_t status = ws->last_status_ms + config->ws_status_every_ms;
        if (!ws->status_pending && status < due)
            due = status;
    }
    TK_ASSERT(due != DUE_NEVER);
    return due;
}

static void ws_schedule(struct edge_ws *ws, uint64_t now)
{
    wheel_put(ws, ws_next_due(ws, now));
}

static void ws_ping(struct edge_ws *ws, uint64_t now)
{
    struct wslay_event_msg ping = {.opcode = WSLAY_PING, .msg = (const uint8_t *)"tiketi", .msg_length = 6};
    if (wslay_event_queue_msg(ws->conn->ws_ctx, &ping) == 0)
        mark_dirty(ws);
    ws->last_ping_ms = now;
    if (ws->ping_unanswered_ms == 0)
        ws->ping_unanswered_ms = now;
}

/* Whether the peer sent something this loop has not read yet: then it answered,
 * and a late loop (not the client) is why nothing was seen. Looked at only when a
 * socket is about to be closed for silence: one recv(MSG_PEEK) then. */
static bool ws_answer_waiting(struct edge_ws *ws)
{
    h2o_socket_t *sock = ws->conn->sock;
    TK_ASSERT(sock != NULL);
    if (sock->input->size > 0)
        return true;
    uint8_t byte;
    ssize_t n = recv(h2o_socket_get_fd(sock), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0;
}

/* Closed for silence (ws_silent_from_ms says when): the time conditions hold and
 * no answer waits unread. */
static bool ws_silent(struct edge_ws *ws, uint64_t now)
{
    if (ws->ping_unanswered_ms == 0 || now < ws_silent_from_ms(ws))
        return false; /* not asked, or not long enough ago: our lateness, not the client's silence */
    return !ws_answer_waiting(ws);
}

static void note_lateness(struct edge_ws_registry *registry, uint64_t late_ms)
{
    registry->pushes++;
    registry->late_pushes += late_ms >= LATE_MS;
    registry->lateness_max_ms = late_ms > registry->lateness_max_ms ? late_ms : registry->lateness_max_ms;
}

static void log_lateness(struct edge_ws_registry *registry, uint64_t now)
{
    if (elapsed_ms(now, registry->lateness_since_ms) < LATENESS_LOG_MS)
        return;
    if (registry->pushes > 0)
        rpc_log(RPC_LOG_DEBUG, "", "websockets of loop %u: %u periodic positions, %u of them %u ms late or more, "
                "the latest %llu ms late", registry->loop->index, registry->pushes, registry->late_pushes, LATE_MS,
                (unsigned long long)registry->lateness_max_ms);
    registry->lateness_since_ms = now;
    registry->pushes = registry->late_pushes = 0;
    registry->lateness_max_ms = 0;
}

/* What is due for ws at now. false when ws is gone (dropped: not to be touched). */
static bool ws_service(struct edge_ws *ws, uint64_t now)
{
    const struct edge_config *config = config_of(ws);
    if (ws->conn->sock == NULL)
        return true; /* the 101 is still being written; h2o calls back either way */
    if (ws->state == WS_CLOSING) {
        if (now >= ws->close_deadline_ms) {
            ws_drop(ws); /* no close handshake in time: drop the connection */
            return false;
        }
        if (!ws->close_queued && wslay_event_get_queued_msg_count(ws->conn->ws_ctx) == 0)
            queue_close(ws, ws->close_code, ws->close_reason);
        return true;
    }
    if (ws_silent(ws, now)) {
        atomic_fetch_add_explicit(&ws->loop->server->metrics.ws_pong_timeouts, 1, memory_order_relaxed);
        rpc_log(RPC_LOG_INFO, "", "websocket of user %s closed: nothing received for %llu ms", ws->user_text,
                (unsigned long long)elapsed_ms(now, ws->last_seen_ms));
        ws_close(ws, 1008, "no answer to pings");
        return true;
    }
    if (ws->state == WS_WAITING && now >= ws->next_position_ms) {
        /* One position in flight per socket: the pile-up of positions queued faster than
         * they could be written is what stalled the loops for seconds (and left pongs
         * unread past the timeout). A position is only worth its newest value anyway. */
        if (wslay_event_get_queued_msg_count(ws->conn->ws_ctx) == 0) {
            note_lateness(ws->loop->ws, now - ws->next_position_ms);
            push_position(ws, now);
        } else
            ws->next_position_ms = now + UNSENT_RETRY_MS;
    }
    if (elapsed_ms(now, ws->last_ping_ms) >= config->ws_ping_interval_ms)
        ws_ping(ws, now);
    if (ws->state != WS_WAITING)
        return true;
    const struct edge_feed_head *head = ws->event->head;
    bool passed = head != NULL && ws->rank < head->head_rank; /* passed without an admitted message: ask */
    if (elapsed_ms(now, ws->last_status_ms) >= (passed ? STATUS_RETRY_MS : config->ws_status_every_ms))
        request_status(ws, now);
    return true;
}

/* Runs the wheel's slots whose time is over, at most one turn (after a longer
 * stall one turn has looked at every socket once, which services all that are due). */
static void wheel_run(struct edge_loop *loop)
{
    struct edge_ws_registry *registry = loop->ws;
    uint64_t now = edge_monotonic_ms();
    if (registry->last_run_ms != 0 && elapsed_ms(now, registry->last_run_ms) > STALL_MS)
        registry->resumed_ms = now;
    registry->last_run_ms = now;
    uint32_t turns = 0;
    while (registry->wheel_cursor_ms + WHEEL_SLOT_MS <= now && turns < WHEEL_SLOTS) {
        h2o_linklist_t batch;
        h2o_linklist_init_anchor(&batch);
        h2o_linklist_insert_list(&batch, &registry->wheel[(registry->wheel_cursor_ms / WHEEL_SLOT_MS) &
                                                           (WHEEL_SLOTS - 1u)]);
        registry->wheel_cursor_ms += WHEEL_SLOT_MS; /* what is put back goes to a later slot or turn */
        turns++;
        while (!h2o_linklist_is_empty(&batch)) {
            struct edge_ws *ws = H2O_STRUCT_FROM_MEMBER(struct edge_ws, wheel_link, batch.next);
            h2o_linklist_unlink(&ws->wheel_link);
            if (ws->due_ms > now) {
                wheel_put(ws, ws->due_ms); /* a later turn's */
                continue;
            }
            if (ws_service(ws, now))
                ws_schedule(ws, now);
        }
    }
    if (registry->wheel_cursor_ms + WHEEL_SLOT_MS <= now)
        registry->wheel_cursor_ms = now / WHEEL_SLOT_MS * WHEEL_SLOT_MS; /* a stall longer than a turn */
    TK_ASSERT(registry->wheel_cursor_ms <= now + WHEEL_SLOT_MS);
    log_lateness(registry, now);
    flush_dirty(loop);
}

static void on_wheel_timer(h2o_timeout_entry_t *entry)
{
    struct edge_ws_registry *registry = H2O_STRUCT_FROM_MEMBER(struct edge_ws_registry, wheel_timer, entry);
    wheel_run(registry->loop);
    h2o_timeout_link(registry->loop->ctx.loop, &registry->wheel_timeout, &registry->wheel_timer);
}

void edge_ws_close_all(struct edge_loop *loop, uint16_t code, const char *reason)
{
    h2o_linklist_t *anchor = &loop->ws->all;
    for (h2o_linklist_t *l = anchor->next; l != anchor; l = l->next)
        ws_close(H2O_STRUCT_FROM_MEMBER(struct edge_ws, all_link, l), code, reason);
    flush_dirty(loop);
}
