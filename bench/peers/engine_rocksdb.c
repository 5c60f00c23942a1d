/* The RocksDB driver of the benchmark, through rocksdb/c.h.
 *
 * Equalized, configured like tind: LZ4 on every level, a full bloom filter of
 * --bloom-bits bits per key, an LRU block cache of --cache-mb, 4 KiB blocks, a
 * --write-buffer-mb memtable, the same number of background jobs as tind has
 * workers (min(cores, 4) unless --workers), the write-ahead log on and synced
 * only when a workload asks. Everything else is RocksDB's default (leveled
 * compaction). At its own defaults (--peer-config=defaults) only the cache and
 * the filter are set: RocksDB's own compressor (Snappy), write buffer (64 MiB),
 * background jobs (2) and block size (4 KiB) stay. Reads pin the value and copy it
 * out (rocksdb_get_pinned), RocksDB's cheapest C read. Only the default column
 * family is used. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "bench/engine.h"

#ifndef BENCH_ROCKSDB_VERSION
#define BENCH_ROCKSDB_VERSION "?"
#endif

struct engine_store {
    struct engine *e;
};

struct engine {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *topts;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo, *wo_sync;
    rocksdb_readoptions_t *ro;
    rocksdb_flushoptions_t *fo;
    struct engine_store store;
};

struct engine_batch {
    struct engine *e;
    rocksdb_writebatch_t *wb;
};

struct engine_iter {
    rocksdb_iterator_t *it;
};

/* RocksDB reports errors as malloc'd strings; this frees it. */
static int fail(const char *what, char *err)
{
    int rc = engine_error("rocksdb %s: %s", what, err ? err : "?");
    free(err);
    return rc;
}

static const char *r_version(void) { return BENCH_ROCKSDB_VERSION; }

static void r_free_opts(struct engine *e)
{
    if (e->fo) rocksdb_flushoptions_destroy(e->fo);
    if (e->ro) rocksdb_readoptions_destroy(e->ro);
    if (e->wo_sync) rocksdb_writeoptions_destroy(e->wo_sync);
    if (e->wo) rocksdb_writeoptions_destroy(e->wo);
    if (e->opts) rocksdb_options_destroy(e->opts);
    if (e->topts) rocksdb_block_based_options_destroy(e->topts);
    if (e->cache) rocksdb_cache_destroy(e->cache);
}

static int r_open(const struct engine_config *cfg, struct engine **out)
{
    struct engine *e = calloc(1, sizeof *e);
    if (!e) return engine_error("out of memory");
    e->store.e = e;
    e->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(e->opts, 1);
    if (!cfg->own_defaults) {
        rocksdb_options_set_compression(e->opts, cfg->compression ? rocksdb_lz4_compression : rocksdb_no_compression);
        rocksdb_options_set_write_buffer_size(e->opts, (size_t)cfg->write_buffer_bytes);
        int jobs = cfg->workers;
        if (jobs <= 0) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            jobs = cores < 1 ? 1 : cores > 4 ? 4 : (int)cores; /* tind's default worker count */
        }
        rocksdb_options_increase_parallelism(e->opts, jobs);
        rocksdb_options_set_max_background_jobs(e->opts, jobs);
    } else if (!cfg->compression) {
        rocksdb_options_set_compression(e->opts, rocksdb_no_compression);
    }

    e->topts = rocksdb_block_based_options_create();
    if (!cfg->own_defaults) rocksdb_block_based_options_set_block_size(e->topts, cfg->block_size);
    if (cfg->bloom_bits > 0) /* the table options take ownership of the policy */
        rocksdb_block_based_options_set_filter_policy(e->topts, rocksdb_filterpolicy_create_bloom_full(cfg->bloom_bits));
    if (cfg->cache_bytes) {
        e->cache = rocksdb_cache_create_lru((size_t)cfg->cache_bytes);
        rocksdb_block_based_options_set_block_cache(e->topts, e->cache);
    } else {
        rocksdb_block_based_options_set_no_block_cache(e->topts, 1);
    }
    rocksdb_options_set_block_based_table_factory(e->opts, e->topts);

    e->wo = rocksdb_writeoptions_create();
    e->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(e->wo_sync, 1);
    e->ro = rocksdb_readoptions_create();
    e->fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(e->fo, 1);

    char *err = NULL;
    e->db = rocksdb_open(e->opts, cfg->dir, &err);
    if (err) {
        r_free_opts(e);
        free(e);
        return fail("open", err);
    }
    *out = e;
    return ENGINE_OK;
}

static int r_close(struct engine *e)
{
    rocksdb_close(e->db);
    r_free_opts(e);
    free(e);
    return ENGINE_OK;
}

static int r_store(struct engine *e, const char *name, struct engine_store **out)
{
    if (name) return engine_error("rocksdb driver: only the default store (no --batch-stores)");
    *out = &e->store;
    return ENGINE_OK;
}

static int r_put(struct engine_store *s, const void *k, size_t kl, const void *v, size_t vl, int sync)
{
    char *err = NULL;
    rocksdb_put(s->e->db, sync ? s->e->wo_sync : s->e->wo, k, kl, v, vl, &err);
    return err ? fail("put", err) : ENGINE_OK;
}

