/* Public iterators: a view of live keys over the internal merging iterator.
 *
 * The internal iterator yields every version of every key, newest first per
 * key. This layer hides versions newer than the iterator's sequence number,
 * collapses each key to its newest visible version, skips keys whose newest
 * visible version is a tombstone, and applies the bounds.
 *
 * Direction: going forward, `src` sits on the entry being returned. Going
 * backward, `src` sits just before every entry of the current key (on an
 * older key, or invalid), and the key and value returned are copies in
 * saved_key / saved_val, since src has moved past them. */
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "lsm/level_iter.h"
#include "lsm/merge.h"
#include "lsm/table.h"
#include "src/db.h"
#include "src/tx.h"
#include "src/tx_iter.h"
#include "src/util/err.h"

enum { DIR_FORWARD, DIR_REVERSE };

struct tind_iter {
    tind_db *db;
    struct super_version *sv; /* keeps every memtable and table it reads alive */
    iiter *src;
    uint64_t seq;
    buf lower, upper;
    int has_lower, has_upper;
    int valid, dir, status;
    buf saved_key, saved_val;
    buf scratch; /* a key copied for a reseek */

    /* A transaction's iterator, while its transaction is open: the range it
     * has covered, [lo, hi], or from the lower bound / to the upper bound
     * when open (it ran off that end or started there). */
    struct tind_tx *tx;
    uint32_t ks_id;
    int cov_lo_set, cov_hi_set, cov_lo_open, cov_hi_open;
    buf cov_lo, cov_hi;
};

static int below_upper(const tind_iter *it, const uint8_t *k, size_t kl)
{
    return !it->has_upper || ukey_cmp(k, kl, it->upper.p, it->upper.len) < 0;
}

static int above_lower(const tind_iter *it, const uint8_t *k, size_t kl)
{
    return !it->has_lower || ukey_cmp(k, kl, it->lower.p, it->lower.len) >= 0;
}

static int save(buf *b, const uint8_t *p, size_t n)
{
    buf_clear(b);
    return buf_append(b, p, n);
}

static void fail(tind_iter *it, int rc)
{
    it->valid = 0;
    if (it->status == TIND_OK) it->status = rc;
}

/* ---- the range a transaction's iterator covers ------------------------------------------- */

/* Out of memory here leaves the range short of what the caller saw: the
 * transaction cannot commit. */
static void cover_key(tind_iter *it, const void *k, size_t kl)
{
    if (!it->tx) return;
    if (!it->cov_lo_open && (!it->cov_lo_set || ukey_cmp(k, kl, it->cov_lo.p, it->cov_lo.len) < 0)) {
        if (save(&it->cov_lo, k, kl)) {
            fail(it, TIND_NO_MEMORY);
            tx_poison(it->tx);
            return;
        }
        it->cov_lo_set = 1;
    }
    if (!it->cov_hi_open && (!it->cov_hi_set || ukey_cmp(k, kl, it->cov_hi.p, it->cov_hi.len) > 0)) {
        if (save(&it->cov_hi, k, kl)) {
            fail(it, TIND_NO_MEMORY);
            tx_poison(it->tx);
            return;
        }
        it->cov_hi_set = 1;
    }
}

/* After a move: the key landed on joins the range; stopping, at an end or
 * on an error (which a caller may take for the end), opens the range to the
 * bound in the direction of the move. */
static void cover_result(tind_iter *it, int forward)
{
    if (!it->tx) return;
    if (it->valid) {
        size_t kl;
        const void *k = tind_iter_key(it, &kl);
        cover_key(it, k, kl);
    } else if (forward) {
        it->cov_hi_open = 1;
    } else {
        it->cov_lo_open = 1;
    }
}

void tx_iter_detach(tind_iter *it)
{
    struct tind_tx *tx = it->tx;
    if (!tx) return;
    int lo_ok = it->cov_lo_open || it->cov_lo_set, hi_ok = it->cov_hi_open || it->cov_hi_set;
    if (lo_ok && hi_ok) {
        /* Open ends stop at the bounds. */
        int lo_open = it->cov_lo_open && !it->has_lower, hi_open = it->cov_hi_open && !it->has_upper;
        const buf *lo = it->cov_lo_open ? &it->lower : &it->cov_lo;
        const buf *hi = it->cov_hi_open ? &it->upper : &it->cov_hi;
        /* Out of memory here makes the commit fail rather than go unchecked. */
        if (tx_add_range(tx, it->ks_id, lo_open, lo->p, lo->len, hi_open, hi->p, hi->len,
                         it->cov_hi_open && it->has_upper))
            tx_poison(tx);
    }
    tx_forget_iter(tx, it);
    it->tx = NULL;
}

