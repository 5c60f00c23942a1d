/* Compaction at the database level: space reclaimed by overwrites and
 * deletes, no resurrection of deleted keys, snapshots kept readable, FIFO
 * limits, tiered and leveled keyspaces reading back what was written. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "src/db.h"
#include "src/util/file.h"
#include "tests/support/fault_env.h"
#include "tests/support/testutil.h"
#include "tind.h"

static char *dir;
static char dbp[512];

static void setup(void)
{
    dir = tu_mkdtemp("compaction");
    cr_assert_not_null(dir);
    snprintf(dbp, sizeof dbp, "%s/db", dir);
}

static void teardown(void)
{
    tu_rmtree(dir);
    free(dir);
}

TestSuite(compaction, .init = setup, .fini = teardown);

static tind_db *open_db(void)
{
    tind_db *db;
    int rc = tind_open(dbp, NULL, &db);
    cr_assert_eq(rc, TIND_OK, "open: %s", tind_last_error());
    return db;
}

static tind_keyspace *ks_with(tind_db *db, const char *name, int strategy)
{
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.compaction = strategy;
    ko.memtable_bytes = 256u << 10;
    ko.table_target_bytes = 256u << 10;
    tind_keyspace *ks;
    int rc = tind_keyspace_open(db, name, &ko, &ks);
    cr_assert_eq(rc, TIND_OK, "keyspace: %s", tind_last_error());
    return ks;
}

static void put_all(tind_keyspace *ks, int n, int gen)
{
    char k[32], v[128];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        int vl = snprintf(v, sizeof v, "value-%07d-generation-%03d-%060d", i, gen, 0);
        int rc = tind_put(ks, k, (size_t)kl, v, (size_t)vl);
        cr_assert_eq(rc, TIND_OK, "put: %s", tind_last_error());
    }
}

static void check_all(tind_keyspace *ks, tind_snapshot *s, int n, int gen)
{
    char k[32], v[128];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        int vl = snprintf(v, sizeof v, "value-%07d-generation-%03d-%060d", i, gen, 0);
        void *got;
        size_t gl;
        int rc = s ? tind_snapshot_get(s, ks, k, (size_t)kl, &got, &gl) : tind_get(ks, k, (size_t)kl, &got, &gl);
        cr_assert_eq(rc, TIND_OK, "get %s: %s: %s", k, tind_strerror(rc), tind_last_error());
        cr_assert(gl == (size_t)vl && !memcmp(got, v, gl), "%s: got %s", k, tu_hex(got, gl));
        tind_free(got);
    }
}

/* Bytes of the keyspace's tables. */
static uint64_t table_bytes(tind_keyspace *ks)
{
    struct tind_keyspace_stats st;
    cr_assert_eq(tind_keyspace_stats(ks, &st), TIND_OK);
    uint64_t b = 0;
    for (int l = 0; l < TIND_LEVELS; l++) b += st.table_bytes[l];
    return b;
}

/* 50,000 keys by default; `make compaction-test` runs it at 1,000,000 (the
 * size the space target is stated for) through TIND_OVERWRITE_KEYS. */
