/* The fault-injection environment (fault_env.h): every operation it counts
 * asks fault_check first, then runs the POSIX environment's. */
#include "tests/support/fault_env.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "src/util/env.h"
#include "src/util/err.h"

/* fault_lock guards the armed fault; fault_armed lets the hot path skip it. */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fault_armed;
static pthread_cond_t fault_released = PTHREAD_COND_INITIALIZER; /* a held operation waits on it */
static struct file_fault fault;
static char fault_path[512];
static uint64_t fault_seen, fault_fired;
static enum file_op fault_first_op; /* the first failed operation since armed, and its path */
static char fault_first_path[512];
/* What the thread that failed first had done just before (counted, since
 * armed): a directory sync's meaning depends on it (after a removal, or after
 * a creation). Each thread keeps its last counted operation, valid while its
 * generation is the armed fault's. */
static uint64_t fault_gen;
static int fault_first_has_prev;
static int fault_let_go; /* file_fault_release: a held operation runs, counting goes on */
static enum file_op fault_first_prev;
static _Thread_local uint64_t fault_prev_gen;
static _Thread_local enum file_op fault_prev_op;

void file_fault_set(const struct file_fault *f)
{
    /* Installed before it is armed, so that every operation from here on
     * counts; the power-loss environment, when installed, runs over it. */
    if (file_env_get() == file_env_default()) file_env_set(file_fault_env());
    pthread_mutex_lock(&fault_lock);
    fault = *f;
    fault_path[0] = 0;
    if (f->path_part) {
        snprintf(fault_path, sizeof fault_path, "%s", f->path_part);
        fault.path_part = fault_path;
    }
    fault_seen = fault_fired = 0;
    fault_let_go = 0;
    fault_gen++;
    atomic_store(&fault_armed, 1);
    pthread_mutex_unlock(&fault_lock);
}

void file_fault_clear(void)
{
    pthread_mutex_lock(&fault_lock);
    atomic_store(&fault_armed, 0);
    pthread_cond_broadcast(&fault_released);
    pthread_mutex_unlock(&fault_lock);
}

void file_fault_release(void)
{
    pthread_mutex_lock(&fault_lock);
    fault_let_go = 1;
    pthread_cond_broadcast(&fault_released);
    pthread_mutex_unlock(&fault_lock);
}

uint64_t file_fault_seen(void)
{
    pthread_mutex_lock(&fault_lock);
    uint64_t n = fault_seen;
    pthread_mutex_unlock(&fault_lock);
    return n;
}

int file_fault_first(enum file_op *op, char *path, size_t cap)
{
    pthread_mutex_lock(&fault_lock);
    int any = fault_fired > 0 && !fault.hold;
    if (any) {
        *op = fault_first_op;
        snprintf(path, cap, "%s", fault_first_path);
    }
    pthread_mutex_unlock(&fault_lock);
    return any;
}

int file_fault_first_prev(enum file_op *op)
{
    pthread_mutex_lock(&fault_lock);
    int any = fault_fired > 0 && !fault.hold && fault_first_has_prev;
    if (any) *op = fault_first_prev;
    pthread_mutex_unlock(&fault_lock);
    return any;
}

uint64_t file_fault_fired(void)
{
    pthread_mutex_lock(&fault_lock);
    uint64_t n = fault_fired;
    pthread_mutex_unlock(&fault_lock);
    return n;
}

/* Returns the errno to fail op on path with, or 0; *short_write tells a
 * failing write to write part of its data first. */
static int fault_check(enum file_op op, const char *path, int *short_write)
{
    if (!atomic_load_explicit(&fault_armed, memory_order_relaxed)) return 0;
    int e = 0;
    pthread_mutex_lock(&fault_lock);
    if (atomic_load(&fault_armed) && (fault.ops & FOP_BIT(op)) &&
        (!fault.path_part || (path && strstr(path, fault.path_part)))) {
        uint64_t n = fault_seen++;
        if (fault.hold && n == fault.nth) {
            /* Held, not failed: waits for file_fault_clear, then runs. */
            fault_fired++;
            while (atomic_load(&fault_armed) && !fault_let_go) pthread_cond_wait(&fault_released, &fault_lock);
        } else if (!fault.hold && (n == fault.nth || (fault.forever && n > fault.nth))) {
            e = fault.err ? fault.err : EIO;
            if (fault_fired++ == 0) {
                fault_first_op = op;
                snprintf(fault_first_path, sizeof fault_first_path, "%s", path ? path : "");
                fault_first_has_prev = fault_prev_gen == fault_gen;
                fault_first_prev = fault_prev_op;
            }
            if (short_write) *short_write = fault.short_write;
        }
        fault_prev_gen = fault_gen;
        fault_prev_op = op;
    }
    pthread_mutex_unlock(&fault_lock);
    return e;
}

