/* edge.h — the edge's shared types: the server, its loop threads, a request.
 *
 * Threads (docs/edge.md has the picture):
 *   - N loop threads (--threads), each with its own h2o evloop, context and
 *     SO_REUSEPORT listener. Everything about an HTTP request or a WebSocket
 *     happens on the loop that accepted its connection; loops share nothing
 *     mutable but atomics, the rate-limit table and the seat-map cache.
 *   - the gRPC client loop (--rpc-threads): completions of calls to the
 *     services. A completion never touches h2o: it posts the call back to its
 *     loop's queue (h2o_multithread), and the loop answers the request.
 *   - the feed thread (edge_feed.c): one Redis subscriber for the process,
 *     fanning queue-feed messages out to every loop.
 *   - the seats thread (edge_seats.c): availability of events with admitted
 *     sockets, polled once per event and fanned out as deltas.
 *   - the readiness thread (edge_ops.c): health of the dependencies.
 * Cross-thread payloads are immutable once posted and reference-counted
 * (struct edge_shared), so a fan-out to N loops copies nothing. */
#ifndef EDGE_H
#define EDGE_H

#include <h2o.h>
#include <h2o/websocket.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "edge_config.h"
#include "edge_limits.h"
#include "edge_problem.h"
#include "edge_ratelimit.h"
#include "edge_route.h"
#include "rpc_client.h"
#include "svc_jwt.h"
#include "tk_metrics.h"

struct edge_server;
struct edge_loop;
struct edge_feed;
struct edge_seats;
struct edge_seatmap_cache;
struct edge_ws_registry;

/* ---- reference-counted payloads crossing threads ---- */
struct edge_shared {
    _Atomic uint32_t refs;
    void (*release)(struct edge_shared *shared); /* frees it when refs reaches 0 */
};
void edge_shared_init(struct edge_shared *shared, uint32_t refs, void (*release)(struct edge_shared *));
void edge_shared_ref(struct edge_shared *shared);
void edge_shared_unref(struct edge_shared *shared);

/* ---- "a loop has its first (+1) or lost its last (-1) socket of an event" ----
 * Loops push, a worker thread (feed, seats) takes; both under the worker's lock. */
struct edge_interest_change {
    uint64_t event_id;
    int delta;
};
struct edge_interest_list {
    struct edge_interest_change *items;
    size_t count, capacity;
};
void edge_interest_push(struct edge_interest_list *list, uint64_t event_id, int delta);
/* Moves the changes out, leaving list empty; the caller frees the returned items. */
struct edge_interest_list edge_interest_take(struct edge_interest_list *list);

/* ---- metrics (edge_metrics.c) ---- */
enum edge_ws_message_type { EDGE_WS_POSITION, EDGE_WS_ADMITTED, EDGE_WS_SEATS, EDGE_WS_OTHER, EDGE_WS_TYPES };
struct edge_metrics {
    _Atomic uint64_t requests[EDGE_ROUTE_COUNT][5]; /* by status class 1xx..5xx */
    struct tk_histogram latency_ns[EDGE_ROUTE_COUNT];
    _Atomic uint64_t connections_accepted, connections_refused;
    _Atomic uint64_t rate_limited_ip, rate_limited_user;
    _Atomic uint64_t jwt_refused;
    _Atomic uint64_t ws_opened, ws_refused, ws_slow_closed, ws_pong_timeouts;
    _Atomic uint64_t ws_sent[EDGE_WS_TYPES];
    _Atomic uint64_t feed_messages, feed_bad_messages, feed_reconnects;
    _Atomic uint64_t seat_polls, seat_poll_errors, seat_deltas;
    _Atomic uint64_t seatmap_cache_hits, seatmap_cache_misses, seatmap_not_modified;
};
void edge_metrics_write(FILE *out, void *server);

/* ---- the server ---- */
enum edge_dependency { EDGE_DEP_AUTH, EDGE_DEP_EVENT, EDGE_DEP_QUEUE, EDGE_DEP_RESERVATION, EDGE_DEP_PAYMENT,
                       EDGE_DEP_REDIS, EDGE_DEP_COUNT };

