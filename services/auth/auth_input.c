/* auth_input.c — checks of what clients send (auth.h).
 *
 * Everything from the wire is checked here before it reaches SQL or a hash:
 * lengths first (so nothing is scanned past its bound), then shape. E-mail
 * checking is deliberately simple (one '@', a dotted domain, no spaces or control
 * characters, valid UTF-8): the address is proven by mail, not by a regex. */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "tk_assert.h"

/* Valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)
 * with no control characters (C0, DEL). */
static bool utf8_printable(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F)
                return false;
            i++;
            continue;
        }
        size_t extra;
        unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            lo = c == 0xE0 ? 0xA0 : lo;
            hi = c == 0xED ? 0x9F : hi;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            lo = c == 0xF0 ? 0x90 : lo;
            hi = c == 0xF4 ? 0x8F : hi;
        } else {
            return false;
        }
        if (len - i <= extra || p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= extra; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
        i += extra + 1;
    }
    return true;
}

bool auth_email_normalize(const char *email, char out[AUTH_EMAIL_BYTES], const char **why)
{
    TK_ASSERT(out != NULL && why != NULL);
    out[0] = '\0';
    *why = "the e-mail address must look like name@example.com (3..254 bytes)";
    size_t len = email ? strnlen(email, AUTH_EMAIL_BYTES) : 0;
    if (len < 3 || len >= AUTH_EMAIL_BYTES || !utf8_printable(email, len))
        return false;
    const char *at = strchr(email, '@');
    if (at == NULL || at == email || strchr(at + 1, '@') != NULL || (size_t)(at - email) > 64)
        return false;
    const char *domain = at + 1;
    size_t domain_len = len - (size_t)(domain - email);
    const char *dot = strchr(domain, '.');
    if (domain_len < 3 || dot == NULL || dot == domain || domain[domain_len - 1] == '.' || strstr(domain, ".."))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = email[i];
        if (c == ' ' || c == '"' || c == '\\' || c == ',' || c == ';' || c == '<' || c == '>')
            return false;
        out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    out[len] = '\0';
    *why = NULL;
    return true;
}

bool auth_name_check(const char *name, const char **why)
{
    TK_ASSERT(why != NULL);
    size_t len = name ? strnlen(name, AUTH_NAME_BYTES_MAX + 1) : 0;
    *why = NULL;
    if (len == 0 || len > AUTH_NAME_BYTES_MAX || !utf8_printable(name, len))
        *why = "the name must be 1..200 bytes of UTF-8 text without control characters";
    return *why == NULL;
}

bool auth_ip_key(const char *client_ip, char out[AUTH_IP_KEY_BYTES], const char **why)
{
    TK_ASSERT(out != NULL && why != NULL);
    out[0] = '\0';
    *why = NULL;
    if (client_ip == NULL || client_ip[0] == '\0')
        return true;
    char text[INET6_ADDRSTRLEN];
    size_t len = strnlen(client_ip, sizeof(text));
    unsigned char addr[16];
    if (len < sizeof(text)) {
        memcpy(text, client_ip, len + 1);
        if (inet_pton(AF_INET, text, addr) == 1 && inet_ntop(AF_INET, addr, text, sizeof(text)) != NULL) {
            snprintf(out, AUTH_IP_KEY_BYTES, "ip:%s", text);
            return true;
        }
        if (inet_pton(AF_INET6, text, addr) == 1) {
            /* One IPv6 host usually has a whole /64: count the prefix, not the address. */
            memset(addr + 8, 0, 8);
            if (inet_ntop(AF_INET6, addr, text, sizeof(text)) != NULL) {
                snprintf(out, AUTH_IP_KEY_BYTES, "ip:%s/64", text);
                return true;
            }
        }
    }
    *why = "client_ip must be an IPv4 or IPv6 address";
    return false;
}

bool auth_user_id_check(const char *user_id, char out[AUTH_USER_ID_BYTES])
{
    TK_ASSERT(out != NULL);
    out[0] = '\0';
    size_t len = user_id ? strnlen(user_id, AUTH_USER_ID_BYTES) : 0;
    if (len == 0 || len > 19 || user_id[0] == '0')
        return false;
    for (size_t i = 0; i < len; i++)
        if (user_id[i] < '0' || user_id[i] > '9')
            return false;
    if (len == 19 && strcmp(user_id, "9223372036854775807") > 0)
        return false; /* past BIGINT */
    memcpy(out, user_id, len + 1);
    return true;
}

bool auth_refresh_token_hash(const char *token, uint8_t out[AUTH_REFRESH_HASH_BYTES])
{
    TK_ASSERT(out != NULL);
    uint8_t raw[AUTH_REFRESH_TOKEN_RAW_BYTES];
    size_t raw_len = 0;
    const char *end = NULL;
    size_t len = token ? strnlen(token, AUTH_REFRESH_TOKEN_TEXT_BYTES) : 0;
    if (len != AUTH_REFRESH_TOKEN_TEXT_BYTES - 1)
        return false;
    if (sodium_base642bin(raw, sizeof(raw), token, len, NULL, &raw_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        raw_len != sizeof(raw) || end != token + len)
        return false;
    crypto_hash_sha256(out, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    return true;
}
