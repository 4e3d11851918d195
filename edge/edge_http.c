/* edge_http.c — the HTTP side: h2o configuration, the dispatcher, the
 * responses, access logs and request ids.
 *
 * One handler on "/" routes every request (edge_route.c): API and operations
 * routes are answered here, anything else falls through to h2o's file handler
 * (the web UI). Before a handler runs, the dispatcher applies, in this order:
 * the per-address rate limit, the route's existence and method, the access
 * token (verified locally with svc_jwt, no call per request), the per-user
 * rate limit and the admin role. Errors are problem+json everywhere, including
 * the ones h2o makes itself (413 body too large, the file handler's 404): a
 * filter rewrites those, and adds X-Request-Id to any response that lacks one.
 * The request id is the client's X-Request-Id when valid, else a new one stored
 * back into the request's headers, so every layer reads the same value. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "edge.h"
#include "rpc_log.h"
#include "rpc_trace.h"
#include "tk_assert.h"

static const edge_handler handlers[EDGE_ROUTE_COUNT] = {
    [EDGE_ROUTE_SIGNUP] = edge_api_signup,
    [EDGE_ROUTE_LOGIN] = edge_api_login,
    [EDGE_ROUTE_REFRESH] = edge_api_refresh,
    [EDGE_ROUTE_LOGOUT] = edge_api_logout,
    [EDGE_ROUTE_ME] = edge_api_me,
    [EDGE_ROUTE_EVENTS_LIST] = edge_api_events_list,
    [EDGE_ROUTE_EVENT_GET] = edge_api_event_get,
    [EDGE_ROUTE_EVENT_SEATS] = edge_api_event_seats,
    [EDGE_ROUTE_ADMIN_EVENT_CREATE] = edge_api_event_create,
    [EDGE_ROUTE_QUEUE_JOIN] = edge_api_queue_join,
    [EDGE_ROUTE_QUEUE_STATUS] = edge_api_queue_status,
    [EDGE_ROUTE_QUEUE_LEAVE] = edge_api_queue_leave,
    [EDGE_ROUTE_QUEUE_WS] = edge_api_queue_ws,
    [EDGE_ROUTE_HOLD_CREATE] = edge_api_hold_create,
    [EDGE_ROUTE_RESERVATION_RELEASE] = edge_api_reservation_release,
    [EDGE_ROUTE_RESERVATION_PAY] = edge_api_reservation_pay,
    [EDGE_ROUTE_RESERVATIONS_LIST] = edge_api_reservations_list,
    [EDGE_ROUTE_RESERVATION_GET] = edge_api_reservation_get,
    [EDGE_ROUTE_RESERVATION_CANCEL] = edge_api_reservation_cancel,
    [EDGE_ROUTE_HEALTHZ] = edge_ops_healthz,
    [EDGE_ROUTE_READYZ] = edge_ops_readyz,
    [EDGE_ROUTE_METRICS] = edge_ops_metrics,
    [EDGE_ROUTE_OPENAPI] = edge_ops_openapi,
};

struct edge_handler_conf {
    h2o_handler_t super;
    struct edge_server *server;
};

struct edge_filter_conf {
    h2o_filter_t super;
    struct edge_server *server;
};

struct edge_logger_conf {
    h2o_logger_t super;
    struct edge_server *server;
};

/* ---- request ids and the request's environment ---- */

h2o_iovec_t edge_request_id(h2o_req_t *req)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (at != -1) {
        h2o_iovec_t value = req->headers.entries[at].value;
        char id[EDGE_REQUEST_ID_BYTES];
        if (value.len < sizeof(id)) {
            memcpy(id, value.base, value.len);
            id[value.len] = '\0';
            if (rpc_trace_request_id_valid(id))
                return value;
        }
    }
    char fresh[EDGE_REQUEST_ID_BYTES];
    rpc_trace_new_request_id(fresh, sizeof(fresh));
    h2o_iovec_t value = h2o_strdup(&req->pool, fresh, strlen(fresh));
    if (at != -1)
        req->headers.entries[at].value = value; /* replace an invalid one: every reader sees the same id */
    else
        h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-request-id"), 0, NULL, value.base, value.len);
    return value;
}

