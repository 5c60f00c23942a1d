/* API-level tests of every public function in include/tind.h: results,
 * error cases, ownership, persistence across reopen, and the threading
 * promises (batch atomicity under a concurrent reader, group commit). */
#include "tests/api_common.h"

TestSuite(api, .init = api_setup, .fini = api_teardown);

/* ---- version, status codes, errors, options ------------------------------------------ */

Test(api, version_matches_macros)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", TIND_VERSION_MAJOR, TIND_VERSION_MINOR, TIND_VERSION_PATCH);
    const char *v = tind_version();
    cr_assert_not_null(v);
    cr_assert_str_eq(v, want, "tind_version() is %s, the header says %s", v, want);
    cr_assert_eq(TIND_VERSION_NUMBER,
                 TIND_VERSION_MAJOR * 10000 + TIND_VERSION_MINOR * 100 + TIND_VERSION_PATCH);
    cr_assert_eq(tind_version(), v, "tind_version() should return the same static string");
}

Test(api, strerror_names_every_code)
{
    static const int codes[] = {TIND_OK,       TIND_NOT_FOUND, TIND_CORRUPTION, TIND_IO_ERROR,
                                TIND_INVALID,  TIND_CONFLICT,  TIND_BUSY,       TIND_NO_SPACE,
                                TIND_NO_MEMORY, TIND_POISONED};
    const size_t n = sizeof codes / sizeof codes[0];
    const char *unknown = tind_strerror(-1000);
    cr_assert_not_null(unknown, "tind_strerror(-1000) is NULL");
    cr_assert_gt(strlen(unknown), 0, "tind_strerror(-1000) is empty");
    static const int unknowns[] = {1, 42, -10, -1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknowns / sizeof unknowns[0]; i++) {
        const char *s = tind_strerror(unknowns[i]);
        cr_assert_not_null(s, "tind_strerror(%d) is NULL", unknowns[i]);
        cr_assert_gt(strlen(s), 0, "tind_strerror(%d) is empty", unknowns[i]);
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = tind_strerror(codes[i]);
        cr_assert_not_null(s, "tind_strerror(%d) is NULL", codes[i]);
        cr_assert_gt(strlen(s), 0, "tind_strerror(%d) is empty", codes[i]);
        cr_assert_str_neq(s, unknown, "tind_strerror(%d) is the unknown-code text \"%s\"", codes[i], s);
        for (size_t k = 0; k < i; k++)
            cr_assert_str_neq(s, tind_strerror(codes[k]), "codes %d and %d share the name \"%s\"", codes[i],
                              codes[k], s);
    }
}

static void *fresh_thread_last_error(void *arg)
{
    const char **out = arg;
    *out = tind_last_error();
    return NULL;
}

struct fail_arg {
    tind_db *db;
    int rc;
};

static void *fail_in_thread(void *p)
{
    struct fail_arg *a = p;
    tind_keyspace *ks = NULL;
    a->rc = tind_keyspace_open(a->db, "a/b/c", NULL, &ks);
    return NULL;
}

Test(api, last_error_set_after_failure)
{
    /* A thread that made no tind call yet has "" */
    const char *fresh = NULL;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fresh_thread_last_error, &fresh), 0);
    pthread_join(t, NULL);
    cr_assert_not_null(fresh, "tind_last_error() is NULL in a fresh thread");
    cr_assert_str_empty(fresh, "tind_last_error() in a fresh thread is \"%s\", want \"\"", fresh);

    tind_db *db = NULL;
    EXPECT_RC(tind_open(NULL, NULL, &db), TIND_INVALID);
    cr_assert_not_null(tind_last_error());
    cr_assert_str_not_empty(tind_last_error(), "no message after tind_open(NULL)");

    tind_options o;
    tind_options_init(&o);
    o.create_if_missing = 0;
    EXPECT_RC(tind_open(sub("missing"), &o, &db), TIND_NOT_FOUND);
    cr_assert_str_not_empty(tind_last_error(), "no message after opening a missing database");

    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = NULL;
    EXPECT_RC(tind_keyspace_open(g_db, "bad name", NULL, &ks), TIND_INVALID);
    cr_assert_str_not_empty(tind_last_error(), "no message after a bad keyspace name");
    ks = ks_open(g_db, "k", NULL);
    EXPECT_RC(tind_put(ks, "", 0, "v", 1), TIND_INVALID);
    cr_assert_str_not_empty(tind_last_error(), "no message after an empty key");

    /* per thread: another thread's failure leaves this thread's message alone */
    char mine[256];
    snprintf(mine, sizeof mine, "%s", tind_last_error());
    struct fail_arg fa = {g_db, 0};
    cr_assert_eq(pthread_create(&t, NULL, fail_in_thread, &fa), 0);
    pthread_join(t, NULL);
    cr_assert_eq(fa.rc, TIND_INVALID);
    cr_assert_str_eq(tind_last_error(), mine, "another thread's failure changed this thread's message");
}

Test(api, options_init_defaults)
{
    tind_options o;
    memset(&o, 0x5a, sizeof o);
    tind_options_init(&o);
    cr_assert_eq(o.create_if_missing, 1);
    cr_assert_eq(o.error_if_exists, 0);
    cr_assert_eq(o.durability, TIND_DURABILITY_BUFFERED);
    cr_assert_eq(o.journal_max_bytes, UINT64_C(64) << 20, "journal_max_bytes default %llu",
                 (unsigned long long)o.journal_max_bytes);
    cr_assert_eq(o.parallel_memtable_writes, 1);
    tind_keyspace_options ko;
    memset(&ko, 0x5a, sizeof ko);
    tind_keyspace_options_init(&ko);
    cr_assert_eq(ko.durability, TIND_DURABILITY_DEFAULT);
}

/* ---- open / close --------------------------------------------------------------------- */

Test(api, open_null_arguments_are_invalid)
{
    tind_db *db = (tind_db *)(uintptr_t)1;
    EXPECT_RC(tind_open(NULL, NULL, &db), TIND_INVALID);
    EXPECT_RC(tind_open(sub("db"), NULL, NULL), TIND_INVALID);
    db = NULL;
    EXPECT_RC(tind_open("", NULL, &db), TIND_INVALID);
    cr_assert_null(db);
    EXPECT_RC(tind_close(NULL), TIND_INVALID);
}

Test(api, open_bad_options_are_invalid)
{
    static const int bad_durability[] = {TIND_DURABILITY_DEFAULT, 3, 100, -2, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad_durability / sizeof bad_durability[0]; i++) {
        tind_options o;
        tind_options_init(&o);
        o.durability = bad_durability[i];
        tind_db *db = NULL;
        int rc = tind_open(sub("db"), &o, &db);
        cr_assert_eq(rc, TIND_INVALID, "open with durability %d: got %d (%s)", bad_durability[i], rc,
                     tind_strerror(rc));
        cr_assert_null(db);
    }
    tind_options o;
    tind_options_init(&o);
    o.journal_max_bytes = (64u << 10) - 1;
    tind_db *db = NULL;
    EXPECT_RC(tind_open(sub("db"), &o, &db), TIND_INVALID);
    o.journal_max_bytes = 0;
    EXPECT_RC(tind_open(sub("db"), &o, &db), TIND_INVALID);
    o.journal_max_bytes = 64u << 10;
    o.parallel_memtable_writes = 2;
    EXPECT_RC(tind_open(sub("db"), &o, &db), TIND_INVALID);
    o.parallel_memtable_writes = -1;
    EXPECT_RC(tind_open(sub("db"), &o, &db), TIND_INVALID);
    o.parallel_memtable_writes = 0;
    g_db = open_db(sub("db"), &o);
}

Test(api, open_missing_without_create_is_not_found)
{
    tind_options o;
    tind_options_init(&o);
    o.create_if_missing = 0;
    tind_db *db = NULL;
    EXPECT_RC(tind_open(sub("missing"), &o, &db), TIND_NOT_FOUND);
    cr_assert_null(db);
    struct stat st;
    cr_assert_neq(stat(sub("missing"), &st), 0, "a failed open created the directory");
    /* An existing but empty directory holds no database either. */
    cr_assert_eq(mkdir(sub("empty"), 0755), 0);
    EXPECT_RC(tind_open(sub("empty"), &o, &db), TIND_NOT_FOUND);
    cr_assert_null(db);
    /* Once created, the same options open it. */
    g_db = open_db(sub("missing"), NULL);
    close_main();
    g_db = open_db(sub("missing"), &o);
}

Test(api, open_error_if_exists_is_invalid)
{
    tind_options o;
    tind_options_init(&o);
    o.error_if_exists = 1;
    /* No database yet: error_if_exists does not stop creation. */
    g_db = open_db(sub("db"), &o);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    put_s(ks, "a", "1");
    close_main();
    tind_db *db = NULL;
    EXPECT_RC(tind_open(sub("db"), &o, &db), TIND_INVALID);
    cr_assert_null(db);
    /* The failed open left the database as it was. */
    g_db = open_db(sub("db"), NULL);
    expect_val(NULL, ks_open(g_db, "k", NULL), "a", "1");
}

