/* Compactions: picking work with the tree's strategy (compaction/),
 * running it on the worker pool after the flushes, installing its edit, and
 * the major compaction (tree_compact_all).
 *
 * A tree runs at most max(1, workers - 1) compaction jobs at once (one
 * worker stays free for flushes); each job picks with the tables of the
 * others marked busy, so their inputs and outputs never meet. Manifest edits
 * and the super version switch after each are serialized by edit_mu. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/tree/internal.h"
#include "src/util/array.h"

/* The strategy's configuration under the tree's options now. */
static void compact_config(struct tree *t, struct compaction_config *c) EXCLUDES(t->mu)
{
    tmutex_lock(&t->mu);
    config_compaction(&t->opts, c);
    tmutex_unlock(&t->mu);
}

/* Removes one occurrence of num from the busy list. Caller holds t->mu. */
static void busy_mark_one(struct tree *t, uint64_t num) REQUIRES(t->mu)
{
    for (size_t i = 0; i < t->nbusy; i++) {
        if (t->busy[i] != num) continue;
        t->busy[i] = t->busy[--t->nbusy];
        return;
    }
}

/* Marks (add) or unmarks the job's inputs as busy. Caller holds t->mu. */
static int busy_mark(struct tree *t, const struct compaction_job *job, int add) REQUIRES(t->mu)
{
    tmutex_assert_held(&t->mu);
    for (size_t i = 0; i < job->ninputs; i++) {
        uint64_t num = job->inputs[i].meta->number;
        if (add) {
            int rc = array_reserve((void **)&t->busy, t->nbusy, &t->capbusy, sizeof *t->busy, 16);
            if (rc) {
                while (i-- > 0) busy_mark_one(t, job->inputs[i].meta->number);
                return rc;
            }
            t->busy[t->nbusy++] = num;
        } else {
            busy_mark_one(t, num);
        }
    }
    return TIND_OK;
}

/* Does the job and installs its edit. Caller holds no lock. */
static int compact_do(struct tree *t, const struct compaction_job *job, const struct compaction_config *cfg)
    EXCLUDES(t->mu, t->edit_mu)
{
    struct version_edit e;
    version_edit_init(&e);
    struct compaction_stats st;
    memset(&st, 0, sizeof st);
    int rc = TIND_OK;
    if (job->kind == JOB_MERGE) {
        /* The published number first, the snapshots after: a snapshot left
         * out of the list was opened later, at a number at or above
         * last_seq, and sees what a reader at last_seq sees or versions
         * above it, which the compactor keeps. (The other order misses a
         * snapshot opened in between below last_seq, whose version a newer
         * one at or below last_seq would hide.) */
        uint64_t last_seq = t->env.hooks.last_seq(t->env.hooks.ctx);
        uint64_t *snaps;
        size_t nsnaps;
        if ((rc = t->env.hooks.snapshots(t->env.hooks.ctx, &snaps, &nsnaps)) != TIND_OK) return rc;
        struct compaction_env env = {
            .dir = t->dir,
            .man = t->man,
            .tables = t->env.tables,
            .space = t->env.space,
            .snapshots = snaps,
            .nsnapshots = nsnaps,
            .last_seq = last_seq,
            /* A stop (a drop) does not wait for a long merge: it stops at its next entry. */
            .stop = {t->env.closing, &t->stopped},
            .topts = &cfg->table[job->out_level],
            .target_bytes = cfg->table_target_bytes,
        };
        rc = compaction_run(job, &env, &e, &st);
        free(snaps);
    } else {
        for (size_t i = 0; i < job->ninputs && rc == TIND_OK; i++) {
            rc = version_edit_del(&e, job->inputs[i].level, job->inputs[i].meta->number);
            if (rc == TIND_OK && job->kind == JOB_MOVE) rc = version_edit_add(&e, job->out_level, job->inputs[i].meta);
        }
    }
    if (rc == TIND_OK) {
        tmutex_lock(&t->edit_mu);
        rc = manifest_apply(t->man, &e);
        if (rc) tree_manifest_failed(t, rc);
        if (rc == TIND_OK) {
            tmutex_lock(&t->mu);
            sv_install(t);
            t->compactions++;
            t->compact_read += st.bytes_read;
            t->compact_written += st.bytes_written;
            t->compact_ns += st.micros * 1000;
            t->level_compactions[job->out_level]++;
            t->level_read[job->out_level] += st.bytes_read;
            t->level_written[job->out_level] += st.bytes_written;
            tmutex_unlock(&t->mu);
        }
        tmutex_unlock(&t->edit_mu);
        if (rc == TIND_INVALID || rc == TIND_POISONED) {
            /* The edit never reached the manifest: its outputs go. */
            for (size_t i = 0; i < e.nadds; i++)
                if (job->kind == JOB_MERGE) atomic_store(&e.adds[i].meta->obsolete, 1);
        }
    }
    /* The inputs left every new version; each closes, and its file goes, with
     * the last reference to its meta (this job's, the old versions', a
     * reader's), not here: a reader of an older version may still open it. */
    version_edit_free(&e);
    return rc;
}

/* Caller holds t->mu. */
static void compact_failed(struct tree *t, int rc) REQUIRES(t->mu)
{
    tree_job_failed(t, &t->compact_error, t->compact_errmsg, sizeof t->compact_errmsg, rc, "compaction");
}

