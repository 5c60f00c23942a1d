/* The power-loss environment (powerloss_env.h): the model of what a power
 * loss would leave, its drop onto the real files, and the operations that
 * keep the model, each running the fault-injection environment's. */
#include "tests/support/powerloss_env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/env.h"
#include "src/util/err.h"
#include "tests/support/fault_env.h"

/* The model. An inode (pl_node) has content, of which the first `synced`
 * bytes are durable. A name maps a path under the root to an inode. `cur`
 * holds the names as they are now (it mirrors the disk), `dur` the names a
 * power loss would leave: a directory sync of D makes dur's names in D equal
 * to cur's. An inode that loses its last current name while dur still names
 * it has its content saved in memory, so that the drop can bring it back.
 * Inodes are matched to open files by their real inode number, so a file
 * opened before tracking started is still followed; when the OS reuses the
 * number of a deleted inode, the old record is detached from it.
 *
 * pl_mu is recursive: the crash callback runs with the lock held and may
 * call file_pl_drop. While tracking, every operation of the environment
 * holds it for the whole operation, so the disk is consistent whenever
 * another thread gets it. */

struct pl_node {
    uint64_t ino;     /* the real inode number; 0 once detached from it */
    int is_dir;
    uint64_t synced;  /* durable bytes (files) */
    uint8_t *saved;   /* content saved when the last current name went */
    size_t saved_len;
    int has_saved;
};

struct pl_name {
    char *path;
    struct pl_node *node;
};

struct pl_names {
    struct pl_name *v;
    size_t n, cap;
};

static pthread_mutex_t pl_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static atomic_int pl_on; /* tracking; read without pl_mu on the fast path */

static struct {
    char root[PATH_MAX];
    size_t rootlen;
    struct pl_names cur, dur;
    struct pl_node **nodes;
    size_t nnodes, capnodes;
    uint64_t boundaries;
    int armed, crashed;
    int trace;            /* $TIND_PL_TRACE set at start: every step on stderr */
    uint64_t crash_at;
    void (*cb)(void *);
    void *cb_arg;
} pl;

static int pl_under_root(const char *path)
{
    return strncmp(path, pl.root, pl.rootlen) == 0 && path[pl.rootlen] == '/' && path[pl.rootlen + 1] != 0;
}

/* Length of the parent's path: up to the last '/'. */
static size_t pl_parent_len(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? (size_t)(s - path) : 0;
}

static int pl_is_child(const char *path, const char *dir, size_t dl)
{
    return pl_parent_len(path) == dl && strncmp(path, dir, dl) == 0;
}

static struct pl_name *pl_find(struct pl_names *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].path, path)) return &t->v[i];
    return NULL;
}

static int pl_add(struct pl_names *t, const char *path, struct pl_node *node)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct pl_name *v = realloc(t->v, cap * sizeof *v);
        if (!v) return err_nomem();
        t->v = v;
        t->cap = cap;
    }
    char *p = strdup(path);
    if (!p) return err_nomem();
    t->v[t->n].path = p;
    t->v[t->n].node = node;
    t->n++;
    return TIND_OK;
}

static void pl_remove_at(struct pl_names *t, size_t i)
{
    free(t->v[i].path);
    t->v[i] = t->v[--t->n];
}

static void pl_remove(struct pl_names *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].path, path)) {
            pl_remove_at(t, i);
            return;
        }
}

static struct pl_node *pl_new_node(uint64_t ino, int is_dir, uint64_t synced)
{
    if (pl.nnodes == pl.capnodes) {
        size_t cap = pl.capnodes ? pl.capnodes * 2 : 64;
        struct pl_node **v = realloc(pl.nodes, cap * sizeof *v);
        if (!v) return NULL;
        pl.nodes = v;
        pl.capnodes = cap;
    }
    struct pl_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->ino = ino;
    n->is_dir = is_dir;
    n->synced = synced;
    pl.nodes[pl.nnodes++] = n;
    return n;
}

