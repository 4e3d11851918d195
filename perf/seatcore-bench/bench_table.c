/* bench_table.c — ratios against the Redis baseline, targets, and the two
 * outputs: a table on stdout and (optionally) JSON. (Rows, formatting and the
 * JSON pieces are shared with rpc-bench: perf/common/common_rows.c.)
 *
 * Rows are looked up by a stable id, so ratios and targets name exactly which
 * two figures they compare. A target is printed as
 * PASS, MISS or n/a next to its figure and never stops the run: a benchmark
 * that aborts on a miss hides the other figures one needs to find the cause. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* ---- targets ---- */

struct bench_target {
    char what[72];
    char measured[96];
    char goal[32];
    enum bench_verdict verdict;
};

static const struct bench_row *usable(struct bench_report *report, const char *id)
{
    const struct bench_row *row = bench_row_find(report, id);
    return row != NULL && !row->skipped && row->ops_per_s > 0 ? row : NULL;
}

static void target_ratio(struct bench_target *t, struct bench_report *report, const char *what, const char *ours,
                         const char *theirs)
{
    const struct bench_row *a = usable(report, ours), *b = usable(report, theirs);
    snprintf(t->what, sizeof(t->what), "%s", what);
    snprintf(t->goal, sizeof(t->goal), ">= 10x");
    if (a == NULL || b == NULL) {
        snprintf(t->measured, sizeof(t->measured), "not measured (%s or %s did not run)", ours, theirs);
        t->verdict = BENCH_NA;
        return;
    }
    double ratio = a->ops_per_s / b->ops_per_s;
    char x[16];
    snprintf(t->measured, sizeof(t->measured), "%s (%s / %s)", bench_fmt_ratio(x, sizeof(x), ratio), ours, theirs);
    t->verdict = ratio >= 10.0 ? BENCH_PASS : BENCH_MISS;
}

static uint32_t targets_evaluate(struct bench_report *report, const struct bench_options *options,
                                 struct bench_target *out)
{
    uint32_t n = 0;
    char num[32];
    struct bench_target *t = &out[n++];
    const struct bench_row *row = usable(report, "mem.hold_release.1t");
    snprintf(t->what, sizeof(t->what), "hold+release ops/s, 1 thread, memory-only");
    snprintf(t->goal, sizeof(t->goal), ">= 2,000,000");
    snprintf(t->measured, sizeof(t->measured), "%s",
             row ? bench_fmt_count(num, sizeof(num), row->ops_per_s) : "not measured");
    t->verdict = row == NULL ? BENCH_NA : row->ops_per_s >= 2e6 ? BENCH_PASS : BENCH_MISS;

    t = &out[n++];
    const struct bench_row *best = NULL;
    for (uint32_t i = 0; i < report->count; i++) {
        const struct bench_row *r = &report->rows[i];
        if (strcmp(r->group, "durable") == 0 && !r->skipped && (best == NULL || r->ops_per_s > best->ops_per_s))
            best = r;
    }
    snprintf(t->what, sizeof(t->what), "durable seat ops/s, group commit (best row)");
    snprintf(t->goal, sizeof(t->goal), ">= 500,000");
    if (best != NULL)
        snprintf(t->measured, sizeof(t->measured), "%s (%s)", bench_fmt_count(num, sizeof(num), best->ops_per_s),
                 best->id);
    else
        snprintf(t->measured, sizeof(t->measured), "not measured");
    t->verdict = best == NULL ? BENCH_NA : best->ops_per_s >= 5e5 ? BENCH_PASS : BENCH_MISS;

    target_ratio(&out[n++], report, "vs Redis SET NX, 1 thread, not pipelined", "mem.hold_release.1t",
                 "redis.hold_release.1t");
    target_ratio(&out[n++], report, "vs Redis SET NX, 1 thread, pipelined", "mem.hold_release.1t",
                 "redis.pipelined.1t");
    target_ratio(&out[n++], report, "durable vs Redis (no persistence), 2 threads", "durable.hold_release.2t",
                 "redis.hold_release.2t");

