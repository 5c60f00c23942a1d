/* Keyspaces: names, stored options, create / open / drop / list, and the
 * database meta file that numbers them. Formats are in src/README.md. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/payload.h"
#include "src/db.h"
#include "src/util/array.h"
#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "src/util/file.h"

/* Frozen on-disk constants. */
#define META_MAGIC UINT64_C(0x4154454d444e4954)    /* "TINDMETA" */
#define META_VERSION 1u
#define META_SIZE 24u
#define OPTIONS_MAGIC UINT64_C(0x504f534b444e4954) /* "TINDKSOP" */
#define OPTIONS_VERSION 1u
enum ks_option_tag {
    KSOPT_DURABILITY = 1,       /* frozen; zigzag-coded int */
    KSOPT_MEMTABLE_BYTES = 2,   /* frozen */
    KSOPT_MAX_SEALED = 3,       /* frozen */
    KSOPT_BLOCK_SIZE = 4,       /* frozen */
    KSOPT_RESTART_INTERVAL = 5, /* frozen */
    KSOPT_BLOOM_BITS = 6,       /* frozen */
    KSOPT_COMPRESSION = 7,      /* frozen; one per level: level << 4 | compression */
    KSOPT_ZSTD_LEVEL = 8,       /* frozen; zigzag-coded int */
    KSOPT_COMPACTION = 9,       /* frozen */
    KSOPT_L0_TRIGGER = 10,      /* frozen */
    KSOPT_LEVEL_RATIO = 11,     /* frozen */
    KSOPT_TABLE_TARGET = 12,    /* frozen */
    KSOPT_TIER_WIDTH = 13,      /* frozen */
    KSOPT_FIFO_MAX_BYTES = 14,  /* frozen */
    KSOPT_FIFO_TTL = 15,        /* frozen */
    KSOPT_L0_SLOWDOWN = 16,     /* frozen */
    KSOPT_L0_STOP = 17,         /* frozen */
    KSOPT_PENDING_SLOWDOWN = 18, /* frozen */
    KSOPT_PENDING_STOP = 19,    /* frozen */
};

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* ---- the meta file -------------------------------------------------------- */

int db_write_meta(tind_db *db)
{
    uint8_t m[META_SIZE];
    put_u64(m, META_MAGIC);
    put_u32(m + 8, META_VERSION);
    put_u32(m + 12, db->next_ks_id);
    put_u64(m + 16, checksum64(m, 16));
    return file_write_atomic(db->path, DB_META_FILE, m, sizeof m);
}

int db_read_meta(tind_db *db)
{
    char p[PATH_MAX];
    int rc = file_join(p, sizeof p, db->path, DB_META_FILE);
    if (rc) return rc;
    uint8_t *m;
    size_t n;
    rc = file_read_all(p, &m, &n);
    if (rc) return rc;
    if (n != META_SIZE || get_u64(m) != META_MAGIC) rc = err_set(TIND_CORRUPTION, "%s offset 0: not a tind meta file", p);
    else if (get_u64(m + 16) != checksum64(m, 16)) rc = err_set(TIND_CORRUPTION, "%s offset 16: checksum mismatch", p);
    else if (get_u32(m + 8) != META_VERSION)
        rc = err_set(TIND_CORRUPTION, "%s offset 8: unsupported format version %u", p, get_u32(m + 8));
    else db->next_ks_id = get_u32(m + 12);
    free(m);
    return rc;
}

/* ---- names and options ------------------------------------------------------ */

static int ks_check_name(const char *name)
{
    if (!name) return err_set(TIND_INVALID, "keyspace name is NULL");
    size_t n = strlen(name);
    if (n == 0 || n > TIND_MAX_KEYSPACE_NAME)
        return err_set(TIND_INVALID, "keyspace name must be 1-%u bytes", TIND_MAX_KEYSPACE_NAME);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-'))
            return err_set(TIND_INVALID, "keyspace name has a byte outside [A-Za-z0-9_.-] at %zu", i);
    }
    return TIND_OK;
}