/* Route and user travel in req->env ("name", "value" pairs) to the access log. */
static void env_set(h2o_req_t *req, const char *name, const char *value)
{
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = h2o_iovec_init(name, strlen(name));
    req->env.entries[req->env.size++] = h2o_strdup(&req->pool, value, strlen(value));
}

static h2o_iovec_t env_get(h2o_req_t *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (h2o_memis(req->env.entries[i].base, req->env.entries[i].len, name, len))
            return req->env.entries[i + 1];
    return h2o_iovec_init(NULL, 0);
}

/* ---- responses ---- */

const char *edge_header(struct edge_request *r, const char *name, size_t *len)
{
    ssize_t at = h2o_find_header_by_str(&r->req->headers, name, strlen(name), -1);
    if (at == -1)
        return NULL;
    *len = r->req->headers.entries[at].value.len;
    return r->req->headers.entries[at].value.base;
}

void edge_add_header(struct edge_request *r, const char *name, const char *value)
{
    h2o_req_t *req = r->req;
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL,
                          h2o_strdup(&req->pool, value, SIZE_MAX).base, strlen(value));
}

void edge_send_bytes(struct edge_request *r, int status, const char *content_type, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = r->req;
    TK_ASSERT(req != NULL && status >= 100 && status <= 599);
    req->res.status = status;
    req->res.reason = edge_status_reason(status);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, r->request_id,
                          strlen(r->request_id));
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) == -1)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    bool no_body = status == 204 || status == 304 || h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (status != 204 && status != 304)
        req->res.content_length = body.len;
    h2o_start_response(req, &generator);
    h2o_send(req, no_body ? NULL : &body, no_body ? 0 : 1, H2O_SEND_STATE_FINAL);
}

void edge_send_empty(struct edge_request *r, int status)
{
    edge_send_bytes(r, status, NULL, h2o_iovec_init(NULL, 0));
}

void edge_send_json(struct edge_request *r, int status, json_t *body)
{
    if (body == NULL) { /* json_pack refused a service's value (e.g. a string that is not UTF-8) */
        rpc_log(RPC_LOG_WARN, "", "request %s (%s): a reply could not be encoded as JSON", r->request_id,
                edge_route_name(r->match.route));
        edge_send_problem(r, 502, "a service answered with a value that cannot be sent as JSON");
        return;
    }
    h2o_iovec_t bytes = edge_json_dump(&r->req->pool, body);
    json_decref(body);
    edge_send_bytes(r, status, "application/json", bytes);
}

static json_t *problem_json(const struct edge_problem *problem, const char *detail, const char *request_id)
{
    char type[96];
    snprintf(type, sizeof(type), "urn:tiketi:problem:%s", problem->code);
    const char *text = detail != NULL && detail[0] ? detail : problem->title;
    json_t *body = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", problem->title, "status",
                             (int)problem->status, "detail", text, "code", problem->code);
    if (body == NULL) /* a service's message that is not UTF-8 (or was cut inside a character): the title */
        body = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", problem->title, "status",
                         (int)problem->status, "detail", problem->title, "code", problem->code);
    TK_ASSERT(body != NULL);
    if (request_id != NULL)
        json_object_set_new(body, "request_id", json_string(request_id));
    return body;
}

void edge_send_problem_with(struct edge_request *r, struct edge_problem problem, const char *detail, json_t *extra,
                            uint32_t retry_after_s)
{
    json_t *body = problem_json(&problem, detail, r->request_id);
    if (extra != NULL) {
        json_object_update(body, extra);
        json_decref(extra);
    }
    if (problem.retryable && retry_after_s == 0)
        retry_after_s = 1;
    if (retry_after_s > 0 && (problem.status == 429 || problem.status == 503 || problem.status == 409)) {
        char seconds[16];
        snprintf(seconds, sizeof(seconds), "%u", retry_after_s);
        edge_add_header(r, "retry-after", seconds);
    }
    if (problem.status == 401)
        edge_add_header(r, "www-authenticate", "Bearer realm=\"tiketi\"");
    h2o_iovec_t bytes = edge_json_dump(&r->req->pool, body);
    json_decref(body);
    edge_send_bytes(r, problem.status, "application/problem+json", bytes);
}

