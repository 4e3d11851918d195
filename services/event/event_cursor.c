/* event_cursor.c — the ListEvents cursor (event_cursor.h). */
#include "event_cursor.h"

#include <sodium.h>
#include <string.h>

#include "tk_assert.h"

#define CURSOR_FORMAT 1u
#define CURSOR_BYTES 17u

_Static_assert(EVENT_CURSOR_TEXT_BYTES >= (CURSOR_BYTES * 4 + 2) / 3 + 1, "the text form fits");

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void event_cursor_encode(const struct event_cursor *cursor, char *out, size_t out_len)
{
    TK_ASSERT(cursor != NULL && out != NULL && out_len >= EVENT_CURSOR_TEXT_BYTES);
    TK_ASSERT(cursor->starts_at_us >= 0 && cursor->event_id != 0);
    uint8_t raw[CURSOR_BYTES];
    raw[0] = CURSOR_FORMAT;
    put_u64(raw + 1, (uint64_t)cursor->starts_at_us);
    put_u64(raw + 9, cursor->event_id);
    sodium_bin2base64(out, out_len, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool event_cursor_decode(const char *text, struct event_cursor *cursor)
{
    TK_ASSERT(cursor != NULL);
    if (text == NULL || strlen(text) >= EVENT_CURSOR_TEXT_BYTES)
        return false;
    uint8_t raw[CURSOR_BYTES + 1];
    size_t len = 0;
    const char *end = NULL;
    if (sodium_base642bin(raw, sizeof(raw), text, strlen(text), NULL, &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        *end != '\0' || len != CURSOR_BYTES || raw[0] != CURSOR_FORMAT)
        return false;
    uint64_t starts = get_u64(raw + 1), id = get_u64(raw + 9);
    if (starts > INT64_MAX || id == 0 || id > INT64_MAX)
        return false;
    *cursor = (struct event_cursor){.starts_at_us = (int64_t)starts, .event_id = id};
    return true;
}
