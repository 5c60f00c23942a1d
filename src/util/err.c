#include "src/util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Long enough for two paths and an offset. */
static _Thread_local char err_buf[1024];

int err_set(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return rc;
}

int err_errno(int e, const char *what, const char *path)
{
    int rc;
    switch (e) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        rc = TIND_NO_SPACE;
        break;
    case ENOMEM:
        rc = TIND_NO_MEMORY;
        break;
    default:
        rc = TIND_IO_ERROR;
        break;
    }
    char eb[128];
    const char *es = strerror_r(e, eb, sizeof eb);
    return err_set(rc, "%s %s: %s", what, path ? path : "", es);
}

int err_nomem(void) { return err_set(TIND_NO_MEMORY, "out of memory"); }

void err_clear(void) { err_buf[0] = 0; }

const char *err_msg(void) { return err_buf; }

const char *tind_strerror(int rc)
{
    switch (rc) {
    case TIND_OK: return "ok";
    case TIND_NOT_FOUND: return "not found";
    case TIND_CORRUPTION: return "corruption";
    case TIND_IO_ERROR: return "I/O error";
    case TIND_INVALID: return "invalid argument";
    case TIND_CONFLICT: return "transaction conflict";
    case TIND_BUSY: return "busy";
    case TIND_NO_SPACE: return "no space left on device";
    case TIND_NO_MEMORY: return "out of memory";
    case TIND_POISONED: return "database poisoned by an earlier journal or manifest failure; reopen it";
    default: return "unknown status";
    }
}

const char *tind_last_error(void) { return err_buf; }
