/* wal_io_sim.h — a simulated disk behind the wal_io interface, for tests and the
 * deterministic simulator.
 *
 * What it models: an in-memory file system. Each file (inode) has the image
 * reads see, its durable image, and the list of writes/truncates since its last
 * fdatasync; fdatasync makes that file's pending operations durable. Directory
 * entries are two namespaces: the live one (open/create, rename, unlink change
 * it at once) and the durable one, which a directory's entries join only when
 * that directory is synced (sync_dir), as on a real file system. Directories
 * themselves (mkdirs) are durable at once: a simplification, the WAL creates its
 * directory once.
 *
 * Faults, seeded and deterministic: fail the Nth write or the Nth sync with EIO
 * or ENOSPC, short writes, and "crash at the Nth sync" (that sync does not
 * happen; the disk is marked crashed and every later call fails with EIO).
 * "Sync" counts fdatasync, the sync of write_sync and sync_dir alike. Then
 * wal_io_sim_reboot turns the disk back into a usable one in which each unsynced
 * operation was applied, dropped, garbled (random bytes), zeroed or torn (only a
 * prefix applied), per the mode or at random per operation, and the live
 * namespace is what had been synced.
 *
 * Trade-off: one mutex around everything; it is a test disk, exactness and
 * determinism matter, speed does not. Pending data is kept as copies until the
 * next sync, so a test that never syncs grows without bound. */
#ifndef WAL_IO_SIM_H
#define WAL_IO_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "wal_io.h"

/* What happens to an unsynced write at reboot. */
enum wal_io_sim_fate {
    WAL_IO_SIM_FATE_RANDOM = 0, /* each operation draws one of the fates below */
    WAL_IO_SIM_FATE_APPLY,      /* it reached the platter */
    WAL_IO_SIM_FATE_DROP,       /* it never did */
    WAL_IO_SIM_FATE_GARBLE,     /* its range holds random bytes */
    WAL_IO_SIM_FATE_ZERO,       /* its range holds zeros (file extended, data lost) */
    WAL_IO_SIM_FATE_TORN,       /* a random prefix was applied, the rest dropped */
    WAL_IO_SIM_FATE_COUNT
};

/* A fault plan. Indexes are 1-based and count from the wal_io_sim_set_faults
 * call; 0 means "never". Errnos are positive (EIO, ENOSPC); 0 means EIO. */
struct wal_io_sim_faults {
    uint64_t fail_write_at;          /* that write fails with fail_write_errno, nothing applied */
    int fail_write_errno;
    uint64_t fail_sync_at;           /* that sync fails with fail_sync_errno, nothing made durable */
    int fail_sync_errno;
    uint64_t crash_at_sync;          /* that sync does not happen: the disk crashes */
    uint32_t short_write_per_mille;  /* chance that a pwritev writes only a prefix */
};

struct wal_io_sim_counters {
    uint64_t writes;        /* pwritev calls (including write_sync's), failed ones too */
    uint64_t syncs;         /* fdatasync, write_sync and sync_dir calls */
    uint64_t dir_syncs;     /* sync_dir calls */
    uint64_t bytes_written;
    uint64_t short_writes;
    uint64_t reboots;
};

struct wal_io_sim;

/* A fresh empty disk; seed drives short writes (and nothing else until reboot). */
struct wal_io_sim *wal_io_sim_create(uint64_t seed);
/* The wal_io view of the disk; wal_io_destroy on it frees the sim. */
struct wal_io *wal_io_sim_io(struct wal_io_sim *sim);
void wal_io_sim_set_faults(struct wal_io_sim *sim, const struct wal_io_sim_faults *faults);
/* Crashes now (a power cut between two calls). */
void wal_io_sim_crash(struct wal_io_sim *sim);
bool wal_io_sim_crashed(struct wal_io_sim *sim);
/* Power back on: unsynced operations meet their fate (mode, or per operation at
 * random from seed), the live namespace becomes the durable one, every handle is
 * closed, the fault plan is cleared. Allowed whether or not the sim crashed. */
void wal_io_sim_reboot(struct wal_io_sim *sim, uint64_t seed, enum wal_io_sim_fate mode);
void wal_io_sim_counters(struct wal_io_sim *sim, struct wal_io_sim_counters *out);

/* Test helpers, by path in the live namespace. */
/* Size of the live image, or -ENOENT. */
int64_t wal_io_sim_file_size(struct wal_io_sim *sim, const char *path);
/* XORs mask into the byte at offset in both images (media corruption); -errno on failure. */
int wal_io_sim_flip(struct wal_io_sim *sim, const char *path, uint64_t offset, uint8_t mask);
/* Copies up to len bytes of the durable image at offset; returns bytes copied or -errno. */
int64_t wal_io_sim_read_durable(struct wal_io_sim *sim, const char *path, uint64_t offset, void *buf, uint64_t len);

#endif
