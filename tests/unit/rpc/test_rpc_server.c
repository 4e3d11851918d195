/* test_rpc_server.c — the gRPC layer end to end in one process
 * (rpc/rpc_server.c, rpc_client.c, rpc_client_stream.c, rpc_health.c,
 * rpc_admin_http.c): immediate and deferred replies, errors with their
 * trailer, unknown methods, deadlines, streams, async calls, health, metrics,
 * and a graceful shutdown that finishes the calls in flight. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "rpc_admin_http.h"
#include "rpc_client.h"
#include "rpc_health.h"
#include "rpc_server.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "tk_clock.h"

#define ECHO "/tiketi.test.Test/Echo"
#define LATER "/tiketi.test.Test/Later"
#define FAIL "/tiketi.test.Test/Fail"
#define STREAM "/tiketi.test.Test/Stream"
#define PREPARED "/tiketi.test.Test/Prepared"

static _Atomic int laters_running; /* teardown waits for them: they hold calls */

struct later {
    struct rpc_call *call;
    uint64_t event_id;
    uint32_t delay_ms;
};

static void *later_thread(void *arg)
{
    struct later *later = arg;
    usleep(later->delay_ms * 1000u);
    Tiketi__V1__EventInfo reply = TIKETI__V1__EVENT_INFO__INIT;
    reply.event_id = later->event_id;
    rpc_reply(later->call, &reply.base); /* from a thread that is not the server's */
    free(later);
    atomic_fetch_sub(&laters_running, 1);
    return NULL;
}

static void on_echo(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    (void)ctx;
    const Tiketi__V1__EventRef *req = (const Tiketi__V1__EventRef *)message;
    Tiketi__V1__EventInfo reply = TIKETI__V1__EVENT_INFO__INIT;
    reply.event_id = req->event_id;
    reply.capacity = (uint32_t)strlen(rpc_call_request_id(call));
    rpc_reply(call, &reply.base);
}

static void on_later(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    (void)ctx;
    const Tiketi__V1__EventRef *req = (const Tiketi__V1__EventRef *)message;
    struct later *later = malloc(sizeof(*later));
    *later = (struct later){.call = call, .event_id = req->event_id, .delay_ms = (uint32_t)(req->event_id % 1000)};
    pthread_t thread;
    atomic_fetch_add(&laters_running, 1);
    pthread_create(&thread, NULL, later_thread, later);
    pthread_detach(thread);
}

static void on_fail(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    (void)message;
    (void)ctx;
    struct rpc_error error;
    uint32_t seats[2] = {7, 9};
    rpc_error_from_status(&error, TK_ERR_SEAT_CONFLICT, NULL, seats, 2);
    rpc_fail(call, &error);
}

/* Prepared replies, the way seatcored answers after group commit: packed in the
 * handler (from a message on its stack, gone when the reply is sent), sent later
 * from another thread through the reply thread; an odd id fails instead (the WAL
 * failed: the prepared bytes must not go out); an id of 0 mod 1000 is sent at once. */
static void *prepared_thread(void *arg)
{
    struct later *later = arg;
    usleep(later->delay_ms * 1000u);
    if (later->event_id % 2 == 1)
        rpc_fail_status(later->call, TK_ERR_IO, "the change could not be made durable");
    else
        rpc_reply_prepared_async(later->call);
    free(later);
    atomic_fetch_sub(&laters_running, 1);
    return NULL;
}

static void on_prepared(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    (void)ctx;
    const Tiketi__V1__EventRef *req = (const Tiketi__V1__EventRef *)message;
    Tiketi__V1__EventInfo reply = TIKETI__V1__EVENT_INFO__INIT;
    reply.event_id = req->event_id;
    rpc_reply_prepare(call, &reply.base);
    reply.event_id = 0; /* the bytes were taken: later changes do not reach the client */
    if (req->event_id % 1000 == 0) {
        rpc_reply_prepared(call);
        return;
    }
    struct later *later = malloc(sizeof(*later));
    *later = (struct later){.call = call, .event_id = req->event_id, .delay_ms = (uint32_t)(req->event_id % 7)};
    pthread_t thread;
    atomic_fetch_add(&laters_running, 1);
    pthread_create(&thread, NULL, prepared_thread, later);
    pthread_detach(thread);
}

