/* The engine interface of the benchmark: what a workload needs from a
 * key-value store, and nothing more, so that every engine runs the same
 * workload code.
 *
 * Handles are opaque: each driver (engine_tind.c, peers/engine_*.c) defines
 * its own struct engine, engine_store, engine_batch and engine_iter.
 *
 * Status: ENGINE_OK (0), ENGINE_NOT_FOUND for a get of an absent key, or
 * ENGINE_ERROR after the driver described the failure with engine_error().
 *
 * Threads: put, get, del, batch commit and iterator creation are called from
 * several threads at once on one engine; a batch and an iterator are used by
 * one thread at a time. Each worker thread calls thread_end (when the driver
 * has one) before it exits, so that per-thread state can be released. */
#ifndef BENCH_ENGINE_H
#define BENCH_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ENGINE_OK 0
#define ENGINE_NOT_FOUND 1
#define ENGINE_CONFLICT 2 /* a transaction's commit lost to a concurrent write */
#define ENGINE_ERROR (-1)

struct engine;
struct engine_store;
struct engine_batch;
struct engine_iter;
struct engine_tx;

/* What every engine is configured with, alike. */
struct engine_config {
    int own_defaults;            /* 0 ("equalized"): every field below applies to every engine;
                                    1 ("defaults"): each engine keeps its own defaults except
                                    cache_bytes, bloom_bits, map_bytes and whether compression is
                                    on (with the engine's default compressor): write_buffer_bytes,
                                    block_size and workers are ignored */
    const char *dir;             /* the database directory (the engine creates it) */
    uint64_t cache_bytes;        /* block cache (LSM engines); LMDB has none: the OS caches its map */
    uint64_t write_buffer_bytes; /* memtable size (LSM engines) */
    uint64_t map_bytes;          /* LMDB's map size */
    uint32_t block_size;         /* table block size before compression (LSM engines) */
    int bloom_bits;              /* bloom filter bits per key; 0: no filter */
    int compression;             /* 1: the engine's fast block compressor (tind and RocksDB
                                    LZ4, LevelDB Snappy); 0: none */
    int workers;                 /* background threads (tind workers, RocksDB jobs); 0: default */
    int parallel_writes;         /* tind: parallel_memtable_writes (both configurations) */
};

/* Counters an engine may offer, to show group commit. */
struct engine_counters {
    uint64_t writes;  /* write requests */
    uint64_t groups;  /* journal writes that carried them */
    uint64_t syncs;   /* journal fsync/fdatasync calls */
    uint64_t memtable_peak_bytes; /* the most its memtables held at once (0: not known) */
};

/* Where an LSM engine's compaction stands, for the settle step. */
struct engine_compaction {
    uint64_t l0_files;   /* tables in level 0 */
    uint64_t l0_trigger; /* the level-0 count at which the engine starts a compaction */
    int busy;            /* a flush or compaction runs or is due */
};

struct engine_ops {
    const char *name;
    int lsm; /* an LSM tree (compared separately in the table: the read targets are against LSM peers) */
    /* The library's version, for the report; a static string. */
    const char *(*version)(void);

    int (*open)(const struct engine_config *cfg, struct engine **e);
    /* Closes and frees e; every store, batch and iterator must be gone. */
    int (*close)(struct engine *e);
    /* The store (keyspace, column family) named `name`, created if absent;
     * NULL: the default store. Valid until close. Drivers without named
     * stores fail for a non-NULL name. */
    int (*store)(struct engine *e, const char *name, struct engine_store **s);

    /* sync: durable (fdatasync or the engine's equivalent) before returning. */
    int (*put)(struct engine_store *s, const void *k, size_t kl, const void *v, size_t vl, int sync);
    /* Copies the value into buf (up to cap bytes) and sets *vl to its full
     * length: every engine hands the application the bytes, so none is
     * credited for a copy it did not make. */
    int (*get)(struct engine_store *s, const void *k, size_t kl, void *buf, size_t cap, size_t *vl);
    /* Deleting an absent key is ENGINE_OK. */
    int (*del)(struct engine_store *s, const void *k, size_t kl, int sync);

    int (*batch_new)(struct engine *e, struct engine_batch **b);
    int (*batch_put)(struct engine_batch *b, struct engine_store *s, const void *k, size_t kl, const void *v,
                     size_t vl);
    /* Commits the batch atomically, then empties it for reuse. */
    int (*batch_commit)(struct engine_batch *b, int sync);
    void (*batch_free)(struct engine_batch *b);

    /* An iterator over the store as of now; starts unpositioned. */
    int (*iter_new)(struct engine_store *s, struct engine_iter **it);
    void (*iter_seek)(struct engine_iter *it, const void *k, size_t kl); /* first key >= k */
    void (*iter_first)(struct engine_iter *it);
    void (*iter_last)(struct engine_iter *it);
    void (*iter_next)(struct engine_iter *it);
    void (*iter_prev)(struct engine_iter *it);
    int (*iter_valid)(struct engine_iter *it);
    /* Valid until the iterator moves. */
    const void *(*iter_key)(struct engine_iter *it, size_t *len);
    const void *(*iter_value)(struct engine_iter *it, size_t *len);
    /* ENGINE_OK, or ENGINE_ERROR (described) when iteration failed. */
    int (*iter_status)(struct engine_iter *it);
    void (*iter_free)(struct engine_iter *it);

    /* Optional (NULL when the engine has no such thing). */
    int (*flush)(struct engine_store *s);            /* memtable to a table, waited for */
    void (*report)(struct engine *e, FILE *out);     /* engine-specific statistics */
    int (*counters)(struct engine *e, struct engine_counters *c);
    int (*compaction)(struct engine *e, struct engine_compaction *c); /* the default store's (tind: every store's) */
    void (*thread_end)(struct engine *e);            /* the calling worker thread is done */
    /* Optimistic transactions: reads of the snapshot taken at begin (plus
     * the transaction's writes), buffered writes; commit returns
     * ENGINE_CONFLICT when it lost, and frees the transaction either way. */
    int (*tx_begin)(struct engine *e, struct engine_tx **tx);
    int (*tx_get)(struct engine_tx *tx, struct engine_store *s, const void *k, size_t kl, void *buf, size_t cap,
                  size_t *vl);
    int (*tx_put)(struct engine_tx *tx, struct engine_store *s, const void *k, size_t kl, const void *v, size_t vl);
    int (*tx_commit)(struct engine_tx *tx);
};

/* Records the failure of the calling thread's last engine call; returns ENGINE_ERROR. */
int engine_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The calling thread's last recorded failure. */
const char *engine_last_error(void);

/* The engines built into this binary, NULL-terminated (engines.c). */
extern const struct engine_ops *const engine_list[];
const struct engine_ops *engine_find(const char *name);

extern const struct engine_ops engine_tind;
#ifdef TIND_BENCH_PEERS
extern const struct engine_ops engine_rocksdb;
extern const struct engine_ops engine_leveldb;
extern const struct engine_ops engine_lmdb;
#endif

#endif
