/* bench.h — shared pieces of seatcore-bench: options, the table and JSON, the
 * events the mixes run on, the engine log. Rows, the seat workload (who holds
 * which seats), thread running and small system helpers come from
 * perf/common/bench_common.h, shared with rpc-bench; the Redis baseline from
 * perf/common/redis_baseline.h.
 *
 * The benchmark drives the engine only through seatcore.h, like a service would,
 * so its figures are what a caller can get. Each concern has its own file:
 * bench_engine.c (hold/release/confirm mixes, memory-only and durable),
 * bench_queue.c, bench_recovery.c, bench_memory.c, bench_redis.c (the baseline),
 * bench_workload.c (events), bench_table.c (table and JSON), bench_sys.c (machine,
 * engine log), bench_main.c. */
#ifndef BENCH_H
#define BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_common.h"
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

/* Rows, machine facts, formatting, the seat workload, the thread runner and the
 * system helpers are shared with the other benches: perf/common/bench_common.h. */

void bench_table_print(struct bench_report *report, const struct bench_options *options);
int bench_json_write(struct bench_report *report, const struct bench_options *options, const char *path);

/* ---- the seat workload (picks and live holds: bench_common.h) ---- */

void workload_event_spec(const struct bench_layout *layout, uint64_t event_id, struct sc_event_spec *out);
enum tk_status workload_create_events(struct sc_engine *engine, const struct bench_layout *layout, char *err,
                                      size_t err_len);

/* ---- machine and engine log ---- */

void bench_machine_fill(struct bench_machine *machine, const struct bench_options *options);
/* Engine log sink: keeps the WAL backend line for the report and prints warnings. */
void bench_engine_log(void *ctx, const char *level, const char *message);
const char *bench_wal_backend(void);

/* ---- the benchmark groups ---- */

/* Each adds its rows to report; none aborts the run (a failure becomes a skipped row). */
void bench_engine_rows(struct bench_report *report, const struct bench_options *options);
void bench_queue_rows(struct bench_report *report, const struct bench_options *options);
void bench_recovery_rows(struct bench_report *report, const struct bench_options *options);
void bench_memory_rows(struct bench_report *report, const struct bench_options *options);
void bench_redis_rows(struct bench_report *report, const struct bench_options *options);

#endif
