/* rpc_arena.c — per-call bump allocator (rpc_arena.h). */
#include "rpc_arena.h"

#include <stdlib.h>
#include <string.h>

#include "tk_assert.h"

struct rpc_arena_block {
    struct rpc_arena_block *next;
    size_t size;
    uint8_t data[];
};

static void *arena_pb_alloc(void *ctx, size_t size)
{
    return rpc_arena_alloc(ctx, size);
}

static void arena_pb_free(void *ctx, void *pointer)
{
    (void)ctx;
    (void)pointer; /* everything goes at once in rpc_arena_reset */
}

int rpc_arena_init(struct rpc_arena *arena, size_t limit_bytes)
{
    TK_ASSERT(arena != NULL);
    TK_ASSERT(limit_bytes >= RPC_ARENA_FIRST_BYTES);
    memset(arena, 0, sizeof(*arena));
    arena->first = aligned_alloc(16, RPC_ARENA_FIRST_BYTES);
    if (arena->first == NULL)
        return -1;
    arena->current = arena->first;
    arena->capacity = RPC_ARENA_FIRST_BYTES;
    arena->limit_bytes = limit_bytes;
    arena->allocator = (ProtobufCAllocator){.alloc = arena_pb_alloc, .free = arena_pb_free, .allocator_data = arena};
    return 0;
}

void rpc_arena_reset(struct rpc_arena *arena)
{
    TK_ASSERT(arena->first != NULL);
    while (arena->extra != NULL) {
        struct rpc_arena_block *next = arena->extra->next;
        free(arena->extra);
        arena->extra = next;
    }
    arena->extra_bytes = 0;
    arena->current = arena->first;
    arena->capacity = RPC_ARENA_FIRST_BYTES;
    arena->used = 0;
}

void rpc_arena_destroy(struct rpc_arena *arena)
{
    if (arena->first == NULL)
        return;
    rpc_arena_reset(arena);
    free(arena->first);
    arena->first = NULL;
}

void *rpc_arena_alloc(struct rpc_arena *arena, size_t size)
{
    TK_ASSERT(arena->current != NULL);
    size_t aligned = (size + 15u) & ~(size_t)15u;
    if (aligned < size)
        return NULL;
    if (arena->capacity - arena->used >= aligned) {
        void *p = arena->current + arena->used;
        arena->used += aligned;
        return p;
    }
    size_t block = aligned > RPC_ARENA_FIRST_BYTES * 4 ? aligned : RPC_ARENA_FIRST_BYTES * 4;
    if (arena->extra_bytes + block > arena->limit_bytes)
        return NULL;
    struct rpc_arena_block *b = aligned_alloc(16, (sizeof(*b) + block + 15u) & ~(size_t)15u);
    if (b == NULL)
        return NULL;
    b->next = arena->extra;
    b->size = block;
    arena->extra = b;
    arena->extra_bytes += block;
    arena->current = b->data;
    arena->capacity = block;
    arena->used = aligned;
    TK_ASSERT(((uintptr_t)b->data & 15u) == 0);
    return b->data;
}

char *rpc_arena_strdup(struct rpc_arena *arena, const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = rpc_arena_alloc(arena, n);
    if (copy != NULL)
        memcpy(copy, s, n);
    return copy;
}

ProtobufCAllocator *rpc_arena_allocator(struct rpc_arena *arena)
{
    return &arena->allocator;
}
