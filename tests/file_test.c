/* src/util/file.c: the file layer; tests/support/fault_env.c: its fault injection. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/util/env.h"
#include "src/util/err.h"
#include "src/util/file.h"
#include "tests/support/fault_env.h"

static void ft_mkdtemp(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/tind-file-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void ft_rmtree(const char *dir)
{
    file_fault_clear();
    cr_assert_eq(file_remove_tree(dir), TIND_OK, "remove %s: %s", dir, err_msg());
    cr_assert_eq(file_exists(dir), 0);
}

static void ft_join(char *out, const char *dir, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static uint64_t ft_size(const char *path)
{
    uint64_t n;
    cr_assert_eq(file_stat_size(path, &n), TIND_OK, "%s", err_msg());
    return n;
}

Test(file, append_and_read_back)
{
    char dir[64], p[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(p, dir, "a.dat");
    tfile *f;
    cr_assert_eq(file_open(p, FILE_READ | FILE_WRITE | FILE_CREATE | FILE_EXCL, &f), TIND_OK, "%s", err_msg());
    cr_assert_str_eq(file_path(f), p);
    cr_assert_eq(file_size(f), 0u);
    uint8_t data[10000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
    cr_assert_eq(file_append(f, data, 3000), TIND_OK);
    struct iovec iov[3] = {{data + 3000, 1000}, {data + 4000, 0}, {data + 4000, 6000}};
    cr_assert_eq(file_appendv(f, iov, 3), TIND_OK);
    cr_assert_eq(file_size(f), sizeof data);
    cr_assert_eq(file_sync(f, 1), TIND_OK);
    cr_assert_eq(file_sync(f, 0), TIND_OK);

    uint8_t back[sizeof data + 100];
    size_t got;
    cr_assert_eq(file_read_at(f, 0, back, sizeof back, &got), TIND_OK);
    cr_assert_eq(got, sizeof data, "a read past the end is short, not an error");
    cr_assert_eq(memcmp(back, data, sizeof data), 0);
    cr_assert_eq(file_read_at(f, 9990, back, 100, &got), TIND_OK);
    cr_assert_eq(got, 10u);
    cr_assert_eq(file_read_at(f, 20000, back, 100, &got), TIND_OK);
    cr_assert_eq(got, 0u);

    cr_assert_eq(file_truncate(f, 500), TIND_OK);
    cr_assert_eq(file_size(f), 500u);
    cr_assert_eq(file_append(f, "xy", 2), TIND_OK);
    cr_assert_eq(file_close(f), TIND_OK);
    cr_assert_eq(ft_size(p), 502u);

    /* Reopened, the size is the file's. */
    cr_assert_eq(file_open(p, FILE_READ, &f), TIND_OK);
    cr_assert_eq(file_size(f), 502u);
    cr_assert_eq(file_read_at(f, 499, back, 3, &got), TIND_OK);
    cr_assert_eq(got, 3u);
    cr_assert_eq(back[0], data[499]);
    cr_assert_eq(back[1], 'x');
    cr_assert_eq(back[2], 'y');
    cr_assert_eq(file_close(f), TIND_OK);
    cr_assert_eq(file_close(NULL), TIND_OK);

    /* EXCL refuses an existing file; a missing file is an I/O error naming it. */
    cr_assert_eq(file_open(p, FILE_WRITE | FILE_CREATE | FILE_EXCL, &f), TIND_IO_ERROR);
    cr_assert_null(f);
    char missing[PATH_MAX];
    ft_join(missing, dir, "missing");
    cr_assert_eq(file_open(missing, FILE_READ, &f), TIND_IO_ERROR);
    cr_assert_not_null(strstr(err_msg(), missing), "%s", err_msg());
    cr_assert_eq(file_exists(missing), 0);
    cr_assert_eq(file_exists(p), 1);

    uint8_t *all;
    size_t n;
    cr_assert_eq(file_read_all(p, &all, &n), TIND_OK);
    cr_assert_eq(n, 502u);
    cr_assert_eq(memcmp(all, data, 500), 0);
    free(all);
    ft_rmtree(dir);
}

