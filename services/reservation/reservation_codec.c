/* reservation_codec.c — ids, keys, checks, times, the pending record and prices
 * (reservation_codec.h). Pure functions: no I/O, no allocation. */
#include "reservation_codec.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tk_assert.h"

_Static_assert(RSV_ID_BYTES == 4u + 32u + 1u, "prefix, two 64-bit ids in hex, NUL");
_Static_assert(RSV_UUID_BYTES == 36u + 1u, "a UUID's text and NUL");

bool rsv_parse_id(const char *text, uint64_t max, uint64_t *out)
{
    TK_ASSERT(out != NULL);
    *out = 0;
    if (text == NULL || text[0] < '1' || text[0] > '9')
        return false;
    uint64_t value = 0;
    size_t i = 0;
    for (; text[i] != '\0'; i++) {
        if (i >= RSV_ID_DIGITS_MAX || text[i] < '0' || text[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10u)
            return false;
        value = value * 10u + digit;
    }
    TK_ASSERT(value >= 1);
    if (value > max)
        return false;
    *out = value;
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case is refused: an id has one spelling */
}

/* 16 hex digits -> u64. */
static bool parse_hex64(const char *text, uint64_t *out)
{
    uint64_t value = 0;
    for (int i = 0; i < 16; i++) {
        int v = hex_value(text[i]);
        if (v < 0)
            return false;
        value = (value << 4) | (uint64_t)v;
    }
    *out = value;
    return true;
}

void rsv_id_format(uint64_t event_id, uint64_t hold_id, char out[RSV_ID_BYTES])
{
    TK_ASSERT(event_id != 0);
    int n = snprintf(out, RSV_ID_BYTES, RSV_ID_PREFIX "%016llx%016llx", (unsigned long long)event_id,
                     (unsigned long long)hold_id);
    TK_ASSERT(n == (int)RSV_ID_BYTES - 1);
}

bool rsv_id_parse(const char *text, uint64_t *event_id, uint64_t *hold_id)
{
    TK_ASSERT(event_id != NULL && hold_id != NULL);
    *event_id = *hold_id = 0;
    if (text == NULL || strnlen(text, RSV_ID_BYTES) != RSV_ID_BYTES - 1 ||
        strncmp(text, RSV_ID_PREFIX, strlen(RSV_ID_PREFIX)) != 0)
        return false;
    uint64_t event, hold;
    if (!parse_hex64(text + 4, &event) || !parse_hex64(text + 20, &hold) || event == 0)
        return false;
    *event_id = event;
    *hold_id = hold;
    return true;
}

void rsv_uuid_format(uint64_t event_id, uint64_t hold_id, char out[RSV_UUID_BYTES])
{
    TK_ASSERT(event_id != 0);
    int n = snprintf(out, RSV_UUID_BYTES, "%08llx-%04llx-%04llx-%04llx-%012llx",
                     (unsigned long long)(event_id >> 32), (unsigned long long)((event_id >> 16) & 0xffff),
                     (unsigned long long)(event_id & 0xffff), (unsigned long long)(hold_id >> 48),
                     (unsigned long long)(hold_id & UINT64_C(0xffffffffffff)));
    TK_ASSERT(n == (int)RSV_UUID_BYTES - 1);
}

bool rsv_uuid_parse(const char *text, uint64_t *event_id, uint64_t *hold_id)
{
    TK_ASSERT(event_id != NULL && hold_id != NULL);
    *event_id = *hold_id = 0;
    if (text == NULL || strnlen(text, RSV_UUID_BYTES) != RSV_UUID_BYTES - 1)
        return false;
    char hex[33];
    size_t n = 0;
    for (size_t i = 0; i < RSV_UUID_BYTES - 1; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (text[i] == '-'))
            return false;
        if (!dash)
            hex[n++] = text[i];
    }
    TK_ASSERT(n == 32);
    uint64_t event, hold;
    if (!parse_hex64(hex, &event) || !parse_hex64(hex + 16, &hold) || event == 0)
        return false;
    *event_id = event;
    *hold_id = hold;
    return true;
}

void rsv_charge_key(const char *uuid, char out[RSV_DERIVED_KEY_BYTES])
{
    TK_ASSERT(uuid != NULL && strlen(uuid) == RSV_UUID_BYTES - 1);
    snprintf(out, RSV_DERIVED_KEY_BYTES, "rsv-charge-%s", uuid);
}

void rsv_refund_key(const char *uuid, char out[RSV_DERIVED_KEY_BYTES])
{
    TK_ASSERT(uuid != NULL && strlen(uuid) == RSV_UUID_BYTES - 1);
    snprintf(out, RSV_DERIVED_KEY_BYTES, "rsv-refund-%s", uuid);
}

