/* testserver.c — rush-testserver: a tiny HTTP/1.1 + WebSocket server that the
 * load generator's self-test (selftest.c) drives, so the client can be tested
 * without the stack, including what a real server does to it: idle keep-alive
 * connections closed (like the edge's 10 s header timeout), Connection: close,
 * chunked and large bodies, slow answers, problem+json refusals, WebSocket
 * pushes with fragmented messages and pings, a refused upgrade.
 *
 *   rush-testserver [--port N] [--idle-ms MS] [--close-every N]
 * prints "port N" on stdout once listening (port 0: any free port).
 *
 * Routes:
 *   GET  /json                 200 {"ok":true,"n":<request count>}
 *   POST /echo                 200, the request body back
 *   GET  /chunked?n=B          200, B bytes of 'x' in chunks of varying size
 *   GET  /big?n=B              200, B bytes with Content-Length
 *   GET  /slow?ms=M            200 after M ms
 *   GET  /problem              409 problem+json, code seat_unavailable
 *   GET  /close                200 with Connection: close, then closes
 *   GET  /ws?n=N&every_ms=M    WebSocket: N position messages every M ms (every third
 *                              in two fragments, a ping before every fifth), then close 1000
 *   GET  /ws-refused           503 problem+json instead of the upgrade
 * Single-threaded epoll, level-triggered, bounded buffers; a test tool, not a server
 * to copy. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX 4096
#define IN_MAX (256u << 10)
#define OUT_MAX (3u << 20)

struct client {
    int fd;
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    uint64_t idle_since_ms, due_ms; /* a delayed answer */
    uint32_t responses;
    bool close_after;
    bool ws;
    uint32_t ws_left, ws_every_ms, ws_sent;
    uint64_t ws_next_ms;
    char pending[256]; /* a delayed answer's bytes */
    size_t pending_len;
};

static struct client clients[CONNS_MAX];
static uint32_t idle_ms = 10000, close_every = 0;
static uint64_t requests;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void out_append(struct client *c, const void *data, size_t len)
{
    if (c->out_len + len > OUT_MAX)
        return;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void respond(struct client *c, int status, const char *reason, const char *type, const char *body,
                    size_t body_len, bool close_it)
{
    c->responses++;
    if (close_every > 0 && c->responses >= close_every)
        close_it = true;
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n", status,
                     reason, type, body_len, close_it ? "close" : "keep-alive");
    out_append(c, head, (size_t)n);
    out_append(c, body, body_len);
    c->close_after = c->close_after || close_it;
}

static void respond_chunked(struct client *c, size_t total)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
    out_append(c, head, sizeof(head) - 1);
    char chunk[8192];
    memset(chunk, 'x', sizeof(chunk));
    size_t sizes[] = {1, 7, 100, 4096, 8000, 3};
    for (size_t sent = 0, i = 0; sent < total; i++) {
        size_t n = sizes[i % 6];
        if (n > total - sent)
            n = total - sent;
        char line[32];
        int k = snprintf(line, sizeof(line), "%zx\r\n", n);
        out_append(c, line, (size_t)k);
        out_append(c, chunk, n);
        out_append(c, "\r\n", 2);
        sent += n;
    }
    out_append(c, "0\r\n\r\n", 5);
    c->responses++;
}

static size_t query_number(const char *path, const char *key, size_t fallback)
{
    const char *q = strstr(path, key);
    return q != NULL ? (size_t)strtoull(q + strlen(key), NULL, 10) : fallback;
}

static void ws_frame(struct client *c, uint8_t opcode, bool fin, const char *payload, size_t len)
{
    uint8_t head[10];
    size_t h = 2;
    head[0] = (uint8_t)((fin ? 0x80u : 0) | opcode);
    if (len < 126) {
        head[1] = (uint8_t)len;
    } else {
        head[1] = 126;
        head[2] = (uint8_t)(len >> 8);
        head[3] = (uint8_t)len;
        h = 4;
    }
    out_append(c, head, h);
    out_append(c, payload, len);
}

