#include "lsm/memtable.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "src/util/arena.h"
#include "src/util/err.h"

/* A skiplist node, one arena allocation:
 *   node := tag:u64 vlen:u32 klen:u16 height:u8 pad next[height]:ptr key[klen] val[vlen]
 * Every field and the key/value bytes are written before the node is linked at
 * level 0 (a release store), and never change afterwards; only next[] is
 * stored to once linked. A node is linked bottom-up, so a node reachable at
 * level i is reachable at every level below i. The head node is height
 * MEMTABLE_MAX_HEIGHT, holds no key and sorts before every entry. */
typedef struct mt_node {
    uint64_t tag;
    uint32_t vlen;
    uint16_t klen;
    uint8_t height;
    _Atomic(struct mt_node *) next[];
} mt_node;

#define MEMTABLE_MAX_HEIGHT 12

struct memtable {
    arena arena;           /* the writer's; arena.bytes is read by any thread */
    mt_node *head;
    atomic_int height;     /* levels in use; only grows; relaxed: see memtable_add */
    atomic_uint refs;
    atomic_uint_fast64_t count;
    _Atomic uint64_t first_seq; /* sequence number of the first entry added; 0 while empty */
    uint64_t rng;          /* the writer's alone */
};

typedef struct memtable_iter_s {
    iiter base;
    memtable *m;
    const mt_node *node;   /* NULL: not positioned */
} memtable_iter_s;

static inline const uint8_t *node_key(const mt_node *n)
{
    return (const uint8_t *)&n->next[n->height];
}

static inline mt_node *node_next(const mt_node *n, int level)
{
    return atomic_load_explicit(&n->next[level], memory_order_acquire);
}

/* ikey_cmp of node n against the target (key, klen, tag). */
static inline int node_cmp(const mt_node *n, const uint8_t *key, size_t klen, uint64_t tag)
{
    return ikey_cmp(node_key(n), n->klen, n->tag, key, klen, tag);
}

static mt_node *node_alloc(memtable *m, int height, size_t klen, size_t vlen)
{
    size_t fixed = sizeof(mt_node) + (size_t)height * sizeof(mt_node *) + klen;
    if (vlen > SIZE_MAX - fixed) return NULL;
    mt_node *n = arena_alloc(&m->arena, fixed + vlen, _Alignof(mt_node));
    if (!n) return NULL;
    n->height = (uint8_t)height;
    for (int i = 0; i < height; i++) atomic_init(&n->next[i], NULL);
    return n;
}

memtable *memtable_new(void)
{
    memtable *m = malloc(sizeof *m);
    if (!m) return NULL;
    arena_init(&m->arena);
    m->head = node_alloc(m, MEMTABLE_MAX_HEIGHT, 0, 0);
    if (!m->head) {
        arena_destroy(&m->arena);
        free(m);
        return NULL;
    }
    m->head->tag = 0;
    m->head->vlen = 0;
    m->head->klen = 0;
    atomic_init(&m->height, 1);
    atomic_init(&m->refs, 1);
    atomic_init(&m->count, 0);
    atomic_init(&m->first_seq, 0);
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
    arena_destroy(&m->arena);
    free(m);
}

size_t memtable_bytes(const memtable *m) { return arena_used(&m->arena); }

uint64_t memtable_first_seq(const memtable *m)
{
    return atomic_load_explicit(&m->first_seq, memory_order_relaxed);
}

uint64_t memtable_count(const memtable *m)
{
    return atomic_load_explicit(&m->count, memory_order_relaxed);
}

/* Height with P(h > k) = 4^-k, capped. xorshift64*: the writer's own state. */
static int memtable_random_height(memtable *m)
{
    uint64_t x = m->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    m->rng = x;
    uint64_t r = x * UINT64_C(0x2545f4914f6cdd1d);
    int h = 1;
    while (h < MEMTABLE_MAX_HEIGHT && (r & 3) == 0) {
        h++;
        r >>= 2;
    }
    return h;
}

/* The first node >= target, or NULL. When prev is given, prev[i] is the last
 * node < target at level i, for every level in use. */
static mt_node *memtable_find_ge(const memtable *m, const uint8_t *key, size_t klen, uint64_t tag,
                                 mt_node **prev)
{
    mt_node *x = m->head;
    int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        mt_node *next = node_next(x, level);
        if (next && node_cmp(next, key, klen, tag) < 0) {
            x = next;
        } else {
            if (prev) prev[level] = x;
            if (level == 0) return next;
            level--;
        }
    }
}

