/* Allocation-failure injection for tests.
 *
 * The test binary and the tools are linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=aligned_alloc
 * so that every call to those functions from an object in the link (libtind.a's
 * included; shared libraries such as lz4, zstd and libc itself are not) goes
 * through the __wrap_ functions in alloc_fault.c. Disarmed, they pass straight
 * through. Armed, they count the allocations that match and fail the nth
 * (0-based; and every later one when `forever`) by returning NULL with errno
 * ENOMEM. free is never wrapped: a failed allocation returns nothing to free.
 *
 * By default only allocations made by the thread that armed the fault count,
 * so that a background thread's timing does not move the failing point; with
 * `all_threads` every thread's count. realloc counts only when it would
 * allocate (a non-zero size). */
#ifndef TIND_TESTS_SUPPORT_ALLOC_FAULT_H
#define TIND_TESTS_SUPPORT_ALLOC_FAULT_H

#include <stdint.h>

struct alloc_fault {
    uint64_t nth;    /* the nth counted allocation (0-based) fails */
    int forever;     /* and every counted one after it */
    int all_threads; /* count every thread's allocations, not only the arming thread's */
};

/* Arms a fault (replacing any armed one) and zeroes the counters. */
void alloc_fault_arm(const struct alloc_fault *f);
/* Disarms; the counters keep their values. */
void alloc_fault_disarm(void);
/* Allocations counted since armed. */
uint64_t alloc_fault_seen(void);
/* Allocations failed since armed. */
uint64_t alloc_fault_fired(void);
/* 1 when the binary was linked with the --wrap flags (the wrappers are in use). */
int alloc_fault_linked(void);

#endif
