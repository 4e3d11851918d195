/* rpc_server.c — the gRPC server loop (rpc_server.h).
 *
 * Call slots: calls_max rpc_call structs, each with its arena, allocated at
 * create. A slot is "armed" when handed to gRPC with request_registered_call (one
 * method) or request_call (generic: any method not registered, answered
 * UNIMPLEMENTED). When a call arrives its slot is re-armed from the pool, the
 * request decoded into the arena, and the handler run on the completion-queue
 * thread. Every batch started on a call holds a reference; the slot goes back to
 * the pool when the last batch completes after the call was answered.
 *
 * Tags: every completion carries a struct rpc_tag embedded in the call (or the
 * server, for shutdown), naming what completed. The pool and the arming counts
 * are under one mutex: a few instructions per call, off the engine's hot path.
 *
 * Trade-off: handlers run on completion-queue threads, so a slow handler holds a
 * thread; handlers here never block (the engine answers through callbacks).
 *
 * Replies from threads that must not spend time on gRPC (the WAL writer: every
 * microsecond it spends answering delays the next fdatasync) go through the reply
 * thread: the handler packs the reply on its own thread (rpc_reply_prepare), the
 * late thread pushes the call onto a lock-free stack (one CAS, plus a futex wake
 * when the stack was empty) and the reply thread starts the batches, which is where
 * gRPC also writes the socket. One thread rather than the completion-queue threads:
 * those sleep inside grpc_completion_queue_next, and the C core (1.51) has no
 * public C call that posts a tag onto a completion queue (grpc_alarm is C++ only),
 * so waking them would take a call of our own per hand-off. */
#include "rpc_server.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rpc_log.h"
#include "rpc_metrics.h"
#include "rpc_trace.h"
#include "tk_assert.h"
#include "tk_clock.h"

enum tag_kind { TAG_REQUEST, TAG_FINISH, TAG_CLOSE, TAG_SEND, TAG_SHUTDOWN };

struct rpc_tag {
    enum tag_kind kind;
    struct rpc_call *call;
};

#define METHOD_GENERIC UINT32_MAX
#define GENERIC_SLOTS 4u

struct method_entry {
    struct rpc_method method;
    void *service_ctx;
    void *handle; /* from grpc_server_register_method */
    struct rpc_method_metrics *metrics;
    uint32_t armed;
};

struct rpc_call {
    struct rpc_server *server;
    uint32_t method_index; /* METHOD_GENERIC for unregistered methods */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_metadata;
    grpc_call_details details; /* generic slots only */
    grpc_byte_buffer *payload;
    struct rpc_arena arena;
    struct rpc_tag tag_request, tag_finish, tag_close, tag_send;
    _Atomic int refs;
    _Atomic bool answered;
    _Atomic bool closed;
    int cancelled_flag; /* written by RECV_CLOSE_ON_SERVER */
    grpc_status_code code;
    uint64_t started_ns;
    char request_id[RPC_REQUEST_ID_BYTES];
    char traceparent[RPC_TRACEPARENT_BYTES];
    /* Kept alive until the batches that send them complete. */
    grpc_byte_buffer *send_payload;
    grpc_byte_buffer *reply_payload;
    grpc_slice status_details;
    bool has_status_details;
    grpc_metadata trailer;
    bool has_trailer;
    bool reply_prepared; /* reply_payload holds the packed reply, not sent yet */
    uint8_t trailer_bytes[512];
    rpc_stream_sent_fn stream_sent;
    void *stream_sent_ctx;
    struct rpc_call *next_free;
    struct rpc_call *next_reply; /* on the reply thread's stack (rpc_reply_prepared_async) */
};

struct rpc_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t threads[RPC_CQ_THREADS_MAX];
    uint32_t thread_count;
    struct method_entry methods[RPC_METHODS_MAX];
    uint32_t method_count;
    uint32_t generic_armed;
    struct rpc_call *calls;
    uint32_t calls_max;
    struct rpc_call *free_calls;
    uint32_t slots_per_method;
    pthread_mutex_t lock;
    pthread_cond_t shutdown_cond;
    bool shutdown_done;
    struct rpc_tag tag_shutdown;
    _Atomic bool shutting_down;
    _Atomic bool stop_requested;
    _Atomic uint32_t calls_in_use; /* slots out of the pool: armed or being handled */
    bool started;
    int port;
    void (*on_shutdown)(void *ctx);
    void *on_shutdown_ctx;
    struct rpc_method_metrics *unimplemented_metrics;
    /* The reply thread: a Treiber stack of calls whose prepared reply it sends, and a
     * futex word bumped when the stack goes from empty to not empty. */
    pthread_t reply_thread;
    _Atomic(struct rpc_call *) reply_stack;
    _Atomic uint32_t reply_seq;
    _Atomic bool reply_stop;
};

