#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/block.h"
#include "lsm/ikey.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* ---- a reference set of entries in internal order ---- */

struct ent {
    uint8_t k[8];
    size_t kl;
    uint64_t tag;
    uint8_t v[40];
    size_t vl;
};

/* User key u: "p" + u as 3 bytes big-endian, plus 0x00 when u % 5 == 0 and
 * 0xff 0xff when u % 7 == 0; (u % 3) + 1 versions, newest first, the oldest
 * version of every fourth key a tombstone. Sorted in internal order. */
static struct ent *gen_entries(size_t n)
{
    struct ent *e = calloc(n ? n : 1, sizeof *e);
    cr_assert_not_null(e);
    size_t j = 0;
    for (unsigned u = 0; j < n; u++) {
        unsigned nv = u % 3 + 1;
        for (unsigned v = 0; v < nv && j < n; v++, j++) {
            struct ent *x = &e[j];
            x->k[0] = 'p';
            x->k[1] = (uint8_t)(u >> 16);
            x->k[2] = (uint8_t)(u >> 8);
            x->k[3] = (uint8_t)u;
            x->kl = 4;
            if (u % 5 == 0) x->k[x->kl++] = 0x00;
            if (u % 7 == 0) {
                x->k[x->kl++] = 0xff;
                x->k[x->kl++] = 0xff;
            }
            unsigned kind = (v == nv - 1 && u % 4 == 0) ? KIND_DELETE : KIND_PUT;
            x->tag = tag_pack((uint64_t)(nv - v) * 100000 + u, kind);
            x->vl = kind == KIND_DELETE ? 0 : (u * 7 + v) % sizeof x->v;
            for (size_t i = 0; i < x->vl; i++) x->v[i] = (uint8_t)(u + v + i);
        }
    }
    for (size_t i = 1; i < n; i++)
        cr_assert(ikey_cmp(e[i - 1].k, e[i - 1].kl, e[i - 1].tag, e[i].k, e[i].kl, e[i].tag) < 0,
                  "generator out of order at %zu", i);
    return e;
}

/* A block built from e[0..n), copied into an exact-size allocation so that
 * any read past its end trips AddressSanitizer. */
static uint8_t *build(const struct ent *e, size_t n, unsigned interval, size_t *len)
{
    block_builder bb;
    block_builder_init(&bb, interval);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(block_builder_add(&bb, e[i].k, e[i].kl, e[i].tag, e[i].v, e[i].vl), TIND_OK);
    size_t est = block_builder_size(&bb);
    const uint8_t *d;
    cr_assert_eq(block_builder_finish(&bb, &d, len), TIND_OK);
    cr_assert_eq(*len, est, "size estimate %zu, finished %zu", est, *len);
    uint8_t *copy = malloc(*len);
    cr_assert_not_null(copy);
    memcpy(copy, d, *len);
    block_builder_free(&bb);
    return copy;
}

static void expect_at(const iiter *it, const struct ent *e, size_t i, const char *what)
{
    cr_assert(it->valid, "%s: expected entry %zu (%s), iterator invalid (status %d)", what, i, tu_hex(e[i].k, e[i].kl),
              iiter_status(it));
    cr_assert(it->klen == e[i].kl && memcmp(it->key, e[i].k, it->klen) == 0 && it->tag == e[i].tag,
              "%s: expected entry %zu key %s tag %llx, got key %s tag %llx", what, i, tu_hex(e[i].k, e[i].kl),
              (unsigned long long)e[i].tag, tu_hex(it->key, it->klen), (unsigned long long)it->tag);
    cr_assert(it->vlen == e[i].vl && (it->vlen == 0 || memcmp(it->val, e[i].v, it->vlen) == 0),
              "%s: entry %zu value %s, expected %s", what, i, tu_hex(it->val, it->vlen), tu_hex(e[i].v, e[i].vl));
}

static void expect_end(const iiter *it, const char *what)
{
    cr_assert(!it->valid, "%s: expected the end, at key %s", what, tu_hex(it->key, it->klen));
    cr_assert_eq(iiter_status(it), TIND_OK, "%s: status %d", what, iiter_status(it));
}

/* Index of the first entry >= (k, tag): n when none. */
static size_t ref_lower(const struct ent *e, size_t n, const uint8_t *k, size_t kl, uint64_t tag)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ikey_cmp(e[mid].k, e[mid].kl, e[mid].tag, k, kl, tag) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Index + 1 of the last entry <= (k, tag): 0 when none. */
static size_t ref_upper(const struct ent *e, size_t n, const uint8_t *k, size_t kl, uint64_t tag)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ikey_cmp(e[mid].k, e[mid].kl, e[mid].tag, k, kl, tag) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Full walk both ways, an exact seek and seek_for_prev to every entry, seeks
 * just past and before each, with steps in both directions from there. */
