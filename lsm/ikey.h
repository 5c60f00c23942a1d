/* Internal keys: a user key with a sequence number and a kind.
 *
 * Order: user key ascending (memcmp, shorter first on a tie), then tag
 * descending, so that the newest version of a key comes first.
 *   tag := seq << 8 | kind       (seq: 56 bits)
 * The kind values reach the disk (journal records, tables): frozen. */
#ifndef TIND_LSM_IKEY_H
#define TIND_LSM_IKEY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum ikey_kind {
    KIND_DELETE = 0, /* frozen */
    KIND_PUT = 1,    /* frozen */
};
#define KIND_MAX 0xff /* for seeks: sorts before every real kind of the same seq */

#define SEQ_MAX ((UINT64_C(1) << 56) - 1)

static inline uint64_t tag_pack(uint64_t seq, unsigned kind) { return seq << 8 | kind; }
static inline uint64_t tag_seq(uint64_t tag) { return tag >> 8; }
static inline unsigned tag_kind(uint64_t tag) { return (unsigned)(tag & 0xff); }

/* memcmp order, shorter first on a tie. */
static inline int ukey_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* Internal order: user key ascending, tag descending. */
static inline int ikey_cmp(const void *a, size_t al, uint64_t atag, const void *b, size_t bl, uint64_t btag)
{
    int c = ukey_cmp(a, al, b, bl);
    if (c) return c;
    return atag > btag ? -1 : atag < btag;
}

#endif
