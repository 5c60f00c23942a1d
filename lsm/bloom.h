/* The bloom filter: one per table, over the user keys of its entries, in one
 * of two layouts: plain (tables of format version 1) or blocked (version 2,
 * what the writer makes).
 *
 * Plain:
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
 * Blocked: every probe of a key falls in one 64-byte line, so a lookup
 * reads one cache line where the plain layout reads one per probe:
 *
 *   filter := line[n] probes:u8              (line: 64 bytes; n >= 1; probes in 1..16)
 *
 *   line  = (b * n) >> 32                    (b = h >> 32)
 *   g = h * 0x9e3779b97f4a7c15 mod 2^64; a = g mod 2^32; d = (g >> 32) | 1
 *   for i in 0 .. probes-1:  bit a >> 23 of the line is set;  a = (a + d) mod 2^32
 *
 * bit j of a line is line[j / 8] >> (j % 8) & 1. The writer takes n = the
 * bits_per_key bits per distinct key rounded up to whole lines, and probes =
 * bloom_probes(bits_per_key) clamped to 16. Its false-positive rate is a
 * little above the plain layout's at the same size (a line's load varies).
 *
 * Frozen: the hash, the probe sequences and the layouts are on disk. */
#ifndef TIND_LSM_BLOOM_H
#define TIND_LSM_BLOOM_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/buf.h"

/* The hash a key is filtered by. */
uint64_t bloom_hash(const void *key, size_t n);
enum bloom_layout { BLOOM_PLAIN = 0, BLOOM_BLOCKED = 1 };
#define BLOOM_LINE_BITS 512u
#define BLOOM_MAX_BLOCKED_PROBES 16u

/* Probes used for bits_per_key (>= 1): plain, and blocked. */
unsigned bloom_probes(unsigned bits_per_key);
unsigned bloom_blocked_probes(unsigned bits_per_key);

/* Collects the hashes of a table's keys, then builds its filter. */
typedef struct bloom_builder {
    uint64_t *h;
    size_t n, cap;
    unsigned bits_per_key;
    unsigned layout; /* enum bloom_layout */
} bloom_builder;

void bloom_builder_init(bloom_builder *b, unsigned bits_per_key, unsigned layout);
void bloom_builder_free(bloom_builder *b);
/* Adds a key's hash (add each distinct key once: duplicates only waste bits). */
int bloom_builder_add(bloom_builder *b, uint64_t hash);
/* Appends the filter for every hash added to out. */
int bloom_builder_finish(bloom_builder *b, buf *out);

/* TIND_OK when f[0..n) is a well-formed filter of the layout, else
 * TIND_CORRUPTION (message). */
int bloom_check(const uint8_t *f, size_t n, unsigned layout);
/* 1 when the key with hash h may be in the (checked) filter f[0..n), 0 when it is not. */
int bloom_may_contain(const uint8_t *f, size_t n, unsigned layout, uint64_t h);

#endif
