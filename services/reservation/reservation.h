/* reservation.h — reservation-svc's shared state and internal interfaces.
 *
 * Pieces (one file each): reservation_codec.c (formats), reservation_admission.c
 * (tokens), reservation_engine.c (seatcored calls), reservation_payment.c
 * (payment-svc calls), reservation_pending.c (pending holds in Redis),
 * reservation_store.c (PostgreSQL: reservations, seats, sagas), reservation_saga.c
 * (the saga's steps), reservation_recovery.c (the loop that finishes sagas),
 * reservation_hold.c / _pay.c / _read.c / _cancel.c (the handlers),
 * reservation_handlers.c (method table, answers), reservation_metrics.c, main.c.
 *
 * Threads: gRPC handlers run on completion-queue threads and never block: they
 * check the request and hand a job to the worker pool (svc_workers: one
 * PostgreSQL and one Redis connection per worker). A job makes synchronous calls
 * to seatcored and payment-svc (a worker may block; a CQ thread may not) and
 * answers the call. The recovery loop has its own thread and connection. */
#ifndef RESERVATION_H
#define RESERVATION_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "reservation_codec.h"
#include "reservation_config.h"
#include "rpc_client.h"
#include "rpc_server.h"
#include "svc_workers.h"
#include "tiketi/v1/payment.pb-c.h"
#include "tiketi/v1/reservation.pb-c.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "token.h"

#define RSV_LIST_DEFAULT 100u
#define RSV_LIST_MAX 500u
#define RSV_SAGA_STEPS_MAX 8u        /* steps one drive takes at most (the longest path has 3) */
#define RSV_DEADLINE_MARGIN_MS 150   /* kept back from a client's deadline to answer in time */
#define RSV_CALL_MS_MIN 50           /* a call with less time than this is not started */
#define RSV_STATE_BYTES 16u
#define RSV_NOTE_BYTES 300u

/* ---- metrics ---- */
enum rsv_hold_outcome {
    RSV_HOLD_OK,
    RSV_HOLD_REPLAYED,
    RSV_HOLD_SEAT_UNAVAILABLE,
    RSV_HOLD_NOT_ADMITTED,
    RSV_HOLD_CAP_REACHED,
    RSV_HOLD_REJECTED, /* invalid, sold out, closed, not found */
    RSV_HOLD_ERROR,    /* engine unavailable */
    RSV_HOLD_OUTCOMES
};

enum rsv_step { RSV_STEP_CHARGE, RSV_STEP_CONFIRM, RSV_STEP_RELEASE, RSV_STEP_REFUND, RSV_STEP_RETURN, RSV_STEPS };
enum rsv_step_outcome {
    RSV_STEP_DONE,    /* moved the saga on its main path */
    RSV_STEP_DIVERTED, /* moved it to compensation (declined, hold lost, refund refused) */
    RSV_STEP_UNKNOWN, /* no answer (unavailable, timeout): tried again later */
    RSV_STEP_ANOMALY, /* an answer that should not happen: logged, tried again later */
    RSV_STEP_OUTCOMES
};

/* sagas.state values, in the order of the metric's labels. */
enum { RSV_SAGA_STATES = 9 };
extern const char *const rsv_saga_state_names[RSV_SAGA_STATES];

struct rsv_metrics {
    _Atomic uint64_t holds[RSV_HOLD_OUTCOMES];
    _Atomic uint64_t steps[RSV_STEPS][RSV_STEP_OUTCOMES];
    _Atomic uint64_t compensations;   /* seats released after a declined payment */
    _Atomic uint64_t expired_refunds; /* charged, but the hold ended first: refunded */
    _Atomic uint64_t cancellations;   /* confirmed reservations cancelled and refunded */
    _Atomic uint64_t second_guard;    /* the unique index refused a confirmation */
    _Atomic uint64_t recovery_rounds;
    _Atomic uint64_t recovery_sagas;  /* sagas the loop took up */
    _Atomic uint64_t pending_cache_errors;
    _Atomic int64_t saga_states[RSV_SAGA_STATES]; /* gauge, refreshed by the recovery loop */
    _Atomic bool saga_states_known;
};

struct reservation_service {
    const struct reservation_config *config;
    struct svc_workers *workers;
    struct rpc_router *router;
    struct rpc_channel *payment;
    struct token_key token_key;
    struct rsv_metrics metrics;
};

