/* svc_flags.c — table-driven flags and environment (svc_flags.h). */
#include "svc_flags.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_log.h"
#include "tk_assert.h"

void svc_flags_usage(FILE *out, const char *program, const char *summary, const struct svc_flag *flags,
                     size_t count)
{
    fprintf(out, "usage: %s [options]\n\n%s\nEvery option can also be set by the environment variable shown\n"
                 "(the flag wins).\n\n",
            program, summary);
    for (size_t i = 0; i < count; i++)
        fprintf(out, "  --%-22s %-32s %s%s\n", flags[i].name, flags[i].env ? flags[i].env : "", flags[i].help,
                flags[i].required ? " (required)" : "");
    fprintf(out, "  --%-22s %-32s %s\n  --%-22s %-32s %s\n", "check-config", "", "validate the settings and exit",
            "help", "", "print this help and exit");
}

static bool parse_u32(const char *text, const struct svc_flag *flag)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < flag->min || v > flag->max)
        return false;
    *(uint32_t *)flag->target = (uint32_t)v;
    return true;
}

static bool apply(const struct svc_flag *flag, const char *value)
{
    switch (flag->type) {
    case SVC_FLAG_STRING: {
        size_t n = strlen(value);
        if (n >= flag->target_len)
            return false;
        memcpy(flag->target, value, n + 1);
        return true;
    }
    case SVC_FLAG_U32:
        return parse_u32(value, flag);
    case SVC_FLAG_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") || value[0] == '\0')
            *(bool *)flag->target = true;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no"))
            *(bool *)flag->target = false;
        else
            return false;
        return true;
    case SVC_FLAG_LOG_LEVEL: {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++)
            if (!strcmp(value, names[i])) {
                *(enum rpc_log_level *)flag->target = (enum rpc_log_level)i;
                return true;
            }
        return false;
    }
    }
    return false;
}

static void refuse(const char *program, const struct svc_flag *flag, const char *where, const char *value)
{
    const char *shown = flag->secret ? "(hidden)" : value;
    if (flag->type == SVC_FLAG_U32)
        fprintf(stderr, "%s: bad value '%s' for %s: want a whole number %u..%u (%s)\n", program, shown, where,
                flag->min, flag->max, flag->help);
    else
        fprintf(stderr, "%s: bad value '%s' for %s (%s)\n", program, shown, where, flag->help);
}

static int parse_env(const char *program, const struct svc_flag *flags, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char *value = flags[i].env ? getenv(flags[i].env) : NULL;
        if (value == NULL || value[0] == '\0')
            continue;
        if (!apply(&flags[i], value)) {
            refuse(program, &flags[i], flags[i].env, value);
            return -1;
        }
    }
    return 0;
}

static int check_required(const char *program, const struct svc_flag *flags, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (flags[i].required && flags[i].type == SVC_FLAG_STRING && ((char *)flags[i].target)[0] == '\0') {
            fprintf(stderr, "%s: --%s%s%s%s is required (%s)\n", program, flags[i].name, flags[i].env ? " (" : "",
                    flags[i].env ? flags[i].env : "", flags[i].env ? ")" : "", flags[i].help);
            return -1;
        }
    return 0;
}

int svc_flags_parse(const char *program, const char *summary, const struct svc_flag *flags, size_t count, int argc,
                    char **argv, bool *check_only)
{
    TK_ASSERT(count <= SVC_FLAGS_MAX && check_only != NULL);
    *check_only = false;
    if (parse_env(program, flags, count) != 0)
        return -1;
    struct option options[SVC_FLAGS_MAX + 3];
    for (size_t i = 0; i < count; i++)
        options[i] = (struct option){flags[i].name,
                                     flags[i].type == SVC_FLAG_BOOL ? optional_argument : required_argument, NULL,
                                     (int)(256 + i)};
    options[count] = (struct option){"check-config", no_argument, NULL, 1};
    options[count + 1] = (struct option){"help", no_argument, NULL, 2};
    options[count + 2] = (struct option){0};
    optind = 1;
    opterr = 0;
    for (;;) {
        int index = getopt_long(argc, argv, "", options, NULL);
        if (index == -1)
            break;
        if (index == 2) {
            svc_flags_usage(stdout, program, summary, flags, count);
            return 1;
        }
        if (index == 1) {
            *check_only = true;
            continue;
        }
        if (index < 256) {
            fprintf(stderr, "%s: unknown or incomplete option '%s' (see --help)\n", program, argv[optind - 1]);
            return -1;
        }
        const struct svc_flag *flag = &flags[index - 256];
        const char *value = optarg != NULL ? optarg : "";
        if (!apply(flag, value)) {
            char where[80];
            snprintf(where, sizeof(where), "--%s", flag->name);
            refuse(program, flag, where, value);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", program, argv[optind]);
        return -1;
    }
    return check_required(program, flags, count);
}

int svc_split_list(const char *text, char *entries, size_t len, size_t max)
{
    TK_ASSERT(text != NULL && entries != NULL && len > 1);
    size_t count = 0;
    const char *p = text;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= len || count == max)
            return -1;
        memcpy(entries + count * len, p, n);
        entries[count * len + n] = '\0';
        count++;
        p += n + (comma ? 1 : 0);
        if (comma != NULL && *p == '\0')
            return -1; /* a trailing comma: an empty last entry */
    }
    return (int)count;
}
