/* Iterator tests: positioning in both directions, direction changes, bounds,
 * prefixes (0xff edges included), tombstones and versions hidden, snapshot
 * views, and bad seeks. Expectations come from a small sorted array of the
 * live keys that each test keeps beside the database. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/expect.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* ---- fixture ------------------------------------------------------------------------ */

static char *i_dir;
static tind_db *i_db;
static tind_keyspace *i_ks;

static void iter_setup(void)
{
    i_dir = tu_mkdtemp("iter");
    cr_assert_not_null(i_dir, "mkdtemp failed");
    int rc = tind_open(i_dir, NULL, &i_db);
    cr_assert_eq(rc, TIND_OK, "tind_open: %s", tind_last_error());
    rc = tind_keyspace_open(i_db, "ks", NULL, &i_ks);
    cr_assert_eq(rc, TIND_OK, "tind_keyspace_open: %s", tind_last_error());
}

static void iter_teardown(void)
{
    if (i_db) tind_close(i_db);
    i_db = NULL;
    tu_rmtree(i_dir);
    free(i_dir);
    i_dir = NULL;
}

TestSuite(iter, .init = iter_setup, .fini = iter_teardown);

/* A byte string; K("a\0b") keeps embedded NULs. */
typedef struct bstr {
    const char *p;
    size_t n;
} bstr;
#define KI(s) {(s), sizeof(s) - 1}           /* in initializers */
#define K(s) ((bstr){(s), sizeof(s) - 1})    /* in expressions */

/* ---- the expected live map ------------------------------------------------------------- */

enum { LM_MAX = 512 };

typedef struct lent {
    uint8_t k[32];
    size_t kl;
    uint8_t v[32];
    size_t vl;
} lent;

/* Sorted live entries. */
typedef struct lmap {
    lent e[LM_MAX];
    size_t n;
} lmap;

static size_t lm_lower(const lmap *m, const void *k, size_t kl)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tu_keycmp(m->e[mid].k, m->e[mid].kl, k, kl) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void lm_set(lmap *m, const void *k, size_t kl, const void *v, size_t vl)
{
    cr_assert_leq(kl, sizeof m->e[0].k);
    cr_assert_leq(vl, sizeof m->e[0].v);
    size_t i = lm_lower(m, k, kl);
    if (i == m->n || tu_keycmp(m->e[i].k, m->e[i].kl, k, kl) != 0) {
        cr_assert_lt(m->n, LM_MAX);
        memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof m->e[0]);
        m->n++;
        memcpy(m->e[i].k, k, kl);
        m->e[i].kl = kl;
    }
    memcpy(m->e[i].v, v, vl);
    m->e[i].vl = vl;
}

static void lm_del(lmap *m, const void *k, size_t kl)
{
    size_t i = lm_lower(m, k, kl);
    if (i < m->n && tu_keycmp(m->e[i].k, m->e[i].kl, k, kl) == 0) {
        memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof m->e[0]);
        m->n--;
    }
}

/* Writes through to the keyspace and the map. */
static void wput(tind_keyspace *ks, lmap *m, bstr k, bstr v)
{
    int rc = tind_put(ks, k.p, k.n, v.p, v.n);
    cr_assert_eq(rc, TIND_OK, "put %s: %s", tu_hex(k.p, k.n), tind_last_error());
    if (m) lm_set(m, k.p, k.n, v.p, v.n);
}

static void wdel(tind_keyspace *ks, lmap *m, bstr k)
{
    int rc = tind_delete(ks, k.p, k.n);
    cr_assert_eq(rc, TIND_OK, "delete %s: %s", tu_hex(k.p, k.n), tind_last_error());
    if (m) lm_del(m, k.p, k.n);
}

/* The entries of m within [lower, upper) (a NULL side: unbounded). */
static void lm_bound(const lmap *m, lmap *out, const bstr *lower, const bstr *upper)
{
    out->n = 0;
    for (size_t i = 0; i < m->n; i++) {
        const lent *e = &m->e[i];
        if (lower && tu_keycmp(e->k, e->kl, lower->p, lower->n) < 0) continue;
        if (upper && tu_keycmp(e->k, e->kl, upper->p, upper->n) >= 0) continue;
        out->e[out->n++] = *e;
    }
}

/* ---- checking an iterator against the map ------------------------------------------------- */

/* Where the model says the iterator is: an index into m, or -1 (invalid). */
static void check_at(tind_iter *it, const lmap *m, long pos, const char *what)
{
    size_t kl = 77, vl = 77;
    const void *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
    if (pos < 0) {
        cr_assert_not(tind_iter_valid(it), "%s: want invalid, iterator is at %s", what, tu_hex(k, kl));
        cr_assert_null(k, "%s: key pointer not NULL while invalid", what);
        cr_assert_null(v, "%s: value pointer not NULL while invalid", what);
        cr_assert_eq(kl, 0, "%s: key length %zu while invalid", what, kl);
        cr_assert_eq(vl, 0, "%s: value length %zu while invalid", what, vl);
        return;
    }
    const lent *e = &m->e[pos];
    cr_assert(tind_iter_valid(it), "%s: want %s, iterator is invalid (status %d)", what, tu_hex(e->k, e->kl),
              tind_iter_status(it));
    cr_assert(kl == e->kl && memcmp(k, e->k, kl) == 0, "%s: key %s, want %s", what, tu_hex(k, kl),
              tu_hex(e->k, e->kl));
    cr_assert_not_null(v, "%s: NULL value pointer at a valid position (key %s)", what, tu_hex(e->k, e->kl));
    cr_assert(vl == e->vl && memcmp(v, e->v, vl) == 0, "%s: key %s value %s, want %s", what, tu_hex(e->k, e->kl),
              tu_hex(v, vl), tu_hex(e->v, e->vl));
    /* len may be NULL */
    cr_assert_eq(tind_iter_key(it, NULL), k);
    cr_assert_eq(tind_iter_value(it, NULL), v);
}

