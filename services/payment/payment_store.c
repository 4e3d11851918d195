/* payment_store.c — payments, refunds and attempts in PostgreSQL (payment_store.h). */
#include "payment_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tk_assert.h"

#define PAYMENT_COLUMNS                                                                                                \
    "p.id::text, p.reservation_id::text, p.user_id, p.amount_cents, p.currency, p.status, "                         \
    "coalesce(p.gateway_ref, ''), coalesce(p.decline_reason, ''), "                                                   \
    "(SELECT coalesce(sum(r.amount_cents), 0) FROM payment_refunds r "                                                \
    " WHERE r.payment_id = p.id AND r.status = 'succeeded')"

#define REFUND_COLUMNS                                                                                                 \
    "r.id::text, r.payment_id::text, r.amount_cents, r.status, coalesce(r.gateway_ref, ''), "                        \
    "coalesce(r.failure_reason, ''), coalesce(p.gateway_ref, '')"

static void set_error(struct payment_store_error *error, const char *code, const char *fmt, const char *detail)
{
    snprintf(error->code, sizeof(error->code), "%s", code);
    snprintf(error->message, sizeof(error->message), fmt, detail);
    size_t n = strlen(error->message); /* PostgreSQL messages end with a newline */
    while (n > 0 && (error->message[n - 1] == '\n' || error->message[n - 1] == ' '))
        error->message[--n] = '\0';
}

/* Runs a statement; NULL (status and error set) unless it succeeded. */
static PGresult *run(PGconn *pg, const char *sql, int count, const char *const *params,
                     enum payment_store_status *status, struct payment_store_error *error)
{
    PGresult *r = PQexecParams(pg, sql, count, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
        return r;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state != NULL && strcmp(state, "23503") == 0) { /* foreign_key_violation */
        *status = PAYMENT_STORE_NOT_FOUND;
        set_error(error, "reservation_not_found", "%s", "no such reservation or user");
    } else if (state != NULL && strcmp(state, "23505") == 0) { /* unique_violation: a key raced */
        *status = PAYMENT_STORE_MISMATCH;
        set_error(error, "idempotency_key_reused", "%s", "the idempotency key was used for a different request");
    } else {
        *status = PAYMENT_STORE_DB_ERROR;
        set_error(error, "storage_unavailable", "database: %s", PQresultErrorMessage(r));
    }
    PQclear(r);
    return NULL;
}

static bool run_plain(PGconn *pg, const char *sql, enum payment_store_status *status,
                      struct payment_store_error *error)
{
    PGresult *r = run(pg, sql, 0, NULL, status, error);
    PQclear(r);
    return r != NULL;
}

static void rollback(PGconn *pg)
{
    PQclear(PQexec(pg, "ROLLBACK"));
}

static void copy_text(char *out, size_t out_len, const PGresult *r, int column)
{
    snprintf(out, out_len, "%s", PQgetvalue(r, 0, column));
}

static void payment_from_row(const PGresult *r, struct payment_record *out)
{
    TK_ASSERT(PQntuples(r) == 1 && PQnfields(r) == 9);
    memset(out, 0, sizeof(*out));
    copy_text(out->id, sizeof(out->id), r, 0);
    copy_text(out->reservation_id, sizeof(out->reservation_id), r, 1);
    out->user_id = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    out->amount_cents = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    copy_text(out->currency, sizeof(out->currency), r, 4);
    copy_text(out->status, sizeof(out->status), r, 5);
    copy_text(out->gateway_ref, sizeof(out->gateway_ref), r, 6);
    copy_text(out->decline_reason, sizeof(out->decline_reason), r, 7);
    out->refunded_cents = strtoll(PQgetvalue(r, 0, 8), NULL, 10);
}

static void refund_from_row(const PGresult *r, struct payment_refund_record *out)
{
    TK_ASSERT(PQntuples(r) == 1 && PQnfields(r) == 7);
    memset(out, 0, sizeof(*out));
    copy_text(out->id, sizeof(out->id), r, 0);
    copy_text(out->payment_id, sizeof(out->payment_id), r, 1);
    out->amount_cents = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    copy_text(out->status, sizeof(out->status), r, 3);
    copy_text(out->gateway_ref, sizeof(out->gateway_ref), r, 4);
    copy_text(out->failure_reason, sizeof(out->failure_reason), r, 5);
    copy_text(out->payment_gateway_ref, sizeof(out->payment_gateway_ref), r, 6);
}

