/* rush_loop.c — one worker's client loop: HTTP/1.1 keep-alive and WebSocket
 * connections on epoll, and timers.
 *
 * Connections live in one fixed table sized at creation (pool + lanes +
 * WebSockets, under the process's descriptor limit). Three kinds:
 *   pool  shared keep-alive connections; a request takes an idle one, or opens a
 *         closed one, or waits (bounded by the users: one request each) in one of
 *         two FIFOs, a buyer's steps before joins and browsing (pool_class)
 *   lane  a connection of its own (holds mode: a closed loop per lane)
 *   ws    one per user, the waiting room's socket
 * Each connection binds its own 127.x.y.z source address before connecting:
 * the edge limits requests per client address, and one address has only ~28,000
 * ephemeral ports towards one server port, so 100,000 sockets need many.
 *
 * Edge-triggered epoll with EPOLLIN|EPOLLOUT registered once: a read drains the
 * socket, a write goes out at once and resumes on the next EPOLLOUT. One
 * request at a time per connection (no pipelining), so a response is parsed
 * from the start of the connection's buffer. A request that finds its reused
 * keep-alive connection closed before any byte of the answer (the server's idle
 * timeout raced us) is sent again once on a fresh connection: every request the
 * load generator makes is idempotent (GETs, joins, holds and payments carry an
 * Idempotency-Key, releases of a released hold answer 404).
 *
 * Timers are a binary min-heap; the loop wakes at least every 50 ms to check
 * deadlines (request 35 s, connect 5 s, WebSocket close 2 s). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rush.h"
#include "tk_assert.h"

#define REQUEST_TIMEOUT_US (35u * 1000000u)
#define CONNECT_TIMEOUT_US (5u * 1000000u)
#define WS_CLOSE_GRACE_US (2u * 1000000u)
#define HTTP_BUFFER_START 16384u
#define WS_BUFFER_START 4096u
#define WS_OUT_BYTES 2048u
#define BUFFER_KEEP_MAX (1u << 20) /* a grown buffer is cut back to this after its response */
#define EVENTS_PER_WAKE 512
#define REQUEST_FREE_KEEP 4096u
#define TIMERS_MAX (4u << 20)

enum conn_kind { CONN_POOL = 0, CONN_LANE, CONN_WS };
enum conn_state { C_CLOSED = 0, C_CONNECTING, C_IDLE, C_BUSY, C_WS_HANDSHAKE, C_WS_OPEN, C_WS_CLOSING };

struct conn {
    int fd;
    uint8_t kind, state;
    bool reused;    /* carried a response before: a fresh EOF may be the idle timeout */
    bool idle_listed; /* in the idle stack (pool) */
    uint32_t responses; /* on this socket */
    bool retried;   /* the request in flight was already sent again once */
    uint32_t generation;
    uint32_t source;
    uint32_t user; /* ws: its user */
    uint64_t since_us; /* connect started / request sent / close sent */
    struct rush_request *request;
    const char *wbuf;
    uint32_t wlen, woff;
    char *in;
    uint64_t in_len, in_cap;
    struct http_response response;
    uint8_t *ws_out; /* handshake and control frames */
    uint32_t ws_out_len;
    char ws_key[25];
    uint8_t *message; /* a fragmented message being assembled */
    uint32_t message_len, message_cap;
};

struct timer {
    uint64_t due_us;
    rush_timer_fn fn;
    uint64_t arg;
};

struct rush_loop {
    struct rush_worker *worker;
    struct rush_loop_config config;
    int epoll_fd;
    struct conn *conns;
    uint32_t conn_count;
    uint32_t pool_first, lane_first, ws_first;
    uint32_t *idle; /* idle pool connections (a stack) */
    uint32_t idle_count;
    uint32_t *ws_free; /* free ws slots (a stack) */
    uint32_t ws_free_count, ws_open;
    uint32_t *ws_of_user; /* user -> conn index + 1 (0: none) */
    uint32_t users;
    /* waiting for a pool connection, two FIFOs: [0] the steps of a buyer past the
     * queue (seat map, hold, release, pay), [1] everything else (see pool_next) */
    struct rush_request *queue_head[2], *queue_tail[2];
    uint32_t queued, in_flight;
    struct rush_request *free_requests;
    uint32_t free_count;
    struct timer *timers;
    uint32_t timer_count, timer_cap;
    uint64_t last_sweep_us;
    bool debug; /* RUSH_DEBUG=1: every transport failure on stderr */
    struct rush_worker_stats *stats;
};

