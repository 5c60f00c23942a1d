/* Transactions: reads of own writes and of the snapshot, conflicts (read
 * set, ranges and phantoms, write skew), blind writes, untracked reads,
 * reads for update, savepoints, iterators both ways, single-writer
 * transactions, and the conflict log's pruning. The bank test is in
 * tx_bank_test.c. */
#include "tests/tx_common.h"

TestSuite(tx, .init = api_setup, .fini = api_teardown);

static void tx_del_s(tind_tx *tx, tind_keyspace *ks, const char *k) { EXPECT_OK(tind_tx_delete(tx, ks, k, strlen(k))); }

/* Reads k in tx (tracked) and checks it against v (NULL: absent). */
static void tx_expect(tind_tx *tx, tind_keyspace *ks, const char *k, const char *v)
{
    void *got = NULL;
    size_t gl = 0;
    int rc = tind_tx_get(tx, ks, k, strlen(k), &got, &gl);
    if (!v) {
        cr_assert_eq(rc, TIND_NOT_FOUND, "tx get %s: want absent, got %d %s", k, rc, rc ? "" : tu_hex(got, gl));
        return;
    }
    cr_assert_eq(rc, TIND_OK, "tx get %s: %s", k, tind_last_error());
    cr_assert(gl == strlen(v) && memcmp(got, v, gl) == 0, "tx get %s: want %s, got %s", k, v, tu_hex(got, gl));
    tind_free(got);
}

Test(tx, reads_own_writes_over_its_snapshot_and_commits_atomically)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL), *b = ks_open(g_db, "b", NULL);
    put_s(a, "k1", "old1");
    put_s(a, "k2", "old2");
    tind_tx *tx = begin(g_db);
    put_s(a, "k3", "after-begin"); /* not in the snapshot */
    tx_expect(tx, a, "k1", "old1");
    void *v;
    size_t vl;
    EXPECT_RC(tind_tx_get_untracked(tx, a, "k3", 2, &v, &vl), TIND_NOT_FOUND); /* untracked: k3 changed */
    tx_put_s(tx, a, "k1", "new1");
    tx_del_s(tx, a, "k2");
    tx_put_s(tx, b, "x", "bx");
    tx_put_s(tx, b, "x", "bx2"); /* the newest write of a key wins */
    tx_expect(tx, a, "k1", "new1");
    tx_expect(tx, a, "k2", NULL);
    tx_expect(tx, b, "x", "bx2");
    /* nothing is visible outside before commit */
    expect_val(NULL, a, "k1", "old1");
    expect_val(NULL, b, "x", NULL);
    uint64_t before = db_stats(g_db).last_sequence;
    EXPECT_OK(tind_tx_commit(tx)); /* k1 read, and not written by others since */
    expect_val(NULL, a, "k1", "new1");
    expect_val(NULL, a, "k2", NULL);
    expect_val(NULL, b, "x", "bx2");
    expect_val(NULL, a, "k3", "after-begin");
    /* one record: three ops, not four */
    cr_assert_eq(db_stats(g_db).last_sequence, before + 3);
    close_main();
    g_db = open_db(sub("db"), NULL);
    a = ks_open(g_db, "a", NULL);
    b = ks_open(g_db, "b", NULL);
    expect_val(NULL, a, "k1", "new1");
    expect_val(NULL, a, "k2", NULL);
    expect_val(NULL, b, "x", "bx2");
}

Test(tx, abort_discards_and_read_only_commits_without_checks)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "k", "v0");
    tind_tx *tx = begin(g_db);
    tx_put_s(tx, a, "k", "v1");
    tind_tx_abort(tx);
    expect_val(NULL, a, "k", "v0");
    tind_tx_abort(NULL);

    tx = begin(g_db);
    tx_expect(tx, a, "k", "v0");
    put_s(a, "k", "v2"); /* it read k, k changed: a writer would conflict, a reader does not */
    tx_expect(tx, a, "k", "v0");
    EXPECT_OK(tind_tx_commit(tx));
    struct tind_db_stats st = db_stats(g_db);
    cr_assert_eq(st.transactions_open, 0);
    cr_assert_eq(st.transactions_committed, 2 - 1); /* the aborted one does not count */
}

