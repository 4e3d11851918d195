/* test_wal_io_sim.c — the simulated disk's own semantics (seatcore/wal_io_sim.c):
 * what is durable after which sync, what a reboot does to unsynced writes, the
 * directory namespace, the fault plan, short writes and determinism. The WAL
 * crash tests trust these, so they are pinned down here first. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "wal_io_sim.h"

struct disk {
    struct wal_io_sim *sim;
    struct wal_io *io;
};

static struct disk disk_new(uint64_t seed)
{
    struct disk d;
    d.sim = wal_io_sim_create(seed);
    cr_assert_not_null(d.sim);
    d.io = wal_io_sim_io(d.sim);
    cr_assert_eq(d.io->mkdirs(d.io, "/data/wal"), 0);
    return d;
}

static ssize_t write_at(struct disk *d, int handle, const void *data, size_t len, uint64_t offset)
{
    struct iovec iov = {(void *)data, len};
    return d->io->pwritev(d->io, handle, &iov, 1, offset);
}

static int write_sync_at(struct disk *d, int handle, const void *data, size_t len, uint64_t offset)
{
    struct iovec iov = {(void *)data, len};
    return d->io->write_sync(d->io, handle, &iov, 1, offset);
}

static void read_all(struct disk *d, const char *path, char *out, size_t cap, ssize_t *len)
{
    int handle = d->io->open(d->io, path, WAL_IO_OPEN_READ);
    cr_assert_geq(handle, 0, "open %s: %d", path, handle);
    *len = d->io->pread(d->io, handle, out, cap, 0);
    cr_assert_geq(*len, 0);
    d->io->close(d->io, handle);
}

Test(wal_io_sim, read_your_writes_and_size)
{
    struct disk d = disk_new(1);
    int h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE);
    cr_assert_geq(h, 0);
    cr_assert_eq(write_at(&d, h, "hello", 5, 0), 5);
    cr_assert_eq(write_at(&d, h, "xy", 2, 10), 2); /* a hole reads as zeros */
    cr_assert_eq(d.io->size(d.io, h), 12);
    char buf[32];
    cr_assert_eq(d.io->pread(d.io, h, buf, sizeof(buf), 0), 12);
    cr_assert(memcmp(buf, "hello\0\0\0\0\0xy", 12) == 0);
    cr_assert_eq(d.io->pread(d.io, h, buf, sizeof(buf), 12), 0, "end of file reads 0");
    cr_assert_eq(d.io->truncate(d.io, h, 3), 0);
    cr_assert_eq(d.io->size(d.io, h), 3);
    cr_assert_eq(d.io->close(d.io, h), 0);
    cr_assert_eq(d.io->open(d.io, "/data/wal/missing", WAL_IO_OPEN_READ), -ENOENT);
    cr_assert_eq(d.io->open(d.io, "/nodir/x", WAL_IO_OPEN_WRITE), -ENOENT, "parent must exist");
    wal_io_destroy(d.io);
}

Test(wal_io_sim, synced_data_survives_unsynced_data_meets_its_fate)
{
    const enum wal_io_sim_fate fates[] = {WAL_IO_SIM_FATE_APPLY, WAL_IO_SIM_FATE_DROP, WAL_IO_SIM_FATE_ZERO,
                                          WAL_IO_SIM_FATE_GARBLE, WAL_IO_SIM_FATE_TORN};
    for (size_t f = 0; f < sizeof(fates) / sizeof(fates[0]); f++) {
        struct disk d = disk_new(7);
        int h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE);
        cr_assert_eq(d.io->sync_dir(d.io, "/data/wal"), 0);
        cr_assert_eq(write_sync_at(&d, h, "durable!", 8, 0), 0);
        char tail[64];
        memset(tail, 'T', sizeof(tail));
        cr_assert_eq(write_at(&d, h, tail, sizeof(tail), 8), (ssize_t)sizeof(tail));
        wal_io_sim_reboot(d.sim, 99, fates[f]);
        char buf[128];
        ssize_t len;
        read_all(&d, "/data/wal/a", buf, sizeof(buf), &len);
        cr_assert(len >= 8 && memcmp(buf, "durable!", 8) == 0, "fate %d: synced bytes kept", fates[f]);
        switch (fates[f]) {
        case WAL_IO_SIM_FATE_APPLY:
            cr_assert(len == 72 && memcmp(buf + 8, tail, 64) == 0);
            break;
        case WAL_IO_SIM_FATE_DROP:
            cr_assert_eq(len, 8);
            break;
        case WAL_IO_SIM_FATE_ZERO:
            cr_assert_eq(len, 72);
            for (int i = 8; i < 72; i++)
                cr_assert_eq(buf[i], 0);
            break;
        case WAL_IO_SIM_FATE_GARBLE:
            cr_assert(len == 72 && memcmp(buf + 8, tail, 64) != 0);
            break;
        case WAL_IO_SIM_FATE_TORN:
            cr_assert(len >= 8 && len < 72, "torn: only a prefix, got %zd", len);
            for (ssize_t i = 8; i < len; i++)
                cr_assert_eq(buf[i], 'T');
            break;
        default:
            cr_assert_fail();
        }
        wal_io_destroy(d.io);
    }
}

