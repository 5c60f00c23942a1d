#include <criterion/criterion.h>

#include <errno.h>
#include <lz4.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "lsm/block.h"
#include "lsm/cache.h"
#include "lsm/compress.h"
#include "lsm/ikey.h"
#include "lsm/table.h"
#include "lsm/table_format.h"
#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "src/util/file.h"
#include "tests/support/fault_env.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* ---- fixtures ---- */

static char *dir;

static void setup(void)
{
    dir = tu_mkdtemp("table");
    cr_assert_not_null(dir, "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    file_fault_clear();
    tu_rmtree(dir);
    free(dir);
}

TestSuite(table, .init = setup, .fini = teardown);

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* ---- a reference set: entries in internal order ---- */

struct tent {
    uint8_t *k;
    size_t kl;
    uint64_t tag;
    uint8_t *v;
    size_t vl;
};

struct tset {
    struct tent *e;
    size_t n, cap;
};

static void tset_add(struct tset *s, const void *k, size_t kl, uint64_t tag, const void *v, size_t vl)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->e = realloc(s->e, s->cap * sizeof *s->e);
        cr_assert_not_null(s->e);
    }
    struct tent *x = &s->e[s->n++];
    x->k = malloc(kl ? kl : 1);
    x->v = malloc(vl ? vl : 1);
    cr_assert(x->k && x->v);
    if (kl) memcpy(x->k, k, kl);
    if (vl) memcpy(x->v, v, vl);
    x->kl = kl;
    x->vl = vl;
    x->tag = tag;
}

static void tset_free(struct tset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].k);
        free(s->e[i].v);
    }
    free(s->e);
    memset(s, 0, sizeof *s);
}

static int ukey_qsort(const void *a, const void *b)
{
    const struct tent *x = a, *y = b;
    return ukey_cmp(x->k, x->kl, y->k, y->kl);
}

/* Random binary user keys over an alphabet with 0x00 and 0xff (long shared
 * prefixes, keys that are prefixes of others), 1 to 4 versions each with
 * descending seqs, some tombstones; values mostly small, every 40th up to
 * 3,000 bytes, half repetitive and half random. */
static void tset_random(struct tset *s, size_t nkeys, uint64_t *rs)
{
    static const uint8_t alpha[] = {0x00, 0x01, 'a', 'b', 0xfe, 0xff};
    struct tset keys = {0};
    uint8_t k[24], v[3000];
    for (size_t i = 0; i < nkeys; i++) {
        size_t kl = 1 + tu_below(rs, sizeof k);
        for (size_t j = 0; j < kl; j++) k[j] = alpha[tu_below(rs, sizeof alpha)];
        tset_add(&keys, k, kl, 0, NULL, 0);
    }
    qsort(keys.e, keys.n, sizeof *keys.e, ukey_qsort);
    for (size_t i = 0; i < keys.n; i++) {
        if (i && ukey_cmp(keys.e[i].k, keys.e[i].kl, keys.e[i - 1].k, keys.e[i - 1].kl) == 0) continue;
        unsigned nv = 1 + (unsigned)tu_below(rs, 4);
        uint64_t seq = 1 + tu_below(rs, 1000000) + 10 * nv;
        for (unsigned j = 0; j < nv; j++) {
            seq -= 1 + tu_below(rs, 5);
            unsigned kind = tu_below(rs, 6) == 0 ? KIND_DELETE : KIND_PUT;
            size_t vl = kind == KIND_DELETE ? 0 : tu_below(rs, 40) == 0 ? tu_below(rs, sizeof v) : tu_below(rs, 120);
            for (size_t b = 0; b < vl; b++) v[b] = b < vl / 2 ? (uint8_t)('a' + b % 7) : (uint8_t)tu_rand(rs);
            tset_add(s, keys.e[i].k, keys.e[i].kl, tag_pack(seq, kind), v, vl);
        }
    }
    tset_free(&keys);
}

/* Index of the first entry >= (k, tag): n when none. */
static size_t ref_lower(const struct tset *s, const uint8_t *k, size_t kl, uint64_t tag)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ikey_cmp(s->e[mid].k, s->e[mid].kl, s->e[mid].tag, k, kl, tag) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Index of the last entry <= (k, tag): n when none. */
static size_t ref_floor(const struct tset *s, const uint8_t *k, size_t kl, uint64_t tag)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ikey_cmp(s->e[mid].k, s->e[mid].kl, s->e[mid].tag, k, kl, tag) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo ? lo - 1 : s->n;
}

static struct table_options opts(size_t block_size, unsigned compression, unsigned bloom_bits)
{
    struct table_options o = {.block_size = block_size,
                              .restart_interval = 16,
                              .bloom_bits = bloom_bits,
                              .compression = compression,
                              .zstd_level = 3};
    return o;
}

static void write_table(const char *path, const struct table_options *o, const struct tset *s,
                        struct table_props *props, uint64_t *size)
{
    table_writer *w;
    int rc = table_writer_open(path, o, &w);
    cr_assert_eq(rc, TIND_OK, "table_writer_open %s: %d %s", path, rc, err_msg());
    uint64_t last = 0;
    for (size_t i = 0; i < s->n; i++) {
        rc = table_writer_add(w, s->e[i].k, s->e[i].kl, s->e[i].tag, s->e[i].v, s->e[i].vl);
        cr_assert_eq(rc, TIND_OK, "add %zu: %d %s", i, rc, err_msg());
        /* Monotonic when blocks are stored as built (compression may shrink
         * the open block when it is written). */
        if (o->compression == COMPRESS_NONE) cr_assert_geq(table_writer_size(w), last, "table_writer_size went down");
        last = table_writer_size(w);
    }
    cr_assert_eq(table_writer_entries(w), s->n);
    rc = table_writer_finish(w, props, size);
    cr_assert_eq(rc, TIND_OK, "finish %s: %d %s", path, rc, err_msg());
}

static table *open_table(const char *path, uint64_t size, cache *c)
{
    table *t;
    int rc = table_open(path, size, c, &t);
    cr_assert_eq(rc, TIND_OK, "table_open %s: %d %s", path, rc, err_msg());
    return t;
}

static void expect_at(const iiter *it, const struct tset *s, size_t i, const char *what)
{
    cr_assert(it->valid, "%s: expected entry %zu (%s), iterator invalid (status %d: %s)", what, i,
              tu_hex(s->e[i].k, s->e[i].kl), iiter_status(it), err_msg());
    const struct tent *x = &s->e[i];
    cr_assert(it->klen == x->kl && memcmp(it->key, x->k, x->kl) == 0 && it->tag == x->tag,
              "%s: expected entry %zu key %s tag %llx, got key %s tag %llx", what, i, tu_hex(x->k, x->kl),
              (unsigned long long)x->tag, tu_hex(it->key, it->klen), (unsigned long long)it->tag);
    cr_assert(it->vlen == x->vl && (x->vl == 0 || memcmp(it->val, x->v, x->vl) == 0),
              "%s: entry %zu value of %zu bytes differs (expected %zu)", what, i, it->vlen, x->vl);
}

static void expect_end(const iiter *it, const char *what)
{
    cr_assert(!it->valid, "%s: expected the end, at key %s", what, tu_hex(it->key, it->klen));
    cr_assert_eq(iiter_status(it), TIND_OK, "%s: status %d %s", what, iiter_status(it), err_msg());
}

