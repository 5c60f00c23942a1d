/* Fuzz target: operation sequences against a database, checked against a
 * reference map.
 *
 * The input's first two bytes pick the configuration (compaction style of
 * each of the two keyspaces, compression, restart interval, bloom bits);
 * every later byte starts an operation, whose arguments are the bytes after
 * it:
 *
 *   put, delete                one key of 144 (1 or 2 bytes), values of 0-40
 *                              bytes or, one time in four, 1-3 KiB (so that
 *                              the 64 KiB memtables fill and flush by themselves)
 *   batch                      1-8 puts and deletes across both keyspaces
 *   get                        a key, latest or through an open snapshot
 *   iterate                    forward or backward, optional lower/upper
 *                              bounds, a seek or seek_for_prev inside them,
 *                              latest or through an open snapshot
 *   snapshot take / release    up to 4 open at once, each with a copy of the model
 *   flush, compact             tind_keyspace_flush / tind_keyspace_compact
 *   reopen                     snapshots released, database closed and opened
 *                              again, everything checked against the model
 *
 * The database lives in a fresh folder under /dev/shm per input, with
 * buffered durability, one worker, 64 KiB memtables and small blocks and
 * table targets. Any status other than the expected one, and any read that
 * differs from the model, aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"
#include "tind.h"

#define FZO_KEYS 144
#define FZO_KS 2
#define FZO_SNAPS 4
#define FZO_MAX_OPS 400

struct fzo_val {
    int live;
    size_t len;
    uint8_t *p;
};

/* The model of one point in time: every key of both keyspaces. */
struct fzo_model {
    struct fzo_val v[FZO_KS][FZO_KEYS];
};

struct fzo_key {
    uint8_t b[2];
    size_t len;
};

static struct fzo_key fzo_keys[FZO_KEYS]; /* by id */
static unsigned fzo_order[FZO_KEYS];      /* ids in key order */
static unsigned fzo_rank[FZO_KEYS];       /* position of each id in fzo_order */
static char *fzo_root;
static char fzo_path[4096];

struct fzo {
    struct fz_in in;
    tind_db *db;
    tind_keyspace *ks[FZO_KS];
    tind_keyspace_options ko[FZO_KS];
    struct fzo_model cur;
    struct fzo_model *snapm[FZO_SNAPS];
    tind_snapshot *snap[FZO_SNAPS];
    uint64_t stamp; /* makes values distinct */
};

static int fzo_keycmp(const void *a, const void *b)
{
    const struct fzo_key *x = &fzo_keys[*(const unsigned *)a], *y = &fzo_keys[*(const unsigned *)b];
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->b, y->b, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void fzo_init_keys(void)
{
    /* 16 one-byte keys "a".."p" and 128 two-byte keys "a0".."p7". */
    for (unsigned id = 0; id < FZO_KEYS; id++) {
        struct fzo_key *k = &fzo_keys[id];
        if (id < 16) {
            k->b[0] = (uint8_t)('a' + id);
            k->len = 1;
        } else {
            k->b[0] = (uint8_t)('a' + (id - 16) % 16);
            k->b[1] = (uint8_t)('0' + (id - 16) / 16);
            k->len = 2;
        }
        fzo_order[id] = id;
    }
    qsort(fzo_order, FZO_KEYS, sizeof *fzo_order, fzo_keycmp);
    for (unsigned i = 0; i < FZO_KEYS; i++) fzo_rank[fzo_order[i]] = i;
}

static unsigned fzo_key_id(struct fzo *f) { return fz_u8(&f->in) % FZO_KEYS; }

static void fzo_model_free(struct fzo_model *m)
{
    for (int s = 0; s < FZO_KS; s++)
        for (int i = 0; i < FZO_KEYS; i++) free(m->v[s][i].p);
    memset(m, 0, sizeof *m);
}

static struct fzo_model *fzo_model_copy(const struct fzo_model *m)
{
    struct fzo_model *c = calloc(1, sizeof *c);
    FZ_CHECK(c != NULL, "out of memory");
    for (int s = 0; s < FZO_KS; s++)
        for (int i = 0; i < FZO_KEYS; i++) {
            const struct fzo_val *v = &m->v[s][i];
            c->v[s][i] = *v;
            if (v->p) {
                c->v[s][i].p = malloc(v->len ? v->len : 1);
                FZ_CHECK(c->v[s][i].p != NULL, "out of memory");
                memcpy(c->v[s][i].p, v->p, v->len);
            }
        }
    return c;
}

/* A value: a length from the input, bytes from the stamp. */
static size_t fzo_value(struct fzo *f, uint8_t *out, size_t cap)
{
    unsigned b = fz_u8(&f->in);
    size_t len = (b & 3) == 3 ? 1024 + (size_t)(b >> 2) * 32 : (size_t)(b >> 2) % 41;
    if (len > cap) len = cap;
    uint64_t x = ++f->stamp * 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < len; i++) {
        out[i] = (uint8_t)(x >> (8 * (i % 8))) ^ (uint8_t)i;
        if (i % 8 == 7) x = x * 6364136223846793005u + 1442695040888963407u;
    }
    return len;
}

