#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "lsm/memtable.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* Small, so that the larger tests fill it and search past its false
 * positives; the filter's own test sizes its own. */
#define MT_TEST_FILTER 1024

/* ---- helpers ---- */

static void put(memtable *m, uint64_t seq, unsigned kind, const char *k, size_t kl, const char *v)
{
    int rc = memtable_add(m, seq, kind, k, kl, v, v ? strlen(v) : 0);
    cr_assert_eq(rc, TIND_OK, "memtable_add seq %llu: %d", (unsigned long long)seq, rc);
}

/* Asserts the iterator is at (key, seq, kind) with value val (NULL: not checked). */
static void at(const iiter *it, const char *k, size_t kl, uint64_t seq, unsigned kind, const char *val)
{
    cr_assert(it->valid, "expected (%s, %llu), iterator invalid", tu_hex(k, kl), (unsigned long long)seq);
    cr_assert(it->klen == kl && memcmp(it->key, k, kl) == 0, "expected key %s, got %s", tu_hex(k, kl),
              tu_hex(it->key, it->klen));
    cr_assert_eq(it->tag, tag_pack(seq, kind), "key %s: expected seq %llu kind %u, got seq %llu kind %u",
                 tu_hex(k, kl), (unsigned long long)seq, kind, (unsigned long long)tag_seq(it->tag),
                 tag_kind(it->tag));
    if (val)
        cr_assert(it->vlen == strlen(val) && memcmp(it->val, val, it->vlen) == 0,
                  "key %s: expected value %s, got %s", tu_hex(k, kl), tu_hex(val, strlen(val)),
                  tu_hex(it->val, it->vlen));
}

static void invalid(const iiter *it)
{
    cr_assert(!it->valid, "expected an invalid iterator, at key len %zu seq %llu", it->klen,
              (unsigned long long)tag_seq(it->tag));
}

/* ---- basics ---- */

/* The filter never turns away a key that was added (any version, any
 * length), turns away most that were not, and a memtable works alike with
 * none. */
Test(memtable, filter_keeps_every_key_and_turns_away_most_absent_ones)
{
    enum { N = 20000 };
    memtable *with = memtable_new((size_t)N * 4), *none = memtable_new(0), *tiny = memtable_new(63);
    cr_assert(with && none && tiny);
    cr_assert_eq(memtable_filter_bytes(with), (size_t)N * 4 / 64 * 64);
    cr_assert_eq(memtable_filter_bytes(none), 0);
    cr_assert_eq(memtable_filter_bytes(tiny), 0);
    memtable *all[] = {with, none};
    char k[32];
    for (int j = 0; j < 2; j++)
        for (uint64_t i = 0; i < N; i++) {
            int kl = snprintf(k, sizeof k, "key%llu", (unsigned long long)(i * 7919 % N));
            cr_assert_eq(memtable_add(all[j], i + 1, i % 5 ? KIND_PUT : KIND_DELETE, k, (size_t)kl, "v", 1), TIND_OK);
        }
    unsigned kind;
    const uint8_t *v;
    size_t vl;
    for (int j = 0; j < 2; j++)
        for (uint64_t i = 0; i < N; i++) {
            int kl = snprintf(k, sizeof k, "key%llu", (unsigned long long)i);
            cr_assert_eq(memtable_get(all[j], k, (size_t)kl, SEQ_MAX, &kind, &v, &vl), 1, "key %s lost (memtable %d)", k, j);
        }
    /* Absent keys: a miss in both; count those the filter lets through. */
    uint64_t absent = 0;
    for (uint64_t i = 0; i < N; i++) {
        int kl = snprintf(k, sizeof k, "nokey%llu", (unsigned long long)i);
        for (int j = 0; j < 2; j++)
            cr_assert_eq(memtable_get(all[j], k, (size_t)kl, SEQ_MAX, &kind, &v, &vl), 0, "absent %s found", k);
        absent += (uint64_t)memtable_filter_may_contain(with, k, (size_t)kl);
        cr_assert_eq(memtable_filter_may_contain(none, k, (size_t)kl), 1);
    }
    /* 4 bytes of filter per key is 32 bits per key: well under 1% get through. */
    cr_assert_lt(absent, N / 100, "the filter let %llu of %d absent keys through", (unsigned long long)absent, N);
    memtable_unref(with);
    memtable_unref(none);
    memtable_unref(tiny);
}

Test(memtable, empty)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    cr_assert_not_null(m);
    cr_assert_eq(memtable_count(m), 0);
    cr_assert_gt(memtable_bytes(m), 0);
    unsigned kind;
    const uint8_t *v;
    size_t vl;
    cr_assert_eq(memtable_get(m, "a", 1, SEQ_MAX, &kind, &v, &vl), 0);
    cr_assert_eq(memtable_get(m, "", 0, SEQ_MAX, &kind, &v, &vl), 0);

    iiter *it = memtable_iter(m);
    cr_assert_not_null(it);
    invalid(it);
    iiter_seek_first(it);
    invalid(it);
    iiter_seek_last(it);
    invalid(it);
    iiter_seek(it, (const uint8_t *)"a", 1, tag_pack(SEQ_MAX, KIND_MAX));
    invalid(it);
    iiter_seek_for_prev(it, (const uint8_t *)"a", 1, 0);
    invalid(it);
    cr_assert_eq(iiter_status(it), TIND_OK);
    iiter_destroy(it);
    memtable_unref(m);
}

