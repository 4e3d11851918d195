/* test_wal_crash.c — the WAL's durability promise under crashes and disk errors
 * (seatcore/wal.c on seatcore/wal_io_sim.c).
 *
 * For many seeds and sync indexes N: appenders on several threads append records
 * and learn through the durability callback which were acknowledged; the disk
 * crashes at the Nth sync (or fails it with EIO, or fails the Nth write with
 * ENOSPC); the disk reboots with random fates for every unsynced write (applied,
 * dropped, garbled, zeroed, torn); the WAL is reopened. Then:
 *   - every acknowledged record is replayed, with its exact payload;
 *   - nothing is replayed that was never appended, LSNs strictly increase, and
 *     each thread's records come back in its own order;
 *   - after an I/O error nothing later is acknowledged;
 *   - the reopened log takes appends and survives another reopen.
 * Sometimes the disk also crashes during recovery itself (the tail cut). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "tk_test_support.h"
#include "wal.h"
#include "wal_io_sim.h"
#include "wal_record.h"

#define THREADS 3u
#define PER_THREAD 200u
#define TYPE_TEST 16
#define DIR "/sim/data/wal"
/* Rounds of the crash sweep: fewer under a sanitizer, which is ~6x slower here. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CRASH_ROUNDS 3u
#else
#define CRASH_ROUNDS 8u
#endif

struct ack {
    struct crash_run *run;
    uint32_t thread;
    uint32_t seq;
    uint64_t end_lsn;
};

struct crash_run {
    struct wal *wal;
    _Atomic uint8_t acked[THREADS][PER_THREAD];
    _Atomic uint32_t attempts[THREADS]; /* appends started: a record may land even if append reported IO */
    struct ack acks[THREADS][PER_THREAD];
    bool saw_error;             /* writer thread only */
    uint64_t durable_at_error;  /* writer thread only */
    _Atomic uint32_t ok_after_error;
    uint8_t replayed[THREADS][PER_THREAD];
    int32_t last_seq[THREADS];
    uint64_t last_lsn;
    uint64_t replay_count;
    uint64_t extra_replayed; /* records of the post-recovery round */
};

static struct crash_run run;

static struct {
    uint64_t scenarios;
    uint64_t crashed;
    uint64_t failed;
    uint64_t acked_before_fault;
} stats;

static void report(const char *name)
{
    fprintf(stderr, "%s: %llu scenarios, %llu crashed, %llu saw the I/O error, %llu had acknowledged records "
            "before the fault\n", name, (unsigned long long)stats.scenarios, (unsigned long long)stats.crashed,
            (unsigned long long)stats.failed, (unsigned long long)stats.acked_before_fault);
    /* Batch counts vary with thread timing, so only require that the sweep mattered. */
    cr_assert_gt(stats.acked_before_fault, 0, "the faults hit logs with acknowledged data");
    memset(&stats, 0, sizeof(stats));
}

static uint32_t payload_len(uint32_t thread, uint32_t seq)
{
    return 40u + (thread * 31u + seq * 7u) % 61u;
}

static void payload_fill(uint32_t thread, uint32_t seq, uint8_t *out, uint32_t len)
{
    uint64_t id = ((uint64_t)thread << 32) | seq;
    memcpy(out, &id, 8);
    uint64_t x = id * UINT64_C(0x9E3779B97F4A7C15) + 1;
    for (uint32_t i = 8; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (uint8_t)x;
    }
}

static void on_durable(void *ctx, enum tk_status status)
{
    struct ack *ack = ctx;
    struct crash_run *r = ack->run;
    if (status == TK_OK) {
        /* After a failure only records that were durable before it may be OK. */
        if (r->saw_error && ack->end_lsn > r->durable_at_error)
            atomic_fetch_add(&r->ok_after_error, 1);
        atomic_store(&r->acked[ack->thread][ack->seq], 1);
    } else {
        cr_assert(status == TK_ERR_IO || status == TK_ERR_UNAVAILABLE, "status %d", status);
        if (!r->saw_error) {
            r->saw_error = true;
            r->durable_at_error = wal_durable_lsn(r->wal);
        }
    }
}

static void *appender(void *arg)
{
    uint32_t thread = (uint32_t)(uintptr_t)arg;
    uint8_t payload[128];
    for (uint32_t seq = 0; seq < PER_THREAD; seq++) {
        uint32_t len = payload_len(thread, seq);
        payload_fill(thread, seq, payload, len);
        atomic_store(&run.attempts[thread], seq + 1);
        struct ack *ack = &run.acks[thread][seq];
        *ack = (struct ack){&run, thread, seq, 0};
        if (wal_append(run.wal, TYPE_TEST, payload, len, &ack->end_lsn) != TK_OK)
            break;
        if (wal_when_durable(run.wal, ack->end_lsn, on_durable, ack))
            atomic_store(&run.acked[thread][seq], 1);
        /* Now and then wait, as a server thread's caller would: more, smaller batches. */
        if (seq % 16 == 15 && wal_wait_durable(run.wal, ack->end_lsn) != TK_OK)
            break;
    }
    return NULL;
}

