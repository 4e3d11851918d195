/* event_seatmap_codec.c — the cached seat catalog's byte form (event_seatmap_codec.h). */
#include "event_seatmap_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk_assert.h"

static const uint8_t magic[4] = {'T', 'K', 'S', 'M'};
#define SEATMAP_FORMAT 1u
#define HEADER_BYTES (4u + 1u + 8u + 8u + 4u + 1u)

/* ---- writing ---- */

static void reserve(struct event_seatmap_writer *w, size_t more)
{
    if (w->len + more <= w->capacity)
        return;
    size_t capacity = w->capacity ? w->capacity : 256;
    while (capacity < w->len + more)
        capacity *= 2;
    w->bytes = realloc(w->bytes, capacity);
    TK_ASSERT(w->bytes != NULL);
    w->capacity = capacity;
}

static void put(struct event_seatmap_writer *w, uint64_t value, unsigned bytes)
{
    reserve(w, bytes);
    for (unsigned i = 0; i < bytes; i++, value >>= 8)
        w->bytes[w->len++] = (uint8_t)value;
}

static void put_bytes(struct event_seatmap_writer *w, const void *data, size_t len)
{
    reserve(w, len);
    memcpy(w->bytes + w->len, data, len);
    w->len += len;
}

void event_seatmap_writer_init(struct event_seatmap_writer *w, uint64_t event_id, uint64_t catalog_version,
                               uint32_t seat_count, const char *const *sections, uint32_t section_count)
{
    TK_ASSERT(w != NULL && section_count <= TK_SECTIONS_PER_EVENT_MAX);
    memset(w, 0, sizeof(*w));
    w->seats_expected = seat_count;
    w->section_count = section_count;
    w->last_seat = -1;
    reserve(w, HEADER_BYTES + (size_t)section_count * TK_SECTION_NAME_BYTES_MAX +
                   (size_t)seat_count * EVENT_SEATMAP_SEAT_BYTES);
    put_bytes(w, magic, sizeof(magic));
    put(w, SEATMAP_FORMAT, 1);
    put(w, event_id, 8);
    put(w, catalog_version, 8);
    put(w, seat_count, 4);
    put(w, section_count, 1);
    for (uint32_t s = 0; s < section_count; s++) {
        size_t n = strlen(sections[s]);
        if (n == 0 || n >= TK_SECTION_NAME_BYTES_MAX) {
            w->failed = true;
            return;
        }
        memcpy(w->sections[s], sections[s], n + 1);
        put(w, n, 1);
        put_bytes(w, sections[s], n);
    }
}

static void derived_label(const char *section, uint32_t row, uint32_t number, char *out, size_t out_len)
{
    snprintf(out, out_len, "%s-%u-%u", section, row, number);
}

bool event_seatmap_add(struct event_seatmap_writer *w, const struct event_seat *seat)
{
    TK_ASSERT(w != NULL && seat != NULL);
    if (w->failed || w->seats_written == w->seats_expected || seat->section >= w->section_count ||
        (int64_t)seat->seat <= w->last_seat || seat->row == 0 || seat->row > UINT16_MAX || seat->number == 0 ||
        seat->number > UINT16_MAX) {
        w->failed = true;
        return false;
    }
    size_t label_len = strnlen(seat->label, sizeof(seat->label));
    char usual[EVENT_LABEL_BYTES_MAX + 1];
    derived_label(w->sections[seat->section], seat->row, seat->number, usual, sizeof(usual));
    bool derived = strcmp(usual, seat->label) == 0;
    if (label_len == 0 || label_len > EVENT_LABEL_BYTES_MAX) {
        w->failed = true;
        return false;
    }
    put(w, seat->seat, 4);
    put(w, seat->section, 1);
    put(w, seat->row, 2);
    put(w, seat->number, 2);
    put(w, seat->price_cents, 4);
    put(w, derived ? 0 : label_len, 1);
    if (!derived)
        put_bytes(w, seat->label, label_len);
    w->last_seat = seat->seat;
    w->seats_written++;
    return true;
}

bool event_seatmap_finish(struct event_seatmap_writer *w, uint8_t **bytes, size_t *len)
{
    TK_ASSERT(w != NULL && bytes != NULL && len != NULL);
    if (w->failed || w->seats_written != w->seats_expected)
        return false;
    *bytes = w->bytes;
    *len = w->len;
    w->bytes = NULL;
    w->len = w->capacity = 0;
    return true;
}

void event_seatmap_writer_free(struct event_seatmap_writer *w)
{
    free(w->bytes);
    w->bytes = NULL;
}

/* ---- reading ---- */

static bool get(struct event_seatmap_reader *r, unsigned bytes, uint64_t *value)
{
    if (r->len - r->pos < bytes)
        return false;
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)r->bytes[r->pos + i] << (8 * i);
    r->pos += bytes;
    *value = v;
    return true;
}

bool event_seatmap_reader_open(struct event_seatmap_reader *r, const uint8_t *bytes, size_t len, uint64_t event_id,
                               uint64_t catalog_version)
{
    TK_ASSERT(r != NULL);
    memset(r, 0, sizeof(*r));
    r->bytes = bytes;
    r->len = bytes != NULL ? len : 0;
    r->last_seat = -1;
    uint64_t format, id, version, seats, sections;
    if (r->len < HEADER_BYTES || memcmp(bytes, magic, sizeof(magic)) != 0)
        return false;
    r->pos = sizeof(magic);
    if (!get(r, 1, &format) || format != SEATMAP_FORMAT || !get(r, 8, &id) || id != event_id ||
        !get(r, 8, &version) || version != catalog_version || !get(r, 4, &seats) ||
        seats > TK_SEATS_PER_EVENT_MAX || !get(r, 1, &sections) || sections == 0 ||
        sections > TK_SECTIONS_PER_EVENT_MAX)
        return false;
    r->event_id = id;
    r->catalog_version = version;
    r->seat_count = (uint32_t)seats;
    r->section_count = (uint32_t)sections;
    for (uint32_t s = 0; s < r->section_count; s++) {
        uint64_t n;
        if (!get(r, 1, &n) || n == 0 || n >= TK_SECTION_NAME_BYTES_MAX || r->len - r->pos < n)
            return false;
        memcpy(r->sections[s], r->bytes + r->pos, n);
        r->sections[s][n] = '\0';
        r->pos += n;
    }
    return true;
}

int event_seatmap_next(struct event_seatmap_reader *r, struct event_seat *seat)
{
    TK_ASSERT(r != NULL && seat != NULL);
    if (r->seats_read == r->seat_count)
        return r->pos == r->len ? 0 : -1;
    uint64_t number, section, row, seat_number, price, label_len;
    if (!get(r, 4, &number) || !get(r, 1, &section) || !get(r, 2, &row) || !get(r, 2, &seat_number) ||
        !get(r, 4, &price) || !get(r, 1, &label_len))
        return -1;
    if ((int64_t)number <= r->last_seat || section >= r->section_count || row == 0 || seat_number == 0 ||
        r->len - r->pos < label_len)
        return -1;
    *seat = (struct event_seat){.seat = (uint32_t)number, .section = (uint32_t)section, .row = (uint32_t)row,
                                .number = (uint32_t)seat_number, .price_cents = (uint32_t)price};
    if (label_len == 0) {
        derived_label(r->sections[section], seat->row, seat->number, seat->label, sizeof(seat->label));
    } else {
        memcpy(seat->label, r->bytes + r->pos, label_len);
        seat->label[label_len] = '\0';
        r->pos += label_len;
    }
    r->last_seat = (int64_t)number;
    r->seats_read++;
    return 1;
}
