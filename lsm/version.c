/* Table metas, versions, and version edits with their byte encoding.
 *
 * An edit is the payload of one manifest record (src/util/record.h frames
 * it). Every field is a tag and a body; fields come in ascending tag order
 * (adds and deletes may repeat, every other tag appears at most once) and the
 * edit ends with the end tag:
 *
 *   edit     := field* end
 *   field    := snapshot | flushed | next_file | delete* | add* | add_created*
 *   snapshot := 1:varint32 magic:u64 format:varint32      (first field only)
 *   flushed  := 2:varint32 seq:varint64
 *   next_file:= 3:varint32 number:varint64
 *   delete   := 4:varint32 level:varint32 number:varint64
 *   add      := 5:varint32 level:varint32 number:varint64 size:varint64
 *               entries:varint64 tombstones:varint64 min_seq:varint64 max_seq:varint64
 *               smallest_len:varint32 smallest[smallest_len] smallest_tag:varint64
 *               largest_len:varint32 largest[largest_len] largest_tag:varint64
 *   add_created := 6:varint32 <the body of add> created:varint64
 *   end      := 0:varint32
 *
 * add_created is an add that also records when the table was written
 * (created, seconds since the epoch, never 0): a table whose created is 0
 * (unknown) is written as a plain add, one with a time as add_created, so
 * that manifests without times read as before and every table has one
 * encoding. The encoder writes the plain adds, then the add_created ones,
 * each in the edit's order.
 *
 * Every varint must be in its shortest form. The grammar is canonical: the
 * decoder accepts exactly the byte strings the encoder produces, so a
 * decoded edit re-encodes to the same bytes, and a truncated edit (no end
 * tag) is always caught. Bit flips inside a value are caught by the record's
 * checksums, not here. */
#include "lsm/version.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm/ikey.h"
#include "lsm/table.h"
#include "lsm/table_cache.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "src/util/file.h"

/* Frozen: a tag never changes meaning and a retired one is never reused.
 * A new tag takes the next number; readers that do not know it refuse the
 * record (TIND_CORRUPTION) rather than drop a change they cannot see. */
enum version_edit_tag {
    EDIT_TAG_END = 0,
    EDIT_TAG_SNAPSHOT = 1,
    EDIT_TAG_FLUSHED_SEQ = 2,
    EDIT_TAG_NEXT_FILE = 3,
    EDIT_TAG_DELETE_TABLE = 4,
    EDIT_TAG_ADD_TABLE = 5,
    EDIT_TAG_ADD_TABLE_CREATED = 6,
};

/* "TINDMANI" read as a little-endian u64; the body of a snapshot field, so
 * that a manifest's first record says what the file is. Frozen. */
#define MANIFEST_MAGIC UINT64_C(0x494e414d444e4954)
#define MANIFEST_FORMAT 1u

/* ---- table metas ------------------------------------------------------------ */

void table_file_name(char *out, uint64_t number)
{
    snprintf(out, 21, "%016llx%s", (unsigned long long)number, TABLE_SUFFIX);
}

int table_parse_name(const char *name, uint64_t *number)
{
    return file_parse_numbered(name, TABLE_SUFFIX, number);
}

int table_meta_set_props(struct table_meta *m, const struct table_props *p, uint64_t size)
{
    m->size = size;
    m->created = p->created;
    m->entries = p->entries;
    m->tombstones = p->tombstones;
    m->min_seq = p->min_seq;
    m->max_seq = p->max_seq;
    m->smallest_tag = p->smallest_tag;
    m->largest_tag = p->largest_tag;
    buf_clear(&m->smallest);
    buf_clear(&m->largest);
    int rc = buf_append(&m->smallest, p->smallest.p, p->smallest.len);
    if (rc == TIND_OK) rc = buf_append(&m->largest, p->largest.p, p->largest.len);
    return rc;
}

