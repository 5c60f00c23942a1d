/* Flushes: sealing memtables, writing them as level-0 tables on the worker
 * pool, recording them in the keyspace's manifest, retiring the journals
 * every keyspace has flushed past, and the write stall (backpressure) while
 * too many sealed memtables wait or compaction is too far behind.
 *
 * Order: a keyspace's sealed memtables are flushed one at a time, oldest
 * first (one flush job per keyspace at a time), so its flushed sequence
 * number only grows and recovery can skip every write at or below it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lsm/table.h"
#include "src/db.h"
#include "src/ks_options.h"
#include "src/util/array.h"
#include "src/util/err.h"
#include "src/util/file.h"

void ks_table_options(tind_keyspace *ks, unsigned level, struct table_options *to)
{
    pthread_mutex_lock(&ks->mu);
    ks_options_table(&ks->opts, level, to);
    pthread_mutex_unlock(&ks->mu);
}

void ks_background_failed(tind_keyspace *ks, int *err, char *msg, size_t cap, int rc, const char *what)
{
    if (*err) return;
    snprintf(msg, cap, "%s of keyspace %s failed: %s", what, ks->name, err_msg());
    *err = rc;
}

void ks_manifest_failed(tind_keyspace *ks, int rc)
{
    if (manifest_poisoned(ks->man)) journal_poison(ks->db->jnl, rc, err_msg());
}

int flush_seal(tind_keyspace *ks, uint64_t last_seq, uint64_t *seal_seq)
{
    *seal_seq = 0;
    /* The leader marks a keyspace dropped (in the drop's apply) before the
     * drop retires it, so a keyspace the leader sees live is not retired yet;
     * one it sees dropped may have freed its memtables and closed its
     * manifest already: it is never sealed. */
    if (atomic_load(&ks->dropped)) return TIND_OK;
    memtable *old = ks->active;
    if (memtable_count(old) == 0) return TIND_OK;
    /* The journal must be durable through last_seq before a table holding
     * these writes can be: otherwise a power loss could keep this keyspace's
     * part of a batch (in the table) and lose another keyspace's part (in the
     * journal's unsynced tail). Every caller runs as the journal's leader,
     * after the group's records were appended. */
    int rc = journal_sync_current(ks->db->jnl);
    if (rc) return rc;
    memtable *fresh = memtable_new();
    if (!fresh) return err_nomem();
    pthread_mutex_lock(&ks->mu);
    rc = array_reserve((void **)&ks->sealed, ks->nsealed, &ks->capsealed, sizeof *ks->sealed, 4);
    if (rc == TIND_OK) {
        memtable_ref(old);
        ks->sealed[ks->nsealed++] = (struct sealed_mem){old, last_seq};
        ks->active = fresh;
        if ((rc = ks_install_sv(ks)) != TIND_OK) {
            /* Undo: the old memtable stays active. */
            ks->active = old;
            ks->nsealed--;
            memtable_unref(old);
        } else {
            *seal_seq = last_seq;
            flush_schedule(ks);
        }
    }
    pthread_mutex_unlock(&ks->mu);
    memtable_unref(fresh); /* the super version holds it */
    return rc;
}

/* Writes mem as a level-0 table and records it, with flushed_seq = seal_seq,
 * in the manifest. Runs on a worker without ks->mu; returns TIND_OK holding
 * ks->edit_mu (the caller switches the super version, then releases it). */
