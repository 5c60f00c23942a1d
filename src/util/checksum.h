/* The one checksum tind writes to disk: xxh3, 64 bits, seed 0. Frozen. */
#ifndef TIND_UTIL_CHECKSUM_H
#define TIND_UTIL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>
/* Inlined: block and record checksums are on the hot paths. */
#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t checksum64(const void *p, size_t n) { return XXH3_64bits(p, n); }

/* Checksum of two pieces, as if they were one contiguous buffer. */
static inline uint64_t checksum64_2(const void *a, size_t an, const void *b, size_t bn)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, a, an);
    XXH3_64bits_update(&st, b, bn);
    return XXH3_64bits_digest(&st);
}

#endif
