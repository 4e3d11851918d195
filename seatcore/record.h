/* record.h — the engine's WAL record types and their encoding.
 *
 * Every change the engine makes is one of these records. The live path encodes
 * them (journal.c) and recovery decodes them (engine_replay in engine.c); both
 * sides go through this file so the format is defined once. Decoding treats the
 * bytes as input from outside: every field is bounds-checked and a malformed
 * record is TK_ERR_CORRUPT, never an assertion.
 *
 * Seat changes carry the seat's new version; recovery applies a seat change only
 * if its version is newer than the seat's, which makes replay idempotent over a
 * fuzzy snapshot and independent of the order in which writers reached the log.
 * Types 16..63 are the engine's; 64..79 belong to the queue (queue.h). */
#ifndef RECORD_H
#define RECORD_H

#include <stdint.h>

#include "seatcore.h"
#include "tk_codec.h"

enum rec_type {
    REC_EVENT_CREATE = 16,
    REC_EVENT_STATE = 17,
    REC_HOLD = 18,
    REC_HOLD_END = 19, /* confirm, release or expiry */
    REC_RETURN = 20,
    REC_ENGINE_TYPE_MAX = 63,
};

#define REC_PAYLOAD_BYTES_MAX 8192u

struct rec_seat {
    uint32_t seat;
    uint64_t version;
};

struct rec_hold {
    uint64_t event_id;
    uint32_t slot;
    uint64_t gen;
    uint64_t user_id;
    int64_t at_ms;
    int64_t expires_at_ms;
    uint64_t idempotency_key; /* engine-scoped key, 0: none */
    uint64_t request_hash;
    uint32_t seat_count;
    struct rec_seat seats[TK_SEATS_PER_HOLD_MAX];
};

/* How a hold ended; values match enum slot_end in event.h. */
enum rec_end_kind { REC_END_RELEASED = 1, REC_END_EXPIRED = 2, REC_END_CONFIRMED = 3 };

struct rec_hold_end {
    uint64_t event_id;
    uint32_t slot;
    uint64_t gen;
    uint32_t kind; /* enum rec_end_kind */
    uint64_t user_id;
    int64_t at_ms;
    uint64_t idempotency_key; /* confirms may carry one */
    uint64_t request_hash;
    uint32_t seat_count;
    struct rec_seat seats[TK_SEATS_PER_HOLD_MAX];
};

struct rec_return {
    uint64_t event_id;
    uint64_t user_id;
    int64_t at_ms;
    struct rec_seat seat;
};

struct rec_event_state {
    uint64_t event_id;
    uint32_t state; /* enum sc_event_state */
};

void rec_encode_event_create(struct tk_buf *buf, const struct sc_event_spec *spec);
void rec_encode_event_state(struct tk_buf *buf, const struct rec_event_state *rec);
void rec_encode_hold(struct tk_buf *buf, const struct rec_hold *rec);
void rec_encode_hold_end(struct tk_buf *buf, const struct rec_hold_end *rec);
void rec_encode_return(struct tk_buf *buf, const struct rec_return *rec);

/* Each decoder reads exactly one record payload; TK_ERR_CORRUPT if it is short,
 * long, or out of range (the spec decoder also runs event_spec_validate). */
enum tk_status rec_decode_event_create(const void *payload, uint32_t len, struct sc_event_spec *out);
enum tk_status rec_decode_event_state(const void *payload, uint32_t len, struct rec_event_state *out);
enum tk_status rec_decode_hold(const void *payload, uint32_t len, struct rec_hold *out);
enum tk_status rec_decode_hold_end(const void *payload, uint32_t len, struct rec_hold_end *out);
enum tk_status rec_decode_return(const void *payload, uint32_t len, struct rec_return *out);

/* Spec encoding shared with snapshots. */
void rec_put_spec(struct tk_buf *buf, const struct sc_event_spec *spec);
void rec_get_spec(struct tk_reader *r, struct sc_event_spec *out);

#endif
