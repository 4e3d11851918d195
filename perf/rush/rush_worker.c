/* rush_worker.c — one load generator process: its users sign in, it waits for
 * T0, plays its mode, drains, and leaves its figures in the shared mapping.
 *
 * Sign-in: every user of the slice logs in through the edge (POST
 * /api/v1/auth/login), login_concurrency at a time; a failed login is retried
 * (twice, after a second) and then the user sits the run out, counted. The
 * token's subject is the user id the audit and the fairness figures use. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rush.h"
#include "tk_assert.h"

#define LOGIN_ATTEMPTS_MAX 3u
#define SOURCES_PER_WORKER 60000u
#define WS_SOURCE_BASE 1000000u

uint32_t rush_worker_second(const struct rush_worker *worker, uint64_t now_us)
{
    return rush_shared_second(worker->shared, now_us);
}

uint64_t rush_rand_between(struct rush_worker *worker, uint32_t lo, uint32_t hi)
{
    TK_ASSERT(lo <= hi);
    return lo + (uint64_t)bench_rng_below(&worker->rng, hi - lo + 1u);
}

enum rush_outcome rush_worker_account(struct rush_worker *worker, struct rush_request *request,
                                      const struct http_response *response, const uint16_t *expected_statuses,
                                      uint32_t expected_count)
{
    uint64_t now = rush_now_us();
    uint64_t latency = now > request->start_us ? now - request->start_us : 0;
    bool whole_run = now >= worker->measure_from_us && now <= worker->measure_to_us;
    if (response == NULL) {
        rush_stats_record(worker->shared, worker->index, request->step, OUTCOME_ERROR, latency, now, whole_run);
        rush_stats_error(worker->shared, worker->index, request->step, 0, "transport", false);
        return OUTCOME_ERROR;
    }
    if (response->status >= 200 && response->status < 300) {
        rush_stats_record(worker->shared, worker->index, request->step, OUTCOME_OK, latency, now, whole_run);
        return OUTCOME_OK;
    }
    char code[RUSH_CODE_BYTES];
    http_problem_code(response->body, response->body_len, code, sizeof(code));
    bool expected = false;
    for (uint32_t i = 0; i < expected_count; i++)
        expected = expected || expected_statuses[i] == response->status;
    enum rush_outcome outcome = expected ? OUTCOME_REFUSED : OUTCOME_ERROR;
    rush_stats_record(worker->shared, worker->index, request->step, outcome, latency, now, whole_run);
    rush_stats_error(worker->shared, worker->index, request->step, response->status, code, expected);
    if (!expected && worker->stats->first_error[0] == '\0')
        snprintf(worker->stats->first_error, sizeof(worker->stats->first_error), "%s: HTTP %u %.*s",
                 rush_step_name(request->step), response->status,
                 (int)(response->body_len < 120 ? response->body_len : 120), response->body);
    return outcome;
}

/* ---- sign-in ---- */

static void login_next(struct rush_worker *worker);

static void on_login(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    struct rush_user *user = &worker->users[request->user];
    worker->logins_in_flight--;
    enum rush_outcome outcome = rush_worker_account(worker, request, response, NULL, 0);
    json_t *root = outcome == OUTCOME_OK ? json_loadb(response->body, response->body_len, 0, NULL) : NULL;
    const char *token = json_string_value(json_object_get(root, "access_token"));
    if (token != NULL && strlen(token) < sizeof(user->token)) {
        snprintf(user->token, sizeof(user->token), "%s", token);
        memcpy(rush_shared_token(worker->shared, user->record), token, strlen(token) + 1);
        user->user_id = rush_token_subject(token);
        worker->logins_left--;
        struct rush_user_record *record = &rush_shared_users(worker->shared)[user->record];
        record->user_id = user->user_id;
    } else if (++user->tries < LOGIN_ATTEMPTS_MAX) {
        worker->logins_retry[worker->logins_retry_count++] = request->user;
    } else {
        worker->logins_left--;
        worker->logins_failed++;
    }
    json_decref(root);
    login_next(worker);
}

static void send_login(struct rush_worker *worker, uint32_t index)
{
    const struct rush_run *run = worker->run;
    struct rush_request *request = rush_request_new(worker->loop);
    request->step = STEP_LOGIN;
    request->user = index;
    request->done = on_login;
    char body[256];
    snprintf(body, sizeof(body), "{\"email\":\"%s-%u@perf.tiketi\",\"password\":\"%s\"}", run->user_prefix,
             worker->first_user + index + 1u, run->password);
    TK_ASSERT(rush_request_format(request, &run->login_target, "POST", "/api/v1/auth/login", NULL, NULL, NULL, body));
    worker->logins_in_flight++;
    rush_request_submit(worker->loop, request);
}