static void ws_upgrade(struct client *c, const char *request, const char *path)
{
    const char *key = strcasestr(request, "sec-websocket-key:");
    char k[64] = {0};
    if (key == NULL || sscanf(key + 18, " %60s", k) != 1) {
        respond(c, 400, "Bad Request", "text/plain", "no key", 6, true);
        return;
    }
    char text[128];
    snprintf(text, sizeof(text), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", k);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((unsigned char *)text, strlen(text), digest);
    char accept[64];
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    out_append(c, head, (size_t)n);
    c->ws = true;
    c->ws_left = (uint32_t)query_number(path, "n=", 10);
    c->ws_every_ms = (uint32_t)query_number(path, "every_ms=", 50);
    c->ws_next_ms = now_ms();
}

static void ws_push(struct client *c, uint64_t now)
{
    while (c->ws_left > 0 && now >= c->ws_next_ms) {
        char msg[128];
        int n = snprintf(msg, sizeof(msg), "{\"type\":\"position\",\"position\":%u,\"eta_s\":1}", c->ws_left);
        c->ws_sent++;
        if (c->ws_sent % 5 == 0)
            ws_frame(c, 0x9, true, "hi", 2);
        if (c->ws_sent % 3 == 0) {
            ws_frame(c, 0x1, false, msg, 10);
            ws_frame(c, 0x0, true, msg + 10, (size_t)n - 10);
        } else {
            ws_frame(c, 0x1, true, msg, (size_t)n);
        }
        c->ws_left--;
        c->ws_next_ms += c->ws_every_ms;
        if (c->ws_left == 0)
            ws_frame(c, 0x8, true, "\x03\xe8", 2);
    }
}

/* Client frames: masked; close is echoed, pongs ignored. Returns false to drop. */
static bool ws_read(struct client *c)
{
    size_t at = 0;
    while (c->in_len - at >= 6) {
        uint8_t *b = (uint8_t *)c->in + at;
        if (!(b[1] & 0x80))
            return false; /* unmasked client frame: a protocol error */
        size_t len = b[1] & 0x7f, h = 6;
        if (len == 126) {
            if (c->in_len - at < 8)
                break;
            len = ((size_t)b[2] << 8) | b[3];
            h = 8;
        } else if (len == 127) {
            return false;
        }
        if (c->in_len - at < h + len)
            break;
        uint8_t opcode = b[0] & 0x0f;
        if (opcode == 0x8) {
            c->close_after = true;
            if (c->ws_left > 0)
                ws_frame(c, 0x8, true, "\x03\xe8", 2);
        }
        at += h + len;
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    return true;
}

static void handle_request(struct client *c, const char *request, const char *path, const char *method,
                           const char *body, size_t body_len)
{
    requests++;
    if (strcmp(path, "/json") == 0) {
        char json[64];
        int n = snprintf(json, sizeof(json), "{\"ok\":true,\"n\":%llu}", (unsigned long long)requests);
        respond(c, 200, "OK", "application/json", json, (size_t)n, false);
    } else if (strcmp(path, "/echo") == 0 && strcmp(method, "POST") == 0) {
        respond(c, 200, "OK", "application/json", body, body_len, false);
    } else if (strncmp(path, "/chunked", 8) == 0) {
        respond_chunked(c, query_number(path, "n=", 1000));
    } else if (strncmp(path, "/big", 4) == 0) {
        size_t n = query_number(path, "n=", 100000);
        char *big = malloc(n + 1);
        memset(big, 'y', n);
        respond(c, 200, "OK", "text/plain", big, n, false);
        free(big);
    } else if (strncmp(path, "/slow", 5) == 0) {
        c->due_ms = now_ms() + query_number(path, "ms=", 100);
        c->pending_len = (size_t)snprintf(c->pending, sizeof(c->pending), "{\"slow\":true}");
    } else if (strcmp(path, "/problem") == 0) {
        static const char p[] = "{\"type\":\"x\",\"title\":\"t\",\"status\":409,\"code\":\"seat_unavailable\"}";
        respond(c, 409, "Conflict", "application/problem+json", p, sizeof(p) - 1, false);
    } else if (strcmp(path, "/close") == 0) {
        respond(c, 200, "OK", "application/json", "{}", 2, true);
    } else if (strncmp(path, "/ws-refused", 11) == 0) {
        static const char p[] = "{\"status\":503,\"code\":\"too_many_connections\"}";
        respond(c, 503, "Service Unavailable", "application/problem+json", p, sizeof(p) - 1, false);
    } else if (strncmp(path, "/ws", 3) == 0) {
        ws_upgrade(c, request, path);
    } else {
        respond(c, 404, "Not Found", "application/problem+json", "{\"code\":\"not_found\"}", 20, false);
    }
}

/* Parses every complete request in the buffer (pipelining allowed). */
static bool read_requests(struct client *c)
{
    for (;;) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (end == NULL)
            return c->in_len < 16384;
        size_t head = (size_t)(end - c->in) + 4;
        const char *cl = strcasestr(c->in, "content-length:");
        size_t body = cl != NULL && cl < end ? strtoull(cl + 15, NULL, 10) : 0;
        if (c->in_len < head + body)
            return true;
        char method[8] = {0}, path[512] = {0};
        if (sscanf(c->in, "%7s %511s", method, path) != 2)
            return false;
        c->in[head - 1] = '\0';
        handle_request(c, c->in, path, method, c->in + head, body);
        memmove(c->in, c->in + head + body, c->in_len - head - body);
        c->in_len -= head + body;
        if (c->ws)
            return true;
    }
}

static void drop(int epoll_fd, struct client *c)
{
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static bool flush(struct client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return true;
}

static int listen_on(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 4096) != 0) {
        perror("rush-testserver: listen");
        exit(1);
    }
    socklen_t len = sizeof(addr);
    getsockname(fd, (struct sockaddr *)&addr, &len);
    printf("port %u\n", ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

static void on_readable(int epoll_fd, struct client *c)
{
    for (;;) {
        if (c->in_len == IN_MAX) {
            drop(epoll_fd, c);
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_MAX - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        drop(epoll_fd, c);
        return;
    }
    c->idle_since_ms = now_ms();
    bool ok = c->ws ? ws_read(c) : read_requests(c);
    if (!ok)
        drop(epoll_fd, c);
}

static void housekeeping(int epoll_fd, uint64_t now)
{
    for (int i = 0; i < CONNS_MAX; i++) {
        struct client *c = &clients[i];
        if (c->fd < 0)
            continue;
        if (c->due_ms != 0 && now >= c->due_ms) {
            c->due_ms = 0;
            respond(c, 200, "OK", "application/json", c->pending, c->pending_len, false);
        }
        if (c->ws)
            ws_push(c, now);
        if (!flush(c)) {
            drop(epoll_fd, c);
            continue;
        }
        bool idle = !c->ws && c->due_ms == 0 && c->in_len == 0 && c->out_len == 0;
        if ((c->close_after && c->out_len == 0) || (idle && now - c->idle_since_ms > idle_ms) ||
            (c->ws && c->ws_left == 0 && c->out_len == 0 && now - c->idle_since_ms > 2000))
            drop(epoll_fd, c);
    }
}

int main(int argc, char **argv)
{
    uint16_t port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = (uint16_t)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--idle-ms") == 0)
            idle_ms = (uint32_t)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--close-every") == 0)
            close_every = (uint32_t)atoi(argv[i + 1]);
    }
    signal(SIGPIPE, SIG_IGN);
    int listener = listen_on(port);
    int epoll_fd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &ev);
    for (int i = 0; i < CONNS_MAX; i++)
        clients[i].fd = -1;
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epoll_fd, events, 256, 5);
        for (int i = 0; i < n; i++) {
            if (events[i].data.u32 == UINT32_MAX) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int slot = 0;
                    while (slot < CONNS_MAX && clients[slot].fd >= 0)
                        slot++;
                    if (slot == CONNS_MAX) {
                        close(fd);
                        continue;
                    }
                    struct client *c = &clients[slot];
                    c->fd = fd;
                    c->in = malloc(IN_MAX);
                    c->out = malloc(OUT_MAX);
                    c->idle_since_ms = now_ms();
                    struct epoll_event cev = {.events = EPOLLIN, .data.u32 = (uint32_t)slot};
                    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            struct client *c = &clients[events[i].data.u32];
            if (c->fd >= 0)
                on_readable(epoll_fd, c);
        }
        housekeeping(epoll_fd, now_ms());
    }
}
