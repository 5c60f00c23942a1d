/* A tree's life (open, stop, close), its options, the writes the
 * group-commit leader applies and seals, and its statistics. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "src/tree/internal.h"
#include "src/util/array.h"
#include "src/util/file.h"

static struct tree *tree_alloc(const struct tree_env *env)
{
    struct tree *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->env = *env;
    t->dir = strdup(env->dir);
    t->label = strdup(env->label);
    if (!t->dir || !t->label) {
        free(t->dir);
        free(t->label);
        free(t);
        return NULL;
    }
    t->env.dir = t->dir;
    t->env.label = t->label;
    /* Cannot fail with default attributes on the platforms tind builds on. */
    (void)tmutex_init(&t->mu);
    (void)tmutex_init(&t->edit_mu);
    (void)tcond_init(&t->flush_cond);
    return t;
}

void tree_free(struct tree *t)
{
    if (!t) return;
    if (t->sv) sv_unref(t->sv);
    for (size_t i = 0; i < t->nsealed; i++) memtable_unref(t->sealed[i].mem);
    free(t->sealed);
    manifest_close(t->man);
    free(t->busy);
    tcond_destroy(&t->flush_cond);
    tmutex_destroy(&t->edit_mu);
    tmutex_destroy(&t->mu);
    free(t->dir);
    free(t->label);
    free(t);
}

/* A folder whose MANIFEST is gone while tables remain lost its version:
 * refuse rather than start empty and remove the tables. */
static int tree_check_manifest(const char *dir)
{
    char p[PATH_MAX];
    int rc = file_join(p, sizeof p, dir, MANIFEST_FILE);
    if (rc) return rc;
    int ex = file_exists(p);
    if (ex) return ex < 0 ? ex : TIND_OK;
    char **names;
    size_t n;
    if ((rc = file_list_dir(dir, &names, &n)) != TIND_OK) return rc;
    uint64_t num;
    int tables = 0;
    for (size_t i = 0; i < n; i++) tables |= table_parse_name(names[i], &num);
    free(names);
    if (tables) return err_set(TIND_CORRUPTION, "%s is missing while tables remain in %s", p, dir);
    return TIND_OK;
}

/* A memtable for t, its filter sized at 1/MEMTABLE_FILTER_SHARE of the
 * memtable's budget. */
static memtable *tree_memtable_new(struct tree *t)
{
    return memtable_new((size_t)(atomic_load(&t->memtable_bytes) / TREE_MEMTABLE_FILTER_SHARE));
}

int tree_open(const struct tree_env *env, const tind_keyspace_options *o, int create, struct tree **out)
{
    *out = NULL;
    struct tree *t = tree_alloc(env);
    if (!t) return err_nomem();
    tree_set_options(t, o);
    int rc = tree_check_manifest(t->dir);
    if (rc == TIND_OK)
        rc = env->read_only ? manifest_open_read_only(t->dir, &t->man) : manifest_open_checked(t->dir, create, &t->man);
    memtable *mem = NULL;
    if (rc == TIND_OK) {
        t->flushed_seq = t->settled_seq = manifest_flushed_seq(t->man);
        if (!(mem = tree_memtable_new(t))) rc = err_nomem();
    }
    if (rc == TIND_OK) {
        tmutex_lock(&t->mu);
        rc = sv_build(t, mem, &t->sv);
        if (rc == TIND_OK) {
            t->active = mem;
            struct compaction_config c;
            config_compaction(&t->opts, &c);
            t->pending_bytes = compaction_pending_bytes(&c, t->sv->ver);
        }
        tmutex_unlock(&t->mu);
    }
    memtable_unref(mem); /* the super version holds it */
    if (rc) {
        tree_free(t);
        return rc;
    }
    *out = t;
    return TIND_OK;
}

