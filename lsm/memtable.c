#include "lsm/memtable.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/bloom.h"
#include "lsm/ikey.h"
#include "src/util/arena.h"
#include "src/util/err.h"
#include "src/util/mutex.h"

/* A skiplist node, one allocation in a node arena; its value is a second
 * allocation in the value arena:
 *   node := prefix:u64 tag:u64 val:ptr vlen:u32 klen:u16 height:u8 pad
 *           next[height]:atomic ptr key[klen]
 *   value := val[vlen]                                  (value arena)
 * prefix is the user key's first 8 bytes read big-endian, zero-padded when the
 * key is shorter, so comparing prefixes as integers agrees with memcmp order
 * and most comparisons of a search are one integer compare on the node's first
 * bytes. Nodes of height 1 go to one arena and taller ones to another: with
 * the values kept apart too, the nodes a search walks on the upper levels lie
 * densely together and the ones of level 0 nearly so, so a search misses the
 * cache on fewer lines and pages. An empty value's val points just past the
 * key (no allocation).
 * Every field and the key/value bytes are written before the node is linked at
 * level 0 (a release store), and never change afterwards; only next[] is
 * stored to once linked. A node is linked bottom-up, so a node reachable at
 * level i is reachable at every level below i. The head node is height
 * MEMTABLE_MAX_HEIGHT, holds no key and sorts before every entry. */
typedef struct mt_node {
    uint64_t prefix;
    uint64_t tag;
    const uint8_t *val;
    uint32_t vlen;
    uint16_t klen;
    uint8_t height;
    _Atomic(struct mt_node *) next[];
} mt_node;

#define MEMTABLE_MAX_HEIGHT 12

struct memtable {
    /* The writer's (concurrent inserters': under alloc_mu); each arena's
     * used count is read by any thread. */
    arena nodes;           /* nodes of height 1 */
    arena towers;          /* nodes of height 2 and more (the head too) */
    arena vals;            /* values */
    struct tmutex alloc_mu; /* the arenas, while inserts run concurrently */
    mt_node *head;
    atomic_int height;     /* levels in use; only grows; relaxed: see memtable_add */
    atomic_uint refs;
    atomic_uint_fast64_t count;
    _Atomic uint64_t first_seq; /* smallest sequence number added; 0 while empty */
    /* The single writer's alone (concurrent inserts leave them be): */
    uint64_t rng;
    /* The last node of each level in use (head: none). Concurrent inserts
     * do not keep them but set tails_stale, and the next single-writer
     * insert moves each to its level's end (the concurrent inserts happened
     * before it: the caller orders them). */
    mt_node *tail[MEMTABLE_MAX_HEIGHT];
    atomic_int tails_stale;
    /* The filter over the user keys added: nlines cache lines of 512 bits
     * (NULL, 0: none). Set bits only ever go from 0 to 1; see filter_probe. */
    _Atomic uint64_t *filter;
    size_t filter_lines;
};

/* Backward steps: the list has no back links, so a step back searches for the
 * node before. Instead of one search per step, a search stops at the last
 * node before the current one among those at least MT_BACK_LEVEL + 1 tall
 * (one in 4^MT_BACK_LEVEL), walks level 0 from there and keeps every node it
 * passes (at most MT_BACK_MAX, the nearest): the next steps back take them
 * in turn. A node linked meanwhile between two kept ones is not seen: it is
 * newer than any reader's sequence number (see memtable.h), so the reader
 * would skip it anyway. */
#define MT_BACK_LEVEL 2
#define MT_BACK_MAX 64

typedef struct memtable_iter_s {
    iiter base;
    memtable *m;
    const mt_node *node;   /* NULL: not positioned */
    int nback;             /* nodes kept for backward steps: back[nback - 1] is just before node */
    const mt_node *back[MT_BACK_MAX];
} memtable_iter_s;

