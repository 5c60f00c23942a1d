/* Writes the fuzz targets' seed corpora: real files made by the library plus
 * a few hand-shaped edge cases (make fuzz-corpus).
 *
 *   fuzz-gen-corpus <corpus-dir>
 *
 * writes <corpus-dir>/{journal,table,manifest,ops}/<name>, replacing files of
 * the same names. The journals come from a database whose keyspaces are
 * created in the order fuzz_journal.c's template creates them ("a", "b"),
 * so that their keyspace numbers match. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lsm/ikey.h"
#include "lsm/table.h"
#include "src/util/err.h"
#include "tests/support/testutil.h"
#include "tind.h"

static const char *out_root;

static void die(const char *what, int rc)
{
    fprintf(stderr, "fuzz-gen-corpus: %s: %d %s\n", what, rc, rc ? tind_last_error() : strerror(errno));
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc != TIND_OK) die(what, rc);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path, 0);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    if (!p || (sz > 0 && fread(p, 1, (size_t)sz, f) != (size_t)sz)) die(path, 0);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* Writes <out_root>/<target>/<name>. */
static void emit(const char *target, const char *name, const void *p, size_t n)
{
    char dir[2048], path[4096];
    snprintf(dir, sizeof dir, "%s/%s", out_root, target);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) die(dir, 0);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) die(path, 0);
    printf("%s (%zu bytes)\n", path, n);
}

static void emit_file(const char *target, const char *name, const char *src)
{
    size_t n;
    uint8_t *p = slurp(src, &n);
    emit(target, name, p, n);
    free(p);
}

static void put_str(tind_keyspace *ks, const char *k, const char *v)
{
    check(tind_put(ks, k, strlen(k), v, strlen(v)), "put");
}

static void db_options(tind_options *o)
{
    tind_options_init(o);
    o->workers = 1;
    o->durability = TIND_DURABILITY_BUFFERED;
}

/* ---- journals ------------------------------------------------------------------------ */

static void gen_journals(const char *tmp)
{
    char db_path[2048], j1[4096], j2[4096];
    snprintf(db_path, sizeof db_path, "%s/jdb", tmp);
    snprintf(j1, sizeof j1, "%s/journals/0000000000000001.jnl", db_path);
    snprintf(j2, sizeof j2, "%s/journals/0000000000000002.jnl", db_path);
    tind_options o;
    db_options(&o);
    tind_db *db;
    tind_keyspace *a, *b;
    check(tind_open(db_path, &o, &db), "open");
    check(tind_keyspace_open(db, "a", NULL, &a), "keyspace a");
    check(tind_keyspace_open(db, "b", NULL, &b), "keyspace b");
    put_str(a, "apple", "red");
    put_str(a, "banana", "yellow");
    put_str(b, "carrot", "orange");
    check(tind_delete(a, "apple", 5), "delete");
    tind_batch *bt;
    check(tind_batch_new(&bt), "batch");
    check(tind_batch_put(bt, a, "k1", 2, "v1", 2), "batch put");
    check(tind_batch_put(bt, b, "k2", 2, "v2", 2), "batch put");
    check(tind_batch_delete(bt, a, "banana", 6), "batch delete");
    check(tind_batch_commit(db, bt, TIND_DURABILITY_BUFFERED), "commit");
    tind_batch_free(bt);
    char big[600];
    memset(big, 'z', sizeof big);
    check(tind_put(b, "big", 3, big, sizeof big), "put big");
    check(tind_close(db), "close");

    size_t n1;
    uint8_t *p1 = slurp(j1, &n1);
    emit("journal", "one-journal", p1, n1);
    emit("journal", "torn-tail", p1, n1 - 7);
    emit("journal", "header-only", p1, n1 < 40 ? n1 : 40);
    emit("journal", "short-header", p1, 20);
    emit("journal", "empty", p1, 0);
    uint8_t *flip = malloc(n1);
    memcpy(flip, p1, n1);
    flip[n1 / 2] ^= 0x40;
    emit("journal", "flipped-byte", flip, n1);
    free(flip);

    /* A second journal (opened again) with a keyspace drop in it. */
    check(tind_open(db_path, &o, &db), "reopen");
    check(tind_keyspace_open(db, "a", NULL, &a), "keyspace a");
    check(tind_keyspace_open(db, "b", NULL, &b), "keyspace b");
    put_str(a, "date", "brown");
    put_str(b, "egg", "white");
    check(tind_keyspace_drop(db, "b"), "drop");
    put_str(a, "fig", "purple");
    check(tind_close(db), "close");
    size_t n2;
    uint8_t *p2 = slurp(j2, &n2);
    emit("journal", "second-with-drop", p2, n2);
    uint8_t *seq = malloc(n1 + n2);
    memcpy(seq, p1, n1);
    memcpy(seq + n1, p2, n2);
    emit("journal", "two-journals", seq, n1 + n2);
    /* The first journal torn, the second whole: damage, not a torn tail. */
    memcpy(seq + n1 - 7, p2, n2);
    emit("journal", "two-journals-first-torn", seq, n1 - 7 + n2);
    free(seq);
    free(p1);
    free(p2);
}

