/* auth_config.c — the settings table of auth-svc (auth_config.h). */
#include "auth_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_flags.h"
#include "svc_password.h"
#include "tk_assert.h"

static const char summary[] =
    "The TIKETI account service: sign-up, login (argon2id passwords, brute-force throttling),\n"
    "HS256 JWT access tokens with key rotation, rotating refresh tokens and logout. Serves\n"
    "tiketi.v1.Auth and grpc.health.v1.Health over gRPC, Prometheus metrics over HTTP.";

static void defaults(struct auth_config *c)
{
    /* svc_common_flags has filled c->common; everything else starts here. */
    snprintf(c->migrations_dir, sizeof(c->migrations_dir), "infra/db/migrations");
    snprintf(c->jwt_issuer, sizeof(c->jwt_issuer), "tiketi-auth");
    snprintf(c->jwt_audience, sizeof(c->jwt_audience), "tiketi");
    c->jwt_leeway_s = 30;
    c->access_ttl_s = 900;
    c->refresh_ttl_s = 30u * 24u * 3600u;
    c->login_max_failures = 5;
    c->login_window_s = 900;
    c->login_lock_s = 900;
    struct svc_password_params password;
    svc_password_params_default(&password);
    c->password_opslimit = password.opslimit;
    c->password_memlimit_kib = password.memlimit_kib;
    /* The local stack's contract (API.md): ./tiketi exports TIKETI_ADMIN_*. */
    const char *email = getenv("TIKETI_ADMIN_EMAIL");
    const char *pass = getenv("TIKETI_ADMIN_PASSWORD");
    snprintf(c->admin_email, sizeof(c->admin_email), "%s", email && email[0] ? email : AUTH_ADMIN_EMAIL_DEFAULT);
    snprintf(c->admin_password, sizeof(c->admin_password), "%s", pass && pass[0] ? pass : AUTH_ADMIN_PASSWORD_DEFAULT);
    snprintf(c->admin_name, sizeof(c->admin_name), "Administrator");
    c->db_timeout_ms = 3000;
    c->housekeeping_s = 600;
}

#define STR(field) .type = SVC_FLAG_STRING, .target = c->field, .target_len = sizeof(c->field)
#define U32(field, lo, hi) .type = SVC_FLAG_U32, .target = &c->field, .min = (lo), .max = (hi)
#define BOOL(field) .type = SVC_FLAG_BOOL, .target = &c->field

