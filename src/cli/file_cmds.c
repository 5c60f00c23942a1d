/* Commands on single files, read with the library's own readers and no lock:
 * table, journal, manifest. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "journal/journal.h"
#include "journal/payload.h"
#include "lsm/block.h"
#include "lsm/compress.h"
#include "lsm/ikey.h"
#include "lsm/table.h"
#include "lsm/table_format.h"
#include "lsm/version.h"
#include "src/cli/cli.h"
#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "src/util/record.h"

static const char *kind_name(unsigned kind)
{
    return kind == KIND_PUT ? "put" : kind == KIND_DELETE ? "delete" : "unknown";
}

static const char *compress_name(unsigned c)
{
    return c == COMPRESS_NONE ? "none" : c == COMPRESS_LZ4 ? "lz4" : c == COMPRESS_ZSTD ? "zstd" : "unknown";
}

/* Reads n bytes at off of f into a malloc'd buffer. */
static uint8_t *read_at(FILE *f, uint64_t off, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return NULL;
    if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(b, 1, n, f) != n) {
        free(b);
        return NULL;
    }
    return b;
}

/* ---- table ------------------------------------------------------------------------------- */

struct footer {
    uint64_t index_off, index_size, filter_off, filter_size, props_off, props_size;
    uint32_t version, flags;
    uint64_t checksum, magic;
};

/* What `table` prints before the block list: the file, its footer, its
 * properties and the shape of its bloom filter. */
struct table_summary {
    const char *path;
    uint64_t size;
    struct footer ft;
    const struct table_props *p;
    uint64_t filter_bits;
    unsigned probes;
    double bits_per_key;
};

/* Decodes the footer at the end of f. 0, or an exit status with the error printed. */
static int table_read_footer(FILE *f, const char *path, uint64_t size, struct footer *ft)
{
    uint8_t *fb = read_at(f, size - TABLE_FOOTER_SIZE, TABLE_FOOTER_SIZE);
    if (!fb) return cli_data_error("%s: cannot read the footer", path);
    *ft = (struct footer){get_u64(fb + FOOTER_INDEX_OFF), get_u64(fb + FOOTER_INDEX_SIZE), get_u64(fb + FOOTER_FILTER_OFF),
                          get_u64(fb + FOOTER_FILTER_SIZE), get_u64(fb + FOOTER_PROPS_OFF), get_u64(fb + FOOTER_PROPS_SIZE),
                          get_u32(fb + FOOTER_VERSION), get_u32(fb + FOOTER_FLAGS), get_u64(fb + FOOTER_CHECKSUM),
                          get_u64(fb + FOOTER_MAGIC)};
    free(fb);
    return 0;
}

/* The filter's bits and probe count (its last byte; 0 when unreadable). */
static void table_read_filter_shape(FILE *f, struct table_summary *s)
{
    s->filter_bits = 0;
    s->probes = 0;
    if (s->ft.filter_size) {
        uint8_t *pb = read_at(f, s->ft.filter_off + s->ft.filter_size - 1, 1);
        if (pb) s->probes = pb[0];
        free(pb);
        s->filter_bits = (s->ft.filter_size - 1) * 8;
    }
    s->bits_per_key = s->p->entries ? (double)s->filter_bits / (double)s->p->entries : 0.0;
}

/* Opens the JSON document and writes everything up to the "blocks" array,
 * which it leaves open. */
