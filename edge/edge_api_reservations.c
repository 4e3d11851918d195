/* edge_api_reservations.c — holds, reservations, payment and cancellation.
 *
 * Every call names the user from the verified access token, so reservation-svc
 * answers only for the owner: another user's reservation is "not found" (404),
 * never a 403 that would confirm it exists. Holds and payments need an
 * Idempotency-Key (a retry never holds or charges twice). */
#include <stdio.h>
#include <string.h>

#include "edge.h"
#include "tiketi/v1/reservation.pb-c.h"
#include "tk_assert.h"

#define SECTION_BYTES_MAX 31u
#define CARD_TOKEN_BYTES_MAX 255u

static json_t *reservation_json(const Tiketi__V1__Reservation *reservation)
{
    json_t *seats = json_array();
    for (size_t i = 0; i < reservation->n_seat_ids; i++)
        json_array_append_new(seats, json_string(reservation->seat_ids[i]));
    json_t *body = json_pack("{s:s, s:s, s:o, s:s, s:I, s:s}", "reservation_id", reservation->reservation_id,
                             "event_id", reservation->event_id, "seat_ids", seats, "status", reservation->status,
                             "amount", (json_int_t)reservation->amount_cents, "created_at", reservation->created_at);
    if (body != NULL && reservation->expires_at[0] != '\0')
        json_object_set_new(body, "expires_at", json_string(reservation->expires_at));
    if (body != NULL && reservation->payment_id[0] != '\0')
        json_object_set_new(body, "payment_id", json_string(reservation->payment_id));
    return body;
}

/* A header of visible ASCII, 1..max_len bytes, into out. 1 ok, 0 absent, -1 bad. */
static int token_header(struct edge_request *r, const char *name, char *out, size_t out_len)
{
    size_t len;
    const char *value = edge_header(r, name, &len);
    if (value == NULL)
        return 0;
    if (len == 0 || len >= out_len)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (value[i] < 0x21 || value[i] > 0x7e)
            return -1;
    memcpy(out, value, len);
    out[len] = '\0';
    return 1;
}

static bool idempotency_key(struct edge_request *r, char *out, size_t out_len)
{
    if (token_header(r, "idempotency-key", out, out_len) == 1)
        return true;
    edge_send_problem(r, 400, "an Idempotency-Key header of 1 to 255 visible ASCII characters is required");
    return false;
}

static void on_reservation(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    int status = (int)(intptr_t)call->data;
    const Tiketi__V1__Reservation *reservation = (const void *)call->reply;
    if (status == 201) {
        char location[128];
        snprintf(location, sizeof(location), "/api/v1/reservations/%s", reservation->reservation_id);
        edge_add_header(r, "location", location);
    }
    edge_send_json(r, status, reservation_json(reservation));
}

static void on_empty(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    edge_send_empty(r, 204);
}

/* seat_ids (strings) into ids; false: answered 400. */
static bool seat_ids_from_json(struct edge_request *r, const json_t *array, char **ids, size_t *count)
{
    size_t n = json_array_size(array);
    if (!json_is_array(array) || n == 0 || n > EDGE_HOLD_SEATS_MAX) {
        char detail[80];
        snprintf(detail, sizeof(detail), "'seat_ids' must be an array of 1 to %u seat ids", EDGE_HOLD_SEATS_MAX);
        edge_send_problem(r, 400, detail);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *id = json_array_get(array, i);
        if (!json_is_string(id) || !edge_id_valid(json_string_value(id), json_string_length(id))) {
            edge_send_problem(r, 400, "every seat id must be a string (as the seat map gives it)");
            return false;
        }
        ids[i] = (char *)json_string_value(id);
    }
    *count = n;
    return true;
}

void edge_api_hold_create(struct edge_request *r)
{
    char key[EDGE_IDEMPOTENCY_KEY_BYTES], admission[EDGE_ADMISSION_TOKEN_BYTES];
    if (!edge_require_body(r) || !idempotency_key(r, key, sizeof(key)))
        return;
    int has_admission = token_header(r, "x-admission-token", admission, sizeof(admission));
    if (has_admission < 0) {
        edge_send_problem(r, 400, "the X-Admission-Token header is malformed");
        return;
    }
    Tiketi__V1__CreateHoldRequest request = TIKETI__V1__CREATE_HOLD_REQUEST__INIT;
    char *ids[EDGE_HOLD_SEATS_MAX];
    const json_t *seat_ids = json_object_get(r->body, "seat_ids");
    if (seat_ids != NULL && json_is_null(seat_ids))
        seat_ids = NULL;
    uint64_t count = 0;
    int has_count = edge_json_uint(r->body, "count", 1, EDGE_HOLD_SEATS_MAX, &count);
    if ((seat_ids != NULL) == (has_count != 0)) {
        edge_send_problem(r, 400, "give either 'seat_ids' (an array) or 'count' (with an optional 'section'), "
                                  "not both");
        return;
    }
    if (seat_ids != NULL && !seat_ids_from_json(r, seat_ids, ids, &request.n_seat_ids))
        return;
    if (has_count < 0) {
        char detail[64];
        snprintf(detail, sizeof(detail), "'count' must be an integer from 1 to %u", EDGE_HOLD_SEATS_MAX);
        edge_send_problem(r, 400, detail);
        return;
    }
    const char *section = NULL;
    if (edge_json_string(r->body, "section", SECTION_BYTES_MAX, &section) < 0) {
        edge_send_problem(r, 400, "'section' must be a section name");
        return;
    }
    request.seat_ids = ids;
    request.count = (uint32_t)count;
    request.section = section != NULL ? (char *)section : "";
    request.event_id = r->match.event_id;
    request.user_id = r->claims.sub;
    request.admission_token = has_admission == 1 ? admission : "";
    request.idempotency_key = key;
    edge_call_start(r, EDGE_DEP_RESERVATION, EDGE_M_CREATE_HOLD, &request.base, &tiketi__v1__reservation__descriptor,
                    0, on_reservation, (void *)(intptr_t)201);
}