static void fzo_model_set(struct fzo_model *m, unsigned s, unsigned id, const uint8_t *v, size_t len, int live)
{
    struct fzo_val *x = &m->v[s][id];
    free(x->p);
    x->p = NULL;
    x->len = 0;
    x->live = live;
    if (live) {
        x->p = malloc(len ? len : 1);
        FZ_CHECK(x->p != NULL, "out of memory");
        if (len) memcpy(x->p, v, len);
        x->len = len;
    }
}

static void fzo_open(struct fzo *f)
{
    tind_options o;
    tind_options_init(&o);
    o.workers = 1;
    o.cache_bytes = 256u << 10;
    o.durability = TIND_DURABILITY_BUFFERED;
    o.journal_max_bytes = 64u << 10;
    o.journal_total_max_bytes = 256u << 10;
    int rc = tind_open(fzo_path, &o, &f->db);
    FZ_CHECK(rc == TIND_OK, "open: %d %s", rc, tind_last_error());
    for (int s = 0; s < FZO_KS; s++) {
        char name[2] = {(char)('x' + s), 0};
        rc = tind_keyspace_open(f->db, name, &f->ko[s], &f->ks[s]);
        FZ_CHECK(rc == TIND_OK, "keyspace_open %s: %d %s", name, rc, tind_last_error());
    }
}

static void fzo_configure(struct fzo *f)
{
    unsigned a = fz_u8(&f->in), b = fz_u8(&f->in);
    for (int s = 0; s < FZO_KS; s++) {
        tind_keyspace_options *k = &f->ko[s];
        tind_keyspace_options_init(k);
        unsigned c = s ? a >> 4 : a;
        k->memtable_bytes = 64u << 10;
        k->block_size = 256;
        k->table_target_bytes = 64u << 10;
        k->compaction = (int)(c % 3);
        k->l0_trigger = 2 + (c >> 2) % 3;
        k->tier_width = 2;
        k->level_ratio = 2;
        for (int l = 0; l < TIND_LEVELS; l++) k->compression[l] = (int)((b + (unsigned)l + (unsigned)s) % 3);
        k->restart_interval = 1u + (b >> 2) % 16;
        k->bloom_bits_per_key = (b >> 6) & 1 ? 0 : 10;
        k->zstd_level = 1;
    }
}

/* ---- checks ------------------------------------------------------------------------- */

