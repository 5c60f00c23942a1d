/* A randomized differential test: tind against a sorted array of byte
 * strings, over two keyspaces. Random puts, deletes, cross-keyspace batches,
 * point reads, bounded scans walked in both directions, prefix scans,
 * snapshots (each with a copy of the model taken when it opened), iterators
 * kept open across later writes, keyspace drops, and close/reopen.
 *
 * The seed is printed at the start; TIND_SEED=<n> replays a run, and
 * TIND_MODEL_STEPS=<n> changes its length. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/testutil.h"
#include "tind.h"

/* ---- the reference model: a sorted array of owned byte strings ----------------------- */

typedef struct ment {
    uint8_t *k, *v;
    size_t kl, vl;
} ment;

typedef struct model {
    ment *e;
    size_t n, cap;
} model;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    cr_assert_not_null(p, "out of memory in the model");
    return p;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = xmalloc(n);
    if (n) memcpy(d, p, n);
    return d;
}

/* First index whose key is >= k. */
static size_t m_lower(const model *m, const void *k, size_t kl)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tu_keycmp(m->e[mid].k, m->e[mid].kl, k, kl) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static const ment *m_find(const model *m, const void *k, size_t kl)
{
    size_t i = m_lower(m, k, kl);
    if (i < m->n && tu_keycmp(m->e[i].k, m->e[i].kl, k, kl) == 0) return &m->e[i];
    return NULL;
}

static void m_set(model *m, const void *k, size_t kl, const void *v, size_t vl)
{
    size_t i = m_lower(m, k, kl);
    if (i < m->n && tu_keycmp(m->e[i].k, m->e[i].kl, k, kl) == 0) {
        free(m->e[i].v);
        m->e[i].v = dup_bytes(v, vl);
        m->e[i].vl = vl;
        return;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->e = realloc(m->e, m->cap * sizeof *m->e);
        cr_assert_not_null(m->e);
    }
    memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof *m->e);
    m->e[i] = (ment){dup_bytes(k, kl), dup_bytes(v, vl), kl, vl};
    m->n++;
}

static void m_del(model *m, const void *k, size_t kl)
{
    size_t i = m_lower(m, k, kl);
    if (i < m->n && tu_keycmp(m->e[i].k, m->e[i].kl, k, kl) == 0) {
        free(m->e[i].k);
        free(m->e[i].v);
        memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof *m->e);
        m->n--;
    }
}

static void m_clear(model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].k);
        free(m->e[i].v);
    }
    free(m->e);
    *m = (model){0};
}

static void m_copy(model *dst, const model *src)
{
    *dst = (model){0};
    if (!src->n) return;
    dst->e = xmalloc(src->n * sizeof *dst->e);
    dst->cap = dst->n = src->n;
    for (size_t i = 0; i < src->n; i++)
        dst->e[i] = (ment){dup_bytes(src->e[i].k, src->e[i].kl), dup_bytes(src->e[i].v, src->e[i].vl),
                           src->e[i].kl, src->e[i].vl};
}

/* ---- the run's state -------------------------------------------------------------------- */

enum { NKS = 2, NSNAP = 3, NLIVE = 2, MAXK = 5 };

typedef struct bytes {
    uint8_t p[MAXK];
    size_t n;
} bytes;

/* Which keys an iterator covers: [lo, hi) of indexes into its model. */
typedef struct view {
    const model *m;
    size_t lo, hi;
} view;

struct snap {
    tind_snapshot *s;
    model m[NKS];
    uint64_t opened_at;
};

struct live_iter {
    tind_iter *it;
    int ks;
    model m;          /* the keyspace as of the iterator's open */
    int has_lo, has_hi, is_prefix;
    bytes lo, hi;     /* bounds, or the prefix in lo */
    uint64_t opened_at;
};

typedef struct run {
    const char *name;
    uint64_t seed, rng;
    uint64_t step;
    char *dir;
    tind_options opts;
    tind_db *db;
    tind_keyspace *ks[NKS];
    model m[NKS];
    struct snap snaps[NSNAP];
    struct live_iter live[NLIVE];
    unsigned alphabet_size;
    /* counters, printed at the end */
    uint64_t n_put, n_del, n_batch, n_get, n_scan, n_prefix, n_snap, n_live, n_reopen, n_drop, n_steps_walked;
    uint64_t n_flush, n_compact;
    /* keyspace options of the run (flush-heavy runs use tiny memtables and blocks) */
    uint64_t memtable_bytes;
    uint32_t block_size;
    uint32_t restart_interval; /* 0: the default */
    uint32_t bloom_bits;       /* with set_bloom */
    int set_bloom;
    int compression;           /* TIND_COMPRESSION_* for every level, with set_compression */
    int set_compression;
    int seed_given;            /* seed set by the caller, not drawn */
    unsigned flush_per_mille;
    int strategy;        /* TIND_COMPACTION_* */
    unsigned compact_per_mille;
} run;