static void check_full_scans(tind_iter *it, const lmap *m, const char *what)
{
    char msg[256];
    long i = 0;
    tind_iter_seek_first(it);
    for (; i < (long)m->n; i++) {
        snprintf(msg, sizeof msg, "%s: forward entry %ld of %zu", what, i, m->n);
        check_at(it, m, i, msg);
        tind_iter_next(it);
    }
    snprintf(msg, sizeof msg, "%s: forward past the end", what);
    check_at(it, m, -1, msg);
    tind_iter_next(it); /* a no-op while invalid */
    check_at(it, m, -1, msg);
    tind_iter_seek_last(it);
    for (i = (long)m->n - 1; i >= 0; i--) {
        snprintf(msg, sizeof msg, "%s: backward entry %ld of %zu", what, i, m->n);
        check_at(it, m, i, msg);
        tind_iter_prev(it);
    }
    snprintf(msg, sizeof msg, "%s: backward past the start", what);
    check_at(it, m, -1, msg);
    tind_iter_prev(it);
    check_at(it, m, -1, msg);
    cr_assert_eq(tind_iter_status(it), TIND_OK, "%s: status %d after full scans", what, tind_iter_status(it));
}

static long model_seek(const lmap *m, const void *k, size_t kl)
{
    size_t i = lm_lower(m, k, kl);
    return i < m->n ? (long)i : -1;
}

static long model_seek_for_prev(const lmap *m, const void *k, size_t kl)
{
    size_t i = lm_lower(m, k, kl);
    if (i < m->n && tu_keycmp(m->e[i].k, m->e[i].kl, k, kl) == 0) return (long)i;
    return (long)i - 1;
}

/* Every probe: seek and seek_for_prev, then a step each way from there. */
static void check_probes(tind_iter *it, const lmap *m, const bstr *probes, size_t np, const char *what)
{
    char msg[512];
    for (size_t i = 0; i < np; i++) {
        const bstr *p = &probes[i];
        for (int kind = 0; kind < 2; kind++) {
            for (int step = 0; step < 3; step++) {
                long pos;
                if (kind == 0) {
                    tind_iter_seek(it, p->p, p->n);
                    pos = model_seek(m, p->p, p->n);
                } else {
                    tind_iter_seek_for_prev(it, p->p, p->n);
                    pos = model_seek_for_prev(m, p->p, p->n);
                }
                const char *mv = "";
                if (step == 1) {
                    tind_iter_next(it);
                    if (pos >= 0) pos = pos + 1 < (long)m->n ? pos + 1 : -1;
                    mv = " then next";
                } else if (step == 2) {
                    tind_iter_prev(it);
                    if (pos >= 0) pos = pos - 1;
                    mv = " then prev";
                }
                snprintf(msg, sizeof msg, "%s: %s(%s)%s", what, kind ? "seek_for_prev" : "seek", tu_hex(p->p, p->n),
                         mv);
                check_at(it, m, pos, msg);
            }
        }
    }
    cr_assert_eq(tind_iter_status(it), TIND_OK, "%s: status %d after probes", what, tind_iter_status(it));
}

/* A random walk of moves and seeks, the model tracking the position. */
static void check_walk(tind_iter *it, const lmap *m, const bstr *probes, size_t np, uint64_t seed, int steps,
                       const char *what)
{
    uint64_t rs = seed;
    long pos = -1;
    tind_iter_seek_first(it);
    pos = m->n ? 0 : -1;
    char msg[512];
    for (int s = 0; s < steps; s++) {
        unsigned op = (unsigned)tu_below(&rs, 20);
        const char *name;
        if (op < 8) {
            tind_iter_next(it);
            if (pos >= 0) pos = pos + 1 < (long)m->n ? pos + 1 : -1;
            name = "next";
        } else if (op < 16) {
            tind_iter_prev(it);
            if (pos >= 0) pos--;
            name = "prev";
        } else if (op == 16) {
            tind_iter_seek_first(it);
            pos = m->n ? 0 : -1;
            name = "seek_first";
        } else if (op == 17) {
            tind_iter_seek_last(it);
            pos = (long)m->n - 1;
            name = "seek_last";
        } else {
            const bstr *p = &probes[tu_below(&rs, np)];
            if (op == 18) {
                tind_iter_seek(it, p->p, p->n);
                pos = model_seek(m, p->p, p->n);
                name = "seek";
            } else {
                tind_iter_seek_for_prev(it, p->p, p->n);
                pos = model_seek_for_prev(m, p->p, p->n);
                name = "seek_for_prev";
            }
        }
        snprintf(msg, sizeof msg, "%s: walk seed %llu step %d (%s)", what, (unsigned long long)seed, s, name);
        check_at(it, m, pos, msg);
    }
}