struct stream_state {
    uint32_t sent;
};

static void stream_next(struct rpc_call *call, bool ok, void *ctx)
{
    struct stream_state *state = ctx;
    if (!ok || state->sent == 3) {
        rpc_stream_finish(call, NULL);
        free(state);
        return;
    }
    Tiketi__V1__EventInfo message = TIKETI__V1__EVENT_INFO__INIT;
    message.event_id = ++state->sent;
    rpc_stream_send(call, &message.base, stream_next, state);
}

static void on_stream(struct rpc_call *call, const ProtobufCMessage *message, void *ctx)
{
    (void)message;
    (void)ctx;
    struct stream_state *state = calloc(1, sizeof(*state));
    stream_next(call, true, state);
}

static const struct rpc_method methods[] = {
    {.path = ECHO, .request = &tiketi__v1__event_ref__descriptor, .handler = on_echo},
    {.path = LATER, .request = &tiketi__v1__event_ref__descriptor, .handler = on_later},
    {.path = FAIL, .request = &tiketi__v1__event_ref__descriptor, .handler = on_fail},
    {.path = STREAM, .request = &tiketi__v1__event_ref__descriptor, .handler = on_stream, .server_streaming = true},
    {.path = PREPARED, .request = &tiketi__v1__event_ref__descriptor, .handler = on_prepared},
};

static struct rpc_server *server;
static struct rpc_health *health;
static struct rpc_channel *channel;
static char target[64];

static void setup(void)
{
    struct rpc_server_config config = {.listen = "127.0.0.1:0", .calls_max = 256, .max_message_bytes = 65536};
    char err[256];
    cr_assert_eq(rpc_server_create(&server, &config, methods, sizeof(methods) / sizeof(methods[0]), NULL, err, sizeof(err)), TK_OK, "%s", err);
    static const char *const names[] = {"tiketi.test.Test"};
    health = rpc_health_create(names, 1);
    cr_assert_eq(rpc_health_register(health, server), TK_OK);
    rpc_server_start(server);
    rpc_health_set_serving(health, true);
    snprintf(target, sizeof(target), "127.0.0.1:%d", rpc_server_port(server));
    channel = rpc_channel_open(target, NULL);
}

static void teardown(void)
{
    for (int i = 0; i < 500 && atomic_load(&laters_running) > 0; i++)
        usleep(10000);
    rpc_channel_close(channel);
    rpc_server_destroy(server);
    rpc_health_destroy(health);
}

TestSuite(rpc_server, .init = setup, .fini = teardown, .timeout = 60);

static grpc_status_code call_echo(const char *method, uint64_t id, int64_t timeout_ms, Tiketi__V1__EventInfo **reply,
                                  struct rpc_error *error)
{
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    request.event_id = id;
    struct rpc_call_options options = {.timeout_ms = timeout_ms, .request_id = "req-123"};
    return rpc_unary(channel, method, &request.base, &tiketi__v1__event_info__descriptor, NULL,
                     (ProtobufCMessage **)reply, &options, error);
}

Test(rpc_server, immediate_and_deferred_replies)
{
    Tiketi__V1__EventInfo *reply;
    struct rpc_error error;
    cr_assert_eq(call_echo(ECHO, 42, 5000, &reply, &error), GRPC_STATUS_OK, "%s", error.message);
    cr_assert_eq(reply->event_id, 42);
    cr_assert_eq(reply->capacity, strlen("req-123"), "the request id travelled");
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    cr_assert_eq(call_echo(LATER, 1050, 5000, &reply, &error), GRPC_STATUS_OK, "%s", error.message);
    cr_assert_eq(reply->event_id, 1050);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
}

Test(rpc_server, prepared_replies_sent_later_or_replaced_by_an_error)
{
    for (uint64_t id = 1000; id < 1100; id++) {
        Tiketi__V1__EventInfo *reply;
        struct rpc_error error;
        grpc_status_code code = call_echo(PREPARED, id, 5000, &reply, &error);
        if (id % 2 == 1) {
            cr_assert_eq(code, GRPC_STATUS_UNAVAILABLE, "id %llu: %s", (unsigned long long)id, error.message);
            cr_assert_null(reply);
            cr_assert_str_eq(error.name, "storage_error");
            continue;
        }
        cr_assert_eq(code, GRPC_STATUS_OK, "id %llu: %s", (unsigned long long)id, error.message);
        cr_assert_eq(reply->event_id, id, "the reply as it was when prepared");
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    }
}

