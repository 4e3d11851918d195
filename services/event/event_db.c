/* event_db.c — the catalog's SQL (event_db.h).
 *
 * Results are read as text: the rows are few (a page of events, one event's
 * sections) except the seat catalog, which is read once per catalog version
 * and then served from Redis. Times travel as integer microseconds since the
 * epoch (exact both ways) so no time-zone setting of the session matters. */
#include "event_db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_seatmap_codec.h"
#include "event_time.h"
#include "tk_assert.h"

/* pg_advisory_lock(int4, int4): the first key names event creation ("EVT1"). */
#define EVENT_LOCK_CLASS "1163285553"
#define EVENT_LOCK_KEY "(" EVENT_LOCK_CLASS ", ($1::bigint % 2147483648)::int)"

#define STATUS_SQL                                                                                                     \
    "CASE WHEN e.status <> 'scheduled' THEN e.status WHEN e.sale_opens_at <= now() THEN 'on_sale' "                    \
    "ELSE 'scheduled' END"
#define EVENT_COLUMNS                                                                                                  \
    "e.id, e.name, v.name, (extract(epoch FROM e.starts_at) * 1000000)::bigint, "                                      \
    "(extract(epoch FROM e.sale_opens_at) * 1000000)::bigint, " STATUS_SQL ", e.capacity, e.shard, "                  \
    "e.engine_state = 'ready', e.hold_ttl_s, e.max_seats_per_user, e.queue_enabled, e.admit_per_s, e.max_active, "    \
    "e.catalog_version"
#define EVENT_FROM " FROM events e JOIN venues v ON v.id = e.venue_id "

/* ---- errors ---- */

static bool state_is(const char *state, const char *prefix)
{
    return state != NULL && strncmp(state, prefix, strlen(prefix)) == 0;
}

static void db_error(PGconn *pg, const PGresult *r, const char *what, struct rpc_error *error)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char message[200];
    snprintf(message, sizeof(message), "%s", primary ? primary : PQerrorMessage(pg));
    for (char *p = message; *p != '\0'; p++)
        if (*p == '\n')
            *p = ' ';
    /* lost connection, shutdown, out of resources, serialization: worth a retry */
    if (PQstatus(pg) != CONNECTION_OK || state == NULL || state_is(state, "08") || state_is(state, "57P") ||
        state_is(state, "53") || state_is(state, "40"))
        event_error_set(error, GRPC_STATUS_UNAVAILABLE, "unavailable", "the database is unavailable (%s): %s", what,
                        message);
    else
        event_error_set(error, GRPC_STATUS_INTERNAL, "internal", "database error (%s): %s [%s]", what, message, state);
}

/* Runs a statement; NULL (error filled) unless it ended with want. */
static PGresult *run(PGconn *pg, const char *sql, int count, const char *const *params, ExecStatusType want,
                     const char *what, struct rpc_error *error)
{
    TK_ASSERT(pg != NULL && sql != NULL && count >= 0);
    PGresult *r = PQexecParams(pg, sql, count, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == want)
        return r;
    db_error(pg, r, what, error);
    PQclear(r);
    return NULL;
}

static bool run_command(PGconn *pg, const char *sql, int count, const char *const *params, const char *what,
                        struct rpc_error *error)
{
    PGresult *r = run(pg, sql, count, params, PGRES_COMMAND_OK, what, error);
    PQclear(r);
    return r != NULL;
}

/* Ends a transaction left open by a failure (no-op when none is open). */
static void rollback(PGconn *pg)
{
    if (PQtransactionStatus(pg) != PQTRANS_IDLE)
        PQclear(PQexec(pg, "ROLLBACK"));
}

/* ---- values ---- */

static uint64_t value_u64(const PGresult *r, int row, int column)
{
    return strtoull(PQgetvalue(r, row, column), NULL, 10);
}

static int64_t value_i64(const PGresult *r, int row, int column)
{
    return strtoll(PQgetvalue(r, row, column), NULL, 10);
}

static bool value_bool(const PGresult *r, int row, int column)
{
    return PQgetvalue(r, row, column)[0] == 't';
}

