/* edge_loop.c — the loop threads: one h2o evloop, context and listener each.
 *
 * Every loop binds its own socket to the same address with SO_REUSEPORT, so
 * the kernel spreads new connections over the loops and no loop hands a
 * connection to another. A loop has two h2o_multithread receivers on its
 * context's queue: completed gRPC calls (edge_call.c) and broadcasts (queue
 * feed, seat deltas, drain). WebSocket housekeeping runs on its own timer
 * (edge_ws.c's wheel, made in loop_setup with the socket registry).
 * A loop's evloop, context and listener are made on the loop's own thread
 * (loop_setup says why); only the listening sockets are bound beforehand.
 *
 * Connection cap: a connection accepted past --connections-max gets a 503
 * problem written straight away (plain HTTP; over TLS it is simply closed) and
 * is closed, so a flood costs one accept and one write each. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "edge.h"
#include "rpc_log.h"
#include "tk_assert.h"

#define ACCEPTS_PER_WAKE 64

void edge_shared_init(struct edge_shared *shared, uint32_t refs, void (*release)(struct edge_shared *))
{
    TK_ASSERT(refs >= 1 && release != NULL);
    atomic_init(&shared->refs, refs);
    shared->release = release;
}

void edge_shared_ref(struct edge_shared *shared)
{
    uint32_t before = atomic_fetch_add_explicit(&shared->refs, 1, memory_order_relaxed);
    TK_ASSERT(before >= 1);
}

void edge_shared_unref(struct edge_shared *shared)
{
    if (shared == NULL)
        return;
    uint32_t before = atomic_fetch_sub_explicit(&shared->refs, 1, memory_order_acq_rel);
    TK_ASSERT(before >= 1);
    if (before == 1)
        shared->release(shared);
}

void edge_interest_push(struct edge_interest_list *list, uint64_t event_id, int delta)
{
    TK_ASSERT(delta == 1 || delta == -1);
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 64;
        struct edge_interest_change *grown = realloc(list->items, capacity * sizeof(*grown));
        TK_ASSERT(grown != NULL);
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = (struct edge_interest_change){event_id, delta};
}

struct edge_interest_list edge_interest_take(struct edge_interest_list *list)
{
    struct edge_interest_list taken = *list;
    *list = (struct edge_interest_list){0};
    return taken;
}

uint64_t edge_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t edge_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct edge_loop *edge_loop_of(h2o_context_t *ctx)
{
    return H2O_STRUCT_FROM_MEMBER(struct edge_loop, ctx, ctx);
}

/* ---- accepting ---- */

#define REFUSAL_BODY                                                                                                   \
    "{\"type\":\"urn:tiketi:problem:too_many_connections\",\"title\":\"Too many connections\",\"status\":503,"      \
    "\"detail\":\"the server is at its connection limit\",\"code\":\"too_many_connections\"}"
static const char refusal[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
                              "Retry-After: 1\r\nConnection: close\r\nContent-Length: 173\r\n\r\n" REFUSAL_BODY;
_Static_assert(sizeof(REFUSAL_BODY) - 1 == 173, "the refusal's Content-Length is its body's length");

static void on_refusal_written(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_close(sock);
}

static void on_connection_closed(void *data)
{
    struct edge_server *server = data;
    uint32_t before = atomic_fetch_sub_explicit(&server->connections, 1, memory_order_relaxed);
    TK_ASSERT(before >= 1);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct edge_loop *loop = listener->data;
    struct edge_server *server = loop->server;
    if (err != NULL)
        return;
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        uint32_t open = atomic_fetch_add_explicit(&server->connections, 1, memory_order_relaxed);
        if (open >= server->config->connections_max) {
            atomic_fetch_sub_explicit(&server->connections, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&server->metrics.connections_refused, 1, memory_order_relaxed);
            if (server->ssl != NULL) {
                h2o_socket_close(sock);
            } else {
                h2o_iovec_t buf = h2o_iovec_init(refusal, sizeof(refusal) - 1);
                h2o_socket_write(sock, &buf, 1, on_refusal_written);
            }
            continue;
        }
        atomic_fetch_add_explicit(&server->metrics.connections_accepted, 1, memory_order_relaxed);
        sock->on_close.cb = on_connection_closed;
        sock->on_close.data = server;
        h2o_accept(&loop->accept, sock);
    }
}

static int open_listener(const struct sockaddr_storage *addr, socklen_t len, char *err, size_t err_len)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)addr, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, err_len, "cannot listen: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* ---- messages ---- */

