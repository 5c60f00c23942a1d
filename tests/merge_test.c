#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "lsm/memtable.h"
#include "lsm/merge.h"
#include "tests/support/testutil.h"
#include "tind.h"

#define MT_TEST_FILTER 4096

typedef struct mg_ent {
    uint8_t key[4];
    size_t klen;
    uint64_t tag;
    uint8_t val[9]; /* the tag and the child's number */
    size_t child;
} mg_ent;

static int mg_ent_cmp(const void *a, const void *b)
{
    const mg_ent *x = a, *y = b;
    return ikey_cmp(x->key, x->klen, x->tag, y->key, y->klen, y->tag);
}

/* ---- an iterator over a sorted array, with an error to inject ---- */

typedef struct arr_iter {
    iiter base;
    const mg_ent *e;
    size_t n;
    size_t pos;    /* n: invalid */
    size_t fail_at; /* landing here makes the iterator fail; SIZE_MAX: never */
    int fail_rc;
    int rc;
} arr_iter;

static void arr_set(arr_iter *a, size_t pos)
{
    a->rc = TIND_OK;
    if (pos == a->fail_at) {
        a->rc = a->fail_rc;
        pos = a->n;
    }
    a->pos = pos;
    a->base.valid = pos < a->n;
    if (!a->base.valid) return;
    a->base.key = a->e[pos].key;
    a->base.klen = a->e[pos].klen;
    a->base.tag = a->e[pos].tag;
    a->base.val = a->e[pos].val;
    a->base.vlen = sizeof a->e[pos].val;
}

static size_t arr_lower(const mg_ent *e, size_t n, const uint8_t *k, size_t kl, uint64_t tag)
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

/* Index of the last entry <= target; n when none. */
static size_t arr_last_le(const mg_ent *e, size_t n, const uint8_t *k, size_t kl, uint64_t tag)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ikey_cmp(e[mid].key, e[mid].klen, e[mid].tag, k, kl, tag) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? n : lo - 1;
}

static void arr_seek_first(iiter *b) { arr_set((arr_iter *)b, 0); }
static void arr_seek_last(iiter *b)
{
    arr_iter *a = (arr_iter *)b;
    arr_set(a, a->n ? a->n - 1 : 0);
}
static void arr_seek(iiter *b, const uint8_t *k, size_t kl, uint64_t tag)
{
    arr_iter *a = (arr_iter *)b;
    arr_set(a, arr_lower(a->e, a->n, k, kl, tag));
}
static void arr_seek_for_prev(iiter *b, const uint8_t *k, size_t kl, uint64_t tag)
{
    arr_iter *a = (arr_iter *)b;
    arr_set(a, arr_last_le(a->e, a->n, k, kl, tag));
}
static void arr_next(iiter *b)
{
    arr_iter *a = (arr_iter *)b;
    cr_assert(a->base.valid, "next on an invalid child");
    arr_set(a, a->pos + 1);
}
static void arr_prev(iiter *b)
{
    arr_iter *a = (arr_iter *)b;
    cr_assert(a->base.valid, "prev on an invalid child");
    arr_set(a, a->pos == 0 ? a->n : a->pos - 1);
}
static int arr_status(const iiter *b) { return ((const arr_iter *)b)->rc; }
static void arr_destroy(iiter *b) { free(b); }

static const struct iiter_ops arr_ops = {
    arr_seek_first, arr_seek_last, arr_seek, arr_seek_for_prev, arr_next, arr_prev, arr_status, arr_destroy,
};

static iiter *arr_iter_new(const mg_ent *e, size_t n, size_t fail_at, int fail_rc)
{
    arr_iter *a = calloc(1, sizeof *a);
    cr_assert_not_null(a);
    a->base.ops = &arr_ops;
    a->e = e;
    a->n = n;
    a->pos = n;
    a->fail_at = fail_at;
    a->fail_rc = fail_rc;
    return &a->base;
}

static mg_ent mg_mk(const char *k, uint64_t seq, size_t child)
{
    mg_ent e;
    memset(&e, 0, sizeof e);
    e.klen = strlen(k);
    memcpy(e.key, k, e.klen);
    e.tag = tag_pack(seq, KIND_PUT);
    memcpy(e.val, &e.tag, 8);
    e.val[8] = (uint8_t)child;
    e.child = child;
    return e;
}

