/* rush.h — the load generator that plays a ticket-open rush against the edge
 * (perf/rush/). Everything the parts share: limits, the scenario, the HTTP and
 * WebSocket client on epoll, per-process statistics in shared memory, the
 * scenarios (rush, holds, waiting), the audit and the report.
 *
 * Shape: the parent process parses the scenario, prepares (users in PostgreSQL,
 * the events through the admin API), then forks `workers` processes. Each worker
 * owns a slice of the users and one epoll loop (one thread): its own HTTP/1.1
 * keep-alive connections and WebSockets, each bound to its own 127.x.y.z source
 * address. Processes rather than threads because this sandbox caps a process at
 * 20,000 file descriptors (RLIMIT_NOFILE hard limit, no CAP_SYS_RESOURCE), so
 * 100,000 WebSockets need at least six processes. Workers write their figures
 * into a shared mapping (one region each, one writer); the parent prints
 * progress from it every second and merges it at the end, then audits and
 * reports. */
#ifndef RUSH_H
#define RUSH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "bench_common.h"
#include "hdr_histogram.h"

/* ---- limits (every queue and table is bounded) ---- */

#define RUSH_WORKERS_MAX 16u
#define RUSH_USERS_MAX 1000000u
#define RUSH_FDS_PER_WORKER_MAX 19500u /* under the sandbox's 20,000 */
#define RUSH_HTTP_POOL_MAX 4096u       /* keep-alive connections per worker */
#define RUSH_SECTIONS_MAX 16u
#define RUSH_EVENTS_MAX 64u
#define RUSH_HOLD_SEATS_MAX 8u
#define RUSH_TOKEN_BYTES 640u           /* an access token (the edge refuses > 4096; ours are ~400) */
#define RUSH_ADMISSION_BYTES 256u
#define RUSH_ID_BYTES 72u               /* reservation ids, event ids */
#define RUSH_REQUEST_BYTES_MAX 3072u    /* one request, head and body */
#define RUSH_HEAD_BYTES_MAX 16384u      /* response head */
#define RUSH_BODY_BYTES_MAX (16u << 20) /* response body (a 200,000-seat map is ~17 MB of JSON) */
#define RUSH_WS_MESSAGE_BYTES_MAX (256u << 10)
#define RUSH_SECONDS_MAX 1200u          /* time series length */
#define RUSH_ERROR_KINDS_MAX 96u        /* distinct (step, status, code) per worker */
#define RUSH_CODE_BYTES 40u
#define RUSH_PRECISION_BITS 8u          /* whole-run histograms: 0.8% */
#define RUSH_SERIES_PRECISION_BITS 4u   /* per-second histograms: 12.5% */

/* ---- time ---- */

uint64_t rush_now_us(void); /* CLOCK_MONOTONIC, comparable across processes */

/* ---- the scenario (rush_conf.c) ---- */

enum rush_mode { RUSH_MODE_RUSH = 0, RUSH_MODE_HOLDS, RUSH_MODE_WAITING };

struct rush_section {
    char name[32];
    uint32_t rows, seats_per_row;
    uint64_t price_cents;
    uint32_t first_seat; /* engine seat number of its first seat (derived) */
};

