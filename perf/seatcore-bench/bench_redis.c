/* bench_redis.c — the baseline: seat locks the way teams build them on Redis
 * today, run on the same machine with the same picks as the engine rows.
 *
 * A hold is SET seat:<event>:<seat> <user> NX PX 300000 for each seat in
 * ascending order, all-or-nothing: when one SET NX fails, the seats already
 * taken are given back with one DEL. A release is one EVALSHA of a
 * compare-and-delete script (delete each seat only if it still holds our user
 * id), so a lock that expired and was retaken is never freed by the old owner.
 * One op = one hold or one release call, as for the engine.
 *
 * Not pipelined: each command waits for its reply (what a request handler does).
 * Pipelined: up to options->redis_pipeline commands in flight per connection,
 * across independent holds and releases; a hold sends its SETs back to back and
 * rolls back after all their replies. Each client thread has its own connection.
 *
 * The bench starts its own throwaway redis-server (free loopback port, no
 * persistence, a temporary dir, killed with us if we die) and stops it at the end. */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define REDIS_START_ATTEMPTS 3u
#define REDIS_START_TIMEOUT_NS (10ull * 1000000000ull)
#define REDIS_OPS_MAX 64u   /* ops in flight per connection */
#define REDIS_SENT_MAX 256u /* commands in flight per connection (FIFO of reply tags) */
#define REDIS_KEY_BYTES 48u

_Static_assert(REDIS_SENT_MAX >= 2u * REDIS_OPS_MAX + 64u, "room for every op's SETs and a rollback");

static const char release_script[] =
    "local n = 0 "
    "for i = 1, #KEYS do "
    "  if redis.call('GET', KEYS[i]) == ARGV[1] then n = n + redis.call('DEL', KEYS[i]) end "
    "end "
    "return n";

/* ---- the throwaway server ---- */

struct redis_server {
    pid_t pid;
    int port;
    char dir[600];
};

static bool find_binary(const char *name, char *path, size_t len)
{
    if (strchr(name, '/') != NULL) {
        snprintf(path, len, "%s", name);
        return access(path, X_OK) == 0;
    }
    const char *env = getenv("PATH");
    char paths[4096];
    snprintf(paths, sizeof(paths), "%s", env != NULL ? env : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    for (char *dir = strtok_r(paths, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        snprintf(path, len, "%s/%s", dir, name);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

static pid_t spawn_server(const char *binary, const char *dir, int port)
{
    char port_arg[16], log_path[700];
    snprintf(port_arg, sizeof(port_arg), "%d", port);
    snprintf(log_path, sizeof(log_path), "%s/redis.log", dir);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Child: die with the bench, never outlive it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log_fd >= 0) {
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        close(log_fd);
    }
    execl(binary, binary, "--port", port_arg, "--bind", "127.0.0.1", "--protected-mode", "yes", "--save", "",
          "--appendonly", "no", "--dir", dir, "--daemonize", "no", (char *)NULL);
    _exit(127);
}

static bool server_answers(int port)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool ok = false;
    if (c != NULL && c->err == 0) {
        redisReply *reply = redisCommand(c, "PING");
        ok = reply != NULL && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
        if (reply != NULL)
            freeReplyObject(reply);
    }
    if (c != NULL)
        redisFree(c);
    return ok;
}

static int redis_start(struct redis_server *s, const struct bench_options *options, char *err, size_t err_len)
{
    char binary[1024];
    memset(s, 0, sizeof(*s));
    if (!find_binary(options->redis_server, binary, sizeof(binary))) {
        snprintf(err, err_len, "redis-server not found (%s); install redis-server for the baseline",
                 options->redis_server);
        return -1;
    }
    if (bench_tempdir(options->data_parent, "seatcore-bench-redis", s->dir, sizeof(s->dir)) != 0) {
        snprintf(err, err_len, "cannot create a temporary dir under %s", options->data_parent);
        return -1;
    }
    for (uint32_t attempt = 0; attempt < REDIS_START_ATTEMPTS; attempt++) {
        /* Another process may take the probed port before redis binds it: retry. */
        s->port = free_port();
        s->pid = s->port > 0 ? spawn_server(binary, s->dir, s->port) : -1;
        if (s->pid < 0)
            continue;
        uint64_t deadline = bench_now_ns() + REDIS_START_TIMEOUT_NS;
        while (bench_now_ns() < deadline) {
            if (server_answers(s->port))
                return 0;
            int status;
            if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
                s->pid = 0;
                break;
            }
            bench_sleep_ns(20000000);
        }
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
        }
    }
    snprintf(err, err_len, "redis-server did not start (see %.600s/redis.log)", s->dir);
    return -1;
}

