/* A stand-in for <criterion/criterion.h>, used only by `make SAN=thread`
 * (see ../README.md): Criterion cannot start under ThreadSanitizer, so the
 * thread-sanitizer build compiles the same tests against this header and
 * links tests/support/tsan/runner.c instead of -lcriterion.
 *
 * It provides the subset of Criterion 2.4's API that tind's tests use, with
 * Criterion's semantics:
 *   Test(suite, name, .init .fini .timeout .disabled .description
 *        .exit_code .signal), TestSuite(suite, same options)
 *   cr_assert / cr_expect, _not, _eq, _neq, _lt, _leq, _gt, _geq, _null,
 *   _not_null, _str_eq, _str_neq, _str_lt, _str_leq, _str_gt, _str_geq,
 *   _str_empty, _str_not_empty, _arr_eq, _arr_neq, _float_eq, _float_neq,
 *   cr_assert_fail, cr_expect_fail, cr_skip_test, cr_log_info/_warn/_error,
 *   and the new-API names cr_fatal, cr_fail, cr_skip.
 * Every check takes an optional printf-style message that must be a string
 * literal, as in Criterion. Each operand is evaluated exactly once, and the
 * condition is the expression Criterion evaluates, so what compiles and passes
 * there compiles and passes here. (Two deliberate differences: the float
 * checks compute in long double, and a NULL operand of a string check fails
 * it instead of crashing the test.)
 *
 * A cr_assert_* failure ends the test (its .fini still runs, as in
 * Criterion); a cr_expect_* failure marks it failed and lets it go on. */
#ifndef TIND_TSAN_CRITERION_H
#define TIND_TSAN_CRITERION_H

/* Like the real header, which sits in /usr/include: diagnostics that only
 * concern the header itself (-Wpedantic on a variadic macro given no message,
 * say) are not the test's, and the real build would not show them. */
#pragma GCC system_header

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Options of Test() and TestSuite(), named as in Criterion. */
struct criterion_test_extra_data {
    int sentinel_;           /* private: lets Test(s, n) end in a designator */
    void (*init)(void);      /* setup: the suite's, then the test's */
    void (*fini)(void);      /* teardown: the test's, then the suite's */
    int signal;              /* the test passes only if killed by this signal */
    int exit_code;           /* ... or only if it exits with this status */
    bool disabled;           /* skipped; not counted in "Tested" */
    const char *description; /* printed by --list */
    double timeout;          /* seconds; 0: none (a test's overrides its suite's) */
    void *data;              /* unused; Criterion's user pointer */
};

struct crt_suite_ {
    const char *name;
    const struct criterion_test_extra_data *data;
    struct crt_suite_ *next;
};

struct crt_test_ {
    const char *suite;
    const char *name;
    const char *file;
    unsigned line;
    void (*fn)(void);
    const struct criterion_test_extra_data *data;
    struct crt_test_ *next;
};

/* Called by the constructors that Test() and TestSuite() emit. */
void crt_register_test_(struct crt_test_ *t);
void crt_register_suite_(struct crt_suite_ *s);

/* Record a failed check; crt_fail_1 (cr_assert_*) then ends the test,
 * crt_fail_0 (cr_expect_*) returns. `what` is Criterion's default message;
 * `fmt` is the user's message behind a one-byte "x" prefix, so that an
 * absent message is not an empty format. `nvals` string operands (0-2) are
 * shown after the message. */
