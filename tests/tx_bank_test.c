/* The bank test: threads move random amounts between accounts spread over
 * two keyspaces, in optimistic transactions retried on conflict (and every
 * eighth in a single-writer transaction), while auditors add up every
 * balance through snapshots and through read-only transactions' iterators.
 * The total never changes: not while transfers run, not after a reopen.
 * Tiny memtables keep flushes and compactions running underneath. The
 * appenders' test is below. */
#include "tests/api_common.h"

TestSuite(tx_bank, .init = api_setup, .fini = api_teardown);

enum { BANK_ACCOUNTS = 24, BANK_START = 1000, BANK_MOVERS = 4, BANK_AUDITORS = 2, BANK_TRANSFERS = 300 };

struct bank {
    tind_db *db;
    tind_keyspace *ks[2];
    atomic_int movers_left;
    atomic_int failed;
    char why[256];
    pthread_mutex_t why_mu;
};

static void bank_fail(struct bank *b, const char *what, int rc)
{
    pthread_mutex_lock(&b->why_mu);
    if (!atomic_load(&b->failed))
        snprintf(b->why, sizeof b->why, "%s: %s: %s", what, tind_strerror(rc), tind_last_error());
    atomic_store(&b->failed, 1);
    pthread_mutex_unlock(&b->why_mu);
}

/* Account i lives in keyspace i % 2 under "acct-NN". */
static tind_keyspace *acct_ks(struct bank *b, int i) { return b->ks[i % 2]; }

static size_t acct_key(char *k, int i) { return (size_t)sprintf(k, "acct-%02d", i); }

static int parse_balance(const void *v, size_t vl, long *out)
{
    char s[32];
    if (vl == 0 || vl >= sizeof s) return -1;
    memcpy(s, v, vl);
    s[vl] = 0;
    char *end;
    *out = strtol(s, &end, 10);
    return *end ? -1 : 0;
}

static int tx_balance(tind_tx *tx, struct bank *b, int i, long *bal)
{
    char k[24];
    size_t kl = acct_key(k, i);
    void *v;
    size_t vl;
    int rc = tind_tx_get(tx, acct_ks(b, i), k, kl, &v, &vl);
    if (rc) return rc;
    rc = parse_balance(v, vl, bal) ? TIND_CORRUPTION : TIND_OK;
    tind_free(v);
    return rc;
}

static int tx_set(tind_tx *tx, struct bank *b, int i, long bal)
{
    char k[24], v[32];
    size_t kl = acct_key(k, i);
    int vl = sprintf(v, "%ld", bal);
    return tind_tx_put(tx, acct_ks(b, i), k, kl, v, (size_t)vl);
}

struct mover {
    struct bank *b;
    uint64_t rng;
    unsigned done, conflicts, single;
};

static void *mover_main(void *p)
{
    struct mover *m = p;
    struct bank *b = m->b;
    for (unsigned n = 0; n < BANK_TRANSFERS && !atomic_load(&b->failed); n++) {
        int from = (int)tu_below(&m->rng, BANK_ACCOUNTS), to = (int)tu_below(&m->rng, BANK_ACCOUNTS - 1);
        if (to >= from) to++;
        int single = n % 8 == 7;
        for (;;) {
            tind_tx *tx;
            int rc = single ? tind_wtx_begin(b->db, &tx) : tind_tx_begin(b->db, &tx);
            if (rc) {
                bank_fail(b, "begin", rc);
                break;
            }
            long fb, tb;
            if ((rc = tx_balance(tx, b, from, &fb)) || (rc = tx_balance(tx, b, to, &tb))) {
                tind_tx_abort(tx);
                bank_fail(b, "read balance", rc);
                break;
            }
            long amount = fb > 0 ? 1 + (long)tu_below(&m->rng, (uint64_t)fb) : 0;
            if ((rc = tx_set(tx, b, from, fb - amount)) || (rc = tx_set(tx, b, to, tb + amount))) {
                tind_tx_abort(tx);
                bank_fail(b, "write balance", rc);
                break;
            }
            rc = tind_tx_commit(tx);
            if (rc == TIND_CONFLICT && !single) {
                m->conflicts++;
                continue;
            }
            if (rc) bank_fail(b, single ? "single-writer commit" : "commit", rc);
            else m->single += (unsigned)single;
            break;
        }
        m->done++;
    }
    atomic_fetch_sub(&b->movers_left, 1);
    return NULL;
}

struct auditor {
    struct bank *b;
    int id;
    unsigned audits;
};

