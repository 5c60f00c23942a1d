/* Fuzz target: journal files recovered at open.
 *
 * The input is one journal file, or several: it is cut before every later
 * occurrence of the journal magic ("TINDJRNL"), so a concatenation of real
 * journal files is a sequence of journals, numbered 1, 2, ... in input
 * order. They are put into the journal folder of a copy of a template
 * database (keyspaces "a" and "b", no data, no journals; the one
 * gen_corpus.c writes its journals with) and the database is opened: the
 * journals are read, torn tails cut, batch and drop payloads decoded and
 * applied, exactly as at any open.
 *
 * Each input is tried twice: as it is, and with every checksum recomputed
 * (the file header's and each record's, following the length fields), so
 * that mutations inside payloads reach the payload decoders.
 *
 * Checked: an open either succeeds or fails with a negative status and a
 * message; after a successful open, forward and backward iteration of both
 * keyspaces agree and every key reads back its iterated value; closing and
 * opening again (recovery must have left the journals clean) gives the same
 * contents. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal/format.h"
#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "tests/fuzz/fuzz_common.h"
#include "tind.h"

#define FZJ_MAX_FILES 8
#define FZJ_KEYSPACES 2

static const char *fzj_ks_names[FZJ_KEYSPACES] = {"a", "b"};
static char *fzj_root;  /* holds template/ and work/ */
static char fzj_template[4096], fzj_work[4096];

static void fzj_options(tind_options *o)
{
    tind_options_init(o);
    o->workers = 1;
    o->cache_bytes = 1u << 20;
    o->durability = TIND_DURABILITY_BUFFERED;
}

static void fzj_make_template(void)
{
    fzj_root = fz_mkdtemp("journal");
    FZ_CHECK(fzj_root != NULL, "cannot make a temporary directory");
    fz_join(fzj_template, sizeof fzj_template, fzj_root, "template");
    fz_join(fzj_work, sizeof fzj_work, fzj_root, "work");
    tind_options o;
    fzj_options(&o);
    tind_db *db;
    int rc = tind_open(fzj_template, &o, &db);
    FZ_CHECK(rc == TIND_OK, "template open: %s", tind_last_error());
    for (int i = 0; i < FZJ_KEYSPACES; i++) {
        tind_keyspace *ks;
        rc = tind_keyspace_open(db, fzj_ks_names[i], NULL, &ks);
        FZ_CHECK(rc == TIND_OK, "template keyspace: %s", tind_last_error());
    }
    FZ_CHECK(tind_close(db) == TIND_OK, "template close: %s", tind_last_error());
    char jdir[4096];
    fz_join(jdir, sizeof jdir, fzj_template, "journals");
    FZ_CHECK(fz_empty_dir(jdir) == 0, "cannot empty %s", jdir);
}

/* A digest of a keyspace's contents, built while iterating forward. */
struct fzj_digest {
    uint64_t h;
    size_t n;
};

static uint64_t fzj_mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *c = p;
    h ^= n + 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3u;
    return h * 0xff51afd7ed558ccdu;
}

/* Iterates ks both ways; forward and backward must see the same keys, in
 * reverse order, each reading back its value through tind_get. */
static struct fzj_digest fzj_scan(tind_keyspace *ks)
{
    struct fzj_digest d = {0, 0};
    tind_iter *it;
    int rc = tind_iter_open(ks, NULL, NULL, &it);
    if (rc == TIND_NO_MEMORY) return d;
    FZ_CHECK(rc == TIND_OK, "iter_open: %s", tind_last_error());
    size_t cap = 0, n = 0;
    uint64_t *hashes = NULL;
    const void *prev = NULL;
    size_t prevlen = 0;
    char *prevcopy = NULL;
    for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it)) {
        size_t kl, vl;
        const void *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
        if (prevcopy) {
            size_t m = kl < prevlen ? kl : prevlen;
            int c = m ? memcmp(prev, k, m) : 0;
            FZ_CHECK(c < 0 || (c == 0 && prevlen < kl), "forward iteration out of order");
        }
        free(prevcopy);
        prevcopy = malloc(kl ? kl : 1);
        FZ_CHECK(prevcopy != NULL, "out of memory");
        if (kl) memcpy(prevcopy, k, kl);
        prev = prevcopy;
        prevlen = kl;
        void *got;
        size_t gl;
        rc = tind_get(ks, k, kl, &got, &gl);
        FZ_CHECK(rc == TIND_OK, "get of an iterated key: %d %s", rc, tind_last_error());
        FZ_CHECK(gl == vl && (vl == 0 || memcmp(got, v, vl) == 0), "get differs from the iterated value");
        tind_free(got);
        uint64_t h = fzj_mix(fzj_mix(0, k, kl), v, vl);
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            hashes = realloc(hashes, cap * sizeof *hashes);
            FZ_CHECK(hashes != NULL, "out of memory");
        }
        hashes[n++] = h;
        d.h = fzj_mix(d.h, &h, sizeof h);
    }
    FZ_CHECK(tind_iter_status(it) == TIND_OK, "forward iteration: %s", tind_last_error());
    free(prevcopy);
    size_t back = n;
    for (tind_iter_seek_last(it); tind_iter_valid(it); tind_iter_prev(it)) {
        size_t kl, vl;
        const void *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
        FZ_CHECK(back > 0, "backward iteration sees more keys than forward (%zu)", n);
        back--;
        FZ_CHECK(hashes[back] == fzj_mix(fzj_mix(0, k, kl), v, vl), "backward entry %zu differs from forward",
                 back);
    }
    FZ_CHECK(tind_iter_status(it) == TIND_OK, "backward iteration: %s", tind_last_error());
    FZ_CHECK(back == 0, "backward iteration saw %zu of %zu keys", n - back, n);
    tind_iter_close(it);
    free(hashes);
    d.n = n;
    return d;
}

