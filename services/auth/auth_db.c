/* auth_db.c — database statements with a bound on their time (auth.h).
 *
 * libpq's blocking calls wait forever on a server that stopped answering (a
 * paused VM, SIGSTOP, a network black hole: TCP keeps the connection "up"), and
 * a worker stuck there would never answer its call. So every statement is sent
 * with PQsendQueryParams and its result awaited with poll() for at most
 * --db-timeout-ms. On timeout the socket
 * is shut down so libpq drops the connection (a cancel request would go to the
 * same silent server and wait just as long); the worker reconnects on its next
 * job, with PGCONNECT_TIMEOUT bounding that (main sets it), and for a second
 * after a failed reconnect its jobs fail at once instead of queueing behind
 * more reconnect attempts. Either way the client gets UNAVAILABLE quickly.
 *
 * Errors: connection-class failures and timeouts are UNAVAILABLE
 * ("database_unavailable"); any other SQL error is a bug or a schema mismatch:
 * INTERNAL, logged with PostgreSQL's primary message and SQLSTATE (never the
 * parameters, which may carry hashes). */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "auth.h"
#include "rpc_log.h"
#include "tk_assert.h"

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void auth_db_mark(struct auth_service *service, bool up)
{
    int was = atomic_exchange(&service->db_up, up ? 1 : 0);
    if (was == (up ? 1 : 0))
        return;
    if (up)
        rpc_log(RPC_LOG_INFO, "", "database reachable again");
    else
        rpc_log(RPC_LOG_WARN, "", "database unreachable: calls that need it answer UNAVAILABLE");
    if (service->daemon.health == NULL || service->daemon.server == NULL)
        return;
    rpc_health_set_serving(service->daemon.health, up);
    /* Shutdown flips health to NOT_SERVING; never undo that. */
    if (up && rpc_server_shutting_down(service->daemon.server))
        rpc_health_set_serving(service->daemon.health, false);
}

static bool unavailable(struct auth_job *job, const char *what)
{
    atomic_fetch_add_explicit(&job->service->metrics.db_unavailable, 1, memory_order_relaxed);
    auth_db_mark(job->service, false);
    char fields[256];
    auth_log_fields(job, fields, sizeof(fields));
    rpc_log(RPC_LOG_WARN, fields, "database unavailable: %s", what);
    return auth_fail(job, GRPC_STATUS_UNAVAILABLE, "database_unavailable",
                     "the account database is unavailable; try again shortly");
}

/* A usable connection, reconnecting at most once per AUTH_DB_RETRY_AFTER_MS. */
static bool connection_ready(struct auth_job *job)
{
    struct svc_worker *worker = job->worker;
    TK_ASSERT(worker != NULL && worker->index < AUTH_WORKERS_MAX);
    if (worker->pg != NULL && PQstatus(worker->pg) == CONNECTION_OK)
        return true;
    _Atomic int64_t *retry_after = &job->service->retry_after_ms[worker->index];
    if (monotonic_ms() < atomic_load(retry_after))
        return unavailable(job, "reconnect failed moments ago");
    if (svc_worker_pg_ok(worker))
        return true;
    atomic_store(retry_after, monotonic_ms() + AUTH_DB_RETRY_AFTER_MS);
    return unavailable(job, worker->pg != NULL ? PQerrorMessage(worker->pg) : "no connection");
}

/* Waits until libpq has a whole result (true) or the deadline passes (false). */
static bool wait_ready(PGconn *pg, int64_t deadline_ms)
{
    while (PQisBusy(pg)) {
        int64_t left = deadline_ms - monotonic_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0)
            return false;
        if (rc < 0 || !PQconsumeInput(pg))
            return true; /* PQgetResult reports the broken connection */
    }
    return true;
}

/* Makes libpq drop a connection that stopped answering. */
static void drop_connection(PGconn *pg)
{
    int fd = PQsocket(pg);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    PQconsumeInput(pg); /* reads EOF: the connection becomes CONNECTION_BAD */
}

/* A call whose client has given up gets no new statement. A statement already
 * sent is waited for up to --db-timeout-ms whatever the call's deadline, so a
 * short client deadline never costs a healthy connection. */
static bool call_alive(struct auth_job *job)
{
    if (job->call == NULL || rpc_call_deadline_ms(job->call) > 0)
        return true;
    return auth_fail(job, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline_exceeded",
                     "the call's deadline passed before its work was done");
}

static PGresult *failed_result(struct auth_job *job, PGresult *result)
{
    const char *state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;
    bool connection = PQstatus(job->worker->pg) != CONNECTION_OK || state == NULL ||
                      strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
                      strncmp(state, "53", 2) == 0 || strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0;
    if (connection) {
        unavailable(job, result ? PQresultErrorMessage(result) : PQerrorMessage(job->worker->pg));
    } else {
        atomic_fetch_add_explicit(&job->service->metrics.db_errors, 1, memory_order_relaxed);
        char fields[256];
        auth_log_fields(job, fields, sizeof(fields));
        const char *primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
        rpc_log(RPC_LOG_ERROR, fields, "database error %s: %s", state, primary ? primary : "(no message)");
        auth_fail(job, GRPC_STATUS_INTERNAL, "internal", "an unexpected error occurred; it has been logged");
    }
    PQclear(result);
    return NULL;
}

static PGresult *exec_statement(struct auth_job *job, const char *sql, int count, const char *const *values,
                                const int *lengths, const int *formats)
{
    TK_ASSERT(job != NULL && sql != NULL && count >= 0);
    TK_ASSERT(job->error.code == GRPC_STATUS_OK); /* no statement after a failure */
    if (!connection_ready(job))
        return NULL;
    PGconn *pg = job->worker->pg;
    if (!PQsendQueryParams(pg, sql, count, NULL, values, lengths, formats, 0))
        return failed_result(job, NULL);
    int64_t deadline = monotonic_ms() + (int64_t)job->service->config->db_timeout_ms;
    PGresult *result = NULL;
    for (;;) {
        if (!wait_ready(pg, deadline)) {
            PQclear(result);
            drop_connection(pg);
            unavailable(job, "no answer within the statement timeout; connection dropped");
            return NULL;
        }
        PGresult *next = PQgetResult(pg);
        if (next == NULL)
            break;
        if (result == NULL)
            result = next;
        else
            PQclear(next); /* one statement: nothing else is expected */
    }
    ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        return failed_result(job, result);
    auth_db_mark(job->service, true);
    return result;
}

PGresult *auth_db_exec(struct auth_job *job, const char *sql, int count, const char *const *values,
                       const int *lengths, const int *formats)
{
    if (!call_alive(job))
        return NULL;
    return exec_statement(job, sql, count, values, lengths, formats);
}

bool auth_db_begin(struct auth_job *job)
{
    PGresult *r = auth_db_exec(job, "BEGIN", 0, NULL, NULL, NULL);
    PQclear(r);
    return r != NULL;
}

bool auth_db_commit(struct auth_job *job)
{
    PGresult *r = auth_db_exec(job, "COMMIT", 0, NULL, NULL, NULL);
    PQclear(r);
    return r != NULL;
}

void auth_db_rollback(struct auth_job *job)
{
    PGconn *pg = job->worker != NULL ? job->worker->pg : NULL;
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK || PQtransactionStatus(pg) == PQTRANS_IDLE)
        return;
    /* Best effort, bounded like any statement, and never the call's answer. */
    struct rpc_error saved = job->error;
    job->error.code = GRPC_STATUS_OK;
    PQclear(exec_statement(job, "ROLLBACK", 0, NULL, NULL, NULL)); /* even past the call's deadline */
    job->error = saved;
}
