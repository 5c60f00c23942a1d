/* Commands on an open database: info, get, put, delete, scan, stats, verify.
 * (compact is in compact.c; dump and load in dump.c.) */
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/cli/cli.h"
#include "src/ks_options.h"
#include "src/util/coding.h"

int cli_open_db(const char *dir, int read_only, tind_db **db)
{
    tind_options o;
    tind_options_init(&o);
    o.read_only = read_only;
    o.create_if_missing = 0;
    int rc = tind_open(dir, &o, db);
    if (rc == TIND_NOT_FOUND) return cli_data_error("%s: no tind database there (TIND_NOT_FOUND)", dir);
    if (rc) return cli_lib_error(rc, dir);
    return 0;
}

int cli_open_keyspace(tind_db *db, const char *name, int create, tind_keyspace **ks)
{
    char **names;
    size_t n;
    int rc = tind_keyspace_list(db, &names, &n);
    if (rc) return cli_lib_error(rc, "listing the keyspaces");
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) found = !strcmp(names[i], name);
    tind_free(names);
    if (!found && !create) return cli_data_error("no keyspace named %s (TIND_NOT_FOUND)", name);
    if ((rc = tind_keyspace_open(db, name, NULL, ks)) != TIND_OK) return cli_lib_error(rc, name);
    return 0;
}

/* Parses a key or value argument; prints a usage error. */
static int parse_arg(const char *what, const char *text, int hex, uint8_t **out, size_t *n)
{
    char err[200];
    if (cli_parse_bytes(text, strlen(text), hex, out, n, err, sizeof err))
        return cli_usage_error("%s %s: %s", what, text, err);
    return 0;
}

static int check_key_arg(const char *what, size_t n)
{
    if (n == 0) return cli_usage_error("the %s is empty (keys are 1 to %u bytes)", what, TIND_MAX_KEY_BYTES);
    if (n > TIND_MAX_KEY_BYTES)
        return cli_usage_error("the %s is %zu bytes, over the %u a key may have", what, n, TIND_MAX_KEY_BYTES);
    return 0;
}

/* ---- info ----------------------------------------------------------------------------- */

static uint64_t du_bytes, du_alloc, du_files;

static int du_visit(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)path;
    (void)f;
    if (flag == FTW_F) {
        du_files++;
        du_bytes += (uint64_t)st->st_size;
        du_alloc += (uint64_t)st->st_blocks * 512u;
    }
    return 0;
}

/* The format version from the meta file (src/README.md): u32 at offset 8. */
static int meta_version(const char *dir, uint32_t *v)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/TIND", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    uint8_t m[12];
    int ok = fread(m, 1, sizeof m, f) == sizeof m;
    fclose(f);
    if (!ok) return -1;
    *v = get_u32(m + 8);
    return 0;
}

static const char *durability_name(int d)
{
    switch (d) {
    case TIND_DURABILITY_DEFAULT: return "default";
    case TIND_DURABILITY_BUFFERED: return "buffered";
    case TIND_DURABILITY_SYNC_DATA: return "sync_data";
    case TIND_DURABILITY_SYNC_ALL: return "sync_all";
    default: return "?";
    }
}

static const char *compression_name(int c)
{
    return c == TIND_COMPRESSION_NONE ? "none" : c == TIND_COMPRESSION_LZ4 ? "lz4" : c == TIND_COMPRESSION_ZSTD ? "zstd" : "?";
}

static const char *strategy_name(int c)
{
    return c == TIND_COMPACTION_LEVELED ? "leveled" : c == TIND_COMPACTION_TIERED ? "tiered" : c == TIND_COMPACTION_FIFO ? "fifo" : "?";
}

/* The options print from their table (src/ks_options.h): a field added
 * there is shown here. FMT_<names> writes one value as text, JSON_<names>
 * one JSON member. */
