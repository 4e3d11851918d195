/* rpc_status.c — tk_status -> gRPC code, and the ErrorDetail trailer (rpc_status.h). */
#include "rpc_status.h"

#include <stdio.h>
#include <string.h>

#include "tiketi/v1/common.pb-c.h"
#include "tk_assert.h"

static const grpc_status_code status_codes[TK_STATUS_COUNT] = {
    [TK_OK] = GRPC_STATUS_OK,
    [TK_ERR_INVALID] = GRPC_STATUS_INVALID_ARGUMENT,
    [TK_ERR_NOT_FOUND] = GRPC_STATUS_NOT_FOUND,
    [TK_ERR_EXISTS] = GRPC_STATUS_ALREADY_EXISTS,
    [TK_ERR_SEAT_CONFLICT] = GRPC_STATUS_ABORTED,
    [TK_ERR_SOLD_OUT] = GRPC_STATUS_RESOURCE_EXHAUSTED,
    [TK_ERR_HOLD_EXPIRED] = GRPC_STATUS_FAILED_PRECONDITION,
    [TK_ERR_NOT_OWNER] = GRPC_STATUS_FAILED_PRECONDITION,
    [TK_ERR_CAP_REACHED] = GRPC_STATUS_RESOURCE_EXHAUSTED,
    [TK_ERR_EVENT_CLOSED] = GRPC_STATUS_FAILED_PRECONDITION,
    [TK_ERR_NOT_ADMITTED] = GRPC_STATUS_FAILED_PRECONDITION,
    [TK_ERR_QUEUE_FULL] = GRPC_STATUS_RESOURCE_EXHAUSTED,
    [TK_ERR_FULL] = GRPC_STATUS_RESOURCE_EXHAUSTED,
    [TK_ERR_IDEMPOTENCY_MISMATCH] = GRPC_STATUS_FAILED_PRECONDITION,
    [TK_ERR_BUSY] = GRPC_STATUS_UNAVAILABLE,
    [TK_ERR_IO] = GRPC_STATUS_UNAVAILABLE,
    [TK_ERR_CORRUPT] = GRPC_STATUS_INTERNAL,
    [TK_ERR_UNAVAILABLE] = GRPC_STATUS_UNAVAILABLE,
};

grpc_status_code rpc_status_code(enum tk_status status)
{
    if ((unsigned)status >= TK_STATUS_COUNT)
        return GRPC_STATUS_INTERNAL;
    TK_ASSERT(status == TK_OK || status_codes[status] != GRPC_STATUS_OK);
    return status_codes[status];
}

void rpc_error_from_status(struct rpc_error *error, enum tk_status status, const char *message,
                           const uint32_t *unavailable, uint32_t unavailable_count)
{
    TK_ASSERT(error != NULL);
    TK_ASSERT(unavailable_count == 0 || unavailable != NULL);
    memset(error, 0, sizeof(*error));
    error->code = rpc_status_code(status);
    snprintf(error->name, sizeof(error->name), "%s", tk_status_name(status));
    snprintf(error->message, sizeof(error->message), "%s", message != NULL ? message : tk_status_message(status));
    if (unavailable_count > RPC_ERROR_SEATS_MAX)
        unavailable_count = RPC_ERROR_SEATS_MAX;
    error->unavailable_count = unavailable_count;
    if (unavailable_count)
        memcpy(error->unavailable, unavailable, unavailable_count * sizeof(uint32_t));
}

size_t rpc_error_encode(const struct rpc_error *error, uint8_t *out, size_t out_len)
{
    Tiketi__V1__ErrorDetail detail = TIKETI__V1__ERROR_DETAIL__INIT;
    detail.code = (char *)error->name;
    detail.message = (char *)error->message;
    detail.n_unavailable_seats = error->unavailable_count;
    detail.unavailable_seats = (uint32_t *)error->unavailable;
    size_t size = tiketi__v1__error_detail__get_packed_size(&detail);
    if (size > out_len)
        return 0;
    size_t packed = tiketi__v1__error_detail__pack(&detail, out);
    TK_ASSERT(packed == size);
    return packed;
}

bool rpc_error_decode(struct rpc_error *error, const uint8_t *bytes, size_t len)
{
    Tiketi__V1__ErrorDetail *detail = tiketi__v1__error_detail__unpack(NULL, len, bytes);
    if (detail == NULL)
        return false;
    snprintf(error->name, sizeof(error->name), "%s", detail->code);
    snprintf(error->message, sizeof(error->message), "%s", detail->message);
    error->unavailable_count = 0;
    for (size_t i = 0; i < detail->n_unavailable_seats && i < RPC_ERROR_SEATS_MAX; i++)
        error->unavailable[error->unavailable_count++] = detail->unavailable_seats[i];
    tiketi__v1__error_detail__free_unpacked(detail, NULL);
    return true;
}

const char *rpc_code_name(grpc_status_code code)
{
    static const char *const names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                        "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
    if ((unsigned)code >= sizeof(names) / sizeof(names[0]))
        return "UNKNOWN";
    return names[code];
}
