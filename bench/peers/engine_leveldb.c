/* The LevelDB driver of the benchmark, through leveldb/c.h.
 *
 * Equalized, configured like tind: Snappy compression (LevelDB's only
 * compressor, and its default), a bloom filter of --bloom-bits bits per key,
 * an LRU block cache of --cache-mb, 4 KiB blocks, a --write-buffer-mb
 * memtable, the log synced only when a workload asks. At its own defaults
 * (--peer-config=defaults) the write buffer (4 MiB) and block size (4 KiB) are
 * LevelDB's; the cache and the filter are set as above. Table files are
 * LevelDB's 2 MiB in both. LevelDB has one background thread and no explicit flush
 * (the flush step is skipped); its C API returns every value as a malloc'd
 * copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leveldb/c.h>

#include "bench/engine.h"

struct engine_store {
    struct engine *e;
};

struct engine {
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_writeoptions_t *wo, *wo_sync;
    leveldb_readoptions_t *ro;
    struct engine_store store;
};

struct engine_batch {
    struct engine *e;
    leveldb_writebatch_t *wb;
};

struct engine_iter {
    leveldb_iterator_t *it;
};

static int fail(const char *what, char *err)
{
    int rc = engine_error("leveldb %s: %s", what, err ? err : "?");
    leveldb_free(err);
    return rc;
}

static const char *l_version(void)
{
    static char v[32];
    snprintf(v, sizeof v, "%d.%d", leveldb_major_version(), leveldb_minor_version());
    return v;
}

static void l_free_opts(struct engine *e)
{
    if (e->ro) leveldb_readoptions_destroy(e->ro);
    if (e->wo_sync) leveldb_writeoptions_destroy(e->wo_sync);
    if (e->wo) leveldb_writeoptions_destroy(e->wo);
    if (e->opts) leveldb_options_destroy(e->opts);
    if (e->filter) leveldb_filterpolicy_destroy(e->filter);
    if (e->cache) leveldb_cache_destroy(e->cache);
}

static int l_open(const struct engine_config *cfg, struct engine **out)
{
    struct engine *e = calloc(1, sizeof *e);
    if (!e) return engine_error("out of memory");
    e->store.e = e;
    e->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(e->opts, 1);
    leveldb_options_set_compression(e->opts, cfg->compression ? leveldb_snappy_compression : leveldb_no_compression);
    if (!cfg->own_defaults) {
        leveldb_options_set_write_buffer_size(e->opts, (size_t)cfg->write_buffer_bytes);
        leveldb_options_set_block_size(e->opts, cfg->block_size);
    }
    if (cfg->bloom_bits > 0) {
        e->filter = leveldb_filterpolicy_create_bloom(cfg->bloom_bits);
        leveldb_options_set_filter_policy(e->opts, e->filter);
    }
    /* LevelDB always has a block cache (8 MiB by default); give it the budget. */
    e->cache = leveldb_cache_create_lru(cfg->cache_bytes ? (size_t)cfg->cache_bytes : 1);
    leveldb_options_set_cache(e->opts, e->cache);
    e->wo = leveldb_writeoptions_create();
    e->wo_sync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(e->wo_sync, 1);
    e->ro = leveldb_readoptions_create();

    char *err = NULL;
    e->db = leveldb_open(e->opts, cfg->dir, &err);
    if (err) {
        l_free_opts(e);
        free(e);
        return fail("open", err);
    }
    *out = e;
    return ENGINE_OK;
}

static int l_close(struct engine *e)
{
    leveldb_close(e->db);
    l_free_opts(e);
    free(e);
    return ENGINE_OK;
}

static int l_store(struct engine *e, const char *name, struct engine_store **out)
{
    if (name) return engine_error("leveldb driver: only the default store (no --batch-stores)");
    *out = &e->store;
    return ENGINE_OK;
}

static int l_put(struct engine_store *s, const void *k, size_t kl, const void *v, size_t vl, int sync)
{
    char *err = NULL;
    leveldb_put(s->e->db, sync ? s->e->wo_sync : s->e->wo, k, kl, v, vl, &err);
    return err ? fail("put", err) : ENGINE_OK;
}

static int l_get(struct engine_store *s, const void *k, size_t kl, void *buf, size_t cap, size_t *vl)
{
    char *err = NULL;
    size_t len;
    char *v = leveldb_get(s->e->db, s->e->ro, k, kl, &len, &err);
    if (err) return fail("get", err);
    if (!v) return ENGINE_NOT_FOUND;
    memcpy(buf, v, len < cap ? len : cap);
    *vl = len;
    leveldb_free(v);
    return ENGINE_OK;
}

static int l_del(struct engine_store *s, const void *k, size_t kl, int sync)
{
    char *err = NULL;
    leveldb_delete(s->e->db, sync ? s->e->wo_sync : s->e->wo, k, kl, &err);
    return err ? fail("delete", err) : ENGINE_OK;
}

static int l_batch_new(struct engine *e, struct engine_batch **out)
{
    struct engine_batch *b = malloc(sizeof *b);
    if (!b) return engine_error("out of memory");
    b->e = e;
    b->wb = leveldb_writebatch_create();
    *out = b;
    return ENGINE_OK;
}