uint64_t rush_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int rush_target_parse(struct rush_target *target, const char *url, char *err, size_t err_len)
{
    memset(target, 0, sizeof(*target));
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    const char *colon = strchr(p, ':');
    const char *slash = strchr(p, '/');
    size_t host_len = colon != NULL ? (size_t)(colon - p) : slash != NULL ? (size_t)(slash - p) : strlen(p);
    unsigned port = 80;
    if (colon != NULL && sscanf(colon + 1, "%u", &port) != 1)
        port = 0;
    if (host_len == 0 || host_len >= sizeof(target->host) || port == 0 || port > 65535) {
        snprintf(err, err_len, "bad target URL '%s' (want http://HOST:PORT)", url);
        return -1;
    }
    memcpy(target->host, p, host_len);
    target->port = (uint16_t)port;
    snprintf(target->base_url, sizeof(target->base_url), "http://%s:%u", target->host, port);
    struct in_addr probe;
    if (inet_pton(AF_INET, target->host, &probe) != 1) {
        snprintf(err, err_len, "the target host must be an IPv4 address, not '%s'", target->host);
        return -1;
    }
    return 0;
}

/* ---- timers ---- */

void rush_timer_add(struct rush_loop *loop, uint64_t due_us, rush_timer_fn fn, uint64_t arg)
{
    TK_ASSERT(fn != NULL);
    if (loop->timer_count == loop->timer_cap) {
        TK_ASSERT(loop->timer_cap < TIMERS_MAX);
        loop->timer_cap = loop->timer_cap == 0 ? 1024 : loop->timer_cap * 2;
        loop->timers = realloc(loop->timers, loop->timer_cap * sizeof(loop->timers[0]));
        TK_ASSERT(loop->timers != NULL);
    }
    uint32_t i = loop->timer_count++;
    while (i > 0 && loop->timers[(i - 1) / 2].due_us > due_us) {
        loop->timers[i] = loop->timers[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    loop->timers[i] = (struct timer){due_us, fn, arg};
}

static struct timer timer_pop(struct rush_loop *loop)
{
    TK_ASSERT(loop->timer_count > 0);
    struct timer top = loop->timers[0];
    struct timer last = loop->timers[--loop->timer_count];
    uint32_t i = 0, n = loop->timer_count;
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && loop->timers[child + 1].due_us < loop->timers[child].due_us)
            child++;
        if (loop->timers[child].due_us >= last.due_us)
            break;
        loop->timers[i] = loop->timers[child];
        i = child;
    }
    if (n > 0)
        loop->timers[i] = last;
    return top;
}

static void run_timers(struct rush_loop *loop, uint64_t now_us)
{
    /* bounded: timers added while running wait for the next round */
    uint32_t budget = loop->timer_count;
    while (budget-- > 0 && loop->timer_count > 0 && loop->timers[0].due_us <= now_us) {
        struct timer t = timer_pop(loop);
        t.fn(loop->worker, t.arg);
    }
}

/* ---- requests ---- */

struct rush_request *rush_request_new(struct rush_loop *loop)
{
    struct rush_request *request = loop->free_requests;
    if (request != NULL) {
        loop->free_requests = request->next;
        loop->free_count--;
    } else {
        request = malloc(sizeof(*request));
        TK_ASSERT(request != NULL);
    }
    memset(request, 0, offsetof(struct rush_request, data));
    request->user = UINT32_MAX;
    request->lane = -1;
    return request;
}

void rush_request_free(struct rush_loop *loop, struct rush_request *request)
{
    if (loop->free_count >= REQUEST_FREE_KEEP) {
        free(request);
        return;
    }
    request->next = loop->free_requests;
    loop->free_requests = request;
    loop->free_count++;
}

bool rush_request_format(struct rush_request *request, const struct rush_target *target, const char *method,
                         const char *path, const char *token, const char *admission, const char *idempotency,
                         const char *body)
{
    char *out = request->data;
    size_t cap = sizeof(request->data);
    size_t body_len = body != NULL ? strlen(body) : 0;
    int n = snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: %s:%u\r\n", method, path, target->host, target->port);
    if (n < 0 || (size_t)n >= cap)
        return false;
    size_t at = (size_t)n;
#define APPEND(...)                                                                                                    \
    do {                                                                                                               \
        int m = snprintf(out + at, cap - at, __VA_ARGS__);                                                             \
        if (m < 0 || (size_t)m >= cap - at)                                                                            \
            return false;                                                                                              \
        at += (size_t)m;                                                                                               \
    } while (0)
    if (token != NULL && token[0] != '\0')
        APPEND("Authorization: Bearer %s\r\n", token);
    if (admission != NULL && admission[0] != '\0')
        APPEND("X-Admission-Token: %s\r\n", admission);
    if (idempotency != NULL && idempotency[0] != '\0')
        APPEND("Idempotency-Key: %s\r\n", idempotency);
    if (body != NULL)
        APPEND("Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", body_len, body);
    else
        APPEND("\r\n");
#undef APPEND
    request->len = (uint32_t)at;
    return true;
}

/* ---- connections ---- */

static void source_address(uint32_t index, struct sockaddr_in *out)
{
    /* 127.a.b.c with b, c in 1..254: about 16 million addresses, all on lo */
    uint32_t c = 1 + index % 254u, b = 1 + (index / 254u) % 254u, a = 1 + index / (254u * 254u);
    TK_ASSERT(a <= 254);
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = htonl((127u << 24) | (a << 16) | (b << 8) | c);
}

