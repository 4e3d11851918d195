/* edge_api_events.c — /api/v1/events (list, detail) and /api/v1/admin/events.
 *
 * Prices and amounts are integers in cents, as the services keep them (no
 * floating point for money). The seat map route is in edge_seatmap.c. */
#include <stdio.h>
#include <string.h>

#include "edge.h"
#include "tiketi/v1/event.pb-c.h"
#include "tk_assert.h"

#define TEXT_BYTES_MAX 200u
#define TIME_BYTES_MAX 64u
#define SECTION_NAME_BYTES_MAX 31u
#define CURSOR_BYTES_MAX 256u

static json_t *edge_event_summary_json(const Tiketi__V1__EventSummary *event)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "event_id", event->event_id, "name", event->name,
                     "venue", event->venue, "starts_at", event->starts_at, "sale_opens_at", event->sale_opens_at,
                     "status", event->status, "capacity", (json_int_t)event->capacity, "available",
                     (json_int_t)event->available);
}

static void on_list(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    const Tiketi__V1__ListEventsReply *reply = (const void *)call->reply;
    json_t *events = json_array();
    for (size_t i = 0; i < reply->n_events; i++) {
        json_t *event = edge_event_summary_json(reply->events[i]);
        if (event == NULL) {
            json_decref(events);
            edge_send_json(r, 200, NULL);
            return;
        }
        json_array_append_new(events, event);
    }
    json_t *next = reply->next_cursor[0] ? json_string(reply->next_cursor) : json_null();
    edge_send_json(r, 200, json_pack("{s:o, s:o}", "events", events, "next_cursor", next));
}

/* Query parameter name into out; false when malformed (400 sent). */
static bool query(struct edge_request *r, const char *name, char *out, size_t out_len)
{
    h2o_req_t *req = r->req;
    out[0] = '\0';
    if (req->query_at == SIZE_MAX)
        return true;
    if (edge_query_param(req->path.base + req->query_at, req->path.len - req->query_at, name, out, out_len) >= 0)
        return true;
    char detail[96];
    snprintf(detail, sizeof(detail), "query parameter '%s' is malformed or longer than %zu bytes", name,
             out_len - 1);
    edge_send_problem(r, 400, detail);
    return false;
}

void edge_api_events_list(struct edge_request *r)
{
    char status[32], q[TEXT_BYTES_MAX + 1], limit_text[16], cursor[CURSOR_BYTES_MAX + 1];
    if (!query(r, "status", status, sizeof(status)) || !query(r, "q", q, sizeof(q)) ||
        !query(r, "limit", limit_text, sizeof(limit_text)) || !query(r, "cursor", cursor, sizeof(cursor)))
        return;
    uint64_t limit = 0;
    if (limit_text[0] != '\0' && (!edge_parse_u64(limit_text, strlen(limit_text), &limit) || limit > 100)) {
        edge_send_problem(r, 400, "'limit' must be an integer from 1 to 100");
        return;
    }
    Tiketi__V1__ListEventsRequest request = TIKETI__V1__LIST_EVENTS_REQUEST__INIT;
    request.status = status;
    request.q = q;
    request.limit = (uint32_t)limit;
    request.cursor = cursor;
    edge_call_start(r, EDGE_DEP_EVENT, EDGE_M_LIST_EVENTS, &request.base, &tiketi__v1__list_events_reply__descriptor,
                    0, on_list, NULL);
}

static void on_event(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    const Tiketi__V1__EventDetail *detail = (const void *)call->reply;
    if (detail->event == NULL) {
        edge_send_problem(r, 502, "event-svc answered without the event");
        return;
    }
    json_t *body = edge_event_summary_json(detail->event);
    json_t *sections = json_array();
    for (size_t i = 0; body != NULL && i < detail->n_sections; i++) {
        const Tiketi__V1__SectionSpec *s = detail->sections[i];
        json_array_append_new(sections, json_pack("{s:s, s:I, s:I, s:I}", "name", s->name, "price",
                                                  (json_int_t)s->price_cents, "rows", (json_int_t)s->rows,
                                                  "seats_per_row", (json_int_t)s->seats_per_row));
    }
    const Tiketi__V1__QueueSpec *queue = detail->queue;
    json_t *queue_json = json_pack("{s:b, s:I, s:I}", "enabled", queue != NULL && queue->enabled, "admit_per_s",
                                   (json_int_t)(queue ? queue->admit_per_s : 0), "max_active",
                                   (json_int_t)(queue ? queue->max_active : 0));
    if (body != NULL) {
        json_object_set_new(body, "sections", sections);
        json_object_set_new(body, "queue", queue_json);
        json_object_set_new(body, "hold_ttl_s", json_integer(detail->hold_ttl_s));
        json_object_set_new(body, "max_seats_per_user", json_integer(detail->max_seats_per_user));
    } else {
        json_decref(sections);
        json_decref(queue_json);
    }
    edge_send_json(r, 200, body);
}

void edge_api_event_get(struct edge_request *r)
{
    Tiketi__V1__GetEventRequest request = TIKETI__V1__GET_EVENT_REQUEST__INIT;
    request.event_id = r->match.event_id;
    edge_call_start(r, EDGE_DEP_EVENT, EDGE_M_GET_EVENT, &request.base, &tiketi__v1__event_detail__descriptor, 0,
                    on_event, NULL);
}

/* ---- create (admin) ---- */

static bool bad_field(struct edge_request *r, const char *field, const char *what)
{
    char detail[160];
    snprintf(detail, sizeof(detail), "'%s' must be %s", field, what);
    edge_send_problem(r, 400, detail);
    return false;
}