struct rush_config {
    char name[64];
    enum rush_mode mode;
    uint32_t users;             /* rush / waiting: the crowd; holds: users the lanes cycle through */
    uint32_t workers;           /* processes */
    uint32_t http_pool;         /* keep-alive connections per worker */
    uint32_t login_concurrency; /* logins in flight per worker */
    uint32_t seed;
    /* the event(s) */
    uint32_t events;
    struct rush_section sections[RUSH_SECTIONS_MAX];
    uint32_t section_count;
    uint32_t capacity; /* derived */
    bool queue_enabled;
    uint32_t admit_per_s, max_active, hold_ttl_s, max_seats_per_user;
    /* timing */
    uint32_t burst_ms;   /* joins spread over this after T0 */
    uint32_t duration_s; /* after T0 (holds: the measured window) */
    uint32_t warmup_s;   /* holds: unmeasured lead-in */
    uint32_t drain_s;    /* after the window: requests in flight finish */
    /* a buyer */
    uint32_t seats_min, seats_max, best_pct, seatmap_pct;
    uint32_t choose_ms_min, choose_ms_max; /* admitted -> hold (looking at the map) */
    uint32_t retry_ms_min, retry_ms_max;   /* a conflict -> the next try */
    uint32_t pay_ms_min, pay_ms_max;       /* hold -> payment (typing the card) */
    uint32_t hold_attempts;                /* tries before giving up */
    uint32_t decline_pct, abandon_pct, release_pct;
    uint32_t front_bias_pct; /* share of buyers who want the front rows of the first section */
    bool join_post;          /* POST /queue before opening the WebSocket */
    /* browse traffic (open loop) */
    double browse_rate;
    uint32_t browse_users;
    uint32_t mix_events_pct, mix_hold_pct, mix_join_pct;
    uint32_t browse_capacity_rows; /* the browse event: rows x 100 seats */
    /* holds mode */
    uint32_t lanes;         /* connections, each one request at a time (closed loop) */
    uint32_t live_per_lane; /* holds a lane keeps before releasing its oldest */
    uint32_t think_ms;
    double holds_rate; /* open loop: holds+releases due per second (all workers); 0: closed loop */
    uint32_t requests_per_connection; /* a connection closes after this many (new source address); 0: never */
    /* waiting mode */
    uint32_t ws_hold_s; /* keep every socket open this long after the last one opened */
    /* targets */
    double target_holds_per_s, target_p99_ms, target_ratio;
    uint32_t target_ws;
};

/* Defaults, then the file, then overrides ("key=value"); quick applies the
 * file's quick.* keys. 0 or -1 with err. */
int rush_config_load(struct rush_config *config, const char *path, bool quick, char *const *overrides,
                     uint32_t override_count, char *err, size_t err_len);
int rush_config_set(struct rush_config *config, const char *key, const char *value, char *err, size_t err_len);
/* Derived fields (capacity, first seats) and cross-field checks. */
int rush_config_finish(struct rush_config *config, char *err, size_t err_len);
void rush_config_print(FILE *out, const struct rush_config *config);
const char *rush_mode_name(enum rush_mode mode);

/* ---- statistics (rush_stats.c), one region per worker in shared memory ---- */

enum rush_step {
    STEP_LOGIN = 0,
    STEP_JOIN,     /* POST /queue */
    STEP_WS_OPEN,  /* connect + upgrade (the edge's Join inside) */
    STEP_QUEUE_WAIT, /* join answered -> admitted message */
    STEP_SEATMAP,  /* GET /events/{id}/seats */
    STEP_HOLD,
    STEP_RELEASE,
    STEP_PAY,
    STEP_BROWSE_LIST,  /* GET /events */
    STEP_BROWSE_HOLD,
    STEP_BROWSE_JOIN,
    STEP_STATUS, /* GET /queue (repair after a lost socket) */
    STEP_COUNT
};
const char *rush_step_name(enum rush_step step);

enum rush_outcome { OUTCOME_OK = 0, OUTCOME_REFUSED, OUTCOME_ERROR };

struct rush_error_kind {
    uint8_t step;
    uint16_t status; /* HTTP status; 0: transport (code says which) */
    bool expected;   /* a refusal the scenario expects (409 conflict, 402 declined) */
    char code[RUSH_CODE_BYTES];
    uint64_t count;
};

/* The figures of one worker. Fixed layout; the histograms follow in the same mapping. */
struct rush_worker_stats {
    _Atomic uint32_t phase; /* enum rush_phase */
    _Atomic uint64_t heartbeat_us;
    uint64_t ok[STEP_COUNT], refused[STEP_COUNT], errors[STEP_COUNT];
    uint32_t second_ok[STEP_COUNT][RUSH_SECONDS_MAX];
    uint32_t second_refused[STEP_COUNT][RUSH_SECONDS_MAX];
    uint32_t second_errors[STEP_COUNT][RUSH_SECONDS_MAX];
    uint32_t error_kinds;
    struct rush_error_kind errors_by_code[RUSH_ERROR_KINDS_MAX];
    uint64_t error_kinds_dropped;
    /* WebSockets */
    _Atomic uint64_t ws_open, ws_open_max, ws_messages, ws_positions, ws_admitted, ws_seat_deltas, ws_closed_by_server;
    uint64_t ws_ping, ws_position_gap_max_us; /* longest silence seen by a waiting socket */
    /* connections */
    uint64_t connects, connect_errors, resets, http_responses, bytes_in, bytes_out;
    uint64_t requests_late; /* open loop: sent later than scheduled by > 10 ms */
    double cpu_seconds;
    char first_error[200];
};

