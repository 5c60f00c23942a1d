/* Journal format, payload codec, reader and recovery.
 *
 * The writer (journal/writer.c) is not exercised here: journal files are
 * built byte by byte with the format functions and file_append, so that the
 * tests can cut, flip and splice them at will. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "journal/journal.h"
#include "journal/payload.h"
#include "src/util/buf.h"
#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "src/util/file.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t jt_rng(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* The seed of a randomized test: $TIND_SEED when set (decimal or 0x hex),
 * else one from the clock and the pid; printed so that a failure can be
 * replayed (the convention of tests/support's tu_seed). */
static uint64_t jt_seed(const char *test)
{
    const char *s = getenv("TIND_SEED");
    uint64_t seed;
    if (s && *s) {
        seed = strtoull(s, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t mix = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
        seed = jt_rng(&mix);
    }
    fprintf(stderr, "%s: seed %llu (replay with TIND_SEED=%llu)\n", test, (unsigned long long)seed,
            (unsigned long long)seed);
    return seed;
}

static void jt_mkdtemp(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/tind-journal-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void jt_rmtree(const char *dir)
{
    file_fault_clear();
    cr_assert_eq(file_remove_tree(dir), TIND_OK, "remove %s: %s", dir, err_msg());
}

static void jt_path(char *out, size_t cap, const char *dir, uint64_t number)
{
    char name[JOURNAL_NAME_LEN + 1];
    journal_file_name(name, number);
    snprintf(out, cap, "%s/%s", dir, name);
}

/* A journal file being built. */
struct jt_file {
    tfile *f;
    char path[PATH_MAX];
};

static void jt_create_raw(struct jt_file *w, const char *dir, uint64_t number)
{
    jt_path(w->path, sizeof w->path, dir, number);
    cr_assert_eq(file_open(w->path, FILE_WRITE | FILE_CREATE | FILE_TRUNC, &w->f), TIND_OK, "%s", err_msg());
}

static void jt_append(struct jt_file *w, const void *p, size_t n)
{
    cr_assert_eq(file_append(w->f, p, n), TIND_OK, "%s", err_msg());
}

/* Creates journal `number` whose header says `hdr_number`. */
static void jt_create_as(struct jt_file *w, const char *dir, uint64_t number, uint64_t hdr_number, uint64_t base_seq)
{
    jt_create_raw(w, dir, number);
    uint8_t h[JOURNAL_HEADER_SIZE];
    struct journal_header jh = {.number = hdr_number, .base_seq = base_seq};
    journal_header_encode(h, &jh);
    jt_append(w, h, sizeof h);
}

static void jt_create(struct jt_file *w, const char *dir, uint64_t number, uint64_t base_seq)
{
    jt_create_as(w, dir, number, number, base_seq);
}

/* Appends a record; returns its offset. */
static uint64_t jt_record(struct jt_file *w, const uint8_t *p, size_t n)
{
    uint64_t off = file_size(w->f);
    uint8_t h[JOURNAL_RECORD_HEADER];
    journal_record_header_encode(h, p, n);
    jt_append(w, h, sizeof h);
    jt_append(w, p, n);
    return off;
}

static void jt_close(struct jt_file *w)
{
    cr_assert_eq(file_close(w->f), TIND_OK, "%s", err_msg());
    w->f = NULL;
}

/* Deterministic payload bytes for record `id` of length n. */
static void jt_fill(uint8_t *p, size_t n, uint64_t id)
{
    uint64_t s = id * 1000003 + n;
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(jt_rng(&s) >> 56);
}

/* A one-op batch payload for record `id`. */
static void jt_batch(buf *b, uint64_t id, size_t vlen)
{
    char key[32];
    uint8_t val[512];
    cr_assert(vlen <= sizeof val);
    int kl = snprintf(key, sizeof key, "key-%06llu", (unsigned long long)id);
    jt_fill(val, vlen, id);
    cr_assert_eq(payload_batch_init(b), TIND_OK);
    cr_assert_eq(payload_batch_add(b, PAYLOAD_OP_PUT, 7, key, (size_t)kl, val, vlen), TIND_OK, "%s", err_msg());
    payload_stamp_seq(b->p, id + 1);
}

static void jt_flip(const char *path, uint64_t off, uint8_t mask)
{
    FILE *fp = fopen(path, "r+b");
    cr_assert_not_null(fp);
    cr_assert_eq(fseeko(fp, (off_t)off, SEEK_SET), 0);
    int c = fgetc(fp);
    cr_assert_neq(c, EOF);
    cr_assert_eq(fseeko(fp, (off_t)off, SEEK_SET), 0);
    fputc(c ^ mask, fp);
    cr_assert_eq(fclose(fp), 0);
}

static void jt_cut(const char *path, uint64_t size)
{
    tfile *f;
    cr_assert_eq(file_open(path, FILE_WRITE, &f), TIND_OK);
    cr_assert_eq(file_truncate(f, size), TIND_OK);
    cr_assert_eq(file_close(f), TIND_OK);
}

static uint64_t jt_size(const char *path)
{
    uint64_t n;
    cr_assert_eq(file_stat_size(path, &n), TIND_OK, "%s", err_msg());
    return n;
}

/* What a replay saw. */
struct jt_seen {
    size_t n, cap;
    struct jt_rec {
        char path[PATH_MAX];
        uint64_t offset, sum;
        size_t len;
    } *recs;
    size_t fail_at; /* return fail_rc at this record (0-based); SIZE_MAX: never */
    int fail_rc;
};

static void jt_seen_init(struct jt_seen *s)
{
    memset(s, 0, sizeof *s);
    s->fail_at = SIZE_MAX;
}

static int jt_collect(void *ctx, const char *path, uint64_t offset, const uint8_t *payload, size_t len)
{
    struct jt_seen *s = ctx;
    if (s->n == s->fail_at) return s->fail_rc;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->recs = realloc(s->recs, s->cap * sizeof *s->recs);
        cr_assert_not_null(s->recs);
    }
    struct jt_rec *r = &s->recs[s->n++];
    snprintf(r->path, sizeof r->path, "%s", path);
    r->offset = offset;
    r->len = len;
    r->sum = checksum64(payload, len);
    return TIND_OK;
}

static void jt_seen_free(struct jt_seen *s)
{
    free(s->recs);
    jt_seen_init(s);
}

/* ---- format: file header ------------------------------------------------------------ */

Test(journal_format, header_round_trip)
{
    const uint64_t vals[] = {0, 1, 0x7f, 0x1234567890abcdefULL, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        for (size_t j = 0; j < sizeof vals / sizeof *vals; j++) {
            struct journal_header in = {.number = vals[i], .base_seq = vals[j]}, out = {0, 0};
            uint8_t h[JOURNAL_HEADER_SIZE];
            journal_header_encode(h, &in);
            cr_assert_eq(get_u64(h), JOURNAL_MAGIC);
            cr_assert_eq(memcmp(h, "TINDJRNL", 8), 0, "magic bytes spell TINDJRNL");
            cr_assert_eq(get_u32(h + 8), JOURNAL_VERSION);
            cr_assert_eq(get_u32(h + 12), 0u);
            cr_assert_eq(get_u64(h + 16), vals[i]);
            cr_assert_eq(get_u64(h + 24), vals[j]);
            cr_assert_eq(get_u64(h + 32), checksum64(h, 32));
            cr_assert_eq(journal_header_decode(h, sizeof h, "x.jnl", &out), TIND_OK, "%s", err_msg());
            cr_assert_eq(out.number, in.number);
            cr_assert_eq(out.base_seq, in.base_seq);
        }
    }
}

Test(journal_format, header_truncated_at_every_length)
{
    uint8_t h[JOURNAL_HEADER_SIZE];
    struct journal_header in = {.number = 5, .base_seq = 99}, out;
    journal_header_encode(h, &in);
    for (size_t n = 0; n < JOURNAL_HEADER_SIZE; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches an overread */
        memcpy(copy, h, n);
        err_clear();
        cr_assert_eq(journal_header_decode(copy, n, "/d/0000000000000005.jnl", &out), TIND_CORRUPTION, "n=%zu", n);
        cr_assert_not_null(strstr(err_msg(), "/d/0000000000000005.jnl"), "message: %s", err_msg());
        cr_assert_not_null(strstr(err_msg(), "offset 0"), "message: %s", err_msg());
        cr_assert_not_null(strstr(err_msg(), "truncated"), "message: %s", err_msg());
        free(copy);
    }
}

Test(journal_format, header_every_bit_flip_is_caught)
{
    uint8_t h[JOURNAL_HEADER_SIZE];
    struct journal_header in = {.number = 0xabc, .base_seq = 12345}, out;
    journal_header_encode(h, &in);
    for (size_t bit = 0; bit < JOURNAL_HEADER_SIZE * 8; bit++) {
        h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(journal_header_decode(h, sizeof h, "p", &out), TIND_CORRUPTION, "bit %zu", bit);
        h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    cr_assert_eq(journal_header_decode(h, sizeof h, "p", &out), TIND_OK);
}

/* A header that is well formed apart from one field, checksum recomputed. */
static int jt_decode_with(size_t field_off, size_t width, uint64_t v, const char **msg)
{
    uint8_t h[JOURNAL_HEADER_SIZE];
    struct journal_header in = {.number = 1, .base_seq = 2}, out;
    journal_header_encode(h, &in);
    if (width == 8) put_u64(h + field_off, v);
    else put_u32(h + field_off, (uint32_t)v);
    put_u64(h + 32, checksum64(h, 32));
    int rc = journal_header_decode(h, sizeof h, "/j/x.jnl", &out);
    *msg = err_msg();
    return rc;
}

Test(journal_format, header_bad_fields)
{
    const char *msg;
    cr_assert_eq(jt_decode_with(0, 8, 0x4c4e524a444e4955ULL, &msg), TIND_CORRUPTION);
    cr_assert_not_null(strstr(msg, "magic"), "%s", msg);
    cr_assert_eq(jt_decode_with(8, 4, 2, &msg), TIND_CORRUPTION);
    cr_assert_not_null(strstr(msg, "version"), "%s", msg);
    cr_assert_eq(jt_decode_with(8, 4, 0, &msg), TIND_CORRUPTION);
    cr_assert_eq(jt_decode_with(12, 4, 1, &msg), TIND_CORRUPTION);
    cr_assert_not_null(strstr(msg, "reserved"), "%s", msg);
    cr_assert_not_null(strstr(msg, "/j/x.jnl offset 0"), "%s", msg);

    uint8_t h[JOURNAL_HEADER_SIZE];
    struct journal_header in = {.number = 1, .base_seq = 2}, out;
    journal_header_encode(h, &in);
    put_u64(h + 32, get_u64(h + 32) + 1);
    cr_assert_eq(journal_header_decode(h, sizeof h, "/j/x.jnl", &out), TIND_CORRUPTION);
    cr_assert_not_null(strstr(err_msg(), "checksum"), "%s", err_msg());
    memset(h, 0, sizeof h);
    cr_assert_eq(journal_header_decode(h, sizeof h, "/j/x.jnl", &out), TIND_CORRUPTION);
}

Test(journal_format, record_header_layout)
{
    uint8_t p[300], h[JOURNAL_RECORD_HEADER];
    jt_fill(p, sizeof p, 3);
    journal_record_header_encode(h, p, sizeof p);
    cr_assert_eq(get_u64(h), sizeof p);
    cr_assert_eq(get_u64(h + 8), checksum64(p, sizeof p));
    cr_assert_eq(get_u32(h + 16), (uint32_t)checksum64(h, 16));
}

/* ---- format: names ------------------------------------------------------------ */

Test(journal_format, name_round_trip)
{
    const uint64_t vals[] = {0, 1, 9, 10, 15, 16, 0xabcdef, 0x0123456789abcdefULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        char name[JOURNAL_NAME_LEN + 8];
        memset(name, 'x', sizeof name);
        journal_file_name(name, vals[i]);
        cr_assert_eq(strlen(name), JOURNAL_NAME_LEN, "%s", name);
        uint64_t back = 42;
        cr_assert_eq(journal_parse_name(name, &back), 1, "%s", name);
        cr_assert_eq(back, vals[i]);
    }
    char name[JOURNAL_NAME_LEN + 1];
    journal_file_name(name, 0xabcdef);
    cr_assert_str_eq(name, "0000000000abcdef.jnl");
    journal_file_name(name, UINT64_MAX);
    cr_assert_str_eq(name, "ffffffffffffffff.jnl");
}

Test(journal_format, name_order_is_numeric_order)
{
    char a[JOURNAL_NAME_LEN + 1], b[JOURNAL_NAME_LEN + 1];
    const uint64_t vals[] = {0, 1, 9, 10, 15, 16, 255, 256, 0xffffffffULL, 0x100000000ULL, UINT64_MAX};
    for (size_t i = 0; i + 1 < sizeof vals / sizeof *vals; i++) {
        journal_file_name(a, vals[i]);
        journal_file_name(b, vals[i + 1]);
        cr_assert_lt(strcmp(a, b), 0, "%s !< %s", a, b);
    }
}

Test(journal_format, name_parse_rejects)
{
    const char *bad[] = {
        "",
        ".jnl",
        "000000000000001.jnl",   /* 15 digits */
        "00000000000000001.jnl", /* 17 digits */
        "000000000000000A.jnl",  /* upper case: not a name tind writes */
        "000000000000000g.jnl",
        "-000000000000001.jnl",
        "+000000000000001.jnl",
        " 000000000000001.jnl",
        "0000000000000001.jnl.tmp",
        "0000000000000001.JNL",
        "0000000000000001.jnk",
        "0000000000000001jnl",
        "0000000000000001",
        "0x00000000000001.jnl",
        "MANIFEST",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t n = 77;
        cr_assert_eq(journal_parse_name(bad[i], &n), 0, "accepted \"%s\"", bad[i]);
        cr_assert_eq(n, 77u, "\"%s\" wrote the number", bad[i]);
    }
}

/* ---- payloads ------------------------------------------------------------------- */

struct jt_op {
    unsigned kind;
    uint32_t ks;
    uint8_t key[300];
    size_t klen;
    uint8_t val[700];
    size_t vlen;
};

static void jt_random_op(struct jt_op *op, uint64_t *s)
{
    op->kind = jt_rng(s) % 3 ? PAYLOAD_OP_PUT : PAYLOAD_OP_DELETE;
    uint64_t r = jt_rng(s);
    op->ks = r % 4 == 0 ? UINT32_MAX : r % 4 == 1 ? (uint32_t)(jt_rng(s) % 200) : (uint32_t)jt_rng(s);
    op->klen = 1 + jt_rng(s) % sizeof op->key;
    for (size_t i = 0; i < op->klen; i++) op->key[i] = (uint8_t)jt_rng(s);
    op->vlen = op->kind == PAYLOAD_OP_PUT ? jt_rng(s) % sizeof op->val : 0;
    if (op->kind == PAYLOAD_OP_PUT && jt_rng(s) % 4 == 0) op->vlen = 0;
    for (size_t i = 0; i < op->vlen; i++) op->val[i] = (uint8_t)jt_rng(s);
}

Test(journal_payload, batch_round_trip)
{
    uint64_t seed = jt_seed("journal_payload::batch_round_trip");
    uint64_t s = seed;
    buf b;
    buf_init(&b);
    static struct jt_op ops[64];
    for (int round = 0; round < 50; round++) {
        uint32_t n = (uint32_t)(jt_rng(&s) % 64);
        cr_assert_eq(payload_batch_init(&b), TIND_OK);
        for (uint32_t i = 0; i < n; i++) {
            jt_random_op(&ops[i], &s);
            cr_assert_eq(payload_batch_add(&b, ops[i].kind, ops[i].ks, ops[i].key, ops[i].klen, ops[i].val,
                                           ops[i].vlen),
                         TIND_OK, "seed %llu: %s", (unsigned long long)seed, err_msg());
        }
        cr_assert_eq(payload_batch_count(b.p), n);
        uint64_t seqv = jt_rng(&s) % (PAYLOAD_SEQ_MAX - 100);
        payload_stamp_seq(b.p, seqv);

        unsigned type = 0;
        cr_assert_eq(payload_type(b.p, b.len, &type), TIND_OK);
        cr_assert_eq(type, (unsigned)JPAYLOAD_BATCH);
        uint64_t seq = 0;
        uint32_t count = 0;
        struct payload_reader r;
        cr_assert_eq(payload_batch_open(b.p, b.len, &seq, &count, &r), TIND_OK, "%s", err_msg());
        cr_assert_eq(seq, seqv);
        cr_assert_eq(count, n);
        for (uint32_t i = 0; i < n; i++) {
            struct payload_op op;
            cr_assert_eq(payload_batch_next(&r, &op), TIND_OK, "seed %llu op %u: %s", (unsigned long long)seed, i,
                         err_msg());
            cr_assert_eq(op.kind, ops[i].kind);
            cr_assert_eq(op.keyspace, ops[i].ks);
            cr_assert_eq(op.klen, ops[i].klen);
            cr_assert_eq(memcmp(op.key, ops[i].key, op.klen), 0);
            cr_assert_eq(op.vlen, ops[i].vlen);
            if (op.kind == PAYLOAD_OP_PUT) {
                cr_assert_not_null(op.val);
                cr_assert_eq(memcmp(op.val, ops[i].val, op.vlen), 0);
            }
        }
        struct payload_op op;
        cr_assert_eq(payload_batch_next(&r, &op), TIND_NOT_FOUND);
        cr_assert_eq(payload_batch_next(&r, &op), TIND_NOT_FOUND);
    }
    buf_free(&b);
}

Test(journal_payload, batch_layout_bytes)
{
    buf b;
    buf_init(&b);
    cr_assert_eq(payload_batch_init(&b), TIND_OK);
    cr_assert_eq(b.len, PAYLOAD_BATCH_HEADER);
    cr_assert_eq(payload_batch_add(&b, PAYLOAD_OP_PUT, 300, "ab", 2, "xyz", 3), TIND_OK);
    cr_assert_eq(payload_batch_add(&b, PAYLOAD_OP_DELETE, 1, "c", 1, "ignored", 7), TIND_OK);
    payload_stamp_seq(b.p, 0x0102030405060708ULL);
    const uint8_t want[] = {
        1,                                              /* type */
        8, 7, 6, 5, 4, 3, 2, 1,                         /* seq, little-endian */
        2, 0, 0, 0,                                     /* count */
        1, 0xac, 0x02, 2, 'a', 'b', 3, 'x', 'y', 'z',   /* PUT ks=300 */
        0, 1, 1, 'c',                                   /* DELETE: no value */
    };
    cr_assert_eq(b.len, sizeof want);
    cr_assert_eq(memcmp(b.p, want, sizeof want), 0);

    cr_assert_eq(payload_drop_init(&b, 300), TIND_OK);
    const uint8_t drop[] = {2, 0xac, 0x02};
    cr_assert_eq(b.len, sizeof drop);
    cr_assert_eq(memcmp(b.p, drop, sizeof drop), 0);
    buf_free(&b);
}

Test(journal_payload, empty_batch)
{
    buf b;
    buf_init(&b);
    cr_assert_eq(payload_batch_init(&b), TIND_OK);
    uint64_t seq;
    uint32_t count = 9;
    struct payload_reader r;
    struct payload_op op;
    cr_assert_eq(payload_batch_open(b.p, b.len, &seq, &count, &r), TIND_OK);
    cr_assert_eq(count, 0u);
    cr_assert_eq(payload_batch_next(&r, &op), TIND_NOT_FOUND);
    buf_free(&b);
}

Test(journal_payload, batch_add_rejects_bad_arguments)
{
    buf b;
    buf_init(&b);
    uint8_t big[TIND_MAX_KEY_BYTES + 1];
    memset(big, 'k', sizeof big);
    cr_assert_eq(payload_batch_add(&b, PAYLOAD_OP_PUT, 1, "k", 1, "v", 1), TIND_INVALID, "not a batch yet");
    cr_assert_eq(payload_batch_init(&b), TIND_OK);
    cr_assert_eq(payload_batch_add(&b, PAYLOAD_OP_PUT, 1, "k", 0, "v", 1), TIND_INVALID);
    cr_assert_eq(payload_batch_add(&b, PAYLOAD_OP_PUT, 1, big, sizeof big, "v", 1), TIND_INVALID);
    cr_assert_eq(payload_batch_add(&b, 2, 1, "k", 1, "v", 1), TIND_INVALID);
    cr_assert_eq(payload_batch_add(&b, 0xff, 1, "k", 1, "v", 1), TIND_INVALID);
    cr_assert_eq(payload_batch_count(b.p), 0u);
    cr_assert_eq(b.len, PAYLOAD_BATCH_HEADER, "a refused op leaves no bytes");
    cr_assert_eq(payload_batch_add(&b, PAYLOAD_OP_PUT, 1, big, TIND_MAX_KEY_BYTES, "v", 1), TIND_OK);
    cr_assert_eq(payload_batch_count(b.p), 1u);
    buf_free(&b);
}

/* Decodes a whole batch; TIND_OK only if every op and the end are clean. */
static int jt_decode_batch(const uint8_t *p, size_t n, uint32_t *ops_out)
{
    uint64_t seq;
    uint32_t count, ops = 0;
    struct payload_reader r;
    struct payload_op op;
    int rc = payload_batch_open(p, n, &seq, &count, &r);
    if (rc) return rc;
    while ((rc = payload_batch_next(&r, &op)) == TIND_OK) {
        ops++;
        cr_assert(op.kind == PAYLOAD_OP_PUT || op.kind == PAYLOAD_OP_DELETE);
        cr_assert(op.klen >= 1 && op.klen <= TIND_MAX_KEY_BYTES);
        cr_assert(op.key >= p && op.key + op.klen <= p + n, "key outside the payload");
        if (op.kind == PAYLOAD_OP_PUT) cr_assert(op.val >= p && op.val + op.vlen <= p + n, "value outside the payload");
        cr_assert_leq(ops, count);
    }
    if (ops_out) *ops_out = ops;
    if (rc == TIND_NOT_FOUND) return ops == count ? TIND_OK : -100;
    return rc;
}

Test(journal_payload, batch_truncated_at_every_length)
{
    uint64_t s = jt_seed("journal_payload::batch_truncated_at_every_length");
    buf b;
    buf_init(&b);
    cr_assert_eq(payload_batch_init(&b), TIND_OK);
    static struct jt_op op;
    for (int i = 0; i < 12; i++) {
        jt_random_op(&op, &s);
        if (op.klen > 40) op.klen = 40;
        if (op.vlen > 40) op.vlen = 40;
        if (i == 3) op.ks = 1u << 30; /* a multi-byte varint */
        cr_assert_eq(payload_batch_add(&b, op.kind, op.ks, op.key, op.klen, op.val, op.vlen), TIND_OK);
    }
    cr_assert_eq(jt_decode_batch(b.p, b.len, NULL), TIND_OK);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.p, n);
        int rc = jt_decode_batch(copy, n, NULL);
        cr_assert_eq(rc, TIND_CORRUPTION, "prefix of %zu of %zu bytes decoded with %d", n, b.len, rc);
        free(copy);
    }
    /* And one extra byte is trailing garbage. */
    cr_assert_eq(buf_append(&b, "", 1), TIND_OK);
    cr_assert_eq(jt_decode_batch(b.p, b.len, NULL), TIND_CORRUPTION);
    cr_assert_not_null(strstr(err_msg(), "trailing"), "%s", err_msg());
    buf_free(&b);
}

