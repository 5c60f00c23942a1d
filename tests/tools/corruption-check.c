/* The corruption suite: damages the files of a small real database one bit
 * flip or one truncation at a time and checks that tind either reports
 * TIND_CORRUPTION naming the file and an offset, or reads exactly the right
 * data — never a wrong value, a crash, a hang or (under ASan) a leak.
 *
 *   corruption-check [--bits=N|all] [--truncs=N|all] [--dir=DIR] [--seed=S] [--verbose]
 *
 * The base database is written in two sessions (so two journals, both kept:
 * one keyspace is never flushed) over three keyspaces: "ks" (leveled, lz4,
 * 256-byte blocks, flushed twice), "ks2" (tiered, no filter, zstd below
 * level 0, values up to 300 bytes, flushed twice then compacted) and "ks3"
 * (FIFO, never flushed). Its files are the journals, the tables, each
 * keyspace's MANIFEST and OPTIONS, and the TIND meta file. For each file,
 * N bits (spread evenly over the file, or every bit) are flipped and M
 * lengths (or every length) cut, each on a fresh copy; then a forked child
 * opens the copy, gets every key, scans forward and backward, seeks both ways
 * and runs tind_db_verify, under a 20 s alarm (a hang dies of SIGALRM); a
 * copy that opened must open again after its close.
 *
 * The oracle: keyspace j's tables hold its ops of the first f_j batches
 * (every batch is one journal record); what else it must show depends on the
 * journal batches that survive the damage:
 *   - the newest journal, flip in record r of n: r = n-1 is a torn tail, cut
 *     at open: every batch but that one; any other record, or the file
 *     header, is TIND_CORRUPTION at open. Truncation at L: the records that
 *     end by L survive (a file no longer than its header is a journal torn at
 *     creation, removed). A flip or a cut past the header that leaves fewer
 *     batches than a keyspace's tables hold (max f_j: a flush synced the
 *     journal through them first, so no torn append loses them) is
 *     TIND_CORRUPTION at open.
 *   - the older journal: any flip or cut is TIND_CORRUPTION at open naming
 *     it: a cut inside its header or a record is a bad record, and a cut at
 *     a record boundary, which reads cleanly, leaves it ending before the
 *     base its successor's header records (consecutive journals meet).
 *   - every other file: every batch, or TIND_CORRUPTION (at open, or from a
 *     read). A damaged table must also be found by tind_db_verify.
 * A read returning TIND_CORRUPTION must name the damaged file and an offset;
 * a scan must yield a prefix (suffix, backward) of the expected keys, and
 * all of them when it ends without error.
 *
 * Prints the bits flipped and lengths cut per file kind. Exit 0 when every
 * case held, 1 otherwise; each failure is printed with its case, and the
 * seed (--seed=S or TIND_SEED=S) replays the run. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testutil.h"
#include "tind.h"

#define NKEYS 120
#define MAX_BATCHES 64
#define MAX_OPS 6
#define CASE_ALARM_S 20
#define MAX_VLEN 300

struct op {
    unsigned ks; /* index into ks_name */
    int put;
    unsigned key;
    unsigned vseed, vlen;
};
struct batch {
    struct op ops[MAX_OPS];
    unsigned n;
};

static struct batch g_batches[MAX_BATCHES];
#define NKS 3
static const char *ks_name[NKS] = {"ks", "ks2", "ks3"};
/* Batches in the journal; keyspace j's tables hold its ops of the first g_flushed[j]. */
static unsigned g_nbatches, g_flushed[NKS];
static int g_verbose; /* --verbose: print every corruption reported, with its case */

enum kind { K_JOURNAL, K_TABLE, K_MANIFEST, K_OPTIONS, K_META, K_KINDS };
static const char *kind_name[K_KINDS] = {"journal", "table", "manifest", "options", "meta"};
static uint64_t g_flips[K_KINDS], g_truncs[K_KINDS], g_fail_open[K_KINDS], g_read_errors[K_KINDS];

