/* rpcb_redis.c — the Redis baseline at the same concurrency as the gRPC rows.
 *
 * For every number of calls in flight the gRPC rows used (1, 16, 64, 256 by
 * default), the same number of Redis connections, each with one request in
 * flight (not pipelined: what a request handler that waits for its reply does),
 * running the same hold+release pairs over the same events and picks: hold =
 * SET NX PX per seat (rollback with DEL on a conflict), release = the
 * compare-and-delete Lua script; one op = one hold or one release
 * (perf/common/redis_baseline.h). The connections are multiplexed with epoll on
 * --client-threads threads, like the gRPC lanes on the client loop, so 256
 * callers do not need 256 threads. The server is a throwaway redis-server
 * without persistence (so the comparison flatters Redis: seatcored's rows are
 * durable). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_baseline.h"
#include "rpcb.h"

#define REDIS_MUX_THREADS_MAX 8u

struct mux_thread {
    struct redis_conn **conns;
    uint32_t count;
    _Atomic bool *stop;
    struct bench_samples samples;
};

static void *mux_main(void *arg)
{
    struct mux_thread *t = arg;
    bench_thread_ready();
    redis_conns_run_multiplexed(t->conns, t->count, t->stop);
    return NULL;
}

static void redis_row(struct bench_report *report, const struct rpcb_options *options,
                      const struct redis_server *server, const struct bench_layout *layout, uint32_t depth)
{
    char id[48];
    snprintf(id, sizeof(id), "redis.c%u", depth);
    struct bench_row *row = bench_row_add(report, id, "rpc-redis", "Redis SET NX + Lua, not pipelined", depth);
    if (row == NULL)
        return;
    char sha[64], err[256];
    _Atomic bool stop = false;
    uint32_t thread_count = depth < options->client_threads ? depth : options->client_threads;
    if (thread_count > REDIS_MUX_THREADS_MAX)
        thread_count = REDIS_MUX_THREADS_MAX;
    struct redis_conn *conns = calloc(depth, sizeof(*conns));
    struct redis_conn **list = calloc(depth, sizeof(*list));
    struct mux_thread threads[REDIS_MUX_THREADS_MAX];
    memset(threads, 0, sizeof(threads));
    uint32_t opened = 0;
    bool ready = conns != NULL && list != NULL && redis_prepare(server->port, sha, sizeof(sha), err, sizeof(err));
    if (conns == NULL || list == NULL)
        snprintf(err, sizeof(err), "out of memory");
    for (uint32_t i = 0; ready && i < depth; i++) {
        /* live 1: hold, then release that hold, like the one-op-per-call lanes. */
        struct redis_conn_config config = {.port = server->port,
                                           .sha = sha,
                                           .depth = 1,
                                           .live = 1,
                                           .layout = layout,
                                           .seed = 0x5eedull * (i + 1) + (uint64_t)depth * 131u,
                                           .samples = &threads[i % thread_count].samples};
        ready = redis_conn_init(&conns[i], &config, err, sizeof(err)) == 0;
        if (ready)
            opened++;
        list[i] = &conns[i];
    }
    if (ready) {
        /* Thread k serves connections k, k + T, ...: list is regrouped per thread. */
        struct redis_conn **grouped = calloc(depth, sizeof(*grouped));
        void *args[REDIS_MUX_THREADS_MAX];
        uint32_t at = 0;
        for (uint32_t k = 0; grouped != NULL && k < thread_count; k++) {
            threads[k].conns = &grouped[at];
            threads[k].stop = &stop;
            for (uint32_t i = k; i < depth; i += thread_count)
                grouped[at++] = list[i];
            threads[k].count = (uint32_t)(&grouped[at] - threads[k].conns);
            args[k] = &threads[k];
        }
        if (grouped != NULL) {
            struct bench_threads t = {
                .count = thread_count, .fn = mux_main, .args = args, .seconds = options->seconds, .stop = &stop};
            double server_cpu0 = bench_process_cpu_seconds(server->pid), busy0 = bench_machine_busy_seconds();
            uint64_t window_ns = bench_run_threads(&t);
            double server_cpu1 = bench_process_cpu_seconds(server->pid), busy1 = bench_machine_busy_seconds();
            double seconds = (double)window_ns / 1e9;
            row->cores = t.cpu_seconds / seconds;
            struct redis_totals totals;
            redis_conns_totals(list, depth, NULL, &totals);
            row->ops_per_s = (double)totals.ops / seconds;
            struct bench_samples all = {0};
            for (uint32_t k = 0; k < thread_count; k++)
                bench_samples_merge(&all, &threads[k].samples);
            bench_samples_sort(&all);
            row->p50_ns = bench_samples_quantile(&all, 0.50);
            row->p90_ns = bench_samples_quantile(&all, 0.90);
            row->p99_ns = bench_samples_quantile(&all, 0.99);
            row->p999_ns = bench_samples_quantile(&all, 0.999);
            bench_samples_free(&all);
            double server_cores =
                server_cpu0 >= 0 && server_cpu1 >= 0 ? (server_cpu1 - server_cpu0) / seconds : -1;
            bench_row_extra(row, "calls_per_s", (double)totals.ops / seconds);
            bench_row_extra(row, "ops_per_call", 1);
            bench_row_extra(row, "server_cores", server_cores);
            if (busy0 >= 0 && busy1 >= 0 && server_cores >= 0)
                bench_row_extra(row, "other_cores", (busy1 - busy0) / seconds - row->cores - server_cores);
            bench_row_extra(row, "conflict_pct", totals.conflict_pct);
            bench_row_extra(row, "errors", (double)totals.errors);
            bench_row_note(row, "conflicts %.1f%% of holds", totals.conflict_pct);
            bench_row_note(row, "%u connections on %u client thread%s", depth, thread_count,
                           thread_count == 1 ? "" : "s");
            if (totals.errors > 0)
                bench_row_note(row, "%llu ERRORS (first: %s)", (unsigned long long)totals.errors,
                               totals.first_error);
            free(grouped);
        } else {
            bench_row_skip(row, "out of memory");
        }
    } else {
        bench_row_skip(row, err);
    }
    for (uint32_t i = 0; i < opened; i++)
        redis_conn_free(&conns[i]);
    for (uint32_t k = 0; k < REDIS_MUX_THREADS_MAX; k++)
        bench_samples_free(&threads[k].samples);
    free(conns);
    free(list);
    bench_row_progress(row);
}

