/* test_record.c — WAL record encoding and checked decoding (seatcore/record.c):
 * round trips, and every short, long or out-of-range payload refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "record.h"
#include "tk_test_support.h"

static size_t encode_hold(uint8_t *bytes, size_t cap, const struct rec_hold *rec)
{
    struct tk_buf buf;
    tk_buf_init(&buf, bytes, cap);
    rec_encode_hold(&buf, rec);
    cr_assert(!buf.failed);
    return buf.len;
}

static struct rec_hold sample_hold(void)
{
    struct rec_hold rec = {.event_id = 7, .slot = 12, .gen = 99, .user_id = 4242, .at_ms = 1000,
                           .expires_at_ms = 61000, .idempotency_key = 0xabcdef, .request_hash = 0x1234,
                           .seat_count = 3};
    for (uint32_t i = 0; i < 3; i++)
        rec.seats[i] = (struct rec_seat){.seat = 100 + i, .version = 5 + i};
    return rec;
}

Test(record, hold_round_trip)
{
    struct rec_hold rec = sample_hold(), back;
    uint8_t bytes[REC_PAYLOAD_BYTES_MAX];
    size_t len = encode_hold(bytes, sizeof(bytes), &rec);
    cr_assert_eq(rec_decode_hold(bytes, (uint32_t)len, &back), TK_OK);
    cr_assert_eq(back.event_id, 7);
    cr_assert_eq(back.slot, 12);
    cr_assert_eq(back.gen, 99);
    cr_assert_eq(back.user_id, 4242);
    cr_assert_eq(back.expires_at_ms, 61000);
    cr_assert_eq(back.idempotency_key, 0xabcdef);
    cr_assert_eq(back.seat_count, 3);
    cr_assert_eq(back.seats[2].seat, 102);
    cr_assert_eq(back.seats[2].version, 7);
}

Test(record, every_truncation_and_extension_is_refused)
{
    struct rec_hold rec = sample_hold(), back;
    uint8_t bytes[REC_PAYLOAD_BYTES_MAX];
    size_t len = encode_hold(bytes, sizeof(bytes), &rec);
    for (size_t cut = 0; cut < len; cut++)
        cr_assert_eq(rec_decode_hold(bytes, (uint32_t)cut, &back), TK_ERR_CORRUPT, "cut at %zu", cut);
    bytes[len] = 0;
    cr_assert_eq(rec_decode_hold(bytes, (uint32_t)len + 1, &back), TK_ERR_CORRUPT, "trailing byte");
}

Test(record, out_of_range_fields_are_refused)
{
    uint8_t bytes[REC_PAYLOAD_BYTES_MAX];
    struct rec_hold back;
    struct rec_hold rec = sample_hold();
    size_t len = encode_hold(bytes, sizeof(bytes), &rec);
    uint8_t copy[REC_PAYLOAD_BYTES_MAX];
    /* seat count byte sits after 8+4+8+8+8+8+8+8 = 60 bytes */
    memcpy(copy, bytes, len);
    copy[60] = 0;
    cr_assert_eq(rec_decode_hold(copy, (uint32_t)len, &back), TK_ERR_CORRUPT, "zero seats");
    memcpy(copy, bytes, len);
    copy[60] = 11;
    cr_assert_eq(rec_decode_hold(copy, (uint32_t)len, &back), TK_ERR_CORRUPT, "eleven seats");
    memcpy(copy, bytes, len);
    memset(copy + 20, 0, 8); /* user id */
    cr_assert_eq(rec_decode_hold(copy, (uint32_t)len, &back), TK_ERR_CORRUPT, "user 0");
    memcpy(copy, bytes, len);
    memset(copy + 61, 0xff, 4); /* first seat id */
    cr_assert_eq(rec_decode_hold(copy, (uint32_t)len, &back), TK_ERR_CORRUPT, "seat id past the bound");
    memcpy(copy, bytes, len);
    memset(copy + 36, 0, 8); /* expiry before the hold was made */
    cr_assert_eq(rec_decode_hold(copy, (uint32_t)len, &back), TK_ERR_CORRUPT, "expiry before creation");
}

