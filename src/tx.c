/* Transactions: optimistic (serializable, checked at commit by the oracle)
 * and single-writer (holding the database's write gate from begin to end).
 *
 * A transaction reads from its snapshot, overlaid with its own writes, which
 * it buffers per keyspace in a memtable numbered by op (src/tx.h). Commit
 * turns the newest op of each key into one batch record. */
#include <stdlib.h>
#include <string.h>

#include "journal/payload.h"
#include "lsm/ikey.h"
#include "src/db.h"
#include "src/oracle.h"
#include "src/tx.h"
#include "src/util/array.h"
#include "src/util/checksum.h"
#include "src/util/err.h"

/* ---- begin and end ---------------------------------------------------------------------------- */

static int tx_new(tind_db *db, int single_writer, tind_tx **out)
{
    err_clear();
    if (!db || !out) return err_set(TIND_INVALID, "tind_tx_begin: NULL argument");
    *out = NULL;
    int rc;
    /* A single-writer transaction is there to write: on a poisoned
     * database it is refused at once rather than at its commit. */
    if (single_writer && ((rc = check_writable(db)) != TIND_OK || (rc = journal_check_poisoned(db->jnl)) != TIND_OK))
        return rc;
    tind_tx *tx = calloc(1, sizeof *tx);
    if (!tx) return err_nomem();
    tx->db = db;
    tx->single_writer = single_writer;
    tx->durability = db->opts.durability;
    buf_init(&tx->range_keys);
    buf_init(&tx->lock_keys);
    tx->gate.db = db;
    if (single_writer && (rc = write_gate_lock(&tx->gate)) != TIND_OK) {
        free(tx);
        return rc;
    }
    rc = TIND_OK;
    if (oracle_open(db)) {
        struct write_target t = {.ks = NULL, .n = 0};
        struct journal_req r = {.payload = NULL, .len = 0, .durability = TIND_DURABILITY_BUFFERED,
                                .seq_count = 0, .user = &t};
        rc = write_submit(db, &r, 0);
        /* Poisoned, the journal publishes nothing more: the number waited
         * for is a failed write's (never visible) or one that publishes
         * later above the snapshot, and no write commits after it. The
         * published number is then a snapshot like any other for reading;
         * this transaction's own writes fail at its commit. */
        if (rc && journal_poisoned(db->jnl)) {
            err_clear();
            rc = TIND_OK;
        }
    }
    rc = oracle_register(db, tx, rc);
    if (rc) {
        if (single_writer) write_gate_unlock(&tx->gate);
        free(tx);
        return rc;
    }
    *out = tx;
    return TIND_OK;
}

int tind_tx_begin(tind_db *db, tind_tx **tx) { return tx_new(db, 0, tx); }

int tind_wtx_begin(tind_db *db, tind_tx **tx) { return tx_new(db, 1, tx); }

/* Folds the ranges of open iterators into the read set and detaches them. */
static void detach_iters(tind_tx *tx)
{
    while (tx->niters > 0) tx_iter_detach(tx->iters[tx->niters - 1]); /* each forgets itself */
}

static void tx_free(tind_tx *tx, int committed, int read_only)
{
    tind_db *db = tx->db;
    detach_iters(tx);
    oracle_end(db, tx, committed, read_only);
    tind_snapshot_close(tx->snap);
    if (tx->single_writer) write_gate_unlock(&tx->gate);
    for (size_t i = 0; i < tx->nspaces; i++) memtable_unref(tx->spaces[i].mem);
    free(tx->spaces);
    free(tx->reads);
    free(tx->ranges);
    buf_free(&tx->range_keys);
    free(tx->locks);
    buf_free(&tx->lock_keys);
    free(tx->saves);
    free(tx->iters);
    free(tx);
}

void tind_tx_abort(tind_tx *tx)
{
    if (tx) tx_free(tx, 0, 0);
}

uint64_t tind_tx_sequence(const tind_tx *tx) { return tx ? tx->snap->seq : 0; }

int tind_tx_set_durability(tind_tx *tx, int durability)
{
    err_clear();
    if (!tx) return err_set(TIND_INVALID, "transaction is NULL");
    int rc = check_durability(durability);
    if (rc) return rc;
    tx->durability = durability;
    return TIND_OK;
}

/* ---- reads ----------------------------------------------------------------------------------- */

static int check_tx_ks(const tind_tx *tx, const tind_keyspace *ks)
{
    if (!tx) return err_set(TIND_INVALID, "transaction is NULL");
    int rc = check_keyspace(ks);
    if (rc) return rc;
    if (ks->db != tx->db) return err_set(TIND_INVALID, "the keyspace belongs to another database");
    return TIND_OK;
}

enum { READ_TRACKED, READ_UNTRACKED, READ_FOR_UPDATE };

