/* The table reader: open (footer, properties, index, filter), point lookups,
 * iterators and verification.
 *
 * A table is immutable after table_open returns: its fields are written
 * once, before it is shared, and only the reference count changes later, so
 * table_get, table_may_contain and table_iter run on any number of threads at
 * once without locks. Decoded blocks (struct tblock) are single allocations,
 * never changed after they are built, and shared through the block cache;
 * with no cache, each reader decodes its own copy, except the index and the
 * filter, which the table then loads once at open and keeps.
 *
 * Every failure to read or check a block is reported as
 *   "table <path> offset <N>: <what>"
 * with N the offset of the block (or footer field) concerned. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/block.h"
#include "lsm/bloom.h"
#include "lsm/compress.h"
#include "lsm/ikey.h"
#include "lsm/table.h"
#include "lsm/table_format.h"
#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "src/util/file.h"

enum tkind { TB_DATA, TB_INDEX, TB_FILTER, TB_PROPS };
static const char *const table_kind_name[] = {"data block", "index block", "filter block", "properties block"};

/* A decoded block: the header and the contents in one allocation. An
 * index block also gets a search array (ipfx, a second allocation): entry
 * i's key reduced to a u64 by index_key_prefix, so that a seek narrows the
 * entries down by integer compares on one dense array and compares whole
 * keys only among those whose reduced keys tie with the target's. */
struct tblock {
    block b;              /* parsed restart array (data and index blocks) */
    size_t size;          /* bytes of contents */
    uint64_t *ipfx;       /* index blocks whose every entry is a restart point: the search array; else NULL */
    const uint8_t *ip;    /* the prefix every key of the table shares (after the array) */
    size_t icp;           /* its length */
    uint8_t mem[];        /* the contents (read buffers also hold the trailer) */
};

struct bhandle {
    uint64_t off, size;
};

struct table {
    _Atomic long refs;
    tfile *f;
    cache *bc;                  /* NULL: no caching */
    uint64_t cache_id;          /* first half of this table's block cache keys */
    uint64_t file_size;
    uint64_t data_end;          /* data blocks lie in [0, data_end) */
    unsigned filter_layout;     /* enum bloom_layout, from the format version */
    struct bhandle index_h, filter_h, props_h;
    /* The index and filter, kept for the table's life: owned when bc is NULL,
     * else held in the cache by the pinned handles (charged there, never
     * evicted while the table is open), so that a lookup costs one cache
     * lookup (the data block) instead of three. */
    struct tblock *index, *filter;
    cache_handle *index_pin, *filter_pin;
    struct table_props props;
};

/* A block in use: held through the cache, borrowed from the table, or owned. */
struct tref {
    struct tblock *tb;
    cache_handle *h;
    int owned;
};

const struct table_props *table_get_props(const table *t) { return &t->props; }
const char *table_path(const table *t) { return file_path(t->f); }

/* Records "table <path> offset <off>: <what>[: <the message so far>]". */
static int table_corrupt(const table *t, uint64_t off, int with_inner, const char *fmt, ...) TIND_PRINTF(4, 5);

