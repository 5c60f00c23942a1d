/* Messages, and keys and values as text: escapes and hex. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/cli.h"

const char *cli_cmd = "";

static void vmsg(const char *fmt, va_list ap)
{
    fputs("tind: ", stderr);
    if (*cli_cmd) fprintf(stderr, "%s: ", cli_cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_data_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    return EXIT_DATA;
}

const char *cli_code_name(int rc)
{
    switch (rc) {
    case TIND_OK: return "TIND_OK";
    case TIND_NOT_FOUND: return "TIND_NOT_FOUND";
    case TIND_CORRUPTION: return "TIND_CORRUPTION";
    case TIND_IO_ERROR: return "TIND_IO_ERROR";
    case TIND_INVALID: return "TIND_INVALID";
    case TIND_CONFLICT: return "TIND_CONFLICT";
    case TIND_BUSY: return "TIND_BUSY";
    case TIND_NO_SPACE: return "TIND_NO_SPACE";
    case TIND_NO_MEMORY: return "TIND_NO_MEMORY";
    case TIND_POISONED: return "TIND_POISONED";
    default: return "TIND_UNKNOWN";
    }
}

int cli_lib_error(int rc, const char *what)
{
    const char *msg = tind_last_error();
    if (!*msg) msg = tind_strerror(rc);
    if (rc == TIND_BUSY)
        return cli_data_error("%s: the database is in use by another process (%s; %s)", what, msg, cli_code_name(rc));
    return cli_data_error("%s: %s (%s)", what, msg, cli_code_name(rc));
}

/* ---- bytes ---------------------------------------------------------------------- */

void cli_print_bytes(FILE *f, const void *p, size_t n, int hex)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        if (hex) {
            putc(digits[c >> 4], f);
            putc(digits[c & 15], f);
        } else if (c == '\\') {
            fputs("\\\\", f);
        } else if (c >= 0x20 && c < 0x7f) {
            putc(c, f);
        } else {
            putc('\\', f);
            putc('x', f);
            putc(digits[c >> 4], f);
            putc(digits[c & 15], f);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int cli_parse_bytes(const char *text, size_t len, int hex, uint8_t **out, size_t *n, char *err, size_t cap)
{
    uint8_t *b = malloc(len + 1);
    size_t k = 0;
    if (!b) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    if (hex) {
        if (len % 2) {
            snprintf(err, cap, "odd number of hex digits");
            goto bad;
        }
        for (size_t i = 0; i < len; i += 2) {
            int h = hexval(text[i]), l = hexval(text[i + 1]);
            if (h < 0 || l < 0) {
                snprintf(err, cap, "not a hex digit at position %zu", h < 0 ? i : i + 1);
                goto bad;
            }
            b[k++] = (uint8_t)(h << 4 | l);
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            if (text[i] != '\\') {
                b[k++] = (uint8_t)text[i];
                continue;
            }
            if (i + 1 >= len) {
                snprintf(err, cap, "a lone backslash at the end (write \\\\ for a backslash)");
                goto bad;
            }
            char e = text[++i];
            switch (e) {
            case '\\': b[k++] = '\\'; break;
            case 'n': b[k++] = '\n'; break;
            case 'r': b[k++] = '\r'; break;
            case 't': b[k++] = '\t'; break;
            case '0': b[k++] = 0; break;
            case 'x': {
                int h = i + 1 < len ? hexval(text[i + 1]) : -1, l = i + 2 < len ? hexval(text[i + 2]) : -1;
                if (h < 0 || l < 0) {
                    snprintf(err, cap, "\\x at position %zu needs two hex digits", i - 1);
                    goto bad;
                }
                b[k++] = (uint8_t)(h << 4 | l);
                i += 2;
                break;
            }
            default:
                snprintf(err, cap, "unknown escape \\%c at position %zu (known: \\\\ \\xNN \\n \\r \\t \\0)", e, i - 1);
                goto bad;
            }
        }
    }
    *out = b;
    *n = k;
    return 0;
bad:
    free(b);
    return -1;
}
