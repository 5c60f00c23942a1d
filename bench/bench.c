/* tind-bench: a db_bench-style benchmark of tind, alone (`make bench`) or side
 * by side with RocksDB, LevelDB and LMDB (`make bench-peers`).
 *
 *   tind-bench [--preset=quick|peers] [--engine=E[,E...]] [--benchmarks=a,b,...]
 *              [--num=N] [--key-size=16] [--value-size=100] [--threads=T] ...
 *
 * `tind-bench --help` lists every flag and workload; bench/README.md explains
 * them. Each workload reports ops/s, MB/s and latency p50/p99/p99.9 from a
 * log-bucketed histogram; the run ends with write amplification (bytes this
 * process wrote to storage per byte of user writes, from /proc/self/io), space
 * amplification (bytes of the database directory per byte of live data) and
 * peak RSS.
 *
 * With several engines (--engine=tind,rocksdb,...) the program runs itself once
 * per engine, each in its own process so that /proc/self/io and peak RSS
 * belong to that engine alone, then prints a table comparing them. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/engine.h"
#include "bench/histogram.h"
#include "bench/keys.h"
#include "bench/report.h"

/* ---- flags ------------------------------------------------------------------ */

static struct {
    const char *engine, *benchmarks, *db, *results, *peer_config;
    uint64_t sample_ms;
    uint64_t num, reads, seeks, ycsb_ops, sync_ops, tx_ops;
    uint64_t key_size, value_size, threads, sync_threads, batch_size, batch_stores, scan_length;
    uint64_t cache_mb, write_buffer_mb, map_mb, block_size, bloom_bits, compression, workers, parallel_writes, fresh, seed;
    uint64_t use_existing;
    double compression_ratio, zipf_theta;
} F = {
    .engine = "tind",
    .benchmarks = NULL,
    .db = "build/bench-db",
    .peer_config = "equalized",
    .sample_ms = 100,
    .num = 1000000,
    .sync_ops = 2000,
    .tx_ops = 4,
    .key_size = 16,
    .value_size = 100,
    .threads = 1,
    .sync_threads = 4,
    .batch_size = 100,
    .batch_stores = 1,
    .scan_length = 10,
    .cache_mb = 64,
    .write_buffer_mb = 64,
    .block_size = 4096,
    .bloom_bits = 10,
    .parallel_writes = 1,
    .compression = 1,
    .fresh = 1,
    .seed = 42,
    .compression_ratio = 0.5,
    .zipf_theta = 0.99,
};

enum ftype { FT_U64, FT_DBL, FT_STR, FT_PRESET };

struct flagdef {
    const char *name;
    enum ftype type;
    void *p;
    const char *help;
};

static const struct flagdef flagdefs[] = {
    {"preset", FT_PRESET, NULL, "quick (the default without --benchmarks), peers or peers-large; later flags override it"},
    {"engine", FT_STR, &F.engine, "tind, or a comma-separated list run one process each, then compared"},
    {"benchmarks", FT_STR, &F.benchmarks, "comma-separated workloads, run in order on one database"},
    {"num", FT_U64, &F.num, "keys in the data set (1000000)"},
    {"reads", FT_U64, &F.reads, "operations of readrandom/readmissing/readhot/readwhilewriting (0: num)"},
    {"seeks", FT_U64, &F.seeks, "operations of seekrandom and ycsbe (0: num / 10)"},
    {"ycsb-ops", FT_U64, &F.ycsb_ops, "operations of ycsba-d, ycsbf and ycsbtx (0: num)"},
    {"sync-ops", FT_U64, &F.sync_ops, "synced puts of fillsync, per thread count (2000)"},
    {"tx-ops", FT_U64, &F.tx_ops, "operations per transaction of ycsbtx (4)"},
    {"key-size", FT_U64, &F.key_size, "key bytes (16)"},
    {"value-size", FT_U64, &F.value_size, "value bytes (100)"},
    {"threads", FT_U64, &F.threads, "threads of each workload; readers of readwhilewriting (1)"},
    {"sync-threads", FT_U64, &F.sync_threads, "threads of fillsync's second run (4)"},
    {"batch-size", FT_U64, &F.batch_size, "puts per batch of fillbatch (100)"},
    {"batch", FT_U64, &F.batch_size, NULL},
    {"batch-stores", FT_U64, &F.batch_stores,
     "1: fillbatch writes the main store; K > 1: it spreads each batch over K other stores (1)"},
    {"scan-length", FT_U64, &F.scan_length, "nexts after each seek of seekrandom (10)"},
    {"compression-ratio", FT_DBL, &F.compression_ratio, "values compress to about this fraction (0.5)"},
    {"compression", FT_U64, &F.compression, "1: block compression (LZ4; Snappy for LevelDB); 0: none (1)"},
    {"cache-mb", FT_U64, &F.cache_mb, "block cache of every engine, MiB (64)"},
    {"write-buffer-mb", FT_U64, &F.write_buffer_mb, "memtable size, MiB (64)"},
    {"memtable-mb", FT_U64, &F.write_buffer_mb, NULL},
    {"block-size", FT_U64, &F.block_size, "table block size, bytes (4096)"},
    {"bloom-bits", FT_U64, &F.bloom_bits, "bloom filter bits per key; 0: none (10)"},
    {"workers", FT_U64, &F.workers, "background threads (tind workers, RocksDB jobs); 0: tind's default (0)"},
    {"parallel-writes", FT_U64, &F.parallel_writes,
     "tind: 1: a commit group's writers insert their batches in parallel (parallel_memtable_writes); 0: the leader alone (1)"},
    {"map-mb", FT_U64, &F.map_mb, "LMDB map size, MiB; 0: sized from num (0)"},
    {"fresh", FT_U64, &F.fresh, "1: fillseq, fillrandom and fillbatch start on an empty database (1)"},
    {"use-existing", FT_U64, &F.use_existing,
     "1: open the database left by an earlier run instead of starting empty (implies --fresh=0) (0)"},
    {"zipf-theta", FT_DBL, &F.zipf_theta, "skew of readhot and YCSB key choice (0.99)"},
    {"peer-config", FT_STR, &F.peer_config,
     "equalized (the flags below for every engine), defaults (each engine's own but cache, filter, compression "
     "on), or both comma-separated, each run and tabled in turn (equalized)"},
    {"sample-ms", FT_U64, &F.sample_ms, "interval of the ops/s-over-time samples in the results file, ms (100)"},
    {"db", FT_STR, &F.db, "database directory; several engines or configs use DIR/<config>/<engine> (build/bench-db)"},
    {"seed", FT_U64, &F.seed, "seed of every key and value stream (42)"},
    {"results", FT_STR, &F.results, NULL /* internal: where a child of a multi-engine run writes results */},
};

/* Presets are flag lists applied in place, so later flags override them. */
static const char *const preset_quick[] = {
    "--benchmarks=fillrandom,fillbatch,flush,stats,readrandom,readmissing,seekrandom,readseq,readreverse,"
    "reopen,readrandom,ycsbtx,fillsync,stats",
    "--write-buffer-mb=16", "--batch-stores=2", "--fresh=0", NULL};
