/* The crash test: runs crash-writer, kills it with SIGKILL at a random
 * moment, reopens the database and checks it against what was acknowledged:
 * every acknowledged batch present whole, no batch partly visible, no gap,
 * sequence numbers never going backwards. Repeats KILLS times.
 *   crash-check --kills=N --writer=PATH [--dir=DIR] [--seed=S] [--max-delay-ms=M]
 * Exit 0 and a summary line when every check held; 1 and the first failure otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/tools/crash_common.h"
#include "tind.h"

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int expect(tind_keyspace *ks, const char *ksname, uint64_t i, int present)
{
    char key[32];
    uint8_t want[512];
    size_t kl = crash_key(key, i), wl = crash_value(want, i);
    void *v;
    size_t vl;
    int rc = tind_get(ks, key, kl, &v, &vl);
    if (present) {
        if (rc != TIND_OK) {
            fprintf(stderr, "crash-check: %s/%s missing (%s)\n", ksname, key, tind_strerror(rc));
            return 1;
        }
        int bad = vl != wl || memcmp(v, want, wl) != 0;
        tind_free(v);
        if (bad) {
            fprintf(stderr, "crash-check: %s/%s has a wrong value\n", ksname, key);
            return 1;
        }
    } else if (rc != TIND_NOT_FOUND) {
        if (rc == TIND_OK) tind_free(v);
        fprintf(stderr, "crash-check: %s/%s present but should not be (%s)\n", ksname, key, tind_strerror(rc));
        return 1;
    }
    return 0;
}

/* Scans ks: its keys must be exactly k(first)..k(last) with their values,
 * then "counter" (which sorts before "k..."; skipped here). */
static int scan_expect(tind_keyspace *ks, const char *ksname, uint64_t first, uint64_t last, uint64_t *checked)
{
    tind_iter *it;
    const char lo[] = "k";
    tind_bounds bd = {lo, 1, NULL, 0};
    int rc = tind_iter_open(ks, NULL, &bd, &it);
    if (rc) {
        fprintf(stderr, "crash-check: iter_open %s: %s\n", ksname, tind_strerror(rc));
        return 1;
    }
    uint64_t i = first;
    int fail = 0;
    char key[32];
    uint8_t want[512];
    for (tind_iter_seek_first(it); tind_iter_valid(it) && !fail; tind_iter_next(it), i++) {
        size_t kl, vl;
        const void *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
        size_t ekl = crash_key(key, i), ewl = crash_value(want, i);
        if (i > last || kl != ekl || memcmp(k, key, kl) != 0) {
            fprintf(stderr, "crash-check: %s: scan found %.*s where %s was expected (newest batch %llu)\n", ksname,
                    (int)kl, (const char *)k, i > last ? "the end" : key, (unsigned long long)last);
            fail = 1;
        } else if (vl != ewl || memcmp(v, want, vl) != 0) {
            fprintf(stderr, "crash-check: %s/%s has a wrong value\n", ksname, key);
            fail = 1;
        }
        (*checked)++;
    }
    if (!fail && (rc = tind_iter_status(it)) != TIND_OK) {
        fprintf(stderr, "crash-check: %s: scan failed: %s: %s\n", ksname, tind_strerror(rc), tind_last_error());
        fail = 1;
    }
    if (!fail && i != last + 1 && last >= first) {
        fprintf(stderr, "crash-check: %s: scan ended at batch %llu, newest is %llu\n", ksname,
                (unsigned long long)i - 1, (unsigned long long)last);
        fail = 1;
    }
    tind_iter_close(it);
    return fail;
}

static int read_counter(tind_keyspace *ks, uint64_t *out)
{
    void *v;
    size_t vl;
    int rc = tind_get(ks, "counter", 7, &v, &vl);
    if (rc == TIND_NOT_FOUND) {
        *out = 0;
        return 0;
    }
    if (rc) return rc;
    char b[32] = {0};
    memcpy(b, v, vl < 31 ? vl : 31);
    tind_free(v);
    *out = strtoull(b, NULL, 10);
    return 0;
}

/* Opens the database and checks it; *counter gets the newest batch present. */
static int verify(const char *dir, uint64_t acked, uint64_t *counter, uint64_t *seq, uint64_t *checked)
{
    tind_db *db;
    int rc = tind_open(dir, NULL, &db);
    if (rc) {
        fprintf(stderr, "crash-check: reopen: %s: %s\n", tind_strerror(rc), tind_last_error());
        return 1;
    }
    tind_keyspace *a, *b;
    int fail = 0;
    uint64_t ca = 0, cb = 0;
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.memtable_bytes = 64 << 10; /* as the writer's: flushes and compactions all the time */
    ko.table_target_bytes = 64 << 10;
    ko.l0_trigger = 2;
    if (tind_keyspace_open(db, "a", &ko, &a) || tind_keyspace_open(db, "b", &ko, &b) || read_counter(a, &ca) ||
        read_counter(b, &cb)) {
        fprintf(stderr, "crash-check: keyspaces: %s\n", tind_last_error());
        fail = 1;
    } else if (ca != cb) {
        fprintf(stderr, "crash-check: torn batch: a/counter %llu, b/counter %llu\n", (unsigned long long)ca,
                (unsigned long long)cb);
        fail = 1;
    } else if (ca < acked) {
        fprintf(stderr, "crash-check: lost acknowledged batches: counter %llu < acknowledged %llu\n",
                (unsigned long long)ca, (unsigned long long)acked);
        fail = 1;
    }
    tind_snapshot *s = NULL;
    if (!fail && tind_snapshot_open(db, &s) == TIND_OK) {
        uint64_t sq = tind_snapshot_sequence(s);
        if (sq < *seq) {
            fprintf(stderr, "crash-check: sequence went backwards: %llu < %llu\n", (unsigned long long)sq,
                    (unsigned long long)*seq);
            fail = 1;
        }
        *seq = sq;
        tind_snapshot_close(s);
    }
    /* Every batch up to the counter is whole and none after it exists: a
     * scan of each keyspace must show exactly the expected keys in order
     * (tables and memtables merged), and point reads of a sample agree. */
    if (!fail) fail = scan_expect(b, "b", 1, ca, checked);
    if (!fail) fail = scan_expect(a, "a", ca > A_WINDOW ? ca - A_WINDOW + 1 : 1, ca, checked);
    for (int k = 0; !fail && k < 200 && ca > 0; k++) {
        uint64_t i = 1 + (uint64_t)rand() % ca;
        fail = expect(b, "b", i, 1) || expect(a, "a", i, i + A_WINDOW > ca);
    }
    if (!fail) fail = expect(b, "b", ca + 1, 0) || expect(a, "a", ca + 1, 0);
    *counter = ca;
    rc = tind_close(db);
    if (rc && !fail) {
        fprintf(stderr, "crash-check: close: %s\n", tind_strerror(rc));
        fail = 1;
    }
    return fail;
}

