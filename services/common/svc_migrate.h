/* svc_migrate.h — versioned SQL migrations.
 *
 * Files NNNN_name.sql in one directory are applied in version order, each in its
 * own transaction with its row in schema_migrations, under a PostgreSQL advisory
 * lock so two starting processes never migrate at once. Applying is idempotent
 * (applied versions are skipped), an applied file that changed since is refused
 * (its SHA-256 is recorded), and a database whose newest version is past the
 * newest file is refused: old code must not run on a newer schema. */
#ifndef SVC_MIGRATE_H
#define SVC_MIGRATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "tk_status.h"

#define SVC_MIGRATIONS_MAX 256u

/* Applies what is missing (check_only: only reports). *applied: how many were
 * (or would be) applied. err names the file and PostgreSQL's message on failure. */
enum tk_status svc_migrate(PGconn *conn, const char *dir, bool check_only, int *applied, char *err, size_t err_len);

#endif
