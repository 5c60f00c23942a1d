/* Keyspace options: the one table of tind_keyspace_options' fields, and what
 * is generated from it (defaults, checks, the fields of the OPTIONS file,
 * comparison; the CLI prints from it; src/tree/config.c turns the options
 * into the strategy and table configuration).
 *
 * KS_OPTIONS(X) calls X(name, type, coding, tag, def, lo, hi, why, names) once
 * per field, in the struct's order, which is also the order the OPTIONS file
 * writes them in:
 *   name    the field of tind_keyspace_options (include/tind.h)
 *   type    its C type; coding LEVELS: the type of one of its TIND_LEVELS entries
 *   coding  how it is stored (each stored value is tag:varint32 value:varint64):
 *             PLAIN   the value as an unsigned varint
 *             ZIGZAG  a signed value, zigzag-coded: (v << 1) ^ (v >> 63)
 *             LEVELS  one record per level: level << 4 | value (value 0..15)
 *   tag     its tag in the OPTIONS file: frozen. A field that goes retires its
 *           tag for good (list it below), never reused; the decoder's switch
 *           has one case per tag, so two fields with one tag do not compile
 *   def     the default (tind_keyspace_options_init); for LEVELS, a braced list
 *           of TIND_LEVELS values, named by a macro
 *   lo, hi  the accepted range, inclusive (each entry for LEVELS)
 *   why     the end of the message for a value outside it:
 *           "keyspace option NAME VALUE WHY"
 *   names   how a value is shown: NUM (a number), or DURABILITY, COMPRESSION,
 *           STRATEGY (the TIND_DURABILITY_*, TIND_COMPRESSION_*,
 *           TIND_COMPACTION_* name)
 *
 * Retired tags: none.
 *
 * The public header cannot include this one, so the two are tied at compile
 * time in ks_options.c: every field here has the header's offset, size and
 * type, the structs have the same size, and the defaults are one positional
 * initializer of the whole struct (a header field missing here leaves one
 * field without an initializer: -Wmissing-field-initializers, an error in
 * this build; one here missing from the header does not compile).
 *
 * Checks between fields are code in ks_options_check, after the ranges. */
#ifndef TIND_SRC_KS_OPTIONS_H
#define TIND_SRC_KS_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/coding.h"
#include "tind.h"

/* LZ4 on every level. The last level holds most of the data, so most reads
 * that miss the block cache decode one of its blocks: ZSTD there saved 11%
 * of the disk space at 2M keys and cost 43% of the random-read rate. */
#define KSO_COMPRESSION_DEFAULTS                                                                              \
    {                                                                                                         \
        TIND_COMPRESSION_LZ4, TIND_COMPRESSION_LZ4, TIND_COMPRESSION_LZ4, TIND_COMPRESSION_LZ4,             \
            TIND_COMPRESSION_LZ4, TIND_COMPRESSION_LZ4, TIND_COMPRESSION_LZ4                                  \
    }

