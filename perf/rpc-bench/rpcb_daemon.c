/* rpcb_daemon.c — the seatcored under test: find the binary, start it on free
 * loopback ports (durable in a temporary dir under --dir, or --memory), wait
 * until it answers, create the events, read its /metrics, stop it.
 *
 * The daemon is a child of the bench, killed if the bench dies; it is stopped
 * with SIGTERM so it flushes its WAL and exits like in production. Its log
 * stays in the temporary dir while it runs and is quoted when it fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rpc_client.h"
#include "rpcb.h"
#include "tk_assert.h"
#include "tiketi/v1/seatcore.pb-c.h"

#define START_ATTEMPTS 3u
#define START_TIMEOUT_NS (20ull * 1000000000ull)
#define STOP_TIMEOUT_NS (15ull * 1000000000ull)

bool rpcb_seatcored_binary(const struct rpcb_options *options, char *path, size_t len, char *why, size_t why_len)
{
    if (options->seatcored != NULL) {
        snprintf(why, why_len, "--seatcored");
        return bench_find_binary(options->seatcored, path, len);
    }
    /* This build tree's daemon first (Release when built by perf/run-all), then
     * the default build's. */
    snprintf(path, len, "%s/seatcored", TK_PERF_BUILD_BIN);
    if (access(path, X_OK) == 0) {
        snprintf(why, why_len, "this build tree");
        return true;
    }
    snprintf(path, len, "%s/build/bin/seatcored", TK_PERF_SOURCE_ROOT);
    snprintf(why, why_len, "%s/seatcored not built; using the default build's", TK_PERF_BUILD_BIN);
    return access(path, X_OK) == 0;
}

/* The last lines of the daemon's log, for error messages. */
static void log_tail(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char buf[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    const char *last = strrchr(buf, '\n');
    const char *from_line = last != NULL ? last + 1 : buf;
    size_t keep = strlen(from_line) < len ? strlen(from_line) : len - 1;
    memcpy(out, from_line, keep);
    out[keep] = '\0';
}

static bool log_contains(const char *path, const char *needle, char *line_out, size_t line_len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, needle) != NULL) {
            found = true;
            if (line_out != NULL)
                snprintf(line_out, line_len, "%s", line);
        }
    }
    fclose(f);
    return found;
}

/* Serving once a call gets an answer from the service (NOT_FOUND for event 0). */
static bool daemon_answers(struct rpc_channel *channel)
{
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    request.event_id = 0;
    ProtobufCMessage *reply = NULL;
    struct rpc_error error;
    struct rpc_call_options call = {.timeout_ms = 300};
    grpc_status_code code = rpc_unary(channel, "/tiketi.v1.SeatCore/GetEvent", &request.base,
                                      &tiketi__v1__event_info__descriptor, NULL, &reply, &call, &error);
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
    return code != GRPC_STATUS_UNAVAILABLE && code != GRPC_STATUS_DEADLINE_EXCEEDED;
}

static void wal_backend_from_log(struct rpcb_daemon *d)
{
    char line[2048];
    snprintf(d->wal_backend, sizeof(d->wal_backend), "%s", d->memory ? "none (--memory)" : "unknown");
    if (d->memory || !log_contains(d->log_path, "wal io backend: ", line, sizeof(line)))
        return;
    const char *at = strstr(line, "wal io backend: ") + strlen("wal io backend: ");
    size_t n = strcspn(at, "\"");
    snprintf(d->wal_backend, sizeof(d->wal_backend), "%.*s%s", (int)n, at,
             strstr(line, "refused") != NULL ? " (io_uring refused)" : "");
}

/* "exited with status 1", "was killed by signal 9 (Killed)". */
static void describe_exit(int status, char *out, size_t len)
{
    if (WIFEXITED(status))
        snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, len, "ended with wait status 0x%x", (unsigned)status);
}

