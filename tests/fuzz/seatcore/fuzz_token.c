/* fuzz_token.c — libFuzzer target: admission-token verification on any bytes
 * (a token arrives from clients). Must not crash, and must never accept a token
 * it did not sign. */
#include <stddef.h>
#include <stdint.h>

#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct token_key key;
    if (key.len == 0) {
        uint8_t bytes[32] = "fuzzing-key-fuzzing-key-fuzzing";
        token_key_init(&key, bytes, sizeof(bytes));
    }
    struct token_claims claims;
    enum token_reason reason;
    if (token_verify(&key, (const char *)data, size, 0, &claims, &reason) == TK_OK) {
        /* Accepted: it must be exactly what we would sign for those claims. */
        char again[TOKEN_TEXT_BYTES];
        if (token_sign(&key, &claims, again, sizeof(again)) != TK_OK || size != TOKEN_TEXT_LEN ||
            __builtin_memcmp(again, data, size) != 0)
            __builtin_trap();
    }
    return 0;
}
