/* Power-loss tests of the database: regression tests for the durability
 * bugs the power-loss simulator (tests/support/powerloss_env.h) found, and a
 * sample of the crash-state exploration of tests/tools/powerloss-check.c (the
 * whole of it is `make powerloss-test`). */
#include <criterion/criterion.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/err.h"
#include "src/util/file.h"
#include "tests/support/powerloss_env.h"
#include "tests/support/testutil.h"
#include "tind.h"

static char *pl_root;
static char pl_db[PATH_MAX];

static void pl_setup(void)
{
    pl_root = tu_mkdtemp("powerloss");
    snprintf(pl_db, sizeof pl_db, "%s/db", pl_root);
}

static void pl_teardown(void)
{
    file_pl_stop();
    tu_rmtree(pl_root);
    free(pl_root);
}

TestSuite(powerloss, .init = pl_setup, .fini = pl_teardown);

static tind_keyspace *ks_open(tind_db *db, const char *name)
{
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64 << 10;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, name, &ko, &ks), TIND_OK, "keyspace %s: %s", name, tind_last_error());
    return ks;
}

static int has_key(tind_keyspace *ks, const char *key)
{
    void *v;
    size_t vl;
    int rc = tind_get(ks, key, strlen(key), &v, &vl);
    cr_assert(rc == TIND_OK || rc == TIND_NOT_FOUND, "get %s: %s", key, tind_last_error());
    if (rc == TIND_OK) tind_free(v);
    return rc == TIND_OK;
}

/* tind_open made the database directory without syncing its parent: a power
 * loss took the whole new database, synced commits included. */
Test(powerloss, a_synced_commit_in_a_new_database_survives)
{
    cr_assert_eq(file_pl_start(pl_root), TIND_OK, "%s", err_msg());
    tind_db *db;
    cr_assert_eq(tind_open(pl_db, NULL, &db), TIND_OK, "%s", tind_last_error());
    tind_keyspace *ks = ks_open(db, "a");
    tind_batch *b;
    cr_assert_eq(tind_batch_new(&b), TIND_OK);
    cr_assert_eq(tind_batch_put(b, ks, "key", 3, "value", 5), TIND_OK);
    cr_assert_eq(tind_batch_commit(db, b, TIND_DURABILITY_SYNC_DATA), TIND_OK, "%s", tind_last_error());
    tind_batch_free(b);
    cr_assert_eq(tind_close(db), TIND_OK);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK, "%s", err_msg());

    cr_assert_eq(tind_open(pl_db, NULL, &db), TIND_OK, "%s", tind_last_error());
    ks = ks_open(db, "a");
    cr_assert(has_key(ks, "key"), "a commit acknowledged with SYNC_DATA was lost with the database directory");
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* A flush made one keyspace's memtable durable as a table while the journal
 * holding the other keyspace's half of the same batches was not synced: a
 * power loss then kept half of each batch. */
Test(powerloss, a_flush_never_outlives_the_other_half_of_its_batches)
{
    cr_assert_eq(file_pl_start(pl_root), TIND_OK, "%s", err_msg());
    tind_db *db;
    cr_assert_eq(tind_open(pl_db, NULL, &db), TIND_OK, "%s", tind_last_error());
    tind_keyspace *a = ks_open(db, "a"), *bks = ks_open(db, "b");
    tind_batch *bt;
    cr_assert_eq(tind_batch_new(&bt), TIND_OK);
    char key[32], val[1000];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        tind_batch_clear(bt);
        cr_assert_eq(tind_batch_put(bt, a, key, strlen(key), "x", 1), TIND_OK);
        cr_assert_eq(tind_batch_put(bt, bks, key, strlen(key), val, sizeof val), TIND_OK);
        cr_assert_eq(tind_batch_commit(db, bt, TIND_DURABILITY_BUFFERED), TIND_OK, "%s", tind_last_error());
    }
    tind_batch_free(bt);
    /* b's half goes to a durable table; a's stays in the journal only. */
    cr_assert_eq(tind_keyspace_flush(bks), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_close(db), TIND_OK);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK, "%s", err_msg());

    cr_assert_eq(tind_open(pl_db, NULL, &db), TIND_OK, "%s", tind_last_error());
    a = ks_open(db, "a");
    bks = ks_open(db, "b");
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        int ia = has_key(a, key), ib = has_key(bks, key);
        cr_assert_eq(ia, ib, "batch %d is torn after the power loss: a has it %d, b has it %d", i, ia, ib);
    }
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* ---- a drop and the journals retired meanwhile ---------------------------------------------- */

struct pl_call {
    tind_db *db;
    tind_keyspace *ks;
    int rc;
    atomic_int done;
};

static void *pl_compact_main(void *arg)
{
    struct pl_call *c = arg;
    c->rc = tind_keyspace_compact(c->ks);
    atomic_store(&c->done, 1);
    return NULL;
}

static void *pl_drop_main(void *arg)
{
    struct pl_call *c = arg;
    c->rc = tind_keyspace_drop(c->db, "a");
    atomic_store(&c->done, 1);
    return NULL;
}

static void pl_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The power goes at the boundary where it was armed; later file operations
 * fail (the power stays off) until tracking stops. */
static void pl_cut(void *arg)
{
    (void)arg;
    file_pl_drop(FILE_PL_ALL, 1);
}

/* A drop record has no sequence number, so no keyspace kept its journal: while
 * the drop waited for the keyspace's major compaction before removing its
 * OPTIONS file, other writes closed that journal and a flush of another
 * keyspace retired it. A crash then reopened the dropped keyspace with its
 * data. The loss here strikes after the drop was applied, the journal holding
 * its record closed and another keyspace flushed past it. */
