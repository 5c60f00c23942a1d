/* Power-loss tests of the database: regression tests for the durability
 * bugs the power-loss simulator (src/util/file.h) found, and a sample of the
 * crash-state exploration of tests/tools/powerloss-check.c (the whole of it
 * is `make powerloss-test`). */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/err.h"
#include "src/util/file.h"
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
