/* The strategies' pickers (compaction/pick.c, leveled.c, tiered.c, fifo.c)
 * and the manifest changes they need (level 0 by max_seq, created times).
 *
 * Versions are built through a real manifest in a scratch folder from fake
 * metas (no table files: the pickers never read them), so every version a
 * test sees has passed the manifest's invariant checks. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compaction/compaction.h"
#include "compaction/pick.h"
#include "lsm/ikey.h"
#include "lsm/version.h"
#include "src/util/buf.h"
#include "src/util/err.h"
#include "tests/support/testutil.h"

#define MB (UINT64_C(1) << 20)
#define GB (UINT64_C(1) << 30)

static char *g_dir;

static void pt_setup(void)
{
    g_dir = tu_mkdtemp("pick");
    cr_assert_not_null(g_dir, "mkdtemp: %s", strerror(errno));
}

static void pt_teardown(void)
{
    tu_rmtree(g_dir);
    free(g_dir);
    g_dir = NULL;
}

TestSuite(pick, .init = pt_setup, .fini = pt_teardown);

#define PT_OK(expr)                                                                                        \
    do {                                                                                                   \
        int rc_ = (expr);                                                                                  \
        cr_assert_eq(rc_, TIND_OK, "%s: %d (%s): %s", #expr, rc_, tind_strerror(rc_), err_msg());         \
    } while (0)

/* One fake table: level, number, user keys [lo, hi], bytes, seq range, created. */
struct pt_table {
    unsigned level;
    uint64_t number;
    const char *lo, *hi;
    uint64_t size, min_seq, max_seq, created;
};

static struct table_meta *pt_meta(const struct pt_table *t)
{
    struct table_meta *m = table_meta_new(g_dir, t->number);
    cr_assert_not_null(m);
    m->size = t->size;
    m->entries = 10;
    m->min_seq = t->min_seq;
    m->max_seq = t->max_seq;
    m->created = t->created;
    m->smallest_tag = tag_pack(t->max_seq, KIND_PUT);
    m->largest_tag = tag_pack(t->min_seq, KIND_PUT);
    PT_OK(buf_append(&m->smallest, t->lo, strlen(t->lo)));
    PT_OK(buf_append(&m->largest, t->hi, strlen(t->hi)));
    return m;
}

/* The version holding tables t[0..n), built by one edit on a fresh manifest. */
static struct version *pt_version(const struct pt_table *t, size_t n)
{
    static unsigned seq;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/v%u", g_dir, seq++);
    cr_assert_eq(mkdir(dir, 0755), 0, "mkdir %s: %s", dir, strerror(errno));
    manifest *man;
    PT_OK(manifest_open(dir, 1, &man));
    struct version_edit e;
    version_edit_init(&e);
    for (size_t i = 0; i < n; i++) {
        struct table_meta *m = pt_meta(&t[i]);
        PT_OK(version_edit_add(&e, t[i].level, m));
        table_meta_unref(m);
    }
    PT_OK(manifest_apply(man, &e));
    version_edit_free(&e);
    struct version *v = manifest_current(man);
    manifest_close(man);
    return v;
}

static struct compaction_config pt_cfg(unsigned strategy)
{
    struct compaction_config c;
    memset(&c, 0, sizeof c);
    c.strategy = strategy;
    c.l0_trigger = 4;
    c.level_ratio = 10;
    c.table_target_bytes = 64 * MB;
    c.tier_width = 4;
    return c;
}

/* A job's inputs as "level:number,...", in the job's order. */
static const char *pt_inputs(const struct compaction_job *j)
{
    static char s[4096];
    size_t o = 0;
    s[0] = 0;
    for (size_t i = 0; i < j->ninputs && o < sizeof s - 64; i++)
        o += (size_t)snprintf(s + o, sizeof s - o, "%s%u:%llu", i ? "," : "", j->inputs[i].level,
                              (unsigned long long)j->inputs[i].meta->number);
    return s;
}

/* Picks with c and checks the job: kind, out_level and inputs; NULL want: no job. */
static struct compaction_job *pt_expect(const struct compaction_config *c, const struct version *v,
                                        const uint64_t *busy, size_t nbusy, uint64_t now, unsigned kind,
                                        unsigned out_level, const char *want)
{
    struct compaction_job *j = (struct compaction_job *)1;
    PT_OK(compaction_pick(c, v, busy, nbusy, now, &j));
    if (!want) {
        cr_assert_null(j, "expected no job, got kind %u to level %u: %s", j->kind, j->out_level, pt_inputs(j));
        return NULL;
    }
    cr_assert_not_null(j, "expected a job with %s, got none", want);
    cr_assert_str_eq(pt_inputs(j), want, "inputs %s, want %s", pt_inputs(j), want);
    cr_assert_eq(j->kind, kind, "kind %u, want %u (%s)", j->kind, kind, want);
    cr_assert_eq(j->out_level, out_level, "out_level %u, want %u (%s)", j->out_level, out_level, want);
    cr_assert_geq(j->score, 1.0, "score %f below 1", j->score);
    return j;
}

