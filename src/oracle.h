/* The conflict oracle of optimistic transactions.
 *
 * While any transaction is open, the journal's group-commit leader records
 * the keys of every committed write (plain writes, batches and transactions)
 * with its sequence number, in sequence order: the log. A transaction that
 * commits is checked by the leader, in sequence order, against the log
 * entries newer than its snapshot: a key it read, or a key inside a range it
 * iterated, written by anyone after its snapshot fails the commit with
 * TIND_CONFLICT. Checking and recording happen in the leader's prepare step,
 * one request after another, so no two commits race.
 *
 * Entries no open transaction can conflict with (at or below the oldest open
 * snapshot) are pruned as transactions end; with none open, the log keeps
 * only the entries of writes not yet published (a transaction beginning now
 * may take its snapshot before they publish).
 *
 * Writes that commit while no transaction is open are not recorded. The
 * leader publishes the last sequence number of each such write in
 * `unregistered` before it reads `active`; a transaction increments `active`
 * before it reads `unregistered`, so (both sequentially consistent) either
 * the leader sees the transaction and records the write, or the transaction
 * sees the write and waits for it to be published before taking its snapshot.
 * A poisoned journal publishes nothing more and commits nothing more: the
 * transaction takes its snapshot at the published number without waiting
 * (it can read, and its writes fail at commit).
 */
#ifndef TIND_SRC_ORACLE_H
#define TIND_SRC_ORACLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "src/util/mutex.h"

struct tind_tx;
struct tind_db;
struct journal_req;

struct oracle_entry {
    uint64_t seq;
    uint64_t hash;    /* tx_key_hash */
    uint32_t ks;
    uint32_t klen;
    uint8_t *key;     /* own allocation */
};

struct oracle {
    /* mu guards the log, the list of open transactions and the counters; it
     * is taken by the journal leader in prepare and by transactions at begin
     * and end; it is never held across I/O. Taken before the db's snap_mu. */
    struct tmutex mu;
    _Atomic long active;             /* open optimistic and single-writer transactions */
    _Atomic uint64_t unregistered;   /* see above */
    /* entries [head, n) are live, in sequence order */
    struct oracle_entry *log PT_GUARDED_BY(mu) GUARDED_BY(mu);
    size_t head GUARDED_BY(mu), n GUARDED_BY(mu), cap GUARDED_BY(mu);
    uint64_t log_bytes GUARDED_BY(mu); /* memory of the live entries */
    /* open transactions, oldest snapshot first */
    struct tind_tx *first GUARDED_BY(mu), *last GUARDED_BY(mu);
    uint64_t commits GUARDED_BY(mu), conflicts GUARDED_BY(mu), read_only GUARDED_BY(mu);
};

void oracle_init(struct oracle *o);
void oracle_destroy(struct oracle *o);

/* A transaction begins in two steps, so that every write after its
 * snapshot will be in the log. oracle_open counts it open (writes given out
 * from then on are logged) and returns 1 when a write given out before is
 * not yet published: the caller then waits for it to be (an empty request
 * through the write entry returns after every group before it). Then
 * oracle_register opens tx's snapshot (tx->snap) and lists tx as open; given
 * the failure rc of that wait, or failing itself, it counts tx closed again
 * and returns the failure. */
int oracle_open(struct tind_db *db);
int oracle_register(struct tind_db *db, struct tind_tx *tx, int rc);
/* Unlists tx and prunes the log; counts the outcome. */
void oracle_end(struct tind_db *db, struct tind_tx *tx, int committed, int read_only);

/* Leader, for a batch request about to be given sequence numbers from
 * r->first_seq: with tx set (an optimistic transaction), checks it against
 * the log and fails with TIND_CONFLICT; then records the request's keys
 * (and tx's keys read for update) when a transaction is open. */
int oracle_prepare(struct tind_db *db, struct journal_req *r, struct tind_tx *tx);

/* Entries and bytes of the log, open transactions, and outcome counters. */
void oracle_stats(struct oracle *o, uint64_t *entries, uint64_t *bytes, uint64_t *open, uint64_t *commits,
                  uint64_t *conflicts);

#endif
