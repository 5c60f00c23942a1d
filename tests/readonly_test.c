/* Read-only opens: readers share a directory, a writer and readers exclude
 * each other, nothing in the directory changes, every write is refused. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/expect.h"
#include "tests/support/testutil.h"
#include "tind.h"

static char *g_dir;

static void ro_setup(void)
{
    g_dir = tu_mkdtemp("ro");
    cr_assert_not_null(g_dir);
}

static void ro_teardown(void)
{
    tu_rmtree(g_dir);
    free(g_dir);
}

TestSuite(readonly, .init = ro_setup, .fini = ro_teardown, .timeout = 60);

static void ro_options(tind_options *o)
{
    tind_options_init(o);
    o->read_only = 1;
}

/* ---- a listing of every file: name, size, mtime ------------------------------------ */

struct entry {
    char path[PATH_MAX];
    long long size;
    long long mtime_ns;
    int is_dir;
};
struct listing {
    struct entry e[512];
    size_t n;
};

static void list_tree(const char *dir, struct listing *l)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s", dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        cr_assert_lt(l->n, 512u);
        struct entry *e = &l->e[l->n++];
        snprintf(e->path, sizeof e->path, "%s/%s", dir, de->d_name);
        struct stat st;
        cr_assert_eq(lstat(e->path, &st), 0);
        e->size = (long long)st.st_size;
        e->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        e->is_dir = S_ISDIR(st.st_mode);
        if (e->is_dir) list_tree(e->path, l);
    }
    closedir(d);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static void snapshot_tree(struct listing *l)
{
    l->n = 0;
    list_tree(g_dir, l);
    qsort(l->e, l->n, sizeof l->e[0], entry_cmp);
}

static void expect_same_tree(const struct listing *a, const struct listing *b)
{
    cr_assert_eq(a->n, b->n, "%zu files before, %zu after", a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        cr_assert_str_eq(a->e[i].path, b->e[i].path);
        if (a->e[i].is_dir) continue; /* a directory's size and mtime follow its entries, checked above */
        cr_assert_eq(a->e[i].size, b->e[i].size, "%s: size %lld before, %lld after", a->e[i].path, a->e[i].size,
                     b->e[i].size);
        cr_assert_eq(a->e[i].mtime_ns, b->e[i].mtime_ns, "%s: modified", a->e[i].path);
    }
}

/* ---- data --------------------------------------------------------------------------- */

/* 300 keys in tables (flushed), 100 more and 10 deletes in the journal only. */
static void fill(void)
{
    tind_db *db;
    tind_keyspace *ks, *other;
    EXPECT_OK(tind_open(g_dir, NULL, &db));
    EXPECT_OK(tind_keyspace_open(db, "main", NULL, &ks));
    EXPECT_OK(tind_keyspace_open(db, "other", NULL, &other));
    char k[32], v[32];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "key%05d", i);
        snprintf(v, sizeof v, "value%d", i);
        EXPECT_OK(tind_put(ks, k, strlen(k), v, strlen(v)));
    }
    EXPECT_OK(tind_keyspace_flush(ks));
    for (int i = 300; i < 400; i++) {
        snprintf(k, sizeof k, "key%05d", i);
        snprintf(v, sizeof v, "value%d", i);
        EXPECT_OK(tind_put(ks, k, strlen(k), v, strlen(v)));
    }
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "key%05d", i);
        EXPECT_OK(tind_delete(ks, k, strlen(k)));
    }
    EXPECT_OK(tind_put(other, "o", 1, "x", 1));
    EXPECT_OK(tind_close(db));
}

/* Checks what fill() wrote through db. */
static void check_contents(tind_db *db)
{
    tind_keyspace *ks;
    EXPECT_OK(tind_keyspace_open(db, "main", NULL, &ks));
    char k[32], v[32];
    void *val;
    size_t vlen;
    for (int i = 0; i < 400; i += 7) {
        snprintf(k, sizeof k, "key%05d", i);
        if (i < 10) {
            EXPECT_RC(tind_get(ks, k, strlen(k), &val, &vlen), TIND_NOT_FOUND);
            continue;
        }
        snprintf(v, sizeof v, "value%d", i);
        EXPECT_OK(tind_get(ks, k, strlen(k), &val, &vlen));
        cr_assert_eq(vlen, strlen(v));
        cr_assert_eq(memcmp(val, v, vlen), 0);
        tind_free(val);
    }
    tind_iter *it;
    EXPECT_OK(tind_iter_open(ks, NULL, NULL, &it));
    size_t n = 0;
    for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it)) n++;
    EXPECT_OK(tind_iter_status(it));
    tind_iter_close(it);
    cr_assert_eq(n, 390u);
}

