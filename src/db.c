/* Opening (creation, locking, recovery) and closing a database. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "src/db.h"
#include "src/util/array.h"
#include "src/util/err.h"
#include "src/util/file.h"

#define STR2(x) #x
#define STR(x) STR2(x)

const char *tind_version(void)
{
    return STR(TIND_VERSION_MAJOR) "." STR(TIND_VERSION_MINOR) "." STR(TIND_VERSION_PATCH);
}

void tind_options_init(tind_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->create_if_missing = 1;
    o->error_if_exists = 0;
    o->durability = TIND_DURABILITY_BUFFERED;
    o->journal_max_bytes = 64u << 20;
    o->journal_total_max_bytes = 512u << 20;
    o->cache_bytes = 64u << 20;
    o->max_open_tables = 1000;
    o->workers = 0;
    o->parallel_memtable_writes = 1;
}

static int check_options(const tind_options *o)
{
    if (check_durability(o->durability)) return TIND_INVALID;
    if (o->journal_max_bytes < (64u << 10))
        return err_set(TIND_INVALID, "journal_max_bytes %llu is below 64 KiB", (unsigned long long)o->journal_max_bytes);
    if (o->journal_total_max_bytes < o->journal_max_bytes)
        return err_set(TIND_INVALID, "journal_total_max_bytes is below journal_max_bytes");
    if (o->max_open_tables < 16) return err_set(TIND_INVALID, "max_open_tables %u is below 16", o->max_open_tables);
    if (o->workers > 64) return err_set(TIND_INVALID, "workers %u is over 64", o->workers);
    if (o->parallel_memtable_writes != 0 && o->parallel_memtable_writes != 1)
        return err_set(TIND_INVALID, "parallel_memtable_writes %d is not 0 or 1", o->parallel_memtable_writes);
    return TIND_OK;
}

/* The LOCK file: flock'd exclusively by a read-write handle (file_lock) and
 * shared by read-only ones, so that readers share and a writer excludes
 * them. The file layer's file_lock takes only exclusive locks and creates
 * the file, hence flock here. A read-only open creates nothing: without a
 * LOCK file (never opened read-write here) it goes on unlocked. */
static int db_lock_read_only(const char *lock_path, int *fd_out)
{
    *fd_out = -1;
    int fd = open(lock_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? TIND_OK : err_set(TIND_IO_ERROR, "open %s: %s", lock_path, strerror(errno));
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        int en = errno;
        close(fd);
        if (en == EWOULDBLOCK)
            return err_set(TIND_BUSY, "%s: the database is open read-write in another handle or process", lock_path);
        return err_set(TIND_IO_ERROR, "lock %s: %s", lock_path, strerror(en));
    }
    *fd_out = fd;
    return TIND_OK;
}

/* After file_lock found the LOCK taken: names the kind of holder. A shared
 * lock that succeeds means only read-only handles hold it. */
static int db_lock_busy(const char *lock_path)
{
    int fd = open(lock_path, O_RDONLY | O_CLOEXEC);
    int readers = fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) == 0;
    if (fd >= 0) close(fd);
    return err_set(TIND_BUSY, "%s: the database is open %s in another handle or process", lock_path,
                   readers ? "read-only" : "read-write");
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void db_free(tind_db *db)
{
    if (!db) return;
    /* Workers first: a running flush still uses its keyspace. */
    atomic_store(&db->closing, 1);
    workers_stop(db->pool);
    journal_close(db->jnl);
    for (size_t i = 0; i < db->nks; i++) ks_free(db->ks[i]);
    for (size_t i = 0; i < db->ndropped; i++) {
        /* Every reader is gone: what a drop left (tables read to the end by
         * then, or whose unlink failed) goes now. A failure only leaves a
         * folder without OPTIONS, which the next open removes. */
        (void)ks_remove_dropped_folder(db, db->dropped[i], 1);
        ks_free(db->dropped[i]);
    }
    free(db->ks);
    free(db->dropped);
    table_cache_free(db->tables);
    cache_free(db->block_cache);
    tmutex_destroy(&db->ks_mu);
    tmutex_destroy(&db->list_mu);
    tmutex_destroy(&db->snap_mu);
    tmutex_destroy(&db->retire_mu);
    oracle_destroy(&db->oracle);
    pthread_rwlock_destroy(&db->write_gate);
    file_unlock(db->lock_fd);
    free(db->path);
    free(db->journal_dir);
    free(db->ks_dir);
    free(db);
}

