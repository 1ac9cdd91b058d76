/* xalloc: allocation that succeeds or does not return (a server, not a
 * library: running out of memory aborts with a message). */
#ifndef TD_UTIL_XALLOC_H
#define TD_UTIL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* xstrdup/xstrndup return a copy the caller frees; xstrdup(NULL) is NULL. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xasprintf returns a newly allocated formatted string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
