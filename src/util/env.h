/* The environment under the file layer: a table of the primitive file
 * operations that src/util/file.h's functions run. The library has one, the
 * POSIX environment (file_env_default); a test installs one that wraps it to
 * count, fail or hold operations, or to track what a power loss would leave
 * (tests/support/fault_env.h, tests/support/powerloss_env.h). Nothing in the
 * shipped library installs another.
 *
 * Each operation has the contract of the file.h function of the same name:
 * TIND_OK or a status with the message recorded (err_errno: the operation,
 * the path, the reason), short reads and writes and EINTR retried. A
 * wrapping environment passes the files its base opened on unchanged.
 *
 * The installed environment is process-wide, read with one atomic load per
 * operation (no lock). Install one while no other thread uses the file
 * layer; an operation already running finishes in the environment it began
 * in, so an environment that stays valid and runs over the one it replaces
 * (as the test environments do) may be installed while other threads run.
 *
 * Only file.c and environments include this header: to the rest of the
 * library a tfile is opaque. */
#ifndef TIND_UTIL_ENV_H
#define TIND_UTIL_ENV_H

#include "src/util/file.h"

/* What an environment's open makes and its other operations take: the
 * descriptor, the size as appends track it (an append adds what it wrote, a
 * truncate sets it), and the path as given to open. */
struct tfile {
    int fd;
    uint64_t size;
    char path[];
};

struct file_env {
    int (*open)(const char *path, int flags, tfile **f);
    int (*close)(tfile *f);
    int (*appendv)(tfile *f, const struct iovec *iov, int iovcnt);
    int (*read_at)(tfile *f, uint64_t off, void *buf, size_t n, size_t *got);
    int (*sync)(tfile *f, int data_only);
    int (*truncate)(tfile *f, uint64_t size);
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    /* Removes a file the library gives up on (the temporary of a failed
     * file_write_atomic), errors ignored: never durable, so not an operation
     * a test environment counts or fails. */
    void (*discard)(const char *path);
    int (*mkdir)(const char *path);
    int (*rmdir)(const char *path);
    int (*sync_dir)(const char *dir);
    int (*exists)(const char *path);
    /* 1 when path itself (a final symbolic link not followed) is a directory, else 0. */
    int (*is_dir)(const char *path);
    int (*stat_size)(const char *path, uint64_t *size);
    int (*list_dir)(const char *dir, char ***names, size_t *count);
    int (*lock)(const char *path, int *fd);
    void (*unlock)(int fd);
};

/* The POSIX environment. */
const struct file_env *file_env_default(void);
/* The installed environment. */
const struct file_env *file_env_get(void);
/* Installs env (NULL: the default); env must stay valid while installed. */
void file_env_set(const struct file_env *env);

#endif
