/* The test runner of the `make SAN=thread` build, in place of Criterion's
 * (which cannot start under ThreadSanitizer; see README.md). It runs the
 * tests that criterion/criterion.h registered, each in its own forked child
 * and process group, so that an exit, a crash, a failed assertion or a
 * timeout ends that test alone.
 *
 *   tind-tests [-j N] [--filter GLOB] [--timeout SECONDS] [--verbose] [--list]
 *
 * GLOB is matched with fnmatch(FNM_EXTMATCH) against "suite/name", so that
 * extended patterns such as "api/@(put|get)*" work as in Criterion. Output
 * follows Criterion's: one "[FAIL] suite::name: ..." line per failing test, then
 * "[====] Synthesis: Tested: N | Passing: P | Failing: F | Crashing: C ".
 * As in Criterion, a crashed test counts as failing too, and disabled or
 * skipped tests are not "Tested". Exit status 0 when nothing failed.
 *
 * Child and runner share one slot per running test (mmap MAP_SHARED before
 * the fork): the child counts its failed checks there, keeps the first
 * failure's text and the place of the last passed check, so the runner can
 * report a crash or a timeout with the place the test had reached. Checks may
 * run on any of the test's threads, hence the atomics.
 *
 * A test that ThreadSanitizer reports on exits with TSan's status (66 by
 * default) instead of 0, and so fails. */
#include "criterion/criterion.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MSG_MAX = 2048 };

/* What a test's child tells the runner. Zeroed by the runner before the fork. */
struct slot {
    atomic_int nfail;                  /* failed checks */
    atomic_int skipped;                /* cr_skip_test() was called */
    _Atomic(const char *) last_file;   /* the last passed check (a __FILE__ of */
    atomic_int last_line;              /* the child's: valid in the runner too) */
    atomic_int first_taken;            /* whoever sets it writes `first` */
    atomic_int sanitizer_died;         /* TSan's death callback ran ... */
    atomic_int exiting;                /* ... but from exit(), after reports */
    char first[MSG_MAX];               /* the first failure, "file:line: msg" */
};

enum phase { PHASE_SETUP, PHASE_TEST, PHASE_TEARDOWN };

/* ---- registration (runs in constructors, before main) --------------------------------- */

static struct crt_test_ *g_tests;
static struct crt_suite_ *g_suites;

void crt_register_test_(struct crt_test_ *t)
{
    t->next = g_tests;
    g_tests = t;
}

void crt_register_suite_(struct crt_suite_ *s)
{
    s->next = g_suites;
    g_suites = s;
}

/* ---- the child's side ------------------------------------------------------------------- */

static struct slot *g_slot;     /* this test's slot; NULL in the runner */
static pid_t g_child_pid;       /* a check failing in a process the test forked just exits */
static pthread_t g_test_thread; /* only this thread may jump back to the runner code */
static atomic_int g_phase;
static sigjmp_buf g_jmp;

/* ThreadSanitizer catches SIGSEGV, SIGBUS and SIGFPE itself, prints a report
 * and exits with status 66, the status it also gives exit() after a data
 * race. Its death callback runs in both cases, but only the exit() path
 * passes through our atexit handler first (TSan registered its own before
 * main). Weak, so that the runner links without a sanitizer too. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void on_sanitizer_death(void)
{
    if (g_slot) atomic_store(&g_slot->sanitizer_died, 1);
}

static void on_exit_called(void)
{
    if (g_slot) atomic_store(&g_slot->exiting, 1);
}

int crt_strcmp_(const char *a, const char *b)
{
    if (a == NULL || b == NULL) return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

void crt_pass_(const char *file, int line)
{
    if (!g_slot) return;
    atomic_store_explicit(&g_slot->last_file, file, memory_order_relaxed);
    atomic_store_explicit(&g_slot->last_line, line, memory_order_relaxed);
}

/* Writes s to fd in one write() where possible, so that lines from tests
 * running side by side do not interleave. */
static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static size_t append(char *buf, size_t at, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* snprintf at buf+at, returning the new length, clamped to cap - 1. */
static size_t append(char *buf, size_t at, size_t cap, const char *fmt, ...)
{
    if (at >= cap - 1) return at;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + at, cap - at, fmt, ap);
    va_end(ap);
    if (n < 0) return at;
    at += (size_t)n;
    return at < cap - 1 ? at : cap - 1;
}

