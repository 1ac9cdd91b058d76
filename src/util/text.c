/* text: field checks (see text.h). */
#include "util/text.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "util/utf8.h"

int text_check(const char *what, const char *s, size_t len, size_t max, td_error *e)
{
    size_t bad;
    if (len > max)
        return td_err_set(e, TD_EINVAL, "%s is longer than %zu bytes", what, max);
    if (memchr(s, '\0', len))
        return td_err_set(e, TD_EINVAL, "%s contains a NUL byte", what);
    if (!utf8_valid(s, len, &bad))
        return td_err_set(e, TD_EINVAL, "%s is not valid UTF-8 (byte %zu)", what, bad + 1);
    if (utf8_has_ctl(s, len))
        return td_err_set(e, TD_EINVAL,
                          "%s contains a line break or another control character", what);
    return TD_OK;
}

bool text_locale_ok(const char *s)
{
    size_t n = 0;
    while (isalpha((unsigned char)s[n]))
        n++;
    if (n < 2 || n > 3)
        return false;
    while (s[n]) {
        if (s[n] != '-' && s[n] != '_')
            return false;
        size_t k = ++n;
        while (isalnum((unsigned char)s[n]))
            n++;
        if (n - k < 1 || n - k > 8)
            return false;
    }
    return true;
}

bool text_tz_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '/' || strstr(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("/_+-", s[i]))
            return false;
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", s);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    return got == 4 && memcmp(magic, "TZif", 4) == 0;
}