int rpcb_daemon_start(struct rpcb_daemon *d, const struct rpcb_options *options, bool memory, char *err,
                      size_t err_len)
{
    memset(d, 0, sizeof(*d));
    d->memory = memory;
    char why[256];
    if (!rpcb_seatcored_binary(options, d->binary, sizeof(d->binary), why, sizeof(why))) {
        snprintf(err, err_len,
                 "seatcored not found or not executable: %.300s (%.200s); build it (cmake --build <tree> --target "
                 "seatcored) or pass --seatcored PATH",
                 d->binary, why);
        return -1;
    }
    if (bench_tempdir(options->data_parent, "rpc-bench-seatcored", d->dir, sizeof(d->dir)) != 0) {
        snprintf(err, err_len, "cannot create a temporary dir under %s", options->data_parent);
        return -1;
    }
    snprintf(d->data_dir, sizeof(d->data_dir), "%s/data", d->dir);
    snprintf(d->log_path, sizeof(d->log_path), "%s/seatcored.log", d->dir);
    char how[96] = "did not answer";
    uint32_t attempt = 0;
    for (; attempt < START_ATTEMPTS; attempt++) {
        /* Another process may take a probed port before the daemon binds it: retry. */
        d->port = bench_free_port();
        do
            d->metrics_port = bench_free_port();
        while (d->metrics_port == d->port);
        if (d->port <= 0 || d->metrics_port <= 0)
            continue;
        char listen[64], metrics[64];
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->port);
        snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", d->metrics_port);
        snprintf(d->target, sizeof(d->target), "127.0.0.1:%d", d->port);
        char *argv[16 + RPCB_SERVER_ARGS_MAX];
        int argc = 0;
        argv[argc++] = d->binary;
        argv[argc++] = "--listen";
        argv[argc++] = listen;
        argv[argc++] = "--metrics-listen";
        argv[argc++] = metrics;
        if (memory) {
            argv[argc++] = "--memory";
        } else {
            argv[argc++] = "--data-dir";
            argv[argc++] = d->data_dir;
        }
        argv[argc++] = "--grace-ms";
        argv[argc++] = "3000";
        for (uint32_t i = 0; i < options->server_arg_count; i++)
            argv[argc++] = (char *)options->server_args[i];
        argv[argc] = NULL;
        TK_ASSERT(argc < (int)(sizeof(argv) / sizeof(argv[0])));
        d->pid = bench_spawn(argv, d->log_path);
        if (d->pid < 0)
            continue;
        d->channel = rpc_channel_open(d->target, NULL);
        uint64_t deadline = bench_now_ns() + START_TIMEOUT_NS;
        bool exited = false;
        snprintf(how, sizeof(how), "did not answer within %llu s", START_TIMEOUT_NS / 1000000000ull);
        while (bench_now_ns() < deadline) {
            int status;
            if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
                exited = true;
                d->pid = 0;
                describe_exit(status, how, sizeof(how));
                break;
            }
            if (daemon_answers(d->channel)) {
                wal_backend_from_log(d);
                return 0;
            }
            bench_sleep_ns(20000000);
        }
        rpc_channel_close(d->channel);
        d->channel = NULL;
        if (d->pid > 0) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
            d->pid = 0;
        }
        bool port_taken = log_contains(d->log_path, "cannot listen", NULL, 0) ||
                          log_contains(d->log_path, "ddress already in use", NULL, 0);
        if (!exited || !port_taken)
            break; /* it failed for another reason: retrying will not help */
    }
    char tail[512];
    log_tail(d->log_path, tail, sizeof(tail));
    snprintf(err, err_len, "seatcored (%.300s) %s%s; its last log line: %.400s", d->binary, how,
             attempt == START_ATTEMPTS ? " (3 attempts, each on other free ports)" : "",
             tail[0] != '\0' ? tail : "(none)");
    bench_rmtree(d->dir); /* its log's last line is in err */
    d->dir[0] = '\0';
    return -1;
}

bool rpcb_daemon_alive(struct rpcb_daemon *d)
{
    if (d->died)
        return false;
    TK_ASSERT(d->pid > 0); /* only a started daemon that was not stopped is asked about */
    int status = 0;
    pid_t r = waitpid(d->pid, &status, WNOHANG);
    if (r == 0)
        return true;
    char how[96], tail[512];
    if (r == d->pid)
        describe_exit(status, how, sizeof(how));
    else
        snprintf(how, sizeof(how), "is gone (waitpid: %s)", strerror(errno));
    log_tail(d->log_path, tail, sizeof(tail));
    snprintf(d->death, sizeof(d->death), "seatcored (pid %d) %s; its last log line: %.400s", (int)d->pid, how,
             tail[0] != '\0' ? tail : "(none)");
    d->died = true;
    d->pid = 0;
    return false;
}

void rpcb_daemon_stop(struct rpcb_daemon *d)
{
    if (d->channel != NULL) {
        rpc_channel_close(d->channel);
        d->channel = NULL;
    }
    if (d->pid > 0 && !rpcb_daemon_alive(d)) /* died after its last row: say so, once */
        fprintf(stderr, "rpc-bench: before the bench stopped it, %s\n", d->death);
    if (d->pid > 0) {
        int status = bench_stop_child(d->pid, STOP_TIMEOUT_NS);
        if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char how[96], tail[512];
            if (status < 0)
                snprintf(how, sizeof(how), "did not exit within %llu s of SIGTERM and was killed",
                         STOP_TIMEOUT_NS / 1000000000ull);
            else
                describe_exit(status, how, sizeof(how));
            log_tail(d->log_path, tail, sizeof(tail));
            fprintf(stderr, "rpc-bench: seatcored did not stop cleanly: on SIGTERM it %s; its last log line: %s\n",
                    how, tail);
        }
        d->pid = 0;
    }
    if (d->dir[0] != '\0')
        bench_rmtree(d->dir);
    d->dir[0] = '\0';
}

