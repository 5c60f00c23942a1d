/* tind_get_pinned: values read in place from a memtable, a cached block and
 * (without a cache) a block of the reader's own, kept valid across
 * overwrites, flushes and compactions until released. */
#include "tests/api_common.h"

TestSuite(pinned, .init = api_setup, .fini = api_teardown);

/* Asserts p holds exactly v. */
static void expect_pinned(const tind_pinned *p, const char *v, const char *what)
{
    cr_assert_not_null(p->data, "%s: data is NULL", what);
    cr_assert(p->len == strlen(v) && memcmp(p->data, v, p->len) == 0, "%s: pinned %s, want %s", what,
              tu_hex(p->data, p->len), v);
}

static void get_pinned_s(tind_keyspace *ks, const char *k, tind_pinned *p)
{
    int rc = tind_get_pinned(ks, k, strlen(k), p);
    cr_assert_eq(rc, TIND_OK, "get_pinned %s: %s (%s)", k, tind_strerror(rc), tind_last_error());
}

/* From each place a value can lie, and still right after the place changed
 * under it: the memtable sealed and flushed, the table compacted away. */
static void pinned_round_trip(uint64_t cache_bytes)
{
    tind_options o;
    tind_options_init(&o);
    o.cache_bytes = cache_bytes;
    g_db = open_db(sub("db"), &o);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    put_s(ks, "a", "in the memtable");
    put_s(ks, "e", "");
    tind_pinned mem, empty, tab, missing;
    get_pinned_s(ks, "a", &mem);
    expect_pinned(&mem, "in the memtable", "memtable");
    get_pinned_s(ks, "e", &empty);
    expect_pinned(&empty, "", "empty value");
    /* The memtable goes to a table while the pin holds it. */
    EXPECT_OK(tind_keyspace_flush(ks));
    expect_pinned(&mem, "in the memtable", "memtable after the flush");
    get_pinned_s(ks, "a", &tab);
    expect_pinned(&tab, "in the memtable", "table");
    /* Overwrite, delete, compact: the pinned block outlives its table. */
    put_s(ks, "a", "newer");
    del_s(ks, "e");
    EXPECT_OK(tind_keyspace_compact(ks));
    expect_pinned(&tab, "in the memtable", "table after a compaction");
    expect_pinned(&empty, "", "empty value after its delete");
    cr_assert_eq(tind_get_pinned(ks, "e", 1, &missing), TIND_NOT_FOUND, "a deleted key");
    cr_assert_null(missing.data);
    cr_assert_eq(missing.len, 0);
    tind_pinned_release(&missing); /* a failed read holds nothing */
    cr_assert_eq(tind_get_pinned(ks, "zz", 2, &missing), TIND_NOT_FOUND, "an absent key");
    expect_val(NULL, ks, "a", "newer");

    /* Close waits for every pin. */
    cr_assert_eq(tind_close(g_db), TIND_BUSY, "close with pinned values out");
    cr_assert(strstr(tind_last_error(), "3 pinned values"), "message: %s", tind_last_error());
    tind_pinned_release(&mem);
    tind_pinned_release(&mem); /* cleared: a no-op */
    cr_assert_null(mem.data);
    tind_pinned_release(&empty);
    tind_pinned_release(&tab);
    tind_pinned_release(NULL);
    /* Reused after its release. */
    get_pinned_s(ks, "a", &tab);
    expect_pinned(&tab, "newer", "reused");
    tind_pinned_release(&tab);
    close_main();
}

Test(pinned, values_from_memtable_table_and_after_compaction) { pinned_round_trip(UINT64_C(8) << 20); }

Test(pinned, values_without_a_block_cache) { pinned_round_trip(0); }

Test(pinned, bad_arguments_are_invalid)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    put_s(ks, "a", "1");
    tind_pinned p;
    cr_assert_eq(tind_get_pinned(ks, "a", 1, NULL), TIND_INVALID);
    cr_assert_eq(tind_get_pinned(NULL, "a", 1, &p), TIND_INVALID);
    cr_assert_null(p.data);
    cr_assert_eq(tind_get_pinned(ks, NULL, 1, &p), TIND_INVALID);
    cr_assert_eq(tind_get_pinned(ks, "a", 0, &p), TIND_INVALID, "an empty key");
    tind_pinned_release(&p);
    close_main();
}

/* Many values pinned at once across flushes: each stays what it was read as,
 * and the cache, smaller than what is pinned, still serves other reads. */
Test(pinned, many_pins_over_a_small_cache)
{
    enum { N = 3000 };
    tind_options o;
    tind_options_init(&o);
    o.cache_bytes = 64 << 10;
    g_db = open_db(sub("db"), &o);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64 << 10;
    tind_keyspace *ks = ks_open(g_db, "k", &ko);
    char k[32], v[64];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        snprintf(v, sizeof v, "value %d of the first round, padded out", i);
        put_s(ks, k, v);
    }
    EXPECT_OK(tind_keyspace_flush(ks));
    tind_pinned *p = calloc(N, sizeof *p);
    cr_assert_not_null(p);
    for (int i = 0; i < N; i += 3) {
        snprintf(k, sizeof k, "key%06d", i);
        get_pinned_s(ks, k, &p[i]);
    }
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        snprintf(v, sizeof v, "second %d", i);
        put_s(ks, k, v);
    }
    EXPECT_OK(tind_keyspace_compact(ks));
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        snprintf(v, sizeof v, "second %d", i);
        expect_val(NULL, ks, k, v);
    }
    for (int i = 0; i < N; i += 3) {
        snprintf(v, sizeof v, "value %d of the first round, padded out", i);
        expect_pinned(&p[i], v, "pinned across the rewrite");
        tind_pinned_release(&p[i]);
    }
    free(p);
    close_main();
}