/* The total through a snapshot. */
static int audit_snapshot(struct bank *b, long *total)
{
    tind_snapshot *s;
    int rc = tind_snapshot_open(b->db, &s);
    if (rc) return rc;
    *total = 0;
    for (int i = 0; i < BANK_ACCOUNTS && rc == TIND_OK; i++) {
        char k[24];
        size_t kl = acct_key(k, i);
        void *v;
        size_t vl;
        long bal = 0;
        if ((rc = tind_snapshot_get(s, acct_ks(b, i), k, kl, &v, &vl)) != TIND_OK) break;
        if (parse_balance(v, vl, &bal) || bal < 0) rc = TIND_CORRUPTION;
        tind_free(v);
        *total += bal;
    }
    tind_snapshot_close(s);
    return rc;
}

/* The total through a read-only transaction's iterators, one per keyspace. */
static int audit_tx(struct bank *b, long *total, int *accounts)
{
    tind_tx *tx;
    int rc = tind_tx_begin(b->db, &tx);
    if (rc) return rc;
    *total = 0;
    *accounts = 0;
    for (int s = 0; s < 2 && rc == TIND_OK; s++) {
        tind_iter *it;
        tind_bounds accounts_only = {"acct-", 5, "acct.", 5};
        if ((rc = tind_tx_iter_open(tx, b->ks[s], &accounts_only, &it)) != TIND_OK) break;
        for (tind_iter_seek_last(it); tind_iter_valid(it); tind_iter_prev(it)) {
            size_t vl;
            const void *v = tind_iter_value(it, &vl);
            long bal;
            if (parse_balance(v, vl, &bal) || bal < 0) {
                rc = TIND_CORRUPTION;
                break;
            }
            *total += bal;
            ++*accounts;
        }
        if (rc == TIND_OK) rc = tind_iter_status(it);
        tind_iter_close(it);
    }
    if (rc == TIND_OK) rc = tind_tx_commit(tx); /* read-only: never conflicts */
    else tind_tx_abort(tx);
    return rc;
}

static void *auditor_main(void *p)
{
    struct auditor *a = p;
    struct bank *b = a->b;
    while (atomic_load(&b->movers_left) > 0 && !atomic_load(&b->failed)) {
        long total;
        int accounts, rc;
        if ((rc = audit_snapshot(b, &total)) != TIND_OK) {
            bank_fail(b, "snapshot audit", rc);
            break;
        }
        if (total != (long)BANK_ACCOUNTS * BANK_START) {
            bank_fail(b, "snapshot audit: the total changed", TIND_CORRUPTION);
            break;
        }
        if ((rc = audit_tx(b, &total, &accounts)) != TIND_OK) {
            bank_fail(b, "transaction audit", rc);
            break;
        }
        if (total != (long)BANK_ACCOUNTS * BANK_START || accounts != BANK_ACCOUNTS) {
            bank_fail(b, "transaction audit: the total changed", TIND_CORRUPTION);
            break;
        }
        a->audits++;
    }
    return NULL;
}

static void bank_open(struct bank *b, const char *path)
{
    b->db = open_db(path, NULL);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64 << 10;
    ko.table_target_bytes = 64 << 10;
    ko.l0_trigger = 2;
    b->ks[0] = ks_open(b->db, "checking", &ko);
    b->ks[1] = ks_open(b->db, "savings", &ko);
}

static void expect_total(struct bank *b)
{
    long total;
    int accounts;
    EXPECT_OK(audit_snapshot(b, &total));
    cr_assert_eq(total, (long)BANK_ACCOUNTS * BANK_START);
    EXPECT_OK(audit_tx(b, &total, &accounts));
    cr_assert_eq(total, (long)BANK_ACCOUNTS * BANK_START);
    cr_assert_eq(accounts, BANK_ACCOUNTS);
}

