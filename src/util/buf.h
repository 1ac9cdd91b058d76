/* buf: a growable byte buffer with a hard cap, always NUL-terminated.
 *
 * A buffer filled from the network or a file is given a cap at init; an
 * append that would pass it fails with TD_ETOOBIG and leaves the buffer as it
 * was. The struct is public (a value type, like Postfix's VSTRING) so it can
 * live on the stack; use the functions, not the fields, to change it. */
#ifndef TD_UTIL_BUF_H
#define TD_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

typedef struct buf {
    char *data;   /* NUL-terminated contents (never NULL after buf_init) */
    size_t len;   /* bytes used, not counting the NUL */
    size_t alloc; /* bytes allocated */
    size_t max;   /* cap on len */
} buf;

#define BUF_NOCAP ((size_t)-1 / 2)

/* buf_init prepares b with a cap of max bytes (BUF_NOCAP for none). */
void buf_init(buf *b, size_t max);
/* buf_free releases b's memory; b can be re-initialised. */
void buf_free(buf *b);
/* buf_reset empties b, keeping its memory. */
void buf_reset(buf *b);
/* buf_append adds n bytes; TD_ETOOBIG past the cap (b unchanged). The
 * common case, room already there, is inline: a rendered message is
 * hundreds of short appends, and the call was a few percent of its CPU. */
int buf_append_grow(buf *b, const void *p, size_t n);
static inline int buf_append(buf *b, const void *p, size_t n)
{
    if (n < b->alloc - b->len && b->len + n <= b->max) {
        if (n)
            memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
    }
    return buf_append_grow(b, p, n);
}
int buf_puts(buf *b, const char *s);
static inline int buf_putc(buf *b, char c)
{
    if (b->len + 1 < b->alloc && b->len < b->max) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return buf_append_grow(b, &c, 1);
}
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap);
/* buf_room makes room for n more bytes and returns where they go (just past
 * the contents), or NULL past the cap (b unchanged); buf_added then counts
 * the k <= n bytes written there. For encoders that write in place rather
 * than copy through a staging area. */
char *buf_room(buf *b, size_t n);
void buf_added(buf *b, size_t k);
/* buf_truncate shortens b to len bytes (no-op when already shorter). */
void buf_truncate(buf *b, size_t len);
/* buf_steal returns the contents as a malloc'd string the caller frees and
 * leaves b empty and still usable, which allocates: buf_free(b) is still due
 * when b is not used again. */
char *buf_steal(buf *b);

#endif
