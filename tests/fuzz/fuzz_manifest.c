/* Fuzz target: a keyspace's MANIFEST recovered at open.
 *
 * The input is written as MANIFEST into an empty keyspace folder and opened
 * with manifest_open, which decodes every record into a version edit and
 * applies the edits in order into versions (checking each version's
 * invariants), cutting a torn tail off. Each input is tried twice: as it is,
 * and with every record's checksums recomputed (following the length
 * fields), so that mutations inside edits reach the edit decoder.
 *
 * Checked: an open either succeeds or fails with a negative status and a
 * message; every record that decodes re-encodes to bytes that decode to the
 * same encoding; after a successful open the current version passes
 * manifest_check, and a second open (after the first cut any torn tail)
 * succeeds with the same version, flushed seq and next file number. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/version.h"
#include "src/util/buf.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "src/util/record.h"
#include "tests/fuzz/fuzz_common.h"
#include "tind.h"

static char *fzm_dir;
static char fzm_path[4096];

struct fzm_state {
    uint64_t digest, flushed, next_file;
    size_t files;
};

static uint64_t fzm_mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *c = p;
    h ^= n + 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3u;
    return h * 0xff51afd7ed558ccdu;
}

static uint64_t fzm_mix_u64(uint64_t h, uint64_t x) { return fzm_mix(h, &x, sizeof x); }

/* Decodes each well-framed record on its own and checks that its encoding
 * is stable: decode(encode(decode(p))) encodes to the same bytes. */
static void fzm_roundtrip(const uint8_t *d, size_t n)
{
    size_t off = 0;
    while (off < n && n - off >= RECORD_HEADER_SIZE) {
        uint64_t plen, psum;
        if (!record_header_ok(d + off, &plen, &psum) || plen > n - off - RECORD_HEADER_SIZE) return;
        const uint8_t *p = d + off + RECORD_HEADER_SIZE;
        struct version_edit e, e2;
        if (version_edit_decode(p, (size_t)plen, fzm_dir, fzm_path, off, &e) == TIND_OK) {
            buf a, b;
            buf_init(&a);
            buf_init(&b);
            int rc = version_edit_encode(&e, &a);
            if (rc == TIND_OK) {
                rc = version_edit_decode(a.p, a.len, fzm_dir, fzm_path, 0, &e2);
                FZ_CHECK(rc == TIND_OK, "a re-encoded edit does not decode: %s", err_msg());
                rc = version_edit_encode(&e2, &b);
                FZ_CHECK(rc == TIND_OK || rc == TIND_NO_MEMORY, "encode: %s", err_msg());
                if (rc == TIND_OK)
                    FZ_CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0, "edit encoding is not stable");
                version_edit_free(&e2);
            } else {
                FZ_CHECK(rc == TIND_NO_MEMORY, "a decoded edit does not encode: %s", err_msg());
            }
            buf_free(&a);
            buf_free(&b);
            version_edit_free(&e);
        }
        off += RECORD_HEADER_SIZE + (size_t)plen;
    }
}

/* Opens the manifest: 1 with *st filled, 0 when the open failed. */
static int fzm_open(struct fzm_state *st)
{
    manifest *m;
    int rc = manifest_open(fzm_dir, 0, &m);
    if (rc != TIND_OK) {
        FZ_CHECK(rc < 0 && err_msg()[0] != '\0', "open failed (%d) without a message", rc);
        return 0;
    }
    rc = manifest_check(m);
    FZ_CHECK(rc == TIND_OK, "a recovered version fails its check: %s", err_msg());
    struct version *v = manifest_current(m);
    uint64_t h = 0;
    size_t files = 0;
    for (unsigned l = 0; l < LSM_LEVELS; l++) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            const struct table_meta *t = v->files[l][i];
            h = fzm_mix_u64(h, l);
            h = fzm_mix_u64(h, t->number);
            h = fzm_mix_u64(h, t->size);
            h = fzm_mix_u64(h, t->entries);
            h = fzm_mix_u64(h, t->min_seq);
            h = fzm_mix_u64(h, t->max_seq);
            h = fzm_mix(h, t->smallest.p, t->smallest.len);
            h = fzm_mix(h, t->largest.p, t->largest.len);
            bytes += t->size;
            files++;
        }
        FZ_CHECK(bytes == v->level_bytes[l], "level %u: %llu bytes recorded, tables hold %llu", l,
                 (unsigned long long)v->level_bytes[l], (unsigned long long)bytes);
    }
    st->digest = h;
    st->files = files;
    st->flushed = manifest_flushed_seq(m);
    st->next_file = manifest_new_file_number(m);
    version_unref(v);
    manifest_close(m);
    return 1;
}

static void fzm_run(const uint8_t *d, size_t n)
{
    FZ_CHECK(fz_empty_dir(fzm_dir) == 0, "cannot empty %s", fzm_dir);
    FZ_CHECK(fz_write_file(fzm_path, d, n) == 0, "cannot write %s", fzm_path);
    fzm_roundtrip(d, n);
    struct fzm_state a, b;
    if (!fzm_open(&a)) return;
    FZ_CHECK(fzm_open(&b), "the second open failed: %s", err_msg());
    FZ_CHECK(a.digest == b.digest && a.files == b.files && a.flushed == b.flushed,
             "the second open recovered another version (%zu tables, then %zu)", a.files, b.files);
    /* The first open handed out next_file once. */
    FZ_CHECK(b.next_file >= a.next_file, "next file number went back from %llu to %llu",
             (unsigned long long)a.next_file, (unsigned long long)b.next_file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fzm_dir) {
        fzm_dir = fz_mkdtemp("manifest");
        FZ_CHECK(fzm_dir != NULL, "cannot make a temporary directory");
        fz_join(fzm_path, sizeof fzm_path, fzm_dir, MANIFEST_FILE);
    }
    fzm_run(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    FZ_CHECK(copy != NULL, "out of memory");
    if (size) memcpy(copy, data, size);
    fz_reseal_records(copy, size, 0);
    if (size && memcmp(copy, data, size) != 0) fzm_run(copy, size);
    free(copy);
    return 0;
}