static void table_print_summary_json(const struct table_summary *s, int hex)
{
    const struct footer *ft = &s->ft;
    const struct table_props *p = s->p;
    json_begin_object(NULL);
    json_str("file", s->path);
    json_u64("size", s->size);
    json_begin_object("footer");
    json_u64("index_offset", ft->index_off);
    json_u64("index_size", ft->index_size);
    json_u64("filter_offset", ft->filter_off);
    json_u64("filter_size", ft->filter_size);
    json_u64("properties_offset", ft->props_off);
    json_u64("properties_size", ft->props_size);
    json_u64("format_version", ft->version);
    json_u64("flags", ft->flags);
    char sum[24];
    snprintf(sum, sizeof sum, "0x%016" PRIx64, ft->checksum);
    json_str("checksum", sum);
    json_end_object();
    json_begin_object("properties");
    json_u64("entries", p->entries);
    json_u64("tombstones", p->tombstones);
    json_u64("data_blocks", p->data_blocks);
    json_u64("raw_key_bytes", p->raw_key_bytes);
    json_u64("raw_value_bytes", p->raw_value_bytes);
    json_u64("data_bytes", p->data_bytes);
    json_u64("index_bytes", p->index_bytes);
    json_u64("filter_bytes", p->filter_bytes);
    json_u64("min_seq", p->min_seq);
    json_u64("max_seq", p->max_seq);
    json_str("compression", compress_name(p->compression));
    json_u64("bloom_bits", p->bloom_bits);
    json_u64("created", p->created);
    json_bytes("smallest", p->smallest.p, p->smallest.len, hex);
    json_u64("smallest_seq", tag_seq(p->smallest_tag));
    json_bytes("largest", p->largest.p, p->largest.len, hex);
    json_u64("largest_seq", tag_seq(p->largest_tag));
    json_end_object();
    json_begin_object("filter");
    json_u64("bytes", ft->filter_size);
    json_u64("bits", s->filter_bits);
    json_u64("probes", s->probes);
    json_str("layout", ft->version >= 2 ? "blocked" : "plain");
    json_double("bits_per_key", s->bits_per_key);
    json_end_object();
    json_begin_array("blocks");
}

/* The text form, up to and including the block list's column heads. */
static void table_print_summary_text(const struct table_summary *s, int hex)
{
    const struct footer *ft = &s->ft;
    const struct table_props *p = s->p;
    printf("table         %s (%" PRIu64 " bytes)\n", s->path, s->size);
    printf("footer        format %u, flags %u, checksum 0x%016" PRIx64 "\n", ft->version, ft->flags, ft->checksum);
    printf("              index at %" PRIu64 " (%" PRIu64 " bytes), filter at %" PRIu64 " (%" PRIu64
           " bytes), properties at %" PRIu64 " (%" PRIu64 " bytes)\n",
           ft->index_off, ft->index_size, ft->filter_off, ft->filter_size, ft->props_off, ft->props_size);
    printf("entries       %" PRIu64 " (%" PRIu64 " tombstones) in %" PRIu64 " data blocks\n", p->entries,
           p->tombstones, p->data_blocks);
    printf("sequence      %" PRIu64 " .. %" PRIu64 "\n", p->min_seq, p->max_seq);
    printf("keys          ");
    cli_print_bytes(stdout, p->smallest.p, p->smallest.len, hex);
    printf(" .. ");
    cli_print_bytes(stdout, p->largest.p, p->largest.len, hex);
    printf("\nraw bytes     %" PRIu64 " keys, %" PRIu64 " values; %" PRIu64 " data bytes stored (%s)\n",
           p->raw_key_bytes, p->raw_value_bytes, p->data_bytes, compress_name(p->compression));
    printf("index         %" PRIu64 " bytes\n", p->index_bytes);
    if (ft->filter_size)
        printf("bloom filter  %" PRIu64 " bytes, %" PRIu64 " bits, %u probes, %.2f bits per key, %s\n",
               ft->filter_size, s->filter_bits, s->probes, s->bits_per_key,
               ft->version >= 2 ? "blocked (64-byte lines)" : "plain");
    else printf("bloom filter  none\n");
    printf("created       %" PRIu64 "\n", p->created);
    printf("blocks        offset       stored          raw  compression  ratio  index key\n");
}

/* Running totals of the block list. */
struct table_block_totals {
    uint64_t blocks, stored, raw;
};