struct edge_server {
    const struct edge_config *config;
    struct svc_jwt_keyset jwt;
    struct rpc_client_loop *rpc;
    struct rpc_channel *channels[EDGE_DEP_REDIS]; /* by dependency; NULL when not configured */
    struct rpc_router *shards;                    /* NULL: seat deltas from event-svc */
    h2o_globalconf_t h2o;
    SSL_CTX *ssl;
    struct sockaddr_storage listen_addr;
    socklen_t listen_addr_len;
    struct edge_loop *loops;
    uint32_t loop_count;
    pthread_barrier_t loops_started; /* main + every loop: each has made its h2o objects on its own thread */
    struct edge_ratelimit *rate_ip, *rate_user;
    struct edge_feed *feed;
    struct edge_seats *seats;
    struct edge_seatmap_cache *seatmaps;
    char ui_dir[EDGE_PATH_BYTES]; /* "" when there is no UI to serve */
    _Atomic bool dependency_up[EDGE_DEP_COUNT];
    _Atomic bool stopping;
    _Atomic uint32_t connections, websockets;
    struct edge_metrics metrics;
};

/* ---- one loop thread (edge_loop.c) ---- */
struct edge_loop {
    struct edge_server *server;
    uint32_t index;
    pthread_t thread;
    int listen_fd; /* bound by edge_loops_start; the loop's thread wraps it in its h2o listener */
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_socket_t *listener;
    h2o_multithread_receiver_t calls;      /* completed gRPC calls */
    h2o_multithread_receiver_t broadcasts; /* feed, seat deltas, drain */
    struct edge_ws_registry *ws;
    _Atomic uint32_t calls_in_flight; /* written by the loop, read by shutdown */
    _Atomic bool exit;
    bool draining;
};

enum edge_broadcast_kind { EDGE_BROADCAST_FEED_HEAD, EDGE_BROADCAST_FEED_ADMITTED, EDGE_BROADCAST_FEED_LEFT,
                           EDGE_BROADCAST_SEATS, EDGE_BROADCAST_DRAIN };
struct edge_broadcast {
    h2o_multithread_message_t super;
    enum edge_broadcast_kind kind;
    struct edge_shared *payload; /* one reference, dropped by the loop; NULL for DRAIN */
};
/* Posts payload to every loop (takes one reference per loop from the caller's
 * count: init the payload with refs = loop_count). Any thread. */
void edge_broadcast_all(struct edge_server *server, enum edge_broadcast_kind kind, struct edge_shared *payload);

enum tk_status edge_loops_start(struct edge_server *server, char *err, size_t err_len);
/* Stop accepting, ask connections to finish, close WebSockets (1001). */
void edge_loops_drain(struct edge_server *server);
uint32_t edge_loops_busy(struct edge_server *server); /* calls in flight + open connections */
void edge_loops_stop(struct edge_server *server);
struct edge_loop *edge_loop_of(h2o_context_t *ctx);
uint64_t edge_now_ms(void);      /* CLOCK_REALTIME, ms */
uint64_t edge_monotonic_ms(void);

/* ---- one request (edge_http.c) ---- */
struct edge_call;
struct edge_request {
    h2o_req_t *req;
    struct edge_loop *loop;
    struct edge_server *server;
    struct edge_route_match match;
    char request_id[EDGE_REQUEST_ID_BYTES];
    char client_ip[EDGE_CLIENT_IP_BYTES];
    bool authenticated;
    struct svc_jwt_claims claims;
    json_t *body;             /* the parsed JSON body, when the route takes one */
    struct edge_call *pending; /* the call in flight, if any */
};

typedef void (*edge_handler)(struct edge_request *r);