/* Reads one payment by a WHERE clause on p with one parameter. */
static enum payment_store_status read_payment(PGconn *pg, const char *where, const char *param,
                                              struct payment_record *out, struct payment_store_error *error)
{
    char sql[768];
    snprintf(sql, sizeof(sql), "SELECT " PAYMENT_COLUMNS " FROM payments p WHERE %s", where);
    const char *params[1] = {param};
    enum payment_store_status status = PAYMENT_STORE_OK;
    PGresult *r = run(pg, sql, 1, params, &status, error);
    if (r == NULL)
        return status;
    if (PQntuples(r) == 0) {
        PQclear(r);
        set_error(error, "payment_not_found", "%s", "no such payment");
        return PAYMENT_STORE_NOT_FOUND;
    }
    payment_from_row(r, out);
    PQclear(r);
    return PAYMENT_STORE_OK;
}

enum payment_store_status payment_store_get(PGconn *pg, const char *payment_id, struct payment_record *out,
                                            struct payment_store_error *error)
{
    TK_ASSERT(pg != NULL && payment_id != NULL);
    return read_payment(pg, "p.id = $1::uuid", payment_id, out, error);
}

static bool same_charge(const struct payment_record *row, const struct payment_charge_input *in)
{
    return strcasecmp(row->reservation_id, in->reservation_id) == 0 && row->user_id == in->user_id &&
           row->amount_cents == in->amount_cents && strcmp(row->currency, in->currency) == 0;
}

enum payment_store_status payment_store_open_charge(PGconn *pg, const struct payment_charge_input *in,
                                                    struct payment_record *out, bool *created,
                                                    struct payment_store_error *error)
{
    TK_ASSERT(pg != NULL && in != NULL && out != NULL && created != NULL);
    TK_ASSERT(in->amount_cents > 0 && in->user_id > 0);
    char user[24], amount[24];
    snprintf(user, sizeof(user), "%lld", (long long)in->user_id);
    snprintf(amount, sizeof(amount), "%lld", (long long)in->amount_cents);
    const char *params[6] = {in->reservation_id, user, amount, in->currency, in->idempotency_key, in->card_hint};
    enum payment_store_status status = PAYMENT_STORE_OK;
    PGresult *r = run(pg,
                      "INSERT INTO payments (id, reservation_id, user_id, amount_cents, currency, status, "
                      "idempotency_key, card_hint) "
                      "VALUES (gen_random_uuid(), $1::uuid, $2::bigint, $3::bigint, $4, 'pending', $5, $6) "
                      "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id::text",
                      6, params, &status, error);
    if (r == NULL)
        return status;
    *created = PQntuples(r) == 1;
    PQclear(r);
    status = read_payment(pg, "p.idempotency_key = $1", in->idempotency_key, out, error);
    if (status != PAYMENT_STORE_OK)
        return status;
    if (!*created && !same_charge(out, in)) {
        set_error(error, "idempotency_key_reused", "%s",
                  "the idempotency key was already used for a different charge");
        return PAYMENT_STORE_MISMATCH;
    }
    return PAYMENT_STORE_OK;
}

enum payment_store_status payment_store_set_prepared(PGconn *pg, const char *payment_id, const char *gateway_ref,
                                                     struct payment_store_error *error)
{
    TK_ASSERT(gateway_ref != NULL && gateway_ref[0] != '\0');
    const char *params[2] = {payment_id, gateway_ref};
    enum payment_store_status status = PAYMENT_STORE_OK;
    PGresult *r = run(pg,
                      "UPDATE payments SET gateway_ref = $2, updated_at = now() "
                      "WHERE id = $1::uuid AND status = 'pending'",
                      2, params, &status, error);
    PQclear(r);
    return r != NULL ? PAYMENT_STORE_OK : status;
}

enum payment_store_status payment_store_finish(PGconn *pg, const char *payment_id, const char *status_text,
                                               const char *reason, struct payment_record *out,
                                               struct payment_store_error *error)
{
    TK_ASSERT(strcmp(status_text, "approved") == 0 || strcmp(status_text, "declined") == 0 ||
              strcmp(status_text, "failed") == 0);
    const char *params[3] = {payment_id, status_text, reason != NULL ? reason : ""};
    enum payment_store_status status = PAYMENT_STORE_OK;
    PGresult *r = run(pg,
                      "UPDATE payments SET status = $2, decline_reason = nullif($3, ''), updated_at = now() "
                      "WHERE id = $1::uuid AND status = 'pending'",
                      3, params, &status, error);
    if (r == NULL)
        return status;
    PQclear(r);
    /* Whoever moved it first (this call or a concurrent retry) decided: read what is stored. */
    return payment_store_get(pg, payment_id, out, error);
}

