/* Transactions against a reference model: random rounds of plain writes
 * (hot keys with many versions, runs of deletions, flushes to tables), then
 * a transaction that buffers writes (several per key, some into a second
 * keyspace), reads them back, opens up to two iterators at once with random
 * bounds and moves them both ways (seeks between keys, direction changes),
 * takes savepoints and rolls back (undoing writes, never reads; iterators
 * open across savepoints and rollbacks), while plain writes commit after its
 * snapshot (one round in six: a single-writer transaction, alone). Every
 * answer is compared with the model (the snapshot overlaid with the writes
 * made before each iterator opened); the commit must fail
 * with TIND_CONFLICT when a later write hit a key the transaction read or a
 * gap its iterators walked, and succeed when nothing was written after its
 * snapshot. The seed is printed; TIND_SEED replays it, TIND_TX_MODEL_ROUNDS
 * sets the number of rounds. */
#include "tests/api_common.h"

TestSuite(tx_model, .init = api_setup, .fini = api_teardown);

/* Keys k00 < k00x < k01 < k01x < ...: key i sits at position 2i of a line on
 * which 2i+1 lies strictly between key i and key i+1 (key i + "0"), -1
 * before every key and 2*NK-1 after. */
#define NK 40
#define MAXV 24
#define MAXDEPS 512
#define MAXSAVES 8
#define NEG_INF (-100)
#define POS_INF (4 * NK)

static char keys[NK][16];
static size_t klens[NK];

struct val {
    int present;
    char v[MAXV];
};

enum { OWN_NONE, OWN_PUT, OWN_DEL };

struct own {
    int st;
    char v[MAXV];
};

/* A stretch [a, b] of the line whose keys the transaction's answers depended on. */
struct dep {
    int a, b;
};

struct model_iter {
    tind_iter *it;
    struct val view[NK];
    int lo2, hi2; /* keys at 2i with lo2 <= 2i < hi2 */
    int cur;      /* -1: not valid */
    struct dep deps[MAXDEPS];
    int ndeps;
};

struct model {
    uint64_t rng;
    tind_keyspace *ks, *other;
    struct val cur[NK];  /* the database */
    struct val snap[NK]; /* at the transaction's begin */
    struct own own[NK];
    int other_writes;
    int conc[NK];        /* written by others after the snapshot */
    int any_conc;
    struct dep deps[MAXDEPS];
    int ndeps;
    struct own saved_own[MAXSAVES][NK];
    int saved_other[MAXSAVES];
    int nsaves;
    struct model_iter iters[2];
    int round, step;
};

static void make_keys(void)
{
    for (int i = 0; i < NK; i++) {
        snprintf(keys[i], sizeof keys[i], "k%02u%s", (unsigned)i / 2 % 100, i % 2 ? "x" : "");
        klens[i] = strlen(keys[i]);
    }
}

/* The bytes of position p. */
static size_t probe(int p, char *out)
{
    if (p < 0) return (size_t)snprintf(out, 32, "a");
    if (p >= 2 * NK) return (size_t)snprintf(out, 32, "z");
    if (p % 2 == 0) return (size_t)snprintf(out, 32, "%s", keys[p / 2]);
    return (size_t)snprintf(out, 32, "%s0", keys[p / 2]);
}

static int rand_pos(struct model *m) { return (int)tu_below(&m->rng, 2 * NK + 1) - 1; }

static void add_dep(struct dep *deps, int *n, int a, int b)
{
    cr_assert_lt(*n, MAXDEPS, "too many dependencies");
    deps[(*n)++] = (struct dep){a, b};
}

/* ---- plain writes ------------------------------------------------------------------------ */

static void plain_put(struct model *m, int i)
{
    struct val *v = &m->cur[i];
    v->present = 1;
    snprintf(v->v, sizeof v->v, "p%d.%d", m->round, (int)tu_below(&m->rng, 1000));
    EXPECT_OK(tind_put(m->ks, keys[i], klens[i], v->v, strlen(v->v)));
}

static void plain_del(struct model *m, int i)
{
    m->cur[i].present = 0;
    EXPECT_OK(tind_delete(m->ks, keys[i], klens[i]));
}

/* Plain writes, of the kinds that make iterators skip: a hot key's many
 * versions, a run of deletions. */
