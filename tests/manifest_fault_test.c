/* The manifest under injected faults: failed appends, syncs and rewrites
 * poison it, and a reopen gives the last durable version. */
#include "tests/manifest_common.h"

TestSuite(manifest_faults, .init = mt_setup, .fini = mt_teardown);

/* ---- faults ------------------------------------------------------------------------------------------ */

/* Level 0 numbers of a reopened manifest. */
static const char *mt_reopened_level0(void)
{
    static char s[4096];
    manifest *m = mt_open(0);
    struct version *v = manifest_current(m);
    snprintf(s, sizeof s, "%s", mt_level(v, 0));
    version_unref(v);
    manifest_close(m);
    cr_assert(!mt_exists(mt_path(MANIFEST_FILE ".tmp")), "MANIFEST.tmp left after open");
    return s;
}

/* Arms the fault, applies a flush of table 3 on top of tables 1 and 2, and
 * checks the failure and the poisoning. Returns what reopening found in
 * level 0. */
static const char *mt_fault_on_append(const struct file_fault *f, int want_rc)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    version_edit_init(&e);
    mt_add(&e, 0, 1, "a", "b");
    mt_apply(m, &e);
    version_edit_init(&e);
    mt_add(&e, 0, 2, "a", "b");
    mt_apply(m, &e);
    struct version *before = manifest_current(m);
    uint64_t size = mt_size(mt_path(MANIFEST_FILE));

    version_edit_init(&e);
    mt_add(&e, 0, 3, "c", "d");
    mt_del(&e, 0, 1);
    file_fault_set(f);
    int rc = manifest_apply(m, &e);
    file_fault_clear();
    version_edit_free(&e);
    cr_assert_eq(rc, want_rc, "apply under the fault: %d (%s), want %d", rc, err_msg(), want_rc);
    cr_assert(strstr(err_msg(), "MANIFEST"), "message names the file: %s", err_msg());
    cr_assert_eq(file_fault_fired(), 1u);
    struct version *now = manifest_current(m);
    cr_assert_eq(now, before, "the version switched after a failed apply");
    version_unref(now);
    cr_assert(mt_exists(mt_table_path(1)), "a table of a failed apply was removed");

    /* Poisoned: no more applies, even valid ones, and no more I/O. */
    version_edit_init(&e);
    mt_add(&e, 0, 4, "c", "d");
    uint64_t size2 = mt_size(mt_path(MANIFEST_FILE));
    MT_RC(manifest_apply(m, &e), TIND_POISONED);
    version_edit_free(&e);
    cr_assert_eq(mt_size(mt_path(MANIFEST_FILE)), size2);
    cr_assert_geq(size2, size);
    struct version *v = manifest_current(m);
    mt_version_eq(before, v);
    version_unref(v);
    version_unref(before);
    manifest_close(m);
    return mt_reopened_level0();
}

Test(manifest_faults, fault_write_poisons_and_reopen_gives_the_last_durable_version)
{
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = "/MANIFEST", .nth = 0, .err = EIO};
    cr_assert_str_eq(mt_fault_on_append(&f, TIND_IO_ERROR), "2,1");
}

Test(manifest_faults, fault_no_space_poisons)
{
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = "/MANIFEST", .nth = 0, .err = ENOSPC};
    cr_assert_str_eq(mt_fault_on_append(&f, TIND_NO_SPACE), "2,1");
}

Test(manifest_faults, fault_short_write_leaves_a_torn_tail_that_open_cuts)
{
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = "/MANIFEST", .nth = 0, .err = EIO,
                           .short_write = 1};
    cr_assert_str_eq(mt_fault_on_append(&f, TIND_IO_ERROR), "2,1");
}

Test(manifest_faults, fault_fsync_poisons)
{
    /* The record reached the page cache before the failed fsync: a reopen
     * may find it or not (here it does); either is a version that was
     * durable or in flight, never a mix. */
    struct file_fault f = {.ops = FOP_BIT(FOP_SYNC) | FOP_BIT(FOP_DATASYNC), .path_part = "/MANIFEST", .nth = 0,
                           .err = EIO};
    const char *got = mt_fault_on_append(&f, TIND_IO_ERROR);
    cr_assert(!strcmp(got, "2,1") || !strcmp(got, "3,2"), "reopened level 0: %s", got);
}

/* Big edits until one rewrites MANIFEST under the fault; checks it failed
 * there, poisoned the manifest, and what a reopen finds. `after` says
 * whether the failure came after the rename (the new state is then what a
 * reopen reads). */
