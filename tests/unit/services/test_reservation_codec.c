/* test_reservation_codec.c — tests services/reservation/reservation_codec.c: the
 * reservation id and its UUID (one identity, two spellings), the keys derived
 * from a reservation, the request checks, RFC 3339 times, API statuses, the
 * pending-hold record kept in Redis (a cache outside the process: decode must
 * refuse anything encode would not write) and seat prices.
 *
 * The source is compiled into this test directly: the unit-test build links the
 * shared libraries only, and reservation_codec.c depends on nothing else. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../services/reservation/reservation_codec.c"

/* ---- ids ---- */

Test(rsv_parse_id, accepts_canonical_decimals_only)
{
    uint64_t v;
    cr_assert(rsv_parse_id("1", UINT64_MAX, &v) && v == 1);
    cr_assert(rsv_parse_id("18446744073709551615", UINT64_MAX, &v) && v == UINT64_MAX);
    cr_assert(rsv_parse_id("281474976710655", RSV_USER_ID_MAX, &v) && v == RSV_USER_ID_MAX);
    cr_assert_not(rsv_parse_id("281474976710656", RSV_USER_ID_MAX, &v));
    cr_assert_not(rsv_parse_id("18446744073709551616", UINT64_MAX, &v));
    cr_assert_not(rsv_parse_id("0", UINT64_MAX, &v));
    cr_assert_not(rsv_parse_id("01", UINT64_MAX, &v));
    cr_assert_not(rsv_parse_id("-1", UINT64_MAX, &v));
    cr_assert_not(rsv_parse_id(" 1", UINT64_MAX, &v));
    cr_assert_not(rsv_parse_id("1 ", UINT64_MAX, &v));
    cr_assert_not(rsv_parse_id("", UINT64_MAX, &v));
    cr_assert_not(rsv_parse_id(NULL, UINT64_MAX, &v));
    cr_assert_eq(v, 0, "a refused id leaves 0");
}

Test(rsv_id, round_trips_and_has_one_spelling)
{
    char id[RSV_ID_BYTES];
    rsv_id_format(1042, UINT64_C(0x0000001200000007), id);
    cr_assert_str_eq(id, "rsv_000000000000041200000012" "00000007");
    uint64_t event, hold;
    cr_assert(rsv_id_parse(id, &event, &hold));
    cr_assert_eq(event, 1042);
    cr_assert_eq(hold, UINT64_C(0x0000001200000007));
    rsv_id_format(UINT64_MAX, UINT64_MAX, id);
    cr_assert(rsv_id_parse(id, &event, &hold) && event == UINT64_MAX && hold == UINT64_MAX);
    rsv_id_format(7, 0, id);
    cr_assert(rsv_id_parse(id, &event, &hold) && event == 7 && hold == 0);
}

Test(rsv_id, refuses_anything_else)
{
    uint64_t event, hold;
    cr_assert_not(rsv_id_parse("rsv_00000000000004120000001200000007x", &event, &hold), "too long");
    cr_assert_not(rsv_id_parse("rsv_0000000000000412000000120000000", &event, &hold), "too short");
    cr_assert_not(rsv_id_parse("rsv_000000000000041200000012000000A7", &event, &hold), "upper case");
    cr_assert_not(rsv_id_parse("res_00000000000004120000001200000007", &event, &hold), "prefix");
    cr_assert_not(rsv_id_parse("rsv_00000000000000000000001200000007", &event, &hold), "event 0");
    cr_assert_not(rsv_id_parse("rsv_0000000000000412-000001200000007", &event, &hold), "not hex");
    cr_assert_not(rsv_id_parse("", &event, &hold));
    cr_assert_not(rsv_id_parse(NULL, &event, &hold));
}

Test(rsv_uuid, is_the_same_identity_as_the_id)
{
    char uuid[RSV_UUID_BYTES];
    rsv_uuid_format(1042, UINT64_C(0x0000001200000007), uuid);
    cr_assert_str_eq(uuid, "00000000-0000-0412-0000-001200000007");
    uint64_t event, hold;
    cr_assert(rsv_uuid_parse(uuid, &event, &hold));
    cr_assert_eq(event, 1042);
    cr_assert_eq(hold, UINT64_C(0x0000001200000007));
    rsv_uuid_format(UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210), uuid);
    cr_assert_str_eq(uuid, "01234567-89ab-cdef-fedc-ba9876543210");
    cr_assert(rsv_uuid_parse(uuid, &event, &hold));
    cr_assert_eq(event, UINT64_C(0x0123456789abcdef));
    cr_assert_eq(hold, UINT64_C(0xfedcba9876543210));
    cr_assert_not(rsv_uuid_parse("0123456789ab-cdef-fedc-ba98-76543210", &event, &hold), "dashes misplaced");
    cr_assert_not(rsv_uuid_parse("00000000-0000-0000-0000-001200000007", &event, &hold), "event 0");
}

