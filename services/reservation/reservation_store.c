/* reservation_store.c — reservation-svc's rows in PostgreSQL (reservation.h):
 * reservations, reservation_seats and sagas (migrations 0003 and 0007).
 *
 * A reservation reaches PostgreSQL when it is paid for: one transaction writes
 * it (paying), its seats and its saga, before payment-svc is called, so that
 * whatever happens next is found again at restart. Every later move is one
 * transaction guarded by the state it expects (UPDATE ... WHERE state = $from):
 * two drivers of the same saga cannot both move it, and the trigger of 0007
 * refuses any move of reservations.status outside the allowed graph (so a
 * reservation can never end both confirmed and released). Seats are marked sold
 * inside the confirming transaction; the unique index one_sale_per_seat refuses
 * a seat sold twice.
 *
 * Statements are parameterised (PQexecParams); nothing from a request is spliced
 * into SQL text. Hold ids are unsigned 64-bit; the BIGINT column keeps their two's
 * complement (the UUID, made of the same bits, is what identifies a row). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reservation.h"
#include "rpc_log.h"
#include "tk_assert.h"

#define LOCK_SPACE "7340019" /* seed of hashtextextended: reservation locks, nobody else's */

static enum rsv_store_result classify(const PGresult *r)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL)
        return RSV_STORE_ERROR;
    if (strcmp(state, "23505") == 0)
        return RSV_STORE_CONFLICT; /* unique_violation */
    if (strcmp(state, "23514") == 0)
        return RSV_STORE_REFUSED; /* check_violation (and the transition trigger) */
    return RSV_STORE_ERROR;
}

/* Runs one statement; NULL (and *result, err) when it failed. */
static PGresult *run(PGconn *pg, const char *sql, int count, const char *const *params,
                     enum rsv_store_result *result, char *err, size_t err_len)
{
    TK_ASSERT(pg != NULL && sql != NULL && count >= 0);
    PGresult *r = PQexecParams(pg, sql, count, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        return r;
    *result = classify(r);
    if (err != NULL) {
        const char *message = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(err, err_len, "%s", message != NULL ? message : PQerrorMessage(pg));
    }
    PQclear(r);
    return NULL;
}

static bool command(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

/* COMMIT, classified like a statement (a constraint checked at commit fails here). */
static enum rsv_store_result commit(PGconn *pg, char *err, size_t err_len)
{
    PGresult *r = PQexec(pg, "COMMIT");
    enum rsv_store_result result = PQresultStatus(r) == PGRES_COMMAND_OK ? RSV_STORE_OK : classify(r);
    if (result != RSV_STORE_OK)
        snprintf(err, err_len, "COMMIT: %s", PQerrorMessage(pg));
    PQclear(r);
    return result;
}

static void rollback(PGconn *pg)
{
    if (PQtransactionStatus(pg) != PQTRANS_IDLE)
        command(pg, "ROLLBACK");
}

/* ---- reading ---- */

#define RECORD_COLUMNS                                                                                                \
    "r.id::text, r.event_id, r.hold_id, r.user_id, r.status, r.amount_cents, "                                       \
    "(extract(epoch FROM r.created_at) * 1000)::bigint, (extract(epoch FROM r.expires_at) * 1000)::bigint, "         \
    "coalesce(s.state, ''), coalesce(s.payment_id::text, ''), coalesce(s.card_token, ''), coalesce(s.outcome, ''), " \
    "coalesce((extract(epoch FROM s.cancel_requested_at) * 1000)::bigint, 0), "                                      \
    "coalesce((SELECT string_agg(rs.seat::text, ',' ORDER BY rs.seat) FROM reservation_seats rs "                     \
    "WHERE rs.reservation_id = r.id), '') "                                                                           \
    "FROM reservations r LEFT JOIN sagas s ON s.reservation_id = r.id "

static bool parse_seats(const char *text, struct rsv_record *out)
{
    out->seat_count = 0;
    const char *p = text;
    while (*p != '\0') {
        char *end;
        unsigned long seat = strtoul(p, &end, 10);
        if (end == p || seat > RSV_SEAT_ID_MAX || out->seat_count == TK_SEATS_PER_HOLD_MAX)
            return false;
        out->seats[out->seat_count++] = (uint32_t)seat;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return false;
    }
    return true;
}

static bool record_from_row(const PGresult *r, int row, struct rsv_record *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->uuid, sizeof(out->uuid), "%s", PQgetvalue(r, row, 0));
    out->event_id = strtoull(PQgetvalue(r, row, 1), NULL, 10);
    out->hold_id = (uint64_t)strtoll(PQgetvalue(r, row, 2), NULL, 10);
    out->user_id = strtoull(PQgetvalue(r, row, 3), NULL, 10);
    snprintf(out->status, sizeof(out->status), "%s", PQgetvalue(r, row, 4));
    out->amount_cents = strtoull(PQgetvalue(r, row, 5), NULL, 10);
    out->created_ms = strtoll(PQgetvalue(r, row, 6), NULL, 10);
    out->expires_ms = strtoll(PQgetvalue(r, row, 7), NULL, 10);
    snprintf(out->state, sizeof(out->state), "%s", PQgetvalue(r, row, 8));
    snprintf(out->payment_id, sizeof(out->payment_id), "%s", PQgetvalue(r, row, 9));
    snprintf(out->card_token, sizeof(out->card_token), "%s", PQgetvalue(r, row, 10));
    snprintf(out->outcome, sizeof(out->outcome), "%s", PQgetvalue(r, row, 11));
    out->cancel_requested_ms = strtoll(PQgetvalue(r, row, 12), NULL, 10);
    uint64_t event, hold;
    /* The UUID is the reservation's identity; the columns must agree with it. */
    return parse_seats(PQgetvalue(r, row, 13), out) && rsv_uuid_parse(out->uuid, &event, &hold) &&
           event == out->event_id && hold == out->hold_id;
}

enum rsv_store_result rsv_store_load(PGconn *pg, const char *uuid, uint64_t user_id, struct rsv_record *out,
                                     char *err, size_t err_len)
{
    TK_ASSERT(uuid != NULL && out != NULL);
    char user[24];
    snprintf(user, sizeof(user), "%llu", (unsigned long long)user_id);
    const char *params[2] = {uuid, user};
    enum rsv_store_result result = RSV_STORE_OK;
    PGresult *r = run(pg, "SELECT " RECORD_COLUMNS "WHERE r.id = $1::uuid AND ($2::bigint = 0 OR r.user_id = $2::bigint)",
                      2, params, &result, err, err_len);
    if (r == NULL)
        return result;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return RSV_STORE_NOT_FOUND;
    }
    bool valid = record_from_row(r, 0, out);
    PQclear(r);
    if (!valid) {
        snprintf(err, err_len, "reservation %s: its row does not match its id", uuid);
        return RSV_STORE_ERROR;
    }
    return RSV_STORE_OK;
}

