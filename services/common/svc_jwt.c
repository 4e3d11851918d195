/* svc_jwt.c — HS256 JWTs over libjwt, with the checks libjwt 1.10 leaves to us (svc_jwt.h).
 *
 * libjwt 1.10 encodes and parses, but it verifies with whatever alg the header
 * names, compares signatures with strcmp-like code, and has no claim validation
 * (jwt_valid_* came in 1.12). So verification here is: shape and length; the
 * header read without a key to get alg and kid (alg must be exactly HS256 before
 * any key is chosen); the HMAC recomputed with libsodium and compared in
 * constant time; then libjwt's own verified decode for the claims, each read
 * with its JSON type checked (jwt_get_grant_int would turn "12" into 0). */
#include "svc_jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tk_assert.h"

#define HS256_MAC_BYTES 32u
#define KEYSET_SPEC_BYTES_MAX 8192u
#define CLAIM_JSON_BYTES_MAX 32u

_Static_assert(SVC_JWT_SECRET_BYTES_MIN >= HS256_MAC_BYTES, "an HS256 key is at least as long as its MAC");
_Static_assert(SVC_JWT_SECRET_BYTES_MAX <= (uint32_t)INT32_MAX, "libjwt takes key lengths as int");
_Static_assert(SVC_JWT_KEYS_MAX >= 2, "rotation needs an old and a new key");

/* ---- loading keys ---- */

