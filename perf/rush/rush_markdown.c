/* rush_markdown.c — the run's report on disk: report.md with PNG plots drawn by
 * gnuplot (Debian's gnuplot-nox, pngcairo terminal) from .dat files written
 * beside them, and the JSON `rush compare` reads.
 *
 * The Markdown carries the same text the run printed (verbatim, so nothing is
 * computed twice), then the plots. When gnuplot is missing the data and the
 * script are still written and the report says how to draw them. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rush.h"
#include "tk_assert.h"

static const enum rush_step plotted[] = {STEP_LOGIN,  STEP_JOIN, STEP_WS_OPEN,     STEP_SEATMAP,     STEP_HOLD,
                                         STEP_RELEASE, STEP_PAY, STEP_BROWSE_LIST, STEP_BROWSE_HOLD, STEP_BROWSE_JOIN};
#define PLOTTED (sizeof(plotted) / sizeof(plotted[0]))

static FILE *open_in(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return fopen(path, "w");
}

static bool has_answers(const struct rush_totals *t, enum rush_step s)
{
    return t->hdr[s] != NULL && t->hdr[s]->count > 0;
}

/* Columns: seconds since T0, then per plotted step with answers. */
static void write_series(const struct rush_result *r, const char *dir)
{
    const struct rush_totals *t = &r->totals;
    FILE *rate = open_in(dir, "throughput.dat"), *lat = open_in(dir, "latency.dat");
    if (rate == NULL || lat == NULL)
        goto done;
    fprintf(rate, "t");
    fprintf(lat, "t");
    for (size_t i = 0; i < PLOTTED; i++)
        if (has_answers(t, plotted[i])) {
            fprintf(rate, " %s", rush_step_name(plotted[i]));
            fprintf(lat, " %s_p50 %s_p99", rush_step_name(plotted[i]), rush_step_name(plotted[i]));
        }
    fprintf(rate, "\n");
    fprintf(lat, "\n");
    for (uint32_t s = 0; s < t->seconds; s++) {
        double x = (double)s - (double)r->t0_second;
        fprintf(rate, "%.0f", x);
        fprintf(lat, "%.0f", x);
        for (size_t i = 0; i < PLOTTED; i++) {
            enum rush_step step = plotted[i];
            if (!has_answers(t, step))
                continue;
            fprintf(rate, " %u", t->second_all[step][s]);
            if (t->second_p50[step][s] == 0)
                fprintf(lat, " NaN NaN");
            else
                fprintf(lat, " %.3f %.3f", (double)t->second_p50[step][s] / 1e3, (double)t->second_p99[step][s] / 1e3);
        }
        fprintf(rate, "\n");
        fprintf(lat, "\n");
    }
done:
    if (rate != NULL)
        fclose(rate);
    if (lat != NULL)
        fclose(lat);
}

struct walk_ctx {
    FILE *f;
    double scale;
    uint64_t count; /* the last point (q = 1) is drawn at 1 / (1 / count) */
};

static void on_percentile(void *ctx, double q, uint64_t value)
{
    struct walk_ctx *w = ctx;
    double tail = 1.0 - q;
    double x = tail > 0 ? 1.0 / tail : (double)w->count;
    fprintf(w->f, "%.6f %.3f %.4f\n", 100.0 * q, x, (double)value * w->scale);
}

/* One block per step (gnuplot index), in step order; returns the blocks written. */
static uint32_t write_distributions(const struct rush_result *r, const char *dir, char names[][32])
{
    FILE *f = open_in(dir, "latency-dist.dat");
    if (f == NULL)
        return 0;
    uint32_t blocks = 0;
    for (size_t i = 0; i < PLOTTED; i++) {
        enum rush_step step = plotted[i];
        if (!has_answers(&r->totals, step))
            continue;
        struct walk_ctx ctx = {f, 1e-3, r->totals.hdr[step]->count};
        fprintf(f, "# %s\n", rush_step_name(step));
        hdr_percentile_walk(r->totals.hdr[step], 5, on_percentile, &ctx);
        fprintf(f, "\n\n");
        snprintf(names[blocks++], 32, "%s", rush_step_name(step));
    }
    fclose(f);
    return blocks;
}