static const char *const preset_peers[] = {
    "--engine=tind,rocksdb,leveldb,lmdb", "--num=2000000", "--db=build/bench-peers-db",
    "--peer-config=equalized,defaults",
    /* readwhilewriting's writer is not rate-limited, so a faster writer leaves
     * more data behind; it runs after the other reads so that their numbers do
     * not depend on it. Space is measured once compaction has caught up with
     * the writes (settle), not in the middle of a merge. */
    "--benchmarks=fillseq,fillbatch,fillrandom,overwrite,settle,readrandom,readmissing,readhot,seekrandom,readseq,"
    "readreverse,ycsba,ycsbb,ycsbc,ycsbd,ycsbe,ycsbf,ycsbtx,readwhilewriting,fillsync,settle,stats,space,deleterandom",
    NULL};
/* How cost grows with size: the writes and the reads that miss the cache. */
static const char *const preset_peers_large[] = {
    "--engine=tind,rocksdb,leveldb,lmdb", "--num=20000000", "--db=build/bench-peers-large-db",
    "--peer-config=equalized,defaults", "--benchmarks=fillrandom,overwrite,settle,readrandom,seekrandom,stats,space",
    "--reads=1000000", "--seeks=200000", NULL};

static void usage(FILE *out);

static int parse_flag(const char *arg);

static int apply_preset(const char *name)
{
    const char *const *list = !strcmp(name, "quick")         ? preset_quick
                              : !strcmp(name, "peers")       ? preset_peers
                              : !strcmp(name, "peers-large") ? preset_peers_large
                                                             : NULL;
    if (!list) {
        fprintf(stderr, "tind-bench: unknown preset %s (quick, peers, peers-large)\n", name);
        return -1;
    }
    for (; *list; list++)
        if (parse_flag(*list)) return -1;
    return 0;
}

static int parse_flag(const char *arg)
{
    if (strncmp(arg, "--", 2) != 0) goto bad;
    const char *eq = strchr(arg, '=');
    if (!eq) goto bad;
    size_t nlen = (size_t)(eq - arg - 2);
    const char *val = eq + 1;
    for (size_t i = 0; i < sizeof flagdefs / sizeof flagdefs[0]; i++) {
        const struct flagdef *d = &flagdefs[i];
        if (strlen(d->name) != nlen || strncmp(d->name, arg + 2, nlen) != 0) continue;
        char *end;
        errno = 0;
        switch (d->type) {
        case FT_U64: {
            unsigned long long v = strtoull(val, &end, 10);
            if (*val == '-' || end == val || *end || errno) goto bad;
            *(uint64_t *)d->p = v;
            return 0;
        }
        case FT_DBL: {
            double v = strtod(val, &end);
            if (end == val || *end || errno) goto bad;
            *(double *)d->p = v;
            return 0;
        }
        case FT_STR:
            *(const char **)d->p = val;
            return 0;
        case FT_PRESET:
            return apply_preset(val);
        }
    }
bad:
    fprintf(stderr, "tind-bench: bad flag %s\n", arg);
    return -1;
}

/* ---- the run ---------------------------------------------------------------- */

#define MAX_STORES 16
#define MAX_CONFIGS 2 /* --peer-config: equalized, defaults */

struct run {
    const struct engine_ops *ops;
    struct engine_config cfg;
    struct engine *e;
    struct engine_store *store;             /* the default store: every workload but fillbatch's spread */
    struct engine_store *bstore[MAX_STORES]; /* fillbatch's stores when --batch-stores > 1 */
    char bnames[MAX_STORES][32];
    size_t nbstores;
    struct values values;
    struct zipf zipf;
    int have_zipf;
    uint64_t reads, seeks, ycsb_ops;
    atomic_uint_fast64_t inserted; /* YCSB inserts so far: keys num, num + 1, ... */
    atomic_int stop;               /* readwhilewriting: the readers are done */
    int all_present;               /* every key 0..num-1 is in the default store */
    uint64_t user_bytes;           /* key + value bytes of every put, key bytes of every delete */
    unsigned ordinal;              /* workloads run so far: salts repeated workloads apart */
    uint64_t t_base;               /* the running workload's start: its threads' first tick is one interval later */
    FILE *results;
    /* The last `space` step (or the end of the run). */
    int have_space;
    uint64_t space_disk, space_live, space_keys;
    char space_after[48];
    const char *last;              /* the last workload run, for the space report */
    /* Labels used so far, to number repeats. */
    char labels[64][48];
    size_t nlabels;
};

struct worker {
    struct run *r;
    const struct workload *wl;
    unsigned id, n;      /* this thread, of n */
    int writer;          /* readwhilewriting's writer */
    struct rng rng;
    uint64_t vpos;       /* position in the value buffer */
    uint64_t ops, bytes, found, user_bytes;
    uint64_t commits, conflicts; /* ycsbtx's transactions */
    uint64_t t_start, t_end; /* the writer's own span */
    /* ops/s over time: done counts completed operations; at each tick (every
     * --sample-ms from the workload's start, r->t_base) the count is appended
     * to samples. */
    uint64_t done, next_tick;
    uint64_t *samples;
    size_t nsamples, capsamples;
    char *buf;           /* values read */
    size_t cap;
    struct histogram hist;
    pthread_t th;
    pthread_barrier_t *go;
};

typedef void (*worker_fn)(struct worker *w);

struct workload {
    const char *name;
    worker_fn fn;       /* NULL: a step of the main thread */
    void (*step)(struct run *r);
    int fresh;          /* a fill: starts on an empty database under --fresh=1 */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fflush(stdout);
    fprintf(stderr, "tind-bench: %s: %s\n", what, engine_last_error());
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc == ENGINE_ERROR) die(what);
}

/* This thread's share [*b, *e) of total. */
static void slice(const struct worker *w, uint64_t total, uint64_t *b, uint64_t *e)
{
    *b = (uint64_t)((unsigned __int128)total * w->id / w->n);
    *e = (uint64_t)((unsigned __int128)total * (w->id + 1) / w->n);
}

/* Records the operations completed by every tick up to t (a stall longer than
 * an interval records the same count again). Out of memory loses samples, not
 * the run. */
static void sample_ticks(struct worker *w, uint64_t t)
{
    uint64_t interval = F.sample_ms * 1000000u;
    for (; t >= w->next_tick; w->next_tick += interval) {
        if (w->nsamples == w->capsamples) {
            size_t cap = w->capsamples ? 2 * w->capsamples : 256;
            uint64_t *p = realloc(w->samples, cap * sizeof *p);
            if (!p) {
                w->next_tick = UINT64_MAX;
                return;
            }
            w->samples = p;
            w->capsamples = cap;
        }
        w->samples[w->nsamples++] = w->done;
    }
}

/* The end of n operations (1, or a batch's puts) that began at *t0: one
 * latency sample, and the count for ops/s over time. The clock read is the
 * one the latency needs; the sampling adds a compare per operation. */
static inline void op_done(struct worker *w, uint64_t *t0, uint64_t n)
{
    uint64_t t1 = now_ns();
    hist_add(&w->hist, t1 - *t0);
    *t0 = t1;
    if (t1 >= w->next_tick) sample_ticks(w, t1);
    w->done += n;
}

/* ---- workloads: one function per thread ------------------------------------- */

/* A put of key index idx with the thread's next value. */
static void put_index(struct worker *w, struct engine_store *s, uint64_t idx, int sync)
{
    char key[KEY_MAX];
    key_format(key, F.key_size, idx);
    const char *v = values_next(&w->r->values, &w->vpos);
    check(w->r->ops->put(s, key, F.key_size, v, F.value_size, sync), "put");
    w->user_bytes += F.key_size + F.value_size;
}

