/* FIFO compaction: for logs, metrics and caches, where old data simply
 * goes.
 *
 * Drops (JOB_DROP, inputs deleted whole, nothing rewritten):
 *   - every table whose created time is more than fifo_ttl_seconds before
 *     now. created is when the table was written, which stands in for the
 *     time of its newest entry; 0 (unknown: written before tind recorded
 *     it) never expires;
 *   - then, while the keyspace's bytes (every level) minus those drops are
 *     past fifo_max_bytes, the oldest tables (smallest max_seq, then the
 *     lower number), oldest first. The walk stops at a busy table: dropping
 *     newer data while older data stays would turn FIFO upside down, so it
 *     waits for the job holding it.
 * Busy tables are never dropped. Drops go before merges and every due drop
 * is in one job.
 *
 * Merges: flushes of small memtables leave many small tables, each a run
 * that reads must probe. Once l0_trigger or more runs of level 0, each under
 * table_target_bytes / 4 and none busy, sit next to each other in recency,
 * the oldest of them (as many as fit in table_target_bytes, at least two)
 * merge into one run in level 0 (JOB_MERGE, out_level 0); contiguous for the
 * reason tiered.c gives. Larger tables are never rewritten. */
#include <stdlib.h>

#include "compaction/pick.h"
#include "compaction/strategy.h"
#include "src/util/err.h"
#include "tind.h"

struct fifo_table {
    unsigned level;
    struct table_meta *meta;
    int drop;
};

static int fifo_cmp_oldest(const void *a, const void *b)
{
    const struct table_meta *x = ((const struct fifo_table *)a)->meta, *y = ((const struct fifo_table *)b)->meta;
    if (x->max_seq != y->max_seq) return x->max_seq < y->max_seq ? -1 : 1;
    return x->number < y->number ? -1 : x->number > y->number;
}

static int fifo_pick_drops(const struct compaction_config *c, const struct version *v, const uint64_t *busy,
                           size_t nbusy, uint64_t now, struct compaction_job **out)
{
    size_t n = 0, ndrop = 0;
    uint64_t total = 0;
    for (unsigned l = 0; l < LSM_LEVELS; l++) {
        n += v->nfiles[l];
        total += v->level_bytes[l];
    }
    int over = c->fifo_max_bytes && total > c->fifo_max_bytes;
    if (n == 0 || (!over && !c->fifo_ttl_seconds)) return TIND_OK;
    struct fifo_table *t = malloc(n * sizeof *t);
    if (!t) return err_nomem();
    size_t k = 0;
    for (unsigned l = 0; l < LSM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++) t[k++] = (struct fifo_table){l, v->files[l][i], 0};
    qsort(t, n, sizeof *t, fifo_cmp_oldest);
    uint64_t left = total;
    for (size_t i = 0; i < n && c->fifo_ttl_seconds; i++) {
        const struct table_meta *m = t[i].meta;
        if (m->created && now > m->created && now - m->created > c->fifo_ttl_seconds &&
            !pick_is_busy(busy, nbusy, m->number)) {
            t[i].drop = 1;
            left -= m->size;
            ndrop++;
        }
    }
    for (size_t i = 0; i < n && c->fifo_max_bytes && left > c->fifo_max_bytes; i++) {
        if (t[i].drop) continue;
        if (pick_is_busy(busy, nbusy, t[i].meta->number)) break;
        t[i].drop = 1;
        left -= t[i].meta->size;
        ndrop++;
    }
    int rc = TIND_OK;
    if (ndrop) {
        double score = over ? (double)total / (double)c->fifo_max_bytes : 1.0;
        struct compaction_job *j = pick_job_new(JOB_DROP, 0, score);
        size_t cap = 0;
        if (!j) rc = err_nomem();
        for (size_t i = 0; i < n && rc == TIND_OK; i++)
            if (t[i].drop) rc = pick_job_add(j, &cap, t[i].level, t[i].meta);
        if (rc) compaction_job_free(j);
        else *out = j;
    }
    free(t);
    return rc;
}

static int fifo_pick_merge(const struct compaction_config *c, const struct version *v, const uint64_t *busy,
                           size_t nbusy, struct compaction_job **out)
{
    struct pick_run *runs;
    size_t nruns;
    int rc = pick_l0_runs(v, &runs, &nruns);
    if (rc || nruns == 0) return rc;
    uint64_t target = c->table_target_bytes, small = target / 4;
    size_t trigger = c->l0_trigger < 2 ? 2 : c->l0_trigger; /* merging one run gains nothing */
    unsigned char *ok = malloc(nruns);
    if (!ok) {
        free(runs);
        return err_nomem();
    }
    for (size_t k = 0; k < nruns; k++)
        ok[k] = runs[k].bytes < small && !pick_run_busy(v, &runs[k], busy, nbusy);
    /* Stretches of small runs, oldest first (runs are newest first): the
     * first long enough wins. runs[k .. end) is the stretch looked at. */
    size_t end = nruns, k = nruns;
    for (;;) {
        while (end > 0 && !ok[end - 1]) end--;
        k = end;
        while (k > 0 && ok[k - 1]) k--;
        if (end == 0 || end - k >= trigger) break;
        end = k;
    }
    if (end > 0) {
        /* The oldest runs of the stretch that fit in one target-sized table,
         * at least two. */
        size_t from = end;
        uint64_t bytes = 0;
        while (from > k && (end - from < 2 || bytes + runs[from - 1].bytes <= target)) bytes += runs[--from].bytes;
        struct compaction_job *j = pick_job_new(JOB_MERGE, 0, (double)(end - k) / (double)trigger);
        size_t cap = 0;
        if (!j) rc = err_nomem();
        if (rc == TIND_OK) rc = pick_job_add_runs(j, &cap, v, runs, from, end);
        if (rc) {
            compaction_job_free(j);
        } else {
            j->bottommost = pick_bottommost(v, j);
            *out = j;
        }
    }
    free(ok);
    free(runs);
    return rc;
}

static int fifo_pick(const struct compaction_config *c, const struct version *v, const uint64_t *busy, size_t nbusy,
                     uint64_t now, struct compaction_job **out)
{
    int rc = fifo_pick_drops(c, v, busy, nbusy, now, out);
    if (rc || *out) return rc;
    return fifo_pick_merge(c, v, busy, nbusy, out);
}

/* A major compaction: level 0 into one run; deeper levels are left alone. */
static int fifo_pick_all(const struct compaction_config *c, const struct version *v, struct compaction_job **out)
{
    (void)c;
    return pick_all_level0(v, 0, out);
}

/* FIFO drops and merges small runs as it goes: nothing is ever owed. */
static uint64_t fifo_pending_bytes(const struct compaction_config *c, const struct version *v)
{
    (void)c;
    (void)v;
    return 0;
}

const struct compaction_strategy_ops fifo_strategy = {
    .name = "fifo",
    .pick = fifo_pick,
    .pick_all = fifo_pick_all,
    .pending_bytes = fifo_pending_bytes,
};
