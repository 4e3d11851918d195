/* test_engine_queue.c — the waiting room through the engine API
 * (seatcore/engine_queue.c): joins, admission by the ticker, admission tokens
 * required for holds on a queued event, forged or misdirected tokens refused,
 * events without a waiting room, and the queue surviving a restart. */
#include <criterion/criterion.h>
#include <string.h>

#include "seatcore.h"
#include "tk_test_support.h"

#define QUEUED 21u
#define OPEN_EVENT 22u

static struct tk_clock_manual clock_;
static struct sc_engine *engine;
static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";
static char dir[256];

static struct sc_engine *open_at(const char *data_dir)
{
    struct sc_engine_config config = {.clock = &clock_.base, .token_key = key, .token_key_len = sizeof(key),
                                      .idempotency_keys = 1u << 12, .data_dir = data_dir,
                                      .wal_ring_bytes = TK_WAL_RING_BYTES_MIN};
    struct sc_engine *opened = NULL;
    char err[256];
    cr_assert_eq(sc_engine_open(&opened, &config, err, sizeof(err)), TK_OK, "%s", err);
    return opened;
}

static void create_events(void)
{
    struct sc_event_spec spec;
    tk_test_spec(&spec, QUEUED, 1, 2, 10);
    spec.queue = (struct sc_queue_spec){.enabled = true, .admit_per_s = 2, .max_active = 3, .length_max = 100};
    uint64_t lsn;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    tk_test_spec(&spec, OPEN_EVENT, 1, 2, 10);
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_OK);
}

static void setup(void)
{
    tk_clock_manual_init(&clock_, 1700000000000LL);
    tk_test_tempdir(dir, sizeof(dir), "engine-queue");
    engine = open_at(dir);
    create_events();
}

static void teardown(void)
{
    sc_engine_close(engine);
    tk_test_rmtree(dir);
}

TestSuite(engine_queue, .init = setup, .fini = teardown);

static struct sc_queue_view join(uint64_t user)
{
    struct sc_queue_view view;
    uint64_t lsn;
    cr_assert_eq(sc_queue_join(engine, QUEUED, user, &view, &lsn), TK_OK);
    cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_OK);
    return view;
}

static enum tk_status hold_with(uint64_t event, uint64_t user, uint32_t seat, const char *token)
{
    struct sc_hold_request request = {.event_id = event, .user_id = user, .seat_count = 1, .seats = {seat},
                                      .admission_token = token, .admission_token_len = token ? strlen(token) : 0};
    struct sc_hold_result result;
    uint64_t lsn;
    return sc_hold(engine, &request, &result, &lsn);
}

static void tick_seconds(uint32_t seconds)
{
    for (uint32_t i = 0; i < seconds * 10; i++) {
        tk_clock_manual_advance(&clock_, 100);
        sc_engine_wait_durable(engine, sc_engine_tick(engine));
    }
}

Test(engine_queue, join_is_idempotent_and_positions_follow_arrival)
{
    struct sc_queue_view a = join(1), b = join(2), again = join(1);
    cr_assert_eq(a.state, SC_QUEUE_WAITING);
    cr_assert_eq(a.position, 1);
    cr_assert_eq(b.position, 2);
    cr_assert_eq(again.ticket, a.ticket);
    cr_assert_eq(a.admission_token[0], '\0');
    struct sc_metrics metrics;
    sc_engine_metrics(engine, &metrics);
    cr_assert_eq(metrics.queue_joins, 2);
}