void tree_stop(struct tree *t)
{
    tmutex_lock(&t->mu);
    atomic_store(&t->stopped, 1);
    tcond_broadcast(&t->flush_cond);
    tmutex_unlock(&t->mu);
}

void tree_wake(struct tree *t)
{
    tmutex_lock(&t->mu);
    tcond_broadcast(&t->flush_cond);
    tmutex_unlock(&t->mu);
}

void tree_quiesce(struct tree *t)
{
    /* A flush in progress finishes (or sees the stop) before the caller
     * removes anything. */
    tmutex_lock(&t->mu);
    while (t->flushing || t->compacting || t->major) tcond_wait(&t->flush_cond, &t->mu);
    struct super_version *sv = t->sv;
    t->sv = NULL;
    tmutex_unlock(&t->mu);
    sv_unref(sv);
}

void tree_close(struct tree *t, int obsolete)
{
    if (obsolete && t->man) {
        struct version *v = manifest_current(t->man);
        version_drop_tables(v);
        version_unref(v);
    }
    manifest_close(t->man); /* with its version, the tables no reader holds go */
    t->man = NULL;
}

void tree_options(struct tree *t, tind_keyspace_options *o)
{
    tmutex_lock(&t->mu);
    *o = t->opts;
    tmutex_unlock(&t->mu);
}

void tree_set_options(struct tree *t, const tind_keyspace_options *o)
{
    /* Flush and compaction jobs read the options under mu. */
    tmutex_lock(&t->mu);
    t->opts = *o;
    tmutex_unlock(&t->mu);
    atomic_store(&t->memtable_bytes, o->memtable_bytes);
    atomic_store(&t->max_sealed, o->max_sealed_memtables);
}

uint64_t tree_flushed_seq(const struct tree *t) { return t->flushed_seq; }

/* ---- the leader's writes ---------------------------------------------------------------- */

int tree_add(struct tree *t, uint64_t seq, unsigned kind, const uint8_t *key, size_t klen, const uint8_t *val,
             size_t vlen, int how)
{
    /* The leader alone changes t->active (tree_seal runs in the leader
     * too, after a parallel group's members have all returned), so reading
     * it here without t->mu is safe. */
    if (how == TREE_ADD_REPLAY && seq <= t->flushed_seq) return TIND_OK;
    if (how == TREE_ADD_CONCURRENT) return memtable_add_concurrent(t->active, seq, kind, key, klen, val, vlen);
    return memtable_add(t->active, seq, kind, key, klen, val, vlen);
}

int tree_full(struct tree *t) { return memtable_bytes(t->active) >= atomic_load(&t->memtable_bytes); }

int tree_seal(struct tree *t, uint64_t last_seq, uint64_t *seal_seq)
{
    *seal_seq = 0;
    /* The leader stops a tree (in the drop's apply) before the drop retires
     * it, so a tree the leader sees running is not retired yet; one it sees
     * stopped may have freed its memtables and closed its manifest already:
     * it is never sealed. */
    if (atomic_load(&t->stopped)) return TIND_OK;
    memtable *old = t->active;
    if (memtable_count(old) == 0) return TIND_OK;
    /* The log must be durable through last_seq before a table holding these
     * writes can be: otherwise a power loss could keep this tree's part of a
     * batch (in the table) and lose another tree's part (in the log's
     * unsynced tail). Every caller runs as the log's leader, after the
     * group's records were appended. */
    int rc = t->env.hooks.sync_log(t->env.hooks.ctx);
    if (rc) return rc;
    memtable *fresh = tree_memtable_new(t);
    if (!fresh) return err_nomem();
    tmutex_lock(&t->mu);
    rc = array_reserve((void **)&t->sealed, t->nsealed, &t->capsealed, sizeof *t->sealed, 4);
    if (rc == TIND_OK) {
        memtable_ref(old);
        t->sealed[t->nsealed++] = (struct sealed_mem){old, last_seq};
        t->active = fresh;
        if ((rc = sv_install(t)) != TIND_OK) {
            /* Undo: the old memtable stays active. */
            t->active = old;
            t->nsealed--;
            memtable_unref(old);
        } else {
            *seal_seq = last_seq;
            /* The memtables peak as one is sealed: full, beside those
             * still waiting for their flush. */
            uint64_t held = 0;
            for (size_t i = 0; i < t->nsealed; i++) held += memtable_bytes(t->sealed[i].mem);
            if (held > t->memtable_peak) t->memtable_peak = held;
            flush_schedule(t);
        }
    }
    tmutex_unlock(&t->mu);
    memtable_unref(fresh); /* the super version holds it */
    return rc;
}