static void call_unref(struct rpc_call *call);

/* ---- the pool and arming (under server->lock) ---- */

static struct rpc_call *pool_take(struct rpc_server *server)
{
    struct rpc_call *call = server->free_calls;
    if (call != NULL) {
        server->free_calls = call->next_free;
        call->next_free = NULL;
        atomic_fetch_add(&server->calls_in_use, 1);
    }
    return call;
}

static void call_prepare(struct rpc_call *call, uint32_t method_index)
{
    TK_ASSERT(atomic_load(&call->refs) == 0);
    call->method_index = method_index;
    call->call = NULL;
    call->payload = NULL;
    grpc_metadata_array_init(&call->request_metadata);
    grpc_call_details_init(&call->details);
    atomic_store(&call->answered, false);
    atomic_store(&call->closed, false);
    call->cancelled_flag = 0;
    call->code = GRPC_STATUS_OK;
    call->request_id[0] = call->traceparent[0] = '\0';
    call->send_payload = call->reply_payload = NULL;
    call->has_status_details = call->has_trailer = false;
    call->stream_sent = NULL;
    call->reply_prepared = false;
    call->next_reply = NULL;
}

/* Hands one slot to gRPC for a method (or the generic slots). Caller holds the lock. */
static bool arm_locked(struct rpc_server *server, uint32_t method_index)
{
    if (atomic_load(&server->shutting_down))
        return false;
    struct rpc_call *call = pool_take(server);
    if (call == NULL)
        return false;
    call_prepare(call, method_index);
    atomic_store(&call->refs, 1);
    grpc_call_error rc;
    if (method_index == METHOD_GENERIC) {
        rc = grpc_server_request_call(server->server, &call->call, &call->details, &call->request_metadata,
                                      server->cq, server->cq, &call->tag_request);
        server->generic_armed++;
    } else {
        struct method_entry *m = &server->methods[method_index];
        rc = grpc_server_request_registered_call(server->server, m->handle, &call->call, &call->deadline,
                                                 &call->request_metadata, &call->payload, server->cq, server->cq,
                                                 &call->tag_request);
        m->armed++;
    }
    TK_ASSERT(rc == GRPC_CALL_OK);
    return true;
}

/* Tops every method back up to its armed target, as far as the pool allows. */
static void rearm_locked(struct rpc_server *server)
{
    for (uint32_t i = 0; i < server->method_count; i++)
        while (server->methods[i].armed < server->slots_per_method && arm_locked(server, i)) {
        }
    while (server->generic_armed < GENERIC_SLOTS && arm_locked(server, METHOD_GENERIC)) {
    }
}

static void call_release(struct rpc_call *call)
{
    struct rpc_server *server = call->server;
    if (call->call != NULL)
        grpc_call_unref(call->call);
    grpc_metadata_array_destroy(&call->request_metadata);
    grpc_call_details_destroy(&call->details);
    if (call->payload != NULL)
        grpc_byte_buffer_destroy(call->payload);
    if (call->send_payload != NULL)
        grpc_byte_buffer_destroy(call->send_payload);
    if (call->reply_payload != NULL)
        grpc_byte_buffer_destroy(call->reply_payload);
    if (call->has_status_details)
        grpc_slice_unref(call->status_details);
    if (call->has_trailer)
        grpc_slice_unref(call->trailer.value);
    rpc_arena_reset(&call->arena);
    pthread_mutex_lock(&server->lock);
    call->next_free = server->free_calls;
    server->free_calls = call;
    atomic_fetch_sub(&server->calls_in_use, 1);
    rearm_locked(server);
    pthread_mutex_unlock(&server->lock);
}

/* After shutdown every armed slot has come back; what is still out is a call a
 * handler has not answered yet (a reply promised by another thread). Freeing it
 * under that thread would be a use after free, so wait, and if it never comes,
 * leave the server allocated rather than crash: a bounded leak at exit. */
