/* The worker pool: background threads that run the trees' flushes and
 * compactions. Jobs of a lower priority number run first: flushes are
 * priority 0, so they always go before compactions.
 *
 * Thread-safe. workers_stop waits for running jobs to return and discards
 * queued ones, calling their cancel function instead. */
#ifndef TIND_SRC_UTIL_WORKERS_H
#define TIND_SRC_UTIL_WORKERS_H

#include <stddef.h>

typedef struct workers workers;

enum { WORK_FLUSH = 0, WORK_COMPACT = 1, WORK_PRIORITIES = 2 };

typedef void (*work_fn)(void *arg);

/* Starts n threads (n >= 1). */
int workers_start(unsigned n, workers **w);
/* Queues fn(arg) at priority prio; cancel(arg) runs instead if the pool
 * stops first (cancel may be NULL). TIND_INVALID once stopping. */
int workers_submit(workers *w, int prio, work_fn fn, work_fn cancel, void *arg);
/* Waits for the running jobs, cancels the queued ones, joins the threads and frees w. */
void workers_stop(workers *w);
unsigned workers_count(const workers *w);
/* The default thread count: min(online cores, 4). */
unsigned workers_default_count(void);

#endif
