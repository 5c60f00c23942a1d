/* The memtable: a skiplist of internal entries in an arena.
 *
 * Concurrency: inserts come either from one writer at a time (memtable_add;
 * the caller serializes writers: the journal's group-commit leader applies a
 * group alone) or from several threads at once (memtable_add_concurrent: the
 * members of a commit group each applying their own batch). The two kinds
 * never overlap: the caller orders every concurrent insert before or after
 * each single-writer one (the journal hands the group on through its
 * mutex). Any number of readers and iterators run at the same time as
 * either, without locks. A node is fully
 * written before it is linked (release stores), and readers follow links with
 * acquire loads, so a reader sees either the whole node or none of it.
 * Readers filter entries newer than their sequence number themselves.
 *
 * Lifetime: reference counted; the last memtable_unref frees it and its arena. */
#ifndef TIND_LSM_MEMTABLE_H
#define TIND_LSM_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "lsm/iter.h"

typedef struct memtable memtable;

/* A new, empty memtable with one reference; NULL when out of memory.
 * filter_bytes: the size of its filter over the user keys, which lets
 * memtable_get turn most absent keys away without a search (rounded down
 * to a multiple of 64 bytes, at most MEMTABLE_FILTER_MAX; under 64: none). */
memtable *memtable_new(size_t filter_bytes);
#define MEMTABLE_FILTER_MAX ((size_t)64 << 20)
/* The filter's size, in bytes (0: none). Any thread. */
size_t memtable_filter_bytes(const memtable *m);
void memtable_ref(memtable *m);
void memtable_unref(memtable *m);

/* Inserts (key, seq, kind) -> val. Key and value are copied. One writer at a
 * time; (key, seq) pairs are unique (the caller's sequence numbers are).
 * TIND_NO_MEMORY when the arena cannot grow (nothing is inserted). */
int memtable_add(memtable *m, uint64_t seq, unsigned kind, const void *key, size_t klen,
                 const void *val, size_t vlen);
/* memtable_add, safe to call from several threads at once (each link is a
 * compare-and-swap; the arenas are taken under a mutex). */
int memtable_add_concurrent(memtable *m, uint64_t seq, unsigned kind, const void *key, size_t klen,
                            const void *val, size_t vlen);

/* Looks up the newest version of key with seq <= `seq`.
 * Returns 1 and sets *kind, *val, *vlen (pointing into the memtable, valid
 * while the caller holds a reference) when found, else 0. */
int memtable_get(memtable *m, const void *key, size_t klen, uint64_t seq, unsigned *kind,
                 const uint8_t **val, size_t *vlen);
/* memtable_get with hash = bloom_hash(key, klen), computed once by a caller
 * that asks several memtables and tables. */
int memtable_get_hashed(memtable *m, const void *key, size_t klen, uint64_t hash, uint64_t seq, unsigned *kind,
                        const uint8_t **val, size_t *vlen);

/* 0 when the filter says no entry of key was added, 1 when one may have
 * been (always 1 without a filter). memtable_get asks it first. */
int memtable_filter_may_contain(const memtable *m, const void *key, size_t klen);

/* Bytes its entries take in the arena (nodes, keys, values). Any thread. */
size_t memtable_bytes(const memtable *m);
/* The smallest sequence number added, 0 while empty. Any thread. */
uint64_t memtable_first_seq(const memtable *m);
/* Entries inserted. Any thread. */
uint64_t memtable_count(const memtable *m);

/* An iterator over every entry (all versions); it holds a reference on the
 * memtable until destroyed. NULL when out of memory. */
iiter *memtable_iter(memtable *m);

#endif