static void pt_expect_bottommost(struct compaction_job *j, int want)
{
    cr_assert_eq(j->bottommost, want, "bottommost %d, want %d (%s)", j->bottommost, want, pt_inputs(j));
    compaction_job_free(j);
}

/* ---- the manifest's side: level 0 order, created times --------------------------- */

Test(pick, level0_is_ordered_newest_first_by_max_seq)
{
    /* Table 9 was written by a merge of old data: a new number, old seqs. */
    struct pt_table t[] = {
        {0, 9, "a", "z", MB, 1, 30, 0},
        {0, 4, "a", "z", MB, 31, 40, 0},
        {0, 5, "a", "z", MB, 41, 50, 0},
        {0, 7, "a", "z", MB, 41, 50, 0}, /* a tie on max_seq: the higher number first */
    };
    struct version *v = pt_version(t, 4);
    const uint64_t want[] = {7, 5, 4, 9};
    cr_assert_eq(v->nfiles[0], 4u);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(v->files[0][i]->number, want[i], "level 0 #%zu is table %llu, want %llu", i,
                     (unsigned long long)v->files[0][i]->number, (unsigned long long)want[i]);
    version_unref(v);
}

Test(pick, created_round_trips_through_the_manifest_and_absent_reads_as_zero)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/m", g_dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    manifest *man;
    PT_OK(manifest_open(dir, 1, &man));
    struct pt_table t[] = {
        {0, 1, "a", "c", MB, 1, 10, UINT64_C(1700000000)},
        {0, 2, "b", "d", MB, 11, 20, 0},
        {3, 3, "x", "z", MB, 21, 30, UINT64_MAX},
    };
    struct version_edit e, d;
    version_edit_init(&e);
    for (size_t i = 0; i < 3; i++) {
        struct table_meta *m = pt_meta(&t[i]);
        PT_OK(version_edit_add(&e, t[i].level, m));
        table_meta_unref(m);
    }
    /* Plain adds first, then the timed ones (tag 6), and a decoded edit
     * re-encodes to the same bytes. */
    buf b, b2;
    buf_init(&b);
    buf_init(&b2);
    PT_OK(version_edit_encode(&e, &b));
    PT_OK(version_edit_decode(b.p, b.len, dir, "M", 0, &d));
    cr_assert_eq(d.nadds, 3u);
    cr_assert(d.adds[0].meta->number == 2 && d.adds[0].meta->created == 0);
    cr_assert(d.adds[1].meta->number == 1 && d.adds[1].meta->created == UINT64_C(1700000000));
    cr_assert(d.adds[2].meta->number == 3 && d.adds[2].meta->created == UINT64_MAX);
    PT_OK(version_edit_encode(&d, &b2));
    cr_assert(b.len == b2.len && !memcmp(b.p, b2.p, b.len), "re-encoded %s, first %s", tu_hex(b2.p, b2.len),
              tu_hex(b.p, b.len));
    version_edit_free(&d);
    buf_free(&b2);

    PT_OK(manifest_apply(man, &e));
    version_edit_free(&e);
    manifest_close(man);
    PT_OK(manifest_open(dir, 0, &man));
    struct version *v = manifest_current(man);
    cr_assert_eq(v->nfiles[0], 2u);
    cr_assert(v->files[0][0]->number == 2 && v->files[0][0]->created == 0, "absent created reads as 0");
    cr_assert(v->files[0][1]->number == 1 && v->files[0][1]->created == UINT64_C(1700000000));
    cr_assert(v->nfiles[3] == 1 && v->files[3][0]->created == UINT64_MAX);
    version_unref(v);
    manifest_close(man);

    /* Tag 6 with a zero time is refused: 0 has one encoding, the plain add. */
    buf_clear(&b);
    struct table_meta *m = pt_meta(&t[0]);
    version_edit_init(&e);
    PT_OK(version_edit_add(&e, 0, m));
    table_meta_unref(m);
    PT_OK(version_edit_encode(&e, &b));
    version_edit_free(&e);
    cr_assert_eq(b.p[0], 6, "a timed add is tag 6: %s", tu_hex(b.p, b.len));
    /* created 1700000000 is a 5-byte varint just before the end tag. */
    size_t at = b.len - 1 - 5;
    uint8_t bad[256];
    cr_assert_lt(b.len, sizeof bad);
    memcpy(bad, b.p, at);
    bad[at] = 0; /* created 0 */
    bad[at + 1] = 0; /* end */
    cr_assert_eq(version_edit_decode(bad, at + 2, dir, "M", 0, &d), TIND_CORRUPTION);
    buf_free(&b);
}

/* ---- leveled ------------------------------------------------------------------------- */

