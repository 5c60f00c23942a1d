/* The tind driver of the benchmark, through the public API alone.
 *
 * A store is a keyspace ("default" for the default store). Equalized: LZ4 on
 * every level (or no compression), the memtable, block size and workers of the
 * flags. At its own defaults: tind_options_init and tind_keyspace_options_init
 * as they are, but for the cache, the bloom filter and compression off when
 * asked. Unsynced writes use
 * TIND_DURABILITY_BUFFERED (the database default: written to the OS, like the
 * peers' unsynced writes); a synced put is a one-op batch committed with
 * TIND_DURABILITY_SYNC_DATA, so that one keyspace serves both kinds. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench/engine.h"
#include "tind.h"

struct engine_store {
    struct engine *e;
    tind_keyspace *ks;
    char name[TIND_MAX_KEYSPACE_NAME + 1];
    struct engine_store *next;
};

struct engine {
    tind_db *db;
    tind_keyspace_options ko;
    pthread_mutex_t mu; /* guards stores */
    struct engine_store *stores;
};

struct engine_batch {
    struct engine *e;
    tind_batch *b;
};

struct engine_iter {
    tind_iter *it;
};

static int fail(const char *what, int rc)
{
    return engine_error("tind %s: %s: %s", what, tind_strerror(rc), tind_last_error());
}

static const char *t_version(void) { return tind_version(); }

static int t_open(const struct engine_config *cfg, struct engine **out)
{
    struct engine *e = calloc(1, sizeof *e);
    if (!e) return engine_error("out of memory");
    tind_options o;
    tind_options_init(&o);
    o.cache_bytes = cfg->cache_bytes;
    o.parallel_memtable_writes = cfg->parallel_writes;
    tind_keyspace_options_init(&e->ko);
    e->ko.bloom_bits_per_key = (uint32_t)cfg->bloom_bits;
    if (!cfg->own_defaults) {
        if (cfg->workers > 0) o.workers = (uint32_t)cfg->workers;
        e->ko.memtable_bytes = cfg->write_buffer_bytes;
        e->ko.block_size = cfg->block_size;
        /* LZ4 on every level, as RocksDB is configured: tind's default puts ZSTD on
         * the last level, which would trade read speed for space unlike the peers. */
        for (int l = 0; l < TIND_LEVELS; l++)
            e->ko.compression[l] = cfg->compression ? TIND_COMPRESSION_LZ4 : TIND_COMPRESSION_NONE;
    } else if (!cfg->compression) {
        for (int l = 0; l < TIND_LEVELS; l++) e->ko.compression[l] = TIND_COMPRESSION_NONE;
    }
    int rc = tind_open(cfg->dir, &o, &e->db);
    if (rc) {
        free(e);
        return fail("open", rc);
    }
    pthread_mutex_init(&e->mu, NULL);
    *out = e;
    return ENGINE_OK;
}

