/* token.c — admission token signing and verification (format in token.h).
 *
 * Why HMAC-SHA256 with a shared key and not a signature scheme: every checker is
 * ours and holds the key; a MAC is ~1 us to check, and 32 bytes keeps the token
 * short enough for a header. The key is kept as given (32..128 bytes) and fed to
 * the HMAC as-is. libsodium is initialised once through pthread_once. */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tk_assert.h"
#include "tk_codec.h"
#include "tk_limits.h"

#define TOKEN_SIGNED_BYTES 33u /* version + four u64 */
#define TOKEN_CONTEXT "tiketi.admission"
#define TOKEN_READ_ATTEMPTS_MAX 64u

_Static_assert(TOKEN_SIGNED_BYTES + crypto_auth_hmacsha256_BYTES == TOKEN_BINARY_BYTES, "layout adds up");
_Static_assert(crypto_auth_hmacsha256_BYTES == 32, "crypto_verify_32 compares the whole MAC");
_Static_assert(TOKEN_TEXT_BYTES == sodium_base64_ENCODED_LEN(TOKEN_BINARY_BYTES,
                                                             sodium_base64_VARIANT_URLSAFE_NO_PADDING),
               "text length matches libsodium's encoding");
_Static_assert(TOKEN_TEXT_LEN + 1 == TOKEN_TEXT_BYTES, "one NUL");

static pthread_once_t token_sodium_once = PTHREAD_ONCE_INIT;
static int token_sodium_status = -1;

static void token_sodium_init(void)
{
    token_sodium_status = sodium_init() < 0 ? -1 : 0; /* 1 (already) counts as success */
}

static bool token_ready(void)
{
    int rc = pthread_once(&token_sodium_once, token_sodium_init);
    TK_ASSERT(rc == 0);
    return token_sodium_status == 0;
}

enum tk_status token_key_init(struct token_key *key, const void *bytes, size_t len)
{
    TK_ASSERT(key != NULL);
    TK_ASSERT(bytes != NULL || len == 0);
    memset(key, 0, sizeof(*key));
    if (len < TOKEN_KEY_BYTES_MIN || len > TOKEN_KEY_BYTES_MAX)
        return TK_ERR_INVALID;
    memcpy(key->bytes, bytes, len);
    key->len = len;
    return TK_OK;
}

void token_key_wipe(struct token_key *key)
{
    TK_ASSERT(key != NULL);
    sodium_memzero(key, sizeof(*key));
}

__attribute__((format(printf, 3, 4))) static void token_error(char *err, size_t err_len, const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err, err_len, fmt, args);
    va_end(args);
}

/* Reads at most cap bytes; *got < cap means end of file. */
static enum tk_status token_read_bounded(int fd, uint8_t *buf, size_t cap, size_t *got)
{
    TK_ASSERT(fd >= 0 && buf != NULL);
    *got = 0;
    for (uint32_t attempt = 0; attempt < TOKEN_READ_ATTEMPTS_MAX && *got < cap; attempt++) {
        ssize_t n = read(fd, buf + *got, cap - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return TK_ERR_IO;
        if (n == 0)
            return TK_OK;
        *got += (size_t)n;
    }
    TK_ASSERT(*got <= cap);
    return *got == cap ? TK_OK : TK_ERR_IO; /* a file that trickles bytes forever */
}

enum tk_status token_key_load_file(const char *path, struct token_key *key, char *err, size_t err_len)
{
    TK_ASSERT(path != NULL && key != NULL);
    memset(key, 0, sizeof(*key));
    uint8_t buf[TOKEN_KEY_BYTES_MAX + 1];
    size_t got = 0;
    enum tk_status status = TK_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        token_error(err, err_len, "admission token key file %s: %s", path,
                    e == ENOENT ? "does not exist" : strerror(e));
        return e == ENOENT ? TK_ERR_NOT_FOUND : TK_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        token_error(err, err_len, "admission token key file %s is not a regular file", path);
        status = TK_ERR_INVALID;
        goto fail;
    }
    if (token_read_bounded(fd, buf, sizeof(buf), &got) != TK_OK) {
        token_error(err, err_len, "admission token key file %s: read failed: %s", path, strerror(errno));
        status = TK_ERR_IO;
        goto fail;
    }
    if (got < TOKEN_KEY_BYTES_MIN || got > TOKEN_KEY_BYTES_MAX) {
        token_error(err, err_len,
                    "admission token key file %s has %s%zu bytes; it must hold %u to %u raw random bytes "
                    "(e.g. head -c 32 /dev/urandom)",
                    path, got > TOKEN_KEY_BYTES_MAX ? "more than " : "", got > TOKEN_KEY_BYTES_MAX ? got - 1 : got,
                    TOKEN_KEY_BYTES_MIN, TOKEN_KEY_BYTES_MAX);
        status = TK_ERR_INVALID;
        goto fail;
    }
    status = token_key_init(key, buf, got);
    TK_ASSERT(status == TK_OK);
fail:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    return status;
}

