/* edge_problem.c — the tables of edge_problem.h. */
#include "edge_problem.h"

#include <stdlib.h>
#include <string.h>

#include "tk_assert.h"

struct named_problem {
    const char *name; /* the service's machine name */
    struct edge_problem problem;
};

/* Names from the comments of the .proto contracts, seatcore/tk_status.c and the
 * service docs. Several map to one client code where clients need not tell
 * them apart (another user's reservation is simply not found). */
static const struct named_problem named[] = {
    {"invalid_request", {400, "invalid_request", "The request is invalid", false, false}},
    {"email_taken", {409, "email_taken", "An account with this e-mail address exists", false, false}},
    {"invalid_credentials", {401, "invalid_credentials", "Wrong e-mail address or password", false, false}},
    {"invalid_refresh_token", {401, "invalid_refresh_token", "The refresh token is not valid", false, false}},
    {"refresh_token_expired", {401, "refresh_token_expired", "The refresh token has expired", false, false}},
    {"refresh_token_revoked", {401, "refresh_token_revoked", "The refresh token was revoked", false, false}},
    {"refresh_token_reused", {401, "refresh_token_reused", "The refresh token was already used", false, false}},
    {"invalid_token", {401, "unauthenticated", "The access token is not valid", false, false}},
    {"rate_limited", {429, "rate_limited", "Too many requests", true, false}},
    {"not_found", {404, "not_found", "Not found", false, false}},
    {"user_not_found", {404, "not_found", "Not found", false, false}},
    {"reservation_not_found", {404, "not_found", "Not found", false, false}},
    {"payment_not_found", {404, "not_found", "Not found", false, false}},
    {"not_owner", {404, "not_found", "Not found", false, false}},
    {"seat_unavailable", {409, "seat_unavailable", "Some seats are not available", false, false}},
    {"sold_out", {409, "sold_out", "No seats matching the request are available", false, false}},
    {"hold_expired", {410, "hold_expired", "The hold has expired", false, false}},
    {"seat_cap_reached", {422, "seat_cap_reached", "Over the per-user seat limit for this event", false, false}},
    {"not_admitted", {403, "not_admitted", "A valid admission token is required", false, false}},
    {"event_closed", {409, "event_closed", "The event is not on sale", false, false}},
    {"queue_full", {503, "queue_full", "The waiting room is full", true, false}},
    {"limit_reached", {503, "limit_reached", "A capacity limit was reached", true, false}},
    {"already_exists", {409, "conflict", "The resource already exists", false, false}},
    {"idempotency_key_reused", {422, "idempotency_key_reused", "The idempotency key was used for another request",
                                false, false}},
    {"request_in_progress", {409, "request_in_progress", "A request with this idempotency key is in progress", true,
                             false}},
    {"reservation_not_pending", {409, "reservation_not_pending", "The reservation is no longer a pending hold", false,
                                 false}},
    {"reservation_not_confirmed", {409, "reservation_not_confirmed", "The reservation is not confirmed", false,
                                   false}},
    {"payment_in_progress", {409, "payment_in_progress", "A payment for this reservation is in progress", true,
                             false}},
    {"payment_declined", {402, "payment_declined", "The payment was declined", false, false}},
    {"payment_failed", {402, "payment_failed", "The payment failed", false, false}},
    {"payment_unavailable", {503, "payment_unavailable", "Payments are unavailable; the hold is kept until it expires",
                             true, false}},
    {"payment_not_refundable", {409, "payment_not_refundable", "The payment cannot be refunded", false, false}},
    {"refund_failed", {409, "refund_failed", "The refund failed; retry later", true, false}},
    {"unavailable", {503, "unavailable", "A service is unavailable", true, false}},
    {"database_unavailable", {503, "unavailable", "A service is unavailable", true, false}},
    {"storage_unavailable", {503, "unavailable", "A service is unavailable", true, false}},
    {"overloaded", {503, "overloaded", "The service is overloaded", true, false}},
    {"storage_error", {503, "unavailable", "A service is unavailable", true, false}},
    {"internal", {500, "internal", "Internal error", false, true}},
    {"engine_refused", {500, "internal", "Internal error", false, true}},
    {"engine_out_of_step", {500, "internal", "Internal error", false, true}},
    {"data_corrupt", {500, "internal", "Internal error", false, true}},
};
#define NAMED_COUNT (sizeof(named) / sizeof(named[0]))