/* Reads, checks and prints the data block an index entry points at (its
 * value the block's handle) and adds it to *tot. 0, or an exit status with
 * the error printed. */
static int table_print_block(FILE *f, const struct cli_args *a, const struct table_summary *s, const iiter *entry,
                             struct table_block_totals *tot)
{
    uint64_t off, bsize;
    const uint8_t *v = entry->val, *end = v + entry->vlen;
    if (!(v = get_varint64(v, end, &off)) || !get_varint64(v, end, &bsize))
        return cli_data_error("%s offset %" PRIu64 ": a malformed index entry", s->path, s->ft.index_off);
    uint8_t *db = read_at(f, off, (size_t)bsize + BLOCK_TRAILER_SIZE);
    if (!db) return cli_data_error("%s offset %" PRIu64 ": cannot read the block", s->path, off);
    unsigned comp = db[bsize];
    uint64_t stored_sum = get_u64(db + bsize + 1), sum = checksum64(db, (size_t)bsize + 1);
    if (stored_sum != sum) {
        free(db);
        return cli_data_error("table %s offset %" PRIu64 ": data block checksum mismatch (stored 0x%016" PRIx64
                              ", computed 0x%016" PRIx64 ") (TIND_CORRUPTION)",
                              s->path, off, stored_sum, sum);
    }
    size_t raw = (size_t)bsize;
    if (comp != COMPRESS_NONE && compress_raw_size(db, (size_t)bsize, &raw) != TIND_OK) raw = 0;
    free(db);
    tot->blocks++;
    tot->stored += bsize;
    tot->raw += raw;
    double ratio = bsize ? (double)raw / (double)bsize : 0.0;
    if (a->json) {
        json_begin_object(NULL);
        json_u64("offset", off);
        json_u64("stored", bsize);
        json_u64("raw", raw);
        json_str("compression", compress_name(comp));
        json_double("ratio", ratio);
        json_bytes("index_key", entry->key, entry->klen, a->hex);
        json_end_object();
    } else {
        printf("  %14" PRIu64 " %12" PRIu64 " %12zu  %-11s %6.2f  ", off, bsize, raw, compress_name(comp), ratio);
        cli_print_bytes(stdout, entry->key, entry->klen, a->hex);
        putchar('\n');
    }
    return 0;
}

/* Walks the index (one entry per data block), printing each block, then
 * the totals (closing the JSON "blocks" array). 0, or an exit status with
 * the error printed. */
static int table_print_blocks(FILE *f, const struct cli_args *a, const struct table_summary *s)
{
    uint8_t *ib = read_at(f, s->ft.index_off, (size_t)s->ft.index_size);
    block blk;
    if (!ib || block_init(&blk, ib, (size_t)s->ft.index_size) != TIND_OK) {
        free(ib);
        return cli_data_error("%s offset %" PRIu64 ": cannot read the index block", s->path, s->ft.index_off);
    }
    block_iter bi;
    block_iter_init(&bi, &blk);
    struct table_block_totals tot = {0, 0, 0};
    int rc = 0, lrc;
    for (block_iter_seek_first(&bi); bi.base.valid; block_iter_next(&bi))
        if ((rc = table_print_block(f, a, s, &bi.base, &tot)) != 0) break;
    if (!rc && (lrc = iiter_status(&bi.base)) != TIND_OK) rc = cli_lib_error(lrc, "index");
    block_iter_release(&bi);
    free(ib);
    if (rc) return rc;
    double ratio = tot.stored ? (double)tot.raw / (double)tot.stored : 0.0;
    if (a->json) {
        json_end_array();
        json_u64("block_count", tot.blocks);
        json_u64("block_stored_bytes", tot.stored);
        json_u64("block_raw_bytes", tot.raw);
        json_double("compression_ratio", ratio);
    } else {
        printf("total         %" PRIu64 " blocks, %" PRIu64 " bytes stored, %" PRIu64 " raw, ratio %.2f\n", tot.blocks,
               tot.stored, tot.raw, ratio);
    }
    return 0;
}