static uint64_t conn_key(const struct rush_loop *loop, const struct conn *c)
{
    return ((uint64_t)c->generation << 32) | (uint32_t)(c - loop->conns);
}

static void fail_first_error(struct rush_loop *loop, const char *what, const char *why)
{
    if (loop->debug)
        fprintf(stderr, "rush[%u]: %s: %s\n", loop->worker->index, what, why);
    if (loop->stats->first_error[0] == '\0')
        snprintf(loop->stats->first_error, sizeof(loop->stats->first_error), "%s: %s", what, why);
}

static bool conn_connect(struct rush_loop *loop, struct conn *c)
{
    TK_ASSERT(c->state == C_CLOSED && c->fd < 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        loop->stats->connect_errors++;
        fail_first_error(loop, "socket", strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    struct sockaddr_in source, target;
    source_address(c->source, &source);
    memset(&target, 0, sizeof(target));
    target.sin_family = AF_INET;
    target.sin_port = htons(loop->config.target.port);
    inet_pton(AF_INET, loop->config.target.host, &target.sin_addr);
    if (bind(fd, (struct sockaddr *)&source, sizeof(source)) != 0 ||
        (connect(fd, (struct sockaddr *)&target, sizeof(target)) != 0 && errno != EINPROGRESS)) {
        loop->stats->connect_errors++;
        fail_first_error(loop, "connect", strerror(errno));
        close(fd);
        return false;
    }
    c->fd = fd;
    c->generation++;
    c->state = C_CONNECTING;
    c->since_us = rush_now_us();
    c->reused = false;
    c->responses = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = conn_key(loop, c)};
    TK_ASSERT(epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0);
    loop->stats->connects++;
    return true;
}

static void conn_close_socket(struct rush_loop *loop, struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
    }
    c->state = C_CLOSED;
    c->wbuf = NULL;
    c->wlen = c->woff = 0;
    c->generation++;
    (void)loop;
}

/* After a response: a buffer a large body grew is given back. */
static void conn_trim(struct conn *c)
{
    c->in_len = 0;
    if (c->in_cap > BUFFER_KEEP_MAX) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

static bool ensure_in(struct conn *c, uint64_t want_free, uint64_t cap_max)
{
    if (c->in_cap - c->in_len >= want_free)
        return true;
    uint64_t cap = c->in_cap == 0 ? (c->kind == CONN_WS ? WS_BUFFER_START : HTTP_BUFFER_START) : c->in_cap;
    while (cap - c->in_len < want_free && cap < cap_max)
        cap *= 2;
    if (cap > cap_max)
        cap = cap_max;
    if (cap - c->in_len == 0)
        return false;
    char *grown = realloc(c->in, cap);
    TK_ASSERT(grown != NULL);
    c->in = grown;
    c->in_cap = cap;
    return true;
}

/* Writes what is pending; false when the connection failed. */
static bool conn_flush(struct rush_loop *loop, struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (uint32_t)n;
            loop->stats->bytes_out += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        return false;
    }
    if (c->wbuf == (const char *)c->ws_out) {
        c->ws_out_len = 0;
        c->wbuf = NULL;
        c->wlen = c->woff = 0;
    }
    return true;
}

/* ---- HTTP requests on pool and lane connections ---- */

static void finish_request(struct rush_loop *loop, struct conn *c, const struct http_response *response)
{
    struct rush_request *request = c->request;
    TK_ASSERT(request != NULL);
    c->request = NULL;
    loop->in_flight--;
    if (response != NULL)
        loop->stats->http_responses++;
    request->done(loop->worker, request, response);
    rush_request_free(loop, request);
}

static void conn_send_request(struct rush_loop *loop, struct conn *c, struct rush_request *request)
{
    TK_ASSERT(c->state == C_IDLE && c->request == NULL);
    c->request = request;
    c->state = C_BUSY;
    c->wbuf = request->data;
    c->wlen = request->len;
    c->woff = 0;
    c->in_len = 0;
    http_response_reset(&c->response);
    request->sent_us = rush_now_us();
    c->since_us = request->sent_us;
    if (!conn_flush(loop, c)) {
        loop->stats->resets++;
        conn_close_socket(loop, c);
        finish_request(loop, c, NULL);
    }
}

static void pool_dispatch(struct rush_loop *loop);

/* A pool or lane connection became free (or closed): give it work. */
static void conn_released(struct rush_loop *loop, struct conn *c)
{
    if (c->kind == CONN_POOL) {
        if (c->state == C_IDLE && !c->idle_listed) {
            c->idle_listed = true;
            loop->idle[loop->idle_count++] = (uint32_t)(c - loop->conns);
            TK_ASSERT(loop->idle_count <= loop->config.pool);
        }
        pool_dispatch(loop);
    }
}

