/* Helpers shared by the API-level tests (and linked into tests/tools).
 * Plain C, no Criterion: every helper reports through its return value. */
#ifndef TIND_TESTS_SUPPORT_TESTUTIL_H
#define TIND_TESTS_SUPPORT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory /tmp/tind-<tag>-XXXXXX and returns its path
 * (malloc'd; free it), or NULL with errno set. */
char *tu_mkdtemp(const char *tag);

/* Removes a directory tree (files, folders, links). 0 on success, -1 on the
 * first failure (errno set). A missing path counts as removed. */
int tu_rmtree(const char *path);

/* Descriptors of this process open on files under `dir` that were deleted
 * (their space is held until they close), or -1 when /proc/self/fd cannot
 * be read. */
int tu_count_deleted_fds(const char *dir);

/* The seed for a randomized test: $TIND_SEED when set (decimal or 0x hex),
 * else one drawn from the clock and the pid. Prints "<test>: seed N
 * (replay with TIND_SEED=N)" to stderr. */
uint64_t tu_seed(const char *test);

/* splitmix64: a seed fully determines the sequence. */
uint64_t tu_rand(uint64_t *state);
/* Uniform in [0, n); n > 0. */
uint64_t tu_below(uint64_t *state, uint64_t n);

/* Formats bytes as hex for failure messages: "6162ff" (at most 64 bytes
 * shown, then "...(N bytes)"); "(null)" for NULL. Returns one of 8 rotating
 * thread-local buffers, so up to 8 results can be used in one message. */
const char *tu_hex(const void *p, size_t n);

/* memcmp order, the shorter first on a tie (the order tind keeps keys in). */
int tu_keycmp(const void *a, size_t al, const void *b, size_t bl);

/* Fills buf[0..n) with bytes derived from (seed, i) so that a value can be
 * regenerated and checked without keeping it. */
void tu_fill(void *buf, size_t n, uint64_t seed);

/* Returns the offset of the first byte where buf differs from tu_fill(seed),
 * or n when it matches. */
size_t tu_check_fill(const void *buf, size_t n, uint64_t seed);

#endif
