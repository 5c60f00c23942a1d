/* tind_db_verify: checks an open database against its files on disk.
 *
 * Per keyspace (under db->ks_mu, so that it is neither dropped nor given new
 * options meanwhile): the OPTIONS file; the MANIFEST, read whole while
 * holding the keyspace's edit_mu (no edit is appended or switched in
 * meanwhile) and replayed to the version in use, whose reference is taken
 * then and held to the end, so that no table file it names is unlinked while
 * it is read (a table goes when the last version holding it does); then each
 * table of that version, opened afresh without the block cache so that every
 * byte comes from the disk. Then the journals: the closed ones whole, the
 * current one up to the bytes whose write had completed when the check
 * began (an append in progress is not damage).
 *
 * A corrupt file is counted and the check goes on with the next file; the
 * first problem's message is kept and set again as the thread's error at the
 * end. Any other failure (an unreadable file, no memory) ends the check. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/journal.h"
#include "journal/payload.h"
#include "lsm/ikey.h"
#include "lsm/table.h"
#include "src/db.h"
#include "src/util/err.h"
#include "src/util/file.h"

struct verify {
    tind_db *db;
    struct tind_verify_report *r;
};

/* Counts the corruption err_msg() describes, in file `path`; the first one
 * is kept in the report, with the offset its message names. */
static void verify_problem(struct verify *v, const char *path)
{
    struct tind_verify_report *r = v->r;
    if (r->problems++ > 0) return;
    const char *msg = err_msg();
    snprintf(r->first_file, sizeof r->first_file, "%s", path);
    snprintf(r->first_message, sizeof r->first_message, "%s", msg);
    const char *q = strstr(msg, path);
    q = strstr(q ? q + strlen(path) : msg, " offset ");
    r->first_offset = q ? strtoull(q + 8, NULL, 10) : 0;
}

/* TIND_OK after counting a corruption, or any other status unchanged. */
static int verify_note(struct verify *v, int rc, const char *path)
{
    if (rc != TIND_CORRUPTION) return rc;
    verify_problem(v, path);
    return TIND_OK;
}

