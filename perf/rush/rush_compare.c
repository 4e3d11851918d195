/* rush_compare.c — `rush compare`: the tables across runs that perf/rush/suite
 * prints and perf/README.md quotes: every run, TIKETI core against the baseline
 * (same scenario, the ratio and its target), the scale-out rows, and the
 * capacity model built from the measured CPU per operation.
 *
 *   rush compare [--out FILE.md] [--node-vcpu N] [--utilisation F] RUN.json ...
 *
 * Runs are told apart by their JSON: "baseline" true/false, "scenario", and the
 * label (the suite names scale-out runs "scale <n> shards"). The capacity model:
 * for each process kind, cores per operation = its cores in the window / the
 * window's rate (holds per second; waiting sockets for the crowd), scaled to
 * the seed's 100,000 holds/s and 1,000,000 concurrent users, then pods of
 * `pod_vcpu` at `utilisation` and nodes of `node_vcpu`. Processes of one kind
 * (edge-0..3, seatcored-0..1) add up. PostgreSQL and Redis are sized as services
 * (Aurora, ElastiCache) and shown in cores only. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rush.h"
#include "tk_assert.h"

#define RUNS_MAX 64
#define KINDS_MAX 16

struct run {
    json_t *root;
    const char *label, *scenario, *mode, *path;
    bool baseline;
    double holds, p50, p99, p999, ws_peak, busy, loadgen, window, rate, releases, loadavg;
};

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : -1;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

static bool load(const char *path, struct run *r)
{
    json_error_t error;
    r->root = json_load_file(path, 0, &error);
    if (r->root == NULL) {
        fprintf(stderr, "rush compare: %s: %s\n", path, error.text);
        return false;
    }
    r->path = path;
    r->label = str(r->root, "label");
    r->scenario = str(r->root, "scenario");
    r->mode = str(r->root, "mode");
    r->baseline = json_is_true(json_object_get(r->root, "baseline"));
    r->holds = num(r->root, "holds_per_s");
    r->p50 = num(r->root, "hold_p50_ms");
    r->p99 = num(r->root, "hold_p99_ms");
    r->p999 = num(r->root, "hold_p999_ms");
    r->ws_peak = num(r->root, "ws_peak");
    r->busy = num(r->root, "machine_busy_cores");
    r->loadgen = num(r->root, "loadgen_cores");
    r->window = num(r->root, "window_s");
    r->rate = num(r->root, "holds_rate");
    r->loadavg = num(r->root, "loadavg_start");
    json_t *release = json_object_get(json_object_get(r->root, "steps"), "release");
    r->releases = release != NULL ? num(release, "per_s") : 0;
    return true;
}

/* A process name without its replica number: edge-3 -> edge. */
static void kind_of(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s", name);
    char *dash = strrchr(out, '-');
    if (dash != NULL && dash[1] >= '0' && dash[1] <= '9')
        *dash = '\0';
}

struct kind {
    char name[32];
    double cores, rss_delta_mb, rss_mb;
    uint32_t replicas;
};

static uint32_t kinds_of(const struct run *r, struct kind *kinds)
{
    uint32_t n = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r->root, "processes"), i, p)
    {
        char name[32];
        kind_of(str(p, "name"), name, sizeof(name));
        if (strcmp(name, "baseline") == 0 && !r->baseline)
            continue;
        uint32_t k = 0;
        while (k < n && strcmp(kinds[k].name, name) != 0)
            k++;
        if (k == n) {
            if (n == KINDS_MAX)
                continue;
            memset(&kinds[n], 0, sizeof(kinds[n]));
            snprintf(kinds[n].name, sizeof(kinds[n].name), "%s", name);
            n++;
        }
        double cores = num(p, "cores"), start = num(p, "rss_start_mb"), end = num(p, "rss_end_mb");
        if (cores > 0)
            kinds[k].cores += cores;
        if (start >= 0 && end >= 0)
            kinds[k].rss_delta_mb += end - start;
        if (end >= 0)
            kinds[k].rss_mb += end;
        kinds[k].replicas++;
    }
    return n;
}

static const char *fmt(char *buf, size_t len, double v)
{
    return bench_fmt_count(buf, len, v);
}

