/* queue_handlers.c — tiketi.v1.WaitingRoom on the engine's queue.
 *
 * A handler checks the string ids, then starts an asynchronous call to the
 * event's seatcored shard (rpc_router) and returns: the completion, on the
 * client loop's thread, maps the engine's view or error to this API and
 * answers. No completion-queue thread waits on the network. Leave is two engine
 * calls (Status for the rank the user held, then QueueLeave) and, when the user
 * was waiting, a Redis publish of the "left" message on a worker (Redis calls
 * block), which answers once the message is out: by the time the client hears
 * 204 the edges have been told. The per-request state lives in the call's arena,
 * which outlives every step because the call is answered only at the end. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "queue_format.h"
#include "queue_svc.h"
#include "rpc_log.h"
#include "tiketi/v1/queue.pb-c.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "tk_assert.h"

#define ENGINE_QUEUE_JOIN "/tiketi.v1.SeatCore/QueueJoin"
#define ENGINE_QUEUE_STATUS "/tiketi.v1.SeatCore/QueueStatus"
#define ENGINE_QUEUE_LEAVE "/tiketi.v1.SeatCore/QueueLeave"
#define ENGINE_QUEUE_HEARTBEAT "/tiketi.v1.SeatCore/QueueHeartbeat"

struct request_ctx {
    struct rpc_call *call;
    struct queue_svc *svc;
    uint64_t event_id, user_id;
    const char *event_text, *user_text; /* the request's strings, in the call's arena */
    /* Leave: the user's view just before leaving. */
    Tiketi__V1__QueueState before_state;
    uint32_t before_rank;
    uint64_t before_ticket;
};

struct rpc_call_options queue_engine_options(const struct queue_svc *svc, const struct rpc_call *call)
{
    TK_ASSERT(svc != NULL && call != NULL);
    int64_t timeout_ms = svc->config->engine_timeout_ms;
    int64_t left_ms = rpc_call_deadline_ms(call);
    if (left_ms < timeout_ms)
        timeout_ms = left_ms > 1 ? left_ms : 1;
    TK_ASSERT(timeout_ms >= 1);
    return (struct rpc_call_options){.timeout_ms = timeout_ms, .request_id = rpc_call_request_id(call),
                                     .traceparent = rpc_call_traceparent(call)};
}

static void fail_invalid(struct rpc_call *call, const char *message, bool stream)
{
    struct rpc_error error;
    rpc_error_from_status(&error, TK_ERR_INVALID, message, NULL, 0);
    if (stream)
        rpc_stream_finish(call, &error);
    else
        rpc_fail(call, &error);
}

/* Checks the ids; on failure answers INVALID_ARGUMENT and returns NULL. */
static struct request_ctx *request_begin(struct rpc_call *call, const ProtobufCMessage *message, void *service_ctx,
                                         bool stream)
{
    const Tiketi__V1__WaitingRoomRequest *req = (const Tiketi__V1__WaitingRoomRequest *)message;
    uint64_t event_id, user_id;
    if (!queue_parse_id(req->event_id, QUEUE_EVENT_ID_MAX, &event_id)) {
        fail_invalid(call, "event_id must be a decimal id, 1..18446744073709551615 without leading zeros", stream);
        return NULL;
    }
    if (!queue_parse_id(req->user_id, QUEUE_USER_ID_MAX, &user_id)) {
        fail_invalid(call, "user_id must be a decimal id, 1..281474976710655 without leading zeros", stream);
        return NULL;
    }
    struct request_ctx *ctx = rpc_arena_alloc(rpc_call_arena(call), sizeof(*ctx));
    if (ctx == NULL) {
        struct rpc_error error;
        rpc_error_from_status(&error, TK_ERR_FULL, "out of call memory", NULL, 0);
        stream ? rpc_stream_finish(call, &error) : rpc_fail(call, &error);
        return NULL;
    }
    *ctx = (struct request_ctx){.call = call, .svc = service_ctx, .event_id = event_id, .user_id = user_id,
                                .event_text = req->event_id, .user_text = req->user_id};
    TK_ASSERT(ctx->event_id >= 1 && ctx->user_id >= 1 && ctx->user_id <= QUEUE_USER_ID_MAX);
    return ctx;
}

static void engine_call(struct request_ctx *ctx, const char *method, const ProtobufCMessageDescriptor *reply_type,
                        rpc_unary_done done)
{
    Tiketi__V1__QueueRequest req = TIKETI__V1__QUEUE_REQUEST__INIT;
    req.event_id = ctx->event_id;
    req.user_id = ctx->user_id;
    struct rpc_call_options options = queue_engine_options(ctx->svc, ctx->call);
    rpc_unary_async(ctx->svc->loop, rpc_router_channel(ctx->svc->router, ctx->event_id), method, &req.base,
                    reply_type, &options, done, ctx);
}

