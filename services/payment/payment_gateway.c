/* payment_gateway.c — the gateway HTTP client: attempts, retries, breaker,
 * metrics (payment_gateway.h). */
#include "payment_gateway.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc_log.h"
#include "tk_assert.h"
#include "tk_clock.h"
#include "tk_metrics.h"

#define ATTEMPT_MS_MIN 20 /* an attempt with less time left than this is not started */
#define URL_BYTES_MAX 1024u

struct worker_http {
    CURL *easy;
    char *body; /* PAYMENT_GATEWAY_RESPONSE_BYTES_MAX + 1 */
    size_t body_len;
    bool overflow;
    bool replayed;
};

struct payment_gateway {
    char base_url[512];
    char name[64];
    uint32_t timeout_ms, connect_timeout_ms, attempts_max, backoff_ms;
    struct payment_breaker breaker;
    uint32_t worker_count;
    struct worker_http workers[PAYMENT_GATEWAY_WORKERS_MAX];
    _Atomic uint64_t attempts[PAYMENT_OPS][PAYMENT_ATTEMPT_KINDS];
    _Atomic uint64_t retries[PAYMENT_OPS];
    struct tk_histogram latency_ns[PAYMENT_OPS];
    _Atomic uint64_t jitter;
};

static int64_t now_ms(void)
{
    return (int64_t)(tk_monotonic_ns() / 1000000u);
}

const char *payment_op_name(enum payment_op op)
{
    static const char *const names[PAYMENT_OPS] = {"prepare", "confirm", "refund"};
    TK_ASSERT(op < PAYMENT_OPS);
    return names[op];
}

const char *payment_op_db_name(enum payment_op op)
{
    static const char *const names[PAYMENT_OPS] = {"prepare", "approve", "refund"};
    TK_ASSERT(op < PAYMENT_OPS);
    return names[op];
}

const char *payment_attempt_kind_name(enum payment_attempt_kind kind)
{
    static const char *const names[PAYMENT_ATTEMPT_KINDS] = {
        "success",      "declined", "client_error",  "in_progress",    "throttled",
        "server_error", "timeout",  "network_error", "short_circuited"};
    TK_ASSERT(kind < PAYMENT_ATTEMPT_KINDS);
    return names[kind];
}

/* ---- create / destroy ---- */

enum tk_status payment_gateway_create(struct payment_gateway **out, const struct payment_gateway_config *config,
                                      char *err, size_t err_len)
{
    TK_ASSERT(out != NULL && config != NULL && config->base_url != NULL && config->name != NULL);
    TK_ASSERT(config->attempts_max >= 1 && config->attempts_max <= PAYMENT_GATEWAY_ATTEMPTS_MAX);
    if (config->workers < 1 || config->workers > PAYMENT_GATEWAY_WORKERS_MAX) {
        snprintf(err, err_len, "the gateway client supports 1..%u workers", PAYMENT_GATEWAY_WORKERS_MAX);
        return TK_ERR_INVALID;
    }
    struct payment_gateway *gw = calloc(1, sizeof(*gw));
    TK_ASSERT(gw != NULL);
    snprintf(gw->base_url, sizeof(gw->base_url), "%s", config->base_url);
    snprintf(gw->name, sizeof(gw->name), "%s", config->name);
    gw->timeout_ms = config->timeout_ms;
    gw->connect_timeout_ms = config->connect_timeout_ms;
    gw->attempts_max = config->attempts_max;
    gw->backoff_ms = config->backoff_ms;
    gw->worker_count = config->workers;
    atomic_store(&gw->jitter, tk_monotonic_ns() | 1u);
    payment_breaker_init(&gw->breaker, &config->breaker);
    for (uint32_t i = 0; i < gw->worker_count; i++) {
        gw->workers[i].easy = curl_easy_init();
        gw->workers[i].body = malloc(PAYMENT_GATEWAY_RESPONSE_BYTES_MAX + 1);
        if (gw->workers[i].easy == NULL || gw->workers[i].body == NULL) {
            snprintf(err, err_len, "cannot create the HTTP client (out of memory)");
            payment_gateway_destroy(gw);
            return TK_ERR_FULL;
        }
    }
    *out = gw;
    return TK_OK;
}

