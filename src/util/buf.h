/* A growable byte buffer. */
#ifndef TIND_UTIL_BUF_H
#define TIND_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    int borrowed; /* p is the caller's storage (buf_init_with): never freed or realloc'd */
} buf;

static inline void buf_init(buf *b) { b->p = NULL; b->len = b->cap = 0; b->borrowed = 0; }
/* Starts with the caller's storage (a stack array, say); growing past it
 * moves to the heap. buf_free is still needed. */
static inline void buf_init_with(buf *b, uint8_t *storage, size_t cap)
{
    b->p = storage;
    b->len = 0;
    b->cap = cap;
    b->borrowed = 1;
}
void buf_free(buf *b);
/* Makes room for n more bytes: TIND_OK or TIND_NO_MEMORY. */
int buf_reserve(buf *b, size_t n);
int buf_append(buf *b, const void *data, size_t n);
static inline void buf_clear(buf *b) { b->len = 0; }

#endif
