/* Opening (creation, locking, recovery) and closing a database. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/db.h"
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
}

static int check_options(const tind_options *o)
{
    if (db_check_durability(o->durability)) return TIND_INVALID;
    if (o->journal_max_bytes < (64u << 10))
        return err_set(TIND_INVALID, "journal_max_bytes %llu is below 64 KiB", (unsigned long long)o->journal_max_bytes);
    return TIND_OK;
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
    journal_close(db->jnl);
    for (size_t i = 0; i < db->nks; i++) ks_free(db->ks[i]);
    for (size_t i = 0; i < db->ndropped; i++) ks_free(db->dropped[i]);
    free(db->ks);
    free(db->dropped);
    pthread_mutex_destroy(&db->ks_mu);
    pthread_mutex_destroy(&db->snap_mu);
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
    return db_write_meta(db);
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

static int replay_cb(void *ctx, const char *path, uint64_t offset, const uint8_t *p, size_t n)
{
    void **a = ctx;
    return db_replay_record(a[0], path, offset, p, n, a[1]);
}

int tind_open(const char *path, const tind_options *opts, tind_db **out)
{
    err_clear();
    if (!path || !out) return err_set(TIND_INVALID, "tind_open: NULL argument");
    *out = NULL;
    if (!*path) return err_set(TIND_INVALID, "tind_open: empty path");
    tind_options o;
    if (opts) o = *opts;
    else tind_options_init(&o);
    int rc = check_options(&o);
    if (rc) return rc;

    tind_db *db = calloc(1, sizeof *db);
    if (!db) return err_nomem();
    db->lock_fd = -1;
    db->opts = o;
    pthread_mutex_init(&db->ks_mu, NULL);
    pthread_mutex_init(&db->snap_mu, NULL);
    db->snaps.next = db->snaps.prev = &db->snaps;
    db->path = strdup(path);
    db->journal_dir = path_join(path, DB_JOURNAL_DIR);
    db->ks_dir = path_join(path, DB_KEYSPACE_DIR);
    char *lock_path = path_join(path, DB_LOCK_FILE), *meta_path = path_join(path, DB_META_FILE);
    if (!db->path || !db->journal_dir || !db->ks_dir || !lock_path || !meta_path) {
        rc = err_nomem();
        goto fail;
    }

    int ex = file_exists(path);
    if (ex < 0) {
        rc = ex;
        goto fail;
    }
    if (!ex) {
        if (!o.create_if_missing) {
            rc = err_set(TIND_NOT_FOUND, "%s: no database there (create_if_missing is off)", path);
            goto fail;
        }
        if ((rc = file_mkdir(path)) != TIND_OK) goto fail;
    }
    if ((rc = file_lock(lock_path, &db->lock_fd)) != TIND_OK) goto fail;

    if ((ex = file_exists(meta_path)) < 0) {
        rc = ex;
        goto fail;
    }
    if (ex) {
        if (o.error_if_exists) {
            rc = err_set(TIND_INVALID, "%s: a database exists (error_if_exists is on)", path);
            goto fail;
        }
        if ((rc = db_read_meta(db)) != TIND_OK) goto fail;
        int jex = file_exists(db->journal_dir), kex = file_exists(db->ks_dir);
        if (jex != 1 || kex != 1) {
            rc = err_set(TIND_CORRUPTION, "%s: the %s directory is missing", path, jex != 1 ? DB_JOURNAL_DIR : DB_KEYSPACE_DIR);
            goto fail;
        }
    } else {
        if (file_exists(db->journal_dir) == 1 && file_exists(db->ks_dir) == 1) {
            /* A crash between creating the folders and the meta file leaves
             * empty folders; anything in them means the meta file was lost. */
            char **names;
            size_t n1 = 0, n2 = 0;
            if ((rc = file_list_dir(db->journal_dir, &names, &n1)) != TIND_OK) goto fail;
            free(names);
            if ((rc = file_list_dir(db->ks_dir, &names, &n2)) != TIND_OK) goto fail;
            free(names);
            if (n1 + n2 > 0) {
                rc = err_set(TIND_CORRUPTION, "%s: the meta file %s is missing", path, DB_META_FILE);
                goto fail;
            }
        }
        if (!o.create_if_missing) {
            rc = err_set(TIND_NOT_FOUND, "%s: no database there (create_if_missing is off)", path);
            goto fail;
        }
        if ((rc = db_create(db)) != TIND_OK) goto fail;
    }

    if ((rc = ks_load_all(db)) != TIND_OK) goto fail;
    uint64_t last_seq = 0;
    struct journal_recovery rec;
    void *rctx[2] = {db, &last_seq};
    if ((rc = journal_recover(db->journal_dir, replay_cb, rctx, &rec)) != TIND_OK) goto fail;
    if ((rc = ks_check_unique(db)) != TIND_OK) goto fail;
    if (rec.max_base_seq > last_seq) last_seq = rec.max_base_seq;

    struct journal_config jc = {.dir = db->journal_dir, .max_bytes = o.journal_max_bytes, .group_max_bytes = 1u << 20};
    struct journal_callbacks cb = {.ctx = db, .prepare = db_write_prepare, .apply = db_write_apply};
    if ((rc = journal_open(&jc, rec.max_number + 1, last_seq, &cb, &db->jnl)) != TIND_OK) goto fail;
    if ((rc = db_remove_empty_journals(db, rec.max_number + 1)) != TIND_OK) goto fail;

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
    long ns = atomic_load(&db->nsnaps), ni = atomic_load(&db->niters);
    if (ns || ni) return err_set(TIND_BUSY, "tind_close: %ld snapshots and %ld iterators are still open", ns, ni);
    int rc = journal_close(db->jnl);
    db->jnl = NULL;
    db_free(db);
    return rc;
}

int tind_db_stats(tind_db *db, struct tind_db_stats *st)
{
    err_clear();
    if (!db || !st) return err_set(TIND_INVALID, "tind_db_stats: NULL argument");
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&db->ks_mu);
    st->keyspaces = db->nks;
    pthread_mutex_unlock(&db->ks_mu);
    st->last_sequence = db_last_seq(db);
    struct journal_stats js;
    journal_get_stats(db->jnl, &js);
    st->writes = js.writes;
    st->write_groups = js.groups;
    st->journal_syncs = js.syncs;
    st->snapshots = (uint64_t)atomic_load(&db->nsnaps);
    st->iterators = (uint64_t)atomic_load(&db->niters);
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
