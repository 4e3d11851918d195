/* test_wal.c — the write-ahead log (seatcore/wal.c): round trips, replay from an
 * LSN, the ring (wrap, back-pressure), group commit, waiters, segments, reopen,
 * both real backends, and recovery from torn tails and corruption on real files
 * (plus I/O failures on the simulated disk). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tk_test_support.h"
#include "wal.h"
#include "wal_io.h"
#include "wal_io_sim.h"
#include "wal_record.h"

#define TYPE_A 16
#define TYPE_B 17
#define PAYLOAD_BIG_BYTES 60000u

/* ---- payloads: the id in the first 8 bytes, the rest derived from it -------- */

static void payload_fill(uint64_t id, uint32_t len, uint8_t *out)
{
    cr_assert_geq(len, 8u);
    memcpy(out, &id, 8);
    uint64_t x = id * UINT64_C(0x9E3779B97F4A7C15) + len;
    for (uint32_t i = 8; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (uint8_t)x;
    }
}

static uint32_t small_len(uint64_t id)
{
    return 40u + (uint32_t)(id * 7919u % 61u); /* 40..100 bytes, the engine's record sizes */
}

/* ---- replay collector ------------------------------------------------------- */

struct replayed {
    uint64_t count;
    uint64_t ids[8192];
    uint64_t lsns[8192];
    uint16_t types[8192];
    uint64_t last_lsn;
    uint64_t refuse_at; /* 1-based record index to refuse; 0: none */
};

static enum tk_status on_replay(void *ctx, const struct wal_record_view *record)
{
    struct replayed *rep = ctx;
    cr_assert_geq(record->type, WAL_RECORD_TYPE_USER_MIN);
    cr_assert(rep->count == 0 || record->lsn > rep->last_lsn, "LSNs strictly increase");
    cr_assert_geq(record->payload_len, 8u);
    uint64_t id;
    memcpy(&id, record->payload, 8);
    static uint8_t expect[TK_WAL_RECORD_BYTES_MAX];
    payload_fill(id, record->payload_len, expect);
    cr_assert(memcmp(expect, record->payload, record->payload_len) == 0, "payload of id %llu intact",
              (unsigned long long)id);
    if (rep->refuse_at && rep->count + 1 == rep->refuse_at)
        return TK_ERR_INVALID;
    cr_assert_lt(rep->count, 8192u);
    rep->ids[rep->count] = id;
    rep->lsns[rep->count] = record->lsn;
    rep->types[rep->count] = record->type;
    rep->count++;
    rep->last_lsn = record->lsn;
    return TK_OK;
}

/* ---- log capture ------------------------------------------------------------ */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[65536];
static size_t log_len;

static void capture_log(void *ctx, const char *level, const char *message)
{
    (void)ctx;
    pthread_mutex_lock(&log_lock);
    int n = snprintf(log_text + log_len, sizeof(log_text) - log_len, "%s: %s\n", level, message);
    if (n > 0 && log_len + (size_t)n < sizeof(log_text))
        log_len += (size_t)n;
    pthread_mutex_unlock(&log_lock);
}

static bool log_contains(const char *needle)
{
    pthread_mutex_lock(&log_lock);
    bool found = strstr(log_text, needle) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

static void log_reset(void)
{
    pthread_mutex_lock(&log_lock);
    log_len = 0;
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_lock);
}

/* ---- helpers ---------------------------------------------------------------- */

struct options {
    struct wal_io *io;
    uint32_t ring_bytes;
    uint64_t segment_bytes;
    uint64_t from_lsn;
};

static enum tk_status open_wal(struct wal **wal, const char *dir, const struct options *opt, struct replayed *rep,
                               char *err, size_t err_len)
{
    struct wal_config config = {.dir = dir, .io = opt ? opt->io : NULL,
                                .ring_bytes = opt ? opt->ring_bytes : TK_WAL_RING_BYTES_MIN,
                                .segment_bytes = opt ? opt->segment_bytes : 0, .log = capture_log};
    if (rep)
        memset(rep, 0, sizeof(*rep));
    return wal_open(wal, &config, opt ? opt->from_lsn : 0, rep ? on_replay : NULL, rep, err, err_len);
}

static struct wal *open_ok(const char *dir, const struct options *opt, struct replayed *rep)
{
    struct wal *wal = NULL;
    char err[512];
    enum tk_status status = open_wal(&wal, dir, opt, rep, err, sizeof(err));
    cr_assert_eq(status, TK_OK, "wal_open: %s: %s", tk_status_name(status), err);
    cr_assert_not_null(wal);
    return wal;
}

static uint64_t append_id(struct wal *wal, uint64_t id, uint32_t len)
{
    static __thread uint8_t payload[TK_WAL_RECORD_BYTES_MAX];
    payload_fill(id, len, payload);
    uint64_t end = 0;
    enum tk_status status = wal_append(wal, id % 2 ? TYPE_B : TYPE_A, payload, len, &end);
    cr_assert_eq(status, TK_OK, "append %llu: %s", (unsigned long long)id, tk_status_name(status));
    return end;
}

