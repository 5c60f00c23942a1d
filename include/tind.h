/*
 * tind — an embeddable LSM-tree key-value engine.
 *
 * This header is the whole public API. Every handle is opaque. Every function
 * that can fail returns an int status: TIND_OK (0) or one of the negative
 * TIND_* codes below; tind_strerror() names a code and tind_last_error()
 * gives the detailed message (file, offset, cause) of the last failure in the
 * calling thread.
 *
 * Keys are byte strings of 1 to 65,535 bytes, ordered by memcmp with the
 * shorter key first on a tie. Values are 0 to 2^32-1 bytes. Bad arguments
 * (NULL handles, empty or oversized keys, bad names) return TIND_INVALID.
 *
 * Threads: a tind_db and its keyspaces may be used from any number of threads
 * at once unless a function says otherwise. A tind_batch, a tind_iter and a
 * tind_snapshot are each used by one thread at a time (a snapshot may be read
 * from several threads at once, but not closed while in use); so is a tind_tx.
 */
#ifndef TIND_H
#define TIND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TIND_API __attribute__((visibility("default")))
#else
#define TIND_API
#endif

/* The version of this header; tind_version() reports the library's. */
#define TIND_VERSION_MAJOR 0
#define TIND_VERSION_MINOR 1
#define TIND_VERSION_PATCH 0
#define TIND_VERSION_NUMBER (TIND_VERSION_MAJOR * 10000 + TIND_VERSION_MINOR * 100 + TIND_VERSION_PATCH)

/* Status codes. */
#define TIND_OK          0
#define TIND_NOT_FOUND  (-1)  /* the key has no live value */
#define TIND_CORRUPTION (-2)  /* a checksum or format check failed; the message names file and offset */
#define TIND_IO_ERROR   (-3)  /* the operating system reported an I/O error */
#define TIND_INVALID    (-4)  /* a bad argument, or a handle used wrongly */
#define TIND_CONFLICT   (-5)  /* a transaction lost to a concurrent one */
#define TIND_BUSY       (-6)  /* the database is locked by another opener, or still in use */
#define TIND_NO_SPACE   (-7)  /* the disk is full */
#define TIND_NO_MEMORY  (-8)  /* an allocation failed */
#define TIND_POISONED   (-9)  /* an earlier journal or manifest failure stopped writes until reopen */

/* Durability of a write, from weakest to strongest. Stored in keyspace options files:
 * the values never change. */
#define TIND_DURABILITY_DEFAULT   (-1) /* keyspace option only: use the database's */
#define TIND_DURABILITY_BUFFERED    0  /* written to the OS before returning: survives a process crash */
#define TIND_DURABILITY_SYNC_DATA   1  /* and fdatasync'd: survives power loss */
#define TIND_DURABILITY_SYNC_ALL    2  /* and fsync'd, metadata included: survives power loss */

/* Block compression, chosen per level in tind_keyspace_options. Stored in tables and
 * keyspace options files: the values never change. */
#define TIND_COMPRESSION_NONE 0
#define TIND_COMPRESSION_LZ4  1
#define TIND_COMPRESSION_ZSTD 2

/* Compaction strategies, chosen per keyspace. Stored in keyspace options files: the
 * values never change. */
#define TIND_COMPACTION_LEVELED 0 /* levels each level_ratio times the one above: low space and read cost */
#define TIND_COMPACTION_TIERED  1 /* runs of similar size merge: lower write cost, more reads and space */
#define TIND_COMPACTION_FIFO    2 /* oldest tables dropped whole past a size or age: logs, metrics, caches */

/* Levels of a keyspace's LSM tree (0: flushed memtables). */
#define TIND_LEVELS 7

#define TIND_MAX_KEY_BYTES 65535u
#define TIND_MAX_VALUE_BYTES 4294967295u
#define TIND_MAX_KEYSPACE_NAME 255u

