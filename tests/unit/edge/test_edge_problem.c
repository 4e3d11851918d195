/* test_edge_problem.c — tests edge/edge_problem.c: the services' error names and
 * gRPC codes as API.md's HTTP statuses and problem codes. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../edge/edge_problem.c"

static void expect(grpc_status_code code, const char *name, int status, const char *problem_code)
{
    struct edge_problem p = edge_problem_for(code, name);
    cr_expect_eq(p.status, status, "%s/%d -> %d, not %d", name, code, status, p.status);
    cr_expect_str_eq(p.code, problem_code, "%s/%d", name, code);
    cr_expect_str_neq(p.title, "");
}

Test(edge_problem, the_contract_s_mappings)
{
    expect(GRPC_STATUS_ABORTED, "seat_unavailable", 409, "seat_unavailable");
    expect(GRPC_STATUS_FAILED_PRECONDITION, "not_admitted", 403, "not_admitted");
    expect(GRPC_STATUS_RESOURCE_EXHAUSTED, "seat_cap_reached", 422, "seat_cap_reached");
    expect(GRPC_STATUS_FAILED_PRECONDITION, "payment_declined", 402, "payment_declined");
    expect(GRPC_STATUS_FAILED_PRECONDITION, "hold_expired", 410, "hold_expired");
    expect(GRPC_STATUS_UNAVAILABLE, "payment_unavailable", 503, "payment_unavailable");
    expect(GRPC_STATUS_ALREADY_EXISTS, "email_taken", 409, "email_taken");
    expect(GRPC_STATUS_UNAUTHENTICATED, "invalid_credentials", 401, "invalid_credentials");
    expect(GRPC_STATUS_NOT_FOUND, "not_found", 404, "not_found");
    expect(GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", 400, "invalid_request");
    expect(GRPC_STATUS_RESOURCE_EXHAUSTED, "rate_limited", 429, "rate_limited");
    expect(GRPC_STATUS_UNAUTHENTICATED, "invalid_token", 401, "unauthenticated");
}

Test(edge_problem, another_user_s_reservation_is_not_found)
{
    expect(GRPC_STATUS_FAILED_PRECONDITION, "not_owner", 404, "not_found");
    expect(GRPC_STATUS_NOT_FOUND, "reservation_not_found", 404, "not_found");
    expect(GRPC_STATUS_NOT_FOUND, "user_not_found", 404, "not_found");
}

Test(edge_problem, unknown_names_fall_back_to_the_grpc_code)
{
    expect(GRPC_STATUS_INVALID_ARGUMENT, "", 400, "invalid_request");
    expect(GRPC_STATUS_NOT_FOUND, "a_name_from_the_future", 404, "not_found");
    expect(GRPC_STATUS_UNAVAILABLE, NULL, 503, "unavailable");
    expect(GRPC_STATUS_DEADLINE_EXCEEDED, "", 504, "timeout");
    expect(GRPC_STATUS_PERMISSION_DENIED, "", 403, "forbidden");
    expect(GRPC_STATUS_UNAUTHENTICATED, "", 401, "unauthenticated");
    expect(GRPC_STATUS_FAILED_PRECONDITION, "", 409, "conflict");
    expect(GRPC_STATUS_RESOURCE_EXHAUSTED, "", 503, "overloaded");
    expect(GRPC_STATUS_UNKNOWN, "", 500, "internal");
    expect(GRPC_STATUS_DATA_LOSS, "", 500, "internal");
    cr_assert(edge_problem_for(GRPC_STATUS_INTERNAL, "").internal, "internal messages are not shown");
    cr_assert(edge_problem_for(GRPC_STATUS_UNAVAILABLE, "").retryable, "503 says Retry-After");
    cr_assert(!edge_problem_for(GRPC_STATUS_NOT_FOUND, "").retryable);
}

Test(edge_problem, statuses_the_edge_decides)
{
    static const struct {
        uint16_t status;
        const char *code;
    } cases[] = {{400, "invalid_request"}, {401, "unauthenticated"}, {403, "forbidden"},   {404, "not_found"},
                 {405, "method_not_allowed"}, {413, "payload_too_large"}, {429, "rate_limited"}, {503, "unavailable"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct edge_problem p = edge_problem_status(cases[i].status);
        cr_expect_eq(p.status, cases[i].status);
        cr_expect_str_eq(p.code, cases[i].code);
    }
    cr_assert(edge_problem_status(429).retryable);
    cr_assert_str_eq(edge_status_reason(404), "Not Found");
    cr_assert_str_eq(edge_status_reason(422), "Unprocessable Content");
    cr_assert_str_eq(edge_status_reason(299), "Unknown");
}

Test(edge_problem, retry_after_from_a_service_message)
{
    cr_assert_eq(edge_retry_after_from_message("too many failed logins; try again in 42 s"), 42);
    cr_assert_eq(edge_retry_after_from_message("try again in 7s"), 7);
    cr_assert_eq(edge_retry_after_from_message("try again in a while"), 0);
    cr_assert_eq(edge_retry_after_from_message("try again in 0 s"), 0);
    cr_assert_eq(edge_retry_after_from_message("try again in 99999999 s"), 0, "absurd values are ignored");
    cr_assert_eq(edge_retry_after_from_message(""), 0);
    cr_assert_eq(edge_retry_after_from_message(NULL), 0);
}
