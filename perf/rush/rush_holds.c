/* rush_holds.c — mode holds: as many holds per second as the target takes,
 * closed loop, the scenario run against TIKETI core and against the baseline.
 *
 * `lanes` connections over all workers, each one request at a time. A lane
 * cycles through its users (so no user meets the edge's per-user rate limit)
 * and keeps up to live_per_lane holds: while it has room it holds, when full it
 * releases its oldest (DELETE /api/v1/reservations/{id}), as in seatcore-bench
 * and rpc-bench, so the share of seats held, and with it the conflict rate, is
 * the same whatever the throughput (lanes x live_per_lane x ~2.5 seats out of
 * the events' seats). Picks come from perf/common's workload (1-4 adjacent seats
 * in a random row, best_pct best-available), the same picks for both targets.
 * Every user holds on one event (user i on event i mod events) and joins its
 * waiting room once at the start (no queue: the token comes at once); a 403 on
 * a hold (the token expired) joins again.
 *
 * Counted: one hold = one POST .../holds answered 201 or 409 (a conflict is an
 * answer; its share is reported), releases apart. The window starts warmup_s
 * after T0; the whole-run latency histogram covers the window only.
 *
 * Closed loop (holds_rate 0): a lane sends its next request when the last one
 * is answered: the throughput the target can take with `lanes` in flight.
 * Open loop (holds_rate R): requests are due at Poisson times, R per second
 * over all workers; a due request takes a free lane, or waits for one; its
 * latency runs from when it was due (no coordinated omission), so a p99 here
 * is what users would see at that load.
 *
 * Every 201's seats go to a hold log (asked, answered, certainly held until),
 * which rush_holds_audit.c checks at the end: no seat in two holds at once. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rush.h"
#include "tk_assert.h"

struct live {
    char reservation_id[RUSH_ID_BYTES];
    uint32_t user;
    uint32_t held_first, held_count; /* its seats in the hold log (held_count 0: not logged) */
};

struct lane {
    uint32_t index;
    uint32_t first_user, user_count, next_user;
    struct live *live; /* a FIFO of live_per_lane */
    uint32_t head, count;
    bool busy;
};

#define DUE_BACKLOG_MAX (1u << 20)
#define OPEN_LOOP_LATE_US 10000u

struct holds {
    struct lane *lanes;
    uint32_t lane_count;
    uint32_t joins_left;
    struct bench_layout layout;
    /* open loop */
    uint32_t *idle; /* free lanes (a stack) */
    uint32_t idle_count;
    uint64_t *backlog; /* due times waiting for a lane (a ring) */
    uint32_t backlog_head, backlog_count;
    uint64_t next_due_us;
    double interval_us;
    /* the hold log for the audit (rush_holds_audit.c) */
    struct rush_held_seat *held;
    uint32_t held_count, held_dropped;
};

static struct holds *holds_of(struct rush_worker *worker)
{
    return worker->scenario;
}

static void lane_next(struct rush_worker *worker, struct lane *lane, uint64_t due_us);
static void open_loop_free(struct rush_worker *worker, struct lane *lane);

static void lane_resume(struct rush_worker *worker, uint64_t lane_index)
{
    struct lane *lane = &holds_of(worker)->lanes[lane_index];
    lane->busy = false;
    lane_next(worker, lane, 0);
}

static void lane_after(struct rush_worker *worker, struct lane *lane)
{
    if (worker->config->holds_rate > 0 && worker->t0_us != 0)
        open_loop_free(worker, lane);
    else if (worker->config->think_ms > 0)
        rush_timer_add(worker->loop, rush_now_us() + (uint64_t)worker->config->think_ms * 1000u, lane_resume,
                       lane->index);
    else
        lane_resume(worker, lane->index);
}

static void on_join(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    struct rush_user *u = &worker->users[request->user];
    struct holds *h = holds_of(worker);
    if (rush_worker_account(worker, request, response, NULL, 0) == OUTCOME_OK) {
        json_t *root = json_loadb(response->body, response->body_len, 0, NULL);
        const char *token = json_string_value(json_object_get(root, "admission_token"));
        if (token != NULL && strlen(token) < sizeof(u->admission))
            snprintf(u->admission, sizeof(u->admission), "%s", token);
        json_decref(root);
    }
    if (h->joins_left > 0)
        h->joins_left--;
    if (request->lane >= 0)
        lane_after(worker, &h->lanes[request->lane]);
}