void edge_http_register(struct edge_server *server);
h2o_iovec_t edge_request_id(h2o_req_t *req); /* the client's valid X-Request-Id, else a new one */
void edge_send_json(struct edge_request *r, int status, json_t *body); /* takes body */
/* Any response: status, content type (NULL: none), body; adds X-Request-Id and Cache-Control: no-store unless set. */
void edge_send_bytes(struct edge_request *r, int status, const char *content_type, h2o_iovec_t body);
void edge_send_empty(struct edge_request *r, int status);
void edge_send_problem(struct edge_request *r, int status, const char *detail);
void edge_send_problem_with(struct edge_request *r, struct edge_problem problem, const char *detail,
                            json_t *extra /* taken; may be NULL */, uint32_t retry_after_s);
void edge_send_rpc_error(struct edge_request *r, const struct rpc_error *error);
void edge_add_header(struct edge_request *r, const char *name, const char *value);
bool edge_accepts_gzip(h2o_req_t *req);
const char *edge_header(struct edge_request *r, const char *name, size_t *len);

/* ---- calls to the services (edge_call.c) ---- */
struct edge_call {
    h2o_multithread_message_t super;
    struct edge_loop *loop;
    struct edge_request *request; /* NULL for calls made for a socket, or once the request is gone */
    bool for_request;
    void (*prepare)(struct edge_call *call); /* optional: runs on the gRPC thread, off the loop */
    void (*done)(struct edge_call *call);    /* runs on the loop */
    void *data;
    void *prepared;                       /* what prepare made; done takes it */
    void (*prepared_free)(void *prepared); /* frees prepared when done never runs or leaves it */
    grpc_status_code code;
    ProtobufCMessage *reply;
    struct rpc_error error;
};
/* Starts method on channel for request r; done runs on r's loop unless the
 * client went away first. A channel that is not configured answers UNAVAILABLE. */
void edge_call_start(struct edge_request *r, enum edge_dependency dependency, const char *method,
                     const ProtobufCMessage *message, const ProtobufCMessageDescriptor *reply_type, uint32_t timeout_ms,
                     void (*done)(struct edge_call *), void *data);
/* Same, with prepare run on the gRPC thread before done (heavy work off the loop). */
void edge_call_start_prepared(struct edge_request *r, enum edge_dependency dependency, const char *method,
                              const ProtobufCMessage *message, const ProtobufCMessageDescriptor *reply_type,
                              void (*prepare)(struct edge_call *), void (*done)(struct edge_call *), void *data);
/* Same, for work of the loop itself (WebSockets): done always runs. */
void edge_call_loop(struct edge_loop *loop, enum edge_dependency dependency, const char *method,
                    const ProtobufCMessage *message, const ProtobufCMessageDescriptor *reply_type,
                    void (*done)(struct edge_call *), void *data);
