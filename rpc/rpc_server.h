/* rpc_server.h — a small gRPC server on the gRPC C core.
 *
 * A daemon describes its service as a table of methods (path, request and reply
 * descriptors, handler). The server registers them, keeps a few request slots
 * armed per method plus generic slots (so an unknown method gets UNIMPLEMENTED at
 * once instead of hanging until the client's deadline), and runs completion-queue
 * threads that decode each request into the call's arena and call the handler.
 *
 * A handler answers with rpc_reply / rpc_fail, then or later and from any thread,
 * so no completion-queue thread ever waits on the disk. A reply that is final
 * before it may be sent (the engine's: sent after group commit) is packed at once
 * on the handler's thread (rpc_reply_prepare) and sent later with
 * rpc_reply_prepared_async, which only hands the call to the server's reply
 * thread: the thread that learns "durable" (the WAL writer) spends no time on
 * protobuf or gRPC. Every call is answered exactly once. Server-streaming
 * handlers use rpc_stream_*.
 *
 * Bounds: calls_max call slots are allocated at start (each with its arena);
 * messages above max_message_bytes are refused by the transport
 * (RESOURCE_EXHAUSTED); a request decoded past its arena's limit is refused too.
 * Deadlines: a call whose deadline has passed before its handler runs gets
 * DEADLINE_EXCEEDED; handlers may read rpc_call_deadline_ms for long work.
 * Shutdown (SIGTERM/SIGINT in rpc_server_run): stop accepting, report
 * NOT_SERVING on health, let in-flight calls finish within the grace period,
 * then cancel what is left and return. */
#ifndef RPC_SERVER_H
#define RPC_SERVER_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc_arena.h"
#include "rpc_status.h"

struct rpc_server;
struct rpc_call;

typedef void (*rpc_handler)(struct rpc_call *call, const ProtobufCMessage *request, void *service_ctx);

struct rpc_method {
    const char *path; /* "/tiketi.v1.SeatCore/Hold" */
    const ProtobufCMessageDescriptor *request;
    rpc_handler handler;
    bool server_streaming;
};

#define RPC_METHODS_MAX 64u
#define RPC_CQ_THREADS_MAX 16u
#define RPC_REQUEST_ID_BYTES 64u
#define RPC_TRACEPARENT_BYTES 64u

struct rpc_server_config {
    const char *listen;          /* "127.0.0.1:3020" */
    uint32_t cq_threads;         /* 0: 2 */
    uint32_t calls_max;          /* concurrent calls; 0: 4096 */
    uint32_t slots_per_method;   /* armed request slots per method; 0: 16 */
    uint32_t max_message_bytes;  /* 0: 4 MiB */
    uint32_t arena_limit_bytes;  /* per call; 0: 8 MiB */
    uint32_t max_concurrent_streams; /* per connection; 0: gRPC's default */
};

/* Creates the server and binds the port. err says why on failure (port taken,
 * bad address, too many methods). */
enum tk_status rpc_server_create(struct rpc_server **out, const struct rpc_server_config *config,
                                 const struct rpc_method *methods, uint32_t method_count, void *service_ctx,
                                 char *err, size_t err_len);
/* Adds the methods of another service (e.g. health) before start. */
enum tk_status rpc_server_add_methods(struct rpc_server *server, const struct rpc_method *methods,
                                      uint32_t method_count, void *service_ctx);
enum tk_status rpc_server_start(struct rpc_server *server);
/* The port actually bound (useful with "127.0.0.1:0"). */
int rpc_server_port(const struct rpc_server *server);
/* Blocks until SIGTERM or SIGINT (or rpc_server_stop), then shuts down gracefully. */
void rpc_server_run(struct rpc_server *server, uint32_t grace_ms);
/* Blocks SIGTERM/SIGINT in the calling thread (and every thread it creates
 * later, gRPC's included) so rpc_server_run can wait for them; ignores SIGPIPE.
 * Call first thing in main. */
void rpc_signals_block(void);
/* Asks rpc_server_run to return (thread safe, async-signal safe). */
void rpc_server_stop(struct rpc_server *server);
/* Stop accepting, wait for in-flight calls up to grace_ms, cancel the rest. */
void rpc_server_shutdown(struct rpc_server *server, uint32_t grace_ms);
/* Every call must have been answered (a handler that promised a reply from
 * another thread must have sent it); destroy waits up to 10 s for stragglers. */
void rpc_server_destroy(struct rpc_server *server);
bool rpc_server_shutting_down(const struct rpc_server *server);
/* Hook run when shutdown starts (e.g. health goes NOT_SERVING). */
void rpc_server_on_shutdown(struct rpc_server *server, void (*fn)(void *ctx), void *ctx);

/* ---- inside a handler ---- */
struct rpc_arena *rpc_call_arena(struct rpc_call *call);
const char *rpc_call_request_id(const struct rpc_call *call);
const char *rpc_call_traceparent(const struct rpc_call *call);
const char *rpc_call_method(const struct rpc_call *call);
/* Milliseconds left before the client's deadline (INT64_MAX if none). */
int64_t rpc_call_deadline_ms(const struct rpc_call *call);

/* Answers OK with reply. Any thread, once. */
void rpc_reply(struct rpc_call *call, const ProtobufCMessage *reply);
/* Packs reply now and keeps the bytes with the call; the message may be freed or
 * changed afterwards. Then exactly one of: rpc_reply_prepared (send it on this
 * thread), rpc_reply_prepared_async (from any thread) or rpc_fail* (an error is
 * sent instead and the prepared bytes are dropped). */
void rpc_reply_prepare(struct rpc_call *call, const ProtobufCMessage *reply);
/* Answers OK with the prepared reply, from the calling thread. */
void rpc_reply_prepared(struct rpc_call *call);
/* Answers OK with the prepared reply from the server's reply thread; any thread,
 * lock-free (a CAS, and a futex wake when the reply thread may be asleep), never
 * blocks. For threads whose time is worth more than a reply's (the WAL writer). */
void rpc_reply_prepared_async(struct rpc_call *call);
/* Answers with an error (code, machine name, message, unavailable seats). */
void rpc_fail(struct rpc_call *call, const struct rpc_error *error);
/* Shorthand: the error for an engine/service status. */
void rpc_fail_status(struct rpc_call *call, enum tk_status status, const char *message);

/* ---- server streaming ---- */
typedef void (*rpc_stream_sent_fn)(struct rpc_call *call, bool ok, void *ctx);
/* Sends one message; at most one in flight: the next only after sent() ran.
 * ok=false means the client went away: stop and call rpc_stream_finish. */
void rpc_stream_send(struct rpc_call *call, const ProtobufCMessage *message, rpc_stream_sent_fn sent, void *ctx);
/* True once the client cancelled or the server is shutting down. */
bool rpc_stream_cancelled(const struct rpc_call *call);
/* Ends the stream with OK (error NULL) or an error. */
void rpc_stream_finish(struct rpc_call *call, const struct rpc_error *error);

#endif
