/* svc_password.h — password rules and argon2id hashes (libsodium).
 *
 * Passwords are stored only as libsodium's encoded argon2id string
 * ("$argon2id$v=19$m=65536,t=2,p=1$salt$hash"), which carries its own salt and
 * cost, so the cost can be raised later: old hashes still verify, and
 * svc_password_needs_rehash says when to store a new one after a good login.
 * The default cost is libsodium's "interactive" limits (64 MiB, 2 passes: about
 * 0.1-0.3 s here); a daemon may configure others within the bounds below.
 *
 * Nothing here logs, and nothing keeps a copy of a password: callers pass
 * pointer and length, and the only thing that leaves is the hash. */
#ifndef SVC_PASSWORD_H
#define SVC_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_status.h"

#define SVC_PASSWORD_BYTES_MIN 8u
#define SVC_PASSWORD_BYTES_MAX 128u
/* crypto_pwhash_STRBYTES; checked against libsodium in svc_password.c. */
#define SVC_PASSWORD_HASH_BYTES 128u

#define SVC_PASSWORD_OPSLIMIT_MIN 1u
#define SVC_PASSWORD_OPSLIMIT_MAX 16u
#define SVC_PASSWORD_MEMLIMIT_KIB_MIN 8u        /* libsodium's argon2id minimum: 8 KiB */
#define SVC_PASSWORD_MEMLIMIT_KIB_MAX (1u << 20) /* 1 GiB */

struct svc_password_params {
    uint32_t opslimit;     /* argon2 passes */
    uint32_t memlimit_kib; /* memory per hash, KiB */
};

/* libsodium's interactive limits (2 passes, 64 MiB). */
void svc_password_params_default(struct svc_password_params *params);
/* TK_ERR_INVALID with *why when a limit is outside the bounds above. */
enum tk_status svc_password_params_check(const struct svc_password_params *params, const char **why);

/* The rules a new password must meet: SVC_PASSWORD_BYTES_MIN..MAX bytes, no NUL.
 * TK_ERR_INVALID with *why (a sentence for the client) otherwise. */
enum tk_status svc_password_check_rules(const char *password, size_t len, const char **why);

/* Hashes password into out (NUL-terminated). TK_ERR_FULL when the memory for
 * the hash cannot be had (the caller answers "try again"), TK_ERR_INVALID when
 * the length is outside 1..SVC_PASSWORD_BYTES_MAX. */
enum tk_status svc_password_hash(const struct svc_password_params *params, const char *password, size_t len,
                                 char out[SVC_PASSWORD_HASH_BYTES]);
/* True only when hash is a well-formed argon2id string for this password.
 * Takes as long as the hash's own cost, whatever the password. */
bool svc_password_verify(const char *hash, const char *password, size_t len);
/* True when hash was made with other limits than params (or is not argon2id). */
bool svc_password_needs_rehash(const struct svc_password_params *params, const char *hash);

#endif
