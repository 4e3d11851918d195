/* rush_ws.c — WebSocket framing for the load generator's waiting-room clients
 * (RFC 6455, the subset a client needs).
 *
 * Server frames arrive unmasked; a masked one, a reserved bit, an unknown
 * opcode, a control frame longer than 125 bytes or a fragmented control frame is
 * a protocol error (the caller closes the socket and counts it). Client frames
 * are always masked. Payloads are bounded by the caller (the edge's messages are
 * small: positions, admissions, seat deltas of at most a few tens of KB). */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

#include "rush.h"
#include "tk_assert.h"

enum ws_parse ws_frame_parse(const uint8_t *buf, uint64_t len, uint64_t payload_max, struct ws_frame *frame)
{
    TK_ASSERT(frame != NULL);
    if (len < 2)
        return WS_PARSE_MORE;
    uint8_t b0 = buf[0], b1 = buf[1];
    frame->fin = (b0 & 0x80u) != 0;
    frame->opcode = b0 & 0x0fu;
    if ((b0 & 0x70u) != 0 || (b1 & 0x80u) != 0)
        return WS_PARSE_ERROR; /* reserved bits, or a masked server frame */
    bool control = (frame->opcode & 0x8u) != 0;
    if (frame->opcode != WS_OP_CONTINUATION && frame->opcode != WS_OP_TEXT && frame->opcode != WS_OP_BINARY &&
        frame->opcode != WS_OP_CLOSE && frame->opcode != WS_OP_PING && frame->opcode != WS_OP_PONG)
        return WS_PARSE_ERROR;
    uint64_t payload = b1 & 0x7fu;
    uint64_t header = 2;
    if (payload == 126) {
        if (len < 4)
            return WS_PARSE_MORE;
        payload = ((uint64_t)buf[2] << 8) | buf[3];
        header = 4;
    } else if (payload == 127) {
        if (len < 10)
            return WS_PARSE_MORE;
        payload = 0;
        for (int i = 0; i < 8; i++)
            payload = (payload << 8) | buf[2 + i];
        header = 10;
    }
    if (control && (payload > 125 || !frame->fin))
        return WS_PARSE_ERROR;
    if (payload > payload_max)
        return WS_PARSE_ERROR;
    if (len < header + payload)
        return WS_PARSE_MORE;
    frame->payload = buf + header;
    frame->payload_len = payload;
    frame->frame_len = header + payload;
    return WS_PARSE_FRAME;
}

size_t ws_frame_build(uint8_t *out, size_t cap, uint8_t opcode, const uint8_t *payload, size_t len, uint32_t mask)
{
    TK_ASSERT(out != NULL && (payload != NULL || len == 0));
    size_t header = len < 126 ? 6 : len < 65536 ? 8 : 14;
    if (header + len > cap)
        return 0;
    out[0] = (uint8_t)(0x80u | (opcode & 0x0fu));
    size_t at = 2;
    if (len < 126) {
        out[1] = (uint8_t)(0x80u | len);
    } else if (len < 65536) {
        out[1] = 0x80u | 126u;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        at = 4;
    } else {
        out[1] = 0x80u | 127u;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        at = 10;
    }
    uint8_t key[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8), (uint8_t)mask};
    memcpy(out + at, key, 4);
    at += 4;
    for (size_t i = 0; i < len; i++)
        out[at + i] = payload[i] ^ key[i & 3u];
    TK_ASSERT(at == header);
    return header + len;
}

void ws_handshake_key(uint64_t seed, char key[25])
{
    uint8_t raw[16];
    struct bench_rng rng = {.state = seed};
    uint64_t a = bench_rng_next(&rng), b = bench_rng_next(&rng);
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    int n = EVP_EncodeBlock((unsigned char *)key, raw, 16);
    TK_ASSERT(n == 24);
}

void ws_expected_accept(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char text[128];
    size_t klen = strlen(key);
    TK_ASSERT(klen + sizeof(guid) <= sizeof(text));
    memcpy(text, key, klen);
    memcpy(text + klen, guid, sizeof(guid) - 1);
    uint8_t digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, klen + sizeof(guid) - 1, digest);
    int n = EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
    TK_ASSERT(n == 28);
}
