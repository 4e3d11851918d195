/* event_engine.c — SeatCore calls (event_engine.h). */
#include "event_engine.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_log.h"
#include "tk_assert.h"
#include "tk_codec.h"

uint32_t event_engine_shard(const struct event_svc *svc, uint64_t event_id)
{
    /* What seatcored checks on CreateEvent and every service routes by. */
    uint32_t shard = rpc_jump_hash(tk_hash_u64(event_id), svc->config->shard_count);
    TK_ASSERT(shard == rpc_router_shard_of(svc->router, event_id));
    TK_ASSERT(shard < svc->config->shard_count);
    return shard;
}

void event_engine_error(struct event_svc *svc, uint64_t event_id, const struct rpc_error *engine,
                        struct rpc_error *error)
{
    uint32_t shard = event_engine_shard(svc, event_id);
    event_error_set(error, GRPC_STATUS_UNAVAILABLE, "unavailable", "seatcored shard %u (%s) is unavailable: %s %s",
                    shard, svc->config->shards[shard], rpc_code_name(engine->code), engine->message);
}

grpc_status_code event_engine_create(struct event_svc *svc, uint64_t event_id, const struct event_spec *spec,
                                     const struct rpc_call_options *options, struct rpc_error *error)
{
    TK_ASSERT(spec->section_count >= 1 && spec->section_count <= TK_SECTIONS_PER_EVENT_MAX);
    Tiketi__V1__Section sections[TK_SECTIONS_PER_EVENT_MAX];
    Tiketi__V1__Section *list[TK_SECTIONS_PER_EVENT_MAX];
    for (uint32_t s = 0; s < spec->section_count; s++) {
        tiketi__v1__section__init(&sections[s]);
        sections[s].name = (char *)spec->sections[s].name;
        sections[s].rows = spec->sections[s].rows;
        sections[s].seats_per_row = spec->sections[s].seats_per_row;
        sections[s].price_cents = spec->sections[s].price_cents;
        list[s] = &sections[s];
    }
    Tiketi__V1__QueueSettings queue = TIKETI__V1__QUEUE_SETTINGS__INIT;
    queue.enabled = spec->queue_enabled;
    queue.admit_per_s = spec->admit_per_s;
    queue.max_active = spec->max_active;
    Tiketi__V1__CreateEventRequest request = TIKETI__V1__CREATE_EVENT_REQUEST__INIT;
    request.event_id = event_id;
    request.n_sections = spec->section_count;
    request.sections = list;
    request.hold_ttl_ms = spec->hold_ttl_s * 1000u;
    request.max_seats_per_user = spec->max_seats_per_user;
    request.sale_opens_at_ms = spec->sale_opens_at_us / 1000;
    request.queue = &queue;
    ProtobufCMessage *reply = NULL;
    struct rpc_call_options call_options = *options;
    call_options.idempotent = true; /* the same id again: ALREADY_EXISTS, never a second event */
    grpc_status_code code = rpc_unary(rpc_router_channel(svc->router, event_id), "/tiketi.v1.SeatCore/CreateEvent",
                                      &request.base, &tiketi__v1__event_info__descriptor, NULL, &reply,
                                      &call_options, error);
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code event_engine_get(struct event_svc *svc, uint64_t event_id, const struct rpc_call_options *options,
                                  Tiketi__V1__EventInfo **info, struct rpc_error *error)
{
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    request.event_id = event_id;
    struct rpc_call_options call_options = *options;
    call_options.idempotent = true;
    return rpc_unary(rpc_router_channel(svc->router, event_id), "/tiketi.v1.SeatCore/GetEvent", &request.base,
                     &tiketi__v1__event_info__descriptor, NULL, (ProtobufCMessage **)info, &call_options, error);
}

grpc_status_code event_engine_availability(struct event_svc *svc, uint64_t event_id,
                                           const struct rpc_call_options *options, Tiketi__V1__Availability **out,
                                           struct rpc_error *error)
{
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    request.event_id = event_id;
    struct rpc_call_options call_options = *options;
    call_options.idempotent = true;
    return rpc_unary(rpc_router_channel(svc->router, event_id), "/tiketi.v1.SeatCore/GetAvailability",
                     &request.base, &tiketi__v1__availability__descriptor, NULL, (ProtobufCMessage **)out,
                     &call_options, error);
}

bool event_engine_matches(const Tiketi__V1__EventInfo *info, uint32_t capacity, const struct event_section *sections,
                          uint32_t section_count)
{
    if (info->capacity != capacity || info->n_sections != section_count)
        return false;
    for (uint32_t s = 0; s < section_count; s++) {
        const Tiketi__V1__Section *engine = info->sections[s];
        if (strcmp(engine->name, sections[s].name) != 0 || engine->rows != sections[s].rows ||
            engine->seats_per_row != sections[s].seats_per_row || engine->price_cents != sections[s].price_cents)
            return false;
    }
    return true;
}

/* ---- fan-out: one Batch of GetEvent per shard, all in flight at once ---- */

struct fanout {
    pthread_mutex_t lock;
    pthread_cond_t done;
    uint32_t pending;
};

struct shard_call {
    struct fanout *fanout;
    uint32_t shard;
    uint32_t first, count; /* this shard's slice of the ops (and of order[]) */
    Tiketi__V1__BatchRequest request;
    grpc_status_code code;
    Tiketi__V1__BatchReply *reply;
    struct rpc_error error;
};

static void on_batch_done(void *ctx, grpc_status_code code, ProtobufCMessage *reply, const struct rpc_error *error)
{
    struct shard_call *call = ctx;
    call->code = code;
    call->reply = (Tiketi__V1__BatchReply *)reply;
    if (error != NULL)
        call->error = *error;
    pthread_mutex_lock(&call->fanout->lock);
    TK_ASSERT(call->fanout->pending > 0);
    if (--call->fanout->pending == 0)
        pthread_cond_signal(&call->fanout->done);
    pthread_mutex_unlock(&call->fanout->lock);
}

struct fanout_plan {
    uint32_t order[EVENT_LIST_LIMIT_MAX + 1]; /* id indexes grouped by shard */
    Tiketi__V1__EventRef refs[EVENT_LIST_LIMIT_MAX + 1];
    Tiketi__V1__BatchOp ops[EVENT_LIST_LIMIT_MAX + 1];
    Tiketi__V1__BatchOp *op_list[EVENT_LIST_LIMIT_MAX + 1];
    struct shard_call calls[EVENT_LIST_LIMIT_MAX + 1];
    uint32_t call_count;
};

/* Groups the ids by shard (a counting sort) and builds one Batch per shard. */
static void plan_fanout(struct event_svc *svc, const uint64_t *ids, uint32_t count, struct fanout *fanout,
                        struct fanout_plan *plan)
{
    static _Thread_local uint32_t per_shard[RPC_SHARDS_MAX], start[RPC_SHARDS_MAX];
    uint32_t shards = svc->config->shard_count;
    memset(per_shard, 0, sizeof(per_shard));
    for (uint32_t i = 0; i < count; i++)
        per_shard[event_engine_shard(svc, ids[i])]++;
    plan->call_count = 0;
    for (uint32_t s = 0, offset = 0; s < shards; s++) {
        start[s] = offset;
        if (per_shard[s] > 0)
            plan->calls[plan->call_count++] = (struct shard_call){.fanout = fanout, .shard = s, .first = offset,
                                                                  .count = per_shard[s]};
        offset += per_shard[s];
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t slot = start[event_engine_shard(svc, ids[i])]++;
        plan->order[slot] = i;
        tiketi__v1__event_ref__init(&plan->refs[slot]);
        plan->refs[slot].event_id = ids[i];
        tiketi__v1__batch_op__init(&plan->ops[slot]);
        plan->ops[slot].op_case = TIKETI__V1__BATCH_OP__OP_GET_EVENT;
        plan->ops[slot].get_event = &plan->refs[slot];
        plan->op_list[slot] = &plan->ops[slot];
    }
    for (uint32_t c = 0; c < plan->call_count; c++) {
        struct shard_call *call = &plan->calls[c];
        tiketi__v1__batch_request__init(&call->request);
        call->request.n_ops = call->count;
        call->request.ops = &plan->op_list[call->first];
    }
}

/* Reads one shard's answers into free_seats/known; false on a failure. */
static bool collect(struct event_svc *svc, const struct shard_call *call, const struct fanout_plan *plan,
                    const uint64_t *ids, uint32_t *free_seats, bool *known, struct rpc_error *error)
{
    if (call->code != GRPC_STATUS_OK) {
        event_error_set(error, GRPC_STATUS_UNAVAILABLE, "unavailable",
                        "seatcored shard %u (%s) is unavailable: %s %s", call->shard,
                        svc->config->shards[call->shard], rpc_code_name(call->code), call->error.message);
        return false;
    }
    if (call->reply->n_results != call->count) {
        event_error_set(error, GRPC_STATUS_INTERNAL, "internal", "seatcored shard %u answered %zu of %u operations",
                        call->shard, call->reply->n_results, call->count);
        return false;
    }
    for (uint32_t k = 0; k < call->count; k++) {
        const Tiketi__V1__BatchResult *result = call->reply->results[k];
        uint32_t i = plan->order[call->first + k];
        if (result->code == GRPC_STATUS_OK && result->result_case == TIKETI__V1__BATCH_RESULT__RESULT_EVENT) {
            free_seats[i] = result->event->free;
            known[i] = true;
        } else if (result->code == GRPC_STATUS_NOT_FOUND) {
            free_seats[i] = 0;
            known[i] = false;
            rpc_log(RPC_LOG_WARN, "", "event %llu is in the catalog but not on seatcored shard %u",
                    (unsigned long long)ids[i], call->shard);
        } else {
            event_error_set(error, GRPC_STATUS_UNAVAILABLE, "unavailable",
                            "seatcored shard %u (%s) could not read event %llu: code %u", call->shard,
                            svc->config->shards[call->shard], (unsigned long long)ids[i], result->code);
            return false;
        }
    }
    return true;
}

bool event_engine_free_seats(struct event_svc *svc, const uint64_t *ids, uint32_t count,
                             const struct rpc_call_options *options, uint32_t *free_seats, bool *known,
                             struct rpc_error *error)
{
    TK_ASSERT(count <= EVENT_LIST_LIMIT_MAX + 1);
    if (count == 0)
        return true;
    struct fanout fanout = {.pending = 0};
    pthread_mutex_init(&fanout.lock, NULL);
    pthread_cond_init(&fanout.done, NULL);
    struct fanout_plan *plan = malloc(sizeof(*plan));
    TK_ASSERT(plan != NULL);
    plan_fanout(svc, ids, count, &fanout, plan);
    fanout.pending = plan->call_count;
    for (uint32_t c = 0; c < plan->call_count; c++) {
        struct shard_call *call = &plan->calls[c];
        rpc_unary_async(svc->loop, rpc_router_shard_channel(svc->router, call->shard), "/tiketi.v1.SeatCore/Batch",
                        &call->request.base, &tiketi__v1__batch_reply__descriptor, options, on_batch_done, call);
    }
    pthread_mutex_lock(&fanout.lock); /* every call has a deadline: each callback comes */
    while (fanout.pending > 0)
        pthread_cond_wait(&fanout.done, &fanout.lock);
    pthread_mutex_unlock(&fanout.lock);
    bool ok = true;
    for (uint32_t c = 0; c < plan->call_count; c++) {
        if (ok)
            ok = collect(svc, &plan->calls[c], plan, ids, free_seats, known, error);
        if (plan->calls[c].reply != NULL)
            protobuf_c_message_free_unpacked(&plan->calls[c].reply->base, NULL);
    }
    free(plan);
    pthread_mutex_destroy(&fanout.lock);
    pthread_cond_destroy(&fanout.done);
    return ok;
}