static bool write_waits(const struct rush_result *r, const char *dir)
{
    if (r->config.mode == RUSH_MODE_HOLDS || r->queue_waits_ms == NULL || r->queue_waits_ms->count == 0)
        return false;
    FILE *f = open_in(dir, "queue-wait.dat");
    if (f == NULL)
        return false;
    struct walk_ctx ctx = {f, 1e-3, r->queue_waits_ms->count};
    hdr_percentile_walk(r->queue_waits_ms, 5, on_percentile, &ctx);
    fclose(f);
    f = open_in(dir, "fairness.dat");
    if (f == NULL)
        return false;
    uint64_t t0 = r->t0_us;
    for (uint32_t i = 0; i < r->record_count; i++) {
        const struct rush_user_record *u = &r->records[i];
        uint64_t arrival = u->join_done_us != 0 ? u->join_done_us : u->join_sent_us;
        if (arrival == 0 || u->admitted_us == 0)
            continue;
        fprintf(f, "%.4f %.4f\n", ((double)arrival - (double)t0) / 1e6, ((double)u->admitted_us - (double)t0) / 1e6);
    }
    fclose(f);
    return true;
}

static void write_script(const struct rush_result *r, const char *dir, uint32_t blocks, char names[][32], bool waits)
{
    FILE *f = open_in(dir, "plot.gp");
    if (f == NULL)
        return;
    uint32_t columns = 0;
    for (size_t i = 0; i < PLOTTED; i++)
        columns += has_answers(&r->totals, plotted[i]);
    fprintf(f, "# gnuplot script written by rush: gnuplot plot.gp (in this directory)\n"
               "set terminal pngcairo size 1100,520 font ',10' noenhanced\n"
               "set grid\nset key outside right top\nset key autotitle columnhead\n"
               "set xlabel 'seconds since T0'\n"
               "# gnuplot's default colours repeat after 8: up to 10 steps are plotted\n"
               "set linetype 9 lc rgb '#8c564b'\nset linetype 10 lc rgb '#7f7f7f'\nset linetype cycle 10\n");
    fprintf(f, "set output 'throughput.png'\nset title '%s: answers per second by step'\nset ylabel 'per second'\n"
               "plot for [i=2:%u] 'throughput.dat' using 1:i with lines lw 1.5\n",
            r->label, columns + 1);
    fprintf(f, "set output 'latency.png'\nset title '%s: p99 (solid) and p50 (dashed) latency by step, per second'\n"
               "set logscale y\nset ylabel 'ms'\n"
               "plot for [i=1:%u] 'latency.dat' using 1:(column(2*i+1)) with lines lw 1.5 lc i title "
               "columnhead(2*i+1), for [i=1:%u] 'latency.dat' using 1:(column(2*i)) with lines dt 2 lc i notitle\n"
               "unset logscale y\n",
            r->label, columns, columns);
    fprintf(f, "set output 'latency-dist.png'\nset title '%s: latency by percentile (HDR histograms)'\n"
               "set key autotitle\nset logscale x\nset logscale y\nset xlabel 'percentile'\nset ylabel 'ms'\n"
               "set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, '99.99%%%%' 10000, '99.999%%%%' 100000)\n"
               "plot ",
            r->label);
    for (uint32_t b = 0; b < blocks; b++)
        fprintf(f, "%s'latency-dist.dat' index %u using 2:3 with lines lw 1.5 title '%s'", b ? ", " : "", b, names[b]);
    fprintf(f, "\nunset logscale x\nunset logscale y\nset xtics autofreq\n");
    if (waits) {
        fprintf(f, "set output 'queue-wait.png'\nset title '%s: queue wait by percentile'\nset logscale x\n"
                   "set xlabel 'percentile'\nset ylabel 'seconds'\n"
                   "set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, '99.99%%%%' 10000)\n"
                   "plot 'queue-wait.dat' using 2:3 with lines lw 2 title 'queue wait'\n"
                   "unset logscale x\nset xtics autofreq\n",
                r->label);
        fprintf(f, "set output 'fairness.png'\nset title '%s: admission time vs arrival time (one dot per user)'\n"
                   "set xlabel 'arrival (join answered), s since T0'\nset ylabel 'admitted, s since T0'\n"
                   "plot 'fairness.dat' using 1:2 with dots title 'users', x title 'no wait' lw 1\n",
                r->label);
    }
    fclose(f);
}