Test(tx, a_write_after_the_snapshot_to_a_key_read_conflicts)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "k", "1");
    /* by another transaction */
    tind_tx *t1 = begin(g_db), *t2 = begin(g_db);
    tx_expect(t1, a, "k", "1");
    tx_put_s(t2, a, "k", "2");
    EXPECT_OK(tind_tx_commit(t2));
    tx_put_s(t1, a, "other", "x");
    EXPECT_RC(tind_tx_commit(t1), TIND_CONFLICT);
    cr_assert(strstr(tind_last_error(), "read") != NULL, "message: %s", tind_last_error());
    expect_val(NULL, a, "other", NULL);
    /* by a plain put, and by a batch */
    t1 = begin(g_db);
    tx_expect(t1, a, "k", "2");
    put_s(a, "k", "3");
    tx_put_s(t1, a, "other", "x");
    EXPECT_RC(tind_tx_commit(t1), TIND_CONFLICT);
    t1 = begin(g_db);
    tx_expect(t1, a, "missing", NULL); /* reading an absent key counts too */
    tind_batch *bt;
    EXPECT_OK(tind_batch_new(&bt));
    EXPECT_OK(tind_batch_put(bt, a, "missing", 7, "now", 3));
    EXPECT_OK(tind_batch_commit(g_db, bt, TIND_DURABILITY_BUFFERED));
    tind_batch_free(bt);
    tx_put_s(t1, a, "other", "x");
    EXPECT_RC(tind_tx_commit(t1), TIND_CONFLICT);
    /* a write before the snapshot does not */
    t1 = begin(g_db);
    tx_expect(t1, a, "k", "3");
    tx_put_s(t1, a, "k", "4");
    EXPECT_OK(tind_tx_commit(t1));
    expect_val(NULL, a, "k", "4");
    cr_assert_eq(db_stats(g_db).transaction_conflicts, 3);
}

Test(tx, blind_writes_do_not_conflict)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    tind_tx *t1 = begin(g_db), *t2 = begin(g_db);
    tx_put_s(t1, a, "k", "from-t1");
    tx_put_s(t2, a, "k", "from-t2");
    EXPECT_OK(tind_tx_commit(t2));
    put_s(a, "k", "plain");
    EXPECT_OK(tind_tx_commit(t1));
    expect_val(NULL, a, "k", "from-t1");
}

Test(tx, write_skew_cannot_commit_twice)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "x", "1");
    put_s(a, "y", "1");
    /* each: if x + y >= 2, take one from its own key */
    tind_tx *t1 = begin(g_db), *t2 = begin(g_db);
    tx_expect(t1, a, "x", "1");
    tx_expect(t1, a, "y", "1");
    tx_expect(t2, a, "x", "1");
    tx_expect(t2, a, "y", "1");
    tx_put_s(t1, a, "x", "0");
    tx_put_s(t2, a, "y", "0");
    EXPECT_OK(tind_tx_commit(t1));
    EXPECT_RC(tind_tx_commit(t2), TIND_CONFLICT);
    expect_val(NULL, a, "x", "0");
    expect_val(NULL, a, "y", "1");
}

/* Walks it forward from a seek to the end and counts the keys. */
static int count_forward(tind_iter *it, const char *from)
{
    int n = 0;
    if (from) tind_iter_seek(it, from, strlen(from));
    else tind_iter_seek_first(it);
    for (; tind_iter_valid(it); tind_iter_next(it)) n++;
    EXPECT_OK(tind_iter_status(it));
    return n;
}

