/* The manifest of one LSM tree: the log of its versions.
 *
 *   MANIFEST := record(snapshot edit) record(edit)*
 *
 * Records are framed as in src/util/record.h; payloads are version edits
 * (lsm/version.c has the grammar). The first record holds the whole state
 * (the snapshot marker, flushed_seq, next_file and every table); each later
 * record is one applied edit. The current version is the first record's
 * state with every later edit applied in order.
 *
 * Durability: an edit is appended and MANIFEST fsynced before the version it
 * makes is used. When the append would take MANIFEST past the rewrite limit,
 * the new state is instead written as the only record of MANIFEST.tmp,
 * fsynced, renamed over MANIFEST, and the directory fsynced: the rename
 * switches atomically from the old log to the new one, so a crash leaves
 * one or the other whole. MANIFEST itself only ever comes into being by
 * such a rename, so its first record is never torn.
 *
 * Recovery: a bad record with no valid record after it is an append that
 * never completed (its edit was never used: nothing was deleted because of
 * it) and is cut off; any other damage is TIND_CORRUPTION. */
#include "lsm/version.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "lsm/ikey.h"
#include "src/util/err.h"
#include "src/util/file.h"
#include "src/util/mutex.h"
#include "src/util/record.h"

#define MANIFEST_TMP MANIFEST_FILE ".tmp"

/* An append that would take MANIFEST past the larger of these rewrites it
 * as one snapshot instead: a small tree's log stays small, and a large
 * tree's rewrite (which costs the size of its state) comes only after edits
 * of at least three times that size. */
#define MANIFEST_REWRITE_MIN (UINT64_C(4) << 20)
#define MANIFEST_REWRITE_FACTOR 4

struct manifest {
    char *dir, *path, *tmp_path;
    /* Used only by the applying thread (callers serialize manifest_apply),
     * and by open and close: */
    tfile *f;               /* MANIFEST, open for appends; NULL when read-only */
    int read_only;          /* opened by manifest_open_read_only: applies are refused */
    uint64_t snapshot_size; /* bytes of MANIFEST's first record */
    atomic_int poisoned;    /* a write, sync or rename failed: no more applies */
    int check_tables;       /* open: every table the log holds must exist */
    /* The next table number to hand out: above every number recorded or
     * handed out. Any thread. */
    _Atomic uint64_t next_file;
    /* lock guards current and flushed_seq: the applier writes them under it
     * and any other thread reads them under it. Without it: the applier's
     * reads (it is their only writer), and open and close, which run before
     * and after any other thread has the handle. Never held across I/O or
     * while taking another lock. */
    struct tmutex lock;
    struct version *current GUARDED_BY(lock);
    uint64_t flushed_seq GUARDED_BY(lock);
};

/* ---- versions: building and checking -------------------------------------------- */

static struct version *manifest_version_new(void)
{
    struct version *v = calloc(1, sizeof *v);
    if (v) atomic_init(&v->refs, 1);
    return v;
}

static int manifest_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Level 0: newest first by max_seq, then the higher number first. By
 * max_seq rather than number because a merge that writes its output back
 * to level 0 (tiered, FIFO) takes new numbers for old data: its run must
 * stay behind the newer flushes. Flushes take increasing numbers with
 * increasing max_seq, so for them both orders agree. */
static int manifest_l0_newer(const struct table_meta *x, const struct table_meta *y)
{
    return x->max_seq > y->max_seq || (x->max_seq == y->max_seq && x->number > y->number);
}

static int manifest_cmp_newest(const void *a, const void *b)
{
    const struct table_meta *x = *(struct table_meta *const *)a, *y = *(struct table_meta *const *)b;
    return manifest_l0_newer(x, y) ? -1 : manifest_l0_newer(y, x);
}

/* Levels >= 1: by smallest internal key (then number, so that the order is
 * total even for the overlapping tables the check then refuses). */
static int manifest_cmp_smallest(const void *a, const void *b)
{
    const struct table_meta *x = *(struct table_meta *const *)a, *y = *(struct table_meta *const *)b;
    int c = ikey_cmp(x->smallest.p, x->smallest.len, x->smallest_tag, y->smallest.p, y->smallest.len,
                     y->smallest_tag);
    if (c) return c;
    return x->number < y->number ? -1 : x->number > y->number;
}

