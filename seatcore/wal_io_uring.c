/* wal_io_uring.c — the io_uring wal_io backend (liburing 2.3).
 *
 * What it owns: one io_uring instance and the hot call of group commit,
 * write_sync: the writev and an fdatasync are submitted together, linked
 * (IOSQE_IO_LINK, so the sync starts only after the write completed), with one
 * io_uring_enter, and both completions are reaped before returning.
 *
 * Why: group commit does one write+sync per batch; doing it as one linked
 * submission saves a syscall and a wake-up per batch and keeps the door open for
 * registered files and SQPOLL later. Every other operation (open, pread, list,
 * rename ...) is rare and stays a plain syscall, borrowed from the posix backend.
 *
 * Completions follow the liburing examples: each carries its per-I/O state via
 * io_uring_sqe_set_data; res < 0, -EAGAIN/-EINTR and short writes are handled by
 * resubmitting the remainder (and its linked sync). A failed sync is never
 * retried: after EIO the kernel may have dropped the dirty pages (see wal.c).
 *
 * Threads: the WAL calls write_sync only from its writer thread; a mutex still
 * serialises the ring so another user of the same backend (the snapshot writer)
 * cannot corrupt it. Trade-off: a second user would wait behind a WAL batch. */
#include "wal_io.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WAL_URING_ENTRIES 8u
/* Resubmission rounds for one write_sync (short writes, EAGAIN). */
#define WAL_URING_ROUNDS_MAX 10000u

struct wal_io_uring {
    struct wal_io base; /* first: a struct wal_io * is a struct wal_io_uring * */
    struct io_uring ring;
    pthread_mutex_t lock;
};

enum uring_op_kind { URING_OP_WRITE = 1, URING_OP_SYNC = 2 };

/* Per-I/O state; travels with the SQE as user_data. */
struct uring_op {
    enum uring_op_kind kind;
    int res;
    bool done;
};

static struct wal_io_uring *uring_of(struct wal_io *io)
{
    TK_ASSERT(io != NULL);
    TK_ASSERT(strcmp(io->name, "io_uring") == 0);
    return (struct wal_io_uring *)io;
}

static bool retryable(int res)
{
    return res == -EAGAIN || res == -EINTR || res == -ECANCELED;
}

/* Submits what was prepared and reaps `expected` completions into their ops. */
static int uring_submit_and_reap(struct io_uring *ring, unsigned expected)
{
    TK_ASSERT(expected > 0 && expected <= WAL_URING_ENTRIES);
    int submitted = 0;
    for (unsigned attempt = 0; attempt < WAL_URING_ROUNDS_MAX && submitted == 0; attempt++) {
        submitted = io_uring_submit(ring);
        if (submitted == -EINTR || submitted == -EAGAIN)
            submitted = 0;
        else if (submitted < 0)
            return submitted;
    }
    if (submitted != (int)expected)
        return -EIO; /* cannot happen with a dedicated ring: treat as a broken device */
    for (unsigned reaped = 0; reaped < expected;) {
        struct io_uring_cqe *cqe = NULL;
        int rc = io_uring_wait_cqe(ring, &cqe);
        if (rc == -EINTR)
            continue; /* bounded: the kernel completes submitted I/O */
        if (rc < 0)
            return rc;
        struct uring_op *op = io_uring_cqe_get_data(cqe);
        TK_ASSERT(op != NULL && !op->done);
        op->res = cqe->res;
        op->done = true;
        io_uring_cqe_seen(ring, cqe);
        reaped++;
    }
    return 0;
}

/* Advances the iovecs past n written bytes; returns the index of the first non-empty one. */
static int iov_advance(struct iovec *rest, int first, int iovcnt, size_t n)
{
    for (int i = first; i < iovcnt && n > 0; i++) {
        size_t take = n < rest[i].iov_len ? n : rest[i].iov_len;
        rest[i].iov_base = (uint8_t *)rest[i].iov_base + take;
        rest[i].iov_len -= take;
        n -= take;
    }
    TK_ASSERT(n == 0);
    while (first < iovcnt && rest[first].iov_len == 0)
        first++;
    return first;
}

