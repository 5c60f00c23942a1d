/* Fixture and helpers shared by the API suites (api_test.c,
 * api_load_test.c); each including file uses what it needs. */
#ifndef TIND_TESTS_API_COMMON_H
#define TIND_TESTS_API_COMMON_H

#define API_MAYBE_UNUSED __attribute__((unused))

#include <criterion/criterion.h>

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/expect.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* ---- fixture and helpers ---------------------------------------------------------- */

static char *g_dir;    /* this test's scratch directory */
static tind_db *g_db;  /* closed by the teardown if a test left it open */

static API_MAYBE_UNUSED void api_setup(void)
{
    g_dir = tu_mkdtemp("api");
    cr_assert_not_null(g_dir, "mkdtemp failed");
    g_db = NULL;
}

static API_MAYBE_UNUSED void api_teardown(void)
{
    if (g_db) tind_close(g_db);
    g_db = NULL;
    tu_rmtree(g_dir);
    free(g_dir);
    g_dir = NULL;
}

/* A path inside the scratch directory; static storage, one at a time per slot. */
static API_MAYBE_UNUSED const char *sub(const char *name)
{
    static char paths[4][4096];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", g_dir, name);
    return p;
}

static API_MAYBE_UNUSED tind_db *open_db(const char *path, const tind_options *o)
{
    tind_db *db = NULL;
    EXPECT_OK(tind_open(path, o, &db));
    cr_assert_not_null(db, "tind_open returned TIND_OK with a NULL handle");
    return db;
}

static API_MAYBE_UNUSED void close_main(void)
{
    cr_assert_not_null(g_db);
    EXPECT_OK(tind_close(g_db));
    g_db = NULL;
}

static API_MAYBE_UNUSED tind_keyspace *ks_open(tind_db *db, const char *name, const tind_keyspace_options *o)
{
    tind_keyspace *ks = NULL;
    EXPECT_OK(tind_keyspace_open(db, name, o, &ks));
    cr_assert_not_null(ks, "tind_keyspace_open(%s) returned TIND_OK with a NULL handle", name);
    return ks;
}

static API_MAYBE_UNUSED void put_s(tind_keyspace *ks, const char *k, const char *v)
{
    int rc = tind_put(ks, k, strlen(k), v, strlen(v));
    cr_assert_eq(rc, TIND_OK, "put %s=%s: %s (%s)", k, v, tind_strerror(rc), tind_last_error());
}

static API_MAYBE_UNUSED void del_s(tind_keyspace *ks, const char *k)
{
    int rc = tind_delete(ks, k, strlen(k));
    cr_assert_eq(rc, TIND_OK, "delete %s: %s (%s)", k, tind_strerror(rc), tind_last_error());
}

/* Checks that k reads as v (v NULL: absent) through the keyspace, or through
 * snapshot s when s is not NULL. */
static API_MAYBE_UNUSED void expect_val(tind_snapshot *s, tind_keyspace *ks, const char *k, const char *v)
{
    void *got = NULL;
    size_t glen = 0;
    int rc = s ? tind_snapshot_get(s, ks, k, strlen(k), &got, &glen) : tind_get(ks, k, strlen(k), &got, &glen);
    if (!v) {
        cr_assert_eq(rc, TIND_NOT_FOUND, "%sget %s: want TIND_NOT_FOUND, got %d (%s) value %s",
                     s ? "snapshot " : "", k, rc, tind_strerror(rc), rc == TIND_OK ? tu_hex(got, glen) : "-");
        return;
    }
    cr_assert_eq(rc, TIND_OK, "%sget %s: want %s, got %d (%s): %s", s ? "snapshot " : "", k, v, rc,
                 tind_strerror(rc), tind_last_error());
    cr_assert_not_null(got, "get %s: NULL value on TIND_OK", k);
    int same = glen == strlen(v) && memcmp(got, v, glen) == 0;
    cr_assert(same, "%sget %s: want %s, got %s", s ? "snapshot " : "", k, tu_hex(v, strlen(v)), tu_hex(got, glen));
    tind_free(got);
}

static API_MAYBE_UNUSED struct tind_db_stats db_stats(tind_db *db)
{
    struct tind_db_stats st;
    memset(&st, 0xab, sizeof st);
    EXPECT_OK(tind_db_stats(db, &st));
    return st;
}

static API_MAYBE_UNUSED struct tind_keyspace_stats ks_stats(tind_keyspace *ks)
{
    struct tind_keyspace_stats st;
    memset(&st, 0xab, sizeof st);
    EXPECT_OK(tind_keyspace_stats(ks, &st));
    return st;
}

#endif
