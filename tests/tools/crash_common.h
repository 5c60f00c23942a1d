/* What the crash writer writes and the crash checker expects: batch i puts
 * a/k(i) and b/k(i) with value v(i), sets a/counter and b/counter to i, and
 * deletes a/k(i - A_WINDOW). */
#ifndef TIND_TESTS_CRASH_COMMON_H
#define TIND_TESTS_CRASH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define A_WINDOW 10

static inline size_t crash_key(char *out, uint64_t i) { return (size_t)sprintf(out, "k%010llu", (unsigned long long)i); }

/* Values of varying length (1..300 bytes) derived from i. */
static inline size_t crash_value(uint8_t *out, uint64_t i)
{
    size_t n = 1 + (size_t)((i * 2654435761u) % 300);
    for (size_t k = 0; k < n; k++) out[k] = (uint8_t)(i * 31 + k * 7);
    return n;
}

#endif
