/* The on-disk constants of tables: FROZEN.
 *
 * Everything here is written into table files. Changing a value makes every
 * existing table unreadable (or, worse, misread): a new layout gets a new
 * TABLE_FORMAT_VERSION, a retired property tag is never reused, and new
 * properties take new tags. The byte grammar is in lsm/README.md ("Tables").
 *
 *   table   := data_block* filter_block? properties_block index_block footer
 *   block   := contents compression:u8 checksum:u64
 *              (checksum: xxh3-64, seed 0, of contents followed by the compression byte)
 *   handle  := offset:varint64 size:varint64   (size: of contents, trailer excluded)
 *   footer  := index_off:u64 index_size:u64 filter_off:u64 filter_size:u64
 *              props_off:u64 props_size:u64 version:u32 flags:u32
 *              checksum:u64 magic:u64          (72 bytes; checksum: xxh3 of bytes 0..55)
 *
 * The compression byte values are enum table_compression in lsm/table.h
 * (0 none, 1 lz4, 2 zstd), frozen there. */
#ifndef TIND_LSM_TABLE_FORMAT_H
#define TIND_LSM_TABLE_FORMAT_H

#include <stdint.h>

/* The last 8 bytes of every table: "tind.tbl" read as a little-endian u64. */
#define TABLE_MAGIC UINT64_C(0x6c62742e646e6974)
/* 2: the filter block in the blocked layout (lsm/bloom.h); 1: plain. A
 * reader takes both; the writer makes TABLE_FORMAT_VERSION unless told
 * otherwise (table_options.format_version). */
#define TABLE_FORMAT_VERSION 2u
#define TABLE_FORMAT_OLDEST 1u

/* Footer field offsets; the footer is the last TABLE_FOOTER_SIZE bytes. */
#define TABLE_FOOTER_SIZE 72u
#define FOOTER_INDEX_OFF 0u
#define FOOTER_INDEX_SIZE 8u
#define FOOTER_FILTER_OFF 16u
#define FOOTER_FILTER_SIZE 24u /* 0: the table has no filter */
#define FOOTER_PROPS_OFF 32u
#define FOOTER_PROPS_SIZE 40u
#define FOOTER_VERSION 48u
#define FOOTER_FLAGS 52u /* 0; a reader rejects bits it does not know */
#define FOOTER_CHECKSUM 56u /* covers bytes [0, FOOTER_CHECKSUM) */
#define FOOTER_MAGIC 64u

/* compression:u8 checksum:u64 after every block's contents. */
#define BLOCK_TRAILER_SIZE 9u

/* Largest decompressed size a compressed block may declare: the largest
 * block the writer compresses (a 64 MiB value, a 65,535-byte key and entry
 * overhead) with slack. A larger declaration is corruption; a larger block
 * is written uncompressed. */
#define BLOCK_MAX_COMPRESSED_RAW ((UINT64_C(64) << 20) + (UINT64_C(1) << 20))

/* The bloom filter: bits[m/8] probes:u8; probes in 1..30. */
#define BLOOM_MAX_PROBES 30u
#define BLOOM_MIN_BITS 64u

/* Properties block: prop* in ascending tag order, each tag at most once.
 *   prop := tag:varint32 len:varint32 value[len]
 * Numbers are one varint64 filling value exactly; keys are raw bytes.
 * A reader skips tags it does not know. */
enum table_prop_tag {
    TPROP_ENTRIES = 1,         /* u: entries, tombstones included (required) */
    TPROP_TOMBSTONES = 2,      /* u */
    TPROP_DATA_BLOCKS = 3,     /* u (required) */
    TPROP_RAW_KEY_BYTES = 4,   /* u: sum of internal key sizes (user key + 8) */
    TPROP_RAW_VALUE_BYTES = 5, /* u */
    TPROP_DATA_BYTES = 6,      /* u: data blocks as stored, trailers included */
    TPROP_INDEX_BYTES = 7,     /* u: index block as stored, trailer included */
    TPROP_FILTER_BYTES = 8,    /* u: filter block as stored, trailer included; 0 without */
    TPROP_MIN_SEQ = 9,         /* u */
    TPROP_MAX_SEQ = 10,        /* u */
    TPROP_COMPRESSION = 11,    /* u: enum table_compression configured for data blocks */
    TPROP_BLOOM_BITS = 12,     /* u: bits per key; 0 without a filter */
    TPROP_CREATED = 13,        /* u: seconds since the epoch */
    TPROP_SMALLEST = 14,       /* bytes: user key of the first entry (required when entries > 0) */
    TPROP_LARGEST = 15,        /* bytes: user key of the last entry (required when entries > 0) */
    TPROP_SMALLEST_TAG = 16,   /* u */
    TPROP_LARGEST_TAG = 17,    /* u */
};

/* Separators of shortened user keys in the index carry this tag, the
 * largest, so that they sort before every real entry of their user key. */
#define TABLE_SEPARATOR_TAG UINT64_MAX

#endif