static void fmt_u64(char *b, size_t cap, uint64_t v) { snprintf(b, cap, "%" PRIu64, v); }
static void fmt_i64(char *b, size_t cap, int64_t v) { snprintf(b, cap, "%" PRId64, v); }
#define FMT_NUM(b, cap, v) _Generic((v), int: fmt_i64, default: fmt_u64)(b, cap, (v))
#define FMT_DURABILITY(b, cap, v) snprintf(b, cap, "%s", durability_name(v))
#define FMT_COMPRESSION(b, cap, v) snprintf(b, cap, "%s", compression_name(v))
#define FMT_STRATEGY(b, cap, v) snprintf(b, cap, "%s", strategy_name(v))
#define JSON_NUM(key, v) _Generic((v), int: json_i64, default: json_u64)(key, (v))
#define JSON_DURABILITY(key, v) json_str(key, durability_name(v))
#define JSON_COMPRESSION(key, v) json_str(key, compression_name(v))
#define JSON_STRATEGY(key, v) json_str(key, strategy_name(v))

/* The text form: "name=value" items after "  options", wrapped before
 * OPTIONS_TEXT_WIDTH columns onto lines indented like the first. */
#define OPTIONS_TEXT_INDENT "              "
#define OPTIONS_TEXT_WIDTH 100
struct options_text {
    size_t col; /* columns printed on this line */
    int items;  /* items on this line */
};
static void options_text_item(struct options_text *t, const char *name, const char *value)
{
    size_t n = strlen(name) + 1 + strlen(value);
    if (t->items && t->col + 1 + n > OPTIONS_TEXT_WIDTH) {
        printf("\n" OPTIONS_TEXT_INDENT);
        t->col = sizeof OPTIONS_TEXT_INDENT - 1;
        t->items = 0;
    }
    if (t->items) {
        putchar(' ');
        t->col++;
    }
    printf("%s=%s", name, value);
    t->col += n;
    t->items++;
}

#define TEXT_PLAIN(name, names) FMT_##names(v, sizeof v, o->name);
#define TEXT_ZIGZAG(name, names) TEXT_PLAIN(name, names)
#define TEXT_LEVELS(name, names)                                                                              \
    for (int l = 0; l < TIND_LEVELS; l++) {                                                                   \
        size_t at = strlen(v);                                                                                \
        if (l) v[at++] = ',';                                                                                 \
        FMT_##names(v + at, sizeof v - at, o->name[l]);                                                       \
    }
#define TEXT_FIELD(name, type, coding, tag, def, lo, hi, why, names)                                         \
    {                                                                                                         \
        char v[256] = "";                                                                                     \
        TEXT_##coding(name, names) options_text_item(&t, #name, v);                                         \
    }

static void print_options_text(const tind_keyspace_options *o)
{
    printf("  options     ");
    struct options_text t = {sizeof OPTIONS_TEXT_INDENT - 1, 0};
    KS_OPTIONS(TEXT_FIELD)
    printf("\n");
}

