/* test_wal_stress.c — the WAL under sustained concurrent load (seatcore/wal.c).
 *
 * Three phases, four appender threads each, every append registering a
 * durability waiter:
 *   1. throughput: small records (40-100 B) for about two seconds on the default
 *      backend and a real directory; prints the durable append rate and the
 *      replay rate (figures only: the machine is shared, timing is not asserted);
 *   2. back-pressure: records of 1-60 KB through a 1 MiB ring, so appenders wait
 *      for ring space and the writer spills;
 *   3. failure: the simulated disk crashes at the 10th sync while the threads
 *      append; every waiter must still be called once, later appends refused.
 * After each phase every waiter ran exactly once, and a replay returns every
 * acknowledged record, byte for byte, in each thread's order.
 *
 * Run it under ThreadSanitizer (-DTK_SANITIZE=thread); that is why it is a plain
 * program (tk_check.h) rather than a criterion test. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "tk_check.h"
#include "tk_clock.h"
#include "tk_test_support.h"
#include "wal.h"
#include "wal_io_sim.h"

#define THREADS 4u
#define TYPE_STRESS 16
#define BIG_BYTES_MAX 60000u

enum phase { PHASE_THROUGHPUT, PHASE_BACK_PRESSURE, PHASE_FAILURE };

struct appender {
    struct wal *wal;
    enum phase phase;
    uint32_t thread;
    uint64_t appended;
    uint64_t last_end;
    _Atomic uint64_t acked;
    _Atomic uint64_t failed;
    _Atomic bool *stop;
};

static void on_durable(void *ctx, enum tk_status status)
{
    struct appender *a = ctx;
    if (status == TK_OK)
        atomic_fetch_add_explicit(&a->acked, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&a->failed, 1, memory_order_relaxed);
}

static uint32_t record_len(enum phase phase, uint64_t seq)
{
    if (phase == PHASE_BACK_PRESSURE)
        return 1024u + (uint32_t)(seq * 7919u % (BIG_BYTES_MAX - 1024u));
    return 40u + (uint32_t)(seq % 61u); /* 40..100 bytes, the engine's record sizes */
}

static void record_fill(uint32_t thread, uint64_t seq, uint8_t *out, uint32_t len)
{
    uint64_t id = ((uint64_t)thread << 48) | seq;
    memcpy(out, &id, 8);
    for (uint32_t i = 8; i < len; i++)
        out[i] = (uint8_t)(id * 131u + i);
}

static void *append_loop(void *arg)
{
    struct appender *a = arg;
    static __thread uint8_t payload[BIG_BYTES_MAX];
    while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
        uint32_t len = record_len(a->phase, a->appended);
        record_fill(a->thread, a->appended, payload, len);
        enum tk_status status = wal_append(a->wal, TYPE_STRESS, payload, len, &a->last_end);
        if (a->phase == PHASE_FAILURE && status == TK_ERR_IO)
            break; /* the record may still be in the ring: it is neither acked nor counted */
        TK_CHECK_EQ(status, TK_OK, "append: %s", tk_status_name(status));
        a->appended++;
        if (wal_when_durable(a->wal, a->last_end, on_durable, a))
            atomic_fetch_add_explicit(&a->acked, 1, memory_order_relaxed);
        /* Failure phase: wait now and then, so batches are small and many. */
        if (a->phase == PHASE_FAILURE && a->appended % 64 == 0 && wal_wait_durable(a->wal, a->last_end) != TK_OK)
            break;
    }
    return NULL;
}

struct replay_check {
    enum phase phase;
    uint64_t next_seq[THREADS];
    uint64_t count;
};

static enum tk_status on_replay(void *ctx, const struct wal_record_view *record)
{
    struct replay_check *check = ctx;
    static uint8_t expect[BIG_BYTES_MAX];
    uint64_t id;
    memcpy(&id, record->payload, 8);
    uint32_t thread = (uint32_t)(id >> 48);
    uint64_t seq = id & ((UINT64_C(1) << 48) - 1);
    if (thread >= THREADS || seq != check->next_seq[thread] || record->payload_len != record_len(check->phase, seq))
        return TK_ERR_CORRUPT;
    record_fill(thread, seq, expect, record->payload_len);
    if (memcmp(expect, record->payload, record->payload_len) != 0)
        return TK_ERR_CORRUPT;
    check->next_seq[thread]++;
    check->count++;
    return TK_OK;
}

