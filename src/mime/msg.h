/* msg: the message builder: complete RFC 5322 / MIME message bytes from a
 * sender's envelope (prepared once per campaign) and a per-recipient spec.
 *
 * Layout: text/plain and text/html in multipart/alternative (text first);
 * with attachments, that inside multipart/mixed; a text-only message is a
 * single text/plain part. The text version, when not given, is made from the
 * HTML by html2text. Each text part's transfer encoding is chosen by its
 * content: 7bit for short-line ASCII, quoted-printable when that is no
 * longer than base64 (mostly-ASCII text), else base64 (Thai, Arabic);
 * attachments are always base64. Every line ends CRLF and none passes 998
 * octets (header lines fold at 78). Boundaries start with "=_", which
 * neither quoted-printable nor base64 can produce and which a 7bit part is
 * checked not to hold, so they are fixed strings and the output is
 * deterministic for a given spec, date and Message-ID.
 *
 * Headers: Date, Message-ID (random part @ domain unless given), From,
 * Reply-To, To, Subject, List-Id, Feedback-ID, List-Unsubscribe (https and
 * mailto) with List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058,
 * only with an https URL), extra headers, MIME-Version. No Return-Path: the
 * receiving server writes it from the SMTP MAIL FROM, which msg_info gives
 * (the VERP address). See docs/internals/mime.md. */
#ifndef TD_MIME_MSG_H
#define TD_MIME_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "mime/addr.h"
#include "util/buf.h"
#include "util/err.h"

#define MSG_MAX_ATTACHMENTS 100
#define MSG_FILENAME_MAX 255 /* bytes of an attachment's file name */
#define MSG_URL_MAX 2000     /* bytes of a List-Unsubscribe URL */
#define MSG_ID_MAX 250       /* bytes of a Message-ID without <> */
#define MSG_VERP_PART_MAX 40 /* bytes of a VERP campaign or token */

/* An extra header: name and unstructured UTF-8 value (encoded as needed). */
typedef struct msg_header {
    const char *name;
    const char *value;
} msg_header;

typedef struct msg_attachment {
    const char *filename;     /* UTF-8, no '/', '\\' or controls (RFC 2231 when needed) */
    const char *content_type; /* "type/subtype"; NULL: application/octet-stream */
    const void *data;
    size_t len;
} msg_attachment;

/* What stays the same for every message of a campaign. Strings are copied
 * by msg_envelope_new; the spec need not outlive it. */
typedef struct msg_envelope_spec {
    const char *from;          /* "Name <addr>" or "addr" */
    const char *reply_to;      /* same form; NULL: none */
    const char *list_id;       /* dot-atom id; NULL: no List-Id */
    const char *list_name;     /* List-Id description; may be NULL */
    const char *feedback_id;   /* "campaign:customer:type:sender"; NULL: none */
    const char *msgid_domain;  /* NULL: the From address's domain */
    const msg_header *headers; /* extra headers common to all messages */
    size_t nheaders;
} msg_envelope_spec;

typedef struct msg_envelope msg_envelope;

/* What changes per recipient. Text is UTF-8 given as pointer and length
 * (it need not be NUL-terminated). */
typedef struct msg_spec {
    const char *to; /* "Name <addr>" or "addr" */
    const char *subject;
    size_t subject_len;
    const char *html; /* NULL: a text-only message */
    size_t html_len;
    const char *text; /* NULL: made from html */
    size_t text_len;
    const char *unsubscribe_url;    /* https URL for one-click unsubscribe; NULL: none */
    const char *unsubscribe_mailto; /* address for mailto: unsubscribe; NULL: none */
    const char *message_id;         /* "id@domain" without <>; NULL: generated */
    time_t date;                    /* 0: now */
    const char *return_path;        /* SMTP MAIL FROM (VERP); NULL: the From address */
    const msg_attachment *attachments;
    size_t nattachments;
    const msg_header *headers; /* extra headers for this message */
    size_t nheaders;
} msg_spec;

/* What the SMTP client needs besides the bytes. */
typedef struct msg_info {
    char mail_from[ADDR_MAX + 3];    /* normalised return path */
    char rcpt_to[ADDR_MAX + 3];      /* normalised To address */
    char message_id[MSG_ID_MAX + 1]; /* as written, without <> */
    bool smtputf8;                   /* an address needs SMTPUTF8 (RFC 6531) */
} msg_info;

/* msg_envelope_new checks and encodes the campaign's fixed headers once.
 * Returns 0 with *out (freed by msg_envelope_free), or TD_EINVAL /
 * TD_ETOOBIG with a message naming the field. An envelope is immutable:
 * any number of threads may build with one at once. */
int msg_envelope_new(const msg_envelope_spec *spec, msg_envelope **out, td_error *e);

/* msg_envelope_free releases env; msg_envelope_free(NULL) is a no-op. */
void msg_envelope_free(msg_envelope *env);

/* msg_build appends the complete message to out and fills *info (may be
 * NULL). Returns 0; TD_EINVAL with a message naming the field for a bad
 * address, a control character or invalid UTF-8 in a header value, invalid
 * UTF-8 or a NUL byte in the text or HTML, a bad URL, file name or content
 * type; TD_ETOOBIG past a cap (HDR_VALUE_MAX for a header value, out's own
 * cap). On failure out is put back to its length at entry. */
int msg_build(const msg_envelope *env, const msg_spec *spec, buf *out, msg_info *info, td_error *e);

/* msg_verp_build writes the VERP return path base+campaign.token@domain
 * into out[ADDR_MAX + 3] (domain in A-labels). base, campaign and token are
 * 1 to MSG_VERP_PART_MAX of [a-z0-9_-] (lower-case, so a relay that changes
 * the case of a local part cannot break it). Returns 0 or TD_EINVAL. */
int msg_verp_build(const char *base, const char *campaign, const char *token, const char *domain,
                   char *out, td_error *e);

typedef struct msg_verp {
    char campaign[MSG_VERP_PART_MAX + 1];
    char token[MSG_VERP_PART_MAX + 1];
    char domain[ADDR_DOMAIN_MAX + 1]; /* A-labels */
} msg_verp;

/* msg_verp_parse takes apart a bounce recipient made by msg_verp_build with
 * the same base (any case). Returns 0 with *out filled, or TD_EINVAL when the
 * address is not one (the message says why). */
int msg_verp_parse(const char *address, const char *base, msg_verp *out, td_error *e);

/* msg_text_unescape undoes, in place, the five HTML escapes the template
 * engine writes for {{var}} (&amp; &lt; &gt; &quot; &#39;), for a template
 * rendered into plain text (a Subject, a text version). It returns the new
 * length. Literal text in such a template that spells one of those five is
 * unescaped too; nothing else is touched. */
size_t msg_text_unescape(char *s, size_t len);

#endif