Test(pick, leveled_level0_compacts_at_l0_trigger)
{
    struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
    struct pt_table t[] = {
        {0, 1, "a", "m", MB, 1, 10, 0},
        {0, 2, "c", "p", MB, 11, 20, 0},
        {0, 3, "b", "k", MB, 21, 30, 0},
        {0, 4, "a", "d", MB, 31, 40, 0},
    };
    struct version *v = pt_version(t, 3);
    pt_expect(&c, v, NULL, 0, 0, 0, 0, NULL);
    version_unref(v);
    /* An empty tree's base level is the last: level 0 goes straight there. */
    v = pt_version(t, 4);
    struct compaction_job *j = pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 6, "0:4,0:3,0:2,0:1");
    cr_assert_float_eq(j->score, 1.0, 1e-9);
    pt_expect_bottommost(j, 1);
    version_unref(v);
}

Test(pick, leveled_targets_are_sized_from_the_bottom_up)
{
    struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
    uint64_t target[LSM_LEVELS];
    unsigned bottom, base;
    struct version *v = pt_version(NULL, 0);
    leveled_targets(&c, v, target, &bottom, &base);
    cr_assert(bottom == 6 && base == 6, "empty: bottom %u base %u", bottom, base);
    for (unsigned l = 0; l < LSM_LEVELS; l++) cr_assert_eq(target[l], 0u);
    version_unref(v);

    /* 1 GiB in L6: L5 gets 1/10 of it; L4's 1/100 is under the table size. */
    struct pt_table t1[16];
    static char keys[16][2][8];
    for (unsigned i = 0; i < 16; i++) {
        snprintf(keys[i][0], 8, "k%02ua", i);
        snprintf(keys[i][1], 8, "k%02uz", i);
        t1[i] = (struct pt_table){6, 100 + i, keys[i][0], keys[i][1], 64 * MB, 1, 10, 0};
    }
    v = pt_version(t1, 16);
    leveled_targets(&c, v, target, &bottom, &base);
    cr_assert(bottom == 6 && base == 5, "1 GiB: bottom %u base %u", bottom, base);
    cr_assert_eq(target[5], GB / 10);
    cr_assert_eq(target[4], 0u);
    cr_assert_eq(target[6], 0u, "the bottom has no target");
    version_unref(v);

    struct pt_table big = {6, 1, "a", "z", 100 * GB, 1, 10, 0};
    v = pt_version(&big, 1);
    leveled_targets(&c, v, target, &bottom, &base);
    cr_assert(bottom == 6 && base == 3, "100 GiB: bottom %u base %u", bottom, base);
    cr_assert_eq(target[5], 10 * GB);
    cr_assert_eq(target[4], GB);
    cr_assert_eq(target[3], GB / 10);
    cr_assert_eq(target[2], 0u);
    version_unref(v);

    /* Under ratio x table size at the bottom: no level has a target. */
    big.size = 500 * MB;
    v = pt_version(&big, 1);
    leveled_targets(&c, v, target, &bottom, &base);
    cr_assert(bottom == 6 && base == 6, "500 MiB: bottom %u base %u", bottom, base);
    version_unref(v);

    /* The last non-empty level sets the targets, wherever it is. */
    big.level = 4;
    big.size = GB;
    v = pt_version(&big, 1);
    leveled_targets(&c, v, target, &bottom, &base);
    cr_assert(bottom == 4 && base == 3 && target[3] == GB / 10, "L4 1 GiB: bottom %u base %u", bottom, base);
    version_unref(v);
}

Test(pick, leveled_level0_goes_to_the_base_level)
{
    struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
    struct pt_table t[] = {
        {6, 1, "a", "z", GB, 1, 10, 0},
        {0, 2, "b", "c", MB, 11, 20, 0},
        {0, 3, "b", "c", MB, 21, 30, 0},
        {0, 4, "b", "c", MB, 31, 40, 0},
        {0, 5, "b", "c", MB, 41, 50, 0},
    };
    struct version *v = pt_version(t, 5);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 5, "0:5,0:4,0:3,0:2"), 0);
    version_unref(v);
    /* Keys below everything in L6: nothing older overlaps them. */
    struct pt_table u[] = {
        {6, 1, "m", "z", GB, 1, 10, 0},
        {0, 2, "a", "c", MB, 11, 20, 0},
        {0, 3, "b", "d", MB, 21, 30, 0},
        {0, 4, "b", "c", MB, 31, 40, 0},
        {0, 5, "a", "b", MB, 41, 50, 0},
    };
    v = pt_version(u, 5);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 5, "0:5,0:4,0:3,0:2"), 1);
    version_unref(v);
}

