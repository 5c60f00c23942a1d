/* Runs the SIGKILL crash test (tests/tools/crash-check.c) as part of the
 * suite: 50 kills of a writer committing batches over two keyspaces. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

Test(crash, sigkill_50_times_loses_no_acknowledged_batch, .timeout = 600)
{
    const char *tools = getenv("TIND_TOOLS");
    cr_assert(tools != NULL, "TIND_TOOLS must name the folder of crash-check (make test sets it)");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/crash-check --kills=50 --writer=%s/crash-writer", tools, tools);
    int st = system(cmd);
    cr_assert_eq(st, 0, "crash-check failed (status %d); its output above names the seed", st);
}