/* Builds a batch from raw op bytes with the given count. */
static void jt_raw_batch(buf *b, uint32_t count, const uint8_t *ops, size_t n)
{
    buf_clear(b);
    uint8_t h[PAYLOAD_BATCH_HEADER] = {JPAYLOAD_BATCH};
    put_u64(h + 1, 10);
    put_u32(h + 9, count);
    cr_assert_eq(buf_append(b, h, sizeof h), TIND_OK);
    cr_assert_eq(buf_append(b, ops, n), TIND_OK);
}

Test(journal_payload, batch_malformed)
{
    buf b;
    buf_init(&b);
    struct {
        const char *what;
        uint32_t count;
        uint8_t ops[16];
        size_t n;
        int rc;
    } cases[] = {
        {"good put", 1, {1, 0, 1, 'k', 1, 'v'}, 6, TIND_OK},
        {"good delete", 1, {0, 0, 1, 'k'}, 4, TIND_OK},
        {"good put, empty value", 1, {1, 0, 1, 'k', 0}, 5, TIND_OK},
        {"kind 2", 1, {2, 0, 1, 'k', 1, 'v'}, 6, TIND_CORRUPTION},
        {"kind 0xff", 1, {0xff, 0, 1, 'k', 1, 'v'}, 6, TIND_CORRUPTION},
        {"klen 0", 1, {1, 0, 0, 1, 'v', 0}, 6, TIND_CORRUPTION},
        {"klen 65536", 1, {0, 0, 0x80, 0x80, 0x04, 'k', 'k', 'k'}, 8, TIND_CORRUPTION},
        {"klen past end", 1, {0, 0, 5, 'k', 'k'}, 5, TIND_CORRUPTION},
        {"vlen past end", 1, {1, 0, 1, 'k', 9, 'v'}, 6, TIND_CORRUPTION},
        {"keyspace varint over 32 bits", 1, {0, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 'k'}, 8, TIND_CORRUPTION},
        {"overlong varint", 1, {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 'k'}, 14,
         TIND_CORRUPTION},
        {"vlen varint truncated", 1, {1, 0, 1, 'k', 0x80}, 5, TIND_CORRUPTION},
        {"delete followed by a value is trailing bytes", 1, {0, 0, 1, 'k', 1, 'v'}, 6, TIND_CORRUPTION},
        {"count too small", 1, {0, 0, 1, 'k', 0, 0, 1, 'k'}, 8, TIND_CORRUPTION},
        {"count too large", 3, {0, 0, 1, 'k', 0, 0, 1, 'k'}, 8, TIND_CORRUPTION},
        {"count that cannot fit", 0xffffffffu, {0, 0, 1, 'k'}, 4, TIND_CORRUPTION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        jt_raw_batch(&b, cases[i].count, cases[i].ops, cases[i].n);
        uint8_t *copy = malloc(b.len);
        memcpy(copy, b.p, b.len);
        int rc = jt_decode_batch(copy, b.len, NULL);
        cr_assert_eq(rc, cases[i].rc, "%s: got %d (%s)", cases[i].what, rc, err_msg());
        free(copy);
    }

    /* The header itself. */
    uint64_t seq;
    uint32_t count;
    struct payload_reader r;
    jt_raw_batch(&b, 0, NULL, 0);
    b.p[0] = JPAYLOAD_DROP_KEYSPACE;
    cr_assert_eq(payload_batch_open(b.p, b.len, &seq, &count, &r), TIND_CORRUPTION);
    /* Sequence numbers past the 56 bits of a tag. */
    uint8_t del[] = {0, 0, 1, 'k', 0, 0, 1, 'k'};
    jt_raw_batch(&b, 2, del, sizeof del);
    payload_stamp_seq(b.p, PAYLOAD_SEQ_MAX - 1);
    cr_assert_eq(payload_batch_open(b.p, b.len, &seq, &count, &r), TIND_OK, "%s", err_msg());
    payload_stamp_seq(b.p, PAYLOAD_SEQ_MAX);
    cr_assert_eq(payload_batch_open(b.p, b.len, &seq, &count, &r), TIND_CORRUPTION);
    payload_stamp_seq(b.p, UINT64_MAX);
    cr_assert_eq(payload_batch_open(b.p, b.len, &seq, &count, &r), TIND_CORRUPTION);
    buf_free(&b);
}

/* Every single-byte change of a valid batch either still decodes or is
 * TIND_CORRUPTION; never a read outside the payload (ASan) or a wrong shape. */
Test(journal_payload, batch_every_byte_mutated)
{
    uint64_t s = jt_seed("journal_payload::batch_every_byte_mutated");
    buf b;
    buf_init(&b);
    cr_assert_eq(payload_batch_init(&b), TIND_OK);
    static struct jt_op op;
    for (int i = 0; i < 6; i++) {
        jt_random_op(&op, &s);
        if (op.klen > 20) op.klen = 20;
        if (op.vlen > 20) op.vlen = 20;
        cr_assert_eq(payload_batch_add(&b, op.kind, op.ks, op.key, op.klen, op.val, op.vlen), TIND_OK);
    }
    const uint8_t vals[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xff};
    uint8_t *copy = malloc(b.len);
    for (size_t i = 0; i < b.len; i++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(copy, b.p, b.len);
            copy[i] = vals[v];
            int rc = jt_decode_batch(copy, b.len, NULL);
            cr_assert(rc == TIND_OK || rc == TIND_CORRUPTION, "byte %zu = 0x%02x: rc %d", i, vals[v], rc);
        }
    }
    free(copy);
    buf_free(&b);
}