Test(tx_bank, transfers_never_change_the_total, .timeout = 300)
{
    struct bank *b = calloc(1, sizeof *b);
    cr_assert_not_null(b);
    pthread_mutex_init(&b->why_mu, NULL);
    bank_open(b, sub("db"));
    g_db = b->db;
    tind_tx *tx;
    EXPECT_OK(tind_tx_begin(b->db, &tx));
    for (int i = 0; i < BANK_ACCOUNTS; i++) EXPECT_OK(tx_set(tx, b, i, BANK_START));
    EXPECT_OK(tind_tx_commit(tx));
    /* a long value for every key keeps memtables filling and flushing */
    char pad[200];
    memset(pad, 'p', sizeof pad);
    for (int i = 0; i < 400; i++) {
        char k[24];
        int kl = sprintf(k, "pad-%03d", i);
        EXPECT_OK(tind_put(b->ks[i % 2], k, (size_t)kl, pad, sizeof pad));
    }

    uint64_t seed = tu_seed("tx_bank::transfers_never_change_the_total");
    struct mover m[BANK_MOVERS];
    struct auditor au[BANK_AUDITORS];
    pthread_t mt[BANK_MOVERS], at[BANK_AUDITORS];
    atomic_init(&b->movers_left, BANK_MOVERS);
    for (int i = 0; i < BANK_AUDITORS; i++) {
        au[i] = (struct auditor){.b = b, .id = i};
        cr_assert_eq(pthread_create(&at[i], NULL, auditor_main, &au[i]), 0);
    }
    for (int i = 0; i < BANK_MOVERS; i++) {
        m[i] = (struct mover){.b = b, .rng = seed + (uint64_t)i};
        cr_assert_eq(pthread_create(&mt[i], NULL, mover_main, &m[i]), 0);
    }
    /* flushes and compactions underneath, meanwhile */
    while (atomic_load(&b->movers_left) > 0 && !atomic_load(&b->failed)) {
        EXPECT_OK(tind_keyspace_flush(b->ks[0]));
        EXPECT_OK(tind_keyspace_compact(b->ks[1]));
        usleep(5000);
    }
    for (int i = 0; i < BANK_MOVERS; i++) pthread_join(mt[i], NULL);
    for (int i = 0; i < BANK_AUDITORS; i++) pthread_join(at[i], NULL);
    cr_assert_not(atomic_load(&b->failed), "seed %llu: %s", (unsigned long long)seed, b->why);
    unsigned done = 0, conflicts = 0, single = 0, audits = 0;
    for (int i = 0; i < BANK_MOVERS; i++) {
        done += m[i].done;
        conflicts += m[i].conflicts;
        single += m[i].single;
    }
    for (int i = 0; i < BANK_AUDITORS; i++) audits += au[i].audits;
    cr_assert_eq(done, BANK_MOVERS * BANK_TRANSFERS);
    expect_total(b);
    struct tind_db_stats st = db_stats(b->db);
    cr_assert_eq(st.transaction_conflicts, conflicts);
    cr_assert_eq(st.transactions_open, 0);
    cr_assert_eq(st.conflict_log_bytes, 0, "the conflict log keeps %llu bytes with no transaction open",
                 (unsigned long long)st.conflict_log_bytes);
    close_main();
    bank_open(b, sub("db"));
    g_db = b->db;
    expect_total(b);
    fprintf(stderr, "tx_bank: %u transfers (%u single-writer), %u conflicts retried, %u audits while running: ok\n",
            done, single, conflicts, audits);
    pthread_mutex_destroy(&b->why_mu);
    free(b);
}

/* ---- appenders: phantoms under concurrency ------------------------------------------------ */

/* Appenders add row N, where N is found by iterating the rows (counting them
 * forward, or reading the last one backward) in optimistic transactions;
 * churners begin and end short transactions and write elsewhere meanwhile,
 * so that the conflict log is pruned and the begin handshake runs all the
 * time. Serializable commits leave rows 0..M-1 for M commits: a missed
 * phantom makes two appenders write the same row. */
enum { APPENDERS = 3, APPENDS = 120 };

struct appender {
    struct bank *b;
    int id;
    unsigned done, conflicts;
};

static int next_row(tind_tx *tx, tind_keyspace *ks, int backward, long *row)
{
    tind_bounds bo = {.lower = "row-", .lower_len = 4, .upper = "row.", .upper_len = 4};
    tind_iter *it;
    int rc = tind_tx_iter_open(tx, ks, &bo, &it);
    if (rc) return rc;
    long n = 0;
    if (backward) {
        tind_iter_seek_last(it);
        if (tind_iter_valid(it)) {
            size_t kl;
            const char *k = tind_iter_key(it, &kl);
            n = strtol(k + 4, NULL, 10) + 1;
        }
    } else {
        for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it)) n++;
    }
    rc = tind_iter_status(it);
    tind_iter_close(it);
    *row = n;
    return rc;
}

