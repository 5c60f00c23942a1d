/* The LMDB driver of the benchmark, through lmdb.h.
 *
 * LMDB is a copy-on-write B+tree over one memory map: no memtable, no block
 * cache (the OS page cache is its cache), no compression, no bloom filter, so
 * only --map-mb applies. The environment is opened with
 *   MDB_NOSYNC   commits are not synced (like the LSM engines' unsynced writes);
 *                a synced write commits, then mdb_env_sync(force) before returning
 *   MDB_WRITEMAP dirty pages are written through the map (LMDB's fastest writes)
 *   MDB_NOTLS    read transactions are not tied to threads, so each thread keeps
 *                one, reset between reads and renewed for the next (LMDB's
 *                cheapest way to read)
 * Every put or delete is its own write transaction; LMDB serialises writers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "bench/engine.h"

struct engine_store {
    struct engine *e;
};

struct engine {
    MDB_env *env;
    MDB_dbi dbi;
    struct engine_store store;
};

struct engine_batch {
    struct engine *e;
    MDB_txn *txn; /* the open write transaction, NULL between batches */
};

struct engine_iter {
    struct engine *e;
    MDB_txn *txn;
    int cached; /* txn is the thread's cached read transaction */
    MDB_cursor *cur;
    MDB_val k, v;
    int valid, rc;
};

/* The calling thread's read transaction: reset when idle, renewed per read.
 * Worker threads abort theirs in thread_end; the main thread's goes at close. */
static _Thread_local MDB_txn *tl_txn;
static _Thread_local struct engine *tl_owner;
static _Thread_local int tl_busy;

static int fail(const char *what, int rc) { return engine_error("lmdb %s: %s", what, mdb_strerror(rc)); }

static const char *m_version(void)
{
    static char v[32];
    int ma, mi, pa;
    mdb_version(&ma, &mi, &pa);
    snprintf(v, sizeof v, "%d.%d.%d", ma, mi, pa);
    return v;
}

static int m_open(const struct engine_config *cfg, struct engine **out)
{
    if (mkdir(cfg->dir, 0755) != 0 && errno != EEXIST) return engine_error("lmdb: mkdir %s: %s", cfg->dir, strerror(errno));
    struct engine *e = calloc(1, sizeof *e);
    if (!e) return engine_error("out of memory");
    e->store.e = e;
    int rc;
    MDB_txn *txn = NULL;
    if ((rc = mdb_env_create(&e->env))) {
        free(e);
        return fail("env_create", rc);
    }
    if ((rc = mdb_env_set_mapsize(e->env, (size_t)cfg->map_bytes)) || (rc = mdb_env_set_maxreaders(e->env, 1024)) ||
        (rc = mdb_env_open(e->env, cfg->dir, MDB_NOSYNC | MDB_WRITEMAP | MDB_NOTLS, 0644)) ||
        (rc = mdb_txn_begin(e->env, NULL, 0, &txn)) || (rc = mdb_dbi_open(txn, NULL, 0, &e->dbi)) ||
        (rc = mdb_txn_commit(txn))) {
        mdb_env_close(e->env);
        free(e);
        return fail("open", rc);
    }
    *out = e;
    return ENGINE_OK;
}

static void drop_thread_txn(struct engine *e)
{
    if (tl_txn && tl_owner == e) mdb_txn_abort(tl_txn);
    if (tl_owner == e) {
        tl_txn = NULL;
        tl_owner = NULL;
        tl_busy = 0;
    }
}

static int m_close(struct engine *e)
{
    drop_thread_txn(e);
    mdb_env_close(e->env);
    free(e);
    return ENGINE_OK;
}

static void m_thread_end(struct engine *e) { drop_thread_txn(e); }

static int m_store(struct engine *e, const char *name, struct engine_store **out)
{
    if (name) return engine_error("lmdb driver: only the default store (no --batch-stores)");
    *out = &e->store;
    return ENGINE_OK;
}

