/* rpc_trace.h — request ids and W3C trace context.
 *
 * Every call carries "x-request-id" (from the edge, or made up by the first
 * server that sees the request) and, when the caller had one, a W3C
 * "traceparent". Servers log the id with every line about the call and clients
 * pass both on to the next hop, so one purchase can be followed through the
 * logs of every service. Values from outside are validated before use. */
#ifndef RPC_TRACE_H
#define RPC_TRACE_H

#include <stdbool.h>
#include <stddef.h>

/* 1..63 characters of [A-Za-z0-9._-]. */
bool rpc_trace_request_id_valid(const char *id);
/* 32 lowercase hex digits from a CSPRNG. */
void rpc_trace_new_request_id(char *out, size_t out_len);
/* "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", ids not all zero. */
bool rpc_trace_traceparent_valid(const char *traceparent);
/* A child traceparent: same trace id, a new parent id (for the next hop). */
void rpc_trace_child(const char *traceparent, char *out, size_t out_len);

#endif
