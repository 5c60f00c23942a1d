/* Versions, version edits and the manifest (lsm/version.c, lsm/manifest.c).
 *
 * Table files are fake (a few bytes): the manifest never reads them, it
 * only keeps or removes them. MANIFEST files are cut, flipped and built
 * record by record with the shared framing (src/util/record.h) to check
 * recovery; faults come from file_fault_set. */
#include "tests/manifest_common.h"

TestSuite(manifest, .init = mt_setup, .fini = mt_teardown);

/* ---- table names and metas ----------------------------------------------------------------- */

Test(manifest, table_file_names)
{
    char name[21];
    uint64_t n;
    table_file_name(name, 26);
    cr_assert_str_eq(name, "000000000000001a.tbl");
    cr_assert(table_parse_name(name, &n) && n == 26);
    table_file_name(name, UINT64_MAX);
    cr_assert_str_eq(name, "ffffffffffffffff.tbl");
    cr_assert(table_parse_name(name, &n) && n == UINT64_MAX);
    const char *bad[] = {"000000000000001A.tbl", "00000000000001a.tbl", "0000000000000001a.tbl",
                         "000000000000001a.tb",  "000000000000001a.jnl", "00000000000000 1.tbl",
                         "MANIFEST",             "",                     "000000000000001a.tbl.tmp"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(!table_parse_name(bad[i], &n), "%s taken for a table name", bad[i]);
    struct table_meta *m = table_meta_new("/some/dir", 26);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->path, "/some/dir/000000000000001a.tbl");
    cr_assert_eq(m->refs, 1);
    table_meta_unref(m);
}

/* ---- edit encoding -------------------------------------------------------------------------- */

Test(manifest, edit_round_trip)
{
    uint64_t s = tu_seed("manifest::edit_round_trip");
    for (int iter = 0; iter < 500; iter++) {
        struct version_edit e, d;
        buf b, b2;
        buf_init(&b);
        buf_init(&b2);
        mt_random_edit(&s, &e, iter % 5 == 0);
        MT_OK(version_edit_encode(&e, &b));
        MT_OK(version_edit_decode(b.p, b.len, g_dir, "M", 0, &d));
        mt_edit_eq(&e, &d);
        MT_OK(version_edit_encode(&d, &b2));
        cr_assert(b.len == b2.len && !memcmp(b.p, b2.p, b.len), "re-encoding differs: %s vs %s", tu_hex(b.p, b.len),
                  tu_hex(b2.p, b2.len));
        version_edit_free(&e);
        version_edit_free(&d);
        buf_free(&b);
        buf_free(&b2);
    }
}

Test(manifest, edit_empty_and_layout)
{
    struct version_edit e, d;
    buf b;
    buf_init(&b);
    version_edit_init(&e);
    MT_OK(version_edit_encode(&e, &b));
    cr_assert(b.len == 1 && b.p[0] == 0, "an empty edit is the end tag alone: %s", tu_hex(b.p, b.len));
    MT_OK(version_edit_decode(b.p, b.len, g_dir, "M", 0, &d));
    mt_edit_eq(&e, &d);
    version_edit_free(&d);

    /* flushed 300, next 7, delete (2, 5), add (1, table 9 ["a", "bc"]). */
    buf_clear(&b);
    e.has_flushed_seq = 1;
    e.flushed_seq = 300;
    e.has_next_file = 1;
    e.next_file = 7;
    mt_del(&e, 2, 5);
    struct table_meta *m = table_meta_new(g_dir, 9);
    m->size = 4096;
    m->entries = 3;
    m->tombstones = 1;
    m->min_seq = 1;
    m->max_seq = 2;
    m->smallest_tag = tag_pack(2, KIND_PUT);
    m->largest_tag = tag_pack(1, KIND_PUT);
    MT_OK(buf_append(&m->smallest, "a", 1));
    MT_OK(buf_append(&m->largest, "bc", 2));
    MT_OK(version_edit_add(&e, 1, m));
    table_meta_unref(m);
    MT_OK(version_edit_encode(&e, &b));
    const uint8_t want[] = {
        2, 0xac, 0x02,                  /* flushed_seq 300 */
        3, 7,                           /* next_file 7 */
        4, 2, 5,                        /* delete level 2 table 5 */
        5, 1, 9, 0x80, 0x20, 3, 1, 1, 2, /* add level 1 table 9 size 4096 entries 3 tombstones 1 seqs 1..2 */
        1, 'a', 0x81, 0x04,             /* smallest "a" tag 2<<8|1 */
        2, 'b', 'c', 0x81, 0x02,        /* largest "bc" tag 1<<8|1 */
        0,                              /* end */
    };
    cr_assert(b.len == sizeof want && !memcmp(b.p, want, sizeof want), "layout: %s, want %s", tu_hex(b.p, b.len),
              tu_hex(want, sizeof want));
    version_edit_free(&e);

    /* A snapshot starts with its marker: tag 1, "TINDMANI", format 1. */
    buf_clear(&b);
    version_edit_init(&e);
    e.snapshot = 1;
    MT_OK(version_edit_encode(&e, &b));
    const uint8_t snap[] = {1, 'T', 'I', 'N', 'D', 'M', 'A', 'N', 'I', 1, 0};
    cr_assert(b.len == sizeof snap && !memcmp(b.p, snap, sizeof snap), "snapshot: %s", tu_hex(b.p, b.len));
    MT_OK(version_edit_decode(b.p, b.len, g_dir, "M", 0, &d));
    cr_assert(d.snapshot);
    version_edit_free(&d);
    version_edit_free(&e);
    buf_free(&b);
}

