/* The --wrap allocator shims (see alloc_fault.h). */
#include "tests/support/alloc_fault.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Provided by the linker's --wrap: the real allocator. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__real_aligned_alloc(size_t align, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void *__wrap_aligned_alloc(size_t align, size_t n);

/* armed is read on every allocation; the rest is set before it is raised. */
static atomic_int armed;
static atomic_int all_threads;
static atomic_int forever;
static _Atomic uint64_t nth;
static _Atomic uint64_t seen, fired;
static atomic_int wrapped;
/* The generation of the arming; a thread counts when its copy matches. */
static _Atomic uint64_t generation;
static _Thread_local uint64_t my_generation;

void alloc_fault_arm(const struct alloc_fault *f)
{
    atomic_store(&armed, 0);
    atomic_store(&seen, 0);
    atomic_store(&fired, 0);
    atomic_store(&nth, f->nth);
    atomic_store(&forever, f->forever);
    atomic_store(&all_threads, f->all_threads);
    my_generation = atomic_fetch_add(&generation, 1) + 1;
    atomic_store(&armed, 1);
}

void alloc_fault_disarm(void) { atomic_store(&armed, 0); }

uint64_t alloc_fault_seen(void) { return atomic_load(&seen); }

uint64_t alloc_fault_fired(void) { return atomic_load(&fired); }

int alloc_fault_linked(void)
{
    /* Any allocation through the wrapper marks it. The volatile pointer
     * keeps the compiler from eliding the pair. */
    void *volatile p = malloc(1);
    free(p);
    return atomic_load(&wrapped);
}

/* 1 when this allocation must fail. */
static int should_fail(void)
{
    atomic_store_explicit(&wrapped, 1, memory_order_relaxed);
    if (!atomic_load_explicit(&armed, memory_order_acquire)) return 0;
    if (!atomic_load(&all_threads) && my_generation != atomic_load(&generation)) return 0;
    uint64_t n = atomic_fetch_add(&seen, 1);
    uint64_t k = atomic_load(&nth);
    if (n == k || (n > k && atomic_load(&forever))) {
        atomic_fetch_add(&fired, 1);
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (n > 0 && should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_aligned_alloc(align, n);
}
