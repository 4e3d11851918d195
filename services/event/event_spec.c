/* event_spec.c — CreateEvent request validation (event_spec.h).
 *
 * Each rule is a small function returning false with a reason; the order of
 * the checks is the order of the fields in the request, so the message names
 * the first field a person would fix. */
#include "event_spec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "event_time.h"
#include "tk_assert.h"

static bool refuse(char *reason, size_t reason_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool refuse(char *reason, size_t reason_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, reason_len, fmt, ap);
    va_end(ap);
    return false;
}

bool event_text_valid_utf8(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t extra = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 9;
        if (extra == 9 || (extra == 1 && c < 0xc2) || i + extra >= len)
            return false;
        uint32_t cp = extra == 0 ? c : (uint32_t)(c & (0x3f >> extra));
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += extra + 1;
    }
    return true;
}

/* 1..max bytes of UTF-8, no control characters, not only spaces. */
static bool check_text(const char *field, const char *text, size_t max, char *reason, size_t reason_len)
{
    size_t len = text ? strlen(text) : 0;
    if (len == 0)
        return refuse(reason, reason_len, "%s is required", field);
    if (len > max)
        return refuse(reason, reason_len, "%s is at most %zu bytes (got %zu)", field, max, len);
    if (!event_text_valid_utf8(text, len))
        return refuse(reason, reason_len, "%s is not valid UTF-8", field);
    bool blank = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return refuse(reason, reason_len, "%s must not contain control characters", field);
        if (c != ' ')
            blank = false;
    }
    if (blank)
        return refuse(reason, reason_len, "%s must not be blank", field);
    return true;
}

bool event_id_parse(const char *text, uint64_t *id)
{
    TK_ASSERT(id != NULL);
    if (text == NULL || text[0] < '1' || text[0] > '9' || strlen(text) > 19)
        return false;
    uint64_t v = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > INT64_MAX)
        return false;
    *id = v;
    return true;
}

static bool check_times(const Tiketi__V1__CreateEventCatalogRequest *r, struct event_spec *spec, char *reason,
                        size_t reason_len)
{
    if (r->starts_at == NULL || r->starts_at[0] == '\0')
        return refuse(reason, reason_len, "starts_at is required (RFC 3339, e.g. 2030-05-01T20:00:00Z)");
    if (!event_time_parse(r->starts_at, &spec->starts_at_us))
        return refuse(reason, reason_len, "starts_at is not an RFC 3339 date-time (e.g. 2030-05-01T20:00:00Z)");
    if (r->sale_opens_at == NULL || r->sale_opens_at[0] == '\0')
        return refuse(reason, reason_len, "sale_opens_at is required (RFC 3339, e.g. 2030-04-01T10:00:00Z)");
    if (!event_time_parse(r->sale_opens_at, &spec->sale_opens_at_us))
        return refuse(reason, reason_len, "sale_opens_at is not an RFC 3339 date-time (e.g. 2030-04-01T10:00:00Z)");
    if (spec->sale_opens_at_us >= spec->starts_at_us)
        return refuse(reason, reason_len, "sale_opens_at must be before starts_at");
    return true;
}

static bool check_section(const Tiketi__V1__SectionSpec *in, size_t index, struct event_section *out, char *reason,
                          size_t reason_len)
{
    char field[48];
    snprintf(field, sizeof(field), "sections[%zu].name", index);
    if (!check_text(field, in->name, TK_SECTION_NAME_BYTES_MAX - 1, reason, reason_len))
        return false;
    if (in->rows == 0 || in->rows > TK_ROWS_PER_SECTION_MAX)
        return refuse(reason, reason_len, "sections[%zu] (%s): rows must be 1..%u", index, in->name,
                      TK_ROWS_PER_SECTION_MAX);
    if (in->seats_per_row == 0 || in->seats_per_row > TK_SEATS_PER_ROW_MAX)
        return refuse(reason, reason_len, "sections[%zu] (%s): seats_per_row must be 1..%u", index, in->name,
                      TK_SEATS_PER_ROW_MAX);
    if (in->price_cents > TK_PRICE_CENTS_MAX)
        return refuse(reason, reason_len, "sections[%zu] (%s): price_cents must be 0..%u", index, in->name,
                      TK_PRICE_CENTS_MAX);
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", in->name);
    out->rows = in->rows;
    out->seats_per_row = in->seats_per_row;
    out->price_cents = in->price_cents;
    return true;
}

