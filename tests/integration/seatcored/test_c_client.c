/* test_c_client.c — seatcored driven by our own C client (rpc/rpc_client.c)
 * over loopback: every SeatCore method once, through the same code the domain
 * services use (sync and async calls, the shard router, client streams), with
 * the error detail decoded from the trailer. The Python suite next to this file
 * does the same with an independent gRPC implementation. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rpc_client.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "tk_test_support.h"

#define SVC "/tiketi.v1.SeatCore/"

static pid_t daemon_pid;
static char target[64];
static char dir[256];
static struct rpc_channel *channel;

static int free_port(void)
{
    FILE *p = popen(TK_SOURCE_DIR "/tools/free-port", "r");
    int port = 0;
    if (p == NULL || fscanf(p, "%d", &port) != 1)
        port = 0;
    if (p != NULL)
        pclose(p);
    return port;
}

static void setup(void)
{
    tk_test_tempdir(dir, sizeof(dir), "seatcored-c");
    char key_path[300], listen[64], metrics[64], cmd[1024];
    snprintf(key_path, sizeof(key_path), "%s/admission.key", dir);
    snprintf(cmd, sizeof(cmd), "head -c 32 /dev/urandom > '%s'", key_path);
    cr_assert_eq(system(cmd), 0);
    int port = free_port(), metrics_port = free_port();
    cr_assert_gt(port, 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", metrics_port);
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    daemon_pid = fork();
    if (daemon_pid == 0) {
        unsetenv("SEATCORED_SHARDS");
        char data[300];
        snprintf(data, sizeof(data), "%s/data", dir);
        execl(TK_SEATCORED_BIN, "seatcored", "--listen", listen, "--metrics-listen", metrics, "--data-dir", data,
              "--token-key-file", key_path, "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    channel = rpc_channel_open(target, NULL);
    /* Ready when GetEvent answers at all (NOT_FOUND is an answer). */
    for (int i = 0; i < 100; i++) {
        Tiketi__V1__EventRef ref = TIKETI__V1__EVENT_REF__INIT;
        ProtobufCMessage *reply;
        struct rpc_error error;
        struct rpc_call_options options = {.timeout_ms = 200};
        if (rpc_unary(channel, SVC "GetEvent", &ref.base, &tiketi__v1__event_info__descriptor, NULL, &reply, &options,
                      &error) == GRPC_STATUS_NOT_FOUND)
            return;
        usleep(100000);
    }
    cr_assert_fail("seatcored did not start");
}

static void teardown(void)
{
    rpc_channel_close(channel);
    kill(daemon_pid, SIGTERM);
    int status;
    waitpid(daemon_pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "seatcored exits 0 on SIGTERM");
    tk_test_rmtree(dir);
}

TestSuite(seatcored_c_client, .init = setup, .fini = teardown, .timeout = 60);

static grpc_status_code call(const char *method, const ProtobufCMessage *request,
                             const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                             struct rpc_error *error)
{
    struct rpc_call_options options = {.timeout_ms = 5000, .idempotent = true};
    return rpc_unary(channel, method, request, reply_type, NULL, reply, &options, error);
}

static uint64_t create_event(uint64_t id, bool queue)
{
    Tiketi__V1__Section section = TIKETI__V1__SECTION__INIT;
    section.name = "Stalls";
    section.rows = 4;
    section.seats_per_row = 10;
    section.price_cents = 2500;
    Tiketi__V1__Section *sections[1] = {&section};
    Tiketi__V1__QueueSettings settings = TIKETI__V1__QUEUE_SETTINGS__INIT;
    settings.enabled = queue;
    settings.admit_per_s = 100;
    settings.max_active = 100;
    Tiketi__V1__CreateEventRequest request = TIKETI__V1__CREATE_EVENT_REQUEST__INIT;
    request.event_id = id;
    request.sections = sections;
    request.n_sections = 1;
    request.queue = &settings;
    Tiketi__V1__EventInfo *info;
    struct rpc_error error;
    cr_assert_eq(call(SVC "CreateEvent", &request.base, &tiketi__v1__event_info__descriptor,
                      (ProtobufCMessage **)&info, &error),
                 GRPC_STATUS_OK, "CreateEvent: %s", error.message);
    cr_assert_eq(info->capacity, 40);
    protobuf_c_message_free_unpacked(&info->base, NULL);
    return id;
}

static Tiketi__V1__HoldReply *hold(uint64_t event, uint64_t user, uint32_t seat, grpc_status_code want,
                                   struct rpc_error *error)
{
    uint32_t seats[1] = {seat};
    Tiketi__V1__HoldRequest request = TIKETI__V1__HOLD_REQUEST__INIT;
    request.event_id = event;
    request.user_id = user;
    request.seats = seats;
    request.n_seats = 1;
    Tiketi__V1__HoldReply *reply = NULL;
    cr_assert_eq(call(SVC "Hold", &request.base, &tiketi__v1__hold_reply__descriptor, (ProtobufCMessage **)&reply,
                      error),
                 want, "Hold: %s", error->message);
    return reply;
}

