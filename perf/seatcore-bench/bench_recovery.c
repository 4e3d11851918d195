/* bench_recovery.c — how long a restart takes: sc_engine_open on a data dir
 * holding options->recovery_records WAL records (default 1,000,000), first by
 * pure WAL replay, then after sc_engine_snapshot (snapshot load + WAL tail).
 *
 * The records are real ones: holds and releases over 64 events of 1,000 seats,
 * written by the engine itself, so replay meets the same mix of record types and
 * versions it would after a crash during an on-sale. Some holds are still live
 * at close; the recovered per-event counts are compared with the ones before
 * the close, so a fast but wrong recovery does not pass silently. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"

#define RECOVERY_LIVE_HOLDS 2048u
#define RECOVERY_METRICS_EVERY 4096u

static const struct bench_layout recovery_layout = {
    .event_count = 64, .first_event_id = 5001, .rows = 10, .seats_per_row = 100, .users = 10000, .best_percent = 20};

static uint64_t dir_bytes(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    char file[1200];
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

/* Holds and releases (no waiting: the WAL ring's back-pressure paces us) until
 * the log has `records` records. */
static enum tk_status write_records(struct sc_engine *engine, uint64_t records)
{
    struct live_ring live;
    if (live_ring_init(&live, RECOVERY_LIVE_HOLDS) != 0)
        return TK_ERR_FULL;
    struct bench_rng rng = {.state = 0xdecafbadull};
    enum tk_status failure = TK_OK;
    for (uint64_t op = 0; failure == TK_OK; op++) {
        if (op % RECOVERY_METRICS_EVERY == 0) {
            struct sc_metrics m;
            sc_engine_metrics(engine, &m);
            if (m.wal_records >= records)
                break;
        }
        struct live_hold oldest;
        if (live.count == live.capacity && live_ring_pop(&live, &oldest)) {
            enum tk_status status = sc_release(engine, oldest.event_id, oldest.user_id, oldest.hold_id, NULL);
            if (status != TK_OK)
                failure = status;
            continue;
        }
        struct bench_pick pick;
        workload_pick(&recovery_layout, &rng, true, &pick);
        struct sc_hold_request request = {.event_id = pick.event_id, .user_id = pick.user_id, .best_section = -1};
        if (pick.best) {
            request.best_count = pick.count;
        } else {
            request.seat_count = pick.count;
            memcpy(request.seats, pick.seats, pick.count * sizeof(pick.seats[0]));
        }
        struct sc_hold_result result;
        enum tk_status status = sc_hold(engine, &request, &result, NULL);
        if (status == TK_OK) {
            struct live_hold *h = live_ring_push(&live);
            *h = (struct live_hold){.event_id = pick.event_id,
                                    .user_id = pick.user_id,
                                    .hold_id = result.hold_id,
                                    .seat_count = result.seat_count};
        } else if (status != TK_ERR_SEAT_CONFLICT && status != TK_ERR_SOLD_OUT && status != TK_ERR_CAP_REACHED) {
            failure = status;
        }
    }
    live_ring_free(&live);
    return failure;
}

/* Per-event counts, to check that recovery rebuilt the same state. */
static bool counts_read(struct sc_engine *engine, struct sc_counts *out)
{
    for (uint32_t i = 0; i < recovery_layout.event_count; i++) {
        struct sc_event_info info;
        if (sc_event_get(engine, recovery_layout.first_event_id + i, &info) != TK_OK)
            return false;
        out[i] = info.counts;
    }
    return true;
}

static bool counts_equal(const struct sc_counts *a, const struct sc_counts *b)
{
    for (uint32_t i = 0; i < recovery_layout.event_count; i++)
        if (a[i].free != b[i].free || a[i].held != b[i].held || a[i].sold != b[i].sold)
            return false;
    return true;
}

