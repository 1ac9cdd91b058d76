/* html: escaping for the server's HTML pages. Everything a page prints
 * that came from a request or the database goes through html_escape. */
#ifndef TD_HTTP_HTML_H
#define TD_HTTP_HTML_H

#include <stddef.h>

#include "util/buf.h"

/* html_escape appends s[0..n) to out with & < > " ' written as character
 * references, so it is safe in text and in a quoted attribute value.
 * Returns 0, or TD_ETOOBIG past out's cap (out then holds a prefix). */
int html_escape(buf *out, const char *s, size_t n);

/* html_escape_str is html_escape of the NUL-terminated s (NULL: nothing). */
int html_escape_str(buf *out, const char *s);

#endif
