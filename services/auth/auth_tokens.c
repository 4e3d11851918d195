/* auth_tokens.c — token pairs, Refresh (rotation with reuse detection) and Logout.
 *
 * A refresh token is 32 random bytes in base64url (43 characters). Only its
 * SHA-256 is stored, so the table is useless to a thief. Every login starts a
 * family (a UUID); every refresh marks the presented token rotated and issues
 * the next one in the same family, with a fresh --refresh-ttl-s. A rotated token
 * presented again means two parties hold the family (the client and a thief, in
 * some order): the whole family is revoked and both must log in again. Logout
 * revokes a family, or all of a user's tokens. Rows stay until long after they
 * expire (auth_housekeeping.c) so reuse stays detectable for their whole life.
 *
 * Refresh runs in one transaction with the token's row locked (FOR UPDATE), so
 * two concurrent refreshes of one token cannot both succeed: the second sees it
 * rotated and revokes the family, which is the safe reading of a race. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "rpc_log.h"
#include "tiketi/v1/auth.pb-c.h"
#include "tiketi/v1/common.pb-c.h"
#include "tk_assert.h"

static void random_base64url(char *out, size_t out_len, size_t raw_len, uint8_t *raw)
{
    TK_ASSERT(out_len >= sodium_base64_ENCODED_LEN(raw_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
    randombytes_buf(raw, raw_len);
    sodium_bin2base64(out, out_len, raw, raw_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static char *sign_access_token(struct auth_job *job, const char *user_id, const char *role, const char *email)
{
    struct svc_jwt_claims claims;
    memset(&claims, 0, sizeof(claims));
    snprintf(claims.sub, sizeof(claims.sub), "%s", user_id);
    snprintf(claims.role, sizeof(claims.role), "%s", role);
    if (strlen(email) < sizeof(claims.email))
        memcpy(claims.email, email, strlen(email) + 1);
    uint8_t jti[AUTH_JTI_RAW_BYTES];
    random_base64url(claims.jti, sizeof(claims.jti), sizeof(jti), jti);
    claims.iat = claims.nbf = (int64_t)time(NULL);
    claims.exp = claims.iat + job->service->config->access_ttl_s;
    char *token = rpc_arena_alloc(rpc_call_arena(job->call), SVC_JWT_TOKEN_BYTES_MAX + 1);
    /* The claims are built here from checked values and the key was checked at
     * start, so only memory can fail (libjwt allocates). */
    if (token == NULL || svc_jwt_sign(&job->service->keys, &claims, token, SVC_JWT_TOKEN_BYTES_MAX + 1) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot sign an access token for user %s (out of memory?)", user_id);
        auth_fail(job, GRPC_STATUS_INTERNAL, "internal", "an unexpected error occurred; it has been logged");
        return NULL;
    }
    TK_ASSERT(strncmp(token, "eyJ", 3) == 0); /* base64url of '{"' */
    return token;
}