/* table_get(key, seq) against the reference: the newest version <= seq. */
static void check_get(table *t, const struct tset *s, const uint8_t *k, size_t kl, uint64_t seq, buf *val)
{
    size_t want = ref_lower(s, k, kl, tag_pack(seq > SEQ_MAX ? SEQ_MAX : seq, KIND_MAX));
    if (want < s->n && ukey_cmp(s->e[want].k, s->e[want].kl, k, kl) != 0) want = s->n;
    int found = -1;
    unsigned kind = 99;
    int rc = table_get(t, k, kl, seq, &found, &kind, val);
    cr_assert_eq(rc, TIND_OK, "get %s at %llu: %d %s", tu_hex(k, kl), (unsigned long long)seq, rc, err_msg());
    if (want == s->n) {
        cr_assert_eq(found, 0, "get %s at %llu: found an entry, expected none", tu_hex(k, kl), (unsigned long long)seq);
        return;
    }
    const struct tent *x = &s->e[want];
    cr_assert_eq(found, 1, "get %s at %llu: not found, expected seq %llu", tu_hex(k, kl), (unsigned long long)seq,
                 (unsigned long long)tag_seq(x->tag));
    cr_assert_eq(kind, tag_kind(x->tag), "get %s at %llu: kind %u", tu_hex(k, kl), (unsigned long long)seq, kind);
    cr_assert(val->len == x->vl && (x->vl == 0 || memcmp(val->p, x->v, x->vl) == 0),
              "get %s at %llu: value of %zu bytes differs (expected %zu)", tu_hex(k, kl), (unsigned long long)seq,
              val->len, x->vl);
}

/* Everything a reader can do, against the reference. */
static void check_table(table *t, const struct tset *s, uint64_t *rs, int seeks)
{
    iiter *it = table_iter(t);
    cr_assert_not_null(it);
    size_t i = 0;
    for (iiter_seek_first(it); it->valid; iiter_next(it), i++) {
        cr_assert_lt(i, s->n, "more entries than written");
        expect_at(it, s, i, "forward walk");
    }
    expect_end(it, "forward walk");
    cr_assert_eq(i, s->n, "forward walk saw %zu of %zu", i, s->n);
    for (iiter_seek_last(it); it->valid; iiter_prev(it)) {
        cr_assert_gt(i, 0, "more entries backward than written");
        expect_at(it, s, --i, "backward walk");
    }
    expect_end(it, "backward walk");
    cr_assert_eq(i, 0);

    /* Point lookups: every user key at every version's seq, one below and one
     * above, 0 and the largest; plus absent neighbours. */
    buf val;
    buf_init(&val);
    for (i = 0; i < s->n; i++) {
        const struct tent *x = &s->e[i];
        uint64_t q = tag_seq(x->tag);
        check_get(t, s, x->k, x->kl, q, &val);
        check_get(t, s, x->k, x->kl, q - 1, &val);
        check_get(t, s, x->k, x->kl, q + 1, &val);
        if (i == 0 || ukey_cmp(x->k, x->kl, s->e[i - 1].k, s->e[i - 1].kl) != 0) {
            check_get(t, s, x->k, x->kl, 0, &val);
            check_get(t, s, x->k, x->kl, UINT64_MAX, &val);
            uint8_t nb[64];
            if (x->kl < sizeof nb) {
                memcpy(nb, x->k, x->kl);
                nb[x->kl] = 0x00; /* just after, absent unless it exists */
                check_get(t, s, nb, x->kl + 1, SEQ_MAX, &val);
                if (x->kl) check_get(t, s, nb, x->kl - 1, SEQ_MAX, &val);
            }
        }
    }
    buf_free(&val);

    /* Random seeks both ways, then a few steps either way. */
    for (int r = 0; r < seeks && s->n; r++) {
        const struct tent *x = &s->e[tu_below(rs, s->n)];
        uint8_t k[64];
        size_t kl = x->kl < sizeof k ? x->kl : sizeof k;
        memcpy(k, x->k, kl);
        switch (tu_below(rs, 4)) {
        case 0: kl = tu_below(rs, kl + 1); break;
        case 1: if (kl) k[tu_below(rs, kl)] = (uint8_t)tu_rand(rs); break;
        case 2: if (kl < sizeof k) k[kl++] = (uint8_t)tu_rand(rs); break;
        default: break;
        }
        uint64_t tag = tu_below(rs, 2) ? x->tag + tu_below(rs, 3) - 1 : tu_rand(rs);
        int back = (int)tu_below(rs, 2);
        size_t pos;
        if (back) {
            iiter_seek_for_prev(it, k, kl, tag);
            pos = ref_floor(s, k, kl, tag);
        } else {
            iiter_seek(it, k, kl, tag);
            pos = ref_lower(s, k, kl, tag);
        }
        if (pos == s->n) {
            expect_end(it, back ? "random seek_for_prev" : "random seek");
            continue;
        }
        expect_at(it, s, pos, back ? "random seek_for_prev" : "random seek");
        for (int step = 0; step < 6; step++) {
            if (tu_below(rs, 2)) {
                iiter_next(it);
                if (++pos == s->n) {
                    expect_end(it, "step next");
                    break;
                }
                expect_at(it, s, pos, "step next");
            } else {
                iiter_prev(it);
                if (pos-- == 0) {
                    expect_end(it, "step prev");
                    break;
                }
                expect_at(it, s, pos, "step prev");
            }
        }
    }
    iiter_destroy(it);
    int rc = table_verify(t);
    cr_assert_eq(rc, TIND_OK, "verify: %d %s", rc, err_msg());
}

/* ---- layout, read back from the file as lsm/README.md describes it ---- */

struct layout {
    uint64_t index_off, index_size, filter_off, filter_size, props_off, props_size, footer_off;
    uint64_t data_off[4096], data_size[4096];
    size_t ndata;
};

static void read_layout(const char *path, struct layout *L)
{
    uint8_t *f;
    size_t n;
    cr_assert_eq(file_read_all(path, &f, &n), TIND_OK);
    cr_assert_geq(n, TABLE_FOOTER_SIZE);
    const uint8_t *ft = f + n - TABLE_FOOTER_SIZE;
    cr_assert_eq(get_u64(ft + FOOTER_MAGIC), TABLE_MAGIC);
    L->footer_off = n - TABLE_FOOTER_SIZE;
    L->index_off = get_u64(ft + FOOTER_INDEX_OFF);
    L->index_size = get_u64(ft + FOOTER_INDEX_SIZE);
    L->filter_off = get_u64(ft + FOOTER_FILTER_OFF);
    L->filter_size = get_u64(ft + FOOTER_FILTER_SIZE);
    L->props_off = get_u64(ft + FOOTER_PROPS_OFF);
    L->props_size = get_u64(ft + FOOTER_PROPS_SIZE);
    cr_assert_eq(f[L->index_off + L->index_size], COMPRESS_NONE, "the index is stored raw");
    block b;
    cr_assert_eq(block_init(&b, f + L->index_off, L->index_size), TIND_OK);
    block_iter it;
    block_iter_init(&it, &b);
    L->ndata = 0;
    for (block_iter_seek_first(&it); it.base.valid; block_iter_next(&it)) {
        cr_assert_lt(L->ndata, 4096);
        const uint8_t *p = it.base.val, *end = p + it.base.vlen;
        p = get_varint64(p, end, &L->data_off[L->ndata]);
        cr_assert_not_null(p);
        p = get_varint64(p, end, &L->data_size[L->ndata]);
        cr_assert(p == end, "index value is exactly a handle");
        L->ndata++;
    }
    cr_assert_eq(it.status, TIND_OK);
    block_iter_release(&it);
    free(f);
}

/* The compression byte of each data block. */
static void data_compression(const char *path, const struct layout *L, unsigned *types)
{
    uint8_t *f;
    size_t n;
    cr_assert_eq(file_read_all(path, &f, &n), TIND_OK);
    for (size_t i = 0; i < L->ndata; i++) types[i] = f[L->data_off[i] + L->data_size[i]];
    free(f);
}

/* ---- round trips ---- */

static const char *const comp_name[] = {"none", "lz4", "zstd"};

