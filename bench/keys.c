/* Key, value and distribution generators; see keys.h. */
#include "bench/keys.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int keys_fit(uint64_t n, size_t key_size)
{
    if (key_size == 0 || key_size > KEY_MAX) return 0;
    if (key_size >= 20) return 1; /* every uint64_t has at most 20 digits */
    uint64_t cap = 1;
    for (size_t i = 0; i < key_size; i++) cap *= 10;
    return n <= cap;
}

void key_format(char *out, size_t key_size, uint64_t i)
{
    for (size_t k = key_size; k-- > 0;) {
        out[k] = (char)('0' + i % 10);
        i /= 10;
    }
}

void key_missing(char *out, size_t key_size, uint64_t i)
{
    key_format(out, key_size, i);
    out[key_size] = '.';
}

/* splitmix64's finaliser: a bijection of 64-bit words that mixes every bit. */
uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

uint64_t salt_of(const char *name)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
    for (; *name; name++) {
        h ^= (unsigned char)*name;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rng_seed(struct rng *r, uint64_t seed, uint64_t salt)
{
    uint64_t x = seed ^ mix64(salt + UINT64_C(0x9e3779b97f4a7c15));
    for (int i = 0; i < 4; i++) {
        x += UINT64_C(0x9e3779b97f4a7c15);
        r->s[i] = mix64(x);
    }
}

uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
    /* Lemire's multiply-shift: the bias (< n / 2^64) is far below what a benchmark notices. */
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

double rng_double(struct rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

void perm_init(struct perm *p, uint64_t n, uint64_t seed, uint64_t salt)
{
    unsigned bits = 2;
    while (bits < 64 && (UINT64_C(1) << bits) < n) bits++;
    if (bits & 1) bits++;
    p->n = n;
    p->half_bits = bits / 2;
    p->half_mask = (UINT64_C(1) << p->half_bits) - 1;
    struct rng r;
    rng_seed(&r, seed, salt);
    for (int i = 0; i < 4; i++) p->k[i] = rng_next(&r);
}

static uint64_t feistel(const struct perm *p, uint64_t x)
{
    uint64_t l = x >> p->half_bits, r = x & p->half_mask;
    for (int i = 0; i < 4; i++) {
        uint64_t t = l ^ (mix64(r ^ p->k[i]) & p->half_mask);
        l = r;
        r = t;
    }
    return (l << p->half_bits) | r;
}

uint64_t perm_at(const struct perm *p, uint64_t i)
{
    /* Cycle walking: the Feistel network permutes [0, 2^bits), so following
     * the cycle from i until it re-enters [0, n) permutes [0, n). */
    uint64_t x = i;
    do x = feistel(p, x);
    while (x >= p->n);
    return x;
}

void zipf_init(struct zipf *z, uint64_t n, double theta)
{
    double zetan = 0, zeta2 = 1.0 + pow(0.5, theta);
    for (uint64_t i = 1; i <= n; i++) zetan += pow((double)i, -theta);
    z->n = n;
    z->theta = theta;
    z->zetan = zetan;
    z->alpha = 1.0 / (1.0 - theta);
    z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
    z->half_pow_theta = pow(0.5, theta);
}

uint64_t zipf_next(const struct zipf *z, struct rng *r)
{
    /* Gray et al., "Quickly generating billion-record synthetic databases", as in YCSB. */
    double u = rng_double(r), uz = u * z->zetan;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + z->half_pow_theta) return z->n > 1 ? 1 : 0;
    uint64_t v = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
    return v < z->n ? v : z->n - 1;
}

uint64_t zipf_scrambled(const struct zipf *z, struct rng *r) { return mix64(zipf_next(z, r) + 1) % z->n; }

int values_init(struct values *v, size_t value_size, double ratio, uint64_t seed)
{
    size_t size = (size_t)1 << 20;
    if (size < 4 * value_size) size = 4 * value_size;
    if (value_size > 0) size -= size % value_size;
    if (size == 0) size = 1; /* value_size 0: every value is empty */
    v->data = malloc(size);
    if (!v->data) return -1;
    v->size = size;
    v->value_size = value_size;
    struct rng r;
    rng_seed(&r, seed, salt_of("values"));
    if (ratio <= 0) ratio = 0.0;
    if (ratio > 1) ratio = 1.0;
    size_t piece = value_size ? value_size : size;
    for (size_t off = 0; off < size; off += piece) {
        size_t len = size - off < piece ? size - off : piece;
        size_t raw = (size_t)((double)len * ratio);
        if (raw < 1) raw = 1;
        for (size_t i = 0; i < raw && i < len; i++) v->data[off + i] = (char)(' ' + rng_below(&r, 95));
        for (size_t i = raw; i < len; i++) v->data[off + i] = v->data[off + i % raw];
    }
    return 0;
}

void values_free(struct values *v)
{
    free(v->data);
    v->data = NULL;
}

const char *values_next(const struct values *v, uint64_t *pos)
{
    if (*pos + v->value_size > v->size) *pos = 0;
    const char *p = v->data + *pos;
    *pos += v->value_size;
    return p;
}
