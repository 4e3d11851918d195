/* rush_conf.c — scenario files (perf/scenarios/, one .conf per scenario).
 *
 * A scenario is `key = value` lines (# comments). Every key has a default here,
 * so a file says only what makes its scenario; `quick.KEY = value` lines apply
 * with --quick (a smaller run of the same shape), and --set KEY=VALUE on the
 * command line wins over both. Unknown keys are errors (a typo must not pass
 * silently as a default). The key table below is the reference; perf/README.md
 * lists it too. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rush.h"
#include "tk_assert.h"

#define LINE_BYTES_MAX 1024u
#define LINES_MAX 512u

enum key_type { K_U32, K_DOUBLE, K_BOOL, K_STRING, K_MODE, K_SECTIONS };

struct key {
    const char *name;
    enum key_type type;
    size_t offset;
    double min, max;
    const char *help;
};

#define U32(field, lo, hi, text) {#field, K_U32, offsetof(struct rush_config, field), lo, hi, text}
#define DBL(field, lo, hi, text) {#field, K_DOUBLE, offsetof(struct rush_config, field), lo, hi, text}
#define BOOL(field, text) {#field, K_BOOL, offsetof(struct rush_config, field), 0, 1, text}

static const struct key keys[] = {
    {"name", K_STRING, offsetof(struct rush_config, name), 0, 0, "scenario name (reports)"},
    {"mode", K_MODE, offsetof(struct rush_config, mode), 0, 0, "rush | holds | waiting"},
    U32(users, 1, RUSH_USERS_MAX, "users"),
    U32(workers, 1, RUSH_WORKERS_MAX, "load generator processes"),
    U32(http_pool, 1, RUSH_HTTP_POOL_MAX, "keep-alive connections per worker"),
    U32(login_concurrency, 1, 4096, "logins in flight per worker"),
    U32(seed, 0, 4294967295.0, "random seed (0: from the clock)"),
    U32(events, 1, RUSH_EVENTS_MAX, "events (holds mode spreads over them)"),
    {"sections", K_SECTIONS, offsetof(struct rush_config, sections), 0, 0, "NAME:ROWSxSEATS:PRICE_CENTS, ..."},
    BOOL(queue_enabled, "the rush event has a waiting room"),
    U32(admit_per_s, 1, 100000, "admissions per second"),
    U32(max_active, 1, 1000000, "admitted users at once"),
    U32(hold_ttl_s, 1, 3600, "hold lifetime"),
    U32(max_seats_per_user, 1, 100, "per-user seat cap"),
    U32(burst_ms, 0, 600000, "joins spread over this after T0"),
    U32(duration_s, 1, RUSH_SECONDS_MAX - 60, "run length after T0 (holds: the window)"),
    U32(warmup_s, 0, 600, "holds: unmeasured lead-in"),
    U32(drain_s, 0, 600, "after the run: answers still awaited"),
    U32(seats_min, 1, RUSH_HOLD_SEATS_MAX, "seats per hold, at least"),
    U32(seats_max, 1, RUSH_HOLD_SEATS_MAX, "seats per hold, at most"),
    U32(best_pct, 0, 100, "holds asking for best-available"),
    U32(seatmap_pct, 0, 100, "admitted users who load the seat map"),
    U32(choose_ms_min, 0, 600000, "admitted -> first hold"),
    U32(choose_ms_max, 0, 600000, ""),
    U32(retry_ms_min, 0, 600000, "conflict -> next try"),
    U32(retry_ms_max, 0, 600000, ""),
    U32(pay_ms_min, 0, 3600000, "hold -> payment"),
    U32(pay_ms_max, 0, 3600000, ""),
    U32(hold_attempts, 1, 100, "tries before giving up"),
    U32(decline_pct, 0, 100, "payments with a declined card"),
    U32(abandon_pct, 0, 100, "holds left to expire"),
    U32(release_pct, 0, 100, "holds released by the user"),
    U32(front_bias_pct, 0, 100, "buyers who want the first section's front rows"),
    BOOL(join_post, "POST /queue before opening the WebSocket"),
    DBL(browse_rate, 0, 1000000, "steady browse requests per second (all workers)"),
    U32(browse_users, 0, RUSH_USERS_MAX, "users of the browse traffic (taken from users)"),
    U32(mix_events_pct, 0, 100, "browse mix: GET /events"),
    U32(mix_hold_pct, 0, 100, "browse mix: hold"),
    U32(mix_join_pct, 0, 100, "browse mix: queue join"),
    U32(browse_capacity_rows, 1, 1000, "the browse event: rows of 100 seats"),
    U32(lanes, 1, RUSH_FDS_PER_WORKER_MAX, "holds: connections (closed loop), all workers"),
    U32(live_per_lane, 0, 1024, "holds: live holds per lane before releasing the oldest (0: never release)"),
    U32(think_ms, 0, 600000, "holds: pause between a lane's requests"),
    DBL(holds_rate, 0, 10000000, "holds: open loop, requests due per second over all workers (0: closed loop)"),
    U32(requests_per_connection, 0, 1000000, "a connection closes after this many answers (next: another address)"),
    U32(ws_hold_s, 0, 3600, "waiting: keep the sockets this long after the last opened"),
    DBL(target_holds_per_s, 0, 1e9, "target: holds/s end-to-end"),
    DBL(target_p99_ms, 0, 1e6, "target: hold p99"),
    DBL(target_ratio, 0, 1e6, "target: core / baseline"),
    U32(target_ws, 0, RUSH_USERS_MAX, "target: waiting WebSockets"),
};
#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

static void defaults(struct rush_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "rush");
    c->mode = RUSH_MODE_RUSH;
    c->users = 50000;
    c->workers = 4;
    c->http_pool = 256;
    c->login_concurrency = 128;
    c->events = 1;
    c->section_count = 3;
    c->sections[0] = (struct rush_section){.name = "A", .rows = 20, .seats_per_row = 100, .price_cents = 15000};
    c->sections[1] = (struct rush_section){.name = "B", .rows = 30, .seats_per_row = 100, .price_cents = 9000};
    c->sections[2] = (struct rush_section){.name = "C", .rows = 50, .seats_per_row = 100, .price_cents = 5000};
    c->queue_enabled = true;
    c->admit_per_s = 1000;
    c->max_active = 5000;
    c->hold_ttl_s = 120;
    c->max_seats_per_user = 8;
    c->burst_ms = 2000;
    c->duration_s = 90;
    c->warmup_s = 2;
    c->drain_s = 10;
    c->seats_min = 1;
    c->seats_max = 4;
    c->best_pct = 30;
    c->seatmap_pct = 20;
    c->choose_ms_min = 1000, c->choose_ms_max = 5000;
    c->retry_ms_min = 300, c->retry_ms_max = 1500;
    c->pay_ms_min = 2000, c->pay_ms_max = 8000;
    c->hold_attempts = 4;
    c->decline_pct = 10;
    c->abandon_pct = 5;
    c->release_pct = 5;
    c->front_bias_pct = 60;
    c->join_post = true;
    c->browse_rate = 200;
    c->browse_users = 2000;
    c->mix_events_pct = 60, c->mix_hold_pct = 30, c->mix_join_pct = 10;
    c->browse_capacity_rows = 200;
    c->lanes = 256;
    c->live_per_lane = 2;
    c->think_ms = 0;
    c->ws_hold_s = 20;
    c->target_holds_per_s = 10000;
    c->target_p99_ms = 50;
    c->target_ratio = 10;
    c->target_ws = 100000;
}

const char *rush_mode_name(enum rush_mode mode)
{
    switch (mode) {
    case RUSH_MODE_RUSH:
        return "rush";
    case RUSH_MODE_HOLDS:
        return "holds";
    case RUSH_MODE_WAITING:
        return "waiting";
    }
    return "?";
}

/* "A:20x100:15000, B:30x100:9000" */
static int parse_sections(struct rush_config *c, const char *value, char *err, size_t err_len)
{
    char text[LINE_BYTES_MAX];
    snprintf(text, sizeof(text), "%s", value);
    uint32_t count = 0;
    char *save = NULL;
    for (char *item = strtok_r(text, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*item))
            item++;
        if (count == RUSH_SECTIONS_MAX) {
            snprintf(err, err_len, "sections: at most %u", RUSH_SECTIONS_MAX);
            return -1;
        }
        struct rush_section *s = &c->sections[count];
        memset(s, 0, sizeof(*s));
        unsigned long long price = 0;
        unsigned rows = 0, seats = 0;
        char name[32];
        if (sscanf(item, "%31[^:]:%ux%u:%llu", name, &rows, &seats, &price) != 4 || rows < 1 || rows > 1000 ||
            seats < 1 || seats > 1000 || price > 100000000ull) {
            snprintf(err, err_len, "sections: '%s' is not NAME:ROWSxSEATS:PRICE_CENTS (rows, seats 1..1000)", item);
            return -1;
        }
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->rows = rows;
        s->seats_per_row = seats;
        s->price_cents = price;
        count++;
    }
    if (count == 0) {
        snprintf(err, err_len, "sections: none given");
        return -1;
    }
    c->section_count = count;
    return 0;
}

