#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compaction/compaction.h"
#include "lsm/ikey.h"
#include "lsm/table.h"
#include "lsm/table_cache.h"
#include "lsm/version.h"
#include "tests/support/testutil.h"
#include "tind.h"

/* ---- fixtures: a keyspace folder with a manifest (for file numbers) and a table cache ---- */

static char *ct_dir;
static manifest *ct_man;
static table_cache *ct_tc;

static void ct_setup(void)
{
    ct_dir = tu_mkdtemp("compactor");
    cr_assert_not_null(ct_dir, "mkdtemp: %s", strerror(errno));
    cr_assert_eq(manifest_open(ct_dir, 1, &ct_man), TIND_OK);
    ct_tc = table_cache_new(100, NULL);
    cr_assert_not_null(ct_tc);
}

static void ct_teardown(void)
{
    manifest_close(ct_man); /* its metas go before the cache that opened their tables */
    table_cache_free(ct_tc);
    tu_rmtree(ct_dir);
    free(ct_dir);
}

TestSuite(compactor, .init = ct_setup, .fini = ct_teardown);

/* ---- entries and a reference model ---- */

struct ct_ent {
    uint8_t key[16];
    size_t klen;
    uint64_t tag;
    uint8_t val[128];
    size_t vlen;
};

static int ct_ent_cmp(const void *a, const void *b)
{
    const struct ct_ent *x = a, *y = b;
    return ikey_cmp(x->key, x->klen, x->tag, y->key, y->klen, y->tag);
}

static struct ct_ent ct_make(unsigned k, uint64_t seq, unsigned kind, size_t vlen)
{
    struct ct_ent e;
    memset(&e, 0, sizeof e);
    e.klen = (size_t)snprintf((char *)e.key, sizeof e.key, "k%07u", k);
    e.tag = tag_pack(seq, kind);
    e.vlen = kind == KIND_PUT ? vlen : 0;
    if (e.vlen) tu_fill(e.val, e.vlen, seq);
    return e;
}

struct ct_set {
    struct ct_ent *e;
    size_t n, cap;
};

static void ct_push(struct ct_set *s, struct ct_ent e)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->e = realloc(s->e, s->cap * sizeof *s->e);
        cr_assert_not_null(s->e);
    }
    s->e[s->n++] = e;
}

static void ct_sort(struct ct_set *s) { qsort(s->e, s->n, sizeof *s->e, ct_ent_cmp); }

/* Writes s (sorted here) as a new table and returns its meta (one reference). */
static struct table_meta *ct_write(struct ct_set *s, size_t block_size)
{
    ct_sort(s);
    struct table_meta *m = table_meta_new(ct_dir, manifest_new_file_number(ct_man));
    cr_assert_not_null(m);
    struct table_options o = {.block_size = block_size, .restart_interval = 16, .bloom_bits = 10};
    table_writer *w;
    cr_assert_eq(table_writer_open(m->path, &o, &w), TIND_OK);
    for (size_t i = 0; i < s->n; i++)
        cr_assert_eq(table_writer_add(w, s->e[i].key, s->e[i].klen, s->e[i].tag, s->e[i].val, s->e[i].vlen), TIND_OK,
                     "add %zu", i);
    struct table_props p;
    table_props_init(&p);
    cr_assert_eq(table_writer_finish(w, &p, &m->size), TIND_OK);
    m->entries = p.entries;
    m->tombstones = p.tombstones;
    m->min_seq = p.min_seq;
    m->max_seq = p.max_seq;
    m->smallest_tag = p.smallest_tag;
    m->largest_tag = p.largest_tag;
    cr_assert_eq(buf_append(&m->smallest, p.smallest.p, p.smallest.len), TIND_OK);
    cr_assert_eq(buf_append(&m->largest, p.largest.p, p.largest.len), TIND_OK);
    table_props_free(&p);
    return m;
}

/* Reads every entry of a table file into s (appended). */
static void ct_read_table(const struct table_meta *m, struct ct_set *s)
{
    table *t;
    cr_assert_eq(table_open(m->path, m->size, NULL, &t), TIND_OK, "open %s", m->path);
    iiter *it = table_iter(t);
    cr_assert_not_null(it);
    for (iiter_seek_first(it); it->valid; iiter_next(it)) {
        struct ct_ent e;
        memset(&e, 0, sizeof e);
        cr_assert_leq(it->klen, sizeof e.key);
        cr_assert_leq(it->vlen, sizeof e.val);
        memcpy(e.key, it->key, it->klen);
        e.klen = it->klen;
        e.tag = it->tag;
        memcpy(e.val, it->val, it->vlen);
        e.vlen = it->vlen;
        ct_push(s, e);
    }
    cr_assert_eq(iiter_status(it), TIND_OK);
    iiter_destroy(it);
    table_unref(t);
}

