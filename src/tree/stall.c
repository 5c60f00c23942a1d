/* The write stall (backpressure): a write to a tree waits while too many
 * sealed memtables wait for their flush or compaction is too far behind,
 * and is slowed down before that. */
#include <time.h>

#include "src/tree/internal.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Why a write to t must wait now: 0 (it need not), STALL_MEMTABLES or
 * STALL_COMPACTION. A stall is only ever one that work already started (or
 * started here) will end, or whose failure will be reported: sealed
 * memtables always have their flush queued (tree_seal schedules it), and a level-0 or
 * pending-bytes threshold stalls only while a compaction is queued or
 * running, or a major compaction holds the tree. When the strategy found
 * nothing to do in the current version (idle_gen), no compaction could end
 * the stall and the write goes on: a threshold the strategy does not relieve
 * (tiered runs of unlike sizes counted as pending, say) never hangs writers.
 * With `slow` the slowdown thresholds are used instead of the stop ones.
 * Caller holds t->mu. */
#define STALL_MEMTABLES 1
#define STALL_COMPACTION 2
static int stall_cause(struct tree *t, int slow) REQUIRES(t->mu)
{
    tmutex_assert_held(&t->mu);
    if (atomic_load(&t->stopped) || !t->sv || atomic_load(t->env.closing)) return 0;
    if (!slow && t->nsealed >= atomic_load(&t->max_sealed)) return STALL_MEMTABLES;
    /* Level-0 thresholds apply to leveled trees: tiered and FIFO ones
     * keep their runs in level 0 by design. */
    int leveled = t->opts.compaction == TIND_COMPACTION_LEVELED;
    uint32_t l0 = slow ? t->opts.l0_slowdown_tables : t->opts.l0_stop_tables;
    uint64_t pend = slow ? t->opts.pending_slowdown_bytes : t->opts.pending_stop_bytes;
    if (!((leveled && t->sv->ver->nfiles[0] >= l0) || t->pending_bytes >= pend)) return 0;
    if (!t->compacting && !t->major && t->idle_gen != t->ver_gen + 1) compact_schedule(t);
    if (t->compact_error) return STALL_COMPACTION; /* reported, not waited for */
    if (!t->compacting && !t->major) return 0;
    return STALL_COMPACTION;
}

/* The status of a stall that cannot end (a failed flush or compaction),
 * with *why its message, or TIND_OK. Caller holds t->mu. */
static int stall_error(struct tree *t, int cause, const char **why) REQUIRES(t->mu)
{
    int err = cause == STALL_MEMTABLES ? t->flush_error : cause == STALL_COMPACTION ? t->compact_error : 0;
    if (err) *why = cause == STALL_MEMTABLES ? t->flush_errmsg : t->compact_errmsg;
    return err;
}

int tree_stall_check(struct tree *t, const char **why)
{
    *why = NULL;
    tmutex_lock(&t->mu);
    int cause = stall_cause(t, 0);
    int rc = stall_error(t, cause, why);
    if (rc == TIND_OK && cause) rc = TREE_STALLED;
    tmutex_unlock(&t->mu);
    return rc;
}

int tree_stall(struct tree *t, const char **why)
{
    *why = NULL;
    int rc = TIND_OK, stalled = 0, cause;
    uint64_t t0 = 0;
    tmutex_lock(&t->mu);
    while ((cause = stall_cause(t, 0)) != 0) {
        if ((rc = stall_error(t, cause, why)) != TIND_OK) break;
        if (!stalled) {
            stalled = 1;
            t0 = now_ns();
            t->stalls++;
        }
        /* Woken when a flush or compaction ends or fails, when the
         * tree is stopped and when the database closes. */
        tcond_wait(&t->flush_cond, &t->mu);
    }
    if (rc == TIND_OK && atomic_load(t->env.closing)) {
        *why = "the database is closing";
        rc = TIND_INVALID;
    }
    if (rc == TIND_OK && stall_cause(t, 1)) {
        /* Slow down: one bounded wait, cut short when a compaction ends. */
        if (!stalled) t0 = now_ns();
        stalled = 1;
        t->slowdowns++;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        (void)tcond_timedwait(&t->flush_cond, &t->mu, &until);
    }
    if (stalled) t->stall_ns += now_ns() - t0;
    tmutex_unlock(&t->mu);
    return rc;
}