Test(pick, leveled_level0_takes_every_overlapping_table_and_moves_a_lone_one)
{
    struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
    /* Newest first: 5 [a,b], 4 [x,y], 3 [b,c], 2 [m,n]. The oldest, 2,
     * overlaps nothing: it moves down alone. */
    struct pt_table t[] = {
        {0, 2, "m", "n", MB, 1, 10, 0},
        {0, 3, "b", "c", MB, 11, 20, 0},
        {0, 4, "x", "y", MB, 21, 30, 0},
        {0, 5, "a", "b", MB, 31, 40, 0},
        {6, 9, "c", "c", MB, 1, 1, 0}, /* small: the base is L6 */
    };
    struct version *v = pt_version(t, 4);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MOVE, 6, "0:2"), 1);
    /* With 2 busy, 3 seeds: it pulls in the newer 5 that overlaps it. */
    uint64_t busy[] = {2};
    pt_expect(&c, v, busy, 1, 0, 0, 0, NULL); /* a level-0 job runs: no second one */
    version_unref(v);
    v = pt_version(t + 1, 4);
    c.l0_trigger = 3;
    /* 3 overlaps 5 and the L6 table [c,c]: one merge of all three. */
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 6, "0:5,0:3,6:9"), 1);
    /* L6's table busy: that closure is blocked, and so is every seed that
     * reaches it; 4 [x,y] alone can move. */
    uint64_t busy9[] = {9};
    pt_expect_bottommost(pt_expect(&c, v, busy9, 1, 0, JOB_MOVE, 6, "0:4"), 1);
    version_unref(v);
}

/* L6: two 500 MiB tables [a,c] and [d,f] (1 GiB: L5 target 102.4 MiB). */
static const struct pt_table pt_l6[] = {
    {6, 1, "a", "c", 512 * MB, 1, 10, 0},
    {6, 2, "d", "f", 512 * MB, 1, 10, 0},
};

Test(pick, leveled_picks_the_least_overlap_below_and_moves_what_overlaps_nothing)
{
    struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
    struct pt_table t[5];
    memcpy(t, pt_l6, sizeof pt_l6);
    t[2] = (struct pt_table){5, 3, "b", "b", 40 * MB, 11, 20, 0}; /* 512/40 = 12.8 */
    t[3] = (struct pt_table){5, 4, "e", "e", 80 * MB, 11, 20, 0}; /* 512/80 = 6.4 */
    t[4] = (struct pt_table){5, 5, "x", "y", 10 * MB, 11, 20, 0}; /* nothing below */
    struct version *v = pt_version(t, 4);
    struct compaction_job *j = pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 6, "5:4,6:2");
    cr_assert_float_eq(j->score, 120.0 * MB / (double)(GB / 10), 1e-9);
    pt_expect_bottommost(j, 1);
    version_unref(v);
    v = pt_version(t, 5);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MOVE, 6, "5:5"), 1);
    version_unref(v);
}

Test(pick, leveled_skips_busy_tables_and_jobs_that_would_meet_them)
{
    struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
    struct pt_table t[5];
    memcpy(t, pt_l6, sizeof pt_l6);
    t[2] = (struct pt_table){5, 3, "b", "b", 40 * MB, 11, 20, 0};
    t[3] = (struct pt_table){5, 4, "e", "e", 80 * MB, 11, 20, 0};
    t[4] = (struct pt_table){5, 5, "x", "y", 10 * MB, 11, 20, 0};
    struct version *v = pt_version(t, 5);
    uint64_t b1[] = {5};
    pt_expect_bottommost(pt_expect(&c, v, b1, 1, 0, JOB_MERGE, 6, "5:4,6:2"), 1);
    /* 4's overlap below is busy: the next best is 3. Busy bytes leave the
     * score: 40 + 80 of 130 MiB still count, over the 102.4 MiB target. */
    uint64_t b2[] = {2};
    pt_expect_bottommost(pt_expect(&c, v, b2, 1, 0, JOB_MOVE, 6, "5:5"), 1);
    uint64_t b3[] = {2, 5};
    pt_expect_bottommost(pt_expect(&c, v, b3, 2, 0, JOB_MERGE, 6, "5:3,6:1"), 1);
    /* Busy tables leave the score: 40 MiB left is under the target. */
    uint64_t b4[] = {4, 5};
    pt_expect(&c, v, b4, 2, 0, 0, 0, NULL);
    /* All of L6 busy: only 5, which meets nothing there, can go. */
    uint64_t b5[] = {1, 2};
    pt_expect_bottommost(pt_expect(&c, v, b5, 2, 0, JOB_MOVE, 6, "5:5"), 1);
    uint64_t b6[] = {1, 2, 5};
    pt_expect(&c, v, b6, 3, 0, 0, 0, NULL);
    version_unref(v);
}

