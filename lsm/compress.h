/* Block compression: none, lz4 (liblz4) or zstd (libzstd).
 *
 * A compressed block's contents carry their decompressed size first:
 *
 *   compressed := raw_size:varint64 payload
 *     lz4:  payload is one LZ4 block (LZ4_compress_default), no frame
 *     zstd: payload is one zstd frame (ZSTD_compressCCtx at the table's level)
 *
 * A block is stored compressed only when that saves at least 1/8 of its size
 * (compressed contents <= raw - raw / 8), and only when raw is at most
 * BLOCK_MAX_COMPRESSED_RAW; otherwise it is stored raw with compression byte 0.
 * Decoding rejects (TIND_CORRUPTION) a declared size over
 * BLOCK_MAX_COMPRESSED_RAW, a payload that fails to decompress, and one that
 * decompresses to any other size than declared. */
#ifndef TIND_LSM_COMPRESS_H
#define TIND_LSM_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/buf.h"

/* A writer's compression state (zstd's context, made on first use). */
typedef struct compress_ctx {
    void *zc;
} compress_ctx;

void compress_ctx_init(compress_ctx *c);
void compress_ctx_free(compress_ctx *c);

/* 1 for the compression values this build reads and writes. */
int compress_known(unsigned type);

/* Compresses src[0..n) with `type` (level: zstd's; 0 is its default) into out
 * (cleared first). *stored is `type` when out holds the compressed contents,
 * COMPRESS_NONE when the block should be stored raw (not worth it, too large,
 * or type is COMPRESS_NONE). TIND_NO_MEMORY, or TIND_INVALID for an unknown
 * type; a compressor's failure only means "store it raw". */
int compress_block(compress_ctx *c, unsigned type, int level, const uint8_t *src, size_t n, buf *out,
                   unsigned *stored);

/* The decompressed size declared by compressed contents src[0..n).
 * TIND_CORRUPTION (message) when unreadable or over the limit. */
int compress_raw_size(const uint8_t *src, size_t n, size_t *raw);

/* Decompresses src[0..n) (stored with `type`) into dst[0..raw), raw being what
 * compress_raw_size returned. TIND_CORRUPTION (message) on any mismatch,
 * TIND_NO_MEMORY when zstd cannot get a context. Any thread. */
int compress_decode(unsigned type, const uint8_t *src, size_t n, uint8_t *dst, size_t raw);

#endif
