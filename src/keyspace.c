/* Keyspaces: names, stored options, create / open / drop / list, and the
 * database meta file that numbers them. Formats are in src/README.md. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/payload.h"
#include "src/db.h"
#include "src/ks_options.h"
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
#define OPTIONS_VERSION 1u /* the field list and its frozen tags: the table in src/ks_options.h */
/* ---- the meta file -------------------------------------------------------- */

int ks_meta_write(tind_db *db)
{
    uint8_t m[META_SIZE];
    put_u64(m, META_MAGIC);
    put_u32(m + 8, META_VERSION);
    put_u32(m + 12, db->next_ks_id);
    put_u64(m + 16, checksum64(m, 16));
    return file_write_atomic(db->path, DB_META_FILE, m, sizeof m);
}

int ks_meta_read(tind_db *db)
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

/* The durability plain writes to ks use under options o. */
static void ks_resolve(tind_keyspace *ks, const tind_keyspace_options *o)
{
    int d = o->durability == TIND_DURABILITY_DEFAULT ? ks->db->opts.durability : o->durability;
    atomic_store(&ks->durability, d);
}

static int ks_dir_path(const tind_db *db, uint32_t id, char *out, size_t cap)
{
    if (snprintf(out, cap, "%s/%u", db->ks_dir, id) >= (int)cap)
        return err_set(TIND_INVALID, "keyspace path too long in %s", db->ks_dir);
    return TIND_OK;
}

static int ks_write_options(const tind_keyspace *ks, const tind_keyspace_options *o)
{
    uint8_t b[8 + 4 + 4 + 1 + TIND_MAX_KEYSPACE_NAME + KS_OPTIONS_ENCODED_MAX + 8];
    uint8_t *p = b;
    size_t nl = strlen(ks->name);
    put_u64(p, OPTIONS_MAGIC);
    put_u32(p + 8, OPTIONS_VERSION);
    put_u32(p + 12, ks->id);
    p[16] = (uint8_t)nl;
    memcpy(p + 17, ks->name, nl);
    p = ks_options_encode(p + 17 + nl, o);
    put_u64(p, checksum64(b, (size_t)(p - b)));
    p += 8;
    return file_write_atomic(ks->dir, KS_OPTIONS_FILE, b, (size_t)(p - b));
}

/* Decodes an OPTIONS file into ks (id, name) and *o. */
static int ks_decode_options(const char *path, const uint8_t *b, size_t n, tind_keyspace *ks,
                             tind_keyspace_options *o)
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
    return ks_options_decode(path, b, p, end, o);
}

/* ---- the keyspace table ---------------------------------------------------------- */

static tind_keyspace *ks_alloc(tind_db *db)
{
    tind_keyspace *ks = calloc(1, sizeof *ks);
    if (!ks) return NULL;
    ks->db = db;
    return ks;
}

void ks_free(tind_keyspace *ks)
{
    if (!ks) return;
    tree_free(ks->tree);
    free(ks->dir);
    free(ks);
}