/* The entries the compactor must keep, computed the plain way: a version is
 * kept when it is what some reader (a snapshot, or last_seq) sees of its key,
 * or when it is newer than last_seq (not yet published: the readers that
 * will see it do not exist yet, and each may stop at any of them); then, of
 * those, a tombstone whose next older kept version is a tombstone goes, and
 * when bottommost the oldest kept version goes if a tombstone. all is
 * sorted. */
static void ct_expected(const struct ct_set *all, const uint64_t *snaps, size_t nsnaps, uint64_t last_seq,
                        int bottommost, struct ct_set *out)
{
    size_t nreaders = nsnaps + 1;
    uint64_t *readers = malloc(nreaders * sizeof *readers);
    cr_assert_not_null(readers);
    if (nsnaps) memcpy(readers, snaps, nsnaps * sizeof *snaps);
    readers[nsnaps] = last_seq;
    char *keep = calloc(all->n ? all->n : 1, 1);
    cr_assert_not_null(keep);
    for (size_t i = 0; i < all->n;) {
        size_t j = i;
        while (j < all->n && ukey_cmp(all->e[j].key, all->e[j].klen, all->e[i].key, all->e[i].klen) == 0) j++;
        for (size_t x = i; x < j; x++)
            if (tag_seq(all->e[x].tag) > last_seq) keep[x] = 1;
        for (size_t r = 0; r < nreaders; r++) {
            for (size_t x = i; x < j; x++) {
                if (tag_seq(all->e[x].tag) > readers[r]) continue;
                keep[x] = 1;
                break;
            }
        }
        size_t prev = SIZE_MAX, last = SIZE_MAX; /* the newer kept entry; the oldest one */
        for (size_t x = i; x < j; x++) {
            if (keep[x] != 1) continue;
            if (prev != SIZE_MAX && tag_kind(all->e[prev].tag) == KIND_DELETE &&
                tag_kind(all->e[x].tag) == KIND_DELETE)
                keep[prev] = 2; /* redundant, decided on the kept list as it was */
            prev = x;
            last = x;
        }
        if (bottommost && last != SIZE_MAX && tag_kind(all->e[last].tag) == KIND_DELETE) keep[last] = 0;
        i = j;
    }
    for (size_t i = 0; i < all->n; i++)
        if (keep[i] == 1) ct_push(out, all->e[i]);
    free(keep);
    free(readers);
}

/* What a reader at seq sees of key (e[i..j) its versions, newest first):
 * the value's entry, or NULL when absent or deleted. */
static const struct ct_ent *ct_visible(const struct ct_ent *e, size_t i, size_t j, uint64_t seq)
{
    for (size_t x = i; x < j; x++)
        if (tag_seq(e[x].tag) <= seq) return tag_kind(e[x].tag) == KIND_PUT ? &e[x] : NULL;
    return NULL;
}

/* Every key of `in` (and of `out`) reads the same in both at seq. Both sorted. */
static void ct_same_reads(const struct ct_set *in, const struct ct_set *out, uint64_t seq)
{
    size_t i = 0, o = 0;
    while (i < in->n || o < out->n) {
        const struct ct_ent *k;
        if (i >= in->n) k = &out->e[o];
        else if (o >= out->n) k = &in->e[i];
        else k = ukey_cmp(in->e[i].key, in->e[i].klen, out->e[o].key, out->e[o].klen) <= 0 ? &in->e[i] : &out->e[o];
        uint8_t key[16];
        size_t klen = k->klen;
        memcpy(key, k->key, klen);
        size_t i2 = i, o2 = o;
        while (i2 < in->n && ukey_cmp(in->e[i2].key, in->e[i2].klen, key, klen) == 0) i2++;
        while (o2 < out->n && ukey_cmp(out->e[o2].key, out->e[o2].klen, key, klen) == 0) o2++;
        const struct ct_ent *a = ct_visible(in->e, i, i2, seq), *b = ct_visible(out->e, o, o2, seq);
        cr_assert_eq(a == NULL, b == NULL, "key %s at seq %llu: input %s, output %s", tu_hex(key, klen),
                     (unsigned long long)seq, a ? "a value" : "nothing", b ? "a value" : "nothing");
        if (a) {
            cr_assert_eq(a->tag, b->tag, "key %s at seq %llu: version %llu, output %llu", tu_hex(key, klen),
                         (unsigned long long)seq, (unsigned long long)tag_seq(a->tag),
                         (unsigned long long)tag_seq(b->tag));
            cr_assert(a->vlen == b->vlen && memcmp(a->val, b->val, a->vlen) == 0, "key %s at seq %llu: value differs",
                      tu_hex(key, klen), (unsigned long long)seq);
        }
        i = i2;
        o = o2;
    }
}