Test(memtable, order_by_internal_key)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    /* Inserted out of order; expected order below. */
    put(m, 5, KIND_PUT, "b", 1, "b5");
    put(m, 1, KIND_PUT, "a\0", 2, "a0");
    put(m, 2, KIND_PUT, "a", 1, "a2");
    put(m, 9, KIND_DELETE, "a", 1, NULL);
    put(m, 3, KIND_PUT, "\xff", 1, "ff");
    put(m, 4, KIND_PUT, "\xff\xff", 2, "ffff");
    put(m, 6, KIND_PUT, "\0", 1, "00");
    put(m, 7, KIND_PUT, "ab", 2, "ab");
    put(m, 8, KIND_PUT, "a", 1, "a8");
    put(m, 10, KIND_PUT, "\0\0", 2, "0000");
    cr_assert_eq(memtable_count(m), 10);

    struct { const char *k; size_t kl; uint64_t seq; unsigned kind; const char *v; } want[] = {
        {"\0", 1, 6, KIND_PUT, "00"},
        {"\0\0", 2, 10, KIND_PUT, "0000"},
        {"a", 1, 9, KIND_DELETE, ""},
        {"a", 1, 8, KIND_PUT, "a8"},
        {"a", 1, 2, KIND_PUT, "a2"},
        {"a\0", 2, 1, KIND_PUT, "a0"},
        {"ab", 2, 7, KIND_PUT, "ab"},
        {"b", 1, 5, KIND_PUT, "b5"},
        {"\xff", 1, 3, KIND_PUT, "ff"},
        {"\xff\xff", 2, 4, KIND_PUT, "ffff"},
    };
    size_t n = sizeof want / sizeof want[0];

    iiter *it = memtable_iter(m);
    iiter_seek_first(it);
    for (size_t i = 0; i < n; i++) {
        at(it, want[i].k, want[i].kl, want[i].seq, want[i].kind, want[i].v);
        iiter_next(it);
    }
    invalid(it);

    iiter_seek_last(it);
    for (size_t i = n; i-- > 0;) {
        at(it, want[i].k, want[i].kl, want[i].seq, want[i].kind, want[i].v);
        iiter_prev(it);
    }
    invalid(it);
    iiter_destroy(it);
    memtable_unref(m);
}

Test(memtable, get_at_snapshots)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    put(m, 10, KIND_PUT, "k", 1, "v10");
    put(m, 20, KIND_PUT, "k", 1, "v20");
    put(m, 30, KIND_DELETE, "k", 1, NULL);
    put(m, 40, KIND_PUT, "k", 1, "v40");
    put(m, 15, KIND_PUT, "j", 1, "j15");
    put(m, 25, KIND_PUT, "kk", 2, "kk25");
    put(m, 5, KIND_PUT, "l", 1, "");

    struct { uint64_t seq; int found; unsigned kind; const char *v; } want[] = {
        {0, 0, 0, NULL}, {9, 0, 0, NULL}, {10, 1, KIND_PUT, "v10"}, {19, 1, KIND_PUT, "v10"},
        {20, 1, KIND_PUT, "v20"}, {29, 1, KIND_PUT, "v20"}, {30, 1, KIND_DELETE, ""},
        {39, 1, KIND_DELETE, ""}, {40, 1, KIND_PUT, "v40"}, {SEQ_MAX, 1, KIND_PUT, "v40"},
        {UINT64_MAX, 1, KIND_PUT, "v40"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        unsigned kind = 99;
        const uint8_t *v = NULL;
        size_t vl = 99;
        int found = memtable_get(m, "k", 1, want[i].seq, &kind, &v, &vl);
        cr_assert_eq(found, want[i].found, "get k at %llu: found %d", (unsigned long long)want[i].seq, found);
        if (!found) continue;
        cr_assert_eq(kind, want[i].kind, "get k at %llu: kind %u", (unsigned long long)want[i].seq, kind);
        cr_assert(vl == strlen(want[i].v) && memcmp(v, want[i].v, vl) == 0, "get k at %llu: value %.*s",
                  (unsigned long long)want[i].seq, (int)vl, (const char *)v);
    }

    unsigned kind;
    const uint8_t *v;
    size_t vl;
    /* Neighbours never answer for each other. */
    cr_assert_eq(memtable_get(m, "", 0, SEQ_MAX, &kind, &v, &vl), 0);
    cr_assert_eq(memtable_get(m, "i", 1, SEQ_MAX, &kind, &v, &vl), 0);
    cr_assert_eq(memtable_get(m, "j", 1, 14, &kind, &v, &vl), 0);
    cr_assert_eq(memtable_get(m, "kk", 2, 24, &kind, &v, &vl), 0);
    cr_assert_eq(memtable_get(m, "kk", 2, 25, &kind, &v, &vl), 1);
    cr_assert_eq(memtable_get(m, "k\0", 2, SEQ_MAX, &kind, &v, &vl), 0);
    cr_assert_eq(memtable_get(m, "l", 1, 5, &kind, &v, &vl), 1);
    cr_assert_eq(vl, 0, "empty value");
    cr_assert_eq(memtable_get(m, "z", 1, SEQ_MAX, &kind, &v, &vl), 0);
    memtable_unref(m);
}

Test(memtable, many_versions_newest_first)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    enum { V = 3000 };
    uint64_t s = 42;
    /* Versions of one key inserted in a shuffled order of sequence numbers. */
    static uint64_t seqs[V];
    for (size_t i = 0; i < V; i++) seqs[i] = 2 * i + 1;
    for (size_t i = V - 1; i > 0; i--) {
        size_t j = tu_rand(&s) % (i + 1);
        uint64_t t = seqs[i];
        seqs[i] = seqs[j];
        seqs[j] = t;
    }
    char v[32];
    for (size_t i = 0; i < V; i++) {
        snprintf(v, sizeof v, "v%llu", (unsigned long long)seqs[i]);
        put(m, seqs[i], seqs[i] % 7 == 0 ? KIND_DELETE : KIND_PUT, "key", 3, v);
    }
    put(m, 100000, KIND_PUT, "kez", 3, "other");
    put(m, 100001, KIND_PUT, "kex", 3, "other");

    iiter *it = memtable_iter(m);
    iiter_seek(it, (const uint8_t *)"key", 3, tag_pack(SEQ_MAX, KIND_MAX));
    for (uint64_t q = 2 * V - 1;; q -= 2) {
        snprintf(v, sizeof v, "v%llu", (unsigned long long)q);
        at(it, "key", 3, q, q % 7 == 0 ? KIND_DELETE : KIND_PUT, v);
        iiter_next(it);
        if (q == 1) break;
    }
    at(it, "kez", 3, 100000, KIND_PUT, "other");
    iiter_destroy(it);

    for (uint64_t q = 0; q <= 2 * V + 1; q++) {
        unsigned kind;
        const uint8_t *val;
        size_t vl;
        int found = memtable_get(m, "key", 3, q, &kind, &val, &vl);
        if (q == 0) {
            cr_assert_eq(found, 0);
            continue;
        }
        uint64_t want = (q % 2) ? q : q - 1;
        if (want > 2 * V - 1) want = 2 * V - 1;
        snprintf(v, sizeof v, "v%llu", (unsigned long long)want);
        cr_assert_eq(found, 1, "get at %llu", (unsigned long long)q);
        cr_assert_eq(kind, want % 7 == 0 ? (unsigned)KIND_DELETE : (unsigned)KIND_PUT);
        cr_assert(vl == strlen(v) && memcmp(val, v, vl) == 0, "get at %llu: %.*s, want %s",
                  (unsigned long long)q, (int)vl, (const char *)val, v);
    }
    memtable_unref(m);
}

