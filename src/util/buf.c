/* buf: growable capped buffers (see buf.h). */
#include "util/buf.h"

#include "util/err.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b, size_t max)
{
    b->alloc = 64;
    b->data = xmalloc(b->alloc);
    b->data[0] = '\0';
    b->len = 0;
    b->max = max;
}

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

void buf_reset(buf *b)
{
    b->len = 0;
    b->data[0] = '\0';
}

static int reserve(buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return TD_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need > b->alloc) {
        size_t a = b->alloc;
        while (a < need)
            a = a < BUF_NOCAP / 2 ? a * 2 : need;
        b->data = xrealloc(b->data, a);
        b->alloc = a;
    }
    return TD_OK;
}

/* buf_append's path when b must grow (or refuse past its cap). */
int buf_append_grow(buf *b, const void *p, size_t n)
{
    if (reserve(b, n))
        return TD_ETOOBIG;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return TD_OK;
}

char *buf_room(buf *b, size_t n)
{
    return reserve(b, n) ? NULL : b->data + b->len;
}

void buf_added(buf *b, size_t k)
{
    b->len += k;
    b->data[b->len] = '\0';
}

int buf_puts(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return TD_EINVAL;
    if (reserve(b, (size_t)n))
        return TD_ETOOBIG;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return TD_OK;
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buf_truncate(buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

char *buf_steal(buf *b)
{
    char *p = b->data;
    buf_init(b, b->max);
    return p;
}