static int add_read(tind_tx *tx, uint32_t ks, const void *key, size_t klen)
{
    int rc = array_reserve((void **)&tx->reads, tx->nreads, &tx->capreads, sizeof *tx->reads, 16);
    if (rc) return rc;
    tx->reads[tx->nreads++] = tx_key_hash(ks, key, klen);
    return TIND_OK;
}

static int add_lock(tind_tx *tx, uint32_t ks, const void *key, size_t klen)
{
    int rc = array_reserve((void **)&tx->locks, tx->nlocks, &tx->caplocks, sizeof *tx->locks, 4);
    if (rc) return rc;
    size_t off = tx->lock_keys.len;
    if ((rc = buf_append(&tx->lock_keys, key, klen))) return rc;
    tx->locks[tx->nlocks++] = (struct tx_lock){ks, off, klen};
    return TIND_OK;
}

static int tx_read(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen, int mode)
{
    err_clear();
    if (!val || !vlen) return err_set(TIND_INVALID, "value out-parameters are NULL");
    *val = NULL;
    *vlen = 0;
    int rc;
    if ((rc = check_tx_ks(tx, ks)) || (rc = check_key(key, klen))) return rc;
    if (mode == READ_FOR_UPDATE && !tx->single_writer && (rc = add_lock(tx, ks->id, key, klen))) {
        tx_poison(tx);
        return rc;
    }
    memtable *m = tx_buffer(tx, ks);
    unsigned kind;
    const uint8_t *v;
    size_t vl;
    if (m && memtable_get(m, key, klen, SEQ_MAX, &kind, &v, &vl)) {
        /* Its own write: the answer does not depend on anyone else. */
        if (kind == KIND_DELETE) return TIND_NOT_FOUND;
        uint8_t *copy = malloc(vl ? vl : 1);
        if (!copy) return err_nomem();
        if (vl) memcpy(copy, v, vl);
        *val = copy;
        *vlen = vl;
        return TIND_OK;
    }
    if (mode != READ_UNTRACKED && !tx->single_writer && (rc = add_read(tx, ks->id, key, klen))) {
        tx_poison(tx);
        return rc;
    }
    return read_at(ks, tx->snap->seq, key, klen, val, vlen);
}

int tind_tx_get(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen)
{
    return tx_read(tx, ks, key, klen, val, vlen, READ_TRACKED);
}

int tind_tx_get_untracked(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen)
{
    return tx_read(tx, ks, key, klen, val, vlen, READ_UNTRACKED);
}

int tind_tx_get_for_update(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen, void **val, size_t *vlen)
{
    return tx_read(tx, ks, key, klen, val, vlen, READ_FOR_UPDATE);
}

/* ---- writes ------------------------------------------------------------------------------------ */

static int tx_write(tind_tx *tx, tind_keyspace *ks, unsigned kind, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    memtable *m = tx_buffer(tx, ks);
    int rc = check_writable(tx->db);
    if (rc) return rc;
    if (!m) {
        if ((rc = array_reserve((void **)&tx->spaces, tx->nspaces, &tx->capspaces, sizeof *tx->spaces, 2))) return rc;
        if (!(m = memtable_new(0))) return err_nomem();
        tx->spaces[tx->nspaces++] = (struct tx_space){ks, m};
    }
    if (tx->nops >= UINT32_MAX) return err_set(TIND_INVALID, "a transaction holds at most %u writes", UINT32_MAX);
    if ((rc = memtable_add(m, tx->nops + 1, kind, key, klen, val, vlen))) return rc;
    tx->nops++;
    return TIND_OK;
}

int tind_tx_put(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen, const void *val, size_t vlen)
{
    err_clear();
    int rc;
    if ((rc = check_tx_ks(tx, ks)) || (rc = check_key(key, klen)) || (rc = check_value(val, vlen))) return rc;
    return tx_write(tx, ks, KIND_PUT, key, klen, val, vlen);
}

int tind_tx_delete(tind_tx *tx, tind_keyspace *ks, const void *key, size_t klen)
{
    err_clear();
    int rc;
    if ((rc = check_tx_ks(tx, ks)) || (rc = check_key(key, klen))) return rc;
    return tx_write(tx, ks, KIND_DELETE, key, klen, NULL, 0);
}

/* ---- savepoints ---------------------------------------------------------------------------------- */

int tind_tx_savepoint(tind_tx *tx)
{
    err_clear();
    if (!tx) return err_set(TIND_INVALID, "transaction is NULL");
    int rc = array_reserve((void **)&tx->saves, tx->nsaves, &tx->capsaves, sizeof *tx->saves, 4);
    if (rc) return rc;
    tx->saves[tx->nsaves++] = (struct tx_savepoint){tx->nops, tx->nlocks, tx->lock_keys.len};
    return TIND_OK;
}