/* ---- a data set with versions and tombstones ----------------------------------------------- */

static const bstr base_keys[] = {
    KI("\x00"), KI("\x00\x00"), KI("\x00\x01"), KI("a"),   KI("a\x00"), KI("a\x00\x00"), KI("aa"),
    KI("ab"),   KI("abc"),      KI("abd"),      KI("b"),   KI("ba"),    KI("c"),         KI("\x7f"),
    KI("\x80"), KI("\xfe\xff"), KI("\xff"),     KI("\xff\x00"), KI("\xff\xff"), KI("\xff\xff\xff"),
};
#define NBASE (sizeof base_keys / sizeof base_keys[0])

/* Writes every base key three times (the last value "v3-<i>"), deletes every
 * third, deletes and re-puts every fifth, in a scrambled order. */
static void load_versions(tind_keyspace *ks, lmap *m)
{
    char v[32];
    for (int ver = 1; ver <= 3; ver++) {
        for (size_t j = 0; j < NBASE; j++) {
            size_t i = (j * 7 + (size_t)ver) % NBASE; /* 7 is coprime with 20 */
            int n = snprintf(v, sizeof v, "v%d-%zu", ver, i);
            wput(ks, m, base_keys[i], (bstr){v, (size_t)n});
        }
    }
    for (size_t i = 0; i < NBASE; i++) {
        if (i % 3 == 0) wdel(ks, m, base_keys[i]);
        if (i % 5 == 0) {
            wdel(ks, m, base_keys[i]);
            int n = snprintf(v, sizeof v, "again-%zu", i);
            wput(ks, m, base_keys[i], (bstr){v, (size_t)n});
        }
    }
    /* deletes of keys that never existed, between live ones */
    wdel(ks, m, K("a\x01"));
    wdel(ks, m, K("zz"));
    wdel(ks, m, K("\x00\x00\x00"));
}

/* Probes: every base key, plus neighbours that are absent. */
static size_t make_probes(bstr *out, size_t cap, char store[][40])
{
    size_t n = 0;
    for (size_t i = 0; i < NBASE && n + 3 <= cap; i++) {
        out[n++] = base_keys[i];
        /* key + "\x00": just after it */
        memcpy(store[n], base_keys[i].p, base_keys[i].n);
        store[n][base_keys[i].n] = 0;
        out[n] = (bstr){store[n], base_keys[i].n + 1};
        n++;
        /* key with the last byte bumped (if not 0xff): after all its extensions */
        if ((uint8_t)base_keys[i].p[base_keys[i].n - 1] != 0xff) {
            memcpy(store[n], base_keys[i].p, base_keys[i].n);
            store[n][base_keys[i].n - 1]++;
            out[n] = (bstr){store[n], base_keys[i].n};
            n++;
        }
    }
    static const bstr extra[] = {KI("\x00\x00\x00"), KI("a\x01"), KI("zz"), KI("\xff\xff\xff\xff"), KI("m"), KI("\x01")};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0] && n < cap; i++) out[n++] = extra[i];
    return n;
}

/* ---- tests ---------------------------------------------------------------------------------- */

Test(iter, empty_keyspace)
{
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    cr_assert_not_null(it);
    lmap *m = calloc(1, sizeof *m);
    check_at(it, m, -1, "unpositioned");
    check_full_scans(it, m, "empty keyspace");
    tind_iter_seek(it, "a", 1);
    check_at(it, m, -1, "seek in empty");
    tind_iter_seek_for_prev(it, "a", 1);
    check_at(it, m, -1, "seek_for_prev in empty");
    tind_iter_close(it);
    /* only tombstones */
    wdel(i_ks, NULL, K("a"));
    wput(i_ks, NULL, K("b"), K("x"));
    wdel(i_ks, NULL, K("b"));
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    check_full_scans(it, m, "only tombstones");
    tind_iter_seek(it, "a", 1);
    check_at(it, m, -1, "seek among tombstones");
    tind_iter_seek_for_prev(it, "b", 1);
    check_at(it, m, -1, "seek_for_prev among tombstones");
    tind_iter_close(it);
    free(m);
}

Test(iter, unpositioned_and_exhausted_iterators_give_null)
{
    wput(i_ks, NULL, K("a"), K("1"));
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    cr_assert_not(tind_iter_valid(it), "a new iterator must start unpositioned");
    size_t len = 5;
    cr_assert_null(tind_iter_key(it, &len));
    cr_assert_eq(len, 0);
    len = 5;
    cr_assert_null(tind_iter_value(it, &len));
    cr_assert_eq(len, 0);
    cr_assert_null(tind_iter_key(it, NULL));
    tind_iter_next(it); /* no-ops while unpositioned */
    tind_iter_prev(it);
    cr_assert_not(tind_iter_valid(it), "next/prev positioned an unpositioned iterator");
    EXPECT_OK(tind_iter_status(it));
    tind_iter_seek_first(it);
    cr_assert(tind_iter_valid(it));
    tind_iter_next(it);
    cr_assert_not(tind_iter_valid(it));
    len = 5;
    cr_assert_null(tind_iter_key(it, &len));
    cr_assert_eq(len, 0);
    /* an invalid iterator stays invalid: prev does not come back */
    tind_iter_prev(it);
    cr_assert_not(tind_iter_valid(it), "prev revived an exhausted iterator");
    tind_iter_seek_last(it);
    tind_iter_prev(it);
    cr_assert_not(tind_iter_valid(it));
    tind_iter_next(it);
    cr_assert_not(tind_iter_valid(it), "next revived an iterator exhausted backward");
    EXPECT_OK(tind_iter_status(it));
    tind_iter_close(it);
}

