/* The public API under load: statistics, big values, journal rotation, group
 * commit, and writers, readers and drops at once. */
#include "tests/api_common.h"

TestSuite(api_load, .init = api_setup, .fini = api_teardown);

/* ---- persist and statistics ------------------------------------------------------------- */

Test(api_load, persist_with_each_durability)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    put_s(ks, "a", "1");
    uint64_t syncs = db_stats(g_db).journal_syncs;
    EXPECT_OK(tind_persist(g_db, TIND_DURABILITY_BUFFERED));
    cr_assert_eq(db_stats(g_db).journal_syncs, syncs, "a BUFFERED persist synced");
    EXPECT_OK(tind_persist(g_db, TIND_DURABILITY_SYNC_DATA));
    cr_assert_gt(db_stats(g_db).journal_syncs, syncs, "a SYNC_DATA persist did not sync");
    syncs = db_stats(g_db).journal_syncs;
    EXPECT_OK(tind_persist(g_db, TIND_DURABILITY_SYNC_ALL));
    cr_assert_gt(db_stats(g_db).journal_syncs, syncs, "a SYNC_ALL persist did not sync");
    /* persist writes nothing */
    struct tind_db_stats st = db_stats(g_db);
    cr_assert_eq(st.writes, 1, "persist counted as a write: %llu", (unsigned long long)st.writes);
    cr_assert_eq(st.last_sequence, 1);
    /* on an empty database too */
    tind_db *db2 = open_db(sub("db2"), NULL);
    for (int d = TIND_DURABILITY_BUFFERED; d <= TIND_DURABILITY_SYNC_ALL; d++) EXPECT_OK(tind_persist(db2, d));
    EXPECT_OK(tind_close(db2));
    close_main();
    g_db = open_db(sub("db"), NULL);
    expect_val(NULL, ks_open(g_db, "k", NULL), "a", "1");
}

Test(api_load, db_stats_fields)
{
    g_db = open_db(sub("db"), NULL);
    struct tind_db_stats st = db_stats(g_db);
    cr_assert_eq(st.keyspaces, 0);
    cr_assert_eq(st.writes, 0);
    cr_assert_eq(st.write_groups, 0);
    uint64_t sync0 = st.journal_syncs; /* creating the first journal may count a sync */
    cr_assert_eq(st.snapshots, 0);
    cr_assert_eq(st.iterators, 0);
    cr_assert_geq(st.journal_files, 1, "no journal file on disk");
    uint64_t seq0 = st.last_sequence;

    tind_keyspace *a = ks_open(g_db, "a", NULL);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.durability = TIND_DURABILITY_SYNC_DATA;
    tind_keyspace *sync = ks_open(g_db, "sync", &ko);
    cr_assert_eq(db_stats(g_db).keyspaces, 2);

    put_s(a, "k1", "v");
    put_s(a, "k2", "v");
    del_s(a, "k1");
    st = db_stats(g_db);
    cr_assert_eq(st.writes, 3, "writes %llu after 3", (unsigned long long)st.writes);
    cr_assert_eq(st.write_groups, 3, "one thread, one group per write: %llu", (unsigned long long)st.write_groups);
    cr_assert_eq(st.last_sequence, seq0 + 3);
    cr_assert_eq(st.journal_syncs, sync0, "BUFFERED writes synced");
    cr_assert_gt(st.journal_bytes, 0);

    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_OK(tind_batch_put(b, a, "b1", 2, "v", 1));
    EXPECT_OK(tind_batch_put(b, sync, "b2", 2, "v", 1));
    EXPECT_OK(tind_batch_delete(b, a, "b3", 2));
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED));
    st = db_stats(g_db);
    cr_assert_eq(st.writes, 4, "a batch is one write request: %llu", (unsigned long long)st.writes);
    cr_assert_eq(st.last_sequence, seq0 + 6, "a batch of 3 ops takes 3 sequence numbers");
    cr_assert_eq(st.journal_syncs, sync0);

    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_SYNC_DATA));
    st = db_stats(g_db);
    cr_assert_eq(st.journal_syncs, sync0 + 1, "a SYNC_DATA batch: %llu syncs after %llu",
                 (unsigned long long)st.journal_syncs, (unsigned long long)sync0);
    tind_batch_free(b);

    put_s(sync, "s", "v"); /* keyspace durability SYNC_DATA */
    st = db_stats(g_db);
    cr_assert_eq(st.journal_syncs, sync0 + 2, "a put on a SYNC_DATA keyspace: %llu syncs after %llu",
                 (unsigned long long)st.journal_syncs, (unsigned long long)sync0);
    cr_assert_eq(st.writes, 6);
    cr_assert_eq(st.last_sequence, seq0 + 10);
    uint64_t bytes = st.journal_bytes;

    tind_snapshot *s1 = NULL, *s2 = NULL;
    tind_iter *i1 = NULL, *i2 = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s1));
    EXPECT_OK(tind_snapshot_open(g_db, &s2));
    EXPECT_OK(tind_iter_open(a, NULL, NULL, &i1));
    EXPECT_OK(tind_iter_open_prefix(a, s1, "k", 1, &i2));
    st = db_stats(g_db);
    cr_assert_eq(st.snapshots, 2);
    cr_assert_eq(st.iterators, 2);
    tind_snapshot_close(s2);
    tind_iter_close(i1);
    st = db_stats(g_db);
    cr_assert_eq(st.snapshots, 1);
    cr_assert_eq(st.iterators, 1);
    tind_iter_close(i2);
    tind_snapshot_close(s1);
    st = db_stats(g_db);
    cr_assert_eq(st.snapshots, 0);
    cr_assert_eq(st.iterators, 0);
    cr_assert_eq(st.journal_bytes, bytes, "reads changed the journal size");

    EXPECT_OK(tind_keyspace_drop(g_db, "sync"));
    st = db_stats(g_db);
    cr_assert_eq(st.keyspaces, 1);
    cr_assert_eq(st.last_sequence, seq0 + 10, "a drop took a sequence number");

    /* after reopen: counters restart, the sequence does not */
    close_main();
    g_db = open_db(sub("db"), NULL);
    st = db_stats(g_db);
    cr_assert_eq(st.writes, 0, "writes is 'since open'");
    cr_assert_eq(st.keyspaces, 1);
    cr_assert_geq(st.last_sequence, seq0 + 10, "last_sequence went back after reopen");
    cr_assert_geq(st.journal_files, 1);
}

