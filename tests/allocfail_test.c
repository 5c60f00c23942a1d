/* The allocation-failure loop: the fault workload (tests/support/fault_workload.c)
 * with its kth allocation failing, for k = 0, 1, 2, ... until the workload
 * completes without the fault firing. It covers the write path (batch
 * building, the commit, memtable inserts, sealing and flushing) and the open
 * path (tind_open replaying journals and loading tables, tind_keyspace_open).
 * The allocator is wrapped at link time (tests/support/alloc_fault.c):
 * libtind.a's calls fail on demand, lz4's and zstd's own do not.
 *
 * After each point: every failure reached a caller as TIND_NO_MEMORY (or
 * TIND_POISONED after a write that failed half-applied), nothing crashed or
 * leaked (under ASan), and a reopen without faults finds every acknowledged
 * batch, each failed one all or nothing.
 *
 * Kinds: the kth allocation of the workload's own thread (the caller's side
 * of every call, deterministic), once and from then on; and the kth of every
 * thread once (the workers' flushes and compactions too; their timing moves
 * the numbering a little). The default run samples the points; `make
 * fault-test POINTS=N` runs the first N of each kind. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lsm/ikey.h"
#include "lsm/level_iter.h"
#include "lsm/table.h"
#include "lsm/table_cache.h"
#include "lsm/version.h"
#include "src/util/err.h"
#include "tests/support/alloc_fault.h"
#include "tests/support/fault_loop.h"
#include "tests/support/fault_workload.h"

TestSuite(fault_alloc);

struct alloc_kind {
    const char *name;
    int forever;
    int all_threads;
};

/* Points in the default run, per kind (fewer under ThreadSanitizer, which
 * runs the workload about ten times slower). */
#ifdef __SANITIZE_THREAD__
#define ALLOC_SAMPLE_POINTS 25
#else
#define ALLOC_SAMPLE_POINTS 100
#endif
/* Seconds a point may take before it counts as a hang. */
#define ALLOC_POINT_SECONDS 120

static void alloc_check(struct fw_run *run, const char *what, int rc, const char *msg)
{
    if (run->problem[0]) return;
    if (rc != TIND_NO_MEMORY && rc != TIND_POISONED)
        snprintf(run->problem, sizeof run->problem, "%s returned %s (%s), want %s or %s", what, tind_strerror(rc),
                 msg, tind_strerror(TIND_NO_MEMORY), tind_strerror(TIND_POISONED));
    else if (!msg[0])
        snprintf(run->problem, sizeof run->problem, "%s returned %s with no message", what, tind_strerror(rc));
}

/* Allocations one fault-free workload makes, as the kind counts them. */
static uint64_t alloc_per_run(const void *kind)
{
    const struct alloc_kind *ak = kind;
    static struct fw_run run;
    cr_assert_eq(fw_run_init(&run, "allocfail", 2), 0, "mkdtemp: %s", strerror(errno));
    run.want_stats = 1;
    alloc_fault_arm(&(struct alloc_fault){.nth = UINT64_MAX, .all_threads = ak->all_threads});
    fw_workload(&run, alloc_check);
    alloc_fault_disarm();
    uint64_t seen = alloc_fault_seen();
    fw_expect_clean(&run);
    fprintf(stderr, "fault_alloc %s: the workload: %llu allocations, %llu flushes, %llu compactions\n", ak->name,
            (unsigned long long)seen, (unsigned long long)run.flushes, (unsigned long long)run.compactions);
    return seen;
}

static void alloc_arm(const void *kind, uint64_t k)
{
    const struct alloc_kind *ak = kind;
    alloc_fault_arm(&(struct alloc_fault){.nth = k, .forever = ak->forever, .all_threads = ak->all_threads});
}

static uint64_t alloc_disarm(void)
{
    alloc_fault_disarm();
    return alloc_fault_fired();
}

/* A failed allocation the workload never heard of may only be one the
 * library may do without: a block or table cache entry (the data is read
 * again next time), or, counting every thread, a worker's that no later call
 * waited on. */
