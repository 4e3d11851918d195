/* common_rows.c — result rows, number formatting and the JSON pieces every
 * bench writes the same way.
 *
 * Rows are kept in run order and looked up by a stable id, so ratios and
 * targets name exactly which two figures they compare. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

/* ---- rows ---- */

struct bench_row *bench_row_add(struct bench_report *report, const char *id, const char *group, const char *name,
                                uint32_t threads)
{
    if (report->count >= BENCH_ROWS_MAX) {
        fprintf(stderr, "%s: more than %u rows; %s dropped\n", program_invocation_short_name, BENCH_ROWS_MAX, id);
        return NULL;
    }
    struct bench_row *row = &report->rows[report->count++];
    memset(row, 0, sizeof(*row));
    snprintf(row->id, sizeof(row->id), "%s", id);
    snprintf(row->group, sizeof(row->group), "%s", group);
    snprintf(row->name, sizeof(row->name), "%s", name);
    row->threads = threads;
    row->ops_per_s = -1;
    row->p50_ns = -1;
    row->p90_ns = -1;
    row->p99_ns = -1;
    row->p999_ns = -1;
    row->ratio = -1;
    row->cores = -1;
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "  running %-26s ...\r", id);
    return row;
}

struct bench_row *bench_row_find(struct bench_report *report, const char *id)
{
    for (uint32_t i = 0; i < report->count; i++)
        if (strcmp(report->rows[i].id, id) == 0)
            return &report->rows[i];
    return NULL;
}

void bench_row_extra(struct bench_row *row, const char *name, double value)
{
    for (uint32_t i = 0; i < row->extra_count; i++) {
        if (strcmp(row->extras[i].name, name) == 0) {
            row->extras[i].value = value;
            return;
        }
    }
    if (row->extra_count >= BENCH_EXTRAS_MAX)
        return;
    snprintf(row->extras[row->extra_count].name, sizeof(row->extras[0].name), "%s", name);
    row->extras[row->extra_count++].value = value;
}

double bench_row_extra_get(const struct bench_row *row, const char *name, double missing)
{
    for (uint32_t i = 0; i < row->extra_count; i++)
        if (strcmp(row->extras[i].name, name) == 0)
            return row->extras[i].value;
    return missing;
}

void bench_row_note(struct bench_row *row, const char *fmt, ...)
{
    size_t used = strlen(row->notes);
    if (used > 0 && used + 2 < sizeof(row->notes)) {
        memcpy(row->notes + used, "; ", 3);
        used += 2;
    }
    if (used + 1 >= sizeof(row->notes))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(row->notes + used, sizeof(row->notes) - used, fmt, ap);
    va_end(ap);
}

void bench_row_skip(struct bench_row *row, const char *why)
{
    row->skipped = true;
    row->ops_per_s = -1;
    snprintf(row->notes, sizeof(row->notes), "skipped: %s", why);
}

/* ---- formatting ---- */

