/* The one write entry (write_submit) that every journal write goes
 * through, the write gate, backpressure, and the journal's prepare/apply
 * callbacks that the group-commit leader runs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "journal/payload.h"
#include "lsm/ikey.h"
#include "src/db.h"
#include "src/util/err.h"

/* Journal ops carry lsm's internal key kinds and sequence numbers: the write
 * path encodes a memtable kind into a payload and replay hands a payload's
 * kind to memtable_add, unconverted. The journal defines its own values
 * (journal/payload.h); these keep the two layers' frozen values one. */
_Static_assert((unsigned)PAYLOAD_OP_DELETE == (unsigned)KIND_DELETE, "journal and lsm DELETE kinds differ");
_Static_assert((unsigned)PAYLOAD_OP_PUT == (unsigned)KIND_PUT, "journal and lsm PUT kinds differ");
_Static_assert(PAYLOAD_SEQ_MAX == SEQ_MAX, "journal and lsm sequence number limits differ");

/* ---- the write gate ------------------------------------------------------------------------ */

/* The single-writer transactions' holds of this thread (one per database at
 * most): its other writes to those databases would wait for themselves. */
static _Thread_local struct write_gate_hold *gate_holds;

static int write_gate_held_by_me(const tind_db *db)
{
    for (const struct write_gate_hold *h = gate_holds; h; h = h->next)
        if (h->db == db) return 1;
    return 0;
}

void write_gate_enter(tind_db *db, int *taken)
{
    *taken = !write_gate_held_by_me(db);
    if (*taken) pthread_rwlock_rdlock(&db->write_gate);
}

void write_gate_leave(tind_db *db, int taken)
{
    if (taken) pthread_rwlock_unlock(&db->write_gate);
}

int write_gate_lock(struct write_gate_hold *h)
{
    if (write_gate_held_by_me(h->db))
        return err_set(TIND_BUSY, "this thread already holds a single-writer transaction of the database");
    pthread_rwlock_wrlock(&h->db->write_gate);
    h->next = gate_holds;
    gate_holds = h;
    return TIND_OK;
}

void write_gate_unlock(struct write_gate_hold *h)
{
    for (struct write_gate_hold **p = &gate_holds; *p; p = &(*p)->next)
        if (*p == h) {
            *p = h->next;
            break;
        }
    h->next = NULL;
    pthread_rwlock_unlock(&h->db->write_gate);
}

/* ---- the write entry ----------------------------------------------------------------------- */

/* Waits for the backpressure of every keyspace a batch writes (tree_stall),
 * before the write joins the journal: the group-commit leader never waits for
 * one keyspace's flush or compaction, and a plain writer waits holding no
 * lock, not even the write gate (a single-writer transaction waiting for it
 * would otherwise block, writer-preferring, every other writer too). */
static int write_backpressure(tind_db *db, const struct journal_req *r)
{
    const struct write_target *t = r->user;
    if (r->len == 0 || r->seq_count == 0 || !t) return TIND_OK; /* no batch: nothing to hold back */
    for (size_t i = 0; i < t->n; i++) {
        const char *why;
        int rc = tree_stall(t->ks[i]->tree, &why);
        /* A poisoned database says so first, as journal_write would: the
         * failure that stopped the keyspace may have poisoned it. */
        if (rc) return journal_check_poisoned(db->jnl) ? TIND_POISONED : err_set(rc, "%s", why);
    }
    return TIND_OK;
}

int write_submit(tind_db *db, struct journal_req *r, int gate_held)
{
    if (r->len == 0) return journal_write(db->jnl, r);
    if (!gate_held && write_gate_held_by_me(db))
        return err_set(TIND_BUSY, "this thread holds a single-writer transaction of the database: write through it");
    int rc;
    /* TREE_STALLED: a keyspace stalled again between the wait and the
     * leader's check; the request was not written: wait and requeue. */
    do {
        if ((rc = write_backpressure(db, r)) != TIND_OK) return rc;
        if (gate_held) {
            rc = journal_write(db->jnl, r);
        } else {
            pthread_rwlock_rdlock(&db->write_gate);
            rc = journal_write(db->jnl, r);
            pthread_rwlock_unlock(&db->write_gate);
        }
    } while (rc == TREE_STALLED);
    return rc;
}

/* ---- journal callbacks (run by the group-commit leader) ------------------------ */

int write_prepare(void *ctx, struct journal_req *r)
{
    const struct write_target *t = r->user;
    int batch = r->len > 0 && r->payload[0] == JPAYLOAD_BATCH;
    /* A seal is checked like a batch: its keyspace passed check_keyspace
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
        /* Backpressure: the writer waited before it queued (write_submit); the
         * leader never waits, so a stalled keyspace holds up no other.
         * Stalled again meanwhile, the request goes back to its writer
         * (TREE_STALLED). A failed flush or compaction stops the writes to
         * its keyspace once they would have to wait for it. */
        const char *why;
        int rc = tree_stall_check(t->ks[i]->tree, &why);
        if (rc) {
            /* The failure that stopped the keyspace may have poisoned the
             * database meanwhile: that is what the writer hears. */
            if (rc != TREE_STALLED && journal_poisoned(((tind_db *)ctx)->jnl)) return TIND_POISONED;
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

int write_apply_batch(const uint8_t *p, size_t n, tind_keyspace *(*find)(void *, uint32_t), void *fctx, int how,
                      uint64_t *seq_out, uint32_t *count_out)
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
        if (ks && (rc = tree_add(ks->tree, s, op.kind, op.key, op.klen, op.val, op.vlen, how)) != TIND_OK)
            return rc;
        s++;
    }
    if (rc != TIND_NOT_FOUND) return rc;
    *seq_out = seq;
    *count_out = count;
    return TIND_OK;
}