static void alloc_loop(const struct alloc_kind *kind)
{
    cr_assert(alloc_fault_linked(), "the test binary was linked without the allocator --wrap flags");
    fw_fault_loop(&(struct fw_fault){.suite = "fault_alloc", .name = kind->name, .tag = "allocfail", .workers = 2,
                                     .seconds = ALLOC_POINT_SECONDS, .sample_points = ALLOC_SAMPLE_POINTS,
                                     .arm = alloc_arm, .disarm = alloc_disarm, .count = alloc_per_run,
                                     .kind = kind, .check = alloc_check});
}

Test(fault_alloc, this_thread_once)
{
    alloc_loop(&(struct alloc_kind){"this_thread_once", 0, 0});
}

Test(fault_alloc, this_thread_forever)
{
    alloc_loop(&(struct alloc_kind){"this_thread_forever", 1, 0});
}

Test(fault_alloc, all_threads_once)
{
    alloc_loop(&(struct alloc_kind){"all_threads_once", 0, 1});
}

/* ---- regressions found by the loop ------------------------------------------------------------------------ */

TestSuite(fault_alloc_regress, .timeout = 60);

/* A database with two overlapping level-0 tables in keyspace "ks" (l0_trigger
 * high enough that no compaction starts by itself). */
static tind_db *ar_open(const char *dir, tind_keyspace **ks)
{
    tind_options o;
    tind_options_init(&o);
    o.workers = 2;
    tind_db *db;
    cr_assert_eq(tind_open(dir, &o, &db), TIND_OK, "%s", tind_last_error());
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.l0_trigger = 8;
    cr_assert_eq(tind_keyspace_open(db, "ks", &ko, ks), TIND_OK, "%s", tind_last_error());
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 100; i++) {
            char k[16];
            int kl = snprintf(k, sizeof k, "key%04d", i);
            cr_assert_eq(tind_put(*ks, k, (size_t)kl, "v", 1), TIND_OK, "%s", tind_last_error());
        }
        cr_assert_eq(tind_keyspace_flush(*ks), TIND_OK, "%s", tind_last_error());
    }
    return db;
}

/* A compaction job that could not be queued for want of memory used to be
 * forgotten: no caller heard of it, and writers stalled on a full level 0
 * would have waited for it forever. Its last allocation is the queueing of
 * the next background compaction (compact_schedule). */
Test(fault_alloc_regress, compaction_that_cannot_be_queued_is_reported)
{
    cr_assert(alloc_fault_linked(), "the test binary was linked without the allocator --wrap flags");
    static struct fw_run dirs[2];
    tind_keyspace *ks;
    cr_assert_eq(fw_run_init(&dirs[0], "allocfail", 2), 0);
    cr_assert_eq(fw_run_init(&dirs[1], "allocfail", 2), 0);
    /* Count the allocations of a major compaction on the first copy. */
    tind_db *db = ar_open(dirs[0].dir, &ks);
    alloc_fault_arm(&(struct alloc_fault){.nth = UINT64_MAX});
    int rc = tind_keyspace_compact(ks);
    alloc_fault_disarm();
    cr_assert_eq(rc, TIND_OK, "%s", tind_last_error());
    uint64_t n = alloc_fault_seen();
    cr_assert_gt(n, 0u);
    cr_assert_eq(tind_close(db), TIND_OK);
    /* Fail the last one on the second. */
    db = ar_open(dirs[1].dir, &ks);
    alloc_fault_arm(&(struct alloc_fault){.nth = n - 1});
    rc = tind_keyspace_compact(ks);
    alloc_fault_disarm();
    cr_assert_eq(alloc_fault_fired(), 1u);
    cr_assert(rc == TIND_OK || rc == TIND_NO_MEMORY, "%s", tind_strerror(rc));
    if (rc == TIND_OK) {
        rc = tind_keyspace_compact(ks);
        cr_assert_eq(rc, TIND_NO_MEMORY, "the failure went unreported: %s", tind_strerror(rc));
        cr_assert(strstr(tind_last_error(), "compaction of keyspace ks"), "%s", tind_last_error());
    }
    cr_assert_eq(tind_close(db), TIND_OK);
    fw_run_cleanup(&dirs[0]);
    fw_run_cleanup(&dirs[1]);
}

/* Writes table `number` in dir: keys prefix-000000.. prefix-(n-1), long
 * enough apart that the index shortens separators. */