Test(seatcored_c_client, events_holds_and_sales)
{
    uint64_t event = create_event(101, false);
    struct rpc_error error;
    Tiketi__V1__HoldReply *a = hold(event, 1, 5, GRPC_STATUS_OK, &error);
    cr_assert_eq(a->n_seats, 1);
    hold(event, 2, 5, GRPC_STATUS_ABORTED, &error);
    cr_assert_str_eq(error.name, "seat_unavailable");
    cr_assert_eq(error.unavailable_count, 1);
    cr_assert_eq(error.unavailable[0], 5);
    Tiketi__V1__HoldBestRequest best = TIKETI__V1__HOLD_BEST_REQUEST__INIT;
    best.event_id = event;
    best.user_id = 3;
    best.count = 3;
    best.section = -1;
    Tiketi__V1__HoldReply *b;
    cr_assert_eq(call(SVC "HoldBestAvailable", &best.base, &tiketi__v1__hold_reply__descriptor,
                      (ProtobufCMessage **)&b, &error),
                 GRPC_STATUS_OK);
    cr_assert_eq(b->n_seats, 3);
    cr_assert_eq(b->seats[1], b->seats[0] + 1, "adjacent");
    Tiketi__V1__HoldRef ref = TIKETI__V1__HOLD_REF__INIT;
    ref.event_id = event;
    ref.user_id = 1;
    ref.hold_id = a->hold_id;
    Tiketi__V1__HoldReply *got;
    cr_assert_eq(call(SVC "GetHold", &ref.base, &tiketi__v1__hold_reply__descriptor, (ProtobufCMessage **)&got,
                      &error),
                 GRPC_STATUS_OK);
    protobuf_c_message_free_unpacked(&got->base, NULL);
    Tiketi__V1__ConfirmRequest confirm = TIKETI__V1__CONFIRM_REQUEST__INIT;
    confirm.event_id = event;
    confirm.user_id = 1;
    confirm.hold_id = a->hold_id;
    confirm.idempotency_key = "pay-1";
    cr_assert_eq(call(SVC "Confirm", &confirm.base, &tiketi__v1__hold_reply__descriptor, (ProtobufCMessage **)&got,
                      &error),
                 GRPC_STATUS_OK);
    protobuf_c_message_free_unpacked(&got->base, NULL);
    ref.user_id = 3;
    ref.hold_id = b->hold_id;
    ProtobufCMessage *empty;
    cr_assert_eq(call(SVC "Release", &ref.base, &tiketi__v1__empty__descriptor, &empty, &error), GRPC_STATUS_OK);
    protobuf_c_message_free_unpacked(empty, NULL);
    Tiketi__V1__ReturnSeatRequest ret = TIKETI__V1__RETURN_SEAT_REQUEST__INIT;
    ret.event_id = event;
    ret.user_id = 1;
    ret.seat = 5;
    cr_assert_eq(call(SVC "ReturnSeat", &ret.base, &tiketi__v1__empty__descriptor, &empty, &error), GRPC_STATUS_OK);
    protobuf_c_message_free_unpacked(empty, NULL);
    Tiketi__V1__EventRef event_ref = TIKETI__V1__EVENT_REF__INIT;
    event_ref.event_id = event;
    Tiketi__V1__Availability *availability;
    cr_assert_eq(call(SVC "GetAvailability", &event_ref.base, &tiketi__v1__availability__descriptor,
                      (ProtobufCMessage **)&availability, &error),
                 GRPC_STATUS_OK);
    cr_assert_eq(availability->free, 40, "everything went back on sale");
    protobuf_c_message_free_unpacked(&availability->base, NULL);
    Tiketi__V1__EventInfo *info;
    cr_assert_eq(call(SVC "CloseEvent", &event_ref.base, &tiketi__v1__event_info__descriptor,
                      (ProtobufCMessage **)&info, &error),
                 GRPC_STATUS_OK);
    cr_assert_eq(info->state, TIKETI__V1__EVENT_STATE__EVENT_CLOSED);
    protobuf_c_message_free_unpacked(&info->base, NULL);
    cr_assert_eq(call(SVC "CancelEvent", &event_ref.base, &tiketi__v1__event_info__descriptor,
                      (ProtobufCMessage **)&info, &error),
                 GRPC_STATUS_OK);
    protobuf_c_message_free_unpacked(&info->base, NULL);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

Test(seatcored_c_client, waiting_room_and_feed)
{
    uint64_t event = create_event(102, true);
    Tiketi__V1__QueueRequest request = TIKETI__V1__QUEUE_REQUEST__INIT;
    request.event_id = event;
    request.user_id = 7;
    Tiketi__V1__QueueView *view;
    struct rpc_error error;
    cr_assert_eq(call(SVC "QueueJoin", &request.base, &tiketi__v1__queue_view__descriptor,
                      (ProtobufCMessage **)&view, &error),
                 GRPC_STATUS_OK, "%s", error.message);
    protobuf_c_message_free_unpacked(&view->base, NULL);
    ProtobufCMessage *empty;
    cr_assert_eq(call(SVC "QueueHeartbeat", &request.base, &tiketi__v1__empty__descriptor, &empty, &error),
                 GRPC_STATUS_OK);
    protobuf_c_message_free_unpacked(empty, NULL);
    /* WatchQueue ends with the admission (100 a second: at once). */
    struct rpc_client_stream *stream = rpc_client_stream_open(channel, SVC "WatchQueue", &request.base, NULL);
    int got;
    bool admitted = false;
    for (int i = 0; i < 10 && (got = rpc_client_stream_next(stream, &tiketi__v1__queue_view__descriptor,
                                                             (ProtobufCMessage **)&view, &error)) == 1;
         i++) {
        admitted = view->state == TIKETI__V1__QUEUE_STATE__QUEUE_ADMITTED && strlen(view->admission_token) > 20;
        protobuf_c_message_free_unpacked(&view->base, NULL);
    }
    rpc_client_stream_close(stream);
    cr_assert(admitted, "the stream delivered the admission");
    Tiketi__V1__EventRef ref = TIKETI__V1__EVENT_REF__INIT;
    ref.event_id = event;
    Tiketi__V1__QueueInfo *info;
    cr_assert_eq(call(SVC "GetQueueInfo", &ref.base, &tiketi__v1__queue_info__descriptor,
                      (ProtobufCMessage **)&info, &error),
                 GRPC_STATUS_OK);
    cr_assert_eq(info->admissions, 1);
    protobuf_c_message_free_unpacked(&info->base, NULL);
    Tiketi__V1__ListAdmissionsRequest list = TIKETI__V1__LIST_ADMISSIONS_REQUEST__INIT;
    list.event_id = event;
    Tiketi__V1__ListAdmissionsReply *admissions;
    cr_assert_eq(call(SVC "ListAdmissions", &list.base, &tiketi__v1__list_admissions_reply__descriptor,
                      (ProtobufCMessage **)&admissions, &error),
                 GRPC_STATUS_OK);
    cr_assert_eq(admissions->n_admissions, 1);
    cr_assert_eq(admissions->admissions[0]->user_id, 7);
    protobuf_c_message_free_unpacked(&admissions->base, NULL);
    cr_assert_eq(call(SVC "QueueLeave", &request.base, &tiketi__v1__empty__descriptor, &empty, &error),
                 GRPC_STATUS_OK);
    protobuf_c_message_free_unpacked(empty, NULL);
}

struct batch_done {
    pthread_mutex_t lock;
    int done;
    uint32_t ok_results;
};

static void on_batch(void *ctx, grpc_status_code code, ProtobufCMessage *reply, const struct rpc_error *error)
{
    (void)error;
    struct batch_done *d = ctx;
    Tiketi__V1__BatchReply *batch = (Tiketi__V1__BatchReply *)reply;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; code == GRPC_STATUS_OK && i < batch->n_results; i++)
        d->ok_results += batch->results[i]->code == 0;
    d->done++;
    pthread_mutex_unlock(&d->lock);
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
}