bool auth_issue_tokens(struct auth_job *job, const char *user_id, const char *role, const char *email,
                       const char *family)
{
    TK_ASSERT(user_id != NULL && role != NULL && email != NULL);
    uint8_t raw[AUTH_REFRESH_TOKEN_RAW_BYTES], hash[AUTH_REFRESH_HASH_BYTES];
    char refresh[AUTH_REFRESH_TOKEN_TEXT_BYTES], ttl[16];
    random_base64url(refresh, sizeof(refresh), sizeof(raw), raw);
    crypto_hash_sha256(hash, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    snprintf(ttl, sizeof(ttl), "%u", job->service->config->refresh_ttl_s);
    const char *params[4] = {user_id, family, (const char *)hash, ttl};
    const int lengths[4] = {0, 0, sizeof(hash), 0};
    const int formats[4] = {0, 0, 1, 0};
    PGresult *r = auth_db_exec(job,
                               "INSERT INTO refresh_tokens (user_id, family, token_hash, expires_at)"
                               " VALUES ($1::bigint, coalesce($2::uuid, gen_random_uuid()), $3,"
                               "         now() + make_interval(secs => $4::int))",
                               4, params, lengths, formats);
    if (r == NULL)
        return false;
    PQclear(r);
    struct rpc_arena *arena = rpc_call_arena(job->call);
    Tiketi__V1__TokenPair *pair = rpc_arena_alloc(arena, sizeof(*pair));
    TK_ASSERT(pair != NULL);
    tiketi__v1__token_pair__init(pair);
    pair->access_token = sign_access_token(job, user_id, role, email);
    if (pair->access_token == NULL)
        return false;
    pair->refresh_token = rpc_arena_strdup(arena, refresh);
    TK_ASSERT(pair->refresh_token != NULL);
    sodium_memzero(refresh, sizeof(refresh));
    pair->expires_in = job->service->config->access_ttl_s;
    pair->refresh_expires_in = job->service->config->refresh_ttl_s;
    job->reply = &pair->base;
    return true;
}

/* ---- Refresh ---- */

static bool refresh_check(struct auth_job *job)
{
    const Tiketi__V1__RefreshRequest *req = (const Tiketi__V1__RefreshRequest *)job->request;
    if (req->refresh_token[0] == '\0')
        return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "refresh_token is required");
    if (!auth_refresh_token_hash(req->refresh_token, job->refresh_hash))
        return auth_fail(job, GRPC_STATUS_UNAUTHENTICATED, "invalid_refresh_token", "the refresh token is not valid");
    return true;
}

static bool refresh_rejected(struct auth_job *job, const char *name, const char *message)
{
    atomic_fetch_add_explicit(&job->service->metrics.refresh_rejected, 1, memory_order_relaxed);
    return auth_fail(job, GRPC_STATUS_UNAUTHENTICATED, name, "%s", message);
}

/* A rotated token came back: revoke its family (inside the open transaction). */
static void revoke_family_on_reuse(struct auth_job *job, const char *family, const char *user_id)
{
    const char *params[1] = {family};
    PGresult *r = auth_db_exec(job,
                               "UPDATE refresh_tokens SET revoked_at = now()"
                               " WHERE family = $1::uuid AND revoked_at IS NULL",
                               1, params, NULL, NULL);
    if (r == NULL)
        return;
    PQclear(r);
    if (!auth_db_commit(job))
        return;
    atomic_fetch_add_explicit(&job->service->metrics.refresh_reuse, 1, memory_order_relaxed);
    char fields[256];
    auth_log_fields(job, fields, sizeof(fields));
    rpc_log(RPC_LOG_WARN, fields, "refresh token reused: its family is revoked (user %s)", user_id);
    refresh_rejected(job, "refresh_token_reused",
                     "this refresh token was already used; every session of this login is revoked, log in again");
}

/* Row: id, user_id, family, revoked, rotated, expired, role, email. */
static void refresh_row(struct auth_job *job, PGresult *row)
{
    char id[AUTH_USER_ID_BYTES], user_id[AUTH_USER_ID_BYTES], family[40], role[SVC_JWT_ROLE_BYTES];
    char email[AUTH_EMAIL_BYTES];
    snprintf(id, sizeof(id), "%s", PQgetvalue(row, 0, 0));
    snprintf(user_id, sizeof(user_id), "%s", PQgetvalue(row, 0, 1));
    snprintf(family, sizeof(family), "%s", PQgetvalue(row, 0, 2));
    bool revoked = PQgetvalue(row, 0, 3)[0] == 't', rotated = PQgetvalue(row, 0, 4)[0] == 't';
    bool expired = PQgetvalue(row, 0, 5)[0] == 't';
    snprintf(role, sizeof(role), "%s", PQgetvalue(row, 0, 6));
    snprintf(email, sizeof(email), "%s", PQgetvalue(row, 0, 7));
    PQclear(row);
    if (revoked) {
        refresh_rejected(job, "refresh_token_revoked", "this refresh token was revoked; log in again");
        return;
    }
    if (rotated) {
        revoke_family_on_reuse(job, family, user_id);
        return;
    }
    if (expired) {
        refresh_rejected(job, "refresh_token_expired", "this refresh token has expired; log in again");
        return;
    }
    const char *params[1] = {id};
    PGresult *r = auth_db_exec(job, "UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1::bigint", 1, params,
                               NULL, NULL);
    if (r == NULL)
        return;
    PQclear(r);
    if (!auth_issue_tokens(job, user_id, role, email, family) || !auth_db_commit(job))
        return;
    atomic_fetch_add_explicit(&job->service->metrics.refreshes, 1, memory_order_relaxed);
}

