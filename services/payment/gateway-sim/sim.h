/* sim.h — gateway-sim: a card payment gateway simulator (internal header).
 *
 * The gateway payment-svc talks to in development and tests: the same HTTP API a
 * production gateway would offer (docs/services/payment.md), test card tokens
 * that approve, decline, answer slowly or fail, an idempotency table so a retried
 * request is never executed twice, a ledger of the money it moved, and fault
 * knobs (latency, error rate, hang, drop) set by flags at start and over HTTP at
 * run time.
 *
 * Pieces: sim_http.c (connections, HTTP/1.1 framing, bounds), sim_api.c (routes,
 * JSON, faults), sim_store.c (intents, idempotency table, ledger). Everything is
 * bounded by the settings below and refused past its bound; input from the
 * network is never trusted. */
#ifndef SIM_H
#define SIM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc_log.h"

#define SIM_HEADER_BYTES_MAX 8192u
#define SIM_KEY_BYTES_MAX 255u
#define SIM_PATH_BYTES_MAX 512u
#define SIM_REQUEST_ID_BYTES 64u
#define SIM_RESPONSE_BYTES_MAX (256u * 1024u)
#define SIM_STORED_RESPONSE_BYTES_MAX 8192u
#define SIM_REQUESTS_PER_CONNECTION_MAX 10000u
#define SIM_METADATA_BYTES_MAX 512u
#define SIM_AMOUNT_MAX 99999999999LL /* like a real gateway's per-charge cap */
#define SIM_LEDGER_LIST_MAX 1000u
#define SIM_PAYMENT_REF_BYTES 80u

struct sim_config {
    char listen[256];
    uint32_t connections_max;
    uint32_t body_bytes_max;
    uint32_t read_timeout_ms;
    uint32_t hang_max_ms;
    uint32_t slow_ms;
    uint32_t intents_max;
    uint32_t idempotency_keys_max;
    uint32_t latency_ms;
    char error_rate[32];
    char drop_rate[32];
    bool hang;
    uint32_t seed;
    uint32_t grace_ms;
    enum rpc_log_level log_level;
    bool check_only;
};

/* The fault knobs, read on every request, changed at run time. */
struct sim_faults {
    _Atomic uint32_t latency_ms;
    _Atomic uint32_t error_ppm; /* parts per million of requests answered 500 */
    _Atomic uint32_t drop_ppm;  /* parts per million of connections dropped after processing */
    _Atomic bool hang;
};

struct sim_counters {
    _Atomic uint64_t requests, bad_requests, replays, in_progress_conflicts;
    _Atomic uint64_t injected_errors, injected_drops, injected_hangs, delayed;
    _Atomic uint64_t connections, connections_refused;
};

struct sim_store;

struct sim {
    const struct sim_config *config;
    struct sim_store *store;
    struct sim_faults faults;
    struct sim_counters counters;
    _Atomic bool stopping;
    _Atomic uint32_t connections_open;
};

/* ---- one request, as sim_http.c framed it ---- */
struct sim_request {
    char method[8];
    char path[SIM_PATH_BYTES_MAX];  /* without the query */
    char query[SIM_PATH_BYTES_MAX]; /* after '?', "" if none */
    char idempotency_key[SIM_KEY_BYTES_MAX + 1];
    bool has_idempotency_key;
    char request_id[SIM_REQUEST_ID_BYTES];
    const char *body;
    size_t body_len;
    int fd; /* to notice a client that went away while hanging */
};

struct sim_response {
    int status;
    char *body;             /* malloc'd JSON text (NUL-terminated), or NULL */
    bool replayed;          /* answered from the idempotency table */
    bool drop;              /* close the connection without answering */
    bool close;             /* answer, then close */
};

/* sim_api.c */
void sim_handle(struct sim *sim, const struct sim_request *request, struct sim_response *response);
/* A JSON error body {"error":{"type","code","message"}} with status. */
void sim_error(struct sim_response *response, int status, const char *type, const char *code, const char *message);
/* Parses "0.25" (0..1) into parts per million; false if malformed. */
bool sim_rate_parse(const char *text, uint32_t *ppm);

