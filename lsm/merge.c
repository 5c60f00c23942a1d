#include "lsm/merge.h"

#include <stdlib.h>

#include "lsm/ikey.h"
#include "tind.h"

/* Invariants, between calls:
 * - heap[0..hn) holds the indices of the valid children, ordered as a
 *   min-heap (forward) or max-heap (backward) of their current entries, ties
 *   to the lower index; heap[0] is the current child.
 * - Forward: every valid child is at its first entry >= the current entry
 *   (children other than the current one: > it, keys being unique).
 *   Backward: mirrored.
 * - failed: some child went invalid with an error; the merge is then invalid
 *   until the next seek, so that no entry of the failed child is skipped
 *   silently. */
typedef struct merge_iter {
    iiter base;
    size_t n;
    int backward;
    int failed;
    size_t hn;
    size_t *heap;
    iiter *child[];
} merge_iter;

/* Does child a come before child b in the current direction? */
static inline int merge_before(const merge_iter *mi, size_t a, size_t b)
{
    const iiter *x = mi->child[a], *y = mi->child[b];
    int c = ikey_cmp(x->key, x->klen, x->tag, y->key, y->klen, y->tag);
    if (mi->backward) c = -c;
    return c < 0 || (c == 0 && a < b);
}

static void merge_sift_down(merge_iter *mi, size_t i)
{
    size_t *h = mi->heap, n = mi->hn, v = h[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t r = l + 1, m = l;
        if (r < n && merge_before(mi, h[r], h[l])) m = r;
        if (!merge_before(mi, h[m], v)) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = v;
}

static void merge_set_current(merge_iter *mi)
{
    if (mi->hn == 0 || mi->failed) {
        mi->base.valid = 0;
        mi->base.key = NULL;
        mi->base.klen = 0;
        mi->base.tag = 0;
        mi->base.val = NULL;
        mi->base.vlen = 0;
        return;
    }
    const iiter *c = mi->child[mi->heap[0]];
    mi->base.valid = 1;
    mi->base.key = c->key;
    mi->base.klen = c->klen;
    mi->base.tag = c->tag;
    mi->base.val = c->val;
    mi->base.vlen = c->vlen;
}

/* Rebuilds the heap from every child's present position. */
static void merge_rebuild(merge_iter *mi, int backward)
{
    mi->backward = backward;
    mi->failed = 0;
    mi->hn = 0;
    for (size_t i = 0; i < mi->n; i++) {
        iiter *c = mi->child[i];
        if (c->valid)
            mi->heap[mi->hn++] = i;
        else if (iiter_status(c) != TIND_OK)
            mi->failed = 1;
    }
    for (size_t i = mi->hn / 2; i-- > 0;) merge_sift_down(mi, i);
    merge_set_current(mi);
}

/* After the current child moved: keep it in the heap or drop it. */
static void merge_fix_top(merge_iter *mi)
{
    iiter *c = mi->child[mi->heap[0]];
    if (!c->valid) {
        if (iiter_status(c) != TIND_OK) mi->failed = 1;
        mi->heap[0] = mi->heap[--mi->hn];
    }
    if (mi->hn) merge_sift_down(mi, 0);
    merge_set_current(mi);
}

static void merge_seek_first(iiter *b)
{
    merge_iter *mi = (merge_iter *)b;
    for (size_t i = 0; i < mi->n; i++) iiter_seek_first(mi->child[i]);
    merge_rebuild(mi, 0);
}

static void merge_seek_last(iiter *b)
{
    merge_iter *mi = (merge_iter *)b;
    for (size_t i = 0; i < mi->n; i++) iiter_seek_last(mi->child[i]);
    merge_rebuild(mi, 1);
}

static void merge_seek(iiter *b, const uint8_t *key, size_t klen, uint64_t tag)
{
    merge_iter *mi = (merge_iter *)b;
    for (size_t i = 0; i < mi->n; i++) iiter_seek(mi->child[i], key, klen, tag);
    merge_rebuild(mi, 0);
}

static void merge_seek_for_prev(iiter *b, const uint8_t *key, size_t klen, uint64_t tag)
{
    merge_iter *mi = (merge_iter *)b;
    for (size_t i = 0; i < mi->n; i++) iiter_seek_for_prev(mi->child[i], key, klen, tag);
    merge_rebuild(mi, 1);
}

static void merge_next(iiter *b)
{
    merge_iter *mi = (merge_iter *)b;
    if (!mi->base.valid) return;
    size_t cur = mi->heap[0];
    iiter *cc = mi->child[cur];
    if (mi->backward) {
        /* Every other child is at or before the current entry: move each to
         * its first entry after it. The current child moves last, since the
         * key the others seek to lives in its memory. */
        for (size_t i = 0; i < mi->n; i++) {
            if (i == cur) continue;
            iiter *c = mi->child[i];
            iiter_seek(c, cc->key, cc->klen, cc->tag);
            if (c->valid && ikey_cmp(c->key, c->klen, c->tag, cc->key, cc->klen, cc->tag) == 0)
                iiter_next(c);
        }
        iiter_next(cc);
        merge_rebuild(mi, 0);
        return;
    }
    iiter_next(cc);
    merge_fix_top(mi);
}

static void merge_prev(iiter *b)
{
    merge_iter *mi = (merge_iter *)b;
    if (!mi->base.valid) return;
    size_t cur = mi->heap[0];
    iiter *cc = mi->child[cur];
    if (!mi->backward) {
        /* Mirror of merge_next: every other child to its last entry before
         * the current one. */
        for (size_t i = 0; i < mi->n; i++) {
            if (i == cur) continue;
            iiter *c = mi->child[i];
            iiter_seek_for_prev(c, cc->key, cc->klen, cc->tag);
            if (c->valid && ikey_cmp(c->key, c->klen, c->tag, cc->key, cc->klen, cc->tag) == 0)
                iiter_prev(c);
        }
        iiter_prev(cc);
        merge_rebuild(mi, 1);
        return;
    }
    iiter_prev(cc);
    merge_fix_top(mi);
}

static int merge_status(const iiter *b)
{
    const merge_iter *mi = (const merge_iter *)b;
    for (size_t i = 0; i < mi->n; i++) {
        int rc = iiter_status(mi->child[i]);
        if (rc != TIND_OK) return rc;
    }
    return TIND_OK;
}

static void merge_destroy(iiter *b)
{
    merge_iter *mi = (merge_iter *)b;
    for (size_t i = 0; i < mi->n; i++) iiter_destroy(mi->child[i]);
    free(mi);
}

static const struct iiter_ops merge_ops = {
    .seek_first = merge_seek_first,
    .seek_last = merge_seek_last,
    .seek = merge_seek,
    .seek_for_prev = merge_seek_for_prev,
    .next = merge_next,
    .prev = merge_prev,
    .status = merge_status,
    .destroy = merge_destroy,
};

iiter *merge_iter_new(iiter **children, size_t n)
{
    /* A merge of one is that one; spare every move the indirection. */
    if (n == 1) return children[0];
    /* One allocation: the struct, the children, then the heap. */
    merge_iter *mi = NULL;
    if (n <= (SIZE_MAX - sizeof *mi) / (sizeof(iiter *) + sizeof(size_t)))
        mi = malloc(sizeof *mi + n * (sizeof(iiter *) + sizeof(size_t)));
    if (!mi) {
        for (size_t i = 0; i < n; i++) iiter_destroy(children[i]);
        return NULL;
    }
    mi->base.ops = &merge_ops;
    mi->n = n;
    mi->backward = 0;
    mi->failed = 0;
    mi->hn = 0;
    for (size_t i = 0; i < n; i++) mi->child[i] = children[i];
    mi->heap = (size_t *)(void *)&mi->child[n];
    merge_set_current(mi);
    return &mi->base;
}
