/* edge_route.h — which API.md route a request is, and its path ids.
 *
 * Pure (no I/O, no h2o): a method and a raw path go in, a route and its
 * captures come out, so the table is unit-tested (tests/unit/edge/test_edge_route.c)
 * and the same table names routes in logs and metrics. Ids in paths are opaque
 * but bounded: 1..64 characters of [A-Za-z0-9._~-]; an event id must also be a
 * canonical decimal number (what every service accepts), so anything else is
 * simply a resource that does not exist (404), never a 400. */
#ifndef EDGE_ROUTE_H
#define EDGE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edge_limits.h"

enum edge_route {
    EDGE_ROUTE_NONE = 0, /* not an API or operations path: the static web UI */
    EDGE_ROUTE_SIGNUP,
    EDGE_ROUTE_LOGIN,
    EDGE_ROUTE_REFRESH,
    EDGE_ROUTE_LOGOUT,
    EDGE_ROUTE_ME,
    EDGE_ROUTE_EVENTS_LIST,
    EDGE_ROUTE_EVENT_GET,
    EDGE_ROUTE_EVENT_SEATS,
    EDGE_ROUTE_ADMIN_EVENT_CREATE,
    EDGE_ROUTE_QUEUE_JOIN,
    EDGE_ROUTE_QUEUE_STATUS,
    EDGE_ROUTE_QUEUE_LEAVE,
    EDGE_ROUTE_QUEUE_WS,
    EDGE_ROUTE_HOLD_CREATE,
    EDGE_ROUTE_RESERVATION_RELEASE,
    EDGE_ROUTE_RESERVATION_PAY,
    EDGE_ROUTE_RESERVATIONS_LIST,
    EDGE_ROUTE_RESERVATION_GET,
    EDGE_ROUTE_RESERVATION_CANCEL,
    EDGE_ROUTE_HEALTHZ,
    EDGE_ROUTE_READYZ,
    EDGE_ROUTE_METRICS,
    EDGE_ROUTE_OPENAPI,
    EDGE_ROUTE_NOT_FOUND,          /* under /api/: no such resource */
    EDGE_ROUTE_METHOD_NOT_ALLOWED, /* the path exists, not with this method */
    EDGE_ROUTE_COUNT
};

struct edge_route_match {
    enum edge_route route;
    char event_id[EDGE_ID_BYTES];       /* "" unless the route has {event_id} */
    uint64_t event_number;              /* event_id as a number */
    char reservation_id[EDGE_ID_BYTES]; /* "" unless the route has {reservation_id} */
    char allow[48];                     /* METHOD_NOT_ALLOWED: "GET, POST" */
};

/* path: the raw request target; anything from '?' on is ignored. */
enum edge_route edge_route_find(const char *method, size_t method_len, const char *path, size_t path_len,
                                struct edge_route_match *match);
/* "queue_join", ...: a stable name for logs and metric labels. */
const char *edge_route_name(enum edge_route route);
/* Routes that need a verified access token (and the admin role). */
bool edge_route_needs_auth(enum edge_route route);
bool edge_route_needs_admin(enum edge_route route);

bool edge_id_valid(const char *id, size_t len);
/* A canonical decimal in 1..2^64-1: no sign, no leading zero, no spaces. */
bool edge_parse_u64(const char *text, size_t len, uint64_t *out);

/* The decoded value of query parameter name ('+' is a space, %XX a byte).
 * 1: found; 0: absent; -1: malformed encoding, a NUL byte or too long for out. */
int edge_query_param(const char *query, size_t query_len, const char *name, char *out, size_t out_len);

#endif
