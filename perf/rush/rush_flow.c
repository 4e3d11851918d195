/* rush_flow.c — the buyers of a ticket-open rush (mode rush) and the crowd that
 * only waits (mode waiting).
 *
 * A buyer, one state machine per user, every step through the edge's API:
 *   T0 + uniform(0, burst_ms): POST /events/{id}/queue (arrival: the ticket),
 *     then the waiting room's WebSocket; positions arrive while waiting
 *   "admitted" (socket, or the join itself): admission token
 *   choose_ms later: seatmap_pct of them GET the seat map, then a hold: best_pct
 *     ask for best-available {count}, the others pick adjacent seats that look
 *     free in this worker's view of the map (the seat map they loaded and the
 *     socket's seat deltas, so it lags like a browser's and people race for the
 *     same good seats: front_bias_pct want the first section's front rows)
 *   409: retry_ms later another pick, up to hold_attempts, then give up
 *   201: pay_ms later one of: decline_pct pay with tok_decline (402 expected),
 *     abandon_pct do nothing (the hold expires), release_pct DELETE the hold,
 *     the rest pay with tok_approve (200 confirmed expected); a 503 payment is
 *     retried twice with the same Idempotency-Key
 *   then the socket closes and the user is done.
 * Every user's arrival, ticket, admission and outcome go to the shared records
 * (fairness and the audit read them).
 *
 * Mode waiting: the same joins (socket only) and nothing else: the sockets stay
 * open ws_hold_s after the last one opened, counting positions. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rush.h"
#include "tk_assert.h"

#define WS_RETRIES_MAX 8u   /* then the user gives up */
#define JOIN_RETRIES_MAX 8u
#define BACKOFF_MS_MAX 30000u
#define PAY_RETRIES_MAX 2u
#define PICK_TRIES 16u

enum user_state {
    U_IDLE = 0,
    U_JOINING,
    U_WAITING,   /* socket open or opening, not admitted */
    U_ADMITTED,  /* choosing */
    U_HOLDING,   /* hold request in flight */
    U_HELD,      /* thinking before paying */
    U_PAYING,
    U_DONE
};

struct flow {
    uint32_t rush_users; /* users[0..rush_users) buy; the rest browse */
    uint32_t done_users;
    uint32_t opened; /* sockets that opened at least once */
    uint64_t last_open_us;
    uint8_t *view; /* seat states as this worker believes them: 0 free, 1 held, 2 sold */
    uint64_t view_version;
    uint64_t view_parsed_us;
    char event_path[64];
};

static struct flow *flow_of(struct rush_worker *worker)
{
    return worker->scenario;
}

static struct rush_user_record *record_of(struct rush_worker *worker, uint32_t user)
{
    return &rush_shared_users(worker->shared)[worker->users[user].record];
}

static void user_done(struct rush_worker *worker, uint32_t user, enum rush_user_outcome outcome)
{
    struct rush_user *u = &worker->users[user];
    if (u->state == U_DONE)
        return;
    u->state = U_DONE;
    struct rush_user_record *record = record_of(worker, user);
    record->outcome = (uint8_t)outcome;
    record->done_us = rush_now_us();
    flow_of(worker)->done_users++;
    rush_ws_close(worker->loop, user);
}

/* ---- the seat view ---- */

static void view_mark(struct flow *flow, const struct rush_config *config, uint64_t seat, uint8_t state)
{
    if (seat < config->capacity)
        flow->view[seat] = state;
}

static uint8_t state_of(const char *name)
{
    return strcmp(name, "free") == 0 ? 0 : strcmp(name, "sold") == 0 ? 2 : 1;
}