const char *bench_fmt_count(char *buf, size_t len, double n)
{
    if (n < 0 || isnan(n)) {
        snprintf(buf, len, "-");
        return buf;
    }
    char digits[32];
    snprintf(digits, sizeof(digits), "%.0f", n);
    size_t d = strlen(digits), o = 0;
    for (size_t i = 0; i < d && o + 2 < len; i++) {
        if (i > 0 && (d - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

const char *bench_fmt_ns(char *buf, size_t len, double ns)
{
    if (ns < 0 || isnan(ns))
        snprintf(buf, len, "-");
    else if (ns < 1e3)
        snprintf(buf, len, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(buf, len, "%.1fus", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, len, "%.2fms", ns / 1e6);
    else
        snprintf(buf, len, "%.2fs", ns / 1e9);
    return buf;
}

const char *bench_fmt_ratio(char *buf, size_t len, double ratio)
{
    if (ratio < 0 || isnan(ratio) || isinf(ratio))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, ratio < 10 ? "%.2fx" : "%.1fx", ratio);
    return buf;
}

void bench_row_progress(const struct bench_row *row)
{
    char ops[32], p50[16], p99[16], cores[16];
    if (row->cores >= 0)
        snprintf(cores, sizeof(cores), "%.2f", row->cores);
    else
        snprintf(cores, sizeof(cores), "-");
    fprintf(stderr, "  %-26s %2u thr %13s ops/s  p50 %8s  p99 %8s  cpu %5s  %s\n", row->id, row->threads,
            bench_fmt_count(ops, sizeof(ops), row->ops_per_s), bench_fmt_ns(p50, sizeof(p50), row->p50_ns),
            bench_fmt_ns(p99, sizeof(p99), row->p99_ns), cores, row->notes);
}

const char *bench_verdict_name(enum bench_verdict verdict)
{
    return verdict == BENCH_PASS ? "PASS" : verdict == BENCH_MISS ? "MISS" : "n/a";
}

/* ---- JSON ---- */

void bench_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void bench_json_number(FILE *f, double v)
{
    if (v < 0 || isnan(v) || isinf(v))
        fprintf(f, "null");
    else
        fprintf(f, "%.6g", v);
}

void bench_json_row(FILE *f, const struct bench_row *r)
{
    fprintf(f, "    {\"id\": ");
    bench_json_string(f, r->id);
    fprintf(f, ", \"group\": ");
    bench_json_string(f, r->group);
    fprintf(f, ", \"name\": ");
    bench_json_string(f, r->name);
    fprintf(f, ", \"threads\": %u, \"skipped\": %s, \"ops_per_s\": ", r->threads, r->skipped ? "true" : "false");
    bench_json_number(f, r->ops_per_s);
    fprintf(f, ", \"p50_ns\": ");
    bench_json_number(f, r->p50_ns);
    if (r->p90_ns >= 0) { /* only benches that measure them: older JSON stays as it was */
        fprintf(f, ", \"p90_ns\": ");
        bench_json_number(f, r->p90_ns);
    }
    fprintf(f, ", \"p99_ns\": ");
    bench_json_number(f, r->p99_ns);
    if (r->p999_ns >= 0) {
        fprintf(f, ", \"p999_ns\": ");
        bench_json_number(f, r->p999_ns);
    }
    fprintf(f, ", \"ratio\": ");
    bench_json_number(f, r->ratio);
    fprintf(f, ", \"cpu_cores\": ");
    bench_json_number(f, r->cores);
    fprintf(f, ", \"baseline\": ");
    if (r->baseline_id[0] != '\0')
        bench_json_string(f, r->baseline_id);
    else
        fprintf(f, "null");
    fprintf(f, ", \"notes\": ");
    bench_json_string(f, r->notes);
    fprintf(f, ", \"extras\": {");
    for (uint32_t i = 0; i < r->extra_count; i++) {
        fprintf(f, "%s", i > 0 ? ", " : "");
        bench_json_string(f, r->extras[i].name);
        fprintf(f, ": %.6g", r->extras[i].value);
    }
    fprintf(f, "}}");
}

void bench_json_machine(FILE *f, const struct bench_machine *m)
{
    fprintf(f, "  \"date\": ");
    bench_json_string(f, m->date);
    fprintf(f, ",\n  \"machine\": {\"nproc\": %ld, \"cpu\": ", m->nproc);
    bench_json_string(f, m->cpu_model);
    fprintf(f, ", \"kernel\": ");
    bench_json_string(f, m->kernel);
    fprintf(f, ", \"wal_backend\": ");
    bench_json_string(f, m->wal_backend);
    fprintf(f, ", \"data_dir\": ");
    bench_json_string(f, m->data_dir);
    fprintf(f, ", \"data_fs\": ");
    bench_json_string(f, m->data_fs);
    fprintf(f, ", \"load_start\": ");
    bench_json_string(f, m->load_start);
    fprintf(f, ", \"load_end\": ");
    bench_json_string(f, m->load_end);
    fprintf(f, "}");
}

bool bench_list_names(const char *list, const char *item)
{
    if (list == NULL)
        return true;
    size_t len = strlen(item);
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, item, len) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}
