/* wal.c — the write-ahead log: lock-free ring, one writer thread, group commit,
 * segment files, recovery (see the contract at the top of wal.h).
 *
 * What it owns: the in-memory log ring, the reserve/consume/durable cursors, the
 * writer thread, the durability waiter queue, the segment files in the data
 * directory and their recovery.
 *
 * How it works:
 * - Appenders reserve [lsn, lsn + size) with one fetch_add on `reserve` (the LSN
 *   is the byte offset in the stream), wait only if that span is not yet free in
 *   the ring (back-pressure when the disk is behind), copy header + payload in
 *   (wrapping at the ring end), and publish by storing the first 8-byte word
 *   (length | crc << 32) last. The ring is zero wherever nothing is published, so
 *   a non-zero word at the scan position means "the next record is complete".
 * - The writer walks the published prefix, reserves a COMMIT through the same
 *   fetch_add (so it orders after every record reserved before it), waits for the
 *   records in between, and writes [batch start, commit end) with one write_sync
 *   (ring pieces + the commit from a private buffer). Then it zeroes the consumed
 *   ring bytes, advances `consumed` and `durable`, and runs the waiters.
 * - Waiters sit in a bounded MPSC queue (Vyukov cells with sequence numbers) and
 *   run on the writer thread: after each sync, every published waiter whose LSN
 *   it covers, wherever it sits in the queue (cells are freed in order, so one
 *   that ran early keeps its cell until those before it have run).
 * - Sleeping: the writer sleeps on a futex when idle; appenders wake it only if
 *   it is asleep (a flag read after publishing, Dekker-style with seq_cst), so the
 *   hot path makes no syscall per record.
 *
 * Why: a hold is acknowledged only when durable (invariant 2), and server threads
 * must never wait on the disk or on each other. One fdatasync per batch rather
 * than per record is what makes 500k durable appends/s possible on one disk.
 *
 * Trade-offs and decisions:
 * - The COMMIT is not copied into the ring: it needs no ring space, so the writer
 *   can always place it even when the ring is full of reservations. When records
 *   of the batch are blocked on ring space (the ring is over-reserved), the writer
 *   "spills": it writes the published prefix without a sync, frees that ring
 *   space, and keeps waiting; the batch's write_sync then covers the spill too.
 * - A write or fsync error fails the log for good: every pending and later waiter
 *   gets TK_ERR_IO and appends are refused. fsync is never retried after an error:
 *   Linux may have marked the dirty pages clean and dropped them when it reported
 *   EIO, so a second fsync can "succeed" without the data being on disk
 *   (fsyncgate); only a restart with recovery from the file can tell what landed.
 * - Recovery cuts a torn tail back to the last valid record, but refuses (as
 *   corruption) a bad record that is followed by a valid COMMIT of a later batch,
 *   or by a later segment file: a segment is rolled only after its last batch was
 *   synced, so both prove the bad bytes had been synced. A bit flip inside the
 *   last synced batch cannot be told from a torn write and is cut back.
 * - Segments roll at batch boundaries, so one batch may run past segment_bytes by
 *   up to a ring's worth. Segment creation is made durable with a directory fsync
 *   before any record is written into it.
 *
 * Notes for callers:
 * - wal_append can return TK_ERR_IO after it published the record (the log failed
 *   meanwhile); *end_lsn is set, the record was not acknowledged and may or may
 *   not be found after a restart, like any unacknowledged record.
 * - wal_when_durable / wal_wait_durable return as soon as `durable` covers their
 *   LSN, possibly before the writer has run the other waiters of that batch.
 * - Waiters whose LSN is durable run in registration order; one whose LSN is not
 *   (even one nobody appended: it gets TK_ERR_UNAVAILABLE at close) delays nobody,
 *   but holds its queue cell and those of every waiter after it until it runs.
 * - wal_open refuses (TK_ERR_CORRUPT, "records are missing") a from_lsn before the
 *   first segment or past the end of the stream: replaying would silently skip
 *   records the caller's snapshot relies on. */
#include "wal.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tk_clock.h"
#include "tk_limits.h"
#include "wal_io.h"
#include "wal_record.h"

#define WAL_CACHE_LINE_BYTES 64
#define WAL_RING_BYTES_MAX (1u << 30)
#define WAL_SPIN_MAX 64u                         /* pause-spins before sleeping */
#define WAL_WRITER_IDLE_SLEEP_NS 100000000L      /* safety net only: appenders wake the writer */
#define WAL_WRITER_WAIT_SLEEP_NS 1000000L        /* waiting for an in-flight record */
#define WAL_SPACE_SLEEP_NS 10000000L             /* appender waiting for ring space */
#define WAL_WAITER_FULL_SLEEP_NS 50000L          /* registering into a full waiter queue */
#define WAL_READ_BUFFER_BYTES (1u << 20)         /* recovery reads segments in chunks of this */
#define WAL_LOG_MESSAGE_BYTES 768u
#define WAL_CRC_RECHECK_EVERY 64u                /* the writer re-checks 1 record crc in this many */
#define WAL_WAITERS_MASK (TK_WAL_WAITERS_MAX - 1u)

_Static_assert((TK_WAL_WAITERS_MAX & (TK_WAL_WAITERS_MAX - 1u)) == 0, "waiter queue indexes by mask");
_Static_assert(WAL_READ_BUFFER_BYTES >= 4 * WAL_RECORD_BYTES_MAX, "a read chunk holds whole records");
_Static_assert(TK_WAL_RING_BYTES_DEFAULT >= TK_WAL_RING_BYTES_MIN, "default ring within bounds");
_Static_assert(TK_WAL_PATH_BYTES_MAX > WAL_SEGMENT_NAME_BYTES + 1, "segment paths fit");

/* A waiter queue cell. Its state is a position p: "free for the waiter at
 * position p", then "published for p" as p + 1. It is stored minus the cell's
 * index (the state of cell i at start is i), so zeroed memory is a valid empty
 * queue and calloc'd pages are only touched as the queue is used. */
struct wal_waiter {
    _Atomic uint64_t seq;
    uint64_t lsn;
    wal_done_fn fn;
    void *ctx;
};

struct wal {
    /* Set at open, read-only afterwards. */
    char dir[TK_WAL_PATH_BYTES_MAX];
    struct wal_io *io;
    bool owns_io;
    bool thread_started;
    uint8_t *ring;
    uint64_t ring_bytes; /* a power of two */
    uint64_t ring_mask;
    uint64_t segment_bytes;
    void (*log)(void *log_ctx, const char *level, const char *message);
    void *log_ctx;
    struct wal_waiter *waiters; /* TK_WAL_WAITERS_MAX cells */
    uint64_t *segments;         /* WAL_SEGMENTS_MAX scratch: recovery, then truncate_before */
    pthread_mutex_t truncate_lock;
    pthread_t thread;

    /* Appenders' cursors, each on its own cache line. */
    alignas(WAL_CACHE_LINE_BYTES) _Atomic uint64_t reserve; /* next LSN handed out */
    alignas(WAL_CACHE_LINE_BYTES) _Atomic uint64_t consumed; /* ring bytes before this LSN are free (zero) */
    _Atomic uint32_t space_seq;
    _Atomic uint32_t space_sleepers;
    alignas(WAL_CACHE_LINE_BYTES) _Atomic uint64_t durable;
    _Atomic int health; /* enum tk_status: TK_OK or the failure */
    _Atomic bool closing;
    _Atomic int writer_tid;
    _Atomic uint64_t current_segment_start;
    alignas(WAL_CACHE_LINE_BYTES) _Atomic uint32_t writer_sleeping;
    _Atomic uint32_t writer_wake_seq;
    alignas(WAL_CACHE_LINE_BYTES) _Atomic uint64_t waiter_tail;

