/* ws_main.c — edge-bench-ws: opens N waiting-room WebSockets on an edge, keeps them
 * open, and measures (1) the edge's memory per connection, the growth of its RSS
 * (/proc/PID/status VmRSS) from before the first socket to the end of the window,
 * divided by the sockets open; and (2) whether every client got its position every
 * second: each client counts its position messages in each whole second of a
 * window that starts after every socket is open.
 *
 *   edge-bench-ws --url http://127.0.0.1:8080 --event 12 --tokens FILE --connections 19000
 *                 [--edge-pid PID[,PID...]] [--window-s 10] [--settle-s 3] [--open-per-s 2000]
 *                 [--workers W] [--sources K] [--pending-max P]
 *
 * It prints a human summary, then "result KEY VALUE" lines that perf/edge-bench/run
 * reads. Exit status: 0 when it measured (whatever the figures), 2 on bad usage,
 * 1 when it could not run (no descriptors, a worker died). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tk_assert.h"
#include "ws_bench.h"

#define EDGE_PIDS_MAX 16
#define DESCRIPTORS_SPARE 64u /* epoll, pipes, stdio per worker */

struct options {
    struct ws_plan plan;
    const char *tokens_path;
    int edge_pids[EDGE_PIDS_MAX];
    int edge_pid_count;
    uint32_t window_s, settle_s;
};

static void usage(void)
{
    fputs("usage: edge-bench-ws --url http://HOST:PORT --event ID --tokens FILE --connections N\n"
          "         [--edge-pid PID[,PID...]] [--window-s 10] [--settle-s 3] [--open-per-s 2000]\n"
          "         [--workers W] [--sources K] [--pending-max 512]\n"
          "Opens N waiting-room WebSockets (tokens used round-robin, one line each), waits\n"
          "--settle-s after the last one is open, then counts positions per client per second\n"
          "for --window-s seconds and reports the edge's RSS growth per open socket.\n",
          stderr);
}

static bool parse_url(const char *url, struct ws_target *t)
{
    unsigned a, b, c, d, port;
    if (sscanf(url, "http://%u.%u.%u.%u:%u", &a, &b, &c, &d, &port) != 5 || a > 255 || b > 255 || c > 255 || d > 255 ||
        port == 0 || port > 65535)
        return false;
    t->ip_be = htonl(a << 24 | b << 16 | c << 8 | d);
    t->port = (uint16_t)port;
    snprintf(t->host, sizeof(t->host), "%u.%u.%u.%u:%u", a, b, c, d, port);
    return true;
}

static bool parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_pids(char *text, struct options *o)
{
    for (char *save = NULL, *p = strtok_r(text, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
        uint32_t pid;
        if (o->edge_pid_count == EDGE_PIDS_MAX || !parse_u32(p, 1, INT32_MAX, &pid))
            return false;
        o->edge_pids[o->edge_pid_count++] = (int)pid;
    }
    return true;
}

static bool parse_option(struct options *o, const char *name, char *value)
{
    struct ws_plan *p = &o->plan;
    if (strcmp(name, "--url") == 0)
        return parse_url(value, &p->target);
    if (strcmp(name, "--event") == 0)
        return strspn(value, "0123456789") == strlen(value) && strlen(value) > 0 &&
               (size_t)snprintf(p->target.event_id, sizeof(p->target.event_id), "%s", value) <
                   sizeof(p->target.event_id);
    if (strcmp(name, "--tokens") == 0)
        return (o->tokens_path = value) != NULL;
    if (strcmp(name, "--connections") == 0)
        return parse_u32(value, 1, WS_CONNECTIONS_MAX, &p->connections);
    if (strcmp(name, "--workers") == 0)
        return parse_u32(value, 1, WS_WORKERS_MAX, &p->workers);
    if (strcmp(name, "--sources") == 0)
        return parse_u32(value, 1, WS_SOURCES_MAX, &p->sources);
    if (strcmp(name, "--open-per-s") == 0)
        return parse_u32(value, 1, 1000000, &p->open_per_s);
    if (strcmp(name, "--pending-max") == 0)
        return parse_u32(value, 1, 65536, &p->pending_max);
    if (strcmp(name, "--window-s") == 0)
        return parse_u32(value, 1, WS_WINDOW_S_MAX, &o->window_s);
    if (strcmp(name, "--settle-s") == 0)
        return parse_u32(value, 0, 600, &o->settle_s);
    if (strcmp(name, "--edge-pid") == 0)
        return parse_pids(value, o);
    return false;
}

static bool parse_args(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->plan.open_per_s = 2000;
    o->plan.pending_max = 512;
    o->window_s = 10;
    o->settle_s = 3;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc || !parse_option(o, argv[i], argv[i + 1])) {
            fprintf(stderr, "edge-bench-ws: bad or incomplete option '%s'\n", argv[i]);
            return false;
        }
    }
    if (o->plan.target.port == 0 || o->plan.target.event_id[0] == '\0' || o->tokens_path == NULL ||
        o->plan.connections == 0) {
        fputs("edge-bench-ws: --url, --event, --tokens and --connections are required\n", stderr);
        return false;
    }
    return true;
}