Test(rsv_keys, are_derived_from_the_reservation_only)
{
    char uuid[RSV_UUID_BYTES], a[RSV_DERIVED_KEY_BYTES], b[RSV_DERIVED_KEY_BYTES];
    rsv_uuid_format(9, 3, uuid);
    rsv_charge_key(uuid, a);
    rsv_charge_key(uuid, b);
    cr_assert_str_eq(a, b, "the same reservation, the same charge");
    cr_assert_str_eq(a, "rsv-charge-00000000-0000-0009-0000-000000000003");
    rsv_refund_key(uuid, b);
    cr_assert_str_eq(b, "rsv-refund-00000000-0000-0009-0000-000000000003");
    cr_assert(strlen(a) <= RSV_KEY_BYTES_MAX && strlen(b) <= RSV_KEY_BYTES_MAX);
}

/* ---- request checks ---- */

Test(rsv_checks, keys_and_card_tokens)
{
    char long_key[300];
    memset(long_key, 'k', sizeof(long_key));
    long_key[255] = '\0';
    cr_assert(rsv_key_valid(long_key));
    long_key[255] = 'k';
    long_key[256] = '\0';
    cr_assert_not(rsv_key_valid(long_key), "256 bytes");
    cr_assert(rsv_key_valid("a key with spaces"));
    cr_assert_not(rsv_key_valid(""));
    cr_assert_not(rsv_key_valid("tab\there"));
    cr_assert_not(rsv_key_valid("caf\xc3\xa9"));
    cr_assert(rsv_card_token_valid("tok_approve"));
    cr_assert(rsv_card_token_valid("tok-1_A"));
    cr_assert_not(rsv_card_token_valid("tok approve"));
    cr_assert_not(rsv_card_token_valid("tok;drop"));
    cr_assert_not(rsv_card_token_valid(""));
    cr_assert_not(rsv_card_token_valid(NULL));
}