/* --entries: every entry of the table in order, tombstones included. 0, or
 * an exit status with the error printed. */
static int table_print_entries(table *t, const struct cli_args *a)
{
    iiter *it = table_iter(t);
    if (!it) return cli_data_error("out of memory");
    if (a->json) json_begin_array("entries");
    else printf("entries\n");
    for (iiter_seek_first(it); it->valid; iiter_next(it)) {
        if (a->json) {
            json_begin_object(NULL);
            json_bytes("key", it->key, it->klen, a->hex);
            json_u64("seq", tag_seq(it->tag));
            json_str("kind", kind_name(tag_kind(it->tag)));
            if (tag_kind(it->tag) == KIND_PUT) json_bytes("value", it->val, it->vlen, a->hex);
            json_end_object();
        } else {
            cli_print_bytes(stdout, it->key, it->klen, a->hex);
            printf("\t%" PRIu64 "\t%s", tag_seq(it->tag), kind_name(tag_kind(it->tag)));
            if (tag_kind(it->tag) == KIND_PUT) {
                putchar('\t');
                cli_print_bytes(stdout, it->val, it->vlen, a->hex);
            }
            putchar('\n');
        }
    }
    int lrc = iiter_status(it);
    iiter_destroy(it);
    if (a->json) json_end_array();
    return lrc ? cli_lib_error(lrc, "entries") : 0;
}

int cmd_table(const struct cli_args *a)
{
    struct table_summary s = {.path = a->pos[0]};
    struct stat st;
    if (stat(s.path, &st) != 0) return cli_data_error("%s: %s", s.path, strerror(errno));
    s.size = (uint64_t)st.st_size;
    table *t;
    int lrc = table_open(s.path, s.size, NULL, &t);
    if (lrc) return cli_lib_error(lrc, "table");
    FILE *f = fopen(s.path, "rb");
    if (!f) {
        table_unref(t);
        return cli_data_error("%s: %s", s.path, strerror(errno));
    }
    int rc = table_read_footer(f, s.path, s.size, &s.ft);
    if (rc) goto out;
    s.p = table_get_props(t);
    table_read_filter_shape(f, &s);
    if (a->json) table_print_summary_json(&s, a->hex);
    else table_print_summary_text(&s, a->hex);
    if ((rc = table_print_blocks(f, a, &s)) != 0) goto out;
    if (a->entries) rc = table_print_entries(t, a);
    if (a->json && !rc) {
        json_end_object();
        json_finish();
    }
out:
    fclose(f);
    table_unref(t);
    return rc;
}

/* ---- journal -------------------------------------------------------------------------------- */

/* What one journal record holds, as far as the listing shows it. */
struct journal_rec {
    uint64_t off, sum, seq;
    size_t len;
    unsigned type;
    uint32_t count, drop_ks;
    uint64_t ops;     /* count when the batch's header reads, else 0 */
    uint32_t kss[16]; /* the first 16 keyspaces a batch writes, in order */
    size_t nks, more; /* how many of them; how many more there were */
    int bad_payload;
};

/* Decodes the payload p[0..len) at off into *rec. */
static void journal_rec_read(const uint8_t *p, size_t len, uint64_t off, struct journal_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->off = off;
    rec->len = len;
    rec->sum = checksum64(p, len);
    if (payload_type(p, len, &rec->type) != TIND_OK) rec->type = 0;
    struct payload_reader pr;
    struct payload_op op;
    if (rec->type == JPAYLOAD_BATCH && payload_batch_open(p, len, &rec->seq, &rec->count, &pr) == TIND_OK) {
        int prc;
        while ((prc = payload_batch_next(&pr, &op)) == TIND_OK) {
            int seen = 0;
            for (size_t i = 0; i < rec->nks && !seen; i++) seen = rec->kss[i] == op.keyspace;
            if (!seen) {
                if (rec->nks < 16) rec->kss[rec->nks++] = op.keyspace;
                else rec->more++;
            }
        }
        rec->bad_payload = prc != TIND_NOT_FOUND;
        rec->ops = rec->count;
    } else if (rec->type == JPAYLOAD_DROP_KEYSPACE) {
        rec->bad_payload = payload_drop_decode(p, len, &rec->drop_ks) != TIND_OK;
    } else {
        rec->bad_payload = 1;
    }
}

