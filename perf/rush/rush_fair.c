/* rush_fair.c — queue waits and fairness, from the users' own records.
 *
 * Arrival is when a user's join was answered (the ticket is then known; for the
 * socket-only crowd, when the join was sent); admission is when the client
 * learnt it (the "admitted" message, or the join's own answer). The waiting room
 * promises first-come-first-served by ticket, and the feed admits in batches
 * (every 250 ms), so small reorderings inside a batch are expected and the
 * figures allow for them:
 *   spearman_arrival / _ticket  rank correlation of admission order with arrival
 *                               order and with ticket order (1.0 = same order)
 *   overtaken                   users admitted at least 1 s after someone who
 *                               arrived at least 100 ms after them
 *   ticket_inversions           users admitted more than 0.5 s after someone
 *                               holding a later ticket
 *   displacement_p99            |admission rank - arrival rank|, p99, as a share
 *                               of the admitted crowd */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rush.h"
#include "tk_assert.h"

struct entry {
    uint64_t arrival, ticket, admitted;
    uint32_t arrival_rank, admission_rank;
};

static int by_arrival(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

static int by_ticket(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->ticket < y->ticket ? -1 : x->ticket > y->ticket;
}

static int by_admitted(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->admitted < y->admitted ? -1 : x->admitted > y->admitted;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Spearman's rho from two rank arrays (distinct ranks 0..n-1). */
static double spearman(const uint32_t *x, const uint32_t *y, uint32_t n)
{
    if (n < 2)
        return 1.0;
    double d2 = 0;
    for (uint32_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)y[i];
        d2 += d * d;
    }
    double nn = (double)n;
    return 1.0 - 6.0 * d2 / (nn * (nn * nn - 1.0));
}

/* Entries sorted by key order: how many are admitted more than slack after some
 * later entry (one whose key is at least gap further) was admitted. */
static uint64_t count_overtaken(const struct entry *sorted, uint32_t n, bool by_arrival_key, uint64_t gap,
                                uint64_t slack)
{
    uint64_t *suffix_min = malloc(((size_t)n + 1) * sizeof(uint64_t));
    TK_ASSERT(suffix_min != NULL);
    suffix_min[n] = UINT64_MAX;
    for (uint32_t i = n; i-- > 0;)
        suffix_min[i] = sorted[i].admitted < suffix_min[i + 1] ? sorted[i].admitted : suffix_min[i + 1];
    uint64_t count = 0;
    uint32_t j = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t key = by_arrival_key ? sorted[i].arrival : sorted[i].ticket;
        if (j <= i)
            j = i + 1;
        while (j < n && (by_arrival_key ? sorted[j].arrival : sorted[j].ticket) < key + gap)
            j++;
        if (j < n && suffix_min[j] + slack < sorted[i].admitted)
            count++;
    }
    free(suffix_min);
    return count;
}

void rush_fairness_compute(const struct rush_user_record *records, uint32_t count, struct rush_fairness *out,
                           struct hdr_histogram *waits_ms)
{
    memset(out, 0, sizeof(*out));
    struct entry *e = calloc((size_t)count + 1, sizeof(*e));
    TK_ASSERT(e != NULL);
    uint32_t n = 0;
    double waited_s = 0, positions = 0;
    uint64_t now = rush_now_us();
    for (uint32_t i = 0; i < count; i++) {
        const struct rush_user_record *r = &records[i];
        uint64_t arrival = r->join_done_us != 0 ? r->join_done_us : r->join_sent_us;
        if (arrival == 0)
            continue;
        out->joined++;
        positions += r->positions;
        uint64_t until = r->admitted_us != 0 ? r->admitted_us : r->done_us != 0 ? r->done_us : now;
        waited_s += until > arrival ? (double)(until - arrival) / 1e6 : 0;
        if (r->admitted_us == 0) {
            if (r->outcome == USER_WAITING)
                out->waiting_at_end++;
            continue;
        }
        out->admitted++;
        uint64_t wait_us = r->admitted_us > arrival ? r->admitted_us - arrival : 0;
        if (waits_ms != NULL)
            hdr_record(waits_ms, wait_us / 1000u);
        e[n++] = (struct entry){.arrival = arrival, .ticket = r->ticket, .admitted = r->admitted_us};
    }
    out->positions_per_s = waited_s > 0 ? positions / waited_s : 0;
    if (waits_ms != NULL && waits_ms->count > 0) {
        out->wait_p50_s = (double)hdr_quantile(waits_ms, 0.50) / 1e3;
        out->wait_p90_s = (double)hdr_quantile(waits_ms, 0.90) / 1e3;
        out->wait_p99_s = (double)hdr_quantile(waits_ms, 0.99) / 1e3;
        out->wait_max_s = (double)waits_ms->max / 1e3;
    }
    if (n == 0) {
        free(e);
        return;
    }
    uint32_t *arrival_rank = malloc(n * sizeof(uint32_t)), *admission_rank = malloc(n * sizeof(uint32_t));
    uint32_t *ticket_rank = malloc(n * sizeof(uint32_t));
    double *displacement = malloc(n * sizeof(double));
    TK_ASSERT(arrival_rank && admission_rank && ticket_rank && displacement);
    /* admission ranks, carried along as the entries are re-sorted */
    qsort(e, n, sizeof(*e), by_admitted);
    for (uint32_t i = 0; i < n; i++)
        e[i].admission_rank = i;
    qsort(e, n, sizeof(*e), by_ticket);
    for (uint32_t i = 0; i < n; i++) {
        ticket_rank[i] = i;
        admission_rank[i] = e[i].admission_rank;
    }
    if (e[0].ticket != 0) {
        out->spearman_ticket = spearman(ticket_rank, admission_rank, n);
        out->ticket_inversions = count_overtaken(e, n, false, 1, 500000u);
    } else {
        out->spearman_ticket = NAN; /* no tickets known (socket-only joins) */
    }
    qsort(e, n, sizeof(*e), by_arrival);
    for (uint32_t i = 0; i < n; i++) {
        arrival_rank[i] = i;
        admission_rank[i] = e[i].admission_rank;
        displacement[i] = fabs((double)i - (double)e[i].admission_rank) / (double)n;
    }
    out->spearman_arrival = spearman(arrival_rank, admission_rank, n);
    out->overtaken = count_overtaken(e, n, true, 100000u, 1000000u);
    qsort(displacement, n, sizeof(double), by_double);
    out->displacement_p99 = displacement[(uint32_t)((double)(n - 1) * 0.99)];
    free(arrival_rank);
    free(admission_rank);
    free(ticket_rank);
    free(displacement);
    free(e);
}
