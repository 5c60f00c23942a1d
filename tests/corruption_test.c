/* The corruption suite in the default run: a sample of bit flips and
 * truncations of every file of a small database (tests/tools/corruption-check.c;
 * `make corruption-test BITS=N` runs it densely), and regression tests for
 * what it found. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/expect.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* Sanitized builds (a leak check per case) run a lighter sample; CI runs a
 * dense one under ASan with `make SAN=address,undefined corruption-test`. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CORR_SAMPLE "--bits=48 --truncs=16"
#else
#define CORR_SAMPLE "--bits=600 --truncs=200"
#endif

Test(corruption, sampled_flips_and_truncations_of_every_file, .timeout = 600)
{
    const char *tools = getenv("TIND_TOOLS");
    cr_assert(tools != NULL, "TIND_TOOLS must name the folder of corruption-check (make test sets it)");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/corruption-check " CORR_SAMPLE, tools);
    int st = system(cmd);
    cr_assert_eq(st, 0, "corruption-check failed (status %d); its output above names the case and the seed", st);
}

static char *c_dir;

static void c_setup(void)
{
    c_dir = tu_mkdtemp("corruption");
    cr_assert_not_null(c_dir);
}

static void c_teardown(void)
{
    tu_rmtree(c_dir);
    free(c_dir);
}

static uint64_t c_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Regression: a damaged last MANIFEST record after a compaction was taken
 * for a torn append and cut, bringing back the compaction's inputs (already
 * unlinked: reads failed with "No such file") and removing its output as an
 * orphan; so was a MANIFEST cut at the start of that record. Both are
 * damage, reported at open naming MANIFEST, and no table is removed. */
static void c_damage_last_manifest_record(int cut)
{
    tind_db *db;
    EXPECT_OK(tind_open(c_dir, NULL, &db));
    tind_keyspace *ks;
    EXPECT_OK(tind_keyspace_open(db, "ks", NULL, &ks));
    char k[16];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 50; i++) {
            snprintf(k, sizeof k, "k%03d", i);
            EXPECT_OK(tind_put(ks, k, strlen(k), "value", 5));
        }
        EXPECT_OK(tind_keyspace_flush(ks));
    }
    EXPECT_OK(tind_keyspace_compact(ks));
    EXPECT_OK(tind_close(db));

    char m[4096];
    snprintf(m, sizeof m, "%s/keyspaces/1/MANIFEST", c_dir);
    int fd = open(m, O_RDWR);
    cr_assert_geq(fd, 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    uint8_t h[20];
    uint64_t off = 0, last = 0;
    while (off < (uint64_t)st.st_size) {
        cr_assert_eq(pread(fd, h, sizeof h, (off_t)off), (ssize_t)sizeof h);
        last = off;
        off += 20 + c_u64(h);
    }
    cr_assert_gt(last, 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)last + 24), 1);
    b ^= 0x10;
    if (cut) cr_assert_eq(ftruncate(fd, (off_t)last), 0);
    else cr_assert_eq(pwrite(fd, &b, 1, (off_t)last + 24), 1);
    close(fd);

    char dir[4096], cmd[4200];
    snprintf(dir, sizeof dir, "%s/keyspaces/1", c_dir);
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.tbl$' > '%s/count'", dir, c_dir);
    cr_assert_eq(system(cmd), 0);
    EXPECT_RC(tind_open(c_dir, NULL, &db), TIND_CORRUPTION);
    char want[64];
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)last); /* the record, or the end of the cut log */
    cr_assert(strstr(tind_last_error(), "MANIFEST") && strstr(tind_last_error(), want), "%s", tind_last_error());
    snprintf(cmd, sizeof cmd, "test \"$(ls '%s' | grep -c '\\.tbl$')\" = \"$(cat '%s/count')\"", dir, c_dir);
    cr_assert_eq(system(cmd), 0, "the failed open removed tables");
}

Test(corruption, damaged_last_manifest_record_after_a_compaction_is_not_a_torn_tail, .init = c_setup,
     .fini = c_teardown)
{
    c_damage_last_manifest_record(0);
}

Test(corruption, manifest_cut_before_a_compaction_edit_is_reported, .init = c_setup, .fini = c_teardown)
{
    c_damage_last_manifest_record(1);
}

/* Regression: a journal that is not the newest, cut at a record boundary,
 * read cleanly and the open went on without its last batches (the next
 * journal's applied over the gap). Its successor's header says where it
 * must end: the open fails naming it and where it was cut. */
Test(corruption, older_journal_cut_at_a_record_boundary_is_reported, .init = c_setup, .fini = c_teardown)
{
    tind_db *db;
    tind_keyspace *ks;
    char j1[4096], j2[4096];
    snprintf(j1, sizeof j1, "%s/journals/0000000000000001.jnl", c_dir);
    snprintf(j2, sizeof j2, "%s/journals/0000000000000002.jnl", c_dir);
    for (int session = 0; session < 2; session++) {
        EXPECT_OK(tind_open(c_dir, NULL, &db));
        EXPECT_OK(tind_keyspace_open(db, "ks", NULL, &ks));
        for (int i = 0; i < 3; i++) {
            char k[32];
            snprintf(k, sizeof k, "s%d-%d", session, i);
            EXPECT_OK(tind_put(ks, k, strlen(k), "v", 1));
        }
        EXPECT_OK(tind_close(db));
    }
    struct stat st;
    cr_assert_eq(stat(j2, &st), 0, "the second session's journal is its successor");
    cr_assert_eq(stat(j1, &st), 0, "the first session's journal is kept (nothing was flushed)");
    /* Cut its last record off: the records are 20 + payload bytes after a 40-byte header. */
    int fd = open(j1, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t h[20];
    uint64_t off = 40, last = 40;
    while (off < (uint64_t)st.st_size) {
        cr_assert_eq(pread(fd, h, sizeof h, (off_t)off), (ssize_t)sizeof h);
        last = off;
        off += 20 + c_u64(h);
    }
    cr_assert_eq(ftruncate(fd, (off_t)last), 0);
    close(fd);
    EXPECT_RC(tind_open(c_dir, NULL, &db), TIND_CORRUPTION);
    char want[64];
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)last);
    cr_assert(strstr(tind_last_error(), j1) && strstr(tind_last_error(), want), "%s", tind_last_error());
    tind_options o;
    tind_options_init(&o);
    o.read_only = 1;
    EXPECT_RC(tind_open(c_dir, &o, &db), TIND_CORRUPTION);
    cr_assert(strstr(tind_last_error(), j1) && strstr(tind_last_error(), want), "%s", tind_last_error());
}
