/* Process and disk measurements, the machine's description, and the
 * side-by-side table; see report.h. */
#include "bench/report.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

int proc_io_read(struct proc_io *io)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f) return -1;
    char line[128];
    int seen = 0;
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "write_bytes: %llu", &v) == 1) {
            io->write_bytes = v;
            seen |= 1;
        } else if (sscanf(line, "cancelled_write_bytes: %llu", &v) == 1) {
            io->cancelled_write_bytes = v;
            seen |= 2;
        }
    }
    fclose(f);
    return seen == 3 ? 0 : -1;
}

uint64_t peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[128];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) {
                fclose(f);
                return (uint64_t)kb * 1024;
            }
        fclose(f);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) return (uint64_t)ru.ru_maxrss * 1024;
    return 0;
}

/* nftw passes no context to its callback; the benchmark measures one tree at
 * a time from its main thread. */
static uint64_t tree_bytes;

static int size_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F) {
        uint64_t size = (uint64_t)sb->st_size, alloc = (uint64_t)sb->st_blocks * 512;
        tree_bytes += size < alloc ? size : alloc;
    }
    return 0;
}

uint64_t dir_bytes(const char *dir)
{
    tree_bytes = 0;
    nftw(dir, size_cb, 32, FTW_PHYS);
    return tree_bytes;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void make_parents(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(buf, 0755); /* EEXIST is the common case; any other failure shows at open */
        *p = '/';
    }
}

void remove_tree(const char *dir) { nftw(dir, rm_cb, 32, FTW_DEPTH | FTW_PHYS); }

static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794C7630: return "overlayfs";
    case 0x2FC12FC1: return "zfs";
    case 0x65735546: return "fuse";
    case 0xF2F52010: return "f2fs";
    default: return NULL;
    }
}

void machine_describe(FILE *out, const char *prefix, const char *dir)
{
    char buf[256];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(out, "%sdate:    %s\n", prefix, buf);

    char model[200] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            char *colon = strchr(line, ':');
            if (!strncmp(line, "model name", 10) && colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t') colon++;
                colon[strcspn(colon, "\n")] = 0;
                snprintf(model, sizeof model, "%s", colon);
                break;
            }
        }
        fclose(f);
    }
    unsigned long long mem_kb = 0;
    if ((f = fopen("/proc/meminfo", "r"))) {
        char line[128];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemTotal: %llu kB", &mem_kb) == 1) break;
        fclose(f);
    }
    struct utsname u;
    if (uname(&u) != 0) strcpy(u.release, "?");
    fprintf(out, "%smachine: %ld CPUs (%s), %.1f GiB memory, Linux %s\n", prefix, sysconf(_SC_NPROCESSORS_ONLN),
            model, (double)mem_kb / (1024.0 * 1024.0), u.release);

    /* The database may not exist yet: ask about the nearest existing parent. */
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    struct statfs sf;
    while (statfs(path, &sf) != 0) {
        char *slash = strrchr(path, '/');
        if (!slash || slash == path) {
            strcpy(path, slash == path ? "/" : ".");
            if (statfs(path, &sf) != 0) return;
            break;
        }
        *slash = 0;
    }
    const char *name = fs_name(sf.f_type);
    if (name) fprintf(out, "%sdisk:    %s on %s\n", prefix, dir, name);
    else fprintf(out, "%sdisk:    %s on file system 0x%lx\n", prefix, dir, (unsigned long)sf.f_type);
}

void fmt_latency(char *buf, size_t n, double ns)
{
    double us = ns / 1e3;
    if (us < 10) snprintf(buf, n, "%.2fus", us);
    else if (us < 1000) snprintf(buf, n, "%.1fus", us);
    else snprintf(buf, n, "%.2fms", us / 1e3);
}

/* ---- side-by-side table ---------------------------------------------------- */

static struct table_row *row_find(struct table_row *rows, size_t *n, size_t cap, const char *label)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(rows[i].label, label)) return &rows[i];
    if (*n == cap) return NULL;
    struct table_row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "%s", label);
    return r;
}

int table_load(struct table *t, size_t col, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *fields[9];
        size_t nf = 0;
        for (char *p = line, *tab; nf < 9; p = tab + 1) {
            fields[nf++] = p;
            if (!(tab = strchr(p, '\t'))) break;
            *tab = 0;
        }
        if (nf >= 7 && !strcmp(fields[0], "W")) {
            struct table_row *r = row_find(t->rows, &t->nrows, TABLE_ROWS, fields[1]);
            if (!r) continue;
            r->have[col] = 1;
            r->ops[col] = strtod(fields[2], NULL);
            r->p99[col] = strtod(fields[5], NULL);
        } else if (nf >= 3 && !strcmp(fields[0], "S")) {
            struct table_row *r = row_find(t->summary, &t->nsummary, sizeof t->summary / sizeof t->summary[0], fields[1]);
            if (!r) continue;
            r->have[col] = 1;
            r->ops[col] = strtod(fields[2], NULL);
        } else if (nf >= 2 && !strcmp(fields[0], "V")) {
            snprintf(t->versions[col], sizeof t->versions[col], "%s", fields[1]);
            t->lsm[col] = nf >= 3 && !strcmp(fields[2], "lsm");
        }
    }
    fclose(f);
    return 0;
}