static void segment_file(char *out, size_t len, const char *dir, uint64_t first_lsn)
{
    char name[WAL_SEGMENT_NAME_BYTES];
    wal_segment_name(name, first_lsn);
    snprintf(out, len, "%s/%s", dir, name);
}

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return st.st_size;
}

static void flip_byte(const char *path, off_t offset)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t byte;
    cr_assert_eq(pread(fd, &byte, 1, offset), 1);
    byte ^= 0x10;
    cr_assert_eq(pwrite(fd, &byte, 1, offset), 1);
    close(fd);
}

struct segment_names {
    int count;
    uint64_t starts[4096];
};

static int on_segment(void *ctx, const char *name)
{
    struct segment_names *names = ctx;
    uint64_t start;
    if (wal_segment_parse(name, &start) && names->count < 4096)
        names->starts[names->count++] = start;
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void list_segments(const char *dir, struct segment_names *names)
{
    struct wal_io *io = NULL;
    cr_assert_eq(wal_io_posix_create(&io), 0);
    names->count = 0;
    cr_assert_geq(io->list(io, dir, WAL_SEGMENT_PREFIX, on_segment, names), 0);
    qsort(names->starts, (size_t)names->count, sizeof(uint64_t), compare_u64);
    wal_io_destroy(io);
}

static char test_dir[512];
static struct replayed rep; /* large: static */

static void setup(void)
{
    log_reset();
    tk_test_tempdir(test_dir, sizeof(test_dir), "wal");
}

static void teardown(void)
{
    tk_test_rmtree(test_dir);
}

TestSuite(wal, .init = setup, .fini = teardown, .timeout = 20);

/* ---- round trips and LSNs --------------------------------------------------- */

static void round_trip(struct wal_io *io, const char *expect_backend)
{
    struct options opt = {.io = io};
    struct wal *wal = open_ok(test_dir, &opt, &rep);
    cr_assert_eq(rep.count, 0);
    if (expect_backend)
        cr_assert_str_eq(wal_backend_name(wal), expect_backend);
    uint64_t ends[1000];
    for (uint64_t id = 0; id < 1000; id++)
        ends[id] = append_id(wal, id, small_len(id));
    cr_assert_eq(wal_wait_durable(wal, ends[999]), TK_OK);
    cr_assert_geq(wal_durable_lsn(wal), ends[999]);
    cr_assert_geq(wal_reserved_lsn(wal), wal_durable_lsn(wal));
    struct wal_stats stats;
    wal_stats_get(wal, &stats);
    cr_assert_eq(stats.records, 1000);
    cr_assert_geq(stats.batches, 1);
    cr_assert_eq(tk_histogram_count(stats.fsync_ns), stats.batches);
    wal_close(wal);

    wal = open_ok(test_dir, &opt, &rep);
    cr_assert_eq(rep.count, 1000);
    for (uint64_t id = 0; id < 1000; id++) {
        cr_assert_eq(rep.ids[id], id);
        cr_assert_eq(rep.types[id], id % 2 ? TYPE_B : TYPE_A);
        cr_assert_eq(rep.lsns[id] + wal_record_size(small_len(id)), ends[id], "end_lsn is the record's end");
    }
    wal_close(wal);
}

Test(wal, round_trip_posix)
{
    struct wal_io *io = NULL;
    cr_assert_eq(wal_io_posix_create(&io), 0);
    round_trip(io, "posix");
    wal_io_destroy(io);
}

Test(wal, round_trip_io_uring)
{
    struct wal_io *io = NULL;
    int rc = wal_io_uring_create(&io);
    if (rc < 0) {
        cr_log_warn("io_uring refused here (%s): only the fallback is tested", strerror(-rc));
        return;
    }
    round_trip(io, "io_uring");
    wal_io_destroy(io);
}

Test(wal, round_trip_default_backend_is_logged)
{
    round_trip(NULL, NULL);
    cr_assert(log_contains("wal io backend"), "the backend choice is logged: %s", log_text);
}

Test(wal, replay_from_an_lsn)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    uint64_t ends[100];
    for (uint64_t id = 0; id < 100; id++)
        ends[id] = append_id(wal, id, small_len(id));
    wal_close(wal);
    struct options opt = {.from_lsn = ends[49]}; /* record 50 starts there or after (a COMMIT may sit between) */
    wal = open_ok(test_dir, &opt, &rep);
    cr_assert_eq(rep.count, 50);
    cr_assert_eq(rep.ids[0], 50);
    cr_assert_eq(rep.lsns[0], ends[50] - wal_record_size(small_len(50)));
    wal_close(wal);
    opt.from_lsn = ends[99] + 4096 * 1024; /* past the end: records would be missing */
    char err[512];
    cr_assert_eq(open_wal(&wal, test_dir, &opt, &rep, err, sizeof(err)), TK_ERR_CORRUPT);
    cr_assert(strstr(err, "before the replay start") != NULL, "%s", err);
}

