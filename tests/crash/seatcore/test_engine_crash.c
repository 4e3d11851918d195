/* test_engine_crash.c — crashes of the engine, checked against what callers
 * were told.
 *
 * 1. Simulated disk: the engine runs on wal_io_sim; at the Nth sync the disk
 *    "loses power" and every write since the last sync is applied, dropped,
 *    garbled, zeroed or torn. After reboot and recovery the seats must look
 *    exactly as they did after some prefix of the submitted operations that
 *    includes every acknowledged one (a single driver thread submits in order,
 *    so that is the exact meaning of "every acknowledged operation, and nothing
 *    that was not submitted").
 * 2. kill -9: a child process drives the engine on a real directory with two
 *    threads (each on its own seats) and reports every operation before it runs
 *    and again once it is durable; the parent kills it mid-flight, recovers,
 *    and checks each thread's seats the same way. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "seatcore.h"
#include "tk_test_support.h"
#include "wal_io_sim.h"

#define EVENT 8u
#define SEATS 32u
#define OPS_MAX 4000u

struct seat_view {
    uint8_t state[SEATS];
    uint64_t owner[SEATS];
};

static struct tk_clock_manual clock_;

static void view_of(struct sc_engine *engine, struct seat_view *out)
{
    for (uint32_t s = 0; s < SEATS; s++) {
        enum sc_seat_state state;
        cr_assert_eq(sc_seat_get(engine, EVENT, s, &state, &out->owner[s]), TK_OK);
        out->state[s] = (uint8_t)state;
    }
}

static struct sc_engine *open_on(struct wal_io *io, const char *data_dir, const struct tk_clock *clock)
{
    struct sc_engine_config config = {.clock = clock, .io = io, .data_dir = data_dir, .idempotency_keys = 1u << 10,
                                      .wal_ring_bytes = TK_WAL_RING_BYTES_MIN};
    struct sc_engine *engine = NULL;
    char err[256];
    enum tk_status status = sc_engine_open(&engine, &config, err, sizeof(err));
    cr_assert_eq(status, TK_OK, "recovery failed: %s", err);
    return engine;
}

static void create_event(struct sc_engine *engine)
{
    struct sc_event_spec spec;
    tk_test_spec(&spec, EVENT, 1, 4, SEATS / 4);
    spec.max_seats_per_user = 100;
    spec.hold_ttl_ms = TK_HOLD_TTL_MS_MAX;
    uint64_t lsn;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_OK);
}

/* ---- a driver that only submits operations it knows will succeed ---- */

struct driver {
    uint64_t seed;
    uint32_t first_seat, seat_count; /* the seats this driver owns */
    uint64_t user;
    uint64_t holds[SEATS];
    uint32_t hold_seat[SEATS];
    uint32_t hold_count;
    bool sold[SEATS];
    bool busy[SEATS]; /* held or sold */
};

/* Called after the driver decided an operation and updated its own picture of
 * the seats, before the engine sees the operation. */
typedef void (*driver_hook)(void *ctx, const struct driver *d);

#define DRIVER_REFUSED UINT64_MAX         /* the engine did nothing: it had stopped */
#define DRIVER_FAILED (UINT64_MAX - 1u)   /* applied in memory, but its log write failed */

/* One operation; returns its LSN, 0 if it chose to do nothing, DRIVER_REFUSED or
 * DRIVER_FAILED when the engine's disk died. A failed operation was submitted: it
 * may or may not survive a crash, and either is correct since nobody was told. */
