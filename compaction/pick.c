/* What the strategies' pickers share (pick.h): config ranges, key ranges,
 * jobs, bottommost, level-0 runs and the major compaction into level 0.
 *
 * A picker reads one immutable version and returns a job holding references
 * on its input metas; it never writes anything. Busy tables (inputs of jobs
 * running now) are never chosen, so jobs that run at once have disjoint
 * inputs; each strategy also keeps the outputs of concurrent jobs apart
 * (see leveled.c). */
#include "compaction/pick.h"

#include <stdlib.h>

#include "lsm/ikey.h"
#include "src/util/array.h"
#include "src/util/err.h"
#include "tind.h"

/* ---- configuration -------------------------------------------------------------- */

int pick_config_ok(const struct compaction_config *c)
{
    return c->l0_trigger >= 1 && c->level_ratio >= 2 && c->table_target_bytes >= 1 && c->tier_width >= 2;
}

/* ---- tables and ranges ------------------------------------------------------------ */

int pick_is_busy(const uint64_t *busy, size_t nbusy, uint64_t number)
{
    /* A handful of running jobs: a scan beats keeping a set. */
    for (size_t i = 0; i < nbusy; i++)
        if (busy[i] == number) return 1;
    return 0;
}

void pick_range_init(struct pick_range *r)
{
    r->lo = r->hi = NULL;
    r->lolen = r->hilen = 0;
    r->set = 0;
}

int pick_range_add(struct pick_range *r, const struct table_meta *m)
{
    int grew = 0;
    if (!r->set || ukey_cmp(m->smallest.p, m->smallest.len, r->lo, r->lolen) < 0) {
        r->lo = m->smallest.p;
        r->lolen = m->smallest.len;
        grew = 1;
    }
    if (!r->set || ukey_cmp(m->largest.p, m->largest.len, r->hi, r->hilen) > 0) {
        r->hi = m->largest.p;
        r->hilen = m->largest.len;
        grew = 1;
    }
    r->set = 1;
    return grew;
}

int pick_range_overlaps(const struct pick_range *r, const struct table_meta *m)
{
    return r->set && ukey_cmp(m->largest.p, m->largest.len, r->lo, r->lolen) >= 0 &&
           ukey_cmp(m->smallest.p, m->smallest.len, r->hi, r->hilen) <= 0;
}

int pick_metas_overlap(const struct table_meta *a, const struct table_meta *b)
{
    return ukey_cmp(a->largest.p, a->largest.len, b->smallest.p, b->smallest.len) >= 0 &&
           ukey_cmp(a->smallest.p, a->smallest.len, b->largest.p, b->largest.len) <= 0;
}

/* ---- jobs --------------------------------------------------------------------------- */

struct compaction_job *pick_job_new(unsigned kind, unsigned out_level, double score)
{
    struct compaction_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    j->out_level = out_level;
    j->score = score;
    return j;
}

int pick_job_add(struct compaction_job *j, size_t *cap, unsigned level, struct table_meta *m)
{
    void *arr = j->inputs;
    if (array_reserve(&arr, j->ninputs, cap, sizeof *j->inputs, 8) != TIND_OK) return err_nomem();
    j->inputs = arr;
    table_meta_ref(m);
    j->inputs[j->ninputs++] = (struct compaction_input){.level = level, .meta = m};
    return TIND_OK;
}

int pick_job_has(const struct compaction_job *j, uint64_t number)
{
    for (size_t i = 0; i < j->ninputs; i++)
        if (j->inputs[i].meta->number == number) return 1;
    return 0;
}

int pick_job_busy(const struct compaction_job *j, const uint64_t *busy, size_t nbusy)
{
    for (size_t i = 0; i < j->ninputs; i++)
        if (pick_is_busy(busy, nbusy, j->inputs[i].meta->number)) return 1;
    return 0;
}

