/* Keyspace options (src/ks_options.c): OPTIONS files keep their bytes, every
 * field of the table survives a round trip, values that do not fit are damage. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/ks_options.h"
#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "tests/support/expect.h"
#include "tests/support/testutil.h"
#include "tind.h"

static char *g_dir;

static void kso_setup(void)
{
    g_dir = tu_mkdtemp("ksopt");
    cr_assert_not_null(g_dir, "mkdtemp failed");
}

static void kso_teardown(void)
{
    tu_rmtree(g_dir);
    free(g_dir);
}

TestSuite(ks_options, .init = kso_setup, .fini = kso_teardown);

/* ---- golden files ------------------------------------------------------------------ */

/* The OPTIONS file of keyspace 1 "plain", tind 0.1's default options (ZSTD
 * on the last level, since LZ4), as tind 0.1 wrote it. */
static const uint8_t golden_plain[] = {
    0x54, 0x49, 0x4e, 0x44, 0x4b, 0x53, 0x4f, 0x50, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05,
    0x70, 0x6c, 0x61, 0x69, 0x6e, 0x19, 0x01, 0x01, 0x02, 0x80, 0x80, 0x80, 0x20, 0x03, 0x04, 0x04, 0x80,
    0x20, 0x05, 0x10, 0x06, 0x0a, 0x07, 0x01, 0x07, 0x11, 0x07, 0x21, 0x07, 0x31, 0x07, 0x41, 0x07, 0x51,
    0x07, 0x62, 0x08, 0x06, 0x09, 0x00, 0x0a, 0x04, 0x0b, 0x0a, 0x0c, 0x80, 0x80, 0x80, 0x20, 0x0d, 0x04,
    0x0e, 0x00, 0x0f, 0x00, 0x10, 0x14, 0x11, 0x24, 0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 0x13, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x08, 0x14, 0x66, 0x31, 0x54, 0x0c, 0xb0, 0x61, 0x83,
};

/* Keyspace 2 "tuned", every field away from its default (golden_tuned_options). */
static const uint8_t golden_tuned[] = {
    0x54, 0x49, 0x4e, 0x44, 0x4b, 0x53, 0x4f, 0x50, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x05,
    0x74, 0x75, 0x6e, 0x65, 0x64, 0x19, 0x01, 0x04, 0x02, 0x80, 0x80, 0x40, 0x03, 0x02, 0x04, 0x80, 0x80,
    0x01, 0x05, 0x20, 0x06, 0x00, 0x07, 0x00, 0x07, 0x11, 0x07, 0x21, 0x07, 0x32, 0x07, 0x41, 0x07, 0x51,
    0x07, 0x61, 0x08, 0x26, 0x09, 0x02, 0x0a, 0x40, 0x0b, 0x08, 0x0c, 0x80, 0x80, 0xc0, 0x01, 0x0d, 0x06,
    0x0e, 0x80, 0x80, 0x80, 0x80, 0x80, 0xa0, 0x01, 0x0f, 0x80, 0xa3, 0x05, 0x10, 0x03, 0x11, 0x90, 0x4e,
    0x12, 0x80, 0x80, 0x40, 0x13, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x69, 0x66,
    0x59, 0xc2, 0xdd, 0xf4, 0x1c, 0x97,
};
/* In golden_tuned: the field count's offset, and where tag 16 (the first
 * field added after tind 0.1's first release of OPTIONS) begins. */
#define GOLDEN_TUNED_COUNT_AT 22
#define GOLDEN_TUNED_TAG16_AT 80

static void golden_tuned_options(tind_keyspace_options *ko)
{
    tind_keyspace_options_init(ko);
    ko->durability = TIND_DURABILITY_SYNC_ALL;
    ko->memtable_bytes = 1u << 20;
    ko->max_sealed_memtables = 2;
    ko->block_size = 16384;
    ko->restart_interval = 32;
    ko->bloom_bits_per_key = 0;
    ko->compression[0] = TIND_COMPRESSION_NONE;
    ko->compression[3] = TIND_COMPRESSION_ZSTD;
    ko->compression[6] = TIND_COMPRESSION_LZ4;
    ko->zstd_level = 19;
    ko->compaction = TIND_COMPACTION_FIFO;
    ko->l0_trigger = 64;
    ko->level_ratio = 8;
    ko->table_target_bytes = 3u << 20;
    ko->tier_width = 6;
    ko->fifo_max_bytes = UINT64_C(5) << 40;
    ko->fifo_ttl_seconds = 86400;
    ko->l0_slowdown_tables = 3;
    ko->l0_stop_tables = 10000;
    ko->pending_slowdown_bytes = 1u << 20;
    ko->pending_stop_bytes = UINT64_MAX;
}

static const char *options_path(uint32_t id)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/db/keyspaces/%u/OPTIONS", g_dir, id);
    return p;
}