typedef struct tind_db tind_db;
typedef struct tind_keyspace tind_keyspace;
typedef struct tind_batch tind_batch;
typedef struct tind_snapshot tind_snapshot;
typedef struct tind_iter tind_iter;
typedef struct tind_tx tind_tx;

/* Returns the library's version as "MAJOR.MINOR.PATCH"; a static string. Thread-safe. */
TIND_API const char *tind_version(void);

/* Returns a static, human-readable name for a status code (unknown codes
 * included). Thread-safe. */
TIND_API const char *tind_strerror(int rc);

/* Returns the detailed message of this thread's last tind call when it failed
 * (each call clears it first; "" after a success): for a corruption, the file
 * and the offset. The string is owned by the library and valid until this
 * thread's next tind call. */
TIND_API const char *tind_last_error(void);

/* Database options. Fill with tind_options_init(), then adjust. */
typedef struct tind_options {
    int create_if_missing;      /* create the directory and database if absent; default 1 */
    int error_if_exists;        /* fail with TIND_INVALID if a database exists; default 0 */
    int durability;             /* durability of tind_put/tind_delete (a keyspace may override);
                                   default TIND_DURABILITY_BUFFERED */
    uint64_t journal_max_bytes; /* a journal file past this size is closed (synced) and a new
                                   one started; default 64 MiB, at least 64 KiB */
    uint64_t journal_total_max_bytes; /* past this many bytes of journals, each keyspace whose
                                   memtable holds writes of the oldest one (and has no flush on
                                   its way) is flushed, so that an idle keyspace never pins old
                                   journals; default 512 MiB, at least journal_max_bytes */
    uint64_t cache_bytes;       /* block cache shared by every keyspace; default 64 MiB; 0: no cache */
    uint32_t max_open_tables;   /* table files kept open; default 1000, at least 16 */
    uint32_t workers;           /* background threads that run flushes and compactions, flushes
                                   first; with more than one, a keyspace runs at most workers - 1
                                   compactions at once, leaving a thread for flushes. Default 0:
                                   min(cores, 4); at most 64; a read-only handle starts one */
    int read_only;              /* open for reading only; default 0. Nothing in the directory is
                                   written: the journals are replayed into memory (a torn tail is
                                   ignored, not cut off), no journal is started, nothing is flushed,
                                   compacted or synced, and create_if_missing is ignored (a missing
                                   database is TIND_NOT_FOUND). Any number of read-only handles may
                                   be open at once, from any processes; a read-write open and a
                                   read-only one exclude each other (TIND_BUSY). Writes, tind_persist,
                                   creating a keyspace or changing its options, drops, flushes,
                                   compactions, transactions' writes and tind_wtx_begin return
                                   TIND_INVALID; transactions that only read work. */
    int parallel_memtable_writes; /* 1: when writes from several threads commit as one group
                                   (group commit), each writer inserts its own batch into the
                                   memtables while the others insert theirs, instead of the
                                   group's leader inserting them all; groups of fewer than 8
                                   operations are applied by the leader alone. Default 1; 0 or 1 */
} tind_options;

/* Fills *o with the defaults documented in tind_options. Thread-safe. */
TIND_API void tind_options_init(tind_options *o);

/* Keyspace options. Fill with tind_keyspace_options_init(), then adjust.
 * They are stored with the keyspace and persist across reopens. */
