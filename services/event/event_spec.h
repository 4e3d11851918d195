/* event_spec.h — a validated event to create.
 *
 * CreateEvent's request comes from the edge (an admin's JSON) and is checked
 * here once, completely, before anything is written: names (UTF-8, no control
 * characters, lengths), times (RFC 3339, the sale opening before the start),
 * the layout (sections, rows, seats per row, prices, capacity) against the
 * engine's own bounds (tk_limits.h), the waiting-room settings, the hold
 * settings and the admin's user id. The first problem found is described in a
 * sentence naming the field, which reaches the client as INVALID_ARGUMENT.
 * Pure: no I/O, so the unit tests cover every rule. */
#ifndef EVENT_SPEC_H
#define EVENT_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiketi/v1/event.pb-c.h"
#include "tk_limits.h"

#define EVENT_NAME_BYTES_MAX 200u
#define EVENT_VENUE_BYTES_MAX 200u
#define EVENT_HOLD_TTL_S_DEFAULT 300u
#define EVENT_HOLD_TTL_S_MAX (TK_HOLD_TTL_MS_MAX / 1000u)
#define EVENT_SEATS_PER_USER_DEFAULT 10u
#define EVENT_REASON_BYTES 200u

_Static_assert(EVENT_HOLD_TTL_S_MAX * 1000u == TK_HOLD_TTL_MS_MAX, "hold TTLs in whole seconds reach the bound");
_Static_assert(EVENT_SEATS_PER_USER_DEFAULT <= TK_SEATS_PER_USER_MAX, "the default is within the bound");

struct event_section {
    char name[TK_SECTION_NAME_BYTES_MAX];
    uint32_t rows;
    uint32_t seats_per_row;
    uint32_t price_cents;
    uint32_t first_seat; /* engine seat number of row 1, seat 1 */
};

struct event_spec {
    char name[EVENT_NAME_BYTES_MAX + 1];
    char venue[EVENT_VENUE_BYTES_MAX + 1];
    int64_t starts_at_us;
    int64_t sale_opens_at_us;
    uint32_t section_count;
    struct event_section sections[TK_SECTIONS_PER_EVENT_MAX];
    uint32_t capacity;
    bool queue_enabled;
    uint32_t admit_per_s;
    uint32_t max_active;
    uint32_t hold_ttl_s;
    uint32_t max_seats_per_user;
    uint64_t admin_user_id;
};

/* true: spec filled. false: reason says what is wrong (for the client). */
bool event_spec_from_request(const Tiketi__V1__CreateEventCatalogRequest *request, struct event_spec *spec,
                             char *reason, size_t reason_len);

/* Text checks shared with the listing (search words, ids). */
bool event_text_valid_utf8(const char *text, size_t len);
/* Decimal id 1..INT64_MAX, nothing else (no sign, no spaces, no leading zero). */
bool event_id_parse(const char *text, uint64_t *id);

#endif