static uint64_t driver_step(struct driver *d, struct sc_engine *engine, driver_hook hook, void *hook_ctx)
{
    uint32_t dice = (uint32_t)(tk_test_rand(&d->seed) % 10);
    uint64_t lsn = 0;
    enum tk_status status;
    if (dice < 5) {
        uint32_t s = d->first_seat + (uint32_t)(tk_test_rand(&d->seed) % d->seat_count);
        if (d->busy[s])
            return 0;
        d->busy[s] = true;
        if (hook)
            hook(hook_ctx, d);
        struct sc_hold_request request = {.event_id = EVENT, .user_id = d->user, .seat_count = 1, .seats = {s}};
        struct sc_hold_result result;
        status = sc_hold(engine, &request, &result, &lsn);
        d->holds[d->hold_count] = result.hold_id;
        d->hold_seat[d->hold_count++] = s;
    } else if (dice < 8 && d->hold_count > 0) {
        uint32_t pick = (uint32_t)(tk_test_rand(&d->seed) % d->hold_count);
        uint64_t hold = d->holds[pick];
        uint32_t s = d->hold_seat[pick];
        d->holds[pick] = d->holds[--d->hold_count];
        d->hold_seat[pick] = d->hold_seat[d->hold_count];
        bool confirm = dice == 5 || dice == 6;
        d->sold[s] = confirm;
        d->busy[s] = confirm;
        if (hook)
            hook(hook_ctx, d);
        struct sc_hold_result result;
        status = confirm ? sc_confirm(engine, EVENT, d->user, hold, 0, &result, &lsn)
                         : sc_release(engine, EVENT, d->user, hold, &lsn);
    } else {
        uint32_t s = d->first_seat + (uint32_t)(tk_test_rand(&d->seed) % d->seat_count);
        if (!d->sold[s])
            return 0;
        d->sold[s] = d->busy[s] = false;
        if (hook)
            hook(hook_ctx, d);
        status = sc_return_seat(engine, EVENT, d->user, s, &lsn);
    }
    if (status == TK_ERR_IO)
        return DRIVER_FAILED;
    if (status != TK_OK)
        return DRIVER_REFUSED;
    cr_assert_neq(lsn, 0, "a durable engine logs every change");
    return lsn;
}

static bool same_seats(const struct seat_view *a, const struct seat_view *b, uint32_t first, uint32_t count)
{
    for (uint32_t s = first; s < first + count; s++)
        if (a->state[s] != b->state[s] || a->owner[s] != b->owner[s])
            return false;
    return true;
}

/* ---- 1. simulated power loss ---- */

struct ack_counter {
    _Atomic uint32_t acked; /* highest op index acknowledged + 1 */
    uint32_t index;
};

struct ack {
    struct ack_counter *counter;
    uint32_t index;
};

static struct ack acks[OPS_MAX];

static void on_durable(void *ctx, enum tk_status status)
{
    struct ack *a = ctx;
    if (status != TK_OK)
        return;
    uint32_t seen = atomic_load(&a->counter->acked);
    while (a->index + 1 > seen && !atomic_compare_exchange_weak(&a->counter->acked, &seen, a->index + 1)) {
    }
}

static void power_loss_round(uint64_t seed, uint64_t crash_at_sync, enum wal_io_sim_fate fate)
{
    tk_clock_manual_init(&clock_, 1700000000000LL);
    struct wal_io_sim *sim = wal_io_sim_create(seed);
    struct wal_io *io = wal_io_sim_io(sim);
    struct sc_engine *engine = open_on(io, "/data", &clock_.base);
    create_event(engine);
    static struct seat_view views[OPS_MAX + 1];
    view_of(engine, &views[0]);
    struct ack_counter counter = {0};
    struct driver d = {.seed = seed | 1, .first_seat = 0, .seat_count = SEATS, .user = 42};
    struct wal_io_sim_faults faults = {.crash_at_sync = crash_at_sync};
    wal_io_sim_set_faults(sim, &faults);
    uint32_t ops = 0;
    for (uint32_t i = 0; i < OPS_MAX && !wal_io_sim_crashed(sim); i++) {
        uint64_t lsn = driver_step(&d, engine, NULL, NULL);
        if (lsn == DRIVER_REFUSED)
            break;
        if (lsn == DRIVER_FAILED) {
            view_of(engine, &views[++ops]);
            break;
        }
        if (lsn == 0)
            continue; /* nothing submitted */
        acks[ops] = (struct ack){.counter = &counter, .index = ops};
        if (sc_engine_when_durable(engine, lsn, on_durable, &acks[ops]))
            on_durable(&acks[ops], TK_OK);
        view_of(engine, &views[++ops]);
        if (ops % 16 == 0)
            usleep(200); /* let group commit cut several batches */
    }
    sc_engine_close(engine); /* the WAL has failed: close fails every waiter and returns */
    uint32_t acked = atomic_load(&counter.acked);
    wal_io_sim_reboot(sim, seed * 31 + 7, fate);
    engine = open_on(io, "/data", &clock_.base);
    struct seat_view recovered;
    view_of(engine, &recovered);
    bool found = false;
    for (uint32_t m = acked; m <= ops && !found; m++)
        found = same_seats(&recovered, &views[m], 0, SEATS);
    if (!found) {
        for (uint32_t m = 0; m <= ops; m++) {
            fprintf(stderr, "state %3u:", m);
            for (uint32_t st = 0; st < SEATS; st++)
                fprintf(stderr, "%d", views[m].state[st]);
            fprintf(stderr, "\n");
        }
        fprintf(stderr, "recovered:");
        for (uint32_t st = 0; st < SEATS; st++)
            fprintf(stderr, "%d", recovered.state[st]);
        fprintf(stderr, "\n");
    }
    cr_assert(found, "seed %llu crash at sync %llu fate %d: recovered seats match no state from op %u (acked) to %u",
              (unsigned long long)seed, (unsigned long long)crash_at_sync, fate, acked, ops);
    tk_test_check_counts(engine, EVENT);
    sc_engine_close(engine);
    wal_io_destroy(io);
}

