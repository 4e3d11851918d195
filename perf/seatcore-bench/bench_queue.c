/* bench_queue.c — the waiting room: joins, position reads (sc_queue_status) and
 * admissions (sc_engine_tick) on one event with a queue.
 *
 * Admission is paced by admit_per_s over the engine's clock, so a real clock
 * would measure the configured rate, not the engine. This group runs on a
 * manual clock moved one simulated second per tick with admit_per_s at its
 * bound: the figure is how many admissions per wall second the ticking thread
 * can process. Joins and position reads do not depend on time.
 *
 * The queue functions are referenced weakly: while the queue glue
 * (seatcore/engine_queue.c) is not in the library the rows print "skipped:
 * queue not built" instead of failing the link. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#pragma weak sc_queue_join
#pragma weak sc_queue_status

#define QUEUE_EVENT_ID 7001u
#define QUEUE_CLOCK_START_MS INT64_C(1767225600000) /* 2026-01-01, any fixed instant */
#define QUEUE_TICK_SIMULATED_MS 1000
#define QUEUE_STATUS_SAMPLE_MASK 7u
#define QUEUE_STEPS_PER_STOP_CHECK 16u
#define QUEUE_IDLE_TICKS_MAX 3u
/* A big on-sale's waiting room; the tables (tickets, users, position trees) are
 * sized from it at creation and first touched by the joins. */
#define QUEUE_LENGTH_MAX 1000000u

enum queue_mode { QUEUE_JOIN, QUEUE_STATUS };

struct queue_worker {
    struct queue_run *run;
    uint32_t index;
    struct bench_rng rng;
    struct tk_histogram *latency;
    uint64_t calls;
    uint64_t errors;
    enum tk_status first_error;
    bool full; /* the queue reached length_max */
    uint64_t started_ns, ended_ns;
};

struct queue_run {
    struct sc_engine *engine;
    struct tk_clock_manual clock;
    enum queue_mode mode;
    uint32_t threads;
    uint64_t joined; /* users 1..joined are in the queue (STATUS mode) */
    _Atomic bool stop;
    struct queue_worker workers[2];
};

static bool queue_built(void)
{
    return sc_queue_join != NULL && sc_queue_status != NULL;
}

static void queue_call(struct queue_worker *w)
{
    struct queue_run *run = w->run;
    struct sc_queue_view view;
    uint64_t started = (w->calls & QUEUE_STATUS_SAMPLE_MASK) == 0 ? bench_now_ns() : 0;
    enum tk_status status;
    if (run->mode == QUEUE_JOIN) {
        /* Thread i joins users i+1, i+1+T, ...: every join is a new arrival. */
        uint64_t user = 1 + w->index + w->calls * run->threads;
        uint64_t lsn;
        status = sc_queue_join(run->engine, QUEUE_EVENT_ID, user, &view, &lsn);
        if (status == TK_ERR_QUEUE_FULL)
            w->full = true;
    } else {
        uint64_t user = 1 + (bench_rng_next(&w->rng) % run->joined);
        uint64_t lsn;
        status = sc_queue_status(run->engine, QUEUE_EVENT_ID, user, &view, &lsn);
    }
    if (started != 0)
        tk_histogram_record(w->latency, bench_now_ns() - started);
    w->calls++;
    if (status != TK_OK && w->errors++ == 0)
        w->first_error = status;
}

static void *queue_worker_main(void *arg)
{
    struct queue_worker *w = arg;
    bench_thread_ready();
    w->started_ns = bench_now_ns();
    while (!atomic_load_explicit(&w->run->stop, memory_order_acquire) && !w->full)
        for (uint32_t i = 0; i < QUEUE_STEPS_PER_STOP_CHECK && !w->full; i++)
            queue_call(w);
    w->ended_ns = bench_now_ns();
    return NULL;
}

static enum tk_status queue_engine_open(struct queue_run *run, char *err, size_t err_len)
{
    static const uint8_t token_key[32] = "seatcore-bench admission key 32b";
    tk_clock_manual_init(&run->clock, QUEUE_CLOCK_START_MS);
    struct sc_engine_config config = {
        .clock = &run->clock.base, .token_key = token_key, .token_key_len = sizeof(token_key), .log = bench_engine_log};
    enum tk_status status = sc_engine_open(&run->engine, &config, err, err_len);
    if (status != TK_OK)
        return status;
    struct sc_event_spec spec;
    static const struct bench_layout layout = {
        .event_count = 1, .first_event_id = QUEUE_EVENT_ID, .rows = 10, .seats_per_row = 100, .users = 10000};
    workload_event_spec(&layout, QUEUE_EVENT_ID, &spec);
    /* Every bound at its ceiling: measure the engine, not a throttle. */
    spec.queue = (struct sc_queue_spec){.enabled = true,
                                        .admit_per_s = TK_ADMIT_PER_S_MAX,
                                        .max_active = TK_MAX_ACTIVE_MAX,
                                        .length_max = QUEUE_LENGTH_MAX,
                                        .admission_ttl_ms = TK_ADMISSION_TTL_MS_MAX,
                                        .heartbeat_timeout_ms = TK_HEARTBEAT_TIMEOUT_MS_MAX};
    status = sc_event_create(run->engine, &spec, NULL);
    if (status != TK_OK)
        snprintf(err, err_len, "sc_event_create with a queue: %s", tk_status_message(status));
    return status;
}

