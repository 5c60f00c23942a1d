/* Key and value generators of the benchmark.
 *
 * Every stream is a pure function of the run's seed and a salt naming the
 * workload (and, where threads split the work, the thread), so every engine
 * sees exactly the same keys in the same order.
 *
 * A key names an index i: the decimal digits of i, zero-padded on the left to
 * the key size (LevelDB db_bench's form), so keys sort as their indexes do and
 * fillseq writes in key order. A missing key is the key of an index with '.'
 * appended: it sorts between two written keys, inside every table's key
 * range, so that a lookup must consult the filters instead of a range check. */
#ifndef BENCH_KEYS_H
#define BENCH_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* Largest key size; keys_fit() says whether n indexes fit a key size. */
#define KEY_MAX 256

/* 1 when the indexes 0..n-1 fit in key_size decimal digits. */
int keys_fit(uint64_t n, size_t key_size);
void key_format(char *out, size_t key_size, uint64_t i);
/* The missing key next to index i: key_size + 1 bytes. */
void key_missing(char *out, size_t key_size, uint64_t i);

uint64_t mix64(uint64_t x);
/* A salt for a name: the streams of two workloads differ. */
uint64_t salt_of(const char *name);

/* Pseudo-random numbers (xoshiro256**), one generator per thread. */
struct rng {
    uint64_t s[4];
};
void rng_seed(struct rng *r, uint64_t seed, uint64_t salt);
uint64_t rng_next(struct rng *r);
uint64_t rng_below(struct rng *r, uint64_t n); /* uniform in [0, n) */
double rng_double(struct rng *r);              /* uniform in [0, 1) */

/* A pseudo-random permutation of [0, n): a Feistel network over the smallest
 * even number of bits that holds n, walking the cycle until the value falls
 * below n. perm_at(p, 0..n-1) visits each index once. */
struct perm {
    uint64_t n, half_mask;
    unsigned half_bits;
    uint64_t k[4];
};
void perm_init(struct perm *p, uint64_t n, uint64_t seed, uint64_t salt);
uint64_t perm_at(const struct perm *p, uint64_t i);

/* YCSB's Zipfian distribution over [0, n) (theta 0.99 in YCSB), rank 0 the
 * hottest. zipf_scrambled() spreads the ranks over the key space with a hash,
 * as YCSB's ScrambledZipfianGenerator does, so hot keys are not neighbours.
 * The constants are shared read-only between threads. */
struct zipf {
    uint64_t n;
    double theta, alpha, zetan, eta, half_pow_theta;
};
void zipf_init(struct zipf *z, uint64_t n, double theta);
uint64_t zipf_next(const struct zipf *z, struct rng *r);
uint64_t zipf_scrambled(const struct zipf *z, struct rng *r);

/* Values: slices of a 1 MiB buffer made of pieces of value_size bytes, each
 * `ratio` random printable bytes repeated to fill it, as db_bench builds its
 * values, so that a block compressor shrinks them to about `ratio`. A thread
 * walks the buffer from its own offset; no bytes are generated per write. */
struct values {
    char *data;
    size_t size, value_size;
};
int values_init(struct values *v, size_t value_size, double ratio, uint64_t seed);
void values_free(struct values *v);
/* The value at position *pos, which then advances. */
const char *values_next(const struct values *v, uint64_t *pos);

#endif