struct file {
    char rel[256]; /* path inside the database */
    enum kind kind;
    uint64_t size;
    uint64_t rec_end[MAX_BATCHES]; /* journal: where record i ends */
    unsigned nrec;
    unsigned first_rec;            /* journal: the batch its first record holds */
    int newest;                    /* journal: the newest one */
};
static struct file g_files[16];
static unsigned g_nfiles;

static void key_of(char *k, unsigned i) { snprintf(k, 16, "k%03u", i); }

static void value_of(uint8_t *v, unsigned seed, unsigned len) { tu_fill(v, len, seed); }

static int die(const char *what, int rc)
{
    fprintf(stderr, "corruption-check: %s: %s (%s)\n", what, tind_strerror(rc), tind_last_error());
    exit(2);
}

/* ---- the base database ----------------------------------------------------------- */

static tind_db *base_open(const char *dir, tind_keyspace **ks)
{
    tind_db *db;
    int rc = tind_open(dir, NULL, &db);
    if (rc) die("open the base", rc);
    tind_keyspace_options ko;
    tind_keyspace_options_init(&ko);
    ko.block_size = 256;
    ko.restart_interval = 4;
    if ((rc = tind_keyspace_open(db, ks_name[0], &ko, &ks[0])) != TIND_OK) die("keyspace", rc);
    /* Tiered, uncompressed at level 0 and zstd below, no filter, a restart
     * at every key, values up to MAX_VLEN bytes over 256-byte blocks. */
    tind_keyspace_options_init(&ko);
    ko.compaction = TIND_COMPACTION_TIERED;
    for (int l = 0; l < TIND_LEVELS; l++) ko.compression[l] = l == 0 ? TIND_COMPRESSION_NONE : TIND_COMPRESSION_ZSTD;
    ko.bloom_bits_per_key = 0;
    ko.restart_interval = 1;
    ko.block_size = 256;
    if ((rc = tind_keyspace_open(db, ks_name[1], &ko, &ks[1])) != TIND_OK) die("keyspace", rc);
    /* FIFO, never flushed: it keeps the first journal alive. */
    tind_keyspace_options_init(&ko);
    ko.compaction = TIND_COMPACTION_FIFO;
    if ((rc = tind_keyspace_open(db, ks_name[2], &ko, &ks[2])) != TIND_OK) die("keyspace", rc);
    return db;
}

/* Two sessions (so two journals) of batches over the three keyspaces;
 * "ks" is flushed twice, "ks2" flushed twice and compacted, "ks3" never. */