static int pl_named(const struct pl_names *t, const struct pl_node *node)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].node == node) return 1;
    return 0;
}

static struct pl_node *pl_node_by_ino(uint64_t ino)
{
    for (size_t i = 0; i < pl.nnodes; i++)
        if (pl.nodes[i]->ino == ino) return pl.nodes[i];
    return NULL;
}

/* A new inode got number ino: any record still holding that number belongs
 * to a deleted inode (its content was saved when it lost its last name). */
static void pl_detach_ino(uint64_t ino)
{
    struct pl_node *old = pl_node_by_ino(ino);
    if (old && !pl_named(&pl.cur, old)) old->ino = 0;
}

/* Reads the whole file at path with plain system calls. */
static int pl_slurp(const char *path, uint8_t **data, size_t *n)
{
    *data = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_errno(errno, "open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = err_errno(errno, "stat", path);
        close(fd);
        return rc;
    }
    size_t sz = (size_t)st.st_size, done = 0;
    uint8_t *buf = malloc(sz ? sz : 1);
    if (!buf) {
        close(fd);
        return err_nomem();
    }
    while (done < sz) {
        ssize_t r = pread(fd, buf + done, sz - done, (off_t)done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        done += (size_t)r;
    }
    close(fd);
    *data = buf;
    *n = done;
    return TIND_OK;
}

/* path's inode is about to lose its current name (unlink, or a rename over
 * it): if dur still names it and no other current name keeps it, save its
 * content so that the drop can restore it. */
static int pl_save_before_loss(const char *path)
{
    struct pl_name *c = pl_find(&pl.cur, path);
    if (!c || c->node->is_dir || c->node->has_saved || !pl_named(&pl.dur, c->node)) return TIND_OK;
    struct pl_node *node = c->node;
    for (size_t i = 0; i < pl.cur.n; i++)
        if (pl.cur.v[i].node == node && strcmp(pl.cur.v[i].path, path) != 0) return TIND_OK;
    int rc = pl_slurp(path, &node->saved, &node->saved_len);
    if (rc == TIND_OK) node->has_saved = 1;
    return rc;
}

/* Records everything under dir (recursively) as current and durable. */
static int pl_walk(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return err_errno(errno, "open directory", dir);
    int rc = TIND_OK;
    struct dirent *de;
    char p[PATH_MAX];
    while (rc == TIND_OK && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if ((rc = file_join(p, sizeof p, dir, de->d_name)) != TIND_OK) break;
        struct stat st;
        if (lstat(p, &st) != 0) {
            rc = err_errno(errno, "stat", p);
            break;
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) continue;
        struct pl_node *n = pl_new_node((uint64_t)st.st_ino, S_ISDIR(st.st_mode), (uint64_t)st.st_size);
        if (!n) rc = err_nomem();
        if (rc == TIND_OK) rc = pl_add(&pl.cur, p, n);
        if (rc == TIND_OK) rc = pl_add(&pl.dur, p, n);
        if (rc == TIND_OK && S_ISDIR(st.st_mode)) rc = pl_walk(p);
    }
    closedir(d);
    return rc;
}

static void pl_reset(void)
{
    for (size_t i = 0; i < pl.cur.n; i++) free(pl.cur.v[i].path);
    for (size_t i = 0; i < pl.dur.n; i++) free(pl.dur.v[i].path);
    free(pl.cur.v);
    free(pl.dur.v);
    for (size_t i = 0; i < pl.nnodes; i++) {
        free(pl.nodes[i]->saved);
        free(pl.nodes[i]);
    }
    free(pl.nodes);
    memset(&pl, 0, sizeof pl);
}

static const struct file_env pl_env;

int file_pl_start(const char *root)
{
    /* Over the fault-injection environment, whether or not that one was
     * installed: a fault is checked after the boundary is counted. */
    if (file_env_get() != &pl_env) file_env_set(&pl_env);
    pthread_mutex_lock(&pl_mu);
    atomic_store(&pl_on, 0);
    pl_reset();
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/') rl--;
    int rc = TIND_OK;
    if (rl == 0 || rl >= sizeof pl.root) rc = err_set(TIND_INVALID, "power-loss root: bad path '%s'", root);
    if (rc == TIND_OK) {
        memcpy(pl.root, root, rl);
        pl.root[rl] = 0;
        pl.rootlen = rl;
        rc = pl_walk(pl.root);
        pl.trace = getenv("TIND_PL_TRACE") != NULL;
    }
    if (rc == TIND_OK) atomic_store(&pl_on, 1);
    else pl_reset();
    pthread_mutex_unlock(&pl_mu);
    return rc;
}

void file_pl_stop(void)
{
    pthread_mutex_lock(&pl_mu);
    atomic_store(&pl_on, 0);
    pl_reset();
    pthread_mutex_unlock(&pl_mu);
}

void file_pl_crash_at(uint64_t n, void (*cb)(void *), void *arg)
{
    pthread_mutex_lock(&pl_mu);
    pl.armed = cb != NULL;
    pl.crash_at = n;
    pl.cb = cb;
    pl.cb_arg = arg;
    pthread_mutex_unlock(&pl_mu);
}

uint64_t file_pl_boundaries(void)
{
    pthread_mutex_lock(&pl_mu);
    uint64_t n = pl.boundaries;
    pthread_mutex_unlock(&pl_mu);
    return n;
}

int file_pl_crashed(void)
{
    pthread_mutex_lock(&pl_mu);
    int c = atomic_load(&pl_on) && pl.crashed;
    pthread_mutex_unlock(&pl_mu);
    return c;
}

const char *file_pl_mode_name(enum file_pl_mode mode)
{
    switch (mode) {
    case FILE_PL_ALL: return "all";
    case FILE_PL_KEEP: return "keep";
    case FILE_PL_RANDOM_PART: return "random-part";
    case FILE_PL_TORN_512: return "torn-512";
    case FILE_PL_TORN_4K: return "torn-4k";
    case FILE_PL_ZERO_TAIL: return "zero-tail";
    default: return "?";
    }
}

/* Takes pl_mu when tracking is on: 1 if taken (the caller releases it). */
static int pl_enter(void)
{
    if (!atomic_load_explicit(&pl_on, memory_order_acquire)) return 0;
    pthread_mutex_lock(&pl_mu);
    if (!atomic_load(&pl_on)) {
        pthread_mutex_unlock(&pl_mu);
        return 0;
    }
    return 1;
}

/* Releases pl_mu that pl_enter took; returns rc. */
static int pl_leave(int rc)
{
    pthread_mutex_unlock(&pl_mu);
    return rc;
}

/* 1 when a name (of any kind) stands at path. */
static int pl_lexists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* With pl_mu held: 0, or EIO once the simulated power is off. */
static int pl_check(void) { return pl.crashed ? EIO : 0; }

/* With pl_mu held, before a sync, directory sync, rename or unlink: counts
 * it and fires the armed crash at it. The callback runs with pl_mu held, so
 * every other thread's file operation waits; if it returns, this operation
 * and every later one fail with EIO until tracking stops. */
static int pl_boundary(const char *op, const char *path)
{
    if (pl.crashed) return EIO;
    uint64_t n = pl.boundaries++;
    if (pl.trace) fprintf(stderr, "pl: #%llu %s %s\n", (unsigned long long)n, op, path);
    if (pl.armed && n == pl.crash_at) {
        pl.crashed = 1;
        pl.cb(pl.cb_arg);
        return EIO;
    }
    return 0;
}

/* A file was opened at path (created when !existed, truncated with trunc). */
static int pl_note_open(const char *path, int fd, int existed, int trunc)
{
    if (!pl_under_root(path)) return TIND_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) return err_errno(errno, "stat", path);
    struct pl_name *c = pl_find(&pl.cur, path);
    if (!existed || !c) {
        if (pl.trace) fprintf(stderr, "pl: create %s\n", path);
        pl_detach_ino((uint64_t)st.st_ino);
        struct pl_node *n = pl_new_node((uint64_t)st.st_ino, 0, 0);
        if (!n) return err_nomem();
        if (c) pl_remove(&pl.cur, path);
        return pl_add(&pl.cur, path, n);
    }
    /* A truncation counts as durable at once: the file may come back empty,
     * never with its old bytes. */
    if (trunc) c->node->synced = 0;
    return TIND_OK;
}