static void fzo_check_get(tind_keyspace *ks, tind_snapshot *snap, const struct fzo_model *m, unsigned s,
                          unsigned id)
{
    const struct fzo_key *k = &fzo_keys[id];
    const struct fzo_val *want = &m->v[s][id];
    void *v = NULL;
    size_t vl = 0;
    int rc = snap ? tind_snapshot_get(snap, ks, k->b, k->len, &v, &vl) : tind_get(ks, k->b, k->len, &v, &vl);
    if (!want->live) {
        FZ_CHECK(rc == TIND_NOT_FOUND, "get %.*s (ks %u%s): %d %s, the model has no value", (int)k->len, k->b, s,
                 snap ? ", snapshot" : "", rc, rc == TIND_OK ? "found" : tind_last_error());
        if (!snap) {
            tind_pinned p;
            rc = tind_get_pinned(ks, k->b, k->len, &p);
            FZ_CHECK(rc == TIND_NOT_FOUND, "pinned get %.*s (ks %u): %d, the model has no value", (int)k->len, k->b, s,
                     rc);
            tind_pinned_release(&p);
        }
        return;
    }
    FZ_CHECK(rc == TIND_OK, "get %.*s (ks %u%s): %d %s, the model has %zu bytes", (int)k->len, k->b, s,
             snap ? ", snapshot" : "", rc, tind_last_error(), want->len);
    FZ_CHECK(vl == want->len && (vl == 0 || memcmp(v, want->p, vl) == 0),
             "get %.*s (ks %u%s): %zu bytes differ from the model's %zu", (int)k->len, k->b, s,
             snap ? ", snapshot" : "", vl, want->len);
    tind_free(v);
    if (snap) return;
    /* The same read in place. */
    tind_pinned p;
    rc = tind_get_pinned(ks, k->b, k->len, &p);
    FZ_CHECK(rc == TIND_OK && p.data && p.len == want->len && (p.len == 0 || memcmp(p.data, want->p, p.len) == 0),
             "pinned get %.*s (ks %u): %d, %zu bytes against the model's %zu", (int)k->len, k->b, s, rc, p.len,
             want->len);
    tind_pinned_release(&p);
}

/* The model's live keys of keyspace s in [lo, hi) of key order (ranks). */
static void fzo_check_iter(struct fzo *f, tind_snapshot *snap, const struct fzo_model *m, unsigned s)
{
    unsigned flags = fz_u8(&f->in);
    unsigned lo_id = fzo_key_id(f), hi_id = fzo_key_id(f), seek_id = fzo_key_id(f);
    int has_lo = flags & 1, has_hi = (flags >> 1) & 1, backward = (flags >> 2) & 1;
    int seek = (flags >> 3) & 1;
    unsigned lo = has_lo ? fzo_rank[lo_id] : 0, hi = has_hi ? fzo_rank[hi_id] : FZO_KEYS;
    tind_bounds b = {0};
    if (has_lo) {
        b.lower = fzo_keys[lo_id].b;
        b.lower_len = fzo_keys[lo_id].len;
    }
    if (has_hi) {
        b.upper = fzo_keys[hi_id].b;
        b.upper_len = fzo_keys[hi_id].len;
    }
    tind_iter *it;
    int rc = tind_iter_open(f->ks[s], snap, &b, &it);
    FZ_CHECK(rc == TIND_OK, "iter_open: %d %s", rc, tind_last_error());
    /* Start rank (forward: first >= start; backward: last <= start). */
    int r;
    if (!backward) {
        unsigned from = lo;
        if (seek) {
            tind_iter_seek(it, fzo_keys[seek_id].b, fzo_keys[seek_id].len);
            if (fzo_rank[seek_id] > from) from = fzo_rank[seek_id];
        } else {
            tind_iter_seek_first(it);
        }
        r = (int)from;
    } else {
        int from = (int)hi - 1;
        if (seek) {
            tind_iter_seek_for_prev(it, fzo_keys[seek_id].b, fzo_keys[seek_id].len);
            if ((int)fzo_rank[seek_id] < from) from = (int)fzo_rank[seek_id];
        } else {
            tind_iter_seek_last(it);
        }
        r = from;
    }
    size_t steps = 0;
    for (;;) {
        /* The next live model key from r in the direction. */
        while (r >= (int)lo && r < (int)hi && !m->v[s][fzo_order[r]].live) r += backward ? -1 : 1;
        int want = r >= (int)lo && r < (int)hi;
        FZ_CHECK(tind_iter_valid(it) == want, "iteration (ks %u, %s%s, step %zu): %s, the model %s", s,
                 backward ? "backward" : "forward", snap ? ", snapshot" : "", steps,
                 tind_iter_valid(it) ? "a key" : "the end", want ? "has a key" : "is at its end");
        if (!want) break;
        const struct fzo_key *k = &fzo_keys[fzo_order[r]];
        const struct fzo_val *v = &m->v[s][fzo_order[r]];
        size_t kl, vl;
        const void *key = tind_iter_key(it, &kl), *val = tind_iter_value(it, &vl);
        FZ_CHECK(kl == k->len && memcmp(key, k->b, kl) == 0, "iteration (ks %u, step %zu): key differs from %.*s", s,
                 steps, (int)k->len, k->b);
        FZ_CHECK(vl == v->len && (vl == 0 || memcmp(val, v->p, vl) == 0),
                 "iteration (ks %u, step %zu): value of %.*s differs", s, steps, (int)k->len, k->b);
        if (backward) {
            tind_iter_prev(it);
            r--;
        } else {
            tind_iter_next(it);
            r++;
        }
        steps++;
    }
    FZ_CHECK(tind_iter_status(it) == TIND_OK, "iteration status: %s", tind_last_error());
    tind_iter_close(it);
}