Test(tx, phantoms_in_an_iterated_range_conflict)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL), *b = ks_open(g_db, "b", NULL);
    put_s(a, "b1", "v");
    put_s(a, "b3", "v");
    tind_bounds bd = {"b", 1, "c", 1};
    /* a scan of [b, c) sees two keys; an insert of b2 is a phantom */
    tind_tx *t1 = begin(g_db);
    tind_iter *it;
    EXPECT_OK(tind_tx_iter_open(t1, a, &bd, &it));
    cr_assert_eq(count_forward(it, NULL), 2);
    tind_iter_close(it);
    put_s(a, "b2", "phantom");
    tx_put_s(t1, a, "count", "2");
    EXPECT_RC(tind_tx_commit(t1), TIND_CONFLICT);

    /* outside the range, or in another keyspace, or at the exclusive upper bound: no conflict */
    t1 = begin(g_db);
    EXPECT_OK(tind_tx_iter_open(t1, a, &bd, &it));
    cr_assert_eq(count_forward(it, NULL), 3);
    tind_iter_close(it);
    put_s(a, "c", "at-the-upper-bound");
    put_s(a, "a9", "below");
    put_s(b, "b15", "other keyspace");
    tx_put_s(t1, a, "count", "3");
    EXPECT_OK(tind_tx_commit(t1));

    /* a scan stopped early covers only what it walked */
    t1 = begin(g_db);
    EXPECT_OK(tind_tx_iter_open(t1, a, NULL, &it));
    tind_iter_seek(it, "b1", 2); /* covers [b1, b1] */
    cr_assert(tind_iter_valid(it));
    tind_iter_next(it); /* and up to b2 */
    cr_assert(tind_iter_valid(it));
    /* still open at commit: its range joins then */
    put_s(a, "b25", "after the walk");
    put_s(a, "a", "before the walk");
    tx_put_s(t1, a, "count", "x");
    EXPECT_OK(tind_tx_commit(t1));
    tind_iter_close(it); /* closing after the commit is fine */

    t1 = begin(g_db);
    EXPECT_OK(tind_tx_iter_open(t1, a, NULL, &it));
    tind_iter_seek(it, "b1", 2);
    tind_iter_next(it);
    tind_iter_close(it);
    put_s(a, "b15", "inside the walk");
    tx_put_s(t1, a, "count", "y");
    EXPECT_RC(tind_tx_commit(t1), TIND_CONFLICT);

    /* a backward walk off the start covers everything below */
    t1 = begin(g_db);
    EXPECT_OK(tind_tx_iter_open(t1, a, NULL, &it));
    tind_iter_seek_for_prev(it, "a9", 2);
    cr_assert(tind_iter_valid(it));
    tind_iter_prev(it);
    tind_iter_prev(it);
    cr_assert_not(tind_iter_valid(it));
    tind_iter_close(it);
    put_s(a, "0", "below everything");
    tx_put_s(t1, a, "count", "z");
    EXPECT_RC(tind_tx_commit(t1), TIND_CONFLICT);
}

Test(tx, untracked_reads_do_not_conflict)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "k", "1");
    tind_tx *t1 = begin(g_db);
    void *v;
    size_t vl;
    EXPECT_OK(tind_tx_get_untracked(t1, a, "k", 1, &v, &vl));
    cr_assert(vl == 1 && memcmp(v, "1", 1) == 0);
    tind_free(v);
    put_s(a, "k", "2");
    tx_put_s(t1, a, "x", "y");
    EXPECT_OK(tind_tx_commit(t1));
}

Test(tx, reads_for_update_count_as_writes)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "k", "1");
    /* t1 locks k without writing it; t2 read k: t2 loses once t1 commits */
    tind_tx *t1 = begin(g_db), *t2 = begin(g_db);
    void *v;
    size_t vl;
    EXPECT_OK(tind_tx_get_for_update(t1, a, "k", 1, &v, &vl));
    tind_free(v);
    tx_expect(t2, a, "k", "1");
    tx_put_s(t1, a, "x", "t1");
    tx_put_s(t2, a, "y", "t2");
    EXPECT_OK(tind_tx_commit(t1));
    EXPECT_RC(tind_tx_commit(t2), TIND_CONFLICT);
    /* and it is a read: a write of k first makes t1 lose */
    t1 = begin(g_db);
    EXPECT_OK(tind_tx_get_for_update(t1, a, "k", 1, &v, &vl));
    tind_free(v);
    put_s(a, "k", "2");
    tx_put_s(t1, a, "x", "t1");
    EXPECT_RC(tind_tx_commit(t1), TIND_CONFLICT);
}