static int ks_check_options(const tind_keyspace_options *o)
{
    if (o->durability != TIND_DURABILITY_DEFAULT && db_check_durability(o->durability))
        return err_set(TIND_INVALID, "keyspace option durability %d is not a TIND_DURABILITY_* value",
                       o->durability);
    if (o->memtable_bytes < (64u << 10))
        return err_set(TIND_INVALID, "keyspace option memtable_bytes %llu is below 64 KiB",
                       (unsigned long long)o->memtable_bytes);
    if (o->max_sealed_memtables < 1) return err_set(TIND_INVALID, "keyspace option max_sealed_memtables is 0");
    if (o->block_size < 256 || o->block_size > (1u << 20))
        return err_set(TIND_INVALID, "keyspace option block_size %u is outside 256..1 MiB", o->block_size);
    if (o->restart_interval < 1 || o->restart_interval > 1024)
        return err_set(TIND_INVALID, "keyspace option restart_interval %u is outside 1..1024", o->restart_interval);
    if (o->bloom_bits_per_key > 32)
        return err_set(TIND_INVALID, "keyspace option bloom_bits_per_key %u is over 32", o->bloom_bits_per_key);
    for (int l = 0; l < TIND_LEVELS; l++)
        if (o->compression[l] < TIND_COMPRESSION_NONE || o->compression[l] > TIND_COMPRESSION_ZSTD)
            return err_set(TIND_INVALID, "keyspace option compression[%d] %d is not a TIND_COMPRESSION_* value", l,
                           o->compression[l]);
    if (o->zstd_level < 1 || o->zstd_level > 19)
        return err_set(TIND_INVALID, "keyspace option zstd_level %d is outside 1..19", o->zstd_level);
    if (o->compaction < TIND_COMPACTION_LEVELED || o->compaction > TIND_COMPACTION_FIFO)
        return err_set(TIND_INVALID, "keyspace option compaction %d is not a TIND_COMPACTION_* value", o->compaction);
    if (o->l0_trigger < 1 || o->l0_trigger > 64)
        return err_set(TIND_INVALID, "keyspace option l0_trigger %u is outside 1..64", o->l0_trigger);
    if (o->level_ratio < 2 || o->level_ratio > 100)
        return err_set(TIND_INVALID, "keyspace option level_ratio %u is outside 2..100", o->level_ratio);
    if (o->table_target_bytes < (64u << 10))
        return err_set(TIND_INVALID, "keyspace option table_target_bytes is below 64 KiB");
    if (o->tier_width < 2 || o->tier_width > 64)
        return err_set(TIND_INVALID, "keyspace option tier_width %u is outside 2..64", o->tier_width);
    if (o->l0_slowdown_tables < 1 || o->l0_stop_tables < o->l0_slowdown_tables || o->l0_stop_tables > 10000)
        return err_set(TIND_INVALID, "keyspace options need 1 <= l0_slowdown_tables <= l0_stop_tables <= 10000");
    if (o->pending_slowdown_bytes < (1u << 20) || o->pending_stop_bytes < o->pending_slowdown_bytes)
        return err_set(TIND_INVALID, "keyspace options need 1 MiB <= pending_slowdown_bytes <= pending_stop_bytes");
    /* A leveled keyspace compacts level 0 once it holds l0_trigger tables:
     * writers stopped below that would wait for a compaction that never
     * starts. (pending bytes count level 0 only from l0_trigger on and every
     * level past its target, which is work the picker does; tiered and FIFO
     * keyspaces use no level-0 threshold, and a stall never waits while the
     * strategy has nothing to do: flush_stall.) */
    if (o->compaction == TIND_COMPACTION_LEVELED && o->l0_stop_tables < o->l0_trigger)
        return err_set(TIND_INVALID,
                       "keyspace options need l0_stop_tables (%u) >= l0_trigger (%u): level 0 is compacted only "
                       "from l0_trigger tables on",
                       o->l0_stop_tables, o->l0_trigger);
    return TIND_OK;
}

void tind_keyspace_options_init(tind_keyspace_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->durability = TIND_DURABILITY_DEFAULT;
    o->memtable_bytes = 64u << 20;
    o->max_sealed_memtables = 4;
    o->block_size = 4096;
    o->restart_interval = 16;
    o->bloom_bits_per_key = 10;
    for (int l = 0; l < TIND_LEVELS; l++) o->compression[l] = TIND_COMPRESSION_LZ4;
    o->compression[TIND_LEVELS - 1] = TIND_COMPRESSION_ZSTD;
    o->zstd_level = 3;
    o->compaction = TIND_COMPACTION_LEVELED;
    o->l0_trigger = 4;
    o->level_ratio = 10;
    o->table_target_bytes = 64u << 20;
    o->tier_width = 4;
    o->fifo_max_bytes = 0;
    o->fifo_ttl_seconds = 0;
    o->l0_slowdown_tables = 20;
    o->l0_stop_tables = 36;
    o->pending_slowdown_bytes = UINT64_C(64) << 30;
    o->pending_stop_bytes = UINT64_C(256) << 30;
}

static void ks_resolve(tind_keyspace *ks)
{
    int d = ks->opts.durability == TIND_DURABILITY_DEFAULT ? ks->db->opts.durability : ks->opts.durability;
    atomic_store(&ks->durability, d);
    atomic_store(&ks->memtable_bytes, ks->opts.memtable_bytes);
    atomic_store(&ks->max_sealed, ks->opts.max_sealed_memtables);
}

static int ks_dir_path(const tind_db *db, uint32_t id, char *out, size_t cap)
{
    if (snprintf(out, cap, "%s/%u", db->ks_dir, id) >= (int)cap)
        return err_set(TIND_INVALID, "keyspace path too long in %s", db->ks_dir);
    return TIND_OK;
}

