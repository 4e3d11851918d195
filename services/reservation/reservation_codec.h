/* reservation_codec.h — every format reservation-svc speaks, as pure functions.
 *
 * What it owns: the reservation id ("rsv_" + 32 hex digits of the event id and
 * the engine's hold id) and the PostgreSQL UUID made of the same 16 bytes, so
 * the hot path needs no table to find a hold again and a paid reservation keeps
 * its id; the keys derived from a reservation (payment-svc Charge and Refund, the
 * engine's Confirm) so that every retry, by a client or by the recovery loop,
 * names the same operation; the request checks (decimal ids, seat lists, keys,
 * card tokens); RFC 3339 times; the pending-hold record kept in Redis; seat
 * prices from the engine's section layout; and the API status of a state.
 *
 * No I/O and no allocation: the unit tests (tests/unit/services/
 * test_reservation_codec.c) include this file's .c directly. */
#ifndef RESERVATION_CODEC_H
#define RESERVATION_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_limits.h"

#define RSV_ID_PREFIX "rsv_"
#define RSV_ID_BYTES 37u        /* "rsv_" + 32 hex + NUL */
#define RSV_UUID_BYTES 37u      /* 8-4-4-4-12 + NUL */
#define RSV_KEY_BYTES_MAX 255u  /* idempotency keys, card tokens */
#define RSV_DERIVED_KEY_BYTES 64u
#define RSV_TIME_BYTES 32u      /* "2025-03-01T18:10:00.000Z" + NUL */
#define RSV_USER_ID_MAX TK_USER_ID_MAX
#define RSV_SEAT_ID_MAX (TK_SEATS_PER_EVENT_MAX - 1u)
#define RSV_ID_DIGITS_MAX 20u
#define RSV_PENDING_RECORD_BYTES 256u
#define RSV_SECTIONS_MAX TK_SECTIONS_PER_EVENT_MAX

/* ---- ids ---- */
/* Canonical decimal 1..max (no sign, spaces or leading zeros). */
bool rsv_parse_id(const char *text, uint64_t max, uint64_t *out);
void rsv_id_format(uint64_t event_id, uint64_t hold_id, char out[RSV_ID_BYTES]);
/* Exactly "rsv_" + 32 lowercase hex digits, event id nonzero. */
bool rsv_id_parse(const char *text, uint64_t *event_id, uint64_t *hold_id);
void rsv_uuid_format(uint64_t event_id, uint64_t hold_id, char out[RSV_UUID_BYTES]);
bool rsv_uuid_parse(const char *text, uint64_t *event_id, uint64_t *hold_id);

/* Keys derived from the reservation's UUID: one charge and one refund per
 * reservation, whoever asks and however often. */
void rsv_charge_key(const char *uuid, char out[RSV_DERIVED_KEY_BYTES]);
void rsv_refund_key(const char *uuid, char out[RSV_DERIVED_KEY_BYTES]);

/* ---- request checks ---- */
/* 1..255 printable ASCII characters (0x20..0x7e). */
bool rsv_key_valid(const char *key);
/* 1..255 characters of letters, digits, '_' or '-' (what payment-svc accepts). */
bool rsv_card_token_valid(const char *token);
/* Seat ids: 1..TK_SEATS_PER_HOLD_MAX canonical decimals ("0" allowed) below
 * RSV_SEAT_ID_MAX + 1, no repeats. */
bool rsv_parse_seats(char *const *ids, size_t count, uint32_t *seats);
/* "" (any: -1), or a decimal section index < RSV_SECTIONS_MAX. false: it is a
 * name (to be resolved against the event's sections). */
bool rsv_section_index(const char *section, int32_t *index);

/* ---- times ---- */
/* RFC 3339 UTC with milliseconds; "" (and false) outside years 1970..9999. */
bool rsv_format_time(int64_t ms, char out[RSV_TIME_BYTES]);

/* ---- states ---- */
/* The API status (pending, confirmed, cancelled, expired) of a reservation
 * state; NULL for an unknown state. */
const char *rsv_api_status(const char *state);

/* ---- the pending hold, as kept in Redis ---- */
struct rsv_pending {
    uint64_t event_id;
    uint64_t hold_id;
    uint64_t amount_cents;
    int64_t created_ms;
    int64_t expires_ms;
    uint32_t seat_count;
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
};

/* "1|event|hold|amount|created_ms|expires_ms|s1,s2,..." ; false if it does not fit. */
bool rsv_pending_encode(const struct rsv_pending *pending, char *out, size_t out_len);
/* Refuses anything but what encode writes (the cache is outside our process). */
bool rsv_pending_decode(const char *text, size_t len, struct rsv_pending *out);

/* ---- prices ---- */
struct rsv_section_layout {
    uint32_t rows;
    uint32_t seats_per_row;
    uint32_t price_cents;
};

/* The price of seat (numbered across sections in order, row by row); false if
 * the seat is past the layout. */
bool rsv_seat_price(const struct rsv_section_layout *sections, uint32_t section_count, uint32_t seat,
                    uint32_t *price_cents);

#endif