Test(memtable, seek_and_seek_for_prev)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    put(m, 3, KIND_PUT, "b", 1, "b3");
    put(m, 7, KIND_PUT, "b", 1, "b7");
    put(m, 5, KIND_PUT, "d", 1, "d5");
    const uint8_t *b = (const uint8_t *)"b", *c = (const uint8_t *)"c", *d = (const uint8_t *)"d";

    iiter *it = memtable_iter(m);
    /* seek: first >= target. */
    iiter_seek(it, (const uint8_t *)"a", 1, 0);
    at(it, "b", 1, 7, KIND_PUT, "b7");
    iiter_seek(it, b, 1, tag_pack(7, KIND_PUT));
    at(it, "b", 1, 7, KIND_PUT, "b7");
    iiter_seek(it, b, 1, tag_pack(7, KIND_DELETE)); /* just after (b,7,PUT) */
    at(it, "b", 1, 3, KIND_PUT, "b3");
    iiter_seek(it, b, 1, tag_pack(5, KIND_MAX));
    at(it, "b", 1, 3, KIND_PUT, "b3");
    iiter_seek(it, b, 1, 0);
    at(it, "d", 1, 5, KIND_PUT, "d5");
    iiter_seek(it, c, 1, tag_pack(SEQ_MAX, KIND_MAX));
    at(it, "d", 1, 5, KIND_PUT, "d5");
    iiter_seek(it, d, 1, 0);
    invalid(it);
    iiter_seek(it, (const uint8_t *)"", 0, 0);
    at(it, "b", 1, 7, KIND_PUT, "b7");

    /* seek_for_prev: last <= target. */
    iiter_seek_for_prev(it, (const uint8_t *)"a", 1, 0);
    invalid(it);
    iiter_seek_for_prev(it, b, 1, tag_pack(SEQ_MAX, KIND_MAX));
    invalid(it);
    iiter_seek_for_prev(it, b, 1, tag_pack(7, KIND_PUT));
    at(it, "b", 1, 7, KIND_PUT, "b7");
    iiter_seek_for_prev(it, b, 1, tag_pack(5, KIND_MAX));
    at(it, "b", 1, 7, KIND_PUT, "b7");
    iiter_seek_for_prev(it, b, 1, tag_pack(3, KIND_PUT));
    at(it, "b", 1, 3, KIND_PUT, "b3");
    iiter_seek_for_prev(it, c, 1, 0);
    at(it, "b", 1, 3, KIND_PUT, "b3");
    iiter_seek_for_prev(it, d, 1, tag_pack(6, 0));
    at(it, "b", 1, 3, KIND_PUT, "b3");
    iiter_seek_for_prev(it, d, 1, tag_pack(5, KIND_PUT));
    at(it, "d", 1, 5, KIND_PUT, "d5");
    iiter_seek_for_prev(it, (const uint8_t *)"\xff", 1, 0);
    at(it, "d", 1, 5, KIND_PUT, "d5");

    /* Direction changes. */
    iiter_seek(it, b, 1, tag_pack(3, KIND_PUT));
    at(it, "b", 1, 3, KIND_PUT, NULL);
    iiter_prev(it);
    at(it, "b", 1, 7, KIND_PUT, NULL);
    iiter_next(it);
    at(it, "b", 1, 3, KIND_PUT, NULL);
    iiter_next(it);
    at(it, "d", 1, 5, KIND_PUT, NULL);
    iiter_prev(it);
    at(it, "b", 1, 3, KIND_PUT, NULL);
    iiter_prev(it);
    at(it, "b", 1, 7, KIND_PUT, NULL);
    iiter_prev(it);
    invalid(it);
    iiter_prev(it); /* no-op while invalid */
    invalid(it);
    iiter_next(it);
    invalid(it);
    iiter_seek_last(it);
    at(it, "d", 1, 5, KIND_PUT, NULL);
    iiter_next(it);
    invalid(it);
    iiter_destroy(it);
    memtable_unref(m);
}

Test(memtable, iterator_keeps_memtable_alive)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    put(m, 1, KIND_PUT, "x", 1, "y");
    iiter *it = memtable_iter(m);
    memtable_unref(m); /* the iterator's reference is the last */
    iiter_seek_first(it);
    at(it, "x", 1, 1, KIND_PUT, "y");
    iiter_destroy(it);
}

Test(memtable, rejects_oversized_key)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    static char k[TIND_MAX_KEY_BYTES + 1];
    cr_assert_eq(memtable_add(m, 1, KIND_PUT, k, sizeof k, "v", 1), TIND_INVALID);
    cr_assert_eq(memtable_add(m, SEQ_MAX + 1, KIND_PUT, "k", 1, "v", 1), TIND_INVALID);
    cr_assert_eq(memtable_count(m), 0);
    memtable_unref(m);
}