static inline void rsv_count(_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* ---- time budgets ---- */
struct rsv_budget {
    int64_t until_ms; /* monotonic */
};
int64_t rsv_now_ms(void);      /* wall clock (the engine's expiry times) */
int64_t rsv_monotonic_ms(void);
/* A budget of at most limit_ms, and no later than the call's deadline (call may be NULL). */
struct rsv_budget rsv_budget_for(struct rpc_call *call, uint32_t limit_ms);
/* The timeout of one call under the budget: min(step_ms, what is left); 0 when
 * less than RSV_CALL_MS_MIN is left. */
int64_t rsv_budget_call_ms(const struct rsv_budget *budget, uint32_t step_ms);

/* ---- seatcored (reservation_engine.c). Replies are malloc'd: free with
 * protobuf_c_message_free_unpacked(reply, NULL). A call that could not even be
 * started for want of time fails with DEADLINE_EXCEEDED. ---- */
grpc_status_code rsv_engine_hold(struct reservation_service *svc, const Tiketi__V1__HoldRequest *request,
                                 const struct rsv_budget *budget, Tiketi__V1__HoldReply **reply,
                                 struct rpc_error *error);
grpc_status_code rsv_engine_hold_best(struct reservation_service *svc, const Tiketi__V1__HoldBestRequest *request,
                                      const struct rsv_budget *budget, Tiketi__V1__HoldReply **reply,
                                      struct rpc_error *error);
grpc_status_code rsv_engine_get_hold(struct reservation_service *svc, uint64_t event_id, uint64_t user_id,
                                     uint64_t hold_id, const struct rsv_budget *budget, Tiketi__V1__HoldReply **reply,
                                     struct rpc_error *error);
grpc_status_code rsv_engine_release(struct reservation_service *svc, uint64_t event_id, uint64_t user_id,
                                    uint64_t hold_id, const struct rsv_budget *budget, struct rpc_error *error);
grpc_status_code rsv_engine_confirm(struct reservation_service *svc, uint64_t event_id, uint64_t user_id,
                                    uint64_t hold_id, const char *key, const struct rsv_budget *budget,
                                    struct rpc_error *error);
grpc_status_code rsv_engine_return_seat(struct reservation_service *svc, uint64_t event_id, uint64_t user_id,
                                        uint32_t seat, const struct rsv_budget *budget, struct rpc_error *error);
/* The event's section layout and names (names may be NULL). */
grpc_status_code rsv_engine_sections(struct reservation_service *svc, uint64_t event_id,
                                     const struct rsv_budget *budget, struct rsv_section_layout *sections,
                                     char (*names)[TK_SECTION_NAME_BYTES_MAX], uint32_t *count,
                                     struct rpc_error *error);
/* The price of the seats from the engine's layout. */
grpc_status_code rsv_engine_amount(struct reservation_service *svc, uint64_t event_id, const uint32_t *seats,
                                   uint32_t seat_count, const struct rsv_budget *budget, uint64_t *amount_cents,
                                   struct rpc_error *error);

/* ---- payment-svc (reservation_payment.c) ---- */
struct rsv_charge {
    const char *uuid; /* the reservation's */
    uint64_t user_id;
    uint64_t amount_cents;
    const char *card_token;
};
/* OK: *status "approved" (or "pending"/"refunded"...), payment_id filled. */
grpc_status_code rsv_payment_charge(struct reservation_service *svc, const struct rsv_charge *charge,
                                    const struct rsv_budget *budget, char payment_id[RSV_UUID_BYTES],
                                    char *status, size_t status_len, struct rpc_error *error);
/* Refunds everything left of payment_id under the reservation's refund key. */
grpc_status_code rsv_payment_refund(struct reservation_service *svc, const char *uuid, const char *payment_id,
                                    const struct rsv_budget *budget, char *status, size_t status_len,
                                    struct rpc_error *error);

/* ---- pending holds in Redis (reservation_pending.c). Best effort: the engine is
 * the truth of a hold; this is what "my reservations" lists before payment. ---- */
bool rsv_pending_put(redisContext *redis, uint64_t user_id, const char *reservation_id,
                     const struct rsv_pending *pending);
/* 1 found, 0 not (or expired), -1 Redis failed. */
int rsv_pending_get(redisContext *redis, uint64_t user_id, const char *reservation_id, int64_t now_ms,
                    struct rsv_pending *out);
bool rsv_pending_remove(redisContext *redis, uint64_t user_id, const char *reservation_id);
/* The user's live pending holds (expired ones are dropped from Redis as seen);
 * returns how many (<= max), or -1 when Redis failed. */
int rsv_pending_list(redisContext *redis, uint64_t user_id, int64_t now_ms, struct rsv_pending *out, uint32_t max);

/* ---- PostgreSQL (reservation_store.c) ---- */
struct rsv_record {
    char uuid[RSV_UUID_BYTES];
    uint64_t event_id, hold_id, user_id;
    char status[RSV_STATE_BYTES]; /* reservations.status */
    char state[RSV_STATE_BYTES];  /* sagas.state; "" if the row has none */
    uint64_t amount_cents;
    int64_t created_ms, expires_ms, cancel_requested_ms;
    char payment_id[RSV_UUID_BYTES];
    char card_token[RSV_KEY_BYTES_MAX + 1];
    char outcome[RSV_NOTE_BYTES];
    uint32_t seat_count;
    uint32_t seats[TK_SEATS_PER_HOLD_MAX];
};

enum rsv_store_result {
    RSV_STORE_OK,
    RSV_STORE_NOT_FOUND,
    RSV_STORE_RACED,    /* the row was not in the expected state: someone else moved it */
    RSV_STORE_CONFLICT, /* a unique constraint refused (one_sale_per_seat, the user's key) */
    RSV_STORE_REFUSED,  /* a CHECK or the transition trigger refused */
    RSV_STORE_ERROR     /* the database failed */
};

enum rsv_transition {
    RSV_T_CHARGED,       /* paying -> charged: the payment was approved */
    RSV_T_DECLINED,      /* paying -> compensating: declined or failed, no money moved */
    RSV_T_CONFIRMED,     /* charged -> confirmed; reservation confirmed, seats sold */
    RSV_T_HOLD_LOST,     /* charged -> refunding: the hold ended before the confirmation */
    RSV_T_RELEASED,      /* compensating -> released; reservation released */
    RSV_T_REFUNDED,      /* refunding -> refunded; reservation expired */
    RSV_T_CANCEL_BEGIN,  /* confirmed -> cancelling; seats unsold, reservation cancelling */
    RSV_T_CANCELLED,     /* cancelling -> cancelled */
    RSV_T_CANCEL_ABORT,  /* cancelling -> confirmed: the refund was refused, the sale stands */
    RSV_TRANSITIONS
};

/* The reservation with its saga and seats; user_id 0: any user. */
enum rsv_store_result rsv_store_load(PGconn *pg, const char *uuid, uint64_t user_id, struct rsv_record *out,
                                     char *err, size_t err_len);
/* One transaction: the reservation (paying), its seats and the saga (paying,
 * with the card token). RSV_STORE_RACED if the reservation exists already;
 * RSV_STORE_CONFLICT if the user's idempotency key names another one. */
enum rsv_store_result rsv_store_begin(PGconn *pg, const struct rsv_record *record, const char *idempotency_key,
                                      char *err, size_t err_len);
/* One guarded transition (WHERE state = expected, in one transaction). */
enum rsv_store_result rsv_store_transition(PGconn *pg, const char *uuid, enum rsv_transition transition,
                                           const char *payment_id, const char *outcome, char *err, size_t err_len);
/* A failed attempt: counted, noted, and the next one pushed back (capped backoff). */
void rsv_store_note_attempt(PGconn *pg, const char *uuid, const char *note, uint32_t base_ms, uint32_t max_ms);
/* Session advisory lock on one reservation: whoever drives its saga holds it;
 * it dies with the connection, so a crashed process never leaves it behind. */
bool rsv_store_try_lock(PGconn *pg, const char *uuid);
void rsv_store_unlock(PGconn *pg, const char *uuid);
/* try_lock, polled until wait_ms passed (a second caller waits for the first). */
bool rsv_store_lock_within(PGconn *pg, const char *uuid, int64_t wait_ms);
#define RSV_LOCK_WAIT_MS 3000
/* Up to max reservations of the user, newest first. -1 on error. */
int rsv_store_list(PGconn *pg, uint64_t user_id, struct rsv_record *out, uint32_t max, char *err, size_t err_len);
/* Sagas due for another step (up to max uuids). -1 on error. */
int rsv_store_due(PGconn *pg, char (*uuids)[RSV_UUID_BYTES], uint32_t max);
/* Seats of a cancelling reservation still to go back on sale: not bought again
 * since the cancellation began (see docs). -1 on error. */
int rsv_store_seats_to_return(PGconn *pg, const struct rsv_record *record, uint32_t *seats);
/* Counts per saga state into counts[RSV_SAGA_STATES]; false on error. */
bool rsv_store_saga_counts(PGconn *pg, int64_t *counts);

/* ---- the saga (reservation_saga.c) ---- */
struct rsv_drive_result {
    struct rpc_error error; /* the last step's failure when it stopped before a resting state */
    bool stopped;           /* stopped on an unknown outcome or an anomaly */
};
/* Drives record's saga from its state to a resting state (confirmed, released,
 * refunded, cancelled) or until a step's outcome is unknown. The caller holds
 * the reservation's lock; record is updated as the saga moves. */
void rsv_saga_drive(struct reservation_service *svc, PGconn *pg, struct rsv_record *record,
                    const struct rsv_budget *budget, const char *request_id, struct rsv_drive_result *result);
/* The state index of a saga state name, -1 if unknown. */
int rsv_saga_state_index(const char *state);

/* ---- the recovery loop (reservation_recovery.c) ---- */
struct rsv_recovery;
struct rsv_recovery *rsv_recovery_start(struct reservation_service *svc);
void rsv_recovery_stop(struct rsv_recovery *recovery);

/* ---- handlers and answers (reservation_handlers.c and one file per method) ---- */
extern const struct rpc_method reservation_methods[];
extern const uint32_t reservation_method_count;

void rsv_fail(struct rpc_call *call, grpc_status_code code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Submits fn(ctx) to the workers, or answers RESOURCE_EXHAUSTED "overloaded". */
void rsv_submit(struct reservation_service *svc, struct rpc_call *call, svc_job_fn fn, void *ctx);
/* A worker's connections, or an UNAVAILABLE answer (false). */
bool rsv_worker_pg(struct svc_worker *worker, struct rpc_call *call);
/* The reservation a ReservationRef names, with the caller's user id: its engine ids and its
 * two spellings (the API id and the PostgreSQL uuid). */
struct rsv_ref {
    uint64_t user_id, event_id, hold_id;
    char id[RSV_ID_BYTES];
    char uuid[RSV_UUID_BYTES];
};
/* Parses in into out, or answers (INVALID_ARGUMENT for a user id that is not a number,
 * NOT_FOUND for an id that cannot name a reservation: the same answer as another user's) and
 * returns false. */
bool rsv_ref_parse(struct rpc_call *call, const Tiketi__V1__ReservationRef *in, struct rsv_ref *out);
/* A Reservation built in the call's arena from a stored record. */
Tiketi__V1__Reservation *rsv_reply_from_record(struct rpc_arena *arena, const struct rsv_record *record);
/* ... and from a pending hold. */
Tiketi__V1__Reservation *rsv_reply_from_pending(struct rpc_arena *arena, const char *reservation_id,
                                                const struct rsv_pending *pending);
/* "\"request_id\":\"...\",\"reservation_id\":\"...\"" for rpc_log. */
void rsv_log_fields(char *out, size_t out_len, const char *request_id, const char *reservation_id);

void rsv_on_create_hold(struct rpc_call *call, const ProtobufCMessage *message, void *ctx);
void rsv_on_release_hold(struct rpc_call *call, const ProtobufCMessage *message, void *ctx);
void rsv_on_pay(struct rpc_call *call, const ProtobufCMessage *message, void *ctx);
void rsv_on_get(struct rpc_call *call, const ProtobufCMessage *message, void *ctx);
void rsv_on_list(struct rpc_call *call, const ProtobufCMessage *message, void *ctx);
void rsv_on_cancel(struct rpc_call *call, const ProtobufCMessage *message, void *ctx);

/* reservation_metrics.c */
void rsv_metrics_write(FILE *out, void *ctx);

#endif
