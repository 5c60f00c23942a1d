/* The dispatch of compaction_pick, compaction_pick_all and
 * compaction_pending_bytes (compaction.h) to the strategy a config names
 * (strategy.h), after checking the config's ranges. */
#include "compaction/strategy.h"

#include "compaction/pick.h"
#include "src/util/err.h"
#include "tind.h"

/* Indexed by enum compaction_strategy. */
static const struct compaction_strategy_ops *const strategies[] = {
    [COMPACTION_LEVELED] = &leveled_strategy,
    [COMPACTION_TIERED] = &tiered_strategy,
    [COMPACTION_FIFO] = &fifo_strategy,
};

static const struct compaction_strategy_ops *strategy_of(const struct compaction_config *c)
{
    if (c->strategy >= sizeof strategies / sizeof strategies[0]) return NULL;
    return strategies[c->strategy];
}

/* The strategy c names, after checking c's ranges; NULL with the error
 * recorded in *rc. */
static const struct compaction_strategy_ops *strategy_checked(const struct compaction_config *c, int *rc)
{
    if (!pick_config_ok(c)) {
        *rc = err_set(TIND_INVALID,
                      "compaction: config out of range (l0_trigger %u, level_ratio %u, table_target_bytes %llu, "
                      "tier_width %u)",
                      c->l0_trigger, c->level_ratio, (unsigned long long)c->table_target_bytes, c->tier_width);
        return NULL;
    }
    const struct compaction_strategy_ops *s = strategy_of(c);
    if (!s) *rc = err_set(TIND_INVALID, "compaction: unknown strategy %u", c->strategy);
    return s;
}

int compaction_pick(const struct compaction_config *c, const struct version *v, const uint64_t *busy, size_t nbusy,
                    uint64_t now, struct compaction_job **out)
{
    *out = NULL;
    int rc = TIND_OK;
    const struct compaction_strategy_ops *s = strategy_checked(c, &rc);
    return s ? s->pick(c, v, busy, nbusy, now, out) : rc;
}

int compaction_pick_all(const struct compaction_config *c, const struct version *v, struct compaction_job **out)
{
    *out = NULL;
    int rc = TIND_OK;
    const struct compaction_strategy_ops *s = strategy_checked(c, &rc);
    return s ? s->pick_all(c, v, out) : rc;
}

uint64_t compaction_pending_bytes(const struct compaction_config *c, const struct version *v)
{
    const struct compaction_strategy_ops *s = strategy_of(c);
    /* compaction_pick refuses such a config: nothing will be compacted. */
    if (!s || !pick_config_ok(c)) return 0;
    return s->pending_bytes(c, v);
}