Test(wal, reopen_continues_lsns)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    for (uint64_t id = 0; id < 10; id++)
        append_id(wal, id, small_len(id));
    wal_close(wal);
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 10);
    uint64_t durable = wal_durable_lsn(wal);
    cr_assert_gt(durable, rep.lsns[9]);
    uint64_t first_end = append_id(wal, 10, small_len(10));
    cr_assert_eq(first_end, durable + wal_record_size(small_len(10)), "the stream continues where it ended");
    for (uint64_t id = 11; id < 20; id++)
        append_id(wal, id, small_len(id));
    wal_close(wal);
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 20);
    for (uint64_t id = 0; id < 20; id++)
        cr_assert_eq(rep.ids[id], id);
    wal_close(wal);
}

Test(wal, append2_joins_two_parts)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    uint8_t payload[300];
    payload_fill(7, sizeof(payload), payload);
    uint64_t end;
    cr_assert_eq(wal_append2(wal, TYPE_A, payload, 20, payload + 20, 280, &end), TK_OK);
    cr_assert_eq(wal_append2(wal, TYPE_A, payload, 300, NULL, 0, &end), TK_OK);
    wal_close(wal);
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 2, "on_replay checked both payloads byte for byte");
    cr_assert_eq(rep.ids[0], 7);
    wal_close(wal);
}

static void on_never(void *ctx, enum tk_status status)
{
    (void)ctx;
    (void)status;
    cr_assert_fail("must not be called");
}

Test(wal, refused_appends)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    static uint8_t big[TK_WAL_RECORD_BYTES_MAX + 1];
    uint64_t end = 0;
    cr_assert_eq(wal_append(wal, TYPE_A, big, TK_WAL_RECORD_BYTES_MAX + 1, &end), TK_ERR_INVALID);
    cr_assert_eq(wal_append2(wal, TYPE_A, big, TK_WAL_RECORD_BYTES_MAX, big, 1, &end), TK_ERR_INVALID);
    cr_assert_eq(wal_append2(wal, TYPE_A, big, UINT32_MAX, big, 2, &end), TK_ERR_INVALID, "no overflow");
    cr_assert_eq(wal_append(wal, WAL_RECORD_COMMIT, big, 8, &end), TK_ERR_INVALID, "WAL types are reserved");
    cr_assert_eq(wal_append(wal, 15, big, 8, &end), TK_ERR_INVALID);
    cr_assert_eq(end, 0);
    payload_fill(1, TK_WAL_RECORD_BYTES_MAX, big);
    cr_assert_eq(wal_append(wal, TYPE_A, big, TK_WAL_RECORD_BYTES_MAX, &end), TK_OK, "the largest record fits");
    cr_assert_eq(wal_append(wal, TYPE_A, NULL, 0, &end), TK_OK, "an empty payload is a record too");
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    cr_assert(wal_when_durable(wal, 0, on_never, NULL), "0 is always durable");
    wal_close(wal);
}

Test(wal, config_is_validated)
{
    struct wal *wal = (struct wal *)1;
    char err[256];
    struct wal_config config = {.dir = test_dir, .ring_bytes = 1000, .log = capture_log};
    cr_assert_eq(wal_open(&wal, &config, 0, NULL, NULL, err, sizeof(err)), TK_ERR_INVALID);
    cr_assert_null(wal);
    cr_assert(strstr(err, "ring_bytes") != NULL, "%s", err);
    config = (struct wal_config){.dir = test_dir, .segment_bytes = 100, .log = capture_log};
    cr_assert_eq(wal_open(&wal, &config, 0, NULL, NULL, err, sizeof(err)), TK_ERR_INVALID);
    config = (struct wal_config){.dir = NULL, .log = capture_log};
    cr_assert_eq(wal_open(&wal, &config, 0, NULL, NULL, err, sizeof(err)), TK_ERR_INVALID);
    /* A ring size that is not a power of two is rounded up, not refused. */
    config = (struct wal_config){.dir = test_dir, .ring_bytes = TK_WAL_RING_BYTES_MIN + 8, .log = capture_log};
    cr_assert_eq(wal_open(&wal, &config, 0, NULL, NULL, err, sizeof(err)), TK_OK, "%s", err);
    wal_close(wal);
}

Test(wal, replay_refusal_stops_open)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    for (uint64_t id = 0; id < 10; id++)
        append_id(wal, id, small_len(id));
    wal_close(wal);
    memset(&rep, 0, sizeof(rep));
    rep.refuse_at = 5;
    struct wal_config config = {.dir = test_dir, .ring_bytes = TK_WAL_RING_BYTES_MIN, .log = capture_log};
    char err[256];
    cr_assert_eq(wal_open(&wal, &config, 0, on_replay, &rep, err, sizeof(err)), TK_ERR_INVALID);
    cr_assert_null(wal);
    cr_assert(strstr(err, "replay refused") != NULL, "%s", err);
}

