/* ws_conn.c — one waiting-room client: connect from its source address, send the
 * HTTP/1.1 upgrade, check the 101, then read server frames (RFC 6455).
 *
 * Only what a waiting client needs: text frames are looked at for
 * "type":"position" and counted per second of the measurement window; pings are
 * answered (the edge closes sockets that do not answer, --ws-pong-timeout-ms);
 * a close frame ends the connection and its code is counted. A frame larger than
 * the buffer (an admission or a seat delta, never a position) is skipped without
 * being stored, so the per-connection state stays at a fixed, small size. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tk_assert.h"
#include "ws_bench.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static uint32_t window_start_ms, window_end_ms; /* 0, 0: no window yet */

void ws_conn_set_window(uint32_t start_ms, uint32_t end_ms)
{
    TK_ASSERT(end_ms > start_ms);
    TK_ASSERT((end_ms - start_ms) / 1000u <= WS_WINDOW_S_MAX);
    window_start_ms = start_ms;
    window_end_ms = end_ms;
}

static const int status_codes[WS_STATUS_CODES] = {401, 403, 404, 409, 429, 503, 500, 0};

unsigned ws_status_slot(int status)
{
    for (unsigned i = 0; i + 1 < WS_STATUS_CODES; i++)
        if (status_codes[i] == status)
            return i;
    return WS_STATUS_CODES - 1;
}

const char *ws_status_name(unsigned slot)
{
    static const char *names[WS_STATUS_CODES] = {"401", "403", "404", "409", "429", "503", "500", "other"};
    TK_ASSERT(slot < WS_STATUS_CODES);
    return names[slot];
}

/* Source addresses spread the connections: one address has only ~28,000 ephemeral
 * ports towards one server port. IP_BIND_ADDRESS_NO_PORT leaves the port to
 * connect(), which may then reuse a port towards another destination. */
bool ws_conn_open(struct ws_conn *c, const struct ws_plan *plan, uint32_t now_ms, int epfd, uint32_t tag,
                  struct ws_result *r)
{
    TK_ASSERT(c != NULL && plan != NULL && plan->sources >= 1);
    memset(c, 0, offsetof(struct ws_conn, buf));
    c->fd = -1;
    c->started_ms = now_ms;
    r->attempted++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    struct sockaddr_in source = {.sin_family = AF_INET};
    source.sin_addr.s_addr = htonl(0x7f000002u + (tag % plan->sources));
    struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(plan->target.port)};
    dest.sin_addr.s_addr = plan->target.ip_be;
    if (bind(fd, (struct sockaddr *)&source, sizeof(source)) != 0)
        goto fail_fd;
    if (connect(fd, (struct sockaddr *)&dest, sizeof(dest)) != 0 && errno != EINPROGRESS)
        goto fail_fd;
    /* Edge-triggered: the upgrade is written once, then the socket only reads. */
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLET, .data.u32 = tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        goto fail_fd;
    c->fd = fd;
    c->state = WS_CONNECTING;
    return true;
fail_fd:
    close(fd);
fail:
    r->connect_failed++;
    c->state = WS_CLOSED;
    return false;
}

void ws_conn_close(struct ws_conn *c)
{
    TK_ASSERT(c != NULL);
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->state = WS_CLOSED;
}

