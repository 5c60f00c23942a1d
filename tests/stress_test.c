/* The concurrency stress test: writers committing batches over two keyspaces,
 * snapshot holders walking both keyspaces in lockstep, point readers, and a
 * thread forcing flushes and compactions, all at once on tiny memtables and
 * tables, for TIND_STRESS_SECONDS (default 2; `make stress-test SECONDS=N`,
 * and `make SAN=thread ...` for ThreadSanitizer).
 *
 * Every batch writes the same key and value into both keyspaces (or deletes
 * the key from both), plus the writer's counter in both, so any snapshot must
 * show the two keyspaces identical; counters and per-key versions only move
 * forward; at the end, and after a reopen, every key holds its writer's last
 * write. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/support/testutil.h"
#include "tind.h"

enum { ST_WRITERS = 3, ST_SNAPPERS = 2, ST_KEYS = 64, ST_VALUE = 100 };

struct st_shared {
    tind_db *db;
    tind_keyspace *ks[2];
    atomic_int stop;
    atomic_int failed;
    char why[512];
    pthread_mutex_t why_mu;
};

static void st_fail(struct st_shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void st_fail(struct st_shared *sh, const char *fmt, ...)
{
    pthread_mutex_lock(&sh->why_mu);
    if (!atomic_load(&sh->failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sh->why, sizeof sh->why, fmt, ap);
        va_end(ap);
        atomic_store(&sh->failed, 1);
    }
    pthread_mutex_unlock(&sh->why_mu);
    atomic_store(&sh->stop, 1);
}

static int st_running(struct st_shared *sh) { return !atomic_load(&sh->stop); }

static size_t st_key(char *out, int w, int j) { return (size_t)sprintf(out, "w%d-k%03d", w, j); }

/* A value: the version as 15 digits, '|', then padding derived from it. */
static void st_value(char *out, uint64_t version)
{
    snprintf(out, ST_VALUE, "%015llu|", (unsigned long long)version);
    for (int i = 16; i < ST_VALUE; i++) out[i] = (char)('a' + (version + (uint64_t)i) % 26);
}

/* The version a well-formed value holds, or -1. */
static long long st_parse(const void *v, size_t vl)
{
    if (vl != ST_VALUE) return -1;
    const char *p = v;
    long long ver = 0;
    for (int i = 0; i < 15; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        ver = ver * 10 + (p[i] - '0');
    }
    char want[ST_VALUE];
    st_value(want, (uint64_t)ver);
    return memcmp(want, v, ST_VALUE) == 0 ? ver : -1;
}

/* ---- writers ------------------------------------------------------------------------------- */

struct st_writer {
    struct st_shared *sh;
    int id;
    uint64_t rng;
    long long last[ST_KEYS]; /* version of each key's last write; -1: deleted or never written */
    uint64_t batches;
};

static void *st_writer_main(void *p)
{
    struct st_writer *w = p;
    struct st_shared *sh = w->sh;
    tind_batch *b = NULL;
    if (tind_batch_new(&b) != TIND_OK) {
        st_fail(sh, "writer %d: batch_new: %s", w->id, tind_last_error());
        return NULL;
    }
    for (int j = 0; j < ST_KEYS; j++) w->last[j] = -1;
    for (uint64_t ver = 1; st_running(sh); ver++) {
        tind_batch_clear(b);
        int j = (int)tu_below(&w->rng, ST_KEYS);
        int del = tu_below(&w->rng, 8) == 0;
        char k[32], v[ST_VALUE], ck[32];
        size_t kl = st_key(k, w->id, j);
        size_t ckl = (size_t)sprintf(ck, "counter-%d", w->id);
        st_value(v, ver);
        int rc = TIND_OK;
        for (int s = 0; s < 2 && rc == TIND_OK; s++) {
            rc = del ? tind_batch_delete(b, sh->ks[s], k, kl) : tind_batch_put(b, sh->ks[s], k, kl, v, ST_VALUE);
            if (rc == TIND_OK) rc = tind_batch_put(b, sh->ks[s], ck, ckl, v, ST_VALUE);
        }
        if (rc == TIND_OK) rc = tind_batch_commit(sh->db, b, TIND_DURABILITY_BUFFERED);
        if (rc != TIND_OK) {
            st_fail(sh, "writer %d: batch %llu: %s: %s", w->id, (unsigned long long)ver, tind_strerror(rc),
                    tind_last_error());
            break;
        }
        w->last[j] = del ? -1 : (long long)ver;
        w->batches++;
    }
    tind_batch_free(b);
    return NULL;
}

