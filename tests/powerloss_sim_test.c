/* tests/support/powerloss_env.c: the power-loss simulator. Each rule of the
 * model is checked on real files in a temporary directory. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/util/err.h"
#include "src/util/file.h"
#include "tests/support/powerloss_env.h"

static char root[64];

static void pl_setup(void)
{
    snprintf(root, sizeof root, "/tmp/tind-pl-test-XXXXXX");
    cr_assert_not_null(mkdtemp(root), "mkdtemp: %s", strerror(errno));
}

static void pl_teardown(void)
{
    file_pl_stop();
    file_remove_tree(root);
}

TestSuite(powerloss_sim, .init = pl_setup, .fini = pl_teardown);

static const char *P(const char *name)
{
    static char buf[4][PATH_MAX];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], PATH_MAX, "%s/%s", root, name);
    return buf[k];
}

static void fill(uint8_t *b, size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 13 + salt * 7 + 1);
}

/* Creates name with n bytes of pattern salt through the file layer, synced
 * (data) when sync, and returns the open file when keep (else closes it). */
static tfile *mk(const char *name, size_t n, unsigned salt, int sync, int keep)
{
    uint8_t b[20000];
    cr_assert(n <= sizeof b);
    fill(b, n, salt);
    tfile *f;
    cr_assert_eq(file_open(P(name), FILE_WRITE | FILE_CREATE | FILE_TRUNC, &f), TIND_OK, "%s", err_msg());
    cr_assert_eq(file_append(f, b, n), TIND_OK, "%s", err_msg());
    if (sync) cr_assert_eq(file_sync(f, 1), TIND_OK, "%s", err_msg());
    if (keep) return f;
    cr_assert_eq(file_close(f), TIND_OK);
    return NULL;
}

static void append(tfile *f, size_t n, unsigned salt)
{
    uint8_t b[20000];
    cr_assert(n <= sizeof b);
    fill(b, n, salt);
    cr_assert_eq(file_append(f, b, n), TIND_OK, "%s", err_msg());
}

static int present(const char *name)
{
    struct stat st;
    return lstat(P(name), &st) == 0;
}

static uint64_t size_of(const char *name)
{
    struct stat st;
    cr_assert_eq(lstat(P(name), &st), 0, "%s is missing", name);
    return (uint64_t)st.st_size;
}

/* Checks that name holds exactly n bytes of pattern salt. */
static void expect_content(const char *name, size_t n, unsigned salt)
{
    uint8_t *d;
    size_t got;
    cr_assert_eq(file_read_all(P(name), &d, &got), TIND_OK, "%s: %s", name, err_msg());
    cr_assert_eq(got, n, "%s: %zu bytes, expected %zu", name, got, n);
    uint8_t want[20000];
    fill(want, n, salt);
    cr_assert(memcmp(d, want, n) == 0, "%s: content differs from pattern %u", name, salt);
    free(d);
}

Test(powerloss_sim, unsynced_bytes_are_dropped_and_synced_ones_kept)
{
    cr_assert_eq(file_pl_start(root), TIND_OK, "%s", err_msg());
    tfile *f = mk("a", 1000, 1, 1, 1);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    append(f, 500, 2);
    cr_assert_eq(file_close(f), TIND_OK);
    cr_assert_eq(size_of("a"), 1500u);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK, "%s", err_msg());
    expect_content("a", 1000, 1);
}

Test(powerloss_sim, fsync_and_fdatasync_both_make_data_durable)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    tfile *f = mk("a", 100, 1, 0, 1);
    cr_assert_eq(file_sync(f, 0), TIND_OK);
    append(f, 100, 2);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    cr_assert_eq(file_close(f), TIND_OK);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    expect_content("a", 100, 1);
}

Test(powerloss_sim, files_present_at_start_are_durable_whole)
{
    mk("old", 3000, 3, 0, 0); /* tracking is off: plain writes */
    cr_assert_eq(file_pl_start(root), TIND_OK);
    tfile *f;
    cr_assert_eq(file_open(P("old"), FILE_WRITE, &f), TIND_OK);
    append(f, 700, 4);
    cr_assert_eq(file_close(f), TIND_OK);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    expect_content("old", 3000, 3);
}

Test(powerloss_sim, a_file_created_without_a_directory_sync_vanishes)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    mk("new", 100, 1, 1, 0); /* data synced, name not */
    cr_assert_eq(file_pl_drop(FILE_PL_KEEP, 1), TIND_OK);
    cr_assert(!present("new"), "a name never made durable survived");
}

