#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/bloom.h"
#include "lsm/table_format.h"
#include "src/util/coding.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* Key i: "user" + i as 8 bytes big-endian (the shape of a table's keys). */
static size_t key_of(uint8_t *k, uint64_t i)
{
    memcpy(k, "user", 4);
    for (int b = 0; b < 8; b++) k[4 + b] = (uint8_t)(i >> (56 - 8 * b));
    return 12;
}

static void build_filter(buf *f, unsigned bits, uint64_t first, uint64_t n)
{
    bloom_builder bb;
    bloom_builder_init(&bb, bits);
    uint8_t k[12];
    for (uint64_t i = 0; i < n; i++) cr_assert_eq(bloom_builder_add(&bb, bloom_hash(k, key_of(k, first + i))), TIND_OK);
    cr_assert_eq(bloom_builder_finish(&bb, f), TIND_OK);
    bloom_builder_free(&bb);
    cr_assert_eq(bloom_check(f->p, f->len), TIND_OK);
}

/* The false-positive rate on 1,000,000 absent keys stays within 1.5x of
 * (1 - e^(-k/b))^k, and no present key is ever missed.
 *
 * The keys are fixed, not seeded: at 20 bits/key about 67 false positives
 * are expected, so 1.5x is only some 4 standard deviations away, and a
 * random key set would fail about one run in 10^4 on chance alone (measured
 * over random sets: mean 1.03x, worst of 60 1.30x). The hash is frozen, so
 * the fixed set measures the filter, not luck. */
static void fp_rate(unsigned bits)
{
    const uint64_t n = 100000, probes = 1000000, base = UINT64_C(0x5eed00000000);
    buf f;
    buf_init(&f);
    build_filter(&f, bits, base, n);
    unsigned k = bloom_probes(bits);
    cr_assert_eq(f.p[f.len - 1], k);
    cr_assert_geq((f.len - 1) * 8, n * bits, "filter of %zu bytes for %llu keys at %u bits", f.len,
                  (unsigned long long)n, bits);

    uint8_t key[12];
    for (uint64_t i = 0; i < n; i++)
        cr_assert(bloom_may_contain(f.p, f.len, bloom_hash(key, key_of(key, base + i))),
                  "false negative: key %llu at %u bits/key", (unsigned long long)(base + i), bits);
    uint64_t fp = 0;
    for (uint64_t i = 0; i < probes; i++) fp += bloom_may_contain(f.p, f.len, bloom_hash(key, key_of(key, base + n + i)));
    double theory = pow(1.0 - exp(-(double)k / bits), k);
    double rate = (double)fp / (double)probes;
    fprintf(stderr, "bloom: %2u bits/key, k=%2u: fp rate %.6f, theory %.6f (%.2fx)\n", bits, k, rate, theory,
            rate / theory);
    cr_assert_leq(rate, 1.5 * theory, "%u bits/key: fp rate %.6f over 1.5x theory %.6f", bits, rate, theory);
    buf_free(&f);
}

Test(bloom, fp_rate_5_bits) { fp_rate(5); }
Test(bloom, fp_rate_10_bits) { fp_rate(10); }
Test(bloom, fp_rate_20_bits) { fp_rate(20); }

Test(bloom, probes_are_rounded_and_clamped)
{
    cr_assert_eq(bloom_probes(1), 1);
    cr_assert_eq(bloom_probes(2), 1);  /* 1.39 */
    cr_assert_eq(bloom_probes(3), 2);  /* 2.08 */
    cr_assert_eq(bloom_probes(5), 3);  /* 3.47 */
    cr_assert_eq(bloom_probes(10), 7); /* 6.93 */
    cr_assert_eq(bloom_probes(20), 14);
    cr_assert_eq(bloom_probes(43), 30);
    cr_assert_eq(bloom_probes(44), 30); /* 30.5: clamped */
    cr_assert_eq(bloom_probes(1000), 30);
}

Test(bloom, small_and_empty_filters)
{
    buf f;
    buf_init(&f);
    build_filter(&f, 10, 0, 0);
    cr_assert_eq(f.len, BLOOM_MIN_BITS / 8 + 1, "an empty filter is the minimum size");
    uint8_t key[12];
    for (uint64_t i = 0; i < 1000; i++) cr_assert_eq(bloom_may_contain(f.p, f.len, bloom_hash(key, key_of(key, i))), 0);
    buf_clear(&f);
    build_filter(&f, 10, 0, 3);
    for (uint64_t i = 0; i < 3; i++) cr_assert(bloom_may_contain(f.p, f.len, bloom_hash(key, key_of(key, i))));
    buf_free(&f);
}

Test(bloom, malformed_filters_are_rejected)
{
    uint8_t f[16] = {0};
    cr_assert_eq(bloom_check(f, 0), TIND_CORRUPTION);
    cr_assert_eq(bloom_check(f, 8), TIND_CORRUPTION, "fewer than the minimum bits");
    f[8] = 0;
    cr_assert_eq(bloom_check(f, 9), TIND_CORRUPTION, "zero probes");
    f[8] = BLOOM_MAX_PROBES + 1;
    cr_assert_eq(bloom_check(f, 9), TIND_CORRUPTION, "too many probes");
    f[8] = 7;
    cr_assert_eq(bloom_check(f, 9), TIND_OK);
}

/* The filter bytes are on disk: this pins the hash, the probe sequence and
 * the layout. If it fails, the format changed (TABLE_FORMAT_VERSION). */
Test(bloom, format_is_frozen)
{
    bloom_builder bb;
    bloom_builder_init(&bb, 10);
    static const char *const keys[] = {"apple", "banana", "cherry"};
    for (int i = 0; i < 3; i++) cr_assert_eq(bloom_builder_add(&bb, bloom_hash(keys[i], strlen(keys[i]))), TIND_OK);
    buf f;
    buf_init(&f);
    cr_assert_eq(bloom_builder_finish(&bb, &f), TIND_OK);
    bloom_builder_free(&bb);
    cr_assert_eq(f.len, 9);
    static const uint8_t want[9] = {0x33, 0x69, 0x00, 0x16, 0x40, 0x20, 0x09, 0x48, 0x07};
    cr_assert(memcmp(f.p, want, 9) == 0, "filter bytes %s", tu_hex(f.p, f.len));
    cr_assert_eq(bloom_hash("apple", 5), UINT64_C(0x517a430dcf1f8a00), "xxh3 of \"apple\": %llx",
                 (unsigned long long)bloom_hash("apple", 5));
    buf_free(&f);
}