static const char *ks_names[NKS] = {"alpha", "beta"};
static const uint8_t alphabet[] = {'a', 0xff, 0x00, 'b', 'c'};

#define FAILCTX "%s seed %llu step %llu: "
#define FAILARGS(r) (r)->name, (unsigned long long)(r)->seed, (unsigned long long)(r)->step

static uint64_t rnd(run *r, uint64_t n) { return tu_below(&r->rng, n); }

static bytes rand_key(run *r)
{
    bytes b;
    b.n = 1 + (size_t)rnd(r, 4);
    if (rnd(r, 16) == 0) b.n = MAXK;
    for (size_t i = 0; i < b.n; i++) b.p[i] = alphabet[rnd(r, r->alphabet_size)];
    return b;
}

/* A value: mostly short, sometimes empty, sometimes a few hundred bytes. */
static size_t rand_value(run *r, uint8_t *buf, size_t cap)
{
    uint64_t c = rnd(r, 20);
    size_t n = c == 0 ? 0 : c < 18 ? 1 + (size_t)rnd(r, 16) : 100 + (size_t)rnd(r, 900);
    if (n > cap) n = cap;
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rnd(r, 256);
    return n;
}

static void open_db(run *r)
{
    int rc = tind_open(r->dir, &r->opts, &r->db);
    cr_assert_eq(rc, TIND_OK, FAILCTX "tind_open: %s", FAILARGS(r), tind_last_error());
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    if (r->memtable_bytes) ko.memtable_bytes = r->memtable_bytes;
    if (r->block_size) ko.block_size = r->block_size;
    if (r->restart_interval) ko.restart_interval = r->restart_interval;
    if (r->set_bloom) ko.bloom_bits_per_key = r->bloom_bits;
    if (r->set_compression)
        for (int l = 0; l < TIND_LEVELS; l++) ko.compression[l] = r->compression;
    ko.compaction = r->strategy;
    if (r->memtable_bytes) {
        /* Tiny tables and early compactions: every strategy's machinery runs. */
        ko.table_target_bytes = 64u << 10;
        ko.l0_trigger = 2;
    }
    for (int i = 0; i < NKS; i++) {
        rc = tind_keyspace_open(r->db, ks_names[i], &ko, &r->ks[i]);
        cr_assert_eq(rc, TIND_OK, FAILCTX "keyspace_open %s: %s", FAILARGS(r), ks_names[i], tind_last_error());
    }
}

/* ---- checks ------------------------------------------------------------------------------- */

static void check_get(run *r, int k, tind_snapshot *s, const model *m, const bytes *key, const char *what)
{
    void *v = NULL;
    size_t vl = 0;
    int rc = s ? tind_snapshot_get(s, r->ks[k], key->p, key->n, &v, &vl) : tind_get(r->ks[k], key->p, key->n, &v, &vl);
    const ment *e = m_find(m, key->p, key->n);
    if (!e) {
        cr_assert_eq(rc, TIND_NOT_FOUND, FAILCTX "%s get %s in %s: want not found, got %d (%s) value %s", FAILARGS(r),
                     what, tu_hex(key->p, key->n), ks_names[k], rc, tind_strerror(rc),
                     rc == TIND_OK ? tu_hex(v, vl) : "-");
        return;
    }
    cr_assert_eq(rc, TIND_OK, FAILCTX "%s get %s in %s: want %s, got %d (%s): %s", FAILARGS(r), what,
                 tu_hex(key->p, key->n), ks_names[k], tu_hex(e->v, e->vl), rc, tind_strerror(rc), tind_last_error());
    cr_assert_not_null(v, FAILCTX "%s get %s: NULL value", FAILARGS(r), what, tu_hex(key->p, key->n));
    cr_assert(vl == e->vl && memcmp(v, e->v, vl) == 0, FAILCTX "%s get %s in %s: got %s, want %s", FAILARGS(r), what,
              tu_hex(key->p, key->n), ks_names[k], tu_hex(v, vl), tu_hex(e->v, e->vl));
    tind_free(v);
}

/* check_get of the latest value, read in place (tind_get_pinned). */
static void check_get_pinned(run *r, int k, const model *m, const bytes *key, const char *what)
{
    tind_pinned p;
    int rc = tind_get_pinned(r->ks[k], key->p, key->n, &p);
    const ment *e = m_find(m, key->p, key->n);
    if (!e) {
        cr_assert_eq(rc, TIND_NOT_FOUND, FAILCTX "%s pinned get %s in %s: want not found, got %d (%s)", FAILARGS(r),
                     what, tu_hex(key->p, key->n), ks_names[k], rc, tind_strerror(rc));
        tind_pinned_release(&p);
        return;
    }
    cr_assert_eq(rc, TIND_OK, FAILCTX "%s pinned get %s in %s: want %s, got %d (%s): %s", FAILARGS(r), what,
                 tu_hex(key->p, key->n), ks_names[k], tu_hex(e->v, e->vl), rc, tind_strerror(rc), tind_last_error());
    cr_assert(p.data && p.len == e->vl && memcmp(p.data, e->v, p.len) == 0,
              FAILCTX "%s pinned get %s in %s: got %s, want %s", FAILARGS(r), what, tu_hex(key->p, key->n),
              ks_names[k], tu_hex(p.data, p.len), tu_hex(e->v, e->vl));
    tind_pinned_release(&p);
}

