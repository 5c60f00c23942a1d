/* Versions and the manifest of one LSM tree (one keyspace).
 *
 * A version is the set of tables by level. Level 0 holds flushed memtables
 * (and, in tiered and FIFO keyspaces, the runs their merges write), newest
 * first by max_seq (ties: the higher number first), whose key ranges may
 * overlap; every deeper level holds tables sorted by key with disjoint ranges. Versions are immutable and
 * reference counted; a table_meta is shared by every version that holds it.
 *
 * The manifest makes version changes durable before they are used:
 *   - an edit is appended to MANIFEST as one record and fsynced, then the new
 *     version becomes current;
 *   - when MANIFEST has grown past a limit, the whole current state is written
 *     as one record to MANIFEST.tmp, fsynced, renamed over MANIFEST and the
 *     directory fsynced (the switch).
 * Record framing is the journal's (src/util/record.h); the byte grammar of
 * edits is in lsm/README.md.
 *
 * A table's open reader and its file live as long as its meta: whoever can
 * reach a table (a version, and through it a super version or an iterator;
 * a compaction job; an edit) holds a reference on its meta, and the table
 * cache opens a table only for a caller holding one. When the last reference
 * goes, the table is closed and dropped from the table cache, and, when an
 * edit deleted it (or its keyspace was dropped), its file is unlinked. At
 * open, files of the keyspace folder that the recovered version does not
 * hold (tables of an unfinished flush or compaction, a leftover
 * MANIFEST.tmp) are removed.
 *
 * Callers serialize manifest_apply (one writer at a time per manifest);
 * manifest_current may be called from any thread. */
#ifndef TIND_LSM_VERSION_H
#define TIND_LSM_VERSION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "src/util/buf.h"

#define LSM_LEVELS 7
#define MANIFEST_FILE "MANIFEST"
#define TABLE_SUFFIX ".tbl"

struct table_meta {
    uint64_t number;                /* file name: "%016llx.tbl" */
    uint64_t size;                  /* bytes */
    uint64_t entries, tombstones;
    uint64_t min_seq, max_seq;
    buf smallest, largest;          /* user keys */
    uint64_t smallest_tag, largest_tag;
    uint64_t created;               /* seconds since the epoch when the table was written, standing in for
                                       its newest entry's time (FIFO's TTL); 0: unknown, never expires */
    char *path;                     /* full path, for opening and removal */
    _Atomic long refs;
    _Atomic int obsolete;           /* TABLE_META_*: what the last unref does with the file */
    /* The table cache that may hold this table open, and the key space it
     * is cached under; set by table_cache_get (always to the same values:
     * a meta belongs to one database), read by the last unref to close it. */
    struct table_cache *_Atomic cache;
    _Atomic uint64_t space;
};

/* Values of table_meta.obsolete. Only a read-write handle sets them. */
#define TABLE_META_LIVE 0     /* the file stays */
#define TABLE_META_OBSOLETE 1 /* an edit deleted it (or it never got into one): unlink the file */
#define TABLE_META_DROPPED 2  /* its keyspace was dropped: unlink the file, then the folder if empty */

/* A new meta with one reference (path copied). NULL when out of memory. */
struct table_meta *table_meta_new(const char *dir, uint64_t number);
void table_meta_ref(struct table_meta *m);
/* Fills m from a finished table's properties and size (created included).
 * TIND_OK or TIND_NO_MEMORY. */
struct table_props;
int table_meta_set_props(struct table_meta *m, const struct table_props *p, uint64_t size);
/* Drops a reference. The last one closes the table (evicts it from the table
 * cache that opened it), removes its file as `obsolete` says, and frees the
 * meta. Removal failures are not reported (the next open removes what no
 * version holds); the calling thread's error message is kept. */
void table_meta_unref(struct table_meta *m);
/* Formats a table's file name into out (at least 21 bytes). */
void table_file_name(char *out, uint64_t number);
/* 1 and *number when name is a table file name. */
int table_parse_name(const char *name, uint64_t *number);

struct version {
    _Atomic long refs;
    struct table_meta **files[LSM_LEVELS]; /* level 0: newest first by max_seq; others: by smallest key */
    size_t nfiles[LSM_LEVELS];
    uint64_t level_bytes[LSM_LEVELS];
};
void version_ref(struct version *v);
void version_unref(struct version *v);
/* Marks every table of v TABLE_META_DROPPED: each file goes with the last
 * reference to its meta. For a dropped keyspace, once its OPTIONS file is
 * durably gone. */
