#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "lsm/level_iter.h"
#include "lsm/table.h"
#include "lsm/table_cache.h"
#include "lsm/version.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* A level of LI_TABLES disjoint tables: table t holds keys t*100 .. t*100+79
 * (so there are gaps between tables), each key with 1 to 3 versions. */
#define LI_TABLES 8

struct li_ent {
    uint8_t key[16];
    size_t klen;
    uint64_t tag;
    uint8_t val[8];
};

static char *li_dir;
static struct table_meta *li_files[LI_TABLES];
static table_cache *li_tc; /* outlives the metas of li_files, whose last unref evicts their tables */
static struct li_ent *li_ref; /* every entry, in internal order */
static size_t li_nref;

static void li_key(unsigned k, uint8_t *out, size_t *len) { *len = (size_t)snprintf((char *)out, 16, "k%06u", k); }

static void li_setup(void)
{
    li_dir = tu_mkdtemp("level-iter");
    cr_assert_not_null(li_dir, "mkdtemp: %s", strerror(errno));
    li_ref = calloc(LI_TABLES * 80 * 3, sizeof *li_ref);
    cr_assert_not_null(li_ref);
    li_nref = 0;
    li_tc = table_cache_new(100, NULL);
    cr_assert_not_null(li_tc);
    uint64_t seq = 1;
    for (unsigned t = 0; t < LI_TABLES; t++) {
        struct table_meta *m = table_meta_new(li_dir, 10 + t);
        cr_assert_not_null(m);
        struct table_options o = {.block_size = 256, .restart_interval = 4};
        table_writer *w;
        cr_assert_eq(table_writer_open(m->path, &o, &w), TIND_OK);
        for (unsigned k = t * 100; k < t * 100 + 80; k++) {
            unsigned nv = 1 + k % 3;
            for (unsigned v = 0; v < nv; v++) {
                struct li_ent *e = &li_ref[li_nref++];
                li_key(k, e->key, &e->klen);
                e->tag = tag_pack(seq + nv - v, v == 1 ? KIND_DELETE : KIND_PUT); /* newest first */
                memcpy(e->val, &e->tag, 8);
                cr_assert_eq(table_writer_add(w, e->key, e->klen, e->tag, e->val, 8), TIND_OK);
            }
            seq += nv;
        }
        struct table_props p;
        table_props_init(&p);
        cr_assert_eq(table_writer_finish(w, &p, &m->size), TIND_OK);
        m->entries = p.entries;
        m->smallest_tag = p.smallest_tag;
        m->largest_tag = p.largest_tag;
        cr_assert_eq(buf_append(&m->smallest, p.smallest.p, p.smallest.len), TIND_OK);
        cr_assert_eq(buf_append(&m->largest, p.largest.p, p.largest.len), TIND_OK);
        table_props_free(&p);
        li_files[t] = m;
    }
}

static void li_teardown(void)
{
    for (unsigned t = 0; t < LI_TABLES; t++) table_meta_unref(li_files[t]);
    table_cache_free(li_tc);
    free(li_ref);
    tu_rmtree(li_dir);
    free(li_dir);
}

TestSuite(level_iter, .init = li_setup, .fini = li_teardown);

/* The iterator is at reference entry i (li_nref: invalid). */
static void li_expect(const iiter *it, size_t i, const char *what)
{
    cr_assert_eq(iiter_status(it), TIND_OK, "%s: status %d", what, iiter_status(it));
    if (i >= li_nref) {
        cr_assert(!it->valid, "%s: valid at %s, want the end", what, it->valid ? tu_hex(it->key, it->klen) : "");
        return;
    }
    const struct li_ent *e = &li_ref[i];
    cr_assert(it->valid, "%s: invalid, want entry %zu (%s)", what, i, tu_hex(e->key, e->klen));
    cr_assert(ikey_cmp(it->key, it->klen, it->tag, e->key, e->klen, e->tag) == 0 && it->vlen == 8 &&
                  memcmp(it->val, e->val, 8) == 0,
              "%s: at %s seq %llu, want entry %zu: %s seq %llu", what, tu_hex(it->key, it->klen),
              (unsigned long long)tag_seq(it->tag), i, tu_hex(e->key, e->klen), (unsigned long long)tag_seq(e->tag));
}

