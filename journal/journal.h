/* The write-ahead journal: one per database, shared by every keyspace.
 *
 * Writing (journal/writer.c): writers queue their requests; the request at
 * the head of the queue becomes the leader, takes every request queued behind
 * it (up to a byte limit), gives them sequence numbers, appends all their
 * records with one write, syncs once if any of them asked for it, applies
 * them through the apply callback, publishes, and wakes the group. The queue
 * lock is not held during the write, the sync or the apply, so that new
 * writers can queue meanwhile and form the next group.
 *
 * A failed write or sync poisons the journal: the failing group gets the
 * error, every later request TIND_POISONED, and no sync is retried.
 *
 * Reading and recovery (journal/reader.c, journal/recovery.c). */
#ifndef TIND_JOURNAL_JOURNAL_H
#define TIND_JOURNAL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "journal/format.h"
#include "src/util/mutex.h"

typedef struct journal journal;

/* One write request. The caller fills payload/len/durability/seq_count,
 * journal_write fills status and first_seq. A request with len 0 writes
 * nothing and only syncs as its durability asks (tind_persist). */
struct journal_req {
    uint8_t *payload;   /* a journal payload; a batch gets its seq stamped in place */
    size_t len;
    int durability;     /* TIND_DURABILITY_* */
    uint32_t seq_count; /* sequence numbers the payload consumes (ops in a batch) */
    int rotate;         /* 1: the group goes into a new journal when the current one holds
                         * any record (retirement, once every write in it is flushed) */
    void *user;         /* for the callbacks */
    int status;         /* out */
    const char *why;    /* out: a static message when prepare refused it */
    uint64_t first_seq; /* out: the first sequence number given */
    /* queue bookkeeping, journal-private, guarded by the journal's mutex */
    struct journal_req *next;
    int done;
    int apply_now;      /* its writer is to apply it (apply_one), in parallel with the group */
    struct tcond cond;
};

struct journal_callbacks {
    void *ctx;
    /* Leader, before the write, once per request, in sequence order: return
     * TIND_OK to include it, or a status to fail it alone (it is not
     * written), with r->why set to a static message. r->first_seq holds the
     * first sequence number the request gets if it is included. */
    int (*prepare)(void *ctx, struct journal_req *r);
    /* Leader, after the group's records are written (and synced if asked):
     * apply them, in order. Sequence numbers up to last_seq are published by
     * the journal after this returns. A failure (out of memory) poisons the
     * journal: the records are durable but not applied, so nothing may be
     * written after them until the database is reopened and replays them. */
    int (*apply)(void *ctx, struct journal_req **reqs, size_t n);
    /* Optional, both or neither: a group of batches applied in parallel
     * (journal_config.parallel_apply). apply_one applies one batch request;
     * the writers of the group's requests call it at once, each for its
     * own, from their threads (the leader too, for its own request). Once
     * every one has returned, the leader calls apply_finish for the group
     * (what apply does after the batches: seals). Sequence numbers are
     * published after apply_finish returns; a failure of either poisons the
     * journal as apply's does. */
    int (*apply_one)(void *ctx, struct journal_req *r);
    int (*apply_finish)(void *ctx, struct journal_req **reqs, size_t n);
};

struct journal_config {
    const char *dir;          /* the journal directory */
    uint64_t max_bytes;       /* rotate past this size */
    size_t group_max_bytes;   /* a leader stops gathering past this many payload bytes */
    int parallel_apply;       /* 1: a group of at least two batches holding at least
                               * JOURNAL_PARALLEL_MIN_OPS operations is applied by its
                               * writers in parallel (apply_one), when the callbacks have it */
};

/* The fewest operations in a group for a parallel apply: below it, waking
 * the writers early costs more than the inserts they would take over. */
#define JOURNAL_PARALLEL_MIN_OPS 8

/* Starts journal `number` (a new file, header synced, directory synced) after
 * `last_seq`. The callbacks stay in use until journal_close. */
int journal_open(const struct journal_config *cfg, uint64_t number, uint64_t last_seq,
                 const struct journal_callbacks *cb, journal **j);
/* A journal that writes nothing, for read-only opens: it publishes last_seq
 * and reports journal `number` (the newest on disk, 0: none), of which
 * `bytes` are valid, as its current file; journal_write must not be called
 * on it (the database layer refuses every write first). */
int journal_open_read_only(uint64_t number, uint64_t bytes, uint64_t last_seq, journal **j);
/* Writes one request and waits for its group; returns r->status. A request
 * with rotate set closes the current journal first (synced, as at a rotation
 * past max_bytes) unless it holds no record: the closed one then retires
 * like any other. */
int journal_write(journal *j, struct journal_req *r);
/* fdatasyncs the current file. Only the group-commit leader may call it:
 * from the prepare or apply callbacks. A failure poisons the journal (every
 * later request gets TIND_POISONED naming the failed sync) and is returned:
 * the caller fails its step with it. */
