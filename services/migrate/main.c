/* main.c — tiketi-migrate: applies the SQL migrations to a database.
 *
 * Used by ./tiketi up, by tests that start a throwaway PostgreSQL, and as the
 * Kubernetes init container before the services start. */
#include <stdio.h>

#include "svc_flags.h"
#include "svc_migrate.h"

int main(int argc, char **argv)
{
    char url[1024] = "", dir[1024] = "infra/db/migrations";
    const struct svc_flag flags[] = {
        {"database-url", "TIKETI_DATABASE_URL", "PostgreSQL connection URL", SVC_FLAG_STRING, url, sizeof(url), .required = true,
         .secret = true},
        {"dir", "TIKETI_MIGRATIONS_DIR", "directory of NNNN_name.sql files", SVC_FLAG_STRING, dir, sizeof(dir)},
    };
    bool check_only;
    int rc = svc_flags_parse("tiketi-migrate", "Applies the versioned SQL migrations (under an advisory lock).",
                             flags, 2, argc, argv, &check_only);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    PGconn *conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "tiketi-migrate: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    int applied = 0;
    char err[1024];
    enum tk_status status = svc_migrate(conn, dir, check_only, &applied, err, sizeof(err));
    PQfinish(conn);
    if (status != TK_OK) {
        fprintf(stderr, "tiketi-migrate: %s\n", err);
        return 1;
    }
    printf("tiketi-migrate: %d migration%s %s\n", applied, applied == 1 ? "" : "s",
           check_only ? "pending" : "applied");
    return 0;
}