/* ---- the ring --------------------------------------------------------------- */

Test(wal, records_wrap_around_the_ring_end)
{
    struct options opt = {.ring_bytes = TK_WAL_RING_BYTES_MIN};
    struct wal *wal = open_ok(test_dir, &opt, &rep);
    static uint8_t payload[TK_WAL_RECORD_BYTES_MAX];
    uint64_t end = 0, total = 0;
    uint64_t id = 0;
    /* Sizes chosen so record boundaries land everywhere relative to the ring end. */
    for (; total < 6u * TK_WAL_RING_BYTES_MIN && id < 4000; id++) {
        uint32_t len = 8u + (uint32_t)((id * 40961u) % (TK_WAL_RECORD_BYTES_MAX - 8u));
        payload_fill(id, len, payload);
        uint32_t split = len / 3;
        cr_assert_eq(wal_append2(wal, TYPE_A, payload, split, payload + split, len - split, &end), TK_OK);
        total += len;
    }
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    wal_close(wal);
    wal = open_ok(test_dir, &opt, &rep);
    cr_assert_eq(rep.count, id);
    for (uint64_t i = 0; i < id; i++)
        cr_assert_eq(rep.ids[i], i);
    wal_close(wal);
}

struct big_appender {
    struct wal *wal;
    uint64_t first_id;
    uint64_t count;
    uint64_t last_end;
};

static void *append_big(void *arg)
{
    struct big_appender *a = arg;
    static __thread uint8_t payload[PAYLOAD_BIG_BYTES];
    for (uint64_t i = 0; i < a->count; i++) {
        payload_fill(a->first_id + i, PAYLOAD_BIG_BYTES, payload);
        cr_assert_eq(wal_append(a->wal, TYPE_A, payload, PAYLOAD_BIG_BYTES, &a->last_end), TK_OK);
    }
    return NULL;
}

/* Three appenders push 60 KB records through a 1 MiB ring far faster than one
 * fsync: they must wait for space (and the writer must spill), never lose one. */
Test(wal, ring_full_back_pressure)
{
    struct options opt = {.ring_bytes = TK_WAL_RING_BYTES_MIN};
    struct wal *wal = open_ok(test_dir, &opt, &rep);
    struct big_appender appenders[3];
    pthread_t threads[3];
    for (int t = 0; t < 3; t++) {
        appenders[t] = (struct big_appender){wal, (uint64_t)t * 1000, 120, 0};
        cr_assert_eq(pthread_create(&threads[t], NULL, append_big, &appenders[t]), 0);
    }
    uint64_t last = 0;
    for (int t = 0; t < 3; t++) {
        pthread_join(threads[t], NULL);
        last = appenders[t].last_end > last ? appenders[t].last_end : last;
    }
    cr_assert_eq(wal_wait_durable(wal, last), TK_OK);
    struct wal_stats stats;
    wal_stats_get(wal, &stats);
    cr_assert_eq(stats.records, 360);
    cr_assert_gt(stats.bytes, 20u * TK_WAL_RING_BYTES_MIN);
    wal_close(wal);
    wal = open_ok(test_dir, &opt, &rep);
    cr_assert_eq(rep.count, 360);
    uint64_t next[3] = {0, 1000, 2000};
    for (uint64_t i = 0; i < rep.count; i++) {
        uint64_t t = rep.ids[i] / 1000;
        cr_assert_eq(rep.ids[i], next[t], "each thread's records in its order");
        next[t]++;
    }
    wal_close(wal);
}

/* ---- group commit and waiters ----------------------------------------------- */

struct small_appender {
    struct wal *wal;
    uint64_t first_id;
    uint64_t count;
    uint64_t last_end;
    _Atomic uint64_t *acked;
};

static void on_acked(void *ctx, enum tk_status status)
{
    _Atomic uint64_t *acked = ctx;
    cr_assert_eq(status, TK_OK);
    atomic_fetch_add(acked, 1);
}

static void *append_small(void *arg)
{
    struct small_appender *a = arg;
    for (uint64_t i = 0; i < a->count; i++) {
        a->last_end = append_id(a->wal, a->first_id + i, small_len(a->first_id + i));
        if (wal_when_durable(a->wal, a->last_end, on_acked, a->acked))
            atomic_fetch_add(a->acked, 1);
    }
    return NULL;
}

