/* Replaying the journals at open.
 *
 * Rules (journal/README.md has the reasoning):
 *  - journals are replayed oldest first, by the number in their names;
 *  - a header's number must equal its name's;
 *  - every journal but the newest must read cleanly to its end, since it was
 *    synced before its successor was started;
 *  - in the newest, a bad record with no valid record anywhere after it is a
 *    torn tail of an interrupted append: the file is cut at the bad record;
 *    a bad record with a valid one after it is damage, not a torn append;
 *  - a newest journal no longer than a header whose header is bad was torn
 *    while being created, before any record could be written: it is removed;
 *  - consecutive journals meet: journal N+1's base_seq is the last sequence
 *    number journal N used (its last batch's, or its own base without
 *    batches), since N+1 is started only once N is durable whole; journals
 *    whose numbers are not consecutive may not meet (one between them was
 *    removed: it held no record, or was retired);
 *  - the newest journal reaches min_seq (a table holds writes through it,
 *    and its flush made the journal durable through it first): one that
 *    would end below it, cut or not, lost synced records (a newest journal
 *    torn at creation is not held to it: see journal/README.md);
 *  - the newest journal that remains is fsynced (after any cut) before
 *    recovery returns, so that it may become an older journal safely. */
#include "journal/journal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/payload.h"
#include "src/util/err.h"
#include "src/util/file.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Makes the newest journal durable as recovery leaves it: cut at `cut` when
 * it ends in a torn tail, then fsynced. Even a clean newest journal is
 * synced: its last records may have reached only the page cache before a
 * process crash, and the journal the database starts next would make it an
 * older journal, which must read cleanly to its end after a power loss. */
static int recovery_settle(const char *path, int truncate, uint64_t cut)
{
    tfile *f;
    int rc = file_open(path, FILE_WRITE, &f);
    if (rc) return rc;
    if ((truncate && (rc = file_truncate(f, cut)) != TIND_OK) || (rc = file_sync(f, 0)) != TIND_OK) {
        file_close(f);
        return rc;
    }
    return file_close(f);
}

/* The journal replayed before the current one: its number, the last
 * sequence number it used (its last batch's, or its base without batches),
 * its path and size. */
struct recovery_prev {
    int any;
    uint64_t number, end_seq, size;
    char path[PATH_MAX];
};

/* Journal `number` with header base_seq `base` must start where journal
 * number - 1 ended, when that one is prev. */
static int recovery_check_meets(const struct recovery_prev *prev, const char *path, uint64_t number, uint64_t base)
{
    if (!prev->any || prev->number + 1 != number || base == prev->end_seq) return TIND_OK;
    /* Larger: records at prev's end are missing (a journal cut at a record
     * boundary reads cleanly). Smaller: this header is not the successor's. */
    if (base > prev->end_seq)
        return err_set(TIND_CORRUPTION,
                       "journal %s offset %llu: ends at sequence number %llu, but its successor %s starts after "
                       "%llu: records at its end are missing",
                       prev->path, (unsigned long long)prev->size, (unsigned long long)prev->end_seq, path,
                       (unsigned long long)base);
    return err_set(TIND_CORRUPTION,
                   "journal %s offset 0: starts after sequence number %llu, but its predecessor %s ends at %llu",
                   path, (unsigned long long)base, prev->path, (unsigned long long)prev->end_seq);
}

/* Replays one journal; *prev describes the one replayed before it and then
 * this one. read_only: decide as above but change nothing on disk (no cut,
 * no removal, no sync); a torn tail is only skipped. */
static int recovery_replay_file(const char *dir, const char *path, uint64_t number, int newest, int read_only,
                                uint64_t min_seq, journal_replay_fn fn, void *ctx, struct journal_recovery *out,
                                struct recovery_prev *prev)
{
    journal_reader *r;
    int rc = journal_reader_open(path, &r);
    if (rc == TIND_CORRUPTION && newest) {
        uint64_t size;
        int src = file_stat_size(path, &size);
        if (src) return src;
        if (size > JOURNAL_HEADER_SIZE) return rc;
        /* Torn at creation, before any record could be written to it. */
        if (!read_only && ((rc = file_unlink(path)) != TIND_OK || (rc = file_sync_dir(dir)) != TIND_OK))
            return rc;
        out->removed_torn_newest = 1;
        return TIND_OK;
    }
    if (rc) return rc;
    const struct journal_header *h = journal_reader_header(r);
    if (h->number != number) {
        rc = err_set(TIND_CORRUPTION, "journal %s offset 0: header number %llu does not match the file name",
                     path, (unsigned long long)h->number);
        goto done;
    }
    if ((rc = recovery_check_meets(prev, path, number, h->base_seq)) != TIND_OK) goto done;
    if (h->base_seq > out->max_base_seq) out->max_base_seq = h->base_seq;
    prev->any = 1;
    prev->number = number;
    prev->end_seq = h->base_seq;
    snprintf(prev->path, sizeof prev->path, "%s", path);