static bool kid_valid(const char *kid, size_t len)
{
    if (len == 0 || len >= SVC_JWT_KID_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = kid[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool read_key_file(const char *path, struct svc_jwt_key *key, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, err_len, "key '%s': cannot open %s: %s", key->kid, path, strerror(errno));
        return false;
    }
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= (off_t)SVC_JWT_SECRET_BYTES_MAX;
    ssize_t n = ok ? read(fd, key->secret, SVC_JWT_SECRET_BYTES_MAX) : -1;
    close(fd);
    if (!ok || n < 0 || n != st.st_size) {
        snprintf(err, err_len, "key '%s': %s is not a regular file of at most %u bytes", key->kid, path,
                 SVC_JWT_SECRET_BYTES_MAX);
        return false;
    }
    key->secret_len = (uint32_t)n;
    return true;
}

static bool read_key_env(const char *name, struct svc_jwt_key *key, char *err, size_t err_len)
{
    const char *value = name[0] != '\0' ? getenv(name) : NULL;
    if (value == NULL) {
        snprintf(err, err_len, "key '%s': the environment variable '%s' is not set", key->kid, name);
        return false;
    }
    size_t len = strnlen(value, SVC_JWT_SECRET_BYTES_MAX + 1);
    if (len > SVC_JWT_SECRET_BYTES_MAX) {
        snprintf(err, err_len, "key '%s': $%s is longer than %u bytes", key->kid, name, SVC_JWT_SECRET_BYTES_MAX);
        return false;
    }
    memcpy(key->secret, value, len);
    key->secret_len = (uint32_t)len;
    return true;
}

/* One "kid=source" entry (not NUL-terminated: entry[0..len)). */
static bool load_entry(struct svc_jwt_keyset *set, const char *entry, size_t len, char *err, size_t err_len)
{
    const char *eq = memchr(entry, '=', len);
    if (eq == NULL || !kid_valid(entry, (size_t)(eq - entry))) {
        snprintf(err, err_len, "bad key entry '%.*s': want kid=/path or kid=env:VAR, kid of 1..64 [A-Za-z0-9._-]",
                 (int)(len > 80 ? 80 : len), entry);
        return false;
    }
    if (set->count == SVC_JWT_KEYS_MAX) {
        snprintf(err, err_len, "more than %u keys", SVC_JWT_KEYS_MAX);
        return false;
    }
    struct svc_jwt_key *key = &set->keys[set->count];
    memcpy(key->kid, entry, (size_t)(eq - entry));
    key->kid[eq - entry] = '\0';
    for (uint32_t i = 0; i < set->count; i++)
        if (strcmp(set->keys[i].kid, key->kid) == 0) {
            snprintf(err, err_len, "key id '%s' appears twice", key->kid);
            return false;
        }
    char source[4096];
    size_t source_len = len - (size_t)(eq - entry) - 1;
    if (source_len == 0 || source_len >= sizeof(source)) {
        snprintf(err, err_len, "key '%s': empty or overlong source", key->kid);
        return false;
    }
    memcpy(source, eq + 1, source_len);
    source[source_len] = '\0';
    bool ok = strncmp(source, "env:", 4) == 0   ? read_key_env(source + 4, key, err, err_len)
              : strncmp(source, "file:", 5) == 0 ? read_key_file(source + 5, key, err, err_len)
                                                 : read_key_file(source, key, err, err_len);
    if (ok && key->secret_len < SVC_JWT_SECRET_BYTES_MIN) {
        snprintf(err, err_len, "key '%s' is %u bytes; a key must be %u..%u bytes", key->kid, key->secret_len,
                 SVC_JWT_SECRET_BYTES_MIN, SVC_JWT_SECRET_BYTES_MAX);
        ok = false;
    }
    if (ok)
        set->count++;
    return ok;
}

static bool load_config_strings(struct svc_jwt_keyset *set, const struct svc_jwt_keyset_config *config, char *err,
                                size_t err_len)
{
    size_t issuer_len = config->issuer ? strlen(config->issuer) : 0;
    size_t audience_len = config->audience ? strlen(config->audience) : 0;
    if (issuer_len == 0 || issuer_len >= SVC_JWT_ISSUER_BYTES || audience_len == 0 ||
        audience_len >= SVC_JWT_AUDIENCE_BYTES) {
        snprintf(err, err_len, "the issuer and the audience must each be 1..%u bytes", SVC_JWT_ISSUER_BYTES - 1);
        return false;
    }
    if (config->leeway_s > SVC_JWT_LEEWAY_S_MAX) {
        snprintf(err, err_len, "the leeway must be 0..%u seconds", SVC_JWT_LEEWAY_S_MAX);
        return false;
    }
    memcpy(set->issuer, config->issuer, issuer_len + 1);
    memcpy(set->audience, config->audience, audience_len + 1);
    set->leeway_s = config->leeway_s;
    return true;
}

static bool choose_current(struct svc_jwt_keyset *set, const char *current_kid, char *err, size_t err_len)
{
    set->current = SVC_JWT_NO_CURRENT;
    if (current_kid == NULL || current_kid[0] == '\0') {
        if (set->count == 1)
            set->current = 0;
        return true;
    }
    for (uint32_t i = 0; i < set->count; i++)
        if (strcmp(set->keys[i].kid, current_kid) == 0)
            set->current = i;
    if (set->current == SVC_JWT_NO_CURRENT)
        snprintf(err, err_len, "the current key id '%s' is not in the key set", current_kid);
    return set->current != SVC_JWT_NO_CURRENT;
}

enum tk_status svc_jwt_keyset_load(struct svc_jwt_keyset *set, const struct svc_jwt_keyset_config *config,
                                   char *err, size_t err_len)
{
    TK_ASSERT(set != NULL && config != NULL && err != NULL && err_len > 0);
    memset(set, 0, sizeof(*set));
    err[0] = '\0';
    const char *spec = config->keys != NULL ? config->keys : "";
    size_t spec_len = strnlen(spec, KEYSET_SPEC_BYTES_MAX + 1);
    bool ok = load_config_strings(set, config, err, err_len);
    if (ok && (spec_len == 0 || spec_len > KEYSET_SPEC_BYTES_MAX)) {
        snprintf(err, err_len, "the key set must be 'kid=/path[,kid=env:VAR...]' (1..%u keys)", SVC_JWT_KEYS_MAX);
        ok = false;
    }
    for (size_t start = 0; ok && start <= spec_len;) {
        const char *comma = memchr(spec + start, ',', spec_len - start);
        size_t end = comma != NULL ? (size_t)(comma - spec) : spec_len;
        ok = load_entry(set, spec + start, end - start, err, err_len);
        start = end + 1;
    }
    if (ok)
        ok = choose_current(set, config->current_kid, err, err_len);
    if (!ok) {
        svc_jwt_keyset_wipe(set);
        return TK_ERR_INVALID;
    }
    TK_ASSERT(set->count >= 1 && set->count <= SVC_JWT_KEYS_MAX);
    TK_ASSERT(set->current == SVC_JWT_NO_CURRENT || set->current < set->count);
    return TK_OK;
}

void svc_jwt_keyset_wipe(struct svc_jwt_keyset *set)
{
    if (set == NULL)
        return;
    sodium_memzero(set, sizeof(*set));
    set->current = SVC_JWT_NO_CURRENT;
}

/* ---- signing ---- */

static bool claims_signable(const struct svc_jwt_claims *c)
{
    return c->sub[0] != '\0' && c->role[0] != '\0' && c->jti[0] != '\0' && c->iat > 0 && c->exp > c->iat &&
           c->nbf > 0 && c->nbf <= c->exp && memchr(c->sub, '\0', sizeof(c->sub)) != NULL &&
           memchr(c->role, '\0', sizeof(c->role)) != NULL && memchr(c->email, '\0', sizeof(c->email)) != NULL &&
           memchr(c->jti, '\0', sizeof(c->jti)) != NULL;
}

static int add_claims(jwt_t *jwt, const struct svc_jwt_keyset *set, const struct svc_jwt_claims *c)
{
    int rc = jwt_add_header(jwt, "kid", set->keys[set->current].kid);
    rc = rc ? rc : jwt_add_grant(jwt, "iss", set->issuer);
    rc = rc ? rc : jwt_add_grant(jwt, "aud", set->audience);
    rc = rc ? rc : jwt_add_grant(jwt, "sub", c->sub);
    rc = rc ? rc : jwt_add_grant(jwt, "role", c->role);
    if (c->email[0] != '\0')
        rc = rc ? rc : jwt_add_grant(jwt, "email", c->email);
    rc = rc ? rc : jwt_add_grant_int(jwt, "iat", (long)c->iat);
    rc = rc ? rc : jwt_add_grant_int(jwt, "nbf", (long)c->nbf);
    rc = rc ? rc : jwt_add_grant_int(jwt, "exp", (long)c->exp);
    rc = rc ? rc : jwt_add_grant(jwt, "jti", c->jti);
    return rc;
}

enum tk_status svc_jwt_sign(const struct svc_jwt_keyset *set, const struct svc_jwt_claims *claims, char *out,
                            size_t out_len)
{
    TK_ASSERT(set != NULL && claims != NULL && out != NULL && out_len > 0);
    out[0] = '\0';
    if (set->current == SVC_JWT_NO_CURRENT || !claims_signable(claims))
        return TK_ERR_INVALID;
    TK_ASSERT(set->current < set->count);
    const struct svc_jwt_key *key = &set->keys[set->current];
    TK_ASSERT(key->secret_len >= SVC_JWT_SECRET_BYTES_MIN && key->secret_len <= SVC_JWT_SECRET_BYTES_MAX);
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return TK_ERR_FULL;
    enum tk_status status = TK_ERR_FULL;
    char *token = NULL;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, key->secret, (int)key->secret_len) == 0 && add_claims(jwt, set, claims) == 0)
        token = jwt_encode_str(jwt);
    if (token != NULL) {
        size_t len = strlen(token);
        if (len < out_len && len <= SVC_JWT_TOKEN_BYTES_MAX) {
            memcpy(out, token, len + 1);
            status = TK_OK;
        }
        free(token);
    }
    jwt_free(jwt); /* also wipes libjwt's copy of the key */
    return status;
}

