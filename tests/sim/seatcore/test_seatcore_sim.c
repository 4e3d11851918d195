/* test_seatcore_sim.c — deterministic simulation of the engine.
 *
 * A seed drives everything: the operations (holds chosen and best-available,
 * confirms and releases with and without idempotency keys, returns, queue joins
 * and leaves, ticks), clock jumps (forward, and backward as NTP may do), and
 * faults of the simulated disk (short writes, failed syncs, power cuts at any
 * step with every unsynced write applied, dropped, garbled, zeroed or torn).
 * Operations run one at a time and wait for durability, so the expected state
 * is exact: after a power cut and recovery the seats must be as they were
 * after the last acknowledged operation, or after the one that was in flight.
 * An invariant checker runs after every step.
 *
 *   test_seatcore_sim                       a bounded run of seeds (the test suite)
 *   test_seatcore_sim --seed S [--steps N]  replay one seed exactly
 *   test_seatcore_sim --seeds K --steps N   a longer soak (tests/soak/seatcore-sim)
 * A failure prints the seed and the step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seatcore.h"
#include "tk_check.h"
#include "tk_test_support.h"
#include "wal_io_sim.h"

#define EVENT 11u
#define QUEUED 12u
#define SEATS 40u
#define USERS 12u
#define HOLDS_TRACKED 256u

struct tracked_hold {
    uint64_t hold_id;
    uint64_t user;
    int64_t expires_ms;
};

struct seat_view {
    uint8_t state[SEATS];
    uint64_t owner[SEATS];
    int64_t expires_ms[SEATS]; /* for held seats: their hold's expiry */
};

struct sim {
    uint64_t seed;
    uint64_t rng;
    uint32_t step;
    struct tk_clock_manual clock;
    struct wal_io_sim *disk;
    struct wal_io *io;
    struct sc_engine *engine;
    struct tracked_hold holds[HOLDS_TRACKED];
    uint32_t hold_count;
    struct seat_view acked;    /* after the last acknowledged operation */
    uint64_t ops, crashes, io_failures;
    uint8_t key[32];
};

#define SIM_CHECK(sim, cond, ...)                                                                                      \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            trace_dump(), fprintf(stderr, "seed %llu step %u (replay: --seed %llu --steps %u)\n", (unsigned long long)(sim)->seed,  \
                    (sim)->step, (unsigned long long)(sim)->seed, (sim)->step + 1);                                    \
        TK_CHECK(cond, __VA_ARGS__);                                                                                   \
    } while (0)

/* The last operations, kept in memory and printed when a check fails (printing
 * as we go would change the timing enough to hide a failure). */
#define TRACE_LINES 64u
static char trace_ring[TRACE_LINES][200];
static uint32_t trace_next;
#define TRACE(...) snprintf(trace_ring[trace_next++ % TRACE_LINES], sizeof(trace_ring[0]), __VA_ARGS__)

static void trace_dump(void)
{
    for (uint32_t i = trace_next > TRACE_LINES ? trace_next - TRACE_LINES : 0; i < trace_next; i++)
        fputs(trace_ring[i % TRACE_LINES], stderr);
}

static uint64_t rnd(struct sim *sim, uint64_t n)
{
    return tk_test_rand(&sim->rng) % n;
}

static void view_of(struct sim *sim, struct seat_view *out)
{
    for (uint32_t s = 0; s < SEATS; s++) {
        enum sc_seat_state state;
        SIM_CHECK(sim, sc_seat_get(sim->engine, EVENT, s, &state, &out->owner[s]) == TK_OK, "seat_get");
        out->state[s] = (uint8_t)state;
        struct sc_hold_info hold;
        out->expires_ms[s] = state == SC_SEAT_HELD && sc_seat_hold_get(sim->engine, EVENT, s, &hold) == TK_OK
                                 ? hold.expires_at_ms
                                 : INT64_MAX;
    }
}

/* recovered matches reference, except that a hold past its expiry may have been
 * expired (expiries are the engine's own changes, logged on their own, and a
 * torn batch may keep some of them and not the operation that followed). */
static bool same_view(const struct seat_view *recovered, const struct seat_view *reference, int64_t now_ms)
{
    for (uint32_t s = 0; s < SEATS; s++) {
        bool same = recovered->state[s] == reference->state[s] && recovered->owner[s] == reference->owner[s];
        bool expired = reference->state[s] == SC_SEAT_HELD && reference->expires_ms[s] <= now_ms &&
                       recovered->state[s] == SC_SEAT_FREE;
        if (!same && !expired)
            return false;
    }
    return true;
}