Test(api_load, keyspace_stats_fields)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL), *b = ks_open(g_db, "b", NULL);
    struct tind_keyspace_stats sa = ks_stats(a), sb = ks_stats(b);
    cr_assert_neq(sa.id, sb.id);
    cr_assert_eq(sa.memtable_entries, 0);
    cr_assert_eq(sa.durability, TIND_DURABILITY_BUFFERED);
    uint64_t empty_bytes = sa.memtable_bytes;
    put_s(a, "k", "v1");
    put_s(a, "k", "v2");
    del_s(a, "k");
    del_s(a, "never");
    sa = ks_stats(a);
    cr_assert_eq(sa.memtable_entries, 4, "puts and tombstones, every version: got %llu",
                 (unsigned long long)sa.memtable_entries);
    cr_assert_geq(sa.memtable_bytes, empty_bytes);
    cr_assert_eq(ks_stats(b).memtable_entries, 0, "writes to a counted in b");
    /* memory is reserved in blocks: 4 MiB of values must need more of it */
    uint8_t v[4096];
    memset(v, 'x', sizeof v);
    for (int i = 0; i < 1024; i++) {
        char k[16];
        snprintf(k, sizeof k, "big%04d", i);
        EXPECT_OK(tind_put(b, k, strlen(k), v, sizeof v));
    }
    sb = ks_stats(b);
    cr_assert_geq(sb.memtable_bytes, (uint64_t)1024 * sizeof v, "memtable_bytes %llu after 4 MiB of values",
                  (unsigned long long)sb.memtable_bytes);
    cr_assert_eq(sb.memtable_entries, 1024);
    cr_assert_eq(ks_stats(a).memtable_entries, 4);
    close_main();
    g_db = open_db(sub("db"), NULL);
    a = ks_open(g_db, "a", NULL);
    struct tind_keyspace_stats sa2 = ks_stats(a);
    cr_assert_eq(sa2.id, sa.id);
    /* replay puts the entries back in a memtable (until a flush exists) */
    cr_assert_leq(sa2.memtable_entries, 4);
}

/* ---- big values, journal rotation, group commit ------------------------------------------- */

