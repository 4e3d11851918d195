/* wal_io_sim.c — the simulated disk (see wal_io_sim.h for the model).
 *
 * What it owns: inodes (live image, durable image, pending operations), the live
 * and durable namespaces, the directory set, the handle table, the fault plan and
 * the counters. Every bound is a fixed table size below; exceeding one is an
 * error return (ENOSPC, EMFILE, ENAMETOOLONG), never a crash.
 *
 * Why: crash safety cannot be tested on a real disk from inside a process; with
 * a disk that keeps exactly what was synced and can be told to lose, garble or
 * tear the rest, a test can crash the WAL at every sync point and check that
 * nothing acknowledged is lost.
 *
 * Trade-off: fdatasync copies the live image over the durable one (simple and
 * obviously right) instead of applying only the pending ranges; files in tests
 * are small. After a failed (not crashed) sync the pending operations stay
 * pending: what Linux does after EIO is less kind, but the WAL stops writing at
 * the first error anyway. */
#include "wal_io_sim.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SIM_INODES_MAX 256u
#define SIM_NAMES_MAX 256u
#define SIM_DIRS_MAX 64u
#define SIM_HANDLES_MAX 64u
#define SIM_PATH_BYTES 512u
#define SIM_FILE_BYTES_MAX (1ull << 32)
#define SIM_PENDING_MAX (1u << 20) /* unsynced operations per file */

struct sim_op {
    uint64_t offset; /* truncate: the new size */
    uint64_t len;
    uint8_t *data;   /* NULL: a truncate */
};

struct sim_image {
    uint8_t *bytes;
    uint64_t len;
    uint64_t cap;
};

struct sim_inode {
    bool used;
    struct sim_image live;
    struct sim_image durable;
    struct sim_op *pending;
    uint32_t pending_count;
    uint32_t pending_cap;
};

struct sim_name {
    bool used;
    int inode;
    char path[SIM_PATH_BYTES];
};

struct sim_handle {
    bool used;
    int inode;
};

struct wal_io_sim {
    struct wal_io base; /* first: a struct wal_io * is a struct wal_io_sim * */
    pthread_mutex_t lock;
    uint64_t rng;
    bool crashed;
    struct wal_io_sim_faults faults;
    uint64_t fault_writes_base;
    uint64_t fault_syncs_base;
    struct wal_io_sim_counters counters;
    struct sim_inode inodes[SIM_INODES_MAX];
    struct sim_name names[SIM_NAMES_MAX];         /* live namespace */
    struct sim_name durable_names[SIM_NAMES_MAX]; /* what survives a reboot */
    char dirs[SIM_DIRS_MAX][SIM_PATH_BYTES];
    uint32_t dir_count;
    struct sim_handle handles[SIM_HANDLES_MAX];
};

static struct wal_io_sim *sim_of(struct wal_io *io)
{
    TK_ASSERT(io != NULL);
    TK_ASSERT(strcmp(io->name, "sim") == 0);
    return (struct wal_io_sim *)io;
}

static uint64_t sim_rand(struct wal_io_sim *sim)
{
    TK_ASSERT(sim->rng != 0);
    uint64_t x = sim->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    sim->rng = x;
    return x * UINT64_C(2685821657736338717);
}

/* ---- images, inodes, names -------------------------------------------------- */

static int image_reserve(struct sim_image *image, uint64_t len)
{
    TK_ASSERT(image != NULL);
    TK_ASSERT(image->len <= image->cap);
    if (len > SIM_FILE_BYTES_MAX)
        return -EFBIG;
    if (len <= image->cap)
        return 0;
    uint64_t cap = image->cap ? image->cap : 4096;
    while (cap < len) /* bounded by SIM_FILE_BYTES_MAX */
        cap *= 2;
    uint8_t *bytes = realloc(image->bytes, cap);
    if (bytes == NULL)
        return -ENOMEM;
    memset(bytes + image->cap, 0, cap - image->cap);
    image->bytes = bytes;
    image->cap = cap;
    return 0;
}

/* Sets the image's length; bytes past the old end read as zeros (sparse). */
static int image_resize(struct sim_image *image, uint64_t len)
{
    int rc = image_reserve(image, len);
    if (rc < 0)
        return rc;
    if (len < image->len)
        memset(image->bytes + len, 0, image->len - len);
    image->len = len;
    return 0;
}