/* A get of key index idx; counts it when found. */
static void get_index(struct worker *w, uint64_t idx)
{
    char key[KEY_MAX];
    size_t vl;
    key_format(key, F.key_size, idx);
    int rc = w->r->ops->get(w->r->store, key, F.key_size, w->buf, w->cap, &vl);
    check(rc, "get");
    if (rc == ENGINE_OK) {
        w->found++;
        w->bytes += F.key_size + vl;
    }
}

/* Writes the thread's share of [0, count) as key indexes given by `order`
 * (NULL: sequential). */
static void write_share(struct worker *w, const struct perm *order, uint64_t count, int sync)
{
    uint64_t b, e;
    slice(w, count, &b, &e);
    uint64_t t0 = now_ns();
    for (uint64_t i = b; i < e; i++) {
        put_index(w, w->r->store, order ? perm_at(order, i) : i, sync);
        op_done(w, &t0, 1);
    }
    w->ops = e - b;
    w->bytes = w->user_bytes;
}

static void wl_fillseq(struct worker *w) { write_share(w, NULL, F.num, 0); }

static void wl_fillrandom(struct worker *w)
{
    struct perm p;
    perm_init(&p, F.num, F.seed, salt_of(w->wl->name));
    write_share(w, &p, F.num, 0);
}

/* Every key once, in an order of its own. */
static void wl_overwrite(struct worker *w) { wl_fillrandom(w); }

static void wl_fillsync(struct worker *w)
{
    /* The first sync-ops keys of a permutation of the data set: existing keys
     * are overwritten, and the data set never grows past num. */
    struct perm p;
    perm_init(&p, F.num, F.seed, salt_of("fillsync"));
    write_share(w, &p, F.sync_ops < F.num ? F.sync_ops : F.num, 1);
}

static void wl_fillbatch(struct worker *w)
{
    struct run *r = w->r;
    struct perm p;
    perm_init(&p, F.num, F.seed, salt_of("fillbatch"));
    struct engine_batch *batch;
    check(r->ops->batch_new(r->e, &batch), "batch_new");
    uint64_t b, e;
    slice(w, F.num, &b, &e);
    char key[KEY_MAX];
    uint64_t t0 = now_ns();
    for (uint64_t i = b; i < e; i += F.batch_size) {
        for (uint64_t k = i; k < i + F.batch_size && k < e; k++) {
            key_format(key, F.key_size, perm_at(&p, k));
            const char *v = values_next(&r->values, &w->vpos);
            /* Spread over the batch stores, if any, so that every batch spans them all. */
            struct engine_store *s = r->nbstores ? r->bstore[k % r->nbstores] : r->store;
            check(r->ops->batch_put(batch, s, key, F.key_size, v, F.value_size), "batch_put");
            w->user_bytes += F.key_size + F.value_size;
        }
        check(r->ops->batch_commit(batch, 0), "batch_commit");
        op_done(w, &t0, (e - i < F.batch_size ? e - i : F.batch_size)); /* one latency sample per batch */
    }
    r->ops->batch_free(batch);
    w->ops = e - b;
    w->bytes = w->user_bytes;
}

static void wl_deleterandom(struct worker *w)
{
    struct run *r = w->r;
    struct perm p;
    perm_init(&p, F.num, F.seed, salt_of("deleterandom"));
    uint64_t b, e;
    slice(w, F.num, &b, &e);
    char key[KEY_MAX];
    uint64_t t0 = now_ns();
    for (uint64_t i = b; i < e; i++) {
        key_format(key, F.key_size, perm_at(&p, i));
        check(r->ops->del(r->store, key, F.key_size, 0), "delete");
        w->user_bytes += F.key_size;
        op_done(w, &t0, 1);
    }
    w->ops = e - b;
    w->bytes = w->user_bytes;
}

/* Gets of keys chosen uniformly (hot = 0) or by the scrambled Zipfian. */
static void read_share(struct worker *w, int hot)
{
    uint64_t b, e;
    slice(w, w->r->reads, &b, &e);
    uint64_t t0 = now_ns();
    for (uint64_t i = b; i < e; i++) {
        get_index(w, hot ? zipf_scrambled(&w->r->zipf, &w->rng) : rng_below(&w->rng, F.num));
        op_done(w, &t0, 1);
    }
    w->ops = e - b;
}

static void wl_readrandom(struct worker *w) { read_share(w, 0); }
static void wl_readhot(struct worker *w) { read_share(w, 1); }

static void wl_readmissing(struct worker *w)
{
    struct run *r = w->r;
    uint64_t b, e;
    slice(w, r->reads, &b, &e);
    char key[KEY_MAX + 1];
    size_t vl;
    uint64_t t0 = now_ns();
    for (uint64_t i = b; i < e; i++) {
        key_missing(key, F.key_size, rng_below(&w->rng, F.num));
        int rc = r->ops->get(r->store, key, F.key_size + 1, w->buf, w->cap, &vl);
        check(rc, "get of a missing key");
        if (rc == ENGINE_OK) w->found++; /* a wrong answer: checked after the run */
        w->bytes += F.key_size + 1;
        op_done(w, &t0, 1);
    }
    w->ops = e - b;
}

/* A new iterator, a seek to key index idx, and up to `len` entries read from
 * there (the one sought included); returns the entries read. Opening the
 * iterator is part of the operation, as in LevelDB's and RocksDB's db_bench. */
static uint64_t seek_and_read(struct worker *w, uint64_t idx, uint64_t len)
{
    struct run *r = w->r;
    char key[KEY_MAX];
    key_format(key, F.key_size, idx);
    struct engine_iter *it;
    check(r->ops->iter_new(r->store, &it), "iterator");
    r->ops->iter_seek(it, key, F.key_size);
    uint64_t n = 0;
    for (; n < len && r->ops->iter_valid(it); n++) {
        size_t kl, vl;
        r->ops->iter_key(it, &kl);
        r->ops->iter_value(it, &vl);
        w->bytes += kl + vl;
        r->ops->iter_next(it);
    }
    check(r->ops->iter_status(it), "iterator");
    r->ops->iter_free(it);
    return n;
}

static void wl_seekrandom(struct worker *w)
{
    uint64_t b, e;
    slice(w, w->r->seeks, &b, &e);
    uint64_t t0 = now_ns();
    for (uint64_t i = b; i < e; i++) {
        if (seek_and_read(w, rng_below(&w->rng, F.num), F.scan_length + 1) > 0) w->found++;
        op_done(w, &t0, 1);
    }
    w->ops = e - b;
}

/* A full scan by each thread; an operation is one entry. */
static void scan(struct worker *w, int reverse)
{
    struct run *r = w->r;
    struct engine_iter *it;
    check(r->ops->iter_new(r->store, &it), "iterator");
    uint64_t t0 = now_ns();
    if (reverse) r->ops->iter_last(it);
    else r->ops->iter_first(it);
    while (r->ops->iter_valid(it)) {
        size_t kl, vl;
        r->ops->iter_key(it, &kl);
        r->ops->iter_value(it, &vl);
        w->bytes += kl + vl;
        w->ops++;
        if (reverse) r->ops->iter_prev(it);
        else r->ops->iter_next(it);
        op_done(w, &t0, 1);
    }
    check(r->ops->iter_status(it), "iterator");
    r->ops->iter_free(it);
    w->found = w->ops;
}

static void wl_readseq(struct worker *w) { scan(w, 0); }
static void wl_readreverse(struct worker *w) { scan(w, 1); }

/* Readers share the reads; the last thread overwrites random keys until they
 * are done. */