static int ar_write_table(const char *dir, uint64_t number, unsigned from, unsigned n, struct table_meta **out)
{
    struct table_meta *m = table_meta_new(dir, number);
    if (!m) return err_nomem();
    struct table_options o = {.block_size = 256, .restart_interval = 4};
    table_writer *w;
    int rc = table_writer_open(m->path, &o, &w);
    char k[32];
    uint8_t v[100];
    memset(v, 'v', sizeof v);
    for (unsigned i = from; i < from + n && rc == TIND_OK; i++) {
        int kl = snprintf(k, sizeof k, "key-%06u-%s", i, i % 2 ? "abcdefgh" : "zz");
        rc = table_writer_add(w, (const uint8_t *)k, (size_t)kl, tag_pack(i + 1, KIND_PUT), v, sizeof v);
    }
    struct table_props p;
    table_props_init(&p);
    if (rc == TIND_OK) rc = table_writer_finish(w, &p, &m->size);
    else if (w) table_writer_abandon(w);
    if (rc == TIND_OK) rc = table_meta_set_props(m, &p, m->size);
    table_props_free(&p);
    if (rc) {
        table_meta_unref(m);
        return rc;
    }
    *out = m;
    return TIND_OK;
}

/* A failed allocation in a table writer's index (shortening a separator)
 * came back as TIND_NO_MEMORY with no message. */
Test(fault_alloc_regress, every_failed_allocation_of_a_table_writer_has_a_message)
{
    cr_assert(alloc_fault_linked(), "the test binary was linked without the allocator --wrap flags");
    static struct fw_run run;
    cr_assert_eq(fw_run_init(&run, "allocfail", 1), 0);
    uint64_t k, failures = 0;
    for (k = 0;; k++) {
        struct table_meta *m = NULL;
        err_clear();
        alloc_fault_arm(&(struct alloc_fault){.nth = k});
        int rc = ar_write_table(run.dir, 1 + k, 0, 300, &m);
        alloc_fault_disarm();
        if (rc) {
            failures++;
            cr_assert_eq(rc, TIND_NO_MEMORY, "point %llu: %s (%s)", (unsigned long long)k, tind_strerror(rc), err_msg());
            cr_assert(err_msg()[0], "point %llu: TIND_NO_MEMORY with no message", (unsigned long long)k);
        }
        if (m) table_meta_unref(m);
        if (!alloc_fault_fired()) break;
    }
    cr_assert_gt(failures, 0u);
    fw_run_cleanup(&run);
}

/* A level iterator that could not allocate the iterator of its next table
 * stopped with TIND_NO_MEMORY and no message. */
Test(fault_alloc_regress, every_failed_allocation_of_a_level_iterator_has_a_message)
{
    cr_assert(alloc_fault_linked(), "the test binary was linked without the allocator --wrap flags");
    static struct fw_run run;
    cr_assert_eq(fw_run_init(&run, "allocfail", 1), 0);
    struct table_meta *files[3];
    for (unsigned t = 0; t < 3; t++)
        cr_assert_eq(ar_write_table(run.dir, 10 + t, t * 1000, 200, &files[t]), TIND_OK, "%s", err_msg());
    table_cache *tc = table_cache_new(16, NULL);
    cr_assert_not_null(tc);
    uint64_t k, failures = 0;
    for (k = 0;; k++) {
        iiter *it = level_iter_new(tc, 1, files, 3);
        cr_assert_not_null(it);
        size_t n = 0;
        err_clear();
        alloc_fault_arm(&(struct alloc_fault){.nth = k});
        for (iiter_seek_first(it); it->valid; iiter_next(it)) n++;
        int rc = iiter_status(it);
        alloc_fault_disarm();
        if (rc) {
            failures++;
            cr_assert_eq(rc, TIND_NO_MEMORY, "point %llu: %s (%s)", (unsigned long long)k, tind_strerror(rc), err_msg());
            cr_assert(err_msg()[0], "point %llu: TIND_NO_MEMORY with no message", (unsigned long long)k);
        } else {
            cr_assert_eq(n, 600u);
        }
        iiter_destroy(it);
        if (!alloc_fault_fired()) break;
    }
    cr_assert_gt(failures, 0u);
    for (unsigned t = 0; t < 3; t++) table_meta_unref(files[t]); /* before the cache that opened them */
    table_cache_free(tc);
    fw_run_cleanup(&run);
}
