/* wal.h — the write-ahead log: group commit through one writer thread.
 *
 * Why: an acknowledged hold or sale must survive kill -9 and power loss
 * (invariant 2), yet a server thread must never wait on the disk. So appenders
 * reserve space in an in-memory ring with one fetch_add, copy their record in and
 * mark it ready (lock-free); one writer thread turns every ready span into one
 * write plus one fdatasync (group commit) through a wal_io backend (io_uring, or
 * plain pwritev+fdatasync where io_uring is refused), and then runs the waiters
 * whose LSN that sync covered. A caller learns "durable" through a callback.
 *
 * LSNs are byte offsets in the logical log stream, so "durable up to L" covers
 * every record that ends at or before L. The stream is stored in segment files
 * named wal-<16 hex digits of their first LSN>.log in the data directory.
 *
 * On-disk record (little-endian, 8-byte aligned, see wal_record.h):
 *   u32 length (whole record incl. header and padding) | u32 crc32c |
 *   u64 lsn | u16 type | u16 reserved(0) | u32 payload_len | payload | zero pad
 * The crc covers the length field and every byte after the crc field.
 * Each write batch ends with a COMMIT record written by the writer thread,
 * carrying the batch's first LSN. Recovery uses it to tell a torn tail (the last,
 * unsynced batch; cut back) from corruption inside synced data (refused): a bad
 * record followed by a valid COMMIT of a *later* batch means the bad bytes had
 * been synced. */
#ifndef WAL_H
#define WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_metrics.h"
#include "tk_status.h"

struct wal;
struct wal_io; /* wal_io.h */

/* Record types. 1..15 belong to the WAL itself; the engine uses 16 and up. */
enum {
    WAL_RECORD_COMMIT = 1,
    WAL_RECORD_TYPE_USER_MIN = 16,
};

struct wal_config {
    const char *dir;         /* data directory; created if missing */
    struct wal_io *io;       /* NULL: io_uring if the kernel allows it, else pwritev (logged at open) */
    uint32_t ring_bytes;     /* 0: TK_WAL_RING_BYTES_DEFAULT */
    uint64_t segment_bytes;  /* 0: TK_WAL_SEGMENT_BYTES_DEFAULT */
    /* Optional log sink for start-up facts ("io_uring refused, using pwritev") and
     * failures. NULL: JSON lines on stderr. */
    void (*log)(void *log_ctx, const char *level, const char *message);
    void *log_ctx;
};

struct wal_record_view {
    uint64_t lsn;
    uint16_t type;
    uint32_t payload_len;
    const void *payload;
};

/* Called in LSN order for every valid engine record at or after from_lsn.
 * A non-OK return stops recovery and wal_open returns it. */
typedef enum tk_status (*wal_replay_fn)(void *ctx, const struct wal_record_view *record);

/* Called once, on the writer thread, when everything up to the waited LSN is
 * durable (status TK_OK), or when the log failed or closed first (TK_ERR_IO /
 * TK_ERR_UNAVAILABLE). Must not block. */
typedef void (*wal_done_fn)(void *ctx, enum tk_status status);

/* Opens (or creates) the log in config->dir, replays every valid record with
 * lsn >= from_lsn through replay (may be NULL), cuts a torn tail back to the last
 * valid record, and starts the writer thread. Corruption before the tail fails
 * with TK_ERR_CORRUPT and a message naming the file and offset in err. */
enum tk_status wal_open(struct wal **out, const struct wal_config *config, uint64_t from_lsn, wal_replay_fn replay,
                        void *replay_ctx, char *err, size_t err_len);

/* Appends one record; thread safe, lock-free unless the ring is full (then it
 * waits for the writer: back-pressure). On success *end_lsn is the LSN just past
 * the record: wait for durable >= *end_lsn. Fails with TK_ERR_IO once the log has
 * failed, TK_ERR_INVALID for an oversize payload. */
enum tk_status wal_append(struct wal *wal, uint16_t type, const void *payload, uint32_t payload_len,
                          uint64_t *end_lsn);

/* Same, the payload given in two parts (a fixed header and a variable body). */
enum tk_status wal_append2(struct wal *wal, uint16_t type, const void *part1, uint32_t len1, const void *part2,
                           uint32_t len2, uint64_t *end_lsn);

/* true: lsn is durable already, fn will not be called. false: fn(ctx, status) will
 * be called exactly once from the writer thread. */
bool wal_when_durable(struct wal *wal, uint64_t lsn, wal_done_fn fn, void *ctx);

/* Blocks the calling thread until lsn is durable or the log failed. For tools,
 * tests and the snapshotter, never for server threads. */
enum tk_status wal_wait_durable(struct wal *wal, uint64_t lsn);

uint64_t wal_durable_lsn(const struct wal *wal);
/* Everything reserved so far ends at or before this LSN (a snapshot's start mark). */
uint64_t wal_reserved_lsn(const struct wal *wal);
/* TK_OK while healthy; the first I/O error once failed (every later append fails). */
enum tk_status wal_health(const struct wal *wal);
const char *wal_backend_name(const struct wal *wal);

/* Deletes whole segment files that end at or before lsn (after a snapshot at lsn
 * is durable). Never deletes the segment being written. */
enum tk_status wal_truncate_before(struct wal *wal, uint64_t lsn);

/* Writes everything appended so far, runs or fails every waiter, stops the writer
 * thread and frees the log. */
void wal_close(struct wal *wal);

struct wal_stats {
    uint64_t records;         /* engine records appended */
    uint64_t bytes;           /* bytes written to segment files */
    uint64_t batches;         /* write+sync rounds (group commits) */
    struct tk_histogram *fsync_ns; /* latency of each write+sync round, owned by the wal */
};
void wal_stats_get(const struct wal *wal, struct wal_stats *out);

#endif
