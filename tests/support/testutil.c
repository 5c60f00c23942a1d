#include "tests/support/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *tu_mkdtemp(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t n = strlen(base) + strlen(tag ? tag : "db") + 32;
    char *p = malloc(n);
    if (!p) return NULL;
    snprintf(p, n, "%s/tind-%s-XXXXXX", base, tag ? tag : "db");
    if (!mkdtemp(p)) {
        int e = errno;
        free(p);
        errno = e;
        return NULL;
    }
    return p;
}

static int tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    if (rc != 0 && errno == ENOENT) rc = 0;
    return rc;
}

int tu_count_deleted_fds(const char *dir)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    static const char mark[] = " (deleted)";
    size_t dl = strlen(dir), ml = sizeof mark - 1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char link[300], target[PATH_MAX];
        if (e->d_name[0] == '.') continue;
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t tl = readlink(link, target, sizeof target - 1);
        if (tl < 0) continue; /* the directory stream's own descriptor may be gone already */
        target[tl] = 0;
        size_t len = (size_t)tl;
        if (len > dl + ml && !strncmp(target, dir, dl) && target[dl] == '/' && !strcmp(target + len - ml, mark)) n++;
    }
    closedir(d);
    return n;
}

int tu_rmtree(const char *path)
{
    if (!path) return 0;
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t tu_below(uint64_t *s, uint64_t n) { return n ? tu_rand(s) % n : 0; }

uint64_t tu_seed(const char *test)
{
    const char *env = getenv("TIND_SEED");
    uint64_t seed;
    if (env && *env) {
        seed = strtoull(env, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        x ^= (uint64_t)getpid() << 32;
        seed = tu_rand(&x);
    }
    fprintf(stderr, "%s: seed %llu (replay with TIND_SEED=%llu)\n", test ? test : "test",
            (unsigned long long)seed, (unsigned long long)seed);
    return seed;
}

#define TU_HEX_SHOW 64
#define TU_HEX_BUFS 8

const char *tu_hex(const void *p, size_t n)
{
    static _Thread_local char bufs[TU_HEX_BUFS][2 * TU_HEX_SHOW + 40];
    static _Thread_local unsigned next;
    char *out = bufs[next++ % TU_HEX_BUFS];
    if (!p) {
        snprintf(out, sizeof bufs[0], "(null)");
        return out;
    }
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = p;
    size_t show = n < TU_HEX_SHOW ? n : TU_HEX_SHOW, o = 0;
    for (size_t i = 0; i < show; i++) {
        out[o++] = digits[b[i] >> 4];
        out[o++] = digits[b[i] & 15];
    }
    out[o] = 0;
    if (n == 0) snprintf(out, sizeof bufs[0], "\"\"");
    else if (show < n) snprintf(out + o, sizeof bufs[0] - o, "...(%zu bytes)", n);
    return out;
}

int tu_keycmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return al < bl ? -1 : al > bl;
}

static uint64_t tu_fill_word(uint64_t seed, uint64_t i)
{
    uint64_t s = seed ^ (i * UINT64_C(0xd1b54a32d192ed03));
    return tu_rand(&s);
}

void tu_fill(void *buf, size_t n, uint64_t seed)
{
    unsigned char *b = buf;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = tu_fill_word(seed, i / 8);
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(b + i, &w, k);
    }
}

size_t tu_check_fill(const void *buf, size_t n, uint64_t seed)
{
    const unsigned char *b = buf;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = tu_fill_word(seed, i / 8);
        size_t k = n - i < 8 ? n - i : 8;
        if (memcmp(b + i, &w, k) != 0) {
            const unsigned char *wb = (const unsigned char *)&w;
            for (size_t j = 0; j < k; j++)
                if (b[i + j] != wb[j]) return i + j;
        }
    }
    return n;
}
