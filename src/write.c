/* The write path: puts, deletes, batches, tind_persist, the journal's
 * prepare/apply callbacks, and replay of journal records at open. */
#include <stdlib.h>
#include <string.h>

#include "journal/payload.h"
#include "lsm/ikey.h"
#include "src/db.h"
#include "src/util/array.h"
#include "src/util/err.h"

/* Journal ops carry lsm's internal key kinds and sequence numbers: the write
 * path encodes a memtable kind into a payload and replay hands a payload's
 * kind to memtable_add, unconverted. The journal defines its own values
 * (journal/payload.h); these keep the two layers' frozen values one. */
_Static_assert((unsigned)PAYLOAD_OP_DELETE == (unsigned)KIND_DELETE, "journal and lsm DELETE kinds differ");
_Static_assert((unsigned)PAYLOAD_OP_PUT == (unsigned)KIND_PUT, "journal and lsm PUT kinds differ");
_Static_assert(PAYLOAD_SEQ_MAX == SEQ_MAX, "journal and lsm sequence number limits differ");

struct tind_batch {
    buf payload;      /* the journal payload, encoded as ops are added */
    tind_db *db;      /* set by the first op: a batch belongs to one database */
    tind_keyspace **ks; /* the distinct keyspaces it writes */
    size_t nks, capks;
};

int db_check_key(const void *key, size_t klen)
{
    if (!key) return err_set(TIND_INVALID, "key is NULL");
    if (klen == 0) return err_set(TIND_INVALID, "key is empty");
    if (klen > TIND_MAX_KEY_BYTES) return err_set(TIND_INVALID, "key of %zu bytes exceeds %u", klen, TIND_MAX_KEY_BYTES);
    return TIND_OK;
}

int db_check_value(const void *val, size_t vlen)
{
    if (!val && vlen > 0) return err_set(TIND_INVALID, "value is NULL");
    if (vlen > TIND_MAX_VALUE_BYTES) return err_set(TIND_INVALID, "value of %zu bytes exceeds %u", vlen, TIND_MAX_VALUE_BYTES);
    return TIND_OK;
}

int db_check_durability(int d)
{
    if (d < TIND_DURABILITY_BUFFERED || d > TIND_DURABILITY_SYNC_ALL)
        return err_set(TIND_INVALID, "durability %d is not a TIND_DURABILITY_* value", d);
    return TIND_OK;
}

int db_check_keyspace(const tind_keyspace *ks)
{
    if (!ks) return err_set(TIND_INVALID, "keyspace is NULL");
    if (atomic_load(&ks->dropped)) return err_set(TIND_INVALID, "keyspace %s was dropped", ks->name);
    return TIND_OK;
}

/* ---- journal callbacks (run by the group-commit leader) ------------------------ */

int db_write_prepare(void *ctx, struct journal_req *r)
{
    const struct write_target *t = r->user;
    int batch = r->len > 0 && r->payload[0] == JPAYLOAD_BATCH;
    /* A seal is checked like a batch: its keyspace passed db_check_keyspace
     * before it was queued, and a drop queued before it may have been applied
     * since (a drop goes alone in its group, so it is either applied before
     * this prepare or after this request's apply). Once tind_keyspace_drop
     * retires the keyspace its memtables and manifest are gone. The drop
     * itself and tind_persist name no keyspace to check. */
    if (!batch && !t->seal) return TIND_OK;
    for (size_t i = 0; i < t->n; i++) {
        if (atomic_load(&t->ks[i]->dropped)) {
            r->why = batch ? "a keyspace of the write was dropped" : "the keyspace to flush was dropped";
            return TIND_INVALID;
        }
        if (!batch) continue;
        /* Backpressure: the writer waited before it queued (db_write); the
         * leader never waits, so a stalled keyspace holds up no other.
         * Stalled again meanwhile, the request goes back to its writer
         * (DB_STALLED). A failed flush or compaction stops the writes to
         * its keyspace once they would have to wait for it. */
        const char *why;
        int rc = flush_stall_check(t->ks[i], &why);
        if (rc) {
            /* The failure that stopped the keyspace may have poisoned the
             * database meanwhile: that is what the writer hears. */
            if (rc != DB_STALLED && journal_poisoned(((tind_db *)ctx)->jnl)) return TIND_POISONED;
            r->why = why;
            return rc;
        }
    }
    if (!batch) return TIND_OK;
    /* Last: a transaction is checked, and the write recorded, only once
     * nothing else can refuse it. */
    return oracle_prepare(ctx, r, t->tx);
}