/* A search target: an internal key with its prefix computed once. */
typedef struct mt_target {
    const uint8_t *key;
    size_t klen;
    uint64_t prefix;
    uint64_t tag;
} mt_target;

static inline const uint8_t *node_key(const mt_node *n)
{
    return (const uint8_t *)&n->next[n->height];
}

static inline mt_node *node_next(const mt_node *n, int level)
{
    return atomic_load_explicit(&n->next[level], memory_order_acquire);
}

/* 8 bytes big-endian (compilers turn this into one load and a byte swap). */
static inline uint64_t load_be64(const uint8_t *p)
{
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
           (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
           (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

/* The first min(8, klen) bytes big-endian, zero-padded: for keys a and b,
 * prefix(a) < prefix(b) implies a < b in memcmp order (shorter first on a
 * tie), and a < b implies prefix(a) <= prefix(b). */
static inline uint64_t key_prefix(const uint8_t *k, size_t klen)
{
    if (klen >= 8) return load_be64(k);
    uint64_t p = 0;
    for (size_t i = 0; i < klen; i++) p |= (uint64_t)k[i] << (56 - 8 * i);
    return p;
}

/* ukey_cmp of keys whose prefixes are equal: their first min(8, al, bl)
 * bytes are then equal, so the comparison starts after them, 8 bytes at a
 * time while both keys have that many left. */
static inline int key_rest_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t i = al < bl ? al : bl;
    if (i > 8) i = 8;
    for (; i + 8 <= al && i + 8 <= bl; i += 8) {
        uint64_t x = load_be64(a + i), y = load_be64(b + i);
        if (x != y) return x < y ? -1 : 1;
    }
    for (; i < al && i < bl; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return al < bl ? -1 : al > bl;
}

/* ikey_cmp of node n against the target. */
static inline int node_cmp(const mt_node *n, const mt_target *t)
{
    if (n->prefix != t->prefix) return n->prefix < t->prefix ? -1 : 1;
    int c = key_rest_cmp(node_key(n), n->klen, t->key, t->klen);
    if (c) return c;
    return n->tag > t->tag ? -1 : n->tag < t->tag;
}

static inline mt_target target_of(const void *key, size_t klen, uint64_t tag)
{
    mt_target t = {key, klen, key_prefix(key, klen), tag};
    return t;
}

static inline mt_node *node_alloc(memtable *m, int height, size_t klen)
{
    size_t size = sizeof(mt_node) + (size_t)height * sizeof(mt_node *) + klen;
    mt_node *n = arena_alloc(height > 1 ? &m->towers : &m->nodes, size, _Alignof(mt_node));
    if (!n) return NULL;
    n->height = (uint8_t)height;
    for (int i = 0; i < height; i++) atomic_init(&n->next[i], NULL);
    return n;
}

/* ---- the filter ----
 *
 * A blocked bloom filter: a key's probes all fall in one 64-byte line, so a
 * lookup that the filter turns away costs one cache miss instead of a
 * search of the skiplist. h = bloom_hash(key) picks the line by its high 32
 * bits (multiply and shift); the bits are MT_FILTER_PROBES 9-bit fields of
 * h * golden ratio, each a bit of the line's 512. Sized at 1/64 of the
 * memtable's budget (8 bits per byte of entries: about 19 bits per key for
 * 16-byte keys and 100-byte values), it turns away all but about 1% of the
 * keys not in the memtable.
 *
 * Bits are set before the node is linked and the entry's sequence number is
 * published, and a reader looks only for entries published before its
 * sequence number was taken, so relaxed atomics suffice: a bit a reader
 * needs was set before what it synchronized with. */
#define MT_FILTER_PROBES 6
#define MT_FILTER_LINE_WORDS 8

static inline _Atomic uint64_t *filter_line(const memtable *m, uint64_t h)
{
    return m->filter + ((h >> 32) * m->filter_lines >> 32) * MT_FILTER_LINE_WORDS;
}

/* Sets key hash h's bits: by read and store for the single writer, by
 * fetch-or when inserts run concurrently. */
static inline void filter_add(memtable *m, uint64_t h, int concurrent)
{
    if (!m->filter) return;
    _Atomic uint64_t *line = filter_line(m, h);
    uint64_t g = h * UINT64_C(0x9e3779b97f4a7c15);
    for (int i = 0; i < MT_FILTER_PROBES; i++, g >>= 9) {
        unsigned bit = (unsigned)(g & 511);
        uint64_t mask = UINT64_C(1) << (bit & 63);
        _Atomic uint64_t *w = &line[bit >> 6];
        if (concurrent) {
            atomic_fetch_or_explicit(w, mask, memory_order_relaxed);
        } else {
            uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
            if (!(old & mask)) atomic_store_explicit(w, old | mask, memory_order_relaxed);
        }
    }
}

/* 0 when no key with hash h was added; 1 when one may have been. */
static inline int filter_may_contain(const memtable *m, uint64_t h)
{
    if (!m->filter) return 1;
    const _Atomic uint64_t *line = filter_line(m, h);
    uint64_t g = h * UINT64_C(0x9e3779b97f4a7c15);
    for (int i = 0; i < MT_FILTER_PROBES; i++, g >>= 9) {
        unsigned bit = (unsigned)(g & 511);
        if (!(atomic_load_explicit(&line[bit >> 6], memory_order_relaxed) >> (bit & 63) & 1)) return 0;
    }
    return 1;
}

int memtable_filter_may_contain(const memtable *m, const void *key, size_t klen)
{
    return filter_may_contain(m, bloom_hash(key, klen));
}

size_t memtable_filter_bytes(const memtable *m) { return m->filter_lines * MT_FILTER_LINE_WORDS * sizeof(uint64_t); }

memtable *memtable_new(size_t filter_bytes)
{
    memtable *m = malloc(sizeof *m);
    if (!m) return NULL;
    m->filter = NULL;
    m->filter_lines = 0;
    if (filter_bytes >= MEMTABLE_FILTER_MAX) filter_bytes = MEMTABLE_FILTER_MAX;
    if (filter_bytes >= MT_FILTER_LINE_WORDS * sizeof(uint64_t)) {
        size_t lines = filter_bytes / (MT_FILTER_LINE_WORDS * sizeof(uint64_t));
        m->filter = aligned_alloc(64, lines * 64);
        if (!m->filter) {
            free(m);
            return NULL;
        }
        for (size_t i = 0; i < lines * MT_FILTER_LINE_WORDS; i++) atomic_init(&m->filter[i], 0);
        m->filter_lines = lines;
    }
    arena_init(&m->nodes);
    arena_init(&m->towers);
    arena_init(&m->vals);
    (void)tmutex_init(&m->alloc_mu); /* cannot fail with default attributes */
    m->head = node_alloc(m, MEMTABLE_MAX_HEIGHT, 0);
    if (!m->head) {
        arena_destroy(&m->towers);
        tmutex_destroy(&m->alloc_mu);
        free((void *)m->filter);
        free(m);
        return NULL;
    }
    m->head->prefix = 0;
    m->head->tag = 0;
    m->head->val = node_key(m->head);
    m->head->vlen = 0;
    m->head->klen = 0;
    for (int i = 0; i < MEMTABLE_MAX_HEIGHT; i++) m->tail[i] = m->head;
    atomic_init(&m->height, 1);
    atomic_init(&m->refs, 1);
    atomic_init(&m->count, 0);
    atomic_init(&m->first_seq, 0);
    atomic_init(&m->tails_stale, 0);
    m->rng = (uint64_t)(uintptr_t)m ^ UINT64_C(0x9e3779b97f4a7c15);
    if (!m->rng) m->rng = 1; /* xorshift stays at zero forever */
    return m;
}

void memtable_ref(memtable *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }

void memtable_unref(memtable *m)
{
    if (!m) return;
    /* acq_rel: every use by other holders happens before the free. */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
    arena_destroy(&m->nodes);
    arena_destroy(&m->towers);
    arena_destroy(&m->vals);
    tmutex_destroy(&m->alloc_mu);
    free((void *)m->filter);
    free(m);
}

size_t memtable_bytes(const memtable *m)
{
    return arena_used(&m->nodes) + arena_used(&m->towers) + arena_used(&m->vals);
}

uint64_t memtable_first_seq(const memtable *m)
{
    return atomic_load_explicit(&m->first_seq, memory_order_relaxed);
}

uint64_t memtable_count(const memtable *m)
{
    return atomic_load_explicit(&m->count, memory_order_relaxed);
}

/* Height with P(h > k) = 4^-k, capped. xorshift64* on *state: the single
 * writer's, or a concurrent inserter's own thread's. */
static int memtable_random_height(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    uint64_t r = x * UINT64_C(0x2545f4914f6cdd1d);
    int h = 1;
    while (h < MEMTABLE_MAX_HEIGHT && (r & 3) == 0) {
        h++;
        r >>= 2;
    }
    return h;
}

/* The first node >= target, or NULL. When prev is given, prev[i] is the last
 * node < target at level i, for every level in use.
 * A node found >= the target at one level is not compared again when it
 * comes up as the next node on a lower one. While comparing at level L the
 * link one level down is prefetched: it is where the search goes when it
 * descends. */
static mt_node *memtable_find_ge(const memtable *m, const mt_target *t, mt_node **prev)
{
    mt_node *x = m->head, *bound = NULL;
    int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        mt_node *next = node_next(x, level);
        if (level > 0) __builtin_prefetch(atomic_load_explicit(&x->next[level - 1], memory_order_relaxed));
        if (next && next != bound && node_cmp(next, t) < 0) {
            x = next;
        } else {
            bound = next;
            if (prev) prev[level] = x;
            if (level == 0) return next;
            level--;
        }
    }
}

/* The last node < target (strict) or <= target (!strict); the head when none. */
static const mt_node *memtable_find_before(const memtable *m, const mt_target *t, int strict)
{
    const mt_node *x = m->head;
    int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        const mt_node *next = node_next(x, level);
        int c = next ? node_cmp(next, t) : 1;
        if (c < 0 || (c == 0 && !strict)) {
            x = next;
        } else {
            if (level == 0) return x;
            level--;
        }
    }
}

/* The last node < target among those linked at level `stop` or above (the
 * head when none). */
static const mt_node *memtable_find_before_at(const memtable *m, const mt_target *t, int stop)
{
    const mt_node *x = m->head;
    int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        const mt_node *next = node_next(x, level);
        if (next && node_cmp(next, t) < 0) {
            x = next;
        } else {
            if (level <= stop) return x;
            level--;
        }
    }
}

