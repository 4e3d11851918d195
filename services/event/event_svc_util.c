/* event_svc_util.c — errors, deadlines and reply pieces the jobs share (event_svc.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "event_svc.h"
#include "event_time.h"
#include "tk_assert.h"

#define ANSWER_MARGIN_MS 50 /* left to build and send the answer after the last engine call */

static void error_vset(struct rpc_error *error, grpc_status_code code, const char *name, const char *fmt, va_list ap)
{
    TK_ASSERT(error != NULL && code != GRPC_STATUS_OK && name != NULL);
    memset(error, 0, sizeof(*error));
    error->code = code;
    snprintf(error->name, sizeof(error->name), "%s", name);
    vsnprintf(error->message, sizeof(error->message), fmt, ap);
}

void event_error_set(struct rpc_error *error, grpc_status_code code, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(error, code, name, fmt, ap);
    va_end(ap);
}

void event_fail(struct rpc_call *call, grpc_status_code code, const char *name, const char *fmt, ...)
{
    struct rpc_error error;
    va_list ap;
    va_start(ap, fmt);
    error_vset(&error, code, name, fmt, ap);
    va_end(ap);
    rpc_fail(call, &error);
}

int64_t event_call_budget_ms(struct rpc_call *call, uint32_t bound_ms)
{
    int64_t left = rpc_call_deadline_ms(call);
    if (left == INT64_MAX)
        return bound_ms;
    left -= ANSWER_MARGIN_MS;
    return left < (int64_t)bound_ms ? left : (int64_t)bound_ms;
}

Tiketi__V1__EventSummary *event_summary_out(struct rpc_arena *arena, const struct event_row *row, uint32_t available)
{
    TK_ASSERT(arena != NULL && row != NULL && row->id > 0);
    Tiketi__V1__EventSummary *out = rpc_arena_alloc(arena, sizeof(*out));
    char id[24], starts[EVENT_TIME_TEXT_BYTES], opens[EVENT_TIME_TEXT_BYTES];
    if (out == NULL)
        return NULL;
    tiketi__v1__event_summary__init(out);
    snprintf(id, sizeof(id), "%" PRIu64, row->id);
    event_time_format(row->starts_at_us, starts, sizeof(starts));
    event_time_format(row->sale_opens_at_us, opens, sizeof(opens));
    out->event_id = rpc_arena_strdup(arena, id);
    out->name = rpc_arena_strdup(arena, row->name);
    out->venue = rpc_arena_strdup(arena, row->venue);
    out->starts_at = rpc_arena_strdup(arena, starts);
    out->sale_opens_at = rpc_arena_strdup(arena, opens);
    out->status = rpc_arena_strdup(arena, row->status);
    out->capacity = row->capacity;
    out->available = available <= row->capacity ? available : row->capacity;
    if (out->event_id == NULL || out->name == NULL || out->venue == NULL || out->starts_at == NULL ||
        out->sale_opens_at == NULL || out->status == NULL)
        return NULL;
    return out;
}
