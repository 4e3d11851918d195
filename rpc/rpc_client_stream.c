/* rpc_client_stream.c — reading a server stream synchronously (rpc_client.h).
 *
 * One batch opens the stream (send metadata + request + close); then each
 * next() is one RECV_MESSAGE batch; when a receive yields no message the
 * stream is over and one RECV_STATUS_ON_CLIENT batch collects the status. */
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_client.h"
#include "rpc_trace.h"
#include "tk_assert.h"

struct rpc_client_stream {
    grpc_call *call;
    grpc_completion_queue *cq;
    grpc_byte_buffer *send;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    grpc_metadata metadata[2];
    char request_id[64], traceparent[64];
    bool ended;
};

static bool pluck(struct rpc_client_stream *s, grpc_op *ops, size_t n)
{
    grpc_call_error rc = grpc_call_start_batch(s->call, ops, n, s, NULL);
    TK_ASSERT(rc == GRPC_CALL_OK);
    grpc_event event = grpc_completion_queue_pluck(s->cq, s, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return event.type == GRPC_OP_COMPLETE && event.success;
}

struct rpc_client_stream *rpc_client_stream_open(struct rpc_channel *channel, const char *method,
                                                 const ProtobufCMessage *request,
                                                 const struct rpc_call_options *options)
{
    struct rpc_client_stream *s = calloc(1, sizeof(*s));
    TK_ASSERT(s != NULL && request != NULL);
    grpc_init();
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    int64_t timeout_ms = options && options->timeout_ms ? options->timeout_ms : 3600 * 1000;
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    s->call = grpc_channel_create_call(rpc_channel_grpc(channel), NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                       grpc_slice_from_static_string(method), NULL, deadline, NULL);
    if (options && options->request_id && rpc_trace_request_id_valid(options->request_id))
        snprintf(s->request_id, sizeof(s->request_id), "%s", options->request_id);
    else
        rpc_trace_new_request_id(s->request_id, sizeof(s->request_id));
    rpc_trace_child(options ? options->traceparent : NULL, s->traceparent, sizeof(s->traceparent));
    s->metadata[0] = (grpc_metadata){grpc_slice_from_static_string("x-request-id"),
                                     grpc_slice_from_static_string(s->request_id)};
    s->metadata[1] = (grpc_metadata){grpc_slice_from_static_string("traceparent"),
                                     grpc_slice_from_static_string(s->traceparent)};
    size_t size = protobuf_c_message_get_packed_size(request);
    grpc_slice slice = grpc_slice_malloc(size);
    protobuf_c_message_pack(request, GRPC_SLICE_START_PTR(slice));
    s->send = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    grpc_metadata_array_init(&s->initial);
    grpc_metadata_array_init(&s->trailing);
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 2;
    ops[0].data.send_initial_metadata.metadata = s->metadata;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
    pluck(s, ops, 4); /* a failure shows up as the stream's status */
    return s;
}

static void stream_status(struct rpc_client_stream *s, struct rpc_error *error)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &s->trailing;
    op.data.recv_status_on_client.status = &s->status;
    op.data.recv_status_on_client.status_details = &s->details;
    pluck(s, &op, 1);
    s->ended = true;
    memset(error, 0, sizeof(*error));
    error->code = s->status;
    size_t len = GRPC_SLICE_LENGTH(s->details);
    if (len >= sizeof(error->message))
        len = sizeof(error->message) - 1;
    memcpy(error->message, GRPC_SLICE_START_PTR(s->details), len);
    for (size_t i = 0; i < s->trailing.count; i++)
        if (grpc_slice_str_cmp(s->trailing.metadata[i].key, RPC_ERROR_TRAILER) == 0)
            rpc_error_decode(error, GRPC_SLICE_START_PTR(s->trailing.metadata[i].value),
                             GRPC_SLICE_LENGTH(s->trailing.metadata[i].value));
    error->code = s->status;
}

int rpc_client_stream_next(struct rpc_client_stream *s, const ProtobufCMessageDescriptor *type,
                           ProtobufCMessage **message, struct rpc_error *error)
{
    TK_ASSERT(!s->ended);
    *message = NULL;
    grpc_byte_buffer *recv = NULL;
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &recv;
    if (!pluck(s, &op, 1) || recv == NULL) {
        stream_status(s, error);
        return 0;
    }
    grpc_byte_buffer_reader reader;
    grpc_byte_buffer_reader_init(&reader, recv);
    grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(recv);
    *message = protobuf_c_message_unpack(type, NULL, GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
    grpc_slice_unref(slice);
    if (*message == NULL) {
        grpc_call_cancel(s->call, NULL);
        stream_status(s, error);
        error->code = GRPC_STATUS_INTERNAL;
        snprintf(error->message, sizeof(error->message), "a stream message is not a valid %s", type->name);
        return 0;
    }
    return 1;
}

void rpc_client_stream_close(struct rpc_client_stream *s)
{
    if (s == NULL)
        return;
    if (!s->ended) {
        grpc_call_cancel(s->call, NULL);
        struct rpc_error ignored;
        stream_status(s, &ignored);
    }
    grpc_byte_buffer_destroy(s->send);
    grpc_metadata_array_destroy(&s->initial);
    grpc_metadata_array_destroy(&s->trailing);
    grpc_slice_unref(s->details);
    grpc_call_unref(s->call);
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_pluck(s->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s->cq);
    free(s);
    grpc_shutdown();
}