Test(rsv_checks, seat_lists)
{
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
    char *good[] = {"0", "17", "199999"};
    cr_assert(rsv_parse_seats(good, 3, seats));
    cr_assert(seats[0] == 0 && seats[1] == 17 && seats[2] == 199999);
    char *dup[] = {"3", "4", "3"};
    cr_assert_not(rsv_parse_seats(dup, 3, seats), "a seat twice");
    char *big[] = {"200000"};
    cr_assert_not(rsv_parse_seats(big, 1, seats), "past the engine's seats per event");
    char *lead[] = {"03"};
    cr_assert_not(rsv_parse_seats(lead, 1, seats));
    char *sign[] = {"-1"};
    cr_assert_not(rsv_parse_seats(sign, 1, seats));
    char *empty[] = {""};
    cr_assert_not(rsv_parse_seats(empty, 1, seats));
    char *eleven[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"};
    cr_assert(rsv_parse_seats(eleven, 10, seats));
    cr_assert_not(rsv_parse_seats(eleven, 11, seats), "more than a hold takes");
    cr_assert_not(rsv_parse_seats(eleven, 0, seats));
}

Test(rsv_checks, sections)
{
    int32_t index;
    cr_assert(rsv_section_index("", &index) && index == -1);
    cr_assert(rsv_section_index(NULL, &index) && index == -1);
    cr_assert(rsv_section_index("0", &index) && index == 0);
    cr_assert(rsv_section_index("63", &index) && index == 63);
    cr_assert_not(rsv_section_index("64", &index), "past the sections an event has: a name");
    cr_assert_not(rsv_section_index("Balcony", &index), "a name");
}

/* ---- times and states ---- */

Test(rsv_format_time, rfc3339_utc_with_milliseconds)
{
    char text[RSV_TIME_BYTES];
    cr_assert(rsv_format_time(0, text));
    cr_assert_str_eq(text, "1970-01-01T00:00:00.000Z");
    cr_assert(rsv_format_time(INT64_C(1740852000250), text));
    cr_assert_str_eq(text, "2025-03-01T18:00:00.250Z");
    cr_assert_not(rsv_format_time(-1, text));
    cr_assert_str_eq(text, "");
    cr_assert_not(rsv_format_time(INT64_C(253402300800000), text));
}

Test(rsv_api_status, maps_every_state_to_the_four_the_api_knows)
{
    cr_assert_str_eq(rsv_api_status("pending"), "pending");
    cr_assert_str_eq(rsv_api_status("paying"), "pending");
    cr_assert_str_eq(rsv_api_status("confirmed"), "confirmed");
    cr_assert_str_eq(rsv_api_status("released"), "cancelled");
    cr_assert_str_eq(rsv_api_status("expired"), "expired");
    cr_assert_str_eq(rsv_api_status("cancelling"), "cancelled");
    cr_assert_str_eq(rsv_api_status("cancelled"), "cancelled");
    cr_assert_null(rsv_api_status("charged"), "a saga state, not a reservation status");
    cr_assert_null(rsv_api_status(NULL));
}

/* ---- the pending record ---- */

Test(rsv_pending, round_trips)
{
    struct rsv_pending in = {.event_id = 1042, .hold_id = UINT64_MAX, .amount_cents = 12345,
                             .created_ms = INT64_C(1740852000250), .expires_ms = INT64_C(1740852300250),
                             .seat_count = 3, .seats = {5, 6, 199999}};
    char text[RSV_PENDING_RECORD_BYTES];
    cr_assert(rsv_pending_encode(&in, text, sizeof(text)));
    cr_assert_str_eq(text, "1|1042|18446744073709551615|12345|1740852000250|1740852300250|5,6,199999");
    struct rsv_pending out;
    cr_assert(rsv_pending_decode(text, strlen(text), &out));
    cr_assert(memcmp(&in, &out, sizeof(in)) == 0);
    struct rsv_pending full = in;
    full.seat_count = TK_SEATS_PER_HOLD_MAX;
    for (uint32_t i = 0; i < TK_SEATS_PER_HOLD_MAX; i++)
        full.seats[i] = 199990 + i;
    cr_assert(rsv_pending_encode(&full, text, sizeof(text)), "the largest record fits");
    cr_assert(rsv_pending_decode(text, strlen(text), &out) && out.seat_count == TK_SEATS_PER_HOLD_MAX);
    char small[16];
    cr_assert_not(rsv_pending_encode(&in, small, sizeof(small)));
    cr_assert_str_eq(small, "");
}

Test(rsv_pending, refuses_what_encode_never_writes)
{
    struct rsv_pending out;
    static const char *const bad[] = {
        "",
        "2|1|2|3|4|5|6",                     /* another version */
        "1|0|2|3|4|5|6",                     /* event 0 */
        "1|1|2|3|4|5|",                      /* no seats */
        "1|1|2|3|4|5|6,",                    /* a trailing comma */
        "1|1|2|3|4|5|6,,7",                  /* an empty seat */
        "1|1|2|3|4|5|200000",                /* a seat past the bound */
        "1|1|2|3|4|5|1,2,3,4,5,6,7,8,9,10,11", /* too many seats */
        "1|1|2|3|4|5|6|7",                   /* a field too many */
        "1|1|2|3|4|6",                       /* a field short */
        "1|1|2|-3|4|5|6",                    /* a sign */
        "1|1|2|3|4|99999999999999999999|6",  /* past 64 bits */
        "1|1|2|3|4|9223372036854775808|6",   /* past a signed time */
        "1|1|2|3|4|5|6x",                    /* junk */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(rsv_pending_decode(bad[i], strlen(bad[i]), &out), "accepted '%s'", bad[i]);
    cr_assert_not(rsv_pending_decode(NULL, 0, &out));
    cr_assert(rsv_pending_decode("1|1|2|3|4|5|6", 13, &out) && out.seat_count == 1 && out.seats[0] == 6);
    cr_assert_not(rsv_pending_decode("1|1|2|3|4|5|6", 12, &out) && out.seats[0] == 6, "length is respected");
}

/* ---- prices ---- */

Test(rsv_seat_price, follows_the_engine_numbering)
{
    const struct rsv_section_layout layout[] = {
        {.rows = 2, .seats_per_row = 5, .price_cents = 5000},  /* seats 0..9 */
        {.rows = 1, .seats_per_row = 3, .price_cents = 9000},  /* seats 10..12 */
        {.rows = 4, .seats_per_row = 1, .price_cents = 0},     /* seats 13..16: free seats */
    };
    uint32_t price;
    cr_assert(rsv_seat_price(layout, 3, 0, &price) && price == 5000);
    cr_assert(rsv_seat_price(layout, 3, 9, &price) && price == 5000);
    cr_assert(rsv_seat_price(layout, 3, 10, &price) && price == 9000);
    cr_assert(rsv_seat_price(layout, 3, 12, &price) && price == 9000);
    cr_assert(rsv_seat_price(layout, 3, 16, &price) && price == 0);
    cr_assert_not(rsv_seat_price(layout, 3, 17, &price), "past the layout");
    cr_assert_not(rsv_seat_price(layout, 0, 0, &price), "no sections");
}
