/* test_model.c — model-based test of the engine: random operation sequences
 * run against the engine and against a small single-threaded reference model
 * written for clarity, not speed; every answer (status, unavailable seats,
 * seat states and owners) must match. The durable variant restarts the engine
 * from its data directory every few hundred operations, so recovery is checked
 * against the model too. A failure prints the seed: TK_TEST_SEED=... replays it.
 *
 * The model spells out the engine's contract, including its lazy expiry: a hold
 * past its TTL ends when someone touches it (confirm/release, or a claim on one
 * of its seats) or when the ticker sweeps; until then it still counts. */
#include <criterion/criterion.h>
#include <string.h>

#include "seatcore.h"
#include "tk_test_support.h"

#define EVENT 3u
#define SEATS 24u
#define USERS 6u
#define CAP 6u
#define HOLDS_MAX 12u
#define TTL_MS 60000
#define MODEL_HOLDS_MAX 4096u
#define KEYS_MAX 64u

enum mstate { M_FREE, M_HELD, M_SOLD };

struct mhold {
    uint64_t engine_id;
    uint64_t user;
    uint32_t seats[4];
    uint32_t count;
    int64_t expires_ms;
    bool active;
    bool ended_by_expiry;
};

struct mkey {
    uint64_t key, user;
    uint32_t seats[4], count;
    enum tk_status status;
    uint32_t hold; /* model hold index when status is OK */
};

struct model {
    enum mstate state[SEATS];
    uint32_t holder[SEATS]; /* model hold index while held */
    uint64_t owner[SEATS];  /* buyer while sold */
    struct mhold holds[MODEL_HOLDS_MAX];
    uint32_t hold_count;
    struct mkey keys[KEYS_MAX];
    uint32_t key_count;
};

static struct tk_clock_manual clock_;
static struct sc_engine *engine;
static struct model model;
static char dir[256];
static bool durable;
static uint64_t seed;

static int64_t now(void)
{
    return tk_clock_now_ms(&clock_.base);
}

/* ---- the model ---- */

static uint32_t model_active_holds(void)
{
    uint32_t n = 0;
    for (uint32_t h = 0; h < model.hold_count; h++)
        n += model.holds[h].active;
    return n;
}

static uint32_t model_user_seats(uint64_t user)
{
    uint32_t n = 0;
    for (uint32_t h = 0; h < model.hold_count; h++)
        if (model.holds[h].active && model.holds[h].user == user)
            n += model.holds[h].count;
    for (uint32_t s = 0; s < SEATS; s++)
        n += model.state[s] == M_SOLD && model.owner[s] == user;
    return n;
}

static void model_end(uint32_t h, enum mstate to, bool expiry)
{
    struct mhold *hold = &model.holds[h];
    cr_assert(hold->active);
    for (uint32_t i = 0; i < hold->count; i++) {
        model.state[hold->seats[i]] = to;
        model.owner[hold->seats[i]] = to == M_SOLD ? hold->user : 0;
    }
    hold->active = false;
    hold->ended_by_expiry = expiry;
}

static bool model_expired(uint32_t h)
{
    return model.holds[h].active && model.holds[h].expires_ms <= now();
}

/* Mirrors sc_hold for explicit, sorted seats. */
static enum tk_status model_hold(uint64_t user, const uint32_t *seats, uint32_t count, uint32_t *unavailable,
                                 uint32_t *unavailable_count, uint32_t *new_hold)
{
    if (model_user_seats(user) + count > CAP)
        return TK_ERR_CAP_REACHED;
    if (model_active_holds() == HOLDS_MAX)
        return TK_ERR_FULL;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t s = seats[i];
        if (model.state[s] == M_HELD && model_expired(model.holder[s]))
            model_end(model.holder[s], M_FREE, true); /* lazy expiry by the claimant */
        if (model.state[s] != M_FREE) {
            *unavailable_count = 0;
            unavailable[(*unavailable_count)++] = s;
            for (uint32_t j = i + 1; j < count; j++)
                if (model.state[seats[j]] != M_FREE)
                    unavailable[(*unavailable_count)++] = seats[j];
            return TK_ERR_SEAT_CONFLICT;
        }
    }
    cr_assert_lt(model.hold_count, MODEL_HOLDS_MAX);
    uint32_t h = model.hold_count++;
    model.holds[h] = (struct mhold){.user = user, .count = count, .expires_ms = now() + TTL_MS, .active = true};
    memcpy(model.holds[h].seats, seats, count * sizeof(uint32_t));
    for (uint32_t i = 0; i < count; i++) {
        model.state[seats[i]] = M_HELD;
        model.holder[seats[i]] = h;
    }
    *new_hold = h;
    return TK_OK;
}