int rush_config_set(struct rush_config *c, const char *key, const char *value, char *err, size_t err_len)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct key *k = &keys[i];
        if (strcmp(k->name, key) != 0)
            continue;
        void *field = (char *)c + k->offset;
        char *stop = NULL;
        errno = 0;
        switch (k->type) {
        case K_U32:
        case K_DOUBLE: {
            double v = strtod(value, &stop);
            if (stop == value || *stop != '\0' || errno != 0 || v < k->min || v > k->max ||
                (k->type == K_U32 && v != (double)(uint64_t)v)) {
                snprintf(err, err_len, "%s: '%s' is not a number in [%g, %g]", key, value, k->min, k->max);
                return -1;
            }
            if (k->type == K_U32)
                *(uint32_t *)field = (uint32_t)v;
            else
                *(double *)field = v;
            return 0;
        }
        case K_BOOL:
            if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0)
                *(bool *)field = true;
            else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 || strcmp(value, "no") == 0)
                *(bool *)field = false;
            else {
                snprintf(err, err_len, "%s: '%s' is not true or false", key, value);
                return -1;
            }
            return 0;
        case K_STRING:
            snprintf(c->name, sizeof(c->name), "%s", value);
            return 0;
        case K_MODE:
            if (strcmp(value, "rush") == 0)
                c->mode = RUSH_MODE_RUSH;
            else if (strcmp(value, "holds") == 0)
                c->mode = RUSH_MODE_HOLDS;
            else if (strcmp(value, "waiting") == 0)
                c->mode = RUSH_MODE_WAITING;
            else {
                snprintf(err, err_len, "mode: '%s' is not rush, holds or waiting", value);
                return -1;
            }
            return 0;
        case K_SECTIONS:
            return parse_sections(c, value, err, err_len);
        }
    }
    snprintf(err, err_len, "unknown key '%s' (perf/README.md lists the scenario keys)", key);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Applies the file's lines; quick_pass selects the quick.* lines (or the others). */