    /* The writer thread's own state (set up by open before the thread starts). */
    alignas(WAL_CACHE_LINE_BYTES) uint64_t written; /* bytes before this LSN are in the segment file */
    uint64_t scan;                                  /* records before this LSN are published */
    uint64_t batch_records;
    uint64_t waiter_head;      /* oldest cell not yet freed */
    uint64_t waiter_scan_from; /* cells before it were looked at since `durable` last moved */
    int segment_handle;
    uint64_t segment_start;
    uint8_t commit[WAL_COMMIT_BYTES];

    /* Statistics: written by the writer, read by anyone. */
    alignas(WAL_CACHE_LINE_BYTES) _Atomic uint64_t stat_records;
    _Atomic uint64_t stat_bytes;
    _Atomic uint64_t stat_batches;
    struct tk_histogram fsync_ns;
};

/* ---- small helpers ---------------------------------------------------------- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected, long timeout_ns)
{
    struct timespec timeout = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, &timeout, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static void json_escape(const char *in, char *out, size_t out_len)
{
    TK_ASSERT(in != NULL && out != NULL);
    TK_ASSERT(out_len >= 8);
    size_t o = 0;
    for (size_t i = 0; in[i] != '\0' && o + 7 < out_len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, out_len - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

__attribute__((format(printf, 3, 4))) static void wal_log(const struct wal *wal, const char *level, const char *fmt,
                                                          ...)
{
    char message[WAL_LOG_MESSAGE_BYTES];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    if (wal->log != NULL) {
        wal->log(wal->log_ctx, level, message);
        return;
    }
    char escaped[2 * WAL_LOG_MESSAGE_BYTES];
    json_escape(message, escaped, sizeof(escaped));
    fprintf(stderr, "{\"level\":\"%s\",\"component\":\"wal\",\"msg\":\"%s\"}\n", level, escaped);
}

static void segment_path(const struct wal *wal, uint64_t first_lsn, char out[TK_WAL_PATH_BYTES_MAX])
{
    char name[WAL_SEGMENT_NAME_BYTES];
    wal_segment_name(name, first_lsn);
    int n = snprintf(out, TK_WAL_PATH_BYTES_MAX, "%s/%s", wal->dir, name);
    TK_ASSERT(n > 0 && n < (int)TK_WAL_PATH_BYTES_MAX); /* dir length checked at open */
}

/* ---- the ring --------------------------------------------------------------- */

static inline _Atomic uint64_t *ring_word(const struct wal *wal, uint64_t lsn)
{
    TK_ASSERT(lsn % WAL_RECORD_ALIGN_BYTES == 0);
    return (_Atomic uint64_t *)(void *)(wal->ring + (lsn & wal->ring_mask));
}

static void ring_write(struct wal *wal, uint64_t lsn, const void *src, uint32_t len)
{
    TK_ASSERT(len <= wal->ring_bytes);
    uint64_t offset = lsn & wal->ring_mask;
    uint64_t first = wal->ring_bytes - offset < len ? wal->ring_bytes - offset : len;
    if (first)
        memcpy(wal->ring + offset, src, first);
    if (len > first)
        memcpy(wal->ring, (const uint8_t *)src + first, len - first);
}

static void ring_read(const struct wal *wal, uint64_t lsn, void *dst, uint32_t len)
{
    TK_ASSERT(len <= wal->ring_bytes);
    uint64_t offset = lsn & wal->ring_mask;
    uint64_t first = wal->ring_bytes - offset < len ? wal->ring_bytes - offset : len;
    memcpy(dst, wal->ring + offset, first);
    if (len > first)
        memcpy((uint8_t *)dst + first, wal->ring, len - first);
}

/* The ring bytes of [from, to) as one or two iovecs; returns the count. */
static int ring_iovecs(const struct wal *wal, uint64_t from, uint64_t to, struct iovec *iov)
{
    TK_ASSERT(from <= to && to - from <= wal->ring_bytes);
    TK_ASSERT(from % WAL_RECORD_ALIGN_BYTES == 0 && to % WAL_RECORD_ALIGN_BYTES == 0);
    if (from == to)
        return 0;
    uint64_t offset = from & wal->ring_mask;
    uint64_t len = to - from;
    uint64_t first = wal->ring_bytes - offset < len ? wal->ring_bytes - offset : len;
    iov[0] = (struct iovec){wal->ring + offset, first};
    if (len == first)
        return 1;
    iov[1] = (struct iovec){wal->ring, len - first};
    return 2;
}

static void ring_zero(struct wal *wal, uint64_t from, uint64_t to)
{
    struct iovec pieces[2];
    int n = ring_iovecs(wal, from, to, pieces);
    for (int i = 0; i < n; i++)
        memset(pieces[i].iov_base, 0, pieces[i].iov_len);
}

/* CRC of the record at lsn in the ring: its first 4 bytes (the length) come from
 * length_bytes, bytes [8, length) from the ring. */
static uint32_t ring_record_crc(const struct wal *wal, uint64_t lsn, const uint8_t length_bytes[4], uint32_t length)
{
    TK_ASSERT(length >= WAL_RECORD_HEADER_BYTES && length <= WAL_RECORD_BYTES_MAX);
    uint32_t crc = tk_crc32c(0, length_bytes, 4);
    struct iovec pieces[2];
    int n = ring_iovecs(wal, lsn + 8, lsn + length, pieces);
    for (int i = 0; i < n; i++)
        crc = tk_crc32c(crc, pieces[i].iov_base, pieces[i].iov_len);
    return crc;
}

/* ---- appenders -------------------------------------------------------------- */

static void writer_wake(struct wal *wal)
{
    atomic_fetch_add(&wal->writer_wake_seq, 1);
    futex_wake_all(&wal->writer_wake_seq);
}

/* Waits until the ring span ending at `end` is free. Back-pressure: only when the
 * disk is behind. Returns TK_OK, or the failure if the log failed meanwhile. */
static enum tk_status append_wait_space(struct wal *wal, uint64_t lsn, uint32_t size)
{
    TK_ASSERT(lsn % WAL_RECORD_ALIGN_BYTES == 0 && size % WAL_RECORD_ALIGN_BYTES == 0);
    TK_ASSERT(size <= WAL_RECORD_BYTES_MAX && size <= wal->ring_bytes / 4); /* a record always fits */
    uint64_t end = lsn + size;
    for (uint32_t spin = 0; spin < WAL_SPIN_MAX; spin++) {
        if (end <= atomic_load_explicit(&wal->consumed, memory_order_acquire) + wal->ring_bytes)
            return TK_OK;
        cpu_relax();
    }
    atomic_fetch_add(&wal->space_sleepers, 1);
    enum tk_status status = TK_OK;
    /* Ends when the writer consumes up to end - ring_bytes, or fails (it then wakes us). */
    for (;;) {
        uint32_t seq = atomic_load(&wal->space_seq);
        if (end <= atomic_load(&wal->consumed) + wal->ring_bytes)
            break;
        status = (enum tk_status)atomic_load(&wal->health);
        if (status != TK_OK)
            break;
        futex_wait(&wal->space_seq, seq, WAL_SPACE_SLEEP_NS);
    }
    atomic_fetch_sub(&wal->space_sleepers, 1);
    return status;
}

