/* rush_report.c — what a run prints (stdout), writes (Markdown + gnuplot PNGs +
 * their data) and exports (JSON for `rush compare`).
 *
 * The same numbers everywhere: per-step counts, rates over the run's window
 * (holds: the measured window after the warm-up; rush: T0 to the end), latency
 * percentiles from the HDR histograms (0.8% buckets), the queue and fairness
 * figures, errors by code, the audit, the CPU each process of the stack used in
 * the window, and the targets, each PASS, MISS or n/a. Plots: throughput per
 * step over time, p50/p99 per step over time (per-second histograms, 12.5%
 * buckets), the latency distribution by percentile (HdrHistogram's classic
 * plot), and the queue waits. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rush.h"
#include "tk_assert.h"


const char *const rush_outcome_names[RUSH_OUTCOMES] = {"none",     "waiting", "gave up",     "abandoned", "released",
                                                      "declined", "paid",    "pay unknown", "failed"};
#define outcome_names rush_outcome_names

static const char *ms(char *buf, size_t len, double us)
{
    if (us < 0)
        return "-";
    return bench_fmt_ns(buf, len, us * 1000.0);
}

static uint64_t answered(const struct rush_totals *t, enum rush_step s)
{
    return t->ok[s] + t->refused[s] + t->errors[s];
}

static double window_from(const struct rush_result *r)
{
    return r->config.mode == RUSH_MODE_HOLDS ? r->window_from_s : r->t0_second;
}

static double window_to(const struct rush_result *r)
{
    return r->config.mode == RUSH_MODE_HOLDS ? r->window_to_s : r->run_end_second;
}

/* ---- targets ---- */

struct verdicts {
    enum bench_verdict holds_rate, holds_p99, oversold, lost, ws;
};

static void judge(const struct rush_result *r, struct verdicts *v)
{
    const struct rush_config *c = &r->config;
    v->holds_rate = v->holds_p99 = v->oversold = v->lost = v->ws = BENCH_NA;
    if (c->mode == RUSH_MODE_HOLDS && !r->run->baseline) {
        v->holds_rate = r->holds_per_s >= c->target_holds_per_s ? BENCH_PASS : BENCH_MISS;
        v->holds_p99 = r->hold_p99_ms < c->target_p99_ms ? BENCH_PASS : BENCH_MISS;
    }
    if (r->audit.ran) {
        v->oversold = r->audit.oversold == 0 && r->audit.client_duplicate_seats == 0 ? BENCH_PASS : BENCH_MISS;
        v->lost = r->audit.paid_not_confirmed == 0 && r->audit.paid_seats_not_sold == 0 &&
                          r->audit.engine_not_pg == 0 && r->audit.pg_not_engine == 0
                      ? BENCH_PASS
                      : BENCH_MISS;
    }
    if (c->mode == RUSH_MODE_WAITING && c->target_ws > 0)
        v->ws = r->ws_peak >= c->target_ws ? BENCH_PASS : BENCH_MISS;
}

/* ---- stdout ---- */

static void print_steps(FILE *out, const struct rush_result *r)
{
    const struct rush_totals *t = &r->totals;
    double from = window_from(r), to = window_to(r);
    fprintf(out, "\n%-14s %10s %9s %8s %10s %9s %9s %9s %9s %9s\n", "step", "answered", "refused", "errors", "per s",
            "p50", "p90", "p99", "p99.9", "max");
    for (uint32_t s = 0; s < STEP_COUNT; s++) {
        if (answered(t, (enum rush_step)s) == 0)
            continue;
        const struct hdr_histogram *h = t->hdr[s];
        char a[32], b[32], c[32], d[32], e[32], f[32], g[32], k[32], rate[32];
        bool series = s != STEP_QUEUE_WAIT && s != STEP_LOGIN;
        fprintf(out, "%-14s %10s %9s %8s %10s %9s %9s %9s %9s %9s\n", rush_step_name((enum rush_step)s),
                bench_fmt_count(a, sizeof(a), (double)answered(t, (enum rush_step)s)),
                bench_fmt_count(b, sizeof(b), (double)t->refused[s]), bench_fmt_count(k, sizeof(k), (double)t->errors[s]),
                series ? bench_fmt_count(rate, sizeof(rate), rush_totals_rate(t, (enum rush_step)s, (uint32_t)from,
                                                                            (uint32_t)to, false))
                       : "-",
                ms(c, sizeof(c), h->count ? (double)hdr_quantile(h, 0.5) : -1),
                ms(d, sizeof(d), h->count ? (double)hdr_quantile(h, 0.9) : -1),
                ms(e, sizeof(e), h->count ? (double)hdr_quantile(h, 0.99) : -1),
                ms(f, sizeof(f), h->count ? (double)hdr_quantile(h, 0.999) : -1),
                ms(g, sizeof(g), h->count ? (double)h->max : -1));
    }
}