static void login_next(struct rush_worker *worker)
{
    while (worker->logins_in_flight < worker->config->login_concurrency) {
        if (worker->logins_retry_count > 0) {
            send_login(worker, worker->logins_retry[--worker->logins_retry_count]);
        } else if (worker->login_next < worker->user_count) {
            uint32_t next = worker->login_next++;
            if (worker->users[next].token[0] == '\0')
                send_login(worker, next);
        } else {
            return;
        }
    }
}

static bool logins_finished(struct rush_worker *worker)
{
    return worker->logins_left == 0 || rush_shared_stop_requested(worker->shared);
}

/* Users with a cached token (rush_tokens_load) skip the sign-in. */
static void use_cached_tokens(struct rush_worker *worker)
{
    struct rush_user_record *records = rush_shared_users(worker->shared);
    for (uint32_t i = 0; i < worker->user_count; i++) {
        struct rush_user *user = &worker->users[i];
        const char *token = rush_shared_token(worker->shared, user->record);
        if (token[0] == '\0' || strlen(token) >= sizeof(user->token))
            continue;
        snprintf(user->token, sizeof(user->token), "%s", token);
        user->user_id = rush_token_subject(token);
        records[user->record].user_id = user->user_id;
        worker->logins_left--;
        worker->cached++;
    }
}

static int sign_in(struct rush_worker *worker)
{
    worker->logins_left = worker->user_count;
    worker->logins_retry = calloc(worker->user_count + 1, sizeof(uint32_t));
    TK_ASSERT(worker->logins_retry != NULL);
    use_cached_tokens(worker);
    worker->measure_from_us = 0;
    worker->measure_to_us = UINT64_MAX;
    login_next(worker);
    rush_loop_run(worker->loop, logins_finished, UINT64_MAX);
    free(worker->logins_retry);
    worker->logins_retry = NULL;
    if (worker->logins_failed > 0)
        fprintf(stderr, "rush: worker %u: %u of %u users could not sign in (%s)\n", worker->index,
                worker->logins_failed, worker->user_count, worker->stats->first_error);
    return worker->logins_failed * 10 > worker->user_count ? -1 : 0;
}

/* ---- the run ---- */

static bool t0_reached(struct rush_worker *worker)
{
    uint64_t t0 = rush_shared_t0(worker->shared);
    return rush_shared_stop_requested(worker->shared) || (t0 != 0 && rush_now_us() >= t0);
}

static const struct rush_mode_ops *mode_of(const struct rush_config *config)
{
    switch (config->mode) {
    case RUSH_MODE_RUSH:
        return &rush_mode_rush;
    case RUSH_MODE_HOLDS:
        return &rush_mode_holds;
    case RUSH_MODE_WAITING:
        return &rush_mode_waiting;
    }
    TK_UNREACHABLE();
}

static bool mode_ready(struct rush_worker *worker)
{
    return rush_shared_stop_requested(worker->shared) || worker->mode->ready == NULL || worker->mode->ready(worker);
}

static bool run_finished(struct rush_worker *worker)
{
    return rush_shared_stop_requested(worker->shared) || worker->mode->done(worker);
}

static bool drained(struct rush_worker *worker)
{
    return rush_loop_in_flight(worker->loop) == 0 || rush_shared_stop_requested(worker->shared);
}

static double own_cpu_seconds(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 + (double)usage.ru_stime.tv_sec +
           (double)usage.ru_stime.tv_usec / 1e6;
}

/* The sign-in loop: pool connections to where users sign in (the edge, also
 * when the run targets the baseline). */
static struct rush_loop *make_login_loop(struct rush_worker *worker)
{
    uint32_t pool = worker->config->login_concurrency;
    struct rush_loop_config loop_config = {
        .target = worker->run->login_target,
        .pool = pool < RUSH_HTTP_POOL_MAX ? pool : RUSH_HTTP_POOL_MAX,
        .source_base = worker->index * SOURCES_PER_WORKER,
        .source_span = SOURCES_PER_WORKER,
        .body_max = 1u << 20,
    };
    return rush_loop_create(worker, &loop_config);
}

