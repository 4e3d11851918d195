/* sim_api.c — the simulator's HTTP API: routes, JSON, test cards and faults.
 *
 * The gateway API (docs/services/payment.md) mirrors a real card gateway:
 * payment intents are prepared, then confirmed; refunds are separate objects.
 * Every POST needs an Idempotency-Key: the first answer to a key is stored and
 * returned again for the same request (header Idempotent-Replayed: true), a
 * different request under the same key is refused (422), and a key whose first
 * request is still running answers 409 so the client backs off and retries.
 * 5xx answers are not stored: nothing happened, so a retry runs again.
 *
 * Faults apply to the gateway routes only (never to /healthz or the /v1/_sim routes):
 * latency first, then hang (hold the request, unprocessed, until the knob is
 * cleared, the client leaves or hang_max_ms passes; then close), then an
 * injected 500, either before anything happened or after the request was
 * executed and its answer stored (the case that punishes unsafe retries), then
 * drop: the request is executed and the connection closed without an answer. */
#include <ctype.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "sim.h"
#include "tk_assert.h"

#define METADATA_KEYS_MAX 16u
#define METADATA_KEY_BYTES_MAX 40u
#define METADATA_VALUE_BYTES_MAX 200u
#define TOKEN_BYTES_MAX 255u
#define LATENCY_MS_MAX 600000u
#define WAIT_STEP_MS 20

/* ---- responses ---- */

static void set_json(struct sim_response *response, int status, json_t *root)
{
    TK_ASSERT(root != NULL);
    response->status = status;
    response->body = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    TK_ASSERT(response->body != NULL);
    json_decref(root);
}

void sim_error(struct sim_response *response, int status, const char *type, const char *code, const char *message)
{
    free(response->body);
    response->body = NULL;
    set_json(response, status,
             json_pack("{s:{s:s,s:s,s:s}}", "error", "type", type, "code", code, "message", message));
}

bool sim_rate_parse(const char *text, uint32_t *ppm)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !(v >= 0.0 && v <= 1.0))
        return false;
    *ppm = (uint32_t)(v * 1000000.0 + 0.5);
    return true;
}

