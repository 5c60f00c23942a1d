#include "lsm/block.h"

#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "src/util/coding.h"
#include "src/util/err.h"

/* ---- building ---------------------------------------------------------------- */

void block_builder_init(block_builder *b, unsigned restart_interval)
{
    buf_init(&b->data);
    buf_init(&b->restarts);
    buf_init(&b->last);
    b->interval = restart_interval ? restart_interval : 1;
    b->counter = 0;
    b->entries = 0;
    b->finished = 0;
}

void block_builder_free(block_builder *b)
{
    buf_free(&b->data);
    buf_free(&b->restarts);
    buf_free(&b->last);
}

void block_builder_reset(block_builder *b)
{
    buf_clear(&b->data);
    buf_clear(&b->restarts);
    buf_clear(&b->last);
    b->counter = 0;
    b->entries = 0;
    b->finished = 0;
}

/* Common prefix of last[0..ln) and key[0..kl) ++ t8[0..8). */
static size_t block_shared(const uint8_t *last, size_t ln, const uint8_t *key, size_t kl, const uint8_t *t8)
{
    size_t max = ln < kl + 8 ? ln : kl + 8;
    size_t ku = max < kl ? max : kl, n = 0;
    /* Eight bytes at a time over the user key: keys often share long prefixes. */
    while (n + 8 <= ku) {
        uint64_t a, c;
        memcpy(&a, last + n, 8);
        memcpy(&c, key + n, 8);
        if (a != c) break;
        n += 8;
    }
    while (n < ku && last[n] == key[n]) n++;
    if (n < ku) return n;
    while (n < max && last[n] == t8[n - kl]) n++;
    return n;
}

/* Appends to dst the bytes [from, kl + 8) of key ++ t8. */
static void block_put_suffix(buf *dst, size_t from, const uint8_t *key, size_t kl, const uint8_t *t8)
{
    if (from < kl) {
        memcpy(dst->p + dst->len, key + from, kl - from);
        dst->len += kl - from;
        from = kl;
    }
    memcpy(dst->p + dst->len, t8 + (from - kl), kl + 8 - from);
    dst->len += kl + 8 - from;
}

int block_builder_add(block_builder *b, const uint8_t *key, size_t klen, uint64_t tag, const uint8_t *val,
                      size_t vlen)
{
    if (klen > UINT32_MAX - 8 || vlen > UINT32_MAX) return err_set(TIND_INVALID, "block entry too large");
    uint8_t t8[8];
    put_u64(t8, tag);
    int restart = b->entries == 0 || b->counter >= b->interval;
    size_t shared = restart ? 0 : block_shared(b->last.p, b->last.len, key, klen, t8);
    size_t full = klen + 8, unshared = full - shared;
    if (restart && b->data.len > UINT32_MAX) return err_set(TIND_INVALID, "block too large for a restart point");

    /* Reserve everything first so that a failure leaves b as it was. */
    int rc;
    if ((rc = buf_reserve(&b->data, 3 * VARINT32_MAX + unshared + vlen)) != TIND_OK) return rc;
    if ((rc = buf_reserve(&b->restarts, 4)) != TIND_OK) return rc;
    if (full > b->last.len && (rc = buf_reserve(&b->last, full - b->last.len)) != TIND_OK) return rc;

    if (restart) {
        put_u32(b->restarts.p + b->restarts.len, (uint32_t)b->data.len);
        b->restarts.len += 4;
        b->counter = 0;
    }
    uint8_t *p = b->data.p + b->data.len;
    p = put_varint32(p, (uint32_t)shared);
    p = put_varint32(p, (uint32_t)unshared);
    p = put_varint32(p, (uint32_t)vlen);
    b->data.len = (size_t)(p - b->data.p);
    block_put_suffix(&b->data, shared, key, klen, t8);
    if (vlen) memcpy(b->data.p + b->data.len, val, vlen);
    b->data.len += vlen;

    b->last.len = shared; /* the shared prefix is already there */
    block_put_suffix(&b->last, shared, key, klen, t8);
    b->counter++;
    b->entries++;
    return TIND_OK;
}

size_t block_builder_size(const block_builder *b) { return b->data.len + b->restarts.len + 4; }

int block_builder_finish(block_builder *b, const uint8_t **data, size_t *n)
{
    if (!b->finished) {
        int rc = buf_reserve(&b->data, b->restarts.len + 4);
        if (rc) return rc;
        if (b->restarts.len) memcpy(b->data.p + b->data.len, b->restarts.p, b->restarts.len);
        b->data.len += b->restarts.len;
        put_u32(b->data.p + b->data.len, (uint32_t)(b->restarts.len / 4));
        b->data.len += 4;
        b->finished = 1;
    }
    *data = b->data.p;
    *n = b->data.len;
    return TIND_OK;
}

