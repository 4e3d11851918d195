/* rush_stats.c — the figures of every worker, in one shared mapping.
 *
 * The parent maps it (MAP_SHARED | MAP_ANONYMOUS) before forking, so workers
 * write and the parent reads without copies or messages. Layout:
 *   header | worker stats x W | whole-run histograms W x STEP_COUNT |
 *   per-second histograms W x STEP_COUNT x RUSH_SECONDS_MAX | user records
 * Each region has one writer (its worker); the parent reads counters for
 * progress while workers run (torn reads of a counter cost nothing here) and
 * merges everything after they exited. The per-second histograms are formatted
 * on first use: an untouched second stays a zero page, so the ~20 MB a worker
 * could use cost only what a run's length actually touches. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "rush.h"
#include "tk_assert.h"

struct rush_shared_header {
    uint64_t magic;
    uint32_t workers, users;
    _Atomic uint64_t t0_us;
    _Atomic uint32_t stop;
    uint64_t base_us; /* second 0 of the series */
};

struct rush_shared {
    void *base;
    size_t bytes;
    struct rush_shared_header *header;
    struct rush_worker_stats *workers;
    uint8_t *hdrs;
    uint8_t *series;
    struct rush_user_record *records;
    char *tokens;
    size_t hdr_bytes, series_bytes;
};

#define RUSH_SHARED_MAGIC UINT64_C(0x7275736873686d31) /* "rushshm1" */

static const char *const step_names[STEP_COUNT] = {
    [STEP_LOGIN] = "login",         [STEP_JOIN] = "queue_join",       [STEP_WS_OPEN] = "ws_open",
    [STEP_QUEUE_WAIT] = "queue_wait", [STEP_SEATMAP] = "seat_map",    [STEP_HOLD] = "hold",
    [STEP_RELEASE] = "release",     [STEP_PAY] = "pay",               [STEP_BROWSE_LIST] = "browse_events",
    [STEP_BROWSE_HOLD] = "browse_hold", [STEP_BROWSE_JOIN] = "browse_join", [STEP_STATUS] = "queue_status",
};

const char *rush_step_name(enum rush_step step)
{
    TK_ASSERT((unsigned)step < STEP_COUNT && step_names[step] != NULL);
    return step_names[step];
}

static size_t align64(size_t n)
{
    return (n + 63u) & ~(size_t)63u;
}

