/* test_event_cursor.c — tests services/event/event_cursor.c: the ListEvents
 * cursor round-trips and anything it could not have written is refused. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

#include "../../../services/event/event_cursor.c"

Test(event_cursor, round_trips)
{
    const struct event_cursor cases[] = {{0, 1}, {1903896000000000, 1000}, {INT64_MAX, INT64_MAX}, {123, 456789}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[EVENT_CURSOR_TEXT_BYTES];
        event_cursor_encode(&cases[i], text, sizeof(text));
        cr_assert_eq(strlen(text), 23, "17 bytes in base64url without padding");
        cr_assert_eq(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 23,
                     "URL-safe: %s", text);
        struct event_cursor back;
        cr_assert(event_cursor_decode(text, &back));
        cr_assert_eq(back.starts_at_us, cases[i].starts_at_us);
        cr_assert_eq(back.event_id, cases[i].event_id);
    }
}

static void encode_raw(const uint8_t *raw, size_t len, char *out, size_t out_len)
{
    sodium_bin2base64(out, out_len, raw, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

Test(event_cursor, refuses_what_it_did_not_write)
{
    struct event_cursor cursor;
    const char *bad[] = {"",
                         "not-a-cursor",
                         "AQAAAAAAAAAAAAAAAAAAAAE=",
                         "AQAAAAAAAAAAAAAAAAAAAA",
                         "AQAAAAAAAAAAAAAAAAAAAAEx",
                         "AQAAAAAAAAAAAAAAAAAAAAE AQ",
                         "AQAAAAAAAAAAAAAAAAAAAAE+",
                         "AQAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(event_cursor_decode(bad[i], &cursor), "should refuse '%s'", bad[i]);
    cr_assert_not(event_cursor_decode(NULL, &cursor));
    uint8_t raw[17] = {1};
    char text[64];
    encode_raw(raw, sizeof(raw), text, sizeof(text)); /* id 0 */
    cr_assert_not(event_cursor_decode(text, &cursor), "event id 0");
    raw[16] = 1;
    raw[0] = 2;
    encode_raw(raw, sizeof(raw), text, sizeof(text));
    cr_assert_not(event_cursor_decode(text, &cursor), "unknown format byte");
    raw[0] = 1;
    raw[1] = 0x80;
    encode_raw(raw, sizeof(raw), text, sizeof(text));
    cr_assert_not(event_cursor_decode(text, &cursor), "a negative time");
    raw[1] = 0;
    encode_raw(raw, sizeof(raw), text, sizeof(text));
    cr_assert(event_cursor_decode(text, &cursor), "the well-formed one: %s", text);
}