void payment_gateway_destroy(struct payment_gateway *gw)
{
    if (gw == NULL)
        return;
    for (uint32_t i = 0; i < gw->worker_count; i++) {
        if (gw->workers[i].easy != NULL)
            curl_easy_cleanup(gw->workers[i].easy);
        free(gw->workers[i].body);
    }
    payment_breaker_destroy(&gw->breaker);
    free(gw);
}

/* ---- one attempt ---- */

static size_t on_body(char *data, size_t size, size_t count, void *ctx)
{
    struct worker_http *w = ctx;
    size_t n = size * count;
    if (w->body_len + n > PAYMENT_GATEWAY_RESPONSE_BYTES_MAX) {
        w->overflow = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    memcpy(w->body + w->body_len, data, n);
    w->body_len += n;
    return n;
}

static size_t on_header(char *data, size_t size, size_t count, void *ctx)
{
    struct worker_http *w = ctx;
    size_t n = size * count;
    static const char replayed[] = "idempotent-replayed: true";
    if (n >= sizeof(replayed) - 1 && strncasecmp(data, replayed, sizeof(replayed) - 1) == 0)
        w->replayed = true;
    return n;
}

static void copy_json_string(json_t *object, const char *name, char *out, size_t out_len)
{
    const char *value = json_string_value(json_object_get(object, name));
    snprintf(out, out_len, "%s", value != NULL ? value : "");
}

static enum payment_attempt_kind classify(CURLcode rc, long status, struct payment_gateway_reply *reply)
{
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return PAYMENT_ATTEMPT_TIMEOUT;
    if (rc == CURLE_WRITE_ERROR)
        return PAYMENT_ATTEMPT_SERVER_ERROR; /* an answer too large to be a gateway's */
    if (rc != CURLE_OK)
        return PAYMENT_ATTEMPT_NETWORK_ERROR;
    json_t *error = json_object_get(reply->body, "error");
    copy_json_string(error, "code", reply->error_code, sizeof(reply->error_code));
    copy_json_string(error, "decline_code", reply->decline_code, sizeof(reply->decline_code));
    if (status >= 200 && status < 300)
        return json_is_object(reply->body) ? PAYMENT_ATTEMPT_SUCCESS : PAYMENT_ATTEMPT_SERVER_ERROR;
    if (status == 402)
        return PAYMENT_ATTEMPT_DECLINED;
    if (status == 409 && strcmp(reply->error_code, "request_in_progress") == 0)
        return PAYMENT_ATTEMPT_IN_PROGRESS;
    if (status == 429)
        return PAYMENT_ATTEMPT_THROTTLED;
    if (status >= 400 && status < 500)
        return PAYMENT_ATTEMPT_CLIENT_ERROR;
    return PAYMENT_ATTEMPT_SERVER_ERROR;
}

static bool kind_is_failure(enum payment_attempt_kind kind)
{
    return kind == PAYMENT_ATTEMPT_SERVER_ERROR || kind == PAYMENT_ATTEMPT_TIMEOUT ||
           kind == PAYMENT_ATTEMPT_NETWORK_ERROR;
}

static bool kind_is_retryable(enum payment_attempt_kind kind)
{
    return kind_is_failure(kind) || kind == PAYMENT_ATTEMPT_IN_PROGRESS || kind == PAYMENT_ATTEMPT_THROTTLED;
}

static void describe(struct payment_gateway_reply *reply, enum payment_attempt_kind kind, CURLcode rc,
                     const char *curl_error, int64_t timeout_ms)
{
    const char *message = json_string_value(json_object_get(json_object_get(reply->body, "error"), "message"));
    switch (kind) {
    case PAYMENT_ATTEMPT_TIMEOUT:
        snprintf(reply->message, sizeof(reply->message), "the gateway did not answer within %lld ms",
                 (long long)timeout_ms);
        break;
    case PAYMENT_ATTEMPT_NETWORK_ERROR:
        snprintf(reply->message, sizeof(reply->message), "cannot reach the gateway: %s",
                 curl_error[0] ? curl_error : curl_easy_strerror(rc));
        break;
    case PAYMENT_ATTEMPT_SUCCESS:
        reply->message[0] = '\0';
        break;
    default:
        snprintf(reply->message, sizeof(reply->message), "the gateway answered %ld%s%s%s%s", reply->http_status,
                 reply->error_code[0] ? " " : "", reply->error_code, message ? ": " : "", message ? message : "");
        break;
    }
}

/* Makes one HTTP request; fills the reply's answer fields and returns the attempt's kind. */
static enum payment_attempt_kind attempt_once(struct payment_gateway *gw, struct worker_http *w, const char *url,
                                              struct curl_slist *headers, const char *body, int64_t timeout_ms,
                                              struct payment_gateway_reply *reply)
{
    TK_ASSERT(timeout_ms >= ATTEMPT_MS_MIN);
    CURL *easy = w->easy;
    char curl_error[CURL_ERROR_SIZE] = "";
    w->body_len = 0;
    w->overflow = false;
    w->replayed = false;
    curl_easy_reset(easy); /* keeps the connection cache */
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "tiketi-payment-svc/1");
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    long connect_ms = gw->connect_timeout_ms < timeout_ms ? (long)gw->connect_timeout_ms : (long)timeout_ms;
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, w);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, curl_error);
    CURLcode rc = curl_easy_perform(easy);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    json_decref(reply->body);
    reply->body = NULL;
    reply->error_code[0] = reply->decline_code[0] = '\0';
    reply->http_status = status;
    reply->replayed = w->replayed;
    if (rc == CURLE_OK && w->body_len > 0)
        reply->body = json_loadb(w->body, w->body_len, JSON_REJECT_DUPLICATES, NULL);
    enum payment_attempt_kind kind = classify(rc, status, reply);
    describe(reply, kind, rc, curl_error, timeout_ms);
    return kind;
}