/* ---- snapshot holders: both keyspaces identical, counters only forward ---------------------------- */

struct st_snapper {
    struct st_shared *sh;
    int id;
    uint64_t rng;
    long long counter[ST_WRITERS]; /* newest counter seen in an earlier snapshot */
    uint64_t snapshots, entries;
};

/* Reads writer w's counter from keyspace s through snap: its version, -1 if
 * absent, -2 on failure (reported). */
static long long st_counter(struct st_shared *sh, tind_snapshot *snap, int s, int w)
{
    char ck[32];
    size_t ckl = (size_t)sprintf(ck, "counter-%d", w);
    void *v = NULL;
    size_t vl = 0;
    int rc = tind_snapshot_get(snap, sh->ks[s], ck, ckl, &v, &vl);
    if (rc == TIND_NOT_FOUND) return -1;
    if (rc != TIND_OK) {
        st_fail(sh, "snapshot_get %s: %s: %s", ck, tind_strerror(rc), tind_last_error());
        return -2;
    }
    long long ver = st_parse(v, vl);
    if (ver < 0) st_fail(sh, "counter %s malformed: %s", ck, tu_hex(v, vl));
    free(v);
    return ver < 0 ? -2 : ver;
}

/* Walks both keyspaces in lockstep through snap, forward or backward; they
 * must hold the same keys and values, in strict order. */
static void st_lockstep(struct st_snapper *sp, tind_snapshot *snap, int backward)
{
    struct st_shared *sh = sp->sh;
    tind_iter *it[2] = {NULL, NULL};
    for (int s = 0; s < 2; s++) {
        int rc = tind_iter_open(sh->ks[s], snap, NULL, &it[s]);
        if (rc != TIND_OK) {
            st_fail(sh, "iter_open: %s: %s", tind_strerror(rc), tind_last_error());
            goto out;
        }
        if (backward) tind_iter_seek_last(it[s]);
        else tind_iter_seek_first(it[s]);
    }
    char prev[64];
    size_t prevl = 0;
    for (uint64_t n = 0;; n++) {
        int va = tind_iter_valid(it[0]), vb = tind_iter_valid(it[1]);
        if (va != vb) {
            st_fail(sh, "snapshot %llu: one keyspace ended before the other (%s)",
                    (unsigned long long)tind_snapshot_sequence(snap), backward ? "backward" : "forward");
            goto out;
        }
        if (!va) break;
        size_t kl[2], vl[2];
        const void *k[2], *v[2];
        for (int s = 0; s < 2; s++) {
            k[s] = tind_iter_key(it[s], &kl[s]);
            v[s] = tind_iter_value(it[s], &vl[s]);
        }
        if (kl[0] != kl[1] || memcmp(k[0], k[1], kl[0]) || vl[0] != vl[1] || memcmp(v[0], v[1], vl[0])) {
            st_fail(sh, "snapshot %llu: keyspaces differ: %s=%s vs %s=%s",
                    (unsigned long long)tind_snapshot_sequence(snap), tu_hex(k[0], kl[0]), tu_hex(v[0], vl[0]),
                    tu_hex(k[1], kl[1]), tu_hex(v[1], vl[1]));
            goto out;
        }
        if (st_parse(v[0], vl[0]) < 0) {
            st_fail(sh, "malformed value under %s: %s", tu_hex(k[0], kl[0]), tu_hex(v[0], vl[0]));
            goto out;
        }
        if (n > 0) {
            int c = tu_keycmp(prev, prevl, k[0], kl[0]);
            if (backward ? c <= 0 : c >= 0) {
                st_fail(sh, "%s walk out of order: %s then %s", backward ? "backward" : "forward",
                        tu_hex(prev, prevl), tu_hex(k[0], kl[0]));
                goto out;
            }
        }
        if (kl[0] > sizeof prev) {
            st_fail(sh, "unexpected key %s", tu_hex(k[0], kl[0]));
            goto out;
        }
        memcpy(prev, k[0], kl[0]);
        prevl = kl[0];
        sp->entries++;
        if (backward) {
            tind_iter_prev(it[0]);
            tind_iter_prev(it[1]);
        } else {
            tind_iter_next(it[0]);
            tind_iter_next(it[1]);
        }
    }
    for (int s = 0; s < 2; s++)
        if (tind_iter_status(it[s]) != TIND_OK)
            st_fail(sh, "iterator status %s: %s", tind_strerror(tind_iter_status(it[s])), tind_last_error());
out:
    tind_iter_close(it[0]);
    tind_iter_close(it[1]);
}

