/* edge_limits.h — every bound of the edge in one place.
 *
 * Settings (edge_config.c) may move a bound within [min, max] given here; the
 * fixed ones are sizes of buffers and tables. Past a bound a request is refused
 * with a clear problem (413, 429, 503) or a WebSocket is closed with a code and a
 * reason, and the process keeps serving. Units come last in the names. */
#ifndef EDGE_LIMITS_H
#define EDGE_LIMITS_H

#include <stdint.h>

#include "tk_limits.h"

#define EDGE_THREADS_MAX 16u
#define EDGE_RPC_THREADS_MAX 8u

/* Path ids (event, reservation): 1..64 characters of [A-Za-z0-9._~-]. */
#define EDGE_ID_BYTES 65u
/* A query parameter's decoded value (q, cursor, status, access_token). */
#define EDGE_QUERY_VALUE_BYTES 4097u
/* Idempotency-Key and X-Admission-Token header values. */
#define EDGE_IDEMPOTENCY_KEY_BYTES 256u
#define EDGE_ADMISSION_TOKEN_BYTES 1024u
/* X-Request-Id: what rpc_trace accepts (1..63 characters). */
#define EDGE_REQUEST_ID_BYTES 64u
#define EDGE_CLIENT_IP_BYTES 64u

#define EDGE_BODY_BYTES_MIN 1024u
#define EDGE_BODY_BYTES_MAX (1u << 20)
/* Seats one hold may name or count: the engine's bound (tk_limits.h). */
#define EDGE_HOLD_SEATS_MAX TK_SEATS_PER_HOLD_MAX
#define EDGE_EVENT_SECTIONS_MAX 64u

#define EDGE_CONNECTIONS_MAX_MAX 1000000u
#define EDGE_WEBSOCKETS_MAX_MAX 1000000u
#define EDGE_RATE_KEYS_MAX_MAX (1u << 22)
#define EDGE_RATE_STRIPES 64u
#define EDGE_RATE_PROBES 8u

/* The waiting-room feed (edge_feed.c). */
#define EDGE_FEED_EVENTS_MAX 4096u    /* events followed at once per process */
#define EDGE_LEFT_RANKS_MAX 65536u    /* leaves remembered per event (ranks >= head) */
#define EDGE_FEED_MESSAGE_BYTES 8192u /* a feed message longer than this is dropped */

/* Seat deltas (edge_seats.c). */
#define EDGE_SEAT_EVENTS_MAX 1024u           /* events watched at once per process */
#define EDGE_SEAT_DELTA_CHANGES_MAX 2000u    /* more changes in one round: "resync" instead */
#define EDGE_SEATS_PER_EVENT_MAX 200000u     /* event-svc's capacity bound */

/* WebSocket frames from clients are tiny (the protocol is server push). */
#define EDGE_WS_RECV_BYTES_MAX 4096u
#define EDGE_WS_SEND_BUFFER_BYTES_MIN 4096u
#define EDGE_WS_SEND_BUFFER_BYTES_MAX (16u << 20)

/* Seat map cache (edge_seatmap.c): events kept. */
#define EDGE_SEATMAP_CACHE_EVENTS 64u

_Static_assert(EDGE_BODY_BYTES_MIN < EDGE_BODY_BYTES_MAX, "body bounds");
_Static_assert(EDGE_SEAT_DELTA_CHANGES_MAX * 24u < EDGE_WS_SEND_BUFFER_BYTES_MIN * 16u,
               "a full delta fits the default send buffer (256 KiB)");
_Static_assert((EDGE_RATE_STRIPES & (EDGE_RATE_STRIPES - 1u)) == 0, "stripes are a power of two");

#endif