#define JSON_PLAIN(name, names) JSON_##names(#name, o->name);
#define JSON_ZIGZAG(name, names) JSON_PLAIN(name, names)
#define JSON_LEVELS(name, names)                                                                              \
    json_begin_array(#name);                                                                                  \
    for (int l = 0; l < TIND_LEVELS; l++) JSON_##names(NULL, o->name[l]);                                     \
    json_end_array();
#define JSON_FIELD(name, type, coding, tag, def, lo, hi, why, names) JSON_##coding(name, names)

static void print_options_json(const tind_keyspace_options *o)
{
    json_begin_object("options");
    KS_OPTIONS(JSON_FIELD)
    json_end_object();
}

/* Opens dir read-only with its statistics and keyspace names (freed with
 * tind_free); on failure nothing stays open. */
static int open_db_stats(const char *dir, tind_db **db, struct tind_db_stats *ds, char ***names, size_t *n)
{
    int rc = cli_open_db(dir, 1, db);
    if (rc) return rc;
    if ((rc = tind_db_stats(*db, ds)) != TIND_OK || (rc = tind_keyspace_list(*db, names, n)) != TIND_OK) {
        rc = cli_lib_error(rc, dir);
        tind_close(*db);
    }
    return rc;
}

/* The library's status for opening keyspace name and reading its statistics. */
static int keyspace_stats(tind_db *db, const char *name, tind_keyspace **ks, struct tind_keyspace_stats *st)
{
    int lrc = tind_keyspace_open(db, name, NULL, ks);
    return lrc ? lrc : tind_keyspace_stats(*ks, st);
}

/* Opens level l's JSON object with its table count and bytes; the caller
 * adds more fields and closes it. */
static void json_level_begin(int l, const struct tind_keyspace_stats *st)
{
    json_begin_object(NULL);
    json_u64("level", (uint64_t)l);
    json_u64("tables", st->tables[l]);
    json_u64("bytes", st->table_bytes[l]);
}

/* Closes the keyspace array and the top object that info and stats print
 * (unless a keyspace failed), and frees the names. */
static void end_keyspace_list(const struct cli_args *a, int rc, char **names)
{
    if (a->json && rc == 0) {
        json_end_array();
        json_end_object();
        json_finish();
    }
    tind_free(names);
}

int cmd_info(const struct cli_args *a)
{
    const char *dir = a->pos[0];
    tind_db *db;
    struct tind_db_stats ds;
    char **names = NULL;
    size_t n = 0;
    int rc = open_db_stats(dir, &db, &ds, &names, &n);
    if (rc) return rc;
    uint32_t version = 0;
    int have_version = meta_version(dir, &version) == 0;
    du_bytes = du_alloc = du_files = 0;
    nftw(dir, du_visit, 16, FTW_PHYS);

    if (a->json) {
        json_begin_object(NULL);
        json_str("path", dir);
        if (have_version) json_u64("format_version", version);
        else json_null("format_version");
        json_str("library_version", tind_version());
        json_u64("last_sequence", ds.last_sequence);
        json_u64("journal_files", ds.journal_files);
        json_u64("journal_bytes", ds.journal_bytes);
        json_u64("disk_files", du_files);
        json_u64("disk_bytes", du_bytes);
        json_u64("disk_allocated_bytes", du_alloc);
        json_begin_array("keyspaces");
    } else {
        printf("database      %s\n", dir);
        if (have_version) printf("format        %u (library %s)\n", version, tind_version());
        printf("sequence      %" PRIu64 "\n", ds.last_sequence);
        printf("journals      %" PRIu64 " files, %" PRIu64 " bytes\n", ds.journal_files, ds.journal_bytes);
        printf("disk usage    %" PRIu64 " bytes in %" PRIu64 " files (%" PRIu64 " allocated)\n", du_bytes, du_files,
               du_alloc);
        printf("keyspaces     %zu\n", n);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        tind_keyspace *ks;
        struct tind_keyspace_stats st;
        tind_keyspace_options o;
        int lrc;
        if ((lrc = keyspace_stats(db, names[i], &ks, &st)) != TIND_OK ||
            (lrc = tind_keyspace_get_options(ks, &o)) != TIND_OK) {
            rc = cli_lib_error(lrc, names[i]);
            break;
        }
        uint64_t tables = 0, bytes = 0;
        for (int l = 0; l < TIND_LEVELS; l++) {
            tables += st.tables[l];
            bytes += st.table_bytes[l];
        }
        if (a->json) {
            json_begin_object(NULL);
            json_str("name", names[i]);
            json_u64("id", st.id);
            print_options_json(&o);
            json_u64("memtable_bytes", st.memtable_bytes);
            json_u64("memtable_entries", st.memtable_entries);
            json_u64("sealed_memtables", st.sealed_memtables);
            json_u64("flushed_sequence", st.flushed_sequence);
            json_u64("tables", tables);
            json_u64("table_bytes", bytes);
            json_begin_array("levels");
            for (int l = 0; l < TIND_LEVELS; l++) {
                json_level_begin(l, &st);
                json_end_object();
            }
            json_end_array();
            json_end_object();
        } else {
            printf("\nkeyspace %s (id %" PRIu64 ")\n", names[i], st.id);
            print_options_text(&o);
            printf("  memtable    %" PRIu64 " entries, %" PRIu64 " bytes, %" PRIu64 " sealed\n", st.memtable_entries,
                   st.memtable_bytes, st.sealed_memtables);
            printf("  flushed     up to sequence %" PRIu64 "\n", st.flushed_sequence);
            for (int l = 0; l < TIND_LEVELS; l++)
                if (st.tables[l])
                    printf("  level %d     %" PRIu64 " tables, %" PRIu64 " bytes\n", l, st.tables[l], st.table_bytes[l]);
            printf("  tables      %" PRIu64 " tables, %" PRIu64 " bytes\n", tables, bytes);
        }
    }
    end_keyspace_list(a, rc, names);
    int crc = tind_close(db);
    if (crc && rc == 0) rc = cli_lib_error(crc, "closing");
    return rc;
}

/* ---- get, put, delete ------------------------------------------------------------------- */

int cmd_get(const struct cli_args *a)
{
    uint8_t *key;
    size_t klen;
    int rc = parse_arg("key", a->pos[2], a->hex, &key, &klen);
    if (rc) return rc;
    if ((rc = check_key_arg("key", klen)) != 0) {
        free(key);
        return rc;
    }
    tind_db *db;
    tind_keyspace *ks;
    if ((rc = cli_open_db(a->pos[0], 1, &db)) != 0) {
        free(key);
        return rc;
    }
    if ((rc = cli_open_keyspace(db, a->pos[1], 0, &ks)) == 0) {
        void *val;
        size_t vlen;
        int lrc = tind_get(ks, key, klen, &val, &vlen);
        if (lrc == TIND_NOT_FOUND) {
            rc = cli_data_error("key %s not found in %s (TIND_NOT_FOUND)", a->pos[2], a->pos[1]);
        } else if (lrc) {
            rc = cli_lib_error(lrc, "get");
        } else {
            if (a->json) {
                json_begin_object(NULL);
                json_str("keyspace", a->pos[1]);
                json_bytes("key", key, klen, a->hex);
                json_bytes("value", val, vlen, a->hex);
                json_end_object();
                json_finish();
            } else {
                cli_print_bytes(stdout, val, vlen, a->hex);
                putchar('\n');
            }
            tind_free(val);
        }
    }
    free(key);
    tind_close(db);
    return rc;
}

/* Opens for a write: the database must exist unless --create. */
static int open_for_write(const struct cli_args *a, tind_db **db, tind_keyspace **ks)
{
    tind_options o;
    tind_options_init(&o);
    o.create_if_missing = a->create;
    int rc = tind_open(a->pos[0], &o, db);
    if (rc == TIND_NOT_FOUND)
        return cli_data_error("%s: no tind database there (TIND_NOT_FOUND; --create makes one)", a->pos[0]);
    if (rc) return cli_lib_error(rc, a->pos[0]);
    if ((rc = cli_open_keyspace(*db, a->pos[1], a->create, ks)) != 0) {
        tind_close(*db);
        return rc;
    }
    return 0;
}

/* Syncs the journal and closes: what the command wrote survives power loss. */
static int finish_write(tind_db *db, int rc)
{
    int prc = rc ? TIND_OK : tind_persist(db, TIND_DURABILITY_SYNC_DATA);
    if (prc) rc = cli_lib_error(prc, "syncing the journal");
    int crc = tind_close(db);
    if (crc && !rc) rc = cli_lib_error(crc, "closing");
    return rc;
}

int cmd_put(const struct cli_args *a)
{
    uint8_t *key = NULL, *val = NULL;
    size_t klen, vlen;
    int rc = parse_arg("key", a->pos[2], a->hex, &key, &klen);
    if (!rc && (rc = check_key_arg("key", klen)) == 0) rc = parse_arg("value", a->pos[3], a->hex, &val, &vlen);
    tind_db *db;
    tind_keyspace *ks;
    if (!rc && (rc = open_for_write(a, &db, &ks)) == 0) {
        int lrc = tind_put(ks, key, klen, val, vlen);
        if (lrc) rc = cli_lib_error(lrc, "put");
        rc = finish_write(db, rc);
    }
    free(key);
    free(val);
    return rc;
}

int cmd_delete(const struct cli_args *a)
{
    uint8_t *key = NULL;
    size_t klen;
    int rc = parse_arg("key", a->pos[2], a->hex, &key, &klen);
    if (!rc) rc = check_key_arg("key", klen);
    tind_db *db;
    tind_keyspace *ks;
    struct cli_args w = *a;
    w.create = 0;
    if (!rc && (rc = open_for_write(&w, &db, &ks)) == 0) {
        int lrc = tind_delete(ks, key, klen);
        if (lrc) rc = cli_lib_error(lrc, "delete");
        rc = finish_write(db, rc);
    }
    free(key);
    return rc;
}

/* ---- scan ---------------------------------------------------------------------------- */

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t m = an < bn ? an : bn;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return an < bn ? -1 : an > bn;
}

