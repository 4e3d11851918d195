/* event.c — event layout, validation, allocation and derived state.
 *
 * Owns the shape of an event: sections of rows of seats, numbered in order, and
 * every table an event needs, allocated here once (see event.h for the layout).
 * Validation lives here because a spec arrives from outside (gRPC, or a WAL
 * record on disk) and must be refused with a reason, never asserted on.
 * event_rebuild_derived() recomputes everything that is derived from the seat
 * words and hold slots, so recovery only has to restore those two. */
#include "event.h"

#include <stdlib.h>
#include <string.h>

#include "tk_codec.h"

static uint32_t spec_capacity(const struct sc_event_spec *spec)
{
    uint64_t capacity = 0;
    for (uint32_t s = 0; s < spec->section_count && s < TK_SECTIONS_PER_EVENT_MAX; s++)
        capacity += (uint64_t)spec->sections[s].rows * spec->sections[s].seats_per_row;
    return capacity > UINT32_MAX ? UINT32_MAX : (uint32_t)capacity;
}

static enum tk_status spec_validate_sections(const struct sc_event_spec *spec, const char **why)
{
    if (spec->section_count == 0 || spec->section_count > TK_SECTIONS_PER_EVENT_MAX) {
        *why = "an event needs 1..64 sections";
        return TK_ERR_INVALID;
    }
    for (uint32_t s = 0; s < spec->section_count; s++) {
        const struct sc_section_spec *section = &spec->sections[s];
        if (memchr(section->name, '\0', sizeof(section->name)) == NULL || section->name[0] == '\0') {
            *why = "a section name must be 1..31 bytes";
            return TK_ERR_INVALID;
        }
        if (section->rows == 0 || section->rows > TK_ROWS_PER_SECTION_MAX) {
            *why = "a section needs 1..1000 rows";
            return TK_ERR_INVALID;
        }
        if (section->seats_per_row == 0 || section->seats_per_row > TK_SEATS_PER_ROW_MAX) {
            *why = "a row needs 1..1000 seats";
            return TK_ERR_INVALID;
        }
        if (section->price_cents > TK_PRICE_CENTS_MAX) {
            *why = "a price is at most 100000000 cents";
            return TK_ERR_INVALID;
        }
    }
    return TK_OK;
}

static enum tk_status spec_validate_queue(const struct sc_queue_spec *queue, const char **why)
{
    if (!queue->enabled)
        return TK_OK;
    if (queue->admit_per_s == 0 || queue->admit_per_s > TK_ADMIT_PER_S_MAX) {
        *why = "queue admit_per_s must be 1..100000";
        return TK_ERR_INVALID;
    }
    if (queue->max_active == 0 || queue->max_active > TK_MAX_ACTIVE_MAX) {
        *why = "queue max_active must be 1..1000000";
        return TK_ERR_INVALID;
    }
    if (queue->length_max > TK_QUEUE_LENGTH_MAX_MAX) {
        *why = "queue length_max is at most 4000000";
        return TK_ERR_INVALID;
    }
    if (queue->heartbeat_timeout_ms != 0 && (queue->heartbeat_timeout_ms < TK_HEARTBEAT_TIMEOUT_MS_MIN ||
                                             queue->heartbeat_timeout_ms > TK_HEARTBEAT_TIMEOUT_MS_MAX)) {
        *why = "queue heartbeat_timeout_ms must be 1000..3600000";
        return TK_ERR_INVALID;
    }
    if (queue->admission_ttl_ms != 0 &&
        (queue->admission_ttl_ms < TK_ADMISSION_TTL_MS_MIN || queue->admission_ttl_ms > TK_ADMISSION_TTL_MS_MAX)) {
        *why = "queue admission_ttl_ms must be 10000..3600000";
        return TK_ERR_INVALID;
    }
    return TK_OK;
}

