/* The database layer's internal structures, shared by the files of src/. */
#ifndef TIND_SRC_DB_H
#define TIND_SRC_DB_H

#include <pthread.h> /* the write gate */
#include <stdatomic.h>
#include <stdint.h>

#include "journal/journal.h"
#include "lsm/cache.h"
#include "lsm/memtable.h"
#include "lsm/table_cache.h"
#include "lsm/version.h"
#include "src/oracle.h"
#include "src/util/buf.h"
#include "src/util/mutex.h"
#include "src/tree/tree.h"
#include "src/util/workers.h"
#include "tind.h"

/* Directory layout (src/README.md has the byte formats):
 *   <db>/TIND                 the format marker and database meta file
 *   <db>/LOCK                 flock'd while open: exclusively by a read-write
 *                             handle, shared by read-only ones
 *   <db>/journals/<n>.jnl     the shared journal files
 *   <db>/keyspaces/<id>/      one folder per keyspace: OPTIONS (its name and options),
 *                             MANIFEST (its version: tables by level) and its tables */
#define DB_META_FILE "TIND"
#define DB_LOCK_FILE "LOCK"
#define DB_JOURNAL_DIR "journals"
#define DB_KEYSPACE_DIR "keyspaces"
#define KS_OPTIONS_FILE "OPTIONS"

struct tind_keyspace {
    tind_db *db;
    uint32_t id;
    char name[TIND_MAX_KEYSPACE_NAME + 1];
    char *dir;
    _Atomic int durability; /* resolved: what tind_put/tind_delete use */
    struct tree *tree;      /* its LSM tree (src/tree/); holds its options */
    /* Set by the journal's leader when it applies the drop (and by replay),
     * with the tree stopped at the same time; never cleared. */
    _Atomic int dropped;
};

struct tind_snapshot {
    tind_db *db;
    uint64_t seq;
    /* In db->snaps, guarded by db->snap_mu. */
    struct tind_snapshot *prev, *next;
};

struct tind_db {
    char *path, *journal_dir, *ks_dir;
    tind_options opts;
    int lock_fd;
    journal *jnl;

    /* ks_mu serializes keyspace creation, drop and lookup by name, and
     * guards next_ks_id and the meta file; it is held across their I/O and
     * the drop's journal write (rare). list_mu guards the arrays below and
     * is only ever held briefly: the journal leader and the workers take it,
     * never ks_mu. The live table is changed holding both, so a holder of
     * ks_mu may read it without list_mu (ks_find_name). Order: the write gate, ks_mu, then list_mu, then a keyspace
     * tree's mu. */
    struct tmutex ks_mu;
    struct tmutex list_mu ACQUIRED_AFTER(ks_mu);
    tind_keyspace **ks PT_GUARDED_BY(list_mu) GUARDED_BY(list_mu); /* live keyspaces, in creation order */
    size_t nks GUARDED_BY(list_mu), capks GUARDED_BY(list_mu);
    /* dropped handles, freed at close so that they stay valid */
    tind_keyspace **dropped PT_GUARDED_BY(list_mu) GUARDED_BY(list_mu);
    size_t ndropped GUARDED_BY(list_mu), capdropped GUARDED_BY(list_mu);
    uint32_t next_ks_id GUARDED_BY(ks_mu);

    /* retire_mu serializes journal retirement (retire_journals: what
     * the keyspaces still need, then the deletion) with the drops' pins. A
     * drop record has no sequence number, so no keyspace keeps its journal:
     * a drop pins the journals from before its record is written until its
     * keyspace's OPTIONS file is durably gone (until then only the record
     * keeps the keyspace from coming back). drop_pin: the last published
     * sequence number when the oldest pin still held was taken (UINT64_MAX:
     * none); the journal holding the record may hold nothing below it.
     * A drop whose folder could not be removed keeps its pin until close
     * (drop_pin_kept), so that the next open replays the record. Order:
     * ks_mu, then retire_mu, then list_mu. */
    struct tmutex retire_mu ACQUIRED_AFTER(ks_mu) ACQUIRED_BEFORE(list_mu);
    uint64_t drop_pin GUARDED_BY(retire_mu);
    int drop_pin_kept GUARDED_BY(retire_mu);

