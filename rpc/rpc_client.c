/* rpc_client.c — channels, unary calls (sync and async), client streams and the
 * shard router (rpc_client.h).
 *
 * A unary call is one batch: send metadata + message + close, receive metadata +
 * message + status. Synchronous calls pluck their own completion from a
 * per-thread queue (created on the thread's first call, destroyed at thread
 * exit); asynchronous calls complete on a client loop's queue and threads. The
 * state of one call lives in a struct client_call shared by both forms. */
#include "rpc_client.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc_metrics.h"
#include "rpc_trace.h"
#include "tk_assert.h"
#include "tk_clock.h"

#define CHANNEL_METHODS_MAX 64u

struct method_cache {
    const char *path; /* the caller's pointer (method paths are static strings) */
    struct rpc_method_metrics *metrics;
};

struct rpc_channel {
    grpc_channel *channel;
    char target[256];
    pthread_mutex_t lock;
    struct method_cache methods[CHANNEL_METHODS_MAX];
    _Atomic uint32_t method_count;
};

struct rpc_channel *rpc_channel_open(const char *target, const struct rpc_channel_options *options)
{
    TK_ASSERT(target != NULL);
    grpc_init();
    struct rpc_channel *channel = calloc(1, sizeof(*channel));
    TK_ASSERT(channel != NULL);
    snprintf(channel->target, sizeof(channel->target), "%s", target);
    uint32_t keepalive = options && options->keepalive_ms ? options->keepalive_ms : 10000;
    uint32_t max_message = options && options->max_message_bytes ? options->max_message_bytes : (4u << 20);
    grpc_arg args[5] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = (int)keepalive},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = 5000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, .value.integer = 1},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = (int)max_message},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, .value.integer = (int)max_message},
    };
    grpc_channel_args channel_args = {.num_args = 5, .args = args};
    grpc_channel_credentials *credentials = grpc_insecure_credentials_create();
    channel->channel = grpc_channel_create(target, credentials, &channel_args);
    grpc_channel_credentials_release(credentials);
    pthread_mutex_init(&channel->lock, NULL);
    return channel;
}

void rpc_channel_close(struct rpc_channel *channel)
{
    if (channel == NULL)
        return;
    grpc_channel_destroy(channel->channel);
    pthread_mutex_destroy(&channel->lock);
    free(channel);
    grpc_shutdown();
}

grpc_channel *rpc_channel_grpc(struct rpc_channel *channel)
{
    return channel->channel;
}

const char *rpc_channel_target(const struct rpc_channel *channel)
{
    return channel->target;
}

static struct rpc_method_metrics *channel_metrics(struct rpc_channel *channel, const char *path)
{
    uint32_t count = atomic_load_explicit(&channel->method_count, memory_order_acquire);
    for (uint32_t i = 0; i < count; i++)
        if (channel->methods[i].path == path)
            return channel->methods[i].metrics;
    struct rpc_method_metrics *metrics = rpc_metrics_method(path, "client");
    pthread_mutex_lock(&channel->lock);
    count = atomic_load(&channel->method_count);
    if (count < CHANNEL_METHODS_MAX) {
        channel->methods[count] = (struct method_cache){.path = path, .metrics = metrics};
        atomic_store_explicit(&channel->method_count, count + 1, memory_order_release);
    }
    pthread_mutex_unlock(&channel->lock);
    return metrics;
}

/* ---- one call ---- */

struct client_call {
    grpc_call *call;
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv;
    grpc_metadata_array initial;
    grpc_metadata_array trailing;
    grpc_status_code status;
    grpc_slice details;
    grpc_metadata metadata[2];
    char request_id[64];
    char traceparent[64];
    struct rpc_method_metrics *metrics;
    uint64_t started_ns;
    /* async only */
    rpc_unary_done done;
    void *ctx;
    const ProtobufCMessageDescriptor *reply_type;
    /* Released when the batch starts, acquired by the thread that takes its completion:
     * gRPC hands the call over through its own (uninstrumented) synchronization, and
     * this states it in C11 terms, so ThreadSanitizer sees it too. */
    _Atomic uint32_t started;
};

static grpc_byte_buffer *pack(const ProtobufCMessage *message)
{
    size_t size = protobuf_c_message_get_packed_size(message);
    grpc_slice slice = grpc_slice_malloc(size);
    size_t packed = protobuf_c_message_pack(message, GRPC_SLICE_START_PTR(slice));
    TK_ASSERT(packed == size);
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return buffer;
}

