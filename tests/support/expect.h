/* Status assertions for Criterion suites that use the public API. */
#ifndef TIND_TESTS_SUPPORT_EXPECT_H
#define TIND_TESTS_SUPPORT_EXPECT_H

#include <criterion/criterion.h>

#include "tind.h"

/* Asserts that `expr` returns `want`, printing both codes and the last error. */
#define EXPECT_RC(expr, want)                                                                          \
    do {                                                                                               \
        int rc_ = (expr);                                                                              \
        int want_ = (want);                                                                            \
        cr_assert_eq(rc_, want_, "%s: got %d (%s), want %d (%s); last error: %s", #expr, rc_,          \
                     tind_strerror(rc_), want_, tind_strerror(want_), tind_last_error());              \
    } while (0)

#define EXPECT_OK(expr) EXPECT_RC(expr, TIND_OK)

#endif
