/* test_token.c — admission tokens (seatcore/token.c): round trip, tampering,
 * wrong keys, expiry, hostile inputs, key files. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tk_test_support.h"
#include "token.h"

static struct token_key test_key(uint8_t fill)
{
    uint8_t bytes[32];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (uint8_t)(fill + i * 7);
    struct token_key key;
    cr_assert_eq(token_key_init(&key, bytes, sizeof(bytes)), TK_OK);
    return key;
}

static const struct token_claims sample_claims = {
    .event_id = 42, .user_id = 123456789, .ticket = 77, .expires_ms = 1700000000000};

static void sign_sample(const struct token_key *key, char out[TOKEN_TEXT_BYTES])
{
    cr_assert_eq(token_sign(key, &sample_claims, out, TOKEN_TEXT_BYTES), TK_OK);
    cr_assert_eq(strlen(out), TOKEN_TEXT_LEN);
}

static enum token_reason verify_reason(const struct token_key *key, const char *token, size_t len, int64_t now_ms)
{
    enum token_reason reason = TOKEN_REASON_NONE;
    enum tk_status status = token_verify(key, token, len, now_ms, NULL, &reason);
    if (status == TK_OK) {
        cr_assert_eq(reason, TOKEN_REASON_NONE);
        return TOKEN_REASON_NONE;
    }
    cr_assert_eq(status, TK_ERR_NOT_ADMITTED);
    cr_assert_neq(reason, TOKEN_REASON_NONE);
    return reason;
}

Test(token, round_trip)
{
    struct token_key key = test_key(1);
    char text[TOKEN_TEXT_BYTES];
    sign_sample(&key, text);
    for (size_t i = 0; i < TOKEN_TEXT_LEN; i++) /* base64url alphabet only */
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", text[i]) != NULL);
    struct token_claims claims;
    enum token_reason reason = TOKEN_REASON_EXPIRED;
    cr_assert_eq(token_verify(&key, text, strlen(text), sample_claims.expires_ms - 1, &claims, &reason), TK_OK);
    cr_assert_eq(reason, TOKEN_REASON_NONE);
    cr_assert_eq(claims.event_id, sample_claims.event_id);
    cr_assert_eq(claims.user_id, sample_claims.user_id);
    cr_assert_eq(claims.ticket, sample_claims.ticket);
    cr_assert_eq(claims.expires_ms, sample_claims.expires_ms);
    /* Deterministic: same claims, same key, same text. */
    char again[TOKEN_TEXT_BYTES];
    sign_sample(&key, again);
    cr_assert_str_eq(text, again);
}

Test(token, every_single_byte_changed_is_refused)
{
    struct token_key key = test_key(2);
    char text[TOKEN_TEXT_BYTES];
    sign_sample(&key, text);
    const uint8_t replacements[] = {'A', 'B', 'Q', 'g', 'z', '0', '9', '-', '_', '+', '/', '=', ' ', 0, 0xff, 0x80};
    int tried = 0;
    for (size_t i = 0; i < TOKEN_TEXT_LEN; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char copy[TOKEN_TEXT_BYTES];
            memcpy(copy, text, sizeof(copy));
            copy[i] = (char)(copy[i] ^ (1 << bit));
            cr_assert_neq(verify_reason(&key, copy, TOKEN_TEXT_LEN, 0), TOKEN_REASON_NONE, "pos %zu bit %d", i, bit);
            tried++;
        }
        for (size_t r = 0; r < sizeof(replacements); r++) {
            if ((uint8_t)text[i] == replacements[r])
                continue;
            char copy[TOKEN_TEXT_BYTES];
            memcpy(copy, text, sizeof(copy));
            copy[i] = (char)replacements[r];
            cr_assert_neq(verify_reason(&key, copy, TOKEN_TEXT_LEN, 0), TOKEN_REASON_NONE, "pos %zu", i);
            tried++;
        }
    }
    cr_assert_gt(tried, (int)TOKEN_TEXT_LEN * 8);
    cr_assert_eq(verify_reason(&key, text, TOKEN_TEXT_LEN, 0), TOKEN_REASON_NONE);
}

Test(token, wrong_key_is_a_bad_signature)
{
    struct token_key key = test_key(3);
    struct token_key other = test_key(4);
    char text[TOKEN_TEXT_BYTES];
    sign_sample(&key, text);
    cr_assert_eq(verify_reason(&other, text, TOKEN_TEXT_LEN, 0), TOKEN_REASON_BAD_SIGNATURE);
    /* A longer key that starts with the same bytes is another key too (HMAC pads
     * keys with zeros to 64 bytes, so only a nonzero extension differs). */
    uint8_t longer[64];
    memcpy(longer, key.bytes, 32);
    memset(longer + 32, 0x5a, 32);
    struct token_key extended;
    cr_assert_eq(token_key_init(&extended, longer, sizeof(longer)), TK_OK);
    cr_assert_eq(verify_reason(&extended, text, TOKEN_TEXT_LEN, 0), TOKEN_REASON_BAD_SIGNATURE);
}

