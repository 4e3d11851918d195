/* svc_password.c — argon2id password hashes and the password rules (svc_password.h).
 *
 * A thin layer over libsodium's crypto_pwhash_argon2id_str*: it adds the bounds
 * (a password over 128 bytes is refused before any hashing, so a megabyte
 * "password" cannot buy a megabyte of hashing), the rules for new passwords, and
 * argon2id only (libsodium's generic verify would also take argon2i strings). */
#include "svc_password.h"

#include <sodium.h>
#include <string.h>

#include "tk_assert.h"

_Static_assert(SVC_PASSWORD_HASH_BYTES == crypto_pwhash_argon2id_STRBYTES, "hash buffer is libsodium's STRBYTES");
_Static_assert(SVC_PASSWORD_BYTES_MIN < SVC_PASSWORD_BYTES_MAX, "password bounds");
_Static_assert(SVC_PASSWORD_OPSLIMIT_MIN >= crypto_pwhash_argon2id_OPSLIMIT_MIN, "argon2id needs at least 1 pass");
_Static_assert((size_t)SVC_PASSWORD_MEMLIMIT_KIB_MIN * 1024u >= crypto_pwhash_argon2id_MEMLIMIT_MIN,
               "argon2id needs at least 8 KiB");

static bool sodium_ready(void)
{
    return sodium_init() >= 0; /* thread safe; 1 once already initialised */
}

void svc_password_params_default(struct svc_password_params *params)
{
    TK_ASSERT(params != NULL);
    params->opslimit = (uint32_t)crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
    params->memlimit_kib = (uint32_t)(crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE / 1024u);
    TK_ASSERT(svc_password_params_check(params, NULL) == TK_OK);
}

enum tk_status svc_password_params_check(const struct svc_password_params *params, const char **why)
{
    TK_ASSERT(params != NULL);
    const char *reason = NULL;
    if (params->opslimit < SVC_PASSWORD_OPSLIMIT_MIN || params->opslimit > SVC_PASSWORD_OPSLIMIT_MAX)
        reason = "the argon2id pass count must be 1..16";
    else if (params->memlimit_kib < SVC_PASSWORD_MEMLIMIT_KIB_MIN ||
             params->memlimit_kib > SVC_PASSWORD_MEMLIMIT_KIB_MAX)
        reason = "the argon2id memory must be 8 KiB..1 GiB";
    if (why != NULL)
        *why = reason;
    return reason == NULL ? TK_OK : TK_ERR_INVALID;
}

enum tk_status svc_password_check_rules(const char *password, size_t len, const char **why)
{
    TK_ASSERT(why != NULL);
    *why = NULL;
    if (password == NULL || len < SVC_PASSWORD_BYTES_MIN)
        *why = "the password must be at least 8 bytes long";
    else if (len > SVC_PASSWORD_BYTES_MAX)
        *why = "the password must be at most 128 bytes long";
    else if (memchr(password, '\0', len) != NULL)
        *why = "the password must not contain a NUL byte";
    return *why == NULL ? TK_OK : TK_ERR_INVALID;
}

enum tk_status svc_password_hash(const struct svc_password_params *params, const char *password, size_t len,
                                 char out[SVC_PASSWORD_HASH_BYTES])
{
    TK_ASSERT(params != NULL && out != NULL);
    TK_ASSERT(svc_password_params_check(params, NULL) == TK_OK);
    out[0] = '\0';
    if (password == NULL || len == 0 || len > SVC_PASSWORD_BYTES_MAX)
        return TK_ERR_INVALID;
    if (!sodium_ready())
        return TK_ERR_UNAVAILABLE;
    /* Fails only when the memory for the hash cannot be allocated. */
    if (crypto_pwhash_argon2id_str(out, password, len, params->opslimit, (size_t)params->memlimit_kib * 1024u) != 0) {
        out[0] = '\0';
        return TK_ERR_FULL;
    }
    TK_ASSERT(strncmp(out, "$argon2id$", 10) == 0);
    TK_ASSERT(strnlen(out, SVC_PASSWORD_HASH_BYTES) < SVC_PASSWORD_HASH_BYTES);
    return TK_OK;
}

bool svc_password_verify(const char *hash, const char *password, size_t len)
{
    if (hash == NULL || password == NULL || len == 0 || len > SVC_PASSWORD_BYTES_MAX)
        return false;
    if (strnlen(hash, SVC_PASSWORD_HASH_BYTES) >= SVC_PASSWORD_HASH_BYTES || strncmp(hash, "$argon2id$", 10) != 0)
        return false;
    if (!sodium_ready())
        return false;
    return crypto_pwhash_argon2id_str_verify(hash, password, len) == 0;
}

bool svc_password_needs_rehash(const struct svc_password_params *params, const char *hash)
{
    TK_ASSERT(params != NULL);
    if (hash == NULL || strnlen(hash, SVC_PASSWORD_HASH_BYTES) >= SVC_PASSWORD_HASH_BYTES || !sodium_ready())
        return true;
    return crypto_pwhash_argon2id_str_needs_rehash(hash, params->opslimit, (size_t)params->memlimit_kib * 1024u) != 0;
}
