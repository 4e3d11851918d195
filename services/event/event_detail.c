/* event_detail.c — GetEvent: one ready event with its sections and settings,
 * and its free seats from the owning shard (UNAVAILABLE if it cannot say). */
#include <inttypes.h>

#include "event_db.h"
#include "event_engine.h"
#include "event_svc.h"
#include "rpc_log.h"
#include "tk_assert.h"

static Tiketi__V1__EventDetail *detail_out(struct rpc_arena *arena, const struct event_row *row,
                                           const struct event_section *sections, uint32_t count, uint32_t available)
{
    Tiketi__V1__EventDetail *detail = rpc_arena_alloc(arena, sizeof(*detail));
    Tiketi__V1__SectionSpec *items = rpc_arena_alloc(arena, (count + 1) * sizeof(*items));
    Tiketi__V1__SectionSpec **list = rpc_arena_alloc(arena, (count + 1) * sizeof(*list));
    Tiketi__V1__QueueSpec *queue = rpc_arena_alloc(arena, sizeof(*queue));
    if (detail == NULL || items == NULL || list == NULL || queue == NULL)
        return NULL;
    tiketi__v1__event_detail__init(detail);
    for (uint32_t s = 0; s < count; s++) {
        tiketi__v1__section_spec__init(&items[s]);
        items[s].name = rpc_arena_strdup(arena, sections[s].name);
        items[s].rows = sections[s].rows;
        items[s].seats_per_row = sections[s].seats_per_row;
        items[s].price_cents = sections[s].price_cents;
        list[s] = &items[s];
        if (items[s].name == NULL)
            return NULL;
    }
    tiketi__v1__queue_spec__init(queue);
    queue->enabled = row->queue_enabled;
    queue->admit_per_s = row->admit_per_s;
    queue->max_active = row->max_active;
    detail->event = event_summary_out(arena, row, available);
    detail->sections = list;
    detail->n_sections = count;
    detail->queue = queue;
    detail->hold_ttl_s = row->hold_ttl_s;
    detail->max_seats_per_user = row->max_seats_per_user;
    return detail->event != NULL ? detail : NULL;
}

/* The event's free seats; false (error filled) when its shard cannot say. */
static bool free_seats(struct event_svc *svc, struct rpc_call *call, uint64_t id, uint32_t *available,
                       struct rpc_error *error)
{
    int64_t budget = event_call_budget_ms(call, svc->config->engine_timeout_ms);
    if (budget <= 0) {
        event_error_set(error, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline_exceeded", "the deadline passed");
        return false;
    }
    struct rpc_call_options options = {.timeout_ms = budget, .request_id = rpc_call_request_id(call),
                                       .traceparent = rpc_call_traceparent(call)};
    Tiketi__V1__EventInfo *info = NULL;
    struct rpc_error engine;
    grpc_status_code code = event_engine_get(svc, id, &options, &info, &engine);
    *available = info != NULL ? info->free : 0;
    if (info != NULL)
        protobuf_c_message_free_unpacked(&info->base, NULL);
    if (code == GRPC_STATUS_NOT_FOUND)
        rpc_log(RPC_LOG_WARN, "", "event %" PRIu64 " is in the catalog but not on its shard", id);
    else if (code != GRPC_STATUS_OK)
        event_engine_error(svc, id, &engine, error);
    return code == GRPC_STATUS_OK || code == GRPC_STATUS_NOT_FOUND;
}

void event_detail_job(struct svc_worker *worker, void *ctx)
{
    struct event_job *job = ctx;
    struct rpc_call *call = job->call;
    uint64_t id = job->event_id;
    TK_ASSERT(id > 0);
    static _Thread_local struct event_row row;
    static _Thread_local struct event_section sections[TK_SECTIONS_PER_EVENT_MAX];
    uint32_t count = 0, available = 0;
    bool found = false;
    struct rpc_error error;
    if (!svc_worker_pg_ok(worker)) {
        event_fail(call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the database is unavailable");
        return;
    }
    if (!event_db_get(worker->pg, id, true, &row, &found, &error) ||
        (found && !event_db_sections(worker->pg, id, sections, &count, &error))) {
        rpc_fail(call, &error);
        return;
    }
    if (!found) {
        event_fail(call, GRPC_STATUS_NOT_FOUND, "not_found", "no event %" PRIu64, id);
        return;
    }
    if (!free_seats(job->svc, call, id, &available, &error)) {
        rpc_fail(call, &error);
        return;
    }
    Tiketi__V1__EventDetail *detail = detail_out(rpc_call_arena(call), &row, sections, count, available);
    if (detail == NULL)
        event_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached", "the reply does not fit in call memory");
    else
        rpc_reply(call, &detail->base);
}