    int settled = 0; /* the torn-tail path has cut and synced the file */
    for (;;) {
        const uint8_t *p;
        size_t len;
        uint64_t off;
        rc = journal_reader_next(r, &p, &len, &off);
        if (rc == TIND_NOT_FOUND) {
            rc = TIND_OK;
            break;
        }
        if (rc == TIND_CORRUPTION && newest) {
            /* Keep the reader's message: valid_after may overwrite it. */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", err_msg());
            uint64_t bad = journal_reader_offset(r), size = journal_reader_file_size(r);
            int v = journal_reader_valid_after(r, bad);
            if (v < 0) {
                rc = v;
            } else if (v > 0) {
                rc = err_set(TIND_CORRUPTION, "%s; valid records follow it, so it is not a torn tail", msg);
            } else if (prev->end_seq < min_seq) {
                /* A torn append is never of synced records. */
                rc = err_set(TIND_CORRUPTION,
                             "%s; the journal ends at sequence number %llu before it, but tables hold writes "
                             "through %llu, synced before they were flushed, so it is not a torn tail",
                             msg, (unsigned long long)prev->end_seq, (unsigned long long)min_seq);
            } else if ((rc = read_only ? TIND_OK : recovery_settle(path, 1, bad)) == TIND_OK) {
                out->truncated_bytes += size - bad;
                settled = 1;
            }
            break;
        }
        if (rc) break;
        uint64_t seq;
        uint32_t count;
        struct payload_reader pr;
        int batch = p[0] == JPAYLOAD_BATCH && payload_batch_open(p, len, &seq, &count, &pr) == TIND_OK && count > 0;
        /* Sequence numbers only grow: past the header's base_seq and the
         * batch before. A record below them is damage that reads cleanly;
         * replayed, it would leave end_seq below the base the next journal
         * is started with, and the next open would find them not meeting. */
        if (batch && seq <= prev->end_seq) {
            rc = err_set(TIND_CORRUPTION, "journal %s offset %llu: sequence %llu does not follow %llu", path,
                         (unsigned long long)off, (unsigned long long)seq, (unsigned long long)prev->end_seq);
            goto done;
        }
        out->records++;
        if ((rc = fn(ctx, path, off, p, len)) != TIND_OK) goto done;
        if (batch) prev->end_seq = seq + count - 1;
    }
    /* Read cleanly to here: where a successor's records must follow. */
    prev->size = journal_reader_offset(r);
    if (rc == TIND_OK && newest && !settled && !read_only) rc = recovery_settle(path, 0, 0);
done:
    journal_reader_close(r);
    return rc;
}

static int recover_dir(const char *dir, uint64_t min_seq, int read_only, journal_replay_fn fn, void *ctx,
                       struct journal_recovery *out)
{
    memset(out, 0, sizeof *out);
    char **names = NULL;
    size_t count = 0, n = 0;
    uint64_t *numbers = NULL;
    struct recovery_prev *prev = NULL;
    int rc = file_list_dir(dir, &names, &count);
    if (rc) return rc;
    numbers = malloc((count ? count : 1) * sizeof *numbers);
    if (!numbers) {
        rc = err_nomem();
        goto done;
    }
    for (size_t i = 0; i < count; i++)
        if (journal_parse_name(names[i], &numbers[n])) n++;
    qsort(numbers, n, sizeof *numbers, cmp_u64);
    out->files = n;
    /* A removed torn newest journal still counts as found: its number is
     * not handed out again. */
    out->max_number = n ? numbers[n - 1] : 0;
    if (!(prev = calloc(1, sizeof *prev))) {
        rc = err_nomem();
        goto done;
    }

    for (size_t i = 0; i < n; i++) {
        char name[JOURNAL_NAME_LEN + 1], path[PATH_MAX];
        journal_file_name(name, numbers[i]);
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
            rc = err_set(TIND_INVALID, "path too long: %s/%s", dir, name);
            goto done;
        }
        if ((rc = recovery_replay_file(dir, path, numbers[i], i + 1 == n, read_only, min_seq, fn, ctx, out,
                                       prev)) != TIND_OK)
            goto done;
    }
    /* The newest journal holds the last writes made durable. Not when it was
     * torn at creation: the journal before it may have been retired (every
     * write of it flushed) while its header was being written, so what is
     * left may end below min_seq. */
    if (prev->any && !out->removed_torn_newest && prev->end_seq < min_seq)
        rc = err_set(TIND_CORRUPTION,
                     "journal %s offset %llu: ends at sequence number %llu, but tables hold writes through %llu, "
                     "synced before they were flushed: records at its end are missing",
                     prev->path, (unsigned long long)prev->size, (unsigned long long)prev->end_seq,
                     (unsigned long long)min_seq);
done:
    free(prev);
    free(numbers);
    free(names);
    return rc;
}

int journal_recover(const char *dir, uint64_t min_seq, journal_replay_fn fn, void *ctx, struct journal_recovery *out)
{
    return recover_dir(dir, min_seq, 0, fn, ctx, out);
}

int journal_recover_read_only(const char *dir, uint64_t min_seq, journal_replay_fn fn, void *ctx,
                              struct journal_recovery *out)
{
    return recover_dir(dir, min_seq, 1, fn, ctx, out);
}