static void compact_job(void *arg)
{
    struct tree *t = arg;
    struct compaction_config cfg;
    tmutex_lock(&t->mu);
    while (!atomic_load(&t->stopped) && !t->major && !t->compact_error && !atomic_load(t->env.closing)) {
        uint64_t *busy = NULL;
        size_t nbusy = t->nbusy;
        uint64_t gen = t->ver_gen;
        if (nbusy && (busy = malloc(nbusy * sizeof *busy)) != NULL) memcpy(busy, t->busy, nbusy * sizeof *busy);
        tmutex_unlock(&t->mu);
        compact_config(t, &cfg);
        struct version *v = manifest_current(t->man);
        struct compaction_job *job = NULL;
        int rc = busy || !nbusy ? compaction_pick(&cfg, v, busy, nbusy, (uint64_t)time(NULL), &job) : err_nomem();
        version_unref(v);
        free(busy);
        tmutex_lock(&t->mu);
        if (rc || !job) {
            if (rc) compact_failed(t, rc);
            /* A version installed meanwhile (a flush whose compact_schedule
             * found this job running) may have work: pick again. */
            if (!rc && t->ver_gen != gen) continue;
            /* Nothing to do in this version: a stall behind level 0 or
             * pending bytes would wait for nothing (stall_cause). */
            if (!rc) t->idle_gen = gen + 1;
            break;
        }
        if ((rc = busy_mark(t, job, 1)) != TIND_OK) {
            compact_failed(t, rc);
            compaction_job_free(job);
            break;
        }
        tmutex_unlock(&t->mu);
        rc = compact_do(t, job, &cfg);
        tmutex_lock(&t->mu);
        busy_mark(t, job, 0);
        compaction_job_free(job);
        tcond_broadcast(&t->flush_cond);
        /* TIND_BUSY: stopped by close. TIND_INVALID: the edit met a change
         * made meanwhile; the next pick sees it. Anything else stops the
         * tree's compactions. */
        if (rc == TIND_BUSY) break;
        if (rc == TIND_INVALID) continue;
        if (rc) {
            compact_failed(t, rc);
            break;
        }
    }
    t->compacting--;
    tcond_broadcast(&t->flush_cond);
    tmutex_unlock(&t->mu);
}

static void compact_cancel(void *arg)
{
    struct tree *t = arg;
    tmutex_lock(&t->mu);
    t->compacting--;
    tcond_broadcast(&t->flush_cond);
    tmutex_unlock(&t->mu);
}

void compact_schedule(struct tree *t)
{
    tmutex_assert_held(&t->mu);
    unsigned n = workers_count(t->env.pool);
    unsigned max = n > 1 ? n - 1 : 1;
    if (atomic_load(&t->stopped) || t->major || t->compact_error || t->compacting >= max ||
        atomic_load(t->env.closing))
        return;
    t->compacting++;
    int rc = workers_submit(t->env.pool, WORK_COMPACT, compact_job, compact_cancel, t);
    if (rc != TIND_OK) {
        t->compacting--;
        /* Recorded like a failed compaction: writers stalled on level 0
         * would otherwise wait for a job that never comes. */
        if (!atomic_load(t->env.closing)) {
            compact_failed(t, rc);
            tcond_broadcast(&t->flush_cond);
        }
    }
}

int tree_compact_all(struct tree *t)
{
    int rc = TIND_OK;
    /* Take the tree: no new picks, and the running jobs finish first. A
     * stop waits for the holder to give it back before it closes the
     * manifest, so a caller woken by the stop must not take the tree (and
     * then give back the one another caller still holds). */
    tmutex_lock(&t->mu);
    while (t->major && !atomic_load(&t->stopped)) tcond_wait(&t->flush_cond, &t->mu);
    if (atomic_load(&t->stopped)) {
        tmutex_unlock(&t->mu);
        return tree_stopped_error(t);
    }
    t->major = 1;
    while (t->compacting > 0 && !atomic_load(&t->stopped)) tcond_wait(&t->flush_cond, &t->mu);
    int stopped = atomic_load(&t->stopped);
    /* A background compaction that failed stopped the others: say so
     * rather than compact over it. */
    if (!stopped && t->compact_error) rc = err_set(t->compact_error, "%s", t->compact_errmsg);
    tmutex_unlock(&t->mu);
    if (stopped) rc = tree_stopped_error(t);

    struct compaction_config cfg;
    struct compaction_job *job = NULL;
    if (rc == TIND_OK) compact_config(t, &cfg);
    /* Due drops first (FIFO): what has expired or overflows must not be
     * merged into a table that would carry it on. */
    while (rc == TIND_OK) {
        struct version *v = manifest_current(t->man);
        rc = compaction_pick(&cfg, v, NULL, 0, (uint64_t)time(NULL), &job);
        version_unref(v);
        if (rc || !job || job->kind != JOB_DROP) break;
        rc = compact_do(t, job, &cfg);
        compaction_job_free(job);
        job = NULL;
    }
    if (job) {
        compaction_job_free(job);
        job = NULL;
    }
    if (rc == TIND_OK) {
        struct version *v = manifest_current(t->man);
        rc = compaction_pick_all(&cfg, v, &job);
        version_unref(v);
    }
    if (rc == TIND_OK && job) {
        tmutex_lock(&t->mu);
        rc = busy_mark(t, job, 1);
        tmutex_unlock(&t->mu);
        if (rc == TIND_OK) {
            rc = compact_do(t, job, &cfg);
            tmutex_lock(&t->mu);
            busy_mark(t, job, 0);
            tmutex_unlock(&t->mu);
        }
        compaction_job_free(job);
    }
    /* A merge stopped by tree_stop (TIND_BUSY from compact_do) is reported as the stop. */
    if (rc == TIND_BUSY && atomic_load(&t->stopped)) rc = tree_stopped_error(t);
    tmutex_lock(&t->mu);
    t->major = 0;
    compact_schedule(t);
    tcond_broadcast(&t->flush_cond);
    tmutex_unlock(&t->mu);
    return rc;
}
