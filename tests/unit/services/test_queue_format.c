/* test_queue_format.c — tests services/queue/queue_format.c: the string ids the
 * WaitingRoom API accepts, RFC 3339 times, engine view and error mapping, the
 * Redis names and the feed's JSON messages (the formats docs/services/queue.md
 * promises the edge, byte for byte).
 *
 * The source is compiled into this test directly: the unit-test build links the
 * shared libraries only, and queue_format.c depends on nothing else. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

/* The tests hand deliberately small buffers to check that truncation is refused;
 * with the source inlined here GCC sees that at compile time and would warn. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../../../services/queue/queue_format.c"

/* ---- ids ---- */

Test(queue_parse_id, accepts_canonical_decimal_ids)
{
    uint64_t id;
    cr_assert(queue_parse_id("1", QUEUE_EVENT_ID_MAX, &id));
    cr_assert_eq(id, 1);
    cr_assert(queue_parse_id("1000", QUEUE_EVENT_ID_MAX, &id));
    cr_assert_eq(id, 1000);
    cr_assert(queue_parse_id("18446744073709551615", QUEUE_EVENT_ID_MAX, &id));
    cr_assert_eq(id, UINT64_MAX);
    cr_assert(queue_parse_id("281474976710655", QUEUE_USER_ID_MAX, &id));
    cr_assert_eq(id, QUEUE_USER_ID_MAX);
}

Test(queue_parse_id, refuses_garbage_and_leaves_zero)
{
    const char *bad[] = {"",   "0",    "00",   "01",  "-1",    "+1",         " 1",  "1 ",
                         "1a", "a1",   "1.0",  "1e3", "0x10",  "١",          "\t1", "18446744073709551616",
                         "99999999999999999999", "123456789012345678901", "1,000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t id = 77;
        cr_assert_not(queue_parse_id(bad[i], QUEUE_EVENT_ID_MAX, &id), "accepted '%s'", bad[i]);
        cr_assert_eq(id, 0, "'%s' left %llu behind", bad[i], (unsigned long long)id);
    }
    uint64_t id;
    cr_assert_not(queue_parse_id(NULL, QUEUE_EVENT_ID_MAX, &id));
}

Test(queue_parse_id, enforces_the_bound)
{
    uint64_t id;
    cr_assert_not(queue_parse_id("281474976710656", QUEUE_USER_ID_MAX, &id), "2^48 is past the user id range");
    cr_assert(queue_parse_id("281474976710656", QUEUE_EVENT_ID_MAX, &id));
    cr_assert_not(queue_parse_id("11", 10, &id));
    cr_assert(queue_parse_id("10", 10, &id));
}

/* ---- times ---- */

Test(queue_format_time, is_rfc3339_utc_with_milliseconds)
{
    char text[QUEUE_TIME_TEXT_BYTES];
    cr_assert(queue_format_time(0, text, sizeof(text)));
    cr_assert_str_eq(text, "1970-01-01T00:00:00.000Z");
    cr_assert(queue_format_time(INT64_C(1740852000250), text, sizeof(text)));
    cr_assert_str_eq(text, "2025-03-01T18:00:00.250Z");
    cr_assert(queue_format_time(INT64_C(253402300799999), text, sizeof(text)));
    cr_assert_str_eq(text, "9999-12-31T23:59:59.999Z");
}

Test(queue_format_time, refuses_what_rfc3339_cannot_say_or_what_does_not_fit)
{
    char text[QUEUE_TIME_TEXT_BYTES];
    cr_assert_not(queue_format_time(-1, text, sizeof(text)));
    cr_assert_str_empty(text);
    cr_assert_not(queue_format_time(INT64_C(253402300800000), text, sizeof(text)));
    cr_assert_not(queue_format_time(INT64_MAX, text, sizeof(text)));
    char small[24]; /* one byte short of the 24 characters and the NUL */
    cr_assert_not(queue_format_time(0, small, sizeof(small)));
    cr_assert_str_empty(small);
}

/* ---- views ---- */