enum rush_phase { PHASE_STARTING = 0, PHASE_LOGIN, PHASE_READY, PHASE_RUNNING, PHASE_DRAINING, PHASE_DONE, PHASE_FAILED };

/* What one user went through (rush and waiting modes): queue fairness and the audit. */
enum rush_user_outcome {
    USER_NONE = 0,
    USER_WAITING,
    USER_GAVE_UP, /* no seats after hold_attempts, or sold out */
    USER_ABANDONED, /* held, never paid (the hold expires) */
    USER_RELEASED,
    USER_DECLINED,
    USER_PAID,
    USER_PAY_UNKNOWN, /* the payment's answer was neither 200 nor 402 */
    USER_FAILED       /* an unexpected error stopped the user */
};

#define RUSH_OUTCOMES 9u
extern const char *const rush_outcome_names[RUSH_OUTCOMES];

struct rush_user_record {
    uint64_t user_id; /* the JWT's sub */
    uint64_t join_sent_us, join_done_us, admitted_us, done_us;
    uint64_t ticket;
    uint32_t positions; /* position messages received */
    uint32_t first_position;
    uint8_t outcome;
    uint8_t hold_tries;
    uint8_t seat_count;
    uint8_t pad;
    uint32_t seats[RUSH_HOLD_SEATS_MAX];
    uint64_t event_id;
    char reservation_id[RUSH_ID_BYTES];
};

struct rush_shared; /* the whole mapping (rush_stats.c) */

struct rush_shared *rush_shared_create(uint32_t workers, uint32_t users);
void rush_shared_destroy(struct rush_shared *shared);
struct rush_worker_stats *rush_shared_worker(struct rush_shared *shared, uint32_t worker);
struct hdr_histogram *rush_shared_hdr(struct rush_shared *shared, uint32_t worker, enum rush_step step);
struct hdr_histogram *rush_shared_series(struct rush_shared *shared, uint32_t worker, enum rush_step step,
                                         uint32_t second);
struct rush_user_record *rush_shared_users(struct rush_shared *shared);
/* Access tokens by global user index ("" until signed in): the token cache. */
char *rush_shared_token(struct rush_shared *shared, uint32_t user);
/* The cache file: lines "index token"; loaded when younger than max_age_s. Counts. */
uint32_t rush_tokens_load(struct rush_shared *shared, const char *path, uint32_t max_age_s);
int rush_tokens_save(struct rush_shared *shared, const char *path);
uint32_t rush_shared_worker_count(const struct rush_shared *shared);
uint32_t rush_shared_user_count(const struct rush_shared *shared);
/* T0 and the go signal, set by the parent once every worker is ready. */
void rush_shared_set_t0(struct rush_shared *shared, uint64_t t0_us);
uint64_t rush_shared_t0(const struct rush_shared *shared);
void rush_shared_request_stop(struct rush_shared *shared);
bool rush_shared_stop_requested(const struct rush_shared *shared);

/* Records one answered request (or transport failure) of a worker. */
/* whole_run: also into the whole-run histogram (holds mode keeps its warm-up out of it). */
void rush_stats_record(struct rush_shared *shared, uint32_t worker, enum rush_step step, enum rush_outcome outcome,
                       uint64_t latency_us, uint64_t now_us, bool whole_run);
/* The series' second of a timestamp (second 0: when the mapping was made). */
uint32_t rush_shared_second(const struct rush_shared *shared, uint64_t now_us);
void rush_stats_error(struct rush_shared *shared, uint32_t worker, enum rush_step step, uint16_t status,
                      const char *code, bool expected);

/* Merged over the workers (the parent, after they stopped or for progress). */
struct rush_totals {
    uint64_t ok[STEP_COUNT], refused[STEP_COUNT], errors[STEP_COUNT];
    struct hdr_histogram *hdr[STEP_COUNT];   /* owned; NULL for steps without answers */
    uint32_t seconds;                        /* series length in use */
    uint32_t *second_ok[STEP_COUNT];         /* owned arrays of `seconds` */
    uint32_t *second_all[STEP_COUNT];        /* ok + refused + errors */
    uint64_t *second_p50[STEP_COUNT];        /* us, 0 when no answer that second */
    uint64_t *second_p99[STEP_COUNT];
    struct rush_error_kind errors_by_code[RUSH_ERROR_KINDS_MAX * 2];
    uint32_t error_kinds;
    uint64_t ws_open_max, ws_messages, ws_positions, ws_admitted, ws_seat_deltas, ws_closed_by_server, ws_ping;
    uint64_t ws_position_gap_max_us;
    uint64_t connects, connect_errors, resets, http_responses, bytes_in, bytes_out, requests_late;
    double worker_cpu_seconds;
    char first_error[200];
};
void rush_totals_merge(struct rush_shared *shared, uint32_t seconds, struct rush_totals *out);
void rush_totals_free(struct rush_totals *totals);
/* A window [from_s, to_s) of the series: answers per second of a step, and the
 * ok-only rate. */
