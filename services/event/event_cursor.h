/* event_cursor.h — the opaque ListEvents cursor.
 *
 * Keyset pagination over (starts_at, event id), the listing's order: the
 * cursor names the last row of a page and the next page starts strictly after
 * it, so pages never skip or repeat rows however many events are added or
 * removed meanwhile, and a deep page costs what the first one does (no OFFSET).
 * On the wire: base64url (no padding) of a format byte, the start time in
 * microseconds and the id, both big-endian. A cursor is not signed: forging one
 * only moves where a listing of public data starts. */
#ifndef EVENT_CURSOR_H
#define EVENT_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_CURSOR_TEXT_BYTES 32u /* 23 characters and the NUL, with room */

struct event_cursor {
    int64_t starts_at_us;
    uint64_t event_id;
};

void event_cursor_encode(const struct event_cursor *cursor, char *out, size_t out_len);
/* false for anything event_cursor_encode could not have written. */
bool event_cursor_decode(const char *text, struct event_cursor *cursor);

#endif
