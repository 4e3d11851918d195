/* auth.h — auth-svc's shared state and the pieces its files share (internal).
 *
 * A call goes: the handler (completion-queue thread) decodes and checks the
 * request without blocking, then submits a job; a worker thread (one PostgreSQL
 * connection each) runs the job's database work and password hashing, and the
 * job answers the call exactly once, with the reply or with the error it set. */
#ifndef AUTH_H
#define AUTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth_config.h"
#include "rpc_server.h"
#include "svc_daemon.h"
#include "svc_jwt.h"
#include "svc_password.h"
#include "svc_workers.h"

#define AUTH_EMAIL_BYTES 255u   /* 3..254 bytes + NUL */
#define AUTH_NAME_BYTES_MAX 200u
#define AUTH_USER_ID_BYTES 21u  /* a positive int64 in decimal + NUL */
#define AUTH_IP_KEY_BYTES 64u   /* "ip:" + an address or an IPv6 /64 prefix */
#define AUTH_REFRESH_TOKEN_RAW_BYTES 32u
#define AUTH_REFRESH_TOKEN_TEXT_BYTES 44u /* 43 base64url characters + NUL */
#define AUTH_REFRESH_HASH_BYTES 32u       /* SHA-256 */
#define AUTH_JTI_RAW_BYTES 16u
#define AUTH_WORKERS_MAX 256u
#define AUTH_DB_RETRY_AFTER_MS 1000 /* after a failed reconnect, fail fast this long */

struct auth_metrics {
    _Atomic uint64_t signups, signup_conflicts;
    _Atomic uint64_t logins, login_failures, login_locked;
    _Atomic uint64_t refreshes, refresh_rejected, refresh_reuse;
    _Atomic uint64_t logouts, token_rejected;
    _Atomic uint64_t db_unavailable, db_errors, overloaded;
};

struct auth_service {
    const struct auth_config *config;
    struct svc_jwt_keyset keys;
    struct svc_password_params password;
    char dummy_hash[SVC_PASSWORD_HASH_BYTES]; /* verified for unknown e-mails: same time as a real one */
    struct svc_workers *workers;
    struct svc_daemon daemon;
    struct auth_metrics metrics;
    _Atomic int db_up; /* 1 reachable, 0 not: /readyz and the metric follow it */
    _Atomic int64_t retry_after_ms[AUTH_WORKERS_MAX]; /* per worker: no reconnect before this */
};

struct auth_job;
typedef bool (*auth_check_fn)(struct auth_job *job); /* completion-queue thread; never blocks */
typedef void (*auth_run_fn)(struct auth_job *job);   /* worker thread */

struct auth_op {
    const char *name; /* for logs: "login" */
    auth_check_fn check;
    auth_run_fn run;
};

struct auth_job {
    struct auth_service *service;
    struct rpc_call *call;
    const struct auth_op *op;
    const ProtobufCMessage *request;
    struct svc_worker *worker; /* set when a worker runs it */
    const ProtobufCMessage *reply;
    struct rpc_error error; /* code != OK: the answer is this error */
    /* What check() worked out, for run(). */
    char email[AUTH_EMAIL_BYTES];
    char ip_key[AUTH_IP_KEY_BYTES];
    char user_id[AUTH_USER_ID_BYTES];
    uint8_t refresh_hash[AUTH_REFRESH_HASH_BYTES];
    bool has_refresh_token;
};

/* ---- auth_handlers.c: the method table and the job plumbing ---- */
extern const struct rpc_method auth_methods[];
extern const uint32_t auth_method_count;
/* Sets job->error; returns false so callers can `return auth_fail(...)`. */
bool auth_fail(struct auth_job *job, grpc_status_code code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* JSON log fields naming the call: "request_id":"..","op":"..". */
void auth_log_fields(const struct auth_job *job, char *out, size_t out_len);

/* ---- auth_input.c: checks of what clients send ---- */
bool auth_email_normalize(const char *email, char out[AUTH_EMAIL_BYTES], const char **why);
bool auth_name_check(const char *name, const char **why);
/* "" stays "" (no address); else "ip:<address>" or "ip:<prefix>/64" for IPv6. */
bool auth_ip_key(const char *client_ip, char out[AUTH_IP_KEY_BYTES], const char **why);
bool auth_user_id_check(const char *user_id, char out[AUTH_USER_ID_BYTES]);
/* The SHA-256 of a refresh token's 32 bytes; false unless 43 base64url characters. */
bool auth_refresh_token_hash(const char *token, uint8_t out[AUTH_REFRESH_HASH_BYTES]);

/* ---- auth_db.c: bounded-time queries on the worker's connection ---- */
/* Runs one parameterised statement (text parameters unless formats says 1);
 * on failure sets job->error (UNAVAILABLE when the database is unreachable or
 * too slow, INTERNAL otherwise) and returns NULL. The caller PQclears. */
PGresult *auth_db_exec(struct auth_job *job, const char *sql, int count, const char *const *values,
                       const int *lengths, const int *formats);
/* BEGIN / COMMIT; ROLLBACK is best effort and never sets an error. */
bool auth_db_begin(struct auth_job *job);
bool auth_db_commit(struct auth_job *job);
void auth_db_rollback(struct auth_job *job);
/* Flips readiness and logs the change when the database comes and goes. */
void auth_db_mark(struct auth_service *service, bool up);

/* ---- auth_tokens.c: token pairs, Refresh, Logout ---- */
/* Issues a new refresh token (family NULL: a new family) and an access token
 * for the user; sets job->reply to the TokenPair. */
bool auth_issue_tokens(struct auth_job *job, const char *user_id, const char *role, const char *email,
                       const char *family);
extern const struct auth_op auth_op_refresh, auth_op_logout;

/* ---- one file per remaining method ---- */
extern const struct auth_op auth_op_signup; /* auth_signup.c */
extern const struct auth_op auth_op_login;  /* auth_login.c */
extern const struct auth_op auth_op_me;     /* auth_me.c */

/* ---- auth_bootstrap.c: start-up work on one connection ---- */
/* Migrations (--migrate), the dummy hash, the admin account. false: logged, exit 1. */
bool auth_bootstrap(struct auth_service *service);

/* ---- auth_housekeeping.c: drops stale throttle rows and long-expired tokens ---- */
struct auth_housekeeping *auth_housekeeping_start(struct auth_service *service);
void auth_housekeeping_stop(struct auth_housekeeping *housekeeping);

/* ---- auth_metrics.c ---- */
void auth_metrics_write(FILE *out, void *ctx);

#endif