static void redis_stop(struct redis_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        uint64_t deadline = bench_now_ns() + 5000000000ull;
        while (waitpid(s->pid, NULL, WNOHANG) == 0) {
            if (bench_now_ns() > deadline) {
                kill(s->pid, SIGKILL);
                waitpid(s->pid, NULL, 0);
                break;
            }
            bench_sleep_ns(10000000);
        }
        s->pid = 0;
    }
    if (s->dir[0] != '\0')
        bench_rmtree(s->dir);
}

/* ---- the client ---- */

enum redis_op_kind { OP_FREE = 0, OP_HOLD, OP_RELEASE };
enum redis_cmd { CMD_SET, CMD_DEL, CMD_EVAL };

struct redis_op {
    enum redis_op_kind kind;
    uint64_t started_ns;
    struct live_hold hold;
    uint32_t sets_sent;
    uint32_t set_replies;
    uint32_t taken_mask; /* seats whose SET NX succeeded */
    bool failed;         /* a SET NX found the seat taken */
};

struct redis_sent {
    uint16_t op;
    uint8_t cmd;
    uint8_t seat;
};

struct redis_worker {
    struct redis_run *run;
    redisContext *c;
    struct bench_rng rng;
    struct live_ring live;
    struct tk_histogram *latency;
    uint64_t ops, holds, conflicts, errors;
    char first_error[128];
    struct redis_op ops_table[REDIS_OPS_MAX];
    uint32_t active_ops;
    struct redis_sent sent[REDIS_SENT_MAX];
    uint32_t sent_head, sent_count;
};

struct redis_run {
    int port;
    pid_t server_pid;
    char sha[64];
    uint32_t depth; /* commands in flight per connection: 1 = not pipelined */
    uint32_t threads;
    uint32_t live_per_thread;
    const struct bench_layout *layout;
    _Atomic bool stop;
    struct redis_worker workers[2];
};

static void worker_error(struct redis_worker *w, const char *what)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof(w->first_error), "%s", what);
}

static void seat_key(char *key, const struct live_hold *hold, uint32_t i)
{
    snprintf(key, REDIS_KEY_BYTES, "seat:%llu:%u", (unsigned long long)hold->event_id, hold->seats[i]);
}

static bool send_command(struct redis_worker *w, uint32_t op, enum redis_cmd cmd, uint32_t seat, int argc,
                         const char **argv)
{
    if (w->sent_count == REDIS_SENT_MAX || redisAppendCommandArgv(w->c, argc, argv, NULL) != REDIS_OK) {
        worker_error(w, "cannot queue a command");
        return false;
    }
    w->sent[(w->sent_head + w->sent_count) % REDIS_SENT_MAX] =
        (struct redis_sent){.op = (uint16_t)op, .cmd = (uint8_t)cmd, .seat = (uint8_t)seat};
    w->sent_count++;
    return true;
}

static bool send_set(struct redis_worker *w, uint32_t index)
{
    struct redis_op *op = &w->ops_table[index];
    char key[REDIS_KEY_BYTES], user[24];
    seat_key(key, &op->hold, op->sets_sent);
    snprintf(user, sizeof(user), "%llu", (unsigned long long)op->hold.user_id);
    const char *argv[] = {"SET", key, user, "NX", "PX", "300000"};
    if (!send_command(w, index, CMD_SET, op->sets_sent, 6, argv))
        return false;
    op->sets_sent++;
    return true;
}