static void view_apply_delta(struct rush_worker *worker, const char *text, size_t len)
{
    struct flow *flow = flow_of(worker);
    const char *v = strstr(text, "\"version\":");
    uint64_t version = v != NULL ? strtoull(v + 10, NULL, 10) : 0;
    if (version != 0 && version <= flow->view_version)
        return; /* every admitted socket gets the same delta: read it once */
    json_t *root = json_loadb(text, len, 0, NULL);
    json_t *changed = json_object_get(root, "changed");
    size_t i;
    json_t *pair;
    json_array_foreach(changed, i, pair)
    {
        const char *id = json_string_value(json_array_get(pair, 0));
        const char *status = json_string_value(json_array_get(pair, 1));
        if (id != NULL && status != NULL)
            view_mark(flow, worker->config, strtoull(id, NULL, 10), state_of(status));
    }
    flow->view_version = version;
    atomic_fetch_add_explicit(&worker->stats->ws_seat_deltas, 1, memory_order_relaxed);
    json_decref(root);
}

static void view_apply_map(struct rush_worker *worker, const struct http_response *response)
{
    struct flow *flow = flow_of(worker);
    uint64_t now = rush_now_us();
    if (now - flow->view_parsed_us < 1000000u)
        return; /* one parse a second per worker is plenty; the bytes were read anyway */
    flow->view_parsed_us = now;
    json_t *root = json_loadb(response->body, response->body_len, 0, NULL);
    json_t *seats = json_object_get(root, "seats");
    size_t i;
    json_t *seat;
    json_array_foreach(seats, i, seat)
    {
        const char *id = json_string_value(json_object_get(seat, "seat_id"));
        const char *status = json_string_value(json_object_get(seat, "status"));
        if (id != NULL && status != NULL)
            view_mark(flow, worker->config, strtoull(id, NULL, 10), state_of(status));
    }
    json_t *version = json_object_get(root, "version");
    if (json_is_integer(version) && (uint64_t)json_integer_value(version) > flow->view_version)
        flow->view_version = (uint64_t)json_integer_value(version);
    json_decref(root);
}

/* Adjacent seats that look free, where this buyer wants them; false: none found. */
static bool pick_seats(struct rush_worker *worker, uint32_t count, uint32_t *seats)
{
    const struct rush_config *config = worker->config;
    struct flow *flow = flow_of(worker);
    bool front = bench_rng_below(&worker->rng, 100) < config->front_bias_pct;
    for (uint32_t attempt = 0; attempt < PICK_TRIES; attempt++) {
        const struct rush_section *s = &config->sections[0];
        if (!front || attempt >= PICK_TRIES / 2) {
            uint32_t at = bench_rng_below(&worker->rng, config->capacity);
            for (uint32_t k = 0; k < config->section_count; k++)
                if (at >= config->sections[k].first_seat)
                    s = &config->sections[k];
        }
        if (s->seats_per_row < count)
            continue;
        /* rows skewed to the front: row = rows * u^2 */
        double u = (double)bench_rng_below(&worker->rng, 1u << 20) / (double)(1u << 20);
        uint32_t row = (uint32_t)((double)s->rows * u * u);
        uint32_t start = bench_rng_below(&worker->rng, s->seats_per_row - count + 1u);
        uint32_t base = s->first_seat + row * s->seats_per_row;
        for (uint32_t scan = 0; scan + count <= s->seats_per_row; scan++) {
            uint32_t first = (start + scan) % (s->seats_per_row - count + 1u);
            uint32_t k = 0;
            while (k < count && flow->view[base + first + k] == 0)
                k++;
            if (k == count) {
                for (k = 0; k < count; k++)
                    seats[k] = base + first + k;
                return true;
            }
        }
    }
    return false;
}

/* ---- requests ---- */

static struct rush_request *user_request(struct rush_worker *worker, uint32_t user, enum rush_step step,
                                         rush_done_fn done)
{
    struct rush_request *request = rush_request_new(worker->loop);
    request->step = step;
    request->user = user;
    request->done = done;
    return request;
}

static void schedule(struct rush_worker *worker, uint32_t user, uint32_t lo_ms, uint32_t hi_ms, rush_timer_fn fn)
{
    uint64_t due = rush_now_us() + rush_rand_between(worker, lo_ms, hi_ms) * 1000u;
    rush_timer_add(worker->loop, due, fn, user);
}

static void open_socket(struct rush_worker *worker, uint64_t user);
static void start_join(struct rush_worker *worker, uint64_t user);

/* Exponential back-off with full jitter, as a well-behaved client retries an
 * overloaded server: 1, 2, 4 ... 30 s, a random share of it. */