/* Sleeps ms in short steps; false if the simulator started stopping meanwhile. */
static bool sim_sleep(struct sim *sim, uint32_t ms)
{
    int64_t until = sim_monotonic_ms() + ms;
    for (;;) {
        if (atomic_load(&sim->stopping))
            return false;
        int64_t left = until - sim_monotonic_ms();
        if (left <= 0)
            return true;
        int64_t step = left < WAIT_STEP_MS ? left : WAIT_STEP_MS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = step * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool client_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* ---- JSON views ---- */

static json_t *intent_json(const struct sim_intent_view *v)
{
    json_t *metadata = json_loads(v->metadata, 0, NULL);
    if (metadata == NULL)
        metadata = json_object();
    json_t *root = json_pack("{s:s,s:s,s:I,s:s,s:s,s:I,s:{s:s},s:o,s:I}", "id", v->id, "object", "payment_intent",
                             "amount", (json_int_t)v->amount, "currency", v->currency, "status",
                             sim_intent_status_name(v->status), "amount_refunded", (json_int_t)v->refunded, "card",
                             "token_hint", v->card_hint, "metadata", metadata, "created_ms",
                             (json_int_t)v->created_ms);
    TK_ASSERT(root != NULL);
    json_object_set_new(root, "charge", v->charge_id[0] ? json_string(v->charge_id) : json_null());
    json_object_set_new(root, "last_decline_code", v->decline_code[0] ? json_string(v->decline_code) : json_null());
    return root;
}

static bool id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_')
            return false;
    return true;
}

static bool token_valid(const char *token)
{
    size_t n = strlen(token);
    if (n == 0 || n > TOKEN_BYTES_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (token[i] < 0x21 || token[i] > 0x7e)
            return false;
    return true;
}

/* Checks metadata (an object of short strings) and dumps it; NULL plus *why if it is not acceptable. */
static char *metadata_text(json_t *metadata, const char **payment_ref, const char **why)
{
    *payment_ref = "";
    if (metadata == NULL || json_is_null(metadata))
        return strdup("{}");
    if (!json_is_object(metadata) || json_object_size(metadata) > METADATA_KEYS_MAX) {
        *why = "metadata must be an object of at most 16 string values";
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(metadata, key, value)
    {
        if (strlen(key) > METADATA_KEY_BYTES_MAX || !json_is_string(value) ||
            json_string_length(value) > METADATA_VALUE_BYTES_MAX) {
            *why = "metadata keys are at most 40 bytes and values strings of at most 200";
            return NULL;
        }
    }
    json_t *ref = json_object_get(metadata, "payment_id");
    if (ref != NULL && json_string_length(ref) < SIM_PAYMENT_REF_BYTES)
        *payment_ref = json_string_value(ref);
    char *text = json_dumps(metadata, JSON_COMPACT | JSON_SORT_KEYS);
    if (text != NULL && strlen(text) >= SIM_METADATA_BYTES_MAX) {
        free(text);
        *why = "metadata is too large";
        return NULL;
    }
    return text;
}

/* ---- the gateway operations (run once per idempotency key) ---- */

static void create_intent(struct sim *sim, json_t *body, struct sim_response *response)
{
    json_t *amount = json_object_get(body, "amount"), *currency = json_object_get(body, "currency");
    json_t *token = json_object_get(body, "card_token");
    if (!json_is_integer(amount) || json_integer_value(amount) <= 0 || json_integer_value(amount) > SIM_AMOUNT_MAX) {
        sim_error(response, 400, "invalid_request_error", "parameter_invalid_integer",
                  "amount must be a positive whole number of minor units");
        return;
    }
    char code[4] = {0};
    const char *c = json_string_value(currency);
    if (c == NULL || strlen(c) != 3 || !isalpha((unsigned char)c[0]) || !isalpha((unsigned char)c[1]) ||
        !isalpha((unsigned char)c[2])) {
        sim_error(response, 400, "invalid_request_error", "currency_invalid", "currency must be a 3-letter code");
        return;
    }
    for (int i = 0; i < 3; i++)
        code[i] = (char)toupper((unsigned char)c[i]);
    const char *t = json_string_value(token);
    if (t == NULL || !token_valid(t)) {
        sim_error(response, 400, "invalid_request_error", "card_token_invalid",
                  "card_token must be 1..255 printable characters");
        return;
    }
    const char *payment_ref, *why = NULL;
    char *metadata = metadata_text(json_object_get(body, "metadata"), &payment_ref, &why);
    if (metadata == NULL) {
        sim_error(response, 400, "invalid_request_error", "metadata_invalid", why ? why : "bad metadata");
        return;
    }
    struct sim_intent_view view;
    bool ok = sim_intent_create(sim->store, json_integer_value(amount), code, t, metadata, payment_ref, &view);
    free(metadata);
    if (!ok) {
        sim_error(response, 503, "api_error", "intents_full",
                  "the simulator's intent table is full (restart it or raise --intents-max)");
        return;
    }
    set_json(response, 201, intent_json(&view));
}

static void decline(struct sim_response *response, const struct sim_intent_view *v)
{
    const bool unknown = strcmp(v->decline_code, "unknown_card") == 0;
    json_t *root = json_pack("{s:{s:s,s:s,s:s,s:s},s:o}", "error", "type", "card_error", "code", "card_declined",
                             "decline_code", v->decline_code, "message",
                             unknown ? "The card token is not known to the gateway." : "Your card was declined.",
                             "payment_intent", intent_json(v));
    set_json(response, 402, root);
}

static void confirm_intent(struct sim *sim, const char *id, struct sim_response *response)
{
    struct sim_intent_view view;
    enum sim_confirm_step step = sim_intent_begin_confirm(sim->store, id, &view);
    if (step == SIM_CONFIRM_NOT_FOUND) {
        sim_error(response, 404, "invalid_request_error", "resource_missing", "no such payment intent");
        return;
    }
    if (step == SIM_CONFIRM_BAD_STATE) {
        char message[128];
        snprintf(message, sizeof(message), "the payment intent is %s and cannot be confirmed",
                 sim_intent_status_name(view.status));
        sim_error(response, 400, "invalid_request_error", "payment_intent_unexpected_state", message);
        return;
    }
    switch (view.card) {
    case SIM_CARD_ERROR:
        sim_intent_end_confirm(sim->store, id, false, true, NULL, &view);
        sim_error(response, 500, "api_error", "processor_error", "the card processor failed (the always-failing test card)");
        return;
    case SIM_CARD_SLOW:
        if (!sim_sleep(sim, sim->config->slow_ms)) {
            sim_intent_end_confirm(sim->store, id, false, true, NULL, &view);
            sim_error(response, 503, "api_error", "shutting_down", "the gateway is shutting down");
            return;
        }
        __attribute__((fallthrough)); /* a slow card approves */
    case SIM_CARD_APPROVE:
        sim_intent_end_confirm(sim->store, id, true, false, NULL, &view);
        set_json(response, 200, intent_json(&view));
        return;
    case SIM_CARD_DECLINE:
        sim_intent_end_confirm(sim->store, id, false, false, "generic_decline", &view);
        decline(response, &view);
        return;
    case SIM_CARD_UNKNOWN:
        sim_intent_end_confirm(sim->store, id, false, false, "unknown_card", &view);
        decline(response, &view);
        return;
    }
    TK_UNREACHABLE();
}

static void create_refund(struct sim *sim, json_t *body, struct sim_response *response)
{
    const char *intent = json_string_value(json_object_get(body, "payment_intent"));
    json_t *amount = json_object_get(body, "amount");
    if (intent == NULL || !id_valid(intent)) {
        sim_error(response, 400, "invalid_request_error", "parameter_missing", "payment_intent is required");
        return;
    }
    if (amount != NULL && !json_is_null(amount) &&
        (!json_is_integer(amount) || json_integer_value(amount) <= 0 || json_integer_value(amount) > SIM_AMOUNT_MAX)) {
        sim_error(response, 400, "invalid_request_error", "parameter_invalid_integer",
                  "amount must be a positive whole number of minor units");
        return;
    }
    char refund_id[32];
    int64_t refunded = 0;
    struct sim_intent_view view;
    enum sim_refund_result r = sim_refund(sim->store, intent, json_is_integer(amount) ? json_integer_value(amount) : 0,
                                          refund_id, sizeof(refund_id), &refunded, &view);
    switch (r) {
    case SIM_REFUND_OK:
        set_json(response, 201,
                 json_pack("{s:s,s:s,s:s,s:I,s:s,s:s}", "id", refund_id, "object", "refund", "payment_intent",
                           intent, "amount", (json_int_t)refunded, "currency", view.currency, "status",
                           "succeeded"));
        return;
    case SIM_REFUND_NOT_FOUND:
        sim_error(response, 404, "invalid_request_error", "resource_missing", "no such payment intent");
        return;
    case SIM_REFUND_NOT_CHARGED:
        sim_error(response, 400, "invalid_request_error", "payment_intent_not_charged",
                  "the payment intent has no successful charge to refund");
        return;
    case SIM_REFUND_TOO_MUCH:
        if (view.refunded >= view.amount)
            sim_error(response, 400, "invalid_request_error", "charge_already_refunded",
                      "the charge has already been refunded in full");
        else
            sim_error(response, 400, "invalid_request_error", "amount_too_large",
                      "the refund is larger than what is left of the charge");
        return;
    case SIM_REFUND_FULL:
        sim_error(response, 503, "api_error", "refunds_full", "the simulator's refund table is full");
        return;
    }
    TK_UNREACHABLE();
}

/* ---- routing of the gateway routes ---- */

enum route { ROUTE_CREATE_INTENT, ROUTE_CONFIRM, ROUTE_GET_INTENT, ROUTE_REFUND };

/* Runs the operation of a route (body already parsed for POSTs). */
static void execute(struct sim *sim, enum route route, const char *id, json_t *body, struct sim_response *response)
{
    switch (route) {
    case ROUTE_CREATE_INTENT:
        create_intent(sim, body, response);
        return;
    case ROUTE_CONFIRM:
        confirm_intent(sim, id, response);
        return;
    case ROUTE_REFUND:
        create_refund(sim, body, response);
        return;
    case ROUTE_GET_INTENT: {
        struct sim_intent_view view;
        if (sim_intent_get(sim->store, id, &view))
            set_json(response, 200, intent_json(&view));
        else
            sim_error(response, 404, "invalid_request_error", "resource_missing", "no such payment intent");
        return;
    }
    }
    TK_UNREACHABLE();
}

static uint64_t fingerprint(const struct sim_request *request, json_t *body)
{
    char *canonical = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    XXH3_state_t *state = XXH3_createState();
    TK_ASSERT(state != NULL);
    XXH3_64bits_reset(state);
    XXH3_64bits_update(state, request->method, strlen(request->method));
    XXH3_64bits_update(state, " ", 1);
    XXH3_64bits_update(state, request->path, strlen(request->path));
    if (canonical != NULL)
        XXH3_64bits_update(state, canonical, strlen(canonical));
    uint64_t h = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    free(canonical);
    return h;
}

/* Latency and hang, before anything happens; false: the request is not to be answered. */
static bool pre_faults(struct sim *sim, const struct sim_request *request, struct sim_response *response)
{
    uint32_t latency = atomic_load(&sim->faults.latency_ms);
    if (latency > 0) {
        atomic_fetch_add(&sim->counters.delayed, 1);
        if (!sim_sleep(sim, latency)) {
            response->drop = true;
            return false;
        }
    }
    if (!atomic_load(&sim->faults.hang))
        return true;
    atomic_fetch_add(&sim->counters.injected_hangs, 1);
    int64_t until = sim_monotonic_ms() + sim->config->hang_max_ms;
    while (atomic_load(&sim->faults.hang) && sim_monotonic_ms() < until && !client_gone(request->fd))
        if (!sim_sleep(sim, WAIT_STEP_MS))
            break;
    response->drop = true; /* a hung request is never processed; its connection just closes */
    return false;
}

static void injected_error(struct sim *sim, struct sim_response *response)
{
    atomic_fetch_add(&sim->counters.injected_errors, 1);
    sim_error(response, 500, "api_error", "injected_fault", "simulated gateway error (fault injection)");
}

enum claim { CLAIM_EXECUTE, CLAIM_ANSWERED, CLAIM_REPLAYED };

/* For a POST: needs a key and a JSON object, then claims the key. EXECUTE: *body
 * is the parsed body to run; ANSWERED: response holds a refusal; REPLAYED:
 * response holds the key's stored answer. */
static enum claim claim_post(struct sim *sim, enum route route, const struct sim_request *request,
                             struct sim_response *response, json_t **body)
{
    *body = NULL;
    if (!request->has_idempotency_key) {
        sim_error(response, 400, "invalid_request_error", "idempotency_key_missing",
                  "every POST needs an Idempotency-Key header (1..255 printable characters)");
        return CLAIM_ANSWERED;
    }
    json_t *parsed = NULL;
    if (request->body_len > 0)
        parsed = json_loadb(request->body, request->body_len, JSON_REJECT_DUPLICATES, NULL);
    else if (route == ROUTE_CONFIRM)
        parsed = json_object();
    if (parsed == NULL || !json_is_object(parsed)) {
        json_decref(parsed);
        sim_error(response, 400, "invalid_request_error", "invalid_json", "the body must be a JSON object");
        return CLAIM_ANSWERED;
    }
    int status;
    char *stored;
    enum sim_idem_result r = sim_idem_begin(sim->store, request->idempotency_key, fingerprint(request, parsed),
                                            &status, &stored);
    if (r == SIM_IDEM_NEW) {
        *body = parsed;
        return CLAIM_EXECUTE;
    }
    json_decref(parsed);
    switch (r) {
    case SIM_IDEM_REPLAY:
        atomic_fetch_add(&sim->counters.replays, 1);
        *response = (struct sim_response){.status = status, .body = stored, .replayed = true};
        return CLAIM_REPLAYED;
    case SIM_IDEM_IN_PROGRESS:
        atomic_fetch_add(&sim->counters.in_progress_conflicts, 1);
        sim_error(response, 409, "idempotency_error", "request_in_progress",
                  "a request with this Idempotency-Key is still being processed; retry later");
        break;
    case SIM_IDEM_MISMATCH:
        sim_error(response, 422, "idempotency_error", "idempotency_key_reused",
                  "this Idempotency-Key was used for a different request");
        break;
    default:
        sim_error(response, 503, "api_error", "idempotency_table_full",
                  "the simulator's idempotency table is full (raise --idempotency-keys)");
        break;
    }
    return CLAIM_ANSWERED;
}

static void gateway_route(struct sim *sim, enum route route, const char *id, const struct sim_request *request,
                          struct sim_response *response)
{
    if (!pre_faults(sim, request, response))
        return;
    uint32_t error_ppm = atomic_load(&sim->faults.error_ppm);
    bool error = error_ppm > 0 && sim_random_ppm(sim->store) < error_ppm;
    bool error_after = error && sim_random_ppm(sim->store) < 500000;
    if (error && !error_after) {
        injected_error(sim, response);
        return;
    }
    const bool post = strcmp(request->method, "POST") == 0;
    json_t *body = NULL;
    enum claim claim = post ? claim_post(sim, route, request, response, &body) : CLAIM_EXECUTE;
    if (claim == CLAIM_ANSWERED)
        return;
    if (claim == CLAIM_EXECUTE) {
        execute(sim, route, id, body, response);
        json_decref(body);
        if (post) {
            bool keep = response->status < 500 && response->body != NULL &&
                        strlen(response->body) <= SIM_STORED_RESPONSE_BYTES_MAX;
            sim_idem_finish(sim->store, request->idempotency_key, keep, response->status, response->body);
        }
    }
    if (error_after) {
        injected_error(sim, response); /* executed (or replayed) and stored; the client sees a 500 */
        return;
    }
    uint32_t drop_ppm = atomic_load(&sim->faults.drop_ppm);
    if (drop_ppm > 0 && sim_random_ppm(sim->store) < drop_ppm) {
        atomic_fetch_add(&sim->counters.injected_drops, 1);
        response->drop = true;
    }
}

/* ---- the simulator's own routes ---- */

static json_t *faults_json(struct sim *sim)
{
    struct sim_counters *c = &sim->counters;
    return json_pack("{s:I,s:f,s:f,s:b,s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "latency_ms",
                     (json_int_t)atomic_load(&sim->faults.latency_ms), "error_rate",
                     atomic_load(&sim->faults.error_ppm) / 1e6, "drop", atomic_load(&sim->faults.drop_ppm) / 1e6,
                     "hang", (int)atomic_load(&sim->faults.hang), "injected", "errors",
                     (json_int_t)atomic_load(&c->injected_errors), "drops", (json_int_t)atomic_load(&c->injected_drops),
                     "hangs", (json_int_t)atomic_load(&c->injected_hangs), "delayed",
                     (json_int_t)atomic_load(&c->delayed), "counters", "requests",
                     (json_int_t)atomic_load(&c->requests), "bad_requests", (json_int_t)atomic_load(&c->bad_requests),
                     "replays", (json_int_t)atomic_load(&c->replays), "in_progress_conflicts",
                     (json_int_t)atomic_load(&c->in_progress_conflicts), "connections",
                     (json_int_t)atomic_load(&c->connections), "connections_refused",
                     (json_int_t)atomic_load(&c->connections_refused));
}

/* A rate is a number 0..1; for drop, true/false mean 1/0. */
static bool json_rate(json_t *value, bool booleans, uint32_t *ppm)
{
    if (booleans && json_is_boolean(value)) {
        *ppm = json_is_true(value) ? 1000000u : 0u;
        return true;
    }
    if (!json_is_number(value))
        return false;
    double v = json_number_value(value);
    if (!(v >= 0.0 && v <= 1.0))
        return false;
    *ppm = (uint32_t)(v * 1000000.0 + 0.5);
    return true;
}

static void set_faults(struct sim *sim, const struct sim_request *request, struct sim_response *response)
{
    json_t *body = json_loadb(request->body, request->body_len, JSON_REJECT_DUPLICATES, NULL);
    json_t *latency = json_object_get(body, "latency_ms"), *error = json_object_get(body, "error_rate");
    json_t *drop = json_object_get(body, "drop"), *hang = json_object_get(body, "hang");
    uint32_t error_ppm = atomic_load(&sim->faults.error_ppm), drop_ppm = atomic_load(&sim->faults.drop_ppm);
    const char *why = NULL;
    if (!json_is_object(body))
        why = "the body must be a JSON object {latency_ms, error_rate, hang, drop}";
    else if (latency != NULL && (!json_is_integer(latency) || json_integer_value(latency) < 0 ||
                                 json_integer_value(latency) > LATENCY_MS_MAX))
        why = "latency_ms must be a whole number 0..600000";
    else if (error != NULL && !json_rate(error, false, &error_ppm))
        why = "error_rate must be a number 0..1";
    else if (drop != NULL && !json_rate(drop, true, &drop_ppm))
        why = "drop must be a number 0..1 or a boolean";
    else if (hang != NULL && !json_is_boolean(hang))
        why = "hang must be a boolean";
    if (why != NULL) { /* all or nothing: a bad field changes no knob */
        json_decref(body);
        sim_error(response, 400, "invalid_request_error", "invalid_faults", why);
        return;
    }
    if (latency != NULL)
        atomic_store(&sim->faults.latency_ms, (uint32_t)json_integer_value(latency));
    atomic_store(&sim->faults.error_ppm, error_ppm);
    atomic_store(&sim->faults.drop_ppm, drop_ppm);
    if (hang != NULL)
        atomic_store(&sim->faults.hang, json_is_true(hang));
    json_decref(body);
    rpc_log(RPC_LOG_INFO, "", "faults set: latency_ms=%u error_rate=%.3f drop=%.3f hang=%d",
            atomic_load(&sim->faults.latency_ms), atomic_load(&sim->faults.error_ppm) / 1e6,
            atomic_load(&sim->faults.drop_ppm) / 1e6, (int)atomic_load(&sim->faults.hang));
    set_json(response, 200, faults_json(sim));
}

/* Value of name in a query string "a=1&b=2" into out; false if absent or too long. */
static bool query_param(const char *query, const char *name, char *out, size_t out_len)
{
    size_t name_len = strlen(name);
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=') {
            size_t value_len = len - name_len - 1;
            if (value_len >= out_len)
                return false;
            memcpy(out, p + name_len + 1, value_len);
            out[value_len] = '\0';
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

static void ledger(struct sim *sim, const struct sim_request *request, struct sim_response *response)
{
    char intent[64], payment[SIM_PAYMENT_REF_BYTES], limit_text[16];
    bool by_intent = query_param(request->query, "payment_intent", intent, sizeof(intent));
    bool by_payment = query_param(request->query, "payment_id", payment, sizeof(payment));
    uint32_t limit = SIM_LEDGER_LIST_MAX;
    if (query_param(request->query, "limit", limit_text, sizeof(limit_text))) {
        long v = strtol(limit_text, NULL, 10);
        if (v >= 0 && v < (long)SIM_LEDGER_LIST_MAX)
            limit = (uint32_t)v;
    }
    response->status = 200;
    response->body = sim_ledger_json(sim->store, by_intent ? intent : NULL, by_payment ? payment : NULL, limit);
}

/* "/v1/payment_intents/{id}[/confirm]": copies id; returns the route or -1. */
static int intent_route(const char *path, const char *method, char *id, size_t id_len)
{
    static const char prefix[] = "/v1/payment_intents/";
    const char *rest = path + sizeof(prefix) - 1;
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0 || n >= id_len)
        return -1;
    memcpy(id, rest, n);
    id[n] = '\0';
    if (!id_valid(id))
        return -1;
    if (slash == NULL)
        return strcmp(method, "GET") == 0 ? ROUTE_GET_INTENT : -2;
    if (strcmp(slash, "/confirm") == 0)
        return strcmp(method, "POST") == 0 ? ROUTE_CONFIRM : -2;
    return -1;
}

void sim_handle(struct sim *sim, const struct sim_request *request, struct sim_response *response)
{
    TK_ASSERT(request != NULL && response != NULL && response->body == NULL);
    atomic_fetch_add(&sim->counters.requests, 1);
    const char *path = request->path, *method = request->method;
    const bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    char id[32];
    if (strcmp(path, "/healthz") == 0 && get) {
        set_json(response, 200, json_pack("{s:s}", "status", "ok"));
    } else if (strcmp(path, "/v1/_sim/ledger") == 0 && get) {
        ledger(sim, request, response);
    } else if (strcmp(path, "/v1/_sim/faults") == 0 && (get || post)) {
        if (post)
            set_faults(sim, request, response);
        else
            set_json(response, 200, faults_json(sim));
    } else if (strcmp(path, "/v1/payment_intents") == 0 && post) {
        gateway_route(sim, ROUTE_CREATE_INTENT, NULL, request, response);
    } else if (strcmp(path, "/v1/refunds") == 0 && post) {
        gateway_route(sim, ROUTE_REFUND, NULL, request, response);
    } else if (strncmp(path, "/v1/payment_intents/", 20) == 0) {
        int route = intent_route(path, method, id, sizeof(id));
        if (route >= 0)
            gateway_route(sim, (enum route)route, id, request, response);
        else if (route == -2)
            sim_error(response, 405, "invalid_request_error", "method_not_allowed", "method not allowed here");
        else
            sim_error(response, 404, "invalid_request_error", "not_found", "no such route");
    } else if (strcmp(path, "/healthz") == 0 || strcmp(path, "/v1/payment_intents") == 0 ||
               strcmp(path, "/v1/refunds") == 0 || strncmp(path, "/v1/_sim/", 9) == 0) {
        sim_error(response, 405, "invalid_request_error", "method_not_allowed", "method not allowed here");
    } else {
        sim_error(response, 404, "invalid_request_error", "not_found", "no such route");
    }
}
