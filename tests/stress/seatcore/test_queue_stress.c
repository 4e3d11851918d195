/* test_queue_stress.c — the waiting queue under threads (seatcore/queue.c).
 *
 * Worker threads join, leave, ask their status and heartbeat for ~2 s while one
 * ticker thread moves a simulated clock, opens the queue (shuffling the pre-open
 * block while leaves race it) and admits. Every record is stamped with a global
 * sequence number right after its call returns, like a WAL append. Afterwards:
 * no user holds two tickets, admissions followed rank order, max_active held at
 * every tick, the counters match the tickets, waiting positions are exactly
 * 1..W, and replaying the records in sequence order reproduces every view.
 * A plain program (criterion cannot start under TSan, see tk_check.h); meant to
 * run clean under ThreadSanitizer. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "tk_check.h"
#include "tk_test_support.h"

#define T0 INT64_C(1700000000000)
#define EVENT 11u
#define USERS 4000u
#define WORKERS 3
#define RUN_NS (UINT64_C(2000) * 1000 * 1000)
#define TICK_MS 20
#define WORKER_OPS_MAX 2000000u /* bounds each worker's log: at most one record per op */
#define ARENA_BYTES (WORKER_OPS_MAX * 32u)
#define ENTRIES_MAX (WORKER_OPS_MAX + 16u)

struct logged {
    uint64_t seq;
    uint16_t type;
    uint32_t len;
    const uint8_t *data;
};

struct arena {
    uint8_t *bytes;
    size_t used;
    struct logged *entries;
    size_t count;
    bool full;
};

static struct queue *q;
static _Atomic int64_t sim_now;
static _Atomic uint64_t record_seq;
static _Atomic bool stop;
static _Atomic uint64_t ops_done;
static struct arena arenas[WORKERS + 1];
static const struct queue_config config = {
    .length_max = 1u << 20,
    .admit_per_s = 5000,
    .max_active = 300,
    .admission_ttl_ms = TK_ADMISSION_TTL_MS_MIN,
    .heartbeat_timeout_ms = TK_HEARTBEAT_TIMEOUT_MS_MIN,
    .opens_at_ms = T0 + 20000,
    .randomize_pre_open = true,
    .random_seed = 2024,
};

static void arena_init(struct arena *a)
{
    memset(a, 0, sizeof(*a));
    a->bytes = malloc(ARENA_BYTES);
    a->entries = malloc(ENTRIES_MAX * sizeof(a->entries[0]));
    TK_CHECK(a->bytes != NULL && a->entries != NULL);
}

/* Appends a record, stamped after the call returned (the engine's append order). */
static void arena_add(struct arena *a, uint16_t type, const struct tk_buf *buf)
{
    if (type == 0)
        return;
    uint64_t seq = atomic_fetch_add(&record_seq, 1);
    if (a->used + buf->len > ARENA_BYTES || a->count == ENTRIES_MAX) {
        a->full = true; /* replay would be incomplete: the test fails below */
        return;
    }
    memcpy(a->bytes + a->used, buf->data, buf->len);
    a->entries[a->count++] = (struct logged){.seq = seq, .type = type, .len = (uint32_t)buf->len,
                                             .data = a->bytes + a->used};
    a->used += buf->len;
}

static bool worker_op(struct arena *a, uint64_t *rng)
{
    uint64_t r = tk_test_rand(rng);
    uint64_t user = 1 + (r >> 16) % USERS;
    int64_t now = atomic_load(&sim_now);
    uint8_t data[TK_QUEUE_RECORD_BYTES_MAX];
    struct tk_buf buf;
    tk_buf_init(&buf, data, sizeof(data));
    uint16_t type = 0;
    struct queue_view view;
    enum tk_status status;
    /* Every 10th user is silent: no status, no heartbeat, a join only now and then,
     * so the head always finds stale waiters to skip. */
    if (user % 10 == 0 && (r % 20 >= 10 || (r % 20 < 7 && (r >> 40) % 50 != 0)))
        return true;
    switch (r % 20) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6:
        status = queue_join(q, user, now, &view, &buf, &type);
        arena_add(a, type, &buf);
        if (status == TK_ERR_QUEUE_FULL)
            return true;
        if (status != TK_OK || view.ticket == 0 || (view.state == QUEUE_STATE_WAITING && view.position == 0))
            return false;
        return view.state != QUEUE_STATE_ADMITTED || view.admission_expires_ms > now;
    case 7: case 8: case 9:
        status = queue_leave(q, user, now, &buf, &type);
        arena_add(a, type, &buf);
        return status == TK_OK || status == TK_ERR_NOT_FOUND;
    case 10: case 11: case 12: case 13: case 14: case 15:
        status = queue_status(q, user, now, &view);
        if (status == TK_OK && view.state == QUEUE_STATE_WAITING && view.position == 0)
            return false;
        return status == TK_OK || status == TK_ERR_NOT_FOUND;
    default:
        status = queue_heartbeat(q, user, now);
        return status == TK_OK || status == TK_ERR_NOT_FOUND;
    }
}

