/* tind_db_verify: clean databases of every compaction strategy and
 * compression check out with sensible counts; a flipped bit in each kind of
 * block and record, a missing table and a table of the wrong size are each
 * reported with the right file and offset; it runs beside a busy writer. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/expect.h"
#include "tests/support/testutil.h"
#include "tind.h"

static char *v_dir;
static tind_db *v_db;

static void v_setup(void)
{
    v_dir = tu_mkdtemp("verify");
    cr_assert_not_null(v_dir);
    v_db = NULL;
}

static void v_teardown(void)
{
    if (v_db) tind_close(v_db);
    v_db = NULL;
    tu_rmtree(v_dir);
    free(v_dir);
}

TestSuite(verify, .init = v_setup, .fini = v_teardown, .timeout = 120);

static tind_keyspace *v_open(int compaction, int compression)
{
    tind_options o;
    tind_options_init(&o);
    o.journal_max_bytes = 64 << 10;
    EXPECT_OK(tind_open(v_dir, &o, &v_db));
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.compaction = compaction;
    for (int l = 0; l < TIND_LEVELS; l++) ko.compression[l] = compression;
    ko.memtable_bytes = 64 << 10;
    ko.block_size = 1024;
    tind_keyspace *ks;
    EXPECT_OK(tind_keyspace_open(v_db, "main", &ko, &ks));
    return ks;
}

static void v_key(char *k, size_t cap, unsigned i) { snprintf(k, cap, "key%08u", i); }

/* Writes keys [from, to) with values derived from their number. */
static void v_fill(tind_keyspace *ks, unsigned from, unsigned to)
{
    char k[32], val[100];
    for (unsigned i = from; i < to; i++) {
        v_key(k, sizeof k, i);
        tu_fill(val, sizeof val, i);
        EXPECT_OK(tind_put(ks, k, strlen(k), val, sizeof val));
    }
}

/* The path of the keyspace's folder (the first keyspace is number 1). */
static void v_ks_file(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/keyspaces/1/%s", v_dir, name);
}

/* The path of the keyspace's first table (by name order) and its size. */
static uint64_t v_first_table(char *out, size_t cap)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/keyspaces/1", v_dir);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    char best[300] = "";
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tbl") && (!best[0] || strcmp(e->d_name, best) < 0))
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    cr_assert(best[0], "no table in %s", dir);
    snprintf(out, cap, "%s/%s", dir, best);
    struct stat st;
    cr_assert_eq(stat(out, &st), 0);
    return (uint64_t)st.st_size;
}

static uint64_t v_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void v_read_at(const char *path, uint64_t off, void *b, size_t n)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "open %s", path);
    cr_assert_eq(pread(fd, b, n, (off_t)off), (ssize_t)n, "read %s at %llu", path, (unsigned long long)off);
    close(fd);
}

static void v_flip(const char *path, uint64_t off, unsigned bit)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0, "open %s", path);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= (uint8_t)(1u << bit);
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* Verifies and expects exactly one problem, in `path` at `off`. */
static void v_expect_problem(const char *path, uint64_t off)
{
    struct tind_verify_report r;
    EXPECT_RC(tind_db_verify(v_db, &r), TIND_CORRUPTION);
    cr_assert_eq(r.problems, 1, "problems %llu: %s", (unsigned long long)r.problems, r.first_message);
    cr_assert_str_eq(r.first_file, path, "message: %s", r.first_message);
    cr_assert_eq(r.first_offset, off, "offset %llu, want %llu: %s", (unsigned long long)r.first_offset,
                 (unsigned long long)off, r.first_message);
    cr_assert_str_eq(tind_last_error(), r.first_message);
    char want[64];
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)off);
    cr_assert(strstr(r.first_message, path) && strstr(r.first_message, want), "message: %s", r.first_message);
}

