/* compact: major compactions with a progress bar.
 *
 * tind_keyspace_compact blocks, so it runs on a thread while this one
 * watches the keyspace's folder: the table files that were not there when
 * it started are the compaction's outputs (and the flush's table), growing
 * block by block as they are written. Their bytes against the bytes to merge
 * (the tables and memtable at the start) make the bar. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/cli/cli.h"

struct table_file {
    char name[64];
};

/* The .tbl files in dir: names (into *names, malloc'd) and the bytes of
 * those not in old[0..nold). */
static int list_tables(const char *dir, struct table_file **names, size_t *n, const struct table_file *old,
                       size_t nold, uint64_t *new_bytes)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    *new_bytes = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || l >= sizeof((struct table_file *)0)->name || strcmp(de->d_name + l - 4, ".tbl")) continue;
        int known = 0;
        for (size_t i = 0; i < nold && !known; i++) known = !strcmp(old[i].name, de->d_name);
        if (!known && new_bytes) {
            char p[PATH_MAX];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            if (stat(p, &st) == 0) *new_bytes += (uint64_t)st.st_size;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            struct table_file *nn = realloc(*names, cap * sizeof *nn);
            if (!nn) {
                closedir(d);
                free(*names);
                *names = NULL;
                return -1;
            }
            *names = nn;
        }
        memcpy((*names)[(*n)++].name, de->d_name, l + 1);
    }
    closedir(d);
    return 0;
}

struct compact_job {
    tind_keyspace *ks;
    int rc;
    char msg[512];
    atomic_int done;
};

static void *compact_thread(void *arg)
{
    struct compact_job *j = arg;
    j->rc = tind_keyspace_compact(j->ks);
    if (j->rc) snprintf(j->msg, sizeof j->msg, "%s", tind_last_error());
    atomic_store(&j->done, 1);
    return NULL;
}

static void human(char *out, size_t cap, uint64_t b)
{
    if (b >= (UINT64_C(1) << 30)) snprintf(out, cap, "%.1f GiB", (double)b / (double)(UINT64_C(1) << 30));
    else if (b >= (1u << 20)) snprintf(out, cap, "%.1f MiB", (double)b / (double)(1u << 20));
    else if (b >= (1u << 10)) snprintf(out, cap, "%.1f KiB", (double)b / 1024.0);
    else snprintf(out, cap, "%" PRIu64 " B", b);
}

static void draw_bar(const char *name, uint64_t done, uint64_t total, int final)
{
    double f = total ? (double)done / (double)total : 1.0;
    if (f > 1.0 || final) f = 1.0;
    int width = 30, fill = (int)(f * width + 0.5);
    char a[32], b[32];
    human(a, sizeof a, done);
    human(b, sizeof b, total);
    fprintf(stderr, "\r%s [", name);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %3d%% %s written of %s to merge\033[K%s", (int)(f * 100.0 + 0.5), a, b, final ? "\n" : "");
    fflush(stderr);
}

static int compact_one(tind_db *db, const char *dbdir, const char *name, int progress)
{
    tind_keyspace *ks;
    int rc = cli_open_keyspace(db, name, 0, &ks);
    if (rc) return rc;
    struct tind_keyspace_stats before, after;
    int lrc = tind_keyspace_stats(ks, &before);
    if (lrc) return cli_lib_error(lrc, name);
    uint64_t total = before.memtable_bytes, tables_before = 0;
    for (int l = 0; l < TIND_LEVELS; l++) {
        total += before.table_bytes[l];
        tables_before += before.tables[l];
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/keyspaces/%" PRIu64, dbdir, before.id);
    struct table_file *old = NULL;
    size_t nold = 0;
    uint64_t ignored;
    if (progress && list_tables(dir, &old, &nold, NULL, 0, &ignored) != 0) progress = 0;

    struct compact_job j = {.ks = ks};
    atomic_init(&j.done, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, compact_thread, &j) != 0) {
        free(old);
        return cli_data_error("cannot start a thread: %s", strerror(errno));
    }
    while (!atomic_load(&j.done)) {
        if (progress) {
            struct table_file *now = NULL;
            size_t nnow = 0;
            uint64_t written = 0;
            if (list_tables(dir, &now, &nnow, old, nold, &written) == 0) draw_bar(name, written, total, 0);
            free(now);
        }
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    pthread_join(th, NULL);
    free(old);
    if (j.rc) {
        if (progress) fputc('\n', stderr);
        return cli_data_error("%s: %s (%s)", name, j.msg, cli_code_name(j.rc));
    }
    if ((lrc = tind_keyspace_stats(ks, &after)) != TIND_OK) return cli_lib_error(lrc, name);
    uint64_t tables_after = 0, bytes_after = 0;
    for (int l = 0; l < TIND_LEVELS; l++) {
        tables_after += after.tables[l];
        bytes_after += after.table_bytes[l];
    }
    if (progress) draw_bar(name, after.compaction_bytes_written, total, 1);
    printf("compacted %s: %" PRIu64 " tables and %" PRIu64 " memtable bytes, %" PRIu64 " bytes -> %" PRIu64
           " tables, %" PRIu64 " bytes\n",
           name, tables_before, before.memtable_bytes, total, tables_after, bytes_after);
    fflush(stdout);
    return 0;
}

int cmd_compact(const struct cli_args *a)
{
    int progress = a->progress || (!a->no_progress && isatty(2));
    tind_options o;
    tind_options_init(&o);
    o.create_if_missing = 0;
    tind_db *db;
    int lrc = tind_open(a->pos[0], &o, &db);
    if (lrc == TIND_NOT_FOUND) return cli_data_error("%s: no tind database there (TIND_NOT_FOUND)", a->pos[0]);
    if (lrc) return cli_lib_error(lrc, a->pos[0]);
    int rc = 0;
    if (a->npos > 1) {
        rc = compact_one(db, a->pos[0], a->pos[1], progress);
    } else {
        char **names;
        size_t n;
        if ((lrc = tind_keyspace_list(db, &names, &n)) != TIND_OK) {
            rc = cli_lib_error(lrc, "listing the keyspaces");
        } else {
            for (size_t i = 0; i < n && rc == 0; i++) rc = compact_one(db, a->pos[0], names[i], progress);
            tind_free(names);
        }
    }
    int crc = tind_close(db);
    if (crc && !rc) rc = cli_lib_error(crc, "closing");
    return rc;
}