Test(engine_queue, holds_need_a_token_that_the_ticker_grants)
{
    for (uint64_t user = 1; user <= 5; user++)
        join(user);
    cr_assert_eq(hold_with(QUEUED, 1, 0, NULL), TK_ERR_NOT_ADMITTED);
    tick_seconds(1);
    struct sc_queue_view view;
    uint64_t lsn;
    cr_assert_eq(sc_queue_status(engine, QUEUED, 1, &view, &lsn), TK_OK);
    cr_assert_eq(view.state, SC_QUEUE_ADMITTED);
    cr_assert_gt(strlen(view.admission_token), 20);
    cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_OK);
    cr_assert_eq(hold_with(QUEUED, 1, 0, view.admission_token), TK_OK);
    cr_assert_eq(hold_with(QUEUED, 2, 1, view.admission_token), TK_ERR_NOT_ADMITTED, "user 1's token");
    cr_assert_eq(sc_queue_status(engine, QUEUED, 5, &view, &lsn), TK_OK);
    cr_assert_eq(view.state, SC_QUEUE_WAITING, "two a second: user 5 waits");
    cr_assert_gt(view.eta_s, 0);
    tick_seconds(10);
    cr_assert_eq(sc_queue_status(engine, QUEUED, 3, &view, &lsn), TK_OK);
    cr_assert_eq(view.state, SC_QUEUE_ADMITTED);
    cr_assert_eq(sc_queue_status(engine, QUEUED, 4, &view, &lsn), TK_OK);
    cr_assert_eq(view.state, SC_QUEUE_WAITING, "max_active 3 holds user 4 back");
    cr_assert_eq(sc_queue_leave(engine, QUEUED, 2, &lsn), TK_OK);
    tick_seconds(1);
    cr_assert_eq(sc_queue_status(engine, QUEUED, 4, &view, &lsn), TK_OK);
    cr_assert_eq(view.state, SC_QUEUE_ADMITTED, "a leave frees an active place");
    struct sc_metrics metrics;
    sc_engine_metrics(engine, &metrics);
    cr_assert_eq(metrics.queue_admissions, 4);
}

Test(engine_queue, forged_and_misdirected_tokens_are_refused)
{
    join(1);
    tick_seconds(1);
    struct sc_queue_view view;
    uint64_t lsn;
    cr_assert_eq(sc_queue_status(engine, QUEUED, 1, &view, &lsn), TK_OK);
    char forged[SC_ADMISSION_TOKEN_BYTES_MAX];
    strcpy(forged, view.admission_token);
    forged[10] = forged[10] == 'A' ? 'B' : 'A';
    cr_assert_eq(hold_with(QUEUED, 1, 0, forged), TK_ERR_NOT_ADMITTED);
    cr_assert_eq(hold_with(QUEUED, 1, 0, "garbage"), TK_ERR_NOT_ADMITTED);
    struct sc_queue_view other;
    cr_assert_eq(sc_queue_join(engine, OPEN_EVENT, 1, &other, &lsn), TK_OK);
    cr_assert_eq(hold_with(QUEUED, 1, 0, other.admission_token), TK_ERR_NOT_ADMITTED, "token of another event");
    tk_clock_manual_advance(&clock_, TK_ADMISSION_TTL_MS_DEFAULT + 1);
    cr_assert_eq(hold_with(QUEUED, 1, 0, view.admission_token), TK_ERR_NOT_ADMITTED, "expired");
}

Test(engine_queue, event_without_a_waiting_room_admits_at_once)
{
    struct sc_queue_view view;
    uint64_t lsn;
    cr_assert_eq(sc_queue_join(engine, OPEN_EVENT, 9, &view, &lsn), TK_OK);
    cr_assert_eq(view.state, SC_QUEUE_ADMITTED);
    cr_assert_eq(lsn, 0, "nothing to log");
    cr_assert_gt(strlen(view.admission_token), 20);
    cr_assert_eq(hold_with(OPEN_EVENT, 9, 3, NULL), TK_OK, "no token needed either");
    cr_assert_eq(sc_queue_leave(engine, OPEN_EVENT, 9, &lsn), TK_OK);
}

Test(engine_queue, leave_and_bad_input)
{
    join(1);
    join(2);
    uint64_t lsn;
    cr_assert_eq(sc_queue_leave(engine, QUEUED, 1, &lsn), TK_OK);
    struct sc_queue_view view;
    cr_assert_eq(sc_queue_status(engine, QUEUED, 2, &view, &lsn), TK_OK);
    cr_assert_eq(view.position, 1);
    cr_assert_eq(sc_queue_status(engine, QUEUED, 3, &view, &lsn), TK_ERR_NOT_FOUND);
    cr_assert_eq(sc_queue_join(engine, QUEUED, 0, &view, &lsn), TK_ERR_INVALID);
    cr_assert_eq(sc_queue_join(engine, 999, 1, &view, &lsn), TK_ERR_NOT_FOUND);
    cr_assert_eq(sc_event_close(engine, QUEUED, &lsn), TK_OK);
    cr_assert_eq(sc_queue_join(engine, QUEUED, 4, &view, &lsn), TK_ERR_EVENT_CLOSED);
}