static void v_clean(int compaction, int compression)
{
    tind_keyspace *ks = v_open(compaction, compression);
    const unsigned n = 3000;
    v_fill(ks, 0, n / 2);
    EXPECT_OK(tind_keyspace_flush(ks));
    v_fill(ks, n / 2, n);
    EXPECT_OK(tind_keyspace_compact(ks));

    struct tind_verify_report r;
    memset(&r, 0xab, sizeof r);
    EXPECT_OK(tind_db_verify(v_db, &r));
    cr_assert_eq(r.problems, 0);
    cr_assert_eq(r.keyspaces, 1);
    cr_assert_geq(r.tables, 1);
    cr_assert_eq(r.entries, n, "entries %llu", (unsigned long long)r.entries);
    cr_assert_geq(r.blocks, r.tables * 3 + n * 120 / 1024 / 2, "blocks %llu", (unsigned long long)r.blocks);
    cr_assert_geq(r.manifest_records, 1);
    cr_assert_geq(r.journals, 1);
    cr_assert_gt(r.bytes_read, 0);
    cr_assert_str_eq(r.first_file, "");
    cr_assert_str_eq(tind_last_error(), "");

    /* A reopened database, with journal records to replay, checks out too. */
    v_fill(ks, n, n + 100);
    EXPECT_OK(tind_close(v_db));
    v_db = NULL;
    tind_keyspace *ks2 = v_open(compaction, compression);
    (void)ks2;
    EXPECT_OK(tind_db_verify(v_db, &r));
    cr_assert_geq(r.journal_records, 1, "the 100 writes since the flush are in the journal");
    EXPECT_OK(tind_db_verify(v_db, NULL));
}

Test(verify, clean_leveled_none) { v_clean(TIND_COMPACTION_LEVELED, TIND_COMPRESSION_NONE); }
Test(verify, clean_leveled_lz4) { v_clean(TIND_COMPACTION_LEVELED, TIND_COMPRESSION_LZ4); }
Test(verify, clean_tiered_zstd) { v_clean(TIND_COMPACTION_TIERED, TIND_COMPRESSION_ZSTD); }
Test(verify, clean_tiered_none) { v_clean(TIND_COMPACTION_TIERED, TIND_COMPRESSION_NONE); }
Test(verify, clean_fifo_lz4) { v_clean(TIND_COMPACTION_FIFO, TIND_COMPRESSION_LZ4); }
Test(verify, clean_fifo_zstd) { v_clean(TIND_COMPACTION_FIFO, TIND_COMPRESSION_ZSTD); }

Test(verify, empty_database_and_null_handle)
{
    tind_options o;
    tind_options_init(&o);
    EXPECT_OK(tind_open(v_dir, &o, &v_db));
    struct tind_verify_report r;
    EXPECT_OK(tind_db_verify(v_db, &r));
    cr_assert_eq(r.keyspaces, 0);
    cr_assert_eq(r.tables, 0);
    cr_assert_eq(r.journals, 1);
    EXPECT_RC(tind_db_verify(NULL, &r), TIND_INVALID);
}

/* A database with one flushed table (and data blocks of 1 KiB), open. */
static uint64_t v_one_table(char *table, size_t cap)
{
    tind_keyspace *ks = v_open(TIND_COMPACTION_LEVELED, TIND_COMPRESSION_NONE);
    v_fill(ks, 0, 500);
    EXPECT_OK(tind_keyspace_flush(ks));
    EXPECT_OK(tind_db_verify(v_db, NULL));
    return v_first_table(table, cap);
}

Test(verify, flipped_bit_in_a_data_block)
{
    char t[PATH_MAX];
    v_one_table(t, sizeof t);
    /* Inside the first data block, which starts the file. */
    v_flip(t, 100, 3);
    v_expect_problem(t, 0);
    v_flip(t, 100, 3);
    EXPECT_OK(tind_db_verify(v_db, NULL));
}

Test(verify, flipped_bit_in_the_index_filter_footer_and_properties)
{
    char t[PATH_MAX];
    uint64_t size = v_one_table(t, sizeof t);
    uint8_t ft[72];
    v_read_at(t, size - 72, ft, sizeof ft);
    uint64_t index_off = v_get_u64(ft), filter_off = v_get_u64(ft + 16), filter_size = v_get_u64(ft + 24);
    uint64_t props_off = v_get_u64(ft + 32);
    cr_assert_gt(filter_size, 0, "the default options give tables a filter");

    v_flip(t, index_off + 1, 0);
    v_expect_problem(t, index_off);
    v_flip(t, index_off + 1, 0);
    EXPECT_OK(tind_db_verify(v_db, NULL));

    v_flip(t, filter_off + filter_size / 2, 7);
    v_expect_problem(t, filter_off);
    v_flip(t, filter_off + filter_size / 2, 7);

    v_flip(t, props_off + 2, 1);
    v_expect_problem(t, props_off);
    v_flip(t, props_off + 2, 1);

    v_flip(t, size - 72 + 20, 4); /* a footer field: the footer's checksum fails */
    v_expect_problem(t, size - 72);
    v_flip(t, size - 72 + 20, 4);
    EXPECT_OK(tind_db_verify(v_db, NULL));
}