/* Creates the layout of a new database; the meta file is written last, so a
 * directory without it holds no database yet. */
static int db_create(tind_db *db)
{
    int rc;
    if ((rc = file_mkdir(db->journal_dir)) || (rc = file_mkdir(db->ks_dir)) || (rc = file_sync_dir(db->path)))
        return rc;
    db->next_ks_id = 1;
    return ks_meta_write(db);
}

/* Removes journals that hold no record (header only), older than `keep`: each
 * open starts a new journal, and without this every reopen would leave one
 * behind. The new journal's header carries the sequence number they carried. */
static int db_remove_empty_journals(tind_db *db, uint64_t keep)
{
    char **names;
    size_t n;
    int rc = file_list_dir(db->journal_dir, &names, &n);
    if (rc) return rc;
    int removed = 0;
    char p[PATH_MAX];
    for (size_t i = 0; i < n && rc == TIND_OK; i++) {
        uint64_t num, sz;
        if (!journal_parse_name(names[i], &num) || num >= keep) continue;
        if ((rc = file_join(p, sizeof p, db->journal_dir, names[i])) != TIND_OK) break;
        if ((rc = file_stat_size(p, &sz)) != TIND_OK) break;
        if (sz != JOURNAL_HEADER_SIZE) continue;
        if ((rc = file_unlink(p)) == TIND_OK) removed = 1;
    }
    free(names);
    if (rc == TIND_OK && removed) rc = file_sync_dir(db->journal_dir);
    return rc;
}

/* Replay state: the highest sequence number seen, overall and per journal
 * file, so that the files can be retired once flushed past. */
struct replay {
    tind_db *db;
    uint64_t last_seq;
    struct replay_file {
        uint64_t number, max_seq;
    } *files;
    size_t nfiles, capfiles;
};

static int replay_cb(void *ctx, const char *path, uint64_t offset, const uint8_t *p, size_t n)
{
    struct replay *r = ctx;
    int rc = replay_record(r->db, path, offset, p, n, &r->last_seq);
    if (rc) return rc;
    const char *base = strrchr(path, '/');
    uint64_t num;
    if (!journal_parse_name(base ? base + 1 : path, &num)) return TIND_OK;
    if (!r->nfiles || r->files[r->nfiles - 1].number != num) {
        if ((rc = array_reserve((void **)&r->files, r->nfiles, &r->capfiles, sizeof *r->files, 16)) != TIND_OK)
            return rc;
        r->files[r->nfiles++] = (struct replay_file){num, 0};
    }
    r->files[r->nfiles - 1].max_seq = r->last_seq;
    return TIND_OK;
}

/* Resolves the options of tind_open(path, opts): *o is *opts (or the
 * defaults), checked; a read-only open never creates. */
static int open_options(const char *path, const tind_options *opts, tind_options *o)
{
    if (!*path) return err_set(TIND_INVALID, "tind_open: empty path");
    if (opts) *o = *opts;
    else tind_options_init(o);
    int rc = check_options(o);
    if (rc) return rc;
    if (o->read_only) o->create_if_missing = 0;
    return TIND_OK;
}

/* A fresh handle under options o, its locks and lists initialized, its paths
 * set (each NULL when out of memory: the caller checks them); NULL when the
 * handle itself could not be allocated. */
static tind_db *db_alloc(const char *path, const tind_options *o)
{
    tind_db *db = calloc(1, sizeof *db);
    if (!db) return NULL;
    db->lock_fd = -1;
    db->opts = *o;
    /* Cannot fail with default attributes on the platforms tind builds on. */
    (void)tmutex_init(&db->ks_mu);
    (void)tmutex_init(&db->list_mu);
    (void)tmutex_init(&db->snap_mu);
    (void)tmutex_init(&db->retire_mu);
    db->drop_pin = UINT64_MAX;
    oracle_init(&db->oracle);
    {
        /* Writer-preferring: a single-writer transaction is not starved by a
         * stream of plain writes. */
        pthread_rwlockattr_t ga;
        pthread_rwlockattr_init(&ga);
        pthread_rwlockattr_setkind_np(&ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&db->write_gate, &ga);
        pthread_rwlockattr_destroy(&ga);
    }
    db->snaps.next = db->snaps.prev = &db->snaps;
    db->path = strdup(path);
    db->journal_dir = path_join(path, DB_JOURNAL_DIR);
    db->ks_dir = path_join(path, DB_KEYSPACE_DIR);
    return db;
}