static void row_from_result(const PGresult *r, int i, struct event_row *row)
{
    TK_ASSERT(PQnfields(r) == 15);
    memset(row, 0, sizeof(*row));
    row->id = value_u64(r, i, 0);
    snprintf(row->name, sizeof(row->name), "%s", PQgetvalue(r, i, 1));
    snprintf(row->venue, sizeof(row->venue), "%s", PQgetvalue(r, i, 2));
    row->starts_at_us = value_i64(r, i, 3);
    row->sale_opens_at_us = value_i64(r, i, 4);
    snprintf(row->status, sizeof(row->status), "%s", PQgetvalue(r, i, 5));
    row->capacity = (uint32_t)value_u64(r, i, 6);
    row->shard = (uint32_t)value_u64(r, i, 7);
    row->ready = value_bool(r, i, 8);
    row->hold_ttl_s = (uint32_t)value_u64(r, i, 9);
    row->max_seats_per_user = (uint32_t)value_u64(r, i, 10);
    row->queue_enabled = value_bool(r, i, 11);
    row->admit_per_s = (uint32_t)value_u64(r, i, 12);
    row->max_active = (uint32_t)value_u64(r, i, 13);
    row->catalog_version = value_u64(r, i, 14);
}

/* ---- creation ---- */

bool event_db_next_id(PGconn *pg, uint64_t *id, struct rpc_error *error)
{
    PGresult *r = run(pg, "SELECT nextval('event_ids')", 0, NULL, PGRES_TUPLES_OK, "next event id", error);
    if (r == NULL)
        return false;
    *id = value_u64(r, 0, 0);
    PQclear(r);
    TK_ASSERT(*id > 0);
    return true;
}

bool event_db_lock(PGconn *pg, uint64_t id, bool wait, bool *got, struct rpc_error *error)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text};
    const char *sql = wait ? "SELECT pg_advisory_lock" EVENT_LOCK_KEY : "SELECT pg_try_advisory_lock" EVENT_LOCK_KEY;
    PGresult *r = run(pg, sql, 1, params, PGRES_TUPLES_OK, "event lock", error);
    if (r == NULL)
        return false;
    *got = wait || value_bool(r, 0, 0);
    PQclear(r);
    return true;
}

void event_db_unlock(PGconn *pg, uint64_t id)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text};
    PQclear(PQexecParams(pg, "SELECT pg_advisory_unlock" EVENT_LOCK_KEY, 1, NULL, params, NULL, NULL, 0));
}