Test(powerloss, a_drop_is_not_undone_by_journals_retired_while_it_finishes, .timeout = 300)
{
    tind_options o;
    tind_options_init(&o);
    o.journal_max_bytes = 64 << 10; /* rotate often */
    o.workers = 2;
    tind_keyspace_options ka, kb;
    tind_keyspace_options_init(&ka);
    ka.memtable_bytes = 4u << 20;
    ka.table_target_bytes = 256u << 20;
    ka.l0_trigger = 64; /* no background compaction: the major one is long */
    ka.l0_slowdown_tables = ka.l0_stop_tables = 64; /* at least l0_trigger */
    for (int l = 0; l < TIND_LEVELS; l++) ka.compression[l] = TIND_COMPRESSION_NONE;
    tind_keyspace_options_init(&kb);
    kb.memtable_bytes = 64 << 10;

    /* a: 16 MiB in four overlapping tables, written before tracking starts. */
    tind_db *db;
    tind_keyspace *a, *b;
    cr_assert_eq(tind_open(pl_db, &o, &db), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_keyspace_open(db, "a", &ka, &a), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_keyspace_open(db, "b", &kb, &b), TIND_OK, "%s", tind_last_error());
    static uint8_t val[4096];
    char key[32];
    for (int i = 0; i < 4096; i++) {
        snprintf(key, sizeof key, "k%06d", (i * 7919) % 4096 * 4 + i / 1024);
        tu_fill(val, sizeof val, (uint64_t)i);
        cr_assert_eq(tind_put(a, key, strlen(key), val, sizeof val), TIND_OK, "%s", tind_last_error());
        if (i % 1024 == 1023) cr_assert_eq(tind_keyspace_flush(a), TIND_OK, "%s", tind_last_error());
    }
    cr_assert_eq(tind_close(db), TIND_OK, "%s", tind_last_error());

    cr_assert_eq(file_pl_start(pl_root), TIND_OK, "%s", err_msg());
    cr_assert_eq(tind_open(pl_db, &o, &db), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_keyspace_open(db, "a", &ka, &a), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_keyspace_open(db, "b", &kb, &b), TIND_OK, "%s", tind_last_error());
    struct pl_call comp = {.db = db, .ks = a}, drop = {.db = db, .ks = a};
    atomic_init(&comp.done, 0);
    atomic_init(&drop.done, 0);
    pthread_t tc, td;
    cr_assert_eq(pthread_create(&tc, NULL, pl_compact_main, &comp), 0);
    struct tind_db_stats st;
    for (int i = 0; i < 5000; i++) {
        cr_assert_eq(tind_db_stats(db, &st), TIND_OK, "%s", tind_last_error());
        if (st.compactions_active > 0 || atomic_load(&comp.done)) break;
        pl_sleep_ms(1);
    }
    pl_sleep_ms(20); /* into the merge */
    cr_assert_eq(pthread_create(&td, NULL, pl_drop_main, &drop), 0);
    /* The drop's record is written and applied once the handle reports it. */
    struct tind_keyspace_stats ks_st;
    for (int i = 0; i < 5000 && tind_keyspace_stats(a, &ks_st) == TIND_OK; i++) pl_sleep_ms(1);
    cr_assert_eq(tind_keyspace_stats(a, &ks_st), TIND_INVALID, "the drop was not applied");

    /* Writes of b close the journal holding the drop record; b's flush then
     * retires every journal b no longer needs. */
    memset(val, 'b', 1024);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "b%06d", i);
        cr_assert_eq(tind_put(b, key, strlen(key), val, 1024), TIND_OK, "%s", tind_last_error());
    }
    cr_assert_eq(tind_keyspace_flush(b), TIND_OK, "%s", tind_last_error());
    int drop_done_at_loss = atomic_load(&drop.done);

    /* The power goes at the next boundary (a persist reaches one if nothing
     * else does first). */
    for (int i = 0; i < 1000 && !file_pl_crashed(); i++) {
        file_pl_crash_at(file_pl_boundaries(), pl_cut, NULL);
        tind_persist(db, TIND_DURABILITY_SYNC_DATA);
    }
    cr_assert(file_pl_crashed(), "the power loss never struck");
    pthread_join(tc, NULL);
    pthread_join(td, NULL);
    tind_close(db); /* the power is off: its errors say nothing */
    file_pl_stop();

    cr_assert_eq(tind_open(pl_db, &o, &db), TIND_OK, "reopen: %s", tind_last_error());
    char **names;
    size_t n;
    cr_assert_eq(tind_keyspace_list(db, &names, &n), TIND_OK, "%s", tind_last_error());
    for (size_t i = 0; i < n; i++)
        cr_assert_str_neq(names[i], "a",
                          "the dropped keyspace is back after the power loss (the drop %s returned by then)",
                          drop_done_at_loss ? "had" : "had not");
    tind_free(names);
    cr_assert_eq(tind_close(db), TIND_OK, "%s", tind_last_error());
}

Test(powerloss, a_sample_of_crash_states_loses_no_durable_batch, .timeout = 600)
{
    const char *tools = getenv("TIND_TOOLS");
    cr_assert(tools != NULL, "TIND_TOOLS must name the folder of powerloss-check (make test sets it)");
    char cmd[1024];
    /* Each state forks a workload and reopens twice: a sanitizer build takes
     * 5 to 50 times longer per state, so it explores fewer. */
#if defined(__SANITIZE_THREAD__)
    int states = 36;
#elif defined(__SANITIZE_ADDRESS__)
    int states = 150;
#else
    int states = 500;
#endif
    snprintf(cmd, sizeof cmd, "%s/powerloss-check --states=%d", tools, states);
    int st = system(cmd);
    cr_assert_eq(st, 0, "powerloss-check failed (status %d); its output above says how to replay it", st);
}
