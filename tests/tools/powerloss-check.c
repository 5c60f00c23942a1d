/* The power-loss test: explores crash states of a deterministic workload.
 *
 * Each state runs the workload in a forked child with the power-loss
 * environment under the file layer tracking (tests/support/powerloss_env.h)
 * and a crash armed at sync boundary n: when the child reaches it, the file
 * layer freezes, the callback applies the loss in one of the drop modes
 * (unsynced data cut, torn or kept; names never made durable removed;
 * undurable unlinks and renames undone) and the child _exit()s. The parent
 * then reopens the database and checks it against what the child
 * acknowledged, recorded in shared memory:
 * - it opens (no corruption reported) and both keyspaces read without error;
 * - the batches present are exactly batches 1..P for some P (no hole, no torn
 *   batch: every key of a batch or none), with their values, by scans and by
 *   point reads alike;
 * - P covers every batch acknowledged with sync durability (and so every
 *   batch before it), and no batch that was never issued;
 * - the sequence number after reopening is not below that of batch P, and a
 *   batch written after recovery is durable and visible after another reopen.
 * Before the checks, a second power loss strikes during recovery: the
 * database is opened with a crash armed at one of its first boundaries (a
 * torn tail cut, a new journal started, empty journals removed), then the
 * checks run on what that leaves.
 * Halfway, the workload flushes both keyspaces and closes and reopens the
 * database: the flushed journals are rotated out and retired on the way.
 * The workload also makes a third keyspace, c, a sixth of the way in, writes
 * it in the batches up to a third, and drops it at five twelfths: c must be
 * gone after an acknowledged drop and otherwise hold exactly its part of the
 * batches present.
 * n runs 0, 1, 2, ... (or with a stride, for a sample) until the workload
 * finishes before boundary n; that last state is a power loss after a clean
 * close. Background flushes and compactions make the numbering vary between
 * runs; each run is one explored state.
 *
 *   powerloss-check [--states=N] [--modes=all,keep,random-part,torn-512,torn-4k,zero-tail]
 *                   [--batches=N] [--seed=S] [--at=N] [--dir=DIR] [--no-recovery-crash]
 *                   [--verbose]
 * --states=N explores about N states over all modes (0, the default: every
 * boundary in every mode); --at=N runs the single state n=N of each mode
 * (a replay, with --seed). Exit 0 and a summary when every check held; 1 and
 * the first failure (with what replays it) otherwise.
 * To debug a failure: TIND_PL_TRACE=1 prints every tracked file operation,
 * boundary and drop step on stderr; TIND_PL_KEEP=1 copies each state's root
 * to ROOT.pre before the checks (the database as the losses left it). The
 * root is under /dev/shm when it is writable: the simulator, not the disk,
 * decides what survives, so real syncs would only cost time. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/util/file.h"
#include "tests/support/powerloss_env.h"
#include "tind.h"

#define WINDOW 16          /* batch i deletes a/k(i - WINDOW) */
#define MAX_BATCHES 100000
#define EXIT_CRASHED 42    /* the child stopped at its crash point */

/* A crashed child _exit()s from the thread that reached the crash point,
 * with every other thread frozen in the file layer: by design, so a
 * ThreadSanitizer build must not report those threads as leaked. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "report_thread_leaks=0"; }

/* What the child acknowledged, written as it goes; read by the parent once
 * the child is gone. */
struct shared {
    uint64_t issued;       /* the newest batch handed to commit */
    uint64_t acked;        /* the newest batch whose commit returned TIND_OK */
    uint64_t synced;       /* the newest batch acknowledged with sync durability
                              (or made durable by tind_persist) */
    uint64_t boundaries;   /* boundaries the child passed (set when it finished) */
    int finished;          /* the workload ran to its end */
    int c_drop_issued;     /* tind_keyspace_drop("c") was called */
    int c_dropped;         /* and returned TIND_OK */
    uint64_t seq[MAX_BATCHES + 2]; /* seq[i]: the sequence number after batch i's commit */
};

static struct shared *sh;
static enum file_pl_mode child_mode;
static uint64_t child_seed;
static uint64_t nbatches = 600;
/* Keyspace c is created before batch c_first, written by batches c_first..
 * c_last and dropped before batch c_drop. */