static struct rush_loop *make_loop(struct rush_worker *worker)
{
    const struct rush_config *config = worker->config;
    uint32_t lanes = 0;
    if (config->mode == RUSH_MODE_HOLDS)
        lanes = config->lanes / config->workers + (worker->index < config->lanes % config->workers ? 1u : 0u);
    uint32_t ws_max = config->mode == RUSH_MODE_HOLDS ? 0 : worker->user_count;
    uint32_t pool = config->http_pool;
    if (pool + lanes + ws_max > RUSH_FDS_PER_WORKER_MAX) {
        fprintf(stderr, "rush: worker %u would need %u connections (fd limit: %u per process): add workers\n",
                worker->index, pool + lanes + ws_max, RUSH_FDS_PER_WORKER_MAX);
        return NULL;
    }
    struct rush_loop_config loop_config = {
        .target = worker->run->target,
        .pool = pool,
        .lanes = lanes,
        .ws_max = ws_max,
        .source_base = worker->index * SOURCES_PER_WORKER,
        .source_span = SOURCES_PER_WORKER,
        .requests_per_connection = config->requests_per_connection,
        .body_max = RUSH_BODY_BYTES_MAX,
        .on_ws_message = worker->mode->on_ws_message,
        .on_ws_event = worker->mode->on_ws_event,
    };
    worker->lane_count = lanes;
    return rush_loop_create(worker, &loop_config);
}

uint32_t rush_worker_ws_source(const struct rush_worker *worker, uint32_t user)
{
    return WS_SOURCE_BASE + worker->first_user + user;
}

int rush_worker_main(struct rush_worker *worker)
{
    worker->stats = rush_shared_worker(worker->shared, worker->index);
    worker->mode = mode_of(worker->config);
    worker->rng.state = ((uint64_t)worker->config->seed << 20) ^ (worker->index + 1u) * UINT64_C(0x9e3779b97f4a7c15);
    worker->users = calloc(worker->user_count, sizeof(worker->users[0]));
    TK_ASSERT(worker->users != NULL);
    struct rush_user_record *records = rush_shared_users(worker->shared);
    for (uint32_t i = 0; i < worker->user_count; i++) {
        worker->users[i].record = worker->first_user + i;
        worker->users[i].ws_conn = UINT32_MAX;
        records[worker->first_user + i] = (struct rush_user_record){0};
    }
    atomic_store(&worker->stats->phase, PHASE_LOGIN);
    worker->loop = make_login_loop(worker);
    int signed_in = sign_in(worker);
    rush_loop_destroy(worker->loop);
    worker->loop = NULL;
    if (signed_in != 0)
        goto fail;
    worker->loop = make_loop(worker);
    if (worker->loop == NULL)
        goto fail;
    if (worker->mode->init(worker) != 0)
        goto fail;
    rush_loop_run(worker->loop, mode_ready, UINT64_MAX);
    atomic_store(&worker->stats->phase, PHASE_READY);
    rush_loop_run(worker->loop, t0_reached, UINT64_MAX);
    worker->t0_us = rush_shared_t0(worker->shared);
    worker->measure_from_us = worker->t0_us + (uint64_t)worker->config->warmup_s * 1000000u;
    worker->measure_to_us = worker->measure_from_us + (uint64_t)worker->config->duration_s * 1000000u;
    if (worker->config->mode != RUSH_MODE_HOLDS) {
        worker->measure_from_us = worker->t0_us;
        worker->measure_to_us = UINT64_MAX;
    }
    atomic_store(&worker->stats->phase, PHASE_RUNNING);
    double cpu_start = own_cpu_seconds();
    worker->mode->start(worker);
    uint64_t end = worker->t0_us + (uint64_t)(worker->config->warmup_s * (worker->config->mode == RUSH_MODE_HOLDS) +
                                              worker->config->duration_s) * 1000000u;
    rush_loop_run(worker->loop, run_finished, end);
    worker->stopping = true;
    atomic_store(&worker->stats->phase, PHASE_DRAINING);
    rush_loop_run(worker->loop, drained, rush_now_us() + (uint64_t)worker->config->drain_s * 1000000u);
    worker->mode->finish(worker);
    rush_loop_run(worker->loop, NULL, rush_now_us() + 200000u); /* close frames leave */
    worker->stats->cpu_seconds = own_cpu_seconds() - cpu_start;
    rush_loop_destroy(worker->loop);
    free(worker->users);
    atomic_store(&worker->stats->phase, PHASE_DONE);
    return 0;
fail:
    atomic_store(&worker->stats->phase, PHASE_FAILED);
    rush_loop_destroy(worker->loop);
    free(worker->users);
    return 1;
}
