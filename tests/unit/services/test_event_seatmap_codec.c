/* test_event_seatmap_codec.c — tests services/event/event_seatmap_codec.c: the
 * cached seat catalog round-trips, is compact, and any damage reads as a miss
 * (never a crash, never a wrong seat). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../../../services/event/event_seatmap_codec.c"

static const char *const sections[] = {"Floor", "Balcony"};

/* Floor 2x3 then Balcony 1x2, seat 4 with a custom label. */
static uint8_t *sample(size_t *len)
{
    struct event_seatmap_writer w;
    event_seatmap_writer_init(&w, 77, 5, 8, sections, 2);
    for (uint32_t seat = 0; seat < 8; seat++) {
        struct event_seat s = {.seat = seat, .section = seat < 6 ? 0 : 1, .row = seat < 6 ? seat / 3 + 1 : 1,
                               .number = seat < 6 ? seat % 3 + 1 : seat - 5, .price_cents = seat < 6 ? 2500 : 900};
        snprintf(s.label, sizeof(s.label), "%s-%u-%u", sections[s.section], s.row, s.number);
        if (seat == 4)
            snprintf(s.label, sizeof(s.label), "Royal Box");
        cr_assert(event_seatmap_add(&w, &s));
    }
    uint8_t *bytes;
    cr_assert(event_seatmap_finish(&w, &bytes, len));
    event_seatmap_writer_free(&w);
    return bytes;
}

Test(event_seatmap_codec, round_trips)
{
    size_t len;
    uint8_t *bytes = sample(&len);
    cr_assert_eq(len, 26 + 6 + 8 + 8 * EVENT_SEATMAP_SEAT_BYTES + 9, "header, names, seats, one custom label");
    struct event_seatmap_reader r;
    cr_assert(event_seatmap_reader_open(&r, bytes, len, 77, 5));
    cr_assert_eq(r.seat_count, 8);
    cr_assert_str_eq(r.sections[1], "Balcony");
    struct event_seat s;
    const char *labels[] = {"Floor-1-1", "Floor-1-2", "Floor-1-3", "Floor-2-1", "Royal Box", "Floor-2-3",
                            "Balcony-1-1", "Balcony-1-2"};
    for (uint32_t seat = 0; seat < 8; seat++) {
        cr_assert_eq(event_seatmap_next(&r, &s), 1);
        cr_assert_eq(s.seat, seat);
        cr_assert_str_eq(s.label, labels[seat]);
        cr_assert_eq(s.price_cents, seat < 6 ? 2500u : 900u);
    }
    cr_assert_eq(event_seatmap_next(&r, &s), 0);
    free(bytes);
}

Test(event_seatmap_codec, another_event_or_version_is_a_miss)
{
    size_t len;
    uint8_t *bytes = sample(&len);
    struct event_seatmap_reader r;
    cr_assert_not(event_seatmap_reader_open(&r, bytes, len, 78, 5));
    cr_assert_not(event_seatmap_reader_open(&r, bytes, len, 77, 4));
    cr_assert_not(event_seatmap_reader_open(&r, NULL, 0, 77, 5));
    free(bytes);
}

/* Every truncation and every single-byte change either reads as malformed or
 * still yields well-formed seats (the reader never walks out of the buffer). */
Test(event_seatmap_codec, damage_is_detected_or_harmless)
{
    size_t len;
    uint8_t *bytes = sample(&len);
    for (size_t cut = 0; cut < len; cut++) {
        struct event_seatmap_reader r;
        struct event_seat s;
        int rc = 1;
        if (event_seatmap_reader_open(&r, bytes, cut, 77, 5))
            while ((rc = event_seatmap_next(&r, &s)) == 1) {
            }
        cr_assert_neq(rc, 0, "a catalog cut at %zu bytes must not read as complete", cut);
    }
    uint8_t *copy = malloc(len);
    for (size_t i = 0; i < len; i++)
        for (unsigned flip = 1; flip < 256; flip <<= 1) {
            memcpy(copy, bytes, len);
            copy[i] ^= (uint8_t)flip;
            struct event_seatmap_reader r;
            struct event_seat s;
            if (!event_seatmap_reader_open(&r, copy, len, 77, 5))
                continue;
            int rc;
            while ((rc = event_seatmap_next(&r, &s)) == 1) {
                cr_assert_lt(s.section, r.section_count);
                cr_assert(s.row > 0 && s.number > 0);
            }
        }
    free(copy);
    free(bytes);
}

Test(event_seatmap_codec, writer_refuses_what_it_cannot_describe)
{
    struct event_seatmap_writer w;
    event_seatmap_writer_init(&w, 1, 1, 2, sections, 2);
    struct event_seat s = {.seat = 5, .section = 2, .row = 1, .number = 1};
    snprintf(s.label, sizeof(s.label), "x");
    cr_assert_not(event_seatmap_add(&w, &s), "no section 2");
    event_seatmap_writer_free(&w);
    event_seatmap_writer_init(&w, 1, 1, 2, sections, 2);
    s.section = 0;
    cr_assert(event_seatmap_add(&w, &s));
    cr_assert_not(event_seatmap_add(&w, &s), "seats must ascend");
    uint8_t *bytes;
    size_t len;
    cr_assert_not(event_seatmap_finish(&w, &bytes, &len));
    event_seatmap_writer_free(&w);
    event_seatmap_writer_init(&w, 1, 1, 1, sections, 2);
    s.label[0] = '\0';
    cr_assert_not(event_seatmap_add(&w, &s), "an empty label");
    event_seatmap_writer_free(&w);
    event_seatmap_writer_init(&w, 1, 1, 2, sections, 2);
    cr_assert_not(event_seatmap_finish(&w, &bytes, &len), "fewer seats than announced");
    event_seatmap_writer_free(&w);
}

Test(event_seatmap_codec, the_largest_event_stays_small)
{
    const uint32_t seats = TK_SEATS_PER_EVENT_MAX;
    struct event_seatmap_writer w;
    event_seatmap_writer_init(&w, 9, 1, seats, sections, 2);
    for (uint32_t seat = 0; seat < seats; seat++) {
        struct event_seat s = {.seat = seat, .section = seat / 100000, .row = seat % 100000 / 1000 + 1,
                               .number = seat % 1000 + 1, .price_cents = 100};
        snprintf(s.label, sizeof(s.label), "%s-%u-%u", sections[s.section], s.row, s.number);
        cr_assert(event_seatmap_add(&w, &s));
    }
    uint8_t *bytes;
    size_t len;
    cr_assert(event_seatmap_finish(&w, &bytes, &len));
    cr_assert_lt(len, (size_t)seats * EVENT_SEATMAP_SEAT_BYTES + 64, "14 bytes a seat: %zu", len);
    event_seatmap_writer_free(&w);
    free(bytes);
}
