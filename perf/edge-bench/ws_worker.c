/* ws_worker.c — one load-generator process: its share of the connections in one
 * epoll loop.
 *
 * The ramp opens connections at the worker's share of --open-per-s, with at most
 * --pending-max upgrades in flight (each upgrade is a queue-svc Join at the edge;
 * a burst past the listen backlog would measure SYN retries, not the edge). When
 * every attempt has an outcome the worker writes "opened" to the parent and keeps
 * its sockets open; the parent answers with the window, and at its end the worker
 * judges each client, writes its ws_result and exits (closing everything). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "tk_assert.h"
#include "ws_bench.h"

#define CONTROL_TAG UINT32_MAX
#define EVENTS_PER_WAIT 1024

uint32_t ws_now_ms(void)
{
    struct timespec ts;
    TK_ASSERT(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

struct worker {
    const struct ws_plan *plan;
    uint32_t id, share, next, pending, done_opening;
    struct ws_conn *conns;
    int epfd;
    uint32_t start_ms, window_start_ms, window_end_ms;
    struct ws_result result;
};

static bool write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Opens what the ramp allows by now. */
static void ramp(struct worker *w, uint32_t now_ms)
{
    const struct ws_plan *plan = w->plan;
    uint64_t per_s = (plan->open_per_s + plan->workers - 1) / plan->workers;
    uint64_t due = (uint64_t)(now_ms - w->start_ms) * per_s / 1000u + 1;
    if (due > w->share)
        due = w->share;
    while (w->next < due && w->pending < plan->pending_max) {
        uint32_t local = w->next++;
        struct ws_conn *c = &w->conns[local];
        if (ws_conn_open(c, plan, now_ms, w->epfd, local, &w->result))
            w->pending++;
        c->index = w->id + local * plan->workers;
    }
}

/* Upgrades that hang past the timeout are failures (the edge's header timeout is 10 s). */
static void expire_handshakes(struct worker *w, uint32_t now_ms)
{
    for (uint32_t i = 0; i < w->next; i++) {
        struct ws_conn *c = &w->conns[i];
        if ((c->state == WS_CONNECTING || c->state == WS_HANDSHAKE) &&
            now_ms - c->started_ms > WS_HANDSHAKE_TIMEOUT_MS) {
            ws_conn_close(c);
            w->result.handshake_timeouts++;
            w->pending--;
        }
    }
}

static void on_event(struct worker *w, uint32_t tag, uint32_t events, uint32_t now_ms)
{
    TK_ASSERT(tag < w->next);
    struct ws_conn *c = &w->conns[tag];
    if (c->state == WS_CLOSED)
        return; /* closed earlier in this batch */
    bool was_pending = c->state != WS_OPEN;
    bool alive = ws_conn_ready(c, w->plan, events, now_ms, &w->result);
    if (was_pending && (!alive || c->state == WS_OPEN)) {
        TK_ASSERT(w->pending > 0);
        w->pending--;
    }
}

/* The parent's one line: "window START END" (monotonic ms). */
static bool read_window(struct worker *w, int control_in)
{
    char line[128];
    ssize_t n = read(control_in, line, sizeof(line) - 1);
    if (n <= 0)
        return false;
    line[n] = '\0';
    unsigned start = 0, end = 0;
    if (sscanf(line, "window %u %u", &start, &end) != 2 || end <= start)
        return false;
    w->window_start_ms = start;
    w->window_end_ms = end;
    ws_conn_set_window(start, end);
    return true;
}

static unsigned gap_bucket(uint32_t gap_ms)
{
    static const uint32_t limits[WS_GAP_BUCKETS - 1] = {1000, 1200, 1500, 2000, 5000};
    for (unsigned i = 0; i < WS_GAP_BUCKETS - 1; i++)
        if (gap_ms <= limits[i])
            return i;
    return WS_GAP_BUCKETS - 1;
}

/* Every client still open at the window's end (all were open before it began) is judged:
 * did each whole second of the window bring it a position, and what was its longest gap. */