Test(wal, group_commit_batches_concurrent_appends)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    _Atomic uint64_t acked = 0;
    struct small_appender appenders[4];
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) {
        appenders[t] = (struct small_appender){wal, (uint64_t)t * 100000, 20000, 0, &acked};
        cr_assert_eq(pthread_create(&threads[t], NULL, append_small, &appenders[t]), 0);
    }
    uint64_t last = 0;
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        last = appenders[t].last_end > last ? appenders[t].last_end : last;
    }
    cr_assert_eq(wal_wait_durable(wal, last), TK_OK);
    struct wal_stats stats;
    wal_stats_get(wal, &stats);
    cr_assert_eq(stats.records, 80000);
    cr_assert_lt(stats.batches, stats.records / 10, "group commit: %llu batches for %llu records",
                 (unsigned long long)stats.batches, (unsigned long long)stats.records);
    cr_log_info("group commit: %llu records in %llu batches, fsync p50 %llu us", (unsigned long long)stats.records,
                (unsigned long long)stats.batches,
                (unsigned long long)tk_histogram_quantile(stats.fsync_ns, 0.5) / 1000);
    wal_close(wal); /* joins the writer: every callback has run */
    cr_assert_eq(atomic_load(&acked), 80000, "every waiter ran");
}

struct order_log {
    uint64_t count;
    uint64_t order[2000];
    enum tk_status status[2000];
};

static struct order_log order_log;

static void on_ordered(void *ctx, enum tk_status status)
{
    uint64_t index = (uint64_t)(uintptr_t)ctx;
    cr_assert_lt(order_log.count, 2000u);
    order_log.order[order_log.count] = index;
    order_log.status[order_log.count] = status;
    order_log.count++;
}

Test(wal, waiters_run_in_registration_order_with_ok)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    memset(&order_log, 0, sizeof(order_log));
    uint64_t registered = 0, immediate = 0, end = 0;
    for (uint64_t id = 0; id < 2000; id++) {
        end = append_id(wal, id, small_len(id));
        if (wal_when_durable(wal, end, on_ordered, (void *)(uintptr_t)registered))
            immediate++;
        else
            registered++;
    }
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    cr_assert(wal_when_durable(wal, end, on_ordered, NULL), "durable already: no callback");
    wal_close(wal); /* joins the writer: every callback has run */
    cr_assert_eq(order_log.count, registered);
    for (uint64_t i = 0; i < order_log.count; i++) {
        cr_assert_eq(order_log.order[i], i);
        cr_assert_eq(order_log.status[i], TK_OK);
    }
}

Test(wal, close_flushes_and_completes_waiters)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    memset(&order_log, 0, sizeof(order_log));
    uint64_t registered = 0;
    for (uint64_t id = 0; id < 500; id++) {
        uint64_t end = append_id(wal, id, small_len(id));
        registered += !wal_when_durable(wal, end, on_ordered, (void *)(uintptr_t)registered);
    }
    /* A waiter for an LSN nobody will ever write is told the log closed. */
    uint64_t future = wal_reserved_lsn(wal) + 1000000;
    cr_assert_not(wal_when_durable(wal, future, on_ordered, (void *)(uintptr_t)registered));
    wal_close(wal);
    cr_assert_eq(order_log.count, registered + 1);
    for (uint64_t i = 0; i < registered; i++)
        cr_assert_eq(order_log.status[i], TK_OK);
    cr_assert_eq(order_log.status[registered], TK_ERR_UNAVAILABLE);
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 500);
    wal_close(wal);
}

static void on_flag(void *ctx, enum tk_status status)
{
    _Atomic int *flag = ctx;
    atomic_store(flag, status == TK_OK ? 1 : 2);
}

/* Regression: the writer ran waiters only while their LSN was covered, in queue
 * order, so a covered waiter queued behind an uncovered one (two threads register
 * out of LSN order; here one waits for an LSN nobody appends) waited for a later
 * group commit. Now every covered waiter runs after the sync that covers it. */
Test(wal, covered_waiter_behind_an_uncovered_one_runs_after_its_sync)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    memset(&order_log, 0, sizeof(order_log));
    uint64_t future = wal_reserved_lsn(wal) + 1000000;
    cr_assert_not(wal_when_durable(wal, future, on_ordered, (void *)(uintptr_t)7));
    _Atomic int flags[3] = {0};
    uint64_t end = 0;
    for (int i = 0; i < 3; i++) {
        end = append_id(wal, (uint64_t)i, small_len((uint64_t)i));
        cr_assert_not(wal_when_durable(wal, end, on_flag, &flags[i]), "nothing is durable before the sync");
    }
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    /* wal_wait_durable may return before the writer ran the batch's other waiters. */
    for (int waited_ms = 0; waited_ms < 5000 && atomic_load(&flags[2]) == 0; waited_ms++)
        usleep(1000);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(atomic_load(&flags[i]), 1, "waiter %d ran with TK_OK before close", i);
    cr_assert_eq(order_log.count, 0, "the uncovered waiter has not run");
    wal_close(wal);
    cr_assert_eq(order_log.count, 1);
    cr_assert_eq(order_log.order[0], 7);
    cr_assert_eq(order_log.status[0], TK_ERR_UNAVAILABLE);
}