static void token_mac(const struct token_key *key, const uint8_t signed_bytes[TOKEN_SIGNED_BYTES],
                      uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
    TK_ASSERT(key->len >= TOKEN_KEY_BYTES_MIN && key->len <= TOKEN_KEY_BYTES_MAX);
    crypto_auth_hmacsha256_state state;
    int rc = crypto_auth_hmacsha256_init(&state, key->bytes, key->len);
    TK_ASSERT(rc == 0);
    crypto_auth_hmacsha256_update(&state, (const uint8_t *)TOKEN_CONTEXT, sizeof(TOKEN_CONTEXT) - 1);
    crypto_auth_hmacsha256_update(&state, signed_bytes, TOKEN_SIGNED_BYTES);
    crypto_auth_hmacsha256_final(&state, mac);
    sodium_memzero(&state, sizeof(state));
}

enum tk_status token_sign(const struct token_key *key, const struct token_claims *claims, char *out, size_t out_len)
{
    TK_ASSERT(key != NULL && claims != NULL);
    TK_ASSERT(out != NULL || out_len == 0);
    if (out_len < TOKEN_TEXT_BYTES || claims->event_id == 0 || claims->user_id == 0 ||
        claims->user_id > TK_USER_ID_MAX)
        return TK_ERR_INVALID;
    if (!token_ready())
        return TK_ERR_UNAVAILABLE;
    uint8_t bin[TOKEN_BINARY_BYTES];
    struct tk_buf buf;
    tk_buf_init(&buf, bin, sizeof(bin));
    tk_put_u8(&buf, TOKEN_VERSION);
    tk_put_u64(&buf, claims->event_id);
    tk_put_u64(&buf, claims->user_id);
    tk_put_u64(&buf, claims->ticket);
    tk_put_i64(&buf, claims->expires_ms);
    TK_ASSERT(!buf.failed && buf.len == TOKEN_SIGNED_BYTES);
    token_mac(key, bin, bin + TOKEN_SIGNED_BYTES);
    sodium_bin2base64(out, out_len, bin, sizeof(bin), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    TK_ASSERT(strlen(out) == TOKEN_TEXT_LEN);
    return TK_OK;
}

/* Decodes the canonical spelling only; false for anything else. */
static bool token_decode(const char *token, size_t len, uint8_t bin[TOKEN_BINARY_BYTES])
{
    TK_ASSERT(bin != NULL);
    if (token == NULL || len != TOKEN_TEXT_LEN)
        return false;
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_base642bin(bin, TOKEN_BINARY_BYTES, token, len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    if (bin_len != TOKEN_BINARY_BYTES || end != token + len)
        return false;
    char again[TOKEN_TEXT_BYTES]; /* unused low bits of the last character must be zero */
    sodium_bin2base64(again, sizeof(again), bin, TOKEN_BINARY_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    TK_ASSERT(again[TOKEN_TEXT_LEN] == '\0');
    return memcmp(again, token, TOKEN_TEXT_LEN) == 0;
}

static enum tk_status token_refuse(enum token_reason reason, enum token_reason *reason_out)
{
    TK_ASSERT(reason != TOKEN_REASON_NONE);
    if (reason_out != NULL)
        *reason_out = reason;
    return TK_ERR_NOT_ADMITTED;
}

enum tk_status token_verify(const struct token_key *key, const char *token, size_t len, int64_t now_ms,
                            struct token_claims *claims_out, enum token_reason *reason_out)
{
    TK_ASSERT(key != NULL);
    if (reason_out != NULL)
        *reason_out = TOKEN_REASON_NONE;
    if (!token_ready())
        return TK_ERR_UNAVAILABLE;
    uint8_t bin[TOKEN_BINARY_BYTES];
    if (!token_decode(token, len, bin) || bin[0] != TOKEN_VERSION)
        return token_refuse(TOKEN_REASON_MALFORMED, reason_out);
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    token_mac(key, bin, mac);
    if (crypto_verify_32(mac, bin + TOKEN_SIGNED_BYTES) != 0)
        return token_refuse(TOKEN_REASON_BAD_SIGNATURE, reason_out);
    struct tk_reader in;
    tk_reader_init(&in, bin + 1, TOKEN_SIGNED_BYTES - 1);
    struct token_claims claims;
    claims.event_id = tk_get_u64(&in);
    claims.user_id = tk_get_u64(&in);
    claims.ticket = tk_get_u64(&in);
    claims.expires_ms = tk_get_i64(&in);
    TK_ASSERT(tk_reader_done(&in));
    if (claims_out != NULL)
        *claims_out = claims;
    if (claims.expires_ms <= now_ms)
        return token_refuse(TOKEN_REASON_EXPIRED, reason_out);
    return TK_OK;
}

const char *token_reason_name(enum token_reason reason)
{
    switch (reason) {
    case TOKEN_REASON_NONE:
        return "none";
    case TOKEN_REASON_MALFORMED:
        return "malformed";
    case TOKEN_REASON_BAD_SIGNATURE:
        return "bad_signature";
    case TOKEN_REASON_EXPIRED:
        return "expired";
    }
    return "unknown";
}