static int apply_file(struct rush_config *c, FILE *f, const char *path, bool quick_pass, char *err, size_t err_len)
{
    char line[LINE_BYTES_MAX];
    uint32_t number = 0;
    rewind(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (++number > LINES_MAX) {
            snprintf(err, err_len, "%s: more than %u lines", path, LINES_MAX);
            return -1;
        }
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        char *text = trim(line);
        if (*text == '\0')
            continue;
        char *eq = strchr(text, '=');
        if (eq == NULL) {
            snprintf(err, err_len, "%s:%u: expected key = value", path, number);
            return -1;
        }
        *eq = '\0';
        char *key = trim(text), *value = trim(eq + 1);
        bool is_quick = strncmp(key, "quick.", 6) == 0;
        if (is_quick != quick_pass)
            continue;
        char why[256];
        if (rush_config_set(c, is_quick ? key + 6 : key, value, why, sizeof(why)) != 0) {
            snprintf(err, err_len, "%s:%u: %s", path, number, why);
            return -1;
        }
    }
    return 0;
}

int rush_config_load(struct rush_config *c, const char *path, bool quick, char *const *overrides,
                     uint32_t override_count, char *err, size_t err_len)
{
    defaults(c);
    if (path != NULL) {
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
            return -1;
        }
        int rc = apply_file(c, f, path, false, err, err_len);
        if (rc == 0 && quick)
            rc = apply_file(c, f, path, true, err, err_len);
        fclose(f);
        if (rc != 0)
            return -1;
    }
    for (uint32_t i = 0; i < override_count; i++) {
        char text[LINE_BYTES_MAX];
        snprintf(text, sizeof(text), "%s", overrides[i]);
        char *eq = strchr(text, '=');
        if (eq == NULL) {
            snprintf(err, err_len, "--set %s: expected KEY=VALUE", overrides[i]);
            return -1;
        }
        *eq = '\0';
        if (rush_config_set(c, trim(text), trim(eq + 1), err, err_len) != 0)
            return -1;
    }
    return rush_config_finish(c, err, err_len);
}

