/* payment_store.h — payment-svc's rows in PostgreSQL: payments, payment_refunds,
 * payment_attempts (migrations 0003 and 0005).
 *
 * The row is written before the gateway is called: a payment starts 'pending'
 * under the caller's idempotency key (UNIQUE), learns its gateway intent id,
 * then ends approved, declined or failed exactly once (updates only move a
 * pending row). A call that cannot learn the outcome leaves it pending; the
 * caller's retry with the same key finds the row and resumes with the same
 * gateway keys, so the gateway answers from its idempotency table rather than
 * charging again. Refunds follow the same shape, under a row lock on the
 * payment so two refunds can never add up to more than was charged.
 *
 * Every statement is parameterised (PQexecParams); nothing from a request is
 * ever spliced into SQL text. */
#ifndef PAYMENT_STORE_H
#define PAYMENT_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "payment_gateway.h"

#define PAYMENT_UUID_TEXT_BYTES 37u
#define PAYMENT_REF_BYTES 128u
#define PAYMENT_REASON_BYTES 200u

enum payment_store_status {
    PAYMENT_STORE_OK,
    PAYMENT_STORE_NOT_FOUND,    /* no such payment (or reservation/user for a charge) */
    PAYMENT_STORE_MISMATCH,     /* the idempotency key belongs to a different request */
    PAYMENT_STORE_PRECONDITION, /* refused; code and message say why */
    PAYMENT_STORE_DB_ERROR      /* the database failed; message says how */
};

struct payment_store_error {
    char code[48];
    char message[256];
};

struct payment_record {
    char id[PAYMENT_UUID_TEXT_BYTES];
    char reservation_id[PAYMENT_UUID_TEXT_BYTES];
    int64_t user_id;
    int64_t amount_cents;
    int64_t refunded_cents;
    char currency[4];
    char status[16]; /* pending approved declined failed refunded */
    char gateway_ref[PAYMENT_REF_BYTES];
    char decline_reason[PAYMENT_REASON_BYTES];
};

struct payment_charge_input {
    const char *reservation_id;
    int64_t user_id;
    int64_t amount_cents;
    const char *currency;
    const char *idempotency_key;
    const char *card_hint;
};

struct payment_refund_record {
    char id[PAYMENT_UUID_TEXT_BYTES];
    char payment_id[PAYMENT_UUID_TEXT_BYTES];
    int64_t amount_cents;
    char status[16]; /* pending succeeded failed */
    char gateway_ref[PAYMENT_REF_BYTES];
    char failure_reason[PAYMENT_REASON_BYTES];
    char payment_gateway_ref[PAYMENT_REF_BYTES]; /* the payment's intent id */
};

/* The payment for in->idempotency_key, created pending if new (*created). */
enum payment_store_status payment_store_open_charge(PGconn *pg, const struct payment_charge_input *in,
                                                    struct payment_record *out, bool *created,
                                                    struct payment_store_error *error);
enum payment_store_status payment_store_get(PGconn *pg, const char *payment_id, struct payment_record *out,
                                            struct payment_store_error *error);
enum payment_store_status payment_store_set_prepared(PGconn *pg, const char *payment_id, const char *gateway_ref,
                                                     struct payment_store_error *error);
/* pending -> status (approved, declined, failed); re-reads the row into out. */
enum payment_store_status payment_store_finish(PGconn *pg, const char *payment_id, const char *status,
                                               const char *reason, struct payment_record *out,
                                               struct payment_store_error *error);

/* The refund for key, created pending if new (*created); amount 0: what is left. */
enum payment_store_status payment_store_open_refund(PGconn *pg, const char *payment_id, int64_t amount_cents,
                                                    const char *key, struct payment_refund_record *out,
                                                    bool *created, struct payment_store_error *error);
/* pending -> succeeded/failed; a payment refunded in full becomes 'refunded'. */
enum payment_store_status payment_store_finish_refund(PGconn *pg, struct payment_refund_record *refund,
                                                      const char *status, const char *gateway_ref,
                                                      const char *reason, struct payment_store_error *error);

/* One payment_attempts row per attempt (refund_id NULL for a charge's calls). */
enum payment_store_status payment_store_add_attempts(PGconn *pg, const char *payment_id, const char *refund_id,
                                                     enum payment_op op, const char *gateway_key,
                                                     const struct payment_gateway_reply *reply,
                                                     struct payment_store_error *error);

#endif
