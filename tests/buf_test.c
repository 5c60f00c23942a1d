/* The growable buffer, including caller-provided storage. */
#include <criterion/criterion.h>
#include <string.h>

#include "src/util/buf.h"

Test(buf, grows_and_keeps_bytes)
{
    buf b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++) cr_assert_eq(buf_append(&b, &i, sizeof i), 0);
    cr_assert_eq(b.len, 1000 * sizeof(int));
    for (int i = 0; i < 1000; i++) {
        int v;
        memcpy(&v, b.p + (size_t)i * sizeof v, sizeof v);
        cr_assert_eq(v, i);
    }
    buf_free(&b);
    cr_assert_null(b.p);
}

Test(buf, borrowed_storage_moves_to_the_heap_when_outgrown)
{
    uint8_t stack[16];
    buf b;
    buf_init_with(&b, stack, sizeof stack);
    cr_assert_eq(buf_append(&b, "0123456789", 10), 0);
    cr_assert_eq(b.p, stack, "fits: stays in the caller's storage");
    cr_assert_eq(buf_append(&b, "abcdefghij", 10), 0);
    cr_assert_neq(b.p, stack, "outgrown: moved to the heap");
    cr_assert_eq(b.len, 20);
    cr_assert(memcmp(b.p, "0123456789abcdefghij", 20) == 0, "bytes kept across the move");
    buf_free(&b); /* frees the heap copy, never the stack */
    buf_init_with(&b, stack, sizeof stack);
    cr_assert_eq(buf_append(&b, "x", 1), 0);
    buf_free(&b); /* borrowed: nothing to free */
}