static int table_corrupt(const table *t, uint64_t off, int with_inner, const char *fmt, ...)
{
    char what[256], inner[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(inner, sizeof inner, "%s", with_inner ? err_msg() : "");
    return err_set(TIND_CORRUPTION, "table %s offset %llu: %s%s%s", table_path(t), (unsigned long long)off, what,
                   inner[0] ? ": " : "", inner);
}

static void tblock_free(struct tblock *tb)
{
    if (tb) free(tb->ipfx);
    free(tb);
}

/* What the cache charges for a decoded block. */
static size_t tblock_charge(const struct tblock *tb)
{
    return sizeof *tb + tb->size + (tb->ipfx ? (size_t)tb->b.nrestarts * sizeof *tb->ipfx + tb->icp + 1 : 0);
}

/* ---- the index's search array ----
 *
 * Every key of a table shares the first icp bytes (ip) of its user key: the
 * common prefix of the smallest and the largest. A user key k reduces to
 *   0           when k sorts before every key starting with ip,
 *   UINT64_MAX  when k sorts after them,
 *   else        the 8 bytes of k after ip, big-endian, zero-padded.
 * The reduction never decreases as keys increase (user keys, then tags), so
 * on a sorted index the entries whose reduced key is below the target's sort
 * before it and those above sort after it, whatever the separators are (the
 * last may lie past the largest key). For keys with a long shared head
 * (counters, zero-padded numbers, a common prefix) the bytes that tell keys
 * apart are the ones kept. */
static uint64_t index_key_prefix(const uint8_t *ip, size_t icp, const uint8_t *k, size_t kl)
{
    int c = memcmp(k, ip, kl < icp ? kl : icp);
    if (c < 0 || (c == 0 && kl < icp)) return 0;
    if (c > 0) return UINT64_MAX;
    uint64_t x = 0;
    for (size_t i = 0; i < 8; i++) x = x << 8 | (icp + i < kl ? k[icp + i] : 0);
    return x;
}

/* Builds tb's search array (the shared prefix copied after it), when every
 * entry of the index is a restart point. Out of memory, or a block that
 * does not decode, leaves it without one (seeks then search the restart
 * array, and report what they find). */
static void index_build_search(const table *t, struct tblock *tb)
{
    uint32_t n = tb->b.nrestarts;
    if (n == 0) return;
    const buf *lo = &t->props.smallest, *hi = &t->props.largest;
    size_t cp = 0;
    while (cp < lo->len && cp < hi->len && lo->p[cp] == hi->p[cp]) cp++;
    block_iter it;
    block_iter_init(&it, &tb->b);
    uint32_t count = 0;
    for (block_iter_seek_first(&it); it.base.valid && count <= n; block_iter_next(&it)) count++;
    uint64_t *pfx = !it.status && count == n ? malloc((size_t)n * sizeof *pfx + cp + 1) : NULL;
    if (pfx) {
        uint8_t *ip = (uint8_t *)(pfx + n);
        if (cp) memcpy(ip, lo->p, cp);
        uint32_t i = 0;
        for (block_iter_seek_first(&it); it.base.valid && i < n; block_iter_next(&it), i++)
            pfx[i] = index_key_prefix(ip, cp, it.base.key, it.base.klen);
        if (i == n && !it.status) {
            tb->ipfx = pfx;
            tb->ip = ip;
            tb->icp = cp;
        } else {
            free(pfx);
        }
    }
    block_iter_release(&it);
}

/* Positions ii (over index block ib) at the first separator >= (key, tag),
 * as block_iter_seek does, through the search array when ib has one. */
static void index_seek(const struct tblock *ib, block_iter *ii, const uint8_t *key, size_t klen, uint64_t tag)
{
    if (!ib->ipfx) {
        block_iter_seek(ii, key, klen, tag);
        return;
    }
    const uint64_t *a = ib->ipfx, x = index_key_prefix(ib->ip, ib->icp, key, klen);
    uint32_t n = ib->b.nrestarts, lo = 0, hi = n;
    while (lo < hi) { /* the first entry reduced to >= x */
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    uint32_t up = lo;
    while (up < n && a[up] == x) up++; /* past the ties: those sort after the target */
    /* Entries before lo are < target; entry up (when there is one) is > it. */
    block_iter_seek_range(ii, lo ? lo - 1 : 0, up ? up - 1 : 0, key, klen, tag);
}

/* Compressed blocks up to this size (trailer included) are read into a
 * buffer on the stack, so that a cache miss allocates only the decoded block. */
#define TABLE_STACK_READ 8192

/* Checks the trailer of the n + BLOCK_TRAILER_SIZE bytes at raw and sets
 * *type: TIND_OK, or TIND_CORRUPTION naming the block. */
static int table_check_trailer(const table *t, struct bhandle h, const char *what, const uint8_t *raw, size_t n,
                               unsigned *type)
{
    *type = raw[n];
    if (get_u64(raw + n + 1) != checksum64(raw, n + 1)) return table_corrupt(t, h.off, 0, "checksum mismatch in %s", what);
    if (*type != COMPRESS_NONE && !compress_known(*type))
        return table_corrupt(t, h.off, 0, "%s has unknown compression %u", what, *type);
    return TIND_OK;
}

/* Decodes the checked, compressed contents src[0..n) into a new tblock. */
static int table_decompress(const table *t, struct bhandle h, const char *what, unsigned type, const uint8_t *src,
                            size_t n, struct tblock **out)
{
    size_t rn;
    int rc;
    if ((rc = compress_raw_size(src, n, &rn)) != TIND_OK) return table_corrupt(t, h.off, 1, "%s", what);
    if (rn > SIZE_MAX - sizeof(struct tblock)) return table_corrupt(t, h.off, 0, "%s decodes to too many bytes", what);
    struct tblock *raw = malloc(sizeof *raw + rn);
    if (!raw) return err_nomem();
    if ((rc = compress_decode(type, src, n, raw->mem, rn)) != TIND_OK) {
        if (rc == TIND_CORRUPTION) rc = table_corrupt(t, h.off, 1, "%s", what);
        free(raw);
        return rc;
    }
    raw->size = rn;
    *out = raw;
    return TIND_OK;
}

/* Reads the n + BLOCK_TRAILER_SIZE bytes of the block at h into dst. */
static int table_read_block(const table *t, struct bhandle h, const char *what, uint8_t *dst, size_t n)
{
    size_t got;
    int rc = file_read_at(t->f, h.off, dst, n + BLOCK_TRAILER_SIZE, &got);
    if (rc) return rc;
    if (got != n + BLOCK_TRAILER_SIZE)
        return table_corrupt(t, h.off, 0, "short read of %s: %zu of %zu bytes", what, got, n + BLOCK_TRAILER_SIZE);
    return TIND_OK;
}

/* Reads, checks and decodes the block at h; *out is one malloc'd tblock.
 * The data blocks of a compressed table are read into a stack buffer when
 * small enough and decoded from there; every other block is read into its
 * tblock, and decoded into a second one when it turns out compressed. */
static int table_load(const table *t, struct bhandle h, enum tkind kind, uint64_t limit, struct tblock **out)
{
    *out = NULL;
    const char *what = table_kind_name[kind];
    if (h.off > limit || h.size > limit - h.off || BLOCK_TRAILER_SIZE > limit - h.off - h.size ||
        h.size > SIZE_MAX - sizeof(struct tblock) - BLOCK_TRAILER_SIZE)
        return table_corrupt(t, h.off, 0, "%s of %llu bytes runs past its region (ends at %llu)", what,
                             (unsigned long long)h.size, (unsigned long long)limit);
    size_t n = (size_t)h.size;
    struct tblock *tb = NULL;
    unsigned type;
    int rc;
    if (kind == TB_DATA && t->props.compression != COMPRESS_NONE && n + BLOCK_TRAILER_SIZE <= TABLE_STACK_READ) {
        uint8_t stack[TABLE_STACK_READ];
        if ((rc = table_read_block(t, h, what, stack, n)) != TIND_OK) return rc;
        if ((rc = table_check_trailer(t, h, what, stack, n, &type)) != TIND_OK) return rc;
        if (type != COMPRESS_NONE) {
            rc = table_decompress(t, h, what, type, stack, n, &tb);
        } else if ((tb = malloc(sizeof *tb + n)) != NULL) {
            memcpy(tb->mem, stack, n);
            tb->size = n;
        } else {
            rc = err_nomem();
        }
        if (rc) return rc;
    } else {
        if (!(tb = malloc(sizeof *tb + n + BLOCK_TRAILER_SIZE))) return err_nomem();
        if ((rc = table_read_block(t, h, what, tb->mem, n)) != TIND_OK ||
            (rc = table_check_trailer(t, h, what, tb->mem, n, &type)) != TIND_OK)
            goto fail;
        tb->size = n;
        if (type != COMPRESS_NONE) {
            struct tblock *raw;
            if ((rc = table_decompress(t, h, what, type, tb->mem, n, &raw)) != TIND_OK) goto fail;
            free(tb);
            tb = raw;
        }
    }
    memset(&tb->b, 0, sizeof tb->b);
    tb->ipfx = NULL;
    tb->ip = NULL;
    tb->icp = 0;
    if (kind == TB_DATA || kind == TB_INDEX) {
        if (block_init(&tb->b, tb->mem, tb->size)) {
            rc = table_corrupt(t, h.off, 1, "%s", what);
            goto fail;
        }
    } else if (kind == TB_FILTER) {
        if (bloom_check(tb->mem, tb->size, t->filter_layout)) {
            rc = table_corrupt(t, h.off, 1, "%s", what);
            goto fail;
        }
    }
    if (kind == TB_INDEX) index_build_search(t, tb);
    *out = tb;
    return TIND_OK;
fail:
    free(tb);
    return rc;
}

static void table_block_deleter(void *value, void *arg)
{
    (void)arg;
    tblock_free(value);
}

static uint64_t table_region_end(const table *t, enum tkind kind)
{
    return kind == TB_DATA ? t->data_end : t->file_size - TABLE_FOOTER_SIZE;
}

/* Gets the block at h: the table's own copy, the cache's, or a fresh one
 * (then cached when there is a cache). Release with table_release. */
static int table_fetch(table *t, struct bhandle h, enum tkind kind, struct tref *r)
{
    r->tb = NULL;
    r->h = NULL;
    r->owned = 0;
    if (kind == TB_INDEX && t->index) {
        r->tb = t->index;
        return TIND_OK;
    }
    if (kind == TB_FILTER && t->filter) {
        r->tb = t->filter;
        return TIND_OK;
    }
    if (t->bc && (r->h = cache_lookup(t->bc, t->cache_id, h.off)) != NULL) {
        r->tb = cache_value(r->h);
        return TIND_OK;
    }
    struct tblock *tb;
    int rc = table_load(t, h, kind, table_region_end(t, kind), &tb);
    if (rc) return rc;
    if (t->bc) {
        /* Charged by what the decoded block occupies. */
        r->h = cache_insert(t->bc, t->cache_id, h.off, tb, tblock_charge(tb), table_block_deleter, NULL);
        if (!r->h) return err_nomem(); /* the deleter has freed tb */
        r->tb = cache_value(r->h);
    } else {
        r->tb = tb;
        r->owned = 1;
    }
    return TIND_OK;
}

static void table_release(table *t, struct tref *r)
{
    if (r->h) cache_release(t->bc, r->h);
    else if (r->owned) tblock_free(r->tb);
    r->tb = NULL;
    r->h = NULL;
    r->owned = 0;
}

/* handle := offset:varint64 size:varint64, filling the index entry's value. */
static int table_decode_handle(const table *t, uint64_t index_off, const uint8_t *v, size_t n, struct bhandle *h)
{
    const uint8_t *p = v, *end = v + n;
    if (!(p = get_varint64(p, end, &h->off)) || !(p = get_varint64(p, end, &h->size)) || p != end)
        return table_corrupt(t, index_off, 0, "malformed block handle in the index");
    return TIND_OK;
}

/* ---- properties -------------------------------------------------------------- */

static uint64_t *table_prop_field(struct table_props *p, unsigned tag)
{
    switch (tag) {
    case TPROP_ENTRIES: return &p->entries;
    case TPROP_TOMBSTONES: return &p->tombstones;
    case TPROP_DATA_BLOCKS: return &p->data_blocks;
    case TPROP_RAW_KEY_BYTES: return &p->raw_key_bytes;
    case TPROP_RAW_VALUE_BYTES: return &p->raw_value_bytes;
    case TPROP_DATA_BYTES: return &p->data_bytes;
    case TPROP_INDEX_BYTES: return &p->index_bytes;
    case TPROP_FILTER_BYTES: return &p->filter_bytes;
    case TPROP_MIN_SEQ: return &p->min_seq;
    case TPROP_MAX_SEQ: return &p->max_seq;
    case TPROP_CREATED: return &p->created;
    case TPROP_SMALLEST_TAG: return &p->smallest_tag;
    case TPROP_LARGEST_TAG: return &p->largest_tag;
    default: return NULL;
    }
}

static int table_parse_props(const table *t, const struct tblock *tb, struct table_props *p)
{
    const uint8_t *s = tb->mem, *end = tb->mem + tb->size;
    uint64_t off = t->props_h.off;
    uint32_t last = 0, seen = 0;
    while (s < end) {
        uint32_t tag, len;
        if (!(s = get_varint32(s, end, &tag)) || !(s = get_varint32(s, end, &len)) || len > (size_t)(end - s))
            return table_corrupt(t, off, 0, "malformed properties block");
        if (tag <= last) return table_corrupt(t, off, 0, "properties out of order at tag %u", tag);
        last = tag;
        uint64_t v = 0;
        uint64_t *field = table_prop_field(p, tag);
        int numeric = field || tag == TPROP_COMPRESSION || tag == TPROP_BLOOM_BITS;
        if (numeric && get_varint64(s, s + len, &v) != s + len)
            return table_corrupt(t, off, 0, "malformed property %u", tag);
        if (field) {
            *field = v;
        } else if (tag == TPROP_COMPRESSION || tag == TPROP_BLOOM_BITS) {
            if (v > UINT32_MAX) return table_corrupt(t, off, 0, "property %u out of range", tag);
            *(tag == TPROP_COMPRESSION ? &p->compression : &p->bloom_bits) = (uint32_t)v;
        } else if (tag == TPROP_SMALLEST || tag == TPROP_LARGEST) {
            buf *b = tag == TPROP_SMALLEST ? &p->smallest : &p->largest;
            if (buf_append(b, s, len)) return err_nomem();
        } /* else: a property of a later version, skipped */
        if (tag < 32) seen |= 1u << tag;
        s += len;
    }
    uint32_t need = 1u << TPROP_ENTRIES | 1u << TPROP_DATA_BLOCKS;
    if (p->entries) need |= 1u << TPROP_SMALLEST | 1u << TPROP_LARGEST;
    if ((seen & need) != need) return table_corrupt(t, off, 0, "properties block lacks a required property");
    return TIND_OK;
}

/* ---- open / close ------------------------------------------------------------ */

/* Drops the table's hold on its index and filter. */
static void table_unpin(table *t)
{
    if (t->index_pin) cache_release(t->bc, t->index_pin);
    else tblock_free(t->index);
    if (t->filter_pin) cache_release(t->bc, t->filter_pin);
    else tblock_free(t->filter);
    t->index = t->filter = NULL;
    t->index_pin = t->filter_pin = NULL;
}

static void table_free(table *t)
{
    if (t->bc) {
        /* Cache keys die with this table (a reopen gets a new id): drop the
         * blocks still cached, as far as the cached index names them. */
        cache_handle *h = cache_lookup(t->bc, t->cache_id, t->index_h.off);
        if (h) {
            const struct tblock *ib = cache_value(h);
            block_iter ii;
            block_iter_init(&ii, &ib->b);
            for (block_iter_seek_first(&ii); ii.base.valid; block_iter_next(&ii)) {
                struct bhandle bh;
                const uint8_t *p = ii.base.val, *end = p + ii.base.vlen;
                if ((p = get_varint64(p, end, &bh.off)) != NULL) cache_erase(t->bc, t->cache_id, bh.off);
            }
            block_iter_release(&ii);
            cache_release(t->bc, h);
        }
        cache_erase(t->bc, t->cache_id, t->index_h.off);
        if (t->filter_h.size) cache_erase(t->bc, t->cache_id, t->filter_h.off);
    }
    table_unpin(t);
    file_close(t->f);
    table_props_free(&t->props);
    free(t);
}

void table_ref(table *t) { atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed); }

void table_unref(table *t)
{
    if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) table_free(t);
}