Test(api_load, value_of_64_mib_round_trips)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "big", NULL);
    size_t n = (size_t)64 << 20;
    uint8_t *v = malloc(n);
    cr_assert_not_null(v);
    tu_fill(v, n, 64);
    EXPECT_OK(tind_put(ks, "big", 3, v, n));
    put_s(ks, "small", "after");
    free(v);
    for (int round = 0; round < 2; round++) {
        void *got = NULL;
        size_t gl = 0;
        EXPECT_OK(tind_get(ks, "big", 3, &got, &gl));
        cr_assert_eq(gl, n, "round %d: length %zu, want %zu", round, gl, n);
        size_t bad = tu_check_fill(got, gl, 64);
        cr_assert_eq(bad, n, "round %d: the 64 MiB value differs at byte %zu", round, bad);
        tind_free(got);
        expect_val(NULL, ks, "small", "after");
        if (round == 0) {
            close_main();
            g_db = open_db(sub("db"), NULL);
            ks = ks_open(g_db, "big", NULL);
        }
    }
    /* through an iterator too */
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(ks, NULL, NULL, &it));
    tind_iter_seek_first(it);
    cr_assert(tind_iter_valid(it));
    size_t vl = 0;
    const void *vp = tind_iter_value(it, &vl);
    cr_assert_eq(vl, n);
    cr_assert_eq(tu_check_fill(vp, vl, 64), n);
    tind_iter_seek_last(it);
    tind_iter_prev(it);
    cr_assert(tind_iter_valid(it));
    vp = tind_iter_value(it, &vl);
    cr_assert_eq(vl, n, "backward: length %zu", vl);
    cr_assert_eq(tu_check_fill(vp, vl, 64), n);
    tind_iter_close(it);
}

Test(api_load, journal_rotation_keeps_everything)
{
    tind_options o;
    tind_options_init(&o);
    o.journal_max_bytes = 64u << 10;
    g_db = open_db(sub("db"), &o);
    tind_keyspace *a = ks_open(g_db, "a", NULL), *b = ks_open(g_db, "b", NULL);
    enum { N = 3000, VLEN = 1000 };
    uint8_t v[VLEN + 64];
    char k[32];
    tind_batch *bt = NULL;
    EXPECT_OK(tind_batch_new(&bt));
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        size_t vl = (size_t)(i % 64) + VLEN;
        tu_fill(v, vl, (uint64_t)i);
        if (i % 10 == 9) {
            /* batches crossing keyspaces along the way */
            tind_batch_clear(bt);
            EXPECT_OK(tind_batch_put(bt, a, k, strlen(k), v, vl));
            EXPECT_OK(tind_batch_put(bt, b, k, strlen(k), v, vl));
            EXPECT_OK(tind_batch_commit(g_db, bt, i % 20 == 19 ? TIND_DURABILITY_SYNC_DATA : TIND_DURABILITY_BUFFERED));
        } else {
            EXPECT_OK(tind_put(a, k, strlen(k), v, vl));
        }
        if (i % 500 == 0) EXPECT_OK(tind_delete(a, "key000000", 9));
    }
    tind_batch_free(bt);
    struct tind_db_stats st = db_stats(g_db);
    cr_assert_gt(st.journal_files, 1, "%llu journal files after %d writes of ~1 KB with 64 KiB journals",
                 (unsigned long long)st.journal_files, N);
    cr_assert_gt(st.journal_bytes, (uint64_t)N * VLEN);

    for (int round = 0; round < 3; round++) {
        if (round == 1) {
            close_main();
            g_db = open_db(sub("db"), &o);
        } else if (round == 2) {
            close_main();
            g_db = open_db(sub("db"), NULL); /* default size: the old small journals still replay */
        }
        if (round > 0) {
            a = ks_open(g_db, "a", NULL);
            b = ks_open(g_db, "b", NULL);
        }
        for (int i = 0; i < N; i++) {
            snprintf(k, sizeof k, "key%06d", i);
            size_t vl = (size_t)(i % 64) + VLEN;
            void *got = NULL;
            size_t gl = 0;
            int rc = tind_get(a, k, strlen(k), &got, &gl);
            if (i == 0) {
                cr_assert_eq(rc, TIND_NOT_FOUND, "round %d: deleted %s is back", round, k);
                continue;
            }
            cr_assert_eq(rc, TIND_OK, "round %d: %s missing: %s", round, k, tind_last_error());
            cr_assert_eq(gl, vl, "round %d: %s has %zu bytes, want %zu", round, k, gl, vl);
            cr_assert_eq(tu_check_fill(got, gl, (uint64_t)i), vl, "round %d: %s value differs", round, k);
            tind_free(got);
            rc = tind_get(b, k, strlen(k), &got, &gl);
            if (i % 10 == 9) {
                cr_assert_eq(rc, TIND_OK, "round %d: %s missing in b", round, k);
                cr_assert_eq(tu_check_fill(got, gl, (uint64_t)i), vl);
                tind_free(got);
            } else {
                cr_assert_eq(rc, TIND_NOT_FOUND, "round %d: %s in b", round, k);
            }
        }
    }
    st = db_stats(g_db);
    cr_assert_gt(st.journal_files, 1);
}

