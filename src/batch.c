/* The public write API: puts, deletes, batches and tind_persist, each
 * encoded as a journal payload and handed to the one write entry. */
#include <stdlib.h>
#include <string.h>

#include "journal/payload.h"
#include "lsm/ikey.h"
#include "src/db.h"
#include "src/util/array.h"
#include "src/util/err.h"

struct tind_batch {
    buf payload;      /* the journal payload, encoded as ops are added */
    tind_db *db;      /* set by the first op: a batch belongs to one database */
    tind_keyspace **ks; /* the distinct keyspaces it writes */
    size_t nks, capks;
};

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
        rc = write_submit(ks->db, &r, 0);
    }
    buf_free(&b);
    return rc;
}

int tind_put(tind_keyspace *ks, const void *key, size_t klen, const void *val, size_t vlen)
{
    err_clear();
    int rc;
    if ((rc = check_keyspace(ks)) || (rc = check_key(key, klen)) || (rc = check_value(val, vlen)) ||
        (rc = check_writable(ks->db)))
        return rc;
    return write_single(ks, KIND_PUT, key, klen, val, vlen);
}

int tind_delete(tind_keyspace *ks, const void *key, size_t klen)
{
    err_clear();
    int rc;
    if ((rc = check_keyspace(ks)) || (rc = check_key(key, klen)) || (rc = check_writable(ks->db)))
        return rc;
    return write_single(ks, KIND_DELETE, key, klen, NULL, 0);
}

int tind_persist(tind_db *db, int durability)
{
    err_clear();
    if (!db) return err_set(TIND_INVALID, "tind_persist: NULL database");
    int rc = check_durability(durability);
    if (rc || (rc = check_writable(db)) != TIND_OK) return rc;
    struct write_target t = {.ks = NULL, .n = 0};
    struct journal_req r = {.payload = NULL, .len = 0, .durability = durability, .seq_count = 0, .user = &t};
    return write_submit(db, &r, 0);
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
    if ((rc = check_keyspace(ks)) || (rc = check_key(key, klen)) || (rc = check_value(val, vlen)))
        return rc;
    return batch_add(b, ks, KIND_PUT, key, klen, val, vlen);
}

int tind_batch_delete(tind_batch *b, tind_keyspace *ks, const void *key, size_t klen)
{
    err_clear();
    int rc;
    if (!b) return err_set(TIND_INVALID, "batch is NULL");
    if ((rc = check_keyspace(ks)) || (rc = check_key(key, klen))) return rc;
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
    int rc = check_durability(durability);
    if (rc || (rc = check_writable(db)) != TIND_OK) return rc;
    uint32_t count = payload_batch_count(b->payload.p);
    if (count == 0) return TIND_OK;
    if (b->db != db) return err_set(TIND_INVALID, "the batch belongs to another database");
    struct write_target t = {.ks = b->ks, .n = b->nks};
    struct journal_req r = {.payload = b->payload.p, .len = b->payload.len, .durability = durability,
                            .seq_count = count, .user = &t};
    return write_submit(db, &r, 0);
}

void tind_batch_free(tind_batch *b)
{
    if (!b) return;
    buf_free(&b->payload);
    free(b->ks);
    free(b);
}
