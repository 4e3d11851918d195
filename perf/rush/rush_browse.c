/* rush_browse.c — steady browse traffic beside the rush, open loop.
 *
 * The seed's mix: 60% GET /events (the catalogue), 30% a hold, 10% a queue
 * join, at browse_rate requests per second over all workers (each worker its
 * share), Poisson arrivals. It runs on its own event (no waiting room, short
 * holds that expire by themselves, browse_capacity_rows x 100 seats) from its
 * own users (the tail of each worker's slice), so it loads the same edge and
 * services as the rush without changing the rush's seats. Open loop: a request's
 * latency runs from the moment it was due, not from when it was sent, so a
 * stalled edge or load generator shows up in the figures (no coordinated
 * omission); a request sent more than 10 ms late is counted (requests_late). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rush.h"
#include "tk_assert.h"

#define BROWSE_LATE_US 10000u

struct browse {
    uint32_t joins_pending; /* the first join of every browse user */
    uint32_t next_user;
    uint64_t next_due_us;
    double interval_us; /* mean */
};

static struct browse browse_state; /* one worker per process */

static void on_browse_join(struct rush_worker *worker, struct rush_request *request,
                           const struct http_response *response)
{
    struct rush_user *u = &worker->users[request->user];
    if (request->ctx == 1 && browse_state.joins_pending > 0)
        browse_state.joins_pending--;
    if (rush_worker_account(worker, request, response, NULL, 0) != OUTCOME_OK)
        return;
    json_t *root = json_loadb(response->body, response->body_len, 0, NULL);
    const char *token = json_string_value(json_object_get(root, "admission_token"));
    if (token != NULL && strlen(token) < sizeof(u->admission))
        snprintf(u->admission, sizeof(u->admission), "%s", token);
    json_decref(root);
}

static void on_browse_answer(struct rush_worker *worker, struct rush_request *request,
                             const struct http_response *response)
{
    static const uint16_t expected[] = {409};
    enum rush_outcome outcome = rush_worker_account(worker, request, response, expected, 1);
    if (request->step == STEP_BROWSE_HOLD && response != NULL && response->status == 403)
        worker->users[request->user].admission[0] = '\0'; /* token expired: the next turn joins again */
    (void)outcome;
}

static void send_join(struct rush_worker *worker, uint32_t user, uint64_t due_us, bool first)
{
    struct rush_user *u = &worker->users[user];
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/events/%s/queue", worker->run->browse_event.id_text);
    struct rush_request *request = rush_request_new(worker->loop);
    request->step = STEP_BROWSE_JOIN;
    request->user = user;
    request->start_us = due_us;
    request->done = on_browse_join;
    request->ctx = first ? 1u : 0u;
    TK_ASSERT(rush_request_format(request, &worker->run->target, "POST", path, u->token, NULL, NULL, NULL));
    rush_request_submit(worker->loop, request);
}

static void send_hold(struct rush_worker *worker, uint32_t user, uint64_t due_us)
{
    struct rush_user *u = &worker->users[user];
    const uint32_t per_row = 100;
    uint32_t rows = worker->config->browse_capacity_rows;
    uint32_t count = 1 + bench_rng_below(&worker->rng, 2);
    char body[128], path[96], key[64];
    if (bench_rng_below(&worker->rng, 100) < 30) {
        snprintf(body, sizeof(body), "{\"count\":%u}", count);
    } else {
        uint32_t seat = bench_rng_below(&worker->rng, rows) * per_row + bench_rng_below(&worker->rng, per_row - 1);
        if (count == 1)
            snprintf(body, sizeof(body), "{\"seat_ids\":[\"%u\"]}", seat);
        else
            snprintf(body, sizeof(body), "{\"seat_ids\":[\"%u\",\"%u\"]}", seat, seat + 1);
    }
    snprintf(path, sizeof(path), "/api/v1/events/%s/holds", worker->run->browse_event.id_text);
    snprintf(key, sizeof(key), "browse-%u-%llx", worker->index, (unsigned long long)bench_rng_next(&worker->rng));
    struct rush_request *request = rush_request_new(worker->loop);
    request->step = STEP_BROWSE_HOLD;
    request->user = user;
    request->start_us = due_us;
    request->done = on_browse_answer;
    TK_ASSERT(rush_request_format(request, &worker->run->target, "POST", path, u->token, u->admission, key, body));
    rush_request_submit(worker->loop, request);
}

static void send_list(struct rush_worker *worker, uint32_t user, uint64_t due_us)
{
    struct rush_request *request = rush_request_new(worker->loop);
    request->step = STEP_BROWSE_LIST;
    request->user = user;
    request->start_us = due_us;
    request->done = on_browse_answer;
    TK_ASSERT(rush_request_format(request, &worker->run->target, "GET", "/api/v1/events?limit=20",
                                  worker->users[user].token, NULL, NULL, NULL));
    rush_request_submit(worker->loop, request);
}

static void browse_tick(struct rush_worker *worker, uint64_t unused)
{
    (void)unused;
    struct browse *b = &browse_state;
    uint64_t now = rush_now_us();
    /* every request due by now goes out, each stamped with its own due time */
    for (uint32_t sent = 0; b->next_due_us <= now && sent < 10000u && !worker->stopping; sent++) {
        uint64_t due = b->next_due_us;
        if (now - due > BROWSE_LATE_US)
            worker->stats->requests_late++;
        uint32_t user = worker->browse_first + b->next_user;
        b->next_user = (b->next_user + 1u) % worker->browse_count;
        uint32_t r = bench_rng_below(&worker->rng, 100);
        const struct rush_config *c = worker->config;
        if (r < c->mix_events_pct)
            send_list(worker, user, due);
        else if (r < c->mix_events_pct + c->mix_hold_pct && worker->users[user].admission[0] != '\0')
            send_hold(worker, user, due);
        else
            send_join(worker, user, due, false);
        /* exponential gaps: Poisson arrivals */
        double u = ((double)bench_rng_below(&worker->rng, 1u << 24) + 0.5) / (double)(1u << 24);
        b->next_due_us += (uint64_t)(-log(u) * b->interval_us) + 1u;
    }
    if (!worker->stopping)
        rush_timer_add(worker->loop, b->next_due_us, browse_tick, 0);
}

int rush_browse_init(struct rush_worker *worker)
{
    TK_ASSERT(worker->browse_count > 0);
    /* every browse user takes an admission token for the browse event (no waiting room: at once) */
    uint64_t now = rush_now_us();
    browse_state.joins_pending = worker->browse_count;
    for (uint32_t i = 0; i < worker->browse_count; i++)
        send_join(worker, worker->browse_first + i, now, true);
    return 0;
}

bool rush_browse_ready(struct rush_worker *worker)
{
    (void)worker;
    return browse_state.joins_pending == 0;
}

void rush_browse_start(struct rush_worker *worker)
{
    struct browse *b = &browse_state;
    double rate = worker->config->browse_rate / worker->config->workers;
    if (rate <= 0 || worker->browse_count == 0)
        return;
    b->interval_us = 1e6 / rate;
    b->next_due_us = worker->t0_us;
    b->next_user = 0;
    rush_timer_add(worker->loop, b->next_due_us, browse_tick, 0);
}
