/* edge_call.c — gRPC calls from a loop thread, completed back on that loop.
 *
 * rpc_unary_async completes on a gRPC client thread. Nothing of h2o may be
 * touched there, so the completion only stores the outcome in the call (and
 * runs the call's optional prepare step, e.g. rendering a large seat map off
 * the loop) and posts the call to its loop's h2o_multithread queue; the loop
 * then runs done. A request can end before its call does (the client closed
 * the connection): the request's dispose clears call->request, and done is
 * skipped for it. Each loop counts its calls in flight so that shutdown can
 * wait for them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge.h"
#include "tk_assert.h"

const char EDGE_M_SIGNUP[] = "/tiketi.v1.Auth/SignUp";
const char EDGE_M_LOGIN[] = "/tiketi.v1.Auth/Login";
const char EDGE_M_REFRESH[] = "/tiketi.v1.Auth/Refresh";
const char EDGE_M_LOGOUT[] = "/tiketi.v1.Auth/Logout";
const char EDGE_M_ME[] = "/tiketi.v1.Auth/Me";
const char EDGE_M_LIST_EVENTS[] = "/tiketi.v1.Events/ListEvents";
const char EDGE_M_GET_EVENT[] = "/tiketi.v1.Events/GetEvent";
const char EDGE_M_GET_SEAT_MAP[] = "/tiketi.v1.Events/GetSeatMap";
const char EDGE_M_CREATE_EVENT[] = "/tiketi.v1.Events/CreateEvent";
const char EDGE_M_JOIN[] = "/tiketi.v1.WaitingRoom/Join";
const char EDGE_M_STATUS[] = "/tiketi.v1.WaitingRoom/Status";
const char EDGE_M_LEAVE[] = "/tiketi.v1.WaitingRoom/Leave";
const char EDGE_M_HEARTBEAT[] = "/tiketi.v1.WaitingRoom/Heartbeat";
const char EDGE_M_CREATE_HOLD[] = "/tiketi.v1.Reservations/CreateHold";
const char EDGE_M_RELEASE_HOLD[] = "/tiketi.v1.Reservations/ReleaseHold";
const char EDGE_M_PAY[] = "/tiketi.v1.Reservations/Pay";
const char EDGE_M_GET_RESERVATION[] = "/tiketi.v1.Reservations/GetReservation";
const char EDGE_M_LIST_RESERVATIONS[] = "/tiketi.v1.Reservations/ListReservations";
const char EDGE_M_CANCEL_RESERVATION[] = "/tiketi.v1.Reservations/CancelReservation";
const char EDGE_M_GET_AVAILABILITY[] = "/tiketi.v1.SeatCore/GetAvailability";
const char EDGE_M_HEALTH_CHECK[] = "/grpc.health.v1.Health/Check";

const char *edge_dependency_name(enum edge_dependency dependency)
{
    static const char *const names[EDGE_DEP_COUNT] = {"auth-svc", "event-svc", "queue-svc", "reservation-svc",
                                                      "payment-svc", "redis"};
    TK_ASSERT((unsigned)dependency < EDGE_DEP_COUNT);
    return names[dependency];
}

/* On a gRPC client thread. */
static void on_complete(void *ctx, grpc_status_code code, ProtobufCMessage *reply, const struct rpc_error *error)
{
    struct edge_call *call = ctx;
    call->code = code;
    call->reply = reply;
    call->error = *error;
    if (call->prepare != NULL)
        call->prepare(call);
    h2o_multithread_send_message(&call->loop->calls, &call->super);
}

static struct edge_call *call_new(struct edge_loop *loop, void (*done)(struct edge_call *), void *data)
{
    struct edge_call *call = calloc(1, sizeof(*call));
    TK_ASSERT(call != NULL && done != NULL);
    call->loop = loop;
    call->done = done;
    call->data = data;
    loop->calls_in_flight++;
    return call;
}

