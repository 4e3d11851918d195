/* rpc_arena.h — per-call memory.
 *
 * Every call decodes its request and builds its reply in an arena: a fixed
 * first block allocated with the call slot at start-up, then extra blocks from
 * malloc only for unusually large messages, all freed at once when the call
 * ends. No per-field frees, no leaks on error paths, and the common call makes no
 * allocation at all. protobuf-c takes it through rpc_arena_allocator(). */
#ifndef RPC_ARENA_H
#define RPC_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define RPC_ARENA_FIRST_BYTES (16u << 10)

struct rpc_arena_block;

struct rpc_arena {
    uint8_t *first;     /* RPC_ARENA_FIRST_BYTES, owned */
    size_t used;        /* in the current block */
    size_t capacity;    /* of the current block */
    uint8_t *current;
    struct rpc_arena_block *extra; /* malloc'd blocks, newest first */
    size_t extra_bytes;
    size_t limit_bytes; /* refuse to grow past this (a bound per call) */
    ProtobufCAllocator allocator;
};

int rpc_arena_init(struct rpc_arena *arena, size_t limit_bytes);
void rpc_arena_destroy(struct rpc_arena *arena);
/* Frees the extra blocks and starts over in the first one. */
void rpc_arena_reset(struct rpc_arena *arena);
/* 16-byte aligned; NULL past the limit. */
void *rpc_arena_alloc(struct rpc_arena *arena, size_t size);
char *rpc_arena_strdup(struct rpc_arena *arena, const char *s);
ProtobufCAllocator *rpc_arena_allocator(struct rpc_arena *arena);

#endif