/* Creates the database directory when it is missing (and may be created),
 * then takes its LOCK file: shared read-only, exclusive otherwise. */
static int db_lock_dir(tind_db *db, const char *path, const char *lock_path)
{
    int rc;
    int ex = file_exists(path);
    if (ex < 0) return ex;
    if (!ex) {
        if (!db->opts.create_if_missing)
            return err_set(TIND_NOT_FOUND, "%s: no database there (create_if_missing is off)", path);
        /* The directory's own name must be durable before anything in it is. */
        if ((rc = file_mkdir(path)) != TIND_OK || (rc = file_sync_parent(path)) != TIND_OK) return rc;
    }
    rc = db->opts.read_only ? db_lock_read_only(lock_path, &db->lock_fd) : file_lock(lock_path, &db->lock_fd);
    if (rc == TIND_BUSY && !db->opts.read_only) rc = db_lock_busy(lock_path);
    return rc;
}

/* Without a meta file: TIND_CORRUPTION when the journal and keyspace folders
 * both exist and hold anything (the meta file was lost). A crash between
 * creating the folders and the meta file leaves them empty. */
static int db_check_no_leftovers(tind_db *db, const char *path)
{
    if (file_exists(db->journal_dir) != 1 || file_exists(db->ks_dir) != 1) return TIND_OK;
    char **names;
    size_t n1 = 0, n2 = 0;
    int rc;
    if ((rc = file_list_dir(db->journal_dir, &names, &n1)) != TIND_OK) return rc;
    free(names);
    if ((rc = file_list_dir(db->ks_dir, &names, &n2)) != TIND_OK) return rc;
    free(names);
    if (n1 + n2 > 0) return err_set(TIND_CORRUPTION, "%s: the meta file %s is missing", path, DB_META_FILE);
    return TIND_OK;
}

/* Reads the meta file of the database in path and checks its folders, or,
 * without a meta file, creates the database (when it may). */
static int db_open_or_create(tind_db *db, const char *path, const char *meta_path)
{
    int rc;
    int ex = file_exists(meta_path);
    if (ex < 0) return ex;
    if (ex) {
        if (db->opts.error_if_exists)
            return err_set(TIND_INVALID, "%s: a database exists (error_if_exists is on)", path);
        if ((rc = ks_meta_read(db)) != TIND_OK) return rc;
        int jex = file_exists(db->journal_dir), kex = file_exists(db->ks_dir);
        if (jex != 1 || kex != 1)
            return err_set(TIND_CORRUPTION, "%s: the %s directory is missing", path,
                           jex != 1 ? DB_JOURNAL_DIR : DB_KEYSPACE_DIR);
        return TIND_OK;
    }
    if ((rc = db_check_no_leftovers(db, path)) != TIND_OK) return rc;
    if (!db->opts.create_if_missing)
        return err_set(TIND_NOT_FOUND, "%s: no database there (create_if_missing is off)", path);
    return db_create(db);
}

/* The block cache (unless cache_bytes is 0), the table cache and the worker
 * pool. */
static int db_start_workers(tind_db *db)
{
    const tind_options *o = &db->opts;
    if (o->cache_bytes > 0 && !(db->block_cache = cache_new((size_t)o->cache_bytes, 0))) return err_nomem();
    if (!(db->tables = table_cache_new(o->max_open_tables, db->block_cache))) return err_nomem();
    /* Read-only: nothing is ever flushed or compacted; one idle worker. */
    unsigned nworkers = o->read_only ? 1 : o->workers ? o->workers : workers_default_count();
    return workers_start(nworkers, &db->pool);
}

/* Replays the journals into the loaded keyspaces: *rp the files that held
 * records, *rec what recovery found, *last_seq the newest sequence number. */
