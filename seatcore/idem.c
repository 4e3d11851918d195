/* idem.c — the idempotency table (see idem.h for the contract).
 *
 * Layout: keys in one array (a probe window of 16 keys is two cache lines) and
 * answers in a parallel array. A key word is the scoped key, with the top bit set
 * while its claimer is still working ("pending"); 0 is an empty entry. Lookups
 * scan the whole window (entries are reset to 0 anywhere by the sweep, so there
 * is no "stop at empty"). Claiming is a CAS on the key word from empty or expired
 * to key|pending; two racing claimers of the same key that land in different
 * entries resolve it by rescanning: the lower entry wins and the other backs off
 * (with sequentially consistent CAS and loads, at least one of them sees the
 * other). Answers are written before the key word is published without the
 * pending bit, and readers re-check the key after reading an answer, so a reset
 * racing a read is seen as "absent". */
#include "idem.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "tk_assert.h"
#include "tk_limits.h"

#define IDEM_PENDING (UINT64_C(1) << 63)

struct idem_slot {
    _Atomic uint64_t request_hash;
    _Atomic uint64_t hold_id;
    _Atomic uint64_t lsn;
    _Atomic uint32_t status;
    _Atomic uint32_t expires_s;
};

struct idem_table {
    _Atomic uint64_t *keys;
    struct idem_slot *slots;
    uint32_t mask;
    uint32_t ttl_ms;
    uint32_t sweep_cursor; /* ticker thread only */
};

enum tk_status idem_create(struct idem_table **out, uint32_t entries, uint32_t ttl_ms)
{
    TK_ASSERT(out != NULL);
    if (entries < TK_IDEMPOTENCY_PROBE_MAX || entries > TK_IDEMPOTENCY_KEYS_MAX || (entries & (entries - 1)) != 0 ||
        ttl_ms == 0)
        return TK_ERR_INVALID;
    struct idem_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return TK_ERR_FULL;
    t->keys = calloc(entries, sizeof(t->keys[0]));
    t->slots = calloc(entries, sizeof(t->slots[0]));
    if (t->keys == NULL || t->slots == NULL) {
        idem_destroy(t);
        return TK_ERR_FULL;
    }
    t->mask = entries - 1;
    t->ttl_ms = ttl_ms;
    *out = t;
    return TK_OK;
}

void idem_destroy(struct idem_table *table)
{
    if (table == NULL)
        return;
    free(table->keys);
    free(table->slots);
    free(table);
}

uint64_t idem_memory_bytes(const struct idem_table *table)
{
    return ((uint64_t)table->mask + 1) * (sizeof(table->keys[0]) + sizeof(table->slots[0]));
}

uint64_t idem_key_scope(uint64_t event_id, uint64_t user_id, enum idem_kind kind, uint64_t client_key)
{
    TK_ASSERT(client_key != 0);
    uint64_t h = tk_hash_u64(event_id ^ tk_hash_u64(user_id ^ tk_hash_u64(client_key + (uint64_t)kind)));
    h &= ~IDEM_PENDING;
    return h == 0 ? 1 : h;
}

static bool slot_live(const struct idem_table *t, uint32_t i, int64_t now_ms)
{
    uint32_t expires_s = atomic_load(&t->slots[i].expires_s);
    return (int64_t)expires_s * 1000 > now_ms;
}

/* Reads a finished answer; false if the entry changed under the read. */
static bool read_answer(struct idem_table *t, uint32_t i, uint64_t key, uint64_t *request_hash,
                        struct idem_answer *answer)
{
    *request_hash = atomic_load(&t->slots[i].request_hash);
    answer->status = (enum tk_status)atomic_load(&t->slots[i].status);
    answer->hold_id = atomic_load(&t->slots[i].hold_id);
    answer->lsn = atomic_load(&t->slots[i].lsn);
    return atomic_load(&t->keys[i]) == key;
}

/* Looks for key in the window; returns the outcome if the key was found. */
static bool window_find(struct idem_table *t, uint64_t key, uint64_t request_hash, int64_t now_ms,
                        uint32_t skip_entry, enum idem_outcome *outcome, struct idem_answer *found,
                        uint32_t *found_entry)
{
    uint32_t home = (uint32_t)tk_hash_u64(key) & t->mask;
    for (uint32_t p = 0; p < TK_IDEMPOTENCY_PROBE_MAX; p++) {
        uint32_t i = (home + p) & t->mask;
        if (i == skip_entry)
            continue;
        uint64_t k = atomic_load(&t->keys[i]);
        if ((k & ~IDEM_PENDING) != key)
            continue;
        *found_entry = i;
        if (k & IDEM_PENDING) {
            *outcome = IDEM_BUSY;
            return true;
        }
        uint64_t stored_hash;
        if (!read_answer(t, i, key, &stored_hash, found) || !slot_live(t, i, now_ms))
            continue;
        *outcome = stored_hash == request_hash ? IDEM_FOUND : IDEM_MISMATCH;
        return true;
    }
    return false;
}

