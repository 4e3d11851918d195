/* auth_config.h — auth-svc's settings from flags and environment (AUTH_*).
 *
 * The common daemon settings (listen, metrics, threads, workers ...) plus the
 * database, the JWT keys, token lifetimes, login throttling, the argon2id cost
 * and the admin account made at first start. Every setting has a flag and an
 * environment variable (flags win); --help prints the table, --check-config
 * checks it (and loads the keys) without starting anything. */
#ifndef AUTH_CONFIG_H
#define AUTH_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "svc_daemon.h"
#include "svc_jwt.h"

struct auth_config {
    struct svc_common_config common;
    char database_url[1024];
    bool migrate;
    char migrations_dir[1024];
    char jwt_keys[4096];
    char jwt_current_kid[SVC_JWT_KID_BYTES];
    char jwt_issuer[SVC_JWT_ISSUER_BYTES];
    char jwt_audience[SVC_JWT_AUDIENCE_BYTES];
    uint32_t jwt_leeway_s;
    uint32_t access_ttl_s;
    uint32_t refresh_ttl_s;
    uint32_t login_max_failures;
    uint32_t login_window_s;
    uint32_t login_lock_s;
    uint32_t password_opslimit;
    uint32_t password_memlimit_kib;
    char admin_email[256];
    char admin_password[256];
    char admin_name[256];
    uint32_t db_timeout_ms;
    uint32_t housekeeping_s;
    bool check_only;
};

/* The admin account ./tiketi's local stack expects (API.md): used when neither
 * AUTH_ADMIN_* nor TIKETI_ADMIN_* say otherwise. */
#define AUTH_ADMIN_EMAIL_DEFAULT "admin@tiketi.local"
#define AUTH_ADMIN_PASSWORD_DEFAULT "tiketi-admin"

/* 0: run; 1: exit 0 (help printed); -1: exit 2 (message printed). */
int auth_config_parse(struct auth_config *config, int argc, char **argv);

#endif