Test(rpc_server, errors_carry_code_name_and_seats)
{
    Tiketi__V1__EventInfo *reply;
    struct rpc_error error;
    cr_assert_eq(call_echo(FAIL, 1, 5000, &reply, &error), GRPC_STATUS_ABORTED);
    cr_assert_null(reply);
    cr_assert_str_eq(error.name, "seat_unavailable");
    cr_assert_eq(error.unavailable_count, 2);
    cr_assert_eq(error.unavailable[1], 9);
}

Test(rpc_server, unknown_methods_are_unimplemented_at_once)
{
    Tiketi__V1__EventInfo *reply;
    struct rpc_error error;
    uint64_t started = tk_monotonic_ns();
    cr_assert_eq(call_echo("/tiketi.test.Test/Nope", 1, 10000, &reply, &error), GRPC_STATUS_UNIMPLEMENTED);
    cr_assert_lt(tk_monotonic_ns() - started, 2000000000u, "not left hanging until the deadline");
}

Test(rpc_server, deadlines_and_garbage)
{
    Tiketi__V1__EventInfo *reply;
    struct rpc_error error;
    cr_assert_eq(call_echo(LATER, 400, 50, &reply, &error), GRPC_STATUS_DEADLINE_EXCEEDED);
    /* Garbage in the request's place: the server says so and keeps serving. */
    Tiketi__V1__CreateEventRequest other = TIKETI__V1__CREATE_EVENT_REQUEST__INIT;
    Tiketi__V1__Section section = TIKETI__V1__SECTION__INIT;
    Tiketi__V1__Section *sections[1] = {&section};
    section.name = "a string where the request has a varint";
    other.sections = sections;
    other.n_sections = 1;
    struct rpc_call_options options = {.timeout_ms = 5000};
    grpc_status_code code = rpc_unary(channel, ECHO, &other.base, &tiketi__v1__event_info__descriptor, NULL,
                                      (ProtobufCMessage **)&reply, &options, &error);
    cr_assert(code == GRPC_STATUS_INVALID_ARGUMENT || code == GRPC_STATUS_OK, "got %d", code);
    if (code == GRPC_STATUS_OK)
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    cr_assert_eq(call_echo(ECHO, 5, 5000, &reply, &error), GRPC_STATUS_OK);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
}

Test(rpc_server, oversize_messages_are_refused)
{
    Tiketi__V1__CreateEventRequest big = TIKETI__V1__CREATE_EVENT_REQUEST__INIT;
    Tiketi__V1__Section section = TIKETI__V1__SECTION__INIT;
    char *name = malloc(100000);
    memset(name, 'x', 99999);
    name[99999] = '\0';
    section.name = name;
    Tiketi__V1__Section *sections[1] = {&section};
    big.sections = sections;
    big.n_sections = 1;
    Tiketi__V1__EventInfo *reply;
    struct rpc_error error;
    struct rpc_call_options options = {.timeout_ms = 5000};
    cr_assert_eq(rpc_unary(channel, ECHO, &big.base, &tiketi__v1__event_info__descriptor, NULL,
                           (ProtobufCMessage **)&reply, &options, &error),
                 GRPC_STATUS_RESOURCE_EXHAUSTED);
    free(name);
}

Test(rpc_server, server_streams)
{
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    struct rpc_client_stream *stream = rpc_client_stream_open(channel, STREAM, &request.base, NULL);
    Tiketi__V1__EventInfo *message;
    struct rpc_error error;
    for (uint64_t i = 1; i <= 3; i++) {
        cr_assert_eq(rpc_client_stream_next(stream, &tiketi__v1__event_info__descriptor,
                                            (ProtobufCMessage **)&message, &error), 1);
        cr_assert_eq(message->event_id, i);
        protobuf_c_message_free_unpacked(&message->base, NULL);
    }
    cr_assert_eq(rpc_client_stream_next(stream, &tiketi__v1__event_info__descriptor, (ProtobufCMessage **)&message,
                                        &error), 0);
    cr_assert_eq(error.code, GRPC_STATUS_OK);
    rpc_client_stream_close(stream);
}

