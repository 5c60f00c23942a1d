#include "lsm/level_iter.h"
#include "src/util/err.h"

#include <stdlib.h>

#include "lsm/ikey.h"
#include "tind.h"

/* Invariants, between calls:
 * - cur, when not NULL, is the iterator of table files[idx]; it is replaced
 *   only when a move needs another table, so a scan inside one table never
 *   touches the table cache.
 * - base mirrors cur's entry while valid.
 * - status is the error that made the iterator invalid (a table that failed
 *   to open, or cur's own error); a seek clears it. */
typedef struct level_iter {
    iiter base;
    table_cache *tc;
    uint64_t space;
    struct table_meta *const *files;
    size_t n;
    size_t idx;
    iiter *cur;
    int status;
} level_iter;

static void level_iter_clear(level_iter *li)
{
    li->base.valid = 0;
    li->base.key = NULL;
    li->base.klen = 0;
    li->base.tag = 0;
    li->base.val = NULL;
    li->base.vlen = 0;
}

/* Makes cur the iterator of files[i] (unpositioned); 0, or -1 with status set. */
static int level_iter_open(level_iter *li, size_t i)
{
    if (li->cur && li->idx == i) return 0;
    iiter_destroy(li->cur);
    li->cur = NULL;
    struct table_meta *m = li->files[i];
    table *t;
    int rc = table_cache_get(li->tc, li->space, m, &t);
    if (rc != TIND_OK) {
        li->status = rc;
        return -1;
    }
    li->cur = table_iter(t);
    table_unref(t); /* the table iterator holds its own reference */
    if (!li->cur) {
        li->status = err_nomem();
        return -1;
    }
    li->idx = i;
    return 0;
}

/* Publishes cur's entry; 1 when valid, 0 when cur ran out cleanly, -1 on its error. */
static int level_iter_take(level_iter *li)
{
    const iiter *c = li->cur;
    if (c->valid) {
        li->base.valid = 1;
        li->base.key = c->key;
        li->base.klen = c->klen;
        li->base.tag = c->tag;
        li->base.val = c->val;
        li->base.vlen = c->vlen;
        return 1;
    }
    level_iter_clear(li);
    if ((li->status = iiter_status(c)) != TIND_OK) return -1;
    return 0;
}

/* cur is positioned in files[idx]: skips forward over tables that hold
 * nothing further until an entry, the end or an error. */
static void level_iter_forward(level_iter *li)
{
    for (;;) {
        if (level_iter_take(li)) return;
        if (li->idx + 1 >= li->n) return;
        if (level_iter_open(li, li->idx + 1)) return;
        iiter_seek_first(li->cur);
    }
}

static void level_iter_backward(level_iter *li)
{
    for (;;) {
        if (level_iter_take(li)) return;
        if (li->idx == 0) return;
        if (level_iter_open(li, li->idx - 1)) return;
        iiter_seek_last(li->cur);
    }
}

/* Starts a positioning: clears the entry and any error. */
static void level_iter_begin(level_iter *li)
{
    li->status = TIND_OK;
    level_iter_clear(li);
}

static void level_iter_seek_first(iiter *it)
{
    level_iter *li = (level_iter *)it;
    level_iter_begin(li);
    if (li->n == 0 || level_iter_open(li, 0)) return;
    iiter_seek_first(li->cur);
    level_iter_forward(li);
}

static void level_iter_seek_last(iiter *it)
{
    level_iter *li = (level_iter *)it;
    level_iter_begin(li);
    if (li->n == 0 || level_iter_open(li, li->n - 1)) return;
    iiter_seek_last(li->cur);
    level_iter_backward(li);
}

/* The first entry >= target is in the first table whose largest key is >=
 * target (ranges being disjoint and sorted, every earlier table ends before
 * it). */
static void level_iter_seek(iiter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    level_iter *li = (level_iter *)it;
    level_iter_begin(li);
    size_t lo = 0, hi = li->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct table_meta *m = li->files[mid];
        if (ikey_cmp(m->largest.p, m->largest.len, m->largest_tag, key, klen, tag) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == li->n || level_iter_open(li, lo)) return;
    iiter_seek(li->cur, key, klen, tag);
    level_iter_forward(li);
}

/* The last entry <= target is in the last table whose smallest key is <= target. */
static void level_iter_seek_for_prev(iiter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    level_iter *li = (level_iter *)it;
    level_iter_begin(li);
    size_t lo = 0, hi = li->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct table_meta *m = li->files[mid];
        if (ikey_cmp(m->smallest.p, m->smallest.len, m->smallest_tag, key, klen, tag) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || level_iter_open(li, lo - 1)) return;
    iiter_seek_for_prev(li->cur, key, klen, tag);
    level_iter_backward(li);
}

static void level_iter_next(iiter *it)
{
    level_iter *li = (level_iter *)it;
    if (!li->base.valid) return;
    iiter_next(li->cur);
    level_iter_forward(li);
}

static void level_iter_prev(iiter *it)
{
    level_iter *li = (level_iter *)it;
    if (!li->base.valid) return;
    iiter_prev(li->cur);
    level_iter_backward(li);
}

static int level_iter_status(const iiter *it) { return ((const level_iter *)it)->status; }

static void level_iter_destroy(iiter *it)
{
    level_iter *li = (level_iter *)it;
    iiter_destroy(li->cur);
    free(li);
}

static const struct iiter_ops level_iter_ops = {
    .seek_first = level_iter_seek_first,
    .seek_last = level_iter_seek_last,
    .seek = level_iter_seek,
    .seek_for_prev = level_iter_seek_for_prev,
    .next = level_iter_next,
    .prev = level_iter_prev,
    .status = level_iter_status,
    .destroy = level_iter_destroy,
};

iiter *level_iter_new(table_cache *tc, uint64_t space, struct table_meta *const *files, size_t n)
{
    level_iter *li = calloc(1, sizeof *li);
    if (!li) return NULL;
    li->base.ops = &level_iter_ops;
    li->tc = tc;
    li->space = space;
    li->files = files;
    li->n = n;
    return &li->base;
}
