/* Leveled compaction with level targets sized from the bottom up (as
 * RocksDB's level_compaction_dynamic_level_bytes).
 *
 * Shape. The last non-empty level (the bottom) holds most of the data and
 * has no target. Each level above it gets a target level_ratio times smaller
 * than the one below, starting from the bottom's actual size; a level whose
 * target would fall below table_target_bytes gets none and is kept empty,
 * and the first level with a target is the base level, where level 0 goes.
 * So the data always flows into the bottom first (a new tree compacts level
 * 0 straight into the last level), and the base rises as the bottom grows.
 * With the levels above the bottom summing to about 1/(ratio-1) of it, the
 * space amplification stays near 1.11 for ratio 10 (under the 1.2 aim),
 * while each byte is rewritten about once per level it passes, over as few
 * levels as the data needs: the lowest write amplification that keeps that
 * bound (a fixed base would keep half-empty levels and more of them).
 *
 * Scores. Level 0: its tables / l0_trigger. A level with a target: its
 * bytes / target. A non-empty level above the base (left over from when the
 * bottom was larger): 1 + bytes / table_target_bytes, so it drains down.
 * Tables being compacted (busy) count in neither. The highest score >= 1
 * goes first; when its level has nothing that can run now, the next.
 *
 * Choice. Level 0 merges with every level-0 table whose range meets the
 * growing range (older ones must come along: a newer version moved below an
 * older one would be hidden by it) and every overlapping table of its output
 * level, which is the base, or the first non-empty level above the base (a
 * level-0 key must not land below older data). A deeper level compacts the
 * one table that overlaps the fewest bytes of the level below per byte of its
 * own (RocksDB's kMinOverlappingRatio): the cheapest bytes to push down. A
 * table that overlaps nothing below moves down unchanged (JOB_MOVE).
 *
 * Concurrency. A job is never picked with a busy input, or a busy table in
 * its output level that meets its range (every overlapping table of the
 * output level is an input, so that is the same check). Only one level-0
 * job runs at a time: its output's range is the hull of its inputs and
 * could fall between the tables of another. For a deeper level a job's range
 * lies inside the tables it takes, so two jobs with disjoint inputs write
 * disjoint ranges. */
#include <stdlib.h>

#include "compaction/pick.h"
#include "compaction/strategy.h"
#include "lsm/ikey.h"
#include "src/util/err.h"
#include "tind.h"

void leveled_targets(const struct compaction_config *c, const struct version *v, uint64_t target[LSM_LEVELS],
                     unsigned *bottom, unsigned *base)
{
    unsigned b = LSM_LEVELS - 1;
    while (b > 1 && v->nfiles[b] == 0) b--;
    if (v->nfiles[b] == 0) b = LSM_LEVELS - 1;
    uint64_t min = c->table_target_bytes, ratio = c->level_ratio, t = v->level_bytes[b];
    unsigned first = b;
    for (unsigned l = 0; l < LSM_LEVELS; l++) target[l] = 0;
    for (unsigned l = b; l-- > 1;) {
        t /= ratio;
        if (t < min) break;
        target[l] = t;
        first = l;
    }
    *bottom = b;
    *base = first;
}

struct leveled_candidate {
    unsigned level;
    double score;
};

static int leveled_cmp_candidate(const void *a, const void *b)
{
    const struct leveled_candidate *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->level < y->level ? -1 : x->level > y->level;
}

/* Level 0 into out_level: seeds from the oldest table up until one gives a
 * job with nothing busy. */
