/* Fixture and helpers shared by the manifest suites (manifest_test.c,
 * manifest_fault_test.c): each file that includes this gets its own copy,
 * and uses what it needs of it. */
#ifndef TIND_TESTS_MANIFEST_COMMON_H
#define TIND_TESTS_MANIFEST_COMMON_H

#define MT_MAYBE_UNUSED __attribute__((unused))

#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "lsm/version.h"
#include "src/util/buf.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "src/util/file.h"
#include "tests/support/fault_env.h"
#include "src/util/record.h"
#include "tests/support/testutil.h"

/* ---- fixture ------------------------------------------------------------------------- */

static char *g_dir; /* this test's scratch directory: one tree's folder */

static MT_MAYBE_UNUSED void mt_setup(void)
{
    file_fault_clear();
    g_dir = tu_mkdtemp("manifest");
    cr_assert_not_null(g_dir, "mkdtemp: %s", strerror(errno));
}

static MT_MAYBE_UNUSED void mt_teardown(void)
{
    file_fault_clear();
    tu_rmtree(g_dir);
    free(g_dir);
    g_dir = NULL;
}


#define MT_OK(expr)                                                                                        \
    do {                                                                                                   \
        int rc_ = (expr);                                                                                  \
        cr_assert_eq(rc_, TIND_OK, "%s: %d (%s): %s", #expr, rc_, tind_strerror(rc_), err_msg());         \
    } while (0)

#define MT_RC(expr, want)                                                                                  \
    do {                                                                                                   \
        int rc_ = (expr), want_ = (want);                                                                  \
        cr_assert_eq(rc_, want_, "%s: got %d (%s), want %d (%s); message: %s", #expr, rc_,                 \
                     tind_strerror(rc_), want_, tind_strerror(want_), err_msg());                          \
    } while (0)

/* ---- helpers --------------------------------------------------------------------------- */

static MT_MAYBE_UNUSED const char *mt_path(const char *name)
{
    static char paths[4][PATH_MAX];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", g_dir, name);
    return p;
}

static MT_MAYBE_UNUSED const char *mt_table_path(uint64_t number)
{
    char name[21];
    table_file_name(name, number);
    return mt_path(name);
}

static MT_MAYBE_UNUSED int mt_exists(const char *path)
{
    int e = file_exists(path);
    cr_assert(e >= 0, "stat %s: %s", path, err_msg());
    return e;
}

static MT_MAYBE_UNUSED void mt_write_file(const char *path, const void *p, size_t n)
{
    tfile *f;
    MT_OK(file_open(path, FILE_WRITE | FILE_CREATE | FILE_TRUNC, &f));
    MT_OK(file_append(f, p, n));
    MT_OK(file_close(f));
}

/* A fake table file: the manifest never reads it. */
static MT_MAYBE_UNUSED void mt_touch_table(uint64_t number) { mt_write_file(mt_table_path(number), "table", 5); }

static MT_MAYBE_UNUSED uint64_t mt_size(const char *path)
{
    uint64_t n;
    MT_OK(file_stat_size(path, &n));
    return n;
}

static MT_MAYBE_UNUSED void mt_read(const char *path, uint8_t **d, size_t *n) { MT_OK(file_read_all(path, d, n)); }

/* A meta for table `number` over [lo, hi] (lo's tag newer than hi's). */
static MT_MAYBE_UNUSED struct table_meta *mt_meta_bytes(uint64_t number, const void *lo, size_t lol, const void *hi, size_t hil,
                                        uint64_t seq)
{
    struct table_meta *m = table_meta_new(g_dir, number);
    cr_assert_not_null(m);
    m->size = 1000 + number * 7;
    m->entries = 10 + number;
    m->tombstones = number % 3;
    m->min_seq = seq;
    m->max_seq = seq + 9;
    m->smallest_tag = tag_pack(seq + 9, KIND_PUT);
    m->largest_tag = tag_pack(seq, KIND_DELETE);
    MT_OK(buf_append(&m->smallest, lo, lol));
    MT_OK(buf_append(&m->largest, hi, hil));
    return m;
}

static MT_MAYBE_UNUSED struct table_meta *mt_meta(uint64_t number, const char *lo, const char *hi)
{
    return mt_meta_bytes(number, lo, strlen(lo), hi, strlen(hi), number * 100);
}

/* Adds a new table (file created) to e; e holds the only reference. */
static MT_MAYBE_UNUSED void mt_add(struct version_edit *e, unsigned level, uint64_t number, const char *lo, const char *hi)
{
    mt_touch_table(number);
    struct table_meta *m = mt_meta(number, lo, hi);
    MT_OK(version_edit_add(e, level, m));
    table_meta_unref(m);
}

static MT_MAYBE_UNUSED void mt_del(struct version_edit *e, unsigned level, uint64_t number)
{
    MT_OK(version_edit_del(e, level, number));
}

static MT_MAYBE_UNUSED void mt_apply(manifest *m, struct version_edit *e)
{
    MT_OK(manifest_apply(m, e));
    version_edit_free(e);
}

static MT_MAYBE_UNUSED manifest *mt_open(int create)
{
    manifest *m = NULL;
    MT_OK(manifest_open(g_dir, create, &m));
    MT_OK(manifest_check(m));
    return m;
}

static MT_MAYBE_UNUSED int mt_buf_eq(const buf *a, const buf *b)
{
    return a->len == b->len && (a->len == 0 || !memcmp(a->p, b->p, a->len));
}

static MT_MAYBE_UNUSED void mt_meta_eq(const struct table_meta *a, const struct table_meta *b, unsigned l, size_t i)
{
    cr_assert_eq(a->number, b->number, "level %u #%zu: number %llu vs %llu", l, i, (unsigned long long)a->number,
                 (unsigned long long)b->number);
    cr_assert(a->size == b->size && a->entries == b->entries && a->tombstones == b->tombstones &&
                  a->min_seq == b->min_seq && a->max_seq == b->max_seq && a->smallest_tag == b->smallest_tag &&
                  a->largest_tag == b->largest_tag,
              "level %u table %llu: numeric fields differ", l, (unsigned long long)a->number);
    cr_assert(mt_buf_eq(&a->smallest, &b->smallest),
              "level %u table %llu: smallest %s vs %s", l, (unsigned long long)a->number,
              tu_hex(a->smallest.p, a->smallest.len), tu_hex(b->smallest.p, b->smallest.len));
    cr_assert(mt_buf_eq(&a->largest, &b->largest),
              "level %u table %llu: largest %s vs %s", l, (unsigned long long)a->number,
              tu_hex(a->largest.p, a->largest.len), tu_hex(b->largest.p, b->largest.len));
    cr_assert_str_eq(a->path, b->path);
}

/* Same levels, same order, same metas. */
static MT_MAYBE_UNUSED void mt_version_eq(const struct version *a, const struct version *b)
{
    for (unsigned l = 0; l < LSM_LEVELS; l++) {
        cr_assert_eq(a->nfiles[l], b->nfiles[l], "level %u: %zu vs %zu tables", l, a->nfiles[l], b->nfiles[l]);
        cr_assert_eq(a->level_bytes[l], b->level_bytes[l], "level %u: %llu vs %llu bytes", l,
                     (unsigned long long)a->level_bytes[l], (unsigned long long)b->level_bytes[l]);
        for (size_t i = 0; i < a->nfiles[l]; i++) mt_meta_eq(a->files[l][i], b->files[l][i], l, i);
    }
}

/* The table numbers of level l, in the version's order, as "n,n,n". */
static MT_MAYBE_UNUSED const char *mt_level(const struct version *v, unsigned l)
{
    static char s[4][4096];
    static int slot;
    char *p = s[slot++ % 4];
    size_t o = 0;
    p[0] = 0;
    for (size_t i = 0; i < v->nfiles[l] && o < 4000; i++)
        o += (size_t)snprintf(p + o, 4096 - o, "%s%llu", i ? "," : "", (unsigned long long)v->files[l][i]->number);
    return p;
}

static MT_MAYBE_UNUSED void mt_expect_level(manifest *m, unsigned l, const char *want)
{
    struct version *v = manifest_current(m);
    const char *got = mt_level(v, l);
    int ok = strcmp(got, want) == 0;
    version_unref(v);
    cr_assert(ok, "level %u: got [%s], want [%s]", l, got, want);
}

/* Closes m, reopens, and checks the version, flushed_seq and file numbers
 * came back. Returns the reopened manifest. */
static MT_MAYBE_UNUSED manifest *mt_reopen_same(manifest *m)
{
    struct version *before = manifest_current(m);
    uint64_t flushed = manifest_flushed_seq(m);
    manifest_close(m);
    m = mt_open(0);
    struct version *after = manifest_current(m);
    mt_version_eq(before, after);
    cr_assert_eq(manifest_flushed_seq(m), flushed, "flushed_seq %llu after reopen, %llu before",
                 (unsigned long long)manifest_flushed_seq(m), (unsigned long long)flushed);
    uint64_t n2 = manifest_new_file_number(m);
    for (unsigned l = 0; l < LSM_LEVELS; l++)
        for (size_t i = 0; i < after->nfiles[l]; i++)
            cr_assert_gt(n2, after->files[l][i]->number, "new number %llu not above table %llu",
                         (unsigned long long)n2, (unsigned long long)after->files[l][i]->number);
    version_unref(before);
    version_unref(after);
    return m;
}

/* Writes MANIFEST as the given payloads, each framed as one record. */
static MT_MAYBE_UNUSED void mt_write_manifest(const buf *payloads, size_t n)
{
    buf all;
    buf_init(&all);
    for (size_t i = 0; i < n; i++) {
        uint8_t h[RECORD_HEADER_SIZE];
        record_header_encode(h, payloads[i].p, payloads[i].len);
        MT_OK(buf_append(&all, h, sizeof h));
        MT_OK(buf_append(&all, payloads[i].p, payloads[i].len));
    }
    mt_write_file(mt_path(MANIFEST_FILE), all.p, all.len);
    buf_free(&all);
}

/* ---- edits: random generation and comparison -------------------------------------------- */

/* A number of a random magnitude, so that every varint length is used. */
static MT_MAYBE_UNUSED uint64_t mt_rnum(uint64_t *s)
{
    unsigned shift = (unsigned)tu_below(s, 64);
    return tu_rand(s) >> shift;
}

static MT_MAYBE_UNUSED void mt_random_edit(uint64_t *s, struct version_edit *e, int snapshot)
{
    version_edit_init(e);
    e->snapshot = snapshot;
    if ((e->has_flushed_seq = (int)tu_below(s, 2))) e->flushed_seq = mt_rnum(s);
    if ((e->has_next_file = (int)tu_below(s, 2))) e->next_file = mt_rnum(s);
    size_t nd = snapshot ? 0 : (size_t)tu_below(s, 4), na = (size_t)tu_below(s, 5);
    for (size_t i = 0; i < nd; i++) mt_del(e, (unsigned)tu_below(s, LSM_LEVELS), mt_rnum(s));
    for (size_t i = 0; i < na; i++) {
        uint8_t lo[40], hi[40];
        size_t lol = (size_t)tu_below(s, sizeof lo), hil = (size_t)tu_below(s, sizeof hi);
        for (size_t j = 0; j < sizeof lo; j++) lo[j] = (uint8_t)tu_rand(s);
        for (size_t j = 0; j < sizeof hi; j++) hi[j] = (uint8_t)tu_rand(s);
        struct table_meta *m = table_meta_new(g_dir, mt_rnum(s));
        cr_assert_not_null(m);
        m->size = mt_rnum(s);
        m->entries = mt_rnum(s);
        m->tombstones = mt_rnum(s);
        m->min_seq = mt_rnum(s);
        m->max_seq = mt_rnum(s);
        m->smallest_tag = mt_rnum(s);
        m->largest_tag = mt_rnum(s);
        MT_OK(buf_append(&m->smallest, lo, lol));
        MT_OK(buf_append(&m->largest, hi, hil));
        MT_OK(version_edit_add(e, (unsigned)tu_below(s, LSM_LEVELS), m));
        table_meta_unref(m);
    }
}

static MT_MAYBE_UNUSED void mt_edit_eq(const struct version_edit *a, const struct version_edit *b)
{
    cr_assert_eq(a->snapshot, b->snapshot);
    cr_assert_eq(a->has_flushed_seq, b->has_flushed_seq);
    if (a->has_flushed_seq) cr_assert_eq(a->flushed_seq, b->flushed_seq);
    cr_assert_eq(a->has_next_file, b->has_next_file);
    if (a->has_next_file) cr_assert_eq(a->next_file, b->next_file);
    cr_assert_eq(a->ndels, b->ndels, "%zu vs %zu deletions", a->ndels, b->ndels);
    for (size_t i = 0; i < a->ndels; i++)
        cr_assert(a->dels[i].level == b->dels[i].level && a->dels[i].number == b->dels[i].number,
                  "deletion %zu differs", i);
    cr_assert_eq(a->nadds, b->nadds, "%zu vs %zu additions", a->nadds, b->nadds);
    for (size_t i = 0; i < a->nadds; i++) {
        cr_assert_eq(a->adds[i].level, b->adds[i].level, "addition %zu: level", i);
        mt_meta_eq(a->adds[i].meta, b->adds[i].meta, a->adds[i].level, i);
    }
}


/* Shared by the suites: key ranges and large edits. */
static MT_MAYBE_UNUSED void mt_key(char *out, unsigned k) { snprintf(out, 16, "k%08u", k); }

static MT_MAYBE_UNUSED void mt_add_range(struct version_edit *e, unsigned level, uint64_t number, unsigned lo, unsigned hi)
{
    char a[16], b[16];
    mt_key(a, lo);
    mt_key(b, hi);
    mt_add(e, level, number, a, b);
}

/* Replaces the big table `*prev` (0: none) in level 1 with a new one whose
 * keys are 60,000 bytes long: about 120 KB of manifest per edit. */
static MT_MAYBE_UNUSED int mt_apply_big(manifest *m, uint64_t *prev, uint64_t *added)
{
    static uint8_t lo[60000], hi[60000];
    uint64_t num = manifest_new_file_number(m);
    memset(lo, 'b', sizeof lo);
    memset(hi, 'b', sizeof hi);
    put_u64(lo + sizeof lo - 8, num);
    put_u64(hi + sizeof hi - 8, num);
    hi[sizeof hi - 1] = 0xff;
    mt_touch_table(num);
    struct table_meta *meta = mt_meta_bytes(num, lo, sizeof lo, hi, sizeof hi, num);
    struct version_edit e;
    version_edit_init(&e);
    MT_OK(version_edit_add(&e, 1, meta));
    table_meta_unref(meta);
    if (*prev) mt_del(&e, 1, *prev);
    int rc = manifest_apply(m, &e);
    version_edit_free(&e);
    *added = num;
    if (rc == TIND_OK) *prev = num;
    return rc;
}

#endif