/* ---- segments --------------------------------------------------------------- */

static uint64_t fill_segments(struct wal *wal, uint64_t first_id, uint64_t count, uint64_t *ends)
{
    uint64_t end = 0;
    for (uint64_t i = 0; i < count; i++) {
        end = append_id(wal, first_id + i, small_len(first_id + i));
        if (ends)
            ends[i] = end;
        if (i % 50 == 49)
            cr_assert_eq(wal_wait_durable(wal, end), TK_OK); /* ~5 KB batches: a roll each */
    }
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    return end;
}

Test(wal, segment_rollover_and_truncate_before)
{
    struct options opt = {.segment_bytes = WAL_SEGMENT_BYTES_MIN};
    struct wal *wal = open_ok(test_dir, &opt, &rep);
    static uint64_t ends[2000];
    fill_segments(wal, 0, 2000, ends);
    struct segment_names names;
    list_segments(test_dir, &names);
    cr_assert_gt(names.count, 20, "segments: %d", names.count);
    cr_assert_eq(names.starts[0], 0);

    uint64_t cut = ends[999];
    cr_assert_eq(wal_truncate_before(wal, cut), TK_OK);
    struct segment_names after;
    list_segments(test_dir, &after);
    cr_assert_lt(after.count, names.count);
    cr_assert_leq(after.starts[0], cut, "the segment holding the cut point is kept");
    cr_assert(after.count == 1 || after.starts[1] > cut, "every segment ending at or before it is gone");
    wal_close(wal);

    opt.from_lsn = cut;
    wal = open_ok(test_dir, &opt, &rep);
    cr_assert_eq(rep.count, 1000);
    cr_assert_eq(rep.ids[0], 1000);
    cr_assert_eq(wal_truncate_before(wal, UINT64_MAX), TK_OK);
    list_segments(test_dir, &after);
    cr_assert_eq(after.count, 1, "never the segment being written");
    wal_close(wal);

    char err[512];
    opt.from_lsn = 0;
    cr_assert_eq(open_wal(&wal, test_dir, &opt, &rep, err, sizeof(err)), TK_ERR_CORRUPT);
    cr_assert(strstr(err, "records are missing") != NULL, "%s", err);
}

Test(wal, missing_middle_segment_is_refused)
{
    struct options opt = {.segment_bytes = WAL_SEGMENT_BYTES_MIN};
    struct wal *wal = open_ok(test_dir, &opt, &rep);
    fill_segments(wal, 0, 500, NULL);
    wal_close(wal);
    struct segment_names names;
    list_segments(test_dir, &names);
    cr_assert_geq(names.count, 3);
    char path[600];
    segment_file(path, sizeof(path), test_dir, names.starts[1]);
    cr_assert_eq(unlink(path), 0);
    char err[512];
    cr_assert_eq(open_wal(&wal, test_dir, &opt, &rep, err, sizeof(err)), TK_ERR_CORRUPT);
    cr_assert(strstr(err, "WAL corrupt: ") != NULL && strstr(err, "gap") != NULL, "%s", err);
}

Test(wal, corruption_in_a_segment_followed_by_another_is_refused)
{
    struct options opt = {.segment_bytes = WAL_SEGMENT_BYTES_MIN};
    struct wal *wal = open_ok(test_dir, &opt, &rep);
    fill_segments(wal, 0, 500, NULL);
    wal_close(wal);
    struct segment_names names;
    list_segments(test_dir, &names);
    cr_assert_geq(names.count, 3);
    char path[600];
    segment_file(path, sizeof(path), test_dir, names.starts[names.count - 2]);
    off_t size = file_size(path);
    flip_byte(path, size - 1); /* inside its last COMMIT */
    char err[512];
    cr_assert_eq(open_wal(&wal, test_dir, &opt, &rep, err, sizeof(err)), TK_ERR_CORRUPT);
    cr_assert(strstr(err, path) != NULL, "names the file: %s", err);
    cr_assert(strstr(err, "later segment") != NULL, "%s", err);
}

/* ---- recovery on damaged files ---------------------------------------------- */

/* Where record id starts: not the previous record's end, a COMMIT may sit between. */
static uint64_t record_start(const uint64_t *ends, uint64_t id)
{
    return ends[id] - wal_record_size(small_len(id));
}

/* Writes 30 records in three synced rounds; returns the end LSNs. */
static void three_batches(uint64_t *ends)
{
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    for (uint64_t id = 0; id < 30; id++) {
        ends[id] = append_id(wal, id, small_len(id));
        if (id % 10 == 9)
            cr_assert_eq(wal_wait_durable(wal, ends[id]), TK_OK);
    }
    wal_close(wal);
}

