/* hold.c — the hot path: holds, confirms, releases, expiries and returns.
 *
 * Protocol (words and states are described in event.h):
 * - Hold: reserve the seats against the user's cap (CAS on the user word), pop a
 *   slot from the lock-free free list and fill it in (RESERVED), then claim the
 *   seats in ascending order with one CAS each (FREE -> HELD by slot). If a seat
 *   is taken, the seats already claimed are put back (we own them, so a store is
 *   enough), the cap reservation is undone and the answer lists every requested
 *   seat that was not free. A seat held by an expired hold is expired on the spot
 *   (lazy expiry) and the claim goes on. Once every seat is claimed the slot turns
 *   ACTIVE and the record is logged.
 * - End (confirm/release/expire): one CAS ACTIVE -> BUSY gives one thread the
 *   hold; it rewrites the hold's seats (HELD -> SOLD or FREE), publishes
 *   FREE(gen+1, how it ended) and pushes the slot back on the free list.
 * Ascending claim order means two holds that want overlapping seats meet at the
 * lowest common seat, where exactly one CAS wins; nobody ever waits for anyone.
 * The held/sold counts are raised after seats are taken and lowered before seats
 * are given back, so they never exceed what is really taken: held + sold <=
 * capacity for any reader, and free = capacity - held - sold adds up (inv. 5). */
#include "hold.h"

#include <string.h>

#include "stats.h"
#include "tk_codec.h"

#define CAS_RETRIES_MAX 64u /* a seat word that changes this often under one claim is "taken" */

/* ---- user table ---- */

enum tk_status hold_user_index(struct sc_event *ev, uint64_t user_id, bool insert, uint32_t *index)
{
    TK_ASSERT(user_id != 0 && user_id <= TK_USER_ID_MAX);
    TK_ASSERT(index != NULL);
    uint32_t h = (uint32_t)tk_hash_u64(user_id) & ev->users_mask;
    for (uint32_t probe = 0; probe <= ev->users_mask; probe++, h = (h + 1) & ev->users_mask) {
        uint64_t w = atomic_load_explicit(&ev->users[h], memory_order_acquire);
        if (w == 0) {
            if (!insert)
                return TK_ERR_NOT_FOUND;
            /* Keep a quarter of the table empty so probe chains stay short. */
            if (probe > 64 && probe > ev->users_mask / 4)
                return TK_ERR_FULL;
            uint64_t mine = user_word(user_id, 0);
            if (atomic_compare_exchange_strong(&ev->users[h], &w, mine)) {
                *index = h;
                return TK_OK;
            }
            /* Someone inserted here first; w now holds their word. */
        }
        if (user_word_id(w) == user_id) {
            *index = h;
            return TK_OK;
        }
    }
    return insert ? TK_ERR_FULL : TK_ERR_NOT_FOUND;
}