static void fail_engine(struct request_ctx *ctx, const struct rpc_error *engine, enum queue_error_context context)
{
    struct rpc_error error;
    queue_error_from_engine(engine, context, &error);
    if (error.code == GRPC_STATUS_UNAVAILABLE || error.code == GRPC_STATUS_INTERNAL) {
        char fields[160];
        snprintf(fields, sizeof(fields), "\"request_id\":\"%s\",\"event_id\":\"%llu\"",
                 rpc_call_request_id(ctx->call), (unsigned long long)ctx->event_id);
        rpc_log(RPC_LOG_WARN, fields, "engine call failed: %s %s", rpc_code_name(engine->code), engine->message);
    }
    rpc_fail(ctx->call, &error);
}

static void reply_empty(struct rpc_call *call)
{
    Tiketi__V1__Empty empty = TIKETI__V1__EMPTY__INIT;
    rpc_reply(call, &empty.base);
}

/* ---- Join, Status, Heartbeat ---- */

static void on_view(struct request_ctx *ctx, grpc_status_code code, ProtobufCMessage *reply,
                    const struct rpc_error *error, enum queue_error_context context)
{
    if (code != GRPC_STATUS_OK) {
        TK_ASSERT(reply == NULL);
        fail_engine(ctx, error, context);
        return;
    }
    TK_ASSERT(reply != NULL && reply->descriptor == &tiketi__v1__queue_view__descriptor);
    char expires_at[QUEUE_TIME_TEXT_BYTES];
    Tiketi__V1__WaitingRoomView view;
    queue_view_from_engine((const Tiketi__V1__QueueView *)reply, ctx->event_text, ctx->user_text, expires_at, &view);
    rpc_reply(ctx->call, &view.base); /* packs now: ctx may be gone after this line */
    protobuf_c_message_free_unpacked(reply, NULL);
}

static void on_join_done(void *arg, grpc_status_code code, ProtobufCMessage *reply, const struct rpc_error *error)
{
    on_view(arg, code, reply, error, QUEUE_ERROR_FOR_JOIN);
}

static void on_status_done(void *arg, grpc_status_code code, ProtobufCMessage *reply,
                           const struct rpc_error *error)
{
    on_view(arg, code, reply, error, QUEUE_ERROR_FOR_MEMBER);
}

static void on_heartbeat_done(void *arg, grpc_status_code code, ProtobufCMessage *reply,
                              const struct rpc_error *error)
{
    struct request_ctx *ctx = arg;
    if (code != GRPC_STATUS_OK) {
        fail_engine(ctx, error, QUEUE_ERROR_FOR_MEMBER);
        return;
    }
    protobuf_c_message_free_unpacked(reply, NULL);
    reply_empty(ctx->call);
}

static void on_join(struct rpc_call *call, const ProtobufCMessage *message, void *service_ctx)
{
    struct request_ctx *ctx = request_begin(call, message, service_ctx, false);
    if (ctx != NULL)
        engine_call(ctx, ENGINE_QUEUE_JOIN, &tiketi__v1__queue_view__descriptor, on_join_done);
}

static void on_status(struct rpc_call *call, const ProtobufCMessage *message, void *service_ctx)
{
    struct request_ctx *ctx = request_begin(call, message, service_ctx, false);
    if (ctx != NULL)
        engine_call(ctx, ENGINE_QUEUE_STATUS, &tiketi__v1__queue_view__descriptor, on_status_done);
}

static void on_heartbeat(struct rpc_call *call, const ProtobufCMessage *message, void *service_ctx)
{
    struct request_ctx *ctx = request_begin(call, message, service_ctx, false);
    if (ctx != NULL)
        engine_call(ctx, ENGINE_QUEUE_HEARTBEAT, &tiketi__v1__empty__descriptor, on_heartbeat_done);
}