/* ---- the call ---- */

static struct curl_slist *request_headers(const char *key, const char *request_id)
{
    char line[320];
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    if (key != NULL) {
        snprintf(line, sizeof(line), "Idempotency-Key: %s", key);
        headers = curl_slist_append(headers, line);
    }
    if (request_id != NULL && request_id[0] != '\0') {
        snprintf(line, sizeof(line), "X-Request-Id: %s", request_id);
        headers = curl_slist_append(headers, line);
    }
    TK_ASSERT(headers != NULL);
    return headers;
}

/* Exponential backoff with up to 50 % jitter, so retrying workers do not march in step. */
static uint32_t backoff_ms(struct payment_gateway *gw, uint32_t retry)
{
    uint32_t base = gw->backoff_ms << (retry < 10 ? retry : 10);
    uint64_t x = atomic_fetch_add(&gw->jitter, 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 31)) * 0xBF58476D1CE4E5B9ull;
    return base + (uint32_t)((x >> 33) % (base / 2 + 1));
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static enum payment_gateway_result result_of(enum payment_attempt_kind kind)
{
    switch (kind) {
    case PAYMENT_ATTEMPT_SUCCESS:
        return PAYMENT_GATEWAY_OK;
    case PAYMENT_ATTEMPT_DECLINED:
        return PAYMENT_GATEWAY_DECLINED;
    case PAYMENT_ATTEMPT_CLIENT_ERROR:
        return PAYMENT_GATEWAY_REJECTED;
    default:
        return PAYMENT_GATEWAY_UNAVAILABLE;
    }
}

