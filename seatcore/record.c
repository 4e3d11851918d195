/* record.c — encoding and checked decoding of engine WAL records (record.h). */
#include "record.h"

#include <string.h>

#include "event.h"

void rec_put_spec(struct tk_buf *buf, const struct sc_event_spec *spec)
{
    TK_ASSERT(spec->section_count <= TK_SECTIONS_PER_EVENT_MAX);
    tk_put_u64(buf, spec->event_id);
    tk_put_u32(buf, spec->hold_ttl_ms);
    tk_put_u32(buf, spec->max_seats_per_user);
    tk_put_u32(buf, spec->holds_max);
    tk_put_u32(buf, spec->users_max);
    tk_put_i64(buf, spec->sale_opens_at_ms);
    tk_put_u8(buf, spec->queue.enabled ? 1 : 0);
    tk_put_u8(buf, spec->queue.randomize_pre_open ? 1 : 0);
    tk_put_u32(buf, spec->queue.admit_per_s);
    tk_put_u32(buf, spec->queue.max_active);
    tk_put_u32(buf, spec->queue.length_max);
    tk_put_u32(buf, spec->queue.admission_ttl_ms);
    tk_put_u32(buf, spec->queue.heartbeat_timeout_ms);
    tk_put_u32(buf, spec->section_count);
    for (uint32_t s = 0; s < spec->section_count; s++) {
        const struct sc_section_spec *section = &spec->sections[s];
        size_t name_len = strnlen(section->name, sizeof(section->name));
        TK_ASSERT(name_len < sizeof(section->name));
        tk_put_u8(buf, (uint8_t)name_len);
        tk_put_bytes(buf, section->name, name_len);
        tk_put_u32(buf, section->rows);
        tk_put_u32(buf, section->seats_per_row);
        tk_put_u32(buf, section->price_cents);
    }
}

void rec_get_spec(struct tk_reader *r, struct sc_event_spec *out)
{
    memset(out, 0, sizeof(*out));
    out->event_id = tk_get_u64(r);
    out->hold_ttl_ms = tk_get_u32(r);
    out->max_seats_per_user = tk_get_u32(r);
    out->holds_max = tk_get_u32(r);
    out->users_max = tk_get_u32(r);
    out->sale_opens_at_ms = tk_get_i64(r);
    out->queue.enabled = tk_get_u8(r) != 0;
    out->queue.randomize_pre_open = tk_get_u8(r) != 0;
    out->queue.admit_per_s = tk_get_u32(r);
    out->queue.max_active = tk_get_u32(r);
    out->queue.length_max = tk_get_u32(r);
    out->queue.admission_ttl_ms = tk_get_u32(r);
    out->queue.heartbeat_timeout_ms = tk_get_u32(r);
    uint32_t count = tk_get_u32(r);
    if (count > TK_SECTIONS_PER_EVENT_MAX) {
        r->failed = true;
        return;
    }
    out->section_count = count;
    for (uint32_t s = 0; s < count && !r->failed; s++) {
        struct sc_section_spec *section = &out->sections[s];
        uint8_t name_len = tk_get_u8(r);
        if (name_len >= sizeof(section->name)) {
            r->failed = true;
            return;
        }
        const uint8_t *name = tk_get_bytes(r, name_len);
        if (name != NULL)
            memcpy(section->name, name, name_len);
        section->rows = tk_get_u32(r);
        section->seats_per_row = tk_get_u32(r);
        section->price_cents = tk_get_u32(r);
    }
}

void rec_encode_event_create(struct tk_buf *buf, const struct sc_event_spec *spec)
{
    rec_put_spec(buf, spec);
    TK_ASSERT(!buf->failed);
}

enum tk_status rec_decode_event_create(const void *payload, uint32_t len, struct sc_event_spec *out)
{
    struct tk_reader r;
    tk_reader_init(&r, payload, len);
    rec_get_spec(&r, out);
    const char *why;
    if (!tk_reader_done(&r) || event_spec_validate(out, &why) != TK_OK)
        return TK_ERR_CORRUPT;
    return TK_OK;
}

void rec_encode_event_state(struct tk_buf *buf, const struct rec_event_state *rec)
{
    TK_ASSERT(rec->state <= SC_EVENT_CANCELLED);
    tk_put_u64(buf, rec->event_id);
    tk_put_u32(buf, rec->state);
    TK_ASSERT(!buf->failed);
}

enum tk_status rec_decode_event_state(const void *payload, uint32_t len, struct rec_event_state *out)
{
    struct tk_reader r;
    tk_reader_init(&r, payload, len);
    out->event_id = tk_get_u64(&r);
    out->state = tk_get_u32(&r);
    if (!tk_reader_done(&r) || out->event_id == 0 || out->state > SC_EVENT_CANCELLED)
        return TK_ERR_CORRUPT;
    return TK_OK;
}

static void put_seats(struct tk_buf *buf, uint32_t count, const struct rec_seat *seats)
{
    TK_ASSERT(count >= 1 && count <= TK_SEATS_PER_HOLD_MAX);
    tk_put_u8(buf, (uint8_t)count);
    for (uint32_t i = 0; i < count; i++) {
        TK_ASSERT(seats[i].seat < TK_SEATS_PER_EVENT_MAX && seats[i].version <= SEAT_VERSION_MAX);
        tk_put_u32(buf, seats[i].seat);
        tk_put_u64(buf, seats[i].version);
    }
}

