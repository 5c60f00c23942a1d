/* The interface every compaction strategy implements (leveled.c, tiered.c,
 * fifo.c); internal to compaction/. strategy.c dispatches the public
 * compaction_pick, compaction_pick_all and compaction_pending_bytes
 * (compaction.h) to the strategy a config names, after checking the config's
 * ranges, so a strategy may rely on them. A strategy uses the shared helpers
 * of pick.h and never the dispatch. */
#ifndef TIND_COMPACTION_STRATEGY_H
#define TIND_COMPACTION_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "compaction/compaction.h"

struct compaction_strategy_ops {
    const char *name;
    /* The most urgent job, or *out = NULL (see compaction_pick). *out is
     * NULL on entry. */
    int (*pick)(const struct compaction_config *c, const struct version *v, const uint64_t *busy, size_t nbusy,
                uint64_t now, struct compaction_job **out);
    /* A major compaction, or *out = NULL (see compaction_pick_all). *out is
     * NULL on entry. */
    int (*pick_all)(const struct compaction_config *c, const struct version *v, struct compaction_job **out);
    /* Bytes yet to compact (see compaction_pending_bytes). */
    uint64_t (*pending_bytes)(const struct compaction_config *c, const struct version *v);
};

extern const struct compaction_strategy_ops leveled_strategy; /* COMPACTION_LEVELED */
extern const struct compaction_strategy_ops tiered_strategy;  /* COMPACTION_TIERED */
extern const struct compaction_strategy_ops fifo_strategy;    /* COMPACTION_FIFO */

#endif
