/* wal_record.h — the on-disk layout of WAL records and segment names.
 *
 * What it owns: the byte layout described at the top of wal.h (constants, the
 * header encoder/decoder, the checksum, the validator used by recovery and by
 * tests) and the segment file naming. Nothing here does I/O.
 *
 * Why a header of inline helpers: wal.c encodes records straight into its ring
 * and validates them straight out of its read buffer, and the tests build valid
 * and invalid records byte for byte with the same helpers, so the layout is
 * written down exactly once.
 *
 * Layout (little-endian, every record 8-byte aligned and a multiple of 8 long):
 *   0  u32 length       whole record: header + payload + zero padding
 *   4  u32 crc32c       over bytes [0,4) then [8,length)
 *   8  u64 lsn          the record's own position in the log stream
 *   16 u16 type         WAL_RECORD_COMMIT, or >= WAL_RECORD_TYPE_USER_MIN
 *   18 u16 reserved     0
 *   20 u32 payload_len
 *   24 payload, then zeros up to length
 * The first 8 bytes (length | crc << 32) form one aligned word: the WAL ring
 * publishes a record by storing that word last, atomically.
 *
 * Trade-off: the lsn inside every record costs 8 bytes a record, and buys
 * detection of stale or misplaced data (a record is only valid at its own
 * position), which is what lets recovery scan forward for later COMMITs safely. */
#ifndef WAL_RECORD_H
#define WAL_RECORD_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tk_assert.h"
#include "tk_codec.h"
#include "tk_limits.h"
#include "wal.h"

#define WAL_RECORD_HEADER_BYTES 24u
#define WAL_RECORD_ALIGN_BYTES 8u
#define WAL_RECORD_PAYLOAD_BYTES_MAX TK_WAL_RECORD_BYTES_MAX
/* The largest whole record: header + largest payload, rounded up to 8. */
#define WAL_RECORD_BYTES_MAX ((WAL_RECORD_HEADER_BYTES + WAL_RECORD_PAYLOAD_BYTES_MAX + 7u) & ~7u)
#define WAL_COMMIT_PAYLOAD_BYTES 8u /* u64 first LSN of the batch */
#define WAL_COMMIT_BYTES (WAL_RECORD_HEADER_BYTES + WAL_COMMIT_PAYLOAD_BYTES)

/* Segment files: wal-<16 lowercase hex digits of the first LSN>.log */
#define WAL_SEGMENT_PREFIX "wal-"
#define WAL_SEGMENT_SUFFIX ".log"
#define WAL_SEGMENT_NAME_BYTES 25u /* 4 + 16 + 4 + NUL */
#define WAL_SEGMENTS_MAX 16384u    /* segment files one log may hold (x 256 MiB = 4 TiB) */
#define WAL_SEGMENT_BYTES_MIN 4096u

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the ring publishes the LE header word natively");
_Static_assert(WAL_RECORD_BYTES_MAX % WAL_RECORD_ALIGN_BYTES == 0, "records are 8-byte multiples");
_Static_assert(WAL_COMMIT_BYTES % WAL_RECORD_ALIGN_BYTES == 0, "commit records are 8-byte multiples");
_Static_assert(WAL_RECORD_BYTES_MAX <= UINT32_MAX, "length fits its u32 field");
_Static_assert(TK_WAL_RING_BYTES_MIN >= 4 * WAL_RECORD_BYTES_MAX, "the ring holds several largest records");

struct wal_record_header {
    uint32_t length;
    uint32_t crc;
    uint64_t lsn;
    uint16_t type;
    uint16_t reserved;
    uint32_t payload_len;
};

static inline uint32_t wal_record_size(uint32_t payload_len)
{
    TK_ASSERT(payload_len <= WAL_RECORD_PAYLOAD_BYTES_MAX);
    uint32_t size = (WAL_RECORD_HEADER_BYTES + payload_len + 7u) & ~7u;
    TK_ASSERT(size >= WAL_RECORD_HEADER_BYTES && size % WAL_RECORD_ALIGN_BYTES == 0);
    return size;
}

static inline void wal_record_header_encode(uint8_t out[WAL_RECORD_HEADER_BYTES], const struct wal_record_header *h)
{
    struct tk_buf buf;
    tk_buf_init(&buf, out, WAL_RECORD_HEADER_BYTES);
    tk_put_u32(&buf, h->length);
    tk_put_u32(&buf, h->crc);
    tk_put_u64(&buf, h->lsn);
    tk_put_u16(&buf, h->type);
    tk_put_u16(&buf, h->reserved);
    tk_put_u32(&buf, h->payload_len);
    TK_ASSERT(!buf.failed && buf.len == WAL_RECORD_HEADER_BYTES);
}

static inline struct wal_record_header wal_record_header_decode(const uint8_t in[WAL_RECORD_HEADER_BYTES])
{
    struct tk_reader r;
    struct wal_record_header h;
    tk_reader_init(&r, in, WAL_RECORD_HEADER_BYTES);
    h.length = tk_get_u32(&r);
    h.crc = tk_get_u32(&r);
    h.lsn = tk_get_u64(&r);
    h.type = tk_get_u16(&r);
    h.reserved = tk_get_u16(&r);
    h.payload_len = tk_get_u32(&r);
    TK_ASSERT(tk_reader_done(&r));
    return h;
}