static struct appender appenders[THREADS];

/* Runs the appenders for run_ns (or until they stop on failure); returns the
 * number of records appended and waits until they are durable (if healthy). */
static uint64_t run_appenders(struct wal *wal, enum phase phase, uint64_t run_ns)
{
    _Atomic bool stop = false;
    pthread_t threads[THREADS];
    for (uint32_t t = 0; t < THREADS; t++) {
        appenders[t] = (struct appender){.wal = wal, .phase = phase, .thread = t, .stop = &stop};
        TK_CHECK_EQ(pthread_create(&threads[t], NULL, append_loop, &appenders[t]), 0);
    }
    struct timespec run = {(time_t)(run_ns / 1000000000ull), (long)(run_ns % 1000000000ull)};
    nanosleep(&run, NULL);
    atomic_store(&stop, true);
    uint64_t total = 0, last = 0;
    for (uint32_t t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        total += appenders[t].appended;
        last = appenders[t].last_end > last ? appenders[t].last_end : last;
    }
    enum tk_status status = wal_wait_durable(wal, last);
    TK_CHECK(status == TK_OK || phase == PHASE_FAILURE, "wait: %s", tk_status_name(status));
    return total;
}

/* After wal_close (which joins the writer, so every callback has run). */
static void check_waiters(enum phase phase)
{
    for (uint32_t t = 0; t < THREADS; t++) {
        uint64_t acked = atomic_load(&appenders[t].acked), failed = atomic_load(&appenders[t].failed);
        TK_CHECK_EQ(acked + failed, appenders[t].appended, "every waiter ran exactly once (thread %u)", t);
        TK_CHECK(failed == 0 || phase == PHASE_FAILURE, "no failures on a healthy disk");
    }
}

/* Reopens and replays; each thread's acknowledged records are a prefix of its
 * records (durability is a prefix of the log), so all of them must come back. */
static void check_replay(struct wal_config *config, enum phase phase)
{
    static struct replay_check check;
    memset(&check, 0, sizeof(check));
    check.phase = phase;
    struct wal *wal = NULL;
    char err[256];
    uint64_t started = tk_monotonic_ns();
    TK_CHECK_EQ(wal_open(&wal, config, 0, on_replay, &check, err, sizeof(err)), TK_OK, "%s", err);
    uint64_t replay_ns = tk_monotonic_ns() - started;
    for (uint32_t t = 0; t < THREADS; t++) {
        TK_CHECK(check.next_seq[t] >= atomic_load(&appenders[t].acked), "acknowledged records replayed");
        TK_CHECK(check.next_seq[t] <= appenders[t].appended + 1, "nothing replayed that was not appended");
    }
    if (phase == PHASE_THROUGHPUT)
        fprintf(stderr, "wal_stress: replayed %llu records in %.3f s = %.0f records/s\n",
                (unsigned long long)check.count, (double)replay_ns / 1e9,
                (double)check.count * 1e9 / (double)replay_ns);
    wal_close(wal);
}

