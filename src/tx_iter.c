/* The two internal iterators a transaction's iterator merges:
 *
 * - the overlay: the transaction's buffer (a memtable numbered by op),
 *   showing for each key only its newest op numbered up to `limit` (the ops
 *   made before the iterator opened), as one entry with sequence number
 *   `view`, newer than anything in the snapshot;
 * - the snapshot filter: the keyspace's own sources with every entry newer
 *   than the snapshot hidden, so that the public iterator may read at `view`
 *   (= snapshot + 1) without seeing writes committed after the snapshot.
 *
 * Merged, the overlay's entry of a key sorts before the snapshot's versions
 * of it, so the public iterator (src/iter.c) returns the transaction's write
 * where there is one, and hides keys it deleted. */
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "src/tx_iter.h"
#include "src/util/buf.h"
#include "src/util/err.h"

/* ---- the overlay ---------------------------------------------------------------------------- */

struct overlay {
    iiter base;
    iiter *src; /* the buffer's memtable iterator */
    uint64_t limit, view;
    buf key;    /* scratch: a key copied across a move */
    int status;
};

static void ov_fail(struct overlay *o, int rc)
{
    o->base.valid = 0;
    if (!o->status) o->status = rc;
}

static void ov_expose(struct overlay *o)
{
    iiter *s = o->src;
    o->base.valid = 1;
    o->base.key = s->key;
    o->base.klen = s->klen;
    o->base.tag = tag_pack(o->view, tag_kind(s->tag));
    o->base.val = s->val;
    o->base.vlen = s->vlen;
}

/* Forward from src: the first entry numbered <= limit is its key's newest. */
static void ov_settle_forward(struct overlay *o)
{
    iiter *s = o->src;
    while (s->valid && tag_seq(s->tag) > o->limit) iiter_next(s);
    if (s->valid) ov_expose(o);
    else o->base.valid = 0;
}

/* Backward from src (on the last entry of some key, or before everything):
 * finds the last key with an entry numbered <= limit and lands on its newest
 * such entry. */
static void ov_settle_backward(struct overlay *o)
{
    iiter *s = o->src;
    while (s->valid) {
        buf_clear(&o->key);
        if (buf_append(&o->key, s->key, s->klen)) {
            ov_fail(o, TIND_NO_MEMORY);
            return;
        }
        int any = 0;
        /* Older entries first, going backward: pass over all of this key. */
        while (s->valid && ukey_cmp(s->key, s->klen, o->key.p, o->key.len) == 0) {
            if (tag_seq(s->tag) <= o->limit) any = 1;
            iiter_prev(s);
        }
        if (any) {
            iiter_seek(s, o->key.p, o->key.len, tag_pack(o->limit, KIND_MAX));
            ov_expose(o);
            return;
        }
    }
    o->base.valid = 0;
}

static void ov_seek_first(iiter *it)
{
    struct overlay *o = (struct overlay *)it;
    iiter_seek_first(o->src);
    ov_settle_forward(o);
}

static void ov_seek_last(iiter *it)
{
    struct overlay *o = (struct overlay *)it;
    iiter_seek_last(o->src);
    ov_settle_backward(o);
}

/* Each key has one entry, at `view`: it is >= (key, tag) when its tag is <= tag. */
static void ov_seek(iiter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    struct overlay *o = (struct overlay *)it;
    if (tag_seq(tag) >= o->view) iiter_seek(o->src, key, klen, UINT64_MAX); /* key's entries included */
    else iiter_seek(o->src, key, klen, 0);                                   /* past all of key's */
    ov_settle_forward(o);
}

static void ov_seek_for_prev(iiter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    struct overlay *o = (struct overlay *)it;
    if (tag_seq(tag) <= o->view) iiter_seek_for_prev(o->src, key, klen, 0); /* key's entries included */
    else iiter_seek_for_prev(o->src, key, klen, UINT64_MAX);               /* before all of key's */
    ov_settle_backward(o);
}

static void ov_next(iiter *it)
{
    struct overlay *o = (struct overlay *)it;
    iiter *s = o->src;
    buf_clear(&o->key);
    if (buf_append(&o->key, s->key, s->klen)) {
        ov_fail(o, TIND_NO_MEMORY);
        return;
    }
    /* Past the key's older ops. */
    iiter_seek(s, o->key.p, o->key.len, 0);
    ov_settle_forward(o);
}