/* Prints rec's line (text) or opens its object (JSON; the caller closes it). */
static void journal_print_rec(const struct cli_args *a, const struct journal_rec *rec)
{
    const char *tname = rec->type == JPAYLOAD_BATCH           ? "batch"
                        : rec->type == JPAYLOAD_DROP_KEYSPACE ? "drop"
                                                               : "unknown";
    uint64_t last = rec->count ? rec->seq + rec->count - 1 : rec->seq;
    if (a->json) {
        json_begin_object(NULL);
        json_u64("offset", rec->off);
        json_u64("bytes", rec->len);
        char sums[24];
        snprintf(sums, sizeof sums, "0x%016" PRIx64, rec->sum);
        json_str("checksum", sums);
        json_str("type", tname);
        if (rec->type == JPAYLOAD_BATCH) {
            json_u64("first_seq", rec->seq);
            json_u64("last_seq", last);
            json_u64("ops", rec->count);
            json_begin_array("keyspaces");
            for (size_t i = 0; i < rec->nks; i++) json_u64(NULL, rec->kss[i]);
            json_end_array();
        } else if (rec->type == JPAYLOAD_DROP_KEYSPACE) {
            json_u64("keyspace", rec->drop_ks);
        }
        if (rec->bad_payload) json_bool("malformed", 1);
        return;
    }
    printf("  %14" PRIu64 " %10zu  0x%016" PRIx64 "  %-6s", rec->off, rec->len, rec->sum, tname);
    if (rec->type == JPAYLOAD_BATCH) {
        char range[48];
        snprintf(range, sizeof range, "%" PRIu64 "..%" PRIu64, rec->seq, last);
        printf(" %-17s %4u  ", range, rec->count);
        for (size_t i = 0; i < rec->nks; i++) printf("%s%u", i ? "," : "", rec->kss[i]);
        if (rec->more) printf(",+%zu", rec->more);
    } else if (rec->type == JPAYLOAD_DROP_KEYSPACE) {
        printf(" %-17s %4s  %u", "-", "-", rec->drop_ks);
    }
    if (rec->bad_payload) printf("  (malformed payload)");
    putchar('\n');
}

/* --entries: every operation of the batch payload p[0..len). */
static void journal_print_entries(const struct cli_args *a, const uint8_t *p, size_t len)
{
    uint64_t s;
    uint32_t count;
    struct payload_reader pr;
    struct payload_op op;
    if (payload_batch_open(p, len, &s, &count, &pr) != TIND_OK) return;
    if (a->json) json_begin_array("entries");
    while (payload_batch_next(&pr, &op) == TIND_OK) {
        if (a->json) {
            json_begin_object(NULL);
            json_u64("seq", s);
            json_str("kind", kind_name(op.kind));
            json_u64("keyspace", op.keyspace);
            json_bytes("key", op.key, op.klen, a->hex);
            if (op.kind == KIND_PUT) json_bytes("value", op.val, op.vlen, a->hex);
            json_end_object();
        } else {
            printf("      %" PRIu64 "\t%s\t%u\t", s, kind_name(op.kind), op.keyspace);
            cli_print_bytes(stdout, op.key, op.klen, a->hex);
            if (op.kind == KIND_PUT) {
                putchar('\t');
                cli_print_bytes(stdout, op.val, op.vlen, a->hex);
            }
            putchar('\n');
        }
        s++;
    }
    if (a->json) json_end_array();
}