Test(token, expired_at_and_after_expiry)
{
    struct token_key key = test_key(5);
    char text[TOKEN_TEXT_BYTES];
    sign_sample(&key, text);
    cr_assert_eq(verify_reason(&key, text, TOKEN_TEXT_LEN, sample_claims.expires_ms - 1), TOKEN_REASON_NONE);
    cr_assert_eq(verify_reason(&key, text, TOKEN_TEXT_LEN, sample_claims.expires_ms), TOKEN_REASON_EXPIRED);
    cr_assert_eq(verify_reason(&key, text, TOKEN_TEXT_LEN, INT64_MAX), TOKEN_REASON_EXPIRED);
    struct token_claims claims = {0};
    cr_assert_eq(token_verify(&key, text, TOKEN_TEXT_LEN, INT64_MAX, &claims, NULL), TK_ERR_NOT_ADMITTED);
    cr_assert_eq(claims.ticket, sample_claims.ticket, "claims of a well-signed expired token are reported");
}

Test(token, truncated_extended_and_empty_inputs)
{
    struct token_key key = test_key(6);
    char text[TOKEN_TEXT_BYTES];
    sign_sample(&key, text);
    for (size_t len = 0; len < TOKEN_TEXT_LEN; len++)
        cr_assert_eq(verify_reason(&key, text, len, 0), TOKEN_REASON_MALFORMED, "len %zu", len);
    char longer[TOKEN_TEXT_BYTES + 8];
    memcpy(longer, text, TOKEN_TEXT_LEN);
    memcpy(longer + TOKEN_TEXT_LEN, "AAAAAAAA", 8);
    for (size_t extra = 1; extra <= 8; extra++)
        cr_assert_eq(verify_reason(&key, longer, TOKEN_TEXT_LEN + extra, 0), TOKEN_REASON_MALFORMED);
    cr_assert_eq(verify_reason(&key, NULL, 0, 0), TOKEN_REASON_MALFORMED);
    cr_assert_eq(verify_reason(&key, NULL, TOKEN_TEXT_LEN, 0), TOKEN_REASON_MALFORMED);
    cr_assert_eq(verify_reason(&key, "", 0, 0), TOKEN_REASON_MALFORMED);
}

Test(token, garbage_and_huge_inputs_never_crash)
{
    struct token_key key = test_key(7);
    uint64_t seed = tk_test_seed("token.garbage");
    char buf[512];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(tk_test_rand(&seed) % sizeof(buf));
        if (round % 4 == 0)
            len = TOKEN_TEXT_LEN; /* the right length, random contents */
        for (size_t i = 0; i < len; i++) {
            uint64_t r = tk_test_rand(&seed);
            buf[i] = round % 2 ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[r % 64] : (char)r;
        }
        cr_assert_neq(verify_reason(&key, buf, len, 0), TOKEN_REASON_NONE);
    }
    size_t huge_len = 1u << 20;
    char *huge = malloc(huge_len);
    cr_assert_not_null(huge);
    memset(huge, 'A', huge_len);
    cr_assert_eq(verify_reason(&key, huge, huge_len, 0), TOKEN_REASON_MALFORMED);
    cr_assert_eq(verify_reason(&key, huge, SIZE_MAX, 0), TOKEN_REASON_MALFORMED); /* never read past len checks */
    free(huge);
}