static void open_engine(struct sim *sim)
{
    struct sc_engine_config config = {.clock = &sim->clock.base, .io = sim->io, .data_dir = "/sim",
                                      .idempotency_keys = 1u << 10, .wal_ring_bytes = TK_WAL_RING_BYTES_MIN,
                                      .token_key = sim->key, .token_key_len = sizeof(sim->key),
                                      .snapshot_every_bytes = 64u << 10, .log = NULL};
    char err[256];
    enum tk_status status = sc_engine_open(&sim->engine, &config, err, sizeof(err));
    SIM_CHECK(sim, status == TK_OK, "recovery failed: %s (%s)", err, tk_status_name(status));
}

/* ---- the invariant checker ---- */

static void check_invariants(struct sim *sim)
{
    struct sc_event_info info;
    SIM_CHECK(sim, sc_event_get(sim->engine, EVENT, &info) == TK_OK, "event");
    SIM_CHECK(sim, info.counts.free + info.counts.held + info.counts.sold == SEATS, "counts add up");
    uint8_t states[SEATS / 4];
    uint64_t version;
    struct sc_counts counts;
    SIM_CHECK(sim, sc_availability_copy(sim->engine, EVENT, states, sizeof(states), &version, &counts) == TK_OK,
              "availability");
    SIM_CHECK(sim, counts.held == info.counts.held && counts.sold == info.counts.sold,
              "counts word (held %u sold %u) matches the seats (held %u sold %u)", info.counts.held,
              info.counts.sold, counts.held, counts.sold);
    /* Every tracked live hold owns all its seats, and only its owner holds them. */
    uint32_t live = 0;
    for (uint32_t h = 0; h < sim->hold_count; h++) {
        struct sc_hold_info hold;
        if (sc_hold_get(sim->engine, EVENT, sim->holds[h].hold_id, &hold) != TK_OK)
            continue;
        live++;
        SIM_CHECK(sim, hold.user_id == sim->holds[h].user, "hold owner");
        for (uint32_t i = 0; i < hold.seat_count; i++) {
            enum sc_seat_state state;
            uint64_t owner;
            sc_seat_get(sim->engine, EVENT, hold.seats[i], &state, &owner);
            SIM_CHECK(sim, state == SC_SEAT_HELD && owner == hold.user_id, "a live hold owns seat %u",
                      hold.seats[i]);
        }
    }
    SIM_CHECK(sim, live <= info.active_holds, "live tracked holds %u <= active %u", live, info.active_holds);
}

/* ---- operations (each waits for durability, so it is acknowledged or not) ---- */

/* true: acknowledged; false: the disk failed under it (the engine has stopped). */
static bool wait_ack(struct sim *sim, enum tk_status status, uint64_t lsn)
{
    if (status == TK_ERR_IO || status == TK_ERR_UNAVAILABLE)
        return false;
    return sc_engine_wait_durable(sim->engine, lsn) == TK_OK;
}

static bool op_hold(struct sim *sim)
{
    struct sc_hold_request request = {.event_id = EVENT, .user_id = 1 + rnd(sim, USERS)};
    if (rnd(sim, 3) == 0) {
        request.best_count = 1 + (uint32_t)rnd(sim, 3);
        request.best_section = (int32_t)rnd(sim, 3) - 1;
    } else {
        request.seat_count = 1 + (uint32_t)rnd(sim, 3);
        uint32_t seat = (uint32_t)rnd(sim, SEATS);
        for (uint32_t i = 0; i < request.seat_count; i++, seat += 1 + (uint32_t)rnd(sim, 4))
            request.seats[i] = seat % SEATS;
    }
    if (rnd(sim, 4) == 0)
        request.idempotency_key = 1 + rnd(sim, 20);
    struct sc_hold_result result;
    uint64_t lsn;
    enum tk_status status = sc_hold(sim->engine, &request, &result, &lsn);
    TRACE("step %u hold user %llu n %u best %u seats %u,%u,%u -> %s hold %llx lsn %llu\n", sim->step,
          (unsigned long long)request.user_id, request.seat_count, request.best_count, result.seats[0], result.seats[1],
          result.seats[2], tk_status_name(status), (unsigned long long)result.hold_id, (unsigned long long)lsn);
    if (!wait_ack(sim, status, lsn))
        return false;
    if (status == TK_OK && !result.replayed && sim->hold_count < HOLDS_TRACKED)
        sim->holds[sim->hold_count++] = (struct tracked_hold){result.hold_id, request.user_id, result.expires_at_ms};
    return true;
}