    t = &out[n++];
    row = bench_row_find(report, "recovery.wal_replay");
    snprintf(t->what, sizeof(t->what), "recovery of 1,000,000 WAL records");
    snprintf(t->goal, sizeof(t->goal), "< 2 s");
    t->verdict = BENCH_NA;
    snprintf(t->measured, sizeof(t->measured), "not measured");
    if (row != NULL && !row->skipped) {
        double seconds = bench_row_extra_get(row, "open_seconds", -1);
        double records = bench_row_extra_get(row, "records", 0);
        snprintf(t->measured, sizeof(t->measured), "%.2f s for %s records", seconds,
                 bench_fmt_count(num, sizeof(num), records));
        if (records >= 1e6)
            t->verdict = seconds < 2.0 ? BENCH_PASS : BENCH_MISS;
        else
            snprintf(t->measured + strlen(t->measured), sizeof(t->measured) - strlen(t->measured),
                     " (fewer than the target's 1M%s)", options->quick ? ": --quick" : "");
    }

    t = &out[n++];
    row = bench_row_find(report, "memory.per_seat");
    snprintf(t->what, sizeof(t->what), "memory per seat, 200,000-seat event (engine tables)");
    snprintf(t->goal, sizeof(t->goal), "<= 64 B");
    t->verdict = BENCH_NA;
    snprintf(t->measured, sizeof(t->measured), "not measured");
    if (row != NULL && !row->skipped) {
        double per_seat = bench_row_extra_get(row, "event_bytes_per_seat", -1);
        snprintf(t->measured, sizeof(t->measured), "%.1f B/seat", per_seat);
        t->verdict = per_seat >= 0 && per_seat <= 64.0 ? BENCH_PASS : BENCH_MISS;
    }
    return n;
}

/* ---- ratios ---- */

struct ratio_pair {
    const char *label;
    const char *ours;
    const char *theirs;
};

static const struct ratio_pair ratio_pairs[] = {
    {"memory-only hold+release 1 thr vs Redis 1 conn", "mem.hold_release.1t", "redis.hold_release.1t"},
    {"memory-only hold+release 1 thr vs Redis 1 conn pipelined", "mem.hold_release.1t", "redis.pipelined.1t"},
    {"memory-only hold+release 2 thr vs Redis 2 conn", "mem.hold_release.2t", "redis.hold_release.2t"},
    {"memory-only hold+release 2 thr vs Redis 2 conn pipelined", "mem.hold_release.2t", "redis.pipelined.2t"},
    {"64 events hold+release 2 thr vs Redis 2 conn", "many.hold_release.2t", "redis.hold_release.2t"},
    {"durable hold+release 1 thr vs Redis 1 conn", "durable.hold_release.1t", "redis.hold_release.1t"},
    {"durable hold+release 1 thr vs Redis 1 conn pipelined", "durable.hold_release.1t", "redis.pipelined.1t"},
    {"durable hold+release 2 thr vs Redis 2 conn", "durable.hold_release.2t", "redis.hold_release.2t"},
    {"durable hold+release 2 thr vs Redis 2 conn pipelined", "durable.hold_release.2t", "redis.pipelined.2t"},
};

/* The "vs redis" column: seat rows against Redis not pipelined at the same thread
 * count (what teams run today); pipelined Redis against not pipelined. */
static void ratios_fill(struct bench_report *report)
{
    for (uint32_t i = 0; i < report->count; i++) {
        struct bench_row *row = &report->rows[i];
        bool seat_row = strcmp(row->group, "mem") == 0 || strcmp(row->group, "many") == 0 ||
                        strcmp(row->group, "durable") == 0 || strncmp(row->id, "redis.pipelined", 15) == 0;
        if (!seat_row || row->skipped || row->ops_per_s <= 0)
            continue;
        char id[48];
        snprintf(id, sizeof(id), "redis.hold_release.%ut", row->threads);
        const struct bench_row *base = usable(report, id);
        if (base == NULL)
            continue;
        row->ratio = row->ops_per_s / base->ops_per_s;
        snprintf(row->baseline_id, sizeof(row->baseline_id), "%s", id);
    }
}

/* ---- table ---- */