enum { GC_THREADS = 4, GC_PUTS = 150, GC_MAX_ROUNDS = 20 };

struct gc_arg {
    tind_keyspace *ks;
    int thread, round;
    int failed_at;
    int rc;
};

static void *gc_writer(void *p)
{
    struct gc_arg *a = p;
    a->failed_at = -1;
    for (int i = 0; i < GC_PUTS; i++) {
        char k[64], v[32];
        snprintf(k, sizeof k, "r%02d-t%d-%04d", a->round, a->thread, i);
        snprintf(v, sizeof v, "v%d", i);
        int rc = tind_put(a->ks, k, strlen(k), v, strlen(v));
        if (rc != TIND_OK) {
            a->failed_at = i;
            a->rc = rc;
            return NULL;
        }
    }
    return NULL;
}

Test(api_load, group_commit_from_four_threads)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.durability = TIND_DURABILITY_SYNC_DATA;
    tind_keyspace *ks = ks_open(g_db, "sync", &ko);
    struct tind_db_stats st0 = db_stats(g_db), st = st0;
    /* Grouping depends on the scheduler; rounds go on until some group
     * carried two writes. With 4 threads waiting on fdatasync that is the
     * first round in practice. */
    int rounds = 0;
    do {
        pthread_t t[GC_THREADS];
        struct gc_arg a[GC_THREADS];
        for (int i = 0; i < GC_THREADS; i++) {
            a[i] = (struct gc_arg){.ks = ks, .thread = i, .round = rounds};
            cr_assert_eq(pthread_create(&t[i], NULL, gc_writer, &a[i]), 0);
        }
        for (int i = 0; i < GC_THREADS; i++) pthread_join(t[i], NULL);
        for (int i = 0; i < GC_THREADS; i++)
            cr_assert_eq(a[i].failed_at, -1, "thread %d: put %d failed with %d (%s)", i, a[i].failed_at, a[i].rc,
                         tind_strerror(a[i].rc));
        rounds++;
        st = db_stats(g_db);
    } while (st.write_groups - st0.write_groups == st.writes - st0.writes && rounds < GC_MAX_ROUNDS);

    uint64_t writes = st.writes - st0.writes, groups = st.write_groups - st0.write_groups;
    uint64_t syncs = st.journal_syncs - st0.journal_syncs;
    cr_assert_eq(writes, (uint64_t)rounds * GC_THREADS * GC_PUTS, "writes %llu", (unsigned long long)writes);
    cr_assert_lt(groups, writes, "%llu groups for %llu writes in %d rounds: no group commit",
                 (unsigned long long)groups, (unsigned long long)writes, rounds);
    cr_assert_geq(groups, 1);
    cr_assert_geq(syncs, 1, "SYNC_DATA writes never synced");
    cr_assert_leq(syncs, groups, "more syncs (%llu) than groups (%llu): a group synced twice",
                  (unsigned long long)syncs, (unsigned long long)groups);
    cr_assert_eq(st.last_sequence - st0.last_sequence, writes);

    close_main();
    g_db = open_db(sub("db"), NULL);
    ks = ks_open(g_db, "sync", NULL);
    for (int r = 0; r < rounds; r++)
        for (int t = 0; t < GC_THREADS; t++)
            for (int i = 0; i < GC_PUTS; i++) {
                char k[64], v[32];
                snprintf(k, sizeof k, "r%02d-t%d-%04d", r, t, i);
                snprintf(v, sizeof v, "v%d", i);
                expect_val(NULL, ks, k, v);
            }
}

/* Stats are documented thread-safe: read them while another thread writes
 * across journal rotations. */
struct stats_writer_arg {
    tind_keyspace *ks;
    atomic_int done;
    int rc;
};

static void *stats_writer(void *p)
{
    struct stats_writer_arg *a = p;
    uint8_t v[2000];
    memset(v, 'v', sizeof v);
    for (int i = 0; i < 400 && a->rc == TIND_OK; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%05d", i);
        a->rc = tind_put(a->ks, k, strlen(k), v, sizeof v);
    }
    atomic_store(&a->done, 1);
    return NULL;
}

