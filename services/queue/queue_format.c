/* queue_format.c — ids, times, views, errors, Redis names and feed JSON
 * (queue_format.h). Pure functions: no I/O, no allocation. */
#include "queue_format.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tk_assert.h"

bool queue_parse_id(const char *text, uint64_t max, uint64_t *out)
{
    TK_ASSERT(out != NULL);
    *out = 0;
    if (text == NULL || text[0] < '1' || text[0] > '9')
        return false; /* empty, a sign, a space, a leading zero, not a digit */
    uint64_t value = 0;
    size_t i = 0;
    for (; text[i] != '\0'; i++) {
        if (i >= QUEUE_ID_DIGITS_MAX || text[i] < '0' || text[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10u)
            return false; /* past 2^64 - 1 */
        value = value * 10u + digit;
    }
    TK_ASSERT(i >= 1 && value >= 1);
    if (value > max)
        return false;
    *out = value;
    return true;
}

bool queue_format_time(int64_t ms, char *out, size_t out_len)
{
    TK_ASSERT(out != NULL && out_len > 0);
    out[0] = '\0';
    const int64_t year_10000_ms = INT64_C(253402300800000); /* 10000-01-01T00:00:00Z */
    if (ms < 0 || ms >= year_10000_ms)
        return false;
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&seconds, &tm) == NULL)
        return false;
    int n = snprintf(out, out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    if (n < 0 || (size_t)n >= out_len) {
        out[0] = '\0';
        return false;
    }
    return true;
}

const char *queue_state_name(Tiketi__V1__QueueState state)
{
    switch (state) {
    case TIKETI__V1__QUEUE_STATE__QUEUE_WAITING: return "waiting";
    case TIKETI__V1__QUEUE_STATE__QUEUE_ADMITTED: return "admitted";
    case TIKETI__V1__QUEUE_STATE__QUEUE_LEFT: return "left";
    case TIKETI__V1__QUEUE_STATE__QUEUE_EXPIRED: return "expired";
    default: return "unknown";
    }
}

void queue_view_from_engine(const Tiketi__V1__QueueView *in, const char *event_id_text, const char *user_id_text,
                            char *expires_at, Tiketi__V1__WaitingRoomView *out)
{
    TK_ASSERT(in != NULL && out != NULL && expires_at != NULL);
    TK_ASSERT(event_id_text != NULL && user_id_text != NULL);
    tiketi__v1__waiting_room_view__init(out);
    out->ticket = in->ticket;
    out->rank = in->rank;
    out->status = (char *)queue_state_name(in->state);
    out->event_id = (char *)event_id_text;
    out->user_id = (char *)user_id_text;
    expires_at[0] = '\0';
    out->admission_token = (char *)"";
    out->admission_expires_at = expires_at;
    if (in->state == TIKETI__V1__QUEUE_STATE__QUEUE_WAITING) {
        out->position = in->position;
        out->eta_s = in->eta_s;
    } else if (in->state == TIKETI__V1__QUEUE_STATE__QUEUE_ADMITTED && in->admission_token != NULL) {
        out->admission_token = in->admission_token;
        queue_format_time(in->admission_expires_ms, expires_at, QUEUE_TIME_TEXT_BYTES);
    }
}

static const char *code_name(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_INVALID_ARGUMENT: return "invalid_request";
    case GRPC_STATUS_NOT_FOUND: return "not_found";
    case GRPC_STATUS_RESOURCE_EXHAUSTED: return "limit_reached";
    case GRPC_STATUS_FAILED_PRECONDITION: return "failed_precondition";
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DEADLINE_EXCEEDED: return "unavailable";
    default: return "internal";
    }
}

void queue_error_from_engine(const struct rpc_error *engine, enum queue_error_context context,
                             struct rpc_error *out)
{
    TK_ASSERT(engine != NULL && out != NULL);
    TK_ASSERT(engine->code != GRPC_STATUS_OK);
    memset(out, 0, sizeof(*out));
    out->code = engine->code;
    snprintf(out->name, sizeof(out->name), "%s", engine->name[0] ? engine->name : code_name(engine->code));
    snprintf(out->message, sizeof(out->message), "%s", engine->message);
    switch (engine->code) {
    case GRPC_STATUS_NOT_FOUND:
        snprintf(out->message, sizeof(out->message), "%s",
                 context == QUEUE_ERROR_FOR_JOIN ? "no such event"
                                                 : "no such event, or the user has not joined its waiting room");
        break;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_CANCELLED:
        /* The caller may retry: say so with one code whatever the transport saw. */
        out->code = GRPC_STATUS_UNAVAILABLE;
        if (engine->name[0] == '\0' || engine->code != GRPC_STATUS_UNAVAILABLE)
            snprintf(out->name, sizeof(out->name), "unavailable");
        snprintf(out->message, sizeof(out->message), "the engine shard for this event did not answer (%s); retry",
                 rpc_code_name(engine->code));
        break;
    case GRPC_STATUS_UNIMPLEMENTED:
    case GRPC_STATUS_UNKNOWN:
    case GRPC_STATUS_DATA_LOSS:
        out->code = GRPC_STATUS_INTERNAL; /* a deployment mismatch, not the client's doing */
        snprintf(out->name, sizeof(out->name), "internal");
        break;
    default:
        break;
    }
    if (out->message[0] == '\0')
        snprintf(out->message, sizeof(out->message), "the engine refused the request (%s)", out->name);
    TK_ASSERT(out->code != GRPC_STATUS_OK && out->name[0] != '\0');
}