Test(manifest, edit_truncated_at_every_length)
{
    uint64_t s = tu_seed("manifest::edit_truncated_at_every_length");
    for (int iter = 0; iter < 20; iter++) {
        struct version_edit e, d;
        buf b;
        buf_init(&b);
        mt_random_edit(&s, &e, iter % 4 == 0);
        MT_OK(version_edit_encode(&e, &b));
        for (size_t n = 0; n < b.len; n++) {
            /* A copy of exactly n bytes, so that a read past it is caught by ASan. */
            uint8_t *c = malloc(n ? n : 1);
            cr_assert_not_null(c);
            memcpy(c, b.p, n);
            int rc = version_edit_decode(c, n, g_dir, "/x/MANIFEST", 1000, &d);
            free(c);
            cr_assert_eq(rc, TIND_CORRUPTION, "cut to %zu of %zu bytes: %d", n, b.len, rc);
            cr_assert(strstr(err_msg(), "/x/MANIFEST offset "), "message: %s", err_msg());
            cr_assert_eq(d.nadds + d.ndels, 0u, "a failed decode leaves the edit empty");
        }
        version_edit_free(&e);
        buf_free(&b);
    }
}

/* Every bit flip of an encoded edit is either refused or decodes to an edit
 * that encodes back to exactly the flipped bytes (the grammar is canonical),
 * never a crash or an out-of-bounds read. */
Test(manifest, edit_every_bit_flip)
{
    uint64_t s = tu_seed("manifest::edit_every_bit_flip");
    size_t refused = 0, accepted = 0;
    for (int iter = 0; iter < 12; iter++) {
        struct version_edit e, d;
        buf b, b2;
        buf_init(&b);
        buf_init(&b2);
        mt_random_edit(&s, &e, iter % 3 == 0);
        MT_OK(version_edit_encode(&e, &b));
        uint8_t *c = malloc(b.len);
        cr_assert_not_null(c);
        for (size_t bit = 0; bit < b.len * 8; bit++) {
            memcpy(c, b.p, b.len);
            c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = version_edit_decode(c, b.len, g_dir, "M", 0, &d);
            if (rc == TIND_CORRUPTION) {
                refused++;
                continue;
            }
            cr_assert_eq(rc, TIND_OK, "bit %zu: %d", bit, rc);
            accepted++;
            buf_clear(&b2);
            MT_OK(version_edit_encode(&d, &b2));
            cr_assert(b2.len == b.len && !memcmp(b2.p, c, b.len), "bit %zu: accepted %s, which encodes as %s", bit,
                      tu_hex(c, b.len), tu_hex(b2.p, b2.len));
            version_edit_free(&d);
        }
        free(c);
        version_edit_free(&e);
        buf_free(&b);
        buf_free(&b2);
    }
    cr_assert_gt(refused, 0u);
    cr_assert_gt(accepted, 0u);
}

static void mt_expect_corrupt(const uint8_t *p, size_t n, const char *what, uint64_t want_off)
{
    struct version_edit d;
    char want[64];
    int rc = version_edit_decode(p, n, g_dir, "/d/MANIFEST", 100, &d);
    cr_assert_eq(rc, TIND_CORRUPTION, "%s: %d, not corruption", what, rc);
    snprintf(want, sizeof want, "/d/MANIFEST offset %llu:", (unsigned long long)(100 + want_off));
    cr_assert(strstr(err_msg(), want), "%s: message \"%s\" lacks \"%s\"", what, err_msg(), want);
    version_edit_free(&d);
}

