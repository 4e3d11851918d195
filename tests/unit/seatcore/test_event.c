/* test_event.c — event creation, validation of layouts from outside, lookup,
 * bounds and state changes (seatcore/event.c and the event part of engine.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "seatcore.h"
#include "tk_test_support.h"

static struct tk_clock_manual clock_;
static struct sc_engine *engine;

static void setup(void)
{
    struct sc_engine_config config = {.events_max = 4};
    engine = tk_test_engine(&clock_, &config);
}

static void teardown(void)
{
    sc_engine_close(engine);
}

TestSuite(event, .init = setup, .fini = teardown);

Test(event, create_and_describe)
{
    struct sc_event_spec spec;
    tk_test_spec(&spec, 1, 3, 10, 20);
    uint64_t lsn;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    struct sc_event_info info;
    cr_assert_eq(sc_event_get(engine, 1, &info), TK_OK);
    cr_assert_eq(info.counts.capacity, 600);
    cr_assert_eq(info.counts.free, 600);
    cr_assert_eq(info.state, SC_EVENT_OPEN);
    struct sc_event_spec stored;
    cr_assert_eq(sc_event_spec_get(engine, 1, &stored), TK_OK);
    cr_assert_str_eq(stored.sections[2].name, "S2");
    cr_assert_eq(stored.max_seats_per_user, TK_SEATS_PER_HOLD_MAX, "defaults are filled in");
    cr_assert_eq(stored.holds_max, 300);
    cr_assert_eq(sc_event_get(engine, 2, &info), TK_ERR_NOT_FOUND);
    cr_assert_eq(sc_event_get(engine, 0, &info), TK_ERR_NOT_FOUND);
}

/* Breaks a valid spec in the way numbered `which`; returns false past the last. */
static bool break_spec(struct sc_event_spec *spec, int which)
{
    tk_test_spec(spec, 5, 2, 10, 10);
    switch (which) {
    case 0: spec->event_id = 0; break;
    case 1: spec->section_count = 0; break;
    case 2: spec->section_count = TK_SECTIONS_PER_EVENT_MAX + 1; break;
    case 3: spec->sections[1].rows = 0; break;
    case 4: spec->sections[0].seats_per_row = TK_SEATS_PER_ROW_MAX + 1; break;
    case 5: spec->sections[0].name[0] = '\0'; break;
    case 6: memset(spec->sections[0].name, 'x', sizeof(spec->sections[0].name)); break; /* no terminator */
    case 7: spec->sections[0].price_cents = TK_PRICE_CENTS_MAX + 1; break;
    case 8: spec->hold_ttl_ms = 10; break;
    case 9: spec->hold_ttl_ms = TK_HOLD_TTL_MS_MAX + 1; break;
    case 10: spec->max_seats_per_user = TK_SEATS_PER_USER_MAX + 1; break;
    case 11: spec->holds_max = 201; break; /* more than the capacity */
    case 12: /* 64 x 1000 x 1000 seats: over 200,000 */
        spec->section_count = 1; spec->sections[0].rows = 1000; spec->sections[0].seats_per_row = 1000; break;
    case 13: spec->queue.enabled = true; spec->queue.admit_per_s = 0; spec->queue.max_active = 10; break;
    case 14: spec->queue.enabled = true; spec->queue.admit_per_s = 10; spec->queue.max_active = 0; break;
    case 15: spec->queue.enabled = true; spec->queue.admit_per_s = 10; spec->queue.max_active = 10;
        spec->queue.length_max = TK_QUEUE_LENGTH_MAX_MAX + 1; break;
    case 16: spec->sale_opens_at_ms = -1; break;
    case 17: spec->users_max = (1u << 22) + 1; break;
    case 18: spec->queue.enabled = true; spec->queue.admit_per_s = 10; spec->queue.max_active = 10;
        spec->queue.heartbeat_timeout_ms = 10; break;
    default: return false;
    }
    return true;
}

Test(event, refuses_bad_layouts)
{
    struct sc_event_spec spec;
    uint64_t lsn;
    int cases = 0;
    for (int which = 0; break_spec(&spec, which); which++, cases++)
        cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_ERR_INVALID, "case %d was accepted", which);
    cr_assert_eq(cases, 19);
    cr_assert_eq(sc_event_list(engine, NULL, 0), 0, "nothing half-created");
}

Test(event, largest_event_is_accepted)
{
    struct sc_event_spec spec;
    tk_test_spec(&spec, 8, 2, 1000, 100); /* exactly 200,000 seats */
    uint64_t lsn;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    struct sc_event_info info;
    cr_assert_eq(sc_event_get(engine, 8, &info), TK_OK);
    cr_assert_eq(info.counts.capacity, TK_SEATS_PER_EVENT_MAX);
    uint64_t hold;
    cr_assert_eq(tk_test_hold(engine, 8, 1, (uint32_t[]){199999}, 1, &hold), TK_OK);
}

Test(event, duplicate_ids_and_the_events_bound)
{
    struct sc_event_spec spec;
    uint64_t lsn;
    for (uint64_t id = 1; id <= 4; id++) {
        tk_test_spec(&spec, id * 1000003, 1, 1, 5);
        cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    }
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_ERR_EXISTS);
    tk_test_spec(&spec, 99, 1, 1, 5);
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_ERR_FULL);
    uint64_t ids[8];
    cr_assert_eq(sc_event_list(engine, ids, 8), 4);
    cr_assert_eq(ids[0], 1000003, "listed in creation order");
    cr_assert_eq(ids[3], 4000012);
}

Test(event, close_then_cancel_only_move_forward)
{
    struct sc_event_spec spec;
    tk_test_spec(&spec, 3, 1, 2, 5);
    uint64_t lsn;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    cr_assert_eq(sc_event_close(engine, 3, &lsn), TK_OK);
    cr_assert_eq(sc_event_close(engine, 3, &lsn), TK_OK, "closing twice is harmless");
    cr_assert_eq(sc_event_cancel(engine, 3, &lsn), TK_OK);
    cr_assert_eq(sc_event_cancel(engine, 3, &lsn), TK_OK);
    cr_assert_eq(sc_event_close(engine, 3, &lsn), TK_ERR_EVENT_CLOSED);
    cr_assert_eq(sc_event_close(engine, 4, &lsn), TK_ERR_NOT_FOUND);
}

Test(event, engine_config_is_validated)
{
    struct sc_engine *other = NULL;
    char err[128];
    struct sc_engine_config config = {.events_max = TK_EVENTS_MAX_MAX + 1};
    cr_assert_eq(sc_engine_open(&other, &config, err, sizeof(err)), TK_ERR_INVALID);
    cr_assert(strstr(err, "events_max") != NULL, "%s", err);
    uint8_t key[16] = {0};
    config = (struct sc_engine_config){.token_key = key, .token_key_len = sizeof(key)};
    cr_assert_eq(sc_engine_open(&other, &config, err, sizeof(err)), TK_ERR_INVALID);
    cr_assert(strstr(err, "32..128 bytes") != NULL, "%s", err);
}