static void wl_readwhilewriting(struct worker *w)
{
    if (!w->writer) {
        read_share(w, 0);
        return;
    }
    struct run *r = w->r;
    w->t_start = now_ns();
    uint64_t t0 = w->t_start;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        put_index(w, r->store, rng_below(&w->rng, F.num), 0);
        w->ops++;
        op_done(w, &t0, 1);
    }
    w->t_end = t0;
    w->bytes = w->user_bytes;
}

/* YCSB core workloads over the Zipfian key choice; every record is one key
 * with one value of --value-size bytes, and an update rewrites it whole.
 *   A 50% read 50% update      B 95% read 5% update      C 100% read
 *   D 95% read of the latest inserts 5% insert
 *   E 95% scan (1..100 entries) 5% insert               F 50% read 50% read-modify-write */
static void ycsb(struct worker *w, char kind)
{
    struct run *r = w->r;
    uint64_t b, e;
    slice(w, kind == 'e' ? r->seeks : r->ycsb_ops, &b, &e);
    uint64_t t0 = now_ns();
    for (uint64_t i = b; i < e; i++) {
        double u = rng_double(&w->rng);
        uint64_t idx;
        switch (kind) {
        case 'a':
        case 'b':
        case 'c':
            idx = zipf_scrambled(&r->zipf, &w->rng);
            if (u < (kind == 'a' ? 0.5 : kind == 'b' ? 0.95 : 1.0)) get_index(w, idx);
            else put_index(w, r->store, idx, 0);
            break;
        case 'd':
            if (u < 0.95) {
                /* Recent inserts are the hottest: the rank counts back from the newest. */
                uint64_t newest = F.num + atomic_load(&r->inserted) - 1, back = zipf_next(&r->zipf, &w->rng);
                get_index(w, back <= newest ? newest - back : 0);
            } else put_index(w, r->store, F.num + atomic_fetch_add(&r->inserted, 1), 0);
            break;
        case 'e':
            if (u < 0.95) w->found += seek_and_read(w, zipf_scrambled(&r->zipf, &w->rng), 1 + rng_below(&w->rng, 100)) > 0;
            else put_index(w, r->store, F.num + atomic_fetch_add(&r->inserted, 1), 0);
            break;
        default: /* f */
            idx = zipf_scrambled(&r->zipf, &w->rng);
            get_index(w, idx);
            if (u >= 0.5) put_index(w, r->store, idx, 0);
            break;
        }
        op_done(w, &t0, 1);
    }
    w->ops = e - b;
    w->bytes += w->user_bytes;
}

/* YCSB A through optimistic transactions: --tx-ops operations per
 * transaction, each a read or (half the time) a blind update of a Zipfian
 * key; a transaction that loses to a concurrent write is retried with the
 * same operations. Counts commits and conflicts. */
static void wl_ycsbtx(struct worker *w)
{
    struct run *r = w->r;
    const struct engine_ops *ops = r->ops;
    uint64_t b, e, per = F.tx_ops ? F.tx_ops : 1;
    slice(w, r->ycsb_ops, &b, &e);
    uint64_t idx[64];
    int upd[64];
    if (per > 64) per = 64;
    uint64_t t0 = now_ns();
    for (uint64_t i = b; i < e; i += per) {
        uint64_t n = e - i < per ? e - i : per;
        for (uint64_t k = 0; k < n; k++) {
            idx[k] = zipf_scrambled(&r->zipf, &w->rng);
            upd[k] = rng_double(&w->rng) >= 0.5;
        }
        for (;;) {
            struct engine_tx *tx;
            check(ops->tx_begin(r->e, &tx), "tx_begin");
            for (uint64_t k = 0; k < n; k++) {
                char key[KEY_MAX];
                key_format(key, F.key_size, idx[k]);
                if (upd[k]) {
                    const char *v = values_next(&r->values, &w->vpos);
                    check(ops->tx_put(tx, r->store, key, F.key_size, v, F.value_size), "tx_put");
                    w->user_bytes += F.key_size + F.value_size;
                } else {
                    size_t vl;
                    int rc = ops->tx_get(tx, r->store, key, F.key_size, w->buf, w->cap, &vl);
                    check(rc, "tx_get");
                    if (rc == ENGINE_OK) w->bytes += F.key_size + vl;
                }
            }
            int rc = ops->tx_commit(tx);
            check(rc, "tx_commit");
            if (rc == ENGINE_CONFLICT) {
                w->conflicts++;
                continue;
            }
            w->commits++;
            break;
        }
        op_done(w, &t0, n);
    }
    w->ops = e - b;
    w->bytes += w->user_bytes;
}

static void wl_ycsba(struct worker *w) { ycsb(w, 'a'); }
static void wl_ycsbb(struct worker *w) { ycsb(w, 'b'); }
static void wl_ycsbc(struct worker *w) { ycsb(w, 'c'); }
static void wl_ycsbd(struct worker *w) { ycsb(w, 'd'); }
static void wl_ycsbe(struct worker *w) { ycsb(w, 'e'); }
static void wl_ycsbf(struct worker *w) { ycsb(w, 'f'); }

/* ---- steps of the main thread ----------------------------------------------- */

static void acquire_stores(struct run *r)
{
    check(r->ops->store(r->e, NULL, &r->store), "store");
    for (size_t i = 0; i < r->nbstores; i++) check(r->ops->store(r->e, r->bnames[i], &r->bstore[i]), "store");
}

static void engine_open(struct run *r)
{
    check(r->ops->open(&r->cfg, &r->e), "open");
    acquire_stores(r);
}

static void engine_close(struct run *r)
{
    check(r->ops->close(r->e), "close");
    r->e = NULL;
}

static void print_row(const char *label, uint64_t ops, double secs, uint64_t bytes, const struct histogram *h,
                      FILE *results)
{
    char p50[16], p99[16], p999[16];
    double ps = secs > 0 ? (double)ops / secs : 0;
    double mbs = secs > 0 ? (double)bytes / secs / 1e6 : 0;
    if (h && h->count) {
        fmt_latency(p50, sizeof p50, (double)hist_percentile(h, 0.50));
        fmt_latency(p99, sizeof p99, (double)hist_percentile(h, 0.99));
        fmt_latency(p999, sizeof p999, (double)hist_percentile(h, 0.999));
        printf("%-26s %10llu ops %8.3f s %10.0f ops/s %7.1f MB/s  p50 %8s  p99 %8s  p99.9 %8s\n", label,
               (unsigned long long)ops, secs, ps, mbs, p50, p99, p999);
    } else {
        printf("%-26s %10llu ops %8.3f s %10.0f ops/s %7.1f MB/s\n", label, (unsigned long long)ops, secs, ps, mbs);
    }
    fflush(stdout);
    if (results && h)
        fprintf(results, "W\t%s\t%.1f\t%.3f\t%llu\t%llu\t%llu\t%llu\n", label, ps, mbs,
                (unsigned long long)hist_percentile(h, 0.50), (unsigned long long)hist_percentile(h, 0.99),
                (unsigned long long)hist_percentile(h, 0.999), (unsigned long long)ops);
}

/* The label of a workload's row; a repeat gets " #2", " #3", ... */
static void make_label(struct run *r, const char *base, char *out, size_t n)
{
    unsigned seen = 0;
    for (size_t i = 0; i < r->nlabels; i++)
        if (!strcmp(r->labels[i], base)) seen++;
    if (r->nlabels < sizeof r->labels / sizeof r->labels[0])
        snprintf(r->labels[r->nlabels++], sizeof r->labels[0], "%s", base);
    if (seen) snprintf(out, n, "%s #%u", base, seen + 1);
    else snprintf(out, n, "%s", base);
}