/* Ends the running test: from the test's own thread, by jumping back to
 * child_main() (which runs the teardown); from another thread of the test or
 * from a process it forked, where no jump is possible, by ending the process
 * with `status`. */
static void __attribute__((noreturn)) end_test(int status)
{
    if (g_slot && getpid() == g_child_pid && pthread_equal(pthread_self(), g_test_thread)) siglongjmp(g_jmp, 1);
    fflush(NULL);
    _exit(status);
}

static void vfail(int fatal, const char *file, int line, const char *what, int nvals, const char *v1,
                  const char *v2, const char *fmt, va_list ap) __attribute__((format(printf, 8, 0)));

static void vfail(int fatal, const char *file, int line, const char *what, int nvals, const char *v1,
                  const char *v2, const char *fmt, va_list ap)
{
    char msg[MSG_MAX];
    size_t n = append(msg, 0, sizeof msg, "%s:%d: ", file, line);
    size_t at = n;
    /* fmt carries the macro's "x" prefix; an empty message means Criterion's default. */
    int m = vsnprintf(msg + n, sizeof msg - n, fmt + 1, ap);
    if (m > 0) n = n + (size_t)m < sizeof msg - 1 ? n + (size_t)m : sizeof msg - 1;
    if (n == at) n = append(msg, n, sizeof msg, "%s", what);
    if (nvals == 2)
        n = append(msg, n, sizeof msg, " [\"%s\" vs \"%s\"]", v1 ? v1 : "(null)", v2 ? v2 : "(null)");
    else if (nvals == 1)
        n = append(msg, n, sizeof msg, " [\"%s\"]", v1 ? v1 : "(null)");
    int phase = atomic_load(&g_phase);
    if (g_slot && phase != PHASE_TEST)
        n = append(msg, n, sizeof msg, " (in %s)", phase == PHASE_SETUP ? "setup" : "teardown");

    char out[MSG_MAX + 32];
    int len = snprintf(out, sizeof out, "[----] %s\n", msg);
    write_all(STDERR_FILENO, out, len < 0 ? 0 : (size_t)len < sizeof out ? (size_t)len : sizeof out - 1);

    if (!g_slot) { /* outside a test (a constructor, say) */
        if (fatal) _exit(1);
        return;
    }
    atomic_fetch_add(&g_slot->nfail, 1);
    if (atomic_exchange(&g_slot->first_taken, 1) == 0) memcpy(g_slot->first, msg, n + 1);
    if (fatal) end_test(1);
}

void crt_fail_0(const char *file, int line, const char *what, int nvals, const char *v1, const char *v2,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(0, file, line, what, nvals, v1, v2, fmt, ap);
    va_end(ap);
}

void crt_fail_1(const char *file, int line, const char *what, int nvals, const char *v1, const char *v2,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(1, file, line, what, nvals, v1, v2, fmt, ap);
    va_end(ap);
    _exit(1); /* not reached: vfail jumps or exits when fatal */
}

void crt_skip_(const char *file, int line, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt + 1, ap);
    va_end(ap);
    fprintf(stderr, "[SKIP] %s:%d: %s\n", file, line, n > 0 ? msg : "skipped");
    if (g_slot) atomic_store(&g_slot->skipped, 1);
    end_test(0);
}

