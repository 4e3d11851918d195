/* bench_common.h — what the perf benchmarks share (perf/common/): result rows
 * and their formatting, machine facts, the seat workload (who asks for which
 * seats), the fixed-duration thread runner, exact latency samples, and small
 * system helpers (clocks, temp dirs, child processes, free ports).
 *
 * Each benchmark (seatcore-bench, rpc-bench) keeps its own options, table
 * layout and targets; the pieces here are the ones both need, so a figure in
 * one means the same thing in the other. The Redis baseline has its own header
 * (redis_baseline.h). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tk_limits.h"
#include "tk_metrics.h"

/* ---- result rows ---- */

#define BENCH_ROWS_MAX 64u
#define BENCH_EXTRAS_MAX 20u

struct bench_extra {
    char name[32];
    double value;
};

struct bench_row {
    char id[48];      /* stable key for JSON and ratios, e.g. "mem.hold_release.1t" */
    char group[16];   /* the bench's group, e.g. mem, durable, redis, rpc-batch */
    char name[56];    /* what the table shows */
    uint32_t threads; /* threads, or calls/connections in flight; 0: not a threaded row */
    double ops_per_s; /* < 0: not meaningful */
    double p50_ns;    /* < 0: not meaningful */
    double p90_ns;    /* < 0: not measured (seatcore-bench shows p50/p99 only) */
    double p99_ns;
    double p999_ns; /* < 0: not measured */
    double ratio;   /* vs its baseline row; < 0: none */
    double cores;   /* CPU this process used during the window / window length; < 0: n/a */
    char baseline_id[48];
    char notes[320];
    bool skipped;
    uint32_t extra_count;
    struct bench_extra extras[BENCH_EXTRAS_MAX];
};

struct bench_machine {
    long nproc;
    char cpu_model[128];
    char kernel[200];
    char wal_backend[160];
    char data_dir[512];
    char data_fs[32];
    char date[64];
    char load_start[64]; /* /proc/loadavg when the run started and ended: a busy */
    char load_end[64];   /* machine explains low figures */
};

struct bench_report {
    struct bench_machine machine;
    struct bench_row rows[BENCH_ROWS_MAX];
    uint32_t count;
};

struct bench_row *bench_row_add(struct bench_report *report, const char *id, const char *group, const char *name,
                                uint32_t threads);
