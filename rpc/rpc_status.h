/* rpc_status.h — engine and service errors as gRPC statuses.
 *
 * One table maps every tk_status to a gRPC code; the machine name
 * (tk_status_name: "seat_unavailable", "hold_expired", ...) and the human
 * message travel in the trailer "tiketi-error-bin" as a serialized
 * tiketi.v1.ErrorDetail, with the unavailable seats for a seat conflict. The edge
 * turns the machine name into the problem+json code clients see. */
#ifndef RPC_STATUS_H
#define RPC_STATUS_H

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_status.h"

#define RPC_ERROR_TRAILER "tiketi-error-bin"
#define RPC_ERROR_SEATS_MAX 16u
#define RPC_ERROR_MESSAGE_BYTES 256u
#define RPC_ERROR_CODE_BYTES 48u

/* What a failed call carried back, decoded on the client side. */
struct rpc_error {
    grpc_status_code code;
    char name[RPC_ERROR_CODE_BYTES];        /* machine code, "" if none was sent */
    char message[RPC_ERROR_MESSAGE_BYTES];
    uint32_t unavailable_count;
    uint32_t unavailable[RPC_ERROR_SEATS_MAX];
};

grpc_status_code rpc_status_code(enum tk_status status);
/* Fills an rpc_error for a tk_status (message from tk_status_message unless given). */
void rpc_error_from_status(struct rpc_error *error, enum tk_status status, const char *message,
                           const uint32_t *unavailable, uint32_t unavailable_count);
/* Encodes error as an ErrorDetail into out; returns the length, 0 if it does not fit. */
size_t rpc_error_encode(const struct rpc_error *error, uint8_t *out, size_t out_len);
/* Decodes an ErrorDetail (bytes from the wire: never trusted). false if malformed. */
bool rpc_error_decode(struct rpc_error *error, const uint8_t *bytes, size_t len);
const char *rpc_code_name(grpc_status_code code);

#endif