/* The last node; the head when empty. */
static const mt_node *memtable_find_last(const memtable *m)
{
    const mt_node *x = m->head;
    int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        const mt_node *next = node_next(x, level);
        if (next) {
            x = next;
        } else {
            if (level == 0) return x;
            level--;
        }
    }
}

/* The single writer: every tail moved to its level's end after concurrent
 * inserts. Relaxed loads: the links it follows were stored by inserts that
 * happened before this one. */
static void memtable_fix_tails(memtable *m)
{
    for (int i = 0; i < MEMTABLE_MAX_HEIGHT; i++) {
        mt_node *x = m->tail[i], *next;
        while ((next = atomic_load_explicit(&x->next[i], memory_order_relaxed)) != NULL) x = next;
        m->tail[i] = x;
    }
    atomic_store_explicit(&m->tails_stale, 0, memory_order_relaxed);
}

/* Fills prev[] for an insert of t. An entry after the last one (ascending
 * inserts) takes the tails as its predecessors without a search: the last
 * node of each level is then the last one below it. */
static void memtable_find_prev(memtable *m, const mt_target *t, mt_node **prev)
{
    if (atomic_load_explicit(&m->tails_stale, memory_order_relaxed)) memtable_fix_tails(m);
    int height = atomic_load_explicit(&m->height, memory_order_relaxed);
    mt_node *last = m->tail[0];
    if (last != m->head && node_cmp(last, t) < 0) {
        for (int i = 0; i < height; i++) prev[i] = m->tail[i];
        return;
    }
    memtable_find_ge(m, t, prev);
}

