#include "lsm/cache.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/mutex.h"

/* Layout. A cache is an array of shards; (k1, k2) hashes to one shard, and
 * all of an entry's state is guarded by its shard's mutex. A cache_handle is
 * the entry itself; refs counts the handles out. Each shard has:
 *
 *   - a chained hash table of the entries it holds (in_cache), doubled when
 *     the entry count passes the bucket count;
 *   - two circular LRU lists with sentinel heads, probation and protected,
 *     holding exactly the entries that are in the table and have no handle
 *     out (refs == 0). An entry with handles out is off both lists and cannot
 *     be evicted (it is "pinned"); it still counts in usage. At its last
 *     release it goes to the MRU end of its segment.
 *
 * Segmented LRU: an insert puts an entry in probation; its second lookup hit
 * marks it protected (a block re-read once, as a re-seek within a scan does,
 * stays in probation). A demoted entry keeps its hit count, so its next hit
 * promotes it again. Protected entries on the list may weigh at most
 * CACHE_PROTECTED_SHARE percent of the shard's capacity; the overflow is
 * demoted, LRU first, to the MRU end of probation. Eviction takes probation's LRU end, and protected's only when
 * probation is empty. So a scan that touches each block once only ever
 * displaces other once-touched blocks.
 *
 * Capacity bound: every operation that can raise usage or unpin an entry
 * (insert, release) evicts until usage <= capacity or nothing unpinned is
 * left. Hence, per shard, whenever the mutex is free,
 * usage <= max(capacity, charge of the pinned entries): tighter than the
 * header's promise of one entry over. The shards' capacities sum to the
 * cache's exactly.
 *
 * Entry lifetime: an entry is freed (and its deleter run) once it is out of
 * the table and refs == 0. Such victims are collected under the mutex on a
 * local list and their deleters run after unlocking, since a deleter may take
 * other locks (a table's deleter closes files and may touch the block cache)
 * or even call back into this cache. */

#define CACHE_PROTECTED_SHARE 80 /* percent of a shard's capacity */
#define CACHE_PROMOTE_HITS 2     /* lookup hits that move an entry to protected */
#define CACHE_MAX_AUTO_SHARDS 64
#define CACHE_MIN_SHARD_BYTES ((size_t)512 * 1024)
#define CACHE_MAX_SHARDS 1024
#define CACHE_INITIAL_BUCKETS 16

enum { SEG_PROBATION = 0, SEG_PROTECTED = 1 };

/* Every field but the key, hash, value and deleter (fixed at insert) is
 * guarded by the mutex of the entry's shard, which the analysis cannot name
 * from here: the functions that touch them say REQUIRES(s->mu). */
struct cache_handle {
    uint64_t k1, k2;
    uint64_t hash;
    void *value;
    size_t charge;
    cache_deleter del;
    void *del_arg;
    struct cache_handle *hnext;       /* hash chain; reused for the victim list once out of the table */
    struct cache_handle *prev, *next; /* segment list, while on one */
    uint32_t refs;                    /* handles out */
    uint8_t in_cache;                 /* 1 while in the hash table */
    uint8_t seg;                      /* SEG_*; meaningful while in_cache */
    uint8_t hits;                     /* lookup hits, saturating at CACHE_PROMOTE_HITS */
};

typedef struct cache_shard {
    _Alignas(64) struct tmutex mu; /* guards everything below and every entry of this shard */
    struct cache_handle **buckets PT_GUARDED_BY(mu) GUARDED_BY(mu);
    size_t nbuckets GUARDED_BY(mu); /* a power of two */
    /* Set by cache_new before the cache is shared, then only read. */
    size_t capacity, protected_cap;
    size_t usage GUARDED_BY(mu);           /* charge of the entries in the table, pinned or not */
    size_t protected_usage GUARDED_BY(mu); /* charge of the entries on the protected list */
    uint64_t entries GUARDED_BY(mu);
    uint64_t hits GUARDED_BY(mu), misses GUARDED_BY(mu), inserts GUARDED_BY(mu), evictions GUARDED_BY(mu);
    struct cache_handle probation GUARDED_BY(mu); /* list sentinels (only prev/next used) */
    struct cache_handle protected_ GUARDED_BY(mu);
} cache_shard;