static void request_failed(struct rush_loop *loop, struct conn *c, const char *why)
{
    struct rush_request *request = c->request;
    bool fresh_eof = request != NULL && c->reused && !c->retried && c->in_len == 0;
    conn_close_socket(loop, c);
    if (request == NULL)
        return;
    if (fresh_eof) {
        /* the server closed an idle keep-alive connection as we reused it: again, once */
        c->retried = true;
        if (conn_connect(loop, c))
            return; /* sent when connected */
    }
    loop->stats->resets++;
    fail_first_error(loop, rush_step_name(request->step), why);
    c->retried = false;
    finish_request(loop, c, NULL);
}

static void http_on_readable(struct rush_loop *loop, struct conn *c, bool hangup)
{
    uint64_t cap_max = RUSH_HEAD_BYTES_MAX + loop->config.body_max + 64;
    bool eof = false;
    for (;;) {
        if (!ensure_in(c, 4096, cap_max)) {
            request_failed(loop, c, "response larger than the buffer");
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (uint64_t)n;
            loop->stats->bytes_in += (uint64_t)n;
            continue;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        request_failed(loop, c, strerror(errno));
        return;
    }
    eof = eof || hangup;
    if (c->request == NULL) {
        if (eof || c->in_len > 0)
            conn_close_socket(loop, c); /* an idle connection closed (or spoke out of turn) */
        return;
    }
    enum http_parse p = http_response_parse(&c->response, c->in, c->in_len, eof, loop->config.body_max);
    if (p == HTTP_PARSE_MORE)
        return;
    if (p == HTTP_PARSE_ERROR) {
        request_failed(loop, c, c->response.error);
        return;
    }
    struct http_response response = c->response;
    bool keep = !response.close && !eof && response.consumed == c->in_len;
    uint32_t limit = loop->config.requests_per_connection;
    if (limit > 0 && ++c->responses >= limit) {
        /* the next request comes from another address, like another client */
        keep = false;
        uint32_t base = loop->config.source_base, span = loop->config.source_span;
        c->source = base + (c->source - base + loop->conn_count) % span;
    }
    c->reused = true;
    c->retried = false;
    if (keep)
        c->state = C_IDLE;
    else
        conn_close_socket(loop, c); /* the buffer stays: response.body points into it */
    /* the callback may send the next request on this very connection (a lane) */
    finish_request(loop, c, &response);
    if (c->request == NULL) {
        conn_trim(c);
        conn_released(loop, c);
    }
}

/* Which FIFO a pool request waits in. In a real rush every person has their own
 * connections, so an admitted buyer's hold never waits behind other people's
 * joins; the pool is the load generator's economy (one process cannot keep a
 * connection per user for every request), and a single FIFO would turn the
 * join burst into a wait of tens of seconds in front of every hold, a stall of
 * the load generator that the target never caused. So a buyer's steps go
 * first; within a class, first come first served. */
static uint32_t pool_class(const struct rush_request *request)
{
    switch (request->step) {
    case STEP_SEATMAP:
    case STEP_HOLD:
    case STEP_RELEASE:
    case STEP_PAY:
        return 0;
    default:
        return 1;
    }
}

static struct rush_request *pool_next(struct rush_loop *loop)
{
    for (uint32_t k = 0; k < 2; k++) {
        struct rush_request *request = loop->queue_head[k];
        if (request == NULL)
            continue;
        loop->queue_head[k] = request->next;
        if (loop->queue_head[k] == NULL)
            loop->queue_tail[k] = NULL;
        TK_ASSERT(loop->queued > 0);
        loop->queued--;
        return request;
    }
    TK_ASSERT(loop->queued == 0);
    return NULL;
}

static void pool_dispatch(struct rush_loop *loop)
{
    while (loop->queued > 0) {
        struct conn *c = NULL;
        if (loop->idle_count > 0) {
            c = &loop->conns[loop->idle[--loop->idle_count]];
            c->idle_listed = false;
            if (c->state != C_IDLE)
                continue; /* closed while idle */
        } else {
            /* a closed pool connection, if any */
            for (uint32_t i = 0; i < loop->config.pool; i++) {
                struct conn *candidate = &loop->conns[loop->pool_first + i];
                if (candidate->state == C_CLOSED) {
                    c = candidate;
                    break;
                }
            }
            if (c == NULL)
                return; /* all busy or connecting: the request waits */
        }
        struct rush_request *request = pool_next(loop);
        TK_ASSERT(request != NULL);
        if (c->state == C_IDLE) {
            conn_send_request(loop, c, request);
            continue;
        }
        c->request = request;
        if (!conn_connect(loop, c)) {
            c->request = NULL;
            request->done(loop->worker, request, NULL);
            loop->in_flight--;
            rush_request_free(loop, request);
        }
    }
}

void rush_request_submit(struct rush_loop *loop, struct rush_request *request)
{
    TK_ASSERT(request->done != NULL && request->len > 0 && request->len <= sizeof(request->data));
    loop->in_flight++;
    if (request->start_us == 0)
        request->start_us = rush_now_us();
    if (request->lane >= 0) {
        TK_ASSERT((uint32_t)request->lane < loop->config.lanes);
        struct conn *c = &loop->conns[loop->lane_first + (uint32_t)request->lane];
        TK_ASSERT(c->request == NULL);
        if (c->state == C_IDLE) {
            conn_send_request(loop, c, request);
            return;
        }
        TK_ASSERT(c->state == C_CLOSED);
        c->request = request;
        if (!conn_connect(loop, c)) {
            c->request = NULL;
            loop->in_flight--;
            request->done(loop->worker, request, NULL);
            rush_request_free(loop, request);
        }
        return;
    }
    request->next = NULL;
    uint32_t k = pool_class(request);
    if (loop->queue_tail[k] != NULL)
        loop->queue_tail[k]->next = request;
    else
        loop->queue_head[k] = request;
    loop->queue_tail[k] = request;
    loop->queued++;
    pool_dispatch(loop);
}

uint32_t rush_loop_in_flight(const struct rush_loop *loop)
{
    return loop->in_flight;
}

/* ---- WebSockets ---- */

static void ws_event(struct rush_loop *loop, struct conn *c, int event, const struct http_response *response)
{
    if (loop->config.on_ws_event != NULL)
        loop->config.on_ws_event(loop->worker, c->user, event, response);
}

static void ws_release(struct rush_loop *loop, struct conn *c, bool notify, int event)
{
    uint32_t user = c->user;
    bool was_open = c->state == C_WS_OPEN || c->state == C_WS_CLOSING;
    conn_close_socket(loop, c);
    c->in_len = 0;
    free(c->in);
    c->in = NULL;
    c->in_cap = 0;
    free(c->ws_out);
    c->ws_out = NULL;
    free(c->message);
    c->message = NULL;
    c->message_len = c->message_cap = 0;
    if (was_open) {
        TK_ASSERT(loop->ws_open > 0);
        loop->ws_open--;
        atomic_fetch_sub_explicit(&loop->stats->ws_open, 1, memory_order_relaxed);
    }
    TK_ASSERT(loop->ws_of_user[user] == (uint32_t)(c - loop->conns) + 1);
    loop->ws_of_user[user] = 0;
    loop->ws_free[loop->ws_free_count++] = (uint32_t)(c - loop->conns);
    if (notify)
        ws_event(loop, c, event, NULL);
}

static bool ws_queue_frame(struct rush_loop *loop, struct conn *c, uint8_t opcode, const uint8_t *payload, size_t len)
{
    if (c->wbuf != NULL && c->wbuf != (const char *)c->ws_out)
        return false;
    if (c->woff > 0 && c->woff == c->wlen)
        c->ws_out_len = 0;
    size_t n = ws_frame_build(c->ws_out + c->ws_out_len, WS_OUT_BYTES - c->ws_out_len, opcode, payload, len,
                              (uint32_t)bench_rng_next(&loop->worker->rng));
    if (n == 0)
        return false; /* the out buffer is full: the peer is not reading */
    c->ws_out_len += (uint32_t)n;
    c->wbuf = (const char *)c->ws_out;
    c->wlen = c->ws_out_len;
    return conn_flush(loop, c);
}

bool rush_ws_open(struct rush_loop *loop, uint32_t user, const char *path, uint32_t source_index)
{
    TK_ASSERT(user < loop->users && loop->ws_of_user[user] == 0);
    if (loop->ws_free_count == 0)
        return false;
    uint32_t index = loop->ws_free[--loop->ws_free_count];
    struct conn *c = &loop->conns[index];
    TK_ASSERT(c->kind == CONN_WS && c->state == C_CLOSED);
    loop->ws_of_user[user] = index + 1;
    c->user = user;
    c->source = source_index;
    c->ws_out = malloc(WS_OUT_BYTES);
    TK_ASSERT(c->ws_out != NULL);
    ws_handshake_key(bench_rng_next(&loop->worker->rng), c->ws_key);
    int n = snprintf((char *)c->ws_out, WS_OUT_BYTES,
                     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, loop->config.target.host, loop->config.target.port, c->ws_key);
    TK_ASSERT(n > 0 && (uint32_t)n < WS_OUT_BYTES);
    c->ws_out_len = (uint32_t)n;
    http_response_reset(&c->response);
    if (!conn_connect(loop, c)) {
        ws_release(loop, c, false, 0);
        return false;
    }
    return true; /* the handshake goes out once connected */
}

void rush_ws_close(struct rush_loop *loop, uint32_t user)
{
    TK_ASSERT(user < loop->users);
    uint32_t index = loop->ws_of_user[user];
    if (index == 0)
        return;
    struct conn *c = &loop->conns[index - 1];
    if (c->state != C_WS_OPEN) {
        ws_release(loop, c, false, 0);
        return;
    }
    uint8_t code[2] = {0x03, 0xe8}; /* 1000 normal closure */
    c->state = C_WS_CLOSING;
    c->since_us = rush_now_us();
    if (!ws_queue_frame(loop, c, WS_OP_CLOSE, code, sizeof(code)))
        ws_release(loop, c, false, 0);
}

uint32_t rush_ws_count(const struct rush_loop *loop)
{
    return loop->ws_open;
}

static void ws_deliver(struct rush_loop *loop, struct conn *c, const uint8_t *text, size_t len)
{
    atomic_fetch_add_explicit(&loop->stats->ws_messages, 1, memory_order_relaxed);
    if (loop->config.on_ws_message != NULL)
        loop->config.on_ws_message(loop->worker, c->user, (const char *)text, len);
}

/* One frame; false when the socket was closed. */
static bool ws_on_frame(struct rush_loop *loop, struct conn *c, const struct ws_frame *f)
{
    switch (f->opcode) {
    case WS_OP_PING:
        loop->stats->ws_ping++;
        if (c->state == C_WS_OPEN && !ws_queue_frame(loop, c, WS_OP_PONG, f->payload, f->payload_len)) {
            ws_release(loop, c, true, RUSH_WS_CLOSED);
            return false;
        }
        return true;
    case WS_OP_PONG:
        return true;
    case WS_OP_CLOSE:
        if (c->state == C_WS_OPEN) {
            atomic_fetch_add_explicit(&loop->stats->ws_closed_by_server, 1, memory_order_relaxed);
            ws_queue_frame(loop, c, WS_OP_CLOSE, f->payload, f->payload_len > 2 ? 2 : f->payload_len);
        }
        ws_release(loop, c, true, RUSH_WS_CLOSED);
        return false;
    default:
        break;
    }
    bool start = f->opcode != WS_OP_CONTINUATION;
    if (start && f->fin && c->message_len == 0) {
        ws_deliver(loop, c, f->payload, f->payload_len);
        return true;
    }
    if (start != (c->message_len == 0) || c->message_len + f->payload_len > RUSH_WS_MESSAGE_BYTES_MAX) {
        fail_first_error(loop, "websocket", "bad fragmentation or message too large");
        ws_release(loop, c, true, RUSH_WS_CLOSED);
        return false;
    }
    if (c->message_len + f->payload_len > c->message_cap) {
        uint32_t cap = c->message_cap == 0 ? 4096 : c->message_cap;
        while (cap < c->message_len + f->payload_len)
            cap *= 2;
        c->message = realloc(c->message, cap);
        TK_ASSERT(c->message != NULL);
        c->message_cap = cap;
    }
    memcpy(c->message + c->message_len, f->payload, f->payload_len);
    c->message_len += (uint32_t)f->payload_len;
    if (f->fin) {
        ws_deliver(loop, c, c->message, c->message_len);
        c->message_len = 0;
    }
    return true;
}

/* Frames at the start of the buffer; false when the socket was closed. */
static bool ws_consume(struct rush_loop *loop, struct conn *c)
{
    uint64_t at = 0;
    uint32_t generation = c->generation;
    while (at < c->in_len) {
        struct ws_frame f;
        enum ws_parse p = ws_frame_parse((const uint8_t *)c->in + at, c->in_len - at, RUSH_WS_MESSAGE_BYTES_MAX, &f);
        if (p == WS_PARSE_MORE)
            break;
        if (p == WS_PARSE_ERROR) {
            fail_first_error(loop, "websocket", "protocol error in a server frame");
            ws_release(loop, c, true, RUSH_WS_CLOSED);
            return false;
        }
        if (!ws_on_frame(loop, c, &f) || c->generation != generation)
            return false; /* closed, here or by the message's callback */
        at += f.frame_len;
    }
    if (at > 0) {
        memmove(c->in, c->in + at, c->in_len - at);
        c->in_len -= at;
    }
    return true;
}

static void ws_on_handshake(struct rush_loop *loop, struct conn *c, bool eof)
{
    enum http_parse p = http_response_parse(&c->response, c->in, c->in_len, eof, 64u << 10);
    if (p == HTTP_PARSE_MORE)
        return;
    if (p == HTTP_PARSE_ERROR) {
        fail_first_error(loop, "websocket handshake", c->response.error);
        ws_release(loop, c, true, RUSH_WS_REFUSED);
        return;
    }
    struct http_response response = c->response;
    if (response.status != 101) {
        /* a refusal as a plain HTTP problem: hand it over, then drop the socket (unless the
         * callback already closed it) */
        uint32_t generation = c->generation;
        ws_event(loop, c, RUSH_WS_REFUSED, &response);
        if (c->generation == generation)
            ws_release(loop, c, false, 0);
        return;
    }
    char expected[29];
    ws_expected_accept(c->ws_key, expected);
    if (strcmp(expected, response.websocket_accept) != 0) {
        fail_first_error(loop, "websocket handshake", "wrong Sec-WebSocket-Accept");
        ws_release(loop, c, true, RUSH_WS_REFUSED);
        return;
    }
    memmove(c->in, c->in + response.consumed, c->in_len - response.consumed);
    c->in_len -= response.consumed;
    c->state = C_WS_OPEN;
    loop->ws_open++;
    uint64_t open = atomic_fetch_add_explicit(&loop->stats->ws_open, 1, memory_order_relaxed) + 1;
    if (open > atomic_load_explicit(&loop->stats->ws_open_max, memory_order_relaxed))
        atomic_store_explicit(&loop->stats->ws_open_max, open, memory_order_relaxed);
    uint32_t generation = c->generation;
    ws_event(loop, c, RUSH_WS_OPENED, &response);
    if (c->generation == generation && c->state == C_WS_OPEN)
        ws_consume(loop, c);
}

static void ws_on_readable(struct rush_loop *loop, struct conn *c, bool hangup)
{
    bool eof = hangup;
    for (;;) {
        if (!ensure_in(c, 2048, RUSH_WS_MESSAGE_BYTES_MAX + 64)) {
            ws_release(loop, c, true, RUSH_WS_CLOSED);
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (uint64_t)n;
            loop->stats->bytes_in += (uint64_t)n;
            if (c->state == C_WS_OPEN && c->in_len > 32768 && !ws_consume(loop, c))
                return;
            continue;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            eof = true;
        break;
    }
    uint32_t generation = c->generation;
    if (c->state == C_WS_HANDSHAKE) {
        ws_on_handshake(loop, c, eof);
        if (c->generation != generation || c->state != C_WS_OPEN)
            return;
    } else if (!ws_consume(loop, c)) {
        return;
    }
    if (eof && c->fd >= 0) {
        if (c->state == C_WS_OPEN)
            atomic_fetch_add_explicit(&loop->stats->ws_closed_by_server, 1, memory_order_relaxed);
        ws_release(loop, c, c->state == C_WS_OPEN, RUSH_WS_CLOSED);
    }
}

/* ---- events ---- */

static bool connect_finished(struct rush_loop *loop, struct conn *c)
{
    int error = 0;
    socklen_t len = sizeof(error);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
        error = errno;
    if (error != 0) {
        loop->stats->connect_errors++;
        fail_first_error(loop, "connect", strerror(error));
        return false;
    }
    return true;
}

static void on_event(struct rush_loop *loop, uint64_t key, uint32_t events)
{
    uint32_t index = (uint32_t)key;
    TK_ASSERT(index < loop->conn_count);
    struct conn *c = &loop->conns[index];
    if (c->generation != (uint32_t)(key >> 32) || c->fd < 0)
        return; /* an event of a socket closed earlier in this batch */
    bool hangup = (events & (EPOLLHUP | EPOLLERR)) != 0;
    if (c->state == C_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (!connect_finished(loop, c)) {
            if (c->kind == CONN_WS) {
                ws_release(loop, c, true, RUSH_WS_REFUSED);
            } else {
                c->reused = false;
                request_failed(loop, c, "connect failed");
                conn_released(loop, c);
            }
            return;
        }
        if (c->kind == CONN_WS) {
            c->state = C_WS_HANDSHAKE;
            c->wbuf = (const char *)c->ws_out;
            c->wlen = c->ws_out_len;
            c->woff = 0;
            if (!conn_flush(loop, c))
                ws_release(loop, c, true, RUSH_WS_REFUSED);
            return;
        }
        c->state = C_IDLE;
        if (c->request != NULL) {
            struct rush_request *request = c->request;
            c->request = NULL;
            conn_send_request(loop, c, request);
        } else {
            conn_released(loop, c);
        }
        return;
    }
    if ((events & EPOLLOUT) && c->wbuf != NULL && c->woff < c->wlen && !conn_flush(loop, c)) {
        if (c->kind == CONN_WS)
            ws_release(loop, c, true, RUSH_WS_CLOSED);
        else
            request_failed(loop, c, "send failed"), conn_released(loop, c);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (c->kind == CONN_WS) {
            ws_on_readable(loop, c, hangup);
        } else {
            http_on_readable(loop, c, hangup);
            if (c->state == C_CLOSED && c->request == NULL)
                conn_released(loop, c);
        }
    }
}

/* Time since a mark; 0 for a mark set after now was read (callbacks run after it). */
static uint64_t elapsed_us(uint64_t now_us, uint64_t since_us)
{
    return now_us > since_us ? now_us - since_us : 0;
}

static void sweep_deadlines(struct rush_loop *loop, uint64_t now_us)
{
    for (uint32_t i = 0; i < loop->conn_count; i++) {
        struct conn *c = &loop->conns[i];
        if (c->fd < 0)
            continue;
        if (c->state == C_CONNECTING && elapsed_us(now_us, c->since_us) > CONNECT_TIMEOUT_US) {
            loop->stats->connect_errors++;
            if (c->kind == CONN_WS) {
                ws_release(loop, c, true, RUSH_WS_REFUSED);
            } else {
                c->reused = false;
                request_failed(loop, c, "connect timeout");
                conn_released(loop, c);
            }
        } else if ((c->state == C_BUSY || c->state == C_WS_HANDSHAKE) &&
                   elapsed_us(now_us, c->since_us) > REQUEST_TIMEOUT_US) {
            if (loop->debug) {
                char peek[8];
                ssize_t p = recv(c->fd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
                fprintf(stderr, "rush[%u]: conn %u kind %u fd %d timed out: wrote %u of %u (%.60s), read %llu, "
                        "peek %zd errno %d reused %d responses %u age %lld us\n",
                        loop->worker->index, i, c->kind, c->fd, c->woff, c->wlen, c->wbuf ? c->wbuf : "",
                        (unsigned long long)c->in_len, p, errno, c->reused, c->responses, (long long)elapsed_us(now_us, c->since_us));
            }
            if (c->kind == CONN_WS) {
                ws_release(loop, c, true, RUSH_WS_REFUSED);
            } else {
                c->reused = false;
                request_failed(loop, c, "timeout");
                conn_released(loop, c);
            }
        } else if (c->state == C_WS_CLOSING && elapsed_us(now_us, c->since_us) > WS_CLOSE_GRACE_US) {
            ws_release(loop, c, false, 0);
        }
    }
}

void rush_loop_run(struct rush_loop *loop, bool (*stop)(struct rush_worker *worker), uint64_t deadline_us)
{
    struct epoll_event events[EVENTS_PER_WAKE];
    for (;;) {
        uint64_t now = rush_now_us();
        if (now >= deadline_us || (stop != NULL && stop(loop->worker)))
            return;
        int timeout_ms = 50;
        if (loop->timer_count > 0) {
            uint64_t due = loop->timers[0].due_us;
            timeout_ms = due <= now ? 0 : due - now < 50000 ? (int)((due - now + 999) / 1000) : 50;
        }
        int n = epoll_wait(loop->epoll_fd, events, EVENTS_PER_WAKE, timeout_ms);
        if (n < 0 && errno != EINTR)
            TK_ASSERT(!"epoll_wait failed");
        for (int i = 0; i < n; i++)
            on_event(loop, events[i].data.u64, events[i].events);
        now = rush_now_us();
        run_timers(loop, now);
        if (now - loop->last_sweep_us > 50000) {
            sweep_deadlines(loop, now);
            loop->last_sweep_us = now;
            atomic_store_explicit(&loop->stats->heartbeat_us, now, memory_order_relaxed);
        }
    }
}

struct rush_loop *rush_loop_create(struct rush_worker *worker, const struct rush_loop_config *config)
{
    TK_ASSERT(worker != NULL && config != NULL);
    uint32_t total = config->pool + config->lanes + config->ws_max;
    TK_ASSERT(total > 0 && total <= RUSH_FDS_PER_WORKER_MAX);
    TK_ASSERT(config->pool <= RUSH_HTTP_POOL_MAX);
    struct rush_loop *loop = calloc(1, sizeof(*loop));
    TK_ASSERT(loop != NULL);
    loop->worker = worker;
    loop->config = *config;
    loop->stats = worker->stats;
    loop->debug = getenv("RUSH_DEBUG") != NULL;
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    TK_ASSERT(loop->epoll_fd >= 0);
    loop->conn_count = total;
    loop->conns = calloc(total, sizeof(loop->conns[0]));
    loop->idle = calloc(config->pool + 1, sizeof(uint32_t));
    loop->ws_free = calloc(config->ws_max + 1, sizeof(uint32_t));
    loop->users = worker->user_count;
    loop->ws_of_user = calloc(worker->user_count + 1, sizeof(uint32_t));
    TK_ASSERT(loop->conns != NULL && loop->idle != NULL && loop->ws_free != NULL && loop->ws_of_user != NULL);
    if (loop->config.source_span == 0)
        loop->config.source_span = total;
    TK_ASSERT(loop->config.source_span >= total);
    loop->pool_first = 0;
    loop->lane_first = config->pool;
    loop->ws_first = config->pool + config->lanes;
    for (uint32_t i = 0; i < total; i++) {
        struct conn *c = &loop->conns[i];
        c->fd = -1;
        c->kind = i < loop->lane_first ? CONN_POOL : i < loop->ws_first ? CONN_LANE : CONN_WS;
        c->source = config->source_base + (c->kind == CONN_WS ? 0 : i);
    }
    for (uint32_t i = 0; i < config->ws_max; i++)
        loop->ws_free[loop->ws_free_count++] = total - 1 - i;
    return loop;
}

void rush_loop_destroy(struct rush_loop *loop)
{
    if (loop == NULL)
        return;
    for (uint32_t i = 0; i < loop->conn_count; i++) {
        struct conn *c = &loop->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->in);
        free(c->ws_out);
        free(c->message);
    }
    while (loop->free_requests != NULL) {
        struct rush_request *next = loop->free_requests->next;
        free(loop->free_requests);
        loop->free_requests = next;
    }
    free(loop->conns);
    free(loop->idle);
    free(loop->ws_free);
    free(loop->ws_of_user);
    free(loop->timers);
    close(loop->epoll_fd);
    free(loop);
}