static void fzo_check_all(struct fzo *f)
{
    for (unsigned s = 0; s < FZO_KS; s++)
        for (unsigned id = 0; id < FZO_KEYS; id++) fzo_check_get(f->ks[s], NULL, &f->cur, s, id);
}

/* ---- operations --------------------------------------------------------------------- */

static void fzo_put_or_delete(struct fzo *f, int del)
{
    static uint8_t val[4096];
    unsigned s = fz_u8(&f->in) & 1, id = fzo_key_id(f);
    const struct fzo_key *k = &fzo_keys[id];
    int rc;
    if (del) {
        rc = tind_delete(f->ks[s], k->b, k->len);
        FZ_CHECK(rc == TIND_OK, "delete: %d %s", rc, tind_last_error());
        fzo_model_set(&f->cur, s, id, NULL, 0, 0);
    } else {
        size_t vl = fzo_value(f, val, sizeof val);
        rc = tind_put(f->ks[s], k->b, k->len, val, vl);
        FZ_CHECK(rc == TIND_OK, "put: %d %s", rc, tind_last_error());
        fzo_model_set(&f->cur, s, id, val, vl, 1);
    }
}

static void fzo_batch(struct fzo *f)
{
    static uint8_t val[4096];
    tind_batch *b;
    int rc = tind_batch_new(&b);
    FZ_CHECK(rc == TIND_OK, "batch_new: %s", tind_last_error());
    unsigned n = 1 + fz_u8(&f->in) % 8;
    struct fzo_model *after = fzo_model_copy(&f->cur);
    for (unsigned i = 0; i < n; i++) {
        unsigned op = fz_u8(&f->in), s = op & 1, id = fzo_key_id(f);
        const struct fzo_key *k = &fzo_keys[id];
        if (op & 2) {
            rc = tind_batch_delete(b, f->ks[s], k->b, k->len);
            fzo_model_set(after, s, id, NULL, 0, 0);
        } else {
            size_t vl = fzo_value(f, val, sizeof val);
            rc = tind_batch_put(b, f->ks[s], k->b, k->len, val, vl);
            fzo_model_set(after, s, id, val, vl, 1);
        }
        FZ_CHECK(rc == TIND_OK, "batch add: %s", tind_last_error());
    }
    FZ_CHECK(tind_batch_count(b) == n, "batch count %zu, added %u", tind_batch_count(b), n);
    rc = tind_batch_commit(f->db, b, TIND_DURABILITY_BUFFERED);
    FZ_CHECK(rc == TIND_OK, "batch_commit: %d %s", rc, tind_last_error());
    tind_batch_free(b);
    fzo_model_free(&f->cur);
    f->cur = *after;
    free(after);
}

static void fzo_release_snapshots(struct fzo *f)
{
    for (int i = 0; i < FZO_SNAPS; i++) {
        if (!f->snap[i]) continue;
        tind_snapshot_close(f->snap[i]);
        f->snap[i] = NULL;
        fzo_model_free(f->snapm[i]);
        free(f->snapm[i]);
        f->snapm[i] = NULL;
    }
}

/* Picks an open snapshot from the next byte, or NULL for the latest state. */
static int fzo_pick_snapshot(struct fzo *f)
{
    unsigned b = fz_u8(&f->in);
    if (!(b & 1)) return -1;
    int i = (int)((b >> 1) % FZO_SNAPS);
    return f->snap[i] ? i : -1;
}