Test(readonly, missing_database_is_not_found_and_not_created)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/none", g_dir);
    tind_options o;
    ro_options(&o);
    tind_db *db;
    EXPECT_RC(tind_open(p, &o, &db), TIND_NOT_FOUND);
    cr_assert_null(db);
    struct stat st;
    cr_assert_neq(stat(p, &st), 0, "a read-only open created %s", p);
}

Test(readonly, two_readers_at_once_read_everything_and_change_nothing)
{
    fill();
    struct listing before, after;
    snapshot_tree(&before);
    tind_options o;
    ro_options(&o);
    tind_db *a, *b;
    EXPECT_OK(tind_open(g_dir, &o, &a));
    EXPECT_OK(tind_open(g_dir, &o, &b));
    check_contents(a);
    check_contents(b);
    char **names;
    size_t n;
    EXPECT_OK(tind_keyspace_list(a, &names, &n));
    cr_assert_eq(n, 2u);
    cr_assert_str_eq(names[0], "main");
    tind_free(names);
    struct tind_db_stats st;
    EXPECT_OK(tind_db_stats(a, &st));
    cr_assert_eq(st.last_sequence, 411u);
    tind_keyspace *ks;
    EXPECT_OK(tind_keyspace_open(b, "main", NULL, &ks));
    struct tind_keyspace_stats kst;
    EXPECT_OK(tind_keyspace_stats(ks, &kst));
    cr_assert_eq(kst.tables[0], 1u);
    cr_assert_eq(kst.memtable_entries, 110u);
    EXPECT_OK(tind_close(a));
    EXPECT_OK(tind_close(b));
    snapshot_tree(&after);
    expect_same_tree(&before, &after);
}