Test(table, round_trip_every_compression_and_block_size)
{
    uint64_t seed = tu_seed("table/round_trip_every_compression_and_block_size"), rs = seed;
    struct tset s = {0};
    tset_random(&s, 1500, &rs);
    static const size_t sizes[] = {256, 4096, 65536};
    cache *big = cache_new(8 << 20, 0), *tiny = cache_new(4096, 1);
    cr_assert(big && tiny);
    int variant = 0;
    for (unsigned c = COMPRESS_NONE; c <= COMPRESS_ZSTD; c++) {
        for (size_t si = 0; si < 3; si++, variant++) {
            char path[512], name[64];
            snprintf(name, sizeof name, "rt-%s-%zu.tbl", comp_name[c], sizes[si]);
            path_of(path, sizeof path, name);
            struct table_options o = opts(sizes[si], c, variant % 2 ? 10 : 0);
            struct table_props p;
            uint64_t size;
            write_table(path, &o, &s, &p, &size);
            uint64_t st;
            cr_assert_eq(file_stat_size(path, &st), TIND_OK);
            cr_assert_eq(st, size, "finish reported %llu bytes, the file has %llu", (unsigned long long)size,
                         (unsigned long long)st);
            cr_assert_eq(p.entries, s.n);
            if (sizes[si] == 256) cr_assert_gt(p.data_blocks, 100, "small blocks: %llu", (unsigned long long)p.data_blocks);
            /* The three cache set-ups in turn: none, roomy, smaller than a block. */
            cache *cs[] = {NULL, big, tiny};
            table *t = open_table(path, size, cs[variant % 3]);
            check_table(t, &s, &rs, 1000);
            table_unref(t);
            if (c != COMPRESS_NONE && sizes[si] >= 4096) {
                /* The values are half repetitive: most blocks compress. */
                struct layout L;
                read_layout(path, &L);
                unsigned types[4096];
                data_compression(path, &L, types);
                size_t compressed = 0;
                for (size_t i = 0; i < L.ndata; i++) compressed += types[i] == c;
                cr_assert_gt(compressed, L.ndata / 2, "%s: %zu of %zu blocks compressed", comp_name[c], compressed,
                             L.ndata);
            }
            table_props_free(&p);
        }
    }
    cache_free(big);
    cache_free(tiny);
    tset_free(&s);
}

Test(table, restart_intervals)
{
    uint64_t seed = tu_seed("table/restart_intervals"), rs = seed;
    struct tset s = {0};
    tset_random(&s, 600, &rs);
    static const unsigned intervals[] = {1, 2, 16, 1000};
    for (size_t i = 0; i < 4; i++) {
        char path[512], name[64];
        snprintf(name, sizeof name, "ri-%u.tbl", intervals[i]);
        path_of(path, sizeof path, name);
        struct table_options o = opts(4096, COMPRESS_LZ4, 10);
        o.restart_interval = intervals[i];
        uint64_t size;
        write_table(path, &o, &s, NULL, &size);
        table *t = open_table(path, size, NULL);
        check_table(t, &s, &rs, 300);
        table_unref(t);
    }
    tset_free(&s);
}

/* Every key starts with the same 12 bytes, so the index's search array keeps
 * the bytes after them; the random seeks of check_table also aim before,
 * after and inside that prefix, and at keys shorter than it. Small blocks
 * give the index many entries, and the random suffixes many ties in the
 * 8 bytes it keeps. */
Test(table, index_search_with_a_shared_key_prefix)
{
    uint64_t seed = tu_seed("table/index_search_with_a_shared_key_prefix"), rs = seed;
    struct tset raw = {0}, s = {0};
    tset_random(&raw, 1500, &rs);
    static const char pre[] = "tenant/0042/";
    for (size_t i = 0; i < raw.n; i++) {
        uint8_t k[64];
        memcpy(k, pre, sizeof pre - 1);
        memcpy(k + sizeof pre - 1, raw.e[i].k, raw.e[i].kl);
        tset_add(&s, k, sizeof pre - 1 + raw.e[i].kl, raw.e[i].tag, raw.e[i].v, raw.e[i].vl);
    }
    tset_free(&raw);
    cache *c = cache_new(1 << 20, 0);
    cr_assert_not_null(c);
    for (int cached = 0; cached < 2; cached++) {
        char path[512];
        path_of(path, sizeof path, cached ? "prefix-c.tbl" : "prefix.tbl");
        struct table_options o = opts(256, COMPRESS_LZ4, 10);
        uint64_t size;
        write_table(path, &o, &s, NULL, &size);
        table *t = open_table(path, size, cached ? c : NULL);
        check_table(t, &s, &rs, 3000);
        table_unref(t);
    }
    cache_free(c);
    tset_free(&s);
}

/* Tables of format version 1 (the plain filter layout) read as they did,
 * beside version 2's blocked filter; the footer records which; a version
 * the reader does not know is rejected when writing and when opening. */
Test(table, format_versions_1_and_2_both_read)
{
    uint64_t seed = tu_seed("table/format_versions_1_and_2_both_read"), rs = seed;
    struct tset s = {0};
    tset_random(&s, 800, &rs);
    cache *c = cache_new(1 << 20, 0);
    cr_assert_not_null(c);
    for (unsigned v = 1; v <= 2; v++) {
        char path[512], name[32];
        snprintf(name, sizeof name, "v%u.tbl", v);
        path_of(path, sizeof path, name);
        struct table_options o = opts(1024, COMPRESS_LZ4, 10);
        o.format_version = v;
        uint64_t size;
        write_table(path, &o, &s, NULL, &size);
        FILE *fp = fopen(path, "rb");
        cr_assert_not_null(fp);
        uint8_t ft[TABLE_FOOTER_SIZE];
        cr_assert_eq(fseek(fp, (long)(size - TABLE_FOOTER_SIZE), SEEK_SET), 0);
        cr_assert_eq(fread(ft, 1, sizeof ft, fp), sizeof ft);
        fclose(fp);
        cr_assert_eq(get_u32(ft + FOOTER_VERSION), v);
        for (int cached = 0; cached < 2; cached++) {
            table *t = open_table(path, size, cached ? c : NULL);
            check_table(t, &s, &rs, 300);
            table_unref(t);
        }
    }
    char path[512];
    path_of(path, sizeof path, "v3.tbl");
    struct table_options o = opts(1024, COMPRESS_LZ4, 10);
    o.format_version = TABLE_FORMAT_VERSION + 1;
    table_writer *w;
    cr_assert_eq(table_writer_open(path, &o, &w), TIND_INVALID);
    cache_free(c);
    tset_free(&s);
}

Test(table, many_versions_of_one_key_span_blocks)
{
    struct tset s = {0};
    tset_add(&s, "a", 1, tag_pack(7, KIND_PUT), "before", 6);
    char v[32];
    for (uint64_t q = 3000; q >= 1001; q--) {
        int n = snprintf(v, sizeof v, "version %llu", (unsigned long long)q);
        tset_add(&s, "key", 3, tag_pack(q, q % 10 == 0 ? KIND_DELETE : KIND_PUT), v, q % 10 == 0 ? 0 : (size_t)n);
    }
    tset_add(&s, "key\x00", 4, tag_pack(5, KIND_PUT), "after", 5);
    tset_add(&s, "kez", 3, tag_pack(6, KIND_PUT), "last", 4);
    char path[512];
    path_of(path, sizeof path, "versions.tbl");
    struct table_options o = opts(256, COMPRESS_NONE, 10);
    struct table_props p;
    uint64_t size;
    write_table(path, &o, &s, &p, &size);
    cr_assert_gt(p.data_blocks, 50, "2,000 versions in 256-byte blocks: %llu blocks", (unsigned long long)p.data_blocks);
    cr_assert_eq(p.tombstones, 200);
    table *t = open_table(path, size, NULL);
    uint64_t rs = 42;
    check_table(t, &s, &rs, 500);
    /* Reads between versions, every seq. */
    buf val;
    buf_init(&val);
    for (uint64_t q = 990; q <= 3010; q++) check_get(t, &s, (const uint8_t *)"key", 3, q, &val);
    buf_free(&val);
    table_unref(t);
    table_props_free(&p);
    tset_free(&s);
}

