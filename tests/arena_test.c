#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "src/util/arena.h"

Test(arena, empty_holds_nothing)
{
    arena a;
    arena_init(&a);
    cr_assert_eq(arena_bytes(&a), 0);
    arena_destroy(&a);
    cr_assert_eq(arena_bytes(&a), 0);
}

Test(arena, small_allocations_are_aligned_and_disjoint)
{
    arena a;
    arena_init(&a);
    enum { N = 20000 };
    static uint8_t *ptrs[N];
    static size_t lens[N];
    for (size_t i = 0; i < N; i++) {
        size_t align = (size_t)1 << (i % 7); /* 1 .. 64 */
        size_t n = (i * 37) % 300;
        uint8_t *p = arena_alloc(&a, n, align);
        cr_assert_not_null(p, "alloc %zu of %zu bytes", i, n);
        cr_assert_eq((uintptr_t)p % align, 0, "alloc %zu: %p not aligned to %zu", i, (void *)p, align);
        memset(p, (int)(i & 0xff), n);
        ptrs[i] = p;
        lens[i] = n;
    }
    /* Every allocation still holds what was written: nothing overlapped. */
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < lens[i]; j++)
            cr_assert_eq(ptrs[i][j], (uint8_t)(i & 0xff), "alloc %zu byte %zu overwritten", i, j);
    /* About 3 MB asked for: a few 1 MiB blocks, not one per allocation. */
    cr_assert_geq(arena_bytes(&a), (size_t)2 * ARENA_BLOCK);
    cr_assert_leq(arena_bytes(&a), (size_t)5 * ARENA_BLOCK);
    arena_destroy(&a);
    cr_assert_eq(arena_bytes(&a), 0);
}

Test(arena, zero_byte_allocations_are_distinct)
{
    arena a;
    arena_init(&a);
    void *p = arena_alloc(&a, 0, 1);
    void *q = arena_alloc(&a, 0, 1);
    cr_assert_not_null(p);
    cr_assert_not_null(q);
    cr_assert_neq(p, q);
    arena_destroy(&a);
}

Test(arena, large_allocation_gets_its_own_block)
{
    arena a;
    arena_init(&a);
    uint8_t *small = arena_alloc(&a, 100, 8);
    cr_assert_not_null(small);
    size_t before = arena_bytes(&a);
    cr_assert_geq(before, ARENA_BLOCK);

    size_t big = 3 * (size_t)ARENA_BLOCK;
    uint8_t *p = arena_alloc(&a, big, 64);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 64, 0);
    memset(p, 0xab, big);
    size_t after = arena_bytes(&a);
    cr_assert_geq(after - before, big);
    cr_assert_lt(after - before, big + 4096, "a large block costs its size, got %zu", after - before);

    /* The current small block stays in use after a large allocation. */
    uint8_t *s2 = arena_alloc(&a, 100, 8);
    cr_assert_not_null(s2);
    cr_assert_eq(arena_bytes(&a), after);
    cr_assert(s2 >= small + 100 && s2 < small + ARENA_BLOCK);
    arena_destroy(&a);
}

Test(arena, first_allocation_large)
{
    arena a;
    arena_init(&a);
    uint8_t *p = arena_alloc(&a, ARENA_BLOCK, 16);
    cr_assert_not_null(p);
    uint8_t *q = arena_alloc(&a, 10, 1);
    cr_assert_not_null(q);
    cr_assert_geq(arena_bytes(&a), 2 * (size_t)ARENA_BLOCK);
    arena_destroy(&a);
}

Test(arena, impossible_requests_return_null)
{
    arena a;
    arena_init(&a);
    cr_assert_null(arena_alloc(&a, SIZE_MAX - 8, 8));
    cr_assert_null(arena_alloc(&a, SIZE_MAX, 1));
    cr_assert_null(arena_alloc(&a, 16, 3), "alignment not a power of two");
    cr_assert_null(arena_alloc(&a, 16, 128), "alignment over 64");
    cr_assert_null(arena_alloc(&a, 16, 0));
    cr_assert_eq(arena_bytes(&a), 0);
    /* Still usable. */
    cr_assert_not_null(arena_alloc(&a, 16, 8));
    arena_destroy(&a);
}

Test(arena, reusable_after_destroy)
{
    arena a;
    arena_init(&a);
    cr_assert_not_null(arena_alloc(&a, 1000, 8));
    arena_destroy(&a);
    uint8_t *p = arena_alloc(&a, 1000, 8);
    cr_assert_not_null(p);
    memset(p, 1, 1000);
    cr_assert_geq(arena_bytes(&a), ARENA_BLOCK);
    arena_destroy(&a);
}

Test(arena, used_counts_requested_bytes)
{
    arena a;
    arena_init(&a);
    cr_assert_eq(arena_used(&a), 0);
    cr_assert_not_null(arena_alloc(&a, 10, 1));
    cr_assert_not_null(arena_alloc(&a, 100, 8));
    cr_assert_eq(arena_used(&a), 110, "used %zu, want 110", arena_used(&a));
    cr_assert_not_null(arena_alloc(&a, ARENA_BLOCK, 8));
    cr_assert_eq(arena_used(&a), 110 + (size_t)ARENA_BLOCK);
    cr_assert_geq(arena_bytes(&a), arena_used(&a));
    arena_destroy(&a);
    cr_assert_eq(arena_used(&a), 0);
}
