/* queue_format.h — queue-svc's pure conversions: ids, times, views, errors,
 * Redis names and the feed's JSON messages.
 *
 * Nothing here does I/O or allocates beyond what the caller hands in, so the
 * unit tests (tests/unit/services/test_queue_format.c) cover it completely, and
 * the formats the edge implements against (docs/services/queue.md) are written
 * in exactly one place. */
#ifndef QUEUE_FORMAT_H
#define QUEUE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc_status.h"
#include "tiketi/v1/queue.pb-c.h"
#include "tiketi/v1/seatcore.pb-c.h"

#define QUEUE_ID_DIGITS_MAX 20u             /* UINT64_MAX has 20 digits */
#define QUEUE_ID_TEXT_BYTES 24u
#define QUEUE_USER_ID_MAX ((UINT64_C(1) << 48) - 1) /* the engine's TK_USER_ID_MAX */
#define QUEUE_EVENT_ID_MAX UINT64_MAX
#define QUEUE_TIME_TEXT_BYTES 32u           /* "2025-01-31T23:59:59.999Z" and then some */
#define QUEUE_TOKEN_BYTES_MAX 256u          /* the engine's SC_ADMISSION_TOKEN_BYTES_MAX */
#define QUEUE_JSON_BYTES_MAX 512u           /* any one feed message */
#define QUEUE_REDIS_NAME_BYTES 64u          /* a channel or key name */

_Static_assert(QUEUE_ID_TEXT_BYTES > QUEUE_ID_DIGITS_MAX, "an id and its NUL fit");
_Static_assert(QUEUE_JSON_BYTES_MAX > QUEUE_TOKEN_BYTES_MAX + 200u, "an admitted message fits with its token");

/* A canonical decimal id: 1..20 digits, no sign, no leading zero, 1..max.
 * false for anything else (the caller answers INVALID_ARGUMENT). */
bool queue_parse_id(const char *text, uint64_t max, uint64_t *out);

/* RFC 3339 UTC with milliseconds, e.g. "2025-03-01T18:00:00.250Z". false if
 * ms is outside years 1970..9999 or the buffer is too small. */
bool queue_format_time(int64_t ms, char *out, size_t out_len);

/* "waiting", "admitted", "left", "expired" (or "unknown"). */
const char *queue_state_name(Tiketi__V1__QueueState state);

/* Fills out (initialised here) from the engine's view. The strings point into
 * the caller's buffers (expires_at: QUEUE_TIME_TEXT_BYTES) and into in (the
 * token), so they must outlive out's use. */
void queue_view_from_engine(const Tiketi__V1__QueueView *in, const char *event_id_text, const char *user_id_text,
                            char *expires_at, Tiketi__V1__WaitingRoomView *out);

/* The error this service answers for an engine call that failed. what:
 * QUEUE_ERROR_FOR_JOIN when the user need not have joined yet. */
enum queue_error_context { QUEUE_ERROR_FOR_JOIN, QUEUE_ERROR_FOR_MEMBER };
void queue_error_from_engine(const struct rpc_error *engine, enum queue_error_context context,
                             struct rpc_error *out);

/* "redis://host:port[/db]" or "host:port[/db]" (db 0..15). Credentials in the
 * URL are refused (not supported, and never echoed). */
struct queue_redis_address {
    char host[256];
    int port;
    int db;
};
bool queue_redis_parse_url(const char *url, struct queue_redis_address *out);

/* Redis names (docs/services/queue.md). false if the buffer is too small. */
bool queue_channel_name(uint64_t event_id, char *out, size_t out_len);      /* tiketi:queue:<id> */
bool queue_lease_key(uint64_t event_id, char *out, size_t out_len);         /* tiketi:queue:{<id>}:lease */
bool queue_next_rank_key(uint64_t event_id, char *out, size_t out_len);     /* tiketi:queue:{<id>}:next_rank */
bool queue_left_key(uint64_t event_id, char *out, size_t out_len);          /* tiketi:queue:{<id>}:left */

/* Feed messages: each returns the length written (< out_len), or 0 when the
 * message would not fit or a value cannot be represented (a token with
 * characters outside base64url, a time outside RFC 3339's range). */
struct queue_head_message {
    uint64_t event_id;
    uint32_t head_rank, waiting, active;
    double rate_per_s;
    int64_t ts_ms;
};
size_t queue_json_head(const struct queue_head_message *m, char *out, size_t out_len);

struct queue_admitted_message {
    uint64_t event_id, user_id, ticket;
    uint32_t rank;
    const char *admission_token;
    int64_t expires_ms;
    int64_t ts_ms;
};
size_t queue_json_admitted(const struct queue_admitted_message *m, char *out, size_t out_len);

struct queue_left_message {
    uint64_t event_id, user_id;
    uint32_t rank;
    int64_t ts_ms;
};
size_t queue_json_left(const struct queue_left_message *m, char *out, size_t out_len);

#endif