Test(journal_payload, drop_round_trip_and_malformed)
{
    buf b;
    buf_init(&b);
    const uint32_t vals[] = {0, 1, 127, 128, 300, 1u << 21, UINT32_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        cr_assert_eq(payload_drop_init(&b, vals[i]), TIND_OK);
        unsigned type;
        cr_assert_eq(payload_type(b.p, b.len, &type), TIND_OK);
        cr_assert_eq(type, (unsigned)JPAYLOAD_DROP_KEYSPACE);
        uint32_t ks = 5;
        cr_assert_eq(payload_drop_decode(b.p, b.len, &ks), TIND_OK);
        cr_assert_eq(ks, vals[i]);
        for (size_t n = 0; n < b.len; n++) {
            uint8_t *copy = malloc(n ? n : 1);
            memcpy(copy, b.p, n);
            cr_assert_eq(payload_drop_decode(copy, n, &ks), TIND_CORRUPTION, "prefix %zu", n);
            free(copy);
        }
        cr_assert_eq(buf_append(&b, "x", 1), TIND_OK);
        cr_assert_eq(payload_drop_decode(b.p, b.len, &ks), TIND_CORRUPTION, "trailing byte");
    }
    uint8_t wrong[] = {JPAYLOAD_BATCH, 1};
    uint32_t ks;
    cr_assert_eq(payload_drop_decode(wrong, sizeof wrong, &ks), TIND_CORRUPTION);
    uint8_t over[] = {JPAYLOAD_DROP_KEYSPACE, 0x80, 0x80, 0x80, 0x80, 0x10};
    cr_assert_eq(payload_drop_decode(over, sizeof over, &ks), TIND_CORRUPTION);
    buf_free(&b);
}

