/* What the files of src/tree/ share among themselves; the layer above uses
 * tree.h only. Each function is defined in the file its section names. */
#ifndef TIND_SRC_TREE_INTERNAL_H
#define TIND_SRC_TREE_INTERNAL_H

#include <stdio.h>

#include "compaction/compaction.h"
#include "lsm/table.h"
#include "src/tree/tree.h"
#include "src/util/err.h"

/* A memtable's filter takes 1/TREE_MEMTABLE_FILTER_SHARE of its budget
 * (memtable_bytes): 1 MiB for the default 64 MiB. */
#define TREE_MEMTABLE_FILTER_SHARE 64

/* ---- src/tree/super_version.c ---- */
/* Builds a super version over mem, the sealed list and the manifest's
 * version. Caller holds t->mu. */
int sv_build(struct tree *t, memtable *mem, struct super_version **out) REQUIRES(t->mu);
/* Replaces t->sv with one built from the current memtables, sealed list and
 * the manifest's version, and refreshes ver_gen and pending_bytes. Caller
 * holds t->mu. TIND_NO_MEMORY leaves the old one. */
int sv_install(struct tree *t) REQUIRES(t->mu);

/* ---- src/tree/config.c: what the layers below get of the options ---- */
/* How tables of `level` are written under o (levels past the last use the last's). */
void config_table(const tind_keyspace_options *o, unsigned level, struct table_options *to);
/* The strategy's whole configuration under o (compaction/ has no defaults of
 * its own: every field comes from checked options). */
void config_compaction(const tind_keyspace_options *o, struct compaction_config *c);

/* ---- src/tree/flush.c ---- */
/* Queues a flush job unless one is queued or running. Caller holds t->mu. */
void flush_schedule(struct tree *t) REQUIRES(t->mu);

/* ---- src/tree/compact.c ---- */
/* Queues a compaction job when one may run. Caller holds t->mu. */
void compact_schedule(struct tree *t) REQUIRES(t->mu);

/* Records a failed background job: *err = rc (the first failure stays) and
 * msg = "<what> of <label> failed: <this thread's message>". Caller holds t->mu. */
static inline void tree_job_failed(struct tree *t, int *err, char *msg, size_t cap, int rc, const char *what)
    REQUIRES(t->mu)
{
    if (*err) return;
    snprintf(msg, cap, "%s of %s failed: %s", what, t->label, err_msg());
    *err = rc;
}

/* After manifest_apply failed with rc (this thread's message): when the
 * failure poisoned the manifest, the layer above stops writes. Caller holds
 * t->edit_mu. */
static inline void tree_manifest_failed(struct tree *t, int rc) REQUIRES(t->edit_mu)
{
    if (manifest_poisoned(t->man)) t->env.hooks.manifest_failed(t->env.hooks.ctx, rc);
}

/* TIND_INVALID naming the stopped tree. */
static inline int tree_stopped_error(const struct tree *t) { return err_set(TIND_INVALID, "%s was dropped", t->label); }

#endif
