/* The fault-injection environment, for tests: a file environment
 * (src/util/env.h) over the POSIX one that counts the operations a test
 * names and fails, or holds, the nth of them.
 *
 * Counted operations, each under its enum file_op: file_open and file_lock
 * (FOP_OPEN), a non-empty file_append/file_appendv (FOP_WRITE), file_read_at
 * (FOP_READ), file_sync (FOP_SYNC, or FOP_DATASYNC when data only),
 * file_truncate, file_rename (on the new name), file_unlink and file_rmdir
 * (FOP_UNLINK), file_mkdir and file_sync_dir. A failed operation records the
 * same message as the OS's failure would (err_errno: operation, path,
 * reason) and does nothing, but for a short write.
 *
 * file_fault_set installs the environment the first time (unless the
 * power-loss environment, which runs over this one, is installed); it stays
 * installed, and costs one atomic load per operation while disarmed. Arming,
 * clearing and reading the counters are safe from any thread. */
#ifndef TIND_TESTS_SUPPORT_FAULT_ENV_H
#define TIND_TESTS_SUPPORT_FAULT_ENV_H

#include <stddef.h>
#include <stdint.h>

struct file_env;

enum file_op {
    FOP_OPEN, FOP_READ, FOP_WRITE, FOP_SYNC, FOP_DATASYNC, FOP_RENAME,
    FOP_UNLINK, FOP_SYNC_DIR, FOP_TRUNCATE, FOP_MKDIR, FOP_COUNT
};
#define FOP_BIT(op) (1u << (op))

struct file_fault {
    unsigned ops;          /* FOP_BIT mask of operations that count */
    const char *path_part; /* only paths containing this count (NULL: all); copied */
    uint64_t nth;          /* the nth counted operation (0-based) fails */
    int err;               /* errno to fail with (EIO, ENOSPC, ...) */
    int short_write;       /* a failing write first writes half its bytes */
    int forever;           /* every counted operation from the nth on fails */
    int hold;              /* the nth counted operation does not fail: it waits until
                              file_fault_clear or file_fault_release, then runs */
};

/* Arms a fault; replaces any armed one. */
void file_fault_set(const struct file_fault *f);
/* Disarms. */
void file_fault_clear(void);
/* Lets a held operation (and any later one) run while the fault stays armed,
 * so that file_fault_seen goes on counting. */
void file_fault_release(void);
/* Counted operations seen since the fault was armed. */
uint64_t file_fault_seen(void);
/* Faults fired since armed. */
uint64_t file_fault_fired(void);
/* 1 and the first failed operation since armed, with its path (cut to cap),
 * when one failed; else 0. Readable after file_fault_clear. */
int file_fault_first(enum file_op *op, char *path, size_t cap);
/* 1 and the counted operation that the thread of the first failed one ran
 * just before it (since armed), when there was one; else 0. Tells a
 * directory sync after a removal from one after a creation. */
int file_fault_first_prev(enum file_op *op);

/* The environment itself, for an environment that runs over it (the
 * power-loss one); file_fault_set installs it. */
const struct file_env *file_fault_env(void);

#endif
