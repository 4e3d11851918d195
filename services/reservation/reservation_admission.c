/* reservation_admission.c — offline admission-token check (reservation_admission.h). */
#include "reservation_admission.h"

#include <string.h>

#include "tk_assert.h"

enum tk_status rsv_admission_check(const struct token_key *key, const char *token, uint64_t event_id,
                                   uint64_t user_id, int64_t now_ms, const char **why)
{
    TK_ASSERT(key != NULL && why != NULL);
    TK_ASSERT(event_id != 0 && user_id != 0);
    *why = NULL;
    size_t len = token != NULL ? strnlen(token, TOKEN_TEXT_BYTES) : 0;
    if (len == 0) {
        *why = "an admission token from the waiting room is required";
        return TK_ERR_NOT_ADMITTED;
    }
    if (key->len == 0) {
        *why = "admission tokens cannot be checked (no key configured)";
        return TK_ERR_NOT_ADMITTED;
    }
    struct token_claims claims;
    enum token_reason reason = TOKEN_REASON_NONE;
    if (token_verify(key, token, len, now_ms, &claims, &reason) != TK_OK) {
        TK_ASSERT(reason != TOKEN_REASON_NONE);
        *why = reason == TOKEN_REASON_EXPIRED ? "the admission token has expired: join the waiting room again"
               : reason == TOKEN_REASON_BAD_SIGNATURE ? "the admission token is not genuine"
                                                        : "the admission token is malformed";
        return TK_ERR_NOT_ADMITTED;
    }
    if (claims.event_id != event_id || claims.user_id != user_id) {
        *why = "the admission token was issued for another event or user";
        return TK_ERR_NOT_ADMITTED;
    }
    return TK_OK;
}