/* The iterator must be at view index pos (lo <= pos < hi), or invalid when pos is -1. */
static void check_pos(run *r, tind_iter *it, const view *vw, long pos, const char *what, int stepno)
{
    size_t kl = 0, vl = 0;
    const void *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
    if (pos < 0) {
        cr_assert_not(tind_iter_valid(it), FAILCTX "%s move %d: want the end, iterator at %s", FAILARGS(r), what, stepno,
                      tu_hex(k, kl));
        cr_assert_null(k, FAILCTX "%s move %d: key pointer while invalid", FAILARGS(r), what, stepno);
        cr_assert_eq(tind_iter_status(it), TIND_OK, FAILCTX "%s move %d: status %d", FAILARGS(r), what, stepno,
                     tind_iter_status(it));
        return;
    }
    const ment *e = &vw->m->e[pos];
    cr_assert(tind_iter_valid(it), FAILCTX "%s move %d: want %s, iterator invalid (status %d)", FAILARGS(r), what,
              stepno, tu_hex(e->k, e->kl), tind_iter_status(it));
    cr_assert(kl == e->kl && memcmp(k, e->k, kl) == 0, FAILCTX "%s move %d: key %s, want %s", FAILARGS(r), what, stepno,
              tu_hex(k, kl), tu_hex(e->k, e->kl));
    cr_assert(v != NULL && vl == e->vl && (vl == 0 || memcmp(v, e->v, vl) == 0),
              FAILCTX "%s move %d: key %s value %s, want %s", FAILARGS(r), what, stepno, tu_hex(e->k, e->kl),
              tu_hex(v, vl), tu_hex(e->v, e->vl));
}

static long view_seek(const view *vw, const bytes *k)
{
    size_t i = m_lower(vw->m, k->p, k->n);
    if (i < vw->lo) i = vw->lo;
    return i < vw->hi ? (long)i : -1;
}

static long view_seek_for_prev(const view *vw, const bytes *k)
{
    size_t i = m_lower(vw->m, k->p, k->n);
    if (i < vw->m->n && tu_keycmp(vw->m->e[i].k, vw->m->e[i].kl, k->p, k->n) == 0) i++;
    /* i is now the first index > k; the answer is i - 1, clamped to the view */
    if (i > vw->hi) i = vw->hi;
    return i > vw->lo ? (long)i - 1 : -1;
}

/* A full forward and backward scan, then a random walk of `moves` moves. */
static void walk(run *r, tind_iter *it, const view *vw, int moves, const char *what)
{
    long pos;
    int n = 0;
    tind_iter_seek_first(it);
    for (pos = vw->lo < vw->hi ? (long)vw->lo : -1; pos >= 0; pos = pos + 1 < (long)vw->hi ? pos + 1 : -1) {
        check_pos(r, it, vw, pos, what, n++);
        tind_iter_next(it);
    }
    check_pos(r, it, vw, -1, what, n++);
    tind_iter_seek_last(it);
    for (pos = vw->lo < vw->hi ? (long)vw->hi - 1 : -1; pos >= 0; pos = pos > (long)vw->lo ? pos - 1 : -1) {
        check_pos(r, it, vw, pos, what, n++);
        tind_iter_prev(it);
    }
    check_pos(r, it, vw, -1, what, n++);

    pos = -1;
    for (int i = 0; i < moves; i++) {
        uint64_t op = rnd(r, 16);
        if (op < 6) {
            tind_iter_next(it);
            if (pos >= 0) pos = pos + 1 < (long)vw->hi ? pos + 1 : -1;
        } else if (op < 12) {
            tind_iter_prev(it);
            if (pos >= 0) pos = pos > (long)vw->lo ? pos - 1 : -1;
        } else if (op == 12) {
            tind_iter_seek_first(it);
            pos = vw->lo < vw->hi ? (long)vw->lo : -1;
        } else if (op == 13) {
            tind_iter_seek_last(it);
            pos = vw->lo < vw->hi ? (long)vw->hi - 1 : -1;
        } else {
            bytes k = rand_key(r);
            if (op == 14) {
                tind_iter_seek(it, k.p, k.n);
                pos = view_seek(vw, &k);
            } else {
                tind_iter_seek_for_prev(it, k.p, k.n);
                pos = view_seek_for_prev(vw, &k);
            }
        }
        check_pos(r, it, vw, pos, what, n++);
    }
    r->n_steps_walked += (uint64_t)n;
}

