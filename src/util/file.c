/* The file layer (file.h) over the installed environment (env.h), and the
 * POSIX environment, the library's only one. */
#include "src/util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h> /* rename */
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/env.h"
#include "src/util/err.h"

/* ---- the POSIX environment ------------------------------------------------ */

static int posix_open(const char *path, int flags, tfile **out)
{
    *out = NULL;
    int of = O_CLOEXEC;
    if ((flags & FILE_READ) && (flags & FILE_WRITE)) of |= O_RDWR;
    else if (flags & FILE_WRITE) of |= O_WRONLY;
    else of |= O_RDONLY;
    if (flags & FILE_CREATE) of |= O_CREAT;
    if (flags & FILE_EXCL) of |= O_EXCL;
    if (flags & FILE_TRUNC) of |= O_TRUNC;
    size_t pl = strlen(path);
    tfile *f = malloc(sizeof *f + pl + 1);
    if (!f) return err_nomem();
    memcpy(f->path, path, pl + 1);
    do {
        f->fd = open(path, of, 0644);
    } while (f->fd < 0 && errno == EINTR);
    if (f->fd < 0) {
        int rc = err_errno(errno, "open", path);
        free(f);
        return rc;
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        int rc = err_errno(errno, "stat", path);
        close(f->fd);
        free(f);
        return rc;
    }
    f->size = (uint64_t)st.st_size;
    *out = f;
    return TIND_OK;
}

static int posix_close(tfile *f)
{
    if (!f) return TIND_OK;
    int rc = TIND_OK;
    if (close(f->fd) != 0 && errno != EINTR) rc = err_errno(errno, "close", f->path);
    free(f);
    return rc;
}

static int posix_appendv(tfile *f, const struct iovec *iov_in, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) total += iov_in[i].iov_len;
    if (total == 0) return TIND_OK;
    struct iovec local[64];
    struct iovec *iov = local;
    if (iovcnt > 64) {
        iov = malloc(sizeof *iov * (size_t)iovcnt);
        if (!iov) return err_nomem();
    }
    memcpy(iov, iov_in, sizeof *iov * (size_t)iovcnt);
    int rc = TIND_OK, i = 0;
    while (i < iovcnt) {
        int n = iovcnt - i;
        if (n > IOV_MAX) n = IOV_MAX;
        ssize_t w = pwritev(f->fd, iov + i, n, (off_t)f->size);
        if (w < 0) {
            if (errno == EINTR) continue;
            rc = err_errno(errno, "write", f->path);
            break;
        }
        f->size += (uint64_t)w;
        size_t left = (size_t)w;
        while (i < iovcnt && left >= iov[i].iov_len) {
            left -= iov[i].iov_len;
            i++;
        }
        if (i < iovcnt && left > 0) {
            iov[i].iov_base = (char *)iov[i].iov_base + left;
            iov[i].iov_len -= left;
        }
        while (i < iovcnt && iov[i].iov_len == 0) i++;
    }
    if (iov != local) free(iov);
    return rc;
}

static int posix_read_at(tfile *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return err_errno(errno, "read", f->path);
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    *got = done;
    return TIND_OK;
}

static int posix_sync(tfile *f, int data_only)
{
    int r;
    do {
        r = data_only ? fdatasync(f->fd) : fsync(f->fd);
    } while (r != 0 && errno == EINTR);
    if (r != 0) return err_errno(errno, data_only ? "fdatasync" : "fsync", f->path);
    return TIND_OK;
}

static int posix_truncate(tfile *f, uint64_t size)
{
    if (ftruncate(f->fd, (off_t)size) != 0) return err_errno(errno, "truncate", f->path);
    f->size = size;
    return TIND_OK;
}

static int posix_rename(const char *from, const char *to)
{
    if (rename(from, to) != 0) return err_errno(errno, "rename to", to);
    return TIND_OK;
}

static int posix_unlink(const char *path)
{
    if (unlink(path) != 0) return err_errno(errno, "unlink", path);
    return TIND_OK;
}

static int posix_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return err_errno(errno, "mkdir", path);
    return TIND_OK;
}