Test(wal, truncated_file_tail_is_cut_back_and_appends_continue)
{
    uint64_t ends[30];
    three_batches(ends);
    char path[600];
    segment_file(path, sizeof(path), test_dir, 0);
    uint64_t record_20 = record_start(ends, 20);
    cr_assert_eq(truncate(path, (off_t)record_20 + 13), 0, "cut inside record 20");
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 20);
    cr_assert(log_contains("torn tail"), "%s", log_text);
    cr_assert_eq(file_size(path), (off_t)record_20, "cut back to the last valid record");
    cr_assert_eq(wal_durable_lsn(wal), record_20);
    uint64_t end = append_id(wal, 100, small_len(100));
    cr_assert_eq(end, record_20 + wal_record_size(small_len(100)));
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    wal_close(wal);
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 21);
    cr_assert_eq(rep.ids[20], 100);
    wal_close(wal);
}

Test(wal, truncated_commit_is_a_torn_tail)
{
    uint64_t ends[30];
    three_batches(ends);
    char path[600];
    segment_file(path, sizeof(path), test_dir, 0);
    off_t size = file_size(path);
    cr_assert_eq(truncate(path, size - 13), 0);
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 30, "the records are whole; only the last COMMIT was torn");
    wal_close(wal);
}

Test(wal, bit_flip_in_the_last_batch_is_cut_back)
{
    uint64_t ends[30];
    three_batches(ends);
    char path[600];
    segment_file(path, sizeof(path), test_dir, 0);
    flip_byte(path, (off_t)record_start(ends, 29) + WAL_RECORD_HEADER_BYTES + 9); /* the last record's payload */
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 29);
    cr_assert(log_contains("crc mismatch"), "%s", log_text);
    cr_assert_eq(file_size(path), (off_t)record_start(ends, 29));
    uint64_t end = append_id(wal, 200, small_len(200));
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    wal_close(wal);
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 30);
    cr_assert_eq(rep.ids[29], 200);
    wal_close(wal);
}

Test(wal, bit_flip_in_an_early_batch_is_corruption)
{
    uint64_t ends[30];
    three_batches(ends);
    char path[600];
    segment_file(path, sizeof(path), test_dir, 0);
    uint64_t record_5 = record_start(ends, 5);
    flip_byte(path, (off_t)record_5 + WAL_RECORD_HEADER_BYTES + 3); /* record 5, first batch */
    off_t size = file_size(path);
    struct wal *wal = NULL;
    char err[1024];
    cr_assert_eq(open_wal(&wal, test_dir, NULL, &rep, err, sizeof(err)), TK_ERR_CORRUPT);
    cr_assert_null(wal);
    char expect[800];
    snprintf(expect, sizeof(expect), "WAL corrupt: %s offset %llu: crc mismatch", path,
             (unsigned long long)record_5);
    cr_assert(strstr(err, expect) != NULL, "got '%s', want '%s'", err, expect);
    cr_assert_eq(file_size(path), size, "nothing was cut");
    /* The header too: a flipped length is caught as well. */
    flip_byte(path, (off_t)record_5 + WAL_RECORD_HEADER_BYTES + 3);
    flip_byte(path, (off_t)record_5 + 1);
    cr_assert_eq(open_wal(&wal, test_dir, NULL, &rep, err, sizeof(err)), TK_ERR_CORRUPT);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

Test(wal, garbage_file_is_a_torn_tail)
{
    char path[600];
    segment_file(path, sizeof(path), test_dir, 0);
    static uint8_t garbage[20000];
    uint64_t state = 12345;
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)tk_test_rand(&state);
    write_file(path, garbage, sizeof(garbage));
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 0);
    cr_assert_eq(file_size(path), 0);
    uint64_t end = append_id(wal, 1, small_len(1));
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    wal_close(wal);
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 1);
    wal_close(wal);
    /* A stray file with a WAL-like name is ignored, with a log line. */
    char stray[600];
    snprintf(stray, sizeof(stray), "%s/wal-notanumber.log", test_dir);
    write_file(stray, "x", 1);
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 1);
    cr_assert(log_contains("ignoring unexpected file"), "%s", log_text);
    wal_close(wal);
}

Test(wal, zero_length_file_starts_the_log_at_its_lsn)
{
    char path[600];
    segment_file(path, sizeof(path), test_dir, 4096);
    write_file(path, "", 0);
    struct options opt = {.from_lsn = 4096};
    struct wal *wal = open_ok(test_dir, &opt, &rep);
    cr_assert_eq(rep.count, 0);
    cr_assert_eq(wal_durable_lsn(wal), 4096);
    uint64_t end = append_id(wal, 1, small_len(1));
    cr_assert_eq(end, 4096 + wal_record_size(small_len(1)));
    wal_close(wal);
    wal = open_ok(test_dir, &opt, &rep);
    cr_assert_eq(rep.count, 1);
    cr_assert_eq(rep.lsns[0], 4096);
    wal_close(wal);
}