struct cache {
    cache_shard *shards;
    unsigned nshards;
    size_t capacity;
};

static _Atomic uint64_t cache_next_id = 1;

uint64_t cache_new_id(void)
{
    return atomic_fetch_add_explicit(&cache_next_id, 1, memory_order_relaxed);
}

/* ---- hashing ---- */

static inline uint64_t cache_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t cache_hash(uint64_t k1, uint64_t k2)
{
    return cache_mix(k1 ^ cache_mix(k2 + 0x9e3779b97f4a7c15ULL));
}

/* The high 32 bits pick the shard (multiply-shift, any shard count); the low
 * bits pick the bucket, so the two choices stay independent. */
static inline cache_shard *cache_shard_of(const cache *c, uint64_t hash)
{
    return &c->shards[((hash >> 32) * c->nshards) >> 32];
}

/* ---- segment lists (circular, sentinel head; head->next is the LRU end,
 * head->prev the MRU end). Shard mutex held. ---- */

static void cache_list_init(struct cache_handle *head)
{
    head->next = head->prev = head;
}

static bool cache_list_empty(const struct cache_handle *head)
{
    return head->next == head;
}

static void cache_list_remove(struct cache_handle *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static void cache_list_append_mru(struct cache_handle *head, struct cache_handle *e)
{
    e->next = head;
    e->prev = head->prev;
    head->prev->next = e;
    head->prev = e;
}

/* ---- hash table. Shard mutex held. ---- */

static struct cache_handle **cache_table_slot(cache_shard *s, uint64_t k1, uint64_t k2, uint64_t hash)
    REQUIRES(s->mu)
{
    struct cache_handle **p = &s->buckets[hash & (s->nbuckets - 1)];
    while (*p && ((*p)->hash != hash || (*p)->k1 != k1 || (*p)->k2 != k2)) p = &(*p)->hnext;
    return p;
}

/* Doubles the bucket array. Failing to allocate is harmless: chains just
 * grow longer until a later attempt succeeds. */
static void cache_table_grow(cache_shard *s) REQUIRES(s->mu)
{
    tmutex_assert_held(&s->mu);
    size_t n = s->nbuckets * 2;
    struct cache_handle **b = calloc(n, sizeof(*b));
    if (!b) return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct cache_handle *e = s->buckets[i];
        while (e) {
            struct cache_handle *next = e->hnext;
            struct cache_handle **slot = &b[e->hash & (n - 1)];
            e->hnext = *slot;
            *slot = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* ---- entry state changes. Shard mutex held. ---- */

/* Takes an unpinned entry off its segment list. */
static void cache_unlist(cache_shard *s, struct cache_handle *e) REQUIRES(s->mu)
{
    cache_list_remove(e);
    if (e->seg == SEG_PROTECTED) s->protected_usage -= e->charge;
}

/* Demotes protected LRU entries to probation's MRU end until the protected
 * list fits its share. */
static void cache_balance(cache_shard *s) REQUIRES(s->mu)
{
    while (s->protected_usage > s->protected_cap && !cache_list_empty(&s->protected_)) {
        struct cache_handle *e = s->protected_.next;
        cache_unlist(s, e);
        e->seg = SEG_PROBATION;
        cache_list_append_mru(&s->probation, e);
    }
}

/* Puts an entry that just lost its last handle (and is in the table) back on
 * its segment's MRU end. */
static void cache_relist(cache_shard *s, struct cache_handle *e) REQUIRES(s->mu)
{
    tmutex_assert_held(&s->mu);
    if (e->seg == SEG_PROTECTED) {
        cache_list_append_mru(&s->protected_, e);
        s->protected_usage += e->charge;
        cache_balance(s);
    } else {
        cache_list_append_mru(&s->probation, e);
    }
}

/* Takes e out of the table (*slot points at it) and off its list; pushes it
 * on *victims when no handle is out (it is then the caller's to delete). */
static void cache_detach(cache_shard *s, struct cache_handle **slot, struct cache_handle *e,
                         struct cache_handle **victims) REQUIRES(s->mu)
{
    tmutex_assert_held(&s->mu);
    *slot = e->hnext;
    e->hnext = NULL;
    e->in_cache = 0;
    s->usage -= e->charge;
    s->entries--;
    if (e->refs == 0) {
        cache_unlist(s, e);
        e->hnext = *victims;
        *victims = e;
    }
}

/* Evicts unpinned entries, probation's LRU end first, until usage fits. */
static void cache_evict(cache_shard *s, struct cache_handle **victims) REQUIRES(s->mu)
{
    tmutex_assert_held(&s->mu);
    while (s->usage > s->capacity) {
        struct cache_handle *e;
        if (!cache_list_empty(&s->probation))
            e = s->probation.next;
        else if (!cache_list_empty(&s->protected_))
            e = s->protected_.next;
        else
            break; /* everything left is pinned */
        cache_detach(s, cache_table_slot(s, e->k1, e->k2, e->hash), e, victims);
        s->evictions++;
    }
}

/* Runs the deleters of the victims and frees them, in the order they left
 * the cache (the list is a stack). No shard mutex held. */
static void cache_finish(struct cache_handle *victims)
{
    struct cache_handle *fifo = NULL;
    while (victims) {
        struct cache_handle *e = victims;
        victims = e->hnext;
        e->hnext = fifo;
        fifo = e;
    }
    victims = fifo;
    while (victims) {
        struct cache_handle *e = victims;
        victims = e->hnext;
        if (e->del) e->del(e->value, e->del_arg);
        free(e);
    }
}

/* ---- public ---- */

static unsigned cache_choose_shards(size_t capacity)
{
    unsigned n = 1;
    while (n < CACHE_MAX_AUTO_SHARDS && capacity / (n * 2) >= CACHE_MIN_SHARD_BYTES) n *= 2;
    return n;
}

cache *cache_new(size_t capacity, unsigned shards)
{
    if (shards == 0) shards = cache_choose_shards(capacity);
    if (shards > CACHE_MAX_SHARDS) shards = CACHE_MAX_SHARDS;
    cache *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    /* sizeof(cache_shard) is a multiple of its 64-byte alignment, as aligned_alloc needs. */
    c->shards = aligned_alloc(_Alignof(cache_shard), shards * sizeof(cache_shard));
    if (!c->shards) {
        free(c);
        return NULL;
    }
    c->nshards = shards;
    c->capacity = capacity;
    unsigned made = 0;
    for (; made < shards; made++) {
        cache_shard *s = &c->shards[made];
        memset(s, 0, sizeof(*s));
        /* The remainder goes to the first shards, so the shards sum to capacity exactly. */
        s->capacity = capacity / shards + (made < capacity % shards ? 1 : 0);
        s->protected_cap = s->capacity / 100 * CACHE_PROTECTED_SHARE +
                           s->capacity % 100 * CACHE_PROTECTED_SHARE / 100;
        cache_list_init(&s->probation);
        cache_list_init(&s->protected_);
        s->nbuckets = CACHE_INITIAL_BUCKETS;
        s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
        if (!s->buckets) break;
        if (tmutex_init(&s->mu) != 0) {
            free(s->buckets);
            break;
        }
    }
    if (made < shards) {
        for (unsigned i = 0; i < made; i++) {
            tmutex_destroy(&c->shards[i].mu);
            free(c->shards[i].buckets);
        }
        free(c->shards);
        free(c);
        return NULL;
    }
    return c;
}

void cache_free(cache *c)
{
    if (!c) return;
    for (unsigned i = 0; i < c->nshards; i++) {
        cache_shard *s = &c->shards[i];
        struct cache_handle *victims = NULL;
        /* No other thread uses the cache any more; mu is taken because
         * cache_detach asks for it, and dropped before the deleters run. */
        tmutex_lock(&s->mu);
        for (size_t b = 0; b < s->nbuckets; b++) {
            while (s->buckets[b]) cache_detach(s, &s->buckets[b], s->buckets[b], &victims);
        }
        tmutex_unlock(&s->mu);
        cache_finish(victims);
        free(s->buckets);
        tmutex_destroy(&s->mu);
    }
    free(c->shards);
    free(c);
}

cache_handle *cache_lookup(cache *c, uint64_t k1, uint64_t k2)
{
    uint64_t hash = cache_hash(k1, k2);
    cache_shard *s = cache_shard_of(c, hash);
    tmutex_lock(&s->mu);
    struct cache_handle *e = *cache_table_slot(s, k1, k2, hash);
    if (e) {
        if (e->refs == 0) cache_unlist(s, e);
        e->refs++;
        /* Promotion takes effect on the list at the last release. */
        if (e->hits < CACHE_PROMOTE_HITS) e->hits++;
        if (e->hits >= CACHE_PROMOTE_HITS) e->seg = SEG_PROTECTED;
        s->hits++;
    } else {
        s->misses++;
    }
    tmutex_unlock(&s->mu);
    return e;
}

cache_handle *cache_insert(cache *c, uint64_t k1, uint64_t k2, void *value, size_t charge, cache_deleter del,
                           void *del_arg)
{
    struct cache_handle *e = malloc(sizeof(*e));
    if (!e) {
        if (del) del(value, del_arg);
        return NULL;
    }
    uint64_t hash = cache_hash(k1, k2);
    *e = (struct cache_handle){.k1 = k1, .k2 = k2, .hash = hash, .value = value, .charge = charge,
                               .del = del, .del_arg = del_arg, .refs = 1, .seg = SEG_PROBATION};
    cache_shard *s = cache_shard_of(c, hash);
    struct cache_handle *victims = NULL;

    tmutex_lock(&s->mu);
    struct cache_handle **slot = cache_table_slot(s, k1, k2, hash);
    /* The older value is stale even when the new one is too big to keep. */
    if (*slot) cache_detach(s, slot, *slot, &victims);
    if (charge <= s->capacity) {
        /* After a detach, slot points at what followed the old entry. */
        e->hnext = *slot;
        *slot = e;
        e->in_cache = 1;
        s->usage += charge;
        s->entries++;
        if (s->entries > s->nbuckets) cache_table_grow(s);
        cache_evict(s, &victims); /* e is pinned by the handle returned, so it stays */
    }
    s->inserts++;
    tmutex_unlock(&s->mu);

    cache_finish(victims);
    return e;
}

void *cache_value(const cache_handle *h)
{
    return h->value;
}

void cache_release(cache *c, cache_handle *h)
{
    if (!h) return;
    cache_shard *s = cache_shard_of(c, h->hash);
    struct cache_handle *victims = NULL;
    tmutex_lock(&s->mu);
    if (--h->refs == 0) {
        if (h->in_cache) {
            cache_relist(s, h);
            cache_evict(s, &victims);
        } else {
            h->hnext = victims;
            victims = h;
        }
    }
    tmutex_unlock(&s->mu);
    cache_finish(victims);
}

void cache_erase(cache *c, uint64_t k1, uint64_t k2)
{
    uint64_t hash = cache_hash(k1, k2);
    cache_shard *s = cache_shard_of(c, hash);
    struct cache_handle *victims = NULL;
    tmutex_lock(&s->mu);
    struct cache_handle **slot = cache_table_slot(s, k1, k2, hash);
    if (*slot) cache_detach(s, slot, *slot, &victims);
    tmutex_unlock(&s->mu);
    cache_finish(victims);
}

void cache_get_stats(cache *c, struct cache_stats *st)
{
    *st = (struct cache_stats){.capacity = c->capacity};
    for (unsigned i = 0; i < c->nshards; i++) {
        cache_shard *s = &c->shards[i];
        tmutex_lock(&s->mu);
        st->usage += s->usage;
        st->entries += s->entries;
        st->hits += s->hits;
        st->misses += s->misses;
        st->inserts += s->inserts;
        st->evictions += s->evictions;
        tmutex_unlock(&s->mu);
    }
}