static void ct_same_entries(const struct ct_set *want, const struct ct_set *got)
{
    size_t n = want->n < got->n ? want->n : got->n;
    for (size_t i = 0; i < n; i++) {
        const struct ct_ent *a = &want->e[i], *b = &got->e[i];
        cr_assert(ct_ent_cmp(a, b) == 0, "entry %zu: want %s seq %llu kind %u, got %s seq %llu kind %u", i,
                  tu_hex(a->key, a->klen), (unsigned long long)tag_seq(a->tag), tag_kind(a->tag),
                  tu_hex(b->key, b->klen), (unsigned long long)tag_seq(b->tag), tag_kind(b->tag));
        cr_assert(a->vlen == b->vlen && memcmp(a->val, b->val, a->vlen) == 0, "entry %zu: value differs", i);
    }
    cr_assert_eq(want->n, got->n, "want %zu entries, got %zu", want->n, got->n);
}

/* ---- a job ---- */

struct ct_job {
    struct compaction_job job;
    struct compaction_input in[16];
    struct ct_set all; /* every input entry */
};

static void ct_job_init(struct ct_job *j, unsigned out_level, int bottommost)
{
    memset(j, 0, sizeof *j);
    j->job.kind = JOB_MERGE;
    j->job.out_level = out_level;
    j->job.bottommost = bottommost;
    j->job.inputs = j->in;
}

/* Writes s as an input of `level` (s is consumed: its entries join j->all). */
static struct table_meta *ct_job_input(struct ct_job *j, unsigned level, struct ct_set *s, size_t block_size)
{
    cr_assert_lt(j->job.ninputs, 16);
    struct table_meta *m = ct_write(s, block_size);
    j->in[j->job.ninputs++] = (struct compaction_input){.level = level, .meta = m};
    for (size_t i = 0; i < s->n; i++) ct_push(&j->all, s->e[i]);
    free(s->e);
    memset(s, 0, sizeof *s);
    return m;
}

static void ct_job_free(struct ct_job *j)
{
    for (size_t i = 0; i < j->job.ninputs; i++) table_meta_unref(j->in[i].meta);
    free(j->all.e);
}

static struct compaction_env ct_env(const uint64_t *snaps, size_t nsnaps, uint64_t last_seq, uint64_t target)
{
    static const struct table_options topts = {.block_size = 1024, .restart_interval = 16, .bloom_bits = 10};
    return (struct compaction_env){
        .dir = ct_dir,
        .man = ct_man,
        .tables = ct_tc,
        .space = 1,
        .snapshots = snaps,
        .nsnapshots = nsnaps,
        .last_seq = last_seq,
        .topts = &topts,
        .target_bytes = target,
    };
}

/* Table files in the folder. */
static size_t ct_count_tables(void)
{
    DIR *d = opendir(ct_dir);
    cr_assert_not_null(d);
    size_t n = 0;
    struct dirent *de;
    uint64_t num;
    while ((de = readdir(d)) != NULL)
        if (table_parse_name(de->d_name, &num)) n++;
    closedir(d);
    return n;
}

/* Checks the edit against the job (every input deleted, every output added
 * at out_level with its meta matching the file), reads every output in order
 * into got, and checks outputs are sorted with disjoint user-key ranges. */
static void ct_check_edit(const struct ct_job *j, const struct version_edit *e, struct ct_set *got)
{
    cr_assert_eq(e->ndels, j->job.ninputs);
    for (size_t i = 0; i < j->job.ninputs; i++) {
        int found = 0;
        for (size_t d = 0; d < e->ndels; d++)
            found += e->dels[d].level == j->in[i].level && e->dels[d].number == j->in[i].meta->number;
        cr_assert_eq(found, 1, "input %llu deleted %d times", (unsigned long long)j->in[i].meta->number, found);
    }
    if (e->nadds) {
        cr_assert(e->has_next_file);
    }
    for (size_t a = 0; a < e->nadds; a++) {
        const struct table_meta *m = e->adds[a].meta;
        cr_assert_eq(e->adds[a].level, j->job.out_level);
        cr_assert_gt(e->next_file, m->number);
        for (size_t i = 0; i < j->job.ninputs; i++) cr_assert_neq(m->number, j->in[i].meta->number);
        size_t before = got->n;
        ct_read_table(m, got);
        cr_assert_gt(got->n, before, "output %zu is empty", a);
        const struct ct_ent *first = &got->e[before], *last = &got->e[got->n - 1];
        size_t tombs = 0;
        uint64_t mins = UINT64_MAX, maxs = 0;
        for (size_t x = before; x < got->n; x++) {
            tombs += tag_kind(got->e[x].tag) == KIND_DELETE;
            uint64_t s = tag_seq(got->e[x].tag);
            if (s < mins) mins = s;
            if (s > maxs) maxs = s;
        }
        cr_assert_eq(m->entries, got->n - before);
        cr_assert_eq(m->tombstones, tombs);
        cr_assert_eq(m->min_seq, mins);
        cr_assert_eq(m->max_seq, maxs);
        cr_assert(ukey_cmp(m->smallest.p, m->smallest.len, first->key, first->klen) == 0);
        cr_assert_eq(m->smallest_tag, first->tag);
        cr_assert(ukey_cmp(m->largest.p, m->largest.len, last->key, last->klen) == 0);
        cr_assert_eq(m->largest_tag, last->tag);
        if (a > 0) {
            const struct table_meta *p = e->adds[a - 1].meta;
            cr_assert_lt(ukey_cmp(p->largest.p, p->largest.len, m->smallest.p, m->smallest.len), 0,
                         "outputs %zu and %zu share user key %s", a - 1, a, tu_hex(m->smallest.p, m->smallest.len));
        }
    }
}