/* Runs join or status threads for the row's time. Returns how many users are
 * surely in the queue after a join row: 1..n, with n = threads x the fewest
 * joins one thread made (thread i joined users i+1, i+1+T, ...). */
static uint64_t queue_threads_row(struct queue_run *run, struct bench_row *row, const struct bench_options *options)
{
    void *args[2];
    for (uint32_t i = 0; i < run->threads; i++) {
        struct queue_worker *w = &run->workers[i];
        memset(w, 0, sizeof(*w));
        *w = (struct queue_worker){.run = run, .index = i, .rng = {.state = 77u + i}, .latency = bench_histogram_new()};
        args[i] = w;
    }
    struct bench_threads threads = {
        .count = run->threads, .fn = queue_worker_main, .args = args, .seconds = options->seconds, .stop = &run->stop};
    uint64_t window_ns = bench_run_threads(&threads);
    if (window_ns == 0)
        return 0;

    /* The threads' own span, not the window: joins stop early when the queue
     * reaches length_max. */
    uint64_t first_start = UINT64_MAX, last_end = 0;
    uint64_t calls = 0, errors = 0, fewest = UINT64_MAX, answered = 0;
    bool full = false;
    enum tk_status first_error = TK_OK;
    struct tk_histogram *latency = bench_histogram_new();
    for (uint32_t i = 0; i < run->threads; i++) {
        struct queue_worker *w = &run->workers[i];
        calls += w->calls;
        uint64_t made = w->calls - (w->full ? 1 : 0);
        fewest = made < fewest ? made : fewest;
        answered += made;
        first_start = w->started_ns < first_start ? w->started_ns : first_start;
        last_end = w->ended_ns > last_end ? w->ended_ns : last_end;
        errors += w->errors - (w->full ? 1 : 0);
        full |= w->full;
        if (first_error == TK_OK && w->errors > (w->full ? 1u : 0u))
            first_error = w->first_error;
        if (latency != NULL && w->latency != NULL)
            tk_histogram_merge(latency, w->latency);
        bench_histogram_free(w->latency);
    }
    double span_s = last_end > first_start ? (double)(last_end - first_start) / 1e9 : 0.0;
    row->ops_per_s = span_s > 0 ? (double)calls / span_s : -1;
    /* The threads are gone after their span, so all the CPU was used inside it. */
    row->cores = span_s > 0 ? threads.cpu_seconds / span_s : -1;
    if (latency != NULL && tk_histogram_count(latency) > 0) {
        row->p50_ns = (double)tk_histogram_quantile(latency, 0.50);
        row->p99_ns = (double)tk_histogram_quantile(latency, 0.99);
    }
    bench_histogram_free(latency);
    char n[32];
    if (run->mode == QUEUE_JOIN)
        bench_row_note(row, "%s users joined", bench_fmt_count(n, sizeof(n), (double)answered));
    else
        bench_row_note(row, "random users in a queue of %s", bench_fmt_count(n, sizeof(n), (double)run->joined));
    if (full)
        bench_row_note(row, "stopped early at length_max");
    if (errors > 0)
        bench_row_note(row, "%llu ERRORS (first: %s)", (unsigned long long)errors, tk_status_name(first_error));
    return errors == 0 && fewest != UINT64_MAX ? fewest * run->threads : 0;
}

/* One thread ticks with the clock one simulated second ahead each time, until the
 * row's time is up or ticks stop admitting (everyone admitted, or max_active).
 * The first tick after the opening only opens the queue (no admissions yet), so
 * it runs before the timing starts. */