Test(table, huge_value_and_longest_key)
{
    const size_t vbig = (size_t)64 << 20, kbig = 65535;
    uint8_t *v = malloc(vbig), *k = malloc(kbig);
    cr_assert(v && k);
    tu_fill(v, vbig, 7); /* incompressible: stored raw despite lz4 */
    memset(k, 'k', kbig);
    k[kbig - 1] = 0xff;
    char path[512];
    path_of(path, sizeof path, "huge.tbl");
    struct table_options o = opts(4096, COMPRESS_LZ4, 10);
    table_writer *w;
    cr_assert_eq(table_writer_open(path, &o, &w), TIND_OK);
    cr_assert_eq(table_writer_add(w, (const uint8_t *)"a", 1, tag_pack(1, KIND_PUT), (const uint8_t *)"x", 1), TIND_OK);
    cr_assert_eq(table_writer_add(w, (const uint8_t *)"big", 3, tag_pack(2, KIND_PUT), v, vbig), TIND_OK);
    cr_assert_eq(table_writer_add(w, k, kbig, tag_pack(3, KIND_PUT), (const uint8_t *)"long", 4), TIND_OK);
    cr_assert_eq(table_writer_add(w, (const uint8_t *)"z", 1, tag_pack(4, KIND_PUT), (const uint8_t *)"y", 1), TIND_OK);
    struct table_props p;
    uint64_t size;
    int rc = table_writer_finish(w, &p, &size);
    cr_assert_eq(rc, TIND_OK, "finish: %s", err_msg());
    /* "a" | the 64 MiB value alone | the long key alone | "z" */
    cr_assert_eq(p.data_blocks, 4, "data blocks: %llu", (unsigned long long)p.data_blocks);
    struct layout L;
    read_layout(path, &L);
    unsigned types[8];
    data_compression(path, &L, types);
    cr_assert_eq(types[1], COMPRESS_NONE, "an incompressible 64 MiB block is stored raw");
    cr_assert_geq(L.data_size[1], vbig);

    table *t = open_table(path, size, NULL);
    buf val;
    buf_init(&val);
    int found;
    unsigned kind;
    cr_assert_eq(table_get(t, (const uint8_t *)"big", 3, SEQ_MAX, &found, &kind, &val), TIND_OK);
    cr_assert(found && kind == KIND_PUT && val.len == vbig);
    cr_assert_eq(tu_check_fill(val.p, vbig, 7), vbig, "64 MiB value differs");
    cr_assert_eq(table_get(t, k, kbig, SEQ_MAX, &found, &kind, &val), TIND_OK);
    cr_assert(found && val.len == 4 && memcmp(val.p, "long", 4) == 0);
    cr_assert_eq(table_get(t, k, kbig - 1, SEQ_MAX, &found, &kind, &val), TIND_OK);
    cr_assert_eq(found, 0);
    iiter *it = table_iter(t);
    iiter_seek_last(it);
    cr_assert(it->valid && it->klen == 1 && it->key[0] == 'z');
    iiter_prev(it);
    cr_assert(it->valid && it->klen == kbig && memcmp(it->key, k, kbig) == 0 && it->vlen == 4);
    iiter_prev(it);
    cr_assert(it->valid && it->klen == 3 && it->vlen == vbig && memcmp(it->val, v, 4096) == 0);
    iiter_seek(it, k, kbig, UINT64_MAX);
    cr_assert(it->valid && it->klen == kbig);
    iiter_destroy(it);
    cr_assert_eq(table_verify(t), TIND_OK, "verify: %s", err_msg());
    table_unref(t);
    buf_free(&val);
    table_props_free(&p);
    free(v);
    free(k);
}

/* An empty table is allowed: no data blocks, an empty index, no smallest or
 * largest key. (Callers normally abandon a writer that got no entries.) */
Test(table, empty_table_is_allowed)
{
    char path[512];
    path_of(path, sizeof path, "empty.tbl");
    for (unsigned bloom = 0; bloom <= 10; bloom += 10) {
        file_unlink(path);
        struct table_options o = opts(4096, COMPRESS_ZSTD, bloom);
        struct tset s = {0};
        struct table_props p;
        uint64_t size;
        write_table(path, &o, &s, &p, &size);
        cr_assert_eq(p.entries, 0);
        cr_assert_eq(p.data_blocks, 0);
        cr_assert_eq(p.smallest.len + p.largest.len, 0);
        table *t = open_table(path, size, NULL);
        cr_assert_eq(table_get_props(t)->entries, 0);
        int found = 1;
        unsigned kind;
        buf val;
        buf_init(&val);
        cr_assert_eq(table_get(t, (const uint8_t *)"a", 1, SEQ_MAX, &found, &kind, &val), TIND_OK);
        cr_assert_eq(found, 0);
        cr_assert_eq(table_may_contain(t, (const uint8_t *)"a", 1), !bloom);
        iiter *it = table_iter(t);
        iiter_seek_first(it);
        expect_end(it, "empty seek_first");
        iiter_seek_last(it);
        expect_end(it, "empty seek_last");
        iiter_seek(it, (const uint8_t *)"a", 1, 0);
        expect_end(it, "empty seek");
        iiter_seek_for_prev(it, (const uint8_t *)"a", 1, 0);
        expect_end(it, "empty seek_for_prev");
        iiter_destroy(it);
        cr_assert_eq(table_verify(t), TIND_OK, "%s", err_msg());
        table_unref(t);
        table_props_free(&p);
    }
}