static int r_get(struct engine_store *s, const void *k, size_t kl, void *buf, size_t cap, size_t *vl)
{
    char *err = NULL;
    rocksdb_pinnableslice_t *p = rocksdb_get_pinned(s->e->db, s->e->ro, k, kl, &err);
    if (err) return fail("get", err);
    if (!p) return ENGINE_NOT_FOUND;
    size_t len;
    const char *v = rocksdb_pinnableslice_value(p, &len);
    memcpy(buf, v, len < cap ? len : cap);
    *vl = len;
    rocksdb_pinnableslice_destroy(p);
    return ENGINE_OK;
}

static int r_del(struct engine_store *s, const void *k, size_t kl, int sync)
{
    char *err = NULL;
    rocksdb_delete(s->e->db, sync ? s->e->wo_sync : s->e->wo, k, kl, &err);
    return err ? fail("delete", err) : ENGINE_OK;
}

static int r_batch_new(struct engine *e, struct engine_batch **out)
{
    struct engine_batch *b = malloc(sizeof *b);
    if (!b) return engine_error("out of memory");
    b->e = e;
    b->wb = rocksdb_writebatch_create();
    *out = b;
    return ENGINE_OK;
}

static int r_batch_put(struct engine_batch *b, struct engine_store *s, const void *k, size_t kl, const void *v,
                       size_t vl)
{
    (void)s;
    rocksdb_writebatch_put(b->wb, k, kl, v, vl);
    return ENGINE_OK;
}

static int r_batch_commit(struct engine_batch *b, int sync)
{
    char *err = NULL;
    rocksdb_write(b->e->db, sync ? b->e->wo_sync : b->e->wo, b->wb, &err);
    rocksdb_writebatch_clear(b->wb);
    return err ? fail("write", err) : ENGINE_OK;
}

static void r_batch_free(struct engine_batch *b)
{
    if (!b) return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

static int r_iter_new(struct engine_store *s, struct engine_iter **out)
{
    struct engine_iter *it = malloc(sizeof *it);
    if (!it) return engine_error("out of memory");
    it->it = rocksdb_create_iterator(s->e->db, s->e->ro);
    *out = it;
    return ENGINE_OK;
}

static void r_iter_seek(struct engine_iter *it, const void *k, size_t kl) { rocksdb_iter_seek(it->it, k, kl); }
static void r_iter_first(struct engine_iter *it) { rocksdb_iter_seek_to_first(it->it); }
static void r_iter_last(struct engine_iter *it) { rocksdb_iter_seek_to_last(it->it); }
static void r_iter_next(struct engine_iter *it) { rocksdb_iter_next(it->it); }
static void r_iter_prev(struct engine_iter *it) { rocksdb_iter_prev(it->it); }
static int r_iter_valid(struct engine_iter *it) { return rocksdb_iter_valid(it->it); }
static const void *r_iter_key(struct engine_iter *it, size_t *len) { return rocksdb_iter_key(it->it, len); }
static const void *r_iter_value(struct engine_iter *it, size_t *len) { return rocksdb_iter_value(it->it, len); }

static int r_iter_status(struct engine_iter *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    return err ? fail("iterator", err) : ENGINE_OK;
}

static void r_iter_free(struct engine_iter *it)
{
    if (!it) return;
    rocksdb_iter_destroy(it->it);
    free(it);
}

static int r_flush(struct engine_store *s)
{
    char *err = NULL;
    rocksdb_flush(s->e->db, s->e->fo, &err);
    return err ? fail("flush", err) : ENGINE_OK;
}

static void r_report(struct engine *e, FILE *out)
{
    char *p = rocksdb_property_value(e->db, "rocksdb.levelstats");
    if (p) {
        fprintf(out, "%s", p);
        free(p);
    }
    if ((p = rocksdb_property_value(e->db, "rocksdb.block-cache-usage"))) {
        fprintf(out, "  block cache usage %s bytes\n", p);
        free(p);
    }
}

static uint64_t r_property_u64(struct engine *e, const char *name)
{
    uint64_t v = 0;
    return rocksdb_property_int(e->db, name, &v) == 0 ? v : 0;
}

static int r_compaction(struct engine *e, struct engine_compaction *c)
{
    c->l0_files = r_property_u64(e, "rocksdb.num-files-at-level0");
    c->l0_trigger = (uint64_t)rocksdb_options_get_level0_file_num_compaction_trigger(e->opts);
    c->busy = r_property_u64(e, "rocksdb.compaction-pending") || r_property_u64(e, "rocksdb.num-running-compactions") ||
              r_property_u64(e, "rocksdb.num-running-flushes") || r_property_u64(e, "rocksdb.mem-table-flush-pending");
    return ENGINE_OK;
}

const struct engine_ops engine_rocksdb = {
    .name = "rocksdb",
    .lsm = 1,
    .version = r_version,
    .open = r_open,
    .close = r_close,
    .store = r_store,
    .put = r_put,
    .get = r_get,
    .del = r_del,
    .batch_new = r_batch_new,
    .batch_put = r_batch_put,
    .batch_commit = r_batch_commit,
    .batch_free = r_batch_free,
    .iter_new = r_iter_new,
    .iter_seek = r_iter_seek,
    .iter_first = r_iter_first,
    .iter_last = r_iter_last,
    .iter_next = r_iter_next,
    .iter_prev = r_iter_prev,
    .iter_valid = r_iter_valid,
    .iter_key = r_iter_key,
    .iter_value = r_iter_value,
    .iter_status = r_iter_status,
    .iter_free = r_iter_free,
    .flush = r_flush,
    .report = r_report,
    .compaction = r_compaction,
    .counters = NULL,
    .thread_end = NULL,
};
