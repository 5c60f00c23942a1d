/* The payload codec: the bytes inside one journal record.
 *
 *   batch := type=1:u8 seq:u64 count:u32 op{count}
 *   op    := kind:u8 keyspace:varint32 klen:varint32 key[klen] (vlen:varint32 value[vlen])?
 *   drop  := type=2:u8 keyspace:varint32
 *
 * The value is present only for kind PUT (payload.h). Decoders trust no
 * field: every length is checked against the payload's end before use. */
#include "journal/payload.h"

#include <string.h>

#include "journal/format.h"
#include "src/util/coding.h"
#include "src/util/err.h"

/* The smallest op on disk: kind, keyspace, klen and one key byte (a DELETE). */
#define PAYLOAD_MIN_OP 4u

int payload_batch_init(buf *b)
{
    buf_clear(b);
    int rc = buf_reserve(b, PAYLOAD_BATCH_HEADER);
    if (rc) return rc;
    b->p[0] = JPAYLOAD_BATCH;
    put_u64(b->p + 1, 0); /* seq: stamped by the group-commit leader */
    put_u32(b->p + 9, 0); /* count */
    b->len = PAYLOAD_BATCH_HEADER;
    return TIND_OK;
}

int payload_batch_add(buf *b, unsigned kind, uint32_t keyspace, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    if (b->len < PAYLOAD_BATCH_HEADER || b->p[0] != JPAYLOAD_BATCH)
        return err_set(TIND_INVALID, "payload_batch_add: buffer is not a batch payload");
    if (kind != PAYLOAD_OP_PUT && kind != PAYLOAD_OP_DELETE)
        return err_set(TIND_INVALID, "payload_batch_add: kind %u is neither PUT nor DELETE", kind);
    if (klen == 0 || klen > TIND_MAX_KEY_BYTES)
        return err_set(TIND_INVALID, "key length %zu is outside 1..%u", klen, TIND_MAX_KEY_BYTES);
    if (kind == PAYLOAD_OP_PUT && vlen > TIND_MAX_VALUE_BYTES)
        return err_set(TIND_INVALID, "value length %zu is over %u", vlen, TIND_MAX_VALUE_BYTES);
    uint32_t count = get_u32(b->p + 9);
    if (count == UINT32_MAX) return err_set(TIND_INVALID, "a batch holds at most %u operations", UINT32_MAX);

    /* klen <= 65535 and vlen <= 2^32 - 1, so the sum cannot overflow a 64-bit size_t. */
    size_t need = 1 + VARINT32_MAX + VARINT32_MAX + klen;
    if (kind == PAYLOAD_OP_PUT) {
        if (vlen > SIZE_MAX - need - VARINT32_MAX) return err_nomem();
        need += VARINT32_MAX + vlen;
    }
    int rc = buf_reserve(b, need);
    if (rc) return rc;
    uint8_t *p = b->p + b->len;
    *p++ = (uint8_t)kind;
    p = put_varint32(p, keyspace);
    p = put_varint32(p, (uint32_t)klen);
    memcpy(p, key, klen);
    p += klen;
    if (kind == PAYLOAD_OP_PUT) {
        p = put_varint32(p, (uint32_t)vlen);
        if (vlen) memcpy(p, val, vlen);
        p += vlen;
    }
    b->len = (size_t)(p - b->p);
    put_u32(b->p + 9, count + 1);
    return TIND_OK;
}

uint32_t payload_batch_count(const uint8_t *p) { return get_u32(p + 9); }

void payload_stamp_seq(uint8_t *p, uint64_t seq) { put_u64(p + 1, seq); }

int payload_drop_init(buf *b, uint32_t keyspace)
{
    buf_clear(b);
    int rc = buf_reserve(b, 1 + VARINT32_MAX);
    if (rc) return rc;
    b->p[0] = JPAYLOAD_DROP_KEYSPACE;
    b->len = (size_t)(put_varint32(b->p + 1, keyspace) - b->p);
    return TIND_OK;
}

/* ---- decoding -------------------------------------------------------------- */

int payload_type(const uint8_t *p, size_t n, unsigned *type)
{
    if (n < 1) return err_set(TIND_CORRUPTION, "journal payload: empty");
    *type = p[0];
    if (p[0] != JPAYLOAD_BATCH && p[0] != JPAYLOAD_DROP_KEYSPACE)
        return err_set(TIND_CORRUPTION, "journal payload: unknown type %u", (unsigned)p[0]);
    return TIND_OK;
}

