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
    if (tind_keyspace_open(db, "a", NULL, &a) || tind_keyspace_open(db, "b", NULL, &b) || read_counter(a, &ca) ||
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
    /* Every batch up to the counter is whole, none after it exists. */
    for (uint64_t i = 1; !fail && i <= ca + 1; i++) {
        int in = i <= ca;
        fail = expect(b, "b", i, in) || expect(a, "a", i, in && i + A_WINDOW > ca);
        (*checked)++;
    }
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
