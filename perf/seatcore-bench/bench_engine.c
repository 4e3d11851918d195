/* bench_engine.c — the seat mixes: hold+release and hold+confirm(+return), on
 * one hot event or across many events, memory-only or durable.
 *
 * Each thread keeps a FIFO of live holds (options->live_holds shared among the
 * threads, so the seat occupancy — and so the conflict rate — does not depend on
 * the thread count). While the FIFO has room the thread holds; when it is full it
 * ends the oldest hold: release, or confirm and then return every sold seat so
 * the event never sells out. Every engine call counts as one op.
 *
 * Durable rows follow the contract in seatcore.h: a call answers at once with an
 * LSN, and the caller acknowledges when sc_engine_when_durable says so. Like a
 * server answering a batched request, a thread waits once per small batch of
 * calls (options->durable_batch) for the batch's largest LSN, never blocks on
 * the disk itself, and only pauses when more than options->outstanding_max of
 * its ops are unacknowledged (memory stays bounded). The issuing side is faster
 * than the disk, so that bound is reached and the ack latency is mostly the wait
 * behind it (Little's law: outstanding / throughput); --outstanding lowers it.
 * Throughput counts ops whose acknowledgement arrived inside the window; latency
 * is from the batch's first call to its acknowledgement (an upper bound for
 * every op in it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define DURABLE_BATCHES_MAX 65536u /* batch records per thread (a ring; --batch 1 needs one per op) */
#define LATENCY_SAMPLE_MASK                                                                                            \
    7u /* memory-only: time one call in 8 (two clock reads                                                             \
          cost ~5% of a call; sampling keeps that off the figure) */
#define STEPS_PER_STOP_CHECK 16u
#define DRAIN_TIMEOUT_NS (60ull * 1000000000ull)

enum bench_mix { MIX_HOLD_RELEASE, MIX_HOLD_CONFIRM };

struct engine_worker;

struct durable_batch {
    struct engine_worker *worker;
    uint64_t started_ns;
    uint32_t ops;
    _Atomic uint32_t done;
};

struct engine_worker {
    struct engine_run *run;
    struct bench_rng rng;
    struct live_ring live;
    struct tk_histogram *latency;
    uint64_t calls;
    uint64_t hold_calls, conflicts, sold_out, cap_reached, errors;
    enum tk_status first_error;
    /* durable only */
    struct durable_batch *batches;
    uint64_t batch_seq;
    struct durable_batch *open;
    uint64_t open_max_lsn;
    _Alignas(64) _Atomic uint64_t acked; /* written by the WAL thread */
    _Atomic uint64_t io_errors;
};

struct engine_run {
    struct sc_engine *engine;
    const struct bench_layout *layout;
    enum bench_mix mix;
    bool durable;
    uint32_t threads;
    uint32_t live_per_thread;
    uint32_t durable_batch;
    uint32_t outstanding_max;
    _Atomic bool stop;
    struct engine_worker *workers;
    /* read at the end of the window (durable rows) */
    uint64_t acked_at_end;
    struct sc_metrics metrics_at_end;
    uint64_t fsync_p50_ns, fsync_p99_ns, fsync_count;
};

/* ---- durability bookkeeping ---- */

static void on_durable(void *ctx, enum tk_status status)
{
    struct durable_batch *batch = ctx;
    struct engine_worker *w = batch->worker;
    if (status == TK_OK)
        tk_histogram_record(w->latency, bench_now_ns() - batch->started_ns);
    else
        atomic_fetch_add_explicit(&w->io_errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->acked, batch->ops, memory_order_release);
    atomic_store_explicit(&batch->done, 1, memory_order_release);
}

static void batch_open(struct engine_worker *w)
{
    /* Back-pressure: the WAL thread (and the disk) set the pace, not us. */
    while (w->calls - atomic_load_explicit(&w->acked, memory_order_acquire) > w->run->outstanding_max)
        bench_sleep_ns(20000);
    struct durable_batch *batch = &w->batches[w->batch_seq % DURABLE_BATCHES_MAX];
    while (atomic_load_explicit(&batch->done, memory_order_acquire) == 0)
        bench_sleep_ns(20000);
    batch->worker = w;
    batch->ops = 0;
    batch->started_ns = bench_now_ns();
    atomic_store_explicit(&batch->done, 0, memory_order_relaxed);
    w->open = batch;
    w->open_max_lsn = 0;
}

