/* tk_codec.h — little-endian encoding for WAL payloads and snapshots.
 *
 * Why explicit encoding rather than writing structs: files outlive a build, so
 * their layout must not depend on padding or on the compiler; and everything read
 * back from disk is input from outside, so the reader is bounds-checked and
 * sticky-failing (after the first short read every get returns 0 and `failed`
 * stays set; the caller checks once at the end and refuses the data). */
#ifndef TK_CODEC_H
#define TK_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tk_assert.h"
#include "tk_status.h"

/* A bounded output buffer. Writes past the end set `failed` and are dropped. */
struct tk_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed;
};

static inline void tk_buf_init(struct tk_buf *buf, void *data, size_t cap)
{
    TK_ASSERT(data != NULL || cap == 0);
    buf->data = data;
    buf->len = 0;
    buf->cap = cap;
    buf->failed = false;
}

static inline void tk_put_bytes(struct tk_buf *buf, const void *src, size_t n)
{
    if (buf->failed || n > buf->cap - buf->len) {
        buf->failed = true;
        return;
    }
    if (n)
        memcpy(buf->data + buf->len, src, n);
    buf->len += n;
}

static inline void tk_put_u8(struct tk_buf *buf, uint8_t v)
{
    tk_put_bytes(buf, &v, 1);
}

static inline void tk_put_u16(struct tk_buf *buf, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    tk_put_bytes(buf, b, 2);
}

static inline void tk_put_u32(struct tk_buf *buf, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    tk_put_bytes(buf, b, 4);
}

static inline void tk_put_u64(struct tk_buf *buf, uint64_t v)
{
    tk_put_u32(buf, (uint32_t)v);
    tk_put_u32(buf, (uint32_t)(v >> 32));
}

static inline void tk_put_i64(struct tk_buf *buf, int64_t v)
{
    tk_put_u64(buf, (uint64_t)v);
}

/* A bounds-checked reader over bytes that came from outside. */
struct tk_reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
    bool failed;
};

static inline void tk_reader_init(struct tk_reader *r, const void *data, size_t len)
{
    TK_ASSERT(data != NULL || len == 0);
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->failed = false;
}

static inline const uint8_t *tk_get_bytes(struct tk_reader *r, size_t n)
{
    if (r->failed || n > r->len - r->pos) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *p = r->data + r->pos;
    r->pos += n;
    return p;
}

static inline uint8_t tk_get_u8(struct tk_reader *r)
{
    const uint8_t *p = tk_get_bytes(r, 1);
    return p ? p[0] : 0;
}

static inline uint16_t tk_get_u16(struct tk_reader *r)
{
    const uint8_t *p = tk_get_bytes(r, 2);
    return p ? (uint16_t)(p[0] | (p[1] << 8)) : 0;
}

static inline uint32_t tk_get_u32(struct tk_reader *r)
{
    const uint8_t *p = tk_get_bytes(r, 4);
    return p ? (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24) : 0;
}

static inline uint64_t tk_get_u64(struct tk_reader *r)
{
    uint64_t lo = tk_get_u32(r);
    uint64_t hi = tk_get_u32(r);
    return lo | (hi << 32);
}

static inline int64_t tk_get_i64(struct tk_reader *r)
{
    return (int64_t)tk_get_u64(r);
}

/* True when every byte was consumed and nothing was short. */
static inline bool tk_reader_done(const struct tk_reader *r)
{
    return !r->failed && r->pos == r->len;
}

/* CRC32C (Castagnoli), the checksum of WAL records and snapshots, via ISA-L. */
uint32_t tk_crc32c(uint32_t crc, const void *data, size_t len);

/* A 64-bit mix for hash tables keyed by ids (not for untrusted strings). */
static inline uint64_t tk_hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

#endif