Test(journal_payload, type_byte)
{
    unsigned type;
    uint8_t p[1] = {0};
    cr_assert_eq(payload_type(p, 0, &type), TIND_CORRUPTION);
    for (unsigned t = 0; t < 256; t++) {
        p[0] = (uint8_t)t;
        int rc = payload_type(p, 1, &type);
        if (t == JPAYLOAD_BATCH || t == JPAYLOAD_DROP_KEYSPACE) {
            cr_assert_eq(rc, TIND_OK);
            cr_assert_eq(type, t);
        } else {
            cr_assert_eq(rc, TIND_CORRUPTION, "type %u", t);
        }
    }
}

/* ---- reader ------------------------------------------------------------------------ */

Test(journal_reader, many_records_of_many_sizes)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    uint64_t seed = jt_seed("journal_reader::many_records_of_many_sizes"), s = seed;
    enum { N = 3000 };
    static size_t lens[N];
    static uint64_t offs[N];
    /* Sizes around the reader's 256 KiB window and far over it. */
    const size_t special[] = {1, 2, 256 * 1024 - JOURNAL_RECORD_HEADER - 1, 256 * 1024 - JOURNAL_RECORD_HEADER,
                              256 * 1024 - JOURNAL_RECORD_HEADER + 1, 256 * 1024, 600 * 1024, (1u << 20) + 3};
    size_t maxlen = (1u << 20) + 3;
    uint8_t *p = malloc(maxlen);
    struct jt_file w;
    jt_create(&w, dir, 3, 1000);
    for (size_t i = 0; i < N; i++) {
        lens[i] = i % 397 == 5 ? special[(i / 397) % 8] : 1 + jt_rng(&s) % 3000;
        jt_fill(p, lens[i], i);
        offs[i] = jt_record(&w, p, lens[i]);
    }
    uint64_t end = file_size(w.f);
    jt_close(&w);

    journal_reader *r;
    cr_assert_eq(journal_reader_open(w.path, &r), TIND_OK, "%s", err_msg());
    cr_assert_eq(journal_reader_header(r)->number, 3u);
    cr_assert_eq(journal_reader_header(r)->base_seq, 1000u);
    cr_assert_eq(journal_reader_file_size(r), end);
    cr_assert_eq(journal_reader_offset(r), JOURNAL_HEADER_SIZE);
    for (size_t i = 0; i < N; i++) {
        const uint8_t *got;
        size_t len;
        uint64_t off;
        cr_assert_eq(journal_reader_next(r, &got, &len, &off), TIND_OK, "seed %llu record %zu: %s",
                     (unsigned long long)seed, i, err_msg());
        cr_assert_eq(off, offs[i], "record %zu", i);
        cr_assert_eq(len, lens[i], "record %zu", i);
        jt_fill(p, lens[i], i);
        cr_assert_eq(memcmp(got, p, len), 0, "record %zu content", i);
    }
    const uint8_t *got;
    size_t len;
    uint64_t off;
    cr_assert_eq(journal_reader_next(r, &got, &len, &off), TIND_NOT_FOUND);
    cr_assert_eq(journal_reader_next(r, &got, &len, &off), TIND_NOT_FOUND);
    cr_assert_eq(journal_reader_offset(r), end);
    cr_assert_eq(journal_reader_valid_after(r, JOURNAL_HEADER_SIZE), 1);
    cr_assert_eq(journal_reader_valid_after(r, offs[N - 1]), 0);
    journal_reader_close(r);
    free(p);
    jt_rmtree(dir);
}

Test(journal_reader, header_only_and_bad_headers)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_file w;
    jt_create(&w, dir, 1, 0);
    jt_close(&w);
    journal_reader *r;
    cr_assert_eq(journal_reader_open(w.path, &r), TIND_OK);
    const uint8_t *p;
    size_t len;
    uint64_t off;
    cr_assert_eq(journal_reader_next(r, &p, &len, &off), TIND_NOT_FOUND);
    cr_assert_eq(journal_reader_valid_after(r, 0), 0);
    journal_reader_close(r);

    for (uint64_t n = 0; n < JOURNAL_HEADER_SIZE; n++) {
        jt_cut(w.path, n);
        r = (journal_reader *)1;
        cr_assert_eq(journal_reader_open(w.path, &r), TIND_CORRUPTION, "size %llu", (unsigned long long)n);
        cr_assert_null(r);
        cr_assert_not_null(strstr(err_msg(), w.path), "%s", err_msg());
        cr_assert_not_null(strstr(err_msg(), "offset 0"), "%s", err_msg());
    }
    char missing[PATH_MAX];
    jt_path(missing, sizeof missing, dir, 99);
    cr_assert_eq(journal_reader_open(missing, &r), TIND_IO_ERROR);
    jt_rmtree(dir);
}

/* Checks that the reader reports CORRUPTION at `bad` and stays there. */
static void jt_expect_bad(const char *path, uint64_t good_records, uint64_t bad, const char *what)
{
    journal_reader *r;
    cr_assert_eq(journal_reader_open(path, &r), TIND_OK, "%s", err_msg());
    const uint8_t *p;
    size_t len;
    uint64_t off;
    for (uint64_t i = 0; i < good_records; i++)
        cr_assert_eq(journal_reader_next(r, &p, &len, &off), TIND_OK, "%s: record %llu: %s", what,
                     (unsigned long long)i, err_msg());
    for (int again = 0; again < 2; again++) {
        cr_assert_eq(journal_reader_next(r, &p, &len, &off), TIND_CORRUPTION, "%s", what);
        cr_assert_eq(journal_reader_offset(r), bad, "%s", what);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "journal %s offset %llu: ", path, (unsigned long long)bad);
        cr_assert_not_null(strstr(err_msg(), want), "%s: message \"%s\" lacks \"%s\"", what, err_msg(), want);
    }
    journal_reader_close(r);
}

