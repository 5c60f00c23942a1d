/* Point reads and snapshots. */
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "src/db.h"
#include "src/util/array.h"
#include "src/util/err.h"

int read_at(tind_keyspace *ks, uint64_t seq, const void *key, size_t klen, void **val, size_t *vlen)
{
    struct super_version *sv;
    int rc = sv_acquire(ks->tree, &sv);
    if (rc) return rc;
    /* "Now" is read after the super version is taken: read before, a
     * compaction installed in between could have dropped the version that
     * number sees (only open snapshots are kept), leaving an older one. */
    if (seq == READ_LATEST) seq = db_last_seq(ks->db);
    unsigned kind = KIND_DELETE;
    const uint8_t *v = NULL;
    size_t vl = 0;
    int found;
    buf tv;
    buf_init(&tv);
    rc = tree_get(ks->tree, sv, seq, key, klen, &found, &kind, &v, &vl, &tv);
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
    if ((rc = check_keyspace(ks)) || (rc = check_key(key, klen))) return rc;
    return TIND_OK;
}

int tind_get(tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen)
{
    err_clear();
    int rc = check_get_args(ks, key, klen, val, vlen);
    if (rc) return rc;
    return read_at(ks, READ_LATEST, key, klen, val, vlen);
}

void tind_free(void *p) { free(p); }

/* What a tind_pinned's internal_ holds. */
struct read_pin {
    struct tree_pin tp;
    tind_db *db;
};
_Static_assert(sizeof(struct read_pin) <= sizeof(((tind_pinned *)0)->internal_), "tind_pinned is too small");

static void pinned_clear(tind_pinned *p)
{
    p->data = NULL;
    p->len = 0;
    memset(p->internal_, 0, sizeof p->internal_);
}

int tind_get_pinned(tind_keyspace *ks, const void *key, size_t klen, tind_pinned *out)
{
    err_clear();
    if (!out) return err_set(TIND_INVALID, "tind_get_pinned: out is NULL");
    pinned_clear(out);
    int rc;
    if ((rc = check_keyspace(ks)) || (rc = check_key(key, klen))) return rc;
    struct super_version *sv;
    if ((rc = sv_acquire(ks->tree, &sv)) != TIND_OK) return rc;
    uint64_t seq = db_last_seq(ks->db); /* after the super version: see read_at */
    struct read_pin rp = {.db = ks->db};
    unsigned kind = KIND_DELETE;
    const uint8_t *v = NULL;
    size_t vl = 0;
    int found = 0;
    rc = tree_get_pinned(ks->tree, sv, seq, key, klen, &found, &kind, &v, &vl, &rp.tp);
    sv_unref(sv);
    if (rc == TIND_OK && (!found || kind == KIND_DELETE)) rc = TIND_NOT_FOUND;
    if (rc != TIND_OK) {
        tree_pin_release(&rp.tp);
        return rc;
    }
    atomic_fetch_add(&ks->db->npins, 1);
    out->data = v;
    out->len = vl;
    memcpy(out->internal_, &rp, sizeof rp);
    return TIND_OK;
}

void tind_pinned_release(tind_pinned *p)
{
    if (!p) return;
    struct read_pin rp;
    memcpy(&rp, p->internal_, sizeof rp);
    if (rp.db) {
        tree_pin_release(&rp.tp);
        atomic_fetch_sub(&rp.db->npins, 1);
    }
    pinned_clear(p);
}

int tind_snapshot_open(tind_db *db, tind_snapshot **out)
{
    err_clear();
    if (!db || !out) return err_set(TIND_INVALID, "tind_snapshot_open: NULL argument");
    *out = NULL;
    tind_snapshot *s = calloc(1, sizeof *s);
    if (!s) return err_nomem();
    s->db = db;
    tmutex_lock(&db->snap_mu);
    /* Read under snap_mu so that the list stays ordered by sequence number. */
    s->seq = db_last_seq(db);
    s->prev = db->snaps.prev;
    s->next = &db->snaps;
    db->snaps.prev->next = s;
    db->snaps.prev = s;
    tmutex_unlock(&db->snap_mu);
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
    tmutex_lock(&db->snap_mu);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    tmutex_unlock(&db->snap_mu);
    atomic_fetch_sub(&db->nsnaps, 1);
    free(s);
}

int read_snapshot_seqs(tind_db *db, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    int rc = TIND_OK;
    tmutex_lock(&db->snap_mu);
    for (struct tind_snapshot *s = db->snaps.next; s != &db->snaps && rc == TIND_OK; s = s->next) {
        if ((rc = array_reserve((void **)out, *n, &cap, sizeof **out, 8)) == TIND_OK) (*out)[(*n)++] = s->seq;
    }
    tmutex_unlock(&db->snap_mu);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
