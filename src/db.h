/* The database layer's internal structures, shared by the files of src/. */
#ifndef TIND_SRC_DB_H
#define TIND_SRC_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "journal/journal.h"
#include "lsm/cache.h"
#include "lsm/memtable.h"
#include "lsm/table_cache.h"
#include "lsm/version.h"
#include "src/oracle.h"
#include "src/util/buf.h"
#include "src/workers.h"
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

/* What a read needs of a keyspace, taken together: the active memtable, the
 * sealed ones (newest first) and the table version. Immutable; reference
 * counted; replaced whole under the keyspace's mu. Holding one keeps every
 * memtable and table in it alive. */
struct super_version {
    _Atomic long refs;
    memtable *mem;
    memtable **imm;
    size_t nimm;
    struct version *ver;
};
void sv_ref(struct super_version *sv);
void sv_unref(struct super_version *sv);

/* A sealed memtable waiting for its flush. seal_seq: the last sequence
 * number applied when it was sealed; once it is in a table, every write of
 * the keyspace up to seal_seq is. */
struct sealed_mem {
    memtable *mem;
    uint64_t seal_seq;
};

struct tind_keyspace {
    tind_db *db;
    uint32_t id;
    char name[TIND_MAX_KEYSPACE_NAME + 1];
    char *dir;
    tind_keyspace_options opts; /* written under db->ks_mu and mu; flush jobs read it under
                                   mu; the write path reads the atomics below */
    _Atomic int durability;     /* resolved: what tind_put/tind_delete use */
    _Atomic uint64_t memtable_bytes;
    _Atomic uint32_t max_sealed;
    manifest *man;

    /* mu guards sv, sealed, flushing, flush_error, flushes and dropped's
     * transitions. The active memtable (sv->mem) is written by the journal's
     * group-commit leader alone; sealing swaps it under mu from the leader.
     * flush_cond is broadcast when a flush ends (or fails) and when the
     * keyspace is dropped: stalled writers and tind_keyspace_flush wait on it. */
    pthread_mutex_t mu;
    pthread_cond_t flush_cond;
    struct super_version *sv;
    memtable *active;          /* == sv->mem: the leader's alone; changed by flush_seal under mu */
    struct sealed_mem *sealed; /* oldest first */
    size_t nsealed, capsealed;
    int flushing;              /* a flush job is queued or running */
    int flush_error;           /* the status of a failed flush; stops further flushes */
    char flush_errmsg[768];    /* its message; written once, before flush_error is set */
    uint64_t flushes;
    uint64_t flushed_seq;      /* the manifest's */
    uint64_t settled_seq;      /* flushed_seq once the journals it freed are retired */
    _Atomic int dropped;

    /* edit_mu serializes the keyspace's manifest edits (flushes and
     * compactions) together with the super version switch that follows each;
     * it is held across the manifest's I/O, and taken before mu. */
    pthread_mutex_t edit_mu;
    /* Compaction state, guarded by mu. */
    uint64_t *busy;            /* numbers of the tables being compacted */
    size_t nbusy, capbusy;
    unsigned compacting;       /* compaction jobs queued or running */
    int major;                 /* tind_keyspace_compact holds the tree: no new picks */
    int compact_error;         /* a failed compaction stops further ones */
    char compact_errmsg[768];  /* its message; written once, before compact_error is set */
    uint64_t compactions, compact_read, compact_written, compact_ns;
    uint64_t level_compactions[LSM_LEVELS], level_read[LSM_LEVELS], level_written[LSM_LEVELS];
    uint64_t flushed_bytes;
    uint64_t stalls, slowdowns, stall_ns; /* guarded by mu */
    uint64_t pending_bytes;    /* compaction_pending_bytes of sv's version; guarded by mu */
    /* Guarded by mu. ver_gen counts the table versions sv has had (bumped by
     * ks_install_sv when the version changes); idle_gen is ver_gen + 1 once a
     * background compaction found nothing to pick in that version (0: not
     * known), so that a stall never waits for work the strategy will not do. */
    uint64_t ver_gen, idle_gen;
};

