/* Database-level recovery and failure handling: torn journal tails, damaged
 * journals, failed journal writes and syncs (poisoning), leftovers of
 * interrupted keyspace creation, sequence numbers across reopens. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/util/file.h"
#include "tests/support/fault_env.h"
#include "tests/support/testutil.h"
#include "tind.h"

static char *dir;
static char dbp[512];

static void setup(void)
{
    dir = tu_mkdtemp("recovery");
    cr_assert_not_null(dir);
    snprintf(dbp, sizeof dbp, "%s/db", dir);
}

static void teardown(void)
{
    file_fault_clear();
    tu_rmtree(dir);
    free(dir);
}

TestSuite(recovery, .init = setup, .fini = teardown);

static tind_db *open_db(tind_keyspace **ks)
{
    tind_db *db;
    int rc = tind_open(dbp, NULL, &db);
    cr_assert_eq(rc, TIND_OK, "open: %s: %s", tind_strerror(rc), tind_last_error());
    if (ks) cr_assert_eq(tind_keyspace_open(db, "ks", NULL, ks), TIND_OK);
    return db;
}

static void put_n(tind_keyspace *ks, int from, int to)
{
    char k[32], v[64];
    for (int i = from; i < to; i++) {
        int kl = snprintf(k, sizeof k, "key%06d", i), vl = snprintf(v, sizeof v, "value-%d", i);
        int rc = tind_put(ks, k, (size_t)kl, v, (size_t)vl);
        cr_assert_eq(rc, TIND_OK, "put %d: %s: %s", i, tind_strerror(rc), tind_last_error());
    }
}

static void check_n(tind_keyspace *ks, int from, int to)
{
    char k[32], v[64];
    for (int i = from; i < to; i++) {
        int kl = snprintf(k, sizeof k, "key%06d", i), vl = snprintf(v, sizeof v, "value-%d", i);
        void *got;
        size_t gl;
        int rc = tind_get(ks, k, (size_t)kl, &got, &gl);
        cr_assert_eq(rc, TIND_OK, "get %s: %s", k, tind_strerror(rc));
        cr_assert(gl == (size_t)vl && !memcmp(got, v, gl), "value of %s: %s", k, tu_hex(got, gl));
        tind_free(got);
    }
}

static void check_absent(tind_keyspace *ks, int i)
{
    char k[32];
    int kl = snprintf(k, sizeof k, "key%06d", i);
    void *got;
    size_t gl;
    cr_assert_eq(tind_get(ks, k, (size_t)kl, &got, &gl), TIND_NOT_FOUND, "%s should be absent", k);
}

/* Path of the n-th newest journal file (0: newest). */
static void journal_path(char *out, size_t cap, size_t nth)
{
    char jd[600];
    snprintf(jd, sizeof jd, "%s/journals", dbp);
    char **names;
    size_t n;
    cr_assert_eq(file_list_dir(jd, &names, &n), TIND_OK);
    cr_assert_gt(n, nth, "only %zu journals", n);
    snprintf(out, cap, "%s/%s", jd, names[n - 1 - nth]);
    free(names);
}

