/* The journal writer with group commit (see journal.h for the protocol). */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "journal/payload.h"
#include "src/util/array.h"
#include "src/util/err.h"
#include "src/util/file.h"

/* At most this many requests per group: two iovecs each stay under IOV_MAX. */
#define GROUP_MAX_REQS 500

struct journal {
    char *dir;
    uint64_t max_bytes;
    size_t group_max_bytes;
    int parallel_apply;
    struct journal_callbacks cb;

    /* mu guards the queue (head/tail, and each queued request's next and
     * done), poisoned and the closed-file list. It is never held across I/O
     * or the apply callback. */
    struct tmutex mu;
    struct journal_req *head GUARDED_BY(mu), *tail GUARDED_BY(mu);
    int poisoned GUARDED_BY(mu);
    /* The message of the failure that poisoned it. Written under mu, only
     * while poisoned is still 0 or by the leader; so once a leader has seen
     * poisoned set, it may read errmsg without mu (journal_write's end). */
    char errmsg[512];
    /* Closed journal files, oldest first, with the highest sequence number
     * each may hold: retired once every keyspace has flushed past it. */
    struct jfile {
        uint64_t number, max_seq, bytes;
    } *closed PT_GUARDED_BY(mu) GUARDED_BY(mu);
    size_t nclosed GUARDED_BY(mu), capclosed GUARDED_BY(mu);
    uint64_t closed_bytes GUARDED_BY(mu);
    /* A group applied in parallel: requests whose apply_one has yet to
     * return, and the first failure among them with its message. */
    size_t par_pending GUARDED_BY(mu);
    int par_rc GUARDED_BY(mu);
    char par_msg[512] GUARDED_BY(mu);
    /* Counters: written by leaders, read by stats without the leader. */
    _Atomic uint64_t writes, groups, syncs, parallel_groups;

    /* Leader-only state: touched by the current leader alone, and handed
     * from leader to leader through mu. */
    tfile *file;
    _Atomic uint64_t number; /* written by the leader, read by stats */
    uint64_t assigned_seq;      /* last sequence number given out */
    struct journal_req *group[GROUP_MAX_REQS];
    uint8_t headers[GROUP_MAX_REQS][JOURNAL_RECORD_HEADER];
    struct iovec iov[2 * GROUP_MAX_REQS];

    /* Published for readers: everything up to it is applied. */
    _Atomic uint64_t last_seq;
    /* Size of the current file, readable by stats without the leader. */
    _Atomic uint64_t file_bytes;
};

static int journal_path(const journal *j, uint64_t number, char *out, size_t cap)
{
    char name[JOURNAL_NAME_LEN + 1];
    journal_file_name(name, number);
    if (snprintf(out, cap, "%s/%s", j->dir, name) >= (int)cap)
        return err_set(TIND_INVALID, "journal path too long in %s", j->dir);
    return TIND_OK;
}

/* Creates journal `number` after base_seq: header written and synced, then
 * the directory synced, so that the file exists durably before any record.
 * Open or the leader, without mu. */
static int journal_start_file(journal *j, uint64_t number, uint64_t base_seq) EXCLUDES(j->mu)
{
    char path[PATH_MAX];
    int rc = journal_path(j, number, path, sizeof path);
    if (rc) return rc;
    tfile *f;
    if ((rc = file_open(path, FILE_WRITE | FILE_CREATE | FILE_EXCL, &f)) != TIND_OK) return rc;
    uint8_t hdr[JOURNAL_HEADER_SIZE];
    struct journal_header h = {.number = number, .base_seq = base_seq};
    journal_header_encode(hdr, &h);
    if ((rc = file_append(f, hdr, sizeof hdr)) != TIND_OK || (rc = file_sync(f, 1)) != TIND_OK ||
        (rc = file_sync_dir(j->dir)) != TIND_OK) {
        file_close(f);
        return rc;
    }
    j->file = f;
    j->number = number;
    atomic_store(&j->file_bytes, file_size(f));
    return TIND_OK;
}