static void *st_snapper_main(void *p)
{
    struct st_snapper *sp = p;
    struct st_shared *sh = sp->sh;
    for (int w = 0; w < ST_WRITERS; w++) sp->counter[w] = -1;
    while (st_running(sh)) {
        tind_snapshot *snap = NULL;
        int rc = tind_snapshot_open(sh->db, &snap);
        if (rc != TIND_OK) {
            st_fail(sh, "snapshot_open: %s: %s", tind_strerror(rc), tind_last_error());
            break;
        }
        long long at_open[ST_WRITERS];
        for (int w = 0; w < ST_WRITERS && st_running(sh); w++) {
            long long a = st_counter(sh, snap, 0, w), b = st_counter(sh, snap, 1, w);
            if (a == -2 || b == -2) break;
            if (a != b) st_fail(sh, "snapshot: counter-%d is %lld in one keyspace, %lld in the other", w, a, b);
            else if (a < sp->counter[w])
                st_fail(sh, "counter-%d went back from %lld to %lld in a later snapshot", w, sp->counter[w], a);
            at_open[w] = a;
            sp->counter[w] = a;
        }
        if (st_running(sh)) st_lockstep(sp, snap, (int)(sp->snapshots & 1));
        /* held across writes, flushes and compactions: still the same answers */
        for (int w = 0; w < ST_WRITERS && st_running(sh); w++) {
            long long a = st_counter(sh, snap, (int)tu_below(&sp->rng, 2), w);
            if (a != -2 && a != at_open[w])
                st_fail(sh, "snapshot changed: counter-%d was %lld, now %lld", w, at_open[w], a);
        }
        tind_snapshot_close(snap);
        sp->snapshots++;
    }
    return NULL;
}

/* ---- point readers: versions only move forward ------------------------------------------------ */

struct st_reader {
    struct st_shared *sh;
    uint64_t rng;
    long long seen[ST_WRITERS][ST_KEYS];
    uint64_t gets;
};

static void *st_reader_main(void *p)
{
    struct st_reader *rd = p;
    struct st_shared *sh = rd->sh;
    while (st_running(sh)) {
        int w = (int)tu_below(&rd->rng, ST_WRITERS), j = (int)tu_below(&rd->rng, ST_KEYS);
        char k[32];
        size_t kl = st_key(k, w, j);
        void *v = NULL;
        size_t vl = 0;
        int rc = tind_get(sh->ks[0], k, kl, &v, &vl);
        rd->gets++;
        if (rc == TIND_NOT_FOUND) continue;
        if (rc != TIND_OK) {
            st_fail(sh, "get %s: %s: %s", k, tind_strerror(rc), tind_last_error());
            break;
        }
        long long ver = st_parse(v, vl);
        free(v);
        if (ver < 0) st_fail(sh, "get %s: malformed value", k);
        else if (ver < rd->seen[w][j]) st_fail(sh, "get %s: version went back from %lld to %lld", k, rd->seen[w][j], ver);
        else rd->seen[w][j] = ver;
    }
    return NULL;
}