double rush_totals_rate(const struct rush_totals *totals, enum rush_step step, uint32_t from_s, uint32_t to_s,
                        bool ok_only);

/* ---- HTTP/1.1 response parsing (rush_http.c): pure, bounded ---- */

enum http_parse { HTTP_PARSE_MORE = 0, HTTP_PARSE_DONE, HTTP_PARSE_ERROR };

struct http_response {
    /* parser state */
    uint32_t head_len;    /* bytes of the head, 0 until it is complete */
    uint64_t content_length; /* UINT64_MAX: none */
    bool chunked, close, upgrade;
    uint64_t raw_off;  /* chunked: next unparsed byte */
    uint64_t body_end; /* chunked: end of the decoded body (decoded in place) */
    bool chunks_done;
    /* result */
    uint16_t status;
    char *body; /* inside the caller's buffer */
    uint64_t body_len;
    uint64_t consumed; /* bytes of the buffer this response used */
    char websocket_accept[64];
    const char *error; /* why, on HTTP_PARSE_ERROR */
};
void http_response_reset(struct http_response *response);
/* Parses buf[0..len) (all bytes received so far for this response; chunked
 * bodies are decoded in place). eof: the peer closed. */
enum http_parse http_response_parse(struct http_response *response, char *buf, uint64_t len, bool eof,
                                     uint64_t body_max);
/* The "code" of a problem+json body (or "" when there is none), into out. */
void http_problem_code(const char *body, uint64_t len, char *out, size_t out_len);

/* ---- WebSocket framing (rush_ws.c): pure ---- */

#define WS_OP_CONTINUATION 0x0u
#define WS_OP_TEXT 0x1u
#define WS_OP_BINARY 0x2u
#define WS_OP_CLOSE 0x8u
#define WS_OP_PING 0x9u
#define WS_OP_PONG 0xAu

enum ws_parse { WS_PARSE_MORE = 0, WS_PARSE_FRAME, WS_PARSE_ERROR };
struct ws_frame {
    bool fin;
    uint8_t opcode;
    const uint8_t *payload;
    uint64_t payload_len;
    uint64_t frame_len; /* header + payload */
};
/* One frame from a server (unmasked) at buf[0..len); payload_max bounds it. */
enum ws_parse ws_frame_parse(const uint8_t *buf, uint64_t len, uint64_t payload_max, struct ws_frame *frame);
/* A masked client frame into out (cap bytes); returns its length, 0 if it does not fit. */
size_t ws_frame_build(uint8_t *out, size_t cap, uint8_t opcode, const uint8_t *payload, size_t len, uint32_t mask);
/* 16 random bytes, base64 (24 characters + NUL), and the Sec-WebSocket-Accept it expects. */
void ws_handshake_key(uint64_t seed, char key[25]);
void ws_expected_accept(const char *key, char out[29]);

/* ---- the client loop (rush_loop.c) ---- */

struct rush_worker;
struct rush_request;

typedef void (*rush_done_fn)(struct rush_worker *worker, struct rush_request *request,
                             const struct http_response *response);

/* One HTTP request: its bytes and what to do with the answer. response is NULL
 * when the transport failed (connect refused, reset, timeout). */
struct rush_request {
    struct rush_request *next;
    enum rush_step step;
    uint32_t user;       /* index into the worker's users, or UINT32_MAX */
    uint64_t start_us;   /* latency is measured from here (scheduled or enqueued) */
    uint64_t sent_us;
    int32_t lane;        /* holds mode: the lane's own connection; -1: the pool */
    uint64_t ctx;        /* the caller's */
    rush_done_fn done;
    uint32_t len;
    char data[RUSH_REQUEST_BYTES_MAX];
};

