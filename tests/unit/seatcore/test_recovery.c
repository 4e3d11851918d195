/* test_recovery.c — durability and recovery of the engine (engine_open.c,
 * snapshot.c): state survives close/reopen through the WAL alone, through a
 * snapshot plus the WAL after it, through a corrupt newest snapshot; a data
 * directory that cannot be recovered is refused with a clear message; a failing
 * disk stops writes instead of acknowledging them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "seatcore.h"
#include "tk_test_support.h"
#include "wal_io_sim.h"

#define EVENT 5u
#define QUIET_EVENT 6u

static struct tk_clock_manual clock_;
static char dir[256];

static struct sc_engine *open_engine(struct wal_io *io, enum tk_status expect, char *err, size_t err_len)
{
    struct sc_engine_config config = {.clock = &clock_.base, .data_dir = dir, .io = io,
                                      .idempotency_keys = 1u << 12, .wal_ring_bytes = TK_WAL_RING_BYTES_MIN};
    struct sc_engine *engine = NULL;
    char local[512];
    if (err == NULL) {
        err = local;
        err_len = sizeof(local);
    }
    enum tk_status status = sc_engine_open(&engine, &config, err, err_len);
    cr_assert_eq(status, expect, "open: %s (%s)", tk_status_name(status), err);
    return engine;
}

static void setup(void)
{
    tk_clock_manual_init(&clock_, 1700000000000LL);
    tk_test_tempdir(dir, sizeof(dir), "recovery");
}

static void teardown(void)
{
    tk_test_rmtree(dir);
}

TestSuite(recovery, .init = setup, .fini = teardown);

static void wait(struct sc_engine *engine, uint64_t lsn)
{
    cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_OK);
}

static uint64_t first_confirmed; /* confirmed with idempotency key 1000 */

/* A mixed history: returns the id of the one hold left active. */
static uint64_t make_history(struct sc_engine *engine)
{
    struct sc_event_spec spec;
    tk_test_spec(&spec, EVENT, 2, 5, 10);
    spec.max_seats_per_user = 10;
    uint64_t lsn, hold, live;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    wait(engine, lsn);
    tk_test_spec(&spec, QUIET_EVENT, 1, 1, 4);
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    cr_assert_eq(sc_event_close(engine, QUIET_EVENT, &lsn), TK_OK);
    wait(engine, lsn);
    for (uint32_t i = 0; i < 30; i++) {
        uint32_t seats[2] = {i * 3, i * 3 + 1};
        cr_assert_eq(tk_test_hold(engine, EVENT, 100 + i % 7, seats, 2, &hold), TK_OK);
        struct sc_hold_result result;
        if (i == 0)
            first_confirmed = hold;
        if (i % 3 == 0) {
            cr_assert_eq(sc_confirm(engine, EVENT, 100 + i % 7, hold, 1000 + i, &result, &lsn), TK_OK);
        } else if (i % 3 == 1) {
            cr_assert_eq(sc_release(engine, EVENT, 100 + i % 7, hold, &lsn), TK_OK);
        } else {
            continue;
        }
        wait(engine, lsn);
    }
    cr_assert_eq(sc_return_seat(engine, EVENT, 100, 0, &lsn), TK_OK);
    wait(engine, lsn);
    struct sc_hold_request request = {.event_id = EVENT, .user_id = 999, .seat_count = 1, .seats = {95},
                                      .idempotency_key = 31337};
    struct sc_hold_result result;
    cr_assert_eq(sc_hold(engine, &request, &result, &lsn), TK_OK);
    wait(engine, lsn);
    live = result.hold_id;
    return live;
}

struct state {
    enum sc_seat_state seats[100];
    uint64_t owners[100];
    struct sc_event_info info;
    struct sc_event_info quiet;
};

static void capture(struct sc_engine *engine, struct state *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t seat = 0; seat < 100; seat++)
        cr_assert_eq(sc_seat_get(engine, EVENT, seat, &out->seats[seat], &out->owners[seat]), TK_OK);
    cr_assert_eq(sc_event_get(engine, EVENT, &out->info), TK_OK);
    cr_assert_eq(sc_event_get(engine, QUIET_EVENT, &out->quiet), TK_OK);
}

static void assert_same(const struct state *a, const struct state *b)
{
    for (uint32_t seat = 0; seat < 100; seat++) {
        cr_assert_eq(a->seats[seat], b->seats[seat], "seat %u state", seat);
        cr_assert_eq(a->owners[seat], b->owners[seat], "seat %u owner", seat);
    }
    cr_assert_eq(a->info.counts.held, b->info.counts.held);
    cr_assert_eq(a->info.counts.sold, b->info.counts.sold);
    cr_assert_eq(a->info.active_holds, b->info.active_holds);
    cr_assert_eq(a->quiet.state, SC_EVENT_CLOSED);
    cr_assert_eq(b->quiet.state, SC_EVENT_CLOSED);
}