Test(iter, order_is_memcmp_with_shorter_first)
{
    lmap *m = calloc(1, sizeof *m);
    /* insert in reverse order of the expected result */
    for (size_t i = NBASE; i-- > 0;) {
        char v[16];
        int n = snprintf(v, sizeof v, "v%zu", i);
        wput(i_ks, m, base_keys[i], (bstr){v, (size_t)n});
    }
    cr_assert_eq(m->n, NBASE);
    for (size_t i = 1; i < NBASE; i++)
        cr_assert_lt(tu_keycmp(base_keys[i - 1].p, base_keys[i - 1].n, base_keys[i].p, base_keys[i].n), 0,
                     "base_keys not sorted at %zu", i);
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    check_full_scans(it, m, "all keys");
    tind_iter_close(it);
    free(m);
}

Test(iter, seeks_in_both_directions)
{
    lmap *m = calloc(1, sizeof *m);
    load_versions(i_ks, m);
    bstr probes[128];
    static char store[128][40];
    size_t np = make_probes(probes, 128, store);
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    check_full_scans(it, m, "versions and tombstones");
    check_probes(it, m, probes, np, "no bounds");
    tind_iter_close(it);
    free(m);
}

Test(iter, direction_changes)
{
    lmap *m = calloc(1, sizeof *m);
    load_versions(i_ks, m);
    cr_assert_geq(m->n, 4);
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    /* a fixed zigzag */
    tind_iter_seek_first(it);
    check_at(it, m, 0, "seek_first");
    tind_iter_next(it);
    check_at(it, m, 1, "next");
    tind_iter_prev(it);
    check_at(it, m, 0, "next, prev");
    tind_iter_next(it);
    tind_iter_next(it);
    check_at(it, m, 2, "prev, next, next");
    tind_iter_prev(it);
    tind_iter_prev(it);
    check_at(it, m, 0, "back to the first");
    tind_iter_prev(it);
    check_at(it, m, -1, "prev before the first");
    tind_iter_seek_last(it);
    long last = (long)m->n - 1;
    check_at(it, m, last, "seek_last");
    tind_iter_prev(it);
    check_at(it, m, last - 1, "seek_last, prev");
    tind_iter_next(it);
    check_at(it, m, last, "seek_last, prev, next");
    tind_iter_next(it);
    check_at(it, m, -1, "next after the last");
    tind_iter_seek_last(it);
    tind_iter_next(it);
    check_at(it, m, -1, "seek_last, next");
    /* every position, each way */
    for (long i = 0; i < (long)m->n; i++) {
        char msg[64];
        tind_iter_seek(it, m->e[i].k, m->e[i].kl);
        tind_iter_prev(it);
        snprintf(msg, sizeof msg, "seek(%ld) then prev", i);
        check_at(it, m, i - 1, msg);
        tind_iter_seek_for_prev(it, m->e[i].k, m->e[i].kl);
        tind_iter_next(it);
        snprintf(msg, sizeof msg, "seek_for_prev(%ld) then next", i);
        check_at(it, m, i + 1 < (long)m->n ? i + 1 : -1, msg);
        tind_iter_seek_for_prev(it, m->e[i].k, m->e[i].kl);
        tind_iter_next(it);
        tind_iter_prev(it);
        snprintf(msg, sizeof msg, "seek_for_prev(%ld), next, prev", i);
        check_at(it, m, i + 1 < (long)m->n ? i : -1, msg);
    }
    bstr probes[128];
    static char store[128][40];
    size_t np = make_probes(probes, 128, store);
    uint64_t seed = tu_seed("iter::direction_changes");
    check_walk(it, m, probes, np, seed, 3000, "no bounds");
    tind_iter_close(it);
    free(m);
}

/* One bounds case: the bounds, and a name for messages. */
struct bcase {
    const char *name;
    const bstr *lower, *upper;
};

static void run_bounds_case(const lmap *m, const struct bcase *c, const bstr *probes, size_t np, uint64_t seed)
{
    lmap *exp = calloc(1, sizeof *exp);
    lm_bound(m, exp, c->lower, c->upper);
    tind_bounds b = {c->lower ? c->lower->p : NULL, c->lower ? c->lower->n : 0, c->upper ? c->upper->p : NULL,
                     c->upper ? c->upper->n : 0};
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, &b, &it));
    check_full_scans(it, exp, c->name);
    check_probes(it, exp, probes, np, c->name);
    check_walk(it, exp, probes, np, seed, 400, c->name);
    tind_iter_close(it);
    free(exp);
}

