/* notice: reads the human-readable part of a bounce (the "notice") when
 * there is no machine-readable report, as Exim, qmail, old Sendmail,
 * Exchange, Gmail, Yahoo, Courier, Lotus Notes and many appliances write it.
 *
 * The approach is generic, not one parser per mailer:
 * - notice_cut finds where the returned original message starts ("------
 *   This is a copy of the message", "--- Below this line is a copy",
 *   "----- Original message -----", a block of Received: headers, ...), so
 *   addresses of the original are not taken for failed recipients;
 * - notice_scan takes the addresses the text puts in a recipient position:
 *   alone at the start of a line ("  user@example.com", "<user@example>:",
 *   "554 <user@example>... User unknown", "user@example on <date>"), or
 *   after a recipient cue ("RCPT TO:<", "Recipient:", "delivered to:",
 *   "undeliverable to", "Address: <", ...). Header-like lines of a quoted
 *   original ("To:", "From:", "MAIL FROM:") never count;
 * - each recipient's diagnostic is the block of lines that belongs to it:
 *   the rest of its own line and the lines indented under it when the line
 *   carries a reason, else the lines up to the next recipient. */
#ifndef TD_INBOUND_NOTICE_H
#define TD_INBOUND_NOTICE_H

#include <stddef.h>

typedef struct notice_rcpt {
    char *address; /* lower-cased domain; caller-visible, owned by the list */
    char *diag;    /* the diagnostic block (may be empty, never NULL) */
} notice_rcpt;

typedef struct notice_list {
    notice_rcpt *v;
    size_t n;
} notice_list;

#define NOTICE_MAX_RCPT 256

/* notice_cut returns how many bytes of text[0..len) come before the
 * returned original message (len when no marker is found). */
size_t notice_cut(const char *text, size_t len);

/* notice_scan fills *out (zeroed first) with the failed recipients text
 * names, in order, without duplicates, skipping any address equal (case
 * insensitive) to one in exclude[0..nexclude) and any postmaster or
 * mailer-daemon address. Never fails; free with notice_list_free. */
void notice_scan(const char *text, size_t len, const char *const *exclude, size_t nexclude, notice_list *out);

/* notice_block_for returns a newly allocated diagnostic block for addr: the
 * block of the first line that names it in a recipient position, else the
 * lines that mention it at all (each with the two lines after it), else
 * NULL. The caller frees. */
char *notice_block_for(const char *text, size_t len, const char *addr);

/* notice_list_free releases the list; l is left empty. */
void notice_list_free(notice_list *l);

/* notice_addr_at finds the address containing the '@' at s[at], with
 * s[0..n) the whole text. On success returns 1 and sets [*b, *e) to the
 * address span; 0 when the '@' is not inside a plausible address. */
int notice_addr_at(const char *s, size_t n, size_t at, size_t *b, size_t *e);

#endif