void edge_send_problem(struct edge_request *r, int status, const char *detail)
{
    edge_send_problem_with(r, edge_problem_status((uint16_t)status), detail, NULL, 0);
}

void edge_send_rpc_error(struct edge_request *r, const struct rpc_error *error)
{
    struct edge_problem problem = edge_problem_for(error->code, error->name);
    json_t *extra = NULL;
    if (strcmp(problem.code, "seat_unavailable") == 0) {
        json_t *seats = json_array();
        for (uint32_t i = 0; i < error->unavailable_count && i < RPC_ERROR_SEATS_MAX; i++) {
            char id[16];
            snprintf(id, sizeof(id), "%u", error->unavailable[i]);
            json_array_append_new(seats, json_string(id));
        }
        extra = json_pack("{s:o}", "unavailable", seats);
    }
    uint32_t retry_after = problem.status == 429 ? edge_retry_after_from_message(error->message) : 0;
    /* A service's own message is meant for clients; the transport's ("failed to connect to all
     * addresses ...") and internal faults are not: those get the title, and the logs the rest. */
    const char *detail = error->name[0] != '\0' && !problem.internal ? error->message : problem.title;
    if (problem.status >= 500)
        rpc_log(RPC_LOG_WARN, "", "request %s (%s): %s %s: %s", r->request_id, edge_route_name(r->match.route),
                rpc_code_name(error->code), error->name[0] ? error->name : "-", error->message);
    edge_send_problem_with(r, problem, detail, extra, retry_after);
}

/* The q value of one Accept-Encoding entry ("gzip;q=0.5"): 1 when absent. */
static double entry_q(h2o_iovec_t entry)
{
    for (size_t i = 0; i + 2 < entry.len; i++) {
        if (entry.base[i] == ';') {
            size_t j = i + 1;
            while (j < entry.len && entry.base[j] == ' ')
                j++;
            if (j + 1 < entry.len && (entry.base[j] == 'q' || entry.base[j] == 'Q') && entry.base[j + 1] == '=') {
                char number[16];
                size_t n = entry.len - (j + 2) < sizeof(number) - 1 ? entry.len - (j + 2) : sizeof(number) - 1;
                memcpy(number, entry.base + j + 2, n);
                number[n] = '\0';
                return strtod(number, NULL);
            }
        }
    }
    return 1.0;
}

bool edge_accepts_gzip(h2o_req_t *req)
{
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, -1);
    if (at == -1)
        return false;
    h2o_iovec_t value = req->headers.entries[at].value;
    size_t i = 0;
    while (i < value.len) {
        while (i < value.len && (value.base[i] == ' ' || value.base[i] == ','))
            i++;
        size_t start = i;
        while (i < value.len && value.base[i] != ',')
            i++;
        h2o_iovec_t entry = h2o_iovec_init(value.base + start, i - start);
        size_t name_len = 0;
        while (name_len < entry.len && entry.base[name_len] != ';' && entry.base[name_len] != ' ')
            name_len++;
        if (h2o_lcstris(entry.base, name_len, H2O_STRLIT("gzip")))
            return entry_q(entry) > 0.0;
    }
    return false;
}

/* ---- authentication ---- */

bool edge_authenticate(struct edge_request *r, const char *token, size_t token_len)
{
    if (token == NULL) {
        size_t len;
        const char *value = edge_header(r, "authorization", &len);
        if (value == NULL || len < 7 || !h2o_lcstris(value, 7, H2O_STRLIT("bearer ")))
            return false;
        token = value + 7, token_len = len - 7;
        while (token_len > 0 && token[0] == ' ')
            token++, token_len--;
    }
    char text[SVC_JWT_TOKEN_BYTES_MAX + 1];
    if (token_len == 0 || token_len > SVC_JWT_TOKEN_BYTES_MAX)
        return false;
    memcpy(text, token, token_len);
    text[token_len] = '\0';
    const char *reason = "unknown";
    if (svc_jwt_verify(&r->server->jwt, text, (int64_t)(edge_now_ms() / 1000), &r->claims, &reason) != TK_OK) {
        atomic_fetch_add_explicit(&r->server->metrics.jwt_refused, 1, memory_order_relaxed);
        rpc_log(RPC_LOG_DEBUG, "", "request %s: access token refused (%s)", r->request_id, reason);
        return false;
    }
    r->authenticated = true;
    env_set(r->req, "user", r->claims.sub);
    return true;
}