static void call_send(struct edge_call *call, enum edge_dependency dependency, const char *method,
                      const ProtobufCMessage *message, const ProtobufCMessageDescriptor *reply_type,
                      uint32_t timeout_ms, const char *request_id)
{
    struct edge_server *server = call->loop->server;
    TK_ASSERT((unsigned)dependency < EDGE_DEP_REDIS);
    struct rpc_channel *channel = server->channels[dependency];
    if (channel == NULL) {
        /* Not configured: the same path as an unreachable service, answered on the next loop turn. */
        call->code = GRPC_STATUS_UNAVAILABLE;
        call->error.code = GRPC_STATUS_UNAVAILABLE;
        snprintf(call->error.name, sizeof(call->error.name), "unavailable");
        snprintf(call->error.message, sizeof(call->error.message), "%s is not configured on this edge",
                 edge_dependency_name(dependency));
        h2o_multithread_send_message(&call->loop->calls, &call->super);
        return;
    }
    struct rpc_call_options options = {
        .timeout_ms = timeout_ms ? timeout_ms : server->config->rpc_timeout_ms,
        .request_id = request_id,
    };
    rpc_unary_async(server->rpc, channel, method, message, reply_type, &options, on_complete, call);
}

static void start_for_request(struct edge_request *r, enum edge_dependency dependency, const char *method,
                              const ProtobufCMessage *message, const ProtobufCMessageDescriptor *reply_type,
                              uint32_t timeout_ms, void (*prepare)(struct edge_call *),
                              void (*done)(struct edge_call *), void *data)
{
    TK_ASSERT(r != NULL && r->pending == NULL);
    struct edge_call *call = call_new(r->loop, done, data);
    call->for_request = true;
    call->request = r;
    call->prepare = prepare; /* before the call starts: it may complete at once on another thread */
    r->pending = call;
    call_send(call, dependency, method, message, reply_type, timeout_ms, r->request_id);
}

void edge_call_start(struct edge_request *r, enum edge_dependency dependency, const char *method,
                     const ProtobufCMessage *message, const ProtobufCMessageDescriptor *reply_type, uint32_t timeout_ms,
                     void (*done)(struct edge_call *), void *data)
{
    start_for_request(r, dependency, method, message, reply_type, timeout_ms, NULL, done, data);
}

void edge_call_start_prepared(struct edge_request *r, enum edge_dependency dependency, const char *method,
                              const ProtobufCMessage *message, const ProtobufCMessageDescriptor *reply_type,
                              void (*prepare)(struct edge_call *), void (*done)(struct edge_call *), void *data)
{
    start_for_request(r, dependency, method, message, reply_type, 0, prepare, done, data);
}

void edge_call_loop(struct edge_loop *loop, enum edge_dependency dependency, const char *method,
                    const ProtobufCMessage *message, const ProtobufCMessageDescriptor *reply_type,
                    void (*done)(struct edge_call *), void *data)
{
    struct edge_call *call = call_new(loop, done, data);
    call_send(call, dependency, method, message, reply_type, 0, NULL);
}

static void call_finish(struct edge_call *call)
{
    bool run = !call->for_request || call->request != NULL;
    if (run) {
        if (call->request != NULL) {
            TK_ASSERT(call->request->pending == call);
            call->request->pending = NULL;
        }
        call->done(call);
    }
    if (call->prepared != NULL && call->prepared_free != NULL)
        call->prepared_free(call->prepared);
    if (call->reply != NULL)
        protobuf_c_message_free_unpacked(call->reply, NULL);
    free(call);
}

void edge_calls_receive(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct edge_loop *loop = H2O_STRUCT_FROM_MEMBER(struct edge_loop, calls, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        struct edge_call *call = H2O_STRUCT_FROM_MEMBER(struct edge_call, super.link, messages->next);
        h2o_linklist_unlink(&call->super.link);
        TK_ASSERT(call->loop == loop && loop->calls_in_flight > 0);
        loop->calls_in_flight--;
        call_finish(call);
    }
}