/* Opens the dir and times it; fills the row; leaves the engine open in *out. */
static bool timed_open(struct bench_row *row, const char *dir, const struct sc_counts *expected, uint64_t records,
                       uint64_t wal_bytes, struct sc_engine **out)
{
    char err[512];
    struct sc_engine_config config = {.data_dir = dir, .log = bench_engine_log};
    uint64_t t0 = bench_now_ns();
    enum tk_status status = sc_engine_open(out, &config, err, sizeof(err));
    double seconds = (double)(bench_now_ns() - t0) / 1e9;
    if (status != TK_OK) {
        *out = NULL;
        bench_row_skip(row, err);
        return false;
    }
    struct sc_counts counts[64];
    bool same = counts_read(*out, counts) && counts_equal(counts, expected);
    row->ops_per_s = (double)records / seconds;
    bench_row_extra(row, "open_seconds", seconds);
    bench_row_extra(row, "records", (double)records);
    bench_row_extra(row, "dir_bytes", (double)wal_bytes);
    char n[32];
    bench_row_note(row, "open %.3f s for %s records, %.1f MB on disk; ops/s = records/s", seconds,
                   bench_fmt_count(n, sizeof(n), (double)records), (double)wal_bytes / 1e6);
    if (!same)
        bench_row_note(row, "RECOVERED COUNTS DIFFER FROM THOSE BEFORE THE CLOSE");
    return true;
}

void bench_recovery_rows(struct bench_report *report, const struct bench_options *options)
{
    struct bench_row *replay = bench_row_add(report, "recovery.wal_replay", "recovery", "recovery: WAL replay", 0);
    if (replay == NULL)
        return;
    char dir[600], err[512] = "";
    if (bench_tempdir(options->data_parent, "seatcore-bench-recovery", dir, sizeof(dir)) != 0) {
        bench_row_skip(replay, "cannot create a temporary data dir");
        bench_row_progress(replay);
        return;
    }
    struct sc_engine *engine = NULL;
    struct sc_engine_config config = {.data_dir = dir, .log = bench_engine_log};
    struct sc_counts before[64];
    uint64_t records = 0;
    enum tk_status status = sc_engine_open(&engine, &config, err, sizeof(err));
    if (status == TK_OK)
        status = workload_create_events(engine, &recovery_layout, err, sizeof(err));
    uint64_t t0 = bench_now_ns();
    if (status == TK_OK)
        status = write_records(engine, options->recovery_records);
    if (status == TK_OK) {
        struct sc_metrics m;
        sc_engine_metrics(engine, &m);
        records = m.wal_records;
        if (!counts_read(engine, before))
            status = TK_ERR_NOT_FOUND;
    }
    if (engine != NULL)
        sc_engine_close(engine); /* flushes: every record is on disk */
    double write_s = (double)(bench_now_ns() - t0) / 1e9;
    engine = NULL;
    if (status != TK_OK) {
        bench_row_skip(replay, err[0] != '\0' ? err : tk_status_message(status));
        bench_row_progress(replay);
        bench_rmtree(dir);
        return;
    }
    bench_row_extra(replay, "write_records_per_s", (double)records / write_s);
    uint64_t wal_bytes = dir_bytes(dir);
    bool opened = timed_open(replay, dir, before, records, wal_bytes, &engine);
    bench_row_progress(replay);

    struct bench_row *snap = bench_row_add(report, "recovery.snapshot", "recovery", "recovery: snapshot + WAL tail", 0);
    if (snap != NULL && opened) {
        t0 = bench_now_ns();
        status = sc_engine_snapshot(engine);
        double snapshot_s = (double)(bench_now_ns() - t0) / 1e9;
        sc_engine_close(engine);
        engine = NULL;
        if (status != TK_OK) {
            bench_row_skip(snap, tk_status_message(status));
        } else if (timed_open(snap, dir, before, records, dir_bytes(dir), &engine)) {
            bench_row_extra(snap, "snapshot_write_seconds", snapshot_s);
            bench_row_note(snap, "snapshot written in %.3f s", snapshot_s);
        }
    } else if (snap != NULL) {
        bench_row_skip(snap, "the WAL replay row failed");
    }
    if (snap != NULL)
        bench_row_progress(snap);
    if (engine != NULL)
        sc_engine_close(engine);
    bench_rmtree(dir);
}