static void make_base(const char *dir, uint64_t seed)
{
    uint64_t rng = seed;
    tind_keyspace *ks[NKS];
    tind_db *db = base_open(dir, ks);
    tind_batch *b;
    int rc;
    if ((rc = tind_batch_new(&b)) != TIND_OK) die("batch", rc);
    const unsigned total = 36;
    for (unsigned bi = 0; bi < total; bi++) {
        if (bi == 18) {
            if ((rc = tind_close(db)) != TIND_OK) die("close the base", rc);
            db = base_open(dir, ks);
        }
        struct batch *bt = &g_batches[g_nbatches];
        bt->n = 1 + (unsigned)tu_below(&rng, bi < 8 ? MAX_OPS : 3);
        tind_batch_clear(b);
        for (unsigned i = 0; i < bt->n; i++) {
            struct op *op = &bt->ops[i];
            unsigned pick = (unsigned)tu_below(&rng, 6);
            /* The first write of batch 8 goes to "ks3", so that the first
             * session always leaves unflushed data in it and its journal
             * stays: without one, about 1 seed in 40 wrote nothing there,
             * and the flushes of the others retired that journal. */
            op->ks = bi < 8 ? 0 : bi == 8 && i == 0 ? 2 : pick < 3 ? 0 : pick < 5 ? 1 : 2;
            /* The first batches fill every key of "ks"; later ones overwrite and delete. */
            op->key = bi < 8 ? (bi * MAX_OPS + i) * NKEYS / (8 * MAX_OPS) + (unsigned)tu_below(&rng, 2)
                             : (unsigned)tu_below(&rng, NKEYS);
            op->put = bi < 8 || tu_below(&rng, 4) != 0;
            op->vseed = (unsigned)tu_rand(&rng);
            op->vlen = (unsigned)tu_below(&rng, op->ks == 1 ? MAX_VLEN : 40);
            char k[16];
            uint8_t v[MAX_VLEN];
            key_of(k, op->key);
            value_of(v, op->vseed, op->vlen);
            tind_keyspace *t = ks[op->ks];
            rc = op->put ? tind_batch_put(b, t, k, strlen(k), v, op->vlen) : tind_batch_delete(b, t, k, strlen(k));
            if (rc) die("batch op", rc);
        }
        if ((rc = tind_batch_commit(db, b, TIND_DURABILITY_BUFFERED)) != TIND_OK) die("commit", rc);
        g_nbatches++;
        if (bi == 11 || bi == 23) {
            if ((rc = tind_keyspace_flush(ks[0])) != TIND_OK) die("flush", rc);
            g_flushed[0] = g_nbatches;
        }
        if (bi == 15 || bi == 21 || bi == 27) {
            /* ks2: a flushed table, a second, then both and the rest merged into one run. */
            rc = bi == 27 ? tind_keyspace_compact(ks[1]) : tind_keyspace_flush(ks[1]);
            if (rc) die("flush or compact", rc);
            g_flushed[1] = g_nbatches;
        }
    }
    tind_batch_free(b);
    if ((rc = tind_close(db)) != TIND_OK) die("close the base", rc);
}

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int read_file(const char *path, uint8_t **data, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    *size = (uint64_t)st.st_size;
    *data = malloc(*size ? *size : 1);
    int fd = open(path, O_RDONLY);
    if (fd < 0 || !*data) return -1;
    ssize_t got = read(fd, *data, *size);
    close(fd);
    return got == (ssize_t)*size ? 0 : -1;
}

static void add_file(const char *base, const char *rel, enum kind k)
{
    struct file *f = &g_files[g_nfiles++];
    snprintf(f->rel, sizeof f->rel, "%s", rel);
    f->kind = k;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    uint8_t *d;
    if (read_file(path, &d, &f->size) != 0) {
        fprintf(stderr, "corruption-check: cannot read %s\n", path);
        exit(2);
    }
    if (k == K_JOURNAL) {
        static unsigned batches_seen;
        uint64_t off = 40;
        f->first_rec = batches_seen;
        while (off + 20 <= f->size && f->nrec < MAX_BATCHES) {
            off += 20 + get_u64le(d + off);
            f->rec_end[f->nrec++] = off;
        }
        batches_seen += f->nrec;
        if (off != f->size || batches_seen > g_nbatches) {
            fprintf(stderr, "corruption-check: %s holds %u records in %llu bytes; %u batches were written\n",
                    path, f->nrec, (unsigned long long)f->size, g_nbatches);
            exit(2);
        }
    }
    free(d);
}

static void find_files(const char *base)
{
    FILE *ls;
    char cmd[2600], line[200];
    /* Journals and tables by listing (names are fixed-width hex). */
    const char *dirs[4] = {"journals", "keyspaces/1", "keyspaces/2", "keyspaces/3"};
    for (int di = 0; di < 4; di++) {
        snprintf(cmd, sizeof cmd, "ls '%s/%s'", base, dirs[di]);
        if (!(ls = popen(cmd, "r"))) exit(2);
        while (fgets(line, sizeof line, ls)) {
            line[strcspn(line, "\n")] = 0;
            char rel[300];
            snprintf(rel, sizeof rel, "%s/%s", dirs[di], line);
            if (strstr(line, ".jnl")) add_file(base, rel, K_JOURNAL);
            else if (strstr(line, ".tbl")) add_file(base, rel, K_TABLE);
        }
        pclose(ls);
    }
    unsigned seen = 0, last = 0;
    for (unsigned i = 0; i < g_nfiles; i++) {
        if (g_files[i].kind != K_JOURNAL) continue;
        seen += g_files[i].nrec;
        last = i;
    }
    g_files[last].newest = 1;
    if (seen != g_nbatches) {
        fprintf(stderr, "corruption-check: the journals hold %u records; %u batches were written\n", seen, g_nbatches);
        exit(2);
    }
    for (int j = 1; j <= NKS; j++) {
        char rel[64];
        snprintf(rel, sizeof rel, "keyspaces/%d/MANIFEST", j);
        add_file(base, rel, K_MANIFEST);
        snprintf(rel, sizeof rel, "keyspaces/%d/OPTIONS", j);
        add_file(base, rel, K_OPTIONS);
    }
    add_file(base, "TIND", K_META);
}