/* ---- Leave: status, leave, then (if the user was waiting) publish "left" ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool publish_left(struct queue_svc *svc, struct svc_worker *worker, const struct request_ctx *ctx)
{
    redisContext **redis = &svc->left_redis[worker->index];
    char err[256];
    if (*redis == NULL && (*redis = queue_redis_connect(&svc->redis_address, svc->config->redis_timeout_ms, err,
                                                        sizeof(err))) == NULL) {
        rpc_log(RPC_LOG_WARN, "", "left message not published: %s", err);
        return false;
    }
    char channel[QUEUE_REDIS_NAME_BYTES], key[QUEUE_REDIS_NAME_BYTES], rank[16], retention[16];
    char json[QUEUE_JSON_BYTES_MAX];
    struct queue_left_message m = {.event_id = ctx->event_id, .user_id = ctx->user_id, .rank = ctx->before_rank,
                                   .ts_ms = wall_ms()};
    size_t json_len = queue_json_left(&m, json, sizeof(json));
    bool named = queue_channel_name(ctx->event_id, channel, sizeof(channel)) &&
                 queue_left_key(ctx->event_id, key, sizeof(key));
    TK_ASSERT(json_len > 0 && named); /* fixed-size numbers: they always fit */
    snprintf(rank, sizeof(rank), "%u", ctx->before_rank);
    snprintf(retention, sizeof(retention), "%u", QUEUE_KEY_RETENTION_MS);
    const char *argv[] = {"EVAL", queue_script_left, "1", key, channel, rank, json, retention};
    size_t lens[] = {4, strlen(queue_script_left), 1, strlen(key), strlen(channel), strlen(rank), json_len,
                     strlen(retention)};
    redisReply *reply = redisCommandArgv(*redis, 8, argv, lens);
    bool ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER;
    if (!ok)
        rpc_log(RPC_LOG_WARN, "", "left message not published: %s",
                reply == NULL ? (*redis)->errstr : (reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply"));
    if (reply != NULL)
        freeReplyObject(reply);
    if (reply == NULL) { /* the connection is unusable: open a new one next time */
        redisFree(*redis);
        *redis = NULL;
    }
    return ok;
}

static void publish_left_job(struct svc_worker *worker, void *arg)
{
    struct request_ctx *ctx = arg;
    struct queue_svc *svc = ctx->svc;
    if (publish_left(svc, worker, ctx))
        atomic_fetch_add_explicit(&svc->counters.published_left, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&svc->counters.left_publish_errors, 1, memory_order_relaxed);
    reply_empty(ctx->call); /* the leave itself succeeded; the feed message is best effort */
}

static void on_leave_done(void *arg, grpc_status_code code, ProtobufCMessage *reply, const struct rpc_error *error)
{
    struct request_ctx *ctx = arg;
    if (code != GRPC_STATUS_OK) {
        fail_engine(ctx, error, QUEUE_ERROR_FOR_MEMBER);
        return;
    }
    protobuf_c_message_free_unpacked(reply, NULL);
    bool was_waiting = ctx->before_state == TIKETI__V1__QUEUE_STATE__QUEUE_WAITING && ctx->before_ticket != 0;
    if (!was_waiting) {
        reply_empty(ctx->call); /* nobody's position changed */
        return;
    }
    if (svc_workers_submit(ctx->svc->workers, publish_left_job, ctx) != TK_OK) {
        atomic_fetch_add_explicit(&ctx->svc->counters.left_publish_errors, 1, memory_order_relaxed);
        reply_empty(ctx->call);
    }
}

static void on_leave_status(void *arg, grpc_status_code code, ProtobufCMessage *reply,
                            const struct rpc_error *error)
{
    struct request_ctx *ctx = arg;
    if (code != GRPC_STATUS_OK) {
        fail_engine(ctx, error, QUEUE_ERROR_FOR_MEMBER);
        return;
    }
    const Tiketi__V1__QueueView *view = (const Tiketi__V1__QueueView *)reply;
    ctx->before_state = view->state;
    ctx->before_rank = view->rank;
    ctx->before_ticket = view->ticket;
    protobuf_c_message_free_unpacked(reply, NULL);
    engine_call(ctx, ENGINE_QUEUE_LEAVE, &tiketi__v1__empty__descriptor, on_leave_done);
}

static void on_leave(struct rpc_call *call, const ProtobufCMessage *message, void *service_ctx)
{
    struct request_ctx *ctx = request_begin(call, message, service_ctx, false);
    if (ctx != NULL)
        engine_call(ctx, ENGINE_QUEUE_STATUS, &tiketi__v1__queue_view__descriptor, on_leave_status);
}

/* ---- Watch ---- */

static void on_watch(struct rpc_call *call, const ProtobufCMessage *message, void *service_ctx)
{
    struct request_ctx *ctx = request_begin(call, message, service_ctx, true);
    if (ctx != NULL)
        queue_watch_add(ctx->svc->watch, call, ctx->event_id, ctx->user_id);
}

#define METHOD(name, fn)                                                                                               \
    {.path = "/tiketi.v1.WaitingRoom/" name, .request = &tiketi__v1__waiting_room_request__descriptor, .handler = fn}

const struct rpc_method queue_methods[] = {
    METHOD("Join", on_join),
    METHOD("Status", on_status),
    METHOD("Leave", on_leave),
    METHOD("Heartbeat", on_heartbeat),
    {.path = "/tiketi.v1.WaitingRoom/Watch", .request = &tiketi__v1__waiting_room_request__descriptor,
     .handler = on_watch, .server_streaming = true},
};
const uint32_t queue_method_count = sizeof(queue_methods) / sizeof(queue_methods[0]);