static uint64_t backoff_us(struct rush_worker *worker, uint32_t attempt)
{
    uint64_t cap = 1000u << (attempt < 5 ? attempt : 5);
    if (cap > BACKOFF_MS_MAX)
        cap = BACKOFF_MS_MAX;
    return (500u + rush_rand_between(worker, 0, (uint32_t)cap)) * 1000u;
}

static bool retryable(const struct http_response *response)
{
    return response == NULL || response->status == 429 || response->status == 503 || response->status == 504;
}

static void retry_join(struct rush_worker *worker, uint64_t user)
{
    struct rush_user *u = &worker->users[user];
    if (u->state == U_JOINING) {
        u->state = U_IDLE;
        start_join(worker, user);
    }
}

static void on_join(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    uint32_t user = request->user;
    struct rush_user *u = &worker->users[user];
    struct rush_user_record *record = record_of(worker, user);
    enum rush_outcome outcome = rush_worker_account(worker, request, response, NULL, 0);
    if (u->state == U_DONE)
        return;
    if (outcome != OUTCOME_OK) {
        if (retryable(response) && ++u->join_failures <= JOIN_RETRIES_MAX && !worker->stopping)
            rush_timer_add(worker->loop, rush_now_us() + backoff_us(worker, u->join_failures), retry_join, user);
        else
            user_done(worker, user, USER_FAILED);
        return;
    }
    record->join_done_us = rush_now_us();
    json_t *root = json_loadb(response->body, response->body_len, 0, NULL);
    record->ticket = (uint64_t)json_integer_value(json_object_get(root, "ticket"));
    record->first_position = (uint32_t)json_integer_value(json_object_get(root, "position"));
    const char *token = json_string_value(json_object_get(root, "admission_token"));
    u->state = U_WAITING;
    if (token != NULL && strlen(token) < sizeof(u->admission)) {
        snprintf(u->admission, sizeof(u->admission), "%s", token);
        record->admitted_us = record->join_done_us;
    }
    json_decref(root);
    open_socket(worker, user);
}

static void start_join(struct rush_worker *worker, uint64_t user)
{
    struct rush_user *u = &worker->users[user];
    if (u->state != U_IDLE || worker->stopping)
        return;
    struct rush_user_record *record = record_of(worker, (uint32_t)user);
    if (record->join_sent_us == 0)
        record->join_sent_us = rush_now_us();
    record->event_id = worker->run->events[0].event_id;
    if (!worker->config->join_post || worker->config->mode == RUSH_MODE_WAITING) {
        u->state = U_WAITING;
        open_socket(worker, user);
        return;
    }
    u->state = U_JOINING;
    struct rush_request *request = user_request(worker, (uint32_t)user, STEP_JOIN, on_join);
    char path[96];
    snprintf(path, sizeof(path), "%s/queue", flow_of(worker)->event_path);
    TK_ASSERT(rush_request_format(request, &worker->run->target, "POST", path, u->token, NULL, NULL, NULL));
    rush_request_submit(worker->loop, request);
}

static void open_socket(struct rush_worker *worker, uint64_t user)
{
    struct rush_user *u = &worker->users[user];
    if (u->state == U_DONE || worker->stopping)
        return;
    char path[RUSH_TOKEN_BYTES + 128];
    snprintf(path, sizeof(path), "%s/queue/ws?access_token=%s", flow_of(worker)->event_path, u->token);
    u->ws_started_us = rush_now_us();
    if (!rush_ws_open(worker->loop, (uint32_t)user, path, rush_worker_ws_source(worker, (uint32_t)user)))
        user_done(worker, (uint32_t)user, USER_FAILED);
}

static void hold_seats(struct rush_worker *worker, uint64_t user);