typedef struct tind_keyspace_options {
    int durability;             /* durability of tind_put/tind_delete on this keyspace;
                                   default TIND_DURABILITY_DEFAULT (the database's) */
    uint64_t memtable_bytes;    /* a memtable past this size is sealed and flushed to a
                                   table while writes go on into a new one; default 64 MiB,
                                   at least 64 KiB */
    uint32_t max_sealed_memtables; /* writers wait while this many sealed memtables await
                                   their flush; default 4, at least 1 */
    uint32_t block_size;        /* target size of a table's data blocks before compression;
                                   default 4096, 256 to 1 MiB */
    uint32_t restart_interval;  /* keys between full keys in a block; default 16, 1 to 1024 */
    uint32_t bloom_bits_per_key; /* bloom filter bits per key; default 10; 0: no filter; at most 32 */
    int compression[TIND_LEVELS]; /* TIND_COMPRESSION_* per level; default LZ4 on every
                                   level (ZSTD on the last saves space and costs reads) */
    int zstd_level;             /* level of ZSTD compression; default 3, 1 to 19 */
    int compaction;             /* TIND_COMPACTION_*; default LEVELED */
    uint32_t l0_trigger;        /* leveled: level-0 tables that start a compaction; default 4, 1 to 64;
                                   FIFO: small level-0 tables that merge into one */
    uint32_t level_ratio;       /* leveled: size ratio of adjacent levels; default 10, 2 to 100 */
    uint64_t table_target_bytes; /* compaction outputs are cut near this size; default 64 MiB,
                                   at least 64 KiB */
    uint32_t tier_width;        /* tiered: runs of similar size that merge together; default 4, 2 to 64 */
    uint64_t fifo_max_bytes;    /* FIFO: oldest tables dropped past this total; default 0: no limit */
    uint64_t fifo_ttl_seconds;  /* FIFO: tables written longer ago than this (a compaction's output
                                   counts from its newest input's) are dropped; default 0: none */
    uint32_t l0_slowdown_tables; /* leveled: each write waits up to 1 ms while level 0 holds this
                                   many tables; default 20 */
    uint32_t l0_stop_tables;    /* leveled: writes wait until compaction brings level 0 below this;
                                   default 36, at least l0_slowdown_tables and l0_trigger. A
                                   writer waits before it joins the journal: writes to other
                                   keyspaces go on. Stalls wait only while a compaction that can
                                   relieve them is queued or running */
    uint64_t pending_slowdown_bytes; /* each write waits up to 1 ms while compaction is this far
                                   behind (bytes the strategy has yet to compact); default 64 GiB */
    uint64_t pending_stop_bytes; /* writes wait until compaction is less than this far behind;
                                   default 256 GiB, at least pending_slowdown_bytes */
} tind_keyspace_options;

/* Fills *o with the defaults documented in tind_keyspace_options. Thread-safe. */
TIND_API void tind_keyspace_options_init(tind_keyspace_options *o);

/* Opens (or, with create_if_missing, creates) the database in directory
 * `path`. NULL options mean the defaults. On success *db is a handle to
 * release with tind_close(). A database is opened by one handle at a time:
 * a second open of the same directory, from this process or another, returns
 * TIND_BUSY. Opening replays the journals; a torn tail of the newest journal
 * is cut off, any other damage returns TIND_CORRUPTION naming file and offset.
 * With o->read_only, several handles may share the directory and nothing in
 * it changes (see tind_options.read_only). Thread-safe. */
TIND_API int tind_open(const char *path, const tind_options *o, tind_db **db);

/* Closes the database and frees *db and every keyspace handle of it. Returns
 * TIND_BUSY (and closes nothing) while snapshots or iterators of it are open.
 * Must not run concurrently with any other call on the same database. */
TIND_API int tind_close(tind_db *db);

/* Makes every write acknowledged so far as durable as `durability` says:
 * BUFFERED hands it to the OS (already true of every acknowledged write),
 * SYNC_DATA fdatasyncs and SYNC_ALL fsyncs the journal. Thread-safe. */
TIND_API int tind_persist(tind_db *db, int durability);

/* Opens keyspace `name` (1-255 bytes of [A-Za-z0-9_.-]), creating it if
 * absent. NULL options open an existing keyspace with its stored options and
 * create a new one with the defaults; non-NULL options are stored (replacing
 * what was stored). *ks is owned by the database: valid until tind_close() or
 * until the keyspace is dropped; opening the same name again returns the same
 * handle. Thread-safe. */