struct table_meta *table_meta_new(const char *dir, uint64_t number)
{
    struct table_meta *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    size_t dl = strlen(dir);
    m->path = malloc(dl + 1 + 20 + 1);
    if (!m->path) {
        free(m);
        return NULL;
    }
    memcpy(m->path, dir, dl);
    m->path[dl] = '/';
    table_file_name(m->path + dl + 1, number);
    m->number = number;
    buf_init(&m->smallest);
    buf_init(&m->largest);
    atomic_init(&m->refs, 1);
    atomic_init(&m->obsolete, TABLE_META_LIVE);
    atomic_init(&m->cache, NULL);
    atomic_init(&m->space, 0);
    return m;
}

/* Unlinks m's file and, with folder set, its folder when that is now empty
 * (the last table of a dropped keyspace). A failure cannot be reported from
 * here: ENOENT means the file is gone already, ENOTEMPTY that other tables of
 * the folder are still held (the last of them removes it), and any other
 * leaves a file or a folder that the next open removes (no version holds the
 * file; a dropped keyspace's folder has no OPTIONS). The caller's error
 * message is put back. */
static void table_meta_remove_file(const struct table_meta *m, int folder)
{
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", err_msg());
    (void)file_unlink(m->path);
    const char *slash = strrchr(m->path, '/');
    if (folder && slash && slash != m->path) {
        char dir[PATH_MAX];
        size_t n = (size_t)(slash - m->path);
        if (n < sizeof dir) {
            memcpy(dir, m->path, n);
            dir[n] = 0;
            (void)file_rmdir(dir);
        }
    }
    err_set(TIND_OK, "%s", saved);
}

void table_meta_ref(struct table_meta *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }

void table_meta_unref(struct table_meta *m)
{
    if (!m) return;
    /* acq_rel: the thread that frees sees every other holder's last use. */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
    /* No holder is left, and the table cache opens a table only for a
     * holder, so nothing can cache it again: its reader closes now (at once,
     * unless a cache handle is out this instant, which ends at its release). */
    table_cache *tc = atomic_load(&m->cache);
    if (tc) table_cache_evict(tc, atomic_load(&m->space), m->number);
    int obsolete = atomic_load(&m->obsolete);
    if (obsolete != TABLE_META_LIVE) table_meta_remove_file(m, obsolete == TABLE_META_DROPPED);
    buf_free(&m->smallest);
    buf_free(&m->largest);
    free(m->path);
    free(m);
}

/* ---- versions --------------------------------------------------------------- */

void version_ref(struct version *v) { atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed); }

void version_unref(struct version *v)
{
    if (!v) return;
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1) return;
    for (int l = 0; l < LSM_LEVELS; l++) {
        for (size_t i = 0; i < v->nfiles[l]; i++) table_meta_unref(v->files[l][i]);
        free(v->files[l]);
    }
    free(v);
}

void version_drop_tables(struct version *v)
{
    for (int l = 0; l < LSM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++) atomic_store(&v->files[l][i]->obsolete, TABLE_META_DROPPED);
}

/* ---- edits ------------------------------------------------------------------ */

void version_edit_init(struct version_edit *e) { memset(e, 0, sizeof *e); }

void version_edit_free(struct version_edit *e)
{
    for (size_t i = 0; i < e->nadds; i++) table_meta_unref(e->adds[i].meta);
    free(e->adds);
    free(e->dels);
    version_edit_init(e);
}

int version_edit_add(struct version_edit *e, unsigned level, struct table_meta *meta)
{
    if (level >= LSM_LEVELS || !meta)
        return err_set(TIND_INVALID, "version edit: add to level %u (of %d) with %s meta", level, LSM_LEVELS,
                       meta ? "a" : "no");
    if (e->nadds == e->capadds) {
        size_t cap = e->capadds ? e->capadds * 2 : 4;
        struct version_edit_add *a = realloc(e->adds, cap * sizeof *a);
        if (!a) return err_nomem();
        e->adds = a;
        e->capadds = cap;
    }
    table_meta_ref(meta);
    e->adds[e->nadds++] = (struct version_edit_add){.level = level, .meta = meta};
    return TIND_OK;
}

