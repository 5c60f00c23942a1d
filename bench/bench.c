/* tind-bench: the quick benchmark behind `make bench`.
 *
 * On a fresh database with default options (keyspaces with a 16 MiB memtable,
 * so that tables are flushed and read back): writes N random keys (16-byte
 * keys, 100-byte half-compressible values) with single puts into one keyspace
 * and in batches of 100 across two others, flushes, reads them back in random
 * order, reads missing keys, seeks, scans forward and backward, reopens, and
 * reads again; prints ops/s per phase.
 *
 * Then fillsync: synced single puts (TIND_DURABILITY_SYNC_DATA) from one
 * thread, then from 4 threads at once, to show group commit.
 *
 *   tind-bench [--num=N] [--value-size=B] [--batch=K] [--sync-ops=M] [--db=DIR] [--seed=S] */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tind.h"

#define KEY_SIZE 16

static uint64_t num = 1000000, seed = 42;
static size_t value_size = 100, batch_size = 100;
static uint64_t sync_ops = 2000;
static uint64_t memtable_mb = 16;
static const char *dir = "build/bench-db";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

/* Key i of the run: 16 hex digits of a bijective mix of i, so keys are random
 * in order but each index names one key. */
static void make_key(char *out, uint64_t i)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t x = mix64(i ^ seed);
    for (int k = KEY_SIZE - 1; k >= 0; k--) {
        out[k] = hex[x & 15];
        x >>= 4;
    }
}

/* Half random, half repeated: compresses to about half. */
static void make_value(uint8_t *out, uint64_t i)
{
    uint64_t x = mix64(i + 0x9e3779b97f4a7c15u);
    size_t half = value_size / 2;
    for (size_t k = 0; k < half; k++) {
        if ((k & 7) == 0) x = mix64(x);
        out[k] = (uint8_t)(x >> ((k & 7) * 8));
    }
    memset(out + half, 'v', value_size - half);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "tind-bench: %s: %s: %s\n", what, tind_strerror(rc), tind_last_error());
    exit(1);
}

