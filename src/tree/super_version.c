/* Super versions: what one read of a tree sees (tree.h). */
#include <stdlib.h>

#include "src/tree/internal.h"

void sv_ref(struct super_version *sv) { atomic_fetch_add_explicit(&sv->refs, 1, memory_order_relaxed); }

void sv_unref(struct super_version *sv)
{
    if (!sv || atomic_fetch_sub_explicit(&sv->refs, 1, memory_order_acq_rel) != 1) return;
    memtable_unref(sv->mem);
    for (size_t i = 0; i < sv->nimm; i++) memtable_unref(sv->imm[i]);
    free(sv->imm);
    version_unref(sv->ver);
    free(sv);
}

int sv_acquire(struct tree *t, struct super_version **out)
{
    tmutex_lock(&t->mu);
    struct super_version *sv = t->sv;
    if (atomic_load(&t->stopped) || !sv) {
        tmutex_unlock(&t->mu);
        return tree_stopped_error(t);
    }
    sv_ref(sv);
    tmutex_unlock(&t->mu);
    *out = sv;
    return TIND_OK;
}

int sv_build(struct tree *t, memtable *mem, struct super_version **out)
{
    tmutex_assert_held(&t->mu);
    struct super_version *sv = calloc(1, sizeof *sv);
    if (!sv) return err_nomem();
    if (t->nsealed && !(sv->imm = malloc(t->nsealed * sizeof *sv->imm))) {
        free(sv);
        return err_nomem();
    }
    atomic_init(&sv->refs, 1);
    sv->mem = mem;
    memtable_ref(mem);
    for (size_t i = 0; i < t->nsealed; i++) {
        sv->imm[i] = t->sealed[t->nsealed - 1 - i].mem; /* newest first */
        memtable_ref(sv->imm[i]);
    }
    sv->nimm = t->nsealed;
    sv->ver = manifest_current(t->man);
    *out = sv;
    return TIND_OK;
}

/* How far compaction is behind in sv's version. Caller holds t->mu. */
static uint64_t sv_pending_bytes(const struct tree *t, const struct super_version *sv) REQUIRES(t->mu)
{
    struct compaction_config c;
    config_compaction(&t->opts, &c);
    return compaction_pending_bytes(&c, sv->ver);
}

int sv_install(struct tree *t)
{
    tmutex_assert_held(&t->mu);
    struct super_version *sv, *old = t->sv;
    int rc = sv_build(t, t->active, &sv);
    if (rc) return rc;
    t->sv = sv;
    if (!old || old->ver != sv->ver) t->ver_gen++;
    t->pending_bytes = sv_pending_bytes(t, sv);
    sv_unref(old);
    return TIND_OK;
}