static void batch_submit(struct engine_worker *w)
{
    struct durable_batch *batch = w->open;
    w->open = NULL;
    w->batch_seq++;
    /* true: already durable (or nothing in the batch changed state): ack now. */
    if (sc_engine_when_durable(w->run->engine, w->open_max_lsn, on_durable, batch))
        on_durable(batch, TK_OK);
}

static inline uint64_t call_begin(struct engine_worker *w)
{
    if (w->run->durable) {
        if (w->open == NULL)
            batch_open(w);
        return 0;
    }
    return (w->calls & LATENCY_SAMPLE_MASK) == 0 ? bench_now_ns() : 0;
}

static inline void call_end(struct engine_worker *w, uint64_t started_ns, uint64_t lsn, enum tk_status status)
{
    w->calls++;
    if (status != TK_OK && status != TK_ERR_SEAT_CONFLICT && status != TK_ERR_SOLD_OUT &&
        status != TK_ERR_CAP_REACHED) {
        if (w->errors++ == 0)
            w->first_error = status;
    }
    if (w->run->durable) {
        w->open->ops++;
        if (lsn > w->open_max_lsn)
            w->open_max_lsn = lsn;
        if (w->open->ops >= w->run->durable_batch)
            batch_submit(w);
        return;
    }
    if (started_ns != 0)
        tk_histogram_record(w->latency, bench_now_ns() - started_ns);
}

/* ---- the calls ---- */

static void call_hold(struct engine_worker *w)
{
    struct bench_pick pick;
    workload_pick(w->run->layout, &w->rng, true, &pick);
    struct sc_hold_request request = {.event_id = pick.event_id, .user_id = pick.user_id, .best_section = -1};
    if (pick.best) {
        request.best_count = pick.count;
    } else {
        request.seat_count = pick.count;
        memcpy(request.seats, pick.seats, pick.count * sizeof(pick.seats[0]));
    }
    struct sc_hold_result result;
    uint64_t lsn = 0;
    uint64_t started = call_begin(w);
    enum tk_status status = sc_hold(w->run->engine, &request, &result, &lsn);
    call_end(w, started, lsn, status);
    w->hold_calls++;
    if (status == TK_OK) {
        struct live_hold *live = live_ring_push(&w->live);
        live->event_id = pick.event_id;
        live->user_id = pick.user_id;
        live->hold_id = result.hold_id;
        live->seat_count = result.seat_count;
        memcpy(live->seats, result.seats, sizeof(live->seats));
    } else if (status == TK_ERR_SEAT_CONFLICT) {
        w->conflicts++;
    } else if (status == TK_ERR_SOLD_OUT) {
        w->sold_out++;
    } else if (status == TK_ERR_CAP_REACHED) {
        w->cap_reached++;
    }
}

static void call_end_hold(struct engine_worker *w, const struct live_hold *hold)
{
    struct sc_engine *engine = w->run->engine;
    uint64_t lsn = 0;
    uint64_t started = call_begin(w);
    if (w->run->mix == MIX_HOLD_RELEASE) {
        enum tk_status status = sc_release(engine, hold->event_id, hold->user_id, hold->hold_id, &lsn);
        call_end(w, started, lsn, status);
        return;
    }
    enum tk_status status = sc_confirm(engine, hold->event_id, hold->user_id, hold->hold_id, 0, NULL, &lsn);
    call_end(w, started, lsn, status);
    if (status != TK_OK)
        return;
    /* A refund per sold seat keeps the event on sale for the whole window. */
    for (uint32_t i = 0; i < hold->seat_count; i++) {
        started = call_begin(w);
        status = sc_return_seat(engine, hold->event_id, hold->user_id, hold->seats[i], &lsn);
        call_end(w, started, lsn, status);
    }
}

static void worker_step(struct engine_worker *w)
{
    struct live_hold oldest;
    if (w->live.count >= w->run->live_per_thread && live_ring_pop(&w->live, &oldest)) {
        call_end_hold(w, &oldest);
        return;
    }
    call_hold(w);
}