Test(readonly, every_write_is_refused)
{
    fill();
    struct listing before, after;
    snapshot_tree(&before);
    tind_options o;
    ro_options(&o);
    tind_db *db;
    EXPECT_OK(tind_open(g_dir, &o, &db));
    tind_keyspace *ks, *nks = NULL;
    EXPECT_OK(tind_keyspace_open(db, "main", NULL, &ks));
    EXPECT_RC(tind_put(ks, "k", 1, "v", 1), TIND_INVALID);
    cr_assert(strstr(tind_last_error(), "read-only"), "message: %s", tind_last_error());
    EXPECT_RC(tind_delete(ks, "key00050", 8), TIND_INVALID);
    tind_batch *b;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_OK(tind_batch_put(b, ks, "k", 1, "v", 1));
    EXPECT_RC(tind_batch_commit(db, b, TIND_DURABILITY_BUFFERED), TIND_INVALID);
    tind_batch_free(b);
    EXPECT_RC(tind_persist(db, TIND_DURABILITY_SYNC_ALL), TIND_INVALID);
    EXPECT_RC(tind_keyspace_open(db, "new", NULL, &nks), TIND_INVALID);
    cr_assert_null(nks);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.block_size = 8192;
    EXPECT_RC(tind_keyspace_open(db, "main", &ko, &nks), TIND_INVALID);
    EXPECT_RC(tind_keyspace_drop(db, "other"), TIND_INVALID);
    EXPECT_RC(tind_keyspace_flush(ks), TIND_INVALID);
    EXPECT_RC(tind_keyspace_compact(ks), TIND_INVALID);
    /* Transactions: reading ones work, writing ones are refused. */
    tind_tx *tx;
    EXPECT_RC(tind_wtx_begin(db, &tx), TIND_INVALID);
    EXPECT_OK(tind_tx_begin(db, &tx));
    void *v;
    size_t vl;
    EXPECT_OK(tind_tx_get(tx, ks, "key00050", 8, &v, &vl));
    tind_free(v);
    EXPECT_RC(tind_tx_put(tx, ks, "k", 1, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_tx_delete(tx, ks, "key00050", 8), TIND_INVALID);
    EXPECT_OK(tind_tx_commit(tx));
    /* Reads still work after the refusals. */
    check_contents(db);
    EXPECT_OK(tind_close(db));
    snapshot_tree(&after);
    expect_same_tree(&before, &after);
}

Test(readonly, writer_and_reader_exclude_each_other_both_ways)
{
    fill();
    tind_options o;
    ro_options(&o);
    tind_db *w, *r, *x;
    EXPECT_OK(tind_open(g_dir, NULL, &w));
    EXPECT_RC(tind_open(g_dir, &o, &x), TIND_BUSY);
    cr_assert(strstr(tind_last_error(), "read-write"), "message: %s", tind_last_error());
    EXPECT_OK(tind_close(w));

    EXPECT_OK(tind_open(g_dir, &o, &r));
    EXPECT_RC(tind_open(g_dir, NULL, &x), TIND_BUSY);
    cr_assert(strstr(tind_last_error(), "read-only"), "message: %s", tind_last_error());
    EXPECT_OK(tind_close(r));
    EXPECT_OK(tind_open(g_dir, NULL, &w));
    EXPECT_OK(tind_close(w));
}

Test(readonly, another_process_reader_shares_and_writer_is_busy)
{
    fill();
    tind_options o;
    ro_options(&o);
    tind_db *r;
    /* Fork before this process starts the database's threads (ThreadSanitizer
     * cannot start threads in the child of a multi-threaded fork); the
     * child waits on the pipe until the parent holds its read-only handle. */
    int go[2];
    cr_assert_eq(pipe(go), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char c1;
        close(go[1]);
        if (read(go[0], &c1, 1) != 1) _exit(2);
        tind_db *c;
        int ok = tind_open(g_dir, &o, &c) == TIND_OK && tind_close(c) == TIND_OK;
        ok = ok && tind_open(g_dir, NULL, &c) == TIND_BUSY;
        _exit(ok ? 0 : 1);
    }
    close(go[0]);
    EXPECT_OK(tind_open(g_dir, &o, &r));
    cr_assert_eq(write(go[1], "x", 1), 1);
    close(go[1]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's opens did not go as expected");
    EXPECT_OK(tind_close(r));
}

Test(readonly, torn_journal_tail_is_skipped_not_cut)
{
    fill();
    /* Append half a record to the newest journal. */
    char jdir[PATH_MAX / 2], newest[PATH_MAX] = "";
    snprintf(jdir, sizeof jdir, "%s/journals", g_dir);
    DIR *d = opendir(jdir);
    cr_assert_not_null(d);
    struct dirent *de;
    char best[256] = "";
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".jnl") && strcmp(de->d_name, best) > 0) memcpy(best, de->d_name, strlen(de->d_name) + 1);
    closedir(d);
    snprintf(newest, sizeof newest, "%s/%s", jdir, best);
    int fd = open(newest, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    static const unsigned char torn[11] = {0x30, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x33};
    cr_assert_eq(write(fd, torn, sizeof torn), (ssize_t)sizeof torn);
    close(fd);

    struct listing before, after;
    snapshot_tree(&before);
    tind_options o;
    ro_options(&o);
    tind_db *db;
    EXPECT_OK(tind_open(g_dir, &o, &db));
    check_contents(db);
    /* Verification reads the newest journal up to its valid end. */
    struct tind_verify_report r;
    EXPECT_OK(tind_db_verify(db, &r));
    cr_assert_eq(r.journal_records, 411u);
    cr_assert_eq(r.tables, 1u);
    EXPECT_OK(tind_close(db));
    snapshot_tree(&after);
    expect_same_tree(&before, &after);

    /* A read-write open then cuts it, as always. */
    struct stat st0, st1;
    cr_assert_eq(stat(newest, &st0), 0);
    EXPECT_OK(tind_open(g_dir, NULL, &db));
    check_contents(db);
    EXPECT_OK(tind_close(db));
    cr_assert_eq(stat(newest, &st1), 0);
    cr_assert_eq(st1.st_size, st0.st_size - (off_t)sizeof torn);
}

Test(readonly, keyspace_without_manifest_reads_empty)
{
    tind_db *db;
    tind_keyspace *ks;
    EXPECT_OK(tind_open(g_dir, NULL, &db));
    EXPECT_OK(tind_keyspace_open(db, "e", NULL, &ks));
    EXPECT_OK(tind_close(db));
    /* A crash between the OPTIONS file and the first MANIFEST leaves this. */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/keyspaces/1/MANIFEST", g_dir);
    cr_assert_eq(unlink(p), 0);
    struct listing before, after;
    snapshot_tree(&before);
    tind_options o;
    ro_options(&o);
    EXPECT_OK(tind_open(g_dir, &o, &db));
    EXPECT_OK(tind_keyspace_open(db, "e", NULL, &ks));
    void *v;
    size_t vl;
    EXPECT_RC(tind_get(ks, "a", 1, &v, &vl), TIND_NOT_FOUND);
    EXPECT_OK(tind_close(db));
    snapshot_tree(&after);
    expect_same_tree(&before, &after);
}

Test(readonly, stored_keyspace_options_read_back)
{
    tind_db *db;
    tind_keyspace *ks;
    tind_keyspace_options ko, got;
    tind_keyspace_options_init(&ko);
    ko.block_size = 8192;
    ko.compaction = TIND_COMPACTION_TIERED;
    ko.compression[2] = TIND_COMPRESSION_NONE;
    EXPECT_OK(tind_open(g_dir, NULL, &db));
    EXPECT_OK(tind_keyspace_open(db, "t", &ko, &ks));
    EXPECT_OK(tind_keyspace_get_options(ks, &got));
    cr_assert_eq(memcmp(&got, &ko, sizeof ko), 0);
    EXPECT_RC(tind_keyspace_get_options(ks, NULL), TIND_INVALID);
    EXPECT_RC(tind_keyspace_get_options(NULL, &got), TIND_INVALID);
    EXPECT_OK(tind_close(db));
    tind_options o;
    ro_options(&o);
    EXPECT_OK(tind_open(g_dir, &o, &db));
    EXPECT_OK(tind_keyspace_open(db, "t", NULL, &ks));
    memset(&got, 0, sizeof got);
    EXPECT_OK(tind_keyspace_get_options(ks, &got));
    cr_assert_eq(memcmp(&got, &ko, sizeof ko), 0, "the options stored with the keyspace differ");
    /* The same options again are no change: allowed read-only. */
    EXPECT_OK(tind_keyspace_open(db, "t", &ko, &ks));
    EXPECT_OK(tind_close(db));
}

/* Equal options with other bytes in the struct's padding: what a caller who sets
 * each field on an uninitialized struct passes. */
static void options_field_by_field(tind_keyspace_options *out, const tind_keyspace_options *in)
{
    memset(out, 0xa5, sizeof *out);
    out->durability = in->durability;
    out->memtable_bytes = in->memtable_bytes;
    out->max_sealed_memtables = in->max_sealed_memtables;
    out->block_size = in->block_size;
    out->restart_interval = in->restart_interval;
    out->bloom_bits_per_key = in->bloom_bits_per_key;
    for (int l = 0; l < TIND_LEVELS; l++) out->compression[l] = in->compression[l];
    out->zstd_level = in->zstd_level;
    out->compaction = in->compaction;
    out->l0_trigger = in->l0_trigger;
    out->level_ratio = in->level_ratio;
    out->table_target_bytes = in->table_target_bytes;
    out->tier_width = in->tier_width;
    out->fifo_max_bytes = in->fifo_max_bytes;
    out->fifo_ttl_seconds = in->fifo_ttl_seconds;
    out->l0_slowdown_tables = in->l0_slowdown_tables;
    out->l0_stop_tables = in->l0_stop_tables;
    out->pending_slowdown_bytes = in->pending_slowdown_bytes;
    out->pending_stop_bytes = in->pending_stop_bytes;
}

static ino_t options_inode(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/keyspaces", dir);
    DIR *d = opendir(p);
    cr_assert_not_null(d, "opendir %s", p);
    struct dirent *de;
    while ((de = readdir(d)) && de->d_name[0] == '.') {}
    cr_assert_not_null(de, "%s is empty", p);
    snprintf(p, sizeof p, "%s/keyspaces/%s/OPTIONS", dir, de->d_name);
    closedir(d);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "stat %s", p);
    return st.st_ino;
}