int rsv_store_list(PGconn *pg, uint64_t user_id, struct rsv_record *out, uint32_t max, char *err, size_t err_len)
{
    TK_ASSERT(user_id != 0 && max <= RSV_LIST_MAX);
    char user[24], limit[16];
    snprintf(user, sizeof(user), "%llu", (unsigned long long)user_id);
    snprintf(limit, sizeof(limit), "%u", max);
    const char *params[2] = {user, limit};
    enum rsv_store_result result;
    PGresult *r = run(pg, "SELECT " RECORD_COLUMNS "WHERE r.user_id = $1::bigint ORDER BY r.created_at DESC, r.id "
                          "LIMIT $2::int",
                      2, params, &result, err, err_len);
    if (r == NULL)
        return -1;
    int count = 0;
    for (int i = 0; i < PQntuples(r) && (uint32_t)count < max; i++)
        if (record_from_row(r, i, &out[count]))
            count++;
    PQclear(r);
    return count;
}

int rsv_store_due(PGconn *pg, char (*uuids)[RSV_UUID_BYTES], uint32_t max)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%u", max);
    const char *params[1] = {limit};
    enum rsv_store_result result;
    PGresult *r = run(pg,
                      "SELECT reservation_id::text FROM sagas WHERE state IN ('paying', 'charged', 'compensating', "
                      "'refunding', 'cancelling') AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1::int",
                      1, params, &result, NULL, 0);
    if (r == NULL)
        return -1;
    int count = PQntuples(r) < (int)max ? PQntuples(r) : (int)max;
    for (int i = 0; i < count; i++)
        snprintf(uuids[i], RSV_UUID_BYTES, "%s", PQgetvalue(r, i, 0));
    PQclear(r);
    return count;
}

