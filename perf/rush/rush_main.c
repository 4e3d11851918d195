/* rush_main.c — `rush`: the load generator's command line, set-up, workers,
 * progress, then fairness, audit and report.
 *
 *   rush [options] SCENARIO.conf        one run (a file of perf/scenarios/)
 *   rush compare [options] A.json B.json ...   tables across runs (rush_compare.c)
 *
 * Order of a run: scenario -> descriptor limit -> users in PostgreSQL -> admin
 * token -> events (admin API) -> shared mapping -> fork workers (each signs its
 * users in, prepares, says READY) -> T0 = all ready + 1 s -> progress every
 * second on stderr -> workers exit -> merge -> fairness -> audit (gRPC is only
 * initialised here, after the forks) -> tables on stdout, Markdown + PNG report,
 * JSON. The process CPU of the stack (perf/rush/stack's pids file) is sampled at
 * the window's edges, so each row can say which process used the cores. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rush.h"
#include "tk_assert.h"

#define OVERRIDES_MAX 64u
#define PROGRESS_EVERY_US 1000000u

struct options {
    const char *scenario;
    const char *target, *login_target, *pg_url, *shards, *admin_email, *admin_password, *stack_dir;
    const char *out_dir, *json, *label, *prefix, *token_cache;
    bool quick, baseline, plots, audit, verbose;
    char *overrides[OVERRIDES_MAX];
    uint32_t override_count;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: rush [options] SCENARIO.conf\n"
            "       rush compare [--out FILE.md] RUN.json ...\n"
            "\n"
            "Plays a scenario (perf/scenarios/) against the edge's HTTP+WebSocket API and reports\n"
            "throughput and latency per step, queue waits and fairness, errors by code, and (rush)\n"
            "a consistency audit of the engine and PostgreSQL. See perf/README.md.\n"
            "\n"
            "  --target URL          the server (default $RUSH_EDGE_URL, else http://127.0.0.1:8080)\n"
            "  --login-target URL    where users sign in (default: --target; the baseline has no auth)\n"
            "  --baseline            the target is perf/baselines' server (holds scenarios; no audit)\n"
            "  --pg URL              PostgreSQL: users are inserted there, the audit reads it ($RUSH_PG_URL)\n"
            "  --shards LIST         seatcored shards, for the audit ($RUSH_SHARDS)\n"
            "  --admin-email E, --admin-password P   ($RUSH_ADMIN_EMAIL / $RUSH_ADMIN_PASSWORD)\n"
            "  --stack-dir DIR       perf/rush/stack's dir: CPU per process of the stack ($RUSH_STACK_DIR)\n"
            "  --quick               the scenario's quick.* settings (a short run of the same shape)\n"
            "  --set KEY=VALUE       override a scenario key (repeatable)\n"
            "  --out DIR             write report.md, PNG plots (gnuplot) and their data there\n"
            "  --no-plots            Markdown without running gnuplot\n"
            "  --json FILE           the figures as JSON (rush compare reads them)\n"
            "  --label TEXT          this run's name in tables (default: the scenario's)\n"
            "  --prefix P            e-mail prefix of the generated users (default rush)\n"
            "  --no-audit            skip the audit\n"
            "  --token-cache FILE    access tokens kept between runs (default: STACK_DIR/tokens-PREFIX.txt;\n"
            "                        used when younger than an hour; the stack's tokens live two hours)\n"
            "  -v                    more progress\n");
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : fallback;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->plots = true;
    o->audit = true;
    o->prefix = "rush";
    static const struct option long_options[] = {
        {"target", required_argument, 0, 't'},     {"login-target", required_argument, 0, 'L'},
        {"baseline", no_argument, 0, 'B'},         {"pg", required_argument, 0, 'p'},
        {"shards", required_argument, 0, 's'},     {"admin-email", required_argument, 0, 'e'},
        {"admin-password", required_argument, 0, 'w'}, {"stack-dir", required_argument, 0, 'd'},
        {"quick", no_argument, 0, 'q'},            {"set", required_argument, 0, 'S'},
        {"out", required_argument, 0, 'o'},        {"no-plots", no_argument, 0, 'P'},
        {"json", required_argument, 0, 'j'},       {"label", required_argument, 0, 'l'},
        {"prefix", required_argument, 0, 'x'},     {"no-audit", no_argument, 0, 'A'},
        {"token-cache", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "vh", long_options, NULL)) != -1) {
        switch (c) {
        case 't': o->target = optarg; break;
        case 'L': o->login_target = optarg; break;
        case 'B': o->baseline = true; break;
        case 'p': o->pg_url = optarg; break;
        case 's': o->shards = optarg; break;
        case 'e': o->admin_email = optarg; break;
        case 'w': o->admin_password = optarg; break;
        case 'd': o->stack_dir = optarg; break;
        case 'q': o->quick = true; break;
        case 'S':
            if (o->override_count == OVERRIDES_MAX) {
                fprintf(stderr, "rush: too many --set\n");
                return 2;
            }
            o->overrides[o->override_count++] = optarg;
            break;
        case 'o': o->out_dir = optarg; break;
        case 'P': o->plots = false; break;
        case 'j': o->json = optarg; break;
        case 'l': o->label = optarg; break;
        case 'x': o->prefix = optarg; break;
        case 'A': o->audit = false; break;
        case 'T': o->token_cache = optarg; break;
        case 'v': o->verbose = true; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    o->scenario = argv[optind];
    o->target = o->target != NULL ? o->target : env_or("RUSH_EDGE_URL", "http://127.0.0.1:8080");
    o->login_target = o->login_target != NULL ? o->login_target : o->baseline ? env_or("RUSH_EDGE_URL", NULL) : o->target;
    o->pg_url = o->pg_url != NULL ? o->pg_url : env_or("RUSH_PG_URL", NULL);
    o->shards = o->shards != NULL ? o->shards : env_or("RUSH_SHARDS", NULL);
    o->admin_email = o->admin_email != NULL ? o->admin_email
                                            : env_or("RUSH_ADMIN_EMAIL", env_or("TIKETI_ADMIN_EMAIL", "admin@tiketi.local"));
    o->admin_password = o->admin_password != NULL
                            ? o->admin_password
                            : env_or("RUSH_ADMIN_PASSWORD", env_or("TIKETI_ADMIN_PASSWORD", "tiketi-admin"));
    o->stack_dir = o->stack_dir != NULL ? o->stack_dir : env_or("RUSH_STACK_DIR", NULL);
    if (o->pg_url == NULL) {
        fprintf(stderr, "rush: --pg (or RUSH_PG_URL) is needed: users are inserted into PostgreSQL\n");
        return 2;
    }
    if (o->login_target == NULL) {
        fprintf(stderr, "rush: --baseline needs --login-target (the edge, where users sign in)\n");
        return 2;
    }
    return 0;
}

/* The descriptor limit: as high as the hard limit allows (this sandbox: 20,000). */
static rlim_t raise_fd_limit(void)
{
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    rlim_t wanted = limit.rlim_max;
    struct rlimit raised = {.rlim_cur = wanted, .rlim_max = limit.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0)
        return limit.rlim_cur;
    /* past the hard limit needs CAP_SYS_RESOURCE: try, and keep what we got */
    struct rlimit more = {.rlim_cur = 1100000, .rlim_max = 1100000};
    if (setrlimit(RLIMIT_NOFILE, &more) == 0)
        return more.rlim_cur;
    return wanted;
}