int main(int argc, char **argv)
{
    int kills = 50, max_delay = 60;
    const char *writer = NULL, *dir_arg = NULL;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--kills=", 8)) kills = atoi(argv[i] + 8);
        else if (!strncmp(argv[i], "--writer=", 9)) writer = argv[i] + 9;
        else if (!strncmp(argv[i], "--dir=", 6)) dir_arg = argv[i] + 6;
        else if (!strncmp(argv[i], "--seed=", 7)) seed = (unsigned)strtoul(argv[i] + 7, NULL, 10);
        else if (!strncmp(argv[i], "--max-delay-ms=", 15)) max_delay = atoi(argv[i] + 15);
        else {
            fprintf(stderr, "usage: crash-check --kills=N --writer=PATH [--dir=DIR] [--seed=S] [--max-delay-ms=M]\n");
            return 2;
        }
    }
    if (!writer || kills < 1 || max_delay < 1) {
        fprintf(stderr, "crash-check: --writer and a positive --kills are required\n");
        return 2;
    }
    char dir[256];
    if (dir_arg) snprintf(dir, sizeof dir, "%s", dir_arg);
    else {
        snprintf(dir, sizeof dir, "/tmp/tind-crash-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        strcat(dir, "/db");
    }
    printf("crash-check: seed %u, %d kills, database %s\n", seed, kills, dir);
    fflush(stdout);
    srand(seed);
    uint64_t counter = 0, seq = 0, checked = 0, acked_total = 0;
    uint64_t t0 = now_ms();
    int fail = 0;
    for (int k = 0; k < kills && !fail; k++) {
        int pfd[2];
        if (pipe(pfd)) {
            perror("pipe");
            return 1;
        }
        char first[32], sd[32];
        snprintf(first, sizeof first, "%llu", (unsigned long long)(counter + 1));
        snprintf(sd, sizeof sd, "%u", (unsigned)rand());
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            dup2(pfd[1], 1);
            close(pfd[0]);
            close(pfd[1]);
            execl(writer, writer, dir, first, sd, (char *)NULL);
            _exit(127);
        }
        close(pfd[1]);
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        uint64_t deadline = now_ms() + 1 + (uint64_t)(rand() % max_delay), acked = counter, rec;
        size_t have = 0;
        uint8_t rb[8];
        int exited = 0;
        while (now_ms() < deadline && !exited) {
            ssize_t r = read(pfd[0], rb + have, sizeof rb - have);
            if (r > 0) {
                have += (size_t)r;
                if (have == 8) {
                    memcpy(&rec, rb, 8);
                    acked = rec;
                    acked_total++;
                    have = 0;
                }
            } else if (r == 0) {
                exited = 1;
            } else if (errno == EAGAIN) {
                struct timespec ts = {0, 200000};
                nanosleep(&ts, NULL);
            }
        }
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        /* Acknowledgements already in the pipe count too. */
        fcntl(pfd[0], F_SETFL, 0);
        ssize_t r;
        while ((r = read(pfd[0], rb + have, sizeof rb - have)) > 0) {
            have += (size_t)r;
            if (have == 8) {
                memcpy(&rec, rb, 8);
                acked = rec;
                acked_total++;
                have = 0;
            }
        }
        close(pfd[0]);
        if (WIFEXITED(st)) {
            fprintf(stderr, "crash-check: the writer exited by itself with status %d\n", WEXITSTATUS(st));
            fail = 1;
            break;
        }
        fail = verify(dir, acked, &counter, &seq, &checked);
    }
    if (!fail) {
        printf("crash-check: %d kills survived, %llu batches acknowledged, %llu batch checks, newest batch %llu, "
               "%.1f s\n",
               kills, (unsigned long long)acked_total, (unsigned long long)checked, (unsigned long long)counter,
               (double)(now_ms() - t0) / 1000.0);
        if (!dir_arg) {
            char *slash = strrchr(dir, '/');
            *slash = 0;
            nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        }
    } else {
        printf("crash-check: FAILED (seed %u); database left in %s\n", seed, dir);
    }
    return fail;
}