static void plain_writes(struct model *m, int n)
{
    for (int j = 0; j < n; j++) {
        int i = (int)tu_below(&m->rng, NK);
        switch (tu_below(&m->rng, 8)) {
        case 0: /* a hot key */
            for (int r = 0; r < 12; r++) plain_put(m, i);
            break;
        case 1: /* a run of deletions */
            for (int r = 0; r < 10 && i + r < NK; r++) plain_del(m, i + r);
            break;
        case 2:
            plain_del(m, i);
            break;
        default:
            plain_put(m, i);
        }
    }
}

/* ---- the transaction's reads and writes --------------------------------------------------- */

static void tx_write(struct model *m, tind_tx *tx)
{
    if (tu_below(&m->rng, 10) == 0) {
        EXPECT_OK(tind_tx_put(tx, m->other, "o", 1, "v", 1));
        m->other_writes = 1;
        return;
    }
    int i = (int)tu_below(&m->rng, NK);
    struct own *o = &m->own[i];
    if (tu_below(&m->rng, 4) == 0) {
        o->st = OWN_DEL;
        EXPECT_OK(tind_tx_delete(tx, m->ks, keys[i], klens[i]));
    } else {
        o->st = OWN_PUT;
        snprintf(o->v, sizeof o->v, "t%d.%d", m->round, m->step);
        EXPECT_OK(tind_tx_put(tx, m->ks, keys[i], klens[i], o->v, strlen(o->v)));
    }
}

static void tx_read(struct model *m, tind_tx *tx)
{
    int i = (int)tu_below(&m->rng, NK);
    int how = (int)tu_below(&m->rng, 3);
    void *got = NULL;
    size_t gl = 0;
    int rc = how == 0   ? tind_tx_get(tx, m->ks, keys[i], klens[i], &got, &gl)
             : how == 1 ? tind_tx_get_untracked(tx, m->ks, keys[i], klens[i], &got, &gl)
                        : tind_tx_get_for_update(tx, m->ks, keys[i], klens[i], &got, &gl);
    const struct own *o = &m->own[i];
    int present = o->st == OWN_PUT || (o->st == OWN_NONE && m->snap[i].present);
    const char *want = o->st == OWN_PUT ? o->v : m->snap[i].v;
    if (!present) {
        cr_assert_eq(rc, TIND_NOT_FOUND, "round %d step %d: get %s (mode %d): want absent, got %d %s", m->round,
                     m->step, keys[i], how, rc, rc ? "" : tu_hex(got, gl));
    } else {
        cr_assert_eq(rc, TIND_OK, "round %d step %d: get %s: %s", m->round, m->step, keys[i], tind_last_error());
        cr_assert(gl == strlen(want) && memcmp(got, want, gl) == 0, "round %d step %d: get %s: want %s, got %s",
                  m->round, m->step, keys[i], want, tu_hex(got, gl));
    }
    tind_free(got);
    if (how != 1 && o->st == OWN_NONE) add_dep(m->deps, &m->ndeps, 2 * i, 2 * i);
}

/* ---- iterators ------------------------------------------------------------------------------ */

static int in_view(const struct model_iter *mi, int i)
{
    return i >= 0 && i < NK && 2 * i >= mi->lo2 && 2 * i < mi->hi2 && mi->view[i].present;
}

static void iter_open(struct model *m, tind_tx *tx, struct model_iter *mi)
{
    for (int i = 0; i < NK; i++) {
        const struct own *o = &m->own[i];
        mi->view[i].present = o->st == OWN_PUT || (o->st == OWN_NONE && m->snap[i].present);
        memcpy(mi->view[i].v, o->st == OWN_PUT ? o->v : m->snap[i].v, MAXV);
    }
    char lo[32], hi[32];
    tind_bounds b = {0};
    mi->lo2 = NEG_INF;
    mi->hi2 = POS_INF;
    if (tu_below(&m->rng, 2) == 0) {
        mi->lo2 = rand_pos(m);
        b.lower = lo;
        b.lower_len = probe(mi->lo2, lo);
    }
    if (tu_below(&m->rng, 2) == 0) {
        mi->hi2 = rand_pos(m);
        b.upper = hi;
        b.upper_len = probe(mi->hi2, hi);
    }
    mi->cur = -1;
    mi->ndeps = 0;
    EXPECT_OK(tind_tx_iter_open(tx, m->ks, b.lower || b.upper ? &b : NULL, &mi->it));
}