static uint64_t c_first, c_last, c_drop;
static int verbose;
static int recovery_crashes = 1; /* a second loss during the recovery of each state */
static uint64_t recovery_crashed;  /* how many of those fired */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void rm_tree(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static size_t key_of(char *out, uint64_t i) { return (size_t)sprintf(out, "k%08llu", (unsigned long long)i); }

/* 200..1199 bytes derived from i and the keyspace, so that a value read from
 * the wrong batch or keyspace is noticed. */
static size_t value_of(uint8_t *out, uint64_t i, int ks)
{
    size_t n = 200 + (size_t)((i * 2654435761u + (unsigned)ks * 97) % 1000);
    for (size_t k = 0; k < n; k++) out[k] = (uint8_t)(i * 31 + k * 7 + (unsigned)ks * 101);
    return n;
}

/* The durability of batch i: most are buffered; some sync data, some sync all. */
static int durability_of(uint64_t i)
{
    if (i % 23 == 0) return TIND_DURABILITY_SYNC_ALL;
    if (i % 9 == 0) return TIND_DURABILITY_SYNC_DATA;
    return TIND_DURABILITY_BUFFERED;
}

static void ks_options(tind_keyspace_options *ko)
{
    tind_keyspace_options_init(ko);
    ko->memtable_bytes = 64 << 10; /* the smallest allowed: flushes all the time */
    ko->table_target_bytes = 64 << 10;
    ko->l0_trigger = 2;
}

static void db_options(tind_options *o)
{
    tind_options_init(o);
    o->journal_max_bytes = 64 << 10; /* rotate often */
    o->workers = 2;
}

static void on_crash(void *arg)
{
    (void)arg;
    int rc = file_pl_drop(child_mode, child_seed);
    if (rc != TIND_OK) {
        fprintf(stderr, "powerloss-check: drop failed: %s: %s\n", tind_strerror(rc), tind_last_error());
        _exit(3);
    }
    _exit(EXIT_CRASHED);
}

static void child_fail(const char *what, int rc)
{
    fprintf(stderr, "powerloss-check: child: %s: %s: %s\n", what, tind_strerror(rc), tind_last_error());
    _exit(3);
}

static void open_all(const char *db_path, tind_db **db, tind_keyspace **a, tind_keyspace **b)
{
    tind_options o;
    db_options(&o);
    tind_keyspace_options ko;
    ks_options(&ko);
    int rc = tind_open(db_path, &o, db);
    if (rc) child_fail("open", rc);
    if ((rc = tind_keyspace_open(*db, "a", &ko, a)) || (rc = tind_keyspace_open(*db, "b", &ko, b)))
        child_fail("keyspace open", rc);
}

/* Batch i: puts a/k(i) and b/k(i), sets a/counter and b/counter to i,
 * deletes a/k(i - WINDOW), and puts c/k(i) when c is given. */
static int fill_batch(tind_batch *bt, tind_keyspace *a, tind_keyspace *b, tind_keyspace *c, uint64_t i)
{
    char key[32], cnt[24];
    uint8_t val[1300];
    size_t kl = key_of(key, i), vl;
    int cl = sprintf(cnt, "%llu", (unsigned long long)i), rc;
    tind_batch_clear(bt);
    vl = value_of(val, i, 0);
    if ((rc = tind_batch_put(bt, a, key, kl, val, vl))) return rc;
    vl = value_of(val, i, 1);
    if ((rc = tind_batch_put(bt, b, key, kl, val, vl))) return rc;
    if ((rc = tind_batch_put(bt, a, "counter", 7, cnt, (size_t)cl))) return rc;
    if ((rc = tind_batch_put(bt, b, "counter", 7, cnt, (size_t)cl))) return rc;
    if (c) {
        vl = value_of(val, i, 2);
        if ((rc = tind_batch_put(bt, c, key, kl, val, vl))) return rc;
    }
    if (i > WINDOW) {
        kl = key_of(key, i - WINDOW);
        if ((rc = tind_batch_delete(bt, a, key, kl))) return rc;
    }
    return TIND_OK;
}

static uint64_t current_seq(tind_db *db)
{
    tind_snapshot *s;
    if (tind_snapshot_open(db, &s) != TIND_OK) return 0;
    uint64_t q = tind_snapshot_sequence(s);
    tind_snapshot_close(s);
    return q;
}

/* The workload, in the child. crash_at UINT64_MAX: none armed. */
static void child_run(const char *root, const char *db_path, uint64_t crash_at)
{
    int rc = file_pl_start(root);
    if (rc) child_fail("tracking start", rc);
    if (crash_at != UINT64_MAX) file_pl_crash_at(crash_at, on_crash, NULL);
    tind_db *db;
    tind_keyspace *a, *b;
    open_all(db_path, &db, &a, &b);
    tind_batch *bt;
    tind_keyspace *c = NULL;
    if ((rc = tind_batch_new(&bt))) child_fail("batch", rc);
    for (uint64_t i = 1; i <= nbatches; i++) {
        if (i == c_first) {
            /* A keyspace made in the middle: its folder, options and the
             * database's meta file must be durable before its writes are. */
            tind_keyspace_options ko;
            ks_options(&ko);
            if ((rc = tind_keyspace_open(db, "c", &ko, &c))) child_fail("keyspace c", rc);
        }
        if (i == c_drop) {
            sh->c_drop_issued = 1;
            if ((rc = tind_keyspace_drop(db, "c"))) child_fail("drop c", rc);
            sh->c_dropped = 1;
            sh->synced = i - 1; /* the drop is synced, and every batch before it */
        }
        if (i == nbatches / 2) {
            /* A close and reopen in the middle: what close leaves must be
             * recoverable too. Every keyspace is flushed first, so that the
             * journals whose writes are all flushed are rotated out and
             * retired, by the flushes and by the close (src/retire.c). */
            tind_batch_free(bt);
            if ((rc = tind_keyspace_flush(a))) child_fail("flush a", rc);
            if ((rc = tind_keyspace_flush(b))) child_fail("flush b", rc);
            if ((rc = tind_close(db))) child_fail("close", rc);
            open_all(db_path, &db, &a, &b);
            if ((rc = tind_batch_new(&bt))) child_fail("batch", rc);
        }
        if ((rc = fill_batch(bt, a, b, i >= c_first && i <= c_last ? c : NULL, i))) child_fail("batch fill", rc);
        int dur = durability_of(i);
        sh->issued = i;
        if ((rc = tind_batch_commit(db, bt, dur))) child_fail("commit", rc);
        sh->seq[i] = current_seq(db);
        sh->acked = i;
        if (dur != TIND_DURABILITY_BUFFERED) sh->synced = i;
        if (i % 97 == 0) {
            if ((rc = tind_persist(db, TIND_DURABILITY_SYNC_DATA))) child_fail("persist", rc);
            sh->synced = i;
        }
    }
    tind_batch_free(bt);
    if ((rc = tind_close(db))) child_fail("close", rc);
    sh->boundaries = file_pl_boundaries();
    sh->finished = 1;
    /* The power goes after a clean close. */
    if ((rc = file_pl_drop(child_mode, child_seed))) child_fail("drop", rc);
    _exit(0);
}

/* A second power loss, during recovery: opens the database left by the first
 * with a crash armed at boundary crash_at of the open. Exits 0 when the open
 * (and close) finished first. */
static void child_recover(const char *root, const char *db_path, uint64_t crash_at)
{
    int rc = file_pl_start(root);
    if (rc) child_fail("tracking start", rc);
    file_pl_crash_at(crash_at, on_crash, NULL);
    tind_db *db;
    tind_keyspace *a, *b;
    open_all(db_path, &db, &a, &b);
    if ((rc = tind_close(db))) child_fail("close after recovery", rc);
    file_pl_stop();
    _exit(0);
}

/* ---- checks, in the parent ------------------------------------------------ */

static char fail_msg[512];

/* Records the first failure's description; returns 1. */
__attribute__((format(printf, 1, 2))) static int FAIL(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
    va_end(ap);
    return 1;
}

static int read_counter(tind_keyspace *ks, uint64_t *out)
{
    void *v;
    size_t vl;
    int rc = tind_get(ks, "counter", 7, &v, &vl);
    *out = 0;
    if (rc == TIND_NOT_FOUND) return TIND_OK;
    if (rc) return rc;
    char buf[32] = {0};
    memcpy(buf, v, vl < 31 ? vl : 31);
    tind_free(v);
    *out = strtoull(buf, NULL, 10);
    return TIND_OK;
}

/* Point read of ks/k(i): present with its value, or absent. */
static int expect_get(tind_keyspace *ks, int ksi, uint64_t i, int present)
{
    char key[32];
    uint8_t want[1300];
    size_t kl = key_of(key, i), wl = value_of(want, i, ksi);
    void *v;
    size_t vl;
    int rc = tind_get(ks, key, kl, &v, &vl);
    if (present) {
        if (rc != TIND_OK) return FAIL("%c/%s missing (%s: %s)", 'a' + ksi, key, tind_strerror(rc), tind_last_error());
        int bad = vl != wl || memcmp(v, want, wl) != 0;
        tind_free(v);
        if (bad) return FAIL("%c/%s has a wrong value", 'a' + ksi, key);
    } else if (rc != TIND_NOT_FOUND) {
        if (rc == TIND_OK) tind_free(v);
        return FAIL("%c/%s present but should not be (%s)", 'a' + ksi, key, tind_strerror(rc));
    }
    return 0;
}

/* Scans ks's k-keys: exactly k(first)..k(last) with their values. */
static int expect_scan(tind_keyspace *ks, int ksi, uint64_t first, uint64_t last)
{
    tind_iter *it;
    tind_bounds bd = {"k", 1, "l", 1};
    int rc = tind_iter_open(ks, NULL, &bd, &it);
    if (rc) return FAIL("iter_open %c: %s", 'a' + ksi, tind_strerror(rc));
    uint64_t i = first;
    int fail = 0;
    char key[32];
    uint8_t want[1300];
    for (tind_iter_seek_first(it); tind_iter_valid(it) && !fail; tind_iter_next(it), i++) {
        size_t kl, vl;
        const void *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
        size_t ekl = key_of(key, i), ewl = value_of(want, i, ksi);
        if (i > last || kl != ekl || memcmp(k, key, kl) != 0)
            fail = FAIL("%c: scan found %.*s where %s was expected (newest batch %llu)", 'a' + ksi, (int)kl,
                        (const char *)k, i > last ? "the end" : key, (unsigned long long)last);
        else if (vl != ewl || memcmp(v, want, vl) != 0)
            fail = FAIL("%c/%s has a wrong value in a scan", 'a' + ksi, key);
    }
    if (!fail && (rc = tind_iter_status(it)) != TIND_OK)
        fail = FAIL("%c: scan failed: %s: %s", 'a' + ksi, tind_strerror(rc), tind_last_error());
    if (!fail && last >= first && i != last + 1)
        fail = FAIL("%c: scan ended at batch %llu, newest is %llu", 'a' + ksi, (unsigned long long)i - 1,
                    (unsigned long long)last);
    tind_iter_close(it);
    return fail;
}

static int open_check(const char *db_path, tind_db **db, tind_keyspace **a, tind_keyspace **b)
{
    tind_options o;
    db_options(&o);
    tind_keyspace_options ko;
    ks_options(&ko);
    int rc = tind_open(db_path, &o, db);
    if (rc) return FAIL("reopen: %s: %s", tind_strerror(rc), tind_last_error());
    if ((rc = tind_keyspace_open(*db, "a", &ko, a)) || (rc = tind_keyspace_open(*db, "b", &ko, b))) {
        tind_close(*db);
        return FAIL("keyspace open: %s: %s", tind_strerror(rc), tind_last_error());
    }
    return 0;
}

/* Keyspace c: gone once its drop was acknowledged; present, holding exactly
 * its part of batches c_first..min(P, c_last), whenever a batch that wrote it
 * is present, unless its drop (issued, not acknowledged) made it. */
static int verify_c(tind_db *db, uint64_t p)
{
    char **names;
    size_t n;
    int rc = tind_keyspace_list(db, &names, &n);
    if (rc) return FAIL("keyspace list: %s: %s", tind_strerror(rc), tind_last_error());
    int exists = 0;
    for (size_t i = 0; i < n; i++) exists |= !strcmp(names[i], "c");
    tind_free(names);
    if (sh->c_dropped && exists) return FAIL("keyspace c is back after its acknowledged drop");
    if (!exists) {
        if (p >= c_first && !sh->c_drop_issued)
            return FAIL("keyspace c is missing although batch %llu, which wrote it, is present",
                        (unsigned long long)c_first);
        return 0;
    }
    tind_keyspace *c;
    if ((rc = tind_keyspace_open(db, "c", NULL, &c)))
        return FAIL("keyspace c: %s: %s", tind_strerror(rc), tind_last_error());
    uint64_t last = p < c_last ? p : c_last;
    if (last < c_first) {
        /* Nothing of c present: the scan below must find nothing. */
        return expect_scan(c, 2, 1, 0);
    }
    int fail = expect_scan(c, 2, c_first, last);
    for (uint64_t i = c_first; !fail && i <= last; i++) fail = expect_get(c, 2, i, 1);
    return fail;
}

/* Checks the database left by one crash state; *present gets P. */
static int verify(const char *db_path, uint64_t *present, uint64_t *checks)
{
    tind_db *db;
    tind_keyspace *a, *b;
    if (open_check(db_path, &db, &a, &b)) return 1;
    uint64_t ca, cb;
    int rc, fail = 0;
    if ((rc = read_counter(a, &ca)) || (rc = read_counter(b, &cb)))
        fail = FAIL("counter read: %s: %s", tind_strerror(rc), tind_last_error());
    else if (ca != cb)
        fail = FAIL("torn batch: a/counter %llu, b/counter %llu", (unsigned long long)ca, (unsigned long long)cb);
    else if (ca < sh->synced)
        fail = FAIL("lost durable batches: newest present %llu, newest acknowledged durable %llu",
                    (unsigned long long)ca, (unsigned long long)sh->synced);
    else if (ca > sh->issued)
        fail = FAIL("batch %llu present but only %llu were issued", (unsigned long long)ca,
                    (unsigned long long)sh->issued);
    uint64_t p = ca;
    if (!fail) {
        /* The sequence number of the newest batch known to be acknowledged
         * at or before P. */
        uint64_t want_seq = 0;
        for (uint64_t i = p < sh->acked ? p : sh->acked; i > 0 && !want_seq; i--) want_seq = sh->seq[i];
        uint64_t q = current_seq(db);
        if (q < want_seq)
            fail = FAIL("sequence went backwards: %llu after reopen, batch %llu had %llu", (unsigned long long)q,
                        (unsigned long long)p, (unsigned long long)want_seq);
    }
    if (!fail) fail = expect_scan(b, 1, 1, p);
    if (!fail) fail = expect_scan(a, 0, p > WINDOW ? p - WINDOW + 1 : 1, p);
    for (uint64_t i = 1; !fail && i <= p; i++) {
        fail = expect_get(b, 1, i, 1) || expect_get(a, 0, i, i + WINDOW > p);
        (*checks)++;
    }
    if (!fail) fail = expect_get(b, 1, p + 1, 0) || expect_get(a, 0, p + 1, 0);
    if (!fail) fail = verify_c(db, p);
    /* Recovery must leave a database that takes new writes durably. */
    tind_batch *bt = NULL;
    if (!fail && ((rc = tind_batch_new(&bt)) || (rc = fill_batch(bt, a, b, NULL, p + 1)) ||
                  (rc = tind_batch_commit(db, bt, TIND_DURABILITY_SYNC_DATA))))
        fail = FAIL("commit after recovery: %s: %s", tind_strerror(rc), tind_last_error());
    tind_batch_free(bt);
    uint64_t q1 = current_seq(db);
    rc = tind_close(db);
    if (!fail && rc) fail = FAIL("close: %s: %s", tind_strerror(rc), tind_last_error());
    if (fail) return 1;
    if (open_check(db_path, &db, &a, &b)) return 1;
    if ((rc = read_counter(a, &ca)) || (rc = read_counter(b, &cb)) || ca != p + 1 || cb != p + 1)
        fail = FAIL("the batch written after recovery is lost: counters %llu and %llu, expected %llu",
                    (unsigned long long)ca, (unsigned long long)cb, (unsigned long long)p + 1);
    else if (current_seq(db) < q1)
        fail = FAIL("sequence went backwards across the second reopen: %llu < %llu",
                    (unsigned long long)current_seq(db), (unsigned long long)q1);
    if (!fail) fail = expect_get(b, 1, p + 1, 1) || expect_get(a, 0, p + 1, 1) || expect_get(b, 1, p, p > 0);
    tind_close(db);
    *present = p;
    return fail;
}

/* Runs state (mode, n): 1 when the workload finished before boundary n. */
static int run_state(const char *root, const char *db_path, enum file_pl_mode mode, uint64_t n, uint64_t seed,
                     int *finished, uint64_t *present, uint64_t *checks)
{
    rm_tree(root);
    if (mkdir(root, 0755) != 0) {
        FAIL("mkdir %s: %s", root, strerror(errno));
        return 1;
    }
    memset(sh, 0, sizeof *sh);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        FAIL("fork: %s", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        child_mode = mode;
        child_seed = seed;
        child_run(root, db_path, n);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != EXIT_CRASHED)) {
        FAIL("the workload failed (status 0x%x) before its crash point", st);
        return 1;
    }
    *finished = WEXITSTATUS(st) == 0;
    if (recovery_crashes) {
        /* Recovery writes too (a torn tail cut, a new journal, empty journals
         * removed, manifests rewritten): lose power in the middle of it. */
        if ((pid = fork()) < 0) {
            FAIL("fork: %s", strerror(errno));
            return 1;
        }
        if (pid == 0) {
            child_mode = mode;
            child_seed = seed ^ 0x5bd1e995u;
            child_recover(root, db_path, (seed >> 8) % 8);
        }
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != EXIT_CRASHED)) {
            FAIL("recovery failed (status 0x%x; its message is above)", st);
            return 1;
        }
        if (WEXITSTATUS(st) == EXIT_CRASHED) recovery_crashed++;
    }
    if (getenv("TIND_PL_KEEP")) { /* for debugging: see the top of the file */
        char cmd[3 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "rm -rf '%s.pre' && cp -a '%s' '%s.pre'", root, root, root);
        if (system(cmd) != 0) fprintf(stderr, "powerloss-check: cannot keep a copy of %s\n", root);
    }
    return verify(db_path, present, checks);
}

