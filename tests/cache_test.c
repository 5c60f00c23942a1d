#include <criterion/criterion.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/cache.h"
#include "lsm/ikey.h"
#include "lsm/table.h"
#include "lsm/table_cache.h"
#include "lsm/version.h"
#include "src/util/buf.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* ---- helpers: values are small integer ids disguised as pointers; the
 * deleter records how often and in which order each id was deleted ---- */

#define MAXID 8192

typedef struct dlog {
    int *deleted; /* [MAXID]: times each id's deleter ran */
    int *order;   /* ids in deletion order */
    size_t n, cap;
} dlog;

static dlog *dlog_new(size_t ids)
{
    dlog *l = calloc(1, sizeof(*l));
    cr_assert_not_null(l);
    l->deleted = calloc(ids, sizeof(int));
    l->cap = ids * 2;
    l->order = calloc(l->cap, sizeof(int));
    cr_assert(l->deleted && l->order);
    return l;
}

static void dlog_free(dlog *l)
{
    free(l->deleted);
    free(l->order);
    free(l);
}

static void *as_value(int id)
{
    return (void *)(uintptr_t)(id + 1);
}

static int as_id(void *v)
{
    return (int)((uintptr_t)v - 1);
}

static void log_deleter(void *value, void *arg)
{
    dlog *l = arg;
    int id = as_id(value);
    l->deleted[id]++;
    if (l->n < l->cap) l->order[l->n++] = id;
}

/* Inserts id under (0, k) and releases the handle at once. */
static void put(cache *c, dlog *l, uint64_t k, int id, size_t charge)
{
    cache_handle *h = cache_insert(c, 0, k, as_value(id), charge, log_deleter, l);
    cr_assert_not_null(h, "insert of key %llu returned NULL", (unsigned long long)k);
    cr_assert_eq(as_id(cache_value(h)), id);
    cache_release(c, h);
}

/* The id under (0, k), or -1 on a miss. A hit counts as an access. */
static int get(cache *c, uint64_t k)
{
    cache_handle *h = cache_lookup(c, 0, k);
    if (!h) return -1;
    int id = as_id(cache_value(h));
    cache_release(c, h);
    return id;
}

static struct cache_stats stats(cache *c)
{
    struct cache_stats st;
    cache_get_stats(c, &st);
    return st;
}

