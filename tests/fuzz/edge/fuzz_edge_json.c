/* fuzz_edge_json.c — libFuzzer target: every request body the edge parses, through
 * the edge's own handlers (edge_api_*.c, edge_json.c), with no server.
 *
 * The handlers are built into this binary as they are; what they call outside
 * the parsing (sending a response, starting a gRPC call, reading a header) is
 * stubbed here, so the target sees exactly what a client could make them do:
 *   - a handler answers exactly once: a 4xx problem, or one gRPC call;
 *   - the call's message is whole: it packs, unpacks and checks (protobuf-c),
 *     every string in it is readable (ASan) and within the bound the edge
 *     promises the service (seat ids, counts, sections, header values);
 *   - nothing crashes, leaks or reads past the body.
 *
 * Input: byte 0 picks the route, byte 1 some flags; then the body, and after a
 * 0xFF byte the Idempotency-Key header, after another the X-Admission-Token (a
 * header is absent when its part is). 0xFF never occurs in valid UTF-8, so a
 * JSON body is never cut short by the split. For the events list the "body" is
 * the query string (q, status, limit, cursor). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge.h"
#include "tiketi/v1/auth.pb-c.h"
#include "tiketi/v1/event.pb-c.h"
#include "tiketi/v1/reservation.pb-c.h"

const char EDGE_M_SIGNUP[] = "SignUp", EDGE_M_LOGIN[] = "Login", EDGE_M_REFRESH[] = "Refresh",
           EDGE_M_LOGOUT[] = "Logout", EDGE_M_ME[] = "Me", EDGE_M_LIST_EVENTS[] = "ListEvents",
           EDGE_M_GET_EVENT[] = "GetEvent", EDGE_M_GET_SEAT_MAP[] = "GetSeatMap",
           EDGE_M_CREATE_EVENT[] = "CreateEvent", EDGE_M_JOIN[] = "Join", EDGE_M_STATUS[] = "Status",
           EDGE_M_LEAVE[] = "Leave", EDGE_M_HEARTBEAT[] = "Heartbeat", EDGE_M_CREATE_HOLD[] = "CreateHold",
           EDGE_M_RELEASE_HOLD[] = "ReleaseHold", EDGE_M_PAY[] = "Pay", EDGE_M_GET_RESERVATION[] = "GetReservation",
           EDGE_M_LIST_RESERVATIONS[] = "ListReservations", EDGE_M_CANCEL_RESERVATION[] = "CancelReservation",
           EDGE_M_GET_AVAILABILITY[] = "GetAvailability", EDGE_M_HEALTH_CHECK[] = "Check";

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_edge_json: %s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
            __builtin_trap();                                                                                          \
        }                                                                                                              \
    } while (0)

/* What the handler under test did. */
static struct {
    int answers;     /* problems + calls: exactly 1 */
    int status;      /* the problem's status, 0 for a call */
    const char *method;
    bool authenticate_ok;
    const char *idempotency_key, *admission_token; /* NULL: header absent */
    size_t idempotency_key_len, admission_token_len;
} seen;

/* ---- stubs of what the handlers call outside parsing ---- */

void edge_send_problem(struct edge_request *r, int status, const char *detail)
{
    (void)r;
    CHECK(status == 400 || status == 401);
    CHECK(detail != NULL && detail[0] != '\0' && strlen(detail) < 512);
    seen.answers++;
    seen.status = status;
}

void edge_send_problem_with(struct edge_request *r, struct edge_problem problem, const char *detail, json_t *extra,
                            uint32_t retry_after_s)
{
    (void)retry_after_s;
    json_decref(extra);
    edge_send_problem(r, problem.status, detail);
}

void edge_send_json(struct edge_request *r, int status, json_t *body)
{
    (void)r;
    (void)status;
    json_decref(body);
    CHECK(!"a handler answered JSON before its call completed");
}

void edge_send_empty(struct edge_request *r, int status)
{
    (void)r;
    (void)status;
    CHECK(!"a handler answered before its call completed");
}

void edge_send_rpc_error(struct edge_request *r, const struct rpc_error *error)
{
    (void)r;
    (void)error;
    CHECK(!"a completion ran without a call");
}

void edge_add_header(struct edge_request *r, const char *name, const char *value)
{
    (void)r;
    (void)name;
    (void)value;
}