Test(iter, bounds)
{
    lmap *m = calloc(1, sizeof *m);
    load_versions(i_ks, m);
    bstr probes[128];
    static char store[128][40];
    size_t np = make_probes(probes, 128, store);
    uint64_t seed = tu_seed("iter::bounds");

    static const bstr a = KI("a"), ab = KI("ab"), abc0 = KI("abc\x00"), b = KI("b"), bb = KI("bb"), c = KI("c");
    static const bstr lo0 = KI("\x00"), hi = KI("\xff\xff\xff\xff"), ff = KI("\xff"), a1 = KI("a\x01"),
                      a2 = KI("a\x02"), zz = KI("zz"), z0 = KI("\x00\x00\x00"), x80 = KI("\x80");
    const struct bcase cases[] = {
        {"lower only, a live key", &a, NULL},
        {"lower only, absent key", &a1, NULL},
        {"lower only, below every key", &lo0, NULL},
        {"lower only, above every key", &hi, NULL},
        {"lower only, 0xff", &ff, NULL},
        {"upper only, a live key (exclusive)", NULL, &ab},
        {"upper only, absent key", NULL, &bb},
        {"upper only, the first key", NULL, &lo0},
        {"upper only, above every key", NULL, &hi},
        {"upper only, 0xff", NULL, &ff},
        {"both", &a, &c},
        {"both, absent ends", &abc0, &x80},
        {"both, one key", &b, &bb},
        {"empty range: lower == upper", &ab, &ab},
        {"empty range: lower > upper", &c, &a},
        {"bounds between two keys exclude everything", &a1, &a2},
        {"bounds over deleted keys only", &z0, &z0},
        {"bounds above everything", &zz, &hi},
        {"bounds from the first to the last key", &lo0, &hi},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_bounds_case(m, &cases[i], probes, np, seed + i);
    free(m);
}

Test(iter, bounds_on_tombstoned_and_versioned_edges)
{
    lmap *m = calloc(1, sizeof *m);
    wput(i_ks, m, K("a"), K("1"));
    wput(i_ks, m, K("b"), K("1"));
    wput(i_ks, m, K("b"), K("2"));
    wput(i_ks, m, K("c"), K("1"));
    wdel(i_ks, m, K("c"));
    wput(i_ks, m, K("d"), K("1"));
    wput(i_ks, m, K("e"), K("1"));
    wdel(i_ks, m, K("e"));
    wput(i_ks, m, K("e"), K("2"));
    wput(i_ks, m, K("f"), K("1"));
    bstr probes[] = {KI("a"), KI("b"), KI("c"), KI("d"), KI("e"), KI("f"), KI("g"), KI("0"), KI("bb"), KI("c\x00")};
    static const bstr b = KI("b"), c = KI("c"), e = KI("e"), f = KI("f");
    const struct bcase cases[] = {
        {"lower on a tombstone", &c, NULL},
        {"upper on a tombstone", NULL, &c},
        {"lower on a versioned key", &b, &f},
        {"upper on a versioned key", &c, &e},
        {"tombstone to the upper edge", &c, &e},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_bounds_case(m, &cases[i], probes, sizeof probes / sizeof probes[0], 99 + i);
    free(m);
}

Test(iter, bounds_are_copied)
{
    lmap *m = calloc(1, sizeof *m);
    for (char c = 'a'; c <= 'h'; c++) {
        char k[2] = {c, 0};
        wput(i_ks, m, (bstr){k, 1}, (bstr){k, 1});
    }
    char lo[2] = "b", up[2] = "e";
    tind_bounds b = {lo, 1, up, 1};
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, &b, &it));
    lo[0] = 'a'; /* changing the caller's buffers after open changes nothing */
    up[0] = 'z';
    b.lower = NULL;
    static const bstr bl = KI("b"), bu = KI("e");
    lmap *exp = calloc(1, sizeof *exp);
    lm_bound(m, exp, &bl, &bu);
    check_full_scans(it, exp, "bounds changed after open");
    tind_iter_close(it);
    char pfx[2] = "c";
    EXPECT_OK(tind_iter_open_prefix(i_ks, NULL, pfx, 1, &it));
    pfx[0] = 'a';
    tind_iter_seek_first(it);
    size_t kl;
    const char *k = tind_iter_key(it, &kl);
    cr_assert(tind_iter_valid(it) && kl == 1 && k[0] == 'c', "prefix changed after open: at %s", tu_hex(k, kl));
    tind_iter_next(it);
    cr_assert_not(tind_iter_valid(it));
    tind_iter_close(it);
    free(m);
    free(exp);
}

static void check_prefix(const lmap *m, bstr prefix, size_t want, const char *what)
{
    /* the expected set: keys starting with the prefix */
    lmap *exp = calloc(1, sizeof *exp);
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].kl >= prefix.n && memcmp(m->e[i].k, prefix.p, prefix.n) == 0) exp->e[exp->n++] = m->e[i];
    cr_assert_eq(exp->n, want, "%s: the test expects %zu keys under %s, the model has %zu", what, want,
                 tu_hex(prefix.p, prefix.n), exp->n);
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open_prefix(i_ks, NULL, prefix.p, prefix.n, &it));
    check_full_scans(it, exp, what);
    bstr probes[64];
    static char store[64][40];
    size_t np = make_probes(probes, 64, store);
    check_probes(it, exp, probes, np, what);
    check_walk(it, exp, probes, np, 1234, 300, what);
    tind_iter_close(it);
    /* the same through a snapshot */
    tind_snapshot *s = NULL;
    EXPECT_OK(tind_snapshot_open(i_db, &s));
    EXPECT_OK(tind_iter_open_prefix(i_ks, s, prefix.p, prefix.n, &it));
    check_full_scans(it, exp, what);
    tind_iter_close(it);
    tind_snapshot_close(s);
    free(exp);
}