struct tind_snapshot {
    tind_db *db;
    uint64_t seq;
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
     * never ks_mu. Order: ks_mu, then list_mu, then a keyspace's mu. */
    pthread_mutex_t ks_mu;
    pthread_mutex_t list_mu;
    tind_keyspace **ks;  /* live keyspaces, in creation order */
    size_t nks, capks;
    tind_keyspace **dropped; /* dropped handles, freed at close so that they stay valid */
    size_t ndropped, capdropped;
    uint32_t next_ks_id;

    /* retire_mu serializes journal retirement (flush_retire_journals: what
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
    pthread_mutex_t retire_mu;
    uint64_t drop_pin;
    int drop_pin_kept;

    _Atomic int closing;  /* set at close: running compactions stop early */
    cache *block_cache;   /* NULL when cache_bytes is 0 */
    table_cache *tables;
    workers *pool;

    /* Transactions: the conflict oracle, and the write gate that plain
     * writes and optimistic commits hold shared and a single-writer
     * transaction exclusive (writer-preferring). */
    struct oracle oracle;
    pthread_rwlock_t write_gate;

    /* snap_mu guards the snapshot list. */
    pthread_mutex_t snap_mu;
    struct tind_snapshot snaps; /* list head (sentinel) */
    atomic_long nsnaps;
    atomic_long niters;
};

/* Validation helpers: TIND_OK or TIND_INVALID with a message. */
int db_check_key(const void *key, size_t klen);
int db_check_value(const void *val, size_t vlen);
int db_check_durability(int d);
int db_check_keyspace(const tind_keyspace *ks); /* non-NULL, not dropped */
int db_check_writable(const tind_db *db);        /* not opened read-only */

/* Reads key as of seq (DB_READ_LATEST: the newest published, taken after
 * the super version) into a fresh copy (src/read.c). */
#define DB_READ_LATEST UINT64_MAX
int db_read_at(tind_keyspace *ks, uint64_t seq, const void *key, size_t klen, void **val, size_t *vlen);

/* Every write goes through here (src/tx.c): r through the journal, holding
 * the write gate shared, or as it is when the caller holds the gate
 * exclusively (exclusive: a single-writer transaction's commit). TIND_BUSY
 * when this thread holds a single-writer transaction of db otherwise. */
int db_write(tind_db *db, struct journal_req *r, int exclusive);

/* Takes a reference on the keyspace's super version: TIND_OK, or TIND_INVALID if dropped. */
int ks_acquire_sv(tind_keyspace *ks, struct super_version **sv);
/* Replaces ks->sv with one built from the current memtables, sealed list and
 * the manifest's version. Caller holds ks->mu. TIND_NO_MEMORY leaves the old one. */
int ks_install_sv(tind_keyspace *ks);

/* The newest published sequence number. */
static inline uint64_t db_last_seq(const tind_db *db) { return journal_last_seq(db->jnl); }

/* Journal callbacks (src/write.c). */
int db_write_prepare(void *ctx, struct journal_req *r);
int db_write_apply(void *ctx, struct journal_req **reqs, size_t n);

/* Replay of one journal record at open (src/write.c). */
int db_replay_record(tind_db *db, const char *path, uint64_t offset, const uint8_t *p, size_t n,
                     uint64_t *last_seq);

/* Keyspaces (src/keyspace.c). */
int ks_load_all(tind_db *db);
tind_keyspace *ks_find_id(tind_db *db, uint32_t id); /* live only; caller holds ks_mu or is single-threaded */
void ks_free(tind_keyspace *ks);
/* Marks ks dropped and wakes its waiters (journal apply and replay). */
void ks_mark_dropped(tind_keyspace *ks);
/* Opens (or creates) the keyspace's manifest and builds its first super version. */
int ks_open_tree(tind_keyspace *ks, int create);
/* Moves a dropped keyspace from the live table to the dropped list, removes
 * its OPTIONS file (durably), makes its tables obsolete (each goes with its
 * last reader) and removes its folder once no table is left in it. Caller
 * holds ks_mu (or is single-threaded). Nothing is deleted read-only. */
