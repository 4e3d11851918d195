/* fuzz_edge_ws.c — libFuzzer target: what a WebSocket client can send the edge.
 *
 * The edge has no parser of client messages of its own: the waiting room is
 * server push, and edge_ws.c's on_ws_message ignores whatever a client sends
 * (it only notes that the peer is alive). Everything a client controls is the
 * framing, which h2o hands to wslay: frame headers, masking, lengths (7/16/64
 * bits), fragmentation, control frames inside fragmented messages, UTF-8 of
 * text and close reasons, close codes. So this target fuzzes wslay as the edge
 * runs it: a server context set up the way h2o_upgrade_to_websocket sets it up,
 * with the edge's receive bound (EDGE_WS_RECV_BYTES_MAX), fed the fuzzer's bytes
 * in chunks of fuzzer-chosen sizes (as TCP may cut them), while the server side
 * keeps queueing what the edge queues (position messages, pings, a close).
 * Checked: nothing crashes or reads out of bounds; no message longer than the
 * bound ever reaches the edge's callback, whatever the fragmentation; no data
 * message reaches it after the client's close; what the server writes is
 * bounded by what it queued plus its control frames.
 *
 * Input: byte 0 seeds the chunking; the rest is the client's byte stream. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wslay/wslay.h>

#include "edge_limits.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_edge_ws: %s:%d: %s\n", __FILE__, __LINE__, #cond);                                   \
            __builtin_trap();                                                                                          \
        }                                                                                                              \
    } while (0)

struct peer {
    const uint8_t *in;
    size_t in_len, in_at;
    uint32_t chunk_seed;
    size_t out_bytes;    /* what the server wrote */
    size_t queued_bytes; /* what the edge asked it to send */
    bool close_received;
    uint32_t messages;
};

/* Like h2o's recv_callback on a socket buffer: whatever arrived, in TCP-like cuts. */
static ssize_t recv_callback(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user_data)
{
    (void)flags;
    struct peer *peer = user_data;
    if (peer->in_at == peer->in_len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    peer->chunk_seed = peer->chunk_seed * 1103515245u + 12345u;
    size_t chunk = 1 + (peer->chunk_seed >> 16) % 700;
    size_t left = peer->in_len - peer->in_at;
    size_t n = chunk < left ? chunk : left;
    n = n < len ? n : len;
    memcpy(buf, peer->in + peer->in_at, n);
    peer->in_at += n;
    return (ssize_t)n;
}

static ssize_t send_callback(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user_data)
{
    (void)ctx;
    (void)data;
    (void)flags;
    struct peer *peer = user_data;
    peer->out_bytes += len;
    return (ssize_t)len;
}

/* The edge's on_ws_message gets every complete message (h2o's on_msg_callback). */
static void on_msg_recv_callback(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                                 void *user_data)
{
    (void)ctx;
    struct peer *peer = user_data;
    CHECK(arg->msg_length <= EDGE_WS_RECV_BYTES_MAX);
    CHECK(arg->msg_length == 0 || arg->msg != NULL);
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
        CHECK(!peer->close_received);
        break;
    case WSLAY_CONNECTION_CLOSE:
        peer->close_received = true;
        break;
    case WSLAY_PING:
    case WSLAY_PONG:
        CHECK(arg->msg_length <= 125); /* control frames are short (RFC 6455 5.5) */
        break;
    default:
        CHECK(!"an opcode the edge cannot be given");
    }
    peer->messages++;
}

static void queue_text(wslay_event_context_ptr ctx, struct peer *peer, const char *text)
{
    struct wslay_event_msg msg = {.opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)text, .msg_length = strlen(text)};
    if (wslay_event_queue_msg(ctx, &msg) == 0)
        peer->queued_bytes += msg.msg_length;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 18))
        return 0;
    struct peer peer = {.in = data + 1, .in_len = size - 1, .chunk_seed = data[0]};
    struct wslay_event_callbacks callbacks = {.recv_callback = recv_callback, .send_callback = send_callback,
                                              .on_msg_recv_callback = on_msg_recv_callback};
    wslay_event_context_ptr ctx;
    CHECK(wslay_event_context_server_init(&ctx, &callbacks, &peer) == 0);
    wslay_event_config_set_max_recv_msg_length(ctx, EDGE_WS_RECV_BYTES_MAX); /* as edge_ws.c on_joined */
    queue_text(ctx, &peer, "{\"type\":\"position\",\"position\":3,\"eta_s\":2}");
    struct wslay_event_msg ping = {.opcode = WSLAY_PING, .msg = (const uint8_t *)"tiketi", .msg_length = 6};
    wslay_event_queue_msg(ctx, &ping);
    /* The edge's loop: read what arrived, answer, until the peer is done or closed. */
    for (uint32_t round = 0; round < 100000 && peer.in_at < peer.in_len; round++) {
        if (!wslay_event_want_read(ctx))
            break; /* h2o closes the connection here */
        if (wslay_event_recv(ctx) != 0)
            break; /* a protocol error: h2o closes it too */
        if (round == 3)
            queue_text(ctx, &peer, "{\"type\":\"admitted\",\"admission_token\":\"t\",\"expires_at\":\"x\"}");
        if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0)
            break;
    }
    if (!peer.close_received && wslay_event_want_write(ctx))
        wslay_event_queue_close(ctx, 1000, (const uint8_t *)"bye", 3);
    for (uint32_t round = 0; round < 1000 && wslay_event_want_write(ctx); round++)
        if (wslay_event_send(ctx) != 0)
            break;
    /* Data frames carry at most 14 bytes of header; control frames (pongs for
     * every ping received, a close) at most 125 + 14 bytes each. */
    CHECK(peer.out_bytes <= peer.queued_bytes + 14u * 4u + (size_t)(peer.messages + 4u) * 139u);
    wslay_event_context_free(ctx);
    return 0;
}