/* Asserts the deletion order so far is exactly want[0..n). */
static void expect_order(const dlog *l, const int *want, size_t n)
{
    cr_assert_eq(l->n, n, "expected %zu deletions, got %zu", n, l->n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(l->order[i], want[i], "deletion %zu: expected id %d, got %d", i, want[i], l->order[i]);
}

/* ---- basics ---- */

Test(cache, hit_miss_insert)
{
    dlog *l = dlog_new(16);
    cache *c = cache_new(100, 1);
    cr_assert_not_null(c);
    cr_assert_eq(get(c, 1), -1);

    cache_handle *h = cache_insert(c, 7, 1, as_value(1), 10, log_deleter, l);
    cr_assert_not_null(h);
    cr_assert_eq(cache_value(h), as_value(1));
    cache_release(c, h);
    cr_assert_null(cache_lookup(c, 0, 1), "k1 is part of the key");
    cr_assert_null(cache_lookup(c, 7, 2), "k2 is part of the key");
    h = cache_lookup(c, 7, 1);
    cr_assert_not_null(h);
    cr_assert_eq(cache_value(h), as_value(1));

    /* Two handles on one entry are both live; the value stays. */
    cache_handle *h2 = cache_lookup(c, 7, 1);
    cr_assert_not_null(h2);
    cr_assert_eq(cache_value(h2), as_value(1));
    cache_release(c, h);
    cache_release(c, h2);
    cr_assert_eq(l->deleted[1], 0);

    cache_free(c);
    cr_assert_eq(l->deleted[1], 1, "cache_free runs the deleter of what it holds");
    dlog_free(l);
}

Test(cache, replace)
{
    dlog *l = dlog_new(16);
    cache *c = cache_new(100, 1);
    put(c, l, 1, 1, 10);
    put(c, l, 1, 2, 20);
    cr_assert_eq(l->deleted[1], 1, "a replaced entry with no handle out is deleted at once");
    cr_assert_eq(get(c, 1), 2);
    struct cache_stats st = stats(c);
    cr_assert_eq(st.entries, 1);
    cr_assert_eq(st.usage, 20);

    /* Replacing an entry that a handle pins: the old value lives until release. */
    cache_handle *h = cache_lookup(c, 0, 1);
    put(c, l, 1, 3, 5);
    cr_assert_eq(l->deleted[2], 0);
    cr_assert_eq(cache_value(h), as_value(2));
    cr_assert_eq(get(c, 1), 3);
    st = stats(c);
    cr_assert_eq(st.usage, 5, "a replaced entry no longer counts in usage");
    cr_assert_eq(st.entries, 1);
    cache_release(c, h);
    cr_assert_eq(l->deleted[2], 1);
    cr_assert_eq(get(c, 1), 3);
    cache_free(c);
    cr_assert_eq(l->deleted[3], 1);
    int want[] = {1, 2, 3};
    expect_order(l, want, 3);
    dlog_free(l);
}

Test(cache, erase)
{
    dlog *l = dlog_new(16);
    cache *c = cache_new(100, 1);
    put(c, l, 1, 1, 10);
    put(c, l, 2, 2, 10);
    cache_erase(c, 0, 1);
    cr_assert_eq(l->deleted[1], 1, "erase with no handle out deletes at once");
    cr_assert_eq(get(c, 1), -1);
    cache_erase(c, 0, 1); /* absent: nothing */
    cache_erase(c, 0, 99);
    cr_assert_eq(l->n, 1);

    /* Two handles out: the value lives until both are released. */
    cache_handle *a = cache_lookup(c, 0, 2);
    cache_handle *b = cache_lookup(c, 0, 2);
    cache_erase(c, 0, 2);
    cr_assert_eq(get(c, 2), -1, "an erased entry is gone for lookups at once");
    cr_assert_eq(stats(c).usage, 0);
    cr_assert_eq(stats(c).entries, 0);
    cache_release(c, a);
    cr_assert_eq(l->deleted[2], 0);
    cr_assert_eq(cache_value(b), as_value(2));
    cache_release(c, b);
    cr_assert_eq(l->deleted[2], 1);

    /* A key can be inserted again after an erase. */
    put(c, l, 2, 3, 10);
    cr_assert_eq(get(c, 2), 3);
    cache_free(c);
    int want[] = {1, 2, 3};
    expect_order(l, want, 3);
    dlog_free(l);
}

Test(cache, null_deleter)
{
    cache *c = cache_new(10, 1);
    static int x;
    cache_handle *h = cache_insert(c, 0, 1, &x, 1, NULL, NULL);
    cr_assert_eq(cache_value(h), &x);
    cache_release(c, h);
    cache_erase(c, 0, 1);
    cache_release(c, NULL);
    cache_free(c);
    cache_free(NULL);
}

/* A handle pins its entry: whatever is inserted meanwhile, the value stays
 * valid and its deleter waits; once released it is an ordinary entry again
 * (most recently used) and goes when its turn comes. */
Test(cache, handle_outlives_pressure)
{
    dlog *l = dlog_new(64);
    cache *c = cache_new(4, 1);
    cache_handle *h = cache_insert(c, 0, 100, as_value(0), 1, log_deleter, l);
    for (int i = 1; i <= 20; i++) {
        put(c, l, (uint64_t)i, i, 1);
        cr_assert_leq(stats(c).usage, 4 + 1, "usage over capacity plus the pinned entry");
    }
    cr_assert_eq(l->deleted[0], 0, "a pinned value was deleted");
    cr_assert_eq(cache_value(h), as_value(0));
    cache_release(c, h);
    cr_assert_leq(stats(c).usage, 4, "release brings usage back within capacity");
    cr_assert_eq(l->deleted[0], 0, "the released entry is the most recently used");
    for (int i = 21; i <= 24; i++) put(c, l, (uint64_t)i, i, 1);
    cr_assert_eq(l->deleted[0], 1, "the entry goes once four newer ones push it out");
    cache_free(c);
    for (int i = 0; i <= 24; i++) cr_assert_eq(l->deleted[i], 1, "id %d deleted %d times", i, l->deleted[i]);
    dlog_free(l);
}

/* Pinned entries alone may outweigh the capacity; releasing them brings
 * usage back within it (oldest released first out). */
Test(cache, release_evicts_over_capacity)
{
    dlog *l = dlog_new(64);
    cache *c = cache_new(4, 1);
    cache_handle *h[6];
    for (int i = 0; i < 6; i++) h[i] = cache_insert(c, 0, (uint64_t)i, as_value(i), 1, log_deleter, l);
    cr_assert_eq(stats(c).usage, 6, "pinned entries are kept and counted");
    cr_assert_eq(l->n, 0);
    for (int i = 0; i < 6; i++) {
        cache_release(c, h[i]);
        uint64_t want_usage = 5 - i > 4 ? (uint64_t)(5 - i) : 4; /* only the released can go */
        cr_assert_eq(stats(c).usage, want_usage, "after release %d: usage %llu, expected %llu", i,
                     (unsigned long long)stats(c).usage, (unsigned long long)want_usage);
    }
    cr_assert_eq(stats(c).usage, 4);
    int want[] = {0, 1};
    expect_order(l, want, 2);
    cache_free(c);
    dlog_free(l);
}

/* An entry heavier than its shard is handed back but never kept; it still
 * supersedes an older value under its key. */
Test(cache, entry_larger_than_shard)
{
    dlog *l = dlog_new(16);
    cache *c = cache_new(100, 1);
    put(c, l, 1, 1, 10);
    put(c, l, 2, 2, 10);
    cache_handle *h = cache_insert(c, 0, 1, as_value(3), 101, log_deleter, l);
    cr_assert_not_null(h);
    cr_assert_eq(cache_value(h), as_value(3));
    cr_assert_eq(l->deleted[1], 1, "the older value under the key is dropped");
    cr_assert_eq(get(c, 1), -1, "an oversized entry is not kept");
    cr_assert_eq(get(c, 2), 2, "and pushes nothing else out");
    struct cache_stats st = stats(c);
    cr_assert_eq(st.usage, 10);
    cr_assert_eq(st.entries, 1);
    cr_assert_eq(l->deleted[3], 0);
    cache_release(c, h);
    cr_assert_eq(l->deleted[3], 1, "deleted at its release");

    /* Exactly the shard's capacity fits. */
    put(c, l, 4, 4, 100);
    cr_assert_eq(get(c, 4), 4);
    cr_assert_eq(l->deleted[2], 1, "a full-capacity entry evicts the rest");
    cache_free(c);
    dlog_free(l);
}

Test(cache, capacity_zero)
{
    dlog *l = dlog_new(16);
    cache *c = cache_new(0, 0);
    cr_assert_not_null(c);
    put(c, l, 1, 1, 1);
    cr_assert_eq(l->deleted[1], 1);
    cr_assert_eq(get(c, 1), -1);
    cr_assert_eq(stats(c).usage, 0);
    cache_free(c);
    dlog_free(l);
}

/* ---- eviction order ---- */

Test(cache, lru_order)
{
    dlog *l = dlog_new(64);
    cache *c = cache_new(4, 1); /* protected share: 3 */
    for (int i = 1; i <= 4; i++) put(c, l, (uint64_t)i, i, 1);
    cr_assert_eq(l->n, 0);
    put(c, l, 5, 5, 1);
    int w1[] = {1};
    expect_order(l, w1, 1);
    cr_assert_eq(get(c, 2), 2);
    cr_assert_eq(get(c, 2), 2); /* 2 is promoted by its second hit; 3 is now probation's oldest */
    put(c, l, 6, 6, 1);
    put(c, l, 7, 7, 1);
    int w2[] = {1, 3, 4};
    expect_order(l, w2, 3);
    cr_assert_eq(get(c, 2), 2);
    cr_assert_eq(get(c, 5), 5);
    cr_assert_eq(get(c, 1), -1);
    cr_assert_eq(get(c, 3), -1);
    cache_free(c);
    dlog_free(l);
}

/* Probation is emptied before protected entries go, and then protected goes
 * in LRU order. */
Test(cache, protected_evicted_last)
{
    dlog *l = dlog_new(64);
    cache *c = cache_new(4, 1); /* protected share: 3 */
    for (int i = 1; i <= 4; i++) put(c, l, (uint64_t)i, i, 1);
    for (int round = 0; round < 2; round++)
        for (int i = 1; i <= 4; i++) cr_assert_eq(get(c, (uint64_t)i), i);
    /* Protected holds 3: promoting 4 demoted 1 to probation. */
    put(c, l, 5, 5, 1);
    int w1[] = {1};
    expect_order(l, w1, 1);
    /* A full-capacity entry: probation's 5 first, then protected 2, 3, 4. */
    put(c, l, 6, 6, 4);
    int w2[] = {1, 5, 2, 3, 4};
    expect_order(l, w2, 5);
    cr_assert_eq(get(c, 6), 6);
    cache_free(c);
    dlog_free(l);
}

/* One hit refreshes an entry within probation; the second promotes it. */
Test(cache, second_hit_promotes)
{
    dlog *l = dlog_new(64);
    cache *c = cache_new(4, 1);
    for (int i = 1; i <= 4; i++) put(c, l, (uint64_t)i, i, 1);
    cr_assert_eq(get(c, 1), 1); /* probation: 2 3 4 1 */
    for (int i = 5; i <= 7; i++) put(c, l, (uint64_t)i, i, 1);
    int w1[] = {2, 3, 4};
    expect_order(l, w1, 3);
    put(c, l, 8, 8, 1);
    int w2[] = {2, 3, 4, 1};
    expect_order(l, w2, 4);

    /* Two hits: protected, so four more inserts pass it by. */
    cr_assert_eq(get(c, 5), 5);
    cr_assert_eq(get(c, 5), 5);
    for (int i = 9; i <= 12; i++) put(c, l, (uint64_t)i, i, 1);
    cr_assert_eq(get(c, 5), 5);
    int w3[] = {2, 3, 4, 1, 6, 7, 8, 9};
    expect_order(l, w3, 8);
    cache_free(c);
    dlog_free(l);
}

/* Protected holds at most its share; overflow is demoted, oldest first, to
 * the MRU end of probation. */
Test(cache, protected_overflow_demoted)
{
    dlog *l = dlog_new(64);
    cache *c = cache_new(10, 1); /* protected share: 8 */
    for (int i = 1; i <= 10; i++) put(c, l, (uint64_t)i, i, 1);
    for (int round = 0; round < 2; round++)
        for (int i = 1; i <= 10; i++) cr_assert_eq(get(c, (uint64_t)i), i);
    /* protected: 3..10; probation: 1, 2 (1 oldest) */
    put(c, l, 11, 11, 1);
    put(c, l, 12, 12, 1);
    put(c, l, 13, 13, 1);
    int want[] = {1, 2, 11};
    expect_order(l, want, 3);
    for (int i = 3; i <= 10; i++) cr_assert_eq(get(c, (uint64_t)i), i, "protected %d lost", i);
    cache_free(c);
    dlog_free(l);
}

/* A hot set hit twice survives a scan of once-read entries three times the
 * cache's size; a set inserted and never hit does not. */
static void scan_resistance(size_t capacity, unsigned shards, size_t charge, int hot, int warm)
{
    dlog *l = dlog_new(MAXID);
    cache *c = cache_new(capacity, shards);
    cr_assert_not_null(c);
    int id = 0;
    for (int i = 0; i < hot; i++) {
        put(c, l, (uint64_t)i, id++, charge);
        cr_assert_eq(get(c, (uint64_t)i), id - 1);
        cr_assert_eq(get(c, (uint64_t)i), id - 1);
    }
    for (int i = 0; i < warm; i++) put(c, l, 100000 + (uint64_t)i, id++, charge);
    int cold = (int)(capacity / charge) * 3;
    for (int i = 0; i < cold; i++) /* every cold entry shares the last id */
        put(c, l, ((uint64_t)1 << 40) + (uint64_t)i, MAXID - 1, charge);
    for (int i = 0; i < hot; i++) cr_assert_eq(get(c, (uint64_t)i), i, "hot entry %d was evicted by the scan", i);
    for (int i = 0; i < warm; i++)
        cr_assert_eq(get(c, 100000 + (uint64_t)i), -1, "once-read entry %d survived the scan", i);
    cache_free(c);
    dlog_free(l);
}

Test(cache, scan_resistance)
{
    scan_resistance(1000, 1, 1, 300, 100);
}

Test(cache, scan_resistance_sharded)
{
    /* 8 MiB of 4 KiB blocks: 8 shards of 1 MiB, a hot set of 800 KiB. */
    scan_resistance((size_t)8 << 20, 0, 4096, 200, 200);
}

/* ---- sizing ---- */

/* Whether an entry of `charge` is kept (i.e. fits one shard). */
static int kept(size_t capacity, unsigned shards, size_t charge)
{
    cache *c = cache_new(capacity, shards);
    cr_assert_not_null(c);
    cache_handle *h = cache_insert(c, 0, 1, as_value(0), charge, NULL, NULL);
    cache_release(c, h);
    h = cache_lookup(c, 0, 1);
    if (h) cache_release(c, h);
    cache_free(c);
    return h != NULL;
}

Test(cache, shard_sizes)
{
    /* Chosen: shards of at least 512 KiB, a power of two, at most 64. */
    cr_assert(kept(10, 0, 10), "a small cache is one shard");
    cr_assert(kept(((size_t)1 << 20) - 1, 0, ((size_t)1 << 20) - 1), "under 1 MiB: one shard");
    cr_assert(kept((size_t)1 << 20, 0, (size_t)512 << 10), "1 MiB: two shards of 512 KiB");
    cr_assert_not(kept((size_t)1 << 20, 0, ((size_t)512 << 10) + 1), "1 MiB: two shards of 512 KiB");
    cr_assert(kept((size_t)128 << 20, 0, (size_t)2 << 20), "128 MiB: 64 shards of 2 MiB");
    cr_assert_not(kept((size_t)128 << 20, 0, ((size_t)2 << 20) + 1), "128 MiB: 64 shards of 2 MiB");
    /* Given: the capacity split evenly, the remainder to the first shards. */
    cr_assert(kept(100, 4, 25));
    cr_assert_not(kept(100, 4, 26));
    cr_assert_not(kept(103, 4, 27));

    /* All of a one-shard cache's capacity is usable. */
    dlog *l = dlog_new(16);
    cache *c = cache_new(10, 0);
    for (int i = 0; i < 10; i++) put(c, l, (uint64_t)i, i, 1);
    for (int i = 0; i < 10; i++) cr_assert_eq(get(c, (uint64_t)i), i);
    cr_assert_eq(stats(c).capacity, 10);
    cache_free(c);
    dlog_free(l);
}

Test(cache, stats)
{
    dlog *l = dlog_new(64);
    cache *c = cache_new(100, 1);
    struct cache_stats st = stats(c);
    cr_assert_eq(st.capacity, 100);
    cr_assert(st.usage == 0 && st.entries == 0 && st.hits == 0 && st.misses == 0 && st.inserts == 0 &&
              st.evictions == 0);
    put(c, l, 1, 1, 30);
    put(c, l, 2, 2, 30);
    put(c, l, 3, 3, 30);
    get(c, 1);
    get(c, 1);
    get(c, 4);
    st = stats(c);
    cr_assert_eq(st.inserts, 3);
    cr_assert_eq(st.hits, 2);
    cr_assert_eq(st.misses, 1);
    cr_assert_eq(st.usage, 90);
    cr_assert_eq(st.entries, 3);
    cr_assert_eq(st.evictions, 0);
    put(c, l, 4, 4, 30); /* evicts 2 */
    put(c, l, 3, 5, 10); /* a replace, not an eviction */
    cache_erase(c, 0, 4); /* an erase, not an eviction */
    st = stats(c);
    cr_assert_eq(st.inserts, 5);
    cr_assert_eq(st.evictions, 1);
    cr_assert_eq(st.usage, 40);
    cr_assert_eq(st.entries, 2);
    cr_assert_eq(get(c, 2), -1);
    cache_free(c);
    dlog_free(l);
}

/* Deleters run with no cache lock held: one that calls back into the same
 * cache (as a table's deleter may touch the block cache) must not deadlock. */
typedef struct reenter {
    cache *c;
    int deleted;
} reenter;

static void reenter_deleter(void *value, void *arg)
{
    reenter *r = arg;
    (void)value;
    r->deleted++;
    cache_handle *h = cache_lookup(r->c, 0, 1000);
    if (h) cache_release(r->c, h);
    cache_erase(r->c, 0, 1001);
    struct cache_stats st;
    cache_get_stats(r->c, &st);
}

Test(cache, deleter_may_reenter, .timeout = 20)
{
    reenter r = {0};
    r.c = cache_new(4, 1);
    for (int i = 0; i < 10; i++) {
        cache_handle *h = cache_insert(r.c, 0, (uint64_t)i, as_value(i), 1, reenter_deleter, &r);
        cache_release(r.c, h);
    }
    cache_erase(r.c, 0, 9);
    cache_handle *h = cache_lookup(r.c, 0, 8);
    cache_erase(r.c, 0, 8);
    cache_release(r.c, h);
    cr_assert_eq(r.deleted, 8);
    cache_free(r.c);
    cr_assert_eq(r.deleted, 10);
}

Test(cache, free_with_everything_released)
{
    dlog *l = dlog_new(4096);
    cache *c = cache_new(1 << 20, 4);
    for (int i = 0; i < 4000; i++) put(c, l, (uint64_t)i * 7919, i, 100); /* grows the tables */
    for (int i = 0; i < 4000; i += 3) cr_assert_eq(get(c, (uint64_t)i * 7919), i);
    cr_assert_eq(stats(c).entries, 4000);
    cache_free(c);
    for (int i = 0; i < 4000; i++) cr_assert_eq(l->deleted[i], 1, "id %d deleted %d times", i, l->deleted[i]);
    dlog_free(l);
}

/* ---- randomized: the capacity bound and a reference model ---- */

#define RND_KEYS 1500
#define RND_OPS 200000
#define RND_HELD 8

Test(cache, randomized_bound_and_model)
{
    uint64_t seed = tu_seed("cache/randomized_bound_and_model");
    uint64_t rs = seed;
    const unsigned nshards = 4;
    const size_t capacity = 200000; /* shards of 50,000 */
    dlog *l = dlog_new(RND_OPS + 1);
    size_t *charge_of = calloc(RND_OPS + 1, sizeof(size_t));
    int cur[RND_KEYS]; /* the id last inserted under each key, -1: none or erased */
    for (int k = 0; k < RND_KEYS; k++) cur[k] = -1;
    cache_handle *held[RND_HELD];
    int nheld = 0;
    size_t held_charge = 0, max_charge = 0;
    uint64_t n_inserts = 0, n_hits = 0, n_misses = 0;
    int next_id = 0;
    cache *c = cache_new(capacity, nshards);

    for (int op = 0; op < RND_OPS; op++) {
        int k = (int)tu_below(&rs, RND_KEYS);
        unsigned r = (unsigned)tu_below(&rs, 100);
        if (r < 40) {
            /* charges of varied sizes: mostly small, some blocks, a few huge ones */
            unsigned kind = (unsigned)tu_below(&rs, 100);
            size_t charge = kind < 60 ? 1 + tu_below(&rs, 100)
                            : kind < 95 ? 1 + tu_below(&rs, 8000)
                                        : 20000 + tu_below(&rs, 40000); /* some over a shard */
            int id = next_id++;
            charge_of[id] = charge;
            cache_handle *h = cache_insert(c, 0, (uint64_t)k, as_value(id), charge, log_deleter, l);
            cr_assert_not_null(h);
            n_inserts++;
            if (cur[k] >= 0 && !(nheld > 0)) {
                /* With no handle out, a replaced value is deleted at once. */
                cr_assert_eq(l->deleted[cur[k]], 1, "op %d: replaced id %d not deleted", op, cur[k]);
            }
            cur[k] = id;
            if (charge <= capacity / nshards && charge > max_charge) max_charge = charge;
            if (nheld < RND_HELD && tu_below(&rs, 5) == 0) {
                held[nheld++] = h;
                held_charge += charge;
            } else {
                cache_release(c, h);
            }
        } else if (r < 75) {
            cache_handle *h = cache_lookup(c, 0, (uint64_t)k);
            if (h) {
                n_hits++;
                int id = as_id(cache_value(h));
                cr_assert_eq(id, cur[k], "op %d key %d: got id %d, expected %d", op, k, id, cur[k]);
                cr_assert_eq(l->deleted[id], 0, "op %d: hit on deleted id %d", op, id);
                if (nheld < RND_HELD && tu_below(&rs, 10) == 0) {
                    held[nheld++] = h;
                    held_charge += charge_of[id];
                } else {
                    cache_release(c, h);
                }
            } else {
                n_misses++;
                /* Nothing vanishes without its deleter, but for values that
                 * a handle still holds. */
                int pinned = 0;
                for (int i = 0; i < nheld; i++) pinned |= as_id(cache_value(held[i])) == cur[k];
                if (cur[k] >= 0 && !pinned)
                    cr_assert_eq(l->deleted[cur[k]], 1, "op %d key %d: miss, but id %d not deleted", op, k,
                                 cur[k]);
            }
        } else if (r < 85) {
            cache_erase(c, 0, (uint64_t)k);
            cur[k] = -1;
        } else if (nheld > 0) {
            int i = (int)tu_below(&rs, (uint64_t)nheld);
            int id = as_id(cache_value(held[i]));
            cr_assert_eq(l->deleted[id], 0, "op %d: held id %d deleted", op, id);
            held_charge -= charge_of[id];
            cache_release(c, held[i]);
            held[i] = held[--nheld];
        }
        struct cache_stats st = stats(c);
        /* The contract: over capacity by at most one entry per shard, not
         * counting entries pinned by handles. */
        cr_assert_leq(st.usage, capacity + nshards * max_charge + held_charge,
                      "op %d: usage %llu, capacity %zu, max charge %zu, pinned %zu (seed %llu)", op,
                      (unsigned long long)st.usage, capacity, max_charge, held_charge, (unsigned long long)seed);
    }
    while (nheld > 0) cache_release(c, held[--nheld]);
    struct cache_stats st = stats(c);
    cr_assert_leq(st.usage, capacity + nshards * max_charge);
    cr_assert_eq(st.inserts, n_inserts);
    cr_assert_eq(st.hits, n_hits);
    cr_assert_eq(st.misses, n_misses);
    cache_free(c);
    for (int id = 0; id < next_id; id++)
        cr_assert_eq(l->deleted[id], 1, "id %d deleted %d times (seed %llu)", id, l->deleted[id],
                     (unsigned long long)seed);
    free(charge_of);
    dlog_free(l);
}

/* ---- threads ---- */

#define HAM_THREADS 8
#define HAM_OPS 100000
#define HAM_KEYS 600
#define HAM_MAX_CHARGE 2000
#define HV_MAGIC 0x7ab1e5ca11ab1e5ULL

typedef struct hv {
    uint64_t k1, k2, magic;
} hv;

typedef struct hammer {
    cache *c;
    size_t capacity;
    unsigned nshards;
    atomic_ulong created, deleted, bad_value, bad_delete, over_bound;
    uint64_t seed;
} hammer;

static void hv_deleter(void *value, void *arg)
{
    hammer *hm = arg;
    hv *v = value;
    if (v->magic != HV_MAGIC) atomic_fetch_add(&hm->bad_delete, 1);
    v->magic = 0xdeadULL;
    free(v);
    atomic_fetch_add(&hm->deleted, 1);
}

typedef struct hammer_arg {
    hammer *hm;
    int index;
} hammer_arg;

static void *hammer_thread(void *p)
{
    hammer_arg *a = p;
    hammer *hm = a->hm;
    uint64_t rs = hm->seed + (uint64_t)a->index * 0x9e3779b97f4a7c15ULL;
    cache_handle *held[2] = {NULL, NULL};
    for (int op = 0; op < HAM_OPS; op++) {
        uint64_t k1 = tu_below(&rs, 4), k2 = tu_below(&rs, HAM_KEYS);
        unsigned r = (unsigned)tu_below(&rs, 100);
        int slot = (int)tu_below(&rs, 2);
        cache_handle *h = NULL;
        if (r < 35) {
            hv *v = malloc(sizeof(*v));
            if (!v) continue;
            *v = (hv){k1, k2, HV_MAGIC};
            atomic_fetch_add(&hm->created, 1);
            h = cache_insert(hm->c, k1, k2, v, 1 + tu_below(&rs, HAM_MAX_CHARGE), hv_deleter, hm);
        } else if (r < 85) {
            h = cache_lookup(hm->c, k1, k2);
        } else if (r < 95) {
            cache_erase(hm->c, k1, k2);
        } else {
            struct cache_stats st;
            cache_get_stats(hm->c, &st);
            /* Sums of shards read at different moments: allow every thread's
             * two pins in every shard. */
            if (st.usage > hm->capacity + hm->nshards * HAM_MAX_CHARGE * (1 + 2 * HAM_THREADS))
                atomic_fetch_add(&hm->over_bound, 1);
        }
        if (h) {
            const hv *v = cache_value(h);
            if (v->magic != HV_MAGIC || v->k1 != k1 || v->k2 != k2) atomic_fetch_add(&hm->bad_value, 1);
            if (held[slot]) cache_release(hm->c, held[slot]);
            held[slot] = h;
        } else if (r >= 85 && held[slot]) {
            const hv *v = cache_value(held[slot]);
            if (v->magic != HV_MAGIC) atomic_fetch_add(&hm->bad_value, 1);
            cache_release(hm->c, held[slot]);
            held[slot] = NULL;
        }
    }
    for (int i = 0; i < 2; i++)
        if (held[i]) cache_release(hm->c, held[i]);
    return NULL;
}

static void hammer_run(const char *name, size_t capacity, unsigned nshards)
{
    hammer hm = {.capacity = capacity, .nshards = nshards};
    hm.seed = tu_seed(name);
    hm.c = cache_new(capacity, nshards);
    cr_assert_not_null(hm.c);
    pthread_t th[HAM_THREADS];
    hammer_arg args[HAM_THREADS];
    for (int i = 0; i < HAM_THREADS; i++) {
        args[i] = (hammer_arg){&hm, i};
        cr_assert_eq(pthread_create(&th[i], NULL, hammer_thread, &args[i]), 0);
    }
    for (int i = 0; i < HAM_THREADS; i++) pthread_join(th[i], NULL);
    struct cache_stats st = stats(hm.c);
    cr_assert_eq(atomic_load(&hm.bad_value), 0, "a handle's value did not match its key (seed %llu)",
                 (unsigned long long)hm.seed);
    cr_assert_eq(atomic_load(&hm.bad_delete), 0, "a value was deleted twice (seed %llu)",
                 (unsigned long long)hm.seed);
    cr_assert_eq(atomic_load(&hm.over_bound), 0, "usage over the bound while running");
    cr_assert_leq(st.usage, capacity + nshards * HAM_MAX_CHARGE, "quiescent usage %llu over capacity %zu",
                  (unsigned long long)st.usage, capacity);
    cr_assert_eq(st.inserts, atomic_load(&hm.created));
    cr_assert_eq(atomic_load(&hm.created) - atomic_load(&hm.deleted), st.entries,
                 "values alive differ from entries held: a leak or an early delete");
    cache_free(hm.c);
    cr_assert_eq(atomic_load(&hm.created), atomic_load(&hm.deleted), "values leaked");
}

Test(cache, threads_hammer, .timeout = 120)
{
    hammer_run("cache/threads_hammer", 100000, 4);
}

Test(cache, threads_hammer_one_shard, .timeout = 120)
{
    hammer_run("cache/threads_hammer_one_shard", 50000, 1);
}

static void *new_id_thread(void *p)
{
    uint64_t *ids = p;
    for (int i = 0; i < 1000; i++) ids[i] = cache_new_id();
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(cache, new_id_unique)
{
    uint64_t *ids = calloc(4000, sizeof(uint64_t));
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, new_id_thread, ids + i * 1000);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    qsort(ids, 4000, sizeof(uint64_t), cmp_u64);
    cr_assert_neq(ids[0], 0);
    for (int i = 1; i < 4000; i++) cr_assert_neq(ids[i], ids[i - 1], "id %llu handed out twice",
                                                (unsigned long long)ids[i]);
    free(ids);
}

/* ---- the table cache ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* Writes table `name` in dir with n keys "<prefix>NNNNNN" -> "v<prefix>NNNNNN"
 * and returns its path (free it); *size gets the file size. */
static char *tc_make_table(const char *dir, const char *name, const char *prefix, int n, uint64_t *size)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    struct table_options o = {.block_size = 1024, .restart_interval = 16, .bloom_bits = 10,
                              .compression = COMPRESS_NONE};
    table_writer *w;
    int rc = table_writer_open(path, &o, &w);
    cr_assert_eq(rc, TIND_OK, "table_writer_open %s: %d", path, rc);
    for (int i = 0; i < n; i++) {
        char k[64], v[64];
        int kl = snprintf(k, sizeof(k), "%s%06d", prefix, i);
        int vl = snprintf(v, sizeof(v), "v%s%06d", prefix, i);
        rc = table_writer_add(w, (const uint8_t *)k, (size_t)kl, tag_pack((uint64_t)i + 1, KIND_PUT),
                              (const uint8_t *)v, (size_t)vl);
        cr_assert_eq(rc, TIND_OK, "table_writer_add %s: %d", k, rc);
    }
    rc = table_writer_finish(w, NULL, size);
    cr_assert_eq(rc, TIND_OK, "table_writer_finish %s: %d", path, rc);
    return path;
}