Test(wal_io_sim, new_file_needs_a_directory_sync)
{
    struct disk d = disk_new(3);
    int h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE);
    cr_assert_eq(write_sync_at(&d, h, "x", 1, 0), 0, "data synced, directory not");
    int g = d.io->open(d.io, "/data/wal/b", WAL_IO_OPEN_WRITE);
    cr_assert_eq(d.io->sync_dir(d.io, "/data/wal"), 0);
    cr_assert_eq(write_sync_at(&d, g, "y", 1, 0), 0);
    int h2 = d.io->open(d.io, "/data/wal/c", WAL_IO_OPEN_WRITE);
    cr_assert_eq(d.io->rename(d.io, "/data/wal/b", "/data/wal/renamed"), 0);
    (void)h2;
    wal_io_sim_reboot(d.sim, 1, WAL_IO_SIM_FATE_APPLY);
    /* a and b were synced in the directory at the sync_dir; c and the rename were not. */
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/a"), 1);
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/b"), 1);
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/c"), -ENOENT);
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/renamed"), -ENOENT);
    /* Now rename and unlink, durably. */
    cr_assert_eq(d.io->rename(d.io, "/data/wal/b", "/data/wal/renamed"), 0);
    cr_assert_eq(d.io->unlink(d.io, "/data/wal/a"), 0);
    cr_assert_eq(d.io->sync_dir(d.io, "/data/wal"), 0);
    wal_io_sim_reboot(d.sim, 1, WAL_IO_SIM_FATE_APPLY);
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/a"), -ENOENT);
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/b"), -ENOENT);
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/renamed"), 1);
    wal_io_destroy(d.io);
}

struct names {
    int count;
    char seen[8][64];
};

static int on_name(void *ctx, const char *name)
{
    struct names *names = ctx;
    cr_assert_lt(names->count, 8);
    snprintf(names->seen[names->count++], 64, "%s", name);
    return 0;
}

Test(wal_io_sim, list_by_prefix_in_one_directory)
{
    struct disk d = disk_new(3);
    cr_assert_eq(d.io->mkdirs(d.io, "/data/wal/sub"), 0);
    const char *paths[] = {"/data/wal/wal-1.log", "/data/wal/wal-2.log", "/data/wal/snap-1", "/data/wal/sub/wal-3.log"};
    for (int i = 0; i < 4; i++) {
        int h = d.io->open(d.io, paths[i], WAL_IO_OPEN_WRITE);
        cr_assert_geq(h, 0);
        d.io->close(d.io, h);
    }
    struct names names = {0};
    cr_assert_eq(d.io->list(d.io, "/data/wal/", "wal-", on_name, &names), 2);
    cr_assert_eq(names.count, 2);
    for (int i = 0; i < 2; i++)
        cr_assert(strcmp(names.seen[i], "wal-1.log") == 0 || strcmp(names.seen[i], "wal-2.log") == 0);
    cr_assert_eq(d.io->list(d.io, "/nope", "", on_name, &names), -ENOENT);
    wal_io_destroy(d.io);
}

Test(wal_io_sim, fail_nth_write_and_nth_sync)
{
    struct disk d = disk_new(5);
    int h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE);
    struct wal_io_sim_faults faults = {.fail_write_at = 2, .fail_write_errno = ENOSPC, .fail_sync_at = 2,
                                       .fail_sync_errno = EIO};
    wal_io_sim_set_faults(d.sim, &faults);
    cr_assert_eq(write_at(&d, h, "a", 1, 0), 1);
    cr_assert_eq(write_at(&d, h, "b", 1, 1), -ENOSPC);
    cr_assert_eq(d.io->size(d.io, h), 1, "a failed write applies nothing");
    cr_assert_eq(write_at(&d, h, "c", 1, 1), 1);
    cr_assert_eq(d.io->fdatasync(d.io, h), 0);
    cr_assert_eq(write_at(&d, h, "d", 1, 2), 1);
    cr_assert_eq(d.io->fdatasync(d.io, h), -EIO);
    cr_assert_not(wal_io_sim_crashed(d.sim), "a failed sync is not a crash");
    struct wal_io_sim_counters counters;
    wal_io_sim_counters(d.sim, &counters);
    cr_assert_eq(counters.writes, 4);
    cr_assert_eq(counters.syncs, 2);
    wal_io_sim_reboot(d.sim, 1, WAL_IO_SIM_FATE_DROP);
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/a"), -ENOENT, "never synced in its directory");
    wal_io_destroy(d.io);
}