/* A read transaction: the thread's cached one when it is free (*cached = 1),
 * else a new one. */
static int read_txn(struct engine *e, MDB_txn **txn, int *cached)
{
    int rc;
    if (!tl_busy && tl_owner == e && tl_txn) {
        if ((rc = mdb_txn_renew(tl_txn))) return fail("txn_renew", rc);
    } else if (!tl_busy && !tl_owner) {
        if ((rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &tl_txn))) return fail("txn_begin", rc);
        tl_owner = e;
    } else {
        *cached = 0;
        return (rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, txn)) ? fail("txn_begin", rc) : ENGINE_OK;
    }
    tl_busy = 1;
    *cached = 1;
    *txn = tl_txn;
    return ENGINE_OK;
}

static void read_done(MDB_txn *txn, int cached)
{
    if (cached) {
        mdb_txn_reset(txn);
        tl_busy = 0;
    } else {
        mdb_txn_abort(txn);
    }
}

static int write_one(struct engine *e, const void *k, size_t kl, const void *v, size_t vl, int del, int sync)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(e->env, NULL, 0, &txn);
    if (rc) return fail("txn_begin", rc);
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    rc = del ? mdb_del(txn, e->dbi, &key, NULL) : mdb_put(txn, e->dbi, &key, &val, 0);
    if (del && rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn); /* nothing changed */
        return ENGINE_OK;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return fail(del ? "del" : "put", rc);
    }
    if ((rc = mdb_txn_commit(txn))) return fail("commit", rc);
    if (sync && (rc = mdb_env_sync(e->env, 1))) return fail("env_sync", rc);
    return ENGINE_OK;
}

static int m_put(struct engine_store *s, const void *k, size_t kl, const void *v, size_t vl, int sync)
{
    return write_one(s->e, k, kl, v, vl, 0, sync);
}

static int m_del(struct engine_store *s, const void *k, size_t kl, int sync)
{
    return write_one(s->e, k, kl, NULL, 0, 1, sync);
}

static int m_get(struct engine_store *s, const void *k, size_t kl, void *buf, size_t cap, size_t *vl)
{
    MDB_txn *txn;
    int cached, rc = read_txn(s->e, &txn, &cached);
    if (rc) return rc;
    MDB_val key = {kl, (void *)k}, val;
    int mrc = mdb_get(txn, s->e->dbi, &key, &val);
    if (mrc == 0) {
        memcpy(buf, val.mv_data, val.mv_size < cap ? val.mv_size : cap);
        *vl = val.mv_size;
        rc = ENGINE_OK;
    } else {
        rc = mrc == MDB_NOTFOUND ? ENGINE_NOT_FOUND : fail("get", mrc);
    }
    read_done(txn, cached);
    return rc;
}

static int m_batch_new(struct engine *e, struct engine_batch **out)
{
    struct engine_batch *b = calloc(1, sizeof *b);
    if (!b) return engine_error("out of memory");
    b->e = e;
    *out = b;
    return ENGINE_OK;
}

static int m_batch_put(struct engine_batch *b, struct engine_store *s, const void *k, size_t kl, const void *v,
                       size_t vl)
{
    (void)s;
    int rc;
    if (!b->txn && (rc = mdb_txn_begin(b->e->env, NULL, 0, &b->txn))) return fail("txn_begin", rc);
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    if ((rc = mdb_put(b->txn, b->e->dbi, &key, &val, 0))) {
        mdb_txn_abort(b->txn);
        b->txn = NULL;
        return fail("put", rc);
    }
    return ENGINE_OK;
}

static int m_batch_commit(struct engine_batch *b, int sync)
{
    if (!b->txn) return ENGINE_OK;
    int rc = mdb_txn_commit(b->txn);
    b->txn = NULL;
    if (rc) return fail("commit", rc);
    if (sync && (rc = mdb_env_sync(b->e->env, 1))) return fail("env_sync", rc);
    return ENGINE_OK;
}