/* Asserts t holds key <prefix>NNNNNN(i) with its value. */
static void tc_expect(table *t, const char *prefix, int i)
{
    char k[64], v[64];
    int kl = snprintf(k, sizeof(k), "%s%06d", prefix, i);
    int vl = snprintf(v, sizeof(v), "v%s%06d", prefix, i);
    buf val;
    buf_init(&val);
    int found = 0;
    unsigned kind = 0;
    int rc = table_get(t, (const uint8_t *)k, (size_t)kl, SEQ_MAX, &found, &kind, &val);
    cr_assert_eq(rc, TIND_OK, "table_get %s: %d", k, rc);
    cr_assert(found, "%s not found in %s", k, table_path(t));
    cr_assert_eq(kind, KIND_PUT);
    cr_assert(val.len == (size_t)vl && memcmp(val.p, v, val.len) == 0, "%s: expected %s, got %s", k, v,
              tu_hex(val.p, val.len));
    buf_free(&val);
}

typedef struct tc_fixture {
    char *dir;
    char *path[4];
    uint64_t size[4];
    cache *bc;
    struct table_meta *meta[16]; /* [0..4): the four tables as numbers 1-4; then those tc_meta made */
    int nmeta;
} tc_fixture;

/* A meta for the file at path (size bytes) as table `number`, held by the
 * fixture until tc_close. */