static int leveled_pick_l0(const struct version *v, unsigned out_level, double score, const uint64_t *busy,
                           size_t nbusy, struct compaction_job **out)
{
    size_t n0 = v->nfiles[0], no = v->nfiles[out_level];
    for (size_t i = 0; i < n0; i++)
        if (pick_is_busy(busy, nbusy, v->files[0][i]->number)) return TIND_OK;
    unsigned char *in0 = malloc(n0 + no + 1), *ino = in0 + n0;
    if (!in0) return err_nomem();
    int rc = TIND_OK;
    for (size_t seed = n0; seed-- > 0;) {
        struct pick_range r;
        pick_range_init(&r);
        for (size_t i = 0; i < n0 + no; i++) in0[i] = 0;
        in0[seed] = 1;
        pick_range_add(&r, v->files[0][seed]);
        /* The closure: every table of level 0 or the output level that
         * meets the range, until the range stops growing. */
        for (int grew = 1; grew;) {
            grew = 0;
            for (size_t i = 0; i < n0; i++)
                if (!in0[i] && pick_range_overlaps(&r, v->files[0][i])) {
                    in0[i] = 1;
                    grew |= pick_range_add(&r, v->files[0][i]);
                }
            for (size_t i = 0; i < no; i++)
                if (!ino[i] && pick_range_overlaps(&r, v->files[out_level][i])) {
                    ino[i] = 1;
                    grew |= pick_range_add(&r, v->files[out_level][i]);
                }
        }
        int blocked = 0;
        size_t k0 = 0, ko = 0;
        for (size_t i = 0; i < n0; i++) k0 += in0[i];
        for (size_t i = 0; i < no; i++)
            if (ino[i]) {
                ko++;
                blocked |= pick_is_busy(busy, nbusy, v->files[out_level][i]->number);
            }
        if (blocked) continue;
        struct compaction_job *j = pick_job_new(k0 == 1 && ko == 0 ? JOB_MOVE : JOB_MERGE, out_level, score);
        size_t cap = 0;
        if (!j) {
            rc = err_nomem();
            break;
        }
        for (size_t i = 0; i < n0 && rc == TIND_OK; i++)
            if (in0[i]) rc = pick_job_add(j, &cap, 0, v->files[0][i]);
        for (size_t i = 0; i < no && rc == TIND_OK; i++)
            if (ino[i]) rc = pick_job_add(j, &cap, out_level, v->files[out_level][i]);
        if (rc) {
            compaction_job_free(j);
            break;
        }
        j->bottommost = pick_bottommost(v, j);
        *out = j;
        break;
    }
    free(in0);
    return rc;
}

/* One table of level s (>= 1) into s + 1: the one with the least overlap
 * below per byte, skipping busy tables and busy overlaps. */
static int leveled_pick_level(const struct version *v, unsigned s, double score, const uint64_t *busy, size_t nbusy,
                              struct compaction_job **out)
{
    unsigned o = s + 1;
    struct table_meta **up = v->files[s], **down = v->files[o];
    size_t nup = v->nfiles[s], ndown = v->nfiles[o];
    size_t best = nup, best_lo = 0, best_hi = 0, lo = 0;
    double best_ratio = 0;
    /* Both levels are sorted and disjoint: the overlapping stretch of the
     * level below only moves right as the table above does. */
    for (size_t i = 0; i < nup; i++) {
        const struct table_meta *t = up[i];
        while (lo < ndown && ukey_cmp(down[lo]->largest.p, down[lo]->largest.len, t->smallest.p, t->smallest.len) < 0)
            lo++;
        size_t hi = lo;
        uint64_t bytes = 0;
        int blocked = pick_is_busy(busy, nbusy, t->number);
        while (hi < ndown && ukey_cmp(down[hi]->smallest.p, down[hi]->smallest.len, t->largest.p, t->largest.len) <= 0) {
            bytes += down[hi]->size;
            blocked |= pick_is_busy(busy, nbusy, down[hi]->number);
            hi++;
        }
        if (blocked) continue;
        double ratio = (double)bytes / (double)(t->size ? t->size : 1);
        if (best == nup || ratio < best_ratio) {
            best = i;
            best_ratio = ratio;
            best_lo = lo;
            best_hi = hi;
        }
    }
    if (best == nup) return TIND_OK;
    struct compaction_job *j = pick_job_new(best_hi == best_lo ? JOB_MOVE : JOB_MERGE, o, score);
    if (!j) return err_nomem();
    size_t cap = 0;
    int rc = pick_job_add(j, &cap, s, up[best]);
    for (size_t i = best_lo; i < best_hi && rc == TIND_OK; i++) rc = pick_job_add(j, &cap, o, down[i]);
    if (rc) {
        compaction_job_free(j);
        return rc;
    }
    j->bottommost = pick_bottommost(v, j);
    *out = j;
    return TIND_OK;
}