int tree_holds_log_up_to(struct tree *t, uint64_t seq)
{
    tmutex_lock(&t->mu);
    int holds = t->nsealed == 0 && memtable_count(t->active) > 0 && memtable_first_seq(t->active) <= seq;
    tmutex_unlock(&t->mu);
    return holds;
}

uint64_t tree_oldest_unflushed(struct tree *t)
{
    tmutex_lock(&t->mu);
    uint64_t s = UINT64_MAX;
    if (t->nsealed > 0) s = memtable_first_seq(t->sealed[0].mem);
    else if (t->active && memtable_count(t->active) > 0) s = memtable_first_seq(t->active);
    tmutex_unlock(&t->mu);
    return s;
}

/* ---- inspection ------------------------------------------------------------------------- */

void tree_stats(struct tree *t, struct super_version *sv, struct tind_keyspace_stats *st)
{
    st->memtable_bytes = memtable_bytes(sv->mem);
    st->memtable_entries = memtable_count(sv->mem);
    for (size_t i = 0; i < sv->nimm; i++) {
        st->memtable_bytes += memtable_bytes(sv->imm[i]);
        st->memtable_entries += memtable_count(sv->imm[i]);
    }
    st->sealed_memtables = sv->nimm;
    for (unsigned l = 0; l < LSM_LEVELS && l < TIND_LEVELS; l++) {
        st->tables[l] = sv->ver->nfiles[l];
        st->table_bytes[l] = sv->ver->level_bytes[l];
    }
    tmutex_lock(&t->mu);
    st->flushes = t->flushes;
    st->memtable_peak_bytes = t->memtable_peak;
    st->flushed_sequence = t->flushed_seq;
    st->compactions = t->compactions;
    st->compaction_bytes_read = t->compact_read;
    st->compaction_bytes_written = t->compact_written;
    st->compaction_micros = t->compact_ns / 1000;
    for (unsigned l = 0; l < LSM_LEVELS && l < TIND_LEVELS; l++) {
        st->level_compactions[l] = t->level_compactions[l];
        st->level_bytes_read[l] = t->level_read[l];
        st->level_bytes_written[l] = t->level_written[l];
    }
    st->flushed_bytes = t->flushed_bytes;
    st->write_amplification =
        t->flushed_bytes ? (double)(t->flushed_bytes + t->compact_written) / (double)t->flushed_bytes : 0.0;
    st->stalls = t->stalls;
    st->slowdowns = t->slowdowns;
    st->stall_micros = t->stall_ns / 1000;
    st->pending_compaction_bytes = t->pending_bytes;
    tmutex_unlock(&t->mu);
}

void tree_compaction_counts(struct tree *t, uint64_t *active, uint64_t *completed)
{
    tmutex_lock(&t->mu);
    *active = t->compacting + (t->major ? 1u : 0u);
    *completed = t->compactions;
    tmutex_unlock(&t->mu);
}

int tree_verify_manifest(struct tree *t, struct manifest_verify_stats *ms, struct version **ver)
{
    tmutex_lock(&t->edit_mu);
    int rc = manifest_verify(t->man, ms);
    *ver = manifest_current(t->man);
    tmutex_unlock(&t->edit_mu);
    return rc;
}