Test(pick, leveled_highest_score_goes_first)
{
    struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
    struct pt_table t[16];
    size_t n = 0;
    t[n++] = (struct pt_table){6, 1, "a", "z", GB, 1, 10, 0};
    t[n++] = (struct pt_table){5, 2, "b", "c", 100 * MB, 11, 20, 0};
    t[n++] = (struct pt_table){5, 3, "d", "e", 100 * MB, 11, 20, 0};
    t[n++] = (struct pt_table){5, 4, "f", "g", 100 * MB, 11, 20, 0}; /* L5: 300 / 102.4: 2.93 */
    for (unsigned i = 0; i < 12; i++)
        t[n++] = (struct pt_table){0, 10 + i, "a", "b", MB, 100 + 10 * i, 109 + 10 * i, 0};
    /* 4 level-0 tables: score 1 < 2.93. */
    struct version *v = pt_version(t, 8);
    struct compaction_job *j = pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 6, "5:2,6:1");
    cr_assert_float_eq(j->score, 300.0 * MB / (double)(GB / 10), 1e-9);
    compaction_job_free(j);
    version_unref(v);
    /* 12: score 3 > 2.93; level 0 meets 2 in L5 [b,c]. */
    v = pt_version(t, 16);
    j = pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 5, "0:21,0:20,0:19,0:18,0:17,0:16,0:15,0:14,0:13,0:12,0:11,0:10,5:2");
    cr_assert_float_eq(j->score, 3.0, 1e-9);
    pt_expect_bottommost(j, 0);
    version_unref(v);
}

Test(pick, leveled_bottommost_only_when_nothing_below_overlaps)
{
    struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
    /* 10 GiB in L6: L5 1 GiB, L4 102.4 MiB targets. L4 at 200 MiB: 1.95. */
    struct pt_table t[] = {
        {6, 1, "a", "z", 10 * GB, 1, 10, 0},
        {5, 2, "l", "n", 512 * MB, 11, 20, 0},
        {4, 3, "m", "m", 200 * MB, 21, 30, 0},
    };
    struct version *v = pt_version(t, 3);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 5, "4:3,5:2"), 0);
    version_unref(v);
    t[0].lo = "x"; /* L6 no longer meets [l,n] */
    v = pt_version(t, 3);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 5, "4:3,5:2"), 1);
    version_unref(v);
}

Test(pick, leveled_drains_levels_above_the_base)
{
    struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
    struct pt_table t[16];
    size_t n = 0;
    /* 500 MiB at the bottom: the base is L6; L3's table is left over. */
    t[n++] = (struct pt_table){6, 1, "a", "z", 500 * MB, 1, 10, 0};
    t[n++] = (struct pt_table){3, 2, "m", "m", MB, 11, 20, 0};
    struct version *v = pt_version(t, n);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MOVE, 4, "3:2"), 0);
    version_unref(v);
    /* Level 0 (score 3) goes first, into L3: the first non-empty level
     * above the base, since its data is newer than L3's. */
    for (unsigned i = 0; i < 12; i++)
        t[n++] = (struct pt_table){0, 10 + i, "a", "b", MB, 100 + 10 * i, 109 + 10 * i, 0};
    v = pt_version(t, n);
    struct compaction_job *j = pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 3,
                                         "0:21,0:20,0:19,0:18,0:17,0:16,0:15,0:14,0:13,0:12,0:11,0:10");
    pt_expect_bottommost(j, 0);
    version_unref(v);
}

/* ---- tiered --------------------------------------------------------------------------- */

static struct compaction_config pt_tiered_cfg(void)
{
    struct compaction_config c = pt_cfg(COMPACTION_TIERED);
    c.table_target_bytes = 4 * MB; /* sizes under 1 MiB count as 1 MiB */
    return c;
}

/* Level-0 flushes, oldest first: sizes[i] KiB, table 1 + i, seqs 10i+1 .. 10i+10, keys [a,z]. */
static struct version *pt_flushes(const uint64_t *kib, size_t n)
{
    struct pt_table t[64];
    cr_assert_leq(n, 64u);
    for (size_t i = 0; i < n; i++)
        t[i] = (struct pt_table){0, 1 + i, "a", "z", kib[i] << 10, 10 * i + 1, 10 * i + 10, 0};
    return pt_version(t, n);
}

Test(pick, tiered_merges_tier_width_runs_of_a_similar_size)
{
    struct compaction_config c = pt_tiered_cfg();
    const uint64_t s[] = {2048, 2048, 3000, 4000};
    struct version *v = pt_flushes(s, 3);
    pt_expect(&c, v, NULL, 0, 0, 0, 0, NULL);
    version_unref(v);
    v = pt_flushes(s, 4);
    struct compaction_job *j = pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 0, "0:4,0:3,0:2,0:1");
    cr_assert_float_eq(j->score, 1.0, 1e-9);
    pt_expect_bottommost(j, 1);
    version_unref(v);
    /* Runs under a quarter of the table size all count as that size. */
    const uint64_t tiny[] = {1, 900, 10, 300};
    v = pt_flushes(tiny, 4);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 0, "0:4,0:3,0:2,0:1"), 1);
    version_unref(v);
    /* 2 MiB and 4.1 MiB are more than a factor of 2 apart. */
    const uint64_t apart[] = {4200, 2048, 2048, 2048};
    v = pt_flushes(apart, 4);
    pt_expect(&c, v, NULL, 0, 0, 0, 0, NULL);
    version_unref(v);
}