Test(tx, savepoints_undo_writes_and_keep_reads)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL), *b = ks_open(g_db, "b", NULL);
    put_s(a, "k", "0");
    tind_tx *tx = begin(g_db);
    EXPECT_RC(tind_tx_rollback_to(tx), TIND_NOT_FOUND);
    tx_put_s(tx, a, "p", "kept");
    EXPECT_OK(tind_tx_savepoint(tx));
    tx_put_s(tx, a, "p", "undone");
    tx_put_s(tx, b, "q", "undone");
    tx_del_s(tx, a, "k");
    EXPECT_OK(tind_tx_savepoint(tx)); /* nested */
    tx_put_s(tx, a, "r", "undone too");
    EXPECT_OK(tind_tx_rollback_to(tx));
    tx_expect(tx, a, "r", NULL);
    tx_expect(tx, a, "p", "undone");
    tx_expect(tx, a, "k", NULL);
    EXPECT_OK(tind_tx_rollback_to(tx));
    tx_expect(tx, a, "p", "kept");
    tx_expect(tx, b, "q", NULL);
    EXPECT_RC(tind_tx_rollback_to(tx), TIND_NOT_FOUND);
    EXPECT_OK(tind_tx_commit(tx));
    expect_val(NULL, a, "p", "kept");
    expect_val(NULL, b, "q", NULL);
    expect_val(NULL, a, "k", "0");
    /* A read after a savepoint stays in the read set when the savepoint is
     * rolled back: its value may decide what the transaction writes next. */
    tx = begin(g_db);
    EXPECT_OK(tind_tx_savepoint(tx));
    tx_expect(tx, a, "k", "0");
    EXPECT_OK(tind_tx_rollback_to(tx));
    tx_put_s(tx, a, "p", "from k");
    put_s(a, "k", "changed");
    EXPECT_RC(tind_tx_commit(tx), TIND_CONFLICT);
    expect_val(NULL, a, "p", "kept");
    /* A key read for update and rolled back no longer counts as written. */
    tx = begin(g_db);
    tind_tx *other = begin(g_db);
    tx_expect(other, a, "g", NULL);
    tx_put_s(other, a, "o", "1");
    EXPECT_OK(tind_tx_savepoint(tx));
    void *v;
    size_t vl;
    EXPECT_RC(tind_tx_get_for_update(tx, a, "g", 1, &v, &vl), TIND_NOT_FOUND);
    EXPECT_OK(tind_tx_rollback_to(tx));
    tx_put_s(tx, a, "p", "t");
    EXPECT_OK(tind_tx_commit(tx));
    EXPECT_OK(tind_tx_commit(other));
}

/* "Scan, savepoint, close the iterator, roll back" dropped the whole scanned
 * range: an iterator's range joins the read set at its close, and the
 * rollback cut the read set back to the savepoint's mark. A phantom inserted
 * into the range no longer failed the commit. Every read survives a rollback
 * now: point reads and ranges from before the savepoint, from iterators open
 * across it, and from after it. */
Test(tx, regression_a_rollback_keeps_the_reads_and_scanned_ranges_of_the_transaction)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "b", "0");
    put_s(a, "c", "0");
    put_s(a, "d", "0");
    const tind_bounds bounds = {.lower = "b", .lower_len = 1, .upper = "e", .upper_len = 1};
    enum { SCAN_CLOSE_ROLLBACK, SCAN_ACROSS_ROLLBACK, SCAN_AFTER_SAVEPOINT, GET_BEFORE, GET_AFTER, NONE, NCASES };
    static const char *const names[] = {"scan, savepoint, close, roll back",
                                        "open, step, savepoint, step, roll back, close",
                                        "savepoint, scan, close, roll back",
                                        "get, savepoint, roll back",
                                        "savepoint, get, roll back",
                                        "nothing read where the phantom goes"};
    for (int c = 0; c < NCASES; c++) {
        tind_tx *tx = begin(g_db);
        tind_iter *it = NULL;
        void *v;
        size_t vl;
        switch (c) {
        case SCAN_CLOSE_ROLLBACK:
            EXPECT_OK(tind_tx_iter_open(tx, a, &bounds, &it));
            for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it)) {}
            EXPECT_OK(tind_tx_savepoint(tx));
            tind_iter_close(it);
            EXPECT_OK(tind_tx_rollback_to(tx));
            break;
        case SCAN_ACROSS_ROLLBACK:
            EXPECT_OK(tind_tx_iter_open(tx, a, &bounds, &it));
            tind_iter_seek_first(it); /* b */
            tind_iter_next(it);       /* c: the gap b..c, where the phantom goes, is covered */
            EXPECT_OK(tind_tx_savepoint(tx));
            tind_iter_next(it); /* d */
            EXPECT_OK(tind_tx_rollback_to(tx));
            tind_iter_close(it);
            break;
        case SCAN_AFTER_SAVEPOINT:
            EXPECT_OK(tind_tx_savepoint(tx));
            EXPECT_OK(tind_tx_iter_open(tx, a, &bounds, &it));
            for (tind_iter_seek_last(it); tind_iter_valid(it); tind_iter_prev(it)) {}
            tind_iter_close(it);
            EXPECT_OK(tind_tx_rollback_to(tx));
            break;
        case GET_BEFORE:
            EXPECT_RC(tind_tx_get(tx, a, "b0", 2, &v, &vl), TIND_NOT_FOUND);
            EXPECT_OK(tind_tx_savepoint(tx));
            EXPECT_OK(tind_tx_rollback_to(tx));
            break;
        case GET_AFTER:
            EXPECT_OK(tind_tx_savepoint(tx));
            EXPECT_RC(tind_tx_get(tx, a, "b0", 2, &v, &vl), TIND_NOT_FOUND);
            EXPECT_OK(tind_tx_rollback_to(tx));
            break;
        default:
            EXPECT_OK(tind_tx_savepoint(tx));
            EXPECT_OK(tind_tx_get(tx, a, "d", 1, &v, &vl));
            tind_free(v);
            EXPECT_OK(tind_tx_rollback_to(tx));
        }
        tx_put_s(tx, a, "w", "1");
        put_s(a, "b0", "phantom"); /* after the snapshot, between b and c */
        int rc = tind_tx_commit(tx);
        cr_assert_eq(rc, c == NONE ? TIND_OK : TIND_CONFLICT, "%s: the commit returned %d", names[c], rc);
        del_s(a, "b0");
    }
}