static int l_batch_put(struct engine_batch *b, struct engine_store *s, const void *k, size_t kl, const void *v,
                       size_t vl)
{
    (void)s;
    leveldb_writebatch_put(b->wb, k, kl, v, vl);
    return ENGINE_OK;
}

static int l_batch_commit(struct engine_batch *b, int sync)
{
    char *err = NULL;
    leveldb_write(b->e->db, sync ? b->e->wo_sync : b->e->wo, b->wb, &err);
    leveldb_writebatch_clear(b->wb);
    return err ? fail("write", err) : ENGINE_OK;
}

static void l_batch_free(struct engine_batch *b)
{
    if (!b) return;
    leveldb_writebatch_destroy(b->wb);
    free(b);
}

static int l_iter_new(struct engine_store *s, struct engine_iter **out)
{
    struct engine_iter *it = malloc(sizeof *it);
    if (!it) return engine_error("out of memory");
    it->it = leveldb_create_iterator(s->e->db, s->e->ro);
    *out = it;
    return ENGINE_OK;
}

static void l_iter_seek(struct engine_iter *it, const void *k, size_t kl) { leveldb_iter_seek(it->it, k, kl); }
static void l_iter_first(struct engine_iter *it) { leveldb_iter_seek_to_first(it->it); }
static void l_iter_last(struct engine_iter *it) { leveldb_iter_seek_to_last(it->it); }
static void l_iter_next(struct engine_iter *it) { leveldb_iter_next(it->it); }
static void l_iter_prev(struct engine_iter *it) { leveldb_iter_prev(it->it); }
static int l_iter_valid(struct engine_iter *it) { return leveldb_iter_valid(it->it); }
static const void *l_iter_key(struct engine_iter *it, size_t *len) { return leveldb_iter_key(it->it, len); }
static const void *l_iter_value(struct engine_iter *it, size_t *len) { return leveldb_iter_value(it->it, len); }

static int l_iter_status(struct engine_iter *it)
{
    char *err = NULL;
    leveldb_iter_get_error(it->it, &err);
    return err ? fail("iterator", err) : ENGINE_OK;
}

static void l_iter_free(struct engine_iter *it)
{
    if (!it) return;
    leveldb_iter_destroy(it->it);
    free(it);
}

static void l_report(struct engine *e, FILE *out)
{
    char *p = leveldb_property_value(e->db, "leveldb.stats");
    if (p) {
        fprintf(out, "%s", p);
        leveldb_free(p);
    }
}

/* LevelDB's rules (db/version_set.cc): level 0 compacts at 4 tables, level
 * L >= 1 (below the last) past 10^L MiB. Its C API does not tell whether a
 * compaction runs: busy is read off the table sizes "leveldb.sstables" lists
 * per level (" number:bytes[...]" under "--- level L ---") by those rules. */
static int l_compaction(struct engine *e, struct engine_compaction *c)
{
    memset(c, 0, sizeof *c);
    c->l0_trigger = 4;
    char *p = leveldb_property_value(e->db, "leveldb.num-files-at-level0");
    if (p) {
        c->l0_files = strtoull(p, NULL, 10);
        leveldb_free(p);
    }
    c->busy = c->l0_files >= c->l0_trigger;
    if ((p = leveldb_property_value(e->db, "leveldb.sstables"))) {
        double bytes[7] = {0};
        int level = -1;
        for (char *line = p; line && *line;) {
            char *nl = strchr(line, '\n');
            int l;
            unsigned long long num, size;
            if (sscanf(line, "--- level %d ---", &l) == 1) level = l;
            else if (level >= 0 && level < 7 && sscanf(line, " %llu:%llu[", &num, &size) == 2) bytes[level] += (double)size;
            line = nl ? nl + 1 : NULL;
        }
        double max = 10.0 * 1048576.0;
        for (int l = 1; l <= 5; l++, max *= 10)
            if (bytes[l] >= max) c->busy = 1;
        leveldb_free(p);
    }
    return ENGINE_OK;
}

const struct engine_ops engine_leveldb = {
    .name = "leveldb",
    .lsm = 1,
    .version = l_version,
    .open = l_open,
    .close = l_close,
    .store = l_store,
    .put = l_put,
    .get = l_get,
    .del = l_del,
    .batch_new = l_batch_new,
    .batch_put = l_batch_put,
    .batch_commit = l_batch_commit,
    .batch_free = l_batch_free,
    .iter_new = l_iter_new,
    .iter_seek = l_iter_seek,
    .iter_first = l_iter_first,
    .iter_last = l_iter_last,
    .iter_next = l_iter_next,
    .iter_prev = l_iter_prev,
    .iter_valid = l_iter_valid,
    .iter_key = l_iter_key,
    .iter_value = l_iter_value,
    .iter_status = l_iter_status,
    .iter_free = l_iter_free,
    .flush = NULL,
    .report = l_report,
    .compaction = l_compaction,
    .counters = NULL,
    .thread_end = NULL,
};