Test(api_load, db_stats_while_writing_across_rotations)
{
    tind_options o;
    tind_options_init(&o);
    o.journal_max_bytes = 64u << 10;
    g_db = open_db(sub("db"), &o);
    struct stats_writer_arg a = {.ks = ks_open(g_db, "k", NULL), .rc = TIND_OK};
    atomic_init(&a.done, 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, stats_writer, &a), 0);
    uint64_t last_writes = 0, last_seq = 0;
    int samples = 0, bad = 0;
    while (!atomic_load(&a.done) || samples == 0) {
        struct tind_db_stats st;
        int rc = tind_db_stats(g_db, &st);
        if (rc != TIND_OK || st.writes < last_writes || st.last_sequence < last_seq || st.journal_files < 1) bad++;
        last_writes = st.writes;
        last_seq = st.last_sequence;
        struct tind_keyspace_stats ks;
        if (tind_keyspace_stats(a.ks, &ks) != TIND_OK) bad++;
        samples++;
    }
    pthread_join(t, NULL);
    cr_assert_eq(a.rc, TIND_OK, "writer: %s", tind_strerror(a.rc));
    cr_assert_eq(bad, 0, "%d of %d stats samples failed or went backwards", bad, samples);
    struct tind_db_stats st = db_stats(g_db);
    cr_assert_eq(st.writes, 400);
    cr_assert_gt(st.journal_files, 1);
}

/* ---- concurrency: writers, readers and drops at once ------------------------------------------ */

enum { CW_WRITERS = 3, CW_READERS = 2, CW_KEYS = 40, CW_ROUNDS = 120 };

struct cw_shared {
    tind_db *db;
    tind_keyspace *ks;
    atomic_int writers_left;
};

struct cw_writer {
    struct cw_shared *sh;
    int id;
    int rc, failed_round;
};

struct cw_reader {
    struct cw_shared *sh;
    int last_round[CW_WRITERS][CW_KEYS]; /* newest round seen per key; views only move forward */
    int scans;
    int failed;
    char why[512];
};

/* Round r of writer w: every key gets r; in rounds divisible by 5 the odd keys
 * are deleted instead; every third round goes as one batch. */
static void *cw_writer_main(void *p)
{
    struct cw_writer *w = p;
    tind_batch *b = NULL;
    w->rc = tind_batch_new(&b);
    for (int r = 1; r <= CW_ROUNDS && w->rc == TIND_OK; r++) {
        int batch = r % 3 == 0;
        tind_batch_clear(b);
        for (int i = 0; i < CW_KEYS && w->rc == TIND_OK; i++) {
            char k[32], v[16];
            snprintf(k, sizeof k, "w%d-%03d", w->id, i);
            snprintf(v, sizeof v, "%08d", r);
            int del = r % 5 == 0 && (i & 1);
            if (batch) w->rc = del ? tind_batch_delete(b, w->sh->ks, k, strlen(k)) : tind_batch_put(b, w->sh->ks, k, strlen(k), v, 8);
            else w->rc = del ? tind_delete(w->sh->ks, k, strlen(k)) : tind_put(w->sh->ks, k, strlen(k), v, 8);
        }
        if (batch && w->rc == TIND_OK) w->rc = tind_batch_commit(w->sh->db, b, TIND_DURABILITY_BUFFERED);
        if (w->rc != TIND_OK) w->failed_round = r;
    }
    tind_batch_free(b);
    atomic_fetch_sub(&w->sh->writers_left, 1);
    return NULL;
}

static int cw_parse(struct cw_reader *rd, const char *k, size_t kl, const char *v, size_t vl, int *w, int *i, int *r)
{
    char kb[32] = {0}, vb[16] = {0};
    if (kl >= sizeof kb || vl != 8) {
        snprintf(rd->why, sizeof rd->why, "malformed entry %s = %s", tu_hex(k, kl), tu_hex(v, vl));
        return -1;
    }
    memcpy(kb, k, kl);
    memcpy(vb, v, vl);
    if (sscanf(kb, "w%d-%d", w, i) != 2 || *w < 0 || *w >= CW_WRITERS || *i < 0 || *i >= CW_KEYS) {
        snprintf(rd->why, sizeof rd->why, "unexpected key %s", tu_hex(k, kl));
        return -1;
    }
    *r = atoi(vb);
    if (*r < 1 || *r > CW_ROUNDS) {
        snprintf(rd->why, sizeof rd->why, "key %s has round %d", kb, *r);
        return -1;
    }
    return 0;
}