enum tk_status wal_append2(struct wal *wal, uint16_t type, const void *part1, uint32_t len1, const void *part2,
                           uint32_t len2, uint64_t *end_lsn)
{
    TK_ASSERT(wal != NULL && end_lsn != NULL);
    TK_ASSERT((part1 != NULL || len1 == 0) && (part2 != NULL || len2 == 0));
    if (type < WAL_RECORD_TYPE_USER_MIN || len1 > WAL_RECORD_PAYLOAD_BYTES_MAX ||
        len2 > WAL_RECORD_PAYLOAD_BYTES_MAX - len1)
        return TK_ERR_INVALID;
    enum tk_status status = (enum tk_status)atomic_load_explicit(&wal->health, memory_order_relaxed);
    if (status != TK_OK)
        return status;
    uint32_t payload_len = len1 + len2;
    uint32_t size = wal_record_size(payload_len);
    uint64_t lsn = atomic_fetch_add_explicit(&wal->reserve, size, memory_order_relaxed);
    TK_ASSERT(lsn % WAL_RECORD_ALIGN_BYTES == 0);
    status = append_wait_space(wal, lsn, size);
    if (status != TK_OK)
        return status;

    uint8_t header[WAL_RECORD_HEADER_BYTES];
    struct wal_record_header h = {size, 0, lsn, type, 0, payload_len};
    wal_record_header_encode(header, &h);
    /* The padding is already zero: the writer zeroes every byte it consumes. The
     * crc is taken over the ring copy: two calls instead of one per part. */
    ring_write(wal, lsn + 8, header + 8, WAL_RECORD_HEADER_BYTES - 8);
    ring_write(wal, lsn + WAL_RECORD_HEADER_BYTES, part1, len1);
    ring_write(wal, lsn + WAL_RECORD_HEADER_BYTES + len1, part2, len2);
    uint32_t crc = ring_record_crc(wal, lsn, header, size);
    /* Publish (seq_cst: also orders before the writer_sleeping load below). */
    atomic_store(ring_word(wal, lsn), (uint64_t)size | ((uint64_t)crc << 32));
    if (atomic_load(&wal->writer_sleeping))
        writer_wake(wal);
    *end_lsn = lsn + size;
    return (enum tk_status)atomic_load_explicit(&wal->health, memory_order_relaxed);
}

enum tk_status wal_append(struct wal *wal, uint16_t type, const void *payload, uint32_t payload_len,
                          uint64_t *end_lsn)
{
    return wal_append2(wal, type, payload, payload_len, NULL, 0, end_lsn);
}

/* ---- durability waiters ----------------------------------------------------- */

static inline struct wal_waiter *waiter_cell(const struct wal *wal, uint64_t pos)
{
    return &wal->waiters[pos & WAL_WAITERS_MASK];
}

static inline uint64_t waiter_state(const struct wal_waiter *cell, uint64_t pos, memory_order order)
{
    return atomic_load_explicit(&((struct wal_waiter *)cell)->seq, order) + (pos & WAL_WAITERS_MASK);
}

static inline void waiter_set_state(struct wal_waiter *cell, uint64_t pos, uint64_t state, memory_order order)
{
    atomic_store_explicit(&cell->seq, state - (pos & WAL_WAITERS_MASK), order);
}

/* Waits for the queue cell of position pos to be free (the queue is full). */
static void waiter_wait_cell(struct wal *wal, struct wal_waiter *cell, uint64_t pos)
{
    TK_ASSERT(cell == waiter_cell(wal, pos));
    if (waiter_state(cell, pos, memory_order_acquire) == pos)
        return;
    /* A done callback must not block: registering into a full queue would. */
    TK_ASSERT(atomic_load(&wal->writer_tid) != gettid() && "waiter queue full inside a done callback");
    /* Ends when the writer runs the waiter TK_WAL_WAITERS_MAX places earlier. */
    for (uint32_t spin = 0;; spin++) {
        if (waiter_state(cell, pos, memory_order_acquire) == pos)
            return;
        if (spin < WAL_SPIN_MAX) {
            cpu_relax();
        } else {
            struct timespec pause = {0, WAL_WAITER_FULL_SLEEP_NS};
            nanosleep(&pause, NULL);
        }
    }
}

bool wal_when_durable(struct wal *wal, uint64_t lsn, wal_done_fn fn, void *ctx)
{
    TK_ASSERT(wal != NULL && fn != NULL);
    TK_ASSERT(wal->thread_started);
    if (lsn <= atomic_load_explicit(&wal->durable, memory_order_acquire))
        return true;
    /* seq_cst: the writer's seq_cst load of the tail (writer_has_work) must see this
     * position once it can see the publication below. */
    uint64_t pos = atomic_fetch_add_explicit(&wal->waiter_tail, 1, memory_order_seq_cst);
    struct wal_waiter *cell = waiter_cell(wal, pos);
    waiter_wait_cell(wal, cell, pos);
    cell->lsn = lsn;
    cell->fn = fn;
    cell->ctx = ctx;
    /* Publish (seq_cst: orders before the writer_sleeping load, see writer_sleep). */
    waiter_set_state(cell, pos, pos + 1, memory_order_seq_cst);
    if (atomic_load(&wal->writer_sleeping))
        writer_wake(wal);
    return false;
}

struct wal_sync_wait {
    _Atomic uint32_t done;
    enum tk_status status;
};

static void on_sync_wait_done(void *ctx, enum tk_status status)
{
    struct wal_sync_wait *wait = ctx;
    wait->status = status;
    atomic_store(&wait->done, 1);
    futex_wake_all(&wait->done);
}

enum tk_status wal_wait_durable(struct wal *wal, uint64_t lsn)
{
    TK_ASSERT(wal != NULL);
    TK_ASSERT(atomic_load(&wal->writer_tid) != gettid());
    struct wal_sync_wait wait = {0};
    if (wal_when_durable(wal, lsn, on_sync_wait_done, &wait))
        return TK_OK;
    /* Ends when the writer calls on_sync_wait_done: after a sync, a failure or close. */
    while (!atomic_load(&wait.done))
        futex_wait(&wait.done, 0, WAL_WRITER_IDLE_SLEEP_NS);
    return wait.status;
}

/* Where a scan of the waiter queue stops: the tail, or one whole ring past the
 * head (registrants beyond it are still waiting for a cell to be freed). */
static uint64_t waiter_scan_end(const struct wal *wal, uint64_t tail)
{
    TK_ASSERT(wal->waiter_head <= tail);
    return tail - wal->waiter_head > TK_WAL_WAITERS_MAX ? wal->waiter_head + TK_WAL_WAITERS_MAX : tail;
}

/* Frees the cells at the head that have run (fn NULL), in order: a cell is only
 * reused for position p + TK_WAL_WAITERS_MAX, so the free ones must be a prefix. */
static void writer_free_waiters(struct wal *wal, uint64_t tail)
{
    TK_ASSERT(wal->waiter_head <= tail);
    while (wal->waiter_head < tail) { /* bounded: tail - head <= TK_WAL_WAITERS_MAX cells are in use */
        uint64_t head = wal->waiter_head;
        struct wal_waiter *cell = waiter_cell(wal, head);
        if (waiter_state(cell, head, memory_order_acquire) != head + 1 || cell->fn != NULL)
            return;
        waiter_set_state(cell, head, head + TK_WAL_WAITERS_MAX, memory_order_release);
        wal->waiter_head++;
    }
}

/* Runs published waiters. drain false: every one whose LSN is durable, wherever it
 * sits in the queue (two threads may register out of LSN order; stopping at the
 * first uncovered one made the covered ones behind it wait one more group
 * commit). drain true: all of them; durable ones get TK_OK, the rest `status`.
 * A waiter that ran keeps its cell (fn NULL) until the cells before it are free. */
static void writer_run_waiters(struct wal *wal, enum tk_status status, bool drain)
{
    TK_ASSERT(drain || status == TK_OK);
    uint64_t durable = atomic_load_explicit(&wal->durable, memory_order_relaxed);
    TK_ASSERT(durable <= wal->written);
    uint64_t tail = atomic_load_explicit(&wal->waiter_tail, memory_order_seq_cst);
    uint64_t end = waiter_scan_end(wal, tail);
    uint64_t first_unpublished = end;
    for (uint64_t pos = wal->waiter_head; pos < end; pos++) {
        struct wal_waiter *cell = waiter_cell(wal, pos);
        if (waiter_state(cell, pos, memory_order_acquire) != pos + 1) {
            if (pos < first_unpublished)
                first_unpublished = pos; /* its registrant is still writing it */
            continue;
        }
        bool covered = cell->lsn <= durable;
        if (cell->fn == NULL || (!covered && !drain))
            continue;
        wal_done_fn fn = cell->fn;
        void *ctx = cell->ctx;
        cell->fn = NULL;
        /* Free the head cell before the call, so a callback may register a new waiter. */
        writer_free_waiters(wal, end);
        fn(ctx, covered ? TK_OK : status);
    }
    writer_free_waiters(wal, end);
    wal->waiter_scan_from = first_unpublished > wal->waiter_head ? first_unpublished : wal->waiter_head;
}

