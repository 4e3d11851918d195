/* baseline_main.c — tiketi-baseline: options, the HTTP side (one epoll thread),
 * the job queue and the worker threads (baseline.h says why this shape).
 *
 *   tiketi-baseline --listen 127.0.0.1:PORT --database-url URL [--create-database]
 *                   --redis-url redis://HOST:PORT --jwt-keys kid=/path [--workers N]
 *
 * A connection carries one request at a time: the epoll thread reads until the
 * request is complete (head, then Content-Length bytes of body), disarms the
 * socket (EPOLLONESHOT) and queues it; a worker answers, writes the response
 * (waiting for the socket to drain if it must) and re-arms it. So a socket is
 * only ever touched by one thread at a time, without locks around it. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "baseline.h"
#include "tk_assert.h"

struct conn {
    int fd;
    char buf[BL_REQUEST_BYTES_MAX];
    size_t len;
};

static struct conn *conns[BL_CONNECTIONS_MAX];
static int epoll_fd;
static struct svc_jwt_keyset keys;

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_ready = PTHREAD_COND_INITIALIZER;
static struct bl_request *queue[BL_QUEUE_MAX];
static uint32_t queue_head, queue_count;

static void usage(void)
{
    fprintf(stderr, "usage: tiketi-baseline --listen HOST:PORT --database-url URL [--create-database] "
                    "--redis-url redis://HOST:PORT --jwt-keys kid=/path [--workers N]\n");
}

static int parse(int argc, char **argv, struct bl_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "127.0.0.1:3300");
    c->workers = 32;
    char redis[200] = "";
    static const struct option options[] = {
        {"listen", required_argument, 0, 'l'},  {"database-url", required_argument, 0, 'd'},
        {"redis-url", required_argument, 0, 'r'}, {"jwt-keys", required_argument, 0, 'k'},
        {"workers", required_argument, 0, 'w'}, {"create-database", no_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (o) {
        case 'l': snprintf(c->listen, sizeof(c->listen), "%s", optarg); break;
        case 'd': snprintf(c->database_url, sizeof(c->database_url), "%s", optarg); break;
        case 'r': snprintf(redis, sizeof(redis), "%s", optarg); break;
        case 'k': snprintf(c->jwt_keys, sizeof(c->jwt_keys), "%s", optarg); break;
        case 'w': c->workers = (uint32_t)atoi(optarg); break;
        case 'c': c->create_database = true; break;
        default: usage(); return -1;
        }
    }
    if (sscanf(redis, "redis://%127[^:]:%d", c->redis_host, &c->redis_port) != 2 || c->database_url[0] == '\0' ||
        c->jwt_keys[0] == '\0' || c->workers < 1 || c->workers > BL_WORKERS_MAX) {
        usage();
        return -1;
    }
    return 0;
}

/* ---- the queue ---- */

static bool enqueue(struct bl_request *request)
{
    pthread_mutex_lock(&queue_lock);
    bool ok = queue_count < BL_QUEUE_MAX;
    if (ok) {
        queue[(queue_head + queue_count) % BL_QUEUE_MAX] = request;
        queue_count++;
        pthread_cond_signal(&queue_ready);
    }
    pthread_mutex_unlock(&queue_lock);
    return ok;
}

static struct bl_request *dequeue(void)
{
    pthread_mutex_lock(&queue_lock);
    while (queue_count == 0)
        pthread_cond_wait(&queue_ready, &queue_lock);
    struct bl_request *request = queue[queue_head];
    queue_head = (queue_head + 1) % BL_QUEUE_MAX;
    queue_count--;
    pthread_mutex_unlock(&queue_lock);
    return request;
}

/* ---- connections ---- */

static void conn_close(uint32_t index)
{
    struct conn *c = conns[index];
    if (c == NULL)
        return;
    close(c->fd);
    free(c);
    conns[index] = NULL;
}

static void rearm(uint32_t index)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u32 = index};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, conns[index]->fd, &ev) != 0)
        conn_close(index);
}

static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 5000) <= 0)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 422: return "Unprocessable Entity";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

static void respond(const struct bl_request *rq, const struct bl_response *out)
{
    char head[256];
    size_t body = strlen(out->body);
    bool problem = out->status >= 400;
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                     out->status, reason(out->status), problem ? "application/problem+json" : "application/json", body,
                     rq->close ? "Connection: close\r\n" : "");
    bool ok = send_all(rq->fd, head, (size_t)n) && send_all(rq->fd, out->body, body);
    /* the epoll thread does not touch a connection with a request in flight */
    if (!ok || rq->close) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, rq->fd, NULL);
        shutdown(rq->fd, SHUT_RDWR);
    }
    rearm(rq->conn);
}

static void *worker_main(void *arg)
{
    struct bl_worker *worker = arg;
    for (;;) {
        struct bl_request *request = dequeue();
        struct bl_response response;
        bl_handle(worker, request, &response);
        respond(request, &response);
        free(request->body);
        free(request);
    }
    return NULL;
}