static int table_read_footer(table *t)
{
    uint64_t fo = t->file_size - TABLE_FOOTER_SIZE;
    uint8_t ft[TABLE_FOOTER_SIZE];
    size_t got;
    int rc = file_read_at(t->f, fo, ft, sizeof ft, &got);
    if (rc) return rc;
    if (got != sizeof ft) return table_corrupt(t, fo, 0, "short read of the footer: %zu of %u bytes", got, TABLE_FOOTER_SIZE);
    if (get_u64(ft + FOOTER_MAGIC) != TABLE_MAGIC) return table_corrupt(t, fo + FOOTER_MAGIC, 0, "bad magic: not a table");
    if (get_u64(ft + FOOTER_CHECKSUM) != checksum64(ft, FOOTER_CHECKSUM))
        return table_corrupt(t, fo, 0, "footer checksum mismatch");
    uint32_t ver = get_u32(ft + FOOTER_VERSION), flags = get_u32(ft + FOOTER_FLAGS);
    if (ver < TABLE_FORMAT_OLDEST || ver > TABLE_FORMAT_VERSION)
        return table_corrupt(t, fo + FOOTER_VERSION, 0, "unsupported table format version %u", ver);
    t->filter_layout = ver >= 2 ? BLOOM_BLOCKED : BLOOM_PLAIN;
    if (flags) return table_corrupt(t, fo + FOOTER_FLAGS, 0, "unknown footer flags 0x%x", flags);
    t->index_h = (struct bhandle){get_u64(ft + FOOTER_INDEX_OFF), get_u64(ft + FOOTER_INDEX_SIZE)};
    t->filter_h = (struct bhandle){get_u64(ft + FOOTER_FILTER_OFF), get_u64(ft + FOOTER_FILTER_SIZE)};
    t->props_h = (struct bhandle){get_u64(ft + FOOTER_PROPS_OFF), get_u64(ft + FOOTER_PROPS_SIZE)};

    /* The metadata blocks are contiguous and end at the footer:
     *   [data) [filter) props index footer */
    const struct bhandle *ih = &t->index_h, *ph = &t->props_h, *fh = &t->filter_h;
    if (ih->size > fo || fo - ih->size < BLOCK_TRAILER_SIZE || ih->off != fo - ih->size - BLOCK_TRAILER_SIZE ||
        ph->size > ih->off || ih->off - ph->size < BLOCK_TRAILER_SIZE ||
        ph->off != ih->off - ph->size - BLOCK_TRAILER_SIZE)
        return table_corrupt(t, fo, 0, "footer handles disagree with the file size %llu",
                             (unsigned long long)t->file_size);
    t->data_end = ph->off;
    if (fh->size) {
        if (fh->size > ph->off || ph->off - fh->size < BLOCK_TRAILER_SIZE ||
            fh->off != ph->off - fh->size - BLOCK_TRAILER_SIZE)
            return table_corrupt(t, fo, 0, "footer filter handle disagrees with the file size %llu",
                                 (unsigned long long)t->file_size);
        t->data_end = fh->off;
    }
    return TIND_OK;
}