static void mt_fault_on_rewrite(const struct file_fault *f, int after)
{
    manifest *m = mt_open(1);
    uint64_t prev = 0, added = 0, unused;
    int rc = TIND_OK;
    file_fault_set(f);
    for (int i = 0; i < 200 && rc == TIND_OK; i++) rc = mt_apply_big(m, &prev, &added);
    cr_assert_eq(file_fault_fired(), 1u, "the fault never fired (%s)", err_msg());
    file_fault_clear();
    cr_assert_neq(rc, TIND_OK, "no rewrite failed");
    cr_assert(strstr(err_msg(), "MANIFEST") || strstr(err_msg(), g_dir), "message: %s", err_msg());
    struct version *v = manifest_current(m);
    cr_assert(v->nfiles[1] == 1 && v->files[1][0]->number == prev, "the failed apply switched");
    version_unref(v);
    MT_RC(mt_apply_big(m, &prev, &unused), TIND_POISONED);
    manifest_close(m);
    m = mt_open(0);
    v = manifest_current(m);
    cr_assert_eq(v->nfiles[1], 1u);
    uint64_t want = after ? added : prev;
    cr_assert_eq(v->files[1][0]->number, want, "reopened with table %llu, want %llu",
                 (unsigned long long)v->files[1][0]->number, (unsigned long long)want);
    cr_assert(mt_exists(v->files[1][0]->path));
    version_unref(v);
    manifest_close(m);
    cr_assert(!mt_exists(mt_path(MANIFEST_FILE ".tmp")), "MANIFEST.tmp left after open");
}

Test(manifest_faults, fault_rewrite_tmp_write, .timeout = 60)
{
    struct file_fault f = {.ops = FOP_BIT(FOP_WRITE), .path_part = "MANIFEST.tmp", .nth = 0, .err = EIO,
                           .short_write = 1};
    mt_fault_on_rewrite(&f, 0);
}

Test(manifest_faults, fault_rewrite_tmp_fsync, .timeout = 60)
{
    struct file_fault f = {.ops = FOP_BIT(FOP_SYNC) | FOP_BIT(FOP_DATASYNC), .path_part = "MANIFEST.tmp", .nth = 0,
                           .err = EIO};
    mt_fault_on_rewrite(&f, 0);
}

Test(manifest_faults, fault_rewrite_rename, .timeout = 60)
{
    struct file_fault f = {.ops = FOP_BIT(FOP_RENAME), .path_part = "/MANIFEST", .nth = 0, .err = EIO};
    mt_fault_on_rewrite(&f, 0);
}

Test(manifest_faults, fault_rewrite_directory_fsync, .timeout = 60)
{
    /* After the rename: the new state is what a reopen reads. */
    struct file_fault f = {.ops = FOP_BIT(FOP_SYNC_DIR), .path_part = NULL, .nth = 0, .err = EIO};
    f.path_part = g_dir;
    mt_fault_on_rewrite(&f, 1);
}

Test(manifest_faults, fault_at_create_leaves_no_manifest)
{
    manifest *m = NULL;
    struct file_fault f = {.ops = FOP_BIT(FOP_SYNC), .path_part = "MANIFEST.tmp", .nth = 0, .err = EIO};
    file_fault_set(&f);
    MT_RC(manifest_open(g_dir, 1, &m), TIND_IO_ERROR);
    file_fault_clear();
    cr_assert_null(m);
    cr_assert(!mt_exists(mt_path(MANIFEST_FILE)));
    /* The next create succeeds and removes the leftover. */
    m = mt_open(1);
    cr_assert(!mt_exists(mt_path(MANIFEST_FILE ".tmp")));
    manifest_close(m);
    /* A failed cut of a torn tail fails the open and changes nothing. */
    uint8_t *d;
    size_t n;
    mt_read(mt_path(MANIFEST_FILE), &d, &n);
    uint8_t *c = malloc(n + 3);
    memcpy(c, d, n);
    memset(c + n, 0, 3);
    mt_write_file(mt_path(MANIFEST_FILE), c, n + 3);
    struct file_fault t = {.ops = FOP_BIT(FOP_TRUNCATE), .path_part = "/MANIFEST", .nth = 0, .err = EIO};
    file_fault_set(&t);
    MT_RC(manifest_open(g_dir, 0, &m), TIND_IO_ERROR);
    file_fault_clear();
    cr_assert_eq(mt_size(mt_path(MANIFEST_FILE)), n + 3);
    m = mt_open(0);
    cr_assert_eq(mt_size(mt_path(MANIFEST_FILE)), n);
    manifest_close(m);
    free(c);
    free(d);
}

/* ---- manifest_check ------------------------------------------------------------------------------- */

