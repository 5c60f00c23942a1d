/* Record framing shared by the journal and the manifests:
 *   record := payload_len:u64 payload_sum:u64 header_sum:u32 payload[payload_len]
 *   payload_sum = xxh3(payload); header_sum = low 32 bits of xxh3(the 16 bytes before it).
 * Frozen. */
#ifndef TIND_UTIL_RECORD_H
#define TIND_UTIL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/checksum.h"
#include "src/util/coding.h"

#define RECORD_HEADER_SIZE 20u

static inline void record_header_encode(uint8_t *out, const uint8_t *p, size_t n)
{
    put_u64(out, n);
    put_u64(out + 8, checksum64(p, n));
    put_u32(out + 16, (uint32_t)checksum64(out, 16));
}

/* 1 when the header's own checksum holds (then *len and *psum are set). */
static inline int record_header_ok(const uint8_t *h, uint64_t *len, uint64_t *psum)
{
    if (get_u32(h + 16) != (uint32_t)checksum64(h, 16)) return 0;
    *len = get_u64(h);
    *psum = get_u64(h + 8);
    return 1;
}

#endif