static uint32_t get_seats(struct tk_reader *r, struct rec_seat *seats)
{
    uint32_t count = tk_get_u8(r);
    if (count < 1 || count > TK_SEATS_PER_HOLD_MAX) {
        r->failed = true;
        return 0;
    }
    for (uint32_t i = 0; i < count; i++) {
        seats[i].seat = tk_get_u32(r);
        seats[i].version = tk_get_u64(r);
        if (seats[i].seat >= TK_SEATS_PER_EVENT_MAX || seats[i].version > SEAT_VERSION_MAX)
            r->failed = true;
    }
    return count;
}

void rec_encode_hold(struct tk_buf *buf, const struct rec_hold *rec)
{
    TK_ASSERT(rec->event_id != 0 && rec->user_id != 0 && rec->user_id <= TK_USER_ID_MAX);
    tk_put_u64(buf, rec->event_id);
    tk_put_u32(buf, rec->slot);
    tk_put_u64(buf, rec->gen);
    tk_put_u64(buf, rec->user_id);
    tk_put_i64(buf, rec->at_ms);
    tk_put_i64(buf, rec->expires_at_ms);
    tk_put_u64(buf, rec->idempotency_key);
    tk_put_u64(buf, rec->request_hash);
    put_seats(buf, rec->seat_count, rec->seats);
    TK_ASSERT(!buf->failed);
}

enum tk_status rec_decode_hold(const void *payload, uint32_t len, struct rec_hold *out)
{
    struct tk_reader r;
    tk_reader_init(&r, payload, len);
    out->event_id = tk_get_u64(&r);
    out->slot = tk_get_u32(&r);
    out->gen = tk_get_u64(&r);
    out->user_id = tk_get_u64(&r);
    out->at_ms = tk_get_i64(&r);
    out->expires_at_ms = tk_get_i64(&r);
    out->idempotency_key = tk_get_u64(&r);
    out->request_hash = tk_get_u64(&r);
    out->seat_count = get_seats(&r, out->seats);
    if (!tk_reader_done(&r) || out->event_id == 0 || out->user_id == 0 || out->user_id > TK_USER_ID_MAX ||
        out->slot >= TK_SEATS_PER_EVENT_MAX || out->gen > SLOT_GEN_MAX || out->expires_at_ms < out->at_ms)
        return TK_ERR_CORRUPT;
    return TK_OK;
}

void rec_encode_hold_end(struct tk_buf *buf, const struct rec_hold_end *rec)
{
    TK_ASSERT(rec->kind >= REC_END_RELEASED && rec->kind <= REC_END_CONFIRMED);
    TK_ASSERT(rec->event_id != 0 && rec->user_id != 0);
    tk_put_u64(buf, rec->event_id);
    tk_put_u32(buf, rec->slot);
    tk_put_u64(buf, rec->gen);
    tk_put_u8(buf, (uint8_t)rec->kind);
    tk_put_u64(buf, rec->user_id);
    tk_put_i64(buf, rec->at_ms);
    tk_put_u64(buf, rec->idempotency_key);
    tk_put_u64(buf, rec->request_hash);
    put_seats(buf, rec->seat_count, rec->seats);
    TK_ASSERT(!buf->failed);
}

enum tk_status rec_decode_hold_end(const void *payload, uint32_t len, struct rec_hold_end *out)
{
    struct tk_reader r;
    tk_reader_init(&r, payload, len);
    out->event_id = tk_get_u64(&r);
    out->slot = tk_get_u32(&r);
    out->gen = tk_get_u64(&r);
    out->kind = tk_get_u8(&r);
    out->user_id = tk_get_u64(&r);
    out->at_ms = tk_get_i64(&r);
    out->idempotency_key = tk_get_u64(&r);
    out->request_hash = tk_get_u64(&r);
    out->seat_count = get_seats(&r, out->seats);
    if (!tk_reader_done(&r) || out->event_id == 0 || out->user_id == 0 || out->user_id > TK_USER_ID_MAX ||
        out->slot >= TK_SEATS_PER_EVENT_MAX || out->gen > SLOT_GEN_MAX || out->kind < REC_END_RELEASED ||
        out->kind > REC_END_CONFIRMED)
        return TK_ERR_CORRUPT;
    return TK_OK;
}

void rec_encode_return(struct tk_buf *buf, const struct rec_return *rec)
{
    TK_ASSERT(rec->event_id != 0 && rec->user_id != 0);
    tk_put_u64(buf, rec->event_id);
    tk_put_u64(buf, rec->user_id);
    tk_put_i64(buf, rec->at_ms);
    tk_put_u32(buf, rec->seat.seat);
    tk_put_u64(buf, rec->seat.version);
    TK_ASSERT(!buf->failed);
}

enum tk_status rec_decode_return(const void *payload, uint32_t len, struct rec_return *out)
{
    struct tk_reader r;
    tk_reader_init(&r, payload, len);
    out->event_id = tk_get_u64(&r);
    out->user_id = tk_get_u64(&r);
    out->at_ms = tk_get_i64(&r);
    out->seat.seat = tk_get_u32(&r);
    out->seat.version = tk_get_u64(&r);
    if (!tk_reader_done(&r) || out->event_id == 0 || out->user_id == 0 || out->user_id > TK_USER_ID_MAX ||
        out->seat.seat >= TK_SEATS_PER_EVENT_MAX || out->seat.version > SEAT_VERSION_MAX)
        return TK_ERR_CORRUPT;
    return TK_OK;
}
