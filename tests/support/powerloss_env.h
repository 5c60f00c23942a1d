/* The power-loss environment, for tests: a file environment
 * (src/util/env.h) over the fault-injection one (fault_env.h) that tracks,
 * for every file and directory under a root, what a power loss would leave,
 * and applies that loss to the real files on request:
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
 * file layer. file_pl_start installs the environment the first time; it
 * stays installed, and costs one atomic load per operation while tracking is
 * off. Fault injection (file_fault_set) works alongside: a fault is checked
 * under the lock, after the operation's boundary is counted. */
#ifndef TIND_TESTS_SUPPORT_POWERLOSS_ENV_H
#define TIND_TESTS_SUPPORT_POWERLOSS_ENV_H

#include <stdint.h>

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