Test(pick, tiered_merges_only_a_contiguous_stretch_bottommost_with_the_oldest)
{
    struct compaction_config c = pt_tiered_cfg();
    /* Oldest first: a big old run, then four similar: the four merge, and
     * the big run under them keeps the merge from being bottommost. */
    const uint64_t a[] = {65536, 2048, 2048, 2048, 2048};
    struct version *v = pt_flushes(a, 5);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 0, "0:5,0:4,0:3,0:2"), 0);
    version_unref(v);
    /* Four similar runs but a big one between them: no stretch of four. */
    const uint64_t b[] = {2048, 2048, 65536, 2048, 2048};
    v = pt_flushes(b, 5);
    pt_expect(&c, v, NULL, 0, 0, 0, 0, NULL);
    version_unref(v);
    /* The oldest four are similar, the two newest are not part of them. */
    const uint64_t d[] = {2048, 2048, 2048, 2048, 65536, 2048};
    v = pt_flushes(d, 6);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 0, "0:4,0:3,0:2,0:1"), 1);
    version_unref(v);
    /* Two stretches: the longer (five of the newest) goes first. */
    const uint64_t e[] = {65536, 65536, 65536, 65536, 2048, 2048, 2048, 2048, 2048};
    v = pt_flushes(e, 9);
    struct compaction_job *j = pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 0, "0:9,0:8,0:7,0:6,0:5");
    cr_assert_float_eq(j->score, 5.0 / 4.0, 1e-9);
    pt_expect_bottommost(j, 0);
    version_unref(v);
}

Test(pick, tiered_recognizes_the_runs_a_merge_wrote)
{
    struct compaction_config c = pt_tiered_cfg();
    /* Oldest: a run of three key-disjoint tables whose seq ranges
     * interleave (a merge of seqs 1..30), then three flushes. */
    struct pt_table t[] = {
        {0, 7, "a", "h", 800 << 10, 1, 30, 0},  {0, 8, "i", "p", 800 << 10, 2, 29, 0},
        {0, 9, "q", "z", 800 << 10, 3, 28, 0},  {0, 10, "a", "z", 2 * MB, 31, 40, 0},
        {0, 11, "a", "z", 2 * MB, 41, 50, 0},   {0, 12, "a", "z", 2 * MB, 51, 60, 0},
    };
    struct version *v = pt_version(t, 6);
    struct pick_run *runs;
    size_t nruns;
    PT_OK(pick_l0_runs(v, &runs, &nruns));
    cr_assert_eq(nruns, 4u);
    cr_assert(runs[3].first == 3 && runs[3].n == 3 && runs[3].bytes == 2400 << 10, "the merged run: %zu+%zu",
              runs[3].first, runs[3].n);
    free(runs);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 0, "0:12,0:11,0:10,0:7,0:8,0:9"), 1);
    version_unref(v);
    /* Sequential keys: nothing interleaves in seq, but key-disjoint tables
     * are glued into one run. Walking newest first, the flush [c,d] meets
     * nothing of [q,z] and [i,p], so they join it; [a,h] overlaps [c,d] and
     * starts the next run. (Any grouping into key-disjoint, recency-
     * contiguous runs is sound; this one is what the greedy walk finds.) */
    struct pt_table s[] = {
        {0, 1, "a", "h", MB, 1, 10, 0},
        {0, 2, "i", "p", MB, 11, 20, 0},
        {0, 3, "q", "z", MB, 21, 30, 0},
        {0, 4, "c", "d", MB, 31, 40, 0},
    };
    v = pt_version(s, 4);
    PT_OK(pick_l0_runs(v, &runs, &nruns));
    cr_assert(nruns == 2 && runs[0].n == 3 && runs[1].n == 1, "%zu runs", nruns);
    free(runs);
    version_unref(v);
}

Test(pick, tiered_skips_busy_runs)
{
    struct compaction_config c = pt_tiered_cfg();
    const uint64_t s[] = {2048, 2048, 2048, 2048, 2048};
    struct version *v = pt_flushes(s, 4);
    uint64_t b1[] = {2};
    pt_expect(&c, v, b1, 1, 0, 0, 0, NULL);
    version_unref(v);
    v = pt_flushes(s, 5);
    uint64_t b2[] = {5};
    pt_expect_bottommost(pt_expect(&c, v, b2, 1, 0, JOB_MERGE, 0, "0:4,0:3,0:2,0:1"), 1);
    uint64_t b3[] = {3};
    pt_expect(&c, v, b3, 1, 0, 0, 0, NULL);
    version_unref(v);
}

/* ---- FIFO ----------------------------------------------------------------------------- */