Test(iter, prefix_iteration)
{
    lmap *m = calloc(1, sizeof *m);
    static const bstr keys[] = {
        KI("ap"),       KI("app"),       KI("apple"),    KI("apply"),    KI("appz"),   KI("apq"),  KI("b"),
        KI("a\xfe"),    KI("a\xff"),     KI("a\xff\x00"), KI("a\xff\xff"), KI("b\x00"), KI("\xfe\xff"),
        KI("\xff"),     KI("\xff\x00"),  KI("\xff\xfe"), KI("\xff\xff"), KI("\xff\xff\x01"), KI("\xff\xff\xff\xff"),
        KI("\x00"),     KI("\x00\xff"),
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[16];
        int n = snprintf(v, sizeof v, "p%zu", i);
        wput(i_ks, m, keys[i], (bstr){v, (size_t)n});
    }
    /* a tombstone and an overwrite inside a prefix */
    wput(i_ks, m, K("appx"), K("gone"));
    wdel(i_ks, m, K("appx"));
    wput(i_ks, m, K("apple"), K("newer"));

    check_prefix(m, K("app"), 4, "prefix app");
    check_prefix(m, K("ap"), 6, "prefix ap");
    check_prefix(m, K("a"), 10, "prefix a");
    check_prefix(m, K("apple"), 1, "prefix equal to a key");
    check_prefix(m, K("applez"), 0, "prefix with no keys");
    check_prefix(m, K("c"), 0, "prefix after every key under it");
    check_prefix(m, K("a\xff"), 3, "prefix ending in 0xff");
    check_prefix(m, K("\xfe"), 1, "prefix whose successor starts with 0xff");
    check_prefix(m, K("\xff"), 6, "prefix 0xff");
    check_prefix(m, K("\xff\xff"), 3, "prefix of two 0xff");
    check_prefix(m, K("\xff\xff\xff"), 1, "prefix of three 0xff");
    check_prefix(m, K("\x00"), 2, "prefix 0x00");
    free(m);
}

Test(iter, prefix_must_be_a_valid_key)
{
    tind_iter *it = (tind_iter *)(uintptr_t)1;
    EXPECT_RC(tind_iter_open_prefix(i_ks, NULL, "a", 0, &it), TIND_INVALID);
    EXPECT_RC(tind_iter_open_prefix(i_ks, NULL, NULL, 1, &it), TIND_INVALID);
    struct tind_db_stats st;
    EXPECT_OK(tind_db_stats(i_db, &st));
    cr_assert_eq(st.iterators, 0);
}