/* Writes back what earlier workloads left dirty in the page cache, so that a
 * workload does not pay for its predecessor's writeback (the kernel would
 * otherwise do it at a moment of its choosing, in the middle of the next
 * measurement). Untimed. */
static void settle(const struct run *r)
{
    int fd = open(r->cfg.dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    syncfs(fd);
    close(fd);
}

static void *worker_main(void *p)
{
    struct worker *w = p;
    pthread_barrier_wait(w->go);
    /* Samples only go to a results file; without one (or --sample-ms=0) no tick comes. */
    w->next_tick = w->r->results && F.sample_ms ? w->r->t_base + F.sample_ms * 1000000u : UINT64_MAX;
    w->wl->fn(w);
    if (w->r->ops->thread_end) w->r->ops->thread_end(w->r->e);
    return NULL;
}

/* Writes a row's ops/s over time to the results file, "T <label> <seconds>
 * <ops/s>" per interval: the operations the threads completed between two
 * ticks (a thread that has finished counts all of its own), then the last
 * partial interval up to span_ns (from r->t_base, where the ticks start) when
 * it is at least a tenth of one. */
static void write_samples(FILE *results, const char *label, const struct worker *ws, unsigned n, uint64_t span_ns)
{
    if (!results || !F.sample_ms) return;
    size_t ticks = 0;
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        if (ws[i].nsamples > ticks) ticks = ws[i].nsamples;
        total += ws[i].done;
    }
    double interval = (double)F.sample_ms / 1e3;
    uint64_t prev = 0;
    for (size_t k = 0; k < ticks; k++) {
        uint64_t cum = 0;
        for (unsigned i = 0; i < n; i++) cum += k < ws[i].nsamples ? ws[i].samples[k] : ws[i].done;
        fprintf(results, "T\t%s\t%.3f\t%.1f\n", label, (double)(k + 1) * interval, (double)(cum - prev) / interval);
        prev = cum;
    }
    double rest = (double)span_ns / 1e9 - (double)ticks * interval;
    if (rest >= interval / 10 && total > prev)
        fprintf(results, "T\t%s\t%.3f\t%.1f\n", label, (double)span_ns / 1e9, (double)(total - prev) / rest);
}

/* Runs a workload on `readers` threads (+ one writer for readwhilewriting),
 * prints its row and returns the merged outcome in *total. */
static void run_threads(struct run *r, const struct workload *wl, unsigned nthreads, const char *label,
                        struct worker *total)
{
    int rww = wl->fn == wl_readwhilewriting;
    unsigned n = nthreads + (rww ? 1 : 0);
    struct worker *ws = calloc(n, sizeof *ws);
    if (!ws) {
        fprintf(stderr, "tind-bench: out of memory\n");
        exit(1);
    }
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, n + 1);
    atomic_store(&r->stop, 0);
    size_t npieces = F.value_size ? r->values.size / F.value_size : 1;
    uint64_t salt = salt_of(wl->name) ^ mix64(r->ordinal);
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &ws[i];
        w->r = r;
        w->wl = wl;
        w->id = i;
        w->n = nthreads;
        w->writer = rww && i == nthreads;
        w->go = &go;
        rng_seed(&w->rng, F.seed, salt ^ mix64(i + 1));
        w->vpos = (mix64(salt + i) % npieces) * F.value_size;
        w->cap = F.value_size ? F.value_size : 1;
        if (!(w->buf = malloc(w->cap))) {
            fprintf(stderr, "tind-bench: out of memory\n");
            exit(1);
        }
        hist_init(&w->hist);
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            fprintf(stderr, "tind-bench: pthread_create failed\n");
            exit(1);
        }
    }
    r->t_base = now_ns(); /* before the barrier, which orders it before the threads' reads */
    pthread_barrier_wait(&go);
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < nthreads; i++) pthread_join(ws[i].th, NULL);
    uint64_t t1 = now_ns();
    if (rww) {
        atomic_store(&r->stop, 1);
        pthread_join(ws[nthreads].th, NULL);
    }
    pthread_barrier_destroy(&go);

    memset(total, 0, sizeof *total);
    hist_init(&total->hist);
    for (unsigned i = 0; i < nthreads; i++) {
        total->ops += ws[i].ops;
        total->bytes += ws[i].bytes;
        total->found += ws[i].found;
        total->user_bytes += ws[i].user_bytes;
        total->commits += ws[i].commits;
        total->conflicts += ws[i].conflicts;
        hist_merge(&total->hist, &ws[i].hist);
    }
    r->user_bytes += total->user_bytes;
    print_row(label, total->ops, (double)(t1 - t0) / 1e9, total->bytes, &total->hist, r->results);
    write_samples(r->results, label, ws, nthreads, t1 - r->t_base);
    if (rww) {
        struct worker *w = &ws[nthreads];
        r->user_bytes += w->user_bytes;
        char wlabel[64];
        snprintf(wlabel, sizeof wlabel, "%s (writer)", label);
        print_row(wlabel, w->ops, (double)(w->t_end - w->t_start) / 1e9, w->bytes, &w->hist, r->results);
        write_samples(r->results, wlabel, w, 1, w->t_end - r->t_base);
    }
    for (unsigned i = 0; i < n; i++) {
        free(ws[i].buf);
        free(ws[i].samples);
    }
    free(ws);
}

static void step_flush(struct run *r)
{
    if (!r->ops->flush) {
        printf("%-26s (%s has no flush)\n", "flush", r->ops->name);
        return;
    }
    uint64_t t0 = now_ns();
    check(r->ops->flush(r->store), "flush");
    for (size_t i = 0; i < r->nbstores; i++) check(r->ops->flush(r->bstore[i]), "flush");
    char label[48];
    snprintf(label, sizeof label, "flush (%zu store%s)", r->nbstores + 1, r->nbstores ? "s" : "");
    print_row(label, r->nbstores + 1, (double)(now_ns() - t0) / 1e9, 0, NULL, NULL);
}

static void step_stats(struct run *r)
{
    if (r->ops->report) {
        printf("%s statistics:\n", r->ops->name);
        r->ops->report(r->e, stdout);
        fflush(stdout);
    }
}

/* How long compaction takes to catch up once the writes stop: polls the
 * engine every 10 ms until level 0 is under its compaction trigger, then
 * until no flush or compaction runs or is due, for at most SETTLE_MAX_S. */
#define SETTLE_MAX_S 900

