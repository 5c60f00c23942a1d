/* The workload and the oracle shared by the I/O-error loop (tests/ioerr_test.c)
 * and the allocation-failure loop (tests/allocfail_test.c), in the manner of
 * SQLite's ioerr and malloc-failure loops: run a deterministic workload with
 * the kth operation failing, check that the failure reached a caller, then
 * reopen without faults and check every acknowledged batch against the
 * oracle, each batch all or nothing. */
#ifndef TIND_TESTS_SUPPORT_FAULT_WORKLOAD_H
#define TIND_TESTS_SUPPORT_FAULT_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "tind.h"

#define FW_KEYSPACES 3  /* "a", "b", "c" */
#define FW_KEYS 160     /* keys per keyspace */
#define FW_MAX_UNKNOWN 12 /* failed writes whose effect is unknown; past it the workload stops writing */
#define FW_MAX_OPS 8      /* ops per batch */
#define FW_MAX_ENTRIES 1024 /* batches and drops per run (TIND_FAULT_SCALE=10 needs ~900) */
/* The database's journal limits: small enough that the journals pass their
 * total while keyspaces hold writes of the oldest one in their active
 * memtables, so that the journal-size check seals them (a journal sync in
 * the middle of a write's group) a few times per run. */
#define FW_JOURNAL_MAX_BYTES (64u << 10)
#define FW_JOURNAL_TOTAL_MAX_BYTES (96u << 10)

/* What a batch (or a drop) did, as its caller saw it. */
enum fw_status { FW_ACKED, FW_UNKNOWN, FW_REFUSED };

struct fw_op {
    uint8_t ks;     /* 0..FW_KEYSPACES-1 */
    uint8_t del;    /* a delete, else a put */
    uint16_t key;   /* 0..FW_KEYS-1 */
    uint32_t vlen;  /* put: the value's length */
};

/* One entry of the history: a batch of ops, or the drop of keyspace `drop_ks`. */
struct fw_entry {
    int status;
    int drop_ks;    /* -1: a batch */
    struct fw_op ops[FW_MAX_OPS];
    size_t nops;
};

/* NULL, or: 1 when a fault has failed something that the call running it
 * must report (a journal's sync, say), with what failed in `what`. Asked
 * after every call that returned TIND_OK while no failure has reached a
 * caller: that call, or one before it, swallowed the failure. */
typedef int (*fw_unheard_fn)(char *what, size_t cap);

/* The workload's run under one fault. Nothing in it is allocated while the
 * workload runs, so that the allocation-failure loop counts only tind's
 * allocations. */
struct fw_run {
    char dir[512];          /* the database directory */
    unsigned workers;       /* tind_options.workers */
    struct fw_entry hist[FW_MAX_ENTRIES]; /* every write attempted, in order */
    size_t nhist;
    size_t nunknown;
    /* Failures seen by callers during the run. */
    unsigned failures;
    int first_rc;
    char first_msg[1024];
    /* Checks of each failure, filled by the caller's hook. */
    char problem[1024];     /* the first broken rule; "" when none */
    int poison_expected;    /* a journal or manifest failure was reported this session */
    int stopped;            /* the workload could not go on (open failed) */
    /* With want_stats set, what the run did, summed over its sessions (from
     * the statistics before each close): so that a test can check that the
     * workload exercises what it should. */
    int want_stats;
    uint64_t flushes, compactions, journal_files_max, tables_max;
    uint64_t journal_bytes_max; /* the journals' total after an acknowledged write */
    fw_unheard_fn unheard;      /* set after fw_run_init */
};

/* The caller's judgment of one failed call: when the failure breaks a rule,
 * it writes why into run->problem (if still empty). what: the call. */
typedef void (*fw_check_fn)(struct fw_run *run, const char *what, int rc, const char *msg);

/* Starts a run in a fresh directory under $TIND_FAULT_DIR, else /dev/shm
 * when it exists, else $TMPDIR or /tmp: 0, or -1 with errno. The database
 * gets `workers` background threads, or $TIND_FAULT_WORKERS when set. */
int fw_run_init(struct fw_run *run, const char *tag, unsigned workers);
/* Removes the run's directory. */
void fw_run_cleanup(struct fw_run *run);

/* Runs the workload on run->dir; every failing call goes through check.
 * Returns with the database closed (or never opened). $TIND_FAULT_SCALE
 * (1 to 10) multiplies its batches. */
void fw_workload(struct fw_run *run, fw_check_fn check);

/* Reopens run->dir without faults and compares every keyspace with the
 * oracle. Returns 0 when it matches, else -1 with the difference in why. */
int fw_verify(struct fw_run *run, char *why, size_t cap);

/* $name as a count (0 when unset). */
uint64_t fw_env_count(const char *name);

#endif