/* A copy of m holding the ops numbered up to nops. */
static int buffer_cut(memtable *m, uint64_t nops, memtable **out)
{
    memtable *n = memtable_new(0);
    iiter *it = n ? memtable_iter(m) : NULL;
    if (!it) {
        if (n) memtable_unref(n);
        return err_nomem();
    }
    int rc = TIND_OK;
    for (iiter_seek_first(it); it->valid && rc == TIND_OK; iiter_next(it))
        if (tag_seq(it->tag) <= nops)
            rc = memtable_add(n, tag_seq(it->tag), tag_kind(it->tag), it->key, it->klen, it->val, it->vlen);
    iiter_destroy(it);
    if (rc) {
        memtable_unref(n);
        return rc;
    }
    *out = n;
    return TIND_OK;
}

/* Undoes the writes since the newest savepoint, and the keys read for update
 * since (they would count as written). Reads stay in the read set, those
 * since the savepoint included, and so do the ranges of iterators, open or
 * closed: what the transaction saw may steer what it writes after the
 * rollback, and a commit checked without it could break serializability
 * (write skew). Keeping a read costs at most a needless conflict. */
int tind_tx_rollback_to(tind_tx *tx)
{
    err_clear();
    if (!tx) return err_set(TIND_INVALID, "transaction is NULL");
    if (tx->nsaves == 0) return err_set(TIND_NOT_FOUND, "the transaction has no savepoint");
    const struct tx_savepoint *s = &tx->saves[tx->nsaves - 1];
    if (s->nops < tx->nops) {
        /* Build every cut buffer first, so that a failure changes nothing.
         * Open iterators keep the old buffers alive. */
        memtable **cut = calloc(tx->nspaces ? tx->nspaces : 1, sizeof *cut);
        if (!cut) return err_nomem();
        int rc = TIND_OK;
        for (size_t i = 0; i < tx->nspaces && rc == TIND_OK; i++) rc = buffer_cut(tx->spaces[i].mem, s->nops, &cut[i]);
        if (rc) {
            for (size_t i = 0; i < tx->nspaces; i++)
                if (cut[i]) memtable_unref(cut[i]);
            free(cut);
            return rc;
        }
        for (size_t i = 0; i < tx->nspaces; i++) {
            memtable_unref(tx->spaces[i].mem);
            tx->spaces[i].mem = cut[i];
        }
        free(cut);
        tx->nops = s->nops;
    }
    tx->nlocks = s->nlocks;
    tx->lock_keys.len = s->lock_bytes;
    tx->nsaves--;
    return TIND_OK;
}

/* ---- commit ------------------------------------------------------------------------------------- */

/* The batch payload of the newest op of every key buffered. */
static int build_payload(tind_tx *tx, buf *payload)
{
    int rc = payload_batch_init(payload);
    for (size_t i = 0; i < tx->nspaces && rc == TIND_OK; i++) {
        iiter *it = memtable_iter(tx->spaces[i].mem);
        if (!it) return err_nomem();
        const uint8_t *prev = NULL;
        size_t prevl = 0;
        for (iiter_seek_first(it); it->valid && rc == TIND_OK; iiter_next(it)) {
            /* Versions of a key come newest first: the first is the one. */
            if (prev && ukey_cmp(prev, prevl, it->key, it->klen) == 0) continue;
            prev = it->key;
            prevl = it->klen;
            if (payload_batch_count(payload->p) == UINT32_MAX) rc = err_set(TIND_INVALID, "transaction too large");
            else rc = payload_batch_add(payload, tag_kind(it->tag), tx->spaces[i].ks->id, it->key, it->klen, it->val,
                                        it->vlen);
        }
        iiter_destroy(it);
    }
    return rc;
}

int tind_tx_commit(tind_tx *tx)
{
    err_clear();
    if (!tx) return err_set(TIND_INVALID, "transaction is NULL");
    tind_db *db = tx->db;
    detach_iters(tx);
    buf payload;
    buf_init(&payload);
    int rc = tx->failed ? err_set(tx->failed, "the transaction's read tracking failed earlier; it cannot commit")
                        : build_payload(tx, &payload);
    uint32_t count = rc == TIND_OK ? payload_batch_count(payload.p) : 0;
    if (rc == TIND_OK && count == 0) {
        /* Read-only: it saw one snapshot; nothing to check. */
        buf_free(&payload);
        tx_free(tx, 1, 1);
        return TIND_OK;
    }
    tind_keyspace **ks = rc == TIND_OK ? calloc(tx->nspaces, sizeof *ks) : NULL;
    if (rc == TIND_OK && !ks) rc = err_nomem();
    if (rc == TIND_OK) {
        for (size_t i = 0; i < tx->nspaces; i++) ks[i] = tx->spaces[i].ks;
        tx_sort_reads(tx);
        struct write_target t = {.ks = ks, .n = tx->nspaces, .tx = tx};
        struct journal_req r = {.payload = payload.p, .len = payload.len, .durability = tx->durability,
                                .seq_count = count, .user = &t};
        rc = write_submit(db, &r, tx->single_writer);
    }
    free(ks);
    buf_free(&payload);
    tx_free(tx, rc == TIND_OK, 0);
    return rc;
}
