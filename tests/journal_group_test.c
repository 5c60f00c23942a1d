/* The journal's group commit with a parallel apply, against callbacks of
 * the test's own: which thread applies which request, that apply_finish
 * comes after every apply_one of its group, and what a failed apply_one
 * does to the group and to the journal. */
#include <pthread.h>
#include <stdatomic.h>

#include "tests/journal_common.h"
#include "tests/support/testutil.h"
#include "tind.h"

enum { JG_THREADS = 4, JG_OPS = 4, JG_MAX_ROUNDS = 50 };

struct jg_ctx {
    atomic_int started;      /* writers about to call journal_write this round */
    atomic_int prepared;     /* prepare calls this round */
    atomic_int applying;     /* apply_one calls under way in the current group */
    atomic_int one_calls, finish_calls, seq_applies;
    atomic_int wrong_thread, finish_early;
    int fail_thread;         /* apply_one and apply fail this writer's request; -1: none */
};

struct jg_writer {
    struct jg_ctx *ctx;
    journal *j;
    int thread;
    pthread_t self;
    buf payload;
    int rc;
    char msg[256];
};

/* The round's first prepare (the leader's) waits for every writer to be
 * queued or about to be, so that the round's requests meet in one group. */
static int jg_prepare(void *p, struct journal_req *r)
{
    struct jg_ctx *c = p;
    (void)r;
    if (atomic_fetch_add(&c->prepared, 1) == 0) {
        while (atomic_load(&c->started) < JG_THREADS) sched_yield();
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return TIND_OK;
}

static int jg_apply(void *p, struct journal_req **reqs, size_t n)
{
    struct jg_ctx *c = p;
    for (size_t i = 0; i < n; i++) {
        const struct jg_writer *w = reqs[i]->user;
        atomic_fetch_add(&c->seq_applies, 1);
        if (w->thread == c->fail_thread) return err_set(TIND_NO_MEMORY, "the test's apply failed");
    }
    return TIND_OK;
}

static int jg_apply_one(void *p, struct journal_req *r)
{
    struct jg_ctx *c = p;
    const struct jg_writer *w = r->user;
    atomic_fetch_add(&c->applying, 1);
    atomic_fetch_add(&c->one_calls, 1);
    if (!pthread_equal(pthread_self(), w->self)) atomic_fetch_add(&c->wrong_thread, 1);
    struct timespec ts = {0, 1000 * 1000}; /* long enough for the others to overlap */
    nanosleep(&ts, NULL);
    atomic_fetch_sub(&c->applying, 1);
    if (w->thread == c->fail_thread) return err_set(TIND_NO_MEMORY, "the test's apply_one failed");
    return TIND_OK;
}

static int jg_apply_finish(void *p, struct journal_req **reqs, size_t n)
{
    struct jg_ctx *c = p;
    (void)reqs;
    (void)n;
    if (atomic_load(&c->applying) != 0) atomic_fetch_add(&c->finish_early, 1);
    atomic_fetch_add(&c->finish_calls, 1);
    return TIND_OK;
}

static void *jg_write(void *p)
{
    struct jg_writer *w = p;
    w->self = pthread_self();
    struct journal_req r = {.payload = w->payload.p,
                            .len = w->payload.len,
                            .durability = TIND_DURABILITY_BUFFERED,
                            .seq_count = JG_OPS,
                            .user = w};
    atomic_fetch_add(&w->ctx->started, 1);
    w->rc = journal_write(w->j, &r);
    snprintf(w->msg, sizeof w->msg, "%s", w->rc ? err_msg() : "");
    return NULL;
}

static journal *jg_open(const char *dir, struct jg_ctx *c)
{
    struct journal_config cfg = {.dir = dir, .max_bytes = 64u << 20, .parallel_apply = 1};
    struct journal_callbacks cb = {.ctx = c,
                                   .prepare = jg_prepare,
                                   .apply = jg_apply,
                                   .apply_one = jg_apply_one,
                                   .apply_finish = jg_apply_finish};
    journal *j = NULL;
    cr_assert_eq(journal_open(&cfg, 1, 0, &cb, &j), TIND_OK, "%s", err_msg());
    return j;
}

/* One round: every writer commits one batch of JG_OPS puts at once. */
static void jg_round(journal *j, struct jg_ctx *c, struct jg_writer *w)
{
    atomic_store(&c->started, 0);
    atomic_store(&c->prepared, 0);
    pthread_t t[JG_THREADS];
    for (int i = 0; i < JG_THREADS; i++) {
        w[i].ctx = c;
        w[i].j = j;
        w[i].thread = i;
        buf_init(&w[i].payload);
        cr_assert_eq(payload_batch_init(&w[i].payload), TIND_OK);
        for (int k = 0; k < JG_OPS; k++) {
            char key[32];
            snprintf(key, sizeof key, "t%d-%d", i, k);
            cr_assert_eq(payload_batch_add(&w[i].payload, PAYLOAD_OP_PUT, 0, key, strlen(key), "v", 1), TIND_OK);
        }
        cr_assert_eq(pthread_create(&t[i], NULL, jg_write, &w[i]), 0);
    }
    for (int i = 0; i < JG_THREADS; i++) {
        pthread_join(t[i], NULL);
        buf_free(&w[i].payload);
    }
}

Test(journal_group, parallel_apply_runs_each_batch_on_its_writer)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jg_ctx c = {.fail_thread = -1};
    journal *j = jg_open(dir, &c);
    struct journal_stats st;
    int rounds = 0;
    do {
        struct jg_writer w[JG_THREADS];
        jg_round(j, &c, w);
        for (int i = 0; i < JG_THREADS; i++) cr_assert_eq(w[i].rc, TIND_OK, "writer %d: %s", i, w[i].msg);
        rounds++;
        journal_get_stats(j, &st);
    } while (st.parallel_groups == 0 && rounds < JG_MAX_ROUNDS);
    cr_assert_gt(st.parallel_groups, 0, "no group applied in parallel in %d rounds", rounds);
    cr_assert_eq(atomic_load(&c.wrong_thread), 0, "a batch was applied off its writer's thread");
    cr_assert_eq(atomic_load(&c.finish_early), 0, "apply_finish ran before its group's apply_one calls returned");
    cr_assert_eq(atomic_load(&c.finish_calls), (int)st.parallel_groups);
    /* Every batch applied once, one way or the other. */
    cr_assert_eq(atomic_load(&c.one_calls) + atomic_load(&c.seq_applies), rounds * JG_THREADS);
    cr_assert_eq(st.writes, (uint64_t)rounds * JG_THREADS);
    cr_assert_eq(journal_last_seq(j), (uint64_t)rounds * JG_THREADS * JG_OPS);
    cr_assert_eq(journal_close(j), TIND_OK);
    tu_rmtree(dir);
}