/* ---- reading ----------------------------------------------------------------- */

int block_init(block *b, const uint8_t *data, size_t n)
{
    memset(b, 0, sizeof *b);
    if (n < 4) return err_set(TIND_CORRUPTION, "malformed block: %zu bytes", n);
    uint32_t nr = get_u32(data + n - 4);
    if (nr > (n - 4) / 4) return err_set(TIND_CORRUPTION, "malformed block: %u restarts in %zu bytes", nr, n);
    size_t limit = n - 4 - (size_t)nr * 4;
    if (nr == 0 && limit != 0) return err_set(TIND_CORRUPTION, "malformed block: entries without restart points");
    const uint8_t *r = data + limit;
    for (uint32_t i = 0; i < nr; i++) {
        uint32_t off = get_u32(r + 4 * (size_t)i);
        uint32_t prev = i ? get_u32(r + 4 * (size_t)(i - 1)) : 0;
        if ((i == 0 && off != 0) || (i > 0 && off <= prev) || off >= limit)
            return err_set(TIND_CORRUPTION, "malformed block: restart %u at offset %u", i, off);
    }
    b->data = data;
    b->size = n;
    b->limit = limit;
    b->nrestarts = nr;
    return TIND_OK;
}

static inline size_t block_restart(const block *b, uint32_t i) { return get_u32(b->data + b->limit + 4 * (size_t)i); }

int block_check(const block *b)
{
    size_t off = 0, prev_kn = 0;
    uint32_t r = 0;
    while (off < b->limit) {
        if (r < b->nrestarts && block_restart(b, r) < off)
            return err_set(TIND_CORRUPTION, "malformed block: restart %u at offset %zu is inside an entry", r,
                           block_restart(b, r));
        int restart = r < b->nrestarts && block_restart(b, r) == off;
        const uint8_t *p = b->data + off, *end = b->data + b->limit;
        uint32_t shared = 0, unshared = 0, vlen = 0;
        if (!(p = get_varint32(p, end, &shared)) || !(p = get_varint32(p, end, &unshared)) ||
            !(p = get_varint32(p, end, &vlen)) || shared > prev_kn || (restart && shared != 0) ||
            unshared > (size_t)(end - p) || vlen > (size_t)(end - p) - unshared || (size_t)shared + unshared < 8)
            return err_set(TIND_CORRUPTION, "malformed block: bad entry at offset %zu%s", off,
                           restart && shared != 0 ? " (a restart point sharing a prefix)" : "");
        prev_kn = (size_t)shared + unshared;
        off = (size_t)(p - b->data) + unshared + vlen;
        if (restart) r++;
    }
    if (r < b->nrestarts)
        return err_set(TIND_CORRUPTION, "malformed block: restart %u at offset %zu is inside an entry", r,
                       block_restart(b, r));
    return TIND_OK;
}

static const struct iiter_ops block_iter_ops;

void block_iter_init(block_iter *it, const block *b)
{
    memset(&it->base, 0, sizeof it->base);
    it->base.ops = &block_iter_ops;
    it->b = b;
    it->cur = it->next = 0;
    it->ridx = 0;
    it->k = NULL;
    it->kn = 0;
    it->kbuf = it->kinline;
    it->kcap = sizeof it->kinline;
    it->status = TIND_OK;
    it->bad_off = 0;
    it->nback = 0;
    it->bridx = 0;
    it->bkeys = NULL;
    it->bkn = it->bkcap = 0;
}

static void block_iter_clear(block_iter *it)
{
    it->base.valid = 0;
    it->base.key = NULL;
    it->base.klen = 0;
    it->base.tag = 0;
    it->base.val = NULL;
    it->base.vlen = 0;
    it->k = NULL;
    it->kn = 0;
    it->nback = 0;
}

void block_iter_set(block_iter *it, const block *b)
{
    it->b = b;
    it->cur = it->next = 0;
    it->ridx = 0;
    it->status = TIND_OK;
    it->bad_off = 0;
    block_iter_clear(it);
}

void block_iter_release(block_iter *it)
{
    if (it->kbuf != it->kinline) free(it->kbuf);
    it->kbuf = it->kinline;
    it->kcap = sizeof it->kinline;
    free(it->bkeys);
    it->bkeys = NULL;
    it->bkn = it->bkcap = 0;
    block_iter_clear(it);
}

static void block_iter_corrupt(block_iter *it, size_t off)
{
    it->status = err_set(TIND_CORRUPTION, "malformed block entry at offset %zu", off);
    it->bad_off = off;
    block_iter_clear(it);
}