/* ---- the dispatcher ---- */

static void client_address(h2o_req_t *req, char *out, size_t out_len, char *key, size_t key_len)
{
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof(sa));
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&sa);
    snprintf(out, out_len, "unknown");
    snprintf(key, key_len, "ip:unknown");
    if (len == 0)
        return;
    if (sa.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, out, (socklen_t)out_len);
        snprintf(key, key_len, "ip:%s", out);
    } else if (sa.ss_family == AF_INET6) {
        const uint8_t *b = ((struct sockaddr_in6 *)&sa)->sin6_addr.s6_addr;
        inet_ntop(AF_INET6, b, out, (socklen_t)out_len);
        /* one IPv6 client usually owns a whole /64 */
        snprintf(key, key_len, "ip6:%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
    }
}

static bool is_api(enum edge_route route)
{
    return route != EDGE_ROUTE_HEALTHZ && route != EDGE_ROUTE_READYZ && route != EDGE_ROUTE_METRICS &&
           route != EDGE_ROUTE_OPENAPI && route != EDGE_ROUTE_NONE;
}

static bool rate_limit(struct edge_request *r, struct edge_ratelimit *limit, const char *key, _Atomic uint64_t *counter)
{
    uint32_t retry_after = 0;
    if (edge_ratelimit_take(limit, key, strlen(key), edge_monotonic_ms(), &retry_after))
        return true;
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    char detail[96];
    snprintf(detail, sizeof(detail), "too many requests; retry in %u s", retry_after);
    edge_send_problem_with(r, edge_problem_status(429), detail, NULL, retry_after);
    return false;
}

/* The checks every API request passes before its handler; false: answered. */
static bool admit(struct edge_request *r)
{
    struct edge_server *server = r->server;
    char key[16 + SVC_JWT_SUB_BYTES];
    client_address(r->req, r->client_ip, sizeof(r->client_ip), key, sizeof(key));
    enum edge_route route = r->match.route;
    if (is_api(route) && !rate_limit(r, server->rate_ip, key, &server->metrics.rate_limited_ip))
        return false;
    if (route == EDGE_ROUTE_NOT_FOUND) {
        edge_send_problem(r, 404, "no such resource");
        return false;
    }
    if (route == EDGE_ROUTE_METHOD_NOT_ALLOWED) {
        edge_add_header(r, "allow", r->match.allow);
        edge_send_problem(r, 405, "this resource allows only the methods in the Allow header");
        return false;
    }
    if (!edge_route_needs_auth(route))
        return true;
    bool ws_token = false;
    char token[EDGE_QUERY_VALUE_BYTES];
    if (route == EDGE_ROUTE_QUEUE_WS && r->req->query_at != SIZE_MAX) {
        h2o_req_t *req = r->req;
        ws_token = edge_query_param(req->path.base + req->query_at, req->path.len - req->query_at, "access_token",
                                    token, sizeof(token)) == 1;
    }
    if (!edge_authenticate(r, ws_token ? token : NULL, ws_token ? strlen(token) : 0)) {
        edge_send_problem(r, 401, "a valid access token is required (Authorization: Bearer)");
        return false;
    }
    snprintf(key, sizeof(key), "user:%s", r->claims.sub);
    if (!rate_limit(r, server->rate_user, key, &server->metrics.rate_limited_user))
        return false;
    if (edge_route_needs_admin(route) && strcmp(r->claims.role, "admin") != 0) {
        edge_send_problem(r, 403, "this route needs the admin role");
        return false;
    }
    return true;
}