static int flush_write(tind_keyspace *ks, memtable *mem, uint64_t seal_seq, uint64_t *flushed_size)
{
    uint64_t number = manifest_new_file_number(ks->man);
    struct table_meta *meta = table_meta_new(ks->dir, number);
    if (!meta) return err_nomem();
    struct table_options to;
    ks_table_options(ks, 0, &to);
    table_writer *w;
    int rc = table_writer_open(meta->path, &to, &w);
    if (rc) {
        table_meta_unref(meta);
        return rc;
    }
    iiter *it = memtable_iter(mem);
    if (!it) {
        table_writer_abandon(w);
        table_meta_unref(meta);
        return err_nomem();
    }
    for (iiter_seek_first(it); it->valid && rc == TIND_OK; iiter_next(it))
        rc = table_writer_add(w, it->key, it->klen, it->tag, it->val, it->vlen);
    if (rc == TIND_OK) rc = iiter_status(it);
    iiter_destroy(it);
    if (rc) {
        table_writer_abandon(w);
        table_meta_unref(meta);
        return rc;
    }
    struct table_props props;
    table_props_init(&props);
    uint64_t size;
    if ((rc = table_writer_finish(w, &props, &size)) != TIND_OK) {
        table_meta_unref(meta);
        return rc;
    }
    *flushed_size = size;
    rc = table_meta_set_props(meta, &props, size);
    table_props_free(&props);
    struct version_edit e;
    version_edit_init(&e);
    e.has_flushed_seq = 1;
    e.flushed_seq = seal_seq;
    e.has_next_file = 1;
    e.next_file = number + 1;
    if (rc == TIND_OK) rc = version_edit_add(&e, 0, meta);
    if (rc == TIND_OK) {
        /* The super version switch follows under edit_mu too (flush_job). */
        pthread_mutex_lock(&ks->edit_mu);
        rc = manifest_apply(ks->man, &e);
        if (rc) {
            ks_manifest_failed(ks, rc);
            pthread_mutex_unlock(&ks->edit_mu);
        }
    }
    version_edit_free(&e);
    if (rc == TIND_INVALID || rc == TIND_POISONED) {
        /* The edit never reached the manifest: the file goes with the meta.
         * After any other failure the record may be on disk; the file stays,
         * and the next open keeps or removes it as the manifest says. */
        atomic_store(&meta->obsolete, 1);
    }
    table_meta_unref(meta);
    return rc;
}

static void flush_job(void *arg)
{
    tind_keyspace *ks = arg;
    pthread_mutex_lock(&ks->mu);
    for (;;) {
        if (atomic_load(&ks->dropped) || ks->nsealed == 0 || ks->flush_error) break;
        struct sealed_mem s = ks->sealed[0];
        pthread_mutex_unlock(&ks->mu);
        /* On success flush_write returns holding edit_mu: the new version and
         * the super version switch to it together. */
        uint64_t flushed_size = 0;
        int rc = flush_write(ks, s.mem, s.seal_seq, &flushed_size);
        pthread_mutex_lock(&ks->mu);
        if (rc) {
            ks_background_failed(ks, &ks->flush_error, ks->flush_errmsg, sizeof ks->flush_errmsg, rc, "flush");
            break;
        }
        memmove(ks->sealed, ks->sealed + 1, (ks->nsealed - 1) * sizeof *ks->sealed);
        ks->nsealed--;
        ks->flushes++;
        ks->flushed_seq = s.seal_seq;
        ks->flushed_bytes += flushed_size;
        /* On failure the old super version stays: it still holds the
         * memtable, so reads see the same data twice, never lose it. */
        ks_install_sv(ks);
        compact_schedule(ks);
        pthread_mutex_unlock(&ks->mu);
        pthread_mutex_unlock(&ks->edit_mu);
        memtable_unref(s.mem);
        /* Before waking the waiters: a finished tind_keyspace_flush finds
         * the journals it made unnecessary already gone. */
        flush_retire_journals(ks->db);
        pthread_mutex_lock(&ks->mu);
        ks->settled_seq = s.seal_seq;
        pthread_cond_broadcast(&ks->flush_cond);
    }
    ks->flushing = 0;
    pthread_cond_broadcast(&ks->flush_cond);
    pthread_mutex_unlock(&ks->mu);
}

static void flush_cancel(void *arg)
{
    tind_keyspace *ks = arg;
    pthread_mutex_lock(&ks->mu);
    ks->flushing = 0;
    pthread_cond_broadcast(&ks->flush_cond);
    pthread_mutex_unlock(&ks->mu);
}

void flush_schedule(tind_keyspace *ks)
{
    if (ks->flushing || ks->nsealed == 0 || ks->flush_error || atomic_load(&ks->dropped)) return;
    ks->flushing = 1;
    int rc = workers_submit(ks->db->pool, WORK_FLUSH, flush_job, flush_cancel, ks);
    if (rc) {
        ks->flushing = 0;
        ks_background_failed(ks, &ks->flush_error, ks->flush_errmsg, sizeof ks->flush_errmsg, rc, "flush");
        pthread_cond_broadcast(&ks->flush_cond);
    }
}

