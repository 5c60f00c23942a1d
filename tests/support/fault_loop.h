/* The loop that the I/O-error and allocation-failure suites drive the fault
 * workload with (tests/support/fault_workload.h): the kth operation failing
 * for k = 0, stride, 2 * stride, ... until a run in which the fault never
 * fires. By default a sample of points spread over the workload; with
 * TIND_FAULT_FULL=1 every point, or TIND_FAULT_POINTS=N of them. A failed
 * sync that writes rely on must fail the call that ran it (unheard), and a
 * fault no caller heard of must be one that may go unheard (silent_ok).
 * Criterion assertions, so header-only: the tools link fault_workload.c
 * without Criterion. */
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
    /* NULL, or: 1 when the point's first injected failure was one that the
     * call running it must report (a journal's fsync or fdatasync, which
     * acknowledged writes rely on), with what failed in `what`. The workload
     * asks it after every call that returned TIND_OK (fw_unheard_fn). */
    fw_unheard_fn unheard;
    /* NULL, or: whether the point's first injected failure may reach no
     * caller at all (the removal of a file nothing needs), with what failed
     * in `what`. Asked after disarm when no call failed. */
    int (*silent_ok)(char *what, size_t cap);
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
        run.unheard = f->unheard;
        alarm(f->seconds);
        f->arm(f->kind, k);
        fw_workload(&run, f->check);
        uint64_t fired = f->disarm();
        cr_assert(!run.problem[0], "%s point %llu: %s (first failure a caller heard of: %s)", f->name,
                  (unsigned long long)k, run.problem, run.failures ? run.first_msg : "none");
        cr_assert(fired || run.failures == 0, "%s point %llu: a call failed with no fault: %s", f->name,
                  (unsigned long long)k, run.first_msg);
        /* A fault no caller heard of: only one that loses nothing anybody
         * needs may. (A failed sync that writes rely on also failed the
         * run above, at the first call that returned TIND_OK after it.) */
        char what[600];
        cr_assert(!(fired && run.failures == 0 && f->silent_ok && !f->silent_ok(what, sizeof what)),
                  "%s point %llu: the failed %s reached no caller", f->name, (unsigned long long)k, what);
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
