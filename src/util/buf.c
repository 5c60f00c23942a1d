#include "src/util/buf.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/err.h"

void buf_free(buf *b)
{
    if (!b->borrowed) free(b->p);
    buf_init(b);
}

int buf_reserve(buf *b, size_t n)
{
    if (b->cap - b->len >= n) return TIND_OK;
    if (n > SIZE_MAX / 2 - b->len) return err_nomem();
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n) cap *= 2;
    uint8_t *p;
    if (b->borrowed) {
        if ((p = malloc(cap)) != NULL && b->len) memcpy(p, b->p, b->len);
    } else {
        p = realloc(b->p, cap);
    }
    if (!p) return err_nomem();
    b->p = p;
    b->cap = cap;
    b->borrowed = 0;
    return TIND_OK;
}

int buf_append(buf *b, const void *data, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    return TIND_OK;
}
