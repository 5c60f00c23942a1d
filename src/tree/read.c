/* Reads of a tree's super version: point lookups and the sources of
 * iterators. */
#include <stdlib.h>

#include "lsm/bloom.h"
#include "lsm/ikey.h"
#include "lsm/level_iter.h"
#include "lsm/merge.h"
#include "src/tree/internal.h"

/* Looks key up in the tables of v: level 0 newest first (ranges may
 * overlap), then at most one table per deeper level. Sets *found and, when
 * found, *kind and the value: copied into val, or, with pin, left in its
 * block (*vp, *vlen) that pin holds. */
static int read_version(struct tree *t, const struct version *v, const uint8_t *key, size_t klen, uint64_t hash,
                        uint64_t seq, int *found, unsigned *kind, buf *val, struct table_pin *pin,
                        const uint8_t **vp, size_t *vlen)
{
    *found = 0;
    for (unsigned l = 0; l < LSM_LEVELS; l++) {
        size_t n = v->nfiles[l];
        struct table_meta **f = v->files[l];
        size_t lo = 0, hi = n;
        if (l > 0) {
            /* The first table whose largest key is >= key. */
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (ukey_cmp(f[mid]->largest.p, f[mid]->largest.len, key, klen) < 0) lo = mid + 1;
                else hi = mid;
            }
            hi = lo < n ? lo + 1 : lo;
        }
        for (size_t i = lo; i < hi; i++) {
            struct table_meta *m = f[i];
            if (ukey_cmp(key, klen, m->smallest.p, m->smallest.len) < 0 ||
                ukey_cmp(key, klen, m->largest.p, m->largest.len) > 0 || m->min_seq > seq)
                continue;
            table *tb;
            int rc = table_cache_get(t->env.tables, t->env.space, m, &tb);
            if (rc) return rc;
            rc = pin ? table_get_pinned(tb, key, klen, hash, seq, found, kind, vp, vlen, pin)
                     : table_get_hashed(tb, key, klen, hash, seq, found, kind, val);
            table_unref(tb);
            if (rc || *found) return rc;
        }
    }
    return TIND_OK;
}

/* The memtables of sv, newest first: the one holding key's newest version
 * at or below seq, or NULL. */
static memtable *read_memtables(struct super_version *sv, const uint8_t *key, size_t klen, uint64_t hash,
                                uint64_t seq, unsigned *kind, const uint8_t **val, size_t *vlen)
{
    if (memtable_get_hashed(sv->mem, key, klen, hash, seq, kind, val, vlen)) return sv->mem;
    for (size_t i = 0; i < sv->nimm; i++)
        if (memtable_get_hashed(sv->imm[i], key, klen, hash, seq, kind, val, vlen)) return sv->imm[i];
    return NULL;
}

int tree_get(struct tree *t, struct super_version *sv, uint64_t seq, const uint8_t *key, size_t klen, int *found,
             unsigned *kind, const uint8_t **val, size_t *vlen, buf *tv)
{
    /* One hash for every memtable filter and table bloom filter asked. */
    const uint64_t hash = bloom_hash(key, klen);
    *found = read_memtables(sv, key, klen, hash, seq, kind, val, vlen) != NULL;
    if (*found) return TIND_OK;
    int rc = read_version(t, sv->ver, key, klen, hash, seq, found, kind, tv, NULL, NULL, NULL);
    *val = tv->p;
    *vlen = tv->len;
    return rc;
}

int tree_get_pinned(struct tree *t, struct super_version *sv, uint64_t seq, const uint8_t *key, size_t klen,
                    int *found, unsigned *kind, const uint8_t **val, size_t *vlen, struct tree_pin *pin)
{
    *pin = (struct tree_pin){0};
    const uint64_t hash = bloom_hash(key, klen);
    memtable *m = read_memtables(sv, key, klen, hash, seq, kind, val, vlen);
    if (m) {
        memtable_ref(m);
        pin->mem = m;
        *found = 1;
        return TIND_OK;
    }
    return read_version(t, sv->ver, key, klen, hash, seq, found, kind, NULL, &pin->block, val, vlen);
}

void tree_pin_release(struct tree_pin *pin)
{
    if (!pin) return;
    memtable_unref(pin->mem);
    table_pin_release(&pin->block);
    *pin = (struct tree_pin){0};
}

static int read_below(const buf *hi, const uint8_t *k, size_t kl) { return !hi || ukey_cmp(k, kl, hi->p, hi->len) < 0; }

static int read_at_or_above(const buf *lo, const uint8_t *k, size_t kl)
{
    return !lo || ukey_cmp(k, kl, lo->p, lo->len) >= 0;
}

int tree_sources(struct tree *t, struct super_version *sv, const buf *lo, const buf *hi, iiter **out)
{
    size_t n = 1 + sv->nimm;
    for (unsigned l = 0; l < LSM_LEVELS; l++) n += sv->ver->nfiles[l];
    iiter **kids = calloc(n, sizeof *kids);
    if (!kids) return err_nomem();
    size_t k = 0;
    int rc = TIND_OK;
    if (!(kids[k++] = memtable_iter(sv->mem))) rc = err_nomem();
    for (size_t i = 0; rc == TIND_OK && i < sv->nimm; i++)
        if (!(kids[k++] = memtable_iter(sv->imm[i]))) rc = err_nomem();
    {
        const unsigned l = 0;
        for (size_t i = 0; rc == TIND_OK && i < sv->ver->nfiles[l]; i++) {
            struct table_meta *m = sv->ver->files[l][i];
            /* A table wholly outside the bounds is never read. */
            if (!read_below(hi, m->smallest.p, m->smallest.len) || !read_at_or_above(lo, m->largest.p, m->largest.len))
                continue;
            table *tb;
            if ((rc = table_cache_get(t->env.tables, t->env.space, m, &tb)) != TIND_OK) break;
            if (!(kids[k++] = table_iter(tb))) rc = err_nomem();
            table_unref(tb); /* the table iterator holds its own reference */
        }
    }
    for (unsigned l = 1; rc == TIND_OK && l < LSM_LEVELS; l++) {
        /* A deeper level is one sorted run: one lazy iterator over the tables
         * of it that overlap the bounds, opening a table only when reached. */
        struct table_meta *const *f = sv->ver->files[l];
        size_t a = 0, b = sv->ver->nfiles[l];
        while (a < b && !read_at_or_above(lo, f[a]->largest.p, f[a]->largest.len)) a++;
        while (b > a && !read_below(hi, f[b - 1]->smallest.p, f[b - 1]->smallest.len)) b--;
        if (b > a && !(kids[k++] = level_iter_new(t->env.tables, t->env.space, f + a, b - a))) rc = err_nomem();
    }
    if (rc == TIND_OK) {
        *out = merge_iter_new(kids, k); /* owns the children, even on failure */
        if (!*out) rc = err_nomem();
    } else {
        for (size_t i = 0; i < k; i++) iiter_destroy(kids[i]);
    }
    free(kids);
    return rc;
}