/* ---- one case ---------------------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Copies the database tree (plain files and folders) without a shell: a
 * fork of a sanitized process per case costs more than the case itself. */
static void copy_tree(const char *from, const char *to)
{
    if (mkdir(to, 0755) != 0) {
        fprintf(stderr, "corruption-check: mkdir %s: %s\n", to, strerror(errno));
        exit(2);
    }
    DIR *d = opendir(from);
    if (!d) exit(2);
    struct dirent *e;
    char src[1400], dst[1400];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(src, sizeof src, "%s/%s", from, e->d_name);
        snprintf(dst, sizeof dst, "%s/%s", to, e->d_name);
        struct stat st;
        if (stat(src, &st) != 0) exit(2);
        if (S_ISDIR(st.st_mode)) {
            copy_tree(src, dst);
            continue;
        }
        uint8_t *data;
        uint64_t n;
        if (read_file(src, &data, &n) != 0) exit(2);
        int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 || write(fd, data, n) != (ssize_t)n) {
            fprintf(stderr, "corruption-check: copy to %s: %s\n", dst, strerror(errno));
            exit(2);
        }
        close(fd);
        free(data);
    }
    closedir(d);
}

struct ccase {
    const struct file *f;
    int trunc;        /* 1: truncate at len; 0: flip bit of byte off */
    uint64_t off;     /* flip: byte offset; trunc: new length */
    unsigned bit;
    int expect_k;     /* the journal batches that must survive; -1: open must fail */
    int must_detect;  /* tind_db_verify must report the damage */
};

static int g_violations_in_child;

/* "<file> bit flip at <off> bit <b>" or "<file> truncated to <len>". */
static const char *case_name(const struct ccase *c)
{
    static char s[400];
    if (c->trunc) snprintf(s, sizeof s, "%s truncated to %llu", c->f->rel, (unsigned long long)c->off);
    else snprintf(s, sizeof s, "%s bit flip at %llu bit %u", c->f->rel, (unsigned long long)c->off, c->bit);
    return s;
}

#define VIOLATION(...)                                                                                 \
    do {                                                                                               \
        fprintf(stderr, "corruption-check: %s: ", case_name(c));                                       \
        fprintf(stderr, __VA_ARGS__);                                                                  \
        fputc('\n', stderr);                                                                           \
        g_violations_in_child++;                                                                       \
    } while (0)

/* Counts a corruption a read or the verify reported as it should. */
static void reported(const struct ccase *c, int *errors, const char *what)
{
    (*errors)++;
    if (g_verbose) fprintf(stderr, "corruption-check: %s: %s: %s\n", case_name(c), what, tind_last_error());
}

/* 1 when the error is a corruption that names the damaged file and an offset. */
static int names_file(const struct ccase *c, int rc, const char *msg)
{
    const char *base = strrchr(c->f->rel, '/');
    base = base ? base + 1 : c->f->rel;
    return rc == TIND_CORRUPTION && strstr(msg, base) && strstr(msg, "offset");
}

/* What the keyspace being checked must hold: value length + 1 (0: absent) and seed per key. */
static unsigned g_exp_vlen[NKEYS], g_exp_vseed[NKEYS];

/* Fills g_exp_* for keyspace j: its tables hold its ops of the first
 * g_flushed[j] batches; the journals add those of the surviving batches. */