/* The invariants of a version: each table's smallest <= largest (internal
 * order) and min_seq <= max_seq; level 0 newest first (descending max_seq,
 * ties by strictly descending number);
 * every level >= 1 sorted by key with disjoint user-key ranges (a user key
 * lives in at most one table of such a level, so a point read looks at one);
 * level_bytes the sum of its tables' sizes; no table number twice. TIND_OK,
 * TIND_CORRUPTION with `what` naming the first problem, or TIND_NO_MEMORY. */
static int manifest_check_version(const struct version *v, char *what, size_t cap)
{
    size_t total = 0, k = 0;
    for (int l = 0; l < LSM_LEVELS; l++) total += v->nfiles[l];
    uint64_t *nums = malloc((total ? total : 1) * sizeof *nums);
    if (!nums) return err_nomem();
    int rc = TIND_CORRUPTION;
    for (unsigned l = 0; l < LSM_LEVELS; l++) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            const struct table_meta *m = v->files[l][i];
            unsigned long long num = (unsigned long long)m->number;
            if (ikey_cmp(m->smallest.p, m->smallest.len, m->smallest_tag, m->largest.p, m->largest.len,
                         m->largest_tag) > 0) {
                snprintf(what, cap, "level %u table %llu: smallest key above its largest", l, num);
                goto done;
            }
            if (m->min_seq > m->max_seq) {
                snprintf(what, cap, "level %u table %llu: min_seq %llu above max_seq %llu", l, num,
                         (unsigned long long)m->min_seq, (unsigned long long)m->max_seq);
                goto done;
            }
            bytes += m->size;
            nums[k++] = m->number;
            if (i == 0) continue;
            const struct table_meta *p = v->files[l][i - 1];
            if (l == 0 && !manifest_l0_newer(p, m)) {
                snprintf(what, cap, "level 0: table %llu comes after table %llu, which is not newer by max_seq", num,
                         (unsigned long long)p->number);
                goto done;
            }
            if (l > 0 && ukey_cmp(p->largest.p, p->largest.len, m->smallest.p, m->smallest.len) >= 0) {
                snprintf(what, cap, "level %u: table %llu overlaps table %llu before it or is out of order", l,
                         num, (unsigned long long)p->number);
                goto done;
            }
        }
        if (bytes != v->level_bytes[l]) {
            snprintf(what, cap, "level %u: level_bytes %llu but its tables hold %llu", l,
                     (unsigned long long)v->level_bytes[l], (unsigned long long)bytes);
            goto done;
        }
    }
    qsort(nums, total, sizeof *nums, manifest_cmp_u64);
    for (size_t i = 1; i < total; i++) {
        if (nums[i] == nums[i - 1]) {
            snprintf(what, cap, "table %llu is held twice", (unsigned long long)nums[i]);
            goto done;
        }
    }
    rc = TIND_OK;
done:
    free(nums);
    return rc;
}

/* Builds in *out the version that e makes of base and checks it. The
 * metas of base that e deletes and does not add back (a move to another
 * level keeps the file) go to *gone when gone is not NULL. TIND_INVALID with
 * `what` naming the first problem (an unknown table deleted, a table held
 * twice, overlapping ranges, a meta out of order with itself), or
 * TIND_NO_MEMORY. Touches neither base nor e. */
