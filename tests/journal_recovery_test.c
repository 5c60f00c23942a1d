/* Journal recovery: replay in order, torn tails, damage, the rules that
 * journals meet and reach what the tables hold, I/O errors. Journal files are
 * built by hand (tests/journal_common.h). */
#include "tests/journal_common.h"

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

/* Runs journal_recover (or its read-only form) with min_seq over dir and
 * expects TIND_CORRUPTION naming `path` at `off`, after `records` replayed
 * records (SIZE_MAX: any number), the message holding `also` (NULL: nothing more). */
static void jt_expect_damage(const char *dir, int read_only, uint64_t min_seq, const char *path, uint64_t off,
                             size_t records, const char *also)
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
    if (also) cr_assert_not_null(strstr(err_msg(), also), "%s", err_msg());
    if (records != SIZE_MAX) cr_assert_eq(s.n, records, "the successor's records are not replayed over the gap");
    jt_seen_free(&s);
}

static void jt_expect_gap(const char *dir, int read_only, const char *path, uint64_t off, size_t records)
{
    jt_expect_damage(dir, read_only, 0, path, off, records, NULL);
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
    jt_expect_damage(dir, read_only, min_seq, path, off, SIZE_MAX, "tables hold writes");
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