static bool op_end(struct sim *sim)
{
    if (sim->hold_count == 0)
        return true;
    uint32_t pick = (uint32_t)rnd(sim, sim->hold_count);
    struct tracked_hold hold = sim->holds[pick];
    uint64_t user = rnd(sim, 8) == 0 ? 1 + rnd(sim, USERS) : hold.user;
    uint64_t lsn = 0;
    enum tk_status status;
    if (rnd(sim, 2) == 0) {
        struct sc_hold_result result;
        status = sc_confirm(sim->engine, EVENT, user, hold.hold_id, rnd(sim, 2) ? 1 + rnd(sim, 50) : 0, &result, &lsn);
    } else {
        status = sc_release(sim->engine, EVENT, user, hold.hold_id, &lsn);
    }
    TRACE("step %u end hold %llx user %llu -> %s lsn %llu\n", sim->step, (unsigned long long)hold.hold_id,
          (unsigned long long)user, tk_status_name(status), (unsigned long long)lsn);
    if (status == TK_OK || status == TK_ERR_NOT_FOUND || status == TK_ERR_HOLD_EXPIRED)
        sim->holds[pick] = sim->holds[--sim->hold_count];
    return wait_ack(sim, status, lsn);
}

static bool op_return(struct sim *sim)
{
    uint32_t seat = (uint32_t)rnd(sim, SEATS);
    enum sc_seat_state state;
    uint64_t owner, lsn = 0;
    sc_seat_get(sim->engine, EVENT, seat, &state, &owner);
    uint64_t user = state == SC_SEAT_SOLD && rnd(sim, 4) ? owner : 1 + rnd(sim, USERS);
    enum tk_status status = sc_return_seat(sim->engine, EVENT, user, seat, &lsn);
    TRACE("step %u return seat %u user %llu -> %s lsn %llu\n", sim->step, seat, (unsigned long long)user,
          tk_status_name(status), (unsigned long long)lsn);
    return wait_ack(sim, status, lsn);
}

static bool op_queue(struct sim *sim)
{
    uint64_t user = 1 + rnd(sim, USERS * 4), lsn = 0;
    struct sc_queue_view view;
    enum tk_status status;
    switch (rnd(sim, 3)) {
    case 0:
        status = sc_queue_join(sim->engine, QUEUED, user, &view, &lsn);
        break;
    case 1:
        status = sc_queue_leave(sim->engine, QUEUED, user, &lsn);
        break;
    default:
        status = sc_queue_status(sim->engine, QUEUED, user, &view, &lsn);
        break;
    }
    return wait_ack(sim, status, lsn);
}

static bool op_tick(struct sim *sim)
{
    uint64_t lsn = sc_engine_tick(sim->engine);
    TRACE("step %u tick lsn %llu health %s\n", sim->step, (unsigned long long)lsn,
          tk_status_name(sc_engine_health(sim->engine)));
    return wait_ack(sim, TK_OK, lsn);
}

static void op_clock(struct sim *sim)
{
    uint64_t dice = rnd(sim, 10);
    int64_t delta = dice < 6 ? (int64_t)rnd(sim, 3000) : dice < 9 ? (int64_t)rnd(sim, 90000) : -(int64_t)rnd(sim, 5000);
    if (tk_clock_now_ms(&sim->clock.base) + delta > 0)
        tk_clock_manual_advance(&sim->clock, delta);
}

/* ---- crashes ---- */

/* Power back, recovery, and the durability check: the seats must be as after
 * the last acknowledged operation, or as after the one in flight. */
static void recover_and_check(struct sim *sim, const struct seat_view *in_flight)
{
    TRACE("step %u power cut / failed sync: recovering\n", sim->step);
    sc_engine_close(sim->engine);
    wal_io_sim_reboot(sim->disk, sim->seed ^ ((uint64_t)sim->step << 20),
                      (enum wal_io_sim_fate)rnd(sim, WAL_IO_SIM_FATE_COUNT));
    open_engine(sim);
    struct seat_view recovered;
    view_of(sim, &recovered);
    int64_t now = tk_clock_now_ms(&sim->clock.base);
    bool ok = same_view(&recovered, &sim->acked, now) || (in_flight != NULL && same_view(&recovered, in_flight, now));
    for (uint32_t s = 0; !ok && s < SEATS; s++)
        fprintf(stderr, "seat %2u: acked %u/%llu (exp %lld) in flight %u/%llu recovered %u/%llu\n", s,
                sim->acked.state[s], (unsigned long long)sim->acked.owner[s],
                (long long)(sim->acked.expires_ms[s] == INT64_MAX ? -1 : sim->acked.expires_ms[s] - now),
                in_flight ? in_flight->state[s] : 9, in_flight ? (unsigned long long)in_flight->owner[s] : 0,
                recovered.state[s], (unsigned long long)recovered.owner[s]);
    SIM_CHECK(sim, ok, "after recovery the seats match neither the last acknowledged state nor the one in flight");
    sim->acked = recovered;
    sim->crashes++;
}