/* True if a published waiter the last writer_run_waiters did not see is ready to
 * run (covered, or the log failed). Cells before waiter_scan_from were all looked
 * at against the current `durable`, so only the newer ones need a look. */
static bool writer_waiter_ready(struct wal *wal, bool healthy)
{
    uint64_t durable = atomic_load_explicit(&wal->durable, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&wal->waiter_tail, memory_order_seq_cst);
    uint64_t from = wal->waiter_scan_from > wal->waiter_head ? wal->waiter_scan_from : wal->waiter_head;
    uint64_t end = waiter_scan_end(wal, tail);
    TK_ASSERT(from <= tail);
    for (uint64_t pos = from; pos < end; pos++) {
        struct wal_waiter *cell = waiter_cell(wal, pos);
        if (waiter_state(cell, pos, memory_order_seq_cst) == pos + 1 && cell->fn != NULL &&
            (!healthy || cell->lsn <= durable))
            return true;
    }
    return false;
}

/* ---- the writer thread ------------------------------------------------------ */

/* idle: anything to do at all. Not idle (waiting inside a batch): only whether
 * the next record got published, so a ready waiter does not make it spin. */
static bool writer_has_work(struct wal *wal, bool idle)
{
    TK_ASSERT(wal->scan >= wal->written);
    TK_ASSERT(wal->scan <= wal->written + wal->ring_bytes);
    bool healthy = atomic_load(&wal->health) == TK_OK;
    if (healthy && wal->scan < wal->written + wal->ring_bytes && atomic_load(ring_word(wal, wal->scan)) != 0)
        return true;
    if (!idle)
        return !healthy;
    if (atomic_load(&wal->closing))
        return true;
    return writer_waiter_ready(wal, healthy);
}

/* Sleeps until an appender, a waiter registration or close wakes the writer. The
 * wake sequence is read before the flag is raised, so a wake between the two
 * makes futex_wait return at once; the flag store and the re-check are seq_cst,
 * pairing with the appender's seq_cst publish and its flag load. */
static void writer_sleep(struct wal *wal, bool idle, long timeout_ns)
{
    TK_ASSERT(timeout_ns > 0);
    TK_ASSERT(atomic_load(&wal->writer_tid) == gettid());
    for (uint32_t spin = 0; spin < WAL_SPIN_MAX; spin++) {
        if (writer_has_work(wal, idle))
            return;
        cpu_relax();
    }
    uint32_t seq = atomic_load(&wal->writer_wake_seq);
    atomic_store(&wal->writer_sleeping, 1);
    if (!writer_has_work(wal, idle))
        futex_wait(&wal->writer_wake_seq, seq, timeout_ns);
    atomic_store(&wal->writer_sleeping, 0);
}

/* Checks a published record in the ring before it goes to disk (its pair is
 * wal_record_check after reading it back). */
static void writer_check_record(const struct wal *wal, uint64_t lsn, uint32_t length, uint32_t crc)
{
    TK_ASSERT(length >= WAL_RECORD_HEADER_BYTES && length <= WAL_RECORD_BYTES_MAX);
    TK_ASSERT(length % WAL_RECORD_ALIGN_BYTES == 0);
    uint8_t header[WAL_RECORD_HEADER_BYTES];
    ring_read(wal, lsn, header, sizeof(header));
    struct wal_record_header h = wal_record_header_decode(header);
    TK_ASSERT(h.length == length && h.lsn == lsn);
    TK_ASSERT(h.type >= WAL_RECORD_TYPE_USER_MIN && h.reserved == 0);
    TK_ASSERT(h.payload_len <= WAL_RECORD_PAYLOAD_BYTES_MAX && wal_record_size(h.payload_len) == length);
    /* The whole crc is re-checked on a sample (1 record in 64 by position): it
     * catches a systematic copy bug before it reaches the disk, at 1/64 the cost. */
    if ((lsn / WAL_RECORD_ALIGN_BYTES) % WAL_CRC_RECHECK_EVERY == 0)
        TK_ASSERT(ring_record_crc(wal, lsn, header, length) == crc);
}

/* Walks published records from wal->scan towards limit (never past the ring
 * window); returns the new scan position. Each step advances >= 24 bytes. */
static uint64_t writer_scan(struct wal *wal, uint64_t limit)
{
    TK_ASSERT(wal->scan >= wal->written && wal->scan <= limit);
    uint64_t window_end = wal->written + wal->ring_bytes;
    if (limit > window_end)
        limit = window_end; /* beyond it the ring slots alias unconsumed records */
    uint64_t pos = wal->scan;
    while (pos < limit) {
        uint64_t word = atomic_load_explicit(ring_word(wal, pos), memory_order_acquire);
        if (word == 0)
            break;
        writer_check_record(wal, pos, (uint32_t)word, (uint32_t)(word >> 32));
        pos += (uint32_t)word;
        wal->batch_records++;
    }
    TK_ASSERT(pos <= limit);
    wal->scan = pos;
    return pos;
}

static void writer_fail(struct wal *wal, const char *what, int rc)
{
    TK_ASSERT(rc < 0);
    TK_ASSERT(atomic_load(&wal->health) == TK_OK);
    atomic_store(&wal->health, TK_ERR_IO);
    wal_log(wal, "error",
            "WAL failed: %s: %s; pending and later appends fail with TK_ERR_IO (fsync is not retried: after a "
            "failed fsync the kernel may have dropped the unwritten pages)",
            what, strerror(-rc));
    atomic_fetch_add(&wal->space_seq, 1);
    futex_wake_all(&wal->space_seq);
    writer_run_waiters(wal, TK_ERR_IO, true);
}

/* Frees the ring up to new_written (zeroing the appenders' bytes before zero_to). */
static void writer_consume(struct wal *wal, uint64_t zero_to, uint64_t new_written)
{
    TK_ASSERT(wal->written <= zero_to && zero_to <= new_written);
    TK_ASSERT(new_written <= wal->scan);
    ring_zero(wal, wal->written, zero_to);
    wal->written = new_written;
    /* seq_cst store then seq_cst load: pairs with append_wait_space (Dekker). */
    atomic_store(&wal->consumed, new_written);
    if (atomic_load(&wal->space_sleepers) > 0) {
        atomic_fetch_add(&wal->space_seq, 1);
        futex_wake_all(&wal->space_seq);
    }
}

/* Writes the published prefix without a sync to free ring space for appenders
 * that reserved beyond the ring window (the batch's write_sync covers it). */
static int writer_spill(struct wal *wal)
{
    TK_ASSERT(wal->scan > wal->written);
    TK_ASSERT(wal->written >= wal->segment_start);
    struct iovec iov[2];
    int n = ring_iovecs(wal, wal->written, wal->scan, iov);
    int rc = wal_io_pwritev_all(wal->io, wal->segment_handle, iov, n, wal->written - wal->segment_start);
    if (rc < 0) {
        writer_fail(wal, "write", rc);
        return -1;
    }
    writer_consume(wal, wal->scan, wal->scan);
    return 0;
}

/* Waits until every record before target (the batch's COMMIT) is published.
 * Ends: appenders publish within their copy time once their span is free, and a
 * spill frees the span of any appender blocked on ring space. */