static struct compaction_config pt_fifo_cfg(void)
{
    struct compaction_config c = pt_cfg(COMPACTION_FIFO);
    c.table_target_bytes = 4 * MB; /* small: under 1 MiB */
    return c;
}

Test(pick, fifo_drops_the_oldest_past_the_byte_limit)
{
    struct compaction_config c = pt_fifo_cfg();
    c.fifo_max_bytes = 35 * MB;
    /* Numbers out of age order: age is max_seq. */
    struct pt_table t[] = {
        {0, 9, "a", "z", 10 * MB, 1, 10, 0},  {0, 3, "a", "z", 10 * MB, 11, 20, 0},
        {0, 4, "a", "z", 10 * MB, 21, 30, 0}, {0, 1, "a", "z", 10 * MB, 31, 40, 0},
        {0, 2, "a", "z", 10 * MB, 41, 50, 0},
    };
    struct version *v = pt_version(t, 3);
    pt_expect(&c, v, NULL, 0, 0, 0, 0, NULL); /* 30 MiB */
    version_unref(v);
    v = pt_version(t, 5);
    struct compaction_job *j = pt_expect(&c, v, NULL, 0, 0, JOB_DROP, 0, "0:9,0:3");
    cr_assert_float_eq(j->score, 50.0 / 35.0, 1e-9);
    compaction_job_free(j);
    /* Never a busy table, and never past one: newer data is not dropped
     * while older stays. */
    uint64_t b1[] = {9};
    pt_expect(&c, v, b1, 1, 0, 0, 0, NULL);
    uint64_t b2[] = {3};
    compaction_job_free(pt_expect(&c, v, b2, 1, 0, JOB_DROP, 0, "0:9"));
    version_unref(v);
}

Test(pick, fifo_drops_tables_past_their_ttl)
{
    struct compaction_config c = pt_fifo_cfg();
    c.fifo_ttl_seconds = 3600;
    const uint64_t now = 1700000000;
    struct pt_table t[] = {
        {0, 1, "a", "z", 10 * MB, 1, 10, now - 7200},     /* expired */
        {0, 2, "a", "z", 10 * MB, 11, 20, 0},             /* unknown: never */
        {0, 3, "a", "z", 10 * MB, 21, 30, now - 3601},    /* expired */
        {0, 4, "a", "z", 10 * MB, 31, 40, now - 3600},    /* exactly the ttl: not older */
        {3, 5, "a", "z", 10 * MB, 0, 0, now - 100000},    /* any level */
    };
    struct version *v = pt_version(t, 5);
    compaction_job_free(pt_expect(&c, v, NULL, 0, now, JOB_DROP, 0, "3:5,0:1,0:3"));
    uint64_t busy[] = {1, 5};
    compaction_job_free(pt_expect(&c, v, busy, 2, now, JOB_DROP, 0, "0:3"));
    /* No TTL: nothing is due. */
    c.fifo_ttl_seconds = 0;
    pt_expect(&c, v, NULL, 0, now, 0, 0, NULL);
    version_unref(v);
}

Test(pick, fifo_merges_many_small_level0_tables)
{
    struct compaction_config c = pt_fifo_cfg();
    struct pt_table t[8];
    for (unsigned i = 0; i < 8; i++)
        t[i] = (struct pt_table){0, 1 + i, "a", "z", 900 << 10, 10 * i + 1, 10 * i + 10, 0};
    struct version *v = pt_version(t, 3);
    pt_expect(&c, v, NULL, 0, 0, 0, 0, NULL);
    version_unref(v);
    /* Six small tables: the oldest that fit in one 4 MiB table (four). */
    v = pt_version(t, 6);
    struct compaction_job *j = pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 0, "0:4,0:3,0:2,0:1");
    cr_assert_float_eq(j->score, 6.0 / 4.0, 1e-9);
    pt_expect_bottommost(j, 1);
    /* A busy one splits them: 5 and 6 are too few, 1..3 too. */
    uint64_t busy[] = {4};
    pt_expect(&c, v, busy, 1, 0, 0, 0, NULL);
    version_unref(v);
    /* A large table is never rewritten and breaks a stretch. */
    t[3].size = 2 * MB;
    v = pt_version(t, 7);
    pt_expect(&c, v, NULL, 0, 0, 0, 0, NULL);
    version_unref(v);
    v = pt_version(t, 8);
    pt_expect_bottommost(pt_expect(&c, v, NULL, 0, 0, JOB_MERGE, 0, "0:8,0:7,0:6,0:5"), 0);
    version_unref(v);
}

/* ---- major compaction and dispatch ----------------------------------------------------- */

static struct compaction_job *pt_all(const struct compaction_config *c, const struct version *v)
{
    struct compaction_job *j = (struct compaction_job *)1;
    PT_OK(compaction_pick_all(c, v, &j));
    return j;
}