/* ---- verifying ---- */

static bool base64url_segment(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* header.payload.signature: three non-empty base64url segments. *signed_len is
 * the length of "header.payload". */
static const char *check_shape(const char *token, size_t *signed_len)
{
    size_t len = strnlen(token, SVC_JWT_TOKEN_BYTES_MAX + 1);
    if (len > SVC_JWT_TOKEN_BYTES_MAX)
        return "too_long";
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return "malformed";
    if (!base64url_segment(token, (size_t)(dot1 - token)) ||
        !base64url_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1)) ||
        !base64url_segment(dot2 + 1, len - (size_t)(dot2 + 1 - token)))
        return "malformed";
    *signed_len = (size_t)(dot2 - token);
    return NULL;
}

/* Reads alg and kid from the unverified header and picks the key. */
static const char *pick_key(const struct svc_jwt_keyset *set, const char *token, const struct svc_jwt_key **key)
{
    jwt_t *unverified = NULL;
    if (jwt_decode(&unverified, token, NULL, 0) != 0 || unverified == NULL)
        return "malformed";
    const char *reason = NULL;
    const char *alg = jwt_get_header(unverified, "alg");
    const char *typ = jwt_get_header(unverified, "typ");
    const char *kid = jwt_get_header(unverified, "kid");
    char *crit = jwt_get_headers_json(unverified, "crit");
    if (alg == NULL || strcmp(alg, "HS256") != 0)
        reason = "alg_not_allowed";
    else if (crit != NULL || (typ != NULL && strcmp(typ, "JWT") != 0))
        reason = "malformed"; /* no critical extension is understood here */
    else if (kid == NULL || kid[0] == '\0')
        reason = "missing_kid";
    for (uint32_t i = 0; reason == NULL && i < set->count && *key == NULL; i++)
        if (strcmp(set->keys[i].kid, kid) == 0)
            *key = &set->keys[i];
    if (reason == NULL && *key == NULL)
        reason = "unknown_kid";
    free(crit);
    jwt_free(unverified);
    return reason;
}