int cmd_scan(const struct cli_args *a)
{
    uint8_t *prefix = NULL, *from = NULL, *to = NULL, *succ = NULL;
    size_t plen = 0, flen = 0, tlen = 0, slen = 0;
    int rc = 0;
    if (a->prefix) rc = parse_arg("--prefix", a->prefix, a->hex, &prefix, &plen);
    if (!rc && a->from) rc = parse_arg("--from", a->from, a->hex, &from, &flen);
    if (!rc && a->to) rc = parse_arg("--to", a->to, a->hex, &to, &tlen);
    if (!rc && prefix && plen == 0) rc = cli_usage_error("--prefix needs at least one byte");
    if (rc) goto out;

    /* Bounds: [max(from, prefix), min(to, the first key past the prefix)). */
    tind_bounds b = {0};
    if (from) b.lower = from, b.lower_len = flen;
    if (to) b.upper = to, b.upper_len = tlen;
    if (prefix) {
        if (!from || bytes_cmp(prefix, plen, from, flen) > 0) b.lower = prefix, b.lower_len = plen;
        /* The successor: the prefix cut after its last byte below 0xff, that byte plus one. */
        slen = plen;
        while (slen > 0 && prefix[slen - 1] == 0xff) slen--;
        if (slen > 0) {
            succ = malloc(slen);
            if (!succ) {
                rc = cli_data_error("out of memory");
                goto out;
            }
            memcpy(succ, prefix, slen);
            succ[slen - 1]++;
            if (!to || bytes_cmp(succ, slen, to, tlen) < 0) b.upper = succ, b.upper_len = slen;
        }
    }
    if (b.lower && b.lower_len == 0) b.lower = NULL; /* an empty --from is no bound */

    tind_db *db;
    tind_keyspace *ks;
    if ((rc = cli_open_db(a->pos[0], 1, &db)) != 0) goto out;
    if ((rc = cli_open_keyspace(db, a->pos[1], 0, &ks)) != 0) {
        tind_close(db);
        goto out;
    }
    tind_iter *it;
    int lrc = tind_iter_open(ks, NULL, &b, &it);
    if (lrc) {
        rc = cli_lib_error(lrc, "opening an iterator");
        tind_close(db);
        goto out;
    }
    if (a->json) {
        json_begin_object(NULL);
        json_str("keyspace", a->pos[1]);
        json_begin_array("entries");
    }
    uint64_t count = 0;
    if (a->reverse) tind_iter_seek_last(it);
    else tind_iter_seek_first(it);
    while (tind_iter_valid(it) && (!a->has_limit || count < a->limit)) {
        size_t kl, vl;
        const void *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
        if (a->json) {
            json_begin_object(NULL);
            json_bytes("key", k, kl, a->hex);
            if (!a->keys_only) json_bytes("value", v, vl, a->hex);
            json_end_object();
        } else {
            cli_print_bytes(stdout, k, kl, a->hex);
            if (!a->keys_only) {
                putchar('\t');
                cli_print_bytes(stdout, v, vl, a->hex);
            }
            putchar('\n');
        }
        count++;
        if (a->reverse) tind_iter_prev(it);
        else tind_iter_next(it);
    }
    lrc = tind_iter_status(it);
    tind_iter_close(it);
    if (a->json) {
        json_end_array();
        json_u64("count", count);
        json_end_object();
        json_finish();
    }
    if (lrc) rc = cli_lib_error(lrc, "scan");
    tind_close(db);
out:
    free(prefix);
    free(from);
    free(to);
    free(succ);
    return rc;
}