static void *cw_reader_main(void *p)
{
    struct cw_reader *rd = p;
    while (!rd->failed) {
        int last = atomic_load(&rd->sh->writers_left) == 0;
        tind_iter *it = NULL;
        if (tind_iter_open(rd->sh->ks, NULL, NULL, &it) != TIND_OK) {
            snprintf(rd->why, sizeof rd->why, "iter_open: %s", tind_last_error());
            rd->failed = 1;
            break;
        }
        int seen[CW_WRITERS][CW_KEYS];
        memset(seen, 0, sizeof seen);
        for (int dir = 0; dir < 2 && !rd->failed; dir++) {
            char prev[32];
            size_t prevl = 0;
            int n = 0;
            if (dir == 0) tind_iter_seek_first(it);
            else tind_iter_seek_last(it);
            for (; tind_iter_valid(it) && !rd->failed; dir == 0 ? tind_iter_next(it) : tind_iter_prev(it)) {
                size_t kl, vl;
                const char *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
                int w, i, r;
                if (cw_parse(rd, k, kl, v, vl, &w, &i, &r)) {
                    rd->failed = 1;
                    break;
                }
                if (n > 0) {
                    int c = tu_keycmp(prev, prevl, k, kl);
                    if (dir == 0 ? c >= 0 : c <= 0) {
                        snprintf(rd->why, sizeof rd->why, "%s scan out of order: %s then %s",
                                 dir ? "backward" : "forward", tu_hex(prev, prevl), tu_hex(k, kl));
                        rd->failed = 1;
                        break;
                    }
                }
                memcpy(prev, k, kl);
                prevl = kl;
                n++;
                if (dir == 0) {
                    seen[w][i] = r;
                    if (r < rd->last_round[w][i]) {
                        snprintf(rd->why, sizeof rd->why, "key w%d-%03d went back from round %d to %d", w, i,
                                 rd->last_round[w][i], r);
                        rd->failed = 1;
                    }
                    rd->last_round[w][i] = r;
                } else if (seen[w][i] != r) {
                    snprintf(rd->why, sizeof rd->why,
                             "one iterator, two answers: w%d-%03d round %d forward, %d backward", w, i, seen[w][i], r);
                    rd->failed = 1;
                }
            }
        }
        if (tind_iter_status(it) != TIND_OK && !rd->failed) {
            snprintf(rd->why, sizeof rd->why, "iterator status %d", tind_iter_status(it));
            rd->failed = 1;
        }
        tind_iter_close(it);
        rd->scans++;
        if (last) break;
    }
    return NULL;
}

Test(api_load, concurrent_writers_and_iterating_readers)
{
    g_db = open_db(sub("db"), NULL);
    struct cw_shared sh = {.db = g_db, .ks = ks_open(g_db, "k", NULL)};
    atomic_init(&sh.writers_left, CW_WRITERS);
    pthread_t wt[CW_WRITERS], rt[CW_READERS];
    struct cw_writer w[CW_WRITERS];
    struct cw_reader *rd = calloc(CW_READERS, sizeof *rd);
    cr_assert_not_null(rd);
    for (int i = 0; i < CW_READERS; i++) {
        rd[i].sh = &sh;
        cr_assert_eq(pthread_create(&rt[i], NULL, cw_reader_main, &rd[i]), 0);
    }
    for (int i = 0; i < CW_WRITERS; i++) {
        w[i] = (struct cw_writer){.sh = &sh, .id = i};
        cr_assert_eq(pthread_create(&wt[i], NULL, cw_writer_main, &w[i]), 0);
    }
    for (int i = 0; i < CW_WRITERS; i++) pthread_join(wt[i], NULL);
    for (int i = 0; i < CW_READERS; i++) pthread_join(rt[i], NULL);
    for (int i = 0; i < CW_WRITERS; i++)
        cr_assert_eq(w[i].rc, TIND_OK, "writer %d failed in round %d: %d (%s)", i, w[i].failed_round, w[i].rc,
                     tind_strerror(w[i].rc));
    for (int i = 0; i < CW_READERS; i++) cr_assert_not(rd[i].failed, "reader %d after %d scans: %s", i, rd[i].scans, rd[i].why);
    free(rd);
    /* the last round: CW_ROUNDS (120) is divisible by 5, so odd keys are gone */
    for (int round = 0; round < 2; round++) {
        for (int wi = 0; wi < CW_WRITERS; wi++)
            for (int i = 0; i < CW_KEYS; i++) {
                char k[32], v[16];
                snprintf(k, sizeof k, "w%d-%03d", wi, i);
                snprintf(v, sizeof v, "%08d", CW_ROUNDS);
                expect_val(NULL, sh.ks, k, (i & 1) ? NULL : v);
            }
        if (round == 0) {
            close_main();
            g_db = open_db(sub("db"), NULL);
            sh.ks = ks_open(g_db, "k", NULL);
        }
    }
}

