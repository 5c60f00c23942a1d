/* Fuzz target: a table file read through the table reader.
 *
 * The input is written as a table file and opened (footer, properties),
 * verified (table_verify reads and checks every block: index, filter,
 * properties, data), iterated forward and backward, sought, and looked up
 * with gets of keys it holds and keys it does not. Each input is tried
 * twice: as it is, and resealed — the footer checksum and the checksums of
 * the blocks the footer names and of the data blocks an uncompressed index
 * names recomputed — so that mutations inside blocks reach the decoders
 * behind the checksums.
 *
 * Checked always: no crash, leak or undefined behaviour, and errors are
 * negative statuses. Checked when table_verify accepts the table: forward
 * iteration is in strictly increasing internal order, backward iteration
 * gives the same entries reversed, a seek to each entry's key lands on it,
 * a get of each entry at its own sequence number finds its kind and value
 * (the filter included), a get below its oldest version finds nothing, and
 * a get of a user key the table does not hold finds nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/block.h"
#include "lsm/cache.h"
#include "lsm/ikey.h"
#include "lsm/table.h"
#include "lsm/table_format.h"
#include "src/util/buf.h"
#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "tests/fuzz/fuzz_common.h"
#include "tind.h"

#define FZT_MAX_ENTRIES 2048

static char *fzt_dir;
static char fzt_path[4096];

struct fzt_ent {
    uint8_t *k, *v;
    size_t kl, vl;
    uint64_t tag;
};

/* Rewrites the checksum of the block [off, off + size) + trailer when it lies
 * inside d[0, end). */
static void fzt_reseal_block(uint8_t *d, size_t end, uint64_t off, uint64_t size)
{
    if (off > end || size > end - off || end - off - size < BLOCK_TRAILER_SIZE) return;
    put_u64(d + off + size + 1, checksum64(d + off, (size_t)size + 1));
}

static void fzt_reseal(uint8_t *d, size_t n)
{
    if (n < TABLE_FOOTER_SIZE) return;
    uint8_t *f = d + n - TABLE_FOOTER_SIZE;
    size_t end = n - TABLE_FOOTER_SIZE;
    put_u64(f + FOOTER_CHECKSUM, checksum64(f, FOOTER_CHECKSUM));
    uint64_t ioff = get_u64(f + FOOTER_INDEX_OFF), isize = get_u64(f + FOOTER_INDEX_SIZE);
    fzt_reseal_block(d, end, get_u64(f + FOOTER_PROPS_OFF), get_u64(f + FOOTER_PROPS_SIZE));
    if (get_u64(f + FOOTER_FILTER_SIZE)) fzt_reseal_block(d, end, get_u64(f + FOOTER_FILTER_OFF), get_u64(f + FOOTER_FILTER_SIZE));
    fzt_reseal_block(d, end, ioff, isize);
    /* Data blocks through an uncompressed index. */
    if (ioff > end || isize > end - ioff || end - ioff - isize < BLOCK_TRAILER_SIZE) return;
    if (d[ioff + isize] != COMPRESS_NONE) return;
    block b;
    if (block_init(&b, d + ioff, (size_t)isize) != TIND_OK) {
        err_clear();
        return;
    }
    block_iter it;
    block_iter_init(&it, &b);
    for (block_iter_seek_first(&it); it.base.valid; block_iter_next(&it)) {
        uint64_t off, size;
        const uint8_t *p = it.base.val, *e = it.base.val + it.base.vlen;
        if (!(p = get_varint64(p, e, &off)) || !get_varint64(p, e, &size)) continue;
        fzt_reseal_block(d, end, off, size);
    }
    block_iter_release(&it);
    err_clear();
}

/* Frees the entries. */
static void fzt_free(struct fzt_ent *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].k);
        free(e[i].v);
    }
    free(e);
}

static void *fzt_dup(const void *p, size_t n)
{
    void *c = malloc(n ? n : 1);
    FZ_CHECK(c != NULL, "out of memory");
    if (n) memcpy(c, p, n);
    return c;
}

static int fzt_same(const iiter *it, const struct fzt_ent *e)
{
    return it->valid && it->tag == e->tag && it->klen == e->kl && it->vlen == e->vl &&
           (e->kl == 0 || memcmp(it->key, e->k, e->kl) == 0) && (e->vl == 0 || memcmp(it->val, e->v, e->vl) == 0);
}

