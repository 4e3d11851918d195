/* auth_me.c — Me: the account behind a user id or an access token.
 *
 * The edge verifies access tokens itself and passes user_id; a caller without
 * that (tests, tools) passes the access token and auth-svc verifies it with the
 * same svc_jwt_verify the edge uses. The token check is CPU-only (microseconds),
 * so it runs in check() on the completion-queue thread. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "rpc_log.h"
#include "tiketi/v1/auth.pb-c.h"
#include "tk_assert.h"

static bool me_check(struct auth_job *job)
{
    const Tiketi__V1__MeRequest *req = (const Tiketi__V1__MeRequest *)job->request;
    if (req->user_id[0] != '\0' && !auth_user_id_check(req->user_id, job->user_id))
        return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "user_id must be a positive integer");
    if (req->access_token[0] == '\0') {
        if (job->user_id[0] == '\0')
            return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "give user_id or access_token");
        return true;
    }
    struct svc_jwt_claims claims;
    const char *reason = NULL;
    if (svc_jwt_verify(&job->service->keys, req->access_token, (int64_t)time(NULL), &claims, &reason) != TK_OK) {
        atomic_fetch_add_explicit(&job->service->metrics.token_rejected, 1, memory_order_relaxed);
        char fields[256];
        auth_log_fields(job, fields, sizeof(fields));
        rpc_log(RPC_LOG_INFO, fields, "access token refused: %s", reason);
        return auth_fail(job, GRPC_STATUS_UNAUTHENTICATED, "invalid_token", "the access token is invalid or expired");
    }
    char subject[AUTH_USER_ID_BYTES];
    if (!auth_user_id_check(claims.sub, subject))
        return auth_fail(job, GRPC_STATUS_UNAUTHENTICATED, "invalid_token", "the access token is invalid or expired");
    if (job->user_id[0] != '\0' && strcmp(job->user_id, subject) != 0)
        return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request",
                         "user_id and the access token name different users");
    memcpy(job->user_id, subject, sizeof(subject));
    return true;
}

static void me_run(struct auth_job *job)
{
    const char *params[1] = {job->user_id};
    PGresult *r = auth_db_exec(job, "SELECT id, email, name, role FROM users WHERE id = $1::bigint", 1, params, NULL,
                               NULL);
    if (r == NULL)
        return;
    if (PQntuples(r) == 0) {
        PQclear(r);
        auth_fail(job, GRPC_STATUS_NOT_FOUND, "user_not_found", "no such user");
        return;
    }
    struct rpc_arena *arena = rpc_call_arena(job->call);
    Tiketi__V1__User *user = rpc_arena_alloc(arena, sizeof(*user));
    TK_ASSERT(user != NULL);
    tiketi__v1__user__init(user);
    user->user_id = rpc_arena_strdup(arena, PQgetvalue(r, 0, 0));
    user->email = rpc_arena_strdup(arena, PQgetvalue(r, 0, 1));
    user->name = rpc_arena_strdup(arena, PQgetvalue(r, 0, 2));
    user->role = rpc_arena_strdup(arena, PQgetvalue(r, 0, 3));
    PQclear(r);
    TK_ASSERT(user->user_id && user->email && user->name && user->role);
    job->reply = &user->base;
}

const struct auth_op auth_op_me = {"me", me_check, me_run};
