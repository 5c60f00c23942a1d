/* Flushes at the database level: memtables sealed and written as tables,
 * reads across memtables and tables, journals retired, recovery replaying
 * only what no table holds, idle keyspaces flushed when journals grow,
 * failed flushes reported, damaged tables reported. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/file.h"
#include "tests/support/fault_env.h"
#include "tests/support/testutil.h"
#include "tind.h"

static char *dir;
static char dbp[512];

static void setup(void)
{
    dir = tu_mkdtemp("flush");
    cr_assert_not_null(dir);
    snprintf(dbp, sizeof dbp, "%s/db", dir);
}

static void teardown(void)
{
    file_fault_clear();
    tu_rmtree(dir);
    free(dir);
}

TestSuite(flush, .init = setup, .fini = teardown);

static tind_db *open_with(const tind_options *o)
{
    tind_db *db;
    int rc = tind_open(dbp, o, &db);
    cr_assert_eq(rc, TIND_OK, "open: %s: %s", tind_strerror(rc), tind_last_error());
    return db;
}

static tind_keyspace *ks_small(tind_db *db, const char *name, uint64_t memtable_bytes)
{
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = memtable_bytes;
    tind_keyspace *ks;
    int rc = tind_keyspace_open(db, name, &ko, &ks);
    cr_assert_eq(rc, TIND_OK, "keyspace: %s", tind_last_error());
    return ks;
}

static void put_range(tind_keyspace *ks, int from, int to, int gen)
{
    char k[32], v[128];
    for (int i = from; i < to; i++) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        int vl = snprintf(v, sizeof v, "value-%d-gen-%d-%040d", i, gen, i);
        int rc = tind_put(ks, k, (size_t)kl, v, (size_t)vl);
        cr_assert_eq(rc, TIND_OK, "put %d: %s: %s", i, tind_strerror(rc), tind_last_error());
    }
}

static void check_range(tind_keyspace *ks, tind_snapshot *s, int from, int to, int gen)
{
    char k[32], v[128];
    for (int i = from; i < to; i++) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        int vl = snprintf(v, sizeof v, "value-%d-gen-%d-%040d", i, gen, i);
        void *got;
        size_t gl;
        int rc = s ? tind_snapshot_get(s, ks, k, (size_t)kl, &got, &gl) : tind_get(ks, k, (size_t)kl, &got, &gl);
        cr_assert_eq(rc, TIND_OK, "get %s: %s: %s", k, tind_strerror(rc), tind_last_error());
        cr_assert(gl == (size_t)vl && !memcmp(got, v, gl), "%s: got %s", k, tu_hex(got, gl));
        tind_free(got);
    }
}

static struct tind_keyspace_stats kstats(tind_keyspace *ks)
{
    struct tind_keyspace_stats st;
    cr_assert_eq(tind_keyspace_stats(ks, &st), TIND_OK);
    return st;
}

static struct tind_db_stats dstats(tind_db *db)
{
    struct tind_db_stats st;
    cr_assert_eq(tind_db_stats(db, &st), TIND_OK);
    return st;
}

Test(flush, explicit_flush_writes_a_table_and_reads_come_from_it)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "ks", 1u << 20);
    put_range(ks, 0, 500, 1);
    cr_assert_eq(kstats(ks).memtable_peak_bytes, 0, "no seal yet");
    uint64_t held = kstats(ks).memtable_bytes;
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK, "%s", tind_last_error());
    struct tind_keyspace_stats st = kstats(ks);
    /* The peak is what the memtables held when the memtable was sealed. */
    cr_assert_eq(st.memtable_peak_bytes, held);
    cr_assert_eq(st.tables[0], 1);
    cr_assert_gt(st.table_bytes[0], 0);
    cr_assert_eq(st.memtable_entries, 0);
    cr_assert_eq(st.flushes, 1);
    check_range(ks, NULL, 0, 500, 1);
    /* Flushing an empty memtable writes nothing. */
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    cr_assert_eq(kstats(ks).tables[0], 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, full_memtables_flush_in_the_background)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "ks", 64u << 10);
    put_range(ks, 0, 5000, 1);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    struct tind_keyspace_stats st = kstats(ks);
    cr_assert_geq(st.flushes, 5, "only %llu flushes", (unsigned long long)st.flushes);
    /* At least one full memtable at a seal; at most the full one and the
     * sealed ones a writer may queue before it waits, with an entry's slack. */
    cr_assert_geq(st.memtable_peak_bytes, 64u << 10);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    cr_assert_leq(st.memtable_peak_bytes, (uint64_t)(ko.max_sealed_memtables + 1) * ((64u << 10) + 4096));
    uint64_t tables = 0;
    for (int l = 0; l < TIND_LEVELS; l++) tables += st.tables[l];
    cr_assert_geq(tables, 1);
    cr_assert_eq(st.sealed_memtables, 0);
    check_range(ks, NULL, 0, 5000, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, newer_versions_in_memtables_hide_older_ones_in_tables)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "ks", 1u << 20);
    put_range(ks, 0, 300, 1);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    tind_snapshot *s1;
    cr_assert_eq(tind_snapshot_open(db, &s1), TIND_OK);
    put_range(ks, 0, 100, 2);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    put_range(ks, 0, 50, 3);
    for (int i = 250; i < 300; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "key%07d", i);
        cr_assert_eq(tind_delete(ks, k, (size_t)kl), TIND_OK);
    }
    check_range(ks, NULL, 0, 50, 3);
    check_range(ks, NULL, 50, 100, 2);
    check_range(ks, NULL, 100, 250, 1);
    check_range(ks, s1, 0, 300, 1);
    void *v;
    size_t vl;
    cr_assert_eq(tind_get(ks, "key0000260", 10, &v, &vl), TIND_NOT_FOUND);
    /* The same through an iterator, both ways. */
    tind_iter *it;
    cr_assert_eq(tind_iter_open(ks, NULL, NULL, &it), TIND_OK);
    int n = 0;
    for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it)) n++;
    cr_assert_eq(n, 250);
    n = 0;
    for (tind_iter_seek_last(it); tind_iter_valid(it); tind_iter_prev(it)) n++;
    cr_assert_eq(n, 250);
    tind_iter_close(it);
    tind_snapshot_close(s1);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    check_range(ks, NULL, 0, 50, 3);
    check_range(ks, NULL, 50, 100, 2);
    check_range(ks, NULL, 100, 250, 1);
    cr_assert_eq(tind_get(ks, "key0000260", 10, &v, &vl), TIND_NOT_FOUND);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, recovery_replays_only_what_no_table_holds)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "ks", 1u << 20);
    put_range(ks, 0, 400, 1);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    put_range(ks, 400, 410, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    struct tind_keyspace_stats st = kstats(ks);
    cr_assert_eq(st.memtable_entries, 10, "replayed %llu entries", (unsigned long long)st.memtable_entries);
    check_range(ks, NULL, 0, 410, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, journals_are_retired_once_flushed)
{
    tind_options o;
    tind_options_init(&o);
    o.journal_max_bytes = 64u << 10;
    tind_db *db = open_with(&o);
    tind_keyspace *ks = ks_small(db, "ks", 4u << 20);
    put_range(ks, 0, 8000, 1);
    uint64_t before = dstats(db).journal_files;
    cr_assert_gt(before, 5, "journals %llu", (unsigned long long)before);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    uint64_t after = dstats(db).journal_files;
    cr_assert_leq(after, 2, "journals after the flush: %llu (before %llu)", (unsigned long long)after,
                  (unsigned long long)before);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(&o);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    check_range(ks, NULL, 0, 8000, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* The journals folder after close: the count of journals and the size of
 * the largest. */
static uint64_t largest_journal_on_disk(size_t *count)
{
    char jd[600], p[1200];
    snprintf(jd, sizeof jd, "%s/journals", dbp);
    char **names;
    size_t n;
    cr_assert_eq(file_list_dir(jd, &names, &n), TIND_OK);
    uint64_t largest = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", jd, names[i]);
        cr_assert_eq(stat(p, &st), 0, "stat %s", p);
        if ((uint64_t)st.st_size > largest) largest = (uint64_t)st.st_size;
    }
    free(names);
    *count = n;
    return largest;
}

/* A journal of 40 bytes is a header alone (journal/README.md). */
#define JOURNAL_HEADER_BYTES 40

/* A current journal whose writes every keyspace flushed stayed at full size
 * until it filled, and after close until the next open. */
Test(flush, a_flushed_current_journal_is_rotated_out_and_retired)
{
    tind_db *db = open_with(NULL); /* journal_max_bytes 64 MiB: rotated past 1 MiB */
    tind_keyspace *ks = ks_small(db, "ks", 64u << 20);
    put_range(ks, 0, 30000, 1); /* about 2.4 MB of records */
    cr_assert_gt(dstats(db).journal_bytes, 1u << 20, "journals %llu bytes",
                 (unsigned long long)dstats(db).journal_bytes);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK, "%s", tind_last_error());
    struct tind_db_stats st = dstats(db);
    cr_assert_eq(st.journal_files, 1, "journal files after the flush: %llu", (unsigned long long)st.journal_files);
    cr_assert_eq(st.journal_bytes, JOURNAL_HEADER_BYTES, "journal bytes after the flush: %llu",
                 (unsigned long long)st.journal_bytes);
    /* Writes after the rotation go to the new journal, and survive a reopen. */
    put_range(ks, 30000, 30100, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    cr_assert_eq(kstats(ks).memtable_entries, 100, "replayed %llu entries",
                 (unsigned long long)kstats(ks).memtable_entries);
    check_range(ks, NULL, 0, 30100, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, close_leaves_no_flushed_journal_at_full_size)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *a = ks_small(db, "a", 64u << 20), *b = ks_small(db, "b", 64u << 20);
    put_range(a, 0, 1000, 1);
    put_range(b, 0, 1000, 2);
    cr_assert_eq(tind_keyspace_flush(a), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(tind_keyspace_flush(b), TIND_OK, "%s", tind_last_error());
    /* Below the rotation size: the flushed journal is current until close. */
    cr_assert_gt(dstats(db).journal_bytes, JOURNAL_HEADER_BYTES);
    cr_assert_eq(tind_close(db), TIND_OK);
    size_t n;
    uint64_t largest = largest_journal_on_disk(&n);
    cr_assert_leq(largest, JOURNAL_HEADER_BYTES, "a journal of %llu bytes is left after close (%zu journals)",
                  (unsigned long long)largest, n);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "a", NULL, &a), TIND_OK);
    cr_assert_eq(tind_keyspace_open(db, "b", NULL, &b), TIND_OK);
    check_range(a, NULL, 0, 1000, 1);
    check_range(b, NULL, 0, 1000, 2);
    /* Sequence numbers go on past the flushed ones. */
    put_range(a, 0, 10, 3);
    check_range(a, NULL, 0, 10, 3);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "a", NULL, &a), TIND_OK);
    check_range(a, NULL, 0, 10, 3);
    check_range(a, NULL, 10, 1000, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, an_unflushed_keyspace_keeps_its_journal_through_close)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *a = ks_small(db, "a", 64u << 20), *b = ks_small(db, "b", 64u << 20);
    put_range(a, 0, 30000, 1); /* past the rotation size */
    put_range(b, 0, 10, 2);
    cr_assert_eq(tind_keyspace_flush(a), TIND_OK, "%s", tind_last_error());
    cr_assert_gt(dstats(db).journal_bytes, 1u << 20, "b's writes keep the journal");
    cr_assert_eq(tind_close(db), TIND_OK);
    size_t n;
    cr_assert_gt(largest_journal_on_disk(&n), 1u << 20, "b's journal is gone");
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "a", NULL, &a), TIND_OK);
    cr_assert_eq(tind_keyspace_open(db, "b", NULL, &b), TIND_OK);
    cr_assert_eq(kstats(b).memtable_entries, 10, "replayed %llu entries into b",
                 (unsigned long long)kstats(b).memtable_entries);
    cr_assert_eq(kstats(a).memtable_entries, 0, "replayed %llu entries into a",
                 (unsigned long long)kstats(a).memtable_entries);
    check_range(a, NULL, 0, 30000, 1);
    check_range(b, NULL, 0, 10, 2);
    /* Once b is flushed too, the replayed journal goes at once. */
    cr_assert_eq(tind_keyspace_flush(b), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(dstats(db).journal_bytes, JOURNAL_HEADER_BYTES, "journal bytes %llu",
                 (unsigned long long)dstats(db).journal_bytes);
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* A sealed memtable's writes shared the journal with the writes after them,
 * so the journal stayed until it filled (64 MiB) though only the newest
 * memtable was unflushed. */
Test(flush, a_memtable_sealed_for_its_size_ends_its_journal, .timeout = 60)
{
    tind_db *db = open_with(NULL); /* journal_max_bytes 64 MiB: rotated past 1 MiB */
    tind_keyspace *ks = ks_small(db, "ks", 1u << 20);
    put_range(ks, 0, 100000, 1); /* about 10 MB of records: 1 MiB memtables sealed by size */
    cr_assert_geq(kstats(ks).flushes + kstats(ks).sealed_memtables, 4, "flushes %llu",
                  (unsigned long long)kstats(ks).flushes);
    for (int i = 0; i < 30000 && kstats(ks).sealed_memtables > 0; i++) usleep(1000);
    cr_assert_eq(kstats(ks).sealed_memtables, 0, "the flushes did not finish");
    /* The writes since the last seal (one memtable) and what they share a
     * journal with: no journal of flushed writes is left. */
    struct tind_db_stats st = dstats(db);
    cr_assert_leq(st.journal_bytes, 3u << 20, "journals hold %llu bytes in %llu files",
                  (unsigned long long)st.journal_bytes, (unsigned long long)st.journal_files);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    check_range(ks, NULL, 0, 100000, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, an_idle_keyspace_does_not_pin_old_journals)
{
    tind_options o;
    tind_options_init(&o);
    o.journal_max_bytes = 64u << 10;
    o.journal_total_max_bytes = 512u << 10;
    tind_db *db = open_with(&o);
    tind_keyspace *idle = ks_small(db, "idle", 64u << 20);
    tind_keyspace *busy = ks_small(db, "busy", 256u << 10);
    put_range(idle, 0, 10, 1); /* a few writes in the oldest journal, then nothing */
    put_range(busy, 0, 30000, 1);
    cr_assert_eq(tind_keyspace_flush(busy), TIND_OK);
    struct tind_db_stats st = dstats(db);
    cr_assert_leq(st.journal_bytes, 2 * o.journal_total_max_bytes, "journals hold %llu bytes in %llu files",
                  (unsigned long long)st.journal_bytes, (unsigned long long)st.journal_files);
    cr_assert_geq(kstats(idle).flushes + kstats(idle).sealed_memtables, 1, "the idle keyspace was never flushed");
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(&o);
    cr_assert_eq(tind_keyspace_open(db, "idle", NULL, &idle), TIND_OK);
    cr_assert_eq(tind_keyspace_open(db, "busy", NULL, &busy), TIND_OK);
    check_range(idle, NULL, 0, 10, 1);
    check_range(busy, NULL, 0, 30000, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, failed_table_write_is_reported_and_loses_nothing)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "ks", 1u << 20);
    put_range(ks, 0, 200, 1);
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = ".tbl", .nth = 0, .err = ENOSPC, .forever = 1};
    file_fault_set(&f);
    int rc = tind_keyspace_flush(ks);
    cr_assert_eq(rc, TIND_NO_SPACE, "flush gave %s", tind_strerror(rc));
    file_fault_clear();
    check_range(ks, NULL, 0, 200, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    check_range(ks, NULL, 0, 200, 1);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK, "%s", tind_last_error());
    check_range(ks, NULL, 0, 200, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, writers_stalled_behind_a_failed_flush_get_its_error)
{
    tind_db *db = open_with(NULL);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64u << 10;
    ko.max_sealed_memtables = 1;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, "ks", &ko, &ks), TIND_OK);
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = ".tbl", .nth = 0, .err = EIO, .forever = 1};
    file_fault_set(&f);
    char k[32], v[200];
    memset(v, 'x', sizeof v);
    int rc = TIND_OK, i;
    for (i = 0; i < 100000 && rc == TIND_OK; i++) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        rc = tind_put(ks, k, (size_t)kl, v, sizeof v);
    }
    file_fault_clear();
    cr_assert_eq(rc, TIND_IO_ERROR, "after %d puts: %s", i, tind_strerror(rc));
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    /* Every acknowledged put is there. */
    for (int j = 0; j < i - 1; j++) {
        int kl = snprintf(k, sizeof k, "key%07d", j);
        void *got;
        size_t gl;
        cr_assert_eq(tind_get(ks, k, (size_t)kl, &got, &gl), TIND_OK, "%s lost", k);
        tind_free(got);
    }
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, damaged_table_is_corruption_naming_the_file)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "ks", 1u << 20);
    put_range(ks, 0, 2000, 1);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    cr_assert_eq(tind_close(db), TIND_OK);
    char kd[700];
    snprintf(kd, sizeof kd, "%s/keyspaces/1", dbp);
    char **names;
    size_t n;
    cr_assert_eq(file_list_dir(kd, &names, &n), TIND_OK);
    char tp[1024] = "";
    for (size_t i = 0; i < n; i++)
        if (strstr(names[i], ".tbl")) snprintf(tp, sizeof tp, "%s/%s", kd, names[i]);
    free(names);
    cr_assert(tp[0], "no table file");
    /* Flip a bit early in the file: inside the first data block. */
    FILE *fp = fopen(tp, "r+b");
    cr_assert_not_null(fp);
    fseek(fp, 100, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, 100, SEEK_SET);
    fputc(c ^ 1, fp);
    fclose(fp);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    int corrupt = 0;
    char k[32];
    for (int i = 0; i < 2000; i++) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        void *got;
        size_t gl;
        int rc = tind_get(ks, k, (size_t)kl, &got, &gl);
        if (rc == TIND_CORRUPTION) {
            corrupt++;
            cr_assert(strstr(tind_last_error(), ".tbl") && strstr(tind_last_error(), "offset"), "message: %s",
                      tind_last_error());
        } else {
            cr_assert_eq(rc, TIND_OK, "%s: %s", k, tind_strerror(rc));
            char want[128];
            int wl = snprintf(want, sizeof want, "value-%d-gen-%d-%040d", i, 1, i);
            cr_assert(gl == (size_t)wl && !memcmp(got, want, gl), "wrong value for %s", k);
            tind_free(got);
        }
    }
    cr_assert_gt(corrupt, 0, "the damaged block was never reported");
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, dropping_a_keyspace_removes_its_tables)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "gone", 1u << 20);
    put_range(ks, 0, 300, 1);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    cr_assert_eq(tind_keyspace_drop(db, "gone"), TIND_OK);
    char kd[700];
    snprintf(kd, sizeof kd, "%s/keyspaces/1", dbp);
    struct stat sb;
    cr_assert_neq(stat(kd, &sb), 0, "the keyspace folder is still there");
    ks = ks_small(db, "gone", 1u << 20);
    void *v;
    size_t vl;
    cr_assert_eq(tind_get(ks, "key0000001", 10, &v, &vl), TIND_NOT_FOUND);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, cache_statistics_move)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "ks", 1u << 20);
    put_range(ks, 0, 1000, 1);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    check_range(ks, NULL, 0, 1000, 1);
    check_range(ks, NULL, 0, 1000, 1);
    struct tind_db_stats st = dstats(db);
    cr_assert_eq(st.cache_capacity, 64u << 20);
    cr_assert_gt(st.cache_usage, 0);
    cr_assert_gt(st.cache_hits, 0);
    cr_assert_gt(st.cache_misses, 0);
    cr_assert_geq(st.open_tables, 1);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(flush, iterators_never_open_tables_outside_their_bounds)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "ks", 1u << 20);
    cr_assert_eq(tind_put(ks, "a1", 2, "x", 1), TIND_OK);
    cr_assert_eq(tind_put(ks, "a2", 2, "x", 1), TIND_OK);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    cr_assert_eq(tind_put(ks, "z1", 2, "y", 1), TIND_OK);
    cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    cr_assert_eq(kstats(ks).tables[0], 2);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_with(NULL);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    cr_assert_eq(dstats(db).open_tables, 0);
    tind_iter *it;
    cr_assert_eq(tind_iter_open_prefix(ks, NULL, "a", 1, &it), TIND_OK);
    int n = 0;
    for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it)) n++;
    cr_assert_eq(n, 2);
    tind_iter_close(it);
    cr_assert_eq(dstats(db).open_tables, 1, "the table of z keys was opened for an 'a' prefix scan");
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* A hot key with thousands of versions (some newer than the iterator's view)
 * between two others: forward scans must still return exactly a, hot, z with
 * the right values, in memtables and in tables, at the latest and at a
 * snapshot. (The iterator reseeks past long runs of versions.) */
Test(flush, scans_past_a_key_with_thousands_of_versions)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *ks = ks_small(db, "ks", 1u << 20);
    cr_assert_eq(tind_put(ks, "a", 1, "A", 1), TIND_OK);
    cr_assert_eq(tind_put(ks, "z", 1, "Z", 1), TIND_OK);
    char v[32];
    tind_snapshot *s = NULL;
    for (int i = 0; i < 3000; i++) {
        int vl = snprintf(v, sizeof v, "v%d", i);
        cr_assert_eq(tind_put(ks, "hot", 3, v, (size_t)vl), TIND_OK);
        if (i == 1000) cr_assert_eq(tind_snapshot_open(db, &s), TIND_OK);
        if (i == 2000) cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    }
    cr_assert_eq(tind_delete(ks, "gone", 4), TIND_OK);
    for (int round = 0; round < 2; round++) {
        for (int view = 0; view < 2; view++) {
            tind_iter *it;
            cr_assert_eq(tind_iter_open(ks, view ? s : NULL, NULL, &it), TIND_OK);
            const char *want_v = view ? "v1000" : "v2999";
            const char *keys[3] = {"a", "hot", "z"};
            int n = 0;
            for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it), n++) {
                size_t kl, vl;
                const char *k = tind_iter_key(it, &kl), *val = tind_iter_value(it, &vl);
                cr_assert_lt(n, 3, "too many keys");
                cr_assert(kl == strlen(keys[n]) && !memcmp(k, keys[n], kl), "key %d: %.*s", n, (int)kl, k);
                if (n == 1) cr_assert(vl == strlen(want_v) && !memcmp(val, want_v, vl), "hot = %.*s, want %s",
                                      (int)vl, val, want_v);
            }
            cr_assert_eq(n, 3, "round %d view %d: %d keys", round, view, n);
            cr_assert_eq(tind_iter_status(it), TIND_OK);
            tind_iter_close(it);
        }
        cr_assert_eq(tind_keyspace_flush(ks), TIND_OK);
    }
    tind_snapshot_close(s);
    cr_assert_eq(tind_close(db), TIND_OK);
}