/* Runs j, checks the edit, the kept entries and the reads at every reader. */
static void ct_run_and_check(struct ct_job *j, const uint64_t *snaps, size_t nsnaps, uint64_t last_seq,
                             uint64_t target, struct compaction_stats *st_out, struct ct_set *got_out)
{
    struct compaction_env env = ct_env(snaps, nsnaps, last_seq, target);
    struct version_edit e;
    version_edit_init(&e);
    struct compaction_stats st;
    int rc = compaction_run(&j->job, &env, &e, &st);
    cr_assert_eq(rc, TIND_OK, "compaction_run: %d (%s)", rc, tind_strerror(rc));
    struct ct_set got = {0};
    ct_check_edit(j, &e, &got);
    ct_sort(&j->all);
    struct ct_set want = {0};
    ct_expected(&j->all, snaps, nsnaps, last_seq, j->job.bottommost, &want);
    ct_same_entries(&want, &got);
    for (size_t s = 0; s < nsnaps; s++) ct_same_reads(&j->all, &got, snaps[s]);
    ct_same_reads(&j->all, &got, last_seq);
    /* Readers that come once the versions above last_seq are published. */
    for (size_t x = 0; x < j->all.n; x++)
        if (tag_seq(j->all.e[x].tag) > last_seq) ct_same_reads(&j->all, &got, tag_seq(j->all.e[x].tag));

    uint64_t in_bytes = 0, out_bytes = 0;
    for (size_t i = 0; i < j->job.ninputs; i++) in_bytes += j->in[i].meta->size;
    for (size_t a = 0; a < e.nadds; a++) out_bytes += e.adds[a].meta->size;
    cr_assert_eq(st.bytes_read, in_bytes);
    cr_assert_eq(st.bytes_written, out_bytes);
    cr_assert_eq(st.tables_written, e.nadds);
    cr_assert_eq(st.entries_read, j->all.n);
    cr_assert_eq(st.entries_written, got.n);
    cr_assert_eq(st.entries_dropped, j->all.n - got.n);
    if (st_out) *st_out = st;
    /* The outputs stay: nothing marks them obsolete (the caller would apply
     * the edit); the folder is removed at teardown. */
    version_edit_free(&e);
    free(want.e);
    if (got_out) *got_out = got;
    else free(got.e);
}

/* ---- tests ---- */

Test(compactor, versions_collapse_without_snapshots)
{
    struct ct_job j;
    ct_job_init(&j, 1, 0);
    uint64_t seq = 0;
    /* Three overlapping level-0 tables, each overwriting keys 0..99, and a
     * delete of key 7 in the newest. */
    for (int t = 0; t < 3; t++) {
        struct ct_set s = {0};
        for (unsigned k = 0; k < 100; k++) ct_push(&s, ct_make(k, ++seq, KIND_PUT, 20));
        if (t == 2) ct_push(&s, ct_make(7, ++seq, KIND_DELETE, 0));
        ct_job_input(&j, 0, &s, 4096);
    }
    struct ct_set got;
    ct_run_and_check(&j, NULL, 0, seq, 0, NULL, &got);
    cr_assert_eq(got.n, 100); /* the newest version of each key; key 7's tombstone (not bottommost) */
    for (size_t i = 0; i < got.n; i++) {
        uint64_t s = tag_seq(got.e[i].tag);
        cr_assert(s > 200, "entry %zu is version %llu, not the newest", i, (unsigned long long)s);
    }
    cr_assert_eq(tag_kind(got.e[7].tag), KIND_DELETE);
    free(got.e);
    ct_job_free(&j);
}