static int db_replay(tind_db *db, struct replay *rp, struct journal_recovery *rec, uint64_t *last_seq)
{
    /* A flush synced the journal through the sequence number it recorded
     * (tree_seal) before its table could be durable: the journals must
     * still reach the highest one. */
    uint64_t flushed = 0;
    for (size_t i = 0; i < db->nks; i++)
        if (tree_flushed_seq(db->ks[i]->tree) > flushed) flushed = tree_flushed_seq(db->ks[i]->tree);
    int rc = db->opts.read_only ? journal_recover_read_only(db->journal_dir, flushed, replay_cb, rp, rec)
                                : journal_recover(db->journal_dir, flushed, replay_cb, rp, rec);
    if (rc == TIND_OK) rc = ks_check_unique(db);
    *last_seq = rp->last_seq;
    if (rec->max_base_seq > *last_seq) *last_seq = rec->max_base_seq;
    if (flushed > *last_seq) *last_seq = flushed;
    return rc;
}

/* Opens the journal that writes go to after last_seq: read-only, the newest
 * one up to its valid end; otherwise a new one after the newest. */
static int db_open_journal(tind_db *db, const struct journal_recovery *rec, uint64_t last_seq)
{
    struct journal_config jc = {.dir = db->journal_dir, .max_bytes = db->opts.journal_max_bytes,
                                .group_max_bytes = 1u << 20,
                                .parallel_apply = db->opts.parallel_memtable_writes};
    struct journal_callbacks cb = {.ctx = db,
                                   .prepare = write_prepare,
                                   .apply = write_apply,
                                   .apply_one = write_apply_one,
                                   .apply_finish = write_apply_finish};
    if (!db->opts.read_only) return journal_open(&jc, rec->max_number + 1, last_seq, &cb, &db->jnl);
    char name[JOURNAL_NAME_LEN + 1], p[PATH_MAX];
    uint64_t sz = 0;
    journal_file_name(name, rec->max_number);
    if (rec->max_number && file_join(p, sizeof p, db->journal_dir, name) == TIND_OK &&
        file_stat_size(p, &sz) == TIND_OK && sz >= rec->truncated_bytes)
        sz -= rec->truncated_bytes;
    return journal_open_read_only(rec->max_number, sz, last_seq, &db->jnl);
}

/* Read-write: hands the journals that held records to the journal, which
 * retires each once every keyspace has flushed past it. */
static int db_adopt_journals(tind_db *db, const struct replay *rp)
{
    int rc = TIND_OK;
    for (size_t i = 0; rc == TIND_OK && i < rp->nfiles; i++) {
        char name[JOURNAL_NAME_LEN + 1], p[PATH_MAX];
        uint64_t sz = 0;
        journal_file_name(name, rp->files[i].number);
        if (file_join(p, sizeof p, db->journal_dir, name) == TIND_OK && file_stat_size(p, &sz) == TIND_OK)
            rc = journal_adopt(db->jnl, rp->files[i].number, rp->files[i].max_seq, sz);
    }
    return rc;
}

/* Recovery after the keyspaces are loaded: replays the journals, opens the
 * current one, and (read-write) removes the empty ones and adopts the rest. */
static int db_recover(tind_db *db)
{
    struct replay rp = {.db = db};
    struct journal_recovery rec;
    uint64_t last_seq;
    int rc = db_replay(db, &rp, &rec, &last_seq);
    if (rc == TIND_OK) rc = db_open_journal(db, &rec, last_seq);
    if (rc == TIND_OK && !db->opts.read_only) rc = db_remove_empty_journals(db, rec.max_number + 1);
    if (rc == TIND_OK && !db->opts.read_only) rc = db_adopt_journals(db, &rp);
    free(rp.files);
    return rc;
}

