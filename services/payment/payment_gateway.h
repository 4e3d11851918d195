/* payment_gateway.h — payment-svc's HTTP client of the card gateway.
 *
 * One call (prepare, confirm, refund) is a POST with an Idempotency-Key, made
 * within one time budget (--gateway-timeout-ms, 6 s, capped by the gRPC
 * caller's deadline) that covers every attempt and backoff. Retrying is safe
 * only because the key makes the gateway execute a request at most once and
 * return its first answer to a repeat; so a call without a key is made once.
 * A call is retried on what says "try again": no connection, a timeout, a 5xx,
 * 409 "request in progress" (the first attempt still runs) and 429; never on a
 * decline or another 4xx, which a repeat cannot change.
 *
 * Each attempt asks the circuit breaker first (refused: no request at all) and
 * tells it the outcome: connection errors, timeouts and 5xx count as failures;
 * any other answer shows the gateway alive. Every attempt is returned to the
 * caller (for payment_attempts rows) and counted in metrics.
 *
 * Threads: each svc worker has its own curl handle (index = worker index), so
 * keep-alive connections are reused without locks. */
#ifndef PAYMENT_GATEWAY_H
#define PAYMENT_GATEWAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "payment_breaker.h"
#include "tk_status.h"

#define PAYMENT_GATEWAY_ATTEMPTS_MAX 8u
#define PAYMENT_GATEWAY_WORKERS_MAX 256u
#define PAYMENT_GATEWAY_RESPONSE_BYTES_MAX (64u * 1024u)
#define PAYMENT_GATEWAY_MESSAGE_BYTES 200u

enum payment_op { PAYMENT_OP_PREPARE, PAYMENT_OP_CONFIRM, PAYMENT_OP_REFUND, PAYMENT_OPS };

/* What one attempt came to. */
enum payment_attempt_kind {
    PAYMENT_ATTEMPT_SUCCESS,         /* 2xx with a JSON object */
    PAYMENT_ATTEMPT_DECLINED,        /* 402 */
    PAYMENT_ATTEMPT_CLIENT_ERROR,    /* another 4xx: final */
    PAYMENT_ATTEMPT_IN_PROGRESS,     /* 409 request_in_progress: retry later */
    PAYMENT_ATTEMPT_THROTTLED,       /* 429: retry later */
    PAYMENT_ATTEMPT_SERVER_ERROR,    /* 5xx, or a 2xx the client cannot read */
    PAYMENT_ATTEMPT_TIMEOUT,         /* no complete answer within the budget */
    PAYMENT_ATTEMPT_NETWORK_ERROR,   /* cannot connect, connection reset or closed */
    PAYMENT_ATTEMPT_SHORT_CIRCUITED, /* the breaker refused: nothing was sent */
    PAYMENT_ATTEMPT_KINDS
};

/* What the whole call came to. */
enum payment_gateway_result {
    PAYMENT_GATEWAY_OK,
    PAYMENT_GATEWAY_DECLINED,
    PAYMENT_GATEWAY_REJECTED,       /* a 4xx other than 402 */
    PAYMENT_GATEWAY_UNAVAILABLE,    /* gave up: the outcome is unknown */
    PAYMENT_GATEWAY_SHORT_CIRCUITED /* the breaker refused the first attempt */
};

struct payment_gateway_attempt {
    uint32_t number; /* 1-based */
    enum payment_attempt_kind kind;
    long http_status; /* 0 without an answer */
    uint32_t latency_ms;
};

struct payment_gateway_reply {
    enum payment_gateway_result result;
    long http_status;        /* of the last answer, 0 if none */
    json_t *body;            /* the last answer's JSON (owned; payment_gateway_reply_release) */
    bool replayed;           /* the gateway answered from its idempotency table */
    char error_code[64];     /* error.code of a 4xx/5xx answer, "" if none */
    char decline_code[64];   /* error.decline_code of a 402 */
    char message[PAYMENT_GATEWAY_MESSAGE_BYTES]; /* for logs and the client */
    uint32_t attempt_count;
    struct payment_gateway_attempt attempts[PAYMENT_GATEWAY_ATTEMPTS_MAX];
};

struct payment_gateway_config {
    const char *base_url;
    const char *name;
    uint32_t timeout_ms;
    uint32_t connect_timeout_ms;
    uint32_t attempts_max;
    uint32_t backoff_ms;
    uint32_t workers;
    struct payment_breaker_config breaker;
};

struct payment_gateway;

/* curl_global_init must have run (main does it before any thread). */
enum tk_status payment_gateway_create(struct payment_gateway **out, const struct payment_gateway_config *config,
                                      char *err, size_t err_len);
void payment_gateway_destroy(struct payment_gateway *gateway);

/* POSTs body (JSON text) to base_url + path from worker's thread. budget_ms caps
 * the call's time further (the caller's deadline); key NULL: not retried. */
void payment_gateway_post(struct payment_gateway *gateway, uint32_t worker, enum payment_op op, const char *path,
                          const char *idempotency_key, const char *body, int64_t budget_ms, const char *request_id,
                          struct payment_gateway_reply *reply);
void payment_gateway_reply_release(struct payment_gateway_reply *reply);

/* False while the breaker would refuse a call (fail fast before any work). */
bool payment_gateway_available(struct payment_gateway *gateway);
struct payment_breaker *payment_gateway_breaker(struct payment_gateway *gateway);
uint32_t payment_gateway_timeout_ms(const struct payment_gateway *gateway);

const char *payment_op_name(enum payment_op op);           /* prepare, confirm, refund */
const char *payment_op_db_name(enum payment_op op);        /* payment_attempts.operation */
const char *payment_attempt_kind_name(enum payment_attempt_kind kind);

/* Prometheus text: breaker state and transitions, attempts, retries, latency. */
void payment_gateway_metrics_write(FILE *out, struct payment_gateway *gateway);

#endif
