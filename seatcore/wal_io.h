/* wal_io.h — the file I/O backend behind the WAL and the snapshot writer.
 *
 * What it owns: one small vtable of file and directory operations (open, pread,
 * pwritev, fdatasync, the combined write_sync, size, truncate, close, rename,
 * unlink, list, directory fsync, mkdir -p), and the functions that create the
 * backends: io_uring, plain syscalls, and (wal_io_sim.h) a simulated disk.
 *
 * Why a vtable: like Redis' ae_epoll.c / ae_select.c behind ae.c, the platform
 * choice is made once at start-up (io_uring where the kernel and seccomp allow
 * it, pwritev+fdatasync elsewhere) and the log code does not know which it got.
 * The same seam lets the tests plug a disk that fails, tears writes and crashes.
 *
 * Conventions: every call returns >= 0 on success and -errno on failure (never
 * sets errno for the caller). Handles are small non-negative ints. Paths are
 * absolute or relative file system paths, at most TK_WAL_PATH_BYTES_MAX bytes.
 *
 * Threads: every call may be made from any thread. write_sync is the hot call of
 * group commit; the WAL calls it only from its one writer thread. The io_uring
 * backend serialises write_sync internally (one mutex, uncontended in the WAL's
 * use) so a snapshot writer may share a backend with the WAL.
 *
 * Trade-off: the interface is file-generic rather than WAL-shaped (no "append
 * record" call), so a backend stays a thin translation of syscalls and every
 * policy (batching, segment rolls, recovery) lives once, in wal.c. */
#ifndef WAL_IO_H
#define WAL_IO_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tk_assert.h"

/* Open flags. WAL_IO_OPEN_READ alone opens read-only; WAL_IO_OPEN_WRITE opens
 * read-write and creates the file if missing; add WAL_IO_OPEN_TRUNCATE to empty
 * an existing file. Creating a file is not durable until the directory is
 * synced (sync_dir), on every backend. */
enum wal_io_open_flags {
    WAL_IO_OPEN_READ = 0,
    WAL_IO_OPEN_WRITE = 1,
    WAL_IO_OPEN_TRUNCATE = 2,
};

/* The most iovecs one pwritev/write_sync call accepts (the WAL uses up to 3). */
#define WAL_IO_IOV_MAX 8

/* Called by list for each entry; return 0 to continue, a negative value to stop
 * (list then returns that value). name is the entry name without the directory. */
typedef int (*wal_io_list_fn)(void *ctx, const char *name);

struct wal_io {
    const char *name; /* "io_uring", "posix", "sim": for logs and wal_backend_name */
    /* Returns a handle >= 0 or -errno. */
    int (*open)(struct wal_io *io, const char *path, int flags);
    /* Reads up to len bytes at offset; returns bytes read (0 at end of file) or -errno. */
    ssize_t (*pread)(struct wal_io *io, int handle, void *buf, size_t len, uint64_t offset);
    /* Writes the iovecs at offset; may be short; returns bytes written or -errno. */
    ssize_t (*pwritev)(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt, uint64_t offset);
    int (*fdatasync)(struct wal_io *io, int handle);
    /* Writes every byte of the iovecs at offset, then fdatasync: 0 only when all
     * of it is durable, else -errno (and nothing is known about what landed). */
    int (*write_sync)(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt, uint64_t offset);
    /* Returns the file size or -errno. */
    int64_t (*size)(struct wal_io *io, int handle);
    int (*truncate)(struct wal_io *io, int handle, uint64_t size);
    int (*close)(struct wal_io *io, int handle);
    int (*rename)(struct wal_io *io, const char *from, const char *to);
    int (*unlink)(struct wal_io *io, const char *path);
    /* Calls fn for every entry of dir whose name starts with prefix (in no
     * particular order); returns the number of entries passed to fn or -errno. */
    int (*list)(struct wal_io *io, const char *dir, const char *prefix, wal_io_list_fn fn, void *ctx);
    /* Makes the directory's entries (creates, renames, unlinks) durable. */
    int (*sync_dir)(struct wal_io *io, const char *dir);
    /* Creates dir and any missing parents (durably); 0 if it exists already. */
    int (*mkdirs)(struct wal_io *io, const char *dir);
    void (*destroy)(struct wal_io *io);
};

/* Log sink used to report the backend choice (same shape as wal_config.log). */
typedef void (*wal_io_log_fn)(void *log_ctx, const char *level, const char *message);

/* io_uring backend. Returns 0 and *out, or -errno when the kernel (or a seccomp
 * filter) refuses io_uring: io_uring_setup is probed and a NOP round-tripped, so
 * a backend that is returned works. */
int wal_io_uring_create(struct wal_io **out);
/* pwritev + fdatasync backend. Fails only when out of memory (-ENOMEM). */
int wal_io_posix_create(struct wal_io **out);
/* io_uring if it works here, else posix; the choice is reported through log
 * (NULL: JSON line on stderr) at level "info", or "warn" for the fallback. */
int wal_io_default_create(struct wal_io **out, wal_io_log_fn log, void *log_ctx);
/* Fills every operation of io with the plain-syscall implementation (name
 * "posix"). The io_uring backend starts from this and overrides the hot calls. */
void wal_io_posix_fill(struct wal_io *io);
/* Destroys any backend (closes nothing on the caller's behalf: close handles first). */
void wal_io_destroy(struct wal_io *io);

/* Shared by backends whose write_sync is "write everything, then fdatasync":
 * loops over short writes and EINTR. Returns 0 or -errno. Bounded: every round
 * writes at least one byte or fails, and a round that writes nothing is an error. */
int wal_io_pwritev_all(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt, uint64_t offset);

/* Thin call-through helpers so callers read as plain function calls. */
static inline int wal_io_open(struct wal_io *io, const char *path, int flags)
{
    return io->open(io, path, flags);
}

static inline ssize_t wal_io_pread(struct wal_io *io, int handle, void *buf, size_t len, uint64_t offset)
{
    return io->pread(io, handle, buf, len, offset);
}

static inline int wal_io_write_sync(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt,
                                    uint64_t offset)
{
    TK_ASSERT(iovcnt > 0 && iovcnt <= WAL_IO_IOV_MAX);
    return io->write_sync(io, handle, iov, iovcnt, offset);
}

static inline int wal_io_close(struct wal_io *io, int handle)
{
    return io->close(io, handle);
}

#endif