Test(compactor, tombstones_dropped_only_when_bottommost_and_unneeded)
{
    for (int bottom = 0; bottom < 2; bottom++) {
        struct ct_job j;
        ct_job_init(&j, 2, bottom);
        struct ct_set s = {0};
        ct_push(&s, ct_make(1, 1, KIND_PUT, 10));    /* key 1: put 1, delete 2 (no snapshot between) */
        ct_push(&s, ct_make(1, 2, KIND_DELETE, 0));
        ct_push(&s, ct_make(2, 3, KIND_PUT, 10));    /* key 2: put 3, [snapshot 4], delete 5 */
        ct_push(&s, ct_make(2, 5, KIND_DELETE, 0));
        ct_push(&s, ct_make(3, 6, KIND_DELETE, 0));  /* key 3: a lone tombstone */
        ct_push(&s, ct_make(4, 7, KIND_PUT, 10));    /* key 4: put 7 */
        ct_push(&s, ct_make(5, 8, KIND_DELETE, 0));  /* key 5: delete 8, [snapshot 9], delete 10 */
        ct_push(&s, ct_make(5, 10, KIND_DELETE, 0));
        ct_job_input(&j, 1, &s, 4096);
        uint64_t snaps[] = {4, 9};
        struct ct_set got;
        ct_run_and_check(&j, snaps, 2, 10, 0, NULL, &got);
        if (bottom) {
            /* Keys 1, 3 and 5 vanish; key 2 keeps put 3 (snapshot 4) and the
             * tombstone that hides it from later readers. */
            cr_assert_eq(got.n, 3);
            cr_assert_eq(got.e[0].tag, tag_pack(5, KIND_DELETE));
            cr_assert_eq(got.e[1].tag, tag_pack(3, KIND_PUT));
            cr_assert_eq(got.e[2].tag, tag_pack(7, KIND_PUT));
        } else {
            /* Every key keeps its newest tombstone but key 5, whose delete 10
             * adds nothing to delete 8 below it. */
            cr_assert_eq(got.n, 6);
            cr_assert_eq(got.e[0].tag, tag_pack(2, KIND_DELETE));
            cr_assert_eq(got.e[1].tag, tag_pack(5, KIND_DELETE));
            cr_assert_eq(got.e[2].tag, tag_pack(3, KIND_PUT));
            cr_assert_eq(got.e[3].tag, tag_pack(6, KIND_DELETE));
            cr_assert_eq(got.e[5].tag, tag_pack(8, KIND_DELETE));
        }
        free(got.e);
        ct_job_free(&j);
    }
}

/* Seeded: many versions, deletes and snapshots over inputs from level 0
 * (overlapping) and level 1 (disjoint), checked against the reference. */
Test(compactor, snapshots_keep_what_they_see_randomized)
{
    uint64_t rs = tu_seed("compactor/snapshots_keep_what_they_see_randomized");
    for (int round = 0; round < 12; round++) {
        struct ct_job j;
        ct_job_init(&j, 1 + (unsigned)tu_below(&rs, 3), (int)tu_below(&rs, 2));
        unsigned nkeys = 50 + (unsigned)tu_below(&rs, 400);
        unsigned nops = 200 + (unsigned)tu_below(&rs, 3000);
        unsigned split = nops / 2; /* older writes in level 1, newer in level 0 */
        unsigned nl1 = 1 + (unsigned)tu_below(&rs, 4), nl0 = 1 + (unsigned)tu_below(&rs, 4);
        struct ct_set l1[4] = {{0}}, l0[4] = {{0}};
        /* A key hot enough to get many versions. */
        unsigned hot = (unsigned)tu_below(&rs, nkeys);
        for (unsigned op = 1; op <= nops; op++) {
            unsigned k = tu_below(&rs, 4) == 0 ? hot : (unsigned)tu_below(&rs, nkeys);
            unsigned kind = tu_below(&rs, 5) == 0 ? KIND_DELETE : KIND_PUT;
            struct ct_ent e = ct_make(k, op, kind, 1 + (size_t)tu_below(&rs, 100));
            if (op <= split) ct_push(&l1[(size_t)k * nl1 / nkeys], e);
            else ct_push(&l0[tu_below(&rs, nl0)], e);
        }
        for (unsigned t = 0; t < nl1; t++)
            if (l1[t].n) ct_job_input(&j, 1, &l1[t], 512);
            else free(l1[t].e);
        for (unsigned t = 0; t < nl0; t++)
            if (l0[t].n) ct_job_input(&j, 0, &l0[t], 512);
            else free(l0[t].e);
        /* One round in three, the newest writes are not yet published (a
         * memtable sealed inside a commit group): snapshots are older. */
        uint64_t last = tu_below(&rs, 3) ? nops : nops - tu_below(&rs, nops / 4);
        size_t nsnaps = (size_t)tu_below(&rs, 12);
        uint64_t snaps[12];
        for (size_t i = 0; i < nsnaps; i++) snaps[i] = 1 + tu_below(&rs, last);
        /* ascending, unique */
        for (size_t a = 0; a < nsnaps; a++)
            for (size_t b = a + 1; b < nsnaps; b++)
                if (snaps[b] < snaps[a]) {
                    uint64_t t = snaps[a];
                    snaps[a] = snaps[b];
                    snaps[b] = t;
                }
        size_t u = 0;
        for (size_t i = 0; i < nsnaps; i++)
            if (u == 0 || snaps[u - 1] != snaps[i]) snaps[u++] = snaps[i];
        nsnaps = u;
        uint64_t target = tu_below(&rs, 2) ? 0 : 2048 + tu_below(&rs, 16384);
        ct_run_and_check(&j, snaps, nsnaps, last, target, NULL, NULL);
        ct_job_free(&j);
    }
}

