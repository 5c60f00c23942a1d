#include "src/util/array.h"

#include <stdint.h>
#include <stdlib.h>

#include "src/util/err.h"

int array_reserve(void **arr, size_t n, size_t *cap, size_t elem, size_t first)
{
    if (n < *cap) return TIND_OK;
    size_t nc = *cap ? *cap * 2 : first;
    if (nc <= n) nc = n + 1;
    if (nc > SIZE_MAX / elem) return err_nomem();
    void *a = realloc(*arr, nc * elem);
    if (!a) return err_nomem();
    *arr = a;
    *cap = nc;
    return TIND_OK;
}