static tind_keyspace *target_find(const struct write_target *t, uint32_t id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->ks[i]->id == id) return t->ks[i];
    return NULL;
}

/* Inserts a batch payload's ops into memtables; `find` maps a keyspace number
 * to its keyspace (NULL: skip the op, its keyspace was dropped). Ops at or
 * below their keyspace's flushed sequence number are in tables already
 * (only replay meets them). */
static int apply_batch(const uint8_t *p, size_t n, tind_keyspace *(*find)(void *, uint32_t), void *fctx,
                       int replay, uint64_t *seq_out, uint32_t *count_out)
{
    uint64_t seq;
    uint32_t count;
    struct payload_reader rd;
    int rc = payload_batch_open(p, n, &seq, &count, &rd);
    if (rc) return rc;
    struct payload_op op;
    uint64_t s = seq;
    while ((rc = payload_batch_next(&rd, &op)) == TIND_OK) {
        tind_keyspace *ks = find(fctx, op.keyspace);
        /* The leader alone changes ks->active (flush_seal runs in the
         * leader too), so reading it here without ks->mu is safe. */
        if (ks && (!replay || s > ks->flushed_seq)) {
            rc = memtable_add(ks->active, s, op.kind, op.key, op.klen, op.val, op.vlen);
            if (rc) return rc;
        }
        s++;
    }
    if (rc != TIND_NOT_FOUND) return rc;
    *seq_out = seq;
    *count_out = count;
    return TIND_OK;
}

static tind_keyspace *find_in_target(void *ctx, uint32_t id) { return target_find(ctx, id); }

int db_write_apply(void *ctx, struct journal_req **reqs, size_t n)
{
    tind_db *db = ctx;
    /* The last sequence number applied so far: a seal in the middle of the
     * group covers exactly the writes before it. */
    uint64_t applied = db_last_seq(db);
    int rc = TIND_OK;
    for (size_t i = 0; i < n && rc == TIND_OK; i++) {
        struct journal_req *r = reqs[i];
        struct write_target *t = r->user;
        if (r->len == 0) {
            if (t->seal) rc = flush_seal(t->ks[0], applied, &t->seal_seq);
            continue;
        }
        if (r->payload[0] == JPAYLOAD_BATCH) {
            uint64_t seq;
            uint32_t count;
            rc = apply_batch(r->payload, r->len, find_in_target, (void *)t, 0, &seq, &count);
            if (rc == TIND_OK) applied = seq + count - 1;
        } else if (r->payload[0] == JPAYLOAD_DROP_KEYSPACE) {
            ks_mark_dropped(t->ks[0]);
        }
    }
    if (rc) return rc;
    /* Seal the memtables that have outgrown their keyspace's limit. */
    for (size_t i = 0; i < n && rc == TIND_OK; i++) {
        const struct write_target *t = reqs[i]->user;
        if (reqs[i]->len == 0 || reqs[i]->payload[0] != JPAYLOAD_BATCH) continue;
        for (size_t k = 0; k < t->n && rc == TIND_OK; k++) {
            tind_keyspace *ks = t->ks[k];
            uint64_t seal_seq;
            if (memtable_bytes(ks->active) >= atomic_load(&ks->memtable_bytes))
                rc = flush_seal(ks, applied, &seal_seq);
        }
    }
    if (rc == TIND_OK) rc = flush_check_journal_size(db, applied);
    return rc;
}

/* ---- replay at open (single-threaded) ------------------------------------------ */

static tind_keyspace *find_live(void *ctx, uint32_t id) { return ks_find_id(ctx, id); }

