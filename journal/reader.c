/* Reading a journal file record by record.
 *
 *   file   := file_header record*
 *   record := payload_len:u64 payload_sum:u64 header_sum:u32 payload[payload_len]
 *
 * Reads go through a window: one file_read_at of up to READER_WINDOW bytes
 * serves the record headers and payloads inside it, so a file of small
 * records costs one system call per window, not per field. A payload larger
 * than the window is read on its own into a separate buffer grown to fit.
 *
 * The reader never moves past a bad record: after TIND_CORRUPTION, off is the
 * bad record's offset and a second call reports the same damage. */
#include "journal/journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "src/util/file.h"

#define READER_WINDOW (256u * 1024)

struct journal_reader {
    tfile *f;
    struct journal_header h;
    uint64_t size; /* the file's size at open */
    uint64_t off;  /* offset of the next record */
    /* The window: bytes [win_off, win_off + win_len) of the file. */
    uint8_t *win;
    size_t win_cap, win_len;
    uint64_t win_off;
    /* Payloads that do not fit the window. */
    uint8_t *big;
    size_t big_cap;
};

/* Points *p at bytes [off, off + n) of the file, n <= win_cap, refilling the
 * window from off when they are not all in it. TIND_OK with *p NULL when the
 * file ends before off + n (it shrank since open). */
static int reader_view(journal_reader *r, uint64_t off, size_t n, const uint8_t **p)
{
    if (off >= r->win_off && off - r->win_off <= r->win_len && r->win_len - (off - r->win_off) >= n) {
        *p = r->win + (off - r->win_off);
        return TIND_OK;
    }
    size_t want = r->win_cap;
    if (r->size - off < want) want = (size_t)(r->size - off);
    if (want < n) want = n;
    size_t got;
    r->win_len = 0; /* invalid until the read succeeds */
    int rc = file_read_at(r->f, off, r->win, want, &got);
    if (rc) return rc;
    r->win_off = off;
    r->win_len = got;
    *p = got >= n ? r->win : NULL;
    return TIND_OK;
}

/* Reads a payload larger than the window into r->big. */
static int reader_read_big(journal_reader *r, uint64_t off, size_t n, const uint8_t **p)
{
    if (n > r->big_cap) {
        free(r->big);
        r->big = NULL;
        r->big_cap = 0;
        uint8_t *b = malloc(n);
        if (!b) return err_set(TIND_NO_MEMORY, "out of memory reading a %zu-byte journal record from %s", n,
                               file_path(r->f));
        r->big = b;
        r->big_cap = n;
    }
    size_t got;
    int rc = file_read_at(r->f, off, r->big, n, &got);
    if (rc) return rc;
    *p = got == n ? r->big : NULL;
    return TIND_OK;
}

/* The record at off, checked. TIND_OK with the payload; TIND_CORRUPTION with
 * *what naming the damage (no message recorded: the caller decides whether it
 * is an error); or another status, message recorded, on an I/O or memory
 * failure. */
static int reader_record(journal_reader *r, uint64_t off, const uint8_t **payload, uint64_t *len,
                         char *what, size_t what_cap)
{
    uint64_t left = r->size - off;
    if (left < JOURNAL_RECORD_HEADER) {
        snprintf(what, what_cap, "truncated record header (%llu of %u bytes)", (unsigned long long)left,
                 JOURNAL_RECORD_HEADER);
        return TIND_CORRUPTION;
    }
    const uint8_t *h = NULL;
    int rc = reader_view(r, off, JOURNAL_RECORD_HEADER, &h);
    if (rc) return rc;
    if (!h) {
        snprintf(what, what_cap, "file shrank while being read");
        return TIND_CORRUPTION;
    }
    uint32_t hsum = get_u32(h + 16), hgot = (uint32_t)checksum64(h, 16);
    if (hsum != hgot) {
        snprintf(what, what_cap, "record header checksum mismatch (stored 0x%08x, computed 0x%08x)", hsum, hgot);
        return TIND_CORRUPTION;
    }
    uint64_t n = get_u64(h), psum = get_u64(h + 8);
    if (n == 0) {
        snprintf(what, what_cap, "zero-length record");
        return TIND_CORRUPTION;
    }
    if (n > left - JOURNAL_RECORD_HEADER) {
        snprintf(what, what_cap, "record of %llu bytes runs past the end of the file (%llu bytes left)",
                 (unsigned long long)n, (unsigned long long)(left - JOURNAL_RECORD_HEADER));
        return TIND_CORRUPTION;
    }
    if (n > SIZE_MAX - JOURNAL_RECORD_HEADER)
        return err_set(TIND_NO_MEMORY, "journal %s offset %llu: a %llu-byte record does not fit in memory",
                       file_path(r->f), (unsigned long long)off, (unsigned long long)n);
    const uint8_t *p = NULL;
    if (JOURNAL_RECORD_HEADER + n <= r->win_cap) {
        /* Header and payload through the window together: one read. */
        if ((rc = reader_view(r, off, JOURNAL_RECORD_HEADER + (size_t)n, &p)) != TIND_OK) return rc;
        if (p) p += JOURNAL_RECORD_HEADER;
    } else if ((rc = reader_read_big(r, off + JOURNAL_RECORD_HEADER, (size_t)n, &p)) != TIND_OK) {
        return rc;
    }
    if (!p) {
        snprintf(what, what_cap, "file shrank while being read");
        return TIND_CORRUPTION;
    }
    uint64_t pgot = checksum64(p, (size_t)n);
    if (pgot != psum) {
        snprintf(what, what_cap, "payload checksum mismatch (stored 0x%016llx, computed 0x%016llx)",
                 (unsigned long long)psum, (unsigned long long)pgot);
        return TIND_CORRUPTION;
    }
    *payload = p;
    *len = n;
    return TIND_OK;
}