static void check_block(const uint8_t *data, size_t len, const struct ent *e, size_t n, const char *what)
{
    block b;
    cr_assert_eq(block_init(&b, data, len), TIND_OK, "%s: block_init", what);
    iiter *it = block_iter_new(&b);
    cr_assert_not_null(it);

    size_t i = 0;
    for (iiter_seek_first(it); it->valid; iiter_next(it), i++) {
        cr_assert_lt(i, n, "%s: more entries than added", what);
        expect_at(it, e, i, what);
    }
    cr_assert_eq(i, n, "%s: forward walk saw %zu of %zu", what, i, n);
    expect_end(it, what);
    i = n;
    for (iiter_seek_last(it); it->valid; iiter_prev(it)) {
        cr_assert_gt(i, 0, "%s: more entries backward than added", what);
        expect_at(it, e, --i, what);
    }
    cr_assert_eq(i, 0, "%s: backward walk stopped at %zu", what, i);
    expect_end(it, what);

    /* Every entry of small blocks; about 300 spread over large ones (each
     * probe of a block with 1,000-entry restart intervals scans one). */
    size_t stride = n > 300 ? n / 300 : 1;
    for (size_t step = 0; n && step <= n / stride; step++) {
        i = step * stride < n ? step * stride : n - 1; /* the last entry always */
        iiter_seek(it, e[i].k, e[i].kl, e[i].tag);
        expect_at(it, e, i, "seek exact");
        if (i + 1 < n) {
            iiter_next(it);
            expect_at(it, e, i + 1, "seek then next");
            iiter_prev(it);
            expect_at(it, e, i, "seek, next, prev");
        }
        iiter_seek_for_prev(it, e[i].k, e[i].kl, e[i].tag);
        expect_at(it, e, i, "seek_for_prev exact");
        if (i > 0) {
            iiter_prev(it);
            expect_at(it, e, i - 1, "seek_for_prev then prev");
            iiter_next(it);
            expect_at(it, e, i, "seek_for_prev, prev, next");
        }
        /* Just after entry i (a smaller tag) and just before it. */
        if (e[i].tag > 0) {
            size_t want = ref_lower(e, n, e[i].k, e[i].kl, e[i].tag - 1);
            iiter_seek(it, e[i].k, e[i].kl, e[i].tag - 1);
            if (want == n) expect_end(it, "seek past");
            else expect_at(it, e, want, "seek past");
        }
        if (e[i].tag < UINT64_MAX) {
            size_t want = ref_upper(e, n, e[i].k, e[i].kl, e[i].tag + 1);
            iiter_seek_for_prev(it, e[i].k, e[i].kl, e[i].tag + 1);
            if (want == 0) expect_end(it, "seek_for_prev before");
            else expect_at(it, e, want - 1, "seek_for_prev before");
        }
    }
    /* Before everything and after everything. */
    iiter_seek(it, (const uint8_t *)"", 0, UINT64_MAX);
    if (n) expect_at(it, e, 0, "seek to the smallest key");
    else expect_end(it, "seek in an empty block");
    iiter_seek_for_prev(it, (const uint8_t *)"", 0, UINT64_MAX);
    expect_end(it, "seek_for_prev before everything");
    iiter_seek(it, (const uint8_t *)"q", 1, 0);
    expect_end(it, "seek past everything");
    iiter_seek_for_prev(it, (const uint8_t *)"q", 1, 0);
    if (n) expect_at(it, e, n - 1, "seek_for_prev past everything");
    else expect_end(it, "seek_for_prev in an empty block");
    iiter_destroy(it);
}

Test(block, round_trip_at_restart_edges)
{
    static const unsigned intervals[] = {1, 2, 16, 1000};
    struct ent *e = gen_entries(2001);
    for (size_t ii = 0; ii < sizeof intervals / sizeof *intervals; ii++) {
        unsigned r = intervals[ii];
        /* Empty, one, a multiple of the interval, one more, one less, two
         * intervals and a bit. */
        size_t counts[] = {0, 1, r > 1 ? r - 1 : 2, r, r + 1, 2 * r, 2 * r + 1, 37};
        for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
            size_t n = counts[ci], len;
            uint8_t *d = build(e, n, r, &len);
            char what[64];
            snprintf(what, sizeof what, "interval %u, %zu entries", r, n);
            check_block(d, len, e, n, what);
            free(d);
        }
    }
    free(e);
}