    _Atomic int closing;  /* set at close: running compactions stop early */
    cache *block_cache;   /* NULL when cache_bytes is 0 */
    table_cache *tables;
    workers *pool;

    /* Transactions: the conflict oracle, and the write gate that plain
     * writes, optimistic commits and drops hold shared and a single-writer
     * transaction exclusive (writer-preferring; src/write.c). The gate stays
     * a plain pthread_rwlock_t, not a capability of src/util/mutex.h: a
     * single-writer transaction holds it from begin to commit or rollback,
     * across public calls, and write_gate_enter takes it only when this
     * thread does not hold it already (a thread-local list), neither of
     * which a per-function analysis can follow. src/write.c alone takes and
     * releases it. */
    struct oracle oracle;
    pthread_rwlock_t write_gate;

    /* snap_mu guards the snapshot list. */
    struct tmutex snap_mu;
    struct tind_snapshot snaps GUARDED_BY(snap_mu); /* list head (sentinel) */
    atomic_long nsnaps;
    atomic_long niters;
    atomic_long npins; /* tind_pinned values not yet released */
};

/* The newest published sequence number. */
static inline uint64_t db_last_seq(const tind_db *db) { return journal_last_seq(db->jnl); }

/* Marks ks dropped and stops its tree, waking its waiters (the journal's
 * apply of a drop, and replay). */
static inline void ks_mark_dropped(tind_keyspace *ks)
{
    atomic_store(&ks->dropped, 1);
    tree_stop(ks->tree);
}

/* The files of src/ call each other without a circle, from the top:
 *   db.c (open, recovery, close, stats) and verify.c
 *   tx.c (transactions)        iter.c (public iterators)     maintenance.c
 *   oracle.c                   replay.c                      keyspace.c
 *   retire.c (journal retirement)
 *   batch.c (the write API)    write.c (the one write entry)
 *   read.c (gets, snapshots)   tx_reads.c   tx_iter.c   check.c   ks_options.c
 * and below them all, src/tree/ (one keyspace's tree), then lsm/, journal/,
 * compaction/ and src/util/. Each section below names its file. */

/* ---- src/check.c: argument checks, TIND_OK or TIND_INVALID with a message ---- */
int check_key(const void *key, size_t klen);
int check_value(const void *val, size_t vlen);
int check_durability(int d);
int check_keyspace(const tind_keyspace *ks); /* non-NULL, not dropped */
int check_writable(const tind_db *db);        /* not opened read-only */

/* ---- src/read.c ---- */
/* Reads key as of seq (READ_LATEST: the newest published, taken after the
 * super version) into a fresh copy. */
#define READ_LATEST UINT64_MAX
int read_at(tind_keyspace *ks, uint64_t seq, const void *key, size_t klen, void **val, size_t *vlen);
/* The open snapshots' sequence numbers, ascending (the list is kept in
 * opening order, which is sequence order); NULL when none. */
int read_snapshot_seqs(tind_db *db, uint64_t **seqs, size_t *n);

/* ---- src/write.c: the one write entry ---- */
/* A request's keyspaces, for prepare/apply. With `seal` set, a request
 * without payload asks the leader to seal ks[0]'s memtable; the leader sets
 * seal_seq (0: the memtable was empty, nothing sealed). */
struct write_target {
    tind_keyspace **ks;
    size_t n;
    struct tind_tx *tx; /* a transaction's commit: checked by the oracle */
    int seal;
    uint64_t seal_seq;
};
/* Every journal write goes through here: batches, commits, drops, seals,
 * persists and the oracle's barrier. A request with a payload waits for
 * its keyspaces' backpressure (tree_stall) holding no lock, then is written
 * holding the write gate shared, or as it is when the caller holds the gate
 * (gate_held: a single-writer transaction's commit, or a drop that took it
 * with write_gate_enter); TIND_BUSY when this thread holds a single-writer
 * transaction of db otherwise. A request without payload (a seal, a
 * persist, the barrier) changes no data: it neither waits nor takes the
 * gate. */
int write_submit(tind_db *db, struct journal_req *r, int gate_held);
/* The size past which a current journal is rotated out when nothing needs
 * it (retire_journals), or when a memtable is sealed for its size (the
 * leader, write_apply): a quarter of journal_max_bytes, at most 1 MiB. */