static void reservation_call(struct edge_request *r, const char *method, const ProtobufCMessageDescriptor *type,
                             void (*done)(struct edge_call *), int status)
{
    TK_ASSERT(r->authenticated && r->match.reservation_id[0] != '\0');
    Tiketi__V1__ReservationRef request = TIKETI__V1__RESERVATION_REF__INIT;
    request.reservation_id = r->match.reservation_id;
    request.user_id = r->claims.sub;
    edge_call_start(r, EDGE_DEP_RESERVATION, method, &request.base, type, 0, done, (void *)(intptr_t)status);
}

void edge_api_reservation_release(struct edge_request *r)
{
    reservation_call(r, EDGE_M_RELEASE_HOLD, &tiketi__v1__empty__descriptor, on_empty, 204);
}

void edge_api_reservation_get(struct edge_request *r)
{
    reservation_call(r, EDGE_M_GET_RESERVATION, &tiketi__v1__reservation__descriptor, on_reservation, 200);
}

static void on_cancelled(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    json_t *body = reservation_json((const void *)call->reply);
    if (body != NULL)
        json_object_set_new(body, "status", json_string("cancelled"));
    edge_send_json(r, 200, body);
}

void edge_api_reservation_cancel(struct edge_request *r)
{
    reservation_call(r, EDGE_M_CANCEL_RESERVATION, &tiketi__v1__reservation__descriptor, on_cancelled, 200);
}

static void on_paid(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    const Tiketi__V1__PayReply *reply = (const void *)call->reply;
    edge_send_json(r, 200, json_pack("{s:s, s:s}", "status", reply->status, "payment_id", reply->payment_id));
}

void edge_api_reservation_pay(struct edge_request *r)
{
    char key[EDGE_IDEMPOTENCY_KEY_BYTES];
    if (!edge_require_body(r) || !idempotency_key(r, key, sizeof(key)))
        return;
    const char *method = NULL, *card = NULL;
    if (edge_json_string(r->body, "method", 16, &method) != 1 || strcmp(method, "card") != 0) {
        edge_send_problem(r, 400, "'method' must be \"card\"");
        return;
    }
    if (edge_json_string(r->body, "card_token", CARD_TOKEN_BYTES_MAX, &card) != 1) {
        edge_send_problem(r, 400, "'card_token' must be a non-empty string");
        return;
    }
    Tiketi__V1__PayRequest request = TIKETI__V1__PAY_REQUEST__INIT;
    request.reservation_id = r->match.reservation_id;
    request.user_id = r->claims.sub;
    request.method = (char *)method;
    request.card_token = (char *)card;
    request.idempotency_key = key;
    edge_call_start(r, EDGE_DEP_RESERVATION, EDGE_M_PAY, &request.base, &tiketi__v1__pay_reply__descriptor,
                    r->server->config->pay_timeout_ms, on_paid, NULL);
}

static void on_list(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    const Tiketi__V1__ListReservationsReply *reply = (const void *)call->reply;
    json_t *list = json_array();
    for (size_t i = 0; i < reply->n_reservations; i++) {
        json_t *item = reservation_json(reply->reservations[i]);
        if (item == NULL) {
            json_decref(list);
            edge_send_json(r, 200, NULL);
            return;
        }
        json_array_append_new(list, item);
    }
    edge_send_json(r, 200, list);
}

void edge_api_reservations_list(struct edge_request *r)
{
    Tiketi__V1__ListReservationsRequest request = TIKETI__V1__LIST_RESERVATIONS_REQUEST__INIT;
    request.user_id = r->claims.sub;
    edge_call_start(r, EDGE_DEP_RESERVATION, EDGE_M_LIST_RESERVATIONS, &request.base,
                    &tiketi__v1__list_reservations_reply__descriptor, 0, on_list, NULL);
}