Test(manifest, edit_malformed)
{
    const uint8_t unknown[] = {2, 5, 6, 1, 0};
    mt_expect_corrupt(unknown, sizeof unknown, "unknown tag", 2);
    const uint8_t unknown_big[] = {0x80, 0x80, 0x80, 0x80, 0x10};
    mt_expect_corrupt(unknown_big, sizeof unknown_big, "tag past 32 bits", 0);
    const uint8_t no_end[] = {2, 5};
    mt_expect_corrupt(no_end, sizeof no_end, "no end tag", 2);
    mt_expect_corrupt(no_end, 0, "empty", 0);
    const uint8_t after_end[] = {2, 5, 0, 0};
    mt_expect_corrupt(after_end, sizeof after_end, "bytes after end", 3);
    const uint8_t overlong[] = {2, 0x85, 0x00, 0};
    mt_expect_corrupt(overlong, sizeof overlong, "over-long varint", 0);
    const uint8_t overlong_tag[] = {0x82, 0x00, 5, 0};
    mt_expect_corrupt(overlong_tag, sizeof overlong_tag, "over-long tag", 0);
    const uint8_t twice[] = {2, 5, 2, 6, 0};
    mt_expect_corrupt(twice, sizeof twice, "flushed_seq twice", 2);
    const uint8_t order[] = {3, 5, 2, 6, 0};
    mt_expect_corrupt(order, sizeof order, "out of order", 2);
    const uint8_t add_before_del[] = {5, 1, 9, 1, 1, 0, 1, 1, 1, 'a', 1, 1, 'a', 1, 4, 1, 9, 0};
    mt_expect_corrupt(add_before_del, sizeof add_before_del, "delete after add", 14);
    const uint8_t del_level[] = {4, LSM_LEVELS, 9, 0};
    mt_expect_corrupt(del_level, sizeof del_level, "delete level", 0);
    const uint8_t add_level[] = {5, LSM_LEVELS, 9, 1, 1, 0, 1, 1, 1, 'a', 1, 1, 'a', 1, 0};
    mt_expect_corrupt(add_level, sizeof add_level, "add level", 0);
    const uint8_t key_past_end[] = {5, 1, 9, 1, 1, 0, 1, 1, 40, 'a', 1, 1, 'a', 1, 0};
    mt_expect_corrupt(key_past_end, sizeof key_past_end, "key length past the end", 0);
    const uint8_t key_huge[] = {5, 1, 9, 1, 1, 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a', 0};
    mt_expect_corrupt(key_huge, sizeof key_huge, "key length 2^32-1", 0);
    const uint8_t magic[] = {1, 'T', 'I', 'N', 'D', 'M', 'A', 'N', 'J', 1, 0};
    mt_expect_corrupt(magic, sizeof magic, "bad magic", 0);
    const uint8_t format[] = {1, 'T', 'I', 'N', 'D', 'M', 'A', 'N', 'I', 2, 0};
    mt_expect_corrupt(format, sizeof format, "format 2", 0);
    const uint8_t short_magic[] = {1, 'T', 'I', 'N', 'D'};
    mt_expect_corrupt(short_magic, sizeof short_magic, "truncated marker", 0);
    const uint8_t snap_late[] = {2, 5, 1, 'T', 'I', 'N', 'D', 'M', 'A', 'N', 'I', 1, 0};
    mt_expect_corrupt(snap_late, sizeof snap_late, "marker not first", 2);
    const uint8_t snap_del[] = {1, 'T', 'I', 'N', 'D', 'M', 'A', 'N', 'I', 1, 4, 1, 9, 0};
    mt_expect_corrupt(snap_del, sizeof snap_del, "snapshot deleting", 10);
    const uint8_t seq_big[] = {2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0};
    mt_expect_corrupt(seq_big, sizeof seq_big, "varint past 64 bits", 0);

    /* The largest values and a 10-byte varint are fine. */
    const uint8_t max[] = {2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0};
    struct version_edit d;
    MT_OK(version_edit_decode(max, sizeof max, g_dir, "M", 0, &d));
    cr_assert(d.has_flushed_seq && d.flushed_seq == UINT64_MAX);
    version_edit_free(&d);
}

Test(manifest, edit_rejects_bad_arguments)
{
    struct version_edit e;
    version_edit_init(&e);
    struct table_meta *m = mt_meta(1, "a", "b");
    MT_RC(version_edit_add(&e, LSM_LEVELS, m), TIND_INVALID);
    MT_RC(version_edit_add(&e, 0, NULL), TIND_INVALID);
    MT_RC(version_edit_del(&e, LSM_LEVELS, 1), TIND_INVALID);
    cr_assert_eq(e.nadds + e.ndels, 0u);
    cr_assert_eq(m->refs, 1, "a refused add takes no reference");
    MT_OK(version_edit_add(&e, LSM_LEVELS - 1, m));
    cr_assert_eq(m->refs, 2);
    version_edit_free(&e);
    cr_assert_eq(m->refs, 1);
    table_meta_unref(m);
}

/* ---- open, apply, reopen ------------------------------------------------------------------------ */

Test(manifest, create_and_reopen_empty)
{
    manifest *m = NULL;
    MT_RC(manifest_open(g_dir, 0, &m), TIND_NOT_FOUND);
    cr_assert_null(m);
    m = mt_open(1);
    cr_assert(mt_exists(mt_path(MANIFEST_FILE)));
    cr_assert(!mt_exists(mt_path(MANIFEST_FILE ".tmp")));
    struct version *v = manifest_current(m);
    for (unsigned l = 0; l < LSM_LEVELS; l++) cr_assert_eq(v->nfiles[l], 0u);
    version_unref(v);
    cr_assert_eq(manifest_flushed_seq(m), 0u);
    cr_assert_eq(manifest_new_file_number(m), 1u);
    cr_assert_eq(manifest_new_file_number(m), 2u);
    m = mt_reopen_same(m);
    /* create on an existing manifest opens it. */
    manifest_close(m);
    MT_OK(manifest_open(g_dir, 1, &m));
    manifest_close(m);
}

Test(manifest, apply_then_reopen_gives_the_same_version)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    /* Three flushes to level 0, then a compaction of two of them with a
     * level-1 table into two level-1 tables. */
    uint64_t t[8];
    for (int i = 0; i < 8; i++) t[i] = manifest_new_file_number(m);
    version_edit_init(&e);
    mt_add(&e, 1, t[0], "m", "p");
    e.has_flushed_seq = 1;
    e.flushed_seq = 10;
    mt_apply(m, &e);
    const char *r[3][2] = {{"a", "f"}, {"c", "k"}, {"x", "z"}};
    for (int i = 0; i < 3; i++) {
        version_edit_init(&e);
        mt_add(&e, 0, t[1 + i], r[i][0], r[i][1]);
        e.has_flushed_seq = 1;
        e.flushed_seq = 20 + (uint64_t)i;
        mt_apply(m, &e);
    }
    mt_expect_level(m, 0, "4,3,2");
    mt_expect_level(m, 1, "1");
    cr_assert_eq(manifest_flushed_seq(m), 22u);
    version_edit_init(&e);
    mt_del(&e, 0, t[1]);
    mt_del(&e, 0, t[2]);
    mt_del(&e, 1, t[0]);
    mt_add(&e, 1, t[5], "n", "p");
    mt_add(&e, 1, t[4], "a", "m");
    mt_apply(m, &e);
    mt_expect_level(m, 0, "4");
    mt_expect_level(m, 1, "5,6");
    cr_assert(!mt_exists(mt_table_path(t[0])) && !mt_exists(mt_table_path(t[1])) && !mt_exists(mt_table_path(t[2])));
    cr_assert_eq(manifest_flushed_seq(m), 22u, "an edit without flushed_seq keeps it");
    m = mt_reopen_same(m);
    mt_expect_level(m, 0, "4");
    mt_expect_level(m, 1, "5,6");
    /* Numbers handed out before the reopen are never handed out again. */
    cr_assert_gt(manifest_new_file_number(m), t[7]);
    for (int i = 3; i < 6; i++) cr_assert(mt_exists(mt_table_path(t[i])), "table %llu kept", (unsigned long long)t[i]);
    manifest_close(m);
}