/* The view of m that bounds [lo, hi) select. */
static view bounded_view(const model *m, const bytes *lo, const bytes *hi)
{
    view vw = {m, 0, m->n};
    if (lo) vw.lo = m_lower(m, lo->p, lo->n);
    if (hi) vw.hi = m_lower(m, hi->p, hi->n);
    if (vw.hi < vw.lo) vw.hi = vw.lo;
    return vw;
}

static view prefix_view(const model *m, const bytes *p)
{
    view vw = {m, m_lower(m, p->p, p->n), 0};
    vw.hi = vw.lo;
    while (vw.hi < m->n && m->e[vw.hi].kl >= p->n && memcmp(m->e[vw.hi].k, p->p, p->n) == 0) vw.hi++;
    return vw;
}

static void full_check(run *r, int k)
{
    tind_iter *it = NULL;
    int rc = tind_iter_open(r->ks[k], NULL, NULL, &it);
    cr_assert_eq(rc, TIND_OK, FAILCTX "iter_open: %s", FAILARGS(r), tind_last_error());
    view vw = {&r->m[k], 0, r->m[k].n};
    char what[64];
    snprintf(what, sizeof what, "full scan of %s", ks_names[k]);
    walk(r, it, &vw, 0, what);
    tind_iter_close(it);
}

/* ---- operations ---------------------------------------------------------------------------- */

static void op_put(run *r)
{
    int k = (int)rnd(r, NKS);
    bytes key = rand_key(r);
    uint8_t v[1000];
    size_t vl = rand_value(r, v, sizeof v);
    int rc = tind_put(r->ks[k], key.p, key.n, v, vl);
    cr_assert_eq(rc, TIND_OK, FAILCTX "put %s: %s", FAILARGS(r), tu_hex(key.p, key.n), tind_last_error());
    m_set(&r->m[k], key.p, key.n, v, vl);
    r->n_put++;
}

static void op_delete(run *r)
{
    int k = (int)rnd(r, NKS);
    /* mostly keys that exist, so that deletes do something */
    bytes key = rand_key(r);
    if (r->m[k].n && rnd(r, 3)) {
        const ment *e = &r->m[k].e[rnd(r, r->m[k].n)];
        memcpy(key.p, e->k, e->kl);
        key.n = e->kl;
    }
    int rc = tind_delete(r->ks[k], key.p, key.n);
    cr_assert_eq(rc, TIND_OK, FAILCTX "delete %s: %s", FAILARGS(r), tu_hex(key.p, key.n), tind_last_error());
    m_del(&r->m[k], key.p, key.n);
    r->n_del++;
}

static void op_batch(run *r)
{
    tind_batch *b = NULL;
    int rc = tind_batch_new(&b);
    cr_assert_eq(rc, TIND_OK);
    /* apply to copies, so that the model changes only if the commit succeeds */
    int nops = 1 + (int)rnd(r, 12);
    struct {
        int k, del;
        bytes key;
        uint8_t v[64];
        size_t vl;
    } ops[12];
    for (int i = 0; i < nops; i++) {
        ops[i].k = (int)rnd(r, NKS);
        ops[i].del = rnd(r, 3) == 0;
        ops[i].key = rand_key(r);
        if (i > 0 && rnd(r, 4) == 0) ops[i].key = ops[rnd(r, (uint64_t)i)].key; /* same key again */
        ops[i].vl = ops[i].del ? 0 : rand_value(r, ops[i].v, sizeof ops[i].v);
        rc = ops[i].del ? tind_batch_delete(b, r->ks[ops[i].k], ops[i].key.p, ops[i].key.n)
                        : tind_batch_put(b, r->ks[ops[i].k], ops[i].key.p, ops[i].key.n, ops[i].v, ops[i].vl);
        cr_assert_eq(rc, TIND_OK, FAILCTX "batch op %d: %s", FAILARGS(r), i, tind_last_error());
    }
    cr_assert_eq(tind_batch_count(b), (size_t)nops);
    int dur = rnd(r, 64) == 0 ? TIND_DURABILITY_SYNC_DATA : TIND_DURABILITY_BUFFERED;
    rc = tind_batch_commit(r->db, b, dur);
    cr_assert_eq(rc, TIND_OK, FAILCTX "batch commit of %d ops: %s", FAILARGS(r), nops, tind_last_error());
    for (int i = 0; i < nops; i++) {
        if (ops[i].del) m_del(&r->m[ops[i].k], ops[i].key.p, ops[i].key.n);
        else m_set(&r->m[ops[i].k], ops[i].key.p, ops[i].key.n, ops[i].v, ops[i].vl);
    }
    tind_batch_free(b);
    r->n_batch++;
}

