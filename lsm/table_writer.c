/* The table writer: entries in, one durable table file out.
 *
 * Data blocks are cut so that a block never grows past block_size unless it
 * holds a single entry: an entry that would push a non-empty block over is
 * started in a new block, and a block that reaches block_size is written at
 * once. An entry larger than block_size so gets a block to itself.
 *
 * A block's index entry is added when the next block's first key is known
 * (LevelDB's pending entry), so that its key can be a short separator:
 *
 *   last key (a, ta), next first key (b, tb), a <= b in user-key order
 *   - a == b: the separator is (a, ta) itself;
 *   - else the shortest user key s with a < s < b obtained by cutting a after
 *     a byte that can be incremented (the first differing byte, or a later one
 *     of a when that first byte is one below b's), with tag TABLE_SEPARATOR_TAG,
 *     when s is shorter than a; otherwise (a, ta).
 * So a separator's user key equals the next block's first user key only when
 * the separator is the block's last key: a point lookup never needs the block
 * after the one the index names. The last block's separator is the short
 * successor of its last user key (cut after the first byte below 0xff, that
 * byte incremented) when shorter, else its last key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

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

#define TABLE_DEFAULT_BLOCK_SIZE 4096
#define TABLE_DEFAULT_RESTART_INTERVAL 16
/* Larger blocks would defeat the cache and the decompression limit. */
#define TABLE_MAX_BLOCK_SIZE (UINT64_C(64) << 20)

void table_props_init(struct table_props *p)
{
    memset(p, 0, sizeof *p);
    buf_init(&p->smallest);
    buf_init(&p->largest);
}

void table_props_free(struct table_props *p)
{
    buf_free(&p->smallest);
    buf_free(&p->largest);
    table_props_init(p);
}

struct table_writer {
    tfile *f;
    char *path;
    struct table_options o;
    block_builder data;
    block_builder index;
    bloom_builder bloom;
    compress_ctx cz;
    buf cbuf;            /* compressed contents of the block being written */
    buf last;            /* user key of the last entry added */
    uint64_t last_tag;
    buf sep;             /* separator scratch */
    int pending;         /* a data block is written and waits for its index entry */
    uint64_t pend_off, pend_size;
    uint64_t offset;     /* bytes written to the file */
    struct table_props props;
    int rc;              /* a failed write makes the writer unusable */
};

int table_writer_open(const char *path, const struct table_options *o, table_writer **out)
{
    *out = NULL;
    if (!path || !o) return err_set(TIND_INVALID, "table_writer_open: NULL argument");
    struct table_options opt = *o;
    if (!opt.block_size) opt.block_size = TABLE_DEFAULT_BLOCK_SIZE;
    if (!opt.restart_interval) opt.restart_interval = TABLE_DEFAULT_RESTART_INTERVAL;
    if (opt.block_size > TABLE_MAX_BLOCK_SIZE)
        return err_set(TIND_INVALID, "table block size %zu over the limit", opt.block_size);
    if (!compress_known(opt.compression)) return err_set(TIND_INVALID, "unknown compression %u", opt.compression);
    if (!opt.format_version) opt.format_version = TABLE_FORMAT_VERSION;
    if (opt.format_version < TABLE_FORMAT_OLDEST || opt.format_version > TABLE_FORMAT_VERSION)
        return err_set(TIND_INVALID, "unknown table format version %u", opt.format_version);

    table_writer *w = calloc(1, sizeof *w);
    if (!w) return err_nomem();
    int rc;
    w->o = opt;
    block_builder_init(&w->data, opt.restart_interval);
    block_builder_init(&w->index, 1); /* every index entry a restart point: pure binary search */
    bloom_builder_init(&w->bloom, opt.bloom_bits, opt.format_version >= 2 ? BLOOM_BLOCKED : BLOOM_PLAIN);
    compress_ctx_init(&w->cz);
    buf_init(&w->cbuf);
    buf_init(&w->last);
    buf_init(&w->sep);
    table_props_init(&w->props);
    w->props.min_seq = UINT64_MAX;
    w->props.compression = opt.compression;
    w->props.bloom_bits = opt.bloom_bits;
    if (!(w->path = strdup(path))) {
        rc = err_nomem();
        goto fail;
    }
    if ((rc = file_open(path, FILE_WRITE | FILE_CREATE | FILE_EXCL, &w->f)) != TIND_OK) goto fail;
    *out = w;
    return TIND_OK;
fail:
    free(w->path);
    block_builder_free(&w->data);
    block_builder_free(&w->index);
    bloom_builder_free(&w->bloom);
    table_props_free(&w->props);
    free(w);
    return rc;
}