/* ---- set-up ---- */

static int prepare(const struct options *o, struct rush_run *run, char *err, size_t err_len)
{
    const struct rush_config *c = &run->config;
    struct rush_target login;
    if (rush_target_parse(&run->target, o->target, err, err_len) != 0 ||
        rush_target_parse(&login, o->login_target, err, err_len) != 0)
        return -1;
    run->login_target = login;
    run->baseline = o->baseline;
    snprintf(run->user_prefix, sizeof(run->user_prefix), "%s", o->prefix);
    snprintf(run->password, sizeof(run->password), "Rush-perf-pass-2026");
    uint64_t t = rush_now_us();
    fprintf(stderr, "rush: %u users in PostgreSQL (%s-N@perf.tiketi)\n", c->users, o->prefix);
    if (rush_setup_users(o->pg_url, o->prefix, run->password, c->users, err, err_len) != 0)
        return -1;
    char admin[RUSH_TOKEN_BYTES];
    if (rush_admin_login(&login, o->admin_email, o->admin_password, admin, sizeof(admin), err, err_len) != 0)
        return -1;
    char name[96];
    run->event_count = c->mode == RUSH_MODE_HOLDS ? c->events : 1;
    bool queue = c->mode == RUSH_MODE_HOLDS ? false : c->queue_enabled;
    for (uint32_t i = 0; i < run->event_count; i++) {
        snprintf(name, sizeof(name), "%s %s #%u (%llu)", c->name, rush_mode_name(c->mode), i + 1,
                 (unsigned long long)(t / 1000000u));
        if (rush_create_event(&run->target, admin, c, name, c->sections, c->section_count, queue, c->hold_ttl_s,
                              c->max_seats_per_user, &run->events[i], err, err_len) != 0)
            return -1;
    }
    if (c->mode == RUSH_MODE_RUSH && c->browse_rate > 0 && c->browse_users > 0) {
        struct rush_section browse = {.name = "Floor", .rows = c->browse_capacity_rows, .seats_per_row = 100,
                                      .price_cents = 4000};
        snprintf(name, sizeof(name), "%s browse (%llu)", c->name, (unsigned long long)(t / 1000000u));
        if (rush_create_event(&run->target, admin, c, name, &browse, 1, false, 30, 100, &run->browse_event, err,
                              err_len) != 0)
            return -1;
    }
    fprintf(stderr, "rush: event %s%s ready (%.1f s)\n", run->events[0].id_text,
            run->event_count > 1 ? " and more" : "", (double)(rush_now_us() - t) / 1e6);
    return 0;
}