static void worker_drain(struct engine_worker *w)
{
    if (w->open != NULL)
        batch_submit(w);
    uint64_t deadline = bench_now_ns() + DRAIN_TIMEOUT_NS;
    while (atomic_load_explicit(&w->acked, memory_order_acquire) < w->calls && bench_now_ns() < deadline)
        bench_sleep_ns(100000);
    if (atomic_load(&w->acked) < w->calls)
        fprintf(stderr, "seatcore-bench: %llu ops never acknowledged\n",
                (unsigned long long)(w->calls - atomic_load(&w->acked)));
}

static void *worker_main(void *arg)
{
    struct engine_worker *w = arg;
    bench_thread_ready();
    while (!atomic_load_explicit(&w->run->stop, memory_order_acquire))
        for (uint32_t i = 0; i < STEPS_PER_STOP_CHECK; i++)
            worker_step(w);
    if (w->run->durable)
        worker_drain(w);
    return NULL;
}

static void at_window_end(void *ctx)
{
    struct engine_run *run = ctx;
    run->acked_at_end = 0;
    for (uint32_t i = 0; i < run->threads; i++)
        run->acked_at_end += atomic_load_explicit(&run->workers[i].acked, memory_order_acquire);
    sc_engine_metrics(run->engine, &run->metrics_at_end);
    if (run->metrics_at_end.wal_fsync_ns != NULL) {
        run->fsync_p50_ns = tk_histogram_quantile(run->metrics_at_end.wal_fsync_ns, 0.50);
        run->fsync_p99_ns = tk_histogram_quantile(run->metrics_at_end.wal_fsync_ns, 0.99);
        run->fsync_count = tk_histogram_count(run->metrics_at_end.wal_fsync_ns);
    }
}

/* ---- one row ---- */

struct engine_row_spec {
    const char *id;
    const char *group;
    const char *name;
    const struct bench_layout *layout;
    enum bench_mix mix;
    bool durable;
    uint32_t threads;
};

static int workers_init(struct engine_run *run, const struct bench_options *options)
{
    run->workers = calloc(run->threads, sizeof(run->workers[0]));
    if (run->workers == NULL)
        return -1;
    for (uint32_t i = 0; i < run->threads; i++) {
        struct engine_worker *w = &run->workers[i];
        w->run = run;
        w->rng.state = 0x5eedull * (i + 1) + (uint64_t)run->mix * 7919u + (uint64_t)run->layout->event_count;
        w->latency = bench_histogram_new();
        if (w->latency == NULL || live_ring_init(&w->live, run->live_per_thread) != 0)
            return -1;
        if (run->durable) {
            w->batches = calloc(DURABLE_BATCHES_MAX, sizeof(w->batches[0]));
            if (w->batches == NULL)
                return -1;
            for (uint32_t b = 0; b < DURABLE_BATCHES_MAX; b++)
                atomic_init(&w->batches[b].done, 1); /* free */
        }
    }
    (void)options;
    return 0;
}

static void workers_free(struct engine_run *run)
{
    if (run->workers == NULL)
        return;
    for (uint32_t i = 0; i < run->threads; i++) {
        bench_histogram_free(run->workers[i].latency);
        live_ring_free(&run->workers[i].live);
        free(run->workers[i].batches);
    }
    free(run->workers);
    run->workers = NULL;
}