/* Collects an iterator's keys and values as "k=v," walking forward or backward. */
static void walk_s(tind_iter *it, int backward, char *out, size_t cap)
{
    out[0] = 0;
    if (backward) tind_iter_seek_last(it);
    else tind_iter_seek_first(it);
    for (; tind_iter_valid(it); backward ? tind_iter_prev(it) : tind_iter_next(it)) {
        size_t kl, vl;
        const char *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%.*s=%.*s,", (int)kl, k, (int)vl, v);
    }
    EXPECT_OK(tind_iter_status(it));
}

Test(tx, iterators_merge_own_writes_with_the_snapshot_both_ways)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "a", "1");
    put_s(a, "c", "1");
    put_s(a, "e", "1");
    put_s(a, "g", "1");
    EXPECT_OK(tind_keyspace_flush(a)); /* some from a table */
    put_s(a, "e", "2");
    tind_tx *tx = begin(g_db);
    put_s(a, "d", "after"); /* not in the snapshot */
    del_s(a, "a");
    tx_put_s(tx, a, "b", "tx");
    tx_del_s(tx, a, "c");
    tx_put_s(tx, a, "e", "tx1");
    tx_put_s(tx, a, "e", "tx2");
    tx_del_s(tx, a, "zz"); /* deleting what is absent */
    tx_put_s(tx, a, "h", "tx");
    tx_del_s(tx, a, "h"); /* written then deleted */
    tind_iter *it;
    EXPECT_OK(tind_tx_iter_open(tx, a, NULL, &it));
    tx_put_s(tx, a, "f", "after the open"); /* not in the open iterator */
    char fwd[512], bwd[512];
    walk_s(it, 0, fwd, sizeof fwd);
    walk_s(it, 1, bwd, sizeof bwd);
    cr_assert_str_eq(fwd, "a=1,b=tx,e=tx2,g=1,");
    cr_assert_str_eq(bwd, "g=1,e=tx2,b=tx,a=1,");
    /* direction changes and seeks */
    tind_iter_seek(it, "c", 1);
    cr_assert(tind_iter_valid(it));
    cr_assert_eq(memcmp(tind_iter_key(it, NULL), "e", 1), 0);
    tind_iter_prev(it);
    cr_assert_eq(memcmp(tind_iter_key(it, NULL), "b", 1), 0);
    tind_iter_next(it);
    cr_assert_eq(memcmp(tind_iter_key(it, NULL), "e", 1), 0);
    tind_iter_seek_for_prev(it, "d", 1);
    cr_assert_eq(memcmp(tind_iter_key(it, NULL), "b", 1), 0);
    tind_iter_close(it);
    /* a new iterator sees f; bounds apply to both sources */
    tind_bounds bd = {"b", 1, "g", 1};
    EXPECT_OK(tind_tx_iter_open(tx, a, &bd, &it));
    walk_s(it, 0, fwd, sizeof fwd);
    walk_s(it, 1, bwd, sizeof bwd);
    cr_assert_str_eq(fwd, "b=tx,e=tx2,f=after the open,");
    cr_assert_str_eq(bwd, "f=after the open,e=tx2,b=tx,");
    tind_iter_close(it);
    tind_tx_abort(tx);
}