TIND_API int tind_keyspace_open(tind_db *db, const char *name, const tind_keyspace_options *o,
                                tind_keyspace **ks);

/* Fills *o with the options keyspace ks was opened with (as stored with it).
 * Thread-safe. */
TIND_API int tind_keyspace_get_options(tind_keyspace *ks, tind_keyspace_options *o);

/* Drops keyspace `name` and all its data; the drop is synced to the journal
 * before this returns, so it stays dropped after a crash. A drop is a write:
 * it waits while another thread holds a single-writer transaction of db (the
 * thread holding one drops under it). It does not wait for the keyspace's
 * compactions to finish: running merges stop at their next entry. Handles to
 * it then return TIND_INVALID; iterators already open on it keep reading what
 * they saw, and its files go as the last of them closes. TIND_NOT_FOUND if no
 * such keyspace. Thread-safe. */
TIND_API int tind_keyspace_drop(tind_db *db, const char *name);

/* Lists the keyspaces' names, sorted. *names is one allocation holding the
 * array and the strings; release it with a single tind_free(). Thread-safe. */
TIND_API int tind_keyspace_list(tind_db *db, char ***names, size_t *count);

/* Writes key -> value with the keyspace's durability. Thread-safe. */
TIND_API int tind_put(tind_keyspace *ks, const void *key, size_t klen, const void *val, size_t vlen);

/* Deletes key (writes a tombstone; deleting an absent key is TIND_OK). Thread-safe. */
TIND_API int tind_delete(tind_keyspace *ks, const void *key, size_t klen);

/* Reads the latest value of key. On TIND_OK, *val is a copy the caller owns
 * and frees with tind_free() (never NULL, even for an empty value) and *vlen
 * its length. TIND_NOT_FOUND if absent or deleted. Thread-safe. */
TIND_API int tind_get(tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen);

/* A value read in place by tind_get_pinned(): data (never NULL after a
 * successful read, even for an empty value) and len stay valid until
 * tind_pinned_release(). The block or memtable the value lies in stays in
 * memory meanwhile (a pinned block cannot be evicted from the cache), so
 * release it soon; tind_close() is TIND_BUSY while one is held. The other
 * fields are the library's. */
typedef struct tind_pinned {
    const void *data;
    size_t len;
    void *internal_[6];
} tind_pinned;

/* tind_get() without the copy: on TIND_OK, out->data and out->len are the
 * value where it lies (a memtable or a cached block), valid until
 * tind_pinned_release(out). On any other result out holds nothing (its
 * release is a no-op). out may be reused after a release. Thread-safe. */
TIND_API int tind_get_pinned(tind_keyspace *ks, const void *key, size_t klen, tind_pinned *out);
/* Releases what a tind_get_pinned() read holds and clears it. NULL, or a
 * cleared or failed one, is a no-op. */
TIND_API void tind_pinned_release(tind_pinned *p);

/* Frees memory returned by tind (values, keyspace lists). NULL is a no-op. */
TIND_API void tind_free(void *p);

/* Creates an empty write batch; free it with tind_batch_free(). */
TIND_API int tind_batch_new(tind_batch **b);

/* Adds a put to the batch; the key and value are copied. */
TIND_API int tind_batch_put(tind_batch *b, tind_keyspace *ks, const void *key, size_t klen,
                            const void *val, size_t vlen);

/* Adds a delete to the batch; the key is copied. */
TIND_API int tind_batch_delete(tind_batch *b, tind_keyspace *ks, const void *key, size_t klen);

/* Number of operations in the batch (0 for NULL). */
TIND_API size_t tind_batch_count(const tind_batch *b);

/* Empties the batch so that it can be filled again. */
TIND_API void tind_batch_clear(tind_batch *b);

