/* One keyspace's LSM tree: its memtables (the active one and the sealed ones
 * waiting for their flush), its table version (kept by a manifest in the
 * tree's folder), the flush and compaction jobs it runs on the worker pool,
 * the write stall that holds writers back while those jobs are behind, point
 * reads and the sources of iterators.
 *
 * The tree sits between the database layer (src/) and the modules below
 * (lsm/, compaction/). It knows nothing of the journal, transactions,
 * keyspace names or the public handles: what it needs from above comes
 * through the hooks of its environment (src/tree/README.md). */
#ifndef TIND_SRC_TREE_TREE_H
#define TIND_SRC_TREE_TREE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lsm/iter.h"
#include "lsm/memtable.h"
#include "lsm/table_cache.h"
#include "lsm/version.h"
#include "src/util/buf.h"
#include "src/util/mutex.h"
#include "src/util/workers.h"
#include "tind.h"

/* What a read needs of a tree, taken together: the active memtable, the
 * sealed ones (newest first) and the table version. Immutable; reference
 * counted; replaced whole under the tree's mu. Holding one keeps every
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
/* Takes a reference on the tree's super version: TIND_OK, or TIND_INVALID
 * once the tree is stopped (src/tree/super_version.c). */
struct tree;
int sv_acquire(struct tree *t, struct super_version **sv);

/* What the tree asks of the layer above. Each hook gets ctx. */
struct tree_hooks {
    void *ctx;
    /* Makes every write applied so far durable in the log, before tree_seal
     * seals the memtable holding them: the table a flush makes durable may
     * hold one part of a write whose other parts are durable only in the
     * log. Nonzero fails the seal (with this thread's message). */
    int (*sync_log)(void *ctx);
    /* A flush made a sealed memtable durable in a table: what the log kept
     * for it may go. Called with no lock of the tree held, before the
     * flush's waiters wake. */
    void (*flushed)(void *ctx);
    /* A manifest write or sync failed with rc (this thread's message) and
     * the manifest refuses further edits: writes must stop. Called holding
     * the tree's edit_mu. */
    void (*manifest_failed)(void *ctx, int rc);
    /* The newest published sequence number. */
    uint64_t (*last_seq)(void *ctx);
    /* The open snapshots' sequence numbers, ascending, in a malloc'd array
     * (NULL when none): the versions a compaction must keep. */
    int (*snapshots)(void *ctx, uint64_t **seqs, size_t *n);
};

/* Where a tree lives and what it shares with the other trees. */
struct tree_env {
    const char *dir;      /* its folder: MANIFEST and tables (copied) */
    const char *label;    /* how messages name the tree, e.g. "keyspace a" (copied) */
    uint32_t space;       /* its tables' name space in the table cache */
    int read_only;        /* nothing is written: no flush, no compaction */
    workers *pool;
    table_cache *tables;
    _Atomic int *closing; /* set at close: merges stop at their next entry, stalls end */
    struct tree_hooks hooks;
};

/* A sealed memtable waiting for its flush. seal_seq: the last sequence
 * number applied when it was sealed; once it is in a table, every write of
 * the tree up to seal_seq is. */
struct sealed_mem {
    memtable *mem;
    uint64_t seal_seq;
};

struct tree {
    struct tree_env env;  /* dir and label point into the tree's own copies */
    char *dir, *label;
    manifest *man;

    /* mu guards opts, sv, sealed, flushing, flush_error, the compaction
     * state and the counters, and stopped's transition. The active memtable
     * (sv->mem) is written by the log's group-commit leader alone; sealing
     * swaps it under mu from the leader. flush_cond is broadcast when a flush
     * or compaction ends (or fails), when the tree is stopped and when the
     * database closes: stalled writers and flush waiters wait on it. */
    struct tmutex mu;
    struct tcond flush_cond;
    tind_keyspace_options opts GUARDED_BY(mu); /* the tree's configuration; the write path reads the atomics below */
    _Atomic uint64_t memtable_bytes;
    _Atomic uint32_t max_sealed;
    struct super_version *sv GUARDED_BY(mu);
    memtable *active;          /* == sv->mem: the leader's alone; changed by tree_seal under mu */
    struct sealed_mem *sealed PT_GUARDED_BY(mu) GUARDED_BY(mu); /* oldest first */
    size_t nsealed GUARDED_BY(mu), capsealed GUARDED_BY(mu);
    int flushing GUARDED_BY(mu);    /* a flush job is queued or running */
    int flush_error GUARDED_BY(mu); /* the status of a failed flush; stops further flushes */
    char flush_errmsg[768];         /* its message; written once, before flush_error is set */
    uint64_t flushes GUARDED_BY(mu);
    uint64_t memtable_peak GUARDED_BY(mu); /* bytes of the memtables at their fullest (measured at seals) */
    uint64_t flushed_seq GUARDED_BY(mu); /* the manifest's */
    uint64_t settled_seq GUARDED_BY(mu); /* flushed_seq once the flushed hook ran for it */
    _Atomic int stopped;       /* tree_stop: no more seals, flushes or compactions */