static int write_markdown(const struct rush_result *r, const char *dir, bool plotted_ok, bool waits)
{
    FILE *f = open_in(dir, "report.md");
    if (f == NULL)
        return -1;
    fprintf(f, "# rush: %s\n\n", r->label);
    fprintf(f, "Scenario `%s` (mode %s), %s. Made by `perf/rush` (see perf/README.md); the figures below are the\n"
               "run's own output, the plots are drawn from the .dat files in this folder by `plot.gp`.\n\n",
            r->config.name, rush_mode_name(r->config.mode), r->machine.date);
    fprintf(f, "```\n");
    rush_report_print(f, r);
    fprintf(f, "```\n\n");
    if (!plotted_ok)
        fprintf(f, "_The plots were not drawn (no gnuplot: `apt-get install gnuplot-nox`, then `gnuplot plot.gp` "
                   "here)._\n\n");
    fprintf(f, "## Throughput over time\n\n![throughput](throughput.png)\n\n");
    fprintf(f, "## Latency over time\n\n![latency](latency.png)\n\n");
    fprintf(f, "## Latency distribution\n\n![latency distribution](latency-dist.png)\n\n");
    if (waits) {
        fprintf(f, "## Queue wait\n\n![queue wait](queue-wait.png)\n\n");
        fprintf(f, "## Fairness\n\nEach dot is a user: when they arrived (join answered) and when they were "
                   "admitted. First-come-first-served is a rising band; a dot far below it overtook others.\n\n"
                   "![fairness](fairness.png)\n");
    }
    fclose(f);
    return 0;
}

int rush_report_write(const struct rush_result *r, const char *out_dir, bool plots)
{
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return -1;
    write_series(r, out_dir);
    char names[PLOTTED][32];
    uint32_t blocks = write_distributions(r, out_dir, names);
    bool waits = write_waits(r, out_dir);
    write_script(r, out_dir, blocks, names, waits);
    bool drawn = false;
    if (plots) {
        char command[1200];
        snprintf(command, sizeof(command), "cd '%s' && gnuplot plot.gp 2>gnuplot.log", out_dir);
        drawn = system(command) == 0;
        if (!drawn)
            fprintf(stderr, "rush: gnuplot failed or is missing (see %s/gnuplot.log)\n", out_dir);
    }
    return write_markdown(r, out_dir, drawn, waits);
}

/* ---- JSON ---- */

static void json_key_number(FILE *f, const char *key, double v, bool comma)
{
    fprintf(f, "%s\"%s\":", comma ? "," : "", key);
    bench_json_number(f, v);
}

static void json_steps(FILE *f, const struct rush_result *r)
{
    const struct rush_totals *t = &r->totals;
    double from = r->config.mode == RUSH_MODE_HOLDS ? r->window_from_s : r->t0_second;
    double to = r->config.mode == RUSH_MODE_HOLDS ? r->window_to_s : r->run_end_second;
    fprintf(f, ",\"steps\":{");
    bool first = true;
    for (uint32_t s = 0; s < STEP_COUNT; s++) {
        const struct hdr_histogram *h = t->hdr[s];
        uint64_t n = t->ok[s] + t->refused[s] + t->errors[s];
        if (n == 0)
            continue;
        fprintf(f, "%s\"%s\":{", first ? "" : ",", rush_step_name((enum rush_step)s));
        first = false;
        json_key_number(f, "answered", (double)n, false);
        json_key_number(f, "ok", (double)t->ok[s], true);
        json_key_number(f, "refused", (double)t->refused[s], true);
        json_key_number(f, "errors", (double)t->errors[s], true);
        json_key_number(f, "per_s", rush_totals_rate(t, (enum rush_step)s, (uint32_t)from, (uint32_t)to, false), true);
        json_key_number(f, "p50_ms", h->count ? (double)hdr_quantile(h, 0.5) / 1e3 : -1, true);
        json_key_number(f, "p90_ms", h->count ? (double)hdr_quantile(h, 0.9) / 1e3 : -1, true);
        json_key_number(f, "p99_ms", h->count ? (double)hdr_quantile(h, 0.99) / 1e3 : -1, true);
        json_key_number(f, "p999_ms", h->count ? (double)hdr_quantile(h, 0.999) / 1e3 : -1, true);
        json_key_number(f, "max_ms", h->count ? (double)h->max / 1e3 : -1, true);
        fprintf(f, "}");
    }
    fprintf(f, "}");
}

static void json_processes(FILE *f, const struct rush_result *r, double window)
{
    fprintf(f, ",\"processes\":[");
    for (uint32_t i = 0; i < r->process_count; i++) {
        const struct rush_process_cpu *p = &r->processes[i];
        double cpu = p->cpu_start >= 0 && p->cpu_end >= p->cpu_start ? p->cpu_end - p->cpu_start : -1;
        fprintf(f, "%s{\"name\":", i ? "," : "");
        bench_json_string(f, p->name);
        json_key_number(f, "cpu_s", cpu, true);
        json_key_number(f, "cores", cpu >= 0 ? cpu / window : -1, true);
        json_key_number(f, "rss_start_mb", p->rss_start_mb, true);
        json_key_number(f, "rss_end_mb", p->rss_end_mb, true);
        fprintf(f, "}");
    }
    fprintf(f, "]");
}