static int manifest_build(const struct version *base, const struct version_edit *e, struct version **out,
                          struct table_meta ***gone, size_t *ngone, char *what, size_t cap)
{
    *out = NULL;
    if (gone) {
        *gone = NULL;
        *ngone = 0;
    }
    struct version *v = NULL;
    struct table_meta **g = NULL;
    size_t ng = 0, total = 0, first[LSM_LEVELS], ndead[LSM_LEVELS] = {0}, nadd[LSM_LEVELS] = {0};
    int rc = TIND_OK;
    for (int l = 0; l < LSM_LEVELS; l++) {
        first[l] = total;
        total += base->nfiles[l];
    }
    /* dead[first[l] + i]: e deletes base->files[l][i]. */
    unsigned char *dead = calloc(total ? total : 1, 1);
    if (!dead) return err_nomem();
    for (size_t j = 0; j < e->nadds; j++) {
        if (e->adds[j].level >= LSM_LEVELS || !e->adds[j].meta) {
            snprintf(what, cap, "an addition to level %u (of %d) without a table", e->adds[j].level, LSM_LEVELS);
            rc = TIND_INVALID;
            goto done;
        }
        nadd[e->adds[j].level]++;
    }
    for (size_t j = 0; j < e->ndels; j++) {
        unsigned l = e->dels[j].level;
        size_t i = 0;
        if (l < LSM_LEVELS)
            while (i < base->nfiles[l] && base->files[l][i]->number != e->dels[j].number) i++;
        if (l >= LSM_LEVELS || i == base->nfiles[l]) {
            snprintf(what, cap, "deletes table %llu, which level %u does not hold",
                     (unsigned long long)e->dels[j].number, l);
            rc = TIND_INVALID;
            goto done;
        }
        if (dead[first[l] + i]++) {
            snprintf(what, cap, "deletes table %llu twice", (unsigned long long)e->dels[j].number);
            rc = TIND_INVALID;
            goto done;
        }
        ndead[l]++;
    }
    if (!(v = manifest_version_new())) {
        rc = err_nomem();
        goto done;
    }
    for (unsigned l = 0; l < LSM_LEVELS; l++) {
        size_t n = base->nfiles[l] - ndead[l] + nadd[l];
        if (n == 0) continue;
        if (!(v->files[l] = malloc(n * sizeof *v->files[l]))) {
            rc = err_nomem();
            goto done;
        }
        for (size_t i = 0; i < base->nfiles[l]; i++) {
            if (dead[first[l] + i]) continue;
            table_meta_ref(base->files[l][i]);
            v->files[l][v->nfiles[l]++] = base->files[l][i];
        }
        for (size_t j = 0; j < e->nadds; j++) {
            if (e->adds[j].level != l) continue;
            table_meta_ref(e->adds[j].meta);
            v->files[l][v->nfiles[l]++] = e->adds[j].meta;
        }
        for (size_t i = 0; i < n; i++) v->level_bytes[l] += v->files[l][i]->size;
        qsort(v->files[l], n, sizeof *v->files[l], l == 0 ? manifest_cmp_newest : manifest_cmp_smallest);
    }
    if ((rc = manifest_check_version(v, what, cap)) != TIND_OK) {
        if (rc == TIND_CORRUPTION) rc = TIND_INVALID;
        goto done;
    }
    if (gone && e->ndels) {
        if (!(g = malloc(e->ndels * sizeof *g))) {
            rc = err_nomem();
            goto done;
        }
        for (unsigned l = 0; l < LSM_LEVELS; l++) {
            for (size_t i = 0; i < base->nfiles[l]; i++) {
                if (!dead[first[l] + i]) continue;
                /* The check above refused duplicates, so a deleted number
                 * is still held only if e adds it back. */
                size_t j = 0;
                while (j < e->nadds && e->adds[j].meta->number != base->files[l][i]->number) j++;
                if (j == e->nadds) g[ng++] = base->files[l][i];
            }
        }
    }
done:
    free(dead);
    if (rc) {
        version_unref(v);
        free(g);
        return rc;
    }
    *out = v;
    if (gone) {
        *gone = g;
        *ngone = ng;
    } else {
        free(g);
    }
    return TIND_OK;
}

/* ---- writing ------------------------------------------------------------------------ */

static int manifest_append_record(tfile *f, const buf *payload)
{
    uint8_t h[RECORD_HEADER_SIZE];
    record_header_encode(h, payload->p, payload->len);
    struct iovec iov[2] = {{h, sizeof h}, {payload->p, payload->len}};
    return file_appendv(f, iov, 2);
}

/* The payload of a snapshot record of v. */
static int manifest_snapshot_encode(const struct version *v, uint64_t flushed, uint64_t next, buf *out)
{
    struct version_edit e;
    version_edit_init(&e);
    e.snapshot = 1;
    e.has_flushed_seq = 1;
    e.flushed_seq = flushed;
    e.has_next_file = 1;
    e.next_file = next;
    int rc = TIND_OK;
    for (unsigned l = 0; l < LSM_LEVELS && rc == TIND_OK; l++)
        for (size_t i = 0; i < v->nfiles[l] && rc == TIND_OK; i++) rc = version_edit_add(&e, l, v->files[l][i]);
    if (rc == TIND_OK) rc = version_edit_encode(&e, out);
    version_edit_free(&e);
    return rc;
}