Test(queue_view_from_engine, maps_a_waiting_view)
{
    Tiketi__V1__QueueView in = TIKETI__V1__QUEUE_VIEW__INIT;
    in.ticket = 8;
    in.rank = 7;
    in.position = 3;
    in.eta_s = 2;
    in.state = TIKETI__V1__QUEUE_STATE__QUEUE_WAITING;
    in.admission_token = (char *)"";
    char expires[QUEUE_TIME_TEXT_BYTES] = "junk";
    Tiketi__V1__WaitingRoomView out;
    queue_view_from_engine(&in, "42", "9", expires, &out);
    cr_assert_eq(out.ticket, 8);
    cr_assert_eq(out.rank, 7);
    cr_assert_eq(out.position, 3);
    cr_assert_eq(out.eta_s, 2);
    cr_assert_str_eq(out.status, "waiting");
    cr_assert_str_eq(out.event_id, "42");
    cr_assert_str_eq(out.user_id, "9");
    cr_assert_str_empty(out.admission_token);
    cr_assert_str_empty(out.admission_expires_at);
}

Test(queue_view_from_engine, maps_an_admitted_view_with_its_token_and_expiry)
{
    Tiketi__V1__QueueView in = TIKETI__V1__QUEUE_VIEW__INIT;
    in.ticket = 1;
    in.position = 5; /* the engine says 0; only a waiting view may carry a position */
    in.state = TIKETI__V1__QUEUE_STATE__QUEUE_ADMITTED;
    in.admission_token = (char *)"AQID-_x";
    in.admission_expires_ms = INT64_C(1740852000250);
    char expires[QUEUE_TIME_TEXT_BYTES];
    Tiketi__V1__WaitingRoomView out;
    queue_view_from_engine(&in, "42", "9", expires, &out);
    cr_assert_str_eq(out.status, "admitted");
    cr_assert_eq(out.position, 0);
    cr_assert_eq(out.eta_s, 0);
    cr_assert_str_eq(out.admission_token, "AQID-_x");
    cr_assert_str_eq(out.admission_expires_at, "2025-03-01T18:00:00.250Z");
    /* the message packs: every string field is set */
    uint8_t packed[256];
    cr_assert_gt(tiketi__v1__waiting_room_view__pack(&out, packed), 0);
}

Test(queue_view_from_engine, maps_left_and_expired_without_a_token)
{
    Tiketi__V1__QueueState states[] = {TIKETI__V1__QUEUE_STATE__QUEUE_LEFT, TIKETI__V1__QUEUE_STATE__QUEUE_EXPIRED};
    const char *names[] = {"left", "expired"};
    for (int i = 0; i < 2; i++) {
        Tiketi__V1__QueueView in = TIKETI__V1__QUEUE_VIEW__INIT;
        in.state = states[i];
        in.admission_token = (char *)"";
        in.admission_expires_ms = 1000;
        char expires[QUEUE_TIME_TEXT_BYTES];
        Tiketi__V1__WaitingRoomView out;
        queue_view_from_engine(&in, "1", "2", expires, &out);
        cr_assert_str_eq(out.status, names[i]);
        cr_assert_str_empty(out.admission_token);
        cr_assert_str_empty(out.admission_expires_at);
    }
    cr_assert_str_eq(queue_state_name((Tiketi__V1__QueueState)42), "unknown");
}

/* ---- errors ---- */

static struct rpc_error engine_error(grpc_status_code code, const char *name, const char *message)
{
    struct rpc_error e;
    memset(&e, 0, sizeof(e));
    e.code = code;
    snprintf(e.name, sizeof(e.name), "%s", name);
    snprintf(e.message, sizeof(e.message), "%s", message);
    return e;
}

