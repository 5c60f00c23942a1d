#include "src/workers.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "src/util/err.h"

struct job {
    work_fn fn, cancel;
    void *arg;
    struct job *next;
};

struct workers {
    /* mu guards the queues and stopping; cond wakes idle threads. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct job *head[WORK_PRIORITIES], *tail[WORK_PRIORITIES];
    int stopping;
    unsigned n;
    pthread_t threads[];
};

static struct job *take(workers *w)
{
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
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct job *j = NULL;
        while (!w->stopping && !(j = take(w))) pthread_cond_wait(&w->cond, &w->mu);
        if (!j) break;
        pthread_mutex_unlock(&w->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
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
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
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
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        pthread_mutex_unlock(&w->mu);
        free(j);
        return err_set(TIND_INVALID, "the worker pool is stopping");
    }
    if (w->tail[prio]) w->tail[prio]->next = j;
    else w->head[prio] = j;
    w->tail[prio] = j;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    return TIND_OK;
}

void workers_stop(workers *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    for (unsigned i = 0; i < w->n; i++) pthread_join(w->threads[i], NULL);
    struct job *j;
    while ((j = take(w)) != NULL) {
        if (j->cancel) j->cancel(j->arg);
        free(j);
    }
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

unsigned workers_count(const workers *w) { return w->n; }