static uint64_t size_of(const char *p)
{
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

static void append_bytes(const char *p, const void *b, size_t n)
{
    FILE *f = fopen(p, "ab");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void flip_byte(const char *p, uint64_t off)
{
    FILE *f = fopen(p, "r+b");
    cr_assert_not_null(f);
    fseek(f, (long)off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, (long)off, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
}

/* A journal that holds records: the newest one is empty after a reopen. */
static void written_journal(char *out, size_t cap)
{
    for (size_t i = 0;; i++) {
        journal_path(out, cap, i);
        if (size_of(out) > 40) return;
    }
}

Test(recovery, torn_tail_of_newest_journal_is_cut_and_data_kept)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    put_n(ks, 0, 100);
    cr_assert_eq(tind_close(db), TIND_OK);
    char jp[1024];
    journal_path(jp, sizeof jp, 0);
    uint64_t before = size_of(jp);
    /* A record header promising more bytes than follow: a write cut short. */
    uint8_t torn[30] = {0xff, 0x00, 0x10};
    append_bytes(jp, torn, sizeof torn);
    db = open_db(&ks);
    check_n(ks, 0, 100);
    cr_assert_eq(size_of(jp), before, "the torn tail was not truncated");
    put_n(ks, 100, 110);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_db(&ks);
    check_n(ks, 0, 110);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(recovery, flipped_byte_in_a_middle_record_is_corruption_naming_file_and_offset)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    put_n(ks, 0, 50);
    cr_assert_eq(tind_close(db), TIND_OK);
    char jp[1024];
    written_journal(jp, sizeof jp);
    /* The header is 40 bytes; byte 200 is inside an early record, with many after it. */
    flip_byte(jp, 200);
    tind_db *db2;
    int rc = tind_open(dbp, NULL, &db2);
    cr_assert_eq(rc, TIND_CORRUPTION, "open gave %s", tind_strerror(rc));
    const char *msg = tind_last_error();
    const char *base = strrchr(jp, '/') + 1;
    cr_assert(strstr(msg, base) != NULL, "message does not name the journal: %s", msg);
    cr_assert(strstr(msg, "offset") != NULL, "message has no offset: %s", msg);
}

Test(recovery, damage_in_an_older_journal_is_corruption)
{
    tind_options o;
    tind_options_init(&o);
    o.journal_max_bytes = 64 << 10;
    tind_db *db;
    tind_keyspace *ks;
    cr_assert_eq(tind_open(dbp, &o, &db), TIND_OK);
    cr_assert_eq(tind_keyspace_open(db, "ks", NULL, &ks), TIND_OK);
    put_n(ks, 0, 5000); /* several journals */
    cr_assert_eq(tind_close(db), TIND_OK);
    char jp[1024];
    journal_path(jp, sizeof jp, 3);
    /* The last byte of an older journal: a torn tail would be forgiven only in the newest. */
    flip_byte(jp, size_of(jp) - 1);
    int rc = tind_open(dbp, &o, &db);
    cr_assert_eq(rc, TIND_CORRUPTION, "open gave %s", tind_strerror(rc));
}

Test(recovery, failed_journal_write_poisons_until_reopen)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    put_n(ks, 0, 20);
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = ".jnl", .nth = 0, .err = EIO};
    file_fault_set(&f);
    int rc = tind_put(ks, "x", 1, "y", 1);
    cr_assert_eq(rc, TIND_IO_ERROR, "put gave %s", tind_strerror(rc));
    file_fault_clear();
    cr_assert_eq(tind_put(ks, "x", 1, "y", 1), TIND_POISONED);
    tind_batch *b;
    cr_assert_eq(tind_batch_new(&b), TIND_OK);
    cr_assert_eq(tind_batch_put(b, ks, "z", 1, "w", 1), TIND_OK);
    cr_assert_eq(tind_batch_commit(db, b, TIND_DURABILITY_BUFFERED), TIND_POISONED);
    tind_batch_free(b);
    cr_assert_eq(tind_persist(db, TIND_DURABILITY_SYNC_ALL), TIND_POISONED);
    check_n(ks, 0, 20); /* reads go on */
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_db(&ks);
    check_n(ks, 0, 20);
    put_n(ks, 20, 30);
    check_n(ks, 0, 30);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(recovery, failed_fdatasync_poisons_and_is_not_retried)
{
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.durability = TIND_DURABILITY_SYNC_DATA;
    tind_db *db = open_db(NULL);
    tind_keyspace *ks;
    cr_assert_eq(tind_keyspace_open(db, "ks", &ko, &ks), TIND_OK);
    put_n(ks, 0, 10);
    struct file_fault f = {.ops = FOP_BIT(FOP_DATASYNC) | FOP_BIT(FOP_SYNC), .path_part = ".jnl", .nth = 0,
                           .err = EIO, .forever = 1};
    file_fault_set(&f);
    cr_assert_eq(tind_put(ks, "x", 1, "y", 1), TIND_IO_ERROR);
    uint64_t syncs = file_fault_seen();
    cr_assert_eq(tind_put(ks, "x", 1, "y", 1), TIND_POISONED);
    cr_assert_eq(tind_persist(db, TIND_DURABILITY_SYNC_DATA), TIND_POISONED);
    cr_assert_eq(file_fault_seen(), syncs, "a sync was attempted after the failure");
    file_fault_clear();
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_db(&ks);
    check_n(ks, 0, 10);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(recovery, full_disk_is_no_space_then_poisoned)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    put_n(ks, 0, 5);
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = ".jnl", .nth = 0, .err = ENOSPC};
    file_fault_set(&f);
    cr_assert_eq(tind_put(ks, "x", 1, "y", 1), TIND_NO_SPACE);
    file_fault_clear();
    cr_assert_eq(tind_put(ks, "x", 1, "y", 1), TIND_POISONED);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_db(&ks);
    check_n(ks, 0, 5);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(recovery, short_journal_write_leaves_a_torn_tail_that_reopen_cuts)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    put_n(ks, 0, 30);
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = ".jnl", .nth = 0, .err = EIO, .short_write = 1};
    file_fault_set(&f);
    char big[4096];
    memset(big, 'b', sizeof big);
    cr_assert_eq(tind_put(ks, "big", 3, big, sizeof big), TIND_IO_ERROR);
    file_fault_clear();
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_db(&ks);
    check_n(ks, 0, 30);
    void *v;
    size_t vl;
    cr_assert_eq(tind_get(ks, "big", 3, &v, &vl), TIND_NOT_FOUND, "a failed write must not appear half");
    put_n(ks, 30, 40);
    cr_assert_eq(tind_close(db), TIND_OK);
    db = open_db(&ks);
    check_n(ks, 0, 40);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(recovery, process_crash_keeps_buffered_writes_and_drops)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        tind_db *db;
        tind_keyspace *ks, *gone;
        if (tind_open(dbp, NULL, &db) || tind_keyspace_open(db, "ks", NULL, &ks) ||
            tind_keyspace_open(db, "gone", NULL, &gone))
            _exit(3);
        if (tind_put(gone, "a", 1, "b", 1)) _exit(4);
        char k[32], v[64];
        for (int i = 0; i < 200; i++) {
            int kl = snprintf(k, sizeof k, "key%06d", i), vl = snprintf(v, sizeof v, "value-%d", i);
            if (tind_put(ks, k, (size_t)kl, v, (size_t)vl)) _exit(5);
        }
        if (tind_keyspace_drop(db, "gone")) _exit(6);
        _exit(0); /* no close: a crash as far as the database can tell */
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: %d", st);
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    check_n(ks, 0, 200);
    char **names;
    size_t n;
    cr_assert_eq(tind_keyspace_list(db, &names, &n), TIND_OK);
    cr_assert_eq(n, 1, "the dropped keyspace came back");
    cr_assert_str_eq(names[0], "ks");
    tind_free(names);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(recovery, unfinished_keyspace_folder_is_removed_at_open)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    cr_assert_eq(tind_close(db), TIND_OK);
    char p[700];
    snprintf(p, sizeof p, "%s/keyspaces/77", dbp);
    cr_assert_eq(mkdir(p, 0755), 0);
    db = open_db(NULL);
    cr_assert_eq(access(p, F_OK), -1, "leftover folder still there");
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(recovery, missing_meta_file_with_journals_is_corruption)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    put_n(ks, 0, 3);
    cr_assert_eq(tind_close(db), TIND_OK);
    char p[700];
    snprintf(p, sizeof p, "%s/TIND", dbp);
    cr_assert_eq(unlink(p), 0);
    int rc = tind_open(dbp, NULL, &db);
    cr_assert_eq(rc, TIND_CORRUPTION, "open gave %s", tind_strerror(rc));
}