int payload_batch_open(const uint8_t *p, size_t n, uint64_t *seq, uint32_t *count, struct payload_reader *r)
{
    if (n < PAYLOAD_BATCH_HEADER)
        return err_set(TIND_CORRUPTION, "journal batch: %zu bytes, shorter than its %u-byte header", n,
                       PAYLOAD_BATCH_HEADER);
    if (p[0] != JPAYLOAD_BATCH)
        return err_set(TIND_CORRUPTION, "journal batch: type %u is not a batch", (unsigned)p[0]);
    uint64_t s = get_u64(p + 1);
    uint32_t c = get_u32(p + 9);
    /* A count the bytes cannot hold is damage; refusing it here lets callers
     * size things by count without trusting it blindly. */
    if (c > (n - PAYLOAD_BATCH_HEADER) / PAYLOAD_MIN_OP)
        return err_set(TIND_CORRUPTION, "journal batch: count %u cannot fit in %zu bytes of ops", c,
                       n - PAYLOAD_BATCH_HEADER);
    /* Every op's sequence number seq + i must fit 56 bits (PAYLOAD_SEQ_MAX). */
    if (c > 0 && (s > PAYLOAD_SEQ_MAX || c - 1 > PAYLOAD_SEQ_MAX - s))
        return err_set(TIND_CORRUPTION, "journal batch: sequence numbers %llu + %u exceed the maximum",
                       (unsigned long long)s, c);
    *seq = s;
    *count = c;
    r->p = p + PAYLOAD_BATCH_HEADER;
    r->end = p + n;
    r->left = c;
    return TIND_OK;
}

int payload_batch_next(struct payload_reader *r, struct payload_op *op)
{
    if (r->left == 0) {
        if (r->p != r->end)
            return err_set(TIND_CORRUPTION, "journal batch: %zu trailing bytes after the last op",
                           (size_t)(r->end - r->p));
        return TIND_NOT_FOUND;
    }
    /* Decode into locals; the reader moves only past a whole, valid op. */
    const uint8_t *p = r->p, *end = r->end;
    if (p >= end) return err_set(TIND_CORRUPTION, "journal batch: truncated, %u ops missing", r->left);
    unsigned kind = *p++;
    if (kind != PAYLOAD_OP_PUT && kind != PAYLOAD_OP_DELETE)
        return err_set(TIND_CORRUPTION, "journal batch: op kind %u is neither PUT nor DELETE", kind);
    uint32_t keyspace, klen, vlen = 0;
    if (!(p = get_varint32(p, end, &keyspace)))
        return err_set(TIND_CORRUPTION, "journal batch: bad or truncated keyspace number");
    if (!(p = get_varint32(p, end, &klen)))
        return err_set(TIND_CORRUPTION, "journal batch: bad or truncated key length");
    if (klen == 0 || klen > TIND_MAX_KEY_BYTES)
        return err_set(TIND_CORRUPTION, "journal batch: key length %u outside 1..%u", klen, TIND_MAX_KEY_BYTES);
    if ((size_t)(end - p) < klen)
        return err_set(TIND_CORRUPTION, "journal batch: key of %u bytes runs past the payload's end", klen);
    const uint8_t *key = p;
    p += klen;
    const uint8_t *val = NULL;
    if (kind == PAYLOAD_OP_PUT) {
        if (!(p = get_varint32(p, end, &vlen)))
            return err_set(TIND_CORRUPTION, "journal batch: bad or truncated value length");
        if ((size_t)(end - p) < vlen)
            return err_set(TIND_CORRUPTION, "journal batch: value of %u bytes runs past the payload's end", vlen);
        val = p;
        p += vlen;
    }
    op->kind = kind;
    op->keyspace = keyspace;
    op->key = key;
    op->klen = klen;
    op->val = val;
    op->vlen = vlen;
    r->p = p;
    r->left--;
    return TIND_OK;
}

int payload_drop_decode(const uint8_t *p, size_t n, uint32_t *keyspace)
{
    if (n < 1 || p[0] != JPAYLOAD_DROP_KEYSPACE)
        return err_set(TIND_CORRUPTION, "journal drop: not a drop payload");
    const uint8_t *end = p + n, *q = get_varint32(p + 1, end, keyspace);
    if (!q) return err_set(TIND_CORRUPTION, "journal drop: bad or truncated keyspace number");
    if (q != end) return err_set(TIND_CORRUPTION, "journal drop: %zu trailing bytes", (size_t)(end - q));
    return TIND_OK;
}
