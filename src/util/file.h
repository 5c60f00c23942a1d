/* The file layer: every byte tind reads or writes, every sync, rename, unlink
 * and directory operation goes through these functions, and they run the
 * installed environment's operations (src/util/env.h), so that tests can
 * inject faults at any of them or simulate a power loss
 * (tests/support/fault_env.h, tests/support/powerloss_env.h).
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

#endif