static bool listed(const uint32_t *values, uint32_t count, uint32_t v)
{
    for (uint32_t i = 0; i < count; i++)
        if (values[i] == v)
            return true;
    return false;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void rpcb_redis_rows(struct bench_report *report, const struct rpcb_options *options)
{
    if (!rpcb_group_enabled(options, "rpc-redis"))
        return;
    /* Every concurrency a gRPC row used. */
    uint32_t depths[2 * RPCB_LIST_MAX], count = 0;
    const struct rpcb_list *lists[] = {&options->unary_depths, &options->batch_depths};
    for (uint32_t l = 0; l < 2; l++)
        for (uint32_t i = 0; i < lists[l]->count; i++)
            if (!listed(depths, count, lists[l]->values[i]))
                depths[count++] = lists[l]->values[i];
    qsort(depths, count, sizeof(depths[0]), cmp_u32);
    struct bench_layout layout;
    rpcb_layout(options, &layout);
    struct redis_server server;
    char err[1024];
    if (redis_server_start(&server, options->redis_server, options->data_parent, "rpc-bench-redis", err,
                           sizeof(err)) != 0) {
        for (uint32_t i = 0; i < count; i++) {
            char id[48];
            snprintf(id, sizeof(id), "redis.c%u", depths[i]);
            struct bench_row *row = bench_row_add(report, id, "rpc-redis", "Redis SET NX + Lua, not pipelined",
                                                  depths[i]);
            if (row != NULL) {
                bench_row_skip(row, err);
                bench_row_progress(row);
            }
        }
        return; /* the temp dir stays when the server failed: its log says why */
    }
    redisContext *c = redis_connect(server.port, err, sizeof(err));
    if (c != NULL) {
        redisReply *reply = redisCommand(c, "INFO server");
        const char *v = reply != NULL && reply->type == REDIS_REPLY_STRING ? strstr(reply->str, "redis_version:")
                                                                            : NULL;
        if (v != NULL)
            snprintf(rpcb_info.redis_version, sizeof(rpcb_info.redis_version), "%.*s",
                     (int)strcspn(v + 14, "\r\n"), v + 14);
        if (reply != NULL)
            freeReplyObject(reply);
        redisFree(c);
    }
    for (uint32_t i = 0; i < count; i++)
        redis_row(report, options, &server, &layout, depths[i]);
    redis_server_stop(&server);
}