static void print_errors(FILE *out, const struct rush_totals *t)
{
    if (t->error_kinds == 0)
        return;
    fprintf(out, "\nanswers other than 2xx, by code:\n");
    for (uint32_t i = 0; i < t->error_kinds; i++) {
        const struct rush_error_kind *k = &t->errors_by_code[i];
        char n[32], status[8];
        snprintf(status, sizeof(status), "%u", k->status);
        fprintf(out, "  %-14s %4s %-28s %10s  %s\n", rush_step_name((enum rush_step)k->step),
                k->status ? status : "-", k->code[0] ? k->code : "(no code)",
                bench_fmt_count(n, sizeof(n), (double)k->count), k->expected ? "expected" : "ERROR");
    }
}

static void print_queue(FILE *out, const struct rush_result *r)
{
    const struct rush_fairness *f = &r->fairness;
    const struct rush_totals *t = &r->totals;
    if (r->config.mode == RUSH_MODE_HOLDS)
        return;
    char a[32], b[32], c[32];
    fprintf(out, "\nwaiting room: %s joined, %s admitted, %s still waiting at the end\n",
            bench_fmt_count(a, sizeof(a), (double)f->joined), bench_fmt_count(b, sizeof(b), (double)f->admitted),
            bench_fmt_count(c, sizeof(c), (double)f->waiting_at_end));
    fprintf(out, "  queue wait p50 %.1f s, p90 %.1f s, p99 %.1f s, max %.1f s\n", f->wait_p50_s, f->wait_p90_s,
            f->wait_p99_s, f->wait_max_s);
    char ticket_rho[48] = "n/a (socket-only joins: no tickets)";
    if (!isnan(f->spearman_ticket))
        snprintf(ticket_rho, sizeof(ticket_rho), "%.4f", f->spearman_ticket);
    fprintf(out, "  fairness: admission vs arrival order rho %.4f, vs ticket order rho %s; overtaken by >= 1 s: %llu; "
                 "ticket inversions > 0.5 s: %llu; displacement p99 %.2f%% of the crowd\n",
            f->spearman_arrival, ticket_rho, (unsigned long long)f->overtaken,
            (unsigned long long)f->ticket_inversions, 100.0 * f->displacement_p99);
    fprintf(out, "  websockets: peak %s open; %s messages, %s positions (%.2f per waiting socket-second, longest "
                 "silence %.2f s), %s admissions, %s seat deltas, %llu closed by the server\n",
            bench_fmt_count(a, sizeof(a), (double)r->ws_peak), bench_fmt_count(b, sizeof(b), (double)t->ws_messages),
            bench_fmt_count(c, sizeof(c), (double)t->ws_positions), f->positions_per_s,
            (double)t->ws_position_gap_max_us / 1e6, bench_fmt_count((char[32]){0}, 32, (double)t->ws_admitted),
            bench_fmt_count((char[32]){0}, 32, (double)t->ws_seat_deltas), (unsigned long long)t->ws_closed_by_server);
}

static void print_hold_audit(FILE *out, const struct rush_result *r)
{
    const struct rush_hold_audit *a = &r->hold_audit;
    if (r->config.mode != RUSH_MODE_HOLDS)
        return;
    if (!a->ran) {
        fprintf(out, "\nholds audit: not run (%s)\n", a->why_not);
        return;
    }
    fprintf(out, "\nholds audit (no seat in two holds at once, judged from the clients): %s\n"
                 "  %llu seat-holds of %llu distinct seats checked; held twice: %llu; not kept (log full): %llu\n",
            a->pass ? "PASS" : "FAIL", (unsigned long long)a->seat_holds, (unsigned long long)a->seats,
            (unsigned long long)a->double_holds, (unsigned long long)a->dropped);
    if (a->example[0] != '\0')
        fprintf(out, "  first: %s\n", a->example);
}

static void print_audit(FILE *out, const struct rush_result *r)
{
    const struct rush_audit *a = &r->audit;
    print_hold_audit(out, r);
    if (r->config.mode == RUSH_MODE_HOLDS)
        return;
    if (!a->ran) {
        fprintf(out, "\naudit: not run (%s)\n", a->why_not);
        return;
    }
    fprintf(out, "\naudit (event %s, %llu seats): %s\n", r->run->events[0].id_text, (unsigned long long)a->capacity,
            a->pass ? "PASS" : "FAIL");
    fprintf(out, "  engine: %llu sold, %llu held, %llu free; PostgreSQL: %llu confirmed seat rows (%llu distinct)\n",
            (unsigned long long)a->engine_sold, (unsigned long long)a->engine_held,
            (unsigned long long)a->engine_free, (unsigned long long)a->pg_sold,
            (unsigned long long)a->pg_sold_distinct);
    fprintf(out, "  oversold %llu; sold in the engine only %llu; in PostgreSQL only %llu; paid answers %llu, not "
                 "confirmed %llu, seats not sold %llu, seat in two paid answers %llu; declined %llu, of them sold %llu; "
                 "sagas unsettled %llu\n",
            (unsigned long long)a->oversold, (unsigned long long)a->engine_not_pg, (unsigned long long)a->pg_not_engine,
            (unsigned long long)a->client_paid, (unsigned long long)a->paid_not_confirmed,
            (unsigned long long)a->paid_seats_not_sold, (unsigned long long)a->client_duplicate_seats,
            (unsigned long long)a->declined, (unsigned long long)a->declined_but_sold,
            (unsigned long long)a->sagas_unsettled);
    fprintf(out, "  reservations: %llu pending, %llu paying, %llu confirmed, %llu released, %llu expired, %llu "
                 "cancelling, %llu cancelled\n",
            (unsigned long long)a->reservations_by_status[0], (unsigned long long)a->reservations_by_status[1],
            (unsigned long long)a->reservations_by_status[2], (unsigned long long)a->reservations_by_status[3],
            (unsigned long long)a->reservations_by_status[4], (unsigned long long)a->reservations_by_status[5],
            (unsigned long long)a->reservations_by_status[6]);
}