int table_open(const char *path, uint64_t expect_size, cache *bc, table **out)
{
    *out = NULL;
    if (!path) return err_set(TIND_INVALID, "table_open: NULL path");
    table *t = calloc(1, sizeof *t);
    if (!t) return err_nomem();
    atomic_init(&t->refs, 1);
    table_props_init(&t->props);
    struct tblock *pb = NULL;
    struct tref r = {0};
    int rc;
    if ((rc = file_open(path, FILE_READ, &t->f)) != TIND_OK) goto fail;
    t->file_size = file_size(t->f);
    if (t->file_size != expect_size) {
        rc = table_corrupt(t, t->file_size < expect_size ? t->file_size : expect_size, 0,
                           "file is %llu bytes, expected %llu", (unsigned long long)t->file_size,
                           (unsigned long long)expect_size);
        goto fail;
    }
    if (t->file_size < TABLE_FOOTER_SIZE) {
        rc = table_corrupt(t, 0, 0, "file of %llu bytes is too short for a table", (unsigned long long)t->file_size);
        goto fail;
    }
    if ((rc = table_read_footer(t)) != TIND_OK) goto fail;

    if ((rc = table_load(t, t->props_h, TB_PROPS, t->index_h.off, &pb)) != TIND_OK) goto fail;
    if ((rc = table_parse_props(t, pb, &t->props)) != TIND_OK) goto fail;
    if (t->props.data_bytes != t->data_end) {
        rc = table_corrupt(t, t->props_h.off, 0, "properties count %llu bytes of data blocks, the footer %llu",
                           (unsigned long long)t->props.data_bytes, (unsigned long long)t->data_end);
        goto fail;
    }

    /* Read the index and filter now: damage shows at open, and they are the
     * first blocks every lookup needs. Without a cache the table keeps them. */
    t->bc = bc;
    if (bc) t->cache_id = cache_new_id();
    if ((rc = table_fetch(t, t->index_h, TB_INDEX, &r)) != TIND_OK) goto fail;
    t->index = r.tb;
    t->index_pin = r.h;
    if (t->filter_h.size) {
        if ((rc = table_fetch(t, t->filter_h, TB_FILTER, &r)) != TIND_OK) goto fail;
        t->filter = r.tb;
        t->filter_pin = r.h;
    }
    free(pb);
    *out = t;
    return TIND_OK;
fail:
    free(pb);
    file_close(t->f);
    table_unpin(t);
    table_props_free(&t->props);
    free(t);
    return rc;
}