Test(manifest, level0_newest_first_deeper_levels_by_key)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    version_edit_init(&e);
    /* Added out of order in one edit. */
    mt_add(&e, 0, 7, "a", "z");
    mt_add(&e, 0, 12, "b", "c");
    mt_add(&e, 0, 3, "a", "b");
    mt_add(&e, 0, 9, "a", "a");
    mt_add(&e, 2, 4, "q", "r");
    mt_add(&e, 2, 5, "a", "az");
    mt_add(&e, 2, 6, "ba", "bb");
    mt_add(&e, 2, 8, "b", "b");
    mt_add(&e, 2, 10, "s", "s");
    mt_apply(m, &e);
    mt_expect_level(m, 0, "12,9,7,3");
    mt_expect_level(m, 2, "5,8,6,4,10");
    struct version *v = manifest_current(m);
    uint64_t sum = 0;
    for (size_t i = 0; i < v->nfiles[2]; i++) sum += v->files[2][i]->size;
    cr_assert_eq(v->level_bytes[2], sum);
    cr_assert_eq(v->level_bytes[1], 0u);
    version_unref(v);
    version_edit_init(&e);
    mt_add(&e, 0, 13, "a", "b");
    mt_add(&e, 2, 11, "c", "p");
    mt_apply(m, &e);
    mt_expect_level(m, 0, "13,12,9,7,3");
    mt_expect_level(m, 2, "5,8,6,11,4,10");
    m = mt_reopen_same(m);
    mt_expect_level(m, 0, "13,12,9,7,3");
    mt_expect_level(m, 2, "5,8,6,11,4,10");
    manifest_close(m);
}

/* The model: live tables as key ranges over integers (keys "k%08u"). */
struct mt_live {
    unsigned level;
    uint64_t number;
    unsigned lo, hi;
};



static int mt_cmp_live(const void *a, const void *b)
{
    const struct mt_live *x = a, *y = b;
    if (x->level != y->level) return x->level < y->level ? -1 : 1;
    if (x->level == 0) return x->number > y->number ? -1 : x->number < y->number;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The current version holds exactly the model's tables, in the model's order,
 * and the model's files exist. */
static void mt_expect_model(manifest *m, struct mt_live *live, size_t n)
{
    qsort(live, n, sizeof *live, mt_cmp_live);
    struct version *v = manifest_current(m);
    size_t k = 0;
    for (unsigned l = 0; l < LSM_LEVELS; l++) {
        for (size_t i = 0; i < v->nfiles[l]; i++, k++) {
            cr_assert_lt(k, n, "the version holds more tables than the model");
            cr_assert(live[k].level == l && live[k].number == v->files[l][i]->number,
                      "position %zu: version has level %u table %llu, model level %u table %llu", k, l,
                      (unsigned long long)v->files[l][i]->number, live[k].level, (unsigned long long)live[k].number);
            cr_assert(mt_exists(v->files[l][i]->path), "%s missing", v->files[l][i]->path);
        }
    }
    cr_assert_eq(k, n, "the version holds %zu tables, the model %zu", k, n);
    version_unref(v);
    MT_OK(manifest_check(m));
}

/* Random flushes, compactions into level 1, moves to level 2 and
 * reopenings, checked against a model after every step; every deleted
 * table's file must be gone, every live one present. */
Test(manifest, random_workload_against_a_model, .timeout = 120)
{
    uint64_t s = tu_seed("manifest::random_workload_against_a_model");
    manifest *m = mt_open(1);
    struct mt_live live[512];
    size_t n = 0;
    uint64_t flushed = 0, deleted[8192];
    size_t ndeleted = 0;
    for (int step = 0; step < 400; step++) {
        struct version_edit e;
        size_t first_deleted = ndeleted;
        version_edit_init(&e);
        unsigned op = (unsigned)tu_below(&s, 10);
        if (op < 5 || n == 0) { /* flush */
            unsigned lo = (unsigned)tu_below(&s, 10000), hi = lo + (unsigned)tu_below(&s, 2000);
            uint64_t num = manifest_new_file_number(m);
            mt_add_range(&e, 0, num, lo, hi);
            e.has_flushed_seq = 1;
            e.flushed_seq = flushed += 1 + tu_below(&s, 100);
            live[n++] = (struct mt_live){0, num, lo, hi};
        } else if (op < 8) { /* compact level 0 and what it overlaps in level 1 into level 1 */
            unsigned lo = UINT32_MAX, hi = 0;
            for (size_t i = 0; i < n; i++)
                if (live[i].level == 0) {
                    if (live[i].lo < lo) lo = live[i].lo;
                    if (live[i].hi > hi) hi = live[i].hi;
                }
            if (lo > hi) continue;
            for (size_t i = 0; i < n; i++)
                if (live[i].level == 1 && live[i].hi >= lo && live[i].lo <= hi) {
                    if (live[i].lo < lo) lo = live[i].lo;
                    if (live[i].hi > hi) hi = live[i].hi;
                }
            for (size_t i = 0; i < n;) {
                if (live[i].level == 0 || (live[i].level == 1 && live[i].hi >= lo && live[i].lo <= hi)) {
                    mt_del(&e, live[i].level, live[i].number);
                    deleted[ndeleted++] = live[i].number;
                    live[i] = live[--n];
                } else {
                    i++;
                }
            }
            unsigned parts = 1 + (unsigned)tu_below(&s, 3), span = hi - lo + 1;
            for (unsigned p = 0; p < parts; p++) {
                unsigned a = lo + span * p / parts, b = lo + span * (p + 1) / parts - 1;
                if (a > b) continue;
                uint64_t num = manifest_new_file_number(m);
                mt_add_range(&e, 1, num, a, b);
                live[n++] = (struct mt_live){1, num, a, b};
            }
        } else { /* move a level-1 table that overlaps nothing in level 2 */
            size_t i;
            for (i = 0; i < n; i++) {
                if (live[i].level != 1) continue;
                size_t j;
                for (j = 0; j < n; j++)
                    if (live[j].level == 2 && live[j].hi >= live[i].lo && live[j].lo <= live[i].hi) break;
                if (j == n) break;
            }
            if (i == n) continue;
            struct version *v = manifest_current(m);
            struct table_meta *meta = NULL;
            for (size_t k = 0; k < v->nfiles[1]; k++)
                if (v->files[1][k]->number == live[i].number) meta = v->files[1][k];
            cr_assert_not_null(meta);
            mt_del(&e, 1, live[i].number);
            MT_OK(version_edit_add(&e, 2, meta));
            version_unref(v);
            live[i].level = 2;
        }
        mt_apply(m, &e);
        cr_assert_lt(n, 500u);
        cr_assert_lt(ndeleted, 8000u);
        mt_expect_model(m, live, n);
        cr_assert_eq(manifest_flushed_seq(m), flushed);
        for (size_t i = first_deleted; i < ndeleted; i++)
            cr_assert(!mt_exists(mt_table_path(deleted[i])), "deleted table %llu still on disk",
                      (unsigned long long)deleted[i]);
        if (tu_below(&s, 25) == 0) {
            m = mt_reopen_same(m);
            mt_expect_model(m, live, n);
        }
    }
    m = mt_reopen_same(m);
    mt_expect_model(m, live, n);
    manifest_close(m);
    for (size_t i = 0; i < ndeleted; i++)
        cr_assert(!mt_exists(mt_table_path(deleted[i])), "deleted table %llu still on disk",
                  (unsigned long long)deleted[i]);
}

/* ---- the snapshot rewrite ------------------------------------------------------------------------ */

Test(manifest, snapshot_rewrite_after_many_edits, .timeout = 120)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    /* Many small edits: flushes, and compactions into level 1. */
    for (unsigned i = 0; i < 300; i++) {
        version_edit_init(&e);
        uint64_t num = manifest_new_file_number(m);
        mt_add_range(&e, i % 10 == 9 ? 2 : 0, num, i * 10, i * 10 + 5);
        e.has_flushed_seq = 1;
        e.flushed_seq = i + 1;
        if (i % 10 == 9) {
            /* This one goes to level 2 directly and the nine before it
             * move there (all are disjoint). */
            struct version *v = manifest_current(m);
            for (size_t k = 0; k < v->nfiles[0]; k++) {
                mt_del(&e, 0, v->files[0][k]->number);
                MT_OK(version_edit_add(&e, 2, v->files[0][k]));
            }
            version_unref(v);
        }
        mt_apply(m, &e);
    }
    uint64_t small = mt_size(mt_path(MANIFEST_FILE));
    mt_expect_level(m, 0, "");
    /* Big edits until MANIFEST shrinks, twice. */
    uint64_t prev = 0, added, size = small;
    int rewrites = 0;
    for (int i = 0; i < 200 && rewrites < 2; i++) {
        MT_OK(mt_apply_big(m, &prev, &added));
        uint64_t now = mt_size(mt_path(MANIFEST_FILE));
        cr_assert(!mt_exists(mt_path(MANIFEST_FILE ".tmp")));
        if (now < size) {
            rewrites++;
            cr_assert_lt(now, UINT64_C(1) << 20, "a rewrite holds the state alone: %llu bytes",
                         (unsigned long long)now);
            cr_assert_gt(size + 200000, UINT64_C(4) << 20, "rewritten at %llu bytes", (unsigned long long)size);
            /* The rewritten log reads back to the same state. */
            m = mt_reopen_same(m);
        }
        size = now;
    }
    cr_assert_eq(rewrites, 2, "MANIFEST never shrank (%llu bytes)", (unsigned long long)size);
    /* Appends go on after the rewrite and survive a reopen. */
    version_edit_init(&e);
    mt_add_range(&e, 0, manifest_new_file_number(m), 5, 6);
    e.has_flushed_seq = 1;
    e.flushed_seq = 1000;
    mt_apply(m, &e);
    cr_assert_gt(mt_size(mt_path(MANIFEST_FILE)), size);
    m = mt_reopen_same(m);
    cr_assert_eq(manifest_flushed_seq(m), 1000u);
    struct version *v = manifest_current(m);
    cr_assert_eq(v->nfiles[0], 1u);
    cr_assert_eq(v->nfiles[1], 1u);
    cr_assert_eq(v->files[1][0]->number, prev);
    cr_assert_eq(v->nfiles[2], 300u);
    version_unref(v);
    manifest_close(m);
}