/* A memtable sealed inside a commit group reaches a table, and a compaction,
 * with writes above the published sequence number. A reader at the published
 * number (or a snapshot taken now) still needs the version below them, and
 * each of them is what some later reader sees. */
Test(compactor, versions_above_the_published_sequence_hide_nothing)
{
    for (int bottom = 0; bottom < 2; bottom++) {
        struct ct_job j;
        ct_job_init(&j, 1, bottom);
        struct ct_set old = {0}, sealed = {0};
        ct_push(&old, ct_make(1, 1, KIND_PUT, 10)); /* key 1: put 1 | put 11, put 12 */
        ct_push(&old, ct_make(2, 2, KIND_PUT, 10)); /* key 2: put 2 | delete 13 */
        ct_push(&old, ct_make(3, 3, KIND_PUT, 10)); /* key 3: put 3, delete 4 | put 14 */
        ct_push(&old, ct_make(3, 4, KIND_DELETE, 0));
        ct_push(&old, ct_make(4, 5, KIND_PUT, 10)); /* key 4: put 5, put 6 (snapshot 6) | put 15 */
        ct_push(&old, ct_make(4, 6, KIND_PUT, 10));
        ct_job_input(&j, 1, &old, 4096);
        ct_push(&sealed, ct_make(1, 11, KIND_PUT, 10));
        ct_push(&sealed, ct_make(1, 12, KIND_PUT, 10));
        ct_push(&sealed, ct_make(2, 13, KIND_DELETE, 0));
        ct_push(&sealed, ct_make(3, 14, KIND_PUT, 10));
        ct_push(&sealed, ct_make(4, 15, KIND_PUT, 10));
        ct_job_input(&j, 0, &sealed, 4096);
        uint64_t snaps[] = {6};
        struct ct_set got;
        ct_run_and_check(&j, snaps, 1, 10, 0, NULL, &got);
        const uint64_t want_bottom[] = {tag_pack(12, KIND_PUT), tag_pack(11, KIND_PUT), tag_pack(1, KIND_PUT),
                                        tag_pack(13, KIND_DELETE), tag_pack(2, KIND_PUT), tag_pack(14, KIND_PUT),
                                        tag_pack(15, KIND_PUT), tag_pack(6, KIND_PUT)};
        /* Not bottommost, key 3's delete 4 stays: it may hide an older put below the output level. */
        const uint64_t want_mid[] = {tag_pack(12, KIND_PUT), tag_pack(11, KIND_PUT), tag_pack(1, KIND_PUT),
                                     tag_pack(13, KIND_DELETE), tag_pack(2, KIND_PUT), tag_pack(14, KIND_PUT),
                                     tag_pack(4, KIND_DELETE), tag_pack(15, KIND_PUT), tag_pack(6, KIND_PUT)};
        const uint64_t *want = bottom ? want_bottom : want_mid;
        size_t nwant = bottom ? sizeof want_bottom / sizeof *want_bottom : sizeof want_mid / sizeof *want_mid;
        cr_assert_eq(got.n, nwant, "bottommost %d: %zu entries kept, want %zu", bottom, got.n, nwant);
        for (size_t i = 0; i < nwant; i++)
            cr_assert_eq(got.e[i].tag, want[i], "bottommost %d: entry %zu is seq %llu kind %u, want seq %llu", bottom,
                         i, (unsigned long long)tag_seq(got.e[i].tag), tag_kind(got.e[i].tag),
                         (unsigned long long)tag_seq(want[i]));
        free(got.e);
        ct_job_free(&j);
    }
}

