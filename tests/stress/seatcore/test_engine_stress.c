/* test_engine_stress.c — several threads hammer one small hot event with
 * holds (chosen and best-available), releases, confirms and returns while a
 * ticker expires holds on the real clock and a reader checks the counts; then
 * an invariant checker reads the whole history back from the WAL.
 *
 * Why the WAL: every seat change carries the seat's new version, so sorting one
 * seat's changes by version gives its true history no matter how the threads
 * interleaved. The checker proves, per seat: no two changes produced the same
 * version (no two owners at once), every hold of a seat is ended by that same
 * hold before the seat changes hands, a sold seat is only freed by a return (no
 * seat sold twice); per hold: at most one end; and every hold a thread was told
 * about is in the log. Finally the engine is reopened and recovery must give the
 * same seats and owners as memory had before the close. Run it under TSan. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "record.h"
#include "seatcore.h"
#include "tk_check.h"
#include "tk_test_support.h"
#include "wal.h"

#define EVENT 77u
#define SEATS 64u
#define WORKERS 4u
#define USERS 40u
#define ACKED_MAX 200000u

static struct sc_engine *engine;
static char dir[256];
static atomic_bool stop;
static atomic_uint_fast64_t max_lsn;

struct worker {
    pthread_t thread;
    uint64_t seed;
    uint64_t holds[64]; /* live holds this thread made (by id), with their owner */
    uint64_t hold_users[64];
    uint32_t hold_count;
    uint32_t sold[SEATS]; /* seats this thread bought, to return later */
    uint64_t sold_users[SEATS];
    uint32_t sold_count;
    uint64_t acked[ACKED_MAX / WORKERS]; /* hold ids the engine said yes to */
    uint32_t acked_count;
    uint64_t ops, conflicts;
};

static struct worker workers[WORKERS];

static void note_lsn(uint64_t lsn)
{
    uint_fast64_t seen = atomic_load(&max_lsn);
    while (lsn > seen && !atomic_compare_exchange_weak(&max_lsn, &seen, lsn)) {
    }
}

static void do_hold(struct worker *w)
{
    struct sc_hold_request request = {.event_id = EVENT, .user_id = 1 + tk_test_rand(&w->seed) % USERS};
    if (tk_test_rand(&w->seed) % 4 == 0) {
        request.best_count = 1 + (uint32_t)(tk_test_rand(&w->seed) % 3);
        request.best_section = -1;
    } else {
        request.seat_count = 1 + (uint32_t)(tk_test_rand(&w->seed) % 3);
        /* Distinct seats: each a few places after the last (at most 15 in all < SEATS). */
        uint32_t seat = (uint32_t)(tk_test_rand(&w->seed) % SEATS);
        for (uint32_t i = 0; i < request.seat_count; i++) {
            request.seats[i] = seat % SEATS;
            seat += 1 + (uint32_t)(tk_test_rand(&w->seed) % 5);
        }
    }
    struct sc_hold_result result;
    uint64_t lsn;
    enum tk_status status = sc_hold(engine, &request, &result, &lsn);
    if (status != TK_OK) {
        TK_CHECK(status == TK_ERR_SEAT_CONFLICT || status == TK_ERR_CAP_REACHED || status == TK_ERR_SOLD_OUT ||
                      status == TK_ERR_FULL || status == TK_ERR_INVALID,
                  "hold: %s", tk_status_name(status));
        w->conflicts++;
        return;
    }
    note_lsn(lsn);
    if (w->acked_count < ACKED_MAX / WORKERS)
        w->acked[w->acked_count++] = result.hold_id;
    /* Some holds are abandoned, as real buyers do: the ticker or the next
     * claimant expires them a second later. */
    if (w->hold_count < 64 && tk_test_rand(&w->seed) % 512 != 0) {
        w->holds[w->hold_count] = result.hold_id;
        w->hold_users[w->hold_count++] = request.user_id;
    }
}