Test(memtable, large_value_and_longest_key)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    size_t vl = (size_t)16 << 20, kl = TIND_MAX_KEY_BYTES;
    uint8_t *val = malloc(vl), *key = malloc(kl);
    cr_assert(val && key);
    for (size_t i = 0; i < vl; i++) val[i] = (uint8_t)(i * 131 + (i >> 9));
    for (size_t i = 0; i < kl; i++) key[i] = (uint8_t)(i * 7 + 1);
    key[0] = 'a'; /* between "a" and "b" */
    put(m, 1, KIND_PUT, "a", 1, "small");
    size_t before = memtable_bytes(m);
    cr_assert_eq(memtable_add(m, 2, KIND_PUT, key, kl, val, vl), TIND_OK);
    cr_assert_geq(memtable_bytes(m) - before, vl + kl);
    cr_assert_eq(memtable_add(m, 3, KIND_PUT, key, kl, "short", 5), TIND_OK);
    put(m, 4, KIND_PUT, "b", 1, "small");
    /* The small entries still share a block: the large one took its own. */
    cr_assert_lt(memtable_bytes(m), before + vl + kl + 2 * 65536 + (1u << 20) + 4096);

    unsigned kind;
    const uint8_t *v;
    size_t got;
    cr_assert_eq(memtable_get(m, key, kl, 2, &kind, &v, &got), 1);
    cr_assert_eq(got, vl);
    cr_assert(memcmp(v, val, vl) == 0, "16 MiB value differs");
    cr_assert_eq(memtable_get(m, key, kl, 3, &kind, &v, &got), 1);
    cr_assert(got == 5 && memcmp(v, "short", 5) == 0);
    cr_assert_eq(memtable_get(m, key, kl - 1, SEQ_MAX, &kind, &v, &got), 0);

    iiter *it = memtable_iter(m);
    iiter_seek_first(it);
    at(it, "a", 1, 1, KIND_PUT, "small");
    iiter_next(it);
    cr_assert(it->valid && it->klen == kl && memcmp(it->key, key, kl) == 0);
    cr_assert_eq(it->tag, tag_pack(3, KIND_PUT));
    iiter_next(it);
    cr_assert(it->valid && it->klen == kl && it->vlen == vl && memcmp(it->val, val, vl) == 0);
    iiter_next(it);
    at(it, "b", 1, 4, KIND_PUT, "small");
    iiter_prev(it);
    cr_assert(it->valid && it->vlen == vl);
    iiter_destroy(it);
    free(val);
    free(key);
    memtable_unref(m);
}

/* ---- key prefixes: short keys, ties in the first 8 bytes ---- */

/* Keys in internal order, each inserted once: the memtable compares them by
 * an 8-byte big-endian prefix first, so these sit at the prefix's edges. */
Test(memtable, prefix_ties_and_short_keys)
{
    static const struct {
        const char *k;
        size_t kl;
    } keys[] = {
        {"", 0},
        {"\0", 1},
        {"\0\0\0\0\0\0\0", 7},
        {"\0\0\0\0\0\0\0\0", 8},
        {"\0\0\0\0\0\0\0\0\0", 9},
        {"a", 1},
        {"a\0", 2},
        {"a\0\0\0\0\0\0\0", 8},
        {"a\0\0\0\0\0\0\0\0", 9},
        {"a\0\0\0\0\0\0\1", 8},
        {"a\1", 2},
        {"abcdefg", 7},
        {"abcdefg\0", 8},
        {"abcdefgh", 8},
        {"abcdefgh\0", 9},
        {"abcdefgh\0\0\0\0\0\0\0\0", 16},
        {"abcdefgh\0\0\0\0\0\0\0\1", 16},
        {"abcdefgh\0\0\0\0\0\0\0\1\0", 17},
        {"abcdefgh\x7f", 9},
        {"abcdefgh\x80", 9},
        {"abcdefgh\xff\xff\xff\xff\xff\xff\xff\xfe", 16},
        {"abcdefgh\xff\xff\xff\xff\xff\xff\xff\xff", 16},
        {"abcdefgh\xff\xff\xff\xff\xff\xff\xff\xff\0", 17},
        {"abcdefgi", 8},
        {"\x7f\xff\xff\xff\xff\xff\xff\xff", 8},
        {"\x80", 1},
        {"\xff\xff\xff\xff\xff\xff\xff", 7},
        {"\xff\xff\xff\xff\xff\xff\xff\xff", 8},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\0", 9},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9},
    };
    enum { NK = sizeof keys / sizeof keys[0] };
    /* The list is sorted: check it against ukey_cmp before trusting it. */
    for (size_t i = 1; i < NK; i++)
        cr_assert_lt(ukey_cmp(keys[i - 1].k, keys[i - 1].kl, keys[i].k, keys[i].kl), 0, "list order at %zu", i);

    memtable *m = memtable_new(MT_TEST_FILTER);
    /* Insert in a scrambled order, two versions each (seq i+1 and i+1+NK),
     * with the value naming the key's index and version. */
    for (size_t v = 0; v < 2; v++)
        for (size_t j = 0; j < NK; j++) {
            size_t i = (j * 7 + 3) % NK;
            char val[48];
            snprintf(val, sizeof val, "%zu.%zu", i, v);
            size_t before = memtable_bytes(m);
            put(m, 1 + i + v * NK, KIND_PUT, keys[i].k, keys[i].kl, val);
            cr_assert_geq(memtable_bytes(m), before + keys[i].kl + strlen(val), "bytes count key and value");
        }

    iiter *it = memtable_iter(m);
    iiter_seek_first(it);
    for (size_t i = 0; i < NK; i++)
        for (size_t v = 2; v-- > 0;) {
            char val[48];
            snprintf(val, sizeof val, "%zu.%zu", i, v);
            at(it, keys[i].k, keys[i].kl, 1 + i + v * NK, KIND_PUT, val);
            iiter_next(it);
        }
    invalid(it);
    for (size_t i = 0; i < NK; i++) {
        unsigned kind;
        const uint8_t *v;
        size_t vl;
        char want[48];
        snprintf(want, sizeof want, "%zu.1", i);
        cr_assert_eq(memtable_get(m, keys[i].k, keys[i].kl, SEQ_MAX, &kind, &v, &vl), 1, "get key %zu", i);
        cr_assert(vl == strlen(want) && memcmp(v, want, vl) == 0, "get key %zu: newest version", i);
        snprintf(want, sizeof want, "%zu.0", i);
        cr_assert_eq(memtable_get(m, keys[i].k, keys[i].kl, i + NK, &kind, &v, &vl), 1, "get key %zu old", i);
        cr_assert(vl == strlen(want) && memcmp(v, want, vl) == 0, "get key %zu: older version", i);
        cr_assert_eq(memtable_get(m, keys[i].k, keys[i].kl, i, &kind, &v, &vl), 0, "key %zu before it", i);
        /* seek_for_prev lands on the older version; prev steps to the key before. */
        iiter_seek_for_prev(it, (const uint8_t *)keys[i].k, keys[i].kl, 0);
        at(it, keys[i].k, keys[i].kl, 1 + i, KIND_PUT, NULL);
        iiter_prev(it);
        at(it, keys[i].k, keys[i].kl, 1 + i + NK, KIND_PUT, NULL);
        iiter_prev(it);
        if (i == 0)
            invalid(it);
        else
            at(it, keys[i - 1].k, keys[i - 1].kl, i, KIND_PUT, NULL);
    }
    iiter_destroy(it);
    memtable_unref(m);
}