/* Commits every operation of the batch atomically, across keyspaces: they
 * become visible together, and after a crash either all or none of them are
 * present. Later operations on the same key win. The batch is not consumed:
 * free or clear it afterwards. An empty batch commits as TIND_OK. Thread-safe
 * with respect to other writers; the batch itself must not change meanwhile. */
TIND_API int tind_batch_commit(tind_db *db, tind_batch *b, int durability);

/* Frees the batch. NULL is a no-op. */
TIND_API void tind_batch_free(tind_batch *b);

/* Opens a snapshot of the whole database as of now: reads through it see
 * exactly the writes committed before it. Close with tind_snapshot_close()
 * before tind_close(). Thread-safe. */
TIND_API int tind_snapshot_open(tind_db *db, tind_snapshot **s);

/* Like tind_get(), reading as of the snapshot. */
TIND_API int tind_snapshot_get(tind_snapshot *s, tind_keyspace *ks, const void *key, size_t klen,
                               void **val, size_t *vlen);

/* Returns the snapshot's sequence number: the number of the last write it sees. */
TIND_API uint64_t tind_snapshot_sequence(const tind_snapshot *s);

/* Closes the snapshot. NULL is a no-op. */
TIND_API void tind_snapshot_close(tind_snapshot *s);

/* Iteration bounds: keys k with lower <= k < upper. A NULL pointer means no
 * bound on that side. */
typedef struct tind_bounds {
    const void *lower; size_t lower_len; /* inclusive; NULL: none */
    const void *upper; size_t upper_len; /* exclusive; NULL: none */
} tind_bounds;

/* Opens an iterator over the keyspace's live keys within the bounds (NULL:
 * all keys), as of the snapshot (NULL: as of now; the iterator then sees a
 * fixed view taken at open). The bounds are copied. The iterator starts
 * unpositioned: call a seek. Close it with tind_iter_close() before
 * tind_close(). One thread at a time. */
TIND_API int tind_iter_open(tind_keyspace *ks, tind_snapshot *s, const tind_bounds *b, tind_iter **it);

/* Like tind_iter_open() over the keys that start with prefix (len >= 1). */
TIND_API int tind_iter_open_prefix(tind_keyspace *ks, tind_snapshot *s, const void *prefix, size_t len,
                                   tind_iter **it);

/* Positions at the first / last key within the bounds. */
TIND_API void tind_iter_seek_first(tind_iter *it);
TIND_API void tind_iter_seek_last(tind_iter *it);
/* Positions at the first key >= key (within the bounds). */
TIND_API void tind_iter_seek(tind_iter *it, const void *key, size_t klen);
/* Positions at the last key <= key (within the bounds). */
TIND_API void tind_iter_seek_for_prev(tind_iter *it, const void *key, size_t klen);
/* Returns 1 when positioned at a key, 0 when exhausted, unpositioned or failed. */
TIND_API int tind_iter_valid(const tind_iter *it);
/* Moves to the next / previous key; no-ops unless valid. */
TIND_API void tind_iter_next(tind_iter *it);
TIND_API void tind_iter_prev(tind_iter *it);
/* The current key and value; owned by the iterator and valid until it next
 * moves or closes. NULL (and *len 0) unless valid. len may be NULL. */
TIND_API const void *tind_iter_key(const tind_iter *it, size_t *len);
TIND_API const void *tind_iter_value(const tind_iter *it, size_t *len);
/* TIND_OK, or the error that ended the iteration (TIND_INVALID for a seek
 * with a bad key). */
TIND_API int tind_iter_status(const tind_iter *it);
/* Closes the iterator. NULL is a no-op. */
TIND_API void tind_iter_close(tind_iter *it);