static void assert_live_hold_and_keys(struct sc_engine *engine, uint64_t live)
{
    struct sc_hold_info info;
    cr_assert_eq(sc_hold_get(engine, EVENT, live, &info), TK_OK);
    cr_assert_eq(info.user_id, 999);
    struct sc_hold_request request = {.event_id = EVENT, .user_id = 999, .seat_count = 1, .seats = {95},
                                      .idempotency_key = 31337};
    struct sc_hold_result result;
    uint64_t lsn;
    cr_assert_eq(sc_hold(engine, &request, &result, &lsn), TK_OK);
    cr_assert(result.replayed, "the idempotency key survived the restart");
    cr_assert_eq(result.hold_id, live);
    cr_assert_eq(sc_confirm(engine, EVENT, 100, first_confirmed, 1000, &result, &lsn), TK_OK,
                 "confirm key 1000 replays");
    cr_assert(result.replayed);
    tk_test_check_counts(engine, EVENT);
}

Test(recovery, state_survives_a_restart_from_the_wal_alone)
{
    struct sc_engine *engine = open_engine(NULL, TK_OK, NULL, 0);
    uint64_t live = make_history(engine);
    struct state before, after;
    capture(engine, &before);
    sc_engine_close(engine);
    engine = open_engine(NULL, TK_OK, NULL, 0);
    capture(engine, &after);
    assert_same(&before, &after);
    assert_live_hold_and_keys(engine, live);
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, 100, (uint32_t[]){0}, 1, &hold), TK_OK, "returned seat is for sale");
    cr_assert_eq(tk_test_hold(engine, EVENT, 100, (uint32_t[]){9}, 1, &hold), TK_ERR_SEAT_CONFLICT, "sold stays");
    sc_engine_close(engine);
}

Test(recovery, snapshot_plus_later_records)
{
    struct sc_engine *engine = open_engine(NULL, TK_OK, NULL, 0);
    make_history(engine);
    cr_assert_eq(sc_engine_snapshot(engine), TK_OK);
    uint64_t hold, lsn;
    cr_assert_eq(tk_test_hold(engine, EVENT, 500, (uint32_t[]){91, 92}, 2, &hold), TK_OK);
    struct sc_hold_result result;
    cr_assert_eq(sc_confirm(engine, EVENT, 500, hold, 0, &result, &lsn), TK_OK);
    wait(engine, lsn);
    struct state before, after;
    capture(engine, &before);
    sc_engine_close(engine);
    engine = open_engine(NULL, TK_OK, NULL, 0);
    capture(engine, &after);
    assert_same(&before, &after);
    cr_assert_eq(after.owners[92], 500);
    sc_engine_close(engine);
}

Test(recovery, corrupt_newest_snapshot_falls_back_to_the_previous_one)
{
    struct sc_engine *engine = open_engine(NULL, TK_OK, NULL, 0);
    make_history(engine);
    cr_assert_eq(sc_engine_snapshot(engine), TK_OK);
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, 600, (uint32_t[]){93}, 1, &hold), TK_OK);
    cr_assert_eq(sc_engine_snapshot(engine), TK_OK);
    cr_assert_eq(tk_test_hold(engine, EVENT, 601, (uint32_t[]){94}, 1, &hold), TK_OK);
    struct state before, after;
    capture(engine, &before);
    sc_engine_close(engine);
    /* Flip a byte in the middle of the newest snapshot. */
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             "f=$(ls %s/snap-*.snap | sort | tail -1); printf '\\x55' | dd of=$f bs=1 seek=200 conv=notrunc 2>/dev/null",
             dir);
    cr_assert_eq(system(cmd), 0);
    engine = open_engine(NULL, TK_OK, NULL, 0);
    capture(engine, &after);
    assert_same(&before, &after);
    cr_assert_eq(after.owners[94], 601);
    sc_engine_close(engine);
}

