/* Tables: immutable sorted files of internal entries (the byte grammar is in
 * lsm/README.md).
 *
 *   table := data_block* filter_block? properties_block index_block footer
 *
 * Writing (lsm/table_writer.c): entries are added in strictly increasing
 * internal order; data blocks are cut at block_size, prefix-compressed with
 * restart points, compressed when that saves at least 1/8, and checksummed.
 * finish() writes the filter, properties, index and footer, fsyncs the file
 * and closes it: a finished table is durable.
 *
 * Reading (lsm/table_reader.c): open reads and checks the footer, then the
 * properties; the index and filter blocks are read through the block cache
 * like data blocks. Every block read from disk has its checksum verified; a
 * mismatch is TIND_CORRUPTION naming the file and the block's offset. */
#ifndef TIND_LSM_TABLE_H
#define TIND_LSM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "lsm/cache.h"
#include "lsm/iter.h"
#include "src/util/buf.h"

/* Block compression; on disk in each block's trailer, and as TIND_COMPRESSION_*
 * (asserted equal in src/ks_options.c) in keyspace OPTIONS files: frozen. */
enum table_compression {
    COMPRESS_NONE = 0,
    COMPRESS_LZ4 = 1,
    COMPRESS_ZSTD = 2,
};

struct table_options {
    size_t block_size;       /* target uncompressed data block size; default 4096 */
    unsigned restart_interval; /* keys between restart points; default 16 */
    unsigned bloom_bits;     /* bloom filter bits per key; 0: no filter */
    unsigned compression;    /* enum table_compression */
    int zstd_level;          /* when compression is ZSTD */
    unsigned format_version; /* 0: TABLE_FORMAT_VERSION; else TABLE_FORMAT_OLDEST..TABLE_FORMAT_VERSION
                                (1 writes the plain filter layout, as tables before version 2) */
};

/* What the properties block records; filled by finish() and by open. */
struct table_props {
    uint64_t entries, tombstones;
    uint64_t data_blocks;
    uint64_t raw_key_bytes, raw_value_bytes; /* before prefix compression and block compression */
    uint64_t data_bytes;                     /* data blocks as stored, trailers included */
    uint64_t index_bytes, filter_bytes;
    uint64_t min_seq, max_seq;
    uint32_t compression;                    /* enum table_compression used for data blocks */
    uint32_t bloom_bits;
    uint64_t created;                        /* seconds since the epoch */
    buf smallest, largest;                   /* user keys */
    uint64_t smallest_tag, largest_tag;      /* their tags */
};
void table_props_init(struct table_props *p);
void table_props_free(struct table_props *p);

/* ---- writing ------------------------------------------------------------------ */

typedef struct table_writer table_writer;

/* Creates `path` (which must not exist). */
int table_writer_open(const char *path, const struct table_options *o, table_writer **w);
/* Adds an entry; internal keys strictly increasing (TIND_INVALID otherwise). */
int table_writer_add(table_writer *w, const uint8_t *key, size_t klen, uint64_t tag, const uint8_t *val, size_t vlen);
/* Bytes the file will have so far (data written plus the open block). */
uint64_t table_writer_size(const table_writer *w);
uint64_t table_writer_entries(const table_writer *w);
/* Writes the remaining blocks and the footer, fsyncs, closes and frees w.
 * On success *props (if not NULL) receives the properties (caller frees
 * them with table_props_free) and *size the file size. On failure the file
 * is removed. Either way w is gone. */
int table_writer_finish(table_writer *w, struct table_props *props, uint64_t *size);
/* Closes, removes the file and frees w. */
void table_writer_abandon(table_writer *w);

/* ---- reading ------------------------------------------------------------------ */

typedef struct table table;

/* Opens the table at path (file_size from the manifest; checked against the
 * file). Blocks are cached in `bc` (may be NULL: no caching). The table
 * starts with one reference. */
int table_open(const char *path, uint64_t file_size, cache *bc, table **t);
void table_ref(table *t);
void table_unref(table *t);
const struct table_props *table_get_props(const table *t);
const char *table_path(const table *t);

/* Point lookup: the newest entry of key with seq <= `seq`. Returns TIND_OK
 * with *found set (0: no entry of key at or below seq in this table); when
 * found, *kind and the value (copied into *val, cleared first) are set. The
 * bloom filter is checked first: a negative skips the index and the blocks.
 * TIND_CORRUPTION / TIND_IO_ERROR on a bad or unreadable block. */
int table_get(table *t, const uint8_t *key, size_t klen, uint64_t seq, int *found, unsigned *kind, buf *val);
/* table_get with the key's bloom_hash computed by the caller, once for every
 * table a lookup visits. */
int table_get_hashed(table *t, const uint8_t *key, size_t klen, uint64_t hash, uint64_t seq, int *found,
                     unsigned *kind, buf *val);

/* A value left where it lies: its data block stays pinned, in the block
 * cache (a handle) or owned (a table without a cache), until
 * table_pin_release, even after the table is closed. The cache must
 * outlive the pin. All zero: nothing pinned. */
struct table_pin {
    struct cache *cache;
    struct cache_handle *handle;
    struct tblock *block;
};
/* table_get_hashed without the copy: when found, *val / *vlen point into a
 * block that *pin holds (release it with table_pin_release); otherwise *pin
 * holds nothing. */
int table_get_pinned(table *t, const uint8_t *key, size_t klen, uint64_t hash, uint64_t seq, int *found,
                     unsigned *kind, const uint8_t **val, size_t *vlen, struct table_pin *pin);
/* Releases what pin holds; a zeroed pin (or NULL) is a no-op. */
void table_pin_release(struct table_pin *pin);

/* 1 when the filter says key may be present (or there is no filter). */
int table_may_contain(table *t, const uint8_t *key, size_t klen);

/* An iterator over every entry; it holds a reference on the table. Blocks it
 * reads go through the cache. A seek reads only the index and the one data
 * block it lands in. NULL when out of memory. */
iiter *table_iter(table *t);

/* Reads and checks every block (index, filter, properties, each data block)
 * without the cache; TIND_OK or the first problem (file, offset). */
int table_verify(table *t);

/* What table_verify_stats read. */
struct table_verify_stats {
    uint64_t blocks;      /* every block checked: data, filter, properties, index */
    uint64_t data_blocks;
    uint64_t entries;
    uint64_t bytes;       /* the file's size: every byte of it was read */
    uint64_t props_offset; /* where the properties block starts */
};
/* table_verify that also checks the properties' sequence range and first
 * and last tags against the entries, and fills *st (may be NULL). */
int table_verify_stats(table *t, struct table_verify_stats *st);

#endif
