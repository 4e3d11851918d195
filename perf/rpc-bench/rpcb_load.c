/* rpcb_load.c — the load generator and the gRPC rows.
 *
 * A row keeps N calls in flight on lanes: a lane is one call at a time with its
 * own request storage, picks and live holds, so lanes need no locks however many
 * client loop threads run their callbacks. Calls go through the rpc layer's
 * asynchronous client (rpc_unary_async); a call's completion runs on a client
 * loop thread, which accounts for it and, in a closed-loop row, starts the
 * lane's next call at once.
 *
 * One op per call: a lane holds (Hold, or HoldBestAvailable for a
 * best-available pick), then releases that hold (Release), then holds again.
 * Batch of B: each call releases up to B/2 of the lane's oldest live holds and
 * fills the rest with new holds, so a lane keeps at most ~B holds alive and the
 * seat occupancy stays bounded. An op is one hold or one release the engine
 * answered (a refused hold is an op too, as in seatcore-bench).
 *
 * Open loop: a pacer thread sends Batch calls on a fixed schedule (a rate, not
 * a number in flight) on free lanes; a call's latency runs from its scheduled
 * time, so a stall that delays sending shows in the figures (no coordinated
 * omission). The main thread only takes the window's snapshots.
 *
 * Every row: a warm-up (unmeasured), then the window; ops, calls and latencies
 * count when their reply arrives inside the window. Then the lanes drain, and
 * the holds still alive are released (unmeasured) so the next row starts on the
 * same seat map. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "rpc_client.h"
#include "rpcb.h"
#include "tk_assert.h"
#include "tiketi/v1/seatcore.pb-c.h"

#define CALL_TIMEOUT_MS 10000
#define DRAIN_TIMEOUT_NS (30ull * 1000000000ull)
#define OPEN_LANES_MIN 16u
#define OPEN_LANES_MAX 256u

enum op_kind { OPK_HOLD, OPK_HOLD_BEST, OPK_RELEASE };

struct op_meta {
    uint8_t kind;
    struct live_hold hold; /* the pick (hold) or the hold being released */
};

struct load_run;

struct lane {
    struct load_run *run;
    struct rpc_channel *channel;
    struct bench_rng rng;
    struct live_ring live;
    uint64_t started_ns; /* send time, or the scheduled time in the open loop */
    uint32_t n_ops;
    /* Request storage, reused call after call (rpc_unary_async packs the request
     * before it returns). */
    Tiketi__V1__BatchRequest batch;
    Tiketi__V1__BatchOp *req_ops;
    Tiketi__V1__BatchOp **op_list;
    Tiketi__V1__HoldRequest *req_holds;
    Tiketi__V1__HoldBestRequest *req_bests;
    Tiketi__V1__HoldRef *req_refs;
    uint32_t *seats;
    struct op_meta *meta;
    /* One writer at a time (the lane's completion), read by the main thread. */
    _Atomic uint64_t calls, ops, holds, conflicts, refused, errors;
    char first_error[160];
    struct bench_samples samples;
    struct lane *next_free;
};

struct load_run {
    struct rpc_client_loop *loop;
    const struct bench_layout *layout;
    uint32_t batch; /* ops per Batch call; 0: one op per call */
    uint32_t lane_count;
    struct lane *lanes;
    bool open_loop;
    _Atomic bool stop;
    _Atomic bool measuring;
    _Atomic int in_flight;
    pthread_mutex_t free_lock;
    struct lane *free_lanes;
};

static const struct rpc_call_options call_options = {.timeout_ms = CALL_TIMEOUT_MS};

/* ---- lanes ---- */

static int lane_init(struct lane *l, struct load_run *run, struct rpc_channel *channel, uint64_t seed)
{
    memset(l, 0, sizeof(*l));
    l->run = run;
    l->channel = channel;
    l->rng.state = seed;
    uint32_t slots = run->batch > 0 ? run->batch : 1;
    l->req_ops = calloc(slots, sizeof(*l->req_ops));
    l->op_list = calloc(slots, sizeof(*l->op_list));
    l->req_holds = calloc(slots, sizeof(*l->req_holds));
    l->req_bests = calloc(slots, sizeof(*l->req_bests));
    l->req_refs = calloc(slots, sizeof(*l->req_refs));
    l->seats = calloc((size_t)slots * BENCH_PICK_SEATS_MAX, sizeof(*l->seats));
    l->meta = calloc(slots, sizeof(*l->meta));
    if (l->req_ops == NULL || l->op_list == NULL || l->req_holds == NULL || l->req_bests == NULL || l->req_refs == NULL ||
        l->seats == NULL || l->meta == NULL || live_ring_init(&l->live, slots + 16) != 0)
        return -1;
    for (uint32_t i = 0; i < slots; i++)
        l->op_list[i] = &l->req_ops[i];
    return 0;
}

static void lane_free(struct lane *l)
{
    free(l->req_ops);
    free(l->op_list);
    free(l->req_holds);
    free(l->req_bests);
    free(l->req_refs);
    free(l->seats);
    free(l->meta);
    live_ring_free(&l->live);
    bench_samples_free(&l->samples);
}