/* ---- workers ---- */

static pid_t start_worker(struct rush_run *run, struct rush_shared *shared, uint32_t index)
{
    const struct rush_config *c = &run->config;
    uint32_t per = c->users / c->workers, extra = c->users % c->workers;
    struct rush_worker worker = {
        .index = index,
        .run = run,
        .config = &run->config,
        .shared = shared,
        .first_user = index * per + (index < extra ? index : extra),
        .user_count = per + (index < extra ? 1u : 0u),
    };
    if (c->mode == RUSH_MODE_RUSH && c->browse_rate > 0) {
        uint32_t b = c->browse_users / c->workers;
        worker.browse_count = b < worker.user_count ? b : 0;
        worker.browse_first = worker.user_count - worker.browse_count;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    signal(SIGINT, SIG_IGN); /* the parent decides when to stop */
    _exit(rush_worker_main(&worker));
}

static uint32_t count_phase(struct rush_shared *shared, uint32_t workers, uint32_t phase)
{
    uint32_t n = 0;
    for (uint32_t w = 0; w < workers; w++)
        n += atomic_load(&rush_shared_worker(shared, w)->phase) == phase;
    return n;
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

struct monitor {
    struct rush_shared *shared;
    const struct rush_run *run;
    uint32_t workers;
    pid_t pids[RUSH_WORKERS_MAX];
    bool exited[RUSH_WORKERS_MAX];
    int status[RUSH_WORKERS_MAX];
    uint64_t ws_peak;
    uint64_t last_ok[STEP_COUNT];
    bool verbose;
    const char *token_cache;
};

static uint32_t reap(struct monitor *m)
{
    uint32_t alive = 0;
    for (uint32_t w = 0; w < m->workers; w++) {
        if (m->exited[w])
            continue;
        int status = 0;
        if (waitpid(m->pids[w], &status, WNOHANG) == m->pids[w]) {
            m->exited[w] = true;
            m->status[w] = status;
        } else {
            alive++;
        }
    }
    return alive;
}

static void progress_line(struct monitor *m, uint64_t t0)
{
    uint64_t ok[STEP_COUNT] = {0}, errors = 0, ws = 0;
    for (uint32_t w = 0; w < m->workers; w++) {
        struct rush_worker_stats *s = rush_shared_worker(m->shared, w);
        for (uint32_t k = 0; k < STEP_COUNT; k++) {
            ok[k] += s->ok[k] + s->refused[k];
            errors += s->errors[k];
        }
        ws += atomic_load(&s->ws_open);
    }
    if (ws > m->ws_peak)
        m->ws_peak = ws;
    uint64_t now = rush_now_us();
    fprintf(stderr, "rush: %+6.1fs  login %-6llu join %-6llu ws %-6llu holds/s %-7llu pay/s %-5llu browse/s %-5llu "
                    "errors %llu\n",
            t0 != 0 ? ((double)now - (double)t0) / 1e6 : 0.0,
            (unsigned long long)(ok[STEP_LOGIN] - m->last_ok[STEP_LOGIN]),
            (unsigned long long)(ok[STEP_JOIN] + ok[STEP_WS_OPEN] - m->last_ok[STEP_JOIN] - m->last_ok[STEP_WS_OPEN]),
            (unsigned long long)ws, (unsigned long long)(ok[STEP_HOLD] - m->last_ok[STEP_HOLD]),
            (unsigned long long)(ok[STEP_PAY] - m->last_ok[STEP_PAY]),
            (unsigned long long)(ok[STEP_BROWSE_LIST] + ok[STEP_BROWSE_HOLD] + ok[STEP_BROWSE_JOIN] -
                                 m->last_ok[STEP_BROWSE_LIST] - m->last_ok[STEP_BROWSE_HOLD] -
                                 m->last_ok[STEP_BROWSE_JOIN]),
            (unsigned long long)errors);
    memcpy(m->last_ok, ok, sizeof(ok));
}

/* ---- process CPU of the stack ---- */

static double process_rss_mb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL)
        return -1;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0 : -1;
}

