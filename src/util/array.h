/* Growing arrays: one helper for the "make room for one more" pattern. */
#ifndef TIND_UTIL_ARRAY_H
#define TIND_UTIL_ARRAY_H

#include <stddef.h>

/* Makes room for element n of *arr (elements of `elem` bytes, *cap
 * allocated), doubling from `first`: TIND_OK, or TIND_NO_MEMORY with *arr
 * unchanged. */
int array_reserve(void **arr, size_t n, size_t *cap, size_t elem, size_t first);

#endif