Test(powerloss_sim, a_directory_sync_makes_a_created_file_durable)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    mk("new", 100, 1, 0, 0);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    cr_assert_eq(file_pl_drop(FILE_PL_KEEP, 1), TIND_OK);
    expect_content("new", 100, 1); /* KEEP: its unsynced data too */
}

Test(powerloss_sim, an_unsynced_mkdir_takes_its_synced_contents_with_it)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    cr_assert_eq(file_mkdir(P("d")), TIND_OK);
    mk("d/x", 100, 1, 1, 0);
    cr_assert_eq(file_sync_dir(P("d")), TIND_OK);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    cr_assert(!present("d"), "a directory never made durable survived");
}

Test(powerloss_sim, a_synced_mkdir_and_file_survive)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    cr_assert_eq(file_mkdir(P("d")), TIND_OK);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    mk("d/x", 100, 1, 1, 0);
    mk("d/y", 100, 2, 1, 0);
    cr_assert_eq(file_sync_dir(P("d")), TIND_OK);
    mk("d/z", 100, 3, 1, 0); /* after the sync: lost */
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    expect_content("d/x", 100, 1);
    expect_content("d/y", 100, 2);
    cr_assert(!present("d/z"));
}

Test(powerloss_sim, an_unlink_without_a_directory_sync_is_undone)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    mk("a", 5000, 1, 1, 0);
    mk("b", 5000, 2, 1, 0);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    cr_assert_eq(file_unlink(P("a")), TIND_OK);
    cr_assert_eq(file_unlink(P("b")), TIND_OK);
    cr_assert_eq(file_sync_dir(root), TIND_OK); /* b's unlink is durable */
    cr_assert_eq(file_unlink(P("x")), TIND_IO_ERROR, "unlinking a missing file still fails");
    cr_assert(!present("a"));
    /* a's unlink was made durable too by that sync: both stay gone */
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    cr_assert(!present("a") && !present("b"));
}

Test(powerloss_sim, an_unlinked_durable_file_comes_back_with_its_synced_content)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    tfile *f = mk("a", 4000, 1, 1, 1);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    append(f, 1000, 2); /* unsynced: lost */
    cr_assert_eq(file_close(f), TIND_OK);
    cr_assert_eq(file_unlink(P("a")), TIND_OK);
    mk("b", 10, 3, 1, 0); /* may reuse a's inode number */
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    expect_content("a", 4000, 1);
    cr_assert(!present("b"));
}

Test(powerloss_sim, a_rename_over_a_durable_file_is_undone_without_a_directory_sync)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    mk("CUR", 300, 1, 1, 0);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    mk("CUR.tmp", 200, 2, 1, 0);
    cr_assert_eq(file_rename(P("CUR.tmp"), P("CUR")), TIND_OK);
    expect_content("CUR", 200, 2);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    expect_content("CUR", 300, 1);
    cr_assert(!present("CUR.tmp"), "the temporary name was never durable");
}

Test(powerloss_sim, write_atomic_survives_a_loss_right_after_it)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    mk("CUR", 300, 1, 1, 0);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    uint8_t b[200];
    fill(b, sizeof b, 2);
    cr_assert_eq(file_write_atomic(root, "CUR", b, sizeof b), TIND_OK, "%s", err_msg());
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    expect_content("CUR", 200, 2);
    cr_assert(!present("CUR.tmp"));
}

Test(powerloss_sim, a_rename_of_a_durable_file_is_undone_without_a_directory_sync)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    mk("a", 300, 1, 1, 0);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    cr_assert_eq(file_rename(P("a"), P("b")), TIND_OK);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    expect_content("a", 300, 1);
    cr_assert(!present("b"));
}

Test(powerloss_sim, a_removed_durable_directory_comes_back)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    cr_assert_eq(file_mkdir(P("ks")), TIND_OK);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    mk("ks/t1", 2000, 1, 1, 0);
    cr_assert_eq(file_sync_dir(P("ks")), TIND_OK);
    cr_assert_eq(file_remove_tree(P("ks")), TIND_OK, "%s", err_msg());
    cr_assert(!present("ks"));
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK, "%s", err_msg());
    expect_content("ks/t1", 2000, 1);
}