/* Node n (height h, fields written) linked at every level by the single
 * writer: prev[] is exact, as nothing else links meanwhile. */
static void memtable_link(memtable *m, mt_node *n, int h, mt_node **prev)
{
    int cur = atomic_load_explicit(&m->height, memory_order_relaxed);
    if (h > cur) {
        for (int i = cur; i < h; i++) prev[i] = m->head;
        /* Relaxed is enough: a reader that sees the new height before the
         * node is linked finds NULL at the head's new levels and descends. */
        atomic_store_explicit(&m->height, h, memory_order_relaxed);
    }
    for (int i = 0; i < h; i++) {
        /* The writer is alone, so reading prev's link relaxed is exact. */
        mt_node *succ = atomic_load_explicit(&prev[i]->next[i], memory_order_relaxed);
        atomic_store_explicit(&n->next[i], succ, memory_order_relaxed);
        /* Release: the node's contents are visible to whoever follows this link. */
        atomic_store_explicit(&prev[i]->next[i], n, memory_order_release);
        if (!succ) m->tail[i] = n;
    }
}

/* Node n (height h, fields written, key t) linked at every level while other
 * inserts may link theirs: at each level, bottom-up, the predecessor found
 * by the search moves right past nodes linked since that sort before n, and
 * the link is a compare-and-swap that retries from there when another node
 * came in between. Nodes are never unlinked, so a predecessor stays one. */