static int image_write(struct sim_image *image, uint64_t offset, const uint8_t *data, uint64_t len)
{
    TK_ASSERT(data != NULL || len == 0);
    uint64_t end = offset + len;
    if (end > image->len) {
        int rc = image_resize(image, end);
        if (rc < 0)
            return rc;
    }
    if (len)
        memcpy(image->bytes + offset, data, len);
    return 0;
}

static int image_copy(struct sim_image *to, const struct sim_image *from)
{
    int rc = image_resize(to, from->len);
    if (rc == 0 && from->len)
        memcpy(to->bytes, from->bytes, from->len);
    return rc;
}

static void inode_clear_pending(struct sim_inode *inode)
{
    for (uint32_t i = 0; i < inode->pending_count; i++)
        free(inode->pending[i].data);
    inode->pending_count = 0;
}

static int inode_add_pending(struct sim_inode *inode, uint64_t offset, const uint8_t *data, uint64_t len,
                             bool truncate)
{
    TK_ASSERT(inode->used);
    TK_ASSERT(truncate || data != NULL || len == 0);
    if (inode->pending_count == SIM_PENDING_MAX)
        return -ENOSPC;
    if (inode->pending_count == inode->pending_cap) {
        uint32_t cap = inode->pending_cap ? inode->pending_cap * 2 : 16;
        struct sim_op *ops = realloc(inode->pending, cap * sizeof(*ops));
        if (ops == NULL)
            return -ENOMEM;
        inode->pending = ops;
        inode->pending_cap = cap;
    }
    struct sim_op op = {offset, len, NULL};
    if (!truncate) {
        op.data = malloc(len ? len : 1);
        if (op.data == NULL)
            return -ENOMEM;
        memcpy(op.data, data, len);
    }
    inode->pending[inode->pending_count++] = op;
    return 0;
}

static void inode_free(struct sim_inode *inode)
{
    inode_clear_pending(inode);
    free(inode->pending);
    free(inode->live.bytes);
    free(inode->durable.bytes);
    memset(inode, 0, sizeof(*inode));
}

static int inode_alloc(struct wal_io_sim *sim)
{
    for (uint32_t i = 0; i < SIM_INODES_MAX; i++) {
        if (!sim->inodes[i].used) {
            memset(&sim->inodes[i], 0, sizeof(sim->inodes[i]));
            sim->inodes[i].used = true;
            return (int)i;
        }
    }
    return -ENOSPC;
}

/* Frees the inode when no name (live or durable) and no handle refers to it. */
static void inode_collect(struct wal_io_sim *sim, int index)
{
    TK_ASSERT(index >= 0 && (uint32_t)index < SIM_INODES_MAX);
    TK_ASSERT(sim->inodes[index].used);
    for (uint32_t i = 0; i < SIM_NAMES_MAX; i++) {
        if (sim->names[i].used && sim->names[i].inode == index)
            return;
        if (sim->durable_names[i].used && sim->durable_names[i].inode == index)
            return;
    }
    for (uint32_t i = 0; i < SIM_HANDLES_MAX; i++)
        if (sim->handles[i].used && sim->handles[i].inode == index)
            return;
    inode_free(&sim->inodes[index]);
}

static struct sim_name *name_find(struct sim_name *names, const char *path)
{
    for (uint32_t i = 0; i < SIM_NAMES_MAX; i++)
        if (names[i].used && strcmp(names[i].path, path) == 0)
            return &names[i];
    return NULL;
}

static struct sim_name *name_add(struct sim_name *names, const char *path, int inode)
{
    TK_ASSERT(strlen(path) < SIM_PATH_BYTES);
    for (uint32_t i = 0; i < SIM_NAMES_MAX; i++) {
        if (!names[i].used) {
            names[i].used = true;
            names[i].inode = inode;
            strcpy(names[i].path, path);
            return &names[i];
        }
    }
    return NULL;
}

/* Length of the directory part of path (up to the last '/'), 0 if none. */
static size_t dir_part_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash == NULL ? 0 : (size_t)(slash - path);
}

static bool in_dir(const char *path, const char *dir, size_t dir_len)
{
    return dir_part_len(path) == dir_len && strncmp(path, dir, dir_len) == 0;
}

static size_t trimmed_len(const char *dir)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    return len;
}

