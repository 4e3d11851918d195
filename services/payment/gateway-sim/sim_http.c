/* sim_http.c — HTTP/1.1 framing for the simulator, one thread per connection.
 *
 * Blocking sockets, a thread per connection (bounded by --connections-max in
 * main.c) and keep-alive: payment-svc keeps a few connections open, tests open a
 * handful, so threads are the simplest robust design, and a hung request (the
 * "hang" fault) just parks its own thread. Trade-off: no thousands of idle
 * connections, which a test double does not need.
 *
 * Bounds, all answered with a status and a closed connection: request line and
 * headers over 8 KiB (431), a body over --body-bytes-max (413), a request that
 * takes longer than --read-timeout-ms to arrive (closed), chunked bodies (501),
 * anything malformed (400). Input is never trusted: every length is checked
 * before it is used. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"
#include "tk_assert.h"

struct head {
    size_t length;         /* bytes of request line + headers, with the blank line */
    uint64_t content_length;
    bool keep_alive;
    bool expect_continue;
    int error_status;      /* nonzero: answer this and close */
    const char *error_message;
};

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 402: return "Payment Required";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_response(int fd, const struct sim_response *r, const char *request_id, bool close_after)
{
    const char *body = r->body != NULL ? r->body : "";
    size_t body_len = strlen(body);
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n%s%s%s%s\r\n",
                     r->status, reason_phrase(r->status), body_len, close_after ? "close" : "keep-alive",
                     r->replayed ? "Idempotent-Replayed: true\r\n" : "", request_id[0] ? "X-Request-Id: " : "",
                     request_id, request_id[0] ? "\r\n" : "");
    TK_ASSERT(n > 0 && (size_t)n < sizeof(head));
    return send_all(fd, head, (size_t)n) && send_all(fd, body, body_len);
}

/* Waits for more bytes until deadline; >0 bytes read, 0 closed, timed out or
 * stopping, -1 error. */
static ssize_t read_some(struct sim *sim, int fd, char *buf, size_t len, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - sim_monotonic_ms();
        if (left <= 0 || atomic_load(&sim->stopping))
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, (int)(left > 200 ? 200 : left));
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc <= 0)
            continue;
        ssize_t n = recv(fd, buf, len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return n < 0 ? -1 : n;
    }
}

static char *find_blank_line(char *buf, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return buf + i;
    return NULL;
}

static bool token_char(char c)
{
    return isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Parses the request line into request; false on anything unexpected. */
static bool parse_request_line(char *line, struct sim_request *request, bool *http10)
{
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || (size_t)(sp1 - line) >= sizeof(request->method))
        return false;
    *sp1 = *sp2 = '\0';
    for (char *p = line; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return false;
    snprintf(request->method, sizeof(request->method), "%s", line);
    const char *target = sp1 + 1, *version = sp2 + 1;
    if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0)
        return false;
    *http10 = strcmp(version, "HTTP/1.0") == 0;
    size_t target_len = strlen(target);
    if (target[0] != '/' || target_len >= SIM_PATH_BYTES_MAX)
        return false;
    for (const char *p = target; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    const char *question = strchr(target, '?');
    size_t path_len = question ? (size_t)(question - target) : target_len;
    memcpy(request->path, target, path_len);
    request->path[path_len] = '\0';
    snprintf(request->query, sizeof(request->query), "%s", question ? question + 1 : "");
    return true;
}

static void header_value(struct head *h, struct sim_request *request, const char *name, const char *value)
{
    size_t len = strlen(value);
    if (strcasecmp(name, "Content-Length") == 0) {
        uint64_t v = 0;
        if (len == 0 || len > 12)
            goto bad;
        for (const char *p = value; *p; p++) {
            if (!isdigit((unsigned char)*p))
                goto bad;
            v = v * 10 + (uint64_t)(*p - '0');
        }
        if (h->content_length != UINT64_MAX && h->content_length != v)
            goto bad; /* two different lengths: a smuggling attempt or a broken client */
        h->content_length = v;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        h->error_status = 501;
        h->error_message = "Transfer-Encoding is not supported: send Content-Length";
    } else if (strcasecmp(name, "Connection") == 0) {
        if (strcasecmp(value, "close") == 0)
            h->keep_alive = false;
        else if (strcasecmp(value, "keep-alive") == 0)
            h->keep_alive = true;
    } else if (strcasecmp(name, "Expect") == 0) {
        h->expect_continue = strcasecmp(value, "100-continue") == 0;
    } else if (strcasecmp(name, "Idempotency-Key") == 0) {
        if (len == 0 || len > SIM_KEY_BYTES_MAX || request->has_idempotency_key) {
            h->error_status = 400;
            h->error_message = "Idempotency-Key must appear once, 1..255 printable characters";
            return;
        }
        memcpy(request->idempotency_key, value, len + 1);
        request->has_idempotency_key = true;
    } else if (strcasecmp(name, "X-Request-Id") == 0) {
        bool ok = len > 0 && len < sizeof(request->request_id);
        for (const char *p = value; ok && *p; p++)
            ok = isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.';
        if (ok)
            memcpy(request->request_id, value, len + 1);
    }
    return;
bad:
    h->error_status = 400;
    h->error_message = "bad Content-Length";
}

/* Parses the head in buf[0..end) (NUL-terminated by the caller at end). */
static void parse_head(char *buf, struct head *h, struct sim_request *request)
{
    char *line = buf, *eol = strstr(line, "\r\n");
    bool http10 = false;
    if (eol != NULL)
        *eol = '\0';
    if (eol == NULL || !parse_request_line(line, request, &http10)) {
        h->error_status = 400;
        h->error_message = "malformed request line";
        return;
    }
    h->keep_alive = !http10;
    for (line = eol + 2; *line != '\0' && h->error_status == 0; line = eol + 2) {
        eol = strstr(line, "\r\n");
        if (eol == NULL)
            break;
        *eol = '\0';
        char *colon = strchr(line, ':');
        bool ok = colon != NULL && colon != line;
        for (char *p = line; ok && p < colon; p++)
            ok = token_char(*p);
        for (char *p = colon ? colon + 1 : line; ok && *p; p++)
            ok = (*p >= 0x20 && *p <= 0x7e) || *p == '\t';
        if (!ok) {
            h->error_status = 400;
            h->error_message = "malformed header line";
            return;
        }
        *colon = '\0';
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        char *end = value + strlen(value);
        while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        header_value(h, request, line, value);
    }
}

/* After refusing a request whose bytes may still be arriving: stop writing, then read
 * and discard for a moment, so the client reads the answer instead of a reset
 * (a "lingering close"). Bounded in bytes and time. */
static void linger_close(int fd)
{
    shutdown(fd, SHUT_WR);
    char sink[4096];
    size_t drained = 0;
    int64_t until = sim_monotonic_ms() + 200;
    while (drained < (1u << 20) && sim_monotonic_ms() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n <= 0)
            break;
        drained += (size_t)n;
    }
}

