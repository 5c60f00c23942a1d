/* Flushes: writing a tree's sealed memtables as level-0 tables on the
 * worker pool and recording them in its manifest.
 *
 * Order: a tree's sealed memtables are flushed one at a time, oldest first
 * (one flush job per tree at a time), so its flushed sequence number only
 * grows and recovery can skip every write at or below it. */
#include <stdlib.h>
#include <string.h>

#include "src/tree/internal.h"

/* Writes mem as a level-0 table and records it, with flushed_seq = seal_seq,
 * in the manifest. Runs on a worker without t->mu; returns TIND_OK holding
 * t->edit_mu (the caller switches the super version, then releases it).
 * TRY_ACQUIRE: the analysis checks that callers release edit_mu after
 * TIND_OK only; it does not check this body against the promise. */
static int flush_write(struct tree *t, memtable *mem, uint64_t seal_seq, uint64_t *flushed_size)
    TRY_ACQUIRE(TIND_OK, t->edit_mu)
{
    uint64_t number = manifest_new_file_number(t->man);
    struct table_meta *meta = table_meta_new(t->dir, number);
    if (!meta) return err_nomem();
    struct table_options to;
    tmutex_lock(&t->mu);
    config_table(&t->opts, 0, &to);
    tmutex_unlock(&t->mu);
    table_writer *w;
    int rc = table_writer_open(meta->path, &to, &w);
    if (rc) {
        table_meta_unref(meta);
        return rc;
    }
    iiter *it = memtable_iter(mem);
    if (!it) {
        table_writer_abandon(w);
        table_meta_unref(meta);
        return err_nomem();
    }
    for (iiter_seek_first(it); it->valid && rc == TIND_OK; iiter_next(it))
        rc = table_writer_add(w, it->key, it->klen, it->tag, it->val, it->vlen);
    if (rc == TIND_OK) rc = iiter_status(it);
    iiter_destroy(it);
    if (rc) {
        table_writer_abandon(w);
        table_meta_unref(meta);
        return rc;
    }
    struct table_props props;
    table_props_init(&props);
    uint64_t size;
    if ((rc = table_writer_finish(w, &props, &size)) != TIND_OK) {
        table_meta_unref(meta);
        return rc;
    }
    *flushed_size = size;
    rc = table_meta_set_props(meta, &props, size);
    table_props_free(&props);
    struct version_edit e;
    version_edit_init(&e);
    e.has_flushed_seq = 1;
    e.flushed_seq = seal_seq;
    e.has_next_file = 1;
    e.next_file = number + 1;
    if (rc == TIND_OK) rc = version_edit_add(&e, 0, meta);
    if (rc == TIND_OK) {
        /* The super version switch follows under edit_mu too (flush_job). */
        tmutex_lock(&t->edit_mu);
        rc = manifest_apply(t->man, &e);
        if (rc) {
            tree_manifest_failed(t, rc);
            tmutex_unlock(&t->edit_mu);
        }
    }
    version_edit_free(&e);
    if (rc == TIND_INVALID || rc == TIND_POISONED) {
        /* The edit never reached the manifest: the file goes with the meta.
         * After any other failure the record may be on disk; the file stays,
         * and the next open keeps or removes it as the manifest says. */
        atomic_store(&meta->obsolete, 1);
    }
    table_meta_unref(meta);
    return rc;
}

static void flush_job(void *arg)
{
    struct tree *t = arg;
    tmutex_lock(&t->mu);
    for (;;) {
        if (atomic_load(&t->stopped) || t->nsealed == 0 || t->flush_error) break;
        struct sealed_mem s = t->sealed[0];
        tmutex_unlock(&t->mu);
        /* On success flush_write returns holding edit_mu: the new version and
         * the super version switch to it together. */
        uint64_t flushed_size = 0;
        int rc = flush_write(t, s.mem, s.seal_seq, &flushed_size);
        tmutex_lock(&t->mu);
        if (rc) {
            tree_job_failed(t, &t->flush_error, t->flush_errmsg, sizeof t->flush_errmsg, rc, "flush");
            break;
        }
        memmove(t->sealed, t->sealed + 1, (t->nsealed - 1) * sizeof *t->sealed);
        t->nsealed--;
        t->flushes++;
        t->flushed_seq = s.seal_seq;
        t->flushed_bytes += flushed_size;
        /* On failure the old super version stays: it still holds the
         * memtable, so reads see the same data twice, never lose it. */
        sv_install(t);
        compact_schedule(t);
        tmutex_unlock(&t->mu);
        tmutex_unlock(&t->edit_mu);
        memtable_unref(s.mem);
        /* Before waking the waiters: a finished tree_flush_wait finds what
         * the flush made unnecessary in the log already gone. */
        t->env.hooks.flushed(t->env.hooks.ctx);
        tmutex_lock(&t->mu);
        t->settled_seq = s.seal_seq;
        tcond_broadcast(&t->flush_cond);
    }
    t->flushing = 0;
    tcond_broadcast(&t->flush_cond);
    tmutex_unlock(&t->mu);
}

static void flush_cancel(void *arg)
{
    struct tree *t = arg;
    tmutex_lock(&t->mu);
    t->flushing = 0;
    tcond_broadcast(&t->flush_cond);
    tmutex_unlock(&t->mu);
}

void flush_schedule(struct tree *t)
{
    tmutex_assert_held(&t->mu);
    if (t->flushing || t->nsealed == 0 || t->flush_error || atomic_load(&t->stopped)) return;
    t->flushing = 1;
    int rc = workers_submit(t->env.pool, WORK_FLUSH, flush_job, flush_cancel, t);
    if (rc) {
        t->flushing = 0;
        tree_job_failed(t, &t->flush_error, t->flush_errmsg, sizeof t->flush_errmsg, rc, "flush");
        tcond_broadcast(&t->flush_cond);
    }
}

int tree_flush_wait(struct tree *t, uint64_t seal_seq)
{
    int rc = TIND_OK;
    tmutex_lock(&t->mu);
    uint64_t target = seal_seq;
    if (!target && t->nsealed) target = t->sealed[t->nsealed - 1].seal_seq;
    /* settled_seq, not flushed_seq: the caller finds what the flush freed
     * in the log already gone. */
    while (target && t->settled_seq < target && !t->flush_error && !atomic_load(&t->stopped))
        tcond_wait(&t->flush_cond, &t->mu);
    if (target && t->settled_seq < target)
        rc = t->flush_error ? err_set(t->flush_error, "%s", t->flush_errmsg) : tree_stopped_error(t);
    tmutex_unlock(&t->mu);
    return rc;
}