Test(queue_error_from_engine, passes_the_engine_verdicts_through)
{
    struct rpc_error out;
    struct rpc_error full = engine_error(GRPC_STATUS_RESOURCE_EXHAUSTED, "queue_full", "the waiting room is full");
    queue_error_from_engine(&full, QUEUE_ERROR_FOR_JOIN, &out);
    cr_assert_eq(out.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert_str_eq(out.name, "queue_full");
    cr_assert_str_eq(out.message, "the waiting room is full");
    struct rpc_error closed = engine_error(GRPC_STATUS_FAILED_PRECONDITION, "event_closed", "the event is not on sale");
    queue_error_from_engine(&closed, QUEUE_ERROR_FOR_JOIN, &out);
    cr_assert_eq(out.code, GRPC_STATUS_FAILED_PRECONDITION);
    cr_assert_str_eq(out.name, "event_closed");
}

Test(queue_error_from_engine, says_what_not_found_means_here)
{
    struct rpc_error out;
    struct rpc_error missing = engine_error(GRPC_STATUS_NOT_FOUND, "not_found", "no such event, hold or ticket");
    queue_error_from_engine(&missing, QUEUE_ERROR_FOR_JOIN, &out);
    cr_assert_eq(out.code, GRPC_STATUS_NOT_FOUND);
    cr_assert_str_eq(out.name, "not_found");
    cr_assert_str_eq(out.message, "no such event");
    queue_error_from_engine(&missing, QUEUE_ERROR_FOR_MEMBER, &out);
    cr_assert_str_eq(out.message, "no such event, or the user has not joined its waiting room");
}

Test(queue_error_from_engine, makes_transport_failures_one_retryable_unavailable)
{
    grpc_status_code codes[] = {GRPC_STATUS_UNAVAILABLE, GRPC_STATUS_DEADLINE_EXCEEDED, GRPC_STATUS_CANCELLED};
    for (int i = 0; i < 3; i++) {
        struct rpc_error in = engine_error(codes[i], "", "failed to connect");
        struct rpc_error out;
        queue_error_from_engine(&in, QUEUE_ERROR_FOR_MEMBER, &out);
        cr_assert_eq(out.code, GRPC_STATUS_UNAVAILABLE);
        cr_assert_str_eq(out.name, "unavailable");
        cr_assert(strstr(out.message, "retry") != NULL, "%s", out.message);
    }
    struct rpc_error busy = engine_error(GRPC_STATUS_UNAVAILABLE, "request_in_progress", "");
    struct rpc_error out;
    queue_error_from_engine(&busy, QUEUE_ERROR_FOR_JOIN, &out);
    cr_assert_str_eq(out.name, "request_in_progress", "the engine's own name is kept");
}

Test(queue_error_from_engine, fills_a_missing_name_and_hides_deployment_mismatches)
{
    struct rpc_error out;
    struct rpc_error bare = engine_error(GRPC_STATUS_INVALID_ARGUMENT, "", "");
    queue_error_from_engine(&bare, QUEUE_ERROR_FOR_JOIN, &out);
    cr_assert_eq(out.code, GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_str_eq(out.name, "invalid_request");
    cr_assert_str_not_empty(out.message);
    struct rpc_error unimplemented = engine_error(GRPC_STATUS_UNIMPLEMENTED, "unimplemented", "no such method");
    queue_error_from_engine(&unimplemented, QUEUE_ERROR_FOR_JOIN, &out);
    cr_assert_eq(out.code, GRPC_STATUS_INTERNAL);
    cr_assert_str_eq(out.name, "internal");
}

/* ---- Redis ---- */

Test(queue_redis_names, follow_the_documented_scheme)
{
    char name[QUEUE_REDIS_NAME_BYTES];
    cr_assert(queue_channel_name(42, name, sizeof(name)));
    cr_assert_str_eq(name, "tiketi:queue:42");
    cr_assert(queue_lease_key(42, name, sizeof(name)));
    cr_assert_str_eq(name, "tiketi:queue:{42}:lease");
    cr_assert(queue_next_rank_key(42, name, sizeof(name)));
    cr_assert_str_eq(name, "tiketi:queue:{42}:next_rank");
    cr_assert(queue_left_key(UINT64_MAX, name, sizeof(name)));
    cr_assert_str_eq(name, "tiketi:queue:{18446744073709551615}:left");
    char small[15]; /* "tiketi:queue:42" needs 16 with its NUL */
    cr_assert_not(queue_channel_name(42, small, sizeof(small)));
    cr_assert_not(queue_lease_key(42, small, sizeof(small)));
}

Test(queue_redis_parse_url, reads_host_port_and_db)
{
    struct queue_redis_address a;
    cr_assert(queue_redis_parse_url("redis://127.0.0.1:6379", &a));
    cr_assert_str_eq(a.host, "127.0.0.1");
    cr_assert_eq(a.port, 6379);
    cr_assert_eq(a.db, 0);
    cr_assert(queue_redis_parse_url("cache.local:7000/3", &a));
    cr_assert_str_eq(a.host, "cache.local");
    cr_assert_eq(a.port, 7000);
    cr_assert_eq(a.db, 3);
    cr_assert(queue_redis_parse_url("redis://h:1/", &a));
    cr_assert_eq(a.db, 0);
}

Test(queue_redis_parse_url, refuses_what_it_cannot_use)
{
    const char *bad[] = {"", "redis://", "redis://host", "redis://:6379", "host:", "host:0", "host:65536",
                         "host:12x", "host:1/16", "host:1/x", "redis://user:secret@host:6379", "host:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct queue_redis_address a;
        cr_assert_not(queue_redis_parse_url(bad[i], &a), "accepted '%s'", bad[i]);
    }
}

/* ---- feed messages ---- */

Test(queue_json, head_message_is_exactly_as_documented)
{
    struct queue_head_message m = {.event_id = 1042, .head_rank = 17, .waiting = 250, .active = 40,
                                   .rate_per_s = 12.5, .ts_ms = INT64_C(1740852000250)};
    char json[QUEUE_JSON_BYTES_MAX];
    size_t n = queue_json_head(&m, json, sizeof(json));
    const char *want = "{\"type\":\"head\",\"event_id\":\"1042\",\"head_rank\":17,\"waiting\":250,\"active\":40,"
                       "\"rate\":12.500,\"ts\":1740852000250}";
    cr_assert_str_eq(json, want);
    cr_assert_eq(n, strlen(want));
}

Test(queue_json, head_rate_is_always_a_json_number)
{
    double rates[] = {NAN, INFINITY, -INFINITY, -3.0};
    for (int i = 0; i < 4; i++) {
        struct queue_head_message m = {.event_id = 1, .rate_per_s = rates[i]};
        char json[QUEUE_JSON_BYTES_MAX];
        cr_assert_gt(queue_json_head(&m, json, sizeof(json)), 0);
        cr_assert(strstr(json, "\"rate\":0.000,") != NULL, "%s", json);
    }
}

Test(queue_json, admitted_message_is_exactly_as_documented)
{
    struct queue_admitted_message m = {.event_id = 1042, .user_id = 7, .ticket = 18, .rank = 17,
                                       .admission_token = "AQQE-_Zz09", .expires_ms = INT64_C(1740852600000),
                                       .ts_ms = INT64_C(1740852000250)};
    char json[QUEUE_JSON_BYTES_MAX];
    size_t n = queue_json_admitted(&m, json, sizeof(json));
    const char *want = "{\"type\":\"admitted\",\"event_id\":\"1042\",\"user_id\":\"7\",\"rank\":17,\"ticket\":18,"
                       "\"admission_token\":\"AQQE-_Zz09\",\"expires_at\":\"2025-03-01T18:10:00.000Z\","
                       "\"ts\":1740852000250}";
    cr_assert_str_eq(json, want);
    cr_assert_eq(n, strlen(want));
}

Test(queue_json, admitted_message_refuses_tokens_it_would_have_to_escape)
{
    const char *bad[] = {"", "a\"b", "a\\b", "a b", "a\nb", "ä"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct queue_admitted_message m = {.event_id = 1, .user_id = 1, .admission_token = bad[i],
                                           .expires_ms = 1000};
        char json[QUEUE_JSON_BYTES_MAX];
        cr_assert_eq(queue_json_admitted(&m, json, sizeof(json)), 0, "token '%s'", bad[i]);
        cr_assert_str_empty(json);
    }
    char huge[QUEUE_TOKEN_BYTES_MAX + 2];
    memset(huge, 'A', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    struct queue_admitted_message m = {.event_id = 1, .user_id = 1, .admission_token = huge, .expires_ms = 1000};
    char json[QUEUE_JSON_BYTES_MAX * 2];
    cr_assert_eq(queue_json_admitted(&m, json, sizeof(json)), 0, "a token longer than the engine makes");
    m.admission_token = "ok";
    m.expires_ms = -5;
    cr_assert_eq(queue_json_admitted(&m, json, sizeof(json)), 0, "an expiry RFC 3339 cannot say");
}

Test(queue_json, left_message_is_exactly_as_documented_and_never_overflows)
{
    struct queue_left_message m = {.event_id = 1042, .user_id = 9, .rank = 20, .ts_ms = 5};
    char json[QUEUE_JSON_BYTES_MAX];
    queue_json_left(&m, json, sizeof(json));
    cr_assert_str_eq(json, "{\"type\":\"left\",\"event_id\":\"1042\",\"user_id\":\"9\",\"rank\":20,\"ts\":5}");
    char small[20];
    cr_assert_eq(queue_json_left(&m, small, sizeof(small)), 0);
    cr_assert_str_empty(small);
    /* the largest values still fit the bound every message is built in */
    struct queue_left_message big = {.event_id = UINT64_MAX, .user_id = UINT64_MAX, .rank = UINT32_MAX,
                                     .ts_ms = INT64_MIN};
    cr_assert_gt(queue_json_left(&big, json, sizeof(json)), 0);
    struct queue_head_message head = {.event_id = UINT64_MAX, .head_rank = UINT32_MAX, .waiting = UINT32_MAX,
                                      .active = UINT32_MAX, .rate_per_s = 1e300, .ts_ms = INT64_MIN};
    cr_assert_gt(queue_json_head(&head, json, sizeof(json)), 0);
}