void version_drop_tables(struct version *v);

/* A change to a version. */
struct version_edit_add {
    unsigned level;
    struct table_meta *meta; /* the edit holds a reference */
};
struct version_edit_del {
    unsigned level;
    uint64_t number;
};
struct version_edit {
    int snapshot;             /* the whole state, not a change: the manifest's first record (set only by
                                 the manifest and by decode; manifest_apply refuses it) */
    int has_flushed_seq;
    uint64_t flushed_seq;     /* every write of the keyspace with seq <= it is in a table */
    int has_next_file;
    uint64_t next_file;
    struct version_edit_add *adds;
    size_t nadds, capadds;
    struct version_edit_del *dels;
    size_t ndels, capdels;
};
void version_edit_init(struct version_edit *e);
void version_edit_free(struct version_edit *e);
/* Takes a reference on meta. */
int version_edit_add(struct version_edit *e, unsigned level, struct table_meta *meta);
int version_edit_del(struct version_edit *e, unsigned level, uint64_t number);

/* Encoding of an edit as a manifest record payload, and back. decode makes
 * metas under dir; TIND_CORRUPTION (message names path and offset) when the
 * payload is malformed. */
int version_edit_encode(const struct version_edit *e, buf *out);
int version_edit_decode(const uint8_t *p, size_t n, const char *dir, const char *path, uint64_t offset,
                        struct version_edit *e);

typedef struct manifest manifest;

/* Opens the manifest of the tree in `dir`, creating an empty one (flushed
 * seq 0, next file 1) when there is none and `create` is set; recovers the
 * current version (a torn tail of MANIFEST, an edit whose append never
 * completed, is cut off) and removes the files it does not hold. */
int manifest_open(const char *dir, int create, manifest **m);
/* manifest_open that also requires every table the recovered version holds
 * to exist: one that is gone means the log lost an edit that was applied (a
 * damaged last record taken for a torn append, a log cut at a record
 * boundary), and is TIND_CORRUPTION naming MANIFEST, with nothing cut or
 * removed. The database opens its trees this way; tests of the manifest
 * alone, whose tables are not real files, use manifest_open. */
int manifest_open_checked(const char *dir, int create, manifest **m);
/* manifest_open_checked for reading only: recovers the current version the
 * same way (a torn tail is left in the file, not cut off), or an empty
 * version held in memory when there is no MANIFEST; writes and removes
 * nothing, and refuses manifest_apply with TIND_INVALID. */
int manifest_open_read_only(const char *dir, manifest **m);
void manifest_close(manifest *m);
/* The current version, with a reference for the caller. */
struct version *manifest_current(manifest *m);
uint64_t manifest_flushed_seq(manifest *m);
/* A new table file number (recorded by the next applied edit). */
uint64_t manifest_new_file_number(manifest *m);
/* Makes e durable, then switches to the version it yields. An edit that
 * would break the version's invariants (an unknown table deleted, a table
 * added twice, overlapping ranges in a level >= 1) is TIND_INVALID and
 * changes nothing. A failed write or sync poisons the manifest: every later
 * apply returns TIND_POISONED. */
int manifest_apply(manifest *m, struct version_edit *e);
/* 1 when a failed write or sync has poisoned the manifest, else 0. Any thread. */
int manifest_poisoned(manifest *m);
/* Checks the current version's invariants: key order inside each level >= 1
 * and across its tables, sequence ranges, metas' own smallest <= largest.
 * TIND_OK or TIND_CORRUPTION with the first problem. */
int manifest_check(manifest *m);

struct manifest_verify_stats {
    uint64_t records; /* records read and checked */
    uint64_t bytes;   /* MANIFEST's size */
};
/* Reads MANIFEST from disk and checks every record (checksums, decoding,
 * each edit applying to the state before it, the last record included: a
 * MANIFEST in use has no torn tail), then that the state it gives is the
 * version and flushed sequence in use, and that version's invariants.
 * TIND_OK (with *st, may be NULL), TIND_CORRUPTION naming MANIFEST and the
 * offset of the bad record, or the file layer's error. The caller
 * serializes it with manifest_apply, so that the file does not change under it. */
int manifest_verify(manifest *m, struct manifest_verify_stats *st);

#endif
