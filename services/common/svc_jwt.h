/* svc_jwt.h — HS256 JWT access tokens: signing (auth-svc) and verifying (auth-svc, the edge).
 *
 * A token is header.payload.signature (RFC 7519) with the header
 * {"alg":"HS256","typ":"JWT","kid":"<key id>"} and the claims
 *   iss, aud    the keyset's issuer and audience
 *   sub         the user id (decimal string)
 *   role        "user" or "admin"
 *   email       optional
 *   iat, nbf, exp  integer seconds since the epoch
 *   jti         a random id of this token
 *
 * Keys rotate by key id: a keyset holds up to SVC_JWT_KEYS_MAX HMAC keys, each
 * with its kid; one of them (the current kid) signs, and any of them verifies
 * the tokens whose header names it. To rotate: add the new key to every
 * verifier's set, then make it the signer's current kid, then drop the old key
 * once the tokens it signed have expired (docs/services/auth.md).
 *
 * Verification is strict, never "whatever the token says": the header's alg must
 * be exactly "HS256" (so "none", HS512, RS256 ... are refused before any key is
 * touched), the kid must be in the set, the signature is checked in constant
 * time (libsodium) and again by libjwt, iss and aud must match the keyset's, exp,
 * iat and sub/role/jti must be present and well typed, and exp/nbf/iat are
 * checked against the caller's clock with the keyset's leeway. The failure
 * reason is a stable snake_case word (see svc_jwt_verify) for logs and metrics;
 * clients should only be told "invalid token".
 *
 * Thread safety: a loaded keyset is read-only; sign and verify may run on any
 * number of threads at once. Nothing here logs or prints key material. */
#ifndef SVC_JWT_H
#define SVC_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "tk_status.h"

#define SVC_JWT_KEYS_MAX 8u
#define SVC_JWT_KID_BYTES 65u /* up to 64 characters of [A-Za-z0-9._-] */
#define SVC_JWT_SECRET_BYTES_MIN 32u
#define SVC_JWT_SECRET_BYTES_MAX 512u
#define SVC_JWT_ISSUER_BYTES 129u
#define SVC_JWT_AUDIENCE_BYTES 129u
#define SVC_JWT_LEEWAY_S_MAX 300u
#define SVC_JWT_TOKEN_BYTES_MAX 4096u /* longer tokens are refused unread */
#define SVC_JWT_SUB_BYTES 65u
#define SVC_JWT_ROLE_BYTES 16u
#define SVC_JWT_EMAIL_BYTES 255u
#define SVC_JWT_JTI_BYTES 65u
#define SVC_JWT_NO_CURRENT UINT32_MAX

struct svc_jwt_key {
    char kid[SVC_JWT_KID_BYTES];
    uint8_t secret[SVC_JWT_SECRET_BYTES_MAX];
    uint32_t secret_len;
};

struct svc_jwt_keyset {
    struct svc_jwt_key keys[SVC_JWT_KEYS_MAX];
    uint32_t count;
    uint32_t current; /* index of the signing key; SVC_JWT_NO_CURRENT: verify only */
    char issuer[SVC_JWT_ISSUER_BYTES];
    char audience[SVC_JWT_AUDIENCE_BYTES];
    uint32_t leeway_s; /* clock skew allowed on exp, nbf and iat */
};

struct svc_jwt_keyset_config {
    /* "kid1=/path/key1,kid2=env:VAR": each key is a file's bytes (exactly, a
     * trailing newline included) or an environment variable's value ("env:" then
     * its name); "file:/path" is also accepted. Every key is 32..512 bytes. */
    const char *keys;
    /* The kid that signs. NULL or "": the only key when there is one, else none
     * (a verify-only set, as the edge uses). */
    const char *current_kid;
    const char *issuer;   /* required non-empty */
    const char *audience; /* required non-empty */
    uint32_t leeway_s;    /* 0..SVC_JWT_LEEWAY_S_MAX */
};

/* The claims of a token. Strings are NUL-terminated; email is "" when absent,
 * nbf is iat when absent. kid: the key that signed it (verify fills it). */
struct svc_jwt_claims {
    char sub[SVC_JWT_SUB_BYTES];
    char role[SVC_JWT_ROLE_BYTES];
    char email[SVC_JWT_EMAIL_BYTES];
    char jti[SVC_JWT_JTI_BYTES];
    int64_t iat, nbf, exp;
    char kid[SVC_JWT_KID_BYTES];
};

/* Loads every key of config->keys. On failure err names the entry and why
 * (never a key's bytes) and the set is left wiped. */
enum tk_status svc_jwt_keyset_load(struct svc_jwt_keyset *set, const struct svc_jwt_keyset_config *config,
                                   char *err, size_t err_len);
/* Overwrites the key material (before freeing or exit). */
void svc_jwt_keyset_wipe(struct svc_jwt_keyset *set);

/* Signs claims (sub, role, email, iat, nbf, exp, jti; claims->kid is ignored)
 * with the current key into out (NUL-terminated). TK_ERR_INVALID when the set
 * has no current key or a claim is empty or out of range; TK_ERR_FULL when out
 * is too small. */
enum tk_status svc_jwt_sign(const struct svc_jwt_keyset *set, const struct svc_jwt_claims *claims, char *out,
                            size_t out_len);

/* Verifies token at now_s (seconds since the epoch). TK_OK fills *claims;
 * otherwise TK_ERR_INVALID and *reason is one of:
 *   malformed, too_long, alg_not_allowed, missing_kid, unknown_kid,
 *   bad_signature, wrong_issuer, wrong_audience, missing_claim, bad_claim,
 *   expired, not_yet_valid, issued_in_future. */
enum tk_status svc_jwt_verify(const struct svc_jwt_keyset *set, const char *token, int64_t now_s,
                              struct svc_jwt_claims *claims, const char **reason);

#endif