/* A record that does not read (status lrc): says where, and whether it is a
 * torn tail; closes the JSON document. Returns the exit status. */
static int journal_report_bad(const struct cli_args *a, journal_reader *r, int lrc)
{
    char msg[600];
    snprintf(msg, sizeof msg, "%s", tind_last_error());
    uint64_t bad = journal_reader_offset(r);
    int v = journal_reader_valid_after(r, bad);
    if (a->json) {
        json_end_array();
        json_str("error", msg);
        json_u64("error_offset", bad);
        json_bool("torn_tail", v == 0);
        json_end_object();
        json_finish();
    }
    return cli_data_error("%s%s (%s)", msg,
                          v == 0 ? "; nothing valid follows: a torn tail, which recovery cuts off if this is "
                                   "the newest journal"
                                 : "",
                          cli_code_name(lrc));
}

static void journal_print_header(const struct cli_args *a, const char *path, journal_reader *r)
{
    const struct journal_header *h = journal_reader_header(r);
    if (a->json) {
        json_begin_object(NULL);
        json_str("file", path);
        json_u64("size", journal_reader_file_size(r));
        json_u64("number", h->number);
        json_u64("base_seq", h->base_seq);
        json_begin_array("records");
    } else {
        printf("journal       %s (%" PRIu64 " bytes)\n", path, journal_reader_file_size(r));
        printf("header        number %" PRIu64 ", base sequence %" PRIu64 "\n", h->number, h->base_seq);
        printf("records       offset      bytes  checksum            type   sequence          ops  keyspaces\n");
    }
}

static void journal_print_total(const struct cli_args *a, uint64_t records, uint64_t ops, uint64_t bytes)
{
    if (a->json) {
        json_end_array();
        json_u64("record_count", records);
        json_u64("ops", ops);
        json_u64("payload_bytes", bytes);
        json_end_object();
        json_finish();
    } else {
        printf("total         %" PRIu64 " records, %" PRIu64 " ops, %" PRIu64 " payload bytes\n", records, ops, bytes);
    }
}

int cmd_journal(const struct cli_args *a)
{
    const char *path = a->pos[0];
    journal_reader *r;
    int lrc = journal_reader_open(path, &r);
    if (lrc) return cli_lib_error(lrc, "journal");
    journal_print_header(a, path, r);
    int rc = 0;
    uint64_t records = 0, ops_total = 0, bytes_total = 0;
    for (;;) {
        const uint8_t *p;
        size_t len;
        uint64_t off;
        lrc = journal_reader_next(r, &p, &len, &off);
        if (lrc == TIND_NOT_FOUND) break;
        if (lrc) {
            rc = journal_report_bad(a, r, lrc);
            break;
        }
        struct journal_rec rec;
        journal_rec_read(p, len, off, &rec);
        records++;
        bytes_total += len;
        ops_total += rec.ops;
        journal_print_rec(a, &rec);
        if (a->entries && rec.type == JPAYLOAD_BATCH) journal_print_entries(a, p, len);
        if (a->json) json_end_object();
        if (rec.bad_payload && !rc) rc = cli_data_error("%s offset %" PRIu64 ": a malformed payload", path, off);
    }
    if (lrc == TIND_NOT_FOUND) journal_print_total(a, records, ops_total, bytes_total);
    journal_reader_close(r);
    return rc;
}

/* ---- manifest -------------------------------------------------------------------------------- */

/* The folder of keyspace `name` (or number) in dbdir: reads each OPTIONS
 * file's name (src/README.md: name_len:u8 at offset 16, the name at 17). */