static void do_end(struct worker *w)
{
    if (w->hold_count == 0)
        return;
    uint32_t pick = (uint32_t)(tk_test_rand(&w->seed) % w->hold_count);
    uint64_t hold = w->holds[pick], user = w->hold_users[pick];
    w->holds[pick] = w->holds[--w->hold_count];
    w->hold_users[pick] = w->hold_users[w->hold_count];
    uint64_t lsn = 0;
    enum tk_status status;
    if (tk_test_rand(&w->seed) % 2 == 0) {
        struct sc_hold_result result;
        status = sc_confirm(engine, EVENT, user, hold, 0, &result, &lsn);
        for (uint32_t i = 0; status == TK_OK && i < result.seat_count; i++) {
            w->sold[w->sold_count] = result.seats[i];
            w->sold_users[w->sold_count++] = user;
            TK_CHECK_LEQ(w->sold_count, SEATS);
        }
    } else {
        status = sc_release(engine, EVENT, user, hold, &lsn);
    }
    TK_CHECK(status == TK_OK || status == TK_ERR_HOLD_EXPIRED || status == TK_ERR_NOT_FOUND,
              "end: %s", tk_status_name(status));
    note_lsn(lsn);
}

/* Refunds keep the hot event changing hands instead of selling out. */
static void do_return(struct worker *w)
{
    if (w->sold_count == 0)
        return;
    uint32_t pick = (uint32_t)(tk_test_rand(&w->seed) % w->sold_count);
    uint64_t lsn;
    enum tk_status status = sc_return_seat(engine, EVENT, w->sold_users[pick], w->sold[pick], &lsn);
    TK_CHECK(status == TK_OK, "return of a seat this thread bought: %s", tk_status_name(status));
    note_lsn(lsn);
    w->sold[pick] = w->sold[--w->sold_count];
    w->sold_users[pick] = w->sold_users[w->sold_count];
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint32_t dice = (uint32_t)(tk_test_rand(&w->seed) % 20);
        if (dice < 9)
            do_hold(w);
        else if (dice < 16)
            do_end(w);
        else
            do_return(w);
        w->ops++;
    }
    return NULL;
}

static void *ticker_main(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        note_lsn(sc_engine_tick(engine));
        struct timespec pause = {.tv_nsec = 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    uint64_t *checks = arg;
    uint8_t states[SEATS / 4];
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        struct sc_event_info info;
        TK_CHECK_EQ(sc_event_get(engine, EVENT, &info), TK_OK); /* asserts invariant 5 inside */
        TK_CHECK_EQ(info.counts.free + info.counts.held + info.counts.sold, SEATS);
        uint64_t version;
        struct sc_counts counts;
        TK_CHECK_EQ(sc_availability_copy(engine, EVENT, states, sizeof(states), &version, &counts), TK_OK);
        TK_CHECK_EQ(counts.free + counts.held + counts.sold, SEATS);
        (*checks)++;
    }
    return NULL;
}

/* ---- the history checker ---- */

enum change_kind { CHANGE_HELD, CHANGE_FREED, CHANGE_SOLD, CHANGE_RETURNED };

struct change {
    uint64_t version;
    uint64_t hold_id; /* for HELD / FREED / SOLD */
    enum change_kind kind;
};

struct history {
    struct change *seats[SEATS];
    uint32_t counts[SEATS];
    uint32_t caps[SEATS];
    uint64_t *holds;  /* hold ids seen in HOLD records */
    uint64_t *ended;  /* hold ids seen in end records */
    uint32_t hold_count, ended_count, hold_cap, ended_cap;
};

static void history_add(struct history *h, uint32_t seat, struct change change)
{
    TK_CHECK_LT(seat, SEATS);
    if (h->counts[seat] == h->caps[seat]) {
        h->caps[seat] = h->caps[seat] ? h->caps[seat] * 2 : 256;
        h->seats[seat] = realloc(h->seats[seat], h->caps[seat] * sizeof(struct change));
    }
    h->seats[seat][h->counts[seat]++] = change;
}

static void push_id(uint64_t **list, uint32_t *count, uint32_t *cap, uint64_t id)
{
    if (*count == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *list = realloc(*list, *cap * sizeof(uint64_t));
    }
    (*list)[(*count)++] = id;
}