static const struct rush_event_info *event_of(struct rush_worker *worker, uint32_t user)
{
    return &worker->run->events[(worker->first_user + user) % worker->run->event_count];
}

static void send_join(struct rush_worker *worker, uint32_t user, int32_t lane, uint64_t due_us)
{
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/events/%s/queue", event_of(worker, user)->id_text);
    struct rush_request *request = rush_request_new(worker->loop);
    request->step = STEP_JOIN;
    request->user = user;
    request->lane = lane;
    request->start_us = due_us;
    request->done = on_join;
    TK_ASSERT(rush_request_format(request, &worker->run->target, "POST", path, worker->users[user].token, NULL,
                                  NULL, NULL));
    rush_request_submit(worker->loop, request);
}

/* The seats of a 201 into the hold log; their first index. A seat id is a
 * number, as a JSON string (the edge) or integer. */
static uint32_t log_held(struct rush_worker *worker, const struct rush_request *request, json_t *seat_ids,
                         uint32_t *logged)
{
    struct holds *h = holds_of(worker);
    uint32_t first = h->held_count;
    uint64_t now = rush_now_us();
    uint32_t event = (worker->first_user + request->user) % worker->run->event_count;
    size_t i;
    json_t *id;
    *logged = 0;
    json_array_foreach(seat_ids, i, id)
    {
        uint64_t seat = json_is_string(id) ? strtoull(json_string_value(id), NULL, 10)
                                           : (uint64_t)json_integer_value(id);
        if (h->held_count == RUSH_HELD_SEATS_MAX) {
            h->held_dropped++;
            continue;
        }
        TK_ASSERT(request->start_us != 0 && request->start_us <= now);
        h->held[h->held_count++] = (struct rush_held_seat){
            .start_us = request->start_us,
            .answered_us = now,
            .end_us = request->start_us + (uint64_t)worker->config->hold_ttl_s * 1000000u,
            .seat = (uint32_t)seat,
            .event = event,
        };
        (*logged)++;
    }
    return first;
}

static void on_hold(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    static const uint16_t expected[] = {409};
    struct lane *lane = &holds_of(worker)->lanes[request->lane];
    enum rush_outcome outcome = rush_worker_account(worker, request, response, expected, 1);
    if (outcome == OUTCOME_OK) {
        json_t *root = json_loadb(response->body, response->body_len, 0, NULL);
        const char *id = json_string_value(json_object_get(root, "reservation_id"));
        uint32_t logged = 0;
        uint32_t first = log_held(worker, request, json_object_get(root, "seat_ids"), &logged);
        if (id != NULL && strlen(id) < RUSH_ID_BYTES && lane->count < worker->config->live_per_lane) {
            /* (live_per_lane 0: holds are never released, they expire) */
            struct live *slot = &lane->live[(lane->head + lane->count) % worker->config->live_per_lane];
            snprintf(slot->reservation_id, sizeof(slot->reservation_id), "%s", id);
            slot->user = request->user;
            slot->held_first = first;
            slot->held_count = logged;
            lane->count++;
        }
        json_decref(root);
    } else if (response != NULL && response->status == 403 && !worker->stopping) {
        worker->users[request->user].admission[0] = '\0';
        send_join(worker, request->user, (int32_t)lane->index, 0);
        return;
    }
    lane_after(worker, lane);
}

static void on_release(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    static const uint16_t expected[] = {404, 410}; /* expired meanwhile */
    rush_worker_account(worker, request, response, expected, 2);
    lane_after(worker, &holds_of(worker)->lanes[request->lane]);
}

static void send_release(struct rush_worker *worker, struct lane *lane, uint64_t due_us)
{
    struct live oldest = lane->live[lane->head];
    lane->head = (lane->head + 1u) % worker->config->live_per_lane;
    lane->count--;
    /* from here the seats may be free again: the audit's certain end of the hold */
    uint64_t asked = due_us != 0 ? due_us : rush_now_us();
    struct holds *h = holds_of(worker);
    TK_ASSERT(oldest.held_first + oldest.held_count <= h->held_count);
    for (uint32_t i = 0; i < oldest.held_count; i++) {
        struct rush_held_seat *seat = &h->held[oldest.held_first + i];
        if (asked < seat->end_us)
            seat->end_us = asked;
    }
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/reservations/%s", oldest.reservation_id);
    struct rush_request *request = rush_request_new(worker->loop);
    request->step = STEP_RELEASE;
    request->user = oldest.user;
    request->lane = (int32_t)lane->index;
    request->start_us = due_us;
    request->done = on_release;
    TK_ASSERT(rush_request_format(request, &worker->run->target, "DELETE", path, worker->users[oldest.user].token,
                                  NULL, NULL, NULL));
    rush_request_submit(worker->loop, request);
}