/* Iterates and looks up; `strict` when table_verify accepted the table. */
static void fzt_read(table *t, int strict)
{
    iiter *it = table_iter(t);
    if (!it) return;
    struct fzt_ent *ents = calloc(FZT_MAX_ENTRIES, sizeof *ents);
    FZ_CHECK(ents != NULL, "out of memory");
    size_t n = 0;
    int whole = 1; /* every entry collected */
    for (iiter_seek_first(it); it->valid; iiter_next(it)) {
        if (n == FZT_MAX_ENTRIES) {
            whole = 0;
            break;
        }
        if (strict && n > 0) {
            const struct fzt_ent *p = &ents[n - 1];
            FZ_CHECK(ikey_cmp(p->k, p->kl, p->tag, it->key, it->klen, it->tag) < 0,
                     "forward iteration out of order at entry %zu", n);
        }
        ents[n].k = fzt_dup(it->key, it->klen);
        ents[n].kl = it->klen;
        ents[n].v = fzt_dup(it->val, it->vlen);
        ents[n].vl = it->vlen;
        ents[n].tag = it->tag;
        n++;
    }
    int st = iiter_status(it);
    FZ_CHECK(st <= 0, "status %d", st);
    if (strict) FZ_CHECK(st == TIND_OK, "forward iteration of a verified table: %s", err_msg());
    if (strict && whole) {
        size_t back = n;
        for (iiter_seek_last(it); it->valid; iiter_prev(it)) {
            FZ_CHECK(back > 0, "backward iteration sees more than %zu entries", n);
            back--;
            FZ_CHECK(fzt_same(it, &ents[back]), "backward entry %zu differs from forward", back);
        }
        FZ_CHECK(iiter_status(it) == TIND_OK, "backward iteration of a verified table: %s", err_msg());
        FZ_CHECK(back == 0, "backward iteration saw %zu of %zu entries", n - back, n);
    } else {
        /* Still walk backward for the decoder's sake. */
        size_t steps = 0;
        for (iiter_seek_last(it); it->valid && steps < FZT_MAX_ENTRIES; iiter_prev(it)) steps++;
    }
    buf val;
    buf_init(&val);
    for (size_t i = 0; i < n; i++) {
        const struct fzt_ent *e = &ents[i];
        iiter_seek(it, e->k, e->kl, e->tag);
        if (strict) FZ_CHECK(fzt_same(it, e), "seek to entry %zu does not land on it", i);
        iiter_seek_for_prev(it, e->k, e->kl, e->tag);
        if (strict) FZ_CHECK(fzt_same(it, e), "seek_for_prev to entry %zu does not land on it", i);
        int found = 0;
        unsigned kind = 0;
        uint64_t seq = tag_seq(e->tag);
        int rc = table_get(t, e->k, e->kl, seq, &found, &kind, &val);
        FZ_CHECK(rc <= 0, "get status %d", rc);
        /* Entries of one user key and one sequence number (kinds apart) hide each other. */
        int shadowed = i > 0 && ukey_cmp(ents[i - 1].k, ents[i - 1].kl, e->k, e->kl) == 0 &&
                       tag_seq(ents[i - 1].tag) == seq;
        if (strict && !shadowed) {
            FZ_CHECK(rc == TIND_OK, "get of entry %zu: %s", i, err_msg());
            FZ_CHECK(found, "get of entry %zu (seq %llu) finds nothing", i, (unsigned long long)seq);
            FZ_CHECK(kind == tag_kind(e->tag), "get of entry %zu: kind %u, stored %u", i, kind, tag_kind(e->tag));
            if (kind == KIND_PUT)
                FZ_CHECK(val.len == e->vl && (e->vl == 0 || memcmp(val.p, e->v, e->vl) == 0),
                         "get of entry %zu: another value", i);
            FZ_CHECK(table_may_contain(t, e->k, e->kl), "the filter denies entry %zu", i);
        }
        int oldest = i + 1 == n || ukey_cmp(ents[i + 1].k, ents[i + 1].kl, e->k, e->kl) != 0;
        if (!oldest || !whole) continue;
        if (seq > 0) {
            rc = table_get(t, e->k, e->kl, seq - 1, &found, &kind, &val);
            if (strict) FZ_CHECK(rc == TIND_OK && !found, "get below the oldest version of entry %zu finds one", i);
        }
        /* The next user key in memcmp order: the key with a zero byte appended. */
        uint8_t *succ = malloc(e->kl + 1);
        FZ_CHECK(succ != NULL, "out of memory");
        if (e->kl) memcpy(succ, e->k, e->kl);
        succ[e->kl] = 0;
        int held = i + 1 < n && ukey_cmp(ents[i + 1].k, ents[i + 1].kl, succ, e->kl + 1) == 0;
        rc = table_get(t, succ, e->kl + 1, SEQ_MAX, &found, &kind, &val);
        if (strict && !held) FZ_CHECK(rc == TIND_OK && !found, "get of an absent key after entry %zu finds one", i);
        free(succ);
    }
    /* A key before every entry. */
    int found;
    unsigned kind;
    int rc = table_get(t, (const uint8_t *)"", 0, SEQ_MAX, &found, &kind, &val);
    if (strict && whole && !(n > 0 && ents[0].kl == 0)) FZ_CHECK(rc == TIND_OK && !found, "get of the empty key finds one");
    buf_free(&val);
    iiter_destroy(it);
    fzt_free(ents, n);
}

static void fzt_run(const uint8_t *d, size_t n, cache *c)
{
    FZ_CHECK(fz_write_file(fzt_path, d, n) == 0, "cannot write %s", fzt_path);
    table *t;
    int rc = table_open(fzt_path, n, c, &t);
    if (rc != TIND_OK) {
        FZ_CHECK(rc < 0 && err_msg()[0] != '\0', "open failed (%d) without a message", rc);
        return;
    }
    const struct table_props *p = table_get_props(t);
    (void)p;
    rc = table_verify(t);
    FZ_CHECK(rc <= 0, "verify status %d", rc);
    int strict = rc == TIND_OK;
    fzt_read(t, strict);
    table_unref(t);
    err_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fzt_dir) {
        fzt_dir = fz_mkdtemp("table");
        FZ_CHECK(fzt_dir != NULL, "cannot make a temporary directory");
        fz_join(fzt_path, sizeof fzt_path, fzt_dir, "0000000000000001.tbl");
    }
    /* A small cache per input: blocks go through the cache path, and
     * nothing cached outlives the file it came from. */
    cache *c = cache_new(1u << 20, 1);
    FZ_CHECK(c != NULL, "out of memory");
    fzt_run(data, size, c);
    uint8_t *copy = malloc(size ? size : 1);
    FZ_CHECK(copy != NULL, "out of memory");
    if (size) memcpy(copy, data, size);
    fzt_reseal(copy, size);
    if (size && memcmp(copy, data, size) != 0) {
        cache_free(c);
        c = cache_new(1u << 20, 1);
        FZ_CHECK(c != NULL, "out of memory");
        fzt_run(copy, size, c);
    }
    cache_free(c);
    free(copy);
    return 0;
}
