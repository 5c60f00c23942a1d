/* The compactor: runs a merge job (see compaction.h).
 *
 * Visibility. Live snapshots S1 < S2 < ... < Sn cut the sequence numbers
 * into stripes: stripe i (0 <= i < n) holds seq in (S(i-1), Si] (S0 = 0), and
 * the top stripe n holds everything newer than Sn (readers at last_seq). A
 * reader at Si, or at last_seq for the top stripe, sees of each user key the
 * newest version at or below its seq: the newest version of some stripe.
 * So, walking one user key's versions newest first, the first version of
 * each stripe is kept and the rest of that stripe is dropped: a newer version
 * of the same stripe hides them from every reader.
 *
 * Versions newer than last_seq are not published yet (a memtable sealed
 * inside a commit group is flushed, and its table compacted, before the
 * group's sequence number is published): no reader sees them now, a reader
 * at last_seq sees the newest version at or below it, and every one of them
 * may be what some later reader sees. Each is kept, as a stripe of its own,
 * and hides nothing older.
 *
 * Tombstones. Of the versions kept for a user key (newest first):
 *   - a tombstone whose next older kept version is a tombstone too is
 *     dropped: every reader that saw it now sees the older one, which answers
 *     "not found" as well and hides everything older, in the inputs or below;
 *   - when the job is bottommost (nothing older of the key can exist below the
 *     output level), a tombstone that is the oldest kept version is dropped:
 *     readers that saw it now see nothing older, which is the same answer.
 * So a bottommost compaction keeps no tombstone without a put under it, and
 * a tombstone only some snapshot's older put needs stays while it lives. The
 * kept version of stripe 0 being a tombstone is the common case of the
 * second rule (no snapshot older than it needs anything). Anywhere else a
 * tombstone is kept: it hides older versions from some reader.
 *
 * A kept tombstone is therefore held back (pending) until the next kept
 * version of its key, or the next key, decides whether it is written.
 *
 * Outputs. Entries go to output tables in order; an output is finished once
 * it is past target_bytes, but only before the first kept entry of a new
 * user key, so the versions of one user key never span two tables of the
 * output level (a level >= 1 requires it; a point read looks at one table).
 * An output is opened only when there is an entry for it: no empty tables.
 *
 * Inputs. Level-0 inputs (overlapping) each get a table iterator; the
 * inputs of one deeper level, being sorted and disjoint, share one lazy
 * level iterator, so a large compaction keeps few tables open. */
#include "compaction/compaction.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lsm/ikey.h"
#include "lsm/level_iter.h"
#include "lsm/merge.h"
#include "src/util/array.h"
#include "src/util/buf.h"
#include "src/util/err.h"
#include "tind.h"

void compaction_job_free(struct compaction_job *j)
{
    if (!j) return;
    for (size_t i = 0; i < j->ninputs; i++) table_meta_unref(j->inputs[i].meta);
    free(j->inputs);
    free(j);
}

/* One run of compaction_run. */
struct compactor {
    const struct compaction_job *job;
    const struct compaction_env *env;
    struct table_options topts;
    table_writer *w;           /* the open output, or NULL */
    struct table_meta **outs;  /* every output opened so far; the last is w's while w is open */
    size_t nouts, capouts;
    struct compaction_stats st;
    uint64_t created;          /* what outputs record as their time (see compaction_run) */
};