static bool check_sections(const Tiketi__V1__CreateEventCatalogRequest *r, struct event_spec *spec, char *reason,
                           size_t reason_len)
{
    if (r->n_sections == 0 || r->n_sections > TK_SECTIONS_PER_EVENT_MAX)
        return refuse(reason, reason_len, "an event needs 1..%u sections (got %zu)", TK_SECTIONS_PER_EVENT_MAX,
                      r->n_sections);
    uint64_t capacity = 0;
    for (size_t s = 0; s < r->n_sections; s++) {
        if (!check_section(r->sections[s], s, &spec->sections[s], reason, reason_len))
            return false;
        for (size_t before = 0; before < s; before++)
            if (strcmp(spec->sections[before].name, spec->sections[s].name) == 0)
                return refuse(reason, reason_len,
                              "sections[%zu]: the name '%s' is used twice (seat labels would clash)", s,
                              spec->sections[s].name);
        spec->sections[s].first_seat = (uint32_t)(capacity <= UINT32_MAX ? capacity : UINT32_MAX);
        capacity += (uint64_t)spec->sections[s].rows * spec->sections[s].seats_per_row;
    }
    if (capacity > TK_SEATS_PER_EVENT_MAX)
        return refuse(reason, reason_len, "capacity (all seats of all sections) is at most %u (got %" PRIu64 ")",
                      TK_SEATS_PER_EVENT_MAX, capacity);
    spec->section_count = (uint32_t)r->n_sections;
    spec->capacity = (uint32_t)capacity;
    return true;
}

static bool check_queue(const Tiketi__V1__QueueSpec *queue, struct event_spec *spec, char *reason, size_t reason_len)
{
    spec->queue_enabled = queue != NULL && queue->enabled;
    if (!spec->queue_enabled)
        return true; /* admit_per_s and max_active mean nothing without a waiting room */
    if (queue->admit_per_s == 0 || queue->admit_per_s > TK_ADMIT_PER_S_MAX)
        return refuse(reason, reason_len, "queue.admit_per_s must be 1..%u when the queue is enabled",
                      TK_ADMIT_PER_S_MAX);
    if (queue->max_active == 0 || queue->max_active > TK_MAX_ACTIVE_MAX)
        return refuse(reason, reason_len, "queue.max_active must be 1..%u when the queue is enabled",
                      TK_MAX_ACTIVE_MAX);
    spec->admit_per_s = queue->admit_per_s;
    spec->max_active = queue->max_active;
    return true;
}

static bool check_holds(const Tiketi__V1__CreateEventCatalogRequest *r, struct event_spec *spec, char *reason,
                        size_t reason_len)
{
    spec->hold_ttl_s = r->hold_ttl_s ? r->hold_ttl_s : EVENT_HOLD_TTL_S_DEFAULT;
    if (spec->hold_ttl_s > EVENT_HOLD_TTL_S_MAX)
        return refuse(reason, reason_len, "hold_ttl_s must be 1..%u (0: %u)", EVENT_HOLD_TTL_S_MAX,
                      EVENT_HOLD_TTL_S_DEFAULT);
    spec->max_seats_per_user = r->max_seats_per_user ? r->max_seats_per_user : EVENT_SEATS_PER_USER_DEFAULT;
    if (spec->max_seats_per_user > TK_SEATS_PER_USER_MAX)
        return refuse(reason, reason_len, "max_seats_per_user must be 1..%u (0: %u)", TK_SEATS_PER_USER_MAX,
                      EVENT_SEATS_PER_USER_DEFAULT);
    return true;
}

bool event_spec_from_request(const Tiketi__V1__CreateEventCatalogRequest *r, struct event_spec *spec, char *reason,
                             size_t reason_len)
{
    TK_ASSERT(r != NULL && spec != NULL && reason != NULL && reason_len > 0);
    memset(spec, 0, sizeof(*spec));
    reason[0] = '\0';
    if (!check_text("name", r->name, EVENT_NAME_BYTES_MAX, reason, reason_len) ||
        !check_text("venue", r->venue, EVENT_VENUE_BYTES_MAX, reason, reason_len) ||
        !check_times(r, spec, reason, reason_len) || !check_sections(r, spec, reason, reason_len) ||
        !check_queue(r->queue, spec, reason, reason_len) || !check_holds(r, spec, reason, reason_len))
        return false;
    if (!event_id_parse(r->admin_user_id, &spec->admin_user_id))
        return refuse(reason, reason_len, "admin_user_id must be the admin's user id (a positive decimal number)");
    snprintf(spec->name, sizeof(spec->name), "%s", r->name);
    snprintf(spec->venue, sizeof(spec->venue), "%s", r->venue);
    TK_ASSERT(spec->capacity >= 1 && spec->capacity <= TK_SEATS_PER_EVENT_MAX);
    TK_ASSERT(spec->section_count >= 1 && spec->sale_opens_at_us < spec->starts_at_us);
    return true;
}