int journal_open(const struct journal_config *cfg, uint64_t number, uint64_t last_seq,
                 const struct journal_callbacks *cb, journal **out)
{
    *out = NULL;
    journal *j = calloc(1, sizeof *j);
    if (!j) return err_nomem();
    j->dir = strdup(cfg->dir);
    if (!j->dir) {
        free(j);
        return err_nomem();
    }
    j->max_bytes = cfg->max_bytes;
    j->group_max_bytes = cfg->group_max_bytes ? cfg->group_max_bytes : (1u << 20);
    j->cb = *cb;
    j->parallel_apply = cfg->parallel_apply && cb->apply_one && cb->apply_finish;
    j->assigned_seq = last_seq;
    atomic_init(&j->last_seq, last_seq);
    (void)tmutex_init(&j->mu); /* cannot fail with default attributes */
    int rc = journal_start_file(j, number, last_seq);
    if (rc) {
        tmutex_destroy(&j->mu);
        free(j->dir);
        free(j);
        return rc;
    }
    *out = j;
    return TIND_OK;
}

int journal_open_read_only(uint64_t number, uint64_t bytes, uint64_t last_seq, journal **out)
{
    *out = NULL;
    journal *j = calloc(1, sizeof *j);
    if (!j) return err_nomem();
    j->number = number;
    atomic_init(&j->file_bytes, bytes);
    j->assigned_seq = last_seq;
    atomic_init(&j->last_seq, last_seq);
    (void)tmutex_init(&j->mu);
    *out = j;
    return TIND_OK;
}

int journal_close(journal *j)
{
    if (!j) return TIND_OK;
    int rc = file_close(j->file);
    tmutex_destroy(&j->mu);
    free(j->closed);
    free(j->dir);
    free(j);
    return rc;
}

uint64_t journal_total_bytes(journal *j)
{
    tmutex_lock(&j->mu);
    uint64_t n = j->closed_bytes;
    tmutex_unlock(&j->mu);
    return n + atomic_load(&j->file_bytes);
}

uint64_t journal_oldest_max_seq(journal *j)
{
    tmutex_lock(&j->mu);
    uint64_t s = j->nclosed ? j->closed[0].max_seq : UINT64_MAX;
    tmutex_unlock(&j->mu);
    return s;
}

int journal_retire(journal *j, uint64_t needed_seq, uint64_t *removed)
{
    if (removed) *removed = 0;
    uint64_t nums[64];
    size_t n = 0;
    tmutex_lock(&j->mu);
    /* Files are oldest first and max_seq only grows along the list. */
    while (n < j->nclosed && n < 64 && j->closed[n].max_seq < needed_seq) {
        nums[n] = j->closed[n].number;
        j->closed_bytes -= j->closed[n].bytes;
        n++;
    }
    if (n > 0) {
        memmove(j->closed, j->closed + n, (j->nclosed - n) * sizeof *j->closed);
        j->nclosed -= n;
    }
    tmutex_unlock(&j->mu);
    int rc = TIND_OK;
    char path[PATH_MAX];
    for (size_t i = 0; i < n && rc == TIND_OK; i++) {
        if ((rc = journal_path(j, nums[i], path, sizeof path)) == TIND_OK) rc = file_unlink(path);
    }
    if (n > 0 && rc == TIND_OK) rc = file_sync_dir(j->dir);
    if (removed) *removed = n;
    return rc;
}

uint64_t journal_last_seq(const journal *j)
{
    return atomic_load_explicit(&j->last_seq, memory_order_acquire);
}

int journal_poisoned(const journal *j)
{
    journal *mj = (journal *)j;
    tmutex_lock(&mj->mu);
    int p = mj->poisoned;
    tmutex_unlock(&mj->mu);
    return p;
}

int journal_check_poisoned(journal *j)
{
    tmutex_lock(&j->mu);
    int rc = j->poisoned ? err_set(TIND_POISONED, "the database failed earlier (%s); reopen it", j->errmsg) : TIND_OK;
    tmutex_unlock(&j->mu);
    return rc;
}

void journal_poison(journal *j, int rc, const char *msg)
{
    tmutex_lock(&j->mu);
    if (!j->poisoned) {
        j->poisoned = rc ? rc : TIND_POISONED;
        snprintf(j->errmsg, sizeof j->errmsg, "%s", msg);
    }
    tmutex_unlock(&j->mu);
}

void journal_get_stats(journal *j, struct journal_stats *st)
{
    st->writes = atomic_load_explicit(&j->writes, memory_order_relaxed);
    st->groups = atomic_load_explicit(&j->groups, memory_order_relaxed);
    st->syncs = atomic_load_explicit(&j->syncs, memory_order_relaxed);
    st->parallel_groups = atomic_load_explicit(&j->parallel_groups, memory_order_relaxed);
    st->number = atomic_load_explicit(&j->number, memory_order_relaxed);
    st->current_bytes = atomic_load(&j->file_bytes);
}