/* Asserts the merge is at reference entry i (n: invalid). */
static void mg_check(const iiter *it, const mg_ent *e, size_t n, size_t i, const char *what, int op)
{
    if (i >= n) {
        cr_assert(!it->valid, "%s (op %d): expected the end, at seq %llu", what, op,
                  (unsigned long long)tag_seq(it->tag));
        return;
    }
    cr_assert(it->valid, "%s (op %d): expected entry %zu (seq %llu), merge invalid", what, op, i,
              (unsigned long long)tag_seq(e[i].tag));
    cr_assert(it->klen == e[i].klen && memcmp(it->key, e[i].key, e[i].klen) == 0 && it->tag == e[i].tag,
              "%s (op %d): expected entry %zu %s seq %llu, got %s seq %llu", what, op, i,
              tu_hex(e[i].key, e[i].klen), (unsigned long long)tag_seq(e[i].tag), tu_hex(it->key, it->klen),
              (unsigned long long)tag_seq(it->tag));
    cr_assert(it->vlen == sizeof e[i].val && memcmp(it->val, e[i].val, sizeof e[i].val) == 0,
              "%s (op %d): value of entry %zu differs", what, op, i);
}

/* ---- tests ---- */

Test(merge, no_children)
{
    iiter *it = merge_iter_new(NULL, 0);
    cr_assert_not_null(it);
    cr_assert(!it->valid);
    iiter_seek_first(it);
    cr_assert(!it->valid);
    iiter_seek_last(it);
    cr_assert(!it->valid);
    iiter_seek(it, (const uint8_t *)"a", 1, 0);
    cr_assert(!it->valid);
    iiter_seek_for_prev(it, (const uint8_t *)"a", 1, 0);
    cr_assert(!it->valid);
    iiter_next(it);
    iiter_prev(it);
    cr_assert(!it->valid);
    cr_assert_eq(iiter_status(it), TIND_OK);
    iiter_destroy(it);
}

Test(merge, empty_children)
{
    memtable *m = memtable_new(MT_TEST_FILTER);
    iiter *ch[3] = {memtable_iter(m), arr_iter_new(NULL, 0, SIZE_MAX, 0), memtable_iter(m)};
    memtable_unref(m);
    iiter *it = merge_iter_new(ch, 3);
    iiter_seek_first(it);
    cr_assert(!it->valid);
    iiter_seek_last(it);
    cr_assert(!it->valid);
    cr_assert_eq(iiter_status(it), TIND_OK);
    iiter_destroy(it);
}

Test(merge, one_child)
{
    mg_ent e[2] = {mg_mk("a", 1, 0), mg_mk("b", 2, 0)};
    iiter *ch[1] = {arr_iter_new(e, 2, SIZE_MAX, 0)};
    iiter *it = merge_iter_new(ch, 1);
    iiter_seek_last(it);
    mg_check(it, e, 2, 1, "last", 0);
    iiter_prev(it);
    mg_check(it, e, 2, 0, "prev", 0);
    iiter_next(it);
    mg_check(it, e, 2, 1, "next", 0);
    iiter_destroy(it);
}

Test(merge, equal_keys_lower_child_first)
{
    /* Children 0 and 1 hold the same internal keys; 1 also holds "c". */
    mg_ent e0[2] = {mg_mk("a", 5, 0), mg_mk("b", 5, 0)};
    mg_ent e1[3] = {mg_mk("a", 5, 1), mg_mk("b", 5, 1), mg_mk("c", 1, 1)};
    mg_ent want[5] = {e0[0], e1[0], e0[1], e1[1], e1[2]};
    iiter *ch[2] = {arr_iter_new(e0, 2, SIZE_MAX, 0), arr_iter_new(e1, 3, SIZE_MAX, 0)};
    iiter *it = merge_iter_new(ch, 2);
    iiter_seek_first(it);
    for (size_t i = 0; i <= 5; i++) {
        mg_check(it, want, 5, i, "forward", (int)i);
        if (i < 5) iiter_next(it);
    }
    iiter_seek(it, (const uint8_t *)"b", 1, tag_pack(5, KIND_PUT));
    mg_check(it, want, 5, 2, "seek", 0);
    iiter_seek_for_prev(it, (const uint8_t *)"b", 1, tag_pack(5, KIND_PUT));
    mg_check(it, want, 5, 2, "seek_for_prev", 0);
    iiter_destroy(it);
}