/* Closing joins the iterator's ranges to the transaction's read set. */
static void iter_close(struct model *m, struct model_iter *mi)
{
    tind_iter_close(mi->it);
    mi->it = NULL;
    for (int d = 0; d < mi->ndeps; d++) add_dep(m->deps, &m->ndeps, mi->deps[d].a, mi->deps[d].b);
    mi->ndeps = 0;
}

static void iter_check(const struct model *m, const struct model_iter *mi, const char *what, int arg)
{
    tind_iter *it = mi->it;
    EXPECT_OK(tind_iter_status(it));
    if (mi->cur < 0) {
        size_t kl = 0;
        cr_assert(!tind_iter_valid(it), "round %d step %d: %s(%d) bounds [%d,%d): want the end, got %s", m->round,
                  m->step, what, arg, mi->lo2, mi->hi2, tu_hex(tind_iter_key(it, &kl), kl));
        return;
    }
    cr_assert(tind_iter_valid(it), "round %d step %d: %s(%d) bounds [%d,%d): want %s, got the end", m->round, m->step,
              what, arg, mi->lo2, mi->hi2, keys[mi->cur]);
    size_t kl, vl;
    const void *k = tind_iter_key(it, &kl);
    const void *v = tind_iter_value(it, &vl);
    const struct val *w = &mi->view[mi->cur];
    cr_assert(kl == klens[mi->cur] && memcmp(k, keys[mi->cur], kl) == 0,
              "round %d step %d: %s(%d) bounds [%d,%d): want %s, got %s", m->round, m->step, what, arg, mi->lo2,
              mi->hi2, keys[mi->cur], tu_hex(k, kl));
    cr_assert(vl == strlen(w->v) && memcmp(v, w->v, vl) == 0, "round %d step %d: %s(%d) at %s: want %s, got %s",
              m->round, m->step, what, arg, keys[mi->cur], w->v, tu_hex(v, vl));
}

static int first_from(const struct model_iter *mi, int i)
{
    for (; i < NK; i++)
        if (in_view(mi, i)) return i;
    return -1;
}

static int last_from(const struct model_iter *mi, int i)
{
    for (; i >= 0; i--)
        if (in_view(mi, i)) return i;
    return -1;
}

/* The first key at or after position p (p may fall between keys). */
static int key_at_or_after(int p) { return p <= 0 ? 0 : (p + 1) / 2; }

static void iter_move(struct model *m, struct model_iter *mi)
{
    int hi_last = mi->hi2 - 1; /* the last position below the upper bound */
    int op = (int)tu_below(&m->rng, mi->cur >= 0 ? 8 : 4), p = 0;
    const char *what;
    char t[32];
    switch (op) {
    case 0:
        what = "seek_first";
        tind_iter_seek_first(mi->it);
        mi->cur = first_from(mi, 0);
        add_dep(mi->deps, &mi->ndeps, mi->lo2, mi->cur >= 0 ? 2 * mi->cur : hi_last);
        break;
    case 1:
        what = "seek_last";
        tind_iter_seek_last(mi->it);
        mi->cur = last_from(mi, NK - 1);
        add_dep(mi->deps, &mi->ndeps, mi->cur >= 0 ? 2 * mi->cur : mi->lo2, hi_last);
        break;
    case 2: {
        what = "seek";
        p = rand_pos(m);
        tind_iter_seek(mi->it, t, probe(p, t));
        int s = p > mi->lo2 ? p : mi->lo2;
        mi->cur = first_from(mi, key_at_or_after(s));
        add_dep(mi->deps, &mi->ndeps, s, mi->cur >= 0 ? 2 * mi->cur : hi_last);
        break;
    }
    case 3: {
        what = "seek_for_prev";
        p = rand_pos(m);
        tind_iter_seek_for_prev(mi->it, t, probe(p, t));
        int e = p < hi_last ? p : hi_last;
        mi->cur = last_from(mi, e < 0 ? -1 : e / 2);
        add_dep(mi->deps, &mi->ndeps, mi->cur >= 0 ? 2 * mi->cur : mi->lo2, e);
        break;
    }
    default:
        if (op % 2 == 0) {
            what = "next";
            int from = mi->cur;
            tind_iter_next(mi->it);
            mi->cur = first_from(mi, from + 1);
            add_dep(mi->deps, &mi->ndeps, 2 * from + 1, mi->cur >= 0 ? 2 * mi->cur : hi_last);
        } else {
            what = "prev";
            int from = mi->cur;
            tind_iter_prev(mi->it);
            mi->cur = last_from(mi, from - 1);
            add_dep(mi->deps, &mi->ndeps, mi->cur >= 0 ? 2 * mi->cur : mi->lo2, 2 * from - 1);
        }
    }
    iter_check(m, mi, what, p);
}

