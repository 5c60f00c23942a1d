/* The database layer's internal structures, shared by the files of src/. */
#ifndef TIND_SRC_DB_H
#define TIND_SRC_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "journal/journal.h"
#include "lsm/memtable.h"
#include "src/util/buf.h"
#include "tind.h"

/* Directory layout (src/README.md has the byte formats):
 *   <db>/TIND                 the format marker and database meta file
 *   <db>/LOCK                 flock'd while open
 *   <db>/journals/<n>.jnl     the shared journal files
 *   <db>/keyspaces/<id>/      one folder per keyspace; OPTIONS holds its name and options */
#define DB_META_FILE "TIND"
#define DB_LOCK_FILE "LOCK"
#define DB_JOURNAL_DIR "journals"
#define DB_KEYSPACE_DIR "keyspaces"
#define KS_OPTIONS_FILE "OPTIONS"

struct tind_keyspace {
    tind_db *db;
    uint32_t id;
    char name[TIND_MAX_KEYSPACE_NAME + 1];
    tind_keyspace_options opts; /* guarded by db->ks_mu for writes; ints read racily are fine */
    _Atomic int durability;     /* resolved: what tind_put/tind_delete use */

    /* mu guards mem and dropped. mem is replaced (and the old one unref'd)
     * only under mu; readers take their own reference under mu. */
    pthread_mutex_t mu;
    memtable *mem;
    _Atomic int dropped;
};

struct tind_snapshot {
    tind_db *db;
    uint64_t seq;
    struct tind_snapshot *prev, *next;
};

struct tind_db {
    char *path, *journal_dir, *ks_dir;
    tind_options opts;
    int lock_fd;
    journal *jnl;

    /* ks_mu guards the keyspace table, next_ks_id and the meta file; it is
     * held across keyspace creation and drop (rare, and they must not
     * interleave with each other or with opening the same name). */
    pthread_mutex_t ks_mu;
    tind_keyspace **ks;  /* live keyspaces, in creation order */
    size_t nks, capks;
    tind_keyspace **dropped; /* dropped handles, freed at close so that they stay valid */
    size_t ndropped, capdropped;
    uint32_t next_ks_id;

    /* snap_mu guards the snapshot list. */
    pthread_mutex_t snap_mu;
    struct tind_snapshot snaps; /* list head (sentinel) */
    atomic_long nsnaps;
    atomic_long niters;
};

/* Validation helpers: TIND_OK or TIND_INVALID with a message. */
int db_check_key(const void *key, size_t klen);
int db_check_value(const void *val, size_t vlen);
int db_check_durability(int d);
int db_check_keyspace(const tind_keyspace *ks); /* non-NULL, not dropped */

/* Takes a reference on the keyspace's memtable: TIND_OK, or TIND_INVALID if dropped. */
int ks_acquire_mem(tind_keyspace *ks, memtable **m);

/* The newest published sequence number. */
static inline uint64_t db_last_seq(const tind_db *db) { return journal_last_seq(db->jnl); }

/* Journal callbacks (src/write.c). */
int db_write_prepare(void *ctx, struct journal_req *r);
int db_write_apply(void *ctx, struct journal_req **reqs, size_t n);

/* Replay of one journal record at open (src/write.c). */
int db_replay_record(tind_db *db, const char *path, uint64_t offset, const uint8_t *p, size_t n,
                     uint64_t *last_seq);

/* Keyspaces (src/keyspace.c). */
int ks_load_all(tind_db *db);
tind_keyspace *ks_find_id(tind_db *db, uint32_t id); /* live only; caller holds ks_mu or is single-threaded */
void ks_free(tind_keyspace *ks);
/* Marks ks dropped and releases its memtable (journal apply and replay). */
void ks_mark_dropped(tind_keyspace *ks);
/* Moves a dropped keyspace from the live table to the dropped list and
 * removes its folder. Caller holds ks_mu (or is single-threaded). */
int ks_retire(tind_db *db, tind_keyspace *ks);
int db_write_meta(tind_db *db);
int db_read_meta(tind_db *db);
/* After replay: two live keyspaces may not share a name. */
int ks_check_unique(tind_db *db);

/* A request's keyspaces, for prepare/apply. */
struct write_target {
    tind_keyspace **ks;
    size_t n;
};

#endif