Test(verify, flipped_bit_in_a_manifest_record)
{
    tind_keyspace *ks = v_open(TIND_COMPACTION_LEVELED, TIND_COMPRESSION_LZ4);
    v_fill(ks, 0, 200);
    EXPECT_OK(tind_keyspace_flush(ks));
    v_fill(ks, 200, 400);
    EXPECT_OK(tind_keyspace_flush(ks));
    char m[PATH_MAX];
    v_ks_file(m, sizeof m, "MANIFEST");
    uint8_t h[20];
    v_read_at(m, 0, h, sizeof h);
    uint64_t second = 20 + v_get_u64(h); /* the first flush's edit */
    v_read_at(m, second, h, sizeof h);
    uint64_t third = second + 20 + v_get_u64(h);

    v_flip(m, second + 25, 2); /* its payload */
    v_expect_problem(m, second);
    v_flip(m, second + 25, 2);
    v_flip(m, third + 3, 6); /* the last record's header */
    v_expect_problem(m, third);
    v_flip(m, third + 3, 6);
    EXPECT_OK(tind_db_verify(v_db, NULL));
}

Test(verify, flipped_bit_in_a_journal_record)
{
    tind_keyspace *ks = v_open(TIND_COMPACTION_LEVELED, TIND_COMPRESSION_LZ4);
    v_fill(ks, 0, 5);
    struct tind_db_stats st;
    EXPECT_OK(tind_db_stats(v_db, &st));
    cr_assert_eq(st.journal_files, 1);
    char j[PATH_MAX];
    snprintf(j, sizeof j, "%s/journals/%016llx.jnl", v_dir, 1ull);
    struct stat s;
    if (stat(j, &s) != 0) cr_skip_test("the first journal is not number 1");
    /* Records of 5 puts, each 20 + 13 + ops bytes; the header is 40. */
    uint8_t h[20];
    v_read_at(j, 40, h, sizeof h);
    uint64_t second = 40 + 20 + v_get_u64(h);
    v_flip(j, second + 30, 5); /* the second record's payload */
    v_expect_problem(j, second);
    v_flip(j, second + 30, 5);
    v_flip(j, 40 + 8, 0); /* the first record's header */
    v_expect_problem(j, 40);
    v_flip(j, 40 + 8, 0);
    v_flip(j, 20, 1); /* the file header */
    v_expect_problem(j, 0);
    v_flip(j, 20, 1);
    struct tind_verify_report r;
    EXPECT_OK(tind_db_verify(v_db, &r));
    cr_assert_eq(r.journal_records, 5);
}

/* A journal cut at a record boundary reads cleanly; its successor's header
 * (the last sequence number used before it began) shows the end it lost. */
Test(verify, journal_cut_at_a_record_boundary_before_its_successor_is_reported)
{
    tind_keyspace *ks = v_open(TIND_COMPACTION_LEVELED, TIND_COMPRESSION_LZ4);
    v_fill(ks, 0, 5);
    EXPECT_OK(tind_close(v_db));
    ks = v_open(TIND_COMPACTION_LEVELED, TIND_COMPRESSION_LZ4);
    v_fill(ks, 5, 8);
    EXPECT_OK(tind_db_verify(v_db, NULL));
    char j[PATH_MAX];
    snprintf(j, sizeof j, "%s/journals/%016llx.jnl", v_dir, 1ull);
    struct stat s;
    if (stat(j, &s) != 0) cr_skip_test("the first journal is not number 1");
    /* Its last record's start: records are 20 + payload bytes after the 40-byte header. */
    uint8_t h[20];
    uint64_t off = 40, last = 40;
    while (off < (uint64_t)s.st_size) {
        v_read_at(j, off, h, sizeof h);
        last = off;
        off += 20 + v_get_u64(h);
    }
    cr_assert_eq(truncate(j, (off_t)last), 0);
    v_expect_problem(j, last);
    cr_assert(strstr(tind_last_error(), "missing"), "%s", tind_last_error());
}