static struct snap *some_snapshot(run *r)
{
    int open[NSNAP], n = 0;
    for (int i = 0; i < NSNAP; i++)
        if (r->snaps[i].s) open[n++] = i;
    return n ? &r->snaps[open[rnd(r, (uint64_t)n)]] : NULL;
}

static void op_get(run *r)
{
    int k = (int)rnd(r, NKS);
    bytes key = rand_key(r);
    check_get(r, k, NULL, &r->m[k], &key, "current");
    check_get_pinned(r, k, &r->m[k], &key, "current");
    struct snap *s = some_snapshot(r);
    if (s) {
        char what[48];
        snprintf(what, sizeof what, "snapshot from step %llu", (unsigned long long)s->opened_at);
        check_get(r, k, s->s, &s->m[k], &key, what);
    }
    r->n_get++;
}

static void op_scan(run *r)
{
    int k = (int)rnd(r, NKS);
    struct snap *s = rnd(r, 2) ? some_snapshot(r) : NULL;
    const model *m = s ? &s->m[k] : &r->m[k];
    bytes lo = rand_key(r), hi = rand_key(r);
    int has_lo = rnd(r, 2), has_hi = rnd(r, 2);
    /* mostly lo < hi, sometimes not */
    if (has_lo && has_hi && rnd(r, 8) && tu_keycmp(lo.p, lo.n, hi.p, hi.n) > 0) {
        bytes t = lo;
        lo = hi;
        hi = t;
    }
    tind_bounds b = {has_lo ? lo.p : NULL, has_lo ? lo.n : 0, has_hi ? hi.p : NULL, has_hi ? hi.n : 0};
    tind_iter *it = NULL;
    int rc = tind_iter_open(r->ks[k], s ? s->s : NULL, (has_lo || has_hi || rnd(r, 2)) ? &b : NULL, &it);
    cr_assert_eq(rc, TIND_OK, FAILCTX "iter_open: %s", FAILARGS(r), tind_last_error());
    view vw = bounded_view(m, has_lo ? &lo : NULL, has_hi ? &hi : NULL);
    char what[256];
    snprintf(what, sizeof what, "scan of %s%s lower %s upper %s", ks_names[k], s ? " (snapshot)" : "",
             has_lo ? tu_hex(lo.p, lo.n) : "none", has_hi ? tu_hex(hi.p, hi.n) : "none");
    walk(r, it, &vw, 40, what);
    tind_iter_close(it);
    r->n_scan++;
}

static void op_prefix(run *r)
{
    int k = (int)rnd(r, NKS);
    struct snap *s = rnd(r, 2) ? some_snapshot(r) : NULL;
    const model *m = s ? &s->m[k] : &r->m[k];
    bytes p = rand_key(r);
    if (p.n > 3) p.n = 1 + (size_t)rnd(r, 3);
    tind_iter *it = NULL;
    int rc = tind_iter_open_prefix(r->ks[k], s ? s->s : NULL, p.p, p.n, &it);
    cr_assert_eq(rc, TIND_OK, FAILCTX "iter_open_prefix: %s", FAILARGS(r), tind_last_error());
    view vw = prefix_view(m, &p);
    char what[128];
    snprintf(what, sizeof what, "prefix scan of %s%s prefix %s", ks_names[k], s ? " (snapshot)" : "",
             tu_hex(p.p, p.n));
    walk(r, it, &vw, 20, what);
    tind_iter_close(it);
    r->n_prefix++;
}

static void snap_close(struct snap *s)
{
    tind_snapshot_close(s->s);
    s->s = NULL;
    for (int k = 0; k < NKS; k++) m_clear(&s->m[k]);
}

static void op_snapshot(run *r)
{
    int slot = (int)rnd(r, NSNAP);
    struct snap *s = &r->snaps[slot];
    if (s->s) {
        /* check a few keys through it, then close it */
        for (int i = 0; i < 4; i++) {
            int k = (int)rnd(r, NKS);
            bytes key = rand_key(r);
            check_get(r, k, s->s, &s->m[k], &key, "snapshot before close");
        }
        snap_close(s);
        return;
    }
    int rc = tind_snapshot_open(r->db, &s->s);
    cr_assert_eq(rc, TIND_OK, FAILCTX "snapshot_open: %s", FAILARGS(r), tind_last_error());
    for (int k = 0; k < NKS; k++) m_copy(&s->m[k], &r->m[k]);
    s->opened_at = r->step;
    r->n_snap++;
}

static void live_check_close(run *r, struct live_iter *l)
{
    view vw = l->is_prefix ? prefix_view(&l->m, &l->lo)
                           : bounded_view(&l->m, l->has_lo ? &l->lo : NULL, l->has_hi ? &l->hi : NULL);
    char what[128];
    snprintf(what, sizeof what, "iterator on %s opened at step %llu", ks_names[l->ks],
             (unsigned long long)l->opened_at);
    walk(r, l->it, &vw, 30, what);
    tind_iter_close(l->it);
    l->it = NULL;
    m_clear(&l->m);
}

