/* A growable byte buffer. */
#ifndef TIND_UTIL_BUF_H
#define TIND_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static inline void buf_init(buf *b) { b->p = NULL; b->len = b->cap = 0; }
void buf_free(buf *b);
/* Makes room for n more bytes: TIND_OK or TIND_NO_MEMORY. */
int buf_reserve(buf *b, size_t n);
int buf_append(buf *b, const void *data, size_t n);
static inline void buf_clear(buf *b) { b->len = 0; }

#endif