static bool window_claim(struct idem_table *t, uint64_t key, int64_t now_ms, uint32_t *entry)
{
    uint32_t home = (uint32_t)tk_hash_u64(key) & t->mask;
    for (uint32_t p = 0; p < TK_IDEMPOTENCY_PROBE_MAX; p++) {
        uint32_t i = (home + p) & t->mask;
        uint64_t k = atomic_load(&t->keys[i]);
        bool claimable = k == 0 || (!(k & IDEM_PENDING) && !slot_live(t, i, now_ms));
        if (claimable && atomic_compare_exchange_strong(&t->keys[i], &k, key | IDEM_PENDING)) {
            *entry = i;
            return true;
        }
    }
    return false;
}

enum idem_outcome idem_begin(struct idem_table *table, uint64_t key, uint64_t request_hash, int64_t now_ms,
                             struct idem_answer *found, uint32_t *claimed_entry)
{
    TK_ASSERT(table != NULL && found != NULL && claimed_entry != NULL);
    TK_ASSERT(key != 0 && (key & IDEM_PENDING) == 0);
    enum idem_outcome outcome;
    uint32_t other;
    if (window_find(table, key, request_hash, now_ms, UINT32_MAX, &outcome, found, &other))
        return outcome;
    uint32_t mine;
    if (!window_claim(table, key, now_ms, &mine))
        return IDEM_FULL;
    atomic_store(&table->slots[mine].request_hash, request_hash); /* nobody reads a pending entry */
    /* Did a racing claimer of the same key land elsewhere? The lower entry wins. */
    if (window_find(table, key, request_hash, now_ms, mine, &outcome, found, &other)) {
        uint32_t home = (uint32_t)tk_hash_u64(key) & table->mask;
        if (((other - home) & table->mask) < ((mine - home) & table->mask)) {
            atomic_store(&table->keys[mine], 0);
            return outcome;
        }
    }
    *claimed_entry = mine;
    return IDEM_CLAIMED;
}

static void slot_store(struct idem_table *t, uint32_t i, uint64_t request_hash, const struct idem_answer *answer,
                       int64_t at_ms)
{
    int64_t expires_s = (at_ms + t->ttl_ms) / 1000 + 1;
    TK_ASSERT(expires_s > 0 && expires_s < UINT32_MAX);
    atomic_store(&t->slots[i].request_hash, request_hash);
    atomic_store(&t->slots[i].hold_id, answer->hold_id);
    atomic_store(&t->slots[i].lsn, answer->lsn);
    atomic_store(&t->slots[i].status, (uint32_t)answer->status);
    atomic_store(&t->slots[i].expires_s, (uint32_t)expires_s);
}

void idem_finish(struct idem_table *table, uint32_t entry, uint64_t key, const struct idem_answer *answer,
                 int64_t now_ms)
{
    TK_ASSERT(entry <= table->mask);
    TK_ASSERT(atomic_load(&table->keys[entry]) == (key | IDEM_PENDING));
    /* request_hash was stored by idem_begin when the entry was claimed. */
    slot_store(table, entry, atomic_load(&table->slots[entry].request_hash), answer, now_ms);
    atomic_store(&table->keys[entry], key);
}

void idem_abandon(struct idem_table *table, uint32_t entry, uint64_t key)
{
    TK_ASSERT(entry <= table->mask);
    TK_ASSERT(atomic_load(&table->keys[entry]) == (key | IDEM_PENDING));
    atomic_store(&table->keys[entry], 0);
}