static void send_hold(struct rush_worker *worker, struct lane *lane, uint64_t due_us)
{
    struct holds *h = holds_of(worker);
    uint32_t user = lane->first_user + lane->next_user;
    lane->next_user = (lane->next_user + 1u) % lane->user_count;
    struct rush_user *u = &worker->users[user];
    if (u->admission[0] == '\0') {
        send_join(worker, user, (int32_t)lane->index, due_us);
        return;
    }
    struct bench_pick pick;
    workload_pick(&h->layout, &worker->rng, true, &pick);
    char body[160], key[64], path[96];
    if (pick.best) {
        snprintf(body, sizeof(body), "{\"count\":%u}", pick.count);
    } else {
        int at = snprintf(body, sizeof(body), "{\"seat_ids\":[");
        for (uint32_t i = 0; i < pick.count; i++)
            at += snprintf(body + at, sizeof(body) - (size_t)at, "%s\"%u\"", i ? "," : "", pick.seats[i]);
        snprintf(body + at, sizeof(body) - (size_t)at, "]}");
    }
    snprintf(path, sizeof(path), "/api/v1/events/%s/holds", event_of(worker, user)->id_text);
    snprintf(key, sizeof(key), "h-%u-%llx", worker->index, (unsigned long long)bench_rng_next(&worker->rng));
    struct rush_request *request = rush_request_new(worker->loop);
    request->step = STEP_HOLD;
    request->user = user;
    request->lane = (int32_t)lane->index;
    request->start_us = due_us;
    request->done = on_hold;
    TK_ASSERT(rush_request_format(request, &worker->run->target, "POST", path, u->token, u->admission, key, body));
    rush_request_submit(worker->loop, request);
}

/* due_us: the open loop's due time (latency runs from it); 0: now. */
static void lane_next(struct rush_worker *worker, struct lane *lane, uint64_t due_us)
{
    if (lane->busy || worker->stopping)
        return;
    lane->busy = true;
    if (lane->count > 0 && lane->count == worker->config->live_per_lane)
        send_release(worker, lane, due_us);
    else
        send_hold(worker, lane, due_us);
}

/* ---- open loop ---- */

/* A due request leaves on a free lane; one that leaves more than 10 ms after it
 * was due (its timer fired late, or it waited for a lane) is counted late: the
 * load generator, not the target, held it back, and the report says how often. */
static void open_loop_send(struct rush_worker *worker, struct lane *lane, uint64_t due_us)
{
    TK_ASSERT(due_us != 0 && !lane->busy);
    if (rush_now_us() > due_us + OPEN_LOOP_LATE_US)
        worker->stats->requests_late++;
    lane_next(worker, lane, due_us);
}

static void open_loop_free(struct rush_worker *worker, struct lane *lane)
{
    struct holds *h = holds_of(worker);
    lane->busy = false;
    if (h->backlog_count > 0 && !worker->stopping) {
        uint64_t due = h->backlog[h->backlog_head];
        h->backlog_head = (h->backlog_head + 1u) % DUE_BACKLOG_MAX;
        h->backlog_count--;
        open_loop_send(worker, lane, due);
        return;
    }
    h->idle[h->idle_count++] = lane->index;
    TK_ASSERT(h->idle_count <= h->lane_count);
}

static void open_loop_tick(struct rush_worker *worker, uint64_t unused)
{
    (void)unused;
    struct holds *h = holds_of(worker);
    uint64_t now = rush_now_us();
    for (uint32_t n = 0; h->next_due_us <= now && n < 100000u && !worker->stopping; n++) {
        uint64_t due = h->next_due_us;
        if (h->idle_count > 0) {
            open_loop_send(worker, &h->lanes[h->idle[--h->idle_count]], due);
        } else if (h->backlog_count < DUE_BACKLOG_MAX) {
            /* no free lane: it waits for one, and its latency (from due) grows */
            h->backlog[(h->backlog_head + h->backlog_count) % DUE_BACKLOG_MAX] = due;
            h->backlog_count++;
        } else {
            /* over a million requests behind: the run is meaningless as an open loop;
             * say so in the error table rather than send them all at the end */
            rush_stats_error(worker->shared, worker->index, STEP_HOLD, 0, "loadgen_backlog_full", false);
        }
        double u = ((double)bench_rng_below(&worker->rng, 1u << 24) + 0.5) / (double)(1u << 24);
        h->next_due_us += (uint64_t)(-log(u) * h->interval_us) + 1u;
    }
    if (!worker->stopping)
        rush_timer_add(worker->loop, h->next_due_us, open_loop_tick, 0);
}

