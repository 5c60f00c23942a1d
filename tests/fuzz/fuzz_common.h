/* Helpers shared by the libFuzzer targets in tests/fuzz/. A target aborts
 * (through FZ_CHECK) only when the library broke a promise; inputs the
 * library rejects with a status are the expected outcome for most inputs. */
#ifndef TIND_TESTS_FUZZ_COMMON_H
#define TIND_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Aborts with the location and a message: the fuzzer's signal. */
#define FZ_CHECK(cond, ...)                                                            \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* A fresh directory under /dev/shm (or $TMPDIR, or /tmp, when /dev/shm is
 * absent), "tind-fuzz-<tag>-XXXXXX"; malloc'd path, NULL on failure. */
char *fz_mkdtemp(const char *tag);
/* Removes a tree; 0 or -1. */
int fz_rmtree(const char *path);
/* Removes everything inside dir, keeping dir. */
int fz_empty_dir(const char *dir);
/* Writes p[0, n) as the whole of path (created or truncated); 0 or -1. */
int fz_write_file(const char *path, const void *p, size_t n);
/* Copies the tree src to dst (dst must not exist); 0 or -1. */
int fz_copy_tree(const char *src, const char *dst);
/* "dir/name" into out; aborts when it does not fit (paths are ours). */
void fz_join(char *out, size_t cap, const char *dir, const char *name);

/* Re-seals record framing (src/util/record.h, the journal's and the
 * manifests'): walks records from `off` by their length fields and rewrites
 * each header's two checksums, so that mutated payloads reach the decoders
 * behind the checksums. Stops at the first length that runs past the end. */
void fz_reseal_records(uint8_t *d, size_t n, size_t off);

/* A consumer of fuzz input bytes; reads past the end give zeros. */
struct fz_in {
    const uint8_t *p;
    size_t n, off;
};
static inline int fz_more(const struct fz_in *in) { return in->off < in->n; }
static inline unsigned fz_u8(struct fz_in *in) { return in->off < in->n ? in->p[in->off++] : 0; }
static inline unsigned fz_u16(struct fz_in *in)
{
    unsigned a = fz_u8(in);
    return a | fz_u8(in) << 8;
}

#endif