const char *edge_header(struct edge_request *r, const char *name, size_t *len)
{
    (void)r;
    if (strcmp(name, "idempotency-key") == 0 && seen.idempotency_key != NULL) {
        *len = seen.idempotency_key_len;
        return seen.idempotency_key;
    }
    if (strcmp(name, "x-admission-token") == 0 && seen.admission_token != NULL) {
        *len = seen.admission_token_len;
        return seen.admission_token;
    }
    if (strcmp(name, "authorization") == 0 && seen.authenticate_ok) {
        *len = 6;
        return "Bearer";
    }
    return NULL;
}

bool edge_authenticate(struct edge_request *r, const char *token, size_t token_len)
{
    (void)token;
    (void)token_len;
    r->authenticated = seen.authenticate_ok;
    return seen.authenticate_ok;
}

static void check_string(const char *s, size_t min_len, size_t max_len)
{
    CHECK(s != NULL);
    size_t len = strlen(s);
    CHECK(len >= min_len && len <= max_len);
}

static void check_hold(const Tiketi__V1__CreateHoldRequest *m)
{
    CHECK((m->n_seat_ids > 0) != (m->count > 0)); /* one or the other */
    CHECK(m->n_seat_ids <= EDGE_HOLD_SEATS_MAX && m->count <= EDGE_HOLD_SEATS_MAX);
    for (size_t i = 0; i < m->n_seat_ids; i++) {
        check_string(m->seat_ids[i], 1, EDGE_ID_BYTES - 1);
        CHECK(edge_id_valid(m->seat_ids[i], strlen(m->seat_ids[i])));
    }
    check_string(m->section, 0, 31);
    check_string(m->idempotency_key, 1, EDGE_IDEMPOTENCY_KEY_BYTES - 1);
    check_string(m->admission_token, 0, EDGE_ADMISSION_TOKEN_BYTES - 1);
    for (const char *c = m->idempotency_key; *c; c++)
        CHECK(*c >= 0x21 && *c <= 0x7e);
}

static void check_event(const Tiketi__V1__CreateEventCatalogRequest *m)
{
    check_string(m->name, 1, 200);
    check_string(m->venue, 1, 200);
    check_string(m->starts_at, 1, 64);
    check_string(m->sale_opens_at, 1, 64);
    CHECK(m->n_sections >= 1 && m->n_sections <= EDGE_EVENT_SECTIONS_MAX);
    for (size_t i = 0; i < m->n_sections; i++) {
        check_string(m->sections[i]->name, 1, 31);
        CHECK(m->sections[i]->rows >= 1 && m->sections[i]->seats_per_row >= 1);
    }
    CHECK(m->queue != NULL);
}

/* The message as it would go on the wire, and back: every pointer in it is live. */
static void check_wire(const ProtobufCMessage *message)
{
    size_t size = protobuf_c_message_get_packed_size(message);
    uint8_t *wire = malloc(size + 1);
    CHECK(wire != NULL);
    CHECK(protobuf_c_message_pack(message, wire) == size);
    ProtobufCMessage *back = protobuf_c_message_unpack(message->descriptor, NULL, size, wire);
    CHECK(back != NULL && protobuf_c_message_check(back));
    protobuf_c_message_free_unpacked(back, NULL);
    free(wire);
}

void edge_call_start(struct edge_request *r, enum edge_dependency dependency, const char *method,
                     const ProtobufCMessage *message, const ProtobufCMessageDescriptor *reply_type, uint32_t timeout_ms,
                     void (*done)(struct edge_call *), void *data)
{
    (void)r;
    (void)dependency;
    (void)reply_type;
    (void)timeout_ms;
    (void)data;
    CHECK(done != NULL && protobuf_c_message_check(message));
    check_wire(message);
    if (method == EDGE_M_SIGNUP) {
        const Tiketi__V1__SignUpRequest *m = (const void *)message;
        check_string(m->email, 1, 254);
        check_string(m->password, 1, 128);
        check_string(m->name, 1, 200);
    } else if (method == EDGE_M_LOGIN) {
        const Tiketi__V1__LoginRequest *m = (const void *)message;
        check_string(m->email, 1, 254);
        check_string(m->password, 1, 128);
    } else if (method == EDGE_M_REFRESH) {
        check_string(((const Tiketi__V1__RefreshRequest *)message)->refresh_token, 1, 256);
    } else if (method == EDGE_M_CREATE_HOLD) {
        check_hold((const void *)message);
    } else if (method == EDGE_M_CREATE_EVENT) {
        check_event((const void *)message);
    } else if (method == EDGE_M_PAY) {
        const Tiketi__V1__PayRequest *m = (const void *)message;
        CHECK(strcmp(m->method, "card") == 0);
        check_string(m->card_token, 1, 255);
        check_string(m->idempotency_key, 1, EDGE_IDEMPOTENCY_KEY_BYTES - 1);
    } else if (method == EDGE_M_LIST_EVENTS) {
        const Tiketi__V1__ListEventsRequest *m = (const void *)message;
        CHECK(m->limit <= 100);
        check_string(m->q, 0, 200);
        check_string(m->cursor, 0, 256);
    }
    seen.answers++;
    seen.status = 0;
    seen.method = method;
}