void crt_log_(int level, const char *fmt, ...)
{
    static const char *const prefix[] = {"[----] ", "[WARN] ", "[ERR ] "};
    char msg[MSG_MAX];
    size_t n = append(msg, 0, sizeof msg, "%s", prefix[level < 0 ? 0 : level > 2 ? 2 : level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg + n, sizeof msg - n, fmt, ap);
    va_end(ap);
    if (m > 0) n = n + (size_t)m < sizeof msg - 1 ? n + (size_t)m : sizeof msg - 1;
    n = append(msg, n, sizeof msg, "\n");
    write_all(STDERR_FILENO, msg, n);
}

/* Runs one test in this (forked) process: setup, test, teardown, as
 * Criterion does. A failed assertion in setup skips the test and the
 * teardown; one in the test (or cr_skip_test) still runs the teardown; one
 * in the test's teardown skips the suite's. */
static void __attribute__((noreturn)) child_main(const struct crt_test_ *t, const struct crt_suite_ *s,
                                                struct slot *slot)
{
    g_slot = slot;
    g_child_pid = getpid();
    g_test_thread = pthread_self();
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(on_sanitizer_death);
    atexit(on_exit_called);
    /* A test that expects a signal must die of it, not of TSan's handler. */
    if (t->data->signal > 0) signal(t->data->signal, SIG_DFL);

    atomic_store(&g_phase, PHASE_SETUP);
    if (sigsetjmp(g_jmp, 0) == 0) {
        if (s && s->data->init) s->data->init();
        if (t->data->init) t->data->init();
        atomic_store(&g_phase, PHASE_TEST);
        t->fn();
    }
    if (atomic_load(&g_phase) != PHASE_SETUP) {
        atomic_store(&g_phase, PHASE_TEARDOWN);
        if (sigsetjmp(g_jmp, 0) == 0) {
            if (t->data->fini) t->data->fini();
            if (s && s->data->fini) s->data->fini();
        }
    }
    fflush(NULL);
    exit(atomic_load(&slot->nfail) > 0 ? 1 : 0);
}

/* ---- the runner's side ------------------------------------------------------------------ */

struct job {
    const struct crt_test_ *t;
    const struct crt_suite_ *s;
    struct slot *slot;
    pid_t pid; /* 0: the job is free */
    double start;
    double timeout; /* seconds; 0: none */
    int timed_out;
};

struct totals {
    unsigned long tested, passed, failed, crashed, skipped;
};

static int g_verbose;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_tests(const void *a, const void *b)
{
    const struct crt_test_ *x = *(const struct crt_test_ *const *)a;
    const struct crt_test_ *y = *(const struct crt_test_ *const *)b;
    int c = strcmp(x->suite, y->suite);
    return c ? c : strcmp(x->name, y->name);
}

static const struct crt_suite_ *find_suite(const char *name)
{
    for (const struct crt_suite_ *s = g_suites; s; s = s->next)
        if (strcmp(s->name, name) == 0) return s;
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: %s [-j N] [--filter GLOB] [--timeout SECONDS] [--verbose] [--list]\n"
               "  -j N, --jobs N     run N tests at a time (default: 2, or 1 on one core)\n"
               "  --filter GLOB      run only tests whose \"suite/name\" matches GLOB (fnmatch, extglob)\n"
               "  --timeout SECONDS  time limit for tests that set none (default: none)\n"
               "  --verbose          also print each test as it starts and passes\n"
               "  --list             list the tests and exit\n"
               "Runner of the thread-sanitizer build (tests/support/tsan/README.md).\n",
            "tind-tests");
}

