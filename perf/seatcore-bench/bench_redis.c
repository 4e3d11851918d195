/* bench_redis.c — the baseline rows: seat locks the way teams build them on
 * Redis today, run on the same machine with the same picks as the engine rows.
 * The server and the client (SET NX per seat, compare-and-delete Lua release)
 * are shared with rpc-bench: perf/common/redis_baseline.h.
 *
 * Not pipelined: each command waits for its reply (what a request handler does).
 * Pipelined: up to options->redis_pipeline commands in flight per connection,
 * across independent holds and releases. Each client thread has its own
 * connection, driven blocking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "redis_baseline.h"

#define REDIS_THREADS_MAX 2u

struct redis_run {
    char sha[64];
    _Atomic bool stop;
    struct redis_conn conns[REDIS_THREADS_MAX];
};

static _Atomic bool *worker_stop;

static void *redis_worker_main(void *arg)
{
    struct redis_conn *w = arg;
    bench_thread_ready();
    redis_conn_run_blocking(w, worker_stop);
    return NULL;
}

static const struct bench_layout redis_layout = {
    .event_count = 1, .first_event_id = 1001, .rows = 10, .seats_per_row = 100, .users = 10000, .best_percent = 20};

/* Sums the workers' counts into the row. */
static void redis_row_fill(struct bench_row *row, struct redis_run *run, uint32_t threads, uint32_t depth,
                           uint64_t window_ns, double server_cpu_seconds)
{
    double seconds = (double)window_ns / 1e9;
    struct redis_conn *conns[REDIS_THREADS_MAX];
    for (uint32_t i = 0; i < threads; i++)
        conns[i] = &run->conns[i];
    struct tk_histogram *latency = bench_histogram_new();
    struct redis_totals totals;
    redis_conns_totals(conns, threads, latency, &totals);
    row->ops_per_s = (double)totals.ops / seconds;
    if (latency != NULL && tk_histogram_count(latency) > 0) {
        row->p50_ns = (double)tk_histogram_quantile(latency, 0.50);
        row->p99_ns = (double)tk_histogram_quantile(latency, 0.99);
    }
    bench_histogram_free(latency);
    bench_row_extra(row, "hold_calls", (double)totals.holds);
    bench_row_extra(row, "conflict_pct", totals.conflict_pct);
    bench_row_extra(row, "errors", (double)totals.errors);
    bench_row_note(row, "conflicts %.1f%% of holds", totals.conflict_pct);
    if (depth > 1)
        bench_row_note(row, "%u commands in flight per connection", depth);
    if (server_cpu_seconds >= 0)
        bench_row_note(row, "redis-server used %.2f cores (cpu column: the clients)", server_cpu_seconds / seconds);
    if (totals.errors > 0)
        bench_row_note(row, "%llu ERRORS (first: %s)", (unsigned long long)totals.errors, totals.first_error);
}

static void redis_row(struct bench_report *report, const struct bench_options *options,
                      const struct redis_server *server, const char *id, const char *name, uint32_t threads,
                      uint32_t depth)
{
    struct bench_row *row = bench_row_add(report, id, "redis", name, threads);
    if (row == NULL)
        return;
    static struct redis_run run;
    memset(&run, 0, sizeof(run));
    worker_stop = &run.stop;
    char err[256];
    void *args[REDIS_THREADS_MAX];
    bool ready = redis_prepare(server->port, run.sha, sizeof(run.sha), err, sizeof(err));
    for (uint32_t i = 0; ready && i < threads; i++) {
        struct redis_conn_config config = {.port = server->port,
                                           .sha = run.sha,
                                           .depth = depth,
                                           .live = options->live_holds / threads,
                                           .layout = &redis_layout,
                                           .seed = 0x5eedull * (i + 1) + (uint64_t)depth * 131u};
        ready = redis_conn_init(&run.conns[i], &config, err, sizeof(err)) == 0;
        args[i] = &run.conns[i];
    }
    if (ready) {
        struct bench_threads t = {
            .count = threads, .fn = redis_worker_main, .args = args, .seconds = options->seconds, .stop = &run.stop};
        double server_cpu0 = bench_process_cpu_seconds(server->pid);
        uint64_t window_ns = bench_run_threads(&t);
        double server_cpu1 = bench_process_cpu_seconds(server->pid);
        row->cores = t.cpu_seconds / ((double)window_ns / 1e9);
        redis_row_fill(row, &run, threads, depth, window_ns,
                       server_cpu0 >= 0 && server_cpu1 >= 0 ? server_cpu1 - server_cpu0 : -1);
    } else {
        bench_row_skip(row, err);
    }
    for (uint32_t i = 0; i < threads; i++)
        redis_conn_free(&run.conns[i]);
    bench_row_progress(row);
}

void bench_redis_rows(struct bench_report *report, const struct bench_options *options)
{
    static const char *const ids[] = {"redis.hold_release.1t", "redis.hold_release.2t", "redis.pipelined.1t",
                                      "redis.pipelined.2t"};
    char pipelined[64];
    snprintf(pipelined, sizeof(pipelined), "Redis SET NX/Lua, pipelined x%u", options->redis_pipeline);
    const char *const names[] = {"Redis SET NX + Lua release", "Redis SET NX + Lua release", pipelined, pipelined};
    struct redis_server server;
    char err[1024];
    if (redis_server_start(&server, options->redis_server, options->data_parent, "seatcore-bench-redis", err,
                           sizeof(err)) != 0) {
        for (uint32_t i = 0; i < 4; i++) {
            struct bench_row *row = bench_row_add(report, ids[i], "redis", names[i], 1 + i % 2);
            if (row != NULL) {
                bench_row_skip(row, err);
                bench_row_progress(row);
            }
        }
        if (server.pid > 0)
            redis_server_stop(&server);
        return; /* the temp dir stays when the server failed: its log says why */
    }
    for (uint32_t i = 0; i < 4; i++)
        redis_row(report, options, &server, ids[i], names[i], 1 + i % 2, i < 2 ? 1 : options->redis_pipeline);
    redis_server_stop(&server);
}
