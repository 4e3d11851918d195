/* test_svc_jwt.c — HS256 access tokens (services/common/svc_jwt.c): keys from files
 * and env with rotation by kid, and every way a token must be refused: expired,
 * not yet valid, tampered payload or signature, alg "none" and other algs, a
 * wrong or unknown key, another issuer or audience, badly typed claims.
 *
 * Hostile tokens are built here by hand (base64url + libsodium's HMAC), not with
 * the code under test, so a bug in svc_jwt cannot hide itself. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_jwt.h"
#include "tk_test_support.h"

#define NOW 1800000000LL
#define KEY_A "key-A-0123456789abcdef0123456789abcdef"
#define KEY_B "key-B-fedcba9876543210fedcba9876543210"

static char dir[512];

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    tk_test_tempdir(dir, sizeof(dir), "svc_jwt");
}

static void teardown(void)
{
    tk_test_rmtree(dir);
}

TestSuite(svc_jwt, .init = setup, .fini = teardown);

/* Writes a key file and returns its path in out. */
static void key_file(const char *name, const char *bytes, char *out, size_t out_len)
{
    snprintf(out, out_len, "%s/%s", dir, name);
    FILE *f = fopen(out, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, strlen(bytes), f), strlen(bytes));
    fclose(f);
}

static enum tk_status load(struct svc_jwt_keyset *set, const char *keys, const char *current, const char *audience,
                           char *err, size_t err_len)
{
    struct svc_jwt_keyset_config config = {.keys = keys, .current_kid = current, .issuer = "tiketi-auth",
                                           .audience = audience, .leeway_s = 30};
    return svc_jwt_keyset_load(set, &config, err, err_len);
}

/* A set with one key, kid "k1", the given secret. */
static void one_key_set(struct svc_jwt_keyset *set, const char *secret, const char *audience)
{
    char path[600], spec[700], err[256];
    key_file("one.key", secret, path, sizeof(path));
    snprintf(spec, sizeof(spec), "k1=%s", path);
    cr_assert_eq(load(set, spec, NULL, audience, err, sizeof(err)), TK_OK, "%s", err);
}

static void user_claims(struct svc_jwt_claims *c, int64_t iat, int64_t ttl)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->sub, sizeof(c->sub), "42");
    snprintf(c->role, sizeof(c->role), "user");
    snprintf(c->email, sizeof(c->email), "alice@example.com");
    snprintf(c->jti, sizeof(c->jti), "jti-1");
    c->iat = c->nbf = iat;
    c->exp = iat + ttl;
}

static const char *verify_reason(const struct svc_jwt_keyset *set, const char *token, int64_t now)
{
    struct svc_jwt_claims claims;
    const char *reason = NULL;
    enum tk_status status = svc_jwt_verify(set, token, now, &claims, &reason);
    cr_assert_not_null(reason);
    if (status == TK_OK) {
        cr_assert_str_eq(reason, "");
        return "ok";
    }
    cr_assert_eq(status, TK_ERR_INVALID);
    cr_assert_str_empty(claims.sub, "claims are cleared on failure");
    return reason;
}