void crt_fail_0(const char *file, int line, const char *what, int nvals, const char *v1, const char *v2,
                const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void crt_fail_1(const char *file, int line, const char *what, int nvals, const char *v1, const char *v2,
                const char *fmt, ...) __attribute__((format(printf, 7, 8), noreturn));
/* Records a passed check (its place is shown if the test later crashes). */
void crt_pass_(const char *file, int line);
/* Ends the test as skipped. */
void crt_skip_(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
/* Prints a log line; level 0 info, 1 warning, 2 error. */
void crt_log_(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* strcmp with NULL ordered first, so that a NULL operand fails a check
 * instead of crashing it. */
int crt_strcmp_(const char *a, const char *b);

/* ---- registration --------------------------------------------------------------------- */

#define CRT_ID_(Suite, Name, What) crt_##What##_##Suite##__##Name

#define Test(...) CRT_TEST_(__VA_ARGS__, .sentinel_ = 0)
#define CRT_TEST_(Suite, Name, ...)                                                                \
    static void CRT_ID_(Suite, Name, fn)(void);                                                    \
    static const struct criterion_test_extra_data CRT_ID_(Suite, Name, data) = {__VA_ARGS__};      \
    static struct crt_test_ CRT_ID_(Suite, Name, test) = {                                         \
        #Suite, #Name, __FILE__, __LINE__, CRT_ID_(Suite, Name, fn), &CRT_ID_(Suite, Name, data),  \
        NULL};                                                                                     \
    __attribute__((constructor)) static void CRT_ID_(Suite, Name, reg)(void)                       \
    {                                                                                              \
        crt_register_test_(&CRT_ID_(Suite, Name, test));                                           \
    }                                                                                              \
    static void CRT_ID_(Suite, Name, fn)(void)

#define TestSuite(...) CRT_SUITE_(__VA_ARGS__, .sentinel_ = 0)
#define CRT_SUITE_(Suite, ...)                                                                     \
    static const struct criterion_test_extra_data crt_suite_data_##Suite = {__VA_ARGS__};          \
    static struct crt_suite_ crt_suite_##Suite = {#Suite, &crt_suite_data_##Suite, NULL};          \
    __attribute__((constructor)) static void crt_suite_reg_##Suite(void)                           \
    {                                                                                              \
        crt_register_suite_(&crt_suite_##Suite);                                                   \
    }                                                                                              \
    struct crt_suite_ /* swallows the caller's semicolon */

/* ---- checks ----------------------------------------------------------------------------- */

/* Cond is evaluated once; the message only on failure. */
#define CRT_CHECK_(Fatal, Cond, What, ...)                                                         \
    do {                                                                                           \
        if (Cond)                                                                                  \
            crt_pass_(__FILE__, __LINE__);                                                         \
        else                                                                                       \
            crt_fail_##Fatal(__FILE__, __LINE__, What, 0, NULL, NULL, "x" __VA_ARGS__);            \
    } while (0)

#define CRT_EXPR_FALSE_(Text) "The expression " Text " is false."

#define cr_assert(Cond, ...) CRT_CHECK_(1, (Cond), CRT_EXPR_FALSE_(#Cond), __VA_ARGS__)
#define cr_expect(Cond, ...) CRT_CHECK_(0, (Cond), CRT_EXPR_FALSE_(#Cond), __VA_ARGS__)
#define cr_assert_not(Cond, ...) CRT_CHECK_(1, !(Cond), CRT_EXPR_FALSE_("!(" #Cond ")"), __VA_ARGS__)
#define cr_expect_not(Cond, ...) CRT_CHECK_(0, !(Cond), CRT_EXPR_FALSE_("!(" #Cond ")"), __VA_ARGS__)

#define CRT_OP_(Fatal, Op, A, B, ...)                                                              \
    CRT_CHECK_(Fatal, (A) Op (B), CRT_EXPR_FALSE_("(" #A ") " #Op " (" #B ")"), __VA_ARGS__)

#define cr_assert_eq(A, B, ...) CRT_OP_(1, ==, A, B, __VA_ARGS__)
#define cr_expect_eq(A, B, ...) CRT_OP_(0, ==, A, B, __VA_ARGS__)
#define cr_assert_neq(A, B, ...) CRT_OP_(1, !=, A, B, __VA_ARGS__)
#define cr_expect_neq(A, B, ...) CRT_OP_(0, !=, A, B, __VA_ARGS__)
#define cr_assert_lt(A, B, ...) CRT_OP_(1, <, A, B, __VA_ARGS__)
#define cr_expect_lt(A, B, ...) CRT_OP_(0, <, A, B, __VA_ARGS__)
#define cr_assert_leq(A, B, ...) CRT_OP_(1, <=, A, B, __VA_ARGS__)
#define cr_expect_leq(A, B, ...) CRT_OP_(0, <=, A, B, __VA_ARGS__)
#define cr_assert_gt(A, B, ...) CRT_OP_(1, >, A, B, __VA_ARGS__)
#define cr_expect_gt(A, B, ...) CRT_OP_(0, >, A, B, __VA_ARGS__)
#define cr_assert_geq(A, B, ...) CRT_OP_(1, >=, A, B, __VA_ARGS__)
#define cr_expect_geq(A, B, ...) CRT_OP_(0, >=, A, B, __VA_ARGS__)

#define cr_assert_null(V, ...) CRT_CHECK_(1, (V) == NULL, #V " is not null.", __VA_ARGS__)
#define cr_expect_null(V, ...) CRT_CHECK_(0, (V) == NULL, #V " is not null.", __VA_ARGS__)
#define cr_assert_not_null(V, ...) CRT_CHECK_(1, (V) != NULL, #V " is null.", __VA_ARGS__)
#define cr_expect_not_null(V, ...) CRT_CHECK_(0, (V) != NULL, #V " is null.", __VA_ARGS__)

/* String checks show both strings on failure. */
#define CRT_STR_OP_(Fatal, Op, A, B, ...)                                                          \
    do {                                                                                           \
        const char *crt_sa_ = (A), *crt_sb_ = (B);                                                 \
        if (crt_strcmp_(crt_sa_, crt_sb_) Op 0)                                                    \
            crt_pass_(__FILE__, __LINE__);                                                         \
        else                                                                                       \
            crt_fail_##Fatal(__FILE__, __LINE__,                                                   \
                             "The expression (as strings) (" #A ") " #Op " (" #B ") is false.", 2, \
                             crt_sa_, crt_sb_, "x" __VA_ARGS__);                                   \
    } while (0)

#define cr_assert_str_eq(A, B, ...) CRT_STR_OP_(1, ==, A, B, __VA_ARGS__)
#define cr_expect_str_eq(A, B, ...) CRT_STR_OP_(0, ==, A, B, __VA_ARGS__)
#define cr_assert_str_neq(A, B, ...) CRT_STR_OP_(1, !=, A, B, __VA_ARGS__)
#define cr_expect_str_neq(A, B, ...) CRT_STR_OP_(0, !=, A, B, __VA_ARGS__)
#define cr_assert_str_lt(A, B, ...) CRT_STR_OP_(1, <, A, B, __VA_ARGS__)
#define cr_expect_str_lt(A, B, ...) CRT_STR_OP_(0, <, A, B, __VA_ARGS__)
#define cr_assert_str_leq(A, B, ...) CRT_STR_OP_(1, <=, A, B, __VA_ARGS__)
#define cr_expect_str_leq(A, B, ...) CRT_STR_OP_(0, <=, A, B, __VA_ARGS__)
#define cr_assert_str_gt(A, B, ...) CRT_STR_OP_(1, >, A, B, __VA_ARGS__)
#define cr_expect_str_gt(A, B, ...) CRT_STR_OP_(0, >, A, B, __VA_ARGS__)
#define cr_assert_str_geq(A, B, ...) CRT_STR_OP_(1, >=, A, B, __VA_ARGS__)
#define cr_expect_str_geq(A, B, ...) CRT_STR_OP_(0, >=, A, B, __VA_ARGS__)

#define CRT_STR_EMPTY_(Fatal, Want, V, What, ...)                                                  \
    do {                                                                                           \
        const char *crt_sv_ = (V);                                                                 \
        if (crt_sv_ != NULL && (crt_sv_[0] == '\0') == (Want))                                     \
            crt_pass_(__FILE__, __LINE__);                                                         \
        else                                                                                       \
            crt_fail_##Fatal(__FILE__, __LINE__, What, 1, crt_sv_, NULL, "x" __VA_ARGS__);         \
    } while (0)

#define cr_assert_str_empty(V, ...) CRT_STR_EMPTY_(1, 1, V, #V " is not empty.", __VA_ARGS__)
#define cr_expect_str_empty(V, ...) CRT_STR_EMPTY_(0, 1, V, #V " is not empty.", __VA_ARGS__)
#define cr_assert_str_not_empty(V, ...) CRT_STR_EMPTY_(1, 0, V, #V " is empty.", __VA_ARGS__)
#define cr_expect_str_not_empty(V, ...) CRT_STR_EMPTY_(0, 0, V, #V " is empty.", __VA_ARGS__)

#define CRT_ARR_OP_(Fatal, Op, A, B, Size, ...)                                                    \
    CRT_CHECK_(Fatal, memcmp((A), (B), (Size)) Op 0,                                               \
               CRT_EXPR_FALSE_("memcmp((" #A "), (" #B "), (" #Size ")) " #Op " 0"), __VA_ARGS__)

#define cr_assert_arr_eq(A, B, Size, ...) CRT_ARR_OP_(1, ==, A, B, Size, __VA_ARGS__)
#define cr_expect_arr_eq(A, B, Size, ...) CRT_ARR_OP_(0, ==, A, B, Size, __VA_ARGS__)
#define cr_assert_arr_neq(A, B, Size, ...) CRT_ARR_OP_(1, !=, A, B, Size, __VA_ARGS__)
#define cr_expect_arr_neq(A, B, Size, ...) CRT_ARR_OP_(0, !=, A, B, Size, __VA_ARGS__)

/* |A - B| <= Epsilon, computed in long double from one evaluation of each. */
#define CRT_FLOAT_OP_(Fatal, Near, Text, A, B, Eps, ...)                                           \
    do {                                                                                           \
        long double crt_fa_ = (A), crt_fb_ = (B), crt_fe_ = (Eps);                                 \
        int crt_near_ = crt_fb_ - crt_fa_ <= crt_fe_ && crt_fa_ - crt_fb_ <= crt_fe_;              \
        CRT_CHECK_(Fatal, crt_near_ == (Near),                                                     \
                   CRT_EXPR_FALSE_("|(" #A ") - (" #B ")| " Text " (" #Eps ")"), __VA_ARGS__);     \
    } while (0)

#define cr_assert_float_eq(A, B, Eps, ...) CRT_FLOAT_OP_(1, 1, "<=", A, B, Eps, __VA_ARGS__)
#define cr_expect_float_eq(A, B, Eps, ...) CRT_FLOAT_OP_(0, 1, "<=", A, B, Eps, __VA_ARGS__)
#define cr_assert_float_neq(A, B, Eps, ...) CRT_FLOAT_OP_(1, 0, ">", A, B, Eps, __VA_ARGS__)
#define cr_expect_float_neq(A, B, Eps, ...) CRT_FLOAT_OP_(0, 0, ">", A, B, Eps, __VA_ARGS__)

#define CRT_FAIL_MSG_ "The conditions for this assertion were not met."
#define cr_assert_fail(...) crt_fail_1(__FILE__, __LINE__, CRT_FAIL_MSG_, 0, NULL, NULL, "x" __VA_ARGS__)
#define cr_expect_fail(...) crt_fail_0(__FILE__, __LINE__, CRT_FAIL_MSG_, 0, NULL, NULL, "x" __VA_ARGS__)
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#define cr_fail(...) cr_expect_fail(__VA_ARGS__)

#define cr_skip_test(...) crt_skip_(__FILE__, __LINE__, "x" __VA_ARGS__)
#define cr_skip(...) cr_skip_test(__VA_ARGS__)

/* ---- logging (criterion/logging.h) ------------------------------------------------------ */

#define cr_log_info(...) crt_log_(0, __VA_ARGS__)
#define cr_log_warn(...) crt_log_(1, __VA_ARGS__)
#define cr_log_error(...) crt_log_(2, __VA_ARGS__)

#endif