static bool wait_handlers_done(struct rpc_server *server, uint32_t ms)
{
    for (uint32_t waited = 0; atomic_load(&server->calls_in_use) != 0; waited += 10) {
        if (waited >= ms)
            return false;
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return true;
}

static void call_ref(struct rpc_call *call)
{
    int before = atomic_fetch_add(&call->refs, 1);
    TK_ASSERT(before > 0);
}

static void call_unref(struct rpc_call *call)
{
    int before = atomic_fetch_sub(&call->refs, 1);
    TK_ASSERT(before > 0);
    if (before == 1)
        call_release(call);
}

/* ---- answering ---- */

static void start_batch(struct rpc_call *call, grpc_op *ops, size_t count, struct rpc_tag *tag)
{
    /* Every field of the call is touched before call_ref: that reference is what the
     * completion (on the cq thread, see on_event) synchronizes with, so nothing here may
     * read the slot after it (the slot can be finished and reused from then on). */
    grpc_call *grpc = call->call;
    call_ref(call);
    grpc_call_error rc = grpc_call_start_batch(grpc, ops, count, tag, NULL);
    TK_ASSERT(rc == GRPC_CALL_OK); /* ops are built here, so any error is a bug */
}

static grpc_byte_buffer *pack_message(const ProtobufCMessage *message)
{
    size_t size = protobuf_c_message_get_packed_size(message);
    grpc_slice slice = grpc_slice_malloc(size);
    size_t packed = protobuf_c_message_pack(message, GRPC_SLICE_START_PTR(slice));
    TK_ASSERT(packed == size);
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return buffer;
}

static void record_metrics(struct rpc_call *call)
{
    struct rpc_server *server = call->server;
    struct rpc_method_metrics *metrics = call->method_index == METHOD_GENERIC
                                             ? server->unimplemented_metrics
                                             : server->methods[call->method_index].metrics;
    rpc_metrics_record(metrics, call->code, tk_monotonic_ns() - call->started_ns);
    if (call->code == GRPC_STATUS_INTERNAL || call->code == GRPC_STATUS_UNKNOWN ||
        call->code == GRPC_STATUS_DEADLINE_EXCEEDED) {
        char fields[256];
        snprintf(fields, sizeof(fields), "\"request_id\":\"%s\",\"code\":\"%s\"", call->request_id,
                 rpc_code_name(call->code));
        rpc_log(RPC_LOG_WARN, fields, "call to %s failed", rpc_call_method(call));
    }
}

/* Fills the status ops (and the error trailer) of a final batch. */
static size_t status_ops(struct rpc_call *call, grpc_op *ops, const struct rpc_error *error)
{
    size_t n = 0;
    grpc_op *op = &ops[n++];
    memset(op, 0, sizeof(*op));
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    call->code = error != NULL ? error->code : GRPC_STATUS_OK;
    op->data.send_status_from_server.status = call->code;
    if (error != NULL) {
        call->status_details = grpc_slice_from_copied_string(error->message);
        call->has_status_details = true;
        op->data.send_status_from_server.status_details = &call->status_details;
        size_t len = rpc_error_encode(error, call->trailer_bytes, sizeof(call->trailer_bytes));
        if (len > 0) {
            call->trailer.key = grpc_slice_from_static_string(RPC_ERROR_TRAILER);
            call->trailer.value = grpc_slice_from_copied_buffer((const char *)call->trailer_bytes, len);
            call->has_trailer = true;
            op->data.send_status_from_server.trailing_metadata_count = 1;
            op->data.send_status_from_server.trailing_metadata = &call->trailer;
        }
    }
    return n;
}

/* Sends the final batch: payload (owned by the call from now on) or error. */
static void answer_payload(struct rpc_call *call, grpc_byte_buffer *payload, const struct rpc_error *error)
{
    TK_ASSERT(call != NULL);
    TK_ASSERT((payload == NULL) != (error == NULL));
    bool was = atomic_exchange(&call->answered, true);
    TK_ASSERT(!was); /* every call is answered exactly once */
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (payload != NULL) {
        call->reply_payload = payload;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = payload;
    }
    n += status_ops(call, &ops[n], error);
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &call->cancelled_flag;
    start_batch(call, ops, n, &call->tag_finish);
}

static void answer(struct rpc_call *call, const ProtobufCMessage *reply, const struct rpc_error *error)
{
    TK_ASSERT(!call->reply_prepared || error != NULL); /* a prepared reply is sent with rpc_reply_prepared */
    /* A prepared reply that an error replaced stays in reply_payload, freed with the slot. */
    answer_payload(call, reply != NULL ? pack_message(reply) : NULL, error);
}

void rpc_reply(struct rpc_call *call, const ProtobufCMessage *reply)
{
    TK_ASSERT(reply != NULL);
    answer(call, reply, NULL);
}

void rpc_reply_prepare(struct rpc_call *call, const ProtobufCMessage *reply)
{
    TK_ASSERT(call != NULL && reply != NULL);
    TK_ASSERT(!call->reply_prepared && call->reply_payload == NULL);
    TK_ASSERT(!atomic_load_explicit(&call->answered, memory_order_relaxed));
    call->reply_payload = pack_message(reply);
    call->reply_prepared = true;
}

void rpc_reply_prepared(struct rpc_call *call)
{
    TK_ASSERT(call != NULL && call->reply_prepared);
    grpc_byte_buffer *payload = call->reply_payload;
    TK_ASSERT(payload != NULL);
    call->reply_prepared = false;
    answer_payload(call, payload, NULL);
}

static void reply_futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void rpc_reply_prepared_async(struct rpc_call *call)
{
    TK_ASSERT(call != NULL && call->reply_prepared);
    struct rpc_server *server = call->server;
    TK_ASSERT(server->started);
    /* Release: the reply thread's acquire exchange then sees the call's fields as the
     * handler and this thread left them. */
    struct rpc_call *head = atomic_load_explicit(&server->reply_stack, memory_order_relaxed);
    do {
        call->next_reply = head;
    } while (!atomic_compare_exchange_weak_explicit(&server->reply_stack, &head, call, memory_order_release,
                                                    memory_order_relaxed));
    /* Only the push onto an empty stack can find the reply thread asleep (it sleeps
     * only after taking an empty stack), so only that one bumps the word and wakes it. */
    if (head == NULL) {
        atomic_fetch_add_explicit(&server->reply_seq, 1, memory_order_seq_cst);
        reply_futex_wake(&server->reply_seq);
    }
}

/* Takes the whole stack and sends its replies oldest first. Returns how many. */
static uint32_t reply_thread_round(struct rpc_server *server)
{
    struct rpc_call *list = atomic_exchange_explicit(&server->reply_stack, NULL, memory_order_acquire);
    struct rpc_call *fifo = NULL;
    uint32_t count = 0;
    while (list != NULL) { /* bounded: at most calls_max calls are out of the pool */
        struct rpc_call *next = list->next_reply;
        list->next_reply = fifo;
        fifo = list;
        list = next;
        count++;
        TK_ASSERT(count <= server->calls_max);
    }
    while (fifo != NULL) {
        struct rpc_call *next = fifo->next_reply; /* read first: the slot may be reused once sent */
        fifo->next_reply = NULL;
        rpc_reply_prepared(fifo);
        fifo = next;
    }
    return count;
}

static void *reply_thread_main(void *arg)
{
    struct rpc_server *server = arg;
    TK_ASSERT(server != NULL && server->started);
    /* Ends when destroy asks, which it does only once every call was answered. */
    for (;;) {
        uint32_t seq = atomic_load_explicit(&server->reply_seq, memory_order_seq_cst);
        if (reply_thread_round(server) > 0)
            continue;
        if (atomic_load(&server->reply_stop))
            return NULL;
        /* A push after the empty exchange above bumped the word past seq: no sleep. */
        struct timespec timeout = {.tv_sec = 1};
        syscall(SYS_futex, &server->reply_seq, FUTEX_WAIT_PRIVATE, seq, &timeout, NULL, 0);
    }
}

void rpc_fail(struct rpc_call *call, const struct rpc_error *error)
{
    TK_ASSERT(error != NULL && error->code != GRPC_STATUS_OK);
    answer(call, NULL, error);
}

void rpc_fail_status(struct rpc_call *call, enum tk_status status, const char *message)
{
    TK_ASSERT(status != TK_OK);
    struct rpc_error error;
    rpc_error_from_status(&error, status, message, NULL, 0);
    rpc_fail(call, &error);
}

/* ---- streaming ---- */

static void stream_open(struct rpc_call *call)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &call->cancelled_flag;
    start_batch(call, ops, 2, &call->tag_close);
}

