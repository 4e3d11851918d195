/* test_event_query.c — tests services/event/event_query.c: ListEvents
 * validation and the search words turned into a prefix tsquery that can never
 * carry tsquery syntax from the client. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../services/event/event_cursor.c"
#include "../../../services/event/event_query.c"
#include "../../../services/event/event_spec.c"
#include "../../../services/event/event_time.c"

static void tsquery(const char *q, const char *expected, uint32_t words)
{
    char out[EVENT_TSQUERY_BYTES];
    cr_assert_eq(event_search_tsquery(q, out, sizeof(out)), words, "words of '%s'", q);
    cr_assert_str_eq(out, expected, "tsquery of '%s'", q);
}

Test(event_search, words_become_prefix_terms)
{
    tsquery("Rock", "'rock':*", 1);
    tsquery("  Rock   FEST 2031 ", "'rock':* & 'fest':* & '2031':*", 3);
    tsquery("caf\xc3\xa9", "'caf\xc3\xa9':*", 1);
    tsquery("", "", 0);
    tsquery("';--", "", 0);
}

Test(event_search, operators_and_quotes_never_pass)
{
    tsquery("x' OR '1'='1", "'x':* & 'or':* & '1':* & '1':*", 4);
    tsquery("a & !b | c:* <-> (d)", "'a':* & 'b':* & 'c':* & 'd':*", 4);
    tsquery("Robert'); DROP TABLE events;--", "'robert':* & 'drop':* & 'table':* & 'events':*", 4);
    tsquery("back\\slash", "'back':* & 'slash':*", 2);
    char many[EVENT_SEARCH_BYTES_MAX + 1];
    memset(many, 0, sizeof(many));
    for (size_t i = 0; i + 2 <= EVENT_SEARCH_BYTES_MAX; i += 2)
        memcpy(many + i, "a ", 2);
    char out[EVENT_TSQUERY_BYTES];
    cr_assert_eq(event_search_tsquery(many, out, sizeof(out)), EVENT_SEARCH_WORDS_MAX, "at most 16 words");
}

static bool parse(Tiketi__V1__ListEventsRequest *r, struct event_list_query *q, char *reason)
{
    return event_list_query_from_request(r, q, reason, EVENT_REASON_BYTES);
}

Test(event_list_query, defaults_and_bounds)
{
    Tiketi__V1__ListEventsRequest r = TIKETI__V1__LIST_EVENTS_REQUEST__INIT;
    struct event_list_query q;
    char reason[EVENT_REASON_BYTES];
    cr_assert(parse(&r, &q, reason), "%s", reason);
    cr_assert_eq(q.limit, EVENT_LIST_LIMIT_DEFAULT);
    cr_assert_null(q.status);
    cr_assert_not(q.search);
    cr_assert_not(q.after);
    r.limit = 100;
    cr_assert(parse(&r, &q, reason));
    r.limit = 101;
    cr_assert_not(parse(&r, &q, reason));
    cr_assert(strstr(reason, "limit") != NULL);
    r.limit = 1;
    r.status = "on_sale";
    cr_assert(parse(&r, &q, reason));
    cr_assert_str_eq(q.status, "on_sale");
    r.status = "ON_SALE";
    cr_assert_not(parse(&r, &q, reason));
    r.status = "";
    r.q = "\xff";
    cr_assert_not(parse(&r, &q, reason), "q must be UTF-8");
    r.q = "?!";
    cr_assert(parse(&r, &q, reason));
    cr_assert(q.search && q.tsquery[0] == '\0', "a query without words searches and matches nothing");
}

Test(event_list_query, cursors)
{
    Tiketi__V1__ListEventsRequest r = TIKETI__V1__LIST_EVENTS_REQUEST__INIT;
    struct event_list_query q;
    char reason[EVENT_REASON_BYTES], text[EVENT_CURSOR_TEXT_BYTES];
    struct event_cursor cursor = {.starts_at_us = 1903896000000000, .event_id = 1234};
    event_cursor_encode(&cursor, text, sizeof(text));
    r.cursor = text;
    cr_assert(parse(&r, &q, reason), "%s", reason);
    cr_assert(q.after);
    cr_assert_eq(q.cursor.event_id, 1234);
    r.cursor = "garbage";
    cr_assert_not(parse(&r, &q, reason));
    cr_assert(strstr(reason, "cursor") != NULL);
}
