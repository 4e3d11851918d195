/* svc_migrate.c — the migration runner (svc_migrate.h). */
#include "svc_migrate.h"

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk_assert.h"

#define MIGRATION_LOCK_KEY "7468697369737469" /* a fixed advisory lock id for "migrating" */
#define MIGRATION_BYTES_MAX (4u << 20)

struct migration {
    int version;
    char name[256];
    char checksum[65];
    char *sql;
};

static int compare_version(const void *a, const void *b)
{
    return ((const struct migration *)a)->version - ((const struct migration *)b)->version;
}

static bool read_file(const char *path, char **out, char *checksum)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    char *buf = malloc(MIGRATION_BYTES_MAX + 1);
    size_t n = buf ? fread(buf, 1, MIGRATION_BYTES_MAX + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > MIGRATION_BYTES_MAX) {
        free(buf);
        return false;
    }
    buf[n] = '\0';
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)buf, n);
    sodium_bin2hex(checksum, 65, digest, sizeof(digest));
    *out = buf;
    return true;
}

/* Loads NNNN_name.sql files sorted by version; -1 on a bad directory or duplicates. */
static int load_migrations(const char *dir, struct migration *list, char *err, size_t err_len)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, err_len, "cannot open migrations directory %s", dir);
        return -1;
    }
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        int version;
        char tail[8];
        size_t len = strlen(entry->d_name);
        if (len < 9 || strcmp(entry->d_name + len - 4, ".sql") != 0 || sscanf(entry->d_name, "%4d_%7s", &version, tail) != 2)
            continue;
        if (count == SVC_MIGRATIONS_MAX) {
            snprintf(err, err_len, "more than %u migrations in %s", SVC_MIGRATIONS_MAX, dir);
            count = -1;
            break;
        }
        struct migration *m = &list[count];
        m->version = version;
        snprintf(m->name, sizeof(m->name), "%s", entry->d_name);
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        if (!read_file(path, &m->sql, m->checksum)) {
            snprintf(err, err_len, "cannot read migration %s (missing or over 4 MiB)", path);
            count = -1;
            break;
        }
        count++;
    }
    closedir(d);
    if (count <= 0)
        return count;
    qsort(list, (size_t)count, sizeof(list[0]), compare_version);
    for (int i = 1; i < count; i++)
        if (list[i].version == list[i - 1].version) {
            snprintf(err, err_len, "two migrations with version %d: %s and %s", list[i].version, list[i - 1].name,
                     list[i].name);
            return -1;
        }
    return count;
}

static bool exec_ok(PGconn *conn, const char *sql, char *err, size_t err_len, const char *what)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType s = PQresultStatus(r);
    bool ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, err_len, "%s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* The checksum recorded for version, "" if not applied; false on a query error. */
static bool applied_checksum(PGconn *conn, int version, char *checksum, char *err, size_t err_len)
{
    char v[16];
    snprintf(v, sizeof(v), "%d", version);
    const char *params[1] = {v};
    PGresult *r = PQexecParams(conn, "SELECT checksum FROM schema_migrations WHERE version = $1::int", 1, NULL,
                               params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, err_len, "reading schema_migrations: %s", PQresultErrorMessage(r));
    else
        snprintf(checksum, 65, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return ok;
}

static bool apply_one(PGconn *conn, const struct migration *m, char *err, size_t err_len)
{
    if (!exec_ok(conn, "BEGIN", err, err_len, m->name))
        return false;
    if (!exec_ok(conn, m->sql, err, err_len, m->name)) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return false;
    }
    char v[16];
    snprintf(v, sizeof(v), "%d", m->version);
    const char *params[3] = {v, m->name, m->checksum};
    PGresult *r = PQexecParams(conn, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1::int, $2, $3)",
                               3, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, err_len, "%s: recording it: %s", m->name, PQresultErrorMessage(r));
    PQclear(r);
    if (!ok) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return false;
    }
    return exec_ok(conn, "COMMIT", err, err_len, m->name);
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like */
}

static enum tk_status run_locked(PGconn *conn, struct migration *list, int count, bool check_only, int *applied,
                                 char *err, size_t err_len)
{
    if (!exec_ok(conn, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                       " checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                 err, err_len, "schema_migrations"))
        return TK_ERR_UNAVAILABLE;
    PGresult *r = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    int newest = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    int code_newest = count > 0 ? list[count - 1].version : 0;
    if (newest > code_newest) {
        snprintf(err, err_len, "the database schema is at version %d, newer than this code's %d: refusing to run",
                 newest, code_newest);
        return TK_ERR_INVALID;
    }
    for (int i = 0; i < count; i++) {
        char checksum[65];
        if (!applied_checksum(conn, list[i].version, checksum, err, err_len))
            return TK_ERR_UNAVAILABLE;
        if (checksum[0] != '\0') {
            if (strcmp(checksum, list[i].checksum) != 0) {
                snprintf(err, err_len, "migration %s changed after it was applied (checksum differs): refusing",
                         list[i].name);
                return TK_ERR_INVALID;
            }
            continue;
        }
        (*applied)++;
        if (!check_only && !apply_one(conn, &list[i], err, err_len))
            return TK_ERR_INVALID;
    }
    return TK_OK;
}

enum tk_status svc_migrate(PGconn *conn, const char *dir, bool check_only, int *applied, char *err, size_t err_len)
{
    TK_ASSERT(conn != NULL && dir != NULL && applied != NULL);
    *applied = 0;
    if (sodium_init() < 0)
        return TK_ERR_UNAVAILABLE;
    static struct migration list[SVC_MIGRATIONS_MAX];
    int count = load_migrations(dir, list, err, err_len);
    if (count < 0)
        return TK_ERR_INVALID;
    enum tk_status status = TK_ERR_UNAVAILABLE;
    PQnoticeProcessor previous = PQsetNoticeProcessor(conn, ignore_notice, NULL);
    if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", err, err_len, "advisory lock")) {
        status = run_locked(conn, list, count, check_only, applied, err, err_len);
        PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")"));
    }
    PQsetNoticeProcessor(conn, previous, NULL);
    for (int i = 0; i < count; i++)
        free(list[i].sql);
    return status;
}