static size_t auth_flags(struct auth_config *c, struct svc_flag *f)
{
    size_t n = 0;
    f[n++] = (struct svc_flag){"database-url", "AUTH_DATABASE_URL", "PostgreSQL URL (postgresql://user@host:port/db)",
                               STR(database_url), .required = true, .secret = true};
    f[n++] = (struct svc_flag){"migrate", "AUTH_MIGRATE", "apply the SQL migrations at start (tests, local stack)",
                               BOOL(migrate)};
    f[n++] = (struct svc_flag){"migrations-dir", "AUTH_MIGRATIONS_DIR", "NNNN_name.sql files (infra/db/migrations)",
                               STR(migrations_dir)};
    f[n++] = (struct svc_flag){"jwt-keys", "AUTH_JWT_KEYS",
                               "signing keys: kid=/path/file or kid=env:VAR, comma-separated", STR(jwt_keys),
                               .required = true};
    f[n++] = (struct svc_flag){"jwt-current-kid", "AUTH_JWT_CURRENT_KID", "kid that signs (needed with several keys)",
                               STR(jwt_current_kid)};
    f[n++] = (struct svc_flag){"jwt-issuer", "AUTH_JWT_ISSUER", "iss claim (default tiketi-auth)", STR(jwt_issuer)};
    f[n++] = (struct svc_flag){"jwt-audience", "AUTH_JWT_AUDIENCE", "aud claim (default tiketi)", STR(jwt_audience)};
    f[n++] = (struct svc_flag){"jwt-leeway-s", "AUTH_JWT_LEEWAY_S", "clock skew allowed on exp/nbf/iat (default 30)",
                               U32(jwt_leeway_s, 0, SVC_JWT_LEEWAY_S_MAX)};
    f[n++] = (struct svc_flag){"access-ttl-s", "AUTH_ACCESS_TTL_S", "access token lifetime (default 900)",
                               U32(access_ttl_s, 1, 86400)};
    f[n++] = (struct svc_flag){"refresh-ttl-s", "AUTH_REFRESH_TTL_S", "refresh token lifetime (default 2592000, 30 d)",
                               U32(refresh_ttl_s, 60, 366u * 86400u)};
    f[n++] = (struct svc_flag){"login-max-failures", "AUTH_LOGIN_MAX_FAILURES",
                               "failed logins per e-mail or address before a lock (default 5)",
                               U32(login_max_failures, 1, 1000)};
    f[n++] = (struct svc_flag){"login-window-s", "AUTH_LOGIN_WINDOW_S", "window the failures are counted in (900)",
                               U32(login_window_s, 1, 86400)};
    f[n++] = (struct svc_flag){"login-lock-s", "AUTH_LOGIN_LOCK_S", "how long a lock lasts (default 900)",
                               U32(login_lock_s, 1, 86400)};
    f[n++] = (struct svc_flag){"password-opslimit", "AUTH_PASSWORD_OPSLIMIT", "argon2id passes (default 2)",
                               U32(password_opslimit, SVC_PASSWORD_OPSLIMIT_MIN, SVC_PASSWORD_OPSLIMIT_MAX)};
    f[n++] = (struct svc_flag){"password-memlimit-kib", "AUTH_PASSWORD_MEMLIMIT_KIB",
                               "argon2id memory per hash, KiB (default 65536)",
                               U32(password_memlimit_kib, SVC_PASSWORD_MEMLIMIT_KIB_MIN,
                                   SVC_PASSWORD_MEMLIMIT_KIB_MAX)};
    f[n++] = (struct svc_flag){"admin-email", "AUTH_ADMIN_EMAIL",
                               "admin made at start if missing (default $TIKETI_ADMIN_EMAIL or "
                               AUTH_ADMIN_EMAIL_DEFAULT "; empty: none)",
                               STR(admin_email)};
    f[n++] = (struct svc_flag){"admin-password", "AUTH_ADMIN_PASSWORD",
                               "its password (default $TIKETI_ADMIN_PASSWORD or the local-stack one)",
                               STR(admin_password), .secret = true};
    f[n++] = (struct svc_flag){"admin-name", "AUTH_ADMIN_NAME", "its display name (default Administrator)",
                               STR(admin_name)};
    f[n++] = (struct svc_flag){"db-timeout-ms", "AUTH_DB_TIMEOUT_MS", "longest wait for one database statement (3000)",
                               U32(db_timeout_ms, 100, 60000)};
    f[n++] = (struct svc_flag){"housekeeping-s", "AUTH_HOUSEKEEPING_S",
                               "drop stale throttle rows and expired tokens this often (600; 0 never)",
                               U32(housekeeping_s, 0, 86400)};
    return n;
}

static int check(const struct auth_config *c)
{
    struct svc_password_params password = {c->password_opslimit, c->password_memlimit_kib};
    const char *why = NULL;
    if (svc_password_params_check(&password, &why) != TK_OK) {
        fprintf(stderr, "auth-svc: %s\n", why);
        return -1;
    }
    if (c->admin_email[0] != '\0' &&
        svc_password_check_rules(c->admin_password, strlen(c->admin_password), &why) != TK_OK) {
        fprintf(stderr, "auth-svc: --admin-password (AUTH_ADMIN_PASSWORD): %s\n", why);
        return -1;
    }
    if (c->admin_email[0] != '\0' && (c->admin_name[0] == '\0' || strlen(c->admin_name) > 200)) {
        fprintf(stderr, "auth-svc: --admin-name must be 1..200 bytes\n");
        return -1;
    }
    return 0;
}

int auth_config_parse(struct auth_config *c, int argc, char **argv)
{
    TK_ASSERT(c != NULL);
    memset(c, 0, sizeof(*c));
    struct svc_flag flags[SVC_FLAGS_MAX];
    size_t n = svc_common_flags(&c->common, "AUTH", "127.0.0.1:3010", "127.0.0.1:9010", flags);
    defaults(c);
    n += auth_flags(c, flags + n);
    TK_ASSERT(n <= SVC_FLAGS_MAX);
    int rc = svc_flags_parse("auth-svc", summary, flags, n, argc, argv, &c->check_only);
    if (rc != 0)
        return rc;
    return check(c);
}