static int posix_rmdir(const char *path)
{
    if (rmdir(path) != 0) return err_errno(errno, "rmdir", path);
    return TIND_OK;
}

static int posix_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err_errno(errno, "open directory", dir);
    int r;
    do {
        r = fsync(fd);
    } while (r != 0 && errno == EINTR);
    int rc = r == 0 ? TIND_OK : err_errno(errno, "fsync directory", dir);
    close(fd);
    return rc;
}

static int posix_exists(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) return 1;
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    return err_errno(errno, "stat", path);
}

static int posix_stat_size(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0) return err_errno(errno, "stat", path);
    *size = (uint64_t)st.st_size;
    return TIND_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int posix_list_dir(const char *dir, char ***names_out, size_t *count_out)
{
    *names_out = NULL;
    *count_out = 0;
    DIR *d = opendir(dir);
    if (!d) return err_errno(errno, "open directory", dir);
    size_t n = 0, bytes = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        n++;
        bytes += strlen(de->d_name) + 1;
    }
    rewinddir(d);
    /* The directory may grow between the passes; leave room and stop at it. */
    size_t cap = n + 16, cap_bytes = bytes + 16 * 256;
    char **names = malloc(cap * sizeof *names + cap_bytes);
    if (!names) {
        closedir(d);
        return err_nomem();
    }
    char *sp = (char *)(names + cap), *send = sp + cap_bytes;
    size_t i = 0;
    while ((de = readdir(d)) != NULL && i < cap) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        size_t l = strlen(de->d_name) + 1;
        if ((size_t)(send - sp) < l) break;
        memcpy(sp, de->d_name, l);
        names[i++] = sp;
        sp += l;
    }
    closedir(d);
    qsort(names, i, sizeof *names, cmp_str);
    *names_out = names;
    *count_out = i;
    return TIND_OK;
}

static int posix_lock(const char *path, int *fd_out)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return err_errno(errno, "open", path);
    /* flock locks belong to the open file description, so a second open of
     * the same database in this process conflicts too. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int en = errno;
        close(fd);
        if (en == EWOULDBLOCK)
            return err_set(TIND_BUSY, "%s: the database is open in another handle or process", path);
        return err_errno(en, "lock", path);
    }
    *fd_out = fd;
    return TIND_OK;
}

static void posix_unlock(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

static void posix_discard(const char *path) { unlink(path); }

static int posix_is_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const struct file_env posix_env = {
    .open = posix_open,
    .close = posix_close,
    .appendv = posix_appendv,
    .read_at = posix_read_at,
    .sync = posix_sync,
    .truncate = posix_truncate,
    .rename = posix_rename,
    .unlink = posix_unlink,
    .discard = posix_discard,
    .mkdir = posix_mkdir,
    .rmdir = posix_rmdir,
    .sync_dir = posix_sync_dir,
    .exists = posix_exists,
    .is_dir = posix_is_dir,
    .stat_size = posix_stat_size,
    .list_dir = posix_list_dir,
    .lock = posix_lock,
    .unlock = posix_unlock,
};

/* ---- the installed environment -------------------------------------------- */

/* Read with one acquire load per operation: an environment installed while
 * other threads run is seen whole. */
static const struct file_env *_Atomic installed = &posix_env;

static const struct file_env *env(void) { return atomic_load_explicit(&installed, memory_order_acquire); }

const struct file_env *file_env_default(void) { return &posix_env; }

const struct file_env *file_env_get(void) { return env(); }

void file_env_set(const struct file_env *e) { atomic_store_explicit(&installed, e ? e : &posix_env, memory_order_release); }

/* ---- the operations ---------------------------------------------------------- */

int file_open(const char *path, int flags, tfile **f) { return env()->open(path, flags, f); }

int file_close(tfile *f) { return env()->close(f); }

const char *file_path(const tfile *f) { return f->path; }

uint64_t file_size(const tfile *f) { return f->size; }

int file_appendv(tfile *f, const struct iovec *iov, int iovcnt) { return env()->appendv(f, iov, iovcnt); }

int file_append(tfile *f, const void *buf, size_t n)
{
    struct iovec v = {(void *)buf, n};
    return file_appendv(f, &v, 1);
}

