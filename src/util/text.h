/* text: checks on short text fields that people type (names, labels). */
#ifndef TD_UTIL_TEXT_H
#define TD_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* text_check accepts s when it is valid UTF-8, has no control characters
 * (line breaks and NUL included) and is at most max bytes; `what` names the
 * field in the message ("the team name"). len is s's length (s may hold NUL
 * bytes from hostile input). Returns 0 or TD_EINVAL. */
int text_check(const char *what, const char *s, size_t len, size_t max, td_error *e);

/* text_locale_ok is true for a BCP 47 style tag: 2-3 letters, then
 * '-' or '_' separated subtags of 1-8 letters or digits (en, pt-BR, th-TH,
 * zh-Hant-TW). */
bool text_locale_ok(const char *s);

/* text_tz_ok is true when s names a time zone in the system's zoneinfo
 * (an IANA name like Asia/Bangkok; no "..", no absolute paths). */
bool text_tz_ok(const char *s);

#endif