static void row_fill(struct bench_row *row, struct engine_run *run, uint64_t window_ns, const struct sc_metrics *before)
{
    struct tk_histogram *latency = bench_histogram_new();
    uint64_t calls = 0, holds = 0, conflicts = 0, sold_out = 0, cap = 0, errors = 0, io_errors = 0;
    enum tk_status first_error = TK_OK;
    for (uint32_t i = 0; i < run->threads; i++) {
        struct engine_worker *w = &run->workers[i];
        calls += w->calls;
        holds += w->hold_calls;
        conflicts += w->conflicts;
        sold_out += w->sold_out;
        cap += w->cap_reached;
        errors += w->errors;
        io_errors += atomic_load(&w->io_errors);
        if (first_error == TK_OK)
            first_error = w->first_error;
        if (latency != NULL)
            tk_histogram_merge(latency, w->latency);
    }
    double seconds = (double)window_ns / 1e9;
    double acked = run->durable ? (double)run->acked_at_end : (double)calls;
    row->ops_per_s = acked / seconds;
    if (latency != NULL && tk_histogram_count(latency) > 0) {
        row->p50_ns = (double)tk_histogram_quantile(latency, 0.50);
        row->p99_ns = (double)tk_histogram_quantile(latency, 0.99);
    }
    bench_histogram_free(latency);
    double conflict_pct = holds > 0 ? 100.0 * (double)conflicts / (double)holds : 0.0;
    bench_row_extra(row, "hold_calls", (double)holds);
    bench_row_extra(row, "conflict_pct", conflict_pct);
    bench_row_extra(row, "sold_out", (double)sold_out);
    bench_row_extra(row, "cap_reached", (double)cap);
    bench_row_extra(row, "errors", (double)(errors + io_errors));
    bench_row_note(row, "conflicts %.1f%% of holds", conflict_pct);
    if (run->durable) {
        const struct sc_metrics *end = &run->metrics_at_end;
        double batches = (double)(end->wal_batches - before->wal_batches);
        double records = (double)(end->wal_records - before->wal_records);
        double per_fsync = batches > 0 ? records / batches : 0.0;
        char p50[16], p99[16];
        bench_row_extra(row, "issued_ops_per_s", (double)calls / seconds);
        bench_row_extra(row, "wal_records_per_s", records / seconds);
        bench_row_extra(row, "wal_batches", batches);
        bench_row_extra(row, "records_per_fsync", per_fsync);
        bench_row_extra(row, "fsync_p50_ns", (double)run->fsync_p50_ns);
        bench_row_extra(row, "fsync_p99_ns", (double)run->fsync_p99_ns);
        bench_row_note(row, "%.0f fsyncs, %.0f recs/fsync, fsync p50 %s p99 %s", batches, per_fsync,
                       bench_fmt_ns(p50, sizeof(p50), (double)run->fsync_p50_ns),
                       bench_fmt_ns(p99, sizeof(p99), (double)run->fsync_p99_ns));
        bench_row_note(row, "latency = ack of a %u-op batch, <= %u ops outstanding/thread", run->durable_batch,
                       run->outstanding_max);
    }
    if (errors + io_errors > 0)
        bench_row_note(row, "%llu ERRORS (first: %s)", (unsigned long long)(errors + io_errors),
                       io_errors > 0 ? "WAL I/O" : tk_status_name(first_error));
}

/* On a shared machine the wall rate moves with the neighbours; ops per
 * CPU-second of this process moves much less (memory-only rows only run the
 * workers, so it is what a dedicated core would do). */
static void row_cpu(struct bench_row *row, uint64_t window_ns, double cpu_seconds, bool durable)
{
    row->cores = cpu_seconds / ((double)window_ns / 1e9);
    if (cpu_seconds <= 0 || row->ops_per_s <= 0)
        return;
    double per_cpu = row->ops_per_s * ((double)window_ns / 1e9) / cpu_seconds;
    bench_row_extra(row, "ops_per_cpu_second", per_cpu);
    if (!durable) {
        char n[32];
        bench_row_note(row, "%s ops per cpu-second", bench_fmt_count(n, sizeof(n), per_cpu));
    }
}