static void memtable_link_concurrent(memtable *m, mt_node *n, int h, const mt_target *t, mt_node **prev)
{
    /* Relaxed, as in memtable_link: a reader that sees the new height
     * before the node is linked finds NULL or an older node and goes on. */
    int cur = atomic_load_explicit(&m->height, memory_order_relaxed);
    while (h > cur && !atomic_compare_exchange_weak_explicit(&m->height, &cur, h, memory_order_relaxed,
                                                             memory_order_relaxed))
        ;
    for (int i = 0; i < h; i++) {
        mt_node *p = prev[i];
        mt_node *succ = atomic_load_explicit(&p->next[i], memory_order_acquire);
        for (;;) {
            while (succ && node_cmp(succ, t) < 0) {
                p = succ;
                succ = atomic_load_explicit(&p->next[i], memory_order_acquire);
            }
            atomic_store_explicit(&n->next[i], succ, memory_order_relaxed);
            /* Release: the node's contents (and its link below, at level 0
             * its fields) are visible to whoever follows this link. On a
             * failure succ is what came in meanwhile. */
            if (atomic_compare_exchange_strong_explicit(&p->next[i], &succ, n, memory_order_release,
                                                        memory_order_acquire))
                break;
        }
    }
}

/* A node of height h for a klen-byte key, and *vp room for a vlen-byte
 * value (NULL when vlen is 0); NULL when out of memory. */
static inline mt_node *entry_alloc(memtable *m, int h, size_t klen, size_t vlen, uint8_t **vp)
{
    *vp = vlen ? arena_alloc(&m->vals, vlen, 1) : NULL;
    return !vlen || *vp ? node_alloc(m, h, klen) : NULL;
}

/* The per-thread height generator of concurrent inserts. */
static _Thread_local uint64_t memtable_thread_rng;

/* Inlined into both entries, so that each is compiled for its constant
 * `concurrent`. */