static int writer_wait_prefix(struct wal *wal, uint64_t target)
{
    TK_ASSERT(target >= wal->scan);
    TK_ASSERT(target % WAL_RECORD_ALIGN_BYTES == 0);
    for (uint32_t round = 0;; round++) {
        if (writer_scan(wal, target) == target)
            return 0;
        if (target > wal->written + wal->ring_bytes && wal->scan > wal->written) {
            if (writer_spill(wal) != 0)
                return -1;
            continue;
        }
        if (round < WAL_SPIN_MAX)
            cpu_relax();
        else
            writer_sleep(wal, false, WAL_WRITER_WAIT_SLEEP_NS);
    }
}

/* Starts a new segment at the current write position (a batch boundary). */
static int writer_roll(struct wal *wal)
{
    TK_ASSERT(wal->written > wal->segment_start);
    TK_ASSERT(atomic_load(&wal->durable) == wal->written);
    char path[TK_WAL_PATH_BYTES_MAX];
    segment_path(wal, wal->written, path);
    int handle = wal_io_open(wal->io, path, WAL_IO_OPEN_WRITE | WAL_IO_OPEN_TRUNCATE);
    if (handle < 0) {
        writer_fail(wal, "create segment", handle);
        return -1;
    }
    int rc = wal->io->sync_dir(wal->io, wal->dir);
    if (rc < 0) {
        wal_io_close(wal->io, handle);
        writer_fail(wal, "sync directory", rc);
        return -1;
    }
    wal_io_close(wal->io, wal->segment_handle); /* its data is synced; a close error changes nothing */
    wal->segment_handle = handle;
    wal->segment_start = wal->written;
    atomic_store(&wal->current_segment_start, wal->written);
    return 0;
}

/* One group commit: everything published from wal->written, plus a COMMIT. */
static void writer_batch(struct wal *wal)
{
    TK_ASSERT(wal->scan > wal->written);
    TK_ASSERT(atomic_load(&wal->durable) == wal->written);
    uint64_t batch_start = wal->written;
    if (batch_start - wal->segment_start >= wal->segment_bytes && writer_roll(wal) != 0)
        return;
    uint64_t commit_lsn = atomic_fetch_add(&wal->reserve, WAL_COMMIT_BYTES);
    if (writer_wait_prefix(wal, commit_lsn) != 0)
        return;
    uint8_t batch_start_bytes[WAL_COMMIT_PAYLOAD_BYTES];
    struct tk_buf buf;
    tk_buf_init(&buf, batch_start_bytes, sizeof(batch_start_bytes));
    tk_put_u64(&buf, batch_start);
    uint32_t size = wal_record_encode(wal->commit, sizeof(wal->commit), commit_lsn, WAL_RECORD_COMMIT,
                                      batch_start_bytes, WAL_COMMIT_PAYLOAD_BYTES);
    TK_ASSERT(size == WAL_COMMIT_BYTES && !buf.failed);
    struct iovec iov[3];
    int n = ring_iovecs(wal, wal->written, commit_lsn, iov);
    iov[n++] = (struct iovec){wal->commit, WAL_COMMIT_BYTES};
    uint64_t started_ns = tk_monotonic_ns();
    int rc = wal_io_write_sync(wal->io, wal->segment_handle, iov, n, wal->written - wal->segment_start);
    tk_histogram_record(&wal->fsync_ns, tk_monotonic_ns() - started_ns);
    if (rc < 0) {
        writer_fail(wal, "write+fdatasync", rc);
        return;
    }
    uint64_t end = commit_lsn + WAL_COMMIT_BYTES;
    wal->scan = end; /* the COMMIT's ring span was never written: skip it */
    writer_consume(wal, commit_lsn, end);
    tk_counter_add(&wal->stat_records, wal->batch_records);
    tk_counter_add(&wal->stat_bytes, end - batch_start);
    tk_counter_add(&wal->stat_batches, 1);
    wal->batch_records = 0;
    atomic_store_explicit(&wal->durable, end, memory_order_release);
    writer_run_waiters(wal, TK_OK, false);
}

static void *writer_main(void *arg)
{
    struct wal *wal = arg;
    TK_ASSERT(wal != NULL && wal->segment_handle >= 0);
    atomic_store(&wal->writer_tid, gettid());
    /* One batch or one sleep per round; ends at close once everything reserved is written. */
    for (;;) {
        bool closing = atomic_load(&wal->closing);
        if (atomic_load(&wal->health) != TK_OK) {
            writer_run_waiters(wal, TK_ERR_IO, true);
            if (closing)
                break;
            writer_sleep(wal, true, WAL_WRITER_IDLE_SLEEP_NS);
            continue;
        }
        if (writer_scan(wal, wal->written + wal->ring_bytes) > wal->written) {
            writer_batch(wal);
            continue;
        }
        writer_run_waiters(wal, TK_OK, false);
        if (closing && atomic_load(&wal->reserve) == wal->written)
            break;
        writer_sleep(wal, true, closing ? WAL_WRITER_WAIT_SLEEP_NS : WAL_WRITER_IDLE_SLEEP_NS);
    }
    bool healthy = atomic_load(&wal->health) == TK_OK;
    TK_ASSERT(atomic_load(&wal->closing));
    TK_ASSERT(!healthy || wal->written == atomic_load(&wal->reserve));
    writer_run_waiters(wal, healthy ? TK_ERR_UNAVAILABLE : TK_ERR_IO, true);
    return NULL;
}

/* ---- recovery --------------------------------------------------------------- */

/* Reads one segment through the wal_io backend in large chunks. */
struct wal_reader {
    struct wal_io *io;
    int handle;
    uint64_t file_start; /* LSN of the file's first byte */
    uint64_t file_end;   /* LSN just past its last byte */
    uint8_t *buf;
    uint64_t buf_lsn;
    uint32_t buf_len;
};

struct wal_recovery {
    uint64_t from_lsn;
    wal_replay_fn replay;
    void *replay_ctx;
    char *err;
    size_t err_len;
    uint32_t count;       /* segment files found */
    uint32_t first;       /* index of the segment holding from_lsn */
    uint64_t stream_end;  /* end of the last valid record */
    struct wal_reader reader;
};

/* Returns the bytes at [lsn, lsn + want) clipped at end of file, *avail of them;
 * NULL on a read error (*rc = -errno). */
static const uint8_t *reader_view(struct wal_reader *r, uint64_t lsn, uint32_t want, uint32_t *avail, int *rc)
{
    TK_ASSERT(want <= WAL_READ_BUFFER_BYTES && lsn >= r->file_start);
    TK_ASSERT(lsn <= r->file_end);
    uint64_t end = lsn + want < r->file_end ? lsn + want : r->file_end;
    if (lsn < r->buf_lsn || end > r->buf_lsn + r->buf_len) {
        uint64_t total = r->file_end - lsn < WAL_READ_BUFFER_BYTES ? r->file_end - lsn : WAL_READ_BUFFER_BYTES;
        uint32_t got = 0;
        while (got < total) { /* bounded: each read returns > 0 bytes or stops */
            ssize_t n = wal_io_pread(r->io, r->handle, r->buf + got, total - got, lsn + got - r->file_start);
            if (n < 0) {
                *rc = (int)n;
                return NULL;
            }
            if (n == 0)
                break; /* the file shrank under us: treat the rest as missing */
            got += (uint32_t)n;
        }
        r->buf_lsn = lsn;
        r->buf_len = got;
    }
    uint64_t have = r->buf_lsn + r->buf_len - lsn;
    *avail = (uint32_t)(have < end - lsn ? have : end - lsn);
    return r->buf + (lsn - r->buf_lsn);
}