int ks_retire(tind_db *db, tind_keyspace *ks);
/* Removes what is left of a dropped keyspace's folder: every file but its
 * tables (with_tables: those too; at close, when no reader is left, for
 * tables whose removal failed), then the folder if that emptied it. Leaves
 * it all when OPTIONS is still there, and in read-only handles. */
int ks_remove_dropped_folder(tind_db *db, tind_keyspace *ks, int with_tables);
int db_write_meta(tind_db *db);
int db_read_meta(tind_db *db);
/* After replay: two live keyspaces may not share a name. */
int ks_check_unique(tind_db *db);
/* Rereads the keyspace's OPTIONS file and checks that it decodes to the
 * keyspace's number, name and options; *bytes: its size. Caller holds ks_mu
 * (it is rewritten under it). */
int ks_verify_options(tind_keyspace *ks, uint64_t *bytes);

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

/* Flushes (src/flush.c). */
/* Seals the active memtable of ks (leader only): TIND_OK and *seal_seq, 0 if it was empty.
 * It first fdatasyncs the journal; a failure there has poisoned the journal
 * and must fail the caller's group (every caller returns it from apply). */
int flush_seal(tind_keyspace *ks, uint64_t last_seq, uint64_t *seal_seq);
/* Queues a flush job for ks unless one is queued or running. Caller holds ks->mu. */
void flush_schedule(tind_keyspace *ks);
/* Deletes the journals every keyspace has flushed past and no drop pins. */
void flush_retire_journals(tind_db *db);
/* Backpressure, in two steps, so that the group-commit leader never waits
 * on one keyspace's flush or compaction (which would hold up the writers of
 * every other keyspace queued behind it):
 * - flush_stall: the writer, before it joins the journal (db_write, holding
 *   no lock), waits while too many sealed memtables await their flush or
 *   compaction is past a stop threshold (level 0 at l0_stop_tables for
 *   leveled keyspaces, pending_stop_bytes), and delays the write up to 1 ms
 *   past a slowdown threshold. A threshold stalls only while work that will
 *   relieve it is queued or running (stall_cause in flush.c).
 * - flush_stall_check: the leader, in prepare, checks the same without
 *   waiting; DB_STALLED sends the request back to its writer, which waits
 *   again and requeues. So a request is admitted only while ks is below its
 *   stop thresholds, which bounds the sealed memtables (see flush.c).
 * Both return a failed flush's or compaction's status instead of waiting
 * forever, with *why its message (kept by ks until it is freed); flush_stall
 * returns TIND_INVALID when the database is closing. */
int flush_stall(tind_keyspace *ks, const char **why);
int flush_stall_check(tind_keyspace *ks, const char **why);
/* A prepare status that is not an error: the request was not written; its
 * writer waits for the keyspace's backpressure and writes it again. */
#define DB_STALLED 1
/* Records a failed background job of ks: *err = rc (the first failure stays)
 * and msg = "<what> of keyspace <name> failed: <this thread's message>".
 * Caller holds ks->mu. */
void ks_background_failed(tind_keyspace *ks, int *err, char *msg, size_t cap, int rc, const char *what);
/* After manifest_apply failed with rc (this thread's message): when the
 * failure poisoned the manifest, it poisons the database too, so that every
 * later write gets TIND_POISONED (a journal or manifest failure stops writes
 * until reopen). Caller holds ks->edit_mu. */
void ks_manifest_failed(tind_keyspace *ks, int rc);
/* Leader: seals the keyspace pinning the oldest journal when the journals
 * have outgrown journal_total_max_bytes. Returns a failed seal's status (a
 * failed journal sync, which poisoned the journal): the group fails. */
int flush_check_journal_size(tind_db *db, uint64_t last_seq);
/* How ks writes its tables at `level` (reads the options under mu). */
struct table_options;
void ks_table_options(tind_keyspace *ks, unsigned level, struct table_options *to);

/* Compactions (src/compact.c). */
/* Queues a compaction job for ks when one may run. Caller holds ks->mu. */
void compact_schedule(tind_keyspace *ks);

#endif