/* ---- recovery: torn tails and damage ----------------------------------------------------------- */

/* Builds a manifest of a snapshot and three edits; returns the version
 * before the last edit (a reference) and the MANIFEST offsets of the last
 * record and of the end. */
static struct version *mt_three_edits(uint64_t *last_off, uint64_t *end)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    for (unsigned i = 0; i < 3; i++) {
        version_edit_init(&e);
        mt_add_range(&e, 0, 10 + i, i, i + 100);
        e.has_flushed_seq = 1;
        e.flushed_seq = 5 * (i + 1);
        if (i == 2) {
            *last_off = mt_size(mt_path(MANIFEST_FILE));
            mt_del(&e, 0, 10);
            mt_add_range(&e, 1, 20, 1000, 2000);
        }
        mt_apply(m, &e);
    }
    *end = mt_size(mt_path(MANIFEST_FILE));
    manifest_close(m);
    /* The state before the last edit, read back from a copy cut there. */
    uint8_t *d;
    size_t n;
    mt_read(mt_path(MANIFEST_FILE), &d, &n);
    mt_write_file(mt_path(MANIFEST_FILE), d, (size_t)*last_off);
    m = mt_open(0);
    struct version *v = manifest_current(m);
    cr_assert_eq(manifest_flushed_seq(m), 10u);
    manifest_close(m);
    mt_write_file(mt_path(MANIFEST_FILE), d, n);
    free(d);
    return v;
}

