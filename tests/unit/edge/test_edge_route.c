/* test_edge_route.c — tests edge/edge_route.c: API.md's route table, path ids,
 * 404 vs 405 vs static, and query parameters. The source is compiled in. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../edge/edge_route.c"

static enum edge_route find(const char *method, const char *path, struct edge_route_match *m)
{
    return edge_route_find(method, strlen(method), path, strlen(path), m);
}

Test(edge_route, every_route_of_the_contract)
{
    static const struct {
        const char *method, *path;
        enum edge_route route;
    } cases[] = {
        {"POST", "/api/v1/auth/signup", EDGE_ROUTE_SIGNUP},
        {"POST", "/api/v1/auth/login", EDGE_ROUTE_LOGIN},
        {"POST", "/api/v1/auth/refresh", EDGE_ROUTE_REFRESH},
        {"POST", "/api/v1/auth/logout", EDGE_ROUTE_LOGOUT},
        {"GET", "/api/v1/auth/me", EDGE_ROUTE_ME},
        {"GET", "/api/v1/events", EDGE_ROUTE_EVENTS_LIST},
        {"GET", "/api/v1/events?status=on_sale&limit=5", EDGE_ROUTE_EVENTS_LIST},
        {"GET", "/api/v1/events/42", EDGE_ROUTE_EVENT_GET},
        {"GET", "/api/v1/events/42/seats", EDGE_ROUTE_EVENT_SEATS},
        {"POST", "/api/v1/admin/events", EDGE_ROUTE_ADMIN_EVENT_CREATE},
        {"POST", "/api/v1/events/42/queue", EDGE_ROUTE_QUEUE_JOIN},
        {"GET", "/api/v1/events/42/queue", EDGE_ROUTE_QUEUE_STATUS},
        {"DELETE", "/api/v1/events/42/queue", EDGE_ROUTE_QUEUE_LEAVE},
        {"GET", "/api/v1/events/42/queue/ws?access_token=x", EDGE_ROUTE_QUEUE_WS},
        {"POST", "/api/v1/events/42/holds", EDGE_ROUTE_HOLD_CREATE},
        {"DELETE", "/api/v1/reservations/rsv_0a", EDGE_ROUTE_RESERVATION_RELEASE},
        {"POST", "/api/v1/reservations/rsv_0a/payment", EDGE_ROUTE_RESERVATION_PAY},
        {"GET", "/api/v1/reservations", EDGE_ROUTE_RESERVATIONS_LIST},
        {"GET", "/api/v1/reservations/rsv_0a", EDGE_ROUTE_RESERVATION_GET},
        {"POST", "/api/v1/reservations/rsv_0a/cancel", EDGE_ROUTE_RESERVATION_CANCEL},
        {"GET", "/healthz", EDGE_ROUTE_HEALTHZ},
        {"GET", "/readyz", EDGE_ROUTE_READYZ},
        {"GET", "/metrics", EDGE_ROUTE_METRICS},
        {"GET", "/openapi.json", EDGE_ROUTE_OPENAPI},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct edge_route_match m;
        cr_expect_eq(find(cases[i].method, cases[i].path, &m), cases[i].route, "%s %s", cases[i].method, cases[i].path);
        cr_expect_eq(m.route, cases[i].route);
        cr_expect_str_neq(edge_route_name(m.route), "");
    }
}

Test(edge_route, captures_ids)
{
    struct edge_route_match m;
    find("GET", "/api/v1/events/18446744073709551615/seats", &m);
    cr_assert_eq(m.route, EDGE_ROUTE_EVENT_SEATS);
    cr_assert_str_eq(m.event_id, "18446744073709551615");
    cr_assert_eq(m.event_number, UINT64_MAX);
    find("POST", "/api/v1/reservations/rsv_00ff.x~y-z/payment", &m);
    cr_assert_eq(m.route, EDGE_ROUTE_RESERVATION_PAY);
    cr_assert_str_eq(m.reservation_id, "rsv_00ff.x~y-z");
    cr_assert_str_eq(m.event_id, "");
}

Test(edge_route, ids_that_cannot_exist_are_404_not_400)
{
    const char *paths[] = {"/api/v1/events/0",     "/api/v1/events/007",   "/api/v1/events/abc",
                           "/api/v1/events/-1",    "/api/v1/events/1%32",  "/api/v1/events/18446744073709551616",
                           "/api/v1/events/",      "/api/v1/events/1/",    "/api/v1/events//seats",
                           "/api/v1/reservations/a%2Fb", "/api/v1/nope", "/api"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct edge_route_match m;
        cr_expect_eq(find("GET", paths[i], &m), EDGE_ROUTE_NOT_FOUND, "%s", paths[i]);
    }
    char long_id[100] = "/api/v1/reservations/";
    memset(long_id + strlen(long_id), 'a', 65);
    struct edge_route_match m;
    cr_expect_eq(find("GET", long_id, &m), EDGE_ROUTE_NOT_FOUND, "ids are at most 64 characters");
}

Test(edge_route, known_path_with_another_method_is_405_with_allow)
{
    struct edge_route_match m;
    cr_assert_eq(find("PUT", "/api/v1/events", &m), EDGE_ROUTE_METHOD_NOT_ALLOWED);
    cr_assert_str_eq(m.allow, "GET");
    cr_assert_eq(find("PATCH", "/api/v1/events/9/queue", &m), EDGE_ROUTE_METHOD_NOT_ALLOWED);
    cr_assert_str_eq(m.allow, "POST, GET, DELETE");
    cr_assert_eq(find("POST", "/healthz", &m), EDGE_ROUTE_METHOD_NOT_ALLOWED);
    cr_assert_eq(find("get", "/healthz", &m), EDGE_ROUTE_METHOD_NOT_ALLOWED, "methods are case-sensitive");
}

Test(edge_route, everything_else_is_the_static_ui)
{
    const char *paths[] = {"/", "/index.html", "/js/app.js", "/apix", "/healthzz", "/metrics/x"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct edge_route_match m;
        cr_expect_eq(find("GET", paths[i], &m), EDGE_ROUTE_NONE, "%s", paths[i]);
    }
}

Test(edge_route, auth_and_admin_needs)
{
    cr_assert(!edge_route_needs_auth(EDGE_ROUTE_LOGIN));
    cr_assert(!edge_route_needs_auth(EDGE_ROUTE_EVENTS_LIST));
    cr_assert(!edge_route_needs_auth(EDGE_ROUTE_EVENT_SEATS));
    cr_assert(!edge_route_needs_auth(EDGE_ROUTE_LOGOUT), "logout may come with only a refresh token");
    cr_assert(edge_route_needs_auth(EDGE_ROUTE_QUEUE_WS));
    cr_assert(edge_route_needs_auth(EDGE_ROUTE_RESERVATION_GET));
    cr_assert(edge_route_needs_admin(EDGE_ROUTE_ADMIN_EVENT_CREATE));
    cr_assert(edge_route_needs_auth(EDGE_ROUTE_ADMIN_EVENT_CREATE));
    cr_assert(!edge_route_needs_admin(EDGE_ROUTE_HOLD_CREATE));
}

Test(edge_route, parse_u64_is_canonical)
{
    uint64_t v = 0;
    cr_assert(edge_parse_u64("1", 1, &v) && v == 1);
    cr_assert(edge_parse_u64("18446744073709551615", 20, &v) && v == UINT64_MAX);
    cr_assert(!edge_parse_u64("18446744073709551616", 20, &v));
    cr_assert(!edge_parse_u64("0", 1, &v));
    cr_assert(!edge_parse_u64("01", 2, &v));
    cr_assert(!edge_parse_u64("+1", 2, &v));
    cr_assert(!edge_parse_u64(" 1", 2, &v));
    cr_assert(!edge_parse_u64("", 0, &v));
}

Test(edge_route, query_parameters)
{
    char out[32];
    const char *q = "?status=on_sale&q=rock+%26+roll&empty=&flag&limit=5";
    cr_assert_eq(edge_query_param(q, strlen(q), "status", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "on_sale");
    cr_assert_eq(edge_query_param(q, strlen(q), "q", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "rock & roll");
    cr_assert_eq(edge_query_param(q, strlen(q), "empty", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "");
    cr_assert_eq(edge_query_param(q, strlen(q), "flag", out, sizeof(out)), 1);
    cr_assert_eq(edge_query_param(q, strlen(q), "cursor", out, sizeof(out)), 0);
    cr_assert_eq(edge_query_param(q, strlen(q), "stat", out, sizeof(out)), 0, "names match whole");
    const char *bad[] = {"?a=%zz", "?a=%4", "?a=%", "?a=%00", "?a=0123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(edge_query_param(bad[i], strlen(bad[i]), "a", out, sizeof(out)), -1, "%s", bad[i]);
    const char *first = "a=1&a=2";
    cr_assert_eq(edge_query_param(first, strlen(first), "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "1", "the first occurrence wins");
}