static void judge(struct worker *w)
{
    uint32_t seconds = (w->window_end_ms - w->window_start_ms) / 1000u;
    TK_ASSERT(seconds >= 1 && seconds <= WS_WINDOW_S_MAX);
    uint64_t every = seconds == 64 ? UINT64_MAX : (UINT64_C(1) << seconds) - 1;
    struct ws_result *r = &w->result;
    r->min_positions = UINT64_MAX;
    for (uint32_t i = 0; i < w->next; i++) {
        struct ws_conn *c = &w->conns[i];
        if (c->state != WS_OPEN)
            continue;
        uint32_t last = c->last_position_ms > w->window_start_ms ? c->last_position_ms : w->window_start_ms;
        uint32_t gap = w->window_end_ms - last > c->max_gap_ms ? w->window_end_ms - last : c->max_gap_ms;
        unsigned covered = (unsigned)__builtin_popcountll(c->seconds_seen & every);
        r->open_through_window++;
        r->every_second += covered == seconds;
        r->client_seconds += seconds;
        r->client_seconds_with_position += covered;
        r->positions_in_window += c->positions;
        r->gap_buckets[gap_bucket(gap)]++;
        r->min_positions = c->positions < r->min_positions ? c->positions : r->min_positions;
        r->max_positions = c->positions > r->max_positions ? c->positions : r->max_positions;
    }
    if (r->open_through_window == 0)
        r->min_positions = 0;
}

static void loop(struct worker *w, int control_in, int report_out)
{
    struct epoll_event events[EVENTS_PER_WAIT];
    uint32_t last_sweep_ms = w->start_ms;
    for (;;) {
        uint32_t now = ws_now_ms();
        if (!w->done_opening) {
            ramp(w, now);
            if (w->next == w->share && w->pending == 0) {
                w->done_opening = 1;
                TK_ASSERT(write_all(report_out, "opened\n", 7));
            }
        }
        if (w->window_end_ms != 0 && (int32_t)(now - w->window_end_ms) >= 0)
            return;
        if (now - last_sweep_ms >= 1000u) {
            expire_handshakes(w, now);
            last_sweep_ms = now;
            if (!w->done_opening && (now - w->start_ms) / 1000u % 5u == 0)
                fprintf(stderr, "edge-bench-ws: worker %u: %u of %u started, %u upgrading, %" PRIu64 " open\n", w->id,
                        w->next, w->share, w->pending, w->result.opened);
        }
        int n = epoll_wait(w->epfd, events, EVENTS_PER_WAIT, 5);
        TK_ASSERT(n >= 0 || errno == EINTR);
        now = ws_now_ms();
        for (int i = 0; i < n; i++) {
            if (events[i].data.u32 != CONTROL_TAG)
                on_event(w, events[i].data.u32, events[i].events, now);
            else if (!read_window(w, control_in))
                exit(3); /* the parent went away or sent nonsense: nothing left to report to */
        }
    }
}

int ws_worker_run(const struct ws_plan *plan, uint32_t worker, int control_in, int report_out)
{
    TK_ASSERT(plan != NULL && worker < plan->workers && plan->workers <= WS_WORKERS_MAX);
    struct worker w = {.plan = plan, .id = worker};
    w.share = plan->connections / plan->workers + (worker < plan->connections % plan->workers);
    w.conns = calloc(w.share ? w.share : 1, sizeof(*w.conns));
    w.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w.conns == NULL || w.epfd < 0) {
        fprintf(stderr, "edge-bench-ws: worker %u: %s\n", worker, strerror(errno));
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = CONTROL_TAG};
    TK_ASSERT(epoll_ctl(w.epfd, EPOLL_CTL_ADD, control_in, &ev) == 0);
    w.start_ms = ws_now_ms();
    loop(&w, control_in, report_out);
    judge(&w);
    TK_ASSERT(write_all(report_out, &w.result, sizeof(w.result)));
    for (uint32_t i = 0; i < w.next; i++)
        ws_conn_close(&w.conns[i]);
    free(w.conns);
    close(w.epfd);
    return 0;
}