static void on_request_dispose(void *p)
{
    struct edge_request *r = p;
    if (r->pending != NULL)
        r->pending->request = NULL; /* the call completes into nothing */
    if (r->body != NULL)
        json_decref(r->body);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct edge_server *server = ((struct edge_handler_conf *)self)->server;
    struct edge_request *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), on_request_dispose);
    memset(r, 0, sizeof(*r));
    r->req = req;
    r->server = server;
    r->loop = edge_loop_of(req->conn->ctx);
    h2o_iovec_t id = edge_request_id(req);
    TK_ASSERT(id.len < sizeof(r->request_id));
    memcpy(r->request_id, id.base, id.len);
    edge_route_find(req->method.base, req->method.len, req->path.base, req->path.len, &r->match);
    env_set(req, "route", edge_route_name(r->match.route));
    if (r->match.route == EDGE_ROUTE_NONE)
        return edge_static_placeholder(r) ? 0 : -1; /* -1: on to the file handler */
    if (!admit(r))
        return 0;
    TK_ASSERT(handlers[r->match.route] != NULL);
    handlers[r->match.route](r);
    return 0;
}

/* ---- the filter: request id on every response, problem+json for h2o's own errors, cache headers ---- */

struct rewrite_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
};

static void rewrite_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                            h2o_send_state_t state)
{
    (void)bufs, (void)bufcnt;
    struct rewrite_ostream *rewrite = (struct rewrite_ostream *)self;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(&rewrite->super, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(&rewrite->super, req, &rewrite->body, 1, state);
}

static bool is_plain_text_error(h2o_req_t *req)
{
    if (req->res.status < 400)
        return false;
    ssize_t at = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (at == -1)
        return false;
    h2o_iovec_t type = req->res.headers.entries[at].value;
    return type.len >= 10 && memcmp(type.base, "text/plain", 10) == 0;
}

static void rewrite_error(h2o_req_t *req, h2o_ostream_t ***slot, h2o_iovec_t request_id)
{
    char id[EDGE_REQUEST_ID_BYTES];
    snprintf(id, sizeof(id), "%.*s", (int)request_id.len, request_id.base);
    struct edge_problem problem = edge_problem_status((uint16_t)req->res.status);
    const char *detail = problem.status == 413 ? "the request body is larger than this server accepts" : NULL;
    json_t *body = problem_json(&problem, detail, id);
    struct rewrite_ostream *rewrite = (void *)h2o_add_ostream(req, sizeof(*rewrite), *slot);
    rewrite->super.do_send = rewrite_do_send;
    rewrite->body = edge_json_dump(&req->pool, body);
    json_decref(body);
    req->res.content_length = rewrite->body.len;
    ssize_t at = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    req->res.headers.entries[at].value = h2o_iovec_init(H2O_STRLIT("application/problem+json"));
    *slot = &rewrite->super.next;
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (env_get(req, "route").base == NULL) { /* an error h2o sent before the dispatcher (413): name its route */
        struct edge_route_match match;
        edge_route_find(req->input.method.base, req->input.method.len, req->input.path.base, req->input.path.len,
                        &match);
        env_set(req, "route", edge_route_name(match.route));
    }
    h2o_iovec_t id = edge_request_id(req);
    if (h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1) == -1)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, id.base, id.len);
    if (is_plain_text_error(req)) {
        rewrite_error(req, &slot, id);
    } else if ((req->res.status == 200 || req->res.status == 304) &&
               h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) == -1) {
        /* static files: HTML revalidates every time (a new UI shows at once); assets for 5 minutes */
        bool html = req->path_normalized.len == 0 || req->path_normalized.base[req->path_normalized.len - 1] == '/' ||
                    (req->path_normalized.len >= 5 &&
                     memcmp(req->path_normalized.base + req->path_normalized.len - 5, ".html", 5) == 0);
        h2o_iovec_t value =
            html ? h2o_iovec_init(H2O_STRLIT("no-cache")) : h2o_iovec_init(H2O_STRLIT("public, max-age=300"));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, value.base, value.len);
    }
    h2o_setup_next_ostream(req, slot);
}

/* ---- access log and request metrics ---- */

