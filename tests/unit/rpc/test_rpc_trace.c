/* test_rpc_trace.c — request ids and W3C traceparent (rpc/rpc_trace.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "rpc_trace.h"

Test(rpc_trace, request_ids)
{
    char id[64], other[64];
    rpc_trace_new_request_id(id, sizeof(id));
    rpc_trace_new_request_id(other, sizeof(other));
    cr_assert_eq(strlen(id), 32);
    cr_assert_str_neq(id, other);
    cr_assert(rpc_trace_request_id_valid(id));
    cr_assert(rpc_trace_request_id_valid("abc-DEF_1.2"));
    cr_assert(!rpc_trace_request_id_valid(""));
    cr_assert(!rpc_trace_request_id_valid("has space"));
    cr_assert(!rpc_trace_request_id_valid("quote\"inside"));
    char long_id[80];
    memset(long_id, 'a', 79);
    long_id[79] = '\0';
    cr_assert(!rpc_trace_request_id_valid(long_id), "bounded length");
}

Test(rpc_trace, traceparent_validation_and_children)
{
    const char *good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    cr_assert(rpc_trace_traceparent_valid(good));
    cr_assert(!rpc_trace_traceparent_valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
    cr_assert(!rpc_trace_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
    cr_assert(!rpc_trace_traceparent_valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
    cr_assert(!rpc_trace_traceparent_valid("garbage"));
    char child[64];
    rpc_trace_child(good, child, sizeof(child));
    cr_assert(rpc_trace_traceparent_valid(child));
    cr_assert_eq(strncmp(child, good, 35), 0, "same trace id");
    cr_assert_neq(strncmp(child + 36, good + 36, 16), 0, "a new parent id");
    rpc_trace_child(NULL, child, sizeof(child));
    cr_assert(rpc_trace_traceparent_valid(child), "a fresh trace when there was none");
}
