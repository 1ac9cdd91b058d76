/* jsonstr: writing JSON text by hand where building a tree per item would
 * cost more than the item (CSV import writes one object per row). */
#ifndef TD_UTIL_JSONSTR_H
#define TD_UTIL_JSONSTR_H

#include <stddef.h>

#include "util/buf.h"

/* jsonstr_append appends s[0..n) as a quoted JSON string, escaping what
 * jansson escapes by default (quote, backslash, control characters) and
 * keeping other UTF-8 as is, so the text equals jansson's output. s must be
 * valid UTF-8. Returns 0 or TD_ETOOBIG. */
int jsonstr_append(buf *b, const char *s, size_t n);

#endif
