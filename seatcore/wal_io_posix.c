/* wal_io_posix.c — the plain-syscall wal_io backend, and the backend-neutral
 * helpers (pwritev_all, default choice, destroy).
 *
 * What it owns: pwritev loops, fdatasync, and the directory operations every
 * real-disk backend shares (the io_uring backend reuses them through
 * wal_io_posix_fill and overrides only the hot calls).
 *
 * Why: io_uring is refused by some kernels and seccomp profiles (containers), and
 * the engine must still run there, so this backend is the always-available floor.
 * Handles are the file descriptors themselves: no table to bound or lock.
 *
 * Trade-off: write_sync is two syscalls (pwritev then fdatasync) instead of one
 * linked submission; at one call per group commit the difference is noise next
 * to the fdatasync itself. Creating a directory fsyncs its parent so the data
 * directory survives a crash right after first start. */
#include "wal_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tk_limits.h"

/* Bound on pwritev rounds for one call: each round writes >= 1 byte, and one
 * call never carries more than a ring's worth (< 4 GiB), but a disk that writes
 * a few bytes per round is broken; give up long before looping for ever. */
#define WAL_IO_WRITE_ROUNDS_MAX 100000u

static int posix_open(struct wal_io *io, const char *path, int flags)
{
    TK_ASSERT(io != NULL && path != NULL);
    TK_ASSERT((flags & ~(WAL_IO_OPEN_WRITE | WAL_IO_OPEN_TRUNCATE)) == 0);
    int os_flags = O_CLOEXEC;
    if (flags & WAL_IO_OPEN_WRITE)
        os_flags |= O_RDWR | O_CREAT;
    else
        os_flags |= O_RDONLY;
    if (flags & WAL_IO_OPEN_TRUNCATE)
        os_flags |= O_TRUNC;
    int fd = open(path, os_flags, 0644);
    return fd >= 0 ? fd : -errno;
}

static ssize_t posix_pread(struct wal_io *io, int handle, void *buf, size_t len, uint64_t offset)
{
    TK_ASSERT(io != NULL && handle >= 0);
    TK_ASSERT(buf != NULL || len == 0);
    for (int attempt = 0; attempt < 1000; attempt++) {
        ssize_t n = pread(handle, buf, len, (off_t)offset);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
    }
    return -EINTR;
}

static ssize_t posix_pwritev(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    TK_ASSERT(io != NULL && handle >= 0);
    TK_ASSERT(iovcnt > 0 && iovcnt <= WAL_IO_IOV_MAX);
    ssize_t n = pwritev(handle, iov, iovcnt, (off_t)offset);
    return n >= 0 ? n : -errno;
}

