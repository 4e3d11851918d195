/* rpc_log.h — JSON log lines for every daemon.
 *
 * One line per event on stderr: {"ts","level","component","msg", ...fields}.
 * Daemons log JSON so that the local stack and Kubernetes can ship the lines
 * as they are. A line is formatted into a stack buffer and written with one
 * write(2), so lines from many threads never interleave. Secrets never go
 * through here: callers pass ids, not tokens or passwords. */
#ifndef RPC_LOG_H
#define RPC_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum rpc_log_level { RPC_LOG_DEBUG = 0, RPC_LOG_INFO = 1, RPC_LOG_WARN = 2, RPC_LOG_ERROR = 3 };

/* Process-wide settings; call once at start (defaults: "tiketi", info). */
void rpc_log_init(const char *component, enum rpc_log_level min_level);
bool rpc_log_enabled(enum rpc_log_level level);
/* fields: "" or a JSON fragment of extra members, e.g. "\"request_id\":\"abc\"". */
void rpc_log(enum rpc_log_level level, const char *fields, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Adapts to the engine's log sink signature (seatcore config.log). */
void rpc_log_sink(void *ctx, const char *level, const char *message);
/* Escapes s into out as the inside of a JSON string (always NUL-terminated). */
void rpc_json_escape(char *out, size_t out_len, const char *s);

#endif
