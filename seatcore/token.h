/* token.h — admission tokens: proof that the queue admitted (event, user) until a time.
 *
 * What it owns: the token format, signing and verification, and loading the key.
 * Why a signed token rather than a lookup: seatcored checks a token on every hold
 * without asking the queue's tables, and other processes (the edge, the services)
 * can check it too with the shared key. The price is that a token cannot be revoked
 * before it expires (leaving the queue does not kill it); its TTL is the grant's.
 *
 * Format: base64url without padding (TOKEN_TEXT_LEN characters) of
 *   u8 version(1) | u64 event_id | u64 user_id | u64 ticket | i64 expires_ms |
 *   32-byte HMAC-SHA256(key, "tiketi.admission" || the 33 bytes before it)
 * all little-endian. Verification refuses anything but the canonical encoding, so
 * a token has exactly one spelling, and compares the MAC in constant time. */
#ifndef TOKEN_H
#define TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "tk_status.h"

#define TOKEN_VERSION 1u
#define TOKEN_KEY_BYTES_MIN 32u
#define TOKEN_KEY_BYTES_MAX 128u
#define TOKEN_BINARY_BYTES 65u  /* 1 + 4 x 8 + 32 */
#define TOKEN_TEXT_LEN 87u      /* ceil(65 * 4 / 3) */
#define TOKEN_TEXT_BYTES 88u    /* with the terminating NUL: the size of an output buffer */

struct token_key {
    uint8_t bytes[TOKEN_KEY_BYTES_MAX];
    size_t len;
};

struct token_claims {
    uint64_t event_id;  /* nonzero */
    uint64_t user_id;   /* 1..TK_USER_ID_MAX */
    uint64_t ticket;
    int64_t expires_ms; /* wall clock, Unix epoch */
};

enum token_reason {
    TOKEN_REASON_NONE = 0,
    TOKEN_REASON_MALFORMED,     /* wrong length, not canonical base64url, unknown version */
    TOKEN_REASON_BAD_SIGNATURE, /* another key, or altered */
    TOKEN_REASON_EXPIRED,
};

/* len TOKEN_KEY_BYTES_MIN..MAX, else TK_ERR_INVALID. */
enum tk_status token_key_init(struct token_key *key, const void *bytes, size_t len);
/* Raw key bytes from a file. TK_ERR_NOT_FOUND (missing), TK_ERR_INVALID (too short,
 * too long, not a regular file), TK_ERR_IO; err (may be NULL) says which and where. */
enum tk_status token_key_load_file(const char *path, struct token_key *key, char *err, size_t err_len);
void token_key_wipe(struct token_key *key);

/* Writes TOKEN_TEXT_LEN characters and a NUL; out_len >= TOKEN_TEXT_BYTES.
 * TK_ERR_INVALID for bad claims or a short buffer; TK_ERR_UNAVAILABLE if libsodium
 * could not initialise. */
enum tk_status token_sign(const struct token_key *key, const struct token_claims *claims, char *out,
                          size_t out_len);
/* TK_OK and *claims_out, or TK_ERR_NOT_ADMITTED and *reason_out (both outputs may be
 * NULL). Any bytes at all are accepted as input. claims_out is also filled for an
 * expired token with a good signature. */
enum tk_status token_verify(const struct token_key *key, const char *token, size_t len, int64_t now_ms,
                            struct token_claims *claims_out, enum token_reason *reason_out);
const char *token_reason_name(enum token_reason reason);

#endif