/* ---- transactions ----------------------------------------------------------------------------
 *
 * An optimistic transaction reads from a snapshot taken at begin, overlaid
 * with its own writes, which it buffers until commit; it may span keyspaces.
 * Commit is serializable: it fails with TIND_CONFLICT when a write committed
 * after the transaction's snapshot (by another transaction, a batch or a
 * plain put or delete) touched a key it read or a key inside a range one of
 * its iterators covered, phantoms included. Blind writes do not conflict; a
 * transaction that wrote nothing commits without checks. A commit is one
 * atomic journal record, as durable as tind_tx_set_durability says (default:
 * the database's durability).
 *
 * A single-writer transaction (tind_wtx_begin) holds the database's write
 * gate from begin to end: other writers (plain writes, batches, commits of
 * other transactions, keyspace drops) wait meanwhile, so it never conflicts; readers and
 * optimistic transactions that only read go on. While it is open, the thread
 * that holds it gets TIND_BUSY from its other writes to the database.
 *
 * A transaction is used by one thread at a time. It ends with
 * tind_tx_commit() or tind_tx_abort(), which free it; its open iterators stay
 * valid (close them as usual) but no longer track reads. Open transactions
 * count as open snapshots for tind_close(). */

/* Begins an optimistic transaction. Thread-safe. On a poisoned database it
 * still begins and reads (from what was published before the failure); a
 * commit with writes returns TIND_POISONED. */
TIND_API int tind_tx_begin(tind_db *db, tind_tx **tx);
/* Begins a single-writer transaction: waits until no other writer holds the
 * gate. TIND_BUSY if this thread holds one of db already; TIND_POISONED on a
 * poisoned database. */
TIND_API int tind_wtx_begin(tind_db *db, tind_tx **tx);
/* Durability of the commit (TIND_DURABILITY_*). */
TIND_API int tind_tx_set_durability(tind_tx *tx, int durability);
/* The sequence number of the transaction's snapshot. */
TIND_API uint64_t tind_tx_sequence(const tind_tx *tx);

/* Reads key: the transaction's own newest write of it, else its snapshot.
 * The read joins the read set checked at commit. Like tind_get otherwise. */
TIND_API int tind_tx_get(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen);
/* Like tind_tx_get() without joining the read set: a later write of the key
 * by others does not fail the commit. */
TIND_API int tind_tx_get_untracked(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen, void **val,
                                   size_t *vlen);
/* Like tind_tx_get(), and the key counts as written by this transaction when
 * it commits: any open transaction that read it then fails its commit, as
 * this one fails if another wrote it first. (A transaction that wrote
 * nothing commits without checks and records nothing.) */
TIND_API int tind_tx_get_for_update(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen, void **val,
                                    size_t *vlen);

/* Buffer a write of key -> value / a deletion of key. */
TIND_API int tind_tx_put(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen, const void *val,
                         size_t vlen);
TIND_API int tind_tx_delete(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen);

/* An iterator over the keyspace as the transaction sees it: its snapshot
 * merged with its writes made before the open, within the bounds (NULL: all
 * keys). The keys it passes over, and the gaps between them, join the read
 * set: a key another writer inserts into the range it walked fails the
 * commit. Used like any tind_iter. */
TIND_API int tind_tx_iter_open(tind_tx *tx, tind_keyspace *ks, const tind_bounds *b, tind_iter **it);

/* Marks a savepoint (they nest). tind_tx_rollback_to() undoes every write
 * (and read for update's claim on its key) since the newest savepoint and
 * removes it; TIND_NOT_FOUND when there is none. Reads and iterated ranges
 * stay checked at commit, those since the savepoint included: what the
 * transaction saw may decide what it writes after the rollback. Iterators
 * open at the rollback keep showing the writes they opened with. */
TIND_API int tind_tx_savepoint(tind_tx *tx);
TIND_API int tind_tx_rollback_to(tind_tx *tx);

/* Commits and frees the transaction: TIND_OK, TIND_CONFLICT when it lost to
 * a write that committed after its snapshot (nothing is written; retry with
 * a new transaction), or the write's error. */
TIND_API int tind_tx_commit(tind_tx *tx);
/* Discards the transaction's writes and frees it. NULL is a no-op. */
TIND_API void tind_tx_abort(tind_tx *tx);

