/* rpcb_main.c — rpc-bench: options, the order rows run in, the report.
 *
 * One command measures seat operations through seatcored over gRPC (one op per
 * call, batched, many calls in flight, an open-loop row at half of the peak
 * rate) and, on the same machine a minute later, the Redis seat locks teams use
 * today at the same concurrency. See perf/README.md for what each row means. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpcb.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: rpc-bench [options]\n"
            "  --seconds N          measured window of each row (default 2; fractions allowed)\n"
            "  --warmup N           unmeasured lead-in of each row (default 0.25)\n"
            "  --quick              smoke run: 0.3 s rows after 0.1 s warm-up\n"
            "  --json FILE          also write the results as JSON\n"
            "  --dir DIR            parent of the daemon's temporary data dir; must be a real disk\n"
            "                       (default $TMPDIR, else /var/tmp)\n"
            "  --only LIST          comma list of groups: rpc-unary,rpc-batch,rpc-open,rpc-memory,rpc-redis\n"
            "                       (rpc-open needs rpc-batch: its rate is half of the best Batch row)\n"
            "  --seatcored PATH     the daemon (default: bin/seatcored of this build tree, else build/bin/seatcored)\n"
            "  --server-arg ARG     one more seatcored flag, e.g. --server-arg --cq-threads=1 (repeatable)\n"
            "  --redis-server P     redis-server binary (default: redis-server on PATH)\n"
            "  --unary LIST         calls in flight for the one-op-per-call rows (default 1,16,64,256)\n"
            "  --batch-sizes LIST   ops per Batch call (default 16,64,256)\n"
            "  --batch-depths LIST  Batch calls in flight (default 1,16,64)\n"
            "  --client-threads N   rpc client loop threads, and Redis client threads (default 1)\n"
            "  --channels N         gRPC channels (HTTP/2 connections) the calls share (default 1)\n"
            "  --events N           events: 1 hot + N-1 quieter, 1,000 seats each (default 64, seatcored's limit)\n"
            "  --hot-percent N      share of holds on the hot event (default 20)\n"
            "  --users N            distinct user ids (default 10000)\n"
            "  --open-fraction F    open-loop rate as a share of the peak (default 0.5)\n"
            "  --open-rate N        open-loop rate in ops/s instead (no target verdict; the Batch shape is the\n"
            "                       peak's, else the largest --batch-sizes x --batch-depths)\n"
            "exit status: 0 when every row ran without errors (a target's PASS or MISS is a figure, not a\n"
            "failure), 1 when a row could not run (no seatcored or redis-server, the daemon died) or had\n"
            "failed calls (listed on stderr), 2 on a bad option\n");
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

static bool parse_list(const char *s, uint32_t max, struct rpcb_list *out)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", s);
    out->count = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (out->count == RPCB_LIST_MAX || !parse_u64(item, 1, max, &v))
            return false;
        out->values[out->count++] = (uint32_t)v;
    }
    return out->count > 0;
}

static bool parse_seconds(const char *s, double min, double max, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || !(v >= min && v <= max))
        return false;
    *out = v;
    return true;
}

static int parse_options(int argc, char **argv, struct rpcb_options *o)
{
    const char *tmpdir = getenv("TMPDIR");
    *o = (struct rpcb_options){.seconds = 2.0,
                               .warmup = 0.25,
                               .data_parent = tmpdir && tmpdir[0] ? tmpdir : "/var/tmp",
                               .redis_server = "redis-server",
                               .unary_depths = {4, {1, 16, 64, 256}},
                               .batch_sizes = {3, {16, 64, 256}},
                               .batch_depths = {3, {1, 16, 64}},
                               .client_threads = 1,
                               .channels = 1,
                               .events = 64,
                               .hot_percent = 20,
                               .users = 10000,
                               .open_fraction = 0.5};
    bool seconds_given = false, warmup_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        bool takes_value = true, ok = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = true;
            takes_value = false;
        } else if (v == NULL) {
            fprintf(stderr, "rpc-bench: %s needs a value\n", a);
            return -1;
        } else if (strcmp(a, "--seconds") == 0) {
            ok = parse_seconds(v, 0.05, 3600, &o->seconds);
            seconds_given = true;
        } else if (strcmp(a, "--warmup") == 0) {
            ok = parse_seconds(v, 0, 600, &o->warmup);
            warmup_given = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(a, "--dir") == 0) {
            o->data_parent = v;
        } else if (strcmp(a, "--only") == 0) {
            o->only = v;
        } else if (strcmp(a, "--seatcored") == 0) {
            o->seatcored = v;
        } else if (strcmp(a, "--server-arg") == 0) {
            ok = o->server_arg_count < RPCB_SERVER_ARGS_MAX;
            if (ok)
                o->server_args[o->server_arg_count++] = v;
        } else if (strcmp(a, "--redis-server") == 0) {
            o->redis_server = v;
        } else if (strcmp(a, "--unary") == 0) {
            ok = parse_list(v, RPCB_LANES_MAX, &o->unary_depths);
        } else if (strcmp(a, "--batch-sizes") == 0) {
            ok = parse_list(v, RPCB_BATCH_MAX, &o->batch_sizes);
        } else if (strcmp(a, "--batch-depths") == 0) {
            ok = parse_list(v, RPCB_LANES_MAX, &o->batch_depths);
        } else if (strcmp(a, "--client-threads") == 0 && parse_u64(v, 1, 8, &n)) {
            o->client_threads = (uint32_t)n;
        } else if (strcmp(a, "--channels") == 0 && parse_u64(v, 1, 16, &n)) {
            o->channels = (uint32_t)n;
        } else if (strcmp(a, "--events") == 0 && parse_u64(v, 1, 4096, &n)) {
            o->events = (uint32_t)n;
        } else if (strcmp(a, "--hot-percent") == 0 && parse_u64(v, 0, 100, &n)) {
            o->hot_percent = (uint32_t)n;
        } else if (strcmp(a, "--users") == 0 && parse_u64(v, 1, 1000000, &n)) {
            o->users = (uint32_t)n;
        } else if (strcmp(a, "--open-fraction") == 0) {
            ok = parse_seconds(v, 0.01, 1.0, &o->open_fraction);
        } else if (strcmp(a, "--open-rate") == 0) {
            ok = parse_seconds(v, 1, 1e8, &o->open_rate);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "rpc-bench: bad option or value: %s %s\n", a, v);
            usage(stderr);
            return -1;
        }
        if (takes_value)
            i++;
    }
    if (o->quick && !seconds_given)
        o->seconds = 0.3;
    if (o->quick && !warmup_given)
        o->warmup = 0.1;
    return 0;
}

bool rpcb_group_enabled(const struct rpcb_options *options, const char *group)
{
    return bench_list_names(options->only, group);
}

int main(int argc, char **argv)
{
    static struct bench_report report; /* ~40 KB: keep it off the stack */
    struct rpcb_options options;
    if (parse_options(argc, argv, &options) != 0)
        return 2;
    /* Line-buffered progress even when stderr is a pipe (run-all | tee). */
    setvbuf(stderr, NULL, _IOLBF, 0);
    char why[256];
    if (!rpcb_seatcored_binary(&options, rpcb_info.seatcored, sizeof(rpcb_info.seatcored), why, sizeof(why)))
        snprintf(why, sizeof(why), "missing: the gRPC rows will be skipped");
    snprintf(rpcb_info.seatcored_note, sizeof(rpcb_info.seatcored_note), "%.150s", why);
    snprintf(report.machine.wal_backend, sizeof(report.machine.wal_backend), "not opened (no durable row ran)");
    bench_load_average(report.machine.load_start, sizeof(report.machine.load_start));
    fprintf(stderr, "rpc-bench: %.1f s per row after %.2f s warm-up%s; seatcored %s (%s); data under %s; load average %s\n",
            options.seconds, options.warmup, options.quick ? " (--quick)" : "", rpcb_info.seatcored,
            rpcb_info.seatcored_note, options.data_parent, report.machine.load_start);
    rpcb_grpc_rows(&report, &options);
    rpcb_redis_rows(&report, &options);
    bench_machine_basics(&report.machine, options.data_parent); /* keeps the WAL backend the daemon logged */
    rpcb_table_print(&report, &options);
    if (options.json_path != NULL) {
        if (rpcb_json_write(&report, &options, options.json_path) != 0) {
            fprintf(stderr, "rpc-bench: cannot write %s\n", options.json_path);
            return 1;
        }
        fprintf(stderr, "rpc-bench: wrote %s\n", options.json_path);
    }
    /* PASS or MISS are figures, not failures; a row that could not run (no
     * daemon, no redis-server, the daemon died) or had failed calls is. */
    return rpcb_failed_rows(&report) > 0 ? 1 : 0;
}