/* ---- tables -------------------------------------------------------------------------- */

/* format: the table format version (0: the current one). */
static void gen_table_format(const char *tmp, const char *name, size_t block_size, unsigned restart, unsigned bloom,
                             unsigned compression, unsigned keys, unsigned versions, unsigned format)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.tbl", tmp, name);
    struct table_options o = {.block_size = block_size, .restart_interval = restart, .bloom_bits = bloom,
                              .compression = compression, .zstd_level = 1, .format_version = format};
    table_writer *w;
    check(table_writer_open(path, &o, &w), "table_writer_open");
    uint64_t seq = 1000;
    for (unsigned k = 0; k < keys; k++) {
        char key[32], val[64];
        int kl = snprintf(key, sizeof key, "key%05u", k * 7);
        for (unsigned v = 0; v < versions; v++) {
            unsigned kind = (k + v) % 5 == 4 ? KIND_DELETE : KIND_PUT;
            int vl = kind == KIND_PUT ? snprintf(val, sizeof val, "value-%u-%u-%s", k, v, "aaaaaaaaaaaa") : 0;
            check(table_writer_add(w, (const uint8_t *)key, (size_t)kl, tag_pack(seq - v, kind),
                                   (const uint8_t *)val, (size_t)vl),
                  "table_writer_add");
        }
        seq += versions + 1;
    }
    check(table_writer_finish(w, NULL, NULL), "table_writer_finish");
    emit_file("table", name, path);
}

static void gen_table(const char *tmp, const char *name, size_t block_size, unsigned restart, unsigned bloom,
                      unsigned compression, unsigned keys, unsigned versions)
{
    gen_table_format(tmp, name, block_size, restart, bloom, compression, keys, versions, 0);
}

static void gen_tables(const char *tmp)
{
    /* Format 1 (the plain filter layout), which readers still take. */
    gen_table_format(tmp, "v1-bloom-versions", 256, 16, 10, COMPRESS_NONE, 30, 3, 1);
    gen_table_format(tmp, "v1-lz4", 512, 8, 10, COMPRESS_LZ4, 60, 2, 1);
    gen_table(tmp, "plain", 256, 4, 0, COMPRESS_NONE, 40, 1);
    gen_table(tmp, "bloom-versions", 256, 16, 10, COMPRESS_NONE, 30, 3);
    gen_table(tmp, "lz4", 512, 8, 10, COMPRESS_LZ4, 60, 2);
    gen_table(tmp, "zstd", 512, 16, 10, COMPRESS_ZSTD, 60, 2);
    gen_table(tmp, "restart-1", 128, 1, 4, COMPRESS_NONE, 20, 1);
    gen_table(tmp, "one-entry", 4096, 16, 10, COMPRESS_NONE, 1, 1);
    gen_table(tmp, "empty", 4096, 16, 10, COMPRESS_NONE, 0, 1);
    char path[4096];
    snprintf(path, sizeof path, "%s/plain.tbl", tmp);
    size_t n;
    uint8_t *p = slurp(path, &n);
    emit("table", "footer-only", p + n - 72, 72);
    emit("table", "truncated", p, n - 30);
    emit("table", "short", p + n - 20, 20);
    free(p);
}

/* ---- manifests ----------------------------------------------------------------------- */

