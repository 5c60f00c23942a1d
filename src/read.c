/* Point reads and snapshots. */
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "src/db.h"
#include "src/util/err.h"

/* Reads key as of seq into a fresh copy. */
static int read_at(tind_keyspace *ks, uint64_t seq, const void *key, size_t klen, void **val, size_t *vlen)
{
    memtable *m;
    int rc = ks_acquire_mem(ks, &m);
    if (rc) return rc;
    unsigned kind;
    const uint8_t *v;
    size_t vl;
    if (!memtable_get(m, key, klen, seq, &kind, &v, &vl) || kind == KIND_DELETE) {
        rc = TIND_NOT_FOUND;
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
    memtable_unref(m);
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
    return read_at(ks, db_last_seq(ks->db), key, klen, val, vlen);
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
    return read_at(ks, s->seq, key, klen, val, vlen);
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