uint64_t write_rotate_bytes(const tind_db *db);
/* The write gate, which plain writes, optimistic commits and drops hold
 * shared and a single-writer transaction exclusive (writer-preferring).
 * write_gate_enter takes it shared unless this thread holds it exclusively
 * (then *taken = 0 and the caller goes on under it); taken before any other
 * lock of the database. */
void write_gate_enter(tind_db *db, int *taken);
void write_gate_leave(tind_db *db, int taken);
/* A single-writer transaction's hold on the gate; the thread's holds are
 * linked through next (one per database at most). */
struct write_gate_hold {
    tind_db *db;
    struct write_gate_hold *next;
};
/* Takes the gate exclusively for h (h->db): TIND_BUSY when this thread
 * holds it already. */
int write_gate_lock(struct write_gate_hold *h);
void write_gate_unlock(struct write_gate_hold *h);
/* Journal callbacks, run by the group-commit leader; write_apply_one by
 * each writer of a group applied in parallel, for its own batch. */
int write_prepare(void *ctx, struct journal_req *r);
int write_apply(void *ctx, struct journal_req **reqs, size_t n);
int write_apply_one(void *ctx, struct journal_req *r);
int write_apply_finish(void *ctx, struct journal_req **reqs, size_t n);
/* Inserts a batch payload's ops into their keyspaces' trees as `how` says
 * (TREE_ADD_*); `find` maps a keyspace number to its keyspace (NULL: skip
 * the op, its keyspace was dropped). */
int write_apply_batch(const uint8_t *p, size_t n, tind_keyspace *(*find)(void *, uint32_t), void *fctx, int how,
                      uint64_t *seq_out, uint32_t *count_out);

/* ---- src/retire.c (above write.c: its rotation is a write) ---- */
/* Deletes the journals every keyspace has flushed past and no drop pins.
 * Any thread holding no journal or tree lock (a flush's worker, a drop). */
void retire_journals(tind_db *db);
/* The same, rotating the current journal out first when nothing needs it
 * and it holds a quarter of journal_max_bytes (at most 1 MiB), so that it
 * goes too. For a caller that reports the rotation's failure (it poisons
 * the database): tind_keyspace_flush, after its flush. */
int retire_journals_rotating(tind_db *db);
/* At close, the workers stopped and no write running: like
 * retire_journals_rotating for a current journal that holds any record
 * nothing needs, so that a database whose writes are all flushed keeps only
 * a header-only journal (the next open removes it). tind_close reports a
 * failure. */
int retire_journals_at_close(tind_db *db);
/* ---- src/replay.c ---- */
/* Replays one journal record at open (single-threaded). */
int replay_record(tind_db *db, const char *path, uint64_t offset, const uint8_t *p, size_t n, uint64_t *last_seq);

/* ---- src/keyspace.c: the keyspace catalog ---- */
int ks_load_all(tind_db *db);
tind_keyspace *ks_find_id(tind_db *db, uint32_t id); /* live only; caller holds ks_mu or is single-threaded */
void ks_free(tind_keyspace *ks);
/* Moves a dropped keyspace from the live table to the dropped list, removes
 * its OPTIONS file (durably), makes its tables obsolete (each goes with its
 * last reader) and removes its folder once no table is left in it. Caller
 * holds ks_mu (replay, single-threaded, takes it too). Nothing is deleted
 * read-only. */
int ks_retire(tind_db *db, tind_keyspace *ks) REQUIRES(db->ks_mu);
/* Removes what is left of a dropped keyspace's folder: every file but its
 * tables (with_tables: those too; at close, when no reader is left, for
 * tables whose removal failed), then the folder if that emptied it. Leaves
 * it all when OPTIONS is still there, and in read-only handles. */
int ks_remove_dropped_folder(tind_db *db, tind_keyspace *ks, int with_tables);
/* The meta file (TIND): the format marker and the next keyspace number. */
int ks_meta_write(tind_db *db);
int ks_meta_read(tind_db *db);
/* After replay: two live keyspaces may not share a name. */
int ks_check_unique(tind_db *db);
/* Rereads the keyspace's OPTIONS file and checks that it decodes to the
 * keyspace's number, name and options; *bytes: its size. Caller holds ks_mu
 * (it is rewritten under it). */
int ks_verify_options(tind_keyspace *ks, uint64_t *bytes) REQUIRES(ks->db->ks_mu);

#endif