static int find_keyspace_dir(const char *dbdir, const char *name, char *out, size_t cap)
{
    char ksdir[PATH_MAX];
    snprintf(ksdir, sizeof ksdir, "%s/keyspaces", dbdir);
    DIR *d = opendir(ksdir);
    if (!d) return cli_data_error("%s: %s (is %s a tind database?)", ksdir, strerror(errno), dbdir);
    struct dirent *de;
    int found = 0;
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s/OPTIONS", ksdir, de->d_name) >= (int)sizeof p) continue;
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        uint8_t b[17 + 255];
        size_t n = fread(b, 1, sizeof b, f);
        fclose(f);
        if (!strcmp(de->d_name, name) || (n >= 17 && b[16] == strlen(name) && n >= 17u + b[16] &&
                                          !memcmp(b + 17, name, b[16]))) {
            found = snprintf(out, cap, "%s/%s", ksdir, de->d_name) < (int)cap;
        }
    }
    closedir(d);
    if (!found) return cli_data_error("no keyspace named %s in %s (TIND_NOT_FOUND)", name, dbdir);
    return 0;
}

static void print_meta(const struct table_meta *m, unsigned level, int json, int hex)
{
    if (json) {
        json_begin_object(NULL);
        json_u64("level", level);
        json_u64("number", m->number);
        json_u64("size", m->size);
        json_u64("entries", m->entries);
        json_u64("tombstones", m->tombstones);
        json_u64("min_seq", m->min_seq);
        json_u64("max_seq", m->max_seq);
        json_bytes("smallest", m->smallest.p, m->smallest.len, hex);
        json_bytes("largest", m->largest.p, m->largest.len, hex);
        json_u64("created", m->created);
        json_end_object();
        return;
    }
    printf("L%u %016" PRIx64 ".tbl %10" PRIu64 " bytes %8" PRIu64 " entries (%" PRIu64 " tombstones) seq %" PRIu64
           "..%" PRIu64 "  ",
           level, m->number, m->size, m->entries, m->tombstones, m->min_seq, m->max_seq);
    cli_print_bytes(stdout, m->smallest.p, m->smallest.len, hex);
    printf(" .. ");
    cli_print_bytes(stdout, m->largest.p, m->largest.len, hex);
    putchar('\n');
}

/* Reads the whole file at path into *d (malloc'd), *n bytes. Returns the
 * exit status. */
static int manifest_slurp(const char *path, uint8_t **d, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cli_data_error("%s: %s", path, strerror(errno));
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *nb = realloc(data, cap);
            if (!nb) {
                free(data);
                fclose(f);
                return cli_data_error("out of memory");
            }
            data = nb;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    fclose(f);
    *d = data;
    *n = len;
    return 0;
}

/* One decoded record at off, plen payload bytes. */
static void manifest_print_edit(const struct cli_args *a, size_t off, uint64_t plen, const struct version_edit *e)
{
    if (a->json) {
        json_begin_object(NULL);
        json_u64("offset", off);
        json_u64("bytes", plen);
        json_str("type", e->snapshot ? "snapshot" : "edit");
        if (e->has_flushed_seq) json_u64("flushed_seq", e->flushed_seq);
        if (e->has_next_file) json_u64("next_file", e->next_file);
        json_begin_array("adds");
        for (size_t i = 0; i < e->nadds; i++) print_meta(e->adds[i].meta, e->adds[i].level, 1, a->hex);
        json_end_array();
        json_begin_array("deletes");
        for (size_t i = 0; i < e->ndels; i++) {
            json_begin_object(NULL);
            json_u64("level", e->dels[i].level);
            json_u64("number", e->dels[i].number);
            json_end_object();
        }
        json_end_array();
        json_end_object();
        return;
    }
    printf("record at %zu: %s (%" PRIu64 " bytes)", off, e->snapshot ? "snapshot" : "edit", plen);
    if (e->has_flushed_seq) printf(", flushed up to %" PRIu64, e->flushed_seq);
    if (e->has_next_file) printf(", next file %" PRIu64, e->next_file);
    putchar('\n');
    for (size_t i = 0; i < e->nadds; i++) {
        printf("  + ");
        print_meta(e->adds[i].meta, e->adds[i].level, 0, a->hex);
    }
    for (size_t i = 0; i < e->ndels; i++) printf("  - L%u %016" PRIx64 ".tbl\n", e->dels[i].level, e->dels[i].number);
}