static void op_live_iter(run *r)
{
    struct live_iter *l = &r->live[rnd(r, NLIVE)];
    if (l->it) {
        live_check_close(r, l);
        return;
    }
    l->ks = (int)rnd(r, NKS);
    l->is_prefix = rnd(r, 3) == 0;
    l->lo = rand_key(r);
    l->hi = rand_key(r);
    int rc;
    if (l->is_prefix) {
        if (l->lo.n > 2) l->lo.n = 2;
        rc = tind_iter_open_prefix(r->ks[l->ks], NULL, l->lo.p, l->lo.n, &l->it);
    } else {
        l->has_lo = rnd(r, 2);
        l->has_hi = rnd(r, 2);
        tind_bounds b = {l->has_lo ? l->lo.p : NULL, l->lo.n, l->has_hi ? l->hi.p : NULL, l->hi.n};
        rc = tind_iter_open(r->ks[l->ks], NULL, &b, &l->it);
    }
    cr_assert_eq(rc, TIND_OK, FAILCTX "iter_open: %s", FAILARGS(r), tind_last_error());
    m_copy(&l->m, &r->m[l->ks]);
    l->opened_at = r->step;
    /* position it now, so that it holds a position while writes happen */
    tind_iter_seek_first(l->it);
    r->n_live++;
}

static void close_all_views(run *r)
{
    for (int i = 0; i < NLIVE; i++)
        if (r->live[i].it) live_check_close(r, &r->live[i]);
    for (int i = 0; i < NSNAP; i++)
        if (r->snaps[i].s) snap_close(&r->snaps[i]);
}

static void op_reopen(run *r)
{
    close_all_views(r);
    int rc = tind_close(r->db);
    cr_assert_eq(rc, TIND_OK, FAILCTX "close: %s", FAILARGS(r), tind_last_error());
    r->db = NULL;
    open_db(r);
    for (int k = 0; k < NKS; k++) full_check(r, k);
    r->n_reopen++;
}

static void op_flush(run *r)
{
    int k = (int)rnd(r, NKS);
    int rc = tind_keyspace_flush(r->ks[k]);
    cr_assert_eq(rc, TIND_OK, FAILCTX "flush %s: %s", FAILARGS(r), ks_names[k], tind_last_error());
    r->n_flush++;
}

static void op_compact(run *r)
{
    int k = (int)rnd(r, NKS);
    int rc = tind_keyspace_compact(r->ks[k]);
    cr_assert_eq(rc, TIND_OK, FAILCTX "compact %s: %s", FAILARGS(r), ks_names[k], tind_last_error());
    r->n_compact++;
}

static void op_drop(run *r)
{
    /* only with no snapshot or iterator open: their models would need the drop */
    for (int i = 0; i < NSNAP; i++)
        if (r->snaps[i].s) return;
    for (int i = 0; i < NLIVE; i++)
        if (r->live[i].it) return;
    int k = (int)rnd(r, NKS);
    int rc = tind_keyspace_drop(r->db, ks_names[k]);
    cr_assert_eq(rc, TIND_OK, FAILCTX "drop %s: %s", FAILARGS(r), ks_names[k], tind_last_error());
    rc = tind_keyspace_open(r->db, ks_names[k], NULL, &r->ks[k]);
    cr_assert_eq(rc, TIND_OK, FAILCTX "recreate %s: %s", FAILARGS(r), ks_names[k], tind_last_error());
    m_clear(&r->m[k]);
    full_check(r, k);
    r->n_drop++;
}

/* The run's directory, removed by the fixture even when a check fails. */
static char *g_model_dir;

static void model_teardown(void)
{
    if (g_model_dir) tu_rmtree(g_model_dir);
    free(g_model_dir);
    g_model_dir = NULL;
}

TestSuite(model, .fini = model_teardown);

static uint64_t steps_from_env(uint64_t dflt)
{
    const char *e = getenv("TIND_MODEL_STEPS");
    if (e && *e) return strtoull(e, NULL, 0);
    return dflt;
}

static void run_model_with(run *r, const char *name, uint64_t steps, unsigned alphabet_size, uint64_t journal_max,
                           unsigned reopen_per_mille);

static void run_model(const char *name, uint64_t steps, unsigned alphabet_size, uint64_t journal_max,
                      unsigned reopen_per_mille)
{
    run *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    run_model_with(r, name, steps, alphabet_size, journal_max, reopen_per_mille);
}