static void note_attempt(struct payment_gateway *gw, enum payment_op op, struct payment_gateway_reply *reply,
                         enum payment_attempt_kind kind, uint64_t latency_ns)
{
    TK_ASSERT(reply->attempt_count < PAYMENT_GATEWAY_ATTEMPTS_MAX);
    reply->attempts[reply->attempt_count] = (struct payment_gateway_attempt){
        .number = reply->attempt_count + 1, .kind = kind, .http_status = reply->http_status,
        .latency_ms = (uint32_t)(latency_ns / 1000000u)};
    reply->attempt_count++;
    atomic_fetch_add_explicit(&gw->attempts[op][kind], 1, memory_order_relaxed);
    if (kind != PAYMENT_ATTEMPT_SHORT_CIRCUITED)
        tk_histogram_record(&gw->latency_ns[op], latency_ns);
}

void payment_gateway_post(struct payment_gateway *gw, uint32_t worker, enum payment_op op, const char *path,
                          const char *key, const char *body, int64_t budget_ms, const char *request_id,
                          struct payment_gateway_reply *reply)
{
    TK_ASSERT(gw != NULL && worker < gw->worker_count && op < PAYMENT_OPS);
    TK_ASSERT(path != NULL && path[0] == '/' && body != NULL && reply != NULL);
    memset(reply, 0, sizeof(*reply));
    char url[URL_BYTES_MAX];
    int n = snprintf(url, sizeof(url), "%s%s", gw->base_url, path);
    TK_ASSERT(n > 0 && (size_t)n < sizeof(url));
    struct curl_slist *headers = request_headers(key, request_id);
    const uint32_t attempts_max = key != NULL ? gw->attempts_max : 1; /* no key: a repeat is not safe */
    const int64_t started = now_ms();
    const int64_t budget = budget_ms < (int64_t)gw->timeout_ms ? budget_ms : (int64_t)gw->timeout_ms;
    reply->result = PAYMENT_GATEWAY_UNAVAILABLE;
    snprintf(reply->message, sizeof(reply->message), "no time left for the gateway call (deadline)");
    /* A call's retries under one key tell the breaker nothing new about the gateway, so a
     * call adds at most one failure to the window: one customer's charge that keeps failing
     * (re-asked by the saga every few seconds on a quiet stack) must not fill the window by
     * itself and open the breaker for everyone. Probes always report: a half-open round
     * waits for each of its outcomes. */
    bool failure_counted = false;
    for (uint32_t attempt = 0; attempt < attempts_max; attempt++) {
        int64_t left = budget - (now_ms() - started);
        if (left < ATTEMPT_MS_MIN)
            break;
        struct payment_breaker_ticket ticket = payment_breaker_acquire(&gw->breaker, now_ms());
        if (!ticket.allowed) {
            reply->http_status = 0;
            note_attempt(gw, op, reply, PAYMENT_ATTEMPT_SHORT_CIRCUITED, 0);
            reply->result = attempt == 0 ? PAYMENT_GATEWAY_SHORT_CIRCUITED : PAYMENT_GATEWAY_UNAVAILABLE;
            snprintf(reply->message, sizeof(reply->message), "the gateway circuit breaker is open");
            break;
        }
        uint64_t t0 = tk_monotonic_ns();
        enum payment_attempt_kind kind = attempt_once(gw, &gw->workers[worker], url, headers, body, left, reply);
        bool failed = kind_is_failure(kind);
        if (!failed || !failure_counted || ticket.probe)
            payment_breaker_record(&gw->breaker, ticket, failed, now_ms());
        failure_counted = failure_counted || failed;
        note_attempt(gw, op, reply, kind, tk_monotonic_ns() - t0);
        reply->result = result_of(kind);
        if (!kind_is_retryable(kind) || attempt + 1 == attempts_max)
            break;
        uint32_t pause = backoff_ms(gw, attempt);
        if (budget - (now_ms() - started) < (int64_t)pause + ATTEMPT_MS_MIN)
            break; /* the next attempt would not fit in the budget */
        rpc_log(RPC_LOG_DEBUG, "", "gateway %s attempt %u: %s; retrying in %u ms", payment_op_name(op), attempt + 1,
                payment_attempt_kind_name(kind), pause);
        atomic_fetch_add_explicit(&gw->retries[op], 1, memory_order_relaxed);
        sleep_ms(pause);
    }
    curl_slist_free_all(headers);
    TK_ASSERT(reply->result != PAYMENT_GATEWAY_OK || json_is_object(reply->body));
}

