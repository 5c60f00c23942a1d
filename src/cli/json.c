/* A streaming JSON writer on stdout. Keys and values that are byte strings
 * go out as their escaped text (cli_print_bytes), itself JSON-escaped, so a
 * script gets valid UTF-8 JSON whatever the bytes. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "src/cli/cli.h"

#define JSON_DEPTH 32

static int depth;
static int count[JSON_DEPTH]; /* values written so far at each depth */

static void json_string_raw(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            putchar('\\');
            putchar(c);
        } else if (c < 0x20 || c >= 0x7f) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

/* Comma, indentation and key before a value. */
static void json_key(const char *key)
{
    if (count[depth]++) putchar(',');
    if (depth) {
        putchar('\n');
        for (int i = 0; i < depth; i++) fputs("  ", stdout);
    }
    if (key) {
        json_string_raw(key, strlen(key));
        fputs(": ", stdout);
    }
}

static void json_open(const char *key, char c)
{
    json_key(key);
    putchar(c);
    if (depth + 1 < JSON_DEPTH) depth++;
    count[depth] = 0;
}

static void json_close(char c)
{
    int had = count[depth];
    if (depth) depth--;
    if (had) {
        putchar('\n');
        for (int i = 0; i < depth; i++) fputs("  ", stdout);
    }
    putchar(c);
}

void json_begin_object(const char *key) { json_open(key, '{'); }
void json_end_object(void) { json_close('}'); }
void json_begin_array(const char *key) { json_open(key, '['); }
void json_end_array(void) { json_close(']'); }

void json_str(const char *key, const char *s)
{
    json_key(key);
    json_string_raw(s, strlen(s));
}

void json_bytes(const char *key, const void *p, size_t n, int hex)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = p;
    json_key(key);
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        if (hex) {
            putchar(digits[c >> 4]);
            putchar(digits[c & 15]);
        } else if (c == '\\') {
            fputs("\\\\\\\\", stdout); /* the escape's backslash doubled, then JSON-escaped */
        } else if (c == '"') {
            fputs("\\\"", stdout);
        } else if (c >= 0x20 && c < 0x7f) {
            putchar(c);
        } else {
            printf("\\\\x%c%c", digits[c >> 4], digits[c & 15]);
        }
    }
    putchar('"');
}

void json_u64(const char *key, uint64_t v)
{
    json_key(key);
    printf("%" PRIu64, v);
}

void json_i64(const char *key, int64_t v)
{
    json_key(key);
    printf("%" PRId64, v);
}

void json_double(const char *key, double v)
{
    json_key(key);
    if (isfinite(v)) printf("%.6g", v);
    else fputs("null", stdout);
}

void json_bool(const char *key, int v)
{
    json_key(key);
    fputs(v ? "true" : "false", stdout);
}

void json_null(const char *key)
{
    json_key(key);
    fputs("null", stdout);
}

void json_finish(void)
{
    putchar('\n');
    depth = 0;
    count[0] = 0;
}