static struct table_meta *tc_meta(tc_fixture *f, uint64_t number, const char *path, uint64_t size)
{
    cr_assert_lt(f->nmeta, 16);
    struct table_meta *m = table_meta_new(f->dir, number);
    cr_assert_not_null(m);
    free(m->path);
    m->path = strdup(path);
    cr_assert_not_null(m->path);
    m->size = size;
    return f->meta[f->nmeta++] = m;
}

/* Drops the fixture's metas, then the cache, which must outlive them. */
static void tc_close(tc_fixture *f, table_cache *tc)
{
    for (int i = 0; i < f->nmeta; i++) table_meta_unref(f->meta[i]);
    f->nmeta = 0;
    table_cache_free(tc);
}

static const char *tc_prefix[4] = {"a", "b", "c", "d"};

static void tc_setup(tc_fixture *f)
{
    f->dir = tu_mkdtemp("table-cache");
    cr_assert_not_null(f->dir);
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%06d.tbl", i + 1);
        f->path[i] = tc_make_table(f->dir, name, tc_prefix[i], 500, &f->size[i]);
    }
    f->nmeta = 0;
    for (int i = 0; i < 4; i++) tc_meta(f, (uint64_t)i + 1, f->path[i], f->size[i]);
    f->bc = cache_new(1 << 20, 0);
    cr_assert_not_null(f->bc);
}

