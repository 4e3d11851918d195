/* rpc_trace.c — request ids and traceparent (rpc_trace.h). */
#include "rpc_trace.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "tk_assert.h"

bool rpc_trace_request_id_valid(const char *id)
{
    size_t n = 0;
    for (; id[n] != '\0'; n++) {
        char c = id[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.';
        if (!ok || n >= 63)
            return false;
    }
    return n > 0;
}

static void hex_random(char *out, size_t digits)
{
    uint8_t bytes[32];
    TK_ASSERT(digits <= 64 && digits % 2 == 0);
    randombytes_buf(bytes, digits / 2);
    for (size_t i = 0; i < digits / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

void rpc_trace_new_request_id(char *out, size_t out_len)
{
    TK_ASSERT(out_len >= 33);
    hex_random(out, 32);
    out[32] = '\0';
}

static bool hex_run(const char *s, size_t n)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        nonzero |= c != '0';
    }
    return nonzero;
}

bool rpc_trace_traceparent_valid(const char *t)
{
    if (strlen(t) != 55 || strncmp(t, "00-", 3) != 0 || t[35] != '-' || t[52] != '-')
        return false;
    return hex_run(t + 3, 32) && hex_run(t + 36, 16) && (hex_run(t + 53, 2) || !strncmp(t + 53, "00", 2));
}

void rpc_trace_child(const char *traceparent, char *out, size_t out_len)
{
    TK_ASSERT(out_len >= 56);
    char trace_id[33], parent[17];
    if (traceparent != NULL && rpc_trace_traceparent_valid(traceparent)) {
        memcpy(trace_id, traceparent + 3, 32);
    } else {
        hex_random(trace_id, 32);
    }
    trace_id[32] = '\0';
    hex_random(parent, 16);
    parent[16] = '\0';
    snprintf(out, out_len, "00-%s-%s-01", trace_id, parent);
}