/* Records a closed journal file. */
static int closed_push(journal *j, uint64_t number, uint64_t max_seq, uint64_t bytes) EXCLUDES(j->mu)
{
    tmutex_lock(&j->mu);
    int rc = array_reserve((void **)&j->closed, j->nclosed, &j->capclosed, sizeof *j->closed, 16);
    if (rc == TIND_OK) {
        j->closed[j->nclosed++] = (struct jfile){number, max_seq, bytes};
        j->closed_bytes += bytes;
    }
    tmutex_unlock(&j->mu);
    return rc;
}

int journal_adopt(journal *j, uint64_t number, uint64_t max_seq, uint64_t bytes)
{
    return closed_push(j, number, max_seq, bytes);
}

/* Closes the full journal (synced first, so that a later journal never
 * survives a power loss that an earlier one did not) and starts the next.
 * Leader, without mu. */
static int journal_rotate(journal *j, uint64_t base_seq) EXCLUDES(j->mu)
{
    int rc = file_sync(j->file, 1);
    if (rc) return rc;
    if ((rc = closed_push(j, j->number, base_seq, file_size(j->file))) != TIND_OK) return rc;
    atomic_fetch_add_explicit(&j->syncs, 1, memory_order_relaxed);
    if ((rc = file_close(j->file)) != TIND_OK) {
        j->file = NULL;
        return rc;
    }
    j->file = NULL;
    return journal_start_file(j, j->number + 1, base_seq);
}

int journal_rotate_current(journal *j)
{
    if (!j->file) return err_set(TIND_IO_ERROR, "journal in %s has no open file", j->dir);
    if (file_size(j->file) <= JOURNAL_HEADER_SIZE) return TIND_OK;
    /* Every sequence number given out so far is in a record of this file or
     * an earlier one (the group's records are written before its apply). */
    int rc = journal_rotate(j, j->assigned_seq);
    /* Its file may be closed with no successor: nothing may follow. */
    if (rc != TIND_OK) journal_poison(j, rc, err_msg());
    return rc;
}

int journal_sync_current(journal *j)
{
    if (!j->file) return err_set(TIND_IO_ERROR, "journal in %s has no open file", j->dir);
    int rc = file_sync(j->file, 1);
    if (rc == TIND_OK) {
        atomic_fetch_add_explicit(&j->syncs, 1, memory_order_relaxed);
        return TIND_OK;
    }
    /* Never retried: a later sync could report success without the pages
     * this one lost. Poisoned here, whatever the caller does with rc, so no
     * write is acknowledged on top of it. */
    journal_poison(j, rc, err_msg());
    return rc;
}

/* Leader: writes the group's records with one write and at most one sync.
 * Called without mu. Returns the status every member of the group gets. */
static int journal_write_group(journal *j, struct journal_req **grp, size_t n, uint64_t base_seq, int *synced)
    EXCLUDES(j->mu)
{
    int need_sync = TIND_DURABILITY_BUFFERED;
    size_t bytes = 0;
    int iovcnt = 0, rotate = 0;
    for (size_t i = 0; i < n; i++) {
        struct journal_req *r = grp[i];
        if (r->durability > need_sync) need_sync = r->durability;
        if (r->rotate) rotate = 1;
        if (r->len == 0) continue;
        journal_record_header_encode(j->headers[i], r->payload, r->len);
        j->iov[iovcnt++] = (struct iovec){j->headers[i], JOURNAL_RECORD_HEADER};
        j->iov[iovcnt++] = (struct iovec){r->payload, r->len};
        bytes += JOURNAL_RECORD_HEADER + r->len;
    }
    int rc;
    if (!j->file) return err_set(TIND_IO_ERROR, "journal in %s has no open file", j->dir);
    if (file_size(j->file) > JOURNAL_HEADER_SIZE && (rotate || (bytes > 0 && file_size(j->file) + bytes > j->max_bytes))) {
        if ((rc = journal_rotate(j, base_seq)) != TIND_OK) return rc;
    }
    if (iovcnt > 0 && (rc = file_appendv(j->file, j->iov, iovcnt)) != TIND_OK) return rc;
    atomic_store(&j->file_bytes, file_size(j->file));
    *synced = 0;
    if (need_sync >= TIND_DURABILITY_SYNC_DATA) {
        if ((rc = file_sync(j->file, need_sync == TIND_DURABILITY_SYNC_DATA)) != TIND_OK) return rc;
        *synced = 1;
    }
    return TIND_OK;
}