static void ov_prev(iiter *it)
{
    struct overlay *o = (struct overlay *)it;
    iiter *s = o->src;
    buf_clear(&o->key);
    if (buf_append(&o->key, s->key, s->klen)) {
        ov_fail(o, TIND_NO_MEMORY);
        return;
    }
    /* Before the key's newer ops. */
    iiter_seek_for_prev(s, o->key.p, o->key.len, UINT64_MAX);
    ov_settle_backward(o);
}

static int ov_status(const iiter *it)
{
    const struct overlay *o = (const struct overlay *)it;
    return o->status ? o->status : iiter_status(o->src);
}

static void ov_destroy(iiter *it)
{
    struct overlay *o = (struct overlay *)it;
    iiter_destroy(o->src);
    buf_free(&o->key);
    free(o);
}

static const struct iiter_ops overlay_ops = {ov_seek_first, ov_seek_last, ov_seek,   ov_seek_for_prev,
                                             ov_next,       ov_prev,      ov_status, ov_destroy};

iiter *tx_overlay_iter(memtable *m, uint64_t limit, uint64_t view)
{
    struct overlay *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->src = memtable_iter(m);
    if (!o->src) {
        free(o);
        return NULL;
    }
    o->base.ops = &overlay_ops;
    o->limit = limit;
    o->view = view;
    buf_init(&o->key);
    return &o->base;
}

/* ---- the snapshot filter ----------------------------------------------------------------------- */

struct filter {
    iiter base;
    iiter *src;
    uint64_t max_seq;
};

static void fl_sync(struct filter *f)
{
    iiter *s = f->src;
    f->base.valid = s->valid;
    if (s->valid) {
        f->base.key = s->key;
        f->base.klen = s->klen;
        f->base.tag = s->tag;
        f->base.val = s->val;
        f->base.vlen = s->vlen;
    }
}

static void fl_forward(struct filter *f)
{
    while (f->src->valid && tag_seq(f->src->tag) > f->max_seq) iiter_next(f->src);
    fl_sync(f);
}

static void fl_backward(struct filter *f)
{
    while (f->src->valid && tag_seq(f->src->tag) > f->max_seq) iiter_prev(f->src);
    fl_sync(f);
}

static void fl_seek_first(iiter *it)
{
    struct filter *f = (struct filter *)it;
    iiter_seek_first(f->src);
    fl_forward(f);
}

static void fl_seek_last(iiter *it)
{
    struct filter *f = (struct filter *)it;
    iiter_seek_last(f->src);
    fl_backward(f);
}

static void fl_seek(iiter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    struct filter *f = (struct filter *)it;
    iiter_seek(f->src, key, klen, tag);
    fl_forward(f);
}

static void fl_seek_for_prev(iiter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    struct filter *f = (struct filter *)it;
    iiter_seek_for_prev(f->src, key, klen, tag);
    fl_backward(f);
}

static void fl_next(iiter *it)
{
    struct filter *f = (struct filter *)it;
    iiter_next(f->src);
    fl_forward(f);
}

static void fl_prev(iiter *it)
{
    struct filter *f = (struct filter *)it;
    iiter_prev(f->src);
    fl_backward(f);
}

static int fl_status(const iiter *it) { return iiter_status(((const struct filter *)it)->src); }

static void fl_destroy(iiter *it)
{
    struct filter *f = (struct filter *)it;
    iiter_destroy(f->src);
    free(f);
}

static const struct iiter_ops filter_ops = {fl_seek_first, fl_seek_last, fl_seek,   fl_seek_for_prev,
                                            fl_next,       fl_prev,      fl_status, fl_destroy};

iiter *seq_filter_iter(iiter *src, uint64_t max_seq)
{
    struct filter *f = calloc(1, sizeof *f);
    if (!f) {
        iiter_destroy(src);
        return NULL;
    }
    f->base.ops = &filter_ops;
    f->src = src;
    f->max_seq = max_seq;
    return &f->base;
}