Test(api, second_open_is_busy_until_close)
{
    g_db = open_db(sub("db"), NULL);
    tind_db *db2 = NULL;
    EXPECT_RC(tind_open(sub("db"), NULL, &db2), TIND_BUSY);
    cr_assert_null(db2);
    /* other spellings of the same directory */
    EXPECT_RC(tind_open(sub("db/."), NULL, &db2), TIND_BUSY);
    EXPECT_RC(tind_open(sub("db/"), NULL, &db2), TIND_BUSY);
    EXPECT_RC(tind_open(sub("./db"), NULL, &db2), TIND_BUSY);
    /* The first handle still works after the refused open. */
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    put_s(ks, "a", "1");
    close_main();
    db2 = open_db(sub("db"), NULL);
    expect_val(NULL, ks_open(db2, "k", NULL), "a", "1");
    EXPECT_OK(tind_close(db2));
}

Test(api, second_open_from_another_process_is_busy)
{
    g_db = open_db(sub("db"), NULL);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed");
    if (pid == 0) {
        tind_db *db = NULL;
        int rc = tind_open(sub("db"), NULL, &db);
        _exit(rc == TIND_BUSY ? 0 : 10 + (rc < 0 ? -rc : 0));
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "open from a child process: want TIND_BUSY, child status %d (10 + -rc)", WEXITSTATUS(st));
}

Test(api, close_is_busy_while_a_snapshot_is_open)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    put_s(ks, "a", "1");
    tind_snapshot *s = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s));
    EXPECT_RC(tind_close(g_db), TIND_BUSY);
    /* "closes nothing": everything still works */
    put_s(ks, "b", "2");
    expect_val(s, ks, "a", "1");
    expect_val(s, ks, "b", NULL);
    expect_val(NULL, ks, "b", "2");
    tind_snapshot_close(s);
    close_main();
    g_db = open_db(sub("db"), NULL);
    expect_val(NULL, ks_open(g_db, "k", NULL), "b", "2");
}

Test(api, close_is_busy_while_an_iterator_is_open)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    put_s(ks, "a", "1");
    tind_iter *it = NULL;
    EXPECT_OK(tind_iter_open(ks, NULL, NULL, &it));
    tind_iter_seek_first(it);
    EXPECT_RC(tind_close(g_db), TIND_BUSY);
    cr_assert(tind_iter_valid(it), "the iterator stopped working after a refused close");
    put_s(ks, "b", "2");
    tind_iter_close(it);
    /* and with a prefix iterator, never positioned */
    EXPECT_OK(tind_iter_open_prefix(ks, NULL, "a", 1, &it));
    EXPECT_RC(tind_close(g_db), TIND_BUSY);
    tind_iter_close(it);
    close_main();
}

/* ---- put / get / delete ---------------------------------------------------------------- */

Test(api, put_get_delete_round_trip)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    expect_val(NULL, ks, "never", NULL);
    put_s(ks, "alpha", "one");
    put_s(ks, "beta", "two");
    expect_val(NULL, ks, "alpha", "one");
    expect_val(NULL, ks, "beta", "two");
    expect_val(NULL, ks, "alph", NULL);
    expect_val(NULL, ks, "alphaa", NULL);
    put_s(ks, "alpha", "uno"); /* overwrite */
    expect_val(NULL, ks, "alpha", "uno");
    del_s(ks, "alpha");
    expect_val(NULL, ks, "alpha", NULL);
    expect_val(NULL, ks, "beta", "two");
    del_s(ks, "absent"); /* deleting an absent key is fine */
    del_s(ks, "alpha");  /* and deleting twice */
    expect_val(NULL, ks, "absent", NULL);
    put_s(ks, "alpha", "again"); /* a put after a delete */
    expect_val(NULL, ks, "alpha", "again");

    /* binary keys and values: NUL and 0xff bytes */
    const uint8_t k1[] = {0, 0xff, 0, 1}, v1[] = {0xff, 0, 0, 0xfe, 0};
    EXPECT_OK(tind_put(ks, k1, sizeof k1, v1, sizeof v1));
    void *got = NULL;
    size_t gl = 0;
    EXPECT_OK(tind_get(ks, k1, sizeof k1, &got, &gl));
    cr_assert(gl == sizeof v1 && memcmp(got, v1, gl) == 0, "binary value: got %s", tu_hex(got, gl));
    tind_free(got);
    EXPECT_RC(tind_get(ks, k1, 3, &got, &gl), TIND_NOT_FOUND); /* a prefix of the key */

    /* the returned value is the caller's copy: changing it changes nothing */
    EXPECT_OK(tind_get(ks, "beta", 4, &got, &gl));
    memset(got, 'X', gl);
    tind_free(got);
    expect_val(NULL, ks, "beta", "two");

    /* persists */
    close_main();
    g_db = open_db(sub("db"), NULL);
    ks = ks_open(g_db, "k", NULL);
    expect_val(NULL, ks, "alpha", "again");
    expect_val(NULL, ks, "beta", "two");
    expect_val(NULL, ks, "absent", NULL);
    EXPECT_OK(tind_get(ks, k1, sizeof k1, &got, &gl));
    cr_assert(gl == sizeof v1 && memcmp(got, v1, gl) == 0, "binary value after reopen: got %s", tu_hex(got, gl));
    tind_free(got);
}

Test(api, empty_value_reads_as_non_null_zero_length)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    EXPECT_OK(tind_put(ks, "e", 1, "ignored", 0));
    EXPECT_OK(tind_put(ks, "n", 1, NULL, 0));
    for (int round = 0; round < 2; round++) {
        const char *keys[] = {"e", "n"};
        for (int i = 0; i < 2; i++) {
            void *got = NULL;
            size_t gl = 99;
            EXPECT_OK(tind_get(ks, keys[i], 1, &got, &gl));
            cr_assert_not_null(got, "round %d: empty value of %s read as NULL", round, keys[i]);
            cr_assert_eq(gl, 0, "round %d: empty value of %s has length %zu", round, keys[i], gl);
            tind_free(got);
            tind_snapshot *s = NULL;
            EXPECT_OK(tind_snapshot_open(g_db, &s));
            got = NULL;
            gl = 99;
            EXPECT_OK(tind_snapshot_get(s, ks, keys[i], 1, &got, &gl));
            cr_assert_not_null(got, "round %d: snapshot read of empty value %s is NULL", round, keys[i]);
            cr_assert_eq(gl, 0);
            tind_free(got);
            tind_snapshot_close(s);
        }
        close_main();
        g_db = open_db(sub("db"), NULL);
        ks = ks_open(g_db, "k", NULL);
    }
    /* a NULL value with a length is a bad argument */
    EXPECT_RC(tind_put(ks, "x", 1, NULL, 1), TIND_INVALID);
    expect_val(NULL, ks, "x", NULL);
}

Test(api, value_over_the_maximum_is_invalid)
{
    if (sizeof(size_t) <= 4) cr_skip_test("size_t cannot hold 2^32");
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    /* refused on the length alone, before a byte is read */
    static const char small[1] = {'v'};
    size_t over = (size_t)TIND_MAX_VALUE_BYTES + 1;
    EXPECT_RC(tind_put(ks, "x", 1, small, over), TIND_INVALID);
    EXPECT_RC(tind_put(ks, "x", 1, small, SIZE_MAX), TIND_INVALID);
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_RC(tind_batch_put(b, ks, "x", 1, small, over), TIND_INVALID);
    cr_assert_eq(tind_batch_count(b), 0);
    tind_batch_free(b);
    expect_val(NULL, ks, "x", NULL);
}

