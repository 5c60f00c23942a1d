/* The conflict oracle (src/oracle.h has the design). */
#include "src/oracle.h"

#include <stdlib.h>
#include <string.h>

#include "journal/payload.h"
#include "lsm/ikey.h"
#include "src/db.h"
#include "src/tx.h"
#include "src/util/err.h"
#include "src/util/mutex.h"

void oracle_init(struct oracle *o)
{
    memset(o, 0, sizeof *o);
    (void)tmutex_init(&o->mu); /* cannot fail with default attributes */
    atomic_init(&o->active, 0);
    atomic_init(&o->unregistered, 0);
}

static void entry_free(struct oracle_entry *e) { free(e->key); }

void oracle_destroy(struct oracle *o)
{
    for (size_t i = o->head; i < o->n; i++) entry_free(&o->log[i]);
    free(o->log);
    tmutex_destroy(&o->mu);
}

/* Drops the entries no open transaction can conflict with. Caller holds mu.
 * With none listed, a transaction may still be between counting itself in
 * `active` and taking its snapshot, which then comes before the writes in
 * flight (recorded, not yet published): their entries stay. */
static void prune(struct oracle *o, uint64_t published) REQUIRES(o->mu)
{
    tmutex_assert_held(&o->mu);
    uint64_t keep_above = o->first ? o->first->snap->seq : published;
    while (o->head < o->n && o->log[o->head].seq <= keep_above) {
        struct oracle_entry *e = &o->log[o->head++];
        o->log_bytes -= sizeof *e + e->klen;
        entry_free(e);
    }
    if (o->head == o->n) {
        o->head = o->n = 0;
    } else if (o->head > 64 && o->head * 2 > o->n) {
        memmove(o->log, o->log + o->head, (o->n - o->head) * sizeof *o->log);
        o->n -= o->head;
        o->head = 0;
    }
    if (o->n == 0 && o->cap > 1024) {
        free(o->log);
        o->log = NULL;
        o->cap = 0;
    }
}

int oracle_open(tind_db *db)
{
    struct oracle *o = &db->oracle;
    atomic_fetch_add(&o->active, 1);
    /* A write given out while no transaction was open is not in the log:
     * the snapshot must wait until it is published. */
    return atomic_load(&o->unregistered) > db_last_seq(db);
}

int oracle_register(tind_db *db, struct tind_tx *tx, int rc)
{
    struct oracle *o = &db->oracle;
    if (rc) {
        atomic_fetch_sub(&o->active, 1);
        return rc;
    }
    tmutex_lock(&o->mu);
    /* Taken under mu: the list stays in snapshot order. */
    rc = tind_snapshot_open(db, &tx->snap);
    if (rc == TIND_OK) {
        tx->prev = o->last;
        tx->next = NULL;
        if (o->last) o->last->next = tx;
        else o->first = tx;
        o->last = tx;
    } else {
        atomic_fetch_sub(&o->active, 1);
    }
    tmutex_unlock(&o->mu);
    return rc;
}

void oracle_end(tind_db *db, struct tind_tx *tx, int committed, int read_only)
{
    struct oracle *o = &db->oracle;
    tmutex_lock(&o->mu);
    if (tx->prev) tx->prev->next = tx->next;
    else o->first = tx->next;
    if (tx->next) tx->next->prev = tx->prev;
    else o->last = tx->prev;
    tx->prev = tx->next = NULL;
    if (committed) o->commits++;
    if (read_only) o->read_only++;
    prune(o, db_last_seq(db));
    atomic_fetch_sub(&o->active, 1);
    tmutex_unlock(&o->mu);
}

/* The first live entry newer than seq. Caller holds mu. */
static size_t first_after(const struct oracle *o, uint64_t seq) REQUIRES(o->mu)
{
    tmutex_assert_held(&o->mu);
    size_t lo = o->head, hi = o->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->log[mid].seq <= seq) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Appends one entry to the log. Caller holds mu. */
static int append(struct oracle *o, uint64_t seq, uint32_t ks, const uint8_t *key, size_t klen) REQUIRES(o->mu)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        struct oracle_entry *l = realloc(o->log, cap * sizeof *l);
        if (!l) return err_nomem();
        o->log = l;
        o->cap = cap;
    }
    uint8_t *copy = malloc(klen ? klen : 1);
    if (!copy) return err_nomem();
    memcpy(copy, key, klen);
    o->log[o->n++] = (struct oracle_entry){seq, tx_key_hash(ks, key, klen), ks, (uint32_t)klen, copy};
    o->log_bytes += sizeof(struct oracle_entry) + klen;
    return TIND_OK;
}

/* Records the keys of a batch payload given sequence numbers from first.
 * Caller holds mu. */
static int record(struct oracle *o, const struct journal_req *r, const struct tind_tx *tx) REQUIRES(o->mu)
{
    uint64_t seq;
    uint32_t count;
    struct payload_reader rd;
    int rc = payload_batch_open(r->payload, r->len, &seq, &count, &rd);
    if (rc) return rc;
    struct payload_op op;
    uint64_t s = r->first_seq;
    while ((rc = payload_batch_next(&rd, &op)) == TIND_OK) {
        if ((rc = append(o, s, op.keyspace, op.key, op.klen)) != TIND_OK) return rc;
        s++;
    }
    if (rc != TIND_NOT_FOUND) return rc;
    /* Keys read for update count as written, at the batch's last number. */
    for (size_t i = 0; tx && i < tx->nlocks; i++) {
        const struct tx_lock *l = &tx->locks[i];
        if ((rc = append(o, s - 1, l->ks, tx->lock_keys.p + l->off, l->len)) != TIND_OK) return rc;
    }
    return TIND_OK;
}

int oracle_prepare(tind_db *db, struct journal_req *r, struct tind_tx *tx)
{
    struct oracle *o = &db->oracle;
    uint64_t last = r->first_seq + r->seq_count - 1;
    atomic_store(&o->unregistered, last);
    if (atomic_load(&o->active) == 0) return TIND_OK;
    tmutex_lock(&o->mu);
    int rc = TIND_OK;
    if (tx && !tx->single_writer) {
        for (size_t i = first_after(o, tx->snap->seq); i < o->n; i++) {
            const struct oracle_entry *e = &o->log[i];
            if (tx_read_conflicts(tx, e->ks, e->hash, e->key, e->klen)) {
                o->conflicts++;
                r->why = "a transaction that committed after this one began wrote what this one read";
                rc = TIND_CONFLICT;
                break;
            }
        }
    }
    /* A failed record only loses bookkeeping: the write fails rather than
     * commit unchecked against transactions that depend on it. */
    if (rc == TIND_OK && (rc = record(o, r, tx)) != TIND_OK) r->why = "out of memory recording a transaction's writes";
    /* Refused, its numbers go to the next request: a beginning transaction
     * has nothing of it to wait for. The writes before it stay covered. */
    if (rc != TIND_OK) atomic_store(&o->unregistered, r->first_seq - 1);
    tmutex_unlock(&o->mu);
    return rc;
}

void oracle_stats(struct oracle *o, uint64_t *entries, uint64_t *bytes, uint64_t *open, uint64_t *commits,
                  uint64_t *conflicts)
{
    tmutex_lock(&o->mu);
    *entries = o->n - o->head;
    *bytes = o->log_bytes;
    *open = (uint64_t)atomic_load(&o->active);
    *commits = o->commits;
    *conflicts = o->conflicts;
    tmutex_unlock(&o->mu);
}