static int leveled_pick(const struct compaction_config *c, const struct version *v, const uint64_t *busy,
                        size_t nbusy, uint64_t now, struct compaction_job **out)
{
    (void)now;
    uint64_t target[LSM_LEVELS];
    unsigned bottom, base;
    leveled_targets(c, v, target, &bottom, &base);
    struct leveled_candidate cand[LSM_LEVELS];
    size_t ncand = 0;
    size_t l0 = 0;
    for (size_t i = 0; i < v->nfiles[0]; i++) l0 += !pick_is_busy(busy, nbusy, v->files[0][i]->number);
    if (l0) cand[ncand++] = (struct leveled_candidate){0, (double)l0 / c->l0_trigger};
    for (unsigned l = 1; l < bottom; l++) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < v->nfiles[l]; i++)
            if (!pick_is_busy(busy, nbusy, v->files[l][i]->number)) bytes += v->files[l][i]->size;
        if (bytes == 0) continue;
        double score = target[l] ? (double)bytes / (double)target[l]
                                 : 1.0 + (double)bytes / (double)c->table_target_bytes;
        cand[ncand++] = (struct leveled_candidate){l, score};
    }
    qsort(cand, ncand, sizeof *cand, leveled_cmp_candidate);
    for (size_t k = 0; k < ncand && cand[k].score >= 1.0 && !*out; k++) {
        int rc;
        if (cand[k].level == 0) {
            unsigned o = 1;
            while (o < base && v->nfiles[o] == 0) o++;
            rc = leveled_pick_l0(v, o, cand[k].score, busy, nbusy, out);
        } else {
            rc = leveled_pick_level(v, cand[k].level, cand[k].score, busy, nbusy, out);
        }
        if (rc) return rc;
    }
    return TIND_OK;
}

/* A major compaction: every table into the last level, where tombstones go. */
static int leveled_pick_all(const struct compaction_config *c, const struct version *v, struct compaction_job **out)
{
    (void)c;
    size_t above = 0;
    for (unsigned l = 0; l + 1 < LSM_LEVELS; l++) above += v->nfiles[l];
    /* The last level is one sorted run already: with nothing above it,
     * there is nothing to merge. */
    if (above == 0) return TIND_OK;
    struct compaction_job *j = pick_job_new(JOB_MERGE, LSM_LEVELS - 1, 1.0);
    if (!j) return err_nomem();
    size_t cap = 0;
    int rc = TIND_OK;
    for (unsigned l = 0; l < LSM_LEVELS && rc == TIND_OK; l++)
        for (size_t i = 0; i < v->nfiles[l] && rc == TIND_OK; i++) rc = pick_job_add(j, &cap, l, v->files[l][i]);
    if (rc) {
        compaction_job_free(j);
        return rc;
    }
    j->bottommost = 1;
    *out = j;
    return TIND_OK;
}

/* Level 0 once at its trigger, plus every level's excess over its target. */
static uint64_t leveled_pending_bytes(const struct compaction_config *c, const struct version *v)
{
    uint64_t pending = 0, target[LSM_LEVELS];
    unsigned bottom, base;
    leveled_targets(c, v, target, &bottom, &base);
    if (v->nfiles[0] >= c->l0_trigger) pending += v->level_bytes[0];
    for (unsigned l = 1; l < LSM_LEVELS; l++)
        if (target[l] && v->level_bytes[l] > target[l]) pending += v->level_bytes[l] - target[l];
    return pending;
}

const struct compaction_strategy_ops leveled_strategy = {
    .name = "leveled",
    .pick = leveled_pick,
    .pick_all = leveled_pick_all,
    .pending_bytes = leveled_pending_bytes,
};