void payment_gateway_reply_release(struct payment_gateway_reply *reply)
{
    json_decref(reply->body);
    reply->body = NULL;
}

bool payment_gateway_available(struct payment_gateway *gw)
{
    return payment_breaker_would_allow(&gw->breaker, now_ms());
}

struct payment_breaker *payment_gateway_breaker(struct payment_gateway *gw)
{
    return &gw->breaker;
}

uint32_t payment_gateway_timeout_ms(const struct payment_gateway *gw)
{
    return gw->timeout_ms;
}

/* ---- metrics ---- */

void payment_gateway_metrics_write(FILE *out, struct payment_gateway *gw)
{
    enum payment_breaker_state state = payment_breaker_state(&gw->breaker, now_ms());
    fprintf(out, "# HELP tiketi_payment_breaker_state Gateway circuit breaker: 0 closed, 1 open, 2 half-open.\n"
                 "# TYPE tiketi_payment_breaker_state gauge\ntiketi_payment_breaker_state{gateway=\"%s\"} %d\n",
            gw->name, (int)state);
    fprintf(out, "# HELP tiketi_payment_breaker_transitions_total Breaker state changes, by the state entered.\n"
                 "# TYPE tiketi_payment_breaker_transitions_total counter\n");
    for (int s = 0; s < PAYMENT_BREAKER_STATES; s++)
        fprintf(out, "tiketi_payment_breaker_transitions_total{gateway=\"%s\",to=\"%s\"} %llu\n", gw->name,
                payment_breaker_state_name((enum payment_breaker_state)s),
                (unsigned long long)atomic_load(&gw->breaker.transitions[s]));
    fprintf(out, "# HELP tiketi_payment_gateway_attempts_total HTTP attempts to the gateway, by outcome.\n"
                 "# TYPE tiketi_payment_gateway_attempts_total counter\n");
    for (int op = 0; op < PAYMENT_OPS; op++)
        for (int k = 0; k < PAYMENT_ATTEMPT_KINDS; k++)
            fprintf(out, "tiketi_payment_gateway_attempts_total{gateway=\"%s\",operation=\"%s\",outcome=\"%s\"} %llu\n",
                    gw->name, payment_op_name((enum payment_op)op),
                    payment_attempt_kind_name((enum payment_attempt_kind)k),
                    (unsigned long long)atomic_load(&gw->attempts[op][k]));
    fprintf(out, "# HELP tiketi_payment_gateway_retries_total Attempts repeated under the same idempotency key.\n"
                 "# TYPE tiketi_payment_gateway_retries_total counter\n");
    for (int op = 0; op < PAYMENT_OPS; op++)
        fprintf(out, "tiketi_payment_gateway_retries_total{gateway=\"%s\",operation=\"%s\"} %llu\n", gw->name,
                payment_op_name((enum payment_op)op), (unsigned long long)atomic_load(&gw->retries[op]));
    fprintf(out, "# HELP tiketi_payment_gateway_attempt_seconds Latency of one HTTP attempt to the gateway.\n"
                 "# TYPE tiketi_payment_gateway_attempt_seconds histogram\n");
    for (int op = 0; op < PAYMENT_OPS; op++) {
        char labels[160];
        snprintf(labels, sizeof(labels), "gateway=\"%s\",operation=\"%s\"", gw->name,
                 payment_op_name((enum payment_op)op));
        tk_histogram_write_prometheus(out, "tiketi_payment_gateway_attempt_seconds", labels, &gw->latency_ns[op]);
    }
}