Test(recovery, unrecoverable_directory_is_refused_with_a_clear_message)
{
    struct sc_engine *engine = open_engine(NULL, TK_OK, NULL, 0);
    make_history(engine);
    cr_assert_eq(sc_engine_snapshot(engine), TK_OK);
    cr_assert_eq(sc_engine_snapshot(engine), TK_OK);
    cr_assert_eq(sc_engine_snapshot(engine), TK_OK);
    sc_engine_close(engine);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "for f in %s/snap-*.snap; do printf 'XXXX' | dd of=$f bs=1 seek=100 conv=notrunc 2>/dev/null; done", dir);
    cr_assert_eq(system(cmd), 0);
    char err[512];
    open_engine(NULL, TK_ERR_CORRUPT, err, sizeof(err));
    cr_assert(strstr(err, "snapshot") != NULL && strstr(err, dir) != NULL, "message names the problem: %s", err);
}

Test(recovery, holds_that_expired_while_down_expire_at_the_first_tick)
{
    struct sc_engine *engine = open_engine(NULL, TK_OK, NULL, 0);
    make_history(engine);
    sc_engine_close(engine);
    tk_clock_manual_advance(&clock_, 3600 * 1000);
    engine = open_engine(NULL, TK_OK, NULL, 0);
    struct sc_event_info info;
    cr_assert_eq(sc_event_get(engine, EVENT, &info), TK_OK);
    cr_assert_gt(info.counts.held, 0);
    uint64_t lsn = sc_engine_tick(engine);
    wait(engine, lsn);
    cr_assert_eq(sc_event_get(engine, EVENT, &info), TK_OK);
    cr_assert_eq(info.counts.held, 0);
    sc_engine_close(engine);
    engine = open_engine(NULL, TK_OK, NULL, 0);
    cr_assert_eq(sc_event_get(engine, EVENT, &info), TK_OK);
    cr_assert_eq(info.counts.held, 0, "the expiries were logged");
    sc_engine_close(engine);
}

Test(recovery, failing_disk_stops_writes_instead_of_acknowledging)
{
    struct wal_io_sim *sim = wal_io_sim_create(7);
    struct wal_io *io = wal_io_sim_io(sim);
    struct sc_engine *engine = open_engine(io, TK_OK, NULL, 0);
    struct sc_event_spec spec;
    tk_test_spec(&spec, EVENT, 1, 2, 10);
    uint64_t lsn, hold;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    wait(engine, lsn);
    struct wal_io_sim_faults faults = {.fail_sync_at = 1, .fail_sync_errno = 5};
    wal_io_sim_set_faults(sim, &faults);
    struct sc_hold_request request = {.event_id = EVENT, .user_id = 1, .seat_count = 1, .seats = {3}};
    struct sc_hold_result result;
    enum tk_status status = sc_hold(engine, &request, &result, &lsn);
    if (status == TK_OK)
        cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_ERR_IO, "never acknowledged");
    else
        cr_assert_eq(status, TK_ERR_IO, "the log failed before the hold reached it");
    cr_assert_neq(tk_test_hold(engine, EVENT, 2, (uint32_t[]){4}, 1, &hold), TK_OK);
    cr_assert_eq(sc_engine_health(engine), TK_ERR_IO);
    cr_assert_eq(tk_test_hold(engine, EVENT, 2, (uint32_t[]){5}, 1, &hold), TK_ERR_UNAVAILABLE);
    sc_engine_close(engine);
    wal_io_sim_reboot(sim, 1, WAL_IO_SIM_FATE_DROP);
    engine = open_engine(io, TK_OK, NULL, 0);
    enum sc_seat_state state;
    uint64_t owner;
    cr_assert_eq(sc_seat_get(engine, EVENT, 3, &state, &owner), TK_OK);
    cr_assert_eq(state, SC_SEAT_FREE, "the unacknowledged hold is gone after the restart");
    cr_assert_eq(tk_test_hold(engine, EVENT, 2, (uint32_t[]){3}, 1, &hold), TK_OK, "and writes work again");
    sc_engine_close(engine);
    wal_io_destroy(io);
}

Test(recovery, event_version_never_goes_back)
{
    struct sc_engine *engine = open_engine(NULL, TK_OK, NULL, 0);
    make_history(engine);
    struct sc_event_info before, after;
    cr_assert_eq(sc_event_get(engine, EVENT, &before), TK_OK);
    sc_engine_close(engine);
    engine = open_engine(NULL, TK_OK, NULL, 0);
    cr_assert_eq(sc_event_get(engine, EVENT, &after), TK_OK);
    cr_assert_gt(after.version, before.version, "a version names one seat map: it only grows");
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, EVENT, 700, (uint32_t[]){96}, 1, &hold), TK_OK);
    struct sc_event_info later;
    cr_assert_eq(sc_event_get(engine, EVENT, &later), TK_OK);
    cr_assert_gt(later.version, after.version);
    sc_engine_close(engine);
}