Test(manifest, torn_tail_cut_at_every_length, .timeout = 120)
{
    uint64_t last, end;
    struct version *before = mt_three_edits(&last, &end);
    uint8_t *d;
    size_t n;
    mt_read(mt_path(MANIFEST_FILE), &d, &n);
    cr_assert_eq(n, end);
    for (uint64_t cut = last; cut < end; cut++) {
        mt_write_file(mt_path(MANIFEST_FILE), d, (size_t)cut);
        manifest *m = mt_open(0);
        struct version *v = manifest_current(m);
        mt_version_eq(before, v);
        version_unref(v);
        cr_assert_eq(manifest_flushed_seq(m), 10u, "cut at %llu", (unsigned long long)cut);
        cr_assert_eq(mt_size(mt_path(MANIFEST_FILE)), last, "cut at %llu: the torn record was not cut off",
                     (unsigned long long)cut);
        if (cut == last + 7 || cut == end - 1) {
            /* The cut manifest takes new edits and reads them back. */
            struct version_edit e;
            version_edit_init(&e);
            mt_add_range(&e, 3, manifest_new_file_number(m), 1, 2);
            mt_apply(m, &e);
            m = mt_reopen_same(m);
        }
        manifest_close(m);
    }
    /* Whole, it reads the last edit too. */
    mt_write_file(mt_path(MANIFEST_FILE), d, n);
    manifest *m = mt_open(0);
    mt_expect_level(m, 0, "12,11");
    mt_expect_level(m, 1, "20");
    cr_assert_eq(manifest_flushed_seq(m), 15u);
    manifest_close(m);
    free(d);
    version_unref(before);
}

Test(manifest, torn_tail_of_zeros_or_garbage)
{
    uint64_t last, end;
    struct version *before = mt_three_edits(&last, &end);
    version_unref(before);
    uint8_t *d;
    size_t n;
    mt_read(mt_path(MANIFEST_FILE), &d, &n);
    uint64_t s = tu_seed("manifest::torn_tail_of_zeros_or_garbage");
    for (int kind = 0; kind < 4; kind++) {
        size_t extra = kind == 3 ? 5 : 100;
        uint8_t *c = malloc(n + extra);
        memcpy(c, d, n);
        for (size_t i = 0; i < extra; i++) c[n + i] = kind == 0 ? 0 : (uint8_t)tu_rand(&s);
        if (kind == 2) {
            /* An intact record header whose payload runs past the end. */
            uint8_t pl[200] = {0};
            record_header_encode(c + n, pl, sizeof pl);
        }
        mt_write_file(mt_path(MANIFEST_FILE), c, n + extra);
        manifest *m = mt_open(0);
        mt_expect_level(m, 0, "12,11");
        cr_assert_eq(mt_size(mt_path(MANIFEST_FILE)), n, "tail kind %d not cut", kind);
        manifest_close(m);
        free(c);
    }
    free(d);
}

Test(manifest, damage_before_the_last_record_is_corruption, .timeout = 120)
{
    uint64_t last, end;
    struct version *before = mt_three_edits(&last, &end);
    version_unref(before);
    uint8_t *d;
    size_t n;
    mt_read(mt_path(MANIFEST_FILE), &d, &n);
    /* Every byte of every record but the last, snapshot included. */
    uint64_t starts[8];
    size_t nstarts = 0;
    for (uint64_t o = 0; o < last; o += RECORD_HEADER_SIZE + get_u64(d + o)) starts[nstarts++] = o;
    cr_assert_eq(nstarts, 3u);
    for (uint64_t off = 0; off < last; off++) {
        uint64_t rec = 0;
        for (size_t i = 0; i < nstarts; i++)
            if (starts[i] <= off) rec = starts[i];
        d[off] ^= 0x10;
        mt_write_file(mt_path(MANIFEST_FILE), d, n);
        d[off] ^= 0x10;
        manifest *m = NULL;
        int rc = manifest_open(g_dir, 0, &m);
        cr_assert_eq(rc, TIND_CORRUPTION, "byte %llu flipped: %d", (unsigned long long)off, rc);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "%s offset %llu", mt_path(MANIFEST_FILE), (unsigned long long)rec);
        cr_assert(strstr(err_msg(), want), "byte %llu flipped: \"%s\" lacks \"%s\"", (unsigned long long)off,
                  err_msg(), want);
        cr_assert_eq(mt_size(mt_path(MANIFEST_FILE)), n, "a damaged manifest is never cut");
    }
    free(d);
}

Test(manifest, damaged_or_empty_snapshot_is_corruption)
{
    manifest *m = mt_open(1);
    manifest_close(m);
    uint8_t *d;
    size_t n;
    mt_read(mt_path(MANIFEST_FILE), &d, &n);
    for (size_t cut = 0; cut < n; cut++) {
        mt_write_file(mt_path(MANIFEST_FILE), d, cut);
        MT_RC(manifest_open(g_dir, 1, &m), TIND_CORRUPTION);
        cr_assert_eq(mt_size(mt_path(MANIFEST_FILE)), cut);
    }
    for (size_t bit = 0; bit < n * 8; bit++) {
        d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        mt_write_file(mt_path(MANIFEST_FILE), d, n);
        d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        MT_RC(manifest_open(g_dir, 1, &m), TIND_CORRUPTION);
        cr_assert(strstr(err_msg(), "offset 0"), "bit %zu: %s", bit, err_msg());
    }
    free(d);
}

/* Payloads that pass their checksums but say something impossible are
 * corruption, even in the last record: they are not torn writes. */