Test(block, random_seeks_against_reference)
{
    uint64_t seed = tu_seed("block/random_seeks_against_reference"), s = seed;
    size_t n = 700;
    struct ent *e = gen_entries(n);
    static const unsigned intervals[] = {1, 3, 16, 1000};
    for (size_t ii = 0; ii < 4; ii++) {
        size_t len;
        uint8_t *d = build(e, n, intervals[ii], &len);
        block b;
        cr_assert_eq(block_init(&b, d, len), TIND_OK);
        iiter *it = block_iter_new(&b);
        for (int round = 0; round < 2000; round++) {
            /* A target near a real key: the key itself, a prefix of it, or it
             * with a byte changed; any tag. */
            const struct ent *x = &e[tu_below(&s, n)];
            uint8_t k[8];
            size_t kl = x->kl;
            memcpy(k, x->k, kl);
            switch (tu_below(&s, 3)) {
            case 0: kl = tu_below(&s, kl + 1); break;
            case 1: k[tu_below(&s, kl)] = (uint8_t)tu_rand(&s); break;
            default: break;
            }
            uint64_t tag = tu_below(&s, 2) ? x->tag + tu_below(&s, 3) - 1 : tu_rand(&s);
            int back = (int)tu_below(&s, 2);
            size_t want;
            if (!back) {
                iiter_seek(it, k, kl, tag);
                want = ref_lower(e, n, k, kl, tag);
            } else {
                iiter_seek_for_prev(it, k, kl, tag);
                want = ref_upper(e, n, k, kl, tag);
                want = want ? want - 1 : n;
            }
            if (want == n) {
                expect_end(it, back ? "random seek_for_prev" : "random seek");
                continue;
            }
            expect_at(it, e, want, back ? "random seek_for_prev" : "random seek");
            /* Wander from there and compare each step. */
            size_t pos = want;
            for (int step = 0; step < 20; step++) {
                if (tu_below(&s, 2)) {
                    iiter_next(it);
                    if (++pos == n) {
                        expect_end(it, "random next");
                        break;
                    }
                    expect_at(it, e, pos, "random next");
                } else {
                    iiter_prev(it);
                    if (pos-- == 0) {
                        expect_end(it, "random prev");
                        break;
                    }
                    expect_at(it, e, pos, "random prev");
                }
            }
        }
        iiter_destroy(it);
        free(d);
    }
    free(e);
}

Test(block, prefix_sharing_and_long_keys)
{
    /* Versions of one long key share it entirely; a 65,535-byte key and a key
     * longer than the iterator's inline buffer go through the key buffer. */
    size_t big = 65535;
    uint8_t *k = malloc(big);
    cr_assert_not_null(k);
    for (size_t i = 0; i < big; i++) k[i] = (uint8_t)(i * 31);
    block_builder bb;
    block_builder_init(&bb, 16);
    for (unsigned v = 0; v < 40; v++)
        cr_assert_eq(block_builder_add(&bb, k, 100, tag_pack(1000 - v, KIND_PUT), k, v), TIND_OK);
    cr_assert_eq(block_builder_add(&bb, k, big, tag_pack(5, KIND_PUT), (const uint8_t *)"x", 1), TIND_OK);
    cr_assert_eq(block_builder_add(&bb, k, big, tag_pack(4, KIND_DELETE), NULL, 0), TIND_OK);
    const uint8_t *d;
    size_t len;
    cr_assert_eq(block_builder_finish(&bb, &d, &len), TIND_OK);
    /* 40 versions of a 100-byte key plus two of a 64 KiB key: prefix sharing
     * keeps the block near one copy of each key. */
    cr_assert_lt(len, 100 + big + 40 * 40 + 2000, "block of %zu bytes: prefixes not shared", len);
    block b;
    cr_assert_eq(block_init(&b, d, len), TIND_OK);
    iiter *it = block_iter_new(&b);
    iiter_seek(it, k, big, UINT64_MAX);
    cr_assert(it->valid && it->klen == big && memcmp(it->key, k, big) == 0 && it->tag == tag_pack(5, KIND_PUT));
    iiter_next(it);
    cr_assert(it->valid && it->klen == big && memcmp(it->key, k, big) == 0 && it->tag == tag_pack(4, KIND_DELETE));
    iiter_prev(it);
    cr_assert(it->valid && it->tag == tag_pack(5, KIND_PUT));
    iiter_prev(it);
    cr_assert(it->valid && it->klen == 100 && it->tag == tag_pack(961, KIND_PUT) && it->vlen == 39);
    iiter_seek(it, k, 100, tag_pack(980, KIND_MAX));
    cr_assert(it->valid && it->tag == tag_pack(980, KIND_PUT) && it->vlen == 20 && memcmp(it->val, k, 20) == 0);
    iiter_destroy(it);
    block_builder_free(&bb);
    free(k);
}