static int ks_write_options(const tind_keyspace *ks)
{
    uint8_t b[8 + 4 + 4 + 1 + TIND_MAX_KEYSPACE_NAME + VARINT32_MAX + (20 + TIND_LEVELS) * (VARINT32_MAX + VARINT64_MAX) + 8];
    uint8_t *p = b;
    size_t nl = strlen(ks->name);
    put_u64(p, OPTIONS_MAGIC);
    put_u32(p + 8, OPTIONS_VERSION);
    put_u32(p + 12, ks->id);
    p[16] = (uint8_t)nl;
    memcpy(p + 17, ks->name, nl);
    p += 17 + nl;
    const tind_keyspace_options *o = &ks->opts;
    p = put_varint32(p, 18 + TIND_LEVELS);
    p = put_varint32(p, KSOPT_DURABILITY);
    p = put_varint64(p, zigzag(o->durability));
    p = put_varint32(p, KSOPT_MEMTABLE_BYTES);
    p = put_varint64(p, o->memtable_bytes);
    p = put_varint32(p, KSOPT_MAX_SEALED);
    p = put_varint64(p, o->max_sealed_memtables);
    p = put_varint32(p, KSOPT_BLOCK_SIZE);
    p = put_varint64(p, o->block_size);
    p = put_varint32(p, KSOPT_RESTART_INTERVAL);
    p = put_varint64(p, o->restart_interval);
    p = put_varint32(p, KSOPT_BLOOM_BITS);
    p = put_varint64(p, o->bloom_bits_per_key);
    for (int l = 0; l < TIND_LEVELS; l++) {
        p = put_varint32(p, KSOPT_COMPRESSION);
        p = put_varint64(p, (uint64_t)l << 4 | (uint64_t)o->compression[l]);
    }
    p = put_varint32(p, KSOPT_ZSTD_LEVEL);
    p = put_varint64(p, zigzag(o->zstd_level));
    p = put_varint32(p, KSOPT_COMPACTION);
    p = put_varint64(p, (uint64_t)o->compaction);
    p = put_varint32(p, KSOPT_L0_TRIGGER);
    p = put_varint64(p, o->l0_trigger);
    p = put_varint32(p, KSOPT_LEVEL_RATIO);
    p = put_varint64(p, o->level_ratio);
    p = put_varint32(p, KSOPT_TABLE_TARGET);
    p = put_varint64(p, o->table_target_bytes);
    p = put_varint32(p, KSOPT_TIER_WIDTH);
    p = put_varint64(p, o->tier_width);
    p = put_varint32(p, KSOPT_FIFO_MAX_BYTES);
    p = put_varint64(p, o->fifo_max_bytes);
    p = put_varint32(p, KSOPT_FIFO_TTL);
    p = put_varint64(p, o->fifo_ttl_seconds);
    p = put_varint32(p, KSOPT_L0_SLOWDOWN);
    p = put_varint64(p, o->l0_slowdown_tables);
    p = put_varint32(p, KSOPT_L0_STOP);
    p = put_varint64(p, o->l0_stop_tables);
    p = put_varint32(p, KSOPT_PENDING_SLOWDOWN);
    p = put_varint64(p, o->pending_slowdown_bytes);
    p = put_varint32(p, KSOPT_PENDING_STOP);
    p = put_varint64(p, o->pending_stop_bytes);
    put_u64(p, checksum64(b, (size_t)(p - b)));
    p += 8;
    return file_write_atomic(ks->dir, KS_OPTIONS_FILE, b, (size_t)(p - b));
}