static void admitted(struct rush_worker *worker, uint32_t user)
{
    struct rush_user *u = &worker->users[user];
    if (u->state != U_WAITING)
        return;
    struct rush_user_record *record = record_of(worker, user);
    if (!u->admission_counted) {
        /* queue wait: arrival (join answered, or sent for the socket-only crowd) -> admitted */
        u->admission_counted = true;
        uint64_t now = rush_now_us();
        if (record->admitted_us == 0)
            record->admitted_us = now;
        uint64_t arrival = record->join_done_us != 0 ? record->join_done_us : record->join_sent_us;
        rush_stats_record(worker->shared, worker->index, STEP_QUEUE_WAIT, OUTCOME_OK,
                          record->admitted_us > arrival ? record->admitted_us - arrival : 0, now, true);
    }
    if (worker->config->mode == RUSH_MODE_WAITING)
        return; /* this crowd only waits */
    u->state = U_ADMITTED;
    schedule(worker, user, worker->config->choose_ms_min, worker->config->choose_ms_max, hold_seats);
}

/* ---- the socket ---- */

static void on_ws_message(struct rush_worker *worker, uint32_t user, const char *text, size_t len)
{
    struct rush_user *u = &worker->users[user];
    uint64_t now = rush_now_us();
    if (len > 20 && strncmp(text, "{\"type\":\"position\"", 18) == 0) {
        atomic_fetch_add_explicit(&worker->stats->ws_positions, 1, memory_order_relaxed);
        struct rush_user_record *record = record_of(worker, user);
        record->positions++;
        if (u->state == U_WAITING && u->last_ws_message_us != 0) {
            uint64_t gap = now - u->last_ws_message_us;
            if (gap > worker->stats->ws_position_gap_max_us)
                worker->stats->ws_position_gap_max_us = gap;
        }
        u->last_ws_message_us = now;
        return;
    }
    u->last_ws_message_us = now;
    if (strstr(text, "\"type\":\"seats\"") != NULL) {
        if (worker->config->mode == RUSH_MODE_RUSH)
            view_apply_delta(worker, text, len);
        return;
    }
    json_t *root = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(root, "type"));
    if (type != NULL && strcmp(type, "admitted") == 0) {
        atomic_fetch_add_explicit(&worker->stats->ws_admitted, 1, memory_order_relaxed);
        const char *token = json_string_value(json_object_get(root, "admission_token"));
        if (token != NULL && strlen(token) < sizeof(u->admission))
            snprintf(u->admission, sizeof(u->admission), "%s", token);
        admitted(worker, user);
    } else if (type != NULL && (strcmp(type, "left") == 0 || strcmp(type, "expired") == 0)) {
        rush_stats_error(worker->shared, worker->index, STEP_QUEUE_WAIT, 0, type, false);
        user_done(worker, user, USER_FAILED);
    }
    json_decref(root);
}

static void reopen_socket(struct rush_worker *worker, uint64_t user)
{
    struct rush_user *u = &worker->users[user];
    if (u->state == U_WAITING || u->state == U_ADMITTED || u->state == U_HELD || u->state == U_HOLDING ||
        u->state == U_PAYING)
        open_socket(worker, user);
}

static void on_ws_event(struct rush_worker *worker, uint32_t user, int event, const struct http_response *response)
{
    struct rush_user *u = &worker->users[user];
    struct flow *flow = flow_of(worker);
    uint64_t now = rush_now_us();
    struct rush_request fake = {.step = STEP_WS_OPEN, .start_us = u->ws_started_us};
    if (event == RUSH_WS_OPENED) {
        rush_stats_record(worker->shared, worker->index, STEP_WS_OPEN, OUTCOME_OK, now - u->ws_started_us, now, true);
        u->ws_failures = 0;
        if (!u->ws_opened_once) {
            u->ws_opened_once = true;
            flow->opened++;
            flow->last_open_us = now;
            struct rush_user_record *record = record_of(worker, user);
            if (record->join_done_us == 0)
                record->join_done_us = now; /* the socket-only crowd joined with the upgrade */
        }
        u->last_ws_message_us = now;
        if (u->admission[0] != '\0' && u->state == U_WAITING)
            admitted(worker, user);
        return;
    }
    if (u->state == U_DONE || worker->stopping)
        return;
    if (event == RUSH_WS_REFUSED)
        rush_worker_account(worker, &fake, response, NULL, 0);
    else
        rush_stats_error(worker->shared, worker->index, STEP_WS_OPEN, 0, "closed_by_server", false);
    bool again = event == RUSH_WS_CLOSED || retryable(response);
    if (!again || ++u->ws_failures > WS_RETRIES_MAX) {
        if (u->state == U_WAITING)
            user_done(worker, user, USER_FAILED);
        return; /* a buyer past the queue goes on without deltas */
    }
    rush_timer_add(worker->loop, now + backoff_us(worker, u->ws_failures), reopen_socket, user);
}

