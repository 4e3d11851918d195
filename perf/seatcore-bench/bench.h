/* bench.h — shared pieces of seatcore-bench: options, result rows, the seat
 * workload (who holds which seats), thread running and small system helpers.
 *
 * The benchmark drives the engine only through seatcore.h, like a service would,
 * so its figures are what a caller can get. Each concern has its own file:
 * bench_engine.c (hold/release/confirm mixes, memory-only and durable),
 * bench_queue.c, bench_recovery.c, bench_memory.c, bench_redis.c (the baseline),
 * bench_workload.c, bench_table.c (table and JSON), bench_sys.c, bench_main.c. */
#ifndef BENCH_H
#define BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seatcore.h"

/* ---- options ---- */

struct bench_options {
    double seconds;            /* per row */
    bool quick;                /* smoke run: short rows, smaller recovery log */
    const char *json_path;     /* NULL: no JSON */
    const char *data_parent;   /* where temporary data dirs go (must be the real disk) */
    const char *only;          /* comma list of groups; NULL: all */
    const char *redis_server;  /* redis-server binary */
    uint64_t recovery_records; /* WAL records written before the recovery rows */
    uint32_t durable_batch;    /* ops per durability wait in the durable rows */
    uint32_t outstanding_max;  /* unacknowledged ops per thread before it waits (durable rows) */
    uint32_t redis_pipeline;   /* commands in flight per connection, pipelined rows */
    uint32_t live_holds;       /* holds kept alive on the hot event, all threads together */
};

bool bench_group_enabled(const struct bench_options *options, const char *group);

/* ---- result rows ---- */

#define BENCH_ROWS_MAX 64u
#define BENCH_EXTRAS_MAX 12u

struct bench_extra {
    char name[32];
    double value;
};

struct bench_row {
    char id[48];      /* stable key for JSON and ratios, e.g. "mem.hold_release.1t" */
    char group[16];   /* mem, confirm, many, durable, queue, recovery, memory, redis */
    char name[56];    /* what the table shows */
    uint32_t threads; /* 0: not a threaded row */
    double ops_per_s; /* < 0: not meaningful */
    double p50_ns;    /* < 0: not meaningful */
    double p99_ns;
    double ratio; /* vs its baseline row; < 0: none */
    double cores; /* CPU this process used during the window / window length; < 0: n/a */
    char baseline_id[48];
    char notes[240];
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

void bench_table_print(struct bench_report *report, const struct bench_options *options);
int bench_json_write(struct bench_report *report, const struct bench_options *options, const char *path);

/* ---- the seat workload ---- */

/* Events the mixes run on: event_count events of rows x seats_per_row seats. */
struct bench_layout {
    uint32_t event_count;
    uint64_t first_event_id;
    uint32_t rows;
    uint32_t seats_per_row;
    uint32_t users;        /* distinct user ids 1..users */
    uint32_t best_percent; /* share of holds that ask for best-available */
};

void workload_event_spec(const struct bench_layout *layout, uint64_t event_id, struct sc_event_spec *out);
enum tk_status workload_create_events(struct sc_engine *engine, const struct bench_layout *layout, char *err,
                                      size_t err_len);

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

/* Every thread waits here before its first operation; bench_run_threads owns it. */
void bench_thread_ready(void);

/* ---- system helpers ---- */

uint64_t bench_now_ns(void);
void bench_sleep_ns(uint64_t ns);
/* Resident set size of this process in bytes (from /proc/self/statm). */
uint64_t bench_rss_bytes(void);
/* Creates a fresh directory under parent; returns 0 and fills path. */
int bench_tempdir(const char *parent, const char *prefix, char *path, size_t path_len);
/* Removes a directory tree made by bench_tempdir. */
void bench_rmtree(const char *path);
void bench_machine_fill(struct bench_machine *machine, const struct bench_options *options);
/* The 1, 5 and 15 minute load averages, as /proc/loadavg prints them. */
void bench_load_average(char *out, size_t len);
/* Engine log sink: keeps the WAL backend line for the report and prints warnings. */
void bench_engine_log(void *ctx, const char *level, const char *message);
const char *bench_wal_backend(void);

/* Histogram helpers (tk_metrics.h histograms are per-thread here, merged at the end). */
struct tk_histogram *bench_histogram_new(void);
void bench_histogram_free(struct tk_histogram *histogram);

/* ---- the benchmark groups ---- */

/* Each adds its rows to report; none aborts the run (a failure becomes a skipped row). */
void bench_engine_rows(struct bench_report *report, const struct bench_options *options);
void bench_queue_rows(struct bench_report *report, const struct bench_options *options);
void bench_recovery_rows(struct bench_report *report, const struct bench_options *options);
void bench_memory_rows(struct bench_report *report, const struct bench_options *options);
void bench_redis_rows(struct bench_report *report, const struct bench_options *options);

/* Formats n with thousands separators into buf. */
const char *bench_fmt_count(char *buf, size_t len, double n);
/* Formats a duration in ns as "812ns", "4.2us", "1.3ms" or "2.01s". */
const char *bench_fmt_ns(char *buf, size_t len, double ns);

#endif
