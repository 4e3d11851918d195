/* bench_sys.c — seatcore-bench's machine facts (the shared ones plus the WAL
 * backend the engine chose) and the engine log sink. Clocks, temp dirs, the
 * thread runner and the rest live in perf/common/common_sys.c. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* Fills everything but load_start, which main takes before the first row. */
void bench_machine_fill(struct bench_machine *machine, const struct bench_options *options)
{
    bench_machine_basics(machine, options->data_parent);
    snprintf(machine->wal_backend, sizeof(machine->wal_backend), "%s", bench_wal_backend());
}

/* ---- engine log ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char wal_backend_line[160] = "not opened (no durable row ran)";

void bench_engine_log(void *ctx, const char *level, const char *message)
{
    (void)ctx;
    pthread_mutex_lock(&log_lock);
    /* wal_io logs its choice at open: "wal io backend: io_uring" or
     * "io_uring refused (...), wal io backend: pwritev+fdatasync". */
    const char *backend = strstr(message, "wal io backend: ");
    if (backend != NULL) {
        const char *refused = strstr(message, "refused");
        snprintf(wal_backend_line, sizeof(wal_backend_line), "%s%s", backend + strlen("wal io backend: "),
                 refused != NULL ? " (io_uring refused)" : "");
    }
    if (strcmp(level, "info") != 0 && strcmp(level, "debug") != 0)
        fprintf(stderr, "seatcore [%s]: %s\n", level, message);
    pthread_mutex_unlock(&log_lock);
}

const char *bench_wal_backend(void)
{
    return wal_backend_line;
}