Test(merge, child_error_stops_the_merge)
{
    mg_ent a[3] = {mg_mk("a", 1, 0), mg_mk("c", 2, 0), mg_mk("e", 3, 0)};
    mg_ent b[2] = {mg_mk("b", 4, 1), mg_mk("d", 5, 1)};
    /* Child 1 fails when it would move to its second entry. */
    iiter *ch[2] = {arr_iter_new(a, 3, SIZE_MAX, 0), arr_iter_new(b, 2, 1, TIND_IO_ERROR)};
    iiter *it = merge_iter_new(ch, 2);
    iiter_seek_first(it);
    cr_assert(it->valid && it->key[0] == 'a');
    iiter_next(it);
    cr_assert(it->valid && it->key[0] == 'b');
    iiter_next(it);
    cr_assert(!it->valid, "entries after a failed child must not show");
    cr_assert_eq(iiter_status(it), TIND_IO_ERROR);
    /* A seek that avoids the failing entry recovers. */
    iiter_seek_first(it);
    cr_assert(it->valid && it->key[0] == 'a');
    cr_assert_eq(iiter_status(it), TIND_OK);
    /* Backward, the failing entry is reached by a seek. */
    iiter_seek_last(it);
    cr_assert(!it->valid);
    cr_assert_eq(iiter_status(it), TIND_IO_ERROR);
    iiter_destroy(it);
}

Test(merge, first_failing_child_reported)
{
    mg_ent a[1] = {mg_mk("a", 1, 0)};
    iiter *ch[3] = {arr_iter_new(a, 1, SIZE_MAX, 0), arr_iter_new(a, 1, 0, TIND_CORRUPTION),
                    arr_iter_new(a, 1, 0, TIND_IO_ERROR)};
    iiter *it = merge_iter_new(ch, 3);
    iiter_seek_first(it);
    cr_assert(!it->valid);
    cr_assert_eq(iiter_status(it), TIND_CORRUPTION);
    iiter_destroy(it);
}

/* Children of random sizes (some empty) built as memtables, or arrays when
 * `arrays`; returns the merge and fills the sorted reference. */
static iiter *mg_build(uint64_t *s, int arrays, mg_ent **ref, size_t *nref, memtable ***mts, size_t *nch,
                       mg_ent ***per)
{
    size_t nc = (size_t)(tu_rand(s) % 7);
    size_t n = nc ? (size_t)(tu_rand(s) % 2500) : 0;
    mg_ent *e = calloc(n + 1, sizeof *e);
    iiter **ch = calloc(nc + 1, sizeof *ch);
    memtable **m = calloc(nc + 1, sizeof *m);
    mg_ent **pe = calloc(nc + 1, sizeof *pe);
    size_t *cnt = calloc(nc + 1, sizeof *cnt);
    cr_assert(e && ch && m && pe && cnt);
    /* Skewed sizes: the first child gets most, like a big older level. */
    for (size_t i = 0; i < n; i++) {
        static const uint8_t alpha[] = {0x00, 0x41, 0x42, 0xff};
        e[i].klen = 1 + tu_rand(s) % 3;
        for (size_t j = 0; j < e[i].klen; j++) e[i].key[j] = alpha[tu_rand(s) % sizeof alpha];
        e[i].tag = tag_pack(i + 1, (unsigned)(tu_rand(s) % 2));
        size_t c = tu_rand(s) % 3 == 0 ? 0 : (size_t)(tu_rand(s) % nc);
        e[i].child = c;
        memcpy(e[i].val, &e[i].tag, 8);
        e[i].val[8] = (uint8_t)c;
        cnt[c]++;
    }
    qsort(e, n, sizeof *e, mg_ent_cmp);
    for (size_t c = 0; c < nc; c++) {
        pe[c] = calloc(cnt[c] + 1, sizeof *pe[c]);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (e[i].child == c) pe[c][k++] = e[i];
        if (arrays) {
            ch[c] = arr_iter_new(pe[c], cnt[c], SIZE_MAX, 0);
        } else {
            m[c] = memtable_new(MT_TEST_FILTER);
            for (size_t i = 0; i < k; i++)
                cr_assert_eq(memtable_add(m[c], tag_seq(pe[c][i].tag), tag_kind(pe[c][i].tag), pe[c][i].key,
                                          pe[c][i].klen, pe[c][i].val, sizeof pe[c][i].val),
                             TIND_OK);
            ch[c] = memtable_iter(m[c]);
        }
    }
    iiter *it = merge_iter_new(ch, nc);
    cr_assert_not_null(it);
    free(ch);
    free(cnt);
    *ref = e;
    *nref = n;
    *mts = m;
    *nch = nc;
    *per = pe;
    return it;
}