static bool insert_event(PGconn *pg, uint64_t id, uint32_t shard, const struct event_spec *spec,
                         struct rpc_error *error)
{
    char id_text[24], shard_text[12], starts[EVENT_TIME_TEXT_BYTES], opens[EVENT_TIME_TEXT_BYTES], capacity[12],
        ttl[12], per_user[12], admit[12], active[12], admin[24];
    snprintf(id_text, sizeof(id_text), "%" PRIu64, id);
    snprintf(shard_text, sizeof(shard_text), "%u", shard);
    event_time_format_sql(spec->starts_at_us, starts, sizeof(starts));
    event_time_format_sql(spec->sale_opens_at_us, opens, sizeof(opens));
    snprintf(capacity, sizeof(capacity), "%u", spec->capacity);
    snprintf(ttl, sizeof(ttl), "%u", spec->hold_ttl_s);
    snprintf(per_user, sizeof(per_user), "%u", spec->max_seats_per_user);
    snprintf(admit, sizeof(admit), "%u", spec->admit_per_s);
    snprintf(active, sizeof(active), "%u", spec->max_active);
    snprintf(admin, sizeof(admin), "%" PRIu64, spec->admin_user_id);
    const char *params[] = {id_text, spec->name, spec->venue, starts, opens, shard_text, capacity, ttl, per_user,
                            spec->queue_enabled ? "true" : "false", admit, active, admin};
    PGresult *r = PQexecParams(
        pg,
        "INSERT INTO events (id, name, venue_id, starts_at, sale_opens_at, engine_state, shard, capacity, "
        "hold_ttl_s, max_seats_per_user, queue_enabled, admit_per_s, max_active, created_by) "
        "SELECT $1::bigint, $2, v.id, $4::timestamptz, $5::timestamptz, 'pending', $6::int, $7::int, $8::int, "
        "$9::int, $10::boolean, $11::int, $12::int, $13::bigint FROM venues v WHERE v.name = $3",
        13, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "1") == 0;
    if (!ok && PQresultStatus(r) == PGRES_COMMAND_OK)
        event_error_set(error, GRPC_STATUS_UNAVAILABLE, "unavailable", "the venue was removed meanwhile; retry");
    else if (!ok && state_is(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23503"))
        event_error_set(error, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request",
                        "admin_user_id %" PRIu64 " is not a known user", spec->admin_user_id);
    else if (!ok)
        db_error(pg, r, "inserting the event", error);
    PQclear(r);
    return ok;
}

/* One multi-row INSERT for the sections (at most 64, 6 parameters each). */
static bool insert_sections(PGconn *pg, const char *id_text, const struct event_spec *spec,
                            struct rpc_error *error)
{
    enum { per_section = 5, text_bytes = 12 };
    static _Thread_local char sql[64 + TK_SECTIONS_PER_EVENT_MAX * 64];
    static _Thread_local char numbers[TK_SECTIONS_PER_EVENT_MAX][per_section - 1][text_bytes];
    const char *params[1 + TK_SECTIONS_PER_EVENT_MAX * per_section];
    size_t n = (size_t)snprintf(sql, sizeof(sql),
                                "INSERT INTO sections (event_id, idx, name, rows, seats_per_row, price_cents, "
                                "first_seat) VALUES ");
    params[0] = id_text;
    for (uint32_t s = 0; s < spec->section_count; s++) {
        const struct event_section *section = &spec->sections[s];
        snprintf(numbers[s][0], text_bytes, "%u", section->rows);
        snprintf(numbers[s][1], text_bytes, "%u", section->seats_per_row);
        snprintf(numbers[s][2], text_bytes, "%u", section->price_cents);
        snprintf(numbers[s][3], text_bytes, "%u", section->first_seat);
        int base = 2 + (int)s * per_section;
        params[base - 1] = section->name;
        for (int k = 0; k < per_section - 1; k++)
            params[base + k] = numbers[s][k];
        n += (size_t)snprintf(sql + n, sizeof(sql) - n,
                              "%s($1::bigint, %u, $%d, $%d::int, $%d::int, $%d::int, $%d::int)", s ? ", " : "", s,
                              base, base + 1, base + 2, base + 3, base + 4);
        TK_ASSERT(n < sizeof(sql));
    }
    return run_command(pg, sql, 1 + (int)spec->section_count * per_section, params, "inserting the sections",
                       error);
}

/* Every seat, numbered as the engine numbers them: sections in order, row by row. */
static bool insert_seats(PGconn *pg, const char *id_text, struct rpc_error *error)
{
    const char *params[] = {id_text};
    return run_command(pg,
                       "INSERT INTO seats (event_id, seat, section_idx, row_number, seat_number, label, price_cents) "
                       "SELECT s.event_id, s.first_seat + (r.n - 1) * s.seats_per_row + (c.n - 1), s.idx, r.n, c.n, "
                       "s.name || '-' || r.n || '-' || c.n, s.price_cents FROM sections s "
                       "CROSS JOIN LATERAL generate_series(1, s.rows) AS r(n) "
                       "CROSS JOIN LATERAL generate_series(1, s.seats_per_row) AS c(n) WHERE s.event_id = $1::bigint",
                       1, params, "inserting the seats", error);
}

bool event_db_insert(PGconn *pg, uint64_t id, uint32_t shard, const struct event_spec *spec,
                     struct rpc_error *error)
{
    TK_ASSERT(pg != NULL && spec != NULL && id > 0);
    char id_text[24];
    snprintf(id_text, sizeof(id_text), "%" PRIu64, id);
    const char *venue[] = {spec->venue};
    if (!run_command(pg, "BEGIN", 0, NULL, "begin", error))
        return false;
    /* ON CONFLICT waits for a concurrent insert of the same venue; the next
     * statement (a new snapshot under READ COMMITTED) then sees its row. */
    if (!run_command(pg, "INSERT INTO venues (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", 1, venue,
                     "inserting the venue", error) ||
        !insert_event(pg, id, shard, spec, error) || !insert_sections(pg, id_text, spec, error) ||
        !insert_seats(pg, id_text, error) || !run_command(pg, "COMMIT", 0, NULL, "commit", error)) {
        rollback(pg);
        return false;
    }
    return true;
}

static bool update_one(PGconn *pg, const char *sql, uint64_t id, const char *what, struct rpc_error *error)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text};
    return run_command(pg, sql, 1, params, what, error);
}

bool event_db_mark_ready(PGconn *pg, uint64_t id, struct rpc_error *error)
{
    return update_one(pg, "UPDATE events SET engine_state = 'ready' WHERE id = $1::bigint AND engine_state = 'pending'",
                      id, "marking the event ready", error);
}

bool event_db_delete_pending(PGconn *pg, uint64_t id, struct rpc_error *error)
{
    return update_one(pg, "DELETE FROM events WHERE id = $1::bigint AND engine_state = 'pending'", id,
                      "removing the half-made event", error);
}

/* ---- reading ---- */

