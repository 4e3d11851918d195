/* rpc_log.c — JSON log lines (rpc_log.h). */
#include "rpc_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tk_assert.h"

static char log_component[64] = "tiketi";
static enum rpc_log_level log_min = RPC_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void rpc_log_init(const char *component, enum rpc_log_level min_level)
{
    TK_ASSERT(component != NULL);
    TK_ASSERT(min_level <= RPC_LOG_ERROR);
    snprintf(log_component, sizeof(log_component), "%s", component);
    log_min = min_level;
}

bool rpc_log_enabled(enum rpc_log_level level)
{
    return level >= log_min;
}

void rpc_json_escape(char *out, size_t out_len, const char *s)
{
    TK_ASSERT(out != NULL && out_len > 0);
    size_t n = 0;
    for (; s != NULL && *s != '\0' && n + 7 < out_len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, out_len - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

void rpc_log(enum rpc_log_level level, const char *fields, const char *fmt, ...)
{
    TK_ASSERT(level <= RPC_LOG_ERROR);
    if (level < log_min)
        return;
    char message[1024], escaped[2048], line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    rpc_json_escape(escaped, sizeof(escaped), message);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\","
                     "\"msg\":\"%s\"%s%s}\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], log_component, escaped,
                     fields != NULL && fields[0] ? "," : "", fields != NULL ? fields : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 2] = '}';
        line[n - 1] = '\n';
    }
    ssize_t written = write(STDERR_FILENO, line, (size_t)n);
    (void)written; /* nowhere to report a failing stderr */
}

void rpc_log_sink(void *ctx, const char *level, const char *message)
{
    (void)ctx;
    enum rpc_log_level l = RPC_LOG_INFO;
    if (strcmp(level, "warn") == 0)
        l = RPC_LOG_WARN;
    else if (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0)
        l = RPC_LOG_ERROR;
    else if (strcmp(level, "debug") == 0)
        l = RPC_LOG_DEBUG;
    rpc_log(l, "", "%s", message);
}