static void refresh_run(struct auth_job *job)
{
    if (!auth_db_begin(job))
        return;
    const char *params[1] = {(const char *)job->refresh_hash};
    const int lengths[1] = {AUTH_REFRESH_HASH_BYTES};
    const int formats[1] = {1};
    PGresult *r = auth_db_exec(job,
                               "SELECT rt.id, rt.user_id, rt.family, rt.revoked_at IS NOT NULL,"
                               "       rt.rotated_at IS NOT NULL, rt.expires_at <= now(), u.role, u.email"
                               "  FROM refresh_tokens AS rt JOIN users AS u ON u.id = rt.user_id"
                               " WHERE rt.token_hash = $1 FOR UPDATE OF rt",
                               1, params, lengths, formats);
    if (r == NULL)
        return; /* job_main rolls back */
    if (PQntuples(r) == 0) {
        PQclear(r);
        refresh_rejected(job, "invalid_refresh_token", "the refresh token is not valid");
        return;
    }
    refresh_row(job, r); /* clears r */
}

const struct auth_op auth_op_refresh = {"refresh", refresh_check, refresh_run};

/* ---- Logout ---- */

static bool logout_check(struct auth_job *job)
{
    const Tiketi__V1__LogoutRequest *req = (const Tiketi__V1__LogoutRequest *)job->request;
    job->has_refresh_token = req->refresh_token[0] != '\0';
    if (job->has_refresh_token && !auth_refresh_token_hash(req->refresh_token, job->refresh_hash))
        return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "refresh_token is malformed");
    if (req->user_id[0] != '\0' && !auth_user_id_check(req->user_id, job->user_id))
        return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "user_id must be a positive integer");
    if (!job->has_refresh_token && job->user_id[0] == '\0')
        return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request",
                         "give refresh_token (revokes that login) or user_id (revokes every login)");
    return true;
}

static void logout_run(struct auth_job *job)
{
    PGresult *r;
    if (job->has_refresh_token) {
        const char *params[2] = {(const char *)job->refresh_hash, job->user_id[0] ? job->user_id : NULL};
        const int lengths[2] = {AUTH_REFRESH_HASH_BYTES, 0};
        const int formats[2] = {1, 0};
        r = auth_db_exec(job,
                         "UPDATE refresh_tokens SET revoked_at = now()"
                         " WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1"
                         "                    AND ($2::bigint IS NULL OR user_id = $2::bigint))"
                         "   AND revoked_at IS NULL",
                         2, params, lengths, formats);
    } else {
        const char *params[1] = {job->user_id};
        r = auth_db_exec(job, "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1::bigint"
                              " AND revoked_at IS NULL",
                         1, params, NULL, NULL);
    }
    if (r == NULL)
        return;
    char fields[256];
    auth_log_fields(job, fields, sizeof(fields));
    rpc_log(RPC_LOG_INFO, fields, "logout: %s refresh token(s) revoked", PQcmdTuples(r));
    PQclear(r);
    atomic_fetch_add_explicit(&job->service->metrics.logouts, 1, memory_order_relaxed);
    Tiketi__V1__Empty *reply = rpc_arena_alloc(rpc_call_arena(job->call), sizeof(*reply));
    TK_ASSERT(reply != NULL);
    tiketi__v1__empty__init(reply);
    job->reply = &reply->base;
}

const struct auth_op auth_op_logout = {"logout", logout_check, logout_run};