bool event_db_get(PGconn *pg, uint64_t id, bool ready_only, struct event_row *row, bool *found,
                  struct rpc_error *error)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text, ready_only ? "true" : "false"};
    PGresult *r = run(pg,
                      "SELECT " EVENT_COLUMNS EVENT_FROM
                      "WHERE e.id = $1::bigint AND (NOT $2::boolean OR e.engine_state = 'ready')",
                      2, params, PGRES_TUPLES_OK, "reading the event", error);
    if (r == NULL)
        return false;
    *found = PQntuples(r) == 1;
    if (*found)
        row_from_result(r, 0, row);
    PQclear(r);
    return true;
}

bool event_db_sections(PGconn *pg, uint64_t id, struct event_section *sections, uint32_t *count,
                       struct rpc_error *error)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text};
    PGresult *r = run(pg,
                      "SELECT name, rows, seats_per_row, price_cents, first_seat FROM sections "
                      "WHERE event_id = $1::bigint ORDER BY idx",
                      1, params, PGRES_TUPLES_OK, "reading the sections", error);
    if (r == NULL)
        return false;
    int rows = PQntuples(r);
    if (rows > (int)TK_SECTIONS_PER_EVENT_MAX)
        rows = (int)TK_SECTIONS_PER_EVENT_MAX;
    for (int i = 0; i < rows; i++) {
        struct event_section *s = &sections[i];
        memset(s, 0, sizeof(*s));
        snprintf(s->name, sizeof(s->name), "%s", PQgetvalue(r, i, 0));
        s->rows = (uint32_t)value_u64(r, i, 1);
        s->seats_per_row = (uint32_t)value_u64(r, i, 2);
        s->price_cents = (uint32_t)value_u64(r, i, 3);
        s->first_seat = (uint32_t)value_u64(r, i, 4);
    }
    *count = (uint32_t)rows;
    PQclear(r);
    return true;
}

bool event_db_list(PGconn *pg, const struct event_list_query *query, struct event_row *rows, uint32_t *count,
                   struct rpc_error *error)
{
    TK_ASSERT(query->limit >= 1 && query->limit <= EVENT_LIST_LIMIT_MAX);
    *count = 0;
    if (query->search && query->tsquery[0] == '\0')
        return true; /* q had no words: nothing can match */
    char after_time[EVENT_TIME_TEXT_BYTES], after_id[24], limit[12];
    if (query->after) {
        event_time_format_sql(query->cursor.starts_at_us, after_time, sizeof(after_time));
        snprintf(after_id, sizeof(after_id), "%" PRIu64, query->cursor.event_id);
    }
    snprintf(limit, sizeof(limit), "%u", query->limit + 1);
    const char *params[] = {query->status, query->search ? query->tsquery : NULL, query->after ? after_time : NULL,
                            query->after ? after_id : NULL, limit};
    PGresult *r = run(pg,
                      "SELECT " EVENT_COLUMNS EVENT_FROM "WHERE e.engine_state = 'ready' "
                      "AND ($1::text IS NULL OR " STATUS_SQL " = $1::text) "
                      "AND ($2::text IS NULL OR to_tsvector('simple', e.name) @@ to_tsquery('simple', $2::text)) "
                      "AND ($3::timestamptz IS NULL OR (e.starts_at, e.id) > ($3::timestamptz, $4::bigint)) "
                      "ORDER BY e.starts_at, e.id LIMIT $5::int",
                      5, params, PGRES_TUPLES_OK, "listing events", error);
    if (r == NULL)
        return false;
    int n = PQntuples(r);
    TK_ASSERT(n >= 0 && n <= (int)query->limit + 1);
    for (int i = 0; i < n; i++)
        row_from_result(r, i, &rows[i]);
    *count = (uint32_t)n;
    PQclear(r);
    return true;
}

bool event_db_pending(PGconn *pg, uint64_t *ids, uint32_t max, uint32_t *count, struct rpc_error *error)
{
    char limit[12];
    snprintf(limit, sizeof(limit), "%u", max);
    const char *params[] = {limit};
    PGresult *r = run(pg, "SELECT id FROM events WHERE engine_state = 'pending' ORDER BY id LIMIT $1::int", 1,
                      params, PGRES_TUPLES_OK, "looking for half-made events", error);
    if (r == NULL)
        return false;
    int n = PQntuples(r);
    TK_ASSERT(n >= 0 && (uint32_t)n <= max);
    for (int i = 0; i < n; i++)
        ids[i] = value_u64(r, i, 0);
    *count = (uint32_t)n;
    PQclear(r);
    return true;
}

