#include "lsm/table_cache.h"

#include <stdlib.h>

#include "tind.h"

/* Tables are few and each charges 1: below this many per shard the per-shard
 * bound would evict well before max_open tables are open. */
#define TABLE_CACHE_MIN_PER_SHARD 64
#define TABLE_CACHE_MAX_SHARDS 16

struct table_cache {
    cache *tables;      /* (space, number) -> table *, holding one reference each */
    cache *block_cache; /* handed to table_open; not owned */
};

/* Runs when the cache drops a table and no handle is out: the cache's own
 * reference goes. Called with no cache lock held. */
static void table_cache_deleter(void *value, void *arg)
{
    (void)arg;
    table_unref(value);
}

table_cache *table_cache_new(size_t max_open, cache *block_cache)
{
    table_cache *tc = calloc(1, sizeof(*tc));
    if (!tc) return NULL;
    unsigned shards = 1;
    while (shards < TABLE_CACHE_MAX_SHARDS && max_open / (shards * 2) >= TABLE_CACHE_MIN_PER_SHARD) shards *= 2;
    tc->tables = cache_new(max_open, shards);
    if (!tc->tables) {
        free(tc);
        return NULL;
    }
    tc->block_cache = block_cache;
    return tc;
}

void table_cache_free(table_cache *tc)
{
    if (!tc) return;
    cache_free(tc->tables);
    free(tc);
}

/* Hands out the cached table behind h with a reference of the caller's own. */
static table *table_cache_take(table_cache *tc, cache_handle *h)
{
    table *t = cache_value(h);
    table_ref(t);
    cache_release(tc->tables, h);
    return t;
}

int table_cache_get(table_cache *tc, uint64_t space, struct table_meta *m, table **t)
{
    if (!t) return TIND_INVALID;
    *t = NULL;
    if (!tc || !m || !m->path) return TIND_INVALID;
    uint64_t number = m->number;

    /* Recorded before the table can be cached, by a holder of m, so that
     * m's last unref (after this caller's) sees it. Loaded first: readers of
     * one table do not all write its meta's cache line. */
    if (atomic_load_explicit(&m->cache, memory_order_relaxed) != tc ||
        atomic_load_explicit(&m->space, memory_order_relaxed) != space) {
        atomic_store_explicit(&m->space, space, memory_order_relaxed);
        atomic_store_explicit(&m->cache, tc, memory_order_relaxed);
    }

    cache_handle *h = cache_lookup(tc->tables, space, number);
    if (h) {
        *t = table_cache_take(tc, h);
        return TIND_OK;
    }

    /* Opened without any lock: another thread may be opening the same file. */
    table *opened;
    int rc = table_open(m->path, m->size, tc->block_cache, &opened);
    if (rc != TIND_OK) return rc;

    /* Whoever cached it first wins, so that readers share one table (and its
     * blocks in the block cache); ours is closed. The window between this
     * lookup and the insert below remains: then the later insert replaces the
     * earlier entry, whose table lives on only in its readers' references. */
    h = cache_lookup(tc->tables, space, number);
    if (h) {
        table_unref(opened);
        *t = table_cache_take(tc, h);
        return TIND_OK;
    }

    table_ref(opened); /* the caller's; the one from table_open goes to the cache */
    h = cache_insert(tc->tables, space, number, opened, 1, table_cache_deleter, NULL);
    /* NULL: out of memory, the deleter already dropped the cache's reference;
     * the caller's keeps the table open, uncached. */
    if (h) cache_release(tc->tables, h);
    *t = opened;
    return TIND_OK;
}

void table_cache_evict(table_cache *tc, uint64_t space, uint64_t number)
{
    if (!tc) return;
    cache_erase(tc->tables, space, number);
}

uint64_t table_cache_count(table_cache *tc)
{
    if (!tc) return 0;
    struct cache_stats st;
    cache_get_stats(tc->tables, &st);
    return st.entries;
}