static bool load_tokens(const char *path, struct ws_plan *plan)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "edge-bench-ws: %s: %s\n", path, strerror(errno));
        return false;
    }
    uint32_t cap = 1024;
    plan->tokens = malloc(cap * sizeof(char *));
    char line[WS_TOKEN_BYTES_MAX];
    while (plan->tokens != NULL && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if (plan->token_count == cap) {
            cap *= 2;
            char **grown = realloc(plan->tokens, cap * sizeof(char *));
            if (grown == NULL)
                break;
            plan->tokens = grown;
        }
        plan->tokens[plan->token_count++] = strdup(line);
    }
    fclose(f);
    if (plan->token_count == 0) {
        fprintf(stderr, "edge-bench-ws: %s holds no token\n", path);
        return false;
    }
    return true;
}

/* Workers and source addresses: each worker within its descriptor limit (the hard
 * limit here is 20,000 and cannot be raised without CAP_SYS_RESOURCE), each source
 * address well under its ~28,000 ephemeral ports towards the edge's one port. */
static bool size_plan(struct ws_plan *plan)
{
    struct rlimit rl;
    TK_ASSERT(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur <= DESCRIPTORS_SPARE) {
        fprintf(stderr, "edge-bench-ws: cannot raise RLIMIT_NOFILE: %s\n", strerror(errno));
        return false;
    }
    uint64_t per_worker = rl.rlim_cur - DESCRIPTORS_SPARE;
    uint32_t needed = (uint32_t)((plan->connections + per_worker - 1) / per_worker);
    if (plan->workers == 0)
        plan->workers = needed;
    if (plan->workers < needed || plan->workers > WS_WORKERS_MAX) {
        fprintf(stderr, "edge-bench-ws: %u connections need %u workers of %" PRIu64 " descriptors (max %u)\n",
                plan->connections, needed, per_worker, WS_WORKERS_MAX);
        return false;
    }
    if (plan->sources == 0)
        plan->sources = plan->connections / 20000u + 1u;
    if (plan->sources > WS_SOURCES_MAX)
        plan->sources = WS_SOURCES_MAX;
    return true;
}

/* Resident set of the edge processes, KiB (VmRSS). 0 when one of them is gone. */
static uint64_t edge_rss_kib(const struct options *o)
{
    uint64_t sum = 0;
    for (int i = 0; i < o->edge_pid_count; i++) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", o->edge_pids[i]);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            return 0;
        uint64_t kib = 0;
        while (fgets(line, sizeof(line), f) != NULL)
            if (sscanf(line, "VmRSS: %" SCNu64 " kB", &kib) == 1)
                break;
        fclose(f);
        if (kib == 0)
            return 0;
        sum += kib;
    }
    return sum;
}

/* Kernel TCP buffer memory of the whole machine (both ends of every socket), pages. */
static uint64_t tcp_mem_pages(void)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    if (f == NULL)
        return 0;
    char line[256];
    uint64_t pages = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *mem = strncmp(line, "TCP:", 4) == 0 ? strstr(line, " mem ") : NULL;
        if (mem != NULL)
            pages = strtoull(mem + 5, NULL, 10);
    }
    fclose(f);
    return pages;
}

/* The edge's RSS once it stops moving: jemalloc gives freed pages back over ~10 s (its
 * dirty decay), so right after the set-up's thousands of requests the RSS still falls,
 * and a baseline taken then would hide the sockets' cost. Stable: three samples a second
 * apart within 512 KiB of each other; at most 45 s. */
static uint64_t settled_rss_kib(const struct options *o)
{
    uint64_t samples[3] = {edge_rss_kib(o), 0, 0};
    for (unsigned i = 1; i < 45 && samples[0] != 0; i++) {
        sleep(1);
        samples[i % 3] = edge_rss_kib(o);
        if (i < 2)
            continue;
        uint64_t lo = samples[0], hi = samples[0];
        for (unsigned k = 1; k < 3; k++) {
            lo = samples[k] < lo ? samples[k] : lo;
            hi = samples[k] > hi ? samples[k] : hi;
        }
        if (hi - lo <= 512)
            return samples[i % 3];
    }
    return edge_rss_kib(o);
}

