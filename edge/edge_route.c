/* edge_route.c — the route table of API.md and the path and query helpers
 * (edge_route.h).
 *
 * A linear walk over ~25 patterns, comparing segments: cheaper than building a
 * trie for a table this small, and the table reads like API.md. A path that
 * matches some pattern with another method gives 405 with the Allow list. */
#include "edge_route.h"

#include <string.h>

#include "tk_assert.h"

struct route_row {
    const char *method;
    const char *pattern; /* "{event_id}" and "{reservation_id}" capture a segment */
    enum edge_route route;
};

static const struct route_row routes[] = {
    {"POST", "/api/v1/auth/signup", EDGE_ROUTE_SIGNUP},
    {"POST", "/api/v1/auth/login", EDGE_ROUTE_LOGIN},
    {"POST", "/api/v1/auth/refresh", EDGE_ROUTE_REFRESH},
    {"POST", "/api/v1/auth/logout", EDGE_ROUTE_LOGOUT},
    {"GET", "/api/v1/auth/me", EDGE_ROUTE_ME},
    {"GET", "/api/v1/events", EDGE_ROUTE_EVENTS_LIST},
    {"GET", "/api/v1/events/{event_id}", EDGE_ROUTE_EVENT_GET},
    {"GET", "/api/v1/events/{event_id}/seats", EDGE_ROUTE_EVENT_SEATS},
    {"POST", "/api/v1/admin/events", EDGE_ROUTE_ADMIN_EVENT_CREATE},
    {"POST", "/api/v1/events/{event_id}/queue", EDGE_ROUTE_QUEUE_JOIN},
    {"GET", "/api/v1/events/{event_id}/queue", EDGE_ROUTE_QUEUE_STATUS},
    {"DELETE", "/api/v1/events/{event_id}/queue", EDGE_ROUTE_QUEUE_LEAVE},
    {"GET", "/api/v1/events/{event_id}/queue/ws", EDGE_ROUTE_QUEUE_WS},
    {"POST", "/api/v1/events/{event_id}/holds", EDGE_ROUTE_HOLD_CREATE},
    {"DELETE", "/api/v1/reservations/{reservation_id}", EDGE_ROUTE_RESERVATION_RELEASE},
    {"POST", "/api/v1/reservations/{reservation_id}/payment", EDGE_ROUTE_RESERVATION_PAY},
    {"GET", "/api/v1/reservations", EDGE_ROUTE_RESERVATIONS_LIST},
    {"GET", "/api/v1/reservations/{reservation_id}", EDGE_ROUTE_RESERVATION_GET},
    {"POST", "/api/v1/reservations/{reservation_id}/cancel", EDGE_ROUTE_RESERVATION_CANCEL},
    {"GET", "/healthz", EDGE_ROUTE_HEALTHZ},
    {"GET", "/readyz", EDGE_ROUTE_READYZ},
    {"GET", "/metrics", EDGE_ROUTE_METRICS},
    {"GET", "/openapi.json", EDGE_ROUTE_OPENAPI},
};
#define ROUTE_ROWS (sizeof(routes) / sizeof(routes[0]))

static const char *const route_names[EDGE_ROUTE_COUNT] = {
    [EDGE_ROUTE_NONE] = "static",
    [EDGE_ROUTE_SIGNUP] = "auth_signup",
    [EDGE_ROUTE_LOGIN] = "auth_login",
    [EDGE_ROUTE_REFRESH] = "auth_refresh",
    [EDGE_ROUTE_LOGOUT] = "auth_logout",
    [EDGE_ROUTE_ME] = "auth_me",
    [EDGE_ROUTE_EVENTS_LIST] = "events_list",
    [EDGE_ROUTE_EVENT_GET] = "event_get",
    [EDGE_ROUTE_EVENT_SEATS] = "event_seats",
    [EDGE_ROUTE_ADMIN_EVENT_CREATE] = "admin_event_create",
    [EDGE_ROUTE_QUEUE_JOIN] = "queue_join",
    [EDGE_ROUTE_QUEUE_STATUS] = "queue_status",
    [EDGE_ROUTE_QUEUE_LEAVE] = "queue_leave",
    [EDGE_ROUTE_QUEUE_WS] = "queue_ws",
    [EDGE_ROUTE_HOLD_CREATE] = "hold_create",
    [EDGE_ROUTE_RESERVATION_RELEASE] = "reservation_release",
    [EDGE_ROUTE_RESERVATION_PAY] = "reservation_pay",
    [EDGE_ROUTE_RESERVATIONS_LIST] = "reservations_list",
    [EDGE_ROUTE_RESERVATION_GET] = "reservation_get",
    [EDGE_ROUTE_RESERVATION_CANCEL] = "reservation_cancel",
    [EDGE_ROUTE_HEALTHZ] = "healthz",
    [EDGE_ROUTE_READYZ] = "readyz",
    [EDGE_ROUTE_METRICS] = "metrics",
    [EDGE_ROUTE_OPENAPI] = "openapi",
    [EDGE_ROUTE_NOT_FOUND] = "not_found",
    [EDGE_ROUTE_METHOD_NOT_ALLOWED] = "method_not_allowed",
};

const char *edge_route_name(enum edge_route route)
{
    TK_ASSERT((unsigned)route < EDGE_ROUTE_COUNT);
    TK_ASSERT(route_names[route] != NULL);
    return route_names[route];
}

