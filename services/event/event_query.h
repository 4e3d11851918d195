/* event_query.h — a validated ListEvents request.
 *
 * status must be one of the four the catalog knows; q is split into words
 * that become a prefix text-search query on the events' names (the GIN index
 * of 0002_catalog.sql, 'simple' configuration): every word must match a word
 * of the name or the beginning of one, case-insensitively for ASCII. Only
 * letters, digits and non-ASCII bytes make words, so the query text handed to
 * to_tsquery() can never carry its operators or quotes, whatever q holds (it
 * travels as a bound parameter besides). Pure, no I/O. */
#ifndef EVENT_QUERY_H
#define EVENT_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_cursor.h"
#include "tiketi/v1/event.pb-c.h"

#define EVENT_LIST_LIMIT_DEFAULT 20u
#define EVENT_LIST_LIMIT_MAX 100u
#define EVENT_SEARCH_BYTES_MAX 200u
#define EVENT_SEARCH_WORDS_MAX 16u
/* Each word becomes 'word':* and " & " joins them. */
#define EVENT_TSQUERY_BYTES (EVENT_SEARCH_BYTES_MAX + EVENT_SEARCH_WORDS_MAX * 8u + 1u)

struct event_list_query {
    const char *status;  /* NULL: any; else a static string */
    bool search;         /* q had text */
    char tsquery[EVENT_TSQUERY_BYTES]; /* "" when q had no words: matches nothing */
    uint32_t limit;
    bool after;          /* a cursor was given */
    struct event_cursor cursor;
};

bool event_list_query_from_request(const Tiketi__V1__ListEventsRequest *request, struct event_list_query *query,
                                   char *reason, size_t reason_len);
/* Builds the prefix query from free text; returns the number of words. */
uint32_t event_search_tsquery(const char *q, char *out, size_t out_len);
/* The statuses a listing may be filtered by (and the only ones replies use). */
const char *event_status_known(const char *status);

#endif
