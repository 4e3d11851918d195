/* test_rpc_arena.c — per-call memory (rpc/rpc_arena.c). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "rpc_arena.h"

Test(rpc_arena, aligned_growing_and_bounded)
{
    struct rpc_arena arena;
    cr_assert_eq(rpc_arena_init(&arena, 1u << 20), 0);
    for (int i = 0; i < 1000; i++) {
        uint8_t *p = rpc_arena_alloc(&arena, 1 + (size_t)i % 100);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 16, 0);
        memset(p, 0xab, 1 + (size_t)i % 100);
    }
    cr_assert_not_null(rpc_arena_alloc(&arena, 200000), "a big block beyond the first");
    cr_assert_null(rpc_arena_alloc(&arena, 2u << 20), "past the limit");
    rpc_arena_reset(&arena);
    cr_assert_eq(arena.extra_bytes, 0);
    cr_assert_str_eq(rpc_arena_strdup(&arena, "seat"), "seat");
    ProtobufCAllocator *allocator = rpc_arena_allocator(&arena);
    void *p = allocator->alloc(allocator->allocator_data, 64);
    cr_assert_not_null(p);
    allocator->free(allocator->allocator_data, p);
    rpc_arena_destroy(&arena);
}
