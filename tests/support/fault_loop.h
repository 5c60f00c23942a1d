/* The loop that the I/O-error and allocation-failure suites drive the fault
 * workload with (tests/support/fault_workload.h): the kth operation failing
 * for k = 0, stride, 2 * stride, ... until a run in which the fault never
 * fires. By default a sample of points spread over the workload; with
 * TIND_FAULT_FULL=1 every point, or TIND_FAULT_POINTS=N of them. A failed
 * sync that writes rely on must reach a caller (failed_sync). Criterion assertions, so header-only: the
 * tools link fault_workload.c without Criterion. */
#ifndef TIND_TESTS_SUPPORT_FAULT_LOOP_H
#define TIND_TESTS_SUPPORT_FAULT_LOOP_H

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/fault_workload.h"

struct fw_fault {
    const char *suite;  /* the summary line's prefix: "fault_io" */
    const char *name;   /* the kind of fault */
    const char *tag;    /* fw_run_init's */
    unsigned workers;   /* fw_run_init's */
    unsigned seconds;   /* a point that takes longer counts as a hang (alarm) */
    void (*arm)(const void *kind, uint64_t k); /* fails the kth operation from now */
    uint64_t (*disarm)(void);                  /* stops failing; returns how many failed */
    const void *kind;   /* passed to arm and count */
    fw_check_fn check;  /* judges each failed call */
    uint64_t sample_points;                    /* points in the default run */
    uint64_t (*count)(const void *kind);       /* operations in a fault-free run */
    /* NULL, or: 1 when the point's first injected failure was a sync that
     * acknowledged writes rely on (a journal's fsync or fdatasync), with what
     * failed in `what`. Read after disarm. */
    int (*failed_sync)(char *what, size_t cap);
};

/* A fault-free run's checks: no call failed and the oracle matches. Removes
 * the run's directory. */
static inline void fw_expect_clean(struct fw_run *run)
{
    cr_assert_eq(run->failures, 0u, "the workload fails without faults: %s", run->first_msg);
    char why[1024];
    cr_assert_eq(fw_verify(run, why, sizeof why), 0, "without faults: %s", why);
    fw_run_cleanup(run);
}

/* After each point: no rule broken, no failure without the fault, and a
 * reopen without faults matches the oracle. A fault that fired with no
 * caller hearing of it is counted as silent (the suite says which may be). */
static inline void fw_fault_loop(const struct fw_fault *f)
{
    int full = fw_env_count("TIND_FAULT_FULL") != 0;
    uint64_t max_points = full ? fw_env_count("TIND_FAULT_POINTS") : f->sample_points;
    uint64_t stride = 1;
    if (max_points) {
        uint64_t n = f->count(f->kind);
        stride = n / max_points > 1 ? n / max_points : 1;
    }
    static struct fw_run run;
    uint64_t points = 0, silent = 0, k;
    for (k = 0;; k += stride) {
        cr_assert_eq(fw_run_init(&run, f->tag, f->workers), 0, "mkdtemp: %s", strerror(errno));
        alarm(f->seconds);
        f->arm(f->kind, k);
        fw_workload(&run, f->check);
        uint64_t fired = f->disarm();
        cr_assert(!run.problem[0], "%s point %llu: %s (first failure: %s)", f->name, (unsigned long long)k,
                  run.problem, run.first_msg);
        cr_assert(fired || run.failures == 0, "%s point %llu: a call failed with no fault: %s", f->name,
                  (unsigned long long)k, run.first_msg);
        /* No sync is retried: after a failed one, a later sync may
         * "succeed" without the data, so a write acknowledged after it could
         * be lost. The failure must reach a caller, and poison the database
         * so that no later write is acknowledged on top of it. */
        char sync_what[600];
        cr_assert(!(fired && f->failed_sync && f->failed_sync(sync_what, sizeof sync_what) && run.failures == 0),
                  "%s point %llu: the failed %s reached no caller and later writes were acknowledged", f->name,
                  (unsigned long long)k, sync_what);
        if (fired && run.failures == 0) silent++;
        char why[1024];
        int bad = fw_verify(&run, why, sizeof why);
        cr_assert_eq(bad, 0, "%s point %llu (first failure: %s): %s", f->name, (unsigned long long)k,
                     run.failures ? run.first_msg : "none reported", why);
        alarm(0);
        fw_run_cleanup(&run);
        if (!fired) break;
        points++;
        if (max_points && points >= max_points) break;
    }
    fprintf(stderr, "%s %s: %llu injection points (stride %llu, %llu without a caller's error), %s\n", f->suite,
            f->name, (unsigned long long)points, (unsigned long long)stride, (unsigned long long)silent,
            max_points && points >= max_points ? "stopped at the points limit" : "the workload then completed");
}

#endif
