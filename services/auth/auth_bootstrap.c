/* auth_bootstrap.c — start-up work, on one connection before the workers start.
 *
 * 1. --migrate: apply infra/db/migrations (svc_migrate, under its advisory lock),
 *    so tests and the local stack need no separate step; production runs
 *    tiketi-migrate as an init container instead.
 * 2. The dummy hash Login verifies unknown e-mails against (same cost as real
 *    hashes, of a random password nobody knows).
 * 3. The admin account (--admin-email/--admin-password): created with role admin
 *    when no account has that address. An existing account is never changed: not
 *    its password (rotating the setting must not reset a password someone
 *    changed), and not its role (someone who signed up with that address before
 *    the first start must not become admin) — that case is logged as a warning. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "rpc_log.h"
#include "svc_migrate.h"
#include "tk_assert.h"

static bool migrate(PGconn *conn, const struct auth_config *config)
{
    if (!config->migrate)
        return true;
    int applied = 0;
    char err[1024];
    if (svc_migrate(conn, config->migrations_dir, false, &applied, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "migrations in %s: %s", config->migrations_dir, err);
        return false;
    }
    rpc_log(RPC_LOG_INFO, "", "migrations: %d applied from %s", applied, config->migrations_dir);
    return true;
}

static bool make_dummy_hash(struct auth_service *service)
{
    uint8_t raw[24];
    char password[48];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(password, sizeof(password), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    enum tk_status status = svc_password_hash(&service->password, password, strlen(password), service->dummy_hash);
    sodium_memzero(password, sizeof(password));
    if (status != TK_OK)
        rpc_log(RPC_LOG_ERROR, "", "cannot make a password hash (argon2id, %u KiB): out of memory?",
                service->password.memlimit_kib);
    return status == TK_OK;
}

static bool insert_admin(PGconn *conn, struct auth_service *service, const char *email)
{
    const struct auth_config *config = service->config;
    char hash[SVC_PASSWORD_HASH_BYTES];
    if (svc_password_hash(&service->password, config->admin_password, strlen(config->admin_password), hash) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot hash the admin password");
        return false;
    }
    const char *params[3] = {email, config->admin_name, hash};
    PGresult *r = PQexecParams(conn,
                               "INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, 'admin')"
                               " ON CONFLICT DO NOTHING RETURNING id",
                               3, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        rpc_log(RPC_LOG_ERROR, "", "creating the admin account: %s", PQresultErrorMessage(r));
    else if (PQntuples(r) == 1)
        rpc_log(RPC_LOG_INFO, "", "admin account created: user %s", PQgetvalue(r, 0, 0));
    else
        rpc_log(RPC_LOG_INFO, "", "admin account created meanwhile by another instance");
    if (ok && strcmp(config->admin_password, AUTH_ADMIN_PASSWORD_DEFAULT) == 0)
        rpc_log(RPC_LOG_WARN, "", "the admin account has the local-stack default password: "
                                  "set AUTH_ADMIN_PASSWORD anywhere else");
    PQclear(r);
    return ok;
}

static bool ensure_admin(PGconn *conn, struct auth_service *service)
{
    const struct auth_config *config = service->config;
    if (config->admin_email[0] == '\0') {
        rpc_log(RPC_LOG_INFO, "", "no --admin-email: no admin account is made");
        return true;
    }
    char email[AUTH_EMAIL_BYTES];
    const char *why = NULL;
    if (!auth_email_normalize(config->admin_email, email, &why)) {
        rpc_log(RPC_LOG_ERROR, "", "--admin-email: %s", why);
        return false;
    }
    const char *params[1] = {email};
    PGresult *r = PQexecParams(conn, "SELECT id, role FROM users WHERE lower(email) = $1", 1, NULL, params, NULL,
                               NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rpc_log(RPC_LOG_ERROR, "", "looking up the admin account: %s", PQresultErrorMessage(r));
        PQclear(r);
        return false;
    }
    bool exists = PQntuples(r) == 1;
    if (exists && strcmp(PQgetvalue(r, 0, 1), "admin") == 0)
        rpc_log(RPC_LOG_INFO, "", "admin account exists: user %s (left as it is)", PQgetvalue(r, 0, 0));
    else if (exists)
        rpc_log(RPC_LOG_WARN, "", "the admin e-mail address belongs to user %s with role %s: not promoted; "
                                  "choose another --admin-email or promote it by hand",
                PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    PQclear(r);
    return exists || insert_admin(conn, service, email);
}

bool auth_bootstrap(struct auth_service *service)
{
    TK_ASSERT(service != NULL && service->config != NULL);
    PGconn *conn = PQconnectdb(service->config->database_url);
    if (PQstatus(conn) != CONNECTION_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return false;
    }
    bool ok = migrate(conn, service->config) && make_dummy_hash(service) && ensure_admin(conn, service);
    PQfinish(conn);
    return ok;
}