/* Forgets a name removed without counting (a discarded temporary file). */
static void pl_forget(const char *path)
{
    if (pl_enter()) {
        pl_remove(&pl.cur, path);
        pthread_mutex_unlock(&pl_mu);
    }
}

static struct pl_node *pl_node_of(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return NULL;
    return pl_node_by_ino((uint64_t)st.st_ino);
}

/* ---- the drop ---------------------------------------------------------- */

static uint64_t pl_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 1 when dir (below the root) has a durable directory entry. */
static int pl_dir_durable(const char *dir)
{
    struct pl_name *d = pl_find(&pl.dur, dir);
    return d && d->node->is_dir;
}

/* 1 when dir is the same inode now as in dur. */
static int pl_dir_unchanged(const char *dir)
{
    struct pl_name *d = pl_find(&pl.dur, dir), *c = pl_find(&pl.cur, dir);
    return d && c && d->node == c->node;
}

/* 1 when ok() holds for every directory above path (below the root). */
static int pl_dirs_above(const char *path, int (*ok)(const char *dir))
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (;;) {
        size_t l = pl_parent_len(p);
        if (l <= pl.rootlen) return 1;
        p[l] = 0;
        if (!ok(p)) return 0;
    }
}

/* 1 when every directory above path (below the root) has a durable entry. */
static int pl_reachable(const char *path) { return pl_dirs_above(path, pl_dir_durable); }

