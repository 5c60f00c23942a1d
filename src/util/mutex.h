/* Mutexes the compiler checks: a thin wrapper over pthread_mutex_t and
 * pthread_cond_t that carries Clang's thread-safety attributes.
 *
 * A struct tmutex is a capability. A function that expects its caller to
 * hold a lock is declared REQUIRES(s->mu), one that must be called without
 * it EXCLUDES(s->mu); fields a lock guards are declared GUARDED_BY(mu) (the
 * field itself) or PT_GUARDED_BY(mu) (what a pointer field points at).
 * `make thread-safety` compiles the library with clang -Wthread-safety,
 * which reports a call of a REQUIRES function on a path that does not hold
 * the lock, a call of an EXCLUDES function on one that does, a lock taken
 * twice or released when not held, a tcond_wait without its mutex, and a
 * lock still held (or no longer held) where paths join or a function ends.
 * Member annotations are not checked (see below). Under other compilers
 * every annotation expands to nothing.
 *
 * The analysis is per function and does not follow aliases across calls.
 * A guard it cannot see (one shard's mutex guarding a separate entry struct,
 * state that open and close touch before and after the handle is shared) is
 * stated in a comment. Where a teardown calls a REQUIRES helper, it takes
 * the (uncontended) lock rather than switch the analysis off; only the
 * wrappers below, where the capability changes hands, are
 * NO_THREAD_SAFETY_ANALYSIS.
 *
 * tmutex_assert_held(m) checks at run time that the calling thread holds m.
 * It costs nothing and checks nothing unless TIND_DEBUG_LOCKS is defined
 * (the Makefile defines it for its sanitizer builds, SAN=...): then each
 * tmutex records its owner, and the check is an assert(). The default build
 * (-O2 -g, assertions on) leaves it out, so the shipped library never aborts
 * on it and a tmutex is exactly a pthread_mutex_t. Objects built with and
 * without TIND_DEBUG_LOCKS must not be linked together (the struct differs);
 * each build goes to its own folder. */
#ifndef TIND_SRC_UTIL_MUTEX_H
#define TIND_SRC_UTIL_MUTEX_H

#include <pthread.h>
#include <time.h>

#ifdef TIND_DEBUG_LOCKS
#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#endif

#if defined(__clang__)
#define TSA_ATTR(x) __attribute__((x))
#else
#define TSA_ATTR(x)
#endif

/* The annotations on struct members name a sibling member, which C clang
 * cannot check yet: clang 14 refuses the name (no sibling member is in scope
 * in a C attribute), and clang 19 takes it but drops the object it belongs
 * to, so that holding s->mu does not count as holding `mu` and every access
 * is reported. Until a clang resolves them, they stay declarations for the
 * reader, expanding to nothing; REQUIRES(s->mu) on the functions that touch
 * guarded members is what the analysis checks. */
#define GUARDED_BY(mu)
#define PT_GUARDED_BY(mu)
#define ACQUIRED_BEFORE(...)
#define ACQUIRED_AFTER(...)

#define CAPABILITY(name) TSA_ATTR(capability(name))
#define REQUIRES(...) TSA_ATTR(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) TSA_ATTR(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) TSA_ATTR(acquire_capability(__VA_ARGS__))
#define RELEASE(...) TSA_ATTR(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) TSA_ATTR(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) TSA_ATTR(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(mu) TSA_ATTR(assert_capability(mu))
#define RETURN_CAPABILITY(mu) TSA_ATTR(lock_returned(mu))
#define NO_THREAD_SAFETY_ANALYSIS TSA_ATTR(no_thread_safety_analysis)

struct CAPABILITY("mutex") tmutex {
    pthread_mutex_t mu;
#ifdef TIND_DEBUG_LOCKS
    /* tmutex_self() of the thread holding it, NULL when free. Written by
     * the holder only; atomic so that a check from a thread that does not
     * hold it reads some other value without a data race. */
    _Atomic(const void *) owner;
#endif
};