static void expect_state(const struct ccase *c, unsigned j)
{
    memset(g_exp_vlen, 0, sizeof g_exp_vlen);
    for (unsigned b = 0; b < g_nbatches; b++) {
        if (b >= g_flushed[j] && (int)b >= c->expect_k) continue;
        for (unsigned i = 0; i < g_batches[b].n; i++) {
            const struct op *o = &g_batches[b].ops[i];
            if (o->ks != j) continue;
            g_exp_vlen[o->key] = o->put ? o->vlen + 1 : 0;
            g_exp_vseed[o->key] = o->vseed;
        }
    }
}

/* Expected value of key i (g_exp_*): 1 and the bytes when present. */
static int want(int k, unsigned j, unsigned i, uint8_t *v, unsigned *len)
{
    (void)k;
    (void)j;
    if (!g_exp_vlen[i]) return 0;
    *len = g_exp_vlen[i] - 1;
    value_of(v, g_exp_vseed[i], *len);
    return 1;
}

/* Reads keyspace j whole (gets, both scans) and checks it shows state k. */
static void check_reads(const struct ccase *c, tind_keyspace *ks, unsigned j, int k, int *errors)
{
    char key[16];
    uint8_t wv[MAX_VLEN];
    unsigned wl = 0;
    for (unsigned i = 0; i < NKEYS + 4; i++) {
        key_of(key, i);
        void *v = NULL;
        size_t vl = 0;
        int rc = tind_get(ks, key, strlen(key), &v, &vl);
        int present = i < NKEYS && want(k, j, i, wv, &wl);
        if (rc == TIND_OK) {
            if (!present) VIOLATION("get %s returned a value, want none", key);
            else if (vl != wl || memcmp(v, wv, wl) != 0) VIOLATION("get %s returned a wrong value", key);
            tind_free(v);
        } else if (rc == TIND_NOT_FOUND) {
            if (present) VIOLATION("get %s: not found, want a value", key);
        } else if (names_file(c, rc, tind_last_error())) {
            reported(c, errors, "get");
        } else {
            VIOLATION("get %s: %s: %s", key, tind_strerror(rc), tind_last_error());
        }
    }
    for (int dir = 0; dir < 2; dir++) {
        tind_iter *it;
        int rc = tind_iter_open(ks, NULL, NULL, &it);
        if (rc) {
            if (names_file(c, rc, tind_last_error())) reported(c, errors, "iter_open");
            else VIOLATION("iter_open: %s: %s", tind_strerror(rc), tind_last_error());
            continue;
        }
        int i = dir == 0 ? 0 : NKEYS - 1;
        if (dir == 0) tind_iter_seek_first(it);
        else tind_iter_seek_last(it);
        for (; tind_iter_valid(it); dir == 0 ? tind_iter_next(it) : tind_iter_prev(it)) {
            while (i >= 0 && i < NKEYS && !g_exp_vlen[i]) i += dir == 0 ? 1 : -1;
            size_t kl, vl;
            const void *kp = tind_iter_key(it, &kl), *vp = tind_iter_value(it, &vl);
            if (i < 0 || i >= NKEYS) {
                VIOLATION("%s scan: key %s past the last expected", dir ? "backward" : "forward", tu_hex(kp, kl));
                break;
            }
            key_of(key, (unsigned)i);
            want(k, j, (unsigned)i, wv, &wl);
            if (kl != strlen(key) || memcmp(kp, key, kl) != 0) {
                VIOLATION("%s scan: key %s, want %s", dir ? "backward" : "forward", tu_hex(kp, kl), key);
                break;
            }
            if (vl != wl || memcmp(vp, wv, wl) != 0) {
                VIOLATION("%s scan: wrong value for %s", dir ? "backward" : "forward", key);
                break;
            }
            i += dir == 0 ? 1 : -1;
        }
        rc = tind_iter_status(it);
        if (rc == TIND_OK) {
            while (i >= 0 && i < NKEYS && !g_exp_vlen[i]) i += dir == 0 ? 1 : -1;
            if (i >= 0 && i < NKEYS) {
                key_of(key, (unsigned)i);
                VIOLATION("%s scan ended cleanly before %s", dir ? "backward" : "forward", key);
            }
        } else if (rc == TIND_CORRUPTION) {
            reported(c, errors, "scan");
        } else {
            /* tind_last_error belongs to the failing call; the iterator's
             * status is all that is left here. */
            VIOLATION("%s scan: status %s", dir ? "backward" : "forward", tind_strerror(rc));
        }
        tind_iter_close(it);
    }
}