static int holds_init(struct rush_worker *worker)
{
    const struct rush_config *config = worker->config;
    struct holds *h = calloc(1, sizeof(*h));
    TK_ASSERT(h != NULL);
    worker->scenario = h;
    h->lane_count = worker->lane_count;
    if (h->lane_count == 0 || worker->user_count < h->lane_count) {
        fprintf(stderr, "rush: worker %u has %u lanes for %u users\n", worker->index, h->lane_count,
                worker->user_count);
        return -1;
    }
    /* one section of rows x seats_per_row per event (the holds scenarios' shape) */
    h->layout = (struct bench_layout){.event_count = 1,
                                      .first_event_id = 1,
                                      .rows = config->sections[0].rows,
                                      .seats_per_row = config->sections[0].seats_per_row,
                                      .users = worker->user_count,
                                      .best_percent = config->best_pct};
    h->lanes = calloc(h->lane_count, sizeof(h->lanes[0]));
    TK_ASSERT(h->lanes != NULL);
    uint32_t per_lane = worker->user_count / h->lane_count;
    for (uint32_t i = 0; i < h->lane_count; i++) {
        struct lane *lane = &h->lanes[i];
        lane->index = i;
        lane->first_user = i * per_lane;
        lane->user_count = per_lane;
        lane->live = calloc(config->live_per_lane + 1u, sizeof(lane->live[0]));
        TK_ASSERT(lane->live != NULL);
    }
    /* every user joins its event once before T0 (pool connections; not in the window) */
    h->idle = calloc(h->lane_count, sizeof(uint32_t));
    h->backlog = config->holds_rate > 0 ? calloc(DUE_BACKLOG_MAX, sizeof(uint64_t)) : NULL;
    TK_ASSERT(h->idle != NULL && (config->holds_rate == 0 || h->backlog != NULL));
    /* untouched pages cost nothing: the log's memory grows with the holds made */
    h->held = calloc(RUSH_HELD_SEATS_MAX, sizeof(h->held[0]));
    TK_ASSERT(h->held != NULL);
    h->joins_left = worker->user_count;
    for (uint32_t u = 0; u < worker->user_count; u++)
        send_join(worker, u, -1, 0);
    return 0;
}

static void holds_start(struct rush_worker *worker)
{
    struct holds *h = holds_of(worker);
    if (worker->config->holds_rate > 0) {
        for (uint32_t i = 0; i < h->lane_count; i++)
            h->idle[h->idle_count++] = h->lane_count - 1u - i;
        h->interval_us = 1e6 * worker->config->workers / worker->config->holds_rate;
        h->next_due_us = worker->t0_us;
        rush_timer_add(worker->loop, h->next_due_us, open_loop_tick, 0);
        return;
    }
    for (uint32_t i = 0; i < h->lane_count; i++)
        lane_next(worker, &h->lanes[i], 0);
}

static bool holds_ready(struct rush_worker *worker)
{
    return holds_of(worker)->joins_left == 0;
}

static bool holds_done(struct rush_worker *worker)
{
    (void)worker;
    return false; /* the window's end stops it */
}

static void holds_finish(struct rush_worker *worker)
{
    struct holds *h = holds_of(worker);
    char path[512];
    rush_hold_log_path(path, sizeof(path), getppid(), worker->index);
    if (rush_hold_log_write(path, h->held, h->held_count, h->held_dropped) != 0)
        fprintf(stderr, "rush: worker %u cannot write its hold log %s: %s\n", worker->index, path, strerror(errno));
    free(h->held);
    for (uint32_t i = 0; i < h->lane_count; i++)
        free(h->lanes[i].live);
    free(h->lanes);
    free(h->idle);
    free(h->backlog);
    free(h);
    worker->scenario = NULL;
}

const struct rush_mode_ops rush_mode_holds = {
    .init = holds_init,
    .ready = holds_ready,
    .start = holds_start,
    .done = holds_done,
    .finish = holds_finish,
};