Test(powerloss_sim, a_directory_replaced_under_a_durable_file_is_undone)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    cr_assert_eq(file_mkdir(P("d")), TIND_OK);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    mk("d/x", 700, 5, 1, 0);
    cr_assert_eq(file_sync_dir(P("d")), TIND_OK);
    /* d moves to e, a new d takes x back: the same file under another directory. */
    cr_assert_eq(file_rename(P("d"), P("e")), TIND_OK);
    cr_assert_eq(file_mkdir(P("d")), TIND_OK);
    cr_assert_eq(file_rename(P("e/x"), P("d/x")), TIND_OK);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK, "%s", err_msg());
    expect_content("d/x", 700, 5);
    cr_assert(!present("e"), "the directory rename was never durable");
}

Test(powerloss_sim, a_truncation_is_durable_at_once)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    tfile *f = mk("a", 1000, 1, 1, 1);
    cr_assert_eq(file_sync_dir(root), TIND_OK);
    cr_assert_eq(file_truncate(f, 400), TIND_OK);
    cr_assert_eq(file_close(f), TIND_OK);
    cr_assert_eq(file_pl_drop(FILE_PL_KEEP, 1), TIND_OK);
    expect_content("a", 400, 1);
}

Test(powerloss_sim, random_part_keeps_a_prefix_of_the_unsynced_bytes)
{
    int sizes_seen[3] = {0, 0, 0};
    for (uint64_t seed = 1; seed <= 40; seed++) {
        cr_assert_eq(file_pl_start(root), TIND_OK);
        tfile *f = mk("a", 1000, 1, 1, 1);
        cr_assert_eq(file_sync_dir(root), TIND_OK);
        append(f, 3000, 1000 % 256 == 0 ? 1 : 1); /* continue the pattern below */
        cr_assert_eq(file_close(f), TIND_OK);
        cr_assert_eq(file_pl_drop(FILE_PL_RANDOM_PART, seed), TIND_OK);
        uint64_t n = size_of("a");
        cr_assert(n >= 1000 && n <= 4000, "seed %llu: size %llu outside [synced, written]", (unsigned long long)seed,
                  (unsigned long long)n);
        sizes_seen[n == 1000 ? 0 : n == 4000 ? 2 : 1]++;
        uint8_t *d;
        size_t got;
        cr_assert_eq(file_read_all(P("a"), &d, &got), TIND_OK);
        uint8_t want[1000];
        fill(want, 1000, 1);
        cr_assert(memcmp(d, want, 1000) == 0, "synced bytes changed");
        uint8_t tail[3000];
        fill(tail, 3000, 1);
        cr_assert(memcmp(d + 1000, tail, got - 1000) == 0, "seed %llu: the kept unsynced bytes are not a prefix",
                  (unsigned long long)seed);
        free(d);
        cr_assert_eq(unlink(P("a")), 0);
    }
    cr_assert(sizes_seen[1] > 0, "no seed kept a part strictly between synced and written");
}

static void torn(enum file_pl_mode mode, uint64_t sec)
{
    int torn_seen = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        cr_assert_eq(file_pl_start(root), TIND_OK);
        tfile *f = mk("a", 1000, 1, 1, 1);
        cr_assert_eq(file_sync_dir(root), TIND_OK);
        append(f, 15000, 9);
        cr_assert_eq(file_close(f), TIND_OK);
        cr_assert_eq(file_pl_drop(mode, seed), TIND_OK);
        uint8_t *d;
        size_t got;
        cr_assert_eq(file_read_all(P("a"), &d, &got), TIND_OK);
        cr_assert(got >= 1000 && got <= 16000);
        cr_assert(got % sec == 0 || got == 16000, "seed %llu: size %zu ends inside a sector", (unsigned long long)seed, got);
        uint8_t want[16000];
        fill(want, 1000, 1);
        fill(want + 1000, 15000, 9);
        cr_assert(memcmp(d, want, 1000) == 0, "seed %llu: synced bytes changed", (unsigned long long)seed);
        /* Whole sectors before the last one are intact; the last one is
         * new data up to some point, then differs. */
        size_t last = (got - 1) / sec * sec;
        cr_assert(memcmp(d, want, last) == 0, "seed %llu: damage before the last sector", (unsigned long long)seed);
        size_t good = last;
        while (good < got && d[good] == want[good]) good++;
        if (good < got) torn_seen++;
        free(d);
        cr_assert_eq(unlink(P("a")), 0);
    }
    cr_assert(torn_seen > 0, "no seed tore a sector");
}

Test(powerloss_sim, torn_512_tears_one_sector_after_whole_ones) { torn(FILE_PL_TORN_512, 512); }