void rpc_stream_send(struct rpc_call *call, const ProtobufCMessage *message, rpc_stream_sent_fn sent, void *ctx)
{
    TK_ASSERT(call->stream_sent == NULL); /* one message in flight */
    TK_ASSERT(!atomic_load(&call->answered));
    if (call->send_payload != NULL)
        grpc_byte_buffer_destroy(call->send_payload);
    call->send_payload = pack_message(message);
    call->stream_sent = sent;
    call->stream_sent_ctx = ctx;
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = call->send_payload;
    start_batch(call, &op, 1, &call->tag_send);
}

bool rpc_stream_cancelled(const struct rpc_call *call)
{
    return atomic_load(&call->closed) || atomic_load(&call->server->shutting_down);
}

void rpc_stream_finish(struct rpc_call *call, const struct rpc_error *error)
{
    bool was = atomic_exchange(&call->answered, true);
    TK_ASSERT(!was);
    grpc_op ops[1];
    size_t n = status_ops(call, ops, error);
    start_batch(call, ops, n, &call->tag_finish);
}

/* ---- dispatch ---- */

static void read_metadata(struct rpc_call *call)
{
    for (size_t i = 0; i < call->request_metadata.count; i++) {
        const grpc_metadata *md = &call->request_metadata.metadata[i];
        char *target = NULL;
        size_t target_len = 0;
        if (grpc_slice_str_cmp(md->key, "x-request-id") == 0) {
            target = call->request_id;
            target_len = sizeof(call->request_id);
        } else if (grpc_slice_str_cmp(md->key, "traceparent") == 0) {
            target = call->traceparent;
            target_len = sizeof(call->traceparent);
        }
        if (target == NULL)
            continue;
        size_t len = GRPC_SLICE_LENGTH(md->value);
        if (len >= target_len)
            len = target_len - 1;
        memcpy(target, GRPC_SLICE_START_PTR(md->value), len);
        target[len] = '\0';
    }
    if (!rpc_trace_request_id_valid(call->request_id))
        rpc_trace_new_request_id(call->request_id, sizeof(call->request_id));
    if (call->traceparent[0] != '\0' && !rpc_trace_traceparent_valid(call->traceparent))
        call->traceparent[0] = '\0';
}