/* 1 when every directory above path (below the root) is the same inode now
 * as in dur: else the removal of a replaced directory takes path with it. */
static int pl_same_dirs(const char *path) { return pl_dirs_above(path, pl_dir_unchanged); }

static int pl_cmp_len_desc(const void *a, const void *b)
{
    size_t la = strlen(((const struct pl_name *)a)->path), lb = strlen(((const struct pl_name *)b)->path);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static int pl_rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? TIND_OK : err_errno(errno, "stat", path);
    if (!S_ISDIR(st.st_mode)) return unlink(path) == 0 ? TIND_OK : err_errno(errno, "unlink", path);
    DIR *d = opendir(path);
    if (!d) return err_errno(errno, "open directory", path);
    int rc = TIND_OK;
    struct dirent *de;
    char p[PATH_MAX];
    while (rc == TIND_OK && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if ((rc = file_join(p, sizeof p, path, de->d_name)) == TIND_OK) rc = pl_rm_tree(p);
    }
    closedir(d);
    if (rc == TIND_OK && rmdir(path) != 0) rc = err_errno(errno, "rmdir", path);
    return rc;
}

/* Applies the loss of mode to the unsynced tail of one restored file. */
static int pl_drop_data(const char *path, uint64_t synced, enum file_pl_mode mode, uint64_t *rng)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return err_errno(errno, "open", path);
    struct stat st;
    int rc = TIND_OK;
    if (fstat(fd, &st) != 0) {
        rc = err_errno(errno, "stat", path);
        goto done;
    }
    uint64_t len = (uint64_t)st.st_size, s = synced < len ? synced : len, keep = len;
    if (pl.trace) fprintf(stderr, "pl: drop: %s length %llu\n", path, (unsigned long long)len);
    if (len == s) goto done;
    if (mode == FILE_PL_ALL) {
        keep = s;
    } else if (mode == FILE_PL_RANDOM_PART) {
        keep = s + pl_rand(rng) % (len - s + 1);
    } else if (mode == FILE_PL_TORN_512 || mode == FILE_PL_TORN_4K) {
        /* Whole sectors up to a random boundary b made it, then the sector
         * at b is torn: its first part new data, the rest zeros or garbage,
         * while the size already covers it. Synced bytes stay intact. */
        uint64_t sec = mode == FILE_PL_TORN_512 ? 512 : 4096;
        uint64_t first = s / sec * sec, nsec = (len - first + sec - 1) / sec;
        uint64_t b = first + pl_rand(rng) % nsec * sec;
        uint64_t end = b + sec < len ? b + sec : len, lo = b > s ? b : s;
        uint64_t good = lo + pl_rand(rng) % (end - lo + 1);
        int zeros = pl_rand(rng) & 1;
        uint8_t junk[4096];
        for (uint64_t i = 0; i < end - good; i++) junk[i] = zeros ? 0 : (uint8_t)pl_rand(rng);
        if (end > good && pwrite(fd, junk, (size_t)(end - good), (off_t)good) != (ssize_t)(end - good)) {
            rc = err_errno(errno ? errno : EIO, "write", path);
            goto done;
        }
        keep = end;
    } else if (mode == FILE_PL_ZERO_TAIL) {
        /* The size made it, the data from a random point on did not: zeros
         * up to the end, as a file system that extends the size first. */
        uint64_t from = s + pl_rand(rng) % (len - s + 1);
        uint8_t zeros[4096] = {0};
        for (uint64_t off = from; off < len;) {
            size_t n = len - off < sizeof zeros ? (size_t)(len - off) : sizeof zeros;
            if (pwrite(fd, zeros, n, (off_t)off) != (ssize_t)n) {
                rc = err_errno(errno ? errno : EIO, "write", path);
                goto done;
            }
            off += n;
        }
    }
    if (keep < len && ftruncate(fd, (off_t)keep) != 0) rc = err_errno(errno, "truncate", path);