int version_edit_del(struct version_edit *e, unsigned level, uint64_t number)
{
    if (level >= LSM_LEVELS)
        return err_set(TIND_INVALID, "version edit: delete from level %u (of %d)", level, LSM_LEVELS);
    if (e->ndels == e->capdels) {
        size_t cap = e->capdels ? e->capdels * 2 : 4;
        struct version_edit_del *d = realloc(e->dels, cap * sizeof *d);
        if (!d) return err_nomem();
        e->dels = d;
        e->capdels = cap;
    }
    e->dels[e->ndels++] = (struct version_edit_del){.level = level, .number = number};
    return TIND_OK;
}

/* ---- encoding ----------------------------------------------------------------- */

static size_t edit_add_size(const struct table_meta *m, unsigned level)
{
    unsigned tag = m->created ? EDIT_TAG_ADD_TABLE_CREATED : EDIT_TAG_ADD_TABLE;
    return varint_len(tag) + varint_len(level) + varint_len(m->number) + varint_len(m->size) +
           varint_len(m->entries) + varint_len(m->tombstones) + varint_len(m->min_seq) +
           varint_len(m->max_seq) + varint_len(m->smallest.len) + m->smallest.len +
           varint_len(m->smallest_tag) + varint_len(m->largest.len) + m->largest.len +
           varint_len(m->largest_tag) + (m->created ? varint_len(m->created) : 0);
}

static uint8_t *edit_put_key(uint8_t *p, const buf *k)
{
    p = put_varint32(p, (uint32_t)k->len);
    if (k->len) memcpy(p, k->p, k->len);
    return p + k->len;
}

int version_edit_encode(const struct version_edit *e, buf *out)
{
    /* Sized exactly first: one reservation, then plain stores. */
    size_t n = varint_len(EDIT_TAG_END);
    if (e->snapshot) n += varint_len(EDIT_TAG_SNAPSHOT) + 8 + varint_len(MANIFEST_FORMAT);
    if (e->has_flushed_seq) n += varint_len(EDIT_TAG_FLUSHED_SEQ) + varint_len(e->flushed_seq);
    if (e->has_next_file) n += varint_len(EDIT_TAG_NEXT_FILE) + varint_len(e->next_file);
    if (e->snapshot && e->ndels)
        return err_set(TIND_INVALID, "version edit: a snapshot holds tables, it deletes none");
    for (size_t i = 0; i < e->ndels; i++) {
        const struct version_edit_del *d = &e->dels[i];
        if (d->level >= LSM_LEVELS)
            return err_set(TIND_INVALID, "version edit: delete from level %u (of %d)", d->level, LSM_LEVELS);
        n += varint_len(EDIT_TAG_DELETE_TABLE) + varint_len(d->level) + varint_len(d->number);
    }
    for (size_t i = 0; i < e->nadds; i++) {
        const struct version_edit_add *a = &e->adds[i];
        if (a->level >= LSM_LEVELS || !a->meta)
            return err_set(TIND_INVALID, "version edit: add to level %u (of %d)", a->level, LSM_LEVELS);
        if (a->meta->smallest.len > UINT32_MAX || a->meta->largest.len > UINT32_MAX)
            return err_set(TIND_INVALID, "version edit: table %llu has a key too long to encode",
                           (unsigned long long)a->meta->number);
        n += edit_add_size(a->meta, a->level);
    }
    int rc = buf_reserve(out, n);
    if (rc) return rc;
    uint8_t *p = out->p + out->len, *start = p;
    if (e->snapshot) {
        p = put_varint32(p, EDIT_TAG_SNAPSHOT);
        put_u64(p, MANIFEST_MAGIC);
        p = put_varint32(p + 8, MANIFEST_FORMAT);
    }
    if (e->has_flushed_seq) p = put_varint64(put_varint32(p, EDIT_TAG_FLUSHED_SEQ), e->flushed_seq);
    if (e->has_next_file) p = put_varint64(put_varint32(p, EDIT_TAG_NEXT_FILE), e->next_file);
    for (size_t i = 0; i < e->ndels; i++) {
        p = put_varint32(p, EDIT_TAG_DELETE_TABLE);
        p = put_varint32(p, e->dels[i].level);
        p = put_varint64(p, e->dels[i].number);
    }
    /* Ascending tags: the plain adds, then those that carry a time. */
    for (int timed = 0; timed < 2; timed++) {
        for (size_t i = 0; i < e->nadds; i++) {
            const struct table_meta *m = e->adds[i].meta;
            if ((m->created != 0) != timed) continue;
            p = put_varint32(p, timed ? EDIT_TAG_ADD_TABLE_CREATED : EDIT_TAG_ADD_TABLE);
            p = put_varint32(p, e->adds[i].level);
            p = put_varint64(p, m->number);
            p = put_varint64(p, m->size);
            p = put_varint64(p, m->entries);
            p = put_varint64(p, m->tombstones);
            p = put_varint64(p, m->min_seq);
            p = put_varint64(p, m->max_seq);
            p = edit_put_key(p, &m->smallest);
            p = put_varint64(p, m->smallest_tag);
            p = edit_put_key(p, &m->largest);
            p = put_varint64(p, m->largest_tag);
            if (timed) p = put_varint64(p, m->created);
        }
    }
    p = put_varint32(p, EDIT_TAG_END);
    out->len += (size_t)(p - start);
    return TIND_OK;
}