static void tc_teardown(tc_fixture *f)
{
    cache_free(f->bc);
    for (int i = 0; i < 4; i++) free(f->path[i]);
    tu_rmtree(f->dir);
    free(f->dir);
}

Test(cache, table_cache_hit_and_miss)
{
    tc_fixture f;
    tc_setup(&f);
    int fds = count_fds();
    table_cache *tc = table_cache_new(10, f.bc);
    cr_assert_not_null(tc);
    table *t[4];
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(table_cache_get(tc, 1, f.meta[i], &t[i]), TIND_OK);
        tc_expect(t[i], tc_prefix[i], 42);
        cr_assert_eq(table_get_props(t[i])->entries, 500);
    }
    for (int i = 0; i < 4; i++) {
        table *again;
        cr_assert_eq(table_cache_get(tc, 1, f.meta[i], &again), TIND_OK);
        cr_assert_eq(again, t[i], "a hit returns the cached table");
        table_unref(again);
        table_unref(t[i]);
    }
    tc_close(&f, tc);
    cr_assert_eq(count_fds(), fds, "tables left open after table_cache_free");
    tc_teardown(&f);
}

Test(cache, table_cache_evicts_at_max_open)
{
    tc_fixture f;
    tc_setup(&f);
    int fds = count_fds();
    table_cache *tc = table_cache_new(2, f.bc);
    table *t1, *t2, *t3, *x;
    cr_assert_eq(table_cache_get(tc, 1, f.meta[0], &t1), TIND_OK);
    cr_assert_eq(table_cache_get(tc, 1, f.meta[1], &t2), TIND_OK);
    cr_assert_eq(table_cache_get(tc, 1, f.meta[2], &t3), TIND_OK); /* evicts table 1 */
    /* Table 1 left the cache but our reference keeps it readable. */
    tc_expect(t1, "a", 7);
    cr_assert_eq(table_cache_get(tc, 1, f.meta[0], &x), TIND_OK);
    cr_assert_neq(x, t1, "table 1 should have been evicted and opened again");
    tc_expect(x, "a", 8);
    table_unref(x);
    /* Tables 3 and 1 are cached now; 2 went. */
    cr_assert_eq(table_cache_get(tc, 1, f.meta[2], &x), TIND_OK);
    cr_assert_eq(x, t3);
    table_unref(x);
    table_unref(t1);
    table_unref(t2);
    table_unref(t3);
    tc_close(&f, tc);
    cr_assert_eq(count_fds(), fds, "tables left open");
    tc_teardown(&f);
}