__attribute__((format(printf, 5, 6))) static enum tk_status
recovery_error(struct wal_recovery *rec, enum tk_status status, const char *path, uint64_t offset, const char *fmt,
               ...)
{
    TK_ASSERT(status != TK_OK);
    TK_ASSERT(path != NULL && fmt != NULL);
    if (rec->err_len == 0)
        return status;
    char reason[WAL_LOG_MESSAGE_BYTES];
    va_list args;
    va_start(args, fmt);
    vsnprintf(reason, sizeof(reason), fmt, args);
    va_end(args);
    if (status == TK_ERR_CORRUPT)
        snprintf(rec->err, rec->err_len, "WAL corrupt: %s offset %" PRIu64 ": %s", path, offset, reason);
    else
        snprintf(rec->err, rec->err_len, "WAL recovery: %s offset %" PRIu64 ": %s", path, offset, reason);
    return status;
}

struct segment_list {
    struct wal *wal;
    uint32_t count;
    bool overflow;
};

static int on_segment_entry(void *ctx, const char *name)
{
    struct segment_list *list = ctx;
    TK_ASSERT(list != NULL && name != NULL);
    TK_ASSERT(list->count <= WAL_SEGMENTS_MAX);
    uint64_t first_lsn;
    if (!wal_segment_parse(name, &first_lsn)) {
        wal_log(list->wal, "warn", "ignoring unexpected file %s/%s in the WAL directory", list->wal->dir, name);
        return 0;
    }
    if (list->count == WAL_SEGMENTS_MAX) {
        list->overflow = true;
        return -EOVERFLOW;
    }
    list->wal->segments[list->count++] = first_lsn;
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Fills wal->segments with the segment start LSNs, ascending; returns the count or -errno. */
static int list_segments(struct wal *wal)
{
    TK_ASSERT(wal->segments != NULL);
    struct segment_list list = {wal, 0, false};
    int rc = wal->io->list(wal->io, wal->dir, WAL_SEGMENT_PREFIX, on_segment_entry, &list);
    if (rc < 0)
        return list.overflow ? -EOVERFLOW : rc;
    qsort(wal->segments, list.count, sizeof(uint64_t), compare_u64);
    TK_ASSERT(list.count <= WAL_SEGMENTS_MAX);
    return (int)list.count;
}

/* True if every byte of [from, end) of the current segment is zero. */
static bool reader_rest_is_zero(struct wal_reader *r, uint64_t from, int *rc)
{
    TK_ASSERT(from <= r->file_end);
    TK_ASSERT(from >= r->file_start);
    for (uint64_t pos = from; pos < r->file_end;) { /* bounded by the file size */
        uint32_t avail = 0;
        const uint8_t *bytes = reader_view(r, pos, WAL_RECORD_BYTES_MAX, &avail, rc);
        if (bytes == NULL || avail == 0)
            return false;
        for (uint32_t i = 0; i < avail; i++)
            if (bytes[i] != 0)
                return false;
        pos += avail;
    }
    return true;
}

/* Looks at every 8-byte aligned position after bad_lsn for a valid COMMIT of a
 * batch that started after bad_lsn (which proves bad_lsn had been synced). */
static bool reader_find_later_commit(struct wal_reader *r, uint64_t bad_lsn, uint64_t *commit_lsn, int *rc)
{
    TK_ASSERT(bad_lsn % WAL_RECORD_ALIGN_BYTES == 0);
    TK_ASSERT(bad_lsn >= r->file_start);
    for (uint64_t pos = bad_lsn + WAL_RECORD_ALIGN_BYTES; pos + WAL_COMMIT_BYTES <= r->file_end;
         pos += WAL_RECORD_ALIGN_BYTES) {
        uint32_t avail = 0;
        const uint8_t *bytes = reader_view(r, pos, WAL_COMMIT_BYTES, &avail, rc);
        if (bytes == NULL)
            return false;
        if (avail < WAL_COMMIT_BYTES)
            break; /* the file shrank under us */
        struct wal_record_header h = wal_record_header_decode(bytes);
        if (h.lsn != pos || h.type != WAL_RECORD_COMMIT || h.length != WAL_COMMIT_BYTES)
            continue; /* cheap filter before the crc */
        struct wal_record_view view;
        uint64_t batch_start = 0;
        if (wal_record_check(bytes, avail, pos, &view, &batch_start) == NULL && batch_start > bad_lsn) {
            *commit_lsn = pos;
            return true;
        }
    }
    return false;
}

/* The first invalid record of the stream is at bad_lsn in segment i: cut a torn
 * tail back to it, or refuse corruption in synced data. */
static enum tk_status recover_bad_record(struct wal *wal, struct wal_recovery *rec, uint32_t i, const char *path,
                                         uint64_t bad_lsn, const char *reason)
{
    struct wal_reader *r = &rec->reader;
    TK_ASSERT(bad_lsn >= r->file_start && bad_lsn < r->file_end);
    TK_ASSERT(i < rec->count);
    uint64_t offset = bad_lsn - r->file_start;
    if (i + 1 < rec->count)
        return recovery_error(rec, TK_ERR_CORRUPT, path, offset, "%s (a later segment exists, so this one was synced)",
                              reason);
    int rc = 0;
    bool zero_tail = strcmp(reason, "zero length") == 0 && reader_rest_is_zero(r, bad_lsn, &rc);
    uint64_t commit_lsn = 0;
    if (rc == 0 && !zero_tail && reader_find_later_commit(r, bad_lsn, &commit_lsn, &rc))
        return recovery_error(rec, TK_ERR_CORRUPT, path, offset,
                              "%s (followed by a valid COMMIT at LSN %" PRIu64 " of a later batch)", reason,
                              commit_lsn);
    if (rc < 0)
        return recovery_error(rec, TK_ERR_IO, path, offset, "read: %s", strerror(-rc));
    rc = wal->io->truncate(wal->io, r->handle, offset);
    if (rc == 0)
        rc = wal->io->fdatasync(wal->io, r->handle);
    if (rc < 0)
        return recovery_error(rec, TK_ERR_IO, path, offset, "cutting the torn tail: %s", strerror(-rc));
    if (!zero_tail)
        wal_log(wal, "warn", "WAL torn tail cut: %s offset %" PRIu64 ": %s; %" PRIu64 " bytes dropped", path, offset,
                reason, r->file_end - bad_lsn);
    rec->stream_end = bad_lsn;
    return TK_OK;
}

/* Validates (and replays) every record of segment i; *cut is set when the
 * stream ended inside it. The handle stays open in rec->reader. */
static enum tk_status recover_segment(struct wal *wal, struct wal_recovery *rec, uint32_t i, bool *cut)
{
    struct wal_reader *r = &rec->reader;
    TK_ASSERT(i >= rec->first && i < rec->count);
    TK_ASSERT(r->handle >= 0);
    char path[TK_WAL_PATH_BYTES_MAX];
    segment_path(wal, wal->segments[i], path);
    uint64_t pos = r->file_start;
    while (pos < r->file_end) { /* bounded: each valid record advances >= 24 bytes */
        uint32_t avail = 0;
        int rc = 0;
        const uint8_t *bytes = reader_view(r, pos, WAL_RECORD_BYTES_MAX, &avail, &rc);
        if (bytes == NULL)
            return recovery_error(rec, TK_ERR_IO, path, pos - r->file_start, "read: %s", strerror(-rc));
        struct wal_record_view view;
        uint64_t batch_start = 0;
        const char *reason = wal_record_check(bytes, avail, pos, &view, &batch_start);
        if (reason != NULL) {
            *cut = true;
            return recover_bad_record(wal, rec, i, path, pos, reason);
        }
        TK_ASSERT(view.lsn == pos && view.payload_len <= WAL_RECORD_PAYLOAD_BYTES_MAX);
        if (view.type >= WAL_RECORD_TYPE_USER_MIN && view.lsn >= rec->from_lsn && rec->replay != NULL) {
            enum tk_status status = rec->replay(rec->replay_ctx, &view);
            if (status != TK_OK)
                return recovery_error(rec, status, path, pos - r->file_start,
                                      "replay refused the record at LSN %" PRIu64, pos);
        }
        pos += wal_record_size(view.payload_len);
    }
    rec->stream_end = r->file_end;
    return TK_OK;
}

/* Opens segment i into rec->reader (closing the previous one) and checks that it
 * continues the stream. */
static enum tk_status recover_open_segment(struct wal *wal, struct wal_recovery *rec, uint32_t i)
{
    struct wal_reader *r = &rec->reader;
    TK_ASSERT(i >= rec->first && i < rec->count);
    TK_ASSERT(r->io == wal->io);
    char path[TK_WAL_PATH_BYTES_MAX];
    segment_path(wal, wal->segments[i], path);
    if (r->handle >= 0)
        wal_io_close(wal->io, r->handle);
    r->handle = wal_io_open(wal->io, path, WAL_IO_OPEN_WRITE);
    if (r->handle < 0)
        return recovery_error(rec, TK_ERR_IO, path, 0, "open: %s", strerror(-r->handle));
    int64_t size = wal->io->size(wal->io, r->handle);
    if (size < 0)
        return recovery_error(rec, TK_ERR_IO, path, 0, "size: %s", strerror((int)-size));
    if (wal->segments[i] % WAL_RECORD_ALIGN_BYTES != 0)
        return recovery_error(rec, TK_ERR_CORRUPT, path, 0, "segment start LSN is not 8-byte aligned");
    if (i > rec->first && wal->segments[i] != rec->stream_end)
        return recovery_error(rec, TK_ERR_CORRUPT, path, 0,
                              "gap: segment starts at LSN %" PRIu64 " but the previous one ends at LSN %" PRIu64,
                              wal->segments[i], rec->stream_end);
    r->file_start = wal->segments[i];
    r->file_end = wal->segments[i] + (uint64_t)size;
    r->buf_lsn = 0;
    r->buf_len = 0;
    TK_ASSERT(r->file_end >= r->file_start);
    return TK_OK;
}

static enum tk_status recover_create_first(struct wal *wal, struct wal_recovery *rec)
{
    TK_ASSERT(rec->count == 0);
    TK_ASSERT(rec->reader.handle < 0);
    uint64_t start = (rec->from_lsn + 7u) & ~(uint64_t)7u;
    char path[TK_WAL_PATH_BYTES_MAX];
    segment_path(wal, start, path);
    int handle = wal_io_open(wal->io, path, WAL_IO_OPEN_WRITE | WAL_IO_OPEN_TRUNCATE);
    if (handle < 0)
        return recovery_error(rec, TK_ERR_IO, path, 0, "create: %s", strerror(-handle));
    int rc = wal->io->sync_dir(wal->io, wal->dir);
    if (rc < 0) {
        wal_io_close(wal->io, handle);
        return recovery_error(rec, TK_ERR_IO, wal->dir, 0, "sync directory: %s", strerror(-rc));
    }
    rec->reader.handle = handle;
    rec->reader.file_start = start;
    rec->stream_end = start;
    return TK_OK;
}

/* Finds the segments, replays from the one holding from_lsn, cuts a torn tail,
 * and leaves the last segment open for writing in rec->reader.handle. */
static enum tk_status recover(struct wal *wal, struct wal_recovery *rec)
{
    TK_ASSERT(rec->reader.handle < 0 && rec->reader.buf != NULL);
    TK_ASSERT(wal->segment_handle < 0);
    int count = list_segments(wal);
    if (count < 0)
        return recovery_error(rec, count == -EOVERFLOW ? TK_ERR_FULL : TK_ERR_IO, wal->dir, 0,
                              "listing segments: %s", strerror(-count));
    rec->count = (uint32_t)count;
    if (count == 0)
        return recover_create_first(wal, rec);
    if (rec->from_lsn < wal->segments[0]) {
        char path[TK_WAL_PATH_BYTES_MAX];
        segment_path(wal, wal->segments[0], path);
        return recovery_error(rec, TK_ERR_CORRUPT, path, 0,
                              "the log starts at LSN %" PRIu64 ", after the replay start %" PRIu64
                              ": records are missing",
                              wal->segments[0], rec->from_lsn);
    }
    rec->first = 0;
    for (uint32_t i = 1; i < rec->count && wal->segments[i] <= rec->from_lsn; i++)
        rec->first = i;
    for (uint32_t i = rec->first; i < rec->count; i++) {
        enum tk_status status = recover_open_segment(wal, rec, i);
        bool cut = false;
        if (status == TK_OK)
            status = recover_segment(wal, rec, i, &cut);
        if (status != TK_OK)
            return status;
        if (cut)
            break; /* recover_bad_record refused anything but the last segment */
    }
    if (rec->from_lsn > rec->stream_end)
        return recovery_error(rec, TK_ERR_CORRUPT, wal->dir, 0,
                              "the log ends at LSN %" PRIu64 ", before the replay start %" PRIu64
                              ": records are missing",
                              rec->stream_end, rec->from_lsn);
    return TK_OK;
}

/* ---- open, close, truncate, stats ------------------------------------------- */

static void wal_free(struct wal *wal)
{
    if (wal == NULL)
        return;
    TK_ASSERT(!wal->thread_started);
    TK_ASSERT(wal->io != NULL || wal->segment_handle < 0);
    if (wal->segment_handle >= 0)
        wal_io_close(wal->io, wal->segment_handle);
    if (wal->owns_io)
        wal_io_destroy(wal->io);
    if (wal->ring != NULL)
        munmap(wal->ring, wal->ring_bytes);
    free(wal->waiters);
    free(wal->segments);
    pthread_mutex_destroy(&wal->truncate_lock);
    free(wal);
}

static enum tk_status wal_alloc(struct wal **out, const struct wal_config *config, uint64_t ring_bytes,
                                uint64_t segment_bytes)
{
    TK_ASSERT(ring_bytes >= TK_WAL_RING_BYTES_MIN && (ring_bytes & (ring_bytes - 1)) == 0);
    TK_ASSERT(segment_bytes >= WAL_SEGMENT_BYTES_MIN);
    size_t size = (sizeof(struct wal) + WAL_CACHE_LINE_BYTES - 1) & ~(size_t)(WAL_CACHE_LINE_BYTES - 1);
    struct wal *wal = aligned_alloc(WAL_CACHE_LINE_BYTES, size);
    if (wal == NULL)
        return TK_ERR_UNAVAILABLE;
    memset(wal, 0, size);
    wal->segment_handle = -1;
    pthread_mutex_init(&wal->truncate_lock, NULL);
    snprintf(wal->dir, sizeof(wal->dir), "%s", config->dir);
    wal->ring_bytes = ring_bytes;
    wal->ring_mask = ring_bytes - 1;
    wal->segment_bytes = segment_bytes;
    wal->log = config->log;
    wal->log_ctx = config->log_ctx;
    /* Anonymous memory starts zeroed, as the ring must; populated now so the hot
     * path takes no page faults (allocation at open, TigerBeetle style). */
    void *ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    wal->ring = ring == MAP_FAILED ? NULL : ring;
    wal->waiters = calloc(TK_WAL_WAITERS_MAX, sizeof(struct wal_waiter));
    wal->segments = calloc(WAL_SEGMENTS_MAX, sizeof(uint64_t));
    if (wal->ring == NULL || wal->waiters == NULL || wal->segments == NULL) {
        wal_free(wal);
        return TK_ERR_UNAVAILABLE;
    }
    *out = wal;
    return TK_OK;
}

static enum tk_status wal_check_config(const struct wal_config *config, uint64_t *ring_bytes,
                                       uint64_t *segment_bytes, char *err, size_t err_len)
{
    TK_ASSERT(config != NULL);
    TK_ASSERT(ring_bytes != NULL && segment_bytes != NULL);
    const char *problem = NULL;
    *ring_bytes = config->ring_bytes ? config->ring_bytes : TK_WAL_RING_BYTES_DEFAULT;
    *segment_bytes = config->segment_bytes ? config->segment_bytes : TK_WAL_SEGMENT_BYTES_DEFAULT;
    if (config->dir == NULL || config->dir[0] == '\0')
        problem = "wal_config.dir is empty";
    else if (strlen(config->dir) + 1 + WAL_SEGMENT_NAME_BYTES > TK_WAL_PATH_BYTES_MAX)
        problem = "wal_config.dir is too long";
    else if (*ring_bytes < TK_WAL_RING_BYTES_MIN || *ring_bytes > WAL_RING_BYTES_MAX)
        problem = "wal_config.ring_bytes is outside [TK_WAL_RING_BYTES_MIN, 1 GiB]";
    else if (*segment_bytes < WAL_SEGMENT_BYTES_MIN)
        problem = "wal_config.segment_bytes is below 4096";
    if (problem != NULL) {
        if (err_len)
            snprintf(err, err_len, "%s", problem);
        return TK_ERR_INVALID;
    }
    /* The ring indexes by mask: round up to a power of two. */
    uint64_t rounded = TK_WAL_RING_BYTES_MIN;
    while (rounded < *ring_bytes) /* bounded: at most 30 doublings */
        rounded <<= 1;
    *ring_bytes = rounded;
    return TK_OK;
}

static enum tk_status wal_start(struct wal *wal, struct wal_recovery *rec)
{
    TK_ASSERT(rec->reader.handle >= 0);
    TK_ASSERT(rec->stream_end >= rec->reader.file_start);
    wal->segment_handle = rec->reader.handle;
    rec->reader.handle = -1;
    wal->segment_start = rec->reader.file_start;
    wal->written = wal->scan = rec->stream_end;
    atomic_init(&wal->reserve, rec->stream_end);
    atomic_init(&wal->consumed, rec->stream_end);
    atomic_init(&wal->durable, rec->stream_end);
    atomic_init(&wal->current_segment_start, wal->segment_start);
    atomic_init(&wal->health, TK_OK);
    atomic_init(&wal->writer_tid, -1);
    if (pthread_create(&wal->thread, NULL, writer_main, wal) != 0) {
        if (rec->err_len)
            snprintf(rec->err, rec->err_len, "cannot start the WAL writer thread");
        return TK_ERR_UNAVAILABLE;
    }
    pthread_setname_np(wal->thread, "wal-writer"); /* for top -H and perf */
    wal->thread_started = true;
    return TK_OK;
}

enum tk_status wal_open(struct wal **out, const struct wal_config *config, uint64_t from_lsn, wal_replay_fn replay,
                        void *replay_ctx, char *err, size_t err_len)
{
    TK_ASSERT(out != NULL && config != NULL);
    TK_ASSERT(err != NULL || err_len == 0);
    *out = NULL;
    if (err_len)
        err[0] = '\0';
    uint64_t ring_bytes, segment_bytes;
    struct wal *wal = NULL;
    struct wal_recovery rec = {.from_lsn = from_lsn, .replay = replay, .replay_ctx = replay_ctx, .err = err,
                               .err_len = err_len, .reader.handle = -1};
    enum tk_status status = wal_check_config(config, &ring_bytes, &segment_bytes, err, err_len);
    if (status == TK_OK)
        status = wal_alloc(&wal, config, ring_bytes, segment_bytes);
    if (status != TK_OK)
        goto fail;
    wal->io = config->io;
    if (wal->io == NULL) {
        int rc = wal_io_default_create(&wal->io, config->log, config->log_ctx);
        status = rc < 0 ? recovery_error(&rec, TK_ERR_UNAVAILABLE, config->dir, 0, "no I/O backend: %s",
                                         strerror(-rc))
                        : TK_OK;
        if (status != TK_OK)
            goto fail;
        wal->owns_io = true;
    }
    int rc = wal->io->mkdirs(wal->io, wal->dir);
    if (rc < 0) {
        status = recovery_error(&rec, TK_ERR_IO, wal->dir, 0, "create directory: %s", strerror(-rc));
        goto fail;
    }
    rec.reader.io = wal->io;
    rec.reader.buf = malloc(WAL_READ_BUFFER_BYTES);
    status = rec.reader.buf == NULL ? TK_ERR_UNAVAILABLE : recover(wal, &rec);
    if (status == TK_OK)
        status = wal_start(wal, &rec);
    if (status != TK_OK)
        goto fail;
    free(rec.reader.buf);
    *out = wal;
    return TK_OK;
fail:
    if (rec.reader.handle >= 0)
        wal_io_close(wal->io, rec.reader.handle);
    free(rec.reader.buf);
    wal_free(wal);
    TK_ASSERT(status != TK_OK);
    return status;
}

void wal_close(struct wal *wal)
{
    if (wal == NULL)
        return;
    TK_ASSERT(wal->thread_started);
    TK_ASSERT(atomic_load(&wal->writer_tid) != gettid());
    atomic_store(&wal->closing, true);
    writer_wake(wal);
    pthread_join(wal->thread, NULL);
    wal->thread_started = false;
    TK_ASSERT(atomic_load(&wal->health) != TK_OK || atomic_load(&wal->durable) == atomic_load(&wal->reserve));
    wal_free(wal);
}

enum tk_status wal_truncate_before(struct wal *wal, uint64_t lsn)
{
    TK_ASSERT(wal != NULL);
    TK_ASSERT(wal->segments != NULL);
    uint64_t durable = atomic_load(&wal->durable);
    if (lsn > durable)
        lsn = durable; /* never drop what is not durable */
    pthread_mutex_lock(&wal->truncate_lock);
    enum tk_status status = TK_OK;
    int count = list_segments(wal);
    uint64_t current = atomic_load(&wal->current_segment_start);
    uint32_t deleted = 0;
    int rc = count < 0 ? count : 0;
    /* Segment i ends where segment i + 1 starts; the newest one is never deleted. */
    for (int i = 0; rc == 0 && i + 1 < count; i++) {
        if (wal->segments[i + 1] > lsn || wal->segments[i] >= current)
            break;
        char path[TK_WAL_PATH_BYTES_MAX];
        segment_path(wal, wal->segments[i], path);
        rc = wal->io->unlink(wal->io, path);
        deleted += rc == 0;
    }
    if (rc == 0 && deleted > 0)
        rc = wal->io->sync_dir(wal->io, wal->dir);
    if (rc < 0) {
        wal_log(wal, "error", "WAL truncate_before %" PRIu64 " failed: %s", lsn, strerror(-rc));
        status = TK_ERR_IO;
    }
    pthread_mutex_unlock(&wal->truncate_lock);
    return status;
}

uint64_t wal_durable_lsn(const struct wal *wal)
{
    TK_ASSERT(wal != NULL);
    return atomic_load_explicit(&((struct wal *)wal)->durable, memory_order_acquire);
}

uint64_t wal_reserved_lsn(const struct wal *wal)
{
    TK_ASSERT(wal != NULL);
    return atomic_load_explicit(&((struct wal *)wal)->reserve, memory_order_acquire);
}

enum tk_status wal_health(const struct wal *wal)
{
    TK_ASSERT(wal != NULL);
    return (enum tk_status)atomic_load(&((struct wal *)wal)->health);
}

const char *wal_backend_name(const struct wal *wal)
{
    TK_ASSERT(wal != NULL && wal->io != NULL);
    return wal->io->name;
}

void wal_stats_get(const struct wal *wal, struct wal_stats *out)
{
    TK_ASSERT(wal != NULL && out != NULL);
    out->records = tk_counter_get(&wal->stat_records);
    out->bytes = tk_counter_get(&wal->stat_bytes);
    out->batches = tk_counter_get(&wal->stat_batches);
    out->fsync_ns = (struct tk_histogram *)&wal->fsync_ns;
}