Test(journal_group, failed_apply_one_fails_the_group_and_poisons)
{
    char dir[64];
    jt_mkdtemp(dir, sizeof dir);
    struct jg_ctx c = {.fail_thread = 2};
    journal *j = jg_open(dir, &c);
    struct jg_writer w[JG_THREADS];
    jg_round(j, &c, w);
    /* Writer 2's apply failed, in a parallel group or alone: it hears of it,
     * and so does every writer of its group; a writer in a group before it
     * succeeded, and one queued after it finds the journal poisoned. */
    cr_assert_eq(w[2].rc, TIND_NO_MEMORY, "writer 2: %d (%s)", w[2].rc, w[2].msg);
    cr_assert(strstr(w[2].msg, "the test's apply") != NULL, "writer 2's message: %s", w[2].msg);
    for (int i = 0; i < JG_THREADS; i++)
        cr_assert(w[i].rc == TIND_OK || w[i].rc == TIND_NO_MEMORY || w[i].rc == TIND_POISONED, "writer %d: %d (%s)",
                  i, w[i].rc, w[i].msg);
    cr_assert_eq(journal_poisoned(j), TIND_NO_MEMORY);
    /* Nothing is published past the failed group. */
    struct journal_stats st;
    journal_get_stats(j, &st);
    cr_assert_leq(journal_last_seq(j), (uint64_t)st.writes * JG_OPS);
    /* And the next write is refused, naming the failure. */
    c.fail_thread = -1;
    struct jg_writer again[JG_THREADS];
    jg_round(j, &c, again);
    for (int i = 0; i < JG_THREADS; i++) {
        cr_assert_eq(again[i].rc, TIND_POISONED, "writer %d after the failure: %d", i, again[i].rc);
        cr_assert(strstr(again[i].msg, "the test's apply") != NULL, "writer %d's message: %s", i, again[i].msg);
    }
    cr_assert_eq(journal_close(j), TIND_OK);
    tu_rmtree(dir);
}