static void on_broadcasts(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

void edge_broadcast_all(struct edge_server *server, enum edge_broadcast_kind kind, struct edge_shared *payload)
{
    TK_ASSERT(kind == EDGE_BROADCAST_DRAIN || payload != NULL);
    for (uint32_t i = 0; i < server->loop_count; i++) {
        struct edge_broadcast *message = calloc(1, sizeof(*message));
        TK_ASSERT(message != NULL);
        message->kind = kind;
        message->payload = payload;
        h2o_multithread_send_message(&server->loops[i].broadcasts, &message->super);
    }
}

static void drain(struct edge_loop *loop)
{
    if (loop->draining)
        return;
    loop->draining = true;
    if (loop->listener != NULL) {
        h2o_socket_read_stop(loop->listener);
        h2o_socket_close(loop->listener);
        loop->listener = NULL;
    }
    h2o_context_request_shutdown(&loop->ctx);
    edge_ws_close_all(loop, 1001, "server shutting down");
}

static void on_broadcasts(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct edge_loop *loop = H2O_STRUCT_FROM_MEMBER(struct edge_loop, broadcasts, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        struct edge_broadcast *message = H2O_STRUCT_FROM_MEMBER(struct edge_broadcast, super.link, messages->next);
        h2o_linklist_unlink(&message->super.link);
        if (message->kind == EDGE_BROADCAST_DRAIN)
            drain(loop);
        else if (!loop->draining)
            edge_ws_on_broadcast(loop, message->kind, message->payload);
        edge_shared_unref(message->payload);
        free(message);
    }
}

/* On the loop's own thread. h2o keeps per-thread state behind what a thread
 * creates: a socket's input buffer recycles through the bins of the thread that
 * created the socket (h2o_socket_buffer_prototype is __thread), without locks.
 * The context's multithread queue reads its wake-up pipe through such a socket,
 * so a context made on the main thread would have every loop allocating and
 * freeing in the main thread's bin at once (the crash under load: a corrupt
 * bin in h2o_mem_alloc_recycle, then double frees reaching gRPC's memory).
 * Hence every h2o object a loop uses is made here, as h2o's own server does. */
static void loop_setup(struct edge_loop *loop)
{
    struct edge_server *server = loop->server;
    TK_ASSERT(loop->listen_fd >= 0 && loop->listener == NULL);
    h2o_context_init(&loop->ctx, h2o_evloop_create(), &server->h2o);
    loop->accept.ctx = &loop->ctx;
    loop->accept.hosts = server->h2o.hosts;
    loop->accept.ssl_ctx = server->ssl;
    h2o_multithread_register_receiver(loop->ctx.queue, &loop->calls, edge_calls_receive);
    h2o_multithread_register_receiver(loop->ctx.queue, &loop->broadcasts, on_broadcasts);
    loop->listener = h2o_evloop_socket_create(loop->ctx.loop, loop->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    loop->listener->data = loop;
    /* made on this thread: its buffers (and the queue's, made just before) recycle through this thread's bins */
    TK_ASSERT(loop->listener->input == &h2o_socket_buffer_prototype._initial_buf);
    h2o_socket_read_start(loop->listener, on_accept);
    loop->ws = edge_ws_registry_create(loop);
}

static void *loop_main(void *arg)
{
    struct edge_loop *loop = arg;
    char name[16];
    snprintf(name, sizeof(name), "edge-loop-%u", loop->index);
    pthread_setname_np(pthread_self(), name);
    loop_setup(loop);
    pthread_barrier_wait(&loop->server->loops_started);
    while (!atomic_load_explicit(&loop->exit, memory_order_acquire))
        h2o_evloop_run(loop->ctx.loop, 50);
    /* the last completions and broadcasts posted before the exit flag */
    for (int i = 0; i < 3; i++)
        h2o_evloop_run(loop->ctx.loop, 0);
    return NULL;
}

/* Binds every loop's listener here (a start-up error is reported before any
 * thread runs; with port 0 the later loops bind the port the first one got);
 * the h2o side of each loop is made on its thread (loop_setup), and this returns
 * once every loop can take calls and broadcasts. */
enum tk_status edge_loops_start(struct edge_server *server, char *err, size_t err_len)
{
    const struct edge_config *config = server->config;
    TK_ASSERT(config->threads >= 1 && config->threads <= EDGE_THREADS_MAX);
    server->loops = calloc(config->threads, sizeof(struct edge_loop));
    TK_ASSERT(server->loops != NULL);
    struct sockaddr_storage addr = server->listen_addr;
    for (uint32_t i = 0; i < config->threads; i++) {
        int fd = open_listener(&addr, server->listen_addr_len, err, err_len);
        if (fd < 0) {
            for (uint32_t j = 0; j < i; j++)
                close(server->loops[j].listen_fd);
            return TK_ERR_UNAVAILABLE;
        }
        if (i == 0) {
            socklen_t len = server->listen_addr_len;
            getsockname(fd, (struct sockaddr *)&addr, &len);
        }
        server->loops[i] = (struct edge_loop){.server = server, .index = i, .listen_fd = fd};
    }
    server->listen_addr = addr;
    server->loop_count = config->threads;
    int rc = pthread_barrier_init(&server->loops_started, NULL, server->loop_count + 1);
    TK_ASSERT(rc == 0);
    for (uint32_t i = 0; i < server->loop_count; i++) {
        rc = pthread_create(&server->loops[i].thread, NULL, loop_main, &server->loops[i]);
        TK_ASSERT(rc == 0);
    }
    pthread_barrier_wait(&server->loops_started);
    for (uint32_t i = 0; i < server->loop_count; i++)
        TK_ASSERT(server->loops[i].listener != NULL && server->loops[i].ws != NULL);
    return TK_OK;
}

void edge_loops_drain(struct edge_server *server)
{
    edge_broadcast_all(server, EDGE_BROADCAST_DRAIN, NULL);
}

uint32_t edge_loops_busy(struct edge_server *server)
{
    uint32_t busy = atomic_load(&server->websockets);
    for (uint32_t i = 0; i < server->loop_count; i++)
        busy += atomic_load_explicit(&server->loops[i].calls_in_flight, memory_order_relaxed);
    return busy;
}

void edge_loops_stop(struct edge_server *server)
{
    for (uint32_t i = 0; i < server->loop_count; i++)
        atomic_store_explicit(&server->loops[i].exit, true, memory_order_release);
    for (uint32_t i = 0; i < server->loop_count; i++)
        h2o_multithread_send_message(&server->loops[i].broadcasts, NULL); /* wake it */
    for (uint32_t i = 0; i < server->loop_count; i++)
        pthread_join(server->loops[i].thread, NULL);
    pthread_barrier_destroy(&server->loops_started);
}