/* ---- point lookups ----------------------------------------------------------- */

int table_may_contain(table *t, const uint8_t *key, size_t klen)
{
    if (!t->filter_h.size) return 1;
    struct tref fr;
    if (table_fetch(t, t->filter_h, TB_FILTER, &fr)) return 1; /* cannot tell: may */
    int may = bloom_may_contain(fr.tb->mem, fr.tb->size, t->filter_layout, bloom_hash(key, klen));
    table_release(t, &fr);
    return may;
}

/* A block iterator's failure as a table error. */
static int table_block_failed(const table *t, const block_iter *it, uint64_t off, enum tkind kind)
{
    if (it->status != TIND_CORRUPTION) return it->status;
    return table_corrupt(t, off, 0, "malformed %s: bad entry at %zu", table_kind_name[kind], it->bad_off);
}

int table_get(table *t, const uint8_t *key, size_t klen, uint64_t seq, int *found, unsigned *kind, buf *val)
{
    return table_get_hashed(t, key, klen, bloom_hash(key, klen), seq, found, kind, val);
}

/* The lookup both gets share: on *found, *val and *vlen point into the data
 * block dr holds, which the caller releases (or keeps pinned). */
static int table_lookup(table *t, const uint8_t *key, size_t klen, uint64_t hash, uint64_t seq, int *found,
                        unsigned *kind, const uint8_t **val, size_t *vlen, struct tref *dr)
{
    *found = 0;
    if (seq > SEQ_MAX) seq = SEQ_MAX;
    uint64_t target = tag_pack(seq, KIND_MAX);
    struct tref ir = {0};
    *dr = (struct tref){0};
    block_iter ii, di;
    block_iter_init(&ii, NULL);
    block_iter_init(&di, NULL);
    int rc = TIND_OK;

    if (t->filter_h.size) {
        struct tref fr;
        if ((rc = table_fetch(t, t->filter_h, TB_FILTER, &fr)) != TIND_OK) return rc;
        int may = bloom_may_contain(fr.tb->mem, fr.tb->size, t->filter_layout, hash);
        table_release(t, &fr);
        if (!may) return TIND_OK;
    }
    if ((rc = table_fetch(t, t->index_h, TB_INDEX, &ir)) != TIND_OK) goto done;
    block_iter_set(&ii, &ir.tb->b);
    index_seek(ir.tb, &ii, key, klen, target);
    if (!ii.base.valid) {
        /* Past every separator: no entry >= target here. */
        if (ii.status) rc = table_block_failed(t, &ii, t->index_h.off, TB_INDEX);
        goto done;
    }
    struct bhandle h;
    if ((rc = table_decode_handle(t, t->index_h.off, ii.base.val, ii.base.vlen, &h)) != TIND_OK) goto done;
    if ((rc = table_fetch(t, h, TB_DATA, dr)) != TIND_OK) goto done;
    block_iter_set(&di, &dr->tb->b);
    block_iter_seek(&di, key, klen, target);
    /* When the block has no entry >= target, neither has the next one an
     * entry of this user key (see the separator rule in table_writer.c). */
    if (!di.base.valid) {
        if (di.status) rc = table_block_failed(t, &di, h.off, TB_DATA);
        goto done;
    }
    if (ukey_cmp(di.base.key, di.base.klen, key, klen) == 0) {
        *val = di.base.val;
        *vlen = di.base.vlen;
        *kind = tag_kind(di.base.tag);
        *found = 1;
    }
done:
    block_iter_release(&di);
    block_iter_release(&ii);
    if (!*found) table_release(t, dr);
    table_release(t, &ir);
    return rc;
}