/* ---- the environment --------------------------------------------------------- */

/* The environment this one runs over. */
static const struct file_env *base(void) { return file_env_default(); }

static int fault_open(const char *path, int flags, tfile **out)
{
    *out = NULL;
    int e = fault_check(FOP_OPEN, path, NULL);
    if (e) return err_errno(e, "open", path);
    return base()->open(path, flags, out);
}

static int fault_close(tfile *f) { return base()->close(f); }

static int fault_appendv(tfile *f, const struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
    if (total == 0) return TIND_OK;
    int short_write = 0;
    int e = fault_check(FOP_WRITE, f->path, &short_write);
    if (!e) return base()->appendv(f, iov, iovcnt);
    if (short_write) {
        /* Write the first half of the bytes, then fail: a torn append. */
        size_t want = total / 2;
        for (int i = 0; i < iovcnt && want > 0; i++) {
            struct iovec part = {iov[i].iov_base, iov[i].iov_len < want ? iov[i].iov_len : want};
            if (base()->appendv(f, &part, 1) != TIND_OK) break;
            want -= part.iov_len;
        }
    }
    return err_errno(e, "write", f->path);
}

static int fault_read_at(tfile *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    int e = fault_check(FOP_READ, f->path, NULL);
    if (e) return err_errno(e, "read", f->path);
    return base()->read_at(f, off, buf, n, got);
}

static int fault_sync(tfile *f, int data_only)
{
    int e = fault_check(data_only ? FOP_DATASYNC : FOP_SYNC, f->path, NULL);
    if (e) return err_errno(e, data_only ? "fdatasync" : "fsync", f->path);
    return base()->sync(f, data_only);
}

static int fault_truncate(tfile *f, uint64_t size)
{
    int e = fault_check(FOP_TRUNCATE, f->path, NULL);
    if (e) return err_errno(e, "truncate", f->path);
    return base()->truncate(f, size);
}

static int fault_rename(const char *from, const char *to)
{
    int e = fault_check(FOP_RENAME, to, NULL);
    if (e) return err_errno(e, "rename to", to);
    return base()->rename(from, to);
}

static int fault_unlink(const char *path)
{
    int e = fault_check(FOP_UNLINK, path, NULL);
    if (e) return err_errno(e, "unlink", path);
    return base()->unlink(path);
}

static void fault_discard(const char *path) { base()->discard(path); }

static int fault_mkdir(const char *path)
{
    int e = fault_check(FOP_MKDIR, path, NULL);
    if (e) return err_errno(e, "mkdir", path);
    return base()->mkdir(path);
}

static int fault_rmdir(const char *path)
{
    int e = fault_check(FOP_UNLINK, path, NULL);
    if (e) return err_errno(e, "rmdir", path);
    return base()->rmdir(path);
}

static int fault_sync_dir(const char *dir)
{
    int e = fault_check(FOP_SYNC_DIR, dir, NULL);
    if (e) return err_errno(e, "fsync directory", dir);
    return base()->sync_dir(dir);
}

static int fault_exists(const char *path) { return base()->exists(path); }

static int fault_is_dir(const char *path) { return base()->is_dir(path); }

static int fault_stat_size(const char *path, uint64_t *size) { return base()->stat_size(path, size); }

static int fault_list_dir(const char *dir, char ***names, size_t *count) { return base()->list_dir(dir, names, count); }

static int fault_lock_file(const char *path, int *fd)
{
    int e = fault_check(FOP_OPEN, path, NULL);
    if (e) return err_errno(e, "open", path);
    return base()->lock(path, fd);
}

static void fault_unlock_file(int fd) { base()->unlock(fd); }

static const struct file_env fault_env = {
    .open = fault_open,
    .close = fault_close,
    .appendv = fault_appendv,
    .read_at = fault_read_at,
    .sync = fault_sync,
    .truncate = fault_truncate,
    .rename = fault_rename,
    .unlink = fault_unlink,
    .discard = fault_discard,
    .mkdir = fault_mkdir,
    .rmdir = fault_rmdir,
    .sync_dir = fault_sync_dir,
    .exists = fault_exists,
    .is_dir = fault_is_dir,
    .stat_size = fault_stat_size,
    .list_dir = fault_list_dir,
    .lock = fault_lock_file,
    .unlock = fault_unlock_file,
};

const struct file_env *file_fault_env(void) { return &fault_env; }