/* Opens the work database: 1 with digests filled, 0 when the open failed. */
static int fzj_open_scan(struct fzj_digest *dig)
{
    tind_options o;
    fzj_options(&o);
    o.create_if_missing = 0;
    tind_db *db;
    int rc = tind_open(fzj_work, &o, &db);
    if (rc != TIND_OK) {
        FZ_CHECK(rc < 0 && tind_last_error()[0] != '\0', "open failed (%d) without a message", rc);
        return 0;
    }
    for (int i = 0; i < FZJ_KEYSPACES; i++) {
        tind_keyspace *ks;
        rc = tind_keyspace_open(db, fzj_ks_names[i], NULL, &ks);
        FZ_CHECK(rc == TIND_OK, "keyspace_open after a good open: %s", tind_last_error());
        dig[i] = fzj_scan(ks);
    }
    FZ_CHECK(tind_close(db) == TIND_OK, "close: %s", tind_last_error());
    return 1;
}

static void fzj_run(uint8_t *const *pieces, const size_t *lens, size_t count)
{
    FZ_CHECK(fz_rmtree(fzj_work) == 0, "cannot remove %s", fzj_work);
    FZ_CHECK(fz_copy_tree(fzj_template, fzj_work) == 0, "cannot copy the template");
    for (size_t i = 0; i < count; i++) {
        char name[JOURNAL_NAME_LEN + 1], jdir[4096], path[4096];
        journal_file_name(name, i + 1);
        fz_join(jdir, sizeof jdir, fzj_work, "journals");
        fz_join(path, sizeof path, jdir, name);
        FZ_CHECK(fz_write_file(path, pieces[i], lens[i]) == 0, "cannot write %s", path);
    }
    struct fzj_digest first[FZJ_KEYSPACES], second[FZJ_KEYSPACES];
    if (!fzj_open_scan(first)) return;
    /* The first open cut any torn tail: the journals now read cleanly. */
    int again = fzj_open_scan(second);
    FZ_CHECK(again, "the second open failed: %s", tind_last_error());
    for (int i = 0; i < FZJ_KEYSPACES; i++)
        FZ_CHECK(first[i].n == second[i].n && first[i].h == second[i].h,
                 "keyspace %s: %zu keys at the first open, %zu at the second", fzj_ks_names[i], first[i].n,
                 second[i].n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fzj_root) fzj_make_template();
    uint8_t magic[8];
    put_u64(magic, JOURNAL_MAGIC);
    /* Cut before each later magic. */
    size_t starts[FZJ_MAX_FILES], count = 0;
    starts[count++] = 0;
    for (size_t i = 1; i + 8 <= size && count < FZJ_MAX_FILES; i++)
        if (memcmp(data + i, magic, 8) == 0) starts[count++] = i;
    uint8_t *pieces[FZJ_MAX_FILES];
    size_t lens[FZJ_MAX_FILES];
    for (size_t i = 0; i < count; i++) {
        lens[i] = (i + 1 < count ? starts[i + 1] : size) - starts[i];
        pieces[i] = malloc(lens[i] ? lens[i] : 1);
        FZ_CHECK(pieces[i] != NULL, "out of memory");
        if (lens[i]) memcpy(pieces[i], data + starts[i], lens[i]);
    }
    fzj_run(pieces, lens, count);

    /* Resealed: header and record checksums recomputed. */
    int changed = 0;
    for (size_t i = 0; i < count; i++) {
        if (lens[i] < JOURNAL_HEADER_SIZE) continue;
        uint8_t *p = pieces[i];
        uint8_t before[JOURNAL_HEADER_SIZE];
        memcpy(before, p, sizeof before);
        put_u64(p + 32, XXH3_64bits(p, 32));
        uint8_t *copy = malloc(lens[i]);
        FZ_CHECK(copy != NULL, "out of memory");
        memcpy(copy, p, lens[i]);
        fz_reseal_records(p, lens[i], JOURNAL_HEADER_SIZE);
        if (memcmp(before, p, 32 + 8) != 0 || memcmp(copy, p, lens[i]) != 0) changed = 1;
        free(copy);
    }
    if (changed) fzj_run(pieces, lens, count);
    for (size_t i = 0; i < count; i++) free(pieces[i]);
    return 0;
}