static void maybe_fault(struct sim *sim)
{
    uint64_t dice = rnd(sim, 1000);
    if (dice < 8) { /* a power cut at one of the next few syncs */
        struct wal_io_sim_faults faults = {.crash_at_sync = 1 + rnd(sim, 3),
                                           .short_write_per_mille = (uint32_t)rnd(sim, 200)};
        wal_io_sim_set_faults(sim->disk, &faults);
    } else if (dice < 12) { /* a sync that fails: the engine must stop, not acknowledge */
        struct wal_io_sim_faults faults = {.fail_sync_at = 1 + rnd(sim, 3), .fail_sync_errno = 5};
        wal_io_sim_set_faults(sim->disk, &faults);
    }
}

static void sim_step(struct sim *sim)
{
    maybe_fault(sim);
    uint64_t dice = rnd(sim, 100);
    bool acked = true;
    if (dice < 40)
        acked = op_hold(sim);
    else if (dice < 65)
        acked = op_end(sim);
    else if (dice < 72)
        acked = op_return(sim);
    else if (dice < 84)
        acked = op_queue(sim);
    else if (dice < 92)
        acked = op_tick(sim);
    else
        op_clock(sim);
    sim->ops++;
    struct seat_view now;
    view_of(sim, &now);
    if (!acked || wal_io_sim_crashed(sim->disk) || sc_engine_health(sim->engine) != TK_OK) {
        if (!wal_io_sim_crashed(sim->disk))
            sim->io_failures++;
        recover_and_check(sim, &now);
    } else {
        sim->acked = now;
    }
    check_invariants(sim);
}

static void sim_setup_events(struct sim *sim)
{
    struct sc_event_spec spec;
    tk_test_spec(&spec, EVENT, 2, 4, SEATS / 8);
    spec.hold_ttl_ms = 20000;
    spec.max_seats_per_user = 6;
    spec.holds_max = 16;
    uint64_t lsn;
    enum tk_status created = sc_event_create(sim->engine, &spec, &lsn);
    SIM_CHECK(sim, created == TK_OK, "create: %s", tk_status_name(created));
    tk_test_spec(&spec, QUEUED, 1, 1, 4);
    spec.queue = (struct sc_queue_spec){.enabled = true, .admit_per_s = 3, .max_active = 5, .length_max = 512,
                                        .randomize_pre_open = true};
    spec.sale_opens_at_ms = tk_clock_now_ms(&sim->clock.base) + 10000;
    created = sc_event_create(sim->engine, &spec, &lsn);
    SIM_CHECK(sim, created == TK_OK, "create queued: %s", tk_status_name(created));
    SIM_CHECK(sim, sc_engine_wait_durable(sim->engine, lsn) == TK_OK, "durable");
    view_of(sim, &sim->acked);
}

static void sim_run(uint64_t seed, uint32_t steps, bool verbose)
{
    struct sim *sim = calloc(1, sizeof(*sim));
    TK_CHECK(sim != NULL, "out of memory");
    sim->seed = seed;
    sim->rng = seed ? seed : 1;
    memset(sim->key, 0x5a, sizeof(sim->key));
    tk_clock_manual_init(&sim->clock, 1700000000000LL);
    sim->disk = wal_io_sim_create(seed);
    sim->io = wal_io_sim_io(sim->disk);
    open_engine(sim);
    sim_setup_events(sim);
    for (sim->step = 0; sim->step < steps; sim->step++)
        sim_step(sim);
    if (verbose)
        fprintf(stderr, "seed %llu: %llu ops, %llu power cuts, %llu failed syncs: ok\n", (unsigned long long)seed,
                (unsigned long long)sim->ops, (unsigned long long)sim->crashes,
                (unsigned long long)sim->io_failures);
    sc_engine_close(sim->engine);
    wal_io_destroy(sim->io);
    free(sim);
}

int main(int argc, char **argv)
{
    uint64_t seed = 0, seeds = 12;
    uint32_t steps = 1500;
    bool one = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seed")) {
            seed = strtoull(argv[i + 1], NULL, 0);
            one = true;
        } else if (!strcmp(argv[i], "--seeds")) {
            seeds = strtoull(argv[i + 1], NULL, 0);
        } else if (!strcmp(argv[i], "--steps")) {
            steps = (uint32_t)strtoul(argv[i + 1], NULL, 0);
        }
    }
    if (one) {
        sim_run(seed, steps, true);
        return 0;
    }
    uint64_t base = tk_test_seed("seatcore_sim");
    for (uint64_t i = 0; i < seeds; i++)
        sim_run(base + i * 7919, steps, true);
    fprintf(stderr, "seatcore_sim: %llu seeds passed\n", (unsigned long long)seeds);
    return 0;
}
