/* event.h — the in-memory layout of one event (internal to seatcore).
 *
 * Everything an event needs is allocated when it is created, sized from its
 * layout and limits, and never again: the seat words, the hold slots and their
 * free list, the per-user seat counts, the per-row free-seat hints and (if the
 * event has a waiting room) its queue. The hot path only reads and CASes these.
 *
 * A seat is one 64-bit word: state (2 bits) | ref (24 bits) | version (38 bits).
 * ref is the hold slot while HELD and the buyer's user-table index while SOLD
 * (or LOCKED: being returned).
 * The version grows on every change, so one CAS both claims a seat and detects
 * ABA, and recovery can apply WAL records in any order ("newest version wins").
 *
 * A hold slot is one cache line: a word state (2 bits) | end reason (2 bits) |
 * generation (60 bits), the owner and seat count, the expiry and the seats. A
 * hold id is generation << 24 | slot, so ids are never reused. Slot states:
 *   FREE     in the free list; reason tells how generation-1 ended
 *   RESERVED popped by a creator who is filling it in (fields in flux)
 *   ACTIVE   a live hold; fields stable until the word changes
 *   BUSY     being confirmed, released or expired by exactly one thread
 *
 * Memory per seat for a large event: 8 (seat word) + 32 (hold slots at half the
 * capacity) + ~21 (user table at 75% load) + row hints, under 64 bytes. */
#ifndef EVENT_H
#define EVENT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "seatcore.h"
#include "tk_assert.h"

struct queue;

/* ---- seat words ---- */
/* A fourth, internal state: a sold seat being returned (refund) by one thread.
 * Readers see it as sold; nobody else may change it. */
#define SEAT_LOCKED ((enum sc_seat_state)3)
#define SEAT_REF_BITS 24u
#define SEAT_REF_MASK ((UINT64_C(1) << SEAT_REF_BITS) - 1u)
#define SEAT_VERSION_SHIFT (2u + SEAT_REF_BITS)
#define SEAT_VERSION_MAX ((UINT64_C(1) << (64u - SEAT_VERSION_SHIFT)) - 1u)

static inline uint64_t seat_word(enum sc_seat_state state, uint32_t ref, uint64_t version)
{
    TK_ASSERT((unsigned)state <= (unsigned)SEAT_LOCKED);
    TK_ASSERT(ref <= SEAT_REF_MASK && version <= SEAT_VERSION_MAX);
    return (uint64_t)state | ((uint64_t)ref << 2) | (version << SEAT_VERSION_SHIFT);
}
static inline enum sc_seat_state seat_word_state(uint64_t w)
{
    return (enum sc_seat_state)(w & 3u);
}
static inline uint32_t seat_word_ref(uint64_t w)
{
    return (uint32_t)((w >> 2) & SEAT_REF_MASK);
}
static inline uint64_t seat_word_version(uint64_t w)
{
    return w >> SEAT_VERSION_SHIFT;
}

/* ---- hold slots ---- */
enum slot_state { SLOT_FREE = 0, SLOT_RESERVED = 1, SLOT_ACTIVE = 2, SLOT_BUSY = 3 };
enum slot_end { SLOT_END_NONE = 0, SLOT_END_RELEASED = 1, SLOT_END_EXPIRED = 2, SLOT_END_CONFIRMED = 3 };
#define SLOT_GEN_SHIFT 4u
#define SLOT_GEN_MAX ((UINT64_C(1) << 40) - 1u) /* hold ids keep 40 bits of generation */

static inline uint64_t slot_word(enum slot_state state, enum slot_end end, uint64_t gen)
{
    TK_ASSERT(gen <= SLOT_GEN_MAX);
    return (uint64_t)state | ((uint64_t)end << 2) | (gen << SLOT_GEN_SHIFT);
}
static inline enum slot_state slot_word_state(uint64_t w)
{
    return (enum slot_state)(w & 3u);
}
static inline enum slot_end slot_word_end(uint64_t w)
{
    return (enum slot_end)((w >> 2) & 3u);
}
static inline uint64_t slot_word_gen(uint64_t w)
{
    return w >> SLOT_GEN_SHIFT;
}
static inline uint64_t hold_id_make(uint32_t slot, uint64_t gen)
{
    TK_ASSERT(slot <= SEAT_REF_MASK && gen <= SLOT_GEN_MAX);
    return (gen << SEAT_REF_BITS) | slot;
}
static inline uint32_t hold_id_slot(uint64_t hold_id)
{
    return (uint32_t)(hold_id & SEAT_REF_MASK);
}
static inline uint64_t hold_id_gen(uint64_t hold_id)
{
    return hold_id >> SEAT_REF_BITS;
}