/* ---- refunds ---- */

static enum payment_store_status read_refund(PGconn *pg, const char *where, const char *param,
                                             struct payment_refund_record *out, bool *found,
                                             struct payment_store_error *error)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT " REFUND_COLUMNS " FROM payment_refunds r JOIN payments p ON p.id = r.payment_id WHERE %s",
             where);
    const char *params[1] = {param};
    enum payment_store_status status = PAYMENT_STORE_OK;
    PGresult *r = run(pg, sql, 1, params, &status, error);
    if (r == NULL)
        return status;
    *found = PQntuples(r) == 1;
    if (*found)
        refund_from_row(r, out);
    PQclear(r);
    return PAYMENT_STORE_OK;
}

/* Inside the transaction, with the payment row locked: checks and inserts a new refund. */
static enum payment_store_status insert_refund_locked(PGconn *pg, const char *payment_id, const char *payment_status,
                                                      int64_t payment_amount, int64_t amount_cents, const char *key,
                                                      struct payment_refund_record *out,
                                                      struct payment_store_error *error)
{
    if (strcmp(payment_status, "refunded") == 0) {
        set_error(error, "payment_refunded", "%s", "the payment has already been refunded in full");
        return PAYMENT_STORE_PRECONDITION;
    }
    if (strcmp(payment_status, "approved") != 0) {
        set_error(error, "payment_not_refundable", "only an approved payment can be refunded (this one is %s)",
                  payment_status);
        return PAYMENT_STORE_PRECONDITION;
    }
    const char *params[3] = {payment_id, NULL, key};
    enum payment_store_status status = PAYMENT_STORE_OK;
    PGresult *r = run(pg,
                      "SELECT coalesce(sum(amount_cents), 0) FROM payment_refunds "
                      "WHERE payment_id = $1::uuid AND status IN ('pending', 'succeeded')",
                      1, params, &status, error);
    if (r == NULL)
        return status;
    int64_t left = payment_amount - strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    int64_t want = amount_cents == 0 ? left : amount_cents;
    if (want <= 0 || want > left) {
        set_error(error, "refund_exceeds_payment", "%s",
                  "the refund is larger than what is left of the payment (refunds pending or done count)");
        return PAYMENT_STORE_PRECONDITION;
    }
    char amount[24];
    snprintf(amount, sizeof(amount), "%lld", (long long)want);
    params[1] = amount;
    r = run(pg,
            "INSERT INTO payment_refunds (id, payment_id, amount_cents, status, idempotency_key) "
            "VALUES (gen_random_uuid(), $1::uuid, $2::bigint, 'pending', $3) RETURNING id::text",
            3, params, &status, error);
    if (r == NULL)
        return status;
    PQclear(r);
    bool found = false;
    status = read_refund(pg, "r.idempotency_key = $1", key, out, &found, error);
    TK_ASSERT(status != PAYMENT_STORE_OK || found);
    return status;
}

enum payment_store_status payment_store_open_refund(PGconn *pg, const char *payment_id, int64_t amount_cents,
                                                    const char *key, struct payment_refund_record *out,
                                                    bool *created, struct payment_store_error *error)
{
    TK_ASSERT(pg != NULL && payment_id != NULL && key != NULL && amount_cents >= 0);
    enum payment_store_status status = PAYMENT_STORE_OK;
    *created = false;
    if (!run_plain(pg, "BEGIN", &status, error))
        return status;
    const char *params[1] = {payment_id};
    PGresult *r = run(pg, "SELECT status, amount_cents FROM payments WHERE id = $1::uuid FOR UPDATE", 1, params,
                      &status, error);
    if (r == NULL)
        goto fail;
    if (PQntuples(r) == 0) {
        PQclear(r);
        set_error(error, "payment_not_found", "%s", "no such payment");
        status = PAYMENT_STORE_NOT_FOUND;
        goto fail;
    }
    char payment_status[16];
    snprintf(payment_status, sizeof(payment_status), "%s", PQgetvalue(r, 0, 0));
    int64_t payment_amount = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    bool found = false;
    status = read_refund(pg, "r.idempotency_key = $1", key, out, &found, error);
    if (status != PAYMENT_STORE_OK)
        goto fail;
    if (found) {
        if (strcasecmp(out->payment_id, payment_id) != 0 || (amount_cents != 0 && amount_cents != out->amount_cents)) {
            set_error(error, "idempotency_key_reused", "%s",
                      "the idempotency key was already used for a different refund");
            status = PAYMENT_STORE_MISMATCH;
            goto fail;
        }
    } else {
        status = insert_refund_locked(pg, payment_id, payment_status, payment_amount, amount_cents, key, out, error);
        if (status != PAYMENT_STORE_OK)
            goto fail;
        *created = true;
    }
    if (!run_plain(pg, "COMMIT", &status, error))
        goto fail;
    return PAYMENT_STORE_OK;
fail:
    rollback(pg);
    *created = false;
    return status;
}