static void print_processes(FILE *out, const struct rush_result *r)
{
    double window = r->config.mode == RUSH_MODE_HOLDS ? (double)r->config.duration_s : r->window_s;
    if (r->process_count == 0 || window <= 0)
        return;
    fprintf(out, "\ncores used in the window (%.0f s; machine busy %.2f of %ld cores):", window,
            r->machine_busy_s / window, r->machine.nproc);
    double total = 0;
    for (uint32_t i = 0; i < r->process_count; i++) {
        const struct rush_process_cpu *p = &r->processes[i];
        if (p->cpu_start < 0 || p->cpu_end < p->cpu_start)
            continue;
        total += p->cpu_end - p->cpu_start;
        fprintf(out, " %s %.2f", p->name, (p->cpu_end - p->cpu_start) / window);
    }
    fprintf(out, "; load generator %.2f; stack total %.2f\n", r->loadgen_cpu_s / window, total / window);
}

static void print_outcomes(FILE *out, const struct rush_result *r)
{
    if (r->config.mode != RUSH_MODE_RUSH)
        return;
    fprintf(out, "  buyers:");
    for (uint32_t i = 1; i < RUSH_OUTCOMES; i++)
        if (r->outcomes[i] > 0)
            fprintf(out, " %s %llu;", outcome_names[i], (unsigned long long)r->outcomes[i]);
    fprintf(out, " seats bought %llu\n", (unsigned long long)r->seats_bought);
}

void rush_report_print(FILE *out, const struct rush_result *r)
{
    const struct rush_config *c = &r->config;
    fprintf(out, "\nrush  %s  %s\n", r->label, r->machine.date);
    fprintf(out, "machine: %ld cpus, %s; %s; load average %s at start, %s at end\n", r->machine.nproc,
            r->machine.cpu_model, r->machine.kernel, r->machine.load_start, r->machine.load_end);
    rush_config_print(out, c);
    fprintf(out, "target %s%s; %u users signed in in %.1f s\n", r->run->target.base_url,
            r->run->baseline ? " (baseline)" : "", c->users, r->login_s);
    print_steps(out, r);
    print_queue(out, r);
    print_outcomes(out, r);
    print_errors(out, &r->totals);
    print_audit(out, r);
    print_processes(out, r);
    const struct rush_totals *t = &r->totals;
    fprintf(out, "\nconnections %llu (connect errors %llu, resets %llu); %llu responses; in %.1f MB, out %.1f MB; "
                 "open-loop sends late > 10 ms: %llu%s%s\n",
            (unsigned long long)t->connects, (unsigned long long)t->connect_errors, (unsigned long long)t->resets,
            (unsigned long long)t->http_responses, (double)t->bytes_in / 1e6, (double)t->bytes_out / 1e6,
            (unsigned long long)t->requests_late, t->first_error[0] ? "; first error: " : "", t->first_error);
    struct verdicts v;
    judge(r, &v);
    fprintf(out, "\ntargets:\n");
    if (c->mode == RUSH_MODE_HOLDS) {
        fprintf(out, "  holds end-to-end >= %.0f/s: %.0f/s (%.0f%% conflicts)  %s\n", c->target_holds_per_s,
                r->holds_per_s, r->holds_per_s > 0 ? 100.0 * (1.0 - r->holds_ok_per_s / r->holds_per_s) : 0.0,
                bench_verdict_name(v.holds_rate));
        fprintf(out, "  hold p99 < %.0f ms: %.2f ms  %s\n", c->target_p99_ms, r->hold_p99_ms,
                bench_verdict_name(v.holds_p99));
    }
    if (c->mode == RUSH_MODE_RUSH) {
        fprintf(out, "  0 oversold: %s\n", bench_verdict_name(v.oversold));
        fprintf(out, "  0 lost sales (engine == PostgreSQL, every paid reservation confirmed): %s\n",
                bench_verdict_name(v.lost));
    }
    if (c->mode == RUSH_MODE_WAITING)
        fprintf(out, "  %u waiting WebSocket clients: peak %llu  %s\n", c->target_ws, (unsigned long long)r->ws_peak,
                bench_verdict_name(v.ws));
}