/* ---- randomized, against a sorted array ---- */

#define MT_KEY_MAX 24

typedef struct mt_ent {
    uint8_t key[MT_KEY_MAX];
    size_t klen;
    uint64_t tag;
} mt_ent;

static int mt_ent_cmp(const void *a, const void *b)
{
    const mt_ent *x = a, *y = b;
    return ikey_cmp(x->key, x->klen, x->tag, y->key, y->klen, y->tag);
}

/* Index of the first entry >= target (n when none). */
static size_t mt_lower(const mt_ent *e, size_t n, const uint8_t *k, size_t kl, uint64_t tag)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ikey_cmp(e[mid].key, e[mid].klen, e[mid].tag, k, kl, tag) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void mt_check(const iiter *it, const mt_ent *e, size_t n, size_t i, const char *what)
{
    if (i >= n) {
        cr_assert(!it->valid, "%s: expected the end, got a valid entry", what);
        return;
    }
    cr_assert(it->valid, "%s: expected entry %zu, iterator invalid", what, i);
    cr_assert(it->klen == e[i].klen && memcmp(it->key, e[i].key, e[i].klen) == 0 && it->tag == e[i].tag,
              "%s: entry %zu: expected %s seq %llu, got %s seq %llu", what, i, tu_hex(e[i].key, e[i].klen),
              (unsigned long long)tag_seq(e[i].tag), tu_hex(it->key, it->klen), (unsigned long long)tag_seq(it->tag));
    cr_assert(it->vlen == 8 && memcmp(it->val, &e[i].tag, 8) == 0, "%s: value of entry %zu differs", what, i);
}

/* How the randomized runs draw keys: lengths in [min_len, max_len]; each of
 * the first `common` bytes is '0' seven times in eight (so many keys tie in
 * their first 8 bytes), the others come from a small alphabet with 0x00 and
 * 0xff (prefixes of one another and ties are common). `ascending`: entries
 * are mostly inserted in key order (the memtable's append path), with one in
 * eight out of order. */
typedef struct mt_shape {
    size_t min_len, max_len, common;
    int ascending;
} mt_shape;