static void *worker(void *arg)
{
    struct arena *a = arg;
    uint64_t rng = (uint64_t)(a - arenas) * 7919 + 17;
    uint64_t n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed) && !a->full && n < WORKER_OPS_MAX) {
        if (!worker_op(a, &rng))
            return (void *)1;
        n++;
    }
    atomic_fetch_add(&ops_done, n);
    return NULL;
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct ticker_result {
    uint64_t ticks, max_active_seen, violations;
};

static void *ticker(void *arg)
{
    struct ticker_result *result = arg;
    struct arena *a = &arenas[WORKERS];
    static uint8_t data[TK_QUEUE_TICK_RECORD_BYTES_MAX];
    uint64_t start = monotonic_ns();
    while (monotonic_ns() - start < RUN_NS && !a->full) {
        int64_t now = atomic_fetch_add(&sim_now, TICK_MS) + TICK_MS;
        struct tk_buf buf;
        tk_buf_init(&buf, data, sizeof(data));
        uint16_t type = 0;
        if (queue_tick(q, now, &buf, &type) != TK_OK)
            result->violations++;
        arena_add(a, type, &buf);
        struct queue_stats stats;
        queue_stats(q, &stats);
        if (stats.active > config.max_active)
            result->violations++;
        if (stats.active > result->max_active_seen)
            result->max_active_seen = stats.active;
        result->ticks++;
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
    }
    atomic_store(&stop, true);
    return NULL;
}