Test(compaction, overwrites_leave_about_one_copy_on_disk, .timeout = 3600)
{
    tind_db *db = open_db();
    tind_keyspace *ks = ks_with(db, "ks", TIND_COMPACTION_LEVELED);
    const char *e = getenv("TIND_OVERWRITE_KEYS");
    const int n = e && atoi(e) > 0 ? atoi(e) : 50000;
    put_all(ks, n, 0);
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK, "%s", tind_last_error());
    uint64_t one = table_bytes(ks);
    for (int g = 1; g <= 5; g++) put_all(ks, n, g);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    /* Let the background compactions settle, then measure what they left. */
    struct tind_db_stats ds0;
    for (int i = 0; i < 6000; i++) {
        cr_assert_eq(tind_db_stats(db, &ds0), TIND_OK);
        if (ds0.compactions_active == 0) break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    uint64_t settled = table_bytes(ks);
    struct tind_keyspace_stats st;
    cr_assert_eq(tind_keyspace_stats(ks, &st), TIND_OK);
    cr_assert_gt(st.compactions, 0, "no compaction ran in the background");
    cr_assert_lt((double)settled, 1.3 * (double)one, "background compaction left %llu bytes, one copy %llu",
                 (unsigned long long)settled, (unsigned long long)one);
    cr_assert_gt(st.compaction_bytes_written, 0);
    cr_assert_gt(st.flushed_bytes, 0);
    cr_assert_gt(st.write_amplification, 1.0);
    uint64_t by_level = 0;
    for (int l = 0; l < TIND_LEVELS; l++) by_level += st.level_bytes_written[l];
    cr_assert_eq(by_level, st.compaction_bytes_written);
    struct tind_db_stats ds;
    cr_assert_eq(tind_db_stats(db, &ds), TIND_OK);
    cr_assert_geq(ds.compactions_completed, st.compactions);
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK, "%s", tind_last_error());
    uint64_t after = table_bytes(ks);
    cr_assert_lt((double)after, 1.3 * (double)one, "after 5 overwrites: %llu bytes, one copy %llu",
                 (unsigned long long)after, (unsigned long long)one);
    fprintf(stderr, "compaction::overwrites: %d keys, one copy %llu bytes, after 5 overwrites %llu (%.3fx) with "
            "background compaction, %llu (%.3fx) after a major one; write amplification %.2f, %llu compactions\n",
            n, (unsigned long long)one, (unsigned long long)settled, (double)settled / (double)one,
            (unsigned long long)after, (double)after / (double)one, st.write_amplification,
            (unsigned long long)st.compactions);
    check_all(ks, NULL, n, 5);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(compaction, deleting_everything_and_compacting_frees_the_space)
{
    tind_db *db = open_db();
    tind_keyspace *ks = ks_with(db, "ks", TIND_COMPACTION_LEVELED);
    const int n = 40000;
    put_all(ks, n, 0);
    put_all(ks, n, 1);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    uint64_t peak = table_bytes(ks);
    char k[32];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        cr_assert_eq(tind_delete(ks, k, (size_t)kl), TIND_OK);
    }
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK, "%s", tind_last_error());
    uint64_t after = table_bytes(ks);
    cr_assert_lt((double)after, 0.1 * (double)peak, "after deleting all: %llu bytes, peak %llu",
                 (unsigned long long)after, (unsigned long long)peak);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(compaction, deleted_keys_never_come_back)
{
    tind_db *db = open_db();
    tind_keyspace *ks = ks_with(db, "ks", TIND_COMPACTION_LEVELED);
    put_all(ks, 3000, 0);
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK); /* old versions deep down */
    put_all(ks, 3000, 1);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    char k[32];
    for (int i = 0; i < 3000; i += 2) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        cr_assert_eq(tind_delete(ks, k, (size_t)kl), TIND_OK);
    }
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    put_all(ks, 0, 2);
    for (int round = 0; round < 3; round++) {
        if (round == 1) cr_assert_eq(tind_keyspace_compact(ks), TIND_OK);
        if (round == 2) {
            cr_assert_eq(tind_close(db), TIND_OK);
            db = open_db();
            cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
        }
        for (int i = 0; i < 3000; i++) {
            int kl = snprintf(k, sizeof k, "key%07d", i);
            void *v;
            size_t vl;
            int rc = tind_get(ks, k, (size_t)kl, &v, &vl);
            if (i % 2 == 0) cr_assert_eq(rc, TIND_NOT_FOUND, "round %d: %s came back", round, k);
            else {
                cr_assert_eq(rc, TIND_OK, "round %d: %s lost", round, k);
                tind_free(v);
            }
        }
        tind_iter *it;
        cr_assert_eq(tind_iter_open(ks, NULL, NULL, &it), TIND_OK);
        int count = 0;
        for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it)) count++;
        cr_assert_eq(tind_iter_status(it), TIND_OK);
        tind_iter_close(it);
        cr_assert_eq(count, 1500, "round %d: the scan saw %d keys", round, count);
    }
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(compaction, a_snapshot_keeps_reading_its_values_through_compactions)
{
    tind_db *db = open_db();
    tind_keyspace *ks = ks_with(db, "ks", TIND_COMPACTION_LEVELED);
    put_all(ks, 5000, 0);
    tind_snapshot *s;
    cr_assert_eq(tind_snapshot_open(db, &s), TIND_OK);
    for (int g = 1; g <= 3; g++) put_all(ks, 5000, g);
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK);
    check_all(ks, s, 5000, 0);
    check_all(ks, NULL, 5000, 3);
    tind_snapshot_close(s);
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK);
    check_all(ks, NULL, 5000, 3);
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* n keys, each with 100 bytes that do not compress, so that tables fill at
 * their target size. */
