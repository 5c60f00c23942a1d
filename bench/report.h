/* What the benchmark measures besides latency and throughput (process I/O,
 * peak memory, database size), the description of the machine, and the
 * side-by-side table of a multi-engine run. */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* This process's storage writes from /proc/self/io (every thread, exited ones
 * included): write_bytes counts bytes when pages are dirtied or direct I/O is
 * issued, cancelled_write_bytes those dropped unwritten (a file truncated or
 * deleted while dirty). Returns 0, or -1 when /proc/self/io is unreadable. */
struct proc_io {
    uint64_t write_bytes, cancelled_write_bytes;
};
int proc_io_read(struct proc_io *io);

/* Peak resident set size of this process, bytes (VmHWM, else ru_maxrss). */
uint64_t peak_rss_bytes(void);

/* Bytes the files under dir hold on disk: per file the smaller of its size
 * and its allocated blocks, so that a sparse file (LMDB's map) counts what it
 * holds and space preallocated past the end (RocksDB's journals) does not. */
uint64_t dir_bytes(const char *dir);

/* Creates the directories above path that are missing (mkdir -p of its parent). */
void make_parents(const char *path);

/* Removes dir and everything under it; a missing dir is fine. */
void remove_tree(const char *dir);

/* Prints the date, the machine (CPUs, model, memory, kernel, the file system
 * of dir) as "key: value" lines, each prefixed with `prefix`. */
void machine_describe(FILE *out, const char *prefix, const char *dir);

/* Formats a latency in nanoseconds as microseconds ("3.21us") or
 * milliseconds ("12.4ms"). */
void fmt_latency(char *buf, size_t n, double ns);

/* ---- side-by-side table --------------------------------------------------
 * Each engine's run writes its results as tab-separated lines:
 *   W <label> <ops/s> <MB/s> <p50 ns> <p99 ns> <p99.9 ns> <ops>
 *   S <metric> <value>            (write_amp, space_amp, peak_rss_mb, settle times)
 *   V <version> <lsm|other>
 *   N <keys>                      (--num)
 *   T <label> <seconds> <ops/s>   (ops/s over time, one line per --sample-ms interval)
 * and table_print() compares the first engine with the best of the others,
 * and with the best of the other LSM trees when some peer is not one. */
#define TABLE_ENGINES 8
#define TABLE_ROWS 128

struct table_row {
    char label[64];
    int have[TABLE_ENGINES];
    double ops[TABLE_ENGINES], p99[TABLE_ENGINES];
};

struct table {
    const char *engines[TABLE_ENGINES];
    char versions[TABLE_ENGINES][64];
    int lsm[TABLE_ENGINES];       /* the engine is an LSM tree */
    int failed[TABLE_ENGINES];
    size_t nengines, nrows, nsummary;
    struct table_row rows[TABLE_ROWS];
    struct table_row summary[12]; /* ops[] holds the metric's value */
};

/* Reads one engine's results file into column `col`; -1 when unreadable. */
int table_load(struct table *t, size_t col, const char *path);
void table_print(const struct table *t, FILE *out);

#endif