/* First reference entry >= target; last <= target (li_nref: none). */
static size_t li_lower(const uint8_t *k, size_t kl, uint64_t tag)
{
    size_t i = 0;
    while (i < li_nref && ikey_cmp(li_ref[i].key, li_ref[i].klen, li_ref[i].tag, k, kl, tag) < 0) i++;
    return i;
}

static size_t li_last_le(const uint8_t *k, size_t kl, uint64_t tag)
{
    size_t i = li_nref;
    while (i > 0 && ikey_cmp(li_ref[i - 1].key, li_ref[i - 1].klen, li_ref[i - 1].tag, k, kl, tag) > 0) i--;
    return i == 0 ? li_nref : i - 1;
}

Test(level_iter, forward_and_backward_scans)
{
    table_cache *tc = li_tc;
    iiter *it = level_iter_new(tc, 1, li_files, LI_TABLES);
    cr_assert_not_null(it);
    size_t i = 0;
    for (iiter_seek_first(it); it->valid; iiter_next(it)) li_expect(it, i++, "forward");
    cr_assert_eq(i, li_nref);
    li_expect(it, li_nref, "forward end");
    i = li_nref;
    for (iiter_seek_last(it); it->valid; iiter_prev(it)) li_expect(it, --i, "backward");
    cr_assert_eq(i, 0);
    iiter_destroy(it);
}

Test(level_iter, seeks_and_walks_match_the_reference)
{
    uint64_t rs = tu_seed("level_iter/seeks_and_walks_match_the_reference");
    table_cache *tc = li_tc;
    iiter *it = level_iter_new(tc, 1, li_files, LI_TABLES);
    cr_assert_not_null(it);
    uint64_t max_seq = tag_seq(li_ref[li_nref - 1].tag) + 10;
    for (int round = 0; round < 2000; round++) {
        uint8_t k[16];
        size_t kl;
        li_key((unsigned)tu_below(&rs, LI_TABLES * 100 + 50), k, &kl);
        if (tu_below(&rs, 8) == 0) kl--; /* a prefix: sorts before the key's versions */
        uint64_t tag;
        switch (tu_below(&rs, 3)) {
        case 0: tag = tag_pack(SEQ_MAX, KIND_MAX); break;
        case 1: tag = 0; break;
        default: tag = tag_pack(tu_below(&rs, max_seq), (unsigned)tu_below(&rs, 2)); break;
        }
        size_t pos;
        char what[64];
        if (tu_below(&rs, 2)) {
            iiter_seek(it, k, kl, tag);
            pos = li_lower(k, kl, tag);
            snprintf(what, sizeof what, "seek round %d", round);
        } else {
            iiter_seek_for_prev(it, k, kl, tag);
            pos = li_last_le(k, kl, tag);
            snprintf(what, sizeof what, "seek_for_prev round %d", round);
        }
        li_expect(it, pos, what);
        /* A walk with changes of direction, across table boundaries. */
        for (int step = 0; step < 12 && pos < li_nref; step++) {
            if (tu_below(&rs, 2)) {
                iiter_next(it);
                pos = pos + 1;
            } else {
                iiter_prev(it);
                pos = pos == 0 ? li_nref : pos - 1;
            }
            li_expect(it, pos, what);
        }
    }
    iiter_destroy(it);
}