Test(file, write_atomic_replaces)
{
    char dir[64], p[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(p, dir, "CURRENT");
    cr_assert_eq(file_write_atomic(dir, "CURRENT", "first version", 13), TIND_OK, "%s", err_msg());
    cr_assert_eq(file_write_atomic(dir, "CURRENT", "two", 3), TIND_OK, "%s", err_msg());
    uint8_t *d;
    size_t n;
    cr_assert_eq(file_read_all(p, &d, &n), TIND_OK);
    cr_assert_eq(n, 3u);
    cr_assert_eq(memcmp(d, "two", 3), 0);
    free(d);
    char **names;
    size_t count;
    cr_assert_eq(file_list_dir(dir, &names, &count), TIND_OK);
    cr_assert_eq(count, 1u, "no temporary file is left behind");
    cr_assert_str_eq(names[0], "CURRENT");
    free(names);

    /* A failed rename leaves the old contents and no temporary file. */
    struct file_fault f = {.ops = FOP_BIT(FOP_RENAME), .nth = 0, .err = EIO};
    file_fault_set(&f);
    cr_assert_eq(file_write_atomic(dir, "CURRENT", "three", 5), TIND_IO_ERROR);
    file_fault_clear();
    cr_assert_eq(file_read_all(p, &d, &n), TIND_OK);
    cr_assert_eq(n, 3u);
    free(d);
    cr_assert_eq(file_list_dir(dir, &names, &count), TIND_OK);
    cr_assert_eq(count, 1u);
    free(names);
    ft_rmtree(dir);
}

Test(file, list_dir_sorted)
{
    char dir[64], p[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    const char *names_in[] = {"c", "aa", "b", "a", "B", "0000000000000010.jnl", "000000000000000f.jnl"};
    const char *want[] = {"000000000000000f.jnl", "0000000000000010.jnl", "B", "a", "aa", "b", "c", "sub"};
    for (size_t i = 0; i < sizeof names_in / sizeof *names_in; i++)
        cr_assert_eq(file_write_atomic(dir, names_in[i], "", 0), TIND_OK);
    ft_join(p, dir, "sub");
    cr_assert_eq(file_mkdir(p), TIND_OK);
    cr_assert_eq(file_mkdir(p), TIND_OK, "an existing directory is fine");
    char **names;
    size_t count;
    cr_assert_eq(file_list_dir(dir, &names, &count), TIND_OK);
    cr_assert_eq(count, sizeof want / sizeof *want);
    for (size_t i = 0; i < count; i++) cr_assert_str_eq(names[i], want[i], "entry %zu", i);
    free(names);

    cr_assert_eq(file_list_dir(p, &names, &count), TIND_OK);
    cr_assert_eq(count, 0u);
    free(names);
    ft_join(p, dir, "nope");
    cr_assert_eq(file_list_dir(p, &names, &count), TIND_IO_ERROR);
    ft_rmtree(dir);
}

Test(file, rename_unlink_sync_dir)
{
    char dir[64], a[PATH_MAX], b[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(a, dir, "a");
    ft_join(b, dir, "b");
    cr_assert_eq(file_write_atomic(dir, "a", "hello", 5), TIND_OK);
    cr_assert_eq(file_rename(a, b), TIND_OK);
    cr_assert_eq(file_exists(a), 0);
    cr_assert_eq(ft_size(b), 5u);
    cr_assert_eq(file_sync_dir(dir), TIND_OK);
    cr_assert_eq(file_unlink(b), TIND_OK);
    cr_assert_eq(file_exists(b), 0);
    cr_assert_eq(file_unlink(b), TIND_IO_ERROR);
    ft_rmtree(dir);
}

Test(file, lock_is_exclusive_within_the_process)
{
    char dir[64], p[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(p, dir, "LOCK");
    int fd1 = -1, fd2 = -1;
    cr_assert_eq(file_lock(p, &fd1), TIND_OK, "%s", err_msg());
    cr_assert_eq(file_lock(p, &fd2), TIND_BUSY);
    cr_assert_not_null(strstr(err_msg(), p), "%s", err_msg());
    file_unlock(fd1);
    cr_assert_eq(file_lock(p, &fd2), TIND_OK, "free again after unlock");
    file_unlock(fd2);
    file_unlock(-1);
    ft_rmtree(dir);
}

/* ---- the environment -------------------------------------------------------- */

/* An environment over the one installed before it that writes the name of
 * each operation it runs into rec_log. */
static const struct file_env *rec_base;
static char rec_log[512];

static void rec(const char *op)
{
    size_t n = strlen(rec_log);
    snprintf(rec_log + n, sizeof rec_log - n, "%s%s", n ? " " : "", op);
}

static int rec_open(const char *path, int flags, tfile **f)
{
    rec("open");
    return rec_base->open(path, flags, f);
}
static int rec_close(tfile *f) { rec("close"); return rec_base->close(f); }
static int rec_appendv(tfile *f, const struct iovec *iov, int n)
{
    rec("appendv");
    return rec_base->appendv(f, iov, n);
}
static int rec_read_at(tfile *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    rec("read_at");
    return rec_base->read_at(f, off, buf, n, got);
}
static int rec_sync(tfile *f, int data_only) { rec("sync"); return rec_base->sync(f, data_only); }
static int rec_truncate(tfile *f, uint64_t size) { rec("truncate"); return rec_base->truncate(f, size); }
static int rec_rename(const char *from, const char *to) { rec("rename"); return rec_base->rename(from, to); }
static int rec_unlink(const char *path) { rec("unlink"); return rec_base->unlink(path); }
static void rec_discard(const char *path) { rec("discard"); rec_base->discard(path); }
static int rec_mkdir(const char *path) { rec("mkdir"); return rec_base->mkdir(path); }
static int rec_rmdir(const char *path) { rec("rmdir"); return rec_base->rmdir(path); }
static int rec_sync_dir(const char *dir) { rec("sync_dir"); return rec_base->sync_dir(dir); }
static int rec_exists(const char *path) { rec("exists"); return rec_base->exists(path); }
static int rec_is_dir(const char *path) { rec("is_dir"); return rec_base->is_dir(path); }
static int rec_stat_size(const char *path, uint64_t *size)
{
    rec("stat_size");
    return rec_base->stat_size(path, size);
}
static int rec_list_dir(const char *dir, char ***names, size_t *count)
{
    rec("list_dir");
    return rec_base->list_dir(dir, names, count);
}
static int rec_lock(const char *path, int *fd) { rec("lock"); return rec_base->lock(path, fd); }
static void rec_unlock(int fd) { rec("unlock"); rec_base->unlock(fd); }

static const struct file_env rec_env = {
    .open = rec_open, .close = rec_close, .appendv = rec_appendv, .read_at = rec_read_at,
    .sync = rec_sync, .truncate = rec_truncate, .rename = rec_rename, .unlink = rec_unlink,
    .discard = rec_discard, .mkdir = rec_mkdir, .rmdir = rec_rmdir, .sync_dir = rec_sync_dir,
    .exists = rec_exists, .is_dir = rec_is_dir, .stat_size = rec_stat_size,
    .list_dir = rec_list_dir, .lock = rec_lock, .unlock = rec_unlock,
};

#define REC_EXPECT(want)                                                             \
    do {                                                                             \
        cr_assert_str_eq(rec_log, want);                                             \
        rec_log[0] = 0;                                                              \
    } while (0)

Test(file, every_operation_and_helper_runs_the_installed_environment)
{
    char dir[64], p[PATH_MAX], sub[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(p, dir, "a");
    ft_join(sub, dir, "d");
    rec_base = file_env_get();
    rec_log[0] = 0;
    file_env_set(&rec_env);
    cr_assert_eq(file_env_get(), &rec_env);

    tfile *f;
    uint8_t buf[8];
    size_t got;
    uint64_t size;
    int fd;
    cr_assert_eq(file_open(p, FILE_READ | FILE_WRITE | FILE_CREATE, &f), TIND_OK, "%s", err_msg());
    cr_assert_eq(file_append(f, "abc", 3), TIND_OK);
    cr_assert_eq(file_read_at(f, 0, buf, sizeof buf, &got), TIND_OK);
    cr_assert_eq(got, 3u);
    cr_assert_eq(file_sync(f, 1), TIND_OK);
    cr_assert_eq(file_truncate(f, 1), TIND_OK);
    cr_assert_eq(file_size(f), 1u);
    cr_assert_eq(file_close(f), TIND_OK);
    REC_EXPECT("open appendv read_at sync truncate close");
    cr_assert_eq(file_mkdir(sub), TIND_OK);
    cr_assert_eq(file_exists(sub), 1);
    cr_assert_eq(file_stat_size(p, &size), TIND_OK);
    cr_assert_eq(file_sync_parent(p), TIND_OK);
    cr_assert_eq(file_lock(p, &fd), TIND_OK, "%s", err_msg());
    file_unlock(fd);
    REC_EXPECT("mkdir exists stat_size sync_dir lock unlock");

    /* The helpers: an atomic write, a read of a whole file, a tree removed. */
    cr_assert_eq(file_write_atomic(dir, "b", "xyz", 3), TIND_OK, "%s", err_msg());
    REC_EXPECT("open appendv sync close rename sync_dir");
    uint8_t *data;
    size_t n;
    cr_assert_eq(file_read_all(p, &data, &n), TIND_OK);
    free(data);
    REC_EXPECT("open read_at close");
    /* Renamed over a directory, the temporary is discarded. */
    cr_assert_neq(file_write_atomic(dir, "d", "q", 1), TIND_OK);
    REC_EXPECT("open appendv sync close rename discard");
    ft_join(p, dir, "d.tmp");
    cr_assert_eq(file_exists(p), 0);
    cr_assert_eq(file_join(p, sizeof p, sub, "y"), TIND_OK);
    cr_assert_eq(file_write_atomic(sub, "y", "", 0), TIND_OK);
    rec_log[0] = 0;
    cr_assert_eq(file_unlink(p), TIND_OK);
    REC_EXPECT("unlink");
    cr_assert_eq(file_write_atomic(sub, "y", "", 0), TIND_OK);
    rec_log[0] = 0;
    char from[PATH_MAX], to[PATH_MAX];
    ft_join(from, dir, "b");
    ft_join(to, dir, "c");
    cr_assert_eq(file_rename(from, to), TIND_OK);
    REC_EXPECT("rename");
    /* dir holds a, c and d/y: each entry asked whether it is a directory. */
    cr_assert_eq(file_remove_tree(dir), TIND_OK, "%s", err_msg());
    REC_EXPECT("list_dir is_dir unlink is_dir unlink is_dir list_dir is_dir unlink rmdir rmdir");

    file_env_set(NULL);
    cr_assert_eq(file_env_get(), file_env_default());
    file_env_set(rec_base);
    cr_assert_eq(file_exists(dir), 0);
}

/* ---- fault injection ------------------------------------------------------ */

Test(file, fault_nth_write_fails_once)
{
    char dir[64], p[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(p, dir, "f.dat");
    tfile *f;
    cr_assert_eq(file_open(p, FILE_WRITE | FILE_CREATE, &f), TIND_OK);
    struct file_fault ff = {.ops = FOP_BIT(FOP_WRITE), .nth = 1, .err = EIO};
    file_fault_set(&ff);
    cr_assert_eq(file_append(f, "aaaa", 4), TIND_OK);
    cr_assert_eq(file_append(f, "bbbb", 4), TIND_IO_ERROR);
    cr_assert_not_null(strstr(err_msg(), p), "%s", err_msg());
    cr_assert_eq(file_append(f, "cccc", 4), TIND_OK, "only the nth fails");
    cr_assert_eq(file_fault_seen(), 3u);
    cr_assert_eq(file_fault_fired(), 1u);
    cr_assert_eq(file_sync(f, 0), TIND_OK, "syncs are not counted");
    cr_assert_eq(file_fault_seen(), 3u);
    file_fault_clear();
    cr_assert_eq(file_close(f), TIND_OK);
    cr_assert_eq(ft_size(p), 8u, "the failed write wrote nothing");
    ft_rmtree(dir);
}

Test(file, fault_errno_maps_to_status)
{
    char dir[64], p[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(p, dir, "f.dat");
    tfile *f;
    cr_assert_eq(file_open(p, FILE_WRITE | FILE_CREATE, &f), TIND_OK);
    struct {
        int err, rc;
    } cases[] = {{EIO, TIND_IO_ERROR}, {ENOSPC, TIND_NO_SPACE}, {EDQUOT, TIND_NO_SPACE}, {ENOMEM, TIND_NO_MEMORY},
                 {0, TIND_IO_ERROR} /* no errno given: EIO */};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct file_fault ff = {.ops = FOP_BIT(FOP_WRITE), .nth = 0, .err = cases[i].err};
        file_fault_set(&ff);
        cr_assert_eq(file_append(f, "x", 1), cases[i].rc, "errno %d", cases[i].err);
    }
    file_fault_clear();
    cr_assert_eq(file_close(f), TIND_OK);
    ft_rmtree(dir);
}

Test(file, fault_short_write_leaves_half)
{
    char dir[64], p[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(p, dir, "f.dat");
    tfile *f;
    cr_assert_eq(file_open(p, FILE_WRITE | FILE_CREATE, &f), TIND_OK);
    cr_assert_eq(file_append(f, "0123456789", 10), TIND_OK);
    struct file_fault ff = {.ops = FOP_BIT(FOP_WRITE), .nth = 0, .err = ENOSPC, .short_write = 1};
    file_fault_set(&ff);
    uint8_t data[100];
    memset(data, 'z', sizeof data);
    struct iovec iov[2] = {{data, 30}, {data + 30, 70}};
    cr_assert_eq(file_appendv(f, iov, 2), TIND_NO_SPACE);
    cr_assert_eq(file_size(f), 60u, "half of the 100 bytes landed");
    file_fault_clear();
    cr_assert_eq(file_close(f), TIND_OK);
    cr_assert_eq(ft_size(p), 60u);
    ft_rmtree(dir);
}

Test(file, fault_forever_keeps_failing)
{
    char dir[64], p[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(p, dir, "f.dat");
    tfile *f;
    cr_assert_eq(file_open(p, FILE_WRITE | FILE_CREATE, &f), TIND_OK);
    struct file_fault ff = {.ops = FOP_BIT(FOP_SYNC) | FOP_BIT(FOP_DATASYNC), .nth = 2, .err = EIO, .forever = 1};
    file_fault_set(&ff);
    cr_assert_eq(file_sync(f, 0), TIND_OK);
    cr_assert_eq(file_sync(f, 1), TIND_OK);
    for (int i = 0; i < 5; i++) cr_assert_eq(file_sync(f, i & 1), TIND_IO_ERROR, "sync %d after the nth", i);
    cr_assert_eq(file_fault_fired(), 5u);
    file_fault_clear();
    cr_assert_eq(file_sync(f, 0), TIND_OK, "cleared");
    cr_assert_eq(file_close(f), TIND_OK);
    ft_rmtree(dir);
}

Test(file, fault_path_part_filters)
{
    char dir[64], a[PATH_MAX], b[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(a, dir, "keep.dat");
    ft_join(b, dir, "0000000000000001.jnl");
    tfile *fa, *fb;
    cr_assert_eq(file_open(a, FILE_WRITE | FILE_CREATE, &fa), TIND_OK);
    cr_assert_eq(file_open(b, FILE_WRITE | FILE_CREATE, &fb), TIND_OK);
    char part[8];
    snprintf(part, sizeof part, ".jnl");
    struct file_fault ff = {.ops = FOP_BIT(FOP_WRITE), .path_part = part, .nth = 0, .err = EIO, .forever = 1};
    file_fault_set(&ff);
    part[0] = 'X'; /* the fault keeps its own copy */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(file_append(fa, "a", 1), TIND_OK);
        cr_assert_eq(file_append(fb, "b", 1), TIND_IO_ERROR);
    }
    cr_assert_eq(file_fault_seen(), 3u, "only matching paths count");
    file_fault_clear();
    cr_assert_eq(file_close(fa), TIND_OK);
    cr_assert_eq(file_close(fb), TIND_OK);
    ft_rmtree(dir);
}

/* Each operation kind can be failed on its own. */
Test(file, fault_every_operation)
{
    char dir[64], p[PATH_MAX], q[PATH_MAX], sub[PATH_MAX];
    ft_mkdtemp(dir, sizeof dir);
    ft_join(p, dir, "f.dat");
    ft_join(q, dir, "g.dat");
    ft_join(sub, dir, "sub");
    tfile *f;
    cr_assert_eq(file_open(p, FILE_READ | FILE_WRITE | FILE_CREATE, &f), TIND_OK);
    cr_assert_eq(file_append(f, "abc", 3), TIND_OK);
    for (int op = 0; op < FOP_COUNT; op++) {
        struct file_fault ff = {.ops = FOP_BIT(op), .nth = 0, .err = EIO};
        file_fault_set(&ff);
        int rc = TIND_OK;
        uint8_t buf[3];
        size_t got;
        tfile *g = NULL;
        switch (op) {
        case FOP_OPEN: rc = file_open(p, FILE_READ, &g); break;
        case FOP_READ: rc = file_read_at(f, 0, buf, 3, &got); break;
        case FOP_WRITE: rc = file_append(f, "d", 1); break;
        case FOP_SYNC: rc = file_sync(f, 0); break;
        case FOP_DATASYNC: rc = file_sync(f, 1); break;
        case FOP_RENAME: rc = file_rename(p, q); break;
        case FOP_UNLINK: rc = file_unlink(p); break;
        case FOP_SYNC_DIR: rc = file_sync_dir(dir); break;
        case FOP_TRUNCATE: rc = file_truncate(f, 1); break;
        case FOP_MKDIR: rc = file_mkdir(sub); break;
        default: cr_assert_fail("unknown op %d", op);
        }
        cr_assert_eq(rc, TIND_IO_ERROR, "op %d", op);
        cr_assert_eq(file_fault_fired(), 1u, "op %d", op);
        cr_assert_null(g);
    }
    file_fault_clear();
    /* None of the failed operations happened. */
    cr_assert_eq(file_exists(p), 1);
    cr_assert_eq(file_exists(q), 0);
    cr_assert_eq(file_exists(sub), 0);
    cr_assert_eq(file_size(f), 3u);
    cr_assert_eq(ft_size(p), 3u);
    cr_assert_eq(file_close(f), TIND_OK);
    ft_rmtree(dir);
}
