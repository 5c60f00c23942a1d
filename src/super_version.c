/* Super versions: what one read of a keyspace sees (see db.h), and opening
 * a keyspace's tree (its manifest) at load or creation. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "compaction/compaction.h"
#include "src/db.h"
#include "src/ks_options.h"
#include "src/util/err.h"
#include "src/util/file.h"

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

int ks_acquire_sv(tind_keyspace *ks, struct super_version **out)
{
    pthread_mutex_lock(&ks->mu);
    struct super_version *sv = ks->sv;
    if (atomic_load(&ks->dropped) || !sv) {
        pthread_mutex_unlock(&ks->mu);
        return err_set(TIND_INVALID, "keyspace %s was dropped", ks->name);
    }
    sv_ref(sv);
    pthread_mutex_unlock(&ks->mu);
    *out = sv;
    return TIND_OK;
}

/* Builds a super version over mem, the sealed list and the manifest's version. */
static int sv_build(tind_keyspace *ks, memtable *mem, struct super_version **out)
{
    struct super_version *sv = calloc(1, sizeof *sv);
    if (!sv) return err_nomem();
    if (ks->nsealed && !(sv->imm = malloc(ks->nsealed * sizeof *sv->imm))) {
        free(sv);
        return err_nomem();
    }
    atomic_init(&sv->refs, 1);
    sv->mem = mem;
    memtable_ref(mem);
    for (size_t i = 0; i < ks->nsealed; i++) {
        sv->imm[i] = ks->sealed[ks->nsealed - 1 - i].mem; /* newest first */
        memtable_ref(sv->imm[i]);
    }
    sv->nimm = ks->nsealed;
    sv->ver = manifest_current(ks->man);
    *out = sv;
    return TIND_OK;
}

/* How far compaction is behind in sv's version. Caller holds ks->mu. */
static uint64_t sv_pending_bytes(const tind_keyspace *ks, const struct super_version *sv)
{
    struct compaction_config c;
    ks_options_compaction_config(&ks->opts, &c);
    return compaction_pending_bytes(&c, sv->ver);
}

int ks_install_sv(tind_keyspace *ks)
{
    struct super_version *sv, *old = ks->sv;
    int rc = sv_build(ks, ks->active, &sv);
    if (rc) return rc;
    ks->sv = sv;
    if (!old || old->ver != sv->ver) ks->ver_gen++;
    ks->pending_bytes = sv_pending_bytes(ks, sv);
    sv_unref(old);
    return TIND_OK;
}

int ks_open_tree(tind_keyspace *ks, int create)
{
    /* A folder whose MANIFEST is gone while tables remain lost its version:
     * refuse rather than start empty and remove the tables. */
    char p[PATH_MAX];
    int rc = file_join(p, sizeof p, ks->dir, MANIFEST_FILE);
    if (rc) return rc;
    int ex = file_exists(p);
    if (ex < 0) return ex;
    if (!ex) {
        char **names;
        size_t n;
        if ((rc = file_list_dir(ks->dir, &names, &n)) != TIND_OK) return rc;
        uint64_t num;
        int tables = 0;
        for (size_t i = 0; i < n; i++) tables |= table_parse_name(names[i], &num);
        free(names);
        if (tables) return err_set(TIND_CORRUPTION, "%s is missing while tables remain in %s", p, ks->dir);
    }
    rc = ks->db->opts.read_only ? manifest_open_read_only(ks->dir, &ks->man)
                                : manifest_open_checked(ks->dir, create, &ks->man);
    if (rc) return rc;
    ks->flushed_seq = ks->settled_seq = manifest_flushed_seq(ks->man);
    memtable *mem = memtable_new();
    if (!mem) return err_nomem();
    rc = sv_build(ks, mem, &ks->sv);
    memtable_unref(mem); /* the super version holds it */
    if (rc == TIND_OK) {
        ks->active = mem;
        ks->pending_bytes = sv_pending_bytes(ks, ks->sv);
    }
    return rc;
}