static tind_keyspace *find_in_target(void *ctx, uint32_t id) { return target_find(ctx, id); }

/* Leader: seals every keyspace whose active memtable pins the oldest
 * journal (and has nothing sealed already on its way) once the journals
 * have outgrown journal_total_max_bytes. Returns a failed seal's status (a
 * failed journal sync, which poisoned the journal): the group fails. */
static int write_seal_for_journal_size(tind_db *db, uint64_t last_seq)
{
    if (journal_total_bytes(db->jnl) <= db->opts.journal_total_max_bytes) return TIND_OK;
    uint64_t oldest = journal_oldest_max_seq(db->jnl);
    if (oldest == UINT64_MAX) return TIND_OK;
    int rc = TIND_OK;
    /* Seal every keyspace whose active memtable holds writes of the oldest
     * journal and that has nothing sealed already on its way. */
    tmutex_lock(&db->list_mu);
    for (size_t i = 0; i < db->nks && rc == TIND_OK; i++) {
        tind_keyspace *ks = db->ks[i];
        uint64_t seal_seq;
        /* A failed seal fails the group: its journal sync failed (the
         * journal is poisoned), or the memtable could not be swapped. */
        if (tree_holds_log_up_to(ks->tree, oldest)) rc = tree_seal(ks->tree, last_seq, &seal_seq);
    }
    tmutex_unlock(&db->list_mu);
    return rc;
}

/* The current journal is rotated out once everything in it is flushed and
 * it holds this much (a quarter of journal_max_bytes, at most 1 MiB): the
 * price is a rotation (two syncs of the journal, one of its directory) per
 * flush at most, and only when the writes have stopped long enough for
 * every keyspace to flush. */
#define WRITE_ROTATE_MAX_BYTES (1u << 20)

uint64_t write_rotate_bytes(const tind_db *db)
{
    uint64_t quarter = db->opts.journal_max_bytes / 4;
    return quarter < WRITE_ROTATE_MAX_BYTES ? quarter : WRITE_ROTATE_MAX_BYTES;
}

/* Leader, before the group's first seal for size: when the current journal
 * holds at least the rotation size (write_rotate_bytes), it is rotated
 * first. The writes of the memtable being sealed then end a closed journal,
 * which goes once they are flushed (with what other keyspaces hold in it),
 * instead of sharing a journal with the writes after them until it fills.
 * The rotation syncs the journal through every write of the group, which
 * the seal's own sync then finds done. */
static int write_rotate_before_seal(tind_db *db)
{
    struct journal_stats js;
    journal_get_stats(db->jnl, &js);
    if (js.current_bytes < write_rotate_bytes(db)) return TIND_OK;
    return journal_rotate_current(db->jnl);
}

/* Leader, after the group's batches are applied (up to `applied`): seals the
 * memtables that have outgrown their keyspace's limit, then those that pin
 * the oldest journal past journal_total_max_bytes. */
static int write_seal_after_apply(tind_db *db, struct journal_req **reqs, size_t n, uint64_t applied)
{
    int rc = TIND_OK, rotated = 0;
    for (size_t i = 0; i < n && rc == TIND_OK; i++) {
        const struct write_target *t = reqs[i]->user;
        if (reqs[i]->len == 0 || reqs[i]->payload[0] != JPAYLOAD_BATCH) continue;
        for (size_t k = 0; k < t->n && rc == TIND_OK; k++) {
            tind_keyspace *ks = t->ks[k];
            uint64_t seal_seq;
            if (!tree_full(ks->tree)) continue;
            if (!rotated++ && (rc = write_rotate_before_seal(db)) != TIND_OK) break;
            rc = tree_seal(ks->tree, applied, &seal_seq);
        }
    }
    if (rc == TIND_OK) rc = write_seal_for_journal_size(db, applied);
    return rc;
}

int write_apply(void *ctx, struct journal_req **reqs, size_t n)
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
            if (t->seal) rc = tree_seal(t->ks[0]->tree, applied, &t->seal_seq);
            continue;
        }
        if (r->payload[0] == JPAYLOAD_BATCH) {
            uint64_t seq;
            uint32_t count;
            rc = write_apply_batch(r->payload, r->len, find_in_target, (void *)t, TREE_ADD_LEADER, &seq, &count);
            if (rc == TIND_OK) applied = seq + count - 1;
        } else if (r->payload[0] == JPAYLOAD_DROP_KEYSPACE) {
            ks_mark_dropped(t->ks[0]);
        }
    }
    return rc ? rc : write_seal_after_apply(db, reqs, n, applied);
}

/* A group applied in parallel holds batches only (journal_group_parallel):
 * no seal or drop among them, so the memtables stay put until
 * write_apply_finish, and each batch's ops go in with their own sequence
 * numbers whatever the order across the group. */
int write_apply_one(void *ctx, struct journal_req *r)
{
    (void)ctx;
    uint64_t seq;
    uint32_t count;
    return write_apply_batch(r->payload, r->len, find_in_target, r->user, TREE_ADD_CONCURRENT, &seq, &count);
}

int write_apply_finish(void *ctx, struct journal_req **reqs, size_t n)
{
    /* Requests come in sequence order: the last one ends the group. */
    const struct journal_req *last = reqs[n - 1];
    return write_seal_after_apply(ctx, reqs, n, last->first_seq + last->seq_count - 1);
}
