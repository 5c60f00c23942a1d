/* src/util/mutex.h: the wrapper behaves as the pthread calls it wraps, and
 * in TIND_DEBUG_LOCKS builds (the sanitizer builds) tmutex_assert_held
 * passes wherever the thread holds the mutex, through a condition wait (timed
 * or not). */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "src/util/mutex.h"

static void *try_once(void *arg)
{
    struct tmutex *m = arg;
    int got = tmutex_trylock(m);
    if (got) {
        tmutex_assert_held(m);
        tmutex_unlock(m);
    }
    return (void *)(intptr_t)got;
}

static int try_from_another_thread(struct tmutex *m)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, try_once, m), 0);
    void *got;
    pthread_join(t, &got);
    return (int)(intptr_t)got;
}

Test(mutex, trylock_fails_while_another_thread_holds_it)
{
    struct tmutex m;
    cr_assert_eq(tmutex_init(&m), 0);
    tmutex_lock(&m);
    tmutex_assert_held(&m);
    cr_assert_eq(try_from_another_thread(&m), 0, "trylock took a mutex another thread holds");
    tmutex_unlock(&m);
    cr_assert_eq(try_from_another_thread(&m), 1, "trylock failed on a free mutex");
    cr_assert_eq(tmutex_trylock(&m), 1);
    tmutex_assert_held(&m);
    tmutex_unlock(&m);
    tmutex_destroy(&m);
}

struct rendezvous {
    struct tmutex mu;
    struct tcond cv;
    int waiting, go, done;
};

static void *waiter(void *arg)
{
    struct rendezvous *r = arg;
    tmutex_lock(&r->mu);
    r->waiting = 1;
    tcond_broadcast(&r->cv);
    while (!r->go) tcond_wait(&r->cv, &r->mu);
    tmutex_assert_held(&r->mu);
    r->done = 1;
    tmutex_unlock(&r->mu);
    return NULL;
}

/* The main thread can take the mutex only while the waiter sits in
 * tcond_wait, and the waiter's write after the wait happens under it. */
Test(mutex, a_condition_wait_gives_the_mutex_up_and_takes_it_back)
{
    struct rendezvous r = {.waiting = 0};
    cr_assert_eq(tmutex_init(&r.mu), 0);
    cr_assert_eq(tcond_init(&r.cv), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, waiter, &r), 0);
    tmutex_lock(&r.mu);
    while (!r.waiting) tcond_wait(&r.cv, &r.mu);
    tmutex_assert_held(&r.mu);
    r.go = 1;
    tcond_broadcast(&r.cv);
    int done_while_held = r.done;
    tmutex_unlock(&r.mu);
    pthread_join(t, NULL);
    cr_assert_eq(done_while_held, 0, "the waiter ran on while the main thread held the mutex");
    cr_assert_eq(r.done, 1);
    tcond_destroy(&r.cv);
    tmutex_destroy(&r.mu);
}

#ifdef TIND_DEBUG_LOCKS
/* Only the debug builds check: in the default build the check is empty. */
Test(mutex, assert_held_aborts_on_a_mutex_the_thread_does_not_hold, .signal = SIGABRT)
{
    struct tmutex m;
    cr_assert_eq(tmutex_init(&m), 0);
    tmutex_lock(&m);
    tmutex_unlock(&m);
    tmutex_assert_held(&m);
}
#endif

/* A timed wait for a time already past, which nobody signals, gives up
 * with ETIMEDOUT and returns holding the mutex. */
Test(mutex, a_timed_wait_nobody_signals_times_out_holding_the_mutex)
{
    struct tmutex m;
    struct tcond c;
    cr_assert_eq(tmutex_init(&m), 0);
    cr_assert_eq(tcond_init(&c), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    tmutex_lock(&m);
    int rc;
    while ((rc = tcond_timedwait(&c, &m, &until)) == 0) continue; /* a spurious wakeup */
    tmutex_assert_held(&m);
    cr_assert_eq(rc, ETIMEDOUT, "tcond_timedwait returned %d", rc);
    cr_assert_eq(try_from_another_thread(&m), 0, "the mutex was free after the timed wait");
    tmutex_unlock(&m);
    tcond_destroy(&c);
    tmutex_destroy(&m);
}
