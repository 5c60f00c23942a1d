/* Journal payloads: the bytes inside one record.
 *
 *   batch := type=1:u8 seq:u64 count:u32 op{count}
 *   op    := kind:u8 keyspace:varint32 klen:varint32 key[klen] (vlen:varint32 value[vlen])?
 *            -- kind: enum payload_op_kind; the value only for PAYLOAD_OP_PUT
 *   drop  := type=2:u8 keyspace:varint32
 *
 * The i-th op of a batch has sequence number seq + i. The seq field is
 * stamped by the journal's group-commit leader (journal_stamp_seq). */
#ifndef TIND_JOURNAL_PAYLOAD_H
#define TIND_JOURNAL_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/buf.h"

#define PAYLOAD_BATCH_HEADER 13u /* type + seq + count */

/* An op's kind byte. The values are on disk: frozen. The database layer
 * hands them to the memtables as internal key kinds unconverted, and asserts
 * there (src/write.c) that the two sets of values agree. */
enum payload_op_kind {
    PAYLOAD_OP_DELETE = 0, /* frozen */
    PAYLOAD_OP_PUT = 1,    /* frozen */
};

/* The largest sequence number an op may carry: sequence numbers are 56 bits
 * (they become internal key tags above the journal). */
#define PAYLOAD_SEQ_MAX ((UINT64_C(1) << 56) - 1)

/* Starts an empty batch payload in b (clearing it). */
int payload_batch_init(buf *b);
/* Appends an op (kind: PAYLOAD_OP_PUT or PAYLOAD_OP_DELETE) and bumps the count. */
int payload_batch_add(buf *b, unsigned kind, uint32_t keyspace, const void *key, size_t klen,
                      const void *val, size_t vlen);
uint32_t payload_batch_count(const uint8_t *p);
/* Writes seq into a batch payload. */
void payload_stamp_seq(uint8_t *p, uint64_t seq);

/* Encodes a drop record into b (clearing it). */
int payload_drop_init(buf *b, uint32_t keyspace);

/* Decoding. Every decoder checks lengths against the payload's end and
 * returns TIND_CORRUPTION (message naming what was malformed) on a bad payload. */
struct payload_op {
    unsigned kind;
    uint32_t keyspace;
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
};

struct payload_reader {
    const uint8_t *p, *end;
    uint32_t left;
};

/* Reads the type byte. */
int payload_type(const uint8_t *p, size_t n, unsigned *type);
/* Batch: header fields and a reader over its ops. */
int payload_batch_open(const uint8_t *p, size_t n, uint64_t *seq, uint32_t *count, struct payload_reader *r);
/* The next op: TIND_OK, TIND_NOT_FOUND after the last (the payload must end
 * exactly there, else TIND_CORRUPTION), or TIND_CORRUPTION. */
int payload_batch_next(struct payload_reader *r, struct payload_op *op);
/* Drop: the keyspace number. */
int payload_drop_decode(const uint8_t *p, size_t n, uint32_t *keyspace);

#endif