/* ---- decoding ----------------------------------------------------------------- */

/* A decoding cursor: [p, end) is what is left; base is where the payload
 * starts, and at is the payload's offset in the file, for messages. */
struct edit_reader {
    const uint8_t *p, *end, *base;
    const char *path;
    uint64_t at;
};

/* A varint in its shortest form; NULL when truncated, too large or over-long. */
static int edit_get_varint64(struct edit_reader *r, uint64_t *v)
{
    const uint8_t *q = get_varint64(r->p, r->end, v);
    if (!q || (size_t)(q - r->p) != varint_len(*v)) return 0;
    r->p = q;
    return 1;
}

static int edit_get_varint32(struct edit_reader *r, uint32_t *v)
{
    uint64_t x;
    const uint8_t *p = r->p;
    if (!edit_get_varint64(r, &x) || x > UINT32_MAX) {
        r->p = p;
        return 0;
    }
    *v = (uint32_t)x;
    return 1;
}

static int edit_get_key(struct edit_reader *r, buf *k)
{
    uint32_t n;
    if (!edit_get_varint32(r, &n) || n > (size_t)(r->end - r->p)) return 0;
    if (buf_append(k, r->p, n) != TIND_OK) return -1;
    r->p += n;
    return 1;
}

/* Records "manifest <path> offset <N>: <what>" for damage at field_start. */
static int edit_corrupt(const struct edit_reader *r, const uint8_t *field_start, const char *what)
{
    return err_set(TIND_CORRUPTION, "manifest %s offset %llu: %s", r->path,
                   (unsigned long long)(r->at + (uint64_t)(field_start - r->base)), what);
}

/* The body of an add field (with its created time when timed); the meta is
 * made under dir. */
static int edit_get_add(struct edit_reader *r, const uint8_t *field, const char *dir, int timed,
                        struct version_edit *e)
{
    uint32_t level;
    uint64_t number;
    if (!edit_get_varint32(r, &level) || !edit_get_varint64(r, &number))
        return edit_corrupt(r, field, "truncated or malformed table addition");
    if (level >= LSM_LEVELS) return edit_corrupt(r, field, "table added to a level past the last");
    struct table_meta *m = table_meta_new(dir, number);
    if (!m) return err_nomem();
    int rc = TIND_OK, k;
    if (!edit_get_varint64(r, &m->size) || !edit_get_varint64(r, &m->entries) ||
        !edit_get_varint64(r, &m->tombstones) || !edit_get_varint64(r, &m->min_seq) ||
        !edit_get_varint64(r, &m->max_seq)) {
        rc = edit_corrupt(r, field, "truncated or malformed table addition");
        goto done;
    }
    if ((k = edit_get_key(r, &m->smallest)) <= 0 || !edit_get_varint64(r, &m->smallest_tag) ||
        (k = edit_get_key(r, &m->largest)) <= 0 || !edit_get_varint64(r, &m->largest_tag)) {
        rc = k < 0 ? err_nomem() : edit_corrupt(r, field, "truncated or malformed table key range");
        goto done;
    }
    if (timed && (!edit_get_varint64(r, &m->created) || m->created == 0)) {
        /* 0 is written as a plain add: accepting it here would give one
         * table two encodings. */
        rc = edit_corrupt(r, field, "truncated, malformed or zero table creation time");
        goto done;
    }
    rc = version_edit_add(e, level, m);
done:
    table_meta_unref(m); /* the edit holds its own reference */
    return rc;
}