static void m_batch_free(struct engine_batch *b)
{
    if (!b) return;
    if (b->txn) mdb_txn_abort(b->txn);
    free(b);
}

static int m_iter_new(struct engine_store *s, struct engine_iter **out)
{
    struct engine_iter *it = calloc(1, sizeof *it);
    if (!it) return engine_error("out of memory");
    it->e = s->e;
    int rc = read_txn(s->e, &it->txn, &it->cached);
    if (rc) {
        free(it);
        return rc;
    }
    if ((it->rc = mdb_cursor_open(it->txn, s->e->dbi, &it->cur))) {
        read_done(it->txn, it->cached);
        rc = fail("cursor_open", it->rc);
        free(it);
        return rc;
    }
    *out = it;
    return ENGINE_OK;
}

static void move(struct engine_iter *it, MDB_cursor_op op)
{
    int rc = mdb_cursor_get(it->cur, &it->k, &it->v, op);
    it->valid = rc == 0;
    if (rc && rc != MDB_NOTFOUND) it->rc = rc;
}

static void m_iter_seek(struct engine_iter *it, const void *k, size_t kl)
{
    it->k.mv_size = kl;
    it->k.mv_data = (void *)k;
    move(it, MDB_SET_RANGE);
}

static void m_iter_first(struct engine_iter *it) { move(it, MDB_FIRST); }
static void m_iter_last(struct engine_iter *it) { move(it, MDB_LAST); }
static void m_iter_next(struct engine_iter *it) { if (it->valid) move(it, MDB_NEXT); }
static void m_iter_prev(struct engine_iter *it) { if (it->valid) move(it, MDB_PREV); }
static int m_iter_valid(struct engine_iter *it) { return it->valid; }

static const void *m_iter_key(struct engine_iter *it, size_t *len)
{
    *len = it->valid ? it->k.mv_size : 0;
    return it->valid ? it->k.mv_data : NULL;
}

static const void *m_iter_value(struct engine_iter *it, size_t *len)
{
    *len = it->valid ? it->v.mv_size : 0;
    return it->valid ? it->v.mv_data : NULL;
}

static int m_iter_status(struct engine_iter *it) { return it->rc ? fail("cursor", it->rc) : ENGINE_OK; }

static void m_iter_free(struct engine_iter *it)
{
    if (!it) return;
    mdb_cursor_close(it->cur);
    read_done(it->txn, it->cached);
    free(it);
}

static void m_report(struct engine *e, FILE *out)
{
    MDB_stat st;
    MDB_envinfo info;
    if (mdb_env_stat(e->env, &st) || mdb_env_info(e->env, &info)) return;
    fprintf(out, "  B+tree depth %u, %zu branch + %zu leaf + %zu overflow pages of %u bytes, %zu entries; "
                 "%zu pages of the map used\n",
            st.ms_depth, st.ms_branch_pages, st.ms_leaf_pages, st.ms_overflow_pages, st.ms_psize, st.ms_entries,
            info.me_last_pgno + 1);
}

const struct engine_ops engine_lmdb = {
    .name = "lmdb",
    .lsm = 0,
    .version = m_version,
    .open = m_open,
    .close = m_close,
    .store = m_store,
    .put = m_put,
    .get = m_get,
    .del = m_del,
    .batch_new = m_batch_new,
    .batch_put = m_batch_put,
    .batch_commit = m_batch_commit,
    .batch_free = m_batch_free,
    .iter_new = m_iter_new,
    .iter_seek = m_iter_seek,
    .iter_first = m_iter_first,
    .iter_last = m_iter_last,
    .iter_next = m_iter_next,
    .iter_prev = m_iter_prev,
    .iter_valid = m_iter_valid,
    .iter_key = m_iter_key,
    .iter_value = m_iter_value,
    .iter_status = m_iter_status,
    .iter_free = m_iter_free,
    .flush = NULL,
    .report = m_report,
    .counters = NULL,
    .thread_end = m_thread_end,
};
