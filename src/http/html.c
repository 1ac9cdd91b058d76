/* html: escaping for the server's pages (see html.h). */
#include "http/html.h"

#include <string.h>

#include "util/err.h"

int html_escape(buf *out, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = 0;
        while (i + run < n && !strchr("&<>\"'", s[i + run]))
            run++;
        /* strchr matches the NUL too: a NUL byte is dropped, not printed. */
        if (run && buf_append(out, s + i, run))
            return TD_ETOOBIG;
        i += run;
        if (i == n)
            break;
        const char *ref = NULL;
        switch (s[i]) {
        case '&': ref = "&amp;"; break;
        case '<': ref = "&lt;"; break;
        case '>': ref = "&gt;"; break;
        case '"': ref = "&quot;"; break;
        case '\'': ref = "&#39;"; break;
        default: break; /* NUL */
        }
        if (ref && buf_puts(out, ref))
            return TD_ETOOBIG;
        i++;
    }
    return 0;
}

int html_escape_str(buf *out, const char *s)
{
    return s ? html_escape(out, s, strlen(s)) : 0;
}