static bool signature_ok(const struct svc_jwt_key *key, const char *token, size_t signed_len)
{
    uint8_t given[HS256_MAC_BYTES], expected[HS256_MAC_BYTES];
    size_t given_len = 0;
    const char *sig = token + signed_len + 1;
    const char *end = NULL;
    /* Strict decoding: libsodium refuses padding, stray bytes and non-zero spare
     * bits, so one signature has exactly one accepted spelling. */
    if (sodium_base642bin(given, sizeof(given), sig, strlen(sig), NULL, &given_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        given_len != sizeof(given) || end == NULL || *end != '\0')
        return false;
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, key->secret, key->secret_len);
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)token, signed_len);
    crypto_auth_hmacsha256_final(&state, expected);
    bool ok = sodium_memcmp(given, expected, sizeof(expected)) == 0;
    sodium_memzero(&state, sizeof(state));
    return ok;
}

/* An integer claim: absent -> missing, not a JSON integer -> bad. */
static const char *int_claim(jwt_t *jwt, const char *name, int64_t *out, bool required)
{
    char *json = jwt_get_grants_json(jwt, name);
    if (json == NULL)
        return required ? "missing_claim" : NULL;
    const char *reason = NULL;
    size_t len = strlen(json);
    char *end = NULL;
    errno = 0;
    long long v = len > 0 && len < CLAIM_JSON_BYTES_MAX && json[0] >= '0' && json[0] <= '9' ? strtoll(json, &end, 10)
                                                                                            : -1;
    if (v <= 0 || errno != 0 || end == NULL || *end != '\0')
        reason = "bad_claim";
    else
        *out = (int64_t)v;
    free(json);
    return reason;
}