static void step_settle(struct run *r)
{
    if (!r->ops->compaction) {
        printf("%-26s (%s has no compaction)\n", "settle", r->ops->name);
        return;
    }
    struct engine_compaction c;
    check(r->ops->compaction(r->e, &c), "compaction state");
    uint64_t l0_start = c.l0_files, t0 = now_ns(), t_l0 = 0, t_idle = 0;
    int have_l0 = 0, have_idle = 0;
    for (;;) {
        uint64_t t = now_ns() - t0;
        if (!have_l0 && c.l0_files < c.l0_trigger) {
            have_l0 = 1;
            t_l0 = t;
        }
        if (have_l0 && !c.busy) {
            have_idle = 1;
            t_idle = t;
            break;
        }
        if (t > (uint64_t)SETTLE_MAX_S * 1000000000u) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        check(r->ops->compaction(r->e, &c), "compaction state");
    }
    char l0[64], idle[64];
    if (have_l0) snprintf(l0, sizeof l0, "after %.2f s", (double)t_l0 / 1e9);
    else snprintf(l0, sizeof l0, "not within %d s", SETTLE_MAX_S);
    if (have_idle) snprintf(idle, sizeof idle, "after %.2f s", (double)t_idle / 1e9);
    else snprintf(idle, sizeof idle, "not within %d s", SETTLE_MAX_S);
    printf("%-26s level 0: %llu tables when %s stopped, under its trigger (%llu) %s; compaction idle %s\n", "settle",
           (unsigned long long)l0_start, r->last, (unsigned long long)c.l0_trigger, l0, idle);
    if (r->results) {
        if (have_l0)
            fprintf(r->results, "S\tlevel 0 under its trigger after %s (s)\t%.3f\n", r->last, (double)t_l0 / 1e9);
        if (have_idle)
            fprintf(r->results, "S\tcompaction idle after %s (s)\t%.3f\n", r->last, (double)t_idle / 1e9);
    }
    fflush(stdout);
}

static void step_reopen(struct run *r)
{
    uint64_t t0 = now_ns();
    engine_close(r);
    engine_open(r);
    print_row("reopen", 1, (double)(now_ns() - t0) / 1e9, 0, NULL, NULL);
}

/* Live data by a full scan of every store, and the directory's size. */
static void measure_space(struct run *r, const char *after)
{
    uint64_t live = 0, keys = 0;
    for (size_t i = 0; i <= r->nbstores; i++) {
        struct engine_store *s = i == 0 ? r->store : r->bstore[i - 1];
        struct engine_iter *it;
        check(r->ops->iter_new(s, &it), "iterator");
        for (r->ops->iter_first(it); r->ops->iter_valid(it); r->ops->iter_next(it)) {
            size_t kl, vl;
            r->ops->iter_key(it, &kl);
            r->ops->iter_value(it, &vl);
            live += kl + vl;
            keys++;
        }
        check(r->ops->iter_status(it), "iterator");
        r->ops->iter_free(it);
    }
    r->have_space = 1;
    r->space_disk = dir_bytes(r->cfg.dir);
    r->space_live = live;
    r->space_keys = keys;
    snprintf(r->space_after, sizeof r->space_after, "%s", after);
}

static void print_space(const struct run *r)
{
    printf("%-26s %.1f MB on disk for %.1f MB live in %llu keys (after %s): %.2f\n", "space amplification",
           (double)r->space_disk / 1e6, (double)r->space_live / 1e6, (unsigned long long)r->space_keys,
           r->space_after, r->space_live ? (double)r->space_disk / (double)r->space_live : 0.0);
    fflush(stdout);
}

static void step_space(struct run *r)
{
    measure_space(r, r->last);
    print_space(r);
}

static const struct workload workloads[] = {
    {"fillseq", wl_fillseq, NULL, 1},
    {"fillrandom", wl_fillrandom, NULL, 1},
    {"overwrite", wl_overwrite, NULL, 0},
    {"fillbatch", wl_fillbatch, NULL, 1},
    {"fillsync", wl_fillsync, NULL, 0},
    {"readrandom", wl_readrandom, NULL, 0},
    {"readmissing", wl_readmissing, NULL, 0},
    {"readhot", wl_readhot, NULL, 0},
    {"seekrandom", wl_seekrandom, NULL, 0},
    {"readseq", wl_readseq, NULL, 0},
    {"readreverse", wl_readreverse, NULL, 0},
    {"readwhilewriting", wl_readwhilewriting, NULL, 0},
    {"deleterandom", wl_deleterandom, NULL, 0},
    {"ycsba", wl_ycsba, NULL, 0},
    {"ycsbb", wl_ycsbb, NULL, 0},
    {"ycsbc", wl_ycsbc, NULL, 0},
    {"ycsbd", wl_ycsbd, NULL, 0},
    {"ycsbe", wl_ycsbe, NULL, 0},
    {"ycsbf", wl_ycsbf, NULL, 0},
    {"ycsbtx", wl_ycsbtx, NULL, 0},
    {"flush", NULL, step_flush, 0},
    {"stats", NULL, step_stats, 0},
    {"settle", NULL, step_settle, 0},
    {"reopen", NULL, step_reopen, 0},
    {"space", NULL, step_space, 0},
};

static const struct workload *workload_find(const char *name)
{
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (!strcmp(workloads[i].name, name)) return &workloads[i];
    return NULL;
}

/* A workload that should have found every key did not: an engine lost data
 * or answered wrongly, and its numbers mean nothing. */
static void expect(int ok, const char *label, const char *what, uint64_t got, uint64_t want)
{
    if (ok) return;
    fflush(stdout);
    fprintf(stderr, "tind-bench: %s: %s %llu, expected %llu\n", label, what, (unsigned long long)got,
            (unsigned long long)want);
    exit(1);
}

static void run_workload(struct run *r, const struct workload *wl)
{
    r->ordinal++;
    if (!wl->fn) {
        wl->step(r);
        return;
    }
    if (wl->fresh && F.fresh) {
        engine_close(r);
        remove_tree(r->cfg.dir);
        engine_open(r);
        r->all_present = 0;
        atomic_store(&r->inserted, 0);
    }
    settle(r);
    int needs_zipf = !strcmp(wl->name, "readhot") || !strncmp(wl->name, "ycsb", 4);
    if (needs_zipf && !r->have_zipf) {
        zipf_init(&r->zipf, F.num, F.zipf_theta);
        r->have_zipf = 1;
    }
    char label[48];
    struct worker total;
    const char *name = wl->name;
    if (wl->fn == wl_fillsync) {
        /* Once on one thread, once on several: the second shows group commit. */
        unsigned counts[2] = {1, (unsigned)F.sync_threads};
        for (int k = 0; k < 2; k++) {
            struct engine_counters c0 = {0}, c1 = {0};
            int have = r->ops->counters && r->ops->counters(r->e, &c0) == ENGINE_OK;
            char base[48];
            snprintf(base, sizeof base, "fillsync (%u thread%s)", counts[k], counts[k] > 1 ? "s" : "");
            make_label(r, base, label, sizeof label);
            run_threads(r, wl, counts[k], label, &total);
            if (have && r->ops->counters(r->e, &c1) == ENGINE_OK)
                printf("%-26s %llu writes in %llu groups, %llu syncs\n", "",
                       (unsigned long long)(c1.writes - c0.writes), (unsigned long long)(c1.groups - c0.groups),
                       (unsigned long long)(c1.syncs - c0.syncs));
        }
        r->last = name;
        return;
    }
    if (wl->fn == wl_ycsbtx && !r->ops->tx_begin) {
        printf("%-26s (%s has no transactions)\n", name, r->ops->name);
        return;
    }
    make_label(r, name, label, sizeof label);
    run_threads(r, wl, (unsigned)F.threads, label, &total);
    r->last = name;
    if (wl->fn == wl_ycsbtx)
        printf("%-26s %llu transactions of %llu ops committed, %llu conflicts retried (conflict rate %.2f%%)\n", "",
               (unsigned long long)total.commits, (unsigned long long)F.tx_ops, (unsigned long long)total.conflicts,
               total.commits + total.conflicts
                   ? 100.0 * (double)total.conflicts / (double)(total.commits + total.conflicts)
                   : 0.0);

    uint64_t present = F.num + atomic_load(&r->inserted);
    if (wl->fn == wl_fillseq || wl->fn == wl_fillrandom || (wl->fn == wl_fillbatch && !r->nbstores))
        r->all_present = 1;
    else if (wl->fn == wl_deleterandom)
        r->all_present = 0;
    else if (wl->fn == wl_readmissing)
        expect(total.found == 0, label, "found never-written keys:", total.found, 0);
    else if (r->all_present && (wl->fn == wl_readrandom || wl->fn == wl_readhot || wl->fn == wl_ycsbc))
        expect(total.found == total.ops, label, "found", total.found, total.ops);
    else if (r->all_present && (wl->fn == wl_readseq || wl->fn == wl_readreverse))
        expect(total.ops == present * F.threads, label, "scanned", total.ops, present * F.threads);
}