static enum tk_status history_record(void *ctx, const struct wal_record_view *record)
{
    struct history *h = ctx;
    if (record->type == REC_HOLD) {
        struct rec_hold rec;
        TK_CHECK_EQ(rec_decode_hold(record->payload, record->payload_len, &rec), TK_OK);
        uint64_t id = (rec.gen << 24) | rec.slot;
        push_id(&h->holds, &h->hold_count, &h->hold_cap, id);
        for (uint32_t i = 0; i < rec.seat_count; i++)
            history_add(h, rec.seats[i].seat, (struct change){rec.seats[i].version, id, CHANGE_HELD});
    } else if (record->type == REC_HOLD_END) {
        struct rec_hold_end rec;
        TK_CHECK_EQ(rec_decode_hold_end(record->payload, record->payload_len, &rec), TK_OK);
        uint64_t id = (rec.gen << 24) | rec.slot;
        push_id(&h->ended, &h->ended_count, &h->ended_cap, id);
        for (uint32_t i = 0; i < rec.seat_count; i++)
            history_add(h, rec.seats[i].seat,
                        (struct change){rec.seats[i].version, id,
                                        rec.kind == REC_END_CONFIRMED ? CHANGE_SOLD : CHANGE_FREED});
    } else if (record->type == REC_RETURN) {
        struct rec_return rec;
        TK_CHECK_EQ(rec_decode_return(record->payload, record->payload_len, &rec), TK_OK);
        history_add(h, rec.seat.seat, (struct change){rec.seat.version, 0, CHANGE_RETURNED});
    }
    return TK_OK;
}

