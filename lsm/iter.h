/* The internal iterator: one interface over every sorted source of entries
 * (a memtable, a block, a table, the tables of one level, a merge of
 * others; layers above add their own).
 *
 * Entries are internal keys (ikey.h) in internal order, every version
 * included; tombstones are entries like any other. The current entry is held
 * in the base struct so that reading it costs no call: key/klen/tag/val/vlen
 * are meaningful while `valid` is set and stay valid until the next move. */
#ifndef TIND_LSM_ITER_H
#define TIND_LSM_ITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct iiter iiter;

struct iiter_ops {
    void (*seek_first)(iiter *it);
    void (*seek_last)(iiter *it);
    /* First entry >= (key, tag) in internal order. */
    void (*seek)(iiter *it, const uint8_t *key, size_t klen, uint64_t tag);
    /* Last entry <= (key, tag) in internal order. */
    void (*seek_for_prev)(iiter *it, const uint8_t *key, size_t klen, uint64_t tag);
    /* Next / previous entry; only while valid. */
    void (*next)(iiter *it);
    void (*prev)(iiter *it);
    /* TIND_OK or the error that made the iterator invalid. */
    int (*status)(const iiter *it);
    void (*destroy)(iiter *it);
};

struct iiter {
    const struct iiter_ops *ops;
    int valid;
    const uint8_t *key;
    size_t klen;
    uint64_t tag;
    const uint8_t *val;
    size_t vlen;
};

static inline void iiter_seek_first(iiter *it) { it->ops->seek_first(it); }
static inline void iiter_seek_last(iiter *it) { it->ops->seek_last(it); }
static inline void iiter_seek(iiter *it, const uint8_t *k, size_t kl, uint64_t tag) { it->ops->seek(it, k, kl, tag); }
static inline void iiter_seek_for_prev(iiter *it, const uint8_t *k, size_t kl, uint64_t tag)
{
    it->ops->seek_for_prev(it, k, kl, tag);
}
static inline void iiter_next(iiter *it) { it->ops->next(it); }
static inline void iiter_prev(iiter *it) { it->ops->prev(it); }
static inline int iiter_status(const iiter *it) { return it->ops->status(it); }
static inline void iiter_destroy(iiter *it)
{
    if (it) it->ops->destroy(it);
}

#endif
