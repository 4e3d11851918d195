/* redis_baseline.h — seat locks the way teams build them on Redis today, as a
 * baseline both benches run on the same machine with the same picks.
 *
 * A hold is SET seat:<event>:<seat> <user> NX PX 300000 for each seat in
 * ascending order, all-or-nothing: when one SET NX fails, the seats already
 * taken are given back with one DEL. A release is one EVALSHA of a
 * compare-and-delete script (delete each seat only if it still holds our user
 * id), so a lock that expired and was retaken is never freed by the old owner.
 * One op = one hold or one release call.
 *
 * A connection (struct redis_conn) keeps up to `depth` commands in flight:
 * depth 1 = not pipelined (each command waits for its reply, what a request
 * handler does); more = pipelined across independent holds and releases, a hold
 * sending its SETs back to back and rolling back after all their replies.
 * Connections are driven either one per thread, blocking (redis_conn_run_blocking),
 * or many per thread with epoll (redis_conns_run_multiplexed: the same number of
 * requests in flight as a server with that many callers, without a thread each).
 *
 * The bench starts its own throwaway redis-server (free loopback port, no
 * persistence, a temporary dir, killed with the bench if it dies) and stops it
 * at the end. */
#ifndef REDIS_BASELINE_H
#define REDIS_BASELINE_H

#include <hiredis/hiredis.h>

#include "bench_common.h"

/* ---- the throwaway server ---- */

struct redis_server {
    pid_t pid;
    int port;
    char dir[600];
};

/* binary: a path or a name on $PATH; the temporary dir goes under data_parent.
 * On failure err says why (and the dir is kept when the server's log explains it). */
int redis_server_start(struct redis_server *server, const char *binary, const char *data_parent,
                       const char *dir_prefix, char *err, size_t err_len);
void redis_server_stop(struct redis_server *server);

redisContext *redis_connect(int port, char *err, size_t err_len);
/* FLUSHALL (a clean seat map per row) and load the release script; sha out. */
bool redis_prepare(int port, char *sha, size_t sha_len, char *err, size_t err_len);

/* ---- one connection's client ---- */

#define REDIS_OPS_MAX 64u   /* ops in flight per connection */
#define REDIS_SENT_MAX 256u /* commands in flight per connection (FIFO of reply tags) */

enum redis_op_kind { REDIS_OP_FREE = 0, REDIS_OP_HOLD, REDIS_OP_RELEASE };

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

struct redis_conn_config {
    int port;
    const char *sha; /* of the release script (redis_prepare) */
    uint32_t depth;  /* commands in flight: 1 = not pipelined */
    uint32_t live;   /* live holds this connection keeps before it releases the oldest */
    const struct bench_layout *layout;
    uint64_t seed;
    struct bench_samples *samples; /* also record exact latencies here; NULL: histogram only */
};

struct redis_conn {
    struct redis_conn_config config;
    redisContext *c;
    struct bench_rng rng;
    struct live_ring live;
    struct tk_histogram *latency;
    uint64_t ops, holds, conflicts, errors;
    char first_error[128];
    bool dead; /* lost its connection */
    struct redis_op ops_table[REDIS_OPS_MAX];
    uint32_t active_ops;
    struct redis_sent sent[REDIS_SENT_MAX];
    uint32_t sent_head, sent_count;
};

/* Connects and allocates; 0 on success, else err says why. */
int redis_conn_init(struct redis_conn *conn, const struct redis_conn_config *config, char *err, size_t err_len);
void redis_conn_free(struct redis_conn *conn);
/* One thread, one connection: sends what the depth allows, waits for a reply,
 * repeats until stop is set and nothing is left in flight. */
void redis_conn_run_blocking(struct redis_conn *conn, _Atomic bool *stop);
/* One thread, many connections, each up to its depth, served with epoll. */
void redis_conns_run_multiplexed(struct redis_conn *const *conns, uint32_t count, _Atomic bool *stop);

struct redis_totals {
    uint64_t ops, holds, conflicts, errors;
    const char *first_error; /* NULL: none */
    double conflict_pct;
};
/* Sums the connections' counts; merges their histograms into latency if not NULL. */
void redis_conns_totals(struct redis_conn *const *conns, uint32_t count, struct tk_histogram *latency,
                        struct redis_totals *out);

#endif