/* Seeks to every fifth key both ways and checks where each lands. */
static void check_seeks(const struct ccase *c, tind_keyspace *ks, unsigned j, int k, int *errors)
{
    tind_iter *it;
    int rc = tind_iter_open(ks, NULL, NULL, &it);
    if (rc) {
        if (names_file(c, rc, tind_last_error())) reported(c, errors, "iter_open");
        else VIOLATION("iter_open: %s: %s", tind_strerror(rc), tind_last_error());
        return;
    }
    char key[16], wk[16];
    uint8_t wv[MAX_VLEN];
    unsigned wl = 0;
    for (unsigned i = 0; i < NKEYS; i += 5) {
        for (int back = 0; back < 2; back++) {
            key_of(key, i);
            if (back) tind_iter_seek_for_prev(it, key, strlen(key));
            else tind_iter_seek(it, key, strlen(key));
            int w = (int)i;
            while (w >= 0 && w < NKEYS && !g_exp_vlen[w]) w += back ? -1 : 1;
            const char *how = back ? "seek_for_prev" : "seek";
            if (!tind_iter_valid(it)) {
                rc = tind_iter_status(it);
                if (rc != TIND_OK) {
                    if (rc == TIND_CORRUPTION) reported(c, errors, how);
                    else VIOLATION("%s %s: status %s", how, key, tind_strerror(rc));
                } else if (w >= 0 && w < NKEYS) {
                    VIOLATION("%s %s found nothing", how, key);
                }
                continue;
            }
            size_t kl, vl;
            const void *kp = tind_iter_key(it, &kl), *vp = tind_iter_value(it, &vl);
            if (w < 0 || w >= NKEYS) {
                VIOLATION("%s %s landed on %s, want nothing", how, key, tu_hex(kp, kl));
                continue;
            }
            key_of(wk, (unsigned)w);
            want(k, j, (unsigned)w, wv, &wl);
            if (kl != strlen(wk) || memcmp(kp, wk, kl) != 0) VIOLATION("%s %s landed on %s, want %s", how, key, tu_hex(kp, kl), wk);
            else if (vl != wl || memcmp(vp, wv, wl) != 0) VIOLATION("%s %s: wrong value", how, key);
        }
    }
    tind_iter_close(it);
}

/* The child: open, read, verify. Exit 0 when the oracle held, 1 otherwise,
 * 3 when it held and the open failed as allowed, plus 4 when a read failed
 * as allowed. */