static int posix_fdatasync(struct wal_io *io, int handle)
{
    TK_ASSERT(io != NULL && handle >= 0);
    /* EINTR cannot happen for fdatasync on Linux regular files, but if it did the
     * sync did not run, so asking again is safe (unlike after EIO, see wal.c). */
    for (int attempt = 0; attempt < 1000; attempt++) {
        if (fdatasync(handle) == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
    return -EINTR;
}

int wal_io_pwritev_all(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    TK_ASSERT(io != NULL && iov != NULL);
    TK_ASSERT(iovcnt > 0 && iovcnt <= WAL_IO_IOV_MAX);
    struct iovec rest[WAL_IO_IOV_MAX];
    memcpy(rest, iov, sizeof(*iov) * (size_t)iovcnt);
    int first = 0;
    for (uint32_t round = 0; round < WAL_IO_WRITE_ROUNDS_MAX; round++) {
        while (first < iovcnt && rest[first].iov_len == 0)
            first++;
        if (first == iovcnt)
            return 0;
        ssize_t n = io->pwritev(io, handle, rest + first, iovcnt - first, offset);
        if (n == -EINTR || n == -EAGAIN)
            continue;
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO; /* no progress on a regular file: the device is gone */
        offset += (uint64_t)n;
        size_t left = (size_t)n;
        for (int i = first; i < iovcnt && left > 0; i++) {
            size_t take = left < rest[i].iov_len ? left : rest[i].iov_len;
            rest[i].iov_base = (uint8_t *)rest[i].iov_base + take;
            rest[i].iov_len -= take;
            left -= take;
        }
        TK_ASSERT(left == 0);
    }
    return -EIO;
}

static int posix_write_sync(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    int rc = wal_io_pwritev_all(io, handle, iov, iovcnt, offset);
    if (rc < 0)
        return rc;
    return io->fdatasync(io, handle);
}

static int64_t posix_size(struct wal_io *io, int handle)
{
    TK_ASSERT(io != NULL && handle >= 0);
    struct stat st;
    if (fstat(handle, &st) != 0)
        return -errno;
    TK_ASSERT(st.st_size >= 0);
    return (int64_t)st.st_size;
}

static int posix_truncate(struct wal_io *io, int handle, uint64_t size)
{
    TK_ASSERT(io != NULL && handle >= 0);
    TK_ASSERT(size <= (uint64_t)INT64_MAX);
    return ftruncate(handle, (off_t)size) == 0 ? 0 : -errno;
}

static int posix_close(struct wal_io *io, int handle)
{
    TK_ASSERT(io != NULL && handle >= 0);
    /* Linux releases the descriptor even when close reports EINTR: never retry. */
    return close(handle) == 0 ? 0 : -errno;
}

static int posix_rename(struct wal_io *io, const char *from, const char *to)
{
    TK_ASSERT(io != NULL && from != NULL && to != NULL);
    return rename(from, to) == 0 ? 0 : -errno;
}

static int posix_unlink(struct wal_io *io, const char *path)
{
    TK_ASSERT(io != NULL && path != NULL);
    return unlink(path) == 0 ? 0 : -errno;
}

static int posix_list(struct wal_io *io, const char *dir, const char *prefix, wal_io_list_fn fn, void *ctx)
{
    TK_ASSERT(io != NULL && dir != NULL && prefix != NULL);
    TK_ASSERT(fn != NULL);
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    size_t prefix_len = strlen(prefix);
    int count = 0;
    int rc = 0;
    for (;;) { /* bounded by the directory's entry count */
        errno = 0;
        struct dirent *entry = readdir(d);
        if (entry == NULL) {
            rc = errno ? -errno : 0;
            break;
        }
        if (strncmp(entry->d_name, prefix, prefix_len) != 0)
            continue;
        rc = fn(ctx, entry->d_name);
        if (rc < 0)
            break;
        count++;
    }
    closedir(d);
    return rc < 0 ? rc : count;
}

static int posix_sync_dir(struct wal_io *io, const char *dir)
{
    TK_ASSERT(io != NULL && dir != NULL);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Syncs the directory holding path (its parent) so a new entry in it is durable. */
static int posix_sync_parent(struct wal_io *io, const char *path)
{
    TK_ASSERT(io != NULL && path != NULL);
    char parent[TK_WAL_PATH_BYTES_MAX];
    size_t len = strlen(path);
    TK_ASSERT(len < sizeof(parent));
    memcpy(parent, path, len + 1);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        return posix_sync_dir(io, ".");
    if (slash == parent)
        slash[1] = '\0'; /* "/x": parent is "/" */
    else
        slash[0] = '\0';
    return posix_sync_dir(io, parent);
}

static int posix_mkdirs(struct wal_io *io, const char *dir)
{
    TK_ASSERT(io != NULL && dir != NULL);
    char path[TK_WAL_PATH_BYTES_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    /* One mkdir per component: bounded by the path length. */
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) == 0) {
            int rc = posix_sync_parent(io, path);
            if (rc < 0)
                return rc;
        } else if (errno != EEXIST) {
            return -errno;
        }
        path[i] = saved;
    }
    TK_ASSERT(strcmp(path, dir) == 0); /* every component restored */
    struct stat st;
    if (stat(dir, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static void posix_destroy(struct wal_io *io)
{
    TK_ASSERT(io != NULL);
    TK_ASSERT(strcmp(io->name, "posix") == 0);
    free(io);
}

void wal_io_posix_fill(struct wal_io *io)
{
    TK_ASSERT(io != NULL);
    io->name = "posix";
    io->open = posix_open;
    io->pread = posix_pread;
    io->pwritev = posix_pwritev;
    io->fdatasync = posix_fdatasync;
    io->write_sync = posix_write_sync;
    io->size = posix_size;
    io->truncate = posix_truncate;
    io->close = posix_close;
    io->rename = posix_rename;
    io->unlink = posix_unlink;
    io->list = posix_list;
    io->sync_dir = posix_sync_dir;
    io->mkdirs = posix_mkdirs;
    io->destroy = posix_destroy;
    TK_ASSERT(io->write_sync != NULL);
}

int wal_io_posix_create(struct wal_io **out)
{
    TK_ASSERT(out != NULL);
    struct wal_io *io = calloc(1, sizeof(*io));
    if (io == NULL)
        return -ENOMEM;
    wal_io_posix_fill(io);
    *out = io;
    return 0;
}

static void default_log(wal_io_log_fn log, void *log_ctx, const char *level, const char *message)
{
    if (log != NULL) {
        log(log_ctx, level, message);
        return;
    }
    fprintf(stderr, "{\"level\":\"%s\",\"component\":\"wal_io\",\"msg\":\"%s\"}\n", level, message);
}

int wal_io_default_create(struct wal_io **out, wal_io_log_fn log, void *log_ctx)
{
    TK_ASSERT(out != NULL);
    int rc = wal_io_uring_create(out);
    if (rc == 0) {
        default_log(log, log_ctx, "info", "wal io backend: io_uring");
        return 0;
    }
    char message[160];
    snprintf(message, sizeof(message), "io_uring refused (%s), wal io backend: pwritev+fdatasync", strerror(-rc));
    default_log(log, log_ctx, "warn", message);
    rc = wal_io_posix_create(out);
    TK_ASSERT(rc != 0 || *out != NULL);
    return rc;
}

void wal_io_destroy(struct wal_io *io)
{
    if (io == NULL)
        return;
    TK_ASSERT(io->destroy != NULL);
    io->destroy(io);
}