Test(api, key_length_limits)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    size_t big = TIND_MAX_KEY_BYTES + 1;
    uint8_t *key = malloc(big);
    cr_assert_not_null(key);
    tu_fill(key, big, 7);
    void *got = NULL;
    size_t gl = 0;

    /* 65,536 bytes: refused everywhere */
    EXPECT_RC(tind_put(ks, key, big, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_get(ks, key, big, &got, &gl), TIND_INVALID);
    EXPECT_RC(tind_delete(ks, key, big), TIND_INVALID);
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_RC(tind_batch_put(b, ks, key, big, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_batch_delete(b, ks, key, big), TIND_INVALID);
    cr_assert_eq(tind_batch_count(b), 0, "refused ops were added to the batch");
    tind_snapshot *s = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s));
    EXPECT_RC(tind_snapshot_get(s, ks, key, big, &got, &gl), TIND_INVALID);
    tind_iter *it = NULL;
    tind_bounds bd = {key, big, NULL, 0};
    EXPECT_RC(tind_iter_open(ks, NULL, &bd, &it), TIND_INVALID);
    bd = (tind_bounds){NULL, 0, key, big};
    EXPECT_RC(tind_iter_open(ks, NULL, &bd, &it), TIND_INVALID);
    EXPECT_RC(tind_iter_open_prefix(ks, NULL, key, big, &it), TIND_INVALID);

    /* 65,535 bytes: works everywhere */
    size_t max = TIND_MAX_KEY_BYTES;
    EXPECT_OK(tind_put(ks, key, max, "v", 1));
    EXPECT_OK(tind_get(ks, key, max, &got, &gl));
    cr_assert(gl == 1 && memcmp(got, "v", 1) == 0);
    tind_free(got);
    EXPECT_RC(tind_get(ks, key, max - 1, &got, &gl), TIND_NOT_FOUND);
    EXPECT_OK(tind_batch_put(b, ks, key, max, "w", 1));
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED));
    EXPECT_RC(tind_snapshot_get(s, ks, key, max, &got, &gl), TIND_NOT_FOUND); /* opened before the put */
    tind_snapshot_close(s);
    EXPECT_OK(tind_get(ks, key, max, &got, &gl));
    cr_assert(gl == 1 && memcmp(got, "w", 1) == 0, "batch put of a 65,535-byte key: read %s", tu_hex(got, gl));
    tind_free(got);
    EXPECT_OK(tind_iter_open_prefix(ks, NULL, key, max, &it));
    tind_iter_seek_first(it);
    cr_assert(tind_iter_valid(it), "prefix iterator on a 65,535-byte key finds nothing");
    size_t kl = 0;
    const void *k = tind_iter_key(it, &kl);
    cr_assert(kl == max && memcmp(k, key, max) == 0, "iterated key differs: %s", tu_hex(k, kl));
    tind_iter_seek(it, key, max);
    cr_assert(tind_iter_valid(it));
    tind_iter_close(it);
    bd = (tind_bounds){key, max, NULL, 0};
    EXPECT_OK(tind_iter_open(ks, NULL, &bd, &it));
    tind_iter_seek_first(it);
    cr_assert(tind_iter_valid(it));
    tind_iter_close(it);

    /* survives reopen */
    tind_batch_free(b);
    close_main();
    g_db = open_db(sub("db"), NULL);
    ks = ks_open(g_db, "k", NULL);
    EXPECT_OK(tind_get(ks, key, max, &got, &gl));
    cr_assert(gl == 1 && memcmp(got, "w", 1) == 0);
    tind_free(got);
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_OK(tind_batch_delete(b, ks, key, max));
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED));
    tind_batch_free(b);
    EXPECT_RC(tind_get(ks, key, max, &got, &gl), TIND_NOT_FOUND);
    EXPECT_OK(tind_put(ks, key, max, "z", 1));
    EXPECT_OK(tind_delete(ks, key, max));
    EXPECT_RC(tind_get(ks, key, max, &got, &gl), TIND_NOT_FOUND);
    free(key);
}

