/* event_query.c — ListEvents request validation (event_query.h). */
#include "event_query.h"

#include <stdio.h>
#include <string.h>

#include "event_spec.h"
#include "tk_assert.h"

const char *event_status_known(const char *status)
{
    static const char *const statuses[] = {"scheduled", "on_sale", "closed", "cancelled"};
    for (size_t i = 0; status != NULL && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(status, statuses[i]) == 0)
            return statuses[i];
    return NULL;
}

static bool word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

uint32_t event_search_tsquery(const char *q, char *out, size_t out_len)
{
    TK_ASSERT(q != NULL && out != NULL && out_len >= EVENT_TSQUERY_BYTES);
    TK_ASSERT(strlen(q) <= EVENT_SEARCH_BYTES_MAX);
    size_t n = 0;
    uint32_t words = 0;
    out[0] = '\0';
    for (const unsigned char *p = (const unsigned char *)q; *p != '\0' && words < EVENT_SEARCH_WORDS_MAX;) {
        if (!word_byte(*p)) {
            p++;
            continue;
        }
        n += (size_t)snprintf(out + n, out_len - n, "%s'", words ? " & " : "");
        for (; word_byte(*p); p++)
            out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + ('a' - 'A') : *p);
        n += (size_t)snprintf(out + n, out_len - n, "':*");
        words++;
        TK_ASSERT(n < out_len);
    }
    out[n] = '\0';
    return words;
}

bool event_list_query_from_request(const Tiketi__V1__ListEventsRequest *r, struct event_list_query *query,
                                   char *reason, size_t reason_len)
{
    TK_ASSERT(r != NULL && query != NULL && reason != NULL);
    memset(query, 0, sizeof(*query));
    if (r->status != NULL && r->status[0] != '\0' && (query->status = event_status_known(r->status)) == NULL) {
        snprintf(reason, reason_len, "status must be scheduled, on_sale, closed or cancelled (or empty for any)");
        return false;
    }
    size_t q_len = r->q ? strlen(r->q) : 0;
    if (q_len > EVENT_SEARCH_BYTES_MAX || !event_text_valid_utf8(r->q ? r->q : "", q_len)) {
        snprintf(reason, reason_len, "q must be at most %u bytes of UTF-8", EVENT_SEARCH_BYTES_MAX);
        return false;
    }
    if (q_len > 0) {
        query->search = true;
        event_search_tsquery(r->q, query->tsquery, sizeof(query->tsquery));
    }
    if (r->limit > EVENT_LIST_LIMIT_MAX) {
        snprintf(reason, reason_len, "limit must be 1..%u (0: %u)", EVENT_LIST_LIMIT_MAX, EVENT_LIST_LIMIT_DEFAULT);
        return false;
    }
    query->limit = r->limit ? r->limit : EVENT_LIST_LIMIT_DEFAULT;
    if (r->cursor != NULL && r->cursor[0] != '\0') {
        if (!event_cursor_decode(r->cursor, &query->cursor)) {
            snprintf(reason, reason_len, "cursor is not one this service issued (use next_cursor as given)");
            return false;
        }
        query->after = true;
    }
    return true;
}