Test(manifest, well_framed_bad_records_are_corruption)
{
    buf p[3];
    struct version_edit e;
    for (int i = 0; i < 3; i++) buf_init(&p[i]);

    version_edit_init(&e);
    e.snapshot = 1;
    e.has_next_file = 1;
    e.next_file = 5;
    MT_OK(version_edit_encode(&e, &p[0]));
    version_edit_free(&e);
    version_edit_init(&e);
    mt_del(&e, 0, 3);
    MT_OK(version_edit_encode(&e, &p[1]));
    version_edit_free(&e);

    /* An edit deleting a table the state does not hold. */
    mt_write_manifest(p, 2);
    manifest *m = NULL;
    MT_RC(manifest_open(g_dir, 0, &m), TIND_CORRUPTION);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s offset %zu: the edit does not apply", mt_path(MANIFEST_FILE),
             RECORD_HEADER_SIZE + p[0].len);
    cr_assert(strstr(err_msg(), want), "\"%s\" lacks \"%s\"", err_msg(), want);

    /* The first record is not a snapshot. */
    mt_write_manifest(&p[1], 1);
    MT_RC(manifest_open(g_dir, 0, &m), TIND_CORRUPTION);
    cr_assert(strstr(err_msg(), "offset 0: the first record is not a snapshot"), "%s", err_msg());

    /* A second snapshot. */
    buf two[2] = {p[0], p[0]};
    mt_write_manifest(two, 2);
    MT_RC(manifest_open(g_dir, 0, &m), TIND_CORRUPTION);
    cr_assert(strstr(err_msg(), "a snapshot record after the first"), "%s", err_msg());

    /* An unknown tag in a well-framed last record. */
    const uint8_t unknown[] = {2, 1, 9, 0};
    MT_OK(buf_append(&p[2], unknown, sizeof unknown));
    buf three[2] = {p[0], p[2]};
    mt_write_manifest(three, 2);
    MT_RC(manifest_open(g_dir, 0, &m), TIND_CORRUPTION);
    cr_assert(strstr(err_msg(), "unknown field tag"), "%s", err_msg());

    /* An edit adding a table whose range overlaps one in level 1. */
    buf_clear(&p[1]);
    version_edit_init(&e);
    mt_add(&e, 1, 1, "a", "c");
    mt_add(&e, 1, 2, "c", "d");
    MT_OK(version_edit_encode(&e, &p[1]));
    version_edit_free(&e);
    mt_write_manifest(p, 2);
    MT_RC(manifest_open(g_dir, 0, &m), TIND_CORRUPTION);
    cr_assert(strstr(err_msg(), "overlaps"), "%s", err_msg());

    /* The files named by a manifest that failed to open are left alone. */
    cr_assert(mt_exists(mt_table_path(1)) && mt_exists(mt_table_path(2)));
    for (int i = 0; i < 3; i++) buf_free(&p[i]);
}

/* ---- invalid edits ---------------------------------------------------------------------------- */

static void mt_expect_refused(manifest *m, struct version_edit *e, const char *what)
{
    struct version *before = manifest_current(m);
    uint64_t size = mt_size(mt_path(MANIFEST_FILE)), flushed = manifest_flushed_seq(m);
    int had_next = e->has_next_file;
    int rc = manifest_apply(m, e);
    cr_assert_eq(rc, TIND_INVALID, "%s: %d (%s)", what, rc, err_msg());
    cr_assert(strstr(err_msg(), "MANIFEST"), "%s: message %s", what, err_msg());
    struct version *after = manifest_current(m);
    cr_assert_eq(before, after, "%s: the version changed", what);
    cr_assert_eq(mt_size(mt_path(MANIFEST_FILE)), size, "%s: MANIFEST changed", what);
    cr_assert_eq(manifest_flushed_seq(m), flushed, "%s: flushed_seq changed", what);
    cr_assert_eq(e->has_next_file, had_next, "%s: the edit changed", what);
    version_unref(before);
    version_unref(after);
    version_edit_free(e);
}

Test(manifest, invalid_edits_change_nothing)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    version_edit_init(&e);
    mt_add(&e, 0, 2, "a", "z");
    mt_add(&e, 1, 1, "b", "d");
    mt_add(&e, 1, 3, "f", "h");
    mt_apply(m, &e);

    version_edit_init(&e);
    e.has_flushed_seq = 1;
    e.flushed_seq = 99;
    mt_del(&e, 0, 99);
    mt_expect_refused(m, &e, "delete an unknown table");
    version_edit_init(&e);
    mt_del(&e, 0, 1);
    mt_expect_refused(m, &e, "delete from the wrong level");
    version_edit_init(&e);
    mt_del(&e, 1, 1);
    mt_del(&e, 1, 1);
    mt_expect_refused(m, &e, "delete twice");
    version_edit_init(&e);
    mt_add(&e, 2, 2, "x", "y");
    mt_expect_refused(m, &e, "add a number the version holds");
    version_edit_init(&e);
    mt_add(&e, 0, 5, "x", "y");
    mt_add(&e, 2, 5, "x", "y");
    mt_expect_refused(m, &e, "add a number twice");
    version_edit_init(&e);
    mt_add(&e, 1, 5, "c", "e");
    mt_expect_refused(m, &e, "overlap an existing table");
    version_edit_init(&e);
    mt_add(&e, 1, 5, "a", "b");
    mt_expect_refused(m, &e, "touch an existing table's smallest key");
    version_edit_init(&e);
    mt_add(&e, 1, 5, "e", "f");
    mt_expect_refused(m, &e, "touch an existing table's smallest key from below");
    version_edit_init(&e);
    mt_add(&e, 3, 5, "p", "r");
    mt_add(&e, 3, 6, "r", "s");
    mt_expect_refused(m, &e, "two new tables overlap");
    version_edit_init(&e);
    mt_add(&e, 1, 5, "y", "x");
    mt_expect_refused(m, &e, "smallest above largest");
    version_edit_init(&e);
    struct table_meta *meta = mt_meta(5, "x", "y");
    meta->min_seq = meta->max_seq + 1;
    MT_OK(version_edit_add(&e, 0, meta));
    table_meta_unref(meta);
    mt_expect_refused(m, &e, "min_seq above max_seq");
    version_edit_init(&e);
    mt_add(&e, 2, 5, "x", "y");
    e.adds[0].level = LSM_LEVELS;
    mt_expect_refused(m, &e, "level past the last");
    version_edit_init(&e);
    e.snapshot = 1;
    mt_expect_refused(m, &e, "a snapshot");

    /* Not poisoned: a valid edit still applies, and the refused ones left
     * no trace on disk. */
    version_edit_init(&e);
    mt_del(&e, 1, 1);
    mt_add(&e, 1, 5, "a", "e");
    mt_apply(m, &e);
    mt_expect_level(m, 1, "5,3");
    m = mt_reopen_same(m);
    mt_expect_level(m, 0, "2");
    mt_expect_level(m, 1, "5,3");
    manifest_close(m);
}

/* ---- files ------------------------------------------------------------------------------------------ */