/* One round: (writev of what is left, linked to) fdatasync. */
static int uring_round(struct wal_io_uring *uring, int handle, struct iovec *rest, int first, int iovcnt,
                       uint64_t offset, struct uring_op *write_op, struct uring_op *sync_op)
{
    unsigned expected = 0;
    *write_op = (struct uring_op){.kind = URING_OP_WRITE, .res = 0, .done = first == iovcnt};
    *sync_op = (struct uring_op){.kind = URING_OP_SYNC};
    if (first < iovcnt) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&uring->ring);
        TK_ASSERT(sqe != NULL); /* the ring is empty between rounds */
        io_uring_prep_writev(sqe, handle, rest + first, (unsigned)(iovcnt - first), offset);
        sqe->flags |= IOSQE_IO_LINK;
        io_uring_sqe_set_data(sqe, write_op);
        expected++;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&uring->ring);
    TK_ASSERT(sqe != NULL);
    io_uring_prep_fsync(sqe, handle, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data(sqe, sync_op);
    expected++;
    return uring_submit_and_reap(&uring->ring, expected);
}

static int uring_write_sync_locked(struct wal_io_uring *uring, int handle, const struct iovec *iov, int iovcnt,
                                   uint64_t offset)
{
    TK_ASSERT(uring != NULL && iov != NULL);
    TK_ASSERT(iovcnt > 0 && iovcnt <= WAL_IO_IOV_MAX);
    struct iovec rest[WAL_IO_IOV_MAX];
    memcpy(rest, iov, sizeof(*iov) * (size_t)iovcnt);
    int first = iov_advance(rest, 0, iovcnt, 0);
    for (uint32_t round = 0; round < WAL_URING_ROUNDS_MAX; round++) {
        struct uring_op write_op, sync_op;
        int rc = uring_round(uring, handle, rest, first, iovcnt, offset, &write_op, &sync_op);
        if (rc < 0)
            return rc;
        TK_ASSERT(write_op.done && sync_op.done);
        /* A sync that really failed is final whatever the write did. */
        if (sync_op.res < 0 && !retryable(sync_op.res))
            return sync_op.res;
        if (write_op.res < 0 && !retryable(write_op.res))
            return write_op.res;
        if (first < iovcnt && write_op.res > 0) {
            offset += (uint64_t)write_op.res;
            first = iov_advance(rest, first, iovcnt, (size_t)write_op.res);
        } else if (first < iovcnt && write_op.res == 0) {
            return -EIO; /* no progress on a regular file */
        }
        /* Done only when everything is written and a sync ran after the last write. */
        if (first == iovcnt && sync_op.res == 0 && write_op.res >= 0)
            return 0;
    }
    return -EIO;
}

static int uring_write_sync(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    struct wal_io_uring *uring = uring_of(io);
    TK_ASSERT(handle >= 0 && iov != NULL);
    TK_ASSERT(iovcnt > 0 && iovcnt <= WAL_IO_IOV_MAX);
    pthread_mutex_lock(&uring->lock);
    int rc = uring_write_sync_locked(uring, handle, iov, iovcnt, offset);
    pthread_mutex_unlock(&uring->lock);
    return rc;
}

static int uring_fdatasync(struct wal_io *io, int handle)
{
    struct wal_io_uring *uring = uring_of(io);
    TK_ASSERT(handle >= 0);
    struct iovec none = {.iov_base = NULL, .iov_len = 0};
    pthread_mutex_lock(&uring->lock);
    int rc = uring_write_sync_locked(uring, handle, &none, 1, 0);
    pthread_mutex_unlock(&uring->lock);
    return rc;
}

static void uring_destroy(struct wal_io *io)
{
    struct wal_io_uring *uring = uring_of(io);
    io_uring_queue_exit(&uring->ring);
    pthread_mutex_destroy(&uring->lock);
    free(uring);
}

/* Round-trips a NOP: some seccomp profiles allow io_uring_setup but not enter. */
static int uring_probe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    TK_ASSERT(sqe != NULL);
    struct uring_op op = {.kind = URING_OP_SYNC};
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, &op);
    int rc = uring_submit_and_reap(ring, 1);
    if (rc < 0)
        return rc;
    return op.res;
}

int wal_io_uring_create(struct wal_io **out)
{
    TK_ASSERT(out != NULL);
    *out = NULL;
    struct wal_io_uring *uring = calloc(1, sizeof(*uring));
    if (uring == NULL)
        return -ENOMEM;
    int rc = io_uring_queue_init(WAL_URING_ENTRIES, &uring->ring, 0);
    if (rc < 0)
        goto fail;
    rc = uring_probe(&uring->ring);
    if (rc < 0) {
        io_uring_queue_exit(&uring->ring);
        goto fail;
    }
    wal_io_posix_fill(&uring->base);
    uring->base.name = "io_uring";
    uring->base.write_sync = uring_write_sync;
    uring->base.fdatasync = uring_fdatasync;
    uring->base.destroy = uring_destroy;
    pthread_mutex_init(&uring->lock, NULL);
    *out = &uring->base;
    return 0;
fail:
    free(uring);
    TK_ASSERT(rc < 0);
    return rc;
}