/* DEL (rollback of a failed hold) or EVALSHA (release) over some of the hold's seats. */
static bool send_multi(struct redis_worker *w, uint32_t index, enum redis_cmd cmd, uint32_t mask)
{
    struct redis_op *op = &w->ops_table[index];
    char keys[TK_SEATS_PER_HOLD_MAX][REDIS_KEY_BYTES], user[24], numkeys[8];
    const char *argv[TK_SEATS_PER_HOLD_MAX + 4];
    int argc = 0;
    argv[argc++] = cmd == CMD_DEL ? "DEL" : "EVALSHA";
    if (cmd == CMD_EVAL)
        argv[argc++] = w->run->sha;
    int numkeys_at = argc;
    if (cmd == CMD_EVAL)
        argc++;
    uint32_t count = 0;
    for (uint32_t i = 0; i < op->hold.seat_count; i++) {
        if ((mask >> i & 1u) == 0)
            continue;
        seat_key(keys[count], &op->hold, i);
        argv[argc++] = keys[count++];
    }
    if (cmd == CMD_EVAL) {
        snprintf(numkeys, sizeof(numkeys), "%u", count);
        argv[numkeys_at] = numkeys;
        snprintf(user, sizeof(user), "%llu", (unsigned long long)op->hold.user_id);
        argv[argc++] = user;
    }
    return send_command(w, index, cmd, 0, argc, argv);
}

static void op_complete(struct redis_worker *w, uint32_t index, bool held)
{
    struct redis_op *op = &w->ops_table[index];
    tk_histogram_record(w->latency, bench_now_ns() - op->started_ns);
    w->ops++;
    if (op->kind == OP_HOLD) {
        w->holds++;
        if (held) {
            struct live_hold *live = live_ring_push(&w->live);
            if (live != NULL)
                *live = op->hold;
        } else {
            w->conflicts++;
        }
    }
    op->kind = OP_FREE;
    w->active_ops--;
}

static uint32_t in_flight(const struct redis_worker *w)
{
    return w->sent_count;
}

/* Starts one op in a free slot: release the oldest live hold when we have
 * enough, else hold a new pick. */
static bool op_start(struct redis_worker *w)
{
    uint32_t index = 0;
    while (index < REDIS_OPS_MAX && w->ops_table[index].kind != OP_FREE)
        index++;
    if (index == REDIS_OPS_MAX)
        return false;
    struct redis_op *op = &w->ops_table[index];
    memset(op, 0, sizeof(*op));
    op->started_ns = bench_now_ns();
    w->active_ops++;
    if (w->live.count >= w->run->live_per_thread && live_ring_pop(&w->live, &op->hold)) {
        op->kind = OP_RELEASE;
        return send_multi(w, index, CMD_EVAL, (1u << op->hold.seat_count) - 1u);
    }
    struct bench_pick pick;
    workload_pick(w->run->layout, &w->rng, false, &pick);
    op->kind = OP_HOLD;
    op->hold = (struct live_hold){.event_id = pick.event_id, .user_id = pick.user_id, .seat_count = pick.count};
    memcpy(op->hold.seats, pick.seats, pick.count * sizeof(pick.seats[0]));
    return send_set(w, index);
}

/* Sends what the pipeline depth allows: the next SETs of holds under way (not
 * after one failed: the hold is lost anyway), then new ops unless stopping. */
static bool issue(struct redis_worker *w, bool stopping)
{
    for (uint32_t i = 0; i < REDIS_OPS_MAX && in_flight(w) < w->run->depth; i++) {
        struct redis_op *op = &w->ops_table[i];
        while (op->kind == OP_HOLD && !op->failed && op->sets_sent < op->hold.seat_count &&
               in_flight(w) < w->run->depth)
            if (!send_set(w, i))
                return false;
    }
    while (!stopping && in_flight(w) < w->run->depth && w->active_ops < REDIS_OPS_MAX)
        if (!op_start(w))
            return false;
    return true;
}