int journal_reader_open(const char *path, journal_reader **out)
{
    *out = NULL;
    journal_reader *r = calloc(1, sizeof *r);
    if (!r) return err_nomem();
    int rc = file_open(path, FILE_READ, &r->f);
    if (rc) goto fail;
    r->size = file_size(r->f);
    /* A small journal gets a small window; never smaller than a header. */
    r->win_cap = READER_WINDOW;
    if (r->size < r->win_cap) r->win_cap = r->size < JOURNAL_HEADER_SIZE ? JOURNAL_HEADER_SIZE : (size_t)r->size;
    r->win = malloc(r->win_cap);
    if (!r->win) {
        rc = err_nomem();
        goto fail;
    }
    /* Read what there is of the header; a short file is reported as a
     * truncated header by the decoder. */
    size_t n = r->size < JOURNAL_HEADER_SIZE ? (size_t)r->size : JOURNAL_HEADER_SIZE;
    const uint8_t *h = NULL;
    if ((rc = reader_view(r, 0, n, &h)) != TIND_OK) goto fail;
    if (!h) { /* the file shrank since open */
        h = r->win;
        n = r->win_len;
    }
    if ((rc = journal_header_decode(h, n, path, &r->h)) != TIND_OK) goto fail;
    r->off = JOURNAL_HEADER_SIZE;
    *out = r;
    return TIND_OK;
fail:
    journal_reader_close(r);
    return rc;
}

const struct journal_header *journal_reader_header(const journal_reader *r) { return &r->h; }

int journal_reader_next(journal_reader *r, const uint8_t **payload, size_t *len, uint64_t *offset)
{
    if (r->off >= r->size) return TIND_NOT_FOUND;
    char what[160];
    const uint8_t *p;
    uint64_t n;
    int rc = reader_record(r, r->off, &p, &n, what, sizeof what);
    if (rc == TIND_CORRUPTION)
        return err_set(rc, "journal %s offset %llu: %s", file_path(r->f), (unsigned long long)r->off, what);
    if (rc) return rc;
    *payload = p;
    *len = (size_t)n;
    *offset = r->off;
    r->off += JOURNAL_RECORD_HEADER + n;
    return TIND_OK;
}

uint64_t journal_reader_offset(const journal_reader *r) { return r->off; }

uint64_t journal_reader_file_size(const journal_reader *r) { return r->size; }

/* Every byte offset after off is a candidate start. The 4-byte header_sum
 * is checked first and rejects garbage at one xxh3 of 16 bytes per offset;
 * only a header that passes (about 1 in 2^32 by chance) costs a payload read.
 * The window slides forward from the current offset, so a long tail is read
 * once, not once per candidate. */
int journal_reader_valid_after(journal_reader *r, uint64_t off)
{
    char what[160];
    uint64_t start = off + 1;
    /* When the bad record's header is intact, its length is trustworthy: the
     * search starts after its payload, so that bytes inside a torn payload
     * (a value that happens to hold a journal image) are never taken for a
     * record. An intact header whose payload runs past the end is a torn tail. */
    if (r->size - off >= JOURNAL_RECORD_HEADER) {
        const uint8_t *bh = NULL;
        int brc = reader_view(r, off, JOURNAL_RECORD_HEADER, &bh);
        if (brc) return brc;
        if (bh && get_u32(bh + 16) == (uint32_t)checksum64(bh, 16)) {
            uint64_t bn = get_u64(bh);
            if (bn > r->size - off - JOURNAL_RECORD_HEADER) return 0;
            start = off + JOURNAL_RECORD_HEADER + bn;
        }
    }
    for (uint64_t o = start; o < r->size && r->size - o >= JOURNAL_RECORD_HEADER; o++) {
        const uint8_t *h = NULL;
        int rc = reader_view(r, o, JOURNAL_RECORD_HEADER, &h);
        if (rc) return rc;
        if (!h) return 0; /* the file shrank: nothing further to find */
        if (get_u32(h + 16) != (uint32_t)checksum64(h, 16)) continue;
        uint64_t n = get_u64(h);
        if (n == 0 || n > r->size - o - JOURNAL_RECORD_HEADER) continue;
        const uint8_t *p;
        rc = reader_record(r, o, &p, &n, what, sizeof what);
        if (rc == TIND_OK) return 1;
        if (rc != TIND_CORRUPTION) return rc;
    }
    return 0;
}

void journal_reader_close(journal_reader *r)
{
    if (!r) return;
    file_close(r->f);
    free(r->win);
    free(r->big);
    free(r);
}