/* The value of option `name` at argv[*i] ("--name V", "--name=V", "-jV"), or NULL. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, const char *alias)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=') return a + n + 1;
    if (strcmp(a, name) == 0 || (alias && strcmp(a, alias) == 0)) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "%s needs a value\n", a);
            exit(2);
        }
        return argv[++*i];
    }
    if (alias && strncmp(a, alias, strlen(alias)) == 0 && a[strlen(alias)] != '\0') return a + strlen(alias);
    return NULL;
}

static double parse_number(const char *opt, const char *v)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end != '\0' || d < 0) {
        fprintf(stderr, "%s: not a number >= 0: %s\n", opt, v);
        exit(2);
    }
    return d;
}

static void print_result(struct job *j, int status, struct totals *tot)
{
    const struct criterion_test_extra_data *d = j->t->data;
    struct slot *sl = j->slot;
    double secs = now() - j->start;
    int nfail = atomic_load(&sl->nfail);
    const char *lf = atomic_load(&sl->last_file);
    int ll = atomic_load(&sl->last_line);
    char where[512] = "";
    if (lf) snprintf(where, sizeof where, " (last passed check: %s:%d)", lf, ll);
    else snprintf(where, sizeof where, " (no check had passed)");

    char why[MSG_MAX + 640];
    int crashed = 0;
    why[0] = '\0';
    if (j->timed_out) {
        snprintf(why, sizeof why, "Timed out after %gs%s", j->timeout, where);
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (nfail > 0)
            snprintf(why, sizeof why, "%s (and killed by signal %d, %s)", sl->first, sig, strsignal(sig));
        else if (sig != d->signal)
            snprintf(why, sizeof why, "CRASH! killed by signal %d (%s)%s", sig, strsignal(sig), where);
        crashed = sig != d->signal;
    } else {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (nfail == 0 && atomic_load(&sl->skipped) && code == 0) {
            tot->skipped++;
            if (g_verbose) fprintf(stderr, "[SKIP] %s::%s: skipped\n", j->t->suite, j->t->name);
            return;
        }
        if (code == 66 && atomic_load(&sl->sanitizer_died) && !atomic_load(&sl->exiting)) {
            snprintf(why, sizeof why, "CRASH! ThreadSanitizer ended the test with status 66 (deadly signal "
                     "or internal error; its report is above)%s", where);
            crashed = 1;
        } else if (nfail > 0) {
            snprintf(why, sizeof why, "%s", sl->first);
            if (nfail > 1)
                snprintf(why + strlen(why), sizeof why - strlen(why), " (and %d more failed checks)", nfail - 1);
        } else if (d->signal != 0) {
            snprintf(why, sizeof why, "exited with status %d, expected signal %d (%s)", code, d->signal,
                     strsignal(d->signal));
        } else if (code != d->exit_code) {
            snprintf(why, sizeof why, "exited with status %d, expected %d%s%s", code, d->exit_code,
                     code == 66 ? " (66: ThreadSanitizer reported a problem, see its report above)" : "",
                     code == 66 ? "" : where);
        }
    }
    tot->tested++;
    if (why[0] == '\0') {
        tot->passed++;
        if (g_verbose) fprintf(stderr, "[PASS] %s::%s: (%.2fs)\n", j->t->suite, j->t->name, secs);
        return;
    }
    tot->failed++;
    tot->crashed += (unsigned long)crashed;
    fprintf(stderr, "[FAIL] %s::%s: %s (%.2fs)\n", j->t->suite, j->t->name, why, secs);
}

/* Kills a test that has not been reaped yet, with whatever it forked (its
 * process group). The child may not have reached its setpgid() yet. */
static void kill_test(pid_t pid)
{
    if (kill(-pid, SIGKILL) != 0 && errno == ESRCH) kill(pid, SIGKILL);
}