static inline __attribute__((always_inline)) int memtable_insert(memtable *m, int concurrent, uint64_t seq,
                                                                 unsigned kind, const void *key, size_t klen,
                                                                 const void *val, size_t vlen)
{
    if (klen > TIND_MAX_KEY_BYTES || vlen > TIND_MAX_VALUE_BYTES || seq > SEQ_MAX || kind > 0xff)
        return TIND_INVALID;
    mt_target t = target_of(key, klen, tag_pack(seq, kind));

    mt_node *prev[MEMTABLE_MAX_HEIGHT];
    if (concurrent) {
        /* The levels above the height the search sees (another insert may
         * raise it before this one links) start from the head. */
        for (int i = 0; i < MEMTABLE_MAX_HEIGHT; i++) prev[i] = m->head;
        memtable_find_ge(m, &t, prev);
    } else {
        memtable_find_prev(m, &t, prev);
    }

    int h;
    uint8_t *vp;
    mt_node *n;
    if (concurrent) {
        if (!memtable_thread_rng)
            memtable_thread_rng = ((uint64_t)(uintptr_t)&memtable_thread_rng ^ UINT64_C(0x9e3779b97f4a7c15)) | 1;
        h = memtable_random_height(&memtable_thread_rng);
        tmutex_lock(&m->alloc_mu);
        n = entry_alloc(m, h, klen, vlen, &vp);
        tmutex_unlock(&m->alloc_mu);
    } else {
        h = memtable_random_height(&m->rng);
        n = entry_alloc(m, h, klen, vlen, &vp);
    }
    if (!n) return err_nomem();
    n->prefix = t.prefix;
    n->tag = t.tag;
    n->vlen = (uint32_t)vlen;
    n->klen = (uint16_t)klen;
    uint8_t *kp = (uint8_t *)&n->next[h];
    if (klen) memcpy(kp, key, klen);
    if (vlen) memcpy(vp, val, vlen);
    n->val = vlen ? vp : kp + klen;
    filter_add(m, bloom_hash(key, klen), concurrent);

    if (concurrent) {
        memtable_link_concurrent(m, n, h, &t, prev);
        if (!atomic_load_explicit(&m->tails_stale, memory_order_relaxed))
            atomic_store_explicit(&m->tails_stale, 1, memory_order_relaxed);
    } else {
        memtable_link(m, n, h, prev);
    }
    /* The smallest sequence number: concurrent inserts come in any order. */
    uint64_t first = atomic_load_explicit(&m->first_seq, memory_order_relaxed);
    while ((first == 0 || seq < first) &&
           !atomic_compare_exchange_weak_explicit(&m->first_seq, &first, seq, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    return TIND_OK;
}

int memtable_add(memtable *m, uint64_t seq, unsigned kind, const void *key, size_t klen,
                 const void *val, size_t vlen)
{
    return memtable_insert(m, 0, seq, kind, key, klen, val, vlen);
}

int memtable_add_concurrent(memtable *m, uint64_t seq, unsigned kind, const void *key, size_t klen,
                            const void *val, size_t vlen)
{
    return memtable_insert(m, 1, seq, kind, key, klen, val, vlen);
}

int memtable_get(memtable *m, const void *key, size_t klen, uint64_t seq, unsigned *kind,
                 const uint8_t **val, size_t *vlen)
{
    return memtable_get_hashed(m, key, klen, bloom_hash(key, klen), seq, kind, val, vlen);
}

int memtable_get_hashed(memtable *m, const void *key, size_t klen, uint64_t hash, uint64_t seq, unsigned *kind,
                        const uint8_t **val, size_t *vlen)
{
    if (!filter_may_contain(m, hash)) return 0;
    if (seq > SEQ_MAX) seq = SEQ_MAX;
    /* KIND_MAX sorts first among tags of seq, so this lands on the newest
     * version with a sequence number <= seq. */
    mt_target t = target_of(key, klen, tag_pack(seq, KIND_MAX));
    const mt_node *n = memtable_find_ge(m, &t, NULL);
    if (!n || n->prefix != t.prefix || key_rest_cmp(node_key(n), n->klen, t.key, t.klen) != 0)
        return 0;
    *kind = tag_kind(n->tag);
    *val = n->val;
    *vlen = n->vlen;
    return 1;
}

/* ---- iterator ---- */

static void memtable_iter_set(memtable_iter_s *it, const mt_node *n)
{
    if (n == it->m->head) n = NULL;
    it->node = n;
    if (!n) {
        it->base.valid = 0;
        it->base.key = NULL;
        it->base.klen = 0;
        it->base.tag = 0;
        it->base.val = NULL;
        it->base.vlen = 0;
        return;
    }
    it->base.valid = 1;
    it->base.key = node_key(n);
    it->base.klen = n->klen;
    it->base.tag = n->tag;
    it->base.val = n->val;
    it->base.vlen = n->vlen;
}

static void memtable_iter_seek_first(iiter *b)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    it->nback = 0;
    memtable_iter_set(it, node_next(it->m->head, 0));
}

static void memtable_iter_seek_last(iiter *b)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    it->nback = 0;
    memtable_iter_set(it, memtable_find_last(it->m));
}