static void lane_error(struct lane *l, const char *what, const char *message)
{
    if (atomic_fetch_add_explicit(&l->errors, 1, memory_order_relaxed) == 0)
        snprintf(l->first_error, sizeof(l->first_error), "%.60s: %.95s", what, message);
}

/* Fills op i as a new hold from a fresh pick. */
static void fill_hold(struct lane *l, uint32_t i)
{
    struct bench_pick pick;
    workload_pick(l->run->layout, &l->rng, true, &pick);
    struct op_meta *m = &l->meta[i];
    m->hold = (struct live_hold){.event_id = pick.event_id, .user_id = pick.user_id, .seat_count = pick.count};
    if (pick.best) {
        m->kind = OPK_HOLD_BEST;
        Tiketi__V1__HoldBestRequest *r = &l->req_bests[i];
        tiketi__v1__hold_best_request__init(r);
        r->event_id = pick.event_id;
        r->user_id = pick.user_id;
        r->count = pick.count;
        r->section = -1;
        return;
    }
    m->kind = OPK_HOLD;
    memcpy(m->hold.seats, pick.seats, pick.count * sizeof(uint32_t));
    Tiketi__V1__HoldRequest *r = &l->req_holds[i];
    tiketi__v1__hold_request__init(r);
    r->event_id = pick.event_id;
    r->user_id = pick.user_id;
    r->seats = &l->seats[i * BENCH_PICK_SEATS_MAX];
    memcpy(r->seats, pick.seats, pick.count * sizeof(uint32_t));
    r->n_seats = pick.count;
}

static void fill_release(struct lane *l, uint32_t i, const struct live_hold *hold)
{
    l->meta[i].kind = OPK_RELEASE;
    l->meta[i].hold = *hold;
    Tiketi__V1__HoldRef *r = &l->req_refs[i];
    tiketi__v1__hold_ref__init(r);
    r->event_id = hold->event_id;
    r->user_id = hold->user_id;
    r->hold_id = hold->hold_id;
}

/* A hold the engine granted: remember it for a later release. */
static void hold_granted(struct lane *l, const struct op_meta *m, const Tiketi__V1__HoldReply *reply)
{
    struct live_hold *live = live_ring_push(&l->live);
    if (live == NULL || reply == NULL)
        return; /* cannot happen with the ring's size; the hold would expire on its own */
    *live = (struct live_hold){.event_id = m->hold.event_id, .user_id = m->hold.user_id, .hold_id = reply->hold_id};
    live->seat_count = (uint32_t)(reply->n_seats < TK_SEATS_PER_HOLD_MAX ? reply->n_seats : TK_SEATS_PER_HOLD_MAX);
    memcpy(live->seats, reply->seats, live->seat_count * sizeof(uint32_t));
}

/* The outcome of one op: code as a google.rpc.Code value. True when the engine
 * answered it (granted or refused), false for an error. */