int rsv_store_seats_to_return(PGconn *pg, const struct rsv_record *record, uint32_t *seats)
{
    /* A seat this reservation sold goes back on sale unless the same user holds a
     * reservation made since the cancellation began for it: that can only mean our
     * ReturnSeat already ran (a crash came before it was recorded) and the user
     * bought the seat again, and ReturnSeat (which checks only the buyer) would
     * take the new sale back. Other buyers' seats are refused by the engine itself. */
    const char *params[1] = {record->uuid};
    enum rsv_store_result result;
    PGresult *r = run(pg,
                      "SELECT rs.seat FROM reservation_seats rs JOIN reservations me ON me.id = rs.reservation_id "
                      "JOIN sagas sg ON sg.reservation_id = me.id WHERE rs.reservation_id = $1::uuid AND NOT EXISTS "
                      "(SELECT 1 FROM reservation_seats o JOIN reservations again ON again.id = o.reservation_id "
                      "WHERE o.event_id = rs.event_id AND o.seat = rs.seat AND o.reservation_id <> rs.reservation_id "
                      "AND again.user_id = me.user_id AND again.created_at >= sg.cancel_requested_at "
                      "AND again.status IN ('paying', 'confirmed', 'cancelling')) ORDER BY rs.seat",
                      1, params, &result, NULL, 0);
    if (r == NULL)
        return -1;
    int count = 0;
    for (int i = 0; i < PQntuples(r) && count < (int)TK_SEATS_PER_HOLD_MAX; i++)
        seats[count++] = (uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);
    return count;
}

bool rsv_store_saga_counts(PGconn *pg, int64_t *counts)
{
    enum rsv_store_result result;
    PGresult *r = run(pg, "SELECT state, count(*) FROM sagas GROUP BY state", 0, NULL, &result, NULL, 0);
    if (r == NULL)
        return false;
    for (int s = 0; s < RSV_SAGA_STATES; s++)
        counts[s] = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int index = rsv_saga_state_index(PQgetvalue(r, i, 0));
        if (index >= 0)
            counts[index] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    }
    PQclear(r);
    return true;
}

/* ---- writing ---- */

static enum rsv_store_result insert_seats(PGconn *pg, const struct rsv_record *record, char *err, size_t err_len)
{
    char event[24], seats[RSV_PENDING_RECORD_BYTES];
    snprintf(event, sizeof(event), "%llu", (unsigned long long)record->event_id);
    int n = snprintf(seats, sizeof(seats), "{");
    for (uint32_t i = 0; i < record->seat_count; i++)
        n += snprintf(seats + n, sizeof(seats) - (size_t)n, i ? ",%u" : "%u", record->seats[i]);
    snprintf(seats + n, sizeof(seats) - (size_t)n, "}");
    const char *params[3] = {record->uuid, event, seats};
    enum rsv_store_result result = RSV_STORE_OK;
    PGresult *r = run(pg,
                      "INSERT INTO reservation_seats (reservation_id, event_id, seat) "
                      "SELECT $1::uuid, $2::bigint, unnest($3::int[])",
                      3, params, &result, err, err_len);
    PQclear(r);
    return r != NULL ? RSV_STORE_OK : result;
}

enum rsv_store_result rsv_store_begin(PGconn *pg, const struct rsv_record *record, const char *idempotency_key,
                                      char *err, size_t err_len)
{
    TK_ASSERT(record->seat_count >= 1 && record->seat_count <= TK_SEATS_PER_HOLD_MAX);
    TK_ASSERT(record->card_token[0] != '\0' && rsv_key_valid(idempotency_key));
    char user[24], event[24], hold[24], amount[24], expires[24], created[24];
    snprintf(user, sizeof(user), "%llu", (unsigned long long)record->user_id);
    snprintf(event, sizeof(event), "%llu", (unsigned long long)record->event_id);
    snprintf(hold, sizeof(hold), "%lld", (long long)(int64_t)record->hold_id);
    snprintf(amount, sizeof(amount), "%llu", (unsigned long long)record->amount_cents);
    snprintf(expires, sizeof(expires), "%lld", (long long)record->expires_ms);
    snprintf(created, sizeof(created), "%lld", (long long)record->created_ms);
    if (!command(pg, "BEGIN")) {
        snprintf(err, err_len, "BEGIN: %s", PQerrorMessage(pg));
        return RSV_STORE_ERROR;
    }
    const char *params[8] = {record->uuid, user, event, hold, amount, expires, idempotency_key, created};
    enum rsv_store_result result = RSV_STORE_OK;
    PGresult *r = run(pg,
                      "INSERT INTO reservations (id, user_id, event_id, hold_id, status, amount_cents, expires_at, "
                      "idempotency_key, created_at) VALUES ($1::uuid, $2::bigint, $3::bigint, $4::bigint, 'paying', "
                      "$5::bigint, to_timestamp($6::double precision / 1000), $7, "
                      "CASE WHEN $8::bigint > 0 THEN to_timestamp($8::double precision / 1000) ELSE now() END) "
                      "ON CONFLICT (id) DO NOTHING",
                      8, params, &result, err, err_len);
    if (r == NULL)
        goto fail;
    bool inserted = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!inserted) {
        result = RSV_STORE_RACED;
        goto fail;
    }
    if ((result = insert_seats(pg, record, err, err_len)) != RSV_STORE_OK)
        goto fail;
    const char *saga_params[2] = {record->uuid, record->card_token};
    r = run(pg, "INSERT INTO sagas (reservation_id, state, card_token) VALUES ($1::uuid, 'paying', $2)", 2,
            saga_params, &result, err, err_len);
    if (r == NULL)
        goto fail;
    PQclear(r);
    if ((result = commit(pg, err, err_len)) != RSV_STORE_OK)
        goto fail;
    return RSV_STORE_OK;