/* The oldest sequence number ks still holds only in memory (UINT64_MAX: none). */
static uint64_t ks_oldest_unflushed(tind_keyspace *ks)
{
    pthread_mutex_lock(&ks->mu);
    uint64_t s = UINT64_MAX;
    if (ks->nsealed > 0) s = memtable_first_seq(ks->sealed[0].mem);
    else if (ks->active && memtable_count(ks->active) > 0) s = memtable_first_seq(ks->active);
    pthread_mutex_unlock(&ks->mu);
    return s;
}

void flush_retire_journals(tind_db *db)
{
    /* Under retire_mu from the scan to the deletion: a drop that pins after
     * the scan would not be seen by it, and its record could be written,
     * its journal closed and deleted before this deletes what it scanned. */
    pthread_mutex_lock(&db->retire_mu);
    /* A write published after this is above it, and a write not yet applied
     * to its memtable (a keyspace that looks empty) is above it too: no
     * journal holding either is deleted. */
    uint64_t needed = db_last_seq(db) + 1;
    if (db->drop_pin < needed) needed = db->drop_pin;
    pthread_mutex_lock(&db->list_mu);
    for (size_t i = 0; i < db->nks; i++) {
        uint64_t s = ks_oldest_unflushed(db->ks[i]);
        if (s < needed) needed = s;
    }
    pthread_mutex_unlock(&db->list_mu);
    /* Journal deletion failing is not fatal: the files are retried next time
     * and, at worst, replayed (and skipped) at the next open. */
    journal_retire(db->jnl, needed, NULL);
    pthread_mutex_unlock(&db->retire_mu);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Why a write to ks must wait now: 0 (it need not), STALL_MEMTABLES or
 * STALL_COMPACTION. A stall is only ever one that work already started (or
 * started here) will end, or whose failure will be reported: sealed
 * memtables always have their flush queued (flush_seal), and a level-0 or
 * pending-bytes threshold stalls only while a compaction is queued or
 * running, or a major compaction holds the tree. When the strategy found
 * nothing to do in the current version (idle_gen), no compaction could end
 * the stall and the write goes on: a threshold the strategy does not relieve
 * (tiered runs of unlike sizes counted as pending, say) never hangs writers.
 * With `slow` the slowdown thresholds are used instead of the stop ones.
 * Caller holds ks->mu. */
#define STALL_MEMTABLES 1
#define STALL_COMPACTION 2
static int stall_cause(tind_keyspace *ks, int slow)
{
    if (atomic_load(&ks->dropped) || !ks->sv || atomic_load(&ks->db->closing)) return 0;
    if (!slow && ks->nsealed >= atomic_load(&ks->max_sealed)) return STALL_MEMTABLES;
    /* Level-0 thresholds apply to leveled keyspaces: tiered and FIFO ones
     * keep their runs in level 0 by design. */
    int leveled = ks->opts.compaction == TIND_COMPACTION_LEVELED;
    uint32_t l0 = slow ? ks->opts.l0_slowdown_tables : ks->opts.l0_stop_tables;
    uint64_t pend = slow ? ks->opts.pending_slowdown_bytes : ks->opts.pending_stop_bytes;
    if (!((leveled && ks->sv->ver->nfiles[0] >= l0) || ks->pending_bytes >= pend)) return 0;
    if (!ks->compacting && !ks->major && ks->idle_gen != ks->ver_gen + 1) compact_schedule(ks);
    if (ks->compact_error) return STALL_COMPACTION; /* reported, not waited for */
    if (!ks->compacting && !ks->major) return 0;
    return STALL_COMPACTION;
}

/* The status of a stall that cannot end (a failed flush or compaction),
 * with *why its message, or TIND_OK. Caller holds ks->mu. */
static int stall_error(tind_keyspace *ks, int cause, const char **why)
{
    int err = cause == STALL_MEMTABLES ? ks->flush_error : cause == STALL_COMPACTION ? ks->compact_error : 0;
    if (err) *why = cause == STALL_MEMTABLES ? ks->flush_errmsg : ks->compact_errmsg;
    return err;
}

int flush_stall_check(tind_keyspace *ks, const char **why)
{
    *why = NULL;
    pthread_mutex_lock(&ks->mu);
    int cause = stall_cause(ks, 0);
    int rc = stall_error(ks, cause, why);
    if (rc == TIND_OK && cause) rc = DB_STALLED;
    pthread_mutex_unlock(&ks->mu);
    return rc;
}

int flush_stall(tind_keyspace *ks, const char **why)
{
    *why = NULL;
    int rc = TIND_OK, stalled = 0, cause;
    uint64_t t0 = 0;
    pthread_mutex_lock(&ks->mu);
    while ((cause = stall_cause(ks, 0)) != 0) {
        if ((rc = stall_error(ks, cause, why)) != TIND_OK) break;
        if (!stalled) {
            stalled = 1;
            t0 = now_ns();
            ks->stalls++;
        }
        /* Woken when a flush or compaction ends or fails, when the
         * keyspace is dropped and when the database closes. */
        pthread_cond_wait(&ks->flush_cond, &ks->mu);
    }
    if (rc == TIND_OK && atomic_load(&ks->db->closing)) {
        *why = "the database is closing";
        rc = TIND_INVALID;
    }
    if (rc == TIND_OK && stall_cause(ks, 1)) {
        /* Slow down: one bounded wait, cut short when a compaction ends. */
        if (!stalled) t0 = now_ns();
        stalled = 1;
        ks->slowdowns++;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&ks->flush_cond, &ks->mu, &until);
    }
    if (stalled) ks->stall_ns += now_ns() - t0;
    pthread_mutex_unlock(&ks->mu);
    return rc;
}