static void phase_throughput(const char *dir)
{
    struct wal_config config = {.dir = dir};
    struct wal *wal = NULL;
    char err[256];
    TK_CHECK_EQ(wal_open(&wal, &config, 0, NULL, NULL, err, sizeof(err)), TK_OK, "%s", err);
    uint64_t started = tk_monotonic_ns();
    uint64_t total = run_appenders(wal, PHASE_THROUGHPUT, 2000000000ull);
    uint64_t elapsed = tk_monotonic_ns() - started;
    struct wal_stats stats;
    wal_stats_get(wal, &stats);
    TK_CHECK_EQ(stats.records, total);
    TK_CHECK_LT(stats.batches, total, "group commit batches");
    fprintf(stderr,
            "wal_stress: %llu durable appends in %.2f s = %.0f records/s (%s, 4 threads, 40-100 B payloads); "
            "%llu batches, %.0f records/batch, write+fdatasync p50 %.2f ms p99 %.2f ms\n",
            (unsigned long long)total, (double)elapsed / 1e9, (double)total * 1e9 / (double)elapsed,
            wal_backend_name(wal), (unsigned long long)stats.batches, (double)total / (double)stats.batches,
            (double)tk_histogram_quantile(stats.fsync_ns, 0.5) / 1e6,
            (double)tk_histogram_quantile(stats.fsync_ns, 0.99) / 1e6);
    wal_close(wal);
    check_waiters(PHASE_THROUGHPUT);
    check_replay(&config, PHASE_THROUGHPUT);
}

static void phase_back_pressure(const char *dir)
{
    struct wal_io *io = NULL;
    TK_CHECK_EQ(wal_io_posix_create(&io), 0);
    struct wal_config config = {.dir = dir, .io = io, .ring_bytes = TK_WAL_RING_BYTES_MIN,
                                .segment_bytes = 8u << 20};
    struct wal *wal = NULL;
    char err[256];
    TK_CHECK_EQ(wal_open(&wal, &config, 0, NULL, NULL, err, sizeof(err)), TK_OK, "%s", err);
    uint64_t total = run_appenders(wal, PHASE_BACK_PRESSURE, 700000000ull);
    struct wal_stats stats;
    wal_stats_get(wal, &stats);
    TK_CHECK_EQ(stats.records, total);
    TK_CHECK_GT(stats.bytes, 4ull * TK_WAL_RING_BYTES_MIN, "the ring wrapped several times");
    fprintf(stderr, "wal_stress: back-pressure phase: %llu records of 1-60 KB through a 1 MiB ring, %.1f MB\n",
            (unsigned long long)total, (double)stats.bytes / 1e6);
    wal_close(wal);
    check_waiters(PHASE_BACK_PRESSURE);
    check_replay(&config, PHASE_BACK_PRESSURE);
    wal_io_destroy(io);
}

static void quiet_log(void *ctx, const char *level, const char *message)
{
    (void)ctx;
    (void)level;
    (void)message;
}

static void phase_failure(void)
{
    struct wal_io_sim *sim = wal_io_sim_create(20260101);
    TK_CHECK(sim != NULL);
    struct wal_config config = {.dir = "/sim/wal", .io = wal_io_sim_io(sim), .ring_bytes = TK_WAL_RING_BYTES_MIN,
                                .segment_bytes = 1u << 20, .log = quiet_log};
    struct wal *wal = NULL;
    char err[256];
    TK_CHECK_EQ(wal_open(&wal, &config, 0, NULL, NULL, err, sizeof(err)), TK_OK, "%s", err);
    struct wal_io_sim_faults faults = {.crash_at_sync = 10, .short_write_per_mille = 50};
    wal_io_sim_set_faults(sim, &faults);
    run_appenders(wal, PHASE_FAILURE, 500000000ull);
    TK_CHECK(wal_io_sim_crashed(sim), "the disk crashed during the run");
    TK_CHECK_EQ(wal_health(wal), TK_ERR_IO);
    wal_close(wal);
    check_waiters(PHASE_FAILURE);
    wal_io_sim_reboot(sim, 99, WAL_IO_SIM_FATE_RANDOM);
    check_replay(&config, PHASE_FAILURE);
    wal_io_destroy(wal_io_sim_io(sim));
    fprintf(stderr, "wal_stress: failure phase: crash at sync 10, every waiter called, acknowledged records kept\n");
}

int main(void)
{
    char dir[512];
    tk_test_tempdir(dir, sizeof(dir), "wal-stress");
    phase_throughput(dir);
    tk_test_rmtree(dir);
    tk_test_tempdir(dir, sizeof(dir), "wal-stress");
    phase_back_pressure(dir);
    tk_test_rmtree(dir);
    phase_failure();
    return 0;
}