Test(manifest_faults, check_reports_broken_invariants)
{
    manifest *m = mt_open(1);
    struct version_edit e;
    version_edit_init(&e);
    mt_add(&e, 0, 1, "a", "b");
    mt_add(&e, 0, 2, "a", "b");
    mt_add(&e, 1, 3, "a", "b");
    mt_add(&e, 1, 4, "c", "d");
    mt_apply(m, &e);
    MT_OK(manifest_check(m));
    /* The in-memory version is broken on purpose, then restored. */
    struct version *v = manifest_current(m);
    struct table_meta *t = v->files[1][0];
    uint64_t s = t->min_seq;
    t->min_seq = t->max_seq + 1;
    MT_RC(manifest_check(m), TIND_CORRUPTION);
    cr_assert(strstr(err_msg(), "level 1 table 3: min_seq"), "%s", err_msg());
    t->min_seq = s;
    uint8_t c = t->smallest.p[0];
    t->smallest.p[0] = 'z';
    MT_RC(manifest_check(m), TIND_CORRUPTION);
    cr_assert(strstr(err_msg(), "smallest key above its largest"), "%s", err_msg());
    t->smallest.p[0] = c;
    v->files[1][0] = v->files[1][1];
    v->files[1][1] = t;
    MT_RC(manifest_check(m), TIND_CORRUPTION);
    cr_assert(strstr(err_msg(), "level 1: table 3 overlaps table 4"), "%s", err_msg());
    v->files[1][1] = v->files[1][0];
    v->files[1][0] = t;
    t = v->files[0][0];
    v->files[0][0] = v->files[0][1];
    v->files[0][1] = t;
    MT_RC(manifest_check(m), TIND_CORRUPTION);
    cr_assert(strstr(err_msg(), "level 0"), "%s", err_msg());
    v->files[0][1] = v->files[0][0];
    v->files[0][0] = t;
    v->level_bytes[1]++;
    MT_RC(manifest_check(m), TIND_CORRUPTION);
    cr_assert(strstr(err_msg(), "level_bytes"), "%s", err_msg());
    v->level_bytes[1]--;
    MT_OK(manifest_check(m));
    version_unref(v);
    manifest_close(m);
}

/* ---- threads ---------------------------------------------------------------------------------------- */

struct mt_reader {
    manifest *m;
    atomic_int stop;
    int failed;
    char what[256];
    uint64_t reads;
    uint64_t numbers[256];
    size_t nnumbers;
};

/* Takes versions as fast as it can while the main thread applies: each one
 * must keep its invariants, its tables' files must all exist while it is
 * held, and flushed_seq never goes back. It also draws file numbers. */
static void *mt_reader_main(void *arg)
{
    struct mt_reader *r = arg;
    uint64_t last_flushed = 0;
    while (!atomic_load(&r->stop) && !r->failed) {
        struct version *v = manifest_current(r->m);
        uint64_t f = manifest_flushed_seq(r->m);
        if (f < last_flushed) {
            snprintf(r->what, sizeof r->what, "flushed_seq went back from %llu to %llu",
                     (unsigned long long)last_flushed, (unsigned long long)f);
            r->failed = 1;
        }
        last_flushed = f;
        for (unsigned l = 0; l < LSM_LEVELS && !r->failed; l++) {
            for (size_t i = 0; i < v->nfiles[l] && !r->failed; i++) {
                const struct table_meta *t = v->files[l][i];
                if (i > 0 && l == 0 && v->files[0][i - 1]->number <= t->number) {
                    snprintf(r->what, sizeof r->what, "level 0 out of order");
                    r->failed = 1;
                }
                if (file_exists(t->path) != 1) {
                    snprintf(r->what, sizeof r->what, "%s removed while a version holds it", t->path);
                    r->failed = 1;
                }
            }
        }
        version_unref(v);
        if (r->nnumbers < 256 && r->reads % 16 == 0) r->numbers[r->nnumbers++] = manifest_new_file_number(r->m);
        r->reads++;
    }
    return NULL;
}

Test(manifest_faults, concurrent_readers_while_edits_apply, .timeout = 120)
{
    manifest *m = mt_open(1);
    struct mt_reader r[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].m = m;
        atomic_init(&r[i].stop, 0);
        cr_assert_eq(pthread_create(&th[i], NULL, mt_reader_main, &r[i]), 0);
    }
    uint64_t mine[400];
    size_t nmine = 0;
    struct version_edit e;
    for (unsigned i = 0; i < 300; i++) {
        version_edit_init(&e);
        uint64_t num = manifest_new_file_number(m);
        mine[nmine++] = num;
        mt_add_range(&e, 0, num, i, i + 10);
        e.has_flushed_seq = 1;
        e.flushed_seq = i + 1;
        if (i % 8 == 7) {
            /* Compact level 0 and level 1 into one level-1 table. */
            struct version *v = manifest_current(m);
            for (unsigned l = 0; l <= 1; l++)
                for (size_t k = 0; k < v->nfiles[l]; k++) mt_del(&e, l, v->files[l][k]->number);
            version_unref(v);
            uint64_t out = manifest_new_file_number(m);
            mine[nmine++] = out;
            mt_add_range(&e, 1, out, 0, i + 10);
        }
        mt_apply(m, &e);
    }
    for (int i = 0; i < 2; i++) {
        atomic_store(&r[i].stop, 1);
        pthread_join(th[i], NULL);
        cr_assert(!r[i].failed, "reader %d: %s", i, r[i].what);
        cr_assert_gt(r[i].reads, 0u);
    }
    /* Every number handed out went to one thread only. */
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; k < r[i].nnumbers; k++) {
            for (size_t j = 0; j < nmine; j++) cr_assert_neq(r[i].numbers[k], mine[j]);
            for (size_t j = 0; j < r[1 - i].nnumbers; j++) cr_assert_neq(r[i].numbers[k], r[1 - i].numbers[j]);
        }
    MT_OK(manifest_check(m));
    m = mt_reopen_same(m);
    manifest_close(m);
}