#define KS_OPTIONS(X)                                                                                         \
    X(durability,             int,      ZIGZAG,  1, TIND_DURABILITY_DEFAULT, TIND_DURABILITY_DEFAULT,          \
      TIND_DURABILITY_SYNC_ALL, "is not a TIND_DURABILITY_* value", DURABILITY)                               \
    X(memtable_bytes,         uint64_t, PLAIN,   2, UINT64_C(64) << 20, UINT64_C(64) << 10, UINT64_MAX,        \
      "is below 64 KiB", NUM)                                                                                 \
    X(max_sealed_memtables,   uint32_t, PLAIN,   3, 4, 1, UINT32_MAX, "is below 1", NUM)                       \
    X(block_size,             uint32_t, PLAIN,   4, 4096, 256, UINT32_C(1) << 20, "is outside 256..1 MiB", NUM) \
    X(restart_interval,       uint32_t, PLAIN,   5, 16, 1, 1024, "is outside 1..1024", NUM)                    \
    X(bloom_bits_per_key,     uint32_t, PLAIN,   6, 10, 0, 32, "is over 32", NUM)                              \
    X(compression,            int,      LEVELS,  7, KSO_COMPRESSION_DEFAULTS, TIND_COMPRESSION_NONE,            \
      TIND_COMPRESSION_ZSTD, "is not a TIND_COMPRESSION_* value", COMPRESSION)                                \
    X(zstd_level,             int,      ZIGZAG,  8, 3, 1, 19, "is outside 1..19", NUM)                         \
    X(compaction,             int,      PLAIN,   9, TIND_COMPACTION_LEVELED, TIND_COMPACTION_LEVELED,          \
      TIND_COMPACTION_FIFO, "is not a TIND_COMPACTION_* value", STRATEGY)                                     \
    X(l0_trigger,             uint32_t, PLAIN,  10, 4, 1, 64, "is outside 1..64", NUM)                         \
    X(level_ratio,            uint32_t, PLAIN,  11, 10, 2, 100, "is outside 2..100", NUM)                      \
    X(table_target_bytes,     uint64_t, PLAIN,  12, UINT64_C(64) << 20, UINT64_C(64) << 10, UINT64_MAX,        \
      "is below 64 KiB", NUM)                                                                                 \
    X(tier_width,             uint32_t, PLAIN,  13, 4, 2, 64, "is outside 2..64", NUM)                         \
    X(fifo_max_bytes,         uint64_t, PLAIN,  14, 0, 0, UINT64_MAX, "", NUM)                                 \
    X(fifo_ttl_seconds,       uint64_t, PLAIN,  15, 0, 0, UINT64_MAX, "", NUM)                                 \
    X(l0_slowdown_tables,     uint32_t, PLAIN,  16, 20, 1, 10000, "is outside 1..10000", NUM)                  \
    X(l0_stop_tables,         uint32_t, PLAIN,  17, 36, 1, 10000, "is outside 1..10000", NUM)                  \
    X(pending_slowdown_bytes, uint64_t, PLAIN,  18, UINT64_C(64) << 30, UINT64_C(1) << 20, UINT64_MAX,         \
      "is below 1 MiB", NUM)                                                                                  \
    X(pending_stop_bytes,     uint64_t, PLAIN,  19, UINT64_C(256) << 30, UINT64_C(1) << 20, UINT64_MAX,        \
      "is below 1 MiB", NUM)

/* Stored values (records) per field, by coding. */
#define KSO_RECORDS_PLAIN 1
#define KSO_RECORDS_ZIGZAG 1
#define KSO_RECORDS_LEVELS TIND_LEVELS

#define KSO_COUNT_FIELD(name, type, coding, tag, def, lo, hi, why, names) +1
#define KSO_COUNT_RECORD(name, type, coding, tag, def, lo, hi, why, names) +KSO_RECORDS_##coding
enum {
    KS_OPTIONS_FIELDS = 0 KS_OPTIONS(KSO_COUNT_FIELD),   /* fields of tind_keyspace_options */
    KS_OPTIONS_RECORDS = 0 KS_OPTIONS(KSO_COUNT_RECORD), /* records a full OPTIONS file holds */
};

/* Bytes ks_options_encode writes at most. */
#define KS_OPTIONS_ENCODED_MAX (VARINT32_MAX + KS_OPTIONS_RECORDS * (VARINT32_MAX + VARINT64_MAX))

/* TIND_OK when every field is in its range and the fields agree with each
 * other; TIND_INVALID with a message naming the first that is not. */
int ks_options_check(const tind_keyspace_options *o);

/* Writes o as the OPTIONS file's field list (field_count:varint32 then one
 * tag:varint32 value:varint64 record per value, in table order) at p, which
 * has KS_OPTIONS_ENCODED_MAX bytes; returns the end. */
uint8_t *ks_options_encode(uint8_t *p, const tind_keyspace_options *o);

/* Decodes the field list in [p, end) (all of it) into *o: defaults first, so
 * a file written before a field existed takes its default; then checks it.
 * TIND_CORRUPTION naming path and the offset from base on a bad list. */
int ks_options_decode(const char *path, const uint8_t *base, const uint8_t *p, const uint8_t *end,
                      tind_keyspace_options *o);

/* 1 when a and b are equal field by field (the structs may differ in padding). */
int ks_options_same(const tind_keyspace_options *a, const tind_keyspace_options *b);

#endif