int pick_bottommost(const struct version *v, const struct compaction_job *j)
{
    struct pick_range r;
    pick_range_init(&r);
    for (size_t i = 0; i < j->ninputs; i++) pick_range_add(&r, j->inputs[i].meta);
    if (!r.set) return 1;
    unsigned from = j->out_level;
    if (from == 0) {
        /* Level 0 is newest first: what follows the first input is older. */
        size_t i = 0;
        while (i < v->nfiles[0] && !pick_job_has(j, v->files[0][i]->number)) i++;
        for (; i < v->nfiles[0]; i++) {
            const struct table_meta *m = v->files[0][i];
            if (!pick_job_has(j, m->number) && pick_range_overlaps(&r, m)) return 0;
        }
        from = 1;
    }
    for (unsigned l = from; l < LSM_LEVELS; l++) {
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            const struct table_meta *m = v->files[l][i];
            if (pick_range_overlaps(&r, m) && !pick_job_has(j, m->number)) return 0;
        }
    }
    return 1;
}

/* ---- runs of level 0 ---------------------------------------------------------------- */

int pick_l0_runs(const struct version *v, struct pick_run **runs, size_t *nruns)
{
    *runs = NULL;
    *nruns = 0;
    size_t n = v->nfiles[0];
    if (n == 0) return TIND_OK;
    struct pick_run *r = malloc(n * sizeof *r);
    if (!r) return err_nomem();
    size_t k = 0;
    uint64_t lo = 0; /* the current run's smallest min_seq */
    for (size_t i = 0; i < n; i++) {
        const struct table_meta *m = v->files[0][i];
        int join = 0;
        if (k > 0) {
            struct pick_run *cur = &r[k - 1];
            join = m->max_seq >= lo;
            if (!join) {
                join = 1;
                for (size_t t = cur->first; t < i && join; t++) join = !pick_metas_overlap(v->files[0][t], m);
            }
        }
        if (join) {
            r[k - 1].n++;
            r[k - 1].bytes += m->size;
            if (m->min_seq < lo) lo = m->min_seq;
        } else {
            r[k++] = (struct pick_run){.first = i, .n = 1, .bytes = m->size};
            lo = m->min_seq;
        }
    }
    *runs = r;
    *nruns = k;
    return TIND_OK;
}

int pick_run_busy(const struct version *v, const struct pick_run *r, const uint64_t *busy, size_t nbusy)
{
    for (size_t i = r->first; i < r->first + r->n; i++)
        if (pick_is_busy(busy, nbusy, v->files[0][i]->number)) return 1;
    return 0;
}

int pick_job_add_runs(struct compaction_job *j, size_t *cap, const struct version *v, const struct pick_run *runs,
                      size_t from, size_t to)
{
    int rc = TIND_OK;
    for (size_t k = from; k < to && rc == TIND_OK; k++)
        for (size_t i = runs[k].first; i < runs[k].first + runs[k].n && rc == TIND_OK; i++)
            rc = pick_job_add(j, cap, 0, v->files[0][i]);
    return rc;
}

/* ---- major compaction into level 0 ----------------------------------------------- */

int pick_all_level0(const struct version *v, int all_levels, struct compaction_job **out)
{
    struct pick_run *runs;
    size_t nruns, deeper = 0;
    int rc = pick_l0_runs(v, &runs, &nruns);
    if (rc) return rc;
    /* Each non-empty deeper level is one sorted run. */
    for (unsigned l = 1; l < LSM_LEVELS && all_levels; l++) deeper += v->nfiles[l] != 0;
    if (nruns + deeper <= 1) {
        free(runs);
        return TIND_OK;
    }
    struct compaction_job *j = pick_job_new(JOB_MERGE, 0, 1.0);
    size_t cap = 0;
    if (!j) rc = err_nomem();
    if (rc == TIND_OK) rc = pick_job_add_runs(j, &cap, v, runs, 0, nruns);
    for (unsigned l = 1; l < LSM_LEVELS && deeper && rc == TIND_OK; l++)
        for (size_t i = 0; i < v->nfiles[l] && rc == TIND_OK; i++) rc = pick_job_add(j, &cap, l, v->files[l][i]);
    free(runs);
    if (rc) {
        compaction_job_free(j);
        return rc;
    }
    j->bottommost = pick_bottommost(v, j);
    *out = j;
    return TIND_OK;
}