/* Mirrors sc_confirm / sc_release; *either_ok: an ended hold may answer two ways. */
static enum tk_status model_end_request(uint32_t h, uint64_t user, bool confirm, bool *also_not_found)
{
    struct mhold *hold = &model.holds[h];
    *also_not_found = false;
    if (!hold->active) {
        *also_not_found = hold->ended_by_expiry; /* unless its slot was reused since */
        return hold->ended_by_expiry ? TK_ERR_HOLD_EXPIRED : TK_ERR_NOT_FOUND;
    }
    if (hold->user != user)
        return TK_ERR_NOT_OWNER;
    if (hold->expires_ms <= now()) {
        model_end(h, M_FREE, true);
        return TK_ERR_HOLD_EXPIRED;
    }
    model_end(h, confirm ? M_SOLD : M_FREE, false);
    return TK_OK;
}

static enum tk_status model_return(uint64_t user, uint32_t seat)
{
    if (model.state[seat] != M_SOLD)
        return TK_ERR_NOT_FOUND;
    if (model.owner[seat] != user)
        return TK_ERR_NOT_OWNER;
    model.state[seat] = M_FREE;
    model.owner[seat] = 0;
    return TK_OK;
}

static void model_sweep(void)
{
    for (uint32_t h = 0; h < model.hold_count; h++)
        if (model_expired(h))
            model_end(h, M_FREE, true);
}

/* ---- driving both ---- */

static void open_engine(void)
{
    struct sc_engine_config config = {.clock = &clock_.base, .idempotency_keys = 1u << 10,
                                      .data_dir = durable ? dir : NULL, .wal_ring_bytes = TK_WAL_RING_BYTES_MIN};
    char err[256];
    cr_assert_eq(sc_engine_open(&engine, &config, err, sizeof(err)), TK_OK, "%s", err);
}

static void restart(void)
{
    sc_engine_close(engine);
    open_engine();
    /* Only successful holds are durable answers; other first answers were kept in memory. */
    for (uint32_t k = 0; k < model.key_count; k++)
        if (model.keys[k].status != TK_OK)
            model.keys[k] = model.keys[--model.key_count], k--;
}

static void compare_all(uint32_t step)
{
    uint32_t held = 0, sold = 0;
    for (uint32_t s = 0; s < SEATS; s++) {
        enum sc_seat_state state;
        uint64_t user;
        cr_assert_eq(sc_seat_get(engine, EVENT, s, &state, &user), TK_OK);
        enum mstate want = model.state[s];
        uint64_t want_user = want == M_HELD ? model.holds[model.holder[s]].user : model.owner[s];
        cr_assert_eq((int)state, (int)want, "seed %llu step %u seat %u: state %d, model %d",
                     (unsigned long long)seed, step, s, state, want);
        cr_assert_eq(user, want_user, "seed %llu step %u seat %u: owner", (unsigned long long)seed, step, s);
        held += want == M_HELD;
        sold += want == M_SOLD;
    }
    struct sc_event_info info;
    cr_assert_eq(sc_event_get(engine, EVENT, &info), TK_OK);
    cr_assert_eq(info.counts.held, held, "seed %llu step %u", (unsigned long long)seed, step);
    cr_assert_eq(info.counts.sold, sold);
    cr_assert_eq(info.active_holds, model_active_holds());
}

static uint32_t random_seats(uint32_t *seats)
{
    uint32_t count = 1 + (uint32_t)(tk_test_rand(&seed) % 4);
    bool taken[SEATS] = {false};
    uint32_t n = 0;
    while (n < count) {
        uint32_t s = (uint32_t)(tk_test_rand(&seed) % SEATS);
        if (!taken[s])
            taken[s] = true, n++;
    }
    n = 0;
    for (uint32_t s = 0; s < SEATS; s++)
        if (taken[s])
            seats[n++] = s;
    return count;
}

static void step_hold(uint32_t step, bool keyed)
{
    uint64_t user = 1 + tk_test_rand(&seed) % USERS;
    struct sc_hold_request request = {.event_id = EVENT, .user_id = user};
    request.seat_count = random_seats(request.seats);
    struct mkey *key = NULL;
    if (keyed && model.key_count > 0 && tk_test_rand(&seed) % 2 == 0) {
        key = &model.keys[tk_test_rand(&seed) % model.key_count]; /* repeat an earlier keyed request */
        request.user_id = user = key->user;
        if (tk_test_rand(&seed) % 4 != 0) {
            request.seat_count = key->count;
            memcpy(request.seats, key->seats, sizeof(key->seats));
        }
        request.idempotency_key = key->key;
    } else if (keyed && model.key_count < KEYS_MAX) {
        request.idempotency_key = 1000 + step;
    }
    struct sc_hold_result result;
    uint64_t lsn;
    enum tk_status got = sc_hold(engine, &request, &result, &lsn);
    cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_OK);
    if (key != NULL) {
        bool same = request.seat_count == key->count && !memcmp(request.seats, key->seats, 4 * key->count);
        enum tk_status want = same ? key->status : TK_ERR_IDEMPOTENCY_MISMATCH;
        cr_assert_eq(got, want, "seed %llu step %u: repeat got %s want %s", (unsigned long long)seed, step,
                     tk_status_name(got), tk_status_name(want));
        if (same && want == TK_OK)
            cr_assert_eq(result.hold_id, model.holds[key->hold].engine_id);
        return;
    }
    uint32_t unavailable[4], unavailable_count = 0, h = 0;
    enum tk_status want = model_hold(user, request.seats, request.seat_count, unavailable, &unavailable_count, &h);
    cr_assert_eq(got, want, "seed %llu step %u: hold got %s want %s", (unsigned long long)seed, step,
                 tk_status_name(got), tk_status_name(want));
    if (want == TK_OK)
        model.holds[h].engine_id = result.hold_id;
    if (want == TK_ERR_SEAT_CONFLICT) {
        cr_assert_eq(result.unavailable_count, unavailable_count, "seed %llu step %u", (unsigned long long)seed, step);
        for (uint32_t i = 0; i < unavailable_count; i++)
            cr_assert_eq(result.unavailable[i], unavailable[i]);
    }
    if (request.idempotency_key != 0 && want != TK_ERR_FULL) {
        struct mkey *k = &model.keys[model.key_count++];
        *k = (struct mkey){.key = request.idempotency_key, .user = user, .count = request.seat_count,
                           .status = want, .hold = h};
        memcpy(k->seats, request.seats, sizeof(k->seats));
    }
}

