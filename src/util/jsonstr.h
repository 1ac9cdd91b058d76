/* jsonstr: writing JSON text by hand where building a tree per item would
 * cost more than the item (CSV import writes one object per row). */
#ifndef TD_UTIL_JSONSTR_H
#define TD_UTIL_JSONSTR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* jsonstr_append appends s[0..n) as a quoted JSON string, escaping what
 * jansson escapes by default (quote, backslash, control characters) and
 * keeping other UTF-8 as is, so the text equals jansson's output. s must be
 * valid UTF-8. Returns 0 or TD_ETOOBIG. */
int jsonstr_append(buf *b, const char *s, size_t n);

/* jsonstr_number appends the canonical form of s[0..n) when it is a JSON
 * number Tidings keeps as a number: an integer that fits 64 bits (written
 * without sign for zero), or a finite real, written in the shortest form
 * that reads back to the same double ("4.1", "1e+20"). Returns false,
 * appending nothing, for anything else (text, "007", an integer too large
 * for 64 bits, "1e400"): the caller keeps those as strings. */
bool jsonstr_number(buf *b, const char *s, size_t n);

/* jsonstr_is_object is true when s[0..n) is one JSON object (RFC 8259
 * syntax, nesting at most 64 deep), checked without building a tree; s is
 * valid UTF-8 (not checked here). Duplicate keys are not looked for. */
bool jsonstr_is_object(const char *s, size_t n);

/* jsonstr_value appends v in Tidings' canonical JSON: compact, object keys
 * sorted, numbers as jsonstr_number writes them. Every path that stores
 * JSON (CSV columns, the attributes column, the API) goes through one of
 * these two, so the same data is always the same text. Returns 0 or
 * TD_ETOOBIG. */
struct json_t;
int jsonstr_value(buf *b, struct json_t *v);

#endif