/* Decodes the entry at off, whose predecessor's key is it->k[0..kn) (kn = 0
 * at a restart point), and makes it current. 0, or -1 with the iterator
 * failed. */
static int block_iter_decode(block_iter *it, size_t off)
{
    const block *b = it->b;
    if (off >= b->limit) {
        block_iter_corrupt(it, off);
        return -1;
    }
    const uint8_t *p = b->data + off, *end = b->data + b->limit;
    uint32_t shared, unshared, vlen;
    if (!(p = get_varint32(p, end, &shared)) || !(p = get_varint32(p, end, &unshared)) ||
        !(p = get_varint32(p, end, &vlen)) || shared > it->kn) {
        block_iter_corrupt(it, off);
        return -1;
    }
    size_t avail = (size_t)(end - p), full = (size_t)shared + unshared;
    if (unshared > avail || vlen > avail - unshared || full < 8) {
        block_iter_corrupt(it, off);
        return -1;
    }
    if (shared == 0) {
        it->k = p; /* stored whole: use it in place */
    } else {
        if (full > it->kcap) {
            size_t cap = it->kcap * 2;
            while (cap < full) cap *= 2;
            uint8_t *nb = malloc(cap);
            if (!nb) {
                it->status = err_nomem();
                block_iter_clear(it);
                return -1;
            }
            memcpy(nb, it->k, shared);
            if (it->kbuf != it->kinline) free(it->kbuf);
            it->kbuf = nb;
            it->kcap = cap;
        } else if (it->k != it->kbuf) {
            memcpy(it->kbuf, it->k, shared);
        }
        memcpy(it->kbuf + shared, p, unshared);
        it->k = it->kbuf;
    }
    it->kn = full;
    it->cur = off;
    it->next = (size_t)(p - b->data) + unshared + vlen;
    it->base.valid = 1;
    it->base.key = it->k;
    it->base.klen = full - 8;
    it->base.tag = get_u64(it->k + full - 8);
    it->base.val = p + unshared;
    it->base.vlen = vlen;
    return 0;
}

static int block_iter_to_restart(block_iter *it, uint32_t i)
{
    it->kn = 0;
    it->ridx = i;
    return block_iter_decode(it, block_restart(it->b, i));
}

/* The whole key stored at restart point i, without touching the position. */
static int block_restart_key(block_iter *it, uint32_t i, const uint8_t **k, size_t *kn)
{
    const block *b = it->b;
    size_t off = block_restart(b, i);
    const uint8_t *p = b->data + off, *end = b->data + b->limit;
    uint32_t shared, unshared, vlen;
    if (!(p = get_varint32(p, end, &shared)) || !(p = get_varint32(p, end, &unshared)) ||
        !(p = get_varint32(p, end, &vlen)) || shared != 0 || unshared < 8 || unshared > (size_t)(end - p) ||
        vlen > (size_t)(end - p) - unshared) {
        block_iter_corrupt(it, off);
        return -1;
    }
    *k = p;
    *kn = unshared;
    return 0;
}

static inline int block_key_cmp(const uint8_t *k, size_t kn, const uint8_t *key, size_t klen, uint64_t tag)
{
    return ikey_cmp(k, kn - 8, get_u64(k + kn - 8), key, klen, tag);
}

void block_iter_seek_first(block_iter *it)
{
    it->status = TIND_OK;
    block_iter_clear(it);
    if (!it->b || it->b->nrestarts == 0) return;
    block_iter_to_restart(it, 0);
}

void block_iter_seek_last(block_iter *it)
{
    it->status = TIND_OK;
    block_iter_clear(it);
    if (!it->b || it->b->nrestarts == 0) return;
    if (block_iter_to_restart(it, it->b->nrestarts - 1)) return;
    while (it->next < it->b->limit)
        if (block_iter_decode(it, it->next)) return;
}

void block_iter_next(block_iter *it)
{
    if (!it->base.valid) return;
    const block *b = it->b;
    if (it->next >= b->limit) {
        it->cur = it->next = b->limit;
        block_iter_clear(it);
        return;
    }
    it->nback = 0;
    if (block_iter_decode(it, it->next)) return;
    while (it->ridx + 1 < b->nrestarts && block_restart(b, it->ridx + 1) <= it->cur) it->ridx++;
}

/* Keeps the current entry for a later backward step (see BLOCK_ITER_BACK);
 * out of memory keeps nothing more (the steps then re-decode). */