/* Seals the keyspace's memtable and waits until it, and every memtable sealed
 * before it, is written to a table and recorded in the keyspace's manifest,
 * and the journals no keyspace needs any more are deleted. The journal is
 * fdatasynced through the sealed writes first. An empty memtable is not
 * sealed (the call still waits for the memtables sealed before it). It waits
 * neither for a single-writer transaction nor for the write stall. Returns
 * TIND_OK, the error of a failed flush (the data stays in memory and in the
 * journal), or TIND_INVALID when the keyspace is dropped meanwhile.
 * Thread-safe. */
TIND_API int tind_keyspace_flush(tind_keyspace *ks);

/* Compacts the whole keyspace in the calling thread: flushes its memtable
 * (tind_keyspace_flush), then merges every table into one sorted run
 * (leveled: the last level; tiered: one run; FIFO: due drops first, then
 * level 0 into one table), dropping overwritten versions and tombstones that
 * no open snapshot needs. The keyspace's background compactions pause
 * meanwhile (running ones finish first), and two calls on one keyspace take
 * turns. Blocks until done; writers and readers go on meanwhile. Returns the
 * error of an earlier failed background compaction instead of compacting, and
 * TIND_INVALID when the keyspace is dropped meanwhile. Thread-safe. */
TIND_API int tind_keyspace_compact(tind_keyspace *ks);

/* Statistics of one keyspace, filled by tind_keyspace_stats(). (A struct tag,
 * not a typedef: C gives the type and the function separate name spaces.) */
struct tind_keyspace_stats {
    uint64_t id;                 /* the keyspace's number, never reused */
    uint64_t memtable_bytes;     /* bytes its memtables' entries take (active and sealed) */
    uint64_t memtable_entries;   /* entries (puts and tombstones, all versions) in them */
    uint64_t sealed_memtables;   /* sealed memtables awaiting their flush */
    uint64_t memtable_peak_bytes; /* the most its memtables held at once since open, as measured
                                  * at each seal (the full memtable and those awaiting their flush) */
    int durability;              /* the durability tind_put/tind_delete use on it */
    uint64_t tables[TIND_LEVELS];      /* table files per level */
    uint64_t table_bytes[TIND_LEVELS]; /* their bytes per level */
    uint64_t flushes;            /* memtables flushed since open */
    uint64_t compactions;        /* compactions (merges, moves, drops) completed since open */
    uint64_t compaction_bytes_read, compaction_bytes_written;
    uint64_t compaction_micros;  /* time spent merging */
    uint64_t level_compactions[TIND_LEVELS];  /* by output level */
    uint64_t level_bytes_read[TIND_LEVELS];   /* by output level: input bytes */
    uint64_t level_bytes_written[TIND_LEVELS]; /* by output level: output bytes */
    uint64_t flushed_bytes;      /* bytes of the tables flushes wrote */
    double write_amplification;  /* (flushed + compaction-written bytes) / flushed bytes; 0 before a flush */
    uint64_t stalls;             /* writes that waited for a flush or a compaction to catch up */
    uint64_t slowdowns;          /* writes delayed because level 0 was filling */
    uint64_t stall_micros;       /* time writers spent in both */
    uint64_t pending_compaction_bytes; /* how far compaction is behind (see the options) */
    uint64_t flushed_sequence;   /* every write with a sequence number up to it is in a table */
};

/* Fills *st. Thread-safe. */
TIND_API int tind_keyspace_stats(tind_keyspace *ks, struct tind_keyspace_stats *st);