/* Makes the snapshot payload the whole of MANIFEST: MANIFEST.tmp written and
 * fsynced, renamed over MANIFEST, the directory fsynced; then MANIFEST is
 * opened for appends into *f. MANIFEST is untouched until the rename; after
 * the rename a reopen finds the new state, durably once the directory sync
 * has returned. A failure leaves MANIFEST.tmp for the next open to remove. */
static int manifest_write_snapshot(manifest *m, const buf *payload, tfile **f)
{
    *f = NULL;
    tfile *t = NULL;
    int rc = file_open(m->tmp_path, FILE_WRITE | FILE_CREATE | FILE_TRUNC, &t);
    if (rc) return rc;
    if ((rc = manifest_append_record(t, payload)) != TIND_OK || (rc = file_sync(t, 0)) != TIND_OK) {
        file_close(t);
        return rc;
    }
    /* A close error after a sync is treated as a failed sync. */
    if ((rc = file_close(t)) != TIND_OK) return rc;
    if ((rc = file_rename(m->tmp_path, m->path)) != TIND_OK) return rc;
    if ((rc = file_sync_dir(m->dir)) != TIND_OK) return rc;
    /* Reopened by name, so that later appends and their messages name MANIFEST. */
    return file_open(m->path, FILE_WRITE, f);
}

/* The next file number to record with e: above every number handed out so
 * far and every number e adds; m->next_file is raised to it. */
static uint64_t manifest_next_for(manifest *m, const struct version_edit *e)
{
    uint64_t want = e->has_next_file ? e->next_file : 0;
    for (size_t j = 0; j < e->nadds; j++) {
        uint64_t n = e->adds[j].meta->number;
        if (n != UINT64_MAX && n + 1 > want) want = n + 1;
    }
    uint64_t cur = atomic_load(&m->next_file);
    while (cur < want && !atomic_compare_exchange_weak(&m->next_file, &cur, want)) {
    }
    return cur < want ? want : cur;
}

int manifest_poisoned(manifest *m) { return atomic_load(&m->poisoned); }

/* Callers serialize applies (the applier alone reads m->current without the
 * lock and owns m->f); m->lock is taken only for the switch. The edit gets
 * has_next_file/next_file set to what was recorded. After an I/O failure the
 * edit may or may not be on disk: the caller must leave the files it adds
 * alone (the next open keeps them or removes them by what it reads); only
 * TIND_INVALID and TIND_POISONED guarantee that nothing was written. */
int manifest_apply(manifest *m, struct version_edit *e)
{
    if (atomic_load(&m->poisoned))
        return err_set(TIND_POISONED, "manifest %s: an earlier write or sync failed; reopen the tree", m->path);
    if (m->read_only) return err_set(TIND_INVALID, "manifest %s: opened read-only", m->path);
    if (e->snapshot) return err_set(TIND_INVALID, "manifest %s: a snapshot is not an edit to apply", m->path);
    char what[256];
    struct version *nv = NULL;
    struct table_meta **gone = NULL;
    size_t ngone = 0;
    buf payload;
    buf_init(&payload);
    int rc = manifest_build(m->current, e, &nv, &gone, &ngone, what, sizeof what);
    if (rc == TIND_INVALID) rc = err_set(rc, "manifest %s: edit refused: %s", m->path, what);
    if (rc) goto done;

    /* Recording next_file in every edit keeps a reopened manifest from
     * handing out a number that a table on disk may already carry. */
    uint64_t next = manifest_next_for(m, e);
    e->has_next_file = 1;
    e->next_file = next;
    uint64_t flushed = e->has_flushed_seq ? e->flushed_seq : m->flushed_seq;

    uint64_t limit = MANIFEST_REWRITE_FACTOR * m->snapshot_size;
    if (limit < MANIFEST_REWRITE_MIN) limit = MANIFEST_REWRITE_MIN;
    if ((rc = version_edit_encode(e, &payload)) != TIND_OK) goto done;
    if (file_size(m->f) + RECORD_HEADER_SIZE + payload.len > limit) {
        /* The new state as one snapshot carries the edit: no append. */
        tfile *nf;
        buf_clear(&payload);
        if ((rc = manifest_snapshot_encode(nv, flushed, next, &payload)) != TIND_OK) goto done;
        if ((rc = manifest_write_snapshot(m, &payload, &nf)) != TIND_OK) goto poison;
        file_close(m->f); /* the replaced log: nothing more goes into it */
        m->f = nf;
        m->snapshot_size = RECORD_HEADER_SIZE + payload.len;
    } else {
        /* Never retried: after a failed fsync the kernel may have dropped
         * the pages, and a second fsync could report success without them. */
        if ((rc = manifest_append_record(m->f, &payload)) != TIND_OK || (rc = file_sync(m->f, 0)) != TIND_OK)
            goto poison;
    }

    /* Durable: switch. A deleted table's file goes when the last version
     * holding it (the old one, and any a reader still has) is released. */
    for (size_t i = 0; i < ngone; i++) atomic_store(&gone[i]->obsolete, 1);
    tmutex_lock(&m->lock);
    struct version *old = m->current;
    m->current = nv;
    m->flushed_seq = flushed;
    tmutex_unlock(&m->lock);
    nv = old;
    goto done;
poison:
    atomic_store(&m->poisoned, 1);
done:
    version_unref(nv);
    free(gone);
    buf_free(&payload);
    return rc;
}