enum tk_status event_spec_validate(const struct sc_event_spec *spec, const char **why)
{
    TK_ASSERT(spec != NULL && why != NULL);
    *why = "";
    if (spec->event_id == 0) {
        *why = "event_id must be nonzero";
        return TK_ERR_INVALID;
    }
    enum tk_status status = spec_validate_sections(spec, why);
    if (status != TK_OK)
        return status;
    uint32_t capacity = spec_capacity(spec);
    if (capacity > TK_SEATS_PER_EVENT_MAX) {
        *why = "an event has at most 200000 seats";
        return TK_ERR_INVALID;
    }
    if (spec->hold_ttl_ms != 0 && (spec->hold_ttl_ms < TK_HOLD_TTL_MS_MIN || spec->hold_ttl_ms > TK_HOLD_TTL_MS_MAX)) {
        *why = "hold_ttl_ms must be 1000..3600000";
        return TK_ERR_INVALID;
    }
    if (spec->max_seats_per_user > TK_SEATS_PER_USER_MAX) {
        *why = "max_seats_per_user is at most 100";
        return TK_ERR_INVALID;
    }
    if (spec->holds_max > capacity) {
        *why = "holds_max is at most the capacity";
        return TK_ERR_INVALID;
    }
    if (spec->users_max > (1u << 22)) {
        *why = "users_max is at most 4194304";
        return TK_ERR_INVALID;
    }
    if (spec->sale_opens_at_ms < 0) {
        *why = "sale_opens_at_ms must not be negative";
        return TK_ERR_INVALID;
    }
    return spec_validate_queue(&spec->queue, why);
}

/* Fills defaults so that the stored spec says what the event really does. */
static void spec_apply_defaults(struct sc_event_spec *spec, uint32_t capacity)
{
    if (spec->hold_ttl_ms == 0)
        spec->hold_ttl_ms = TK_HOLD_TTL_MS_DEFAULT;
    if (spec->max_seats_per_user == 0)
        spec->max_seats_per_user = TK_SEATS_PER_HOLD_MAX;
    if (spec->holds_max == 0)
        spec->holds_max = capacity / 2 < 64 ? (capacity < 64 ? capacity : 64) : capacity / 2;
    if (spec->users_max == 0)
        spec->users_max = capacity > 65536 ? capacity : 65536;
    if (spec->queue.enabled) {
        if (spec->queue.length_max == 0)
            spec->queue.length_max = TK_QUEUE_LENGTH_MAX_DEFAULT;
        if (spec->queue.admission_ttl_ms == 0)
            spec->queue.admission_ttl_ms = TK_ADMISSION_TTL_MS_DEFAULT;
        if (spec->queue.heartbeat_timeout_ms == 0)
            spec->queue.heartbeat_timeout_ms = TK_HEARTBEAT_TIMEOUT_MS_DEFAULT;
    }
}

