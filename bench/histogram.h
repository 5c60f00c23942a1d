/* Latency histogram of the benchmark: log-bucketed, fixed size, mergeable.
 *
 * Values (nanoseconds) below 64 have a bucket each; above, every power of two
 * is split into 32 buckets, so a bucket is at most 1/32 of its lower edge wide
 * and a percentile read at the bucket's middle is within 1.6% of the truth.
 * Nothing is stored per sample: recording is an increment, and one histogram
 * per thread is merged after the threads finish (no locking, no sharing). */
#ifndef BENCH_HISTOGRAM_H
#define BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
/* 64 exact buckets, then 32 per power of two for exponents 6..63. */
#define HIST_BUCKETS (2 * HIST_SUB + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

struct histogram {
    uint64_t count, sum, min, max;
    uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct histogram *h);
void hist_add(struct histogram *h, uint64_t v);
void hist_merge(struct histogram *dst, const struct histogram *src);
/* The value below which a fraction p (0..1) of the samples fall, from the
 * middle of the bucket that holds it, clamped to [min, max]; 0 when empty. */
uint64_t hist_percentile(const struct histogram *h, double p);
double hist_mean(const struct histogram *h);

#endif