Test(engine_crash, power_loss_keeps_every_acknowledged_operation, .timeout = 300)
{
    uint64_t seed = tk_test_seed("engine_crash.power_loss");
    for (uint32_t round = 0; round < 60; round++) {
        uint64_t s = seed + round * 7919;
        enum wal_io_sim_fate fate = (enum wal_io_sim_fate)(round % WAL_IO_SIM_FATE_COUNT);
        power_loss_round(s, 3 + tk_test_rand(&s) % 40, fate);
    }
}

/* ---- 2. kill -9 of a driver process ---- */

#define KILL_THREADS 2u

struct child_thread {
    pthread_t thread;
    struct driver driver;
    struct sc_engine *engine;
    int fd;
    uint32_t index;
    uint32_t ops; /* operations submitted so far */
};

/* Line protocol on the pipe (each write is one atomic write: < PIPE_BUF):
 *   "S t i s0..sN\n"  thread t is about to submit op i; the seats after it
 *   "A t i\n"         op i of thread t is durable (acknowledged)
 * The S line is written before the engine sees the op, so every state a
 * recovery may legitimately show was reported first. */
static void report_planned(void *ctx, const struct driver *d)
{
    struct child_thread *ct = ctx;
    char line[512];
    int n = snprintf(line, sizeof(line), "S %u %u", ct->index, ct->ops);
    for (uint32_t s = d->first_seat; s < d->first_seat + d->seat_count; s++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " %d", d->sold[s] ? 2 : d->busy[s] ? 1 : 0);
    n += snprintf(line + n, sizeof(line) - (size_t)n, "\n");
    if (write(ct->fd, line, (size_t)n) != n)
        _exit(4);
}

static void *child_thread_main(void *arg)
{
    struct child_thread *ct = arg;
    for (;;) {
        uint64_t lsn = driver_step(&ct->driver, ct->engine, report_planned, ct);
        if (lsn == 0)
            continue;
        if (lsn >= DRIVER_FAILED || sc_engine_wait_durable(ct->engine, lsn) != TK_OK)
            return NULL;
        char line[64];
        int n = snprintf(line, sizeof(line), "A %u %u\n", ct->index, ct->ops);
        if (write(ct->fd, line, (size_t)n) != n)
            return NULL;
        ct->ops++;
    }
}

