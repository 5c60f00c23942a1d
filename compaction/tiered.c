/* Size-tiered compaction.
 *
 * Every sorted run lives in level 0, newest first: a flush is a run of one
 * table, a merge writes one run of possibly several key-disjoint tables
 * back into level 0, where its max_seq keeps it behind every newer run.
 * Runs are found from the tables alone (pick_l0_runs in pick.h has the rule
 * and why it is sound).
 *
 * Tiers. Runs are of a similar size when the largest of them is at most
 * twice the smallest; sizes below table_target_bytes / 4 count as that
 * floor, so small flushes (an explicit flush of a nearly empty memtable)
 * still gather instead of each being a class of its own. Once tier_width or
 * more runs of a similar size sit next to each other in recency, they merge
 * into one run (about tier_width times larger: the next tier). Only a
 * contiguous stretch is ever merged: the output takes the stretch's place in
 * the newest-first order, and a run left out from the middle would end up
 * behind newer data it should hide, or in front of older data it should not.
 * The longest stretch relative to tier_width goes first (score = runs /
 * tier_width), the newest on a tie; runs with a busy table are never part of
 * a stretch. The merge is bottommost when no older level-0 table (nor any
 * table of a deeper level) meets its key range: always when the stretch
 * includes the oldest run.
 *
 * Costs. Each byte is rewritten about once per tier it climbs:
 * log_W(data / flush size) times for W = tier_width, against about
 * level_ratio / 2 times per level for leveled, so writes are much cheaper.
 * Reads pay for it: a tree holds up to W - 1 runs per tier (W or more while
 * a merge waits), so a point read may look at W x log_W(data / flush) runs
 * instead of one table per level. Bloom filters keep the misses cheap (about
 * the false positive rate per run), but a key in an old run is found only
 * after every newer run that covers its range was probed, and a range scan
 * merges every run whose range meets it. Space: obsolete versions live on
 * until the runs holding them merge; with keys overwritten uniformly each run
 * of a tier may hold a whole copy of the live data, so space amplification
 * can approach W while a tier fills (and about 2 when the largest run is
 * merged with a tier as large), against about 1.1 for leveled. A merge also
 * needs room for its output beside its inputs: the last merge of the largest
 * tier temporarily needs as much free space again as the data. Deleted
 * data leaves the disk only when its tombstone reaches a bottommost merge
 * (the oldest run), or on a major compaction (tind_keyspace_compact). */
#include <stdlib.h>

#include "compaction/pick.h"
#include "compaction/strategy.h"
#include "src/util/err.h"
#include "tind.h"

static int tiered_pick(const struct compaction_config *c, const struct version *v, const uint64_t *busy,
                       size_t nbusy, uint64_t now, struct compaction_job **out)
{
    (void)now;
    struct pick_run *runs;
    size_t nruns;
    int rc = pick_l0_runs(v, &runs, &nruns);
    if (rc || nruns == 0) return rc;
    unsigned width = c->tier_width;
    uint64_t floor = c->table_target_bytes / 4;
    unsigned char *busy_run = malloc(nruns);
    if (!busy_run) {
        free(runs);
        return err_nomem();
    }
    for (size_t k = 0; k < nruns; k++) busy_run[k] = (unsigned char)pick_run_busy(v, &runs[k], busy, nbusy);
    size_t best_from = 0, best_to = 0;
    for (size_t i = 0; i < nruns; i++) {
        if (busy_run[i]) continue;
        uint64_t mn = runs[i].bytes < floor ? floor : runs[i].bytes, mx = mn;
        size_t j = i + 1;
        for (; j < nruns && !busy_run[j]; j++) {
            uint64_t e = runs[j].bytes < floor ? floor : runs[j].bytes;
            uint64_t nmn = e < mn ? e : mn, nmx = e > mx ? e : mx;
            if (nmx / 2 > nmn || (nmx / 2 == nmn && nmx % 2)) break; /* nmx > 2 * nmn, without overflow */
            mn = nmn;
            mx = nmx;
        }
        if (j - i >= width && j - i > best_to - best_from) {
            best_from = i;
            best_to = j;
        }
    }
    free(busy_run);
    if (best_to == best_from) {
        free(runs);
        return TIND_OK;
    }
    struct compaction_job *job = pick_job_new(JOB_MERGE, 0, (double)(best_to - best_from) / width);
    size_t cap = 0;
    if (!job) rc = err_nomem();
    if (rc == TIND_OK) rc = pick_job_add_runs(job, &cap, v, runs, best_from, best_to);
    free(runs);
    if (rc) {
        compaction_job_free(job);
        return rc;
    }
    job->bottommost = pick_bottommost(v, job);
    *out = job;
    return TIND_OK;
}

/* A major compaction: every run, and any table of a deeper level, into one
 * run of level 0. */
static int tiered_pick_all(const struct compaction_config *c, const struct version *v, struct compaction_job **out)
{
    (void)c;
    return pick_all_level0(v, 1, out);
}

/* Every level-0 table beyond one tier's width is waiting for a merge. */
static uint64_t tiered_pending_bytes(const struct compaction_config *c, const struct version *v)
{
    uint64_t pending = 0;
    size_t width = c->tier_width;
    if (v->nfiles[0] > width)
        for (size_t i = width; i < v->nfiles[0]; i++) pending += v->files[0][i]->size;
    return pending;
}

const struct compaction_strategy_ops tiered_strategy = {
    .name = "tiered",
    .pick = tiered_pick,
    .pick_all = tiered_pick_all,
    .pending_bytes = tiered_pending_bytes,
};