static const ProtobufCMessage *decode_request(struct rpc_call *call, const struct method_entry *m)
{
    if (call->payload == NULL)
        return NULL;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, call->payload))
        return NULL;
    grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    ProtobufCMessage *message = protobuf_c_message_unpack(m->method.request, rpc_arena_allocator(&call->arena),
                                                          GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
    grpc_slice_unref(slice);
    return message;
}

static void dispatch(struct rpc_call *call)
{
    struct rpc_server *server = call->server;
    call->started_ns = tk_monotonic_ns();
    read_metadata(call);
    if (call->method_index == METHOD_GENERIC) {
        struct rpc_error error = {.code = GRPC_STATUS_UNIMPLEMENTED};
        snprintf(error.name, sizeof(error.name), "unimplemented");
        snprintf(error.message, sizeof(error.message), "no such method");
        rpc_fail(call, &error);
        return;
    }
    const struct method_entry *m = &server->methods[call->method_index];
    if (rpc_call_deadline_ms(call) <= 0) {
        struct rpc_error error = {.code = GRPC_STATUS_DEADLINE_EXCEEDED};
        snprintf(error.name, sizeof(error.name), "deadline_exceeded");
        snprintf(error.message, sizeof(error.message), "the deadline passed before the call was handled");
        rpc_fail(call, &error);
        return;
    }
    const ProtobufCMessage *request = decode_request(call, m);
    if (request == NULL) {
        rpc_fail_status(call, TK_ERR_INVALID, "the request is not a valid protobuf message of the method's type");
        return;
    }
    if (m->method.server_streaming)
        stream_open(call);
    m->method.handler(call, request, m->service_ctx);
}

static void on_request(struct rpc_call *call, bool ok)
{
    struct rpc_server *server = call->server;
    pthread_mutex_lock(&server->lock);
    if (call->method_index == METHOD_GENERIC)
        server->generic_armed--;
    else
        server->methods[call->method_index].armed--;
    if (ok)
        rearm_locked(server);
    pthread_mutex_unlock(&server->lock);
    if (!ok) { /* shutting down: the slot was never used */
        call->call = NULL;
        call_unref(call);
        return;
    }
    /* The slot's first reference lives until its final batch completes, so a
     * handler may answer later from another thread. */
    dispatch(call);
}