static uint64_t compactor_now_micros(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The stripe of seq: the index of the first snapshot >= seq, or nsnapshots
 * (the top stripe) when every snapshot is older. */
static size_t compactor_stripe(const struct compaction_env *env, uint64_t seq)
{
    size_t lo = 0, hi = env->nsnapshots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (env->snapshots[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int compactor_meta_cmp(const void *a, const void *b)
{
    const struct table_meta *x = *(struct table_meta *const *)a, *y = *(struct table_meta *const *)b;
    return ikey_cmp(x->smallest.p, x->smallest.len, x->smallest_tag, y->smallest.p, y->smallest.len, y->smallest_tag);
}

/* An iterator over one input table; the iterator holds the table. */
static int compactor_table_iter(const struct compaction_env *env, struct table_meta *m, iiter **out)
{
    table *t;
    int rc = table_cache_get(env->tables, env->space, m, &t);
    if (rc != TIND_OK) return rc;
    *out = table_iter(t);
    table_unref(t);
    return *out ? TIND_OK : err_nomem();
}

/* Makes the merged input. sorted (ninputs slots) receives the inputs grouped
 * by level, each deeper level sorted by smallest key; level iterators point
 * into it, so it must outlive *out. */
static int compactor_inputs(const struct compactor *c, struct table_meta **sorted, iiter **out)
{
    const struct compaction_job *job = c->job;
    *out = NULL;
    iiter **children = calloc(job->ninputs, sizeof *children);
    if (!children) return err_nomem();
    size_t nc = 0, base = 0;
    int rc = TIND_OK;
    for (unsigned l = 0; l < LSM_LEVELS && rc == TIND_OK; l++) {
        size_t k = 0;
        for (size_t i = 0; i < job->ninputs; i++)
            if (job->inputs[i].level == l) sorted[base + k++] = job->inputs[i].meta;
        if (k == 0) continue;
        struct table_meta **run = sorted + base;
        base += k;
        int disjoint = 0;
        if (l >= 1 && k > 1) {
            qsort(run, k, sizeof *run, compactor_meta_cmp);
            disjoint = 1;
            for (size_t j = 1; j < k && disjoint; j++)
                disjoint = ukey_cmp(run[j - 1]->largest.p, run[j - 1]->largest.len, run[j]->smallest.p,
                                    run[j]->smallest.len) < 0;
        }
        if (disjoint) {
            if (!(children[nc] = level_iter_new(c->env->tables, c->env->space, run, k))) rc = err_nomem();
            else nc++;
            continue;
        }
        /* Level 0, a single table, or (never expected) overlapping tables in
         * a deeper level: one iterator per table is right in every case. */
        for (size_t j = 0; j < k && rc == TIND_OK; j++)
            if ((rc = compactor_table_iter(c->env, run[j], &children[nc])) == TIND_OK) nc++;
    }
    if (rc != TIND_OK) {
        for (size_t i = 0; i < nc; i++) iiter_destroy(children[i]);
        free(children);
        return rc;
    }
    *out = merge_iter_new(children, nc); /* owns the children from here, even when it fails */
    free(children);
    return *out ? TIND_OK : err_nomem();
}

static int compactor_open_output(struct compactor *c)
{
    int rc = array_reserve((void **)&c->outs, c->nouts, &c->capouts, sizeof *c->outs, 4);
    if (rc != TIND_OK) return rc;
    struct table_meta *m = table_meta_new(c->env->dir, manifest_new_file_number(c->env->man));
    if (!m) return err_nomem();
    if ((rc = table_writer_open(m->path, &c->topts, &c->w)) != TIND_OK) {
        /* Not ours to remove: the file may be someone else's (it existed). */
        table_meta_unref(m);
        return rc;
    }
    c->outs[c->nouts++] = m;
    return TIND_OK;
}

static int compactor_finish_output(struct compactor *c)
{
    struct table_meta *m = c->outs[c->nouts - 1];
    struct table_props props;
    table_props_init(&props);
    uint64_t size = 0;
    table_writer *w = c->w;
    c->w = NULL;
    int rc = table_writer_finish(w, &props, &size);
    if (rc == TIND_OK) {
        rc = table_meta_set_props(m, &props, size);
        m->created = c->created; /* the newest input's, not the rewrite's */
        c->st.bytes_written += size;
        c->st.tables_written++;
    }
    table_props_free(&props);
    return rc;
}

/* Removes every output: the open one is abandoned, finished ones go with
 * their metas (obsolete: the last unref unlinks the file). */
static void compactor_discard_outputs(struct compactor *c)
{
    if (c->w) table_writer_abandon(c->w);
    c->w = NULL;
    for (size_t i = 0; i < c->nouts; i++) {
        atomic_store(&c->outs[i]->obsolete, 1);
        table_meta_unref(c->outs[i]);
    }
    c->nouts = 0;
}

/* Writes one kept entry of the current user key; *key_written says whether
 * the key has an entry in the outputs already. */
static int compactor_emit(struct compactor *c, int *key_written, const uint8_t *key, size_t klen, uint64_t tag,
                          const uint8_t *val, size_t vlen)
{
    int rc;
    if (!*key_written) {
        /* A user-key boundary: the only place an output may end. */
        uint64_t target = c->env->target_bytes;
        if (c->w && target && table_writer_size(c->w) >= target && (rc = compactor_finish_output(c)) != TIND_OK)
            return rc;
        *key_written = 1;
    }
    if (!c->w && (rc = compactor_open_output(c)) != TIND_OK) return rc;
    if ((rc = table_writer_add(c->w, key, klen, tag, val, vlen)) != TIND_OK) return rc;
    c->st.entries_written++;
    return TIND_OK;
}

/* The current key ends with a tombstone pending: nothing older of the key
 * was kept, so it goes when the job is bottommost, else it is written. */
static int compactor_end_key(struct compactor *c, int *key_written, const buf *ukey, uint64_t tag)
{
    if (c->job->bottommost) {
        c->st.entries_dropped++;
        return TIND_OK;
    }
    return compactor_emit(c, key_written, ukey->p, ukey->len, tag, NULL, 0);
}

/* Merges the inputs into outputs. */
static int compactor_merge(struct compactor *c, iiter *it)
{
    const struct compaction_env *env = c->env;
    buf ukey; /* the current user key (the iterator's memory moves on) */
    buf_init(&ukey);
    int have_key = 0, key_written = 0, pending = 0, rc = TIND_OK;
    uint64_t pending_tag = 0; /* the held-back tombstone of ukey, while pending */
    size_t last_stripe = 0;
    for (iiter_seek_first(it); it->valid; iiter_next(it)) {
        if ((env->stop[0] && atomic_load_explicit(env->stop[0], memory_order_relaxed)) ||
            (env->stop[1] && atomic_load_explicit(env->stop[1], memory_order_relaxed))) {
            rc = err_set(TIND_BUSY, "compaction into level %u stopped", c->job->out_level);
            goto done;
        }
        c->st.entries_read++;
        int unpublished = tag_seq(it->tag) > env->last_seq;
        size_t stripe = unpublished ? SIZE_MAX : env->nsnapshots ? compactor_stripe(env, tag_seq(it->tag)) : 0;
        if (!have_key || ukey_cmp(ukey.p, ukey.len, it->key, it->klen) != 0) {
            if (pending && (rc = compactor_end_key(c, &key_written, &ukey, pending_tag)) != TIND_OK) goto done;
            pending = 0;
            buf_clear(&ukey);
            if ((rc = buf_append(&ukey, it->key, it->klen)) != TIND_OK) goto done;
            have_key = 1;
            key_written = 0;
        } else if (stripe == last_stripe && !unpublished) {
            c->st.entries_dropped++; /* hidden by a newer version of its stripe */
            continue;
        }
        last_stripe = stripe;
        if (tag_kind(it->tag) == KIND_DELETE) {
            if (pending) c->st.entries_dropped++; /* the newer tombstone says what this one says */
            pending = 1;
            pending_tag = it->tag;
            continue;
        }
        if (pending) {
            if ((rc = compactor_emit(c, &key_written, ukey.p, ukey.len, pending_tag, NULL, 0)) != TIND_OK) goto done;
            pending = 0;
        }
        if ((rc = compactor_emit(c, &key_written, it->key, it->klen, it->tag, it->val, it->vlen)) != TIND_OK)
            goto done;
    }
    if ((rc = iiter_status(it)) != TIND_OK) goto done;
    if (pending && (rc = compactor_end_key(c, &key_written, &ukey, pending_tag)) != TIND_OK) goto done;
    if (c->w) rc = compactor_finish_output(c);
done:
    buf_free(&ukey);
    return rc;
}

int compaction_run(const struct compaction_job *job, const struct compaction_env *env, struct version_edit *edit,
                   struct compaction_stats *st)
{
    uint64_t start = compactor_now_micros();
    struct compactor c;
    memset(&c, 0, sizeof c);
    c.job = job;
    c.env = env;
    struct table_meta **sorted = NULL;
    iiter *it = NULL;
    int rc = TIND_OK;
    if (!job || !env || !edit || !env->dir || !env->man || !env->tables || (env->nsnapshots && !env->snapshots)) {
        rc = err_set(TIND_INVALID, "compaction_run: NULL argument");
        goto fail;
    }
    if (job->kind != JOB_MERGE || job->ninputs == 0 || job->out_level >= LSM_LEVELS) {
        rc = err_set(TIND_INVALID, "compaction_run: not a merge job (kind %u, %zu inputs, level %u)", job->kind,
                     job->ninputs, job->out_level);
        goto fail;
    }
    for (size_t i = 0; i < job->ninputs; i++) {
        if (job->inputs[i].level >= LSM_LEVELS || !job->inputs[i].meta) {
            rc = err_set(TIND_INVALID, "compaction_run: bad input %zu", i);
            goto fail;
        }
        c.st.bytes_read += job->inputs[i].meta->size;
    }
    /* created stands in for a table's newest entry's time (FIFO's TTL): an
     * output's entries are no newer than its newest input, so it takes the
     * inputs' latest time, not now (which would extend their life); an input
     * of unknown time (0, never expires) makes the outputs unknown too. */
    c.created = job->inputs[0].meta->created;
    for (size_t i = 1; i < job->ninputs && c.created; i++) {
        uint64_t t = job->inputs[i].meta->created;
        c.created = t == 0 ? 0 : t > c.created ? t : c.created;
    }
    if (env->topts) c.topts = *env->topts;
    if (!(sorted = calloc(job->ninputs, sizeof *sorted))) {
        rc = err_nomem();
        goto fail;
    }
    if ((rc = compactor_inputs(&c, sorted, &it)) != TIND_OK) goto fail;
    rc = compactor_merge(&c, it);
    iiter_destroy(it);
    it = NULL;
    if (rc != TIND_OK) goto fail;

    uint64_t next_file = 0;
    for (size_t i = 0; i < job->ninputs && rc == TIND_OK; i++)
        rc = version_edit_del(edit, job->inputs[i].level, job->inputs[i].meta->number);
    for (size_t i = 0; i < c.nouts && rc == TIND_OK; i++) {
        rc = version_edit_add(edit, job->out_level, c.outs[i]);
        if (c.outs[i]->number + 1 > next_file) next_file = c.outs[i]->number + 1;
    }
    if (rc != TIND_OK) goto fail;
    if (c.nouts) {
        edit->has_next_file = 1;
        edit->next_file = next_file;
    }
    for (size_t i = 0; i < c.nouts; i++) table_meta_unref(c.outs[i]); /* the edit holds them */
    free(c.outs);
    free(sorted);
    c.st.micros = compactor_now_micros() - start;
    if (st) *st = c.st;
    return TIND_OK;

fail:
    iiter_destroy(it);
    if (edit) {
        /* First: the edit's references on outputs go, so discarding ours removes the files. */
        version_edit_free(edit);
        version_edit_init(edit);
    }
    compactor_discard_outputs(&c);
    free(c.outs);
    free(sorted);
    c.st.micros = compactor_now_micros() - start;
    if (st) *st = c.st;
    return rc;
}