/* sim_http.c: serves one accepted connection to the end (runs on its own thread). */
void sim_http_serve(struct sim *sim, int fd);

/* sim_store.c */
enum sim_card { SIM_CARD_APPROVE, SIM_CARD_DECLINE, SIM_CARD_SLOW, SIM_CARD_ERROR, SIM_CARD_UNKNOWN };

enum sim_intent_status {
    SIM_INTENT_REQUIRES_CONFIRMATION,
    SIM_INTENT_PROCESSING,
    SIM_INTENT_SUCCEEDED,
    SIM_INTENT_DECLINED /* "requires_payment_method" */
};

struct sim_intent_view {
    char id[32];
    char charge_id[32];
    int64_t amount;
    int64_t refunded;
    char currency[4];
    enum sim_card card;
    char card_hint[24];
    enum sim_intent_status status;
    char decline_code[32];
    char metadata[SIM_METADATA_BYTES_MAX]; /* compact JSON object text, "{}" if none */
    char payment_ref[SIM_PAYMENT_REF_BYTES]; /* metadata.payment_id, for the ledger */
    int64_t created_ms;
};

enum sim_idem_result { SIM_IDEM_NEW, SIM_IDEM_REPLAY, SIM_IDEM_IN_PROGRESS, SIM_IDEM_MISMATCH, SIM_IDEM_FULL };

struct sim_store *sim_store_create(uint32_t intents_max, uint32_t keys_max, uint64_t seed);
void sim_store_destroy(struct sim_store *store);

/* Idempotency: begin claims key for a request with this fingerprint (or says why
 * not; on REPLAY *status and *body, a malloc'd copy, hold the first answer);
 * finish stores the answer (store=false: forget the key, e.g. after a 500, so a
 * retry runs again). */
enum sim_idem_result sim_idem_begin(struct sim_store *store, const char *key, uint64_t fingerprint, int *status,
                                    char **body);
void sim_idem_finish(struct sim_store *store, const char *key, bool store_answer, int status, const char *body);

/* Intents: ids are random; false when the table is full. */
bool sim_intent_create(struct sim_store *store, int64_t amount, const char *currency, const char *card_token,
                       const char *metadata, const char *payment_ref, struct sim_intent_view *out);
bool sim_intent_get(struct sim_store *store, const char *id, struct sim_intent_view *out);
enum sim_confirm_step { SIM_CONFIRM_STARTED, SIM_CONFIRM_NOT_FOUND, SIM_CONFIRM_BAD_STATE };
/* Moves requires_confirmation -> processing (so two confirms cannot both charge). */
enum sim_confirm_step sim_intent_begin_confirm(struct sim_store *store, const char *id, struct sim_intent_view *out);
/* Ends a confirm: approved (a charge in the ledger), declined, or back to
 * requires_confirmation (failed: nothing happened). */
void sim_intent_end_confirm(struct sim_store *store, const char *id, bool approved, bool failed,
                            const char *decline_code, struct sim_intent_view *out);
enum sim_refund_result { SIM_REFUND_OK, SIM_REFUND_NOT_FOUND, SIM_REFUND_NOT_CHARGED, SIM_REFUND_TOO_MUCH,
                         SIM_REFUND_FULL };
/* amount 0: what is left. On OK, *refund_id and *amount_out describe the refund. */
enum sim_refund_result sim_refund(struct sim_store *store, const char *intent_id, int64_t amount, char *refund_id,
                                  size_t refund_id_len, int64_t *amount_out, struct sim_intent_view *out);
/* The ledger as a JSON object text (malloc'd): totals and up to limit entries,
 * newest last, filtered by payment intent or metadata.payment_id (NULL: all). */
char *sim_ledger_json(struct sim_store *store, const char *intent_filter, const char *payment_filter,
                      uint32_t limit);
/* Random numbers for fault injection (thread safe). */
uint32_t sim_random_ppm(struct sim_store *store);

enum sim_card sim_card_of(const char *token);
const char *sim_intent_status_name(enum sim_intent_status status);
void sim_mask_token(const char *token, char *out, size_t out_len);
int64_t sim_now_ms(void);      /* wall clock, for timestamps */
int64_t sim_monotonic_ms(void); /* for waits */

#endif