Test(recovery, damaged_meta_file_is_corruption)
{
    tind_db *db = open_db(NULL);
    cr_assert_eq(tind_close(db), TIND_OK);
    char p[700];
    snprintf(p, sizeof p, "%s/TIND", dbp);
    flip_byte(p, 13);
    int rc = tind_open(dbp, NULL, &db);
    cr_assert_eq(rc, TIND_CORRUPTION, "open gave %s", tind_strerror(rc));
}

Test(recovery, damaged_keyspace_options_is_corruption)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    cr_assert_eq(tind_close(db), TIND_OK);
    char p[700];
    snprintf(p, sizeof p, "%s/keyspaces/1/OPTIONS", dbp);
    flip_byte(p, 18);
    int rc = tind_open(dbp, NULL, &db);
    cr_assert_eq(rc, TIND_CORRUPTION, "open gave %s", tind_strerror(rc));
    cr_assert(strstr(tind_last_error(), "OPTIONS") != NULL, "message: %s", tind_last_error());
}

Test(recovery, sequence_numbers_continue_after_reopen)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    put_n(ks, 0, 10);
    tind_snapshot *s;
    cr_assert_eq(tind_snapshot_open(db, &s), TIND_OK);
    uint64_t before = tind_snapshot_sequence(s);
    tind_snapshot_close(s);
    cr_assert_eq(before, 10);
    cr_assert_eq(tind_close(db), TIND_OK);
    /* Twice: an empty session must not lose the number either. */
    for (int round = 0; round < 2; round++) {
        db = open_db(&ks);
        cr_assert_eq(tind_snapshot_open(db, &s), TIND_OK);
        cr_assert_eq(tind_snapshot_sequence(s), before);
        tind_snapshot_close(s);
        cr_assert_eq(tind_close(db), TIND_OK);
    }
    db = open_db(&ks);
    put_n(ks, 10, 11);
    cr_assert_eq(tind_snapshot_open(db, &s), TIND_OK);
    cr_assert_eq(tind_snapshot_sequence(s), before + 1);
    tind_snapshot_close(s);
    check_absent(ks, 11);
    cr_assert_eq(tind_close(db), TIND_OK);
}

Test(recovery, reopening_leaves_no_empty_journals_behind)
{
    tind_keyspace *ks;
    tind_db *db = open_db(&ks);
    put_n(ks, 0, 10);
    cr_assert_eq(tind_close(db), TIND_OK);
    for (int i = 0; i < 5; i++) {
        db = open_db(&ks);
        cr_assert_eq(tind_close(db), TIND_OK);
    }
    db = open_db(&ks);
    struct tind_db_stats st;
    cr_assert_eq(tind_db_stats(db, &st), TIND_OK);
    /* The journal with the records and the one this open started. */
    cr_assert_eq(st.journal_files, 2, "journal files: %llu", (unsigned long long)st.journal_files);
    check_n(ks, 0, 10);
    cr_assert_eq(tind_close(db), TIND_OK);
}