/* ---- savepoints -------------------------------------------------------------------------- */

static void savepoint(struct model *m, tind_tx *tx)
{
    if (m->nsaves == MAXSAVES) return;
    EXPECT_OK(tind_tx_savepoint(tx));
    memcpy(m->saved_own[m->nsaves], m->own, sizeof m->own);
    m->saved_other[m->nsaves] = m->other_writes;
    m->nsaves++;
}

/* Undoes the writes since the newest savepoint. Every read stays a
 * dependency, those since the savepoint included (what the transaction saw
 * may steer what it writes after the rollback), and so does every stretch an
 * iterator walked, whether it closed before the rollback or after. Open
 * iterators keep the view they opened with. */
static void rollback(struct model *m, tind_tx *tx)
{
    if (m->nsaves == 0) {
        EXPECT_RC(tind_tx_rollback_to(tx), TIND_NOT_FOUND);
        return;
    }
    EXPECT_OK(tind_tx_rollback_to(tx));
    m->nsaves--;
    memcpy(m->own, m->saved_own[m->nsaves], sizeof m->own);
    m->other_writes = m->saved_other[m->nsaves];
}

/* ---- a round ---------------------------------------------------------------------------------- */

static void check_db(const struct model *m)
{
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(m->ks, NULL, NULL, &it));
    tind_iter_seek_first(it);
    for (int i = 0; i < NK; i++) {
        if (!m->cur[i].present) continue;
        size_t kl, vl;
        cr_assert(tind_iter_valid(it), "round %d: the database lacks %s", m->round, keys[i]);
        const void *k = tind_iter_key(it, &kl);
        const void *v = tind_iter_value(it, &vl);
        cr_assert(kl == klens[i] && memcmp(k, keys[i], kl) == 0, "round %d: want %s, got %s", m->round, keys[i],
                  tu_hex(k, kl));
        cr_assert(vl == strlen(m->cur[i].v) && memcmp(v, m->cur[i].v, vl) == 0, "round %d: %s: want %s, got %s",
                  m->round, keys[i], m->cur[i].v, tu_hex(v, vl));
        tind_iter_next(it);
    }
    cr_assert(!tind_iter_valid(it), "round %d: the database holds more keys than the model", m->round);
    EXPECT_OK(tind_iter_status(it));
    tind_iter_close(it);
}