/* Every record of the manifest d[0..n) read from path in keyspace folder
 * dir, in order, up to the first that does not read; *nrec counts them.
 * Returns the exit status. */
static int manifest_print_records(const struct cli_args *a, const char *dir, const char *path, const uint8_t *d,
                                  size_t n, uint64_t *nrec)
{
    size_t off = 0;
    while (off < n) {
        uint64_t plen, psum;
        if (n - off < RECORD_HEADER_SIZE || !record_header_ok(d + off, &plen, &psum) ||
            plen > n - off - RECORD_HEADER_SIZE || checksum64(d + off + RECORD_HEADER_SIZE, (size_t)plen) != psum)
            return cli_data_error("%s offset %zu: a damaged or torn record (TIND_CORRUPTION)", path, off);
        struct version_edit e;
        version_edit_init(&e);
        int lrc = version_edit_decode(d + off + RECORD_HEADER_SIZE, (size_t)plen, dir, path, off + RECORD_HEADER_SIZE, &e);
        if (lrc) return cli_lib_error(lrc, "manifest");
        (*nrec)++;
        manifest_print_edit(a, off, plen, &e);
        version_edit_free(&e);
        off += RECORD_HEADER_SIZE + (size_t)plen;
    }
    return 0;
}

/* The current version of the manifest in dir, as the library recovers it,
 * and the end of the JSON document. Returns the exit status. */
static int manifest_print_current(const struct cli_args *a, const char *dir, uint64_t nrec)
{
    manifest *m;
    int lrc = manifest_open_read_only(dir, &m);
    if (lrc) {
        if (a->json) {
            json_end_array();
            json_end_object();
            json_finish();
        }
        return cli_lib_error(lrc, "manifest");
    }
    struct version *v = manifest_current(m);
    if (a->json) {
        json_end_array();
        json_u64("record_count", nrec);
        json_u64("flushed_seq", manifest_flushed_seq(m));
        json_begin_array("current");
        for (unsigned l = 0; l < LSM_LEVELS; l++)
            for (size_t i = 0; i < v->nfiles[l]; i++) print_meta(v->files[l][i], l, 1, a->hex);
        json_end_array();
        json_end_object();
        json_finish();
    } else {
        printf("current version (%" PRIu64 " records, flushed up to %" PRIu64 ")\n", nrec, manifest_flushed_seq(m));
        for (unsigned l = 0; l < LSM_LEVELS; l++) {
            if (!v->nfiles[l]) continue;
            printf("  level %u: %zu tables, %" PRIu64 " bytes\n", l, v->nfiles[l], v->level_bytes[l]);
            for (size_t i = 0; i < v->nfiles[l]; i++) {
                printf("    ");
                print_meta(v->files[l][i], l, 0, a->hex);
            }
        }
    }
    version_unref(v);
    manifest_close(m);
    return 0;
}

int cmd_manifest(const struct cli_args *a)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    int rc = find_keyspace_dir(a->pos[0], a->pos[1], dir, sizeof dir);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_FILE);
    uint8_t *d = NULL;
    size_t n = 0;
    rc = manifest_slurp(path, &d, &n);
    if (rc) return rc;
    if (a->json) {
        json_begin_object(NULL);
        json_str("file", path);
        json_u64("size", n);
        json_begin_array("records");
    } else {
        printf("manifest      %s (%zu bytes)\n", path, n);
    }
    uint64_t nrec = 0;
    rc = manifest_print_records(a, dir, path, d, n, &nrec);
    free(d);
    if (rc) {
        if (a->json) {
            json_end_array();
            json_end_object();
            json_finish();
        }
        return rc;
    }
    return manifest_print_current(a, dir, nrec);
}
