/* Helpers shared by the fuzz targets (fuzz_common.h). */
#include "tests/fuzz/fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/record.h"

char *fz_mkdtemp(const char *tag)
{
    const char *base = "/dev/shm";
    struct stat st;
    if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode) || access(base, W_OK) != 0) {
        base = getenv("TMPDIR");
        if (!base || !*base) base = "/tmp";
    }
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/tind-fuzz-%s-XXXXXX", base, tag);
    if (!mkdtemp(tmpl)) return NULL;
    return strdup(tmpl);
}

void fz_join(char *out, size_t cap, const char *dir, const char *name)
{
    int w = snprintf(out, cap, "%s/%s", dir, name);
    FZ_CHECK(w > 0 && (size_t)w < cap, "path too long: %s/%s", dir, name);
}

static int fz_remove_inside(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[4096];
        fz_join(p, sizeof p, dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0) {
            rc = -1;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (fz_remove_inside(p) != 0 || rmdir(p) != 0) rc = -1;
        } else if (unlink(p) != 0) {
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

int fz_empty_dir(const char *dir) { return fz_remove_inside(dir); }

int fz_rmtree(const char *path)
{
    if (fz_remove_inside(path) != 0) return -1;
    return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
}

int fz_write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    const uint8_t *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            close(fd);
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return close(fd);
}

static int fz_copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY);
    if (in < 0) return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char b[65536];
    int rc = 0;
    for (;;) {
        ssize_t r = read(in, b, sizeof b);
        if (r == 0) break;
        if (r < 0 || write(out, b, (size_t)r) != r) {
            rc = -1;
            break;
        }
    }
    close(in);
    if (close(out) != 0) rc = -1;
    return rc;
}

int fz_copy_tree(const char *src, const char *dst)
{
    if (mkdir(dst, 0755) != 0) return -1;
    DIR *d = opendir(src);
    if (!d) return -1;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char s[4096], t[4096];
        fz_join(s, sizeof s, src, e->d_name);
        fz_join(t, sizeof t, dst, e->d_name);
        struct stat st;
        if (lstat(s, &st) != 0) rc = -1;
        else if (S_ISDIR(st.st_mode)) rc = fz_copy_tree(s, t);
        else if (S_ISREG(st.st_mode)) rc = fz_copy_file(s, t);
    }
    closedir(d);
    return rc;
}

void fz_reseal_records(uint8_t *d, size_t n, size_t off)
{
    while (off < n && n - off >= RECORD_HEADER_SIZE) {
        uint64_t plen = get_u64(d + off);
        if (plen > n - off - RECORD_HEADER_SIZE) return;
        record_header_encode(d + off, d + off + RECORD_HEADER_SIZE, (size_t)plen);
        off += RECORD_HEADER_SIZE + (size_t)plen;
    }
}
