/* Transactions on error paths: a keyspace dropped under a transaction, a
 * poisoned journal, a write set far larger than a journal group, closing
 * while a single-writer transaction is open. */
#include "tests/tx_common.h"

#include <errno.h>

#include "src/util/file.h"
#include "tests/support/fault_env.h"

TestSuite(tx_error, .init = api_setup, .fini = api_teardown);

Test(tx_error, a_keyspace_dropped_under_a_transaction_fails_its_commit_and_nothing_is_written)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    tind_keyspace *b = ks_open(g_db, "b", NULL);
    tind_tx *tx = begin(g_db);
    tx_put_s(tx, a, "k", "1");
    tx_put_s(tx, b, "k", "1");
    tind_iter *it = NULL;
    EXPECT_OK(tind_tx_iter_open(tx, a, NULL, &it));
    tind_iter_seek_first(it);
    cr_assert(tind_iter_valid(it));
    EXPECT_OK(tind_keyspace_drop(g_db, "a"));
    void *v;
    size_t vl;
    EXPECT_RC(tind_tx_get(tx, a, "k", 1, &v, &vl), TIND_INVALID);
    EXPECT_RC(tind_tx_put(tx, a, "j", 1, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_tx_iter_open(tx, a, NULL, &(tind_iter *){NULL}), TIND_INVALID);
    EXPECT_RC(tind_tx_commit(tx), TIND_INVALID);
    /* the iterator opened before the drop stays readable, then closes */
    size_t kl;
    const void *k = tind_iter_key(it, &kl);
    cr_assert(kl == 1 && memcmp(k, "k", 1) == 0);
    tind_iter_close(it);
    expect_val(NULL, b, "k", NULL); /* atomic: b's half is not written either */
    struct tind_db_stats st = db_stats(g_db);
    cr_assert_eq(st.transactions_open, 0);
    cr_assert_eq(st.conflict_log_entries, 0);
    put_s(b, "after", "drop");
}

Test(tx_error, a_poisoned_journal_fails_commits_and_leaves_no_transaction_or_gate_behind)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "k", "0");
    tind_tx *tx = begin(g_db);
    tind_tx *reader = begin(g_db);
    void *v;
    size_t vl;
    EXPECT_OK(tind_tx_get(tx, a, "k", 1, &v, &vl));
    tind_free(v);
    tx_put_s(tx, a, "k", "1");
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = ".jnl", .nth = 0, .err = EIO};
    file_fault_set(&f);
    EXPECT_RC(tind_put(a, "x", 1, "y", 1), TIND_IO_ERROR);
    file_fault_clear();
    EXPECT_RC(tind_tx_commit(tx), TIND_POISONED);
    /* a transaction that only reads still reads and commits */
    EXPECT_OK(tind_tx_get(reader, a, "k", 1, &v, &vl));
    cr_assert(vl == 1 && memcmp(v, "0", 1) == 0);
    tind_free(v);
    EXPECT_OK(tind_tx_commit(reader));
    /* The failed write's number is never published: new transactions read
     * from what was, and only their writes fail; a single-writer one is
     * refused and gives its gate back. */
    tind_tx *late = begin(g_db);
    EXPECT_OK(tind_tx_get(late, a, "k", 1, &v, &vl));
    cr_assert(vl == 1 && memcmp(v, "0", 1) == 0);
    tind_free(v);
    tx_put_s(late, a, "k", "3");
    EXPECT_RC(tind_tx_commit(late), TIND_POISONED);
    late = NULL;
    EXPECT_RC(tind_wtx_begin(g_db, &late), TIND_POISONED);
    cr_assert_null(late);
    EXPECT_RC(tind_put(a, "x", 1, "y", 1), TIND_POISONED); /* not TIND_BUSY, no wait */
    struct tind_db_stats st = db_stats(g_db);
    cr_assert_eq(st.transactions_open, 0);
    cr_assert_eq(st.snapshots, 0);
    close_main();
    g_db = open_db(sub("db"), NULL);
    a = ks_open(g_db, "a", NULL);
    expect_val(NULL, a, "k", "0");
    tx = begin(g_db);
    tx_put_s(tx, a, "k", "2");
    EXPECT_OK(tind_tx_commit(tx));
    expect_val(NULL, a, "k", "2");
}

/* A write that fails past its prepare step (in the journal's write or its
 * sync) had its number given out while no transaction was open, and that
 * number is never published. Every later tind_tx_begin waited for it and got
 * TIND_POISONED: a poisoned database took reads through transactions away
 * with its writes. */