/* A number with thousands separators. */
static void fmt_count(char *buf, size_t n, double v)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t len = strlen(digits), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

enum cell { CELL_OPS, CELL_LATENCY, CELL_PLAIN };

static void fmt_cell(char *buf, size_t n, enum cell kind, double v)
{
    if (kind == CELL_OPS) fmt_count(buf, n, v);
    else if (kind == CELL_LATENCY) fmt_latency(buf, n, v);
    else snprintf(buf, n, "%.2f", v);
}

/* The column of the best engine other than the first (only LSM trees when
 * lsm_only) for row r; 0 when none has a value. */
static size_t best_peer(const struct table *t, const struct table_row *r, int use_p99, int higher_better, int lsm_only)
{
    size_t best = 0;
    double bv = 0;
    for (size_t c = 1; c < t->nengines; c++) {
        if (!r->have[c] || (lsm_only && !t->lsm[c])) continue;
        double v = use_p99 ? r->p99[c] : r->ops[c];
        if (!best || (higher_better ? v > bv : v < bv)) {
            best = c;
            bv = v;
        }
    }
    return best;
}

static void print_ratio(const struct table *t, FILE *out, const struct table_row *r, int use_p99, int higher_better,
                        int lsm_only)
{
    size_t best = best_peer(t, r, use_p99, higher_better, lsm_only);
    double mine = use_p99 ? r->p99[0] : r->ops[0], bv = best ? (use_p99 ? r->p99[best] : r->ops[best]) : 0;
    if (!r->have[0] || !best || mine <= 0 || bv <= 0) {
        fprintf(out, " - |");
        return;
    }
    double ratio = higher_better ? mine / bv : bv / mine;
    fprintf(out, ratio < 0.1 ? " %.3fx (%s) |" : " %.2fx (%s) |", ratio, t->engines[best]);
}

/* Prints one Markdown table: a row per label, a column per engine, and the
 * first engine against the best of the others as a factor where > 1 means the
 * first engine is ahead (higher ops/s, or lower latency and amplification);
 * when the peers mix LSM trees and others, also against the best LSM peer. */
static void print_rows(const struct table *t, FILE *out, const struct table_row *rows, size_t nrows, int use_p99,
                       enum cell kind, int higher_better, const char *what)
{
    int lsm_peers = 0, other_peers = 0;
    for (size_t c = 1; c < t->nengines; c++) {
        if (t->lsm[c]) lsm_peers = 1;
        else other_peers = 1;
    }
    int lsm_col = lsm_peers && other_peers;
    fprintf(out, "| %s |", what);
    for (size_t c = 0; c < t->nengines; c++) fprintf(out, " %s |", t->engines[c]);
    if (t->nengines > 1) fprintf(out, " %s vs best peer |", t->engines[0]);
    if (lsm_col) fprintf(out, " %s vs best LSM peer |", t->engines[0]);
    fprintf(out, "\n|---|");
    for (size_t c = 0; c < t->nengines; c++) fprintf(out, "---:|");
    if (t->nengines > 1) fprintf(out, "---:|");
    if (lsm_col) fprintf(out, "---:|");
    fprintf(out, "\n");
    for (size_t i = 0; i < nrows; i++) {
        const struct table_row *r = &rows[i];
        char cell[48];
        fprintf(out, "| %s |", r->label);
        for (size_t c = 0; c < t->nengines; c++) {
            if (!r->have[c]) {
                fprintf(out, " - |");
                continue;
            }
            fmt_cell(cell, sizeof cell, kind, use_p99 ? r->p99[c] : r->ops[c]);
            fprintf(out, " %s |", cell);
        }
        if (t->nengines > 1) print_ratio(t, out, r, use_p99, higher_better, 0);
        if (lsm_col) print_ratio(t, out, r, use_p99, higher_better, 1);
        fprintf(out, "\n");
    }
    fprintf(out, "\n");
}

void table_print(const struct table *t, FILE *out)
{
    fprintf(out, "engines:");
    for (size_t c = 0; c < t->nengines; c++)
        fprintf(out, " %s %s%s%s", t->engines[c], t->versions[c][0] ? t->versions[c] : "?",
                t->failed[c] ? " (FAILED)" : "", c + 1 < t->nengines ? "," : "");
    fprintf(out, "\n\nThroughput, operations per second (vs best peer: %s's ops/s divided by the best other's)\n\n",
            t->engines[0]);
    print_rows(t, out, t->rows, t->nrows, 0, CELL_OPS, 1, "ops/s");
    fprintf(out, "Latency p99 (vs best peer: the best other's p99 divided by %s's)\n\n", t->engines[0]);
    print_rows(t, out, t->rows, t->nrows, 1, CELL_LATENCY, 0, "p99");
    fprintf(out, "Amplification and memory, lower is better (vs best peer: the best other's divided by %s's)\n\n",
            t->engines[0]);
    print_rows(t, out, t->summary, t->nsummary, 0, CELL_PLAIN, 0, "at the end");
}