/* Decodes an OPTIONS file into ks (id, name, opts). */
static int ks_decode_options(const char *path, const uint8_t *b, size_t n, tind_keyspace *ks)
{
    if (n < 17 + 8 || get_u64(b) != OPTIONS_MAGIC)
        return err_set(TIND_CORRUPTION, "%s offset 0: not a keyspace options file", path);
    if (get_u64(b + n - 8) != checksum64(b, n - 8))
        return err_set(TIND_CORRUPTION, "%s offset %zu: checksum mismatch", path, n - 8);
    if (get_u32(b + 8) != OPTIONS_VERSION)
        return err_set(TIND_CORRUPTION, "%s offset 8: unsupported options version %u", path, get_u32(b + 8));
    ks->id = get_u32(b + 12);
    size_t nl = b[16];
    const uint8_t *p = b + 17, *end = b + n - 8;
    if (nl == 0 || (size_t)(end - p) < nl) return err_set(TIND_CORRUPTION, "%s offset 16: bad name length", path);
    memcpy(ks->name, p, nl);
    ks->name[nl] = 0;
    p += nl;
    if (ks_check_name(ks->name)) return err_set(TIND_CORRUPTION, "%s offset 17: bad keyspace name", path);
    tind_keyspace_options_init(&ks->opts);
    uint32_t nf;
    if (!(p = get_varint32(p, end, &nf))) return err_set(TIND_CORRUPTION, "%s: truncated field count", path);
    for (uint32_t i = 0; i < nf; i++) {
        uint32_t tag;
        uint64_t v;
        size_t off = (size_t)(p - b);
        if (!(p = get_varint32(p, end, &tag)) || !(p = get_varint64(p, end, &v)))
            return err_set(TIND_CORRUPTION, "%s offset %zu: truncated option", path, off);
        /* Values are range-checked below by ks_check_options; casts only narrow. */
        if (tag != KSOPT_DURABILITY && tag != KSOPT_ZSTD_LEVEL && tag != KSOPT_MEMTABLE_BYTES &&
            tag != KSOPT_TABLE_TARGET && tag != KSOPT_FIFO_MAX_BYTES && tag != KSOPT_FIFO_TTL &&
            tag != KSOPT_PENDING_SLOWDOWN && tag != KSOPT_PENDING_STOP && v > UINT32_MAX)
            return err_set(TIND_CORRUPTION, "%s offset %zu: option %u out of range", path, off, tag);
        switch (tag) {
        case KSOPT_DURABILITY: ks->opts.durability = (int)unzigzag(v); break;
        case KSOPT_MEMTABLE_BYTES: ks->opts.memtable_bytes = v; break;
        case KSOPT_MAX_SEALED: ks->opts.max_sealed_memtables = (uint32_t)v; break;
        case KSOPT_BLOCK_SIZE: ks->opts.block_size = (uint32_t)v; break;
        case KSOPT_RESTART_INTERVAL: ks->opts.restart_interval = (uint32_t)v; break;
        case KSOPT_BLOOM_BITS: ks->opts.bloom_bits_per_key = (uint32_t)v; break;
        case KSOPT_COMPRESSION:
            if ((v >> 4) >= TIND_LEVELS)
                return err_set(TIND_CORRUPTION, "%s offset %zu: compression of level %llu", path, off,
                               (unsigned long long)(v >> 4));
            ks->opts.compression[v >> 4] = (int)(v & 15);
            break;
        case KSOPT_ZSTD_LEVEL: ks->opts.zstd_level = (int)unzigzag(v); break;
        case KSOPT_COMPACTION: ks->opts.compaction = (int)v; break;
        case KSOPT_L0_TRIGGER: ks->opts.l0_trigger = (uint32_t)v; break;
        case KSOPT_LEVEL_RATIO: ks->opts.level_ratio = (uint32_t)v; break;
        case KSOPT_TABLE_TARGET: ks->opts.table_target_bytes = v; break;
        case KSOPT_TIER_WIDTH: ks->opts.tier_width = (uint32_t)v; break;
        case KSOPT_FIFO_MAX_BYTES: ks->opts.fifo_max_bytes = v; break;
        case KSOPT_FIFO_TTL: ks->opts.fifo_ttl_seconds = v; break;
        case KSOPT_L0_SLOWDOWN: ks->opts.l0_slowdown_tables = (uint32_t)v; break;
        case KSOPT_L0_STOP: ks->opts.l0_stop_tables = (uint32_t)v; break;
        case KSOPT_PENDING_SLOWDOWN: ks->opts.pending_slowdown_bytes = v; break;
        case KSOPT_PENDING_STOP: ks->opts.pending_stop_bytes = v; break;
        default: return err_set(TIND_CORRUPTION, "%s offset %zu: unknown option tag %u", path, off, tag);
        }
    }
    if (p != end) return err_set(TIND_CORRUPTION, "%s offset %zu: trailing bytes", path, (size_t)(p - b));
    if (ks_check_options(&ks->opts))
        return err_set(TIND_CORRUPTION, "%s: option value out of range", path);
    return TIND_OK;
}

/* ---- the keyspace table ---------------------------------------------------------- */

static tind_keyspace *ks_alloc(tind_db *db)
{
    tind_keyspace *ks = calloc(1, sizeof *ks);
    if (!ks) return NULL;
    ks->db = db;
    pthread_mutex_init(&ks->mu, NULL);
    pthread_mutex_init(&ks->edit_mu, NULL);
    pthread_cond_init(&ks->flush_cond, NULL);
    return ks;
}

void ks_free(tind_keyspace *ks)
{
    if (!ks) return;
    if (ks->sv) sv_unref(ks->sv);
    for (size_t i = 0; i < ks->nsealed; i++) memtable_unref(ks->sealed[i].mem);
    free(ks->sealed);
    manifest_close(ks->man);
    free(ks->busy);
    pthread_cond_destroy(&ks->flush_cond);
    pthread_mutex_destroy(&ks->edit_mu);
    pthread_mutex_destroy(&ks->mu);
    free(ks->dir);
    free(ks);
}

/* 1 when two option sets are the same, field by field (the structs may hold padding). */
static int ks_options_same(const tind_keyspace_options *a, const tind_keyspace_options *b)
{
    for (int l = 0; l < TIND_LEVELS; l++)
        if (a->compression[l] != b->compression[l]) return 0;
    return a->durability == b->durability && a->memtable_bytes == b->memtable_bytes &&
           a->max_sealed_memtables == b->max_sealed_memtables && a->block_size == b->block_size &&
           a->restart_interval == b->restart_interval && a->bloom_bits_per_key == b->bloom_bits_per_key &&
           a->zstd_level == b->zstd_level && a->compaction == b->compaction && a->l0_trigger == b->l0_trigger &&
           a->level_ratio == b->level_ratio && a->table_target_bytes == b->table_target_bytes &&
           a->tier_width == b->tier_width && a->fifo_max_bytes == b->fifo_max_bytes &&
           a->fifo_ttl_seconds == b->fifo_ttl_seconds && a->l0_slowdown_tables == b->l0_slowdown_tables &&
           a->l0_stop_tables == b->l0_stop_tables && a->pending_slowdown_bytes == b->pending_slowdown_bytes &&
           a->pending_stop_bytes == b->pending_stop_bytes;
}