Test(wal, zero_tail_and_empty_newest_segment_are_clean)
{
    uint64_t ends[30];
    three_batches(ends);
    char path[600];
    segment_file(path, sizeof(path), test_dir, 0);
    off_t size = file_size(path);
    static uint8_t zeros[8192];
    int fd = open(path, O_WRONLY | O_APPEND);
    cr_assert_eq(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
    close(fd);
    struct wal *wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 30);
    cr_assert_eq(file_size(path), size);
    cr_assert_not(log_contains("torn tail"), "zeros past the end are not damage: %s", log_text);
    wal_close(wal);
    /* An empty newest segment (a crash right after a roll) continues the stream. */
    char next[600];
    segment_file(next, sizeof(next), test_dir, (uint64_t)size);
    write_file(next, "", 0);
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 30);
    uint64_t end = append_id(wal, 300, small_len(300));
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    wal_close(wal);
    cr_assert_gt(file_size(next), 0, "appends went into the newest segment");
    wal = open_ok(test_dir, NULL, &rep);
    cr_assert_eq(rep.count, 31);
    wal_close(wal);
}

/* ---- I/O failure (simulated disk) ------------------------------------------- */

static _Atomic int failed_waiters;

static void on_failed(void *ctx, enum tk_status status)
{
    (void)ctx;
    cr_assert_eq(status, TK_ERR_IO);
    atomic_fetch_add(&failed_waiters, 1);
}

static void io_failure(const struct wal_io_sim_faults *faults)
{
    struct wal_io_sim *sim = wal_io_sim_create(42);
    struct options opt = {.io = wal_io_sim_io(sim)};
    struct wal *wal = open_ok("/sim/wal", &opt, &rep);
    uint64_t end = append_id(wal, 1, small_len(1));
    cr_assert_eq(wal_wait_durable(wal, end), TK_OK);
    wal_io_sim_set_faults(sim, faults);
    atomic_store(&failed_waiters, 0);
    uint8_t payload[64];
    payload_fill(2, sizeof(payload), payload);
    /* The writer may fail before the append returns: then the append says so. */
    enum tk_status status = wal_append(wal, TYPE_A, payload, sizeof(payload), &end);
    cr_assert(status == TK_OK || status == TK_ERR_IO, "%s", tk_status_name(status));
    bool now = wal_when_durable(wal, end, on_failed, NULL);
    cr_assert_not(now);
    cr_assert_eq(wal_wait_durable(wal, end), TK_ERR_IO);
    cr_assert_eq(atomic_load(&failed_waiters), 1);
    cr_assert_eq(wal_health(wal), TK_ERR_IO);
    payload_fill(3, sizeof(payload), payload);
    cr_assert_eq(wal_append(wal, TYPE_A, payload, sizeof(payload), &end), TK_ERR_IO, "later appends fail");
    cr_assert_eq(wal_wait_durable(wal, end + 1000), TK_ERR_IO, "later waiters fail");
    cr_assert(log_contains("WAL failed"), "%s", log_text);
    wal_close(wal);
    /* After a reboot the acknowledged record is there. */
    wal_io_sim_reboot(sim, 7, WAL_IO_SIM_FATE_RANDOM);
    wal = open_ok("/sim/wal", &opt, &rep);
    cr_assert_geq(rep.count, 1);
    cr_assert_eq(rep.ids[0], 1);
    wal_close(wal);
    wal_io_destroy(wal_io_sim_io(sim));
}

Test(wal, fsync_eio_fails_the_log)
{
    struct wal_io_sim_faults faults = {.fail_sync_at = 1, .fail_sync_errno = EIO};
    io_failure(&faults);
}

Test(wal, write_enospc_fails_the_log)
{
    struct wal_io_sim_faults faults = {.fail_write_at = 1, .fail_write_errno = ENOSPC};
    io_failure(&faults);
}

Test(wal, short_writes_are_completed)
{
    struct wal_io_sim *sim = wal_io_sim_create(42);
    struct wal_io_sim_faults faults = {.short_write_per_mille = 500};
    wal_io_sim_set_faults(sim, &faults);
    struct options opt = {.io = wal_io_sim_io(sim), .segment_bytes = WAL_SEGMENT_BYTES_MIN};
    struct wal *wal = open_ok("/sim/wal", &opt, &rep);
    fill_segments(wal, 0, 300, NULL);
    wal_close(wal);
    struct wal_io_sim_counters counters;
    wal_io_sim_counters(sim, &counters);
    cr_assert_gt(counters.short_writes, 0);
    wal_io_sim_reboot(sim, 1, WAL_IO_SIM_FATE_DROP);
    wal = open_ok("/sim/wal", &opt, &rep);
    cr_assert_eq(rep.count, 300);
    wal_close(wal);
    wal_io_destroy(wal_io_sim_io(sim));
}
