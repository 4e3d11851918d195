/* svc_flags.h — settings from flags and environment, for every daemon.
 *
 * A daemon lists its settings in a table (name, environment variable, help,
 * type, where to store it, bounds). The parser fills defaults first (whatever
 * the storage holds), then the environment, then the command line (flags win),
 * and prints --help from the same table, so the help, the Kubernetes ConfigMap
 * names and the code cannot drift apart. --check-config validates and exits.
 * A bad value is refused with the setting's name and what it accepts. */
#ifndef SVC_FLAGS_H
#define SVC_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum svc_flag_type { SVC_FLAG_STRING, SVC_FLAG_U32, SVC_FLAG_BOOL, SVC_FLAG_LOG_LEVEL };

struct svc_flag {
    const char *name; /* "listen" -> --listen */
    const char *env;  /* "AUTH_LISTEN"; NULL: flag only */
    const char *help;
    enum svc_flag_type type;
    void *target;      /* char[target_len], uint32_t, bool, or enum rpc_log_level */
    size_t target_len; /* strings only */
    uint32_t min, max; /* u32 only */
    bool required;     /* must end up non-empty (strings) */
    bool secret;       /* value never echoed in messages */
};

#define SVC_FLAGS_MAX 64u

/* 0: run; 1: exit 0 (help printed); -1: exit 2 (message printed). *check_only
 * is set by --check-config. */
int svc_flags_parse(const char *program, const char *summary, const struct svc_flag *flags, size_t count, int argc,
                    char **argv, bool *check_only);
void svc_flags_usage(FILE *out, const char *program, const char *summary, const struct svc_flag *flags,
                     size_t count);
/* Splits a comma-separated list into up to max entries of len bytes; returns the
 * count, or -1 when an entry is empty, too long, or there are too many. */
int svc_split_list(const char *text, char *entries, size_t len, size_t max);

#endif