static void split_list(char *list, char **items, size_t cap, size_t *n)
{
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (*n < cap) items[(*n)++] = tok;
}

/* Runs the benchmarks on one engine in this process. */
static int run_engine(const struct engine_ops *ops, int argc, char **argv)
{
    struct run *r = calloc(1, sizeof *r);
    if (!r) return 1;
    r->ops = ops;
    r->last = "start";
    r->reads = F.reads ? F.reads : F.num;
    r->seeks = F.seeks ? F.seeks : (F.num / 10 ? F.num / 10 : 1);
    r->ycsb_ops = F.ycsb_ops ? F.ycsb_ops : F.num;
    r->nbstores = F.batch_stores > 1 ? (size_t)F.batch_stores : 0;
    for (size_t i = 0; i < r->nbstores; i++) snprintf(r->bnames[i], sizeof r->bnames[i], "batch%zu", i);
    if (values_init(&r->values, F.value_size, F.compression_ratio, F.seed)) return 1;
    r->cfg = (struct engine_config){
        .own_defaults = !strcmp(F.peer_config, "defaults"),
        .dir = F.db,
        .cache_bytes = F.cache_mb << 20,
        .write_buffer_bytes = F.write_buffer_mb << 20,
        .block_size = (uint32_t)F.block_size,
        .bloom_bits = (int)F.bloom_bits,
        .compression = F.compression != 0,
        .workers = (int)F.workers,
        .parallel_writes = F.parallel_writes != 0,
    };
    /* LMDB's map must hold the whole tree: room for 8 copies of the data set with page overhead. */
    uint64_t map = F.map_mb << 20;
    if (!map) {
        map = 8 * (F.num + r->ycsb_ops + r->seeks) * (F.key_size + F.value_size + 64);
        if (map < (UINT64_C(1) << 30)) map = UINT64_C(1) << 30;
    }
    r->cfg.map_bytes = map;

    if (F.results && !(r->results = fopen(F.results, "w"))) {
        fprintf(stderr, "tind-bench: cannot write %s: %s\n", F.results, strerror(errno));
        return 1;
    }
    char *list = strdup(F.benchmarks ? F.benchmarks : "");
    char *names[128];
    size_t nnames;
    split_list(list, names, 128, &nnames);

    if (!F.results) {
        machine_describe(stdout, "", F.db);
        printf("command: ");
        for (int i = 0; i < argc; i++) printf("%s%s", argv[i], i + 1 < argc ? " " : "\n");
    }
    char wb[64];
    if (r->cfg.own_defaults) snprintf(wb, sizeof wb, "the engine's own write buffer and block size");
    else snprintf(wb, sizeof wb, "write buffer %llu MiB", (unsigned long long)F.write_buffer_mb);
    printf("%s %s (%s): %llu keys of %llu bytes, values of %llu bytes (compressible to %.2f), %llu thread%s; "
           "cache %llu MiB, %s, bloom %llu bits/key, compression %s; database %s\n",
           ops->name, ops->version(), F.peer_config, (unsigned long long)F.num, (unsigned long long)F.key_size,
           (unsigned long long)F.value_size, F.compression_ratio, (unsigned long long)F.threads,
           F.threads > 1 ? "s" : "", (unsigned long long)F.cache_mb, wb, (unsigned long long)F.bloom_bits,
           F.compression ? "on" : "off", F.db);
    fflush(stdout);
    if (r->results) {
        fprintf(r->results, "V\t%s\t%s\n", ops->version(), ops->lsm ? "lsm" : "other");
        fprintf(r->results, "N\t%llu\n", (unsigned long long)F.num);
    }

    struct proc_io io0 = {0}, io1 = {0};
    int have_io = proc_io_read(&io0) == 0;
    if (F.use_existing) F.fresh = 0;
    else remove_tree(F.db);
    make_parents(F.db);
    engine_open(r);
    for (size_t i = 0; i < nnames; i++) run_workload(r, workload_find(names[i]));

    if (!r->have_space) measure_space(r, r->last);
    /* The memtables' peak since the last open (a fresh fill reopens). */
    struct engine_counters mc = {0};
    if (!r->ops->counters || r->ops->counters(r->e, &mc) != ENGINE_OK) mc.memtable_peak_bytes = 0;
    engine_close(r);
    have_io = have_io && proc_io_read(&io1) == 0;

    printf("\n");
    double wamp = 0;
    if (have_io && r->user_bytes) {
        /* Every byte the engine wrote to its files counts, including those of
         * files deleted before the kernel wrote them back: whether a journal
         * reaches the disk before it is retired depends on the page cache's
         * timing, not on the engine's design, so the gross figure is the one
         * compared; the dropped bytes are shown beside it. */
        uint64_t disk = io1.write_bytes - io0.write_bytes;
        wamp = (double)disk / (double)r->user_bytes;
        printf("%-26s %.1f MB written to files for %.1f MB of user writes (%.1f MB of them deleted before "
               "writeback): %.2f\n",
               "write amplification", (double)disk / 1e6, (double)r->user_bytes / 1e6,
               (double)(io1.cancelled_write_bytes - io0.cancelled_write_bytes) / 1e6, wamp);
    } else if (!have_io) {
        printf("%-26s /proc/self/io is unreadable\n", "write amplification");
    }
    print_space(r);
    double rss = (double)peak_rss_bytes() / (1024.0 * 1024.0);
    /* Beside the cache and the memtables at their fullest, what the rest
     * of the process took (engines that tell their memtables' peak). */
    double other = -1;
    if (mc.memtable_peak_bytes) {
        other = rss - (double)(r->cfg.cache_bytes + mc.memtable_peak_bytes) / (1024.0 * 1024.0);
        printf("%-26s %.1f MiB: cache %.1f MiB, memtables at most %.1f MiB, the rest %.1f MiB\n", "peak RSS", rss,
               (double)r->cfg.cache_bytes / (1024.0 * 1024.0), (double)mc.memtable_peak_bytes / (1024.0 * 1024.0),
               other);
    } else {
        printf("%-26s %.1f MiB\n", "peak RSS", rss);
    }
    if (r->results) {
        if (have_io && r->user_bytes) fprintf(r->results, "S\twrite amplification\t%.3f\n", wamp);
        if (r->space_live)
            fprintf(r->results, "S\tspace amplification\t%.3f\n", (double)r->space_disk / (double)r->space_live);
        fprintf(r->results, "S\tpeak RSS (MiB)\t%.1f\n", rss);
        if (other > -1) fprintf(r->results, "S\tpeak RSS past cache + memtables (MiB)\t%.1f\n", other);
        fclose(r->results);
    }
    values_free(&r->values);
    free(list);
    free(r);
    return 0;
}