/* ---- stats ------------------------------------------------------------------------------ */

int cmd_stats(const struct cli_args *a)
{
    tind_db *db;
    struct tind_db_stats ds;
    char **names = NULL;
    size_t n = 0;
    int rc = open_db_stats(a->pos[0], &db, &ds, &names, &n), lrc;
    if (rc) return rc;
    if (a->json) {
        json_begin_object(NULL);
        json_u64("keyspaces", ds.keyspaces);
        json_u64("last_sequence", ds.last_sequence);
        json_u64("journal_files", ds.journal_files);
        json_u64("journal_bytes", ds.journal_bytes);
        json_u64("compactions_active", ds.compactions_active);
        json_u64("compactions_completed", ds.compactions_completed);
        json_begin_object("cache");
        json_u64("capacity", ds.cache_capacity);
        json_u64("usage", ds.cache_usage);
        json_u64("hits", ds.cache_hits);
        json_u64("misses", ds.cache_misses);
        json_end_object();
        json_u64("open_tables", ds.open_tables);
        json_begin_array("keyspace_stats");
    } else {
        printf("sequence         %" PRIu64 "\n", ds.last_sequence);
        printf("journals         %" PRIu64 " files, %" PRIu64 " bytes\n", ds.journal_files, ds.journal_bytes);
        printf("compactions      %" PRIu64 " active, %" PRIu64 " completed\n", ds.compactions_active,
               ds.compactions_completed);
        printf("cache            %" PRIu64 " of %" PRIu64 " bytes, %" PRIu64 " hits, %" PRIu64 " misses\n",
               ds.cache_usage, ds.cache_capacity, ds.cache_hits, ds.cache_misses);
        printf("open tables      %" PRIu64 "\n", ds.open_tables);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        tind_keyspace *ks;
        struct tind_keyspace_stats st;
        if ((lrc = keyspace_stats(db, names[i], &ks, &st)) != TIND_OK) {
            rc = cli_lib_error(lrc, names[i]);
            break;
        }
        if (a->json) {
            json_begin_object(NULL);
            json_str("name", names[i]);
            json_u64("flushes", st.flushes);
            json_u64("flushed_bytes", st.flushed_bytes);
            json_u64("compactions", st.compactions);
            json_u64("compaction_bytes_read", st.compaction_bytes_read);
            json_u64("compaction_bytes_written", st.compaction_bytes_written);
            json_u64("compaction_micros", st.compaction_micros);
            json_double("write_amplification", st.write_amplification);
            json_u64("pending_compaction_bytes", st.pending_compaction_bytes);
            json_u64("stalls", st.stalls);
            json_u64("slowdowns", st.slowdowns);
            json_u64("stall_micros", st.stall_micros);
            json_begin_array("levels");
            for (int l = 0; l < TIND_LEVELS; l++) {
                json_level_begin(l, &st);
                json_u64("compactions", st.level_compactions[l]);
                json_u64("bytes_read", st.level_bytes_read[l]);
                json_u64("bytes_written", st.level_bytes_written[l]);
                json_end_object();
            }
            json_end_array();
            json_end_object();
        } else {
            printf("\nkeyspace %s\n", names[i]);
            printf("  flushes          %" PRIu64 " (%" PRIu64 " bytes)\n", st.flushes, st.flushed_bytes);
            printf("  compactions      %" PRIu64 ", %" PRIu64 " bytes read, %" PRIu64 " written, %" PRIu64 " us\n",
                   st.compactions, st.compaction_bytes_read, st.compaction_bytes_written, st.compaction_micros);
            printf("  write amp        %.2f\n", st.write_amplification);
            printf("  pending          %" PRIu64 " bytes to compact\n", st.pending_compaction_bytes);
            printf("  stalls           %" PRIu64 " stalls, %" PRIu64 " slowdowns, %" PRIu64 " us\n", st.stalls,
                   st.slowdowns, st.stall_micros);
            printf("  level  tables        bytes  compactions   bytes read  bytes written\n");
            for (int l = 0; l < TIND_LEVELS; l++)
                printf("  %5d %7" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %14" PRIu64 "\n", l, st.tables[l],
                       st.table_bytes[l], st.level_compactions[l], st.level_bytes_read[l], st.level_bytes_written[l]);
        }
    }
    end_keyspace_list(a, rc, names);
    tind_close(db);
    return rc;
}