int tind_open(const char *path, const tind_options *opts, tind_db **out)
{
    err_clear();
    if (!path || !out) return err_set(TIND_INVALID, "tind_open: NULL argument");
    *out = NULL;
    tind_options o;
    int rc = open_options(path, opts, &o);
    if (rc) return rc;

    tind_db *db = db_alloc(path, &o);
    if (!db) return err_nomem();
    char *lock_path = path_join(path, DB_LOCK_FILE), *meta_path = path_join(path, DB_META_FILE);
    if (!db->path || !db->journal_dir || !db->ks_dir || !lock_path || !meta_path) {
        rc = err_nomem();
        goto fail;
    }
    if ((rc = db_lock_dir(db, path, lock_path)) != TIND_OK) goto fail;
    if ((rc = db_open_or_create(db, path, meta_path)) != TIND_OK) goto fail;
    if ((rc = db_start_workers(db)) != TIND_OK) goto fail;
    if ((rc = ks_load_all(db)) != TIND_OK) goto fail;
    if ((rc = db_recover(db)) != TIND_OK) goto fail;
    if (!o.read_only) retire_journals(db);

    free(lock_path);
    free(meta_path);
    *out = db;
    return TIND_OK;

fail:
    free(lock_path);
    free(meta_path);
    db_free(db);
    return rc;
}

int tind_close(tind_db *db)
{
    err_clear();
    if (!db) return err_set(TIND_INVALID, "tind_close: NULL database");
    long ns = atomic_load(&db->nsnaps), ni = atomic_load(&db->niters), np = atomic_load(&db->npins);
    if (ns || ni || np)
        return err_set(TIND_BUSY, "tind_close: %ld snapshots, %ld iterators and %ld pinned values are still open", ns,
                       ni, np);
    /* Workers first: a running flush still uses the journal (to retire
     * files); running compactions stop at their next entry. */
    atomic_store(&db->closing, 1);
    /* Writers stalled on a keyspace give up (tree_stall): the flushes and
     * compactions they wait for stop with the workers. */
    tmutex_lock(&db->list_mu);
    for (size_t i = 0; i < db->nks; i++) tree_wake(db->ks[i]->tree);
    tmutex_unlock(&db->list_mu);
    workers_stop(db->pool);
    db->pool = NULL;
    /* A failure is reported; the journal it leaves is retired at the next
     * open. */
    int rrc = retire_journals_at_close(db);
    int rc = journal_close(db->jnl);
    if (rc == TIND_OK) rc = rrc;
    db->jnl = NULL;
    db_free(db);
    return rc;
}

int tind_db_stats(tind_db *db, struct tind_db_stats *st)
{
    err_clear();
    if (!db || !st) return err_set(TIND_INVALID, "tind_db_stats: NULL argument");
    memset(st, 0, sizeof *st);
    tmutex_lock(&db->list_mu);
    st->keyspaces = db->nks;
    for (size_t i = 0; i < db->nks; i++) {
        uint64_t active, completed;
        tree_compaction_counts(db->ks[i]->tree, &active, &completed);
        st->compactions_active += active;
        st->compactions_completed += completed;
    }
    tmutex_unlock(&db->list_mu);
    if (db->block_cache) {
        struct cache_stats cs;
        cache_get_stats(db->block_cache, &cs);
        st->cache_capacity = cs.capacity;
        st->cache_usage = cs.usage;
        st->cache_hits = cs.hits;
        st->cache_misses = cs.misses;
    }
    st->open_tables = table_cache_count(db->tables);
    st->last_sequence = db_last_seq(db);
    struct journal_stats js;
    journal_get_stats(db->jnl, &js);
    st->writes = js.writes;
    st->write_groups = js.groups;
    st->parallel_groups = js.parallel_groups;
    st->journal_syncs = js.syncs;
    st->snapshots = (uint64_t)atomic_load(&db->nsnaps);
    st->iterators = (uint64_t)atomic_load(&db->niters);
    oracle_stats(&db->oracle, &st->conflict_log_entries, &st->conflict_log_bytes, &st->transactions_open,
                 &st->transactions_committed, &st->transaction_conflicts);
    char **names;
    size_t n;
    int rc = file_list_dir(db->journal_dir, &names, &n);
    if (rc) return rc;
    char p[PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        uint64_t sz, num;
        if (!journal_parse_name(names[i], &num)) continue;
        if (file_join(p, sizeof p, db->journal_dir, names[i]) == TIND_OK && file_stat_size(p, &sz) == TIND_OK) {
            st->journal_files++;
            st->journal_bytes += sz;
        }
    }
    free(names);
    return TIND_OK;
}
