/* common_sys.c — clocks, RSS, temporary directories, machine facts, child
 * processes, free ports and the fixed-duration thread runner.
 *
 * Rows run for a fixed wall time rather than a fixed op count: the slow baseline
 * and the fast system under test then take the same time and the whole run has a
 * known length. Threads start together behind a barrier so the window covers
 * only steady work, not thread creation. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

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
        fprintf(stderr, "%s: cannot remove %s: %s\n", program_invocation_short_name, path, strerror(errno));
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

void bench_machine_basics(struct bench_machine *machine, const char *data_parent)
{
    machine->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_model(machine->cpu_model, sizeof(machine->cpu_model));
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(machine->kernel, sizeof(machine->kernel), "%.40s %.100s %.40s", u.sysname, u.release, u.machine);
    snprintf(machine->data_dir, sizeof(machine->data_dir), "%s", data_parent);
    struct statfs fs;
    snprintf(machine->data_fs, sizeof(machine->data_fs), "%s",
             statfs(data_parent, &fs) == 0 ? fs_name((long)fs.f_type) : "unknown");
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(machine->date, sizeof(machine->date), "%Y-%m-%d %H:%M UTC", &tm);
    bench_load_average(machine->load_end, sizeof(machine->load_end));
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

/* ---- processes and ports ---- */

double bench_process_cpu_seconds(pid_t pid)
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

double bench_machine_busy_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return -1;
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle, &iowait, &irq,
                   &softirq, &steal);
    fclose(f);
    if (n < 7)
        return -1;
    /* steal is time the hypervisor gave to another guest: not ours either way,
     * but not available to the bench: count it as busy. */
    return (double)(user + nice + system + irq + softirq + steal) / (double)sysconf(_SC_CLK_TCK);
}

bool bench_find_binary(const char *name, char *path, size_t len)
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

int bench_free_port(void)
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

pid_t bench_spawn(char *const argv[], const char *log_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Child: die with the bench, never outlive it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127); /* the bench died before prctl took effect */
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log_fd >= 0) {
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        close(log_fd);
    }
    /* The bench may have blocked signals (gRPC's layer does): give the child a
     * clean mask so SIGTERM reaches it as its own code expects. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    _exit(127);
}

int bench_stop_child(pid_t pid, uint64_t timeout_ns)
{
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    uint64_t deadline = bench_now_ns() + timeout_ns;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        if (bench_now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        bench_sleep_ns(10000000);
    }
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
            fprintf(stderr, "%s: pthread_create failed: %s\n", program_invocation_short_name, strerror(rc));
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

/* ---- exact latency samples ---- */

#define SAMPLES_CAP (16u << 20) /* 64 MB of uint32: a minute of 250k calls/s */

void bench_samples_add(struct bench_samples *s, uint64_t ns)
{
    if (s->count == s->capacity) {
        size_t grow = s->capacity == 0 ? 4096 : s->capacity * 2;
        if (grow > SAMPLES_CAP)
            grow = SAMPLES_CAP;
        uint32_t *bigger = grow > s->capacity ? realloc(s->values, grow * sizeof(uint32_t)) : NULL;
        if (bigger == NULL) {
            s->dropped++;
            return;
        }
        s->values = bigger;
        s->capacity = grow;
    }
    s->values[s->count++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

void bench_samples_merge(struct bench_samples *into, const struct bench_samples *from)
{
    for (size_t i = 0; i < from->count; i++)
        bench_samples_add(into, from->values[i]);
    into->dropped += from->dropped;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void bench_samples_sort(struct bench_samples *s)
{
    if (s->count > 1)
        qsort(s->values, s->count, sizeof(uint32_t), u32_cmp);
}

double bench_samples_quantile(const struct bench_samples *s, double q)
{
    if (s->count == 0)
        return -1;
    /* nearest rank: the smallest value with at least q of the samples at or below it */
    double rank = q * (double)s->count;
    size_t index = rank <= 1 ? 0 : (size_t)(rank + 0.999999) - 1;
    if (index >= s->count)
        index = s->count - 1;
    return (double)s->values[index];
}

void bench_samples_free(struct bench_samples *s)
{
    free(s->values);
    memset(s, 0, sizeof(*s));
}
