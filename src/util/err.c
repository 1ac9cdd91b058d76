/* err: error codes and messages (see err.h). */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *td_strerror(int code)
{
    switch (code) {
    case TD_OK: return "ok";
    case TD_EINVAL: return "invalid input";
    case TD_ENOTFOUND: return "not found";
    case TD_EEXISTS: return "already exists";
    case TD_ETOOBIG: return "too big";
    case TD_ETEMP: return "temporary failure";
    case TD_EPERM: return "permanent failure";
    case TD_EDENIED: return "not allowed";
    case TD_EIO: return "input/output error";
    case TD_EDB: return "database error";
    case TD_EINTERNAL: return "internal error";
    }
    return "unknown error";
}

int td_err_set(td_error *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void td_err_clear(td_error *e)
{
    if (e) {
        e->code = TD_OK;
        e->msg[0] = '\0';
    }
}