/* Target of the connections: the edge or the baseline. */
struct rush_target {
    char host[64];
    uint16_t port;
    char base_url[128];
};
int rush_target_parse(struct rush_target *target, const char *url, char *err, size_t err_len);

/* The client loop of one worker. */
struct rush_loop;
typedef void (*rush_timer_fn)(struct rush_worker *worker, uint64_t arg);
typedef void (*rush_ws_message_fn)(struct rush_worker *worker, uint32_t user, const char *text, size_t len);
typedef void (*rush_ws_event_fn)(struct rush_worker *worker, uint32_t user, int event, const struct http_response *r);
enum { RUSH_WS_OPENED = 1, RUSH_WS_REFUSED, RUSH_WS_CLOSED };

struct rush_loop_config {
    struct rush_target target;
    uint32_t pool;            /* shared keep-alive connections */
    uint32_t lanes;           /* dedicated connections (holds mode) */
    uint32_t ws_max;          /* WebSockets */
    uint32_t source_base;     /* 127.x.y.z sources: this worker's first address index */
    uint32_t source_span;     /* ... and how many it may use for pool and lane connections */
    uint32_t requests_per_connection; /* then the connection closes and reopens elsewhere; 0: never */
    uint64_t body_max;
    rush_ws_message_fn on_ws_message;
    rush_ws_event_fn on_ws_event;
};
struct rush_loop *rush_loop_create(struct rush_worker *worker, const struct rush_loop_config *config);
void rush_loop_destroy(struct rush_loop *loop);
/* Runs until stop() says so (checked after every wake) or the deadline. */
void rush_loop_run(struct rush_loop *loop, bool (*stop)(struct rush_worker *worker), uint64_t deadline_us);
/* Requests: allocate, fill data/len with rush_request_format, submit. */
struct rush_request *rush_request_new(struct rush_loop *loop);
void rush_request_free(struct rush_loop *loop, struct rush_request *request);
bool rush_request_format(struct rush_request *request, const struct rush_target *target, const char *method,
                         const char *path, const char *token, const char *admission, const char *idempotency,
                         const char *body);
void rush_request_submit(struct rush_loop *loop, struct rush_request *request);
uint32_t rush_loop_in_flight(const struct rush_loop *loop); /* queued + sent */
/* Timers (one-shot; arg is the caller's). */
void rush_timer_add(struct rush_loop *loop, uint64_t due_us, rush_timer_fn fn, uint64_t arg);
/* WebSockets: one per user (user is the caller's index). */
bool rush_ws_open(struct rush_loop *loop, uint32_t user, const char *path, uint32_t source_index);
void rush_ws_close(struct rush_loop *loop, uint32_t user);
uint32_t rush_ws_count(const struct rush_loop *loop);

/* ---- one worker process (rush_worker.c) ---- */

struct rush_user {
    char token[RUSH_TOKEN_BYTES];
    char admission[RUSH_ADMISSION_BYTES];
    uint64_t user_id;
    uint32_t record; /* index into the shared user records */
    uint32_t state;  /* the scenario's */
    uint32_t tries;
    uint32_t ws_conn; /* loop's index, UINT32_MAX: none */
    uint64_t last_ws_message_us;
    uint64_t ws_started_us;
    uint32_t ws_failures, join_failures;
    uint32_t pay_retries;
    bool ws_opened_once, map_loaded, decline, admission_counted;
};


struct rush_event_info {
    uint64_t event_id;
    char id_text[24];
};

struct rush_run {
    struct rush_config config;
    struct rush_target target;
    struct rush_target login_target; /* the edge: the baseline has no sign-in */
    char user_prefix[32];
    char password[64];
    struct rush_event_info events[RUSH_EVENTS_MAX]; /* the rush / holds events */
    uint32_t event_count;
    struct rush_event_info browse_event;
    bool baseline; /* the target is perf/baselines' server */
    bool verbose;
};

struct rush_worker {
    uint32_t index;
    const struct rush_run *run;
    const struct rush_config *config;
    struct rush_shared *shared;
    struct rush_worker_stats *stats;
    struct rush_loop *loop;
    struct bench_rng rng;
    struct rush_user *users; /* this worker's slice */
    uint32_t user_count;
    uint32_t first_user; /* global index of users[0] */
    uint32_t browse_first, browse_count; /* browse users: a tail of the slice */
    uint64_t t0_us;
    uint32_t logins_left, logins_in_flight, login_next, logins_failed;
    uint32_t *logins_retry, logins_retry_count;
    uint32_t cached; /* users whose token came from the cache */
    uint64_t measure_from_us, measure_to_us; /* the whole-run histograms cover this */
    uint32_t lane_count;
    bool stopping; /* the run is over: no new work */
    const struct rush_mode_ops *mode;
    void *scenario; /* the mode's own state */
};