/* ---- requests ---- */

static bool header(const char *head, const char *name, char *out, size_t out_len)
{
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            h += n + 1;
            while (*h == ' ')
                h++;
            size_t len = strcspn(h, "\r\n");
            if (len >= out_len)
                return false;
            memcpy(out, h, len);
            out[len] = '\0';
            return true;
        }
    }
    out[0] = '\0';
    return false;
}

/* A complete request at the start of c->buf: queued (1), not yet (0), bad (-1). */
static int take_request(uint32_t index)
{
    struct conn *c = conns[index];
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (end == NULL)
        return c->len < sizeof(c->buf) ? 0 : -1;
    *end = '\0';
    size_t head = (size_t)(end - c->buf) + 4;
    char length[24];
    size_t body = header(c->buf, "content-length", length, sizeof(length)) ? strtoull(length, NULL, 10) : 0;
    if (head + body > sizeof(c->buf))
        return -1;
    if (c->len < head + body) {
        *end = '\r';
        return 0;
    }
    struct bl_request *rq = calloc(1, sizeof(*rq));
    TK_ASSERT(rq != NULL);
    rq->fd = c->fd;
    rq->conn = index;
    if (sscanf(c->buf, "%7s %255s", rq->method, rq->path) != 2) {
        free(rq);
        return -1;
    }
    header(c->buf, "authorization", rq->authorization, sizeof(rq->authorization));
    header(c->buf, "idempotency-key", rq->idempotency_key, sizeof(rq->idempotency_key));
    char connection[32];
    rq->close = header(c->buf, "connection", connection, sizeof(connection)) && strcasecmp(connection, "close") == 0;
    if (body > 0) {
        rq->body = malloc(body + 1);
        memcpy(rq->body, c->buf + head, body);
        rq->body[body] = '\0';
        rq->body_len = body;
    }
    c->len = 0; /* one request at a time: nothing is pipelined behind it */
    if (!enqueue(rq)) {
        free(rq->body);
        free(rq);
        return -1;
    }
    return 1;
}

static void on_readable(uint32_t index)
{
    struct conn *c = conns[index];
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            int taken = take_request(index);
            if (taken == 1)
                return; /* disarmed until the answer is written */
            if (taken < 0) {
                conn_close(index);
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            rearm(index);
            return;
        }
        conn_close(index);
        return;
    }
}

static int listen_on(const char *address)
{
    char host[64];
    int port = 0;
    if (sscanf(address, "%63[^:]:%d", host, &port) != 2)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 4096) != 0) {
        perror("tiketi-baseline: listen");
        return -1;
    }
    return fd;
}

static void accept_all(int listener)
{
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        uint32_t index = 0;
        while (index < BL_CONNECTIONS_MAX && conns[index] != NULL)
            index++;
        if (index == BL_CONNECTIONS_MAX) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        TK_ASSERT(c != NULL);
        c->fd = fd;
        conns[index] = c;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u32 = index};
        TK_ASSERT(epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0);
    }
}

int main(int argc, char **argv)
{
    struct bl_config config;
    if (parse(argc, argv, &config) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    struct svc_jwt_keyset_config key_config = {
        .keys = config.jwt_keys, .issuer = "tiketi-auth", .audience = "tiketi", .leeway_s = 30};
    if (svc_jwt_keyset_load(&keys, &key_config, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tiketi-baseline: --jwt-keys: %s\n", err);
        return 2;
    }
    if (config.create_database && bl_create_database(config.database_url, err, sizeof(err)) != 0) {
        fprintf(stderr, "tiketi-baseline: %s\n", err);
        return 1;
    }
    static struct bl_worker workers[BL_WORKERS_MAX];
    for (uint32_t i = 0; i < config.workers; i++) {
        workers[i].index = i;
        workers[i].keys = &keys;
        if (!bl_worker_connect(&workers[i], &config, err, sizeof(err)) ||
            (i == 0 && bl_schema(workers[i].db, err, sizeof(err)) != 0)) {
            fprintf(stderr, "tiketi-baseline: %s\n", err);
            return 1;
        }
    }
    int listener = listen_on(config.listen);
    if (listener < 0)
        return 1;
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    TK_ASSERT(epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &ev) == 0);
    for (uint32_t i = 0; i < config.workers; i++) {
        pthread_t thread;
        TK_ASSERT(pthread_create(&thread, NULL, worker_main, &workers[i]) == 0);
    }
    fprintf(stderr, "tiketi-baseline: listening on %s, %u workers (PostgreSQL + Redis connection each)\n",
            config.listen, config.workers);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epoll_fd, events, 256, -1);
        for (int i = 0; i < n; i++) {
            if (events[i].data.u32 == UINT32_MAX)
                accept_all(listener);
            else if (conns[events[i].data.u32] != NULL)
                on_readable(events[i].data.u32);
        }
    }
}
