/* utf8: UTF-8 checks (see utf8.h). */
#include "util/utf8.h"

#include <uniwidth.h>

#include <unistr.h>

bool utf8_valid(const char *s, size_t n, size_t *bad_off)
{
    const uint8_t *bad = u8_check((const uint8_t *)s, n);
    if (bad && bad_off)
        *bad_off = (size_t)(bad - (const uint8_t *)s);
    return bad == NULL;
}

bool utf8_has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

bool utf8_is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

void utf8_pad(FILE *f, const char *s, int width)
{
    fputs(s, f);
    int w = u8_strwidth((const uint8_t *)s, "UTF-8");
    for (; w < width; w++)
        fputc(' ', f);
}
