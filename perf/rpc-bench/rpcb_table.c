/* rpcb_table.c — rpc-bench's outputs: the table on stdout (machine, set-up,
 * rows, ratios against Redis at the same concurrency, targets) and JSON.
 *
 * A target is printed as PASS, MISS or n/a next to its figure and never stops
 * the run: a benchmark that aborts on a miss hides the figures one needs to
 * find the cause. */
#include <stdio.h>
#include <string.h>

#include "rpcb.h"

struct rpcb_info rpcb_info;

#define TARGET_OPS_PER_S 100000.0
#define TARGET_P99_NS 5e6
#define TARGET_VS_REDIS 1.0

struct rpcb_target {
    char what[72];
    char goal[24];
    char measured[160];
    enum bench_verdict verdict;
};

static const struct bench_row *usable(struct bench_report *report, const char *id)
{
    const struct bench_row *row = bench_row_find(report, id);
    return row != NULL && !row->skipped && row->ops_per_s > 0 ? row : NULL;
}

static const struct bench_row *redis_at(struct bench_report *report, uint32_t in_flight)
{
    char id[48];
    snprintf(id, sizeof(id), "redis.c%u", in_flight);
    return usable(report, id);
}

const struct bench_row *rpcb_peak_row(const struct bench_report *report)
{
    /* A row with errors is left out: its ops/s and latencies miss the calls
     * that failed, so it cannot stand for what the daemon does. */
    const struct bench_row *best = NULL;
    for (uint32_t i = 0; i < report->count; i++) {
        const struct bench_row *r = &report->rows[i];
        if (strcmp(r->group, "rpc-batch") == 0 && !r->skipped && r->ops_per_s > 0 &&
            bench_row_extra_get(r, "errors", 0) == 0 && (best == NULL || r->ops_per_s > best->ops_per_s))
            best = r;
    }
    return best;
}

uint32_t rpcb_failed_rows(const struct bench_report *report)
{
    uint32_t failed = 0;
    for (uint32_t i = 0; i < report->count; i++) {
        const struct bench_row *r = &report->rows[i];
        double errors = bench_row_extra_get(r, "errors", 0);
        if (!r->skipped && errors == 0)
            continue;
        if (failed++ == 0)
            fprintf(stderr, "rpc-bench: rows that did not run cleanly (exit status 1):\n");
        if (r->skipped)
            fprintf(stderr, "  %-24s %s\n", r->id, r->notes);
        else
            fprintf(stderr, "  %-24s %.0f errors: %s\n", r->id, errors, r->notes);
    }
    return failed;
}

/* The "vs redis" column: gRPC rows against Redis with as many requests in flight
 * (the open-loop row has no fixed number in flight: none). */
static void ratios_fill(struct bench_report *report)
{
    for (uint32_t i = 0; i < report->count; i++) {
        struct bench_row *row = &report->rows[i];
        bool grpc = strcmp(row->group, "rpc-unary") == 0 || strcmp(row->group, "rpc-batch") == 0 ||
                    strcmp(row->group, "rpc-memory") == 0;
        if (!grpc || row->skipped || row->ops_per_s <= 0)
            continue;
        const struct bench_row *base = redis_at(report, row->threads);
        if (base == NULL)
            continue;
        row->ratio = row->ops_per_s / base->ops_per_s;
        snprintf(row->baseline_id, sizeof(row->baseline_id), "%s", base->id);
    }
}