static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    struct edge_server *server = ((struct edge_logger_conf *)self)->server;
    h2o_iovec_t route_name = env_get(req, "route");
    enum edge_route route = EDGE_ROUTE_NONE; /* h2o's own errors have no route: counted with static */
    for (int i = 0; route_name.base != NULL && i < EDGE_ROUTE_COUNT; i++) {
        const char *name = edge_route_name((enum edge_route)i);
        if (h2o_memis(route_name.base, route_name.len, name, strlen(name)))
            route = (enum edge_route)i;
    }
    int status = req->res.status;
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t us = (int64_t)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
                 (now.tv_usec - req->timestamps.request_begin_at.tv_usec);
    if (req->timestamps.request_begin_at.tv_sec == 0 || us < 0)
        us = 0;
    if (status >= 100 && status <= 599)
        atomic_fetch_add_explicit(&server->metrics.requests[route][status / 100 - 1], 1, memory_order_relaxed);
    tk_histogram_record(&server->metrics.latency_ns[route], (uint64_t)us * 1000u);
    if (!server->config->access_log || !rpc_log_enabled(RPC_LOG_INFO))
        return;
    size_t path_len = req->input.path.len;
    const char *q = memchr(req->input.path.base, '?', path_len);
    if (q != NULL)
        path_len = (size_t)(q - req->input.path.base); /* the query may hold an access token: never logged */
    char path[512], method[32], fields[1400], ip[EDGE_CLIENT_IP_BYTES], key[64];
    char raw[512];
    snprintf(raw, sizeof(raw), "%.*s", (int)(path_len < 500 ? path_len : 500), req->input.path.base);
    rpc_json_escape(path, sizeof(path), raw);
    snprintf(raw, sizeof(raw), "%.*s", (int)(req->input.method.len < 16 ? req->input.method.len : 16),
             req->input.method.base);
    rpc_json_escape(method, sizeof(method), raw);
    client_address(req, ip, sizeof(ip), key, sizeof(key));
    h2o_iovec_t id = edge_request_id(req);
    h2o_iovec_t user = env_get(req, "user");
    snprintf(fields, sizeof(fields),
             "\"request_id\":\"%.*s\",\"method\":\"%s\",\"path\":\"%s\",\"route\":\"%s\",\"status\":%d,"
             "\"bytes\":%zu,\"duration_ms\":%.3f,\"client_ip\":\"%s\",\"user_id\":\"%.*s\",\"proto\":\"%s\"",
             (int)id.len, id.base, method, path, edge_route_name(route), status, req->bytes_sent, (double)us / 1000.0,
             ip, (int)user.len, user.base != NULL ? user.base : "",
             req->version >= 0x200 ? "h2" : (req->version == 0x100 ? "http/1.0" : "http/1.1"));
    rpc_log(RPC_LOG_INFO, fields, "access");
}

/* ---- configuration ---- */

static void register_common(struct edge_server *server, h2o_pathconf_t *pathconf)
{
    struct edge_filter_conf *filter = (void *)h2o_create_filter(pathconf, sizeof(*filter));
    filter->super.on_setup_ostream = on_setup_ostream;
    filter->server = server;
    struct edge_logger_conf *logger = (void *)h2o_create_logger(pathconf, sizeof(*logger));
    logger->super.log_access = log_access;
    logger->server = server;
}

void edge_http_register(struct edge_server *server)
{
    const struct edge_config *config = server->config;
    h2o_globalconf_t *h2o = &server->h2o;
    h2o_config_init(h2o);
    h2o->server_name = h2o_iovec_init(H2O_STRLIT("tiketi-edge"));
    h2o->max_request_entity_size = config->body_max_bytes;
    h2o->http1.req_timeout = config->header_timeout_ms;
    h2o->http1.upgrade_to_http2 = 0; /* h2c upgrades are rare and awkward; HTTP/2 comes with TLS (ALPN) */
    h2o->http2.idle_timeout = config->idle_timeout_ms;
    h2o->handshake_timeout = config->header_timeout_ms;
    h2o_hostconf_t *host = h2o_config_register_host(h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *root = h2o_config_register_path(host, "/", 0);
    struct edge_handler_conf *handler = (void *)h2o_create_handler(root, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->server = server;
    if (server->ui_dir[0] != '\0') {
        static const char *index_files[] = {"index.html", NULL};
        h2o_file_register(root, server->ui_dir, index_files, NULL, 0);
    }
    register_common(server, root);
    register_common(server, &host->fallback_path); /* errors h2o sends before any handler (413, 400) */
}