Test(powerloss_sim, torn_4k_tears_one_sector_after_whole_ones) { torn(FILE_PL_TORN_4K, 4096); }

Test(powerloss_sim, zero_tail_keeps_the_size_and_zeroes_from_a_point_on)
{
    int zeroed_seen = 0;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        cr_assert_eq(file_pl_start(root), TIND_OK);
        tfile *f = mk("a", 1000, 1, 1, 1);
        cr_assert_eq(file_sync_dir(root), TIND_OK);
        append(f, 9000, 9);
        cr_assert_eq(file_close(f), TIND_OK);
        cr_assert_eq(file_pl_drop(FILE_PL_ZERO_TAIL, seed), TIND_OK);
        uint8_t *d;
        size_t got;
        cr_assert_eq(file_read_all(P("a"), &d, &got), TIND_OK);
        cr_assert_eq(got, 10000u, "seed %llu: the size changed", (unsigned long long)seed);
        uint8_t want[10000];
        fill(want, 1000, 1);
        fill(want + 1000, 9000, 9);
        size_t good = 0;
        while (good < got && d[good] == want[good]) good++;
        cr_assert(good >= 1000, "seed %llu: synced bytes changed", (unsigned long long)seed);
        for (size_t i = good; i < got; i++)
            cr_assert_eq(d[i], 0, "seed %llu: byte %zu after the last good one is not zero", (unsigned long long)seed, i);
        if (good < got) zeroed_seen++;
        free(d);
        cr_assert_eq(unlink(P("a")), 0);
    }
    cr_assert(zeroed_seen > 0, "no seed zeroed anything");
}

static atomic_int cb_calls;

static void note_crash(void *arg)
{
    (void)arg;
    atomic_fetch_add(&cb_calls, 1);
}

Test(powerloss_sim, boundaries_are_counted_and_the_armed_one_crashes)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    file_pl_crash_at(3, note_crash, NULL);
    tfile *f = mk("a", 100, 1, 1, 1); /* boundary 0: sync */
    cr_assert_eq(file_sync_dir(root), TIND_OK); /* 1 */
    mk("b", 100, 2, 0, 0);
    cr_assert_eq(file_rename(P("b"), P("c")), TIND_OK); /* 2 */
    cr_assert_eq(file_pl_boundaries(), 3u);
    cr_assert_eq(atomic_load(&cb_calls), 0);
    cr_assert_eq(file_unlink(P("a")), TIND_IO_ERROR, "the crashing operation fails"); /* 3: crash */
    cr_assert_eq(atomic_load(&cb_calls), 1);
    cr_assert(file_pl_crashed());
    cr_assert(present("a"), "the operation at the crash did not happen");
    cr_assert_eq(file_sync(f, 1), TIND_IO_ERROR, "the power is off");
    cr_assert_eq(file_exists(P("a")), TIND_IO_ERROR);
    cr_assert_eq(atomic_load(&cb_calls), 1);
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_OK);
    cr_assert(file_pl_crashed(), "the power stays off after the drop");
    cr_assert_eq(file_exists(P("a")), TIND_IO_ERROR, "no operation runs on the dropped files");
    file_pl_stop();
    cr_assert(!file_pl_crashed());
    file_close(f);
    expect_content("a", 100, 1);
    cr_assert(!present("c") && !present("b"));
}

static atomic_int other_done;

static void *other_thread(void *arg)
{
    (void)arg;
    file_exists(root);
    atomic_store(&other_done, 1);
    return NULL;
}

static pthread_t other;

static void freeze_check(void *arg)
{
    (void)arg;
    cr_assert_eq(pthread_create(&other, NULL, other_thread, NULL), 0);
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store(&cb_calls, atomic_load(&other_done) ? -1 : 1);
}

Test(powerloss_sim, the_crash_freezes_every_other_thread)
{
    cr_assert_eq(file_pl_start(root), TIND_OK);
    file_pl_crash_at(0, freeze_check, NULL);
    cr_assert_eq(file_sync_dir(root), TIND_IO_ERROR);
    cr_assert_eq(pthread_join(other, NULL), 0);
    cr_assert_eq(atomic_load(&cb_calls), 1, "another thread's file operation ran during the crash callback");
}

Test(powerloss_sim, drop_without_tracking_is_invalid)
{
    cr_assert_eq(file_pl_drop(FILE_PL_ALL, 1), TIND_INVALID);
    cr_assert_eq(file_pl_start("/no/such/dir/for/tind"), TIND_IO_ERROR);
}
