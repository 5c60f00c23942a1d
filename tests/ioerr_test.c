/* The I/O-error loop: the fault workload (tests/support/fault_workload.c)
 * with its kth file operation failing, for k = 0, 1, 2, ... until the
 * workload completes without the fault firing; for EIO, ENOSPC and torn
 * writes, once and forever. After each point: every failure reached a caller
 * with the matching status and a message naming the operation and the file,
 * journal and manifest failures poisoned the database, a failed journal sync
 * (or the journals' directory sync after a rotation) failed the very call
 * that ran it (no call returned TIND_OK after it, so no write was
 * acknowledged over it), a fault no caller heard of was the removal of a
 * file nothing needs, nothing hung (an
 * alarm ends a stuck point), and a reopen without faults finds every
 * acknowledged batch, each failed one all or nothing.
 *
 * The default run samples the points; `make fault-test` runs every one,
 * `make fault-test POINTS=N` N of each kind spread over the whole workload
 * (TIND_FAULT_FULL=1, TIND_FAULT_POINTS=N; 0: all). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/util/file.h"
#include "tests/support/expect.h"
#include "tests/support/fault_env.h"
#include "tests/support/fault_loop.h"
#include "tests/support/fault_workload.h"
#include "tests/support/testutil.h"

TestSuite(fault_io);

struct io_kind {
    const char *name;
    int err;
    int short_write;
    int forever;
    int want_rc;
};

static const struct io_kind *g_kind;

/* Points in the default run, per kind (fewer under ThreadSanitizer, which
 * runs the workload about ten times slower). */
#ifdef __SANITIZE_THREAD__
#define IO_SAMPLE_POINTS 15
#else
#define IO_SAMPLE_POINTS 60
#endif
/* Seconds a point may take before it counts as a hang. */
#define IO_POINT_SECONDS 120

static const char *const op_words[] = {"open", "write", "read", "sync", "truncate", "rename", "unlink",
                                       "mkdir", "rmdir", "stat"};

static void io_check(struct fw_run *run, const char *what, int rc, const char *msg)
{
    if (run->problem[0]) return;
    if (rc != g_kind->want_rc && rc != TIND_POISONED) {
        snprintf(run->problem, sizeof run->problem, "%s returned %s (%s), want %s or %s", what, tind_strerror(rc),
                 msg, tind_strerror(g_kind->want_rc), tind_strerror(TIND_POISONED));
        return;
    }
    int named = 0;
    for (size_t i = 0; i < sizeof op_words / sizeof *op_words; i++) named |= strstr(msg, op_words[i]) != NULL;
    if (!strstr(msg, run->dir) || !named)
        snprintf(run->problem, sizeof run->problem, "%s: %s: the message does not name the operation and file: %s",
                 what, tind_strerror(rc), msg);
}

/* File operations one fault-free workload performs. */
static uint64_t io_ops_per_run(const void *kind)
{
    (void)kind;
    static struct fw_run run;
    cr_assert_eq(fw_run_init(&run, "ioerr", 1), 0, "mkdtemp: %s", strerror(errno));
    run.want_stats = 1;
    struct file_fault f = {.ops = (1u << FOP_COUNT) - 1, .nth = UINT64_MAX};
    file_fault_set(&f);
    fw_workload(&run, io_check);
    uint64_t seen = file_fault_seen();
    file_fault_clear();
    fw_expect_clean(&run);
    fprintf(stderr, "fault_io: the workload: %llu file operations, %llu flushes, %llu compactions, up to %llu tables, "
            "%llu journal files and %llu journal bytes\n", (unsigned long long)seen, (unsigned long long)run.flushes,
            (unsigned long long)run.compactions, (unsigned long long)run.tables_max,
            (unsigned long long)run.journal_files_max, (unsigned long long)run.journal_bytes_max);
    /* Journals are retired only after a flush, so journals past their total
     * after a write mean that its group's journal-size check found them
     * there and sealed the keyspaces pinning the oldest one: that seal's
     * journal sync is one of the points. */
    cr_assert_gt(run.journal_bytes_max, (uint64_t)FW_JOURNAL_TOTAL_MAX_BYTES,
                 "the workload's journals never pass journal_total_max_bytes (%u): no seal for the journals' size, "
                 "whose journal sync must be among the points", FW_JOURNAL_TOTAL_MAX_BYTES);
    return seen;
}

