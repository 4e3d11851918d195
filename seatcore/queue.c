/* queue.c — one event's waiting room (see queue.h for the contract).
 *
 * Shape. Every table is sized from length_max at create and never grows:
 * - tickets[length_max]: user, heartbeat, grant expiry and a state word, all
 *   atomics. A ticket number comes from one fetch_add on next_ticket.
 * - a user -> ticket open-addressing table (2x length_max, power of two). A user's
 *   key is claimed by CAS on the key word; the ticket word is then switched by CAS
 *   from the old value (0, or a ticket that left / expired) to a freshly issued
 *   ticket. Two racing joins of one user both issue a ticket, one CAS wins and the
 *   loser's number is burned (VOID), so the user ends with exactly one ticket.
 * - ranks: the admission order. rank == ticket, except that with randomize_pre_open
 *   the tickets [0, P) taken before the opening tick are shuffled (Fisher-Yates on a
 *   seeded splitmix64, so the order is a pure function of (seed, P) and the OPEN
 *   record only carries those two numbers).
 * - head: the next rank the ticker considers (written by the ticker only).
 * - "gone" counts (left or burned while waiting) in Fenwick trees so that
 *   position = (rank - head) - gone(head, rank) + 1 costs O(log n) without a scan.
 *   One tree is indexed by ticket (== rank for everything after the pre-open block)
 *   and one by rank for the shuffled block. The shuffle re-ranks tickets while
 *   leavers run, so each gone pre-open ticket is claimed for the rank tree exactly
 *   once through a flag bit in its state word (see queue_open_shuffle).
 *
 * Ticket lifecycle: EMPTY -> PENDING (joiner filling it) -> WAITING -> ADMITTED ->
 * EXPIRED | LEFT, or WAITING -> LEFT | EXPIRED (skipped), or PENDING -> VOID
 * (burned) / LEFT. States only move forward; replay uses the same order (a leave
 * record always wins, an admission never undoes a leave) so records can be
 * re-applied over a fuzzy snapshot and in any interleaving of racing writers.
 *
 * Trade-offs: the ticker stops at a ticket that is being filled (a join between its
 * fetch_add and its publish, nanoseconds) instead of skipping it; the opening tick
 * does O(P) work once (shuffle + two scans, ~tens of ms at 4M) instead of spreading
 * it; the active count, the gone trees and the counters are rebuilt from ticket
 * states at recovery rather than logged; positions read while others change the
 * trees may be off by one for an instant (clamped to >= 1), never wrong at rest. */
#include "queue.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tk_assert.h"

enum {
    TICKET_EMPTY = 0,
    TICKET_PENDING = 1,
    TICKET_WAITING = 2,
    TICKET_ADMITTED = 3,
    TICKET_LEFT = 4,
    TICKET_EXPIRED = 5,
    TICKET_VOID = 6,
    TICKET_STATE_MASK = 0xffu,
    TICKET_WAS_ADMITTED = 1u << 8,
    TICKET_COUNTED_BY_RANK = 1u << 9, /* its gone count lives in the rank tree */
};

#define QUEUE_JOIN_ATTEMPTS_MAX 64u  /* a user racing themselves; each failure burns one number */
#define QUEUE_CAS_ATTEMPTS_MAX 8u    /* a state word moves forward at most 4 times */
#define QUEUE_RATE_WINDOW_MS 5000u   /* EWMA time constant of the admission rate */
#define QUEUE_SNAPSHOT_MAGIC 0x31535154u /* "TQS1" */
#define QUEUE_SNAPSHOT_VERSION 1u
#define QUEUE_SNAPSHOT_HEADER_BYTES 106u
#define QUEUE_SNAPSHOT_TICKET_BYTES 18u
#define QUEUE_NONE UINT32_MAX
#define QUEUE_REGIONS_MAX 16u
#define QUEUE_HUGE_PAGE_BYTES (UINT64_C(2) << 20)

_Static_assert(TK_QUEUE_LENGTH_MAX_MAX < (UINT32_MAX / 2), "ticket indexes and table slots fit in u32");
_Static_assert(TK_QUEUE_TICK_RANKS_MAX <= TK_QUEUE_LENGTH_MAX_MAX, "a tick never walks more than the queue");
_Static_assert(QUEUE_TICK_RUNS_MAX >= 64 && QUEUE_TICK_RUNS_MAX < UINT16_MAX, "run count fits its u16 field");
_Static_assert((uint64_t)TK_ADMIT_PER_S_MAX * 1000u * 1000u < UINT32_MAX * UINT64_C(1000), "rate_milli fits");
_Static_assert(TK_QUEUE_RECORD_BYTES_MAX >= 29, "join / leave / open records fit");

struct queue_ticket {
    _Atomic uint64_t user;
    _Atomic int64_t heartbeat_ms;
    _Atomic int64_t admission_expires_ms;
    _Atomic uint32_t state;
    uint32_t unused;
};

/* "Gone" marks over indexes [0, size): one bit per index plus a Fenwick tree of
 * per-64-index block counts. A prefix count is one walk of a small tree (64x
 * fewer nodes than one per index, so it stays in cache) plus one popcount. */
struct queue_gone {
    _Atomic uint64_t *bits; /* [blocks] */
    _Atomic uint32_t *tree; /* [blocks + 1], 1-based */
    uint32_t size;
    uint32_t blocks; /* size / 64 + 1: the bit word of index `size` exists */
};

struct queue_user_slot {
    _Atomic uint64_t user;   /* 0 = empty */
    _Atomic uint32_t ticket; /* ticket index + 1; 0 = none */
    uint32_t unused;
};

struct queue {
    uint64_t event_id;
    struct queue_config config;
    uint32_t length_max;

    struct queue_ticket *tickets;
    _Atomic uint64_t next_ticket; /* may overshoot length_max by racing full joins */

    struct queue_user_slot *users; /* key and ticket in one line: one miss per lookup */
    uint32_t user_slots_mask;

    struct queue_gone gone_by_ticket;
    struct queue_gone gone_by_rank; /* only with randomize_pre_open */
    uint32_t *rank_to_ticket;          /* [length_max], pre-open block only */
    uint32_t *ticket_to_rank;
    _Atomic uint32_t pre_open_plus1;   /* 0 until the shuffle is published, then P + 1 */
    uint64_t shuffle_seed;

    /* Ticker state: one thread, except head and rate_milli which readers load. */
    _Atomic uint32_t head;
    uint32_t expire_cursor; /* ranks below hold no unexpired grant */
    bool opened;
    int64_t refill_ms;
    uint64_t tokens_milli;
    int64_t last_tick_ms;
    int64_t last_grant_expires_ms;
    _Atomic uint32_t rate_milli; /* EWMA admissions per second x 1000 */
    uint16_t tick_runs[QUEUE_TICK_RUNS_MAX];

    _Atomic uint64_t joins;
    _Atomic uint64_t admissions;
    _Atomic uint64_t leaves;
    _Atomic uint64_t skipped;
    _Atomic uint64_t waiting;
    _Atomic uint32_t active;
    size_t memory_bytes;
    struct {
        void *base;
        size_t len;
    } regions[QUEUE_REGIONS_MAX]; /* every table's mapping, for destroy */
    uint32_t region_count;
};

/* ---- small helpers ---- */

static inline uint32_t ticket_state(uint32_t word)
{
    return word & TICKET_STATE_MASK;
}

static inline bool user_valid(uint64_t user)
{
    return user != 0 && user <= TK_USER_ID_MAX;
}

/* Tickets handed out so far (the counter may overshoot after a full queue). */
static inline uint32_t tickets_issued(const struct queue *q)
{
    uint64_t next = atomic_load_explicit(&q->next_ticket, memory_order_acquire);
    return next < q->length_max ? (uint32_t)next : q->length_max;
}

static inline uint32_t pre_open_count(const struct queue *q)
{
    uint32_t plus1 = atomic_load(&q->pre_open_plus1); /* seq_cst: see queue_gone_add */
    return plus1 == 0 ? 0 : plus1 - 1;
}

static inline uint32_t rank_of_ticket(const struct queue *q, uint32_t pre_open, uint32_t ticket)
{
    return ticket < pre_open ? q->ticket_to_rank[ticket] : ticket;
}