static void put_incompressible(tind_keyspace *ks, int n, int gen)
{
    char k[32];
    uint8_t v[100];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        tu_fill(v, sizeof v, (uint64_t)i << 8 | (uint64_t)gen);
        int rc = tind_put(ks, k, (size_t)kl, v, sizeof v);
        cr_assert_eq(rc, TIND_OK, "put: %s", tind_last_error());
    }
}

/* An iterator opened before a compaction reads its inputs to the end (the
 * table cache opens them again after the compaction); once it closes, none
 * of those deleted files may stay open, or their space never comes back. */
Test(compaction, compacted_tables_are_closed_once_an_older_reader_lets_go)
{
    tind_db *db = open_db();
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64u << 10;
    ko.table_target_bytes = 64u << 10;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, "ks", &ko, &ks), TIND_OK, "keyspace: %s", tind_last_error());
    enum { N = 8000 };
    put_incompressible(ks, N, 0);
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK);
    struct tind_keyspace_stats kst;
    cr_assert_eq(tind_keyspace_stats(ks, &kst), TIND_OK);
    cr_assert_gt(kst.tables[TIND_LEVELS - 1], 4, "want several tables for the reader to open one by one");
    for (int round = 1; round <= 3; round++) {
        tind_iter *it;
        cr_assert_eq(tind_iter_open(ks, NULL, NULL, &it), TIND_OK);
        tind_iter_seek_first(it);
        put_incompressible(ks, N, round);
        cr_assert_eq(tind_keyspace_compact(ks), TIND_OK);
        int count = 0;
        for (; tind_iter_valid(it); tind_iter_next(it), count++) {
            size_t vl;
            const void *vp = tind_iter_value(it, &vl);
            cr_assert(vl == 100 && tu_check_fill(vp, vl, (uint64_t)count << 8 | (uint64_t)(round - 1)) == vl,
                      "round %d: key %d has the wrong value", round, count);
        }
        cr_assert_eq(tind_iter_status(it), TIND_OK, "round %d: %s", round, tind_last_error());
        cr_assert_eq(count, N, "round %d: the older reader saw %d keys", round, count);
        tind_iter_close(it);

        int held = tu_count_deleted_fds(dbp);
        cr_assert_eq(held, 0, "round %d: %d deleted tables are still open after their last reader", round, held);
        struct tind_db_stats dst;
        cr_assert_eq(tind_keyspace_stats(ks, &kst), TIND_OK);
        cr_assert_eq(tind_db_stats(db, &dst), TIND_OK);
        uint64_t live = 0;
        for (int l = 0; l < TIND_LEVELS; l++) live += kst.tables[l];
        cr_assert_leq(dst.open_tables, live, "round %d: %llu tables open, %llu live", round,
                      (unsigned long long)dst.open_tables, (unsigned long long)live);
    }
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(compaction, fifo_stays_within_its_byte_limit)
{
    tind_db *db = open_db();
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.compaction = TIND_COMPACTION_FIFO;
    ko.memtable_bytes = 128u << 10;
    ko.table_target_bytes = 128u << 10;
    ko.fifo_max_bytes = 1u << 20;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, "log", &ko, &ks), TIND_OK);
    char k[32], v[200];
    for (int i = 0; i < 40000; i++) {
        int kl = snprintf(k, sizeof k, "entry%08d", i);
        tu_fill(v, sizeof v, (uint64_t)i); /* incompressible: the limit is in stored bytes */
        cr_assert_eq(tind_put(ks, k, (size_t)kl, v, sizeof v), TIND_OK);
    }
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK);
    uint64_t b = table_bytes(ks);
    cr_assert_leq(b, (1u << 20) + (256u << 10), "FIFO keyspace holds %llu bytes", (unsigned long long)b);
    /* The newest entries are there, the oldest are gone. */
    void *got;
    size_t gl;
    cr_assert_eq(tind_get(ks, "entry00039999", 13, &got, &gl), TIND_OK);
    tind_free(got);
    cr_assert_eq(tind_get(ks, "entry00000000", 13, &got, &gl), TIND_NOT_FOUND);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(compaction, tiered_merges_and_reads_back)
{
    tind_db *db = open_db();
    tind_keyspace *ks = ks_with(db, "ks", TIND_COMPACTION_TIERED);
    for (int g = 0; g < 4; g++) put_all(ks, 20000, g);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    check_all(ks, NULL, 20000, 3);
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK, "%s", tind_last_error());
    check_all(ks, NULL, 20000, 3);
    struct tind_keyspace_stats st;
    cr_assert_eq(tind_keyspace_stats(ks, &st), TIND_OK);
    cr_assert_gt(st.compactions, 0);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_db();
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    check_all(ks, NULL, 20000, 3);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(compaction, strategy_and_its_options_persist)
{
    tind_db *db = open_db();
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.compaction = TIND_COMPACTION_FIFO;
    ko.fifo_ttl_seconds = 3600;
    ko.tier_width = 7;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, "k", &ko, &ks), TIND_OK);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_db();
    cr_assert_eq(tind_keyspace_open(db, "k", NULL, &ks), TIND_OK);
    /* Reopening with the same options changes nothing; bad ones are refused. */
    cr_assert_eq(tind_keyspace_open(db, "k", &ko, &ks), TIND_OK);
    ko.compaction = 9;
    cr_assert_eq(tind_keyspace_open(db, "k", &ko, &ks), TIND_INVALID);
    cr_assert_eq(tind_close(db), TIND_OK);
}