static bool op_outcome(struct lane *l, const struct op_meta *m, uint32_t code, const char *name, const char *message,
                       const Tiketi__V1__HoldReply *hold_reply)
{
    bool hold = m->kind != OPK_RELEASE;
    if (code == GRPC_STATUS_OK) {
        atomic_fetch_add_explicit(&l->ops, 1, memory_order_relaxed);
        if (hold) {
            atomic_fetch_add_explicit(&l->holds, 1, memory_order_relaxed);
            hold_granted(l, m, hold_reply);
        }
        return true;
    }
    if (hold && (code == GRPC_STATUS_ABORTED || code == GRPC_STATUS_RESOURCE_EXHAUSTED)) {
        /* Seat taken (ABORTED), or sold out / per-user cap / holds table full:
         * the engine answered, nothing changed. */
        atomic_fetch_add_explicit(&l->ops, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&l->holds, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(code == GRPC_STATUS_ABORTED ? &l->conflicts : &l->refused, 1,
                                  memory_order_relaxed);
        return true;
    }
    char what[96];
    snprintf(what, sizeof(what), "%s %s", hold ? "hold" : "release", rpc_code_name((grpc_status_code)code));
    lane_error(l, what, name != NULL && name[0] != '\0' ? name : message);
    return false;
}

static void lane_issue(struct lane *l);

/* After a completion: the next call (closed loop), or back to the free lanes. */
static void lane_done(struct lane *l)
{
    struct load_run *run = l->run;
    if (!run->open_loop && !atomic_load_explicit(&run->stop, memory_order_acquire)) {
        l->started_ns = bench_now_ns();
        lane_issue(l);
        return;
    }
    if (run->open_loop) {
        pthread_mutex_lock(&run->free_lock);
        l->next_free = run->free_lanes;
        run->free_lanes = l;
        pthread_mutex_unlock(&run->free_lock);
    }
    atomic_fetch_sub_explicit(&run->in_flight, 1, memory_order_release);
}

/* A call the server answered counts, with its latency; a failed one only as an
 * error (lane_error): the latency of a refused connection says nothing of the
 * daemon, and would flatter the percentiles. */
static void record_call(struct lane *l, bool answered)
{
    if (!answered)
        return;
    atomic_fetch_add_explicit(&l->calls, 1, memory_order_relaxed);
    if (atomic_load_explicit(&l->run->measuring, memory_order_acquire))
        bench_samples_add(&l->samples, bench_now_ns() - l->started_ns);
}

static void on_unary_done(void *ctx, grpc_status_code code, ProtobufCMessage *reply, const struct rpc_error *error)
{
    struct lane *l = ctx;
    TK_ASSERT(l->n_ops == 1);
    const struct op_meta *m = &l->meta[0];
    bool answered = op_outcome(l, m, (uint32_t)code, error->name, error->message,
                               code == GRPC_STATUS_OK && m->kind != OPK_RELEASE ? (const Tiketi__V1__HoldReply *)reply
                                                                                : NULL);
    record_call(l, answered);
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
    lane_done(l);
}

static void on_batch_done(void *ctx, grpc_status_code code, ProtobufCMessage *message, const struct rpc_error *error)
{
    struct lane *l = ctx;
    TK_ASSERT(l->n_ops >= 1 && l->n_ops <= l->run->batch);
    const Tiketi__V1__BatchReply *reply = (const Tiketi__V1__BatchReply *)message;
    record_call(l, code == GRPC_STATUS_OK && reply != NULL);
    if (code != GRPC_STATUS_OK || reply == NULL) {
        char what[64];
        snprintf(what, sizeof(what), "Batch call %s", rpc_code_name(code));
        lane_error(l, what, error->message);
    } else {
        if (reply->n_results != l->n_ops)
            lane_error(l, "Batch", "the reply's result count differs from the request's");
        for (size_t i = 0; i < reply->n_results && i < l->n_ops; i++) {
            const Tiketi__V1__BatchResult *r = reply->results[i];
            op_outcome(l, &l->meta[i], r->code, r->error != NULL ? r->error->code : NULL,
                       r->error != NULL ? r->error->message : "", r->result_case == TIKETI__V1__BATCH_RESULT__RESULT_HOLD
                                                                     ? r->hold
                                                                     : NULL);
        }
    }
    if (message != NULL)
        protobuf_c_message_free_unpacked(message, NULL);
    lane_done(l);
}

static void issue_unary(struct lane *l)
{
    struct load_run *run = l->run;
    struct live_hold hold;
    l->n_ops = 1;
    if (live_ring_pop(&l->live, &hold)) {
        fill_release(l, 0, &hold);
        rpc_unary_async(run->loop, l->channel, "/tiketi.v1.SeatCore/Release", &l->req_refs[0].base,
                        &tiketi__v1__empty__descriptor, &call_options, on_unary_done, l);
        return;
    }
    fill_hold(l, 0);
    if (l->meta[0].kind == OPK_HOLD_BEST)
        rpc_unary_async(run->loop, l->channel, "/tiketi.v1.SeatCore/HoldBestAvailable", &l->req_bests[0].base,
                        &tiketi__v1__hold_reply__descriptor, &call_options, on_unary_done, l);
    else
        rpc_unary_async(run->loop, l->channel, "/tiketi.v1.SeatCore/Hold", &l->req_holds[0].base,
                        &tiketi__v1__hold_reply__descriptor, &call_options, on_unary_done, l);
}

static void issue_batch(struct lane *l)
{
    struct load_run *run = l->run;
    uint32_t n = 0, releases = l->live.count < run->batch / 2 ? l->live.count : run->batch / 2;
    struct live_hold hold;
    while (n < releases && live_ring_pop(&l->live, &hold)) {
        fill_release(l, n, &hold);
        tiketi__v1__batch_op__init(&l->req_ops[n]);
        l->req_ops[n].op_case = TIKETI__V1__BATCH_OP__OP_RELEASE;
        l->req_ops[n].release = &l->req_refs[n];
        n++;
    }
    for (; n < run->batch; n++) {
        fill_hold(l, n);
        tiketi__v1__batch_op__init(&l->req_ops[n]);
        if (l->meta[n].kind == OPK_HOLD_BEST) {
            l->req_ops[n].op_case = TIKETI__V1__BATCH_OP__OP_HOLD_BEST;
            l->req_ops[n].hold_best = &l->req_bests[n];
        } else {
            l->req_ops[n].op_case = TIKETI__V1__BATCH_OP__OP_HOLD;
            l->req_ops[n].hold = &l->req_holds[n];
        }
    }
    l->n_ops = n;
    tiketi__v1__batch_request__init(&l->batch);
    l->batch.n_ops = n;
    l->batch.ops = l->op_list;
    rpc_unary_async(run->loop, l->channel, "/tiketi.v1.SeatCore/Batch", &l->batch.base,
                    &tiketi__v1__batch_reply__descriptor, &call_options, on_batch_done, l);
}

static void lane_issue(struct lane *l)
{
    if (l->run->batch == 0)
        issue_unary(l);
    else
        issue_batch(l);
}

/* ---- a row ---- */

struct row_spec {
    const char *id;
    const char *group;
    char name[56];
    uint32_t batch;    /* 0: one op per call */
    uint32_t depth;    /* closed loop: calls in flight; open loop: lanes */
    double open_rate;  /* > 0: open loop at this many ops/s */
};

struct snapshot {
    uint64_t t_ns;
    uint64_t calls, ops, holds, conflicts, refused, errors;
    double client_cpu, server_cpu, machine_busy;
    struct rpcb_server_figures server;
    bool server_ok;
};

/* The client's counters and the CPU clocks at one instant. The daemon's
 * /metrics are read apart (take_server_figures): over HTTP from a busy daemon
 * that can take longer than a --quick window, so it is read before the
 * window opens and after it closes, never inside it. */
static void take_counters(struct load_run *run, const struct rpcb_daemon *daemon, struct snapshot *s)
{
    memset(s, 0, sizeof(*s));
    for (uint32_t i = 0; i < run->lane_count; i++) {
        struct lane *l = &run->lanes[i];
        s->calls += atomic_load_explicit(&l->calls, memory_order_relaxed);
        s->ops += atomic_load_explicit(&l->ops, memory_order_relaxed);
        s->holds += atomic_load_explicit(&l->holds, memory_order_relaxed);
        s->conflicts += atomic_load_explicit(&l->conflicts, memory_order_relaxed);
        s->refused += atomic_load_explicit(&l->refused, memory_order_relaxed);
        s->errors += atomic_load_explicit(&l->errors, memory_order_relaxed);
    }
    s->client_cpu = bench_cpu_seconds();
    s->server_cpu = bench_process_cpu_seconds(daemon->pid);
    s->machine_busy = bench_machine_busy_seconds();
    s->t_ns = bench_now_ns();
}

static void take_server_figures(const struct rpcb_daemon *daemon, struct snapshot *s)
{
    s->server_ok = rpcb_daemon_figures(daemon, &s->server);
}

static void sleep_until(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000u), .tv_nsec = (long)(t_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

/* Sleeps until t_ns, checking every 20 ms that the daemon still runs: a row
 * against a daemon that died would otherwise spin on failing calls to the end.
 * False (at once) when it died. */
static bool sleep_while_alive(uint64_t t_ns, struct rpcb_daemon *daemon)
{
    for (;;) {
        if (!rpcb_daemon_alive(daemon))
            return false;
        uint64_t now = bench_now_ns();
        if (now >= t_ns)
            return true;
        sleep_until(t_ns - now > 20000000u ? now + 20000000u : t_ns);
    }
}

static struct lane *take_free_lane(struct load_run *run)
{
    pthread_mutex_lock(&run->free_lock);
    struct lane *l = run->free_lanes;
    if (l != NULL)
        run->free_lanes = l->next_free;
    pthread_mutex_unlock(&run->free_lock);
    return l;
}

/* Releases every hold the lanes still have (unmeasured), in Batch calls. */
static void release_leftovers(struct load_run *run, const struct rpcb_daemon *daemon, uint64_t *failed)
{
    static Tiketi__V1__BatchOp ops[RPCB_BATCH_MAX];
    static Tiketi__V1__BatchOp *list[RPCB_BATCH_MAX];
    static Tiketi__V1__HoldRef refs[RPCB_BATCH_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i <= run->lane_count; i++) {
        struct live_hold hold;
        bool more = i < run->lane_count;
        while (more && n < RPCB_BATCH_MAX && live_ring_pop(&run->lanes[i].live, &hold)) {
            tiketi__v1__hold_ref__init(&refs[n]);
            refs[n].event_id = hold.event_id;
            refs[n].user_id = hold.user_id;
            refs[n].hold_id = hold.hold_id;
            tiketi__v1__batch_op__init(&ops[n]);
            ops[n].op_case = TIKETI__V1__BATCH_OP__OP_RELEASE;
            ops[n].release = &refs[n];
            list[n] = &ops[n];
            n++;
        }
        bool flush = n == RPCB_BATCH_MAX || (!more && n > 0);
        if (more && n == RPCB_BATCH_MAX)
            i--; /* this lane may have more */
        if (!flush)
            continue;
        Tiketi__V1__BatchRequest request = TIKETI__V1__BATCH_REQUEST__INIT;
        request.n_ops = n;
        request.ops = list;
        ProtobufCMessage *reply = NULL;
        struct rpc_error error;
        struct rpc_call_options options = {.timeout_ms = 30000};
        grpc_status_code code = rpc_unary(daemon->channel, "/tiketi.v1.SeatCore/Batch", &request.base,
                                          &tiketi__v1__batch_reply__descriptor, NULL, &reply, &options, &error);
        if (code != GRPC_STATUS_OK) {
            *failed += n;
        } else {
            const Tiketi__V1__BatchReply *r = (const Tiketi__V1__BatchReply *)reply;
            for (size_t k = 0; k < r->n_results; k++)
                *failed += r->results[k]->code != 0;
        }
        if (reply != NULL)
            protobuf_c_message_free_unpacked(reply, NULL);
        n = 0;
    }
}

static void row_fill(struct bench_row *row, const struct row_spec *spec, struct load_run *run,
                     const struct snapshot *a, const struct snapshot *b)
{
    double seconds = (double)(b->t_ns - a->t_ns) / 1e9;
    uint64_t ops = b->ops - a->ops, calls = b->calls - a->calls, holds = b->holds - a->holds;
    uint64_t conflicts = b->conflicts - a->conflicts, refused = b->refused - a->refused;
    uint64_t errors = b->errors - a->errors;
    row->ops_per_s = (double)ops / seconds;
    row->cores = (b->client_cpu - a->client_cpu) / seconds;
    struct bench_samples all = {0};
    const char *first_error = NULL;
    for (uint32_t i = 0; i < run->lane_count; i++) {
        bench_samples_merge(&all, &run->lanes[i].samples);
        if (first_error == NULL && run->lanes[i].first_error[0] != '\0')
            first_error = run->lanes[i].first_error;
    }
    bench_samples_sort(&all);
    row->p50_ns = bench_samples_quantile(&all, 0.50);
    row->p90_ns = bench_samples_quantile(&all, 0.90);
    row->p99_ns = bench_samples_quantile(&all, 0.99);
    row->p999_ns = bench_samples_quantile(&all, 0.999);
    bench_row_extra(row, "calls_per_s", (double)calls / seconds);
    bench_row_extra(row, "ops_per_call", spec->batch > 0 ? spec->batch : 1);
    bench_row_extra(row, "latency_samples", (double)all.count);
    double server_cores = a->server_cpu >= 0 && b->server_cpu >= 0 ? (b->server_cpu - a->server_cpu) / seconds : -1;
    bench_row_extra(row, "server_cores", server_cores);
    if (a->machine_busy >= 0 && b->machine_busy >= 0 && server_cores >= 0)
        bench_row_extra(row, "other_cores",
                        (b->machine_busy - a->machine_busy) / seconds - row->cores - server_cores);
    double conflict_pct = holds > 0 ? 100.0 * (double)conflicts / (double)holds : 0;
    double refused_pct = holds > 0 ? 100.0 * (double)refused / (double)holds : 0;
    bench_row_extra(row, "conflict_pct", conflict_pct);
    bench_row_extra(row, "refused_pct", refused_pct);
    bench_row_extra(row, "errors", (double)errors);
    if (spec->open_rate > 0) {
        bench_row_extra(row, "offered_ops_per_s", spec->open_rate);
        bench_row_note(row, "offered %.0f ops/s (%.0f calls/s) on up to %u calls in flight", spec->open_rate,
                       spec->open_rate / spec->batch, spec->depth);
    }
    bench_row_note(row, "conflicts %.1f%% of holds", conflict_pct);
    if (refused > 0)
        bench_row_note(row, "sold out/cap %.1f%%", refused_pct);
    if (a->server_ok && b->server_ok && b->server.wal_batches > a->server.wal_batches) {
        double fsyncs = b->server.wal_batches - a->server.wal_batches;
        double records = b->server.wal_records - a->server.wal_records;
        bench_row_extra(row, "wal_fsyncs_per_s", fsyncs / seconds);
        bench_row_extra(row, "wal_records_per_fsync", records / fsyncs);
        bench_row_note(row, "%.0f fsyncs/s, %.0f recs/fsync", fsyncs / seconds, records / fsyncs);
        double fsync_p50 = rpcb_hist_quantile(&a->server.fsync, &b->server.fsync, 0.50);
        double fsync_p99 = rpcb_hist_quantile(&a->server.fsync, &b->server.fsync, 0.99);
        char x[16], y[16];
        bench_row_extra(row, "fsync_p50_ns", fsync_p50);
        bench_row_extra(row, "fsync_p99_ns", fsync_p99);
        bench_row_note(row, "fsync p50 ~%s p99 ~%s", bench_fmt_ns(x, sizeof(x), fsync_p50),
                       bench_fmt_ns(y, sizeof(y), fsync_p99));
        if (b->server.snapshots > a->server.snapshots)
            bench_row_note(row, "%.0f snapshot(s) written", b->server.snapshots - a->server.snapshots);
    }
    if (a->server_ok && b->server_ok) {
        /* The server's own view of the calls (dispatch to the reply sent): the
         * rest of a call's latency is the client, the transport and queues. */
        const struct rpcb_hist *ha = spec->batch > 0 ? &a->server.batch_calls : &a->server.hold_calls;
        const struct rpcb_hist *hb = spec->batch > 0 ? &b->server.batch_calls : &b->server.hold_calls;
        double server_p50 = rpcb_hist_quantile(ha, hb, 0.50), server_p99 = rpcb_hist_quantile(ha, hb, 0.99);
        if (server_p50 >= 0) {
            char x[16], y[16];
            bench_row_extra(row, "server_p50_ns", server_p50);
            bench_row_extra(row, "server_p99_ns", server_p99);
            bench_row_note(row, "in server p50 ~%s p99 ~%s", bench_fmt_ns(x, sizeof(x), server_p50),
                           bench_fmt_ns(y, sizeof(y), server_p99));
        }
    }
    if (errors > 0)
        bench_row_note(row, "%llu ERRORS (first: %s)", (unsigned long long)errors, first_error ? first_error : "?");
    if (all.dropped > 0)
        bench_row_note(row, "%llu latencies past the sample cap", (unsigned long long)all.dropped);
    bench_samples_free(&all);
}

/* Set when a row's calls never finished: their lanes and callbacks are still
 * live, so no later gRPC row may run (nor the client loop be stopped). */
static bool calls_wedged;

/* The open loop's pacer thread: call k is due at start + k / rate and goes out
 * on a free lane; when none is free it waits, and the wait counts in the call's
 * latency (measured from when it was due). */
struct pacer {
    struct load_run *run;
    uint64_t start_ns, interval_ns;
    _Atomic uint64_t end_ns; /* the window's end: known once the window opened */
    uint64_t late; /* calls that found every lane busy */
};

static void *pacer_main(void *arg)
{
    struct pacer *p = arg;
    struct load_run *run = p->run;
    prctl(PR_SET_TIMERSLACK, 1UL);
    for (uint64_t due = p->start_ns; due < atomic_load_explicit(&p->end_ns, memory_order_acquire);
         due += p->interval_ns) {
        sleep_until(due);
        if (atomic_load_explicit(&run->stop, memory_order_acquire))
            break; /* the row was cut short (the daemon died) */
        struct lane *l = take_free_lane(run);
        if (l == NULL) {
            p->late++;
            while ((l = take_free_lane(run)) == NULL) {
                if (atomic_load_explicit(&run->stop, memory_order_acquire))
                    return NULL;
                bench_sleep_ns(20000);
            }
        }
        l->started_ns = due;
        atomic_fetch_add_explicit(&run->in_flight, 1, memory_order_acq_rel);
        lane_issue(l);
    }
    return NULL;
}

/* Runs one row against daemon; fills and returns it (NULL if the report is full). */
static struct bench_row *run_row(struct bench_report *report, const struct rpcb_options *options,
                                 struct rpcb_daemon *daemon, struct rpc_channel *const *channels,
                                 struct rpc_client_loop *loop, const struct bench_layout *layout,
                                 const struct row_spec *spec)
{
    struct bench_row *row = bench_row_add(report, spec->id, spec->group, spec->name, spec->depth);
    if (row == NULL)
        return NULL;
    if (calls_wedged) {
        bench_row_skip(row, "an earlier row's calls never finished");
        bench_row_progress(row);
        return row;
    }
    if (!rpcb_daemon_alive(daemon)) {
        char why[sizeof(daemon->death) + 32];
        snprintf(why, sizeof(why), "not run: %s", daemon->death);
        bench_row_skip(row, why);
        bench_row_progress(row);
        return row;
    }
    static struct load_run run;
    memset(&run, 0, sizeof(run));
    run.loop = loop;
    run.layout = layout;
    run.batch = spec->batch;
    run.lane_count = spec->depth;
    run.open_loop = spec->open_rate > 0;
    pthread_mutex_init(&run.free_lock, NULL);
    run.lanes = calloc(spec->depth, sizeof(*run.lanes));
    bool ready = run.lanes != NULL;
    for (uint32_t i = 0; ready && i < spec->depth; i++) {
        uint64_t seed = 0x5eedull * (i + 1) + (uint64_t)spec->batch * 7919u + (uint64_t)spec->depth * 131u;
        ready = lane_init(&run.lanes[i], &run, channels[i % options->channels], seed) == 0;
        run.lanes[i].next_free = run.free_lanes;
        run.free_lanes = &run.lanes[i];
    }
    if (!ready) {
        bench_row_skip(row, "out of memory for the lanes");
    } else {
        struct snapshot a, b;
        uint64_t start = bench_now_ns();
        uint64_t window_start = start + (uint64_t)(options->warmup * 1e9);
        uint64_t window_end = window_start + (uint64_t)(options->seconds * 1e9);
        struct pacer pacer = {.run = &run, .start_ns = start, .end_ns = window_end};
        TK_ASSERT(window_start >= start && window_end > window_start);
        pthread_t pacer_thread;
        if (!run.open_loop) {
            atomic_store(&run.in_flight, (int)spec->depth);
            for (uint32_t i = 0; i < spec->depth; i++) {
                run.lanes[i].started_ns = bench_now_ns();
                lane_issue(&run.lanes[i]);
            }
        } else {
            pacer.interval_ns = (uint64_t)(1e9 * spec->batch / spec->open_rate);
            if (pacer.interval_ns == 0)
                pacer.interval_ns = 1;
            if (pthread_create(&pacer_thread, NULL, pacer_main, &pacer) != 0) {
                /* as bench_run_threads: a machine that cannot start a thread cannot run this */
                fprintf(stderr, "rpc-bench: cannot start the pacer thread\n");
                exit(2);
            }
        }
        struct snapshot server_a;
        bool alive = sleep_while_alive(window_start, daemon);
        take_server_figures(daemon, &server_a); /* so the server's window holds the client's */
        take_counters(&run, daemon, &a);
        atomic_store_explicit(&run.measuring, true, memory_order_release);
        a.server = server_a.server;
        a.server_ok = server_a.server_ok;
        /* The window is --seconds from when it opened, however long /metrics took. */
        window_end = a.t_ns + (uint64_t)(options->seconds * 1e9);
        atomic_store_explicit(&pacer.end_ns, window_end, memory_order_release);
        alive = alive && sleep_while_alive(window_end, daemon);
        if (!alive)
            atomic_store_explicit(&run.stop, true, memory_order_release); /* ends the pacer early too */
        if (run.open_loop) {
            pthread_join(pacer_thread, NULL);
            if (pacer.late > 0) {
                bench_row_extra(row, "late_sends", (double)pacer.late);
                bench_row_note(row, "%llu calls waited for a free lane", (unsigned long long)pacer.late);
            }
        }
        take_counters(&run, daemon, &b);
        atomic_store_explicit(&run.measuring, false, memory_order_release);
        atomic_store_explicit(&run.stop, true, memory_order_release);
        take_server_figures(daemon, &b);
        uint64_t drain_deadline = bench_now_ns() + DRAIN_TIMEOUT_NS;
        while (atomic_load_explicit(&run.in_flight, memory_order_acquire) > 0 && bench_now_ns() < drain_deadline)
            bench_sleep_ns(1000000);
        if (atomic_load(&run.in_flight) > 0) {
            /* Cannot free lanes that calls still use: report and leave them. */
            calls_wedged = true;
            bench_row_skip(row, "calls did not finish within 30 s of the window's end");
            bench_row_progress(row);
            return row;
        }
        if (!alive) {
            /* Its figures would be those of a dead server: none, and say why. */
            char why[sizeof(daemon->death) + 32];
            snprintf(why, sizeof(why), "FAILED: during this row %s", daemon->death);
            bench_row_skip(row, why);
        } else {
            row_fill(row, spec, &run, &a, &b);
        }
    }
    if (ready && !row->skipped) {
        uint64_t failed = 0;
        release_leftovers(&run, daemon, &failed);
        if (failed > 0)
            bench_row_note(row, "%llu leftover holds not released", (unsigned long long)failed);
    }
    for (uint32_t i = 0; run.lanes != NULL && i < spec->depth; i++)
        lane_free(&run.lanes[i]);
    free(run.lanes);
    pthread_mutex_destroy(&run.free_lock);
    bench_row_progress(row);
    return row;
}

/* ---- the rows in order ---- */

void rpcb_layout(const struct rpcb_options *options, struct bench_layout *out)
{
    /* The hot on-sale: 1,000 seats (10 rows x 100) wanted by far more holds than
     * it has seats. The spread: arena-sized events of 10,000 seats (100 x 100),
     * so that the thousands of holds a batched row keeps alive occupy a
     * realistic share of them rather than filling every house. */
    *out = (struct bench_layout){.event_count = options->events,
                                 .first_event_id = 1,
                                 .rows = 100,
                                 .seats_per_row = 100,
                                 .users = options->users,
                                 .best_percent = 20,
                                 .hot_percent = options->hot_percent,
                                 .hot_rows = 10};
}

struct grpc_target {
    struct rpcb_daemon daemon;
    struct rpc_channel *channels[16];
    uint32_t channel_count;
    char err[1024];
};

static int target_open(struct grpc_target *t, const struct rpcb_options *options, bool memory,
                       const struct bench_layout *layout)
{
    memset(t, 0, sizeof(*t));
    if (rpcb_daemon_start(&t->daemon, options, memory, t->err, sizeof(t->err)) != 0)
        return -1;
    char err[512];
    if (rpcb_daemon_create_events(&t->daemon, layout, err, sizeof(err)) != 0) {
        if (rpcb_daemon_alive(&t->daemon))
            snprintf(t->err, sizeof(t->err), "%s", err);
        else
            snprintf(t->err, sizeof(t->err), "%.200s: %.800s", err, t->daemon.death);
        rpcb_daemon_stop(&t->daemon);
        return -1;
    }
    /* Distinct channel args make distinct HTTP/2 connections (gRPC shares a
     * subchannel between channels with the same target and args). */
    for (uint32_t i = 0; i < options->channels; i++) {
        struct rpc_channel_options channel_options = {.keepalive_ms = 10000 + i};
        t->channels[i] = rpc_channel_open(t->daemon.target, &channel_options);
    }
    t->channel_count = options->channels;
    return 0;
}

static void target_close(struct grpc_target *t)
{
    for (uint32_t i = 0; i < t->channel_count; i++)
        rpc_channel_close(t->channels[i]);
    rpcb_daemon_stop(&t->daemon);
}

static void skip_row(struct bench_report *report, const char *id, const char *group, const char *name,
                     uint32_t depth, const char *why)
{
    struct bench_row *row = bench_row_add(report, id, group, name, depth);
    if (row != NULL) {
        bench_row_skip(row, why);
        bench_row_progress(row);
    }
}

static void durable_rows(struct bench_report *report, const struct rpcb_options *options,
                         struct rpc_client_loop *loop, const struct bench_layout *layout)
{
    bool unary = rpcb_group_enabled(options, "rpc-unary"), batch = rpcb_group_enabled(options, "rpc-batch");
    bool open = rpcb_group_enabled(options, "rpc-open");
    if (!unary && !batch && !open)
        return;
    static struct grpc_target t;
    if (target_open(&t, options, false, layout) != 0) {
        /* One row stands for all the durable rows, in the first group asked for. */
        skip_row(report, "rpc.durable", unary ? "rpc-unary" : batch ? "rpc-batch" : "rpc-open",
                 "seatcored (durable)", 0, t.err);
        return;
    }
    snprintf(report->machine.wal_backend, sizeof(report->machine.wal_backend), "%s", t.daemon.wal_backend);
    struct row_spec spec;
    for (uint32_t i = 0; unary && i < options->unary_depths.count; i++) {
        char id[48];
        spec = (struct row_spec){.id = id, .group = "rpc-unary", .depth = options->unary_depths.values[i]};
        snprintf(id, sizeof(id), "rpc.unary.c%u", spec.depth);
        snprintf(spec.name, sizeof(spec.name), "one op per call (Hold/Release)");
        run_row(report, options, &t.daemon, t.channels, loop, layout, &spec);
    }
    for (uint32_t s = 0; batch && s < options->batch_sizes.count; s++) {
        for (uint32_t i = 0; i < options->batch_depths.count; i++) {
            char id[48];
            spec = (struct row_spec){.id = id, .group = "rpc-batch", .batch = options->batch_sizes.values[s],
                                     .depth = options->batch_depths.values[i]};
            snprintf(id, sizeof(id), "rpc.batch%u.c%u", spec.batch, spec.depth);
            snprintf(spec.name, sizeof(spec.name), "Batch of %u ops per call", spec.batch);
            run_row(report, options, &t.daemon, t.channels, loop, layout, &spec);
        }
    }
    if (open) {
        const struct bench_row *peak = rpcb_peak_row(report);
        uint32_t batch_size = options->batch_sizes.values[options->batch_sizes.count - 1];
        uint32_t depth = options->batch_depths.values[options->batch_depths.count - 1];
        double rate = options->open_rate;
        if (peak != NULL && peak->ops_per_s > 0) {
            batch_size = (uint32_t)bench_row_extra_get(peak, "ops_per_call", batch_size);
            depth = peak->threads;
            if (rate <= 0)
                rate = peak->ops_per_s * options->open_fraction;
        }
        if (rate <= 0) {
            skip_row(report, "rpc.open", "rpc-open", "Batch, open loop at half of peak", 0,
                     "needs a Batch row without errors (the peak) in the same run, or --open-rate");
        } else {
            uint32_t lanes = depth * 4;
            lanes = lanes < OPEN_LANES_MIN ? OPEN_LANES_MIN : lanes > OPEN_LANES_MAX ? OPEN_LANES_MAX : lanes;
            spec = (struct row_spec){.id = "rpc.open", .group = "rpc-open", .batch = batch_size, .depth = lanes,
                                     .open_rate = rate};
            if (options->open_rate > 0)
                snprintf(spec.name, sizeof(spec.name), "Batch of %u, open loop, fixed rate", batch_size);
            else
                snprintf(spec.name, sizeof(spec.name), "Batch of %u, open loop, %.0f%% of peak", batch_size,
                         options->open_fraction * 100);
            char peak_id[48] = "";
            double peak_ops = peak != NULL ? peak->ops_per_s : -1;
            if (peak != NULL)
                snprintf(peak_id, sizeof(peak_id), "%s", peak->id);
            struct bench_row *row = run_row(report, options, &t.daemon, t.channels, loop, layout, &spec);
            if (row != NULL) {
                snprintf(row->baseline_id, sizeof(row->baseline_id), "%s", peak_id);
                bench_row_extra(row, "peak_ops_per_s", peak_ops);
                bench_row_extra(row, "fixed_rate", options->open_rate > 0);
            }
        }
    }
    target_close(&t);
}

static void memory_row(struct bench_report *report, const struct rpcb_options *options,
                       struct rpc_client_loop *loop, const struct bench_layout *layout)
{
    if (!rpcb_group_enabled(options, "rpc-memory"))
        return;
    /* The peak's shape if the batch rows ran, else the largest listed. */
    uint32_t batch = options->batch_sizes.values[options->batch_sizes.count - 1];
    uint32_t depth = options->batch_depths.values[options->batch_depths.count - 1];
    const struct bench_row *peak = rpcb_peak_row(report);
    if (peak != NULL) {
        batch = (uint32_t)bench_row_extra_get(peak, "ops_per_call", batch);
        depth = peak->threads;
    }
    char id[48];
    struct row_spec spec = {.id = id, .group = "rpc-memory", .batch = batch, .depth = depth};
    snprintf(id, sizeof(id), "rpc.memory.batch%u.c%u", batch, depth);
    snprintf(spec.name, sizeof(spec.name), "Batch of %u, --memory daemon", batch);
    static struct grpc_target t;
    if (target_open(&t, options, true, layout) != 0) {
        skip_row(report, id, "rpc-memory", spec.name, depth, t.err);
        return;
    }
    run_row(report, options, &t.daemon, t.channels, loop, layout, &spec);
    target_close(&t);
}

void rpcb_grpc_rows(struct bench_report *report, const struct rpcb_options *options)
{
    struct bench_layout layout;
    rpcb_layout(options, &layout);
    struct rpc_client_loop *loop = rpc_client_loop_start(options->client_threads);
    durable_rows(report, options, loop, &layout);
    memory_row(report, options, loop, &layout);
    if (!calls_wedged)
        rpc_client_loop_stop(loop);
}