struct stall_writer {
    tind_keyspace *ks;
    int n, rc, i;
    _Atomic int done;
};

static void *stall_writer_main(void *p)
{
    struct stall_writer *w = p;
    char k[32], v[200];
    memset(v, 'w', sizeof v);
    w->rc = TIND_OK;
    for (w->i = 0; w->i < w->n && w->rc == TIND_OK; w->i++) {
        int kl = snprintf(k, sizeof k, "w%07d", w->i);
        w->rc = tind_put(w->ks, k, (size_t)kl, v, sizeof v);
    }
    atomic_store(&w->done, 1);
    return NULL;
}

struct drop_arg {
    tind_db *db;
    int rc;
};

static void *drop_main(void *p)
{
    struct drop_arg *d = p;
    d->rc = tind_keyspace_drop(d->db, "stalled");
    return NULL;
}

/* Starts a writer on a keyspace (64 KiB memtables, one sealed at most) whose
 * first table write is held (file_fault hold): its flush cannot end, so the
 * writer stalls. Returns once it has. */
static tind_keyspace *start_stalled_writer(tind_db *db, struct stall_writer *w, pthread_t *th)
{
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64u << 10;
    ko.max_sealed_memtables = 1;
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, "stalled", &ko, &ks), TIND_OK, "%s", tind_last_error());
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = ".tbl", .nth = 0, .hold = 1};
    file_fault_set(&f);
    *w = (struct stall_writer){.ks = ks, .n = 2000};
    cr_assert_eq(pthread_create(th, NULL, stall_writer_main, w), 0);
    struct tind_keyspace_stats st;
    for (int i = 0; i < 20000; i++) {
        cr_assert_eq(tind_keyspace_stats(ks, &st), TIND_OK);
        if (st.stalls > 0) break;
        cr_assert_eq(atomic_load(&w->done), 0, "the writer finished without stalling: %s", tind_strerror(w->rc));
        usleep(1000);
    }
    cr_assert_gt(st.stalls, 0, "the writer never stalled");
    return ks;
}