struct writer_arg {
    tind_keyspace *ks;
    int id, n;
    int rc;
};

static void *writer_main(void *p)
{
    struct writer_arg *a = p;
    char k[32], v[300];
    for (int i = 0; i < a->n && a->rc == TIND_OK; i++) {
        int kl = snprintf(k, sizeof k, "w%d-%07d", a->id, i);
        tu_fill(v, sizeof v, (uint64_t)(a->id * 1000000 + i));
        a->rc = tind_put(a->ks, k, (size_t)kl, v, sizeof v);
    }
    return NULL;
}

Test(compaction, sustained_writers_stall_report_it_and_never_deadlock)
{
    tind_db *db = open_db();
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64u << 10;
    ko.max_sealed_memtables = 1;
    ko.table_target_bytes = 64u << 10;
    ko.l0_trigger = 2;
    ko.l0_slowdown_tables = 2;
    ko.l0_stop_tables = 4;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, "ks", &ko, &ks), TIND_OK);
    pthread_t th[4];
    struct writer_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct writer_arg){ks, i, 4000, TIND_OK};
        pthread_create(&th[i], NULL, writer_main, &args[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) cr_assert_eq(args[i].rc, TIND_OK, "writer %d: %s", i, tind_strerror(args[i].rc));
    struct tind_keyspace_stats st;
    cr_assert_eq(tind_keyspace_stats(ks, &st), TIND_OK);
    cr_assert_gt(st.stalls + st.slowdowns, 0, "no write ever waited");
    cr_assert_gt(st.stall_micros, 0);
    cr_assert_gt(st.compactions, 0);
    char k[32], v[300];
    for (int w = 0; w < 4; w++) {
        for (int i = 0; i < 4000; i += 37) {
            int kl = snprintf(k, sizeof k, "w%d-%07d", w, i);
            void *got;
            size_t gl;
            cr_assert_eq(tind_get(ks, k, (size_t)kl, &got, &gl), TIND_OK, "%s lost", k);
            tu_fill(v, sizeof v, (uint64_t)(w * 1000000 + i));
            cr_assert(gl == sizeof v && !memcmp(got, v, gl), "%s: wrong value", k);
            tind_free(got);
        }
    }
    cr_assert_eq(tind_close(db), TIND_OK);
}

struct reader_arg {
    tind_keyspace *ks;
    _Atomic int *stop;
    int bad;
    long reads;
};