/* The checksum of a contiguous record of `length` bytes (its crc field ignored). */
static inline uint32_t wal_record_crc(const uint8_t *record, uint32_t length)
{
    TK_ASSERT(record != NULL);
    TK_ASSERT(length >= WAL_RECORD_HEADER_BYTES);
    uint32_t crc = tk_crc32c(0, record, 4);
    return tk_crc32c(crc, record + 8, length - 8u);
}

/* Encodes a whole record (header, payload, padding, crc) into out; returns its
 * size, or 0 if it does not fit in cap. Used for COMMIT records and by tests. */
static inline uint32_t wal_record_encode(uint8_t *out, size_t cap, uint64_t lsn, uint16_t type, const void *payload,
                                         uint32_t payload_len)
{
    TK_ASSERT(out != NULL && (payload != NULL || payload_len == 0));
    TK_ASSERT(lsn % WAL_RECORD_ALIGN_BYTES == 0);
    uint32_t size = wal_record_size(payload_len);
    if (size > cap)
        return 0;
    struct wal_record_header h = {size, 0, lsn, type, 0, payload_len};
    wal_record_header_encode(out, &h);
    if (payload_len)
        memcpy(out + WAL_RECORD_HEADER_BYTES, payload, payload_len);
    memset(out + WAL_RECORD_HEADER_BYTES + payload_len, 0, size - WAL_RECORD_HEADER_BYTES - payload_len);
    h.crc = wal_record_crc(out, size);
    wal_record_header_encode(out, &h);
    return size;
}

/* Validates the record that should sit at position lsn, given `avail` readable
 * bytes there (input from disk: never asserted on, refused with a reason).
 * On success fills *view (payload points into bytes) and returns NULL; else
 * returns a short reason. A COMMIT's batch start is stored in *commit_batch_start. */
static inline const char *wal_record_check(const uint8_t *bytes, size_t avail, uint64_t lsn,
                                           struct wal_record_view *view, uint64_t *commit_batch_start)
{
    TK_ASSERT(bytes != NULL || avail == 0);
    TK_ASSERT(view != NULL && commit_batch_start != NULL);
    if (avail < WAL_RECORD_HEADER_BYTES)
        return "truncated record header";
    struct wal_record_header h = wal_record_header_decode(bytes);
    if (h.length == 0)
        return "zero length";
    if (h.length < WAL_RECORD_HEADER_BYTES || h.length % WAL_RECORD_ALIGN_BYTES || h.length > WAL_RECORD_BYTES_MAX)
        return "bad record length";
    if (h.length > avail)
        return "record runs past the end of the file";
    if (h.lsn != lsn)
        return "lsn does not match the record's position";
    if (h.type == 0 || h.reserved != 0 || (h.type != WAL_RECORD_COMMIT && h.type < WAL_RECORD_TYPE_USER_MIN))
        return "bad record type";
    if (h.payload_len > WAL_RECORD_PAYLOAD_BYTES_MAX || wal_record_size(h.payload_len) != h.length)
        return "payload length does not match record length";
    if (wal_record_crc(bytes, h.length) != h.crc)
        return "crc mismatch";
    for (uint32_t i = WAL_RECORD_HEADER_BYTES + h.payload_len; i < h.length; i++)
        if (bytes[i] != 0)
            return "nonzero padding";
    *commit_batch_start = 0;
    if (h.type == WAL_RECORD_COMMIT) {
        if (h.payload_len != WAL_COMMIT_PAYLOAD_BYTES)
            return "bad commit record size";
        struct tk_reader r;
        tk_reader_init(&r, bytes + WAL_RECORD_HEADER_BYTES, WAL_COMMIT_PAYLOAD_BYTES);
        *commit_batch_start = tk_get_u64(&r);
        if (*commit_batch_start > lsn || *commit_batch_start % WAL_RECORD_ALIGN_BYTES)
            return "bad commit batch start";
    }
    *view = (struct wal_record_view){h.lsn, h.type, h.payload_len, bytes + WAL_RECORD_HEADER_BYTES};
    return NULL;
}

static inline void wal_segment_name(char out[WAL_SEGMENT_NAME_BYTES], uint64_t first_lsn)
{
    int n = snprintf(out, WAL_SEGMENT_NAME_BYTES, WAL_SEGMENT_PREFIX "%016" PRIx64 WAL_SEGMENT_SUFFIX, first_lsn);
    TK_ASSERT(n == (int)WAL_SEGMENT_NAME_BYTES - 1);
}

/* Parses a segment file name; false for anything that is not exactly one. */
static inline bool wal_segment_parse(const char *name, uint64_t *first_lsn)
{
    TK_ASSERT(name != NULL && first_lsn != NULL);
    if (strlen(name) != WAL_SEGMENT_NAME_BYTES - 1 || strncmp(name, WAL_SEGMENT_PREFIX, 4) != 0 ||
        strcmp(name + 20, WAL_SEGMENT_SUFFIX) != 0)
        return false;
    uint64_t value = 0;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        uint64_t digit;
        if (c >= '0' && c <= '9')
            digit = (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (uint64_t)(c - 'a' + 10);
        else
            return false;
        value = (value << 4) | digit;
    }
    *first_lsn = value;
    return true;
}

#endif