static int run_child(const struct ccase *c, const char *work)
{
    alarm(CASE_ALARM_S);
    tind_db *db = NULL;
    int rc = tind_open(work, NULL, &db);
    int opened = rc == TIND_OK, errors = 0;
    tind_keyspace *ks[NKS] = {NULL, NULL};
    for (unsigned j = 0; opened && rc == TIND_OK && j < NKS; j++) rc = tind_keyspace_open(db, ks_name[j], NULL, &ks[j]);
    if (rc != TIND_OK) {
        if (!names_file(c, rc, tind_last_error())) VIOLATION("open: %s: %s", tind_strerror(rc), tind_last_error());
        if (db) tind_close(db);
        return g_violations_in_child ? 1 : 3;
    }
    if (c->expect_k < 0) VIOLATION("opened, but the damage must be reported at open");
    else
        for (unsigned j = 0; j < NKS; j++)
        {
            expect_state(c, j);
            check_reads(c, ks[j], j, c->expect_k, &errors);
            check_seeks(c, ks[j], j, c->expect_k, &errors);
        }
    struct tind_verify_report r;
    rc = tind_db_verify(db, &r);
    if (rc == TIND_CORRUPTION) {
        reported(c, &errors, "verify");
        if (!strstr(r.first_message, "offset") || !strstr(tind_last_error(), r.first_file))
            VIOLATION("verify: message without file or offset: %s", tind_last_error());
    } else if (rc != TIND_OK) {
        VIOLATION("verify: %s: %s", tind_strerror(rc), tind_last_error());
    } else if (c->must_detect) {
        VIOLATION("verify found nothing");
    }
    if ((rc = tind_close(db)) != TIND_OK) VIOLATION("close: %s", tind_strerror(rc));
    /* What an open accepted (a torn tail cut, a torn journal removed) it
     * accepts again: the journal this open started must meet the last. */
    if ((rc = tind_open(work, NULL, &db)) != TIND_OK) VIOLATION("reopen: %s: %s", tind_strerror(rc), tind_last_error());
    else if ((rc = tind_close(db)) != TIND_OK) VIOLATION("close after reopen: %s", tind_strerror(rc));
    return g_violations_in_child ? 1 : errors ? 4 : 0;
}

static void damage(const struct ccase *c, const char *work)
{
    char path[4500];
    snprintf(path, sizeof path, "%s/%s", work, c->f->rel);
    if (c->trunc) {
        if (truncate(path, (off_t)c->off) != 0) exit(2);
        return;
    }
    int fd = open(path, O_RDWR);
    uint8_t b;
    if (fd < 0 || pread(fd, &b, 1, (off_t)c->off) != 1) exit(2);
    b ^= (uint8_t)(1u << c->bit);
    if (pwrite(fd, &b, 1, (off_t)c->off) != 1) exit(2);
    close(fd);
}

/* The journal records (batches) that must survive a journal damaged at byte
 * off (flip) or cut at off (trunc): -1 when the open must fail. Any damage
 * to a journal that is not the newest is corruption: it was synced whole
 * before its successor began. A cut at a record boundary reads cleanly, but
 * the successor's header holds the last sequence number used before it, and
 * every record here is a batch, so the cut journal ends short of it. In
 * the newest, a cut is a torn tail only when it keeps every batch a table
 * holds: those were synced before their flush. */
static int journal_expect(struct ccase *c)
{
    const struct file *f = c->f;
    unsigned k = 0, flushed = 0;
    for (unsigned j = 0; j < NKS; j++)
        if (g_flushed[j] > flushed) flushed = g_flushed[j];
    int left;
    if (!c->trunc) {
        if (c->off < 40 || !f->newest) return -1;
        while (f->rec_end[k] <= c->off) k++;
        left = k == f->nrec - 1 ? (int)(f->first_rec + k) : -1;
    } else if (c->off < 40) {
        /* Newest: torn at creation, removed; the one before it need not
         * reach what the tables hold (it may have been retired meanwhile). */
        return f->newest ? (int)f->first_rec : -1;
    } else {
        while (k < f->nrec && f->rec_end[k] <= c->off) k++;
        left = f->newest ? (int)(f->first_rec + k) : -1;
    }
    return left >= (int)flushed ? left : -1;
}

static int run_case(struct ccase *c, const char *base, const char *work)
{
    c->expect_k = c->f->kind == K_JOURNAL ? journal_expect(c) : (int)g_nbatches;
    c->must_detect = c->f->kind == K_TABLE;
    nftw(work, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    copy_tree(base, work);
    damage(c, work);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) exit(2);
    if (pid == 0) exit(run_child(c, work));
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    enum kind k = c->f->kind;
    if (WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3 || WEXITSTATUS(st) == 4)) {
        if (WEXITSTATUS(st) == 3) g_fail_open[k]++;
        if (WEXITSTATUS(st) == 4) g_read_errors[k]++;
        return 0;
    }
    const char *what = WIFSIGNALED(st) ? (WTERMSIG(st) == SIGALRM ? "hang" : "crash") : "failure";
    fprintf(stderr, "corruption-check: %s: %s (%s %d)\n", what, case_name(c), WIFSIGNALED(st) ? "signal" : "exit status",
            WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    return 1;
}