static void table_runs(FILE *out, struct run *runs, uint32_t n)
{
    fprintf(out, "| run | scenario | target | holds/s | hold p50 | p99 | p99.9 | releases/s | sockets | load gen cores "
                 "| machine busy | load avg |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (uint32_t i = 0; i < n; i++) {
        struct run *r = &runs[i];
        char a[32], b[32], c[32];
        bool holds = strcmp(r->mode, "waiting") != 0;
        fprintf(out, "| %s | %s%s | %s | %s | %.1f ms | %.1f ms | %.1f ms | %s | %s | %.2f | %.2f | %.1f |\n",
                r->label, r->scenario, r->rate > 0 ? " (open loop)" : "", r->baseline ? "baseline" : "TIKETI core",
                holds ? fmt(a, sizeof(a), r->holds) : "-", r->p50, r->p99, r->p999,
                r->releases > 0 ? fmt(b, sizeof(b), r->releases) : "-",
                r->ws_peak > 0 ? fmt(c, sizeof(c), r->ws_peak) : "-", r->loadgen, r->busy, r->loadavg);
    }
}

static void table_ratios(FILE *out, struct run *runs, uint32_t n)
{
    fprintf(out, "\n| scenario (closed loop) | TIKETI core holds/s | baseline holds/s | ratio | target | |\n"
                 "|---|---:|---:|---:|---:|---|\n");
    for (uint32_t i = 0; i < n; i++) {
        struct run *core = &runs[i];
        if (core->baseline || core->rate > 0 || strcmp(core->mode, "holds") != 0 || strncmp(core->label, "scale", 5) == 0)
            continue;
        for (uint32_t j = 0; j < n; j++) {
            struct run *base = &runs[j];
            if (!base->baseline || base->rate > 0 || strcmp(base->scenario, core->scenario) != 0 || base->holds <= 0)
                continue;
            double ratio = core->holds / base->holds, target = num(core->root, "target_ratio");
            char a[32], b[32];
            fprintf(out, "| %s | %s | %s | %.1fx | >= %.0fx | %s |\n", core->scenario, fmt(a, sizeof(a), core->holds),
                    fmt(b, sizeof(b), base->holds), ratio, target, ratio >= target ? "PASS" : "MISS");
        }
    }
}

static void table_scale(FILE *out, struct run *runs, uint32_t n)
{
    bool any = false;
    for (uint32_t i = 0; i < n; i++) {
        struct run *r = &runs[i];
        if (strncmp(r->label, "scale", 5) != 0)
            continue;
        if (!any)
            fprintf(out, "\n| run | holds/s | p99 | cores used by the stack | holds/s per stack core | by process |\n"
                         "|---|---:|---:|---:|---:|---|\n");
        any = true;
        struct kind kinds[KINDS_MAX];
        uint32_t k = kinds_of(r, kinds);
        double total = 0;
        char detail[512] = "";
        size_t at = 0;
        for (uint32_t j = 0; j < k; j++) {
            total += kinds[j].cores;
            if (kinds[j].cores >= 0.01)
                at += (size_t)snprintf(detail + at, sizeof(detail) - at, "%s%s %.2f", at ? ", " : "", kinds[j].name,
                                       kinds[j].cores);
        }
        char a[32], b[32];
        fprintf(out, "| %s | %s | %.1f ms | %.2f | %s | %s |\n", r->label, fmt(a, sizeof(a), r->holds), r->p99, total,
                fmt(b, sizeof(b), total > 0 ? r->holds / total : 0), detail);
    }
}

static uint32_t pods(double cores, double pod_vcpu, double utilisation)
{
    return (uint32_t)ceil(cores / (pod_vcpu * utilisation));
}

/* Per-process-kind cores for the seed's load, from the best closed-loop holds run
 * and the waiting run. */
