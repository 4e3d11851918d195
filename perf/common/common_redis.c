/* common_redis.c — the Redis seat-lock baseline (redis_baseline.h): the
 * throwaway server and the client of one connection, driven blocking (a thread
 * per connection) or multiplexed (epoll, many connections per thread). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis_baseline.h"

#define REDIS_START_ATTEMPTS 3u
#define REDIS_START_TIMEOUT_NS (10ull * 1000000000ull)
#define REDIS_KEY_BYTES 48u

_Static_assert(REDIS_SENT_MAX >= 2u * REDIS_OPS_MAX + 64u, "room for every op's SETs and a rollback");

static const char release_script[] = "local n = 0 "
                                     "for i = 1, #KEYS do "
                                     "  if redis.call('GET', KEYS[i]) == ARGV[1] then n = n + redis.call('DEL', KEYS[i]) end "
                                     "end "
                                     "return n";

enum redis_cmd { CMD_SET, CMD_DEL, CMD_EVAL };

/* ---- the throwaway server ---- */

static pid_t spawn_server(const char *binary, const char *dir, int port)
{
    char port_arg[16], log_path[700];
    snprintf(port_arg, sizeof(port_arg), "%d", port);
    snprintf(log_path, sizeof(log_path), "%s/redis.log", dir);
    char *argv[] = {(char *)binary, "--port",       port_arg, "--bind", "127.0.0.1", "--protected-mode", "yes",
                    "--save",       "",             "--appendonly", "no", "--dir",  (char *)dir, "--daemonize",
                    "no",           NULL};
    return bench_spawn(argv, log_path);
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

int redis_server_start(struct redis_server *s, const char *binary_name, const char *data_parent,
                       const char *dir_prefix, char *err, size_t err_len)
{
    char binary[1024];
    memset(s, 0, sizeof(*s));
    if (!bench_find_binary(binary_name, binary, sizeof(binary))) {
        snprintf(err, err_len, "redis-server not found (%s); install redis-server for the baseline", binary_name);
        return -1;
    }
    if (bench_tempdir(data_parent, dir_prefix, s->dir, sizeof(s->dir)) != 0) {
        snprintf(err, err_len, "cannot create a temporary dir under %s", data_parent);
        return -1;
    }
    for (uint32_t attempt = 0; attempt < REDIS_START_ATTEMPTS; attempt++) {
        /* Another process may take the probed port before redis binds it: retry. */
        s->port = bench_free_port();
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

void redis_server_stop(struct redis_server *s)
{
    if (s->pid > 0) {
        bench_stop_child(s->pid, 5000000000ull);
        s->pid = 0;
    }
    if (s->dir[0] != '\0')
        bench_rmtree(s->dir);
}

redisContext *redis_connect(int port, char *err, size_t err_len)
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

bool redis_prepare(int port, char *sha, size_t sha_len, char *err, size_t err_len)
{
    redisContext *c = redis_connect(port, err, err_len);
    if (c == NULL)
        return false;
    bool ok = false;
    redisReply *reply = redisCommand(c, "FLUSHALL");
    if (reply != NULL) {
        freeReplyObject(reply);
        reply = redisCommand(c, "SCRIPT LOAD %s", release_script);
    }
    if (reply != NULL && reply->type == REDIS_REPLY_STRING && reply->len < sha_len) {
        snprintf(sha, sha_len, "%s", reply->str);
        ok = true;
    } else {
        snprintf(err, err_len, "SCRIPT LOAD failed: %s", reply != NULL && reply->str ? reply->str : c->errstr);
    }
    if (reply != NULL)
        freeReplyObject(reply);
    redisFree(c);
    return ok;
}

/* ---- the client ---- */

int redis_conn_init(struct redis_conn *w, const struct redis_conn_config *config, char *err, size_t err_len)
{
    memset(w, 0, sizeof(*w));
    w->config = *config;
    w->rng.state = config->seed;
    w->latency = bench_histogram_new();
    w->c = redis_connect(config->port, err, err_len);
    if (w->c == NULL || w->latency == NULL || live_ring_init(&w->live, config->live + REDIS_OPS_MAX) != 0) {
        if (w->c != NULL && w->latency == NULL)
            snprintf(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

void redis_conn_free(struct redis_conn *w)
{
    if (w->c != NULL)
        redisFree(w->c);
    w->c = NULL;
    bench_histogram_free(w->latency);
    w->latency = NULL;
    live_ring_free(&w->live);
}

static void conn_error(struct redis_conn *w, const char *what)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof(w->first_error), "%s", what);
}

static void seat_key(char *key, const struct live_hold *hold, uint32_t i)
{
    snprintf(key, REDIS_KEY_BYTES, "seat:%llu:%u", (unsigned long long)hold->event_id, hold->seats[i]);
}

static bool send_command(struct redis_conn *w, uint32_t op, enum redis_cmd cmd, uint32_t seat, int argc,
                         const char **argv)
{
    if (w->sent_count == REDIS_SENT_MAX || redisAppendCommandArgv(w->c, argc, argv, NULL) != REDIS_OK) {
        conn_error(w, "cannot queue a command");
        return false;
    }
    w->sent[(w->sent_head + w->sent_count) % REDIS_SENT_MAX] =
        (struct redis_sent){.op = (uint16_t)op, .cmd = (uint8_t)cmd, .seat = (uint8_t)seat};
    w->sent_count++;
    return true;
}

static bool send_set(struct redis_conn *w, uint32_t index)
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
static bool send_multi(struct redis_conn *w, uint32_t index, enum redis_cmd cmd, uint32_t mask)
{
    struct redis_op *op = &w->ops_table[index];
    char keys[TK_SEATS_PER_HOLD_MAX][REDIS_KEY_BYTES], user[24], numkeys[8];
    const char *argv[TK_SEATS_PER_HOLD_MAX + 4];
    int argc = 0;
    argv[argc++] = cmd == CMD_DEL ? "DEL" : "EVALSHA";
    if (cmd == CMD_EVAL)
        argv[argc++] = w->config.sha;
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

static void op_complete(struct redis_conn *w, uint32_t index, bool held)
{
    struct redis_op *op = &w->ops_table[index];
    uint64_t latency = bench_now_ns() - op->started_ns;
    tk_histogram_record(w->latency, latency);
    if (w->config.samples != NULL)
        bench_samples_add(w->config.samples, latency);
    w->ops++;
    if (op->kind == REDIS_OP_HOLD) {
        w->holds++;
        if (held) {
            struct live_hold *live = live_ring_push(&w->live);
            if (live != NULL)
                *live = op->hold;
        } else {
            w->conflicts++;
        }
    }
    op->kind = REDIS_OP_FREE;
    w->active_ops--;
}

static uint32_t in_flight(const struct redis_conn *w)
{
    return w->sent_count;
}

/* Starts one op in a free slot: release the oldest live hold when we have
 * enough, else hold a new pick. */
static bool op_start(struct redis_conn *w)
{
    uint32_t index = 0;
    while (index < REDIS_OPS_MAX && w->ops_table[index].kind != REDIS_OP_FREE)
        index++;
    if (index == REDIS_OPS_MAX)
        return false;
    struct redis_op *op = &w->ops_table[index];
    memset(op, 0, sizeof(*op));
    op->started_ns = bench_now_ns();
    w->active_ops++;
    if (w->live.count >= w->config.live && live_ring_pop(&w->live, &op->hold)) {
        op->kind = REDIS_OP_RELEASE;
        return send_multi(w, index, CMD_EVAL, (1u << op->hold.seat_count) - 1u);
    }
    struct bench_pick pick;
    workload_pick(w->config.layout, &w->rng, false, &pick);
    op->kind = REDIS_OP_HOLD;
    op->hold = (struct live_hold){.event_id = pick.event_id, .user_id = pick.user_id, .seat_count = pick.count};
    memcpy(op->hold.seats, pick.seats, pick.count * sizeof(pick.seats[0]));
    return send_set(w, index);
}

/* Sends what the pipeline depth allows: the next SETs of holds under way (not
 * after one failed: the hold is lost anyway), then new ops unless stopping. */
static bool issue(struct redis_conn *w, bool stopping)
{
    for (uint32_t i = 0; i < REDIS_OPS_MAX && in_flight(w) < w->config.depth; i++) {
        struct redis_op *op = &w->ops_table[i];
        while (op->kind == REDIS_OP_HOLD && !op->failed && op->sets_sent < op->hold.seat_count &&
               in_flight(w) < w->config.depth)
            if (!send_set(w, i))
                return false;
    }
    while (!stopping && in_flight(w) < w->config.depth && w->active_ops < REDIS_OPS_MAX)
        if (!op_start(w))
            return false;
    return true;
}

static bool handle_reply(struct redis_conn *w, redisReply *reply)
{
    struct redis_sent tag = w->sent[w->sent_head];
    w->sent_head = (w->sent_head + 1) % REDIS_SENT_MAX;
    w->sent_count--;
    struct redis_op *op = &w->ops_table[tag.op];
    if (reply->type == REDIS_REPLY_ERROR)
        conn_error(w, reply->str);
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
            conn_error(w, "release freed fewer seats than the hold had");
        op_complete(w, tag.op, false);
    }
    return true;
}

void redis_conn_run_blocking(struct redis_conn *w, _Atomic bool *stop)
{
    for (;;) {
        bool stopping = atomic_load_explicit(stop, memory_order_acquire);
        if (!issue(w, stopping))
            break;
        if (w->sent_count == 0)
            break; /* stopping and nothing left in flight */
        redisReply *reply = NULL;
        if (redisGetReply(w->c, (void **)&reply) != REDIS_OK || reply == NULL) {
            conn_error(w, w->c->errstr[0] != '\0' ? w->c->errstr : "connection lost");
            break;
        }
        bool ok = handle_reply(w, reply);
        freeReplyObject(reply);
        if (!ok)
            break;
    }
}

/* Writes the connection's output buffer (blocking socket: small writes finish). */
static bool conn_flush(struct redis_conn *w)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(w->c, &done) != REDIS_OK) {
            conn_error(w, w->c->errstr[0] != '\0' ? w->c->errstr : "write failed");
            return false;
        }
    return true;
}

static void conn_kill(struct redis_conn *w, int epfd)
{
    w->dead = true;
    epoll_ctl(epfd, EPOLL_CTL_DEL, w->c->fd, NULL);
}

/* Reads what arrived, handles every complete reply, sends what follows. */
static void conn_service(struct redis_conn *w, int epfd, bool stopping)
{
    if (redisBufferRead(w->c) != REDIS_OK) {
        conn_error(w, w->c->errstr[0] != '\0' ? w->c->errstr : "connection lost");
        conn_kill(w, epfd);
        return;
    }
    for (;;) {
        redisReply *reply = NULL;
        if (redisGetReplyFromReader(w->c, (void **)&reply) != REDIS_OK) {
            conn_error(w, w->c->errstr[0] != '\0' ? w->c->errstr : "protocol error");
            conn_kill(w, epfd);
            return;
        }
        if (reply == NULL)
            break;
        bool ok = handle_reply(w, reply);
        freeReplyObject(reply);
        if (!ok) {
            conn_kill(w, epfd);
            return;
        }
    }
    if (!issue(w, stopping) || !conn_flush(w))
        conn_kill(w, epfd);
}

void redis_conns_run_multiplexed(struct redis_conn *const *conns, uint32_t count, _Atomic bool *stop)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        for (uint32_t i = 0; i < count; i++)
            conn_error(conns[i], "epoll_create1 failed");
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct redis_conn *w = conns[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, w->c->fd, &ev) != 0) {
            conn_error(w, "epoll_ctl failed");
            w->dead = true;
            continue;
        }
        if (!issue(w, false) || !conn_flush(w))
            conn_kill(w, epfd);
    }
    struct epoll_event events[256];
    for (;;) {
        bool stopping = atomic_load_explicit(stop, memory_order_acquire);
        if (stopping) {
            bool busy = false;
            for (uint32_t i = 0; i < count && !busy; i++)
                busy = !conns[i]->dead && conns[i]->sent_count > 0;
            if (!busy)
                break;
        }
        int n = epoll_wait(epfd, events, 256, 100);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            struct redis_conn *w = events[i].data.ptr;
            if (!w->dead)
                conn_service(w, epfd, stopping);
        }
    }
    close(epfd);
}

void redis_conns_totals(struct redis_conn *const *conns, uint32_t count, struct tk_histogram *latency,
                        struct redis_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < count; i++) {
        const struct redis_conn *w = conns[i];
        out->ops += w->ops;
        out->holds += w->holds;
        out->conflicts += w->conflicts;
        out->errors += w->errors;
        if (out->first_error == NULL && w->errors > 0)
            out->first_error = w->first_error;
        if (latency != NULL && w->latency != NULL)
            tk_histogram_merge(latency, w->latency);
    }
    out->conflict_pct = out->holds > 0 ? 100.0 * (double)out->conflicts / (double)out->holds : 0.0;
}