static void gen_manifests(const char *tmp)
{
    char db_path[2048], mpath[4096];
    snprintf(db_path, sizeof db_path, "%s/mdb", tmp);
    tind_options o;
    db_options(&o);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64u << 10;
    ko.l0_trigger = 8;
    tind_db *db;
    tind_keyspace *ks;
    check(tind_open(db_path, &o, &db), "open");
    check(tind_keyspace_open(db, "m", &ko, &ks), "keyspace");
    snprintf(mpath, sizeof mpath, "%s/keyspaces/1/MANIFEST", db_path);
    emit_file("manifest", "fresh", mpath);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            char k[32], v[32];
            snprintf(k, sizeof k, "k%03d", i * 3 + round);
            snprintf(v, sizeof v, "v%d", round);
            put_str(ks, k, v);
        }
        check(tind_keyspace_flush(ks), "flush");
    }
    emit_file("manifest", "three-flushes", mpath);
    check(tind_keyspace_compact(ks), "compact");
    emit_file("manifest", "flushes-and-compaction", mpath);
    check(tind_close(db), "close");
    size_t n;
    uint8_t *p = slurp(mpath, &n);
    emit("manifest", "torn-tail", p, n - 5);
    uint8_t *flip = malloc(n);
    memcpy(flip, p, n);
    flip[n - 3] ^= 1;
    emit("manifest", "flipped-last-byte", flip, n);
    free(flip);
    emit("manifest", "empty", p, 0);
    free(p);
}

/* ---- operation sequences ------------------------------------------------------------- */

/* Ops (fuzz_ops.c): 0-2 put, 3-4 delete, 5 batch, 6-7 get, 8-9 iterate,
 * 10 snapshot, 11 release, 12 flush, 13 compact, 14 reopen, 15 full scan. */
static void gen_ops(void)
{
    static const uint8_t basic[] = {0x00, 0x00, 0, 0, 5, 7,  0, 1, 9, 4,   6, 0, 0, 5,  6, 0, 1, 9,
                                    3, 0, 5, 6, 0, 0, 5, 15, 0, 15, 1};
    static const uint8_t snapshots[] = {0x11, 0x40, 0, 0, 20, 8, 10, 1, 0, 0, 20, 12, 3, 0, 20, 6, 3, 0, 20,
                                        6, 0, 0, 20, 8, 3, 0, 0x03, 10, 60, 20, 9, 3, 0, 0x07, 10, 60, 20,
                                        11, 1, 0, 20, 15, 0};
    static const uint8_t batch[] = {0x22, 0x81, 5, 4, 0, 1, 7, 1, 2, 9, 2, 3, 3, 1, 1, 4, 11,
                                    15, 0, 15, 1, 8, 0, 0, 0x0b, 1, 30, 5, 9, 0, 1, 0x0d, 2, 40, 40};
    uint8_t fill[256];
    size_t n = 0;
    fill[n++] = 0x05; /* config */
    fill[n++] = 0x13;
    for (int i = 0; i < 60 && n + 3 <= 200; i++) {
        fill[n++] = 0;                  /* put */
        fill[n++] = (uint8_t)(i & 1);   /* keyspace */
        fill[n++] = (uint8_t)(i * 5);   /* key */
        fill[n++] = 0xff;               /* a big value */
        if (i % 20 == 19) {
            fill[n++] = 12; /* flush */
            fill[n++] = (uint8_t)(i & 1);
        }
    }
    uint8_t tail[] = {13, 0, 13, 1, 14, 15, 0, 15, 1};
    memcpy(fill + n, tail, sizeof tail);
    n += sizeof tail;
    static const uint8_t reopen[] = {0x02, 0x07, 0, 0, 1, 2, 1, 0, 3, 3, 10, 2, 14, 6, 0, 0, 1, 5, 2,
                                     0, 9, 1, 3, 6, 12, 0, 14, 8, 0, 0, 0x0c, 0, 0, 9, 15, 0};
    emit("ops", "basic", basic, sizeof basic);
    emit("ops", "snapshots", snapshots, sizeof snapshots);
    emit("ops", "batch-bounds", batch, sizeof batch);
    emit("ops", "fill-flush-compact", fill, n);
    emit("ops", "reopen", reopen, sizeof reopen);
    emit("ops", "empty", "", 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz-gen-corpus <corpus-dir>\n");
        return 2;
    }
    out_root = argv[1];
    if (mkdir(out_root, 0755) != 0 && errno != EEXIST) die(out_root, 0);
    char *tmp = tu_mkdtemp("fuzz-corpus");
    if (!tmp) die("mkdtemp", 0);
    gen_journals(tmp);
    gen_tables(tmp);
    gen_manifests(tmp);
    gen_ops();
    tu_rmtree(tmp);
    free(tmp);
    return 0;
}