Test(level_iter, opens_only_the_tables_it_reaches)
{
    table_cache *tc = li_tc;
    iiter *it = level_iter_new(tc, 1, li_files, LI_TABLES);
    cr_assert_not_null(it);
    cr_assert_eq(table_cache_count(tc), 0);
    uint8_t k[16];
    size_t kl;
    li_key(578, k, &kl); /* near the end of table 5 */
    iiter_seek(it, k, kl, tag_pack(SEQ_MAX, KIND_MAX));
    cr_assert(it->valid);
    cr_assert_eq(table_cache_count(tc), 1);
    while (it->valid && it->key[1] == '0' && it->key[4] == '5') iiter_next(it);
    cr_assert(it->valid);
    li_expect(it, li_lower((const uint8_t *)"k000600", 7, tag_pack(SEQ_MAX, KIND_MAX)), "into table 6");
    cr_assert_eq(table_cache_count(tc), 2);
    /* In a gap, seek_for_prev lands in the table before it without opening the next. */
    li_key(390, k, &kl);
    iiter_seek_for_prev(it, k, kl, 0);
    li_expect(it, li_last_le(k, kl, 0), "gap");
    cr_assert_eq(table_cache_count(tc), 3);
    /* Past the last table, and before the first: nothing opened. */
    li_key(LI_TABLES * 100, k, &kl);
    iiter_seek(it, k, kl, 0);
    cr_assert(!it->valid);
    iiter_seek_for_prev(it, (const uint8_t *)"a", 1, 0);
    cr_assert(!it->valid);
    cr_assert_eq(iiter_status(it), TIND_OK);
    cr_assert_eq(table_cache_count(tc), 3);
    iiter_destroy(it);
}

Test(level_iter, empty_level)
{
    table_cache *tc = li_tc;
    iiter *it = level_iter_new(tc, 1, NULL, 0);
    cr_assert_not_null(it);
    iiter_seek_first(it);
    cr_assert(!it->valid);
    iiter_seek_last(it);
    cr_assert(!it->valid);
    iiter_seek(it, (const uint8_t *)"k", 1, 0);
    cr_assert(!it->valid);
    iiter_seek_for_prev(it, (const uint8_t *)"k", 1, 0);
    cr_assert(!it->valid);
    cr_assert_eq(iiter_status(it), TIND_OK);
    iiter_destroy(it);
}

static void li_flip(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, off, off < 0 ? SEEK_END : SEEK_SET), 0);
    long at = ftell(f);
    int c = fgetc(f);
    cr_assert_neq(c, EOF);
    cr_assert_eq(fseek(f, at, SEEK_SET), 0);
    fputc(c ^ 0x5a, f);
    cr_assert_eq(fclose(f), 0);
}

Test(level_iter, a_bad_table_stops_the_scan_with_its_error)
{
    /* Table 3's footer (it fails to open) and a data block of table 5 (it fails when read). */
    li_flip(li_files[3]->path, -4);
    li_flip(li_files[5]->path, 10);
    table_cache *tc = li_tc;
    iiter *it = level_iter_new(tc, 1, li_files, LI_TABLES);
    cr_assert_not_null(it);
    size_t n = 0;
    for (iiter_seek_first(it); it->valid; iiter_next(it)) li_expect(it, n++, "before table 3");
    cr_assert_eq(iiter_status(it), TIND_CORRUPTION);
    cr_assert(n > 0 && n < li_nref);
    cr_assert_eq(ikey_cmp(li_ref[n - 1].key, li_ref[n - 1].klen, 0, (const uint8_t *)"k000300", 7, 0), -1);
    /* Backward from the end: table 7 and 6 read, then table 5's bad block. */
    for (iiter_seek_last(it); it->valid; iiter_prev(it)) {
    }
    cr_assert_eq(iiter_status(it), TIND_CORRUPTION);
    /* A seek into a good table clears the error. */
    iiter_seek(it, (const uint8_t *)"k000700", 7, tag_pack(SEQ_MAX, KIND_MAX));
    cr_assert(it->valid);
    cr_assert_eq(iiter_status(it), TIND_OK);
    iiter_destroy(it);
}
