/* dsn: RFC 3464 / RFC 5965 field groups ("Name: value" lines in groups
 * separated by blank lines), as found in message/delivery-status and
 * message/feedback-report parts, or pasted into a text part by mailers that
 * do not build a proper multipart/report.
 *
 * GMime hands those parts back as opaque leaves (and re-using its parser on
 * them hung), so they are parsed here: plain C, no GMime. The parser is
 * forgiving: folded lines are unfolded, a line that is neither a field nor a
 * continuation ends the current group, and a field that repeats inside a
 * group starts a new group (some mailers omit the blank line between the
 * recipients). */
#ifndef TD_INBOUND_DSN_H
#define TD_INBOUND_DSN_H

#include <stddef.h>

typedef struct dsn_field {
    char *name;  /* as written, e.g. "Final-Recipient" */
    char *value; /* unfolded, trimmed; may contain invalid UTF-8 */
} dsn_field;

typedef struct dsn_group {
    dsn_field *f;
    size_t n;
} dsn_group;

typedef struct dsn_doc {
    dsn_group *g;
    size_t n;
} dsn_doc;

/* Caps that bound the work on hostile input. */
#define DSN_MAX_GROUPS 512
#define DSN_MAX_FIELDS 64    /* per group */
#define DSN_MAX_VALUE 4096   /* bytes kept of one value */

/* dsn_parse splits text[0..len) into field groups and fills *out (zeroed
 * first). Never fails: input past the caps is ignored. Free with
 * dsn_doc_free. */
void dsn_parse(const char *text, size_t len, dsn_doc *out);

/* dsn_doc_free releases what dsn_parse allocated; d is left empty. */
void dsn_doc_free(dsn_doc *d);

/* dsn_get returns the value of the first field called name (ASCII case
 * insensitive) in g, or NULL. Borrowed from g. */
const char *dsn_get(const dsn_group *g, const char *name);

/* dsn_has_recipient is true when g is a per-recipient group (it has a
 * Final-Recipient or Original-Recipient field). */
int dsn_has_recipient(const dsn_group *g);

#endif
