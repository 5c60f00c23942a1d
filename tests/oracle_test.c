/* The conflict oracle, white box: what its log keeps while a write is in
 * flight (prepared by the journal leader, not yet published). */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "journal/payload.h"
#include "lsm/ikey.h"
#include "src/db.h"
#include "src/oracle.h"
#include "src/util/buf.h"
#include "tests/support/testutil.h"
#include "tind.h"

static char *dir;
static tind_db *db;

static void setup(void)
{
    dir = tu_mkdtemp("oracle");
    cr_assert_not_null(dir);
    cr_assert_eq(tind_open(dir, NULL, &db), TIND_OK, "%s", tind_last_error());
}

static void teardown(void)
{
    if (db) tind_close(db);
    tu_rmtree(dir);
    free(dir);
}

TestSuite(oracle, .init = setup, .fini = teardown);

/* A transaction B may have counted itself in `active` (so that the leader
 * records a write W) but not yet taken its snapshot, which then precedes W's
 * publication. If another transaction's end pruned W's entry meanwhile, B's
 * commit would not see W: the entry of an unpublished write must stay. */
Test(oracle, regression_the_entry_of_an_unpublished_write_outlives_the_last_transaction)
{
    tind_keyspace *ks = NULL;
    cr_assert_eq(tind_keyspace_open(db, "a", NULL, &ks), TIND_OK, "%s", tind_last_error());
    tind_tx *c = NULL;
    cr_assert_eq(tind_tx_begin(db, &c), TIND_OK);

    /* What the leader does for W: prepare it with the next sequence number. */
    buf payload;
    buf_init(&payload);
    cr_assert_eq(payload_batch_init(&payload), TIND_OK);
    cr_assert_eq(payload_batch_add(&payload, KIND_PUT, ks->id, "k", 1, "v", 1), TIND_OK);
    uint64_t published = db_last_seq(db);
    struct journal_req r = {.payload = payload.p, .len = payload.len, .seq_count = 1, .first_seq = published + 1};
    cr_assert_eq(oracle_prepare(db, &r, NULL), TIND_OK);

    struct tind_db_stats st;
    cr_assert_eq(tind_db_stats(db, &st), TIND_OK);
    cr_assert_eq(st.conflict_log_entries, 1);
    tind_tx_abort(c); /* the last listed transaction ends; W is not published */
    cr_assert_eq(tind_db_stats(db, &st), TIND_OK);
    cr_assert_eq(st.conflict_log_entries, 1, "the entry of a write at %llu, past the published %llu, was pruned",
                 (unsigned long long)published + 1, (unsigned long long)published);
    buf_free(&payload);

    /* Once W's number is published (here by a real write taking it), the next
     * end of a transaction drops the entry. */
    cr_assert_eq(tind_put(ks, "k", 1, "w", 1), TIND_OK);
    cr_assert_geq(db_last_seq(db), published + 1);
    cr_assert_eq(tind_tx_begin(db, &c), TIND_OK);
    tind_tx_abort(c);
    cr_assert_eq(tind_db_stats(db, &st), TIND_OK);
    cr_assert_eq(st.conflict_log_entries, 0);
}

/* A refused commit had published its numbers as `unregistered`, though they
 * go to the next request: until another write, every tind_tx_begin waited
 * for them with a needless round through the journal. */
Test(oracle, regression_a_refused_commit_leaves_nothing_for_new_transactions_to_wait_for)
{
    tind_keyspace *ks = NULL;
    cr_assert_eq(tind_keyspace_open(db, "a", NULL, &ks), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_put(ks, "k", 1, "0", 1), TIND_OK);
    tind_tx *tx = NULL;
    cr_assert_eq(tind_tx_begin(db, &tx), TIND_OK);
    void *v;
    size_t vl;
    cr_assert_eq(tind_tx_get(tx, ks, "k", 1, &v, &vl), TIND_OK);
    tind_free(v);
    for (int i = 0; i < 5; i++) cr_assert_eq(tind_tx_put(tx, ks, "abcde" + i, 1, "v", 1), TIND_OK);
    cr_assert_eq(tind_put(ks, "k", 1, "1", 1), TIND_OK);
    cr_assert_eq(tind_tx_commit(tx), TIND_CONFLICT);
    cr_assert_leq(atomic_load(&db->oracle.unregistered), db_last_seq(db),
                  "a refused commit left %llu to wait for, past the published %llu",
                  (unsigned long long)atomic_load(&db->oracle.unregistered), (unsigned long long)db_last_seq(db));
}