Test(iter, tombstones_are_hidden)
{
    lmap *m = calloc(1, sizeof *m);
    const char *ks[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (int i = 0; i < 7; i++) wput(i_ks, m, (bstr){ks[i], 1}, (bstr){ks[i], 1});
    wdel(i_ks, m, K("a")); /* first */
    wdel(i_ks, m, K("c")); /* middle */
    wdel(i_ks, m, K("d")); /* a run of two */
    wdel(i_ks, m, K("g")); /* last */
    wdel(i_ks, m, K("cc")); /* never existed */
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    cr_assert_eq(m->n, 3);
    check_full_scans(it, m, "tombstones");
    tind_iter_seek(it, "c", 1);
    check_at(it, m, 1, "seek to a deleted key lands on the next live one (e)");
    tind_iter_seek_for_prev(it, "d", 1);
    check_at(it, m, 0, "seek_for_prev to a deleted key lands on the previous live one (b)");
    tind_iter_seek(it, "g", 1);
    check_at(it, m, -1, "seek to the deleted last key");
    tind_iter_seek_for_prev(it, "a", 1);
    check_at(it, m, -1, "seek_for_prev to the deleted first key");
    tind_iter_close(it);
    /* resurrect one: visible again */
    wput(i_ks, m, K("c"), K("back"));
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    check_full_scans(it, m, "a deleted key put again");
    tind_iter_close(it);
    free(m);
}

Test(iter, versions_are_collapsed)
{
    lmap *m = calloc(1, sizeof *m);
    wput(i_ks, m, K("a"), K("a1"));
    for (int i = 0; i < 50; i++) {
        char v[16];
        int n = snprintf(v, sizeof v, "k%d", i);
        wput(i_ks, m, K("k"), (bstr){v, (size_t)n});
    }
    wput(i_ks, m, K("z"), K("z1"));
    wput(i_ks, m, K("a"), K("a2"));
    wput(i_ks, m, K("k"), K(""));     /* an empty newest version */
    wput(i_ks, m, K("k"), K("last"));
    cr_assert_eq(m->n, 3);
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    check_full_scans(it, m, "50 versions of one key");
    tind_iter_seek(it, "k", 1);
    check_at(it, m, 1, "seek onto the versioned key");
    tind_iter_prev(it);
    check_at(it, m, 0, "prev off it");
    tind_iter_next(it);
    tind_iter_next(it);
    check_at(it, m, 2, "next over it");
    tind_iter_prev(it);
    check_at(it, m, 1, "prev onto it");
    tind_iter_close(it);
    free(m);
}

Test(iter, empty_values_are_non_null)
{
    lmap *m = calloc(1, sizeof *m);
    wput(i_ks, m, K("a"), K(""));
    wput(i_ks, m, K("b"), K("x"));
    wput(i_ks, m, K("c"), K(""));
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    check_full_scans(it, m, "empty values"); /* check_at wants non-NULL values */
    tind_iter_close(it);
    free(m);
}

Test(iter, snapshot_iterators)
{
    lmap *m0 = calloc(1, sizeof *m0);
    load_versions(i_ks, m0);
    tind_snapshot *s = NULL;
    EXPECT_OK(tind_snapshot_open(i_db, &s));
    lmap *m1 = malloc(sizeof *m1);
    *m1 = *m0;
    /* change everything after the snapshot */
    for (size_t i = 0; i < NBASE; i++) {
        if (i % 2) wdel(i_ks, m1, base_keys[i]);
        else wput(i_ks, m1, base_keys[i], K("after"));
    }
    wput(i_ks, m1, K("new"), K("key"));
    tind_iter *old = NULL, *cur = NULL;
    EXPECT_OK(tind_iter_open(i_ks, s, NULL, &old));
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &cur));
    check_full_scans(old, m0, "snapshot iterator");
    check_full_scans(cur, m1, "current iterator");
    bstr probes[128];
    static char store[128][40];
    size_t np = make_probes(probes, 128, store);
    check_probes(old, m0, probes, np, "snapshot iterator");
    check_walk(old, m0, probes, np, 77, 1000, "snapshot iterator");
    /* bounded snapshot iterator */
    static const bstr lo = KI("a"), hi = KI("b\x00");
    lmap *exp = calloc(1, sizeof *exp);
    lm_bound(m0, exp, &lo, &hi);
    tind_bounds b = {lo.p, lo.n, hi.p, hi.n};
    tind_iter *bit = NULL;
    EXPECT_OK(tind_iter_open(i_ks, s, &b, &bit));
    check_full_scans(bit, exp, "bounded snapshot iterator");
    tind_iter_close(bit);
    tind_iter_close(old);
    tind_iter_close(cur);
    tind_snapshot_close(s);
    free(m0);
    free(m1);
    free(exp);
}

Test(iter, iterator_does_not_see_later_writes)
{
    lmap *m0 = calloc(1, sizeof *m0);
    load_versions(i_ks, m0);
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    /* writes after open, before the first seek */
    wput(i_ks, NULL, K("a\x01"), K("later"));
    wdel(i_ks, NULL, base_keys[1]);
    wput(i_ks, NULL, base_keys[2], K("later"));
    check_full_scans(it, m0, "writes before the first seek");

    /* writes between every step, forward then backward */
    tind_iter_seek_first(it);
    for (long i = 0; i < (long)m0->n; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "forward step %ld with writes between", i);
        check_at(it, m0, i, msg);
        /* a new key right after the current one, a delete of the next, an overwrite of this one */
        uint8_t k[40];
        memcpy(k, m0->e[i].k, m0->e[i].kl);
        k[m0->e[i].kl] = 0;
        wput(i_ks, NULL, (bstr){(const char *)k, m0->e[i].kl + 1}, K("new"));
        wput(i_ks, NULL, (bstr){(const char *)m0->e[i].k, m0->e[i].kl}, K("overwritten"));
        if (i + 1 < (long)m0->n) wdel(i_ks, NULL, (bstr){(const char *)m0->e[i + 1].k, m0->e[i + 1].kl});
        tind_iter_next(it);
    }
    check_at(it, m0, -1, "forward end with writes between");
    tind_iter_seek_last(it);
    for (long i = (long)m0->n - 1; i >= 0; i--) {
        char msg[64];
        snprintf(msg, sizeof msg, "backward step %ld with writes between", i);
        check_at(it, m0, i, msg);
        wput(i_ks, NULL, (bstr){(const char *)m0->e[i].k, m0->e[i].kl}, K("again"));
        if (i > 0) {
            wdel(i_ks, NULL, (bstr){(const char *)m0->e[i - 1].k, m0->e[i - 1].kl});
            wput(i_ks, NULL, (bstr){(const char *)m0->e[i - 1].k, m0->e[i - 1].kl}, K("back"));
        }
        tind_iter_prev(it);
    }
    check_at(it, m0, -1, "backward end with writes between");
    bstr probes[128];
    static char store[128][40];
    size_t np = make_probes(probes, 128, store);
    check_probes(it, m0, probes, np, "after many later writes");
    check_walk(it, m0, probes, np, 5, 1000, "after many later writes");
    tind_iter_close(it);

    /* a new iterator sees them */
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    tind_iter_seek(it, "a\x01", 2);
    size_t kl, vl;
    const void *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
    cr_assert(tind_iter_valid(it) && kl == 2 && memcmp(k, "a\x01", 2) == 0, "new iterator: at %s", tu_hex(k, kl));
    cr_assert(vl == 5 && memcmp(v, "later", 5) == 0);
    tind_iter_close(it);
    free(m0);
}

