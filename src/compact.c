/* Compactions: picking work with the keyspace's strategy (compaction/),
 * running it on the worker pool after the flushes, installing its edit, and
 * tind_keyspace_compact.
 *
 * A keyspace runs at most max(1, workers - 1) compaction jobs at once (one
 * worker stays free for flushes); each job picks with the tables of the
 * others marked busy, so their inputs and outputs never meet. Manifest edits
 * and the super version switch after each are serialized by edit_mu. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compaction/compaction.h"
#include "src/db.h"
#include "src/ks_options.h"
#include "src/util/array.h"
#include "src/util/err.h"

/* The strategy's configuration under the keyspace's options now. */
static void ks_compaction_config(tind_keyspace *ks, struct compaction_config *c)
{
    pthread_mutex_lock(&ks->mu);
    ks_options_compaction_config(&ks->opts, c);
    pthread_mutex_unlock(&ks->mu);
}

/* The live snapshots' sequence numbers, ascending (the list is kept in
 * opening order, which is sequence order). */
static int db_snapshot_seqs(tind_db *db, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    int rc = TIND_OK;
    pthread_mutex_lock(&db->snap_mu);
    for (struct tind_snapshot *s = db->snaps.next; s != &db->snaps && rc == TIND_OK; s = s->next) {
        if ((rc = array_reserve((void **)out, *n, &cap, sizeof **out, 8)) == TIND_OK) (*out)[(*n)++] = s->seq;
    }
    pthread_mutex_unlock(&db->snap_mu);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* Removes one occurrence of num from the busy list. Caller holds ks->mu. */
static void busy_mark_one(tind_keyspace *ks, uint64_t num)
{
    for (size_t i = 0; i < ks->nbusy; i++) {
        if (ks->busy[i] != num) continue;
        ks->busy[i] = ks->busy[--ks->nbusy];
        return;
    }
}

/* Marks (add) or unmarks the job's inputs as busy. Caller holds ks->mu. */
static int busy_mark(tind_keyspace *ks, const struct compaction_job *job, int add)
{
    for (size_t i = 0; i < job->ninputs; i++) {
        uint64_t num = job->inputs[i].meta->number;
        if (add) {
            int rc = array_reserve((void **)&ks->busy, ks->nbusy, &ks->capbusy, sizeof *ks->busy, 16);
            if (rc) {
                while (i-- > 0) busy_mark_one(ks, job->inputs[i].meta->number);
                return rc;
            }
            ks->busy[ks->nbusy++] = num;
        } else {
            busy_mark_one(ks, num);
        }
    }
    return TIND_OK;
}

/* Does the job and installs its edit. Caller holds no lock. */
static int compact_do(tind_keyspace *ks, const struct compaction_job *job, const struct compaction_config *cfg)
{
    tind_db *db = ks->db;
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
        uint64_t last_seq = db_last_seq(db);
        uint64_t *snaps;
        size_t nsnaps;
        if ((rc = db_snapshot_seqs(db, &snaps, &nsnaps)) != TIND_OK) return rc;
        struct compaction_env env = {
            .dir = ks->dir,
            .man = ks->man,
            .tables = db->tables,
            .space = ks->id,
            .snapshots = snaps,
            .nsnapshots = nsnaps,
            .last_seq = last_seq,
            /* A drop does not wait for a long merge: it stops at its next entry. */
            .stop = {&db->closing, &ks->dropped},
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
        pthread_mutex_lock(&ks->edit_mu);
        rc = manifest_apply(ks->man, &e);
        if (rc) ks_manifest_failed(ks, rc);
        if (rc == TIND_OK) {
            pthread_mutex_lock(&ks->mu);
            ks_install_sv(ks);
            ks->compactions++;
            ks->compact_read += st.bytes_read;
            ks->compact_written += st.bytes_written;
            ks->compact_ns += st.micros * 1000;
            ks->level_compactions[job->out_level]++;
            ks->level_read[job->out_level] += st.bytes_read;
            ks->level_written[job->out_level] += st.bytes_written;
            pthread_mutex_unlock(&ks->mu);
        }
        pthread_mutex_unlock(&ks->edit_mu);
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

/* Caller holds ks->mu. */
static void compact_failed(tind_keyspace *ks, int rc)
{
    ks_background_failed(ks, &ks->compact_error, ks->compact_errmsg, sizeof ks->compact_errmsg, rc, "compaction");
}

static void compact_job(void *arg)
{
    tind_keyspace *ks = arg;
    tind_db *db = ks->db;
    struct compaction_config cfg;
    pthread_mutex_lock(&ks->mu);
    while (!atomic_load(&ks->dropped) && !ks->major && !ks->compact_error && !atomic_load(&db->closing)) {
        uint64_t *busy = NULL;
        size_t nbusy = ks->nbusy;
        uint64_t gen = ks->ver_gen;
        if (nbusy && (busy = malloc(nbusy * sizeof *busy)) != NULL) memcpy(busy, ks->busy, nbusy * sizeof *busy);
        pthread_mutex_unlock(&ks->mu);
        ks_compaction_config(ks, &cfg);
        struct version *v = manifest_current(ks->man);
        struct compaction_job *job = NULL;
        int rc = busy || !nbusy ? compaction_pick(&cfg, v, busy, nbusy, (uint64_t)time(NULL), &job) : err_nomem();
        version_unref(v);
        free(busy);
        pthread_mutex_lock(&ks->mu);
        if (rc || !job) {
            if (rc) compact_failed(ks, rc);
            /* A version installed meanwhile (a flush whose compact_schedule
             * found this job running) may have work: pick again. */
            if (!rc && ks->ver_gen != gen) continue;
            /* Nothing to do in this version: a stall behind level 0 or
             * pending bytes would wait for nothing (stall_cause). */
            if (!rc) ks->idle_gen = gen + 1;
            break;
        }
        if ((rc = busy_mark(ks, job, 1)) != TIND_OK) {
            compact_failed(ks, rc);
            compaction_job_free(job);
            break;
        }
        pthread_mutex_unlock(&ks->mu);
        rc = compact_do(ks, job, &cfg);
        pthread_mutex_lock(&ks->mu);
        busy_mark(ks, job, 0);
        compaction_job_free(job);
        pthread_cond_broadcast(&ks->flush_cond);
        /* TIND_BUSY: stopped by close. TIND_INVALID: the edit met a change
         * made meanwhile; the next pick sees it. Anything else stops the
         * keyspace's compactions. */
        if (rc == TIND_BUSY) break;
        if (rc == TIND_INVALID) continue;
        if (rc) {
            compact_failed(ks, rc);
            break;
        }
    }
    ks->compacting--;
    pthread_cond_broadcast(&ks->flush_cond);
    pthread_mutex_unlock(&ks->mu);
}

static void compact_cancel(void *arg)
{
    tind_keyspace *ks = arg;
    pthread_mutex_lock(&ks->mu);
    ks->compacting--;
    pthread_cond_broadcast(&ks->flush_cond);
    pthread_mutex_unlock(&ks->mu);
}

void compact_schedule(tind_keyspace *ks)
{
    unsigned n = workers_count(ks->db->pool);
    unsigned max = n > 1 ? n - 1 : 1;
    if (atomic_load(&ks->dropped) || ks->major || ks->compact_error || ks->compacting >= max ||
        atomic_load(&ks->db->closing))
        return;
    ks->compacting++;
    int rc = workers_submit(ks->db->pool, WORK_COMPACT, compact_job, compact_cancel, ks);
    if (rc != TIND_OK) {
        ks->compacting--;
        /* Recorded like a failed compaction: writers stalled on level 0
         * would otherwise wait for a job that never comes. */
        if (!atomic_load(&ks->db->closing)) {
            compact_failed(ks, rc);
            pthread_cond_broadcast(&ks->flush_cond);
        }
    }
}

int tind_keyspace_compact(tind_keyspace *ks)
{
    err_clear();
    int rc = db_check_keyspace(ks);
    if (rc || (rc = db_check_writable(ks->db)) != TIND_OK) return rc;
    if ((rc = tind_keyspace_flush(ks)) != TIND_OK) return rc;
    /* Take the tree: no new picks, and the running jobs finish first. A
     * drop waits for the holder to give it back before it closes the
     * manifest, so a caller woken by the drop must not take the tree (and
     * then give back the one another caller still holds). */
    pthread_mutex_lock(&ks->mu);
    while (ks->major && !atomic_load(&ks->dropped)) pthread_cond_wait(&ks->flush_cond, &ks->mu);
    if (atomic_load(&ks->dropped)) {
        pthread_mutex_unlock(&ks->mu);
        return err_set(TIND_INVALID, "keyspace %s was dropped", ks->name);
    }
    ks->major = 1;
    while (ks->compacting > 0 && !atomic_load(&ks->dropped)) pthread_cond_wait(&ks->flush_cond, &ks->mu);
    int dropped = atomic_load(&ks->dropped);
    /* A background compaction that failed stopped the others: say so
     * rather than compact over it. */
    if (!dropped && ks->compact_error) rc = err_set(ks->compact_error, "%s", ks->compact_errmsg);
    pthread_mutex_unlock(&ks->mu);
    if (dropped) rc = err_set(TIND_INVALID, "keyspace %s was dropped", ks->name);

    struct compaction_config cfg;
    struct compaction_job *job = NULL;
    if (rc == TIND_OK) ks_compaction_config(ks, &cfg);
    /* Due drops first (FIFO): what has expired or overflows must not be
     * merged into a table that would carry it on. */
    while (rc == TIND_OK) {
        struct version *v = manifest_current(ks->man);
        rc = compaction_pick(&cfg, v, NULL, 0, (uint64_t)time(NULL), &job);
        version_unref(v);
        if (rc || !job || job->kind != JOB_DROP) break;
        rc = compact_do(ks, job, &cfg);
        compaction_job_free(job);
        job = NULL;
    }
    if (job) {
        compaction_job_free(job);
        job = NULL;
    }
    if (rc == TIND_OK) {
        struct version *v = manifest_current(ks->man);
        rc = compaction_pick_all(&cfg, v, &job);
        version_unref(v);
    }
    if (rc == TIND_OK && job) {
        pthread_mutex_lock(&ks->mu);
        rc = busy_mark(ks, job, 1);
        pthread_mutex_unlock(&ks->mu);
        if (rc == TIND_OK) {
            rc = compact_do(ks, job, &cfg);
            pthread_mutex_lock(&ks->mu);
            busy_mark(ks, job, 0);
            pthread_mutex_unlock(&ks->mu);
        }
        compaction_job_free(job);
    }
    /* A merge stopped by a drop (TIND_BUSY from compact_do) is reported as the drop. */
    if (rc == TIND_BUSY && atomic_load(&ks->dropped)) rc = err_set(TIND_INVALID, "keyspace %s was dropped", ks->name);
    pthread_mutex_lock(&ks->mu);
    ks->major = 0;
    compact_schedule(ks);
    pthread_cond_broadcast(&ks->flush_cond);
    pthread_mutex_unlock(&ks->mu);
    return rc;
}