Test(table, get_at_sequence_numbers_with_tombstones)
{
    struct tset s = {0};
    tset_add(&s, "a", 1, tag_pack(30, KIND_PUT), "a30", 3);
    tset_add(&s, "a", 1, tag_pack(20, KIND_DELETE), NULL, 0);
    tset_add(&s, "a", 1, tag_pack(10, KIND_PUT), "a10", 3);
    tset_add(&s, "b", 1, tag_pack(15, KIND_DELETE), NULL, 0);
    tset_add(&s, "c", 1, tag_pack(SEQ_MAX, KIND_PUT), "cmax", 4);
    tset_add(&s, "c", 1, tag_pack(0, KIND_PUT), "c0", 2);
    char path[512];
    path_of(path, sizeof path, "seqs.tbl");
    struct table_options o = opts(4096, COMPRESS_NONE, 10);
    uint64_t size;
    write_table(path, &o, &s, NULL, &size);
    table *t = open_table(path, size, NULL);
    buf val;
    buf_init(&val);
    int found;
    unsigned kind;
    struct {
        const char *k;
        uint64_t seq;
        int found;
        unsigned kind;
        const char *v;
    } cases[] = {
        {"a", 0, 0, 0, NULL},           {"a", 9, 0, 0, NULL},           {"a", 10, 1, KIND_PUT, "a10"},
        {"a", 19, 1, KIND_PUT, "a10"},  {"a", 20, 1, KIND_DELETE, ""},  {"a", 29, 1, KIND_DELETE, ""},
        {"a", 30, 1, KIND_PUT, "a30"},  {"a", SEQ_MAX, 1, KIND_PUT, "a30"}, {"b", 14, 0, 0, NULL},
        {"b", 15, 1, KIND_DELETE, ""},  {"c", 0, 1, KIND_PUT, "c0"},     {"c", SEQ_MAX - 1, 1, KIND_PUT, "c0"},
        {"c", SEQ_MAX, 1, KIND_PUT, "cmax"}, {"", SEQ_MAX, 0, 0, NULL}, {"d", SEQ_MAX, 0, 0, NULL},
        {"ab", SEQ_MAX, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf_clear(&val);
        buf_append(&val, "junk", 4);
        int rc = table_get(t, (const uint8_t *)cases[i].k, strlen(cases[i].k), cases[i].seq, &found, &kind, &val);
        cr_assert_eq(rc, TIND_OK);
        cr_assert_eq(found, cases[i].found, "get %s at %llu: found %d", cases[i].k, (unsigned long long)cases[i].seq,
                     found);
        if (!found) continue;
        cr_assert_eq(kind, cases[i].kind, "get %s at %llu: kind %u", cases[i].k, (unsigned long long)cases[i].seq, kind);
        cr_assert(val.len == strlen(cases[i].v) && memcmp(val.p, cases[i].v, val.len) == 0,
                  "get %s at %llu: value %s", cases[i].k, (unsigned long long)cases[i].seq, tu_hex(val.p, val.len));
    }
    buf_free(&val);
    table_unref(t);
    tset_free(&s);
}

Test(table, props_round_trip)
{
    uint64_t seed = tu_seed("table/props_round_trip"), rs = seed;
    struct tset s = {0};
    tset_random(&s, 500, &rs);
    char path[512];
    path_of(path, sizeof path, "props.tbl");
    struct table_options o = opts(1024, COMPRESS_ZSTD, 12);
    struct table_props w;
    uint64_t size;
    time_t before = time(NULL);
    write_table(path, &o, &s, &w, &size);

    uint64_t tomb = 0, kb = 0, vb = 0, mn = UINT64_MAX, mx = 0;
    for (size_t i = 0; i < s.n; i++) {
        uint64_t q = tag_seq(s.e[i].tag);
        tomb += tag_kind(s.e[i].tag) == KIND_DELETE;
        kb += s.e[i].kl + 8;
        vb += s.e[i].vl;
        mn = q < mn ? q : mn;
        mx = q > mx ? q : mx;
    }
    cr_assert_eq(w.entries, s.n);
    cr_assert_eq(w.tombstones, tomb);
    cr_assert_eq(w.raw_key_bytes, kb);
    cr_assert_eq(w.raw_value_bytes, vb);
    cr_assert_eq(w.min_seq, mn);
    cr_assert_eq(w.max_seq, mx);
    cr_assert_eq(w.compression, COMPRESS_ZSTD);
    cr_assert_eq(w.bloom_bits, 12);
    cr_assert(w.created >= (uint64_t)before && w.created <= (uint64_t)time(NULL) + 1);
    cr_assert(w.smallest.len == s.e[0].kl && memcmp(w.smallest.p, s.e[0].k, s.e[0].kl) == 0);
    cr_assert_eq(w.smallest_tag, s.e[0].tag);
    const struct tent *last = &s.e[s.n - 1];
    cr_assert(w.largest.len == last->kl && memcmp(w.largest.p, last->k, last->kl) == 0);
    cr_assert_eq(w.largest_tag, last->tag);
    struct layout L;
    read_layout(path, &L);
    cr_assert_eq(w.data_blocks, L.ndata);
    cr_assert_eq(w.data_bytes, L.filter_off, "data blocks end where the filter starts");
    cr_assert_eq(w.filter_bytes, L.filter_size + BLOCK_TRAILER_SIZE);
    cr_assert_eq(w.index_bytes, L.index_size + BLOCK_TRAILER_SIZE);

    table *t = open_table(path, size, NULL);
    const struct table_props *r = table_get_props(t);
    cr_assert_eq(r->entries, w.entries);
    cr_assert_eq(r->tombstones, w.tombstones);
    cr_assert_eq(r->data_blocks, w.data_blocks);
    cr_assert_eq(r->raw_key_bytes, w.raw_key_bytes);
    cr_assert_eq(r->raw_value_bytes, w.raw_value_bytes);
    cr_assert_eq(r->data_bytes, w.data_bytes);
    cr_assert_eq(r->index_bytes, w.index_bytes);
    cr_assert_eq(r->filter_bytes, w.filter_bytes);
    cr_assert_eq(r->min_seq, w.min_seq);
    cr_assert_eq(r->max_seq, w.max_seq);
    cr_assert_eq(r->compression, w.compression);
    cr_assert_eq(r->bloom_bits, w.bloom_bits);
    cr_assert_eq(r->created, w.created);
    cr_assert(r->smallest.len == w.smallest.len && memcmp(r->smallest.p, w.smallest.p, w.smallest.len) == 0);
    cr_assert(r->largest.len == w.largest.len && memcmp(r->largest.p, w.largest.p, w.largest.len) == 0);
    cr_assert_eq(r->smallest_tag, w.smallest_tag);
    cr_assert_eq(r->largest_tag, w.largest_tag);
    cr_assert_str_eq(table_path(t), path);
    table_unref(t);
    table_props_free(&w);
    tset_free(&s);
}

/* ---- compression rule ---- */

Test(table, compressed_only_when_it_saves_an_eighth)
{
    uint64_t seed = tu_seed("table/compressed_only_when_it_saves_an_eighth"), rs = seed;
    /* Blocks from all random to all repetitive: the decision must be exactly
     * "compressed size, header included, <= n - n/8". */
    compress_ctx cz;
    compress_ctx_init(&cz);
    buf out;
    buf_init(&out);
    size_t n = 4096;
    uint8_t *src = malloc(n), *back = malloc(n), *lz = malloc((size_t)LZ4_compressBound((int)n));
    size_t zb = ZSTD_compressBound(n);
    uint8_t *zs = malloc(zb);
    int saw[3][2] = {{0}};
    for (unsigned type = COMPRESS_LZ4; type <= COMPRESS_ZSTD; type++) {
        for (size_t rnd = 0; rnd <= n; rnd += 64) {
            for (size_t i = 0; i < n; i++) src[i] = i < rnd ? (uint8_t)tu_rand(&rs) : (uint8_t)(i % 13);
            unsigned stored;
            cr_assert_eq(compress_block(&cz, type, 3, src, n, &out, &stored), TIND_OK);
            size_t clen = type == COMPRESS_LZ4
                              ? (size_t)LZ4_compress_default((const char *)src, (char *)lz, (int)n,
                                                             LZ4_compressBound((int)n))
                              : ZSTD_compress(zs, zb, src, n, 3);
            int worth = varint_len(n) + clen <= n - n / 8;
            cr_assert_eq(stored, worth ? type : COMPRESS_NONE, "%s, %zu random bytes: compressed to %zu, stored %u",
                         comp_name[type], rnd, clen, stored);
            saw[type][worth] = 1;
            if (stored != COMPRESS_NONE) {
                size_t raw;
                cr_assert_eq(compress_raw_size(out.p, out.len, &raw), TIND_OK);
                cr_assert_eq(raw, n);
                cr_assert_eq(compress_decode(type, out.p, out.len, back, raw), TIND_OK);
                cr_assert(memcmp(back, src, n) == 0);
            }
        }
        cr_assert(saw[type][0] && saw[type][1], "%s: both outcomes exercised", comp_name[type]);
    }
    unsigned stored;
    cr_assert_eq(compress_block(&cz, COMPRESS_NONE, 0, src, n, &out, &stored), TIND_OK);
    cr_assert_eq(stored, COMPRESS_NONE);
    cr_assert_eq(compress_block(&cz, 9, 0, src, n, &out, &stored), TIND_INVALID);

    /* Decoding checks: a declared size over the limit, a size that does not
     * match, a damaged payload. */
    for (size_t i = 0; i < n; i++) src[i] = (uint8_t)(i % 13);
    for (unsigned type = COMPRESS_LZ4; type <= COMPRESS_ZSTD; type++) {
        cr_assert_eq(compress_block(&cz, type, 3, src, n, &out, &stored), TIND_OK);
        cr_assert_eq(stored, type);
        size_t raw;
        cr_assert_eq(compress_decode(type, out.p, out.len, back, n - 1), TIND_CORRUPTION, "size mismatch");
        uint8_t hdr[VARINT64_MAX];
        size_t hl = (size_t)(put_varint64(hdr, BLOCK_MAX_COMPRESSED_RAW + 1) - hdr);
        cr_assert_eq(compress_raw_size(hdr, hl, &raw), TIND_CORRUPTION, "declared size over the limit");
        cr_assert_eq(compress_raw_size(hdr, 1, &raw), TIND_CORRUPTION, "truncated size");
        uint8_t *bad = malloc(out.len);
        for (size_t at = varint_len(n); at < out.len; at += 3) {
            memcpy(bad, out.p, out.len);
            bad[at] ^= 0x5a;
            int rc = compress_decode(type, bad, out.len, back, n);
            cr_assert(rc == TIND_OK || rc == TIND_CORRUPTION, "damaged %s payload: %d", comp_name[type], rc);
        }
        cr_assert_eq(compress_decode(type, out.p, out.len / 2, back, n), TIND_CORRUPTION, "truncated payload");
        free(bad);
    }
    free(src);
    free(back);
    free(lz);
    free(zs);
    buf_free(&out);
    compress_ctx_free(&cz);
}

Test(table, incompressible_blocks_are_stored_raw)
{
    uint64_t seed = tu_seed("table/incompressible_blocks_are_stored_raw"), rs = seed;
    for (unsigned c = COMPRESS_LZ4; c <= COMPRESS_ZSTD; c++) {
        struct tset s = {0};
        uint8_t k[8], v[300];
        for (unsigned i = 0; i < 300; i++) {
            put_u64(k, ((uint64_t)tu_rand(&rs) & ~UINT64_C(0xffff)) | i); /* unique, in no order yet */
            for (size_t b = 0; b < sizeof v; b++) v[b] = (uint8_t)tu_rand(&rs);
            tset_add(&s, k, 8, tag_pack(i + 1, KIND_PUT), v, sizeof v);
        }
        qsort(s.e, s.n, sizeof *s.e, ukey_qsort);
        char path[512], name[64];
        snprintf(name, sizeof name, "raw-%s.tbl", comp_name[c]);
        path_of(path, sizeof path, name);
        struct table_options o = opts(4096, c, 0);
        uint64_t size;
        write_table(path, &o, &s, NULL, &size);
        struct layout L;
        read_layout(path, &L);
        unsigned types[4096];
        data_compression(path, &L, types);
        for (size_t i = 0; i < L.ndata; i++)
            cr_assert_eq(types[i], COMPRESS_NONE, "%s: random block %zu stored with compression %u", comp_name[c], i,
                         types[i]);
        table *t = open_table(path, size, NULL);
        check_table(t, &s, &rs, 50);
        table_unref(t);
        tset_free(&s);
    }
}

/* ---- corruption ---- */

static uint64_t msg_offset(void)
{
    const char *m = strstr(err_msg(), " offset ");
    cr_assert_not_null(m, "no offset in \"%s\"", err_msg());
    return strtoull(m + 8, NULL, 10);
}

static void expect_corruption(int rc, const char *path, const char *what)
{
    cr_assert_eq(rc, TIND_CORRUPTION, "%s: status %d (%s)", what, rc, err_msg());
    char want[600];
    snprintf(want, sizeof want, "table %s offset ", path);
    cr_assert(strstr(err_msg(), want) == err_msg(), "%s: message \"%s\" does not start \"%s\"", what, err_msg(), want);
}

static void copy_with_flip(const char *from, const char *to, uint64_t byte, unsigned bit)
{
    uint8_t *f;
    size_t n;
    cr_assert_eq(file_read_all(from, &f, &n), TIND_OK);
    cr_assert_lt(byte, n);
    f[byte] ^= (uint8_t)(1u << bit);
    file_unlink(to);
    tfile *o;
    cr_assert_eq(file_open(to, FILE_WRITE | FILE_CREATE | FILE_TRUNC, &o), TIND_OK);
    cr_assert_eq(file_append(o, f, n), TIND_OK);
    cr_assert_eq(file_close(o), TIND_OK);
    free(f);
}

/* Opening, reading, iterating and verifying a damaged copy: either a
 * correct answer or TIND_CORRUPTION naming the file and block_off; the
 * damage is always found by verify (or open). */
static void check_damaged(const char *path, uint64_t size, const struct tset *s, uint64_t block_off, int meta,
                          cache *c, const char *what)
{
    table *t;
    int rc = table_open(path, size, c, &t);
    if (meta) {
        /* Footer, properties, index, filter: open reads them all. */
        expect_corruption(rc, path, what);
        if (block_off != UINT64_MAX) cr_assert_eq(msg_offset(), block_off, "%s: %s", what, err_msg());
        return;
    }
    cr_assert_eq(rc, TIND_OK, "%s: open failed: %s", what, err_msg());
    buf val;
    buf_init(&val);
    size_t bad_gets = 0;
    for (size_t i = 0; i < s->n; i++) {
        int found;
        unsigned kind;
        rc = table_get(t, s->e[i].k, s->e[i].kl, tag_seq(s->e[i].tag), &found, &kind, &val);
        if (rc) {
            expect_corruption(rc, path, what);
            cr_assert_eq(msg_offset(), block_off, "%s: %s", what, err_msg());
            bad_gets++;
            continue;
        }
        cr_assert(found && val.len == s->e[i].vl && memcmp(val.p, s->e[i].v, val.len) == 0,
                  "%s: get of entry %zu returned a wrong answer", what, i);
    }
    cr_assert_gt(bad_gets, 0, "%s: no get noticed the damage", what);
    buf_free(&val);
    iiter *it = table_iter(t);
    size_t i = 0;
    for (iiter_seek_first(it); it->valid; iiter_next(it), i++) expect_at(it, s, i, what);
    expect_corruption(iiter_status(it), path, what);
    cr_assert_eq(msg_offset(), block_off);
    i = s->n;
    for (iiter_seek_last(it); it->valid; iiter_prev(it)) expect_at(it, s, --i, what);
    expect_corruption(iiter_status(it), path, what);
    iiter_destroy(it);
    expect_corruption(table_verify(t), path, what);
    cr_assert_eq(msg_offset(), block_off);
    table_unref(t);
}

Test(table, a_flipped_bit_in_any_block_is_corruption)
{
    uint64_t seed = tu_seed("table/a_flipped_bit_in_any_block_is_corruption"), rs = seed;
    struct tset s = {0};
    char k[16], v[64];
    for (unsigned i = 0; i < 60; i++) {
        int kl = snprintf(k, sizeof k, "key%04u", i);
        int vl = snprintf(v, sizeof v, "value %u %s", i, i % 2 ? "abcabcabcabcabcabcabc" : "");
        tset_add(&s, k, (size_t)kl, tag_pack(100 + i, KIND_PUT), v, (size_t)vl);
    }
    char orig[512], bad[512];
    path_of(orig, sizeof orig, "orig.tbl");
    path_of(bad, sizeof bad, "bad.tbl");
    for (unsigned c = COMPRESS_NONE; c <= COMPRESS_ZSTD; c++) {
        file_unlink(orig);
        struct table_options o = opts(512, c, 10);
        uint64_t size;
        write_table(orig, &o, &s, NULL, &size);
        struct layout L;
        read_layout(orig, &L);
        cr_assert_geq(L.ndata, 3);
        cr_assert_gt(L.filter_size, 0);
        cache *cc = c == COMPRESS_LZ4 ? cache_new(1 << 20, 0) : NULL;

        struct region {
            uint64_t off, size; /* contents size; the trailer follows */
            int meta;
            const char *name;
        } blocks[64];
        size_t nb = 0;
        cr_assert_lt(L.ndata, 60);
        for (size_t i = 0; i < L.ndata; i++) blocks[nb++] = (struct region){L.data_off[i], L.data_size[i], 0, "data"};
        blocks[nb++] = (struct region){L.filter_off, L.filter_size, 1, "filter"};
        blocks[nb++] = (struct region){L.props_off, L.props_size, 1, "properties"};
        blocks[nb++] = (struct region){L.index_off, L.index_size, 1, "index"};
        for (size_t b = 0; b < nb; b++) {
            /* The first and last content bytes, one at random, the compression byte, the checksum. */
            uint64_t len = blocks[b].size + BLOCK_TRAILER_SIZE;
            uint64_t at[] = {0, blocks[b].size - 1, tu_below(&rs, blocks[b].size), blocks[b].size,
                             blocks[b].size + 1 + tu_below(&rs, 8)};
            for (size_t a = 0; a < sizeof at / sizeof *at; a++) {
                cr_assert_lt(at[a], len);
                char what[128];
                unsigned bit = (unsigned)tu_below(&rs, 8);
                snprintf(what, sizeof what, "%s %s block at %llu, byte %llu bit %u", comp_name[c], blocks[b].name,
                         (unsigned long long)blocks[b].off, (unsigned long long)at[a], bit);
                copy_with_flip(orig, bad, blocks[b].off + at[a], bit);
                check_damaged(bad, size, &s, blocks[b].off, blocks[b].meta, cc, what);
            }
        }
        /* Every byte of the footer. */
        for (uint64_t at = 0; at < TABLE_FOOTER_SIZE; at++) {
            char what[128];
            snprintf(what, sizeof what, "%s footer byte %llu", comp_name[c], (unsigned long long)at);
            copy_with_flip(orig, bad, L.footer_off + at, (unsigned)(at % 8));
            check_damaged(bad, size, &s, UINT64_MAX, 1, cc, what);
            uint64_t off = msg_offset();
            cr_assert(off >= L.footer_off && off < size, "%s: offset %llu outside the footer", what,
                      (unsigned long long)off);
        }
        cache_free(cc);
    }
    tset_free(&s);
}

Test(table, wrong_sizes_and_truncation_are_corruption)
{
    struct tset s = {0};
    tset_add(&s, "a", 1, tag_pack(1, KIND_PUT), "1", 1);
    tset_add(&s, "b", 1, tag_pack(2, KIND_PUT), "2", 1);
    char path[512], cut[512];
    path_of(path, sizeof path, "sizes.tbl");
    path_of(cut, sizeof cut, "cut.tbl");
    struct table_options o = opts(4096, COMPRESS_NONE, 10);
    uint64_t size;
    write_table(path, &o, &s, NULL, &size);
    table *t;
    expect_corruption(table_open(path, size + 1, NULL, &t), path, "manifest size larger than the file");
    expect_corruption(table_open(path, size - 1, NULL, &t), path, "manifest size smaller than the file");
    uint8_t *f;
    size_t n;
    cr_assert_eq(file_read_all(path, &f, &n), TIND_OK);
    for (size_t len = 0; len < n; len += (len < 100 ? 1 : 7)) {
        file_unlink(cut);
        tfile *w;
        cr_assert_eq(file_open(cut, FILE_WRITE | FILE_CREATE, &w), TIND_OK);
        cr_assert_eq(file_append(w, f, len), TIND_OK);
        file_close(w);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu", len);
        expect_corruption(table_open(cut, len, NULL, &t), cut, what);
    }
    /* Junk appended, with the size of the longer file. */
    file_unlink(cut);
    tfile *w;
    cr_assert_eq(file_open(cut, FILE_WRITE | FILE_CREATE, &w), TIND_OK);
    cr_assert_eq(file_append(w, f, n), TIND_OK);
    cr_assert_eq(file_append(w, "junk", 4), TIND_OK);
    file_close(w);
    expect_corruption(table_open(cut, n + 4, NULL, &t), cut, "junk after the footer");
    free(f);
    /* A missing file is an I/O error, not corruption. */
    path_of(cut, sizeof cut, "missing.tbl");
    cr_assert_eq(table_open(cut, size, NULL, &t), TIND_IO_ERROR);
    tset_free(&s);
}

/* ---- reading through the cache ---- */

Test(table, seeks_and_gets_read_only_the_block_they_need)
{
    struct tset s = {0};
    char k[16], v[100];
    memset(v, 'v', sizeof v);
    for (unsigned i = 0; i < 2000; i++) {
        int kl = snprintf(k, sizeof k, "key%06u", i * 2);
        tset_add(&s, k, (size_t)kl, tag_pack(i + 1, KIND_PUT), v, sizeof v);
    }
    char path[512];
    path_of(path, sizeof path, "cache.tbl");
    struct table_options o = opts(4096, COMPRESS_NONE, 10);
    uint64_t size;
    struct table_props p;
    write_table(path, &o, &s, &p, &size);
    cache *c = cache_new(64 << 20, 0);
    table *t = open_table(path, size, c);
    struct cache_stats st0, st;
    cache_get_stats(c, &st0);
    cr_assert_eq(st0.inserts, 2, "open caches the index and the filter");

    /* A bloom-negative get reads no data block. */
    buf val;
    buf_init(&val);
    int found;
    unsigned kind;
    size_t negatives = 0;
    for (unsigned i = 0; i < 200; i++) {
        int kl = snprintf(k, sizeof k, "key%06u", i * 2 + 1); /* absent */
        if (table_may_contain(t, (const uint8_t *)k, (size_t)kl)) continue;
        negatives++;
        cr_assert_eq(table_get(t, (const uint8_t *)k, (size_t)kl, SEQ_MAX, &found, &kind, &val), TIND_OK);
        cr_assert_eq(found, 0);
    }
    cr_assert_gt(negatives, 150);
    cache_get_stats(c, &st);
    cr_assert_eq(st.inserts, st0.inserts, "bloom negatives read %llu blocks", (unsigned long long)(st.inserts - st0.inserts));

    /* Each seek to a present key reads exactly its one block; a repeat reads none. */
    iiter *it = table_iter(t);
    for (unsigned i = 0; i < 2000; i += 97) {
        cache_get_stats(c, &st0);
        iiter_seek(it, s.e[i].k, s.e[i].kl, UINT64_MAX);
        expect_at(it, &s, i, "seek");
        cache_get_stats(c, &st);
        cr_assert_leq(st.inserts - st0.inserts, 1, "seek to entry %u read %llu blocks", i,
                      (unsigned long long)(st.inserts - st0.inserts));
        iiter_seek_for_prev(it, s.e[i].k, s.e[i].kl, 0);
        expect_at(it, &s, i, "seek_for_prev");
        cache_get_stats(c, &st0);
        cr_assert_eq(st0.inserts, st.inserts, "seek_for_prev to the same entry read a block");
        cr_assert_eq(table_get(t, s.e[i].k, s.e[i].kl, SEQ_MAX, &found, &kind, &val), TIND_OK);
        cr_assert(found);
        cache_get_stats(c, &st);
        cr_assert_eq(st.inserts, st0.inserts, "a get of a cached block read it again");
    }
    /* A full scan reads each data block once. */
    cache_get_stats(c, &st0);
    size_t n = 0;
    for (iiter_seek_first(it); it->valid; iiter_next(it)) n++;
    cr_assert_eq(n, s.n);
    cache_get_stats(c, &st);
    cr_assert_leq(st.inserts - st0.inserts, p.data_blocks);
    iiter_destroy(it);
    buf_free(&val);
    table_unref(t);
    cache_get_stats(c, &st);
    cr_assert_eq(st.entries, 0, "closing the table dropped its %llu cached blocks", (unsigned long long)st.entries);
    cache_free(c);
    table_props_free(&p);
    tset_free(&s);
}

struct reader_arg {
    table *t;
    const struct tset *s;
    uint64_t seed;
    int failures;
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    uint64_t rs = a->seed;
    buf val;
    buf_init(&val);
    iiter *it = table_iter(a->t);
    for (int r = 0; r < 3000; r++) {
        size_t i = tu_below(&rs, a->s->n);
        const struct tent *x = &a->s->e[i];
        int found;
        unsigned kind;
        if (table_get(a->t, x->k, x->kl, tag_seq(x->tag), &found, &kind, &val) || !found || val.len != x->vl ||
            (x->vl && memcmp(val.p, x->v, x->vl)))
            a->failures++;
        iiter_seek(it, x->k, x->kl, x->tag);
        if (!it->valid || it->tag != x->tag || it->vlen != x->vl) a->failures++;
        iiter_next(it);
    }
    iiter_destroy(it);
    buf_free(&val);
    return NULL;
}

Test(table, concurrent_readers_share_one_table)
{
    uint64_t seed = tu_seed("table/concurrent_readers_share_one_table"), rs = seed;
    struct tset s = {0};
    tset_random(&s, 1500, &rs);
    char path[512];
    path_of(path, sizeof path, "shared.tbl");
    struct table_options o = opts(1024, COMPRESS_ZSTD, 10);
    uint64_t size;
    write_table(path, &o, &s, NULL, &size);
    cache *small = cache_new(32 << 10, 4); /* small: blocks come and go under the readers */
    for (int withcache = 0; withcache < 2; withcache++) {
        table *t = open_table(path, size, withcache ? small : NULL);
        pthread_t th[4];
        struct reader_arg args[4];
        for (int i = 0; i < 4; i++) {
            args[i] = (struct reader_arg){t, &s, seed + (uint64_t)i, 0};
            cr_assert_eq(pthread_create(&th[i], NULL, reader_main, &args[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            cr_assert_eq(args[i].failures, 0, "reader %d: %d wrong answers", i, args[i].failures);
        }
        table_unref(t);
    }
    cache_free(small);
    tset_free(&s);
}

/* ---- the writer's contract ---- */

Test(table, writer_rejects_bad_input_and_cleans_up)
{
    char path[512];
    path_of(path, sizeof path, "w.tbl");
    struct table_options o = opts(4096, COMPRESS_NONE, 10);
    table_writer *w;
    cr_assert_eq(table_writer_open(path, &o, &w), TIND_OK);
    cr_assert_eq(table_writer_add(w, (const uint8_t *)"b", 1, tag_pack(5, KIND_PUT), NULL, 0), TIND_OK);
    cr_assert_eq(table_writer_add(w, (const uint8_t *)"a", 1, tag_pack(9, KIND_PUT), NULL, 0), TIND_INVALID,
                 "a smaller key");
    cr_assert_eq(table_writer_add(w, (const uint8_t *)"b", 1, tag_pack(5, KIND_PUT), NULL, 0), TIND_INVALID,
                 "the same internal key");
    cr_assert_eq(table_writer_add(w, (const uint8_t *)"b", 1, tag_pack(6, KIND_PUT), NULL, 0), TIND_INVALID,
                 "a newer version after an older one");
    cr_assert_eq(table_writer_add(w, (const uint8_t *)"b", 1, tag_pack(4, KIND_DELETE), NULL, 0), TIND_OK);
    cr_assert_eq(table_writer_entries(w), 2);
    table_writer *w2;
    cr_assert_neq(table_writer_open(path, &o, &w2), TIND_OK, "the path exists");
    table_writer_abandon(w);
    cr_assert_eq(file_exists(path), 0, "abandon removes the file");

    struct table_options bad = opts(4096, 7, 0);
    cr_assert_eq(table_writer_open(path, &bad, &w), TIND_INVALID, "unknown compression");
    bad = opts((size_t)1 << 30, COMPRESS_NONE, 0);
    cr_assert_eq(table_writer_open(path, &bad, &w), TIND_INVALID, "block size over the limit");

    /* Zeroes mean the defaults. */
    struct table_options zero = {0};
    cr_assert_eq(table_writer_open(path, &zero, &w), TIND_OK);
    cr_assert_eq(table_writer_add(w, (const uint8_t *)"k", 1, tag_pack(1, KIND_PUT), (const uint8_t *)"v", 1), TIND_OK);
    uint64_t size;
    cr_assert_eq(table_writer_finish(w, NULL, &size), TIND_OK);
    table *t = open_table(path, size, NULL);
    cr_assert_eq(table_verify(t), TIND_OK);
    table_unref(t);
}

Test(table, failed_finish_removes_the_file)
{
    char path[512];
    path_of(path, sizeof path, "fail.tbl");
    static const unsigned ops[] = {FOP_WRITE, FOP_SYNC, FOP_SYNC_DIR};
    for (size_t i = 0; i < 3; i++) {
        struct table_options o = opts(256, COMPRESS_NONE, 10);
        table_writer *w;
        cr_assert_eq(table_writer_open(path, &o, &w), TIND_OK);
        char k[16];
        for (unsigned j = 0; j < 100; j++) {
            int kl = snprintf(k, sizeof k, "k%05u", j);
            int rc = table_writer_add(w, (const uint8_t *)k, (size_t)kl, tag_pack(j + 1, KIND_PUT), (const uint8_t *)k,
                                      (size_t)kl);
            cr_assert_eq(rc, TIND_OK);
        }
        /* Fail the first write (or sync) from here on. */
        struct file_fault f = {.ops = FOP_BIT(ops[i]), .path_part = ops[i] == FOP_SYNC_DIR ? dir : "fail.tbl",
                               .nth = 0, .err = EIO, .forever = 1};
        file_fault_set(&f);
        int rc = table_writer_finish(w, NULL, NULL);
        file_fault_clear();
        cr_assert_neq(rc, TIND_OK, "finish with failing op %u succeeded", ops[i]);
        cr_assert_eq(file_exists(path), 0, "a failed finish leaves no file");
    }
}

/* Found by fuzzing (tests/fuzz/corpus/table/regress-index-restart-inside-entry):
 * an index block whose second restart offset points two bytes into an entry,
 * checksum intact, passed table_verify; backward iteration then failed on it. */
Test(table, verify_rejects_an_index_restart_inside_an_entry)
{
    struct tset s = {0};
    char k[16];
    for (unsigned i = 0; i < 40; i++) {
        int kl = snprintf(k, sizeof k, "key%04u", i);
        tset_add(&s, k, (size_t)kl, tag_pack(100 + i, KIND_PUT), "value", 5);
    }
    char path[512];
    path_of(path, sizeof path, "restart.tbl");
    struct table_options o = opts(256, COMPRESS_NONE, 0);
    uint64_t size;
    write_table(path, &o, &s, NULL, &size);
    struct layout L;
    read_layout(path, &L);
    cr_assert_geq(L.ndata, 3);
    uint8_t *f;
    size_t n;
    cr_assert_eq(file_read_all(path, &f, &n), TIND_OK);
    uint8_t *ib = f + L.index_off;
    uint32_t nr = get_u32(ib + L.index_size - 4);
    cr_assert_geq(nr, 2, "every index entry is a restart point");
    uint8_t *r1 = ib + L.index_size - 4 - 4 * (size_t)nr + 4;
    put_u32(r1, get_u32(r1) + 2);
    put_u64(ib + L.index_size + 1, checksum64(ib, (size_t)L.index_size + 1)); /* reseal */
    cr_assert_eq(file_unlink(path), TIND_OK);
    tfile *w;
    cr_assert_eq(file_open(path, FILE_WRITE | FILE_CREATE, &w), TIND_OK);
    cr_assert_eq(file_append(w, f, n), TIND_OK);
    cr_assert_eq(file_close(w), TIND_OK);
    free(f);

    table *t;
    int rc = table_open(path, size, NULL, &t);
    cr_assert_eq(rc, TIND_OK, "open reads no restart array entry: %s", err_msg());
    expect_corruption(table_verify(t), path, "index restart inside an entry");
    cr_assert_eq(msg_offset(), L.index_off, "%s", err_msg());
    iiter *it = table_iter(t);
    for (iiter_seek_last(it); it->valid; iiter_prev(it)) {
    }
    expect_corruption(iiter_status(it), path, "backward iteration");
    iiter_destroy(it);
    table_unref(t);
    tset_free(&s);
}