enum { DW_THREADS = 2, DW_MAX = 200000 };

struct dw_arg {
    tind_keyspace *ks;
    atomic_int *ok_total;
    int oks, first_bad_rc, ok_after_invalid;
};

static void *dw_writer(void *p)
{
    struct dw_arg *a = p;
    a->first_bad_rc = TIND_OK;
    int extra = 0;
    for (int i = 0; i < DW_MAX; i++) {
        char k[32];
        snprintf(k, sizeof k, "%p-%d", (void *)a, i);
        int rc = (i % 4 == 3) ? tind_delete(a->ks, k, strlen(k)) : tind_put(a->ks, k, strlen(k), "v", 1);
        if (rc == TIND_OK) {
            if (a->first_bad_rc != TIND_OK) a->ok_after_invalid = 1;
            a->oks++;
            atomic_fetch_add(a->ok_total, 1);
        } else if (a->first_bad_rc == TIND_OK) {
            a->first_bad_rc = rc;
            extra = 64; /* a few more tries: none may succeed */
        }
        if (a->first_bad_rc != TIND_OK && extra-- <= 0) break;
    }
    return NULL;
}

Test(api_load, drop_while_other_threads_write)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *victim = ks_open(g_db, "victim", NULL), *keep = ks_open(g_db, "keep", NULL);
    put_s(keep, "k", "v");
    atomic_int ok_total;
    atomic_init(&ok_total, 0);
    pthread_t t[DW_THREADS];
    struct dw_arg a[DW_THREADS];
    for (int i = 0; i < DW_THREADS; i++) {
        a[i] = (struct dw_arg){.ks = victim, .ok_total = &ok_total};
        cr_assert_eq(pthread_create(&t[i], NULL, dw_writer, &a[i]), 0);
    }
    while (atomic_load(&ok_total) < 500) sched_yield();
    EXPECT_OK(tind_keyspace_drop(g_db, "victim"));
    for (int i = 0; i < DW_THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < DW_THREADS; i++) {
        cr_assert_eq(a[i].first_bad_rc, TIND_INVALID, "writer %d: after the drop got %d (%s), want TIND_INVALID", i,
                     a[i].first_bad_rc, tind_strerror(a[i].first_bad_rc));
        cr_assert_not(a[i].ok_after_invalid, "writer %d: a write succeeded after one was refused for the drop", i);
    }
    tind_keyspace *again = ks_open(g_db, "victim", NULL);
    cr_assert_eq(ks_stats(again).memtable_entries, 0, "writes racing the drop landed in the new keyspace");
    close_main();
    g_db = open_db(sub("db"), NULL);
    again = ks_open(g_db, "victim", NULL);
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(again, NULL, NULL, &it));
    tind_iter_seek_first(it);
    size_t kl = 0;
    const void *k = tind_iter_key(it, &kl);
    cr_assert_not(tind_iter_valid(it), "after reopen the recreated keyspace holds %s", tu_hex(k, kl));
    tind_iter_close(it);
    expect_val(NULL, ks_open(g_db, "keep", NULL), "k", "v");
}

/* Parallel apply: four threads commit batches of PG_BATCH puts over two
 * keyspaces, synced so that they meet in groups, on memtables small enough
 * to be sealed between groups. Some groups are applied by their writers in
 * parallel; each writer reads its own batch back at once (its writes are
 * visible when the commit returns), and every write is there after a
 * reopen. With parallel_memtable_writes 0, no group is. */
enum { PG_THREADS = 4, PG_BATCHES = 60, PG_BATCH = 12, PG_MAX_ROUNDS = 20 };

struct pg_arg {
    tind_db *db;
    tind_keyspace *ks[2];
    int thread, round;
    int rc;
    char what[160];
};

static void pg_key(char *k, size_t cap, int round, int thread, int b, int i)
{
    snprintf(k, cap, "r%02d-%04d-t%d-%02d", round, b, thread, i);
}

