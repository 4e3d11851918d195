/* bench_sys.c — clocks, RSS, temporary directories, machine facts, the engine
 * log sink and the fixed-duration thread runner.
 *
 * Rows run for a fixed wall time rather than a fixed op count: the slow baseline
 * and the fast engine then take the same time and the whole run has a known
 * length. Threads start together behind a barrier so the window covers only
 * steady work, not thread creation. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

int bench_tempdir(const char *parent, const char *prefix, char *path, size_t path_len)
{
    int n = snprintf(path, path_len, "%s/%s.XXXXXX", parent, prefix);
    if (n < 0 || (size_t)n >= path_len)
        return -1;
    return mkdtemp(path) == NULL ? -1 : 0;
}

static int rmtree_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "seatcore-bench: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

void bench_rmtree(const char *path)
{
    if (path == NULL || path[0] == '\0' || strcmp(path, "/") == 0)
        return;
    nftw(path, rmtree_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- machine ---- */

static void cpu_model(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(out, len, "%s", colon);
        break;
    }
    fclose(f);
}

static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0xEF53:
        return "ext4";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x01021994:
        return "tmpfs (not a real disk!)";
    case 0x794c7630:
        return "overlayfs";
    default:
        return "other";
    }
}

void bench_load_average(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL)
        return;
    double one, five, fifteen;
    if (fscanf(f, "%lf %lf %lf", &one, &five, &fifteen) == 3)
        snprintf(out, len, "%.2f %.2f %.2f", one, five, fifteen);
    fclose(f);
}

/* Fills everything but load_start, which main takes before the first row. */
void bench_machine_fill(struct bench_machine *machine, const struct bench_options *options)
{
    machine->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_model(machine->cpu_model, sizeof(machine->cpu_model));
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(machine->kernel, sizeof(machine->kernel), "%.40s %.100s %.40s", u.sysname, u.release, u.machine);
    snprintf(machine->data_dir, sizeof(machine->data_dir), "%s", options->data_parent);
    struct statfs fs;
    snprintf(machine->data_fs, sizeof(machine->data_fs), "%s",
             statfs(options->data_parent, &fs) == 0 ? fs_name((long)fs.f_type) : "unknown");
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(machine->date, sizeof(machine->date), "%Y-%m-%d %H:%M UTC", &tm);
    snprintf(machine->wal_backend, sizeof(machine->wal_backend), "%s", bench_wal_backend());
    bench_load_average(machine->load_end, sizeof(machine->load_end));
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

/* ---- histograms ---- */

struct tk_histogram *bench_histogram_new(void)
{
    struct tk_histogram *h = aligned_alloc(64, (sizeof(*h) + 63) / 64 * 64);
    if (h != NULL)
        tk_histogram_reset(h);
    return h;
}

void bench_histogram_free(struct tk_histogram *histogram)
{
    free(histogram);
}

/* ---- thread runner ---- */

static pthread_barrier_t start_barrier;

void bench_thread_ready(void)
{
    pthread_barrier_wait(&start_barrier);
}

double bench_cpu_seconds(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return 0;
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 + (double)usage.ru_stime.tv_sec +
           (double)usage.ru_stime.tv_usec / 1e6;
}

uint64_t bench_run_threads(struct bench_threads *run)
{
    pthread_t tids[64];
    if (run->count == 0 || run->count > 64)
        return 0;
    pthread_barrier_init(&start_barrier, NULL, run->count + 1);
    atomic_store(run->stop, false);
    for (uint32_t i = 0; i < run->count; i++) {
        int rc = pthread_create(&tids[i], NULL, run->fn, run->args[i]);
        if (rc != 0) {
            /* The started threads wait on a barrier that can no longer fill; a
             * machine that cannot start two threads cannot run this bench anyway. */
            fprintf(stderr, "seatcore-bench: pthread_create failed: %s\n", strerror(rc));
            exit(2);
        }
    }
    pthread_barrier_wait(&start_barrier);
    uint64_t t0 = bench_now_ns();
    double cpu0 = bench_cpu_seconds();
    bench_sleep_ns((uint64_t)(run->seconds * 1e9));
    if (run->at_window_end != NULL)
        run->at_window_end(run->ctx);
    uint64_t t1 = bench_now_ns();
    run->cpu_seconds = bench_cpu_seconds() - cpu0;
    atomic_store_explicit(run->stop, true, memory_order_release);
    for (uint32_t i = 0; i < run->count; i++)
        pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&start_barrier);
    return t1 - t0;
}