/* What each configuration means, above its tables. */
static const char *config_meaning(const char *mode)
{
    if (!strcmp(mode, "defaults"))
        return "each engine at its own defaults (write buffer, table and block size, background threads, "
               "compressor), with the same block cache and bloom filter";
    return "every LSM engine with the same memtable, block size, background threads and LZ4 (Snappy for LevelDB)";
}

/* Runs this program once per configuration and engine, each with
 * --peer-config=C --engine=E --db=DIR/C/E and a results file DIR/C/E.results,
 * lists the results files in DIR/results.index ("<config> <engine> <path>",
 * tab-separated, in run order, for bench/charts.sh), then prints one
 * comparison per configuration. */
static int run_several(char **engines, size_t n, char **modes, size_t nmodes, int argc, char **argv)
{
    if (n > TABLE_ENGINES) {
        fprintf(stderr, "tind-bench: at most %d engines\n", TABLE_ENGINES);
        return 2;
    }
    make_parents(F.db);
    mkdir(F.db, 0755);
    machine_describe(stdout, "", F.db);
    printf("command: ");
    for (int i = 0; i < argc; i++) printf("%s%s", argv[i], i + 1 < argc ? " " : "\n");
    fflush(stdout);

    char index_path[4200];
    snprintf(index_path, sizeof index_path, "%s/results.index", F.db);
    FILE *index = fopen(index_path, "w");
    if (!index) {
        fprintf(stderr, "tind-bench: cannot write %s: %s\n", index_path, strerror(errno));
        return 1;
    }
    static struct table t[MAX_CONFIGS];
    int failed = 0;
    for (size_t m = 0; m < nmodes; m++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%s", F.db, modes[m]);
        mkdir(dir, 0755);
        for (size_t k = 0; k < n; k++) {
            t[m].engines[t[m].nengines++] = engines[k];
            char dbflag[4300], results[4300], resflag[4400], engflag[128], cfgflag[64];
            snprintf(dbflag, sizeof dbflag, "--db=%s/%s", dir, engines[k]);
            snprintf(results, sizeof results, "%s/%s.results", dir, engines[k]);
            snprintf(resflag, sizeof resflag, "--results=%s", results);
            snprintf(engflag, sizeof engflag, "--engine=%s", engines[k]);
            snprintf(cfgflag, sizeof cfgflag, "--peer-config=%s", modes[m]);
            remove(results);
            fprintf(index, "%s\t%s\t%s\n", modes[m], engines[k], results);
            fflush(index);
            char **av = calloc((size_t)argc + 5, sizeof *av);
            if (!av) return 1;
            for (int i = 0; i < argc; i++) av[i] = argv[i];
            av[argc] = engflag;
            av[argc + 1] = dbflag;
            av[argc + 2] = resflag;
            av[argc + 3] = cfgflag;
            printf("\n== %s (%s)\n", engines[k], modes[m]);
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                execv("/proc/self/exe", av);
                fprintf(stderr, "tind-bench: exec: %s\n", strerror(errno));
                _exit(127);
            }
            free(av);
            int status = 0;
            if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                t[m].failed[k] = 1;
                failed = 1;
                if (pid > 0 && WIFSIGNALED(status))
                    printf("== %s (%s) FAILED: killed by signal %d\n", engines[k], modes[m], WTERMSIG(status));
                else
                    printf("== %s (%s) FAILED: exit status %d\n", engines[k], modes[m],
                           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            }
            table_load(&t[m], k, results);
        }
    }
    fclose(index);
    for (size_t m = 0; m < nmodes; m++) {
        printf("\n## %s: %s\n\n", modes[m], config_meaning(modes[m]));
        table_print(&t[m], stdout);
    }
    return failed;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: tind-bench [--flag=value ...]\n\nflags:\n");
    for (size_t i = 0; i < sizeof flagdefs / sizeof flagdefs[0]; i++)
        if (flagdefs[i].help) fprintf(out, "  --%-18s %s\n", flagdefs[i].name, flagdefs[i].help);
    fprintf(out, "\nworkloads:");
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) fprintf(out, " %s", workloads[i].name);
    fprintf(out, "\nengines in this binary:");
    for (size_t i = 0; engine_list[i]; i++) fprintf(out, " %s", engine_list[i]->name);
    fprintf(out, "\n");
}

int main(int argc, char **argv)
{
    int explicit = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strncmp(argv[i], "--benchmarks=", 13) || !strncmp(argv[i], "--preset=", 9)) explicit = 1;
    }
    if (!explicit && apply_preset("quick")) return 2;
    for (int i = 1; i < argc; i++)
        if (parse_flag(argv[i])) {
            usage(stderr);
            return 2;
        }

    /* Check everything before any engine starts. */
    if (F.num == 0 || F.threads == 0 || F.sync_threads == 0 || F.batch_size == 0 || F.key_size == 0 ||
        F.threads > 256 || F.sync_threads > 256 || F.batch_stores > MAX_STORES) {
        fprintf(stderr, "tind-bench: --num, --threads, --sync-threads, --batch-size and --key-size must be positive; "
                        "at most 256 threads and %d batch stores\n", MAX_STORES);
        return 2;
    }
    uint64_t extra = (F.ycsb_ops ? F.ycsb_ops : F.num) + (F.seeks ? F.seeks : F.num / 10);
    if (!keys_fit(F.num + extra, F.key_size)) {
        fprintf(stderr, "tind-bench: %llu keys (and YCSB inserts) do not fit in %llu-byte decimal keys\n",
                (unsigned long long)F.num, (unsigned long long)F.key_size);
        return 2;
    }
    char *blist = strdup(F.benchmarks ? F.benchmarks : "");
    char *names[128];
    size_t nnames;
    split_list(blist, names, 128, &nnames);
    for (size_t i = 0; i < nnames; i++)
        if (!workload_find(names[i])) {
            fprintf(stderr, "tind-bench: unknown workload %s\n", names[i]);
            usage(stderr);
            return 2;
        }
    free(blist);

    char *elist = strdup(F.engine);
    char *engines[TABLE_ENGINES + 1];
    size_t nengines;
    split_list(elist, engines, TABLE_ENGINES + 1, &nengines);
    for (size_t i = 0; i < nengines; i++)
        if (!engine_find(engines[i])) {
            fprintf(stderr, "tind-bench: engine %s is not in this binary (%s)%s\n", engines[i], argv[0],
                    strcmp(engines[i], "tind") ? "; peers are in build/tind-bench-peers (make bench-peers)" : "");
            return 2;
        }
    if (nengines == 0) {
        fprintf(stderr, "tind-bench: no engine\n");
        return 2;
    }
    char *mlist = strdup(F.peer_config);
    char *modes[MAX_CONFIGS + 1];
    size_t nmodes;
    split_list(mlist, modes, MAX_CONFIGS + 1, &nmodes);
    for (size_t i = 0; i < nmodes; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(modes[i], modes[j])) nmodes = 0;
    if (nmodes == 0 || nmodes > MAX_CONFIGS) goto bad_config;
    for (size_t i = 0; i < nmodes; i++)
        if (strcmp(modes[i], "equalized") && strcmp(modes[i], "defaults")) goto bad_config;
    int rc = nengines > 1 || nmodes > 1 ? run_several(engines, nengines, modes, nmodes, argc, argv)
                                        : run_engine(engine_find(engines[0]), argc, argv);
    free(mlist);
    free(elist);
    return rc;
bad_config:
    fprintf(stderr, "tind-bench: --peer-config=%s: equalized, defaults, or both comma-separated\n", F.peer_config);
    return 2;
}
