/* test_rpc_status.c — tk_status -> gRPC codes and the ErrorDetail trailer
 * (rpc/rpc_status.c): every status maps, round trips, hostile bytes refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "rpc_status.h"

Test(rpc_status, every_status_has_a_code_and_ok_is_ok)
{
    cr_assert_eq(rpc_status_code(TK_OK), GRPC_STATUS_OK);
    for (int s = 1; s < TK_STATUS_COUNT; s++)
        cr_assert_neq(rpc_status_code((enum tk_status)s), GRPC_STATUS_OK, "status %d", s);
    cr_assert_eq(rpc_status_code(TK_ERR_SEAT_CONFLICT), GRPC_STATUS_ABORTED);
    cr_assert_eq(rpc_status_code(TK_ERR_NOT_FOUND), GRPC_STATUS_NOT_FOUND);
    cr_assert_eq(rpc_status_code(TK_ERR_INVALID), GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(rpc_status_code(TK_ERR_EXISTS), GRPC_STATUS_ALREADY_EXISTS);
    cr_assert_eq(rpc_status_code(TK_ERR_HOLD_EXPIRED), GRPC_STATUS_FAILED_PRECONDITION);
    cr_assert_eq(rpc_status_code(TK_ERR_QUEUE_FULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert_eq(rpc_status_code(TK_ERR_UNAVAILABLE), GRPC_STATUS_UNAVAILABLE);
    cr_assert_eq(rpc_status_code((enum tk_status)999), GRPC_STATUS_INTERNAL);
}

Test(rpc_status, error_detail_round_trip)
{
    struct rpc_error error, back;
    uint32_t seats[3] = {4, 8, 15};
    rpc_error_from_status(&error, TK_ERR_SEAT_CONFLICT, NULL, seats, 3);
    cr_assert_str_eq(error.name, "seat_unavailable");
    uint8_t bytes[512];
    size_t len = rpc_error_encode(&error, bytes, sizeof(bytes));
    cr_assert_gt(len, 0);
    memset(&back, 0, sizeof(back));
    cr_assert(rpc_error_decode(&back, bytes, len));
    cr_assert_str_eq(back.name, "seat_unavailable");
    cr_assert_str_eq(back.message, error.message);
    cr_assert_eq(back.unavailable_count, 3);
    cr_assert_eq(back.unavailable[2], 15);
    cr_assert_eq(rpc_error_encode(&error, bytes, 4), 0, "too small a buffer is refused, not overrun");
}

Test(rpc_status, hostile_trailers_are_refused_or_bounded)
{
    struct rpc_error back;
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    cr_assert(!rpc_error_decode(&back, garbage, sizeof(garbage)));
    /* 100 unavailable seats: decoded, but only RPC_ERROR_SEATS_MAX kept. */
    uint8_t bytes[1024];
    size_t n = 0;
    for (uint32_t i = 0; i < 100; i++) {
        bytes[n++] = 0x18; /* field 3, varint */
        bytes[n++] = (uint8_t)i;
    }
    cr_assert(rpc_error_decode(&back, bytes, n));
    cr_assert_eq(back.unavailable_count, RPC_ERROR_SEATS_MAX);
    cr_assert_str_eq(rpc_code_name(GRPC_STATUS_ABORTED), "ABORTED");
    cr_assert_str_eq(rpc_code_name((grpc_status_code)77), "UNKNOWN");
}