int file_read_at(tfile *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    return env()->read_at(f, off, buf, n, got);
}

int file_sync(tfile *f, int data_only) { return env()->sync(f, data_only); }

int file_truncate(tfile *f, uint64_t size) { return env()->truncate(f, size); }

int file_rename(const char *from, const char *to) { return env()->rename(from, to); }

int file_unlink(const char *path) { return env()->unlink(path); }

int file_mkdir(const char *path) { return env()->mkdir(path); }

int file_rmdir(const char *path) { return env()->rmdir(path); }

int file_sync_dir(const char *dir) { return env()->sync_dir(dir); }

int file_exists(const char *path) { return env()->exists(path); }

int file_stat_size(const char *path, uint64_t *size) { return env()->stat_size(path, size); }

int file_list_dir(const char *dir, char ***names, size_t *count) { return env()->list_dir(dir, names, count); }

int file_lock(const char *path, int *fd) { return env()->lock(path, fd); }

void file_unlock(int fd) { env()->unlock(fd); }

/* ---- helpers over the operations ------------------------------------------- */

int file_parse_numbered(const char *name, const char *suffix, uint64_t *number)
{
    if (strlen(name) != 16 + strlen(suffix) || strcmp(name + 16, suffix) != 0) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else return 0;
        v = v << 4 | d;
    }
    *number = v;
    return 1;
}

int file_join(char *out, size_t cap, const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    if (dl + 1 + nl + 1 > cap) return err_set(TIND_INVALID, "path too long: %s/%s", dir, name);
    memcpy(out, dir, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, name, nl + 1);
    return TIND_OK;
}

int file_sync_parent(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    while (n > 0 && path[n - 1] != '/') n--;
    if (n == 0) return file_sync_dir(".");
    while (n > 1 && path[n - 1] == '/') n--;
    char dir[PATH_MAX];
    if (n >= sizeof dir) return err_set(TIND_INVALID, "path too long: %s", path);
    memcpy(dir, path, n);
    dir[n] = 0;
    return file_sync_dir(dir);
}

int file_write_atomic(const char *dir, const char *name, const void *data, size_t n)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    int rc = file_join(dst, sizeof dst - 4, dir, name);
    if (rc) return rc;
    memcpy(tmp, dst, strlen(dst));
    memcpy(tmp + strlen(dst), ".tmp", 5);
    tfile *f;
    rc = file_open(tmp, FILE_WRITE | FILE_CREATE | FILE_TRUNC, &f);
    if (rc) return rc;
    if ((rc = file_append(f, data, n)) != TIND_OK || (rc = file_sync(f, 0)) != TIND_OK) {
        file_close(f);
        env()->discard(tmp);
        return rc;
    }
    if ((rc = file_close(f)) != TIND_OK) {
        env()->discard(tmp);
        return rc;
    }
    if ((rc = file_rename(tmp, dst)) != TIND_OK) {
        env()->discard(tmp);
        return rc;
    }
    return file_sync_dir(dir);
}

int file_read_all(const char *path, uint8_t **data, size_t *n)
{
    *data = NULL;
    *n = 0;
    tfile *f;
    int rc = file_open(path, FILE_READ, &f);
    if (rc) return rc;
    size_t sz = (size_t)f->size;
    uint8_t *buf = malloc(sz ? sz : 1);
    if (!buf) {
        file_close(f);
        return err_nomem();
    }
    size_t got;
    rc = file_read_at(f, 0, buf, sz, &got);
    file_close(f);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *n = got;
    return TIND_OK;
}

int file_remove_tree(const char *dir)
{
    char **names;
    size_t count;
    int rc = file_list_dir(dir, &names, &count);
    if (rc) return rc;
    char p[PATH_MAX];
    for (size_t i = 0; i < count && rc == TIND_OK; i++) {
        if ((rc = file_join(p, sizeof p, dir, names[i])) != TIND_OK) break;
        if (env()->is_dir(p)) rc = file_remove_tree(p);
        else rc = file_unlink(p);
    }
    free(names);
    if (rc) return rc;
    return file_rmdir(dir);
}