Test(wal_io_sim, crash_at_nth_sync_then_everything_fails_until_reboot)
{
    struct disk d = disk_new(5);
    int h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE);
    cr_assert_eq(d.io->sync_dir(d.io, "/data/wal"), 0);
    struct wal_io_sim_faults faults = {.crash_at_sync = 2};
    wal_io_sim_set_faults(d.sim, &faults);
    cr_assert_eq(write_sync_at(&d, h, "one", 3, 0), 0);
    cr_assert_eq(write_sync_at(&d, h, "two", 3, 3), -EIO, "the crashing sync");
    cr_assert(wal_io_sim_crashed(d.sim));
    cr_assert_eq(write_at(&d, h, "x", 1, 6), -EIO);
    cr_assert_eq(d.io->fdatasync(d.io, h), -EIO);
    cr_assert_eq(d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_READ), -EIO);
    cr_assert_eq(d.io->sync_dir(d.io, "/data/wal"), -EIO);
    wal_io_sim_reboot(d.sim, 11, WAL_IO_SIM_FATE_DROP);
    cr_assert_not(wal_io_sim_crashed(d.sim));
    char buf[16];
    ssize_t len;
    read_all(&d, "/data/wal/a", buf, sizeof(buf), &len);
    cr_assert(len == 3 && memcmp(buf, "one", 3) == 0, "the crashing sync made nothing durable");
    wal_io_destroy(d.io);
}

Test(wal_io_sim, short_writes_are_completed_by_write_sync)
{
    struct disk d = disk_new(77);
    int h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE);
    struct wal_io_sim_faults faults = {.short_write_per_mille = 1000};
    wal_io_sim_set_faults(d.sim, &faults);
    char data[4096];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7);
    ssize_t n = write_at(&d, h, data, sizeof(data), 0);
    cr_assert(n > 0 && n < (ssize_t)sizeof(data), "short: %zd", n);
    struct iovec iov[2] = {{data, 1000}, {data + 1000, sizeof(data) - 1000}};
    cr_assert_eq(d.io->write_sync(d.io, h, iov, 2, 0), 0);
    char back[4096];
    cr_assert_eq(d.io->pread(d.io, h, back, sizeof(back), 0), (ssize_t)sizeof(back));
    cr_assert(memcmp(back, data, sizeof(data)) == 0);
    struct wal_io_sim_counters counters;
    wal_io_sim_counters(d.sim, &counters);
    cr_assert_geq(counters.short_writes, 2);
    wal_io_destroy(d.io);
}

/* Same seed and same operations: the same disk after a random reboot. */
Test(wal_io_sim, reboot_is_deterministic)
{
    char images[2][4096];
    ssize_t lens[2];
    for (int round = 0; round < 2; round++) {
        struct disk d = disk_new(1234);
        int h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE);
        d.io->sync_dir(d.io, "/data/wal");
        for (int i = 0; i < 32; i++) {
            char chunk[64];
            memset(chunk, 'a' + i % 26, sizeof(chunk));
            write_at(&d, h, chunk, sizeof(chunk), (uint64_t)i * 64);
        }
        wal_io_sim_reboot(d.sim, 4321, WAL_IO_SIM_FATE_RANDOM);
        read_all(&d, "/data/wal/a", images[round], sizeof(images[round]), &lens[round]);
        wal_io_destroy(d.io);
    }
    cr_assert_eq(lens[0], lens[1]);
    cr_assert(memcmp(images[0], images[1], (size_t)lens[0]) == 0);
}

Test(wal_io_sim, truncate_on_open_is_a_pending_operation)
{
    struct disk d = disk_new(9);
    int h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE);
    d.io->sync_dir(d.io, "/data/wal");
    cr_assert_eq(write_sync_at(&d, h, "abcdef", 6, 0), 0);
    d.io->close(d.io, h);
    h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE | WAL_IO_OPEN_TRUNCATE);
    cr_assert_eq(d.io->size(d.io, h), 0);
    wal_io_sim_reboot(d.sim, 9, WAL_IO_SIM_FATE_DROP);
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/a"), 6, "unsynced truncate dropped");
    h = d.io->open(d.io, "/data/wal/a", WAL_IO_OPEN_WRITE | WAL_IO_OPEN_TRUNCATE);
    cr_assert_eq(d.io->fdatasync(d.io, h), 0);
    wal_io_sim_reboot(d.sim, 9, WAL_IO_SIM_FATE_DROP);
    cr_assert_eq(wal_io_sim_file_size(d.sim, "/data/wal/a"), 0, "synced truncate kept");
    cr_assert_eq(wal_io_sim_flip(d.sim, "/data/wal/a", 0, 1), -EINVAL);
    wal_io_destroy(d.io);
}