/* ---- the target ---- */

static const struct {
    edge_handler handler;
    bool needs_token;
} routes[] = {
    {edge_api_signup, false},     {edge_api_login, false},       {edge_api_refresh, false},
    {edge_api_logout, false},     {edge_api_event_create, true}, {edge_api_hold_create, true},
    {edge_api_reservation_pay, true}, {edge_api_events_list, false},
};
#define ROUTES (sizeof(routes) / sizeof(routes[0]))

/* The next part of data up to a 0xFF byte (or the end); NULL when there is none. */
static const char *next_part(const uint8_t **data, size_t *size, size_t *len)
{
    if (*data == NULL)
        return NULL;
    const uint8_t *start = *data, *cut = memchr(start, 0xff, *size);
    *len = cut ? (size_t)(cut - start) : *size;
    if (cut != NULL) {
        *size -= *len + 1;
        *data = cut + 1;
    } else {
        *data = NULL;
    }
    return (const char *)start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 70000)
        return 0;
    uint32_t route = data[0] % ROUTES;
    uint8_t flags = data[1];
    data += 2;
    size -= 2;
    memset(&seen, 0, sizeof(seen));
    seen.authenticate_ok = flags & 1;
    size_t body_len = 0;
    const uint8_t *rest = data;
    const char *body = next_part(&rest, &size, &body_len);
    /* Copies of exactly their length, so ASan sees any read past them. */
    char *body_copy = malloc(body_len + 1), *key_copy = NULL, *admission_copy = NULL;
    memcpy(body_copy, body, body_len);
    size_t len;
    const char *key = next_part(&rest, &size, &len);
    if (key != NULL) {
        key_copy = malloc(len + 1);
        memcpy(key_copy, key, len);
        seen.idempotency_key = key_copy;
        seen.idempotency_key_len = len;
    }
    const char *admission = next_part(&rest, &size, &len);
    if (admission != NULL) {
        admission_copy = malloc(len + 1);
        memcpy(admission_copy, admission, len);
        seen.admission_token = admission_copy;
        seen.admission_token_len = len;
    }

    static struct edge_config config = {.rpc_timeout_ms = 5000, .pay_timeout_ms = 30000};
    static struct edge_server server = {.config = &config};
    h2o_req_t *req = calloc(1, sizeof(*req));
    struct edge_request r = {.req = req, .server = &server};
    if (routes[route].handler == edge_api_events_list) {
        /* path "/api/v1/events?" + query */
        char *path = malloc(body_len + 16);
        memcpy(path, "/api/v1/events?", 15);
        memcpy(path + 15, body_copy, body_len);
        req->path = h2o_iovec_init(path, body_len + 15);
        req->query_at = 14;
    } else {
        req->entity = h2o_iovec_init(body_len ? body_copy : NULL, body_len);
        req->query_at = SIZE_MAX;
    }
    if (routes[route].needs_token) {
        r.authenticated = true;
        snprintf(r.claims.sub, sizeof(r.claims.sub), "42");
        snprintf(r.claims.role, sizeof(r.claims.role), "admin");
    }
    snprintf(r.match.event_id, sizeof(r.match.event_id), "7");
    r.match.event_number = 7;
    snprintf(r.match.reservation_id, sizeof(r.match.reservation_id), "rsv_0000000000000007000000000100002a");

    routes[route].handler(&r);
    CHECK(seen.answers == 1); /* one problem or one call, never none or two */
    if (getenv("FUZZ_VERBOSE") != NULL) /* to see what a seed reaches */
        fprintf(stderr, "route %u: %s\n", route, seen.method != NULL ? seen.method : seen.status == 401 ? "401" : "400");

    if (routes[route].handler == edge_api_events_list)
        free((void *)req->path.base);
    json_decref(r.body); /* freed with the request in the edge */
    free(req);
    free(body_copy);
    free(key_copy);
    free(admission_copy);
    return 0;
}