struct worker_process {
    pid_t pid;
    int control; /* parent -> worker */
    int report;  /* worker -> parent */
};

static bool start_workers(const struct ws_plan *plan, struct worker_process *w)
{
    for (uint32_t i = 0; i < plan->workers; i++) {
        int down[2], up[2];
        if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0)
            return false;
        pid_t pid = fork();
        if (pid < 0)
            return false;
        if (pid == 0) {
            close(down[1]);
            close(up[0]);
            _exit(ws_worker_run(plan, i, down[0], up[1]));
        }
        close(down[0]);
        close(up[1]);
        w[i] = (struct worker_process){pid, down[1], up[0]};
    }
    return true;
}

/* Reads exactly len bytes from a worker, waiting at most timeout_ms in all. */
static bool read_from(int fd, void *out, size_t len, uint32_t timeout_ms)
{
    uint32_t deadline = ws_now_ms() + timeout_ms;
    char *p = out;
    while (len > 0) {
        int left = (int)(deadline - ws_now_ms());
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return false;
        ssize_t n = read(fd, p, len);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* min/max are over the clients judged, so a worker that judged none does not count. */
static void add_result(struct ws_result *sum, const struct ws_result *r)
{
    _Static_assert(sizeof(struct ws_result) % sizeof(uint64_t) == 0, "ws_result is plain uint64_t fields");
    uint64_t min = sum->min_positions, max = sum->max_positions, judged_before = sum->open_through_window;
    const uint64_t *in = (const uint64_t *)r;
    uint64_t *out = (uint64_t *)sum;
    for (size_t i = 0; i < sizeof(*r) / sizeof(uint64_t); i++)
        out[i] += in[i];
    if (r->open_through_window > 0) {
        min = judged_before == 0 || r->min_positions < min ? r->min_positions : min;
        max = r->max_positions > max ? r->max_positions : max;
    }
    sum->min_positions = min;
    sum->max_positions = max;
}

struct memory {
    uint64_t rss_before_kib, rss_open_kib, rss_end_kib, tcp_before_pages, tcp_open_pages;
};

static void report(const struct options *o, const struct ws_result *r, const struct memory *m)
{
    const struct ws_plan *p = &o->plan;
    uint64_t judged = r->open_through_window, failed = r->attempted - r->opened;
    double per_s = judged ? (double)r->positions_in_window / (double)judged / o->window_s : 0;
    double covered = r->client_seconds ? 100.0 * r->client_seconds_with_position / r->client_seconds : 0;
    double every = judged ? 100.0 * r->every_second / judged : 0;
    int64_t delta = (int64_t)m->rss_end_kib - (int64_t)m->rss_before_kib;
    double per_conn = judged && m->rss_before_kib ? delta * 1024.0 / (double)judged : 0;
    printf("edge-bench-ws: %u connections to %s event %s, %u workers, %u source addresses, ramp %u/s\n", p->connections,
           p->target.host, p->target.event_id, p->workers, p->sources, p->open_per_s);
    printf("  opened %" PRIu64 " of %" PRIu64 " (mean upgrade %.1f ms); failed %" PRIu64 ": connect %" PRIu64
           ", timeout %" PRIu64 ", protocol %" PRIu64,
           r->opened, r->attempted, r->opened ? (double)r->open_ms_sum / r->opened : 0, failed, r->connect_failed,
           r->handshake_timeouts, r->protocol_errors);
    for (unsigned i = 0; i < WS_STATUS_CODES; i++)
        if (r->refused[i])
            printf(", HTTP %s %" PRIu64, ws_status_name(i), r->refused[i]);
    printf("\n  closed by the edge: %" PRIu64 " (1000 %" PRIu64 ", 1001 %" PRIu64 ", 1008 %" PRIu64 ", other %" PRIu64
           ")\n",
           r->closed_by_server, r->closed_codes_1000, r->closed_codes_1001, r->closed_codes_1008,
           r->closed_codes_other);
    printf("  window %u s: %" PRIu64 " clients open throughout; %.2f positions/client/s (min %" PRIu64 ", max %" PRIu64
           " in the window); %.2f%% of client-seconds had a position; %.2f%% of clients every second\n",
           o->window_s, judged, per_s, r->min_positions, r->max_positions, covered, every);
    printf("  longest gap per client: <=1.0s %" PRIu64 ", <=1.2s %" PRIu64 ", <=1.5s %" PRIu64 ", <=2s %" PRIu64
           ", <=5s %" PRIu64 ", more %" PRIu64 "; pings answered %" PRIu64 ", other messages %" PRIu64 "\n",
           r->gap_buckets[0], r->gap_buckets[1], r->gap_buckets[2], r->gap_buckets[3], r->gap_buckets[4],
           r->gap_buckets[5], r->pings_answered, r->other_messages);
    printf("  edge RSS %" PRIu64 " KiB before, %" PRIu64 " KiB all open, %" PRIu64
           " KiB at the window's end: %.0f bytes per connection; kernel TCP memory (both ends, whole machine) %+" PRId64
           " KiB\n",
           m->rss_before_kib, m->rss_open_kib, m->rss_end_kib, per_conn,
           ((int64_t)m->tcp_open_pages - (int64_t)m->tcp_before_pages) * sysconf(_SC_PAGESIZE) / 1024);
    printf("result opened %" PRIu64 "\nresult failed %" PRIu64 "\nresult judged %" PRIu64 "\n", r->opened, failed,
           judged);
    printf("result closed_by_edge %" PRIu64 "\nresult closed_1008 %" PRIu64 "\n", r->closed_by_server,
           r->closed_codes_1008);
    printf("result positions_per_client_per_s %.3f\nresult every_second_pct %.3f\nresult covered_pct %.3f\n", per_s,
           every, covered);
    printf("result rss_before_kib %" PRIu64 "\nresult rss_end_kib %" PRIu64 "\nresult bytes_per_connection %.0f\n",
           m->rss_before_kib, m->rss_end_kib, per_conn);
}

/* Waits for every worker's "opened", then settles, runs the window and samples the RSS. */
static bool run_window(const struct options *o, struct worker_process *w, struct memory *m)
{
    /* No deadline of our own: each attempt ends within WS_HANDSHAKE_TIMEOUT_MS of its start,
     * so a worker always finishes opening; only its death (EOF) stops the wait. */
    for (uint32_t i = 0; i < o->plan.workers; i++) {
        char line[8];
        if (!read_from(w[i].report, line, 7, 24u * 3600u * 1000u)) {
            fprintf(stderr, "edge-bench-ws: worker %u did not finish opening\n", i);
            return false;
        }
    }
    fprintf(stderr, "edge-bench-ws: every connection has an outcome; settling %u s\n", o->settle_s);
    sleep(o->settle_s);
    m->rss_open_kib = edge_rss_kib(o);
    m->tcp_open_pages = tcp_mem_pages();
    uint32_t start = ws_now_ms() + 100u, end = start + o->window_s * 1000u;
    char line[64];
    int len = snprintf(line, sizeof(line), "window %u %u\n", start, end);
    for (uint32_t i = 0; i < o->plan.workers; i++)
        if (write(w[i].control, line, (size_t)len) != len)
            return false;
    /* The last sample before the workers close their sockets at the window's end. */
    while ((int32_t)(end - ws_now_ms()) > 600) {
        usleep(500000);
        uint64_t rss = edge_rss_kib(o);
        if (rss != 0)
            m->rss_end_kib = rss;
    }
    return true;
}

static bool collect(const struct options *o, struct worker_process *w, struct ws_result *sum)
{
    bool ok = true;
    memset(sum, 0, sizeof(*sum));
    for (uint32_t i = 0; i < o->plan.workers; i++) {
        struct ws_result r;
        if (read_from(w[i].report, &r, sizeof(r), 30000u))
            add_result(sum, &r);
        else
            ok = false;
        int status = 0;
        waitpid(w[i].pid, &status, 0);
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    return ok;
}

int main(int argc, char **argv)
{
    struct options o;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage();
        return 0;
    }
    if (!parse_args(argc, argv, &o)) {
        usage();
        return 2;
    }
    if (!load_tokens(o.tokens_path, &o.plan) || !size_plan(&o.plan))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    struct memory m = {.rss_before_kib = settled_rss_kib(&o), .tcp_before_pages = tcp_mem_pages()};
    struct worker_process workers[WS_WORKERS_MAX];
    memset(workers, 0, sizeof(workers));
    if (!start_workers(&o.plan, workers)) {
        fprintf(stderr, "edge-bench-ws: cannot start workers: %s\n", strerror(errno));
        return 1;
    }
    struct ws_result sum;
    bool ok = run_window(&o, workers, &m);
    if (!ok)
        for (uint32_t i = 0; i < o.plan.workers; i++)
            kill(workers[i].pid, SIGTERM);
    ok = collect(&o, workers, &sum) && ok;
    if (!ok) {
        fputs("edge-bench-ws: a worker failed; no figures\n", stderr);
        return 1;
    }
    report(&o, &sum, &m);
    return 0;
}