/* Statistics of the database, filled by tind_db_stats(). */
struct tind_db_stats {
    uint64_t keyspaces;          /* live keyspaces */
    uint64_t last_sequence;      /* sequence number of the newest visible write */
    uint64_t journal_files;      /* journal files on disk */
    uint64_t journal_bytes;      /* their total size */
    uint64_t writes;             /* write requests committed since open (batches, puts, deletes) */
    uint64_t write_groups;       /* group-commit writes that carried them */
    uint64_t parallel_groups;    /* those whose writers inserted their batches in parallel
                                  * (tind_options.parallel_memtable_writes) */
    uint64_t journal_syncs;      /* fsync/fdatasync calls on journals */
    uint64_t snapshots;          /* open snapshots */
    uint64_t iterators;          /* open iterators */
    uint64_t cache_capacity;     /* block cache capacity, bytes */
    uint64_t cache_usage;        /* bytes it holds */
    uint64_t cache_hits, cache_misses;
    uint64_t open_tables;        /* tables in the table cache */
    uint64_t compactions_active;    /* compaction jobs queued or running, every keyspace */
    uint64_t compactions_completed; /* since open, every keyspace */
    uint64_t transactions_open;      /* open transactions, both kinds */
    uint64_t transactions_committed; /* since open, read-only ones included */
    uint64_t transaction_conflicts;  /* commits failed with TIND_CONFLICT since open */
    uint64_t conflict_log_entries;   /* committed keys kept to check open transactions against */
    uint64_t conflict_log_bytes;     /* their memory; 0 once no transaction is open
                                      * and no write is in flight */
};

/* Fills *st. Thread-safe. */
TIND_API int tind_db_stats(tind_db *db, struct tind_db_stats *st);

/* What tind_db_verify() checked and found, filled by it. */
struct tind_verify_report {
    uint64_t keyspaces;          /* keyspaces checked */
    uint64_t tables;             /* table files checked */
    uint64_t blocks;             /* their blocks checked: data, filter, properties, index */
    uint64_t entries;            /* entries decoded */
    uint64_t bytes_read;         /* bytes read from disk: tables, manifests, options files, journals */
    uint64_t manifest_records;   /* manifest records checked, every keyspace */
    uint64_t journals;           /* journal files checked */
    uint64_t journal_records;    /* their records checked */
    uint64_t orphan_files;       /* table files in a keyspace folder that its version does not hold:
                                    outputs of a flush or compaction in progress, inputs an open
                                    iterator still pins, leftovers of a crash; not a problem */
    uint64_t problems;           /* corrupt files found (each file counts once) */
    char first_file[4096];       /* the first problem's file ("" when none) */
    uint64_t first_offset;       /* its byte offset in that file */
    char first_message[512];     /* its message, as tind_last_error() gives it */
};

/* Checks the database against its files on disk, bypassing the block cache:
 * for each keyspace, its OPTIONS file, every record of its MANIFEST (which
 * must replay to the version in use, whose invariants hold: level 0 newest
 * first, deeper levels sorted and disjoint, no table newer than the last
 * sequence number), and every live table (each referenced file exists with
 * the recorded size; footer, properties, index, filter and every data block
 * pass their checksums; every entry decodes; keys strictly increase; the
 * manifest's record of the table matches the file); then every record of the
 * journals on disk (the current one up to what has been written). It goes on
 * past a corrupt file to the next one, counting problems.
 *
 * Returns TIND_OK when everything checks; TIND_CORRUPTION when a problem was
 * found, with tind_last_error() giving the first one's message (naming its
 * file and offset); another code (TIND_IO_ERROR, TIND_NO_MEMORY) when a file
 * could not be read, which ends the check. report may be NULL; otherwise it
 * is filled in every case.
 *
 * Thread-safe, and may run while writes, flushes and compactions go on: it
 * pins the versions it reads, so no table it checks is deleted under it, and
 * reads each manifest while holding off that keyspace's version changes.
 * Opening and dropping keyspaces wait while it checks a keyspace. It reads
 * every byte of every table: as costly as a full scan. */
TIND_API int tind_db_verify(tind_db *db, struct tind_verify_report *report);

#ifdef __cplusplus
}
#endif

#endif /* TIND_H */