Test(seatcored_c_client, async_batches_and_the_router)
{
    uint64_t event = create_event(103, false);
    const char *shards[1] = {target};
    struct rpc_router *router = rpc_router_create(shards, 1, NULL);
    struct rpc_client_loop *loop = rpc_client_loop_start(1);
    struct batch_done done = {.lock = PTHREAD_MUTEX_INITIALIZER};
    Tiketi__V1__HoldRequest holds[8];
    Tiketi__V1__BatchOp ops[8];
    Tiketi__V1__BatchOp *list[8];
    uint32_t seats[8];
    for (int b = 0; b < 5; b++) {
        for (int i = 0; i < 8; i++) {
            tiketi__v1__hold_request__init(&holds[i]);
            seats[i] = (uint32_t)(b * 8 + i);
            holds[i].event_id = event;
            holds[i].user_id = 10 + (uint64_t)i;
            holds[i].seats = &seats[i];
            holds[i].n_seats = 1;
            tiketi__v1__batch_op__init(&ops[i]);
            ops[i].op_case = TIKETI__V1__BATCH_OP__OP_HOLD;
            ops[i].hold = &holds[i];
            list[i] = &ops[i];
        }
        Tiketi__V1__BatchRequest request = TIKETI__V1__BATCH_REQUEST__INIT;
        request.ops = list;
        request.n_ops = 8;
        rpc_unary_async(loop, rpc_router_channel(router, event), SVC "Batch", &request.base,
                        &tiketi__v1__batch_reply__descriptor, NULL, on_batch, &done);
    }
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&done.lock);
        int n = done.done;
        pthread_mutex_unlock(&done.lock);
        if (n == 5)
            break;
        usleep(10000);
    }
    cr_assert_eq(done.done, 5);
    cr_assert_eq(done.ok_results, 40, "5 batches of 8 holds: every seat once");
    rpc_client_loop_stop(loop);
    rpc_router_destroy(router);
}
