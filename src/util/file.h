/* The file layer: every byte tind reads or writes, every sync, rename, unlink
 * and directory operation goes through these functions, so that tests can
 * inject faults at any of them (file_fault_set).
 *
 * All functions return TIND_OK or a status with the message recorded
 * (err_errno): the operation, the path and the OS's reason. Short reads and
 * writes are retried internally; EINTR is retried. */
#ifndef TIND_UTIL_FILE_H
#define TIND_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct tfile tfile;

/* Open flags. */
#define FILE_READ   0x01
#define FILE_WRITE  0x02 /* open for appending writes */
#define FILE_CREATE 0x04
#define FILE_EXCL   0x08 /* with CREATE: fail if it exists */
#define FILE_TRUNC  0x10

int file_open(const char *path, int flags, tfile **f);
/* Closes f (NULL: no-op). Reports a close error, which callers of synced
 * files treat like a failed sync. */
int file_close(tfile *f);
const char *file_path(const tfile *f);

/* Appends all n bytes at the end of the file (its tracked size). */
int file_append(tfile *f, const void *buf, size_t n);
/* Appends the iovecs in order with as few system calls as the OS allows. */
int file_appendv(tfile *f, const struct iovec *iov, int iovcnt);
/* Reads up to n bytes at off; *got is less than n only at the end of the file. */
int file_read_at(tfile *f, uint64_t off, void *buf, size_t n, size_t *got);
/* fdatasync when data_only, else fsync. */
int file_sync(tfile *f, int data_only);
int file_truncate(tfile *f, uint64_t size);
/* The size: for a file opened to write, the bytes appended so far past the
 * size at open. */
uint64_t file_size(const tfile *f);

int file_rename(const char *from, const char *to);
int file_unlink(const char *path);
int file_mkdir(const char *path);
int file_rmdir(const char *path);
/* fsyncs the directory itself, making creations, renames and unlinks in it durable. */
int file_sync_dir(const char *dir);
/* fsyncs the directory that holds path (its last component's parent, "."
 * for a bare name), making path's creation or rename durable. */
int file_sync_parent(const char *path);
/* 1 if path exists, 0 if not, or a negative status. */
int file_exists(const char *path);
/* Size of the file at path. */
int file_stat_size(const char *path, uint64_t *size);

/* Lists the names in dir (no "." or ".."), sorted. *names is one allocation
 * (array and strings) released with free(). */
int file_list_dir(const char *dir, char ***names, size_t *count);

/* Takes an exclusive, non-blocking lock on path (created if absent): TIND_BUSY
 * when another holder has it, in this process or another. */
int file_lock(const char *path, int *fd);
void file_unlock(int fd);

/* Replaces dir/name with data durably: writes dir/name.tmp, fsyncs it,
 * renames it over dir/name and fsyncs dir. */
int file_write_atomic(const char *dir, const char *name, const void *data, size_t n);
/* Reads the whole file into a malloc'd buffer. */
int file_read_all(const char *path, uint8_t **data, size_t *n);

/* Removes dir and everything in it (one level of subdirectories deep is enough
 * for tind's layout; deeper trees are removed recursively). */
int file_remove_tree(const char *dir);

/* Numbered files (journals, tables): the number as exactly 16 lower-case hex
 * digits, then the suffix, so that names and numbers map one to one and the
 * string order of names is their numeric order. */
/* 1 and *number when name is exactly such a name with this suffix, else 0. */
int file_parse_numbered(const char *name, const char *suffix, uint64_t *number);

/* Writes dir/name into out[cap]: TIND_INVALID (message) if it does not fit. */
int file_join(char *out, size_t cap, const char *dir, const char *name);

/* ---- fault injection, for tests ---------------------------------------- */

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


/* ---- power-loss simulation, for tests -------------------------------------
 *
 * Tracks, for every file and directory under a root, what a power loss would
 * leave, and applies that loss to the real files on request:
 * - a file's data is durable up to its length at its last file_sync (data
 *   only or all); files that existed when tracking started are durable whole.
 *   A truncation (file_truncate, or FILE_TRUNC at open) is durable at once.
 * - a name (a file created, a file renamed to it, a directory made) is durable
 *   once its parent directory is synced with file_sync_dir; until then a loss
 *   removes it. An unlink, rmdir or rename is undone by a loss unless the
 *   directory was synced after it: the old content of a durable file that is
 *   unlinked or renamed over is kept in memory to restore it (test files are
 *   small). A name survives only if every directory above it survives.
 * Paths are matched as strings: the root must be spelled as tind's paths
 * spell it (the database path given to tind_open or its parent).
 *
 * Crash points: file_sync, file_sync_dir, file_rename, file_unlink and
 * file_rmdir are boundaries, numbered from 0 in the order they run. With a
 * crash armed at boundary n, the n-th one does not happen: the layer freezes
 * (it holds its lock, so every other thread's file operation blocks) and calls
 * the callback in the thread that reached it. The callback of a crash test
 * calls file_pl_drop and _exit()s; the library never exits. If the callback
 * returns, that operation and every later one fail with EIO (the power is
 * off) until file_pl_drop or file_pl_stop.
 *
 * With TIND_PL_TRACE set in the environment when tracking starts, every
 * creation, boundary and drop step is printed on stderr.
 *
 * While tracking is on, every file operation runs under the layer's lock
 * (one at a time). Start and stop tracking while no other thread uses the
 * file layer. Fault injection (file_fault_set) works alongside. */

enum file_pl_mode {
    FILE_PL_ALL,         /* every unsynced byte is lost */
    FILE_PL_KEEP,        /* every unsynced byte survives; only names are lost */
    FILE_PL_RANDOM_PART, /* a random prefix of the unsynced bytes survives */
    FILE_PL_TORN_512,    /* unsynced bytes survive up to a random 512-byte
                            boundary; the sector after it is torn: a random
                            part of it new data, the rest zeros or garbage */
    FILE_PL_TORN_4K,     /* the same with 4096-byte sectors */
    FILE_PL_ZERO_TAIL,   /* the size survives whole but the unsynced bytes from a
                            random point on read as zeros */
    FILE_PL_MODES
};

/* Starts tracking everything under root (an existing directory), counting
 * boundaries from 0 and disarming any crash. TIND_INVALID for a bad root. */
int file_pl_start(const char *root);
/* Stops tracking and forgets its state; the files are left as they are. */
void file_pl_stop(void);
/* Arms the crash at boundary n (cb NULL: disarms). */
void file_pl_crash_at(uint64_t n, void (*cb)(void *arg), void *arg);
/* Boundaries reached since tracking started. */
uint64_t file_pl_boundaries(void);
/* 1 after an armed crash fired (and the callback returned), else 0. */
int file_pl_crashed(void);
/* Applies a power loss to the files under the root: removes names that were
 * never durable, restores durable names that were unlinked, renamed or
 * renamed over, and cuts each kept file's unsynced data as mode says, drawing
 * random choices from seed. Stops tracking; but after a crash fired (from the
 * callback, or after it returned) the power stays off: every file operation
 * waits for the lock the callback holds, or fails with EIO, until
 * file_pl_stop, so no thread can touch the files the loss was applied to. */
int file_pl_drop(enum file_pl_mode mode, uint64_t seed);
/* "all", "keep", "random-part", "torn-512", "torn-4k", "zero-tail". */
const char *file_pl_mode_name(enum file_pl_mode mode);

#endif