static bool name_fits(int n, size_t out_len)
{
    return n > 0 && (size_t)n < out_len;
}

bool queue_channel_name(uint64_t event_id, char *out, size_t out_len)
{
    return name_fits(snprintf(out, out_len, "tiketi:queue:%llu", (unsigned long long)event_id), out_len);
}

/* Keys carry the event id as a hash tag so one event's keys share a Redis
 * Cluster slot (the publish script touches them together). */
bool queue_lease_key(uint64_t event_id, char *out, size_t out_len)
{
    return name_fits(snprintf(out, out_len, "tiketi:queue:{%llu}:lease", (unsigned long long)event_id), out_len);
}

bool queue_next_rank_key(uint64_t event_id, char *out, size_t out_len)
{
    return name_fits(snprintf(out, out_len, "tiketi:queue:{%llu}:next_rank", (unsigned long long)event_id),
                     out_len);
}

bool queue_left_key(uint64_t event_id, char *out, size_t out_len)
{
    return name_fits(snprintf(out, out_len, "tiketi:queue:{%llu}:left", (unsigned long long)event_id), out_len);
}

static size_t fitted(int n, char *out, size_t out_len)
{
    if (n <= 0 || (size_t)n >= out_len) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

size_t queue_json_head(const struct queue_head_message *m, char *out, size_t out_len)
{
    TK_ASSERT(m != NULL && out != NULL && out_len > 0);
    /* JSON has no NaN or infinity; no engine admits a billion a second. */
    double rate = isfinite(m->rate_per_s) && m->rate_per_s > 0 ? m->rate_per_s : 0.0;
    rate = rate < 1e9 ? rate : 1e9;
    int n = snprintf(out, out_len,
                     "{\"type\":\"head\",\"event_id\":\"%llu\",\"head_rank\":%u,\"waiting\":%u,\"active\":%u,"
                     "\"rate\":%.3f,\"ts\":%lld}",
                     (unsigned long long)m->event_id, m->head_rank, m->waiting, m->active, rate,
                     (long long)m->ts_ms);
    return fitted(n, out, out_len);
}

/* Tokens are base64url (the engine's token.h); anything else is not ours to
 * forward, and needs no JSON escaping when it is. */
static bool token_text_ok(const char *token)
{
    if (token == NULL || token[0] == '\0')
        return false;
    size_t i = 0;
    for (; token[i] != '\0'; i++) {
        char c = token[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.';
        if (!ok || i >= QUEUE_TOKEN_BYTES_MAX)
            return false;
    }
    return true;
}

size_t queue_json_admitted(const struct queue_admitted_message *m, char *out, size_t out_len)
{
    TK_ASSERT(m != NULL && out != NULL && out_len > 0);
    out[0] = '\0';
    char expires[QUEUE_TIME_TEXT_BYTES];
    if (!token_text_ok(m->admission_token) || !queue_format_time(m->expires_ms, expires, sizeof(expires)))
        return 0;
    int n = snprintf(out, out_len,
                     "{\"type\":\"admitted\",\"event_id\":\"%llu\",\"user_id\":\"%llu\",\"rank\":%u,\"ticket\":%llu,"
                     "\"admission_token\":\"%s\",\"expires_at\":\"%s\",\"ts\":%lld}",
                     (unsigned long long)m->event_id, (unsigned long long)m->user_id, m->rank,
                     (unsigned long long)m->ticket, m->admission_token, expires, (long long)m->ts_ms);
    return fitted(n, out, out_len);
}

size_t queue_json_left(const struct queue_left_message *m, char *out, size_t out_len)
{
    TK_ASSERT(m != NULL && out != NULL && out_len > 0);
    int n = snprintf(out, out_len,
                     "{\"type\":\"left\",\"event_id\":\"%llu\",\"user_id\":\"%llu\",\"rank\":%u,\"ts\":%lld}",
                     (unsigned long long)m->event_id, (unsigned long long)m->user_id, m->rank,
                     (long long)m->ts_ms);
    return fitted(n, out, out_len);
}

bool queue_redis_parse_url(const char *url, struct queue_redis_address *out)
{
    TK_ASSERT(url != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    const char *p = strncmp(url, "redis://", 8) == 0 ? url + 8 : url;
    const char *slash = strchr(p, '/');
    size_t hostport_len = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon = memrchr(p, ':', hostport_len);
    if (colon == NULL || colon == p || (size_t)(colon - p) >= sizeof(out->host) || strchr(p, '@') != NULL)
        return false; /* no port, no host, or credentials (not supported: say so rather than leak them) */
    memcpy(out->host, p, (size_t)(colon - p));
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end != p + hostport_len || end == colon + 1 || port <= 0 || port > 65535)
        return false;
    out->port = (int)port;
    if (slash != NULL && slash[1] != '\0') {
        long db = strtol(slash + 1, &end, 10);
        if (*end != '\0' || db < 0 || db > 15)
            return false;
        out->db = (int)db;
    }
    return true;
}