static void io_arm(const void *kind, uint64_t k)
{
    const struct io_kind *ik = kind;
    struct file_fault f = {.ops = (1u << FOP_COUNT) - 1,
                           .nth = k,
                           .err = ik->err,
                           .short_write = ik->short_write,
                           .forever = ik->forever};
    file_fault_set(&f);
}

static uint64_t io_disarm(void)
{
    uint64_t fired = file_fault_fired();
    file_fault_clear();
    return fired;
}

static const char *op_name(enum file_op op)
{
    static const char *const names[FOP_COUNT] = {
        [FOP_OPEN] = "open",         [FOP_READ] = "read",     [FOP_WRITE] = "write",
        [FOP_SYNC] = "fsync",        [FOP_DATASYNC] = "fdatasync", [FOP_RENAME] = "rename",
        [FOP_UNLINK] = "unlink",     [FOP_SYNC_DIR] = "directory fsync", [FOP_TRUNCATE] = "truncate",
        [FOP_MKDIR] = "mkdir"};
    return op < FOP_COUNT ? names[op] : "operation";
}

/* The point's first failure, and whether the same thread's operation before
 * it was a removal (an unlink or rmdir). */
static int io_first(enum file_op *op, char *path, size_t cap, int *after_removal)
{
    if (!file_fault_first(op, path, cap)) return 0;
    enum file_op prev;
    *after_removal = file_fault_first_prev(&prev) && prev == FOP_UNLINK;
    return 1;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* Failures the call running them must report (fw_unheard_fn), all in the
 * journal's leader, which runs in the writing caller's thread: an fsync or
 * fdatasync of a journal (writes acknowledged with sync durability, and
 * every flushed table, rely on it: the journal is synced before each seal),
 * and the sync of the journals' directory after a journal's creation (a
 * rotation; without it the new journal's name, and every write in it, may
 * be lost). */
static int io_unheard(char *what, size_t cap)
{
    enum file_op op;
    char path[512];
    int after_removal;
    if (!io_first(&op, path, sizeof path, &after_removal)) return 0;
    if ((op == FOP_SYNC || op == FOP_DATASYNC) && strstr(path, "/journals/")) {
        snprintf(what, cap, "%s of %s", op_name(op), path);
        return 1;
    }
    if (op == FOP_SYNC_DIR && ends_with(path, "/journals") && !after_removal) {
        snprintf(what, cap, "directory fsync of %s after a journal's creation", path);
        return 1;
    }
    return 0;
}

/* A fault the workload never heard of may only be the removal of a file
 * nothing needs any more (an obsolete table or journal, and the directory
 * sync after it): a later open removes or skips what is left. */
static int io_silent_ok(char *what, size_t cap)
{
    enum file_op op;
    char path[512];
    int after_removal;
    if (!io_first(&op, path, sizeof path, &after_removal)) return 1;
    if (op == FOP_UNLINK || (op == FOP_SYNC_DIR && after_removal)) return 1;
    snprintf(what, cap, "%s of %s%s", op_name(op), path,
             op == FOP_SYNC_DIR ? " (not after a removal)" : "");
    return 0;
}

static void io_loop(const struct io_kind *kind)
{
    g_kind = kind;
    fw_fault_loop(&(struct fw_fault){.suite = "fault_io", .name = kind->name, .tag = "ioerr", .workers = 1,
                                     .seconds = IO_POINT_SECONDS, .sample_points = IO_SAMPLE_POINTS,
                                     .arm = io_arm, .disarm = io_disarm, .count = io_ops_per_run,
                                     .kind = kind, .check = io_check, .unheard = io_unheard,
                                     .silent_ok = io_silent_ok});
}

Test(fault_io, eio_once)
{
    io_loop(&(struct io_kind){"eio_once", EIO, 0, 0, TIND_IO_ERROR});
}

Test(fault_io, eio_forever)
{
    io_loop(&(struct io_kind){"eio_forever", EIO, 0, 1, TIND_IO_ERROR});
}

Test(fault_io, enospc_once)
{
    io_loop(&(struct io_kind){"enospc_once", ENOSPC, 0, 0, TIND_NO_SPACE});
}

Test(fault_io, enospc_forever)
{
    io_loop(&(struct io_kind){"enospc_forever", ENOSPC, 0, 1, TIND_NO_SPACE});
}

Test(fault_io, short_write_once)
{
    io_loop(&(struct io_kind){"short_write_once", EIO, 1, 0, TIND_IO_ERROR});
}

Test(fault_io, short_write_forever)
{
    io_loop(&(struct io_kind){"short_write_forever", EIO, 1, 1, TIND_IO_ERROR});
}

/* ---- regressions found by the loop ------------------------------------------------------------------------ */

static char *r_dir;

static void r_setup(void)
{
    r_dir = tu_mkdtemp("ioerr");
    cr_assert_not_null(r_dir, "mkdtemp: %s", strerror(errno));
}

static void r_teardown(void)
{
    file_fault_clear();
    tu_rmtree(r_dir);
    free(r_dir);
}

TestSuite(fault_io_regress, .init = r_setup, .fini = r_teardown, .timeout = 60);

static tind_db *r_open(void)
{
    tind_options o;
    tind_options_init(&o);
    o.workers = 2;
    tind_db *db;
    EXPECT_RC(tind_open(r_dir, &o, &db), TIND_OK);
    return db;
}

static tind_keyspace *r_ks(tind_db *db, const char *name)
{
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64u << 10;
    ko.table_target_bytes = 64u << 10;
    ko.l0_trigger = 2;
    tind_keyspace *ks;
    EXPECT_RC(tind_keyspace_open(db, name, &ko, &ks), TIND_OK);
    return ks;
}

static void r_put(tind_keyspace *ks, int from, int to)
{
    char k[32], v[64];
    for (int i = from; i < to; i++) {
        int kl = snprintf(k, sizeof k, "key%06d", i);
        int vl = snprintf(v, sizeof v, "value%06d", i);
        EXPECT_RC(tind_put(ks, k, (size_t)kl, v, (size_t)vl), TIND_OK);
    }
}

static void r_check(tind_keyspace *ks, int from, int to)
{
    char k[32], v[64];
    for (int i = from; i < to; i++) {
        int kl = snprintf(k, sizeof k, "key%06d", i);
        int vl = snprintf(v, sizeof v, "value%06d", i);
        void *got;
        size_t gl;
        EXPECT_RC(tind_get(ks, k, (size_t)kl, &got, &gl), TIND_OK);
        cr_assert(gl == (size_t)vl && !memcmp(got, v, gl), "%s: wrong value", k);
        tind_free(got);
    }
}

static void r_msg_has(const char *part)
{
    cr_assert(strstr(tind_last_error(), part), "the message does not name %s: %s", part, tind_last_error());
}

/* The flush's error used to reach the caller as "flush of keyspace ks failed
 * earlier", naming neither the operation nor the file. */
Test(fault_io_regress, failed_flush_is_reported_with_the_operation_and_file)
{
    tind_db *db = r_open();
    tind_keyspace *ks = r_ks(db, "ks");
    r_put(ks, 0, 100);
    file_fault_set(&(struct file_fault){.ops = FOP_BIT(FOP_WRITE), .path_part = ".tbl", .err = EIO});
    EXPECT_RC(tind_keyspace_flush(ks), TIND_IO_ERROR);
    r_msg_has("write ");
    r_msg_has(".tbl");
    r_msg_has("flush of keyspace ks");
    file_fault_clear();
    /* The failure stays: the next flush says the same. */
    EXPECT_RC(tind_keyspace_flush(ks), TIND_IO_ERROR);
    r_msg_has(".tbl");
    r_check(ks, 0, 100);
    EXPECT_RC(tind_close(db), TIND_OK);
    db = r_open();
    ks = r_ks(db, "ks");
    r_check(ks, 0, 100);
    EXPECT_RC(tind_close(db), TIND_OK);
}

/* A flush whose manifest write failed used to leave the database taking
 * writes: only that keyspace's flushes stopped. */
Test(fault_io_regress, failed_manifest_write_in_a_flush_poisons_the_database)
{
    tind_db *db = r_open();
    tind_keyspace *ks = r_ks(db, "ks"), *other = r_ks(db, "other");
    r_put(ks, 0, 100);
    r_put(other, 0, 10);
    file_fault_set(&(struct file_fault){.ops = FOP_BIT(FOP_WRITE), .path_part = "/MANIFEST", .err = EIO});
    EXPECT_RC(tind_keyspace_flush(ks), TIND_IO_ERROR);
    r_msg_has("MANIFEST");
    file_fault_clear();
    char v[8] = "v";
    EXPECT_RC(tind_put(other, "x", 1, v, 1), TIND_POISONED);
    r_msg_has("MANIFEST");
    EXPECT_RC(tind_put(ks, "x", 1, v, 1), TIND_POISONED);
    tind_keyspace *third;
    EXPECT_RC(tind_keyspace_open(db, "third", NULL, &third), TIND_POISONED);
    r_msg_has("MANIFEST");
    EXPECT_RC(tind_close(db), TIND_OK);
    db = r_open();
    ks = r_ks(db, "ks");
    other = r_ks(db, "other");
    r_check(ks, 0, 100);
    r_check(other, 0, 10);
    EXPECT_RC(tind_close(db), TIND_OK);
}

/* A background compaction that failed used to be seen by no caller:
 * tind_keyspace_compact compacted over it and returned TIND_OK. */
Test(fault_io_regress, failed_background_compaction_is_reported)
{
    tind_db *db = r_open();
    tind_keyspace *ks = r_ks(db, "ks");
    /* Flushes only write tables; the compaction l0_trigger 2 starts reads them. */
    file_fault_set(&(struct file_fault){.ops = FOP_BIT(FOP_READ), .path_part = ".tbl", .err = EIO, .forever = 1});
    /* Overlapping tables: a merge, not a move. */
    r_put(ks, 0, 200);
    EXPECT_RC(tind_keyspace_flush(ks), TIND_OK);
    r_put(ks, 100, 200);
    EXPECT_RC(tind_keyspace_flush(ks), TIND_OK);
    struct tind_db_stats st;
    for (int i = 0; i < 5000; i++) {
        EXPECT_RC(tind_db_stats(db, &st), TIND_OK);
        if (st.compactions_active == 0 && file_fault_fired() > 0) break;
        usleep(2000);
    }
    cr_assert_gt(file_fault_fired(), 0u, "no compaction read a table");
    cr_assert_eq(st.compactions_active, 0u, "the compaction did not end");
    file_fault_clear();
    EXPECT_RC(tind_keyspace_compact(ks), TIND_IO_ERROR);
    r_msg_has("compaction of keyspace ks");
    r_msg_has("read ");
    r_msg_has(".tbl");
    EXPECT_RC(tind_close(db), TIND_OK);
    db = r_open();
    ks = r_ks(db, "ks");
    r_check(ks, 0, 200);
    EXPECT_RC(tind_keyspace_compact(ks), TIND_OK);
    r_check(ks, 0, 200);
    EXPECT_RC(tind_close(db), TIND_OK);
}

/* A keyspace creation that failed after its OPTIONS file was in place used
 * to leave it there: a retry under the same name made a second keyspace, and
 * the next open failed with "keyspaces 1 and 2 are both named ks". */
Test(fault_io_regress, failed_keyspace_creation_leaves_no_twin)
{
    tind_db *db = r_open();
    tind_keyspace *ks;
    /* The first sync of the new keyspace's folder: after OPTIONS is renamed in. */
    file_fault_set(&(struct file_fault){.ops = FOP_BIT(FOP_SYNC_DIR), .path_part = "/keyspaces/", .err = EIO});
    EXPECT_RC(tind_keyspace_open(db, "ks", NULL, &ks), TIND_IO_ERROR);
    r_msg_has("keyspaces/");
    file_fault_clear();
    ks = r_ks(db, "ks");
    r_put(ks, 0, 10);
    EXPECT_RC(tind_close(db), TIND_OK);
    db = r_open();
    char **names;
    size_t n;
    EXPECT_RC(tind_keyspace_list(db, &names, &n), TIND_OK);
    cr_assert_eq(n, 1u, "%zu keyspaces after reopen", n);
    tind_free(names);
    ks = r_ks(db, "ks");
    r_check(ks, 0, 10);
    EXPECT_RC(tind_close(db), TIND_OK);
}

/* When the unfinished folder cannot be removed either, the database is
 * poisoned rather than let a retry make the twin. */
Test(fault_io_regress, failed_keyspace_creation_that_cannot_be_undone_poisons)
{
    tind_db *db = r_open();
    tind_keyspace *ks;
    file_fault_set(&(struct file_fault){
        .ops = FOP_BIT(FOP_SYNC_DIR) | FOP_BIT(FOP_UNLINK), .path_part = "/keyspaces/", .err = EIO, .forever = 1});
    EXPECT_RC(tind_keyspace_open(db, "ks", NULL, &ks), TIND_IO_ERROR);
    file_fault_clear();
    EXPECT_RC(tind_keyspace_open(db, "ks", NULL, &ks), TIND_POISONED);
    r_msg_has("could not be removed");
    EXPECT_RC(tind_close(db), TIND_OK);
    db = r_open();
    char **names;
    size_t n;
    EXPECT_RC(tind_keyspace_list(db, &names, &n), TIND_OK);
    cr_assert_leq(n, 1u, "%zu keyspaces after reopen", n);
    tind_free(names);
    ks = r_ks(db, "ks");
    r_put(ks, 0, 10);
    EXPECT_RC(tind_close(db), TIND_OK);
}

/* A seal for the journals' total size (now write_seal_for_journal_size)
 * ignored the seal's status, and a seal (tree_seal) starts with the
 * journal's fdatasync (its sync_log hook):
 * a failed sync there reached no caller, and the next synced write's sync
 * "succeeded" and was acknowledged over the lost pages. */
Test(fault_io_regress, failed_journal_sync_in_a_seal_poisons_the_database)
{
    tind_options o;
    tind_options_init(&o);
    o.workers = 2;
    o.journal_max_bytes = 64u << 10;
    o.journal_total_max_bytes = 64u << 10;
    tind_db *db;
    EXPECT_RC(tind_open(r_dir, &o, &db), TIND_OK);
    tind_keyspace *pin = r_ks(db, "pin"), *ks;
    r_put(pin, 0, 10); /* held only in the journal: it pins journal 1 */
    EXPECT_RC(tind_close(db), TIND_OK);
    EXPECT_RC(tind_open(r_dir, &o, &db), TIND_OK);
    pin = r_ks(db, "pin");
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    EXPECT_RC(tind_keyspace_open(db, "ks", &ko, &ks), TIND_OK);
    /* The journals pass their total before the current one rotates: the
     * first journal sync is the seal's. */
    file_fault_set(&(struct file_fault){.ops = FOP_BIT(FOP_DATASYNC) | FOP_BIT(FOP_SYNC), .path_part = "/journals/",
                                        .err = EIO});
    char k[32], v[1024];
    memset(v, 'v', sizeof v);
    int rc = TIND_OK, i;
    for (i = 0; i < 200 && file_fault_fired() == 0; i++) {
        int kl = snprintf(k, sizeof k, "key%06d", i);
        rc = tind_put(ks, k, (size_t)kl, v, sizeof v);
    }
    cr_assert_eq(file_fault_fired(), 1u, "no journal sync failed");
    file_fault_clear();
    cr_assert_eq(rc, TIND_IO_ERROR, "the write whose seal's sync failed: %s", tind_strerror(rc));
    r_msg_has("sync");
    tind_batch *b;
    EXPECT_RC(tind_batch_new(&b), TIND_OK);
    EXPECT_RC(tind_batch_put(b, ks, "synced", 6, "v", 1), TIND_OK);
    EXPECT_RC(tind_batch_commit(db, b, TIND_DURABILITY_SYNC_DATA), TIND_POISONED);
    tind_batch_free(b);
    r_msg_has("sync");
    r_msg_has("/journals/");
    EXPECT_RC(tind_close(db), TIND_OK);
    db = r_open();
    pin = r_ks(db, "pin");
    r_check(pin, 0, 10);
    EXPECT_RC(tind_close(db), TIND_OK);
}