static enum tk_status on_replay(void *ctx, const struct wal_record_view *record)
{
    struct crash_run *r = ctx;
    cr_assert_eq(record->type, TYPE_TEST);
    cr_assert(r->replay_count == 0 || record->lsn > r->last_lsn, "LSNs strictly increase");
    r->last_lsn = record->lsn;
    r->replay_count++;
    cr_assert_geq(record->payload_len, 8u);
    uint64_t id;
    memcpy(&id, record->payload, 8);
    uint32_t thread = (uint32_t)(id >> 32), seq = (uint32_t)id;
    if (thread == THREADS) { /* the post-recovery round */
        r->extra_replayed++;
        return TK_OK;
    }
    cr_assert_lt(thread, THREADS, "replayed a record nobody appended");
    cr_assert_lt(seq, atomic_load(&r->attempts[thread]), "replayed a record nobody appended");
    uint8_t expect[128];
    cr_assert_eq(record->payload_len, payload_len(thread, seq));
    payload_fill(thread, seq, expect, record->payload_len);
    cr_assert(memcmp(expect, record->payload, record->payload_len) == 0, "exact payload");
    cr_assert_gt((int32_t)seq, r->last_seq[thread], "a thread's records in its order, once");
    r->last_seq[thread] = (int32_t)seq;
    r->replayed[thread][seq] = 1;
    return TK_OK;
}

static struct wal_config config_for(struct wal_io_sim *sim)
{
    return (struct wal_config){.dir = DIR, .io = wal_io_sim_io(sim), .ring_bytes = TK_WAL_RING_BYTES_MIN,
                               .segment_bytes = 16384};
}

static void quiet_log(void *ctx, const char *level, const char *message)
{
    (void)ctx;
    (void)level;
    (void)message;
}

static enum tk_status reopen(struct wal_io_sim *sim, struct wal **wal, char *err, size_t err_len)
{
    memset(run.replayed, 0, sizeof(run.replayed));
    for (uint32_t t = 0; t < THREADS; t++)
        run.last_seq[t] = -1;
    run.replay_count = 0;
    run.extra_replayed = 0;
    struct wal_config config = config_for(sim);
    config.log = quiet_log;
    return wal_open(wal, &config, 0, on_replay, &run, err, err_len);
}

/* Reopens after the reboot (sometimes crashing inside recovery first) and checks. */
static void recover_and_check(struct wal_io_sim *sim, uint64_t seed)
{
    char err[512];
    struct wal *wal = NULL;
    if (seed % 4 == 0) {
        struct wal_io_sim_faults faults = {.crash_at_sync = 1};
        wal_io_sim_set_faults(sim, &faults);
        enum tk_status status = reopen(sim, &wal, err, sizeof(err));
        if (status == TK_OK)
            wal_close(wal); /* nothing to cut: recovery made no sync; the crash hits no one */
        else
            cr_assert_eq(status, TK_ERR_IO, "seed %llu: %s", (unsigned long long)seed, err);
        wal_io_sim_reboot(sim, seed * 7 + 1, WAL_IO_SIM_FATE_RANDOM);
    }
    enum tk_status status = reopen(sim, &wal, err, sizeof(err));
    cr_assert_eq(status, TK_OK, "seed %llu: reopen: %s", (unsigned long long)seed, err);
    for (uint32_t t = 0; t < THREADS; t++)
        for (uint32_t s = 0; s < PER_THREAD; s++)
            cr_assert(!atomic_load(&run.acked[t][s]) || run.replayed[t][s],
                      "seed %llu: acknowledged record %u/%u lost", (unsigned long long)seed, t, s);
    /* The recovered log takes appends and keeps them. */
    uint8_t payload[64];
    uint64_t end = 0;
    for (uint32_t s = 0; s < 5; s++) {
        payload_fill(THREADS, s, payload, sizeof(payload));
        cr_assert_eq(wal_append(wal, TYPE_TEST, payload, sizeof(payload), &end), TK_OK);
    }
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    uint64_t before = run.replay_count;
    wal_close(wal);
    status = reopen(sim, &wal, err, sizeof(err));
    cr_assert_eq(status, TK_OK, "seed %llu: second reopen: %s", (unsigned long long)seed, err);
    cr_assert_eq(run.replay_count, before + 5);
    cr_assert_eq(run.extra_replayed, 5);
    wal_close(wal);
}