static const char *db_path(void)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/db", g_dir);
    return p;
}

/* Checks that the OPTIONS file of keyspace id holds exactly want[0..n). */
static void expect_file(uint32_t id, const uint8_t *want, size_t n)
{
    FILE *f = fopen(options_path(id), "rb");
    cr_assert_not_null(f, "open %s", options_path(id));
    uint8_t got[1024];
    size_t gn = fread(got, 1, sizeof got, f);
    fclose(f);
    cr_assert_eq(gn, n, "keyspace %u: OPTIONS has %zu bytes, the golden file %zu: %s", id, gn, n, tu_hex(got, gn));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "keyspace %u: OPTIONS byte %zu is 0x%02x, golden 0x%02x: %s", id, i, got[i],
                     want[i], tu_hex(got, gn));
}

static void put_file(uint32_t id, const uint8_t *b, size_t n)
{
    FILE *f = fopen(options_path(id), "wb");
    cr_assert_not_null(f, "open %s", options_path(id));
    cr_assert_eq(fwrite(b, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* Field by field, naming the first that differs. */
#define KSO_EXPECT_PLAIN(name)                                                                               \
    cr_assert(got->name == want->name, "%s: option " #name " differs", what);
#define KSO_EXPECT_ZIGZAG(name) KSO_EXPECT_PLAIN(name)
#define KSO_EXPECT_LEVELS(name)                                                                              \
    for (int l = 0; l < TIND_LEVELS; l++)                                                                    \
        cr_assert(got->name[l] == want->name[l], "%s: option " #name "[%d] differs", what, l);
#define KSO_EXPECT(name, type, coding, tag, def, lo, hi, why, names) KSO_EXPECT_##coding(name)
static void expect_options(const tind_keyspace_options *got, const tind_keyspace_options *want, const char *what)
{
    KS_OPTIONS(KSO_EXPECT)
}

static void expect_stored(tind_db *db, const char *name, const tind_keyspace_options *want)
{
    tind_keyspace *ks;
    tind_keyspace_options got;
    EXPECT_OK(tind_keyspace_open(db, name, NULL, &ks));
    EXPECT_OK(tind_keyspace_get_options(ks, &got));
    expect_options(&got, want, name);
}

Test(ks_options, options_files_keep_the_bytes_tind_wrote_before)
{
    tind_db *db;
    tind_keyspace *ks;
    tind_keyspace_options plain, tuned;
    tind_keyspace_options_init(&plain);
    plain.compression[TIND_LEVELS - 1] = TIND_COMPRESSION_ZSTD;
    golden_tuned_options(&tuned);
    EXPECT_OK(tind_open(db_path(), NULL, &db));
    EXPECT_OK(tind_keyspace_open(db, "plain", &plain, &ks));
    EXPECT_OK(tind_keyspace_open(db, "tuned", &tuned, &ks));
    EXPECT_OK(tind_close(db));
    expect_file(1, golden_plain, sizeof golden_plain);
    expect_file(2, golden_tuned, sizeof golden_tuned);

    /* and the golden files, put back as they are, read as those options */
    put_file(1, golden_plain, sizeof golden_plain);
    put_file(2, golden_tuned, sizeof golden_tuned);
    EXPECT_OK(tind_open(db_path(), NULL, &db));
    expect_stored(db, "plain", &plain);
    expect_stored(db, "tuned", &tuned);
    EXPECT_OK(tind_close(db));
}

Test(ks_options, fields_missing_from_an_older_file_take_their_defaults)
{
    tind_db *db;
    tind_keyspace *ks;
    tind_keyspace_options tuned, want;
    golden_tuned_options(&tuned);
    EXPECT_OK(tind_open(db_path(), NULL, &db));
    EXPECT_OK(tind_keyspace_open(db, "plain", NULL, &ks));
    EXPECT_OK(tind_keyspace_open(db, "tuned", &tuned, &ks));
    EXPECT_OK(tind_close(db));
    /* golden_tuned as written before tags 16-19 existed */
    uint8_t old[GOLDEN_TUNED_TAG16_AT + 8];
    memcpy(old, golden_tuned, GOLDEN_TUNED_TAG16_AT);
    cr_assert_eq(old[GOLDEN_TUNED_COUNT_AT], 25);
    old[GOLDEN_TUNED_COUNT_AT] = 21;
    put_u64(old + GOLDEN_TUNED_TAG16_AT, checksum64(old, GOLDEN_TUNED_TAG16_AT));
    put_file(2, old, sizeof old);
    want = tuned;
    tind_keyspace_options def;
    tind_keyspace_options_init(&def);
    want.l0_slowdown_tables = def.l0_slowdown_tables;
    want.l0_stop_tables = def.l0_stop_tables;
    want.pending_slowdown_bytes = def.pending_slowdown_bytes;
    want.pending_stop_bytes = def.pending_stop_bytes;
    EXPECT_OK(tind_open(db_path(), NULL, &db));
    expect_stored(db, "tuned", &want);
    EXPECT_OK(tind_close(db));
}

/* ---- every field of the table -------------------------------------------------------- */

/* A value for each field (each level) other than its default, within its range. */
#define KSO_SET_PLAIN(name, hi) o.name = def.name < (hi) ? def.name + 1 : def.name - 1;
#define KSO_SET_ZIGZAG(name, hi) KSO_SET_PLAIN(name, hi)
#define KSO_SET_LEVELS(name, hi)                                                                             \
    for (int l = 0; l < TIND_LEVELS; l++) o.name[l] = def.name[l] < (hi) ? def.name[l] + 1 : def.name[l] - 1;
#define KSO_ROUND_TRIP(name, type, coding, tag, def_, lo, hi, why, names)                                    \
    {                                                                                                        \
        tind_keyspace_options o = def;                                                                       \
        KSO_SET_##coding(name, hi) round_trip(&o, &def, #name);                                              \
        fields++;                                                                                            \
    }

static void round_trip(const tind_keyspace_options *o, const tind_keyspace_options *def, const char *field)
{
    cr_assert_eq(ks_options_check(o), TIND_OK, "%s: the test's value is refused: %s", field, tind_last_error());
    cr_assert(!ks_options_same(o, def), "%s: the test's value is the default", field);
    uint8_t b[KS_OPTIONS_ENCODED_MAX];
    uint8_t *end = ks_options_encode(b, o);
    cr_assert_leq((size_t)(end - b), sizeof b);
    tind_keyspace_options got;
    memset(&got, 0x5a, sizeof got);
    cr_assert_eq(ks_options_decode("mem", b, b, end, &got), TIND_OK, "%s: %s", field, tind_last_error());
    expect_options(&got, o, field);
    cr_assert(ks_options_same(&got, o), "%s", field);
}

Test(ks_options, every_field_round_trips_with_a_value_not_its_default)
{
    tind_keyspace_options def;
    tind_keyspace_options_init(&def);
    int fields = 0;
    KS_OPTIONS(KSO_ROUND_TRIP)
    cr_assert_eq(fields, KS_OPTIONS_FIELDS);
    /* the defaults themselves, and a field count that matches what is written */
    uint8_t b[KS_OPTIONS_ENCODED_MAX];
    uint8_t *end = ks_options_encode(b, &def);
    uint32_t nf;
    cr_assert_not_null(get_varint32(b, end, &nf));
    cr_assert_eq(nf, KS_OPTIONS_RECORDS);
    tind_keyspace_options got;
    cr_assert_eq(ks_options_decode("mem", b, b, end, &got), TIND_OK, "%s", tind_last_error());
    cr_assert_eq(memcmp(&got, &def, sizeof got), 0, "decoded defaults differ from tind_keyspace_options_init's");
}

/* ---- damage ------------------------------------------------------------------------- */

/* An OPTIONS file of keyspace 1 "z" with one record, checksummed. */
static size_t one_record_file(uint8_t *b, uint32_t tag, uint64_t v)
{
    put_u64(b, UINT64_C(0x504f534b444e4954));
    put_u32(b + 8, 1);
    put_u32(b + 12, 1);
    b[16] = 1;
    b[17] = 'z';
    uint8_t *p = put_varint32(b + 18, 1);
    p = put_varint32(p, tag);
    p = put_varint64(p, v);
    put_u64(p, checksum64(b, (size_t)(p - b)));
    return (size_t)(p + 8 - b);
}

/* Regression: a zigzag-coded value (durability, zstd_level) was narrowed to
 * int unchecked, so 2^32 + 3 read as zstd_level 3 and a damaged file with a
 * good checksum opened with options nobody set. */
Test(ks_options, zigzag_value_past_int_is_damage_not_wrapped)
{
    tind_db *db;
    tind_keyspace *ks;
    EXPECT_OK(tind_open(db_path(), NULL, &db));
    EXPECT_OK(tind_keyspace_open(db, "z", NULL, &ks));
    EXPECT_OK(tind_close(db));
    uint8_t b[64];
    size_t n = one_record_file(b, 8, (UINT64_C(1) << 32 | 3) << 1);
    put_file(1, b, n);
    cr_assert_eq(tind_open(db_path(), NULL, &db), TIND_CORRUPTION, "zstd_level 2^32 + 3 opened");
    cr_assert(strstr(tind_last_error(), "option 8 out of range"), "%s", tind_last_error());
    /* the same value's low bits alone are a good zstd_level */
    n = one_record_file(b, 8, 3 << 1);
    put_file(1, b, n);
    EXPECT_OK(tind_open(db_path(), NULL, &db));
    EXPECT_OK(tind_close(db));
}
