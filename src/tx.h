/* Transactions: the structures shared by src/tx.c (the public API),
 * src/oracle.c (conflict detection) and src/iter.c (iterators over a
 * transaction's writes and its snapshot). */
#ifndef TIND_SRC_TX_H
#define TIND_SRC_TX_H

#include <stddef.h>
#include <stdint.h>

#include "lsm/memtable.h"
#include "src/db.h"
#include "src/util/buf.h"
#include "tind.h"

struct journal_req;
struct write_target;

/* The buffered writes to one keyspace: a memtable whose sequence numbers are
 * the transaction's op numbers (1, 2, ...), so the newest op of a key wins. */
struct tx_space {
    tind_keyspace *ks;
    memtable *mem;
};

/* A range an iterator of the transaction covered, in keyspace `ks`: keys k
 * with lo <= k (or any, lo_open) and k <= hi (k < hi with hi_excl; or any,
 * hi_open). */
struct tx_range {
    uint32_t ks;
    int lo_open, hi_open, hi_excl;
    size_t lo_off, lo_len, hi_off, hi_len; /* into tx->range_keys */
};

/* A key read for update: registered as written when the transaction commits. */
struct tx_lock {
    uint32_t ks;
    size_t off, len; /* into tx->lock_keys */
};

/* What a rollback to a savepoint cuts back: the ops and the keys read for
 * update. The read set is never cut (src/tx.c, tind_tx_rollback_to). */
struct tx_savepoint {
    uint64_t nops;
    size_t nlocks, lock_bytes;
};

struct tind_tx {
    tind_db *db;
    tind_snapshot *snap;  /* the view: reads see exactly what committed before it */
    int single_writer;    /* holds db->write_gate for writing from begin to end */
    int durability;
    int failed;           /* bookkeeping failed (out of memory): commit refuses */

    struct tx_space *spaces; /* keyspaces written, with their buffers */
    size_t nspaces, capspaces;
    uint64_t nops;           /* ops buffered (the newest op number) */

    uint64_t *reads;         /* hashes of the keys read (tx_key_hash) */
    size_t nreads, capreads;
    struct tx_range *ranges;
    size_t nranges, capranges;
    buf range_keys;
    struct tx_lock *locks;
    size_t nlocks, caplocks;
    buf lock_keys;

    struct tx_savepoint *saves;
    size_t nsaves, capsaves;

    struct tind_iter **iters; /* open iterators, whose ranges join at commit */
    size_t niters, capiters;

    /* A single-writer transaction's hold on the write gate (src/write.c). */
    struct write_gate_hold gate;

    /* The oracle's list of open transactions, in snapshot order (its mu). */
    struct tind_tx *prev, *next;
};

/* The hash a key is known by in read and write sets: 64 bits of xxh3 over
 * the key seeded with the keyspace number (src/tx_reads.c). */
uint64_t tx_key_hash(uint32_t ks, const void *key, size_t klen);

/* Sorts the read set's hashes, for tx_read_conflicts (at commit). */
void tx_sort_reads(struct tind_tx *tx);
/* Does the transaction's read set hold (ks, key)? reads must be sorted. */
int tx_read_conflicts(const struct tind_tx *tx, uint32_t ks, uint64_t hash, const uint8_t *key, size_t klen);

/* Iterators (src/iter.c): records a transaction iterator's covered range in
 * its transaction and detaches it (at its close, or at the commit or abort). */
void tx_iter_detach(struct tind_iter *it);
/* Adds a range to the read set (src/tx_reads.c, as the rest below). */
int tx_add_range(struct tind_tx *tx, uint32_t ks, int lo_open, const void *lo, size_t lo_len, int hi_open,
                 const void *hi, size_t hi_len, int hi_excl);
/* Lists / forgets an open iterator of the transaction. */
int tx_track_iter(struct tind_tx *tx, struct tind_iter *it);
void tx_forget_iter(struct tind_tx *tx, struct tind_iter *it);
/* Marks the transaction's read tracking broken: its commit fails. */
void tx_poison(struct tind_tx *tx);

/* The buffer of ks in tx, or NULL when tx wrote nothing to it. */
memtable *tx_buffer(const struct tind_tx *tx, const tind_keyspace *ks);

#endif