struct bench_row *bench_row_find(struct bench_report *report, const char *id);
void bench_row_extra(struct bench_row *row, const char *name, double value);
double bench_row_extra_get(const struct bench_row *row, const char *name, double missing);
void bench_row_skip(struct bench_row *row, const char *why);
/* Appends to the row's notes, "; "-separated; cut at the buffer's end. */
void bench_row_note(struct bench_row *row, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints one finished row to stderr as progress (the table goes to stdout at the end). */
void bench_row_progress(const struct bench_row *row);

/* Formats n with thousands separators into buf ("-" when n < 0). */
const char *bench_fmt_count(char *buf, size_t len, double n);
/* Formats a duration in ns as "812ns", "4.2us", "1.3ms" or "2.01s" ("-" when < 0). */
const char *bench_fmt_ns(char *buf, size_t len, double ns);
/* "12.3x", "1.52x", or "-" when not meaningful. */
const char *bench_fmt_ratio(char *buf, size_t len, double ratio);

/* JSON pieces: a string with escapes, a number (null when < 0 or not finite),
 * one row object, and the "date" and "machine" members. */
void bench_json_string(FILE *f, const char *s);
void bench_json_number(FILE *f, double v);
void bench_json_row(FILE *f, const struct bench_row *row);
void bench_json_machine(FILE *f, const struct bench_machine *machine);

enum bench_verdict { BENCH_NA = -1, BENCH_MISS = 0, BENCH_PASS = 1 };
const char *bench_verdict_name(enum bench_verdict verdict);

/* true if list ("a,b,c"; NULL: everything) names item: a bench's --only groups. */
bool bench_list_names(const char *list, const char *item);

/* ---- machine facts ---- */

/* Fills cpus, CPU model, kernel, date, the data dir and its file system, and
 * load_end; leaves wal_backend and load_start to the caller. */
void bench_machine_basics(struct bench_machine *machine, const char *data_parent);
/* The 1, 5 and 15 minute load averages, as /proc/loadavg prints them. */
void bench_load_average(char *out, size_t len);

/* ---- the seat workload ---- */

/* Events the mixes run on: event_count events of rows x seats_per_row seats,
 * ids first_event_id.. . With hot_percent > 0 that share of the picks goes to
 * the first event (the hot on-sale, hot_rows x seats_per_row seats when
 * hot_rows is set) and the rest spread evenly over the others. */
struct bench_layout {
    uint32_t event_count;
    uint64_t first_event_id;
    uint32_t rows;
    uint32_t seats_per_row;
    uint32_t users;        /* distinct user ids 1..users */
    uint32_t best_percent; /* share of holds that ask for best-available */
    uint32_t hot_percent;  /* 0: every event equally likely */
    uint32_t hot_rows;     /* rows of the first event; 0: rows */
};

/* Rows of an event of the layout. */
static inline uint32_t bench_layout_rows(const struct bench_layout *layout, uint64_t event_id)
{
    return event_id == layout->first_event_id && layout->hot_rows > 0 ? layout->hot_rows : layout->rows;
}

struct bench_rng {
    uint64_t state;
};
static inline uint64_t bench_rng_next(struct bench_rng *rng)
{
    /* splitmix64: fast, good enough spread, one word of state per thread */
    uint64_t z = (rng->state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}
static inline uint32_t bench_rng_below(struct bench_rng *rng, uint32_t n)
{
    return (uint32_t)(((bench_rng_next(rng) >> 32) * (uint64_t)n) >> 32);
}

#define BENCH_PICK_SEATS_MAX 4u

/* One hold a user asks for: explicit adjacent seats in a row, or best-available. */
struct bench_pick {
    uint64_t event_id;
    uint64_t user_id;
    uint32_t count; /* 1..BENCH_PICK_SEATS_MAX */
    bool best;      /* best-available (seats[] unused) */
    uint32_t seats[BENCH_PICK_SEATS_MAX];
};
/* best_allowed false turns a best-available pick into an explicit one (Redis has no
 * best-available: a client there guesses a block, which is what we model). */
void workload_pick(const struct bench_layout *layout, struct bench_rng *rng, bool best_allowed, struct bench_pick *out);

/* A hold that succeeded and is waiting to be released or confirmed. */
struct live_hold {
    uint64_t event_id;
    uint64_t user_id;
    uint64_t hold_id;
    uint32_t seat_count;
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
};

/* FIFO of live holds: the oldest hold is the one released (or confirmed) next,
 * like people who finish paying in the order they started. */
struct live_ring {
    struct live_hold *items;
    uint32_t capacity;
    uint32_t head;
    uint32_t count;
};
int live_ring_init(struct live_ring *ring, uint32_t capacity);
void live_ring_free(struct live_ring *ring);
struct live_hold *live_ring_push(struct live_ring *ring);
bool live_ring_pop(struct live_ring *ring, struct live_hold *out);

/* ---- running threads for a fixed time ---- */

struct bench_threads {
    /* in */
    uint32_t count;
    void *(*fn)(void *arg);
    void **args;
    double seconds;
    _Atomic bool *stop;
    /* Called on the main thread at the end of the window, before stop is set
     * (durable rows read their completion counters here). May be NULL. */
    void (*at_window_end)(void *ctx);
    void *ctx;
    /* out: CPU seconds the whole process used in the window (every thread,
     * including the engine's WAL thread). On a shared machine this says whether
     * the row got the cores it asked for. */
    double cpu_seconds;
};
/* Starts the threads together (barrier), lets them run for seconds, sets stop and
 * joins them; returns the window length in ns. */
uint64_t bench_run_threads(struct bench_threads *run);
/* CPU seconds (user + system) this process has used so far. */
double bench_cpu_seconds(void);
/* CPU seconds another process has used (utime + stime from /proc/<pid>/stat); -1 if unknown. */
double bench_process_cpu_seconds(pid_t pid);
/* CPU seconds every process on the machine has used so far (the non-idle time
 * of /proc/stat's cpu line); -1 if unknown. With the bench's own share taken
 * out, a window's delta says how much the neighbours took. */
double bench_machine_busy_seconds(void);

/* Every thread waits here before its first operation; bench_run_threads owns it. */
void bench_thread_ready(void);

/* ---- exact latency samples ---- */

/* Every latency of a row, in ns (clamped to 4.29 s), for exact percentiles: the
 * tk_metrics histograms have ~19% buckets, too coarse next to a target like
 * "p99 under 5 ms". One writer at a time; grows as needed up to a cap. */
struct bench_samples {
    uint32_t *values;
    size_t count;
    size_t capacity;
    uint64_t dropped; /* past the cap (percentiles then cover the first samples) */
};
void bench_samples_add(struct bench_samples *samples, uint64_t ns);
void bench_samples_merge(struct bench_samples *into, const struct bench_samples *from);
/* Sorts in place; then bench_samples_quantile answers (-1 when empty). */
void bench_samples_sort(struct bench_samples *samples);
double bench_samples_quantile(const struct bench_samples *sorted, double q);
void bench_samples_free(struct bench_samples *samples);

/* ---- system helpers ---- */

uint64_t bench_now_ns(void);
void bench_sleep_ns(uint64_t ns);
/* Resident set size of this process in bytes (from /proc/self/statm). */
uint64_t bench_rss_bytes(void);
/* Creates a fresh directory under parent; returns 0 and fills path. */
int bench_tempdir(const char *parent, const char *prefix, char *path, size_t path_len);
/* Removes a directory tree made by bench_tempdir. */
void bench_rmtree(const char *path);
/* Finds an executable: a path as given, or a name on $PATH. */
bool bench_find_binary(const char *name, char *path, size_t len);
/* A TCP port on 127.0.0.1 free right now (bind-probe, like tools/free-port); -1 on error. */
int bench_free_port(void);
/* Starts argv[0] as a child with stdout and stderr to log_path; the child is
 * killed if the bench dies (PR_SET_PDEATHSIG). Returns its pid, or -1. */
pid_t bench_spawn(char *const argv[], const char *log_path);
/* SIGTERM, then SIGKILL after timeout_ns; reaps the child. Returns its wait
 * status, or -1 when it had to be killed. */
int bench_stop_child(pid_t pid, uint64_t timeout_ns);

/* Histogram helpers (tk_metrics.h histograms are per-thread here, merged at the end). */
struct tk_histogram *bench_histogram_new(void);
void bench_histogram_free(struct tk_histogram *histogram);

#endif
