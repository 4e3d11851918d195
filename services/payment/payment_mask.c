/* payment_mask.c — masking and input checks (payment_mask.h). libc only, so the
 * unit tests compile it directly. */
#include "payment_mask.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "tk_assert.h"

#define TOKEN_BYTES_MAX 255u
#define KEY_BYTES_MAX 255u

void payment_mask_token(const char *token, char *out, size_t out_len)
{
    TK_ASSERT(out != NULL && out_len >= PAYMENT_CARD_HINT_BYTES);
    size_t len = token != NULL ? strnlen(token, TOKEN_BYTES_MAX + 1) : 0;
    if (len <= 6) {
        snprintf(out, out_len, "****");
        return;
    }
    snprintf(out, out_len, "%.4s****%.2s", token, token + len - 2);
    for (char *p = out; *p != '\0'; p++)
        if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
            *p = '?';
    TK_ASSERT(strlen(out) == 10);
}

bool payment_token_valid(const char *token)
{
    size_t len = token != NULL ? strnlen(token, TOKEN_BYTES_MAX + 1) : 0;
    if (len == 0 || len > TOKEN_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)token[i]) && token[i] != '_' && token[i] != '-')
            return false;
    return true;
}

bool payment_key_valid(const char *key)
{
    size_t len = key != NULL ? strnlen(key, KEY_BYTES_MAX + 1) : 0;
    if (len == 0 || len > KEY_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            return false;
    return true;
}

bool payment_uuid_valid(const char *text)
{
    if (text == NULL || strnlen(text, 37) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = text[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

bool payment_parse_user_id(const char *text, int64_t *out)
{
    size_t len = text != NULL ? strnlen(text, 20) : 0;
    if (len == 0 || len > 19 || text[0] == '0')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i]))
            return false;
        int digit = text[i] - '0';
        if (v > (INT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

bool payment_currency_normalise(const char *text, char out[4])
{
    if (text == NULL || text[0] == '\0') {
        memcpy(out, "EUR", 4);
        return true;
    }
    if (strnlen(text, 4) != 3)
        return false;
    for (int i = 0; i < 3; i++) {
        if (!isalpha((unsigned char)text[i]))
            return false;
        out[i] = (char)toupper((unsigned char)text[i]);
    }
    out[3] = '\0';
    return true;
}
