/* The crash test's writer: commits numbered batches over two keyspaces
 * (every third as a transaction that reads the counter it then writes) and
 * reports each acknowledged one on stdout (8 bytes, the batch number), until
 * it is killed. Its keyspaces have 64 KiB memtables and tables, so flushes
 * and compactions run all the time and many kills land in the middle of one.
 *   crash-writer DIR FIRST SEED */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/tools/crash_common.h"
#include "tind.h"

static int write_all(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

/* Batch i's writes (the same as the batch's) through a transaction, which
 * must commit whole or leave no trace. */
static int commit_as_transaction(tind_db *db, tind_keyspace *a, tind_keyspace *b, uint64_t i, int dur)
{
    tind_tx *tx;
    int rc = tind_tx_begin(db, &tx);
    if (rc) return rc;
    char key[32], cnt[24];
    uint8_t val[512];
    size_t kl = crash_key(key, i), vl = crash_value(val, i);
    int cl = sprintf(cnt, "%llu", (unsigned long long)i);
    void *old;
    size_t oldl;
    rc = tind_tx_get(tx, a, "counter", 7, &old, &oldl);
    if (rc == TIND_OK) tind_free(old);
    if (rc == TIND_NOT_FOUND) rc = TIND_OK;
    if (!rc) rc = tind_tx_put(tx, a, key, kl, val, vl);
    if (!rc) rc = tind_tx_put(tx, b, key, kl, val, vl);
    if (!rc) rc = tind_tx_put(tx, a, "counter", 7, cnt, (size_t)cl);
    if (!rc) rc = tind_tx_put(tx, b, "counter", 7, cnt, (size_t)cl);
    if (!rc && i > A_WINDOW) {
        kl = crash_key(key, i - A_WINDOW);
        rc = tind_tx_delete(tx, a, key, kl);
    }
    if (!rc) rc = tind_tx_set_durability(tx, dur);
    if (rc) {
        tind_tx_abort(tx);
        return rc;
    }
    return tind_tx_commit(tx);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: crash-writer DIR FIRST SEED\n");
        return 2;
    }
    uint64_t first = strtoull(argv[2], NULL, 10);
    srand((unsigned)strtoul(argv[3], NULL, 10));
    tind_options o;
    tind_options_init(&o);
    o.journal_max_bytes = 256 << 10; /* rotate often */
    tind_db *db;
    int rc = tind_open(argv[1], &o, &db);
    if (rc) {
        fprintf(stderr, "crash-writer: open: %s: %s\n", tind_strerror(rc), tind_last_error());
        return 1;
    }
    tind_keyspace *a, *b;
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64 << 10;     /* flush all the time */
    ko.table_target_bytes = 64 << 10; /* and compact into many small tables */
    ko.l0_trigger = 2;
    if ((rc = tind_keyspace_open(db, "a", &ko, &a)) || (rc = tind_keyspace_open(db, "b", &ko, &b))) {
        fprintf(stderr, "crash-writer: keyspace: %s: %s\n", tind_strerror(rc), tind_last_error());
        return 1;
    }
    tind_batch *bt;
    if (tind_batch_new(&bt)) return 1;
    char key[32];
    uint8_t val[512];
    for (uint64_t i = first;; i++) {
        tind_batch_clear(bt);
        size_t kl = crash_key(key, i), vl = crash_value(val, i);
        char cnt[24];
        int cl = sprintf(cnt, "%llu", (unsigned long long)i);
        rc = tind_batch_put(bt, a, key, kl, val, vl);
        if (!rc) rc = tind_batch_put(bt, b, key, kl, val, vl);
        if (!rc) rc = tind_batch_put(bt, a, "counter", 7, cnt, (size_t)cl);
        if (!rc) rc = tind_batch_put(bt, b, "counter", 7, cnt, (size_t)cl);
        if (!rc && i > A_WINDOW) {
            kl = crash_key(key, i - A_WINDOW);
            rc = tind_batch_delete(bt, a, key, kl);
        }
        int dur = rand() % 50 == 0 ? TIND_DURABILITY_SYNC_DATA : TIND_DURABILITY_BUFFERED;
        if (!rc && i % 3 == 0) rc = commit_as_transaction(db, a, b, i, dur);
        else if (!rc) rc = tind_batch_commit(db, bt, dur);
        if (rc) {
            fprintf(stderr, "crash-writer: batch %llu: %s: %s\n", (unsigned long long)i, tind_strerror(rc),
                    tind_last_error());
            return 1;
        }
        if (write_all(1, &i, sizeof i)) return 1;
    }
}