static void fzo_step(struct fzo *f)
{
    unsigned op = fz_u8(&f->in) % 16;
    int rc;
    switch (op) {
    case 0: case 1: case 2:
        fzo_put_or_delete(f, 0);
        break;
    case 3: case 4:
        fzo_put_or_delete(f, 1);
        break;
    case 5:
        fzo_batch(f);
        break;
    case 6: case 7: {
        int i = fzo_pick_snapshot(f);
        unsigned s = fz_u8(&f->in) & 1, id = fzo_key_id(f);
        if (i < 0) fzo_check_get(f->ks[s], NULL, &f->cur, s, id);
        else fzo_check_get(f->ks[s], f->snap[i], f->snapm[i], s, id);
        break;
    }
    case 8: case 9: {
        int i = fzo_pick_snapshot(f);
        unsigned s = fz_u8(&f->in) & 1;
        if (i < 0) fzo_check_iter(f, NULL, &f->cur, s);
        else fzo_check_iter(f, f->snap[i], f->snapm[i], s);
        break;
    }
    case 10: {
        int i = (int)(fz_u8(&f->in) % FZO_SNAPS);
        if (f->snap[i]) break;
        rc = tind_snapshot_open(f->db, &f->snap[i]);
        FZ_CHECK(rc == TIND_OK, "snapshot_open: %s", tind_last_error());
        f->snapm[i] = fzo_model_copy(&f->cur);
        break;
    }
    case 11: {
        int i = (int)(fz_u8(&f->in) % FZO_SNAPS);
        if (!f->snap[i]) break;
        /* Read one key through it before letting it go. */
        unsigned s = fz_u8(&f->in) & 1, id = fzo_key_id(f);
        fzo_check_get(f->ks[s], f->snap[i], f->snapm[i], s, id);
        tind_snapshot_close(f->snap[i]);
        f->snap[i] = NULL;
        fzo_model_free(f->snapm[i]);
        free(f->snapm[i]);
        f->snapm[i] = NULL;
        break;
    }
    case 12: {
        unsigned s = fz_u8(&f->in) & 1;
        rc = tind_keyspace_flush(f->ks[s]);
        FZ_CHECK(rc == TIND_OK, "flush: %d %s", rc, tind_last_error());
        break;
    }
    case 13: {
        unsigned s = fz_u8(&f->in) & 1;
        rc = tind_keyspace_compact(f->ks[s]);
        FZ_CHECK(rc == TIND_OK, "compact: %d %s", rc, tind_last_error());
        break;
    }
    case 14: {
        fzo_release_snapshots(f);
        rc = tind_close(f->db);
        FZ_CHECK(rc == TIND_OK, "close: %d %s", rc, tind_last_error());
        f->db = NULL;
        fzo_open(f);
        fzo_check_all(f);
        break;
    }
    default: {
        /* A full scan of one keyspace, both ways. */
        unsigned s = fz_u8(&f->in) & 1;
        static const uint8_t whole[] = {0, 0, 0, 0};
        struct fz_in saved = f->in;
        f->in.p = whole;
        f->in.n = sizeof whole;
        f->in.off = 0;
        fzo_check_iter(f, NULL, &f->cur, s);
        f->in.off = 0;
        const uint8_t back[] = {4, 0, 0, 0};
        f->in.p = back;
        fzo_check_iter(f, NULL, &f->cur, s);
        f->in = saved;
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fzo_root) {
        fzo_init_keys();
        fzo_root = fz_mkdtemp("ops");
        FZ_CHECK(fzo_root != NULL, "cannot make a temporary directory");
        fz_join(fzo_path, sizeof fzo_path, fzo_root, "db");
    }
    FZ_CHECK(fz_rmtree(fzo_path) == 0, "cannot remove %s", fzo_path);
    struct fzo *f = calloc(1, sizeof *f);
    FZ_CHECK(f != NULL, "out of memory");
    f->in = (struct fz_in){data, size, 0};
    fzo_configure(f);
    fzo_open(f);
    for (int n = 0; fz_more(&f->in) && n < FZO_MAX_OPS; n++) fzo_step(f);
    fzo_check_all(f);
    fzo_release_snapshots(f);
    int rc = tind_close(f->db);
    FZ_CHECK(rc == TIND_OK, "close: %d %s", rc, tind_last_error());
    fzo_model_free(&f->cur);
    free(f);
    return 0;
}