Test(iter, bad_seek_keys_set_status_invalid)
{
    wput(i_ks, NULL, K("a"), K("1"));
    static const struct {
        const char *name;
        int kind; /* 0 seek, 1 seek_for_prev */
        const void *k;
        size_t n;
    } cases[] = {
        {"seek with an empty key", 0, "a", 0},
        {"seek_for_prev with an empty key", 1, "a", 0},
        {"seek with a NULL key", 0, NULL, 1},
        {"seek_for_prev with a NULL key", 1, NULL, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tind_iter *it = NULL;
        EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
        tind_iter_seek_first(it);
        cr_assert(tind_iter_valid(it));
        if (cases[i].kind == 0) tind_iter_seek(it, cases[i].k, cases[i].n);
        else tind_iter_seek_for_prev(it, cases[i].k, cases[i].n);
        cr_assert_not(tind_iter_valid(it), "%s: still valid", cases[i].name);
        cr_assert_eq(tind_iter_status(it), TIND_INVALID, "%s: status %d", cases[i].name, tind_iter_status(it));
        cr_assert_null(tind_iter_key(it, NULL), "%s: key pointer after a bad seek", cases[i].name);
        tind_iter_close(it);
    }
    /* an oversized key */
    uint8_t *big = calloc(1, TIND_MAX_KEY_BYTES + 1);
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    tind_iter_seek(it, big, TIND_MAX_KEY_BYTES + 1);
    cr_assert_not(tind_iter_valid(it));
    cr_assert_eq(tind_iter_status(it), TIND_INVALID, "seek with a 65,536-byte key: status %d", tind_iter_status(it));
    tind_iter_close(it);
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    tind_iter_seek(it, big, TIND_MAX_KEY_BYTES); /* the largest allowed: fine */
    cr_assert(tind_iter_valid(it), "seek with a 65,535-byte key of zeros should find \"a\"");
    EXPECT_OK(tind_iter_status(it));
    tind_iter_close(it);
    free(big);
}

Test(iter, keyspaces_are_separate)
{
    tind_keyspace *other = NULL;
    EXPECT_OK(tind_keyspace_open(i_db, "other", NULL, &other));
    lmap *m = calloc(1, sizeof *m), *mo = calloc(1, sizeof *mo);
    for (size_t i = 0; i < NBASE; i++) {
        if (i % 2) wput(i_ks, m, base_keys[i], K("mine"));
        else wput(other, mo, base_keys[i], K("other"));
    }
    wdel(other, mo, base_keys[1]); /* a tombstone in the other keyspace hides nothing here */
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
    check_full_scans(it, m, "keyspace ks");
    tind_iter_close(it);
    EXPECT_OK(tind_iter_open(other, NULL, NULL, &it));
    check_full_scans(it, mo, "keyspace other");
    tind_iter_close(it);
    free(m);
    free(mo);
}

Test(iter, many_keys_after_reopen)
{
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "key%05d", (i * 7919) % N);
        snprintf(v, sizeof v, "v%d", i);
        EXPECT_OK(tind_put(i_ks, k, strlen(k), v, strlen(v)));
        if (i % 3 == 0) EXPECT_OK(tind_put(i_ks, k, strlen(k), "x", 1));
    }
    for (int i = 0; i < N; i += 10) {
        char k[16];
        snprintf(k, sizeof k, "key%05d", i);
        EXPECT_OK(tind_delete(i_ks, k, strlen(k)));
    }
    for (int round = 0; round < 2; round++) {
        tind_iter *it = NULL;
        EXPECT_OK(tind_iter_open(i_ks, NULL, NULL, &it));
        int n = 0, expect = 0;
        for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it), n++) {
            while (expect % 10 == 0) expect++;
            char k[16];
            snprintf(k, sizeof k, "key%05d", expect);
            size_t kl;
            const void *kp = tind_iter_key(it, &kl);
            cr_assert(kl == strlen(k) && memcmp(kp, k, kl) == 0, "round %d forward %d: %s, want %s", round, n,
                      tu_hex(kp, kl), k);
            expect++;
        }
        cr_assert_eq(n, N - N / 10, "round %d: %d keys forward", round, n);
        n = 0;
        expect = N - 1;
        for (tind_iter_seek_last(it); tind_iter_valid(it); tind_iter_prev(it), n++) {
            while (expect % 10 == 0) expect--;
            char k[16];
            snprintf(k, sizeof k, "key%05d", expect);
            size_t kl;
            const void *kp = tind_iter_key(it, &kl);
            cr_assert(kl == strlen(k) && memcmp(kp, k, kl) == 0, "round %d backward %d: %s, want %s", round, n,
                      tu_hex(kp, kl), k);
            expect--;
        }
        cr_assert_eq(n, N - N / 10, "round %d: %d keys backward", round, n);
        EXPECT_OK(tind_iter_status(it));
        tind_iter_close(it);
        if (round == 0) {
            EXPECT_OK(tind_close(i_db));
            i_db = NULL;
            EXPECT_OK(tind_open(i_dir, NULL, &i_db));
            EXPECT_OK(tind_keyspace_open(i_db, "ks", NULL, &i_ks));
        }
    }
}