/* Regression: the stall ran in the journal's prepare callback, so the writer
 * that waited for its keyspace's flush was the group-commit leader, and
 * every writer of every other keyspace queued behind it waited too. */
Test(flush, a_stalled_keyspace_does_not_block_writes_to_others, .timeout = 60)
{
    tind_db *db = open_with(NULL);
    tind_keyspace *other;
    cr_assert_eq(tind_keyspace_open(db, "other", NULL, &other), TIND_OK, "%s", tind_last_error());
    struct stall_writer w;
    pthread_t th;
    tind_keyspace *ks = start_stalled_writer(db, &w, &th);
    /* Another keyspace's writes, buffered and synced, go through meanwhile. */
    put_range(other, 0, 200, 1);
    tind_batch *b;
    cr_assert_eq(tind_batch_new(&b), TIND_OK);
    cr_assert_eq(tind_batch_put(b, other, "synced", 6, "v", 1), TIND_OK);
    cr_assert_eq(tind_batch_commit(db, b, TIND_DURABILITY_SYNC_DATA), TIND_OK, "%s", tind_last_error());
    tind_batch_free(b);
    cr_assert_eq(tind_persist(db, TIND_DURABILITY_SYNC_DATA), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(atomic_load(&w.done), 0, "the stalled writer was let through while its flush was held");
    file_fault_clear();
    pthread_join(th, NULL);
    cr_assert_eq(w.rc, TIND_OK, "the stalled writer: %s", tind_strerror(w.rc));
    check_range(other, NULL, 0, 200, 1);
    void *got;
    size_t gl;
    cr_assert_eq(tind_get(ks, "w0001999", 8, &got, &gl), TIND_OK, "%s", tind_last_error());
    tind_free(got);
    cr_assert_eq(tind_close(db), TIND_OK);
}

/* Regression: with the stall in the leader, a drop's journal record queued
 * behind the stalled writer, which waited for the drop to wake it. A writer
 * stalled on a keyspace being dropped gets TIND_INVALID. */
Test(flush, dropping_a_stalled_keyspace_wakes_its_writer, .timeout = 60)
{
    tind_db *db = open_with(NULL);
    struct stall_writer w;
    pthread_t th;
    start_stalled_writer(db, &w, &th);
    /* The drop waits for the held flush before removing the folder: release
     * the flush once the writer has been woken. */
    struct drop_arg d = {db, -1};
    pthread_t dt;
    cr_assert_eq(pthread_create(&dt, NULL, drop_main, &d), 0);
    for (int i = 0; i < 20000 && !atomic_load(&w.done); i++) usleep(1000);
    int woken = atomic_load(&w.done);
    file_fault_clear();
    pthread_join(dt, NULL);
    pthread_join(th, NULL);
    cr_assert(woken, "the stalled writer was not woken by the drop");
    cr_assert_eq(w.rc, TIND_INVALID, "the stalled writer: %s", tind_strerror(w.rc));
    cr_assert_eq(d.rc, TIND_OK, "drop: %s", tind_strerror(d.rc));
    cr_assert_eq(tind_close(db), TIND_OK);
}