static void table_writer_free(table_writer *w)
{
    block_builder_free(&w->data);
    block_builder_free(&w->index);
    bloom_builder_free(&w->bloom);
    compress_ctx_free(&w->cz);
    buf_free(&w->cbuf);
    buf_free(&w->last);
    buf_free(&w->sep);
    table_props_free(&w->props);
    free(w->path);
    free(w);
}

/* Writes contents[0..n) as a block, compressed with `type` when that pays:
 *   contents' compression:u8 checksum:u64
 * *off / *size receive its handle (size: of the stored contents). */
static int table_write_block(table_writer *w, const uint8_t *contents, size_t n, unsigned type, uint64_t *off,
                             uint64_t *size)
{
    unsigned stored;
    int rc = compress_block(&w->cz, type, w->o.zstd_level, contents, n, &w->cbuf, &stored);
    if (rc) return rc;
    const uint8_t *p = contents;
    if (stored != COMPRESS_NONE) {
        p = w->cbuf.p;
        n = w->cbuf.len;
    }
    uint8_t trailer[BLOCK_TRAILER_SIZE];
    trailer[0] = (uint8_t)stored;
    put_u64(trailer + 1, checksum64_2(p, n, trailer, 1));
    struct iovec iov[2] = {{(void *)p, n}, {trailer, sizeof trailer}};
    if ((rc = file_appendv(w->f, iov, 2)) != TIND_OK) return rc;
    *off = w->offset;
    *size = n;
    w->offset += n + BLOCK_TRAILER_SIZE;
    return TIND_OK;
}

static int table_flush_data(table_writer *w)
{
    const uint8_t *c;
    size_t n;
    int rc = block_builder_finish(&w->data, &c, &n);
    if (rc) return rc;
    if ((rc = table_write_block(w, c, n, w->o.compression, &w->pend_off, &w->pend_size)) != TIND_OK) return rc;
    w->props.data_blocks++;
    w->props.data_bytes += w->pend_size + BLOCK_TRAILER_SIZE;
    w->pending = 1;
    block_builder_reset(&w->data);
    return TIND_OK;
}

/* w->sep = the shortest cut of a[0..al) with a < cut < b[0..bl) (b NULL: no
 * upper bound); 0 when no cut is shorter than a. */
static int table_shorten(table_writer *w, const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t i = 0;
    if (b) {
        size_t n = al < bl ? al : bl;
        while (i < n && a[i] == b[i]) i++;
        if (i == al) return 0; /* a is a prefix of b: nothing shorter lies between */
        /* a[i] < b[i]; a[0..i] + (a[i] + 1) < b when a[i] + 1 < b[i]; else cut later in a. */
        if ((unsigned)a[i] + 1 >= b[i]) {
            i++;
            while (i < al && a[i] == 0xff) i++;
        }
    } else {
        while (i < al && a[i] == 0xff) i++;
    }
    if (i + 1 >= al) return 0; /* the cut would not be shorter */
    buf_clear(&w->sep);
    if (buf_append(&w->sep, a, i + 1)) return -1;
    w->sep.p[i]++;
    return 1;
}

/* Adds the pending index entry for the block just written; next: the first
 * user key of the next block (NULL: it was the last block). */
static int table_add_index(table_writer *w, const uint8_t *next, size_t nl)
{
    uint8_t h[2 * VARINT64_MAX];
    uint8_t *e = put_varint64(h, w->pend_off);
    e = put_varint64(e, w->pend_size);
    int s = 0;
    if (!next || ukey_cmp(w->last.p, w->last.len, next, nl) != 0) {
        s = table_shorten(w, w->last.p, w->last.len, next, nl);
        if (s < 0) return err_nomem();
    }
    int rc = s ? block_builder_add(&w->index, w->sep.p, w->sep.len, TABLE_SEPARATOR_TAG, h, (size_t)(e - h))
               : block_builder_add(&w->index, w->last.p, w->last.len, w->last_tag, h, (size_t)(e - h));
    if (rc) return rc;
    w->pending = 0;
    return TIND_OK;
}