Test(api, empty_and_null_keys_are_invalid)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    void *got = NULL;
    size_t gl = 0;
    EXPECT_RC(tind_put(ks, "k", 0, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_put(ks, NULL, 0, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_put(ks, NULL, 3, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_get(ks, "k", 0, &got, &gl), TIND_INVALID);
    EXPECT_RC(tind_get(ks, NULL, 1, &got, &gl), TIND_INVALID);
    EXPECT_RC(tind_delete(ks, "k", 0), TIND_INVALID);
    EXPECT_RC(tind_delete(ks, NULL, 1), TIND_INVALID);
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_RC(tind_batch_put(b, ks, "k", 0, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_batch_put(b, ks, NULL, 1, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_batch_put(b, ks, "k", 1, NULL, 1), TIND_INVALID);
    EXPECT_RC(tind_batch_delete(b, ks, "k", 0), TIND_INVALID);
    EXPECT_RC(tind_batch_delete(b, ks, NULL, 1), TIND_INVALID);
    cr_assert_eq(tind_batch_count(b), 0);
    tind_batch_free(b);
    tind_snapshot *s = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s));
    EXPECT_RC(tind_snapshot_get(s, ks, "k", 0, &got, &gl), TIND_INVALID);
    EXPECT_RC(tind_snapshot_get(s, ks, NULL, 1, &got, &gl), TIND_INVALID);
    tind_snapshot_close(s);
    tind_iter *it = NULL;
    tind_bounds bd = {"", 0, NULL, 0};
    EXPECT_RC(tind_iter_open(ks, NULL, &bd, &it), TIND_INVALID);
    bd = (tind_bounds){NULL, 0, "", 0};
    EXPECT_RC(tind_iter_open(ks, NULL, &bd, &it), TIND_INVALID);
    EXPECT_RC(tind_iter_open_prefix(ks, NULL, "p", 0, &it), TIND_INVALID);
    EXPECT_RC(tind_iter_open_prefix(ks, NULL, NULL, 1, &it), TIND_INVALID);
    cr_assert_eq(db_stats(g_db).iterators, 0, "a refused iterator open is counted as open");
    /* nothing was written */
    cr_assert_eq(ks_stats(ks).memtable_entries, 0);
}

Test(api, null_handles_and_out_parameters_are_invalid)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    put_s(ks, "a", "1");
    void *got = NULL;
    size_t gl = 0;
    tind_keyspace *kso = NULL;
    EXPECT_RC(tind_keyspace_open(NULL, "k", NULL, &kso), TIND_INVALID);
    EXPECT_RC(tind_keyspace_open(g_db, "k", NULL, NULL), TIND_INVALID);
    EXPECT_RC(tind_keyspace_open(g_db, NULL, NULL, &kso), TIND_INVALID);
    EXPECT_RC(tind_keyspace_drop(NULL, "k"), TIND_INVALID);
    EXPECT_RC(tind_keyspace_drop(g_db, NULL), TIND_INVALID);
    char **names = NULL;
    size_t count = 0;
    EXPECT_RC(tind_keyspace_list(NULL, &names, &count), TIND_INVALID);
    EXPECT_RC(tind_keyspace_list(g_db, NULL, &count), TIND_INVALID);
    EXPECT_RC(tind_keyspace_list(g_db, &names, NULL), TIND_INVALID);

    EXPECT_RC(tind_put(NULL, "a", 1, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_delete(NULL, "a", 1), TIND_INVALID);
    EXPECT_RC(tind_get(NULL, "a", 1, &got, &gl), TIND_INVALID);
    EXPECT_RC(tind_get(ks, "a", 1, NULL, &gl), TIND_INVALID);
    EXPECT_RC(tind_get(ks, "a", 1, &got, NULL), TIND_INVALID);
    expect_val(NULL, ks, "a", "1");

    EXPECT_RC(tind_batch_new(NULL), TIND_INVALID);
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_RC(tind_batch_put(NULL, ks, "a", 1, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_batch_put(b, NULL, "a", 1, "v", 1), TIND_INVALID);
    EXPECT_RC(tind_batch_delete(NULL, ks, "a", 1), TIND_INVALID);
    EXPECT_RC(tind_batch_delete(b, NULL, "a", 1), TIND_INVALID);
    EXPECT_OK(tind_batch_put(b, ks, "b", 1, "2", 1));
    EXPECT_RC(tind_batch_commit(NULL, b, TIND_DURABILITY_BUFFERED), TIND_INVALID);
    EXPECT_RC(tind_batch_commit(g_db, NULL, TIND_DURABILITY_BUFFERED), TIND_INVALID);
    expect_val(NULL, ks, "b", NULL);
    tind_batch_free(b);

    tind_snapshot *s = NULL;
    EXPECT_RC(tind_snapshot_open(NULL, &s), TIND_INVALID);
    EXPECT_RC(tind_snapshot_open(g_db, NULL), TIND_INVALID);
    EXPECT_RC(tind_snapshot_get(NULL, ks, "a", 1, &got, &gl), TIND_INVALID);
    EXPECT_OK(tind_snapshot_open(g_db, &s));
    EXPECT_RC(tind_snapshot_get(s, NULL, "a", 1, &got, &gl), TIND_INVALID);
    EXPECT_RC(tind_snapshot_get(s, ks, "a", 1, NULL, &gl), TIND_INVALID);
    EXPECT_RC(tind_snapshot_get(s, ks, "a", 1, &got, NULL), TIND_INVALID);

    tind_iter *it = NULL;
    EXPECT_RC(tind_iter_open(NULL, NULL, NULL, &it), TIND_INVALID);
    EXPECT_RC(tind_iter_open(ks, NULL, NULL, NULL), TIND_INVALID);
    EXPECT_RC(tind_iter_open(NULL, s, NULL, &it), TIND_INVALID);
    EXPECT_RC(tind_iter_open_prefix(NULL, NULL, "a", 1, &it), TIND_INVALID);
    EXPECT_RC(tind_iter_open_prefix(ks, NULL, "a", 1, NULL), TIND_INVALID);
    tind_snapshot_close(s);

    EXPECT_RC(tind_persist(NULL, TIND_DURABILITY_SYNC_DATA), TIND_INVALID);
    struct tind_db_stats dst;
    struct tind_keyspace_stats kst;
    EXPECT_RC(tind_db_stats(NULL, &dst), TIND_INVALID);
    EXPECT_RC(tind_db_stats(g_db, NULL), TIND_INVALID);
    EXPECT_RC(tind_keyspace_stats(NULL, &kst), TIND_INVALID);
    EXPECT_RC(tind_keyspace_stats(ks, NULL), TIND_INVALID);
    cr_assert_eq(db_stats(g_db).snapshots, 0);
    cr_assert_eq(db_stats(g_db).iterators, 0);
}

Test(api, null_is_harmless_where_documented)
{
    /* "NULL is a no-op" (tind_free, *_free, *_close) and "0 for NULL" (batch_count) */
    tind_free(NULL);
    tind_batch_free(NULL);
    tind_snapshot_close(NULL);
    tind_iter_close(NULL);
    tind_batch_clear(NULL);
    cr_assert_eq(tind_batch_count(NULL), 0);
    /* Iterator calls on NULL: bad arguments, never a crash. */
    tind_iter_seek_first(NULL);
    tind_iter_seek_last(NULL);
    tind_iter_seek(NULL, "a", 1);
    tind_iter_seek_for_prev(NULL, "a", 1);
    tind_iter_next(NULL);
    tind_iter_prev(NULL);
    cr_assert_eq(tind_iter_valid(NULL), 0);
    size_t len = 7;
    cr_assert_null(tind_iter_key(NULL, &len));
    cr_assert_eq(len, 0);
    len = 7;
    cr_assert_null(tind_iter_value(NULL, &len));
    cr_assert_eq(len, 0);
    cr_assert_eq(tind_iter_status(NULL), TIND_INVALID);
    tind_options_init(NULL);
    tind_keyspace_options_init(NULL);
}

Test(api, bad_durability_values_are_invalid)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    static const int bad[] = {TIND_DURABILITY_DEFAULT, 3, -2, 100, INT_MIN, INT_MAX};
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_OK(tind_batch_put(b, ks, "a", 1, "1", 1));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = tind_persist(g_db, bad[i]);
        cr_assert_eq(rc, TIND_INVALID, "tind_persist(%d): got %d (%s)", bad[i], rc, tind_strerror(rc));
        rc = tind_batch_commit(g_db, b, bad[i]);
        cr_assert_eq(rc, TIND_INVALID, "tind_batch_commit(durability %d): got %d (%s)", bad[i], rc,
                     tind_strerror(rc));
    }
    expect_val(NULL, ks, "a", NULL);
    /* An empty batch is checked too. */
    tind_batch_clear(b);
    EXPECT_RC(tind_batch_commit(g_db, b, 7), TIND_INVALID);
    tind_batch_free(b);
    /* Keyspace options: DEFAULT and the three real values are fine. */
    static const int ks_bad[] = {3, -2, 100, INT_MIN};
    for (size_t i = 0; i < sizeof ks_bad / sizeof ks_bad[0]; i++) {
        tind_keyspace_options ko;
        tind_keyspace_options_init(&ko);
        ko.durability = ks_bad[i];
        tind_keyspace *x = NULL;
        int rc = tind_keyspace_open(g_db, "x", &ko, &x);
        cr_assert_eq(rc, TIND_INVALID, "keyspace durability %d: got %d (%s)", ks_bad[i], rc, tind_strerror(rc));
        rc = tind_keyspace_open(g_db, "k", &ko, &x);
        cr_assert_eq(rc, TIND_INVALID, "keyspace durability %d on an existing keyspace: got %d", ks_bad[i], rc);
    }
    char **names = NULL;
    size_t count = 0;
    EXPECT_OK(tind_keyspace_list(g_db, &names, &count));
    cr_assert_eq(count, 1, "a refused keyspace open created a keyspace");
    tind_free(names);
    cr_assert_eq(ks_stats(ks).durability, TIND_DURABILITY_BUFFERED, "a refused option changed the keyspace");
    for (int d = TIND_DURABILITY_DEFAULT; d <= TIND_DURABILITY_SYNC_ALL; d++) {
        tind_keyspace_options ko;
        tind_keyspace_options_init(&ko);
        ko.durability = d;
        char name[16];
        snprintf(name, sizeof name, "d%d", d + 1);
        ks_open(g_db, name, &ko);
        EXPECT_OK(tind_persist(g_db, d < 0 ? TIND_DURABILITY_BUFFERED : d));
    }
}

/* ---- keyspaces --------------------------------------------------------------------------- */

Test(api, keyspace_names_are_checked)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = NULL;
    char name[300];
    memset(name, 'a', 256);
    name[256] = 0;
    const char *bad[] = {"", name, "a/b", "/", "a b", " ", "\xff", "a\xff", "k\n", "tab\t", "x:y", "\x80", "a*"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = tind_keyspace_open(g_db, bad[i], NULL, &ks);
        cr_assert_eq(rc, TIND_INVALID, "keyspace name %s (%zu bytes): got %d (%s)", tu_hex(bad[i], strlen(bad[i])),
                     strlen(bad[i]), rc, tind_strerror(rc));
        cr_assert_null(ks);
        rc = tind_keyspace_drop(g_db, bad[i]);
        cr_assert_eq(rc, TIND_INVALID, "drop of bad name %s: got %d", tu_hex(bad[i], strlen(bad[i])), rc);
    }
    /* 255 bytes of the whole alphabet work */
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    for (size_t i = 0; i < 255; i++) name[i] = alpha[i % (sizeof alpha - 1)];
    name[255] = 0;
    tind_keyspace *longks = ks_open(g_db, name, NULL);
    put_s(longks, "a", "1");
    /* names that look like paths but are within the alphabet */
    tind_keyspace *dot = ks_open(g_db, ".", NULL), *dotdot = ks_open(g_db, "..", NULL);
    tind_keyspace *dash = ks_open(g_db, "-", NULL);
    cr_assert(dot != dotdot && dot != dash && dot != longks);
    put_s(dot, "a", "dot");
    put_s(dotdot, "a", "dotdot");
    put_s(dash, "a", "dash");
    close_main();
    g_db = open_db(sub("db"), NULL);
    char **names = NULL;
    size_t count = 0;
    EXPECT_OK(tind_keyspace_list(g_db, &names, &count));
    cr_assert_eq(count, 4);
    int found = 0;
    for (size_t i = 0; i < count; i++) found += strcmp(names[i], name) == 0;
    cr_assert_eq(found, 1, "the 255-byte name did not come back from the list");
    tind_free(names);
    expect_val(NULL, ks_open(g_db, name, NULL), "a", "1");
    expect_val(NULL, ks_open(g_db, ".", NULL), "a", "dot");
    expect_val(NULL, ks_open(g_db, "..", NULL), "a", "dotdot");
    expect_val(NULL, ks_open(g_db, "-", NULL), "a", "dash");
}

Test(api, keyspace_open_returns_the_same_handle)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL), *b = ks_open(g_db, "b", NULL);
    cr_assert_neq(a, b);
    cr_assert_eq(ks_open(g_db, "a", NULL), a, "opening a keyspace twice gave two handles");
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    cr_assert_eq(ks_open(g_db, "a", &ko), a);
    cr_assert_neq(ks_stats(a).id, ks_stats(b).id, "two keyspaces share an id");
    /* keyspaces are separate */
    put_s(a, "k", "in a");
    expect_val(NULL, b, "k", NULL);
    put_s(b, "k", "in b");
    expect_val(NULL, a, "k", "in a");
    expect_val(NULL, b, "k", "in b");
}

struct same_name_arg {
    tind_db *db;
    tind_keyspace *ks;
    int rc;
};

static void *open_same_name(void *p)
{
    struct same_name_arg *a = p;
    a->rc = tind_keyspace_open(a->db, "shared", NULL, &a->ks);
    return NULL;
}

Test(api, keyspace_open_from_threads_agrees_on_one_handle)
{
    g_db = open_db(sub("db"), NULL);
    enum { N = 6 };
    pthread_t t[N];
    struct same_name_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (struct same_name_arg){g_db, NULL, -100};
        cr_assert_eq(pthread_create(&t[i], NULL, open_same_name, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].rc, TIND_OK, "thread %d: %d (%s)", i, a[i].rc, tind_strerror(a[i].rc));
        cr_assert_eq(a[i].ks, a[0].ks, "threads 0 and %d got different handles for one name", i);
    }
    char **names = NULL;
    size_t count = 0;
    EXPECT_OK(tind_keyspace_list(g_db, &names, &count));
    cr_assert_eq(count, 1, "%zu keyspaces after racing opens of one name", count);
    tind_free(names);
}

