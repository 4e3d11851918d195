/* auth_login.c — Login: password check with brute-force throttling, then a token pair.
 *
 * Throttling counts failed logins per key in login_failures: one key for the
 * e-mail address ("email:<address>", whether or not it has an account, so a lock
 * reveals nothing) and one for the client's address ("ip:<address>", an IPv6
 * client counted per /64). --login-max-failures failures within
 * --login-window-s lock the key for --login-lock-s; while either key is locked,
 * Login answers RESOURCE_EXHAUSTED "rate_limited" without looking at the
 * password. A successful login clears the e-mail's counter (not the address's:
 * one right password must not reset an attacker's count on an address).
 *
 * Timing: an unknown e-mail is verified against a dummy hash made at start with
 * the same cost, so "no such account" takes as long as "wrong password" and
 * both answer the same invalid_credentials. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "rpc_log.h"
#include "tiketi/v1/auth.pb-c.h"
#include "tk_assert.h"

#define EMAIL_KEY_BYTES (6u + AUTH_EMAIL_BYTES)

struct login_user {
    bool found;
    int locked_s; /* > 0: a key is locked for this many more seconds */
    char id[AUTH_USER_ID_BYTES];
    char hash[SVC_PASSWORD_HASH_BYTES];
    char role[SVC_JWT_ROLE_BYTES];
};

static void email_key(const struct auth_job *job, char out[EMAIL_KEY_BYTES])
{
    snprintf(out, EMAIL_KEY_BYTES, "email:%s", job->email);
}

static bool login_check(struct auth_job *job)
{
    const Tiketi__V1__LoginRequest *req = (const Tiketi__V1__LoginRequest *)job->request;
    const char *why = NULL;
    if (!auth_email_normalize(req->email, job->email, &why) || !auth_ip_key(req->client_ip, job->ip_key, &why))
        return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "%s", why);
    size_t len = strnlen(req->password, SVC_PASSWORD_BYTES_MAX + 1);
    if (len == 0 || len > SVC_PASSWORD_BYTES_MAX)
        return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request",
                         "the password must be 1..%u bytes long", SVC_PASSWORD_BYTES_MAX);
    return true;
}

/* One round trip: is either key locked, and the account if there is one. */
static bool lookup(struct auth_job *job, struct login_user *user)
{
    char key[EMAIL_KEY_BYTES];
    email_key(job, key);
    const char *params[3] = {key, job->ip_key[0] ? job->ip_key : NULL, job->email};
    PGresult *r = auth_db_exec(job,
                               "SELECT (SELECT ceil(extract(epoch FROM max(locked_until) - now()))::int"
                               "          FROM login_failures WHERE key IN ($1, $2) AND locked_until > now()),"
                               "       u.id, u.password_hash, u.role"
                               "  FROM (VALUES (1)) AS one LEFT JOIN users AS u ON lower(u.email) = $3",
                               3, params, NULL, NULL);
    if (r == NULL)
        return false;
    memset(user, 0, sizeof(*user));
    if (PQntuples(r) != 1 || PQnfields(r) != 4) { /* one row by construction; else the schema is not ours */
        rpc_log(RPC_LOG_ERROR, "", "login lookup returned %d rows of %d columns", PQntuples(r), PQnfields(r));
        PQclear(r);
        return auth_fail(job, GRPC_STATUS_INTERNAL, "internal", "an unexpected error occurred; it has been logged");
    }
    user->locked_s = PQgetisnull(r, 0, 0) ? 0 : atoi(PQgetvalue(r, 0, 0));
    user->found = !PQgetisnull(r, 0, 1);
    if (user->found) {
        snprintf(user->id, sizeof(user->id), "%s", PQgetvalue(r, 0, 1));
        snprintf(user->hash, sizeof(user->hash), "%s", PQgetvalue(r, 0, 2));
        snprintf(user->role, sizeof(user->role), "%s", PQgetvalue(r, 0, 3));
    }
    PQclear(r);
    return true;
}

/* Counts a failure on the e-mail key and the address key; a key reaching the
 * limit in its window is locked, and a key whose window or lock has passed
 * starts again at 1. */