static void mt_draw_key(uint64_t *s, const mt_shape *sh, uint8_t *k, size_t *kl)
{
    static const uint8_t alpha[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
    *kl = sh->min_len + tu_rand(s) % (sh->max_len - sh->min_len + 1);
    for (size_t j = 0; j < *kl; j++)
        k[j] = j < sh->common && tu_rand(s) % 8 ? '0' : alpha[tu_rand(s) % sizeof alpha];
}

static int mt_ukey_cmp(const void *a, const void *b)
{
    const mt_ent *x = a, *y = b;
    return ukey_cmp(x->key, x->klen, y->key, y->klen);
}

static void mt_random_run(const char *name, const mt_shape *sh)
{
    uint64_t s = tu_seed(name);
    enum { N = 6000 };
    mt_ent *e = calloc(N, sizeof *e);
    memtable *m = memtable_new(MT_TEST_FILTER);
    for (size_t i = 0; i < N; i++) mt_draw_key(&s, sh, e[i].key, &e[i].klen);
    if (sh->ascending) {
        qsort(e, N, sizeof *e, mt_ukey_cmp);
        for (size_t i = 0; i + 1 < N; i++)
            if (tu_rand(&s) % 8 == 0) {
                size_t j = i + tu_rand(&s) % (N - i);
                mt_ent t = e[i];
                e[i] = e[j];
                e[j] = t;
            }
    }
    for (size_t i = 0; i < N; i++) {
        e[i].tag = tag_pack(i + 1, (unsigned)(tu_rand(&s) % 2));
        cr_assert_eq(memtable_add(m, i + 1, tag_kind(e[i].tag), e[i].key, e[i].klen, &e[i].tag, 8), TIND_OK);
    }
    qsort(e, N, sizeof *e, mt_ent_cmp);

    iiter *it = memtable_iter(m);
    iiter_seek_first(it);
    for (size_t i = 0; i <= N; i++) {
        mt_check(it, e, N, i, "forward");
        if (i < N) iiter_next(it);
    }
    iiter_seek_last(it);
    for (size_t i = N; i-- > 0;) {
        mt_check(it, e, N, i, "backward");
        iiter_prev(it);
    }
    cr_assert(!it->valid);

    for (int round = 0; round < 2000; round++) {
        /* A target near the entries: an entry's key, cut, changed in one
         * byte, or lengthened, or a fresh key. */
        uint8_t k[MT_KEY_MAX + 1];
        size_t kl;
        const mt_ent *near = &e[tu_rand(&s) % N];
        memcpy(k, near->key, near->klen);
        kl = near->klen;
        switch (tu_rand(&s) % 5) {
        case 0: kl = kl ? tu_rand(&s) % kl : 0; break;
        case 1: if (kl) k[tu_rand(&s) % kl] = (uint8_t)tu_rand(&s); break;
        case 2: k[kl++] = (uint8_t)(tu_rand(&s) % 2 ? 0 : tu_rand(&s)); break;
        case 3: mt_draw_key(&s, sh, k, &kl); break;
        default: break;
        }
        uint64_t tag = tag_pack(tu_rand(&s) % (N + 2), (unsigned)(tu_rand(&s) % 3 == 0 ? KIND_MAX : tu_rand(&s) % 2));
        size_t pos; /* N: invalid */
        if (tu_rand(&s) % 2) {
            iiter_seek(it, k, kl, tag);
            pos = mt_lower(e, N, k, kl, tag);
        } else {
            iiter_seek_for_prev(it, k, kl, tag);
            size_t up = mt_lower(e, N, k, kl, tag);
            if (up < N && ikey_cmp(e[up].key, e[up].klen, e[up].tag, k, kl, tag) == 0) up++;
            pos = up == 0 ? N : up - 1;
        }
        mt_check(it, e, N, pos, "seek");
        for (int step = 0; step < 8 && pos < N; step++) {
            if (tu_rand(&s) % 2) {
                iiter_next(it);
                pos = pos + 1;
            } else {
                iiter_prev(it);
                pos = pos == 0 ? N : pos - 1;
            }
            mt_check(it, e, N, pos, "step");
        }

        unsigned kind;
        const uint8_t *v;
        size_t vl;
        uint64_t seq = tag_seq(tag);
        size_t g = mt_lower(e, N, k, kl, tag_pack(seq, KIND_MAX));
        int want = g < N && ukey_cmp(e[g].key, e[g].klen, k, kl) == 0;
        int found = memtable_get(m, k, kl, seq, &kind, &v, &vl);
        cr_assert_eq(found, want, "get %s at %llu", tu_hex(k, kl), (unsigned long long)seq);
        if (found) cr_assert(vl == 8 && memcmp(v, &e[g].tag, 8) == 0 && kind == tag_kind(e[g].tag));
    }
    iiter_destroy(it);
    memtable_unref(m);
    free(e);
}

Test(memtable, random_against_sorted_array)
{
    mt_shape sh = {1, 4, 0, 0};
    mt_random_run("memtable::random_against_sorted_array", &sh);
}

/* Empty keys, keys shorter and longer than the 8-byte prefix, many equal in
 * their first 8 bytes (the comparison then goes on past the prefix). */
Test(memtable, random_keys_tied_in_their_prefix)
{
    mt_shape sh = {0, 20, 10, 0};
    mt_random_run("memtable::random_keys_tied_in_their_prefix", &sh);
}

/* Mostly ascending inserts take the tails as predecessors; the ones out of
 * order and new versions of the last key take the search. */
Test(memtable, random_mostly_ascending_inserts)
{
    mt_shape sh = {0, 20, 10, 1};
    mt_random_run("memtable::random_mostly_ascending_inserts", &sh);
}

/* Strictly ascending keys, then a second version of each in the same order:
 * the first pass appends, the second searches. */
Test(memtable, ascending_appends_then_new_versions)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    enum { N = 3000 };
    char k[24];
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < N; i++) {
            int kl = snprintf(k, sizeof k, "key%012zu", i);
            put(m, 1 + i + pass * N, KIND_PUT, k, (size_t)kl, pass ? "new" : "old");
        }
    iiter *it = memtable_iter(m);
    iiter_seek_first(it);
    for (size_t i = 0; i < N; i++) {
        int kl = snprintf(k, sizeof k, "key%012zu", i);
        at(it, k, (size_t)kl, 1 + i + N, KIND_PUT, "new");
        iiter_next(it);
        at(it, k, (size_t)kl, 1 + i, KIND_PUT, "old");
        iiter_next(it);
    }
    invalid(it);
    iiter_seek_last(it);
    at(it, k, strlen(k), N, KIND_PUT, "old");
    iiter_destroy(it);
    memtable_unref(m);
}

/* ---- one writer, concurrent readers ---- */

/* Entry i: key = "memtable" be32(perm(i)) followed by (i % 5) bytes of 0xa5 (the
 * common first 8 bytes make every comparison go past the prefix); seq = i + 1;
 * value = (perm(i) % 40) bytes, each the low byte of seq. A reader can so
 * tell from a key and tag whether the entry it sees is whole. */
/* ThreadSanitizer slows the spinning readers and the writer some 20-fold:
 * a smaller run keeps it well inside the timeout on a loaded machine. */
#if defined(__SANITIZE_THREAD__)
enum { MT_CONC_N = 40000, MT_CONC_READERS = 2 };
#else
enum { MT_CONC_N = 200000, MT_CONC_READERS = 2 };
#endif

typedef struct mt_conc {
    memtable *m;
    atomic_size_t published; /* entries 0..published-1 are inserted */
    atomic_int done;
    atomic_size_t reads;
    uint64_t seed;
} mt_conc;

static uint32_t mt_perm(size_t i) { return (uint32_t)(i * 2654435761u); }

enum { MT_CONC_KEY = 16 };

static size_t mt_conc_key(size_t i, uint8_t *k)
{
    uint32_t p = mt_perm(i);
    memcpy(k, "memtable", 8);
    k[8] = (uint8_t)(p >> 24);
    k[9] = (uint8_t)(p >> 16);
    k[10] = (uint8_t)(p >> 8);
    k[11] = (uint8_t)p;
    size_t extra = i % 5;
    memset(k + 12, 0xa5, extra);
    return 12 + extra;
}