Test(record, hold_end_return_and_state_round_trip)
{
    uint8_t bytes[REC_PAYLOAD_BYTES_MAX];
    struct tk_buf buf;
    struct rec_hold_end end = {.event_id = 3, .slot = 1, .gen = 2, .kind = REC_END_CONFIRMED, .user_id = 9,
                               .at_ms = 5, .seat_count = 1, .seats = {{.seat = 4, .version = 8}}};
    tk_buf_init(&buf, bytes, sizeof(bytes));
    rec_encode_hold_end(&buf, &end);
    struct rec_hold_end end_back;
    cr_assert_eq(rec_decode_hold_end(bytes, (uint32_t)buf.len, &end_back), TK_OK);
    cr_assert_eq(end_back.kind, REC_END_CONFIRMED);
    cr_assert_eq(end_back.seats[0].version, 8);
    bytes[20] = 9; /* kind byte after 8+4+8 */
    cr_assert_eq(rec_decode_hold_end(bytes, (uint32_t)buf.len, &end_back), TK_ERR_CORRUPT);

    struct rec_return ret = {.event_id = 3, .user_id = 9, .at_ms = 5, .seat = {.seat = 4, .version = 10}}, ret_back;
    tk_buf_init(&buf, bytes, sizeof(bytes));
    rec_encode_return(&buf, &ret);
    cr_assert_eq(rec_decode_return(bytes, (uint32_t)buf.len, &ret_back), TK_OK);
    cr_assert_eq(ret_back.seat.version, 10);
    cr_assert_eq(rec_decode_return(bytes, (uint32_t)buf.len - 1, &ret_back), TK_ERR_CORRUPT);

    struct rec_event_state state = {.event_id = 3, .state = SC_EVENT_CANCELLED}, state_back;
    tk_buf_init(&buf, bytes, sizeof(bytes));
    rec_encode_event_state(&buf, &state);
    cr_assert_eq(rec_decode_event_state(bytes, (uint32_t)buf.len, &state_back), TK_OK);
    cr_assert_eq(state_back.state, SC_EVENT_CANCELLED);
    bytes[8] = 7;
    cr_assert_eq(rec_decode_event_state(bytes, (uint32_t)buf.len, &state_back), TK_ERR_CORRUPT);
}

Test(record, event_spec_round_trip_and_validation)
{
    struct sc_event_spec spec, back;
    tk_test_spec(&spec, 11, 3, 7, 9);
    spec.queue = (struct sc_queue_spec){.enabled = true, .admit_per_s = 50, .max_active = 500, .length_max = 1000,
                                        .admission_ttl_ms = 60000, .heartbeat_timeout_ms = 30000,
                                        .randomize_pre_open = true};
    spec.sale_opens_at_ms = 123456;
    uint8_t bytes[REC_PAYLOAD_BYTES_MAX];
    struct tk_buf buf;
    tk_buf_init(&buf, bytes, sizeof(bytes));
    rec_encode_event_create(&buf, &spec);
    cr_assert_eq(rec_decode_event_create(bytes, (uint32_t)buf.len, &back), TK_OK);
    cr_assert_eq(back.section_count, 3);
    cr_assert_str_eq(back.sections[1].name, "S1");
    cr_assert_eq(back.sections[2].price_cents, 1200);
    cr_assert(back.queue.randomize_pre_open);
    cr_assert_eq(back.queue.max_active, 500);
    cr_assert_eq(back.sale_opens_at_ms, 123456);
    for (size_t cut = 0; cut < buf.len; cut++)
        cr_assert_eq(rec_decode_event_create(bytes, (uint32_t)cut, &back), TK_ERR_CORRUPT);
    memset(bytes + 8, 0, 4); /* hold TTL 0 is valid (default) ... */
    cr_assert_eq(rec_decode_event_create(bytes, (uint32_t)buf.len, &back), TK_OK);
    bytes[8] = 5; /* ... 5 ms is not */
    cr_assert_eq(rec_decode_event_create(bytes, (uint32_t)buf.len, &back), TK_ERR_CORRUPT);
}

Test(record, random_bytes_never_crash_the_decoders)
{
    uint64_t seed = tk_test_seed("record.random_bytes");
    uint8_t bytes[256];
    for (uint32_t round = 0; round < 20000; round++) {
        uint32_t len = (uint32_t)(tk_test_rand(&seed) % sizeof(bytes));
        for (uint32_t i = 0; i < len; i++)
            bytes[i] = (uint8_t)tk_test_rand(&seed);
        struct rec_hold hold;
        struct rec_hold_end end;
        struct rec_return ret;
        struct rec_event_state state;
        struct sc_event_spec spec;
        (void)rec_decode_hold(bytes, len, &hold);
        (void)rec_decode_hold_end(bytes, len, &end);
        (void)rec_decode_return(bytes, len, &ret);
        (void)rec_decode_event_state(bytes, len, &state);
        (void)rec_decode_event_create(bytes, len, &spec);
    }
}