int rpcb_daemon_create_events(struct rpcb_daemon *d, const struct bench_layout *layout, char *err, size_t err_len)
{
    for (uint32_t i = 0; i < layout->event_count; i++) {
        Tiketi__V1__Section section = TIKETI__V1__SECTION__INIT;
        section.name = "floor";
        section.rows = bench_layout_rows(layout, layout->first_event_id + i);
        section.seats_per_row = layout->seats_per_row;
        section.price_cents = 4500;
        Tiketi__V1__Section *sections[] = {&section};
        /* Engine defaults for the rest (5-minute holds, 10 seats per user, holds_max
         * half the capacity): what a production event would be created with. */
        Tiketi__V1__CreateEventRequest request = TIKETI__V1__CREATE_EVENT_REQUEST__INIT;
        request.event_id = layout->first_event_id + i;
        request.n_sections = 1;
        request.sections = sections;
        ProtobufCMessage *reply = NULL;
        struct rpc_error error;
        struct rpc_call_options call = {.timeout_ms = 10000};
        grpc_status_code code = rpc_unary(d->channel, "/tiketi.v1.SeatCore/CreateEvent", &request.base,
                                          &tiketi__v1__event_info__descriptor, NULL, &reply, &call, &error);
        if (reply != NULL)
            protobuf_c_message_free_unpacked(reply, NULL);
        if (code != GRPC_STATUS_OK) {
            snprintf(err, err_len, "CreateEvent(%llu): %s: %s", (unsigned long long)request.event_id,
                     rpc_code_name(code), error.message);
            return -1;
        }
    }
    return 0;
}

/* ---- /metrics ---- */

static double metric_value(const char *text, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    }
    return -1;
}

/* The buckets of the histogram whose bucket lines start with prefix. */
static void hist_parse(const char *text, const char *prefix, struct rpcb_hist *out)
{
    out->count = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, prefix, len) != 0 || out->count == RPCB_HIST_BUCKETS)
            continue;
        const char *le = strstr(p, "le=\"");
        const char *close = le != NULL ? strstr(le, "\"} ") : NULL;
        if (le == NULL || close == NULL)
            continue;
        out->le[out->count] = strncmp(le + 4, "+Inf", 4) == 0 ? 1e30 : strtod(le + 4, NULL);
        out->cumulative[out->count] = strtod(close + 3, NULL);
        out->count++;
    }
}

double rpcb_hist_quantile(const struct rpcb_hist *a, const struct rpcb_hist *b, double q)
{
    if (a->count != b->count || b->count == 0)
        return -1;
    double total = b->cumulative[b->count - 1] - a->cumulative[a->count - 1];
    if (total <= 0)
        return -1;
    double rank = q * total, below = 0, lower = 0;
    for (uint32_t i = 0; i < b->count; i++) {
        double upto = b->cumulative[i] - a->cumulative[i];
        if (upto >= rank) {
            if (b->le[i] >= 1e30)
                return lower * 1e9; /* past the last finite bucket: its bound */
            double in_bucket = upto - below;
            double share = in_bucket > 0 ? (rank - below) / in_bucket : 1;
            return (lower + (b->le[i] - lower) * share) * 1e9;
        }
        below = upto;
        lower = b->le[i];
    }
    return -1;
}

bool rpcb_daemon_figures(const struct rpcb_daemon *d, struct rpcb_server_figures *out)
{
    memset(out, 0, sizeof(*out));
    out->wal_records = out->wal_batches = out->snapshots = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->metrics_port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static const char request[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        write(fd, request, sizeof(request) - 1) != (ssize_t)(sizeof(request) - 1)) {
        close(fd);
        return false;
    }
    size_t cap = 1 << 16, used = 0;
    char *body = malloc(cap);
    for (;;) {
        if (body == NULL)
            break;
        if (used + 1 >= cap) {
            char *bigger = realloc(body, cap * 2);
            if (bigger == NULL)
                break;
            body = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, body + used, cap - used - 1);
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    if (body == NULL)
        return false;
    body[used] = '\0';
    out->wal_records = metric_value(body, "tiketi_wal_records_total");
    out->wal_batches = metric_value(body, "tiketi_wal_batches_total");
    out->snapshots = metric_value(body, "tiketi_snapshots_total");
    hist_parse(body, "tiketi_wal_fsync_seconds_bucket{", &out->fsync);
    hist_parse(body, "tiketi_rpc_latency_seconds_bucket{service=\"tiketi.v1.SeatCore\",method=\"Batch\",side=\"server\"",
               &out->batch_calls);
    hist_parse(body, "tiketi_rpc_latency_seconds_bucket{service=\"tiketi.v1.SeatCore\",method=\"Hold\",side=\"server\"",
               &out->hold_calls);
    free(body);
    return out->wal_records >= 0;
}