bool edge_route_needs_auth(enum edge_route route)
{
    switch (route) {
    case EDGE_ROUTE_ME:
    case EDGE_ROUTE_ADMIN_EVENT_CREATE:
    case EDGE_ROUTE_QUEUE_JOIN:
    case EDGE_ROUTE_QUEUE_STATUS:
    case EDGE_ROUTE_QUEUE_LEAVE:
    case EDGE_ROUTE_QUEUE_WS:
    case EDGE_ROUTE_HOLD_CREATE:
    case EDGE_ROUTE_RESERVATION_RELEASE:
    case EDGE_ROUTE_RESERVATION_PAY:
    case EDGE_ROUTE_RESERVATIONS_LIST:
    case EDGE_ROUTE_RESERVATION_GET:
    case EDGE_ROUTE_RESERVATION_CANCEL:
        return true;
    default:
        return false; /* logout checks a token only when no refresh token is given */
    }
}

bool edge_route_needs_admin(enum edge_route route)
{
    return route == EDGE_ROUTE_ADMIN_EVENT_CREATE;
}

bool edge_id_valid(const char *id, size_t len)
{
    if (len == 0 || len >= EDGE_ID_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '~' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool edge_parse_u64(const char *text, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20 || text[0] == '0')
        return false;
    uint64_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10u)
            return false;
        value = value * 10u + digit;
    }
    TK_ASSERT(value > 0);
    *out = value;
    return true;
}

/* Copies segment [seg, seg+len) into a capture when it is a valid id. */
static bool capture(const char *name, const char *seg, size_t len, struct edge_route_match *m)
{
    if (!edge_id_valid(seg, len))
        return false;
    if (strcmp(name, "{event_id}") == 0) {
        if (!edge_parse_u64(seg, len, &m->event_number))
            return false;
        memcpy(m->event_id, seg, len);
        m->event_id[len] = '\0';
        return true;
    }
    TK_ASSERT(strcmp(name, "{reservation_id}") == 0);
    memcpy(m->reservation_id, seg, len);
    m->reservation_id[len] = '\0';
    return true;
}

/* Does path (no query) match pattern? Fills captures into m when it does. */
static bool pattern_matches(const char *pattern, const char *path, size_t path_len, struct edge_route_match *m)
{
    size_t p = 0, i = 0, plen = strlen(pattern);
    while (p < plen && i < path_len) {
        if (pattern[p] != '/' || path[i] != '/')
            return false;
        p++, i++;
        size_t pend = p, iend = i;
        while (pend < plen && pattern[pend] != '/')
            pend++;
        while (iend < path_len && path[iend] != '/')
            iend++;
        if (pattern[p] == '{') {
            char name[24];
            size_t n = pend - p;
            TK_ASSERT(n < sizeof(name));
            memcpy(name, pattern + p, n);
            name[n] = '\0';
            if (!capture(name, path + i, iend - i, m))
                return false;
        } else if (pend - p != iend - i || memcmp(pattern + p, path + i, pend - p) != 0) {
            return false;
        }
        p = pend, i = iend;
    }
    return p == plen && i == path_len;
}

static void allow_add(struct edge_route_match *m, const char *method)
{
    size_t used = strlen(m->allow);
    if (strstr(m->allow, method) != NULL)
        return;
    size_t need = strlen(method) + (used ? 2 : 0);
    TK_ASSERT(used + need < sizeof(m->allow));
    if (used)
        memcpy(m->allow + used, ", ", 2), used += 2;
    memcpy(m->allow + used, method, strlen(method) + 1);
}

enum edge_route edge_route_find(const char *method, size_t method_len, const char *path, size_t path_len,
                                struct edge_route_match *match)
{
    TK_ASSERT(method != NULL && path != NULL && match != NULL);
    memset(match, 0, sizeof(*match));
    const char *query = memchr(path, '?', path_len);
    if (query != NULL)
        path_len = (size_t)(query - path);
    bool path_known = false;
    for (size_t r = 0; r < ROUTE_ROWS; r++) {
        struct edge_route_match attempt;
        memset(&attempt, 0, sizeof(attempt));
        if (!pattern_matches(routes[r].pattern, path, path_len, &attempt))
            continue;
        bool same_method = strlen(routes[r].method) == method_len && memcmp(routes[r].method, method, method_len) == 0;
        if (same_method) {
            *match = attempt;
            match->route = routes[r].route;
            return match->route;
        }
        path_known = true;
        allow_add(match, routes[r].method);
    }
    if (path_known)
        match->route = EDGE_ROUTE_METHOD_NOT_ALLOWED;
    else if (path_len >= 5 && memcmp(path, "/api/", 5) == 0)
        match->route = EDGE_ROUTE_NOT_FOUND;
    else if (path_len == 4 && memcmp(path, "/api", 4) == 0)
        match->route = EDGE_ROUTE_NOT_FOUND;
    else
        match->route = EDGE_ROUTE_NONE;
    return match->route;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes [s, s+len) into out; false on bad %XX, a NUL byte or no room. */
static bool query_decode(const char *s, size_t len, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return false;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= out_len)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

int edge_query_param(const char *query, size_t query_len, const char *name, char *out, size_t out_len)
{
    TK_ASSERT(name != NULL && out != NULL && out_len > 0);
    out[0] = '\0';
    size_t name_len = strlen(name);
    size_t i = 0;
    if (query_len > 0 && query[0] == '?')
        i = 1;
    while (i < query_len) {
        size_t end = i;
        while (end < query_len && query[end] != '&')
            end++;
        const char *eq = memchr(query + i, '=', end - i);
        size_t key_len = eq ? (size_t)(eq - (query + i)) : end - i;
        if (key_len == name_len && memcmp(query + i, name, name_len) == 0) {
            const char *value = eq ? eq + 1 : query + end;
            size_t value_len = eq ? (size_t)(query + end - value) : 0;
            return query_decode(value, value_len, out, out_len) ? 1 : -1;
        }
        i = end + 1;
    }
    return 0;
}