static void on_event(struct rpc_server *server, grpc_event *event)
{
    struct rpc_tag *tag = event->tag;
    TK_ASSERT(tag != NULL);
    /* The batch that completed was started on another thread (a handler answering late,
     * the WAL writer running durable waiters, a watch thread), and gRPC hands it back here
     * through its own synchronization, which ThreadSanitizer cannot see (gRPC is not
     * instrumented). This acquire pairs with start_batch's call_ref: the hand-off of the
     * call's fields (code, payloads, stream callback) stated in C11 terms. */
    if (tag->call != NULL)
        (void)atomic_load_explicit(&tag->call->refs, memory_order_acquire);
    switch (tag->kind) {
    case TAG_REQUEST:
        on_request(tag->call, event->success != 0);
        break;
    case TAG_FINISH:
        record_metrics(tag->call);
        call_unref(tag->call); /* the batch's reference */
        call_unref(tag->call); /* the slot's first reference: the call is over */
        break;
    case TAG_CLOSE:
        atomic_store(&tag->call->closed, true);
        call_unref(tag->call);
        break;
    case TAG_SEND: {
        struct rpc_call *call = tag->call;
        rpc_stream_sent_fn sent = call->stream_sent;
        call->stream_sent = NULL;
        if (sent != NULL)
            sent(call, event->success != 0, call->stream_sent_ctx);
        call_unref(call);
        break;
    }
    case TAG_SHUTDOWN:
        pthread_mutex_lock(&server->lock);
        server->shutdown_done = true;
        pthread_cond_broadcast(&server->shutdown_cond);
        pthread_mutex_unlock(&server->lock);
        break;
    }
}

static void *cq_thread(void *arg)
{
    struct rpc_server *server = arg;
    for (;;) {
        grpc_event event = grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (event.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
        TK_ASSERT(event.type == GRPC_OP_COMPLETE);
        on_event(server, &event);
    }
}

/* ---- life cycle ---- */

static enum tk_status server_fail(char *err, size_t err_len, const char *fmt, const char *arg)
{
    snprintf(err, err_len, fmt, arg);
    return TK_ERR_INVALID;
}

static enum tk_status add_methods_locked(struct rpc_server *server, const struct rpc_method *methods, uint32_t count,
                                         void *service_ctx)
{
    if (server->method_count + count > RPC_METHODS_MAX)
        return TK_ERR_FULL;
    for (uint32_t i = 0; i < count; i++) {
        TK_ASSERT(methods[i].path != NULL && methods[i].request != NULL && methods[i].handler != NULL);
        struct method_entry *m = &server->methods[server->method_count++];
        m->method = methods[i];
        m->service_ctx = service_ctx;
        m->handle = grpc_server_register_method(server->server, methods[i].path, NULL,
                                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        TK_ASSERT(m->handle != NULL); /* paths are unique by construction */
        m->metrics = rpc_metrics_method(methods[i].path, "server");
    }
    return TK_OK;
}

enum tk_status rpc_server_add_methods(struct rpc_server *server, const struct rpc_method *methods,
                                      uint32_t method_count, void *service_ctx)
{
    TK_ASSERT(!server->started);
    return add_methods_locked(server, methods, method_count, service_ctx);
}

static grpc_server *server_grpc_create(const struct rpc_server_config *config)
{
    grpc_arg args[3];
    size_t n = 0;
    uint32_t max_message = config->max_message_bytes ? config->max_message_bytes : (4u << 20);
    args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                           .value.integer = (int)max_message};
    args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
                           .value.integer = (int)max_message};
    if (config->max_concurrent_streams)
        args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_CONCURRENT_STREAMS,
                               .value.integer = (int)config->max_concurrent_streams};
    grpc_channel_args channel_args = {.num_args = n, .args = args};
    return grpc_server_create(&channel_args, NULL);
}