Test(cache, table_cache_evict_and_keyspaces)
{
    tc_fixture f;
    tc_setup(&f);
    int fds = count_fds();
    table_cache *tc = table_cache_new(10, f.bc);
    table *a, *b, *x;
    struct table_meta *a5 = tc_meta(&f, 5, f.path[0], f.size[0]), *b5 = tc_meta(&f, 5, f.path[1], f.size[1]);
    /* Same file number in two keyspaces: two tables. */
    cr_assert_eq(table_cache_get(tc, 1, a5, &a), TIND_OK);
    cr_assert_eq(table_cache_get(tc, 2, b5, &b), TIND_OK);
    cr_assert_neq(a, b);
    tc_expect(a, "a", 1);
    tc_expect(b, "b", 1);
    /* Evicted: the next get opens it again; the old one stays readable. */
    table_cache_evict(tc, 1, 5);
    table_cache_evict(tc, 1, 99); /* absent: nothing */
    cr_assert_eq(table_cache_get(tc, 1, a5, &x), TIND_OK);
    cr_assert_neq(x, a);
    tc_expect(a, "a", 499);
    tc_expect(x, "a", 499);
    table_unref(x);
    table_unref(a);
    cr_assert_eq(table_cache_get(tc, 2, b5, &x), TIND_OK);
    cr_assert_eq(x, b, "evicting keyspace 1's table 5 left keyspace 2's alone");
    table_unref(x);
    table_unref(b);
    tc_close(&f, tc);
    cr_assert_eq(count_fds(), fds, "tables left open");
    tc_teardown(&f);
}