static gpr_timespec deadline_after(int64_t timeout_ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

/* Creates the call and starts its one batch with tag. */
static void client_call_start(struct client_call *cc, struct rpc_channel *channel, grpc_completion_queue *cq,
                              const char *method, const ProtobufCMessage *request,
                              const struct rpc_call_options *options, int64_t timeout_ms, void *tag)
{
    cc->metrics = channel_metrics(channel, method);
    cc->started_ns = tk_monotonic_ns();
    grpc_slice path = grpc_slice_from_static_string(method);
    cc->call = grpc_channel_create_call(channel->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path, NULL,
                                        deadline_after(timeout_ms), NULL);
    if (options && options->request_id && rpc_trace_request_id_valid(options->request_id))
        snprintf(cc->request_id, sizeof(cc->request_id), "%s", options->request_id);
    else
        rpc_trace_new_request_id(cc->request_id, sizeof(cc->request_id));
    rpc_trace_child(options ? options->traceparent : NULL, cc->traceparent, sizeof(cc->traceparent));
    cc->metadata[0] = (grpc_metadata){.key = grpc_slice_from_static_string("x-request-id"),
                                      .value = grpc_slice_from_static_string(cc->request_id)};
    cc->metadata[1] = (grpc_metadata){.key = grpc_slice_from_static_string("traceparent"),
                                      .value = grpc_slice_from_static_string(cc->traceparent)};
    cc->send = pack(request);
    cc->recv = NULL;
    grpc_metadata_array_init(&cc->initial);
    grpc_metadata_array_init(&cc->trailing);
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 2;
    ops[0].data.send_initial_metadata.metadata = cc->metadata;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = cc->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &cc->initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &cc->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &cc->trailing;
    ops[5].data.recv_status_on_client.status = &cc->status;
    ops[5].data.recv_status_on_client.status_details = &cc->details;
    grpc_call *call = cc->call;
    atomic_store_explicit(&cc->started, 1, memory_order_release); /* nothing of cc is touched after this */
    grpc_call_error rc = grpc_call_start_batch(call, ops, 6, tag, NULL);
    TK_ASSERT(rc == GRPC_CALL_OK); /* the ops are built here: an error is a bug */
}

/* The error a failed call carried: the trailer if present, else the details. */
static void error_from_call(struct client_call *cc, struct rpc_error *error)
{
    memset(error, 0, sizeof(*error));
    error->code = cc->status;
    size_t details = GRPC_SLICE_LENGTH(cc->details);
    if (details >= sizeof(error->message))
        details = sizeof(error->message) - 1;
    memcpy(error->message, GRPC_SLICE_START_PTR(cc->details), details);
    for (size_t i = 0; i < cc->trailing.count; i++) {
        const grpc_metadata *md = &cc->trailing.metadata[i];
        if (grpc_slice_str_cmp(md->key, RPC_ERROR_TRAILER) == 0)
            rpc_error_decode(error, GRPC_SLICE_START_PTR(md->value), GRPC_SLICE_LENGTH(md->value));
    }
    error->code = cc->status;
}

/* Decodes the outcome and frees the call's gRPC state. */
static grpc_status_code client_call_finish(struct client_call *cc, const ProtobufCMessageDescriptor *reply_type,
                                           ProtobufCAllocator *allocator, ProtobufCMessage **reply,
                                           struct rpc_error *error)
{
    *reply = NULL;
    grpc_status_code code = cc->status;
    if (code == GRPC_STATUS_OK) {
        if (cc->recv == NULL) {
            code = GRPC_STATUS_INTERNAL;
        } else {
            grpc_byte_buffer_reader reader;
            grpc_byte_buffer_reader_init(&reader, cc->recv);
            grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
            grpc_byte_buffer_reader_destroy(&reader);
            *reply = protobuf_c_message_unpack(reply_type, allocator, GRPC_SLICE_LENGTH(slice),
                                               GRPC_SLICE_START_PTR(slice));
            grpc_slice_unref(slice);
            if (*reply == NULL)
                code = GRPC_STATUS_INTERNAL;
        }
        memset(error, 0, sizeof(*error));
        error->code = code;
        if (code != GRPC_STATUS_OK)
            snprintf(error->message, sizeof(error->message), "the reply is not a valid %s", reply_type->name);
    } else {
        error_from_call(cc, error);
    }
    rpc_metrics_record(cc->metrics, code, tk_monotonic_ns() - cc->started_ns);
    grpc_byte_buffer_destroy(cc->send);
    if (cc->recv != NULL)
        grpc_byte_buffer_destroy(cc->recv);
    grpc_metadata_array_destroy(&cc->initial);
    grpc_metadata_array_destroy(&cc->trailing);
    grpc_slice_unref(cc->details);
    grpc_call_unref(cc->call);
    return code;
}

/* ---- synchronous ---- */

static pthread_key_t pluck_key;
static pthread_once_t pluck_once = PTHREAD_ONCE_INIT;

static void pluck_destroy(void *arg)
{
    grpc_completion_queue *cq = arg;
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
}

static void pluck_key_create(void)
{
    int rc = pthread_key_create(&pluck_key, pluck_destroy);
    TK_ASSERT(rc == 0);
}

static grpc_completion_queue *thread_pluck_queue(void)
{
    pthread_once(&pluck_once, pluck_key_create);
    grpc_completion_queue *cq = pthread_getspecific(pluck_key);
    if (cq == NULL) {
        cq = grpc_completion_queue_create_for_pluck(NULL);
        pthread_setspecific(pluck_key, cq);
    }
    return cq;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

grpc_status_code rpc_unary(struct rpc_channel *channel, const char *method, const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *reply_type, ProtobufCAllocator *allocator,
                           ProtobufCMessage **reply, const struct rpc_call_options *options, struct rpc_error *error)
{
    TK_ASSERT(channel != NULL && method != NULL && request != NULL && reply != NULL && error != NULL);
    int64_t timeout_ms = options && options->timeout_ms ? options->timeout_ms : 5000;
    uint64_t give_up_ns = tk_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
    uint32_t retries = options && options->idempotent ? (options->retries ? options->retries : 3) : 0;
    int64_t backoff_ms = 25;
    grpc_completion_queue *cq = thread_pluck_queue();
    for (uint32_t attempt = 0;; attempt++) {
        struct client_call cc;
        memset(&cc, 0, sizeof(cc));
        int64_t left_ms = (int64_t)(give_up_ns - tk_monotonic_ns()) / 1000000;
        client_call_start(&cc, channel, cq, method, request, options, left_ms > 0 ? left_ms : 1, &cc);
        grpc_event event = grpc_completion_queue_pluck(cq, &cc, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        TK_ASSERT(event.type == GRPC_OP_COMPLETE);
        grpc_status_code code = client_call_finish(&cc, reply_type, allocator, reply, error);
        bool retry = code == GRPC_STATUS_UNAVAILABLE && attempt < retries &&
                     tk_monotonic_ns() + (uint64_t)backoff_ms * 1000000u < give_up_ns;
        if (!retry)
            return code;
        sleep_ms(backoff_ms);
        backoff_ms *= 2;
    }
}

/* ---- asynchronous ---- */

#define CLIENT_LOOP_THREADS_MAX 8u

struct rpc_client_loop {
    grpc_completion_queue *cq;
    pthread_t threads[CLIENT_LOOP_THREADS_MAX];
    uint32_t thread_count;
};

static void *client_loop_thread(void *arg)
{
    struct rpc_client_loop *loop = arg;
    for (;;) {
        grpc_event event = grpc_completion_queue_next(loop->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (event.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
        struct client_call *cc = event.tag;
        TK_ASSERT(atomic_load_explicit(&cc->started, memory_order_acquire) == 1);
        ProtobufCMessage *reply;
        struct rpc_error error;
        grpc_status_code code = client_call_finish(cc, cc->reply_type, NULL, &reply, &error);
        cc->done(cc->ctx, code, reply, &error);
        free(cc);
    }
}

struct rpc_client_loop *rpc_client_loop_start(uint32_t threads)
{
    TK_ASSERT(threads >= 1 && threads <= CLIENT_LOOP_THREADS_MAX);
    grpc_init();
    struct rpc_client_loop *loop = calloc(1, sizeof(*loop));
    TK_ASSERT(loop != NULL);
    loop->cq = grpc_completion_queue_create_for_next(NULL);
    loop->thread_count = threads;
    for (uint32_t i = 0; i < threads; i++) {
        int rc = pthread_create(&loop->threads[i], NULL, client_loop_thread, loop);
        TK_ASSERT(rc == 0);
    }
    return loop;
}

/* Callers must have no calls in flight (their callbacks run before this returns). */
void rpc_client_loop_stop(struct rpc_client_loop *loop)
{
    if (loop == NULL)
        return;
    grpc_completion_queue_shutdown(loop->cq);
    for (uint32_t i = 0; i < loop->thread_count; i++)
        pthread_join(loop->threads[i], NULL);
    grpc_completion_queue_destroy(loop->cq);
    free(loop);
    grpc_shutdown();
}

void rpc_unary_async(struct rpc_client_loop *loop, struct rpc_channel *channel, const char *method,
                     const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
                     const struct rpc_call_options *options, rpc_unary_done done, void *ctx)
{
    TK_ASSERT(loop != NULL && channel != NULL && done != NULL);
    struct client_call *cc = calloc(1, sizeof(*cc));
    TK_ASSERT(cc != NULL);
    cc->done = done;
    cc->ctx = ctx;
    cc->reply_type = reply_type;
    int64_t timeout_ms = options && options->timeout_ms ? options->timeout_ms : 5000;
    client_call_start(cc, channel, loop->cq, method, request, options, timeout_ms, cc);
}