static void *appender_main(void *arg)
{
    struct appender *a = arg;
    struct bank *b = a->b;
    tind_keyspace *ks = b->ks[0];
    while (a->done < APPENDS && !atomic_load(&b->failed)) {
        tind_tx *tx;
        long row;
        int rc = tind_tx_begin(b->db, &tx);
        if (rc) {
            bank_fail(b, "appender begin", rc);
            break;
        }
        if ((rc = next_row(tx, ks, (a->done + (unsigned)a->id) % 2, &row)) != TIND_OK) {
            tind_tx_abort(tx);
            bank_fail(b, "appender iterate", rc);
            break;
        }
        usleep(100 + 100 * (unsigned)a->id); /* others append meanwhile */
        char k[24];
        int kl = snprintf(k, sizeof k, "row-%06ld", row);
        if ((rc = tind_tx_put(tx, ks, k, (size_t)kl, "r", 1)) != TIND_OK) {
            tind_tx_abort(tx);
            bank_fail(b, "appender put", rc);
            break;
        }
        rc = tind_tx_commit(tx);
        if (rc == TIND_CONFLICT) {
            a->conflicts++;
        } else if (rc) {
            bank_fail(b, "appender commit", rc);
            break;
        } else {
            a->done++;
        }
    }
    atomic_fetch_sub(&b->movers_left, 1);
    return NULL;
}

static void *churner_main(void *arg)
{
    struct bank *b = arg;
    unsigned n = 0;
    while (atomic_load(&b->movers_left) > 0 && !atomic_load(&b->failed)) {
        tind_tx *tx;
        int rc = tind_tx_begin(b->db, &tx);
        if (rc) {
            bank_fail(b, "churner begin", rc);
            break;
        }
        char k[24];
        int kl = snprintf(k, sizeof k, "churn-%03u", n++ % 500);
        if ((rc = tind_put(b->ks[n % 2], k, (size_t)kl, "c", 1)) != TIND_OK) {
            tind_tx_abort(tx);
            bank_fail(b, "churner put", rc);
            break;
        }
        tind_tx_abort(tx);
        if ((rc = tind_put(b->ks[0], k, (size_t)kl, "d", 1)) != TIND_OK) { /* with no transaction of its own */
            bank_fail(b, "churner put", rc);
            break;
        }
    }
    return NULL;
}

Test(tx_bank, appenders_that_iterate_never_write_the_same_row, .timeout = 300)
{
    struct bank *b = calloc(1, sizeof *b);
    cr_assert_not_null(b);
    pthread_mutex_init(&b->why_mu, NULL);
    bank_open(b, sub("db"));
    g_db = b->db;
    struct appender ap[APPENDERS];
    pthread_t at[APPENDERS], ct[2];
    atomic_init(&b->movers_left, APPENDERS);
    for (int i = 0; i < APPENDERS; i++) {
        ap[i] = (struct appender){.b = b, .id = i};
        cr_assert_eq(pthread_create(&at[i], NULL, appender_main, &ap[i]), 0);
    }
    for (int i = 0; i < 2; i++) cr_assert_eq(pthread_create(&ct[i], NULL, churner_main, b), 0);
    for (int i = 0; i < APPENDERS; i++) pthread_join(at[i], NULL);
    for (int i = 0; i < 2; i++) pthread_join(ct[i], NULL);
    cr_assert_not(atomic_load(&b->failed), "%s", b->why);
    unsigned done = 0, conflicts = 0;
    for (int i = 0; i < APPENDERS; i++) {
        done += ap[i].done;
        conflicts += ap[i].conflicts;
    }
    tind_iter *it;
    tind_bounds bo = {.lower = "row-", .lower_len = 4, .upper = "row.", .upper_len = 4};
    EXPECT_OK(tind_iter_open(b->ks[0], NULL, &bo, &it));
    long n = 0;
    for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it), n++) {
        size_t kl;
        const char *k = tind_iter_key(it, &kl);
        char want[24];
        snprintf(want, sizeof want, "row-%06ld", n);
        cr_assert(kl == strlen(want) && memcmp(k, want, kl) == 0, "row %ld: got %s", n, tu_hex(k, kl));
    }
    EXPECT_OK(tind_iter_status(it));
    tind_iter_close(it);
    cr_assert_eq(n, (long)done, "%u commits wrote %ld distinct rows: a phantom was missed", done, n);
    struct tind_db_stats st = db_stats(b->db);
    cr_assert_eq(st.transactions_open, 0);
    fprintf(stderr, "tx_bank: %u rows appended, %u conflicts retried: ok\n", done, conflicts);
    pthread_mutex_destroy(&b->why_mu);
    free(b);
}