/* ---- reading -------------------------------------------------------------------------- */

/* The record at off of d[0, n): TIND_OK with its payload, or TIND_CORRUPTION
 * with `what` naming the damage (no message recorded). */
static int manifest_record_at(const uint8_t *d, size_t n, size_t off, const uint8_t **payload, size_t *len,
                              char *what, size_t cap)
{
    size_t left = n - off;
    uint64_t plen, psum;
    if (left < RECORD_HEADER_SIZE) {
        snprintf(what, cap, "truncated record header (%zu of %u bytes)", left, RECORD_HEADER_SIZE);
        return TIND_CORRUPTION;
    }
    if (!record_header_ok(d + off, &plen, &psum)) {
        snprintf(what, cap, "record header checksum mismatch");
        return TIND_CORRUPTION;
    }
    if (plen == 0) {
        snprintf(what, cap, "zero-length record");
        return TIND_CORRUPTION;
    }
    if (plen > left - RECORD_HEADER_SIZE) {
        snprintf(what, cap, "record of %llu bytes runs past the end of the file (%zu bytes left)",
                 (unsigned long long)plen, left - RECORD_HEADER_SIZE);
        return TIND_CORRUPTION;
    }
    const uint8_t *p = d + off + RECORD_HEADER_SIZE;
    uint64_t got = checksum64(p, (size_t)plen);
    if (got != psum) {
        snprintf(what, cap, "payload checksum mismatch (stored 0x%016llx, computed 0x%016llx)",
                 (unsigned long long)psum, (unsigned long long)got);
        return TIND_CORRUPTION;
    }
    *payload = p;
    *len = (size_t)plen;
    return TIND_OK;
}

/* 1 when a valid record starts anywhere after the bad record at off: then
 * the damage is not a torn tail. A bad record whose header is intact is
 * searched past as a whole (its payload may hold a record image); one whose
 * intact header runs past the end is an unfinished append. */
static int manifest_valid_after(const uint8_t *d, size_t n, size_t off)
{
    char what[160];
    const uint8_t *p;
    size_t len, start = off + 1;
    uint64_t plen, psum;
    if (n - off >= RECORD_HEADER_SIZE && record_header_ok(d + off, &plen, &psum)) {
        if (plen > n - off - RECORD_HEADER_SIZE) return 0;
        start = off + RECORD_HEADER_SIZE + (size_t)plen;
    }
    for (size_t o = start; o < n && n - o >= RECORD_HEADER_SIZE; o++)
        if (manifest_record_at(d, n, o, &p, &len, what, sizeof what) == TIND_OK) return 1;
    return 0;
}

/* Reads the whole log into *d (n bytes) and starts *v as the empty version
 * to replay it onto; an empty log is corrupt. The caller frees both, also on
 * failure. */
static int manifest_read_log(manifest *m, uint8_t **d, size_t *n, struct version **v)
{
    int rc = file_read_all(m->path, d, n);
    if (rc) return rc;
    if (!(*v = manifest_version_new())) return err_nomem();
    if (*n == 0)
        return err_set(TIND_CORRUPTION, "manifest %s offset 0: empty file (a manifest starts with a snapshot record)",
                       m->path);
    return TIND_OK;
}

