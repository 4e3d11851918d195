/* fuzz_jwt.c — libFuzzer target: access-token verification (svc_jwt) on any
 * bytes, as the edge does for every Authorization header. Must not crash, and
 * must never accept a token that our key did not sign. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct svc_jwt_keyset set;
    static bool loaded;
    if (!loaded) {
        setenv("FUZZ_JWT_KEY", "fuzzing-key-fuzzing-key-fuzzing-key-0123", 1);
        struct svc_jwt_keyset_config config = {.keys = "k1=env:FUZZ_JWT_KEY", .current_kid = "k1",
                                               .issuer = "tiketi", .audience = "tiketi-api"};
        char err[256];
        if (svc_jwt_keyset_load(&set, &config, err, sizeof(err)) != TK_OK)
            abort();
        loaded = true;
    }
    char *token = malloc(size + 1);
    memcpy(token, data, size);
    token[size] = '\0';
    struct svc_jwt_claims claims;
    const char *reason;
    if (svc_jwt_verify(&set, token, 1700000000, &claims, &reason) == TK_OK) {
        /* Accepted: the claims are whole, and signing them again verifies too. */
        char again[4096];
        struct svc_jwt_claims back;
        if (claims.sub[0] == '\0' || svc_jwt_sign(&set, &claims, again, sizeof(again)) != TK_OK ||
            svc_jwt_verify(&set, again, 1700000000, &back, &reason) != TK_OK || strcmp(back.sub, claims.sub) != 0)
            __builtin_trap();
    }
    free(token);
    return 0;
}