enum payment_store_status payment_store_finish_refund(PGconn *pg, struct payment_refund_record *refund,
                                                      const char *status_text, const char *gateway_ref,
                                                      const char *reason, struct payment_store_error *error)
{
    TK_ASSERT(strcmp(status_text, "succeeded") == 0 || strcmp(status_text, "failed") == 0);
    enum payment_store_status status = PAYMENT_STORE_OK;
    if (!run_plain(pg, "BEGIN", &status, error))
        return status;
    const char *params[4] = {refund->id, status_text, gateway_ref ? gateway_ref : "", reason ? reason : ""};
    PGresult *r = run(pg,
                      "UPDATE payment_refunds SET status = $2, gateway_ref = nullif($3, ''), "
                      "failure_reason = nullif($4, ''), updated_at = now() "
                      "WHERE id = $1::uuid AND status = 'pending'",
                      4, params, &status, error);
    if (r == NULL)
        goto fail;
    PQclear(r);
    const char *payment[1] = {refund->payment_id};
    r = run(pg,
            "UPDATE payments p SET status = 'refunded', updated_at = now() "
            "WHERE p.id = $1::uuid AND p.status = 'approved' AND p.amount_cents <= "
            "(SELECT coalesce(sum(amount_cents), 0) FROM payment_refunds "
            " WHERE payment_id = p.id AND status = 'succeeded')",
            1, payment, &status, error);
    if (r == NULL)
        goto fail;
    PQclear(r);
    if (!run_plain(pg, "COMMIT", &status, error))
        goto fail;
    bool found = false;
    char id[PAYMENT_UUID_TEXT_BYTES];
    snprintf(id, sizeof(id), "%s", refund->id);
    status = read_refund(pg, "r.id = $1::uuid", id, refund, &found, error);
    TK_ASSERT(status != PAYMENT_STORE_OK || found);
    return status;
fail:
    rollback(pg);
    return status;
}

/* ---- attempts ---- */

enum payment_store_status payment_store_add_attempts(PGconn *pg, const char *payment_id, const char *refund_id,
                                                     enum payment_op op, const char *gateway_key,
                                                     const struct payment_gateway_reply *reply,
                                                     struct payment_store_error *error)
{
    TK_ASSERT(reply->attempt_count <= PAYMENT_GATEWAY_ATTEMPTS_MAX);
    enum payment_store_status status = PAYMENT_STORE_OK;
    for (uint32_t i = 0; i < reply->attempt_count; i++) {
        const struct payment_gateway_attempt *a = &reply->attempts[i];
        char http[16], latency[16];
        snprintf(http, sizeof(http), "%ld", a->http_status);
        snprintf(latency, sizeof(latency), "%u", a->latency_ms);
        const char *params[7] = {payment_id,  refund_id, payment_op_db_name(op), a->http_status ? http : NULL,
                                 payment_attempt_kind_name(a->kind), latency, gateway_key};
        PGresult *r = run(pg,
                          "INSERT INTO payment_attempts (payment_id, refund_id, operation, attempt, http_status, "
                          "outcome, latency_ms, gateway_key) "
                          "SELECT $1::uuid, $2::uuid, $3, coalesce(max(attempt), 0) + 1, $4::int, $5, $6::int, $7 "
                          "FROM payment_attempts WHERE payment_id = $1::uuid AND operation = $3",
                          7, params, &status, error);
        if (r == NULL)
            return status;
        PQclear(r);
    }
    return PAYMENT_STORE_OK;
}