static bool dir_exists(struct wal_io_sim *sim, const char *dir, size_t len)
{
    if (len == 0)
        return true; /* relative names live in "." */
    for (uint32_t i = 0; i < sim->dir_count; i++)
        if (strlen(sim->dirs[i]) == len && strncmp(sim->dirs[i], dir, len) == 0)
            return true;
    return false;
}

static struct sim_inode *handle_inode(struct wal_io_sim *sim, int handle)
{
    if (handle < 0 || (uint32_t)handle >= SIM_HANDLES_MAX || !sim->handles[handle].used)
        return NULL;
    struct sim_inode *inode = &sim->inodes[sim->handles[handle].inode];
    TK_ASSERT(inode->used);
    return inode;
}

/* ---- the wal_io operations -------------------------------------------------- */

static int sim_open_locked(struct wal_io_sim *sim, const char *path, int flags)
{
    TK_ASSERT(!sim->crashed);
    TK_ASSERT(strlen(path) < SIM_PATH_BYTES);
    struct sim_name *name = name_find(sim->names, path);
    if (name == NULL) {
        if (!(flags & WAL_IO_OPEN_WRITE))
            return -ENOENT;
        if (!dir_exists(sim, path, dir_part_len(path)))
            return -ENOENT;
        int inode = inode_alloc(sim);
        if (inode < 0)
            return inode;
        name = name_add(sim->names, path, inode);
        if (name == NULL) {
            inode_free(&sim->inodes[inode]);
            return -ENOSPC;
        }
    }
    for (uint32_t i = 0; i < SIM_HANDLES_MAX; i++) {
        if (sim->handles[i].used)
            continue;
        struct sim_inode *inode = &sim->inodes[name->inode];
        if ((flags & WAL_IO_OPEN_TRUNCATE) && inode->live.len > 0) {
            int rc = inode_add_pending(inode, 0, NULL, 0, true);
            if (rc < 0)
                return rc;
            image_resize(&inode->live, 0);
        }
        sim->handles[i] = (struct sim_handle){true, name->inode};
        return (int)i;
    }
    return -EMFILE;
}