void edge_calls_receive(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
const char *edge_dependency_name(enum edge_dependency dependency);

/* ---- handlers ---- */
void edge_api_signup(struct edge_request *r);
void edge_api_login(struct edge_request *r);
void edge_api_refresh(struct edge_request *r);
void edge_api_logout(struct edge_request *r);
void edge_api_me(struct edge_request *r);
void edge_api_events_list(struct edge_request *r);
void edge_api_event_get(struct edge_request *r);
void edge_api_event_create(struct edge_request *r);
void edge_api_event_seats(struct edge_request *r);
void edge_api_queue_join(struct edge_request *r);
void edge_api_queue_status(struct edge_request *r);
void edge_api_queue_leave(struct edge_request *r);
void edge_api_queue_ws(struct edge_request *r);
void edge_api_hold_create(struct edge_request *r);
void edge_api_reservation_release(struct edge_request *r);
void edge_api_reservation_pay(struct edge_request *r);
void edge_api_reservations_list(struct edge_request *r);
void edge_api_reservation_get(struct edge_request *r);
void edge_api_reservation_cancel(struct edge_request *r);
void edge_ops_healthz(struct edge_request *r);
void edge_ops_readyz(struct edge_request *r);
void edge_ops_metrics(struct edge_request *r);
void edge_ops_openapi(struct edge_request *r);
bool edge_static_placeholder(struct edge_request *r); /* true when it answered */

/* ---- JSON body helpers (edge_json.c) ---- */
/* The string member key: 1 when present and a string of 1..max_len bytes,
 * 0 when absent, -1 otherwise (wrong type, empty, too long). */
int edge_json_string(const json_t *object, const char *key, size_t max_len, const char **out);
/* An integer member in [min, max]: 1 / 0 / -1 as above. */
int edge_json_uint(const json_t *object, const char *key, uint64_t min, uint64_t max, uint64_t *out);
/* Requires a JSON object body (400 otherwise; the problem is sent and false returned). */
bool edge_require_body(struct edge_request *r);
h2o_iovec_t edge_json_dump(h2o_mem_pool_t *pool, const json_t *json);
/* gzip (RFC 1952) of in into a malloc'd buffer; false on failure. */
bool edge_gzip(const void *in, size_t in_len, void **out, size_t *out_len);

/* ---- WebSockets (edge_ws.c) ---- */
struct edge_ws_registry *edge_ws_registry_create(struct edge_loop *loop);
void edge_ws_on_broadcast(struct edge_loop *loop, enum edge_broadcast_kind kind, struct edge_shared *payload);
void edge_ws_close_all(struct edge_loop *loop, uint16_t code, const char *reason);

/* ---- the queue feed (edge_feed.c) ---- */
struct edge_feed_head {
    struct edge_shared shared;
    uint64_t event_id;
    uint32_t head_rank;
    double rate; /* admissions per second, 0 before a measure */
    uint32_t left_count;
    uint32_t left[]; /* sorted ranks >= head_rank that left */
};
struct edge_feed_admitted {
    struct edge_shared shared;
    uint64_t event_id, user_id;
    uint32_t rank;
    char expires_at[40];
    char token[]; /* NUL-terminated */
};
struct edge_feed_left {
    struct edge_shared shared;
    uint64_t event_id, user_id;
    uint32_t rank;
};
struct edge_feed *edge_feed_start(struct edge_server *server);
void edge_feed_stop(struct edge_feed *feed);
/* A loop has its first (+1) or lost its last (-1) socket of event_id. Any thread. */
void edge_feed_interest(struct edge_feed *feed, uint64_t event_id, int delta);

/* ---- seat deltas (edge_seats.c) ---- */
struct edge_seat_delta {
    struct edge_shared shared;
    uint64_t event_id;
    uint64_t version;
    size_t len;
    char json[]; /* the WebSocket message, ready to send */
};
struct edge_seats *edge_seats_start(struct edge_server *server);
void edge_seats_stop(struct edge_seats *seats);
void edge_seats_interest(struct edge_seats *seats, uint64_t event_id, int delta);

/* ---- seat maps (edge_seatmap.c) ---- */
struct edge_seatmap_cache *edge_seatmap_cache_create(void);
void edge_seatmap_cache_destroy(struct edge_seatmap_cache *cache);

/* ---- operations (edge_ops.c) ---- */
void edge_readiness_start(struct edge_server *server);
void edge_readiness_stop(void);

/* ---- JWT (edge_http.c) ---- */
/* Verifies "Authorization: Bearer" (or token when not NULL); fills r->claims. */
bool edge_authenticate(struct edge_request *r, const char *token, size_t token_len);

/* Method paths (static strings: the rpc layer keys its metrics by pointer). */
extern const char EDGE_M_SIGNUP[], EDGE_M_LOGIN[], EDGE_M_REFRESH[], EDGE_M_LOGOUT[], EDGE_M_ME[];
extern const char EDGE_M_LIST_EVENTS[], EDGE_M_GET_EVENT[], EDGE_M_GET_SEAT_MAP[], EDGE_M_CREATE_EVENT[];
extern const char EDGE_M_JOIN[], EDGE_M_STATUS[], EDGE_M_LEAVE[], EDGE_M_HEARTBEAT[];
extern const char EDGE_M_CREATE_HOLD[], EDGE_M_RELEASE_HOLD[], EDGE_M_PAY[], EDGE_M_GET_RESERVATION[],
    EDGE_M_LIST_RESERVATIONS[], EDGE_M_CANCEL_RESERVATION[];
extern const char EDGE_M_GET_AVAILABILITY[], EDGE_M_HEALTH_CHECK[];

#endif