done:
    close(fd);
    return rc;
}

static int pl_write_whole(const char *path, const uint8_t *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return err_errno(errno, "open", path);
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    int rc = done == n ? TIND_OK : err_errno(errno ? errno : EIO, "write", path);
    close(fd);
    return rc;
}

/* A durable name that survives the loss, with the content to give it when
 * its inode is no longer at that path. */
struct pl_keep {
    const char *path;
    struct pl_node *node;
    int moved;
    uint8_t *content;
    size_t clen;
};

static int pl_cmp_keep_len(const void *a, const void *b)
{
    size_t la = strlen(((const struct pl_keep *)a)->path), lb = strlen(((const struct pl_keep *)b)->path);
    return la < lb ? -1 : la > lb ? 1 : 0;
}

/* With pl_mu held. */
static int pl_drop_locked(enum file_pl_mode mode, uint64_t seed)
{
    uint64_t rng = seed;
    int rc = TIND_OK;
    /* The durable names that survive (their directories survive too) and,
     * for those whose inode is not at that path now, its content: from a
     * current name of it (a rename not made durable) or the copy saved when
     * it lost its last name. Gathered before anything is removed. */
    struct pl_keep *keep = calloc(pl.dur.n ? pl.dur.n : 1, sizeof *keep);
    size_t nk = 0;
    if (!keep) return err_nomem();
    for (size_t i = 0; rc == TIND_OK && i < pl.dur.n; i++) {
        struct pl_name *d = &pl.dur.v[i];
        if (!pl_reachable(d->path)) continue;
        struct pl_name *c = pl_find(&pl.cur, d->path);
        struct pl_keep *k = &keep[nk++];
        k->path = d->path;
        k->node = d->node;
        if (d->node->is_dir || (c && c->node == d->node && pl_same_dirs(d->path))) continue;
        k->moved = 1;
        const char *src = NULL;
        for (size_t j = 0; j < pl.cur.n && !src; j++)
            if (pl.cur.v[j].node == d->node) src = pl.cur.v[j].path;
        if (src) {
            rc = pl_slurp(src, &k->content, &k->clen);
        } else if (d->node->has_saved) {
            if (!(k->content = malloc(d->node->saved_len ? d->node->saved_len : 1))) rc = err_nomem();
            else memcpy(k->content, d->node->saved, k->clen = d->node->saved_len);
        }
    }
    /* Remove every current name that is not a surviving durable name of the
     * same inode, the deepest first; then recreate the missing durable names,
     * the shallowest first; then cut the unsynced data of every file kept. */
    if (rc == TIND_OK) qsort(pl.cur.v, pl.cur.n, sizeof *pl.cur.v, pl_cmp_len_desc);
    for (size_t i = 0; rc == TIND_OK && i < pl.cur.n; i++) {
        struct pl_name *c = &pl.cur.v[i];
        int stays = 0;
        for (size_t k = 0; k < nk && !stays; k++)
            stays = !keep[k].moved && keep[k].node == c->node && !strcmp(keep[k].path, c->path);
        if (!stays) {
            if (pl.trace) fprintf(stderr, "pl: drop: remove %s\n", c->path);
            rc = pl_rm_tree(c->path);
        }
    }
    if (rc == TIND_OK) qsort(keep, nk, sizeof *keep, pl_cmp_keep_len);
    for (size_t k = 0; rc == TIND_OK && k < nk; k++) {
        struct pl_keep *d = &keep[k];
        if (d->node->is_dir) {
            if (mkdir(d->path, 0755) != 0 && errno != EEXIST) rc = err_errno(errno, "mkdir", d->path);
        } else {
            if (d->moved) {
                if (pl.trace) fprintf(stderr, "pl: drop: restore %s (%zu bytes)\n", d->path, d->clen);
                rc = pl_write_whole(d->path, d->content, d->clen);
            }
            if (pl.trace) fprintf(stderr, "pl: drop: %s synced %llu\n", d->path, (unsigned long long)d->node->synced);
            if (rc == TIND_OK) rc = pl_drop_data(d->path, d->node->synced, mode, &rng);
        }
    }
    for (size_t k = 0; k < nk; k++) free(keep[k].content);
    free(keep);
    return rc;
}