/* Runs every operation on a (possibly malformed) block: nothing may read out
 * of bounds; returns the first error status seen, or TIND_OK. */
static int exercise(const uint8_t *d, size_t len)
{
    block b;
    int rc = block_init(&b, d, len);
    if (rc) return rc;
    iiter *it = block_iter_new(&b);
    cr_assert_not_null(it);
    int bad = TIND_OK;
#define NOTE()                                                                                               \
    do {                                                                                                     \
        if (!bad && iiter_status(it)) bad = iiter_status(it);                                                \
    } while (0)
    size_t steps = 0;
    for (iiter_seek_first(it); it->valid && steps < 100000; iiter_next(it), steps++) cr_assert_geq(it->klen + 8, 8);
    NOTE();
    steps = 0;
    for (iiter_seek_last(it); it->valid && steps < 100000; iiter_prev(it), steps++) cr_assert_geq(it->klen + 8, 8);
    NOTE();
    static const char *const probes[] = {"", "p", "p\x00\x00\x05", "p\x00\x01", "q"};
    for (size_t i = 0; i < 5; i++) {
        size_t pl = i == 2 ? 4 : strlen(probes[i]);
        iiter_seek(it, (const uint8_t *)probes[i], pl, UINT64_MAX / 2);
        NOTE();
        if (it->valid) {
            iiter_prev(it);
            NOTE();
        }
        iiter_seek_for_prev(it, (const uint8_t *)probes[i], pl, UINT64_MAX / 2);
        NOTE();
        if (it->valid) {
            iiter_next(it);
            NOTE();
        }
    }
#undef NOTE
    iiter_destroy(it);
    return bad;
}

Test(block, truncated_blocks_are_corruption)
{
    size_t n = 50, len;
    struct ent *e = gen_entries(n);
    uint8_t *d = build(e, n, 4, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, d, cut);
        int rc = exercise(t, cut);
        cr_assert_eq(rc, TIND_CORRUPTION, "block cut to %zu of %zu bytes: status %d", cut, len, rc);
        free(t);
    }
    free(d);
    free(e);
}

Test(block, garbled_blocks_never_read_out_of_bounds)
{
    uint64_t seed = tu_seed("block/garbled_blocks_never_read_out_of_bounds"), s = seed;
    size_t n = 40, len;
    struct ent *e = gen_entries(n);
    uint8_t *d = build(e, n, 4, &len);
    uint8_t *t = malloc(len);
    size_t corrupt = 0;
    /* Every byte set to a few values, then random multi-byte damage. */
    static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    for (size_t at = 0; at < len; at++) {
        for (size_t vi = 0; vi < sizeof vals; vi++) {
            memcpy(t, d, len);
            t[at] = vals[vi];
            int rc = exercise(t, len);
            cr_assert(rc == TIND_OK || rc == TIND_CORRUPTION, "byte %zu = %02x: status %d", at, vals[vi], rc);
            corrupt += rc == TIND_CORRUPTION;
        }
    }
    for (int round = 0; round < 2000; round++) {
        memcpy(t, d, len);
        for (uint64_t k = 1 + tu_below(&s, 8); k; k--) t[tu_below(&s, len)] = (uint8_t)tu_rand(&s);
        int rc = exercise(t, len);
        cr_assert(rc == TIND_OK || rc == TIND_CORRUPTION, "round %d: status %d", round, rc);
    }
    /* Damage to lengths and restarts is caught (values and key bytes cannot be). */
    cr_assert_gt(corrupt, len / 2, "only %zu of %zu single-byte garbles detected", corrupt, len * sizeof vals);
    free(t);
    free(d);
    free(e);
}

