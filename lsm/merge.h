/* The merging iterator: one sorted view over several internal iterators.
 *
 * It moves lazily in both directions with a binary heap of the children
 * (a min-heap going forward, a max-heap going backward); changing direction
 * repositions the other children around the current key. When several
 * children hold equal internal keys (which tind never produces: sequence
 * numbers are unique), the child with the lower index comes first.
 * Children are given newest source first. */
#ifndef TIND_LSM_MERGE_H
#define TIND_LSM_MERGE_H

#include <stddef.h>

#include "lsm/iter.h"

/* Takes ownership of the n children (and destroys them when destroyed, or at
 * once on failure). NULL when out of memory. */
iiter *merge_iter_new(iiter **children, size_t n);

#endif
