/* Blocks: the prefix-compressed sorted runs that data and index blocks share.
 *
 *   block := entry* restart:u32[n] n:u32
 *   entry := shared:varint32 unshared:varint32 value_len:varint32 key_delta[unshared] value[value_len]
 *   key   := user_key tag:u64      (the internal key, tag little-endian)
 *
 * An entry's key is the previous entry's first `shared` bytes followed by
 * key_delta. Every restart_interval-th entry is a restart point: it stores
 * its whole key (shared = 0) and its offset is in the restart array, so a
 * seek binary-searches the restart keys and then scans at most one interval.
 * Keys are compared in internal order (lsm/ikey.h) by splitting off the last
 * 8 bytes as the tag: the user keys with ukey_cmp, then the tags descending.
 * (No byte encoding of a tag makes memcmp of the concatenation match that
 * order: "a"+tag and "ab"+tag compare by the tag's first byte.) Keeping the
 * tag as the last 8 bytes lets versions of one user key share its prefix.
 *
 * Invariants the reader checks before using a block (block_init): n fits, the
 * restart offsets increase strictly, the first is 0 and each lies before the
 * restart array; n = 0 only for a block without entries. Entries are decoded
 * with every length checked against the end of the entry area, so a malformed
 * block gives TIND_CORRUPTION from the iterator's status, never an
 * out-of-bounds read. Key order inside a block is not rechecked on reads (the
 * block checksum covers it); table_verify checks it.
 *
 * A block is immutable once built: any number of iterators on any threads may
 * read one block at once. */
#ifndef TIND_LSM_BLOCK_H
#define TIND_LSM_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "lsm/iter.h"
#include "src/util/buf.h"

/* ---- building ---------------------------------------------------------------- */

typedef struct block_builder {
    buf data;          /* entries so far */
    buf restarts;      /* restart offsets, already encoded as u32 */
    buf last;          /* the last key added (user key + tag), for prefix sharing */
    unsigned interval; /* entries per restart point, >= 1 */
    unsigned counter;  /* entries since the last restart point */
    size_t entries;
    int finished;
} block_builder;

void block_builder_init(block_builder *b, unsigned restart_interval);
void block_builder_free(block_builder *b);
/* Empties b for the next block, keeping its memory. */
void block_builder_reset(block_builder *b);
/* Appends an entry; keys must come in increasing internal order (the caller
 * checks). TIND_NO_MEMORY leaves b unchanged; TIND_INVALID when a length does
 * not fit the format (value over 4 GiB, key over 4 GiB - 8). */
int block_builder_add(block_builder *b, const uint8_t *key, size_t klen, uint64_t tag, const uint8_t *val,
                      size_t vlen);
/* Bytes the block would have if finished now. */
size_t block_builder_size(const block_builder *b);
/* An upper bound on what adding an entry of these sizes grows the block by. */
static inline size_t block_builder_entry_bound(size_t klen, size_t vlen) { return 3 * 5 + klen + 8 + vlen + 4; }
static inline int block_builder_empty(const block_builder *b) { return b->entries == 0; }
/* Appends the restart array; *data / *n stay valid until the next reset. */
int block_builder_finish(block_builder *b, const uint8_t **data, size_t *n);

/* ---- reading ----------------------------------------------------------------- */

typedef struct block {
    const uint8_t *data; /* the contents (not owned) */
    size_t size;
    size_t limit;        /* entries occupy [0, limit); the restart array follows */
    uint32_t nrestarts;
} block;

/* Checks the restart array of data[0..n) and fills b; data must outlive b.
 * TIND_CORRUPTION (message "malformed block: ...") when it is malformed. */
int block_init(block *b, const uint8_t *data, size_t n);
static inline size_t block_entries_bytes(const block *b) { return b->limit; }
/* The checks of a whole block that reads skip: entries decode and lie end to
 * end from offset 0 to the restart array, and each restart offset is the
 * start of an entry stored whole (shared = 0), as backward steps and seeks
 * assume. TIND_OK, or TIND_CORRUPTION ("malformed block: ..."). For
 * verification: it decodes every entry. */
int block_check(const block *b);

/* A position in a block. Embeddable (the table reader keeps two) or
 * allocated through block_iter_new as a plain iiter. The current key lives
 * in the block itself when stored whole, else in the iterator's key buffer
 * (inline up to BLOCK_ITER_INLINE bytes, so most seeks allocate nothing). */
#define BLOCK_ITER_INLINE 64
/* Entries a backward step keeps: stepping back re-decodes the restart
 * interval before the current entry, and keeps the entries it passes (up to
 * this many, the nearest) for the steps after, so that a backward scan
 * decodes each entry about once instead of half an interval per step. */
#define BLOCK_ITER_BACK 16
struct block_back {
    size_t cur, next;     /* the entry's offset and the offset past it */
    size_t koff;          /* its whole key: bkeys[koff .. koff + kn) */
    size_t kn;
    const uint8_t *val;   /* its value, in the block */
    uint32_t vlen;
};
typedef struct block_iter {
    iiter base;
    const block *b;
    size_t cur;       /* offset of the current entry */
    size_t next;      /* offset just past it */
    uint32_t ridx;    /* the restart interval the current entry lies in */
    const uint8_t *k; /* the current full key (user key + tag) */
    size_t kn;
    uint8_t *kbuf;    /* key buffer: kinline or malloc'd */
    size_t kcap;
    int status;
    size_t bad_off;   /* where a malformed entry was found */
    uint8_t kinline[BLOCK_ITER_INLINE];
    int nback;        /* kept entries: back[nback - 1] ends where the current one starts */
    uint32_t bridx;   /* their restart interval */
    uint8_t *bkeys;   /* their keys (malloc'd, NULL until a step back needs it) */
    size_t bkn, bkcap;
    struct block_back back[BLOCK_ITER_BACK];
} block_iter;

/* Positions nowhere (invalid) on b (NULL: an empty block). */
void block_iter_init(block_iter *it, const block *b);
/* Moves the iterator to another block, keeping its key buffer. */
void block_iter_set(block_iter *it, const block *b);
/* Frees the key buffer. */
void block_iter_release(block_iter *it);

void block_iter_seek_first(block_iter *it);
void block_iter_seek_last(block_iter *it);
void block_iter_seek(block_iter *it, const uint8_t *key, size_t klen, uint64_t tag);
/* block_iter_seek for a caller that knows more: every entry before restart
 * point lo is < target, and restart point hi + 1, when there is one, holds
 * a key >= target; only restarts lo..hi are searched (both clamped to the
 * block's). */
void block_iter_seek_range(block_iter *it, uint32_t lo, uint32_t hi, const uint8_t *key, size_t klen, uint64_t tag);
void block_iter_seek_for_prev(block_iter *it, const uint8_t *key, size_t klen, uint64_t tag);
void block_iter_next(block_iter *it);
void block_iter_prev(block_iter *it);

/* An allocated iterator over b (not owned; b must outlive it); NULL when
 * out of memory. */
iiter *block_iter_new(const block *b);

#endif