struct tcond {
    pthread_cond_t cv;
};

/* An address unique to the calling thread while it runs (src/util/mutex.c):
 * what a tmutex records as its owner. */
const void *tmutex_self(void);

#ifdef TIND_DEBUG_LOCKS
#define TMUTEX_SET_OWNER(m, who) atomic_store_explicit(&(m)->owner, (who), memory_order_relaxed)
#else
#define TMUTEX_SET_OWNER(m, who) ((void)0)
#endif

/* pthread_mutex_init's status: 0, or an errno value. */
static inline int tmutex_init(struct tmutex *m)
{
    TMUTEX_SET_OWNER(m, NULL);
    return pthread_mutex_init(&m->mu, NULL);
}

/* m must be free. */
static inline void tmutex_destroy(struct tmutex *m) { pthread_mutex_destroy(&m->mu); }

/* The wrappers are where the capability changes hands, so the analysis,
 * which would see a pthread call and no capability, is off inside them. */
static inline void tmutex_lock(struct tmutex *m) ACQUIRE(m) NO_THREAD_SAFETY_ANALYSIS
{
    pthread_mutex_lock(&m->mu);
    TMUTEX_SET_OWNER(m, tmutex_self());
}

static inline void tmutex_unlock(struct tmutex *m) RELEASE(m) NO_THREAD_SAFETY_ANALYSIS
{
    TMUTEX_SET_OWNER(m, NULL);
    pthread_mutex_unlock(&m->mu);
}

/* 1 with m held, or 0 (m was held elsewhere) without waiting. */
static inline int tmutex_trylock(struct tmutex *m) TRY_ACQUIRE(1, m) NO_THREAD_SAFETY_ANALYSIS
{
    if (pthread_mutex_trylock(&m->mu) != 0) return 0;
    TMUTEX_SET_OWNER(m, tmutex_self());
    return 1;
}

/* Tells the analysis that the caller holds m, and with TIND_DEBUG_LOCKS
 * checks it. For a function that a comment says runs under m. */
static inline void tmutex_assert_held(const struct tmutex *m) ASSERT_CAPABILITY(m) NO_THREAD_SAFETY_ANALYSIS
{
#ifdef TIND_DEBUG_LOCKS
    assert(atomic_load_explicit(&m->owner, memory_order_relaxed) == tmutex_self());
#else
    (void)m;
#endif
}

/* pthread_cond_init's status: 0, or an errno value. */
static inline int tcond_init(struct tcond *c) { return pthread_cond_init(&c->cv, NULL); }
static inline void tcond_destroy(struct tcond *c) { pthread_cond_destroy(&c->cv); }
static inline void tcond_signal(struct tcond *c) { pthread_cond_signal(&c->cv); }
static inline void tcond_broadcast(struct tcond *c) { pthread_cond_broadcast(&c->cv); }

/* Releases m, waits for a signal on c (or a spurious wakeup: callers loop on
 * their condition), and holds m again when it returns. */
static inline void tcond_wait(struct tcond *c, struct tmutex *m) REQUIRES(m) NO_THREAD_SAFETY_ANALYSIS
{
    TMUTEX_SET_OWNER(m, NULL);
    pthread_cond_wait(&c->cv, &m->mu);
    TMUTEX_SET_OWNER(m, tmutex_self());
}

/* tcond_wait that gives up at the CLOCK_REALTIME time *until: 0, or
 * ETIMEDOUT (m is held again either way). */
static inline int tcond_timedwait(struct tcond *c, struct tmutex *m, const struct timespec *until) REQUIRES(m)
    NO_THREAD_SAFETY_ANALYSIS
{
    TMUTEX_SET_OWNER(m, NULL);
    int rc = pthread_cond_timedwait(&c->cv, &m->mu, until);
    TMUTEX_SET_OWNER(m, tmutex_self());
    return rc;
}

#endif
