/* rpcb.h — rpc-bench: seat operations per second over gRPC against a running
 * seatcored, next to the Redis seat-lock baseline at the same concurrency.
 *
 * The bench starts seatcored itself (durable, its WAL in a temporary dir on the
 * real disk; one extra row against a --memory daemon), creates a hot event and a
 * spread of quieter ones, and drives them from a C load generator on the rpc
 * layer's asynchronous client (rpc_unary_async on a client loop), N calls in
 * flight. Rows: one op per call, Batch calls of B ops, an open-loop row at half
 * of the peak rate, and the Redis baseline. See perf/README.md.
 *
 * Files: rpcb_main.c (options, run order), rpcb_daemon.c (seatcored: start,
 * events, metrics, stop), rpcb_load.c (the load generator and its rows),
 * rpcb_redis.c (baseline rows), rpcb_table.c (table, targets, JSON). Rows,
 * formatting, the seat picks and the Redis client come from perf/common/. */
#ifndef RPCB_H
#define RPCB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench_common.h"

#define RPCB_LIST_MAX 8u
#define RPCB_SERVER_ARGS_MAX 16u
#define RPCB_LANES_MAX 1024u
#define RPCB_BATCH_MAX 4096u /* SEATCORED_BATCH_OPS_MAX */

struct rpcb_list {
    uint32_t count;
    uint32_t values[RPCB_LIST_MAX];
};

struct rpcb_options {
    double seconds;          /* measured window per row */
    double warmup;           /* unmeasured lead-in per row */
    bool quick;              /* smoke run: short rows */
    const char *json_path;   /* NULL: no JSON */
    const char *data_parent; /* where the daemon's WAL and Redis's dir go (a real disk) */
    const char *only;        /* comma list of groups; NULL: all */
    const char *redis_server;
    const char *seatcored;  /* binary; NULL: this build tree's, else build/bin/seatcored */
    const char *server_args[RPCB_SERVER_ARGS_MAX]; /* extra seatcored flags (--server-arg) */
    uint32_t server_arg_count;
    struct rpcb_list unary_depths; /* calls in flight, one op per call */
    struct rpcb_list batch_sizes;  /* ops per Batch call */
    struct rpcb_list batch_depths; /* Batch calls in flight */
    uint32_t client_threads;       /* rpc client loop threads */
    uint32_t channels;             /* gRPC channels (HTTP/2 connections) the lanes share */
    uint32_t events;               /* events created: 1 hot + the spread */
    uint32_t hot_percent;          /* share of holds on the hot event */
    uint32_t users;
    double open_fraction;          /* open-loop rate as a share of the peak (0.5) */
    double open_rate;              /* > 0: open-loop rate in ops/s instead (no peak needed) */
};

bool rpcb_group_enabled(const struct rpcb_options *options, const char *group);

/* ---- the daemon ---- */

struct rpc_channel;

struct rpcb_daemon {
    pid_t pid;
    int port;
    int metrics_port;
    bool memory;
    char binary[1024];
    char dir[600]; /* temporary: the data dir (durable) and the log */
    char data_dir[700];
    char log_path[700];
    char target[64];
    char wal_backend[96];
    struct rpc_channel *channel; /* for set-up calls (events, clean-up) */
    bool died;                   /* exited while the bench still needed it (rpcb_daemon_alive) */
    char death[640];             /* how it ended and its last log line, once died */
};

/* Starts seatcored on free loopback ports (retrying when a port was taken) and
 * waits until it answers; 0 on success, else err says why. */
int rpcb_daemon_start(struct rpcb_daemon *daemon, const struct rpcb_options *options, bool memory, char *err,
                      size_t err_len);
/* SIGTERM (graceful: the WAL is flushed), wait, remove the temporary dir. */
void rpcb_daemon_stop(struct rpcb_daemon *daemon);
/* False once the daemon has exited on its own (it is reaped here, and
 * daemon->death then says how it ended and quotes its last log line). Cheap
 * (one waitpid): rows call it every few milliseconds. */
bool rpcb_daemon_alive(struct rpcb_daemon *daemon);
/* Creates the layout's events with CreateEvent; 0 on success. */
int rpcb_daemon_create_events(struct rpcb_daemon *daemon, const struct bench_layout *layout, char *err,
                              size_t err_len);
/* A Prometheus histogram as /metrics shows it (cumulative buckets, seconds). */
#define RPCB_HIST_BUCKETS 24u
struct rpcb_hist {
    uint32_t count;
    double le[RPCB_HIST_BUCKETS];
    double cumulative[RPCB_HIST_BUCKETS];
};
/* Quantile q of the samples that arrived between a and b, in ns, interpolated
 * inside the bucket (as PromQL's histogram_quantile); -1 when none. The buckets
 * are coarse (1, 2.5, 5, 10 ms ...): a guide, not a measurement. */
double rpcb_hist_quantile(const struct rpcb_hist *a, const struct rpcb_hist *b, double q);

/* Server-side figures read from /metrics (counters; -1 when not found). */
struct rpcb_server_figures {
    double wal_records;
    double wal_batches; /* group commits: write + fdatasync */
    double snapshots;
    struct rpcb_hist fsync;       /* tiketi_wal_fsync_seconds: one write + fdatasync */
    struct rpcb_hist batch_calls; /* server-side latency of Batch calls */
    struct rpcb_hist hold_calls;  /* server-side latency of Hold calls */
};
bool rpcb_daemon_figures(const struct rpcb_daemon *daemon, struct rpcb_server_figures *out);
/* Which seatcored binary the options lead to; false if none is there. */
bool rpcb_seatcored_binary(const struct rpcb_options *options, char *path, size_t len, char *why, size_t why_len);

/* ---- rows ---- */

/* The events every row uses: event 1 (hot) and events 2..N (the spread). */
void rpcb_layout(const struct rpcb_options *options, struct bench_layout *out);

/* The best closed-loop Batch row of the report that ran without errors (the
 * peak the open-loop row and the targets refer to); NULL if none. */
const struct bench_row *rpcb_peak_row(const struct bench_report *report);

/* The gRPC rows against a durable daemon (unary, batch, open loop), then the
 * extra memory-only row. Each row's figures go into the report. */
void rpcb_grpc_rows(struct bench_report *report, const struct rpcb_options *options);
/* The Redis rows at the concurrencies the gRPC rows used. */
void rpcb_redis_rows(struct bench_report *report, const struct rpcb_options *options);

/* ---- output ---- */

struct rpcb_info {
    char seatcored[1024];
    char seatcored_note[160];
    char redis_version[64];
};
extern struct rpcb_info rpcb_info;

void rpcb_table_print(struct bench_report *report, const struct rpcb_options *options);
/* Lists on stderr the rows that did not run, or ran with errors; returns how many. */
uint32_t rpcb_failed_rows(const struct bench_report *report);
int rpcb_json_write(struct bench_report *report, const struct rpcb_options *options, const char *path);

#endif