/* The last node < target (strict) or <= target (!strict); the head when none. */
static const mt_node *memtable_find_before(const memtable *m, const uint8_t *key, size_t klen,
                                           uint64_t tag, int strict)
{
    const mt_node *x = m->head;
    int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        const mt_node *next = node_next(x, level);
        int c = next ? node_cmp(next, key, klen, tag) : 1;
        if (c < 0 || (c == 0 && !strict)) {
            x = next;
        } else {
            if (level == 0) return x;
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

int memtable_add(memtable *m, uint64_t seq, unsigned kind, const void *key, size_t klen,
                 const void *val, size_t vlen)
{
    if (klen > TIND_MAX_KEY_BYTES || vlen > TIND_MAX_VALUE_BYTES || seq > SEQ_MAX || kind > 0xff)
        return TIND_INVALID;
    uint64_t tag = tag_pack(seq, kind);

    mt_node *prev[MEMTABLE_MAX_HEIGHT];
    memtable_find_ge(m, key, klen, tag, prev);

    int h = memtable_random_height(m);
    mt_node *n = node_alloc(m, h, klen, vlen);
    if (!n) return err_nomem();
    n->tag = tag;
    n->vlen = (uint32_t)vlen;
    n->klen = (uint16_t)klen;
    uint8_t *kp = (uint8_t *)&n->next[h];
    if (klen) memcpy(kp, key, klen);
    if (vlen) memcpy(kp + klen, val, vlen);

    int cur = atomic_load_explicit(&m->height, memory_order_relaxed);
    if (h > cur) {
        for (int i = cur; i < h; i++) prev[i] = m->head;
        /* Relaxed is enough: a reader that sees the new height before the
         * node is linked finds NULL at the head's new levels and descends. */
        atomic_store_explicit(&m->height, h, memory_order_relaxed);
    }
    for (int i = 0; i < h; i++) {
        /* The writer is alone, so reading prev's link relaxed is exact. */
        atomic_store_explicit(&n->next[i],
                              atomic_load_explicit(&prev[i]->next[i], memory_order_relaxed),
                              memory_order_relaxed);
        /* Release: the node's contents are visible to whoever follows this link. */
        atomic_store_explicit(&prev[i]->next[i], n, memory_order_release);
    }
    if (atomic_load_explicit(&m->count, memory_order_relaxed) == 0)
        atomic_store_explicit(&m->first_seq, seq, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    return TIND_OK;
}

int memtable_get(memtable *m, const void *key, size_t klen, uint64_t seq, unsigned *kind,
                 const uint8_t **val, size_t *vlen)
{
    if (seq > SEQ_MAX) seq = SEQ_MAX;
    /* KIND_MAX sorts first among tags of seq, so this lands on the newest
     * version with a sequence number <= seq. */
    const mt_node *n = memtable_find_ge(m, key, klen, tag_pack(seq, KIND_MAX), NULL);
    if (!n || ukey_cmp(node_key(n), n->klen, key, klen) != 0) return 0;
    *kind = tag_kind(n->tag);
    *val = node_key(n) + n->klen;
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
    it->base.val = it->base.key + n->klen;
    it->base.vlen = n->vlen;
}

static void memtable_iter_seek_first(iiter *b)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    memtable_iter_set(it, node_next(it->m->head, 0));
}

static void memtable_iter_seek_last(iiter *b)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    memtable_iter_set(it, memtable_find_last(it->m));
}

static void memtable_iter_seek(iiter *b, const uint8_t *key, size_t klen, uint64_t tag)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    memtable_iter_set(it, memtable_find_ge(it->m, key, klen, tag, NULL));
}

static void memtable_iter_seek_for_prev(iiter *b, const uint8_t *key, size_t klen, uint64_t tag)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    memtable_iter_set(it, memtable_find_before(it->m, key, klen, tag, 0));
}

static void memtable_iter_next(iiter *b)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    if (!it->node) return;
    memtable_iter_set(it, node_next(it->node, 0));
}

/* No back links: search from the head for the last node before this one. */
static void memtable_iter_prev(iiter *b)
{
    memtable_iter_s *it = (memtable_iter_s *)b;
    const mt_node *n = it->node;
    if (!n) return;
    memtable_iter_set(it, memtable_find_before(it->m, node_key(n), n->klen, n->tag, 1));
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
    memtable_ref(m);
    memtable_iter_set(it, NULL);
    return &it->base;
}
