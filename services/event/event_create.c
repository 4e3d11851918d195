/* event_create.c — CreateEvent: the catalog in PostgreSQL and the event in its
 * engine shard, one outcome or the other.
 *
 * Steps, under a session advisory lock on the new id (event_db_lock):
 *   1. the id from the sequence, its shard by the router's jump hash;
 *   2. one transaction: venue (made if missing), the event row 'pending', its
 *      sections and every seat;
 *   3. CreateEvent on the owning shard (idempotent; retried on UNAVAILABLE);
 *   4. created -> mark the row 'ready' and answer OK; not created -> delete the
 *      row (its sections and seats go with it) and answer the failure.
 * When the engine's answer is lost (timeout, connection reset) a GetEvent asks
 * what happened before deciding. Readers only ever see 'ready' rows, so a
 * half-made event is invisible while it is being decided; a crash between the
 * steps leaves a 'pending' row that event_reconcile.c settles by asking the
 * engine, the same way. We answer OK only once the engine holds the event, so
 * settling "not in the engine" by deleting never contradicts an answer given. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "event_db.h"
#include "event_engine.h"
#include "event_svc.h"
#include "event_time.h"
#include "rpc_log.h"
#include "tk_assert.h"

#define LOST_ANSWER_CHECK_MS 1000u /* the GetEvent that settles a lost CreateEvent answer */

enum engine_outcome { ENGINE_CREATED, ENGINE_NOT_CREATED };

static struct rpc_call_options engine_options(struct rpc_call *call, int64_t timeout_ms)
{
    return (struct rpc_call_options){.timeout_ms = timeout_ms > 0 ? timeout_ms : 1,
                                     .request_id = rpc_call_request_id(call),
                                     .traceparent = rpc_call_traceparent(call)};
}

/* Is the event in the engine, with this layout? (After an ambiguous failure
 * or ALREADY_EXISTS.) *asked=false when the shard could not be asked. */
static bool engine_has(struct event_svc *svc, struct rpc_call *call, uint64_t id, const struct event_spec *spec,
                       bool *asked, bool *same_layout)
{
    struct rpc_call_options options = engine_options(call, LOST_ANSWER_CHECK_MS);
    Tiketi__V1__EventInfo *info = NULL;
    struct rpc_error error;
    grpc_status_code code = event_engine_get(svc, id, &options, &info, &error);
    *asked = code == GRPC_STATUS_OK || code == GRPC_STATUS_NOT_FOUND;
    *same_layout = code == GRPC_STATUS_OK &&
                   event_engine_matches(info, spec->capacity, spec->sections, spec->section_count);
    if (info != NULL)
        protobuf_c_message_free_unpacked(&info->base, NULL);
    return code == GRPC_STATUS_OK;
}

/* The engine refused: the client sees why, with the shard named. */
static void refused(struct event_svc *svc, uint64_t id, const struct rpc_error *engine, struct rpc_error *error)
{
    uint32_t shard = event_engine_shard(svc, id);
    const char *address = svc->config->shards[shard];
    if (engine->code == GRPC_STATUS_RESOURCE_EXHAUSTED)
        event_error_set(error, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached",
                        "seatcored shard %u (%s) cannot take the event: %s; nothing was created", shard, address,
                        engine->message);
    else if (engine->code == GRPC_STATUS_INVALID_ARGUMENT)
        event_error_set(error, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "the engine refused the event: %s",
                        engine->message);
    else
        event_error_set(error, GRPC_STATUS_FAILED_PRECONDITION, "engine_refused",
                        "seatcored shard %u (%s) refused the event: %s %s; nothing was created", shard, address,
                        rpc_code_name(engine->code), engine->message);
}

static bool definitive(grpc_status_code code)
{
    return code == GRPC_STATUS_INVALID_ARGUMENT || code == GRPC_STATUS_RESOURCE_EXHAUSTED ||
           code == GRPC_STATUS_FAILED_PRECONDITION || code == GRPC_STATUS_PERMISSION_DENIED ||
           code == GRPC_STATUS_UNIMPLEMENTED || code == GRPC_STATUS_NOT_FOUND || code == GRPC_STATUS_OUT_OF_RANGE ||
           code == GRPC_STATUS_UNAUTHENTICATED;
}