int table_get_hashed(table *t, const uint8_t *key, size_t klen, uint64_t hash, uint64_t seq, int *found,
                     unsigned *kind, buf *val)
{
    struct tref dr;
    const uint8_t *v = NULL;
    size_t vl = 0;
    int rc = table_lookup(t, key, klen, hash, seq, found, kind, &v, &vl, &dr);
    if (*found) {
        buf_clear(val);
        if ((rc = buf_append(val, v, vl)) != TIND_OK) *found = 0;
        table_release(t, &dr);
    }
    return rc;
}

int table_get_pinned(table *t, const uint8_t *key, size_t klen, uint64_t hash, uint64_t seq, int *found,
                     unsigned *kind, const uint8_t **val, size_t *vlen, struct table_pin *pin)
{
    struct tref dr;
    *pin = (struct table_pin){0};
    int rc = table_lookup(t, key, klen, hash, seq, found, kind, val, vlen, &dr);
    if (*found) {
        /* The handle or the owned block outlives the table: the cache
         * keeps a value alive while a handle is out. */
        pin->cache = dr.h ? t->bc : NULL;
        pin->handle = dr.h;
        pin->block = dr.owned ? dr.tb : NULL;
    }
    return rc;
}

void table_pin_release(struct table_pin *pin)
{
    if (!pin) return;
    if (pin->handle) cache_release(pin->cache, pin->handle);
    tblock_free(pin->block);
    *pin = (struct table_pin){0};
}

/* ---- iterator ---------------------------------------------------------------- */

/* Invariant while valid: ii is at the index entry of the block dr holds, and
 * di is at the current entry of that block. The index block is fetched on the
 * first positioning and held until destroy. */
typedef struct titer {
    iiter base;
    table *t;
    struct tref ir;
    block_iter ii;
    struct tref dr;
    uint64_t doff; /* offset of the block in dr */
    block_iter di;
    int status;
} titer;

static void titer_clear(titer *ti)
{
    ti->base.valid = 0;
    ti->base.key = NULL;
    ti->base.klen = 0;
    ti->base.tag = 0;
    ti->base.val = NULL;
    ti->base.vlen = 0;
}

static void titer_fail(titer *ti, int rc)
{
    ti->status = rc;
    titer_clear(ti);
}

/* Starts a positioning: clears the error, fetches the index if need be. */
static int titer_begin(titer *ti)
{
    ti->status = TIND_OK;
    titer_clear(ti);
    if (ti->ir.tb) return 0;
    int rc = table_fetch(ti->t, ti->t->index_h, TB_INDEX, &ti->ir);
    if (rc) {
        titer_fail(ti, rc);
        return -1;
    }
    block_iter_set(&ti->ii, &ti->ir.tb->b);
    return 0;
}

/* Makes di an iterator over the block ii is at (reusing the loaded one). */
static int titer_load(titer *ti)
{
    struct bhandle h;
    int rc = table_decode_handle(ti->t, ti->t->index_h.off, ti->ii.base.val, ti->ii.base.vlen, &h);
    if (rc) goto fail;
    if (ti->dr.tb && ti->doff == h.off) return 0;
    table_release(ti->t, &ti->dr);
    block_iter_set(&ti->di, NULL);
    if ((rc = table_fetch(ti->t, h, TB_DATA, &ti->dr)) != TIND_OK) goto fail;
    ti->doff = h.off;
    block_iter_set(&ti->di, &ti->dr.tb->b);
    return 0;
fail:
    titer_fail(ti, rc);
    return -1;
}

/* Publishes di's entry, or reports why there is none: 1 when set, 0 when di
 * ran off its block without error, -1 on an error. */
static int titer_take(titer *ti)
{
    const block_iter *di = &ti->di;
    if (di->base.valid) {
        ti->base.valid = 1;
        ti->base.key = di->base.key;
        ti->base.klen = di->base.klen;
        ti->base.tag = di->base.tag;
        ti->base.val = di->base.val;
        ti->base.vlen = di->base.vlen;
        return 1;
    }
    if (di->status) {
        titer_fail(ti, table_block_failed(ti->t, di, ti->doff, TB_DATA));
        return -1;
    }
    return 0;
}

/* ii ran off the index: the end, or an error. */
static void titer_index_end(titer *ti)
{
    if (ti->ii.status) titer_fail(ti, table_block_failed(ti->t, &ti->ii, ti->t->index_h.off, TB_INDEX));
    else titer_clear(ti);
}

/* From the block ii is at (di positioned by the caller), forward to the first entry. */
static void titer_forward(titer *ti)
{
    for (;;) {
        if (titer_take(ti)) return;
        block_iter_next(&ti->ii);
        if (!ti->ii.base.valid) {
            titer_index_end(ti);
            return;
        }
        if (titer_load(ti)) return;
        block_iter_seek_first(&ti->di);
    }
}

static void titer_backward(titer *ti)
{
    for (;;) {
        if (titer_take(ti)) return;
        block_iter_prev(&ti->ii);
        if (!ti->ii.base.valid) {
            titer_index_end(ti);
            return;
        }
        if (titer_load(ti)) return;
        block_iter_seek_last(&ti->di);
    }
}

static void titer_seek_first(iiter *it)
{
    titer *ti = (titer *)it;
    if (titer_begin(ti)) return;
    block_iter_seek_first(&ti->ii);
    if (!ti->ii.base.valid) {
        titer_index_end(ti);
        return;
    }
    if (titer_load(ti)) return;
    block_iter_seek_first(&ti->di);
    titer_forward(ti);
}

static void titer_seek_last(iiter *it)
{
    titer *ti = (titer *)it;
    if (titer_begin(ti)) return;
    block_iter_seek_last(&ti->ii);
    if (!ti->ii.base.valid) {
        titer_index_end(ti);
        return;
    }
    if (titer_load(ti)) return;
    block_iter_seek_last(&ti->di);
    titer_backward(ti);
}