Test(journal_reader, bad_records)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    uint8_t p[100];
    jt_fill(p, sizeof p, 1);
    struct jt_file w;

    /* A zero-length record with a valid header checksum. */
    jt_create(&w, dir, 1, 0);
    jt_record(&w, p, sizeof p);
    uint64_t bad = jt_record(&w, p, 0);
    jt_record(&w, p, sizeof p);
    jt_close(&w);
    jt_expect_bad(w.path, 1, bad, "zero length");
    cr_assert_not_null(strstr(err_msg(), "zero-length"), "%s", err_msg());

    /* A length past the end with a valid header checksum. */
    jt_create(&w, dir, 1, 0);
    jt_record(&w, p, sizeof p);
    uint8_t h[JOURNAL_RECORD_HEADER];
    journal_record_header_encode(h, p, sizeof p);
    bad = file_size(w.f);
    jt_append(&w, h, sizeof h);
    jt_append(&w, p, sizeof p - 1);
    jt_close(&w);
    jt_expect_bad(w.path, 1, bad, "short payload");
    cr_assert_not_null(strstr(err_msg(), "past the end"), "%s", err_msg());

    /* A partial record header. */
    jt_create(&w, dir, 1, 0);
    jt_record(&w, p, sizeof p);
    bad = file_size(w.f);
    jt_append(&w, h, JOURNAL_RECORD_HEADER - 1);
    jt_close(&w);
    jt_expect_bad(w.path, 1, bad, "partial header");

    /* Header and payload checksums. */
    jt_create(&w, dir, 1, 0);
    jt_record(&w, p, sizeof p);
    bad = jt_record(&w, p, sizeof p);
    jt_record(&w, p, sizeof p);
    jt_close(&w);
    jt_flip(w.path, bad + 17, 0x10);
    jt_expect_bad(w.path, 1, bad, "header sum");
    cr_assert_not_null(strstr(err_msg(), "header checksum"), "%s", err_msg());
    jt_flip(w.path, bad + 17, 0x10);
    jt_flip(w.path, bad + JOURNAL_RECORD_HEADER + 50, 0x01);
    jt_expect_bad(w.path, 1, bad, "payload sum");
    cr_assert_not_null(strstr(err_msg(), "payload checksum"), "%s", err_msg());

    journal_reader *r;
    cr_assert_eq(journal_reader_open(w.path, &r), TIND_OK);
    cr_assert_eq(journal_reader_valid_after(r, bad), 1, "the third record is valid");
    cr_assert_eq(journal_reader_valid_after(r, bad + JOURNAL_RECORD_HEADER + sizeof p), 0,
                 "nothing starts after the third record's first byte");
    journal_reader_close(r);
    jt_rmtree(dir);
}

Test(journal_reader, valid_after_finds_a_record_in_garbage)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    uint64_t s = jt_seed("journal_reader::valid_after_finds_a_record_in_garbage");
    size_t glen = 3 * 256 * 1024 + 777; /* crosses several windows */
    uint8_t *g = malloc(glen);
    for (size_t i = 0; i < glen; i++) g[i] = (uint8_t)jt_rng(&s);
    uint8_t p[64];
    jt_fill(p, sizeof p, 9);

    /* Garbage only: nothing valid. */
    struct jt_file w;
    jt_create(&w, dir, 1, 0);
    jt_append(&w, g, glen);
    jt_close(&w);
    journal_reader *r;
    cr_assert_eq(journal_reader_open(w.path, &r), TIND_OK);
    cr_assert_eq(journal_reader_valid_after(r, JOURNAL_HEADER_SIZE), 0);
    journal_reader_close(r);

    /* Garbage, then a record at an odd offset, then more garbage. */
    jt_create(&w, dir, 1, 0);
    jt_append(&w, g, glen);
    uint64_t at = jt_record(&w, p, sizeof p);
    jt_append(&w, g, 1000);
    jt_close(&w);
    cr_assert_eq(journal_reader_open(w.path, &r), TIND_OK);
    cr_assert_eq(journal_reader_valid_after(r, JOURNAL_HEADER_SIZE), 1);
    cr_assert_eq(journal_reader_valid_after(r, at - 1), 1);
    cr_assert_eq(journal_reader_valid_after(r, at), 0);
    journal_reader_close(r);

    /* A record whose header is valid but whose payload is not does not count. */
    jt_flip(w.path, at + JOURNAL_RECORD_HEADER + 3, 0x80);
    cr_assert_eq(journal_reader_open(w.path, &r), TIND_OK);
    cr_assert_eq(journal_reader_valid_after(r, JOURNAL_HEADER_SIZE), 0);
    journal_reader_close(r);

    /* A large record (its own buffer) after garbage is found too. */
    size_t big = 300 * 1024;
    uint8_t *bp = malloc(big);
    jt_fill(bp, big, 11);
    jt_create(&w, dir, 1, 0);
    jt_append(&w, g, 5000);
    jt_record(&w, bp, big);
    jt_close(&w);
    cr_assert_eq(journal_reader_open(w.path, &r), TIND_OK);
    cr_assert_eq(journal_reader_valid_after(r, JOURNAL_HEADER_SIZE), 1);
    journal_reader_close(r);
    free(bp);
    free(g);
    jt_rmtree(dir);
}

Test(journal_reader, read_error_is_not_corruption)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    uint8_t p[100];
    jt_fill(p, sizeof p, 1);
    struct jt_file w;
    jt_create(&w, dir, 1, 0);
    for (int i = 0; i < 10; i++) jt_record(&w, p, sizeof p);
    jt_close(&w);
    struct file_fault f = {.ops = FOP_BIT(FOP_READ), .path_part = ".jnl", .nth = 0, .err = EIO};
    file_fault_set(&f);
    journal_reader *r;
    cr_assert_eq(journal_reader_open(w.path, &r), TIND_IO_ERROR);
    file_fault_clear();
    jt_rmtree(dir);
}

/* ---- recovery ------------------------------------------------------------------------ */

/* Writes journal `number` with n one-op batches for ids first..first+n-1. */
static void jt_journal(struct jt_file *w, const char *dir, uint64_t number, uint64_t first, size_t n,
                       uint64_t *offs)
{
    buf b;
    buf_init(&b);
    jt_create(w, dir, number, first);
    for (size_t i = 0; i < n; i++) {
        jt_batch(&b, first + i, (first + i) % 97);
        uint64_t off = jt_record(w, b.p, b.len);
        if (offs) offs[i] = off;
    }
    jt_close(w);
    buf_free(&b);
}

/* Checks the replayed records are ids first.. of jt_journal. */
static void jt_check_ids(const struct jt_seen *s, size_t from, uint64_t first, size_t n)
{
    buf b;
    buf_init(&b);
    cr_assert_geq(s->n, from + n);
    for (size_t i = 0; i < n; i++) {
        jt_batch(&b, first + i, (first + i) % 97);
        cr_assert_eq(s->recs[from + i].len, b.len, "record %zu", from + i);
        cr_assert_eq(s->recs[from + i].sum, checksum64(b.p, b.len), "record %zu", from + i);
    }
    buf_free(&b);
}

Test(journal_recovery, empty_directory)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    memset(&rec, 0xff, sizeof rec);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "%s", err_msg());
    cr_assert_eq(rec.files, 0u);
    cr_assert_eq(rec.max_number, 0u);
    cr_assert_eq(rec.max_base_seq, 0u);
    cr_assert_eq(rec.records, 0u);
    cr_assert_eq(rec.truncated_bytes, 0u);
    cr_assert_eq(rec.removed_torn_newest, 0);
    cr_assert_eq(s.n, 0u);
    jt_rmtree(dir);
    cr_assert_neq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "a missing directory is an error");
}

Test(journal_recovery, several_files_in_order)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    /* Numbers chosen so that a wrong (non-numeric) sort would show. */
    const uint64_t numbers[] = {0x9, 0xa, 0x10, 0x100};
    const size_t counts[] = {5, 0, 40, 7};
    static uint64_t offs[4][64];
    char paths[4][PATH_MAX];
    uint64_t first = 1;
    /* Written out of order. */
    for (int k = 3; k >= 0; k--) {
        uint64_t f0 = 1;
        for (int j = 0; j < k; j++) f0 += counts[j];
        struct jt_file w;
        jt_journal(&w, dir, numbers[k], f0, counts[k], offs[k]);
        snprintf(paths[k], PATH_MAX, "%s", w.path);
    }
    /* Names that are not journals are ignored. */
    const char *other[] = {"MANIFEST", "0000000000000009.jnl.tmp", "000000000000000A.jnl", "00000000000001.jnl",
                           "LOCK"};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        cr_assert_eq(file_write_atomic(dir, other[i], "junk", 4), TIND_OK, "%s", err_msg());

    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "%s", err_msg());
    cr_assert_eq(rec.files, 4u);
    cr_assert_eq(rec.max_number, 0x100u);
    cr_assert_eq(rec.max_base_seq, 1u + 5 + 0 + 40);
    cr_assert_eq(rec.records, 52u);
    cr_assert_eq(rec.truncated_bytes, 0u);
    cr_assert_eq(rec.removed_torn_newest, 0);
    cr_assert_eq(s.n, 52u);
    size_t at = 0;
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < counts[k]; i++, at++) {
            cr_assert_str_eq(s.recs[at].path, paths[k], "record %zu", at);
            cr_assert_eq(s.recs[at].offset, offs[k][i], "record %zu", at);
        }
    }
    jt_check_ids(&s, 0, first, 52);
    jt_seen_free(&s);
    jt_rmtree(dir);
}