    /* edit_mu serializes the tree's manifest edits (flushes and
     * compactions) together with the super version switch that follows each;
     * it is held across the manifest's I/O, and taken before mu. */
    struct tmutex edit_mu ACQUIRED_BEFORE(mu);
    /* Compaction state, guarded by mu. */
    uint64_t *busy PT_GUARDED_BY(mu) GUARDED_BY(mu); /* numbers of the tables being compacted */
    size_t nbusy GUARDED_BY(mu), capbusy GUARDED_BY(mu);
    unsigned compacting GUARDED_BY(mu); /* compaction jobs queued or running */
    int major GUARDED_BY(mu);           /* tree_compact_all holds the tree: no new picks */
    int compact_error GUARDED_BY(mu);   /* a failed compaction stops further ones */
    char compact_errmsg[768];           /* its message; written once, before compact_error is set */
    uint64_t compactions GUARDED_BY(mu), compact_read GUARDED_BY(mu), compact_written GUARDED_BY(mu),
        compact_ns GUARDED_BY(mu);
    uint64_t level_compactions[LSM_LEVELS] GUARDED_BY(mu), level_read[LSM_LEVELS] GUARDED_BY(mu),
        level_written[LSM_LEVELS] GUARDED_BY(mu);
    uint64_t flushed_bytes GUARDED_BY(mu);
    uint64_t stalls GUARDED_BY(mu), slowdowns GUARDED_BY(mu), stall_ns GUARDED_BY(mu);
    uint64_t pending_bytes GUARDED_BY(mu); /* the strategy's pending bytes in sv's version */
    /* ver_gen counts the table versions sv has had (bumped by
     * sv_install when the version changes); idle_gen is ver_gen + 1 once a
     * background compaction found nothing to pick in that version (0: not
     * known), so that a stall never waits for work the strategy will not do. */
    uint64_t ver_gen GUARDED_BY(mu), idle_gen GUARDED_BY(mu);
};

/* ---- life (src/tree/tree.c) ------------------------------------------------------------ */

/* Opens the tree in env->dir (creating its manifest when `create`) under
 * options o, with an empty active memtable. TIND_CORRUPTION when the
 * MANIFEST is gone while tables remain (the version is lost). */
int tree_open(const struct tree_env *env, const tind_keyspace_options *o, int create, struct tree **out);
/* Frees the tree; no job of it may run (tree_quiesce). NULL is a no-op. */
void tree_free(struct tree *t);
/* Stops the tree: no seal, flush or compaction starts any more, running
 * merges stop at their next entry, and stalled writers and flush waiters
 * wake. A stopped tree stalls nothing: tree_stall returns TIND_OK (or
 * TIND_INVALID when the database is closing) and the layer above refuses
 * the write (src/write.c's write_prepare, for a dropped keyspace); a
 * tree_flush_wait whose memtables were not flushed returns TIND_INVALID (or
 * the flush's failure), and tree_compact_all TIND_INVALID. Thread-safe. */
void tree_stop(struct tree *t);
/* Wakes the writers stalled on the tree (the database is closing). */
void tree_wake(struct tree *t);
/* After tree_stop: waits for its running flush and compactions to end and
 * gives up its super version (readers keep theirs). */
void tree_quiesce(struct tree *t);
/* After tree_quiesce: closes the manifest; with `obsolete`, every table of
 * the version goes with the last reference to it (a reader's). */
void tree_close(struct tree *t, int obsolete);

/* Copies the options; sets them (the caller checked them). Thread-safe. */
void tree_options(struct tree *t, tind_keyspace_options *o);
void tree_set_options(struct tree *t, const tind_keyspace_options *o);

/* The manifest's flushed sequence number (single-threaded, at open). */
uint64_t tree_flushed_seq(const struct tree *t);

/* ---- writes (the log's group-commit leader alone) --------------------------------------- */

/* How tree_add inserts. */
enum {
    TREE_ADD_LEADER = 0,     /* the leader alone */
    TREE_ADD_REPLAY = 1,     /* recovery: a write at or below the flushed sequence number is in a
                              * table already and is skipped */
    TREE_ADD_CONCURRENT = 2, /* a member of a group applied in parallel, beside the others: the
                              * active memtable stays put until the group's apply_finish */
};