static int by_seq(const void *x, const void *y)
{
    const struct logged *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Every record of every thread, in stamp order. */
static struct logged *merged_records(size_t *count)
{
    size_t total = 0;
    for (int i = 0; i <= WORKERS; i++) {
        TK_CHECK(!arenas[i].full, "record arena %d overflowed", i);
        total += arenas[i].count;
    }
    struct logged *all = malloc(total * sizeof(*all));
    TK_CHECK(all != NULL);
    size_t k = 0;
    for (int i = 0; i <= WORKERS; i++)
        for (size_t j = 0; j < arenas[i].count; j++)
            all[k++] = arenas[i].entries[j];
    qsort(all, total, sizeof(*all), by_seq);
    *count = total;
    return all;
}

/* Tick records: contiguous head ranges; returns admitted[rank] from their runs. */
static bool *admitted_ranks_from_ticks(const struct logged *all, size_t count, uint32_t *head_out)
{
    bool *admitted = calloc(config.length_max, sizeof(bool));
    TK_CHECK(admitted != NULL);
    uint32_t head = 0;
    for (size_t i = 0; i < count; i++) {
        if (all[i].type != QUEUE_RECORD_TICK)
            continue;
        struct tk_reader in;
        tk_reader_init(&in, all[i].data, all[i].len);
        TK_CHECK_EQ(tk_get_u64(&in), EVENT);
        (void)tk_get_i64(&in);
        (void)tk_get_u32(&in);
        (void)tk_get_u32(&in);
        uint32_t from = tk_get_u32(&in), to = tk_get_u32(&in);
        (void)tk_get_i64(&in);
        (void)tk_get_u32(&in);
        (void)tk_get_u64(&in);
        uint32_t runs = tk_get_u16(&in);
        TK_CHECK_EQ(from, head, "tick ranges are contiguous: the head only moves forward, in order");
        uint32_t rank = from;
        for (uint32_t r = 0; r < runs; r++) {
            uint32_t len = tk_get_u16(&in);
            for (uint32_t n = 0; n < len; n++)
                admitted[rank++] = (r % 2) == 0;
        }
        TK_CHECK(tk_reader_done(&in));
        TK_CHECK_EQ(rank, to);
        head = to;
    }
    *head_out = head;
    return admitted;
}

struct ticket_counts {
    uint64_t users, waiting, active, admitted, left, skipped;
};

/* Per ticket: rank order of admissions, one live ticket per user, counters. */
static void check_tickets(const bool *admitted_by_rank, uint32_t head, int64_t now, struct ticket_counts *counts)
{
    struct queue_stats stats;
    queue_stats(q, &stats);
    TK_CHECK_EQ(stats.head_rank, head);
    static uint64_t live_ticket[USERS + 1];
    memset(live_ticket, 0, sizeof(live_ticket));
    memset(counts, 0, sizeof(*counts));
    for (uint64_t ticket = 1; ticket <= stats.tickets_issued; ticket++) {
        struct queue_ticket_info info;
        TK_CHECK_EQ(queue_ticket_inspect(q, ticket, &info), TK_OK);
        TK_CHECK_EQ(info.was_admitted, info.rank < head && admitted_by_rank[info.rank],
                     "ticket %llu rank %u: admissions follow the rank order of the tick records",
                     (unsigned long long)ticket, info.rank);
        if (info.user == 0)
            continue; /* a burned number (two racing joins of one user) */
        TK_CHECK(info.user <= USERS);
        counts->users++;
        counts->admitted += info.was_admitted;
        counts->left += info.state == QUEUE_STATE_LEFT;
        counts->skipped += info.state == QUEUE_STATE_EXPIRED && !info.was_admitted;
        counts->waiting += info.state == QUEUE_STATE_WAITING;
        counts->active += info.state == QUEUE_STATE_ADMITTED;
        TK_CHECK(info.state != QUEUE_STATE_WAITING || info.rank >= head, "nobody waits behind the head");
        bool live = info.state == QUEUE_STATE_WAITING ||
                    (info.state == QUEUE_STATE_ADMITTED && info.admission_expires_ms > now);
        if (live) {
            TK_CHECK_EQ(live_ticket[info.user], 0, "user %llu holds tickets %llu and %llu",
                         (unsigned long long)info.user, (unsigned long long)live_ticket[info.user],
                         (unsigned long long)ticket);
            live_ticket[info.user] = ticket;
        }
    }
    for (uint64_t user = 1; user <= USERS; user++) {
        struct queue_view view;
        if (queue_status(q, user, now, &view) != TK_OK)
            continue;
        if (live_ticket[user] != 0)
            TK_CHECK_EQ(view.ticket, live_ticket[user], "the user's slot names their live ticket");
    }
}

static void check_positions(int64_t now, uint64_t waiting)
{
    bool *seen = calloc(waiting + 2, sizeof(bool));
    TK_CHECK(seen != NULL);
    uint64_t counted = 0;
    for (uint64_t user = 1; user <= USERS; user++) {
        struct queue_view view;
        if (queue_status(q, user, now, &view) != TK_OK || view.state != QUEUE_STATE_WAITING)
            continue;
        TK_CHECK(view.position >= 1 && view.position <= waiting && !seen[view.position],
                  "user %llu position %u of %llu", (unsigned long long)user, view.position,
                  (unsigned long long)waiting);
        seen[view.position] = true;
        counted++;
    }
    TK_CHECK_EQ(counted, waiting, "positions are exactly 1..W");
    free(seen);
}

static void check_replay(const struct logged *all, size_t count, int64_t now)
{
    struct queue *r = NULL;
    TK_CHECK_EQ(queue_create(&r, EVENT, &config), TK_OK);
    for (size_t i = 0; i < count; i++)
        TK_CHECK_EQ(queue_replay(r, all[i].type, all[i].data, all[i].len), TK_OK, "record %zu type %u", i,
                     all[i].type);
    queue_recovered(r, now);
    for (uint64_t user = 1; user <= USERS; user++) {
        struct queue_view a, b;
        enum tk_status sa = queue_status(q, user, now, &a);
        enum tk_status sb = queue_status(r, user, now, &b);
        TK_CHECK_EQ(sa, sb, "user %llu", (unsigned long long)user);
        if (sa != TK_OK)
            continue;
        TK_CHECK(a.ticket == b.ticket && a.state == b.state && a.position == b.position &&
                      a.admission_expires_ms == b.admission_expires_ms,
                  "user %llu: live ticket %llu state %d pos %u, replayed ticket %llu state %d pos %u",
                  (unsigned long long)user, (unsigned long long)a.ticket, a.state, a.position,
                  (unsigned long long)b.ticket, b.state, b.position);
    }
    struct queue_stats x, y;
    queue_stats(q, &x);
    queue_stats(r, &y);
    TK_CHECK(x.joins == y.joins && x.admissions == y.admissions && x.leaves == y.leaves && x.skipped == y.skipped &&
              x.waiting == y.waiting && x.active == y.active && x.head_rank == y.head_rank);
    queue_destroy(r);
}

int main(void)
{
    TK_CHECK_EQ(queue_create(&q, EVENT, &config), TK_OK);
    atomic_store(&sim_now, T0);
    for (int i = 0; i <= WORKERS; i++)
        arena_init(&arenas[i]);
    pthread_t workers[WORKERS], tick_thread;
    struct ticker_result result = {0};
    for (int i = 0; i < WORKERS; i++)
        TK_CHECK_EQ(pthread_create(&workers[i], NULL, worker, &arenas[i]), 0);
    TK_CHECK_EQ(pthread_create(&tick_thread, NULL, ticker, &result), 0);
    pthread_join(tick_thread, NULL);
    for (int i = 0; i < WORKERS; i++) {
        void *failed;
        pthread_join(workers[i], &failed);
        TK_CHECK(failed == NULL, "worker %d saw an impossible answer", i);
    }
    int64_t now = atomic_load(&sim_now);
    struct queue_stats stats;
    queue_stats(q, &stats);
    fprintf(stderr,
            "queue stress: %llu ops, %llu ticks (%.0f simulated s), %llu tickets, %llu joins, %llu admissions, "
            "%llu leaves, %llu skipped, waiting %u, active %u (max seen %llu)\n",
            (unsigned long long)atomic_load(&ops_done), (unsigned long long)result.ticks, (now - T0) / 1000.0,
            (unsigned long long)stats.tickets_issued, (unsigned long long)stats.joins,
            (unsigned long long)stats.admissions, (unsigned long long)stats.leaves, (unsigned long long)stats.skipped,
            stats.waiting, stats.active, (unsigned long long)result.max_active_seen);
    TK_CHECK_EQ(result.violations, 0, "max_active exceeded or a tick failed");
    TK_CHECK(now > config.opens_at_ms, "the run reached the opening");
    TK_CHECK_GT(stats.admissions, 0);
    TK_CHECK_GT(stats.leaves, 0);
    TK_CHECK_GT(stats.skipped, 0);

    size_t count;
    struct logged *all = merged_records(&count);
    uint32_t head;
    bool *admitted = admitted_ranks_from_ticks(all, count, &head);
    struct ticket_counts counts;
    check_tickets(admitted, head, now, &counts);
    TK_CHECK_EQ(stats.joins, counts.users);
    TK_CHECK_EQ(stats.waiting, counts.waiting);
    TK_CHECK_EQ(stats.active, counts.active);
    TK_CHECK_EQ(stats.admissions, counts.admitted);
    TK_CHECK_EQ(stats.leaves, counts.left);
    TK_CHECK_EQ(stats.skipped, counts.skipped);
    TK_CHECK_LEQ(stats.active, config.max_active);
    check_positions(now, counts.waiting);
    check_replay(all, count, now);
    free(admitted);
    free(all);
    for (int i = 0; i <= WORKERS; i++) {
        free(arenas[i].bytes);
        free(arenas[i].entries);
    }
    queue_destroy(q);
    fprintf(stderr, "queue stress: ok\n");
    return 0;
}