Test(journal_recovery, torn_tail_cut_at_every_length)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_file w;
    uint64_t offs[6];
    jt_journal(&w, dir, 2, 5, 6, offs);
    size_t reclen = (size_t)(jt_size(w.path) - offs[5]);
    cr_assert_gt(reclen, JOURNAL_RECORD_HEADER + PAYLOAD_BATCH_HEADER);
    for (size_t cut = 0; cut < reclen; cut++) {
        jt_journal(&w, dir, 1, 1, 4, NULL); /* an older journal, clean */
        jt_journal(&w, dir, 2, 5, 6, offs); /* the newest */
        uint64_t last = offs[5];
        cr_assert_eq(jt_size(w.path), last + reclen);
        jt_cut(w.path, last + cut); /* its last record, torn after `cut` bytes */

        struct jt_seen s;
        jt_seen_init(&s);
        struct journal_recovery rec;
        cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "cut %zu: %s", cut, err_msg());
        cr_assert_eq(rec.records, 4u + 5, "cut %zu", cut);
        cr_assert_eq(rec.truncated_bytes, cut, "cut %zu", cut);
        cr_assert_eq(jt_size(w.path), last, "cut %zu: the file is really truncated", cut);
        jt_check_ids(&s, 0, 1, 9);
        jt_seen_free(&s);

        /* A second recovery finds a clean journal. */
        jt_seen_init(&s);
        cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "cut %zu: %s", cut, err_msg());
        cr_assert_eq(rec.records, 9u);
        cr_assert_eq(rec.truncated_bytes, 0u);
        jt_seen_free(&s);
    }
    jt_rmtree(dir);
}

Test(journal_recovery, torn_tail_of_zeros_or_garbage)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    uint64_t s0 = jt_seed("journal_recovery::torn_tail_of_zeros_or_garbage");
    /* A crash after the size grew but before the data landed leaves zeros;
     * a torn sector can leave anything. */
    for (int kind = 0; kind < 2; kind++) {
        struct jt_file w;
        jt_journal(&w, dir, 7, 1, 10, NULL);
        uint64_t end = jt_size(w.path);
        cr_assert_eq(file_open(w.path, FILE_WRITE, &w.f), TIND_OK);
        uint8_t tail[8192];
        for (size_t i = 0; i < sizeof tail; i++) tail[i] = kind == 0 ? 0 : (uint8_t)jt_rng(&s0);
        jt_append(&w, tail, sizeof tail);
        jt_close(&w);
        struct jt_seen s;
        jt_seen_init(&s);
        struct journal_recovery rec;
        cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "%s", err_msg());
        cr_assert_eq(rec.records, 10u);
        cr_assert_eq(rec.truncated_bytes, sizeof tail);
        cr_assert_eq(jt_size(w.path), end);
        jt_seen_free(&s);
    }
    jt_rmtree(dir);
}

Test(journal_recovery, flipped_bit_in_a_middle_record)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_file w;
    uint64_t offs[5];
    jt_journal(&w, dir, 4, 1, 5, offs);
    uint64_t size = jt_size(w.path);
    size_t reclen = (size_t)(offs[3] - offs[2]);
    /* Every byte of the middle record, header and payload. */
    for (size_t i = 0; i < reclen; i++) {
        uint8_t mask = (uint8_t)(1u << (i % 8));
        jt_flip(w.path, offs[2] + i, mask);
        struct jt_seen s;
        jt_seen_init(&s);
        struct journal_recovery rec;
        err_clear();
        int rc = journal_recover(dir, 0, jt_collect, &s, &rec);
        cr_assert_eq(rc, TIND_CORRUPTION, "byte %zu: rc %d", i, rc);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "journal %s offset %llu: ", w.path, (unsigned long long)offs[2]);
        cr_assert_not_null(strstr(tind_last_error(), want), "byte %zu: \"%s\" lacks \"%s\"", i, tind_last_error(),
                           want);
        cr_assert_str_eq(tind_last_error(), err_msg());
        cr_assert_eq(s.n, 2u, "byte %zu: the records before it were replayed", i);
        cr_assert_eq(jt_size(w.path), size, "byte %zu: nothing truncated", i);
        jt_seen_free(&s);
        jt_flip(w.path, offs[2] + i, mask);
    }
    jt_rmtree(dir);
}

Test(journal_recovery, zero_length_record_then_valid_is_corruption)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_file w;
    buf b;
    buf_init(&b);
    jt_create(&w, dir, 1, 0);
    jt_batch(&b, 1, 5);
    jt_record(&w, b.p, b.len);
    uint64_t bad = jt_record(&w, b.p, 0);
    jt_record(&w, b.p, b.len);
    jt_close(&w);
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_CORRUPTION);
    char want[64];
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)bad);
    cr_assert_not_null(strstr(err_msg(), want), "%s", err_msg());
    jt_seen_free(&s);
    buf_free(&b);
    jt_rmtree(dir);
}

Test(journal_recovery, bad_record_in_an_older_journal)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_file w1, w2;
    uint64_t offs[8];
    jt_journal(&w1, dir, 1, 1, 8, offs);
    jt_journal(&w2, dir, 2, 9, 3, NULL);
    uint64_t size1 = jt_size(w1.path);

    /* Even a torn tail is damage in a journal that has a successor: it was
     * synced before the next one was started. */
    jt_cut(w1.path, offs[7] + 5);
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_CORRUPTION);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "journal %s offset %llu: ", w1.path, (unsigned long long)offs[7]);
    cr_assert_not_null(strstr(err_msg(), want), "\"%s\" lacks \"%s\"", err_msg(), want);
    cr_assert_eq(jt_size(w1.path), offs[7] + 5, "an older journal is never truncated");
    cr_assert_eq(s.n, 7u);
    jt_seen_free(&s);

    /* And a flipped bit in its last record. */
    jt_journal(&w1, dir, 1, 1, 8, offs);
    cr_assert_eq(jt_size(w1.path), size1);
    jt_flip(w1.path, size1 - 1, 0x04);
    jt_seen_init(&s);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_CORRUPTION);
    cr_assert_not_null(strstr(err_msg(), want), "\"%s\" lacks \"%s\"", err_msg(), want);
    cr_assert_eq(jt_size(w1.path), size1);
    jt_seen_free(&s);

    /* And a bad header in an older journal, however short. */
    jt_journal(&w1, dir, 1, 1, 8, offs);
    jt_cut(w1.path, 10);
    jt_seen_init(&s);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_CORRUPTION);
    cr_assert_eq(file_exists(w1.path), 1, "an older journal is never removed");
    jt_seen_free(&s);
    jt_rmtree(dir);
}

/* Runs journal_recover (or its read-only form) over dir and expects
 * TIND_CORRUPTION naming `path` at `off`, after `records` replayed records. */
static void jt_expect_gap(const char *dir, int read_only, const char *path, uint64_t off, size_t records)
{
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    int rc = read_only ? journal_recover_read_only(dir, 0, jt_collect, &s, &rec) : journal_recover(dir, 0, jt_collect, &s, &rec);
    cr_assert_eq(rc, TIND_CORRUPTION, "rc %d: %s", rc, err_msg());
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "journal %s offset %llu: ", path, (unsigned long long)off);
    cr_assert_not_null(strstr(err_msg(), want), "\"%s\" lacks \"%s\"", err_msg(), want);
    cr_assert_eq(s.n, records, "the successor's records are not replayed over the gap");
    jt_seen_free(&s);
}

static void jt_expect_recovers(const char *dir, int read_only, size_t records)
{
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    int rc = read_only ? journal_recover_read_only(dir, 0, jt_collect, &s, &rec) : journal_recover(dir, 0, jt_collect, &s, &rec);
    cr_assert_eq(rc, TIND_OK, "%s", err_msg());
    cr_assert_eq(s.n, records);
    jt_seen_free(&s);
}

