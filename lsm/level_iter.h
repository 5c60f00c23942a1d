/* The level iterator: one internal iterator over the tables of one level >= 1
 * (sorted by smallest key, disjoint user-key ranges), opened lazily.
 *
 * It holds at most one table open at a time and opens a table only when a
 * move reaches it: a seek picks its table by binary search on the tables'
 * largest keys (seek_for_prev: on their smallest keys), and next/prev step
 * into the neighbouring table when the current one runs out. So a short scan
 * or a seek costs one table open, not one per table of the level.
 *
 * Lifetimes: `files` (and the metas it points to) and the table cache must
 * outlive the iterator; the caller keeps them alive with a version reference.
 * The iterator holds a reference on the table it is in (through its table
 * iterator), never on a table cache entry.
 *
 * A table that cannot be opened or read makes the iterator invalid with that
 * error in status() until the next seek; no table is skipped silently. */
#ifndef TIND_LSM_LEVEL_ITER_H
#define TIND_LSM_LEVEL_ITER_H

#include <stddef.h>
#include <stdint.h>

#include "lsm/iter.h"
#include "lsm/table_cache.h"
#include "lsm/version.h"

/* An iterator over files[0..n) of keyspace `space` in tc. n may be 0 (an
 * iterator that is never valid). NULL when out of memory. */
iiter *level_iter_new(table_cache *tc, uint64_t space, struct table_meta *const *files, size_t n);

#endif