Test(cache, table_cache_open_errors)
{
    tc_fixture f;
    tc_setup(&f);
    int fds = count_fds();
    table_cache *tc = table_cache_new(10, NULL);
    table *t = (table *)&f;
    char *missing = malloc(strlen(f.dir) + 32);
    sprintf(missing, "%s/nothing.tbl", f.dir);
    cr_assert_neq(table_cache_get(tc, 1, tc_meta(&f, 9, missing, 100), &t), TIND_OK);
    cr_assert_null(t);
    t = (table *)&f;
    cr_assert_neq(table_cache_get(tc, 1, tc_meta(&f, 1, f.path[0], f.size[0] + 1), &t), TIND_OK,
                  "a wrong size must fail");
    cr_assert_null(t);
    /* A failure caches nothing: the right size opens now. */
    cr_assert_eq(table_cache_get(tc, 1, f.meta[0], &t), TIND_OK);
    tc_expect(t, "a", 3);
    table_unref(t);
    cr_assert_eq(table_cache_get(NULL, 1, f.meta[0], &t), TIND_INVALID);
    cr_assert_eq(table_cache_get(tc, 1, NULL, &t), TIND_INVALID);
    free(missing);
    tc_close(&f, tc);
    cr_assert_eq(count_fds(), fds, "tables left open");
    tc_teardown(&f);
}

