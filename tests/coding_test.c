/* src/util/coding.h: little-endian fixed ints and bounded varints. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "src/util/coding.h"

Test(coding, fixed_ints_are_little_endian)
{
    uint8_t b[8];
    put_u16(b, 0x0102);
    cr_assert_eq(b[0], 0x02);
    cr_assert_eq(b[1], 0x01);
    cr_assert_eq(get_u16(b), 0x0102);
    put_u32(b, 0x01020304u);
    const uint8_t w32[] = {4, 3, 2, 1};
    cr_assert_eq(memcmp(b, w32, 4), 0);
    cr_assert_eq(get_u32(b), 0x01020304u);
    put_u64(b, 0x0102030405060708ULL);
    const uint8_t w64[] = {8, 7, 6, 5, 4, 3, 2, 1};
    cr_assert_eq(memcmp(b, w64, 8), 0);
    cr_assert_eq(get_u64(b), 0x0102030405060708ULL);
}

Test(coding, fixed_ints_round_trip_at_extremes)
{
    const uint64_t vals[] = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000u,
                             0xffffffffu, 0x100000000ULL, 0x8000000000000000ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        uint8_t b[8];
        put_u16(b, (uint16_t)vals[i]);
        cr_assert_eq(get_u16(b), (uint16_t)vals[i]);
        put_u32(b, (uint32_t)vals[i]);
        cr_assert_eq(get_u32(b), (uint32_t)vals[i]);
        put_u64(b, vals[i]);
        cr_assert_eq(get_u64(b), vals[i], "0x%llx", (unsigned long long)vals[i]);
    }
}

/* Varint boundaries: each power of 2^7 and one either side. */
Test(coding, varint64_boundaries)
{
    for (unsigned k = 0; k <= 64; k++) {
        uint64_t base = k == 64 ? UINT64_MAX : (k == 0 ? 0 : UINT64_C(1) << (k - 1));
        for (int d = -1; d <= 1; d++) {
            uint64_t v = base + (uint64_t)(int64_t)d;
            if (k == 0 && d < 0) continue;
            if (k == 64 && d > 0) continue;
            uint8_t b[VARINT64_MAX + 2];
            memset(b, 0xee, sizeof b);
            uint8_t *e = put_varint64(b, v);
            size_t n = (size_t)(e - b);
            cr_assert_eq(n, varint_len(v), "0x%llx", (unsigned long long)v);
            cr_assert_leq(n, VARINT64_MAX);
            cr_assert_eq(b[n], 0xee, "wrote past its length");
            size_t want = 1;
            for (uint64_t t = v; t >= 0x80; t >>= 7) want++;
            cr_assert_eq(n, want);
            uint64_t back = 0;
            const uint8_t *q = get_varint64(b, b + n, &back);
            cr_assert_eq(q, b + n, "0x%llx", (unsigned long long)v);
            cr_assert_eq(back, v);
            /* Every truncation is refused, never read past. */
            for (size_t m = 0; m < n; m++) {
                uint8_t *copy = malloc(m ? m : 1);
                memcpy(copy, b, m);
                cr_assert_null(get_varint64(copy, copy + m, &back), "0x%llx cut to %zu", (unsigned long long)v, m);
                free(copy);
            }
        }
    }
    cr_assert_eq(varint_len(0), 1u);
    cr_assert_eq(varint_len(127), 1u);
    cr_assert_eq(varint_len(128), 2u);
    cr_assert_eq(varint_len(UINT32_MAX), 5u);
    cr_assert_eq(varint_len(UINT64_MAX), 10u);
}

Test(coding, varint32_boundaries)
{
    const uint32_t vals[] = {0, 1, 127, 128, 16383, 16384, (1u << 21) - 1, 1u << 21, (1u << 28) - 1, 1u << 28,
                             UINT32_MAX - 1, UINT32_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        uint8_t b[VARINT32_MAX];
        uint8_t *e = put_varint32(b, vals[i]);
        cr_assert_leq((size_t)(e - b), VARINT32_MAX);
        uint32_t back = 0;
        cr_assert_eq(get_varint32(b, e, &back), e);
        cr_assert_eq(back, vals[i]);
    }
    /* A value over 32 bits is refused by the 32-bit decoder. */
    uint8_t b[VARINT64_MAX];
    uint32_t v32;
    uint8_t *e = put_varint64(b, (uint64_t)UINT32_MAX + 1);
    cr_assert_null(get_varint32(b, e, &v32));
    e = put_varint64(b, UINT64_MAX);
    cr_assert_null(get_varint32(b, e, &v32));
}

Test(coding, varint_malformed)
{
    uint64_t v;
    /* Eleven bytes, all with the continuation bit: too long. */
    uint8_t longer[11];
    memset(longer, 0x80, sizeof longer);
    cr_assert_null(get_varint64(longer, longer + sizeof longer, &v));
    longer[10] = 0x00;
    cr_assert_null(get_varint64(longer, longer + sizeof longer, &v), "11-byte encoding");
    /* Ten bytes whose last carries bits past 64. */
    uint8_t over[10];
    memset(over, 0xff, 9);
    over[9] = 0x02;
    cr_assert_null(get_varint64(over, over + 10, &v));
    over[9] = 0x01;
    cr_assert_not_null(get_varint64(over, over + 10, &v));
    cr_assert_eq(v, UINT64_MAX);
    /* Empty input. */
    cr_assert_null(get_varint64(over, over, &v));
    /* A zero-padded but in-range encoding (0x80 0x00 = 0) is accepted:
     * decoders check bounds, not canonical form. */
    uint8_t pad[] = {0x80, 0x00};
    cr_assert_eq(get_varint64(pad, pad + 2, &v), pad + 2);
    cr_assert_eq(v, 0u);
    /* The decoder stops at the first byte without the continuation bit. */
    uint8_t two[] = {0x05, 0x06};
    cr_assert_eq(get_varint64(two, two + 2, &v), two + 1);
    cr_assert_eq(v, 5u);
}