static enum engine_outcome create_in_engine(struct event_svc *svc, struct rpc_call *call, uint64_t id,
                                            const struct event_spec *spec, struct rpc_error *error)
{
    int64_t budget = event_call_budget_ms(call, svc->config->create_timeout_ms);
    if (budget <= 0) {
        event_error_set(error, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline_exceeded",
                        "the deadline passed before the engine was asked; nothing was created");
        return ENGINE_NOT_CREATED;
    }
    struct rpc_call_options options = engine_options(call, budget);
    struct rpc_error engine;
    grpc_status_code code = event_engine_create(svc, id, spec, &options, &engine);
    if (code == GRPC_STATUS_OK)
        return ENGINE_CREATED;
    bool asked, same_layout;
    if (code == GRPC_STATUS_ALREADY_EXISTS) { /* an earlier attempt's answer was lost */
        if (engine_has(svc, call, id, spec, &asked, &same_layout) && same_layout)
            return ENGINE_CREATED;
        event_error_set(error, GRPC_STATUS_FAILED_PRECONDITION, "engine_out_of_step",
                        "event id %" PRIu64 " already exists on its shard with another layout (catalog and engine "
                        "out of step: was the database reset?); nothing was created", id);
        return ENGINE_NOT_CREATED;
    }
    if (definitive(code)) {
        refused(svc, id, &engine, error);
        return ENGINE_NOT_CREATED;
    }
    if (engine_has(svc, call, id, spec, &asked, &same_layout) && same_layout)
        return ENGINE_CREATED; /* it was created; only the answer was lost */
    if (!asked)
        rpc_log(RPC_LOG_WARN, "", "event %" PRIu64 ": shard %u did not answer CreateEvent nor GetEvent; removing the "
                "catalog rows (should the shard have applied it after all, the engine event is an orphan no catalog "
                "names)", id, event_engine_shard(svc, id));
    event_engine_error(svc, id, &engine, error);
    snprintf(error->message + strlen(error->message), sizeof(error->message) - strlen(error->message),
             "; nothing was created");
    return ENGINE_NOT_CREATED;
}

static void reply_created(struct rpc_call *call, uint64_t id, const struct event_spec *spec)
{
    struct event_row row = {.id = id, .starts_at_us = spec->starts_at_us, .sale_opens_at_us = spec->sale_opens_at_us,
                            .capacity = spec->capacity};
    snprintf(row.name, sizeof(row.name), "%s", spec->name);
    snprintf(row.venue, sizeof(row.venue), "%s", spec->venue);
    snprintf(row.status, sizeof(row.status), "%s",
             spec->sale_opens_at_us <= event_time_now_us() ? "on_sale" : "scheduled");
    Tiketi__V1__EventSummary *summary = event_summary_out(rpc_call_arena(call), &row, spec->capacity);
    if (summary == NULL)
        event_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached", "the reply does not fit in call memory");
    else
        rpc_reply(call, &summary->base);
}

/* Steps 3 and 4, with the row inserted and the lock held. */
static void finish(struct event_svc *svc, struct svc_worker *worker, struct rpc_call *call, uint64_t id,
                   const struct event_spec *spec)
{
    struct rpc_error error, db;
    if (create_in_engine(svc, call, id, spec, &error) == ENGINE_CREATED) {
        if (event_db_mark_ready(worker->pg, id, &db)) {
            atomic_fetch_add_explicit(&svc->metrics.created, 1, memory_order_relaxed);
            rpc_log(RPC_LOG_INFO, "", "event %" PRIu64 " created on shard %u (%u seats)", id,
                    event_engine_shard(svc, id), spec->capacity);
            reply_created(call, id, spec);
            return;
        }
        atomic_fetch_add_explicit(&svc->metrics.create_failed, 1, memory_order_relaxed);
        event_fail(call, GRPC_STATUS_UNAVAILABLE, "unavailable",
                   "event %" PRIu64 " was created on its shard but the catalog could not be marked ready (%s); it "
                   "will be completed automatically once the database answers", id, db.message);
        return;
    }
    atomic_fetch_add_explicit(&svc->metrics.create_failed, 1, memory_order_relaxed);
    if (!event_db_delete_pending(worker->pg, id, &db))
        rpc_log(RPC_LOG_WARN, "", "event %" PRIu64 ": removing the catalog rows failed (%s); the reconciler will",
                id, db.message);
    rpc_log(RPC_LOG_WARN, "", "event %" PRIu64 " not created: %s", id, error.message);
    rpc_fail(call, &error);
}

void event_create_job(struct svc_worker *worker, void *ctx)
{
    struct event_job *job = ctx;
    struct event_svc *svc = job->svc;
    TK_ASSERT(job->spec != NULL && job->call != NULL);
    struct rpc_error error;
    uint64_t id;
    bool locked = false;
    if (event_call_budget_ms(job->call, 1) <= 0) {
        event_fail(job->call, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline_exceeded",
                   "the deadline passed while the request waited; nothing was created");
        return;
    }
    if (!svc_worker_pg_ok(worker)) {
        event_fail(job->call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the database is unavailable: %s",
                   PQerrorMessage(worker->pg));
        return;
    }
    if (!event_db_next_id(worker->pg, &id, &error) || !event_db_lock(worker->pg, id, true, &locked, &error) ||
        !event_db_insert(worker->pg, id, event_engine_shard(svc, id), job->spec, &error)) {
        if (locked)
            event_db_unlock(worker->pg, id);
        atomic_fetch_add_explicit(error.code == GRPC_STATUS_INVALID_ARGUMENT ? &svc->metrics.create_refused
                                                                              : &svc->metrics.create_failed,
                                  1, memory_order_relaxed);
        rpc_fail(job->call, &error);
        return;
    }
    finish(svc, worker, job->call, id, job->spec);
    event_db_unlock(worker->pg, id);
}