int rush_report_json(const struct rush_result *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    const struct rush_config *c = &r->config;
    double window = c->mode == RUSH_MODE_HOLDS ? (double)c->duration_s : r->window_s;
    fprintf(f, "{\"label\":");
    bench_json_string(f, r->label);
    fprintf(f, ",\"scenario\":");
    bench_json_string(f, c->name);
    fprintf(f, ",\"mode\":\"%s\",\"baseline\":%s,\"target\":", rush_mode_name(c->mode),
            r->run->baseline ? "true" : "false");
    bench_json_string(f, r->run->target.base_url);
    fprintf(f, ",");
    bench_json_machine(f, &r->machine);
    json_key_number(f, "users", c->users, true);
    json_key_number(f, "workers", c->workers, true);
    json_key_number(f, "lanes", c->lanes, true);
    json_key_number(f, "events", c->events, true);
    json_key_number(f, "capacity", c->capacity, true);
    json_key_number(f, "window_s", window, true);
    json_key_number(f, "login_s", r->login_s, true);
    json_key_number(f, "holds_per_s", r->holds_per_s, true);
    json_key_number(f, "holds_ok_per_s", r->holds_ok_per_s, true);
    json_key_number(f, "hold_p50_ms", r->hold_p50_ms, true);
    json_key_number(f, "hold_p99_ms", r->hold_p99_ms, true);
    json_key_number(f, "hold_p999_ms", r->hold_p999_ms, true);
    json_key_number(f, "requests_per_s", r->requests_per_s, true);
    json_key_number(f, "ws_peak", (double)r->ws_peak, true);
    json_key_number(f, "loadgen_cores", r->loadgen_cpu_s / window, true);
    json_key_number(f, "machine_busy_cores", r->machine_busy_s / window, true);
    json_key_number(f, "target_holds_per_s", c->target_holds_per_s, true);
    json_key_number(f, "target_p99_ms", c->target_p99_ms, true);
    json_key_number(f, "target_ratio", c->target_ratio, true);
    json_key_number(f, "target_ws", c->target_ws, true);
    json_key_number(f, "holds_rate", c->holds_rate, true);
    json_key_number(f, "live_per_lane", c->live_per_lane, true);
    json_key_number(f, "loadavg_start", atof(r->machine.load_start), true);
    json_key_number(f, "loadavg_end", atof(r->machine.load_end), true);
    json_key_number(f, "requests_late", (double)r->totals.requests_late, true);
    json_steps(f, r);
    json_processes(f, r, window);
    const struct rush_fairness *fa = &r->fairness;
    fprintf(f, ",\"fairness\":{");
    json_key_number(f, "joined", (double)fa->joined, false);
    json_key_number(f, "admitted", (double)fa->admitted, true);
    json_key_number(f, "wait_p50_s", fa->wait_p50_s, true);
    json_key_number(f, "wait_p99_s", fa->wait_p99_s, true);
    json_key_number(f, "spearman_arrival", fa->spearman_arrival, true);
    json_key_number(f, "overtaken", (double)fa->overtaken, true);
    json_key_number(f, "positions_per_s", fa->positions_per_s, true);
    const struct rush_hold_audit *ha = &r->hold_audit;
    fprintf(f, "},\"hold_audit\":{\"ran\":%s,\"pass\":%s", ha->ran ? "true" : "false", ha->pass ? "true" : "false");
    json_key_number(f, "seat_holds", (double)ha->seat_holds, true);
    json_key_number(f, "seats", (double)ha->seats, true);
    json_key_number(f, "double_holds", (double)ha->double_holds, true);
    json_key_number(f, "dropped", (double)ha->dropped, true);
    fprintf(f, "},\"audit\":{\"ran\":%s,\"pass\":%s", r->audit.ran ? "true" : "false",
            r->audit.pass ? "true" : "false");
    json_key_number(f, "oversold", (double)r->audit.oversold, true);
    json_key_number(f, "lost", (double)(r->audit.paid_not_confirmed + r->audit.paid_seats_not_sold), true);
    json_key_number(f, "engine_sold", (double)r->audit.engine_sold, true);
    json_key_number(f, "pg_sold", (double)r->audit.pg_sold, true);
    json_key_number(f, "client_paid", (double)r->audit.client_paid, true);
    fprintf(f, "}}\n");
    return fclose(f) == 0 ? 0 : -1;
}