static uint64_t parse_count(const char *s)
{
    if (!strcmp(s, "all")) return UINT64_MAX;
    return strtoull(s, NULL, 0);
}

int main(int argc, char **argv)
{
    uint64_t bits = 64, truncs = 32, seed = 0;
    int have_seed = 0;
    const char *tmp = getenv("TMPDIR");
    char dirbuf[900];
    snprintf(dirbuf, sizeof dirbuf, "%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp ? tmp : "/tmp");
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--bits=", 7)) bits = parse_count(argv[i] + 7);
        else if (!strncmp(argv[i], "--truncs=", 9)) truncs = parse_count(argv[i] + 9);
        else if (!strncmp(argv[i], "--dir=", 6)) snprintf(dirbuf, sizeof dirbuf, "%s", argv[i] + 6);
        else if (!strncmp(argv[i], "--seed=", 7)) seed = strtoull(argv[i] + 7, NULL, 0), have_seed = 1;
        else if (!strcmp(argv[i], "--verbose")) g_verbose = 1;
        else {
            fprintf(stderr, "usage: corruption-check [--bits=N|all] [--truncs=N|all] [--dir=DIR] [--seed=S] [--verbose]\n");
            return 2;
        }
    }
    if (!have_seed) seed = tu_seed("corruption-check");
    else fprintf(stderr, "corruption-check: seed %llu\n", (unsigned long long)seed);
    char root[1024], base[1100], work[1100];
    snprintf(root, sizeof root, "%s/tind-corrupt-XXXXXX", dirbuf);
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(base, sizeof base, "%s/base", root);
    snprintf(work, sizeof work, "%s/work", root);
    make_base(base, seed);
    find_files(base);

    time_t t0 = time(NULL);
    uint64_t rng = seed ^ 0x9e3779b97f4a7c15ull, failures = 0;
    for (unsigned fi = 0; fi < g_nfiles; fi++) {
        struct file *f = &g_files[fi];
        uint64_t nbits = f->size * 8, nb = bits < nbits ? bits : nbits;
        for (uint64_t i = 0; i < nb; i++) {
            /* Evenly spread, each at a random place in its stride. */
            uint64_t lo = i * nbits / nb, hi = (i + 1) * nbits / nb;
            uint64_t b = lo + tu_below(&rng, hi - lo);
            struct ccase c = {.f = f, .trunc = 0, .off = b / 8, .bit = (unsigned)(b % 8)};
            failures += (uint64_t)run_case(&c, base, work);
            g_flips[f->kind]++;
        }
        uint64_t nt = truncs < f->size ? truncs : f->size;
        for (uint64_t i = 0; i < nt; i++) {
            uint64_t lo = i * f->size / nt, hi = (i + 1) * f->size / nt;
            struct ccase c = {.f = f, .trunc = 1, .off = lo + tu_below(&rng, hi - lo)};
            failures += (uint64_t)run_case(&c, base, work);
            g_truncs[f->kind]++;
        }
    }
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    uint64_t cases = 0;
    for (int k = 0; k < K_KINDS; k++) {
        unsigned nf = 0;
        for (unsigned fi = 0; fi < g_nfiles; fi++) nf += g_files[fi].kind == (enum kind)k;
        printf("corruption-check: %-8s %u file(s): %6llu bits flipped, %5llu truncations; %llu refused at open, "
               "%llu with a read or verify reporting corruption\n",
               kind_name[k], nf, (unsigned long long)g_flips[k], (unsigned long long)g_truncs[k],
               (unsigned long long)g_fail_open[k], (unsigned long long)g_read_errors[k]);
        cases += g_flips[k] + g_truncs[k];
    }
    printf("corruption-check: %llu cases in %llds, seed %llu: %llu failure(s)\n", (unsigned long long)cases,
           (long long)(time(NULL) - t0), (unsigned long long)seed, (unsigned long long)failures);
    return failures ? 1 : 0;
}