static int key_eq(const buf *a, const buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* Checks one table of the pinned version against its file. */
static int verify_table(struct verify *v, unsigned level, const struct table_meta *m)
{
    uint64_t size;
    int rc = file_stat_size(m->path, &size);
    if (rc) {
        if (file_exists(m->path) != 0) return rc;
        return err_set(TIND_CORRUPTION, "table %s offset 0: missing (level %u records it with %" PRIu64 " bytes)",
                       m->path, level, m->size);
    }
    if (size != m->size)
        return err_set(TIND_CORRUPTION, "table %s offset %" PRIu64 ": %" PRIu64 " bytes, the manifest records %" PRIu64,
                       m->path, size < m->size ? size : m->size, size, m->size);
    table *t;
    if ((rc = table_open(m->path, m->size, NULL, &t)) != TIND_OK) return rc;
    struct table_verify_stats ts;
    rc = table_verify_stats(t, &ts);
    v->r->bytes_read += ts.bytes;
    v->r->blocks += ts.blocks;
    v->r->entries += ts.entries;
    if (rc == TIND_OK) {
        const struct table_props *p = table_get_props(t);
        const char *what = NULL;
        if (p->entries != m->entries || p->tombstones != m->tombstones) what = "entry counts";
        else if (p->min_seq != m->min_seq || p->max_seq != m->max_seq) what = "sequence range";
        else if (!key_eq(&p->smallest, &m->smallest) || p->smallest_tag != m->smallest_tag) what = "smallest key";
        else if (!key_eq(&p->largest, &m->largest) || p->largest_tag != m->largest_tag) what = "largest key";
        /* A compaction output records its newest input's time, not its own. */
        else if (m->created > p->created) what = "creation time";
        if (what)
            rc = err_set(TIND_CORRUPTION, "table %s offset %" PRIu64 ": the manifest's record of its %s does not match the file",
                         m->path, ts.props_offset, what);
    }
    /* The leader seals a memtable inside a group's apply step and publishes
     * the group's last sequence number only after it, so a flush may install
     * a table whose newest entries are published a moment later: such a
     * table is waited for (up to a second) before it counts as corrupt. */
    uint64_t last = db_last_seq(v->db);
    for (int waited = 0; m->entries > 0 && m->max_seq > last && waited < 1000; waited++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        last = db_last_seq(v->db);
    }
    if (rc == TIND_OK && m->entries > 0 && m->max_seq > last)
        rc = err_set(TIND_CORRUPTION,
                     "table %s offset %" PRIu64 ": holds sequence numbers up to %" PRIu64 ", past the database's last %" PRIu64,
                     m->path, ts.props_offset, m->max_seq, last);
    table_unref(t);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Counts the table files of the keyspace folder that ver does not hold. */
static int verify_orphans(struct verify *v, const tind_keyspace *ks, const struct version *ver)
{
    char **names;
    size_t count, total = 0, k = 0;
    int rc = file_list_dir(ks->dir, &names, &count);
    if (rc) return rc;
    for (int l = 0; l < LSM_LEVELS; l++) total += ver->nfiles[l];
    uint64_t *nums = malloc((total ? total : 1) * sizeof *nums);
    if (!nums) {
        free(names);
        return err_nomem();
    }
    for (int l = 0; l < LSM_LEVELS; l++)
        for (size_t i = 0; i < ver->nfiles[l]; i++) nums[k++] = ver->files[l][i]->number;
    qsort(nums, total, sizeof *nums, cmp_u64);
    for (size_t i = 0; i < count; i++) {
        uint64_t num;
        if (table_parse_name(names[i], &num) && !bsearch(&num, nums, total, sizeof *nums, cmp_u64))
            v->r->orphan_files++;
    }
    free(nums);
    free(names);
    return TIND_OK;
}

/* One keyspace: OPTIONS, MANIFEST, every table. Caller holds db->ks_mu. */
static int verify_keyspace(struct verify *v, tind_keyspace *ks) REQUIRES(v->db->ks_mu)
{
    tmutex_assert_held(&ks->db->ks_mu); /* the same mutex: ks->db is v->db */
    char path[PATH_MAX];
    uint64_t bytes = 0;
    int rc = file_join(path, sizeof path, ks->dir, KS_OPTIONS_FILE);
    if (rc == TIND_OK) rc = ks_verify_options(ks, &bytes);
    v->r->bytes_read += bytes;
    if ((rc = verify_note(v, rc, path)) != TIND_OK) return rc;

    struct manifest_verify_stats ms;
    struct version *ver;
    int mrc = tree_verify_manifest(ks->tree, &ms, &ver);
    v->r->manifest_records += ms.records;
    v->r->bytes_read += ms.bytes;
    if ((rc = file_join(path, sizeof path, ks->dir, MANIFEST_FILE)) == TIND_OK) rc = verify_note(v, mrc, path);
    for (unsigned l = 0; rc == TIND_OK && l < LSM_LEVELS; l++) {
        for (size_t i = 0; rc == TIND_OK && i < ver->nfiles[l]; i++) {
            rc = verify_note(v, verify_table(v, l, ver->files[l][i]), ver->files[l][i]->path);
            v->r->tables++;
        }
    }
    if (rc == TIND_OK) rc = verify_orphans(v, ks, ver);
    version_unref(ver);
    v->r->keyspaces++;
    return rc;
}

/* Decodes a journal payload; TIND_CORRUPTION naming path and off when it is
 * malformed or its batch does not come after *next_seq. */
static int verify_payload(const char *path, uint64_t off, const uint8_t *p, size_t n, uint64_t *next_seq)
{
    unsigned type;
    uint64_t seq;
    uint32_t count, ks;
    struct payload_reader pr;
    struct payload_op op;
    int rc = payload_type(p, n, &type);
    if (rc == TIND_OK && type == JPAYLOAD_BATCH) {
        rc = payload_batch_open(p, n, &seq, &count, &pr);
        while (rc == TIND_OK) rc = payload_batch_next(&pr, &op);
        if (rc == TIND_NOT_FOUND) rc = TIND_OK;
        if (rc == TIND_OK && count > 0) {
            if (seq < *next_seq)
                return err_set(TIND_CORRUPTION,
                               "journal %s offset %" PRIu64 ": batch sequence %" PRIu64 " not above the previous %" PRIu64,
                               path, off, seq, *next_seq - 1);
            *next_seq = seq + count;
        }
    } else if (rc == TIND_OK && type == JPAYLOAD_DROP_KEYSPACE) {
        rc = payload_drop_decode(p, n, &ks);
    } else if (rc == TIND_OK) {
        return err_set(TIND_CORRUPTION, "journal %s offset %" PRIu64 ": unknown payload type %u", path, off, type);
    }
    if (rc == TIND_CORRUPTION) {
        char what[256];
        snprintf(what, sizeof what, "%s", err_msg());
        rc = err_set(TIND_CORRUPTION, "journal %s offset %" PRIu64 ": %s", path, off, what);
    }
    return rc;
}

/* The journal checked before the current one, when it read cleanly: its
 * number, the last sequence number it used (its last batch's, or its base
 * without batches), its path and the bytes read. */
struct verify_prev {
    int any;
    uint64_t number, end_seq, size;
    char path[PATH_MAX];
};

/* One journal file, up to `limit` bytes (UINT64_MAX: the whole file); *prev
 * describes the one checked before it, and then this one. */
static int verify_journal(struct verify *v, const char *path, uint64_t number, uint64_t limit, uint64_t *next_seq,
                          struct verify_prev *prev)
{
    struct verify_prev before = *prev;
    prev->any = 0; /* until this one has read cleanly */
    journal_reader *jr;
    int rc = journal_reader_open(path, &jr);
    if (rc) {
        if (rc != TIND_CORRUPTION && file_exists(path) == 0) return TIND_NOT_FOUND; /* retired meanwhile */
        return rc;
    }
    if (journal_reader_header(jr)->number != number) {
        rc = err_set(TIND_CORRUPTION, "journal %s offset 0: the header names journal %" PRIu64, path,
                     journal_reader_header(jr)->number);
        goto done;
    }
    /* As at open: consecutive journals meet (journal N+1 is started only
     * once N is durable whole, after the last sequence number used). One
     * that starts later reports the journal that lost its end, one that
     * starts earlier its own header; either way the check goes on. Journals
     * whose numbers are not consecutive may not meet (journal/README.md). */
    uint64_t base = journal_reader_header(jr)->base_seq;
    if (before.any && before.number + 1 == number && base != before.end_seq) {
        if (base > before.end_seq)
            err_set(TIND_CORRUPTION,
                    "journal %s offset %" PRIu64 ": ends at sequence number %" PRIu64 ", but its successor %s "
                    "starts after %" PRIu64 ": records at its end are missing",
                    before.path, before.size, before.end_seq, path, base);
        else
            err_set(TIND_CORRUPTION,
                    "journal %s offset 0: starts after sequence number %" PRIu64 ", but its predecessor %s ends at "
                    "%" PRIu64,
                    path, base, before.path, before.end_seq);
        verify_note(v, TIND_CORRUPTION, base > before.end_seq ? before.path : path);
    }
    uint64_t end_seq = base;
    /* A journal's records come after its base. */
    if (base + 1 > *next_seq) *next_seq = base + 1;
    for (;;) {
        const uint8_t *p;
        size_t n;
        uint64_t off;
        if (journal_reader_offset(jr) >= limit) break;
        rc = journal_reader_next(jr, &p, &n, &off);
        if (rc == TIND_NOT_FOUND) {
            rc = TIND_OK;
            break;
        }
        if (rc) break;
        v->r->journal_records++;
        uint64_t from = *next_seq;
        if ((rc = verify_payload(path, off, p, n, next_seq)) != TIND_OK) break;
        if (*next_seq != from) end_seq = *next_seq - 1; /* a batch: only a batch moves next_seq */
    }
    /* A damaged journal is no measure of where its successor must start. */
    if (rc == TIND_OK) {
        *prev = (struct verify_prev){.any = 1, .number = number, .end_seq = end_seq, .size = journal_reader_offset(jr)};
        snprintf(prev->path, sizeof prev->path, "%s", path);
    }
done:;
    uint64_t size = journal_reader_file_size(jr);
    v->r->bytes_read += size < limit ? size : limit;
    journal_reader_close(jr);
    return rc;
}

static int verify_journals(struct verify *v)
{
    /* The current journal's number and the bytes of it written so far: a
     * rotation sets the number before the byte count, so when the number
     * reads the same before and after, the count is that file's. */
    struct journal_stats a, b;
    do {
        journal_get_stats(v->db->jnl, &a);
        journal_get_stats(v->db->jnl, &b);
    } while (a.number != b.number);
    char **names;
    size_t count;
    int rc = file_list_dir(v->db->journal_dir, &names, &count);
    if (rc) return rc;
    char path[PATH_MAX];
    uint64_t next_seq = 0;
    struct verify_prev *prev = calloc(1, sizeof *prev);
    if (!prev) {
        free(names);
        return err_nomem();
    }
    for (size_t i = 0; rc == TIND_OK && i < count; i++) {
        uint64_t num;
        if (!journal_parse_name(names[i], &num) || num > a.number) continue; /* not one, or started since */
        if ((rc = file_join(path, sizeof path, v->db->journal_dir, names[i])) != TIND_OK) break;
        rc = verify_journal(v, path, num, num == a.number ? a.current_bytes : UINT64_MAX, &next_seq, prev);
        if (rc == TIND_NOT_FOUND) {
            rc = TIND_OK; /* retired meanwhile: the next one is not measured against it */
            continue;
        }
        v->r->journals++;
        rc = verify_note(v, rc, path);
    }
    free(prev);
    free(names);
    return rc;
}

int tind_db_verify(tind_db *db, struct tind_verify_report *report)
{
    err_clear();
    struct tind_verify_report local;
    struct verify v = {db, report ? report : &local};
    memset(v.r, 0, sizeof *v.r);
    if (!db) return err_set(TIND_INVALID, "tind_db_verify: NULL database");

    /* Keyspace handles stay valid memory until tind_close (dropped ones
     * included); ks_mu keeps each one from being dropped while it is checked. */
    tmutex_lock(&db->list_mu);
    size_t n = db->nks;
    tind_keyspace **ks = malloc((n ? n : 1) * sizeof *ks);
    if (ks && n) memcpy(ks, db->ks, n * sizeof *ks);
    tmutex_unlock(&db->list_mu);
    if (!ks) return err_nomem();
    int rc = TIND_OK;
    for (size_t i = 0; rc == TIND_OK && i < n; i++) {
        tmutex_lock(&v.db->ks_mu); /* v.db: the name verify_keyspace's REQUIRES uses */
        if (!atomic_load(&ks[i]->dropped)) rc = verify_keyspace(&v, ks[i]);
        tmutex_unlock(&v.db->ks_mu);
    }
    free(ks);
    if (rc == TIND_OK) rc = verify_journals(&v);
    if (rc != TIND_OK) return rc;
    if (v.r->problems) return err_set(TIND_CORRUPTION, "%s", v.r->first_message);
    return TIND_OK;
}
