#include "src/util/workers.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "src/util/err.h"
#include "src/util/mutex.h"

struct job {
    work_fn fn, cancel;
    void *arg;
    struct job *next;
};

struct workers {
    /* mu guards the queues and stopping; cond wakes idle threads. */
    struct tmutex mu;
    struct tcond cond;
    struct job *head[WORK_PRIORITIES] GUARDED_BY(mu), *tail[WORK_PRIORITIES] GUARDED_BY(mu);
    int stopping GUARDED_BY(mu);
    /* Set by workers_start alone, before any other thread sees w. */
    unsigned n;
    pthread_t threads[];
};

/* The next job, highest priority first, or NULL. Caller holds w->mu. */
static struct job *take(workers *w) REQUIRES(w->mu)
{
    tmutex_assert_held(&w->mu);
    for (int p = 0; p < WORK_PRIORITIES; p++) {
        struct job *j = w->head[p];
        if (j) {
            w->head[p] = j->next;
            if (!w->head[p]) w->tail[p] = NULL;
            return j;
        }
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    workers *w = arg;
    tmutex_lock(&w->mu);
    for (;;) {
        struct job *j = NULL;
        while (!w->stopping && !(j = take(w))) tcond_wait(&w->cond, &w->mu);
        if (!j) break;
        tmutex_unlock(&w->mu);
        j->fn(j->arg);
        free(j);
        tmutex_lock(&w->mu);
    }
    tmutex_unlock(&w->mu);
    return NULL;
}

unsigned workers_default_count(void)
{
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    if (c < 1) c = 1;
    return c > 4 ? 4 : (unsigned)c;
}

int workers_start(unsigned n, workers **out)
{
    *out = NULL;
    if (n == 0) return err_set(TIND_INVALID, "a worker pool needs at least one thread");
    workers *w = calloc(1, sizeof *w + n * sizeof(pthread_t));
    if (!w) return err_nomem();
    /* Cannot fail with default attributes on the platforms tind builds on. */
    (void)tmutex_init(&w->mu);
    (void)tcond_init(&w->cond);
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) {
            w->n = i;
            workers_stop(w);
            return err_set(TIND_NO_MEMORY, "cannot start worker thread %u", i);
        }
        w->n = i + 1;
    }
    *out = w;
    return TIND_OK;
}

int workers_submit(workers *w, int prio, work_fn fn, work_fn cancel, void *arg)
{
    if (prio < 0 || prio >= WORK_PRIORITIES) return err_set(TIND_INVALID, "bad work priority %d", prio);
    struct job *j = malloc(sizeof *j);
    if (!j) return err_nomem();
    *j = (struct job){fn, cancel, arg, NULL};
    tmutex_lock(&w->mu);
    if (w->stopping) {
        tmutex_unlock(&w->mu);
        free(j);
        return err_set(TIND_INVALID, "the worker pool is stopping");
    }
    if (w->tail[prio]) w->tail[prio]->next = j;
    else w->head[prio] = j;
    w->tail[prio] = j;
    tcond_signal(&w->cond);
    tmutex_unlock(&w->mu);
    return TIND_OK;
}

void workers_stop(workers *w)
{
    if (!w) return;
    tmutex_lock(&w->mu);
    w->stopping = 1;
    tcond_broadcast(&w->cond);
    tmutex_unlock(&w->mu);
    for (unsigned i = 0; i < w->n; i++) pthread_join(w->threads[i], NULL);
    /* The threads are gone; mu is taken only because take() asks for it.
     * Each cancel runs without it, as a job would. */
    for (;;) {
        tmutex_lock(&w->mu);
        struct job *j = take(w);
        tmutex_unlock(&w->mu);
        if (!j) break;
        if (j->cancel) j->cancel(j->arg);
        free(j);
    }
    tcond_destroy(&w->cond);
    tmutex_destroy(&w->mu);
    free(w);
}

unsigned workers_count(const workers *w) { return w->n; }
