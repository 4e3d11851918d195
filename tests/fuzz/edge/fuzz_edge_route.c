/* fuzz_edge_route.c — libFuzzer target: the edge's route table and its path and
 * query parsing (edge/edge_route.c), as every request reaches them, before any
 * authentication: the raw method and request target are the client's bytes.
 *
 * fuzz_edge_json covers the bodies behind a route; this covers how a request
 * gets to one. What a wrong answer here would cost: a capture that is not a
 * valid id reaching a service, an event id that is not the number it names (a
 * request landing on another event's shard), an admin route not flagged as
 * admin, a query value decoded past its buffer or with a NUL that cuts it
 * short in C but not in the service. So, checked on every input:
 *   - the route is in range and has a name; the answer is the same every time;
 *   - {event_id} is a valid id, a canonical decimal, and event_number is its
 *     value; {reservation_id} is a valid id; routes without them capture "";
 *   - the Allow list is set for 405 and only then; an admin route needs auth;
 *   - a matched API route's path starts with /api/v1/, and what is not a route
 *     under /api is the static UI (never an API handler);
 *   - a decoded query value fits its buffer, has no NUL inside, and decoding
 *     into a bigger buffer gives the same value (nothing depends on the bound
 *     but success).
 *
 * Input: byte 0 picks the method (or, past the list, the method is the bytes up
 * to the first 0xFF); the rest is the request target, query included. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_route.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_edge_route: %s:%d: %s\n", __FILE__, __LINE__, #cond);                                \
            __builtin_trap();                                                                                          \
        }                                                                                                              \
    } while (0)

static const char *const methods[] = {"GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS", "PATCH"};
#define METHODS (sizeof(methods) / sizeof(methods[0]))

/* The query parameters the edge reads (edge_api_events.c, edge_http.c), with the
 * buffer sizes of their callers and a tight one to reach the "no room" path. */
static const struct {
    const char *name;
    size_t out_len;
} params[] = {{"q", 201}, {"status", 16}, {"limit", 8}, {"cursor", 257}, {"access_token", 2049}, {"q", 2}};
#define PARAMS (sizeof(params) / sizeof(params[0]))

static bool route_has_event_id(enum edge_route route)
{
    switch (route) {
    case EDGE_ROUTE_EVENT_GET:
    case EDGE_ROUTE_EVENT_SEATS:
    case EDGE_ROUTE_QUEUE_JOIN:
    case EDGE_ROUTE_QUEUE_STATUS:
    case EDGE_ROUTE_QUEUE_LEAVE:
    case EDGE_ROUTE_QUEUE_WS:
    case EDGE_ROUTE_HOLD_CREATE:
        return true;
    default:
        return false;
    }
}

static bool route_has_reservation_id(enum edge_route route)
{
    return route == EDGE_ROUTE_RESERVATION_RELEASE || route == EDGE_ROUTE_RESERVATION_PAY ||
           route == EDGE_ROUTE_RESERVATION_GET || route == EDGE_ROUTE_RESERVATION_CANCEL;
}

static void check_match(const struct edge_route_match *m, const char *path, size_t path_len)
{
    CHECK(m->route < EDGE_ROUTE_COUNT);
    CHECK(edge_route_name(m->route) != NULL);
    CHECK(!edge_route_needs_admin(m->route) || edge_route_needs_auth(m->route));
    CHECK((m->route == EDGE_ROUTE_METHOD_NOT_ALLOWED) == (m->allow[0] != '\0'));
    if (route_has_event_id(m->route)) {
        size_t len = strnlen(m->event_id, sizeof(m->event_id));
        CHECK(len < sizeof(m->event_id) && edge_id_valid(m->event_id, len));
        uint64_t value = 0;
        CHECK(edge_parse_u64(m->event_id, len, &value) && value == m->event_number);
        char canonical[24];
        snprintf(canonical, sizeof(canonical), "%llu", (unsigned long long)value);
        CHECK(strcmp(canonical, m->event_id) == 0);
    } else {
        CHECK(m->event_id[0] == '\0' && m->event_number == 0);
    }
    if (route_has_reservation_id(m->route)) {
        size_t len = strnlen(m->reservation_id, sizeof(m->reservation_id));
        CHECK(len < sizeof(m->reservation_id) && edge_id_valid(m->reservation_id, len));
    } else {
        CHECK(m->reservation_id[0] == '\0');
    }
    const char *query = memchr(path, '?', path_len);
    size_t bare_len = query ? (size_t)(query - path) : path_len;
    bool under_api = (bare_len >= 5 && memcmp(path, "/api/", 5) == 0) || (bare_len == 4 && memcmp(path, "/api", 4) == 0);
    if (m->route >= EDGE_ROUTE_SIGNUP && m->route <= EDGE_ROUTE_RESERVATION_CANCEL)
        CHECK(bare_len >= 8 && memcmp(path, "/api/v1/", 8) == 0);
    if (m->route == EDGE_ROUTE_NONE)
        CHECK(!under_api);
}

static void check_query(const char *path, size_t path_len)
{
    const char *query = memchr(path, '?', path_len);
    if (query == NULL)
        return;
    size_t query_len = path_len - (size_t)(query - path);
    static char out[4096], wide[4096];
    for (size_t i = 0; i < PARAMS; i++) {
        memset(out, 'x', sizeof(out));
        int found = edge_query_param(query, query_len, params[i].name, out, params[i].out_len);
        CHECK(found >= -1 && found <= 1);
        if (found != 1) {
            CHECK(found != 0 || out[0] == '\0');
            continue;
        }
        size_t len = strnlen(out, params[i].out_len);
        CHECK(len < params[i].out_len);
        CHECK(len <= query_len);
        CHECK(edge_query_param(query, query_len, params[i].name, wide, sizeof(wide)) == 1);
        CHECK(strcmp(out, wide) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    const char *method;
    size_t method_len;
    const uint8_t *rest = data + 1;
    size_t rest_len = size - 1;
    char *method_copy = NULL;
    if (data[0] < METHODS) {
        method = methods[data[0]];
        method_len = strlen(method);
    } else {
        const uint8_t *cut = memchr(rest, 0xff, rest_len);
        method_len = cut ? (size_t)(cut - rest) : rest_len;
        method_copy = malloc(method_len + 1); /* exactly its length: ASan sees any read past it */
        memcpy(method_copy, rest, method_len);
        method = method_copy;
        rest += cut ? method_len + 1 : method_len;
        rest_len -= cut ? method_len + 1 : method_len;
    }
    char *path = malloc(rest_len + 1);
    memcpy(path, rest, rest_len);

    struct edge_route_match first, again;
    enum edge_route route = edge_route_find(method, method_len, path, rest_len, &first);
    CHECK(route == first.route);
    check_match(&first, path, rest_len);
    CHECK(edge_route_find(method, method_len, path, rest_len, &again) == route);
    CHECK(again.event_number == first.event_number && strcmp(again.event_id, first.event_id) == 0 &&
          strcmp(again.reservation_id, first.reservation_id) == 0 && strcmp(again.allow, first.allow) == 0);
    check_query(path, rest_len);

    free(path);
    free(method_copy);
    return 0;
}