Test(compactor, outputs_cut_near_target_on_key_boundaries)
{
    struct ct_job j;
    ct_job_init(&j, 1, 0);
    const uint64_t target = 32 * 1024;
    /* Keys 0..999 with 100-byte values (one version each), then key 1000
     * with 3000 versions that a snapshot each keeps (about 230 KiB, far
     * over the target), then keys 1001..1999. */
    struct ct_set a = {0}, b = {0};
    uint64_t seq = 0;
    for (unsigned k = 0; k < 1000; k++) ct_push(&a, ct_make(k, ++seq, KIND_PUT, 100));
    uint64_t *snaps = malloc(3000 * sizeof *snaps);
    cr_assert_not_null(snaps);
    for (unsigned v = 0; v < 3000; v++) {
        snaps[v] = ++seq;
        ct_push(v % 2 ? &a : &b, ct_make(1000, seq, KIND_PUT, 64));
    }
    for (unsigned k = 1001; k < 2000; k++) ct_push(&b, ct_make(k, ++seq, KIND_PUT, 100));
    ct_job_input(&j, 0, &b, 4096);
    ct_job_input(&j, 0, &a, 4096);
    struct version_edit e;
    version_edit_init(&e);
    struct compaction_env env = ct_env(snaps, 3000, seq + 1, target);
    struct compaction_stats st;
    cr_assert_eq(compaction_run(&j.job, &env, &e, &st), TIND_OK);
    struct ct_set got = {0};
    ct_check_edit(&j, &e, &got);
    cr_assert_eq(got.n, 1999 + 3000);
    cr_assert_gt(e.nadds, 4);
    int hot_seen = 0;
    for (size_t i = 0; i < e.nadds; i++) {
        const struct table_meta *m = e.adds[i].meta;
        uint8_t hot[16];
        size_t hl = (size_t)snprintf((char *)hot, sizeof hot, "k%07u", 1000u);
        int has_hot = ukey_cmp(m->smallest.p, m->smallest.len, hot, hl) <= 0 &&
                      ukey_cmp(hot, hl, m->largest.p, m->largest.len) <= 0;
        if (has_hot) {
            hot_seen++;
            cr_assert_geq(m->entries, 3000, "the hot key's table holds %llu entries", (unsigned long long)m->entries);
            cr_assert_gt(m->size, 4 * target);
        } else {
            /* Past the target by at most one key's entry, a block and the table's tail. */
            cr_assert_lt(m->size, target + 16 * 1024, "output %zu: %llu bytes", i, (unsigned long long)m->size);
        }
        if (i + 1 < e.nadds)
            cr_assert_geq(m->size, target, "output %zu cut early: %llu bytes", i, (unsigned long long)m->size);
    }
    cr_assert_eq(hot_seen, 1);
    cr_assert_eq(st.tables_written, e.nadds);
    version_edit_free(&e);
    free(got.e);
    free(snaps);
    ct_job_free(&j);
}

Test(compactor, inputs_from_two_levels)
{
    struct ct_job j;
    ct_job_init(&j, 1, 1);
    uint64_t seq = 0;
    /* Level 1: three disjoint tables over keys 0..299 (given out of order). */
    struct ct_set l1[3] = {{0}};
    for (unsigned k = 0; k < 300; k++) ct_push(&l1[k / 100], ct_make(k, ++seq, KIND_PUT, 30));
    ct_job_input(&j, 1, &l1[2], 512);
    ct_job_input(&j, 1, &l1[0], 512);
    ct_job_input(&j, 1, &l1[1], 512);
    /* Level 0: two overlapping tables, overwriting and deleting across the range. */
    for (int t = 0; t < 2; t++) {
        struct ct_set s = {0};
        for (unsigned k = (unsigned)t * 7; k < 320; k += 5)
            ct_push(&s, ct_make(k, ++seq, k % 3 ? KIND_PUT : KIND_DELETE, 30));
        ct_job_input(&j, 0, &s, 512);
    }
    uint64_t snaps[] = {150, 320};
    ct_run_and_check(&j, snaps, 2, seq, 4096, NULL, NULL);
    ct_job_free(&j);
}

/* Either stop flag (the database closing, the keyspace dropped) stops the merge. */
Test(compactor, stop_flag_returns_busy_and_leaves_nothing)
{
    for (int slot = 0; slot < 2; slot++) {
        struct ct_job j;
        ct_job_init(&j, 1, 0);
        struct ct_set s = {0};
        for (unsigned k = 0; k < 500; k++) ct_push(&s, ct_make(k, k + 1, KIND_PUT, 50));
        ct_job_input(&j, 0, &s, 1024);
        size_t before = ct_count_tables();
        _Atomic int stop = 1, idle = 0;
        struct compaction_env env = ct_env(NULL, 0, 500, 1024);
        env.stop[slot] = &stop;
        env.stop[1 - slot] = &idle;
        struct version_edit e;
        version_edit_init(&e);
        struct compaction_stats st;
        cr_assert_eq(compaction_run(&j.job, &env, &e, &st), TIND_BUSY, "stop flag %d", slot);
        cr_assert_eq(e.nadds, 0);
        cr_assert_eq(e.ndels, 0);
        cr_assert_eq(e.has_next_file, 0);
        cr_assert_eq(ct_count_tables(), before);
        version_edit_free(&e);
        ct_job_free(&j);
    }
}