static enum tk_status server_alloc_calls(struct rpc_server *server, const struct rpc_server_config *config)
{
    server->calls_max = config->calls_max ? config->calls_max : 4096;
    server->calls = calloc(server->calls_max, sizeof(struct rpc_call));
    if (server->calls == NULL)
        return TK_ERR_FULL;
    size_t arena_limit = config->arena_limit_bytes ? config->arena_limit_bytes : (8u << 20);
    for (uint32_t i = 0; i < server->calls_max; i++) {
        struct rpc_call *call = &server->calls[i];
        call->server = server;
        call->tag_request = (struct rpc_tag){TAG_REQUEST, call};
        call->tag_finish = (struct rpc_tag){TAG_FINISH, call};
        call->tag_close = (struct rpc_tag){TAG_CLOSE, call};
        call->tag_send = (struct rpc_tag){TAG_SEND, call};
        if (rpc_arena_init(&call->arena, arena_limit) != 0)
            return TK_ERR_FULL;
        call->next_free = server->free_calls;
        server->free_calls = call;
    }
    return TK_OK;
}

enum tk_status rpc_server_create(struct rpc_server **out, const struct rpc_server_config *config,
                                 const struct rpc_method *methods, uint32_t method_count, void *service_ctx,
                                 char *err, size_t err_len)
{
    TK_ASSERT(out != NULL && config != NULL && err != NULL);
    if (config->listen == NULL || config->listen[0] == '\0')
        return server_fail(err, err_len, "no listen address given%s", "");
    if (config->cq_threads > RPC_CQ_THREADS_MAX)
        return server_fail(err, err_len, "at most 16 completion-queue threads%s", "");
    rpc_signals_block();
    grpc_init();
    struct rpc_server *server = calloc(1, sizeof(*server));
    TK_ASSERT(server != NULL);
    pthread_mutex_init(&server->lock, NULL);
    pthread_cond_init(&server->shutdown_cond, NULL);
    server->tag_shutdown = (struct rpc_tag){TAG_SHUTDOWN, NULL};
    server->thread_count = config->cq_threads ? config->cq_threads : 2;
    server->slots_per_method = config->slots_per_method ? config->slots_per_method : 16;
    server->server = server_grpc_create(config);
    server->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(server->server, server->cq, NULL);
    server->unimplemented_metrics = rpc_metrics_method("/unknown/unimplemented", "server");
    enum tk_status status = server_alloc_calls(server, config);
    if (status == TK_OK)
        status = add_methods_locked(server, methods, method_count, service_ctx);
    if (status != TK_OK) {
        snprintf(err, err_len, "cannot allocate %u call slots or register %u methods", config->calls_max,
                 method_count);
        rpc_server_destroy(server);
        return status;
    }
    grpc_server_credentials *credentials = grpc_insecure_server_credentials_create();
    server->port = grpc_server_add_http2_port(server->server, config->listen, credentials);
    grpc_server_credentials_release(credentials);
    if (server->port <= 0) {
        snprintf(err, err_len, "cannot listen on %s (address in use or invalid)", config->listen);
        rpc_server_destroy(server);
        return TK_ERR_INVALID;
    }
    *out = server;
    return TK_OK;
}

enum tk_status rpc_server_start(struct rpc_server *server)
{
    TK_ASSERT(!server->started);
    grpc_server_start(server->server);
    server->started = true;
    pthread_mutex_lock(&server->lock);
    rearm_locked(server);
    pthread_mutex_unlock(&server->lock);
    for (uint32_t i = 0; i < server->thread_count; i++) {
        int rc = pthread_create(&server->threads[i], NULL, cq_thread, server);
        TK_ASSERT(rc == 0);
        pthread_setname_np(server->threads[i], "rpc-cq");
    }
    int rc = pthread_create(&server->reply_thread, NULL, reply_thread_main, server);
    TK_ASSERT(rc == 0);
    pthread_setname_np(server->reply_thread, "rpc-reply"); /* for top -H and perf; a name is no invariant */
    return TK_OK;
}

int rpc_server_port(const struct rpc_server *server)
{
    return server->port;
}

bool rpc_server_shutting_down(const struct rpc_server *server)
{
    return atomic_load(&server->shutting_down);
}

void rpc_server_on_shutdown(struct rpc_server *server, void (*fn)(void *ctx), void *ctx)
{
    server->on_shutdown = fn;
    server->on_shutdown_ctx = ctx;
}

void rpc_signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads created from now on inherit it */
    signal(SIGPIPE, SIG_IGN);
}

void rpc_server_stop(struct rpc_server *server)
{
    atomic_store(&server->stop_requested, true);
}

static bool wait_shutdown(struct rpc_server *server, uint32_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&server->lock);
    int rc = 0;
    while (!server->shutdown_done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&server->shutdown_cond, &server->lock, &until);
    bool done = server->shutdown_done;
    pthread_mutex_unlock(&server->lock);
    return done;
}