int file_pl_drop(enum file_pl_mode mode, uint64_t seed)
{
    pthread_mutex_lock(&pl_mu);
    int rc;
    if (!atomic_load(&pl_on)) rc = err_set(TIND_INVALID, "power-loss drop: tracking is off");
    else if ((unsigned)mode >= FILE_PL_MODES) rc = err_set(TIND_INVALID, "power-loss drop: bad mode %d", (int)mode);
    else rc = pl_drop_locked(mode, seed);
    /* After a crash the power stays off: tracking stays on with nothing
     * tracked, so that every operation takes pl_mu (which the crashed thread
     * holds, when called from the callback) and then fails with EIO, and no
     * thread touches the files the loss was just applied to. */
    int off = atomic_load(&pl_on) && pl.crashed;
    pl_reset();
    if (off) pl.crashed = 1;
    else atomic_store(&pl_on, 0);
    return pl_leave(rc);
}

/* ---- the environment ----------------------------------------------------- */

/* The environment this one runs over. */
static const struct file_env *base(void) { return file_fault_env(); }

static int pl_open(const char *path, int flags, tfile **out)
{
    if (!pl_enter()) return base()->open(path, flags, out);
    *out = NULL;
    int e = pl_check(), rc;
    if (e) {
        rc = err_errno(e, "open", path);
    } else {
        int existed = pl_lexists(path);
        rc = base()->open(path, flags, out);
        if (rc == TIND_OK && (rc = pl_note_open(path, (*out)->fd, existed, flags & FILE_TRUNC)) != TIND_OK) {
            base()->close(*out);
            *out = NULL;
        }
    }
    return pl_leave(rc);
}

static int pl_close(tfile *f)
{
    if (!f || !pl_enter()) return base()->close(f);
    int rc = base()->close(f);
    return pl_leave(rc);
}

static int pl_appendv(tfile *f, const struct iovec *iov, int iovcnt)
{
    if (!pl_enter()) return base()->appendv(f, iov, iovcnt);
    int e = pl_check();
    int rc = e ? err_errno(e, "write", f->path) : base()->appendv(f, iov, iovcnt);
    if (pl.trace && !strstr(f->path, ".jnl") && !strstr(f->path, ".tbl"))
        fprintf(stderr, "pl: append %s -> %llu\n", f->path, (unsigned long long)f->size);
    return pl_leave(rc);
}

