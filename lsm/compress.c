#include "lsm/compress.h"

#include <limits.h>
#include <lz4.h>
#include <pthread.h>
#include <zstd.h>

#include "lsm/table.h"
#include "lsm/table_format.h"
#include "src/util/coding.h"
#include "src/util/err.h"

void compress_ctx_init(compress_ctx *c) { c->zc = NULL; }

void compress_ctx_free(compress_ctx *c)
{
    ZSTD_freeCCtx(c->zc);
    c->zc = NULL;
}

int compress_known(unsigned type) { return type == COMPRESS_NONE || type == COMPRESS_LZ4 || type == COMPRESS_ZSTD; }

int compress_block(compress_ctx *c, unsigned type, int level, const uint8_t *src, size_t n, buf *out,
                   unsigned *stored)
{
    *stored = COMPRESS_NONE;
    buf_clear(out);
    if (!compress_known(type)) return err_set(TIND_INVALID, "unknown compression %u", type);
    if (type == COMPRESS_NONE || n == 0 || n > BLOCK_MAX_COMPRESSED_RAW) return TIND_OK;
    /* Worth storing compressed only at <= n - n/8 bytes, header included. */
    size_t hdr = varint_len(n), goal = n - n / 8;
    if (goal <= hdr) return TIND_OK;
    size_t room = goal - hdr;
    size_t bound = type == COMPRESS_LZ4 ? (size_t)LZ4_compressBound((int)n) : ZSTD_compressBound(n);
    /* Compress into a full bound so the library never fails for want of room. */
    int rc = buf_reserve(out, hdr + bound);
    if (rc) return rc;
    uint8_t *dst = put_varint64(out->p, n);
    size_t got;
    if (type == COMPRESS_LZ4) {
        int r = LZ4_compress_default((const char *)src, (char *)dst, (int)n, (int)bound);
        if (r <= 0) return TIND_OK;
        got = (size_t)r;
    } else {
        if (!c->zc && !(c->zc = ZSTD_createCCtx())) return err_nomem();
        got = ZSTD_compressCCtx(c->zc, dst, bound, src, n, level);
        if (ZSTD_isError(got)) return TIND_OK;
    }
    if (got > room) return TIND_OK;
    out->len = hdr + got;
    *stored = type;
    return TIND_OK;
}

int compress_raw_size(const uint8_t *src, size_t n, size_t *raw)
{
    uint64_t v;
    if (!get_varint64(src, src + n, &v)) return err_set(TIND_CORRUPTION, "compressed block: bad size header");
    if (v > BLOCK_MAX_COMPRESSED_RAW)
        return err_set(TIND_CORRUPTION, "compressed block: declared size %llu over the limit", (unsigned long long)v);
    *raw = (size_t)v;
    return TIND_OK;
}

/* One zstd decompression context per thread, freed when the thread exits:
 * ZSTD_decompress would allocate one per block. */
static pthread_key_t compress_dctx_key;
static pthread_once_t compress_dctx_once = PTHREAD_ONCE_INIT;
static int compress_dctx_key_ok;

static void compress_dctx_free(void *p) { ZSTD_freeDCtx(p); }
static void compress_dctx_key_init(void) { compress_dctx_key_ok = pthread_key_create(&compress_dctx_key, compress_dctx_free) == 0; }

int compress_decode(unsigned type, const uint8_t *src, size_t n, uint8_t *dst, size_t raw)
{
    uint64_t v;
    const uint8_t *p = get_varint64(src, src + n, &v);
    if (!p || v != raw) return err_set(TIND_CORRUPTION, "compressed block: bad size header");
    size_t pn = n - (size_t)(p - src);
    if (type == COMPRESS_LZ4) {
        if (pn > INT_MAX || raw > INT_MAX) return err_set(TIND_CORRUPTION, "lz4 block too large");
        int r = LZ4_decompress_safe((const char *)p, (char *)dst, (int)pn, (int)raw);
        if (r < 0 || (size_t)r != raw) return err_set(TIND_CORRUPTION, "lz4 block does not decompress");
        return TIND_OK;
    }
    if (type == COMPRESS_ZSTD) {
        pthread_once(&compress_dctx_once, compress_dctx_key_init);
        ZSTD_DCtx *d = compress_dctx_key_ok ? pthread_getspecific(compress_dctx_key) : NULL;
        int own = 0;
        if (!d) {
            if (!(d = ZSTD_createDCtx())) return err_nomem();
            if (!compress_dctx_key_ok || pthread_setspecific(compress_dctx_key, d) != 0) own = 1;
        }
        size_t r = ZSTD_decompressDCtx(d, dst, raw, p, pn);
        if (own) ZSTD_freeDCtx(d);
        if (ZSTD_isError(r) || r != raw) return err_set(TIND_CORRUPTION, "zstd block does not decompress");
        return TIND_OK;
    }
    return err_set(TIND_CORRUPTION, "unknown compression %u", type);
}