static inline uint32_t ticket_at_rank(const struct queue *q, uint32_t pre_open, uint32_t rank)
{
    return rank < pre_open ? q->rank_to_ticket[rank] : rank;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* ---- gone counts: bits + a Fenwick tree over 64-index blocks ---- */

static void gone_tree_add(struct queue_gone *g, uint32_t block, uint32_t n)
{
    TK_ASSERT(block < g->blocks);
    /* i grows by its lowest set bit: at most 32 steps. */
    for (uint64_t i = (uint64_t)block + 1; i <= g->blocks; i += i & (~i + 1))
        atomic_fetch_add_explicit(&g->tree[i], n, memory_order_relaxed);
    TK_ASSERT(n > 0);
}

/* Marks index gone; each index is marked at most once (the callers' protocol). */
static void gone_mark(struct queue_gone *g, uint32_t index)
{
    TK_ASSERT(index < g->size);
    uint64_t bit = UINT64_C(1) << (index & 63u);
    uint64_t prev = atomic_fetch_or_explicit(&g->bits[index >> 6], bit, memory_order_relaxed);
    TK_ASSERT(!(prev & bit));
    gone_tree_add(g, index >> 6, 1);
}

/* Gone indexes in [0, end). */
static uint64_t gone_prefix(const struct queue_gone *g, uint32_t end)
{
    TK_ASSERT(end <= g->size);
    uint32_t block = end >> 6;
    uint64_t sum = 0;
    for (uint32_t i = block; i > 0; i &= i - 1) /* clears one bit a step: at most 32 */
        sum += atomic_load_explicit(&g->tree[i], memory_order_relaxed);
    uint64_t below = (UINT64_C(1) << (end & 63u)) - 1;
    sum += (uint64_t)__builtin_popcountll(atomic_load_explicit(&g->bits[block], memory_order_relaxed) & below);
    TK_ASSERT(block < g->blocks);
    return sum;
}

static uint64_t gone_range(const struct queue_gone *g, uint32_t from, uint32_t to)
{
    if (to <= from)
        return 0;
    uint64_t hi = gone_prefix(g, to);
    uint64_t lo = gone_prefix(g, from);
    return hi > lo ? hi - lo : 0; /* racing marks may make lo run ahead for an instant */
}

/* Only while nobody else reads or marks: clear, then mark_unshared..., then build. */
static void gone_clear(struct queue_gone *g)
{
    TK_ASSERT(g->bits != NULL && g->tree != NULL);
    memset(g->bits, 0, (size_t)g->blocks * sizeof(g->bits[0]));
    memset(g->tree, 0, ((size_t)g->blocks + 1) * sizeof(g->tree[0]));
}

static void gone_mark_unshared(struct queue_gone *g, uint32_t index)
{
    TK_ASSERT(index < g->size);
    atomic_fetch_or_explicit(&g->bits[index >> 6], UINT64_C(1) << (index & 63u), memory_order_relaxed);
    atomic_fetch_add_explicit(&g->tree[(index >> 6) + 1], 1, memory_order_relaxed);
}

/* Turns per-block counts in tree[1..blocks] into a Fenwick tree in O(blocks). */
static void gone_build_unshared(struct queue_gone *g)
{
    TK_ASSERT(g->tree != NULL);
    for (uint64_t i = 1; i <= g->blocks; i++) {
        uint64_t parent = i + (i & (~i + 1));
        if (parent <= g->blocks) {
            uint32_t v = atomic_load_explicit(&g->tree[i], memory_order_relaxed);
            atomic_fetch_add_explicit(&g->tree[parent], v, memory_order_relaxed);
        }
    }
    TK_ASSERT(g->blocks == g->size / 64u + 1u);
}

static bool gone_alloc(struct queue *q, struct queue_gone *g, uint32_t size);

/* ---- user table ---- */

static uint32_t user_slot_find(const struct queue *q, uint64_t user)
{
    TK_ASSERT(user_valid(user));
    TK_ASSERT(q->user_slots_mask >= 2u * q->length_max - 1u); /* load factor <= 1/2 */
    uint32_t slot = (uint32_t)tk_hash_u64(user) & q->user_slots_mask;
    for (uint32_t probe = 0; probe <= q->user_slots_mask; probe++) {
        uint64_t key = atomic_load_explicit(&q->users[slot].user, memory_order_acquire);
        if (key == user)
            return slot;
        if (key == 0)
            return QUEUE_NONE;
        slot = (slot + 1) & q->user_slots_mask;
    }
    return QUEUE_NONE;
}

/* Finds the user's slot or claims an empty one. TK_ERR_QUEUE_FULL when the table
 * has no room (it holds 2x length_max keys, so only after a full queue). */
static enum tk_status user_slot_claim(struct queue *q, uint64_t user, uint32_t *slot_out)
{
    TK_ASSERT(user_valid(user));
    TK_ASSERT(slot_out != NULL);
    uint32_t slot = (uint32_t)tk_hash_u64(user) & q->user_slots_mask;
    for (uint32_t probe = 0; probe <= q->user_slots_mask; probe++) {
        uint64_t key = atomic_load_explicit(&q->users[slot].user, memory_order_acquire);
        if (key == 0 && atomic_compare_exchange_strong(&q->users[slot].user, &key, user)) {
            *slot_out = slot;
            return TK_OK;
        }
        if (key == user) { /* found, or another thread just claimed it for the same user */
            *slot_out = slot;
            return TK_OK;
        }
        slot = (slot + 1) & q->user_slots_mask;
    }
    return TK_ERR_QUEUE_FULL;
}

/* ---- create / destroy ---- */

static bool config_valid(const struct queue_config *c)
{
    if (c->length_max == 0 || c->length_max > TK_QUEUE_LENGTH_MAX_MAX)
        return false;
    if (c->admit_per_s == 0 || c->admit_per_s > TK_ADMIT_PER_S_MAX)
        return false;
    if (c->max_active == 0 || c->max_active > TK_MAX_ACTIVE_MAX)
        return false;
    if (c->admission_ttl_ms < TK_ADMISSION_TTL_MS_MIN || c->admission_ttl_ms > TK_ADMISSION_TTL_MS_MAX)
        return false;
    if (c->heartbeat_timeout_ms < TK_HEARTBEAT_TIMEOUT_MS_MIN || c->heartbeat_timeout_ms > TK_HEARTBEAT_TIMEOUT_MS_MAX)
        return false;
    return c->opens_at_ms >= 0;
}

/* Zeroed, lazily committed memory for one table. Tables of 2 MiB and more are
 * aligned to and advised onto transparent huge pages: lookups land at random in
 * tables of tens of MiB, and a TLB miss (a nested page walk under virtualisation)
 * costs more than the cache miss itself. */
static void *queue_calloc(struct queue *q, size_t count, size_t size)
{
    TK_ASSERT(count > 0 && size > 0 && count <= SIZE_MAX / size);
    TK_ASSERT(q->region_count < QUEUE_REGIONS_MAX);
    size_t bytes = count * size;
    bool huge = bytes >= QUEUE_HUGE_PAGE_BYTES;
    size_t rounded = (bytes + QUEUE_HUGE_PAGE_BYTES - 1) & ~(size_t)(QUEUE_HUGE_PAGE_BYTES - 1);
    size_t len = huge ? rounded + QUEUE_HUGE_PAGE_BYTES : bytes;
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    q->regions[q->region_count].base = base;
    q->regions[q->region_count].len = len;
    q->region_count++;
    q->memory_bytes += bytes;
    if (!huge)
        return base;
    uintptr_t aligned = ((uintptr_t)base + QUEUE_HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(QUEUE_HUGE_PAGE_BYTES - 1);
    (void)madvise((void *)aligned, rounded, MADV_HUGEPAGE); /* advice only: small pages still work */
    return (void *)aligned;
}

static bool gone_alloc(struct queue *q, struct queue_gone *g, uint32_t size)
{
    TK_ASSERT(size >= 1 && size <= TK_QUEUE_LENGTH_MAX_MAX);
    g->size = size;
    g->blocks = size / 64u + 1u;
    g->bits = queue_calloc(q, g->blocks, sizeof(g->bits[0]));
    g->tree = queue_calloc(q, (size_t)g->blocks + 1, sizeof(g->tree[0]));
    return g->bits != NULL && g->tree != NULL;
}

enum tk_status queue_create(struct queue **out, uint64_t event_id, const struct queue_config *config)
{
    TK_ASSERT(out != NULL);
    *out = NULL;
    if (config == NULL || event_id == 0 || !config_valid(config))
        return TK_ERR_INVALID;
    struct queue *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return TK_ERR_FULL;
    q->memory_bytes = sizeof(*q);
    q->event_id = event_id;
    q->config = *config;
    q->length_max = config->length_max;
    uint32_t slots = 16;
    while (slots < 2u * config->length_max) /* at most 23 doublings */
        slots <<= 1;
    q->user_slots_mask = slots - 1;
    TK_ASSERT(slots >= 2u * config->length_max && (slots & (slots - 1)) == 0);
    q->tickets = queue_calloc(q, config->length_max, sizeof(struct queue_ticket));
    q->users = queue_calloc(q, slots, sizeof(struct queue_user_slot));
    if (q->tickets == NULL || q->users == NULL || !gone_alloc(q, &q->gone_by_ticket, config->length_max))
        goto fail;
    if (config->randomize_pre_open) {
        q->rank_to_ticket = queue_calloc(q, config->length_max, sizeof(uint32_t));
        q->ticket_to_rank = queue_calloc(q, config->length_max, sizeof(uint32_t));
        if (!gone_alloc(q, &q->gone_by_rank, config->length_max) || q->rank_to_ticket == NULL ||
            q->ticket_to_rank == NULL)
            goto fail;
    }
    TK_ASSERT(q->memory_bytes > sizeof(*q));
    *out = q;
    return TK_OK;
fail:
    queue_destroy(q);
    return TK_ERR_FULL;
}

void queue_destroy(struct queue *q)
{
    if (q == NULL)
        return;
    TK_ASSERT(q->region_count <= QUEUE_REGIONS_MAX);
    for (uint32_t i = 0; i < q->region_count; i++)
        munmap(q->regions[i].base, q->regions[i].len);
    free(q);
}

size_t queue_memory_bytes(const struct queue *q)
{
    TK_ASSERT(q != NULL);
    TK_ASSERT(q->memory_bytes >= sizeof(*q));
    return q->memory_bytes;
}

/* ---- gone counts, positions, views ---- */

/* Ticket t stopped waiting (left, or its number was burned). Counted exactly once
 * in the tree that positions read for its rank. A pre-open ticket is counted by
 * rank once the shuffle is published; whoever sets COUNTED_BY_RANK first (this
 * thread or the opening tick's scans) adds it. The seq_cst CAS that made t gone,
 * followed by the seq_cst load of pre_open_plus1, guarantees that if we still see
 * "not shuffled" the opening tick's second scan (after its seq_cst publish) sees
 * t gone and counts it. Before the shuffle counts go to the ticket tree, which
 * positions no longer read below P afterwards. */
static void queue_gone_add(struct queue *q, uint32_t t)
{
    TK_ASSERT(t < q->length_max);
    uint32_t pre_open = pre_open_count(q);
    if (t < pre_open) {
        uint32_t prev = atomic_fetch_or(&q->tickets[t].state, (uint32_t)TICKET_COUNTED_BY_RANK);
        TK_ASSERT(ticket_state(prev) == TICKET_LEFT || ticket_state(prev) == TICKET_VOID);
        if (!(prev & TICKET_COUNTED_BY_RANK))
            gone_mark(&q->gone_by_rank, q->ticket_to_rank[t]);
        return;
    }
    gone_mark(&q->gone_by_ticket, t);
}

/* 1 = next. Waiting tickets between head and this one, counting this one. */
static uint32_t queue_position(const struct queue *q, uint32_t t)
{
    TK_ASSERT(t < q->length_max);
    uint32_t pre_open = pre_open_count(q);
    uint32_t rank = rank_of_ticket(q, pre_open, t);
    uint32_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    if (rank <= head)
        return 1;
    uint64_t gone = 0;
    if (pre_open > 0) {
        uint32_t from = head < pre_open ? head : pre_open;
        uint32_t to = rank < pre_open ? rank : pre_open;
        gone += gone_range(&q->gone_by_rank, from, to);
    }
    gone += gone_range(&q->gone_by_ticket, head > pre_open ? head : pre_open, rank > pre_open ? rank : pre_open);
    uint64_t span = rank - head;
    TK_ASSERT(span <= q->length_max);
    return gone >= span ? 1 : (uint32_t)(span - gone + 1);
}

static uint32_t queue_eta_s(const struct queue *q, uint32_t position, int64_t now_ms)
{
    TK_ASSERT(position >= 1);
    uint64_t admit = q->config.admit_per_s;
    uint64_t eta;
    if (now_ms < q->config.opens_at_ms) {
        uint64_t to_open_ms = (uint64_t)q->config.opens_at_ms - (uint64_t)now_ms;
        eta = to_open_ms / 1000 + (to_open_ms % 1000 != 0) + (position + admit - 1) / admit;
    } else {
        uint64_t rate = atomic_load_explicit(&q->rate_milli, memory_order_relaxed);
        if (rate == 0) /* no measurement yet: the configured pace */
            rate = admit * 1000;
        eta = ((uint64_t)position * 1000 + rate - 1) / rate;
    }
    TK_ASSERT(admit >= 1);
    return eta > TK_QUEUE_ETA_S_MAX ? TK_QUEUE_ETA_S_MAX : (uint32_t)eta;
}

static void queue_view_fill(const struct queue *q, uint32_t t, int64_t now_ms, struct queue_view *out)
{
    TK_ASSERT(t < q->length_max);
    const struct queue_ticket *ticket = &q->tickets[t];
    uint32_t word = atomic_load_explicit(&ticket->state, memory_order_acquire);
    memset(out, 0, sizeof(*out));
    out->ticket = (uint64_t)t + 1;
    out->rank = rank_of_ticket(q, pre_open_count(q), t);
    switch (ticket_state(word)) {
    case TICKET_PENDING:
    case TICKET_WAITING:
        out->state = QUEUE_STATE_WAITING;
        out->position = queue_position(q, t);
        out->eta_s = queue_eta_s(q, out->position, now_ms);
        TK_ASSERT(out->position >= 1 && out->position <= q->length_max);
        break;
    case TICKET_ADMITTED:
        out->admission_expires_ms = atomic_load_explicit(&ticket->admission_expires_ms, memory_order_relaxed);
        /* Lazy expiry: the ticker may not have passed it yet. */
        out->state = out->admission_expires_ms > now_ms ? QUEUE_STATE_ADMITTED : QUEUE_STATE_EXPIRED;
        break;
    case TICKET_LEFT:
        out->state = QUEUE_STATE_LEFT;
        break;
    case TICKET_EXPIRED:
        out->state = QUEUE_STATE_EXPIRED;
        if (word & TICKET_WAS_ADMITTED)
            out->admission_expires_ms = atomic_load_explicit(&ticket->admission_expires_ms, memory_order_relaxed);
        break;
    default:
        TK_UNREACHABLE(); /* a user's slot only ever points at a published ticket */
    }
}

static void heartbeat_touch(struct queue_ticket *ticket, int64_t now_ms)
{
    /* Racing touches may store a slightly older time: harmless for a 60 s timeout. */
    if (atomic_load_explicit(&ticket->heartbeat_ms, memory_order_relaxed) < now_ms)
        atomic_store_explicit(&ticket->heartbeat_ms, now_ms, memory_order_relaxed);
}

/* The user's current ticket index + 1, or 0. */
static uint32_t queue_user_ticket(const struct queue *q, uint64_t user)
{
    uint32_t slot = user_slot_find(q, user);
    if (slot == QUEUE_NONE)
        return 0;
    uint32_t t1 = atomic_load_explicit(&q->users[slot].ticket, memory_order_acquire);
    TK_ASSERT(t1 <= q->length_max);
    return t1;
}

/* ---- small records ---- */

static void record_begin(struct tk_buf *record)
{
    TK_ASSERT(record->len == 0 && !record->failed);
    TK_ASSERT(record->cap >= TK_QUEUE_RECORD_BYTES_MAX);
}

static void record_join(const struct queue *q, struct tk_buf *record, uint16_t *record_type, uint64_t user,
                        uint32_t t, int64_t now_ms)
{
    if (record == NULL)
        return;
    tk_put_u64(record, q->event_id);
    tk_put_u64(record, user);
    tk_put_u32(record, t);
    tk_put_i64(record, now_ms);
    TK_ASSERT(!record->failed && record->len == 28);
    *record_type = QUEUE_RECORD_JOIN;
}

static void record_leave(const struct queue *q, struct tk_buf *record, uint16_t *record_type, uint64_t user,
                         uint32_t t, bool was_admitted, int64_t now_ms)
{
    if (record == NULL)
        return;
    TK_ASSERT(t < q->length_max && user_valid(user));
    tk_put_u64(record, q->event_id);
    tk_put_u64(record, user);
    tk_put_u32(record, t);
    tk_put_u8(record, was_admitted ? 1 : 0);
    tk_put_i64(record, now_ms);
    TK_ASSERT(!record->failed && record->len == 29);
    *record_type = QUEUE_RECORD_LEAVE;
}

/* ---- join ---- */

static bool ticket_is_current(const struct queue *q, uint32_t t, int64_t now_ms)
{
    const struct queue_ticket *ticket = &q->tickets[t];
    uint32_t state = ticket_state(atomic_load_explicit(&ticket->state, memory_order_acquire));
    TK_ASSERT(state != TICKET_EMPTY && state != TICKET_VOID);
    if (state == TICKET_PENDING || state == TICKET_WAITING)
        return true;
    return state == TICKET_ADMITTED &&
           atomic_load_explicit(&ticket->admission_expires_ms, memory_order_relaxed) > now_ms;
}

static enum tk_status ticket_issue(struct queue *q, uint64_t user, int64_t now_ms, uint32_t *out)
{
    TK_ASSERT(user_valid(user));
    /* The pre-check keeps the counter's overshoot to the joins racing at the end. */
    if (atomic_load_explicit(&q->next_ticket, memory_order_relaxed) >= q->length_max)
        return TK_ERR_QUEUE_FULL;
    uint64_t t = atomic_fetch_add(&q->next_ticket, 1);
    if (t >= q->length_max)
        return TK_ERR_QUEUE_FULL;
    struct queue_ticket *ticket = &q->tickets[t];
    TK_ASSERT(atomic_load_explicit(&ticket->state, memory_order_relaxed) == TICKET_EMPTY);
    atomic_store_explicit(&ticket->user, user, memory_order_relaxed);
    atomic_store_explicit(&ticket->heartbeat_ms, now_ms, memory_order_relaxed);
    atomic_store_explicit(&ticket->admission_expires_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&ticket->state, TICKET_PENDING, memory_order_release);
    *out = (uint32_t)t;
    return TK_OK;
}

/* t is now the user's ticket (our CAS on the user table won). */
static void ticket_publish(struct queue *q, uint32_t t)
{
    /* Count first, so a racing leave can never drive `waiting` below zero. */
    atomic_fetch_add_explicit(&q->waiting, 1, memory_order_relaxed);
    uint32_t expected = TICKET_PENDING;
    if (!atomic_compare_exchange_strong(&q->tickets[t].state, &expected, TICKET_WAITING)) {
        TK_ASSERT(ticket_state(expected) == TICKET_LEFT); /* the user left already */
        atomic_fetch_sub_explicit(&q->waiting, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&q->joins, 1, memory_order_relaxed);
}

/* Our CAS on the user table lost: nobody can see t, burn its number. */
static void ticket_burn(struct queue *q, uint32_t t)
{
    uint32_t expected = TICKET_PENDING;
    bool burned = atomic_compare_exchange_strong(&q->tickets[t].state, &expected, TICKET_VOID);
    TK_ASSERT(burned);
    queue_gone_add(q, t);
}

enum tk_status queue_join(struct queue *q, uint64_t user_id, int64_t now_ms, struct queue_view *out,
                          struct tk_buf *record, uint16_t *record_type)
{
    TK_ASSERT(q != NULL && out != NULL && record_type != NULL);
    if (record != NULL)
        record_begin(record);
    *record_type = 0;
    if (!user_valid(user_id))
        return TK_ERR_INVALID;
    uint32_t slot = user_slot_find(q, user_id);
    if (slot == QUEUE_NONE) {
        if (atomic_load_explicit(&q->next_ticket, memory_order_relaxed) >= q->length_max)
            return TK_ERR_QUEUE_FULL; /* do not spend a table slot on a join that cannot succeed */
        enum tk_status status = user_slot_claim(q, user_id, &slot);
        if (status != TK_OK)
            return status;
    }
    for (uint32_t attempt = 0; attempt < QUEUE_JOIN_ATTEMPTS_MAX; attempt++) {
        uint32_t current = atomic_load_explicit(&q->users[slot].ticket, memory_order_acquire);
        if (current != 0 && ticket_is_current(q, current - 1, now_ms)) {
            heartbeat_touch(&q->tickets[current - 1], now_ms);
            queue_view_fill(q, current - 1, now_ms, out);
            return TK_OK; /* idempotent: same ticket, nothing to log */
        }
        uint32_t t;
        enum tk_status status = ticket_issue(q, user_id, now_ms, &t);
        if (status != TK_OK)
            return status;
        TK_ASSERT(slot <= q->user_slots_mask && t < q->length_max);
        if (atomic_compare_exchange_strong(&q->users[slot].ticket, &current, t + 1)) {
            ticket_publish(q, t);
            record_join(q, record, record_type, user_id, t, now_ms);
            queue_view_fill(q, t, now_ms, out);
            return TK_OK;
        }
        ticket_burn(q, t); /* the same user joined on another thread; take theirs */
    }
    return TK_ERR_BUSY;
}

/* ---- status, heartbeat, leave ---- */

enum tk_status queue_status(struct queue *q, uint64_t user_id, int64_t now_ms, struct queue_view *out)
{
    TK_ASSERT(q != NULL && out != NULL);
    if (!user_valid(user_id))
        return TK_ERR_INVALID;
    uint32_t t1 = queue_user_ticket(q, user_id);
    if (t1 == 0)
        return TK_ERR_NOT_FOUND;
    heartbeat_touch(&q->tickets[t1 - 1], now_ms);
    queue_view_fill(q, t1 - 1, now_ms, out);
    return TK_OK;
}

enum tk_status queue_heartbeat(struct queue *q, uint64_t user_id, int64_t now_ms)
{
    TK_ASSERT(q != NULL);
    if (!user_valid(user_id))
        return TK_ERR_INVALID;
    uint32_t t1 = queue_user_ticket(q, user_id);
    if (t1 == 0)
        return TK_ERR_NOT_FOUND;
    heartbeat_touch(&q->tickets[t1 - 1], now_ms);
    return TK_OK;
}

enum tk_status queue_leave(struct queue *q, uint64_t user_id, int64_t now_ms, struct tk_buf *record,
                           uint16_t *record_type)
{
    TK_ASSERT(q != NULL && record_type != NULL);
    if (record != NULL)
        record_begin(record);
    *record_type = 0;
    if (!user_valid(user_id))
        return TK_ERR_INVALID;
    uint32_t t1 = queue_user_ticket(q, user_id);
    if (t1 == 0)
        return TK_ERR_NOT_FOUND;
    uint32_t t = t1 - 1;
    struct queue_ticket *ticket = &q->tickets[t];
    for (uint32_t attempt = 0; attempt < QUEUE_CAS_ATTEMPTS_MAX; attempt++) {
        uint32_t word = atomic_load(&ticket->state);
        uint32_t state = ticket_state(word);
        if (state == TICKET_LEFT || state == TICKET_EXPIRED)
            return TK_OK; /* already out: nothing changes, nothing to log */
        if (state == TICKET_ADMITTED &&
            atomic_load_explicit(&ticket->admission_expires_ms, memory_order_relaxed) <= now_ms)
            return TK_OK; /* expired already; the ticker frees its place */
        TK_ASSERT(state == TICKET_PENDING || state == TICKET_WAITING || state == TICKET_ADMITTED);
        if (!atomic_compare_exchange_strong(&ticket->state, &word, (word & ~TICKET_STATE_MASK) | TICKET_LEFT))
            continue; /* it moved forward (admitted, expired, skipped): look again */
        if (state == TICKET_ADMITTED) {
            atomic_fetch_sub_explicit(&q->active, 1, memory_order_relaxed);
        } else {
            if (state == TICKET_WAITING)
                atomic_fetch_sub_explicit(&q->waiting, 1, memory_order_relaxed);
            queue_gone_add(q, t);
        }
        atomic_fetch_add_explicit(&q->leaves, 1, memory_order_relaxed);
        record_leave(q, record, record_type, user_id, t, state == TICKET_ADMITTED, now_ms);
        return TK_OK;
    }
    return TK_ERR_BUSY;
}

/* ---- the opening: seeded shuffle of the pre-open block ---- */

/* Fisher-Yates over tickets [0, pre_open): a pure function of (seed, pre_open). */
static void queue_shuffle_compute(struct queue *q, uint64_t seed, uint32_t pre_open)
{
    TK_ASSERT(q->rank_to_ticket != NULL && q->ticket_to_rank != NULL);
    TK_ASSERT(pre_open <= q->length_max);
    for (uint32_t i = 0; i < pre_open; i++)
        q->rank_to_ticket[i] = i;
    uint64_t state = seed;
    for (uint32_t i = pre_open; i > 1; i--) {
        uint32_t j = (uint32_t)(((unsigned __int128)splitmix64(&state) * i) >> 64); /* uniform in [0, i) */
        uint32_t swap = q->rank_to_ticket[i - 1];
        q->rank_to_ticket[i - 1] = q->rank_to_ticket[j];
        q->rank_to_ticket[j] = swap;
    }
    for (uint32_t rank = 0; rank < pre_open; rank++)
        q->ticket_to_rank[q->rank_to_ticket[rank]] = rank;
}

static bool ticket_word_gone(uint32_t word)
{
    return ticket_state(word) == TICKET_LEFT || ticket_state(word) == TICKET_VOID;
}

/* Moves the gone counts of the pre-open block into the rank tree while leavers run
 * (the protocol is described at queue_gone_add). Scan 1 runs before the publish,
 * when nobody reads or adds to the rank tree, so it counts in place and builds in
 * O(n); scan 2 runs after it and catches leaves that raced scan 1. */
static void queue_open_shuffle(struct queue *q, uint32_t pre_open)
{
    TK_ASSERT(q->config.randomize_pre_open);
    TK_ASSERT(atomic_load(&q->pre_open_plus1) == 0);
    queue_shuffle_compute(q, q->shuffle_seed, pre_open);
    for (uint32_t t = 0; t < pre_open; t++) {
        if (!ticket_word_gone(atomic_load(&q->tickets[t].state)))
            continue;
        uint32_t prev = atomic_fetch_or(&q->tickets[t].state, (uint32_t)TICKET_COUNTED_BY_RANK);
        if (!(prev & TICKET_COUNTED_BY_RANK))
            gone_mark_unshared(&q->gone_by_rank, q->ticket_to_rank[t]);
    }
    gone_build_unshared(&q->gone_by_rank);
    atomic_store(&q->pre_open_plus1, pre_open + 1); /* seq_cst publish */
    for (uint32_t t = 0; t < pre_open; t++) {
        uint32_t word = atomic_load(&q->tickets[t].state);
        if (!ticket_word_gone(word) || (word & TICKET_COUNTED_BY_RANK))
            continue;
        uint32_t prev = atomic_fetch_or(&q->tickets[t].state, (uint32_t)TICKET_COUNTED_BY_RANK);
        if (!(prev & TICKET_COUNTED_BY_RANK))
            gone_mark(&q->gone_by_rank, q->ticket_to_rank[t]);
    }
}

static void queue_mark_opened(struct queue *q, int64_t now_ms)
{
    q->opened = true;
    q->refill_ms = q->config.opens_at_ms; /* tokens accrue from the opening, at most 1 s worth */
    q->tokens_milli = 0;
    q->last_tick_ms = now_ms;
    atomic_store_explicit(&q->rate_milli, q->config.admit_per_s * 1000u, memory_order_relaxed);
}

/* The first tick at/after opens_at. With randomize_pre_open, the tickets taken so
 * far (before this tick) are shuffled and the OPEN record says so; admissions start
 * at the next tick (one record per call). */
static enum tk_status queue_open(struct queue *q, int64_t now_ms, struct tk_buf *record, uint16_t *record_type)
{
    TK_ASSERT(!q->opened);
    TK_ASSERT(now_ms >= q->config.opens_at_ms);
    queue_mark_opened(q, now_ms);
    if (!q->config.randomize_pre_open)
        return TK_OK; /* nothing a user sees changed; the first tick record implies the opening */
    uint32_t pre_open = tickets_issued(q);
    q->shuffle_seed = q->config.random_seed;
    queue_open_shuffle(q, pre_open);
    if (record != NULL) {
        tk_put_u64(record, q->event_id);
        tk_put_u64(record, q->shuffle_seed);
        tk_put_u32(record, pre_open);
        tk_put_i64(record, now_ms);
        TK_ASSERT(!record->failed && record->len == 28);
        *record_type = QUEUE_RECORD_OPEN;
    }
    return TK_OK;
}

/* ---- ticks ---- */

struct tick_plan {
    int64_t now_ms;
    uint32_t expire_from, expire_to;
    uint32_t head_from, head_to;
    int64_t grant_expires_ms;
    uint64_t budget;    /* admissions this tick may make */
    uint32_t run_index; /* current run in q->tick_runs; even = admitted, odd = skipped */
    uint32_t admitted;
    bool blocked;       /* a fresh waiter was left at the head for lack of budget */
};

enum tick_outcome { TICK_STOP, TICK_ADMIT, TICK_SKIP };

/* Grants expire in rank order (admitted in rank order with a non-decreasing
 * expiry), so the cursor stops at the first live grant. */
static void tick_expire(struct queue *q, struct tick_plan *plan)
{
    uint32_t pre_open = pre_open_count(q);
    uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint32_t cursor = q->expire_cursor;
    TK_ASSERT(cursor <= head);
    plan->expire_from = cursor;
    for (uint32_t n = 0; cursor < head && n < TK_QUEUE_TICK_RANKS_MAX; n++) {
        struct queue_ticket *ticket = &q->tickets[ticket_at_rank(q, pre_open, cursor)];
        uint32_t word = atomic_load(&ticket->state);
        if (ticket_state(word) == TICKET_ADMITTED) {
            if (atomic_load_explicit(&ticket->admission_expires_ms, memory_order_relaxed) > plan->now_ms)
                break;
            if (atomic_compare_exchange_strong(&ticket->state, &word, (word & ~TICKET_STATE_MASK) | TICKET_EXPIRED))
                atomic_fetch_sub_explicit(&q->active, 1, memory_order_relaxed);
            else
                TK_ASSERT(ticket_state(word) == TICKET_LEFT); /* only a leave races an admitted ticket */
        }
        cursor++;
    }
    q->expire_cursor = cursor;
    plan->expire_to = cursor;
}

static void tick_refill(struct queue *q, int64_t now_ms)
{
    uint64_t cap = (uint64_t)q->config.admit_per_s * 1000u;
    TK_ASSERT(q->opened);
    if (now_ms > q->refill_ms) {
        uint64_t elapsed_ms = (uint64_t)now_ms - (uint64_t)q->refill_ms;
        if (elapsed_ms > 1000) /* the bucket holds one second; also keeps the product small */
            elapsed_ms = 1000;
        q->tokens_milli += (uint64_t)q->config.admit_per_s * elapsed_ms;
        q->refill_ms = now_ms;
    }
    if (q->tokens_milli > cap)
        q->tokens_milli = cap;
    TK_ASSERT(q->tokens_milli <= cap);
}

static enum tick_outcome tick_consider(struct queue *q, uint32_t t, struct tick_plan *plan)
{
    struct queue_ticket *ticket = &q->tickets[t];
    uint32_t word = atomic_load(&ticket->state);
    uint32_t state = ticket_state(word);
    if (state == TICKET_EMPTY || state == TICKET_PENDING)
        return TICK_STOP; /* a join is filling it right now: next tick */
    if (state != TICKET_WAITING) {
        TK_ASSERT(state == TICKET_LEFT || state == TICKET_VOID);
        return TICK_SKIP;
    }
    int64_t heartbeat = atomic_load_explicit(&ticket->heartbeat_ms, memory_order_relaxed);
    if (heartbeat < plan->now_ms - (int64_t)q->config.heartbeat_timeout_ms) {
        if (atomic_compare_exchange_strong(&ticket->state, &word, TICKET_EXPIRED)) {
            atomic_fetch_sub_explicit(&q->waiting, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&q->skipped, 1, memory_order_relaxed);
        } else {
            TK_ASSERT(ticket_state(word) == TICKET_LEFT);
        }
        return TICK_SKIP;
    }
    if (plan->admitted >= plan->budget) {
        plan->blocked = true;
        return TICK_STOP;
    }
    atomic_store_explicit(&ticket->admission_expires_ms, plan->grant_expires_ms, memory_order_relaxed);
    atomic_fetch_add_explicit(&q->active, 1, memory_order_relaxed); /* before the CAS: a leave may follow */
    if (!atomic_compare_exchange_strong(&ticket->state, &word, TICKET_ADMITTED | TICKET_WAS_ADMITTED)) {
        TK_ASSERT(ticket_state(word) == TICKET_LEFT);
        atomic_fetch_sub_explicit(&q->active, 1, memory_order_relaxed);
        return TICK_SKIP;
    }
    atomic_fetch_sub_explicit(&q->waiting, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&q->admissions, 1, memory_order_relaxed);
    plan->admitted++;
    return TICK_ADMIT;
}

/* Appends one rank to the runs; needs at most two new runs of room. */
static void tick_run_push(struct queue *q, struct tick_plan *plan, bool admitted)
{
    uint32_t want = admitted ? 0u : 1u;
    uint32_t i = plan->run_index;
    TK_ASSERT(i + 2 < QUEUE_TICK_RUNS_MAX);
    if ((i & 1u) != want || q->tick_runs[i] == UINT16_MAX) {
        q->tick_runs[++i] = 0;
        if ((i & 1u) != want)
            q->tick_runs[++i] = 0;
    }
    TK_ASSERT((i & 1u) == want && q->tick_runs[i] < UINT16_MAX);
    q->tick_runs[i]++;
    plan->run_index = i;
}

static void tick_admit(struct queue *q, struct tick_plan *plan)
{
    uint32_t pre_open = pre_open_count(q);
    uint32_t end = tickets_issued(q);
    uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint32_t active = atomic_load_explicit(&q->active, memory_order_relaxed);
    TK_ASSERT(head <= end && active <= q->config.max_active);
    uint64_t budget = q->tokens_milli / 1000u;
    uint64_t room = active < q->config.max_active ? q->config.max_active - active : 0;
    budget = budget < room ? budget : room;
    plan->budget = budget < TK_ADMISSIONS_PER_TICK_MAX ? budget : TK_ADMISSIONS_PER_TICK_MAX;
    int64_t grant = plan->now_ms + (int64_t)q->config.admission_ttl_ms;
    plan->grant_expires_ms = grant > q->last_grant_expires_ms ? grant : q->last_grant_expires_ms;
    plan->head_from = head;
    plan->run_index = 0;
    q->tick_runs[0] = 0;
    for (uint32_t n = 0; head < end && n < TK_QUEUE_TICK_RANKS_MAX && plan->run_index + 2 < QUEUE_TICK_RUNS_MAX; n++) {
        enum tick_outcome outcome = tick_consider(q, ticket_at_rank(q, pre_open, head), plan);
        if (outcome == TICK_STOP)
            break;
        tick_run_push(q, plan, outcome == TICK_ADMIT);
        head++;
    }
    atomic_store_explicit(&q->head, head, memory_order_release);
    plan->head_to = head;
    TK_ASSERT(plan->admitted <= plan->budget);
    q->tokens_milli -= (uint64_t)plan->admitted * 1000u;
    if (plan->admitted > 0)
        q->last_grant_expires_ms = plan->grant_expires_ms;
}

/* EWMA of the admission rate, measured only while someone was waiting to be
 * admitted (an empty queue says nothing about how fast the queue moves). */
static void tick_measure(struct queue *q, const struct tick_plan *plan)
{
    TK_ASSERT(q->opened);
    if (plan->now_ms <= q->last_tick_ms)
        return;
    uint64_t elapsed_ms = (uint64_t)plan->now_ms - (uint64_t)q->last_tick_ms;
    q->last_tick_ms = plan->now_ms;
    if (plan->admitted == 0 && !plan->blocked)
        return;
    uint64_t cap = (uint64_t)q->config.admit_per_s * 1000u;
    uint64_t instant = (uint64_t)plan->admitted * 1000u * 1000u / elapsed_ms;
    if (instant > cap) /* a burst says nothing about the long-run pace */
        instant = cap;
    uint64_t rate = atomic_load_explicit(&q->rate_milli, memory_order_relaxed);
    if (elapsed_ms >= QUEUE_RATE_WINDOW_MS)
        rate = instant;
    else
        rate = (rate * (QUEUE_RATE_WINDOW_MS - elapsed_ms) + instant * elapsed_ms) / QUEUE_RATE_WINDOW_MS;
    TK_ASSERT(rate <= cap);
    atomic_store_explicit(&q->rate_milli, (uint32_t)rate, memory_order_relaxed);
}

static void record_tick(const struct queue *q, const struct tick_plan *plan, struct tk_buf *record,
                        uint16_t *record_type)
{
    if (record == NULL)
        return;
    uint32_t run_count = plan->run_index + 1;
    TK_ASSERT(run_count <= QUEUE_TICK_RUNS_MAX);
    tk_put_u64(record, q->event_id);
    tk_put_i64(record, plan->now_ms);
    tk_put_u32(record, plan->expire_from);
    tk_put_u32(record, plan->expire_to);
    tk_put_u32(record, plan->head_from);
    tk_put_u32(record, plan->head_to);
    tk_put_i64(record, plan->grant_expires_ms);
    tk_put_u32(record, atomic_load_explicit(&q->rate_milli, memory_order_relaxed));
    tk_put_u64(record, q->tokens_milli);
    tk_put_u16(record, (uint16_t)run_count);
    for (uint32_t i = 0; i < run_count; i++)
        tk_put_u16(record, q->tick_runs[i]);
    TK_ASSERT(!record->failed && record->len == QUEUE_TICK_RECORD_HEADER_BYTES + 2u * run_count);
    TK_ASSERT(record->len <= TK_QUEUE_TICK_RECORD_BYTES_MAX);
    *record_type = QUEUE_RECORD_TICK;
}

enum tk_status queue_tick(struct queue *q, int64_t now_ms, struct tk_buf *record, uint16_t *record_type)
{
    TK_ASSERT(q != NULL && record_type != NULL);
    TK_ASSERT(record == NULL || (record->len == 0 && record->cap >= TK_QUEUE_TICK_RECORD_BYTES_MAX));
    *record_type = 0;
    if (now_ms < q->config.opens_at_ms)
        return TK_OK;
    if (!q->opened)
        return queue_open(q, now_ms, record, record_type);
    struct tick_plan plan = {.now_ms = now_ms};
    tick_expire(q, &plan);
    tick_refill(q, now_ms);
    tick_admit(q, &plan);
    tick_measure(q, &plan);
    if (plan.expire_to == plan.expire_from && plan.head_to == plan.head_from)
        return TK_OK; /* nobody's view changed: nothing to log */
    record_tick(q, &plan, record, record_type);
    return TK_OK;
}

/* ---- recovery: replay (single-threaded, idempotent, validating) ---- */

static void raise_next_ticket(struct queue *q, uint32_t end)
{
    TK_ASSERT(end <= q->length_max);
    if (atomic_load_explicit(&q->next_ticket, memory_order_relaxed) < end)
        atomic_store_explicit(&q->next_ticket, end, memory_order_relaxed);
}

/* Points the user's slot at t unless it already points at a later ticket. */
static enum tk_status replay_user_ticket(struct queue *q, uint64_t user, uint32_t t)
{
    TK_ASSERT(user_valid(user) && t < q->length_max);
    uint32_t slot;
    if (user_slot_claim(q, user, &slot) != TK_OK)
        return TK_ERR_CORRUPT; /* more users than tickets: not from this queue */
    if (atomic_load_explicit(&q->users[slot].ticket, memory_order_relaxed) < t + 1)
        atomic_store_explicit(&q->users[slot].ticket, t + 1, memory_order_relaxed);
    return TK_OK;
}

/* Common checks of a record naming (user, ticket); claims the ticket for the user. */
static enum tk_status replay_ticket_owner(struct queue *q, uint64_t user, uint32_t t)
{
    if (!user_valid(user) || t >= q->length_max)
        return TK_ERR_CORRUPT;
    struct queue_ticket *ticket = &q->tickets[t];
    uint64_t owner = atomic_load_explicit(&ticket->user, memory_order_relaxed);
    if ((owner != 0 && owner != user) || ticket_state(atomic_load(&ticket->state)) == TICKET_VOID)
        return TK_ERR_CORRUPT;
    enum tk_status status = replay_user_ticket(q, user, t);
    if (status != TK_OK)
        return status;
    atomic_store_explicit(&ticket->user, user, memory_order_relaxed);
    raise_next_ticket(q, t + 1);
    TK_ASSERT(tickets_issued(q) > t);
    TK_ASSERT(user_slot_find(q, user) != QUEUE_NONE);
    return TK_OK;
}

static enum tk_status replay_join(struct queue *q, struct tk_reader *in)
{
    uint64_t user = tk_get_u64(in);
    uint32_t t = tk_get_u32(in);
    int64_t now_ms = tk_get_i64(in);
    if (!tk_reader_done(in))
        return TK_ERR_CORRUPT;
    enum tk_status status = replay_ticket_owner(q, user, t);
    if (status != TK_OK)
        return status;
    struct queue_ticket *ticket = &q->tickets[t];
    uint32_t state = ticket_state(atomic_load(&ticket->state));
    if (state == TICKET_EMPTY || state == TICKET_PENDING) /* a later record may have moved it on already */
        atomic_store(&ticket->state, TICKET_WAITING);
    heartbeat_touch(ticket, now_ms);
    TK_ASSERT(ticket_state(atomic_load(&ticket->state)) >= TICKET_WAITING);
    TK_ASSERT(atomic_load(&ticket->user) == user);
    return TK_OK;
}

static enum tk_status replay_leave(struct queue *q, struct tk_reader *in)
{
    uint64_t user = tk_get_u64(in);
    uint32_t t = tk_get_u32(in);
    uint8_t was_admitted = tk_get_u8(in);
    (void)tk_get_i64(in);
    if (!tk_reader_done(in) || was_admitted > 1)
        return TK_ERR_CORRUPT;
    enum tk_status status = replay_ticket_owner(q, user, t);
    if (status != TK_OK)
        return status;
    /* A leave always wins: it may reach the log after the tick that expired or
     * skipped the same ticket, but it happened first (the tick saw it gone). */
    struct queue_ticket *ticket = &q->tickets[t];
    uint32_t word = atomic_load(&ticket->state) & TICKET_WAS_ADMITTED;
    atomic_store(&ticket->state, word | TICKET_LEFT | (was_admitted ? TICKET_WAS_ADMITTED : 0u));
    TK_ASSERT(ticket_state(atomic_load(&ticket->state)) == TICKET_LEFT);
    TK_ASSERT(atomic_load(&ticket->user) == user);
    return TK_OK;
}

static enum tk_status replay_open(struct queue *q, struct tk_reader *in)
{
    uint64_t seed = tk_get_u64(in);
    uint32_t pre_open = tk_get_u32(in);
    int64_t now_ms = tk_get_i64(in);
    if (!tk_reader_done(in) || !q->config.randomize_pre_open || pre_open > q->length_max)
        return TK_ERR_CORRUPT;
    uint32_t plus1 = atomic_load(&q->pre_open_plus1);
    if (plus1 != 0) /* already applied (snapshot): must be the same opening */
        return plus1 == pre_open + 1 && seed == q->shuffle_seed ? TK_OK : TK_ERR_CORRUPT;
    if (atomic_load(&q->head) != 0)
        return TK_ERR_CORRUPT; /* admissions before the shuffle: not from this queue */
    queue_mark_opened(q, now_ms);
    q->shuffle_seed = seed;
    queue_shuffle_compute(q, seed, pre_open);
    atomic_store(&q->pre_open_plus1, pre_open + 1);
    raise_next_ticket(q, pre_open);
    TK_ASSERT(q->opened && pre_open_count(q) == pre_open);
    TK_ASSERT(tickets_issued(q) >= pre_open);
    return TK_OK; /* the gone trees are rebuilt by queue_recovered */
}

struct tick_record {
    int64_t now_ms;
    uint32_t expire_from, expire_to, head_from, head_to;
    int64_t grant_expires_ms;
    uint32_t rate_milli;
    uint64_t tokens_milli;
    uint32_t run_count;
};

/* Decodes a tick record into rec and q->tick_runs, checking it against q. */
static enum tk_status replay_tick_decode(struct queue *q, struct tk_reader *in, struct tick_record *rec)
{
    TK_ASSERT(q != NULL && in != NULL && rec != NULL);
    TK_ASSERT(in->pos == 8); /* the event id was read by queue_replay */
    rec->now_ms = tk_get_i64(in);
    rec->expire_from = tk_get_u32(in);
    rec->expire_to = tk_get_u32(in);
    rec->head_from = tk_get_u32(in);
    rec->head_to = tk_get_u32(in);
    rec->grant_expires_ms = tk_get_i64(in);
    rec->rate_milli = tk_get_u32(in);
    rec->tokens_milli = tk_get_u64(in);
    rec->run_count = tk_get_u16(in);
    if (in->failed || rec->run_count == 0 || rec->run_count > QUEUE_TICK_RUNS_MAX)
        return TK_ERR_CORRUPT;
    uint64_t ranks = 0;
    for (uint32_t i = 0; i < rec->run_count; i++) {
        q->tick_runs[i] = tk_get_u16(in);
        ranks += q->tick_runs[i];
    }
    uint64_t cap = (uint64_t)q->config.admit_per_s * 1000u;
    if (!tk_reader_done(in) || rec->head_from > rec->head_to || rec->head_to > q->length_max ||
        ranks != rec->head_to - rec->head_from || ranks > TK_QUEUE_TICK_RANKS_MAX)
        return TK_ERR_CORRUPT;
    if (rec->expire_from > rec->expire_to || rec->expire_to > rec->head_from ||
        rec->expire_to - rec->expire_from > TK_QUEUE_TICK_RANKS_MAX || rec->rate_milli > cap || rec->tokens_milli > cap)
        return TK_ERR_CORRUPT;
    /* A gap means a tick record is missing. */
    if (rec->head_from > atomic_load(&q->head) || rec->expire_from > q->expire_cursor)
        return TK_ERR_CORRUPT;
    if (q->config.randomize_pre_open && atomic_load(&q->pre_open_plus1) == 0)
        return TK_ERR_CORRUPT; /* the OPEN record precedes every tick */
    return TK_OK;
}

/* Applies the runs: states only move forward, so re-applying changes nothing.
 * Returns the number of admitted ranks. */
static uint32_t replay_tick_apply_runs(struct queue *q, const struct tick_record *rec)
{
    uint32_t admitted_ranks = 0;
    uint32_t pre_open = pre_open_count(q);
    uint32_t rank = rec->head_from;
    for (uint32_t i = 0; i < rec->run_count; i++) {
        bool admitted = (i & 1u) == 0;
        admitted_ranks += admitted ? q->tick_runs[i] : 0u;
        for (uint32_t n = 0; n < q->tick_runs[i]; n++, rank++) {
            struct queue_ticket *ticket = &q->tickets[ticket_at_rank(q, pre_open, rank)];
            uint32_t state = ticket_state(atomic_load(&ticket->state));
            if (state != TICKET_EMPTY && state != TICKET_PENDING && state != TICKET_WAITING)
                continue;
            if (admitted) {
                atomic_store(&ticket->admission_expires_ms, rec->grant_expires_ms);
                atomic_store(&ticket->state, TICKET_ADMITTED | TICKET_WAS_ADMITTED);
            } else {
                atomic_store(&ticket->state, TICKET_EXPIRED);
            }
        }
    }
    TK_ASSERT(rank == rec->head_to);
    return admitted_ranks;
}

static enum tk_status replay_tick(struct queue *q, struct tk_reader *in)
{
    struct tick_record rec;
    enum tk_status status = replay_tick_decode(q, in, &rec);
    if (status != TK_OK)
        return status;
    if (!q->opened)
        queue_mark_opened(q, rec.now_ms);
    raise_next_ticket(q, rec.head_to);
    uint32_t pre_open = pre_open_count(q);
    for (uint32_t rank = rec.expire_from; rank < rec.expire_to; rank++) {
        struct queue_ticket *ticket = &q->tickets[ticket_at_rank(q, pre_open, rank)];
        uint32_t word = atomic_load(&ticket->state);
        if (ticket_state(word) == TICKET_ADMITTED)
            atomic_store(&ticket->state, (word & ~TICKET_STATE_MASK) | TICKET_EXPIRED);
    }
    uint32_t admitted_ranks = replay_tick_apply_runs(q, &rec);
    if (rec.head_to > atomic_load(&q->head))
        atomic_store(&q->head, rec.head_to);
    if (rec.expire_to > q->expire_cursor)
        q->expire_cursor = rec.expire_to;
    if (admitted_ranks > 0 && rec.grant_expires_ms > q->last_grant_expires_ms)
        q->last_grant_expires_ms = rec.grant_expires_ms;
    if (rec.now_ms >= q->last_tick_ms) {
        q->last_tick_ms = rec.now_ms;
        q->refill_ms = rec.now_ms;
        q->tokens_milli = rec.tokens_milli;
        atomic_store(&q->rate_milli, rec.rate_milli);
    }
    TK_ASSERT(atomic_load(&q->head) >= rec.head_to && q->expire_cursor <= atomic_load(&q->head));
    TK_ASSERT(tickets_issued(q) >= atomic_load(&q->head));
    return TK_OK;
}

enum tk_status queue_record_event_id(const void *payload, uint32_t len, uint64_t *event_id)
{
    TK_ASSERT(event_id != NULL);
    TK_ASSERT(payload != NULL || len == 0);
    struct tk_reader in;
    tk_reader_init(&in, payload, len);
    *event_id = tk_get_u64(&in);
    return in.failed || *event_id == 0 ? TK_ERR_CORRUPT : TK_OK;
}

enum tk_status queue_replay(struct queue *q, uint16_t type, const void *payload, uint32_t len)
{
    TK_ASSERT(q != NULL);
    TK_ASSERT(payload != NULL || len == 0);
    struct tk_reader in;
    tk_reader_init(&in, payload, len);
    if (tk_get_u64(&in) != q->event_id || in.failed)
        return TK_ERR_CORRUPT;
    switch (type) {
    case QUEUE_RECORD_JOIN:
        return replay_join(q, &in);
    case QUEUE_RECORD_LEAVE:
        return replay_leave(q, &in);
    case QUEUE_RECORD_OPEN:
        return replay_open(q, &in);
    case QUEUE_RECORD_TICK:
        return replay_tick(q, &in);
    default:
        return TK_ERR_CORRUPT;
    }
}

/* Rebuilds what is derived from ticket states: gone trees, counters, active. */
static void queue_rebuild_derived(struct queue *q)
{
    uint32_t end = tickets_issued(q);
    uint32_t pre_open = pre_open_count(q);
    TK_ASSERT(pre_open <= end);
    gone_clear(&q->gone_by_ticket);
    if (q->gone_by_rank.tree != NULL)
        gone_clear(&q->gone_by_rank);
    uint64_t joins = 0, admissions = 0, leaves = 0, skipped = 0, waiting = 0, active = 0;
    for (uint32_t t = 0; t < end; t++) {
        struct queue_ticket *ticket = &q->tickets[t];
        uint32_t word = atomic_load(&ticket->state) & ~(uint32_t)TICKET_COUNTED_BY_RANK;
        uint32_t state = ticket_state(word);
        joins += state != TICKET_VOID && state != TICKET_EMPTY;
        admissions += (word & TICKET_WAS_ADMITTED) != 0;
        leaves += state == TICKET_LEFT;
        skipped += state == TICKET_EXPIRED && !(word & TICKET_WAS_ADMITTED);
        waiting += state == TICKET_WAITING || state == TICKET_PENDING;
        active += state == TICKET_ADMITTED;
        if (ticket_word_gone(word) && t < pre_open) {
            word |= TICKET_COUNTED_BY_RANK;
            gone_mark_unshared(&q->gone_by_rank, q->ticket_to_rank[t]);
        } else if (ticket_word_gone(word)) {
            gone_mark_unshared(&q->gone_by_ticket, t);
        }
        atomic_store(&ticket->state, word);
    }
    gone_build_unshared(&q->gone_by_ticket);
    if (q->gone_by_rank.tree != NULL)
        gone_build_unshared(&q->gone_by_rank);
    atomic_store(&q->joins, joins);
    atomic_store(&q->admissions, admissions);
    atomic_store(&q->leaves, leaves);
    atomic_store(&q->skipped, skipped);
    atomic_store(&q->waiting, waiting);
    TK_ASSERT(joins <= end && waiting + active <= joins);
    atomic_store(&q->active, (uint32_t)active);
}

void queue_recovered(struct queue *q, int64_t now_ms)
{
    TK_ASSERT(q != NULL);
    uint32_t end = tickets_issued(q);
    TK_ASSERT(atomic_load(&q->head) <= end);
    for (uint32_t t = 0; t < end; t++) {
        struct queue_ticket *ticket = &q->tickets[t];
        uint32_t state = ticket_state(atomic_load(&ticket->state));
        /* A number taken but never logged as a join (burned, or the crash came
         * first): nobody was told about it. */
        if (state == TICKET_EMPTY || state == TICKET_PENDING || atomic_load(&ticket->user) == 0) {
            atomic_store(&ticket->state, TICKET_VOID);
            atomic_store(&ticket->user, 0);
        }
        atomic_store_explicit(&ticket->heartbeat_ms, now_ms, memory_order_relaxed);
    }
    queue_rebuild_derived(q);
}

/* ---- snapshot ----
 * Layout (little-endian): u32 magic | u32 version | u64 event | u32 length_max |
 * u32 admit_per_s | u32 max_active | u32 admission_ttl_ms | u32 heartbeat_timeout_ms |
 * i64 opens_at_ms | u8 randomize | u32 ticket_count | u32 head | u32 expire_cursor |
 * u8 opened | u32 pre_open_plus1 | u64 shuffle_seed | i64 refill_ms | u64 tokens_milli |
 * i64 last_tick_ms | i64 last_grant_expires_ms | u32 rate_milli |
 * ticket_count x (u64 user | u16 state word | i64 admission_expires_ms) | u32 crc32c.
 * The rank tables are recomputed from (seed, pre-open count); gone trees and
 * counters from the ticket states. A ticket being filled is written as empty: its
 * join record follows the snapshot's start in the log. */

size_t queue_snapshot_size(const struct queue *q)
{
    TK_ASSERT(q != NULL);
    size_t size = QUEUE_SNAPSHOT_HEADER_BYTES + (size_t)tickets_issued(q) * QUEUE_SNAPSHOT_TICKET_BYTES + 4u;
    TK_ASSERT(size > QUEUE_SNAPSHOT_HEADER_BYTES);
    return size;
}

static void snapshot_write_header(const struct queue *q, struct tk_buf *out, uint32_t count)
{
    const struct queue_config *c = &q->config;
    TK_ASSERT(count <= q->length_max);
    TK_ASSERT(atomic_load(&q->head) <= count && q->expire_cursor <= atomic_load(&q->head));
    tk_put_u32(out, QUEUE_SNAPSHOT_MAGIC);
    tk_put_u32(out, QUEUE_SNAPSHOT_VERSION);
    tk_put_u64(out, q->event_id);
    tk_put_u32(out, c->length_max);
    tk_put_u32(out, c->admit_per_s);
    tk_put_u32(out, c->max_active);
    tk_put_u32(out, c->admission_ttl_ms);
    tk_put_u32(out, c->heartbeat_timeout_ms);
    tk_put_i64(out, c->opens_at_ms);
    tk_put_u8(out, c->randomize_pre_open ? 1 : 0);
    tk_put_u32(out, count);
    tk_put_u32(out, atomic_load(&q->head));
    tk_put_u32(out, q->expire_cursor);
    tk_put_u8(out, q->opened ? 1 : 0);
    tk_put_u32(out, atomic_load(&q->pre_open_plus1));
    tk_put_u64(out, q->shuffle_seed);
    tk_put_i64(out, q->refill_ms);
    tk_put_u64(out, q->tokens_milli);
    tk_put_i64(out, q->last_tick_ms);
    tk_put_i64(out, q->last_grant_expires_ms);
    tk_put_u32(out, atomic_load(&q->rate_milli));
}

/* Writes the tickets issued when the buffer was sized (queue_snapshot_size); a
 * ticket issued since then is covered by its join record, logged after the
 * snapshot's start LSN. Must not run concurrently with queue_tick. */
enum tk_status queue_snapshot_write(const struct queue *q, struct tk_buf *out)
{
    TK_ASSERT(q != NULL && out != NULL);
    TK_ASSERT(!out->failed);
    size_t start = out->len;
    size_t room = out->cap - out->len;
    if (room < QUEUE_SNAPSHOT_HEADER_BYTES + 4u)
        return TK_ERR_INVALID;
    uint64_t fit = (room - QUEUE_SNAPSHOT_HEADER_BYTES - 4u) / QUEUE_SNAPSHOT_TICKET_BYTES;
    uint32_t count = tickets_issued(q);
    count = fit < count ? (uint32_t)fit : count;
    if (count < atomic_load(&q->head) || count < pre_open_count(q))
        return TK_ERR_INVALID; /* buffer sized before the ticker moved: size it again */
    snapshot_write_header(q, out, count);
    TK_ASSERT(out->len - start == QUEUE_SNAPSHOT_HEADER_BYTES);
    for (uint32_t t = 0; t < count; t++) {
        const struct queue_ticket *ticket = &q->tickets[t];
        uint32_t word = atomic_load(&ticket->state) & (TICKET_STATE_MASK | TICKET_WAS_ADMITTED);
        uint64_t user = atomic_load(&ticket->user);
        if (ticket_state(word) == TICKET_EMPTY || ticket_state(word) == TICKET_PENDING) {
            word = TICKET_EMPTY;
            user = 0;
        } else if (ticket_state(word) == TICKET_VOID) {
            user = 0;
        }
        tk_put_u64(out, user);
        tk_put_u16(out, (uint16_t)word);
        tk_put_i64(out, atomic_load_explicit(&ticket->admission_expires_ms, memory_order_relaxed));
    }
    tk_put_u32(out, tk_crc32c(0, out->data + start, out->len - start));
    TK_ASSERT(!out->failed);
    return TK_OK;
}

struct snapshot_header {
    struct queue_config config;
    uint64_t event_id;
    uint32_t magic, version, count, head, expire_cursor, pre_open_plus1, rate_milli;
    uint8_t randomize, opened;
    uint64_t shuffle_seed, tokens_milli;
    int64_t refill_ms, last_tick_ms, last_grant_expires_ms;
};

static void snapshot_read_header(struct tk_reader *in, struct snapshot_header *h)
{
    TK_ASSERT(in != NULL && h != NULL);
    TK_ASSERT(in->pos <= in->len);
    h->magic = tk_get_u32(in);
    h->version = tk_get_u32(in);
    h->event_id = tk_get_u64(in);
    h->config.length_max = tk_get_u32(in);
    h->config.admit_per_s = tk_get_u32(in);
    h->config.max_active = tk_get_u32(in);
    h->config.admission_ttl_ms = tk_get_u32(in);
    h->config.heartbeat_timeout_ms = tk_get_u32(in);
    h->config.opens_at_ms = tk_get_i64(in);
    h->randomize = tk_get_u8(in);
    h->count = tk_get_u32(in);
    h->head = tk_get_u32(in);
    h->expire_cursor = tk_get_u32(in);
    h->opened = tk_get_u8(in);
    h->pre_open_plus1 = tk_get_u32(in);
    h->shuffle_seed = tk_get_u64(in);
    h->refill_ms = tk_get_i64(in);
    h->tokens_milli = tk_get_u64(in);
    h->last_tick_ms = tk_get_i64(in);
    h->last_grant_expires_ms = tk_get_i64(in);
    h->rate_milli = tk_get_u32(in);
}

static bool snapshot_header_valid(const struct queue *q, const struct snapshot_header *h)
{
    const struct queue_config *c = &q->config;
    uint64_t cap = (uint64_t)c->admit_per_s * 1000u;
    TK_ASSERT(h != NULL);
    TK_ASSERT(cap >= 1000u);
    if (h->magic != QUEUE_SNAPSHOT_MAGIC || h->version != QUEUE_SNAPSHOT_VERSION || h->event_id != q->event_id)
        return false;
    if (h->config.length_max != c->length_max || h->config.admit_per_s != c->admit_per_s ||
        h->config.max_active != c->max_active || h->config.admission_ttl_ms != c->admission_ttl_ms ||
        h->config.heartbeat_timeout_ms != c->heartbeat_timeout_ms || h->config.opens_at_ms != c->opens_at_ms ||
        h->randomize != (c->randomize_pre_open ? 1 : 0))
        return false;
    if (h->count > c->length_max || h->head > h->count || h->expire_cursor > h->head || h->opened > 1)
        return false;
    if (h->pre_open_plus1 > h->count + 1 || (h->pre_open_plus1 != 0 && (!h->randomize || !h->opened)))
        return false;
    if (!h->opened && (h->head != 0 || h->pre_open_plus1 != 0))
        return false;
    if (h->randomize && h->opened && h->pre_open_plus1 == 0)
        return false;
    return h->rate_milli <= cap && h->tokens_milli <= cap;
}

/* One ticket of a snapshot against the queue being loaded (ranks already known). */
static bool snapshot_ticket_valid(const struct queue *q, uint32_t t, uint64_t user, uint32_t word)
{
    TK_ASSERT(t < q->length_max);
    TK_ASSERT(t < tickets_issued(q)); /* the header was applied first */
    uint32_t state = ticket_state(word);
    bool was_admitted = (word & TICKET_WAS_ADMITTED) != 0;
    if ((word & ~(uint32_t)(TICKET_STATE_MASK | TICKET_WAS_ADMITTED)) != 0 || state == TICKET_PENDING ||
        state > TICKET_VOID || user > TK_USER_ID_MAX)
        return false;
    if ((user == 0) != (state == TICKET_EMPTY || state == TICKET_VOID))
        return false;
    if ((state == TICKET_ADMITTED && !was_admitted) ||
        (was_admitted && state != TICKET_ADMITTED && state != TICKET_LEFT && state != TICKET_EXPIRED))
        return false;
    uint32_t rank = rank_of_ticket(q, pre_open_count(q), t);
    if (rank < atomic_load(&q->head)) /* the head only passes tickets it decided */
        return state != TICKET_EMPTY && state != TICKET_WAITING;
    return !was_admitted && state != TICKET_EXPIRED;
}

/* Back to the state queue_create left, after a refused snapshot. O(length_max). */
static void queue_reset(struct queue *q)
{
    memset(q->tickets, 0, (size_t)q->length_max * sizeof(struct queue_ticket));
    memset(q->users, 0, ((size_t)q->user_slots_mask + 1) * sizeof(struct queue_user_slot));
    atomic_store(&q->next_ticket, 0);
    atomic_store(&q->pre_open_plus1, 0);
    atomic_store(&q->head, 0);
    atomic_store(&q->rate_milli, 0);
    q->expire_cursor = 0;
    q->opened = false;
    q->shuffle_seed = 0;
    q->refill_ms = 0;
    q->tokens_milli = 0;
    q->last_tick_ms = 0;
    q->last_grant_expires_ms = 0;
    queue_rebuild_derived(q);
    TK_ASSERT(tickets_issued(q) == 0);
    TK_ASSERT(atomic_load(&q->waiting) == 0 && atomic_load(&q->active) == 0);
}

static void snapshot_apply_header(struct queue *q, const struct snapshot_header *h)
{
    TK_ASSERT(h->count <= q->length_max);
    atomic_store(&q->next_ticket, h->count);
    atomic_store(&q->head, h->head);
    atomic_store(&q->rate_milli, h->rate_milli);
    q->expire_cursor = h->expire_cursor;
    q->opened = h->opened != 0;
    q->shuffle_seed = h->shuffle_seed;
    q->refill_ms = h->refill_ms;
    q->tokens_milli = h->tokens_milli;
    q->last_tick_ms = h->last_tick_ms;
    q->last_grant_expires_ms = h->last_grant_expires_ms;
    if (h->pre_open_plus1 != 0) {
        queue_shuffle_compute(q, h->shuffle_seed, h->pre_open_plus1 - 1);
        atomic_store(&q->pre_open_plus1, h->pre_open_plus1);
    }
    TK_ASSERT(pre_open_count(q) <= tickets_issued(q));
}

/* A user holds at most one waiting ticket, and their slot names their latest. */
static bool snapshot_user_ticket(struct queue *q, uint64_t user, uint32_t t)
{
    uint32_t slot;
    if (user_slot_claim(q, user, &slot) != TK_OK)
        return false;
    uint32_t previous = atomic_load_explicit(&q->users[slot].ticket, memory_order_relaxed);
    TK_ASSERT(previous <= t); /* tickets are read in increasing order */
    if (previous != 0 && ticket_state(atomic_load(&q->tickets[previous - 1].state)) == TICKET_WAITING)
        return false;
    atomic_store_explicit(&q->users[slot].ticket, t + 1, memory_order_relaxed);
    return true;
}

static enum tk_status snapshot_read_tickets(struct queue *q, struct tk_reader *in, uint32_t count)
{
    TK_ASSERT(count <= q->length_max);
    for (uint32_t t = 0; t < count; t++) {
        uint64_t user = tk_get_u64(in);
        uint32_t word = tk_get_u16(in);
        int64_t expires_ms = tk_get_i64(in);
        if (in->failed || !snapshot_ticket_valid(q, t, user, word))
            return TK_ERR_CORRUPT;
        struct queue_ticket *ticket = &q->tickets[t];
        atomic_store(&ticket->user, user);
        atomic_store(&ticket->admission_expires_ms, expires_ms);
        atomic_store(&ticket->state, word);
        if (user != 0 && !snapshot_user_ticket(q, user, t))
            return TK_ERR_CORRUPT;
    }
    TK_ASSERT(!in->failed);
    return TK_OK;
}

enum tk_status queue_snapshot_read(struct queue *q, struct tk_reader *in)
{
    TK_ASSERT(q != NULL && in != NULL);
    if (tickets_issued(q) != 0 || q->opened)
        return TK_ERR_INVALID; /* only into a fresh queue */
    size_t start = in->pos;
    struct snapshot_header header;
    snapshot_read_header(in, &header);
    if (in->failed || !snapshot_header_valid(q, &header))
        goto fail;
    snapshot_apply_header(q, &header);
    if (snapshot_read_tickets(q, in, header.count) != TK_OK)
        goto fail;
    uint32_t crc = tk_crc32c(0, in->data + start, in->pos - start);
    if (tk_get_u32(in) != crc || in->failed)
        goto fail;
    queue_rebuild_derived(q);
    if (atomic_load(&q->active) > q->config.max_active)
        goto fail;
    TK_ASSERT(tickets_issued(q) == header.count);
    return TK_OK;
fail:
    queue_reset(q);
    return TK_ERR_CORRUPT;
}

/* ---- stats and inspection ---- */

void queue_stats(const struct queue *q, struct queue_stats *out)
{
    TK_ASSERT(q != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    out->joins = atomic_load_explicit(&q->joins, memory_order_relaxed);
    out->admissions = atomic_load_explicit(&q->admissions, memory_order_relaxed);
    out->leaves = atomic_load_explicit(&q->leaves, memory_order_relaxed);
    out->skipped = atomic_load_explicit(&q->skipped, memory_order_relaxed);
    out->tickets_issued = tickets_issued(q);
    uint64_t waiting = atomic_load_explicit(&q->waiting, memory_order_relaxed);
    out->waiting = waiting > UINT32_MAX ? UINT32_MAX : (uint32_t)waiting;
    out->active = atomic_load_explicit(&q->active, memory_order_relaxed);
    out->head_rank = atomic_load_explicit(&q->head, memory_order_relaxed);
    out->admission_rate_per_s = atomic_load_explicit(&q->rate_milli, memory_order_relaxed) / 1000.0;
    out->ranks_final = !q->config.randomize_pre_open || atomic_load(&q->pre_open_plus1) != 0;
    TK_ASSERT(out->active <= q->config.max_active);
}

enum tk_status queue_ticket_inspect(const struct queue *q, uint64_t ticket_number, struct queue_ticket_info *out)
{
    TK_ASSERT(q != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    if (ticket_number == 0 || ticket_number > tickets_issued(q))
        return TK_ERR_NOT_FOUND;
    uint32_t t = (uint32_t)(ticket_number - 1);
    const struct queue_ticket *ticket = &q->tickets[t];
    uint32_t word = atomic_load(&ticket->state);
    out->rank = rank_of_ticket(q, pre_open_count(q), t);
    out->was_admitted = (word & TICKET_WAS_ADMITTED) != 0;
    out->admission_expires_ms = out->was_admitted ? atomic_load(&ticket->admission_expires_ms) : 0;
    static const enum queue_state view_state[] = {
        [TICKET_EMPTY] = QUEUE_STATE_WAITING,    [TICKET_PENDING] = QUEUE_STATE_WAITING,
        [TICKET_WAITING] = QUEUE_STATE_WAITING,  [TICKET_ADMITTED] = QUEUE_STATE_ADMITTED,
        [TICKET_LEFT] = QUEUE_STATE_LEFT,        [TICKET_EXPIRED] = QUEUE_STATE_EXPIRED,
        [TICKET_VOID] = QUEUE_STATE_EXPIRED,
    };
    uint32_t state = ticket_state(word);
    TK_ASSERT(state <= TICKET_VOID);
    out->state = view_state[state];
    bool has_user = state != TICKET_EMPTY && state != TICKET_VOID;
    out->user = has_user ? atomic_load(&ticket->user) : 0;
    return TK_OK;
}

enum tk_status queue_rank_inspect(const struct queue *q, uint32_t rank, uint64_t *ticket,
                                  struct queue_ticket_info *out)
{
    TK_ASSERT(q != NULL && ticket != NULL && out != NULL);
    uint32_t issued = tickets_issued(q);
    if (rank >= issued)
        return TK_ERR_NOT_FOUND;
    uint32_t t = ticket_at_rank(q, pre_open_count(q), rank);
    TK_ASSERT(t < issued);
    *ticket = (uint64_t)t + 1;
    return queue_ticket_inspect(q, *ticket, out);
}