int db_replay_record(tind_db *db, const char *path, uint64_t offset, const uint8_t *p, size_t n,
                     uint64_t *last_seq)
{
    unsigned type;
    int rc = payload_type(p, n, &type);
    if (rc) return err_set(rc, "journal %s offset %llu: %s", path, (unsigned long long)offset, err_msg());
    if (type == JPAYLOAD_BATCH) {
        uint64_t seq;
        uint32_t count;
        struct payload_reader rd;
        if ((rc = payload_batch_open(p, n, &seq, &count, &rd)) != TIND_OK)
            return err_set(rc, "journal %s offset %llu: %s", path, (unsigned long long)offset, err_msg());
        if (seq <= *last_seq || count == 0 || seq + count - 1 > SEQ_MAX)
            return err_set(TIND_CORRUPTION, "journal %s offset %llu: sequence %llu+%u does not follow %llu", path,
                           (unsigned long long)offset, (unsigned long long)seq, count,
                           (unsigned long long)*last_seq);
        /* Ops of keyspaces dropped later are skipped; a number never given out is damage. */
        struct payload_op op;
        while ((rc = payload_batch_next(&rd, &op)) == TIND_OK) {
            if (op.keyspace >= db->next_ks_id)
                return err_set(TIND_CORRUPTION, "journal %s offset %llu: unknown keyspace %u", path,
                               (unsigned long long)offset, op.keyspace);
        }
        if (rc != TIND_NOT_FOUND)
            return err_set(rc, "journal %s offset %llu: %s", path, (unsigned long long)offset, err_msg());
        if ((rc = apply_batch(p, n, find_live, db, 1, &seq, &count)) != TIND_OK) return rc;
        *last_seq = seq + count - 1;
        return TIND_OK;
    }
    if (type == JPAYLOAD_DROP_KEYSPACE) {
        uint32_t id;
        if ((rc = payload_drop_decode(p, n, &id)) != TIND_OK)
            return err_set(rc, "journal %s offset %llu: %s", path, (unsigned long long)offset, err_msg());
        tind_keyspace *ks = ks_find_id(db, id);
        if (ks) {
            ks_mark_dropped(ks);
            return ks_retire(db, ks);
        }
        return TIND_OK;
    }
    return err_set(TIND_CORRUPTION, "journal %s offset %llu: unknown payload type %u", path,
                   (unsigned long long)offset, type);
}

/* ---- the public write API ------------------------------------------------------------ */

static int write_single(tind_keyspace *ks, unsigned kind, const void *key, size_t klen, const void *val,
                        size_t vlen)
{
    /* Small writes encode on the stack: no allocation on the common path. */
    uint8_t stack[512];
    buf b;
    buf_init_with(&b, stack, sizeof stack);
    int rc = payload_batch_init(&b);
    if (rc == TIND_OK) rc = payload_batch_add(&b, kind, ks->id, key, klen, val, vlen);
    if (rc == TIND_OK) {
        tind_keyspace *one = ks;
        struct write_target t = {.ks = &one, .n = 1};
        struct journal_req r = {.payload = b.p, .len = b.len, .durability = atomic_load(&ks->durability),
                                .seq_count = 1, .user = &t};
        rc = db_write(ks->db, &r, 0);
    }
    buf_free(&b);
    return rc;
}

int tind_put(tind_keyspace *ks, const void *key, size_t klen, const void *val, size_t vlen)
{
    err_clear();
    int rc;
    if ((rc = db_check_keyspace(ks)) || (rc = db_check_key(key, klen)) || (rc = db_check_value(val, vlen)) ||
        (rc = db_check_writable(ks->db)))
        return rc;
    return write_single(ks, KIND_PUT, key, klen, val, vlen);
}

int tind_delete(tind_keyspace *ks, const void *key, size_t klen)
{
    err_clear();
    int rc;
    if ((rc = db_check_keyspace(ks)) || (rc = db_check_key(key, klen)) || (rc = db_check_writable(ks->db)))
        return rc;
    return write_single(ks, KIND_DELETE, key, klen, NULL, 0);
}