int rush_worker_main(struct rush_worker *worker);
/* The second (since T0) a timestamp falls in, for the series. */
uint32_t rush_worker_second(const struct rush_worker *worker, uint64_t now_us);
/* Records a response: outcome from the status (2xx ok; expected codes refused). */
enum rush_outcome rush_worker_account(struct rush_worker *worker, struct rush_request *request,
                                      const struct http_response *response, const uint16_t *expected_statuses,
                                      uint32_t expected_count);
uint64_t rush_rand_between(struct rush_worker *worker, uint32_t lo, uint32_t hi);

/* The modes: init after sign-in (may send requests), ready when that work is
 * done (NULL: at once), start at T0, done when nothing is left, finish. */
struct rush_mode_ops {
    int (*init)(struct rush_worker *worker);
    bool (*ready)(struct rush_worker *worker);
    void (*start)(struct rush_worker *worker);
    bool (*done)(struct rush_worker *worker);
    void (*finish)(struct rush_worker *worker);
    rush_ws_message_fn on_ws_message;
    rush_ws_event_fn on_ws_event;
};
extern const struct rush_mode_ops rush_mode_rush;  /* rush_flow.c */
extern const struct rush_mode_ops rush_mode_holds; /* rush_holds.c */
extern const struct rush_mode_ops rush_mode_waiting; /* rush_flow.c */
/* Browse traffic (rush_browse.c): the rush mode's browse users. init takes
 * their admission tokens, start begins the open-loop arrivals at T0. */
int rush_browse_init(struct rush_worker *worker);
bool rush_browse_ready(struct rush_worker *worker);
void rush_browse_start(struct rush_worker *worker);
void rush_flow_on_seatmap(struct rush_worker *worker, struct rush_request *request, const struct http_response *response);
/* The source address of a user's WebSocket. */
uint32_t rush_worker_ws_source(const struct rush_worker *worker, uint32_t user);

/* ---- setup (rush_setup.c): the parent, before the workers ---- */

int rush_setup_users(const char *pg_url, const char *prefix, const char *password, uint32_t count, char *err,
                     size_t err_len);
int rush_admin_login(const struct rush_target *target, const char *email, const char *password, char *token,
                     size_t token_len, char *err, size_t err_len);
/* Creates an event through POST /api/v1/admin/events; its id into out. */
int rush_create_event(const struct rush_target *target, const char *admin_token, const struct rush_config *config,
                      const char *name, const struct rush_section *sections, uint32_t section_count,
                      bool queue_enabled, uint32_t hold_ttl_s, uint32_t max_seats_per_user,
                      struct rush_event_info *out, char *err, size_t err_len);
/* A blocking one-shot HTTP exchange (setup and audit only). Body malloc'd. */
int rush_http_once(const struct rush_target *target, const char *method, const char *path, const char *token,
                   const char *body, uint16_t *status, char **response_body, size_t *response_len, char *err,
                   size_t err_len);
/* The id of user `number` (1-based, e-mail PREFIX-N@perf.tiketi); -1 if unknown. */
int64_t rush_user_id(const char *pg_url, const char *prefix, uint32_t number);
/* The user id (sub) of an access token; 0 when it cannot be read. */
uint64_t rush_token_subject(const char *token);

/* ---- fairness (rush_fair.c) ---- */

struct rush_fairness {
    uint64_t joined, admitted, waiting_at_end;
    double wait_p50_s, wait_p90_s, wait_p99_s, wait_max_s;
    double spearman_arrival; /* arrival order (join answered) vs admission order */
    double spearman_ticket;  /* ticket order vs admission order */
    uint64_t overtaken;      /* admitted >= 1 s after someone who arrived >= 100 ms later */
    uint64_t ticket_inversions; /* pairs admitted out of ticket order by more than the feed's round (0.5 s) */
    double displacement_p99; /* |admission rank - arrival rank| / admitted, p99 */
    double positions_per_s;  /* position messages per waiting socket-second */
};
void rush_fairness_compute(const struct rush_user_record *records, uint32_t count, struct rush_fairness *out,
                           struct hdr_histogram *waits_ms);