static void step_end(uint32_t step)
{
    if (model.hold_count == 0)
        return;
    uint32_t h = model.hold_count - 1 - (uint32_t)(tk_test_rand(&seed) % (model.hold_count < 8 ? model.hold_count : 8));
    uint64_t user = tk_test_rand(&seed) % 5 == 0 ? 1 + tk_test_rand(&seed) % USERS : model.holds[h].user;
    bool confirm = tk_test_rand(&seed) % 2 == 0;
    uint64_t lsn;
    struct sc_hold_result result;
    enum tk_status got = confirm ? sc_confirm(engine, EVENT, user, model.holds[h].engine_id, 0, &result, &lsn)
                                 : sc_release(engine, EVENT, user, model.holds[h].engine_id, &lsn);
    cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_OK);
    bool also_not_found;
    enum tk_status want = model_end_request(h, user, confirm, &also_not_found);
    cr_assert(got == want || (also_not_found && got == TK_ERR_NOT_FOUND), "seed %llu step %u: %s got %s want %s",
              (unsigned long long)seed, step, confirm ? "confirm" : "release", tk_status_name(got),
              tk_status_name(want));
}

static void step_return(uint32_t step)
{
    uint32_t seat = (uint32_t)(tk_test_rand(&seed) % SEATS);
    uint64_t user = model.state[seat] == M_SOLD && tk_test_rand(&seed) % 4 != 0 ? model.owner[seat]
                                                                               : 1 + tk_test_rand(&seed) % USERS;
    uint64_t lsn;
    enum tk_status got = sc_return_seat(engine, EVENT, user, seat, &lsn);
    cr_assert_eq(sc_engine_wait_durable(engine, lsn), TK_OK);
    enum tk_status want = model_return(user, seat);
    cr_assert_eq(got, want, "seed %llu step %u: return got %s want %s", (unsigned long long)seed, step,
                 tk_status_name(got), tk_status_name(want));
}

static void run_model(uint64_t run_seed, uint32_t steps, uint32_t restart_every)
{
    seed = run_seed;
    memset(&model, 0, sizeof(model));
    tk_clock_manual_init(&clock_, 1700000000000LL);
    open_engine();
    struct sc_event_spec spec;
    tk_test_spec(&spec, EVENT, 2, 2, SEATS / 4);
    spec.max_seats_per_user = CAP;
    spec.holds_max = HOLDS_MAX;
    spec.hold_ttl_ms = TTL_MS;
    uint64_t lsn;
    cr_assert_eq(sc_event_create(engine, &spec, &lsn), TK_OK);
    for (uint32_t step = 0; step < steps; step++) {
        uint32_t dice = (uint32_t)(tk_test_rand(&seed) % 100);
        if (dice < 40)
            step_hold(step, dice < 10);
        else if (dice < 70)
            step_end(step);
        else if (dice < 80)
            step_return(step);
        else if (dice < 95)
            tk_clock_manual_advance(&clock_, (int64_t)(tk_test_rand(&seed) % 30000));
        else {
            cr_assert_eq(sc_engine_wait_durable(engine, sc_engine_tick(engine)), TK_OK);
            model_sweep();
        }
        if (restart_every && step % restart_every == restart_every - 1)
            restart();
        compare_all(step);
    }
    sc_engine_close(engine);
}

Test(model, memory_engine_matches_the_model)
{
    durable = false;
    uint64_t base = tk_test_seed("model.memory");
    for (uint64_t i = 0; i < 20; i++)
        run_model(base + i * 1000003, 1500, 0);
}

Test(model, durable_engine_matches_the_model_across_restarts)
{
    durable = true;
    uint64_t base = tk_test_seed("model.durable");
    for (uint64_t i = 0; i < 6; i++) {
        tk_test_tempdir(dir, sizeof(dir), "model");
        run_model(base + i * 1000003, 800, 97);
        tk_test_rmtree(dir);
    }
}