/* After this many entries passed over in a row, find_next seeks instead of
 * stepping: a hot key can hold thousands of versions, and a scan that meets
 * it must not walk them one by one. */
#define MAX_SEQUENTIAL_SKIPS 8

/* Forward from src's position: the first key with a visible live version.
 * With `skipping`, entries of keys <= saved_key are passed over first. */
static void find_next(tind_iter *it, int skipping)
{
    iiter *s = it->src;
    unsigned skipped = 0;
    while (s->valid) {
        int older = 0, newer = tag_seq(s->tag) > it->seq;
        if (!newer) {
            if (skipping && ukey_cmp(s->key, s->klen, it->saved_key.p, it->saved_key.len) <= 0) {
                older = 1; /* an older version of a key already returned or deleted */
            } else if (!below_upper(it, s->key, s->klen)) {
                break;
            } else if (tag_kind(s->tag) == KIND_DELETE) {
                if (save(&it->saved_key, s->key, s->klen)) {
                    fail(it, TIND_NO_MEMORY);
                    return;
                }
                skipping = 1;
                older = 1;
            } else {
                it->valid = 1;
                return;
            }
        }
        if (++skipped > MAX_SEQUENTIAL_SKIPS) {
            skipped = 0;
            if (older) {
                /* (key, tag 0) sorts after every version of key: seq 0 is never given. */
                iiter_seek(s, it->saved_key.p, it->saved_key.len, 0);
                continue;
            }
            /* Newer than the view: on to the newest version it may see. The
             * key is copied first, since the seek may free the block it is in. */
            if (save(&it->scratch, s->key, s->klen)) {
                fail(it, TIND_NO_MEMORY);
                return;
            }
            iiter_seek(s, it->scratch.p, it->scratch.len, tag_pack(it->seq, KIND_MAX));
            continue;
        }
        iiter_next(s);
    }
    it->valid = 0;
    if (iiter_status(s)) fail(it, iiter_status(s));
}

/* Backward from src's position: the last key with a visible live version,
 * copied into saved_key / saved_val; src ends before all its entries. */
static void find_prev(tind_iter *it)
{
    iiter *s = it->src;
    unsigned kind = KIND_DELETE;
    while (s->valid) {
        if (tag_seq(s->tag) <= it->seq) {
            if (kind != KIND_DELETE && ukey_cmp(s->key, s->klen, it->saved_key.p, it->saved_key.len) < 0) break;
            if (!above_lower(it, s->key, s->klen)) break;
            kind = tag_kind(s->tag);
            if (kind == KIND_DELETE) {
                buf_clear(&it->saved_key);
                buf_clear(&it->saved_val);
            } else if (save(&it->saved_key, s->key, s->klen) || save(&it->saved_val, s->val, s->vlen)) {
                fail(it, TIND_NO_MEMORY);
                return;
            }
        }
        iiter_prev(s);
    }
    if (iiter_status(s)) {
        fail(it, iiter_status(s));
        return;
    }
    it->valid = kind != KIND_DELETE;
}

void tind_iter_seek_first(tind_iter *it)
{
    if (!it || it->status) return;
    it->dir = DIR_FORWARD;
    if (it->has_lower) iiter_seek(it->src, it->lower.p, it->lower.len, tag_pack(it->seq, KIND_MAX));
    else iiter_seek_first(it->src);
    find_next(it, 0);
    it->cov_lo_open = 1;
    cover_result(it, 1);
}

void tind_iter_seek_last(tind_iter *it)
{
    if (!it || it->status) return;
    it->dir = DIR_REVERSE;
    /* (upper, max tag) sorts before every real entry of upper itself. */
    if (it->has_upper) iiter_seek_for_prev(it->src, it->upper.p, it->upper.len, UINT64_MAX);
    else iiter_seek_last(it->src);
    find_prev(it);
    it->cov_hi_open = 1;
    cover_result(it, 0);
}

void tind_iter_seek(tind_iter *it, const void *key, size_t klen)
{
    if (!it || it->status) return;
    if (check_key(key, klen)) {
        fail(it, TIND_INVALID);
        return;
    }
    if (it->has_lower && ukey_cmp(key, klen, it->lower.p, it->lower.len) < 0) {
        tind_iter_seek_first(it);
        return;
    }
    it->dir = DIR_FORWARD;
    iiter_seek(it->src, key, klen, tag_pack(it->seq, KIND_MAX));
    find_next(it, 0);
    cover_key(it, key, klen); /* no key between it and the one found */
    cover_result(it, 1);
}