/* A request done by another leader: records its message and returns its
 * status. */
static int journal_follower_done(journal *j, struct journal_req *r) REQUIRES(j->mu)
{
    if (r->status == TIND_POISONED)
        err_set(TIND_POISONED, "the database failed earlier (%s); reopen it", j->errmsg);
    else if (r->status && r->why)
        err_set(r->status, "%s", r->why);
    else if (r->status)
        err_set(r->status, "%s", j->errmsg);
    return r->status;
}

/* Leader r gathers its group from the queue into j->group: at most
 * GROUP_MAX_REQS requests and about limit bytes. A request with seq_count 0
 * and a payload (a keyspace drop) goes alone, so that the requests after it
 * are prepared against its effect. Returns the count; *last is the group's
 * last request. */
static size_t journal_gather(journal *j, struct journal_req *r, struct journal_req **last) REQUIRES(j->mu)
{
    size_t n = 0, bytes = 0;
    size_t limit = r->len <= (128u << 10) ? r->len + (128u << 10) : j->group_max_bytes;
    *last = r;
    for (struct journal_req *q = r; q && n < GROUP_MAX_REQS; q = q->next) {
        int alone = q->len > 0 && q->seq_count == 0;
        if (n > 0 && (alone || bytes + q->len > limit)) break;
        j->group[n++] = q;
        bytes += q->len;
        *last = q;
        if (alone) break;
    }
    return n;
}

/* Prepares the n gathered requests (outside the mutex, the leader alone):
 * a refused one gets its status and leaves the group, a kept one its
 * sequence numbers, stamped into its payload. Returns the count kept, at the
 * front of j->group; *writes counts those with a payload. */
static size_t journal_prepare_group(journal *j, size_t n, size_t *writes)
{
    size_t kept = 0;
    *writes = 0;
    for (size_t i = 0; i < n; i++) {
        struct journal_req *q = j->group[i];
        q->first_seq = j->assigned_seq + 1; /* what it gets if prepare keeps it */
        int prc = j->cb.prepare ? j->cb.prepare(j->cb.ctx, q) : TIND_OK;
        if (prc != TIND_OK) {
            q->status = prc;
            continue;
        }
        if (q->seq_count > 0) {
            q->first_seq = j->assigned_seq + 1;
            j->assigned_seq += q->seq_count;
            payload_stamp_seq(q->payload, q->first_seq);
        }
        j->group[kept++] = q;
        if (q->len > 0) (*writes)++;
    }
    return kept;
}

/* The group r .. last ended with rc: poisons the journal on a failure,
 * counts a success, gives every member its status (its own refusal, or the
 * group's), wakes them and hands the lead to the next queued request. */
static void journal_finish_group(journal *j, struct journal_req *r, struct journal_req *last, int rc, size_t writes,
                                 int synced) REQUIRES(j->mu)
{
    if (rc != TIND_OK && rc != TIND_POISONED) {
        j->poisoned = rc;
        snprintf(j->errmsg, sizeof j->errmsg, "%s", err_msg());
    }
    if (rc == TIND_OK) {
        atomic_fetch_add_explicit(&j->writes, writes, memory_order_relaxed);
        atomic_fetch_add_explicit(&j->groups, writes > 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&j->syncs, (uint64_t)synced, memory_order_relaxed);
    }
    for (struct journal_req *q = r;; q = q->next) {
        if (q->status == TIND_OK) q->status = rc;
        q->done = 1;
        if (q != r) tcond_signal(&q->cond);
        if (q == last) break;
    }
    j->head = last->next;
    if (!j->head) j->tail = NULL;
    else tcond_signal(&j->head->cond);
}

/* Is the kept group one to apply in parallel: two batches or more, with
 * enough operations between them? */
static int journal_group_parallel(const journal *j, size_t kept)
{
    if (!j->parallel_apply || kept < 2) return 0;
    uint64_t ops = 0;
    for (size_t i = 0; i < kept; i++) {
        const struct journal_req *q = j->group[i];
        if (q->len == 0 || q->seq_count == 0 || q->payload[0] != JPAYLOAD_BATCH) return 0;
        ops += q->seq_count;
    }
    return ops >= JOURNAL_PARALLEL_MIN_OPS;
}

/* One request's apply_one, its failure recorded for the group; the last to
 * return wakes the leader. Called without mu. */