static size_t build_request(const struct ws_conn *c, const struct ws_plan *plan, char *out, size_t cap)
{
    const char *token = plan->tokens[c->index % plan->token_count];
    int n = snprintf(out, cap,
                     "GET /api/v1/events/%s/queue/ws?access_token=%s HTTP/1.1\r\n"
                     "Host: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     plan->target.event_id, token, plan->target.host);
    TK_ASSERT(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* The request is made again from the token on each partial write, so it needs no buffer of its own. */
static bool send_upgrade(struct ws_conn *c, const struct ws_plan *plan, struct ws_result *r)
{
    char request[WS_REQUEST_BYTES_MAX];
    size_t len = build_request(c, plan, request, sizeof(request));
    TK_ASSERT(c->sent <= len);
    while (c->sent < len) {
        ssize_t n = send(c->fd, request + c->sent, len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0) {
            r->connect_failed++;
            return false;
        }
        c->sent = (uint16_t)(c->sent + (size_t)n);
    }
    return true;
}

static void count_position(struct ws_conn *c, uint32_t now_ms)
{
    if (window_end_ms != 0 && now_ms >= window_start_ms && now_ms < window_end_ms) {
        c->positions++;
        c->seconds_seen |= UINT64_C(1) << ((now_ms - window_start_ms) / 1000u);
        if (c->last_position_ms != 0 && now_ms - c->last_position_ms > c->max_gap_ms)
            c->max_gap_ms = now_ms - c->last_position_ms;
    }
    c->last_position_ms = now_ms;
}

static bool send_pong(struct ws_conn *c, const uint8_t *payload, size_t len, struct ws_result *r)
{
    TK_ASSERT(len <= 125);
    uint8_t frame[6 + 125];
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    frame[0] = 0x80u | 0xAu;
    frame[1] = (uint8_t)(0x80u | len);
    memcpy(frame + 2, mask, 4);
    for (size_t i = 0; i < len; i++)
        frame[6 + i] = payload[i] ^ mask[i % 4];
    /* A pong is tiny and the socket's send buffer is empty: a short write means the peer is gone. */
    ssize_t n = send(c->fd, frame, 6 + len, MSG_NOSIGNAL);
    r->pings_answered += n == (ssize_t)(6 + len);
    return n == (ssize_t)(6 + len);
}

static void count_close(const uint8_t *payload, size_t len, struct ws_result *r)
{
    unsigned code = len >= 2 ? (unsigned)payload[0] << 8 | payload[1] : 0;
    r->closed_by_server++;
    r->closed_codes_1000 += code == 1000;
    r->closed_codes_1001 += code == 1001;
    r->closed_codes_1008 += code == 1008;
    r->closed_codes_other += code != 1000 && code != 1001 && code != 1008;
}

/* One complete frame at buf[0..frame_len). Returns false when the connection must end. */
static bool on_frame(struct ws_conn *c, unsigned opcode, const uint8_t *payload, size_t len, uint32_t now_ms,
                     struct ws_result *r)
{
    static const char position[] = "\"type\":\"position\"";
    switch (opcode) {
    case 0x1:
        if (memmem(payload, len, position, sizeof(position) - 1) != NULL)
            count_position(c, now_ms);
        else
            r->other_messages++;
        return true;
    case 0x9:
        return send_pong(c, payload, len, r);
    case 0x8:
        count_close(payload, len, r);
        return false;
    case 0x0:
    case 0x2:
    case 0xA:
        return true;
    default:
        r->protocol_errors++;
        return false;
    }
}

/* Frames in buf; a frame that cannot fit is counted and its payload skipped as it arrives. */
static bool parse_frames(struct ws_conn *c, uint32_t now_ms, struct ws_result *r)
{
    size_t off = 0;
    bool alive = true;
    while (alive && c->have - off >= 2) {
        const uint8_t *p = c->buf + off;
        size_t avail = c->have - off, header = 2;
        uint64_t payload = p[1] & 0x7fu;
        if ((p[1] & 0x80u) != 0 || (p[0] & 0x70u) != 0) {
            r->protocol_errors++; /* servers never mask, and no extension was negotiated */
            return false;
        }
        if (payload == 126) {
            header = 4;
            if (avail < header)
                break;
            payload = (uint64_t)p[2] << 8 | p[3];
        } else if (payload == 127) {
            header = 10;
            if (avail < header)
                break;
            payload = 0;
            for (int i = 0; i < 8; i++)
                payload = payload << 8 | p[2 + i];
        }
        if (payload > WS_BUFFER_BYTES - header) {
            if ((p[0] & 0x8u) != 0 || payload > UINT32_MAX) {
                r->protocol_errors++;
                return false;
            }
            r->other_messages++;
            size_t here = avail - header < payload ? avail - header : (size_t)payload;
            c->skip = (uint32_t)(payload - here);
            off += header + here;
            continue;
        }
        if (avail < header + payload)
            break;
        alive = on_frame(c, p[0] & 0x0fu, p + header, (size_t)payload, now_ms, r);
        off += header + (size_t)payload;
    }
    TK_ASSERT(off <= c->have);
    memmove(c->buf, c->buf + off, c->have - off);
    c->have = (uint16_t)(c->have - off);
    return alive;
}

/* The 101 head; anything after it is already frames. */
static bool on_head(struct ws_conn *c, uint32_t now_ms, struct ws_result *r)
{
    const uint8_t *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->have < sizeof(c->buf))
            return true;
        r->protocol_errors++; /* a head this long is not the edge's 101 */
        return false;
    }
    int status = 0;
    if (sscanf((const char *)c->buf, "HTTP/1.1 %3d", &status) != 1 || status != 101) {
        r->refused[ws_status_slot(status)]++;
        return false;
    }
    r->opened++;
    r->open_ms_sum += now_ms - c->started_ms;
    c->state = WS_OPEN;
    size_t head = (size_t)(end + 4 - c->buf);
    memmove(c->buf, c->buf + head, c->have - head);
    c->have = (uint16_t)(c->have - head);
    return parse_frames(c, now_ms, r);
}

static bool on_readable(struct ws_conn *c, uint32_t now_ms, struct ws_result *r)
{
    for (;;) {
        TK_ASSERT(c->have < sizeof(c->buf)); /* a full buffer was parsed or refused */
        ssize_t n = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return true;
        if (n <= 0) {
            if (c->state == WS_OPEN) {
                r->closed_by_server++; /* dropped without a close frame */
                r->closed_codes_other++;
            } else {
                r->connect_failed++;
            }
            return false;
        }
        c->have = (uint16_t)(c->have + (size_t)n);
        if (c->skip > 0) {
            size_t drop = c->skip < c->have ? c->skip : c->have;
            memmove(c->buf, c->buf + drop, c->have - drop);
            c->have = (uint16_t)(c->have - drop);
            c->skip -= (uint32_t)drop;
        }
        bool alive = c->state == WS_OPEN ? parse_frames(c, now_ms, r) : on_head(c, now_ms, r);
        if (!alive)
            return false;
    }
}

static bool on_writable(struct ws_conn *c, const struct ws_plan *plan, struct ws_result *r)
{
    if (c->state == WS_CONNECTING) {
        int error = 0;
        socklen_t len = sizeof(error);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
            r->connect_failed++;
            return false;
        }
        c->state = WS_HANDSHAKE;
    }
    return send_upgrade(c, plan, r);
}

bool ws_conn_ready(struct ws_conn *c, const struct ws_plan *plan, uint32_t events, uint32_t now_ms, struct ws_result *r)
{
    TK_ASSERT(c != NULL && c->fd >= 0);
    TK_ASSERT(c->state == WS_CONNECTING || c->state == WS_HANDSHAKE || c->state == WS_OPEN);
    if (c->state != WS_OPEN && (events & EPOLLOUT) != 0 && !on_writable(c, plan, r))
        goto done;
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && c->state != WS_CONNECTING && !on_readable(c, now_ms, r))
        goto done;
    if (c->state == WS_CONNECTING && (events & (EPOLLHUP | EPOLLERR)) != 0) {
        r->connect_failed++;
        goto done;
    }
    return true;
done:
    ws_conn_close(c);
    return false;
}
