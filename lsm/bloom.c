#include "lsm/bloom.h"

#include <stdlib.h>
#include <string.h>

#include "lsm/table_format.h"
#include "src/util/checksum.h"
#include "src/util/err.h"

/* Largest filter: bit positions must fit the 32-bit multiply-shift mapping. */
#define BLOOM_MAX_BITS (UINT64_C(0xffffffff) & ~UINT64_C(7))

uint64_t bloom_hash(const void *key, size_t n) { return XXH3_64bits(key, n); }

unsigned bloom_probes(unsigned bits_per_key)
{
    /* round(b * ln 2): the k that minimises the false-positive rate. */
    unsigned k = (unsigned)((double)bits_per_key * 0.69314718055994531 + 0.5);
    if (k < 1) k = 1;
    if (k > BLOOM_MAX_PROBES) k = BLOOM_MAX_PROBES;
    return k;
}

unsigned bloom_blocked_probes(unsigned bits_per_key)
{
    unsigned k = bloom_probes(bits_per_key);
    return k > BLOOM_MAX_BLOCKED_PROBES ? BLOOM_MAX_BLOCKED_PROBES : k;
}

void bloom_builder_init(bloom_builder *b, unsigned bits_per_key, unsigned layout)
{
    b->h = NULL;
    b->n = b->cap = 0;
    b->bits_per_key = bits_per_key ? bits_per_key : 1;
    b->layout = layout;
}

void bloom_builder_free(bloom_builder *b)
{
    free(b->h);
    b->h = NULL;
    b->n = b->cap = 0;
}

int bloom_builder_add(bloom_builder *b, uint64_t hash)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        if (cap > SIZE_MAX / sizeof *b->h) return err_nomem();
        uint64_t *p = realloc(b->h, cap * sizeof *p);
        if (!p) return err_nomem();
        b->h = p;
        b->cap = cap;
    }
    b->h[b->n++] = hash;
    return TIND_OK;
}

static inline uint64_t bloom_bit(uint32_t a, uint64_t m) { return ((uint64_t)a * m) >> 32; }

/* The blocked layout's line of h among nlines, and its probe sequence's
 * start and step (the bits are the top 9 of a 32-bit sum). */
static inline size_t blocked_line(uint64_t h, uint64_t nlines) { return (size_t)(((h >> 32) * nlines) >> 32); }

static inline void blocked_probe_start(uint64_t h, uint32_t *a, uint32_t *d)
{
    uint64_t g = h * UINT64_C(0x9e3779b97f4a7c15);
    *a = (uint32_t)g;
    *d = (uint32_t)(g >> 32) | 1;
}

static int bloom_finish_blocked(bloom_builder *b, buf *out)
{
    uint64_t m = (uint64_t)b->n * b->bits_per_key;
    if (b->n && m / b->n != b->bits_per_key) m = BLOOM_MAX_BITS;
    if (m > BLOOM_MAX_BITS) m = BLOOM_MAX_BITS;
    uint64_t nlines = (m + BLOOM_LINE_BITS - 1) / BLOOM_LINE_BITS;
    if (nlines == 0) nlines = 1;
    size_t bytes = (size_t)(nlines * BLOOM_LINE_BITS / 8);
    int rc = buf_reserve(out, bytes + 1);
    if (rc) return rc;
    uint8_t *f = out->p + out->len;
    memset(f, 0, bytes);
    unsigned k = bloom_blocked_probes(b->bits_per_key);
    for (size_t i = 0; i < b->n; i++) {
        uint8_t *line = f + blocked_line(b->h[i], nlines) * (BLOOM_LINE_BITS / 8);
        uint32_t a, d;
        blocked_probe_start(b->h[i], &a, &d);
        for (unsigned j = 0; j < k; j++, a += d) {
            unsigned bit = a >> 23;
            line[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        }
    }
    f[bytes] = (uint8_t)k;
    out->len += bytes + 1;
    return TIND_OK;
}

int bloom_builder_finish(bloom_builder *b, buf *out)
{
    if (b->layout == BLOOM_BLOCKED) return bloom_finish_blocked(b, out);
    uint64_t m = (uint64_t)b->n * b->bits_per_key;
    if (b->n && m / b->n != b->bits_per_key) m = BLOOM_MAX_BITS; /* overflow */
    if (m < BLOOM_MIN_BITS) m = BLOOM_MIN_BITS;
    m = (m + 7) & ~UINT64_C(7);
    if (m > BLOOM_MAX_BITS) m = BLOOM_MAX_BITS; /* more keys than one filter serves well: a higher rate */
    size_t bytes = (size_t)(m / 8);
    int rc = buf_reserve(out, bytes + 1);
    if (rc) return rc;
    uint8_t *f = out->p + out->len;
    memset(f, 0, bytes);
    unsigned k = bloom_probes(b->bits_per_key);
    for (size_t i = 0; i < b->n; i++) {
        uint32_t a = (uint32_t)b->h[i], d = (uint32_t)(b->h[i] >> 32);
        for (unsigned j = 0; j < k; j++, a += d) {
            uint64_t bit = bloom_bit(a, m);
            f[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        }
    }
    f[bytes] = (uint8_t)k;
    out->len += bytes + 1;
    return TIND_OK;
}

int bloom_check(const uint8_t *f, size_t n, unsigned layout)
{
    if (layout == BLOOM_BLOCKED) {
        if (n < BLOOM_LINE_BITS / 8 + 1 || (n - 1) % (BLOOM_LINE_BITS / 8) != 0 || (uint64_t)(n - 1) * 8 > BLOOM_MAX_BITS)
            return err_set(TIND_CORRUPTION, "malformed bloom filter: %zu bytes, not whole 64-byte lines", n);
        unsigned k = f[n - 1];
        if (k < 1 || k > BLOOM_MAX_BLOCKED_PROBES)
            return err_set(TIND_CORRUPTION, "malformed bloom filter: %u probes", k);
        return TIND_OK;
    }
    if (n < BLOOM_MIN_BITS / 8 + 1 || (uint64_t)(n - 1) * 8 > BLOOM_MAX_BITS)
        return err_set(TIND_CORRUPTION, "malformed bloom filter: %zu bytes", n);
    unsigned k = f[n - 1];
    if (k < 1 || k > BLOOM_MAX_PROBES) return err_set(TIND_CORRUPTION, "malformed bloom filter: %u probes", k);
    return TIND_OK;
}

int bloom_may_contain(const uint8_t *f, size_t n, unsigned layout, uint64_t h)
{
    if (layout == BLOOM_BLOCKED) {
        uint64_t nlines = (n - 1) / (BLOOM_LINE_BITS / 8);
        const uint8_t *line = f + blocked_line(h, nlines) * (BLOOM_LINE_BITS / 8);
        unsigned k = f[n - 1];
        uint32_t a, d;
        blocked_probe_start(h, &a, &d);
        for (unsigned j = 0; j < k; j++, a += d) {
            unsigned bit = a >> 23;
            if (!(line[bit >> 3] & (1u << (bit & 7)))) return 0;
        }
        return 1;
    }
    uint64_t m = (uint64_t)(n - 1) * 8;
    unsigned k = f[n - 1];
    uint32_t a = (uint32_t)h, d = (uint32_t)(h >> 32);
    for (unsigned j = 0; j < k; j++, a += d) {
        uint64_t bit = bloom_bit(a, m);
        if (!(f[bit >> 3] & (1u << (bit & 7)))) return 0;
    }
    return 1;
}