static void report(const char *phase, uint64_t ops, double secs, uint64_t bytes)
{
    printf("%-22s %10llu ops %8.3f s %12.0f ops/s %8.1f MB/s\n", phase, (unsigned long long)ops, secs,
           (double)ops / secs, (double)bytes / secs / 1e6);
    fflush(stdout);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void read_random(tind_keyspace *ks, const char *phase)
{
    char key[KEY_SIZE];
    uint64_t found = 0, x = seed * 7 + 1;
    double t = now_s();
    for (uint64_t i = 0; i < num; i++) {
        x = mix64(x);
        make_key(key, x % num);
        void *v;
        size_t vl;
        int rc = tind_get(ks, key, KEY_SIZE, &v, &vl);
        if (rc == TIND_OK) {
            found++;
            tind_free(v);
        } else if (rc != TIND_NOT_FOUND) die("get", rc);
    }
    report(phase, num, now_s() - t, num * (KEY_SIZE + value_size));
    if (found != num) {
        fprintf(stderr, "tind-bench: %s found %llu of %llu keys\n", phase, (unsigned long long)found,
                (unsigned long long)num);
        exit(1);
    }
}

static void read_missing(tind_keyspace *ks)
{
    char key[KEY_SIZE];
    double t = now_s();
    for (uint64_t i = 0; i < num; i++) {
        make_key(key, num + i); /* indexes past num were never written */
        key[0] = 'x';           /* and outside the hex alphabet besides */
        void *v;
        size_t vl;
        int rc = tind_get(ks, key, KEY_SIZE, &v, &vl);
        if (rc != TIND_NOT_FOUND) die("get of a missing key", rc == TIND_OK ? TIND_CORRUPTION : rc);
    }
    report("readmissing", num, now_s() - t, num * KEY_SIZE);
}

static void print_tables(tind_keyspace *ks, const char *name)
{
    struct tind_keyspace_stats st;
    if (tind_keyspace_stats(ks, &st) != TIND_OK) return;
    printf("%-22s %llu tables, %.1f MB in level 0; %llu flushes\n", name, (unsigned long long)st.tables[0],
           (double)st.table_bytes[0] / 1e6, (unsigned long long)st.flushes);
}

/* Seek to a random existing key, then read the next 10. */
static void seek_random(tind_keyspace *ks)
{
    tind_iter *it;
    int rc = tind_iter_open(ks, NULL, NULL, &it);
    if (rc) die("iter_open", rc);
    char key[KEY_SIZE];
    uint64_t x = seed * 13 + 5, ops = num / 10, found = 0;
    double t = now_s();
    for (uint64_t i = 0; i < ops; i++) {
        x = mix64(x);
        make_key(key, x % num);
        tind_iter_seek(it, key, KEY_SIZE);
        for (int k = 0; k < 10 && tind_iter_valid(it); k++) {
            size_t kl;
            tind_iter_key(it, &kl);
            found++;
            tind_iter_next(it);
        }
    }
    if ((rc = tind_iter_status(it)) != TIND_OK) die("seek", rc);
    report("seekrandom (+10 next)", ops, now_s() - t, found * (KEY_SIZE + value_size));
    tind_iter_close(it);
}

static void scan(tind_keyspace *ks, int reverse)
{
    tind_iter *it;
    int rc = tind_iter_open(ks, NULL, NULL, &it);
    if (rc) die("iter_open", rc);
    double t = now_s();
    uint64_t n = 0, bytes = 0;
    if (reverse) tind_iter_seek_last(it);
    else tind_iter_seek_first(it);
    while (tind_iter_valid(it)) {
        size_t kl, vl;
        tind_iter_key(it, &kl);
        tind_iter_value(it, &vl);
        bytes += kl + vl;
        n++;
        if (reverse) tind_iter_prev(it);
        else tind_iter_next(it);
    }
    if ((rc = tind_iter_status(it)) != TIND_OK) die("scan", rc);
    report(reverse ? "readreverse" : "readseq", n, now_s() - t, bytes);
    tind_iter_close(it);
    if (n != num) {
        fprintf(stderr, "tind-bench: scan saw %llu of %llu keys\n", (unsigned long long)n, (unsigned long long)num);
        exit(1);
    }
}

struct sync_arg {
    tind_keyspace *ks;
    uint64_t first, count;
};

/* Puts through a keyspace whose durability option is SYNC_DATA. */
static void *sync_writer(void *p)
{
    struct sync_arg *a = p;
    char key[KEY_SIZE];
    uint8_t *val = malloc(value_size);
    if (!val) die("malloc", TIND_NO_MEMORY);
    for (uint64_t i = a->first; i < a->first + a->count; i++) {
        make_key(key, i);
        make_value(val, i);
        int rc = tind_put(a->ks, key, KEY_SIZE, val, value_size);
        if (rc) die("synced put", rc);
    }
    free(val);
    return NULL;
}

static void fill_sync(tind_db *db, int threads)
{
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.durability = TIND_DURABILITY_SYNC_DATA;
    tind_keyspace *ks;
    int rc = tind_keyspace_open(db, "sync", &ko, &ks);
    if (rc) die("keyspace_open", rc);
    struct tind_db_stats s0, s1;
    tind_db_stats(db, &s0);
    pthread_t th[16];
    struct sync_arg args[16];
    uint64_t per = sync_ops / (uint64_t)threads;
    double t = now_s();
    for (int i = 0; i < threads; i++) {
        args[i] = (struct sync_arg){ks, (uint64_t)i * per, per};
        pthread_create(&th[i], NULL, sync_writer, &args[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double secs = now_s() - t;
    tind_db_stats(db, &s1);
    char name[40];
    snprintf(name, sizeof name, "fillsync (%d thread%s)", threads, threads > 1 ? "s" : "");
    report(name, per * (uint64_t)threads, secs, per * (uint64_t)threads * (KEY_SIZE + value_size));
    printf("%-22s %llu writes in %llu groups, %llu syncs\n", "", (unsigned long long)(s1.writes - s0.writes),
           (unsigned long long)(s1.write_groups - s0.write_groups),
           (unsigned long long)(s1.journal_syncs - s0.journal_syncs));
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--num=", 6)) num = strtoull(argv[i] + 6, NULL, 10);
        else if (!strncmp(argv[i], "--value-size=", 13)) value_size = strtoull(argv[i] + 13, NULL, 10);
        else if (!strncmp(argv[i], "--batch=", 8)) batch_size = strtoull(argv[i] + 8, NULL, 10);
        else if (!strncmp(argv[i], "--memtable-mb=", 14)) memtable_mb = strtoull(argv[i] + 14, NULL, 10);
        else if (!strncmp(argv[i], "--sync-ops=", 11)) sync_ops = strtoull(argv[i] + 11, NULL, 10);
        else if (!strncmp(argv[i], "--db=", 5)) dir = argv[i] + 5;
        else if (!strncmp(argv[i], "--seed=", 7)) seed = strtoull(argv[i] + 7, NULL, 10);
        else {
            fprintf(stderr, "usage: tind-bench [--num=N] [--value-size=B] [--batch=K] [--sync-ops=M] [--memtable-mb=MB] [--db=DIR] [--seed=S]\n");
            return 2;
        }
    }
    if (num == 0 || batch_size == 0 || value_size < 2) {
        fprintf(stderr, "tind-bench: --num and --batch must be positive, --value-size at least 2\n");
        return 2;
    }
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    printf("tind %s: %llu keys of %d bytes, values of %zu bytes, batches of %zu, database %s\n", tind_version(),
           (unsigned long long)num, KEY_SIZE, value_size, batch_size, dir);

    tind_db *db;
    tind_keyspace *single, *ba, *bb;
    int rc = tind_open(dir, NULL, &db);
    if (rc) die("open", rc);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = memtable_mb << 20;
    if ((rc = tind_keyspace_open(db, "single", &ko, &single)) || (rc = tind_keyspace_open(db, "batch_a", &ko, &ba)) ||
        (rc = tind_keyspace_open(db, "batch_b", &ko, &bb)))
        die("keyspace_open", rc);

    char key[KEY_SIZE];
    uint8_t *val = malloc(value_size);
    if (!val) return 1;
    double t = now_s();
    for (uint64_t i = 0; i < num; i++) {
        make_key(key, i);
        make_value(val, i);
        if ((rc = tind_put(single, key, KEY_SIZE, val, value_size)) != TIND_OK) die("put", rc);
    }
    report("fillrandom (put)", num, now_s() - t, num * (KEY_SIZE + value_size));

    tind_batch *b;
    if ((rc = tind_batch_new(&b))) die("batch_new", rc);
    t = now_s();
    for (uint64_t i = 0; i < num; i += batch_size) {
        tind_batch_clear(b);
        for (uint64_t k = i; k < i + batch_size && k < num; k++) {
            make_key(key, k);
            make_value(val, k);
            /* Alternate keyspaces so every batch spans both. */
            if ((rc = tind_batch_put(b, (k & 1) ? bb : ba, key, KEY_SIZE, val, value_size)) != TIND_OK)
                die("batch_put", rc);
        }
        if ((rc = tind_batch_commit(db, b, TIND_DURABILITY_BUFFERED)) != TIND_OK) die("batch_commit", rc);
    }
    report("fillbatch (2 ks)", num, now_s() - t, num * (KEY_SIZE + value_size));
    tind_batch_free(b);

    t = now_s();
    if ((rc = tind_keyspace_flush(single)) || (rc = tind_keyspace_flush(ba)) || (rc = tind_keyspace_flush(bb)))
        die("flush", rc);
    report("flush (3 ks)", 3, now_s() - t, 0);
    print_tables(single, "single");

    read_random(single, "readrandom");
    read_missing(single);
    seek_random(single);
    scan(single, 0);
    scan(single, 1);

    t = now_s();
    if ((rc = tind_close(db)) != TIND_OK) die("close", rc);
    if ((rc = tind_open(dir, NULL, &db)) != TIND_OK) die("reopen", rc);
    report("reopen (replay)", 1, now_s() - t, 0);
    if ((rc = tind_keyspace_open(db, "single", NULL, &single))) die("keyspace_open", rc);
    read_random(single, "readrandom (reopened)");

    if (sync_ops > 0) {
        fill_sync(db, 1);
        fill_sync(db, 4);
    }

    struct tind_db_stats st;
    if ((rc = tind_db_stats(db, &st)) == TIND_OK)
        printf("journal: %llu files, %.1f MB; %llu writes in %llu groups\n", (unsigned long long)st.journal_files,
               (double)st.journal_bytes / 1e6, (unsigned long long)st.writes, (unsigned long long)st.write_groups);
    if ((rc = tind_close(db)) != TIND_OK) die("close", rc);
    free(val);
    return 0;
}