/* ---- holding ---- */

static void on_pay(struct rush_worker *worker, struct rush_request *request, const struct http_response *response);
static void on_release(struct rush_worker *worker, struct rush_request *request, const struct http_response *response);

static void parse_unavailable(struct rush_worker *worker, const struct http_response *response)
{
    json_t *root = json_loadb(response->body, response->body_len, 0, NULL);
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(root, "unavailable"), i, id)
    {
        if (json_is_string(id))
            view_mark(flow_of(worker), worker->config, strtoull(json_string_value(id), NULL, 10), 1);
    }
    json_decref(root);
}

static void pay_or_not(struct rush_worker *worker, uint64_t user);

static void on_hold(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    static const uint16_t expected[] = {409};
    uint32_t user = request->user;
    struct rush_user *u = &worker->users[user];
    struct rush_user_record *record = record_of(worker, user);
    enum rush_outcome outcome = rush_worker_account(worker, request, response, expected, 1);
    if (u->state == U_DONE)
        return;
    if (outcome == OUTCOME_OK) {
        json_t *root = json_loadb(response->body, response->body_len, 0, NULL);
        const char *id = json_string_value(json_object_get(root, "reservation_id"));
        snprintf(record->reservation_id, sizeof(record->reservation_id), "%s", id != NULL ? id : "");
        size_t i;
        json_t *seat;
        record->seat_count = 0;
        json_array_foreach(json_object_get(root, "seat_ids"), i, seat)
        {
            uint64_t n = strtoull(json_string_value(seat) ? json_string_value(seat) : "0", NULL, 10);
            if (record->seat_count < RUSH_HOLD_SEATS_MAX)
                record->seats[record->seat_count++] = (uint32_t)n;
            view_mark(flow_of(worker), worker->config, n, 1);
        }
        json_decref(root);
        u->state = U_HELD;
        schedule(worker, user, worker->config->pay_ms_min, worker->config->pay_ms_max, pay_or_not);
        return;
    }
    if (outcome == OUTCOME_REFUSED) {
        parse_unavailable(worker, response);
        if (u->tries < worker->config->hold_attempts) {
            u->state = U_ADMITTED;
            schedule(worker, user, worker->config->retry_ms_min, worker->config->retry_ms_max, hold_seats);
            return;
        }
        user_done(worker, user, USER_GAVE_UP);
        return;
    }
    /* 422 (cap), 403 (token), 429, 5xx, transport: this buyer stops */
    user_done(worker, user, response != NULL && response->status == 422 ? USER_GAVE_UP : USER_FAILED);
}

