/* Internal iterators for transactions' iterators (src/tx_iter.c). */
#ifndef TIND_SRC_TX_ITER_H
#define TIND_SRC_TX_ITER_H

#include <stdint.h>

#include "lsm/iter.h"
#include "lsm/memtable.h"

/* The newest op numbered <= limit of each key of the buffer m, as one entry
 * with sequence number view. Holds a reference on m. NULL when out of memory. */
iiter *tx_overlay_iter(memtable *m, uint64_t limit, uint64_t view);

/* src without the entries newer than max_seq. Owns src (destroyed on failure too). */
iiter *seq_filter_iter(iiter *src, uint64_t max_seq);

#endif
