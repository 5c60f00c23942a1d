/* A program that defines names the library uses internally (file_open,
 * err_set, table_open, cache_new, memtable_new, journal_open, manifest_open,
 * bloom_check, buf_reserve, payload_type) with signatures of its own, and runs
 * a database session through the public API. `make test` links it against
 * build/libtind.a and build/libtind.so and runs it.
 *
 * It links only while the library keeps those names to itself, and it passes
 * only while the library's calls reach the library's own definitions (the
 * session works and none of these functions runs except when main calls it),
 * and this program's calls reach its own (each returns its marker).
 *
 * Compiled as a user's program is: include/tind.h only, default visibility. */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tind.h"

/* How often a definition below ran; main compares it with its own calls. */
static int calls;

int file_open(void);
int err_set(const char *why);
long table_open(int a, int b);
void *cache_new(void);
double memtable_new(double x);
int journal_open(void);
int manifest_open(void);
int bloom_check(void);
int buf_reserve(void);
int payload_type(void);

int file_open(void) { calls++; return 101; }
int err_set(const char *why) { calls++; return (int)strlen(why); }
long table_open(int a, int b) { calls++; return (long)a * b; }
void *cache_new(void) { calls++; return &calls; }
double memtable_new(double x) { calls++; return x * 2; }
int journal_open(void) { calls++; return 102; }
int manifest_open(void) { calls++; return 103; }
int bloom_check(void) { calls++; return 104; }
int buf_reserve(void) { calls++; return 105; }
int payload_type(void) { calls++; return 106; }

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("private-names: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void ok(int rc, const char *what)
{
    if (rc != TIND_OK) fail("%s: %s: %s", what, tind_strerror(rc), tind_last_error());
}

static void expect(tind_keyspace *ks, const char *key, const char *want)
{
    void *v;
    size_t vl;
    ok(tind_get(ks, key, strlen(key), &v, &vl), "tind_get");
    if (vl != strlen(want) || memcmp(v, want, vl) != 0) fail("get %s: %.*s, not %s", key, (int)vl, (char *)v, want);
    tind_free(v);
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

int main(void)
{
    char dir[] = "/tmp/tind-private-names-XXXXXX";
    if (!mkdtemp(dir)) fail("mkdtemp: %s", strerror(errno));
    char path[sizeof dir + 8];
    snprintf(path, sizeof path, "%s/db", dir);

    /* The session touches what the names above stand for in the library:
     * files, errors, the journal, memtables, a flushed table read back through
     * the block cache and its bloom filter, the manifest, journal replay. */
    tind_db *db;
    tind_keyspace *ks;
    ok(tind_open(path, NULL, &db), "tind_open");
    ok(tind_keyspace_open(db, "ks", NULL, &ks), "tind_keyspace_open");
    ok(tind_put(ks, "a", 1, "1", 1), "tind_put");
    ok(tind_put(ks, "b", 1, "2", 1), "tind_put");
    ok(tind_keyspace_flush(ks), "tind_keyspace_flush");
    ok(tind_put(ks, "c", 1, "3", 1), "tind_put");
    void *v;
    size_t vl;
    int rc = tind_get(ks, "zz", 2, &v, &vl);
    if (rc != TIND_NOT_FOUND) fail("get of a missing key: %s, not TIND_NOT_FOUND", tind_strerror(rc));
    /* A library error message comes from the library's err_set. */
    rc = tind_put(ks, "", 0, "x", 1);
    if (rc != TIND_INVALID || !strstr(tind_last_error(), "key is empty"))
        fail("empty key: %s (%s), not TIND_INVALID \"key is empty\"", tind_strerror(rc), tind_last_error());
    ok(tind_close(db), "tind_close");

    ok(tind_open(path, NULL, &db), "tind_open again");
    ok(tind_keyspace_open(db, "ks", NULL, &ks), "tind_keyspace_open again");
    expect(ks, "a", "1"); /* from the table */
    expect(ks, "c", "3"); /* from the journal */
    ok(tind_close(db), "tind_close again");

    if (calls != 0) fail("the library ran %d of this program's functions", calls);
    if (file_open() != 101 || err_set("four") != 4 || table_open(6, 7) != 42 || cache_new() != &calls ||
        memtable_new(1.5) != 3.0 || journal_open() != 102 || manifest_open() != 103 || bloom_check() != 104 ||
        buf_reserve() != 105 || payload_type() != 106)
        fail("a call of this program's own function did not reach it");
    if (calls != 10) fail("%d calls of this program's functions, not 10", calls);

    if (nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) != 0) fail("removing %s: %s", dir, strerror(errno));
    printf("private-names: ok (%s)\n", tind_version());
    return 0;
}
