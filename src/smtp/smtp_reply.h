/* smtp_reply: SMTP server replies, parsed incrementally from untrusted bytes
 * and classified (RFC 5321 section 4.2, RFC 3463 enhanced status codes).
 *
 * The parser takes whatever a socket read returned and says when a whole
 * reply (one or more lines with the same code, the last one "ddd text" or
 * "ddd") is in. Every line and the number of lines are capped; a line may end
 * in CRLF or a bare LF (servers send both). A reply's text is kept for people
 * (the delivery log, `campaign failures`): lines joined with one space,
 * repeated enhanced codes dropped, control characters and invalid UTF-8
 * replaced with '?'. */
#ifndef TD_SMTP_SMTP_REPLY_H
#define TD_SMTP_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

/* Defaults for the caps: RFC 5321 says 512 octets per reply line; real
 * servers send longer ones, so 4 KB. 200 lines covers any EHLO. */
#define SMTP_REPLY_LINE_MAX 4096
#define SMTP_REPLY_LINES_MAX 200

/* What a reply (or a local failure) means for a recipient or a message. */
enum smtp_status {
    SMTP_OK = 0,  /* accepted (2xx, or 3xx where an intermediate reply is due) */
    SMTP_TEMP,    /* 4xx, or a connection failure before the message could land */
    SMTP_PERM,    /* 5xx, or refused locally for a reason retrying cannot fix */
    SMTP_UNKNOWN, /* the connection died after the end of data was sent and
                   * before the reply: the message may have been delivered */
};

/* One reply; a value type owning its strings (smtp_reply_clear). */
typedef struct smtp_reply {
    int code;     /* 200..599; 0 for a failure found locally (no reply) */
    char enh[16]; /* enhanced status "c.sss.ddd" or "" */
    char *text;   /* for people, never NULL after a parse (may be "") */
    char *lines;  /* raw text of each line after "ddd-", '\n'-separated (EHLO) */
    size_t nlines;
} smtp_reply;

/* The incremental parser. A value type (lives inside a connection). */
typedef struct smtp_rparser {
    buf line;  /* the line being read, capped at max_line */
    buf lines; /* the lines of the reply so far */
    size_t nlines, max_lines, max_line;
    int code;
} smtp_rparser;

/* smtp_rparser_init prepares p with caps (0 for the defaults above). */
void smtp_rparser_init(smtp_rparser *p, size_t max_line, size_t max_lines);
/* smtp_rparser_free releases p's buffers. */
void smtp_rparser_free(smtp_rparser *p);

/* smtp_rparser_feed consumes bytes of data[0..n) until one reply is
 * complete or the bytes run out, and sets *used to the bytes consumed. When
 * a reply completed it returns 0, sets *done and fills *out (the caller's,
 * freed with smtp_reply_clear; *out is overwritten); the remaining bytes are
 * the start of the next reply. It returns TD_ETOOBIG when a line or the
 * line count passes its cap, TD_EINVAL for a line that is not a reply line
 * (no 3-digit code from 200 to 599, a code that changes inside a multi-line
 * reply, a NUL byte), with a message in e; after an error the parser must
 * not be fed again (the connection is dropped). */
int smtp_rparser_feed(smtp_rparser *p, const char *data, size_t n, size_t *used, smtp_reply *out,
                      bool *done, td_error *e);

/* smtp_reply_clear frees r's strings and zeroes it; safe on a zeroed reply. */
void smtp_reply_clear(smtp_reply *r);

/* smtp_reply_copy makes dst (overwritten) a deep copy of src. */
void smtp_reply_copy(smtp_reply *dst, const smtp_reply *src);

/* smtp_reply_set_local fills r (overwritten) with a failure found locally:
 * code 0, the given enhanced code (may be NULL) and a formatted text. */
void smtp_reply_set_local(smtp_reply *r, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* smtp_status_of returns the status for a reply code: 2xx and 3xx SMTP_OK,
 * 4xx SMTP_TEMP, 5xx SMTP_PERM; anything else SMTP_TEMP (a broken server is
 * not a reason to give up on a recipient). The basic code decides even when
 * an enhanced code disagrees, as RFC 3463 section 2 asks; the parser keeps an
 * enhanced code only when its class matches. */
int smtp_status_of(int code);

/* smtp_status_name returns "ok", "temp", "perm" or "unknown" (static). */
const char *smtp_status_name(int status);

#endif
