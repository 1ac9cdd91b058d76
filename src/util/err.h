/* err: the one error enum of Tidings and a small carrier for a message.
 *
 * Every fallible function returns an int: 0 (TD_OK) on success, or one of the
 * codes below. Temporary failures (TD_ETEMP: a lock, a 4xx, a timeout) are kept
 * apart from permanent ones (TD_EINVAL, TD_EPERM, ...) because that decides
 * retry versus give up. Functions that can say more take a `td_error *`, which
 * may be NULL, and fill it with a one-line message for a person. */
#ifndef TD_UTIL_ERR_H
#define TD_UTIL_ERR_H

#include <stddef.h>

enum {
    TD_OK = 0,
    TD_EINVAL,    /* input is not valid (permanent) */
    TD_ENOTFOUND, /* the object does not exist */
    TD_EEXISTS,   /* the object exists already (conflict) */
    TD_ETOOBIG,   /* a cap was reached */
    TD_ETEMP,     /* temporary: retry later (busy, lock, 4xx, timeout) */
    TD_EPERM,     /* permanent failure reported by a peer (5xx) */
    TD_EDENIED,   /* not allowed */
    TD_EIO,       /* reading or writing a file or socket failed */
    TD_EDB,       /* the database failed */
    TD_EINTERNAL, /* a bug or an impossible state */
};

typedef struct td_error {
    int code;
    char msg[512];
} td_error;

/* td_strerror returns a static name for an error code. */
const char *td_strerror(int code);

/* td_err_set formats a message into e (if e is not NULL) and returns code, so
 * that `return td_err_set(e, TD_EINVAL, "...")` reads naturally. */
int td_err_set(td_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* td_err_clear resets e to success with an empty message. */
void td_err_clear(td_error *e);

#endif
