/* utf8: checks on UTF-8 text (on libunistring). */
#ifndef TD_UTIL_UTF8_H
#define TD_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* utf8_valid is true when s[0..n) is well-formed UTF-8 (no overlongs, no
 * surrogates). When false and bad_off is not NULL, *bad_off is the offset of
 * the first invalid byte. */
bool utf8_valid(const char *s, size_t n, size_t *bad_off);

/* utf8_has_ctl is true when s[0..n) contains a C0 control character other
 * than TAB, or DEL: things that must not reach a header or a database text
 * field that is shown on one line. Newlines count. */
bool utf8_has_ctl(const char *s, size_t n);

/* utf8_is_ascii is true when every byte is below 0x80. */
bool utf8_is_ascii(const char *s, size_t n);
/* utf8_pad prints s to f and then spaces up to width terminal columns (wide
 * Thai, Arabic and CJK text counted by display width, not bytes), so
 * tables of names line up. s must be valid UTF-8. */
void utf8_pad(FILE *f, const char *s, int width);

#endif