fail:
    rollback(pg);
    return result;
}

enum seats_change { SEATS_KEEP, SEATS_SELL, SEATS_UNSELL };

struct transition_spec {
    const char *saga_from, *saga_to;
    const char *status_from, *status_to; /* NULL: the reservation's status stays */
    enum seats_change seats;
    bool cancel_time;
};

static const struct transition_spec transitions[RSV_TRANSITIONS] = {
    [RSV_T_CHARGED] = {"paying", "charged", NULL, NULL, SEATS_KEEP, false},
    [RSV_T_DECLINED] = {"paying", "compensating", NULL, NULL, SEATS_KEEP, false},
    [RSV_T_CONFIRMED] = {"charged", "confirmed", "paying", "confirmed", SEATS_SELL, false},
    [RSV_T_HOLD_LOST] = {"charged", "refunding", NULL, NULL, SEATS_KEEP, false},
    [RSV_T_RELEASED] = {"compensating", "released", "paying", "released", SEATS_KEEP, false},
    [RSV_T_REFUNDED] = {"refunding", "refunded", "paying", "expired", SEATS_KEEP, false},
    [RSV_T_CANCEL_BEGIN] = {"confirmed", "cancelling", "confirmed", "cancelling", SEATS_UNSELL, true},
    [RSV_T_CANCELLED] = {"cancelling", "cancelled", "cancelling", "cancelled", SEATS_KEEP, false},
    [RSV_T_CANCEL_ABORT] = {"cancelling", "confirmed", "cancelling", "confirmed", SEATS_SELL, false},
};

static enum rsv_store_result set_seats(PGconn *pg, const char *uuid, bool sold, char *err, size_t err_len)
{
    const char *params[2] = {uuid, sold ? "true" : "false"};
    enum rsv_store_result result = RSV_STORE_OK;
    PGresult *r = run(pg, "UPDATE reservation_seats SET confirmed = $2::boolean WHERE reservation_id = $1::uuid", 2,
                      params, &result, err, err_len);
    PQclear(r);
    return r != NULL ? RSV_STORE_OK : result;
}

/* UPDATE ... WHERE state = from: RSV_STORE_RACED when no row was in that state. */
static enum rsv_store_result guarded(PGconn *pg, const char *sql, int count, const char *const *params, char *err,
                                     size_t err_len)
{
    enum rsv_store_result result = RSV_STORE_OK;
    PGresult *r = run(pg, sql, count, params, &result, err, err_len);
    if (r == NULL)
        return result;
    bool moved = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!moved)
        snprintf(err, err_len, "the row was not in the expected state");
    return moved ? RSV_STORE_OK : RSV_STORE_RACED;
}