static void capacity_model(FILE *out, struct run *runs, uint32_t n, double node_vcpu, double utilisation)
{
    struct run *holds = NULL, *crowd = NULL;
    for (uint32_t i = 0; i < n; i++) {
        struct run *r = &runs[i];
        if (!r->baseline && r->rate <= 0 && strcmp(r->scenario, "holds-only") == 0 &&
            (holds == NULL || r->holds > holds->holds))
            holds = r;
        if (strcmp(r->mode, "waiting") == 0 && (crowd == NULL || r->ws_peak > crowd->ws_peak))
            crowd = r;
    }
    const double tps = 100000, users = 1000000, pod_vcpu = 2;
    fprintf(out, "\nCapacity model (pods of %.0f vCPU at %.0f%% CPU, nodes of %.0f vCPU):\n\n", pod_vcpu,
            100 * utilisation, node_vcpu);
    fprintf(out, "| process | measured: cores per 1,000 holds/s | per 100,000 waiting sockets | cores for 100,000 "
                 "holds/s | cores for 1,000,000 users | pods | memory per socket |\n"
                 "|---|---:|---:|---:|---:|---:|---:|\n");
    struct kind hk[KINDS_MAX], ck[KINDS_MAX];
    uint32_t hn = holds != NULL ? kinds_of(holds, hk) : 0, cn = crowd != NULL ? kinds_of(crowd, ck) : 0;
    double total_cores = 0;
    uint32_t total_pods = 0;
    const char *names[] = {"edge", "reservation-svc", "seatcored", "queue-svc", "event-svc", "auth-svc", "payment-svc",
                           "redis", "postgres"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        double per_k = 0, per_sock = 0, rss = 0;
        for (uint32_t j = 0; j < hn; j++)
            if (strcmp(hk[j].name, names[i]) == 0 && holds->holds > 0)
                per_k = hk[j].cores / holds->holds * 1000;
        for (uint32_t j = 0; j < cn; j++)
            if (strcmp(ck[j].name, names[i]) == 0 && crowd->ws_peak > 0) {
                per_sock = ck[j].cores / crowd->ws_peak * 100000;
                rss = ck[j].rss_delta_mb / crowd->ws_peak * 1048576.0;
            }
        double cores = per_k * tps / 1000 + per_sock * users / 100000;
        bool service = strcmp(names[i], "redis") == 0 || strcmp(names[i], "postgres") == 0;
        uint32_t p = service ? 0 : pods(cores, pod_vcpu, utilisation);
        if (!service) {
            total_cores += p * pod_vcpu;
            total_pods += p;
        }
        char rss_text[32] = "-", pods_text[16] = "managed";
        if (rss > 0)
            snprintf(rss_text, sizeof(rss_text), "%.1f KB", rss / 1024);
        if (!service)
            snprintf(pods_text, sizeof(pods_text), "%u", p);
        fprintf(out, "| %s | %.3f | %.3f | %.1f | %.1f | %s | %s |\n", names[i], per_k, per_sock, per_k * tps / 1000,
                per_sock * users / 100000, pods_text, rss_text);
    }
    /* A node keeps one vCPU for the kubelet, the container runtime and the node's
     * own daemons; the pods fill the rest; one more node so a node can fail (or
     * drain for an upgrade) without the survivors going over the utilisation. */
    uint32_t pods_per_node = (uint32_t)floor((node_vcpu - 1) / pod_vcpu);
    TK_ASSERT(pods_per_node > 0);
    uint32_t nodes = (total_pods + pods_per_node - 1) / pods_per_node;
    fprintf(out, "\nTotal: %u pods of %.0f vCPU (%.0f vCPU); %u pods per %.0f-vCPU node (one vCPU kept for the node's "
                 "own daemons) -> %u nodes, + 1 spare for a node failure = %u nodes; PostgreSQL and Redis apart. "
                 "From %s and %s.\n",
            total_pods, pod_vcpu, total_cores, pods_per_node, node_vcpu, nodes, nodes + 1,
            holds != NULL ? holds->path : "(no holds-only run)", crowd != NULL ? crowd->path : "(no waiting run)");
}

int rush_compare_main(int argc, char **argv)
{
    const char *out_path = NULL;
    double node_vcpu = 8, utilisation = 0.6;
    static struct run runs[RUNS_MAX];
    uint32_t n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out_path = argv[++i];
        else if (strcmp(argv[i], "--node-vcpu") == 0 && i + 1 < argc)
            node_vcpu = atof(argv[++i]);
        else if (strcmp(argv[i], "--utilisation") == 0 && i + 1 < argc)
            utilisation = atof(argv[++i]);
        else if (n < RUNS_MAX && load(argv[i], &runs[n]))
            n++;
    }
    if (n == 0) {
        fprintf(stderr, "usage: rush compare [--out FILE.md] [--node-vcpu N] [--utilisation F] RUN.json ...\n");
        return 2;
    }
    if (!(node_vcpu >= 3 && node_vcpu <= 1024) || !(utilisation > 0 && utilisation <= 1)) {
        fprintf(stderr, "rush compare: --node-vcpu must be 3..1024 (a node keeps one vCPU and holds a 2-vCPU pod) "
                        "and --utilisation in (0, 1]\n");
        return 2;
    }
    FILE *out = out_path != NULL ? fopen(out_path, "w") : stdout;
    if (out == NULL) {
        fprintf(stderr, "rush compare: cannot write %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    table_runs(out, runs, n);
    table_ratios(out, runs, n);
    table_scale(out, runs, n);
    capacity_model(out, runs, n, node_vcpu, utilisation);
    if (out != stdout)
        fclose(out);
    for (uint32_t i = 0; i < n; i++)
        json_decref(runs[i].root);
    return 0;
}