static void block_iter_keep(block_iter *it)
{
    if (it->nback == BLOCK_ITER_BACK) { /* keep the nearest */
        memmove(it->back, it->back + 1, sizeof it->back[0] * (BLOCK_ITER_BACK - 1));
        it->nback--;
    }
    if (it->kn > it->bkcap - it->bkn) {
        size_t cap = it->bkcap ? it->bkcap : 256;
        while (cap - it->bkn < it->kn) cap *= 2;
        uint8_t *nb = realloc(it->bkeys, cap);
        if (!nb) return;
        it->bkeys = nb;
        it->bkcap = cap;
    }
    memcpy(it->bkeys + it->bkn, it->k, it->kn);
    it->back[it->nback++] = (struct block_back){it->cur, it->next, it->bkn, it->kn, it->base.val, it->base.vlen};
    it->bkn += it->kn;
}

/* LevelDB-style: back to the restart point before the current entry, then
 * forward to the entry that ends where the current one starts, keeping the
 * entries passed on the way for the next steps back. */
void block_iter_prev(block_iter *it)
{
    if (!it->base.valid) return;
    const block *b = it->b;
    size_t orig = it->cur;
    if (it->nback > 0 && it->back[it->nback - 1].next == orig) {
        const struct block_back *e = &it->back[--it->nback];
        it->k = it->bkeys + e->koff;
        it->kn = e->kn;
        it->cur = e->cur;
        it->next = e->next;
        it->ridx = it->bridx;
        it->base.key = it->k;
        it->base.klen = e->kn - 8;
        it->base.tag = get_u64(it->k + e->kn - 8);
        it->base.val = e->val;
        it->base.vlen = e->vlen;
        return;
    }
    uint32_t r = it->ridx;
    while (block_restart(b, r) >= orig) {
        if (r == 0) {
            block_iter_clear(it);
            return;
        }
        r--;
    }
    if (block_iter_to_restart(it, r)) return;
    it->nback = 0;
    it->bkn = 0;
    it->bridx = r;
    while (it->next < orig) {
        block_iter_keep(it);
        if (block_iter_decode(it, it->next)) return;
    }
    if (it->next != orig) block_iter_corrupt(it, it->cur);
}

void block_iter_seek(block_iter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    block_iter_seek_range(it, 0, UINT32_MAX, key, klen, tag);
}

void block_iter_seek_range(block_iter *it, uint32_t lo, uint32_t hi, const uint8_t *key, size_t klen, uint64_t tag)
{
    it->status = TIND_OK;
    block_iter_clear(it);
    if (!it->b || it->b->nrestarts == 0) return;
    /* The last restart point whose key is < target; the answer lies at or after it. */
    if (hi > it->b->nrestarts - 1) hi = it->b->nrestarts - 1;
    if (lo > hi) lo = hi;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        const uint8_t *k;
        size_t kn;
        if (block_restart_key(it, mid, &k, &kn)) return;
        if (block_key_cmp(k, kn, key, klen, tag) < 0) lo = mid;
        else hi = mid - 1;
    }
    if (block_iter_to_restart(it, lo)) return;
    while (it->base.valid && block_key_cmp(it->k, it->kn, key, klen, tag) < 0) block_iter_next(it);
}

void block_iter_seek_for_prev(block_iter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    block_iter_seek(it, key, klen, tag);
    if (it->status) return;
    if (!it->base.valid) block_iter_seek_last(it);
    else if (block_key_cmp(it->k, it->kn, key, klen, tag) > 0) block_iter_prev(it);
}

/* ---- as an iiter ------------------------------------------------------------- */

static void bi_seek_first(iiter *it) { block_iter_seek_first((block_iter *)it); }
static void bi_seek_last(iiter *it) { block_iter_seek_last((block_iter *)it); }
static void bi_seek(iiter *it, const uint8_t *k, size_t kl, uint64_t tag) { block_iter_seek((block_iter *)it, k, kl, tag); }
static void bi_seek_for_prev(iiter *it, const uint8_t *k, size_t kl, uint64_t tag)
{
    block_iter_seek_for_prev((block_iter *)it, k, kl, tag);
}
static void bi_next(iiter *it) { block_iter_next((block_iter *)it); }
static void bi_prev(iiter *it) { block_iter_prev((block_iter *)it); }
static int bi_status(const iiter *it) { return ((const block_iter *)it)->status; }
static void bi_destroy(iiter *it)
{
    block_iter_release((block_iter *)it);
    free(it);
}

static const struct iiter_ops block_iter_ops = {
    .seek_first = bi_seek_first,
    .seek_last = bi_seek_last,
    .seek = bi_seek,
    .seek_for_prev = bi_seek_for_prev,
    .next = bi_next,
    .prev = bi_prev,
    .status = bi_status,
    .destroy = bi_destroy,
};

iiter *block_iter_new(const block *b)
{
    block_iter *it = malloc(sizeof *it);
    if (!it) return NULL;
    block_iter_init(it, b);
    return &it->base;
}