static void ct_flip(const char *path, uint64_t off)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, (long)off, SEEK_SET), 0);
    int c = fgetc(f);
    cr_assert_neq(c, EOF);
    cr_assert_eq(fseek(f, (long)off, SEEK_SET), 0);
    fputc(c ^ 0x5a, f);
    cr_assert_eq(fclose(f), 0);
}

Test(compactor, corrupt_input_fails_and_removes_outputs)
{
    struct ct_job j;
    ct_job_init(&j, 1, 0);
    struct ct_set a = {0}, b = {0};
    uint64_t seq = 0;
    for (unsigned k = 0; k < 2000; k++) ct_push(&a, ct_make(k, ++seq, KIND_PUT, 60));
    for (unsigned k = 0; k < 2000; k += 2) ct_push(&b, ct_make(k, ++seq, KIND_PUT, 60));
    ct_job_input(&j, 1, &a, 1024);
    struct table_meta *mb = ct_job_input(&j, 0, &b, 1024);
    /* A byte at about 80% of b's data blocks: outputs are finished before the merge gets there. */
    table *t;
    cr_assert_eq(table_open(mb->path, mb->size, NULL, &t), TIND_OK);
    uint64_t data = table_get_props(t)->data_bytes;
    table_unref(t);
    ct_flip(mb->path, data * 4 / 5);
    size_t before = ct_count_tables();
    struct compaction_env env = ct_env(NULL, 0, seq, 8192);
    struct version_edit e;
    version_edit_init(&e);
    struct compaction_stats st;
    cr_assert_eq(compaction_run(&j.job, &env, &e, &st), TIND_CORRUPTION);
    cr_assert_gt(st.tables_written, 0, "the corruption was met before any output was finished");
    cr_assert_eq(e.nadds, 0);
    cr_assert_eq(e.ndels, 0);
    cr_assert_eq(ct_count_tables(), before);
    version_edit_free(&e);
    ct_job_free(&j);
}

Test(compactor, bad_jobs_are_invalid)
{
    struct ct_job j;
    ct_job_init(&j, 1, 0);
    struct compaction_env env = ct_env(NULL, 0, 1, 0);
    struct version_edit e;
    version_edit_init(&e);
    cr_assert_eq(compaction_run(&j.job, &env, &e, NULL), TIND_INVALID); /* no inputs */
    struct ct_set s = {0};
    ct_push(&s, ct_make(1, 1, KIND_PUT, 5));
    ct_job_input(&j, 0, &s, 4096);
    j.job.kind = JOB_MOVE;
    cr_assert_eq(compaction_run(&j.job, &env, &e, NULL), TIND_INVALID);
    j.job.kind = JOB_MERGE;
    j.job.out_level = LSM_LEVELS;
    cr_assert_eq(compaction_run(&j.job, &env, &e, NULL), TIND_INVALID);
    cr_assert_eq(e.nadds + e.ndels, 0);
    version_edit_free(&e);
    ct_job_free(&j);
}

Test(compactor, job_free_drops_input_references)
{
    struct compaction_job *job = calloc(1, sizeof *job);
    cr_assert_not_null(job);
    job->inputs = calloc(2, sizeof *job->inputs);
    cr_assert_not_null(job->inputs);
    job->ninputs = 2;
    for (size_t i = 0; i < 2; i++) {
        job->inputs[i].meta = table_meta_new(ct_dir, 1000 + i);
        cr_assert_not_null(job->inputs[i].meta);
    }
    struct table_meta *keep = job->inputs[0].meta;
    table_meta_ref(keep);
    compaction_job_free(job);
    cr_assert_eq(atomic_load(&keep->refs), 1);
    table_meta_unref(keep);
    compaction_job_free(NULL);
}

Test(compactor, outputs_take_the_newest_input_time)
{
    const uint64_t times[][2] = {{100, 200}, {300, 0}};
    const uint64_t want[] = {200, 0};
    for (int c = 0; c < 2; c++) {
        struct ct_job j;
        ct_job_init(&j, 1, 0);
        for (unsigned t = 0; t < 2; t++) {
            struct ct_set s = {0};
            for (unsigned k = 0; k < 10; k++) ct_push(&s, ct_make(k, 10 * t + k + 1, KIND_PUT, 8));
            ct_job_input(&j, 0, &s, 4096)->created = times[c][t];
        }
        struct compaction_env env = ct_env(NULL, 0, 100, 0);
        struct version_edit e;
        version_edit_init(&e);
        cr_assert_eq(compaction_run(&j.job, &env, &e, NULL), TIND_OK);
        cr_assert_eq(e.nadds, 1);
        cr_assert_eq(e.adds[0].meta->created, want[c]);
        version_edit_free(&e);
        ct_job_free(&j);
    }
}