static int pl_read_at(tfile *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    if (!pl_enter()) return base()->read_at(f, off, buf, n, got);
    int e = pl_check();
    int rc = e ? err_errno(e, "read", f->path) : base()->read_at(f, off, buf, n, got);
    return pl_leave(rc);
}

static int pl_sync(tfile *f, int data_only)
{
    if (!pl_enter()) return base()->sync(f, data_only);
    int e = pl_boundary(data_only ? "fdatasync" : "fsync", f->path), rc;
    if (e) {
        rc = err_errno(e, data_only ? "fdatasync" : "fsync", f->path);
    } else if ((rc = base()->sync(f, data_only)) == TIND_OK) {
        struct pl_node *n = pl_node_of(f->fd);
        struct stat st;
        if (n && fstat(f->fd, &st) == 0) n->synced = (uint64_t)st.st_size;
    }
    return pl_leave(rc);
}

static int pl_truncate(tfile *f, uint64_t size)
{
    if (!pl_enter()) return base()->truncate(f, size);
    int e = pl_check(), rc;
    if (e) {
        rc = err_errno(e, "truncate", f->path);
    } else if ((rc = base()->truncate(f, size)) == TIND_OK) {
        /* Like a truncation at open: durable at once. */
        struct pl_node *n = pl_node_of(f->fd);
        if (n && n->synced > size) n->synced = size;
    }
    return pl_leave(rc);
}

static int pl_rename(const char *from, const char *to)
{
    if (!pl_enter()) return base()->rename(from, to);
    int e = pl_boundary("rename", to), rc;
    if (e) rc = err_errno(e, "rename to", to);
    else if ((rc = pl_save_before_loss(to)) == TIND_OK && (rc = base()->rename(from, to)) == TIND_OK) {
        /* The name `to` now holds from's inode; names below a renamed
         * directory move with it. */
        pl_remove(&pl.cur, to);
        size_t fl = strlen(from);
        char p[PATH_MAX];
        for (size_t i = 0; rc == TIND_OK && i < pl.cur.n; i++) {
            char *q = pl.cur.v[i].path;
            if (strncmp(q, from, fl) != 0 || (q[fl] != 0 && q[fl] != '/')) continue;
            if ((size_t)snprintf(p, sizeof p, "%s%s", to, q + fl) >= sizeof p) continue;
            char *np = strdup(p);
            if (!np) {
                rc = err_nomem();
                break;
            }
            free(q);
            pl.cur.v[i].path = np;
        }
        if (!pl_under_root(to)) {
            for (size_t i = pl.cur.n; i-- > 0;)
                if (!pl_under_root(pl.cur.v[i].path)) pl_remove_at(&pl.cur, i);
        }
    }
    return pl_leave(rc);
}

static int pl_unlink(const char *path)
{
    if (!pl_enter()) return base()->unlink(path);
    int e = pl_boundary("unlink", path), rc;
    if (e) rc = err_errno(e, "unlink", path);
    else if ((rc = pl_save_before_loss(path)) == TIND_OK && (rc = base()->unlink(path)) == TIND_OK)
        pl_remove(&pl.cur, path);
    return pl_leave(rc);
}

/* Not a boundary, and the removal runs outside the lock; the name is
 * forgotten after. */
static void pl_discard(const char *path)
{
    base()->discard(path);
    pl_forget(path);
}

static int pl_mkdir(const char *path)
{
    if (!pl_enter()) return base()->mkdir(path);
    int e = pl_check(), rc;
    if (e) {
        rc = err_errno(e, "mkdir", path);
    } else {
        struct stat st;
        int existed = pl_lexists(path);
        if ((rc = base()->mkdir(path)) == TIND_OK && !existed && pl_under_root(path)) {
            struct pl_node *n = NULL;
            if (lstat(path, &st) != 0) rc = err_errno(errno, "stat", path);
            else if (pl_detach_ino((uint64_t)st.st_ino), !(n = pl_new_node((uint64_t)st.st_ino, 1, 0))) rc = err_nomem();
            else rc = pl_add(&pl.cur, path, n);
        }
    }
    return pl_leave(rc);
}

