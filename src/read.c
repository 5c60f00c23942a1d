/* Point reads and snapshots. */
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "lsm/table.h"
#include "src/db.h"
#include "src/util/err.h"

/* Looks key up in the tables of v: level 0 newest first (ranges may
 * overlap), then at most one table per deeper level. Sets *found and, when
 * found, *kind and val. */
static int version_get(tind_db *db, uint32_t space, const struct version *v, const uint8_t *key, size_t klen,
                       uint64_t seq, int *found, unsigned *kind, buf *val)
{
    *found = 0;
    for (unsigned l = 0; l < LSM_LEVELS; l++) {
        size_t n = v->nfiles[l];
        struct table_meta **f = v->files[l];
        size_t lo = 0, hi = n;
        if (l > 0) {
            /* The first table whose largest key is >= key. */
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (ukey_cmp(f[mid]->largest.p, f[mid]->largest.len, key, klen) < 0) lo = mid + 1;
                else hi = mid;
            }
            hi = lo < n ? lo + 1 : lo;
        }
        for (size_t i = lo; i < hi; i++) {
            struct table_meta *m = f[i];
            if (ukey_cmp(key, klen, m->smallest.p, m->smallest.len) < 0 ||
                ukey_cmp(key, klen, m->largest.p, m->largest.len) > 0 || m->min_seq > seq)
                continue;
            table *t;
            int rc = table_cache_get(db->tables, space, m, &t);
            if (rc) return rc;
            rc = table_get(t, key, klen, seq, found, kind, val);
            table_unref(t);
            if (rc || *found) return rc;
        }
    }
    return TIND_OK;
}

/* The active memtable, the sealed ones newest first, then the tables; the
 * first version found wins. */
int db_read_at(tind_keyspace *ks, uint64_t seq, const void *key, size_t klen, void **val, size_t *vlen)
{
    struct super_version *sv;
    int rc = ks_acquire_sv(ks, &sv);
    if (rc) return rc;
    /* "Now" is read after the super version is taken: read before, a
     * compaction installed in between could have dropped the version that
     * number sees (only open snapshots are kept), leaving an older one. */
    if (seq == DB_READ_LATEST) seq = db_last_seq(ks->db);
    unsigned kind = KIND_DELETE;
    const uint8_t *v = NULL;
    size_t vl = 0;
    int found = memtable_get(sv->mem, key, klen, seq, &kind, &v, &vl);
    for (size_t i = 0; !found && i < sv->nimm; i++) found = memtable_get(sv->imm[i], key, klen, seq, &kind, &v, &vl);
    buf tv;
    buf_init(&tv);
    if (!found) {
        rc = version_get(ks->db, ks->id, sv->ver, key, klen, seq, &found, &kind, &tv);
        v = tv.p;
        vl = tv.len;
    }
    if (rc == TIND_OK) {
        if (!found || kind == KIND_DELETE) {
            rc = TIND_NOT_FOUND;
        } else if (tv.p && tv.len == vl && v == tv.p) {
            /* The table's copy becomes the caller's. */
            *val = tv.p;
            *vlen = tv.len;
            buf_init(&tv);
        } else {
            uint8_t *copy = malloc(vl ? vl : 1);
            if (!copy) {
                rc = err_nomem();
            } else {
                if (vl) memcpy(copy, v, vl);
                *val = copy;
                *vlen = vl;
            }
        }
    }
    buf_free(&tv);
    sv_unref(sv);
    return rc;
}

static int check_get_args(tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen)
{
    if (!val || !vlen) return err_set(TIND_INVALID, "value out-parameters are NULL");
    *val = NULL;
    *vlen = 0;
    int rc;
    if ((rc = db_check_keyspace(ks)) || (rc = db_check_key(key, klen))) return rc;
    return TIND_OK;
}

int tind_get(tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen)
{
    err_clear();
    int rc = check_get_args(ks, key, klen, val, vlen);
    if (rc) return rc;
    return db_read_at(ks, DB_READ_LATEST, key, klen, val, vlen);
}

void tind_free(void *p) { free(p); }

int tind_snapshot_open(tind_db *db, tind_snapshot **out)
{
    err_clear();
    if (!db || !out) return err_set(TIND_INVALID, "tind_snapshot_open: NULL argument");
    *out = NULL;
    tind_snapshot *s = calloc(1, sizeof *s);
    if (!s) return err_nomem();
    s->db = db;
    pthread_mutex_lock(&db->snap_mu);
    /* Read under snap_mu so that the list stays ordered by sequence number. */
    s->seq = db_last_seq(db);
    s->prev = db->snaps.prev;
    s->next = &db->snaps;
    db->snaps.prev->next = s;
    db->snaps.prev = s;
    pthread_mutex_unlock(&db->snap_mu);
    atomic_fetch_add(&db->nsnaps, 1);
    *out = s;
    return TIND_OK;
}

int tind_snapshot_get(tind_snapshot *s, tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen)
{
    err_clear();
    int rc = check_get_args(ks, key, klen, val, vlen);
    if (rc) return rc;
    if (!s) return err_set(TIND_INVALID, "snapshot is NULL");
    if (s->db != ks->db) return err_set(TIND_INVALID, "the snapshot belongs to another database");
    return db_read_at(ks, s->seq, key, klen, val, vlen);
}

uint64_t tind_snapshot_sequence(const tind_snapshot *s) { return s ? s->seq : 0; }

void tind_snapshot_close(tind_snapshot *s)
{
    if (!s) return;
    tind_db *db = s->db;
    pthread_mutex_lock(&db->snap_mu);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    pthread_mutex_unlock(&db->snap_mu);
    atomic_fetch_sub(&db->nsnaps, 1);
    free(s);
}