int ks_verify_options(tind_keyspace *ks, uint64_t *bytes)
{
    char opt[PATH_MAX];
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = file_join(opt, sizeof opt, ks->dir, KS_OPTIONS_FILE);
    if (rc == TIND_OK) rc = file_read_all(opt, &b, &n);
    if (rc) return rc;
    *bytes = n;
    tind_keyspace *tmp = calloc(1, sizeof *tmp);
    if (!tmp) {
        free(b);
        return err_nomem();
    }
    rc = ks_decode_options(opt, b, n, tmp);
    if (rc == TIND_OK && (tmp->id != ks->id || strcmp(tmp->name, ks->name) != 0))
        rc = err_set(TIND_CORRUPTION, "%s offset 12: names keyspace %u \"%s\", the open one is %u \"%s\"", opt,
                     tmp->id, tmp->name, ks->id, ks->name);
    if (rc == TIND_OK) {
        pthread_mutex_lock(&ks->mu);
        int same = ks_options_same(&tmp->opts, &ks->opts);
        pthread_mutex_unlock(&ks->mu);
        if (!same) rc = err_set(TIND_CORRUPTION, "%s offset 0: the stored options differ from those in use", opt);
    }
    free(tmp);
    free(b);
    return rc;
}

/* Sets ks->dir from its id. */
static int ks_set_dir(tind_keyspace *ks)
{
    char dir[PATH_MAX];
    int rc = ks_dir_path(ks->db, ks->id, dir, sizeof dir);
    if (rc) return rc;
    ks->dir = strdup(dir);
    return ks->dir ? TIND_OK : err_nomem();
}

static int ptr_push(tind_keyspace ***arr, size_t *n, size_t *cap, tind_keyspace *ks)
{
    int rc = array_reserve((void **)arr, *n, cap, sizeof **arr, 8);
    if (rc) return rc;
    (*arr)[(*n)++] = ks;
    return TIND_OK;
}

tind_keyspace *ks_find_id(tind_db *db, uint32_t id)
{
    for (size_t i = 0; i < db->nks; i++)
        if (db->ks[i]->id == id) return db->ks[i];
    return NULL;
}

static tind_keyspace *ks_find_name(tind_db *db, const char *name)
{
    for (size_t i = 0; i < db->nks; i++)
        if (!strcmp(db->ks[i]->name, name)) return db->ks[i];
    return NULL;
}

void ks_mark_dropped(tind_keyspace *ks)
{
    pthread_mutex_lock(&ks->mu);
    atomic_store(&ks->dropped, 1);
    pthread_cond_broadcast(&ks->flush_cond);
    pthread_mutex_unlock(&ks->mu);
}

/* Unlinks the keyspace's OPTIONS file and makes that durable. */
static int ks_unlink_options(tind_keyspace *ks)
{
    char opt[PATH_MAX];
    int rc = file_join(opt, sizeof opt, ks->dir, KS_OPTIONS_FILE);
    if (rc == TIND_OK && file_exists(opt) == 1 && (rc = file_unlink(opt)) == TIND_OK) rc = file_sync_dir(ks->dir);
    return rc;
}

int ks_remove_dropped_folder(tind_db *db, tind_keyspace *ks, int with_tables)
{
    if (db->opts.read_only) return TIND_OK;
    char p[PATH_MAX];
    int rc = file_join(p, sizeof p, ks->dir, KS_OPTIONS_FILE), ex;
    if (rc) return rc;
    /* With OPTIONS still there (its removal failed) the folder is a live
     * keyspace to the next open until the journal's drop record removes it:
     * its tables stay. */
    if ((ex = file_exists(p)) != 0) return ex < 0 ? ex : TIND_OK;
    if ((ex = file_exists(ks->dir)) <= 0) return ex; /* gone already (with its last table) */
    char **names;
    size_t n;
    if ((rc = file_list_dir(ks->dir, &names, &n)) != TIND_OK) return file_exists(ks->dir) == 0 ? TIND_OK : rc;
    int tables = 0;
    for (size_t i = 0; i < n && rc == TIND_OK; i++) {
        uint64_t num;
        if (!with_tables && table_parse_name(names[i], &num)) {
            tables = 1;
        } else if ((rc = file_join(p, sizeof p, ks->dir, names[i])) == TIND_OK && (rc = file_unlink(p)) != TIND_OK &&
                   file_exists(p) == 0) {
            rc = TIND_OK; /* gone already */
        }
    }
    free(names);
    /* Tables still held by readers: the last of them removes the folder
     * (table_meta_unref), or close does. It may have done so already. */
    if (rc || tables) return rc;
    if ((rc = file_rmdir(ks->dir)) != TIND_OK) {
        if (file_exists(ks->dir) != 0) return rc;
        rc = TIND_OK;
    }
    return file_sync_dir(db->ks_dir);
}