/* One scenario: fault plan armed after a clean open, appenders, reboot, checks. */
static void scenario(uint64_t seed, const struct wal_io_sim_faults *faults, bool expect_no_ok_after_error)
{
    memset(&run, 0, sizeof(run));
    struct wal_io_sim *sim = wal_io_sim_create(seed);
    cr_assert_not_null(sim);
    char err[512];
    struct wal_config config = config_for(sim);
    config.log = quiet_log;
    cr_assert_eq(wal_open(&run.wal, &config, 0, NULL, NULL, err, sizeof(err)), TK_OK, "%s", err);
    wal_io_sim_set_faults(sim, faults);
    pthread_t threads[THREADS];
    for (uint32_t t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&threads[t], NULL, appender, (void *)(uintptr_t)t), 0);
    for (uint32_t t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    wal_close(run.wal); /* flushes, or fails every waiter once the disk is gone */
    uint32_t acked = 0;
    for (uint32_t t = 0; t < THREADS; t++)
        for (uint32_t s = 0; s < PER_THREAD; s++)
            acked += atomic_load(&run.acked[t][s]);
    struct wal_io_sim_counters counters;
    wal_io_sim_counters(sim, &counters);
    stats.scenarios++;
    stats.crashed += wal_io_sim_crashed(sim);
    stats.failed += run.saw_error;
    stats.acked_before_fault += (wal_io_sim_crashed(sim) || run.saw_error) && acked > 0;
    if (expect_no_ok_after_error)
        cr_assert_eq(atomic_load(&run.ok_after_error), 0, "seed %llu: acknowledged after the I/O error",
                     (unsigned long long)seed);
    wal_io_sim_reboot(sim, seed * 31 + 17, WAL_IO_SIM_FATE_RANDOM);
    recover_and_check(sim, seed);
    wal_io_destroy(wal_io_sim_io(sim));
}

/* How many syncs and writes a clean run makes: the range a fault index sweeps. */
static uint64_t clean_run_counts(uint64_t seed, uint64_t *writes)
{
    struct wal_io_sim_faults none = {0};
    scenario(seed, &none, false);
    /* The scenario destroyed its sim; measure on a fresh one the same way. */
    memset(&run, 0, sizeof(run));
    struct wal_io_sim *sim = wal_io_sim_create(seed);
    struct wal_config config = config_for(sim);
    config.log = quiet_log;
    char err[256];
    cr_assert_eq(wal_open(&run.wal, &config, 0, NULL, NULL, err, sizeof(err)), TK_OK);
    struct wal_io_sim_counters before, after;
    wal_io_sim_counters(sim, &before);
    pthread_t threads[THREADS];
    for (uint32_t t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, appender, (void *)(uintptr_t)t);
    for (uint32_t t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    wal_close(run.wal);
    wal_io_sim_counters(sim, &after);
    wal_io_destroy(wal_io_sim_io(sim));
    *writes = after.writes - before.writes;
    return after.syncs - before.syncs;
}

Test(wal_crash, crash_at_every_sync_with_random_write_fates, .timeout = 120)
{
    uint64_t seed = tk_test_seed("wal_crash.crash_at_every_sync");
    uint64_t writes;
    uint64_t syncs = clean_run_counts(seed, &writes);
    cr_assert_gt(syncs, 2);
    memset(&stats, 0, sizeof(stats));
    for (uint64_t round = 0; round < CRASH_ROUNDS; round++) {
        for (uint64_t n = 1; n <= syncs + 2; n += 1 + syncs / 40) {
            uint64_t s = seed + round * 1000003 + n;
            struct wal_io_sim_faults faults = {.crash_at_sync = n, .short_write_per_mille = s % 3 == 0 ? 200 : 0};
            scenario(s, &faults, false);
        }
    }
    fprintf(stderr, "wal_crash: a clean run makes %llu syncs\n", (unsigned long long)syncs);
    report("crash at sync N");
}

Test(wal_crash, eio_at_nth_sync_acknowledges_nothing_later, .timeout = 120)
{
    uint64_t seed = tk_test_seed("wal_crash.eio_at_nth_sync");
    memset(&stats, 0, sizeof(stats));
    for (uint64_t n = 1; n <= 30; n++) { /* dense at the low end: runs vary in sync count */
        struct wal_io_sim_faults faults = {.fail_sync_at = n, .fail_sync_errno = EIO};
        scenario(seed + n, &faults, true);
    }
    report("EIO at sync N");
}

Test(wal_crash, enospc_at_nth_write_acknowledges_nothing_later, .timeout = 120)
{
    uint64_t seed = tk_test_seed("wal_crash.enospc_at_nth_write");
    memset(&stats, 0, sizeof(stats));
    for (uint64_t n = 1; n <= 30; n++) {
        struct wal_io_sim_faults faults = {.fail_write_at = n, .fail_write_errno = ENOSPC,
                                           .short_write_per_mille = n % 2 ? 300 : 0};
        scenario(seed + n, &faults, true);
    }
    report("ENOSPC at write N");
}
