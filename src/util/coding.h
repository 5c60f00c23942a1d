/* Little-endian fixed-width and varint coding of integers.
 *
 * Every number tind writes to disk goes through these helpers, so the byte
 * order is fixed (little-endian) whatever the host. The decoders take the end
 * of the buffer and never read past it: they return NULL on truncation or an
 * over-long varint, so that a corrupt input is reported, never overrun. */
#ifndef TIND_UTIL_CODING_H
#define TIND_UTIL_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static inline void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

#define VARINT32_MAX 5
#define VARINT64_MAX 10

/* Writes v as a varint at p; returns the byte after it. */
static inline uint8_t *put_varint64(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint8_t *put_varint32(uint8_t *p, uint32_t v) { return put_varint64(p, v); }

/* Bytes put_varint64 would write for v. */
static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Reads a varint from [p, end); returns the byte after it, or NULL when the
 * input is truncated or the value does not fit 64 bits. */
static inline const uint8_t *get_varint64(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift <= 63 && p < end; shift += 7) {
        uint64_t b = *p++;
        if (shift == 63 && b > 1) return NULL;
        r |= (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return p;
        }
    }
    return NULL;
}

/* As get_varint64, failing (NULL) when the value does not fit 32 bits. */
static inline const uint8_t *get_varint32(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
    uint64_t r;
    p = get_varint64(p, end, &r);
    if (!p || r > UINT32_MAX) return NULL;
    *v = (uint32_t)r;
    return p;
}

#endif