struct rush_shared *rush_shared_create(uint32_t workers, uint32_t users)
{
    TK_ASSERT(workers >= 1 && workers <= RUSH_WORKERS_MAX && users <= RUSH_USERS_MAX);
    struct rush_shared *shared = calloc(1, sizeof(*shared));
    TK_ASSERT(shared != NULL);
    shared->hdr_bytes = align64(hdr_bytes(RUSH_PRECISION_BITS));
    shared->series_bytes = align64(hdr_bytes(RUSH_SERIES_PRECISION_BITS));
    size_t header = align64(sizeof(struct rush_shared_header));
    size_t stats = align64(sizeof(struct rush_worker_stats)) * workers;
    size_t hdrs = shared->hdr_bytes * workers * STEP_COUNT;
    size_t series = shared->series_bytes * workers * STEP_COUNT * RUSH_SECONDS_MAX;
    size_t records = align64(sizeof(struct rush_user_record) * (users + 1u));
    size_t tokens = align64((size_t)RUSH_TOKEN_BYTES * (users + 1u));
    shared->bytes = header + stats + hdrs + series + records + tokens;
    shared->base = mmap(NULL, shared->bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    TK_ASSERT(shared->base != MAP_FAILED);
    uint8_t *p = shared->base;
    shared->header = (void *)p;
    shared->workers = (void *)(p + header);
    shared->hdrs = p + header + stats;
    shared->series = shared->hdrs + hdrs;
    shared->records = (void *)(shared->series + series);
    shared->tokens = (char *)shared->records + records;
    shared->header->magic = RUSH_SHARED_MAGIC;
    shared->header->workers = workers;
    shared->header->users = users;
    shared->header->base_us = rush_now_us();
    for (uint32_t w = 0; w < workers; w++)
        for (uint32_t s = 0; s < STEP_COUNT; s++)
            hdr_init(rush_shared_hdr(shared, w, (enum rush_step)s), RUSH_PRECISION_BITS);
    return shared;
}

void rush_shared_destroy(struct rush_shared *shared)
{
    if (shared == NULL)
        return;
    munmap(shared->base, shared->bytes);
    free(shared);
}

struct rush_worker_stats *rush_shared_worker(struct rush_shared *shared, uint32_t worker)
{
    TK_ASSERT(worker < shared->header->workers);
    return (struct rush_worker_stats *)((uint8_t *)shared->workers +
                                        align64(sizeof(struct rush_worker_stats)) * worker);
}

struct hdr_histogram *rush_shared_hdr(struct rush_shared *shared, uint32_t worker, enum rush_step step)
{
    TK_ASSERT(worker < shared->header->workers && (unsigned)step < STEP_COUNT);
    return (struct hdr_histogram *)(shared->hdrs + shared->hdr_bytes * ((size_t)worker * STEP_COUNT + step));
}

struct hdr_histogram *rush_shared_series(struct rush_shared *shared, uint32_t worker, enum rush_step step,
                                         uint32_t second)
{
    TK_ASSERT(worker < shared->header->workers && (unsigned)step < STEP_COUNT && second < RUSH_SECONDS_MAX);
    size_t index = ((size_t)worker * STEP_COUNT + step) * RUSH_SECONDS_MAX + second;
    return (struct hdr_histogram *)(shared->series + shared->series_bytes * index);
}

struct rush_user_record *rush_shared_users(struct rush_shared *shared)
{
    return shared->records;
}

char *rush_shared_token(struct rush_shared *shared, uint32_t user)
{
    TK_ASSERT(user < shared->header->users);
    return shared->tokens + (size_t)RUSH_TOKEN_BYTES * user;
}

uint32_t rush_tokens_load(struct rush_shared *shared, const char *path, uint32_t max_age_s)
{
    struct stat st;
    if (path == NULL || stat(path, &st) != 0 || time(NULL) - st.st_mtime > (time_t)max_age_s)
        return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    uint32_t loaded = 0, index;
    static char token[RUSH_TOKEN_BYTES + 2];
    while (fscanf(f, "%u %641s", &index, token) == 2) {
        if (index < shared->header->users && strlen(token) < RUSH_TOKEN_BYTES) {
            memcpy(rush_shared_token(shared, index), token, strlen(token) + 1);
            loaded++;
        }
    }
    fclose(f);
    return loaded;
}

int rush_tokens_save(struct rush_shared *shared, const char *path)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    for (uint32_t i = 0; i < shared->header->users; i++) {
        const char *token = rush_shared_token(shared, i);
        if (token[0] != '\0')
            fprintf(f, "%u %s\n", i, token);
    }
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

uint32_t rush_shared_worker_count(const struct rush_shared *shared)
{
    return shared->header->workers;
}

uint32_t rush_shared_user_count(const struct rush_shared *shared)
{
    return shared->header->users;
}

void rush_shared_set_t0(struct rush_shared *shared, uint64_t t0_us)
{
    atomic_store_explicit(&shared->header->t0_us, t0_us, memory_order_release);
}

uint64_t rush_shared_t0(const struct rush_shared *shared)
{
    return atomic_load_explicit(&shared->header->t0_us, memory_order_acquire);
}

void rush_shared_request_stop(struct rush_shared *shared)
{
    atomic_store_explicit(&shared->header->stop, 1, memory_order_release);
}

bool rush_shared_stop_requested(const struct rush_shared *shared)
{
    return atomic_load_explicit(&shared->header->stop, memory_order_acquire) != 0;
}

uint32_t rush_shared_second(const struct rush_shared *shared, uint64_t now_us)
{
    uint64_t base = shared->header->base_us;
    uint64_t s = now_us > base ? (now_us - base) / 1000000u : 0;
    return s < RUSH_SECONDS_MAX ? (uint32_t)s : RUSH_SECONDS_MAX - 1u;
}

void rush_stats_record(struct rush_shared *shared, uint32_t worker, enum rush_step step, enum rush_outcome outcome,
                       uint64_t latency_us, uint64_t now_us, bool whole_run)
{
    struct rush_worker_stats *stats = rush_shared_worker(shared, worker);
    uint32_t second = rush_shared_second(shared, now_us);
    switch (outcome) {
    case OUTCOME_OK:
        stats->ok[step]++;
        stats->second_ok[step][second]++;
        break;
    case OUTCOME_REFUSED:
        stats->refused[step]++;
        stats->second_refused[step][second]++;
        break;
    case OUTCOME_ERROR:
        stats->errors[step]++;
        stats->second_errors[step][second]++;
        return; /* a transport failure has no latency worth plotting */
    }
    if (whole_run)
        hdr_record(rush_shared_hdr(shared, worker, step), latency_us);
    struct hdr_histogram *series = rush_shared_series(shared, worker, step, second);
    if (series->precision_bits == 0)
        hdr_init(series, RUSH_SERIES_PRECISION_BITS);
    hdr_record(series, latency_us);
}

void rush_stats_error(struct rush_shared *shared, uint32_t worker, enum rush_step step, uint16_t status,
                      const char *code, bool expected)
{
    struct rush_worker_stats *stats = rush_shared_worker(shared, worker);
    const char *c = code != NULL ? code : "";
    for (uint32_t i = 0; i < stats->error_kinds; i++) {
        struct rush_error_kind *k = &stats->errors_by_code[i];
        if (k->step == step && k->status == status && strcmp(k->code, c) == 0) {
            k->count++;
            return;
        }
    }
    if (stats->error_kinds == RUSH_ERROR_KINDS_MAX) {
        stats->error_kinds_dropped++;
        return;
    }
    struct rush_error_kind *k = &stats->errors_by_code[stats->error_kinds++];
    k->step = (uint8_t)step;
    k->status = status;
    k->expected = expected;
    snprintf(k->code, sizeof(k->code), "%s", c);
    k->count = 1;
}

/* ---- merging ---- */

static void merge_errors(struct rush_totals *t, const struct rush_worker_stats *w)
{
    for (uint32_t i = 0; i < w->error_kinds; i++) {
        const struct rush_error_kind *k = &w->errors_by_code[i];
        uint32_t j = 0;
        for (; j < t->error_kinds; j++) {
            struct rush_error_kind *m = &t->errors_by_code[j];
            if (m->step == k->step && m->status == k->status && strcmp(m->code, k->code) == 0) {
                m->count += k->count;
                break;
            }
        }
        if (j == t->error_kinds && t->error_kinds < sizeof(t->errors_by_code) / sizeof(t->errors_by_code[0]))
            t->errors_by_code[t->error_kinds++] = *k;
    }
}

static void merge_worker_counts(struct rush_totals *t, const struct rush_worker_stats *w)
{
    for (uint32_t s = 0; s < STEP_COUNT; s++) {
        t->ok[s] += w->ok[s];
        t->refused[s] += w->refused[s];
        t->errors[s] += w->errors[s];
        for (uint32_t i = 0; i < t->seconds; i++) {
            t->second_ok[s][i] += w->second_ok[s][i];
            t->second_all[s][i] += w->second_ok[s][i] + w->second_refused[s][i] + w->second_errors[s][i];
        }
    }
    t->ws_open_max += atomic_load(&w->ws_open_max);
    t->ws_messages += atomic_load(&w->ws_messages);
    t->ws_positions += atomic_load(&w->ws_positions);
    t->ws_admitted += atomic_load(&w->ws_admitted);
    t->ws_seat_deltas += atomic_load(&w->ws_seat_deltas);
    t->ws_closed_by_server += atomic_load(&w->ws_closed_by_server);
    t->ws_ping += w->ws_ping;
    if (w->ws_position_gap_max_us > t->ws_position_gap_max_us)
        t->ws_position_gap_max_us = w->ws_position_gap_max_us;
    t->connects += w->connects;
    t->connect_errors += w->connect_errors;
    t->resets += w->resets;
    t->http_responses += w->http_responses;
    t->bytes_in += w->bytes_in;
    t->bytes_out += w->bytes_out;
    t->requests_late += w->requests_late;
    t->worker_cpu_seconds += w->cpu_seconds;
    if (t->first_error[0] == '\0' && w->first_error[0] != '\0')
        snprintf(t->first_error, sizeof(t->first_error), "%s", w->first_error);
    merge_errors(t, w);
}

static void merge_series_quantiles(struct rush_shared *shared, struct rush_totals *t, void *scratch)
{
    uint32_t workers = shared->header->workers;
    for (uint32_t s = 0; s < STEP_COUNT; s++) {
        for (uint32_t i = 0; i < t->seconds; i++) {
            struct hdr_histogram *merged = hdr_init(scratch, RUSH_SERIES_PRECISION_BITS);
            for (uint32_t w = 0; w < workers; w++) {
                struct hdr_histogram *h = rush_shared_series(shared, w, (enum rush_step)s, i);
                if (h->precision_bits != 0)
                    hdr_merge(merged, h);
            }
            t->second_p50[s][i] = hdr_quantile(merged, 0.50);
            t->second_p99[s][i] = hdr_quantile(merged, 0.99);
        }
    }
}

void rush_totals_merge(struct rush_shared *shared, uint32_t seconds, struct rush_totals *t)
{
    memset(t, 0, sizeof(*t));
    t->seconds = seconds < RUSH_SECONDS_MAX ? seconds : RUSH_SECONDS_MAX;
    for (uint32_t s = 0; s < STEP_COUNT; s++) {
        t->second_ok[s] = calloc(t->seconds + 1, sizeof(uint32_t));
        t->second_all[s] = calloc(t->seconds + 1, sizeof(uint32_t));
        t->second_p50[s] = calloc(t->seconds + 1, sizeof(uint64_t));
        t->second_p99[s] = calloc(t->seconds + 1, sizeof(uint64_t));
        t->hdr[s] = hdr_init(malloc(hdr_bytes(RUSH_PRECISION_BITS)), RUSH_PRECISION_BITS);
        TK_ASSERT(t->second_ok[s] && t->second_all[s] && t->second_p50[s] && t->second_p99[s] && t->hdr[s]);
    }
    uint32_t workers = shared->header->workers;
    for (uint32_t w = 0; w < workers; w++) {
        merge_worker_counts(t, rush_shared_worker(shared, w));
        for (uint32_t s = 0; s < STEP_COUNT; s++)
            hdr_merge(t->hdr[s], rush_shared_hdr(shared, w, (enum rush_step)s));
    }
    void *scratch = malloc(hdr_bytes(RUSH_SERIES_PRECISION_BITS));
    TK_ASSERT(scratch != NULL);
    merge_series_quantiles(shared, t, scratch);
    free(scratch);
}

void rush_totals_free(struct rush_totals *t)
{
    for (uint32_t s = 0; s < STEP_COUNT; s++) {
        free(t->second_ok[s]);
        free(t->second_all[s]);
        free(t->second_p50[s]);
        free(t->second_p99[s]);
        free(t->hdr[s]);
    }
    memset(t, 0, sizeof(*t));
}

double rush_totals_rate(const struct rush_totals *t, enum rush_step step, uint32_t from_s, uint32_t to_s, bool ok_only)
{
    if (to_s > t->seconds)
        to_s = t->seconds;
    if (to_s <= from_s)
        return 0;
    uint64_t sum = 0;
    for (uint32_t i = from_s; i < to_s; i++)
        sum += ok_only ? t->second_ok[step][i] : t->second_all[step][i];
    return (double)sum / (double)(to_s - from_s);
}