Test(api, keyspace_list_sorted_in_one_allocation)
{
    g_db = open_db(sub("db"), NULL);
    char **names = (char **)(uintptr_t)1;
    size_t count = 99;
    EXPECT_OK(tind_keyspace_list(g_db, &names, &count));
    cr_assert_eq(count, 0);
    tind_free(names); /* NULL or an empty allocation: either frees fine */

    const char *create[] = {"pear", "Zebra", "apple", "apple.b", "apple-b", "_u", "9", "apples", "a"};
    const size_t n = sizeof create / sizeof create[0];
    for (size_t i = 0; i < n; i++) ks_open(g_db, create[i], NULL);
    EXPECT_OK(tind_keyspace_list(g_db, &names, &count));
    cr_assert_eq(count, n);
    for (size_t i = 0; i < count; i++) {
        cr_assert_not_null(names[i]);
        if (i > 0) cr_assert_lt(strcmp(names[i - 1], names[i]), 0, "list not sorted at %zu: %s then %s", i, names[i - 1], names[i]);
        int known = 0;
        for (size_t k = 0; k < n; k++) known += strcmp(create[k], names[i]) == 0;
        cr_assert_eq(known, 1, "listed name %s was never created", names[i]);
    }
    /* One allocation: a single tind_free releases everything (a leak or a
     * double free here shows under the address sanitizer). */
    tind_free(names);

    EXPECT_OK(tind_keyspace_drop(g_db, "apple"));
    close_main();
    g_db = open_db(sub("db"), NULL);
    EXPECT_OK(tind_keyspace_list(g_db, &names, &count));
    cr_assert_eq(count, n - 1);
    for (size_t i = 0; i < count; i++) {
        cr_assert_str_neq(names[i], "apple", "a dropped keyspace is listed after reopen");
        if (i > 0) cr_assert_lt(strcmp(names[i - 1], names[i]), 0);
    }
    cr_assert_eq(db_stats(g_db).keyspaces, n - 1);
    tind_free(names);
}

Test(api, keyspace_options_persist_across_reopen)
{
    tind_options o;
    tind_options_init(&o);
    o.durability = TIND_DURABILITY_SYNC_DATA;
    g_db = open_db(sub("db"), &o);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.durability = TIND_DURABILITY_SYNC_ALL;
    tind_keyspace *all = ks_open(g_db, "all", &ko);
    tind_keyspace *def = ks_open(g_db, "def", NULL);
    cr_assert_eq(ks_stats(all).durability, TIND_DURABILITY_SYNC_ALL);
    cr_assert_eq(ks_stats(def).durability, TIND_DURABILITY_SYNC_DATA, "a DEFAULT keyspace does not use the database's");
    put_s(all, "a", "1");
    put_s(def, "d", "2");
    uint64_t all_id = ks_stats(all).id, def_id = ks_stats(def).id;
    close_main();

    /* NULL options: the stored ones */
    g_db = open_db(sub("db"), NULL);
    all = ks_open(g_db, "all", NULL);
    def = ks_open(g_db, "def", NULL);
    cr_assert_eq(ks_stats(all).durability, TIND_DURABILITY_SYNC_ALL, "stored durability lost on reopen");
    cr_assert_eq(ks_stats(def).durability, TIND_DURABILITY_BUFFERED,
                 "a DEFAULT keyspace should follow the database's durability, now BUFFERED");
    cr_assert_eq(ks_stats(all).id, all_id, "keyspace id changed on reopen");
    cr_assert_eq(ks_stats(def).id, def_id);
    expect_val(NULL, all, "a", "1");
    expect_val(NULL, def, "d", "2");

    /* non-NULL options replace the stored ones, on an open handle too */
    ko.durability = TIND_DURABILITY_BUFFERED;
    cr_assert_eq(ks_open(g_db, "all", &ko), all);
    cr_assert_eq(ks_stats(all).durability, TIND_DURABILITY_BUFFERED, "new options not applied");
    ko.durability = TIND_DURABILITY_SYNC_DATA;
    ks_open(g_db, "def", &ko);
    cr_assert_eq(ks_stats(def).durability, TIND_DURABILITY_SYNC_DATA);
    close_main();

    g_db = open_db(sub("db"), NULL);
    all = ks_open(g_db, "all", NULL);
    def = ks_open(g_db, "def", NULL);
    cr_assert_eq(ks_stats(all).durability, TIND_DURABILITY_BUFFERED, "replaced options not stored");
    cr_assert_eq(ks_stats(def).durability, TIND_DURABILITY_SYNC_DATA, "replaced options not stored");
    /* and back to DEFAULT */
    ko.durability = TIND_DURABILITY_DEFAULT;
    ks_open(g_db, "def", &ko);
    close_main();
    o.durability = TIND_DURABILITY_SYNC_ALL;
    g_db = open_db(sub("db"), &o);
    def = ks_open(g_db, "def", NULL);
    cr_assert_eq(ks_stats(def).durability, TIND_DURABILITY_SYNC_ALL);
    expect_val(NULL, def, "d", "2");
}

Test(api, keyspace_drop)
{
    g_db = open_db(sub("db"), NULL);
    EXPECT_RC(tind_keyspace_drop(g_db, "nope"), TIND_NOT_FOUND);
    tind_keyspace *ks = ks_open(g_db, "victim", NULL), *other = ks_open(g_db, "other", NULL);
    put_s(ks, "a", "1");
    put_s(ks, "b", "2");
    put_s(other, "a", "other");
    uint64_t old_id = ks_stats(ks).id;
    cr_assert_eq(db_stats(g_db).keyspaces, 2);
    EXPECT_OK(tind_keyspace_drop(g_db, "victim"));
    cr_assert_eq(db_stats(g_db).keyspaces, 1);
    EXPECT_RC(tind_keyspace_drop(g_db, "victim"), TIND_NOT_FOUND);

    /* the old handle is refused everywhere */
    void *got = NULL;
    size_t gl = 0;
    EXPECT_RC(tind_put(ks, "a", 1, "x", 1), TIND_INVALID);
    EXPECT_RC(tind_get(ks, "a", 1, &got, &gl), TIND_INVALID);
    EXPECT_RC(tind_delete(ks, "a", 1), TIND_INVALID);
    struct tind_keyspace_stats kst;
    EXPECT_RC(tind_keyspace_stats(ks, &kst), TIND_INVALID);
    tind_iter *it = NULL;
    EXPECT_RC(tind_iter_open(ks, NULL, NULL, &it), TIND_INVALID);
    EXPECT_RC(tind_iter_open_prefix(ks, NULL, "a", 1, &it), TIND_INVALID);
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_RC(tind_batch_put(b, ks, "a", 1, "x", 1), TIND_INVALID);
    EXPECT_RC(tind_batch_delete(b, ks, "a", 1), TIND_INVALID);
    tind_batch_free(b);
    tind_snapshot *s = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s));
    EXPECT_RC(tind_snapshot_get(s, ks, "a", 1, &got, &gl), TIND_INVALID);
    tind_snapshot_close(s);
    expect_val(NULL, other, "a", "other");

    /* the name comes back empty, with a new number */
    tind_keyspace *again = ks_open(g_db, "victim", NULL);
    cr_assert_neq(ks_stats(again).id, old_id, "a keyspace number was reused");
    cr_assert_eq(ks_stats(again).memtable_entries, 0);
    expect_val(NULL, again, "a", NULL);
    expect_val(NULL, again, "b", NULL);
    tind_iter *all = NULL;
    EXPECT_OK(tind_iter_open(again, NULL, NULL, &all));
    tind_iter_seek_first(all);
    cr_assert_not(tind_iter_valid(all), "a recreated keyspace shows old data");
    tind_iter_close(all);
    put_s(again, "c", "3");
    /* the old handle stays dead even though the name is live again */
    EXPECT_RC(tind_put(ks, "a", 1, "x", 1), TIND_INVALID);

    /* all of it survives reopen */
    close_main();
    g_db = open_db(sub("db"), NULL);
    again = ks_open(g_db, "victim", NULL);
    expect_val(NULL, again, "a", NULL);
    expect_val(NULL, again, "b", NULL);
    expect_val(NULL, again, "c", "3");
    expect_val(NULL, ks_open(g_db, "other", NULL), "a", "other");
    /* drop, reopen, recreate */
    EXPECT_OK(tind_keyspace_drop(g_db, "victim"));
    close_main();
    g_db = open_db(sub("db"), NULL);
    char **names = NULL;
    size_t count = 0;
    EXPECT_OK(tind_keyspace_list(g_db, &names, &count));
    cr_assert_eq(count, 1);
    cr_assert_str_eq(names[0], "other");
    tind_free(names);
    again = ks_open(g_db, "victim", NULL);
    expect_val(NULL, again, "c", NULL);
    close_main();
    g_db = open_db(sub("db"), NULL);
    expect_val(NULL, ks_open(g_db, "victim", NULL), "c", NULL);
}