/* Adds one write to the active memtable, as `how` says (TREE_ADD_*). */
int tree_add(struct tree *t, uint64_t seq, unsigned kind, const uint8_t *key, size_t klen, const uint8_t *val,
             size_t vlen, int how);
/* 1 when the active memtable has reached memtable_bytes. */
int tree_full(struct tree *t);
/* Seals the active memtable and queues its flush: TIND_OK and *seal_seq =
 * last_seq, or 0 when it was empty or the tree is stopped (nothing sealed).
 * The sync_log hook runs first; its failure fails the seal. */
int tree_seal(struct tree *t, uint64_t last_seq, uint64_t *seal_seq);
/* 1 when the active memtable holds a write at or below seq and nothing is
 * sealed already (a seal would free the log up to seq). */
int tree_holds_log_up_to(struct tree *t, uint64_t seq);
/* The oldest sequence number the tree holds only in memory (UINT64_MAX: none). */
uint64_t tree_oldest_unflushed(struct tree *t);

/* ---- backpressure (src/tree/stall.c) ---------------------------------------------------- */

/* A stall check's status that is not an error: the write must wait. */
#define TREE_STALLED 1
/* The writer, before it joins the log (holding no lock): waits while too
 * many sealed memtables await their flush or compaction is past a stop
 * threshold, and delays the write up to 1 ms past a slowdown threshold. A
 * threshold stalls only while work that will relieve it is queued or
 * running. Returns a failed flush's or compaction's status instead of
 * waiting forever, with *why its message (kept by the tree until it is
 * freed); TIND_INVALID when the database is closing. */
int tree_stall(struct tree *t, const char **why);
/* The leader: the same check without waiting; TREE_STALLED when the write
 * would have to wait. */
int tree_stall_check(struct tree *t, const char **why);

/* ---- flushes (src/tree/flush.c) ---------------------------------------------------------- */

/* Waits until every memtable sealed up to seal_seq (0: the newest sealed
 * one, if any) is flushed and its flushed hook ran. The flush's failure, or
 * TIND_INVALID once the tree is stopped. */
int tree_flush_wait(struct tree *t, uint64_t seal_seq);

/* ---- compactions (src/tree/compact.c) --------------------------------------------------- */

/* The major compaction, in the caller's thread: takes the tree (no new
 * picks, running jobs finish), drops what is due (FIFO), merges everything
 * the strategy's compact-all picks, and gives the tree back. TIND_INVALID
 * when the tree is stopped meanwhile. */
int tree_compact_all(struct tree *t);

/* ---- reads (src/tree/read.c) ------------------------------------------------------------- */

/* Looks key up in sv as of seq: the active memtable, the sealed ones newest
 * first, then the tables; the first version found wins. *found, and when
 * found *kind and the value: in a table, copied into tv (and *val points at
 * it); in a memtable, *val points into it (valid while sv is held). */
int tree_get(struct tree *t, struct super_version *sv, uint64_t seq, const uint8_t *key, size_t klen, int *found,
             unsigned *kind, const uint8_t **val, size_t *vlen, buf *tv);
/* What a pinned read holds: the memtable the value lies in (referenced), or
 * the table block (struct table_pin); all zero: nothing. */
struct tree_pin {
    memtable *mem;
    struct table_pin block;
};
/* tree_get without the copy: when found, *val points into what *pin holds,
 * valid after sv is released, until tree_pin_release. */
int tree_get_pinned(struct tree *t, struct super_version *sv, uint64_t seq, const uint8_t *key, size_t klen,
                    int *found, unsigned *kind, const uint8_t **val, size_t *vlen, struct tree_pin *pin);
void tree_pin_release(struct tree_pin *pin);
/* The merging iterator over every source of sv, newest first: the active
 * memtable, the sealed ones, then the tables level by level (level 0 newest
 * first) that overlap [lo, hi) (a NULL bound is open). */
int tree_sources(struct tree *t, struct super_version *sv, const buf *lo, const buf *hi, iiter **out);

/* ---- inspection -------------------------------------------------------------------------- */

/* Fills what the tree knows of st: memtables and tables by level (of sv,
 * which the caller holds), flushes, compactions, stalls (src/tree/tree.c). */
void tree_stats(struct tree *t, struct super_version *sv, struct tind_keyspace_stats *st);
/* Compaction jobs queued or running (a major one counts one), and those
 * completed. */
void tree_compaction_counts(struct tree *t, uint64_t *active, uint64_t *completed);
/* Checks every manifest record (manifest_verify) and takes the version, both
 * under edit_mu so that no edit lands in between. */
int tree_verify_manifest(struct tree *t, struct manifest_verify_stats *ms, struct version **ver);

#endif