/* ---- single-writer transactions ------------------------------------------------------------- */

struct blocked_put {
    tind_keyspace *ks;
    atomic_int done;
    int rc;
};

static void *put_in_thread(void *p)
{
    struct blocked_put *bp = p;
    bp->rc = tind_put(bp->ks, "k", 1, "plain", 5);
    atomic_store(&bp->done, 1);
    return NULL;
}

Test(tx, single_writer_holds_other_writers_off_and_never_conflicts)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "k", "0");
    tind_tx *reader = begin(g_db); /* an optimistic transaction that read k */
    tx_expect(reader, a, "k", "0");
    tind_tx *w = NULL;
    EXPECT_OK(tind_wtx_begin(g_db, &w));
    tind_tx *w2 = NULL;
    EXPECT_RC(tind_wtx_begin(g_db, &w2), TIND_BUSY); /* this thread holds one */
    EXPECT_RC(tind_put(a, "x", 1, "y", 1), TIND_BUSY);
    struct blocked_put bp = {.ks = a};
    atomic_init(&bp.done, 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, put_in_thread, &bp), 0);
    tx_expect(w, a, "k", "0");
    tx_put_s(w, a, "k", "wtx");
    tx_expect(w, a, "k", "wtx");
    expect_val(NULL, a, "k", "0"); /* readers go on meanwhile */
    usleep(50 * 1000);
    cr_assert_eq(atomic_load(&bp.done), 0, "a plain put went through while a single-writer transaction held the gate");
    EXPECT_OK(tind_tx_commit(w));
    pthread_join(th, NULL);
    EXPECT_OK(bp.rc);
    expect_val(NULL, a, "k", "plain"); /* the waiting put went after */
    /* the optimistic reader of k lost to the single writer */
    tx_put_s(reader, a, "z", "1");
    EXPECT_RC(tind_tx_commit(reader), TIND_CONFLICT);
    /* an aborted single writer releases the gate too */
    EXPECT_OK(tind_wtx_begin(g_db, &w));
    tind_tx_abort(w);
    put_s(a, "after", "abort");
}

struct blocked_drop {
    tind_db *db;
    atomic_int done;
    int rc;
};

static void *drop_in_thread(void *p)
{
    struct blocked_drop *bd = p;
    bd->rc = tind_keyspace_drop(bd->db, "a");
    atomic_store(&bd->done, 1);
    return NULL;
}

/* A drop wrote its journal record directly, past the write gate: another
 * thread's single-writer transaction saw the keyspace it was writing vanish
 * under it. A drop is a write like the others: it waits for the gate, and
 * the thread that holds the gate drops under it. */
Test(tx, a_drop_waits_for_another_threads_single_writer_and_the_holder_drops_under_it)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "k", "0");
    tind_tx *w = NULL;
    EXPECT_OK(tind_wtx_begin(g_db, &w));
    struct blocked_drop bd = {.db = g_db};
    atomic_init(&bd.done, 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, drop_in_thread, &bd), 0);
    usleep(50 * 1000);
    cr_assert_eq(atomic_load(&bd.done), 0, "a drop went through while a single-writer transaction held the gate");
    tx_put_s(w, a, "k", "wtx");
    EXPECT_OK(tind_tx_commit(w)); /* the keyspace was still there for it */
    pthread_join(th, NULL);
    EXPECT_OK(bd.rc);
    EXPECT_RC(tind_put(a, "k", 1, "x", 1), TIND_INVALID);
    /* The holder's own drop goes through under its gate. */
    tind_keyspace *b = ks_open(g_db, "a", NULL);
    put_s(b, "k", "1");
    EXPECT_OK(tind_wtx_begin(g_db, &w));
    EXPECT_OK(tind_keyspace_drop(g_db, "a"));
    EXPECT_RC(tind_tx_put(w, b, "k", 1, "late", 4), TIND_INVALID); /* its keyspace is gone */
    tind_tx_abort(w);
}

/* The thread remembered only its newest single-writer transaction: ending it
 * forgot the older one, of another database, and a plain write there took
 * the gate it held for writing (glibc's EDEADLK, unchecked), then released
 * it. */