/* ---- maintenance: flushes, compactions and statistics ----------------------------------------- */

struct st_maint {
    struct st_shared *sh;
    uint64_t rng;
    uint64_t flushes, compactions;
};

static void *st_maint_main(void *p)
{
    struct st_maint *m = p;
    struct st_shared *sh = m->sh;
    while (st_running(sh)) {
        int s = (int)tu_below(&m->rng, 2);
        int compact = tu_below(&m->rng, 4) == 0;
        int rc = compact ? tind_keyspace_compact(sh->ks[s]) : tind_keyspace_flush(sh->ks[s]);
        if (rc != TIND_OK) {
            st_fail(sh, "%s: %s: %s", compact ? "compact" : "flush", tind_strerror(rc), tind_last_error());
            break;
        }
        if (compact) m->compactions++;
        else m->flushes++;
        struct tind_db_stats ds;
        struct tind_keyspace_stats ks;
        if (tind_db_stats(sh->db, &ds) != TIND_OK || tind_keyspace_stats(sh->ks[s], &ks) != TIND_OK) {
            st_fail(sh, "stats: %s", tind_last_error());
            break;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* ---- the test ---------------------------------------------------------------------------------- */

static char *g_stress_dir;

static void stress_teardown(void)
{
    if (g_stress_dir) tu_rmtree(g_stress_dir);
    free(g_stress_dir);
    g_stress_dir = NULL;
}

TestSuite(stress, .fini = stress_teardown);

static void st_open(struct st_shared *sh, const char *dir)
{
    int rc = tind_open(dir, NULL, &sh->db);
    cr_assert_eq(rc, TIND_OK, "open: %s", tind_last_error());
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64 << 10; /* flushes all the time */
    ko.table_target_bytes = 64 << 10;
    ko.l0_trigger = 2;
    ko.block_size = 1024;
    static const char *names[2] = {"left", "right"};
    for (int s = 0; s < 2; s++) {
        rc = tind_keyspace_open(sh->db, names[s], &ko, &sh->ks[s]);
        cr_assert_eq(rc, TIND_OK, "keyspace_open %s: %s", names[s], tind_last_error());
    }
}

/* Every key of every writer holds the writer's last write, in both keyspaces. */
static void st_check_final(struct st_shared *sh, struct st_writer *w, const char *when)
{
    for (int wi = 0; wi < ST_WRITERS; wi++)
        for (int j = 0; j < ST_KEYS; j++)
            for (int s = 0; s < 2; s++) {
                char k[32];
                size_t kl = st_key(k, wi, j);
                void *v = NULL;
                size_t vl = 0;
                int rc = tind_get(sh->ks[s], k, kl, &v, &vl);
                if (w[wi].last[j] < 0) {
                    cr_assert_eq(rc, TIND_NOT_FOUND, "%s: %s should be deleted or absent (rc %d)", when, k, rc);
                } else {
                    cr_assert_eq(rc, TIND_OK, "%s: get %s: %s", when, k, tind_last_error());
                    long long ver = st_parse(v, vl);
                    cr_assert_eq(ver, w[wi].last[j], "%s: %s holds version %lld, want %lld", when, k, ver,
                                 w[wi].last[j]);
                }
                free(v);
            }
}

Test(stress, writers_snapshots_readers_flushes_compactions)
{
    const char *e = getenv("TIND_STRESS_SECONDS");
    double seconds = e && *e ? atof(e) : 2.0;
    uint64_t seed = tu_seed("stress::writers_snapshots_readers_flushes_compactions");
    g_stress_dir = tu_mkdtemp("stress");
    cr_assert_not_null(g_stress_dir);
    struct st_shared *sh = calloc(1, sizeof *sh);
    struct st_writer *w = calloc(ST_WRITERS, sizeof *w);
    struct st_snapper *sp = calloc(ST_SNAPPERS, sizeof *sp);
    struct st_reader *rd = calloc(1, sizeof *rd);
    struct st_maint *mt = calloc(1, sizeof *mt);
    cr_assert(sh && w && sp && rd && mt);
    pthread_mutex_init(&sh->why_mu, NULL);
    st_open(sh, g_stress_dir);

    pthread_t wt[ST_WRITERS], st[ST_SNAPPERS], rt, mth;
    for (int i = 0; i < ST_WRITERS; i++) {
        w[i] = (struct st_writer){.sh = sh, .id = i, .rng = seed + 1 + (uint64_t)i};
        cr_assert_eq(pthread_create(&wt[i], NULL, st_writer_main, &w[i]), 0);
    }
    for (int i = 0; i < ST_SNAPPERS; i++) {
        sp[i] = (struct st_snapper){.sh = sh, .id = i, .rng = seed + 100 + (uint64_t)i};
        cr_assert_eq(pthread_create(&st[i], NULL, st_snapper_main, &sp[i]), 0);
    }
    rd->sh = sh;
    rd->rng = seed + 200;
    memset(rd->seen, 0, sizeof rd->seen);
    cr_assert_eq(pthread_create(&rt, NULL, st_reader_main, rd), 0);
    *mt = (struct st_maint){.sh = sh, .rng = seed + 300};
    cr_assert_eq(pthread_create(&mth, NULL, st_maint_main, mt), 0);

    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (st_running(sh) && (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
    atomic_store(&sh->stop, 1);
    for (int i = 0; i < ST_WRITERS; i++) pthread_join(wt[i], NULL);
    for (int i = 0; i < ST_SNAPPERS; i++) pthread_join(st[i], NULL);
    pthread_join(rt, NULL);
    pthread_join(mth, NULL);
    cr_assert_not(atomic_load(&sh->failed), "seed %llu: %s", (unsigned long long)seed, sh->why);

    uint64_t batches = 0, snaps = 0, entries = 0;
    for (int i = 0; i < ST_WRITERS; i++) batches += w[i].batches;
    for (int i = 0; i < ST_SNAPPERS; i++) {
        snaps += sp[i].snapshots;
        entries += sp[i].entries;
    }
    cr_assert_gt(batches, 0);
    cr_assert_gt(snaps, 0);
    st_check_final(sh, w, "after the run");
    /* Two writers' batches in one group are applied in parallel (8 ops). */
    struct tind_db_stats ds;
    cr_assert_eq(tind_db_stats(sh->db, &ds), TIND_OK);
    cr_assert_eq(tind_close(sh->db), TIND_OK, "close: %s", tind_last_error());
    st_open(sh, g_stress_dir);
    st_check_final(sh, w, "after reopen");
    cr_assert_eq(tind_close(sh->db), TIND_OK, "close: %s", tind_last_error());
    fprintf(stderr,
            "stress: %.1f s: %llu batches by %d writers, %llu snapshots walking %llu entries in lockstep, %llu gets, "
            "%llu flushes, %llu compactions, %llu of %llu groups applied in parallel: ok\n",
            seconds, (unsigned long long)batches, ST_WRITERS, (unsigned long long)snaps, (unsigned long long)entries,
            (unsigned long long)rd->gets, (unsigned long long)mt->flushes, (unsigned long long)mt->compactions,
            (unsigned long long)ds.parallel_groups, (unsigned long long)ds.write_groups);
    pthread_mutex_destroy(&sh->why_mu);
    free(sh);
    free(w);
    free(sp);
    free(rd);
    free(mt);
}

/* ---- flushes and compactions racing a drop --------------------------------------------------- */

/* A flush's seal request passed the keyspace check before it was queued; the
 * drop was applied first and the leader then sealed the retired keyspace
 * (its freed memtable, its closed manifest). And a second tind_keyspace_compact
 * woken by the drop gave back the tree the first one still held, so the drop
 * closed the manifest under the first one's merge. Every round races flushers
 * and compacters against one drop; under AddressSanitizer any touch of the
 * freed state aborts the test. */
enum { RD_ROUNDS = 150, RD_FLUSHERS = 2, RD_COMPACTERS = 2 };

struct rd_worker {
    tind_keyspace *ks;
    int compact;
    atomic_int *go;
    int bad_rc; /* the first status other than TIND_OK or TIND_INVALID */
    char why[256];
    uint64_t calls;
};

static void *rd_worker_main(void *arg)
{
    struct rd_worker *w = arg;
    while (!atomic_load(w->go)) {
    }
    for (;;) {
        int rc = w->compact ? tind_keyspace_compact(w->ks) : tind_keyspace_flush(w->ks);
        w->calls++;
        if (rc == TIND_INVALID) break; /* dropped */
        if (rc != TIND_OK) {
            w->bad_rc = rc;
            snprintf(w->why, sizeof w->why, "%s", tind_last_error());
            break;
        }
    }
    return NULL;
}

Test(stress, flush_and_compact_racing_a_drop_never_touch_freed_state, .timeout = 300)
{
    uint64_t seed = tu_seed("stress::flush_and_compact_racing_a_drop_never_touch_freed_state");
    uint64_t rng = seed;
    g_stress_dir = tu_mkdtemp("stress-drop");
    cr_assert_not_null(g_stress_dir);
    tind_options o;
    tind_options_init(&o);
    o.workers = 3;
    tind_db *db;
    cr_assert_eq(tind_open(g_stress_dir, &o, &db), TIND_OK, "open: %s", tind_last_error());
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64 << 10;
    ko.table_target_bytes = 64 << 10;
    ko.l0_trigger = 2;
    char val[ST_VALUE];
    uint64_t calls = 0;
    for (int round = 0; round < RD_ROUNDS; round++) {
        tind_keyspace *ks;
        cr_assert_eq(tind_keyspace_open(db, "victim", &ko, &ks), TIND_OK, "round %d: open: %s", round,
                     tind_last_error());
        /* A few tables and a filled memtable: flushes and compactions have work. */
        for (int j = 0; j < 40; j++) {
            char k[32];
            size_t kl = st_key(k, round, j);
            st_value(val, (uint64_t)j);
            cr_assert_eq(tind_put(ks, k, kl, val, ST_VALUE), TIND_OK, "put: %s", tind_last_error());
            if (j % 10 == 9) cr_assert_eq(tind_keyspace_flush(ks), TIND_OK, "flush: %s", tind_last_error());
        }
        atomic_int go;
        atomic_init(&go, 0);
        struct rd_worker w[RD_FLUSHERS + RD_COMPACTERS];
        pthread_t t[RD_FLUSHERS + RD_COMPACTERS];
        for (int i = 0; i < RD_FLUSHERS + RD_COMPACTERS; i++) {
            w[i] = (struct rd_worker){.ks = ks, .compact = i >= RD_FLUSHERS, .go = &go};
            cr_assert_eq(pthread_create(&t[i], NULL, rd_worker_main, &w[i]), 0);
        }
        atomic_store(&go, 1);
        /* 0-2 ms into the race. */
        struct timespec ts = {0, (long)tu_below(&rng, 2000) * 1000};
        nanosleep(&ts, NULL);
        cr_assert_eq(tind_keyspace_drop(db, "victim"), TIND_OK, "seed %llu round %d: drop: %s",
                     (unsigned long long)seed, round, tind_last_error());
        for (int i = 0; i < RD_FLUSHERS + RD_COMPACTERS; i++) {
            pthread_join(t[i], NULL);
            cr_assert_eq(w[i].bad_rc, 0, "seed %llu round %d: a %s racing the drop got %d: %s",
                         (unsigned long long)seed, round, w[i].compact ? "compaction" : "flush", w[i].bad_rc, w[i].why);
            calls += w[i].calls;
        }
        cr_assert_eq(tind_keyspace_flush(ks), TIND_INVALID, "a flush of the dropped keyspace did not fail");
        cr_assert_eq(tind_keyspace_compact(ks), TIND_INVALID, "a compaction of the dropped keyspace did not fail");
    }
    cr_assert_eq(tind_close(db), TIND_OK, "close: %s", tind_last_error());
    fprintf(stderr, "stress: %d drops raced by %llu flushes and compactions: ok\n", RD_ROUNDS,
            (unsigned long long)calls);
}
