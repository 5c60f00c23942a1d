/* The registry of engines built into a benchmark binary, and the drivers'
 * error reporting.
 *
 * This file is compiled twice: as is for build/tind-bench (tind alone, so that
 * the core build needs no peer library), and with -DTIND_BENCH_PEERS for
 * build/tind-bench-peers, which `make bench-peers` links against RocksDB,
 * LevelDB and LMDB. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench/engine.h"

const struct engine_ops *const engine_list[] = {
    &engine_tind,
#ifdef TIND_BENCH_PEERS
    &engine_rocksdb, &engine_leveldb, &engine_lmdb,
#endif
    NULL,
};

const struct engine_ops *engine_find(const char *name)
{
    for (size_t i = 0; engine_list[i]; i++)
        if (!strcmp(engine_list[i]->name, name)) return engine_list[i];
    return NULL;
}

static _Thread_local char last_error[512];

int engine_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return ENGINE_ERROR;
}

const char *engine_last_error(void) { return last_error; }
