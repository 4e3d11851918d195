/* auth_signup.c — SignUp: a new account with role "user".
 *
 * The e-mail address is stored lower-cased (the unique index is on lower(email)
 * too, for rows written by other tools). The hash is made before the insert, so
 * a taken address costs a hash as well: the answer (email_taken) says it anyway,
 * as API.md's 409 requires, and a pre-check would add a round trip to every
 * successful sign-up. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "rpc_log.h"
#include "tiketi/v1/auth.pb-c.h"
#include "tk_assert.h"

static bool signup_check(struct auth_job *job)
{
    const Tiketi__V1__SignUpRequest *req = (const Tiketi__V1__SignUpRequest *)job->request;
    const char *why = NULL;
    if (!auth_email_normalize(req->email, job->email, &why) || !auth_name_check(req->name, &why) ||
        svc_password_check_rules(req->password, strnlen(req->password, SVC_PASSWORD_BYTES_MAX + 1), &why) != TK_OK)
        return auth_fail(job, GRPC_STATUS_INVALID_ARGUMENT, "invalid_request", "%s", why);
    return true;
}

static void signup_run(struct auth_job *job)
{
    const Tiketi__V1__SignUpRequest *req = (const Tiketi__V1__SignUpRequest *)job->request;
    char hash[SVC_PASSWORD_HASH_BYTES];
    enum tk_status status = svc_password_hash(&job->service->password, req->password, strlen(req->password), hash);
    sodium_memzero(req->password, strlen(req->password)); /* no copy lingers in the arena */
    if (status != TK_OK) {
        auth_fail(job, GRPC_STATUS_RESOURCE_EXHAUSTED, "overloaded", "cannot hash the password now; try again");
        return;
    }
    const char *params[3] = {job->email, req->name, hash};
    PGresult *r = auth_db_exec(job,
                               "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) "
                               "ON CONFLICT DO NOTHING RETURNING id",
                               3, params, NULL, NULL);
    if (r == NULL)
        return;
    if (PQntuples(r) == 0) {
        PQclear(r);
        atomic_fetch_add_explicit(&job->service->metrics.signup_conflicts, 1, memory_order_relaxed);
        auth_fail(job, GRPC_STATUS_ALREADY_EXISTS, "email_taken", "an account with this e-mail address already exists");
        return;
    }
    Tiketi__V1__SignUpReply *reply = rpc_arena_alloc(rpc_call_arena(job->call), sizeof(*reply));
    TK_ASSERT(reply != NULL); /* a few bytes from the call's arena */
    tiketi__v1__sign_up_reply__init(reply);
    reply->user_id = rpc_arena_strdup(rpc_call_arena(job->call), PQgetvalue(r, 0, 0));
    PQclear(r);
    TK_ASSERT(reply->user_id != NULL);
    atomic_fetch_add_explicit(&job->service->metrics.signups, 1, memory_order_relaxed);
    char fields[256];
    auth_log_fields(job, fields, sizeof(fields));
    rpc_log(RPC_LOG_INFO, fields, "account created: user %s", reply->user_id);
    job->reply = &reply->base;
}

const struct auth_op auth_op_signup = {"signup", signup_check, signup_run};
