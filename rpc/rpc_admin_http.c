/* rpc_admin_http.c — /metrics, /healthz and /readyz over HTTP/1.1 (rpc_admin_http.h). */
#include "rpc_admin_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "rpc_log.h"
#include "rpc_metrics.h"
#include "tk_assert.h"

#define ADMIN_REQUEST_BYTES_MAX 8192u

struct rpc_admin_http {
    int fd;
    int port;
    pthread_t thread;
    _Atomic bool stop;
    struct rpc_health *health;
};

bool rpc_parse_host_port(const char *text, struct sockaddr_storage *addr, socklen_t *addr_len)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof(host))
        return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535 || colon[1] == '\0')
        return false;
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) != 1)
            return false;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *addr_len = sizeof(*v6);
        return true;
    }
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &v4->sin_addr) != 1)
        return false;
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *addr_len = sizeof(*v4);
    return true;
}

static void respond(int fd, int code, const char *reason, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", code,
                     reason, type, len);
    if (write(fd, head, (size_t)n) != n)
        return;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, body + off, len - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

/* Reads until the end of the header block; false on timeout, overflow or EOF. */
static bool read_request(int fd, char *buf, size_t cap)
{
    size_t used = 0;
    while (used + 1 < cap) {
        ssize_t r = read(fd, buf + used, cap - 1 - used);
        if (r <= 0)
            return false;
        used += (size_t)r;
        buf[used] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
            return true;
    }
    return false;
}

static void serve(struct rpc_admin_http *admin, int fd)
{
    struct timeval timeout = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    char request[ADMIN_REQUEST_BYTES_MAX];
    if (!read_request(fd, request, sizeof(request))) {
        respond(fd, 400, "Bad Request", "text/plain", "bad request\n", 12);
        return;
    }
    if (strncmp(request, "GET /metrics ", 13) == 0 || strncmp(request, "GET /metrics?", 13) == 0) {
        char *body = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&body, &len);
        if (out == NULL) {
            respond(fd, 500, "Internal Server Error", "text/plain", "out of memory\n", 14);
            return;
        }
        rpc_metrics_write(out);
        fclose(out);
        respond(fd, 200, "OK", "text/plain; version=0.0.4", body, len);
        free(body);
    } else if (strncmp(request, "GET /healthz ", 13) == 0) {
        respond(fd, 200, "OK", "text/plain", "ok\n", 3);
    } else if (strncmp(request, "GET /readyz ", 12) == 0) {
        bool ready = admin->health == NULL || rpc_health_serving(admin->health);
        if (ready)
            respond(fd, 200, "OK", "text/plain", "ready\n", 6);
        else
            respond(fd, 503, "Service Unavailable", "text/plain", "not ready\n", 10);
    } else {
        respond(fd, 404, "Not Found", "text/plain", "not found\n", 10);
    }
}

static void *admin_thread(void *arg)
{
    struct rpc_admin_http *admin = arg;
    while (!atomic_load(&admin->stop)) {
        struct pollfd pfd = {.fd = admin->fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        int fd = accept(admin->fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve(admin, fd);
        close(fd);
    }
    return NULL;
}

enum tk_status rpc_admin_http_start(struct rpc_admin_http **out, const char *address, struct rpc_health *health,
                                    char *err, size_t err_len)
{
    TK_ASSERT(out != NULL && address != NULL);
    struct sockaddr_storage addr;
    socklen_t addr_len;
    if (!rpc_parse_host_port(address, &addr, &addr_len)) {
        snprintf(err, err_len, "bad metrics address '%s' (want host:port)", address);
        return TK_ERR_INVALID;
    }
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || listen(fd, 64) != 0) {
        snprintf(err, err_len, "cannot listen on %s for metrics: %s", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        return TK_ERR_INVALID;
    }
    struct rpc_admin_http *admin = calloc(1, sizeof(*admin));
    TK_ASSERT(admin != NULL);
    admin->fd = fd;
    admin->health = health;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    getsockname(fd, (struct sockaddr *)&bound, &bound_len);
    admin->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    int rc = pthread_create(&admin->thread, NULL, admin_thread, admin);
    TK_ASSERT(rc == 0);
    *out = admin;
    return TK_OK;
}

int rpc_admin_http_port(const struct rpc_admin_http *admin)
{
    return admin->port;
}

void rpc_admin_http_stop(struct rpc_admin_http *admin)
{
    if (admin == NULL)
        return;
    atomic_store(&admin->stop, true);
    pthread_join(admin->thread, NULL);
    close(admin->fd);
    free(admin);
}