Test(readonly, equal_options_with_other_padding_are_no_change)
{
    tind_db *db;
    tind_keyspace *ks;
    tind_keyspace_options ko, same;
    tind_keyspace_options_init(&ko);
    ko.block_size = 8192;
    options_field_by_field(&same, &ko);
    cr_assert_neq(memcmp(&same, &ko, sizeof ko), 0, "the struct has no padding to differ in");
    EXPECT_OK(tind_open(g_dir, NULL, &db));
    EXPECT_OK(tind_keyspace_open(db, "t", &ko, &ks));
    ino_t ino = options_inode(g_dir);
    /* Read-write: no rewrite of OPTIONS (file_write_atomic would rename a new inode in). */
    EXPECT_OK(tind_keyspace_open(db, "t", &same, &ks));
    cr_assert_eq(options_inode(g_dir), ino, "equal options rewrote the OPTIONS file");
    EXPECT_OK(tind_close(db));
    tind_options o;
    ro_options(&o);
    EXPECT_OK(tind_open(g_dir, &o, &db));
    EXPECT_OK(tind_keyspace_open(db, "t", &same, &ks));
    ko.block_size = 16384;
    EXPECT_RC(tind_keyspace_open(db, "t", &ko, &ks), TIND_INVALID);
    EXPECT_OK(tind_close(db));
}