void idem_restore(struct idem_table *table, uint64_t key, uint64_t request_hash, const struct idem_answer *answer,
                  int64_t at_ms)
{
    TK_ASSERT(key != 0 && (key & IDEM_PENDING) == 0);
    TK_ASSERT(answer != NULL);
    uint32_t home = (uint32_t)tk_hash_u64(key) & table->mask;
    uint32_t target = UINT32_MAX;
    for (uint32_t p = 0; p < TK_IDEMPOTENCY_PROBE_MAX; p++) {
        uint32_t i = (home + p) & table->mask;
        uint64_t k = atomic_load(&table->keys[i]);
        if (k == key) {
            target = i; /* a later record for the same key (a snapshot, then the WAL): newest wins */
            break;
        }
        if (target == UINT32_MAX && (k == 0 || (int64_t)atomic_load(&table->slots[i].expires_s) * 1000 <= at_ms))
            target = i;
    }
    if (target == UINT32_MAX)
        return; /* the window is full of live keys: the oldest answers are the ones to lose */
    slot_store(table, target, request_hash, answer, at_ms);
    atomic_store(&table->keys[target], key);
}

void idem_clear(struct idem_table *table)
{
    TK_ASSERT(table != NULL && table->keys != NULL);
    for (uint32_t i = 0; i <= table->mask; i++)
        atomic_store_explicit(&table->keys[i], 0, memory_order_relaxed);
}

uint32_t idem_sweep(struct idem_table *table, int64_t now_ms, uint32_t budget)
{
    TK_ASSERT(table != NULL);
    TK_ASSERT(budget <= TK_SWEEP_SLOTS_PER_TICK_MAX);
    uint32_t looked = 0;
    for (; looked < budget && looked <= table->mask; looked++) {
        uint32_t i = table->sweep_cursor;
        table->sweep_cursor = (i + 1) & table->mask;
        uint64_t k = atomic_load(&table->keys[i]);
        if (k != 0 && !(k & IDEM_PENDING) && !slot_live(table, i, now_ms))
            atomic_compare_exchange_strong(&table->keys[i], &k, 0);
    }
    return looked;
}

#define IDEM_SNAPSHOT_ENTRY_BYTES (8u + 8u + 8u + 4u + 4u)

uint64_t idem_snapshot_size(const struct idem_table *table)
{
    return 8u + ((uint64_t)table->mask + 1) * IDEM_SNAPSHOT_ENTRY_BYTES;
}

void idem_snapshot_write(const struct idem_table *table, int64_t now_ms, struct tk_buf *out)
{
    TK_ASSERT(table != NULL && out != NULL);
    size_t count_at = out->len;
    uint32_t count = 0;
    tk_put_u32(out, 0); /* patched below */
    tk_put_u32(out, table->ttl_ms);
    for (uint32_t i = 0; i <= table->mask; i++) {
        uint64_t k = atomic_load(&table->keys[i]);
        if (k == 0 || (k & IDEM_PENDING) || !slot_live(table, i, now_ms))
            continue;
        struct idem_answer answer;
        uint64_t request_hash;
        if (!read_answer((struct idem_table *)table, i, k, &request_hash, &answer))
            continue;
        tk_put_u64(out, k);
        tk_put_u64(out, request_hash);
        tk_put_u64(out, answer.hold_id);
        tk_put_u32(out, (uint32_t)answer.status);
        tk_put_u32(out, atomic_load(&table->slots[i].expires_s));
        count++;
    }
    if (!out->failed) {
        struct tk_buf patch;
        tk_buf_init(&patch, out->data + count_at, 4);
        tk_put_u32(&patch, count);
    }
}

enum tk_status idem_snapshot_read(struct idem_table *table, struct tk_reader *in)
{
    TK_ASSERT(table != NULL && in != NULL);
    uint32_t count = tk_get_u32(in);
    (void)tk_get_u32(in); /* the TTL it was written with; ours may differ by configuration */
    if (in->failed || count > table->mask + 1)
        return TK_ERR_CORRUPT;
    for (uint32_t n = 0; n < count && !in->failed; n++) {
        uint64_t key = tk_get_u64(in);
        uint64_t request_hash = tk_get_u64(in);
        struct idem_answer answer = {.hold_id = tk_get_u64(in), .lsn = 0};
        uint32_t status = tk_get_u32(in);
        uint32_t expires_s = tk_get_u32(in);
        if (key == 0 || (key & IDEM_PENDING) || status >= TK_STATUS_COUNT || expires_s == 0)
            return TK_ERR_CORRUPT;
        answer.status = (enum tk_status)status;
        int64_t at_ms = (int64_t)expires_s * 1000 - table->ttl_ms - 1000;
        idem_restore(table, key, request_hash, &answer, at_ms < 0 ? 0 : at_ms);
    }
    return in->failed ? TK_ERR_CORRUPT : TK_OK;
}
