/* bench_main.c — seatcore-bench: options, the order rows run in, the report.
 *
 * One command measures the engine against what teams use today (Redis seat
 * locks) on the same machine, so the ratios are not a comparison of two
 * different days or boxes. See perf/README.md for what each row means. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: seatcore-bench [options]\n"
                 "  --seconds N       length of each row (default 2; fractions allowed)\n"
                 "  --quick           smoke run under 30 s: 0.3 s rows, 200,000 recovery records\n"
                 "  --json FILE       also write the results as JSON\n"
                 "  --dir DIR         parent of temporary data dirs; must be a real disk\n"
                 "                    (default $TMPDIR, else /var/tmp)\n"
                 "  --only LIST       comma list of groups: mem,many,durable,queue,recovery,memory,redis\n"
                 "  --records N       WAL records written before the recovery rows (default 1000000)\n"
                 "  --batch N         ops per durability wait in the durable rows (default 16; 1 = every op)\n"
                 "  --outstanding N   unacknowledged ops per thread before it waits, durable rows (default 65536)\n"
                 "  --pipeline N      Redis commands in flight per connection, pipelined rows (default 16)\n"
                 "  --live N          holds kept alive on the hot event, all threads together (default 96)\n"
                 "  --redis-server P  redis-server binary (default: redis-server on PATH)\n");
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_options(int argc, char **argv, struct bench_options *o)
{
    const char *tmpdir = getenv("TMPDIR");
    *o = (struct bench_options){.seconds = 2.0,
                                .data_parent = tmpdir && tmpdir[0] ? tmpdir : "/var/tmp",
                                .redis_server = "redis-server",
                                .recovery_records = 1000000,
                                .durable_batch = 16,
                                .outstanding_max = 65536,
                                .redis_pipeline = 16,
                                .live_holds = 96};
    bool records_given = false, seconds_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        bool takes_value = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = true;
            takes_value = false;
        } else if (v == NULL) {
            fprintf(stderr, "seatcore-bench: %s needs a value\n", a);
            return -1;
        } else if (strcmp(a, "--seconds") == 0) {
            char *end;
            o->seconds = strtod(v, &end);
            if (*end != '\0' || !(o->seconds >= 0.05 && o->seconds <= 3600)) {
                fprintf(stderr, "seatcore-bench: --seconds wants 0.05..3600\n");
                return -1;
            }
            seconds_given = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(a, "--dir") == 0) {
            o->data_parent = v;
        } else if (strcmp(a, "--only") == 0) {
            o->only = v;
        } else if (strcmp(a, "--redis-server") == 0) {
            o->redis_server = v;
        } else if (strcmp(a, "--records") == 0 && parse_u64(v, 1000, 100000000, &n)) {
            o->recovery_records = n;
            records_given = true;
        } else if (strcmp(a, "--batch") == 0 && parse_u64(v, 1, 4096, &n)) {
            o->durable_batch = (uint32_t)n;
        } else if (strcmp(a, "--outstanding") == 0 && parse_u64(v, 1, 1u << 20, &n)) {
            o->outstanding_max = (uint32_t)n;
        } else if (strcmp(a, "--pipeline") == 0 && parse_u64(v, 1, 64, &n)) {
            o->redis_pipeline = (uint32_t)n;
        } else if (strcmp(a, "--live") == 0 && parse_u64(v, 2, 400, &n)) {
            o->live_holds = (uint32_t)n;
        } else {
            fprintf(stderr, "seatcore-bench: bad option or value: %s %s\n", a, v);
            usage(stderr);
            return -1;
        }
        if (takes_value)
            i++;
    }
    if (o->quick && !seconds_given)
        o->seconds = 0.3;
    if (o->quick && !records_given)
        o->recovery_records = 200000;
    return 0;
}

bool bench_group_enabled(const struct bench_options *options, const char *group)
{
    return bench_list_names(options->only, group);
}

int main(int argc, char **argv)
{
    static struct bench_report report; /* ~40 KB: keep it off the stack */
    struct bench_options options;
    if (parse_options(argc, argv, &options) != 0)
        return 2;
    /* Line-buffered progress even when stderr is a pipe (run-all | tee). */
    setvbuf(stderr, NULL, _IOLBF, 0);
    bench_load_average(report.machine.load_start, sizeof(report.machine.load_start));
    fprintf(stderr, "seatcore-bench: %.1f s per row%s; data under %s; load average %s\n", options.seconds,
            options.quick ? " (--quick)" : "", options.data_parent, report.machine.load_start);
    /* The memory row first, on a fresh heap, so its RSS growth is not blurred by
     * memory the allocator kept from earlier rows. */
    if (bench_group_enabled(&options, "memory"))
        bench_memory_rows(&report, &options);
    bench_engine_rows(&report, &options);
    if (bench_group_enabled(&options, "queue"))
        bench_queue_rows(&report, &options);
    if (bench_group_enabled(&options, "recovery"))
        bench_recovery_rows(&report, &options);
    if (bench_group_enabled(&options, "redis"))
        bench_redis_rows(&report, &options);
    bench_machine_fill(&report.machine, &options);
    bench_table_print(&report, &options);
    if (options.json_path != NULL) {
        if (bench_json_write(&report, &options, options.json_path) != 0) {
            fprintf(stderr, "seatcore-bench: cannot write %s\n", options.json_path);
            return 1;
        }
        fprintf(stderr, "seatcore-bench: wrote %s\n", options.json_path);
    }
    return 0;
}