static void hold_seats(struct rush_worker *worker, uint64_t user)
{
    struct rush_user *u = &worker->users[user];
    const struct rush_config *config = worker->config;
    if (u->state != U_ADMITTED)
        return;
    if (worker->stopping) {
        user_done(worker, (uint32_t)user, USER_GAVE_UP);
        return;
    }
    u->tries++;
    record_of(worker, (uint32_t)user)->hold_tries = (uint8_t)u->tries;
    if (u->tries == 1 && bench_rng_below(&worker->rng, 100) < config->seatmap_pct && !u->map_loaded) {
        u->map_loaded = true;
        u->tries--;
        struct rush_request *request = user_request(worker, (uint32_t)user, STEP_SEATMAP, NULL);
        request->done = rush_flow_on_seatmap;
        char path[96];
        snprintf(path, sizeof(path), "%s/seats", flow_of(worker)->event_path);
        TK_ASSERT(rush_request_format(request, &worker->run->target, "GET", path, u->token, NULL, NULL, NULL));
        u->state = U_HOLDING;
        rush_request_submit(worker->loop, request);
        return;
    }
    uint32_t count = (uint32_t)rush_rand_between(worker, config->seats_min, config->seats_max);
    uint32_t seats[RUSH_HOLD_SEATS_MAX];
    char body[256];
    if (bench_rng_below(&worker->rng, 100) < config->best_pct || !pick_seats(worker, count, seats)) {
        snprintf(body, sizeof(body), "{\"count\":%u}", count);
    } else {
        int at = snprintf(body, sizeof(body), "{\"seat_ids\":[");
        for (uint32_t i = 0; i < count; i++)
            at += snprintf(body + at, sizeof(body) - (size_t)at, "%s\"%u\"", i ? "," : "", seats[i]);
        snprintf(body + at, sizeof(body) - (size_t)at, "]}");
    }
    char key[64], path[96];
    snprintf(key, sizeof(key), "hold-%llu-%llu-%u", (unsigned long long)u->user_id,
             (unsigned long long)worker->run->events[0].event_id, u->tries);
    snprintf(path, sizeof(path), "%s/holds", flow_of(worker)->event_path);
    struct rush_request *request = user_request(worker, (uint32_t)user, STEP_HOLD, on_hold);
    TK_ASSERT(rush_request_format(request, &worker->run->target, "POST", path, u->token, u->admission, key, body));
    u->state = U_HOLDING;
    rush_request_submit(worker->loop, request);
}

void rush_flow_on_seatmap(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    uint32_t user = request->user;
    struct rush_user *u = &worker->users[user];
    if (rush_worker_account(worker, request, response, NULL, 0) == OUTCOME_OK)
        view_apply_map(worker, response);
    if (u->state != U_HOLDING)
        return;
    u->state = U_ADMITTED;
    hold_seats(worker, user);
}

/* ---- paying ---- */

static void send_pay(struct rush_worker *worker, uint32_t user)
{
    struct rush_user *u = &worker->users[user];
    struct rush_user_record *record = record_of(worker, user);
    char path[160], key[96], body[96];
    snprintf(path, sizeof(path), "/api/v1/reservations/%s/payment", record->reservation_id);
    snprintf(key, sizeof(key), "pay-%s", record->reservation_id);
    snprintf(body, sizeof(body), "{\"method\":\"card\",\"card_token\":\"%s\"}",
             u->decline ? "tok_decline" : "tok_approve");
    struct rush_request *request = user_request(worker, user, STEP_PAY, on_pay);
    TK_ASSERT(rush_request_format(request, &worker->run->target, "POST", path, u->token, NULL, key, body));
    u->state = U_PAYING;
    rush_request_submit(worker->loop, request);
}

static void retry_pay(struct rush_worker *worker, uint64_t user)
{
    if (worker->users[user].state == U_HELD)
        send_pay(worker, (uint32_t)user);
}

static void on_pay(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    uint32_t user = request->user;
    struct rush_user *u = &worker->users[user];
    uint16_t expected[1] = {402};
    enum rush_outcome outcome = rush_worker_account(worker, request, response, expected, u->decline ? 1u : 0u);
    if (outcome == OUTCOME_OK && !u->decline) {
        user_done(worker, user, USER_PAID);
        return;
    }
    if (outcome == OUTCOME_REFUSED) {
        user_done(worker, user, USER_DECLINED);
        return;
    }
    if (response != NULL && response->status == 503 && u->pay_retries < PAY_RETRIES_MAX && !worker->stopping) {
        u->pay_retries++;
        u->state = U_HELD;
        rush_timer_add(worker->loop, rush_now_us() + 2000000u, retry_pay, user);
        return;
    }
    user_done(worker, user, USER_PAY_UNKNOWN);
}

static void on_release(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    enum rush_outcome outcome = rush_worker_account(worker, request, response, NULL, 0);
    user_done(worker, request->user, outcome == OUTCOME_OK ? USER_RELEASED : USER_FAILED);
}