int main(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = ncpu > 1 ? 2 : 1;
    const char *filter = NULL;
    double default_timeout = 0;
    int list = 0;

    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--jobs", "-j"))) {
            jobs = (int)parse_number("--jobs", v);
            if (jobs < 1) jobs = ncpu > 1 ? 2 : 1;
        } else if ((v = opt_value(argc, argv, &i, "--filter", NULL))) {
            filter = v;
        } else if ((v = opt_value(argc, argv, &i, "--timeout", NULL))) {
            default_timeout = parse_number("--timeout", v);
        } else if (strcmp(argv[i], "--verbose") == 0 || strncmp(argv[i], "--verbose=", 10) == 0 ||
                   strcmp(argv[i], "-v") == 0) {
            g_verbose = 1;
        } else if (strcmp(argv[i], "--list") == 0 || strcmp(argv[i], "-l") == 0) {
            list = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "unknown argument: %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    size_t ntests = 0;
    for (struct crt_test_ *t = g_tests; t; t = t->next) ntests++;
    const struct crt_test_ **tests = calloc(ntests ? ntests : 1, sizeof *tests);
    struct job *job = calloc((size_t)jobs, sizeof *job);
    if (!tests || !job) {
        perror("calloc");
        return 2;
    }
    size_t k = 0;
    for (struct crt_test_ *t = g_tests; t; t = t->next) tests[k++] = t;
    qsort(tests, ntests, sizeof *tests, cmp_tests);

    if (list) {
        for (size_t i = 0; i < ntests; i++) {
            const struct crt_test_ *t = tests[i];
            const struct crt_suite_ *s = find_suite(t->suite);
            int off = t->data->disabled || (s && s->data->disabled);
            printf("%s/%s%s%s%s\n", t->suite, t->name, off ? " (disabled)" : "",
                   t->data->description ? ": " : "", t->data->description ? t->data->description : "");
        }
        return 0;
    }

    /* One shared slot per job; zeroed before each test. */
    struct slot *slots = mmap(NULL, (size_t)jobs * sizeof *slots, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (slots == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    for (int i = 0; i < jobs; i++) job[i].slot = &slots[i];

    /* SIGCHLD wakes the loop below; SIGINT/SIGTERM/SIGHUP are taken there
     * too, so that the tests' process groups die with the runner. */
    sigset_t wait_set, old_set;
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGCHLD);
    sigaddset(&wait_set, SIGINT);
    sigaddset(&wait_set, SIGTERM);
    sigaddset(&wait_set, SIGHUP);
    sigprocmask(SIG_BLOCK, &wait_set, &old_set);

    struct totals tot = {0, 0, 0, 0, 0};
    size_t next = 0;
    int running = 0;
    for (;;) {
        /* Start tests while a job slot is free. */
        while (running < jobs && next < ntests) {
            const struct crt_test_ *t = tests[next++];
            const struct crt_suite_ *s = find_suite(t->suite);
            char id[512];
            snprintf(id, sizeof id, "%s/%s", t->suite, t->name);
            if (filter && fnmatch(filter, id, FNM_EXTMATCH) != 0) continue;
            if (t->data->disabled || (s && s->data->disabled)) {
                tot.skipped++;
                if (g_verbose) fprintf(stderr, "[SKIP] %s::%s: Test is disabled\n", t->suite, t->name);
                continue;
            }
            struct job *j = NULL;
            for (int i = 0; i < jobs && !j; i++)
                if (job[i].pid == 0) j = &job[i];
            memset(j->slot, 0, sizeof *j->slot);
            j->t = t;
            j->s = s;
            j->timed_out = 0;
            j->timeout = t->data->timeout > 0 ? t->data->timeout
                         : s && s->data->timeout > 0 ? s->data->timeout
                                                     : default_timeout;
            if (g_verbose) fprintf(stderr, "[RUN ] %s::%s\n", t->suite, t->name);
            fflush(NULL); /* or the child would write the runner's buffered output again */
            j->start = now();
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 2;
            }
            if (pid == 0) {
                setpgid(0, 0);
                sigprocmask(SIG_SETMASK, &old_set, NULL);
                child_main(t, s, j->slot);
            }
            setpgid(pid, pid); /* also here, so that kill_test() cannot miss it */
            j->pid = pid;
            running++;
        }
        if (running == 0) break;

        /* Sleep until a child ends, a signal comes or the next deadline. */
        double left_s = 3600, t0 = now();
        for (int i = 0; i < jobs; i++) {
            if (job[i].pid == 0 || job[i].timeout <= 0 || job[i].timed_out) continue;
            double left = job[i].start + job[i].timeout - t0;
            if (left < left_s) left_s = left;
        }
        if (left_s < 0) left_s = 0;
        struct timespec ts = {(time_t)left_s, (long)((left_s - (double)(time_t)left_s) * 1e9)};
        int sig = sigtimedwait(&wait_set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            for (int i = 0; i < jobs; i++)
                if (job[i].pid) {
                    kill_test(job[i].pid);
                    waitpid(job[i].pid, NULL, 0);
                }
            fprintf(stderr, "[====] interrupted by signal %d (%s)\n", sig, strsignal(sig));
            signal(sig, SIG_DFL);
            sigprocmask(SIG_SETMASK, &old_set, NULL);
            raise(sig);
            return 128 + sig;
        }

        /* Kill tests past their deadline; reap the ones that ended. */
        t0 = now();
        for (int i = 0; i < jobs; i++) {
            struct job *j = &job[i];
            if (j->pid == 0) continue;
            if (!j->timed_out && j->timeout > 0 && t0 >= j->start + j->timeout) {
                j->timed_out = 1;
                kill_test(j->pid);
            }
            int status;
            pid_t r = waitpid(j->pid, &status, WNOHANG);
            if (r == 0 || (r < 0 && errno == EINTR)) continue;
            if (r < 0) {
                perror("waitpid");
                status = 0;
            }
            /* Whatever the test forked and left behind. Never the pid alone:
             * once reaped, it may name another process. */
            kill(-j->pid, SIGKILL);
            print_result(j, status, &tot);
            j->pid = 0;
            running--;
        }
    }

    fprintf(stderr, "[====] Synthesis: Tested: %lu | Passing: %lu | Failing: %lu | Crashing: %lu \n", tot.tested,
            tot.passed, tot.failed, tot.crashed);
    munmap(slots, (size_t)jobs * sizeof *slots);
    free(job);
    free(tests);
    return tot.failed == 0 && tot.crashed == 0 ? 0 : 1;
}