int tind_persist(tind_db *db, int durability)
{
    err_clear();
    if (!db) return err_set(TIND_INVALID, "tind_persist: NULL database");
    int rc = db_check_durability(durability);
    if (rc || (rc = db_check_writable(db)) != TIND_OK) return rc;
    struct write_target t = {.ks = NULL, .n = 0};
    struct journal_req r = {.payload = NULL, .len = 0, .durability = durability, .seq_count = 0, .user = &t};
    return journal_write(db->jnl, &r);
}

int tind_batch_new(tind_batch **out)
{
    err_clear();
    if (!out) return err_set(TIND_INVALID, "tind_batch_new: NULL argument");
    *out = NULL;
    tind_batch *b = calloc(1, sizeof *b);
    if (!b) return err_nomem();
    buf_init(&b->payload);
    int rc = payload_batch_init(&b->payload);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    return TIND_OK;
}

static int batch_add(tind_batch *b, tind_keyspace *ks, unsigned kind, const void *key, size_t klen,
                     const void *val, size_t vlen)
{
    if (b->db && b->db != ks->db) return err_set(TIND_INVALID, "a batch cannot span databases");
    if (payload_batch_count(b->payload.p) == UINT32_MAX) return err_set(TIND_INVALID, "batch is full");
    int found = 0;
    for (size_t i = 0; i < b->nks && !found; i++) found = b->ks[i] == ks;
    if (!found) {
        int rc = array_reserve((void **)&b->ks, b->nks, &b->capks, sizeof *b->ks, 4);
        if (rc) return rc;
        b->ks[b->nks++] = ks;
    }
    int rc = payload_batch_add(&b->payload, kind, ks->id, key, klen, val, vlen);
    if (rc) return rc;
    b->db = ks->db;
    return TIND_OK;
}

int tind_batch_put(tind_batch *b, tind_keyspace *ks, const void *key, size_t klen, const void *val, size_t vlen)
{
    err_clear();
    int rc;
    if (!b) return err_set(TIND_INVALID, "batch is NULL");
    if ((rc = db_check_keyspace(ks)) || (rc = db_check_key(key, klen)) || (rc = db_check_value(val, vlen)))
        return rc;
    return batch_add(b, ks, KIND_PUT, key, klen, val, vlen);
}

int tind_batch_delete(tind_batch *b, tind_keyspace *ks, const void *key, size_t klen)
{
    err_clear();
    int rc;
    if (!b) return err_set(TIND_INVALID, "batch is NULL");
    if ((rc = db_check_keyspace(ks)) || (rc = db_check_key(key, klen))) return rc;
    return batch_add(b, ks, KIND_DELETE, key, klen, NULL, 0);
}

size_t tind_batch_count(const tind_batch *b) { return b ? payload_batch_count(b->payload.p) : 0; }

void tind_batch_clear(tind_batch *b)
{
    if (!b) return;
    payload_batch_init(&b->payload); /* keeps the buffer: cannot fail */
    b->nks = 0;
    b->db = NULL;
}

int tind_batch_commit(tind_db *db, tind_batch *b, int durability)
{
    err_clear();
    if (!db || !b) return err_set(TIND_INVALID, "tind_batch_commit: NULL argument");
    int rc = db_check_durability(durability);
    if (rc || (rc = db_check_writable(db)) != TIND_OK) return rc;
    uint32_t count = payload_batch_count(b->payload.p);
    if (count == 0) return TIND_OK;
    if (b->db != db) return err_set(TIND_INVALID, "the batch belongs to another database");
    struct write_target t = {.ks = b->ks, .n = b->nks};
    struct journal_req r = {.payload = b->payload.p, .len = b->payload.len, .durability = durability,
                            .seq_count = count, .user = &t};
    return db_write(db, &r, 0);
}

void tind_batch_free(tind_batch *b)
{
    if (!b) return;
    buf_free(&b->payload);
    free(b->ks);
    free(b);
}