int ks_retire(tind_db *db, tind_keyspace *ks)
{
    pthread_mutex_lock(&db->list_mu);
    for (size_t i = 0; i < db->nks; i++) {
        if (db->ks[i] != ks) continue;
        memmove(db->ks + i, db->ks + i + 1, (db->nks - i - 1) * sizeof *db->ks);
        db->nks--;
        break;
    }
    int rc = ptr_push(&db->dropped, &db->ndropped, &db->capdropped, ks);
    pthread_mutex_unlock(&db->list_mu);
    if (rc) {
        ks_free(ks); /* no handle survives; better than a leak */
        return rc;
    }
    /* A flush in progress finishes (or sees the drop) before the folder goes. */
    pthread_mutex_lock(&ks->mu);
    while (ks->flushing || ks->compacting || ks->major) pthread_cond_wait(&ks->flush_cond, &ks->mu);
    struct super_version *sv = ks->sv;
    ks->sv = NULL;
    pthread_mutex_unlock(&ks->mu);
    /* Read-only (a replay of a drop): nothing is deleted; the next
     * read-write open removes the folder. Otherwise OPTIONS goes first, and
     * durably: a folder without it is an unfinished keyspace that the next
     * open removes, so a crash anywhere after this is harmless. Only then
     * are the tables obsolete. Each goes with the last reference to its meta
     * (an iterator opened before the drop keeps reading every table it
     * can reach), the last one taking the folder with it. */
    if (!db->opts.read_only && (rc = ks_unlink_options(ks)) == TIND_OK) {
        struct version *v = manifest_current(ks->man);
        version_drop_tables(v);
        version_unref(v);
    }
    sv_unref(sv);
    manifest_close(ks->man); /* with its version, the tables no reader holds go */
    ks->man = NULL;
    if (db->opts.read_only || rc != TIND_OK) return rc;
    return ks_remove_dropped_folder(db, ks, 0);
}

static int is_number(const char *s, uint32_t *v)
{
    uint64_t r = 0;
    if (!*s) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        r = r * 10 + (uint64_t)(*s - '0');
        if (r > UINT32_MAX) return 0;
    }
    *v = (uint32_t)r;
    return 1;
}

/* Loads every keyspace folder at open (single-threaded). Folders without an
 * OPTIONS file are unfinished creations or drops: removed. */
int ks_load_all(tind_db *db)
{
    char **names;
    size_t count;
    int rc = file_list_dir(db->ks_dir, &names, &count);
    if (rc) return rc;
    char dir[PATH_MAX], opt[PATH_MAX];
    for (size_t i = 0; i < count && rc == TIND_OK; i++) {
        uint32_t id;
        if ((rc = file_join(dir, sizeof dir, db->ks_dir, names[i])) != TIND_OK) break;
        if (!is_number(names[i], &id)) {
            rc = err_set(TIND_CORRUPTION, "%s: unexpected entry in the keyspace directory", dir);
            break;
        }
        if ((rc = file_join(opt, sizeof opt, dir, KS_OPTIONS_FILE)) != TIND_OK) break;
        int ex = file_exists(opt);
        if (ex < 0) {
            rc = ex;
            break;
        }
        if (ex == 0) {
            if (!db->opts.read_only && (rc = file_remove_tree(dir)) == TIND_OK) rc = file_sync_dir(db->ks_dir);
            continue;
        }
        uint8_t *b;
        size_t n;
        if ((rc = file_read_all(opt, &b, &n)) != TIND_OK) break;
        tind_keyspace *ks = ks_alloc(db);
        if (!ks) {
            free(b);
            rc = err_nomem();
            break;
        }
        rc = ks_decode_options(opt, b, n, ks);
        free(b);
        if (rc == TIND_OK && ks->id != id)
            rc = err_set(TIND_CORRUPTION, "%s: keyspace number %u does not match its folder", opt, ks->id);
        if (rc == TIND_OK && id >= db->next_ks_id)
            rc = err_set(TIND_CORRUPTION, "%s: keyspace number %u not below the meta file's next %u", opt, id,
                         db->next_ks_id);
        if (rc == TIND_OK) rc = ks_set_dir(ks);
        if (rc == TIND_OK) {
            ks_resolve(ks);
            rc = ks_open_tree(ks, 1);
        }
        if (rc == TIND_OK) rc = ptr_push(&db->ks, &db->nks, &db->capks, ks);
        if (rc) {
            ks_free(ks);
            break;
        }
    }
    free(names);
    return rc;
}

/* After replay: two live keyspaces may not share a name. */
int ks_check_unique(tind_db *db)
{
    for (size_t i = 0; i < db->nks; i++)
        for (size_t k = i + 1; k < db->nks; k++)
            if (!strcmp(db->ks[i]->name, db->ks[k]->name))
                return err_set(TIND_CORRUPTION, "%s: keyspaces %u and %u are both named %s", db->ks_dir,
                               db->ks[i]->id, db->ks[k]->id, db->ks[i]->name);
    return TIND_OK;
}

/* Removes the folder of a keyspace whose creation failed with rc (this
 * thread's message), OPTIONS first as ks_retire does, keeping rc's message.
 * Left in place, its OPTIONS file would bring the keyspace back at the next
 * open beside the one a retry creates under the same name; if it cannot be
 * removed, the database is poisoned so that no retry creates that twin. */