/* ---- verify ---------------------------------------------------------------------------- */

int cmd_verify(const struct cli_args *a)
{
    tind_db *db;
    int rc = cli_open_db(a->pos[0], 1, &db);
    if (rc) return rc;
    struct tind_verify_report r;
    int lrc = tind_db_verify(db, &r);
    if (a->json) {
        json_begin_object(NULL);
        json_bool("ok", lrc == TIND_OK);
        json_u64("keyspaces", r.keyspaces);
        json_u64("tables", r.tables);
        json_u64("blocks", r.blocks);
        json_u64("entries", r.entries);
        json_u64("bytes_read", r.bytes_read);
        json_u64("manifest_records", r.manifest_records);
        json_u64("journals", r.journals);
        json_u64("journal_records", r.journal_records);
        json_u64("orphan_files", r.orphan_files);
        json_u64("problems", r.problems);
        if (r.problems) {
            json_str("first_file", r.first_file);
            json_u64("first_offset", r.first_offset);
            json_str("first_message", r.first_message);
        }
        json_end_object();
        json_finish();
    } else if (lrc == TIND_OK || lrc == TIND_CORRUPTION) {
        printf("checked %" PRIu64 " keyspaces, %" PRIu64 " tables (%" PRIu64 " blocks, %" PRIu64 " entries), %" PRIu64
               " manifest records, %" PRIu64 " journals (%" PRIu64 " records), %" PRIu64 " bytes read\n",
               r.keyspaces, r.tables, r.blocks, r.entries, r.manifest_records, r.journals, r.journal_records,
               r.bytes_read);
        printf("%" PRIu64 " problems\n", r.problems);
    }
    if (lrc == TIND_CORRUPTION && r.problems && strstr(r.first_message, r.first_file))
        rc = cli_data_error("%s (%" PRIu64 " corrupt files; TIND_CORRUPTION)", r.first_message, r.problems);
    else if (lrc == TIND_CORRUPTION && r.problems)
        rc = cli_data_error("%s offset %" PRIu64 ": %s (%" PRIu64 " corrupt files; TIND_CORRUPTION)", r.first_file,
                            r.first_offset, r.first_message, r.problems);
    else if (lrc)
        rc = cli_lib_error(lrc, "verify");
    tind_close(db);
    return rc;
}