Test(pick, pick_all_per_strategy)
{
    struct compaction_config lc = pt_cfg(COMPACTION_LEVELED), tc = pt_tiered_cfg(), fc = pt_fifo_cfg();
    struct version *v = pt_version(NULL, 0);
    cr_assert_null(pt_all(&lc, v));
    cr_assert_null(pt_all(&tc, v));
    cr_assert_null(pt_all(&fc, v));
    version_unref(v);

    struct pt_table t[] = {
        {6, 1, "a", "f", MB, 1, 10, 0},  {6, 2, "g", "z", MB, 1, 10, 0},  {3, 3, "b", "c", MB, 11, 20, 0},
        {0, 4, "a", "z", MB, 21, 30, 0}, {0, 5, "c", "d", MB, 31, 40, 0},
    };
    v = pt_version(t, 5);
    struct compaction_job *j = pt_all(&lc, v);
    cr_assert_not_null(j);
    cr_assert_str_eq(pt_inputs(j), "0:5,0:4,3:3,6:1,6:2");
    cr_assert(j->kind == JOB_MERGE && j->out_level == LSM_LEVELS - 1 && j->bottommost);
    compaction_job_free(j);
    j = pt_all(&tc, v);
    cr_assert_not_null(j);
    cr_assert_str_eq(pt_inputs(j), "0:5,0:4,3:3,6:1,6:2");
    cr_assert(j->kind == JOB_MERGE && j->out_level == 0 && j->bottommost);
    compaction_job_free(j);
    /* FIFO merges level 0 only; deeper tables stay (and may hold older data). */
    j = pt_all(&fc, v);
    cr_assert_not_null(j);
    cr_assert_str_eq(pt_inputs(j), "0:5,0:4");
    cr_assert(j->kind == JOB_MERGE && j->out_level == 0 && !j->bottommost);
    compaction_job_free(j);
    version_unref(v);

    /* Already one run: the last level alone (leveled), or one run of level 0. */
    v = pt_version(t, 2);
    cr_assert_null(pt_all(&lc, v));
    version_unref(v);
    struct pt_table r[] = {
        {0, 1, "a", "f", MB, 1, 30, 0},
        {0, 2, "g", "z", MB, 2, 29, 0},
    };
    v = pt_version(t, 3); /* L6 and L3: two runs for tiered */
    j = pt_all(&tc, v);
    cr_assert_not_null(j);
    cr_assert_str_eq(pt_inputs(j), "3:3,6:1,6:2");
    compaction_job_free(j);
    version_unref(v);
    v = pt_version(r, 2);
    cr_assert_null(pt_all(&tc, v));
    cr_assert_null(pt_all(&fc, v));
    j = pt_all(&lc, v);
    cr_assert_not_null(j);
    cr_assert_str_eq(pt_inputs(j), "0:1,0:2");
    compaction_job_free(j);
    version_unref(v);
}

/* Regression: a knob out of range (a zero left by a caller that did not fill
 * the config) was replaced by a default of compaction/'s own, which could
 * differ from the keyspace options' default; the options layer fills every
 * field, and anything else is refused. */
Test(pick, a_config_outside_its_ranges_is_refused_not_defaulted)
{
    struct pt_table t[5];
    for (size_t i = 0; i < 5; i++) t[i] = (struct pt_table){0, 1 + i, "a", "z", 2 * MB, 10 * i + 1, 10 * i + 10, 0};
    struct version *v = pt_version(t, 5);
    for (int knob = 0; knob < 4; knob++) {
        struct compaction_config c = pt_cfg(COMPACTION_LEVELED);
        cr_assert_gt(compaction_pending_bytes(&c, v), 0, "the setup has no pending work");
        if (knob == 0) c.l0_trigger = 0;
        if (knob == 1) c.level_ratio = 1;
        if (knob == 2) c.table_target_bytes = 0;
        if (knob == 3) c.tier_width = 1;
        struct compaction_job *j = (struct compaction_job *)1;
        cr_assert_eq(compaction_pick(&c, v, NULL, 0, 0, &j), TIND_INVALID, "knob %d", knob);
        cr_assert_null(j);
        j = (struct compaction_job *)1;
        cr_assert_eq(compaction_pick_all(&c, v, &j), TIND_INVALID, "knob %d", knob);
        cr_assert_null(j);
        cr_assert_eq(compaction_pending_bytes(&c, v), 0, "knob %d", knob);
    }
    version_unref(v);
}

Test(pick, dispatch_refuses_an_unknown_strategy)
{
    struct compaction_config c = pt_cfg(7);
    struct version *v = pt_version(NULL, 0);
    struct compaction_job *j = (struct compaction_job *)1;
    cr_assert_eq(compaction_pick(&c, v, NULL, 0, 0, &j), TIND_INVALID);
    cr_assert_null(j);
    cr_assert_eq(compaction_pick_all(&c, v, &j), TIND_INVALID);
    cr_assert_null(j);
    version_unref(v);
}