static bool section_from_json(struct edge_request *r, const json_t *item, size_t index, Tiketi__V1__SectionSpec *out)
{
    char field[48];
    const char *name = NULL;
    uint64_t rows = 0, per_row = 0, price = 0;
    snprintf(field, sizeof(field), "sections[%zu]", index);
    if (!json_is_object(item))
        return bad_field(r, field, "an object {name, rows, seats_per_row, price}");
    if (edge_json_string(item, "name", SECTION_NAME_BYTES_MAX, &name) != 1)
        return bad_field(r, strcat(field, ".name"), "a string of 1 to 31 bytes");
    if (edge_json_uint(item, "rows", 1, UINT32_MAX, &rows) != 1)
        return bad_field(r, strcat(field, ".rows"), "a positive integer");
    if (edge_json_uint(item, "seats_per_row", 1, UINT32_MAX, &per_row) != 1)
        return bad_field(r, strcat(field, ".seats_per_row"), "a positive integer");
    if (edge_json_uint(item, "price", 0, UINT32_MAX, &price) != 1)
        return bad_field(r, strcat(field, ".price"), "an integer number of cents, 0 or more");
    tiketi__v1__section_spec__init(out);
    out->name = (char *)name;
    out->rows = (uint32_t)rows;
    out->seats_per_row = (uint32_t)per_row;
    out->price_cents = (uint32_t)price;
    return true;
}

static bool queue_from_json(struct edge_request *r, Tiketi__V1__QueueSpec *out)
{
    tiketi__v1__queue_spec__init(out);
    const json_t *queue = json_object_get(r->body, "queue");
    if (queue == NULL || json_is_null(queue))
        return true;
    if (!json_is_object(queue))
        return bad_field(r, "queue", "an object {enabled, admit_per_s, max_active}");
    const json_t *enabled = json_object_get(queue, "enabled");
    if (enabled != NULL && !json_is_boolean(enabled))
        return bad_field(r, "queue.enabled", "true or false");
    out->enabled = enabled != NULL && json_is_true(enabled);
    uint64_t admit = 0, active = 0;
    if (edge_json_uint(queue, "admit_per_s", 0, UINT32_MAX, &admit) < 0)
        return bad_field(r, "queue.admit_per_s", "a non-negative integer");
    if (edge_json_uint(queue, "max_active", 0, UINT32_MAX, &active) < 0)
        return bad_field(r, "queue.max_active", "a non-negative integer");
    out->admit_per_s = (uint32_t)admit;
    out->max_active = (uint32_t)active;
    return true;
}

static void on_created(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    const Tiketi__V1__EventSummary *event = (const void *)call->reply;
    char location[128];
    snprintf(location, sizeof(location), "/api/v1/events/%s", event->event_id);
    edge_add_header(r, "location", location);
    edge_send_json(r, 201, json_pack("{s:s}", "event_id", event->event_id));
}

void edge_api_event_create(struct edge_request *r)
{
    if (!edge_require_body(r))
        return;
    const json_t *body = r->body;
    Tiketi__V1__CreateEventCatalogRequest request = TIKETI__V1__CREATE_EVENT_CATALOG_REQUEST__INIT;
    const char *name = NULL, *venue = NULL, *starts = NULL, *opens = NULL;
    if (edge_json_string(body, "name", TEXT_BYTES_MAX, &name) != 1)
        return (void)bad_field(r, "name", "a string of 1 to 200 bytes");
    if (edge_json_string(body, "venue", TEXT_BYTES_MAX, &venue) != 1)
        return (void)bad_field(r, "venue", "a string of 1 to 200 bytes");
    if (edge_json_string(body, "starts_at", TIME_BYTES_MAX, &starts) != 1)
        return (void)bad_field(r, "starts_at", "an RFC 3339 time");
    if (edge_json_string(body, "sale_opens_at", TIME_BYTES_MAX, &opens) != 1)
        return (void)bad_field(r, "sale_opens_at", "an RFC 3339 time");
    const json_t *sections = json_object_get(body, "sections");
    size_t count = json_is_array(sections) ? json_array_size(sections) : 0;
    if (count == 0 || count > EDGE_EVENT_SECTIONS_MAX)
        return (void)bad_field(r, "sections", "an array of 1 to 64 sections");
    Tiketi__V1__SectionSpec specs[EDGE_EVENT_SECTIONS_MAX];
    Tiketi__V1__SectionSpec *spec_ptrs[EDGE_EVENT_SECTIONS_MAX];
    for (size_t i = 0; i < count; i++) {
        if (!section_from_json(r, json_array_get(sections, i), i, &specs[i]))
            return;
        spec_ptrs[i] = &specs[i];
    }
    Tiketi__V1__QueueSpec queue;
    if (!queue_from_json(r, &queue))
        return;
    uint64_t ttl = 0, per_user = 0;
    if (edge_json_uint(body, "hold_ttl_s", 0, UINT32_MAX, &ttl) < 0)
        return (void)bad_field(r, "hold_ttl_s", "a non-negative integer (seconds)");
    if (edge_json_uint(body, "max_seats_per_user", 0, UINT32_MAX, &per_user) < 0)
        return (void)bad_field(r, "max_seats_per_user", "a non-negative integer");
    request.name = (char *)name;
    request.venue = (char *)venue;
    request.starts_at = (char *)starts;
    request.sale_opens_at = (char *)opens;
    request.n_sections = count;
    request.sections = spec_ptrs;
    request.queue = &queue;
    request.hold_ttl_s = (uint32_t)ttl;
    request.max_seats_per_user = (uint32_t)per_user;
    request.admin_user_id = r->claims.sub;
    edge_call_start(r, EDGE_DEP_EVENT, EDGE_M_CREATE_EVENT, &request.base, &tiketi__v1__event_summary__descriptor,
                    r->server->config->rpc_timeout_ms * 2, on_created, NULL);
}