static int pl_rmdir(const char *path)
{
    if (!pl_enter()) return base()->rmdir(path);
    int e = pl_boundary("rmdir", path), rc;
    if (e) rc = err_errno(e, "rmdir", path);
    else if ((rc = base()->rmdir(path)) == TIND_OK) pl_remove(&pl.cur, path);
    return pl_leave(rc);
}

static int pl_sync_dir(const char *dir)
{
    if (!pl_enter()) return base()->sync_dir(dir);
    int e = pl_boundary("fsync-dir", dir), rc;
    if (e) {
        rc = err_errno(e, "fsync directory", dir);
    } else if ((rc = base()->sync_dir(dir)) == TIND_OK) {
        /* dur's names in dir become cur's. */
        size_t dl = strlen(dir);
        while (dl > 1 && dir[dl - 1] == '/') dl--;
        for (size_t i = pl.dur.n; i-- > 0;)
            if (pl_is_child(pl.dur.v[i].path, dir, dl)) pl_remove_at(&pl.dur, i);
        for (size_t i = 0; rc == TIND_OK && i < pl.cur.n; i++)
            if (pl_is_child(pl.cur.v[i].path, dir, dl)) rc = pl_add(&pl.dur, pl.cur.v[i].path, pl.cur.v[i].node);
    }
    return pl_leave(rc);
}

static int pl_exists(const char *path)
{
    if (!pl_enter()) return base()->exists(path);
    int e = pl_check();
    int rc = e ? err_errno(e, "stat", path) : base()->exists(path);
    return pl_leave(rc);
}

static int pl_stat_size(const char *path, uint64_t *size)
{
    if (!pl_enter()) return base()->stat_size(path, size);
    int e = pl_check();
    int rc = e ? err_errno(e, "stat", path) : base()->stat_size(path, size);
    return pl_leave(rc);
}

static int pl_list_dir(const char *dir, char ***names, size_t *count)
{
    if (!pl_enter()) return base()->list_dir(dir, names, count);
    int e = pl_check(), rc;
    if (e) {
        *names = NULL;
        *count = 0;
        rc = err_errno(e, "open directory", dir);
    } else {
        rc = base()->list_dir(dir, names, count);
    }
    return pl_leave(rc);
}

static int pl_lock(const char *path, int *fd)
{
    if (!pl_enter()) return base()->lock(path, fd);
    int e = pl_check(), rc;
    if (e) {
        rc = err_errno(e, "open", path);
    } else {
        int existed = pl_lexists(path);
        if ((rc = base()->lock(path, fd)) == TIND_OK && (rc = pl_note_open(path, *fd, existed, 0)) != TIND_OK) {
            base()->unlock(*fd);
            *fd = -1;
        }
    }
    return pl_leave(rc);
}

/* Neither changes what tracking follows; not under the lock. */
static int pl_is_dir(const char *path) { return base()->is_dir(path); }

static void pl_unlock(int fd) { base()->unlock(fd); }

static const struct file_env pl_env = {
    .open = pl_open,
    .close = pl_close,
    .appendv = pl_appendv,
    .read_at = pl_read_at,
    .sync = pl_sync,
    .truncate = pl_truncate,
    .rename = pl_rename,
    .unlink = pl_unlink,
    .discard = pl_discard,
    .mkdir = pl_mkdir,
    .rmdir = pl_rmdir,
    .sync_dir = pl_sync_dir,
    .exists = pl_exists,
    .is_dir = pl_is_dir,
    .stat_size = pl_stat_size,
    .list_dir = pl_list_dir,
    .lock = pl_lock,
    .unlock = pl_unlock,
};