static void answer_error(struct sim *sim, int fd, int status, const char *message)
{
    struct sim_response r = {0};
    atomic_fetch_add(&sim->counters.bad_requests, 1);
    sim_error(&r, status, "invalid_request_error", status == 413 ? "body_too_large" : "bad_http", message);
    if (send_response(fd, &r, "", true))
        linger_close(fd);
    free(r.body);
}

/* Reads one request's head into buf (have bytes already there). 1: got it, 0: the
 * client closed or was too slow (close quietly), -1: answered an error (close). */
static int read_head(struct sim *sim, int fd, char *buf, size_t *have, size_t head_cap, struct head *h,
                     struct sim_request *request)
{
    int64_t deadline = sim_monotonic_ms() + sim->config->read_timeout_ms;
    char *blank;
    while ((blank = find_blank_line(buf, *have)) == NULL) {
        if (*have >= head_cap) { /* (leftover pipelined bytes count too) */
            answer_error(sim, fd, 431, "request line and headers must fit in 8 KiB");
            return -1;
        }
        ssize_t n = read_some(sim, fd, buf + *have, head_cap - *have, deadline);
        if (n <= 0)
            return 0;
        *have += (size_t)n;
    }
    *h = (struct head){.length = (size_t)(blank - buf) + 4, .content_length = UINT64_MAX};
    if (memchr(buf, '\0', h->length) != NULL) {
        answer_error(sim, fd, 400, "NUL byte in the request head");
        return -1;
    }
    char saved = blank[2];
    blank[2] = '\0'; /* the head ends with its last CRLF; parse it as a string */
    parse_head(buf, h, request);
    blank[2] = saved;
    if (h->content_length == UINT64_MAX)
        h->content_length = 0;
    if (h->error_status == 0 && h->content_length > sim->config->body_bytes_max) {
        h->error_status = 413;
        h->error_message = "the body is larger than the simulator accepts";
    }
    if (h->error_status != 0) {
        answer_error(sim, fd, h->error_status, h->error_message);
        return -1;
    }
    return 1;
}

/* Reads until the body is complete. false: the client closed or was too slow. */
static bool read_body(struct sim *sim, int fd, char *buf, size_t *have, size_t need)
{
    int64_t deadline = sim_monotonic_ms() + sim->config->read_timeout_ms;
    while (*have < need) {
        ssize_t n = read_some(sim, fd, buf + *have, need - *have, deadline);
        if (n <= 0)
            return false;
        *have += (size_t)n;
    }
    return true;
}

void sim_http_serve(struct sim *sim, int fd)
{
    const size_t head_cap = SIM_HEADER_BYTES_MAX;
    const size_t cap = head_cap + sim->config->body_bytes_max + 1;
    char *buf = malloc(cap);
    TK_ASSERT(buf != NULL);
    size_t have = 0;
    for (uint32_t served = 0; served < SIM_REQUESTS_PER_CONNECTION_MAX && !atomic_load(&sim->stopping); served++) {
        struct sim_request request = {.fd = fd};
        struct head h;
        if (read_head(sim, fd, buf, &have, head_cap, &h, &request) <= 0)
            break;
        size_t need = h.length + (size_t)h.content_length;
        TK_ASSERT(need < cap);
        if (h.expect_continue && have < need && !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
            break;
        if (!read_body(sim, fd, buf, &have, need))
            break;
        request.body = buf + h.length;
        request.body_len = (size_t)h.content_length;
        struct sim_response response = {0};
        sim_handle(sim, &request, &response);
        bool close_after = !h.keep_alive || response.close || atomic_load(&sim->stopping) ||
                           served + 1 == SIM_REQUESTS_PER_CONNECTION_MAX;
        bool sent = !response.drop && send_response(fd, &response, request.request_id, close_after);
        free(response.body);
        if (!sent || close_after)
            break;
        memmove(buf, buf + need, have - need); /* a pipelined next request may already be here */
        have -= need;
    }
    free(buf);
    close(fd);
}