static bool handle_reply(struct redis_worker *w, redisReply *reply)
{
    struct redis_sent tag = w->sent[w->sent_head];
    w->sent_head = (w->sent_head + 1) % REDIS_SENT_MAX;
    w->sent_count--;
    struct redis_op *op = &w->ops_table[tag.op];
    if (reply->type == REDIS_REPLY_ERROR)
        worker_error(w, reply->str);
    if (tag.cmd == CMD_SET) {
        op->set_replies++;
        if (reply->type == REDIS_REPLY_STATUS)
            op->taken_mask |= 1u << tag.seat;
        else
            op->failed = true;
        bool all_sent = op->failed || op->sets_sent == op->hold.seat_count;
        if (!all_sent || op->set_replies < op->sets_sent)
            return true;
        if (!op->failed) {
            op_complete(w, tag.op, true);
        } else if (op->taken_mask != 0) {
            uint32_t mask = op->taken_mask;
            op->taken_mask = 0;
            return send_multi(w, tag.op, CMD_DEL, mask); /* all-or-nothing: give back */
        } else {
            op_complete(w, tag.op, false);
        }
    } else if (tag.cmd == CMD_DEL) {
        op_complete(w, tag.op, false);
    } else {
        if (reply->type != REDIS_REPLY_INTEGER || reply->integer != (long long)op->hold.seat_count)
            worker_error(w, "release freed fewer seats than the hold had");
        op_complete(w, tag.op, false);
    }
    return true;
}

static void *redis_worker_main(void *arg)
{
    struct redis_worker *w = arg;
    bench_thread_ready();
    for (;;) {
        bool stopping = atomic_load_explicit(&w->run->stop, memory_order_acquire);
        if (!issue(w, stopping))
            break;
        if (w->sent_count == 0)
            break; /* stopping and nothing left in flight */
        redisReply *reply = NULL;
        if (redisGetReply(w->c, (void **)&reply) != REDIS_OK || reply == NULL) {
            worker_error(w, w->c->errstr[0] != '\0' ? w->c->errstr : "connection lost");
            break;
        }
        bool ok = handle_reply(w, reply);
        freeReplyObject(reply);
        if (!ok)
            break;
    }
    return NULL;
}

/* ---- rows ---- */

/* CPU seconds a process has used (utime + stime from /proc/<pid>/stat). */
static double process_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    unsigned long utime = 0, stime = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static const struct bench_layout redis_layout = {
    .event_count = 1, .first_event_id = 1001, .rows = 10, .seats_per_row = 100, .users = 10000, .best_percent = 20};

static redisContext *redis_connect(int port, char *err, size_t err_len)
{
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err != 0) {
        snprintf(err, err_len, "cannot connect to redis: %s", c != NULL ? c->errstr : "out of memory");
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    struct timeval timeout = {.tv_sec = 10, .tv_usec = 0}; /* a wedged server fails the row, not the run */
    redisSetTimeout(c, timeout);
    return c;
}

/* FLUSHALL (a clean seat map per row) and load the release script. */
static bool redis_prepare(struct redis_run *run, char *err, size_t err_len)
{
    redisContext *c = redis_connect(run->port, err, err_len);
    if (c == NULL)
        return false;
    bool ok = false;
    redisReply *reply = redisCommand(c, "FLUSHALL");
    if (reply != NULL) {
        freeReplyObject(reply);
        reply = redisCommand(c, "SCRIPT LOAD %s", release_script);
    }
    if (reply != NULL && reply->type == REDIS_REPLY_STRING && reply->len < (int)sizeof(run->sha)) {
        snprintf(run->sha, sizeof(run->sha), "%s", reply->str);
        ok = true;
    } else {
        snprintf(err, err_len, "SCRIPT LOAD failed: %s", reply != NULL && reply->str ? reply->str : c->errstr);
    }
    if (reply != NULL)
        freeReplyObject(reply);
    redisFree(c);
    return ok;
}

/* Sums the workers' counts into the row. */
static void redis_row_fill(struct bench_row *row, const struct redis_run *run, uint64_t window_ns,
                           double server_cpu_seconds)
{
    double seconds = (double)window_ns / 1e9;
    uint64_t ops = 0, holds = 0, conflicts = 0, errors = 0;
    const char *first_error = NULL;
    struct tk_histogram *latency = bench_histogram_new();
    for (uint32_t i = 0; i < run->threads; i++) {
        const struct redis_worker *w = &run->workers[i];
        ops += w->ops;
        holds += w->holds;
        conflicts += w->conflicts;
        errors += w->errors;
        if (first_error == NULL && w->errors > 0)
            first_error = w->first_error;
        if (latency != NULL)
            tk_histogram_merge(latency, w->latency);
    }
    row->ops_per_s = (double)ops / seconds;
    if (latency != NULL && tk_histogram_count(latency) > 0) {
        row->p50_ns = (double)tk_histogram_quantile(latency, 0.50);
        row->p99_ns = (double)tk_histogram_quantile(latency, 0.99);
    }
    bench_histogram_free(latency);
    double conflict_pct = holds > 0 ? 100.0 * (double)conflicts / (double)holds : 0.0;
    bench_row_extra(row, "hold_calls", (double)holds);
    bench_row_extra(row, "conflict_pct", conflict_pct);
    bench_row_extra(row, "errors", (double)errors);
    bench_row_note(row, "conflicts %.1f%% of holds", conflict_pct);
    if (run->depth > 1)
        bench_row_note(row, "%u commands in flight per connection", run->depth);
    if (server_cpu_seconds >= 0)
        bench_row_note(row, "redis-server used %.2f cores (cpu column: the clients)", server_cpu_seconds / seconds);
    if (errors > 0)
        bench_row_note(row, "%llu ERRORS (first: %s)", (unsigned long long)errors, first_error);
}