static void ks_remove_unfinished(tind_db *db, tind_keyspace *ks, int rc)
{
    char msg[1024], opt[PATH_MAX];
    snprintf(msg, sizeof msg, "%s", err_msg());
    manifest_close(ks->man);
    ks->man = NULL;
    int r = file_join(opt, sizeof opt, ks->dir, KS_OPTIONS_FILE);
    if (r == TIND_OK && file_exists(opt) == 1) r = file_unlink(opt);
    if (r == TIND_OK && file_exists(ks->dir) == 1) r = file_remove_tree(ks->dir);
    if (r == TIND_OK) r = file_sync_dir(db->ks_dir);
    if (r != TIND_OK) {
        char why[2200];
        snprintf(why, sizeof why, "keyspace %s: creation failed (%s) and its folder could not be removed (%s)", ks->name,
                 msg, err_msg());
        journal_poison(db->jnl, rc, why);
    }
    err_set(rc, "%s", msg);
}

/* Creates a keyspace durably. Caller holds ks_mu. The meta file's counter
 * moves first, so that a number is never given twice even if a crash leaves
 * the folder unfinished. */
static int ks_create(tind_db *db, const char *name, const tind_keyspace_options *o, tind_keyspace **out)
{
    if (db->next_ks_id == UINT32_MAX) return err_set(TIND_INVALID, "no keyspace numbers left");
    tind_keyspace *ks = ks_alloc(db);
    if (!ks) return err_nomem();
    ks->id = db->next_ks_id;
    snprintf(ks->name, sizeof ks->name, "%s", name);
    if (o) ks->opts = *o;
    else tind_keyspace_options_init(&ks->opts);
    ks_resolve(ks);
    db->next_ks_id++;
    int rc = db_write_meta(db);
    if (rc == TIND_OK) rc = ks_set_dir(ks);
    int made = 0;
    if (rc == TIND_OK && (rc = file_mkdir(ks->dir)) == TIND_OK) made = 1;
    if (rc == TIND_OK) rc = file_sync_dir(db->ks_dir);
    if (rc == TIND_OK) rc = ks_write_options(ks);
    if (rc == TIND_OK) rc = ks_open_tree(ks, 1);
    if (rc == TIND_OK) {
        pthread_mutex_lock(&db->list_mu);
        rc = ptr_push(&db->ks, &db->nks, &db->capks, ks);
        pthread_mutex_unlock(&db->list_mu);
    }
    if (rc) {
        if (made) ks_remove_unfinished(db, ks, rc);
        ks_free(ks);
        return rc;
    }
    *out = ks;
    return TIND_OK;
}

int tind_keyspace_open(tind_db *db, const char *name, const tind_keyspace_options *o, tind_keyspace **out)
{
    err_clear();
    if (out) *out = NULL;
    if (!db || !out) return err_set(TIND_INVALID, "tind_keyspace_open: NULL argument");
    int rc = ks_check_name(name);
    if (rc) return rc;
    if (o && (rc = ks_check_options(o)) != TIND_OK) return rc;
    pthread_mutex_lock(&db->ks_mu);
    tind_keyspace *ks = ks_find_name(db, name);
    /* Compared field by field: equal options set one by one can differ in padding. */
    int changed = ks && o && !ks_options_same(&ks->opts, o);
    if (db->opts.read_only && (!ks || changed)) {
        rc = db_check_writable(db); /* creating a keyspace or storing options writes */
    } else if (!ks) {
        rc = journal_check_poisoned(db->jnl);
        if (rc == TIND_OK) rc = ks_create(db, name, o, &ks);
    } else if (changed) {
        /* Flush jobs read the options under ks->mu. */
        tind_keyspace_options old = ks->opts;
        pthread_mutex_lock(&ks->mu);
        ks->opts = *o;
        pthread_mutex_unlock(&ks->mu);
        if ((rc = ks_write_options(ks)) != TIND_OK) {
            pthread_mutex_lock(&ks->mu);
            ks->opts = old;
            pthread_mutex_unlock(&ks->mu);
        }
        ks_resolve(ks);
    }
    pthread_mutex_unlock(&db->ks_mu);
    if (rc == TIND_OK) *out = ks;
    return rc;
}