Test(tx, regression_a_thread_holding_single_writers_of_two_databases_keeps_both_gates)
{
    g_db = open_db(sub("db"), NULL);
    tind_db *db2 = open_db(sub("db2"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    tind_keyspace *b = ks_open(db2, "b", NULL);
    tind_tx *w1 = NULL, *w2 = NULL;
    EXPECT_OK(tind_wtx_begin(g_db, &w1));
    EXPECT_OK(tind_wtx_begin(db2, &w2));
    tx_put_s(w2, b, "k", "2");
    EXPECT_OK(tind_tx_commit(w2));
    put_s(b, "plain", "after"); /* db2's gate is free again */
    EXPECT_RC(tind_put(a, "x", 1, "y", 1), TIND_BUSY);
    EXPECT_RC(tind_wtx_begin(g_db, &w2), TIND_BUSY);
    tx_put_s(w1, a, "k", "1");
    EXPECT_OK(tind_tx_commit(w1));
    put_s(a, "x", "y");
    expect_val(NULL, a, "k", "1");
    EXPECT_OK(tind_close(db2));
}

/* ---- the conflict log ----------------------------------------------------------------------- */

Test(tx, the_conflict_log_is_pruned_as_transactions_end)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    put_s(a, "before", "any transaction"); /* not recorded: no transaction is open */
    cr_assert_eq(db_stats(g_db).conflict_log_entries, 0);
    tind_tx *old = begin(g_db);
    for (int i = 0; i < 1000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%04d", i);
        put_s(a, k, "v");
    }
    struct tind_db_stats st = db_stats(g_db);
    cr_assert_eq(st.conflict_log_entries, 1000);
    cr_assert_gt(st.conflict_log_bytes, 1000 * 5);
    cr_assert_eq(st.transactions_open, 1);
    /* a newer transaction alone needs only what comes after it */
    tind_tx *young = begin(g_db);
    tind_tx_abort(old);
    st = db_stats(g_db);
    cr_assert_eq(st.conflict_log_entries, 0);
    put_s(a, "k0000", "w");
    cr_assert_eq(db_stats(g_db).conflict_log_entries, 1);
    tind_tx_abort(young);
    st = db_stats(g_db);
    cr_assert_eq(st.conflict_log_entries, 0);
    cr_assert_eq(st.conflict_log_bytes, 0);
    cr_assert_eq(st.transactions_open, 0);
    /* an open transaction counts as an open snapshot for close */
    tind_tx *tx = begin(g_db);
    EXPECT_RC(tind_close(g_db), TIND_BUSY);
    tind_tx_abort(tx);
}

Test(tx, bad_arguments)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL);
    tind_tx *tx = NULL;
    EXPECT_RC(tind_tx_begin(NULL, &tx), TIND_INVALID);
    EXPECT_RC(tind_tx_begin(g_db, NULL), TIND_INVALID);
    tx = begin(g_db);
    void *v;
    size_t vl;
    EXPECT_RC(tind_tx_get(tx, a, "", 0, &v, &vl), TIND_INVALID);
    EXPECT_RC(tind_tx_get(tx, NULL, "k", 1, &v, &vl), TIND_INVALID);
    EXPECT_RC(tind_tx_get(tx, a, "k", 1, NULL, &vl), TIND_INVALID);
    EXPECT_RC(tind_tx_put(NULL, a, "k", 1, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_tx_put(tx, a, "k", 1, NULL, 1), TIND_INVALID);
    EXPECT_RC(tind_tx_set_durability(tx, 7), TIND_INVALID);
    EXPECT_OK(tind_tx_set_durability(tx, TIND_DURABILITY_SYNC_DATA));
    tind_iter *it;
    EXPECT_RC(tind_tx_iter_open(tx, a, NULL, NULL), TIND_INVALID);
    EXPECT_RC(tind_tx_iter_open(NULL, a, NULL, &it), TIND_INVALID);
    EXPECT_RC(tind_tx_commit(NULL), TIND_INVALID);
    tx_put_s(tx, a, "k", "v");
    EXPECT_OK(tind_tx_commit(tx));
    expect_val(NULL, a, "k", "v");
    /* a keyspace of another database */
    tind_db *other = open_db(sub("other"), NULL);
    tind_keyspace *oa = ks_open(other, "a", NULL);
    tx = begin(g_db);
    EXPECT_RC(tind_tx_put(tx, oa, "k", 1, "v", 1), TIND_INVALID);
    tind_tx_abort(tx);
    EXPECT_OK(tind_close(other));
}