static void round_run(struct model *m, tind_db *db)
{
    plain_writes(m, (int)tu_below(&m->rng, 6));
    if (tu_below(&m->rng, 8) == 0) EXPECT_OK(tind_keyspace_flush(m->ks));
    /* One round in six runs a single-writer transaction: no one else writes
     * meanwhile (this thread's plain writes are refused), and it commits. */
    int single = tu_below(&m->rng, 6) == 0;
    tind_tx *tx = NULL;
    EXPECT_OK(single ? tind_wtx_begin(db, &tx) : tind_tx_begin(db, &tx));
    memcpy(m->snap, m->cur, sizeof m->snap);
    memset(m->own, 0, sizeof m->own);
    memset(m->conc, 0, sizeof m->conc);
    m->any_conc = 0;
    m->other_writes = 0;
    m->ndeps = 0;
    m->nsaves = 0;
    int conc_odds = single ? 0 : (int)tu_below(&m->rng, 3); /* 0: no one writes meanwhile */
    int steps = 10 + (int)tu_below(&m->rng, 40);
    for (m->step = 0; m->step < steps; m->step++) {
        struct model_iter *mi = &m->iters[tu_below(&m->rng, 2)];
        int op = (int)tu_below(&m->rng, 20);
        if (op < 4) {
            tx_write(m, tx);
        } else if (op < 7) {
            tx_read(m, tx);
        } else if (op < 14) {
            if (!mi->it) iter_open(m, tx, mi);
            iter_move(m, mi);
        } else if (op < 15) {
            if (mi->it) iter_close(m, mi);
        } else if (op < 16) {
            savepoint(m, tx);
        } else if (op < 17) {
            rollback(m, tx);
        } else if (single) {
            EXPECT_RC(tind_put(m->ks, "x", 1, "y", 1), TIND_BUSY);
        } else if (conc_odds > 0 && (int)tu_below(&m->rng, 3) < conc_odds) {
            /* Someone else commits after the snapshot: invisible to tx. */
            int i = (int)tu_below(&m->rng, NK);
            if (tu_below(&m->rng, 3) == 0) {
                plain_del(m, i);
            } else {
                int hot = tu_below(&m->rng, 3) == 0 ? 12 : 1;
                for (int r = 0; r < hot; r++) plain_put(m, i);
            }
            m->conc[i] = m->any_conc = 1;
        }
    }

    int must = 0, writes = m->other_writes;
    for (int i = 0; i < NK; i++) writes |= m->own[i].st != OWN_NONE;
    /* Iterators left open join at the commit. */
    struct dep all[MAXDEPS * 3];
    int nall = 0;
    for (int d = 0; d < m->ndeps; d++) all[nall++] = m->deps[d];
    for (int j = 0; j < 2; j++)
        for (int d = 0; d < m->iters[j].ndeps; d++) all[nall++] = m->iters[j].deps[d];
    int hit = -1;
    for (int i = 0; i < NK && !must; i++)
        for (int d = 0; d < nall && m->conc[i]; d++)
            if (all[d].a <= 2 * i && 2 * i <= all[d].b) {
                must = 1;
                hit = i;
                break;
            }

    int do_abort = tu_below(&m->rng, 6) == 0;
    int close_first = tu_below(&m->rng, 2) == 0;
    for (int j = 0; j < 2 && close_first; j++)
        if (m->iters[j].it) iter_close(m, &m->iters[j]);
    if (do_abort) {
        tind_tx_abort(tx);
    } else {
        int rc = tind_tx_commit(tx);
        if (!writes || single) {
            EXPECT_OK(rc); /* read-only: no checks; single-writer: never conflicts */
        } else if (must) {
            cr_assert_eq(rc, TIND_CONFLICT,
                         "round %d: %s, read by the transaction, was written after its snapshot, yet its commit "
                         "returned %d",
                         m->round, keys[hit], rc);
        } else if (!m->any_conc) {
            cr_assert_eq(rc, TIND_OK, "round %d: nothing was written after the snapshot, yet the commit returned %d (%s)",
                         m->round, rc, tind_last_error());
        } else {
            cr_assert(rc == TIND_OK || rc == TIND_CONFLICT, "round %d: commit returned %d", m->round, rc);
        }
        if (rc == TIND_OK)
            for (int i = 0; i < NK; i++) {
                if (m->own[i].st == OWN_PUT) {
                    m->cur[i].present = 1;
                    memcpy(m->cur[i].v, m->own[i].v, MAXV);
                } else if (m->own[i].st == OWN_DEL) {
                    m->cur[i].present = 0;
                }
            }
    }
    /* Iterators outlive their transaction; they stay valid to close. */
    for (int j = 0; j < 2; j++)
        if (m->iters[j].it) {
            tind_iter_close(m->iters[j].it);
            m->iters[j].it = NULL;
            m->iters[j].ndeps = 0;
        }
    check_db(m);
}

Test(tx_model, iterators_and_reads_match_the_snapshot_with_own_writes_and_conflicts_are_found, .timeout = 120)
{
    make_keys();
    static struct model m;
    memset(&m, 0, sizeof m);
    m.rng = tu_seed("tx_model");
    int rounds = 400;
    const char *env = getenv("TIND_TX_MODEL_ROUNDS");
    if (env && atoi(env) > 0) rounds = atoi(env);
    /* Small memtables: rounds meet tables, sealed memtables and the active one. */
    tind_options o;
    tind_options_init(&o);
    g_db = open_db(sub("db"), &o);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64 << 10;
    m.ks = ks_open(g_db, "a", &ko);
    m.other = ks_open(g_db, "b", NULL);
    for (m.round = 0; m.round < rounds; m.round++) round_run(&m, g_db);
    struct tind_db_stats st = db_stats(g_db);
    cr_assert_eq(st.transactions_open, 0);
    cr_assert_eq(st.conflict_log_entries, 0);
}