static void redis_row(struct bench_report *report, const struct bench_options *options,
                      const struct redis_server *server, const char *id, const char *name, uint32_t threads,
                      uint32_t depth)
{
    struct bench_row *row = bench_row_add(report, id, "redis", name, threads);
    if (row == NULL)
        return;
    static struct redis_run run;
    memset(&run, 0, sizeof(run));
    run.port = server->port;
    run.server_pid = server->pid;
    run.depth = depth;
    run.threads = threads;
    run.layout = &redis_layout;
    run.live_per_thread = options->live_holds / threads;
    char err[256];
    void *args[2];
    bool ready = redis_prepare(&run, err, sizeof(err));
    for (uint32_t i = 0; ready && i < threads; i++) {
        struct redis_worker *w = &run.workers[i];
        w->run = &run;
        w->rng.state = 0x5eedull * (i + 1) + (uint64_t)depth * 131u;
        w->latency = bench_histogram_new();
        w->c = redis_connect(run.port, err, sizeof(err));
        ready =
            w->c != NULL && w->latency != NULL && live_ring_init(&w->live, run.live_per_thread + REDIS_OPS_MAX) == 0;
        args[i] = w;
    }
    if (ready) {
        struct bench_threads t = {
            .count = threads, .fn = redis_worker_main, .args = args, .seconds = options->seconds, .stop = &run.stop};
        double server_cpu0 = process_cpu_seconds(run.server_pid);
        uint64_t window_ns = bench_run_threads(&t);
        double server_cpu1 = process_cpu_seconds(run.server_pid);
        row->cores = t.cpu_seconds / ((double)window_ns / 1e9);
        redis_row_fill(row, &run, window_ns, server_cpu0 >= 0 && server_cpu1 >= 0 ? server_cpu1 - server_cpu0 : -1);
    } else {
        bench_row_skip(row, err);
    }
    for (uint32_t i = 0; i < threads; i++) {
        struct redis_worker *w = &run.workers[i];
        if (w->c != NULL)
            redisFree(w->c);
        bench_histogram_free(w->latency);
        live_ring_free(&w->live);
    }
    bench_row_progress(row);
}

void bench_redis_rows(struct bench_report *report, const struct bench_options *options)
{
    static const char *const ids[] = {"redis.hold_release.1t", "redis.hold_release.2t", "redis.pipelined.1t",
                                      "redis.pipelined.2t"};
    char pipelined[64];
    snprintf(pipelined, sizeof(pipelined), "Redis SET NX/Lua, pipelined x%u", options->redis_pipeline);
    const char *const names[] = {"Redis SET NX + Lua release", "Redis SET NX + Lua release", pipelined, pipelined};
    struct redis_server server;
    char err[1024];
    if (redis_start(&server, options, err, sizeof(err)) != 0) {
        for (uint32_t i = 0; i < 4; i++) {
            struct bench_row *row = bench_row_add(report, ids[i], "redis", names[i], 1 + i % 2);
            if (row != NULL) {
                bench_row_skip(row, err);
                bench_row_progress(row);
            }
        }
        if (server.pid > 0)
            redis_stop(&server);
        return; /* the temp dir stays when the server failed: its log says why */
    }
    for (uint32_t i = 0; i < 4; i++)
        redis_row(report, options, &server, ids[i], names[i], 1 + i % 2, i < 2 ? 1 : options->redis_pipeline);
    redis_stop(&server);
}