int rush_config_finish(struct rush_config *c, char *err, size_t err_len)
{
    uint32_t first = 0;
    for (uint32_t i = 0; i < c->section_count; i++) {
        c->sections[i].first_seat = first;
        first += c->sections[i].rows * c->sections[i].seats_per_row;
    }
    c->capacity = first;
    const char *why = NULL;
    if (c->capacity == 0 || c->capacity > 200000)
        why = "the event's capacity (sections) must be 1..200,000 seats";
    else if (c->seats_min > c->seats_max)
        why = "seats_min > seats_max";
    else if (c->choose_ms_min > c->choose_ms_max || c->retry_ms_min > c->retry_ms_max || c->pay_ms_min > c->pay_ms_max)
        why = "a *_ms_min is above its *_ms_max";
    else if (c->decline_pct + c->abandon_pct + c->release_pct > 100)
        why = "decline_pct + abandon_pct + release_pct > 100";
    else if (c->browse_rate > 0 && c->mix_events_pct + c->mix_hold_pct + c->mix_join_pct != 100)
        why = "the browse mix must add up to 100";
    else if (c->mode != RUSH_MODE_HOLDS && c->browse_users >= c->users && c->browse_rate > 0)
        why = "browse_users must leave users for the rush";
    else if (c->mode == RUSH_MODE_HOLDS && c->users < c->lanes)
        why = "holds: at least one user per lane";
    else if (c->workers > c->users)
        why = "more workers than users";
    if (why != NULL) {
        snprintf(err, err_len, "%s", why);
        return -1;
    }
    if (c->seed == 0)
        c->seed = (uint32_t)rush_now_us();
    return 0;
}

void rush_config_print(FILE *out, const struct rush_config *c)
{
    fprintf(out, "scenario %s (mode %s): %u users, %u workers, event %u seats in %u sections", c->name,
            rush_mode_name(c->mode), c->users, c->workers, c->capacity, c->section_count);
    if (c->mode == RUSH_MODE_HOLDS)
        fprintf(out, " x %u events; %u lanes, %u live holds per lane, %u%% best-available, window %u s\n", c->events,
                c->lanes, c->live_per_lane, c->best_pct, c->duration_s);
    else
        fprintf(out, "; queue %s at %u/s (max active %u), burst %u ms, browse %.0f req/s, %u s\n",
                c->queue_enabled ? "on" : "off", c->admit_per_s, c->max_active, c->burst_ms, c->browse_rate,
                c->duration_s);
}