/* Keys below 2000 always hold generation 0's value. */
static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    char k[32], v[128];
    for (int i = 0; !atomic_load(a->stop); i = (i + 7) % 2000) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        int vl = snprintf(v, sizeof v, "value-%07d-generation-%03d-%060d", i, 0, 0);
        void *got;
        size_t gl;
        int rc = tind_get(a->ks, k, (size_t)kl, &got, &gl);
        if (rc != TIND_OK || gl != (size_t)vl || memcmp(got, v, gl) != 0) a->bad++;
        if (rc == TIND_OK) tind_free(got);
        a->reads++;
    }
    return NULL;
}

Test(compaction, major_compaction_runs_beside_writers_and_readers)
{
    tind_db *db = open_db();
    tind_keyspace *ks = ks_with(db, "ks", TIND_COMPACTION_LEVELED);
    put_all(ks, 20000, 0);
    _Atomic int stop = 0;
    struct reader_arg ra = {ks, &stop, 0, 0};
    struct writer_arg wa = {ks, 9, 20000, TIND_OK};
    pthread_t rt, wt;
    pthread_create(&rt, NULL, reader_main, &ra);
    pthread_create(&wt, NULL, writer_main, &wa);
    for (int i = 0; i < 3; i++) cr_assert_eq(tind_keyspace_compact(ks), TIND_OK, "%s", tind_last_error());
    pthread_join(wt, NULL);
    atomic_store(&stop, 1);
    pthread_join(rt, NULL);
    cr_assert_eq(wa.rc, TIND_OK);
    cr_assert_eq(ra.bad, 0, "%d of %ld reads were wrong", ra.bad, ra.reads);
    check_all(ks, NULL, 20000, 0);
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* The byte threshold alone: level-0 thresholds out of reach, compaction
 * allowed to fall only a little behind. */
Test(compaction, writers_wait_while_compaction_is_too_far_behind)
{
    tind_db *db = open_db();
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64u << 10;
    ko.table_target_bytes = 64u << 10;
    ko.l0_trigger = 2;
    ko.l0_slowdown_tables = 1000;
    ko.l0_stop_tables = 1000;
    ko.pending_slowdown_bytes = 1u << 20;
    ko.pending_stop_bytes = 2u << 20;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, "ks", &ko, &ks), TIND_OK);
    pthread_t th[2];
    struct writer_arg args[2];
    for (int i = 0; i < 2; i++) {
        args[i] = (struct writer_arg){ks, i, 8000, TIND_OK};
        pthread_create(&th[i], NULL, writer_main, &args[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) cr_assert_eq(args[i].rc, TIND_OK);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    struct tind_keyspace_stats st;
    cr_assert_eq(tind_keyspace_stats(ks, &st), TIND_OK);
    cr_assert_gt(st.compactions, 0);
    cr_assert_leq(st.pending_compaction_bytes, 4u << 20, "compaction %llu bytes behind",
                  (unsigned long long)st.pending_compaction_bytes);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(compaction, fifo_drops_tables_past_their_time_to_live)
{
    tind_db *db = open_db();
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.compaction = TIND_COMPACTION_FIFO;
    ko.fifo_ttl_seconds = 1;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, "ttl", &ko, &ks), TIND_OK);
    cr_assert_eq(tind_put(ks, "old", 3, "x", 1), TIND_OK);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    void *v;
    size_t vl;
    cr_assert_eq(tind_get(ks, "old", 3, &v, &vl), TIND_OK);
    tind_free(v);
    struct timespec ts = {2, 100000000}; /* past the one-second TTL */
    nanosleep(&ts, NULL);
    /* A flush schedules the compaction that finds the expired table. */
    cr_assert_eq(tind_put(ks, "new", 3, "y", 1), TIND_OK);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK);
    cr_assert_eq(tind_get(ks, "old", 3, &v, &vl), TIND_NOT_FOUND, "the expired table is still read");
    cr_assert_eq(tind_get(ks, "new", 3, &v, &vl), TIND_OK);
    tind_free(v);
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* Regression: l0_stop_tables below l0_trigger was accepted; writers then
 * waited for level 0 to shrink below l0_stop_tables, but the leveled picker
 * starts on level 0 only at l0_trigger tables, and the waiting thread was the
 * group-commit leader: every write of the database hung. The combination is
 * refused; a leveled keyspace at its stop threshold always has level 0 picked. */