int ks_verify_options(tind_keyspace *ks, uint64_t *bytes)
{
    tmutex_assert_held(&ks->db->ks_mu);
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
    tind_keyspace_options stored, used;
    rc = ks_decode_options(opt, b, n, tmp, &stored);
    if (rc == TIND_OK && (tmp->id != ks->id || strcmp(tmp->name, ks->name) != 0))
        rc = err_set(TIND_CORRUPTION, "%s offset 12: names keyspace %u \"%s\", the open one is %u \"%s\"", opt,
                     tmp->id, tmp->name, ks->id, ks->name);
    if (rc == TIND_OK) {
        tree_options(ks->tree, &used);
        if (!ks_options_same(&stored, &used)) rc = err_set(TIND_CORRUPTION, "%s offset 0: the stored options differ from those in use", opt);
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

/* ---- the tree's hooks ------------------------------------------------------------ */

static int ks_hook_sync_log(void *ctx)
{
    tind_keyspace *ks = ctx;
    return journal_sync_current(ks->db->jnl);
}

static void ks_hook_flushed(void *ctx)
{
    tind_keyspace *ks = ctx;
    retire_journals(ks->db);
}

static void ks_hook_manifest_failed(void *ctx, int rc)
{
    tind_keyspace *ks = ctx;
    journal_poison(ks->db->jnl, rc, err_msg());
}

static uint64_t ks_hook_last_seq(void *ctx)
{
    tind_keyspace *ks = ctx;
    return db_last_seq(ks->db);
}

static int ks_hook_snapshots(void *ctx, uint64_t **seqs, size_t *n)
{
    tind_keyspace *ks = ctx;
    return read_snapshot_seqs(ks->db, seqs, n);
}

/* Opens (or creates) the keyspace's tree in its folder under options o. */
static int ks_open_tree(tind_keyspace *ks, const tind_keyspace_options *o, int create)
{
    tind_db *db = ks->db;
    char label[16 + TIND_MAX_KEYSPACE_NAME];
    snprintf(label, sizeof label, "keyspace %s", ks->name);
    struct tree_env env = {
        .dir = ks->dir,
        .label = label,
        .space = ks->id,
        .read_only = db->opts.read_only,
        .pool = db->pool,
        .tables = db->tables,
        .closing = &db->closing,
        .hooks = {.ctx = ks,
                  .sync_log = ks_hook_sync_log,
                  .flushed = ks_hook_flushed,
                  .manifest_failed = ks_hook_manifest_failed,
                  .last_seq = ks_hook_last_seq,
                  .snapshots = ks_hook_snapshots},
    };
    return tree_open(&env, o, create, &ks->tree);
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

/* Caller holds ks_mu, which every change of the live table holds too. */
static tind_keyspace *ks_find_name(tind_db *db, const char *name) REQUIRES(db->ks_mu)
{
    for (size_t i = 0; i < db->nks; i++)
        if (!strcmp(db->ks[i]->name, name)) return db->ks[i];
    return NULL;
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
    tmutex_assert_held(&db->ks_mu);
    tmutex_lock(&db->list_mu);
    for (size_t i = 0; i < db->nks; i++) {
        if (db->ks[i] != ks) continue;
        memmove(db->ks + i, db->ks + i + 1, (db->nks - i - 1) * sizeof *db->ks);
        db->nks--;
        break;
    }
    int rc = ptr_push(&db->dropped, &db->ndropped, &db->capdropped, ks);
    tmutex_unlock(&db->list_mu);
    if (rc) {
        ks_free(ks); /* no handle survives; better than a leak */
        return rc;
    }
    /* A flush in progress finishes (or sees the drop) before the folder goes. */
    tree_quiesce(ks->tree);
    /* Read-only (a replay of a drop): nothing is deleted; the next
     * read-write open removes the folder. Otherwise OPTIONS goes first, and
     * durably: a folder without it is an unfinished keyspace that the next
     * open removes, so a crash anywhere after this is harmless. Only then
     * are the tables obsolete. Each goes with the last reference to its meta
     * (an iterator opened before the drop keeps reading every table it
     * can reach), the last one taking the folder with it. */
    int obsolete = !db->opts.read_only && (rc = ks_unlink_options(ks)) == TIND_OK;
    tree_close(ks->tree, obsolete); /* with its version, the tables no reader holds go */
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
        tind_keyspace_options o;
        rc = ks_decode_options(opt, b, n, ks, &o);
        free(b);
        if (rc == TIND_OK && ks->id != id)
            rc = err_set(TIND_CORRUPTION, "%s: keyspace number %u does not match its folder", opt, ks->id);
        if (rc == TIND_OK && id >= db->next_ks_id)
            rc = err_set(TIND_CORRUPTION, "%s: keyspace number %u not below the meta file's next %u", opt, id,
                         db->next_ks_id);
        if (rc == TIND_OK) rc = ks_set_dir(ks);
        if (rc == TIND_OK) {
            ks_resolve(ks, &o);
            rc = ks_open_tree(ks, &o, 1);
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
    tree_free(ks->tree); /* nothing was sealed: no job of it runs */
    ks->tree = NULL;
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
    REQUIRES(db->ks_mu)
{
    tmutex_assert_held(&db->ks_mu);
    if (db->next_ks_id == UINT32_MAX) return err_set(TIND_INVALID, "no keyspace numbers left");
    tind_keyspace *ks = ks_alloc(db);
    if (!ks) return err_nomem();
    ks->id = db->next_ks_id;
    snprintf(ks->name, sizeof ks->name, "%s", name);
    tind_keyspace_options opts;
    if (o) opts = *o;
    else tind_keyspace_options_init(&opts);
    ks_resolve(ks, &opts);
    db->next_ks_id++;
    int rc = ks_meta_write(db);
    if (rc == TIND_OK) rc = ks_set_dir(ks);
    int made = 0;
    if (rc == TIND_OK && (rc = file_mkdir(ks->dir)) == TIND_OK) made = 1;
    if (rc == TIND_OK) rc = file_sync_dir(db->ks_dir);
    if (rc == TIND_OK) rc = ks_write_options(ks, &opts);
    if (rc == TIND_OK) rc = ks_open_tree(ks, &opts, 1);
    if (rc == TIND_OK) {
        tmutex_lock(&db->list_mu);
        rc = ptr_push(&db->ks, &db->nks, &db->capks, ks);
        tmutex_unlock(&db->list_mu);
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
    if (o && (rc = ks_options_check(o)) != TIND_OK) return rc;
    tmutex_lock(&db->ks_mu);
    tind_keyspace *ks = ks_find_name(db, name);
    tind_keyspace_options old;
    if (ks) tree_options(ks->tree, &old);
    /* Compared field by field: equal options set one by one can differ in padding. */
    int changed = ks && o && !ks_options_same(&old, o);
    if (db->opts.read_only && (!ks || changed)) {
        rc = check_writable(db); /* creating a keyspace or storing options writes */
    } else if (!ks) {
        rc = journal_check_poisoned(db->jnl);
        if (rc == TIND_OK) rc = ks_create(db, name, o, &ks);
    } else if (changed) {
        tree_set_options(ks->tree, o);
        if ((rc = ks_write_options(ks, o)) != TIND_OK) tree_set_options(ks->tree, &old);
        ks_resolve(ks, rc == TIND_OK ? o : &old);
    }
    tmutex_unlock(&db->ks_mu);
    if (rc == TIND_OK) *out = ks;
    return rc;
}

int tind_keyspace_drop(tind_db *db, const char *name)
{
    err_clear();
    if (!db) return err_set(TIND_INVALID, "tind_keyspace_drop: NULL database");
    int rc = ks_check_name(name);
    if (rc || (rc = check_writable(db)) != TIND_OK) return rc;
    /* A drop is a write: it waits for another thread's single-writer
     * transaction to end (the gate comes before ks_mu). The thread that
     * holds one drops under it. */
    int gate;
    write_gate_enter(db, &gate);
    tmutex_lock(&db->ks_mu);
    tind_keyspace *ks = ks_find_name(db, name);
    if (!ks) {
        tmutex_unlock(&db->ks_mu);
        write_gate_leave(db, gate);
        return err_set(TIND_NOT_FOUND, "no keyspace named %s", name);
    }
    /* Pin the journals before the record exists (db.h, retire_mu): from the
     * moment it is written until OPTIONS is durably gone, the record is all
     * that keeps the keyspace dropped through a crash. */
    tmutex_lock(&db->retire_mu);
    uint64_t pin = db_last_seq(db);
    if (pin < db->drop_pin) db->drop_pin = pin;
    tmutex_unlock(&db->retire_mu);
    buf b;
    buf_init(&b);
    rc = payload_drop_init(&b, ks->id);
    if (rc == TIND_OK) {
        struct write_target t = {.ks = &ks, .n = 1};
        struct journal_req r = {.payload = b.p, .len = b.len, .durability = TIND_DURABILITY_SYNC_DATA,
                                .seq_count = 0, .user = &t};
        rc = write_submit(db, &r, 1);
    }
    buf_free(&b);
    /* Once the drop record is durable the keyspace is gone whatever happens
     * to its folder: a failure below only leaves files the next open removes,
     * and keeps the pin so that the record stays for that open to replay. A
     * record that failed to be written sits, if at all, in the current
     * journal, which is never retired: no pin is needed for it. */
    int written = rc == TIND_OK;
    if (written) rc = ks_retire(db, ks);
    tmutex_lock(&db->retire_mu);
    if (written && rc != TIND_OK) db->drop_pin_kept = 1;
    if (!db->drop_pin_kept) db->drop_pin = UINT64_MAX;
    tmutex_unlock(&db->retire_mu);
    /* What the pin held back goes now rather than at the next flush. */
    if (written && rc == TIND_OK) retire_journals(db);
    tmutex_unlock(&db->ks_mu);
    write_gate_leave(db, gate);
    return rc;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int tind_keyspace_list(tind_db *db, char ***names, size_t *count)
{
    err_clear();
    if (names) *names = NULL;
    if (count) *count = 0;
    if (!db || !names || !count) return err_set(TIND_INVALID, "tind_keyspace_list: NULL argument");
    tmutex_lock(&db->list_mu);
    size_t bytes = 0, n = db->nks;
    for (size_t i = 0; i < n; i++) bytes += strlen(db->ks[i]->name) + 1;
    char **arr = malloc(n * sizeof *arr + bytes + 1);
    if (!arr) {
        tmutex_unlock(&db->list_mu);
        return err_nomem();
    }
    char *sp = (char *)(arr + n);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(db->ks[i]->name) + 1;
        memcpy(sp, db->ks[i]->name, l);
        arr[i] = sp;
        sp += l;
    }
    tmutex_unlock(&db->list_mu);
    qsort(arr, n, sizeof *arr, cmp_name);
    *names = arr;
    *count = n;
    return TIND_OK;
}

int tind_keyspace_stats(tind_keyspace *ks, struct tind_keyspace_stats *st)
{
    err_clear();
    if (!st) return err_set(TIND_INVALID, "tind_keyspace_stats: NULL stats");
    int rc = check_keyspace(ks);
    if (rc) return rc;
    struct super_version *sv;
    if ((rc = sv_acquire(ks->tree, &sv)) != TIND_OK) return rc;
    memset(st, 0, sizeof *st);
    st->id = ks->id;
    st->durability = atomic_load(&ks->durability);
    tree_stats(ks->tree, sv, st);
    sv_unref(sv);
    return TIND_OK;
}

int tind_keyspace_get_options(tind_keyspace *ks, tind_keyspace_options *o)
{
    err_clear();
    if (!o) return err_set(TIND_INVALID, "tind_keyspace_get_options: NULL options");
    int rc = check_keyspace(ks);
    if (rc) return rc;
    tree_options(ks->tree, o);
    return TIND_OK;
}
