/* auth_handlers.c — tiketi.v1.Auth's method table and the handler -> job -> answer path.
 *
 * Every method is an auth_op: check() runs on the completion-queue thread and
 * refuses bad input at once (no queueing for a malformed request), run() runs
 * on a worker with its database connection. The job lives in the call's arena,
 * so it needs no free and dies with the call; it answers exactly once, at the
 * end of job_main, with the reply or the error run() set. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "rpc_log.h"
#include "tiketi/v1/auth.pb-c.h"
#include "tk_assert.h"

bool auth_fail(struct auth_job *job, grpc_status_code code, const char *name, const char *fmt, ...)
{
    TK_ASSERT(job != NULL && code != GRPC_STATUS_OK && name != NULL);
    TK_ASSERT(job->error.code == GRPC_STATUS_OK); /* the first failure is the answer */
    memset(&job->error, 0, sizeof(job->error));
    job->error.code = code;
    snprintf(job->error.name, sizeof(job->error.name), "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->error.message, sizeof(job->error.message), fmt, ap);
    va_end(ap);
    return false;
}

void auth_log_fields(const struct auth_job *job, char *out, size_t out_len)
{
    snprintf(out, out_len, "\"request_id\":\"%s\",\"op\":\"%s\"", job->call ? rpc_call_request_id(job->call) : "",
             job->op ? job->op->name : "housekeeping");
}

static void answer(struct auth_job *job)
{
    if (job->error.code != GRPC_STATUS_OK) {
        rpc_fail(job->call, &job->error);
        return;
    }
    TK_ASSERT(job->reply != NULL); /* run() either fails or replies */
    rpc_reply(job->call, job->reply);
}

static void job_main(struct svc_worker *worker, void *ctx)
{
    struct auth_job *job = ctx;
    TK_ASSERT(job != NULL && job->op != NULL && worker != NULL);
    job->worker = worker;
    if (rpc_call_deadline_ms(job->call) <= 0)
        auth_fail(job, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline_exceeded",
                  "the call waited past its deadline for a free worker");
    else
        job->op->run(job);
    /* A run that failed inside a transaction leaves it to us to end it. */
    if (worker->pg != NULL && PQstatus(worker->pg) == CONNECTION_OK &&
        PQtransactionStatus(worker->pg) != PQTRANS_IDLE)
        auth_db_rollback(job);
    answer(job);
}

static void dispatch(struct rpc_call *call, const ProtobufCMessage *request, void *ctx, const struct auth_op *op)
{
    struct auth_service *service = ctx;
    TK_ASSERT(service != NULL && request != NULL);
    struct auth_job *job = rpc_arena_alloc(rpc_call_arena(call), sizeof(*job));
    if (job == NULL) {
        rpc_fail_status(call, TK_ERR_FULL, "the request is too large");
        return;
    }
    *job = (struct auth_job){.service = service, .call = call, .op = op, .request = request};
    if (!op->check(job)) {
        TK_ASSERT(job->error.code != GRPC_STATUS_OK);
        rpc_fail(call, &job->error);
        return;
    }
    if (svc_workers_submit(service->workers, job_main, job) != TK_OK) {
        atomic_fetch_add_explicit(&service->metrics.overloaded, 1, memory_order_relaxed);
        auth_fail(job, GRPC_STATUS_RESOURCE_EXHAUSTED, "overloaded",
                  "the account service is overloaded; try again shortly");
        rpc_fail(call, &job->error);
    }
}

static void on_signup(struct rpc_call *call, const ProtobufCMessage *request, void *ctx)
{
    dispatch(call, request, ctx, &auth_op_signup);
}

static void on_login(struct rpc_call *call, const ProtobufCMessage *request, void *ctx)
{
    dispatch(call, request, ctx, &auth_op_login);
}

static void on_refresh(struct rpc_call *call, const ProtobufCMessage *request, void *ctx)
{
    dispatch(call, request, ctx, &auth_op_refresh);
}

static void on_logout(struct rpc_call *call, const ProtobufCMessage *request, void *ctx)
{
    dispatch(call, request, ctx, &auth_op_logout);
}

static void on_me(struct rpc_call *call, const ProtobufCMessage *request, void *ctx)
{
    dispatch(call, request, ctx, &auth_op_me);
}

const struct rpc_method auth_methods[] = {
    {"/tiketi.v1.Auth/SignUp", &tiketi__v1__sign_up_request__descriptor, on_signup, false},
    {"/tiketi.v1.Auth/Login", &tiketi__v1__login_request__descriptor, on_login, false},
    {"/tiketi.v1.Auth/Refresh", &tiketi__v1__refresh_request__descriptor, on_refresh, false},
    {"/tiketi.v1.Auth/Logout", &tiketi__v1__logout_request__descriptor, on_logout, false},
    {"/tiketi.v1.Auth/Me", &tiketi__v1__me_request__descriptor, on_me, false},
};
const uint32_t auth_method_count = sizeof(auth_methods) / sizeof(auth_methods[0]);