static double tree_cpu_seconds(pid_t parent)
{
    double sum = bench_process_cpu_seconds(parent);
    if (sum < 0)
        return -1;
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    while (proc != NULL && (entry = readdir(proc)) != NULL) {
        char path[300], buf[512];
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", entry->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        int ppid = 0;
        if (p != NULL && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == parent) {
            double child = bench_process_cpu_seconds((pid_t)atoi(entry->d_name));
            if (child > 0)
                sum += child;
        }
    }
    if (proc != NULL)
        closedir(proc);
    return sum;
}

static pid_t pid_from_file(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

static void stack_processes(const char *stack_dir, struct rush_result *result)
{
    char path[600], name[64], value[512];
    if (stack_dir == NULL)
        return;
    snprintf(path, sizeof(path), "%s/pids", stack_dir);
    FILE *f = fopen(path, "r");
    while (f != NULL && fscanf(f, "%63s %511s", name, value) == 2 && result->process_count < 63) {
        struct rush_process_cpu *p = &result->processes[result->process_count];
        pid_t pid = 0;
        if (strcmp(name, "postgres-dir") == 0) {
            snprintf(path, sizeof(path), "%s/data/postmaster.pid", value);
            pid = pid_from_file(path);
            snprintf(name, sizeof(name), "postgres");
            p->tree = true;
        } else if (strcmp(name, "redis-dir") == 0) {
            snprintf(path, sizeof(path), "%s/redis.pid", value);
            pid = pid_from_file(path);
            snprintf(name, sizeof(name), "redis");
        } else {
            pid = (pid_t)atol(value);
        }
        if (pid <= 0)
            continue;
        snprintf(p->name, sizeof(p->name), "%.31s", name);
        p->pid = pid;
        result->process_count++;
    }
    if (f != NULL)
        fclose(f);
}

static void sample_processes(struct rush_result *result, bool start)
{
    for (uint32_t i = 0; i < result->process_count; i++) {
        struct rush_process_cpu *p = &result->processes[i];
        double cpu = p->tree ? tree_cpu_seconds(p->pid) : bench_process_cpu_seconds(p->pid);
        double rss = process_rss_mb(p->pid);
        if (start)
            p->cpu_start = cpu, p->rss_start_mb = rss;
        else
            p->cpu_end = cpu, p->rss_end_mb = rss;
    }
    if (start)
        result->machine_busy_start = bench_machine_busy_seconds();
    else
        result->machine_busy_s = bench_machine_busy_seconds() - result->machine_busy_start;
}

/* ---- the run ---- */

static int wait_ready(struct monitor *m)
{
    uint64_t last = rush_now_us();
    for (;;) {
        uint32_t ready = count_phase(m->shared, m->workers, PHASE_READY);
        uint32_t failed = count_phase(m->shared, m->workers, PHASE_FAILED);
        if (failed > 0 || reap(m) < m->workers) {
            fprintf(stderr, "rush: a worker failed while signing in (%s)\n",
                    rush_shared_worker(m->shared, 0)->first_error);
            return -1;
        }
        if (ready == m->workers)
            return 0;
        if (interrupted)
            return -1;
        if (rush_now_us() - last > PROGRESS_EVERY_US * 5u) {
            last = rush_now_us();
            uint64_t logins = 0;
            for (uint32_t w = 0; w < m->workers; w++)
                logins += rush_shared_worker(m->shared, w)->ok[STEP_LOGIN];
            fprintf(stderr, "rush: signing in: %llu of %u users\n", (unsigned long long)logins,
                    m->run->config.users);
        }
        usleep(20000);
    }
}

static int run_workers(struct rush_run *run, struct rush_shared *shared, struct rush_result *result,
                       struct monitor *m)
{
    const struct rush_config *c = &run->config;
    m->shared = shared;
    m->run = run;
    m->workers = c->workers;
    for (uint32_t w = 0; w < c->workers; w++)
        m->pids[w] = start_worker(run, shared, w);
    uint64_t t_login = rush_now_us();
    if (wait_ready(m) != 0) {
        rush_shared_request_stop(shared);
        return -1;
    }
    result->login_s = (double)(rush_now_us() - t_login) / 1e6;
    if (m->token_cache != NULL && rush_tokens_save(shared, m->token_cache) != 0)
        fprintf(stderr, "rush: cannot write the token cache %s\n", m->token_cache);
    uint64_t t0 = rush_now_us() + 1000000u;
    rush_shared_set_t0(shared, t0);
    uint64_t window_start = t0 + (c->mode == RUSH_MODE_HOLDS ? (uint64_t)c->warmup_s * 1000000u : 0);
    uint64_t window_end = c->mode == RUSH_MODE_HOLDS ? window_start + (uint64_t)c->duration_s * 1000000u : 0;
    uint64_t give_up = t0 + ((uint64_t)c->warmup_s + c->duration_s + c->drain_s + 60u) * 1000000u;
    bool started = false, ended = false;
    uint64_t next_progress = rush_now_us() + PROGRESS_EVERY_US;
    while (reap(m) > 0) {
        uint64_t now = rush_now_us();
        if (!started && now >= window_start) {
            sample_processes(result, true);
            started = true;
        }
        if (started && !ended && window_end != 0 && now >= window_end) {
            sample_processes(result, false);
            ended = true;
        }
        if (!ended && window_end == 0 && count_phase(shared, m->workers, PHASE_DRAINING) +
                                                 count_phase(shared, m->workers, PHASE_DONE) ==
                                             m->workers) {
            sample_processes(result, false);
            ended = true;
        }
        if (now >= next_progress) {
            progress_line(m, t0);
            next_progress += PROGRESS_EVERY_US;
        }
        if (interrupted || now > give_up)
            rush_shared_request_stop(shared);
        if (now > give_up + 20000000u)
            for (uint32_t w = 0; w < m->workers; w++)
                if (!m->exited[w])
                    kill(m->pids[w], SIGKILL);
        usleep(20000);
    }
    if (!ended)
        sample_processes(result, false);
    result->t0_second = rush_shared_second(shared, t0);
    result->t0_us = t0;
    result->run_end_second = rush_shared_second(shared, rush_now_us()) + 1u;
    result->window_from_s = rush_shared_second(shared, window_start);
    result->window_to_s = window_end != 0 ? rush_shared_second(shared, window_end) : result->run_end_second;
    result->ws_peak = m->ws_peak;
    int rc = 0;
    for (uint32_t w = 0; w < m->workers; w++)
        if (!WIFEXITED(m->status[w]) || WEXITSTATUS(m->status[w]) != 0) {
            fprintf(stderr, "rush: worker %u ended badly (status %d)\n", w, m->status[w]);
            rc = -1;
        }
    return rc;
}

static void finish_result(const struct options *o, struct rush_run *run, struct rush_shared *shared,
                          struct rush_result *result)
{
    const struct rush_config *c = &run->config;
    rush_totals_merge(shared, result->run_end_second + 1u, &result->totals);
    result->queue_waits_ms = hdr_init(malloc(hdr_bytes(RUSH_PRECISION_BITS)), RUSH_PRECISION_BITS);
    if (c->mode != RUSH_MODE_HOLDS)
        rush_fairness_compute(rush_shared_users(shared), c->users, &result->fairness, result->queue_waits_ms);
    uint32_t from = result->window_from_s, to = result->window_to_s;
    if (c->mode != RUSH_MODE_HOLDS) {
        from = result->t0_second;
        to = result->run_end_second;
    }
    result->window_s = to > from ? (double)(to - from) : 1.0;
    const struct hdr_histogram *holds = result->totals.hdr[STEP_HOLD];
    result->holds_per_s = rush_totals_rate(&result->totals, STEP_HOLD, from, to, false);
    result->holds_ok_per_s = rush_totals_rate(&result->totals, STEP_HOLD, from, to, true);
    result->hold_p50_ms = (double)hdr_quantile(holds, 0.50) / 1e3;
    result->hold_p99_ms = (double)hdr_quantile(holds, 0.99) / 1e3;
    result->hold_p999_ms = (double)hdr_quantile(holds, 0.999) / 1e3;
    double requests = 0;
    for (uint32_t s = 0; s < STEP_COUNT; s++)
        if (s != STEP_QUEUE_WAIT && s != STEP_WS_OPEN && s != STEP_LOGIN)
            requests += rush_totals_rate(&result->totals, (enum rush_step)s, from, to, false);
    result->requests_per_s = requests;
    result->loadgen_cpu_s = result->totals.worker_cpu_seconds;
    const struct rush_user_record *records = rush_shared_users(shared);
    result->records = records;
    result->record_count = c->users;
    for (uint32_t i = 0; i < c->users; i++) {
        if (records[i].outcome < RUSH_OUTCOMES)
            result->outcomes[records[i].outcome]++;
        if (records[i].outcome == USER_PAID)
            result->seats_bought += records[i].seat_count;
    }
    if (c->mode == RUSH_MODE_HOLDS && rush_hold_audit_run(getpid(), c->workers, &result->hold_audit) != 0)
        fprintf(stderr, "rush: the holds audit did not run: %s\n", result->hold_audit.why_not);
    bool audit = o->audit && !o->baseline && c->mode == RUSH_MODE_RUSH && o->shards != NULL;
    if (audit) {
        fprintf(stderr, "rush: audit of event %s (waiting up to 30 s for sagas to settle)\n", run->events[0].id_text);
        if (rush_audit_run(o->pg_url, o->shards, run->events[0].event_id, c->capacity, rush_shared_users(shared),
                           c->users, 30, &result->audit) != 0)
            fprintf(stderr, "rush: the audit did not run: %s\n", result->audit.why_not);
    } else {
        snprintf(result->audit.why_not, sizeof(result->audit.why_not), "%s",
                 o->baseline ? "baseline target" : c->mode == RUSH_MODE_HOLDS ? "no sales: the holds audit instead"
                 : c->mode != RUSH_MODE_RUSH ? "no sales in this mode"
                 : o->shards == NULL ? "no --shards" : "--no-audit");
    }
}

/* A cached token is only good if its subject is the user's id here: checks a few. */
static bool tokens_match(const struct options *o, struct rush_shared *shared, uint32_t users)
{
    uint32_t probes[3] = {0, users / 2, users - 1};
    for (uint32_t i = 0; i < 3; i++) {
        const char *token = rush_shared_token(shared, probes[i]);
        if (token[0] == '\0')
            continue;
        int64_t id = rush_user_id(o->pg_url, o->prefix, probes[i] + 1);
        if (id < 0 || (uint64_t)id != rush_token_subject(token))
            return false;
    }
    return true;
}

int rush_compare_main(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "compare") == 0)
        return rush_compare_main(argc - 1, argv + 1);
    struct options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    static struct rush_run run;
    char err[512];
    if (rush_config_load(&run.config, o.scenario, o.quick, o.overrides, o.override_count, err, sizeof(err)) != 0) {
        fprintf(stderr, "rush: %s\n", err);
        return 2;
    }
    run.verbose = o.verbose;
    rlim_t fds = raise_fd_limit();
    rush_config_print(stderr, &run.config);
    fprintf(stderr, "rush: target %s%s; descriptor limit %llu per process; %u workers\n", o.target,
            o.baseline ? " (baseline)" : "", (unsigned long long)fds, run.config.workers);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_sigint);
    if (prepare(&o, &run, err, sizeof(err)) != 0) {
        fprintf(stderr, "rush: set-up failed: %s\n", err);
        return 1;
    }
    static struct rush_result result;
    result.config = run.config;
    result.run = &run;
    snprintf(result.label, sizeof(result.label), "%s", o.label != NULL ? o.label : run.config.name);
    char load[64];
    bench_load_average(load, sizeof(load));
    snprintf(result.machine.load_start, sizeof(result.machine.load_start), "%s", load);
    stack_processes(o.stack_dir, &result);
    struct rush_shared *shared = rush_shared_create(run.config.workers, run.config.users);
    char cache[1024] = "";
    if (o.token_cache != NULL)
        snprintf(cache, sizeof(cache), "%s", o.token_cache);
    else if (o.stack_dir != NULL)
        snprintf(cache, sizeof(cache), "%s/tokens-%s.txt", o.stack_dir, o.prefix);
    uint32_t cached = rush_tokens_load(shared, cache[0] ? cache : NULL, 3600);
    if (cached > 0 && !tokens_match(&o, shared, run.config.users)) {
        fprintf(stderr, "rush: the token cache %s does not match this database's users: ignored\n", cache);
        for (uint32_t i = 0; i < run.config.users; i++)
            rush_shared_token(shared, i)[0] = '\0';
        cached = 0;
    }
    if (cached > 0)
        fprintf(stderr, "rush: %u access tokens from %s (those users skip the sign-in)\n", cached, cache);
    static struct monitor monitor;
    monitor.verbose = o.verbose;
    monitor.token_cache = cache[0] ? cache : NULL;
    int run_rc = run_workers(&run, shared, &result, &monitor);
    bench_machine_basics(&result.machine, "/var/tmp");
    snprintf(result.machine.wal_backend, sizeof(result.machine.wal_backend), "-");
    finish_result(&o, &run, shared, &result);
    rush_report_print(stdout, &result);
    if (o.out_dir != NULL && rush_report_write(&result, o.out_dir, o.plots) != 0)
        fprintf(stderr, "rush: the report could not be written to %s\n", o.out_dir);
    if (o.json != NULL && rush_report_json(&result, o.json) != 0)
        fprintf(stderr, "rush: cannot write %s\n", o.json);
    rush_totals_free(&result.totals);
    free(result.queue_waits_ms);
    rush_shared_destroy(shared);
    return run_rc != 0 ? 1 : 0;
}