/* Returns 0 when the entry under the iterator is not whole: its kind, key
 * and value not those of its seq, for entries 0..n-1 where entry i (seq
 * i + 1) has key mt_conc_key(i / versions). */
static int mt_entry_whole(const iiter *it, size_t n, size_t versions)
{
    if (it->klen < 12 || it->klen > MT_CONC_KEY) return 0;
    uint64_t seq = tag_seq(it->tag);
    if (seq == 0 || seq > n || tag_kind(it->tag) != KIND_PUT) return 0;
    size_t i = (size_t)(seq - 1);
    uint8_t k[MT_CONC_KEY];
    size_t kl = mt_conc_key(i / versions, k);
    if (kl != it->klen || memcmp(k, it->key, kl) != 0) return 0;
    if (it->vlen != mt_perm(i) % 40) return 0;
    for (size_t j = 0; j < it->vlen; j++)
        if (it->val[j] != (uint8_t)seq) return 0;
    return 1;
}

static int mt_conc_whole(const iiter *it) { return mt_entry_whole(it, MT_CONC_N, 1); }

static void *mt_conc_reader(void *arg)
{
    mt_conc *c = arg;
    uint64_t s = c->seed ^ (uint64_t)(uintptr_t)&s;
    iiter *it = memtable_iter(c->m);
    size_t reads = 0;
    int bad = 0;
    while (!atomic_load_explicit(&c->done, memory_order_acquire) && !bad) {
        size_t pub = atomic_load_explicit(&c->published, memory_order_acquire);
        if (pub == 0) continue;
        /* An entry published before this read must be found. */
        size_t i = tu_rand(&s) % pub;
        uint8_t k[MT_CONC_KEY];
        size_t kl = mt_conc_key(i, k);
        unsigned kind;
        const uint8_t *v;
        size_t vl;
        if (!memtable_get(c->m, k, kl, SEQ_MAX, &kind, &v, &vl) || vl != mt_perm(i) % 40) {
            bad = 1;
            break;
        }
        /* A short walk in either direction: whole entries, in order. */
        int back = (int)(tu_rand(&s) % 2);
        if (back)
            iiter_seek_for_prev(it, k, kl, tag_pack(SEQ_MAX, KIND_MAX) - 1);
        else
            iiter_seek(it, k, kl, tag_pack(SEQ_MAX, KIND_MAX));
        uint8_t last[MT_CONC_KEY];
        size_t lastl = 0;
        uint64_t lastt = 0;
        for (int step = 0; step < 16 && it->valid; step++) {
            if (!mt_conc_whole(it)) {
                bad = 2;
                break;
            }
            if (step) {
                int cmp = ikey_cmp(last, lastl, lastt, it->key, it->klen, it->tag);
                if (back ? cmp <= 0 : cmp >= 0) {
                    bad = 3;
                    break;
                }
            }
            memcpy(last, it->key, it->klen);
            lastl = it->klen;
            lastt = it->tag;
            if (back)
                iiter_prev(it);
            else
                iiter_next(it);
        }
        reads++;
    }
    iiter_destroy(it);
    atomic_fetch_add(&c->reads, reads);
    return (void *)(intptr_t)bad;
}

Test(memtable, concurrent_readers_one_writer, .timeout = 60)
{
    mt_conc c;
    c.m = memtable_new(MT_TEST_FILTER);
    atomic_init(&c.published, 0);
    atomic_init(&c.done, 0);
    atomic_init(&c.reads, 0);
    c.seed = tu_seed("memtable::concurrent_readers_one_writer");
    pthread_t th[MT_CONC_READERS];
    for (int r = 0; r < MT_CONC_READERS; r++) cr_assert_eq(pthread_create(&th[r], NULL, mt_conc_reader, &c), 0);

    uint8_t val[40];
    for (size_t i = 0; i < MT_CONC_N; i++) {
        uint8_t k[MT_CONC_KEY];
        size_t kl = mt_conc_key(i, k);
        memset(val, (uint8_t)(i + 1), sizeof val);
        cr_assert_eq(memtable_add(c.m, i + 1, KIND_PUT, k, kl, val, mt_perm(i) % 40), TIND_OK);
        atomic_store_explicit(&c.published, i + 1, memory_order_release);
    }
    atomic_store_explicit(&c.done, 1, memory_order_release);
    for (int r = 0; r < MT_CONC_READERS; r++) {
        void *res;
        pthread_join(th[r], &res);
        cr_assert_eq((intptr_t)res, 0, "reader %d saw %s", r,
                     (intptr_t)res == 1 ? "a published key missing" :
                     (intptr_t)res == 2 ? "a torn entry" : "entries out of order");
    }
    cr_assert_gt(atomic_load(&c.reads), 0);
    cr_assert_eq(memtable_count(c.m), MT_CONC_N);

    /* And the final state is complete and ordered. */
    iiter *it = memtable_iter(c.m);
    size_t n = 0;
    for (iiter_seek_first(it); it->valid; iiter_next(it), n++) cr_assert(mt_conc_whole(it));
    cr_assert_eq(n, MT_CONC_N);
    iiter_destroy(it);
    memtable_unref(c.m);
}

/* ---- concurrent writers (a commit group's members), concurrent readers ---- */

/* Entry i (seq i + 1) has key mt_conc_key(i / 2), so entries 2k and 2k + 1
 * are two versions of one key, usually inserted by different threads, and
 * value (perm(i) % 40) bytes of the low byte of its seq. Writer w inserts the
 * entries i with i % MT_CW_WRITERS == w, in order, with
 * memtable_add_concurrent, and publishes how far it got. */
enum { MT_CW_WRITERS = 3 };

typedef struct mt_cw {
    memtable *m;
    size_t n;
    atomic_size_t published[MT_CW_WRITERS]; /* writer w's entries below it are in */
    atomic_int writers_done;
    uint64_t seed;
} mt_cw;

typedef struct mt_cw_arg {
    mt_cw *c;
    int w;
} mt_cw_arg;