static void engine_row(struct bench_report *report, const struct bench_options *options,
                       const struct engine_row_spec *spec)
{
    struct bench_row *row = bench_row_add(report, spec->id, spec->group, spec->name, spec->threads);
    if (row == NULL)
        return;
    char dir[600] = "", err[512] = "";
    struct engine_run run = {.layout = spec->layout,
                             .mix = spec->mix,
                             .durable = spec->durable,
                             .threads = spec->threads,
                             .durable_batch = options->durable_batch,
                             .outstanding_max = options->outstanding_max};
    run.live_per_thread = options->live_holds / spec->threads;
    if (run.live_per_thread == 0)
        run.live_per_thread = 1;
    struct sc_engine_config config = {.events_max = spec->layout->event_count < 64 ? 64 : spec->layout->event_count,
                                      .log = bench_engine_log};
    if (spec->durable) {
        if (bench_tempdir(options->data_parent, "seatcore-bench-wal", dir, sizeof(dir)) != 0) {
            dir[0] = '\0';
            bench_row_skip(row, "cannot create a temporary data dir");
            goto out;
        }
        config.data_dir = dir;
    }
    if (sc_engine_open(&run.engine, &config, err, sizeof(err)) != TK_OK) {
        bench_row_skip(row, err);
        goto out;
    }
    if (workload_create_events(run.engine, spec->layout, err, sizeof(err)) != TK_OK) {
        bench_row_skip(row, err);
        goto out;
    }
    if (workers_init(&run, options) != 0) {
        bench_row_skip(row, "out of memory");
        goto out;
    }
    struct sc_metrics before;
    sc_engine_metrics(run.engine, &before);
    before.op_latency_ns = NULL;
    before.wal_fsync_ns = NULL;
    void *args[64];
    for (uint32_t i = 0; i < spec->threads; i++)
        args[i] = &run.workers[i];
    struct bench_threads threads = {.count = spec->threads,
                                    .fn = worker_main,
                                    .args = args,
                                    .seconds = options->seconds,
                                    .stop = &run.stop,
                                    .at_window_end = at_window_end,
                                    .ctx = &run};
    uint64_t window_ns = bench_run_threads(&threads);
    row_fill(row, &run, window_ns, &before);
    row_cpu(row, window_ns, threads.cpu_seconds, spec->durable);
out:
    workers_free(&run);
    if (run.engine != NULL)
        sc_engine_close(run.engine);
    if (dir[0] != '\0')
        bench_rmtree(dir);
    bench_row_progress(row);
}

static const struct bench_layout hot_layout = {
    .event_count = 1, .first_event_id = 1001, .rows = 10, .seats_per_row = 100, .users = 10000, .best_percent = 20};
static const struct bench_layout many_layout = {
    .event_count = 64, .first_event_id = 2001, .rows = 10, .seats_per_row = 100, .users = 10000, .best_percent = 20};

void bench_engine_rows(struct bench_report *report, const struct bench_options *options)
{
    static const struct engine_row_spec specs[] = {
        {"mem.hold_release.1t", "mem", "hold+release, hot event", &hot_layout, MIX_HOLD_RELEASE, false, 1},
        {"mem.hold_release.2t", "mem", "hold+release, hot event", &hot_layout, MIX_HOLD_RELEASE, false, 2},
        {"mem.hold_confirm.1t", "mem", "hold+confirm+return, hot event", &hot_layout, MIX_HOLD_CONFIRM, false, 1},
        {"mem.hold_confirm.2t", "mem", "hold+confirm+return, hot event", &hot_layout, MIX_HOLD_CONFIRM, false, 2},
        {"many.hold_release.1t", "many", "hold+release, 64 events", &many_layout, MIX_HOLD_RELEASE, false, 1},
        {"many.hold_release.2t", "many", "hold+release, 64 events", &many_layout, MIX_HOLD_RELEASE, false, 2},
        {"many.hold_confirm.1t", "many", "hold+confirm+return, 64 events", &many_layout, MIX_HOLD_CONFIRM, false, 1},
        {"many.hold_confirm.2t", "many", "hold+confirm+return, 64 events", &many_layout, MIX_HOLD_CONFIRM, false, 2},
        {"durable.hold_release.1t", "durable", "DURABLE hold+release, hot", &hot_layout, MIX_HOLD_RELEASE, true, 1},
        {"durable.hold_release.2t", "durable", "DURABLE hold+release, hot", &hot_layout, MIX_HOLD_RELEASE, true, 2},
        {"durable.hold_confirm.1t", "durable", "DURABLE hold+confirm+return, hot", &hot_layout, MIX_HOLD_CONFIRM, true,
         1},
        {"durable.hold_confirm.2t", "durable", "DURABLE hold+confirm+return, hot", &hot_layout, MIX_HOLD_CONFIRM, true,
         2},
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        if (bench_group_enabled(options, specs[i].group))
            engine_row(report, options, &specs[i]);
}
