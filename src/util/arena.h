/* An arena: many small allocations freed together.
 *
 * Memory comes in blocks (ARENA_BLOCK bytes, or a block of its own for an
 * allocation over a quarter of that). Allocation is by one thread at a time
 * (the caller serializes); arena_bytes() may be read from any thread. */
#ifndef TIND_UTIL_ARENA_H
#define TIND_UTIL_ARENA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ARENA_BLOCK (1u << 20)

struct arena_block;

typedef struct arena {
    struct arena_block *blocks; /* newest first */
    uint8_t *ptr;               /* free space in the current block */
    size_t left;
    atomic_size_t bytes;        /* bytes reserved from the system, all blocks */
    atomic_size_t used;         /* bytes handed out by arena_alloc */
} arena;

void arena_init(arena *a);
/* Frees every block. */
void arena_destroy(arena *a);
/* n bytes aligned to `align` (a power of two, at most 64); NULL when out of memory. */
void *arena_alloc(arena *a, size_t n, size_t align);
size_t arena_bytes(const arena *a);
/* Bytes handed out so far (requested sizes). Any thread. */
size_t arena_used(const arena *a);

#endif