/* Expects recovery with min_seq to fail naming `path` at `off` as ending below it. */
static void jt_expect_gap_below(const char *dir, int read_only, uint64_t min_seq, const char *path, uint64_t off)
{
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    int rc = read_only ? journal_recover_read_only(dir, min_seq, jt_collect, &s, &rec)
                       : journal_recover(dir, min_seq, jt_collect, &s, &rec);
    cr_assert_eq(rc, TIND_CORRUPTION, "rc %d: %s", rc, err_msg());
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "journal %s offset %llu: ", path, (unsigned long long)off);
    cr_assert_not_null(strstr(err_msg(), want), "\"%s\" lacks \"%s\"", err_msg(), want);
    cr_assert_not_null(strstr(err_msg(), "tables hold writes"), "%s", err_msg());
    jt_seen_free(&s);
}

/* Journal N+1 is started only once journal N is durable whole (at a
 * rotation, or by recovery), with the last sequence number used so far as
 * its base: consecutive journals meet exactly. A journal cut at a record
 * boundary reads cleanly, so this is what finds it when it is not the newest. */
Test(journal_recovery, consecutive_journals_must_meet)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    for (int ro = 0; ro < 2; ro++) {
        struct jt_file w1, w2;
        uint64_t offs[8];
        /* Journal 1: base 0, sequence numbers 1..8; journal 2 after it. */
        jt_journal(&w1, dir, 1, 0, 8, offs);
        uint64_t size1 = jt_size(w1.path);
        jt_journal(&w2, dir, 2, 8, 3, NULL);
        jt_expect_recovers(dir, ro, 11);

        /* Journal 1 cut after its 6th record (at a record boundary). */
        jt_cut(w1.path, offs[6]);
        jt_expect_gap(dir, ro, w1.path, offs[6], 6);
        cr_assert_eq(jt_size(w1.path), offs[6], "an older journal is never truncated");
        /* Cut to its header alone: it ends at its base. */
        jt_cut(w1.path, JOURNAL_HEADER_SIZE);
        jt_expect_gap(dir, ro, w1.path, JOURNAL_HEADER_SIZE, 0);

        /* A successor whose base is below its predecessor's end is damage too:
         * its header is named. */
        jt_journal(&w1, dir, 1, 0, 8, offs);
        cr_assert_eq(jt_size(w1.path), size1);
        jt_journal(&w2, dir, 2, 7, 3, NULL);
        jt_expect_gap(dir, ro, w2.path, 0, 8);

        /* A journal that holds no batch ends at its base, whatever drops it
         * holds. */
        buf b;
        buf_init(&b);
        cr_assert_eq(payload_drop_init(&b, 3), TIND_OK);
        jt_create(&w1, dir, 1, 20);
        jt_record(&w1, b.p, b.len);
        jt_record(&w1, b.p, b.len);
        jt_close(&w1);
        jt_journal(&w2, dir, 2, 20, 2, NULL);
        jt_expect_recovers(dir, ro, 4);
        jt_journal(&w2, dir, 2, 21, 2, NULL);
        jt_expect_gap(dir, ro, w1.path, jt_size(w1.path), 2);
        /* Drops after the last batch do not move the end. */
        jt_journal(&w1, dir, 1, 0, 3, NULL);
        cr_assert_eq(file_open(w1.path, FILE_WRITE, &w1.f), TIND_OK, "%s", err_msg());
        jt_record(&w1, b.p, b.len);
        jt_close(&w1);
        buf_free(&b);
        jt_journal(&w2, dir, 2, 3, 2, NULL);
        jt_expect_recovers(dir, ro, 6);
        jt_journal(&w2, dir, 2, 4, 2, NULL);
        jt_expect_gap(dir, ro, w1.path, jt_size(w1.path), 4);

        /* Journals whose numbers are not consecutive may not meet: the ones
         * between them held no record, or were retired (see README). */
        cr_assert_eq(file_unlink(w2.path), TIND_OK);
        struct jt_file w3;
        jt_journal(&w3, dir, 3, 40, 2, NULL);
        jt_expect_recovers(dir, ro, 6);
        cr_assert_eq(file_unlink(w3.path), TIND_OK);
        cr_assert_eq(file_unlink(w1.path), TIND_OK);
    }
    jt_rmtree(dir);
}

/* A flush syncs the journal through the sequence number its table records
 * before the table can be durable, so no torn append loses those records:
 * a newest journal that would end below min_seq, cut or cleanly, lost them
 * to damage. It is reported and not cut (a cut one would open once and its
 * successor would then start past its end). A newest journal torn at
 * creation is not held to min_seq: the one before it may have been retired. */
Test(journal_recovery, newest_journal_ending_below_min_seq_is_corruption)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    for (int ro = 0; ro < 2; ro++) {
        struct jt_file w1, w2;
        uint64_t offs[8];
        jt_journal(&w1, dir, 1, 0, 4, NULL);
        jt_journal(&w2, dir, 2, 4, 8, offs); /* sequence numbers 5..12 */
        uint64_t size2 = jt_size(w2.path);
        struct jt_seen s;
        struct journal_recovery rec;
        /* A torn last record above min_seq is a torn tail. */
        jt_cut(w2.path, offs[7] + 3);
        jt_seen_init(&s);
        int rc = ro ? journal_recover_read_only(dir, 11, jt_collect, &s, &rec)
                    : journal_recover(dir, 11, jt_collect, &s, &rec);
        cr_assert_eq(rc, TIND_OK, "%s", err_msg());
        jt_seen_free(&s);
        /* Below it: not a torn tail, nothing cut. */
        jt_journal(&w2, dir, 2, 4, 8, offs);
        jt_cut(w2.path, offs[6] + 3);
        jt_seen_init(&s);
        rc = ro ? journal_recover_read_only(dir, 12, jt_collect, &s, &rec)
                : journal_recover(dir, 12, jt_collect, &s, &rec);
        cr_assert_eq(rc, TIND_CORRUPTION, "%s", err_msg());
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "journal %s offset %llu: ", w2.path, (unsigned long long)offs[6]);
        cr_assert_not_null(strstr(err_msg(), want), "\"%s\" lacks \"%s\"", err_msg(), want);
        cr_assert_eq(jt_size(w2.path), offs[6] + 3, "nothing is cut");
        jt_seen_free(&s);
        /* Cut at a record boundary below it: reads cleanly, still damage. */
        jt_cut(w2.path, offs[6]);
        jt_expect_gap_below(dir, ro, 12, w2.path, offs[6]);
        jt_journal(&w2, dir, 2, 4, 8, offs);
        cr_assert_eq(jt_size(w2.path), size2);
        jt_expect_gap_below(dir, ro, 13, w2.path, size2);
        /* Torn at creation: removed, whatever journal 1 reaches. */
        jt_cut(w2.path, 30);
        jt_seen_init(&s);
        rc = ro ? journal_recover_read_only(dir, 12, jt_collect, &s, &rec)
                : journal_recover(dir, 12, jt_collect, &s, &rec);
        cr_assert_eq(rc, TIND_OK, "%s", err_msg());
        cr_assert_eq(rec.removed_torn_newest, 1);
        jt_seen_free(&s);
        if (!ro) cr_assert_eq(file_exists(w2.path), 0);
        else cr_assert_eq(file_unlink(w2.path), TIND_OK);
        cr_assert_eq(file_unlink(w1.path), TIND_OK);
    }
    jt_rmtree(dir);
}

Test(journal_recovery, torn_newest_header_is_removed)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    for (uint64_t n = 0; n <= JOURNAL_HEADER_SIZE; n++) {
        struct jt_file w1, w2;
        jt_journal(&w1, dir, 1, 1, 3, NULL);
        jt_journal(&w2, dir, 2, 4, 0, NULL);
        if (n < JOURNAL_HEADER_SIZE) jt_cut(w2.path, n);
        else jt_flip(w2.path, 20, 0x01); /* whole but bad */
        struct jt_seen s;
        jt_seen_init(&s);
        struct journal_recovery rec;
        cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "size %llu: %s", (unsigned long long)n,
                     err_msg());
        cr_assert_eq(rec.removed_torn_newest, 1, "size %llu", (unsigned long long)n);
        cr_assert_eq(file_exists(w2.path), 0, "size %llu: removed", (unsigned long long)n);
        cr_assert_eq(rec.files, 2u);
        cr_assert_eq(rec.max_number, 2u);
        cr_assert_eq(rec.max_base_seq, 1u, "the removed header is not trusted");
        cr_assert_eq(rec.records, 3u);
        jt_seen_free(&s);
    }

    /* A whole, valid header and nothing else is a good empty journal. */
    struct jt_file w;
    jt_journal(&w, dir, 3, 50, 0, NULL);
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "%s", err_msg());
    cr_assert_eq(rec.removed_torn_newest, 0);
    cr_assert_eq(file_exists(w.path), 1);
    cr_assert_eq(rec.max_base_seq, 50u);
    jt_seen_free(&s);

    /* A newest journal longer than a header with a bad header is damage. */
    jt_journal(&w, dir, 3, 50, 1, NULL);
    jt_flip(w.path, 3, 0x01);
    jt_seen_init(&s);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_CORRUPTION);
    cr_assert_not_null(strstr(err_msg(), "offset 0"), "%s", err_msg());
    cr_assert_eq(file_exists(w.path), 1);
    jt_seen_free(&s);
    jt_rmtree(dir);
}