Test(compaction, l0_stop_below_trigger_is_rejected_or_relieved, .timeout = 60)
{
    tind_db *db = open_db();
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64u << 10;
    ko.table_target_bytes = 64u << 10;
    ko.l0_trigger = 8;
    ko.l0_slowdown_tables = 2;
    ko.l0_stop_tables = 4;
    tind_keyspace *ks;
    int rc = tind_keyspace_open(db, "ks", &ko, &ks);
    cr_assert_eq(rc, TIND_INVALID, "accepted: %s", tind_strerror(rc));
    cr_assert(strstr(tind_last_error(), "l0_stop_tables") && strstr(tind_last_error(), "l0_trigger"), "%s",
              tind_last_error());
    /* Equal is the lowest accepted, and it is relieved: writers go on. */
    ko.l0_stop_tables = 8;
    cr_assert_eq(tind_keyspace_open(db, "ks", &ko, &ks), TIND_OK, "%s", tind_last_error());
    struct writer_arg a = {ks, 0, 6000, TIND_OK};
    writer_main(&a);
    cr_assert_eq(a.rc, TIND_OK, "%s", tind_strerror(a.rc));
    /* Tiered and FIFO keyspaces use no level-0 threshold: not refused. */
    ko.compaction = TIND_COMPACTION_TIERED;
    ko.l0_stop_tables = 4;
    cr_assert_eq(tind_keyspace_open(db, "tiered", &ko, &ks), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* Regression: a tiered keyspace counted as pending every level-0 table past
 * tier_width, whatever the runs' sizes: one run of many tables (what a merge
 * writes) is more than pending_stop_bytes of "pending" work that the picker
 * never does, and writers (and, through the leader, every writer) waited for
 * it forever. A stall waits only while a compaction is queued or running. */
Test(compaction, tiered_stall_the_picker_will_not_relieve_does_not_hang_writers, .timeout = 60)
{
    tind_db *db = open_db();
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.compaction = TIND_COMPACTION_TIERED;
    ko.memtable_bytes = 64u << 10;
    ko.table_target_bytes = 64u << 10;
    ko.pending_slowdown_bytes = 1u << 20;
    ko.pending_stop_bytes = 1u << 20;
    tind_keyspace *ks, *other;
    cr_assert_eq(tind_keyspace_open(db, "tiered", &ko, &ks), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_keyspace_open(db, "other", NULL, &other), TIND_OK, "%s", tind_last_error());
    struct writer_arg a = {ks, 0, 10000, TIND_OK};
    writer_main(&a);
    cr_assert_eq(a.rc, TIND_OK, "%s", tind_strerror(a.rc));
    /* One run of about 45 tables of 64 KiB. */
    cr_assert_eq(tind_keyspace_compact(ks), TIND_OK, "%s", tind_last_error());
    struct tind_keyspace_stats st;
    cr_assert_eq(tind_keyspace_stats(ks, &st), TIND_OK);
    cr_assert_geq(st.pending_compaction_bytes, ko.pending_stop_bytes, "the setup did not reach the threshold");
    cr_assert_eq(tind_put(ks, "after", 5, "x", 1), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_put(other, "after", 5, "x", 1), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* ---- a drop during a long major compaction ------------------------------------------------------ */

struct cd_call {
    tind_keyspace *ks;
    int rc;
};

static void *cd_compact_main(void *arg)
{
    struct cd_call *c = arg;
    c->rc = tind_keyspace_compact(c->ks);
    return NULL;
}

struct cd_drop {
    tind_db *db;
    int rc;
    atomic_int done;
};

static void *cd_drop_main(void *arg)
{
    struct cd_drop *d = arg;
    d->rc = tind_keyspace_drop(d->db, "victim");
    atomic_store(&d->done, 1);
    return NULL;
}

/* 32 MiB in eight overlapping, uncompressed level-0 tables: a long major compaction. */
static tind_keyspace *cd_big_keyspace(tind_db *db, const char *name)
{
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 4u << 20;
    ko.table_target_bytes = 256u << 20;
    ko.l0_trigger = 64;
    ko.l0_slowdown_tables = ko.l0_stop_tables = 64; /* at least l0_trigger */
    for (int l = 0; l < TIND_LEVELS; l++) ko.compression[l] = TIND_COMPRESSION_NONE;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, name, &ko, &ks), TIND_OK, "keyspace: %s", tind_last_error());
    static uint8_t v[4096];
    char k[32];
    for (int i = 0; i < 8192; i++) {
        int kl = snprintf(k, sizeof k, "k%06d", (i * 7919) % 1024 * 8 + i / 1024);
        tu_fill(v, sizeof v, (uint64_t)i);
        cr_assert_eq(tind_put(ks, k, (size_t)kl, v, sizeof v), TIND_OK, "put: %s", tind_last_error());
        if (i % 1024 == 1023) cr_assert_eq(tind_keyspace_flush(ks), TIND_OK, "flush: %s", tind_last_error());
    }
    return ks;
}

/* Counts the writes to one keyspace's files (those in its folder); `hold_at`
 * > 0 holds the write with that number until released. */
static void cd_count_writes(const tind_keyspace *ks, uint64_t hold_at)
{
    char part[4096];
    snprintf(part, sizeof part, "%s/", ks->dir);
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = part, .nth = hold_at ? hold_at : UINT64_MAX,
                           .hold = hold_at > 0};
    file_fault_set(&f);
}

