/* The bloom filter: one per table, over the user keys of its entries.
 *
 *   filter := bits[m / 8] probes:u8          (m >= 64 bits, a multiple of 8; probes in 1..30)
 *
 * A key's hash is h = xxh3-64(user key) (seed 0). Its probes use double
 * hashing on the two 32-bit halves, each mapped onto [0, m) by a multiply
 * and shift (no division):
 *
 *   a = h mod 2^32, b = h >> 32
 *   for i in 0 .. probes-1:  bit (a * m) >> 32 is set;  a = (a + b) mod 2^32
 *
 * bit j is bits[j / 8] >> (j % 8) & 1. The writer sizes m to bits_per_key
 * bits per distinct user key (at least BLOOM_MIN_BITS, at most 2^32 - 8) and
 * sets probes = round(bits_per_key * ln 2) clamped to 1..30. A plain (not
 * cache-blocked) filter: its false-positive rate follows the textbook
 * (1 - e^(-k/b))^k, which a blocked filter exceeds at high bits per key.
 *
 * Frozen: the hash, the probe sequence and the layout are on disk. */
#ifndef TIND_LSM_BLOOM_H
#define TIND_LSM_BLOOM_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/buf.h"

/* The hash a key is filtered by. */
uint64_t bloom_hash(const void *key, size_t n);
/* Probes used for bits_per_key (>= 1). */
unsigned bloom_probes(unsigned bits_per_key);

/* Collects the hashes of a table's keys, then builds its filter. */
typedef struct bloom_builder {
    uint64_t *h;
    size_t n, cap;
    unsigned bits_per_key;
} bloom_builder;

void bloom_builder_init(bloom_builder *b, unsigned bits_per_key);
void bloom_builder_free(bloom_builder *b);
/* Adds a key's hash (add each distinct key once: duplicates only waste bits). */
int bloom_builder_add(bloom_builder *b, uint64_t hash);
/* Appends the filter for every hash added to out. */
int bloom_builder_finish(bloom_builder *b, buf *out);

/* TIND_OK when f[0..n) is a well-formed filter, else TIND_CORRUPTION (message). */
int bloom_check(const uint8_t *f, size_t n);
/* 1 when the key with hash h may be in the (checked) filter f[0..n), 0 when it is not. */
int bloom_may_contain(const uint8_t *f, size_t n, uint64_t h);

#endif
