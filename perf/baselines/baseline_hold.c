/* baseline_hold.c — the routes of tiketi-baseline, run on a worker thread with
 * its own PostgreSQL and Redis connections.
 *
 * The hold, as the original design did it:
 *   1. idempotency: the user's reservation with this key, if any, is answered again
 *   2. best-available only: candidate seats = the lowest free ones (SELECT ... LIMIT)
 *   3. Redis: SET bl:lock:<event>:<seat> <token> NX PX 5000 for every seat (one
 *      pipelined round trip); any refused: give back the taken ones, 409
 *   4. PostgreSQL, one transaction: BEGIN; the user's held seats (per-user cap);
 *      SELECT the seat rows ... ORDER BY seat FOR UPDATE (free, or held by an
 *      expired hold); UPDATE them to held; INSERT the reservation and its seats;
 *      COMMIT (synchronous_commit on: the hold is durable before the answer)
 *   5. Redis: the locks go (compare-and-delete script), then 201
 * A release is one transaction (lock the reservation row, free its seats, mark
 * it released). Answers and problem codes are the edge's (API.md). */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "baseline.h"
#include "tk_assert.h"

#define ID_TEXT 40

static void problem(struct bl_response *out, int status, const char *code, const char *detail)
{
    out->status = status;
    snprintf(out->body, sizeof(out->body),
             "{\"type\":\"urn:tiketi:problem:%s\",\"title\":\"%s\",\"status\":%d,\"detail\":\"%s\",\"code\":\"%s\"}",
             code, code, status, detail, code);
}