/* Applies the record at off (payload p, len) to *v: only the first record
 * is a snapshot, and the edit must apply. Records the edit's flushed
 * sequence in *flushed and raises *next (when not NULL) to its next file
 * number. e is scratch: empty again on success, left for the caller to free
 * on failure. */
static int manifest_replay(manifest *m, const uint8_t *p, size_t len, size_t off, struct version_edit *e,
                           struct version **v, uint64_t *flushed, uint64_t *next)
{
    struct version *nv;
    char what[256];
    int rc;
    if ((rc = version_edit_decode(p, len, m->dir, m->path, off + RECORD_HEADER_SIZE, e)) != TIND_OK) return rc;
    if (e->snapshot != (off == 0))
        return err_set(TIND_CORRUPTION, "manifest %s offset %zu: %s", m->path, off,
                       off == 0 ? "the first record is not a snapshot" : "a snapshot record after the first");
    rc = manifest_build(*v, e, &nv, NULL, NULL, what, sizeof what);
    if (rc == TIND_INVALID)
        rc = err_set(TIND_CORRUPTION, "manifest %s offset %zu: the edit does not apply: %s", m->path, off, what);
    if (rc) return rc;
    version_unref(*v);
    *v = nv;
    if (e->has_flushed_seq) *flushed = e->flushed_seq;
    if (next && e->has_next_file && e->next_file > *next) *next = e->next_file;
    version_edit_free(e);
    return TIND_OK;
}

/* Replays MANIFEST into m (current, flushed_seq, next_file, snapshot_size)
 * and opens it for appends, cutting off a torn tail durably first. */
static int manifest_recover(manifest *m)
{
    uint8_t *d = NULL;
    size_t n = 0, off = 0, cut = 0;
    int torn = 0;
    uint64_t flushed = 0, next = 1;
    struct version *v = NULL;
    struct version_edit e;
    char what[256];
    version_edit_init(&e);
    int rc = manifest_read_log(m, &d, &n, &v);
    if (rc) goto done;
    while (off < n) {
        const uint8_t *p;
        size_t len;
        if (manifest_record_at(d, n, off, &p, &len, what, sizeof what) != TIND_OK) {
            /* The first record came whole through a rename: it is never torn. */
            if (off == 0 || manifest_valid_after(d, n, off)) {
                rc = err_set(TIND_CORRUPTION, "manifest %s offset %zu: %s", m->path, off, what);
                goto done;
            }
            torn = 1;
            cut = off;
            break;
        }
        if ((rc = manifest_replay(m, p, len, off, &e, &v, &flushed, &next)) != TIND_OK) goto done;
        if (off == 0) m->snapshot_size = RECORD_HEADER_SIZE + len;
        off += RECORD_HEADER_SIZE + len;
    }
    /* Above every number held, even if an edit failed to record it. */
    for (int l = 0; l < LSM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++)
            if (v->files[l][i]->number != UINT64_MAX && v->files[l][i]->number >= next)
                next = v->files[l][i]->number + 1;
    /* Every table the log holds must exist: a table is durable before an
     * edit adds it and unlinked only after an edit deleted it. One that is
     * gone means the log lost an edit that was applied: a bad last record
     * that is damage, not a torn append (cutting it would bring back deleted
     * tables and remove the ones it added as orphans), or a log cut at a
     * record boundary. Nothing is cut or removed then. */
    for (int l = 0; m->check_tables && l < LSM_LEVELS; l++) {
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            const struct table_meta *t = v->files[l][i];
            int ex = file_exists(t->path);
            if (ex < 0) {
                rc = ex;
                goto done;
            }
            if (ex) continue;
            if (torn)
                rc = err_set(TIND_CORRUPTION,
                             "manifest %s offset %zu: %s; not a torn append, since table %llu that the records "
                             "before it hold is gone",
                             m->path, cut, what, (unsigned long long)t->number);
            else
                rc = err_set(TIND_CORRUPTION, "manifest %s offset %zu: table %llu that it holds is gone (an edit "
                             "that deleted it is missing from the log's end, or the file was lost)",
                             m->path, n, (unsigned long long)t->number);
            goto done;
        }
    }
    /* Read-only: the torn tail stays in the file; the version ends before it. */
    if (!m->read_only) {
        if ((rc = file_open(m->path, FILE_WRITE, &m->f)) != TIND_OK) goto done;
        if (torn && ((rc = file_truncate(m->f, cut)) != TIND_OK || (rc = file_sync(m->f, 0)) != TIND_OK))
            goto done;
    }
    m->current = v;
    v = NULL;
    m->flushed_seq = flushed;
    atomic_store(&m->next_file, next);