static uint32_t next_pow2(uint32_t v)
{
    TK_ASSERT(v > 0 && v <= (1u << 31));
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

static void *event_calloc(struct sc_event *ev, size_t count, size_t size)
{
    void *p = calloc(count, size);
    if (p != NULL)
        ev->memory_bytes += (uint64_t)count * size;
    return p;
}

static void event_layout(struct sc_event *ev)
{
    uint32_t seat = 0;
    uint32_t row = 0;
    for (uint32_t s = 0; s < ev->spec.section_count; s++) {
        ev->section_first_seat[s] = seat;
        ev->section_first_row[s] = row;
        seat += ev->spec.sections[s].rows * ev->spec.sections[s].seats_per_row;
        row += ev->spec.sections[s].rows;
    }
    ev->section_first_seat[ev->spec.section_count] = seat;
    ev->section_first_row[ev->spec.section_count] = row;
    ev->capacity = seat;
    ev->row_count = row;
    TK_ASSERT(ev->capacity <= TK_SEATS_PER_EVENT_MAX);
}

enum tk_status event_alloc(struct sc_event **out, const struct sc_event_spec *spec)
{
    const char *why;
    TK_ASSERT(out != NULL && event_spec_validate(spec, &why) == TK_OK);
    struct sc_event *ev = aligned_alloc(64, sizeof(*ev));
    if (ev == NULL)
        return TK_ERR_FULL;
    memset(ev, 0, sizeof(*ev));
    ev->memory_bytes = sizeof(*ev);
    ev->event_id = spec->event_id;
    ev->spec = *spec;
    event_layout(ev);
    spec_apply_defaults(&ev->spec, ev->capacity);
    ev->holds_max = ev->spec.holds_max;
    ev->users_mask = next_pow2(ev->spec.users_max + ev->spec.users_max / 3 + 1) - 1;
    ev->seats = event_calloc(ev, ev->capacity, sizeof(ev->seats[0]));
    ev->row_free = event_calloc(ev, ev->row_count, sizeof(ev->row_free[0]));
    ev->slots = aligned_alloc(64, (size_t)ev->holds_max * sizeof(struct hold_slot));
    ev->slot_next = event_calloc(ev, ev->holds_max, sizeof(ev->slot_next[0]));
    ev->users = event_calloc(ev, (size_t)ev->users_mask + 1, sizeof(ev->users[0]));
    if (ev->seats == NULL || ev->row_free == NULL || ev->slots == NULL || ev->slot_next == NULL || ev->users == NULL)
        goto fail;
    memset(ev->slots, 0, (size_t)ev->holds_max * sizeof(struct hold_slot));
    /* Generations start at 1 so that no hold id is 0 (0 reads as "unset" on the wire). */
    for (uint32_t i = 0; i < ev->holds_max; i++)
        atomic_init(&ev->slots[i].word, slot_word(SLOT_FREE, SLOT_END_NONE, 1));
    ev->memory_bytes += (uint64_t)ev->holds_max * sizeof(struct hold_slot);
    atomic_init(&ev->state, SC_EVENT_OPEN);
    enum tk_status rebuilt = event_rebuild_derived(ev); /* all seats free: row hints, free list */
    TK_ASSERT(rebuilt == TK_OK);
    *out = ev;
    return TK_OK;
fail:
    event_free(ev);
    return TK_ERR_FULL;
}

void event_free(struct sc_event *ev)
{
    if (ev == NULL)
        return;
    TK_ASSERT(ev->queue == NULL); /* the engine destroys the queue first */
    free(ev->seats);
    free(ev->row_free);
    free(ev->slots);
    free(ev->slot_next);
    free(ev->users);
    free(ev);
}

struct seat_place event_seat_place(const struct sc_event *ev, uint32_t seat)
{
    TK_ASSERT(seat < ev->capacity);
    uint32_t s = 0;
    while (s + 1 < ev->spec.section_count && ev->section_first_seat[s + 1] <= seat)
        s++;
    uint32_t per_row = ev->spec.sections[s].seats_per_row;
    uint32_t offset = seat - ev->section_first_seat[s];
    struct seat_place place = {.section = s, .row = ev->section_first_row[s] + offset / per_row,
                               .number = offset % per_row};
    TK_ASSERT(place.row < ev->row_count);
    return place;
}

uint32_t event_row_first_seat(const struct sc_event *ev, uint32_t row, uint32_t *length)
{
    TK_ASSERT(row < ev->row_count);
    uint32_t s = 0;
    while (s + 1 < ev->spec.section_count && ev->section_first_row[s + 1] <= row)
        s++;
    uint32_t per_row = ev->spec.sections[s].seats_per_row;
    *length = per_row;
    uint32_t first = ev->section_first_seat[s] + (row - ev->section_first_row[s]) * per_row;
    TK_ASSERT(first + per_row <= ev->capacity);
    return first;
}

uint32_t event_price_of(const struct sc_event *ev, uint32_t seat)
{
    return ev->spec.sections[event_seat_place(ev, seat).section].price_cents;
}

static bool slot_has_seat(struct sc_event *ev, uint32_t slot, uint32_t seat)
{
    uint64_t owner = atomic_load_explicit(&ev->slots[slot].owner, memory_order_relaxed);
    uint32_t count = user_word_count(owner);
    for (uint32_t k = 0; k < count && k < TK_SEATS_PER_HOLD_MAX; k++)
        if (atomic_load_explicit(&ev->slots[slot].seats[k], memory_order_relaxed) == seat)
            return true;
    return false;
}

/* Seats claimed by a hold whose record never reached the log (its slot is not
 * active after replay) go back to free; a sold seat must name a known buyer. */
static enum tk_status rebuild_seats(struct sc_event *ev, uint32_t *user_counts, uint64_t *held, uint64_t *sold)
{
    for (uint32_t seat = 0; seat < ev->capacity; seat++) {
        uint64_t w = atomic_load_explicit(&ev->seats[seat], memory_order_relaxed);
        enum sc_seat_state state = seat_word_state(w);
        if (state == SC_SEAT_HELD) {
            uint32_t slot = seat_word_ref(w);
            bool live = slot < ev->holds_max &&
                        slot_word_state(atomic_load_explicit(&ev->slots[slot].word, memory_order_relaxed)) ==
                            SLOT_ACTIVE &&
                        slot_has_seat(ev, slot, seat);
            if (!live) {
                w = seat_word(SC_SEAT_FREE, 0, seat_word_version(w));
                atomic_store_explicit(&ev->seats[seat], w, memory_order_relaxed);
                state = SC_SEAT_FREE;
            }
        }
        if (state == SC_SEAT_FREE) {
            atomic_fetch_add_explicit(&ev->row_free[event_seat_place(ev, seat).row], 1, memory_order_relaxed);
        } else if (state == SC_SEAT_SOLD) {
            uint32_t ref = seat_word_ref(w);
            if (ref > ev->users_mask || atomic_load_explicit(&ev->users[ref], memory_order_relaxed) == 0)
                return TK_ERR_CORRUPT;
            user_counts[ref]++;
            (*sold)++;
        } else if (state == SC_SEAT_HELD) {
            (*held)++; /* counted for the owner per slot below */
        } else {
            return TK_ERR_CORRUPT; /* a return in progress is never stored */
        }
    }
    return TK_OK;
}

/* Active holds count for their owner and must hold every seat they list; every
 * other slot joins the free list. */
static enum tk_status rebuild_slots(struct sc_event *ev, uint32_t *user_counts, uint32_t *active)
{
    uint64_t head = 0;
    for (uint32_t i = ev->holds_max; i-- > 0;) {
        uint64_t w = atomic_load_explicit(&ev->slots[i].word, memory_order_relaxed);
        if (slot_word_state(w) != SLOT_ACTIVE) {
            if (slot_word_state(w) != SLOT_FREE)
                atomic_store_explicit(&ev->slots[i].word, slot_word(SLOT_FREE, slot_word_end(w), slot_word_gen(w)),
                                      memory_order_relaxed);
            atomic_store_explicit(&ev->slot_next[i], (uint32_t)(head & 0xffffffffu), memory_order_relaxed);
            head = i + 1u;
            continue;
        }
        (*active)++;
        uint64_t owner = atomic_load_explicit(&ev->slots[i].owner, memory_order_relaxed);
        uint32_t count = user_word_count(owner);
        if (count < 1 || count > TK_SEATS_PER_HOLD_MAX)
            return TK_ERR_CORRUPT;
        for (uint32_t k = 0; k < count; k++) {
            uint32_t seat = atomic_load_explicit(&ev->slots[i].seats[k], memory_order_relaxed);
            uint64_t sw = seat < ev->capacity ? atomic_load_explicit(&ev->seats[seat], memory_order_relaxed) : 0;
            if (seat >= ev->capacity || seat_word_state(sw) != SC_SEAT_HELD || seat_word_ref(sw) != i)
                return TK_ERR_CORRUPT; /* a hold must own all of its seats (all-or-nothing) */
        }
        uint64_t user = user_word_id(owner);
        uint32_t h = (uint32_t)tk_hash_u64(user) & ev->users_mask;
        for (uint32_t probe = 0; probe <= ev->users_mask; probe++, h = (h + 1) & ev->users_mask) {
            uint64_t uw = atomic_load_explicit(&ev->users[h], memory_order_relaxed);
            if (uw == 0)
                return TK_ERR_CORRUPT; /* every holder was inserted before its seats were claimed */
            if (user_word_id(uw) == user) {
                user_counts[h] += count;
                break;
            }
        }
    }
    atomic_store_explicit(&ev->free_head, head, memory_order_relaxed);
    return TK_OK;
}

enum tk_status event_rebuild_derived(struct sc_event *ev)
{
    TK_ASSERT(ev != NULL && ev->seats != NULL);
    uint32_t *user_counts = calloc((size_t)ev->users_mask + 1, sizeof(uint32_t));
    if (user_counts == NULL)
        return TK_ERR_FULL;
    for (uint32_t row = 0; row < ev->row_count; row++)
        atomic_store_explicit(&ev->row_free[row], 0, memory_order_relaxed);
    uint64_t held = 0, sold = 0;
    uint32_t active = 0;
    enum tk_status status = rebuild_seats(ev, user_counts, &held, &sold);
    if (status == TK_OK)
        status = rebuild_slots(ev, user_counts, &active);
    for (uint32_t i = 0; i <= ev->users_mask && status == TK_OK; i++) {
        uint64_t uw = atomic_load_explicit(&ev->users[i], memory_order_relaxed);
        if (uw != 0 && user_counts[i] <= 0xffffu)
            atomic_store_explicit(&ev->users[i], user_word(user_word_id(uw), user_counts[i]), memory_order_relaxed);
        else if (user_counts[i] != 0)
            status = TK_ERR_CORRUPT;
    }
    free(user_counts);
    if (status != TK_OK)
        return status;
    TK_ASSERT(held + sold <= ev->capacity);
    atomic_store_explicit(&ev->counts, (held << 32) | sold, memory_order_relaxed);
    atomic_store_explicit(&ev->active_holds, active, memory_order_relaxed);
    return TK_OK;
}