Test(journal_recovery, header_number_mismatch)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    /* In the newest journal. */
    struct jt_file w;
    jt_create_as(&w, dir, 5, 6, 0);
    jt_close(&w);
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_CORRUPTION);
    cr_assert_not_null(strstr(err_msg(), w.path), "%s", err_msg());
    cr_assert_not_null(strstr(err_msg(), "number"), "%s", err_msg());
    cr_assert_eq(file_exists(w.path), 1, "a mismatched header is not a torn one");

    /* In an older one. */
    struct jt_file w2;
    jt_journal(&w2, dir, 9, 1, 2, NULL);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_CORRUPTION);
    cr_assert_not_null(strstr(err_msg(), w.path), "%s", err_msg());
    cr_assert_eq(s.n, 0u);
    jt_seen_free(&s);
    jt_rmtree(dir);
}

Test(journal_recovery, callback_error_stops_recovery)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_file w;
    jt_journal(&w, dir, 1, 1, 4, NULL);
    jt_journal(&w, dir, 2, 5, 4, NULL);
    uint64_t size = jt_size(w.path);
    for (size_t at = 0; at < 8; at++) {
        struct jt_seen s;
        jt_seen_init(&s);
        s.fail_at = at;
        s.fail_rc = TIND_NO_MEMORY;
        struct journal_recovery rec;
        cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_NO_MEMORY, "at %zu", at);
        cr_assert_eq(s.n, at, "no record after the failing one");
        jt_seen_free(&s);
    }
    cr_assert_eq(jt_size(w.path), size);
    jt_rmtree(dir);
}

Test(journal_recovery, io_errors_propagate)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_file w;
    uint64_t offs[5];
    jt_journal(&w, dir, 1, 1, 5, offs);
    jt_cut(w.path, offs[4] + 3);

    /* A failed truncate of the torn tail: the error, and the file untouched. */
    struct file_fault f = {.ops = FOP_BIT(FOP_TRUNCATE), .nth = 0, .err = EIO};
    file_fault_set(&f);
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_IO_ERROR);
    cr_assert_eq(jt_size(w.path), offs[4] + 3);
    jt_seen_free(&s);

    /* A failed sync after the truncate. */
    f.ops = FOP_BIT(FOP_SYNC);
    file_fault_set(&f);
    jt_seen_init(&s);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_IO_ERROR);
    jt_seen_free(&s);
    cr_assert_eq(file_fault_fired(), 1u);

    /* A read error is never taken for a torn tail. */
    jt_journal(&w, dir, 1, 1, 5, offs);
    jt_cut(w.path, offs[4] + 3);
    f.ops = FOP_BIT(FOP_READ);
    f.forever = 1;
    file_fault_set(&f);
    jt_seen_init(&s);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_IO_ERROR);
    cr_assert_eq(jt_size(w.path), offs[4] + 3);
    jt_seen_free(&s);

    /* A failed unlink of a torn newest journal. The journal before it is
     * whole: it was synced before the torn one was started. */
    file_fault_clear();
    jt_journal(&w, dir, 1, 1, 5, offs);
    struct jt_file w2;
    jt_journal(&w2, dir, 2, 6, 0, NULL);
    jt_cut(w2.path, 7);
    f.ops = FOP_BIT(FOP_UNLINK);
    f.forever = 0;
    file_fault_set(&f);
    jt_seen_init(&s);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_IO_ERROR);
    cr_assert_eq(file_exists(w2.path), 1);
    jt_seen_free(&s);

    file_fault_clear();
    jt_seen_init(&s);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "%s", err_msg());
    cr_assert_eq(rec.removed_torn_newest, 1);
    cr_assert_eq(rec.records, 5u);
    cr_assert_eq(file_exists(w2.path), 0);
    jt_seen_free(&s);
    jt_rmtree(dir);
}

/* Regression guard: after a process crash the newest journal's last records
 * may sit only in the page cache; the database then starts a new journal,
 * which makes this one older, and older journals must read cleanly after a
 * power loss. So recovery syncs the newest journal, clean or cut. */
Test(journal_recovery, newest_journal_is_synced)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_file w1, w2;
    jt_journal(&w1, dir, 1, 1, 3, NULL);
    jt_journal(&w2, dir, 2, 4, 3, NULL);
    char newest[JOURNAL_NAME_LEN + 1], older[JOURNAL_NAME_LEN + 1];
    journal_file_name(newest, 2);
    journal_file_name(older, 1);

    struct file_fault f = {.ops = FOP_BIT(FOP_SYNC) | FOP_BIT(FOP_DATASYNC), .nth = 1000, .err = EIO};
    file_fault_set(&f);
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "%s", err_msg());
    cr_assert_eq(file_fault_seen(), 1u, "one sync: the newest journal's");
    jt_seen_free(&s);

    f.nth = 0;
    f.path_part = newest;
    file_fault_set(&f);
    jt_seen_init(&s);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_IO_ERROR);
    cr_assert_not_null(strstr(err_msg(), newest), "%s", err_msg());
    jt_seen_free(&s);

    f.path_part = older;
    file_fault_set(&f);
    jt_seen_init(&s);
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "%s", err_msg());
    cr_assert_eq(file_fault_fired(), 0u);
    jt_seen_free(&s);
    file_fault_clear();
    jt_rmtree(dir);
}

/* A torn record whose payload holds the image of a whole valid record (a value
 * that is itself journal bytes) is still a torn tail: the search for a later
 * record starts after the bad record's payload when its header is intact. */
Test(journal_recovery, torn_record_holding_a_record_image_is_a_torn_tail)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jt_file w;
    jt_journal(&w, dir, 3, 1, 5, NULL);
    uint64_t end = jt_size(w.path);
    cr_assert_eq(file_open(w.path, FILE_WRITE, &w.f), TIND_OK);
    /* The inner image: a complete record, header and payload. */
    buf inner;
    buf_init(&inner);
    jt_batch(&inner, 99, 40);
    uint8_t img[JOURNAL_RECORD_HEADER + 512];
    journal_record_header_encode(img, inner.p, inner.len);
    memcpy(img + JOURNAL_RECORD_HEADER, inner.p, inner.len);
    size_t img_len = JOURNAL_RECORD_HEADER + inner.len;
    /* The outer record: a payload of 16 bytes, the image, 16 more; written
     * with a correct header, then its last bytes zeroed as a torn write would. */
    uint8_t outer[16 + sizeof img + 16];
    memset(outer, 0x11, sizeof outer);
    outer[0] = JPAYLOAD_BATCH;
    memcpy(outer + 16, img, img_len);
    size_t outer_len = 16 + img_len + 16;
    uint8_t h[JOURNAL_RECORD_HEADER];
    journal_record_header_encode(h, outer, outer_len);
    memset(outer + outer_len - 16, 0, 16);
    jt_append(&w, h, sizeof h);
    jt_append(&w, outer, outer_len);
    jt_close(&w);
    struct jt_seen s;
    jt_seen_init(&s);
    struct journal_recovery rec;
    cr_assert_eq(journal_recover(dir, 0, jt_collect, &s, &rec), TIND_OK, "%s", err_msg());
    cr_assert_eq(rec.records, 5u);
    cr_assert_eq(jt_size(w.path), end, "the torn record was not cut");
    jt_seen_free(&s);
    buf_free(&inner);
    jt_rmtree(dir);
}

/* A batch at or below its journal's base_seq, or below the batch before it,
 * read cleanly and was replayed: the journal's end then fell below the base
 * the next journal is started with, so the first open succeeded and every
 * later one failed, finding the two journals not meeting (found by
 * fuzz-journal). Sequence numbers only grow: such a record is damage, named
 * by file and offset, and nothing from it on is replayed. */
Test(journal_recovery, batch_below_the_journal_base_or_its_predecessor_is_corruption)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    buf b;
    buf_init(&b);
    for (int ro = 0; ro < 2; ro++) {
        struct jt_file w;
        /* Base 100, batches at 1 and 2. */
        jt_create(&w, dir, 1, 100);
        jt_batch(&b, 0, 10);
        uint64_t off = jt_record(&w, b.p, b.len);
        jt_batch(&b, 1, 10);
        jt_record(&w, b.p, b.len);
        jt_close(&w);
        jt_expect_gap(dir, ro, w.path, off, 0);
        /* Base 0: batches at 1, 5, then 3. */
        jt_create(&w, dir, 1, 0);
        jt_batch(&b, 0, 10);
        jt_record(&w, b.p, b.len);
        jt_batch(&b, 4, 10);
        jt_record(&w, b.p, b.len);
        jt_batch(&b, 2, 10);
        off = jt_record(&w, b.p, b.len);
        jt_close(&w);
        jt_expect_gap(dir, ro, w.path, off, 2);
        /* The same journal without the last batch recovers. */
        jt_create(&w, dir, 1, 0);
        jt_batch(&b, 0, 10);
        jt_record(&w, b.p, b.len);
        jt_batch(&b, 4, 10);
        jt_record(&w, b.p, b.len);
        jt_close(&w);
        jt_expect_recovers(dir, ro, 2);
    }
    buf_free(&b);
    jt_rmtree(dir);
}