static void *mt_cw_writer(void *arg)
{
    mt_cw_arg *a = arg;
    mt_cw *c = a->c;
    uint8_t k[MT_CONC_KEY], val[40];
    intptr_t bad = 0;
    for (size_t i = (size_t)a->w; i < c->n && !bad; i += MT_CW_WRITERS) {
        size_t kl = mt_conc_key(i / 2, k);
        memset(val, (uint8_t)(i + 1), sizeof val);
        if (memtable_add_concurrent(c->m, i + 1, KIND_PUT, k, kl, val, mt_perm(i) % 40) != TIND_OK) bad = 1;
        atomic_store_explicit(&c->published[a->w], i + 1, memory_order_release);
    }
    atomic_fetch_add(&c->writers_done, 1);
    return (void *)bad;
}

/* Two versions of each key (see above). */
static int mt_cw_whole(const iiter *it, size_t n) { return mt_entry_whole(it, n, 2); }

static void *mt_cw_reader(void *arg)
{
    mt_cw *c = arg;
    uint64_t s = c->seed ^ (uint64_t)(uintptr_t)&s;
    iiter *it = memtable_iter(c->m);
    intptr_t bad = 0;
    while (atomic_load(&c->writers_done) < MT_CW_WRITERS && !bad) {
        int w = (int)(tu_rand(&s) % MT_CW_WRITERS);
        size_t pub = atomic_load_explicit(&c->published[w], memory_order_acquire);
        if (pub <= (size_t)w) continue;
        /* An entry of writer w it published: found at its own seq. */
        size_t i = (size_t)w + MT_CW_WRITERS * (size_t)(tu_rand(&s) % ((pub - 1 - (size_t)w) / MT_CW_WRITERS + 1));
        uint8_t k[MT_CONC_KEY];
        size_t kl = mt_conc_key(i / 2, k);
        unsigned kind;
        const uint8_t *v;
        size_t vl;
        if (!memtable_get(c->m, k, kl, i + 1, &kind, &v, &vl) || vl != mt_perm(i) % 40 ||
            (vl && v[0] != (uint8_t)(i + 1))) {
            bad = 1;
            break;
        }
        /* A short walk: whole entries in strictly increasing order. */
        iiter_seek(it, k, kl, tag_pack(SEQ_MAX, KIND_MAX));
        uint8_t last[MT_CONC_KEY];
        size_t lastl = 0;
        uint64_t lastt = 0;
        for (int step = 0; step < 16 && it->valid; step++, iiter_next(it)) {
            if (!mt_cw_whole(it, c->n)) {
                bad = 2;
                break;
            }
            if (step && ikey_cmp(last, lastl, lastt, it->key, it->klen, it->tag) >= 0) {
                bad = 3;
                break;
            }
            memcpy(last, it->key, it->klen);
            lastl = it->klen;
            lastt = it->tag;
        }
    }
    iiter_destroy(it);
    return (void *)bad;
}

Test(memtable, concurrent_writers_then_one_writer, .timeout = 120)
{
    mt_cw c;
    c.m = memtable_new(MT_TEST_FILTER);
    c.n = MT_CONC_N;
    for (int w = 0; w < MT_CW_WRITERS; w++) atomic_init(&c.published[w], 0);
    atomic_init(&c.writers_done, 0);
    c.seed = tu_seed("memtable::concurrent_writers_then_one_writer");
    pthread_t rd, wr[MT_CW_WRITERS];
    mt_cw_arg args[MT_CW_WRITERS];
    cr_assert_eq(pthread_create(&rd, NULL, mt_cw_reader, &c), 0);
    for (int w = 0; w < MT_CW_WRITERS; w++) {
        args[w] = (mt_cw_arg){&c, w};
        cr_assert_eq(pthread_create(&wr[w], NULL, mt_cw_writer, &args[w]), 0);
    }
    for (int w = 0; w < MT_CW_WRITERS; w++) {
        void *res;
        pthread_join(wr[w], &res);
        cr_assert_eq((intptr_t)res, 0, "writer %d failed an insert", w);
    }
    void *res;
    pthread_join(rd, &res);
    cr_assert_eq((intptr_t)res, 0, "the reader saw %s",
                 (intptr_t)res == 1 ? "a published entry missing" :
                 (intptr_t)res == 2 ? "a torn entry" : "entries out of order");
    cr_assert_eq(memtable_count(c.m), c.n);
    cr_assert_eq(memtable_first_seq(c.m), 1);

    /* Then one writer, as the next commit group's leader: appends past every
     * key (the ascending path, whose per-level tails the concurrent inserts
     * left behind) and keys in between. */
    size_t extra = 2000;
    for (size_t e = 0; e < extra; e++) {
        char k[40];
        int kl = e % 2 ? snprintf(k, sizeof k, "zz%08zu", e) : snprintf(k, sizeof k, "memtable%04zx", e);
        cr_assert_eq(memtable_add(c.m, c.n + 1 + e, KIND_PUT, k, (size_t)kl, "v", 1), TIND_OK);
    }
    cr_assert_eq(memtable_count(c.m), c.n + extra);

    /* Every entry once, in order; every concurrent one whole. */
    iiter *it = memtable_iter(c.m);
    size_t n = 0;
    uint8_t last[40];
    size_t lastl = 0;
    uint64_t lastt = 0;
    for (iiter_seek_first(it); it->valid; iiter_next(it), n++) {
        if (tag_seq(it->tag) <= c.n) cr_assert(mt_cw_whole(it, c.n), "entry %zu is not whole", n);
        if (n) cr_assert_lt(ikey_cmp(last, lastl, lastt, it->key, it->klen, it->tag), 0, "entry %zu out of order", n);
        memcpy(last, it->key, it->klen);
        lastl = it->klen;
        lastt = it->tag;
    }
    cr_assert_eq(n, c.n + extra);
    /* And backwards, through every level's links. */
    size_t back = 0;
    for (iiter_seek_last(it); it->valid && back < 5000; iiter_prev(it)) back++;
    cr_assert_eq(back, 5000);
    iiter_destroy(it);
    memtable_unref(c.m);
}