static void pay_or_not(struct rush_worker *worker, uint64_t user)
{
    struct rush_user *u = &worker->users[user];
    const struct rush_config *config = worker->config;
    if (u->state != U_HELD)
        return;
    uint32_t r = bench_rng_below(&worker->rng, 100);
    if (r < config->abandon_pct || worker->stopping) {
        user_done(worker, (uint32_t)user, USER_ABANDONED);
        return;
    }
    if (r < config->abandon_pct + config->release_pct) {
        struct rush_user_record *record = record_of(worker, (uint32_t)user);
        char path[160];
        snprintf(path, sizeof(path), "/api/v1/reservations/%s", record->reservation_id);
        struct rush_request *request = user_request(worker, (uint32_t)user, STEP_RELEASE, on_release);
        TK_ASSERT(rush_request_format(request, &worker->run->target, "DELETE", path, u->token, NULL, NULL, NULL));
        u->state = U_PAYING;
        rush_request_submit(worker->loop, request);
        return;
    }
    u->decline = r < config->abandon_pct + config->release_pct + config->decline_pct;
    send_pay(worker, (uint32_t)user);
}

/* ---- the mode ---- */

static int flow_init(struct rush_worker *worker)
{
    struct flow *flow = calloc(1, sizeof(*flow));
    TK_ASSERT(flow != NULL);
    worker->scenario = flow;
    flow->view = calloc(worker->config->capacity + 1u, 1);
    TK_ASSERT(flow->view != NULL);
    flow->rush_users = worker->user_count - worker->browse_count;
    snprintf(flow->event_path, sizeof(flow->event_path), "/api/v1/events/%s", worker->run->events[0].id_text);
    return worker->browse_count > 0 ? rush_browse_init(worker) : 0;
}

static void flow_start(struct rush_worker *worker)
{
    struct flow *flow = flow_of(worker);
    uint32_t burst = worker->config->burst_ms;
    for (uint32_t i = 0; i < flow->rush_users; i++)
        rush_timer_add(worker->loop, worker->t0_us + rush_rand_between(worker, 0, burst) * 1000u, start_join, i);
    if (worker->browse_count > 0)
        rush_browse_start(worker);
}

static bool flow_ready(struct rush_worker *worker)
{
    return worker->browse_count == 0 || rush_browse_ready(worker);
}

static bool flow_done(struct rush_worker *worker)
{
    struct flow *flow = flow_of(worker);
    if (worker->config->mode == RUSH_MODE_WAITING) {
        /* every socket opened (or failed), then ws_hold_s more */
        if (flow->opened + flow->done_users < flow->rush_users)
            return false;
        return rush_now_us() > flow->last_open_us + (uint64_t)worker->config->ws_hold_s * 1000000u;
    }
    return flow->done_users >= flow->rush_users;
}

static void flow_finish(struct rush_worker *worker)
{
    struct flow *flow = flow_of(worker);
    for (uint32_t i = 0; i < flow->rush_users; i++) {
        struct rush_user *u = &worker->users[i];
        struct rush_user_record *record = record_of(worker, i);
        if (u->state == U_DONE)
            continue;
        /* the run ended around them */
        record->outcome = (uint8_t)(u->state == U_WAITING || u->state == U_JOINING ? USER_WAITING
                                    : u->state == U_HELD || u->state == U_PAYING ? USER_ABANDONED
                                                                                 : USER_GAVE_UP);
        if (worker->config->mode == RUSH_MODE_WAITING && record->admitted_us == 0)
            record->outcome = USER_WAITING;
        u->state = U_DONE;
        rush_ws_close(worker->loop, i);
    }
    free(flow->view);
    free(flow);
    worker->scenario = NULL;
}

const struct rush_mode_ops rush_mode_rush = {
    .init = flow_init,
    .ready = flow_ready,
    .start = flow_start,
    .done = flow_done,
    .finish = flow_finish,
    .on_ws_message = on_ws_message,
    .on_ws_event = on_ws_event,
};

const struct rush_mode_ops rush_mode_waiting = {
    .init = flow_init,
    .ready = flow_ready,
    .start = flow_start,
    .done = flow_done,
    .finish = flow_finish,
    .on_ws_message = on_ws_message,
    .on_ws_event = on_ws_event,
};