Test(tx_error, regression_read_only_transactions_begin_and_read_after_a_write_failed_past_its_prepare)
{
    const unsigned ops[] = {FOP_BIT(FOP_WRITE), FOP_BIT(FOP_SYNC) | FOP_BIT(FOP_DATASYNC)};
    for (int c = 0; c < 2; c++) {
        char name[16];
        snprintf(name, sizeof name, "db%d", c);
        g_db = open_db(sub(name), NULL);
        tind_keyspace *a = ks_open(g_db, "a", NULL);
        put_s(a, "k", "0");
        put_s(a, "m", "0");
        cr_assert_eq(db_stats(g_db).transactions_open, 0); /* the failing write goes unrecorded */
        tind_batch *b = NULL;
        EXPECT_OK(tind_batch_new(&b));
        EXPECT_OK(tind_batch_put(b, a, "k", 1, "1", 1));
        EXPECT_OK(tind_batch_put(b, a, "n", 1, "1", 1));
        file_fault_set(&(struct file_fault){.ops = ops[c], .path_part = ".jnl", .nth = 0, .err = EIO});
        EXPECT_RC(tind_batch_commit(g_db, b, TIND_DURABILITY_SYNC_DATA), TIND_IO_ERROR);
        cr_assert_eq(file_fault_fired(), 1u, "case %d: the fault did not fire", c);
        file_fault_clear();
        tind_batch_free(b);

        tind_tx *tx = NULL;
        int rc = tind_tx_begin(g_db, &tx);
        cr_assert_eq(rc, TIND_OK, "case %d: a read-only transaction on a poisoned database: %d (%s)", c, rc,
                     tind_last_error());
        void *v;
        size_t vl;
        EXPECT_OK(tind_tx_get(tx, a, "k", 1, &v, &vl));
        cr_assert(vl == 1 && memcmp(v, "0", 1) == 0, "case %d: k reads %s", c, tu_hex(v, vl));
        tind_free(v);
        EXPECT_RC(tind_tx_get(tx, a, "n", 1, &v, &vl), TIND_NOT_FOUND);
        tind_iter *it = NULL;
        EXPECT_OK(tind_tx_iter_open(tx, a, NULL, &it));
        int n = 0;
        for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it)) n++;
        EXPECT_OK(tind_iter_status(it));
        tind_iter_close(it);
        cr_assert_eq(n, 2, "case %d: the iterator saw %d keys", c, n);
        EXPECT_OK(tind_tx_commit(tx));
        /* Writes still fail. */
        tx = begin(g_db);
        tx_put_s(tx, a, "k", "2");
        EXPECT_RC(tind_tx_commit(tx), TIND_POISONED);
        tx = NULL;
        EXPECT_RC(tind_wtx_begin(g_db, &tx), TIND_POISONED);
        cr_assert_null(tx);
        EXPECT_RC(tind_put(a, "x", 1, "y", 1), TIND_POISONED);
        cr_assert_eq(db_stats(g_db).transactions_open, 0);
        close_main();
    }
}

/* 40,000 writes of 256-byte values: one record of about 11 MB, far past a
 * journal group's size, replayed whole after a reopen. */
Test(tx_error, a_huge_write_set_commits_as_one_record_and_replays, .timeout = 120)
{
    enum { N = 40000, VL = 256 };
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    tind_tx *tx = begin(g_db);
    char val[VL];
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%06d", i);
        memset(val, 'a' + i % 26, sizeof val);
        EXPECT_OK(tind_tx_put(tx, a, k, strlen(k), val, sizeof val));
    }
    tind_tx *other = begin(g_db); /* an open transaction makes the commit record every key */
    EXPECT_OK(tind_tx_commit(tx));
    cr_assert_geq(db_stats(g_db).conflict_log_entries, N);
    tind_tx_abort(other);
    cr_assert_eq(db_stats(g_db).conflict_log_entries, 0);
    close_main();
    g_db = open_db(sub("db"), NULL);
    a = ks_open(g_db, "a", NULL);
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(a, NULL, NULL, &it));
    int n = 0;
    for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it), n++) {
        size_t vl;
        const char *v = tind_iter_value(it, &vl);
        cr_assert(vl == VL && v[0] == 'a' + n % 26 && v[VL - 1] == 'a' + n % 26, "value %d differs", n);
    }
    EXPECT_OK(tind_iter_status(it));
    tind_iter_close(it);
    cr_assert_eq(n, N);
}

Test(tx_error, closing_with_a_single_writer_transaction_open_is_busy)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    tind_tx *w = NULL;
    EXPECT_OK(tind_wtx_begin(g_db, &w));
    tx_put_s(w, a, "k", "v");
    EXPECT_RC(tind_close(g_db), TIND_BUSY);
    EXPECT_OK(tind_tx_commit(w));
    put_s(a, "j", "v"); /* the gate is free */
    close_main();
}

/* An iterator that stopped on a read error had covered only up to its last
 * key: a caller taking the stop for the end would commit having "seen" an
 * empty rest. The stop now covers the rest, as the end would. */
Test(tx_error, regression_an_iterator_stopped_by_a_read_error_covers_the_rest_of_its_way)
{
    tind_options o;
    tind_options_init(&o);
    o.cache_bytes = 0; /* every block comes from the file */
    g_db = open_db(sub("db"), &o);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.block_size = 256;
    tind_keyspace *a = ks_open(g_db, "a", &ko);
    char val[100];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < 200; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "r%03d", i);
        EXPECT_OK(tind_put(a, k, (size_t)kl, val, sizeof val));
    }
    EXPECT_OK(tind_keyspace_flush(a));
    for (int dir = 0; dir < 2; dir++) {
        tind_tx *tx = begin(g_db);
        tind_iter *it = NULL;
        EXPECT_OK(tind_tx_iter_open(tx, a, NULL, &it));
        if (dir == 0) tind_iter_seek(it, "r100", 4);
        else tind_iter_seek_for_prev(it, "r100", 4);
        cr_assert(tind_iter_valid(it));
        struct file_fault f = {.ops = FOP_BIT(FOP_READ), .path_part = ".tbl", .nth = 0, .err = EIO, .forever = 1};
        file_fault_set(&f);
        int steps = 0;
        while (tind_iter_valid(it) && steps < 1000) {
            if (dir == 0) tind_iter_next(it);
            else tind_iter_prev(it);
            steps++;
        }
        file_fault_clear();
        cr_assert_eq(tind_iter_status(it), TIND_IO_ERROR, "direction %d: the iterator ran %d steps without error", dir,
                     steps);
        tind_iter_close(it);
        /* written past the far end of the keys, after the snapshot */
        if (dir == 0) put_s(a, "z", "after");
        else put_s(a, "a", "after");
        tx_put_s(tx, a, "w", "1");
        EXPECT_RC(tind_tx_commit(tx), TIND_CONFLICT);
    }
}