Test(api, iterator_opened_before_drop_still_reads)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "victim", NULL);
    char k[16], v[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        snprintf(v, sizeof v, "v%d", i);
        put_s(ks, k, v);
    }
    tind_iter *it = NULL, *pit = NULL;
    EXPECT_OK(tind_iter_open(ks, NULL, NULL, &it));
    EXPECT_OK(tind_iter_open_prefix(ks, NULL, "k05", 3, &pit));
    tind_iter_seek_first(it);
    cr_assert(tind_iter_valid(it));
    EXPECT_OK(tind_keyspace_drop(g_db, "victim"));
    /* recreate it and write to the new one: the old iterator must not see that */
    tind_keyspace *again = ks_open(g_db, "victim", NULL);
    put_s(again, "k000x", "new");
    int n = 0;
    for (; tind_iter_valid(it); tind_iter_next(it), n++) {
        snprintf(k, sizeof k, "k%03d", n);
        snprintf(v, sizeof v, "v%d", n);
        size_t kl, vl;
        const void *kp = tind_iter_key(it, &kl), *vp = tind_iter_value(it, &vl);
        cr_assert(kl == strlen(k) && memcmp(kp, k, kl) == 0, "entry %d: key %s, want %s", n, tu_hex(kp, kl), k);
        cr_assert(vl == strlen(v) && memcmp(vp, v, vl) == 0, "entry %d: value %s, want %s", n, tu_hex(vp, vl), v);
    }
    cr_assert_eq(n, 100, "the iterator read %d entries after the drop, want 100", n);
    EXPECT_OK(tind_iter_status(it));
    tind_iter_seek_last(it);
    cr_assert(tind_iter_valid(it));
    size_t kl;
    const void *kp = tind_iter_key(it, &kl);
    cr_assert(kl == 4 && memcmp(kp, "k099", 4) == 0, "last key after drop: %s", tu_hex(kp, kl));
    n = 0;
    for (tind_iter_seek_first(pit); tind_iter_valid(pit); tind_iter_next(pit)) n++;
    cr_assert_eq(n, 10, "prefix iterator after drop saw %d keys, want 10", n);
    tind_iter_close(it);
    tind_iter_close(pit);
}

/* Key i of generation g: "d%06d" -> 120 bytes that do not compress, so that
 * tables fill at their target size. */
#define DROP_VLEN 120
static void drop_put(tind_keyspace *ks, int i, int g)
{
    char k[16];
    uint8_t v[DROP_VLEN];
    int kl = snprintf(k, sizeof k, "d%06d", i);
    tu_fill(v, sizeof v, (uint64_t)i << 8 | (uint64_t)g);
    int rc = tind_put(ks, k, (size_t)kl, v, sizeof v);
    cr_assert_eq(rc, TIND_OK, "put %s: %s (%s)", k, tind_strerror(rc), tind_last_error());
}

/* Walks it forward from the first key (or backward from the last) and checks
 * that it returns exactly the keys whose gen[] is not 0, each with its value. */
static void drop_expect_walk(tind_iter *it, const int *gen, int n, int backward, const char *what)
{
    int i = backward ? n - 1 : 0, seen = 0;
    if (backward) tind_iter_seek_last(it);
    else tind_iter_seek_first(it);
    for (; tind_iter_valid(it); backward ? tind_iter_prev(it) : tind_iter_next(it), seen++) {
        while (i >= 0 && i < n && !gen[i]) i += backward ? -1 : 1;
        cr_assert(i >= 0 && i < n, "%s: an entry past the last expected one after %d", what, seen);
        char k[16];
        int kl = snprintf(k, sizeof k, "d%06d", i);
        size_t gkl, gvl;
        const void *kp = tind_iter_key(it, &gkl), *vp = tind_iter_value(it, &gvl);
        cr_assert(gkl == (size_t)kl && !memcmp(kp, k, gkl), "%s: entry %d is %s, want %s", what, seen,
                  tu_hex(kp, gkl), k);
        cr_assert(gvl == DROP_VLEN && tu_check_fill(vp, gvl, (uint64_t)i << 8 | (uint64_t)gen[i]) == gvl,
                  "%s: %s has the wrong value (want generation %d)", what, k, gen[i]);
        i += backward ? -1 : 1;
    }
    int rc = tind_iter_status(it);
    cr_assert_eq(rc, TIND_OK, "%s: the walk stopped after %d entries: %s (%s)", what, seen, tind_strerror(rc),
                 tind_last_error());
    while (i >= 0 && i < n && !gen[i]) i += backward ? -1 : 1;
    cr_assert(i < 0 || i >= n, "%s: the walk ended after %d entries, before d%06d", what, seen, i);
}

Test(api, iterators_opened_before_a_drop_read_every_level_after_it)
{
    /* Few open tables and many tables below level 0: the iterators open
     * most of their tables lazily, after the drop, and the table cache
     * evicts them as the walk goes. */
    tind_options o;
    tind_options_init(&o);
    o.max_open_tables = 16;
    g_db = open_db(sub("db"), &o);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64u << 10;
    ko.table_target_bytes = 64u << 10;
    ko.l0_trigger = 64;
    ko.l0_slowdown_tables = 64;
    ko.l0_stop_tables = 64;
    tind_keyspace *ks = ks_open(g_db, "victim", &ko);
    enum { N = 12000 };
    static int latest[N], snap[N];
    for (int i = 0; i < N; i++) drop_put(ks, i, latest[i] = 1);
    EXPECT_OK(tind_keyspace_compact(ks));
    for (int i = 0; i < N; i += 5) drop_put(ks, i, latest[i] = 2);
    EXPECT_OK(tind_keyspace_flush(ks));
    for (int i = 0; i < N; i += 13) {
        char k[16];
        int kl = snprintf(k, sizeof k, "d%06d", i);
        EXPECT_OK(tind_delete(ks, k, (size_t)kl));
        latest[i] = 0;
    }
    tind_snapshot *s = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s));
    memcpy(snap, latest, sizeof snap);
    for (int i = 3; i < N; i += 7) drop_put(ks, i, latest[i] = 3);

    struct tind_keyspace_stats st = ks_stats(ks);
    uint64_t deep = 0;
    for (int l = 1; l < TIND_LEVELS; l++) deep += st.tables[l];
    cr_assert(st.tables[0] >= 1 && deep > o.max_open_tables, "want tables in level 0 and more than %u below it: %llu and %llu",
              o.max_open_tables, (unsigned long long)st.tables[0], (unsigned long long)deep);
    char folder[64];
    snprintf(folder, sizeof folder, "db/keyspaces/%llu", (unsigned long long)st.id);

    tind_iter *it = NULL, *sit = NULL;
    EXPECT_OK(tind_iter_open(ks, NULL, NULL, &it));
    EXPECT_OK(tind_iter_open(ks, s, NULL, &sit));
    EXPECT_OK(tind_keyspace_drop(g_db, "victim"));
    /* A new keyspace of the same name, and a snapshot read of it: neither
     * touches what the old iterators see. */
    tind_keyspace *again = ks_open(g_db, "victim", &ko);
    for (int i = 0; i < N; i += 3) drop_put(again, i, 9);
    EXPECT_OK(tind_keyspace_flush(again));
    void *got = NULL;
    size_t gl = 0;
    EXPECT_RC(tind_snapshot_get(s, again, "d000000", 7, &got, &gl), TIND_NOT_FOUND);

    drop_expect_walk(it, latest, N, 0, "iterator, forward");
    drop_expect_walk(sit, snap, N, 0, "snapshot iterator, forward");
    drop_expect_walk(it, latest, N, 1, "iterator, backward");
    drop_expect_walk(sit, snap, N, 1, "snapshot iterator, backward");
    struct stat sb;
    cr_assert_eq(stat(sub(folder), &sb), 0, "the dropped keyspace's folder went while iterators read its tables");
    tind_iter_close(it);
    tind_iter_close(sit);
    tind_snapshot_close(s);

    /* The last reader gone, so are the tables, their open files and the folder. */
    cr_assert_neq(stat(sub(folder), &sb), 0, "the dropped keyspace's folder outlived its last reader");
    cr_assert_eq(tu_count_deleted_fds(sub("db")), 0, "deleted tables are still open");
    st = ks_stats(again);
    uint64_t live = 0;
    for (int l = 0; l < TIND_LEVELS; l++) live += st.tables[l];
    cr_assert_leq(db_stats(g_db).open_tables, live, "the table cache holds more tables than the live keyspace has");
}

/* ---- batches --------------------------------------------------------------------------- */

Test(api, batch_later_ops_on_a_key_win)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL), *b2 = ks_open(g_db, "b", NULL);
    put_s(a, "gone", "old");
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_OK(tind_batch_put(b, a, "k", 1, "1", 1));
    EXPECT_OK(tind_batch_put(b, a, "k", 1, "2", 1));
    EXPECT_OK(tind_batch_put(b, a, "pd", 2, "x", 1));
    EXPECT_OK(tind_batch_delete(b, a, "pd", 2));
    EXPECT_OK(tind_batch_delete(b, a, "dp", 2));
    EXPECT_OK(tind_batch_put(b, a, "dp", 2, "back", 4));
    EXPECT_OK(tind_batch_delete(b, a, "gone", 4));
    EXPECT_OK(tind_batch_put(b, b2, "k", 1, "in b", 4)); /* same key, other keyspace */
    EXPECT_OK(tind_batch_put(b, a, "k", 1, "3", 1));
    cr_assert_eq(tind_batch_count(b), 9);
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED));
    for (int round = 0; round < 2; round++) {
        expect_val(NULL, a, "k", "3");
        expect_val(NULL, a, "pd", NULL);
        expect_val(NULL, a, "dp", "back");
        expect_val(NULL, a, "gone", NULL);
        expect_val(NULL, b2, "k", "in b");
        if (round == 0) {
            tind_batch_free(b);
            close_main();
            g_db = open_db(sub("db"), NULL);
            a = ks_open(g_db, "a", NULL);
            b2 = ks_open(g_db, "b", NULL);
        }
    }
}