/* Hand-made malformed blocks, each a specific check. */
static int one_entry_block(uint32_t shared, uint32_t unshared, uint32_t vlen, size_t body, uint32_t nrestarts,
                           uint32_t restart0)
{
    uint8_t blk[128], *p = blk;
    p = put_varint32(p, shared);
    p = put_varint32(p, unshared);
    p = put_varint32(p, vlen);
    memset(p, 'a', body);
    p += body;
    for (uint32_t i = 0; i < nrestarts && i < 4; i++, p += 4) put_u32(p, i ? restart0 + i : restart0);
    put_u32(p, nrestarts);
    p += 4;
    size_t len = (size_t)(p - blk);
    uint8_t *t = malloc(len);
    memcpy(t, blk, len);
    int rc = exercise(t, len);
    free(t);
    return rc;
}

Test(block, malformed_entries_are_corruption)
{
    cr_assert_eq(one_entry_block(0, 9, 2, 11, 1, 0), TIND_OK, "the well-formed control");
    cr_assert_eq(one_entry_block(3, 9, 2, 11, 1, 0), TIND_CORRUPTION, "shared bytes at a restart point");
    cr_assert_eq(one_entry_block(0, 5, 2, 7, 1, 0), TIND_CORRUPTION, "key shorter than a tag");
    cr_assert_eq(one_entry_block(0, 9, 200, 11, 1, 0), TIND_CORRUPTION, "value past the entries");
    cr_assert_eq(one_entry_block(0, 90, 2, 11, 1, 0), TIND_CORRUPTION, "key past the entries");
    cr_assert_eq(one_entry_block(0, 9, 2, 11, 1, 5), TIND_CORRUPTION, "first restart not at 0");
    cr_assert_eq(one_entry_block(0, 9, 2, 11, 1000, 0), TIND_CORRUPTION, "restart count too large");
    cr_assert_eq(one_entry_block(0, 9, 2, 11, 0, 0), TIND_CORRUPTION, "entries without restarts");
    cr_assert_eq(one_entry_block(0, 9, 2, 11, 2, 0), TIND_CORRUPTION, "a restart off an entry boundary");
    /* A varint that never ends. */
    uint8_t v[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0};
    uint8_t *t = malloc(sizeof v);
    memcpy(t, v, sizeof v);
    cr_assert_eq(exercise(t, sizeof v), TIND_CORRUPTION, "over-long varint");
    free(t);
    /* Too short for the restart count. */
    t = malloc(3);
    memset(t, 0, 3);
    cr_assert_eq(exercise(t, 3), TIND_CORRUPTION);
    free(t);
}

/* Found by fuzzing: block_init checks only that restart offsets increase, so
 * a restart pointing into the middle of an entry, or at an entry that shares
 * a prefix, passed table_verify, and only backward steps and seeks (which
 * start at restart points) then failed. block_check walks the entries. */
Test(block, check_rejects_restarts_off_whole_entries)
{
    block_builder bb;
    block_builder_init(&bb, 2);
    size_t starts[4];
    for (unsigned i = 0; i < 4; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "key-%u", i);
        starts[i] = bb.data.len;
        cr_assert_eq(block_builder_add(&bb, (const uint8_t *)k, (size_t)kl, tag_pack(10 + i, KIND_PUT),
                                       (const uint8_t *)"v", 1),
                     TIND_OK);
    }
    const uint8_t *data;
    size_t n;
    cr_assert_eq(block_builder_finish(&bb, &data, &n), TIND_OK);
    uint8_t *copy = malloc(n);
    cr_assert_not_null(copy);
    memcpy(copy, data, n);
    uint8_t *r1 = copy + n - 4 - 4; /* restarts at entries 0 and 2 */
    cr_assert_eq(get_u32(r1), starts[2]);
    block b;
    cr_assert_eq(block_init(&b, copy, n), TIND_OK);
    cr_assert_eq(block_check(&b), TIND_OK, "the well-formed control: %s", err_msg());

    put_u32(r1, (uint32_t)starts[2] + 2); /* inside entry 2 */
    cr_assert_eq(block_init(&b, copy, n), TIND_OK, "block_init does not walk the entries");
    cr_assert_eq(block_check(&b), TIND_CORRUPTION, "a restart inside an entry");
    cr_assert(strstr(err_msg(), "inside an entry"), "message: %s", err_msg());

    put_u32(r1, (uint32_t)starts[1]); /* entry 1 shares "key-" with entry 0 */
    cr_assert_eq(block_init(&b, copy, n), TIND_OK);
    cr_assert_eq(block_check(&b), TIND_CORRUPTION, "a restart at an entry sharing a prefix");
    cr_assert(strstr(err_msg(), "sharing a prefix"), "message: %s", err_msg());
    free(copy);
    block_builder_free(&bb);
}