int tind_keyspace_drop(tind_db *db, const char *name)
{
    err_clear();
    if (!db) return err_set(TIND_INVALID, "tind_keyspace_drop: NULL database");
    int rc = ks_check_name(name);
    if (rc || (rc = db_check_writable(db)) != TIND_OK) return rc;
    pthread_mutex_lock(&db->ks_mu);
    tind_keyspace *ks = ks_find_name(db, name);
    if (!ks) {
        pthread_mutex_unlock(&db->ks_mu);
        return err_set(TIND_NOT_FOUND, "no keyspace named %s", name);
    }
    /* Pin the journals before the record exists (db.h, retire_mu): from the
     * moment it is written until OPTIONS is durably gone, the record is all
     * that keeps the keyspace dropped through a crash. */
    pthread_mutex_lock(&db->retire_mu);
    uint64_t pin = db_last_seq(db);
    if (pin < db->drop_pin) db->drop_pin = pin;
    pthread_mutex_unlock(&db->retire_mu);
    buf b;
    buf_init(&b);
    rc = payload_drop_init(&b, ks->id);
    if (rc == TIND_OK) {
        struct write_target t = {.ks = &ks, .n = 1};
        struct journal_req r = {.payload = b.p, .len = b.len, .durability = TIND_DURABILITY_SYNC_DATA,
                                .seq_count = 0, .user = &t};
        rc = journal_write(db->jnl, &r);
    }
    buf_free(&b);
    /* Once the drop record is durable the keyspace is gone whatever happens
     * to its folder: a failure below only leaves files the next open removes,
     * and keeps the pin so that the record stays for that open to replay. A
     * record that failed to be written sits, if at all, in the current
     * journal, which is never retired: no pin is needed for it. */
    int written = rc == TIND_OK;
    if (written) rc = ks_retire(db, ks);
    pthread_mutex_lock(&db->retire_mu);
    if (written && rc != TIND_OK) db->drop_pin_kept = 1;
    if (!db->drop_pin_kept) db->drop_pin = UINT64_MAX;
    pthread_mutex_unlock(&db->retire_mu);
    /* What the pin held back goes now rather than at the next flush. */
    if (written && rc == TIND_OK) flush_retire_journals(db);
    pthread_mutex_unlock(&db->ks_mu);
    return rc;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int tind_keyspace_list(tind_db *db, char ***names, size_t *count)
{
    err_clear();
    if (names) *names = NULL;
    if (count) *count = 0;
    if (!db || !names || !count) return err_set(TIND_INVALID, "tind_keyspace_list: NULL argument");
    pthread_mutex_lock(&db->list_mu);
    size_t bytes = 0, n = db->nks;
    for (size_t i = 0; i < n; i++) bytes += strlen(db->ks[i]->name) + 1;
    char **arr = malloc(n * sizeof *arr + bytes + 1);
    if (!arr) {
        pthread_mutex_unlock(&db->list_mu);
        return err_nomem();
    }
    char *sp = (char *)(arr + n);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(db->ks[i]->name) + 1;
        memcpy(sp, db->ks[i]->name, l);
        arr[i] = sp;
        sp += l;
    }
    pthread_mutex_unlock(&db->list_mu);
    qsort(arr, n, sizeof *arr, cmp_name);
    *names = arr;
    *count = n;
    return TIND_OK;
}

int tind_keyspace_stats(tind_keyspace *ks, struct tind_keyspace_stats *st)
{
    err_clear();
    if (!st) return err_set(TIND_INVALID, "tind_keyspace_stats: NULL stats");
    int rc = db_check_keyspace(ks);
    if (rc) return rc;
    struct super_version *sv;
    if ((rc = ks_acquire_sv(ks, &sv)) != TIND_OK) return rc;
    memset(st, 0, sizeof *st);
    st->id = ks->id;
    st->memtable_bytes = memtable_bytes(sv->mem);
    st->memtable_entries = memtable_count(sv->mem);
    for (size_t i = 0; i < sv->nimm; i++) {
        st->memtable_bytes += memtable_bytes(sv->imm[i]);
        st->memtable_entries += memtable_count(sv->imm[i]);
    }
    st->sealed_memtables = sv->nimm;
    st->durability = atomic_load(&ks->durability);
    for (unsigned l = 0; l < LSM_LEVELS && l < TIND_LEVELS; l++) {
        st->tables[l] = sv->ver->nfiles[l];
        st->table_bytes[l] = sv->ver->level_bytes[l];
    }
    sv_unref(sv);
    pthread_mutex_lock(&ks->mu);
    st->flushes = ks->flushes;
    st->flushed_sequence = ks->flushed_seq;
    st->compactions = ks->compactions;
    st->compaction_bytes_read = ks->compact_read;
    st->compaction_bytes_written = ks->compact_written;
    st->compaction_micros = ks->compact_ns / 1000;
    for (unsigned l = 0; l < LSM_LEVELS && l < TIND_LEVELS; l++) {
        st->level_compactions[l] = ks->level_compactions[l];
        st->level_bytes_read[l] = ks->level_read[l];
        st->level_bytes_written[l] = ks->level_written[l];
    }
    st->flushed_bytes = ks->flushed_bytes;
    st->write_amplification =
        ks->flushed_bytes ? (double)(ks->flushed_bytes + ks->compact_written) / (double)ks->flushed_bytes : 0.0;
    st->stalls = ks->stalls;
    st->slowdowns = ks->slowdowns;
    st->stall_micros = ks->stall_ns / 1000;
    st->pending_compaction_bytes = ks->pending_bytes;
    pthread_mutex_unlock(&ks->mu);
    return TIND_OK;
}

int tind_keyspace_get_options(tind_keyspace *ks, tind_keyspace_options *o)
{
    err_clear();
    if (!o) return err_set(TIND_INVALID, "tind_keyspace_get_options: NULL options");
    int rc = db_check_keyspace(ks);
    if (rc) return rc;
    pthread_mutex_lock(&ks->mu); /* options change under ks->mu (tind_keyspace_open) */
    *o = ks->opts;
    pthread_mutex_unlock(&ks->mu);
    return TIND_OK;
}