static uint32_t targets_evaluate(struct bench_report *report, struct rpcb_target *out)
{
    uint32_t n = 0;
    char num[32], x[16], lat[16];
    const struct bench_row *peak = rpcb_peak_row(report);

    struct rpcb_target *t = &out[n++];
    snprintf(t->what, sizeof(t->what), "seat ops/s through seatcored, batched (best row)");
    snprintf(t->goal, sizeof(t->goal), ">= 100,000");
    if (peak != NULL) {
        snprintf(t->measured, sizeof(t->measured), "%s (%s)", bench_fmt_count(num, sizeof(num), peak->ops_per_s),
                 peak->id);
        t->verdict = peak->ops_per_s >= TARGET_OPS_PER_S ? BENCH_PASS : BENCH_MISS;
    } else {
        snprintf(t->measured, sizeof(t->measured), "not measured (no rpc-batch row ran without errors)");
        t->verdict = BENCH_NA;
    }

    t = &out[n++];
    const struct bench_row *open = bench_row_find(report, "rpc.open");
    snprintf(t->what, sizeof(t->what), "p99 latency at half of peak (open loop)");
    snprintf(t->goal, sizeof(t->goal), "< 5 ms");
    if (open != NULL && !open->skipped && bench_row_extra_get(open, "fixed_rate", 0) > 0) {
        snprintf(t->measured, sizeof(t->measured), "not measured (rpc.open ran at --open-rate, not half of peak)");
        t->verdict = BENCH_NA;
    } else if (open != NULL && !open->skipped && bench_row_extra_get(open, "errors", 0) > 0) {
        /* Failed calls have no latency: a p99 of the others would flatter the row. */
        snprintf(t->measured, sizeof(t->measured), "%.0f calls failed in rpc.open (see its notes)",
                 bench_row_extra_get(open, "errors", 0));
        t->verdict = BENCH_MISS;
    } else if (open != NULL && !open->skipped && open->p99_ns >= 0) {
        snprintf(t->measured, sizeof(t->measured), "%s at %s ops/s (rpc.open; peak %s)",
                 bench_fmt_ns(lat, sizeof(lat), open->p99_ns), bench_fmt_count(num, sizeof(num), open->ops_per_s),
                 open->baseline_id);
        t->verdict = open->p99_ns < TARGET_P99_NS ? BENCH_PASS : BENCH_MISS;
    } else {
        snprintf(t->measured, sizeof(t->measured), "not measured (rpc.open did not run)");
        t->verdict = BENCH_NA;
    }

    t = &out[n++];
    snprintf(t->what, sizeof(t->what), "peak vs Redis SET NX, not pipelined, same in flight");
    snprintf(t->goal, sizeof(t->goal), "> 1x");
    const struct bench_row *base = peak != NULL ? redis_at(report, peak->threads) : NULL;
    if (peak != NULL && base != NULL) {
        double ratio = peak->ops_per_s / base->ops_per_s;
        snprintf(t->measured, sizeof(t->measured), "%s (%s / %s)", bench_fmt_ratio(x, sizeof(x), ratio), peak->id,
                 base->id);
        t->verdict = ratio > TARGET_VS_REDIS ? BENCH_PASS : BENCH_MISS;
    } else {
        snprintf(t->measured, sizeof(t->measured), "not measured (the peak row or its Redis row did not run)");
        t->verdict = BENCH_NA;
    }
    return n;
}

static void table_line(const struct bench_row *r)
{
    char ops[32], calls[32], p50[16], p90[16], p99[16], p999[16], ratio[16], cores[16], server[16], per_call[16];
    if (r->cores >= 0)
        snprintf(cores, sizeof(cores), "%.2f", r->cores);
    else
        snprintf(cores, sizeof(cores), "-");
    double server_cores = bench_row_extra_get(r, "server_cores", -1);
    if (server_cores >= 0)
        snprintf(server, sizeof(server), "%.2f", server_cores);
    else
        snprintf(server, sizeof(server), "-");
    char others[16];
    double other_cores = bench_row_extra_get(r, "other_cores", -100);
    if (other_cores > -100)
        snprintf(others, sizeof(others), "%.2f", other_cores < 0 ? 0.0 : other_cores);
    else
        snprintf(others, sizeof(others), "-");
    double ops_per_call = bench_row_extra_get(r, "ops_per_call", -1);
    if (ops_per_call > 0)
        snprintf(per_call, sizeof(per_call), "%.0f", ops_per_call);
    else
        snprintf(per_call, sizeof(per_call), "-");
    char in_flight[16];
    if (strcmp(r->group, "rpc-open") == 0)
        snprintf(in_flight, sizeof(in_flight), "open");
    else if (r->threads > 0)
        snprintf(in_flight, sizeof(in_flight), "%u", r->threads);
    else
        snprintf(in_flight, sizeof(in_flight), "-");
    printf("%-34s %5s %5s %11s %9s %8s %8s %8s %8s %5s %5s %5s %8s  %s\n", r->name, in_flight, per_call,
           bench_fmt_count(ops, sizeof(ops), r->ops_per_s),
           bench_fmt_count(calls, sizeof(calls), r->skipped ? -1 : bench_row_extra_get(r, "calls_per_s", -1)),
           bench_fmt_ns(p50, sizeof(p50), r->p50_ns), bench_fmt_ns(p90, sizeof(p90), r->p90_ns),
           bench_fmt_ns(p99, sizeof(p99), r->p99_ns), bench_fmt_ns(p999, sizeof(p999), r->p999_ns), cores, server,
           others, bench_fmt_ratio(ratio, sizeof(ratio), r->ratio), r->notes);
}

