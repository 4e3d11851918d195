/* auth_metrics.c — auth-svc's figures in Prometheus text (beside rpc's per-method ones).
 *
 * Counters only move; dashboards take rates. A rising tiketi_auth_login_locked_total
 * or tiketi_auth_refresh_reuse_total is the signal of an attack or stolen tokens. */
#include <stdio.h>

#include "auth.h"

static void counter(FILE *out, const char *name, const char *help, _Atomic uint64_t *value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
            (unsigned long long)atomic_load_explicit(value, memory_order_relaxed));
}

void auth_metrics_write(FILE *out, void *ctx)
{
    struct auth_service *service = ctx;
    struct auth_metrics *m = &service->metrics;
    counter(out, "tiketi_auth_signups_total", "Accounts created.", &m->signups);
    counter(out, "tiketi_auth_signup_conflicts_total", "Sign-ups refused: e-mail address taken.", &m->signup_conflicts);
    counter(out, "tiketi_auth_logins_total", "Successful logins.", &m->logins);
    counter(out, "tiketi_auth_login_failures_total", "Logins refused: wrong password or unknown e-mail.",
            &m->login_failures);
    counter(out, "tiketi_auth_login_locked_total", "Locks set, and logins refused while locked.", &m->login_locked);
    counter(out, "tiketi_auth_refreshes_total", "Refresh tokens rotated.", &m->refreshes);
    counter(out, "tiketi_auth_refresh_rejected_total", "Refreshes refused (unknown, expired, revoked, reused).",
            &m->refresh_rejected);
    counter(out, "tiketi_auth_refresh_reuse_total", "Rotated refresh tokens presented again: families revoked.",
            &m->refresh_reuse);
    counter(out, "tiketi_auth_logouts_total", "Logouts.", &m->logouts);
    counter(out, "tiketi_auth_token_rejected_total", "Access tokens refused by Me.", &m->token_rejected);
    counter(out, "tiketi_auth_db_unavailable_total", "Statements that found the database unreachable or too slow.",
            &m->db_unavailable);
    counter(out, "tiketi_auth_db_errors_total", "Unexpected database errors (INTERNAL).", &m->db_errors);
    counter(out, "tiketi_auth_overloaded_total", "Calls refused because the job queue was full.", &m->overloaded);
    fprintf(out, "# HELP tiketi_auth_db_up 1 while the last database statement succeeded.\n"
                 "# TYPE tiketi_auth_db_up gauge\ntiketi_auth_db_up %d\n",
            atomic_load(&service->db_up));
}