Test(engine_queue, queue_survives_a_restart)
{
    for (uint64_t user = 1; user <= 6; user++)
        join(user);
    tick_seconds(1); /* admits users 1 and 2 */
    uint64_t lsn;
    cr_assert_eq(sc_queue_leave(engine, QUEUED, 4, &lsn), TK_OK);
    cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_OK);
    cr_assert_eq(sc_engine_snapshot(engine), TK_OK);
    join(7);
    struct sc_queue_view before[8], after[8];
    for (uint64_t user = 1; user <= 7; user++)
        cr_assert_eq(sc_queue_status(engine, QUEUED, user, &before[user], &lsn), TK_OK);
    sc_engine_close(engine);
    engine = open_at(dir);
    for (uint64_t user = 1; user <= 7; user++) {
        cr_assert_eq(sc_queue_status(engine, QUEUED, user, &after[user], &lsn), TK_OK);
        cr_assert_eq(after[user].ticket, before[user].ticket, "user %llu", (unsigned long long)user);
        cr_assert_eq(after[user].state, before[user].state, "user %llu", (unsigned long long)user);
        cr_assert_eq(after[user].position, before[user].position, "user %llu", (unsigned long long)user);
    }
    cr_assert_eq(after[1].state, SC_QUEUE_ADMITTED);
    cr_assert_eq(after[4].state, SC_QUEUE_LEFT);
    cr_assert_eq(hold_with(QUEUED, 2, 5, after[2].admission_token), TK_OK);
}

Test(engine_queue, queue_info_and_admissions_feed)
{
    for (uint64_t user = 1; user <= 5; user++)
        join(user);
    struct sc_queue_info info;
    cr_assert_eq(sc_queue_info(engine, QUEUED, &info), TK_OK);
    cr_assert_eq(info.waiting, 5);
    cr_assert_eq(info.head_rank, 0);
    cr_assert_eq(sc_queue_info(engine, OPEN_EVENT, &info), TK_ERR_INVALID, "no waiting room");
    tick_seconds(1); /* two a second, plus the first second's full bucket */
    cr_assert_eq(sc_queue_info(engine, QUEUED, &info), TK_OK);
    cr_assert(info.admissions >= 2 && info.admissions <= 3, "admissions %llu", (unsigned long long)info.admissions);
    cr_assert_eq(info.head_rank, info.admissions, "nobody skipped");
    struct sc_queue_admission admitted[8];
    uint32_t count, next;
    cr_assert_eq(sc_queue_admitted(engine, QUEUED, 0, admitted, 8, &count, &next), TK_OK);
    cr_assert_eq(count, info.admissions);
    cr_assert_eq(next, info.head_rank);
    cr_assert_eq(admitted[0].user_id, 1);
    cr_assert_eq(admitted[1].rank, 1);
    char token[SC_ADMISSION_TOKEN_BYTES_MAX];
    cr_assert_eq(sc_queue_admission_token(engine, QUEUED, &admitted[1], token, sizeof(token)), TK_OK);
    cr_assert_eq(hold_with(QUEUED, 2, 7, token), TK_OK, "the feed's token admits its user");
    cr_assert_eq(sc_queue_admitted(engine, QUEUED, next, admitted, 8, &count, &next), TK_OK);
    cr_assert_eq(count, 0, "nothing new since");
    struct sc_queue_view view;
    uint64_t lsn;
    cr_assert_eq(sc_queue_status(engine, QUEUED, 5, &view, &lsn), TK_OK);
    cr_assert_eq(view.rank, 4);
    cr_assert_eq(view.position, view.rank - info.head_rank + 1);
}
