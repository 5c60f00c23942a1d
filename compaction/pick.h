/* Helpers shared by the strategies' pickers (pick.c); internal to
 * compaction/. The strategies (strategy.h) use them; they use no strategy. Nothing here does I/O or takes a lock: a picker reads one
 * immutable version that its caller holds a reference on. */
#ifndef TIND_COMPACTION_PICK_H
#define TIND_COMPACTION_PICK_H

#include <stddef.h>
#include <stdint.h>

#include "compaction/compaction.h"

/* 1 when c's knobs are in the ranges struct compaction_config states, which
 * the pickers rely on (no division by zero, no ratio that never shrinks).
 * compaction_pick and compaction_pick_all refuse any other config. */
int pick_config_ok(const struct compaction_config *c);

/* 1 when number is in busy[0..nbusy). */
int pick_is_busy(const uint64_t *busy, size_t nbusy, uint64_t number);

/* A user-key range [lo, hi], grown table by table; empty until the first. */
struct pick_range {
    const uint8_t *lo, *hi;
    size_t lolen, hilen;
    int set;
};
void pick_range_init(struct pick_range *r);
/* Grows r to cover m; 1 when it grew. */
int pick_range_add(struct pick_range *r, const struct table_meta *m);
/* 1 when m's user keys meet r (both ends inclusive). */
int pick_range_overlaps(const struct pick_range *r, const struct table_meta *m);
/* 1 when the user-key ranges of a and b meet. */
int pick_metas_overlap(const struct table_meta *a, const struct table_meta *b);

/* A job with no inputs yet; NULL when out of memory. */
struct compaction_job *pick_job_new(unsigned kind, unsigned out_level, double score);
/* Appends an input (the job takes a reference); *cap tracks the inputs'
 * allocation (start it at 0). TIND_OK or TIND_NO_MEMORY. */
int pick_job_add(struct compaction_job *j, size_t *cap, unsigned level, struct table_meta *m);
/* 1 when the job already holds table `number`. */
int pick_job_has(const struct compaction_job *j, uint64_t number);
/* 1 when any input of j is busy. */
int pick_job_busy(const struct compaction_job *j, const uint64_t *busy, size_t nbusy);

/* Whether j's output is bottommost: no table outside the inputs that may
 * hold older data of the inputs' key range. For out_level >= 1 that is
 * every table of out_level and below; for out_level 0 (a merge of a stretch
 * of level 0 back into level 0) it is every level-0 table after the first
 * input (older than it) and every table of levels >= 1. Newer level-0 tables
 * never count: they hide the output, they do not hide under it. */
int pick_bottommost(const struct version *v, const struct compaction_job *j);

/* Sorted runs of level 0: tables files[0][first .. first+n), newest first.
 *
 * The rule, walking level 0 newest first (descending max_seq): a table
 * joins the current run when its seq range reaches into the run's
 * (max_seq >= the run's smallest min_seq so far), or when its key range
 * meets no table of the run; otherwise it starts a new run.
 *
 * Why it is sound: a merge writes one run whose tables have disjoint key
 * ranges and seq ranges inside the interval of its inputs; the inputs were a
 * contiguous stretch in recency, so no other table's seq range falls inside
 * that interval. Such a run is never split (its tables are key-disjoint,
 * and nothing foreign sits between them in max_seq order), and a table whose
 * seq range interleaves with a run's is always glued to it, so the runs the
 * rule finds have pairwise disjoint seq intervals, and any contiguous stretch
 * of them is a unit that can be merged back into level 0 without changing
 * which version of a key a reader finds first. Gluing key-disjoint tables
 * (flushes of sequential keys, say) into one run costs nothing in reads
 * (one key is in at most one of them) and saves rewriting data that no
 * merge would shrink. */
struct pick_run {
    size_t first, n;
    uint64_t bytes;
};
/* *runs (malloc'd; free it) gets the runs of v's level 0, newest first;
 * *nruns = 0 and *runs = NULL when level 0 is empty. TIND_OK or
 * TIND_NO_MEMORY. */
int pick_l0_runs(const struct version *v, struct pick_run **runs, size_t *nruns);
/* 1 when a table of the run is busy. */
int pick_run_busy(const struct version *v, const struct pick_run *r, const uint64_t *busy, size_t nbusy);
/* Appends the tables of runs[from .. to) (level 0) to j. */
int pick_job_add_runs(struct compaction_job *j, size_t *cap, const struct version *v, const struct pick_run *runs,
                      size_t from, size_t to);

/* A major compaction into level 0: every run of level 0 (and, when
 * all_levels, every table of the deeper levels) merged into one run of
 * level 0; *out = NULL when that is one run already. Tiered's and FIFO's
 * pick_all. */
int pick_all_level0(const struct version *v, int all_levels, struct compaction_job **out);

/* Leveled's dynamic level targets (leveled.c): target[l] in bytes for
 * levels 1 .. bottom-1 (0: no target, the level should be empty), *bottom
 * the last non-empty level (LSM_LEVELS-1 when every level >= 1 is empty),
 * *base the first level with a target (the bottom when none has). Exposed
 * for the tests. */
void leveled_targets(const struct compaction_config *c, const struct version *v, uint64_t target[LSM_LEVELS],
                     unsigned *bottom, unsigned *base);

#endif