static int sim_open(struct wal_io *io, const char *path, int flags)
{
    struct wal_io_sim *sim = sim_of(io);
    TK_ASSERT(path != NULL);
    TK_ASSERT((flags & ~(WAL_IO_OPEN_WRITE | WAL_IO_OPEN_TRUNCATE)) == 0);
    if (strlen(path) >= SIM_PATH_BYTES)
        return -ENAMETOOLONG;
    pthread_mutex_lock(&sim->lock);
    int rc = sim->crashed ? -EIO : sim_open_locked(sim, path, flags);
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

static ssize_t sim_pread(struct wal_io *io, int handle, void *buf, size_t len, uint64_t offset)
{
    struct wal_io_sim *sim = sim_of(io);
    TK_ASSERT(buf != NULL || len == 0);
    pthread_mutex_lock(&sim->lock);
    struct sim_inode *inode = handle_inode(sim, handle);
    ssize_t rc;
    if (sim->crashed) {
        rc = -EIO;
    } else if (inode == NULL) {
        rc = -EBADF;
    } else {
        uint64_t avail = offset < inode->live.len ? inode->live.len - offset : 0;
        rc = (ssize_t)(avail < len ? avail : len);
        if (rc > 0)
            memcpy(buf, inode->live.bytes + offset, (size_t)rc);
    }
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

/* Gathers the iovecs (at most `limit` bytes) into one buffer. */
static uint8_t *gather(const struct iovec *iov, int iovcnt, uint64_t limit, uint64_t *len)
{
    TK_ASSERT(iov != NULL && len != NULL);
    TK_ASSERT(iovcnt > 0 && iovcnt <= WAL_IO_IOV_MAX);
    uint64_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    total = total < limit ? total : limit;
    uint8_t *data = malloc(total ? total : 1);
    if (data == NULL)
        return NULL;
    uint64_t at = 0;
    for (int i = 0; i < iovcnt && at < total; i++) {
        uint64_t take = iov[i].iov_len < total - at ? iov[i].iov_len : total - at;
        memcpy(data + at, iov[i].iov_base, take);
        at += take;
    }
    *len = total;
    return data;
}

static ssize_t sim_pwritev_locked(struct wal_io_sim *sim, int handle, const struct iovec *iov, int iovcnt,
                                  uint64_t offset)
{
    TK_ASSERT(!sim->crashed);
    TK_ASSERT(iov != NULL && iovcnt > 0);
    struct sim_inode *inode = handle_inode(sim, handle);
    if (inode == NULL)
        return -EBADF;
    sim->counters.writes++;
    if (sim->faults.fail_write_at && sim->counters.writes - sim->fault_writes_base == sim->faults.fail_write_at)
        return sim->faults.fail_write_errno ? -sim->faults.fail_write_errno : -EIO;
    bool short_write =
        sim->faults.short_write_per_mille && sim_rand(sim) % 1000 < sim->faults.short_write_per_mille;
    uint64_t len = 0;
    uint8_t *data = gather(iov, iovcnt, UINT64_MAX, &len);
    if (data == NULL)
        return -ENOMEM;
    if (short_write && len > 1) {
        len = 1 + sim_rand(sim) % (len - 1);
        sim->counters.short_writes++;
    }
    int rc = inode_add_pending(inode, offset, data, len, false);
    if (rc == 0)
        rc = image_write(&inode->live, offset, data, len);
    free(data);
    if (rc < 0)
        return rc;
    sim->counters.bytes_written += len;
    return (ssize_t)len;
}

static ssize_t sim_pwritev(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    struct wal_io_sim *sim = sim_of(io);
    TK_ASSERT(iov != NULL && iovcnt > 0 && iovcnt <= WAL_IO_IOV_MAX);
    pthread_mutex_lock(&sim->lock);
    ssize_t rc = sim->crashed ? -EIO : sim_pwritev_locked(sim, handle, iov, iovcnt, offset);
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

/* Counts a sync and applies the fault plan; returns 0 if the sync may happen. */
static int sim_sync_fault(struct wal_io_sim *sim)
{
    TK_ASSERT(!sim->crashed);
    sim->counters.syncs++;
    uint64_t index = sim->counters.syncs - sim->fault_syncs_base;
    if (sim->faults.crash_at_sync && index == sim->faults.crash_at_sync) {
        sim->crashed = true;
        return -EIO;
    }
    if (sim->faults.fail_sync_at && index == sim->faults.fail_sync_at)
        return sim->faults.fail_sync_errno ? -sim->faults.fail_sync_errno : -EIO;
    return 0;
}

static int sim_fdatasync(struct wal_io *io, int handle)
{
    struct wal_io_sim *sim = sim_of(io);
    pthread_mutex_lock(&sim->lock);
    struct sim_inode *inode = handle_inode(sim, handle);
    int rc = sim->crashed ? -EIO : inode == NULL ? -EBADF : sim_sync_fault(sim);
    if (rc == 0) {
        rc = image_copy(&inode->durable, &inode->live);
        if (rc == 0)
            inode_clear_pending(inode);
    }
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

static int sim_write_sync(struct wal_io *io, int handle, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    TK_ASSERT(iov != NULL && iovcnt > 0);
    int rc = wal_io_pwritev_all(io, handle, iov, iovcnt, offset);
    return rc < 0 ? rc : io->fdatasync(io, handle);
}

static int64_t sim_size(struct wal_io *io, int handle)
{
    struct wal_io_sim *sim = sim_of(io);
    pthread_mutex_lock(&sim->lock);
    struct sim_inode *inode = handle_inode(sim, handle);
    int64_t rc = sim->crashed ? -EIO : inode == NULL ? -EBADF : (int64_t)inode->live.len;
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

static int sim_truncate(struct wal_io *io, int handle, uint64_t size)
{
    struct wal_io_sim *sim = sim_of(io);
    pthread_mutex_lock(&sim->lock);
    struct sim_inode *inode = handle_inode(sim, handle);
    int rc = sim->crashed ? -EIO : inode == NULL ? -EBADF : inode_add_pending(inode, size, NULL, 0, true);
    if (rc == 0)
        rc = image_resize(&inode->live, size);
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

static int sim_close(struct wal_io *io, int handle)
{
    struct wal_io_sim *sim = sim_of(io);
    pthread_mutex_lock(&sim->lock);
    struct sim_inode *inode = handle_inode(sim, handle);
    int rc = inode == NULL ? -EBADF : sim->crashed ? -EIO : 0;
    if (inode != NULL) { /* released even when crashed, so nothing leaks */
        int index = sim->handles[handle].inode;
        sim->handles[handle].used = false;
        inode_collect(sim, index);
    }
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

static int sim_rename_locked(struct wal_io_sim *sim, const char *from, const char *to)
{
    TK_ASSERT(!sim->crashed);
    TK_ASSERT(strlen(to) < SIM_PATH_BYTES);
    struct sim_name *source = name_find(sim->names, from);
    if (source == NULL)
        return -ENOENT;
    if (!dir_exists(sim, to, dir_part_len(to)))
        return -ENOENT;
    struct sim_name *target = name_find(sim->names, to);
    if (target == source)
        return 0;
    if (target != NULL) {
        int replaced = target->inode;
        target->used = false;
        inode_collect(sim, replaced);
    }
    strcpy(source->path, to);
    return 0;
}

static int sim_rename(struct wal_io *io, const char *from, const char *to)
{
    struct wal_io_sim *sim = sim_of(io);
    TK_ASSERT(from != NULL && to != NULL);
    if (strlen(to) >= SIM_PATH_BYTES)
        return -ENAMETOOLONG;
    pthread_mutex_lock(&sim->lock);
    int rc = sim->crashed ? -EIO : sim_rename_locked(sim, from, to);
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

static int sim_unlink(struct wal_io *io, const char *path)
{
    struct wal_io_sim *sim = sim_of(io);
    TK_ASSERT(path != NULL);
    pthread_mutex_lock(&sim->lock);
    struct sim_name *name = sim->crashed ? NULL : name_find(sim->names, path);
    int rc = sim->crashed ? -EIO : name == NULL ? -ENOENT : 0;
    if (name != NULL) {
        name->used = false;
        inode_collect(sim, name->inode);
    }
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

static int sim_list(struct wal_io *io, const char *dir, const char *prefix, wal_io_list_fn fn, void *ctx)
{
    struct wal_io_sim *sim = sim_of(io);
    TK_ASSERT(dir != NULL && prefix != NULL && fn != NULL);
    /* Names are copied out first so fn runs without the lock (it may call the sim). */
    char (*found)[SIM_PATH_BYTES] = malloc(SIM_NAMES_MAX * SIM_PATH_BYTES);
    if (found == NULL)
        return -ENOMEM;
    uint32_t count = 0;
    size_t dir_len = trimmed_len(dir);
    pthread_mutex_lock(&sim->lock);
    int rc = sim->crashed ? -EIO : dir_exists(sim, dir, dir_len) ? 0 : -ENOENT;
    for (uint32_t i = 0; rc == 0 && i < SIM_NAMES_MAX; i++) {
        const struct sim_name *name = &sim->names[i];
        if (!name->used || !in_dir(name->path, dir, dir_len))
            continue;
        const char *base = name->path + dir_len + 1;
        if (strncmp(base, prefix, strlen(prefix)) == 0)
            strcpy(found[count++], base);
    }
    pthread_mutex_unlock(&sim->lock);
    for (uint32_t i = 0; rc == 0 && i < count; i++)
        rc = fn(ctx, found[i]);
    free(found);
    return rc < 0 ? rc : (int)count;
}

static int sim_sync_dir(struct wal_io *io, const char *dir)
{
    struct wal_io_sim *sim = sim_of(io);
    TK_ASSERT(dir != NULL);
    size_t dir_len = trimmed_len(dir);
    pthread_mutex_lock(&sim->lock);
    int rc = sim->crashed ? -EIO : dir_exists(sim, dir, dir_len) ? sim_sync_fault(sim) : -ENOENT;
    if (rc == 0) {
        sim->counters.dir_syncs++;
        /* The directory's durable entries become exactly its live ones. */
        for (uint32_t i = 0; i < SIM_NAMES_MAX; i++) {
            struct sim_name *old = &sim->durable_names[i];
            if (old->used && in_dir(old->path, dir, dir_len)) {
                old->used = false;
                inode_collect(sim, old->inode);
            }
        }
        for (uint32_t i = 0; i < SIM_NAMES_MAX && rc == 0; i++) {
            const struct sim_name *live = &sim->names[i];
            if (!live->used || !in_dir(live->path, dir, dir_len))
                continue;
            if (name_add(sim->durable_names, live->path, live->inode) == NULL)
                rc = -ENOSPC;
        }
    }
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

static int sim_mkdirs(struct wal_io *io, const char *dir)
{
    struct wal_io_sim *sim = sim_of(io);
    TK_ASSERT(dir != NULL);
    size_t len = trimmed_len(dir);
    if (len == 0 || len >= SIM_PATH_BYTES)
        return -ENAMETOOLONG;
    pthread_mutex_lock(&sim->lock);
    int rc = sim->crashed ? -EIO : 0;
    /* Every prefix ending before a '/' (and the whole path) is a directory. */
    for (size_t i = 1; rc == 0 && i <= len; i++) {
        if (i < len && dir[i] != '/')
            continue;
        if (dir_exists(sim, dir, i))
            continue;
        if (sim->dir_count == SIM_DIRS_MAX) {
            rc = -ENOSPC;
            break;
        }
        memcpy(sim->dirs[sim->dir_count], dir, i);
        sim->dirs[sim->dir_count][i] = '\0';
        sim->dir_count++;
    }
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

static void sim_destroy(struct wal_io *io)
{
    struct wal_io_sim *sim = sim_of(io);
    for (uint32_t i = 0; i < SIM_INODES_MAX; i++)
        if (sim->inodes[i].used)
            inode_free(&sim->inodes[i]);
    pthread_mutex_destroy(&sim->lock);
    free(sim);
}

/* ---- the sim's own API ------------------------------------------------------ */

struct wal_io_sim *wal_io_sim_create(uint64_t seed)
{
    struct wal_io_sim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return NULL;
    pthread_mutex_init(&sim->lock, NULL);
    sim->rng = seed ? seed : 1;
    sim->base = (struct wal_io){
        .name = "sim", .open = sim_open, .pread = sim_pread, .pwritev = sim_pwritev,
        .fdatasync = sim_fdatasync, .write_sync = sim_write_sync, .size = sim_size, .truncate = sim_truncate,
        .close = sim_close, .rename = sim_rename, .unlink = sim_unlink, .list = sim_list,
        .sync_dir = sim_sync_dir, .mkdirs = sim_mkdirs, .destroy = sim_destroy,
    };
    TK_ASSERT(sim->base.write_sync != NULL);
    return sim;
}

struct wal_io *wal_io_sim_io(struct wal_io_sim *sim)
{
    TK_ASSERT(sim != NULL);
    TK_ASSERT(strcmp(sim->base.name, "sim") == 0);
    return &sim->base;
}

void wal_io_sim_set_faults(struct wal_io_sim *sim, const struct wal_io_sim_faults *faults)
{
    TK_ASSERT(sim != NULL && faults != NULL);
    TK_ASSERT(faults->short_write_per_mille <= 1000);
    pthread_mutex_lock(&sim->lock);
    sim->faults = *faults;
    sim->fault_writes_base = sim->counters.writes;
    sim->fault_syncs_base = sim->counters.syncs;
    pthread_mutex_unlock(&sim->lock);
}

void wal_io_sim_crash(struct wal_io_sim *sim)
{
    TK_ASSERT(sim != NULL);
    pthread_mutex_lock(&sim->lock);
    sim->crashed = true;
    pthread_mutex_unlock(&sim->lock);
}

bool wal_io_sim_crashed(struct wal_io_sim *sim)
{
    TK_ASSERT(sim != NULL);
    pthread_mutex_lock(&sim->lock);
    bool crashed = sim->crashed;
    pthread_mutex_unlock(&sim->lock);
    return crashed;
}

/* Applies one pending operation to the durable image according to its fate. */
static void reboot_apply(struct wal_io_sim *sim, struct sim_image *image, const struct sim_op *op,
                         enum wal_io_sim_fate fate)
{
    TK_ASSERT(fate > WAL_IO_SIM_FATE_RANDOM && fate < WAL_IO_SIM_FATE_COUNT);
    if (op->data == NULL) { /* a truncate lands whole or not at all */
        if (fate != WAL_IO_SIM_FATE_DROP)
            TK_ASSERT(image_resize(image, op->offset) == 0);
        return;
    }
    uint64_t len = op->len;
    switch (fate) {
    case WAL_IO_SIM_FATE_APPLY:
        TK_ASSERT(image_write(image, op->offset, op->data, len) == 0);
        break;
    case WAL_IO_SIM_FATE_DROP:
        break;
    case WAL_IO_SIM_FATE_GARBLE:
    case WAL_IO_SIM_FATE_ZERO:
        for (uint64_t i = 0; i < len; i++)
            op->data[i] = fate == WAL_IO_SIM_FATE_ZERO ? 0 : (uint8_t)sim_rand(sim);
        TK_ASSERT(image_write(image, op->offset, op->data, len) == 0);
        break;
    case WAL_IO_SIM_FATE_TORN:
        TK_ASSERT(image_write(image, op->offset, op->data, len ? sim_rand(sim) % len : 0) == 0);
        break;
    default:
        TK_UNREACHABLE();
    }
}

void wal_io_sim_reboot(struct wal_io_sim *sim, uint64_t seed, enum wal_io_sim_fate mode)
{
    TK_ASSERT(sim != NULL);
    TK_ASSERT(mode >= WAL_IO_SIM_FATE_RANDOM && mode < WAL_IO_SIM_FATE_COUNT);
    pthread_mutex_lock(&sim->lock);
    sim->rng = seed ? seed : 1;
    for (uint32_t h = 0; h < SIM_HANDLES_MAX; h++)
        sim->handles[h].used = false;
    memcpy(sim->names, sim->durable_names, sizeof(sim->names));
    for (uint32_t i = 0; i < SIM_INODES_MAX; i++) {
        struct sim_inode *inode = &sim->inodes[i];
        if (!inode->used)
            continue;
        for (uint32_t p = 0; p < inode->pending_count; p++) {
            enum wal_io_sim_fate fate = mode;
            if (fate == WAL_IO_SIM_FATE_RANDOM)
                fate = (enum wal_io_sim_fate)(1 + sim_rand(sim) % (WAL_IO_SIM_FATE_COUNT - 1));
            reboot_apply(sim, &inode->durable, &inode->pending[p], fate);
        }
        inode_clear_pending(inode);
        TK_ASSERT(image_copy(&inode->live, &inode->durable) == 0);
        inode_collect(sim, (int)i);
    }
    sim->crashed = false;
    memset(&sim->faults, 0, sizeof(sim->faults));
    sim->counters.reboots++;
    pthread_mutex_unlock(&sim->lock);
}

void wal_io_sim_counters(struct wal_io_sim *sim, struct wal_io_sim_counters *out)
{
    TK_ASSERT(sim != NULL && out != NULL);
    pthread_mutex_lock(&sim->lock);
    *out = sim->counters;
    pthread_mutex_unlock(&sim->lock);
}

int64_t wal_io_sim_file_size(struct wal_io_sim *sim, const char *path)
{
    TK_ASSERT(sim != NULL && path != NULL);
    pthread_mutex_lock(&sim->lock);
    struct sim_name *name = name_find(sim->names, path);
    int64_t rc = name == NULL ? -ENOENT : (int64_t)sim->inodes[name->inode].live.len;
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

int wal_io_sim_flip(struct wal_io_sim *sim, const char *path, uint64_t offset, uint8_t mask)
{
    TK_ASSERT(sim != NULL && path != NULL);
    TK_ASSERT(mask != 0);
    pthread_mutex_lock(&sim->lock);
    struct sim_name *name = name_find(sim->names, path);
    int rc = name == NULL ? -ENOENT : 0;
    if (rc == 0) {
        struct sim_inode *inode = &sim->inodes[name->inode];
        if (offset < inode->live.len)
            inode->live.bytes[offset] ^= mask;
        if (offset < inode->durable.len)
            inode->durable.bytes[offset] ^= mask;
        rc = offset < inode->live.len || offset < inode->durable.len ? 0 : -EINVAL;
    }
    pthread_mutex_unlock(&sim->lock);
    return rc;
}

int64_t wal_io_sim_read_durable(struct wal_io_sim *sim, const char *path, uint64_t offset, void *buf, uint64_t len)
{
    TK_ASSERT(sim != NULL && path != NULL);
    TK_ASSERT(buf != NULL || len == 0);
    pthread_mutex_lock(&sim->lock);
    struct sim_name *name = name_find(sim->names, path);
    int64_t rc = -ENOENT;
    if (name != NULL) {
        const struct sim_image *image = &sim->inodes[name->inode].durable;
        uint64_t avail = offset < image->len ? image->len - offset : 0;
        rc = (int64_t)(avail < len ? avail : len);
        if (rc > 0)
            memcpy(buf, image->bytes + offset, (size_t)rc);
    }
    pthread_mutex_unlock(&sim->lock);
    return rc;
}