done:
    version_edit_free(&e);
    version_unref(v);
    free(d);
    return rc;
}

static int manifest_key_eq(const buf *a, const buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* 1 when the two metas record the same table the same way. */
static int manifest_meta_same(const struct table_meta *a, const struct table_meta *b)
{
    return a->number == b->number && a->size == b->size && a->entries == b->entries &&
           a->tombstones == b->tombstones && a->min_seq == b->min_seq && a->max_seq == b->max_seq &&
           a->smallest_tag == b->smallest_tag && a->largest_tag == b->largest_tag && a->created == b->created &&
           manifest_key_eq(&a->smallest, &b->smallest) && manifest_key_eq(&a->largest, &b->largest);
}

int manifest_verify(manifest *m, struct manifest_verify_stats *st)
{
    uint8_t *d = NULL;
    size_t n = 0, off = 0, last = 0;
    uint64_t flushed = 0, records = 0;
    struct version *v = NULL, *cur = NULL;
    struct version_edit e;
    char what[256];
    version_edit_init(&e);
    if (st) memset(st, 0, sizeof *st);
    int rc = manifest_read_log(m, &d, &n, &v);
    if (rc) goto done;
    /* The file in use was recovered (a torn tail cut) and is only appended
     * whole records under the caller's serialization: every record must be
     * good, the last one included. */
    while (off < n) {
        const uint8_t *p;
        size_t len;
        if (manifest_record_at(d, n, off, &p, &len, what, sizeof what) != TIND_OK) {
            rc = err_set(TIND_CORRUPTION, "manifest %s offset %zu: %s", m->path, off, what);
            goto done;
        }
        if ((rc = manifest_replay(m, p, len, off, &e, &v, &flushed, NULL)) != TIND_OK) goto done;
        last = off;
        off += RECORD_HEADER_SIZE + len;
        records++;
    }
    cur = manifest_current(m);
    if (flushed != manifest_flushed_seq(m)) {
        rc = err_set(TIND_CORRUPTION, "manifest %s offset %zu: the log records flushed sequence %llu, %llu is in use",
                     m->path, last, (unsigned long long)flushed, (unsigned long long)manifest_flushed_seq(m));
        goto done;
    }
    for (unsigned l = 0; l < LSM_LEVELS; l++) {
        const char *bad = NULL;
        size_t i = 0;
        if (v->nfiles[l] != cur->nfiles[l]) bad = "a different number of tables";
        for (; !bad && i < v->nfiles[l]; i++)
            if (!manifest_meta_same(v->files[l][i], cur->files[l][i])) bad = "a different table";
        if (bad) {
            rc = err_set(TIND_CORRUPTION, "manifest %s offset %zu: the log gives level %u %s (position %zu) than the "
                         "version in use", m->path, last, l, bad, i ? i - 1 : 0);
            goto done;
        }
    }
    if ((rc = manifest_check_version(cur, what, sizeof what)) == TIND_CORRUPTION)
        rc = err_set(rc, "manifest %s offset %zu: %s", m->path, last, what);
    if (rc) goto done;
    if (st) {
        st->records = records;
        st->bytes = n;
    }
done:
    version_edit_free(&e);
    version_unref(v);
    version_unref(cur);
    free(d);
    return rc;
}

/* Removes the table files the current version does not hold (outputs of a
 * flush or compaction that never got into the manifest, inputs whose last
 * holder went away in a crash) and a leftover MANIFEST.tmp. The removals
 * need not be durable: a file that comes back after a crash is removed by
 * the next open. */
static int manifest_remove_orphans(manifest *m)
{
    char **names = NULL;
    size_t count = 0, total = 0, k = 0;
    uint64_t *nums = NULL;
    const struct version *v = m->current;
    char p[PATH_MAX];
    int rc = file_list_dir(m->dir, &names, &count);
    if (rc) return rc;
    for (int l = 0; l < LSM_LEVELS; l++) total += v->nfiles[l];
    if (!(nums = malloc((total ? total : 1) * sizeof *nums))) {
        rc = err_nomem();
        goto done;
    }
    for (int l = 0; l < LSM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++) nums[k++] = v->files[l][i]->number;
    qsort(nums, total, sizeof *nums, manifest_cmp_u64);
    for (size_t i = 0; i < count; i++) {
        uint64_t num;
        int orphan = !strcmp(names[i], MANIFEST_TMP) ||
                     (table_parse_name(names[i], &num) &&
                      !bsearch(&num, nums, total, sizeof *nums, manifest_cmp_u64));
        if (!orphan) continue;
        if ((rc = file_join(p, sizeof p, m->dir, names[i])) != TIND_OK) goto done;
        if ((rc = file_unlink(p)) != TIND_OK) {
            if (file_exists(p) != 0) goto done;
            rc = TIND_OK; /* gone already */
        }
    }
done:
    free(nums);
    free(names);
    return rc;
}

/* ---- the handle ------------------------------------------------------------------------- */

static char *manifest_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = malloc(dl + 1 + nl + 1);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    return p;
}

