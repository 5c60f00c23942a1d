#include "src/util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/err.h"

struct tfile {
    int fd;
    uint64_t size; /* bytes in the file as far as appends know */
    char path[];
};

/* ---- fault injection ------------------------------------------------------ */

/* fault_lock guards the armed fault; fault_armed lets the hot path skip it. */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fault_armed;
static struct file_fault fault;
static char fault_path[512];
static uint64_t fault_seen, fault_fired;

void file_fault_set(const struct file_fault *f)
{
    pthread_mutex_lock(&fault_lock);
    fault = *f;
    fault_path[0] = 0;
    if (f->path_part) {
        snprintf(fault_path, sizeof fault_path, "%s", f->path_part);
        fault.path_part = fault_path;
    }
    fault_seen = fault_fired = 0;
    atomic_store(&fault_armed, 1);
    pthread_mutex_unlock(&fault_lock);
}

void file_fault_clear(void)
{
    pthread_mutex_lock(&fault_lock);
    atomic_store(&fault_armed, 0);
    pthread_mutex_unlock(&fault_lock);
}

uint64_t file_fault_seen(void)
{
    pthread_mutex_lock(&fault_lock);
    uint64_t n = fault_seen;
    pthread_mutex_unlock(&fault_lock);
    return n;
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
        if (n == fault.nth || (fault.forever && n > fault.nth)) {
            e = fault.err ? fault.err : EIO;
            fault_fired++;
            if (short_write) *short_write = fault.short_write;
        }
    }
    pthread_mutex_unlock(&fault_lock);
    return e;
}

/* ---- files ----------------------------------------------------------------- */

int file_open(const char *path, int flags, tfile **out)
{
    *out = NULL;
    int e = fault_check(FOP_OPEN, path, NULL);
    if (e) return err_errno(e, "open", path);
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

int file_close(tfile *f)
{
    if (!f) return TIND_OK;
    int rc = TIND_OK;
    if (close(f->fd) != 0 && errno != EINTR) rc = err_errno(errno, "close", f->path);
    free(f);
    return rc;
}

const char *file_path(const tfile *f) { return f->path; }

uint64_t file_size(const tfile *f) { return f->size; }

int file_appendv(tfile *f, const struct iovec *iov_in, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) total += iov_in[i].iov_len;
    if (total == 0) return TIND_OK;
    int short_write = 0;
    int e = fault_check(FOP_WRITE, f->path, &short_write);
    if (e) {
        if (short_write) {
            /* Write the first half of the bytes, then fail: a torn append. */
            size_t want = total / 2;
            for (int i = 0; i < iovcnt && want > 0; i++) {
                size_t n = iov_in[i].iov_len < want ? iov_in[i].iov_len : want;
                ssize_t w = pwrite(f->fd, iov_in[i].iov_base, n, (off_t)f->size);
                if (w > 0) f->size += (uint64_t)w;
                if (w != (ssize_t)n) break;
                want -= n;
            }
        }
        return err_errno(e, "write", f->path);
    }
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

int file_append(tfile *f, const void *buf, size_t n)
{
    struct iovec v = {(void *)buf, n};
    return file_appendv(f, &v, 1);
}

int file_read_at(tfile *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    int e = fault_check(FOP_READ, f->path, NULL);
    if (e) return err_errno(e, "read", f->path);
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

int file_sync(tfile *f, int data_only)
{
    int e = fault_check(data_only ? FOP_DATASYNC : FOP_SYNC, f->path, NULL);
    if (e) return err_errno(e, data_only ? "fdatasync" : "fsync", f->path);
    int r;
    do {
        r = data_only ? fdatasync(f->fd) : fsync(f->fd);
    } while (r != 0 && errno == EINTR);
    if (r != 0) return err_errno(errno, data_only ? "fdatasync" : "fsync", f->path);
    return TIND_OK;
}

int file_truncate(tfile *f, uint64_t size)
{
    int e = fault_check(FOP_TRUNCATE, f->path, NULL);
    if (e) return err_errno(e, "truncate", f->path);
    if (ftruncate(f->fd, (off_t)size) != 0) return err_errno(errno, "truncate", f->path);
    f->size = size;
    return TIND_OK;
}

int file_rename(const char *from, const char *to)
{
    int e = fault_check(FOP_RENAME, to, NULL);
    if (e) return err_errno(e, "rename to", to);
    if (rename(from, to) != 0) return err_errno(errno, "rename to", to);
    return TIND_OK;
}

int file_unlink(const char *path)
{
    int e = fault_check(FOP_UNLINK, path, NULL);
    if (e) return err_errno(e, "unlink", path);
    if (unlink(path) != 0) return err_errno(errno, "unlink", path);
    return TIND_OK;
}

int file_mkdir(const char *path)
{
    int e = fault_check(FOP_MKDIR, path, NULL);
    if (e) return err_errno(e, "mkdir", path);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return err_errno(errno, "mkdir", path);
    return TIND_OK;
}

int file_rmdir(const char *path)
{
    int e = fault_check(FOP_UNLINK, path, NULL);
    if (e) return err_errno(e, "rmdir", path);
    if (rmdir(path) != 0) return err_errno(errno, "rmdir", path);
    return TIND_OK;
}

int file_sync_dir(const char *dir)
{
    int e = fault_check(FOP_SYNC_DIR, dir, NULL);
    if (e) return err_errno(e, "fsync directory", dir);
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

int file_exists(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) return 1;
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    return err_errno(errno, "stat", path);
}

int file_stat_size(const char *path, uint64_t *size)
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

int file_list_dir(const char *dir, char ***names_out, size_t *count_out)
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

int file_lock(const char *path, int *fd_out)
{
    int e = fault_check(FOP_OPEN, path, NULL);
    if (e) return err_errno(e, "open", path);
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

void file_unlock(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

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
        unlink(tmp);
        return rc;
    }
    if ((rc = file_close(f)) != TIND_OK) {
        unlink(tmp);
        return rc;
    }
    if ((rc = file_rename(tmp, dst)) != TIND_OK) {
        unlink(tmp);
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
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rc = file_remove_tree(p);
        else rc = file_unlink(p);
    }
    free(names);
    if (rc) return rc;
    return file_rmdir(dir);
}