static int t_close(struct engine *e)
{
    int rc = tind_close(e->db);
    for (struct engine_store *s = e->stores, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    pthread_mutex_destroy(&e->mu);
    free(e);
    return rc ? fail("close", rc) : ENGINE_OK;
}

static int t_store(struct engine *e, const char *name, struct engine_store **out)
{
    if (!name) name = "default";
    if (strlen(name) > TIND_MAX_KEYSPACE_NAME) return engine_error("tind: store name too long");
    int rc = ENGINE_OK;
    pthread_mutex_lock(&e->mu);
    struct engine_store *s;
    for (s = e->stores; s; s = s->next)
        if (!strcmp(s->name, name)) break;
    if (!s) {
        tind_keyspace *ks;
        int trc = tind_keyspace_open(e->db, name, &e->ko, &ks);
        if (trc) rc = fail("keyspace_open", trc);
        else if (!(s = calloc(1, sizeof *s))) rc = engine_error("out of memory");
        else {
            s->e = e;
            s->ks = ks;
            strcpy(s->name, name);
            s->next = e->stores;
            e->stores = s;
        }
    }
    pthread_mutex_unlock(&e->mu);
    if (rc == ENGINE_OK) *out = s;
    return rc;
}

static int t_put(struct engine_store *s, const void *k, size_t kl, const void *v, size_t vl, int sync)
{
    int rc;
    if (!sync) {
        rc = tind_put(s->ks, k, kl, v, vl);
        return rc ? fail("put", rc) : ENGINE_OK;
    }
    tind_batch *b;
    if ((rc = tind_batch_new(&b))) return fail("batch_new", rc);
    if (!(rc = tind_batch_put(b, s->ks, k, kl, v, vl))) rc = tind_batch_commit(s->e->db, b, TIND_DURABILITY_SYNC_DATA);
    tind_batch_free(b);
    return rc ? fail("synced put", rc) : ENGINE_OK;
}

/* Read in place (tind_get_pinned), then copied into the harness's buffer,
 * as RocksDB's rocksdb_get_pinned is. */
static int t_get(struct engine_store *s, const void *k, size_t kl, void *buf, size_t cap, size_t *vl)
{
    tind_pinned p;
    int rc = tind_get_pinned(s->ks, k, kl, &p);
    if (rc == TIND_NOT_FOUND) return ENGINE_NOT_FOUND;
    if (rc) return fail("get", rc);
    memcpy(buf, p.data, p.len < cap ? p.len : cap);
    *vl = p.len;
    tind_pinned_release(&p);
    return ENGINE_OK;
}

static int t_del(struct engine_store *s, const void *k, size_t kl, int sync)
{
    int rc;
    if (!sync) {
        rc = tind_delete(s->ks, k, kl);
        return rc ? fail("delete", rc) : ENGINE_OK;
    }
    tind_batch *b;
    if ((rc = tind_batch_new(&b))) return fail("batch_new", rc);
    if (!(rc = tind_batch_delete(b, s->ks, k, kl))) rc = tind_batch_commit(s->e->db, b, TIND_DURABILITY_SYNC_DATA);
    tind_batch_free(b);
    return rc ? fail("synced delete", rc) : ENGINE_OK;
}

static int t_batch_new(struct engine *e, struct engine_batch **out)
{
    struct engine_batch *b = calloc(1, sizeof *b);
    if (!b) return engine_error("out of memory");
    int rc = tind_batch_new(&b->b);
    if (rc) {
        free(b);
        return fail("batch_new", rc);
    }
    b->e = e;
    *out = b;
    return ENGINE_OK;
}

static int t_batch_put(struct engine_batch *b, struct engine_store *s, const void *k, size_t kl, const void *v,
                       size_t vl)
{
    int rc = tind_batch_put(b->b, s->ks, k, kl, v, vl);
    return rc ? fail("batch_put", rc) : ENGINE_OK;
}

static int t_batch_commit(struct engine_batch *b, int sync)
{
    int rc = tind_batch_commit(b->e->db, b->b, sync ? TIND_DURABILITY_SYNC_DATA : TIND_DURABILITY_BUFFERED);
    tind_batch_clear(b->b);
    return rc ? fail("batch_commit", rc) : ENGINE_OK;
}

static void t_batch_free(struct engine_batch *b)
{
    if (!b) return;
    tind_batch_free(b->b);
    free(b);
}

static int t_iter_new(struct engine_store *s, struct engine_iter **out)
{
    struct engine_iter *it = malloc(sizeof *it);
    if (!it) return engine_error("out of memory");
    int rc = tind_iter_open(s->ks, NULL, NULL, &it->it);
    if (rc) {
        free(it);
        return fail("iter_open", rc);
    }
    *out = it;
    return ENGINE_OK;
}

static void t_iter_seek(struct engine_iter *it, const void *k, size_t kl) { tind_iter_seek(it->it, k, kl); }
static void t_iter_first(struct engine_iter *it) { tind_iter_seek_first(it->it); }
static void t_iter_last(struct engine_iter *it) { tind_iter_seek_last(it->it); }
static void t_iter_next(struct engine_iter *it) { tind_iter_next(it->it); }
static void t_iter_prev(struct engine_iter *it) { tind_iter_prev(it->it); }
static int t_iter_valid(struct engine_iter *it) { return tind_iter_valid(it->it); }
static const void *t_iter_key(struct engine_iter *it, size_t *len) { return tind_iter_key(it->it, len); }
static const void *t_iter_value(struct engine_iter *it, size_t *len) { return tind_iter_value(it->it, len); }

static int t_iter_status(struct engine_iter *it)
{
    int rc = tind_iter_status(it->it);
    return rc ? fail("iterator", rc) : ENGINE_OK;
}

static void t_iter_free(struct engine_iter *it)
{
    if (!it) return;
    tind_iter_close(it->it);
    free(it);
}

static int t_flush(struct engine_store *s)
{
    int rc = tind_keyspace_flush(s->ks);
    return rc ? fail("keyspace_flush", rc) : ENGINE_OK;
}

static void t_report(struct engine *e, FILE *out)
{
    pthread_mutex_lock(&e->mu);
    for (struct engine_store *s = e->stores; s; s = s->next) {
        struct tind_keyspace_stats st;
        if (tind_keyspace_stats(s->ks, &st) != TIND_OK) continue;
        fprintf(out, "  keyspace %-10s tables", s->name);
        for (int l = 0; l < TIND_LEVELS; l++)
            if (st.tables[l])
                fprintf(out, " L%d:%llu (%.1f MB)", l, (unsigned long long)st.tables[l], (double)st.table_bytes[l] / 1e6);
        fprintf(out, "; memtables %.1f MB, %llu sealed, at most %.1f MB; %llu flushes; %llu stalls, %llu slowdowns, "
                "%.1f s waited\n",
                (double)st.memtable_bytes / 1e6, (unsigned long long)st.sealed_memtables,
                (double)st.memtable_peak_bytes / 1e6, (unsigned long long)st.flushes, (unsigned long long)st.stalls,
                (unsigned long long)st.slowdowns, (double)st.stall_micros / 1e6);
    }
    pthread_mutex_unlock(&e->mu);
    struct tind_db_stats d;
    if (tind_db_stats(e->db, &d) != TIND_OK) return;
    fprintf(out,
            "  journal %llu files %.1f MB; %llu writes in %llu groups (%llu applied in parallel), %llu syncs; "
            "cache %.1f/%.1f MB, %llu hits %llu misses; %llu open tables\n",
            (unsigned long long)d.journal_files, (double)d.journal_bytes / 1e6, (unsigned long long)d.writes,
            (unsigned long long)d.write_groups, (unsigned long long)d.parallel_groups,
            (unsigned long long)d.journal_syncs, (double)d.cache_usage / 1e6,
            (double)d.cache_capacity / 1e6, (unsigned long long)d.cache_hits, (unsigned long long)d.cache_misses,
            (unsigned long long)d.open_tables);
}

/* Every store: level 0 summed, busy while any has a sealed memtable or
 * compaction debt, or a compaction runs anywhere. */
static int t_compaction(struct engine *e, struct engine_compaction *c)
{
    memset(c, 0, sizeof *c);
    c->l0_trigger = e->ko.l0_trigger;
    pthread_mutex_lock(&e->mu);
    int rc = TIND_OK;
    for (struct engine_store *s = e->stores; s && rc == TIND_OK; s = s->next) {
        struct tind_keyspace_stats st;
        if ((rc = tind_keyspace_stats(s->ks, &st)) != TIND_OK) break;
        c->l0_files += st.tables[0];
        if (st.sealed_memtables || st.pending_compaction_bytes) c->busy = 1;
    }
    pthread_mutex_unlock(&e->mu);
    if (rc) return fail("keyspace_stats", rc);
    struct tind_db_stats d;
    if ((rc = tind_db_stats(e->db, &d)) != TIND_OK) return fail("db_stats", rc);
    if (d.compactions_active) c->busy = 1;
    return ENGINE_OK;
}

static int t_counters(struct engine *e, struct engine_counters *c)
{
    struct tind_db_stats d;
    int rc = tind_db_stats(e->db, &d);
    if (rc) return fail("db_stats", rc);
    c->writes = d.writes;
    c->groups = d.write_groups;
    c->syncs = d.journal_syncs;
    c->memtable_peak_bytes = 0;
    pthread_mutex_lock(&e->mu);
    for (struct engine_store *s = e->stores; s; s = s->next) {
        struct tind_keyspace_stats st;
        if (tind_keyspace_stats(s->ks, &st) == TIND_OK) c->memtable_peak_bytes += st.memtable_peak_bytes;
    }
    pthread_mutex_unlock(&e->mu);
    return ENGINE_OK;
}

/* ---- transactions ---------------------------------------------------------------------- */

static int t_tx_begin(struct engine *e, struct engine_tx **out)
{
    tind_tx *tx;
    int rc = tind_tx_begin(e->db, &tx);
    if (rc) return fail("tx_begin", rc);
    *out = (struct engine_tx *)tx;
    return ENGINE_OK;
}

static int t_tx_get(struct engine_tx *tx, struct engine_store *s, const void *k, size_t kl, void *buf, size_t cap,
                    size_t *vl)
{
    void *v;
    size_t len;
    int rc = tind_tx_get((tind_tx *)tx, s->ks, k, kl, &v, &len);
    if (rc == TIND_NOT_FOUND) return ENGINE_NOT_FOUND;
    if (rc) return fail("tx_get", rc);
    memcpy(buf, v, len < cap ? len : cap);
    *vl = len;
    tind_free(v);
    return ENGINE_OK;
}

static int t_tx_put(struct engine_tx *tx, struct engine_store *s, const void *k, size_t kl, const void *v, size_t vl)
{
    int rc = tind_tx_put((tind_tx *)tx, s->ks, k, kl, v, vl);
    return rc ? fail("tx_put", rc) : ENGINE_OK;
}

static int t_tx_commit(struct engine_tx *tx)
{
    int rc = tind_tx_commit((tind_tx *)tx);
    if (rc == TIND_CONFLICT) return ENGINE_CONFLICT;
    return rc ? fail("tx_commit", rc) : ENGINE_OK;
}

const struct engine_ops engine_tind = {
    .name = "tind",
    .lsm = 1,
    .version = t_version,
    .open = t_open,
    .close = t_close,
    .store = t_store,
    .put = t_put,
    .get = t_get,
    .del = t_del,
    .batch_new = t_batch_new,
    .batch_put = t_batch_put,
    .batch_commit = t_batch_commit,
    .batch_free = t_batch_free,
    .iter_new = t_iter_new,
    .iter_seek = t_iter_seek,
    .iter_first = t_iter_first,
    .iter_last = t_iter_last,
    .iter_next = t_iter_next,
    .iter_prev = t_iter_prev,
    .iter_valid = t_iter_valid,
    .iter_key = t_iter_key,
    .iter_value = t_iter_value,
    .iter_status = t_iter_status,
    .iter_free = t_iter_free,
    .flush = t_flush,
    .report = t_report,
    .compaction = t_compaction,
    .counters = t_counters,
    .thread_end = NULL,
    .tx_begin = t_tx_begin,
    .tx_get = t_tx_get,
    .tx_put = t_tx_put,
    .tx_commit = t_tx_commit,
};
