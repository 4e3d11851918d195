/* rpc_client.h — calling other services over gRPC.
 *
 * Channels keep their HTTP/2 connection alive (keepalive pings) and reconnect on
 * their own. Calls always carry a deadline, the request id and a child W3C
 * traceparent. Synchronous unary calls suit tools, tests and start-up work;
 * daemons that call other daemons while serving use the asynchronous form, whose
 * completions run on a client loop thread, so no server thread waits on the
 * network. Idempotent calls are retried on UNAVAILABLE with exponential backoff
 * within their deadline (synchronous calls; the asynchronous form leaves retrying
 * to its caller, which knows whether it may).
 *
 * A failed call fills a struct rpc_error: the gRPC code, the machine name and
 * message from the "tiketi-error-bin" trailer (or the status details), and the
 * unavailable seats of a conflict. */
#ifndef RPC_CLIENT_H
#define RPC_CLIENT_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc_status.h"

struct rpc_channel;
struct rpc_client_loop;

struct rpc_channel_options {
    uint32_t keepalive_ms;      /* 0: 10000 */
    uint32_t max_message_bytes; /* 0: 4 MiB */
};

struct rpc_channel *rpc_channel_open(const char *target, const struct rpc_channel_options *options);
void rpc_channel_close(struct rpc_channel *channel);
const char *rpc_channel_target(const struct rpc_channel *channel);
/* The underlying gRPC channel (for the stream reader in this layer). */
grpc_channel *rpc_channel_grpc(struct rpc_channel *channel);

struct rpc_call_options {
    int64_t timeout_ms;      /* 0: 5000 */
    const char *request_id;  /* NULL: a new one */
    const char *traceparent; /* the caller's; a child is sent */
    bool idempotent;         /* may be retried */
    uint32_t retries;        /* extra attempts on UNAVAILABLE when idempotent; 0: 3 */
};

/* Synchronous unary call. On OK *reply is unpacked with allocator (NULL: malloc,
 * free it with protobuf_c_message_free_unpacked(reply, NULL)). */
grpc_status_code rpc_unary(struct rpc_channel *channel, const char *method, const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *reply_type, ProtobufCAllocator *allocator,
                           ProtobufCMessage **reply, const struct rpc_call_options *options, struct rpc_error *error);

/* ---- asynchronous ---- */
struct rpc_client_loop *rpc_client_loop_start(uint32_t threads);
void rpc_client_loop_stop(struct rpc_client_loop *loop);

/* reply (malloc'd, NULL unless OK) belongs to the callback: free it with
 * protobuf_c_message_free_unpacked(reply, NULL). Runs on a loop thread. */
typedef void (*rpc_unary_done)(void *ctx, grpc_status_code code, ProtobufCMessage *reply,
                               const struct rpc_error *error);
void rpc_unary_async(struct rpc_client_loop *loop, struct rpc_channel *channel, const char *method,
                     const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
                     const struct rpc_call_options *options, rpc_unary_done done, void *ctx);

/* ---- server streams, read synchronously ---- */
struct rpc_client_stream;
struct rpc_client_stream *rpc_client_stream_open(struct rpc_channel *channel, const char *method,
                                                 const ProtobufCMessage *request,
                                                 const struct rpc_call_options *options);
/* 1: *message (malloc'd) read; 0: the stream ended, status in *error (code OK
 * for a clean end). */
int rpc_client_stream_next(struct rpc_client_stream *stream, const ProtobufCMessageDescriptor *type,
                           ProtobufCMessage **message, struct rpc_error *error);
/* Cancels the stream if still open, and frees it. */
void rpc_client_stream_close(struct rpc_client_stream *stream);

/* ---- shard routing ---- */
#define RPC_SHARDS_MAX 256u
struct rpc_router;
/* addresses: the shard list in order ("host:port"); shard k owns the events
 * that jump-consistent-hash to k. */
struct rpc_router *rpc_router_create(const char *const *addresses, uint32_t count,
                                     const struct rpc_channel_options *options);
void rpc_router_destroy(struct rpc_router *router);
uint32_t rpc_router_shard_of(const struct rpc_router *router, uint64_t event_id);
struct rpc_channel *rpc_router_channel(struct rpc_router *router, uint64_t event_id);
uint32_t rpc_router_shards(const struct rpc_router *router);
struct rpc_channel *rpc_router_shard_channel(struct rpc_router *router, uint32_t shard);
/* Jump consistent hash (Lamping & Veach 2014): key -> [0, buckets). */
uint32_t rpc_jump_hash(uint64_t key, uint32_t buckets);

#endif