static bool record_failure(struct auth_job *job)
{
    const struct auth_config *config = job->service->config;
    char key[EMAIL_KEY_BYTES], max[16], window[16], lock[16];
    email_key(job, key);
    snprintf(max, sizeof(max), "%u", config->login_max_failures);
    snprintf(window, sizeof(window), "%u", config->login_window_s);
    snprintf(lock, sizeof(lock), "%u", config->login_lock_s);
    const char *params[5] = {key, job->ip_key[0] ? job->ip_key : NULL, max, window, lock};
    PGresult *r = auth_db_exec(
        job,
        "INSERT INTO login_failures AS f (key, failures, window_start, locked_until)"
        " SELECT k, 1, now(), CASE WHEN $3::int <= 1 THEN now() + make_interval(secs => $5::int) END"
        "   FROM (VALUES ($1::text), ($2::text)) AS v (k) WHERE k IS NOT NULL"
        " ON CONFLICT (key) DO UPDATE SET (failures, window_start, locked_until) = ("
        "   SELECT s.n, s.w, CASE WHEN s.n >= $3::int THEN now() + make_interval(secs => $5::int)"
        "                         WHEN s.fresh THEN NULL ELSE f.locked_until END"
        "     FROM (SELECT t.fresh, CASE WHEN t.fresh THEN 1 ELSE f.failures + 1 END AS n,"
        "                  CASE WHEN t.fresh THEN now() ELSE f.window_start END AS w"
        "             FROM (SELECT f.window_start <= now() - make_interval(secs => $4::int)"
        "                          OR coalesce(f.locked_until <= now(), false) AS fresh) AS t) AS s)"
        " RETURNING key, coalesce(locked_until > now(), false)",
        5, params, NULL, NULL);
    if (r == NULL)
        return false;
    for (int i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, 1), "t") == 0) {
            atomic_fetch_add_explicit(&job->service->metrics.login_locked, 1, memory_order_relaxed);
            char fields[256];
            auth_log_fields(job, fields, sizeof(fields));
            bool is_ip = strncmp(PQgetvalue(r, i, 0), "ip:", 3) == 0;
            rpc_log(RPC_LOG_WARN, fields, "login locked for %u s after %u failures: %s%s",
                    config->login_lock_s, config->login_max_failures, is_ip ? "client " : "an e-mail address",
                    is_ip ? PQgetvalue(r, i, 0) + 3 : "");
        }
    PQclear(r);
    return true;
}

/* After a good password: clear the e-mail's failures, store a stronger hash if
 * the cost settings went up, and issue the tokens. */
static void login_success(struct auth_job *job, const struct login_user *user, const char *password)
{
    char key[EMAIL_KEY_BYTES];
    email_key(job, key);
    const char *clear[1] = {key};
    PGresult *r = auth_db_exec(job, "DELETE FROM login_failures WHERE key = $1", 1, clear, NULL, NULL);
    if (r == NULL)
        return;
    PQclear(r);
    char hash[SVC_PASSWORD_HASH_BYTES];
    if (svc_password_needs_rehash(&job->service->password, user->hash) &&
        svc_password_hash(&job->service->password, password, strlen(password), hash) == TK_OK) {
        const char *params[2] = {user->id, hash};
        r = auth_db_exec(job, "UPDATE users SET password_hash = $2 WHERE id = $1", 2, params, NULL, NULL);
        if (r == NULL)
            return;
        PQclear(r);
    }
    if (!auth_issue_tokens(job, user->id, user->role, job->email, NULL))
        return;
    atomic_fetch_add_explicit(&job->service->metrics.logins, 1, memory_order_relaxed);
    char fields[256];
    auth_log_fields(job, fields, sizeof(fields));
    rpc_log(RPC_LOG_INFO, fields, "login: user %s", user->id);
}

static void login_run(struct auth_job *job)
{
    const Tiketi__V1__LoginRequest *req = (const Tiketi__V1__LoginRequest *)job->request;
    struct login_user user = {0};
    if (!lookup(job, &user))
        goto done;
    if (user.locked_s > 0) {
        atomic_fetch_add_explicit(&job->service->metrics.login_locked, 1, memory_order_relaxed);
        auth_fail(job, GRPC_STATUS_RESOURCE_EXHAUSTED, "rate_limited",
                  "too many failed logins for this account or from this address; try again in %d s", user.locked_s);
        goto done;
    }
    bool ok = svc_password_verify(user.found ? user.hash : job->service->dummy_hash, req->password,
                                  strlen(req->password));
    if (ok && user.found) {
        login_success(job, &user, req->password);
        goto done;
    }
    atomic_fetch_add_explicit(&job->service->metrics.login_failures, 1, memory_order_relaxed);
    if (record_failure(job))
        auth_fail(job, GRPC_STATUS_UNAUTHENTICATED, "invalid_credentials", "wrong e-mail address or password");
done:
    sodium_memzero(req->password, strlen(req->password)); /* no copy lingers in the arena */
    sodium_memzero(user.hash, sizeof(user.hash));
}

const struct auth_op auth_op_login = {"login", login_check, login_run};
