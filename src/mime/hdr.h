/* hdr: writing RFC 5322 header fields, folded and encoded, into a buf.
 *
 * Every function here appends one complete field, "Name: value" CRLF, folded
 * so that no line passes HDR_FOLD columns (78) where the value leaves a place
 * to fold; a single token that cannot be folded (a very long URL in a
 * structured field) may make its line longer, never past 998 octets, and a
 * value that would need that is refused. Non-ASCII text (Subject, display
 * names) becomes RFC 2047 encoded words in UTF-8, Q or B, whichever is
 * shorter for that value; no encoded word is longer than 75 characters and
 * none splits a UTF-8 sequence. The contract is docs/internals/mime.md.
 *
 * Hostile values: a value holding CR, LF, NUL or any other control character
 * (C0 except TAB, DEL, C1) is REFUSED with TD_EINVAL, never rewritten.
 * A control character in a header is a template or data bug or an injection
 * attempt; replacing it would hide the bug and send a message nobody
 * previewed, so the message for that recipient fails with a reason that
 * names the field and the byte (Python's email package and Django do the
 * same). Invalid UTF-8 is refused the same way, and a value longer than
 * HDR_VALUE_MAX bytes is refused with TD_ETOOBIG: receiving servers cut
 * oversized headers (Postfix keeps 100 KB of the whole header), so a 1 MB
 * Subject could never arrive intact.
 *
 * On any failure the buf is put back to its length at entry. */
#ifndef TD_MIME_HDR_H
#define TD_MIME_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "mime/addr.h"
#include "util/buf.h"
#include "util/err.h"

#define HDR_FOLD 78         /* fold lines at this column (RFC 5322 2.1.1) */
#define HDR_LINE_MAX 998    /* hard limit on a line, without CRLF */
#define HDR_EW_MAX 75       /* longest encoded word (RFC 2047 section 2) */
#define HDR_VALUE_MAX 16384 /* longest value in bytes, before encoding */
#define HDR_NAME_MAX 76     /* longest field name */

/* A mailbox to write: a display name (UTF-8, may be NULL or empty) and an
 * address parsed by addr_parse / addr_parse_mailbox (borrowed). */
typedef struct hdr_mailbox {
    const char *name;
    const addr *a;
} hdr_mailbox;

/* hdr_name_ok returns 0 when name is a valid field name (1 to HDR_NAME_MAX
 * printable ASCII characters, no ':'), else TD_EINVAL with a message. */
int hdr_name_ok(const char *name, td_error *e);

/* hdr_text appends an unstructured field (Subject, Comments, X-...): value
 * [0..len) as is when it is ASCII that folds cleanly, else as encoded words.
 * Returns 0, TD_EINVAL (bad name, control character, invalid UTF-8: the
 * message says which and where), TD_ETOOBIG (value over HDR_VALUE_MAX, or
 * out's cap). */
int hdr_text(buf *out, const char *name, const char *value, size_t len, td_error *e);

/* hdr_raw appends a structured field whose value the caller formatted
 * (Message-ID, List-Unsubscribe, Content-Type, ...): printable ASCII, spaces
 * and tabs only, folded at spaces. Returns 0, TD_EINVAL (bad name, a byte
 * outside that set, a token that would pass 998 octets), TD_ETOOBIG. */
int hdr_raw(buf *out, const char *name, const char *value, size_t len, td_error *e);

/* hdr_mailboxes appends an address field (From, To, Reply-To, Cc) of n >= 1
 * mailboxes separated by commas: `Name <addr>`, `"Quoted, Name" <addr>`,
 * `=?UTF-8?B?...?= <addr>` or a bare `addr` when there is no name. When an
 * address has a UTF-8 local part it is written as UTF-8 (RFC 6532) and
 * *smtputf8 is set to true (it is never set to false here, so one flag can
 * gather a whole message); smtputf8 may be NULL. Returns 0, TD_EINVAL (bad
 * name, control character or invalid UTF-8 in a display name), TD_ETOOBIG. */
int hdr_mailboxes(buf *out, const char *name, const hdr_mailbox *mb, size_t n, bool *smtputf8,
                  td_error *e);

/* hdr_list_id appends "Name: description <id>" (List-Id, RFC 2919): the
 * description is a phrase like a display name (encoded when non-ASCII; may
 * be NULL or empty), id a dot-atom ("weekly.news.example.com"). Returns 0,
 * TD_EINVAL (bad id, control character or invalid UTF-8 in the
 * description), TD_ETOOBIG. */
int hdr_list_id(buf *out, const char *name, const char *description, const char *id, td_error *e);

/* hdr_date appends "Name: Tue, 01 Jul 2025 10:00:00 +0000" (UTC, English
 * names whatever the locale). Returns 0 or TD_ETOOBIG. */
int hdr_date(buf *out, const char *name, time_t t);

#endif