void tind_iter_seek_for_prev(tind_iter *it, const void *key, size_t klen)
{
    if (!it || it->status) return;
    if (check_key(key, klen)) {
        fail(it, TIND_INVALID);
        return;
    }
    if (it->has_upper && ukey_cmp(key, klen, it->upper.p, it->upper.len) >= 0) {
        tind_iter_seek_last(it);
        return;
    }
    it->dir = DIR_REVERSE;
    /* (key, tag 0) sorts after every entry of key: all its versions count. */
    iiter_seek_for_prev(it->src, key, klen, 0);
    find_prev(it);
    cover_key(it, key, klen);
    cover_result(it, 0);
}

int tind_iter_valid(const tind_iter *it) { return it && it->valid; }

void tind_iter_next(tind_iter *it)
{
    if (!it || !it->valid) return;
    iiter *s = it->src;
    if (it->dir == DIR_REVERSE) {
        /* src is before the current key's entries: step into them, then skip
         * them with saved_key, which holds the current key. */
        it->dir = DIR_FORWARD;
        if (!s->valid) iiter_seek_first(s);
        else iiter_next(s);
    } else {
        if (save(&it->saved_key, s->key, s->klen)) {
            fail(it, TIND_NO_MEMORY);
            cover_result(it, 1);
            return;
        }
        iiter_next(s);
    }
    find_next(it, 1);
    cover_result(it, 1);
}

void tind_iter_prev(tind_iter *it)
{
    if (!it || !it->valid) return;
    iiter *s = it->src;
    if (it->dir == DIR_FORWARD) {
        /* Step back past every entry of the current key. */
        if (save(&it->saved_key, s->key, s->klen)) {
            fail(it, TIND_NO_MEMORY);
            cover_result(it, 0);
            return;
        }
        do {
            iiter_prev(s);
        } while (s->valid && ukey_cmp(s->key, s->klen, it->saved_key.p, it->saved_key.len) >= 0);
        it->dir = DIR_REVERSE;
        if (iiter_status(s)) {
            fail(it, iiter_status(s));
            cover_result(it, 0);
            return;
        }
    }
    find_prev(it);
    cover_result(it, 0);
}

const void *tind_iter_key(const tind_iter *it, size_t *len)
{
    if (!it || !it->valid) {
        if (len) *len = 0;
        return NULL;
    }
    if (it->dir == DIR_FORWARD) {
        if (len) *len = it->src->klen;
        return it->src->key;
    }
    if (len) *len = it->saved_key.len;
    return it->saved_key.p;
}

const void *tind_iter_value(const tind_iter *it, size_t *len)
{
    if (!it || !it->valid) {
        if (len) *len = 0;
        return NULL;
    }
    /* A zero-length value still gets a non-NULL pointer. */
    static const uint8_t empty[1];
    if (it->dir == DIR_FORWARD) {
        if (len) *len = it->src->vlen;
        return it->src->vlen ? it->src->val : empty;
    }
    if (len) *len = it->saved_val.len;
    return it->saved_val.len ? it->saved_val.p : empty;
}

int tind_iter_status(const tind_iter *it)
{
    if (!it) return TIND_INVALID;
    return it->status;
}

void tind_iter_close(tind_iter *it)
{
    if (!it) return;
    if (it->tx) tx_iter_detach(it);
    iiter_destroy(it->src);
    sv_unref(it->sv);
    buf_free(&it->lower);
    buf_free(&it->upper);
    buf_free(&it->saved_key);
    buf_free(&it->saved_val);
    buf_free(&it->scratch);
    buf_free(&it->cov_lo);
    buf_free(&it->cov_hi);
    atomic_fetch_sub(&it->db->niters, 1);
    free(it);
}

/* Opens an iterator as of snap (NULL: now); with tx, over tx's snapshot
 * overlaid with its writes, tracking its range for tx. */
