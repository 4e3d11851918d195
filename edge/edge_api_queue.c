/* edge_api_queue.c — /api/v1/events/{id}/queue: join, status, leave.
 * (The WebSocket of the waiting room is edge_ws.c.) */
#include <string.h>

#include "edge.h"
#include "tiketi/v1/queue.pb-c.h"
#include "tk_assert.h"

static json_t *queue_view_json(const Tiketi__V1__WaitingRoomView *view)
{
    json_t *body = json_pack("{s:I, s:I, s:I, s:s}", "ticket", (json_int_t)view->ticket, "position",
                             (json_int_t)view->position, "eta_s", (json_int_t)view->eta_s, "status", view->status);
    if (body != NULL && view->admission_token[0] != '\0') {
        json_object_set_new(body, "admission_token", json_string(view->admission_token));
        json_object_set_new(body, "admission_expires_at", json_string(view->admission_expires_at));
    }
    return body;
}

static void on_view(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    edge_send_json(r, 200, queue_view_json((const void *)call->reply));
}

static void on_left(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    edge_send_empty(r, 204);
}

static void queue_call(struct edge_request *r, const char *method, const ProtobufCMessageDescriptor *reply_type,
                       void (*done)(struct edge_call *))
{
    TK_ASSERT(r->authenticated && r->match.event_id[0] != '\0');
    Tiketi__V1__WaitingRoomRequest request = TIKETI__V1__WAITING_ROOM_REQUEST__INIT;
    request.event_id = r->match.event_id;
    request.user_id = r->claims.sub;
    edge_call_start(r, EDGE_DEP_QUEUE, method, &request.base, reply_type, 0, done, NULL);
}

void edge_api_queue_join(struct edge_request *r)
{
    queue_call(r, EDGE_M_JOIN, &tiketi__v1__waiting_room_view__descriptor, on_view);
}

void edge_api_queue_status(struct edge_request *r)
{
    queue_call(r, EDGE_M_STATUS, &tiketi__v1__waiting_room_view__descriptor, on_view);
}

void edge_api_queue_leave(struct edge_request *r)
{
    queue_call(r, EDGE_M_LEAVE, &tiketi__v1__empty__descriptor, on_left);
}