/* The first block whose separator is >= target holds the first entry >=
 * target, unless target falls between that block's last key and its
 * separator: then it is the next block's first entry. */
static void titer_seek(iiter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    titer *ti = (titer *)it;
    if (titer_begin(ti)) return;
    index_seek(ti->ir.tb, &ti->ii, key, klen, tag);
    if (!ti->ii.base.valid) {
        titer_index_end(ti);
        return;
    }
    if (titer_load(ti)) return;
    block_iter_seek(&ti->di, key, klen, tag);
    titer_forward(ti);
}

/* The last entry <= target is in the first block whose separator is >=
 * target, or, when that block starts after target, the block before. */
static void titer_seek_for_prev(iiter *it, const uint8_t *key, size_t klen, uint64_t tag)
{
    titer *ti = (titer *)it;
    if (titer_begin(ti)) return;
    index_seek(ti->ir.tb, &ti->ii, key, klen, tag);
    if (!ti->ii.base.valid && !ti->ii.status) block_iter_seek_last(&ti->ii); /* target is past every separator */
    if (!ti->ii.base.valid) {
        titer_index_end(ti);
        return;
    }
    if (titer_load(ti)) return;
    block_iter_seek_for_prev(&ti->di, key, klen, tag);
    titer_backward(ti);
}

static void titer_next(iiter *it)
{
    titer *ti = (titer *)it;
    if (!ti->base.valid) return;
    block_iter_next(&ti->di);
    titer_forward(ti);
}

static void titer_prev(iiter *it)
{
    titer *ti = (titer *)it;
    if (!ti->base.valid) return;
    block_iter_prev(&ti->di);
    titer_backward(ti);
}

static int titer_status(const iiter *it) { return ((const titer *)it)->status; }

static void titer_destroy(iiter *it)
{
    titer *ti = (titer *)it;
    block_iter_release(&ti->di);
    block_iter_release(&ti->ii);
    table_release(ti->t, &ti->dr);
    table_release(ti->t, &ti->ir);
    table_unref(ti->t);
    free(ti);
}

static const struct iiter_ops table_iter_ops = {
    .seek_first = titer_seek_first,
    .seek_last = titer_seek_last,
    .seek = titer_seek,
    .seek_for_prev = titer_seek_for_prev,
    .next = titer_next,
    .prev = titer_prev,
    .status = titer_status,
    .destroy = titer_destroy,
};

iiter *table_iter(table *t)
{
    titer *ti = calloc(1, sizeof *ti);
    if (!ti) return NULL;
    ti->base.ops = &table_iter_ops;
    ti->t = t;
    block_iter_init(&ti->ii, NULL);
    block_iter_init(&ti->di, NULL);
    table_ref(t);
    return &ti->base;
}

/* ---- verification ------------------------------------------------------------ */

/* Reads every block without the cache and checks what the format promises:
 * checksums, entry encoding and restart points (block_check), strictly
 * increasing keys across the table, each block's keys <= its separator and
 * > the previous separator, data blocks laid end to end from offset 0, the
 * filter knowing every user key, and the counts and key range of the
 * properties. */
int table_verify(table *t) { return table_verify_stats(t, NULL); }

/* What table_verify_stats has seen so far, walking the table in order. */
struct tverify {
    table *t;
    struct table_props props;
    struct tblock *fb;            /* the filter block, or NULL */
    block_iter di;                /* over the current data block */
    buf prev, psep;               /* the last key; the last index separator */
    uint64_t prev_tag, psep_tag;
    int have_prev, have_psep;
    uint64_t expect;              /* where the next data block must start */
    uint64_t blocks, entries, tombstones;
    uint64_t min_seq, max_seq, first_tag;
};

/* Checks entry e, number in_block of the data block at off, whose index
 * separator is sep, and takes it into the totals. */
static int tverify_entry(struct tverify *v, const iiter *e, const iiter *sep, uint64_t off, uint64_t in_block)
{
    const char *bad = NULL;
    if (v->have_prev && ikey_cmp(e->key, e->klen, e->tag, v->prev.p, v->prev.len, v->prev_tag) <= 0)
        bad = "keys out of order";
    else if (ikey_cmp(e->key, e->klen, e->tag, sep->key, sep->klen, sep->tag) > 0)
        bad = "key past its index separator";
    else if (v->have_psep && ikey_cmp(e->key, e->klen, e->tag, v->psep.p, v->psep.len, v->psep_tag) <= 0)
        bad = "key not past the previous index separator";
    else if (v->fb && !bloom_may_contain(v->fb->mem, v->fb->size, v->t->filter_layout, bloom_hash(e->key, e->klen)))
        bad = "key missing from the bloom filter";
    else if (v->entries == 0 && ukey_cmp(e->key, e->klen, v->props.smallest.p, v->props.smallest.len) != 0)
        bad = "first key differs from the properties' smallest";
    if (bad) return table_corrupt(v->t, off, 0, "%s (entry %llu of the block)", bad, (unsigned long long)in_block);
    if (v->entries == 0) v->first_tag = e->tag;
    if (tag_seq(e->tag) < v->min_seq) v->min_seq = tag_seq(e->tag);
    if (tag_seq(e->tag) > v->max_seq) v->max_seq = tag_seq(e->tag);
    buf_clear(&v->prev);
    int rc = buf_append(&v->prev, e->key, e->klen);
    if (rc) return rc;
    v->prev_tag = e->tag;
    v->have_prev = 1;
    v->entries++;
    if (tag_kind(e->tag) == KIND_DELETE) v->tombstones++;
    return TIND_OK;
}

/* Checks the data block that index entry sep names and
 * every entry in it. */
