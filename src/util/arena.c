#include "src/util/arena.h"

#include <stdint.h>
#include <stdlib.h>

/* block := arena_block header, then the bytes handed out.
 * A block holds either many small allocations (ARENA_BLOCK bytes of data) or
 * one large allocation sized for it alone; both sit on the same list, which
 * exists only to free them. The current small block is the one ptr/left point
 * into; a large block never becomes current, so the tail of the current block
 * stays usable after a large allocation. */
struct arena_block {
    struct arena_block *next;
    size_t size; /* bytes reserved from the system, header included */
    max_align_t data[];
};

/* Over this, an allocation gets a block of its own: it would waste too much
 * of a shared block's tail otherwise. */
#define ARENA_LARGE (ARENA_BLOCK / 4)

void arena_init(arena *a)
{
    a->blocks = NULL;
    a->ptr = NULL;
    a->left = 0;
    atomic_init(&a->bytes, 0);
    atomic_init(&a->used, 0);
}

void arena_destroy(arena *a)
{
    struct arena_block *b = a->blocks;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->blocks = NULL;
    a->ptr = NULL;
    a->left = 0;
    atomic_store_explicit(&a->bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&a->used, 0, memory_order_relaxed);
}

static struct arena_block *arena_block_new(arena *a, size_t data)
{
    if (data > SIZE_MAX - sizeof(struct arena_block)) return NULL;
    size_t size = sizeof(struct arena_block) + data;
    struct arena_block *b = malloc(size);
    if (!b) return NULL;
    b->size = size;
    atomic_fetch_add_explicit(&a->bytes, size, memory_order_relaxed);
    return b;
}

static size_t arena_pad(const uint8_t *p, size_t align)
{
    return (size_t)(-(uintptr_t)p & (uintptr_t)(align - 1));
}

static void *arena_alloc_raw(arena *a, size_t n, size_t align)
{
    if (align == 0 || (align & (align - 1)) || align > 64) return NULL;
    if (n == 0) n = 1; /* distinct pointers for distinct allocations */

    if (a->ptr) {
        size_t pad = arena_pad(a->ptr, align);
        if (pad <= a->left && n <= a->left - pad) {
            uint8_t *p = a->ptr + pad;
            a->ptr = p + n;
            a->left -= pad + n;
            return p;
        }
    }

    if (n > ARENA_LARGE) {
        if (n > SIZE_MAX - align) return NULL;
        struct arena_block *b = arena_block_new(a, n + align - 1);
        if (!b) return NULL;
        if (a->blocks) {
            /* Behind the head: the list order matters only for freeing. */
            b->next = a->blocks->next;
            a->blocks->next = b;
        } else {
            b->next = NULL;
            a->blocks = b;
        }
        uint8_t *p = (uint8_t *)b->data;
        return p + arena_pad(p, align);
    }

    struct arena_block *b = arena_block_new(a, ARENA_BLOCK);
    if (!b) return NULL;
    b->next = a->blocks;
    a->blocks = b;
    uint8_t *p = (uint8_t *)b->data;
    size_t pad = arena_pad(p, align);
    a->ptr = p + pad + n;
    a->left = ARENA_BLOCK - pad - n;
    return p + pad;
}

size_t arena_bytes(const arena *a)
{
    return atomic_load_explicit(&a->bytes, memory_order_relaxed);
}

void *arena_alloc(arena *a, size_t n, size_t align)
{
    void *p = arena_alloc_raw(a, n, align);
    /* One allocating thread at a time: a plain load and store suffice. */
    if (p) atomic_store_explicit(&a->used, atomic_load_explicit(&a->used, memory_order_relaxed) + n,
                                 memory_order_relaxed);
    return p;
}

size_t arena_used(const arena *a) { return atomic_load_explicit(&a->used, memory_order_relaxed); }