static int compare_change(const void *a, const void *b)
{
    const struct change *x = a, *y = b;
    return x->version < y->version ? -1 : x->version > y->version;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void check_seat_history(uint32_t seat, struct change *changes, uint32_t count)
{
    qsort(changes, count, sizeof(changes[0]), compare_change);
    enum { FREE, HELD, SOLD } state = FREE;
    uint64_t holder = 0;
    for (uint32_t i = 0; i < count; i++) {
        const struct change *c = &changes[i];
        TK_CHECK(i == 0 || changes[i - 1].version < c->version,
                  "seat %u: two changes made version %llu (two owners at once)", seat,
                  (unsigned long long)c->version);
        switch (c->kind) {
        case CHANGE_HELD:
            TK_CHECK_EQ(state, FREE, "seat %u v%llu: held while not free", seat, (unsigned long long)c->version);
            state = HELD;
            holder = c->hold_id;
            break;
        case CHANGE_FREED:
        case CHANGE_SOLD:
            TK_CHECK_EQ(state, HELD, "seat %u v%llu: a hold ended on a seat it did not hold", seat,
                         (unsigned long long)c->version);
            TK_CHECK_EQ(holder, c->hold_id, "seat %u v%llu: ended by another hold", seat,
                         (unsigned long long)c->version);
            state = c->kind == CHANGE_SOLD ? SOLD : FREE;
            break;
        case CHANGE_RETURNED:
            TK_CHECK_EQ(state, SOLD, "seat %u v%llu: returned while not sold", seat, (unsigned long long)c->version);
            state = FREE;
            break;
        }
    }
}

static void check_history(void)
{
    struct history h = {0};
    struct wal *wal;
    char err[256];
    struct wal_config config = {.dir = dir};
    TK_CHECK_EQ(wal_open(&wal, &config, 0, history_record, &h, err, sizeof(err)), TK_OK, "%s", err);
    wal_close(wal);
    uint64_t changes = 0;
    for (uint32_t seat = 0; seat < SEATS; seat++) {
        check_seat_history(seat, h.seats[seat], h.counts[seat]);
        changes += h.counts[seat];
        free(h.seats[seat]);
    }
    qsort(h.holds, h.hold_count, sizeof(uint64_t), compare_u64);
    qsort(h.ended, h.ended_count, sizeof(uint64_t), compare_u64);
    for (uint32_t i = 1; i < h.hold_count; i++)
        TK_CHECK_NEQ(h.holds[i], h.holds[i - 1], "a hold id was issued twice");
    for (uint32_t i = 1; i < h.ended_count; i++)
        TK_CHECK_NEQ(h.ended[i], h.ended[i - 1], "a hold ended twice");
    for (uint32_t w = 0; w < WORKERS; w++)
        for (uint32_t i = 0; i < workers[w].acked_count; i++)
            TK_CHECK(bsearch(&workers[w].acked[i], h.holds, h.hold_count, sizeof(uint64_t), compare_u64) != NULL,
                      "an acknowledged hold is missing from the log");
    fprintf(stderr, "stress: %u holds, %u ends, %llu seat changes checked\n", h.hold_count, h.ended_count,
            (unsigned long long)changes);
    TK_CHECK_GT(h.hold_count, 100);
    free(h.holds);
    free(h.ended);
}

static void capture(struct sc_engine *e, enum sc_seat_state *states, uint64_t *owners)
{
    for (uint32_t seat = 0; seat < SEATS; seat++)
        TK_CHECK_EQ(sc_seat_get(e, EVENT, seat, &states[seat], &owners[seat]), TK_OK);
}

static struct sc_engine *open_engine(void)
{
    struct sc_engine_config config = {.data_dir = dir, .idempotency_keys = 1u << 12,
                                      .wal_ring_bytes = 4u << 20};
    struct sc_engine *opened;
    char err[256];
    TK_CHECK_EQ(sc_engine_open(&opened, &config, err, sizeof(err)), TK_OK, "%s", err);
    return opened;
}

int main(void)
{
    tk_test_tempdir(dir, sizeof(dir), "engine-stress");
    engine = open_engine();
    struct sc_event_spec spec;
    tk_test_spec(&spec, EVENT, 2, 2, SEATS / 4);
    spec.hold_ttl_ms = TK_HOLD_TTL_MS_MIN; /* expiries happen during the run */
    uint64_t lsn;
    TK_CHECK_EQ(sc_event_create(engine, &spec, &lsn), TK_OK);
    uint64_t seed = tk_test_seed("engine_stress");
    for (uint32_t i = 0; i < WORKERS; i++)
        workers[i].seed = seed + i * 7919 + 1;
    const char *env = getenv("TK_STRESS_SECONDS");
    int seconds = env ? atoi(env) : 3;
    pthread_t ticker, reader;
    uint64_t reader_checks = 0;
    atomic_store(&stop, false);
    for (uint32_t i = 0; i < WORKERS; i++)
        pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    pthread_create(&ticker, NULL, ticker_main, NULL);
    pthread_create(&reader, NULL, reader_main, &reader_checks);
    sleep((unsigned)seconds);
    atomic_store(&stop, true);
    uint64_t ops = 0, conflicts = 0;
    for (uint32_t i = 0; i < WORKERS; i++) {
        pthread_join(workers[i].thread, NULL);
        ops += workers[i].ops;
        conflicts += workers[i].conflicts;
    }
    pthread_join(ticker, NULL);
    pthread_join(reader, NULL);
    TK_CHECK_EQ(sc_engine_wait_durable(engine, atomic_load(&max_lsn)), TK_OK);
    tk_test_check_counts(engine, EVENT);
    struct sc_metrics metrics;
    sc_engine_metrics(engine, &metrics);
    fprintf(stderr, "stress: %llu ops (%llu refused), %llu reader checks, %llu expirations, %llu WAL batches\n",
            (unsigned long long)ops, (unsigned long long)conflicts, (unsigned long long)reader_checks,
            (unsigned long long)metrics.expirations, (unsigned long long)metrics.wal_batches);
    enum sc_seat_state before[SEATS], after[SEATS];
    uint64_t owners_before[SEATS], owners_after[SEATS];
    capture(engine, before, owners_before);
    sc_engine_close(engine);
    check_history();
    engine = open_engine();
    capture(engine, after, owners_after);
    for (uint32_t seat = 0; seat < SEATS; seat++) {
        TK_CHECK_EQ(after[seat], before[seat], "seat %u state after recovery", seat);
        TK_CHECK_EQ(owners_after[seat], owners_before[seat], "seat %u owner after recovery", seat);
    }
    tk_test_check_counts(engine, EVENT);
    sc_engine_close(engine);
    tk_test_rmtree(dir);
    fprintf(stderr, "engine_stress: passed\n");
    return 0;
}