/* header.payload.signature from raw JSON, HMAC-SHA256 with key (NULL: empty signature). */
static void forge(char *out, size_t out_len, const char *header, const char *payload, const char *key)
{
    char h[1024], p[2048];
    sodium_bin2base64(h, sizeof(h), (const unsigned char *)header, strlen(header),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(p, sizeof(p), (const unsigned char *)payload, strlen(payload),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    int n = snprintf(out, out_len, "%s.%s.", h, p);
    cr_assert(n > 0 && (size_t)n < out_len);
    if (key == NULL)
        return;
    unsigned char mac[32];
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)out, (size_t)n - 1);
    crypto_auth_hmacsha256_final(&state, mac);
    sodium_bin2base64(out + n, out_len - (size_t)n, mac, sizeof(mac), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

#define GOOD_PAYLOAD                                                                                                   \
    "{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000000,"                 \
    "\"nbf\":1800000000,\"exp\":1800000900,\"jti\":\"x1\"}"
#define GOOD_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"

Test(svc_jwt, sign_then_verify_round_trip)
{
    struct svc_jwt_keyset set;
    one_key_set(&set, KEY_A, "tiketi");
    struct svc_jwt_claims in, out;
    user_claims(&in, NOW, 900);
    char token[SVC_JWT_TOKEN_BYTES_MAX + 1];
    cr_assert_eq(svc_jwt_sign(&set, &in, token, sizeof(token)), TK_OK);
    cr_assert_eq(strncmp(token, "eyJ", 3), 0);
    const char *reason = NULL;
    cr_assert_eq(svc_jwt_verify(&set, token, NOW + 10, &out, &reason), TK_OK, "%s", reason);
    cr_assert_str_eq(out.sub, "42");
    cr_assert_str_eq(out.role, "user");
    cr_assert_str_eq(out.email, "alice@example.com");
    cr_assert_str_eq(out.jti, "jti-1");
    cr_assert_str_eq(out.kid, "k1");
    cr_assert_eq(out.iat, NOW);
    cr_assert_eq(out.exp, NOW + 900);
    /* An independently forged token with the same key verifies too: the format is plain RFC 7519. */
    char forged[2048];
    forge(forged, sizeof(forged), GOOD_HEADER, GOOD_PAYLOAD, KEY_A);
    cr_assert_str_eq(verify_reason(&set, forged, NOW), "ok");
    svc_jwt_keyset_wipe(&set);
}

Test(svc_jwt, expiry_not_before_and_issued_at_use_the_leeway)
{
    struct svc_jwt_keyset set;
    one_key_set(&set, KEY_A, "tiketi");
    struct svc_jwt_claims c;
    user_claims(&c, NOW, 60);
    char token[SVC_JWT_TOKEN_BYTES_MAX + 1];
    cr_assert_eq(svc_jwt_sign(&set, &c, token, sizeof(token)), TK_OK);
    cr_assert_str_eq(verify_reason(&set, token, NOW + 60 + 29), "ok", "inside the 30 s leeway");
    cr_assert_str_eq(verify_reason(&set, token, NOW + 60 + 30), "expired");
    cr_assert_str_eq(verify_reason(&set, token, NOW + 86400), "expired");
    cr_assert_str_eq(verify_reason(&set, token, NOW - 30), "ok", "a clock 30 s behind still accepts");
    cr_assert_str_eq(verify_reason(&set, token, NOW - 31), "issued_in_future");
    /* iat in the future with no nbf. */
    char forged[2048];
    forge(forged, sizeof(forged), GOOD_HEADER,
          "{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000500,"
          "\"exp\":1800000900,\"jti\":\"x\"}",
          KEY_A);
    cr_assert_str_eq(verify_reason(&set, forged, NOW), "issued_in_future");
    /* nbf later than iat: usable only from nbf (minus the leeway). */
    forge(forged, sizeof(forged), GOOD_HEADER,
          "{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000000,"
          "\"nbf\":1800000100,\"exp\":1800000900,\"jti\":\"x\"}",
          KEY_A);
    cr_assert_str_eq(verify_reason(&set, forged, NOW), "not_yet_valid");
    cr_assert_str_eq(verify_reason(&set, forged, NOW + 70), "ok");
    svc_jwt_keyset_wipe(&set);
}

Test(svc_jwt, tampered_payload_or_signature_is_refused)
{
    struct svc_jwt_keyset set;
    one_key_set(&set, KEY_A, "tiketi");
    char good[2048], evil[2048];
    forge(good, sizeof(good), GOOD_HEADER, GOOD_PAYLOAD, KEY_A);
    cr_assert_str_eq(verify_reason(&set, good, NOW), "ok");
    /* The same signature over a payload that says admin. */
    forge(evil, sizeof(evil), GOOD_HEADER,
          "{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"admin\",\"iat\":1800000000,"
          "\"nbf\":1800000000,\"exp\":1800000900,\"jti\":\"x1\"}",
          NULL);
    strcat(evil, strrchr(good, '.') + 1);
    cr_assert_str_eq(verify_reason(&set, evil, NOW), "bad_signature");
    /* One character of the signature changed; and the last character's spare bits changed,
     * which a lax base64 decoder would read as the same signature. */
    size_t len = strlen(good);
    snprintf(evil, sizeof(evil), "%s", good);
    evil[len - 10] = evil[len - 10] == 'A' ? 'B' : 'A';
    cr_assert_str_eq(verify_reason(&set, evil, NOW), "bad_signature");
    snprintf(evil, sizeof(evil), "%s", good);
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *at = strchr(alphabet, evil[len - 1]);
    cr_assert_not_null(at);
    evil[len - 1] = alphabet[((at - alphabet) ^ 1) & 63]; /* 43 chars carry 258 bits: the last 2 are spare */
    cr_assert_str_eq(verify_reason(&set, evil, NOW), "bad_signature");
    /* A truncated signature, an extra segment, garbage. */
    snprintf(evil, sizeof(evil), "%.*s", (int)len - 4, good);
    cr_assert_str_eq(verify_reason(&set, evil, NOW), "bad_signature");
    snprintf(evil, sizeof(evil), "%s.AAAA", good);
    cr_assert_str_eq(verify_reason(&set, evil, NOW), "malformed");
    cr_assert_str_eq(verify_reason(&set, "not a token", NOW), "malformed");
    cr_assert_str_eq(verify_reason(&set, "", NOW), "malformed");
    cr_assert_str_eq(verify_reason(&set, NULL, NOW), "malformed");
    cr_assert_str_eq(verify_reason(&set, "a.b.c", NOW), "malformed");
    svc_jwt_keyset_wipe(&set);
}

Test(svc_jwt, alg_none_and_every_other_alg_are_refused)
{
    struct svc_jwt_keyset set;
    one_key_set(&set, KEY_A, "tiketi");
    char token[2048];
    forge(token, sizeof(token), "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}", GOOD_PAYLOAD, NULL);
    const char *reason = verify_reason(&set, token, NOW);
    cr_assert(strcmp(reason, "malformed") == 0 || strcmp(reason, "alg_not_allowed") == 0, "%s", reason);
    /* "none" with a signature attached, so the shape check does not catch it first. */
    forge(token, sizeof(token), "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}", GOOD_PAYLOAD, KEY_A);
    cr_assert_str_eq(verify_reason(&set, token, NOW), "alg_not_allowed");
    static const char *const algs[] = {"HS512", "HS384", "RS256", "ES256", "hs256", "NONE"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        char header[128];
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"k1\"}", algs[i]);
        forge(token, sizeof(token), header, GOOD_PAYLOAD, KEY_A);
        cr_assert_str_eq(verify_reason(&set, token, NOW), "alg_not_allowed", "alg %s", algs[i]);
    }
    /* Names libjwt does not know at all fail its header parse first: refused as malformed. */
    forge(token, sizeof(token), "{\"alg\":\"HS256 \",\"typ\":\"JWT\",\"kid\":\"k1\"}", GOOD_PAYLOAD, KEY_A);
    cr_assert_str_eq(verify_reason(&set, token, NOW), "malformed");
    forge(token, sizeof(token), "{\"typ\":\"JWT\",\"kid\":\"k1\"}", GOOD_PAYLOAD, KEY_A);
    cr_assert_str_eq(verify_reason(&set, token, NOW), "malformed", "no alg at all: libjwt's header parse refuses it");
    forge(token, sizeof(token), "{\"alg\":\"HS256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", GOOD_PAYLOAD, KEY_A);
    cr_assert_str_eq(verify_reason(&set, token, NOW), "malformed", "crit extensions are not understood");
    svc_jwt_keyset_wipe(&set);
}

Test(svc_jwt, wrong_missing_or_unknown_key_is_refused)
{
    struct svc_jwt_keyset a, b;
    one_key_set(&a, KEY_A, "tiketi");
    char path[600], spec[700], err[256];
    key_file("b.key", KEY_B, path, sizeof(path));
    snprintf(spec, sizeof(spec), "k1=%s", path);
    cr_assert_eq(load(&b, spec, NULL, "tiketi", err, sizeof(err)), TK_OK, "%s", err);
    struct svc_jwt_claims c;
    user_claims(&c, NOW, 900);
    char token[SVC_JWT_TOKEN_BYTES_MAX + 1];
    cr_assert_eq(svc_jwt_sign(&a, &c, token, sizeof(token)), TK_OK);
    cr_assert_str_eq(verify_reason(&b, token, NOW), "bad_signature", "same kid, another secret");
    char forged[2048];
    forge(forged, sizeof(forged), "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k9\"}", GOOD_PAYLOAD, KEY_A);
    cr_assert_str_eq(verify_reason(&a, forged, NOW), "unknown_kid");
    forge(forged, sizeof(forged), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, KEY_A);
    cr_assert_str_eq(verify_reason(&a, forged, NOW), "missing_kid");
    svc_jwt_keyset_wipe(&a);
    svc_jwt_keyset_wipe(&b);
}

Test(svc_jwt, another_audience_or_issuer_is_refused)
{
    struct svc_jwt_keyset set, other;
    one_key_set(&set, KEY_A, "tiketi");
    one_key_set(&other, KEY_A, "billing");
    struct svc_jwt_claims c;
    user_claims(&c, NOW, 900);
    char token[SVC_JWT_TOKEN_BYTES_MAX + 1];
    cr_assert_eq(svc_jwt_sign(&set, &c, token, sizeof(token)), TK_OK);
    cr_assert_str_eq(verify_reason(&other, token, NOW), "wrong_audience");
    char forged[2048];
    forge(forged, sizeof(forged), GOOD_HEADER,
          "{\"iss\":\"evil\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000000,"
          "\"exp\":1800000900,\"jti\":\"x\"}",
          KEY_A);
    cr_assert_str_eq(verify_reason(&set, forged, NOW), "wrong_issuer");
    forge(forged, sizeof(forged), GOOD_HEADER,
          "{\"iss\":\"tiketi-auth\",\"aud\":[\"tiketi\",\"x\"],\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000000,"
          "\"exp\":1800000900,\"jti\":\"x\"}",
          KEY_A);
    cr_assert_str_eq(verify_reason(&set, forged, NOW), "wrong_audience", "a list of audiences is not taken");
    forge(forged, sizeof(forged), GOOD_HEADER,
          "{\"iss\":\"tiketi-auth\",\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000000,\"exp\":1800000900,"
          "\"jti\":\"x\"}",
          KEY_A);
    cr_assert_str_eq(verify_reason(&set, forged, NOW), "missing_claim", "no aud");
    svc_jwt_keyset_wipe(&set);
    svc_jwt_keyset_wipe(&other);
}

Test(svc_jwt, claims_must_be_present_and_well_typed)
{
    struct svc_jwt_keyset set;
    one_key_set(&set, KEY_A, "tiketi");
    static const struct {
        const char *payload, *reason;
    } cases[] = {
        {"{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000000,"
         "\"exp\":\"1800000900\",\"jti\":\"x\"}",
         "bad_claim"},
        {"{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000000,"
         "\"exp\":1800000900.5,\"jti\":\"x\"}",
         "bad_claim"},
        {"{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000000,"
         "\"jti\":\"x\"}",
         "missing_claim"},
        {"{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":42,\"role\":\"user\",\"iat\":1800000000,"
         "\"exp\":1800000900,\"jti\":\"x\"}",
         "bad_claim"},
        {"{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"root\",\"iat\":1800000000,"
         "\"exp\":1800000900,\"jti\":\"x\"}",
         "bad_claim"},
        {"{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"role\":\"user\",\"iat\":1800000000,\"exp\":1800000900,"
         "\"jti\":\"x\"}",
         "missing_claim"},
        {"{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"user\",\"iat\":1800000000,"
         "\"exp\":1800000900}",
         "missing_claim"},
        {"{\"iss\":\"tiketi-auth\",\"aud\":\"tiketi\",\"sub\":\"42\",\"role\":\"user\",\"iat\":-5,"
         "\"exp\":1800000900,\"jti\":\"x\"}",
         "bad_claim"},
        {"[1,2,3]", "malformed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char token[2048];
        forge(token, sizeof(token), GOOD_HEADER, cases[i].payload, KEY_A);
        const char *reason = verify_reason(&set, token, NOW);
        if (strcmp(cases[i].reason, "malformed") == 0)
            cr_assert_neq(strcmp(reason, "ok"), 0, "case %zu", i);
        else
            cr_assert_str_eq(reason, cases[i].reason, "case %zu: %s", i, cases[i].payload);
    }
    char huge[SVC_JWT_TOKEN_BYTES_MAX + 64];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    cr_assert_str_eq(verify_reason(&set, huge, NOW), "too_long");
    svc_jwt_keyset_wipe(&set);
}

Test(svc_jwt, rotation_old_tokens_verify_until_their_key_is_dropped)
{
    char path_a[600], path_b[600], spec[1400], err[256];
    key_file("a.key", KEY_A, path_a, sizeof(path_a));
    key_file("b.key", KEY_B, path_b, sizeof(path_b));
    struct svc_jwt_keyset before, during, after;
    snprintf(spec, sizeof(spec), "2025a=%s", path_a);
    cr_assert_eq(load(&before, spec, NULL, "tiketi", err, sizeof(err)), TK_OK, "%s", err);
    snprintf(spec, sizeof(spec), "2025a=%s,2025b=%s", path_a, path_b);
    cr_assert_eq(load(&during, spec, "2025b", "tiketi", err, sizeof(err)), TK_OK, "%s", err);
    snprintf(spec, sizeof(spec), "2025b=file:%s", path_b);
    cr_assert_eq(load(&after, spec, "2025b", "tiketi", err, sizeof(err)), TK_OK, "%s", err);
    struct svc_jwt_claims c, out;
    user_claims(&c, NOW, 900);
    char old_token[SVC_JWT_TOKEN_BYTES_MAX + 1], new_token[SVC_JWT_TOKEN_BYTES_MAX + 1];
    cr_assert_eq(svc_jwt_sign(&before, &c, old_token, sizeof(old_token)), TK_OK);
    cr_assert_eq(svc_jwt_sign(&during, &c, new_token, sizeof(new_token)), TK_OK);
    const char *reason;
    cr_assert_eq(svc_jwt_verify(&during, old_token, NOW, &out, &reason), TK_OK, "%s", reason);
    cr_assert_str_eq(out.kid, "2025a");
    cr_assert_eq(svc_jwt_verify(&during, new_token, NOW, &out, &reason), TK_OK, "%s", reason);
    cr_assert_str_eq(out.kid, "2025b");
    cr_assert_str_eq(verify_reason(&after, new_token, NOW), "ok");
    cr_assert_str_eq(verify_reason(&after, old_token, NOW), "unknown_kid");
    cr_assert_str_eq(verify_reason(&before, new_token, NOW), "unknown_kid");
    svc_jwt_keyset_wipe(&before);
    svc_jwt_keyset_wipe(&during);
    svc_jwt_keyset_wipe(&after);
}

Test(svc_jwt, keys_load_from_env_and_bad_key_sets_are_refused)
{
    struct svc_jwt_keyset set;
    char err[256], path[600], spec[1400];
    setenv("TK_TEST_JWT_KEY", KEY_B, 1);
    cr_assert_eq(load(&set, "e1=env:TK_TEST_JWT_KEY", NULL, "tiketi", err, sizeof(err)), TK_OK, "%s", err);
    cr_assert_eq(set.count, 1);
    cr_assert_eq(set.current, 0);
    cr_assert_eq(set.keys[0].secret_len, strlen(KEY_B));
    svc_jwt_keyset_wipe(&set);

    key_file("short.key", "only-31-bytes-long-0123456789ab", path, sizeof(path));
    snprintf(spec, sizeof(spec), "s=%s", path);
    cr_assert_eq(load(&set, spec, NULL, "tiketi", err, sizeof(err)), TK_ERR_INVALID);
    cr_assert(strstr(err, "31 bytes") != NULL, "%s", err);
    cr_assert(strstr(err, "only-31") == NULL, "key bytes never appear in messages: %s", err);
    cr_assert_eq(set.count, 0, "a refused set is left wiped");

    key_file("ok.key", KEY_A, path, sizeof(path));
    const char *bad[] = {"", "k1", "=x", "k 1=/tmp/x", "k1=env:TK_TEST_NO_SUCH_VAR", "k1=/no/such/file",
                         "k1=" KEY_A ","};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(load(&set, bad[i], NULL, "tiketi", err, sizeof(err)), TK_ERR_INVALID, "'%s'", bad[i]);
    snprintf(spec, sizeof(spec), "k1=%s,k1=%s", path, path);
    cr_assert_eq(load(&set, spec, NULL, "tiketi", err, sizeof(err)), TK_ERR_INVALID, "duplicate kid");
    snprintf(spec, sizeof(spec), "k1=%s", path);
    cr_assert_eq(load(&set, spec, "k2", "tiketi", err, sizeof(err)), TK_ERR_INVALID, "current kid not in the set");
    cr_assert_eq(load(&set, spec, NULL, "", err, sizeof(err)), TK_ERR_INVALID, "no audience");
    snprintf(spec, sizeof(spec), "d=%s", dir);
    cr_assert_eq(load(&set, spec, NULL, "tiketi", err, sizeof(err)), TK_ERR_INVALID, "a directory is no key");

    /* Two keys and no current kid: a verify-only set, which cannot sign. */
    snprintf(spec, sizeof(spec), "k1=%s,k2=env:TK_TEST_JWT_KEY", path);
    cr_assert_eq(load(&set, spec, NULL, "tiketi", err, sizeof(err)), TK_OK, "%s", err);
    cr_assert_eq(set.current, SVC_JWT_NO_CURRENT);
    struct svc_jwt_claims c;
    user_claims(&c, NOW, 900);
    char token[SVC_JWT_TOKEN_BYTES_MAX + 1];
    cr_assert_eq(svc_jwt_sign(&set, &c, token, sizeof(token)), TK_ERR_INVALID);
    svc_jwt_keyset_wipe(&set);
    unsetenv("TK_TEST_JWT_KEY");
}

Test(svc_jwt, sign_refuses_bad_claims_and_small_buffers)
{
    struct svc_jwt_keyset set;
    one_key_set(&set, KEY_A, "tiketi");
    struct svc_jwt_claims c;
    char token[SVC_JWT_TOKEN_BYTES_MAX + 1];
    user_claims(&c, NOW, 900);
    cr_assert_eq(svc_jwt_sign(&set, &c, token, 40), TK_ERR_FULL);
    user_claims(&c, NOW, 0);
    cr_assert_eq(svc_jwt_sign(&set, &c, token, sizeof(token)), TK_ERR_INVALID, "exp must be after iat");
    user_claims(&c, NOW, 900);
    c.sub[0] = '\0';
    cr_assert_eq(svc_jwt_sign(&set, &c, token, sizeof(token)), TK_ERR_INVALID, "no subject");
    user_claims(&c, NOW, 900);
    c.email[0] = '\0';
    cr_assert_eq(svc_jwt_sign(&set, &c, token, sizeof(token)), TK_OK, "email is optional");
    struct svc_jwt_claims out;
    const char *reason;
    cr_assert_eq(svc_jwt_verify(&set, token, NOW, &out, &reason), TK_OK, "%s", reason);
    cr_assert_str_empty(out.email);
    svc_jwt_keyset_wipe(&set);
}
