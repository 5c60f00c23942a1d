/* Log-bucketed latency histogram; see histogram.h for the bucket layout. */
#include "bench/histogram.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * HIST_SUB) return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS + 1 */
    unsigned shift = e - HIST_SUB_BITS;
    unsigned mant = (unsigned)(v >> shift); /* in [HIST_SUB, 2 * HIST_SUB) */
    return 2 * HIST_SUB + (e - HIST_SUB_BITS - 1) * HIST_SUB + (mant - HIST_SUB);
}

/* Lower edge and width of bucket b (the inverse of bucket_of). */
static void bucket_range(unsigned b, uint64_t *lo, uint64_t *width)
{
    if (b < 2 * HIST_SUB) {
        *lo = b;
        *width = 1;
        return;
    }
    unsigned k = b - 2 * HIST_SUB;
    unsigned shift = k / HIST_SUB + 1;
    uint64_t mant = HIST_SUB + k % HIST_SUB;
    *lo = mant << shift;
    *width = (uint64_t)1 << shift;
}

void hist_init(struct histogram *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void hist_add(struct histogram *h, uint64_t v)
{
    h->buckets[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

void hist_merge(struct histogram *dst, const struct histogram *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++) dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t hist_percentile(const struct histogram *h, double p)
{
    if (h->count == 0) return 0;
    /* The rank of the sample sought, 1-based: the smallest rank r with r >= p * count. */
    double want = p * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want) rank++;
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            uint64_t lo, width;
            bucket_range(b, &lo, &width);
            uint64_t mid = lo + width / 2;
            if (mid < h->min) mid = h->min;
            if (mid > h->max) mid = h->max;
            return mid;
        }
    }
    return h->max;
}

double hist_mean(const struct histogram *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
