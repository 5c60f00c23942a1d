/* Helpers shared by the transaction suites (tx_test.c, tx_error_test.c). */
#ifndef TIND_TESTS_TX_COMMON_H
#define TIND_TESTS_TX_COMMON_H

#include "tests/api_common.h"

static API_MAYBE_UNUSED tind_tx *begin(tind_db *db)
{
    tind_tx *tx = NULL;
    EXPECT_OK(tind_tx_begin(db, &tx));
    cr_assert_not_null(tx);
    return tx;
}

static API_MAYBE_UNUSED void tx_put_s(tind_tx *tx, tind_keyspace *ks, const char *k, const char *v)
{
    EXPECT_OK(tind_tx_put(tx, ks, k, strlen(k), v, strlen(v)));
}

#endif