void rpc_server_shutdown(struct rpc_server *server, uint32_t grace_ms)
{
    if (atomic_exchange(&server->shutting_down, true))
        return;
    if (server->on_shutdown != NULL)
        server->on_shutdown(server->on_shutdown_ctx);
    if (!server->started)
        return;
    rpc_log(RPC_LOG_INFO, "", "shutting down: no new calls; waiting up to %u ms for calls in flight", grace_ms);
    grpc_server_shutdown_and_notify(server->server, server->cq, &server->tag_shutdown);
    /* The notification also waits for idle client connections to go away, which
     * can take the whole grace period; what matters is the calls in flight. Once
     * none are left (armed slots come back on their own), cancel the rest. */
    uint32_t waited = 0;
    while (waited < grace_ms && atomic_load(&server->calls_in_use) != 0 && !wait_shutdown(server, 10))
        waited += 10;
    if (atomic_load(&server->calls_in_use) != 0 && !wait_shutdown(server, 0))
        rpc_log(RPC_LOG_WARN, "", "grace period over: cancelling %u calls still in flight",
                atomic_load(&server->calls_in_use));
    grpc_server_cancel_all_calls(server->server);
    if (!wait_shutdown(server, 10000))
        rpc_log(RPC_LOG_ERROR, "", "the gRPC server did not shut down within 10 s after cancelling its calls");
}

void rpc_server_run(struct rpc_server *server, uint32_t grace_ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
    while (!atomic_load(&server->stop_requested)) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            rpc_log(RPC_LOG_INFO, "", "received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
    }
    rpc_server_shutdown(server, grace_ms);
}

void rpc_server_destroy(struct rpc_server *server)
{
    if (server == NULL)
        return;
    rpc_server_shutdown(server, 2000); /* no-op if already done; waits for the shutdown tag */
    if (server->started && !wait_handlers_done(server, 10000)) {
        rpc_log(RPC_LOG_ERROR, "", "%u calls were never answered by their handlers; not freeing the server",
                atomic_load(&server->calls_in_use));
        return;
    }
    if (server->started) { /* every call was answered: nothing is left on the reply stack */
        TK_ASSERT(atomic_load(&server->reply_stack) == NULL);
        atomic_store(&server->reply_stop, true);
        atomic_fetch_add(&server->reply_seq, 1);
        reply_futex_wake(&server->reply_seq);
        pthread_join(server->reply_thread, NULL);
    }
    grpc_server_destroy(server->server);
    grpc_completion_queue_shutdown(server->cq);
    if (server->started) {
        for (uint32_t i = 0; i < server->thread_count; i++)
            pthread_join(server->threads[i], NULL); /* each drains to GRPC_QUEUE_SHUTDOWN */
    } else {
        for (;;) {
            grpc_event event = grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (event.type == GRPC_QUEUE_SHUTDOWN)
                break;
        }
    }
    grpc_completion_queue_destroy(server->cq);
    for (uint32_t i = 0; server->calls != NULL && i < server->calls_max; i++)
        rpc_arena_destroy(&server->calls[i].arena);
    free(server->calls);
    pthread_mutex_destroy(&server->lock);
    pthread_cond_destroy(&server->shutdown_cond);
    free(server);
    grpc_shutdown();
}

/* ---- accessors ---- */

struct rpc_arena *rpc_call_arena(struct rpc_call *call)
{
    return &call->arena;
}

const char *rpc_call_request_id(const struct rpc_call *call)
{
    return call->request_id;
}

const char *rpc_call_traceparent(const struct rpc_call *call)
{
    return call->traceparent;
}

const char *rpc_call_method(const struct rpc_call *call)
{
    if (call->method_index == METHOD_GENERIC)
        return "unimplemented";
    return call->server->methods[call->method_index].method.path;
}

int64_t rpc_call_deadline_ms(const struct rpc_call *call)
{
    if (call->method_index == METHOD_GENERIC)
        return INT64_MAX;
    gpr_timespec deadline = gpr_convert_clock_type(call->deadline, GPR_CLOCK_MONOTONIC);
    if (gpr_time_cmp(deadline, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0)
        return INT64_MAX;
    gpr_timespec left = gpr_time_sub(deadline, gpr_now(GPR_CLOCK_MONOTONIC));
    return (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
}