static void table_line(const struct bench_row *r)
{
    char ops[32], p50[16], p99[16], ratio[16], threads[12], cores[16];
    if (r->threads > 0)
        snprintf(threads, sizeof(threads), "%u", r->threads);
    else
        snprintf(threads, sizeof(threads), "-");
    if (r->cores >= 0)
        snprintf(cores, sizeof(cores), "%.2f", r->cores);
    else
        snprintf(cores, sizeof(cores), "-");
    printf("%-36s %3s %13s %9s %9s %5s %9s  %s\n", r->name, threads, bench_fmt_count(ops, sizeof(ops), r->ops_per_s),
           bench_fmt_ns(p50, sizeof(p50), r->p50_ns), bench_fmt_ns(p99, sizeof(p99), r->p99_ns), cores,
           bench_fmt_ratio(ratio, sizeof(ratio), r->ratio), r->notes);
}

void bench_table_print(struct bench_report *report, const struct bench_options *options)
{
    ratios_fill(report);
    const struct bench_machine *m = &report->machine;
    printf("\nseatcore-bench  %s\n", m->date);
    printf("machine: %ld cpus, %s; %s; load average %s at start, %s at end\n", m->nproc, m->cpu_model, m->kernel,
           m->load_start, m->load_end);
    printf("WAL backend: %s; data dir: %s (%s)\n", m->wal_backend, m->data_dir, m->data_fs);
    printf("rows: %.1f s each%s; live holds %u; durable batch %u ops; Redis pipeline %u commands\n\n", options->seconds,
           options->quick ? " (--quick)" : "", options->live_holds, options->durable_batch, options->redis_pipeline);
    printf("%-36s %3s %13s %9s %9s %5s %9s  %s\n", "row", "thr", "ops/s", "p50", "p99", "cpu", "vs redis", "notes");
    /* Groups print in the README's order whatever order they ran in (the memory
     * row runs first, on a fresh heap, so its RSS figure is not blurred). */
    static const char *const group_order[] = {"mem", "many", "durable", "queue", "recovery", "memory", "redis"};
    bool first = true;
    for (size_t g = 0; g < sizeof(group_order) / sizeof(group_order[0]); g++) {
        bool group_started = false;
        for (uint32_t i = 0; i < report->count; i++) {
            const struct bench_row *r = &report->rows[i];
            if (strcmp(r->group, group_order[g]) != 0)
                continue;
            if (!group_started && !first)
                printf("\n");
            group_started = true;
            first = false;
            table_line(r);
        }
    }
    printf("\nratios (ops/s over ops/s):\n");
    for (size_t i = 0; i < sizeof(ratio_pairs) / sizeof(ratio_pairs[0]); i++) {
        const struct bench_row *a = usable(report, ratio_pairs[i].ours);
        const struct bench_row *b = usable(report, ratio_pairs[i].theirs);
        char x[16];
        printf("  %-58s %9s\n", ratio_pairs[i].label,
               a && b ? bench_fmt_ratio(x, sizeof(x), a->ops_per_s / b->ops_per_s) : "n/a");
    }
    struct bench_target targets[16];
    uint32_t n = targets_evaluate(report, options, targets);
    printf("\ntargets:\n");
    for (uint32_t i = 0; i < n; i++)
        printf("  %-4s  %-52s %-14s %s\n", bench_verdict_name(targets[i].verdict), targets[i].what, targets[i].goal,
               targets[i].measured);
    fflush(stdout);
}

/* ---- JSON ---- */

int bench_json_write(struct bench_report *report, const struct bench_options *options, const char *path)
{
    ratios_fill(report);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    const struct bench_machine *m = &report->machine;
    fprintf(f, "{\n  \"tool\": \"seatcore-bench\",\n");
    bench_json_machine(f, m);
    fprintf(f,
            ",\n  \"options\": {\"seconds\": %g, \"quick\": %s, \"live_holds\": %u, \"durable_batch\": %u, "
            "\"redis_pipeline\": %u, \"recovery_records\": %llu},\n  \"rows\": [\n",
            options->seconds, options->quick ? "true" : "false", options->live_holds, options->durable_batch,
            options->redis_pipeline, (unsigned long long)options->recovery_records);
    for (uint32_t i = 0; i < report->count; i++) {
        bench_json_row(f, &report->rows[i]);
        fprintf(f, "%s\n", i + 1 < report->count ? "," : "");
    }
    fprintf(f, "  ],\n  \"targets\": [\n");
    struct bench_target targets[16];
    uint32_t n = targets_evaluate(report, options, targets);
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