static struct edge_problem by_code(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
        return (struct edge_problem){400, "invalid_request", "The request is invalid", false, false};
    case GRPC_STATUS_NOT_FOUND:
        return (struct edge_problem){404, "not_found", "Not found", false, false};
    case GRPC_STATUS_ALREADY_EXISTS:
    case GRPC_STATUS_ABORTED:
    case GRPC_STATUS_FAILED_PRECONDITION:
        return (struct edge_problem){409, "conflict", "The request conflicts with the current state", false, false};
    case GRPC_STATUS_PERMISSION_DENIED:
        return (struct edge_problem){403, "forbidden", "Forbidden", false, false};
    case GRPC_STATUS_UNAUTHENTICATED:
        return (struct edge_problem){401, "unauthenticated", "Authentication required", false, false};
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return (struct edge_problem){503, "overloaded", "The service is overloaded", true, false};
    case GRPC_STATUS_UNIMPLEMENTED:
        return (struct edge_problem){501, "not_implemented", "Not implemented", false, true};
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_CANCELLED:
        return (struct edge_problem){503, "unavailable", "A service is unavailable", true, false};
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return (struct edge_problem){504, "timeout", "A service did not answer in time", true, false};
    default:
        return (struct edge_problem){500, "internal", "Internal error", false, true};
    }
}

struct edge_problem edge_problem_for(grpc_status_code code, const char *name)
{
    TK_ASSERT(code != GRPC_STATUS_OK);
    if (name != NULL && name[0] != '\0') {
        for (size_t i = 0; i < NAMED_COUNT; i++)
            if (strcmp(named[i].name, name) == 0)
                return named[i].problem;
    }
    struct edge_problem problem = by_code(code);
    TK_ASSERT(problem.status >= 400 && problem.status <= 599);
    return problem;
}

struct edge_problem edge_problem_status(uint16_t status)
{
    switch (status) {
    case 400:
        return (struct edge_problem){400, "invalid_request", "The request is invalid", false, false};
    case 401:
        return (struct edge_problem){401, "unauthenticated", "Authentication required", false, false};
    case 403:
        return (struct edge_problem){403, "forbidden", "Forbidden", false, false};
    case 404:
        return (struct edge_problem){404, "not_found", "Not found", false, false};
    case 405:
        return (struct edge_problem){405, "method_not_allowed", "Method not allowed", false, false};
    case 413:
        return (struct edge_problem){413, "payload_too_large", "The request body is too large", false, false};
    case 414:
        return (struct edge_problem){414, "uri_too_long", "The request target is too long", false, false};
    case 429:
        return (struct edge_problem){429, "rate_limited", "Too many requests", true, false};
    case 431:
        return (struct edge_problem){431, "headers_too_large", "The request headers are too large", false, false};
    case 502:
        return (struct edge_problem){502, "bad_gateway", "A service answered with something unexpected", true, true};
    case 503:
        return (struct edge_problem){503, "unavailable", "The service is unavailable", true, false};
    case 504:
        return (struct edge_problem){504, "timeout", "A service did not answer in time", true, false};
    default: /* statuses h2o may send on its own (e.g. a malformed request line) */
        if (status >= 500)
            return (struct edge_problem){status, "internal", "Internal error", false, true};
        return (struct edge_problem){status, "invalid_request", "The request is invalid", false, false};
    }
}

const char *edge_status_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

uint32_t edge_retry_after_from_message(const char *message)
{
    if (message == NULL)
        return 0;
    const char *at = strstr(message, " in ");
    if (at == NULL)
        return 0;
    at += 4;
    if (*at < '0' || *at > '9')
        return 0;
    char *end;
    unsigned long seconds = strtoul(at, &end, 10);
    if (end == at || seconds == 0 || seconds > 86400)
        return 0;
    while (*end == ' ')
        end++;
    if (*end != 's')
        return 0;
    return (uint32_t)seconds;
}