/* Initializes *e and fills it from the payload; on failure *e is left empty. */
int version_edit_decode(const uint8_t *p, size_t n, const char *dir, const char *path, uint64_t offset,
                        struct version_edit *e)
{
    version_edit_init(e);
    struct edit_reader r = {.p = p, .end = p + n, .base = p, .path = path, .at = offset};
    uint32_t last = 0; /* the last tag seen; 0 before any */
    int rc = TIND_OK;
    for (;;) {
        const uint8_t *field = r.p;
        uint32_t tag;
        if (!edit_get_varint32(&r, &tag)) {
            rc = edit_corrupt(&r, field, r.p == r.end ? "edit ends without its end tag" : "malformed field tag");
            goto fail;
        }
        if (tag == EDIT_TAG_END) break;
        /* Ascending order, single-valued tags once: the canonical form. */
        if (tag < last || (tag == last && tag != EDIT_TAG_DELETE_TABLE && tag != EDIT_TAG_ADD_TABLE &&
                            tag != EDIT_TAG_ADD_TABLE_CREATED)) {
            rc = edit_corrupt(&r, field, "field out of order or repeated");
            goto fail;
        }
        last = tag;
        switch (tag) {
        case EDIT_TAG_SNAPSHOT: {
            uint32_t format;
            if (r.end - r.p < 8) {
                rc = edit_corrupt(&r, field, "truncated snapshot marker");
                goto fail;
            }
            uint64_t magic = get_u64(r.p);
            r.p += 8;
            if (magic != MANIFEST_MAGIC) {
                rc = edit_corrupt(&r, field, "bad magic number in the snapshot marker");
                goto fail;
            }
            if (!edit_get_varint32(&r, &format) || format != MANIFEST_FORMAT) {
                rc = edit_corrupt(&r, field, "unsupported manifest format version");
                goto fail;
            }
            e->snapshot = 1;
            break;
        }
        case EDIT_TAG_FLUSHED_SEQ:
            if (!edit_get_varint64(&r, &e->flushed_seq)) {
                rc = edit_corrupt(&r, field, "truncated or malformed flushed sequence number");
                goto fail;
            }
            e->has_flushed_seq = 1;
            break;
        case EDIT_TAG_NEXT_FILE:
            if (!edit_get_varint64(&r, &e->next_file)) {
                rc = edit_corrupt(&r, field, "truncated or malformed next file number");
                goto fail;
            }
            e->has_next_file = 1;
            break;
        case EDIT_TAG_DELETE_TABLE: {
            uint32_t level;
            uint64_t number;
            if (!edit_get_varint32(&r, &level) || !edit_get_varint64(&r, &number)) {
                rc = edit_corrupt(&r, field, "truncated or malformed table deletion");
                goto fail;
            }
            if (level >= LSM_LEVELS) {
                rc = edit_corrupt(&r, field, "table deleted from a level past the last");
                goto fail;
            }
            if (e->snapshot) {
                rc = edit_corrupt(&r, field, "a snapshot deletes a table");
                goto fail;
            }
            if ((rc = version_edit_del(e, level, number)) != TIND_OK) goto fail;
            break;
        }
        case EDIT_TAG_ADD_TABLE:
        case EDIT_TAG_ADD_TABLE_CREATED:
            if ((rc = edit_get_add(&r, field, dir, tag == EDIT_TAG_ADD_TABLE_CREATED, e)) != TIND_OK) goto fail;
            break;
        default:
            rc = edit_corrupt(&r, field, "unknown field tag");
            goto fail;
        }
    }
    if (r.p != r.end) {
        rc = edit_corrupt(&r, r.p, "bytes after the end of the edit");
        goto fail;
    }
    return TIND_OK;
fail:
    version_edit_free(e);
    return rc;
}