static void *pg_writer(void *p)
{
    struct pg_arg *a = p;
    tind_batch *b = NULL;
    if ((a->rc = tind_batch_new(&b)) != TIND_OK) return NULL;
    for (int n = 0; n < PG_BATCHES && a->rc == TIND_OK; n++) {
        tind_batch_clear(b);
        char k[64], v[64];
        for (int i = 0; i < PG_BATCH && a->rc == TIND_OK; i++) {
            pg_key(k, sizeof k, a->round, a->thread, n, i);
            snprintf(v, sizeof v, "value-%d-%d-%d-%d", a->round, a->thread, n, i);
            a->rc = tind_batch_put(b, a->ks[i % 2], k, strlen(k), v, strlen(v));
        }
        if (a->rc == TIND_OK) a->rc = tind_batch_commit(a->db, b, TIND_DURABILITY_SYNC_DATA);
        for (int i = 0; i < PG_BATCH && a->rc == TIND_OK; i++) {
            pg_key(k, sizeof k, a->round, a->thread, n, i);
            snprintf(v, sizeof v, "value-%d-%d-%d-%d", a->round, a->thread, n, i);
            void *got = NULL;
            size_t gl = 0;
            a->rc = tind_get(a->ks[i % 2], k, strlen(k), &got, &gl);
            if (a->rc == TIND_OK && (gl != strlen(v) || memcmp(got, v, gl) != 0)) {
                snprintf(a->what, sizeof a->what, "%s read back wrong just after its commit", k);
                a->rc = TIND_CORRUPTION;
            } else if (a->rc != TIND_OK) {
                snprintf(a->what, sizeof a->what, "%s not readable just after its commit", k);
            }
            tind_free(got);
        }
    }
    tind_batch_free(b);
    return NULL;
}

/* Runs rounds until a group was applied in parallel (want 1) or for three
 * rounds (want 0); returns the rounds run. */
static int pg_run(tind_db *db, tind_keyspace **ks, int want_parallel)
{
    struct tind_db_stats st0 = db_stats(db), st;
    int rounds = 0;
    do {
        pthread_t t[PG_THREADS];
        struct pg_arg a[PG_THREADS];
        for (int i = 0; i < PG_THREADS; i++) {
            a[i] = (struct pg_arg){.db = db, .ks = {ks[0], ks[1]}, .thread = i, .round = rounds};
            cr_assert_eq(pthread_create(&t[i], NULL, pg_writer, &a[i]), 0);
        }
        for (int i = 0; i < PG_THREADS; i++) pthread_join(t[i], NULL);
        for (int i = 0; i < PG_THREADS; i++)
            cr_assert_eq(a[i].rc, TIND_OK, "thread %d: %s (%s: %s)", i, a[i].what, tind_strerror(a[i].rc),
                         tind_last_error());
        rounds++;
        st = db_stats(db);
    } while (want_parallel ? st.parallel_groups == st0.parallel_groups && rounds < PG_MAX_ROUNDS : rounds < 3);
    uint64_t writes = st.writes - st0.writes;
    cr_assert_eq(writes, (uint64_t)rounds * PG_THREADS * PG_BATCHES);
    cr_assert_eq(st.last_sequence - st0.last_sequence, writes * PG_BATCH);
    if (want_parallel)
        cr_assert_gt(st.parallel_groups, st0.parallel_groups, "no group applied in parallel in %d rounds", rounds);
    else
        cr_assert_eq(st.parallel_groups, st0.parallel_groups, "a group applied in parallel when turned off");
    cr_assert_leq(st.parallel_groups - st0.parallel_groups, st.write_groups - st0.write_groups);
    return rounds;
}

static void pg_check(tind_keyspace **ks, int rounds)
{
    for (int r = 0; r < rounds; r++)
        for (int t = 0; t < PG_THREADS; t++)
            for (int n = 0; n < PG_BATCHES; n++)
                for (int i = 0; i < PG_BATCH; i++) {
                    char k[64], v[64];
                    pg_key(k, sizeof k, r, t, n, i);
                    snprintf(v, sizeof v, "value-%d-%d-%d-%d", r, t, n, i);
                    expect_val(NULL, ks[i % 2], k, v);
                }
}

Test(api_load, parallel_group_apply_from_four_threads, .timeout = 120)
{
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64 << 10; /* sealed between groups */
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks[2] = {ks_open(g_db, "a", &ko), ks_open(g_db, "b", &ko)};
    int rounds = pg_run(g_db, ks, 1);
    pg_check(ks, rounds);
    close_main();

    g_db = open_db(sub("db"), NULL);
    ks[0] = ks_open(g_db, "a", NULL);
    ks[1] = ks_open(g_db, "b", NULL);
    pg_check(ks, rounds);
    close_main();

    tind_options o;
    tind_options_init(&o);
    o.parallel_memtable_writes = 0;
    g_db = open_db(sub("off"), &o);
    ks[0] = ks_open(g_db, "a", &ko);
    ks[1] = ks_open(g_db, "b", &ko);
    rounds = pg_run(g_db, ks, 0);
    pg_check(ks, rounds);
}