struct async_result {
    pthread_mutex_t lock;
    uint32_t ok, failed;
};

static void on_async(void *ctx, grpc_status_code code, ProtobufCMessage *reply, const struct rpc_error *error)
{
    (void)error;
    struct async_result *r = ctx;
    pthread_mutex_lock(&r->lock);
    if (code == GRPC_STATUS_OK)
        r->ok++;
    else
        r->failed++;
    pthread_mutex_unlock(&r->lock);
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
}

static uint32_t async_done(struct async_result *r)
{
    pthread_mutex_lock(&r->lock);
    uint32_t n = r->ok + r->failed;
    pthread_mutex_unlock(&r->lock);
    return n;
}

Test(rpc_server, async_calls_complete_on_the_loop)
{
    struct rpc_client_loop *loop = rpc_client_loop_start(2);
    struct async_result result = {.lock = PTHREAD_MUTEX_INITIALIZER};
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    for (uint32_t i = 0; i < 200; i++) {
        request.event_id = i % 2 ? 5 : 3; /* LATER waits event_id % 1000 ms */
        rpc_unary_async(loop, channel, i % 2 ? LATER : ECHO, &request.base, &tiketi__v1__event_info__descriptor, NULL,
                        on_async, &result);
    }
    for (int i = 0; i < 500 && async_done(&result) < 200; i++)
        usleep(10000);
    cr_assert_eq(result.ok, 200);
    rpc_client_loop_stop(loop);
}

Test(rpc_server, health_and_metrics_over_http)
{
    Grpc__Health__V1__HealthCheckRequest request = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *reply;
    struct rpc_error error;
    struct rpc_call_options options = {.timeout_ms = 5000};
    cr_assert_eq(rpc_unary(channel, "/grpc.health.v1.Health/Check", &request.base,
                           &grpc__health__v1__health_check_response__descriptor, NULL, (ProtobufCMessage **)&reply,
                           &options, &error),
                 GRPC_STATUS_OK);
    cr_assert_eq(reply->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    request.service = "no.such.Service";
    cr_assert_eq(rpc_unary(channel, "/grpc.health.v1.Health/Check", &request.base,
                           &grpc__health__v1__health_check_response__descriptor, NULL, (ProtobufCMessage **)&reply,
                           &options, &error),
                 GRPC_STATUS_NOT_FOUND);
    struct rpc_admin_http *admin;
    char err[128];
    cr_assert_eq(rpc_admin_http_start(&admin, "127.0.0.1:0", health, err, sizeof(err)), TK_OK, "%s", err);
    char cmd[256], out[4096] = {0};
    snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/readyz; echo; "
                               "curl -s http://127.0.0.1:%d/metrics | grep -c 'tiketi_rpc_calls_total'",
             rpc_admin_http_port(admin), rpc_admin_http_port(admin));
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    pclose(p);
    cr_assert_gt(n, 0);
    cr_assert(strncmp(out, "200", 3) == 0, "readyz: %s", out);
    rpc_health_set_serving(health, false);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    pclose(p);
    cr_assert(strncmp(out, "503", 3) == 0, "not ready once NOT_SERVING: %s", out);
    rpc_admin_http_stop(admin);
    cr_assert_eq(rpc_admin_http_start(&admin, "nonsense", NULL, err, sizeof(err)), TK_ERR_INVALID);
}

Test(rpc_server, graceful_shutdown_finishes_calls_in_flight)
{
    struct rpc_client_loop *loop = rpc_client_loop_start(1);
    struct async_result result = {.lock = PTHREAD_MUTEX_INITIALIZER};
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    request.event_id = 300; /* each reply comes 300 ms later, from another thread */
    struct rpc_call_options options = {.timeout_ms = 5000};
    for (uint32_t i = 0; i < 20; i++)
        rpc_unary_async(loop, channel, LATER, &request.base, &tiketi__v1__event_info__descriptor, &options, on_async,
                        &result);
    usleep(100000);
    rpc_server_shutdown(server, 3000);
    cr_assert(!rpc_health_serving(health), "health went NOT_SERVING");
    for (int i = 0; i < 300 && async_done(&result) < 20; i++)
        usleep(10000);
    cr_assert_eq(result.ok, 20, "every call in flight finished: %u ok, %u failed", result.ok, result.failed);
    rpc_client_loop_stop(loop);
}