static void run_model_with(run *r, const char *name, uint64_t steps, unsigned alphabet_size, uint64_t journal_max,
                           unsigned reopen_per_mille)
{
    r->name = name;
    if (!r->seed_given) r->seed = tu_seed(name);
    r->rng = r->seed;
    r->alphabet_size = alphabet_size;
    r->dir = tu_mkdtemp("model");
    cr_assert_not_null(r->dir);
    g_model_dir = r->dir; /* owned by the fixture from here */
    tind_options_init(&r->opts);
    r->opts.journal_max_bytes = journal_max;
    open_db(r);
    steps = steps_from_env(steps);
    cr_log_info("%s: seed %llu, %llu steps", name, (unsigned long long)r->seed, (unsigned long long)steps);

    for (r->step = 0; r->step < steps; r->step++) {
        uint64_t c = rnd(r, 1000);
        if (c < 280) op_put(r);
        else if (c < 400) op_delete(r);
        else if (c < 480) op_batch(r);
        else if (c < 640) op_get(r);
        else if (c < 740) op_scan(r);
        else if (c < 800) op_prefix(r);
        else if (c < 850) op_snapshot(r);
        else if (c < 880) op_live_iter(r);
        else if (c < 880 + reopen_per_mille) op_reopen(r);
        else if (c < 884 + reopen_per_mille) op_drop(r);
        else if (c < 900 + reopen_per_mille) full_check(r, (int)rnd(r, NKS));
        else if (c < 900 + reopen_per_mille + r->flush_per_mille) op_flush(r);
        else if (c < 900 + reopen_per_mille + r->flush_per_mille + r->compact_per_mille) op_compact(r);
        else op_put(r);
    }
    close_all_views(r);
    for (int k = 0; k < NKS; k++) full_check(r, k);
    op_reopen(r);
    /* every key of the alphabet up to length 2, read point-wise */
    for (int k = 0; k < NKS; k++) {
        for (unsigned a = 0; a < alphabet_size; a++) {
            bytes key = {{alphabet[a]}, 1};
            check_get(r, k, NULL, &r->m[k], &key, "final");
            check_get_pinned(r, k, &r->m[k], &key, "final");
            for (unsigned b = 0; b < alphabet_size; b++) {
                key.p[1] = alphabet[b];
                key.n = 2;
                check_get(r, k, NULL, &r->m[k], &key, "final");
                check_get_pinned(r, k, &r->m[k], &key, "final");
            }
        }
    }
    fprintf(stderr,
            "%s: seed %llu ok: %llu puts, %llu deletes, %llu batches, %llu gets, %llu scans, %llu prefix scans, "
            "%llu snapshots, %llu long iterators, %llu reopens, %llu drops, %llu flushes, %llu compactions, "
            "%llu iterator positions checked; final sizes %zu and %zu\n",
            name, (unsigned long long)r->seed, (unsigned long long)r->n_put, (unsigned long long)r->n_del,
            (unsigned long long)r->n_batch, (unsigned long long)r->n_get, (unsigned long long)r->n_scan,
            (unsigned long long)r->n_prefix, (unsigned long long)r->n_snap, (unsigned long long)r->n_live,
            (unsigned long long)r->n_reopen, (unsigned long long)r->n_drop, (unsigned long long)r->n_flush,
            (unsigned long long)r->n_compact, (unsigned long long)r->n_steps_walked,
            r->m[0].n, r->m[1].n);
    cr_assert_gt(r->n_put + r->n_batch, 0);

    int rc = tind_close(r->db);
    cr_assert_eq(rc, TIND_OK, "%s: final close: %s", name, tind_last_error());
    for (int k = 0; k < NKS; k++) m_clear(&r->m[k]);
    free(r);
}

Test(model, differential_two_keyspaces)
{
    run_model("model::differential_two_keyspaces", 20000, 4, UINT64_C(64) << 20, 3);
}

/* Tiny journals (rotation on almost every reopen's worth of writes), a
 * three-letter alphabet (long runs of versions of the same keys), and
 * frequent reopens. */
Test(model, differential_small_journals_many_reopens)
{
    run_model("model::differential_small_journals_many_reopens", 12000, 3, UINT64_C(64) << 10, 10);
}

/* Tables in play: tiny memtables (flushed in the background all the time),
 * small blocks (tables of many blocks), explicit flushes, and reopens that
 * replay only what no table holds. */
Test(model, differential_with_flushes)
{
    run *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->memtable_bytes = UINT64_C(64) << 10;
    r->block_size = 256;
    r->flush_per_mille = 20;
    run_model_with(r, "model::differential_with_flushes", 15000, 4, UINT64_C(256) << 10, 5);
}

/* The same under each compaction strategy, with major compactions besides
 * the background ones. (FIFO without limits drops nothing, so the model
 * holds.) */
static void run_strategy(const char *name, int strategy)
{
    run *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->memtable_bytes = UINT64_C(64) << 10;
    r->block_size = 512;
    r->flush_per_mille = 15;
    r->compact_per_mille = 5;
    r->strategy = strategy;
    run_model_with(r, name, 10000, 4, UINT64_C(256) << 10, 4);
}

