/* bounce: classifies one inbound message (bounce, complaint, human reply,
 * other) and extracts every failed recipient with its status code, SMTP
 * reply code, reason and hard/soft verdict, plus what is needed to match the
 * message to a campaign when the VERP return path is lost (the returned
 * original's Message-ID and its X-, List- and Feedback-ID headers).
 *
 * MIME is parsed with GMime 3. Machine-readable reports (RFC 3464 DSN, RFC
 * 5965 ARF, Amazon SES JSON notifications) are read first; the prose of
 * non-standard bounces (Exim, qmail, Sendmail, Exchange, Gmail, ...) is read
 * by the generic scanner in notice.c; reasons come from the rule table in
 * reason.c. See docs/internals/bounce.md.
 *
 * Hostile input is bounded: only the first BOUNCE_MAX_INPUT bytes and the
 * first BOUNCE_MAX_PARTS MIME parts are looked at, nesting deeper than
 * BOUNCE_MAX_DEPTH is ignored, and every string in the result is valid
 * UTF-8 (invalid bytes become U+FFFD).
 *
 * The result struct is public and read-only for the caller (a value object,
 * like buf); build it with bounce_parse and release it with
 * bounce_result_free. */
#ifndef TD_INBOUND_BOUNCE_H
#define TD_INBOUND_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define BOUNCE_MAX_INPUT (4u << 20) /* bytes of a message that are parsed */
#define BOUNCE_MAX_PARTS 256        /* MIME parts visited */
#define BOUNCE_MAX_DEPTH 32         /* MIME nesting followed */
#define BOUNCE_MAX_RCPT 256         /* recipients reported */
#define BOUNCE_MAX_HEADERS 64       /* X-/List- headers kept of the original */

typedef enum bounce_kind {
    BOUNCE_KIND_OTHER = 0, /* anything else, auto-replies and vacation included */
    BOUNCE_KIND_BOUNCE,    /* a delivery failure or delay report */
    BOUNCE_KIND_COMPLAINT, /* a feedback-loop (ARF) complaint */
    BOUNCE_KIND_REPLY,     /* a person answering a message */
} bounce_kind;

typedef struct bounce_rcpt {
    char *address;      /* the failed address as the message gives it; never NULL */
    char status[16];    /* RFC 3463 code ("5.1.1"); inferred when absent; "" for complaints */
    int reply_code;     /* SMTP reply code (550), 0 when the message has none */
    bool hard;          /* the address itself is bad: suppress it for good */
    const char *reason; /* static name: userunknown, mailboxfull, ..., feedback */
    char *diagnostic;   /* the server's words, trimmed (may be ""); never NULL */
} bounce_rcpt;

typedef struct bounce_header {
    char *name;
    char *value;
} bounce_header;

typedef struct bounce_result {
    bounce_kind kind;
    bounce_rcpt *rcpt; /* in the order the message gives them */
    size_t nrcpt;
    char *orig_message_id;       /* returned original's Message-ID without <>, or NULL */
    bounce_header *orig_headers; /* its X-*, List-* and Feedback-ID headers, in order */
    size_t norig_headers;
    char *feedback_type; /* complaints: ARF Feedback-Type ("abuse"), else NULL */
    char *orig_return_path; /* the original's envelope sender (ARF Original-Mail-From,
                             * else its Return-Path), without <>; NULL when not given */
} bounce_result;

/* bounce_init initialises GMime and compiles the rule table once; safe to
 * call from any thread any number of times (pthread_once). Returns 0, or
 * TD_EINTERNAL when the rule table does not compile (a bug).
 * bounce_parse calls it itself. */
int bounce_init(void);

/* bounce_parse reads the message data[0..len) and stores a new result in
 * *out. Returns 0, or TD_EINVAL (with a message in err) when the bytes are
 * not a message at all; *out is then NULL. The caller frees the result with
 * bounce_result_free. */
int bounce_parse(const char *data, size_t len, bounce_result **out, td_error *err);

/* bounce_result_free releases r; NULL is a no-op. */
void bounce_result_free(bounce_result *r);

/* bounce_kind_name returns "bounce", "complaint", "reply" or "other". */
const char *bounce_kind_name(bounce_kind k);

/* bounce_result_json returns one compact JSON object (no newline), the
 * line `tidings bounce` prints: {"file", "kind", "recipients": [{"address",
 * "status", "reply_code", "hard", "reason"}]}, keys in that order. file may
 * be NULL (then null; invalid UTF-8 in it becomes U+FFFD); status and
 * reply_code are null when the message gives none (complaints). Returns a
 * malloc'd string the caller frees; aborts only when out of memory. */
char *bounce_result_json(const bounce_result *r, const char *file);

/* bounce_utf8_clean returns a malloc'd copy of s[0..n) that is valid UTF-8
 * (each invalid byte becomes U+FFFD, NUL bytes are dropped); the caller
 * frees it. */
char *bounce_utf8_clean(const char *s, size_t n);

/* bounce_part_guard returns how many bytes of d[0..n) to hand to GMime so
 * that it never sees more than BOUNCE_MAX_PARTS parts (its parser recurses
 * once per nested part): the input is cut before the part past the cap. */
size_t bounce_part_guard(const char *d, size_t n);

#endif