bool event_db_catalog_version(PGconn *pg, uint64_t id, uint64_t *version, uint32_t *capacity, bool *found,
                              struct rpc_error *error)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text};
    PGresult *r = run(pg,
                      "SELECT catalog_version, capacity FROM events WHERE id = $1::bigint AND engine_state = 'ready'",
                      1, params, PGRES_TUPLES_OK, "reading the catalog version", error);
    if (r == NULL)
        return false;
    *found = PQntuples(r) == 1;
    if (*found) {
        *version = value_u64(r, 0, 0);
        *capacity = (uint32_t)value_u64(r, 0, 1);
    }
    PQclear(r);
    return true;
}

/* Serializes the seats of one result (sections already written). */
static bool write_seats(const PGresult *seats, struct event_seatmap_writer *writer, struct rpc_error *error,
                        uint64_t id)
{
    int n = PQntuples(seats);
    for (int i = 0; i < n; i++) {
        struct event_seat seat = {.seat = (uint32_t)value_u64(seats, i, 0),
                                  .section = (uint32_t)value_u64(seats, i, 1),
                                  .row = (uint32_t)value_u64(seats, i, 2),
                                  .number = (uint32_t)value_u64(seats, i, 3),
                                  .price_cents = (uint32_t)value_u64(seats, i, 4)};
        snprintf(seat.label, sizeof(seat.label), "%s", PQgetvalue(seats, i, 5));
        if (!event_seatmap_add(writer, &seat)) {
            event_error_set(error, GRPC_STATUS_INTERNAL, "internal",
                            "the seat catalog of event %" PRIu64 " has a seat it cannot describe (seat %u: section,"
                            " row, number or label out of bounds)", id, seat.seat);
            return false;
        }
    }
    return true;
}

static bool serialize_catalog(const PGresult *sections, const PGresult *seats, uint64_t id, uint64_t version,
                              uint8_t **bytes, size_t *len, struct rpc_error *error)
{
    int section_count = PQntuples(sections);
    const char *names[TK_SECTIONS_PER_EVENT_MAX];
    if (section_count < 1 || section_count > (int)TK_SECTIONS_PER_EVENT_MAX) {
        event_error_set(error, GRPC_STATUS_INTERNAL, "internal", "event %" PRIu64 " has %d sections", id,
                        section_count);
        return false;
    }
    for (int s = 0; s < section_count; s++) {
        if (value_u64(sections, s, 0) != (uint64_t)s) {
            event_error_set(error, GRPC_STATUS_INTERNAL, "internal",
                            "event %" PRIu64 ": section indexes are not 0..%d", id, section_count - 1);
            return false;
        }
        names[s] = PQgetvalue(sections, s, 1);
    }
    struct event_seatmap_writer writer;
    event_seatmap_writer_init(&writer, id, version, (uint32_t)PQntuples(seats), names, (uint32_t)section_count);
    bool ok = write_seats(seats, &writer, error, id);
    if (ok && !event_seatmap_finish(&writer, bytes, len)) {
        event_error_set(error, GRPC_STATUS_INTERNAL, "internal",
                        "the seat catalog of event %" PRIu64 " cannot be serialized (a section name over 31 bytes?)",
                        id);
        ok = false;
    }
    event_seatmap_writer_free(&writer);
    return ok;
}

bool event_db_seat_catalog(PGconn *pg, uint64_t id, uint64_t *version, uint8_t **bytes, size_t *len, bool *found,
                           struct rpc_error *error)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text};
    uint32_t capacity;
    PGresult *sections = NULL, *seats = NULL;
    bool ok = run_command(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, "begin", error) &&
              event_db_catalog_version(pg, id, version, &capacity, found, error);
    if (ok && *found)
        ok = (sections = run(pg, "SELECT idx, name FROM sections WHERE event_id = $1::bigint ORDER BY idx", 1,
                             params, PGRES_TUPLES_OK, "reading the sections", error)) != NULL &&
             (seats = run(pg,
                          "SELECT seat, section_idx, row_number, seat_number, price_cents, label FROM seats "
                          "WHERE event_id = $1::bigint ORDER BY seat",
                          1, params, PGRES_TUPLES_OK, "reading the seats", error)) != NULL &&
             run_command(pg, "COMMIT", 0, NULL, "commit", error);
    if (ok && *found)
        ok = serialize_catalog(sections, seats, id, *version, bytes, len, error);
    rollback(pg); /* the read-only snapshot when not found, or after a failure */
    PQclear(sections);
    PQclear(seats);
    return ok;
}
