/* Journal format, payload codec and reader (recovery: journal_recovery_test.c).
 *
 * The writer (journal/writer.c) is not exercised here: journal files are
 * built byte by byte with the format functions and file_append, so that the
 * tests can cut, flip and splice them at will. */
#include "tests/journal_common.h"

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