void rpcb_table_print(struct bench_report *report, const struct rpcb_options *options)
{
    ratios_fill(report);
    const struct bench_machine *m = &report->machine;
    struct bench_layout layout;
    rpcb_layout(options, &layout);
    printf("\nrpc-bench  %s\n", m->date);
    printf("machine: %ld cpus, %s; %s; load average %s at start, %s at end\n", m->nproc, m->cpu_model, m->kernel,
           m->load_start, m->load_end);
    printf("seatcored: %s (%s); WAL backend: %s; data dir: %s (%s); redis-server %s\n", rpcb_info.seatcored,
           rpcb_info.seatcored_note, m->wal_backend, m->data_dir, m->data_fs,
           rpcb_info.redis_version[0] ? rpcb_info.redis_version : "not run");
    printf("client: rpc_unary_async on %u client loop thread%s, %u channel%s; rows: %.1f s each after %.2f s "
           "warm-up%s\n",
           options->client_threads, options->client_threads == 1 ? "" : "s", options->channels,
           options->channels == 1 ? "" : "s", options->seconds, options->warmup, options->quick ? " (--quick)" : "");
    char hot[16], spread[16];
    printf("workload: a hot event of %s seats gets %u%% of the holds, %u more events of %s seats the rest; 1-%u "
           "seats per hold, %u%% best-available; %u users\n\n",
           bench_fmt_count(hot, sizeof(hot), (double)bench_layout_rows(&layout, layout.first_event_id) *
                                                 layout.seats_per_row),
           layout.event_count > 1 ? layout.hot_percent : 100, layout.event_count - 1,
           bench_fmt_count(spread, sizeof(spread), (double)layout.rows * layout.seats_per_row), BENCH_PICK_SEATS_MAX,
           layout.best_percent, layout.users);
    printf("%-34s %5s %5s %11s %9s %8s %8s %8s %8s %5s %5s %5s %8s  %s\n", "row", "infl", "ops/c", "ops/s",
           "calls/s", "p50", "p90", "p99", "p99.9", "cpu", "srv", "oth", "vs redis", "notes");
    static const char *const group_order[] = {"rpc-unary", "rpc-batch", "rpc-open", "rpc-memory", "rpc-redis"};
    bool first = true;
    for (size_t g = 0; g < sizeof(group_order) / sizeof(group_order[0]); g++) {
        bool started = false;
        for (uint32_t i = 0; i < report->count; i++) {
            const struct bench_row *r = &report->rows[i];
            if (strcmp(r->group, group_order[g]) != 0)
                continue;
            if (!started && !first)
                printf("\n");
            started = true;
            first = false;
            table_line(r);
        }
    }
    printf("\nratios (seatcored ops/s over Redis ops/s, same number of requests in flight):\n");
    for (uint32_t i = 0; i < report->count; i++) {
        const struct bench_row *r = &report->rows[i];
        if (r->ratio < 0)
            continue;
        char label[96], x[16];
        snprintf(label, sizeof(label), "%s (%s)", r->id, r->baseline_id);
        printf("  %-44s %9s\n", label, bench_fmt_ratio(x, sizeof(x), r->ratio));
    }
    struct rpcb_target targets[8];
    uint32_t n = targets_evaluate(report, targets);
    printf("\ntargets (2-core machine, load generator included):\n");
    for (uint32_t i = 0; i < n; i++)
        printf("  %-4s  %-52s %-11s %s\n", bench_verdict_name(targets[i].verdict), targets[i].what, targets[i].goal,
               targets[i].measured);
    fflush(stdout);
}

int rpcb_json_write(struct bench_report *report, const struct rpcb_options *options, const char *path)
{
    ratios_fill(report);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "{\n  \"tool\": \"rpc-bench\",\n");
    bench_json_machine(f, &report->machine);
    fprintf(f, ",\n  \"seatcored\": ");
    bench_json_string(f, rpcb_info.seatcored);
    fprintf(f, ",\n  \"redis_version\": ");
    bench_json_string(f, rpcb_info.redis_version);
    fprintf(f,
            ",\n  \"options\": {\"seconds\": %g, \"warmup\": %g, \"quick\": %s, \"client_threads\": %u, "
            "\"channels\": %u, \"events\": %u, \"hot_percent\": %u, \"users\": %u, \"open_fraction\": %g},\n"
            "  \"rows\": [\n",
            options->seconds, options->warmup, options->quick ? "true" : "false", options->client_threads,
            options->channels, options->events, options->hot_percent, options->users, options->open_fraction);
    for (uint32_t i = 0; i < report->count; i++) {
        bench_json_row(f, &report->rows[i]);
        fprintf(f, "%s\n", i + 1 < report->count ? "," : "");
    }
    fprintf(f, "  ],\n  \"targets\": [\n");
    struct rpcb_target targets[8];
    uint32_t n = targets_evaluate(report, targets);
    for (uint32_t i = 0; i < n; i++) {
        fprintf(f, "    {\"what\": ");
        bench_json_string(f, targets[i].what);
        fprintf(f, ", \"goal\": ");
        bench_json_string(f, targets[i].goal);
        fprintf(f, ", \"measured\": ");
        bench_json_string(f, targets[i].measured);
        fprintf(f, ", \"verdict\": \"%s\"}%s\n", bench_verdict_name(targets[i].verdict), i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) == 0 ? 0 : -1;
}