static void child_main(const char *data_dir, int fd, uint64_t seed)
{
    struct sc_engine *engine = open_on(NULL, data_dir, &tk_clock_real);
    create_event(engine);
    if (write(fd, "R\n", 2) != 2)
        _exit(3);
    static struct child_thread threads[KILL_THREADS];
    for (uint32_t t = 0; t < KILL_THREADS; t++) {
        threads[t] = (struct child_thread){.engine = engine, .fd = fd, .index = t};
        threads[t].driver = (struct driver){.seed = seed + t + 1, .first_seat = t * (SEATS / KILL_THREADS),
                                            .seat_count = SEATS / KILL_THREADS, .user = 100 + t};
        pthread_create(&threads[t].thread, NULL, child_thread_main, &threads[t]);
    }
    for (uint32_t t = 0; t < KILL_THREADS; t++)
        pthread_join(threads[t].thread, NULL);
    _exit(0);
}

struct thread_log {
    uint8_t (*states)[SEATS / KILL_THREADS]; /* after op i */
    uint32_t reported, acked;
};

static void parse_line(char *line, struct thread_log *logs)
{
    unsigned t, i;
    if (line[0] == 'A' && sscanf(line, "A %u %u", &t, &i) == 2 && t < KILL_THREADS) {
        if (i + 1 > logs[t].acked)
            logs[t].acked = i + 1;
    } else if (line[0] == 'S' && sscanf(line, "S %u %u", &t, &i) == 2 && t < KILL_THREADS && i < 200000) {
        char *p = line + 2;
        strtoul(p, &p, 10);
        strtoul(p, &p, 10);
        for (uint32_t s = 0; s < SEATS / KILL_THREADS; s++)
            logs[t].states[i][s] = (uint8_t)strtoul(p, &p, 10);
        logs[t].reported = i + 1;
    }
}

Test(engine_crash, kill_9_under_load_loses_nothing_acknowledged, .timeout = 300)
{
    uint64_t seed = tk_test_seed("engine_crash.kill9");
    for (uint32_t round = 0; round < 4; round++) {
        char dir[256];
        tk_test_tempdir(dir, sizeof(dir), "kill9");
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, fds[1], seed + round);
        }
        close(fds[1]);
        struct thread_log logs[KILL_THREADS];
        for (uint32_t t = 0; t < KILL_THREADS; t++) {
            logs[t] = (struct thread_log){.states = calloc(200000, SEATS / KILL_THREADS)};
        }
        FILE *in = fdopen(fds[0], "r");
        char line[512];
        cr_assert(fgets(line, sizeof(line), in) != NULL && line[0] == 'R', "child did not start");
        uint64_t kill_after_ms = 150 + (seed + round) % 400;
        uint64_t start = tk_monotonic_ns();
        bool killed = false;
        while (fgets(line, sizeof(line), in) != NULL) {
            parse_line(line, logs);
            if (!killed && tk_monotonic_ns() - start > kill_after_ms * 1000000u) {
                kill(pid, SIGKILL);
                killed = true;
            }
        }
        fclose(in);
        int wstatus;
        waitpid(pid, &wstatus, 0);
        cr_assert(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL, "the child died by kill -9");
        struct sc_engine *engine = open_on(NULL, dir, &tk_clock_real);
        struct seat_view recovered;
        view_of(engine, &recovered);
        for (uint32_t t = 0; t < KILL_THREADS; t++) {
            uint32_t first = t * (SEATS / KILL_THREADS);
            cr_assert_gt(logs[t].acked, 10, "thread %u made progress before the kill", t);
            bool found = false;
            /* The state after op m, for some m from the last acknowledged op to
             * the last one reported (m = 0: nothing at all). */
            for (uint32_t m = logs[t].acked; m <= logs[t].reported && !found; m++) {
                bool same = true;
                for (uint32_t s = 0; s < SEATS / KILL_THREADS && same; s++) {
                    uint8_t want = m == 0 ? 0 : logs[t].states[m - 1][s];
                    same = recovered.state[first + s] == want &&
                           (want == 0 ? recovered.owner[first + s] == 0 : recovered.owner[first + s] == 100 + t);
                }
                found = same;
            }
            cr_assert(found,
                      "round %u thread %u: recovered seats match no state from op %u (acked) to %u", round, t,
                      logs[t].acked, logs[t].reported);
            free(logs[t].states);
        }
        tk_test_check_counts(engine, EVENT);
        sc_engine_close(engine);
        tk_test_rmtree(dir);
    }
}