/* A string claim copied into out[out_len]: absent -> missing, other type or too long -> bad. */
static const char *string_claim(jwt_t *jwt, const char *name, char *out, size_t out_len, bool required)
{
    const char *value = jwt_get_grant(jwt, name);
    if (value == NULL) {
        char *json = jwt_get_grants_json(jwt, name);
        bool present = json != NULL;
        free(json);
        return present ? "bad_claim" : required ? "missing_claim" : NULL;
    }
    size_t len = strlen(value);
    if ((required && len == 0) || len >= out_len)
        return "bad_claim";
    memcpy(out, value, len + 1);
    return NULL;
}

static const char *read_claims(const struct svc_jwt_keyset *set, jwt_t *jwt, struct svc_jwt_claims *c)
{
    char iss[SVC_JWT_ISSUER_BYTES] = "", aud[SVC_JWT_AUDIENCE_BYTES] = "";
    const char *r = string_claim(jwt, "iss", iss, sizeof(iss), true);
    if (r == NULL && strcmp(iss, set->issuer) != 0)
        r = "wrong_issuer";
    if (r == NULL && (r = string_claim(jwt, "aud", aud, sizeof(aud), true)) != NULL)
        r = strcmp(r, "bad_claim") == 0 ? "wrong_audience" : r; /* e.g. a list of audiences */
    if (r == NULL && strcmp(aud, set->audience) != 0)
        r = "wrong_audience";
    r = r ? r : string_claim(jwt, "sub", c->sub, sizeof(c->sub), true);
    r = r ? r : string_claim(jwt, "role", c->role, sizeof(c->role), true);
    r = r ? r : string_claim(jwt, "email", c->email, sizeof(c->email), false);
    r = r ? r : string_claim(jwt, "jti", c->jti, sizeof(c->jti), true);
    r = r ? r : int_claim(jwt, "exp", &c->exp, true);
    r = r ? r : int_claim(jwt, "iat", &c->iat, true);
    c->nbf = c->iat;
    r = r ? r : int_claim(jwt, "nbf", &c->nbf, false);
    if (r == NULL && strcmp(c->role, "user") != 0 && strcmp(c->role, "admin") != 0)
        r = "bad_claim";
    return r;
}

static const char *check_times(const struct svc_jwt_keyset *set, const struct svc_jwt_claims *c, int64_t now_s)
{
    int64_t leeway = (int64_t)set->leeway_s;
    if (now_s >= c->exp + leeway)
        return "expired";
    if (c->iat > now_s + leeway)
        return "issued_in_future";
    if (c->nbf > now_s + leeway)
        return "not_yet_valid";
    return NULL;
}

enum tk_status svc_jwt_verify(const struct svc_jwt_keyset *set, const char *token, int64_t now_s,
                              struct svc_jwt_claims *claims, const char **reason)
{
    TK_ASSERT(set != NULL && claims != NULL && reason != NULL);
    TK_ASSERT(set->count <= SVC_JWT_KEYS_MAX);
    memset(claims, 0, sizeof(*claims));
    size_t signed_len = 0;
    const struct svc_jwt_key *key = NULL;
    const char *why = token != NULL ? check_shape(token, &signed_len) : "malformed";
    why = why ? why : pick_key(set, token, &key);
    if (why == NULL && (sodium_init() < 0 || !signature_ok(key, token, signed_len)))
        why = "bad_signature";
    jwt_t *jwt = NULL;
    if (why == NULL && (jwt_decode(&jwt, token, key->secret, (int)key->secret_len) != 0 || jwt == NULL))
        why = "bad_signature"; /* libjwt disagrees with the check above: refuse */
    if (why == NULL && jwt_get_alg(jwt) != JWT_ALG_HS256)
        why = "alg_not_allowed";
    why = why ? why : read_claims(set, jwt, claims);
    why = why ? why : check_times(set, claims, now_s);
    if (jwt != NULL)
        jwt_free(jwt);
    if (why != NULL) {
        memset(claims, 0, sizeof(*claims));
        *reason = why;
        return TK_ERR_INVALID;
    }
    memcpy(claims->kid, key->kid, strlen(key->kid) + 1);
    *reason = "";
    return TK_OK;
}