static enum rsv_store_result transition_steps(PGconn *pg, const char *uuid, const struct transition_spec *t,
                                              const char *payment_id, const char *outcome, char *err, size_t err_len)
{
    const char *saga_params[6] = {uuid, t->saga_from, t->saga_to, payment_id, outcome, t->cancel_time ? "t" : "f"};
    enum rsv_store_result result = guarded(
        pg,
        "UPDATE sagas SET state = $3, card_token = NULL, attempts = 0, last_error = NULL, next_attempt_at = now(), "
        "updated_at = now(), payment_id = coalesce(nullif($4, '')::uuid, payment_id), "
        "outcome = coalesce(nullif($5, ''), outcome), "
        "cancel_requested_at = CASE WHEN $6::boolean THEN now() ELSE cancel_requested_at END "
        "WHERE reservation_id = $1::uuid AND state = $2",
        6, saga_params, err, err_len);
    if (result == RSV_STORE_OK && t->seats == SEATS_UNSELL)
        result = set_seats(pg, uuid, false, err, err_len);
    if (result == RSV_STORE_OK && t->status_from != NULL) {
        const char *params[3] = {uuid, t->status_from, t->status_to};
        result = guarded(pg, "UPDATE reservations SET status = $3 WHERE id = $1::uuid AND status = $2", 3, params,
                         err, err_len);
    }
    if (result == RSV_STORE_OK && t->seats == SEATS_SELL)
        result = set_seats(pg, uuid, true, err, err_len);
    return result;
}

enum rsv_store_result rsv_store_transition(PGconn *pg, const char *uuid, enum rsv_transition transition,
                                           const char *payment_id, const char *outcome, char *err, size_t err_len)
{
    TK_ASSERT(transition < RSV_TRANSITIONS && uuid != NULL);
    const struct transition_spec *t = &transitions[transition];
    TK_ASSERT(t->saga_from != NULL && t->saga_to != NULL);
    if (!command(pg, "BEGIN")) {
        snprintf(err, err_len, "BEGIN: %s", PQerrorMessage(pg));
        return RSV_STORE_ERROR;
    }
    char note[RSV_NOTE_BYTES];
    snprintf(note, sizeof(note), "%s", outcome != NULL ? outcome : "");
    enum rsv_store_result result = transition_steps(pg, uuid, t, payment_id != NULL ? payment_id : "", note, err,
                                                    err_len);
    if (result == RSV_STORE_OK)
        result = commit(pg, err, err_len);
    if (result != RSV_STORE_OK)
        rollback(pg);
    return result;
}

void rsv_store_note_attempt(PGconn *pg, const char *uuid, const char *note, uint32_t base_ms, uint32_t max_ms)
{
    TK_ASSERT(base_ms > 0 && max_ms >= base_ms);
    char base[16], max[16], text[RSV_NOTE_BYTES];
    snprintf(base, sizeof(base), "%u", base_ms);
    snprintf(max, sizeof(max), "%u", max_ms);
    snprintf(text, sizeof(text), "%s", note != NULL ? note : "");
    const char *params[4] = {uuid, text, base, max};
    enum rsv_store_result result;
    PGresult *r = run(pg,
                      "UPDATE sagas SET attempts = attempts + 1, last_error = $2, updated_at = now(), "
                      "next_attempt_at = now() + make_interval(secs => least($4::double precision, "
                      "$3::double precision * power(2, least(attempts, 16))) / 1000) WHERE reservation_id = $1::uuid",
                      4, params, &result, NULL, 0);
    PQclear(r);
}

bool rsv_store_try_lock(PGconn *pg, const char *uuid)
{
    const char *params[1] = {uuid};
    enum rsv_store_result result;
    char err[256];
    PGresult *r = run(pg, "SELECT pg_try_advisory_lock(hashtextextended($1, " LOCK_SPACE "))", 1, params, &result,
                      err, sizeof(err));
    if (r == NULL) {
        rpc_log(RPC_LOG_WARN, "", "reservation %s: cannot take its lock: %s", uuid, err);
        return false;
    }
    bool locked = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return locked;
}

void rsv_store_unlock(PGconn *pg, const char *uuid)
{
    const char *params[1] = {uuid};
    enum rsv_store_result result;
    PGresult *r = run(pg, "SELECT pg_advisory_unlock(hashtextextended($1, " LOCK_SPACE "))", 1, params, &result,
                      NULL, 0);
    PQclear(r);
}

bool rsv_store_lock_within(PGconn *pg, const char *uuid, int64_t wait_ms)
{
    int64_t until = rsv_monotonic_ms() + wait_ms;
    for (;;) {
        if (rsv_store_try_lock(pg, uuid))
            return true;
        if (rsv_monotonic_ms() >= until)
            return false;
        struct timespec pause = {.tv_nsec = 50 * 1000000L}; /* a saga step takes milliseconds to seconds */
        nanosleep(&pause, NULL);
    }
}