int journal_sync_current(journal *j);
/* Closes the current file (synced) and starts the next, as a rotation past
 * max_bytes does, unless the current file holds no record. Only the
 * group-commit leader may call it, from the apply callback (after the
 * group's records are written). A failure poisons the journal and is
 * returned. */
int journal_rotate_current(journal *j);
/* The last published sequence number (acquire). */
uint64_t journal_last_seq(const journal *j);
/* Closes the current file (no sync: callers persist first if they want). */
int journal_close(journal *j);
/* TIND_OK, or the status that poisoned it. */
int journal_poisoned(const journal *j);
/* TIND_OK, or TIND_POISONED with a message naming the failure that poisoned it. */
int journal_check_poisoned(journal *j);
/* Poisons the journal for a failure outside it (a manifest's failed write or
 * sync): every later write gets TIND_POISONED naming msg. The first
 * poisoning's status and message stay. Any thread. */
void journal_poison(journal *j, int rc, const char *msg);

/* Records journal file `number` (from recovery: older than the current one)
 * as holding sequence numbers up to max_seq, in `bytes`. In number order. */
int journal_adopt(journal *j, uint64_t number, uint64_t max_seq, uint64_t bytes);
/* Deletes the closed journal files every record of which has a sequence
 * number below needed_seq (every keyspace has flushed it); the current file
 * is never deleted. *removed (may be NULL) counts the files deleted. Any thread. */
int journal_retire(journal *j, uint64_t needed_seq, uint64_t *removed);
/* Bytes of every journal file, closed ones included. Any thread. */
uint64_t journal_total_bytes(journal *j);
/* The highest sequence number the oldest closed journal may hold, or
 * UINT64_MAX when there is none. Any thread. */
uint64_t journal_oldest_max_seq(journal *j);

struct journal_stats {
    uint64_t writes, groups, syncs;
    uint64_t parallel_groups; /* groups whose writers applied their batches in parallel */
    uint64_t number;        /* current file's number */
    uint64_t current_bytes; /* its size */
};
void journal_get_stats(journal *j, struct journal_stats *st);

/* ---- reading ------------------------------------------------------------------ */

typedef struct journal_reader journal_reader;

/* Opens a journal file and checks its header (TIND_CORRUPTION naming the file
 * and offset 0 when bad, or when the file is shorter than a header). */
int journal_reader_open(const char *path, journal_reader **r);
const struct journal_header *journal_reader_header(const journal_reader *r);
/* The next record: TIND_OK with *payload (valid until the next call) and
 * *len, and *offset the record's offset in the file; TIND_NOT_FOUND at a clean
 * end of file; TIND_CORRUPTION (message: file, offset, what) at a record that
 * is truncated or fails its checksums. After an error the reader stays at the
 * bad record: journal_reader_offset() is its offset. */
int journal_reader_next(journal_reader *r, const uint8_t **payload, size_t *len, uint64_t *offset);
uint64_t journal_reader_offset(const journal_reader *r);
uint64_t journal_reader_file_size(const journal_reader *r);
/* 1 when a complete, valid record starts anywhere after byte `off`, 0 when
 * none does (then everything from the bad record on is a torn tail), or a
 * negative status on a read error. */
int journal_reader_valid_after(journal_reader *r, uint64_t off);
void journal_reader_close(journal_reader *r);

/* ---- recovery ------------------------------------------------------------------ */

/* Called for each record in order; a non-OK return stops recovery with it. */
typedef int (*journal_replay_fn)(void *ctx, const char *path, uint64_t offset, const uint8_t *payload,
                                 size_t len);

struct journal_recovery {
    uint64_t files;           /* journal files found */
    uint64_t max_number;      /* highest journal number found, 0 if none */
    uint64_t max_base_seq;    /* highest base_seq in their headers */
    uint64_t records;         /* records replayed */
    uint64_t truncated_bytes; /* torn tail cut off the newest journal */
    int removed_torn_newest;  /* the newest journal had only a torn header and was removed */
};

/* Replays every journal in dir, oldest first. The newest journal may end in
 * a torn tail: a bad record after which no valid record follows is cut off
 * (file truncated and synced). Any other damage — in an older journal, a bad
 * record with valid ones after it, a bad header, consecutive journals that
 * do not meet, journals that end below min_seq — is TIND_CORRUPTION naming
 * the file and offset. A newest journal no longer than a header whose header
 * is bad was torn at creation: it is removed. Names that are not journal
 * names are ignored. min_seq: a sequence number the journals were durable
 * through before this open (the highest a table's flush recorded; 0: none). */
int journal_recover(const char *dir, uint64_t min_seq, journal_replay_fn fn, void *ctx, struct journal_recovery *out);
/* Like journal_recover, deciding the same way, but changes nothing on disk:
 * a torn tail is skipped (counted in truncated_bytes) rather than cut off, a
 * torn newest journal is skipped rather than removed, nothing is synced. For
 * read-only opens, which may run beside a writer's handle of another kind. */
int journal_recover_read_only(const char *dir, uint64_t min_seq, journal_replay_fn fn, void *ctx,
                              struct journal_recovery *out);

#endif