Test(manifest, unreferenced_files_removed_at_open)
{
    /* Tables left in a folder before the manifest was created go too. */
    mt_touch_table(40);
    manifest *m = mt_open(1);
    cr_assert(!mt_exists(mt_table_path(40)));
    struct version_edit e;
    version_edit_init(&e);
    mt_add(&e, 0, 1, "a", "b");
    mt_add(&e, 1, 2, "a", "b");
    mt_add(&e, 6, 3, "a", "b");
    mt_apply(m, &e);
    manifest_close(m);
    mt_touch_table(4);  /* an unfinished flush */
    mt_touch_table(0);
    mt_touch_table(UINT64_MAX);
    mt_write_file(mt_path(MANIFEST_FILE ".tmp"), "half", 4);
    const char *keep[] = {"000000000000000A.tbl", "00000000000000004.tbl", "0000000000000004.tbl.bak",
                          "notes.txt", "OPTIONS"};
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) mt_write_file(mt_path(keep[i]), "x", 1);
    m = mt_open(0);
    for (uint64_t t = 1; t <= 3; t++) cr_assert(mt_exists(mt_table_path(t)), "referenced table %llu removed",
                                                 (unsigned long long)t);
    cr_assert(!mt_exists(mt_table_path(4)));
    cr_assert(!mt_exists(mt_table_path(0)));
    cr_assert(!mt_exists(mt_table_path(UINT64_MAX)));
    cr_assert(!mt_exists(mt_path(MANIFEST_FILE ".tmp")));
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
        cr_assert(mt_exists(mt_path(keep[i])), "%s is not the manifest's and was removed", keep[i]);
    cr_assert(mt_exists(mt_path(MANIFEST_FILE)));
    /* A referenced table that is missing is not the manifest's business. */
    MT_OK(file_unlink(mt_table_path(2)));
    manifest_close(m);
    m = mt_open(0);
    mt_expect_level(m, 1, "2");
    manifest_close(m);
}

Test(manifest, obsolete_file_removed_when_the_last_holder_goes)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    version_edit_init(&e);
    mt_add(&e, 0, 1, "a", "b");
    mt_add(&e, 0, 2, "c", "d");
    mt_add(&e, 0, 3, "e", "f");
    mt_apply(m, &e);
    struct version *old = manifest_current(m);
    struct table_meta *held = old->files[0][0]; /* table 3 */
    cr_assert_eq(held->number, 3u);
    table_meta_ref(held);

    version_edit_init(&e);
    mt_del(&e, 0, 1);
    mt_del(&e, 0, 3);
    mt_add(&e, 1, 4, "a", "f");
    mt_apply(m, &e);
    mt_expect_level(m, 0, "2");
    cr_assert(mt_exists(mt_table_path(1)), "removed while an old version holds it");
    cr_assert(mt_exists(mt_table_path(3)));
    struct version *mid = manifest_current(m);
    version_unref(old);
    cr_assert(!mt_exists(mt_table_path(1)), "kept after the last version holding it went");
    cr_assert(mt_exists(mt_table_path(3)), "removed while a meta reference is held");
    table_meta_unref(held);
    cr_assert(!mt_exists(mt_table_path(3)));
    cr_assert(mt_exists(mt_table_path(2)) && mt_exists(mt_table_path(4)));

    /* A file already gone (ENOENT) is no problem. */
    MT_OK(file_unlink(mt_table_path(2)));
    version_edit_init(&e);
    mt_del(&e, 0, 2);
    mt_apply(m, &e);
    version_unref(mid);
    mt_expect_level(m, 0, "");
    mt_expect_level(m, 1, "4");
    /* Closing the manifest removes nothing the current version holds. */
    manifest_close(m);
    cr_assert(mt_exists(mt_table_path(4)));
}

Test(manifest, move_to_another_level_keeps_the_file)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    version_edit_init(&e);
    mt_add(&e, 1, 1, "a", "b");
    mt_apply(m, &e);
    /* The mover may pass the same meta or a fresh one for the same number. */
    for (unsigned l = 2; l <= 3; l++) {
        struct version *v = manifest_current(m);
        version_edit_init(&e);
        mt_del(&e, l - 1, 1);
        if (l == 2) {
            MT_OK(version_edit_add(&e, l, v->files[1][0]));
        } else {
            struct table_meta *fresh = mt_meta(1, "a", "b");
            MT_OK(version_edit_add(&e, l, fresh));
            table_meta_unref(fresh);
        }
        mt_apply(m, &e);
        version_unref(v);
        cr_assert(mt_exists(mt_table_path(1)), "a moved table's file was removed (to level %u)", l);
    }
    mt_expect_level(m, 3, "1");
    m = mt_reopen_same(m);
    mt_expect_level(m, 3, "1");
    cr_assert(mt_exists(mt_table_path(1)));
    manifest_close(m);
}

Test(manifest, file_numbers_above_every_number_recorded)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    uint64_t a = manifest_new_file_number(m), b = manifest_new_file_number(m);
    cr_assert_eq(b, a + 1);
    /* A table numbered past the counter (made by someone else) raises it. */
    version_edit_init(&e);
    mt_add(&e, 0, 1000, "a", "b");
    mt_apply(m, &e);
    cr_assert_gt(manifest_new_file_number(m), 1000u);
    /* Numbers handed out but never used are not handed out again after a
     * reopen, as long as an edit was applied after them. */
    uint64_t c = 0;
    for (int i = 0; i < 50; i++) c = manifest_new_file_number(m);
    version_edit_init(&e);
    e.has_flushed_seq = 1;
    e.flushed_seq = 3;
    mt_apply(m, &e);
    manifest_close(m);
    m = mt_open(0);
    cr_assert_gt(manifest_new_file_number(m), c);
    /* An explicit next_file above everything is kept. */
    version_edit_init(&e);
    e.has_next_file = 1;
    e.next_file = 5000;
    mt_apply(m, &e);
    cr_assert_eq(manifest_new_file_number(m), 5000u);
    manifest_close(m);
    m = mt_open(0);
    cr_assert_geq(manifest_new_file_number(m), 5000u);
    manifest_close(m);
}

