/* edge_problem.h — a failed gRPC call as an HTTP status and a problem code.
 *
 * Pure: the services send a machine name in the tiketi-error-bin trailer
 * ("seat_unavailable", "email_taken", ...) and a gRPC code. The name decides
 * when it is known (it is the precise one); the gRPC code is the fallback for
 * names this table has never heard of. The codes clients see are stable: they
 * are API.md's, and a service renaming its error does not change them by
 * accident (an unknown name falls back to the code's generic problem).
 * Tested in tests/unit/edge/test_edge_problem.c. */
#ifndef EDGE_PROBLEM_H
#define EDGE_PROBLEM_H

#include <grpc/status.h>
#include <stdbool.h>
#include <stdint.h>

struct edge_problem {
    uint16_t status;   /* HTTP status */
    const char *code;  /* problem code, e.g. "seat_unavailable" */
    const char *title; /* a short sentence for people */
    bool retryable;    /* 503/429-like: add Retry-After */
    bool internal;     /* 5xx from a fault: the service's message is not shown */
};

struct edge_problem edge_problem_for(grpc_status_code code, const char *name);
/* The problem of an HTTP status the edge itself decides (400, 401, 404, 413, 429 ...). */
struct edge_problem edge_problem_status(uint16_t status);
/* "Not Found" ...; "Unknown" for statuses never sent. */
const char *edge_status_reason(int status);
/* Seconds from a message like "... try again in 42 s"; 0 when none. */
uint32_t edge_retry_after_from_message(const char *message);

#endif
