/* A sharded, byte-weighted, scan-resistant LRU cache of reference-counted values.
 *
 * Used twice: the block cache (one per database, shared by every keyspace;
 * values are decoded blocks, charged by their size) and the table cache
 * (values are open tables, charged 1 each).
 *
 * Keys are two u64 (for blocks: a table's cache id and the block's offset).
 * Each shard is a segmented LRU: an entry enters the probation segment and
 * moves to the protected segment (at most PROTECTED_SHARE of the shard) on
 * its second hit, so a scan that touches every block once cannot push out
 * the entries that are read again and again.
 *
 * A value handed out by lookup or insert stays alive until released, even
 * if evicted or erased meanwhile; the deleter runs when the cache no longer
 * holds it and no handle is out. Usage never exceeds the capacity by more than
 * one entry per shard, except for entries pinned by handles.
 *
 * Thread-safe: one mutex per shard, held only for the table and list work. */
#ifndef TIND_LSM_CACHE_H
#define TIND_LSM_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cache cache;
typedef struct cache_handle cache_handle;

/* Called with the value when the cache drops it and no handle is out. */
typedef void (*cache_deleter)(void *value, void *arg);

/* capacity: total charge the cache may hold; shards: 0 chooses (capacity
 * based, a power of two up to 64). NULL when out of memory. */
cache *cache_new(size_t capacity, unsigned shards);
/* Frees the cache; every handle must have been released. */
void cache_free(cache *c);

/* Returns a handle on the value under (k1, k2), or NULL (a miss). */
cache_handle *cache_lookup(cache *c, uint64_t k1, uint64_t k2);
/* Inserts value under (k1, k2), replacing an older entry there, and returns a
 * handle on it (release it). NULL only when out of memory: then the deleter
 * has already been called on value. A value whose charge alone exceeds a
 * shard's capacity is handed back without being kept. */
cache_handle *cache_insert(cache *c, uint64_t k1, uint64_t k2, void *value, size_t charge, cache_deleter del,
                           void *del_arg);
void *cache_value(const cache_handle *h);
void cache_release(cache *c, cache_handle *h);
/* Drops the entry under (k1, k2) if present (handles out keep it alive). */
void cache_erase(cache *c, uint64_t k1, uint64_t k2);

/* A process-unique number for a cache key space (a table's blocks). */
uint64_t cache_new_id(void);

struct cache_stats {
    uint64_t capacity, usage, entries;
    uint64_t hits, misses, inserts, evictions;
};
void cache_get_stats(cache *c, struct cache_stats *st);

#endif