Test(verify, missing_table_and_table_of_the_wrong_size)
{
    char t[PATH_MAX];
    uint64_t size = v_one_table(t, sizeof t);
    cr_assert_eq(truncate(t, (off_t)size - 1), 0);
    v_expect_problem(t, size - 1);
    cr_assert_eq(truncate(t, (off_t)size + 10), 0);
    v_expect_problem(t, size);
    cr_assert_eq(unlink(t), 0);
    v_expect_problem(t, 0);
    cr_assert(strstr(tind_last_error(), "missing"), "%s", tind_last_error());
}

Test(verify, orphan_tables_are_counted_not_reported)
{
    char t[PATH_MAX], o[PATH_MAX];
    v_one_table(t, sizeof t);
    v_ks_file(o, sizeof o, "00000000000000ff.tbl");
    FILE *f = fopen(o, "w");
    cr_assert_not_null(f);
    fputs("junk", f);
    fclose(f);
    struct tind_verify_report r;
    EXPECT_OK(tind_db_verify(v_db, &r));
    cr_assert_eq(r.orphan_files, 1);
}

Test(verify, several_problems_are_counted_and_the_first_kept)
{
    char t[PATH_MAX];
    uint64_t size = v_one_table(t, sizeof t);
    char m[PATH_MAX];
    v_ks_file(m, sizeof m, "MANIFEST");
    v_flip(m, 30, 0);
    v_flip(t, size - 1, 0);
    struct tind_verify_report r;
    EXPECT_RC(tind_db_verify(v_db, &r), TIND_CORRUPTION);
    cr_assert_eq(r.problems, 2, "%llu: %s", (unsigned long long)r.problems, r.first_message);
    cr_assert_str_eq(r.first_file, m);
}

struct v_writer {
    tind_keyspace *ks;
    atomic_int stop;
    int rc;
};

static void *v_writer_main(void *arg)
{
    struct v_writer *w = arg;
    char k[32], val[200];
    unsigned i = 0;
    while (!atomic_load(&w->stop) && w->rc == TIND_OK) {
        snprintf(k, sizeof k, "w%07u", i % 5000);
        tu_fill(val, sizeof val, i);
        w->rc = tind_put(w->ks, k, strlen(k), val, sizeof val);
        if (w->rc == TIND_OK && i % 3000 == 2999) w->rc = tind_keyspace_flush(w->ks);
        if (w->rc == TIND_OK && i % 9000 == 8999) w->rc = tind_keyspace_compact(w->ks);
        i++;
    }
    return NULL;
}

Test(verify, runs_beside_writes_flushes_and_compactions)
{
    tind_keyspace *ks = v_open(TIND_COMPACTION_LEVELED, TIND_COMPRESSION_LZ4);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.compaction = TIND_COMPACTION_TIERED;
    ko.memtable_bytes = 64 << 10;
    tind_keyspace *ks2;
    EXPECT_OK(tind_keyspace_open(v_db, "second", &ko, &ks2));
    struct v_writer w[2] = {{.ks = ks}, {.ks = ks2}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        atomic_init(&w[i].stop, 0);
        cr_assert_eq(pthread_create(&th[i], NULL, v_writer_main, &w[i]), 0);
    }
    uint64_t tables = 0, records = 0;
    for (int round = 0; round < 30; round++) {
        struct tind_verify_report r;
        int rc = tind_db_verify(v_db, &r);
        if (rc != TIND_OK) {
            for (int i = 0; i < 2; i++) atomic_store(&w[i].stop, 1);
            for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
        }
        cr_assert_eq(rc, TIND_OK, "round %d: %s", round, tind_last_error());
        tables += r.tables;
        records += r.journal_records;
        usleep(20000);
    }
    for (int i = 0; i < 2; i++) atomic_store(&w[i].stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) cr_assert_eq(w[i].rc, TIND_OK, "writer %d: %s", i, tind_strerror(w[i].rc));
    cr_assert_gt(tables, 0);
    cr_assert_gt(records, 0);
    EXPECT_OK(tind_db_verify(v_db, NULL));
}
