/* event_handlers.c — tiketi.v1.Events: validate on the completion-queue
 * thread, then hand the call to a worker.
 *
 * Everything that needs no I/O (request validation, id parsing) is done here
 * so a bad request is refused at once without taking a worker. The job lives
 * in the call's arena, like the decoded request it points into: both stay valid
 * until the call is answered, and a job touches neither afterwards. A full job
 * queue is RESOURCE_EXHAUSTED at once (a bound, not a backlog). */
#include <stdio.h>
#include <string.h>

#include "event_svc.h"
#include "tk_assert.h"

static struct event_job *job_new(struct rpc_call *call, struct event_svc *svc)
{
    struct event_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    if (job != NULL)
        *job = (struct event_job){.svc = svc, .call = call};
    return job;
}

static void submit(struct event_svc *svc, struct rpc_call *call, svc_job_fn fn, struct event_job *job)
{
    if (job == NULL) {
        event_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached", "out of call memory");
        return;
    }
    if (svc_workers_submit(svc->workers, fn, job) != TK_OK)
        event_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached",
                   "event-svc is at its bound of waiting requests; retry shortly");
}

static void on_create_event(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct event_svc *svc = ctx;
    const Tiketi__V1__CreateEventCatalogRequest *request = (const Tiketi__V1__CreateEventCatalogRequest *)message;
    struct event_job *job = job_new(call, svc);
    struct event_spec *spec = rpc_arena_alloc(rpc_call_arena(call), sizeof(*spec));
    char reason[EVENT_REASON_BYTES];
    if (job != NULL && spec != NULL && !event_spec_from_request(request, spec, reason, sizeof(reason))) {
        atomic_fetch_add_explicit(&svc->metrics.create_refused, 1, memory_order_relaxed);
        event_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "%s", reason);
        return;
    }
    if (job != NULL)
        job->spec = spec;
    submit(svc, call, event_create_job, spec != NULL ? job : NULL);
}

static void on_list_events(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    struct event_svc *svc = ctx;
    const Tiketi__V1__ListEventsRequest *request = (const Tiketi__V1__ListEventsRequest *)message;
    struct event_job *job = job_new(call, svc);
    struct event_list_query *query = rpc_arena_alloc(rpc_call_arena(call), sizeof(*query));
    char reason[EVENT_REASON_BYTES];
    if (job != NULL && query != NULL && !event_list_query_from_request(request, query, reason, sizeof(reason))) {
        event_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "%s", reason);
        return;
    }
    if (job != NULL)
        job->query = query;
    submit(svc, call, event_list_job, query != NULL ? job : NULL);
}

/* GetEvent and GetSeatMap: the id, then the job. An id that cannot be one of
 * ours is simply not found (ids are opaque to clients). */
static void on_event_id(struct rpc_call *call, const ProtobufCMessage *message, struct event_svc *svc,
                        svc_job_fn fn)
{
    const Tiketi__V1__GetEventRequest *request = (const Tiketi__V1__GetEventRequest *)message;
    uint64_t id;
    if (request->event_id == NULL || request->event_id[0] == '\0') {
        event_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "event_id is required");
        return;
    }
    if (!event_id_parse(request->event_id, &id)) {
        char shown[48];
        snprintf(shown, sizeof(shown), "%.40s", request->event_id);
        for (char *p = shown; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        event_fail(call, GRPC_STATUS_NOT_FOUND, "not_found", "no event '%s'", shown);
        return;
    }
    struct event_job *job = job_new(call, svc);
    if (job != NULL)
        job->event_id = id;
    submit(svc, call, fn, job);
}

static void on_get_event(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    on_event_id(call, message, ctx, event_detail_job);
}

static void on_get_seat_map(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    on_event_id(call, message, ctx, event_seatmap_job);
}

#define METHOD(name, type, fn) {.path = "/tiketi.v1.Events/" name, .request = &type, .handler = fn}

const struct rpc_method event_methods[] = {
    METHOD("CreateEvent", tiketi__v1__create_event_catalog_request__descriptor, on_create_event),
    METHOD("ListEvents", tiketi__v1__list_events_request__descriptor, on_list_events),
    METHOD("GetEvent", tiketi__v1__get_event_request__descriptor, on_get_event),
    METHOD("GetSeatMap", tiketi__v1__get_event_request__descriptor, on_get_seat_map),
};
const uint32_t event_method_count = sizeof(event_methods) / sizeof(event_methods[0]);
