/* Compaction: strategies that choose work (leveled.c, tiered.c, fifo.c) and
 * the compactor that does it (compactor.c).
 *
 * A strategy looks at a version and returns the most urgent job: merge some
 * tables into an output level, move a table down without rewriting it, or
 * (FIFO) drop tables whole. The compactor runs a merge job: it reads the
 * inputs through one merging iterator, keeps for each user key the newest
 * version plus every version a live snapshot can still see, drops a
 * tombstone only when nothing older of its key can exist below the output
 * level and no snapshot needs it, and writes output tables cut near the
 * target size on user-key boundaries (one user key never spans two tables of
 * a level). It returns the version edit that swaps inputs for outputs; the
 * caller makes it durable (manifest_apply) and removes nothing itself: input
 * files go when the last version holding them does.
 *
 * Level 0 of a tiered keyspace holds sorted runs; every other level of every
 * strategy holds one sorted run of disjoint tables. Level 0 is ordered newest
 * first by max_seq (see lsm/version.h), so runs written by a merge keep
 * their place among newer flushes. */
#ifndef TIND_COMPACTION_COMPACTION_H
#define TIND_COMPACTION_COMPACTION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lsm/table.h"
#include "lsm/table_cache.h"
#include "lsm/version.h"

/* Strategies; persisted in the keyspace options as TIND_COMPACTION_*, which
 * src/tree/config.c asserts equal to these: frozen. */
enum compaction_strategy {
    COMPACTION_LEVELED = 0,
    COMPACTION_TIERED = 1,
    COMPACTION_FIFO = 2,
};

/* A keyspace's strategy and its knobs. compaction/ has no defaults of its
 * own: the tree layer fills every field from the keyspace's checked
 * options (config_compaction, src/tree/config.c); the options table
 * (src/ks_options.h) holds the defaults and ranges. compaction_pick and
 * compaction_pick_all refuse (TIND_INVALID) a config outside the ranges
 * below, and compaction_pending_bytes counts 0 for one. */
struct compaction_config {
    unsigned strategy;           /* enum compaction_strategy (TIND_COMPACTION_*) */
    unsigned l0_trigger;         /* leveled: level-0 tables that start a compaction; at least 1 */
    unsigned level_ratio;        /* leveled: size ratio between adjacent levels; at least 2 */
    uint64_t table_target_bytes; /* outputs are cut near this size; at least 1 */
    unsigned tier_width;         /* tiered: runs of similar size that merge together; at least 2 */
    uint64_t fifo_max_bytes;     /* FIFO: oldest tables dropped past this total; 0: no limit */
    uint64_t fifo_ttl_seconds;   /* FIFO: a table written longer ago than this is dropped; 0: none */
    struct table_options table[LSM_LEVELS]; /* how output tables of each level are written */
};

enum compaction_kind {
    JOB_MERGE = 0, /* rewrite the inputs into out_level */
    JOB_MOVE = 1,  /* move the single input to out_level unchanged (nothing below overlaps it) */
    JOB_DROP = 2,  /* delete the inputs whole (FIFO) */
};

struct compaction_input {
    unsigned level;
    struct table_meta *meta; /* the job holds a reference */
};

struct compaction_job {
    unsigned kind;
    unsigned out_level;
    struct compaction_input *inputs;
    size_t ninputs;
    /* No table outside the inputs, in out_level or below, overlaps the
     * inputs' key range: a tombstone no snapshot needs can be dropped. */
    int bottommost;
    double score; /* the urgency that chose it (>= 1: over its threshold) */
};

void compaction_job_free(struct compaction_job *j);

/* The most urgent job for version v under config c, or *out = NULL when
 * nothing is due. Tables whose numbers are in busy[0..nbusy) are being
 * compacted already and are never chosen (nor is a job whose output range
 * would overlap them in out_level). now: seconds since the epoch (FIFO TTL).
 * Dispatches to the strategy's picker (strategy.h, strategy.c). */
int compaction_pick(const struct compaction_config *c, const struct version *v, const uint64_t *busy, size_t nbusy,
                    uint64_t now, struct compaction_job **out);
/* A major compaction: every table into one sorted run (leveled: the last
 * level, where bottommost rules apply; tiered: one run; FIFO: level 0's
 * small tables merged into one). *out = NULL when there is nothing to do. */
int compaction_pick_all(const struct compaction_config *c, const struct version *v, struct compaction_job **out);

/* Bytes the strategy has yet to compact to bring v within its shape
 * (leveled: level 0 once at its trigger, plus every level's excess over its
 * target; tiered: the runs of full tiers; FIFO: 0). Writers slow down and
 * stop on it. */
uint64_t compaction_pending_bytes(const struct compaction_config *c, const struct version *v);

/* What a merge needs beyond the job. */
struct compaction_env {
    const char *dir;          /* the keyspace folder, where outputs are written */
    manifest *man;            /* for output file numbers */
    table_cache *tables;      /* to open the inputs */
    uint64_t space;           /* the table cache's key space (the keyspace number) */
    const uint64_t *snapshots; /* sequence numbers of live snapshots, ascending */
    size_t nsnapshots;
    uint64_t last_seq;        /* the published sequence number, the newest any reader may use;
                               * every version above it is kept and hides nothing older */
    /* When either (the non-NULL ones) becomes non-zero, the merge stops with
     * TIND_BUSY at its next entry: the database closing, the keyspace dropped. */
    const _Atomic int *stop[2];
    /* How outputs are written: the config's table options for job->out_level
     * (the config itself is not here); NULL: the table writer's defaults. */
    const struct table_options *topts;
    uint64_t target_bytes;    /* an output is cut once past this, at a user-key boundary; 0: never */
};

struct compaction_stats {
    uint64_t bytes_read, bytes_written;
    uint64_t entries_read, entries_written, entries_dropped;
    uint64_t tables_written;
    uint64_t micros;
};

/* Runs job (a JOB_MERGE) and fills edit (deletes of the inputs, adds of the
 * outputs, next_file). Outputs are finished (fsynced) tables. On failure the
 * outputs written so far are removed and edit is left empty. */
int compaction_run(const struct compaction_job *job, const struct compaction_env *env, struct version_edit *edit,
                   struct compaction_stats *st);

#endif