int table_writer_add(table_writer *w, const uint8_t *key, size_t klen, uint64_t tag, const uint8_t *val, size_t vlen)
{
    if (w->rc) return w->rc;
    if ((!key && klen) || (!val && vlen)) return err_set(TIND_INVALID, "table_writer_add: NULL key or value");
    if (klen > UINT32_MAX - 8 || vlen > UINT32_MAX) return err_set(TIND_INVALID, "table entry too large");
    int first = w->props.entries == 0;
    if (!first && ikey_cmp(key, klen, tag, w->last.p, w->last.len, w->last_tag) <= 0)
        return err_set(TIND_INVALID, "table %s: keys out of order", w->path);
    int newkey = first || ukey_cmp(key, klen, w->last.p, w->last.len) != 0;

    int rc;
    if (!block_builder_empty(&w->data) &&
        block_builder_size(&w->data) + block_builder_entry_bound(klen, vlen) > w->o.block_size &&
        (rc = table_flush_data(w)) != TIND_OK)
        goto fail;
    if (w->pending && (rc = table_add_index(w, key, klen)) != TIND_OK) goto fail;
    if ((rc = block_builder_add(&w->data, key, klen, tag, val, vlen)) != TIND_OK) goto fail;
    if (w->o.bloom_bits && newkey && (rc = bloom_builder_add(&w->bloom, bloom_hash(key, klen))) != TIND_OK)
        goto fail;
    if (newkey) {
        buf_clear(&w->last);
        if ((rc = buf_append(&w->last, key, klen)) != TIND_OK) goto fail;
    }
    w->last_tag = tag;

    struct table_props *p = &w->props;
    if (first) {
        if ((rc = buf_append(&p->smallest, key, klen)) != TIND_OK) goto fail;
        p->smallest_tag = tag;
    }
    p->entries++;
    if (tag_kind(tag) == KIND_DELETE) p->tombstones++;
    p->raw_key_bytes += klen + 8;
    p->raw_value_bytes += vlen;
    uint64_t seq = tag_seq(tag);
    if (seq < p->min_seq) p->min_seq = seq;
    if (seq > p->max_seq) p->max_seq = seq;

    if (block_builder_size(&w->data) >= w->o.block_size && (rc = table_flush_data(w)) != TIND_OK) goto fail;
    return TIND_OK;
fail:
    /* The block builder, index and file may be half updated: no way back. */
    w->rc = rc;
    return rc;
}

uint64_t table_writer_size(const table_writer *w)
{
    return w->offset + (block_builder_empty(&w->data) ? 0 : block_builder_size(&w->data));
}

uint64_t table_writer_entries(const table_writer *w) { return w->props.entries; }

/* prop := tag:varint32 len:varint32 value[len] */
static int table_prop_u64(buf *b, unsigned tag, uint64_t v)
{
    uint8_t t[VARINT32_MAX + 1 + VARINT64_MAX];
    uint8_t *e = put_varint32(t, tag);
    *e++ = (uint8_t)varint_len(v);
    e = put_varint64(e, v);
    return buf_append(b, t, (size_t)(e - t));
}

static int table_prop_bytes(buf *b, unsigned tag, const buf *v)
{
    uint8_t t[2 * VARINT32_MAX];
    uint8_t *e = put_varint32(t, tag);
    e = put_varint32(e, (uint32_t)v->len);
    int rc = buf_append(b, t, (size_t)(e - t));
    return rc ? rc : buf_append(b, v->p, v->len);
}

static int table_encode_props(const struct table_props *p, buf *b)
{
    int rc = 0;
    /* Ascending tag order (lsm/table_format.h). */
    rc = rc ? rc : table_prop_u64(b, TPROP_ENTRIES, p->entries);
    rc = rc ? rc : table_prop_u64(b, TPROP_TOMBSTONES, p->tombstones);
    rc = rc ? rc : table_prop_u64(b, TPROP_DATA_BLOCKS, p->data_blocks);
    rc = rc ? rc : table_prop_u64(b, TPROP_RAW_KEY_BYTES, p->raw_key_bytes);
    rc = rc ? rc : table_prop_u64(b, TPROP_RAW_VALUE_BYTES, p->raw_value_bytes);
    rc = rc ? rc : table_prop_u64(b, TPROP_DATA_BYTES, p->data_bytes);
    rc = rc ? rc : table_prop_u64(b, TPROP_INDEX_BYTES, p->index_bytes);
    rc = rc ? rc : table_prop_u64(b, TPROP_FILTER_BYTES, p->filter_bytes);
    rc = rc ? rc : table_prop_u64(b, TPROP_MIN_SEQ, p->min_seq);
    rc = rc ? rc : table_prop_u64(b, TPROP_MAX_SEQ, p->max_seq);
    rc = rc ? rc : table_prop_u64(b, TPROP_COMPRESSION, p->compression);
    rc = rc ? rc : table_prop_u64(b, TPROP_BLOOM_BITS, p->bloom_bits);
    rc = rc ? rc : table_prop_u64(b, TPROP_CREATED, p->created);
    rc = rc ? rc : table_prop_bytes(b, TPROP_SMALLEST, &p->smallest);
    rc = rc ? rc : table_prop_bytes(b, TPROP_LARGEST, &p->largest);
    rc = rc ? rc : table_prop_u64(b, TPROP_SMALLEST_TAG, p->smallest_tag);
    rc = rc ? rc : table_prop_u64(b, TPROP_LARGEST_TAG, p->largest_tag);
    return rc;
}