static void journal_apply_member(journal *j, struct journal_req *q, struct journal_req *leader) EXCLUDES(j->mu)
{
    int rc = j->cb.apply_one(j->cb.ctx, q);
    tmutex_lock(&j->mu);
    if (rc != TIND_OK && j->par_rc == TIND_OK) {
        j->par_rc = rc;
        snprintf(j->par_msg, sizeof j->par_msg, "%s", err_msg());
    }
    if (--j->par_pending == 0 && q != leader) tcond_signal(&leader->cond);
    tmutex_unlock(&j->mu);
}

/* Leader r: the kept group applied by its writers at once, r's own request
 * (when kept) by r, then apply_finish. The members are blocked in
 * journal_write until done, so each is woken to apply its own. */
static int journal_apply_parallel(journal *j, struct journal_req *r, size_t kept) EXCLUDES(j->mu)
{
    int own = 0;
    tmutex_lock(&j->mu);
    j->par_pending = kept;
    j->par_rc = TIND_OK;
    for (size_t i = 0; i < kept; i++) {
        struct journal_req *q = j->group[i];
        if (q == r) {
            own = 1;
            continue;
        }
        q->apply_now = 1;
        tcond_signal(&q->cond);
    }
    tmutex_unlock(&j->mu);
    if (own) journal_apply_member(j, r, r);
    tmutex_lock(&j->mu);
    while (j->par_pending > 0) tcond_wait(&r->cond, &j->mu);
    int rc = j->par_rc;
    if (rc != TIND_OK) err_set(rc, "%s", j->par_msg);
    tmutex_unlock(&j->mu);
    atomic_fetch_add_explicit(&j->parallel_groups, 1, memory_order_relaxed);
    return rc == TIND_OK ? j->cb.apply_finish(j->cb.ctx, j->group, kept) : rc;
}

int journal_write(journal *j, struct journal_req *r)
{
    r->status = TIND_OK;
    r->done = 0;
    r->next = NULL;
    r->first_seq = 0;
    r->why = NULL;
    r->apply_now = 0;
    (void)tcond_init(&r->cond);

    tmutex_lock(&j->mu);
    if (j->poisoned) {
        err_set(TIND_POISONED, "the database failed earlier (%s); reopen it", j->errmsg);
        tmutex_unlock(&j->mu);
        tcond_destroy(&r->cond);
        return TIND_POISONED;
    }
    if (j->tail) j->tail->next = r;
    else j->head = r;
    j->tail = r;
    while (!r->done && j->head != r) {
        if (r->apply_now) {
            /* The leader of this request's group hands its apply over. */
            r->apply_now = 0;
            struct journal_req *leader = j->head;
            tmutex_unlock(&j->mu);
            journal_apply_member(j, r, leader);
            tmutex_lock(&j->mu);
            continue;
        }
        tcond_wait(&r->cond, &j->mu);
    }
    if (r->done) {
        int st = journal_follower_done(j, r);
        tmutex_unlock(&j->mu);
        tcond_destroy(&r->cond);
        return st;
    }

    /* r leads. */
    struct journal_req *last;
    size_t n = journal_gather(j, r, &last);
    int poisoned = j->poisoned;
    tmutex_unlock(&j->mu);

    int rc = poisoned ? TIND_POISONED : TIND_OK;
    size_t writes = 0;
    int synced = 0;
    uint64_t base_seq = j->assigned_seq; /* before this group: a new journal's base */
    if (rc == TIND_OK) {
        size_t kept = journal_prepare_group(j, n, &writes);
        rc = journal_write_group(j, j->group, kept, base_seq, &synced);
        if (rc == TIND_OK && kept > 0 && journal_group_parallel(j, kept))
            rc = journal_apply_parallel(j, r, kept);
        else if (rc == TIND_OK && j->cb.apply && kept > 0)
            rc = j->cb.apply(j->cb.ctx, j->group, kept);
        if (rc == TIND_OK) atomic_store_explicit(&j->last_seq, j->assigned_seq, memory_order_release);
    }

    tmutex_lock(&j->mu);
    journal_finish_group(j, r, last, rc, writes, synced);
    tmutex_unlock(&j->mu);

    tcond_destroy(&r->cond);
    if (r->status == TIND_POISONED && poisoned)
        err_set(TIND_POISONED, "the database failed earlier (%s); reopen it", j->errmsg);
    else if (r->status && r->why)
        err_set(r->status, "%s", r->why);
    return r->status;
}
