/* event_seatmap_codec.h — the compact form of an event's seat catalog.
 *
 * The catalog part of a seat map (every seat's number, section, row, number,
 * label and price) is what Redis caches, one value per event and catalog
 * version. 200,000 seats must stay small and quick to read back, so a seat is
 * 14 bytes: seat u32, section index u8, row u16, number u16, price u32 and a
 * label length u8 that is 0 when the label is the usual "section-row-number"
 * (rebuilt on reading) and otherwise followed by the label's bytes. A header
 * names the event and catalog version, and the section names come once.
 * All integers are little-endian.
 *
 * The reader trusts nothing (a cache can hold anything): every length, index
 * and count is checked, and a bad value is a miss, never a crash. */
#ifndef EVENT_SEATMAP_CODEC_H
#define EVENT_SEATMAP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_limits.h"

#define EVENT_LABEL_BYTES_MAX 255u
#define EVENT_SEATMAP_SEAT_BYTES 14u

struct event_seat {
    uint32_t seat;
    uint32_t section;
    uint32_t row;
    uint32_t number;
    uint32_t price_cents;
    char label[EVENT_LABEL_BYTES_MAX + 1];
};

struct event_seatmap_writer {
    uint8_t *bytes; /* malloc'd; the caller frees it (or takes it) */
    size_t len, capacity;
    uint32_t seats_expected, seats_written;
    uint32_t section_count;
    char sections[TK_SECTIONS_PER_EVENT_MAX][TK_SECTION_NAME_BYTES_MAX];
    int64_t last_seat;
    bool failed;
};

/* Section names (each 1..31 bytes), then exactly seat_count event_seatmap_add calls. */
void event_seatmap_writer_init(struct event_seatmap_writer *w, uint64_t event_id, uint64_t catalog_version,
                               uint32_t seat_count, const char *const *sections, uint32_t section_count);
/* false if the seat cannot be written (bad section, unordered seat, label too long). */
bool event_seatmap_add(struct event_seatmap_writer *w, const struct event_seat *seat);
/* true when every seat was written; *bytes belongs to the caller then. */
bool event_seatmap_finish(struct event_seatmap_writer *w, uint8_t **bytes, size_t *len);
void event_seatmap_writer_free(struct event_seatmap_writer *w);

struct event_seatmap_reader {
    const uint8_t *bytes;
    size_t len, pos;
    uint64_t event_id, catalog_version;
    uint32_t seat_count, seats_read;
    uint32_t section_count;
    char sections[TK_SECTIONS_PER_EVENT_MAX][TK_SECTION_NAME_BYTES_MAX];
    int64_t last_seat;
};

/* false unless the header is well formed and names this event and version. */
bool event_seatmap_reader_open(struct event_seatmap_reader *r, const uint8_t *bytes, size_t len, uint64_t event_id,
                               uint64_t catalog_version);
/* 1: a seat; 0: the end, and everything was consumed exactly; -1: malformed. */
int event_seatmap_next(struct event_seatmap_reader *r, struct event_seat *seat);

#endif