static void memtable_iter_seek(iiter *b, const uint8_t *key, size_t klen, uint64_t tag)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    mt_target t = target_of(key, klen, tag);
    it->nback = 0;
    memtable_iter_set(it, memtable_find_ge(it->m, &t, NULL));
}

static void memtable_iter_seek_for_prev(iiter *b, const uint8_t *key, size_t klen, uint64_t tag)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    mt_target t = target_of(key, klen, tag);
    it->nback = 0;
    memtable_iter_set(it, memtable_find_before(it->m, &t, 0));
}

static void memtable_iter_next(iiter *b)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    if (!it->node) return;
    it->nback = 0;
    memtable_iter_set(it, node_next(it->node, 0));
}

/* Keeps the nodes before n (see MT_BACK_LEVEL): none when n is the first. */
static void memtable_iter_fill_back(memtable_iter_s *it, const mt_node *n)
{
    const memtable *m = it->m;
    mt_target t = {node_key(n), n->klen, n->prefix, n->tag};
    const mt_node *x = memtable_find_before_at(m, &t, MT_BACK_LEVEL);
    it->nback = 0;
    for (const mt_node *y = x == m->head ? node_next(x, 0) : x; y && y != n; y = node_next(y, 0)) {
        if (it->nback == MT_BACK_MAX) { /* keep the nearer half */
            memmove(it->back, it->back + MT_BACK_MAX / 2, sizeof it->back[0] * (MT_BACK_MAX / 2));
            it->nback = MT_BACK_MAX / 2;
        }
        it->back[it->nback++] = y;
    }
}

static void memtable_iter_prev(iiter *b)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    const mt_node *n = it->node;
    if (!n) return;
    if (it->nback == 0) memtable_iter_fill_back(it, n);
    memtable_iter_set(it, it->nback ? it->back[--it->nback] : NULL);
}

static int memtable_iter_status(const iiter *b)
{
    (void)b;
    return TIND_OK;
}

static void memtable_iter_destroy(iiter *b)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    memtable_unref(it->m);
    free(it);
}

static const struct iiter_ops memtable_iter_ops = {
    .seek_first = memtable_iter_seek_first,
    .seek_last = memtable_iter_seek_last,
    .seek = memtable_iter_seek,
    .seek_for_prev = memtable_iter_seek_for_prev,
    .next = memtable_iter_next,
    .prev = memtable_iter_prev,
    .status = memtable_iter_status,
    .destroy = memtable_iter_destroy,
};

iiter *memtable_iter(memtable *m)
{
    memtable_iter_s *it = malloc(sizeof *it);
    if (!it) return NULL;
    it->base.ops = &memtable_iter_ops;
    it->m = m;
    it->nback = 0;
    memtable_ref(m);
    memtable_iter_set(it, NULL);
    return &it->base;
}