static int tverify_data_block(struct tverify *v, const iiter *sep)
{
    table *t = v->t;
    struct bhandle h;
    int rc = table_decode_handle(t, t->index_h.off, sep->val, sep->vlen, &h);
    if (rc) return rc;
    if (h.off != v->expect)
        return table_corrupt(t, t->index_h.off, 0, "index names a data block at %llu, expected one at %llu",
                             (unsigned long long)h.off, (unsigned long long)v->expect);
    struct tblock *db = NULL;
    if ((rc = table_load(t, h, TB_DATA, t->data_end, &db)) != TIND_OK) return rc;
    if (block_check(&db->b) != TIND_OK) {
        rc = table_corrupt(t, h.off, 1, "data block");
        goto done;
    }
    uint64_t in_block = 0;
    block_iter_set(&v->di, &db->b);
    for (block_iter_seek_first(&v->di); v->di.base.valid; block_iter_next(&v->di), in_block++)
        if ((rc = tverify_entry(v, &v->di.base, sep, h.off, in_block)) != TIND_OK) goto done;
    if (v->di.status) {
        rc = table_block_failed(t, &v->di, h.off, TB_DATA);
        goto done;
    }
    if (in_block == 0) {
        rc = table_corrupt(t, h.off, 0, "empty data block");
        goto done;
    }
    buf_clear(&v->psep);
    if ((rc = buf_append(&v->psep, sep->key, sep->klen)) != TIND_OK) goto done;
    v->psep_tag = sep->tag;
    v->have_psep = 1;
    v->expect = h.off + h.size + BLOCK_TRAILER_SIZE;
    v->blocks++;
done:
    block_iter_set(&v->di, NULL);
    free(db);
    return rc;
}

/* After the last data block: the blocks end where the metadata starts, and
 * the properties' counts, key range, sequence numbers and tags are the
 * entries'. */
static int tverify_totals(const struct tverify *v)
{
    table *t = v->t;
    const struct table_props *p = &v->props;
    if (v->expect != t->data_end)
        return table_corrupt(t, v->expect, 0, "data blocks end at %llu, the filter or properties start at %llu",
                             (unsigned long long)v->expect, (unsigned long long)t->data_end);
    if (v->blocks != p->data_blocks || v->entries != p->entries || v->tombstones != p->tombstones)
        return table_corrupt(t, t->props_h.off, 0,
                             "properties count %llu blocks, %llu entries, %llu tombstones; found %llu, %llu, %llu",
                             (unsigned long long)p->data_blocks, (unsigned long long)p->entries,
                             (unsigned long long)p->tombstones, (unsigned long long)v->blocks,
                             (unsigned long long)v->entries, (unsigned long long)v->tombstones);
    if (v->entries && ukey_cmp(v->prev.p, v->prev.len, p->largest.p, p->largest.len) != 0)
        return table_corrupt(t, t->props_h.off, 0, "last key differs from the properties' largest");
    if (v->entries && (p->min_seq != v->min_seq || p->max_seq != v->max_seq || p->smallest_tag != v->first_tag ||
                       p->largest_tag != v->prev_tag))
        return table_corrupt(t, t->props_h.off, 0,
                             "properties record sequence numbers %llu..%llu and tags 0x%llx..0x%llx; the entries "
                             "hold %llu..%llu and 0x%llx..0x%llx",
                             (unsigned long long)p->min_seq, (unsigned long long)p->max_seq,
                             (unsigned long long)p->smallest_tag, (unsigned long long)p->largest_tag,
                             (unsigned long long)v->min_seq, (unsigned long long)v->max_seq,
                             (unsigned long long)v->first_tag, (unsigned long long)v->prev_tag);
    return TIND_OK;
}

int table_verify_stats(table *t, struct table_verify_stats *st)
{
    struct tverify v = {.t = t, .min_seq = UINT64_MAX};
    struct tblock *pb = NULL, *ib = NULL;
    table_props_init(&v.props);
    block_iter ii;
    block_iter_init(&ii, NULL);
    block_iter_init(&v.di, NULL);
    buf_init(&v.prev);
    buf_init(&v.psep);
    int rc;
    if (st) memset(st, 0, sizeof *st);
    const uint64_t meta_end = t->file_size - TABLE_FOOTER_SIZE;

    if ((rc = table_load(t, t->props_h, TB_PROPS, meta_end, &pb)) != TIND_OK) goto done;
    if ((rc = table_parse_props(t, pb, &v.props)) != TIND_OK) goto done;
    if (t->filter_h.size && (rc = table_load(t, t->filter_h, TB_FILTER, meta_end, &v.fb)) != TIND_OK) goto done;
    if ((rc = table_load(t, t->index_h, TB_INDEX, meta_end, &ib)) != TIND_OK) goto done;
    if (block_check(&ib->b) != TIND_OK) {
        rc = table_corrupt(t, t->index_h.off, 1, "index block");
        goto done;
    }
    block_iter_set(&ii, &ib->b);
    for (block_iter_seek_first(&ii); ii.base.valid; block_iter_next(&ii))
        if ((rc = tverify_data_block(&v, &ii.base)) != TIND_OK) goto done;
    if (ii.status) {
        rc = table_block_failed(t, &ii, t->index_h.off, TB_INDEX);
        goto done;
    }
    if ((rc = tverify_totals(&v)) != TIND_OK) goto done;
    if (st) {
        st->blocks = v.blocks + 2 + (v.fb ? 1 : 0); /* data, properties, index, filter */
        st->data_blocks = v.blocks;
        st->entries = v.entries;
        st->bytes = t->file_size;
        st->props_offset = t->props_h.off;
    }
done:
    block_iter_release(&v.di);
    block_iter_release(&ii);
    buf_free(&v.prev);
    buf_free(&v.psep);
    table_props_free(&v.props);
    free(pb);
    tblock_free(v.fb);
    tblock_free(ib);
    return rc;
}
