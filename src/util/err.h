/* Status codes and the per-thread error message.
 *
 * Internal functions return the public TIND_* codes. Where a failure has
 * context a person needs (the file, the offset, the errno), the code that
 * detects it records a message with err_set(); tind_last_error() returns it.
 * The message is per thread, so concurrent callers never see each other's. */
#ifndef TIND_UTIL_ERR_H
#define TIND_UTIL_ERR_H

#include "tind.h"

#if defined(__GNUC__)
#define TIND_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TIND_PRINTF(a, b)
#endif

/* Records a formatted message for rc and returns rc. */
int err_set(int rc, const char *fmt, ...) TIND_PRINTF(2, 3);

/* Maps an errno value to a status (ENOSPC/EDQUOT: NO_SPACE, ENOMEM: NO_MEMORY,
 * EWOULDBLOCK/EAGAIN on a lock: BUSY is the caller's business; others IO_ERROR),
 * records "<what> <path>: <strerror>" and returns the status. */
int err_errno(int e, const char *what, const char *path);

/* Records "out of memory" and returns TIND_NO_MEMORY. */
int err_nomem(void);

/* Clears the calling thread's message (at the start of a public call). */
void err_clear(void);

/* The calling thread's message. */
const char *err_msg(void);

#endif