static enum tk_status user_reserve(struct sc_event *ev, uint32_t index, uint32_t count, uint32_t cap)
{
    TK_ASSERT(index <= ev->users_mask && count >= 1);
    uint64_t w = atomic_load_explicit(&ev->users[index], memory_order_relaxed);
    for (;;) {
        TK_ASSERT(w != 0);
        if (user_word_count(w) + count > cap)
            return TK_ERR_CAP_REACHED;
        if (atomic_compare_exchange_weak_explicit(&ev->users[index], &w, w + count, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return TK_OK;
    }
}

static void user_unreserve(struct sc_event *ev, uint32_t index, uint32_t count)
{
    uint64_t before = atomic_fetch_sub_explicit(&ev->users[index], count, memory_order_acq_rel);
    TK_ASSERT(user_word_count(before) >= count); /* never more given back than taken */
}

/* ---- slot free list (Treiber stack, ABA-tagged head) ---- */

static bool slot_pop(struct sc_event *ev, uint32_t *slot)
{
    uint64_t head = atomic_load_explicit(&ev->free_head, memory_order_acquire);
    for (;;) {
        uint32_t top = (uint32_t)head;
        if (top == 0)
            return false;
        TK_ASSERT(top <= ev->holds_max);
        uint32_t next = atomic_load_explicit(&ev->slot_next[top - 1], memory_order_relaxed);
        uint64_t desired = ((head >> 32) + 1) << 32 | next;
        if (atomic_compare_exchange_weak_explicit(&ev->free_head, &head, desired, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *slot = top - 1;
            return true;
        }
    }
}

static void slot_push(struct sc_event *ev, uint32_t slot)
{
    TK_ASSERT(slot < ev->holds_max);
    uint64_t head = atomic_load_explicit(&ev->free_head, memory_order_relaxed);
    for (;;) {
        atomic_store_explicit(&ev->slot_next[slot], (uint32_t)head, memory_order_relaxed);
        uint64_t desired = ((head >> 32) + 1) << 32 | (slot + 1u);
        if (atomic_compare_exchange_weak_explicit(&ev->free_head, &head, desired, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return;
    }
}

/* ---- seat claims ---- */

static void seats_unclaim(struct sc_event *ev, const uint32_t *seats, const uint64_t *versions, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        uint64_t w = atomic_load_explicit(&ev->seats[seats[i]], memory_order_relaxed);
        TK_ASSERT(seat_word_state(w) == SC_SEAT_HELD && seat_word_version(w) == versions[i]);
        atomic_store_explicit(&ev->seats[seats[i]], seat_word(SC_SEAT_FREE, 0, versions[i] + 1), memory_order_release);
    }
}

static void collect_unavailable(struct sc_event *ev, const uint32_t *seats, uint32_t from, uint32_t count,
                                struct sc_hold_result *result)
{
    result->unavailable[0] = seats[from];
    result->unavailable_count = 1;
    for (uint32_t i = from + 1; i < count; i++) {
        uint64_t w = atomic_load_explicit(&ev->seats[seats[i]], memory_order_relaxed);
        if (seat_word_state(w) != SC_SEAT_FREE)
            result->unavailable[result->unavailable_count++] = seats[i];
    }
    TK_ASSERT(result->unavailable_count <= count - from);
}

/* Claims one seat for slot; lazily expires a stale hold in the way. */
static bool seat_claim(struct op_ctx *ctx, struct sc_event *ev, uint32_t seat, uint32_t slot, uint64_t *version)
{
    uint64_t w = atomic_load_explicit(&ev->seats[seat], memory_order_acquire);
    uint32_t expired_tries = 0;
    for (uint32_t attempt = 0; attempt < CAS_RETRIES_MAX; attempt++) {
        enum sc_seat_state state = seat_word_state(w);
        if (state == SC_SEAT_FREE) {
            uint64_t next = seat_word(SC_SEAT_HELD, slot, seat_word_version(w) + 1);
            if (atomic_compare_exchange_weak_explicit(&ev->seats[seat], &w, next, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                *version = seat_word_version(next);
                return true;
            }
            continue;
        }
        if (state == SC_SEAT_HELD && expired_tries < 2 && seat_word_ref(w) < ev->holds_max &&
            hold_expire_slot(ctx, ev, seat_word_ref(w))) {
            expired_tries++;
            w = atomic_load_explicit(&ev->seats[seat], memory_order_acquire);
            continue;
        }
        return false;
    }
    return false;
}

static void rows_adjust(struct sc_event *ev, const uint32_t *seats, uint32_t count, int32_t delta)
{
    for (uint32_t i = 0; i < count; i++) {
        uint32_t row = event_seat_place(ev, seats[i]).row;
        atomic_fetch_add_explicit(&ev->row_free[row], (uint32_t)delta, memory_order_relaxed);
    }
}

static void slot_fill(struct sc_event *ev, uint32_t slot, uint64_t user_id, const uint32_t *seats, uint32_t count,
                      int64_t expires_at_ms)
{
    struct hold_slot *s = &ev->slots[slot];
    TK_ASSERT(slot_word_state(atomic_load_explicit(&s->word, memory_order_relaxed)) == SLOT_RESERVED);
    atomic_store_explicit(&s->owner, user_word(user_id, count), memory_order_relaxed);
    atomic_store_explicit(&s->expires_at_ms, expires_at_ms, memory_order_relaxed);
    for (uint32_t i = 0; i < TK_SEATS_PER_HOLD_MAX; i++)
        atomic_store_explicit(&s->seats[i], i < count ? seats[i] : UINT32_MAX, memory_order_relaxed);
}

static uint32_t slot_take(struct sc_event *ev, uint64_t *gen)
{
    uint32_t slot;
    if (!slot_pop(ev, &slot))
        return UINT32_MAX;
    uint64_t w = atomic_load_explicit(&ev->slots[slot].word, memory_order_acquire);
    TK_ASSERT(slot_word_state(w) == SLOT_FREE);
    *gen = slot_word_gen(w);
    atomic_store_explicit(&ev->slots[slot].word, slot_word(SLOT_RESERVED, slot_word_end(w), *gen),
                          memory_order_release);
    return slot;
}

static void slot_give_back(struct sc_event *ev, uint32_t slot, uint64_t gen)
{
    uint64_t w = atomic_load_explicit(&ev->slots[slot].word, memory_order_relaxed);
    TK_ASSERT(slot_word_state(w) == SLOT_RESERVED && slot_word_gen(w) == gen);
    atomic_store_explicit(&ev->slots[slot].word, slot_word(SLOT_FREE, slot_word_end(w), gen), memory_order_release);
    slot_push(ev, slot);
}

static void hold_publish(struct op_ctx *ctx, struct sc_event *ev, uint32_t slot, uint64_t gen, uint64_t user_id,
                         const uint32_t *seats, const uint64_t *versions, uint32_t count, uint64_t idempotency_key,
                         uint64_t request_hash, int64_t expires_at_ms)
{
    atomic_store_explicit(&ev->slots[slot].word, slot_word(SLOT_ACTIVE, SLOT_END_NONE, gen), memory_order_release);
    atomic_fetch_add_explicit(&ev->counts, counts_delta((int32_t)count, 0), memory_order_acq_rel);
    atomic_fetch_add_explicit(&ev->version, 1, memory_order_acq_rel);
    atomic_fetch_add_explicit(&ev->active_holds, 1, memory_order_relaxed);
    rows_adjust(ev, seats, count, -1);
    struct rec_hold rec = {.event_id = ev->event_id, .slot = slot, .gen = gen, .user_id = user_id,
                           .at_ms = ctx->now_ms, .expires_at_ms = expires_at_ms,
                           .idempotency_key = idempotency_key, .request_hash = request_hash, .seat_count = count};
    for (uint32_t i = 0; i < count; i++)
        rec.seats[i] = (struct rec_seat){.seat = seats[i], .version = versions[i]};
    journal_hold(ctx, &rec);
}

enum tk_status hold_seats(struct op_ctx *ctx, struct sc_event *ev, uint64_t user_id, const uint32_t *seats,
                          uint32_t count, uint64_t idempotency_key, uint64_t request_hash,
                          struct sc_hold_result *result)
{
    TK_ASSERT(count >= 1 && count <= TK_SEATS_PER_HOLD_MAX);
    for (uint32_t i = 0; i < count; i++)
        TK_ASSERT(seats[i] < ev->capacity && (i == 0 || seats[i - 1] < seats[i]));
    uint32_t user_index;
    enum tk_status status = hold_user_index(ev, user_id, true, &user_index);
    if (status != TK_OK)
        return status;
    status = user_reserve(ev, user_index, count, ev->spec.max_seats_per_user);
    if (status != TK_OK)
        return status;
    uint64_t gen;
    uint32_t slot = slot_take(ev, &gen);
    if (slot == UINT32_MAX) {
        user_unreserve(ev, user_index, count);
        return TK_ERR_FULL;
    }
    int64_t expires_at_ms = ctx->now_ms + ev->spec.hold_ttl_ms;
    slot_fill(ev, slot, user_id, seats, count, expires_at_ms);
    uint64_t versions[TK_SEATS_PER_HOLD_MAX];
    for (uint32_t i = 0; i < count; i++) {
        if (!seat_claim(ctx, ev, seats[i], slot, &versions[i])) {
            seats_unclaim(ev, seats, versions, i);
            collect_unavailable(ev, seats, i, count, result);
            slot_give_back(ev, slot, gen);
            user_unreserve(ev, user_index, count);
            return TK_ERR_SEAT_CONFLICT;
        }
    }
    hold_publish(ctx, ev, slot, gen, user_id, seats, versions, count, idempotency_key, request_hash, expires_at_ms);
    result->hold_id = hold_id_make(slot, gen);
    result->expires_at_ms = expires_at_ms;
    result->seat_count = count;
    result->amount_cents = 0;
    for (uint32_t i = 0; i < count; i++) {
        result->seats[i] = seats[i];
        result->amount_cents += event_price_of(ev, seats[i]);
    }
    return TK_OK;
}

/* ---- ending holds ---- */

/* What a hold id that is not ACTIVE means now. */
static enum tk_status ended_status(uint64_t w, uint64_t gen)
{
    if (slot_word_gen(w) == gen && slot_word_state(w) == SLOT_BUSY)
        return TK_ERR_BUSY;
    if (slot_word_gen(w) == gen + 1 && slot_word_state(w) != SLOT_ACTIVE && slot_word_state(w) != SLOT_BUSY &&
        slot_word_end(w) == SLOT_END_EXPIRED)
        return TK_ERR_HOLD_EXPIRED;
    return TK_ERR_NOT_FOUND;
}

/* Takes the hold for this thread (ACTIVE -> BUSY). On success fills owner and
 * expiry; otherwise returns why not. user_id 0 skips the owner check. */
static enum tk_status slot_acquire(struct sc_event *ev, uint32_t slot, uint64_t gen, uint64_t user_id,
                                   uint64_t *owner, int64_t *expires_at_ms)
{
    struct hold_slot *s = &ev->slots[slot];
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    for (uint32_t attempt = 0; attempt < CAS_RETRIES_MAX; attempt++) {
        if (slot_word_gen(w) != gen || slot_word_state(w) != SLOT_ACTIVE)
            return ended_status(w, gen);
        *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
        *expires_at_ms = atomic_load_explicit(&s->expires_at_ms, memory_order_relaxed);
        if (user_id != 0 && user_word_id(*owner) != user_id) {
            /* Fields are stable while the word is ACTIVE(gen): check it still is. */
            if (atomic_load_explicit(&s->word, memory_order_acquire) == w)
                return TK_ERR_NOT_OWNER;
            w = atomic_load_explicit(&s->word, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_strong_explicit(&s->word, &w, slot_word(SLOT_BUSY, SLOT_END_NONE, gen),
                                                    memory_order_acq_rel, memory_order_acquire))
            return TK_OK;
    }
    return TK_ERR_BUSY;
}

/* With the slot BUSY and owned by this thread: rewrite its seats and free it.
 * The record goes to the log *before* any seat changes: a seat freed here may be
 * claimed at once by another hold, whose record must come later in the log, so
 * that if the other hold is durable this end is too (the log is durable as a
 * prefix). It also lets a snapshot wait out BUSY slots (see snapshot.c). */
static void slot_finish(struct op_ctx *ctx, struct sc_event *ev, uint32_t slot, uint64_t gen, uint64_t owner,
                        enum rec_end_kind kind, struct rec_hold_end *rec, struct sc_hold_result *result)
{
    struct hold_slot *s = &ev->slots[slot];
    uint32_t count = user_word_count(owner);
    uint64_t user_id = user_word_id(owner);
    TK_ASSERT(count >= 1 && count <= TK_SEATS_PER_HOLD_MAX);
    TK_ASSERT(slot_word_state(atomic_load_explicit(&s->word, memory_order_relaxed)) == SLOT_BUSY);
    uint32_t user_index;
    enum tk_status found = hold_user_index(ev, user_id, false, &user_index);
    TK_ASSERT(found == TK_OK); /* inserted when the hold was made, never removed */
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
    uint64_t versions[TK_SEATS_PER_HOLD_MAX];
    for (uint32_t i = 0; i < count; i++) {
        seats[i] = atomic_load_explicit(&s->seats[i], memory_order_relaxed);
        uint64_t w = atomic_load_explicit(&ev->seats[seats[i]], memory_order_acquire);
        TK_ASSERT(seat_word_state(w) == SC_SEAT_HELD && seat_word_ref(w) == slot); /* invariant 1 */
        versions[i] = seat_word_version(w) + 1;
    }
    *rec = (struct rec_hold_end){.event_id = ev->event_id, .slot = slot, .gen = gen, .kind = kind,
                                 .user_id = user_id, .at_ms = ctx->now_ms, .idempotency_key = rec->idempotency_key,
                                 .request_hash = rec->request_hash, .seat_count = count};
    for (uint32_t i = 0; i < count; i++)
        rec->seats[i] = (struct rec_seat){.seat = seats[i], .version = versions[i]};
    journal_hold_end(ctx, rec);
    /* Counts move before the seats do: a seat freed here can be held again at
     * once, and its new holder adds to the counts; decrementing first keeps
     * held + sold <= capacity for every reader (invariant 5). */
    if (kind == REC_END_CONFIRMED)
        atomic_fetch_add_explicit(&ev->counts, counts_delta(-(int32_t)count, (int32_t)count), memory_order_acq_rel);
    else
        atomic_fetch_add_explicit(&ev->counts, counts_delta(-(int32_t)count, 0), memory_order_acq_rel);
    result->amount_cents = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t next = kind == REC_END_CONFIRMED ? seat_word(SC_SEAT_SOLD, user_index, rec->seats[i].version)
                                                  : seat_word(SC_SEAT_FREE, 0, rec->seats[i].version);
        atomic_store_explicit(&ev->seats[seats[i]], next, memory_order_release);
        result->seats[i] = seats[i];
        result->amount_cents += event_price_of(ev, seats[i]);
    }
    result->seat_count = count;
    if (kind != REC_END_CONFIRMED) {
        rows_adjust(ev, seats, count, +1);
        user_unreserve(ev, user_index, count);
    }
    atomic_fetch_add_explicit(&ev->version, 1, memory_order_acq_rel);
    atomic_fetch_sub_explicit(&ev->active_holds, 1, memory_order_relaxed);
    atomic_store_explicit(&s->word, slot_word(SLOT_FREE, (enum slot_end)kind, gen + 1), memory_order_release);
    slot_push(ev, slot);
}

enum tk_status hold_end(struct op_ctx *ctx, struct sc_event *ev, uint64_t user_id, uint64_t hold_id,
                        enum rec_end_kind kind, uint64_t idempotency_key, uint64_t request_hash,
                        struct sc_hold_result *result)
{
    TK_ASSERT(kind == REC_END_CONFIRMED || kind == REC_END_RELEASED);
    TK_ASSERT(user_id != 0 && result != NULL);
    uint32_t slot = hold_id_slot(hold_id);
    uint64_t gen = hold_id_gen(hold_id);
    if (slot >= ev->holds_max || gen > SLOT_GEN_MAX)
        return TK_ERR_NOT_FOUND;
    uint64_t owner;
    int64_t expires_at_ms;
    enum tk_status status = slot_acquire(ev, slot, gen, user_id, &owner, &expires_at_ms);
    if (status != TK_OK)
        return status;
    struct rec_hold_end rec = {.idempotency_key = idempotency_key, .request_hash = request_hash};
    result->hold_id = hold_id;
    result->expires_at_ms = expires_at_ms;
    if (expires_at_ms <= ctx->now_ms) {
        slot_finish(ctx, ev, slot, gen, owner, REC_END_EXPIRED, &rec, result);
        stat_add(ctx->stats, STAT_EXPIRATIONS, 1);
        return TK_ERR_HOLD_EXPIRED;
    }
    slot_finish(ctx, ev, slot, gen, owner, kind, &rec, result);
    return TK_OK;
}

bool hold_expire_slot(struct op_ctx *ctx, struct sc_event *ev, uint32_t slot)
{
    TK_ASSERT(slot < ev->holds_max);
    struct hold_slot *s = &ev->slots[slot];
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    if (slot_word_state(w) != SLOT_ACTIVE)
        return false;
    if (atomic_load_explicit(&s->expires_at_ms, memory_order_relaxed) > ctx->now_ms)
        return false;
    uint64_t owner;
    int64_t expires_at_ms;
    if (slot_acquire(ev, slot, slot_word_gen(w), 0, &owner, &expires_at_ms) != TK_OK)
        return false; /* someone else ended it first: the seat is no longer stale either way */
    struct rec_hold_end rec = {0};
    struct sc_hold_result result;
    if (expires_at_ms > ctx->now_ms) {
        /* Our first look read a newer generation's expiry; this one is live: give it back. */
        atomic_store_explicit(&s->word, w, memory_order_release);
        TK_ASSERT(slot_word_state(w) == SLOT_ACTIVE);
        return false;
    }
    slot_finish(ctx, ev, slot, slot_word_gen(w), owner, REC_END_EXPIRED, &rec, &result);
    stat_add(ctx->stats, STAT_EXPIRATIONS, 1);
    return true;
}

/* Sold -> LOCKED (one CAS: this thread owns the return), log, then -> FREE: the
 * record precedes the moment the seat can be claimed again (see slot_finish). */
enum tk_status hold_return_seat(struct op_ctx *ctx, struct sc_event *ev, uint64_t user_id, uint32_t seat)
{
    TK_ASSERT(seat < ev->capacity && user_id != 0);
    uint64_t w = atomic_load_explicit(&ev->seats[seat], memory_order_acquire);
    uint64_t locked = 0;
    for (uint32_t attempt = 0; attempt < CAS_RETRIES_MAX && locked == 0; attempt++) {
        if (seat_word_state(w) == SEAT_LOCKED)
            return TK_ERR_BUSY;
        if (seat_word_state(w) != SC_SEAT_SOLD)
            return TK_ERR_NOT_FOUND;
        uint32_t user_index = seat_word_ref(w);
        TK_ASSERT(user_index <= ev->users_mask);
        if (user_word_id(atomic_load_explicit(&ev->users[user_index], memory_order_acquire)) != user_id)
            return TK_ERR_NOT_OWNER;
        uint64_t next = seat_word(SEAT_LOCKED, user_index, seat_word_version(w) + 1);
        if (atomic_compare_exchange_strong_explicit(&ev->seats[seat], &w, next, memory_order_acq_rel,
                                                    memory_order_acquire))
            locked = next;
    }
    if (locked == 0)
        return TK_ERR_BUSY;
    uint64_t freed = seat_word(SC_SEAT_FREE, 0, seat_word_version(locked) + 1);
    struct rec_return rec = {.event_id = ev->event_id, .user_id = user_id, .at_ms = ctx->now_ms,
                             .seat = {.seat = seat, .version = seat_word_version(freed)}};
    journal_return(ctx, &rec);
    atomic_fetch_add_explicit(&ev->counts, counts_delta(0, -1), memory_order_acq_rel); /* before: see slot_finish */
    atomic_store_explicit(&ev->seats[seat], freed, memory_order_release);
    atomic_fetch_add_explicit(&ev->version, 1, memory_order_acq_rel);
    rows_adjust(ev, &seat, 1, +1);
    user_unreserve(ev, seat_word_ref(locked), 1);
    return TK_OK;
}

uint32_t hold_sweep(struct op_ctx *ctx, struct sc_event *ev, uint32_t budget)
{
    TK_ASSERT(budget <= TK_SWEEP_SLOTS_PER_TICK_MAX);
    TK_ASSERT(ev->sweep_cursor < ev->holds_max || ev->holds_max == 0);
    if (atomic_load_explicit(&ev->active_holds, memory_order_relaxed) == 0)
        return 0;
    uint32_t looked = 0;
    for (; looked < budget && looked < ev->holds_max; looked++) {
        uint32_t slot = ev->sweep_cursor;
        ev->sweep_cursor = slot + 1 == ev->holds_max ? 0 : slot + 1;
        hold_expire_slot(ctx, ev, slot);
    }
    return looked;
}

enum tk_status hold_get(struct sc_event *ev, uint64_t hold_id, struct sc_hold_info *out)
{
    TK_ASSERT(out != NULL);
    uint32_t slot = hold_id_slot(hold_id);
    uint64_t gen = hold_id_gen(hold_id);
    if (slot >= ev->holds_max || gen > SLOT_GEN_MAX)
        return TK_ERR_NOT_FOUND;
    struct hold_slot *s = &ev->slots[slot];
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    if (slot_word_gen(w) != gen || slot_word_state(w) != SLOT_ACTIVE)
        return ended_status(w, gen) == TK_ERR_HOLD_EXPIRED ? TK_ERR_HOLD_EXPIRED : TK_ERR_NOT_FOUND;
    uint64_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
    out->hold_id = hold_id;
    out->user_id = user_word_id(owner);
    out->expires_at_ms = atomic_load_explicit(&s->expires_at_ms, memory_order_relaxed);
    out->seat_count = user_word_count(owner);
    TK_ASSERT(out->seat_count >= 1 && out->seat_count <= TK_SEATS_PER_HOLD_MAX);
    out->amount_cents = 0;
    for (uint32_t i = 0; i < out->seat_count; i++) {
        out->seats[i] = atomic_load_explicit(&s->seats[i], memory_order_relaxed);
        if (out->seats[i] >= ev->capacity)
            return TK_ERR_NOT_FOUND; /* refilled under us: the check below would say so too */
        out->amount_cents += event_price_of(ev, out->seats[i]);
    }
    if (atomic_load_explicit(&s->word, memory_order_acquire) != w)
        return TK_ERR_NOT_FOUND; /* ended while we read it */
    return TK_OK;
}

/* ---- recovery ---- */

static bool replay_seat(struct sc_event *ev, const struct rec_seat *change, uint64_t word)
{
    uint64_t w = atomic_load_explicit(&ev->seats[change->seat], memory_order_relaxed);
    if (seat_word_version(w) >= change->version)
        return false; /* memory already has this change or a newer one */
    atomic_store_explicit(&ev->seats[change->seat], word, memory_order_relaxed);
    return true;
}

static enum tk_status replay_check_seats(const struct sc_event *ev, uint32_t count, const struct rec_seat *seats)
{
    for (uint32_t i = 0; i < count; i++)
        if (seats[i].seat >= ev->capacity)
            return TK_ERR_CORRUPT;
    return TK_OK;
}

enum tk_status hold_replay_hold(struct sc_event *ev, const struct rec_hold *rec)
{
    TK_ASSERT(rec->event_id == ev->event_id);
    if (rec->slot >= ev->holds_max || replay_check_seats(ev, rec->seat_count, rec->seats) != TK_OK)
        return TK_ERR_CORRUPT;
    uint32_t user_index;
    if (hold_user_index(ev, rec->user_id, true, &user_index) != TK_OK)
        return TK_ERR_CORRUPT;
    struct hold_slot *s = &ev->slots[rec->slot];
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    bool newer = slot_word_gen(w) < rec->gen || (slot_word_gen(w) == rec->gen && slot_word_state(w) == SLOT_FREE);
    if (newer) {
        uint32_t seats[TK_SEATS_PER_HOLD_MAX];
        for (uint32_t i = 0; i < rec->seat_count; i++)
            seats[i] = rec->seats[i].seat;
        atomic_store_explicit(&s->word, slot_word(SLOT_RESERVED, SLOT_END_NONE, rec->gen), memory_order_relaxed);
        slot_fill(ev, rec->slot, rec->user_id, seats, rec->seat_count, rec->expires_at_ms);
        atomic_store_explicit(&s->word, slot_word(SLOT_ACTIVE, SLOT_END_NONE, rec->gen), memory_order_relaxed);
    }
    for (uint32_t i = 0; i < rec->seat_count; i++)
        replay_seat(ev, &rec->seats[i], seat_word(SC_SEAT_HELD, rec->slot, rec->seats[i].version));
    return TK_OK;
}

enum tk_status hold_replay_end(struct sc_event *ev, const struct rec_hold_end *rec)
{
    TK_ASSERT(rec->event_id == ev->event_id);
    if (rec->slot >= ev->holds_max || replay_check_seats(ev, rec->seat_count, rec->seats) != TK_OK)
        return TK_ERR_CORRUPT;
    uint32_t user_index;
    if (hold_user_index(ev, rec->user_id, true, &user_index) != TK_OK)
        return TK_ERR_CORRUPT;
    struct hold_slot *s = &ev->slots[rec->slot];
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    if (slot_word_gen(w) <= rec->gen)
        atomic_store_explicit(&s->word, slot_word(SLOT_FREE, (enum slot_end)rec->kind, rec->gen + 1),
                              memory_order_relaxed);
    for (uint32_t i = 0; i < rec->seat_count; i++) {
        uint64_t word = rec->kind == REC_END_CONFIRMED
                            ? seat_word(SC_SEAT_SOLD, user_index, rec->seats[i].version)
                            : seat_word(SC_SEAT_FREE, 0, rec->seats[i].version);
        replay_seat(ev, &rec->seats[i], word);
    }
    return TK_OK;
}

enum tk_status hold_replay_return(struct sc_event *ev, const struct rec_return *rec)
{
    TK_ASSERT(rec->event_id == ev->event_id);
    if (rec->seat.seat >= ev->capacity)
        return TK_ERR_CORRUPT;
    replay_seat(ev, &rec->seat, seat_word(SC_SEAT_FREE, 0, rec->seat.version));
    return TK_OK;
}