static int table_sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return file_sync_dir(".");
    if (slash == path) return file_sync_dir("/");
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir) return err_nomem();
    memcpy(dir, path, n);
    dir[n] = 0;
    int rc = file_sync_dir(dir);
    free(dir);
    return rc;
}

int table_writer_finish(table_writer *w, struct table_props *props, uint64_t *size)
{
    int rc = w->rc;
    buf tmp;
    buf_init(&tmp);
    uint64_t filter_off = 0, filter_size = 0, props_off, props_size, index_off, index_size;
    struct table_props *p = &w->props;
    if (rc) goto fail;

    if (!block_builder_empty(&w->data) && (rc = table_flush_data(w)) != TIND_OK) goto fail;
    if (w->pending && (rc = table_add_index(w, NULL, 0)) != TIND_OK) goto fail;
    if (p->entries == 0) p->min_seq = 0;
    else if ((rc = buf_append(&p->largest, w->last.p, w->last.len)) != TIND_OK) goto fail;
    p->largest_tag = w->last_tag;
    p->created = (uint64_t)time(NULL);

    if (w->o.bloom_bits) {
        if ((rc = bloom_builder_finish(&w->bloom, &tmp)) != TIND_OK) goto fail;
        /* Filters are random bits: never worth compressing. */
        if ((rc = table_write_block(w, tmp.p, tmp.len, COMPRESS_NONE, &filter_off, &filter_size)) != TIND_OK)
            goto fail;
        p->filter_bytes = filter_size + BLOCK_TRAILER_SIZE;
        bloom_builder_free(&w->bloom);
    }

    /* The index is stored raw (it is read on every lookup that misses the
     * cache); its size is known before the properties that record it. */
    const uint8_t *ic;
    size_t in;
    if ((rc = block_builder_finish(&w->index, &ic, &in)) != TIND_OK) goto fail;
    p->index_bytes = in + BLOCK_TRAILER_SIZE;

    buf_clear(&tmp);
    if ((rc = table_encode_props(p, &tmp)) != TIND_OK) goto fail;
    if ((rc = table_write_block(w, tmp.p, tmp.len, COMPRESS_NONE, &props_off, &props_size)) != TIND_OK) goto fail;
    if ((rc = table_write_block(w, ic, in, COMPRESS_NONE, &index_off, &index_size)) != TIND_OK) goto fail;

    uint8_t ft[TABLE_FOOTER_SIZE];
    put_u64(ft + FOOTER_INDEX_OFF, index_off);
    put_u64(ft + FOOTER_INDEX_SIZE, index_size);
    put_u64(ft + FOOTER_FILTER_OFF, filter_off);
    put_u64(ft + FOOTER_FILTER_SIZE, filter_size);
    put_u64(ft + FOOTER_PROPS_OFF, props_off);
    put_u64(ft + FOOTER_PROPS_SIZE, props_size);
    put_u32(ft + FOOTER_VERSION, w->o.format_version);
    put_u32(ft + FOOTER_FLAGS, 0);
    put_u64(ft + FOOTER_CHECKSUM, checksum64(ft, FOOTER_CHECKSUM));
    put_u64(ft + FOOTER_MAGIC, TABLE_MAGIC);
    if ((rc = file_append(w->f, ft, sizeof ft)) != TIND_OK) goto fail;
    w->offset += sizeof ft;

    if ((rc = file_sync(w->f, 0)) != TIND_OK) goto fail;
    rc = file_close(w->f);
    w->f = NULL;
    if (rc) goto fail;
    /* "A finished table is durable" includes its name: sync the directory
     * the file was created in, before anyone can record the table. */
    if ((rc = table_sync_parent(w->path)) != TIND_OK) goto fail;

    if (size) *size = w->offset;
    if (props) {
        *props = *p; /* hands over smallest / largest */
        table_props_init(p);
    }
    buf_free(&tmp);
    table_writer_free(w);
    return TIND_OK;
fail:
    buf_free(&tmp);
    table_writer_abandon(w);
    return rc;
}

void table_writer_abandon(table_writer *w)
{
    if (!w) return;
    if (w->f) file_close(w->f);
    w->f = NULL;
    /* Keep the message of the failure that brought us here. */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", err_msg());
    file_unlink(w->path);
    err_set(TIND_OK, "%s", msg);
    table_writer_free(w);
}