/* The drop waited for a running major compaction to finish all its work
 * (compactions only watched the database's close). It now stops the merge at
 * its next entry: held a tenth of the way in while the drop is applied, the
 * compaction writes little more after it, and reports the drop. */
Test(compaction, a_drop_stops_a_long_major_compaction_instead_of_waiting_for_it, .timeout = 300)
{
    tind_db *db = open_db();
    tind_keyspace *whole = cd_big_keyspace(db, "whole");
    cd_count_writes(whole, 0);
    cr_assert_eq(tind_keyspace_compact(whole), TIND_OK, "compact: %s", tind_last_error());
    uint64_t full = file_fault_seen();
    file_fault_clear();
    cr_assert_gt(full, 100, "the whole major compaction wrote %llu times", (unsigned long long)full);

    tind_keyspace *ks = cd_big_keyspace(db, "victim");
    cd_count_writes(ks, full / 10);
    struct cd_call c = {.ks = ks};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, cd_compact_main, &c), 0);
    for (int i = 0; i < 20000 && file_fault_fired() == 0; i++) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(file_fault_fired(), 1, "the major compaction never reached a tenth of its writes");
    struct cd_drop d = {.db = db};
    atomic_init(&d.done, 0);
    pthread_t td;
    cr_assert_eq(pthread_create(&td, NULL, cd_drop_main, &d), 0);
    /* The handle reports the drop once its record is written and applied. */
    struct tind_keyspace_stats ks_st;
    for (int i = 0; i < 20000 && tind_keyspace_stats(ks, &ks_st) == TIND_OK; i++) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(tind_keyspace_stats(ks, &ks_st), TIND_INVALID, "the drop was not applied");
    cr_assert_eq(atomic_load(&d.done), 0, "the drop returned while the compaction of its keyspace was held");
    file_fault_release();
    pthread_join(t, NULL);
    pthread_join(td, NULL);
    uint64_t wrote = file_fault_seen();
    file_fault_clear();
    cr_assert_eq(d.rc, TIND_OK, "drop: %s", tind_strerror(d.rc));
    cr_assert_eq(c.rc, TIND_INVALID, "the compaction of the dropped keyspace returned %d (%s), want TIND_INVALID",
                 c.rc, tind_strerror(c.rc));
    fprintf(stderr, "compaction: the whole major compaction wrote %llu times, the dropped one %llu\n",
            (unsigned long long)full, (unsigned long long)wrote);
    cr_assert_lt(wrote, full / 5, "the compaction wrote %llu times of %llu after the drop stopped it at %llu",
                 (unsigned long long)wrote, (unsigned long long)full, (unsigned long long)(full / 10));
    cr_assert_eq(tind_close(db), TIND_OK, "close: %s", tind_last_error());
}