static void queue_admission_row(struct queue_run *run, struct bench_row *row, const struct bench_options *options)
{
    tk_clock_manual_advance(&run->clock, QUEUE_TICK_SIMULATED_MS);
    sc_engine_tick(run->engine);
    struct sc_metrics m;
    sc_engine_metrics(run->engine, &m);
    uint64_t admitted_before = m.queue_admissions, admitted = admitted_before;
    struct tk_histogram *latency = bench_histogram_new();
    uint64_t ticks = 0, idle_ticks = 0, started = bench_now_ns();
    double cpu0 = bench_cpu_seconds(), cpu_busy = cpu0;
    uint64_t deadline = started + (uint64_t)(options->seconds * 1e9), now = started, busy_until = started;
    while (now < deadline && idle_ticks < QUEUE_IDLE_TICKS_MAX) {
        tk_clock_manual_advance(&run->clock, QUEUE_TICK_SIMULATED_MS);
        uint64_t t0 = bench_now_ns();
        sc_engine_tick(run->engine);
        now = bench_now_ns();
        ticks++;
        sc_engine_metrics(run->engine, &m);
        if (m.queue_admissions == admitted) {
            idle_ticks++;
            continue;
        }
        idle_ticks = 0;
        admitted = m.queue_admissions;
        busy_until = now;
        cpu_busy = bench_cpu_seconds();
        if (latency != NULL)
            tk_histogram_record(latency, now - t0);
    }
    /* Rate over the time ticks were admitting: idle ticks at the end (queue
     * drained) would otherwise dilute it. */
    double seconds = (double)(busy_until - started) / 1e9;
    uint64_t count = admitted - admitted_before;
    row->ops_per_s = count > 0 && seconds > 0 ? (double)count / seconds : 0;
    if (seconds > 0)
        row->cores = (cpu_busy - cpu0) / seconds;
    if (latency != NULL && tk_histogram_count(latency) > 0) {
        row->p50_ns = (double)tk_histogram_quantile(latency, 0.50);
        row->p99_ns = (double)tk_histogram_quantile(latency, 0.99);
    }
    bench_histogram_free(latency);
    char n[32];
    bench_row_note(row, "%s admitted in %llu ticks, %.3f s wall; p50/p99 = one admitting tick",
                   bench_fmt_count(n, sizeof(n), (double)count), (unsigned long long)ticks, seconds);
    if (count == 0)
        bench_row_note(row, "NOBODY ADMITTED");
}

void bench_queue_rows(struct bench_report *report, const struct bench_options *options)
{
    static const char *const ids[] = {"queue.join.1t", "queue.join.2t", "queue.status.1t", "queue.status.2t",
                                      "queue.admit.1t"};
    static const char *const names[] = {"queue: join", "queue: join", "queue: position (sc_queue_status)",
                                        "queue: position (sc_queue_status)", "queue: admission (tick)"};
    static const uint32_t threads[] = {1, 2, 1, 2, 1};
    if (!queue_built()) {
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
            struct bench_row *row = bench_row_add(report, ids[i], "queue", names[i], threads[i]);
            if (row != NULL) {
                bench_row_skip(row, "queue not built (sc_queue_join is not in libseatcore yet)");
                bench_row_progress(row);
            }
        }
        return;
    }
    static struct queue_run run; /* holds a manual clock the engine points at */
    char err[512];
    for (uint32_t join_threads = 1; join_threads <= 2; join_threads++) {
        /* A fresh queue per join row: every join is a new arrival. */
        memset(&run, 0, sizeof(run));
        struct bench_row *row = bench_row_add(report, ids[join_threads - 1], "queue", names[0], join_threads);
        if (row == NULL)
            return;
        if (queue_engine_open(&run, err, sizeof(err)) != TK_OK) {
            bench_row_skip(row, err);
            bench_row_progress(row);
            if (run.engine != NULL)
                sc_engine_close(run.engine);
            return;
        }
        run.mode = QUEUE_JOIN;
        run.threads = join_threads;
        run.joined = queue_threads_row(&run, row, options);
        bench_row_progress(row);
        if (join_threads == 1)
            sc_engine_close(run.engine);
    }
    /* Position reads and admissions on the queue the 2-thread join row filled. */
    run.mode = QUEUE_STATUS;
    for (uint32_t t = 1; t <= 2 && run.joined > 0; t++) {
        struct bench_row *row = bench_row_add(report, ids[1 + t], "queue", names[1 + t], t);
        if (row == NULL)
            break;
        run.threads = t;
        queue_threads_row(&run, row, options);
        bench_row_progress(row);
    }
    struct bench_row *row = bench_row_add(report, ids[4], "queue", names[4], 1);
    if (row != NULL) {
        if (run.joined > 0)
            queue_admission_row(&run, row, options);
        else
            bench_row_skip(row, "nobody joined");
        bench_row_progress(row);
    }
    sc_engine_close(run.engine);
}