static bool sql_ok(PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* Runs a statement; false (and rolls back) when it failed. */
static PGresult *exec(struct bl_worker *w, const char *sql, int n, const char *const *params)
{
    PGresult *r = n > 0 ? PQexecParams(w->db, sql, n, NULL, params, NULL, NULL, 0) : PQexec(w->db, sql);
    if (!sql_ok(r)) {
        fprintf(stderr, "tiketi-baseline: worker %u: %s", w->index, PQerrorMessage(w->db));
        PQclear(r);
        return NULL;
    }
    return r;
}

static void rollback(struct bl_worker *w)
{
    PQclear(PQexec(w->db, "ROLLBACK"));
}

static bool authenticate(struct bl_worker *w, const struct bl_request *rq, struct svc_jwt_claims *claims,
                         struct bl_response *out)
{
    const char *reason = NULL;
    if (strncmp(rq->authorization, "Bearer ", 7) != 0 ||
        svc_jwt_verify(w->keys, rq->authorization + 7, (int64_t)time(NULL), claims, &reason) != TK_OK) {
        problem(out, 401, "unauthorized", "a valid access token is required");
        return false;
    }
    return true;
}

static void uuid_new(char text[ID_TEXT], char hex[33])
{
    uint8_t b[16];
    TK_ASSERT(getrandom(b, sizeof(b), 0) == (ssize_t)sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    snprintf(text, ID_TEXT, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static int by_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

/* "{1,2,3}" for a PostgreSQL int[] parameter. */
static void int_array(const int *seats, uint32_t n, char *out, size_t len)
{
    size_t at = (size_t)snprintf(out, len, "{");
    for (uint32_t i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(out + at, len - at, "%s%d", i ? "," : "", seats[i]);
    snprintf(out + at, len - at, "}");
}

/* ---- admin: events ---- */

static void create_event(struct bl_worker *w, const struct bl_request *rq, struct bl_response *out)
{
    struct svc_jwt_claims claims;
    if (!authenticate(w, rq, &claims, out))
        return;
    if (strcmp(claims.role, "admin") != 0) {
        problem(out, 403, "forbidden", "this route needs the admin role");
        return;
    }
    json_t *root = json_loadb(rq->body != NULL ? rq->body : "", rq->body_len, 0, NULL);
    json_t *sections = json_object_get(root, "sections");
    const char *name = json_string_value(json_object_get(root, "name"));
    int ttl = (int)json_integer_value(json_object_get(root, "hold_ttl_s"));
    int cap = (int)json_integer_value(json_object_get(root, "max_seats_per_user"));
    if (name == NULL || !json_is_array(sections) || json_array_size(sections) == 0) {
        problem(out, 400, "invalid_request", "name and sections are required");
        json_decref(root);
        return;
    }
    char ttl_text[16], cap_text[16], id[24] = "";
    snprintf(ttl_text, sizeof(ttl_text), "%d", ttl > 0 ? ttl : 300);
    snprintf(cap_text, sizeof(cap_text), "%d", cap > 0 ? cap : 10);
    const char *p[3] = {name, ttl_text, cap_text};
    PGresult *r = exec(w, "BEGIN", 0, NULL);
    PQclear(r);
    r = exec(w, "INSERT INTO bl_events (name, capacity, hold_ttl_s, max_seats_per_user) VALUES ($1, 0, $2, $3) "
                "RETURNING id", 3, p);
    bool ok = r != NULL;
    if (ok)
        snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    int first = 0;
    size_t i;
    json_t *s;
    json_array_foreach(sections, i, s)
    {
        int rows = (int)json_integer_value(json_object_get(s, "rows"));
        int per_row = (int)json_integer_value(json_object_get(s, "seats_per_row"));
        char idx[24], rows_t[16], per_t[16], first_t[16], price[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        snprintf(rows_t, sizeof(rows_t), "%d", rows);
        snprintf(per_t, sizeof(per_t), "%d", per_row);
        snprintf(first_t, sizeof(first_t), "%d", first);
        snprintf(price, sizeof(price), "%lld", (long long)json_integer_value(json_object_get(s, "price")));
        const char *sname = json_string_value(json_object_get(s, "name"));
        const char *q[7] = {id, idx, sname != NULL ? sname : "?", rows_t, per_t, first_t, price};
        ok = ok && rows > 0 && per_row > 0 &&
             (r = exec(w, "INSERT INTO bl_sections VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, q)) != NULL;
        PQclear(r);
        const char *qs[6] = {id, idx, rows_t, per_t, first_t, price};
        ok = ok && (r = exec(w, "INSERT INTO bl_seats (event_id, seat, section, price_cents) "
                                "SELECT $1, $5::int + g, $2, $6 FROM generate_series(0, $3::int * $4::int - 1) g",
                             6, qs)) != NULL;
        PQclear(r);
        first += rows * per_row;
    }
    char capacity[16];
    snprintf(capacity, sizeof(capacity), "%d", first);
    const char *u[2] = {id, capacity};
    ok = ok && (r = exec(w, "UPDATE bl_events SET capacity = $2 WHERE id = $1", 2, u)) != NULL;
    PQclear(r);
    if (ok && (r = exec(w, "COMMIT", 0, NULL)) != NULL) {
        PQclear(r);
        out->status = 201;
        snprintf(out->body, sizeof(out->body), "{\"event_id\":\"%s\"}", id);
    } else {
        rollback(w);
        problem(out, 400, "invalid_request", "the event could not be created");
    }
    json_decref(root);
}

static void join(struct bl_worker *w, const struct bl_request *rq, struct bl_response *out)
{
    struct svc_jwt_claims claims;
    if (!authenticate(w, rq, &claims, out))
        return;
    out->status = 200;
    snprintf(out->body, sizeof(out->body),
             "{\"ticket\":0,\"position\":0,\"eta_s\":0,\"status\":\"admitted\",\"admission_token\":\"baseline\"}");
}

/* ---- the hold ---- */

struct hold {
    const char *event;
    char user[SVC_JWT_SUB_BYTES];
    int seats[BL_SEATS_PER_HOLD_MAX];
    uint32_t count;
    char lock_token[ID_TEXT];
};

static bool event_settings(struct bl_worker *w, const char *event, char *ttl, char *cap)
{
    const char *p[1] = {event};
    PGresult *r = exec(w, "SELECT hold_ttl_s, max_seats_per_user FROM bl_events WHERE id = $1", 1, p);
    bool found = r != NULL && PQntuples(r) == 1;
    if (found) {
        snprintf(ttl, 16, "%s", PQgetvalue(r, 0, 0));
        snprintf(cap, 16, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return found;
}

/* The answer of a reservation already made with this key; false: none. */
static bool replay(struct bl_worker *w, struct hold *h, const char *key, struct bl_response *out)
{
    const char *p[2] = {h->user, key};
    PGresult *r = exec(w,
                       "SELECT replace(r.id::text, '-', ''), r.amount_cents, r.status, "
                       "array_to_string(array_agg(s.seat ORDER BY s.seat), ',') FROM bl_reservations r "
                       "JOIN bl_reservation_seats s ON s.reservation_id = r.id "
                       "WHERE r.user_id = $1 AND r.idempotency_key = $2 GROUP BY r.id",
                       2, p);
    bool found = r != NULL && PQntuples(r) == 1;
    if (found) {
        out->status = 201;
        snprintf(out->body, sizeof(out->body),
                 "{\"reservation_id\":\"rsv_%s\",\"event_id\":\"%s\",\"seat_ids\":[%s],\"status\":\"%s\","
                 "\"amount\":%s}",
                 PQgetvalue(r, 0, 0), h->event, PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return found;
}

/* Best-available: the lowest free seats (of a section when named). */
static bool best_candidates(struct bl_worker *w, struct hold *h, uint32_t count, const char *section)
{
    char n[16];
    snprintf(n, sizeof(n), "%u", count);
    const char *p[3] = {h->event, n, section != NULL ? section : ""};
    PGresult *r = exec(w,
                       "SELECT seat FROM bl_seats WHERE event_id = $1 AND (status = 'free' OR "
                       "(status = 'held' AND held_until < now())) AND ($3 = '' OR section = (SELECT idx FROM "
                       "bl_sections WHERE event_id = $1 AND name = $3)) ORDER BY seat LIMIT $2::int",
                       3, p);
    h->count = 0;
    for (int i = 0; r != NULL && i < PQntuples(r); i++)
        h->seats[h->count++] = atoi(PQgetvalue(r, i, 0));
    PQclear(r);
    return h->count == count;
}

/* Redis: every seat's lock, pipelined; taken[] says which we got. */
static uint32_t lock_seats(struct bl_worker *w, const struct hold *h, bool *taken)
{
    for (uint32_t i = 0; i < h->count; i++)
        redisAppendCommand(w->redis, "SET bl:lock:%s:%d %s NX PX %u", h->event, h->seats[i], h->lock_token,
                           BL_LOCK_TTL_MS);
    uint32_t got = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        redisReply *reply = NULL;
        taken[i] = redisGetReply(w->redis, (void **)&reply) == REDIS_OK && reply != NULL &&
                   reply->type == REDIS_REPLY_STATUS;
        got += taken[i];
        if (reply != NULL)
            freeReplyObject(reply);
    }
    return got;
}

static void unlock_seats(struct bl_worker *w, const struct hold *h, const bool *taken)
{
    const char *argv[3 + BL_SEATS_PER_HOLD_MAX + 1];
    char keys[BL_SEATS_PER_HOLD_MAX][64], nkeys[16];
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->count; i++)
        if (taken[i])
            snprintf(keys[n], sizeof(keys[n]), "bl:lock:%s:%d", h->event, h->seats[i]), n++;
    if (n == 0)
        return;
    snprintf(nkeys, sizeof(nkeys), "%u", n);
    argv[0] = "EVALSHA";
    argv[1] = w->release_sha;
    argv[2] = nkeys;
    for (uint32_t i = 0; i < n; i++)
        argv[3 + i] = keys[i];
    argv[3 + n] = h->lock_token;
    redisReply *reply = redisCommandArgv(w->redis, (int)(4 + n), argv, NULL);
    if (reply != NULL)
        freeReplyObject(reply);
}

static void conflict(struct bl_response *out, const struct hold *h, const bool *bad)
{
    out->status = 409;
    size_t at = (size_t)snprintf(out->body, sizeof(out->body),
                                 "{\"type\":\"urn:tiketi:problem:seat_unavailable\",\"title\":\"Some seats are not "
                                 "available\",\"status\":409,\"code\":\"seat_unavailable\",\"unavailable\":[");
    bool first = true;
    for (uint32_t i = 0; i < h->count; i++)
        if (bad[i]) {
            at += (size_t)snprintf(out->body + at, sizeof(out->body) - at, "%s\"%d\"", first ? "" : ",", h->seats[i]);
            first = false;
        }
    snprintf(out->body + at, sizeof(out->body) - at, "]}");
}

/* Step 4: the transaction. 0 held, or the answer is already in out. */
static int hold_transaction(struct bl_worker *w, struct hold *h, const char *key, struct bl_response *out)
{
    char ttl[16], cap[16], array[256], id[ID_TEXT], hex[33], count[16];
    if (!event_settings(w, h->event, ttl, cap)) {
        problem(out, 404, "not_found", "no such event");
        return -1;
    }
    int_array(h->seats, h->count, array, sizeof(array));
    uuid_new(id, hex);
    snprintf(count, sizeof(count), "%u", h->count);
    PGresult *r = exec(w, "BEGIN", 0, NULL);
    PQclear(r);
    const char *pc[3] = {h->user, h->event, count};
    r = exec(w,
             "SELECT count(*) + $3::int FROM bl_reservation_seats s JOIN bl_reservations r ON r.id = s.reservation_id "
             "WHERE r.user_id = $1 AND r.event_id = $2 AND r.status = 'pending' AND r.expires_at > now()",
             3, pc);
    if (r == NULL || atoi(PQgetvalue(r, 0, 0)) > atoi(cap)) {
        PQclear(r);
        rollback(w);
        problem(out, 422, "seat_cap_reached", "over the per-user seat cap");
        return -1;
    }
    PQclear(r);
    const char *pl[2] = {h->event, array};
    r = exec(w,
             "SELECT seat, status = 'free' OR (status = 'held' AND held_until < now()), price_cents FROM bl_seats "
             "WHERE event_id = $1 AND seat = ANY($2::int[]) ORDER BY seat FOR UPDATE",
             2, pl);
    bool bad[BL_SEATS_PER_HOLD_MAX] = {false};
    bool any_bad = r == NULL || (uint32_t)PQntuples(r) != h->count;
    long long amount = 0;
    for (int i = 0; r != NULL && i < PQntuples(r) && (uint32_t)i < h->count; i++) {
        bad[i] = strcmp(PQgetvalue(r, i, 1), "t") != 0;
        any_bad = any_bad || bad[i];
        amount += atoll(PQgetvalue(r, i, 2));
    }
    PQclear(r);
    if (any_bad) {
        rollback(w);
        conflict(out, h, bad);
        return -1;
    }
    char amount_text[24];
    snprintf(amount_text, sizeof(amount_text), "%lld", amount);
    const char *pu[4] = {h->event, array, id, ttl};
    r = exec(w,
             "UPDATE bl_seats SET status = 'held', reservation_id = $3, held_until = now() + $4::int * interval '1 s' "
             "WHERE event_id = $1 AND seat = ANY($2::int[])",
             4, pu);
    bool ok = r != NULL;
    PQclear(r);
    const char *pi[7] = {id, h->event, h->user, amount_text, ttl, key, array};
    ok = ok && (r = exec(w,
                         "WITH r AS (INSERT INTO bl_reservations (id, event_id, user_id, status, amount_cents, "
                         "expires_at, idempotency_key) VALUES ($1, $2, $3, 'pending', $4, "
                         "now() + $5::int * interval '1 s', $6) RETURNING id) "
                         "INSERT INTO bl_reservation_seats SELECT r.id, $2, unnest($7::int[]) FROM r",
                         7, pi)) != NULL;
    PQclear(r);
    ok = ok && (r = exec(w, "COMMIT", 0, NULL)) != NULL;
    PQclear(r);
    if (!ok) {
        rollback(w);
        problem(out, 503, "unavailable", "the database failed");
        return -1;
    }
    out->status = 201;
    size_t at = (size_t)snprintf(out->body, sizeof(out->body),
                                 "{\"reservation_id\":\"rsv_%s\",\"event_id\":\"%s\",\"seat_ids\":[", hex, h->event);
    for (uint32_t i = 0; i < h->count; i++)
        at += (size_t)snprintf(out->body + at, sizeof(out->body) - at, "%s\"%d\"", i ? "," : "", h->seats[i]);
    snprintf(out->body + at, sizeof(out->body) - at, "],\"status\":\"pending\",\"amount\":%s}", amount_text);
    return 0;
}

static bool parse_hold(const struct bl_request *rq, struct hold *h, uint32_t *best, const char **section,
                       json_t **root, struct bl_response *out)
{
    *root = json_loadb(rq->body != NULL ? rq->body : "", rq->body_len, 0, NULL);
    json_t *ids = json_object_get(*root, "seat_ids");
    json_t *count = json_object_get(*root, "count");
    *section = json_string_value(json_object_get(*root, "section"));
    *best = 0;
    if (json_is_integer(count) && ids == NULL) {
        json_int_t n = json_integer_value(count);
        if (n < 1 || n > BL_SEATS_PER_HOLD_MAX)
            goto bad;
        *best = (uint32_t)n;
        return true;
    }
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > BL_SEATS_PER_HOLD_MAX)
        goto bad;
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        const char *text = json_string_value(id);
        if (text == NULL || !isdigit((unsigned char)text[0]))
            goto bad;
        h->seats[h->count++] = atoi(text);
    }
    qsort(h->seats, h->count, sizeof(int), by_int);
    for (uint32_t k = 1; k < h->count; k++)
        if (h->seats[k] == h->seats[k - 1])
            goto bad;
    return true;
bad:
    problem(out, 400, "invalid_request", "give seat_ids (1 to 10 distinct) or count (1 to 10)");
    return false;
}

static void hold_create(struct bl_worker *w, const struct bl_request *rq, const char *event, struct bl_response *out)
{
    struct svc_jwt_claims claims;
    if (!authenticate(w, rq, &claims, out))
        return;
    if (rq->idempotency_key[0] == '\0') {
        problem(out, 400, "invalid_request", "an Idempotency-Key header is required");
        return;
    }
    struct hold h = {.event = event};
    snprintf(h.user, sizeof(h.user), "%s", claims.sub);
    char hex[33];
    uuid_new(h.lock_token, hex);
    uint32_t best = 0;
    const char *section = NULL;
    json_t *root = NULL;
    if (!parse_hold(rq, &h, &best, &section, &root, out) || replay(w, &h, rq->idempotency_key, out)) {
        json_decref(root);
        return;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        if (best > 0 && !best_candidates(w, &h, best, section)) {
            problem(out, 409, "seat_unavailable", "not enough free seats");
            break;
        }
        bool taken[BL_SEATS_PER_HOLD_MAX], refused[BL_SEATS_PER_HOLD_MAX];
        uint32_t got = lock_seats(w, &h, taken);
        if (got < h.count) {
            unlock_seats(w, &h, taken);
            for (uint32_t i = 0; i < h.count; i++)
                refused[i] = !taken[i];
            conflict(out, &h, refused);
            if (best > 0)
                continue; /* another set of candidates */
            break;
        }
        int rc = hold_transaction(w, &h, rq->idempotency_key, out);
        unlock_seats(w, &h, taken);
        if (rc == 0 || best == 0 || out->status != 409)
            break;
    }
    json_decref(root);
}

static void release(struct bl_worker *w, const struct bl_request *rq, const char *id, struct bl_response *out)
{
    struct svc_jwt_claims claims;
    if (!authenticate(w, rq, &claims, out))
        return;
    if (strncmp(id, "rsv_", 4) != 0 || strlen(id) != 36) {
        problem(out, 404, "not_found", "no such reservation");
        return;
    }
    char uuid[ID_TEXT];
    snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", id + 4, id + 12, id + 16, id + 20, id + 24);
    const char *p[2] = {uuid, claims.sub};
    PQclear(exec(w, "BEGIN", 0, NULL));
    PGresult *r = exec(w,
                       "SELECT status, expires_at < now(), event_id FROM bl_reservations WHERE id = $1 AND "
                       "user_id = $2 FOR UPDATE",
                       2, p);
    if (r == NULL || PQntuples(r) != 1) {
        PQclear(r);
        rollback(w);
        problem(out, 404, "not_found", "no such reservation");
        return;
    }
    bool pending = strcmp(PQgetvalue(r, 0, 0), "pending") == 0, expired = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    char event[24];
    snprintf(event, sizeof(event), "%s", PQgetvalue(r, 0, 2));
    PQclear(r);
    if (!pending || expired) {
        rollback(w);
        problem(out, pending ? 410 : 409, pending ? "hold_expired" : "reservation_not_pending",
                "the hold is not pending any more");
        return;
    }
    const char *pf[2] = {event, uuid};
    bool ok = (r = exec(w,
                        "UPDATE bl_seats SET status = 'free', reservation_id = NULL, held_until = NULL "
                        "WHERE event_id = $1 AND reservation_id = $2",
                        2, pf)) != NULL;
    PQclear(r);
    ok = ok && (r = exec(w, "UPDATE bl_reservations SET status = 'released' WHERE id = $1", 1, p)) != NULL;
    PQclear(r);
    ok = ok && (r = exec(w, "COMMIT", 0, NULL)) != NULL;
    PQclear(r);
    if (!ok) {
        rollback(w);
        problem(out, 503, "unavailable", "the database failed");
        return;
    }
    out->status = 204;
    out->body[0] = '\0';
}

void bl_handle(struct bl_worker *w, const struct bl_request *rq, struct bl_response *out)
{
    char a[72] = "", b[72] = "";
    out->status = 500;
    out->body[0] = '\0';
    if (PQstatus(w->db) != CONNECTION_OK)
        PQreset(w->db);
    if (strcmp(rq->method, "GET") == 0 && strcmp(rq->path, "/healthz") == 0) {
        out->status = 200;
        snprintf(out->body, sizeof(out->body), "{\"status\":\"ok\"}");
    } else if (strcmp(rq->method, "POST") == 0 && strcmp(rq->path, "/api/v1/admin/events") == 0) {
        create_event(w, rq, out);
    } else if (strcmp(rq->method, "POST") == 0 && sscanf(rq->path, "/api/v1/events/%64[0-9]/%64s", a, b) == 2 &&
               strcmp(b, "holds") == 0) {
        hold_create(w, rq, a, out);
    } else if (strcmp(rq->method, "POST") == 0 && sscanf(rq->path, "/api/v1/events/%64[0-9]/%64s", a, b) == 2 &&
               strcmp(b, "queue") == 0) {
        join(w, rq, out);
    } else if (strcmp(rq->method, "DELETE") == 0 && sscanf(rq->path, "/api/v1/reservations/%64s", a) == 1) {
        release(w, rq, a, out);
    } else {
        problem(out, 404, "not_found", "the baseline serves only the holds scenario's routes");
    }
}