int main(int argc, char **argv)
{
    uint64_t states = 0, at = UINT64_MAX;
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
    const char *dir_arg = NULL, *modes_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--states=", 9)) states = strtoull(argv[i] + 9, NULL, 10);
        else if (!strncmp(argv[i], "--seed=", 7)) seed = strtoull(argv[i] + 7, NULL, 10);
        else if (!strncmp(argv[i], "--at=", 5)) at = strtoull(argv[i] + 5, NULL, 10);
        else if (!strncmp(argv[i], "--batches=", 10)) nbatches = strtoull(argv[i] + 10, NULL, 10);
        else if (!strncmp(argv[i], "--dir=", 6)) dir_arg = argv[i] + 6;
        else if (!strncmp(argv[i], "--modes=", 8)) modes_arg = argv[i] + 8;
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else if (!strcmp(argv[i], "--no-recovery-crash")) recovery_crashes = 0;
        else {
            fprintf(stderr, "usage: powerloss-check [--states=N] [--modes=M,...] [--batches=N] [--seed=S] [--at=N] "
                            "[--dir=DIR] [--no-recovery-crash] [--verbose]\n");
            return 2;
        }
    }
    if (nbatches < 12 || nbatches > MAX_BATCHES) {
        fprintf(stderr, "powerloss-check: --batches must be 12 to %d\n", MAX_BATCHES);
        return 2;
    }
    c_first = nbatches / 6;
    c_last = nbatches / 3;
    c_drop = nbatches * 5 / 12;
    enum file_pl_mode modes[FILE_PL_MODES];
    int nmodes = 0;
    for (int m = 0; m < FILE_PL_MODES; m++) {
        const char *name = file_pl_mode_name((enum file_pl_mode)m);
        size_t l = strlen(name);
        const char *s = modes_arg;
        int want = !modes_arg;
        while (s && !want && (s = strstr(s, name)) != NULL) {
            want = (s == modes_arg || s[-1] == ',') && (s[l] == 0 || s[l] == ',');
            s += l;
        }
        if (want) modes[nmodes++] = (enum file_pl_mode)m;
    }
    if (nmodes == 0) {
        fprintf(stderr, "powerloss-check: no known mode in --modes=%s\n", modes_arg);
        return 2;
    }
    char root[PATH_MAX], db_path[PATH_MAX + 8];
    if (dir_arg) {
        snprintf(root, sizeof root, "%s", dir_arg);
    } else {
        snprintf(root, sizeof root, "%s/tind-powerloss-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(root)) {
            perror("mkdtemp");
            return 1;
        }
    }
    snprintf(db_path, sizeof db_path, "%s/db", root);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint64_t t0 = now_ms(), checks = 0, total = 0;
    int fail = 0, finished = 0;
    uint64_t present = 0;
    /* A run without a crash counts the workload's boundaries for the stride. */
    fail = run_state(root, db_path, FILE_PL_ALL, UINT64_MAX, seed, &finished, &present, &checks);
    if (fail) {
        printf("powerloss-check: FAILED in the run without a crash point (a power loss in mode all after a clean "
               "close): %s\n", fail_msg);
        printf("powerloss-check: replay with --seed=%llu; database left in %s\n", (unsigned long long)seed, db_path);
        return 1;
    }
    uint64_t bounds = sh->boundaries;
    recovery_crashed = 0; /* count those of the explored states only */
    uint64_t stride = 1;
    if (states > 0 && at == UINT64_MAX) {
        stride = (bounds * (uint64_t)nmodes + states - 1) / states;
        if (stride < 1) stride = 1;
    }
    printf("powerloss-check: seed %llu, %llu batches, %llu boundaries in a full run, stride %llu, %d modes, "
               "database %s\n",
               (unsigned long long)seed, (unsigned long long)nbatches, (unsigned long long)bounds,
               (unsigned long long)stride, nmodes, db_path);
    uint64_t fail_n = 0;
    enum file_pl_mode fail_mode = FILE_PL_ALL;
    for (int mi = 0; mi < nmodes && !fail; mi++) {
        enum file_pl_mode m = modes[mi];
        uint64_t explored = 0, max_bound = 0, sum_present = 0, t1 = now_ms();
        /* Modes start at different offsets so that a sample covers more boundaries. */
        uint64_t n = at != UINT64_MAX ? at : stride > 1 ? (uint64_t)mi * stride / (uint64_t)nmodes : 0;
        for (;; n += stride) {
            finished = 0;
            uint64_t state_seed = seed * 1000003u + n * 7919u + (uint64_t)m;
            fail = run_state(root, db_path, m, n, state_seed, &finished, &present, &checks);
            explored++;
            total++;
            if (fail) {
                fail_n = n;
                fail_mode = m;
                break;
            }
            sum_present += present;
            if (finished) {
                max_bound = sh->boundaries;
                break;
            }
            max_bound = n + 1;
            if (verbose) printf("  %s n=%llu: %llu batches present\n", file_pl_mode_name(m), (unsigned long long)n,
                                (unsigned long long)present);
            if (at != UINT64_MAX) break;
        }
        if (!fail)
            printf("powerloss-check: mode %-11s %4llu states, %4llu boundaries, %6.1f batches present on "
                   "average, %.1f s\n",
                   file_pl_mode_name(m), (unsigned long long)explored, (unsigned long long)max_bound,
                   (double)sum_present / (double)explored, (double)(now_ms() - t1) / 1000.0);
    }
    if (fail) {
        printf("powerloss-check: FAILED in mode %s at boundary %llu: %s\n", file_pl_mode_name(fail_mode),
               (unsigned long long)fail_n, fail_msg);
        printf("powerloss-check: replay with --seed=%llu --modes=%s --at=%llu; database left in %s\n",
               (unsigned long long)seed, file_pl_mode_name(fail_mode), (unsigned long long)fail_n, db_path);
        return 1;
    }
    printf("powerloss-check: %llu crash states explored (%llu with a second loss during recovery), %llu batch "
           "checks, all held, %.1f s\n",
           (unsigned long long)total, (unsigned long long)recovery_crashed, (unsigned long long)checks,
           (double)(now_ms() - t0) / 1000.0);
    if (!dir_arg) rm_tree(root);
    return 0;
}
