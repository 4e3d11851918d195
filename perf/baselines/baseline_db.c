/* baseline_db.c — the baseline's own database (tables bl_*) and connections.
 *
 * Its own database (tiketi_baseline, beside the stack's tiketi in the same
 * PostgreSQL, so both run on the same server with the same settings): the
 * original design kept seat state in PostgreSQL, one row per seat with its
 * status and the hold that has it. */
#include <stdio.h>
#include <string.h>

#include "baseline.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS bl_events ("
    "  id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, capacity INT NOT NULL, hold_ttl_s INT NOT NULL,"
    "  max_seats_per_user INT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS bl_sections ("
    "  event_id BIGINT NOT NULL REFERENCES bl_events (id), idx INT NOT NULL, name TEXT NOT NULL,"
    "  rows INT NOT NULL, seats_per_row INT NOT NULL, first_seat INT NOT NULL, price_cents BIGINT NOT NULL,"
    "  PRIMARY KEY (event_id, idx));"
    "CREATE TABLE IF NOT EXISTS bl_seats ("
    "  event_id BIGINT NOT NULL, seat INT NOT NULL, section INT NOT NULL, price_cents BIGINT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'free' CHECK (status IN ('free', 'held', 'sold')),"
    "  reservation_id UUID, held_until TIMESTAMPTZ, PRIMARY KEY (event_id, seat));"
    "CREATE TABLE IF NOT EXISTS bl_reservations ("
    "  id UUID PRIMARY KEY, event_id BIGINT NOT NULL, user_id BIGINT NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('pending', 'released', 'expired', 'confirmed')),"
    "  amount_cents BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL, idempotency_key TEXT NOT NULL,"
    "  created_at TIMESTAMPTZ NOT NULL DEFAULT now(), UNIQUE (user_id, idempotency_key));"
    "CREATE INDEX IF NOT EXISTS bl_reservations_user ON bl_reservations (user_id, event_id) WHERE status = 'pending';"
    "CREATE TABLE IF NOT EXISTS bl_reservation_seats ("
    "  reservation_id UUID NOT NULL REFERENCES bl_reservations (id), event_id BIGINT NOT NULL, seat INT NOT NULL,"
    "  PRIMARY KEY (reservation_id, seat));";

int bl_schema(PGconn *db, char *err, size_t err_len)
{
    /* several workers may start at once: one of them creates, the others wait on the lock */
    PGresult *r = PQexec(db, "SELECT pg_advisory_lock(7000001)");
    PQclear(r);
    r = PQexec(db, schema);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0)
        snprintf(err, err_len, "schema: %s", PQerrorMessage(db));
    PQclear(r);
    PQclear(PQexec(db, "SELECT pg_advisory_unlock(7000001)"));
    return rc;
}

/* The URL with its database replaced by postgres, then CREATE DATABASE if missing. */
int bl_create_database(const char *url, char *err, size_t err_len)
{
    const char *slash = strrchr(url, '/');
    if (slash == NULL || strncmp(url, "postgresql://", 13) != 0 || slash < url + 13) {
        snprintf(err, err_len, "--create-database needs a postgresql://host:port/db URL");
        return -1;
    }
    char admin_url[600], name[128];
    snprintf(admin_url, sizeof(admin_url), "%.*spostgres", (int)(slash - url + 1), url);
    snprintf(name, sizeof(name), "%s", slash + 1);
    PGconn *db = PQconnectdb(admin_url);
    if (PQstatus(db) != CONNECTION_OK) {
        snprintf(err, err_len, "PostgreSQL: %s", PQerrorMessage(db));
        PQfinish(db);
        return -1;
    }
    const char *params[1] = {name};
    PGresult *r = PQexecParams(db, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL, params, NULL, NULL, 0);
    bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    int rc = 0;
    if (!exists) {
        char *quoted = PQescapeIdentifier(db, name, strlen(name));
        char sql[300];
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", quoted);
        PQfreemem(quoted);
        r = PQexec(db, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && strstr(PQerrorMessage(db), "already exists") == NULL) {
            snprintf(err, err_len, "CREATE DATABASE: %s", PQerrorMessage(db));
            rc = -1;
        }
        PQclear(r);
    }
    PQfinish(db);
    return rc;
}

/* Deletes the caller's locks only (compare-and-delete): a lock that expired and
 * was taken by someone else stays theirs. */
static const char release_script[] = "local n = 0 "
                                     "for i, key in ipairs(KEYS) do "
                                     "  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) n = n + 1 end "
                                     "end return n";

bool bl_worker_connect(struct bl_worker *worker, const struct bl_config *config, char *err, size_t err_len)
{
    worker->db = PQconnectdb(config->database_url);
    if (PQstatus(worker->db) != CONNECTION_OK) {
        snprintf(err, err_len, "PostgreSQL: %s", PQerrorMessage(worker->db));
        return false;
    }
    struct timeval timeout = {.tv_sec = 2};
    worker->redis = redisConnectWithTimeout(config->redis_host, config->redis_port, timeout);
    if (worker->redis == NULL || worker->redis->err) {
        snprintf(err, err_len, "Redis %s:%d: %s", config->redis_host, config->redis_port,
                 worker->redis ? worker->redis->errstr : "out of memory");
        return false;
    }
    redisReply *reply = redisCommand(worker->redis, "SCRIPT LOAD %s", release_script);
    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        snprintf(err, err_len, "Redis SCRIPT LOAD failed");
        if (reply != NULL)
            freeReplyObject(reply);
        return false;
    }
    snprintf(worker->release_sha, sizeof(worker->release_sha), "%s", reply->str);
    freeReplyObject(reply);
    return true;
}
