/* The fault loops' workload and oracle (see fault_workload.h). */
#include "tests/support/fault_workload.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/testutil.h"

static const char *const ks_names[FW_KEYSPACES] = {"a", "b", "c"};

/* A fixed seed: every point of a loop runs the same workload. */
#define FW_SEED UINT64_C(0x10e44a11f0a17)

uint64_t fw_env_count(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : 0;
}

int fw_run_init(struct fw_run *run, const char *tag, unsigned workers)
{
    memset(run, 0, sizeof *run);
    uint64_t w = fw_env_count("TIND_FAULT_WORKERS");
    run->workers = w ? (unsigned)w : workers;
    const char *base = getenv("TIND_FAULT_DIR");
    struct stat st;
    if (!base || !*base) base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                                    ? "/dev/shm"
                                    : NULL;
    if (!base) base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(run->dir, sizeof run->dir, "%s/tind-%s-XXXXXX", base, tag);
    return mkdtemp(run->dir) ? 0 : -1;
}

void fw_run_cleanup(struct fw_run *run)
{
    if (run->dir[0]) tu_rmtree(run->dir);
}

static void problem(struct fw_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct fw_run *run, const char *fmt, ...)
{
    if (run->problem[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run->problem, sizeof run->problem, fmt, ap);
    va_end(ap);
}

/* Records and judges a failed call. */
static void failed(struct fw_run *run, fw_check_fn check, const char *what, int rc)
{
    const char *msg = tind_last_error();
    if (run->failures++ == 0) {
        run->first_rc = rc;
        snprintf(run->first_msg, sizeof run->first_msg, "%s: %s: %s", what, tind_strerror(rc), msg);
    }
    check(run, what, rc, msg);
    /* A failed write or sync of a journal or manifest poisons the database
     * for the session (removing one, say in a drop, does not);
     * a keyspace whose creation failed has no manifest in use, and a failed
     * open or close has no session after it. */
    int session_call = strcmp(what, "tind_open") && strcmp(what, "tind_keyspace_open") && strcmp(what, "tind_close");
    int write_or_sync = strstr(msg, "write ") || strstr(msg, "sync ") || strstr(msg, "rename to ");
    if (session_call && write_or_sync && (strstr(msg, "/journals/") || strstr(msg, "/MANIFEST")))
        run->poison_expected = 1;
}

/* A call returned TIND_OK: no failure that a call must report may have
 * happened unheard before it (fw_unheard_fn): no sync is retried, so once
 * one failed unreported, a later one could succeed without the lost pages
 * and acknowledge writes over them. */
static void succeeded(struct fw_run *run, const char *what)
{
    char w[600];
    if (run->failures == 0 && run->unheard && run->unheard(w, sizeof w))
        problem(run, "%s returned TIND_OK after the failed %s, and no caller had heard of a failure", what, w);
}

/* Records a call's outcome. */
static void called(struct fw_run *run, fw_check_fn check, const char *what, int rc)
{
    if (rc) failed(run, check, what, rc);
    else succeeded(run, what);
}

/* ---- values: an entry and op number, then bytes derived from them ---------------------------------------- */

#define FW_VALUE_MAX 2048

static uint64_t value_seed(size_t entry, size_t op) { return FW_SEED ^ ((uint64_t)entry << 16 | op); }

static void value_make(uint8_t *v, uint32_t vlen, size_t entry, size_t op)
{
    v[0] = (uint8_t)entry;
    v[1] = (uint8_t)(entry >> 8);
    v[2] = (uint8_t)op;
    v[3] = (uint8_t)(op >> 8);
    tu_fill(v + 4, vlen - 4, value_seed(entry, op));
}

static int key_make(char *k, unsigned key) { return snprintf(k, 16, "key-%05u", key); }

/* ---- the workload ---------------------------------------------------------------------------------------- */

struct session {
    struct fw_run *run;
    fw_check_fn check;
    tind_db *db;
    tind_keyspace *ks[FW_KEYSPACES];
    uint64_t rng;
};

static void ks_options(unsigned i, tind_keyspace_options *o)
{
    tind_keyspace_options_init(o);
    o->memtable_bytes = 64u << 10;
    o->max_sealed_memtables = 2;
    o->table_target_bytes = 64u << 10;
    o->block_size = 1024;
    o->l0_trigger = 2;
    switch (i) {
    case 0:
        o->durability = TIND_DURABILITY_SYNC_DATA;
        break;
    case 1:
        o->compaction = TIND_COMPACTION_TIERED;
        o->tier_width = 2;
        for (int l = 0; l < TIND_LEVELS; l++) o->compression[l] = TIND_COMPRESSION_ZSTD;
        break;
    default:
        o->compression[0] = TIND_COMPRESSION_NONE;
        break;
    }
}

static int open_db(struct session *s)
{
    tind_options o;
    tind_options_init(&o);
    o.workers = s->run->workers;
    o.journal_max_bytes = FW_JOURNAL_MAX_BYTES;
    o.journal_total_max_bytes = FW_JOURNAL_TOTAL_MAX_BYTES;
    o.cache_bytes = 128u << 10;
    int rc = tind_open(s->run->dir, &o, &s->db);
    if (rc) s->db = NULL;
    called(s->run, s->check, "tind_open", rc);
    return rc;
}

static void open_ks(struct session *s, unsigned i)
{
    tind_keyspace_options o;
    ks_options(i, &o);
    int rc = tind_keyspace_open(s->db, ks_names[i], &o, &s->ks[i]);
    if (rc) s->ks[i] = NULL;
    called(s->run, s->check, "tind_keyspace_open", rc);
}

/* After a journal or manifest failure, every write must say TIND_POISONED. */
static void expect_poisoned(struct session *s, const char *what, int rc)
{
    if (s->run->poison_expected && rc != TIND_POISONED)
        problem(s->run, "%s after a journal or manifest failure returned %s (%s), not TIND_POISONED", what,
                tind_strerror(rc), tind_last_error());
}

static int writes_stopped(const struct session *s)
{
    return s->run->nunknown >= FW_MAX_UNKNOWN || s->run->nhist >= FW_MAX_ENTRIES;
}

static void entry_done(struct session *s, struct fw_entry *e, const char *what, int rc)
{
    expect_poisoned(s, what, rc);
    if (rc == TIND_OK) {
        e->status = FW_ACKED;
        succeeded(s->run, what);
        struct tind_db_stats ds;
        if (s->run->want_stats && tind_db_stats(s->db, &ds) == TIND_OK && ds.journal_bytes > s->run->journal_bytes_max)
            s->run->journal_bytes_max = ds.journal_bytes;
    } else {
        e->status = rc == TIND_POISONED ? FW_REFUSED : FW_UNKNOWN;
        if (e->status == FW_UNKNOWN) s->run->nunknown++;
        failed(s->run, s->check, what, rc);
    }
}

/* One batch of 1 to FW_MAX_OPS ops over the keyspaces in mask (those open). */
static void batch(struct session *s, unsigned mask, int durability)
{
    struct fw_op ops[FW_MAX_OPS];
    size_t n = 1 + (size_t)tu_below(&s->rng, FW_MAX_OPS), kept = 0;
    for (size_t i = 0; i < n; i++) {
        struct fw_op op;
        do op.ks = (uint8_t)tu_below(&s->rng, FW_KEYSPACES);
        while (!(mask & (1u << op.ks)));
        op.key = (uint16_t)tu_below(&s->rng, FW_KEYS);
        op.del = tu_below(&s->rng, 8) == 0;
        op.vlen = 4 + (uint32_t)(tu_below(&s->rng, 8) == 0 ? tu_below(&s->rng, FW_VALUE_MAX - 4)
                                                           : 200 + tu_below(&s->rng, 1000));
        if (s->ks[op.ks]) ops[kept++] = op;
    }
    if (!s->db || kept == 0 || writes_stopped(s)) return;
    size_t idx = s->run->nhist++;
    struct fw_entry *e = &s->run->hist[idx];
    e->drop_ks = -1;
    e->nops = kept;
    memcpy(e->ops, ops, kept * sizeof *ops);
    e->status = FW_REFUSED;

    uint8_t v[FW_VALUE_MAX];
    char k[16];
    if (kept == 1 && durability == TIND_DURABILITY_BUFFERED) {
        /* The single-write path: tind_put / tind_delete. */
        const struct fw_op *op = &e->ops[0];
        int kl = key_make(k, op->key), rc;
        if (op->del) {
            rc = tind_delete(s->ks[op->ks], k, (size_t)kl);
        } else {
            value_make(v, op->vlen, idx, 0);
            rc = tind_put(s->ks[op->ks], k, (size_t)kl, v, op->vlen);
        }
        entry_done(s, e, op->del ? "tind_delete" : "tind_put", rc);
        return;
    }
    tind_batch *b;
    int rc = tind_batch_new(&b);
    called(s->run, s->check, "tind_batch_new", rc);
    if (rc) return;
    for (size_t i = 0; i < kept && rc == TIND_OK; i++) {
        const struct fw_op *op = &e->ops[i];
        int kl = key_make(k, op->key);
        if (op->del) {
            rc = tind_batch_delete(b, s->ks[op->ks], k, (size_t)kl);
        } else {
            value_make(v, op->vlen, idx, i);
            rc = tind_batch_put(b, s->ks[op->ks], k, (size_t)kl, v, op->vlen);
        }
    }
    if (rc) {
        failed(s->run, s->check, "tind_batch_put", rc);
    } else {
        rc = tind_batch_commit(s->db, b, durability);
        entry_done(s, e, "tind_batch_commit", rc);
    }
    tind_batch_free(b);
}

static void flush(struct session *s, unsigned i)
{
    if (!s->ks[i]) return;
    int rc = tind_keyspace_flush(s->ks[i]);
    expect_poisoned(s, "tind_keyspace_flush", rc);
    called(s->run, s->check, "tind_keyspace_flush", rc);
}

static void compact(struct session *s, unsigned i)
{
    if (!s->ks[i]) return;
    int rc = tind_keyspace_compact(s->ks[i]);
    called(s->run, s->check, "tind_keyspace_compact", rc);
}

static void drop(struct session *s, unsigned i)
{
    if (!s->db || !s->ks[i] || writes_stopped(s)) return;
    size_t idx = s->run->nhist++;
    struct fw_entry *e = &s->run->hist[idx];
    e->drop_ks = (int)i;
    e->nops = 0;
    int rc = tind_keyspace_drop(s->db, ks_names[i]);
    entry_done(s, e, "tind_keyspace_drop", rc);
    s->ks[i] = NULL;
}

/* Before a close: a session that reported a journal or manifest failure
 * must refuse a write. */
static void probe_poisoned(struct session *s)
{
    if (!s->run->poison_expected || !s->ks[0] || writes_stopped(s)) return;
    size_t idx = s->run->nhist++;
    struct fw_entry *e = &s->run->hist[idx];
    e->drop_ks = -1;
    e->nops = 1;
    e->ops[0] = (struct fw_op){.ks = 0, .key = 0, .vlen = 16};
    uint8_t v[16];
    char k[16];
    int kl = key_make(k, 0);
    value_make(v, 16, idx, 0);
    int rc = tind_put(s->ks[0], k, (size_t)kl, v, sizeof v);
    entry_done(s, e, "tind_put (probe)", rc);
}

static void gather_stats(struct session *s)
{
    struct fw_run *run = s->run;
    struct tind_db_stats ds;
    if (tind_db_stats(s->db, &ds) == TIND_OK && ds.journal_files > run->journal_files_max)
        run->journal_files_max = ds.journal_files;
    for (unsigned i = 0; i < FW_KEYSPACES; i++) {
        struct tind_keyspace_stats st;
        if (!s->ks[i] || tind_keyspace_stats(s->ks[i], &st) != TIND_OK) continue;
        run->flushes += st.flushes;
        run->compactions += st.compactions;
        uint64_t tables = 0;
        for (int l = 0; l < TIND_LEVELS; l++) tables += st.tables[l];
        if (tables > run->tables_max) run->tables_max = tables;
    }
}

static void close_db(struct session *s)
{
    if (!s->db) return;
    probe_poisoned(s);
    if (s->run->want_stats) gather_stats(s);
    int rc = tind_close(s->db);
    called(s->run, s->check, "tind_close", rc);
    s->db = NULL;
    memset(s->ks, 0, sizeof s->ks);
    s->run->poison_expected = 0;
}

void fw_workload(struct fw_run *run, fw_check_fn check)
{
    struct session s = {.run = run, .check = check, .rng = FW_SEED};
    /* $TIND_FAULT_SCALE multiplies the batches (1 to 10; default 1). */
    uint64_t sc = fw_env_count("TIND_FAULT_SCALE");
    int scale = sc >= 1 && sc <= 10 ? (int)sc : 1;
    const int sync = TIND_DURABILITY_SYNC_DATA, buffered = TIND_DURABILITY_BUFFERED;
    if (open_db(&s)) goto stop;
    open_ks(&s, 0);
    open_ks(&s, 1);
    for (int i = 0; i < 40 * scale; i++) batch(&s, 3, i % 3 == 0 ? sync : buffered);
    flush(&s, 0);
    for (int i = 0; i < 30 * scale; i++) batch(&s, 3, i % 4 == 0 ? sync : buffered);
    compact(&s, 0);
    compact(&s, 1);
    open_ks(&s, 2);
    for (int i = 0; i < 4 * scale; i++) batch(&s, 5, buffered);
    drop(&s, 2);
    open_ks(&s, 2);
    for (int i = 0; i < 4 * scale; i++) batch(&s, 7, i % 2 ? sync : buffered);
    if (s.db) {
        int rc = tind_persist(s.db, sync);
        expect_poisoned(&s, "tind_persist", rc);
        called(run, check, "tind_persist", rc);
    }
    close_db(&s);

    if (open_db(&s)) goto stop;
    for (unsigned i = 0; i < FW_KEYSPACES; i++) open_ks(&s, i);
    for (int i = 0; i < 16 * scale; i++) batch(&s, 7, i % 2 ? sync : buffered);
    flush(&s, 1);
    compact(&s, 0);
    for (int i = 0; i < 4 * scale; i++) batch(&s, 7, buffered);
    close_db(&s);
    return;
stop:
    run->stopped = 1;
}

/* ---- the oracle ----------------------------------------------------------------------------------------- */

#define FW_ABSENT (-1L)

static long code(size_t entry, size_t op) { return (long)(entry << 8 | op); }

/* What the keyspaces hold when the acknowledged entries and the unknown ones
 * chosen by `pick` (bit i: the ith unknown entry) were applied. */
static void expected(const struct fw_run *run, uint32_t pick, long exp[FW_KEYSPACES][FW_KEYS])
{
    for (unsigned k = 0; k < FW_KEYSPACES; k++)
        for (unsigned i = 0; i < FW_KEYS; i++) exp[k][i] = FW_ABSENT;
    unsigned u = 0;
    for (size_t e = 0; e < run->nhist; e++) {
        const struct fw_entry *en = &run->hist[e];
        int applied = en->status == FW_ACKED;
        if (en->status == FW_UNKNOWN) applied = (pick >> u++) & 1;
        if (!applied) continue;
        if (en->drop_ks >= 0) {
            for (unsigned i = 0; i < FW_KEYS; i++) exp[en->drop_ks][i] = FW_ABSENT;
            continue;
        }
        for (size_t j = 0; j < en->nops; j++)
            exp[en->ops[j].ks][en->ops[j].key] = en->ops[j].del ? FW_ABSENT : code(e, j);
    }
}

/* Reads keyspace i into obs; 0, or -1 with why. */
static int observe(const struct fw_run *run, tind_db *db, unsigned i, long obs[FW_KEYS], char *why, size_t cap)
{
    for (unsigned k = 0; k < FW_KEYS; k++) obs[k] = FW_ABSENT;
    tind_keyspace *ks;
    int rc = tind_keyspace_open(db, ks_names[i], NULL, &ks);
    if (rc) {
        snprintf(why, cap, "keyspace_open %s after reopen: %s (%s)", ks_names[i], tind_strerror(rc), tind_last_error());
        return -1;
    }
    tind_iter *it;
    if ((rc = tind_iter_open(ks, NULL, NULL, &it)) != TIND_OK) {
        snprintf(why, cap, "iter_open %s: %s (%s)", ks_names[i], tind_strerror(rc), tind_last_error());
        return -1;
    }
    int bad = 0;
    for (tind_iter_seek_first(it); tind_iter_valid(it) && !bad; tind_iter_next(it)) {
        size_t kl, vl;
        const char *k = tind_iter_key(it, &kl);
        const uint8_t *v = tind_iter_value(it, &vl);
        unsigned key;
        char kb[16];
        if (kl != 9 || sscanf(k, "key-%05u", &key) != 1 || key >= FW_KEYS || key_make(kb, key) != 9 ||
            memcmp(kb, k, 9) != 0) {
            snprintf(why, cap, "keyspace %s holds a key never written: %s", ks_names[i], tu_hex(k, kl));
            bad = 1;
            break;
        }
        size_t entry = vl >= 4 ? (size_t)(v[0] | v[1] << 8) : 0, op = vl >= 4 ? (size_t)(v[2] | v[3] << 8) : 0;
        const struct fw_entry *en = entry < run->nhist ? &run->hist[entry] : NULL;
        if (!en || en->drop_ks >= 0 || op >= en->nops || en->ops[op].ks != i || en->ops[op].key != key ||
            en->ops[op].del || en->ops[op].vlen != vl || tu_check_fill(v + 4, vl - 4, value_seed(entry, op)) != vl - 4) {
            snprintf(why, cap, "keyspace %s key %u holds a wrong value (%zu bytes: %s)", ks_names[i], key, vl,
                     tu_hex(v, vl));
            bad = 1;
            break;
        }
        obs[key] = code(entry, op);
    }
    if (!bad && (rc = tind_iter_status(it)) != TIND_OK) {
        snprintf(why, cap, "iterating %s: %s (%s)", ks_names[i], tind_strerror(rc), tind_last_error());
        bad = 1;
    }
    tind_iter_close(it);
    return bad ? -1 : 0;
}

static void describe(long c, char *out, size_t cap)
{
    if (c == FW_ABSENT) snprintf(out, cap, "absent");
    else snprintf(out, cap, "batch %ld op %ld", c >> 8, c & 255);
}

int fw_verify(struct fw_run *run, char *why, size_t cap)
{
    why[0] = 0;
    tind_options o;
    tind_options_init(&o);
    o.workers = run->workers;
    tind_db *db;
    int rc = tind_open(run->dir, &o, &db);
    if (rc) {
        snprintf(why, cap, "reopen without faults: %s (%s)", tind_strerror(rc), tind_last_error());
        return -1;
    }
    static long obs[FW_KEYSPACES][FW_KEYS], exp[FW_KEYSPACES][FW_KEYS];
    int bad = 0;
    for (unsigned i = 0; i < FW_KEYSPACES && !bad; i++) bad = observe(run, db, i, obs[i], why, cap) != 0;
    if ((rc = tind_close(db)) != TIND_OK && !bad) {
        snprintf(why, cap, "close after verification: %s (%s)", tind_strerror(rc), tind_last_error());
        bad = 1;
    }
    if (bad) return -1;
    /* Some choice of the unknown entries, each all or nothing, must give
     * exactly what is there. */
    for (uint32_t pick = 0; pick < (UINT32_C(1) << run->nunknown); pick++) {
        expected(run, pick, exp);
        if (!memcmp(exp, obs, sizeof exp)) return 0;
    }
    expected(run, 0, exp);
    for (unsigned k = 0; k < FW_KEYSPACES; k++) {
        for (unsigned i = 0; i < FW_KEYS; i++) {
            if (exp[k][i] == obs[k][i]) continue;
            char a[64], b[64];
            describe(obs[k][i], a, sizeof a);
            describe(exp[k][i], b, sizeof b);
            snprintf(why, cap,
                     "no choice of the %zu failed writes explains the data: keyspace %s key %u holds %s, the "
                     "acknowledged writes alone give %s",
                     run->nunknown, ks_names[k], i, a, b);
            return -1;
        }
    }
    snprintf(why, cap, "no choice of the %zu failed writes explains the data", run->nunknown);
    return -1;
}
