/* Helpers shared by the journal suites (journal_test.c: format, payloads,
 * reader; journal_recovery_test.c: recovery). Journal files are built byte by
 * byte with the format functions and file_append, so that the tests can cut,
 * flip and splice them at will. */
#ifndef TIND_TESTS_JOURNAL_COMMON_H
#define TIND_TESTS_JOURNAL_COMMON_H

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
#include "tests/support/fault_env.h"

#define JT_MAYBE_UNUSED __attribute__((unused))

static JT_MAYBE_UNUSED uint64_t jt_rng(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* The seed of a randomized test: $TIND_SEED when set (decimal or 0x hex),
 * else one from the clock and the pid; printed so that a failure can be
 * replayed (the convention of tests/support's tu_seed). */
static JT_MAYBE_UNUSED uint64_t jt_seed(const char *test)
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

static JT_MAYBE_UNUSED void jt_mkdtemp(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/tind-journal-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static JT_MAYBE_UNUSED void jt_rmtree(const char *dir)
{
    file_fault_clear();
    cr_assert_eq(file_remove_tree(dir), TIND_OK, "remove %s: %s", dir, err_msg());
}

static JT_MAYBE_UNUSED void jt_path(char *out, size_t cap, const char *dir, uint64_t number)
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

static JT_MAYBE_UNUSED void jt_create_raw(struct jt_file *w, const char *dir, uint64_t number)
{
    jt_path(w->path, sizeof w->path, dir, number);
    cr_assert_eq(file_open(w->path, FILE_WRITE | FILE_CREATE | FILE_TRUNC, &w->f), TIND_OK, "%s", err_msg());
}

static JT_MAYBE_UNUSED void jt_append(struct jt_file *w, const void *p, size_t n)
{
    cr_assert_eq(file_append(w->f, p, n), TIND_OK, "%s", err_msg());
}

/* Creates journal `number` whose header says `hdr_number`. */
static JT_MAYBE_UNUSED void jt_create_as(struct jt_file *w, const char *dir, uint64_t number, uint64_t hdr_number, uint64_t base_seq)
{
    jt_create_raw(w, dir, number);
    uint8_t h[JOURNAL_HEADER_SIZE];
    struct journal_header jh = {.number = hdr_number, .base_seq = base_seq};
    journal_header_encode(h, &jh);
    jt_append(w, h, sizeof h);
}

static JT_MAYBE_UNUSED void jt_create(struct jt_file *w, const char *dir, uint64_t number, uint64_t base_seq)
{
    jt_create_as(w, dir, number, number, base_seq);
}

/* Appends a record; returns its offset. */
static JT_MAYBE_UNUSED uint64_t jt_record(struct jt_file *w, const uint8_t *p, size_t n)
{
    uint64_t off = file_size(w->f);
    uint8_t h[JOURNAL_RECORD_HEADER];
    journal_record_header_encode(h, p, n);
    jt_append(w, h, sizeof h);
    jt_append(w, p, n);
    return off;
}

static JT_MAYBE_UNUSED void jt_close(struct jt_file *w)
{
    cr_assert_eq(file_close(w->f), TIND_OK, "%s", err_msg());
    w->f = NULL;
}

/* Deterministic payload bytes for record `id` of length n. */
static JT_MAYBE_UNUSED void jt_fill(uint8_t *p, size_t n, uint64_t id)
{
    uint64_t s = id * 1000003 + n;
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(jt_rng(&s) >> 56);
}

/* A one-op batch payload for record `id`. */
static JT_MAYBE_UNUSED void jt_batch(buf *b, uint64_t id, size_t vlen)
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

static JT_MAYBE_UNUSED void jt_flip(const char *path, uint64_t off, uint8_t mask)
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

static JT_MAYBE_UNUSED void jt_cut(const char *path, uint64_t size)
{
    tfile *f;
    cr_assert_eq(file_open(path, FILE_WRITE, &f), TIND_OK);
    cr_assert_eq(file_truncate(f, size), TIND_OK);
    cr_assert_eq(file_close(f), TIND_OK);
}

static JT_MAYBE_UNUSED uint64_t jt_size(const char *path)
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

static JT_MAYBE_UNUSED void jt_seen_init(struct jt_seen *s)
{
    memset(s, 0, sizeof *s);
    s->fail_at = SIZE_MAX;
}

static JT_MAYBE_UNUSED int jt_collect(void *ctx, const char *path, uint64_t offset, const uint8_t *payload, size_t len)
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

static JT_MAYBE_UNUSED void jt_seen_free(struct jt_seen *s)
{
    free(s->recs);
    jt_seen_init(s);
}

#endif