static void mg_round(uint64_t *s, int arrays)
{
    mg_ent *e;
    size_t n, nc;
    memtable **m;
    mg_ent **pe;
    iiter *it = mg_build(s, arrays, &e, &n, &m, &nc, &pe);

    iiter_seek_first(it);
    for (size_t i = 0; i <= n; i++) {
        mg_check(it, e, n, i, "forward", 0);
        if (i < n) iiter_next(it);
    }
    iiter_seek_last(it);
    for (size_t i = n; i-- > 0;) {
        mg_check(it, e, n, i, "backward", 0);
        iiter_prev(it);
    }
    cr_assert(!it->valid);

    for (int op = 0; op < 300; op++) {
        size_t pos; /* n: invalid */
        uint8_t k[4];
        size_t kl = tu_rand(s) % 4;
        for (size_t j = 0; j < kl; j++) k[j] = (uint8_t)(n && tu_rand(s) % 4 ? e[tu_rand(s) % n].key[j % e[0].klen] : tu_rand(s));
        uint64_t tag = tag_pack(tu_rand(s) % (n + 2), (unsigned)(tu_rand(s) % 3 == 0 ? KIND_MAX : tu_rand(s) % 2));
        if (n && tu_rand(s) % 4 == 0) { /* exactly an existing entry */
            const mg_ent *x = &e[tu_rand(s) % n];
            memcpy(k, x->key, x->klen);
            kl = x->klen;
            tag = x->tag;
        }
        switch (tu_rand(s) % 6) {
        case 0:
            iiter_seek_first(it);
            pos = 0;
            break;
        case 1:
            iiter_seek_last(it);
            pos = n ? n - 1 : 0;
            break;
        case 2:
        case 3:
            iiter_seek(it, k, kl, tag);
            pos = arr_lower(e, n, k, kl, tag);
            break;
        default:
            iiter_seek_for_prev(it, k, kl, tag);
            pos = arr_last_le(e, n, k, kl, tag);
            break;
        }
        mg_check(it, e, n, pos, "seek", op);
        int steps = (int)(tu_rand(s) % 12);
        for (int st = 0; st < steps && pos < n; st++) {
            /* Runs in one direction now and then, switches often. */
            if (tu_rand(s) % 2) {
                iiter_next(it);
                pos++;
            } else {
                iiter_prev(it);
                pos = pos == 0 ? n : pos - 1;
            }
            mg_check(it, e, n, pos, "step", op);
        }
        cr_assert_eq(iiter_status(it), TIND_OK);
    }
    iiter_destroy(it);
    for (size_t c = 0; c < nc; c++) {
        if (m[c]) memtable_unref(m[c]);
        free(pe[c]);
    }
    free(m);
    free(pe);
    free(e);
}

Test(merge, memtables_against_reference)
{
    uint64_t s = tu_seed("merge::memtables_against_reference");
    for (int round = 0; round < 80; round++) mg_round(&s, 0);
}

Test(merge, arrays_against_reference)
{
    uint64_t s = tu_seed("merge::arrays_against_reference");
    for (int round = 0; round < 120; round++) mg_round(&s, 1);
}
