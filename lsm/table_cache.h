/* The table cache: a bounded set of open tables, shared by every keyspace of a
 * database, built on lsm/cache.h with a charge of 1 per table.
 *
 * Keys are (space, number): file numbers are per keyspace, so `space` (a
 * keyspace's id) keeps two keyspaces' table 7 apart. The cache holds one
 * reference on each table it keeps; evicting or erasing an entry drops that
 * reference, so a table that a reader still holds stays open until the reader
 * lets go of it.
 *
 * Tables are opened for a caller holding a reference on their meta, and the
 * meta records the cache and space (table_cache_get); its last unref erases
 * the entry (lsm/version.h). So a table is open only while its meta lives:
 * the file of a deleted table is never held open by the cache after its last
 * reader, and, the meta keeping the file in place, a table evicted for
 * capacity can always be opened again by whoever still holds its meta. The
 * cache must outlive every meta it has opened a table for.
 *
 * Thread-safe. Two threads that miss the same table at once may both open it;
 * one copy ends up cached and the other is closed when its caller drops it. */
#ifndef TIND_LSM_TABLE_CACHE_H
#define TIND_LSM_TABLE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "lsm/cache.h"
#include "lsm/table.h"
#include "lsm/version.h"

typedef struct table_cache table_cache;

/* Keeps at most max_open tables open (besides those readers still hold);
 * tables it opens cache their blocks in block_cache (may be NULL). The block
 * cache must outlive the table cache. NULL when out of memory. */
table_cache *table_cache_new(size_t max_open, cache *block_cache);
/* Closes every table the cache holds (readers' references keep theirs open). */
void table_cache_free(table_cache *tc);

/* Returns in *t the table of meta m in keyspace `space`, opening m->path (of
 * m->size bytes, as the manifest records) on a miss, and records tc and space
 * in m so that m's last unref closes it. The caller holds a reference on m
 * until it has dropped the table's; it owns one reference on the table and
 * drops it with table_unref. A table that cannot be cached for want of
 * memory is still returned. TIND_OK, or table_open's error (TIND_IO_ERROR,
 * TIND_CORRUPTION, TIND_NO_MEMORY), or TIND_INVALID for NULL arguments; *t
 * is NULL on failure. */
int table_cache_get(table_cache *tc, uint64_t space, struct table_meta *m, table **t);

/* Forgets table `number` of `space` (its meta's last reference went);
 * readers holding the table keep it open until they drop it. */
void table_cache_evict(table_cache *tc, uint64_t space, uint64_t number);

/* Tables the cache holds open now (not counting those only readers hold). */
uint64_t table_cache_count(table_cache *tc);

#endif