/* The table of a meta stays cached while the meta lives, however often it
 * is taken and let go, and closes with the meta's last reference. */
Test(cache, table_cache_closes_a_table_with_its_meta)
{
    tc_fixture f;
    tc_setup(&f);
    int fds = count_fds();
    table_cache *tc = table_cache_new(10, f.bc);
    table *t, *again;
    cr_assert_eq(table_cache_get(tc, 1, f.meta[0], &t), TIND_OK);
    table_unref(t);
    cr_assert_eq(table_cache_get(tc, 1, f.meta[1], &t), TIND_OK);
    cr_assert_eq(table_cache_count(tc), 2);
    cr_assert_eq(count_fds(), fds + 2);
    /* Meta 2's last reference goes while a reader still holds its table:
     * the cache forgets it at once, the reader's table closes with it. */
    table_meta_unref(f.meta[1]);
    f.meta[1] = f.meta[--f.nmeta];
    cr_assert_eq(table_cache_count(tc), 1, "the cache kept the table of a freed meta");
    tc_expect(t, "b", 5);
    table_unref(t);
    cr_assert_eq(count_fds(), fds + 1, "the table of a freed meta stayed open");
    /* Meta 1's table is still the cached one. */
    cr_assert_eq(table_cache_get(tc, 1, f.meta[0], &again), TIND_OK);
    tc_expect(again, "a", 5);
    table_unref(again);
    cr_assert_eq(table_cache_count(tc), 1);
    table_meta_unref(f.meta[0]);
    f.meta[0] = f.meta[--f.nmeta];
    cr_assert_eq(table_cache_count(tc), 0);
    cr_assert_eq(count_fds(), fds, "tables left open");
    tc_close(&f, tc);
    tc_teardown(&f);
}

typedef struct tc_race {
    table_cache *tc;
    tc_fixture *f;
    int index;
    atomic_int *errors;
} tc_race;

static void *tc_race_thread(void *p)
{
    tc_race *r = p;
    uint64_t rs = (uint64_t)r->index * 7 + 1;
    for (int op = 0; op < 300; op++) {
        int i = (int)tu_below(&rs, 4);
        table *t;
        if (table_cache_get(r->tc, 1, r->f->meta[i], &t) != TIND_OK) {
            atomic_fetch_add(r->errors, 1);
            continue;
        }
        if (table_get_props(t)->entries != 500) atomic_fetch_add(r->errors, 1);
        if (tu_below(&rs, 8) == 0) table_cache_evict(r->tc, 1, (uint64_t)i + 1);
        table_unref(t);
    }
    return NULL;
}

/* Threads missing the same tables at once, with evictions (max_open below
 * the table count) and explicit evicts: nothing leaks, nothing fails. */
Test(cache, table_cache_concurrent_get, .timeout = 120)
{
    tc_fixture f;
    tc_setup(&f);
    int fds = count_fds();
    table_cache *tc = table_cache_new(3, f.bc);
    atomic_int errors = 0;
    pthread_t th[8];
    tc_race r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (tc_race){tc, &f, i, &errors};
        cr_assert_eq(pthread_create(&th[i], NULL, tc_race_thread, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&errors), 0);
    tc_close(&f, tc);
    cr_assert_eq(count_fds(), fds, "tables left open");
    tc_teardown(&f);
}