int flush_check_journal_size(tind_db *db, uint64_t last_seq)
{
    if (journal_total_bytes(db->jnl) <= db->opts.journal_total_max_bytes) return TIND_OK;
    uint64_t oldest = journal_oldest_max_seq(db->jnl);
    if (oldest == UINT64_MAX) return TIND_OK;
    int rc = TIND_OK;
    /* Seal every keyspace whose active memtable holds writes of the oldest
     * journal and that has nothing sealed already on its way. */
    pthread_mutex_lock(&db->list_mu);
    for (size_t i = 0; i < db->nks && rc == TIND_OK; i++) {
        tind_keyspace *ks = db->ks[i];
        pthread_mutex_lock(&ks->mu);
        int pins = ks->nsealed == 0 && memtable_count(ks->active) > 0 && memtable_first_seq(ks->active) <= oldest;
        pthread_mutex_unlock(&ks->mu);
        uint64_t seal_seq;
        /* A failed seal fails the group: its journal sync failed (the
         * journal is poisoned), or the memtable could not be swapped. */
        if (pins) rc = flush_seal(ks, last_seq, &seal_seq);
    }
    pthread_mutex_unlock(&db->list_mu);
    return rc;
}

int tind_keyspace_flush(tind_keyspace *ks)
{
    err_clear();
    int rc = db_check_keyspace(ks);
    if (rc || (rc = db_check_writable(ks->db)) != TIND_OK) return rc;
    tind_keyspace *one = ks;
    struct write_target t = {.ks = &one, .n = 1, .seal = 1};
    struct journal_req r = {.payload = NULL, .len = 0, .durability = TIND_DURABILITY_BUFFERED, .user = &t};
    if ((rc = journal_write(ks->db->jnl, &r)) != TIND_OK) return rc;
    pthread_mutex_lock(&ks->mu);
    uint64_t target = t.seal_seq;
    if (!target && ks->nsealed) target = ks->sealed[ks->nsealed - 1].seal_seq;
    /* settled_seq, not flushed_seq: the caller finds the journals the flush
     * freed already gone. */
    while (target && ks->settled_seq < target && !ks->flush_error && !atomic_load(&ks->dropped))
        pthread_cond_wait(&ks->flush_cond, &ks->mu);
    if (target && ks->settled_seq < target)
        rc = ks->flush_error ? err_set(ks->flush_error, "%s", ks->flush_errmsg)
                             : err_set(TIND_INVALID, "keyspace %s was dropped", ks->name);
    pthread_mutex_unlock(&ks->mu);
    return rc;
}