/* A well-signed token of an unknown version is refused as malformed. */
Test(token, unknown_version_is_malformed)
{
    struct token_key key = test_key(8);
    char text[TOKEN_TEXT_BYTES];
    sign_sample(&key, text);
    uint8_t bin[TOKEN_BINARY_BYTES];
    size_t bin_len;
    cr_assert_eq(sodium_base642bin(bin, sizeof(bin), text, TOKEN_TEXT_LEN, NULL, &bin_len, NULL,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                 0);
    bin[0] = 2;
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, key.bytes, key.len);
    crypto_auth_hmacsha256_update(&state, (const uint8_t *)"tiketi.admission", 16);
    crypto_auth_hmacsha256_update(&state, bin, 33);
    crypto_auth_hmacsha256_final(&state, bin + 33);
    sodium_bin2base64(text, sizeof(text), bin, sizeof(bin), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    cr_assert_eq(verify_reason(&key, text, TOKEN_TEXT_LEN, 0), TOKEN_REASON_MALFORMED);
    bin[0] = 1; /* and the same bytes with version 1 but the v2 MAC: bad signature */
    sodium_bin2base64(text, sizeof(text), bin, sizeof(bin), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    cr_assert_eq(verify_reason(&key, text, TOKEN_TEXT_LEN, 0), TOKEN_REASON_BAD_SIGNATURE);
}

Test(token, sign_refuses_bad_claims_and_short_buffers)
{
    struct token_key key = test_key(9);
    char out[TOKEN_TEXT_BYTES];
    cr_assert_eq(token_sign(&key, &sample_claims, out, TOKEN_TEXT_BYTES - 1), TK_ERR_INVALID);
    struct token_claims claims = sample_claims;
    claims.user_id = 0;
    cr_assert_eq(token_sign(&key, &claims, out, sizeof(out)), TK_ERR_INVALID);
    claims.user_id = UINT64_C(1) << 48;
    cr_assert_eq(token_sign(&key, &claims, out, sizeof(out)), TK_ERR_INVALID);
    claims = sample_claims;
    claims.event_id = 0;
    cr_assert_eq(token_sign(&key, &claims, out, sizeof(out)), TK_ERR_INVALID);
}

Test(token, key_length_bounds)
{
    uint8_t bytes[TOKEN_KEY_BYTES_MAX + 1] = {1};
    struct token_key key;
    cr_assert_eq(token_key_init(&key, bytes, TOKEN_KEY_BYTES_MIN - 1), TK_ERR_INVALID);
    cr_assert_eq(token_key_init(&key, bytes, TOKEN_KEY_BYTES_MAX + 1), TK_ERR_INVALID);
    cr_assert_eq(token_key_init(&key, NULL, 0), TK_ERR_INVALID);
    cr_assert_eq(token_key_init(&key, bytes, TOKEN_KEY_BYTES_MIN), TK_OK);
    cr_assert_eq(token_key_init(&key, bytes, TOKEN_KEY_BYTES_MAX), TK_OK);
    token_key_wipe(&key);
    cr_assert_eq(key.len, 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

Test(token, key_file_errors_are_clear)
{
    char dir[256], path[512], err[256];
    tk_test_tempdir(dir, sizeof(dir), "token");
    struct token_key key;

    snprintf(path, sizeof(path), "%s/missing.key", dir);
    cr_assert_eq(token_key_load_file(path, &key, err, sizeof(err)), TK_ERR_NOT_FOUND);
    cr_assert(strstr(err, "does not exist") != NULL && strstr(err, path) != NULL, "%s", err);

    uint8_t bytes[200];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (uint8_t)(i * 31 + 5);
    snprintf(path, sizeof(path), "%s/short.key", dir);
    write_file(path, bytes, 31);
    cr_assert_eq(token_key_load_file(path, &key, err, sizeof(err)), TK_ERR_INVALID);
    cr_assert(strstr(err, "31 bytes") != NULL && strstr(err, "32") != NULL, "%s", err);

    snprintf(path, sizeof(path), "%s/empty.key", dir);
    write_file(path, bytes, 0);
    cr_assert_eq(token_key_load_file(path, &key, err, sizeof(err)), TK_ERR_INVALID);
    cr_assert(strstr(err, "0 bytes") != NULL, "%s", err);

    snprintf(path, sizeof(path), "%s/long.key", dir);
    write_file(path, bytes, 200);
    cr_assert_eq(token_key_load_file(path, &key, err, sizeof(err)), TK_ERR_INVALID);
    cr_assert(strstr(err, "more than 128 bytes") != NULL, "%s", err);

    cr_assert_eq(token_key_load_file(dir, &key, err, sizeof(err)), TK_ERR_INVALID);
    cr_assert(strstr(err, "not a regular file") != NULL, "%s", err);
    cr_assert_eq(token_key_load_file(dir, &key, NULL, 0), TK_ERR_INVALID); /* err is optional */

    snprintf(path, sizeof(path), "%s/good.key", dir);
    write_file(path, bytes, 48);
    cr_assert_eq(token_key_load_file(path, &key, err, sizeof(err)), TK_OK);
    cr_assert_eq(key.len, 48);
    cr_assert_eq(memcmp(key.bytes, bytes, 48), 0);
    struct token_key same;
    cr_assert_eq(token_key_init(&same, bytes, 48), TK_OK);
    char text[TOKEN_TEXT_BYTES];
    sign_sample(&key, text);
    cr_assert_eq(verify_reason(&same, text, TOKEN_TEXT_LEN, 0), TOKEN_REASON_NONE);
    tk_test_rmtree(dir);
}

static void *sign_verify_thread(void *arg)
{
    const struct token_key *key = arg;
    for (int i = 0; i < 2000; i++) {
        struct token_claims claims = sample_claims;
        claims.ticket = (uint64_t)i;
        char text[TOKEN_TEXT_BYTES];
        if (token_sign(key, &claims, text, sizeof(text)) != TK_OK)
            return (void *)1;
        struct token_claims back;
        if (token_verify(key, text, TOKEN_TEXT_LEN, 0, &back, NULL) != TK_OK || back.ticket != (uint64_t)i)
            return (void *)1;
    }
    return NULL;
}

Test(token, threads_sign_and_verify_at_once)
{
    struct token_key key = test_key(10);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, sign_verify_thread, &key), 0);
    for (int i = 0; i < 4; i++) {
        void *result;
        pthread_join(threads[i], &result);
        cr_assert_null(result);
    }
}

Test(token, reason_names)
{
    cr_assert_str_eq(token_reason_name(TOKEN_REASON_MALFORMED), "malformed");
    cr_assert_str_eq(token_reason_name(TOKEN_REASON_BAD_SIGNATURE), "bad_signature");
    cr_assert_str_eq(token_reason_name(TOKEN_REASON_EXPIRED), "expired");
    cr_assert_str_eq(token_reason_name(TOKEN_REASON_NONE), "none");
}