/* ---- audit (rush_audit.c) ---- */

struct rush_audit {
    bool ran;
    char why_not[200];
    uint64_t capacity;
    uint64_t engine_sold, engine_held, engine_free;
    uint64_t pg_sold, pg_sold_distinct;
    uint64_t oversold;           /* sold beyond capacity + seats sold twice */
    uint64_t engine_not_pg;      /* sold in the engine, not confirmed in PostgreSQL */
    uint64_t pg_not_engine;      /* confirmed in PostgreSQL, not sold in the engine */
    uint64_t client_paid;        /* 200 confirmed answers */
    uint64_t paid_not_confirmed; /* ... whose reservation is not confirmed (lost sales) */
    uint64_t paid_seats_not_sold;
    uint64_t client_duplicate_seats; /* a seat in two confirmed answers */
    uint64_t declined, declined_but_sold;
    uint64_t sagas_unsettled;    /* paying / charged / compensating / refunding at the end */
    uint64_t reservations_by_status[8];
    bool pass;
};
int rush_audit_run(const char *pg_url, const char *shards, uint64_t event_id, uint64_t capacity,
                   const struct rush_user_record *records, uint32_t count, uint32_t settle_s, struct rush_audit *out);

/* ---- the holds scenarios' audit (rush_holds_audit.c): no seat in two holds at once ---- */

#define RUSH_HELD_SEATS_MAX (1u << 21) /* seat-holds a worker keeps for the audit (64 MB at most) */

struct rush_held_seat {
    uint64_t start_us;    /* the hold was asked for (before the server made it) */
    uint64_t answered_us; /* its 201 arrived */
    uint64_t end_us;      /* certainly held until: start + TTL, or its release asked for */
    uint32_t seat;
    uint32_t event; /* index into the run's events */
};
_Static_assert(sizeof(struct rush_held_seat) == 32, "the hold log's record is 32 bytes");

struct rush_hold_audit {
    bool ran, pass;
    char why_not[160];
    uint64_t seat_holds; /* seats of 201 answers checked */
    uint64_t seats;      /* distinct seats among them */
    uint64_t double_holds;
    uint64_t dropped; /* seat-holds a worker could not keep (its log was full) */
    char example[200];
};
void rush_hold_log_path(char *out, size_t len, pid_t parent, uint32_t worker);
int rush_hold_log_write(const char *path, const struct rush_held_seat *seats, uint32_t count, uint32_t dropped);
/* Reads (and removes) every worker's log, checks. 0, or -1 with why_not. */
int rush_hold_audit_run(pid_t parent, uint32_t workers, struct rush_hold_audit *out);

/* ---- report (rush_report.c) ---- */

struct rush_process_cpu {
    char name[32];
    pid_t pid;
    bool tree; /* with its children (PostgreSQL's backends) */
    double cpu_start, cpu_end;
    double rss_start_mb, rss_end_mb; /* resident memory (the tree's for PostgreSQL: shared pages count per process) */
};

struct rush_result {
    struct rush_config config;
    const struct rush_run *run;
    struct bench_machine machine;
    struct rush_totals totals;
    struct rush_fairness fairness;
    struct hdr_histogram *queue_waits_ms;
    struct rush_audit audit;
    struct rush_hold_audit hold_audit; /* holds scenarios */
    uint32_t window_from_s, window_to_s; /* the steady window the rates use (series seconds) */
    uint32_t t0_second, run_end_second;
    uint64_t t0_us;
    const struct rush_user_record *records; /* the shared records (plots) */
    uint32_t record_count;
    double login_s;
    double machine_busy_start;
    double window_s;
    double holds_per_s, holds_ok_per_s, hold_p50_ms, hold_p99_ms, hold_p999_ms;
    double requests_per_s;
    uint64_t ws_peak;
    uint64_t outcomes[RUSH_OUTCOMES]; /* users by rush_user_outcome */
    uint64_t seats_bought;
    struct rush_process_cpu processes[64];
    uint32_t process_count;
    double loadgen_cpu_s, machine_busy_s;
    char label[64];
};
int rush_report_write(const struct rush_result *result, const char *out_dir, bool plots);
void rush_report_print(FILE *out, const struct rush_result *result);
int rush_report_json(const struct rush_result *result, const char *path);

#endif