static int manifest_open_impl(const char *dir, int create, int check_tables, int read_only, manifest **out)
{
    *out = NULL;
    manifest *m = calloc(1, sizeof *m);
    if (!m) return err_nomem();
    m->check_tables = check_tables;
    m->read_only = read_only;
    if (tmutex_init(&m->lock) != 0) {
        free(m);
        return err_nomem();
    }
    atomic_init(&m->poisoned, 0);
    atomic_init(&m->next_file, 1);
    buf payload;
    buf_init(&payload);
    int rc;
    if (!(m->dir = strdup(dir)) || !(m->path = manifest_join(dir, MANIFEST_FILE)) ||
        !(m->tmp_path = manifest_join(dir, MANIFEST_TMP))) {
        rc = err_nomem();
        goto fail;
    }
    int exists = file_exists(m->path);
    if (exists < 0) {
        rc = exists;
        goto fail;
    }
    if (exists) {
        rc = manifest_recover(m);
    } else if (!create) {
        rc = err_set(TIND_NOT_FOUND, "manifest %s: no such file", m->path);
    } else if (!(m->current = manifest_version_new())) {
        rc = err_nomem();
    } else if (read_only) {
        rc = TIND_OK; /* an empty tree, held in memory only */
    } else if ((rc = manifest_snapshot_encode(m->current, 0, 1, &payload)) == TIND_OK &&
               (rc = manifest_write_snapshot(m, &payload, &m->f)) == TIND_OK) {
        m->snapshot_size = RECORD_HEADER_SIZE + payload.len;
    }
    if (rc) goto fail;
    if (!read_only && (rc = manifest_remove_orphans(m)) != TIND_OK) goto fail;
    buf_free(&payload);
    *out = m;
    return TIND_OK;
fail:
    buf_free(&payload);
    manifest_close(m);
    return rc;
}

int manifest_open(const char *dir, int create, manifest **m) { return manifest_open_impl(dir, create, 0, 0, m); }

int manifest_open_checked(const char *dir, int create, manifest **m)
{
    return manifest_open_impl(dir, create, 1, 0, m);
}

int manifest_open_read_only(const char *dir, manifest **m) { return manifest_open_impl(dir, 1, 1, 1, m); }

void manifest_close(manifest *m)
{
    if (!m) return;
    version_unref(m->current);
    file_close(m->f);
    tmutex_destroy(&m->lock);
    free(m->dir);
    free(m->path);
    free(m->tmp_path);
    free(m);
}

struct version *manifest_current(manifest *m)
{
    tmutex_lock(&m->lock);
    struct version *v = m->current;
    version_ref(v);
    tmutex_unlock(&m->lock);
    return v;
}

uint64_t manifest_flushed_seq(manifest *m)
{
    tmutex_lock(&m->lock);
    uint64_t s = m->flushed_seq;
    tmutex_unlock(&m->lock);
    return s;
}

uint64_t manifest_new_file_number(manifest *m) { return atomic_fetch_add(&m->next_file, 1); }

int manifest_check(manifest *m)
{
    char what[256];
    struct version *v = manifest_current(m);
    int rc = manifest_check_version(v, what, sizeof what);
    if (rc == TIND_CORRUPTION) rc = err_set(rc, "manifest %s: %s", m->path, what);
    version_unref(v);
    return rc;
}
