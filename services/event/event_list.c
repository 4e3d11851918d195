/* event_list.c — ListEvents: a page of ready events with live free seats.
 *
 * One keyset query (event_db_list, limit + 1 rows: the extra row only says
 * that a next page exists), then one Batch of GetEvent per shard the page
 * touches, all shards at once (event_engine_free_seats). If a shard cannot
 * answer, the whole call fails UNAVAILABLE rather than showing a guess. */
#include <stdlib.h>

#include "event_db.h"
#include "event_engine.h"
#include "event_svc.h"
#include "tk_assert.h"

struct list_page {
    struct event_row rows[EVENT_LIST_LIMIT_MAX + 1];
    uint64_t ids[EVENT_LIST_LIMIT_MAX + 1];
    uint32_t free_seats[EVENT_LIST_LIMIT_MAX + 1];
    bool known[EVENT_LIST_LIMIT_MAX + 1];
    uint32_t count;
};

static bool build_reply(struct rpc_call *call, const struct list_page *page, uint32_t shown, bool more)
{
    struct rpc_arena *arena = rpc_call_arena(call);
    Tiketi__V1__ListEventsReply *reply = rpc_arena_alloc(arena, sizeof(*reply));
    Tiketi__V1__EventSummary **events = rpc_arena_alloc(arena, (shown + 1) * sizeof(*events));
    if (reply == NULL || events == NULL)
        return false;
    tiketi__v1__list_events_reply__init(reply);
    for (uint32_t i = 0; i < shown; i++)
        if ((events[i] = event_summary_out(arena, &page->rows[i], page->free_seats[i])) == NULL)
            return false;
    reply->events = events;
    reply->n_events = shown;
    char cursor[EVENT_CURSOR_TEXT_BYTES] = "";
    if (more) {
        const struct event_row *last = &page->rows[shown - 1];
        struct event_cursor next = {.starts_at_us = last->starts_at_us, .event_id = last->id};
        event_cursor_encode(&next, cursor, sizeof(cursor));
    }
    reply->next_cursor = rpc_arena_strdup(arena, cursor);
    if (reply->next_cursor == NULL)
        return false;
    rpc_reply(call, &reply->base);
    return true;
}

void event_list_job(struct svc_worker *worker, void *ctx)
{
    struct event_job *job = ctx;
    struct rpc_call *call = job->call;
    const struct event_list_query *query = job->query;
    TK_ASSERT(query != NULL && query->limit >= 1 && query->limit <= EVENT_LIST_LIMIT_MAX);
    struct rpc_error error;
    if (!svc_worker_pg_ok(worker)) {
        event_fail(call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the database is unavailable");
        return;
    }
    struct list_page *page = malloc(sizeof(*page));
    TK_ASSERT(page != NULL);
    bool ok = event_db_list(worker->pg, query, page->rows, &page->count, &error);
    uint32_t shown = ok && page->count > query->limit ? query->limit : (ok ? page->count : 0);
    bool more = ok && page->count > query->limit;
    for (uint32_t i = 0; i < shown; i++)
        page->ids[i] = page->rows[i].id;
    int64_t budget = event_call_budget_ms(call, job->svc->config->engine_timeout_ms);
    if (ok && shown > 0 && budget <= 0) {
        event_error_set(&error, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline_exceeded", "the deadline passed");
        ok = false;
    }
    if (ok && shown > 0) {
        struct rpc_call_options options = {.timeout_ms = budget, .request_id = rpc_call_request_id(call),
                                           .traceparent = rpc_call_traceparent(call)};
        ok = event_engine_free_seats(job->svc, page->ids, shown, &options, page->free_seats, page->known, &error);
    }
    if (ok && !build_reply(call, page, shown, more))
        event_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached", "the reply does not fit in call memory");
    else if (!ok)
        rpc_fail(call, &error);
    free(page);
}