bool rsv_key_valid(const char *key)
{
    size_t n = key != NULL ? strnlen(key, RSV_KEY_BYTES_MAX + 1) : 0;
    if (n == 0 || n > RSV_KEY_BYTES_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
            return false;
    return true;
}

bool rsv_card_token_valid(const char *token)
{
    size_t n = token != NULL ? strnlen(token, RSV_KEY_BYTES_MAX + 1) : 0;
    if (n == 0 || n > RSV_KEY_BYTES_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = token[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Canonical decimal 0..max ("0" itself, otherwise no leading zero). */
static bool parse_small(const char *text, uint32_t max, uint32_t *out)
{
    if (text == NULL || text[0] == '\0' || (text[0] == '0' && text[1] != '\0'))
        return false;
    uint32_t value = 0;
    for (size_t i = 0; text[i] != '\0'; i++) {
        if (i >= 9 || text[i] < '0' || text[i] > '9')
            return false;
        value = value * 10u + (uint32_t)(text[i] - '0');
    }
    if (value > max)
        return false;
    *out = value;
    return true;
}

bool rsv_parse_seats(char *const *ids, size_t count, uint32_t *seats)
{
    TK_ASSERT(seats != NULL);
    if (ids == NULL || count == 0 || count > TK_SEATS_PER_HOLD_MAX)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (!parse_small(ids[i], RSV_SEAT_ID_MAX, &seats[i]))
            return false;
        for (size_t j = 0; j < i; j++)
            if (seats[j] == seats[i])
                return false;
    }
    return true;
}

bool rsv_section_index(const char *section, int32_t *index)
{
    TK_ASSERT(index != NULL);
    *index = -1;
    if (section == NULL || section[0] == '\0')
        return true;
    uint32_t value;
    if (!parse_small(section, RSV_SECTIONS_MAX - 1u, &value))
        return false;
    *index = (int32_t)value;
    return true;
}

bool rsv_format_time(int64_t ms, char out[RSV_TIME_BYTES])
{
    out[0] = '\0';
    const int64_t year_10000_ms = INT64_C(253402300800000);
    if (ms < 0 || ms >= year_10000_ms)
        return false;
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&seconds, &tm) == NULL)
        return false;
    int n = snprintf(out, RSV_TIME_BYTES, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    TK_ASSERT(n == 24);
    return true;
}

const char *rsv_api_status(const char *state)
{
    static const char *const map[][2] = {
        {"pending", "pending"},      {"paying", "pending"},       {"confirmed", "confirmed"},
        {"released", "cancelled"},   {"expired", "expired"},      {"cancelling", "cancelled"},
        {"cancelled", "cancelled"},
    };
    if (state == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(state, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}


/* ---- the pending record ---- */

bool rsv_pending_encode(const struct rsv_pending *p, char *out, size_t out_len)
{
    TK_ASSERT(p != NULL && out != NULL && out_len > 0);
    TK_ASSERT(p->seat_count >= 1 && p->seat_count <= TK_SEATS_PER_HOLD_MAX);
    int n = snprintf(out, out_len, "1|%llu|%llu|%llu|%lld|%lld|", (unsigned long long)p->event_id,
                     (unsigned long long)p->hold_id, (unsigned long long)p->amount_cents, (long long)p->created_ms,
                     (long long)p->expires_ms);
    for (uint32_t i = 0; n > 0 && (size_t)n < out_len && i < p->seat_count; i++)
        n += snprintf(out + n, out_len - (size_t)n, i == 0 ? "%u" : ",%u", p->seats[i]);
    if (n < 0 || (size_t)n >= out_len) {
        out[0] = '\0';
        return false;
    }
    return true;
}

/* Reads a decimal u64 up to the separator; advances *p past it. */
static bool take_u64(const char **p, const char *end, char separator, uint64_t *out)
{
    const char *s = *p;
    uint64_t value = 0;
    size_t digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        uint64_t digit = (uint64_t)(*s - '0');
        if (digits >= RSV_ID_DIGITS_MAX || value > (UINT64_MAX - digit) / 10u)
            return false;
        value = value * 10u + digit;
        digits++;
        s++;
    }
    if (digits == 0)
        return false;
    if (separator != '\0') {
        if (s >= end || *s != separator)
            return false;
        s++;
    } else if (s != end) {
        return false;
    }
    *p = s;
    *out = value;
    return true;
}

bool rsv_pending_decode(const char *text, size_t len, struct rsv_pending *out)
{
    TK_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    if (text == NULL || len < 2 || len >= RSV_PENDING_RECORD_BYTES || text[0] != '1' || text[1] != '|')
        return false;
    const char *p = text + 2, *end = text + len;
    uint64_t event, hold, amount, created, expires;
    if (!take_u64(&p, end, '|', &event) || !take_u64(&p, end, '|', &hold) || !take_u64(&p, end, '|', &amount) ||
        !take_u64(&p, end, '|', &created) || !take_u64(&p, end, '|', &expires))
        return false;
    if (event == 0 || created > (uint64_t)INT64_MAX || expires > (uint64_t)INT64_MAX)
        return false;
    struct rsv_pending pending = {.event_id = event, .hold_id = hold, .amount_cents = amount,
                                  .created_ms = (int64_t)created, .expires_ms = (int64_t)expires};
    while (p < end) {
        uint64_t seat;
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (pending.seat_count == TK_SEATS_PER_HOLD_MAX ||
            !take_u64(&p, comma != NULL ? comma + 1 : end, comma != NULL ? ',' : '\0', &seat) ||
            seat > RSV_SEAT_ID_MAX)
            return false;
        pending.seats[pending.seat_count++] = (uint32_t)seat;
        if (comma != NULL && p >= end)
            return false; /* a trailing comma */
    }
    if (pending.seat_count == 0)
        return false;
    *out = pending;
    return true;
}

bool rsv_seat_price(const struct rsv_section_layout *sections, uint32_t section_count, uint32_t seat,
                    uint32_t *price_cents)
{
    TK_ASSERT(price_cents != NULL && section_count <= RSV_SECTIONS_MAX);
    uint64_t first = 0;
    for (uint32_t s = 0; s < section_count; s++) {
        uint64_t size = (uint64_t)sections[s].rows * sections[s].seats_per_row;
        if (seat < first + size) {
            *price_cents = sections[s].price_cents;
            return true;
        }
        first += size;
    }
    return false;
}