Test(model, differential_leveled_compaction)
{
    run_strategy("model::differential_leveled_compaction", TIND_COMPACTION_LEVELED);
}

Test(model, differential_tiered_compaction)
{
    run_strategy("model::differential_tiered_compaction", TIND_COMPACTION_TIERED);
}

Test(model, differential_fifo_without_limits)
{
    run_strategy("model::differential_fifo_without_limits", TIND_COMPACTION_FIFO);
}

/* ---- many seeds over option sets (make model-test SEEDS=N) ----------------------------------- */

/* The option sets the seeds rotate through: block sizes from 256 bytes to
 * 16 KiB, restart intervals from 1 to 64, no filter to 32 bits per key, each
 * compression, each strategy, tiny memtables, tiny journals. */
static const struct model_set {
    const char *name;
    uint64_t memtable_bytes, journal_max;
    uint32_t block_size, restart_interval, bloom_bits;
    int compression, strategy;
    unsigned alphabet, reopen_per_mille, flush_per_mille, compact_per_mille;
} model_sets[] = {
    {"defaults", 0, UINT64_C(64) << 10, 0, 0, 10, TIND_COMPRESSION_LZ4, TIND_COMPACTION_LEVELED, 4, 6, 0, 0},
    {"leveled-lz4-256B-blocks", UINT64_C(64) << 10, UINT64_C(256) << 10, 256, 1, 10, TIND_COMPRESSION_LZ4,
     TIND_COMPACTION_LEVELED, 4, 4, 20, 5},
    {"tiered-zstd-no-filter", UINT64_C(64) << 10, UINT64_C(256) << 10, 1024, 4, 0, TIND_COMPRESSION_ZSTD,
     TIND_COMPACTION_TIERED, 4, 4, 20, 5},
    {"fifo-uncompressed", UINT64_C(64) << 10, UINT64_C(128) << 10, 512, 16, 32, TIND_COMPRESSION_NONE,
     TIND_COMPACTION_FIFO, 4, 4, 15, 5},
    {"leveled-zstd-16K-blocks", UINT64_C(64) << 10, UINT64_C(1) << 20, 16384, 64, 4, TIND_COMPRESSION_ZSTD,
     TIND_COMPACTION_LEVELED, 5, 3, 15, 8},
    {"leveled-3-letters-reopens", UINT64_C(64) << 10, UINT64_C(64) << 10, 256, 2, 10, TIND_COMPRESSION_NONE,
     TIND_COMPACTION_LEVELED, 3, 12, 20, 5},
};
enum { MODEL_SETS = sizeof model_sets / sizeof model_sets[0] };

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *e = getenv(name);
    return e && *e ? strtoull(e, NULL, 0) : dflt;
}

/* TIND_MODEL_SEEDS runs (default: one per option set), seed i with set
 * i % MODEL_SETS (or TIND_MODEL_SET) and seed base + i; a failure names the
 * set and seed to replay alone. */
Test(model, seeds_over_option_sets)
{
    uint64_t seeds = env_u64("TIND_MODEL_SEEDS", MODEL_SETS);
    uint64_t steps = steps_from_env(2500);
    const char *one_set = getenv("TIND_MODEL_SET");
    cr_assert(!one_set || strtoull(one_set, NULL, 0) < MODEL_SETS, "TIND_MODEL_SET must be below %d", MODEL_SETS);
    uint64_t base = tu_seed("model::seeds_over_option_sets");
    for (uint64_t i = 0; i < seeds; i++) {
        unsigned si = one_set ? (unsigned)strtoull(one_set, NULL, 0) : (unsigned)(i % MODEL_SETS);
        const struct model_set *ms = &model_sets[si];
        run *r = calloc(1, sizeof *r);
        cr_assert_not_null(r);
        r->seed = base + i;
        r->seed_given = 1;
        r->memtable_bytes = ms->memtable_bytes;
        r->block_size = ms->block_size;
        r->restart_interval = ms->restart_interval;
        r->bloom_bits = ms->bloom_bits;
        r->set_bloom = 1;
        r->compression = ms->compression;
        r->set_compression = 1;
        r->strategy = ms->strategy;
        r->flush_per_mille = ms->flush_per_mille;
        r->compact_per_mille = ms->compact_per_mille;
        char name[192];
        snprintf(name, sizeof name, "model[%s] (replay: TIND_MODEL_SET=%u TIND_SEED=%llu TIND_MODEL_SEEDS=1)",
                 ms->name, si, (unsigned long long)r->seed);
        run_model_with(r, name, steps, ms->alphabet, ms->journal_max, ms->reopen_per_mille);
        model_teardown(); /* the run's directory */
    }
    fprintf(stderr, "model::seeds_over_option_sets: %llu seeds over %d option sets, %llu steps each: ok\n",
            (unsigned long long)seeds, one_set ? 1 : MODEL_SETS, (unsigned long long)steps);
}