Test(api, batch_count_clear_and_reuse)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *ks = ks_open(g_db, "k", NULL);
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    cr_assert_not_null(b);
    cr_assert_eq(tind_batch_count(b), 0);
    EXPECT_OK(tind_batch_put(b, ks, "a", 1, "1", 1));
    EXPECT_OK(tind_batch_delete(b, ks, "b", 1));
    EXPECT_OK(tind_batch_put(b, ks, "a", 1, "", 0));
    cr_assert_eq(tind_batch_count(b), 3);
    tind_batch_clear(b);
    cr_assert_eq(tind_batch_count(b), 0);
    /* a cleared batch commits nothing */
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED));
    expect_val(NULL, ks, "a", NULL);

    /* fill, commit, and reuse without clearing: it is not consumed */
    EXPECT_OK(tind_batch_put(b, ks, "a", 1, "1", 1));
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED));
    cr_assert_eq(tind_batch_count(b), 1, "commit consumed the batch");
    expect_val(NULL, ks, "a", "1");
    put_s(ks, "a", "changed");
    EXPECT_OK(tind_batch_put(b, ks, "b", 1, "2", 1));
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_SYNC_DATA));
    expect_val(NULL, ks, "a", "1"); /* committed again */
    expect_val(NULL, ks, "b", "2");

    /* clear, refill with other keys, commit */
    tind_batch_clear(b);
    EXPECT_OK(tind_batch_delete(b, ks, "a", 1));
    EXPECT_OK(tind_batch_put(b, ks, "c", 1, "3", 1));
    cr_assert_eq(tind_batch_count(b), 2);
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_SYNC_ALL));
    expect_val(NULL, ks, "a", NULL);
    expect_val(NULL, ks, "b", "2");
    expect_val(NULL, ks, "c", "3");
    tind_batch_free(b);

    close_main();
    g_db = open_db(sub("db"), NULL);
    ks = ks_open(g_db, "k", NULL);
    expect_val(NULL, ks, "a", NULL);
    expect_val(NULL, ks, "b", "2");
    expect_val(NULL, ks, "c", "3");
}

Test(api, empty_batch_commits_ok)
{
    g_db = open_db(sub("db"), NULL);
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    uint64_t seq = db_stats(g_db).last_sequence;
    for (int d = TIND_DURABILITY_BUFFERED; d <= TIND_DURABILITY_SYNC_ALL; d++)
        EXPECT_OK(tind_batch_commit(g_db, b, d));
    cr_assert_eq(db_stats(g_db).last_sequence, seq, "an empty batch used a sequence number");
    /* an empty batch is not tied to a database */
    tind_db *db2 = open_db(sub("db2"), NULL);
    EXPECT_OK(tind_batch_commit(db2, b, TIND_DURABILITY_BUFFERED));
    EXPECT_OK(tind_close(db2));
    tind_batch_free(b);
}

Test(api, batch_committed_to_another_database_is_invalid)
{
    g_db = open_db(sub("db"), NULL);
    tind_db *db2 = open_db(sub("db2"), NULL);
    tind_keyspace *ks1 = ks_open(g_db, "k", NULL), *ks2 = ks_open(db2, "k", NULL);
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_OK(tind_batch_put(b, ks1, "a", 1, "1", 1));
    EXPECT_RC(tind_batch_commit(db2, b, TIND_DURABILITY_BUFFERED), TIND_INVALID);
    expect_val(NULL, ks1, "a", NULL);
    expect_val(NULL, ks2, "a", NULL);
    /* a batch cannot span two databases either */
    EXPECT_RC(tind_batch_put(b, ks2, "b", 1, "2", 1), TIND_INVALID);
    EXPECT_RC(tind_batch_delete(b, ks2, "b", 1), TIND_INVALID);
    cr_assert_eq(tind_batch_count(b), 1);
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED));
    expect_val(NULL, ks1, "a", "1");
    expect_val(NULL, ks2, "a", NULL);
    expect_val(NULL, ks2, "b", NULL);
    /* after a clear, the batch may be used with the other database */
    tind_batch_clear(b);
    EXPECT_OK(tind_batch_put(b, ks2, "b", 1, "2", 1));
    EXPECT_OK(tind_batch_commit(db2, b, TIND_DURABILITY_BUFFERED));
    expect_val(NULL, ks2, "b", "2");
    expect_val(NULL, ks1, "b", NULL);
    tind_batch_free(b);
    /* snapshots and iterators cannot mix databases */
    tind_snapshot *s = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s));
    void *got = NULL;
    size_t gl = 0;
    EXPECT_RC(tind_snapshot_get(s, ks2, "b", 1, &got, &gl), TIND_INVALID);
    tind_iter *it = NULL;
    EXPECT_RC(tind_iter_open(ks2, s, NULL, &it), TIND_INVALID);
    EXPECT_RC(tind_iter_open_prefix(ks2, s, "b", 1, &it), TIND_INVALID);
    tind_snapshot_close(s);
    EXPECT_OK(tind_close(db2));
}

Test(api, batch_naming_a_dropped_keyspace_fails_at_commit)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *keep = ks_open(g_db, "keep", NULL), *victim = ks_open(g_db, "victim", NULL);
    tind_batch *b = NULL;
    EXPECT_OK(tind_batch_new(&b));
    EXPECT_OK(tind_batch_put(b, keep, "a", 1, "1", 1));
    EXPECT_OK(tind_batch_put(b, victim, "a", 1, "1", 1));
    EXPECT_OK(tind_keyspace_drop(g_db, "victim"));
    uint64_t seq = db_stats(g_db).last_sequence;
    EXPECT_RC(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED), TIND_INVALID);
    cr_assert_str_not_empty(tind_last_error());
    /* atomic: the other keyspace's op did not happen either */
    expect_val(NULL, keep, "a", NULL);
    cr_assert_eq(db_stats(g_db).last_sequence, seq);
    /* a recreated keyspace of the same name does not revive the batch */
    tind_keyspace *again = ks_open(g_db, "victim", NULL);
    EXPECT_RC(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED), TIND_INVALID);
    expect_val(NULL, again, "a", NULL);
    /* the database is not harmed: later writes go through */
    put_s(keep, "b", "2");
    tind_batch_clear(b);
    EXPECT_OK(tind_batch_put(b, again, "a", 1, "new", 3));
    EXPECT_OK(tind_batch_commit(g_db, b, TIND_DURABILITY_BUFFERED));
    tind_batch_free(b);
    close_main();
    g_db = open_db(sub("db"), NULL);
    keep = ks_open(g_db, "keep", NULL);
    expect_val(NULL, keep, "a", NULL);
    expect_val(NULL, keep, "b", "2");
    expect_val(NULL, ks_open(g_db, "victim", NULL), "a", "new");
}

/* One writer commits batches that set every key of both keyspaces to the same
 * round number; readers check that every snapshot sees one round everywhere. */
enum { ATOM_KEYS = 64, ATOM_ROUNDS = 1000, ATOM_READERS = 2 };

struct atom_shared {
    tind_db *db;
    tind_keyspace *a, *b;
    atomic_int stop;
    atomic_int rounds_done;
};

struct atom_reader {
    struct atom_shared *sh;
    int checks;
    int failed;
    char why[512];
};

static void *atom_writer(void *p)
{
    struct atom_shared *sh = p;
    tind_batch *b = NULL;
    if (tind_batch_new(&b) != TIND_OK) {
        atomic_store(&sh->stop, 1);
        return NULL;
    }
    for (int r = 1; r <= ATOM_ROUNDS && !atomic_load(&sh->stop); r++) {
        char k[16], v[16];
        snprintf(v, sizeof v, "%08d", r);
        tind_batch_clear(b);
        for (int i = 0; i < ATOM_KEYS; i++) {
            snprintf(k, sizeof k, "k%d", i);
            /* interleave the keyspaces so that ops of both sit side by side */
            tind_batch_put(b, (i & 1) ? sh->b : sh->a, k, strlen(k), v, 8);
            tind_batch_put(b, (i & 1) ? sh->a : sh->b, k, strlen(k), v, 8);
        }
        if (r % 7 == 0) tind_batch_delete(b, sh->a, "gone", 4);
        else tind_batch_put(b, sh->a, "gone", 4, v, 8);
        if (tind_batch_commit(sh->db, b, TIND_DURABILITY_BUFFERED) != TIND_OK) break;
        atomic_store(&sh->rounds_done, r);
    }
    tind_batch_free(b);
    atomic_store(&sh->stop, 1);
    return NULL;
}