static int iter_open(tind_keyspace *ks, tind_snapshot *snap, struct tind_tx *tx, const void *lo, size_t lolen,
                     int has_lo, const void *hi, size_t hilen, int has_hi, tind_iter **out)
{
    tind_iter *it = calloc(1, sizeof *it);
    if (!it) return err_nomem();
    it->db = ks->db;
    buf_init(&it->lower);
    buf_init(&it->upper);
    buf_init(&it->saved_key);
    buf_init(&it->saved_val);
    buf_init(&it->scratch);
    buf_init(&it->cov_lo);
    buf_init(&it->cov_hi);
    int rc = TIND_OK;
    if (has_lo && (rc = buf_append(&it->lower, lo, lolen)) != TIND_OK) goto fail;
    if (has_hi && (rc = buf_append(&it->upper, hi, hilen)) != TIND_OK) goto fail;
    it->has_lower = has_lo;
    it->has_upper = has_hi;
    /* Without a snapshot, "now" is read after the super version is taken
     * (see read_at). */
    if ((rc = sv_acquire(ks->tree, &it->sv)) != TIND_OK) goto fail;
    it->seq = snap ? snap->seq : db_last_seq(ks->db);
    if ((rc = tree_sources(ks->tree, it->sv, has_lo ? &it->lower : NULL, has_hi ? &it->upper : NULL, &it->src)) !=
        TIND_OK)
        goto fail;
    memtable *m = tx ? tx_buffer(tx, ks) : NULL;
    if (m && tx->nops > 0) {
        /* Reads at snapshot + 1: the transaction's writes, then the snapshot. */
        iiter *kids[2] = {tx_overlay_iter(m, tx->nops, it->seq + 1), seq_filter_iter(it->src, it->seq)};
        it->src = NULL;
        iiter *merged = kids[0] && kids[1] ? merge_iter_new(kids, 2) : NULL;
        if (!kids[0] || !kids[1]) {
            iiter_destroy(kids[0]);
            iiter_destroy(kids[1]);
        }
        if (!merged) {
            rc = err_nomem();
            goto fail;
        }
        it->src = merged;
        it->seq++;
    }
    if (tx && !tx->single_writer) {
        if ((rc = tx_track_iter(tx, it)) != TIND_OK) goto fail;
        it->tx = tx;
        it->ks_id = ks->id;
    }
    atomic_fetch_add(&ks->db->niters, 1);
    *out = it;
    return TIND_OK;
fail:
    iiter_destroy(it->src);
    if (it->sv) sv_unref(it->sv);
    buf_free(&it->lower);
    buf_free(&it->upper);
    free(it);
    return rc;
}

/* iter_open with the bounds b (NULL: none), checked. */
static int iter_open_bounded(tind_keyspace *ks, tind_snapshot *snap, struct tind_tx *tx, const tind_bounds *b,
                             tind_iter **out)
{
    if (!b) return iter_open(ks, snap, tx, NULL, 0, 0, NULL, 0, 0, out);
    int rc;
    if (b->lower && (rc = check_key(b->lower, b->lower_len)) != TIND_OK) return rc;
    if (b->upper && (rc = check_key(b->upper, b->upper_len)) != TIND_OK) return rc;
    return iter_open(ks, snap, tx, b->lower, b->lower_len, b->lower != NULL, b->upper, b->upper_len,
                     b->upper != NULL, out);
}

int tind_iter_open(tind_keyspace *ks, tind_snapshot *s, const tind_bounds *b, tind_iter **out)
{
    err_clear();
    if (!out) return err_set(TIND_INVALID, "tind_iter_open: NULL argument");
    *out = NULL;
    int rc = check_keyspace(ks);
    if (rc) return rc;
    if (s && s->db != ks->db) return err_set(TIND_INVALID, "the snapshot belongs to another database");
    return iter_open_bounded(ks, s, NULL, b, out);
}

int tind_iter_open_prefix(tind_keyspace *ks, tind_snapshot *s, const void *prefix, size_t len, tind_iter **out)
{
    err_clear();
    if (!out) return err_set(TIND_INVALID, "tind_iter_open_prefix: NULL argument");
    *out = NULL;
    int rc = check_keyspace(ks);
    if (rc || (rc = check_key(prefix, len)) != TIND_OK) return rc;
    if (s && s->db != ks->db) return err_set(TIND_INVALID, "the snapshot belongs to another database");
    /* The upper bound is the prefix with trailing 0xff bytes dropped and the
     * last remaining byte incremented; a prefix of all 0xff has none. */
    uint8_t *hi = malloc(len);
    if (!hi) return err_nomem();
    memcpy(hi, prefix, len);
    size_t hl = len;
    while (hl > 0 && hi[hl - 1] == 0xff) hl--;
    if (hl > 0) hi[hl - 1]++;
    rc = iter_open(ks, s, NULL, prefix, len, 1, hi, hl, hl > 0, out);
    free(hi);
    return rc;
}

int tind_tx_iter_open(tind_tx *tx, tind_keyspace *ks, const tind_bounds *b, tind_iter **out)
{
    err_clear();
    if (!out) return err_set(TIND_INVALID, "tind_tx_iter_open: NULL argument");
    *out = NULL;
    if (!tx) return err_set(TIND_INVALID, "transaction is NULL");
    int rc = check_keyspace(ks);
    if (rc) return rc;
    if (ks->db != tx->db) return err_set(TIND_INVALID, "the keyspace belongs to another database");
    return iter_open_bounded(ks, tx->snap, tx, b, out);
}