struct hold_slot {
    _Atomic uint64_t word;
    _Atomic uint64_t owner; /* user id << 16 | seat count */
    _Atomic int64_t expires_at_ms;
    _Atomic uint32_t seats[TK_SEATS_PER_HOLD_MAX];
};
_Static_assert(sizeof(struct hold_slot) == 64, "a hold slot is one cache line");

/* ---- per-user seat counts: user id (48 bits) << 16 | seats held+bought ---- */
static inline uint64_t user_word(uint64_t user_id, uint32_t count)
{
    TK_ASSERT(user_id != 0 && user_id <= TK_USER_ID_MAX && count <= 0xffffu);
    return (user_id << 16) | count;
}
static inline uint64_t user_word_id(uint64_t w)
{
    return w >> 16;
}
static inline uint32_t user_word_count(uint64_t w)
{
    return (uint32_t)(w & 0xffffu);
}

/* Counts word: held << 32 | sold; free = capacity - held - sold, so a reader can
 * never see counts that do not add up (invariant 5). */
static inline uint64_t counts_delta(int32_t held, int32_t sold)
{
    return ((uint64_t)(int64_t)held << 32) + (uint64_t)(int64_t)sold;
}

struct sc_event {
    uint64_t event_id;
    uint32_t index; /* in the engine's event table */
    uint32_t capacity;
    struct sc_event_spec spec;
    uint32_t section_first_seat[TK_SECTIONS_PER_EVENT_MAX + 1];
    uint32_t section_first_row[TK_SECTIONS_PER_EVENT_MAX + 1];
    uint32_t row_count;

    _Atomic uint64_t *seats;     /* [capacity] */
    _Atomic uint32_t *row_free;  /* [row_count] free seats per row: a search hint */
    struct hold_slot *slots;     /* [holds_max] */
    _Atomic uint32_t *slot_next; /* [holds_max] free-list links (slot + 1; 0 ends) */
    uint32_t holds_max;
    _Atomic uint64_t *users; /* [users_mask + 1] open addressing, insert only */
    uint32_t users_mask;
    struct queue *queue; /* NULL when the event has no waiting room */
    _Atomic uint64_t queue_tick_lsn; /* LSN of the last ticker step that changed the queue */
    /* Read by every hold, written only by close/cancel: kept off the lines the
     * hot path writes, so reading it never pulls a line another core owns. */
    _Atomic uint32_t state; /* enum sc_event_state */
    uint64_t memory_bytes;

    alignas(64) _Atomic uint64_t free_head; /* tag << 32 | (slot + 1) */
    alignas(64) _Atomic uint64_t counts;    /* held << 32 | sold */
    _Atomic uint64_t version;
    _Atomic uint32_t active_holds;
    alignas(64) uint32_t sweep_cursor; /* ticker thread only */
};

static inline const struct sc_section_spec *event_section(const struct sc_event *ev, uint32_t section)
{
    TK_ASSERT(section < ev->spec.section_count);
    return &ev->spec.sections[section];
}

/* Section, row (event wide) and number within the row of a seat. */
struct seat_place {
    uint32_t section;
    uint32_t row;    /* 0..row_count-1 across the event */
    uint32_t number; /* 0..seats_per_row-1 */
};
struct seat_place event_seat_place(const struct sc_event *ev, uint32_t seat);
/* First seat id of an event-wide row and its length. */
uint32_t event_row_first_seat(const struct sc_event *ev, uint32_t row, uint32_t *length);

/* Validates a spec from outside; TK_ERR_INVALID with a reason in why. */
enum tk_status event_spec_validate(const struct sc_event_spec *spec, const char **why);
/* Allocates an event and all its tables (not on the hot path). */
enum tk_status event_alloc(struct sc_event **out, const struct sc_event_spec *spec);
void event_free(struct sc_event *ev);
/* Rebuilds counts, row hints, user counts, active holds and the slot free list
 * from the seat words and slots (after a snapshot load and WAL replay). Seats
 * claimed by a hold that never reached the log are freed; TK_ERR_CORRUPT if the
 * state breaks an invariant (a hold missing one of its seats, an unknown buyer). */
enum tk_status event_rebuild_derived(struct sc_event *ev);
uint32_t event_price_of(const struct sc_event *ev, uint32_t seat);

#endif