static int atom_read_round(tind_snapshot *s, tind_keyspace *ks, const char *k, int *round)
{
    void *v = NULL;
    size_t vl = 0;
    int rc = tind_snapshot_get(s, ks, k, strlen(k), &v, &vl);
    if (rc == TIND_NOT_FOUND) {
        *round = 0;
        return TIND_OK;
    }
    if (rc != TIND_OK) return rc;
    char buf[16] = {0};
    memcpy(buf, v, vl < 15 ? vl : 15);
    tind_free(v);
    *round = atoi(buf);
    return TIND_OK;
}

static void *atom_reader_main(void *p)
{
    struct atom_reader *rd = p;
    struct atom_shared *sh = rd->sh;
    while (!rd->failed) {
        int last = atomic_load(&sh->stop);
        tind_snapshot *s = NULL;
        if (tind_snapshot_open(sh->db, &s) != TIND_OK) {
            snprintf(rd->why, sizeof rd->why, "snapshot_open failed: %s", tind_last_error());
            rd->failed = 1;
            break;
        }
        int want = -1;
        /* the last key the batch writes first: a batch made visible before
         * it is wholly applied shows there */
        for (int i = ATOM_KEYS - 1; i >= 0 && !rd->failed; i--) {
            char k[16];
            snprintf(k, sizeof k, "k%d", i);
            int ra, rb;
            if (atom_read_round(s, sh->a, k, &ra) || atom_read_round(s, sh->b, k, &rb)) {
                snprintf(rd->why, sizeof rd->why, "snapshot_get failed: %s", tind_last_error());
                rd->failed = 1;
            } else if (want < 0) {
                want = ra;
            }
            if (!rd->failed && (ra != want || rb != want)) {
                snprintf(rd->why, sizeof rd->why,
                         "snapshot seq %llu saw part of a batch: %s is round %d in a and %d in b, key k%d round %d",
                         (unsigned long long)tind_snapshot_sequence(s), k, ra, rb, ATOM_KEYS - 1, want);
                rd->failed = 1;
            }
        }
        /* the same through a snapshot iterator over each keyspace */
        for (int side = 0; side < 2 && !rd->failed; side++) {
            tind_iter *it = NULL;
            if (tind_iter_open(side ? sh->b : sh->a, s, NULL, &it) != TIND_OK) {
                snprintf(rd->why, sizeof rd->why, "iter_open failed: %s", tind_last_error());
                rd->failed = 1;
                break;
            }
            int n = 0;
            for (tind_iter_seek_first(it); tind_iter_valid(it) && !rd->failed; tind_iter_next(it)) {
                size_t kl, vl;
                const char *k = tind_iter_key(it, &kl);
                const char *v = tind_iter_value(it, &vl);
                if (kl == 4 && memcmp(k, "gone", 4) == 0) continue;
                char buf[16] = {0};
                memcpy(buf, v, vl < 15 ? vl : 15);
                n++;
                if (atoi(buf) != want) {
                    snprintf(rd->why, sizeof rd->why, "snapshot iterator on %s: key %.*s round %d, want %d",
                             side ? "b" : "a", (int)kl, k, atoi(buf), want);
                    rd->failed = 1;
                }
            }
            if (!rd->failed && n != (want ? ATOM_KEYS : 0)) {
                snprintf(rd->why, sizeof rd->why, "snapshot iterator on %s saw %d keys at round %d",
                         side ? "b" : "a", n, want);
                rd->failed = 1;
            }
            tind_iter_close(it);
        }
        tind_snapshot_close(s);
        rd->checks++;
        if (last) break; /* one more pass after the writer finished */
    }
    return NULL;
}

Test(api, batch_is_atomic_across_keyspaces_for_a_concurrent_reader)
{
    g_db = open_db(sub("db"), NULL);
    struct atom_shared sh = {.db = g_db, .a = ks_open(g_db, "a", NULL), .b = ks_open(g_db, "b", NULL)};
    atomic_init(&sh.stop, 0);
    atomic_init(&sh.rounds_done, 0);
    struct atom_reader rd[ATOM_READERS];
    pthread_t rt[ATOM_READERS], wt;
    for (int i = 0; i < ATOM_READERS; i++) {
        memset(&rd[i], 0, sizeof rd[i]);
        rd[i].sh = &sh;
        cr_assert_eq(pthread_create(&rt[i], NULL, atom_reader_main, &rd[i]), 0);
    }
    cr_assert_eq(pthread_create(&wt, NULL, atom_writer, &sh), 0);
    pthread_join(wt, NULL);
    for (int i = 0; i < ATOM_READERS; i++) pthread_join(rt[i], NULL);
    for (int i = 0; i < ATOM_READERS; i++) {
        cr_assert_not(rd[i].failed, "reader %d after %d checks: %s", i, rd[i].checks, rd[i].why);
        cr_assert_gt(rd[i].checks, 0);
    }
    cr_assert_eq(atomic_load(&sh.rounds_done), ATOM_ROUNDS, "the writer stopped after round %d: %s",
                 atomic_load(&sh.rounds_done), tind_last_error());
    char v[16];
    snprintf(v, sizeof v, "%08d", ATOM_ROUNDS);
    expect_val(NULL, sh.a, "k0", v);
    expect_val(NULL, sh.b, "k63", v);
}

/* ---- snapshots --------------------------------------------------------------------------- */

Test(api, snapshot_sees_exactly_what_was_committed_before)
{
    g_db = open_db(sub("db"), NULL);
    tind_keyspace *a = ks_open(g_db, "a", NULL), *b = ks_open(g_db, "b", NULL);
    put_s(a, "x", "1");
    put_s(a, "y", "1");
    put_s(b, "x", "b1");
    del_s(a, "z");
    tind_snapshot *s1 = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s1));
    uint64_t seq1 = tind_snapshot_sequence(s1);
    cr_assert_eq(seq1, db_stats(g_db).last_sequence, "the snapshot's sequence is not the last one");
    tind_snapshot *s1b = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s1b));
    cr_assert_eq(tind_snapshot_sequence(s1b), seq1, "two snapshots with no write between differ");
    tind_snapshot_close(s1b);

    put_s(a, "x", "2");     /* overwrite */
    del_s(a, "y");          /* delete */
    put_s(a, "z", "new");   /* new key */
    put_s(b, "x", "b2");
    tind_batch *bt = NULL;
    EXPECT_OK(tind_batch_new(&bt));
    EXPECT_OK(tind_batch_put(bt, a, "w", 1, "batch", 5));
    EXPECT_OK(tind_batch_delete(bt, b, "x", 1));
    EXPECT_OK(tind_batch_commit(g_db, bt, TIND_DURABILITY_BUFFERED));
    tind_batch_free(bt);

    tind_snapshot *s2 = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s2));
    uint64_t seq2 = tind_snapshot_sequence(s2);
    cr_assert_gt(seq2, seq1, "snapshot sequence did not increase: %llu then %llu", (unsigned long long)seq1,
                 (unsigned long long)seq2);
    cr_assert_eq(seq2 - seq1, 6, "6 writes between the snapshots, sequence moved by %llu",
                 (unsigned long long)(seq2 - seq1));
    put_s(a, "x", "3");

    expect_val(s1, a, "x", "1");
    expect_val(s1, a, "y", "1");
    expect_val(s1, a, "z", NULL);
    expect_val(s1, a, "w", NULL);
    expect_val(s1, b, "x", "b1");
    expect_val(s2, a, "x", "2");
    expect_val(s2, a, "y", NULL);
    expect_val(s2, a, "z", "new");
    expect_val(s2, a, "w", "batch");
    expect_val(s2, b, "x", NULL);
    expect_val(NULL, a, "x", "3");
    cr_assert_eq(db_stats(g_db).snapshots, 2);

    /* a keyspace created after the snapshot reads as empty through it */
    tind_keyspace *c = ks_open(g_db, "c", NULL);
    put_s(c, "x", "c");
    expect_val(s1, c, "x", NULL);

    tind_snapshot_close(s1);
    expect_val(s2, a, "x", "2"); /* closing one does not disturb another */
    tind_snapshot_close(s2);
    cr_assert_eq(db_stats(g_db).snapshots, 0);

    /* after reopen, sequence numbers keep growing */
    close_main();
    g_db = open_db(sub("db"), NULL);
    tind_snapshot *s3 = NULL;
    EXPECT_OK(tind_snapshot_open(g_db, &s3));
    cr_assert_geq(tind_snapshot_sequence(s3), seq2 + 1, "sequence went back after reopen: %llu",
                  (unsigned long long)tind_snapshot_sequence(s3));
    tind_snapshot_close(s3);
    a = ks_open(g_db, "a", NULL);
    put_s(a, "after", "reopen");
    EXPECT_OK(tind_snapshot_open(g_db, &s3));
    cr_assert_gt(tind_snapshot_sequence(s3), seq2 + 1);
    expect_val(s3, a, "x", "3");
    tind_snapshot_close(s3);
}

